"""What a night's append costs in a table as the history grows, with and without an ART index, and what a
person lookup costs in each form.

Why: on the national run the nights at 5 years of history cost about twice those at 1 year although a night's rows
are the same (docs/warehouse_bench.md). The facts' appends are plain INSERTs, but every fact carried an ART index on
its 64-character ``person_key`` and every current-state table a unique one on its record key: DuckDB loads an
index to insert into it and writes it at the checkpoint. This isolates that cost from the warehouse: one table of
N rows shaped like a fact (a 64-character hex person key, a record key, a few columns), a night of 40,000 new rows
appended and checkpointed in a fresh connection (as every night's load process is), for several N and for: no
index, an ART index on the person key (as before), an ART index on a 64-bit hash of it (a narrower key the
queries would have to name), and ``sorted``: no index, the table sorted by person_key
(pipelines/warehouse/clustering.py, what the product does now). Per form, one person's rows looked up
(``WHERE person_key = ?``, 50 persons) after the nights; for ``sorted`` also the most a table holds before the
product sorts it whole (15 sorted tail runs and an unsorted tail of 1 %, at least 250,000 rows), the whole and the
tail sort's seconds, and their cost per night at the pace the product sorts. Each form is one run in one invocation, so the ratios compare
like with like.

    python bench/bench_index_growth.py --rows 2000000,10000000,40000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from machine import machine_info

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines.warehouse.clustering import MAX_RUNS, TAIL_MIN, TAIL_SHARE, sort_table, sort_tail  # noqa: E402

NIGHT_ROWS = 40_000
FORMS = {
    "no_index": None,
    "art_person_key": "CREATE INDEX t__person_key ON t (person_key)",
    "art_person_hash": "CREATE INDEX t__person_hash ON t (person_hash)",
    "sorted": None,  # sorted by person_key after it is built (no index)
}
LOOKUPS = 50


def _table(con: duckdb.DuckDBPyConnection, n: int) -> None:
    con.execute(f"""CREATE TABLE t AS
        SELECT sha256(CAST(i // 8 AS VARCHAR)) AS person_key, hash(sha256(CAST(i // 8 AS VARCHAR))) AS person_hash,
               'r' || i AS record_id, DATE '2021-01-01' + CAST(i % 1800 AS INTEGER) AS startdato,
               CAST(i % 98 AS VARCHAR) AS kode, i AS payload, DATE '2026-10-01' AS indlaest_dato
        FROM range({n}) r(i)""")


def night(path: Path, k: int) -> dict:
    """One night: open, append NIGHT_ROWS rows, checkpoint, close; seconds of each step."""
    t0 = time.perf_counter()
    con = duckdb.connect(str(path))
    t1 = time.perf_counter()
    con.execute(f"""INSERT INTO t SELECT sha256('ny{k}-' || i), hash(sha256('ny{k}-' || i)), 'n{k}-' || i,
                    DATE '2026-10-01', 'x', i, DATE '2026-10-02' FROM range({NIGHT_ROWS}) r(i)""")
    t2 = time.perf_counter()
    con.execute("CHECKPOINT")
    t3 = time.perf_counter()
    con.close()
    return {"open": round(t1 - t0, 3), "insert": round(t2 - t1, 3), "checkpoint": round(t3 - t2, 3),
            "total": round(time.perf_counter() - t0, 3)}


def lookups(path: Path, n: int, seed: int = 7) -> dict:
    """p50/p95 milliseconds of one person's rows, 50 persons of the table, in a fresh connection."""
    persons = random.Random(seed).sample(range(n // 8), LOOKUPS)
    con = duckdb.connect(str(path), read_only=True)
    try:
        q = "SELECT * FROM t WHERE person_key = sha256(CAST(? AS VARCHAR))"
        con.execute(q, [persons[0]]).fetchall()
        ms = []
        for p in persons:
            t0 = time.perf_counter()
            got = len(con.execute(q, [p]).fetchall())
            assert got >= 8, (p, got)  # 8 a person, and the tail's rows of some
            ms.append((time.perf_counter() - t0) * 1000)
    finally:
        con.close()
    ms.sort()
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * len(ms)) - 1], 2)}


