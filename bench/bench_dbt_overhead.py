"""dbt's own overhead of a nightly load (issue #14 (b)), before and after a change, on small data in one invocation.

dbt's per-node cost does not depend on data volume, so the nights run on a small lake: ``--lake`` is an ingested
zones root with at least ``--nights`` + 2 delivery days (e.g. the simulator's ``tiny`` scale).  The first two days
are loaded once with the baseline code (day 1 a full build, day 2 the night after it); then each side (``before``:
the code of ``--before-ref``, extracted with ``git archive``; ``after``: this worktree's files, copied at the start) loads the following days
on its own copy of that warehouse, every night in a fresh process (as ``dsdw warehouse load`` and a Dagster run
start one), measured by ``bench_warehouse.DbtProbe`` (import + parse + build wall - the in-node statements' wall:
the same definition as the national bench).  A side's first night may be a full build (a changed project); its
steady nights are the ones after.  Finally every table of the two sides' last warehouses (main and restricted
database) is compared row for row.

    PYTHONPATH=$PWD nice -n 19 python bench/bench_dbt_overhead.py --lake /tmp/lake/root --nights 3 \
        --out bench/results/dbt_overhead.json

Every DuckDB connection of a night runs with ``threads=2`` (the shared machine's rule).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST = dt.date(2026, 10, 1)


def _child(root: Path, day: dt.date, profile: Path | None) -> None:
    """One night in this (fresh) process; prints the night's figures as JSON on the last line of stdout.  The
    code loaded is ``pipelines`` from PYTHONPATH (the side's)."""
    import duckdb

    import pipelines  # the side's package, before bench_warehouse puts this worktree on sys.path

    assert "dbt.cli.main" not in sys.modules
    connect = duckdb.connect

    def limited(database: str = ":memory:", read_only: bool = False, config: dict | None = None, **kw: object):
        return connect(database, read_only=read_only, config={"threads": 2, **(config or {})}, **kw)

    duckdb.connect = limited  # type: ignore[assignment]
    spec = importlib.util.spec_from_file_location("bench_warehouse", HERE / "bench_warehouse.py")
    bw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bw)  # type: ignore[union-attr]
    if profile is not None:  # dbt runs the nodes in a worker thread: profile each node's call there
        import cProfile

        from dbt.task.runnable import GraphRunnableTask

        # the worker thread's CPU, not wall: on the shared machine a wall profile counts the waits for a core
        prof, call = cProfile.Profile(time.thread_time), GraphRunnableTask.call_runner

        def profiled(task, runner):  # noqa: ANN001, ANN202
            prof.enable()
            try:
                return call(task, runner)
            finally:
                prof.disable()

        GraphRunnableTask.call_runner = profiled  # type: ignore[method-assign]
    out = bw.phase_load(root, day, publish=True)
    if profile is not None:
        prof.dump_stats(str(profile))
    out["code"] = str(Path(pipelines.__file__).parents[1])
    print(json.dumps(out))


