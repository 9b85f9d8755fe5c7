"""The nightly warehouse load's Python steps around ``dbt build``: ledger increment, publish, restore.

dbt (``warehouse/dbt_project.yml``, run by :mod:`pipelines.warehouse.dbt_runner`) builds every model:
staging -> facts -> dims/panel/marts.  What stays here is what is not a relation: which lake payloads
are new (the ledger is SQLite), retractions, pseudonyms of new CPRs (the key never reaches dbt), the
load's bookkeeping tables, publishing by atomic swap and restoring on failure.

One writer process owns ``<root>/warehouse/build.duckdb``; analysts read
``<root>/warehouse.duckdb``, a copy published by atomic rename at the end of
every load, so a running load never blocks a reader and a reader never sees a
half-done load.  The restricted database (CPR <-> person_key, SSI facts) is
unsealed into memory for the load and sealed again after it.

What a load processes is decided by the file ledger, not by dates: every lake
payload the ledger marks ``loaded`` that the warehouse has not loaded yet
(``meta.loaded_payload``).  A corrected re-delivery that supersedes an already
loaded payload retracts the old payload's rows from that load on
(``meta.retracted_payload``), so as-of views still show what was known before.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from pipelines.contracts import REFERENCE_DIR, get_contract
from pipelines.fsio import fsync_dir
from pipelines.warehouse.generate import fct_name, is_restricted, macro_sql
from pipelines.warehouse.keys import HMAC_MACRO_SQL, key_id

# Datasets whose changes make a person's derived rows (dim_person, fct_person_week) stale.
PERSON_SCOPE_DATASETS = ("kontaktgruppe", "akasse_tilmelding", "akasse_afmelding", "tilmelding", "afmelding")
# The dataset whose spells are the statistics' states (Jobindsats' ydelsesgrupper).
STATE_DATASET = "kontaktgruppe"

META_SQL = [
    "CREATE SCHEMA IF NOT EXISTS meta",
    "CREATE SCHEMA IF NOT EXISTS staging",
    "CREATE SCHEMA IF NOT EXISTS dq",
    """CREATE TABLE IF NOT EXISTS meta.load (
        load_id VARCHAR PRIMARY KEY, indlaest_dato DATE NOT NULL, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
        pseudonym_key_id VARCHAR, payloads INTEGER, rows_staged BIGINT, rows_deduplicated BIGINT,
        affected_persons BIGINT, affected_maaneder INTEGER, seconds DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS meta.loaded_payload (
        payload_id VARCHAR PRIMARY KEY, dataset VARCHAR, reporter VARCHAR, leveringsdato DATE,
        indlaest_dato DATE, load_id VARCHAR, rows_lake BIGINT, rows_staged BIGINT)""",
    # the ledger's receive time of the payload (§ 5: the lateness the reporter cannot set itself); NULL for a
    # payload loaded before the column existed
    "ALTER TABLE meta.loaded_payload ADD COLUMN IF NOT EXISTS modtaget_tidspunkt TIMESTAMPTZ",
    """CREATE TABLE IF NOT EXISTS meta.retracted_payload (
        payload_id VARCHAR PRIMARY KEY, dataset VARCHAR, superseded_by VARCHAR, indlaest_dato DATE, load_id VARCHAR)""",
    "CREATE TABLE IF NOT EXISTS meta.ledger_watermark (max_rowid BIGINT)",
    "CREATE TABLE IF NOT EXISTS meta.schema_state (name VARCHAR PRIMARY KEY, digest VARCHAR)",
    "CREATE TABLE IF NOT EXISTS meta.ledger_pending (ledger_rowid BIGINT PRIMARY KEY)",
    """CREATE TABLE IF NOT EXISTS meta.model_run (
        load_id VARCHAR, model VARCHAR, materialization VARCHAR, rows BIGINT, seconds DOUBLE)""",
]
RESTRICTED_SQL = [
    """CREATE TABLE IF NOT EXISTS restricted.person (
        cpr VARCHAR PRIMARY KEY, person_key VARCHAR NOT NULL, foerst_set DATE NOT NULL, pseudonym_key_id VARCHAR)""",
    "CREATE TABLE IF NOT EXISTS restricted.meta_retracted (payload_id VARCHAR PRIMARY KEY, indlaest_dato DATE)",
]


class WarehouseError(RuntimeError):
    """A load could not be completed; the message names the dataset/model and the reason."""


@dataclass
class LoadResult:
    load_id: str
    indlaest_dato: dt.date
    payloads: int = 0
    retracted: int = 0
    rows_lake: dict[str, int] = field(default_factory=dict)
    rows_staged: dict[str, int] = field(default_factory=dict)
    affected_persons: int = 0
    affected_maaneder: int = 0
    model_seconds: dict[str, float] = field(default_factory=dict)
    model_rows: dict[str, int] = field(default_factory=dict)
    hook_seconds: dict[str, float] = field(default_factory=dict)
    # the load's steps outside the models (unsealing/sealing the restricted database, checkpoint, ...)
    step_seconds: dict[str, float] = field(default_factory=dict)
    # the person tables this load sorted by person_key again (pipelines/warehouse/clustering.py): table -> rows
    sorted_by_person: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    publish_seconds: float = 0.0
    published: Path | None = None

    @property
    def rows_deduplicated(self) -> int:
        return sum(self.rows_lake.values()) - sum(self.rows_staged.values())


def build_path(root: Path) -> Path:
    return Path(root) / "warehouse" / "build.duckdb"


def published_path(root: Path) -> Path:
    return Path(root) / "warehouse.duckdb"


# Hooks run after the models: the published (small-cell suppressed) statistics.
POST_MODEL_HOOKS: list[Callable[[duckdb.DuckDBPyConnection, LoadResult], object]] = []


def _register_hooks() -> None:
    from pipelines.warehouse.suppression import publish_suppressed

    if publish_suppressed not in POST_MODEL_HOOKS:
        POST_MODEL_HOOKS.append(publish_suppressed)


def _new_payloads(root: Path, con: duckdb.DuckDBPyConnection, upto: dt.date) -> list[dict]:
    """Ledger payloads loaded into the lake that the warehouse has not loaded yet.

    Reads only ledger rows added since the last load (SQLite rowid watermark) plus the rows that were
    still pending then (landed, failed or delivered for a later day), so the cost follows the day's
    deliveries, not the ledger's history.
    """
    ledger = Path(root) / "ledger.sqlite"
    if not ledger.exists():
        return []
    wm = con.execute("SELECT coalesce(max(max_rowid), 0) FROM meta.ledger_watermark").fetchone()[0]
    pending = [r[0] for r in con.execute("SELECT ledger_rowid FROM meta.ledger_pending").fetchall()]
    cols = ("payload_id", "dataset", "reporter", "leveringsdato", "rows_accepted", "lake_path", "supersedes",
            "received_at")
    lc = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        rows = lc.execute(f"SELECT rowid, status, {', '.join(cols)} FROM payloads WHERE rowid > ?", (wm,)).fetchall()
        for i in range(0, len(pending), 500):
            chunk = pending[i:i + 500]
            rows += lc.execute(f"SELECT rowid, status, {', '.join(cols)} FROM payloads WHERE rowid IN "
                               f"({', '.join('?' * len(chunk))})", chunk).fetchall()
    finally:
        lc.close()
    rows.sort(key=lambda r: (r[3], r[5], r[2]))  # dataset, leveringsdato, payload_id
    ids = [r[2] for r in rows]
    done = {r[0] for r in con.execute("SELECT payload_id FROM meta.loaded_payload WHERE payload_id IN "
                                      "(SELECT unnest(?::VARCHAR[]))", [ids]).fetchall()} if ids else set()
    new, still, passed = [], [], {}
    for r in rows:
        rowid, status, rec = r[0], r[1], dict(zip(cols, r[2:], strict=True))
        if status == "superseded" and rec["payload_id"] not in done:  # corrected again before this load
            passed[rec["payload_id"]] = rec["supersedes"]
        if rec["payload_id"] in done or status in ("superseded", "rejected", "duplicate", "ignored"):
            continue
        if status == "loaded" and dt.date.fromisoformat(rec["leveringsdato"]) <= upto:
            new.append(rec)
        else:
            still.append(rowid)
    for rec in new:  # retract the version this load has, past versions it never loaded
        while rec["supersedes"] in passed:
            rec["supersedes"] = passed.pop(rec["supersedes"])
    con.execute("DELETE FROM meta.ledger_pending")
    if still:
        con.execute("INSERT INTO meta.ledger_pending SELECT unnest(?::BIGINT[])", [sorted(set(still))])
    if rows:
        con.execute("DELETE FROM meta.ledger_watermark")
        con.execute("INSERT INTO meta.ledger_watermark VALUES (?)", [max(wm, max(r[0] for r in rows))])
    return new


def _modtaget(received_at: str | None) -> dt.datetime | None:
    """The ledger's receive time as an aware timestamp (a naive one is Danish time, as the quality report reads it)."""
    if not received_at:
        return None
    t = dt.datetime.fromisoformat(received_at)
    return t if t.tzinfo else t.replace(tzinfo=ZoneInfo("Europe/Copenhagen"))


def record_payloads(con: duckdb.DuckDBPyConnection, ds: str, payloads: list[dict], staged: dict[str, int],
                    load_date: dt.date, load_id: str) -> None:
    """``meta.loaded_payload``: per payload its accepted lake rows, staged rows and receive time; one writer
    in one place, so the reconciliation and the arrival measure read the same columns."""
    if payloads:  # one statement over lists: executemany costs ~1 ms a row, a demo night has thousands of payloads
        con.execute("""INSERT INTO meta.loaded_payload SELECT unnest($1::VARCHAR[]), $2, unnest($3::VARCHAR[]),
            unnest($4::DATE[]), $5, $6, unnest($7::BIGINT[]), unnest($8::BIGINT[]), unnest($9::TIMESTAMPTZ[])""", [
            [p["payload_id"] for p in payloads], ds, [p["reporter"] for p in payloads],
            [p["leveringsdato"] for p in payloads], load_date, load_id,
            [int(p["rows_accepted"] or 0) for p in payloads], [staged.get(p["payload_id"], 0) for p in payloads],
            [_modtaget(p.get("received_at")) for p in payloads]])


def _setup(con: duckdb.DuckDBPyConnection, load_date: dt.date, load_id: str) -> None:
    for s in META_SQL + RESTRICTED_SQL:
        con.execute(s)
    con.execute(HMAC_MACRO_SQL)
    for s in macro_sql():
        con.execute(s)
    con.execute("SET VARIABLE reference_dir = ?", [str(REFERENCE_DIR)])
    con.execute("SET VARIABLE load_date = ?", [load_date])
    con.execute("SET VARIABLE load_id = ?", [load_id])
    con.execute("SET TimeZone = 'Europe/Copenhagen'")


def _register_increment(con: duckdb.DuckDBPyConnection, dataset: str, payloads: list[dict]) -> None:
    """``inc``: the lake rows of this dataset's new payloads; ``inc_payloads`` their ids."""
    from pipelines.lake.schema import arrow_schema

    files = sorted({p["lake_path"] for p in payloads if p["lake_path"]})
    con.execute("CREATE OR REPLACE TEMP TABLE inc_payloads (payload_id VARCHAR)")
    if payloads:
        con.execute("INSERT INTO inc_payloads SELECT unnest(?::VARCHAR[])", [[p["payload_id"] for p in payloads]])
    missing = [f for f in files if not Path(f).exists()]
    if missing:
        raise WarehouseError(f"{dataset}: lake file(s) the ledger lists are missing: {missing[:3]}")
    empty = pa.Table.from_batches([], schema=arrow_schema(get_contract(dataset)))
    con.register("inc_empty", empty)
    if files:
        flist = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f"CREATE OR REPLACE TEMP VIEW inc AS SELECT * FROM inc_empty UNION ALL BY NAME "
                    f"SELECT * FROM read_parquet([{flist}], union_by_name = true)")
    else:
        con.execute("CREATE OR REPLACE TEMP VIEW inc AS SELECT * FROM inc_empty")


