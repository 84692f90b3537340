# pairgen: `make demo` and `make test` are all a fresh machine needs (each installs first).
SHELL := /bin/bash
# onnxruntime-node's install script would download CUDA libraries from a host we cannot reach;
# the CPU provider ships inside the package. (.npmrc says the same for a plain `npm ci`.)
export ONNXRUNTIME_NODE_INSTALL := skip
# The AWS SDK warns about Node 20 on every client it creates (bin/pairgen.js silences it too).
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED := true
NODE_STAMP := node_modules/.pairgen-install-stamp
TESTS ?= $(shell find test -name "*.test.ts" -not -path "test/fixtures/*" | sort)
PAIRGEN := node bin/pairgen.js

.PHONY: setup models fonts pyenv slurm browser reference demo test bench screenshots typecheck clean

## setup: npm packages, fonts for the pictures, the converted face and scorer models (cached in .cache/)
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

# The real Python readers (datasets, pyarrow, polars, fastparquet) test/readers/ checks runs with.
pyenv:
	bash scripts/pyenv.sh

# Slurm (slurm-wlm, munge) for the real-cluster test, test/launch/slurm.test.ts: installed with apt-get as
# root; elsewhere (exit 3) that test is skipped and says so. The test starts and stops the cluster itself.
slurm:
	@bash scripts/slurm-cluster.sh install || { [ $$? = 3 ] && echo "slurm: not installed; test/launch/slurm.test.ts will be skipped"; }

# Debian's chromium (/usr/bin/chromium) for the browser test, test/serve/browser.test.ts, and `make screenshots`
# (playwright-core drives it; a browser download of playwright's own cannot work here): installed with apt-get
# as root; elsewhere that test is skipped and says so.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  echo "installing chromium (Debian) for the browser test" && export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; }; } || \
	  echo "browser: chromium not installed; test/serve/browser.test.ts will be skipped"

# The demo's reference teacher (cached in .cache/reference-teacher, or $PAIRGEN_CACHE), built before the
# tests so that test files running side by side find it made instead of each building it.
reference: setup
	node --import tsx scripts/setup-reference.ts

test: setup pyenv slurm browser reference
	node --import tsx --test --test-concurrency=2 --test-reporter=spec $(TESTS)

## demo: build the reference teacher (cached), then the whole job on pipelines/demo.yaml into runs/demo
DEMO_OUT ?= runs/demo
REFERENCE := $(if $(PAIRGEN_CACHE),$(PAIRGEN_CACHE)/reference-teacher,.cache/reference-teacher)
demo: reference
	rm -rf $(DEMO_OUT)
	$(PAIRGEN) run pipelines/demo.yaml --out $(DEMO_OUT) \
	  --set teacher.model=$(abspath $(REFERENCE))/text-to-image --set teacher.edit_model=$(abspath $(REFERENCE))/instruct
	@echo
	@echo "Look at: $(DEMO_OUT)/preview/index.html (contact sheets per category, identity and score distributions),"
	@echo "         $(DEMO_OUT)/README.md (dataset card) and $(DEMO_OUT)/stats.json."
	@echo "More:    node bin/pairgen.js serve $(DEMO_OUT)   (browse it at http://127.0.0.1:8787/)"
	@echo "         node bin/pairgen.js status $(DEMO_OUT)"
	@echo "         node bin/pairgen.js preview $(DEMO_OUT) --where 'not accepted' --regenerate --out rejects.png"

## screenshots: one PNG per page of `pairgen serve` on a small demo run, into docs/screenshots/ (README links them)
screenshots: setup browser
	node --import tsx scripts/screenshots.ts

bench: setup
	node --import tsx bench/run.ts $(BENCH)

typecheck: setup
	npx tsc --noEmit

clean:
	rm -rf .cache runs
