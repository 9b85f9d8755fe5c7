"""One-pass full rebuild of the dbt models from the whole lake (``dsdw warehouse rebuild --target duckdb|spark``).

The nightly load stages one night's payloads and appends them to the facts; a model change or a new engine
would otherwise replay every night. A rebuild runs ``dbt run --full-refresh --vars '{full_lake: true}'`` once:
staging reads every lake file at once and each payload gets the load that brought it in from a *load plan*
(``meta.load_plan``), so the bitemporal versions (``indlaest_dato``, ``load_id``), the current state and the
history views come out as the nightly loads made them, computed in one pass.

The plan: the ledger's payloads that reached the lake, each with the load of the warehouse's
``meta.loaded_payload`` when a warehouse exists (a rebuild after a model change reproduces its loads, load ids
included); without one, each payload on the day that offered it (a daily schedule, :func:`_ledger_nights`; a
payload superseded by a correction offered on a later day is planned from the lake's archive, one superseded the
same day is left out, as it never reached a night). Retractions follow the ledger's
``supersedes`` chain: a payload in the plan superseding one loaded before retracts it at its own load.

Targets: ``duckdb`` writes a new analysts' database and a sealed restricted one (in ``out``); ``spark`` builds the
analysts' models as Parquet tables in ``out/tables/<schema>.db/<model>`` (pipelines/warehouse/spark.py; the
restricted models are not built there, see docs/scale-out.md) and publishes the statistics into
``out/published.duckdb``.  Both then run the publication step (small-cell suppression) once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.contracts import REFERENCE_DIR, get_contract
from pipelines.landing.ledger import read_only
from pipelines.warehouse import build as B
from pipelines.warehouse.clustering import sort_by_person
from pipelines.warehouse.dbt_runner import (
    LOAD_SQL,
    PROJECT_DIR,
    Outcome,
    _env,
    _release_duckdb,
    dbt_outcome,
    retry_in_buckets,
)
from pipelines.warehouse.generate import is_restricted
from pipelines.warehouse.keys import hmac_pads, key_id, load_key

TARGETS = ("duckdb", "spark")
# lake_path: where the payload's rows are now (its lake file, or the archive's copy once a correction superseded it:
# ingest.archive_payload_files); archived: the latter (the models read the archive only for datasets that have one)
PLAN_SCHEMA = pa.schema([("payload_id", pa.string()), ("dataset", pa.string()), ("lake_path", pa.string()),
                         ("load_id", pa.string()), ("indlaest_dato", pa.date32()), ("archived", pa.bool_())])
# meta.load and meta.model_run as the nightly load writes them (build.META_SQL): a rebuild writes one meta.load row
# per planned load *after* its models ran, as a night does (models reading meta.load see the loads before theirs)
LOAD_SCHEMA = pa.schema([("load_id", pa.string()), ("indlaest_dato", pa.date32()), ("started_at", pa.timestamp("us", "UTC")),
                         ("finished_at", pa.timestamp("us", "UTC")), ("pseudonym_key_id", pa.string()),
                         ("payloads", pa.int32()), ("rows_staged", pa.int64()), ("rows_deduplicated", pa.int64()),
                         ("affected_persons", pa.int64()), ("affected_maaneder", pa.int32()), ("seconds", pa.float64())])
MODEL_RUN_SCHEMA = pa.schema([("load_id", pa.string()), ("model", pa.string()), ("materialization", pa.string()),
                              ("rows", pa.int64()), ("seconds", pa.float64())])
# meta.loaded_payload (build.META_SQL): empty on Spark when the plan comes from the ledger, as in a new DuckDB
LOADED_PAYLOAD_SCHEMA = pa.schema([("payload_id", pa.string()), ("dataset", pa.string()), ("reporter", pa.string()),
                                   ("leveringsdato", pa.date32()), ("indlaest_dato", pa.date32()),
                                   ("load_id", pa.string()), ("rows_lake", pa.int64()), ("rows_staged", pa.int64()),
                                   ("modtaget_tidspunkt", pa.timestamp("us", "UTC"))])
RETRACTED_SCHEMA = pa.schema([("payload_id", pa.string()), ("dataset", pa.string()), ("superseded_by", pa.string()),
                              ("indlaest_dato", pa.date32()), ("load_id", pa.string())])


@dataclasses.dataclass
class Plan:
    """Which load brought each payload in, and which payloads later loads retracted."""

    payloads: list[dict]
    retracted: list[dict]
    source: str  # "warehouse" (its meta.loaded_payload) or "ledger" (a daily schedule)
    loaded_payload: pa.Table | None = None  # the warehouse's meta.loaded_payload rows of the plan (receive times)

    @property
    def missing_files(self) -> list[str]:
        """Planned payloads whose rows are neither in the lake nor in its archive (a lake written before ingestion
        archived superseded payloads): :func:`rebuild` refuses such a plan rather than build without the versions
        they brought."""
        return [p["payload_id"] for p in self.payloads if not Path(p["lake_path"]).exists()]

    def tables(self) -> dict[str, pa.Table]:
        """The load's meta tables for a full_lake build (load_increment = every planned payload; the warehouse's
        loaded_payload rows when the plan came from one, for models reading receive times)."""
        plan = pa.Table.from_pylist(self.payloads, schema=PLAN_SCHEMA)
        extra = {"loaded_payload": self.loaded_payload} if self.loaded_payload is not None else {}
        last = max(self.payloads, key=lambda p: (p["indlaest_dato"], p["load_id"])) if self.payloads else None
        return {
            "load_plan": plan,
            "load_increment": plan.select(["payload_id", "dataset", "lake_path"]),
            "current_load": pa.Table.from_pylist(
                [{"load_id": last["load_id"], "indlaest_dato": last["indlaest_dato"]}] if last else [],
                schema=pa.schema([("load_id", pa.string()), ("indlaest_dato", pa.date32())])),
            "retracted_payload": pa.Table.from_pylist(
                [r for r in self.retracted if not is_restricted(get_contract(r["dataset"]))], schema=RETRACTED_SCHEMA),
            **extra,
        }

    def loads(self) -> pa.Table:
        """meta.load's rows of the planned loads (the load id and date; the night's counters are not known)."""
        by_load: dict[str, dict] = {}
        for p in self.payloads:
            r = by_load.setdefault(p["load_id"], {"load_id": p["load_id"], "indlaest_dato": p["indlaest_dato"],
                                                  "payloads": 0})
            r["payloads"] += 1
        return pa.Table.from_pylist(sorted(by_load.values(), key=lambda r: (r["indlaest_dato"], r["load_id"])),
                                    schema=LOAD_SCHEMA)


def load_plan(root: Path) -> Plan:
    """The plan from the ledger and, when it exists, the published warehouse's loads (module docstring)."""
    root = Path(root)
    with read_only(root / "ledger.sqlite") as lc:
        rows = lc.execute("SELECT payload_id, dataset, leveringsdato, lake_path, supersedes, status, "
                          "coalesce(arrived, leveringsdato) FROM payloads "
                          "WHERE status IN ('loaded', 'superseded') AND lake_path IS NOT NULL").fetchall()
    ledger = {r[0]: {"payload_id": r[0], "dataset": r[1], "leveringsdato": dt.date.fromisoformat(r[2]),
                     "lake_path": r[3], "supersedes": r[4], "status": r[5], "offered": dt.date.fromisoformat(r[6])}
              for r in rows}
    loads: dict[str, tuple[str, dt.date]] = {}
    pub = B.published_path(root)
    loaded_payload = None
    if pub.exists():
        con = duckdb.connect(str(pub), read_only=True)
        try:
            loaded_payload = con.sql("SELECT * FROM meta.loaded_payload ORDER BY payload_id").to_arrow_table()
            loads = {p: (lid, d) for p, lid, d in con.execute(
                "SELECT payload_id, load_id, indlaest_dato FROM meta.loaded_payload").fetchall()}
        finally:
            con.close()
        source = "warehouse"
    else:
        source = "ledger"
        loads = {p: (f"{d.isoformat()}-rebuild", d) for p, d in _ledger_nights(root, ledger).items()}
    payloads = sorted(({"payload_id": p, "dataset": ledger[p]["dataset"],
                        **_where(root, ledger[p]["lake_path"], ledger[p]["status"]),
                        "load_id": lid, "indlaest_dato": d} for p, (lid, d) in loads.items() if p in ledger),
                      key=lambda x: (x["indlaest_dato"], x["dataset"], x["payload_id"]))
    retracted = []
    for p in payloads:
        old = ledger[p["payload_id"]]["supersedes"]
        while old and old not in loads and old in ledger:  # superseded again before a load: its loaded ancestor
            old = ledger[old]["supersedes"]
        if old and old in loads and loads[old][1] < p["indlaest_dato"]:
            retracted.append({"payload_id": old, "dataset": p["dataset"], "superseded_by": p["payload_id"],
                              "indlaest_dato": p["indlaest_dato"], "load_id": p["load_id"]})
    return Plan(payloads, retracted, source, loaded_payload)


