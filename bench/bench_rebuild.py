"""One-pass rebuild of the dbt models from the whole lake: DuckDB vs Spark ``local[2]`` vs ``local-cluster`` with 1
and 2 executors, side by side in one invocation (issue 15).

Each configuration runs ``dsdw warehouse rebuild`` in its own process (a fresh JVM per Spark run) on the same
lake; the benchmark samples the resident memory of that process tree (Python driver, Spark's JVMs and Python
workers) every 0.2 s and keeps the peak. Results (wall seconds, peak RSS, seconds per stage and model, rows per
second per stage, ratios to DuckDB and 2 vs 1 executors) go to ``bench/results/rebuild_<scale>_<time>.json``.

    python bench/bench_rebuild.py --scale tiny --days 2          # generate + ingest a lake, then rebuild
    python bench/bench_rebuild.py --root data/demo/pipeline       # an existing lake (e.g. after make demo)
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
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_info  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = {
    "duckdb": ("duckdb", None),
    "spark_local1": ("spark", "local[1]"),
    "spark_local2": ("spark", "local[2]"),
    "spark_cluster1": ("spark", "local-cluster[1,1,2048]"),
    "spark_cluster2": ("spark", "local-cluster[2,1,2048]"),
}


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and its descendants (from /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for t in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (t / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_measured(cmd: list[str], env: dict[str, str], timeout: float | None = None) -> tuple[float, int, int, str]:
    """(seconds, peak RSS bytes of the process tree, return code, output tail). After ``timeout`` seconds the
    process group is killed (return code -9): a shared machine gets its cores back."""
    import signal

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    peak = 0
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout or []), daemon=True)
    reader.start()
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        if timeout and time.perf_counter() - t0 > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            out.append(f"killed after {timeout:.0f} s\n")
            break
        time.sleep(0.2)
    reader.join(timeout=5)
    return time.perf_counter() - t0, peak, proc.returncode, "".join(out[-20:])


def make_lake(work: Path, scale: str, days: int, seed: int) -> Path:
    """Generated and ingested zones (no warehouse: the rebuild plans from the ledger, one load per day)."""
    from pipelines.ingest import SourcesConfig, Zones, ingest_day
    from pipelines.simulate.generate import generate
    from pipelines.simulate.servers import start_sources

    start = dt.date(2026, 10, 1)
    generate(work / "src", scale=scale, start=start, days=days, seed=seed)
    with start_sources(work / "src") as systems:
        cfg = SourcesConfig.from_describe(systems.describe())
        for i in range(days):
            ingest_day(start + dt.timedelta(days=i), Zones(work / "root"), cfg)
    return work / "root"


def clone_history(root: Path, copies: int) -> int:
    """Make the lake ``copies + 1`` times longer: every payload copied ``copies`` times into earlier history.

    Copy ``k`` of a payload moves every date and timestamp (valid time, registration, leveringsdato) back by ``k``
    times the lake's span of leveringsdato and makes its ids unique (payload id, besked_id, the record key), so
    each copy is a separate earlier delivery of separate records by the same persons; the ledger gets a row per
    copy (``loaded``; a correction's ``supersedes`` points at the copy of its predecessor). Generating years of
    deliveries is out of reach here (bench/warehouse_history.py clones the warehouse the same way).
    Returns the number of lake rows written."""
    import sqlite3

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipelines.contracts import get_contract

    con = sqlite3.connect(root / "ledger.sqlite")
    cols = [r[1] for r in con.execute("PRAGMA table_info(payloads)").fetchall()]
    rows = [dict(zip(cols, r, strict=True)) for r in con.execute(
        "SELECT * FROM payloads WHERE status IN ('loaded', 'superseded') AND lake_path IS NOT NULL").fetchall()]
    days = sorted({r["leveringsdato"] for r in rows})
    span = (dt.date.fromisoformat(days[-1]) - dt.date.fromisoformat(days[0])).days + 1
    written = 0
    new_rows = []
    for k in range(1, copies + 1):
        shift = dt.timedelta(days=span * k)
        for r in rows:
            if not Path(r["lake_path"]).exists():  # a superseded payload's files leave the lake
                continue
            c = get_contract(r["dataset"])
            t = pq.read_table(r["lake_path"])
            pid = f"{r['payload_id']}c{k}"
            day = dt.date.fromisoformat(r["leveringsdato"]) - shift
            ids = {"besked_id", *c.record_key}
            arrays = []
            for f in t.schema:
                a = t.column(f.name)
                if f.name == "_payload_id":
                    a = pa.array([pid] * t.num_rows, f.type)
                elif f.name in ids and pa.types.is_string(f.type):
                    a = pc.binary_join_element_wise(a, pa.scalar(f"-c{k}"), "")
                elif pa.types.is_date32(f.type) or pa.types.is_timestamp(f.type):
                    a = pc.subtract(a, pa.scalar(shift, pa.duration("us"))) if pa.types.is_timestamp(f.type) \
                        else pc.cast(pc.subtract(pc.cast(a, pa.timestamp("s")), pa.scalar(shift, pa.duration("s"))),
                                     pa.date32())
                arrays.append(a)
            out = Path(r["lake_path"]).parent.parent / f"leveringsdato={day.isoformat()}" / f"clone{k}__{pid}.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_arrays(arrays, schema=t.schema), out)
            written += t.num_rows
            new_rows.append({**r, "payload_id": pid, "leveringsdato": day.isoformat(), "lake_path": str(out),
                             "sha256": f"{r['sha256']}c{k}", "status": "loaded" if r["status"] == "loaded" else "superseded",
                             "supersedes": f"{r['supersedes']}c{k}" if r["supersedes"] else None})
    with con:
        con.executemany(f"INSERT INTO payloads ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [[x[c] for c in cols] for x in new_rows])
    con.close()
    return written


PERSON_STRIDE = 104729  # a prime: copy k of person i goes to rank (i + k * stride) mod n in the kommune (as warehouse_history)


def _person_groups(lake: Path) -> tuple[list[str], Any, Any, Any]:
    """Every CPR of the lake sorted by (kommune, cpr) with, per position, its group's start, size and its rank."""
    import numpy as np

    from pipelines.contracts import load_contracts

    parts = []
    for c in load_contracts().values():
        cpr = [f.name for f in c.fields if f.type == "cpr"]
        if not cpr or not any((lake / c.dataset).glob("*/*.parquet")):
            continue
        kom = "kommunekode" if any(f.name == "kommunekode" for f in c.fields) else "NULL"
        parts += [f"SELECT {col} AS cpr, {kom} AS kommune FROM read_parquet('{lake}/{c.dataset}/*/*.parquet', "
                  f"union_by_name = true) WHERE {col} IS NOT NULL" for col in cpr]
    rows = duckdb.sql(f"SELECT cpr, coalesce(min(kommune), '?') AS g FROM ({' UNION ALL '.join(parts)}) "
                      "GROUP BY cpr ORDER BY g, cpr").fetchall()
    cprs = [r[0] for r in rows]
    g = np.array([r[1] for r in rows], dtype=object)
    new = np.r_[True, g[1:] != g[:-1]]
    start_of = np.maximum.accumulate(np.where(new, np.arange(len(g)), 0))
    sizes = np.diff(np.r_[np.flatnonzero(new), len(g)])
    size = sizes[np.cumsum(new) - 1]
    return cprs, start_of, size, np.arange(len(g)) - start_of


def clone_national(src: Path, dst: Path, copies: int, spacing_days: int, layout: str = "compact") -> dict:
    """A lake of ``copies + 1`` national deliveries from the one in ``src`` (zones: lake + ledger), ``spacing_days``
    apart back in time, in ``dst`` (the source's files are hard-linked as copy 0).

    Copy ``k`` of every payload: every DATE/TIMESTAMP (valid time, registration, leveringsdato) ``k *
    spacing_days`` earlier; ids (payload id, besked_id, record keys, every ``*_id`` reference: bench/
    warehouse_history.id_columns) made unique per copy with the same suffix, so references stay intact; each CPR
    rotated within its kommune (rank ``(i + k * 104729) mod n``), so history spreads over the population instead
    of giving the same persons ``copies`` overlapping records. The ledger gets one ``loaded`` row per payload copy.

    ``layout``: ``payload`` writes one file per payload copy (ingestion's layout); ``compact`` one file per dataset
    and delivery day holding every payload copy's rows (a bench-side compaction: the rebuild reads the lake per
    dataset directory and keys rows by ``_payload_id``, so both layouts give the same models). Returns counts."""
    import os
    import shutil
    import sqlite3

    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from warehouse_history import id_columns

    from pipelines.contracts import load_contracts

    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    (dst / "lake").mkdir(parents=True)
    con = sqlite3.connect(src / "ledger.sqlite")
    cols = [r[1] for r in con.execute("PRAGMA table_info(payloads)").fetchall()]
    ledger = [dict(zip(cols, r, strict=True)) for r in con.execute(
        "SELECT * FROM payloads WHERE status = 'loaded' AND lake_path IS NOT NULL").fetchall()]
    con.close()
    cprs, start_of, size, rank = _person_groups(src / "lake")
    index = pd.Index(cprs)
    cpr_arr = np.array(cprs, dtype=object)
    new_rows: list[dict] = []
    files = rows = 0
    for r in ledger:  # copy 0: the real delivery, linked
        p = Path(r["lake_path"])
        q = dst / p.relative_to(src)
        q.parent.mkdir(parents=True, exist_ok=True)
        os.link(p, q)
        new_rows.append({**r, "lake_path": str(q)})
        files += 1
    by_ds: dict[str, list[dict]] = {}
    for r in ledger:
        by_ds.setdefault(r["dataset"], []).append(r)
    contracts = load_contracts()
    afmelding_schema = {a: pq.read_schema(by_ds[a][0]["lake_path"]) for a in AFMELDING_OF.values()}
    synthesized = 0
    for ds, payloads in sorted(by_ds.items()):
        c = contracts[ds]
        t = pa.concat_tables([pq.read_table(p["lake_path"]) for p in payloads], promote_options="default")
        idc = [n for n in id_columns({f.name: ("VARCHAR" if pa.types.is_string(f.type) else str(f.type))
                                      for f in t.schema}) if n != "_payload_id"]
        cprc = [f.name for f in c.fields if f.type == "cpr" and f.name in t.column_names]
        pos = {n: index.get_indexer(t.column(n).to_pandas()) for n in cprc}
        for k in range(1, copies + 1):
            shift = k * spacing_days
            arrays = []
            for f in t.schema:
                a = t.column(f.name)
                if f.name == "_payload_id" or f.name in idc:
                    a = pc.binary_join_element_wise(a, pa.scalar(f"c{k}"), "")
                elif f.name in pos:
                    i = pos[f.name]
                    j = np.where(i >= 0, start_of[i] + (rank[i] + k * PERSON_STRIDE) % size[i], -1)
                    a = pa.array(np.where(j >= 0, cpr_arr[j], None), f.type)
                elif pa.types.is_date32(f.type):
                    a = pc.cast(pc.subtract(pc.cast(a, pa.int32()), pa.scalar(shift, pa.int32())), pa.date32())
                elif pa.types.is_timestamp(f.type):
                    a = pc.subtract(a, pa.scalar(dt.timedelta(days=shift), pa.duration(f.type.unit)))
                arrays.append(a)
            ct = pa.Table.from_arrays(arrays, schema=t.schema)
            day_k = dt.date.fromisoformat(payloads[0]["leveringsdato"]) - dt.timedelta(days=shift)
            ct = end_spells(ct, ds, day_k, spacing_days)
            rows += ct.num_rows
            by_pid = {}
            for p in payloads:
                day = dt.date.fromisoformat(p["leveringsdato"]) - dt.timedelta(days=shift)
                part = dst / "lake" / ds / f"leveringsdato={day.isoformat()}"
                part.mkdir(parents=True, exist_ok=True)
                by_pid[p["payload_id"]] = (p, day, part)
            if layout == "compact":
                days = {d for _p, d, _ in by_pid.values()}
                assert len(days) == 1, days
                out = next(iter(by_pid.values()))[2] / f"clone{k}.parquet"
                pq.write_table(ct, out, compression="zstd", compression_level=1)
                files += 1
            for pid, (p, day, part) in by_pid.items():
                if layout != "compact":
                    out = part / f"{p['reporter']}__{pid}c{k}.parquet"
                    pq.write_table(ct.filter(pc.equal(ct.column("_payload_id"), f"{pid}c{k}")), out,
                                   compression="zstd", compression_level=1)
                    files += 1
                new_rows.append({**p, "payload_id": f"{pid}c{k}", "leveringsdato": day.isoformat(),
                                 "lake_path": str(out), "sha256": f"{p['sha256']}c{k}", "source_name":
                                 f"{p['source_name']}.c{k}", "landing_path": None, "supersedes": None})
            if ds in AFMELDING_OF:  # the afmeldinger that end copy k's tilmeldinger (§ 17, stk. 7)
                af = afmeldinger(ct, ds, day_k, afmelding_schema[AFMELDING_OF[ds]])
                part = dst / "lake" / AFMELDING_OF[ds] / f"leveringsdato={day_k.isoformat()}"
                part.mkdir(parents=True, exist_ok=True)
                out = part / f"clone{k}_afmelding.parquet"
                pq.write_table(af, out, compression="zstd", compression_level=1)
                files += 1
                rows += af.num_rows
                synthesized += af.num_rows
                for pid, (p, _day, _part) in by_pid.items():
                    new_rows.append({**p, "dataset": AFMELDING_OF[ds], "payload_id": f"{pid}c{k}a",
                                     "leveringsdato": day_k.isoformat(), "lake_path": str(out),
                                     "sha256": f"{p['sha256']}c{k}a", "source_name": f"{p['source_name']}.c{k}a",
                                     "landing_path": None, "supersedes": None})
    con = sqlite3.connect(dst / "ledger.sqlite")
    con.execute(f"CREATE TABLE payloads ({', '.join(cols)})")
    con.executemany(f"INSERT INTO payloads VALUES ({', '.join('?' * len(cols))})",
                    [[x[c] for c in cols] for x in new_rows])
    con.commit()
    con.close()
    return {"copies": copies, "spacing_days": spacing_days, "layout": layout, "payloads": len(new_rows),
            "lake_files": files, "cloned_rows": rows, "synthesized_afmelding_rows": synthesized,
            "persons": len(cprs)}


AFMELDING_OF = {"tilmelding": "afmelding", "akasse_tilmelding": "akasse_afmelding"}  # § 17, stk. 7; § 53, stk. 2
AFMELDING_AARSAG = "1"  # ordinær beskæftigelse: not 10/11, which would also end an a-kasse membership (dim_person)


def end_spells(t: Any, dataset: str, day: dt.date, spacing_days: int) -> Any:
    """Copy ``k >= 1`` of a delivery made realistic for spells: its open spells end, so a person has at most one
    open spell per kind (the real delivery, copy 0, holds them).

    * every open spell (``slutdato`` NULL: kontaktgruppe, fravaer, akasse_fravaer, ...) ends on the copy's delivery
      day, reported in the same record (§ 16, stk. 2 lets an end be registered on its day);
    * a kontaktgruppe spell also starts no earlier than the day after the previous copy's delivery (``day -
      spacing_days + 1``; registreringsdato moved with it): copy k of the population is the spells of copy k's
      window, so a person's cloned spells follow each other instead of overlapping (§ 16, stk. 6: one
      kontaktgruppe at a time, rule KG-004). Without this every copy's spell reached back years and the weekly
      panel (fct_person_week) grew with copies times spell length.
    A spell that ended before the window keeps its dates."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = t.column_names
    if "startdato" not in names or "slutdato" not in names:
        return t
    d = pa.scalar(day, pa.date32())
    start, end = t.column("startdato"), t.column("slutdato")
    if dataset == "kontaktgruppe":
        w0 = pa.scalar(day - dt.timedelta(days=spacing_days - 1), pa.date32())
        # Kleene logic: an open spell (NULL end) is clamped too
        late = pc.fill_null(pc.or_kleene(pc.is_null(end), pc.greater_equal(end, w0)), False)
        new_start = pc.if_else(pc.and_kleene(pc.less(start, w0), late), w0, start)
        t = t.set_column(names.index("startdato"), "startdato", new_start)
        if "registreringsdato" in names:
            reg = t.column("registreringsdato")
            t = t.set_column(names.index("registreringsdato"), "registreringsdato",
                             pc.if_else(pc.less(reg, new_start), new_start, reg))
        start = new_start
    ended = pc.if_else(pc.is_null(end), pc.if_else(pc.fill_null(pc.greater(start, d), False), start, d), end)
    return t.set_column(names.index("slutdato"), "slutdato", ended)


def afmeldinger(t: Any, dataset: str, day: dt.date, schema: Any) -> Any:
    """One afmelding per tilmelding of a cloned delivery (``t``, copy ``k >= 1`` of ``dataset``), ending it on the
    copy's delivery day: a tilmelding has no end date of its own, it ends by an afmelding that names it (§ 17,
    stk. 7; a-kassens afmelding: § 53, stk. 2, which has no tilmelding_id in its contract and ends the person's
    registration by cpr). Same reporter, cpr and kommune/a-kasse as the tilmelding; afmeldingsaarsag 1, registered
    and effective on the delivery day (§ 17, stk. 7, nr. 2: the afmeldingsdato may not precede registration)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = t.num_rows
    ts = pa.scalar(dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC), pa.timestamp("us", tz="UTC"))
    date = pa.scalar(day, pa.date32())
    suffix = pa.scalar("a")
    entitet = AFMELDING_OF[dataset]
    cols = {
        "besked_id": pc.binary_join_element_wise(t.column("besked_id"), suffix, ""),
        "entitet": pa.array([entitet] * n),
        "aendringstype": pa.array(["1"] * n), "version": pa.array([1] * n, pa.int64()),
        "indberetter": t.column("indberetter"),
        "haendelsestidspunkt": pa.array([ts.as_py()] * n, ts.type),
        "registreringstidspunkt": pa.array([ts.as_py()] * n, ts.type),
        "afmelding_id": pc.binary_join_element_wise(t.column("tilmelding_id"), suffix, ""),
        "cpr": t.column("cpr"),
        "registreringsdato": pa.array([date.as_py()] * n, pa.date32()),
        "afmeldingsdato": pa.array([date.as_py()] * n, pa.date32()),
        "afmeldingsaarsag": pa.array([AFMELDING_AARSAG] * n),
        "_channel": t.column("_channel"), "_reporter": t.column("_reporter"),
        "_payload_id": pc.binary_join_element_wise(t.column("_payload_id"), suffix, ""),
        "_record_no": t.column("_record_no"),
        "_leveringsdato": pa.array([date.as_py()] * n, pa.date32()),
    }
    for c in ("kommunekode", "akassekode", "tilmelding_id"):
        if c in schema.names:
            cols[c] = t.column(c)
    return pa.Table.from_arrays([pc.cast(cols[f.name], f.type) for f in schema], schema=schema)


