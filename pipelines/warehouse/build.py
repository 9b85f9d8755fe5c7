"""The nightly warehouse load: lake increment -> staging -> facts -> dims/panel/marts -> publish.

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
import hashlib
import importlib
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from pipelines.contracts import REFERENCE_DIR, get_contract, load_contracts
from pipelines.fsio import fsync_dir
from pipelines.warehouse.generate import MODELS_DIR, fct_name, is_restricted, macro_sql, stg_name
from pipelines.warehouse.keys import HMAC_MACRO_SQL, hmac_pads, key_id, load_key
from pipelines.warehouse.models import Model, build_order, load_models
from pipelines.warehouse.restricted import open_restricted

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
    for both runners, so the reconciliation and the arrival measure read the same columns."""
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
    # the load's scope tables exist from the start (filled once the facts are appended)
    con.execute("CREATE OR REPLACE TEMP TABLE affected_persons (person_key VARCHAR)")
    con.execute("CREATE OR REPLACE TEMP TABLE affected_maaneder (maaned DATE)")


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


def _table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    parts = qualified.split(".")
    if len(parts) == 1:
        db, schema, name = None, "main", parts[0]
    elif parts[0] == "restricted":
        db, schema, name = "restricted", "main", parts[1]
    else:
        db, schema, name = None, parts[0], parts[1]
    q = "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?"
    args: list = [schema, name]
    if db:
        q += " AND database_name = ?"
        args.append(db)
    else:
        q += " AND database_name = current_database()"
    return con.execute(q, args).fetchone()[0] > 0


def _params(sql: str, values: dict) -> dict:
    return {k: v for k, v in values.items() if f"${k}" in sql}