def _ledger_nights(root: Path, ledger: dict[str, dict]) -> dict[str, dt.date]:
    """Without a warehouse: each payload's night is the day that offered it (a late file's folder day, else its
    leveringsdato), as a daily load after each day's ingestion takes it. A superseded payload is planned when the
    payload that superseded it was offered on a later day (a night loaded it first, and the correction retracts it)
    and its file is in the lake's archive; one superseded the same day never reached a night (a lake from before
    the archive: left out, as if corrected before the night)."""
    successor = {r["supersedes"]: p for p, r in ledger.items() if r["supersedes"]}

    def reached_a_night(p: str, r: dict) -> bool:
        nxt = ledger.get(successor.get(p, ""))
        return nxt is not None and nxt["offered"] > r["offered"] and _where(root, r["lake_path"], r["status"])["archived"]

    return {p: r["offered"] for p, r in ledger.items() if r["status"] == "loaded" or reached_a_night(p, r)}


def _where(root: Path, lake_path: str, status: str) -> dict[str, Any]:
    """A planned payload's rows: its lake file, or once superseded the lake archive's copy of it."""
    from pipelines.lake.write import archive_path

    if status == "superseded" and not Path(lake_path).exists():
        arch = archive_path(root, lake_path)
        if arch.exists():
            return {"lake_path": str(arch), "archived": True}
    return {"lake_path": lake_path, "archived": False}


