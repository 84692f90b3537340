# pairgen: `make demo` and `make test` are all a fresh machine needs (they install first).
SHELL := /bin/bash
# onnxruntime-node's install script would download CUDA libraries from a host we cannot reach;
# the CPU provider ships inside the package.
export ONNXRUNTIME_NODE_INSTALL := skip
NODE_STAMP := node_modules/.pairgen-install-stamp
TESTS ?= test/*.test.ts

.PHONY: setup demo test bench typecheck clean

setup: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

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
