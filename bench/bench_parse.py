"""Lake parser benchmark: parse_payload + write_parquet vs a raw DuckDB CSV -> Parquet copy.

Over every CSV payload of a generated directory (FTP, portal, UVM drops), in the same
run: ours = read bytes, parse_payload (count, split, check, type by contract, quarantine),
reconcile, write_parquet (atomic, fsync'ed) of the accepted rows (and the quarantine rows
when there are any); raw DuckDB = ``COPY (SELECT * FROM read_csv(file, <same dialect>,
all_varchar=true)) TO 'x.parquet'`` per file, which neither types, checks nor fsyncs
(and drops the records it cannot read: ``ignore_errors``).
Goal (issue #3): ours >= 0.5x raw DuckDB rows/s.  Runs alternate and the median is kept.

A second comparison does the same on one large payload per CSV format (the records of the
generated files repeated, written with the channel writers) to show per-row cost apart
from per-payload cost.

Usage: python bench/bench_parse.py [--scale demo] [--days 2] [--seed 1] [--repeat 5]
                                   [--large-rows 100000] [--data DIR]
Writes bench/results/parse_<scale>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine_info  # noqa: E402
from pipelines.contracts import (
    load_contracts,  # noqa: E402
    wire,  # noqa: E402
)
from pipelines.lake import parse_payload, reconcile, write_parquet  # noqa: E402
from pipelines.lake.formats import LATIN1, wire_format  # noqa: E402
from pipelines.simulate.channels import iter_payloads, read_payload  # noqa: E402
from pipelines.simulate.generate import generate  # noqa: E402
from pipelines.simulate.scales import SCALES  # noqa: E402

CONTRACTS = load_contracts()


def machine() -> dict:
    return machine_info(duckdb=duckdb.__version__, pyarrow=pa.__version__)


def csv_payloads(data_dir: Path) -> list[dict]:
    out = []
    for channel, dataset, path in iter_payloads(data_dir):
        if path.suffix != ".csv":
            continue
        rel = path.relative_to(data_dir).parts
        reporter = path.stem.rsplit("_", 2)[1] if channel in ("ftp", "portal") else rel[1].upper()
        out.append({"channel": channel, "dataset": dataset, "path": path, "reporter": reporter,
                    "day": dt.date.fromisoformat(path.parent.name)})
    return out


def duckdb_sql(item: dict, target: Path) -> str:
    fmt = wire_format(item["channel"], CONTRACTS[item["dataset"]])
    enc = "latin-1" if fmt.encoding == LATIN1 else "utf-8"
    src = str(item["path"]).replace("'", "''")
    # null_padding: the FTP trailer record 'TRAILER;<n>' has 2 columns (DuckDB keeps it as a row);
    # ignore_errors: a record in the wrong encoding would stop the copy (raw DuckDB just drops it)
    return (f"COPY (SELECT * FROM read_csv('{src}', delim='{fmt.delimiter}', quote='\"', escape='\"', "
            f"header=true, all_varchar=true, encoding='{enc}', null_padding=true, ignore_errors=true)) "
            f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)")


def run_ours(items: list[dict], out: Path) -> tuple[float, int, int]:
    t = time.perf_counter()
    rows = quarantined = 0
    for k, it in enumerate(items):
        data = it["path"].read_bytes()
        res = parse_payload(data, CONTRACTS[it["dataset"]], channel=it["channel"], reporter=it["reporter"],
                            leveringsdato=it["day"], payload_id=hashlib.sha256(data).hexdigest()[:32])
        reconcile(res)
        write_parquet(res.accepted, out / f"{k}.parquet")
        if res.quarantine.num_rows:
            write_parquet(res.quarantine, out / f"{k}.q.parquet")
        rows += res.records_received
        quarantined += res.rows_quarantined
    return time.perf_counter() - t, rows, quarantined


def run_duckdb(items: list[dict], out: Path, con: duckdb.DuckDBPyConnection) -> float:
    t = time.perf_counter()
    for k, it in enumerate(items):
        con.execute(duckdb_sql(it, out / f"{k}.parquet"))
    return time.perf_counter() - t


def compare(items: list[dict], work: Path, repeat: int) -> dict:
    ours_dir, duck_dir = work / "ours", work / "duckdb"
    ours_dir.mkdir(parents=True, exist_ok=True)
    duck_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    run_ours(items, ours_dir)  # warm-up (imports, caches, page cache)
    run_duckdb(items, duck_dir, con)
    ours_s, duck_s = [], []
    rows = quarantined = 0
    for _ in range(repeat):
        secs, rows, quarantined = run_ours(items, ours_dir)
        ours_s.append(secs)
        duck_s.append(run_duckdb(items, duck_dir, con))
    o, d = statistics.median(ours_s), statistics.median(duck_s)
    nbytes = sum(it["path"].stat().st_size for it in items)
    return {
        "payloads": len(items), "rows": rows, "rows_quarantined": quarantined, "bytes": nbytes,
        "ours": {"seconds": round(o, 4), "rows_per_s": round(rows / o), "ms_per_payload": round(o / len(items) * 1e3, 3),
                 "runs": [round(s, 4) for s in ours_s]},
        "duckdb_raw": {"seconds": round(d, 4), "rows_per_s": round(rows / d),
                       "ms_per_payload": round(d / len(items) * 1e3, 3), "runs": [round(s, 4) for s in duck_s]},
        "ratio": round(d / o, 3),  # (ours rows/s) / (duckdb rows/s)
    }


def large_payloads(items: list[dict], n_rows: int, work: Path) -> list[dict]:
    """One big payload per CSV format, from the generated records repeated (channel writers)."""
    by_format: dict[str, dict] = {}
    for it in items:
        c = CONTRACTS[it["dataset"]]
        recs, _ = read_payload(it["path"], c)
        slot = by_format.setdefault(wire_format(it["channel"], c).name, {"item": it, "records": []})
        if slot["item"]["dataset"] == it["dataset"]:
            slot["records"].extend(recs)
    out = []
    for name, slot in sorted(by_format.items()):
        it, recs = slot["item"], slot["records"]
        if not recs:
            continue
        c = CONTRACTS[it["dataset"]]
        recs = (recs * (n_rows // len(recs) + 1))[:n_rows]
        writer = {"ftp": wire.ftp_payload, "portal": wire.portal_payload}.get(it["channel"],
                                                                                     wire.uvm_payload)
        path = work / f"large_{name}.csv"
        path.write_bytes(writer(c, recs))
        out.append({**it, "path": path, "format": name})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="demo", choices=sorted(SCALES))
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", default="2026-10-01")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--large-rows", type=int, default=100_000, help="rows of the large payloads (0: skip)")
    ap.add_argument("--data", default=None, help="an existing generated directory (default: generate one)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dsdw-bench-parse-"))
    try:
        if args.data:
            data_dir = Path(args.data)
        else:
            data_dir = work / "src"
            t = time.perf_counter()
            generate(data_dir, scale=args.scale, start=dt.date.fromisoformat(args.start), days=args.days,
                     seed=args.seed)
            print(f"generated {args.scale} x {args.days} days in {time.perf_counter() - t:.1f} s", flush=True)
        items = csv_payloads(data_dir)
        res = compare(items, work / "all", args.repeat)
        print(f"all CSV payloads: {res['payloads']} payloads, {res['rows']:,} rows, {res['bytes']:,} bytes")
        print(f"  ours      : {res['ours']['seconds']:.3f} s  {res['ours']['rows_per_s']:>10,} rows/s  "
              f"{res['ours']['ms_per_payload']:.2f} ms/payload")
        print(f"  duckdb raw: {res['duckdb_raw']['seconds']:.3f} s  {res['duckdb_raw']['rows_per_s']:>10,} rows/s  "
              f"{res['duckdb_raw']['ms_per_payload']:.2f} ms/payload")
        print(f"  ratio ours/duckdb = {res['ratio']:.2f}x (goal >= 0.5x)", flush=True)
        large = {}
        if args.large_rows:
            for it in large_payloads(items, args.large_rows, work):
                r = compare([it], work / f"large_{it['format']}", max(1, min(args.repeat, 3)))
                large[it["format"]] = {"dataset": it["dataset"], **r}
                print(f"large {it['format']} ({it['dataset']}, {r['rows']:,} rows, {r['bytes']:,} bytes): ours "
                      f"{r['ours']['rows_per_s']:,} rows/s, duckdb raw {r['duckdb_raw']['rows_per_s']:,} rows/s, "
                      f"ratio {r['ratio']:.2f}x", flush=True)
        result = {
            "benchmark": "parse", "scale": args.scale, "days": args.days, "seed": args.seed,
            "machine": machine(), "all_csv_payloads": res, "large_payloads": large,
            "goal": "ours >= 0.5x raw DuckDB rows/s over all CSV payloads", "goal_met": res["ratio"] >= 0.5,
        }
        dest = Path(__file__).resolve().parent / "results" / f"parse_{args.scale}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {dest}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