@dataclasses.dataclass
class RebuildResult:
    target: str
    out: Path
    plan_source: str
    payloads: int
    loads: int
    models: dict[str, float] = dataclasses.field(default_factory=dict)  # model -> seconds
    step_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    published: int = 0  # rows of mart_ydelser_publiceret


def carry_publications(con: duckdb.DuckDBPyConnection, nightly: Path | None) -> int:
    """Copy the nightly warehouse's publication record (the published mart, the vintage log, every vintage's cells
    and true figures) into the rebuilt database; returns the vintages carried.

    Why: a publication is history, not a model of the lake.  What was published on day D stays what it was, and an
    attacker holds every earlier vintage, so a rebuild must not start a fresh series: its publication step then
    republishes only the periods whose figures moved, as a new vintage audited against the earlier ones (a model
    change that moves figures is published like a correction), and keeps the rest -- a preliminary month waiting
    for its weekly republication included (publication.KADENCE_FORELOEBIG)."""
    from pipelines.warehouse.publication import GRUNDLAG, HISTORIK, LOG
    from pipelines.warehouse.suppression import PUBLISHED

    if nightly is None or not Path(nightly).is_file():
        return 0
    path = str(nightly).replace("'", "''")
    con.execute(f"ATTACH '{path}' AS nightly_pub (READ_ONLY)")
    try:
        have = {f"{s}.{t}" if s != "main" else t for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'nightly_pub'").fetchall()}
        if LOG not in have or PUBLISHED not in have:
            return 0
        con.execute("CREATE SCHEMA IF NOT EXISTS meta")
        for t in (PUBLISHED, LOG, GRUNDLAG, HISTORIK):
            if t in have:
                con.execute(f"CREATE OR REPLACE TABLE {t} AS SELECT * FROM nightly_pub.{t}")
        return int(con.execute(f"SELECT count(*) FROM {LOG}").fetchone()[0])
    finally:
        con.execute("DETACH nightly_pub")


def publish(con: duckdb.DuckDBPyConnection, plan: Plan, nightly: Path | None = None) -> int:
    """The published statistics (``mart_ydelser_publiceret``, small-cell suppression) from the rebuilt marts: the
    nightly load's publication step, run once for the last load, after the nightly warehouse's publication record
    (``nightly``, when it exists) is carried over (:func:`carry_publications`)."""
    from types import SimpleNamespace

    from pipelines.warehouse.suppression import publish_suppressed

    carry_publications(con, nightly)
    last = plan.tables()["current_load"].to_pylist()
    # the attributes publication.publish/record read of a nightly LoadResult (load_id, indlaest_dato)
    result = SimpleNamespace(load_id=last[0]["load_id"] if last else None,
                             indlaest_dato=last[0]["indlaest_dato"] if last else None)
    return publish_suppressed(con, result)


def publish_from_spark(session: Any, out: Path, plan: Plan, nightly: Path | None = None) -> int:
    """``out/published.duckdb``: the analysts' DuckDB filled from Spark's outputs for the publication step -- the
    statistics' computation (Parquet) and its full grid (a Spark view, collected) -- and the published statistics
    suppressed there, as the nightly load publishes (the suppression is a solver in this process, not SQL)."""
    from pipelines.warehouse import spark as S

    db = out / "published.duckdb"
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    try:
        loc = S.table_location(out / "tables", "main", "mart_ydelser_beregning")
        con.execute(f"CREATE TABLE mart_ydelser_beregning AS SELECT * FROM read_parquet('{loc}/*.parquet')")
        con.execute("CREATE SCHEMA spark")
        con.register("grid_arrow", session.table("main.mart_ydelser_fuld").toArrow())
        con.execute("CREATE TABLE spark.mart_ydelser_fuld AS SELECT * FROM grid_arrow")
        con.unregister("grid_arrow")
        con.execute("CREATE VIEW mart_ydelser_fuld AS SELECT * FROM spark.mart_ydelser_fuld")
        return publish(con, plan, nightly)
    finally:
        con.close()


def default_out(root: Path, target: str) -> Path:
    return Path(root) / "warehouse" / f"rebuild-{target}"


def _dbt_run(target: str, target_path: Path, env: dict[str, str], select: list[str] | None = None) -> dict:
    """``dbt run --full-refresh --vars '{full_lake: true}'`` in this process; ``{model: seconds}``."""
    from dbt.cli.main import dbtRunner

    args = ["run", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR), "--target", target,
            "--target-path", str(target_path), "--log-path", str(target_path), "--quiet", "--full-refresh",
            "--vars", json.dumps({"full_lake": True})]
    if select:
        args += ["--select", *select]
    # every model: the derived ones (dims, panel, marts) take their first-build branch, the scope models every
    # person (full_lake); what differs from the nightly warehouse by design: nightly_differences
    # a person-bucket model out of memory is rerun in more buckets, as on a night (DuckDB only: the person_spand
    # materialization is DuckDB's)
    def once(e: dict[str, str], x: tuple[str, ...]) -> Outcome:
        with _env({**e, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}):
            try:
                return dbt_outcome(dbtRunner().invoke(list(x)))
            finally:
                if target == "duckdb":
                    _release_duckdb()

    nodes = retry_in_buckets(once, env, args, f"dbt rebuild ({target})")
    return {uid.split(".")[2]: secs for uid, (_status, secs, _rows) in nodes.items()}


