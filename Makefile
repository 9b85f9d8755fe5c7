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

.PHONY: demo test lint bench clean venv sysdeps generate

# System packages the suite needs (Debian package names): the browser test runs /usr/bin/chromium,
# the encryption tests open deliveries with age, an independent implementation of the format.
# `make test` also needs a Java runtime for Spark (the dbt models' parity test on the spark target).
# Root on apt: installed when missing; otherwise stop at once with one line naming what to install.
# wait for another apt run (a shared machine, unattended upgrades) instead of failing on its lock
APT_OPTS    := -o DPkg::Lock::Timeout=600
CHROMIUM    ?= /usr/bin/chromium
JAVA_PKG    ?=
APT_MISSING  = $(strip $(if $(wildcard $(CHROMIUM)),,chromium) $(if $(wildcard /usr/bin/age),,age) \
                 $(if $(JAVA_PKG),$(if $(shell command -v java 2>/dev/null),,$(JAVA_PKG))) \
                 $(if $(wildcard $(STAMP)),,$(shell $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || echo python3-venv)))

## make sysdeps: the system packages (idempotent; instant when present)
sysdeps:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "dsdw needs Python >= 3.11 as '$(PYTHON)' (found: $$($(PYTHON) --version 2>&1)); set PYTHON=..." >&2; exit 1; }
	@missing="$(APT_MISSING)"; [ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing system packages: $$missing (apt-get, about a minute)"; \
	  { apt-get $(APT_OPTS) update -qq && DEBIAN_FRONTEND=noninteractive apt-get $(APT_OPTS) install -y -qq $$missing \
	    >/dev/null; } || { echo "apt-get could not install: $$missing" >&2; exit 1; }; \
	  [ -x $(CHROMIUM) ] || { echo "apt-get installed chromium but $(CHROMIUM) is missing" >&2; exit 1; }; \
	else \
	  echo "missing system packages: $$missing -- install them first: sudo apt-get install -y $$missing" >&2; exit 1; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## make demo: install, generate a synthetic Denmark, start the local source systems, run the pipeline
# a fresh run each time: the pipeline's zones and the Dagster instance start empty (sources are regenerated)
demo: sysdeps $(STAMP)
	rm -rf $(DEMO_DIR)/pipeline $(DEMO_DIR)/dagster
	$(DSDW) demo --out $(DEMO_DIR) --start $(DEMO_START) --days $(DEMO_DAYS) --seed $(DEMO_SEED)

## make test: install/update and run the whole suite (slow tests excluded; bench/ covers them)
# -n 3 on the 2-core machine: a quarter of the CPU sat idle with 2 workers (subprocesses, fsyncs, servers on
# loopback); a fresh clone of 6dd9084 ran 836.9 s with -n 2 and 777.5 s with -n 3 (2026-12-06, one run each)
# the spark extra (pyspark with Spark's jars, dbt-spark; ~500 MB, about a minute) only for the tests
test: JAVA_PKG := openjdk-17-jre-headless
test: sysdeps $(STAMP)
	@$(PY) -c 'import pyspark, dbt.adapters.spark' 2>/dev/null || \
	  { echo "installing the spark extra (pyspark, dbt-spark)"; $(PY) -m pip install --quiet -e '.[dev,spark]'; }
	$(PY) -m ruff check pipelines tests bench
	$(PY) -m pytest -n 3 -m "not slow" $(PYTEST_ARGS)

## make generate: regenerate everything derived from the contracts (schema, GX suites, models, docs)
generate: $(STAMP)
	$(PY) -m pipelines.generate

lint: $(STAMP)
	$(PY) -m ruff check pipelines tests bench

## make bench: benchmarks, results as JSON under bench/results/
bench: $(STAMP)
	$(PY) bench/bench_generate.py
	$(PY) bench/bench_parse.py
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_dq.py
	$(PY) bench/bench_demo.py
	$(PY) bench/bench_warehouse.py --scale national

clean:
	rm -rf $(VENV) data/demo .pytest_cache .ruff_cache
