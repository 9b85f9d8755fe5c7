"""How long a finished model's shuffle files stay in Spark's local directory, with and without the periodic GC.

Spark deletes a shuffle's files (its ContextCleaner) only after the driver's garbage collector has collected the
query that made them; `spark.cleaner.periodicGC.interval` forces a collection every so often (default 30 min).
During the 5-year national rebuild the finished models' shuffle files grew to 26 GB (docs/scale-out.md), so
`pipelines.warehouse.spark.spark_conf` sets the interval to 2 minutes (``DSDW_SPARK_GC_INTERVAL``). This runs a
few dbt-model-like statements (a CTAS with a shuffle each) in sessions with the project's configuration, the
interval at Spark's default and at a short one, and records the local directory's bytes after each statement and
again after a wait longer than the short interval.

    python bench/bench_spark_shuffle_cleanup.py --out bench/results/spark_shuffle_cleanup.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_info  # noqa: E402


def local_bytes(local: Path) -> int:
    return sum(f.stat().st_size for f in local.rglob("*") if f.is_file())


def run(work: Path, interval: str, rows: int, statements: int, wait: float) -> dict:
    """One session (local[2], the project's configuration with the GC ``interval``): ``statements`` CTAS with a
    shuffle, the local directory's bytes right after each and ``wait`` seconds later."""
    from pyspark.sql import SparkSession

    from pipelines.warehouse.spark import spark_conf

    conf = spark_conf(work / "warehouse", extra={"spark.cleaner.periodicGC.interval": interval})
    builder = SparkSession.builder.master("local[2]")
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    local = Path(conf["spark.local.dir"])
    spark.sql(f"CREATE TABLE t USING parquet AS SELECT id, id % 1000 AS k, repeat('x', 50) AS pad FROM range({rows})")
    after = []
    for i in range(statements):
        spark.sql(f"""CREATE TABLE u{i} USING parquet AS
            SELECT k, count(*) AS n, max(pad) AS p FROM (SELECT * FROM t DISTRIBUTE BY id) GROUP BY k""")
        now = local_bytes(local)
        time.sleep(wait)
        after.append({"statement": i + 1, "bytes_right_after": now, f"bytes_{wait:g}_s_later": local_bytes(local)})
    spark.stop()
    return {"interval": interval, "statements": after}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--statements", type=int, default=3)
    ap.add_argument("--short", default="5s", help="the short interval to compare with Spark's default (30min)")
    ap.add_argument("--wait", type=float, default=8.0, help="seconds to wait after each statement")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    runs = []
    for interval in ("30min", args.short):
        with tempfile.TemporaryDirectory(prefix="dsdw-bench-shuffle-") as tmp:
            runs.append(run(Path(tmp), interval, args.rows, args.statements, args.wait))
            print(json.dumps(runs[-1]), flush=True)
    doc = {"benchmark": "spark_shuffle_cleanup", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "machine": machine_info(), "rows": args.rows, "runs": runs}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