def _persons(con: duckdb.DuckDBPyConnection, plan: Plan, key: bytes) -> None:
    """``restricted.person`` for every CPR of the planned payloads (first seen at its first load), in SQL with
    the HMAC pads as parameters, as the nightly load's ledger step does."""
    ipad, opad = hmac_pads(key)
    con.register("plan_arrow", plan.tables()["load_plan"])
    con.execute("CREATE OR REPLACE TEMP TABLE plan AS SELECT * FROM plan_arrow")
    con.unregister("plan_arrow")
    by_ds: dict[str, list[dict]] = {}
    for p in plan.payloads:
        by_ds.setdefault(p["dataset"], []).append(p)
    for ds, payloads in sorted(by_ds.items()):
        c = get_contract(ds)
        cols = [f.name for f in c.fields if f.type == "cpr"]
        if not cols:
            continue
        B._register_increment(con, ds, payloads)
        for col in cols:
            con.execute(f"""INSERT INTO restricted.person
                SELECT cpr, dsdw_hmac(cpr, $ipad, $opad), d, $kid FROM (
                  SELECT i.{col} AS cpr, min(p.indlaest_dato) AS d FROM inc i JOIN plan p ON p.payload_id = i._payload_id
                  WHERE i.{col} IS NOT NULL GROUP BY 1)
                WHERE cpr NOT IN (SELECT cpr FROM restricted.person)""",
                        {"ipad": ipad, "opad": opad, "kid": key_id(key)})
        con.unregister("inc_empty")


