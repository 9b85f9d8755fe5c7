"""The demo's pipeline through Dagster vs the direct calls, in one run on the same generated sources.

- direct: ingestion with datasets in 2 processes, quality once over all days with the reports, the
  nightly warehouse loads with their model tests, the deliveries (plain function calls: what ``make demo``
  did before);
- dagster: what ``make demo`` does now (pipelines/demo.py): per day the 02:00 schedule's run (ingestion
  + partition checks, whose results dq_results publishes) and the sensor's warehouse run, then the
  ``leveringer`` job (full cuts, then increments), on a persistent SQLite instance, in one process.

Both ingest in 2 processes (the Dagster ingestion steps take their work from a pool: NightlyPool); the
CPU ratio compares the work, the wall ratio what a user waits.

Both read the same sources (served once), each into its own zones. Writes bench/results/bench_demo.json
with the seconds per stage and the ratio dagster/direct (goal <= 1.3).  Generation is timed apart: it
is the same for both.  On a shared machine the figures are noisy: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.machine import machine_info  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", default="demo")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--start", default="2026-10-01")
    ap.add_argument("--seed", type=int, default=20261001)
    ap.add_argument("--work", default=None, help="Work directory (default: a temp dir)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_demo.json"))
    args = ap.parse_args()

    import dagster

    from pipelines.demo import (
        DagsterDemo,
        cpu_seconds,
        dagster_home,
        open_instance,
        run_direct,
        served_sources,
    )
    from pipelines.simulate.generate import generate

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_demo_"))
    os.environ.setdefault("DSDW_KEY_DIR", str(work / "keys"))
    from pipelines.warehouse.keys import ensure_key

    for name in ("pseudonym", "restricted"):
        ensure_key(name)
    first = dt.date.fromisoformat(args.start)
    days = [first + dt.timedelta(days=k) for k in range(args.days)]
    period = first.strftime("%Y-%m")
    t = time.perf_counter()
    generate(work / "sources", scale=args.scale, start=first, days=args.days, seed=args.seed)
    gen_s = time.perf_counter() - t
    load0 = os.getloadavg()
    state = work / "sources.json"
    with served_sources(work / "sources", state):
        t, c = time.perf_counter(), cpu_seconds()
        stages_direct = run_direct(days, work / "direct", state, period, workers=2)
        direct_s, direct_cpu = time.perf_counter() - t, cpu_seconds() - c
        t, c = time.perf_counter(), cpu_seconds()
        runner = DagsterDemo(work / "dagster_zones", state, open_instance(dagster_home(work)))
        res = runner.run(days, period)
        dagster_s, dagster_cpu = time.perf_counter() - t, cpu_seconds() - c
    out = {
        "benchmark": "demo pipeline: Dagster jobs on a persistent instance vs direct calls", "scale": args.scale,
        "days": args.days, "generate_seconds": round(gen_s, 1),
        "direct_seconds": round(direct_s, 1), "direct_stages": {k: round(v, 1) for k, v in stages_direct.items()},
        "dagster_seconds": round(dagster_s, 1),
        "dagster_stages": {k: round(v, 1) for k, v in res.seconds.items()},
        "dagster_cpu_stages": {k: round(v, 1) for k, v in res.cpu.items()},
        "dagster_runs": len(res.runs), "dagster_failed_runs": len(res.failed_runs),
        # per night: a warehouse run that grows with the nights shows here (issue 12: the publication's audit)
        "dagster_warehouse_seconds_per_night": {w.day.isoformat(): round(w.seconds, 1) for w in res.warehouse},
        "vintages": _vintages(work / "dagster_zones"),
        "ratio_dagster_to_direct": round(dagster_s / direct_s, 3), "goal_ratio_dagster_to_direct": 1.3,
        "direct_cpu_seconds": round(direct_cpu, 1), "dagster_cpu_seconds": round(dagster_cpu, 1),
        "ratio_cpu_dagster_to_direct": round(dagster_cpu / direct_cpu, 3),
        "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine_info(dagster=dagster.__version__),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=1))


def _vintages(root: Path) -> list[list]:
    """The publication log of a run's warehouse: [vintage, load date, periods] (publication.schedule)."""
    import duckdb

    from pipelines.warehouse.build import published_path

    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        return [[v, d.isoformat(), n] for v, d, n in con.execute(
            "SELECT vintage, indlaest_dato, perioder FROM meta.publikation ORDER BY 1").fetchall()]
    finally:
        con.close()


if __name__ == "__main__":
    main()