def _existing(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Qualified names of the tables of both databases (one catalog query per load)."""
    out = set()
    for db, schema, name in con.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE NOT temporary").fetchall():
        if db == "restricted":
            out.add(f"restricted.{name}")
        else:
            out.add(name if schema == "main" else f"{schema}.{name}")
    return out


def _evolve(con: duckdb.DuckDBPyConnection, target: str, source: str) -> list[str]:
    """Add to ``target`` the columns ``source`` has and it lacks (a field added to a contract)."""
    def cols(rel: str) -> dict[str, str]:
        return {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}

    have, want = cols(target), cols(source)
    added = [c for c in want if c not in have]
    for c in added:
        stmt = f'ALTER TABLE {target} ADD COLUMN "{c}" {want[c]}'
        try:
            con.execute(stmt)
        except duckdb.DependencyException:
            # DuckDB 2.0 adds a column to an indexed table, but refuses other ALTERs while an index depends on
            # the table (older/newer versions may refuse this one too): drop the person_key index and retry;
            # ensure_person_indexes recreates it at the end of the load
            db, _, name = target.rpartition(".")
            con.execute(f"DROP INDEX IF EXISTS {db + '.' if db else ''}{name}__person_key")
            con.execute(stmt)
    return added


def ensure_person_indexes(con: duckdb.DuckDBPyConnection, models: list[Model]) -> list[str]:
    """Index ``person_key`` of the person facts (append, python) and the person-scoped panel; returns those created.

    One person's history is a point lookup for analysts: with an ART index 0.3 s instead of 2.1 s p95 over a
    5-year warehouse, and the panel 43 ms instead of 0.4 s (bench/bench_warehouse.py).  Indexes are kept up
    to date by every INSERT/DELETE, so this only creates missing ones (a new fact, a first load, a rebuilt
    panel): one catalog query when all exist.  The ``_aktuel`` tables are rewritten every load and not indexed.
    """
    wanted = {m.qualified for m in models if m.layer == "core" and m.name.startswith("fct_")
              and (m.materialization in ("append", "python") or m.scope == "person_key")}
    rows = con.execute("""
        SELECT c.database_name = 'restricted', c.table_name, bool_or(i.index_name IS NOT NULL)
        FROM duckdb_columns() c
        JOIN duckdb_tables() t USING (database_name, schema_name, table_name)
        LEFT JOIN duckdb_indexes() i ON i.database_name = c.database_name AND i.schema_name = c.schema_name
             AND i.table_name = c.table_name AND i.index_name = c.table_name || '__person_key'
        WHERE c.column_name = 'person_key' AND c.schema_name = 'main' AND NOT t.temporary
          AND c.database_name IN (current_database(), 'restricted')
        GROUP BY ALL""").fetchall()
    created = []
    for restricted, name, indexed in rows:
        q = f"restricted.{name}" if restricted else name
        if q in wanted and not indexed:
            con.execute(f"CREATE INDEX IF NOT EXISTS {name}__person_key ON {q} (person_key)")
            created.append(q)
    return created


def _run_model(con: duckdb.DuckDBPyConnection, m: Model, values: dict, existing: set[str] | None = None) -> int:
    # models that count everything on their first run and only the load's change afterwards read this
    # constant (the optimizer drops the branch it switches off, so a nightly run never scans the history)
    first = con.execute("SELECT count(*) = 0 FROM meta.model_run WHERE model = ?", [m.name]).fetchone()[0]
    con.execute("SET VARIABLE model_first_run = ?", [first])
    sql = m.sql
    p = _params(sql, values)
    q = m.qualified
    if m.materialization in ("increment", "table"):
        con.execute(f"CREATE OR REPLACE TABLE {q} AS {sql}", p)
    elif m.materialization == "view":
        con.execute(f"CREATE OR REPLACE VIEW {q} AS {sql}")
        return 0
    elif m.materialization == "append":
        if not (q in existing if existing is not None else _table_exists(con, q)):
            con.execute(f"CREATE TABLE {q} AS {sql} LIMIT 0", p)
            if existing is not None:
                existing.add(q)
        elif m.layer == "core":
            stg = ("restricted." if m.database == "restricted" else "staging.") + m.depends_on[0]
            _evolve(con, q, stg)
        return con.execute(f"INSERT INTO {q} BY NAME {sql}", p).fetchone()[0]
    elif m.materialization == "scoped":
        created = not (q in existing if existing is not None else _table_exists(con, q))
        if created:
            con.execute(f"CREATE TABLE {q} AS {sql} LIMIT 0", p)
        scope_table = "affected_persons" if m.scope == "person_key" else "affected_maaneder"
        where = f"{m.scope} IN (SELECT {m.scope} FROM {scope_table})"
        if m.header.get("keeps_replaced") != "true":
            con.execute(f"DELETE FROM {q} WHERE {where}")
            return con.execute(f"INSERT INTO {q} BY NAME {sql}", p).fetchone()[0]
        # the replaced and the inserted rows stay readable for this load's delta models (models.py)
        gone, new = f"erstattet__{m.name}", f"indsat__{m.name}"
        if created:
            # a new table: nothing replaced, and what was inserted is the table itself (no copy of a
            # whole first build in memory)
            n = con.execute(f"INSERT INTO {q} BY NAME {sql}", p).fetchone()[0]
            con.execute(f"SET VARIABLE {gone} = NULL")
            con.execute(f"SET VARIABLE {new} = '{q}'")
            return n
        con.execute(f"CREATE OR REPLACE TEMP TABLE {gone} AS SELECT * FROM {q} WHERE {where}")
        con.execute(f"DELETE FROM {q} WHERE {where}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {new} AS {sql}", p)
        con.execute(f"SET VARIABLE {gone} = '{gone}'")
        con.execute(f"SET VARIABLE {new} = '{new}'")
        return con.execute(f"INSERT INTO {q} BY NAME SELECT * FROM {new}").fetchone()[0]
    elif m.materialization == "python":
        module, func = m.header["callable"].split(":")
        return int(getattr(importlib.import_module(module), func)(con, m, values))
    return con.execute(f"SELECT count(*) FROM {q}").fetchone()[0]


# the order of a record's versions, oldest first: the one current rule of every fact (history views,
# as-of macros and the _aktuel tables)
VERSION_ORDER = "f.version, f.indlaest_dato, f.er_slettet, f.registreringstidspunkt, f.besked_id"


def history_views_sql(dataset: str) -> list[str]:
    """The bitemporal access paths of one fact table.

    * ``<fct>_as_of(d)``: the records as known after the load of date ``d`` -- rows loaded by then, minus
      rows of payloads retracted by then; per record its latest such version, unless that is a deletion.
    * ``<fct>_aktuel``: the same for the latest load.
    * ``<fct>_historik``: every version with ``indlaest_til`` (when a newer version arrived or its payload
      was retracted) and ``er_seneste``.
    * ``<fct>_aktuel_personer()``: ``_aktuel`` for the records of the load's affected persons only,
      so the nightly derived models read what changed, not the whole history.
    """
    c = get_contract(dataset)
    key_cols = list(c.record_key or ["besked_id"])
    keys = ", ".join("f." + k for k in key_cols)
    t = fct_name(c)
    db = "restricted." if is_restricted(c) else ""
    retracted = "restricted.meta_retracted" if db else "meta.retracted_payload"
    # the reporter's version number decides which version is current; the load date only breaks ties (a
    # version 1 that arrives after its version 2 never becomes current, and is closed at its own arrival)
    order = VERSION_ORDER
    desc = order.replace(",", " DESC,") + " DESC"
    latest = f"row_number() OVER (PARTITION BY {keys} ORDER BY {desc})"
    historik = (
        f"CREATE OR REPLACE VIEW {db}{t}_historik AS\n"
        f"SELECT f.*,\n"
        f"  least(CASE WHEN lead(f.indlaest_dato) OVER w IS NOT NULL\n"
        f"             THEN greatest(f.indlaest_dato, lead(f.indlaest_dato) OVER w) END, r.indlaest_dato) AS indlaest_til,\n"
        f"  r.indlaest_dato IS NULL AND {latest} = 1 AS er_seneste\n"
        f"FROM {db}{t} f LEFT JOIN {retracted} r ON r.payload_id = f._payload_id\n"
        f"WINDOW w AS (PARTITION BY {keys} ORDER BY {order})")

    def current(where: str) -> str:
        return (f"SELECT * EXCLUDE (_rn) FROM (SELECT f.*, {latest} AS _rn FROM {db}{t} f "
                f"LEFT JOIN {retracted} r ON r.payload_id = f._payload_id WHERE {where}) WHERE _rn = 1 AND NOT er_slettet")

    as_of = (f"CREATE OR REPLACE MACRO {db}{t}_as_of(d) AS TABLE "
             + current("f.indlaest_dato <= d AND (r.indlaest_dato IS NULL OR r.indlaest_dato > d)"))
    # the current state is a table kept in step by each load (refresh_aktuel), so analysts and the nightly
    # models read one row per record instead of windowing every version of the history
    aktuel = f"CREATE TABLE IF NOT EXISTS {db}{t}_aktuel AS " + current("r.indlaest_dato IS NULL")
    out = [historik, as_of, aktuel]
    if "person_key" in [col for col in _fact_columns(c)]:
        out.append(f"CREATE OR REPLACE TEMP MACRO {t}_aktuel_personer() AS TABLE SELECT * FROM {db}{t}_aktuel "
                   "WHERE person_key IN (SELECT person_key FROM affected_persons)")
    return out


def refresh_aktuel(con: duckdb.DuckDBPyConnection, dataset: str, full: bool) -> None:
    """Bring ``<fct>_aktuel`` in step: the records this load touched (new versions, retracted payloads)
    are replaced by their current version; ``full`` rebuilds the table (new columns, new definition)."""
    c = get_contract(dataset)
    t = fct_name(c)
    db = "restricted." if is_restricted(c) else ""
    retracted = "restricted.meta_retracted" if db else "meta.retracted_payload"
    k0 = (c.record_key or ["besked_id"])[0]
    keys = ", ".join("f." + k for k in (c.record_key or ["besked_id"]))
    order = VERSION_ORDER.replace(",", " DESC,") + " DESC"

    def current(where: str) -> str:
        return (f"SELECT * EXCLUDE (_rn) FROM (SELECT f.*, row_number() OVER (PARTITION BY {keys} ORDER BY {order}) "
                f"AS _rn FROM {db}{t} f LEFT JOIN {retracted} r ON r.payload_id = f._payload_id WHERE {where}) "
                "WHERE _rn = 1 AND NOT er_slettet")

    if full:
        con.execute(f"CREATE OR REPLACE TABLE {db}{t}_aktuel AS " + current("r.indlaest_dato IS NULL"))
        return
    load_id = "getvariable('load_id')"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _touched AS
        SELECT DISTINCT {k0} FROM {db}{t} WHERE load_id = {load_id}
        UNION SELECT DISTINCT f.{k0} FROM {db}{t} f JOIN {retracted} r ON r.payload_id = f._payload_id
        WHERE r.indlaest_dato = getvariable('load_date')""")
    con.execute(f"DELETE FROM {db}{t}_aktuel WHERE {k0} IN (SELECT {k0} FROM _touched)")
    con.execute(f"INSERT INTO {db}{t}_aktuel BY NAME "
                + current(f"r.indlaest_dato IS NULL AND f.{k0} IN (SELECT {k0} FROM _touched)"))