def tail(path: Path, rows: int, day: dt.date) -> None:
    """``rows`` rows of the table's own persons appended unsorted, loaded ``day``, checkpointed."""
    con = duckdb.connect(str(path))
    con.execute(f"""INSERT INTO t SELECT person_key, person_hash, 'h' || i, DATE '2026-10-02', 'y', i, DATE '{day}'
                    FROM (SELECT * FROM t USING SAMPLE {rows} ROWS) s, range(1) r(i)""")
    con.execute("CHECKPOINT")
    con.close()


def worst_case(path: Path, n: int) -> dict:
    """The most a table holds before the product sorts it whole (clustering.due): MAX_RUNS - 1 sorted tail runs
    of the threshold's rows each (each made by clustering.sort_tail, timed) and a threshold's tail unsorted; a
    lookup then; and the sorts' share of a night when they come at that pace."""
    rows = int(max(TAIL_MIN, TAIL_SHARE * n))
    day, secs = dt.date(2026, 10, 3), []
    for run in range(1, MAX_RUNS):
        tail(path, rows, day)
        con = duckdb.connect(str(path))
        comment = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 't'").fetchone()[0]
        secs.append(sort_tail(con, "t", day - dt.timedelta(days=1), day, comment, run))
        con.execute("CHECKPOINT")
        con.close()
        day += dt.timedelta(days=1)
    tail(path, rows, day)
    return {"tail_rows": rows, "runs": MAX_RUNS - 1, "tail_sort_seconds_median": statistics.median(secs),
            "lookup": lookups(path, n)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="2000000,10000000,40000000", help="table sizes (comma-separated)")
    ap.add_argument("--nights", type=int, default=3, help="nights per size and form (the median is reported)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--forms", default=",".join(FORMS), help="forms measured (comma-separated)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="dsdw-index-growth-") as tmp:
        for n in (int(x) for x in args.rows.split(",")):
            for form in args.forms.split(","):
                ddl = FORMS[form]
                path = Path(tmp) / f"{form}_{n}.duckdb"
                con = duckdb.connect(str(path))
                con.execute(f"SET threads = {args.threads}")
                _table(con, n)
                if ddl:
                    con.execute(ddl)
                extra: dict = {}
                if form == "sorted":
                    extra["sort_seconds"] = sort_table(con, "t", dt.date(2026, 10, 1))
                con.execute("CHECKPOINT")
                con.close()
                runs = [night(path, k) for k in range(args.nights)]
                med = sorted(runs, key=lambda r: r["total"])[len(runs) // 2]
                extra["lookup"] = lookups(path, n)
                if form == "sorted":
                    w = extra["before_the_next_whole_sort"] = worst_case(path, n)
                    # the sorts' share of a night of NIGHT_ROWS new rows: a tail sort every tail_rows / NIGHT_ROWS
                    # nights, a whole one every MAX_RUNS times that (clustering.due)
                    every = w["tail_rows"] / NIGHT_ROWS
                    extra["sort_seconds_per_night"] = round(w["tail_sort_seconds_median"] / every
                                                            + extra["sort_seconds"] / (MAX_RUNS * every), 4)
                results.setdefault(str(n), {})[form] = {"median": med, "runs": runs,
                                                       "file_bytes": path.stat().st_size, **extra}
                print(n, form, json.dumps(med), path.stat().st_size, json.dumps(extra), flush=True)
                path.unlink()
    sizes = sorted(results, key=int)
    ratios = {form: round(results[sizes[-1]][form]["median"]["total"]
                          / max(results[sizes[0]][form]["median"]["total"], 1e-9), 2) for form in results[sizes[0]]}
    doc = {"benchmark": "index_growth", "night_rows": NIGHT_ROWS, "threads": args.threads, "results": results,
           f"ratio_{sizes[-1]}_over_{sizes[0]}": ratios, "load_average_at_end": os.getloadavg(),
           "machine": machine_info(duckdb=duckdb.__version__)}
    out = args.out or Path(__file__).parent / "results" / \
        f"index_growth_{dt.datetime.now():%Y%m%dT%H%M}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    print(json.dumps(ratios), out)


if __name__ == "__main__":
    main()
