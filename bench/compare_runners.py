"""One-off comparison: the same lake loaded by the sql runner and by the dbt runner, row for row.

Generates a synthetic Denmark (default ``tiny``, 3 delivery days), ingests it once, copies the
ingested root twice, loads every day with ``load_warehouse(..., runner="sql")`` and
``runner="dbt"``, and compares every table and view of both analysts' databases and both restricted
databases: the same relations, the same columns, the same rows (``EXCEPT ALL`` both ways).  Columns
that differ by construction are left out: ``load_id`` (a random id per load) and timings.

    PYTHONPATH=$PWD python bench/compare_runners.py [--scale tiny] [--days 3] [--out result.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import duckdb

START = dt.date(2026, 10, 1)
# differ by construction: random load ids, timings, and bookkeeping only one runner keeps
SKIP_COLUMNS = {"load_id", "seconds", "started_at", "finished_at", "publiceret_tid"}
SKIP_RELATIONS = {"meta.model_run", "meta.schema_state", "meta.load_increment", "meta.current_load"}
# the dbt runner's scope models (schema staging): the sql runner keeps the same relations as temp tables
DBT_ONLY_PREFIX = "staging.int_"


def ingest(work: Path, scale: str, days: int, seed: int) -> Path:
    from pipelines.ingest import SourcesConfig, Zones, ingest_day
    from pipelines.simulate.generate import generate
    from pipelines.simulate.servers import start_sources

    base, src = work / "base", work / "sources"
    if (base / "ledger.sqlite").exists():
        return base
    generate(src, scale=scale, start=START, days=days, seed=seed)
    with start_sources(src) as systems:
        cfg = SourcesConfig.from_describe(systems.describe())
        for k in range(days):
            ingest_day(START + dt.timedelta(days=k), Zones(base), cfg,
                       received_at=f"{START + dt.timedelta(days=k + 1)}T02:00:00+02:00")
    return base


def copy_root(base: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(base / "lake", dst / "lake")
    shutil.copy(base / "ledger.sqlite", dst / "ledger.sqlite")
    if (base / "dq.duckdb").exists():
        shutil.copy(base / "dq.duckdb", dst / "dq.duckdb")
    lc = sqlite3.connect(dst / "ledger.sqlite")
    lc.execute("UPDATE payloads SET lake_path = replace(lake_path, ?, ?)", (str(base), str(dst)))
    lc.commit()
    lc.close()
    return dst


def relations(con: duckdb.DuckDBPyConnection, db: str) -> dict[str, list[str]]:
    rows = con.execute("""
        SELECT schema_name, table_name, list(column_name ORDER BY column_index) FROM duckdb_columns()
        WHERE database_name = ? AND NOT internal GROUP BY ALL""", [db]).fetchall()
    return {(n if s == "main" else f"{s}.{n}"): cols for s, n, cols in rows}


def compare(con: duckdb.DuckDBPyConnection, a: str, b: str) -> list[dict]:
    ra, rb = relations(con, a), relations(con, b)
    out = []
    for name in sorted(set(ra) | set(rb)):
        if name in SKIP_RELATIONS or (name.startswith(DBT_ONLY_PREFIX) and name not in ra):
            continue
        row: dict = {"relation": name}
        if name not in ra or name not in rb:
            row["status"] = f"only in {'sql' if name in ra else 'dbt'}"
            out.append(row)
            continue
        ca, cb = set(ra[name]) - SKIP_COLUMNS, set(rb[name]) - SKIP_COLUMNS
        cols = ", ".join(f'"{c}"' for c in sorted(ca & cb))
        qa, qb = f"{a}.{name}", f"{b}.{name}"
        n_a = con.execute(f"SELECT count(*) FROM {qa}").fetchone()[0]
        n_b = con.execute(f"SELECT count(*) FROM {qb}").fetchone()[0]
        only_a = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {qa} EXCEPT ALL SELECT {cols} FROM {qb})"
                             ).fetchone()[0]
        only_b = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {qb} EXCEPT ALL SELECT {cols} FROM {qa})"
                             ).fetchone()[0]
        row.update(rows_sql=n_a, rows_dbt=n_b, only_sql=only_a, only_dbt=only_b,
                   columns_only_sql=sorted(ca - cb), columns_only_dbt=sorted(cb - ca))
        row["status"] = "equal" if not (only_a or only_b or ca != cb) else "DIFFERENT"
        out.append(row)
    return out


def compare_as_of(a: Path, b: Path, days: list[dt.date]) -> list[dict]:
    """The ``<fct>_as_of(d)`` table macros of both analysts' databases, for every load date."""
    ca, cb = duckdb.connect(str(a), read_only=True), duckdb.connect(str(b), read_only=True)
    out = []
    try:
        names = sorted(r[0] for r in ca.execute("SELECT DISTINCT function_name FROM duckdb_functions() WHERE "
                                                "function_name LIKE 'fct%\\_as\\_of' ESCAPE '\\'").fetchall())
        for m in names:
            for d in days:
                q = f"SELECT * EXCLUDE (load_id) FROM {m}(DATE '{d.isoformat()}')"
                try:
                    ra, rb = sorted(map(repr, ca.execute(q).fetchall())), sorted(map(repr, cb.execute(q).fetchall()))
                    status = "equal" if ra == rb else "DIFFERENT"
                except duckdb.Error as e:
                    ra, rb, status = [], [], f"ERROR {str(e).splitlines()[0]}"
                out.append({"relation": f"{m}({d})", "rows_sql": len(ra), "rows_dbt": len(rb), "status": status})
    finally:
        ca.close()
        cb.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="tiny")
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--work", default="/tmp/dsdw-compare-runners")
    ap.add_argument("--out", default=None)
    ap.add_argument("--compare-only", action="store_true", help="compare the roots of an earlier run again")
    ap.add_argument("--reload", nargs="*", default=["sql", "dbt"], help="runners whose roots are (re)loaded")
    args = ap.parse_args()
    from pipelines.warehouse import keys as wkeys
    from pipelines.warehouse.build import load_warehouse, published_path
    from pipelines.warehouse.restricted import unsealed

    work = Path(args.work)
    os.environ.setdefault("DSDW_KEY_DIR", str(work / "keys"))
    wkeys.ensure_key("pseudonym")
    wkeys.ensure_key("restricted")
    t = time.perf_counter()
    base = ingest(work, args.scale, args.days, args.seed)
    result: dict = {"scale": args.scale, "days": args.days, "ingest_seconds": round(time.perf_counter() - t, 1),
                    "loads": {}}
    roots = {r: work / r for r in ("sql", "dbt")}
    reload = [] if args.compare_only else args.reload
    for runner in reload:
        copy_root(base, roots[runner])
    # night by night, the runners alternating, so both see the same load of this shared machine; CPU seconds
    # (this process and its DuckDB threads) beside the wall time
    result["uptime_before"] = os.getloadavg()
    for k in range(args.days):
        for runner in reload:
            root = roots[runner]
            day = START + dt.timedelta(days=k)
            cpu = time.process_time()
            r = load_warehouse(root, day, runner=runner)
            result["loads"].setdefault(runner, []).append({
                "day": day.isoformat(), "seconds": round(r.seconds, 2), "payloads": r.payloads,
                "cpu_seconds": round(time.process_time() - cpu, 2), "loadavg": os.getloadavg()[0],
                "rows_staged": sum(r.rows_staged.values()), "steps": {k: round(v, 2) for k, v in r.step_seconds.items()},
                "hooks": {k: round(v, 2) for k, v in r.hook_seconds.items()},
                # the models alone: the sql runner's model steps, dbt's whole build (start, parse, nodes, tests)
                "models_seconds": round(r.step_seconds["dbt_build"] if runner == "dbt"
                                        else sum(r.model_seconds.values()), 2)})
            print(runner, day, f"{r.seconds:.1f}s", r.payloads, "payloads", file=sys.stderr)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Europe/Copenhagen'")
    con.execute(f"ATTACH '{published_path(roots['sql'])}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{published_path(roots['dbt'])}' AS b (READ_ONLY)")
    result["warehouse"] = compare(con, "a", "b")
    with unsealed(roots["sql"]) as pa_, unsealed(roots["dbt"]) as pb_:
        con.execute(f"ATTACH '{pa_}' AS ra (READ_ONLY)")
        con.execute(f"ATTACH '{pb_}' AS rb (READ_ONLY)")
        result["restricted"] = compare(con, "ra", "rb")
        con.execute("DETACH ra")
        con.execute("DETACH rb")
    result["as_of"] = compare_as_of(published_path(roots["sql"]), published_path(roots["dbt"]),
                                    [START + dt.timedelta(days=k) for k in range(args.days)])
    loads = result["loads"]
    if {"sql", "dbt"} <= set(loads):
        # dbt / sql per night, measured in this run (the first night builds everything; the later ones are
        # the nightly cost)
        per = [{"day": a["day"], "sql": a["seconds"], "dbt": b["seconds"], "ratio": round(b["seconds"] / a["seconds"], 2),
                "sql_cpu": a["cpu_seconds"], "dbt_cpu": b["cpu_seconds"],
                "cpu_ratio": round(b["cpu_seconds"] / max(a["cpu_seconds"], 1e-9), 2),
                "sql_models": a["models_seconds"], "dbt_build": b["models_seconds"],
                "models_ratio": round(b["models_seconds"] / max(a["models_seconds"], 1e-9), 2)}
               for a, b in zip(loads["sql"], loads["dbt"], strict=True)]
        later = per[1:] or per
        result["ratio"] = {"per_night": per,
                           "nightly_mean": round(sum(x["dbt"] for x in later) / sum(x["sql"] for x in later), 2),
                           "nightly_cpu_mean": round(sum(x["dbt_cpu"] for x in later) / sum(x["sql_cpu"] for x in later), 2),
                           "nightly_models_mean": round(sum(x["dbt_build"] for x in later)
                                                        / sum(x["sql_models"] for x in later), 2)}
    result["uptime_after"] = os.getloadavg()
    rows = result["warehouse"] + result["restricted"] + result["as_of"]
    result["summary"] = {s: sum(1 for r in rows if r["status"] == s) for s in {r["status"] for r in rows}}
    result["different"] = [r for r in rows if r["status"] != "equal"]
    text = json.dumps(result, indent=1, default=str)
    if args.out:
        Path(args.out).write_text(text)
    print(json.dumps({"summary": result["summary"], "different": result["different"],
                      "loads": result["loads"], "ratio": result.get("ratio")}, indent=1, default=str))


if __name__ == "__main__":
    main()