def _fact_columns(c) -> list[str]:
    return ["person_key"] if any(f.name == "cpr" for f in c.fields) else []


def _affected(con: duckdb.DuckDBPyConnection, load_date: dt.date) -> tuple[int, int]:
    """Temp tables ``affected_persons``, ``affected_person_maaneder`` / ``affected_maaneder`` (months whose
    statistics changed) and ``changed_old`` / ``changed_new`` (the state spells this load changed)."""
    parts = []
    for ds in PERSON_SCOPE_DATASETS:
        c = get_contract(ds)
        parts.append(f"SELECT person_key FROM staging.{stg_name(c)}")
        # persons only in a payload retracted by this load lose rows without arriving in staging
        parts.append(f"SELECT person_key FROM {fct_name(c)} WHERE _payload_id IN (SELECT payload_id FROM "
                     "meta.retracted_payload WHERE load_id = getvariable('load_id'))")
    con.execute("CREATE OR REPLACE TEMP TABLE affected_persons AS SELECT DISTINCT person_key FROM ("
                + " UNION ALL ".join(parts) + ") WHERE person_key IS NOT NULL")
    # Months whose state statistics changed, per person: for each spell this load changed, the days covered
    # by exactly one of its version before the load and its version after it (both whole when its kommune,
    # group or person changed).  The two versions are kept (changed_old, changed_new) for the statistics'
    # delta (stats.maintain_ydelser).  "Before the load" is by load_id, so two loads on one day are two steps.
    c = get_contract(STATE_DATASET)
    key = c.record_key[0]
    t = fct_name(c)
    end_open = f"last_day(DATE '{load_date.isoformat()}')"
    lid = "getvariable('load_id')"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE changed_keys AS
        SELECT DISTINCT {key} FROM {t} WHERE load_id = {lid}
        UNION SELECT DISTINCT f.{key} FROM {t} f JOIN meta.retracted_payload r ON r.payload_id = f._payload_id
              WHERE r.load_id = {lid}""")
    order = VERSION_ORDER.replace(",", " DESC,") + " DESC"

    def current_changed(where: str) -> str:
        # the as-of rule of history_views_sql, over the changed records only
        return (f"SELECT * EXCLUDE (_rn) FROM (SELECT f.*, row_number() OVER (PARTITION BY f.{key} ORDER BY {order}) "
                f"AS _rn FROM {t} f LEFT JOIN meta.retracted_payload r ON r.payload_id = f._payload_id "
                f"WHERE f.{key} IN (SELECT {key} FROM changed_keys) AND {where}) WHERE _rn = 1 AND NOT er_slettet")

    con.execute("CREATE OR REPLACE TEMP TABLE changed_new AS " + current_changed("r.payload_id IS NULL"))
    con.execute("CREATE OR REPLACE TEMP TABLE changed_old AS " + current_changed(
        f"f.load_id IS DISTINCT FROM {lid} AND (r.payload_id IS NULL OR r.load_id = {lid})"))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE affected_person_maaneder AS
        WITH pairs AS (
            SELECT o.person_key AS p1, o.gyldig_fra AS s1, coalesce(o.gyldig_til, {end_open}) AS e1,
                   o.{key} IS NULL AS o_gone,
                   n.person_key AS p2, n.gyldig_fra AS s2, coalesce(n.gyldig_til, {end_open}) AS e2,
                   n.{key} IS NULL AS n_gone,
                   o.kommunekode IS DISTINCT FROM n.kommunekode OR o.kontaktgruppe IS DISTINCT FROM n.kontaktgruppe
                       OR o.person_key IS DISTINCT FROM n.person_key AS moved
            FROM changed_new n FULL JOIN changed_old o ON n.{key} = o.{key}
        ), ranges AS (
            SELECT p1 AS p, s1 AS a, e1 AS b FROM pairs WHERE NOT o_gone AND (n_gone OR moved)
            UNION ALL SELECT p2, s2, e2 FROM pairs WHERE NOT n_gone AND (o_gone OR moved)
            UNION ALL SELECT p2, least(s1, s2), greatest(s1, s2) FROM pairs
                      WHERE NOT o_gone AND NOT n_gone AND NOT moved AND s1 <> s2
            UNION ALL SELECT p2, least(e1, e2), greatest(e1, e2) FROM pairs
                      WHERE NOT o_gone AND NOT n_gone AND NOT moved AND e1 <> e2
        )
        SELECT DISTINCT p AS person_key, CAST(date_trunc('month', m) AS DATE) AS maaned
        FROM ranges, generate_series(date_trunc('month', a), date_trunc('month', least(b, {end_open})),
                                     INTERVAL 1 MONTH) AS g(m)
        WHERE p IS NOT NULL AND a IS NOT NULL AND b IS NOT NULL AND a <= b""")
    con.execute("CREATE OR REPLACE TEMP TABLE affected_maaneder AS "
                "SELECT DISTINCT maaned FROM affected_person_maaneder")
    np = con.execute("SELECT count(*) FROM affected_persons").fetchone()[0]
    nm = con.execute("SELECT count(*) FROM affected_maaneder").fetchone()[0]
    return np, nm


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


