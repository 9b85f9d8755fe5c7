"""Builders the ingestion tests share: clean records to write into files, and the zones read back.

Plain functions, not fixtures: the corpus modules build their case tables at import time, and
pytest gives fixtures only to tests.  The area's fixtures are in ``conftest.py`` beside this file.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
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


def kontaktgruppe_record(reporter: str, **change: object) -> dict:
    """One hand-written kontaktgruppe record from ``reporter``'s kommune, a create (version 1, open-ended) with
    fixed ids, ``change`` applied: the webservice tests know every value the page carries."""
    return {"besked_id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427", "entitet": "kontaktgruppe", "aendringstype": "1",
            "version": 1, "indberetter": reporter, "haendelsestidspunkt": "2026-10-01T10:00:00+02:00",
            "registreringstidspunkt": "2026-10-01T10:00:00+02:00",
            "kontaktgruppe_id": "6f1c1e3a-0b1d-4c4e-9a39-0d6c1f7a2b11", "cpr": "0101701234", "kommunekode": reporter,
            "registreringsdato": "2026-10-01", "kontaktgruppe": "1", "startdato": "2026-09-01", "slutdato": None,
            "persongruppe": None, "foerste_anmodning": None, **change}


def webservice_page(dataset: str, envelope: str, records: list[dict], day: dt.date = START) -> bytes:
    """The only page of ``dataset``'s webservice answer on ``day`` whose envelope names reporter ``envelope``."""
    return json.dumps({"dataset": dataset, "dato": day.isoformat(), "indberetter": envelope, "records": records,
                       "next_cursor": None, "total": len(records)}).encode()
