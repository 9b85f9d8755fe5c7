"""Data-quality benchmark: the generic field checks as DuckDB SQL vs GX's pandas path.

Both run the same suites (``expectations/*.json``) over the same partitions in one run: every
dataset partition of the lake's last delivery day.  DuckDB reads the Parquet itself; the GX
path is timed as read-into-pandas plus validation (GX's import and context set-up are reported
separately, not counted).  The failed counts of the two paths must agree (parity).

Usage: python bench/bench_dq.py [--scale demo] [--days 2] [--seed 5] [--root LAKE_ROOT]
(``--root``: an existing ingested root, ``<root>/lake/...``; ``--scale`` then only names the
result file).  Writes bench/results/dq_<scale>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402

from bench.machine import machine_info  # noqa: E402
from pipelines.contracts import load_contracts  # noqa: E402
from pipelines.quality.gx_sql import run_suite_gx_pandas, run_suite_sql  # noqa: E402
from pipelines.quality.suites import load_suite  # noqa: E402

RECEIVED_AT = "2026-10-03T02:00:00+02:00"


def build_lake(work: Path, scale: str, days: int, seed: int) -> tuple[Path, float, float]:
    """Generate ``days`` days at ``scale`` and ingest them into ``work/root`` (local source servers)."""
    from pipelines.ingest import SourcesConfig, Zones, ingest_day
    from pipelines.simulate.generate import generate
    from pipelines.simulate.servers import start_sources

    src, root = work / "sources", work / "root"
    t = time.perf_counter()
    gen = generate(src, scale=scale, start=dt.date(2026, 10, 1), days=days, seed=seed)
    gen_s = time.perf_counter() - t
    meta = json.loads((gen.out / "generation.json").read_text())
    start = dt.date.fromisoformat(meta["start"])
    t = time.perf_counter()
    with start_sources(src) as systems:
        cfg = SourcesConfig.from_describe(systems.describe())
        for k in range(meta["days"]):
            ingest_day(start + dt.timedelta(days=k), Zones(root), cfg, received_at=RECEIVED_AT,
                       workers=min(2, os.cpu_count() or 1))
    return root, gen_s, time.perf_counter() - t


def last_day_partitions(root: Path) -> tuple[str, list[tuple[str, Path]]]:
    contracts = load_contracts()
    days = sorted({p.name.split("=", 1)[1]
                   for ds in contracts for p in (root / "lake" / ds).glob("leveringsdato=*")})
    if not days:
        raise SystemExit(f"no lake partitions under {root / 'lake'}")
    day = days[-1]
    parts = [(ds, root / "lake" / ds / f"leveringsdato={day}") for ds in sorted(contracts)]
    return day, [(ds, p) for ds, p in parts if any(p.glob("*.parquet"))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="demo")
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--root", default=None, help="an already ingested root (skips generation and ingestion)")
    ap.add_argument("--repeats", type=int, default=3, help="DuckDB runs (the best is the headline)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dsdw-bench-dq-"))
    gen_s = ingest_s = None
    try:
        if args.root:
            root = Path(args.root)
        else:
            root, gen_s, ingest_s = build_lake(work, args.scale, args.days, args.seed)
        day, parts = last_day_partitions(root)
        contracts = load_contracts()
        suites = {ds: load_suite(ds) for ds, _ in parts}
        rels = {ds: f"read_parquet('{p}/*.parquet', hive_partitioning = false)" for ds, p in parts}
        keys = {ds: (contracts[ds].record_key or ("besked_id",))[0] for ds, _ in parts}
        today = dt.date.today()

        con = duckdb.connect()
        rows = {ds: con.execute(f"SELECT count(*) FROM {rels[ds]}").fetchone()[0] for ds, _ in parts}
        duck_runs = []
        for _ in range(max(1, args.repeats)):
            t = time.perf_counter()
            duck = {ds: run_suite_sql(suites[ds], con, rels[ds], keys[ds], today=today) for ds, _ in parts}
            duck_runs.append(time.perf_counter() - t)

        t = time.perf_counter()
        from pipelines.quality.gx_sql import _gx_batch_definition  # import GX + ephemeral context

        _gx_batch_definition()
        gx_setup_s = time.perf_counter() - t
        read_s = gx_s = 0.0
        gx = {}
        per_dataset = {}
        for ds, _ in parts:
            t = time.perf_counter()
            df = con.execute(f"SELECT * FROM {rels[ds]}").df()
            t1 = time.perf_counter()
            gx[ds] = run_suite_gx_pandas(suites[ds], df)
            t2 = time.perf_counter()
            read_s += t1 - t
            gx_s += t2 - t1
            per_dataset[ds] = {"rows": rows[ds], "expectations": len(suites[ds]["expectations"]),
                               "gx_seconds": round(t2 - t1, 3)}

        mismatches = [(ds, a.rule_id, a.records_failed, b.records_failed)
                      for ds, _ in parts for a, b in zip(duck[ds], gx[ds], strict=True)
                      if (a.records_checked, a.records_failed) != (b.records_checked, b.records_failed)]
        duck_best = min(duck_runs)
        total_rows = sum(rows.values())
        n_exp = sum(len(s["expectations"]) for s in suites.values())
        result = {
            "benchmark": "dq_generic_checks", "scale": args.scale, "day": day,
            "root": str(root) if args.root else None,
            "machine": machine_info(duckdb=duckdb.__version__, great_expectations=_gx_version()),
            "generate_seconds": None if gen_s is None else round(gen_s, 2),
            "ingest_seconds": None if ingest_s is None else round(ingest_s, 2),
            "partitions": len(parts), "rows_checked": total_rows, "expectations": n_exp,
            "expectation_evaluations": sum(rows[ds] * len(suites[ds]["expectations"]) for ds, _ in parts),
            "records_failed": sum(r.records_failed for res in duck.values() for r in res),
            "duckdb_seconds_best": round(duck_best, 3), "duckdb_seconds_first": round(duck_runs[0], 3),
            "duckdb_rows_per_s": round(total_rows / duck_best),
            "gx_pandas_setup_seconds": round(gx_setup_s, 2),
            "gx_pandas_read_seconds": round(read_s, 3), "gx_pandas_validate_seconds": round(gx_s, 3),
            "gx_pandas_rows_per_s": round(total_rows / (read_s + gx_s)),
            "speedup_duckdb_vs_gx_pandas": round((read_s + gx_s) / duck_best, 1),
            "speedup_validate_only": round(gx_s / duck_best, 1),
            "parity_failed_counts_equal": not mismatches, "parity_mismatches": mismatches[:20],
            "slowest_gx_datasets": dict(sorted(per_dataset.items(), key=lambda kv: -kv[1]["gx_seconds"])[:5]),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res_dir = Path(__file__).resolve().parent / "results"
    res_dir.mkdir(exist_ok=True)
    path = res_dir / f"dq_{args.scale}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print(f"-> {path}")
    if mismatches:
        raise SystemExit("GX pandas and DuckDB disagree: see parity_mismatches")


def _gx_version() -> str:
    from importlib.metadata import version

    return version("great_expectations")


if __name__ == "__main__":
    main()