RUNNERS = ("sql", "dbt")


def default_runner() -> str:
    """The nightly load's runner: ``DSDW_WAREHOUSE_RUNNER`` (``sql`` or ``dbt``), else ``sql``.

    dbt builds the same warehouse (bench/compare_runners.py: every relation equal) but a night costs more than
    the issue's 1.2x of the sql runner (docs/warehouse.md, "Cost"), so the switch stays behind this flag; it
    also selects the Dagster definitions (``@dbt_assets`` instead of ``warehouse_load``)."""
    runner = os.environ.get("DSDW_WAREHOUSE_RUNNER", "sql") or "sql"
    if runner not in RUNNERS:
        raise ValueError(f"DSDW_WAREHOUSE_RUNNER={runner!r} not one of {RUNNERS}")
    return runner


def load_warehouse(root: Path, load_date: dt.date, *, publish: bool = True, models_dir: Path = MODELS_DIR,
                   runner: str | None = None, statistics: bool = True) -> LoadResult:
    """Load everything new in the lake up to ``load_date`` with transaction date ``load_date``.

    ``statistics=False`` skips the post-model hooks (the suppressed publication and its vintage log) for
    tests of the marts themselves; the next load with statistics republishes every year not yet published.

    A failed load leaves no trace: the build database is restored from the last
    published one and the restricted database is only sealed again on success.
    ``runner="dbt"`` builds every model with dbt (pipelines.warehouse.dbt_runner); None: :func:`default_runner`.
    """
    runner = runner or default_runner()
    if runner not in RUNNERS:
        raise ValueError(f"runner {runner!r} not one of {RUNNERS}")
    if runner == "dbt":
        from pipelines.warehouse.dbt_runner import load_warehouse_dbt

        return load_warehouse_dbt(root, load_date, publish=publish, models_dir=models_dir, statistics=statistics)
    root = Path(root)
    t0 = time.perf_counter()
    load_id = f"{load_date.isoformat()}-{uuid.uuid4().hex[:8]}"
    res = LoadResult(load_id=load_id, indlaest_dato=load_date)
    key = load_key("pseudonym")
    ipad, opad = hmac_pads(key)
    models = load_models(models_dir)
    order = build_order(models)
    _register_hooks()
    build = build_path(root)
    build.parent.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    con = duckdb.connect(str(build))
    ok = False
    try:
        tr = time.perf_counter()
        with open_restricted(root, con, write=True):
            res.step_seconds["restricted_unseal"] = time.perf_counter() - tr
            _setup(con, load_date, load_id)
            last = con.execute("SELECT max(indlaest_dato) FROM meta.load").fetchone()[0]
            if last is not None and load_date < last:
                raise WarehouseError(f"load date {load_date} is before the last load {last}: "
                                     "transaction time only moves forward")
            _run_load(con, root, load_date, load_id, order, res, key, ipad, opad, statistics)
            res.seconds = time.perf_counter() - t0
            con.execute("INSERT INTO meta.load VALUES (?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?)", [
                load_id, load_date, started, key_id(key), res.payloads, sum(res.rows_staged.values()),
                res.rows_deduplicated, res.affected_persons, res.affected_maaneder, res.seconds])
            con.executemany("INSERT INTO meta.model_run VALUES (?, ?, ?, ?, ?)", [
                [load_id, n, models[n].materialization, res.model_rows.get(n), s]
                for n, s in res.model_seconds.items()])
            tc = time.perf_counter()
            con.execute("CHECKPOINT")
            res.step_seconds["checkpoint"] = time.perf_counter() - tc
            tr = time.perf_counter()
        res.step_seconds["restricted_seal"] = time.perf_counter() - tr
        ok = True
    finally:
        con.close()
        if not ok:
            _restore(root, build)
    if publish:
        tp = time.perf_counter()
        res.published = _publish(root, build)
        res.publish_seconds = time.perf_counter() - tp
    res.seconds = time.perf_counter() - t0
    return res


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