def rebuild_duckdb(root: Path, out: Path, plan: Plan, res: RebuildResult, select: list[str] | None = None) -> None:
    """A new analysts' database ``out/warehouse.duckdb`` and the sealed ``out/restricted/`` one."""
    from pipelines.warehouse.restricted import remove_sealed, unsealed

    db = out / "warehouse.duckdb"
    db.unlink(missing_ok=True)
    key = load_key("pseudonym")
    remove_sealed(out)
    with unsealed(out, write=True) as plain:  # sealed to out/restricted/sealed/, in memory meanwhile
        t = time.perf_counter()
        con = duckdb.connect(str(db))
        try:
            con.execute(f"ATTACH '{plain}' AS restricted")
            for s in B.META_SQL + B.RESTRICTED_SQL + LOAD_SQL:
                con.execute(s)
            con.execute(B.HMAC_MACRO_SQL)
            tables = plan.tables()
            for name, tbl in tables.items():
                con.register("t_arrow", tbl)
                if name == "loaded_payload":  # keeps its schema (META_SQL)
                    con.execute("INSERT INTO meta.loaded_payload BY NAME SELECT * FROM t_arrow")
                else:
                    con.execute(f"CREATE OR REPLACE TABLE meta.{name} AS SELECT * FROM t_arrow")
                con.unregister("t_arrow")
            rows = [[r["payload_id"], r["indlaest_dato"]] for r in plan.retracted
                    if is_restricted(get_contract(r["dataset"]))]
            if rows:
                con.executemany("INSERT INTO restricted.meta_retracted VALUES (?, ?)", rows)
            _persons(con, plan, key)
            con.execute("CHECKPOINT")
            con.execute("CHECKPOINT restricted")
        finally:
            con.close()
        res.step_seconds["prepare"] = time.perf_counter() - t
        t = time.perf_counter()
        res.models = _dbt_run("duckdb", out / "dbt_target", {
            "DSDW_DBT_DATABASE": str(db), "DSDW_DBT_RESTRICTED": str(plain), "DSDW_LAKE": str(Path(root) / "lake"),
            "DSDW_REFERENCE_DIR": str(REFERENCE_DIR)},
            select)
        res.step_seconds["dbt_run"] = time.perf_counter() - t
        t = time.perf_counter()
        con = duckdb.connect(str(db))
        try:
            con.register("t_arrow", plan.loads())
            con.execute("INSERT INTO meta.load BY NAME SELECT * FROM t_arrow")
            con.unregister("t_arrow")
            last = con.execute("SELECT max(indlaest_dato) FROM meta.load").fetchone()[0]
            if last is not None:  # as the nightly load leaves them: the person tables sorted by person_key
                ts = time.perf_counter()
                sort_by_person(con, last)
                res.step_seconds["sort_by_person"] = time.perf_counter() - ts
            if select is None:
                res.published = publish(con, plan, B.published_path(root))
        finally:
            con.close()
        res.step_seconds["publish"] = time.perf_counter() - t


