"""Shared fixtures: generated data built once per session and shared by the xdist workers.

Generating and ingesting even a tiny Denmark costs tens of seconds, so a data set that several
modules read is built here once: the first worker to ask builds it under the session's base
temp directory (``pytest-N/``, shared by the ``-n`` workers) while holding a file lock, the others
wait for it and read the same files.  The build is never reused across sessions, so a code change
always gets fresh data.  Readers must not change these trees; a test that writes takes a copy.

Layout: ``tests/<area>/`` mirrors ``pipelines/<area>/``; a top-level test module mirrors a top-level
module of ``pipelines/`` or says why it belongs to no package.  Fixtures live in conftest files: the ones
several areas read here, an area's own in ``tests/<area>/conftest.py`` (``build_once`` gives them this
file's cross-worker caching).  Builders that are plain functions live in plain modules, because
module-level test data and the tests' own helpers call them, and pytest gives fixtures only to tests
and does not import conftest files as modules: an area's own beside its tests (``ingest_builders.py``,
``lake_builders.py``), those several areas share here (``fixtures_wh.py``: ``kg``, ``uid``, ``deliver``,
``cpr_for``; ``fixtures_deliveries.py``: delivered files read back).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import importlib.machinery
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixtures_wh import use_keys

# An xdist worker runs as ``python -c``: its ``__main__`` has neither ``__spec__`` nor ``__file__``, which
# pyspark (the spark extra) takes for a doctest run: importing ``pyspark.sql.connect`` (great_expectations
# does, in every quality test) then calls ``sys.exit(0)`` when pyspark's connect dependencies are missing,
# and the test fails with SystemExit.  A spec named ``__main__`` says what the worker is; multiprocessing's
# spawn treats that name as "nothing to re-import", as it treated the missing spec.
if getattr(sys.modules["__main__"], "__spec__", None) is None and not hasattr(sys.modules["__main__"], "__file__"):
    sys.modules["__main__"].__spec__ = importlib.machinery.ModuleSpec("__main__", None)

# The modules that take longest (setup + calls, measured in `make test` runs), longest first.  With
# ``--dist loadscope`` (pyproject's addopts: a module's tests stay on one worker, so a module fixture is
# built once) the workers take modules in collection order: starting the long ones first keeps one worker
# from being left alone with a long module at the end.  A module missing here runs after these, in the
# usual order; a stale entry only costs balance, never correctness.
LONG_MODULES = (
    "tests/warehouse/test_warehouse_marts.py",
    "tests/warehouse/test_warehouse_build.py",
    "tests/warehouse/test_spark_parity.py",
    "tests/ingest/test_ingest_crash.py",
    "tests/quality/test_quality_rules.py",
    "tests/simulate/test_simulate_pipeline.py",
    "tests/test_demo.py",
    "tests/warehouse/test_warehouse_dictionary.py",
    "tests/warehouse/test_suppression_attacks.py",
    "tests/governance/test_testdata.py",
    "tests/warehouse/test_warehouse_kategori.py",
    "tests/ingest/test_ingest.py",
    "tests/ingest/test_ingest_corpus.py",
    "tests/warehouse/test_warehouse_flows.py",
    "tests/warehouse/test_warehouse_dbt.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The ``LONG_MODULES`` first, longest first; the rest (and every module's own test order) unchanged."""
    rank = {m: k for k, m in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


START = dt.date(2026, 10, 1)
TINY_DAYS = [START, START + dt.timedelta(days=1)]
TINY_RECEIVED_AT = "2026-10-03T02:00:00+02:00"


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """``name``'s directory, filled by ``build(dir)`` exactly once per session across xdist workers.

    A failed build leaves no ``.done`` mark: the next worker asking builds again (and fails the same way,
    in its own tests) instead of reading half a tree.
    """
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # pytest-N/, shared by the session's workers (popen-gw0, popen-gw1)
    work = base / f"shared_{name}"
    work.mkdir(exist_ok=True)
    with (work / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (work / ".done").exists():
            for p in work.iterdir():
                if p.name != ".lock":
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            build(work)
            (work / ".done").touch()
    return work


@pytest.fixture(scope="session")
def build_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Callable[[Path], object]], Path]:
    """``build_once(name, build)``: ``built_once`` for the area conftests (a conftest cannot import another)."""
    return lambda name, build: built_once(tmp_path_factory, name, build)


