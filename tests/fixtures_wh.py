"""Hand-made lake deliveries for warehouse tests (exact, small, with known answers).

``deliver(root, dataset, day, rows)`` writes one lake payload the way ingestion
does (Parquet typed by the contract, registered and marked loaded in the file
ledger), so the warehouse load reads it through its real path.  Rows give only
the fields that matter; the envelope is filled in.  Re-delivering the same
``source`` on the same day makes a new payload version that supersedes the old.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.contracts import get_contract
from pipelines.ingest import archive_payload_files
from pipelines.lake.schema import arrow_schema
from pipelines.lake.write import lake_path, write_parquet
from pipelines.landing.ledger import Ledger, PayloadKey
from pipelines.warehouse.build import published_path
from pipelines.warehouse.stats import months_between, ydelser_for_months

TZ = dt.timezone(dt.timedelta(hours=2))


def cpr_for(birth: dt.date, seq: int, male: bool = True) -> str:
    """A CPR-shaped number for a synthetic person (mod-11 not required in the warehouse)."""
    last = seq * 2 + (1 if male else 0)
    century = "0" if birth.year < 2000 else "4"
    return f"{birth:%d%m%y}{century}{last % 1000:03d}"


def uid(tag: str | int) -> str:
    """A stable UUID-shaped record key for a test tag (record keys must be UUID-shaped).

    A UUID stays as it is; a number or a short hex tag (``"a1"``) becomes the key's last 12 digits, so a
    test reads the tag back from the key; any other tag (``"m1b"``) is hashed (uuid5).
    """
    if isinstance(tag, int):
        return f"22222222-0000-4000-8000-{tag:012d}"
    if re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", tag):
        return tag
    if re.fullmatch(r"[0-9a-f]{1,12}", tag):
        return f"22222222-0000-4000-8000-{tag:0>12}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dsdw-test:{tag}"))


def kg(key: str | int, cpr: str, group: str, start: str, end: str | None = None, kommune: str | None = None,
       reg: str | None = None, version: int = 1, change: str = "1") -> dict[str, Any]:
    """A kontaktgruppe record (§§ 14-15: one kontaktgruppe spell) for ``deliver``: ``key`` goes through ``uid``.

    ``kommune`` None leaves kommunekode to ``deliver`` (the reporting kommune); ``reg`` (the
    registreringsdato) defaults to the spell's start; dates are ISO strings.
    """
    rec: dict[str, Any] = {"kontaktgruppe_id": uid(key), "cpr": cpr, "kontaktgruppe": group,
                           "startdato": dt.date.fromisoformat(start),
                           "slutdato": dt.date.fromisoformat(end) if end else None,
                           "registreringsdato": dt.date.fromisoformat(reg or start),
                           "version": version, "aendringstype": change}
    if kommune is not None:
        rec["kommunekode"] = kommune
    return rec


def deliver(root: Path, dataset: str, day: dt.date, rows: list[dict[str, Any]], reporter: str = "101",
            source: str = "test", arrived: dt.date | None = None) -> str:
    """Write ``rows`` as one loaded lake payload of ``dataset`` delivered on ``day``; returns its payload id.
    ``arrived``: the later day whose folder offered it (a late file, or a correction sent after its day)."""
    c = get_contract(dataset)
    schema = arrow_schema(c)
    ts = dt.datetime.combine(day, dt.time(12, 0), tzinfo=TZ)
    full = []
    for n, r in enumerate(rows, start=1):
        rec: dict[str, Any] = {f.name: None for f in schema}
        rec.update({"besked_id": str(uuid.uuid4()), "entitet": dataset, "aendringstype": "1", "version": 1,
                    "indberetter": reporter, "haendelsestidspunkt": ts, "registreringstidspunkt": ts})
        if "registreringsdato" in rec:
            rec["registreringsdato"] = day
        if "kommunekode" in rec:
            rec["kommunekode"] = reporter
        rec.update(r)
        rec.update({"_channel": "webservice", "_reporter": reporter, "_record_no": n, "_leveringsdato": day})
        full.append(rec)
    body = json.dumps(full, default=str, sort_keys=True).encode()
    pid = hashlib.sha256(body + dataset.encode() + str(day).encode() + source.encode()).hexdigest()[:32]
    for rec in full:
        rec["_payload_id"] = pid
    table = pa.Table.from_pylist(full, schema=schema)
    ledger = Ledger(Path(root) / "ledger.sqlite")
    try:
        key = PayloadKey("webservice", reporter, dataset, day, source)
        reg = ledger.register(key, pid, hashlib.sha256(body).hexdigest(), len(body), Path(root) / "landing" / pid,
                              ts.isoformat(), arrived=arrived)
        out = lake_path(root, dataset, day, reporter, pid)
        write_parquet(table, out)
        old = ledger.mark_loaded(reg.row, len(full), len(full), 0, str(out))
        if old is not None:  # a corrected re-delivery (same source and day): the version before is archived
            archive_payload_files(Path(root), dataset, old)
    finally:
        ledger.close()
    return pid


def use_keys(mp: Any, keydir: Path) -> Path:
    """Fresh pseudonym and restricted keys in ``keydir`` for a test (``mp``: a pytest MonkeyPatch), with the
    key env vars cleared so no machine key leaks in."""
    from pipelines.warehouse import keys as wkeys

    mp.setenv("DSDW_KEY_DIR", str(keydir))
    mp.delenv("DSDW_PSEUDONYM_KEY", raising=False)
    mp.delenv("DSDW_RESTRICTED_KEY", raising=False)
    wkeys.ensure_key("pseudonym")
    wkeys.ensure_key("restricted")
    return keydir


def query(db: Path, sql: str) -> list[tuple]:
    """All rows of ``sql`` on a read-only connection to the database file ``db``."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


COLS = ("periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe, antal_personer, round(fuldtidspersoner, 9), "
        "tilgang, afgang, uger_i_perioden, ydelsesuger, er_foreloebig")


def assert_mart_equals_full_recomputation(root: Path, horizon: dt.date) -> int:
    """The nightly (scoped) mart equals the figures recomputed for every month from the current spells."""
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        first = con.execute("SELECT min(startdato) FROM fct_ydelsesforloeb").fetchall()[0][0]
        full = ydelser_for_months(con, "SELECT * FROM fct_ydelsesforloeb", months_between(first, horizon), horizon)
        want = sorted(full.select(COLS).fetchall())
        got = sorted(con.execute(f"SELECT {COLS} FROM mart_ydelser").fetchall())
    finally:
        con.close()
    assert got == want
    return len(got)
