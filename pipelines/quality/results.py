"""Run every check for delivery days and publish the results tables (docs/quality.md).

Generic field checks come from the GX suites in ``expectations/`` (run as DuckDB SQL by
:mod:`pipelines.quality.gx_sql`), the contracts' rules from :mod:`pipelines.quality.rules`.
Results go to ``<root>/dq.duckdb``, built in a temp file and published by atomic rename,
so stewards and reports always read a complete state while a run is going.  Sample keys
are record uuids or message ids, never CPR numbers, names or free text.  Per-record
failures (``dq_failures``) stay in ``<root>/dq_failures.parquet`` beside the lake: the
restricted zone.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.contracts import Contract, load_contracts
from pipelines.fsio import atomic_write
from pipelines.lake.write import parquet_bytes
from pipelines.quality.rules import RuleEngine, _when

REPORTER_KIND = {"jobcenter": "kommune", "akasse": "akasse", "uvm": "uvm", "ssi": "ssi", "jobnet": "jobnet"}
RESULT_COLUMNS = ["leveringsdato", "reporter", "reporter_kind", "dataset", "rule_id", "paragraph", "severity",
                  "text_da", "text_en", "records_checked", "records_failed", "sample_keys"]


@dataclass
class QualityRun:
    results: list[dict]
    failures: list[dict]
    timeliness: list[dict]
    completeness: list[dict]

    def failed_pairs(self) -> set[tuple[str, str]]:
        """(besked_id, rule_id) of every failing record (for ground-truth scoring)."""
        return {(f["besked_id"], f["rule_id"]) for f in self.failures}


def _texts(c: Contract) -> dict[str, tuple[str, str]]:
    return {r.id: (r.text_da, r.text_en) for r in c.rules}


def run_quality(root: Path, days: list[dt.date], datasets: list[str] | None = None,
                today: dt.date | None = None, rule_kinds: set[str] | None = None,
                workers: int = 1) -> QualityRun:
    """Every check of every dataset for the given delivery days, over the lake under ``root``.

    ``rule_kinds`` limits the contract rules (e.g. to the single-record kinds, which need
    no other dataset).  ``workers`` > 1 splits the datasets over that many processes
    (each reads the lake itself; results are merged in dataset order).
    """
    names = list(datasets or sorted(load_contracts()))
    if workers > 1 and len(names) > 1:
        import concurrent.futures as cf
        import multiprocessing as mp

        chunks = [names[k::workers] for k in range(workers)]
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            parts = list(pool.map(_run_chunk, [(root, days, ch, today, rule_kinds) for ch in chunks]))
        merged = QualityRun([], [], [], _completeness(Path(root), days, datasets))
        for part in parts:
            merged.results.extend(part.results)
            merged.failures.extend(part.failures)
            merged.timeliness.extend(part.timeliness)
        key = lambda r: (r["dataset"], str(r["leveringsdato"]), r["reporter"], r["rule_id"])  # noqa: E731
        merged.results.sort(key=key)
        merged.timeliness.sort(key=lambda r: (*key(r), r["lag_days"]))
        merged.failures.sort(key=lambda r: (*key(r), r["payload_id"], r["record_no"]))
        return merged
    return _run_quality(root, days, names, today, rule_kinds)


def _run_chunk(args: tuple) -> QualityRun:
    root, days, names, today, kinds = args
    run = _run_quality(root, days, names, today, kinds)
    run.completeness = []
    return run


def _run_quality(root: Path, days: list[dt.date], datasets: list[str], today: dt.date | None,
                 rule_kinds: set[str] | None) -> QualityRun:
    from pipelines.quality.gx_sql import run_suite_sql
    from pipelines.quality.suites import load_suite

    lake = Path(root) / "lake"
    contracts = load_contracts()
    engine = RuleEngine.shared(lake)
    con = engine.con
    _arrivals(con, Path(root), days, datasets or sorted(contracts))
    results: list[dict] = []
    failures: list[dict] = []
    timeliness: list[dict] = []
    for ds in datasets or sorted(contracts):
        c = contracts[ds]
        kind = REPORTER_KIND[c.reporter]
        texts = _texts(c)
        key = c.record_key[0] if c.record_key else "besked_id"
        suite = load_suite(ds)
        for day in days:
            if engine.load_day(ds, day) is None:
                continue
            for res in run_suite_sql(suite, con, "dq_day", key, today=today):
                for rc in res.reporters:
                    results.append({"leveringsdato": day, "reporter": rc.reporter, "reporter_kind": kind,
                                    "dataset": ds, "rule_id": res.rule_id, "paragraph": res.paragraph,
                                    "severity": res.severity, "text_da": res.text_da, "text_en": res.text_en,
                                    "records_checked": rc.records_checked, "records_failed": rc.records_failed,
                                    "sample_keys": list(rc.sample_keys)})
                for f in res.failures:
                    failures.append({"leveringsdato": day, "reporter": f.reporter, "dataset": ds,
                                     "rule_id": res.rule_id, "besked_id": f.besked_id, "record_key": f.record_key,
                                     "payload_id": f.payload_id, "record_no": f.record_no, "detail": f.detail})
            agg: dict[tuple[str, str], dict] = defaultdict(lambda: {"checked": 0, "failed": 0, "keys": []})
            meta: dict[str, tuple[str, str]] = {}
            for row in engine.evaluate(ds, day, rule_kinds):
                a = agg[(row["reporter"], row["rule_id"])]
                a["checked"] += 1
                meta[row["rule_id"]] = (row["paragraph"], row["severity"])
                if row["failed"]:
                    a["failed"] += 1
                    a["keys"].append(row["record_key"] or row["besked_id"])
                    failures.append({k: row[k] for k in ("leveringsdato", "reporter", "dataset", "rule_id",
                                                          "besked_id", "record_key", "payload_id", "record_no",
                                                          "detail")})
            for (rep, rid), a in sorted(agg.items()):
                para, sev = meta[rid]
                da, en = texts[rid]
                results.append({"leveringsdato": day, "reporter": rep, "reporter_kind": kind, "dataset": ds,
                                "rule_id": rid, "paragraph": para, "severity": sev, "text_da": da, "text_en": en,
                                "records_checked": a["checked"], "records_failed": a["failed"],
                                "sample_keys": sorted(a["keys"])[:5]})
            timeliness.extend(_timeliness(con, c, "dq_day", day))
    completeness = _completeness(Path(root), days, datasets)
    return QualityRun(results, failures, timeliness, completeness)


def _arrivals(con: duckdb.DuckDBPyConnection, root: Path, days: list[dt.date], datasets: list[str]) -> None:
    """Temp table ``dq_arrival`` (payload_id, modtaget_dato): the day each payload reached our landing zone by the
    ledger's receive time, in Danish time.  § 5 (datagenopretning when a reporter does not keep the rules on
    reporting) needs the lateness the reporter cannot set itself: a registration date is the reporter's
    statement, the receive time is ours.  Only the checked days' payloads (a lake partition holds the payloads
    of its leveringsdato)."""
    from zoneinfo import ZoneInfo

    from pipelines.landing import Ledger

    tz = ZoneInfo("Europe/Copenhagen")
    rows: list[tuple[str, dt.date]] = []
    path = root / "ledger.sqlite"
    if path.exists():
        ledger = Ledger(path)
        try:
            wanted = set(datasets)
            for day in days:
                for row in ledger.rows(day=day):
                    if row.key.dataset not in wanted:
                        continue
                    t = dt.datetime.fromisoformat(row.received_at)
                    rows.append((row.payload_id, (t if t.tzinfo else t.replace(tzinfo=tz)).astimezone(tz).date()))
        finally:
            ledger.close()
    arrow = pa.table({"payload_id": pa.array([r[0] for r in rows], pa.string()),  # noqa: F841 - read by DuckDB
                      "modtaget_dato": pa.array([r[1] for r in rows], pa.date32())})
    con.execute("CREATE OR REPLACE TEMP TABLE dq_arrival AS SELECT DISTINCT ON (payload_id) * FROM arrow")


def _timeliness(con: duckdb.DuckDBPyConnection, c: Contract, rel: str, day: dt.date) -> list[dict]:
    """Lag against each deadline rule, as a distribution per reporter: ``lag_days`` from the event to the
    reporter's registration date, ``arrival_lag_days`` from the event to the day the record reached us (the
    ledger's receive time of its payload; NULL for a payload the ledger does not know)."""
    out = []
    for r in c.rules:
        if r.kind != "deadline":
            continue
        ev, rg, mx = r.params["event_field"], r.params["registration_field"], int(r.params.get("max_lag_days", 0))
        ct = r.params.get("change_type")
        where = f"r.{ev} IS NOT NULL AND r.{rg} IS NOT NULL"
        if ct:
            where += f" AND r.aendringstype = '{ {'create': '1', 'update': '2', 'delete': '3'}[ct] }'"
        if r.params.get("when"):  # the records the rule applies to, as the rule check itself selects them
            where += f" AND {_when(r.params)}"
        sql = (f"SELECT r._reporter, date_diff('day', cast(r.{ev} AS DATE), cast(r.{rg} AS DATE)) lag, "
               f"date_diff('day', cast(r.{ev} AS DATE), a.modtaget_dato) arrival_lag, count(*) "
               f"FROM {rel} r LEFT JOIN dq_arrival a ON a.payload_id = r._payload_id WHERE {where} "
               f"GROUP BY ALL ORDER BY ALL")
        for rep, lag, arrival_lag, n in con.execute(sql).fetchall():
            out.append({"leveringsdato": day, "reporter": rep, "dataset": c.dataset, "rule_id": r.id,
                        "paragraph": r.paragraph, "lag_days": lag, "arrival_lag_days": arrival_lag, "records": n,
                        "max_lag_days": mx})
    return out


