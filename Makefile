# pairgen: `make demo` and `make test` are all a fresh machine needs (each installs first).
SHELL := /bin/bash
# onnxruntime-node's install script would download CUDA libraries from a host we cannot reach;
# the CPU provider ships inside the package. (.npmrc says the same for a plain `npm ci`.)
export ONNXRUNTIME_NODE_INSTALL := skip
NODE_STAMP := node_modules/.pairgen-install-stamp
TESTS ?= test/*.test.ts
PAIRGEN := node bin/pairgen.js

.PHONY: setup models fonts demo test bench typecheck clean

## setup: npm packages, fonts for the pictures, the converted face models (cached in .cache/)
setup: $(NODE_STAMP) fonts models

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Contact sheets and plots draw text through fontconfig; a bare machine may have no font at all.
fonts:
	@fc-list 2>/dev/null | grep -q . || { echo "installing fonts-dejavu-core (Debian) for text in pictures"; \
	  (apt-get update -qq && apt-get install -y -qq fonts-dejavu-core fontconfig) >/dev/null; }

models: $(NODE_STAMP)
	node --import tsx scripts/setup-models.ts

test: setup
	node --import tsx --test --test-concurrency=2 --test-reporter=spec $(TESTS)

demo: setup
	@echo "make demo: not built yet (issue 5)"; exit 1

bench: setup
	node --import tsx bench/run.ts

typecheck: setup
	npx tsc --noEmit

clean:
	rm -rf .cache runs