def rebuild_spark(root: Path, out: Path, plan: Plan, res: RebuildResult, master: str | None = None,
                  select: list[str] | None = None, threads: int | None = None, **session_kw: Any) -> None:
    """The analysts' models as Parquet tables under ``out/tables`` (a Spark session in this process)."""
    from pipelines.warehouse import spark as S

    t = time.perf_counter()
    tables_dir = out / "tables"
    # a full refresh: the catalog is the session's (in memory), so a former run's files would block the names
    shutil.rmtree(tables_dir, ignore_errors=True)
    session = S.spark_session(tables_dir, master, **session_kw)
    res.step_seconds["spark_session"] = time.perf_counter() - t
    datasets = S.lake_views(session, root)
    res.step_seconds["lake_views"] = time.perf_counter() - t - res.step_seconds["spark_session"]
    tp = time.perf_counter()
    S.register_pseudonyms(session, load_key("pseudonym"), datasets)
    res.step_seconds["pseudonyms"] = time.perf_counter() - tp
    tp = time.perf_counter()
    S.write_tables(session, "meta", {"loaded_payload": LOADED_PAYLOAD_SCHEMA.empty_table(), **plan.tables(),
                                     "load": LOAD_SCHEMA.empty_table(), "model_run": MODEL_RUN_SCHEMA.empty_table()})
    S.reference_views(session)
    res.step_seconds["meta_tables"] = time.perf_counter() - tp
    res.step_seconds["prepare"] = time.perf_counter() - t
    t = time.perf_counter()
    env = {"DSDW_SPARK_MASTER": S.master_url(master), "DSDW_LAKE": str(Path(root) / "lake")}
    if threads:
        env["DSDW_SPARK_THREADS"] = str(threads)
    res.models = _dbt_run("spark", out / "dbt_target", env, select)
    res.step_seconds["dbt_run"] = time.perf_counter() - t
    S.write_tables(session, "meta", {"load": plan.loads()})
    if select is None:
        t = time.perf_counter()
        res.published = publish_from_spark(session, out, plan, B.published_path(root))
        res.step_seconds["publish"] = time.perf_counter() - t


def spark_prerequisites() -> None:
    """Refuse the spark target at once, saying what to install, when its parts are missing: pyspark and dbt-spark
    (the optional ``spark`` extra) and a Java runtime (else the first the user sees is a Java gateway's stack trace
    after the plan was read)."""
    import importlib.util
    import os
    import shutil as sh

    def absent(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is None
        except ModuleNotFoundError:  # a parent package is missing
            return True

    missing = [m for m, mod in (("pyspark", "pyspark"), ("dbt-spark", "dbt.adapters.spark")) if absent(mod)]
    java_home = os.environ.get("JAVA_HOME")
    if not (sh.which("java") or (java_home and Path(java_home, "bin", "java").exists())):
        missing.append("a Java 17 runtime")
    if missing:
        raise B.WarehouseError(
            f"the spark target needs {', '.join(missing)}: pip install -e '.[spark]' (pyspark with Spark's jars, "
            "dbt-spark) and a Java 17 runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; `make test` "
            "installs both)")


def rebuild(root: Path, target: str = "duckdb", out: Path | None = None, *, master: str | None = None,
            select: list[str] | None = None, threads: int | None = None, **session_kw: Any) -> RebuildResult:
    """Rebuild every dbt model of ``target`` from the whole lake of ``root`` into ``out`` in one pass."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
    if target == "spark":
        spark_prerequisites()
    t0 = time.perf_counter()
    root = Path(root)
    out = Path(out) if out else default_out(root, target)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    plan = load_plan(root)
    missing = plan.missing_files
    if missing:  # refused rather than built without the versions those payloads brought
        raise B.WarehouseError(
            f"{len(missing)} planned payload(s) are neither in the lake nor in its archive (e.g. {missing[:3]}): "
            "superseded before ingestion archived superseded payloads' files, so the versions they brought cannot "
            "be rebuilt (docs/scale-out.md)")
    res = RebuildResult(target, out, plan.source, len(plan.payloads), len({p["load_id"] for p in plan.payloads}))
    res.step_seconds["plan"] = time.perf_counter() - t
    if target == "duckdb":
        rebuild_duckdb(root, out, plan, res, select)
    else:
        rebuild_spark(root, out, plan, res, master, select, threads, **session_kw)
    res.seconds = time.perf_counter() - t0
    return res


def table_checksums(database: Path, schemas: tuple[str, ...] = ("main",), names: set[str] | None = None
                    ) -> dict[str, tuple[int, int]]:
    """Per table and view of ``schemas``: (rows, sum of the rows' hashes) over its columns in name order, an
    order-independent checksum of the multiset of rows (the rebuild is compared with the nightly warehouse)."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        rels = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() UNION ALL "
            "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = current_database() "
            "AND NOT internal").fetchall()
        out = {}
        for schema, t in sorted(rels):
            if schema not in schemas or (names is not None and t not in names):
                continue
            cols = [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = "
                                              "current_database() AND schema_name = ? AND table_name = ? "
                                              "ORDER BY column_name", [schema, t]).fetchall()]
            row = ", ".join(f'"{c}"' for c in cols)
            n, h = con.execute(f'SELECT count(*), coalesce(sum(hash({row})::HUGEINT), 0) FROM "{schema}"."{t}"'
                               ).fetchone()
            out[t] = (int(n), int(h))
        return out
    finally:
        con.close()