def copy_zones(src: Path, dst: Path) -> Path:
    """A copy of the zones ``src`` at ``dst`` whose ledger names the copy's own landing and lake files.

    The ledger keeps absolute paths, and ingestion removes a superseded payload's files by them: a copy
    still pointing at ``src`` would let a test delete the shared tree's files.
    """
    shutil.copytree(src, dst, dirs_exist_ok=True)
    con = sqlite3.connect(dst / "ledger.sqlite")
    try:
        with con:
            con.execute("UPDATE payloads SET landing_path = replace(landing_path, ?1, ?2), "
                        "lake_path = replace(lake_path, ?1, ?2)", (f"{src}/", f"{dst}/"))
    finally:
        con.close()
    return dst


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``generated(scale=, days=, seed=, defect_rate=, start=)``: the simulator's sources for these arguments,
    generated once per session across xdist workers.

    Modules read generated sources through this, so the ones asking for the same arguments share one directory
    instead of each generating its own.  Read only: a test that writes into the sources copies them first.
    """
    from pipelines.simulate.generate import generate

    def make(*, scale: str = "tiny", days: int = len(TINY_DAYS), seed: int = 1, defect_rate: float | None = None,
             start: dt.date = START) -> Path:
        rate = "default" if defect_rate is None else f"{defect_rate:g}"
        return built_once(tmp_path_factory, f"gen_{scale}_{start:%Y%m%d}_{days}d_seed{seed}_defects{rate}",
                          lambda work: generate(work / "src", scale=scale, start=start, days=days, seed=seed,
                                                defect_rate=defect_rate)) / "src"
    return make


@pytest.fixture(scope="session")
def sources_seed1(generated: Callable[..., Path]) -> Path:
    """Generated sources: tiny, 2 days from 1 Oct 2026, seed 1, no defects.

    Read by the lake parser's, payload-check and adversarial tests and the source-client tests (which all
    generated exactly this, the parser's without defects; the others pick clean payloads anyway).
    """
    return generated(days=len(TINY_DAYS), seed=1, defect_rate=0.0)


@pytest.fixture(scope="session")
def sources_seed21(generated: Callable[..., Path]) -> Path:
    """Generated sources: tiny, 1 day (1 Oct 2026), seed 21, 30 % defects: enough bad records that an error
    rule fails at zero tolerance.  Read by the quality checks' Dagster wiring and the ingestion pool tests."""
    return generated(days=1, seed=21, defect_rate=0.3)


@pytest.fixture(scope="session")
def serve_sources() -> Callable[[Path, Path], contextlib.AbstractContextManager[Path]]:
    """``serve_sources(src, state)``: a context that serves the generated ``src`` (``start_sources``) and
    writes the systems' description to ``state``, the file ``--sources`` and ``DsdwResource`` read."""
    from pipelines.simulate.servers import start_sources

    @contextlib.contextmanager
    def serve(src: Path, state: Path) -> Iterator[Path]:
        with start_sources(src) as systems:
            state.write_text(json.dumps(systems.describe()))
            yield state
    return serve


@pytest.fixture(scope="session")
def tiny_lake(tmp_path_factory: pytest.TempPathFactory, generated: Callable[..., Path]) -> tuple[Path, Path]:
    """(sources, zones): tiny, 2 days, seed 8, 5 % defects, generated and ingested (received 3 Oct 02:00).

    Read by the ingestion, quality-suite, privacy, Data Docs, ledger-id and crash tests (the crash test's
    unbroken load to compare with: the same sources, received at the same time).
    """
    from pipelines.ingest import SourcesConfig, Zones, ingest_day
    from pipelines.simulate.servers import start_sources

    src = generated(days=len(TINY_DAYS), seed=8, defect_rate=0.05)

    def build(work: Path) -> None:
        with start_sources(src) as systems:
            cfg = SourcesConfig.from_describe(systems.describe())
            for day in TINY_DAYS:
                results = ingest_day(day, Zones(work / "root"), cfg, received_at=TINY_RECEIVED_AT)
                assert not [f for r in results for f in r.failures]

    return src, built_once(tmp_path_factory, "tiny_lake", build) / "root"


@pytest.fixture(scope="session")
def copy_tiny_lake(tiny_lake: tuple[Path, Path]) -> Callable[[Path], Path]:
    """``copy(dst)``: the ingested zones of ``tiny_lake`` copied to ``dst`` (``copy_zones``), for tests that write."""
    return lambda dst: copy_zones(tiny_lake[1], dst)


@pytest.fixture(scope="session")
def tiny_warehouse(tmp_path_factory: pytest.TempPathFactory, tiny_lake: tuple[Path, Path]
                   ) -> tuple[Path, Path, Path]:
    """(sources, zones, key dir): ``tiny_lake`` copied, quality published for its last day, then both
    days loaded into the warehouse (analysts' database and the sealed restricted one).

    Tests that open the restricted zone or derive person keys use ``tiny_warehouse_keys``.
    """
    from pipelines.quality.results import publish, run_quality
    from pipelines.warehouse.build import load_warehouse

    src, lake_root = tiny_lake

    def build(work: Path) -> None:
        root = copy_zones(lake_root, work / "pipeline")
        with pytest.MonkeyPatch.context() as mp:
            use_keys(mp, work / "keys")
            publish(run_quality(root, TINY_DAYS[-1:], workers=1), root, TINY_DAYS[-1:])  # dq.* goes in too
            for day in TINY_DAYS:
                load_warehouse(root, day)

    work = built_once(tmp_path_factory, "tiny_warehouse", build)
    return src, work / "pipeline", work / "keys"


@pytest.fixture(scope="module")
def tiny_warehouse_keys(tiny_warehouse: tuple[Path, Path, Path]) -> Iterator[tuple[Path, Path]]:
    """(sources, zones) of ``tiny_warehouse`` with its keys in the environment for the module's tests."""
    src, root, keys = tiny_warehouse
    with pytest.MonkeyPatch.context() as mp:
        use_keys(mp, keys)
        yield src, root