def _column_count(con: duckdb.DuckDBPyConnection, qualified: str) -> int:
    return len(con.execute(f"DESCRIBE {qualified}").fetchall())


def _run_load(con: duckdb.DuckDBPyConnection, root: Path, load_date: dt.date, load_id: str, order: list[Model],
              res: LoadResult, key: bytes, ipad: bytes, opad: bytes, statistics: bool = True) -> None:
    new = _new_payloads(root, con, load_date)
    res.payloads = len(new)
    by_ds: dict[str, list[dict]] = {}
    for p in new:
        by_ds.setdefault(p["dataset"], []).append(p)
    res.retracted = _retract(con, new, load_date, load_id)
    values = {"ipad": ipad, "opad": opad, "load_date": load_date, "load_id": load_id}
    contracts = load_contracts()
    existing = _existing(con)
    # the persistent access views are replaced only when their definitions change (or a column was added)
    views = {ds: history_views_sql(ds) for ds in contracts}
    digest = hashlib.sha256("\n".join(x for v in views.values() for x in v).encode()).hexdigest()
    views_stale = con.execute("SELECT count(*) FROM meta.schema_state WHERE name = 'history_views' AND digest = ?",
                              [digest]).fetchone()[0] == 0
    definitions_changed = views_stale
    views_as_views = {(f"restricted.{v}" if d == "restricted" else v) for d, v in con.execute(
        "SELECT database_name, view_name FROM duckdb_views() WHERE view_name LIKE 'fct%\\_aktuel' ESCAPE '\\'"
    ).fetchall()}
    scope_ready = False
    # increments and facts first: the affected scope of the derived models is known only after them; derived
    # append models (marts) run with the derived models, in dependency order (mart_overgange_bidrag reads the panel)
    first = [m for m in order if m.materialization == "increment" or (m.materialization == "append" and m.layer != "mart")]
    order = first + [m for m in order if m not in first]
    for m in order:
        tm = time.perf_counter()
        if m.materialization == "increment":
            ds = m.name.split("__", 1)[1]
            payloads = by_ds.get(ds, [])
            _register_increment(con, ds, payloads)
            if payloads:
                _add_persons(con, contracts[ds], load_date, key, ipad, opad)
            n = _run_model(con, m, values, existing)
            res.rows_staged[ds] = n
            res.rows_lake[ds] = sum(int(p["rows_accepted"] or 0) for p in payloads)
            per = dict(con.execute(f"SELECT _payload_id, count(*) FROM {m.qualified} GROUP BY 1").fetchall())
            record_payloads(con, ds, payloads, per, load_date, load_id)
            con.unregister("inc_empty")
        elif m.materialization == "append":
            ds = m.name.removeprefix("fct_")
            cols_changed = False
            if m.layer == "core" and m.qualified in existing and not res.rows_staged.get(ds):
                n = 0  # nothing staged for this fact in this load
            else:
                cols_before = _column_count(con, m.qualified) if m.qualified in existing else None
                n = _run_model(con, m, values, existing)
                cols_changed = cols_before is not None and cols_before != _column_count(con, m.qualified)
                views_stale = views_stale or cols_changed
            aktuel = f"{'restricted.' if m.database == 'restricted' else ''}{m.name}_aktuel"
            if ds in views and aktuel in views_as_views:
                con.execute(f"DROP VIEW {aktuel}")  # a database from before the current state was a table
                views_as_views.discard(aktuel)
            for stmt in views.get(ds, []):
                if views_stale or " TEMP MACRO " in stmt or (" TABLE IF NOT EXISTS " in stmt and aktuel not in existing):
                    con.execute(stmt)
            if ds in views:
                if aktuel not in existing:
                    existing.add(aktuel)  # just created from the whole fact
                elif definitions_changed or cols_changed:
                    refresh_aktuel(con, ds, full=True)
                elif n or res.retracted:
                    refresh_aktuel(con, ds, full=False)
        else:
            if not scope_ready:
                res.affected_persons, res.affected_maaneder = _affected(con, load_date)
                scope_ready = True
            n = _run_model(con, m, values, existing)
        res.model_rows[m.name] = n
        res.model_seconds[m.name] = time.perf_counter() - tm
    if views_stale:
        # a view stored before a column was added would not show it: replace them all once more
        for stmt in (x for v in views.values() for x in v):
            con.execute(stmt)
        con.execute("DELETE FROM meta.schema_state WHERE name = 'history_views'")
        con.execute("INSERT INTO meta.schema_state VALUES ('history_views', ?)", [digest])
    if not scope_ready:
        res.affected_persons, res.affected_maaneder = _affected(con, load_date)
    ensure_person_indexes(con, order)
    for hook in POST_MODEL_HOOKS if statistics else []:
        th = time.perf_counter()
        hook(con, res)
        res.hook_seconds[hook.__name__] = time.perf_counter() - th
    _attach_quality(con, root, {dt.date.fromisoformat(p["leveringsdato"]) for p in new} | {load_date})
