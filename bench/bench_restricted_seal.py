"""The nightly unseal + seal of a real restricted database before and after its one-copy form.

Why: every load decrypts the restricted database into memory and encrypts it again whole, so that step grows
with the history (on the national run 3.7 s at 1 year, 13.5 s at 5 years: docs/warehouse_bench.md). The
restricted database held each health record twice (the versions and the ``_aktuel`` table, each with an ART
index) plus the free blocks DuckDB keeps. This takes a sealed restricted database a benchmark left (the national
5-year one), measures the step as it is, converts it the way the first build after the change does (the
``_aktuel`` tables become views, the person_key indexes are dropped, the sealing compacts the sparse file) and
measures the step again, in one invocation; sizes and what the blocks hold before and after are recorded.

    DSDW_KEY_DIR=/tmp/s12_wh/keys python bench/bench_restricted_seal.py --sealed /tmp/s14_r5y.sealed
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

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_warehouse import db_breakdown  # noqa: E402
from machine import machine_info  # noqa: E402

from pipelines.warehouse.build import VERSION_ORDER  # noqa: E402
from pipelines.warehouse.restricted import sealed_path, unsealed  # noqa: E402


def step(root: Path) -> float:
    """One night's unseal + seal (nothing changed in between), in seconds."""
    t = time.perf_counter()
    with unsealed(root, write=True):
        pass
    return round(time.perf_counter() - t, 2)


def convert(plain: Path) -> dict:
    """The one-copy form on the plaintext: each ``fct_ssi_*_aktuel`` table replaced by a view over the versions
    (the model's current-version rule), the person_key indexes dropped. Returns what it changed."""
    order = VERSION_ORDER.replace(",", " DESC,") + " DESC"  # the models' current-version rule, newest first
    con = duckdb.connect(str(plain))
    try:
        aktuel = [t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE "
                                            "'fct\\_ssi\\_%\\_aktuel' ESCAPE '\\'").fetchall()]
        for t in aktuel:
            fct = t.removesuffix("_aktuel")
            key = con.execute(f"SELECT sql FROM duckdb_indexes() WHERE table_name = '{t}'").fetchone()
            cols = key[0].split("(")[-1].rstrip(");") if key else "besked_id"
            con.execute(f"DROP TABLE {t}")
            con.execute(f"""CREATE VIEW {t} AS SELECT * EXCLUDE (_rn) FROM (
                SELECT f.*, row_number() OVER (PARTITION BY {cols} ORDER BY {order}) AS _rn
                FROM {fct} f LEFT JOIN meta_retracted r ON r.payload_id = f._payload_id
                WHERE r.indlaest_dato IS NULL) WHERE _rn = 1 AND NOT er_slettet""")
        dropped = [i for (i,) in con.execute("SELECT index_name FROM duckdb_indexes() "
                                             "WHERE index_name LIKE '%\\_\\_person\\_key' ESCAPE '\\'").fetchall()]
        for i in dropped:
            con.execute(f"DROP INDEX {i}")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {"aktuel_to_views": aktuel, "indexes_dropped": dropped}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sealed", type=Path, required=True, help="a sealed restricted database (left unchanged)")
    ap.add_argument("--nights", type=int, default=2, help="unseal + seal steps timed per form")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsdw-restricted-seal-", dir=args.sealed.parent) as tmp:
        root = Path(tmp)
        sealed_path(root).parent.mkdir(parents=True)
        os.link(args.sealed, sealed_path(root))  # a seal replaces the file: the original stays as it was
        before_bytes = sealed_path(root).stat().st_size
        with unsealed(root) as plain:
            before = db_breakdown(plain)
        as_is = [step(root) for _ in range(args.nights)]
        print("as is", before_bytes, as_is, flush=True)
        t = time.perf_counter()
        with unsealed(root, write=True) as plain:
            changed = convert(plain)
        conversion = round(time.perf_counter() - t, 2)
        after_bytes = sealed_path(root).stat().st_size
        with unsealed(root) as plain:
            after = db_breakdown(plain)
        one_copy = [step(root) for _ in range(args.nights)]
        print("one copy", after_bytes, one_copy, flush=True)
    doc = {"benchmark": "restricted_seal", "sealed": str(args.sealed),
           "as_is": {"sealed_bytes": before_bytes, "unseal_seal_seconds": as_is, "database": before},
           "conversion": {"seconds": conversion, **changed},
           "one_copy": {"sealed_bytes": after_bytes, "unseal_seal_seconds": one_copy, "database": after},
           "ratio_one_copy_over_as_is": {"bytes": round(after_bytes / before_bytes, 3),
                                         "seconds": round(min(one_copy) / min(as_is), 3)},
           "load_average_at_end": os.getloadavg(), "machine": machine_info(duckdb=duckdb.__version__)}
    out = args.out or Path(__file__).parent / "results" / f"restricted_seal_{dt.datetime.now():%Y%m%dT%H%M}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    print(json.dumps(doc["ratio_one_copy_over_as_is"]), out)


if __name__ == "__main__":
    main()