# the order of a record's versions, oldest first: the current-version rule of the dbt macro version_order
# (warehouse/dbt/macros/dsdw.sql), here for the history benchmark's bulk refresh (bench/warehouse_history.py)
VERSION_ORDER = "f.version, f.indlaest_dato, f.er_slettet, f.registreringstidspunkt, f.besked_id"


def refresh_aktuel(con: duckdb.DuckDBPyConnection, dataset: str, full: bool) -> None:
    """Bring ``<fct>_aktuel`` in step: the records this load touched (new versions, retracted payloads)
    are replaced by their current version; ``full`` rebuilds the table (new columns, new definition)."""
    c = get_contract(dataset)
    if is_restricted(c):
        return  # a view over the versions (generate.dbt_aktuel_sql)
    t = fct_name(c)
    k0 = (c.record_key or ["besked_id"])[0]
    keys = ", ".join("f." + k for k in (c.record_key or ["besked_id"]))
    order = VERSION_ORDER.replace(",", " DESC,") + " DESC"

    def current(where: str) -> str:
        return (f"SELECT * EXCLUDE (_rn) FROM (SELECT f.*, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) "
                f"AS _rn FROM {t} f LEFT JOIN meta.retracted_payload r ON r.payload_id = f._payload_id WHERE {where}) "
                "WHERE _rn = 1 AND NOT er_slettet")

    if full:
        con.execute(f"CREATE OR REPLACE TABLE {t}_aktuel AS " + current("r.indlaest_dato IS NULL"))
        return
    load_id = "getvariable('load_id')"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _touched AS
        SELECT DISTINCT {k0} FROM {t} WHERE load_id = {load_id}
        UNION SELECT DISTINCT f.{k0} FROM {t} f JOIN meta.retracted_payload r ON r.payload_id = f._payload_id
        WHERE r.indlaest_dato = getvariable('load_date')""")
    con.execute(f"DELETE FROM {t}_aktuel WHERE {k0} IN (SELECT {k0} FROM _touched)")
    con.execute(f"INSERT INTO {t}_aktuel BY NAME "
                + current(f"r.indlaest_dato IS NULL AND f.{k0} IN (SELECT {k0} FROM _touched)"))


def _publish(root: Path, build: Path) -> Path:
    dst = published_path(root)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    shutil.copyfile(build, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, dst)
    fsync_dir(dst.parent)
    return dst


def _attach_quality(con: duckdb.DuckDBPyConnection, root: Path, days: set[dt.date]) -> None:
    """Copy the quality results of the delivery days this load touched into schema ``dq``."""
    dq = Path(root) / "dq.duckdb"
    if not dq.exists() or not days:
        return
    con.execute(f"ATTACH '{dq}' AS dqsrc (READ_ONLY)")
    try:
        for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'dqsrc'").fetchall():
            cols = {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = "
                                              "'dqsrc' AND table_name = ?", [t]).fetchall()}
            name = f"dq.{t.removeprefix('dq_')}"
            if "leveringsdato" not in cols:
                con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM dqsrc.main.{t}")
                continue
            con.execute(f"CREATE TABLE IF NOT EXISTS {name} AS SELECT * FROM dqsrc.main.{t} LIMIT 0")
            con.execute(f"DELETE FROM {name} WHERE leveringsdato IN (SELECT unnest(?::DATE[]))", [sorted(days)])
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM dqsrc.main.{t} "
                        "WHERE leveringsdato IN (SELECT unnest(?::DATE[]))", [sorted(days)])
    finally:
        con.execute("DETACH dqsrc")


def _restore(root: Path, build: Path) -> None:
    """Undo a failed load: the published database is the last good state of the build database."""
    pub = published_path(root)
    for suffix in ("", ".wal"):
        Path(str(build) + suffix).unlink(missing_ok=True)
    if pub.exists():
        shutil.copyfile(pub, build)


def _retract(con: duckdb.DuckDBPyConnection, new: list[dict], load_date: dt.date, load_id: str) -> int:
    """Record the loaded payloads this load's corrected re-deliveries supersede; returns how many."""
    olds = [p["supersedes"] for p in new if p["supersedes"]]
    loaded = {r[0] for r in con.execute("SELECT payload_id FROM meta.loaded_payload WHERE payload_id IN "
                                        "(SELECT unnest(?::VARCHAR[]))", [olds]).fetchall()} if olds else set()
    retract = [[p["supersedes"], p["dataset"], p["payload_id"], load_date, load_id]
               for p in new if p["supersedes"] in loaded]
    for row in retract:
        if is_restricted(get_contract(row[1])):
            con.execute("INSERT INTO restricted.meta_retracted VALUES (?, ?)", [row[0], load_date])
        else:
            con.execute("INSERT INTO meta.retracted_payload VALUES (?, ?, ?, ?, ?)", row)
    return len(retract)


