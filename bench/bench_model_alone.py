"""One model's compiled SQL alone on an existing (rebuilt) warehouse, under given DuckDB settings.

Why: when a national rebuild fails one model at the spill cap, rerunning the whole rebuild (~17 min) to try a
setting costs more than running that model's SQL on the warehouse the failed run left (its inputs are built).
The SQL is dbt's compiled file of the model (``<out>/dbt_target/compiled/.../<model>.sql``); the table is
created under another name and dropped, so the warehouse is left as it was.  Prints and writes
``bench/results/model_alone_<model>_<time>.json`` (rows, wall and CPU seconds, peak RSS, settings).

    python bench/bench_model_alone.py --db /tmp/spark_eng/bench5y/out_duckdb/warehouse.duckdb \\
        --sql .../compiled/dsdw_warehouse/dbt/models/derived/core/dim_person.sql --no-insertion-order
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import time
from pathlib import Path

import duckdb


def run(db: Path, sql: Path, memory_limit: str, threads: int, max_temp: str, insertion_order: bool) -> dict:
    """Create the model's table from its compiled SQL under the settings; its rows, time and peak memory."""
    settings = {"memory_limit": memory_limit, "threads": threads, "max_temp_directory_size": max_temp,
                "TimeZone": "Europe/Copenhagen", "preserve_insertion_order": insertion_order}
    con = duckdb.connect(str(db))
    for k, v in settings.items():
        con.execute(f"SET {k} = '{v}'")
    con.execute("DROP TABLE IF EXISTS main.bench_model_alone")
    t, c = time.perf_counter(), time.process_time()
    try:
        con.execute("CREATE TABLE main.bench_model_alone AS " + sql.read_text(encoding="utf-8"))
        rows, error = con.execute("SELECT count(*) FROM main.bench_model_alone").fetchone()[0], None
    except duckdb.Error as e:  # a spill over the cap is a result too
        rows, error = None, str(e).splitlines()[0]
    out = {"model": sql.stem, "rows": rows, "error": error, "wall_s": round(time.perf_counter() - t, 1),
           "cpu_s": round(time.process_time() - c, 1),
           "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
           "settings": settings, "load_1min": os.getloadavg()[0]}
    con.execute("DROP TABLE IF EXISTS main.bench_model_alone")
    con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, required=True, help="the rebuilt warehouse (its inputs built)")
    ap.add_argument("--sql", type=Path, required=True, help="dbt's compiled SQL of the model")
    ap.add_argument("--memory-limit", default="6GB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-temp", default="20GB")
    ap.add_argument("--no-insertion-order", dest="insertion_order", action="store_false")
    a = ap.parse_args()
    out = run(a.db, a.sql, a.memory_limit, a.threads, a.max_temp, a.insertion_order)
    res = Path(__file__).parent / "results"
    res.mkdir(exist_ok=True)
    path = res / f"model_alone_{out['model']}_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(json.dumps(out, indent=1))
    print(path)


if __name__ == "__main__":
    main()