# hand-written models named like facts (the panel, the spells): the derived stage
DERIVED_FACTS = {"fct_person_week", "fct_ydelsesforloeb", "fct_kategori_forloeb"}


def stage_of(model: str) -> str:
    if model in DERIVED_FACTS or model.startswith(("int_", "dim_", "mart_")):
        return "derived"
    if model.startswith("stg_"):
        return "staging"
    if model.endswith("_aktuel"):
        return "current_state"
    if model.endswith("_historik"):
        return "history_view"
    return "facts" if model.startswith("fct_") else "derived"


def rows_per_model(target: str, out: Path) -> dict[str, int]:
    """Rows of every table a rebuild wrote (DuckDB database or Spark's Parquet directories)."""
    con = duckdb.connect()
    rows: dict[str, int] = {}
    if target == "duckdb":
        con.execute(f"ATTACH '{out / 'warehouse.duckdb'}' AS w (READ_ONLY)")
        for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'w' "
                                "AND schema_name IN ('main', 'staging')").fetchall():
            rows[t] = con.execute(f'SELECT count(*) FROM w."{s}"."{t}"').fetchall()[0][0]
    else:
        for d in sorted((out / "tables").glob("*.db/*")):
            if d.parent.name in ("main.db", "staging.db") and list(d.glob("*.parquet")):
                rows[d.name] = con.execute(f"SELECT count(*) FROM read_parquet('{d}/*.parquet')").fetchall()[0][0]
    return rows