def _night(code: Path, root: Path, day: dt.date, keys: Path, profile: Path | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "DSDW_KEY_DIR": str(keys)}
    for k in ("DSDW_PSEUDONYM_KEY", "DSDW_RESTRICTED_KEY"):
        env.pop(k, None)
    cmd = [sys.executable, str(HERE / "bench_dbt_overhead.py"), "--child", str(root), day.isoformat()]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    p = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True, check=False)
    if p.returncode:
        raise RuntimeError(f"night {day} with {code} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _summary(night: dict) -> dict:
    d = night["dbt"]
    build = next((i for i in d["invocations"] if i["command"] == "build"), {})
    return {"day": night["day"], "night_seconds": night["seconds"], "night_cpu_seconds": night["cpu_seconds"],
            "nodes": build.get("nodes"), "dbt_import_seconds": d["import_seconds"],
            "dbt_parse_seconds": sum(i["wall_seconds"] for i in d["invocations"] if i["command"] == "parse"),
            "dbt_build_own_seconds": build.get("dbt_own_seconds"),
            "dbt_build_own_cpu_seconds": build.get("dbt_own_cpu_seconds"),
            "overhead_seconds": d["overhead_seconds"], "overhead_cpu_seconds": d["overhead_cpu_seconds"],
            "overhead_ms_per_node": d["overhead_ms_per_node"]}


def _tables(root: Path, code: Path, keys: Path) -> dict[str, list]:
    """Every table of the build database and the restricted one: name -> sorted rows (read in a child with the
    side's... any code: unsealing is the same on both sides)."""
    import duckdb

    from pipelines.warehouse.restricted import unsealed

    os.environ["DSDW_KEY_DIR"] = str(keys)
    out: dict[str, list] = {}
    with unsealed(root) as plain:
        con = duckdb.connect(str(root / "warehouse" / "build.duckdb"), read_only=True)
        con.execute(f"ATTACH '{plain}' AS restricted (READ_ONLY)")
        rels = con.execute("SELECT database_name, schema_name, table_name FROM duckdb_tables() "
                           "WHERE database_name IN ('build', 'restricted') ORDER BY ALL").fetchall()
        for db, schema, t in rels:
            if (schema, t) == ("meta", "model_run"):  # which nodes ran and how long: differs by design
                continue
            q = f'"{db}"."{schema}"."{t}"'
            cols = [r[0] for r in con.execute(f"DESCRIBE {q}").fetchall()]
            # a load's own bookkeeping differs by design (load ids, timings, clock times, the project's digest)
            keep = [c for c in cols if c not in ("load_id", "seconds", "started_at", "finished_at", "_load_id",
                                                 "digest", "publiceret_tid")]
            rows = con.execute(f"SELECT {', '.join(chr(34) + c + chr(34) for c in keep)} FROM {q}").fetchall()
            out[f"{db}.{schema}.{t}"] = sorted(rows, key=repr)
        con.close()
    return out


def _replay(work: Path, day: dt.date, rounds: int, out: Path | None) -> None:
    """``day`` loaded on a copy of each side's last warehouse of a finished run, ``rounds`` times, alternating.
    A copy has other paths than its original, so its parse is a full one: the figure to compare is the build's
    own cost (``dbt_build_own_*``), which a parse does not touch."""
    keys = work / "keys"
    res: dict = {"work": str(work), "day": day.isoformat(), "uptime_start": _uptime(), "nights": []}
    for r in range(rounds):
        for side in ("before", "after"):
            root = work / f"replay_{side}"
            if root.exists():
                shutil.rmtree(root)
            shutil.copytree(work / f"{side}_0", root, symlinks=True)
            s = _summary(_night(work / f"{side}_code", root, day, keys))
            s.update({"side": side, "round": r, "uptime": _uptime()})
            res["nights"].append(s)
            print(json.dumps(s), file=sys.stderr)
            shutil.rmtree(root)
    res["build_own"] = {side: {k: [n[k] for n in res["nights"] if n["side"] == side]
                               for k in ("dbt_build_own_seconds", "dbt_build_own_cpu_seconds")}
                        for side in ("before", "after")}
    text = json.dumps(res, indent=1)
    print(text)
    if out:
        out.write_text(text + "\n")


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs=2, metavar=("ROOT", "DAY"))
    ap.add_argument("--profile", type=Path)
    ap.add_argument("--lake", type=Path)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_dbt_overhead"))
    ap.add_argument("--before-ref", default="main")
    ap.add_argument("--nights", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="sides alternate per round (before, after, before, ...)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--replay", type=Path, metavar="WORK",
                    help="a finished run's work directory: replay the next day on copies of both sides' last "
                         "warehouses, --rounds times, alternating (more samples of the steady night's build)")
    ap.add_argument("--day", type=dt.date.fromisoformat)
    a = ap.parse_args()
    if a.child:
        _child(Path(a.child[0]), dt.date.fromisoformat(a.child[1]), a.profile)
        return
    if a.replay:
        _replay(a.replay, a.day, a.rounds, a.out)
        return
    repo = HERE.parent
    work = a.work
    if work.exists():
        shutil.rmtree(work)
    before = work / "before_code"
    before.mkdir(parents=True)
    arch = subprocess.run(["git", "archive", a.before_ref], cwd=repo, capture_output=True, check=True).stdout
    (work / "before.tar").write_bytes(arch)
    with tarfile.open(work / "before.tar") as tf:
        tf.extractall(before, filter="data")
    after = work / "after_code"  # a snapshot of this worktree (tracked and new files), so editing it meanwhile is safe
    after.mkdir()
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                           capture_output=True, check=True).stdout.split(b"\0")
    for f in filter(None, files):
        src = repo / f.decode()
        if src.is_file():
            (after / f.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, after / f.decode())
    keys = work / "keys"
    sys.path.insert(0, str(repo))
    os.environ["DSDW_KEY_DIR"] = str(keys)
    from pipelines.warehouse import keys as wkeys

    wkeys.ensure_key("pseudonym")
    wkeys.ensure_key("restricted")
    base = work / "base"
    shutil.copytree(a.lake, base, symlinks=True)
    res: dict = {"before_ref": a.before_ref,
                 "before_commit": subprocess.run(["git", "rev-parse", "--short", a.before_ref], cwd=repo,
                                                 capture_output=True, text=True).stdout.strip(),
                 "after_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo,
                                                capture_output=True, text=True).stdout.strip(),
                 "after_dirty": bool(subprocess.run(["git", "status", "--porcelain", "pipelines", "warehouse"],
                                                    cwd=repo, capture_output=True, text=True).stdout.strip()),
                 "lake": str(a.lake), "uptime_start": _uptime(), "base": [], "rounds": []}
    for i in range(2):  # the base: day 1 a full build, day 2 the night after it, with the baseline code
        res["base"].append(_summary(_night(before, base, FIRST + dt.timedelta(days=i), keys)))
        print(json.dumps(res["base"][-1]), file=sys.stderr)
    last: dict[str, Path] = {}
    for r in range(a.rounds):
        for side, code in (("before", before), ("after", after)):
            root = work / f"{side}_{r}"
            shutil.copytree(base, root, symlinks=True)
            nights = []
            for n in range(a.nights):
                day = FIRST + dt.timedelta(days=2 + n)
                w0 = time.perf_counter()
                s = _summary(_night(code, root, day, keys))
                s["process_seconds"] = round(time.perf_counter() - w0, 2)
                s["uptime"] = _uptime()
                nights.append(s)
                print(side, json.dumps(s), file=sys.stderr)
            res["rounds"].append({"round": r, "side": side, "nights": nights})
            if side in last:
                shutil.rmtree(last[side].parent / f"{side}_{r - 1}", ignore_errors=True)
            last[side] = root
    tb, ta = _tables(last["before"], repo, keys), _tables(last["after"], repo, keys)
    differ = sorted(t for t in set(tb) | set(ta) if tb.get(t) != ta.get(t))
    res["tables"] = {"compared": len(set(tb) | set(ta)), "differ": differ,
                     "rows_before": sum(len(v) for v in tb.values()), "rows_after": sum(len(v) for v in ta.values())}
    steady = {side: [n for rr in res["rounds"] if rr["side"] == side for n in rr["nights"][1:]]
              for side in ("before", "after")}
    res["steady_nights"] = {side: {k: round(sum(n[k] for n in ns) / len(ns), 3) for k in (
        "night_seconds", "night_cpu_seconds", "dbt_import_seconds", "dbt_parse_seconds", "dbt_build_own_seconds",
        "dbt_build_own_cpu_seconds", "overhead_seconds", "overhead_cpu_seconds")} | {"count": len(ns)}
        for side, ns in steady.items() if ns}
    res["uptime_end"] = _uptime()
    from machine import write_result  # bench/ is the script's own directory on sys.path

    write_result(res, a.out)


if __name__ == "__main__":
    main()
