# dsdw: two commands do all set-up on a fresh machine with Python >= 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DSDW   := $(VENV)/bin/dsdw
STAMP  := $(VENV)/.installed

DEMO_DIR   ?= data/demo
DEMO_START ?= 2026-10-01
DEMO_DAYS  ?= 14
DEMO_SEED  ?= 20261001
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## make demo: install, generate a synthetic Denmark, start the local source systems, run the pipeline
demo: $(STAMP)
	$(DSDW) demo --out $(DEMO_DIR) --start $(DEMO_START) --days $(DEMO_DAYS) --seed $(DEMO_SEED)

## make test: install/update and run the whole suite (slow tests excluded; bench/ covers them)
test: $(STAMP)
	$(PY) -m ruff check pipelines tests bench
	$(PY) -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check pipelines tests bench

## make bench: benchmarks, results as JSON under bench/results/
bench: $(STAMP)
	$(PY) bench/bench_generate.py
	$(PY) bench/bench_parse.py
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_dq.py
	$(PY) bench/bench_warehouse.py --scale national

clean:
	rm -rf $(VENV) data/demo .pytest_cache .ruff_cache