def panel_size(lake: Path, copies: int, spacing_days: int = 41, load_week: str = "2026-09-28") -> dict:
    """How big the weekly panel of a cloned lake gets, without building it: the spell-weeks ``int_person_week_ny``
    expands (one row per current kontaktgruppe spell and week, an open spell up to the load week), the panel's rows
    (every week from a person's first spell to the load week), and the spell-weeks the former clone gave (copy k of
    an open spell starting ``k * spacing_days`` earlier and staying open: why it spilled 45 GB on 1 year)."""
    con = duckdb.connect(config={"memory_limit": "2GB", "threads": 1})
    d = f"DATE '{load_week}'"
    cur = (f"SELECT * FROM read_parquet('{lake}/kontaktgruppe/*/*.parquet', union_by_name = true) "
           "QUALIFY row_number() OVER (PARTITION BY kontaktgruppe_id ORDER BY version DESC) = 1")
    weeks = f"date_diff('week', date_trunc('week', startdato), date_trunc('week', least(coalesce(slutdato, {d}), {d})))"
    spells, open_, spell_weeks = con.sql(f"WITH s AS ({cur}) SELECT count(*), count(*) FILTER (WHERE slutdato IS NULL), "
                                         f"sum(greatest(0, {weeks} + 1)) FROM s").fetchall()[0]
    panel = con.sql(f"WITH s AS ({cur}) SELECT sum(date_diff('week', f, {d}) + 1) FROM (SELECT cpr, "
                    "min(date_trunc('week', startdato)) AS f FROM s GROUP BY cpr)").fetchall()[0][0]
    real = sorted(p.name for p in (lake / "kontaktgruppe").iterdir())[-1]  # copy 0: the last delivery day
    old = con.sql(f"""WITH s AS (SELECT * FROM read_parquet('{lake}/kontaktgruppe/{real}/*.parquet')
                        QUALIFY row_number() OVER (PARTITION BY kontaktgruppe_id ORDER BY version DESC) = 1),
                      c AS (SELECT CAST(range * {spacing_days} AS INTEGER) AS shift FROM range(0, {copies} + 1))
                      SELECT sum(greatest(0, date_diff('week', date_trunc('week', startdato - shift), date_trunc('week',
                          CASE WHEN slutdato IS NULL THEN {d} ELSE slutdato - shift END)) + 1)) FROM s, c""").fetchall()[0][0]
    return {"copies": copies, "spells": spells, "open_spells": open_, "spell_weeks": int(spell_weeks),
            "panel_rows": int(panel), "spell_weeks_if_open_spells_stayed_open": int(old)}