# What a one-pass rebuild cannot reproduce of a nightly-built derived model, by design (docs/scale-out.md): the load
# that last (re)computed a row.  A night rewrites only the rows its load touched (the affected persons' panel
# weeks, the periods a statistic's delta moved), so those columns carry the night of the last change; a rebuild
# computes every row at its last load.  Every other column is compared.
VINTAGE_COLUMNS: dict[str, tuple[str, ...]] = {
    "fct_person_week": ("indlaest_dato",),
    "mart_ydelser_beregning": ("indlaesning_nr", "horisont"),
    "mart_ydelser": ("indlaesning_nr", "horisont"),
    "mart_ydelser_fuld": ("indlaesning_nr", "horisont"),
    # mart_ydelser_publiceret is compared whole: a rebuild carries the publication record (carry_publications)
}
# Append-only marts of signed per-load contributions (a night adds +1 for what it inserted, -1 for what it
# replaced): the rebuild writes each cell's net count in one contribution, so they are compared net per cell.
SIGNED_MARTS: dict[str, str] = {
    "mart_overgange_bidrag": "antal",
    "mart_panel_bestand_bidrag": "antal",
    "mart_indberetning_ankomst_bidrag": "antal",
    "mart_indberetning_rettidighed_bidrag": "antal",
}
_LOAD_OF_ROW = ("load_id", "indlaest_dato")


def nightly_differences(rebuilt: Path, nightly: Path, names: set[str] | None = None) -> dict[str, tuple]:
    """Tables/views of schema main that differ between a rebuild and the nightly-built warehouse: ``{name: (rows
    rebuilt, rows nightly)}``.  Compared as multisets of rows over all columns, except :data:`VINTAGE_COLUMNS`;
    :data:`SIGNED_MARTS` by their net count per cell."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{rebuilt}' AS r (READ_ONLY)")
        con.execute(f"ATTACH '{nightly}' AS n (READ_ONLY)")

        def rels(db: str) -> set[str]:
            return {t for (t,) in con.execute(
                f"SELECT table_name FROM duckdb_tables() WHERE database_name = '{db}' AND schema_name = 'main' UNION "
                f"SELECT view_name FROM duckdb_views() WHERE database_name = '{db}' AND schema_name = 'main' "
                "AND NOT internal").fetchall()}

        both = rels("r") & rels("n")
        out: dict[str, tuple] = {t: ("missing",) for t in (rels("r") ^ rels("n")) if names is None or t in names}
        for t in sorted(both):
            if names is not None and t not in names:
                continue
            cols = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = 'r' "
                                              "AND schema_name = 'main' AND table_name = ? ORDER BY column_index",
                                              [t]).fetchall()]
            if t in SIGNED_MARTS:
                m = SIGNED_MARTS[t]
                keys = ", ".join(f'"{c}"' for c in cols if c not in (m, *_LOAD_OF_ROW))
                q = "SELECT {k}, sum(\"{m}\") AS net FROM {db}.main.\"{t}\" GROUP BY ALL HAVING sum(\"{m}\") <> 0"
                a, b = (q.format(k=keys, m=m, db=db, t=t) for db in ("r", "n"))
            else:
                sel = ", ".join(f'"{c}"' for c in cols if c not in VINTAGE_COLUMNS.get(t, ()))
                a, b = (f'SELECT {sel} FROM {db}.main."{t}"' for db in ("r", "n"))
            diff = con.execute(f"SELECT count(*) FROM (({a} EXCEPT ALL {b}) UNION ALL ({b} EXCEPT ALL {a}))"
                               ).fetchone()[0]
            if diff:
                out[t] = (con.execute(f"SELECT count(*) FROM ({a})").fetchone()[0],
                          con.execute(f"SELECT count(*) FROM ({b})").fetchone()[0])
        return out
    finally:
        con.close()
