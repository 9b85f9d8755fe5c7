"""A selection of models rebuilt by dbt, as ``dsdw warehouse rebuild`` runs them, on a warehouse a rebuild left.

Why: when the national rebuild fails a model (and skips its dependants), rerunning the whole rebuild (~26 min,
the machine to itself) to try a new form costs more than building that model and its dependants on the warehouse
the failed run left, through dbt and the project's materializations (bench_model_alone.py runs one compiled SQL
without them: no person buckets, no hooks).  Same dbt invocation as the rebuild (``--full-refresh``,
``full_lake``) and the same DuckDB settings as bench_rebuild.py; writes into the warehouse (scratch).  Prints and
writes ``bench/results/dbt_select_<time>[_label].json``: per model seconds and rows, wall and CPU seconds of this
process (dbt runs in it), its peak RSS, the peak bytes of DuckDB's temp directory (polled every 0.1 s), the load.

    python bench/bench_dbt_select.py --db /tmp/s10_r5y/out_duckdb/warehouse.duckdb --select int_person_week_ny+
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

import duckdb
from machine import machine_info, write_result

RESULTS = Path(__file__).parent / "results"


class DirPoller(threading.Thread):
    """The peak bytes the files of a directory occupy on disk, polled every ``every`` seconds."""

    def __init__(self, directory: Path, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.directory, self.every, self.peak = directory, every, 0
        self.done = threading.Event()

    def poll(self) -> None:
        size = 0
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as it:
            for e in it:
                with contextlib.suppress(FileNotFoundError):
                    size += e.stat().st_blocks * 512
        self.peak = max(self.peak, size)

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.poll()


def run(db: Path, select: list[str], work: Path) -> dict:
    """Build ``select`` on ``db`` as the DuckDB rebuild does; the figures (see the module's docstring)."""
    from pipelines.contracts import REFERENCE_DIR
    from pipelines.warehouse.rebuild import _dbt_run

    os.environ.setdefault("DSDW_DUCKDB_MEMORY_LIMIT", "6GB")
    os.environ.setdefault("DSDW_DUCKDB_MAX_TEMP", "20GB")
    os.environ.setdefault("DSDW_DUCKDB_PRESERVE_ORDER", "false")
    restricted = work / "restricted.duckdb"  # the profile attaches one; the selected models do not read it
    duckdb.connect(str(restricted)).close()
    poller = DirPoller(Path(str(db) + ".tmp"))
    load0 = os.getloadavg()
    t, ru0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    poller.start()
    error = None
    try:
        seconds = _dbt_run("duckdb", work / "dbt_target", {
            "DSDW_DBT_DATABASE": str(db), "DSDW_DBT_RESTRICTED": str(restricted),
            "DSDW_LAKE": str(work / "lake"), "DSDW_REFERENCE_DIR": str(REFERENCE_DIR)}, select)
    except Exception as e:  # a model over the spill cap is a result too
        seconds, error = {}, str(e)[:2000]
    finally:
        poller.done.set()
        poller.join()
        poller.poll()
    wall, ru1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    load1 = os.getloadavg()
    rows = {}
    con = duckdb.connect(str(db), read_only=True)
    try:
        for m in seconds:
            with contextlib.suppress(duckdb.Error):
                schema = con.execute("SELECT table_schema FROM information_schema.tables WHERE table_name = ?",
                                     [m]).fetchall()
                if schema:
                    rows[m] = con.execute(f'SELECT count(*) FROM "{schema[0][0]}"."{m}"').fetchall()[0][0]
    finally:
        con.close()
    return {"db": str(db), "select": select, "error": error, "wall_s": round(wall, 1),
            "cpu_s": round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 1),
            "peak_rss_gib": round(ru1.ru_maxrss / 2**20, 2), "peak_spill_gib": round(poller.peak / 2**30, 2),
            "model_seconds": {m: round(s, 1) for m, s in seconds.items()}, "model_rows": rows,
            "env": {k: v for k, v in os.environ.items() if k.startswith(("DSDW_DUCKDB", "DSDW_PERSON_SPAND"))},
            "nice": os.nice(0), "load_before": load0, "load_after": load1,
            "machine": machine_info(duckdb=duckdb.__version__)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, required=True, help="a rebuilt warehouse (scratch: the models are rebuilt)")
    ap.add_argument("--select", nargs="+", required=True, help="dbt's selection, e.g. int_person_week_ny+")
    ap.add_argument("--work", type=Path, help="dbt's target directory and an empty restricted database")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="dsdw-dbt-select-"))
    work.mkdir(parents=True, exist_ok=True)
    out = run(a.db, a.select, work)
    out["label"] = a.label
    label = f"_{a.label}" if a.label else ""
    write_result(out, RESULTS / f"dbt_select_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}{label}.json")


if __name__ == "__main__":
    main()