def models_from_dbt_log(out: Path) -> dict[str, float]:
    """``{model: seconds}`` of the models a rebuild finished, from dbt's log: what a run stopped by the timeout
    (or killed) still tells per model."""
    import re

    log = out / "dbt_target" / "dbt.log"
    done: dict[str, float] = {}
    if log.exists():
        pat = re.compile(r"OK created \S+ \S+ model (\S+) .*\[OK in ([0-9.]+)s\]")
        for line in log.read_text(errors="replace").splitlines():
            m = pat.search(line)
            if m:
                done[m.group(1).rsplit(".", 1)[-1]] = float(m.group(2))
    return done


def annotate(result: Path, work: Path) -> None:
    """Add ``models_logged`` (and per-stage model-seconds) to the unfinished runs of an earlier result file."""
    doc = json.loads(result.read_text())
    for name, r in doc["results"].items():
        if r.get("returncode") != 0:
            done = models_from_dbt_log(work / f"out_{name}")
            stages: dict[str, dict] = {}
            for m, secs in done.items():
                st = stages.setdefault(stage_of(m), {"models": 0, "seconds": 0.0})
                st["models"] += 1
                st["seconds"] = round(st["seconds"] + secs, 2)
            r.update(models_logged=done, stages_logged=stages)
    result.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="tiny")
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--root", type=Path, help="existing zones with a lake (skips generating)")
    ap.add_argument("--work", type=Path, help="working directory (default: a temp dir)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {list(CONFIGS)}")
    ap.add_argument("--clone", type=int, default=0, help="copy the lake's deliveries this many times into earlier "
                                                          "history (clone_history)")
    ap.add_argument("--national-copies", type=int, default=0,
                    help="clone --root's lake (one national delivery day) this many times into a new lake "
                         "(clone_national: persons rotated within kommune) and rebuild that")
    ap.add_argument("--drop-outputs", action="store_true",
                    help="delete each configuration's outputs once measured (national runs: two engines' outputs "
                         "do not fit the disk side by side)")
    ap.add_argument("--timeout", type=float, help="seconds per configuration before its process group is killed")
    ap.add_argument("--spacing", type=int, default=40, help="days between the national copies")
    ap.add_argument("--layout", default="compact", choices=("compact", "payload"), help="clone_national's files")
    ap.add_argument("--select", nargs="+", metavar="SELECTOR",
                    help="build only these dbt models (dbt selection syntax; `staging` is the staging folder): one "
                         "stage on a large lake, e.g. Spark 1 vs 2 executors; the publication step is skipped")
    ap.add_argument("--annotate", type=Path, help="add the dbt log's finished models to the unfinished runs of this "
                                                   "result file (with --work) and exit")
    ap.add_argument("--panel-size", type=int, metavar="COPIES", help="print panel_size of --root's lake and exit")
    args = ap.parse_args()
    if args.panel_size is not None:
        print(json.dumps(panel_size(args.root / "lake", args.panel_size)))
        return
    if args.annotate:
        annotate(args.annotate, args.work)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="dsdw-bench-rebuild-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DSDW_KEY_DIR", str(work / "keys"))
    # national scale on this shared 2-core 24 GiB machine: DuckDB's buffers below the 8 GiB goal, its spill capped
    # (a query over the cap fails instead of filling the shared disk), Spark's driver <= 6g
    env.setdefault("DSDW_DUCKDB_MEMORY_LIMIT", "6GB")
    env.setdefault("DSDW_DUCKDB_MAX_TEMP", "20GB")
    env.setdefault("DSDW_DUCKDB_PRESERVE_ORDER", "false")  # less spill (warehouse/profiles.yml)
    env.setdefault("DSDW_SPARK_DRIVER_MEMORY", "5g")
    os.environ.update(env)
    from pipelines.warehouse.keys import ensure_key

    ensure_key("pseudonym")
    ensure_key("restricted")
    t = time.perf_counter()
    root = args.root or make_lake(work, args.scale, args.days, args.seed)
    lake_seconds = None if args.root else time.perf_counter() - t
    cloned = clone_history(root, args.clone) if args.clone else 0
    national = None
    if args.root and (args.root / "clone.json").exists():  # a lake clone_national made in an earlier run
        national = json.loads((args.root / "clone.json").read_text())
    if args.national_copies:
        t = time.perf_counter()
        national = clone_national(root, work / "national", args.national_copies, args.spacing, args.layout)
        national["seconds"] = round(time.perf_counter() - t, 1)
        print("clone_national", national, flush=True)
        root = work / "national"
    lake_rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/lake/*/*/*.parquet', union_by_name = true)"
                           ).fetchall()[0][0]
    lake_bytes = sum(p.stat().st_size for p in (root / "lake").rglob("*.parquet"))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    results: dict[str, dict] = {}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"rebuild_{args.scale}_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    for name in args.configs.split(","):
        target, master = CONFIGS[name]
        out = work / f"out_{name}"
        js = work / f"{name}.json"
        cmd = [sys.executable, "-m", "pipelines.cli", "warehouse", "rebuild", "--target", target, "--root", str(root),
               "--out", str(out), "--json", str(js)] + (["--master", master] if master else [])
        for sel in args.select or []:
            cmd += ["--select", sel]
        load0 = os.getloadavg()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        secs, peak, rc, tail = run_measured(cmd, env, args.timeout)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        r: dict = {"target": target, "master": master, "seconds": round(secs, 2), "peak_rss_bytes": peak,
                   "peak_rss_gib": round(peak / 2**30, 3), "returncode": rc, "load_average_before": load0,
                   "load_average_after": os.getloadavg(),
                   "cpu_seconds": round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 1),
                   "duckdb_memory_limit": env.get("DSDW_DUCKDB_MEMORY_LIMIT"),
                   "duckdb_max_temp": env.get("DSDW_DUCKDB_MAX_TEMP"),
                   "duckdb_preserve_insertion_order": env.get("DSDW_DUCKDB_PRESERVE_ORDER"),
                   "spark_driver_memory": env.get("DSDW_SPARK_DRIVER_MEMORY"),
                   "spark_shuffle_partitions": env.get("DSDW_SPARK_SHUFFLE_PARTITIONS", "2")}
        if rc == 0:
            detail = json.loads(js.read_text())
            rows = rows_per_model(target, out)
            stages: dict[str, dict] = {}
            for m, s in detail["models"].items():
                st = stages.setdefault(stage_of(m), {"models": 0, "seconds": 0.0, "rows": 0})
                st["models"] += 1
                st["seconds"] += s
                st["rows"] += rows.get(m, 0)
            for st in stages.values():
                st["seconds"] = round(st["seconds"], 2)
                st["rows_per_second"] = round(st["rows"] / st["seconds"]) if st["seconds"] else None
            r.update(models=len(detail["models"]), step_seconds={k: round(v, 2) for k, v in
                                                                  detail["step_seconds"].items()},
                     stages=stages, rows_written=sum(rows.values()))
        else:
            r["error"] = tail
            r["models_logged"] = models_from_dbt_log(out)
        if args.drop_outputs:
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        results[name] = r
        print(name, json.dumps({k: v for k, v in r.items() if k not in ("stages", "error")}), flush=True)
        _write(path, args, cloned, lake_rows, lake_bytes, lake_seconds, results, national)  # a partial run counts
    print(json.dumps(_write(path, args, cloned, lake_rows, lake_bytes, lake_seconds, results, national)["ratios"]),
          path)


