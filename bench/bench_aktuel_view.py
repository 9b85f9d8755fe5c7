"""A fact's current state as a view over its versions, against the `_aktuel` table a night keeps (issue #14 (a)).

Why: a night keeps each analysts' `fct_<ds>_aktuel` table by scanning random record keys over the whole history
three times (the versions' key to pick the winners, the current table's key for the pre-hook's delete and for the
night's record-key test), and the table holds every current record a second time. The alternative measured here:
`fct_<ds>` anti-joined with a small table of the versions that are not current (superseded by a later version,
a deletion's versions, retracted payloads' versions), which a night would only extend. The rows must be the
table's exactly (EXCEPT ALL both ways), and the analysts' reads must not get slower: a whole-table aggregate and one
person's current records (a filter a window over the record key could not take, since a correction may move a
record to another person; the anti-join takes it).

Read-only on the warehouse: the superseded versions are written to a scratch database that attaches it.

    python bench/bench_aktuel_view.py --build /tmp/s18/bw/h1825/warehouse/build.duckdb \
        --fact fct_joblog_jobsoegning --out bench/results/aktuel_view.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402


def timed(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> tuple[float, list]:
    """Wall seconds and rows of one query."""
    t = time.perf_counter()
    rows = con.execute(sql, params or []).fetchall()
    return time.perf_counter() - t, rows


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, -(-95 * len(xs) // 100) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", type=Path, required=True, help="a warehouse build database (read only)")
    ap.add_argument("--fact", default="fct_joblog_jobsoegning")
    ap.add_argument("--key", default="besked_id", help="the column naming one version")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--persons", type=int, default=20)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    fact, cur, key = f"w.{args.fact}", f"w.{args.fact}_aktuel", args.key
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "scratch.duckdb"))
        con.execute(f"ATTACH '{args.build}' AS w (READ_ONLY)")
        out: dict = {"benchmark": "aktuel_view", "build": str(args.build), "fact": args.fact, "machine": machine_info()}
        _, [(versions, current)] = timed(con, f"SELECT (SELECT count(*) FROM {fact}), (SELECT count(*) FROM {cur})")
        out.update(versions=versions, current=current)
        # the superseded versions as they are now (a night would extend this with the touched records' losers)
        s, _ = timed(con, f"CREATE TABLE superseded AS SELECT {key} FROM {fact} EXCEPT SELECT {key} FROM {cur}")
        out["superseded"] = con.execute("SELECT count(*) FROM superseded").fetchone()[0]
        out["superseded_built_seconds"] = round(s, 2)
        con.execute(f"CREATE VIEW v_aktuel AS SELECT f.* FROM {fact} f ANTI JOIN superseded s ON s.{key} = f.{key}")
        s, [(a, b)] = timed(con, f"""SELECT (SELECT count(*) FROM (SELECT * FROM v_aktuel EXCEPT ALL SELECT * FROM {cur})),
                                            (SELECT count(*) FROM (SELECT * FROM {cur} EXCEPT ALL SELECT * FROM v_aktuel))""")
        out["equal_rows"] = {"view_minus_table": a, "table_minus_view": b, "seconds": round(s, 1)}
        if a or b:
            raise SystemExit(f"the view is not the table: {a} rows only in the view, {b} only in the table")
        persons = [r[0] for r in con.execute(
            f"SELECT person_key FROM {cur} USING SAMPLE {args.persons} ROWS (reservoir, 7)").fetchall()]
        for label, rel in (("table", cur), ("view", "v_aktuel")):
            agg = [timed(con, f"SELECT count(*), count(DISTINCT person_key) FROM {rel}")[0] for _ in range(args.runs)]
            one = [timed(con, f"SELECT * FROM {rel} WHERE person_key = ?", [p])[0] for p in persons]
            out[label] = {"aggregate_median_ms": round(1000 * statistics.median(agg), 1),
                          "person_median_ms": round(1000 * statistics.median(one), 1),
                          "person_p95_ms": round(1000 * p95(one), 1)}
            print(label, out[label], file=sys.stderr, flush=True)
        out["ratios_view_over_table"] = {
            k: round(out["view"][k] / out["table"][k], 3) for k in ("aggregate_median_ms", "person_p95_ms")}
        con.close()
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
