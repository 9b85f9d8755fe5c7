"""What a fresh environment costs the nightly load in one process: the tests' case (many small roots per pytest
worker) and the nightly process's (one root, many nights).

Builds ``--roots`` small roots the way the warehouse tests do (``tests/fixtures_wh.deliver``: two delivery days of
kontaktgruppe spells), loads each twice and records each load's CPU seconds (this
process, all threads) and wall seconds, plus dbt's import.  Every DuckDB this process opens runs with
``threads=1`` and ``memory_limit=4GB`` (the shared machine's rule; CPU seconds barely depend on it).

    PYTHONPATH=$PWD python bench/bench_dbt_roots.py --roots 3 [--out result.json]

The first load of a process pays dbt's import and parse.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _limit_duckdb() -> None:
    """Every connection of this process (the load's and dbt-duckdb's) with one thread and a 4GB buffer."""
    connect = duckdb.connect

    def limited(database: str = ":memory:", read_only: bool = False, config: dict | None = None, **kw: object):
        return connect(database, read_only=read_only, config={"threads": 1, "memory_limit": "4GB", **(config or {})},
                       **kw)

    duckdb.connect = limited  # type: ignore[assignment]


def make_root(root: Path, tag: int) -> Path:
    """Two delivery days of kontaktgruppe spells for two persons (test_warehouse_dbt's data)."""
    from fixtures_wh import cpr_for, deliver, kg

    p1, p2 = cpr_for(dt.date(1980, 5, 17), 1 + tag), cpr_for(dt.date(1991, 2, 3), 2 + tag, male=False)
    k = [f"22222222-0000-4000-8000-{tag:06d}00000{i}" for i in range(4)]
    deliver(root, "kontaktgruppe", D1, [kg(k[0], p1, "1", "2026-09-01"), kg(k[1], p2, "1", "2026-08-01", "2026-09-15"),
                                        kg(k[2], p2, "2", "2026-09-20")])
    deliver(root, "kontaktgruppe", D2, [kg(k[0], p1, "1", "2026-09-01", "2026-09-30", version=2, change="2"),
                                        kg(k[2], p2, "2", "2026-09-20", version=2, change="3"),
                                        kg(k[3], p1, "3", "2026-10-01")])
    return root


def run(roots: int, work: Path) -> dict:
    from pipelines.warehouse import keys as wkeys

    os.environ["DSDW_KEY_DIR"] = str(work / "keys")
    os.environ.pop("DSDW_PSEUDONYM_KEY", None)
    os.environ.pop("DSDW_RESTRICTED_KEY", None)
    wkeys.ensure_key("pseudonym")
    wkeys.ensure_key("restricted")
    _limit_duckdb()
    out: dict = {"loads": []}
    c, w = _cpu(), time.perf_counter()
    from dbt.cli.main import dbtRunner  # noqa: F401

    out["dbt_import"] = {"cpu_seconds": round(_cpu() - c, 2), "seconds": round(time.perf_counter() - w, 2)}
    from pipelines.warehouse.build import load_warehouse

    for n in range(roots):
        root = make_root(work / f"root{n}", n)
        for d in (D1, D2):
            c, w = _cpu(), time.perf_counter()
            res = load_warehouse(root, d)
            out["loads"].append({"root": n, "day": d.isoformat(), "cpu_seconds": round(_cpu() - c, 2),
                                 "seconds": round(time.perf_counter() - w, 2),
                                 "steps": {k: round(v, 2) for k, v in res.step_seconds.items()}})
            print(json.dumps(out["loads"][-1]), file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--roots", type=int, default=3)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dbt_roots_") as tmp:
        res = run(a.roots, Path(tmp))
    res["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    res["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    from machine import write_result  # bench/ is the script's own directory on sys.path

    write_result(res, a.out)


if __name__ == "__main__":
    main()