def _write(path: Path, args: argparse.Namespace, cloned: int, lake_rows: int, lake_bytes: int,
           lake_seconds: float | None, results: dict[str, dict], national: dict | None = None) -> dict:
    ratios = {}
    if results.get("duckdb", {}).get("returncode") == 0:
        for n, r in results.items():
            if n != "duckdb" and r["returncode"] == 0:
                ratios[f"{n}/duckdb"] = round(r["seconds"] / results["duckdb"]["seconds"], 2)
    if all(results.get(n, {}).get("returncode") == 0 for n in ("spark_cluster1", "spark_cluster2")):
        ratios["spark_cluster2/spark_cluster1"] = round(
            results["spark_cluster2"]["seconds"] / results["spark_cluster1"]["seconds"], 2)
    import pyspark

    doc = {"benchmark": "rebuild", "scale": args.scale if not args.root else str(args.root), "days": args.days,
           "select": args.select,
           "clone_copies": args.clone, "cloned_rows": cloned, "lake_rows": lake_rows, "lake_bytes": lake_bytes,
           "lake_seconds": lake_seconds, "national_clone": national,
           "load_average_at_end": os.getloadavg(), "results": results,
           "ratios": ratios, "machine": machine_info(duckdb=duckdb.__version__, pyspark=pyspark.__version__)}
    path.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    return doc


if __name__ == "__main__":
    main()
