"""A night's key test on a panel-shaped table: the whole table against only the keys the night wrote.

``dsdw_unique_columns`` (warehouse/dbt/macros/tests.sql) has two DuckDB forms: the whole-table one (count(*) against
the count of distinct 64-bit key hashes; the exact grouping only when they differ) and, on a night whose project is
unchanged, the ``night_scope`` one (group only the rows whose key occurs in the night's scope relation). This
benchmark times both on a table shaped like ``fct_person_week`` (a 64-character person_key, an ISO-week uge_id and
the panel's other columns; ~250 weeks a person) in a DuckDB file, for a Saturday's scope (the affected persons'
weeks) and a Monday's (those plus every person's new week), at the sizes given. The two SQL texts below are the
compiled forms of that macro for the panel (``dbt compile`` of the test), so a change there should change them here.

    python bench/bench_key_tests.py --rows 20000000,100000000 --out bench/results/key_tests.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

WEEKS = 250  # weeks a person has in the panel at 5 years (national bench: ~105M rows, ~440k persons)
AFFECTED = 6_300  # persons a national night rewrites (bench_warehouse.py, 2026-12-05: 6,274-6,398)

WHOLE = """WITH kandidat AS MATERIALIZED (
    SELECT count(*) <> count(DISTINCT hash(person_key, uge_id)) AS k
    FROM fct_person_week
)
SELECT person_key, uge_id, count(*) AS n FROM fct_person_week
WHERE (SELECT k FROM kandidat)
GROUP BY ALL HAVING count(*) > 1"""

NIGHT = """SELECT person_key, uge_id, count(*) AS n FROM fct_person_week
WHERE (person_key, uge_id) IN (SELECT person_key, uge_id FROM {scope})
GROUP BY ALL HAVING count(*) > 1"""


def make(path: Path, rows: int, threads: int) -> dict:
    """The panel-shaped table and two scopes: ``saturday`` (the first AFFECTED persons' weeks) and ``monday`` (those
    plus every person's last week)."""
    persons = rows // WEEKS
    con = duckdb.connect(str(path))
    con.execute(f"SET threads = {threads}")
    t = time.perf_counter()
    con.execute(f"""CREATE TABLE fct_person_week AS
        SELECT sha256(p::VARCHAR) AS person_key,
               strftime(DATE '2021-01-04' + 7 * w::INT, '%G-W%V') AS uge_id,
               DATE '2021-01-04' + 7 * w::INT AS uge_start,
               ['dagpenge', 'kontanthjaelp', 'selvforsoerget'][1 + (p + w // 20) % 3] AS status,
               ['dagpenge', 'kontanthjaelp', 'selvforsoerget'][1 + (p + (w - 1) // 20) % 3] AS forrige_status,
               (p % 98 + 101)::VARCHAR AS kommunekode,
               DATE '2026-10-03' AS indlaest_dato
        FROM range({persons}) a(p), range({WEEKS}) b(w)""")
    con.execute(f"""CREATE TABLE saturday AS SELECT person_key, uge_id FROM fct_person_week
                    WHERE person_key IN (SELECT sha256(p::VARCHAR) FROM range({AFFECTED}) a(p))""")
    last = con.execute("SELECT max(uge_id) FROM fct_person_week").fetchone()[0]
    con.execute(f"""CREATE TABLE monday AS SELECT * FROM saturday
                    UNION SELECT person_key, uge_id FROM fct_person_week WHERE uge_id = '{last}'""")
    con.execute("CHECKPOINT")
    built = time.perf_counter() - t
    sizes = {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0]
             for n in ("fct_person_week", "saturday", "monday")}
    con.close()
    return {"persons": persons, "rows": sizes, "build_seconds": round(built, 1),
            "file_bytes": path.stat().st_size}


def timed(path: Path, sql: str, threads: int, memory_limit: str) -> tuple[float, int]:
    """Seconds of one run of ``sql`` in a new connection (as a night's test runs on the night's database)."""
    con = duckdb.connect(str(path), read_only=True)
    con.execute(f"SET threads = {threads}")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    t = time.perf_counter()
    n = len(con.execute(sql).fetchall())
    secs = time.perf_counter() - t
    con.close()
    return secs, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="20000000,100000000", help="comma-separated table sizes")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="6GB", help="as the national benchmarks set DuckDB's")
    ap.add_argument("--work", type=Path, help="directory for the DuckDB files (deleted afterwards)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dsdw-bench-keytests-"))
    work.mkdir(parents=True, exist_ok=True)
    cells = []
    for rows in (int(r) for r in args.rows.split(",")):
        path = work / f"panel_{rows}.duckdb"
        path.unlink(missing_ok=True)
        made = make(path, rows, args.threads)
        cell: dict = {"rows_requested": rows, **made, "forms": {}}
        for form, sql in (("whole", WHOLE), ("night_saturday", NIGHT.format(scope="saturday")),
                          ("night_monday", NIGHT.format(scope="monday"))):
            runs = [timed(path, sql, args.threads, args.memory_limit) for _ in range(args.repeat)]
            assert all(n == 0 for _, n in runs), f"{form}: the clean table has failing rows"
            secs = [round(s, 3) for s, _ in runs]
            cell["forms"][form] = {"seconds": secs, "median": statistics.median(secs)}
        whole = cell["forms"]["whole"]["median"]
        cell["ratios_to_whole"] = {f: round(v["median"] / whole, 3) for f, v in cell["forms"].items()}
        print(json.dumps(cell), flush=True)
        cells.append(cell)
        path.unlink()
    doc = {"benchmark": "key_tests", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "machine": machine_info(), "threads": args.threads, "memory_limit": args.memory_limit,
           "weeks_per_person": WEEKS, "affected_persons": AFFECTED, "repeat": args.repeat,
           "load_average_end": os.getloadavg(), "cells": cells}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({c["rows_requested"]: c["ratios_to_whole"] for c in cells}))


if __name__ == "__main__":
    main()
