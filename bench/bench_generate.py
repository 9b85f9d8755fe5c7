"""Generator benchmark: one national-scale day of every reporter's payloads.

Target (issue #2): one national day in <= 60 s on this 2-core machine.  Day 1
also carries the initial extract of every open spell (the DFDG's history), so
the steady-state figure is the last day.  As a same-run reference, the records
of the measured day are serialised and written again with the channel writers
alone: the ratio says how much the simulation costs on top of pure output.

Usage: python bench/bench_generate.py [--scale national] [--days 2] [--seed 5]
Writes bench/results/generate_<scale>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine_info  # noqa: E402
from pipelines.contracts import wire  # noqa: E402
from pipelines.simulate.generate import Simulator, prepare_out  # noqa: E402
from pipelines.simulate.scales import SCALES  # noqa: E402


def machine() -> dict:
    return machine_info(numpy=np.__version__)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="national", choices=sorted(SCALES))
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--start", default="2026-10-01")
    ap.add_argument("--out", default=None, help="Output dir (default: a temp dir, removed afterwards)")
    args = ap.parse_args()
    start = dt.date.fromisoformat(args.start)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="dsdw-bench-gen-"))
    prepare_out(out)
    t0 = time.perf_counter()
    sim = Simulator(SCALES[args.scale], start, args.days, args.seed)
    setup = time.perf_counter() - t0
    days = []
    counts: dict = defaultdict(lambda: defaultdict(dict))
    last_records: list = []
    for k in range(args.days):
        day = start + dt.timedelta(days=k)
        sim._today = day
        t = time.perf_counter()
        sim.run_day(day)
        last_records = [(p.dataset, p.record) for p in sim.outbox.get(day, [])]
        n = sim.write_day(out, day, counts)
        secs = time.perf_counter() - t
        days.append({"date": day.isoformat(), "records": n, "seconds": round(secs, 2),
                     "records_per_s": round(n / secs)})
        print(f"{day}: {n:,} records in {secs:.1f} s ({n / secs:,.0f}/s)", flush=True)
    t = time.perf_counter()
    sim.write_meta(out, counts, sum(d["records"] for d in days))
    meta_s = time.perf_counter() - t
    # same-run reference: serialise + write the last day's records with the writers only
    ref_dir = out / "_reference"
    by_ds: dict[str, list] = defaultdict(list)
    for ds, rec in last_records:
        by_ds[ds].append(rec)
    t = time.perf_counter()
    for ds, recs in by_ds.items():
        c = sim.contracts[ds]
        data = wire.json_lines(recs) if c.channel == "webservice" else wire.csv_payload(
            c, recs, delim=";", encoding="utf-8")
        ref_dir.mkdir(parents=True, exist_ok=True)
        (ref_dir / f"{ds}.out").write_bytes(data)
    ref_s = time.perf_counter() - t
    steady = days[-1]
    result = {
        "benchmark": "generate", "scale": args.scale, "persons": sim.pop.size, "seed": args.seed,
        "machine": machine(), "setup_seconds": round(setup, 2), "days": days,
        "meta_and_truth_seconds": round(meta_s, 2),
        "steady_day": steady,
        "serialize_only_seconds_same_records": round(ref_s, 2),
        "ratio_generate_to_serialize_only": round(steady["seconds"] / ref_s, 2) if ref_s else None,
        "target_seconds_per_day": 60,
        "ratio_steady_day_to_target": round(steady["seconds"] / 60, 3),
        "target_met": steady["seconds"] <= 60,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    res_dir = Path(__file__).resolve().parent / "results"
    res_dir.mkdir(exist_ok=True)
    path = res_dir / f"generate_{args.scale}.json"
    path.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: result[k] for k in ("setup_seconds", "steady_day", "ratio_generate_to_serialize_only",
                                              "target_met", "peak_rss_mb")}, indent=1))
    print(f"-> {path}")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
