"""The nightly unseal + seal of a real restricted database: sealed as one age file against sealed in chunks.

Why: every load decrypts the restricted database into memory and seals it again. Sealed as one age file the step
grew with the years of health facts kept (national, bench/results/warehouse_national_s15.json: 1.2 s a night at 1
year, 4.9 s at 5 years). Sealed in chunks (pipelines.warehouse.sealed.seal_chunks) a night writes only the chunks
it changed. This takes the restricted database of a benchmark root (either form), and in one invocation times
``--nights`` nights in each form on the same plaintext: unseal, a night's change (rows appended to the largest
table, as many as a national night's SSI increment, plus new persons, then a checkpoint, as a load does), seal.
The national warehouse benchmark (bench_warehouse.py) measures the real nights; this isolates the step. The chunks
are unsealed both in one process (``chunks_one_process``) and by the unseal workers (``chunks``).

    DSDW_KEY_DIR=/tmp/s18/bw/keys python bench/bench_restricted_seal.py --root /tmp/s18/bw/h1825
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_info  # noqa: E402

from pipelines.warehouse.keys import load_key  # noqa: E402
from pipelines.warehouse.restricted import compact_if_sparse, unsealed  # noqa: E402
from pipelines.warehouse.sealed import (  # noqa: E402
    seal_chunks,
    seal_file,
    unseal_chunks,
    unseal_file,
    unseal_workers,
)


def night(plain: Path, rows: int, k: int) -> None:
    """A night's change to the restricted database: ``rows`` versions appended to its largest table (copies of
    existing rows), 1,000 new persons, a checkpoint."""
    con = duckdb.connect(str(plain))
    try:
        big = con.execute("SELECT table_name FROM duckdb_tables() ORDER BY estimated_size DESC LIMIT 1").fetchone()[0]
        con.execute(f"INSERT INTO {big} SELECT * FROM {big} USING SAMPLE {rows} ROWS")
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'person'").fetchone()[0]:
            cols = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = 'person' "
                                              "ORDER BY column_index").fetchall()]
            sel = ", ".join(f"'9{k:03d}' || lpad(CAST(i AS VARCHAR), 6, '0')" if c in ("cpr", "person_key") else c
                            for c in cols)
            con.execute(f"INSERT INTO person SELECT {sel} FROM (SELECT *, row_number() OVER () AS i FROM person "
                        "LIMIT 1000)")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="a root whose restricted database is used (unchanged)")
    ap.add_argument("--nights", type=int, default=3)
    ap.add_argument("--rows", type=int, default=60_000, help="versions a night appends to the largest table")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    key = load_key("restricted")
    forms: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="dsdw-restricted-seal-", dir=args.root) as tmp:
        work = Path(tmp)
        with unsealed(args.root) as plain:  # the database as it is, in memory
            base = work / "base.duckdb"
            shutil.copy(plain, base)
        size = base.stat().st_size
        for form in ("one_file", "chunks_one_process", "chunks"):
            # the starting point of each form: the same plaintext, sealed in that form
            sealed = work / form
            with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
                p = Path(shm) / "r.duckdb"
                shutil.copy(base, p)
                (seal_file(p, sealed, key) if form == "one_file" else seal_chunks(p, sealed, key))
            # chunks_one_process: the chunks decrypted in this process (before the unseal workers); chunks: by
            # sealed.unseal_workers' count (one process per core past PARALLEL_MIN chunks)
            workers = 1 if form == "chunks_one_process" else None
            nights = []
            for k in range(args.nights):
                with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
                    p = Path(shm) / "r.duckdb"
                    t = time.perf_counter()
                    if form == "one_file":
                        unseal_file(sealed, p, key)
                    else:
                        unseal_chunks(sealed, p, key, workers=workers)
                    t_unseal = time.perf_counter() - t
                    night(p, args.rows, k)
                    t = time.perf_counter()
                    compact_if_sparse(p)
                    written = seal_file(p, sealed, key) if form == "one_file" else seal_chunks(p, sealed, key)
                    t_seal = time.perf_counter() - t
                nights.append({"unseal_seconds": round(t_unseal, 2), "seal_seconds": round(t_seal, 2),
                               "step_seconds": round(t_unseal + t_seal, 2), **(written or {})})
                print(form, nights[-1], flush=True)
            forms[form] = {"nights": nights, "sealed_bytes": sum(f.stat().st_size for f in
                                                                 ([sealed] if sealed.is_file() else sealed.rglob("*"))
                                                                 if f.is_file())}
    one, ch = (sum(n["step_seconds"] for n in forms[f]["nights"]) for f in ("one_file", "chunks"))
    un1, unw = (sum(n["unseal_seconds"] for n in forms[f]["nights"]) for f in ("chunks_one_process", "chunks"))
    doc = {"benchmark": "restricted_seal", "root": str(args.root), "plaintext_bytes": size,
           "night": f"{args.rows} versions appended to the largest table, 1,000 persons, checkpoint", "forms": forms,
           "ratio_chunks_over_one_file_step": round(ch / one, 3),
           "unseal_workers": unseal_workers(forms["chunks"]["nights"][0]["chunks"]),
           "ratio_unseal_workers_over_one_process": round(unw / un1, 3),
           "load_average_at_end": os.getloadavg(), "machine": machine_info(duckdb=duckdb.__version__)}
    out = args.out or Path(__file__).parent / "results" / f"restricted_seal_{dt.datetime.now():%Y%m%dT%H%M}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    print(doc["ratio_chunks_over_one_file_step"], doc["ratio_unseal_workers_over_one_process"], out)


if __name__ == "__main__":
    main()
