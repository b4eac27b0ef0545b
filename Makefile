# flux-agent: the two commands a newcomer needs are `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
FLUX := $(VENV)/bin/flux
PROBLEM ?= What is the sum of the roots of x^2 - 5x + 6 = 0?
# `make bench MODEL=/path/to/model.gguf` (or an http://…/v1?model=… URL) compares on another model.
MODEL ?= embedded
BENCH_LIMIT ?= 5
BENCH_OUT ?= bench-runs/$(notdir $(basename $(MODEL)))

.PHONY: setup demo serve test test-unit lint bench bench-api clean

setup: $(VENV)/.installed app/vendor/katex/katex.min.js

# torch is pinned to the local CPU build through the `cpu` extra; llama-cpp-python
# compiles from source the first time (about 8 minutes on 2 cores; pip caches the wheel).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar off -e '.[cpu,dev,train]'
	touch $@

# KaTeX for the web page, installed from the npm registry (never fetched at run time).
# Without npm the page still works and shows LaTeX as plain text.
app/vendor/katex/katex.min.js: app/package.json app/package-lock.json
	bash app/build.sh

demo: setup
	$(FLUX) library build
	$(FLUX) solve "$(PROBLEM)"

serve: setup
	$(FLUX) serve

test: setup
	$(FLUX) library validate
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

lint: setup
	$(VENV)/bin/ruff check flux_agent tests
	$(VENV)/bin/ruff format --check flux_agent tests
	$(VENV)/bin/mypy flux_agent

# Orchestration overhead, then every strategy on a few MATH-train problems (resumable:
# rerunning continues the same run directory; delete it to start afresh).
bench: setup
	$(PY) benchmarks/orchestration_overhead.py
	$(FLUX) eval --dataset benchmarks/data/math_train_sample.jsonl --limit $(BENCH_LIMIT) \
		--model $(MODEL) --output $(BENCH_OUT)

# Latency to the first streamed event and per-solve API overhead against the CLI.
bench-api: setup
	$(PY) benchmarks/api_overhead.py --model $(MODEL)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache app/node_modules app/vendor