def _add_persons(con: duckdb.DuckDBPyConnection, c, load_date: dt.date, key: bytes, ipad: bytes,
                 opad: bytes) -> None:
    """Add the new CPRs of the registered increment ``inc`` to ``restricted.person`` with their pseudonym
    (the only place the pseudonym key is used: staging looks the pseudonyms up)."""
    for col in [f.name for f in c.fields if f.type == "cpr"]:
        con.execute(f"""INSERT INTO restricted.person
            SELECT cpr, dsdw_hmac(cpr, $ipad, $opad), $d, $kid FROM (
              SELECT DISTINCT {col} AS cpr FROM inc
              WHERE {col} IS NOT NULL AND _payload_id IN (SELECT payload_id FROM inc_payloads))
            WHERE cpr NOT IN (SELECT cpr FROM restricted.person)""",
                    {"ipad": ipad, "opad": opad, "d": load_date, "kid": key_id(key)})




def load_warehouse(root: Path, load_date: dt.date, *, publish: bool = True, statistics: bool = True) -> LoadResult:
    """Load everything new in the lake up to ``load_date`` with transaction date ``load_date``: ``dbt build``
    between the Python steps of :func:`pipelines.warehouse.dbt_runner.load_warehouse_dbt` (ledger increment,
    pseudonyms, unsealing/sealing, publishing by atomic swap, restoring on failure).

    ``statistics=False`` skips the post-model hooks (the suppressed publication and its vintage log) for
    tests of the marts themselves; the next load with statistics republishes every year not yet published.
    """
    from pipelines.warehouse.dbt_runner import load_warehouse_dbt

    return load_warehouse_dbt(root, load_date, publish=publish, statistics=statistics)
