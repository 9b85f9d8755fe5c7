"""Builders the ingestion tests share: clean records to write into files, and the zones read back.

Plain functions, not fixtures: the corpus modules build their case tables at import time, and
pytest gives fixtures only to tests.  The area's fixtures are in ``conftest.py`` beside this file.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from pathlib import Path

from pipelines.landing.ledger import Ledger, LedgerRow
from pipelines.simulate.generate import Simulator
from pipelines.simulate.scales import SCALES

START = dt.date(2026, 10, 1)


@functools.cache
def _template(dataset: str) -> tuple[tuple[str, object], ...]:
    sim = Simulator(SCALES["tiny"], START, 1, 11, defect_rate=0.0)  # its own, so the record is always the same
    rec = sim.emit(dataset, 0, START, defect_ok=False, correctable=False, changes_ok=False)
    assert rec is not None, dataset
    return tuple(rec.items())


def template(dataset: str) -> dict:
    """One clean record of ``dataset``, built by the simulator itself: the tests write the files they
    need and never depend on which reporters the generated days happen to contain."""
    return dict(_template(dataset))


def records(dataset: str, n: int, reporter: str, key: str | None = None, **change: object) -> list[dict]:
    """``n`` clean records of ``dataset`` from ``reporter``, each with ``change`` applied.

    The message ids depend on ``key`` (default: dataset and reporter) and the record's number alone:
    the same call gives the same messages, and another key gives other ones.
    """
    key = key or f"{dataset}/{reporter}"
    out = []
    for k in range(n):
        bid = uuid.uuid5(uuid.NAMESPACE_URL, f"{key}/{k}")
        out.append({**dict(_template(dataset)), "besked_id": str(uuid.UUID(bytes=bid.bytes, version=4)),
                    "indberetter": reporter, **change})
    return out


def ledger_rows(root: Path, dataset: str | None = None) -> list[LedgerRow]:
    """Every ledger row of a zones root (of one dataset), opened and closed again, so a later run can write."""
    led = Ledger(root / "ledger.sqlite")
    try:
        return led.rows(dataset)
    finally:
        led.close()


def zone_tree(root: Path) -> dict[str, bytes]:
    """Every file under a zones root by path, the ledger's SQLite files and locks left out: a rerun that is a
    no-op leaves this equal byte for byte."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith("ledger.sqlite") and "locks" not in p.parts}
