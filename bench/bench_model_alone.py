"""One model's compiled SQL alone on an existing (rebuilt) warehouse, under given DuckDB settings.

Why: when a national rebuild fails one model at the spill cap, rerunning the whole rebuild (~17 min) to try a
setting costs more than running that model's SQL on the warehouse the failed run left (its inputs are built).
The SQL is dbt's compiled file of the model (``<out>/dbt_target/compiled/.../<model>.sql``); the table is
created under another name and dropped, so the warehouse is left as it was.  Prints and writes
``bench/results/model_alone_<model>_<time>.json`` (rows, wall and CPU seconds, peak RSS, peak spill, settings).

The peak spill is what decides whether a model passes ``max_temp_directory_size`` at national scale, and it can
be judged on a smaller lake where the time cannot: a thread polls the DuckDB temp directory every 0.1 s (the
bytes its files occupy on disk, and DuckDB's own account in ``duckdb_temporary_files()`` from a second
connection) and keeps the maxima.

    python bench/bench_model_alone.py --db /tmp/spark_eng/bench5y/out_duckdb/warehouse.duckdb \\
        --sql .../compiled/dsdw_warehouse/dbt/models/derived/core/dim_person.sql --no-insertion-order
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import threading
import time
from pathlib import Path

import duckdb


class SpillPoller(threading.Thread):
    """Polls the size of a DuckDB temp directory while a query runs; ``peak_disk`` (bytes the files occupy)
    and ``peak_duckdb`` (the sum of ``duckdb_temporary_files().size``) are the maxima seen."""

    def __init__(self, con: duckdb.DuckDBPyConnection, directory: Path, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.cur, self.directory, self.every = con.cursor(), directory, every
        self.peak_disk = self.peak_duckdb = 0
        self.done = threading.Event()

    def poll(self) -> None:
        disk = 0
        try:
            with os.scandir(self.directory) as it:
                for e in it:
                    with contextlib.suppress(FileNotFoundError):  # a temp file removed between listing and stat
                        disk += e.stat().st_blocks * 512
        except FileNotFoundError:
            pass
        self.peak_disk = max(self.peak_disk, disk)
        try:
            n = self.cur.execute("SELECT coalesce(sum(size), 0) FROM duckdb_temporary_files()").fetchone()[0]
            self.peak_duckdb = max(self.peak_duckdb, int(n))
        except duckdb.Error:
            pass

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.poll()

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.poll()
        self.cur.close()


def run(db: Path, sql: Path | None, memory_limit: str, threads: int, max_temp: str, insertion_order: bool,
        keep: str | None = None, spand: int | None = None) -> dict:
    """Create the model's table from its compiled SQL under the settings; its rows, time, peak memory and spill.
    ``keep``: leave the table in the warehouse under this name (to compare two forms' rows afterwards).
    ``spand``: instead of ``sql``, mart_ydelser_beregning's full computation as its dbt Python model runs it
    (stats.ydelser_fuld) in this many person buckets (1: the one-pass SQL), the passes inside the timing."""
    settings = {"memory_limit": memory_limit, "threads": threads, "max_temp_directory_size": max_temp,
                "TimeZone": "Europe/Copenhagen", "preserve_insertion_order": insertion_order,
                "enable_progress_bar": False}
    con = duckdb.connect(str(db))
    for k, v in settings.items():
        con.execute(f"SET {k} = '{v}'")
    with contextlib.suppress(duckdb.Error):  # the load date mart_ydelser_beregning's SQL reads (dbt_runner)
        con.execute("SET VARIABLE load_date = (SELECT indlaest_dato FROM meta.current_load)")
    con.execute("DROP TABLE IF EXISTS main.bench_model_alone")
    temp_dir = Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
    poller = SpillPoller(con, temp_dir)
    load0 = os.getloadavg()
    t, c = time.perf_counter(), time.process_time()
    poller.start()
    try:
        if spand:
            from pipelines.warehouse.stats import ydelser_fuld

            text = ydelser_fuld(con, spand)
        else:
            text = sql.read_text(encoding="utf-8")
        con.execute("CREATE TABLE main.bench_model_alone AS " + text)
        rows, error = con.execute("SELECT count(*) FROM main.bench_model_alone").fetchone()[0], None
    except duckdb.Error as e:  # a spill over the cap is a result too
        rows, error = None, str(e).splitlines()[0]
    finally:
        poller.stop()
    out = {"model": "mart_ydelser_beregning" if spand else sql.stem, "spand": spand, "rows": rows, "error": error, "wall_s": round(time.perf_counter() - t, 1),
           "cpu_s": round(time.process_time() - c, 1),
           "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
           "peak_spill_gib": round(poller.peak_disk / 2**30, 2),
           "peak_spill_duckdb_gib": round(poller.peak_duckdb / 2**30, 2), "temp_directory": str(temp_dir),
           "settings": settings, "load_before": load0, "load_1min": os.getloadavg()[0]}
    if keep and error is None:
        con.execute(f"DROP TABLE IF EXISTS main.{keep}")
        con.execute(f"ALTER TABLE main.bench_model_alone RENAME TO {keep}")
    con.execute("DROP TABLE IF EXISTS main.bench_model_alone")
    con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, required=True, help="the rebuilt warehouse (its inputs built)")
    ap.add_argument("--sql", type=Path, help="dbt's compiled SQL of the model")
    ap.add_argument("--ydelser-spand", type=int, metavar="N",
                    help="instead of --sql: mart_ydelser_beregning's full computation in N person buckets")
    ap.add_argument("--memory-limit", default="6GB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-temp", default="20GB")
    ap.add_argument("--no-insertion-order", dest="insertion_order", action="store_false")
    ap.add_argument("--keep", metavar="TABLE", help="keep the result as this table (default: dropped)")
    ap.add_argument("--label", default="", help="added to the result file's name (e.g. before/after)")
    a = ap.parse_args()
    if not (a.sql or a.ydelser_spand):
        ap.error("--sql or --ydelser-spand")
    out = run(a.db, a.sql, a.memory_limit, a.threads, a.max_temp, a.insertion_order, a.keep, a.ydelser_spand)
    out["label"] = a.label
    res = Path(__file__).parent / "results"
    res.mkdir(exist_ok=True)
    label = f"_{a.label}" if a.label else ""
    path = res / f"model_alone_{out['model']}_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}{label}.json"
    path.write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(json.dumps(out, indent=1))
    print(path)


if __name__ == "__main__":
    main()