def _completeness(root: Path, days: list[dt.date], datasets: list[str] | None) -> list[dict]:
    """What arrived per reporter, dataset and day, from the ledger (loaded payloads)."""
    from pipelines.landing import Ledger

    path = root / "ledger.sqlite"
    if not path.exists():
        return []
    ledger = Ledger(path)
    try:
        counts: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for day in days:
            for row in ledger.rows(day=day):
                if row.status != "loaded" or (datasets and row.key.dataset not in datasets):
                    continue
                k = (day, row.key.reporter, row.key.dataset)
                counts[k][0] += 1
                counts[k][1] += row.rows_read or 0
    finally:
        ledger.close()
    return [{"leveringsdato": d, "reporter": rep, "dataset": ds, "payloads": p, "records": n}
            for (d, rep, ds), (p, n) in sorted(counts.items())]


def publish(run: QualityRun, root: Path, days: list[dt.date]) -> Path:
    """Replace the given days in dq.duckdb, published by atomic swap; failures beside the lake.

    The previous state is copied to a temp file, its rows for ``days`` replaced, and the
    file renamed over the old one: readers see the old or the new state, never a mix.
    """
    import shutil

    root = Path(root)
    target = root / "dq.duckdb"
    tmp = root / f".dq.{os.getpid()}.duckdb.tmp"
    tmp.unlink(missing_ok=True)
    if target.exists():
        shutil.copyfile(target, tmp)
    con = duckdb.connect(str(tmp))
    try:
        _create_tables(con)
        day_list = ", ".join(f"DATE '{d.isoformat()}'" for d in days) or "NULL"
        for table in ("dq_results", "dq_timeliness", "dq_completeness"):
            con.execute(f"DELETE FROM {table} WHERE leveringsdato IN ({day_list})")
        for table, rows in (("dq_results", run.results), ("dq_timeliness", run.timeliness),
                            ("dq_completeness", run.completeness)):
            if rows:
                arrow = pa.Table.from_pylist(rows)  # noqa: F841 - read by DuckDB below
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM arrow")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, target)
    fail_schema = pa.schema([("leveringsdato", pa.date32()), ("reporter", pa.string()), ("dataset", pa.string()),
                             ("rule_id", pa.string()), ("besked_id", pa.string()), ("record_key", pa.string()),
                             ("payload_id", pa.string()), ("record_no", pa.int64()), ("detail", pa.string())])
    new_fail = pa.Table.from_pylist(run.failures, schema=fail_schema)
    fpath = root / "dq_failures.parquet"
    if fpath.exists():
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        old = pq.read_table(fpath)
        keep = pc.invert(pc.is_in(old.column("leveringsdato"), value_set=pa.array(days, pa.date32())))
        new_fail = pa.concat_tables([old.filter(keep), new_fail])
    atomic_write(fpath, parquet_bytes(new_fail))
    return target


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("""CREATE TABLE IF NOT EXISTS dq_results (leveringsdato DATE, reporter VARCHAR,
        reporter_kind VARCHAR, dataset VARCHAR, rule_id VARCHAR, paragraph VARCHAR, severity VARCHAR,
        text_da VARCHAR, text_en VARCHAR, records_checked BIGINT, records_failed BIGINT, sample_keys VARCHAR[])""")
    con.execute("""CREATE TABLE IF NOT EXISTS dq_timeliness (leveringsdato DATE, reporter VARCHAR, dataset VARCHAR,
        rule_id VARCHAR, paragraph VARCHAR, lag_days INTEGER, records BIGINT, max_lag_days INTEGER,
        arrival_lag_days INTEGER)""")
    # a results file written before the arrival lag was measured (§ 5) gains the column
    con.execute("ALTER TABLE dq_timeliness ADD COLUMN IF NOT EXISTS arrival_lag_days INTEGER")
    con.execute("""CREATE TABLE IF NOT EXISTS dq_completeness (leveringsdato DATE, reporter VARCHAR,
        dataset VARCHAR, payloads BIGINT, records BIGINT)""")
