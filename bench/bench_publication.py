"""Benchmark of the publication (issue 13) at national scale, in one run: the suppression step and its attack
check on one national month, a table query's p95 and 200 concurrent requests on loopback.  JSON under
bench/results/.

The mart is synthetic at national size (:func:`build`, shape 'realistic': the 98 kommuner with their populations
x the national simulation's group sizes and entry rates; 'stress': many more small cells).  Why not generated
data: a month of national data from the generator takes 30 national days (~2.5 h).  The month is suppressed
by ``choose_grid_hidden`` without and with a per-cell LP cap of 40, each followed by the attack check (every
hidden cell's LP interval, no cap); then the load hook ``publish_suppressed`` publishes it, 120 earlier months
are copied in (:func:`add_history`: the published table at the size of ten years) and the API is served in its
own process (``dsdw api serve``): the query p95 over distinct questions (none answered before), the same
questions again (cached answers), and 200 requests in flight at once from one asyncio client (each on its own
connection), with the server's CPU seconds.

The national year (``--case national-year``: 98 kommuner x 12 months with their four quarters and the year, every
margin of issue 13, 106,080 cells) runs the suppression (by default the modular method: one sub-table per region,
then the exact audit over the whole year) and the uncapped attack check only, records wall and CPU
seconds and the load average per stage, then the independent attacker (tests/attacker.py, an integer program per
hidden cell) on a scaled-down year: the first kommuner of one region with their cells at national size.  The attack
check starts from the suppression's points (``Seen``, stamped for the same relations: a cell they show wide needs no
LP); ``--attack-from-truth`` starts it from the truth alone, as before.

    python bench/bench_publication.py [--months 1] [--shape realistic|stress] [--history 120] [--skip-api]
                                      [--api-only] [--case national-year [--attacker-kommuner 4] [--attacker-limit N]]
                                      [--simplex 4] [--warm-iterations X] [--attack-from-truth]
                                      [--methods standard,modular] [--log FILE] [--region 081]
                                      [--modular-kommuner K]

``--methods``: the suppression methods (suppression.choose_grid_hidden), run one after the other on the same grid;
the default 'auto' takes the modular method from suppression.MODULAR_CELLS cells on, so ``--case national-year``
runs the modular one and writes its progress lines (per sub-table, then the final audit) to
bench/results/publication_national_year_<time>.log as well as to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import httpx
import numpy as np
import pyarrow as pa

from pipelines.warehouse import suppression as sup
from pipelines.warehouse.dbt_runner import plain_sql
from pipelines.warehouse.suppression import (
    ESKALER,
    GRAENSE,
    LOKAL,
    MAAL_ALLE,
    NM,
    UGER,
    Seen,
    audit,
    choose_grid_hidden,
    grid_from,
    publish_suppressed,
    sparse_kommuner,
    valid_directions,
)

# National calibration of the realistic grid: per ydelsesgruppe the persons in the state in a month and the
# entries (tilgang) in that month, both from the project's national simulation (dsdw.simulate, 1,000,000 persons,
# /tmp/natgen: distinct persons with a spell in September 2026, spells starting in September 2026).  A monthly
# afgang is drawn at the tilgang's rate (a population in steady state).
NATIONAL = {"dagpenge": (100000, 22008), "sygedagpenge": (80000, 30380), "kontanthjaelp": (67000, 4043),
            "fleksjob": (60000, 1230), "uddannelseshjaelp": (40000, 3865), "uden_ydelse": (25500, 6642),
            "ledighedsydelse": (15000, 1394), "ressourceforloeb": (15000, 611),
            "beskaeftiget_med_indsats": (11000, 879), "jobafklaring": (10000, 1355), "seniorjob": (5000, 184),
            "foertidspension": (4000, 118), "revalidering": (4000, 455), "integration": (2500, 338)}
GRUPPER = list(NATIONAL)
KEY = "bench-key"
log = logging.getLogger("bench_publication")
KOMMUNER_CSV = Path(__file__).parents[1] / "data" / "reference" / "kommuner.csv"


def _kommuner(n: int, region: str | None = None) -> list[tuple[str, str, str, str, int]]:
    """(kode, navn, region_kode, region, indbyggere) of the first ``n`` kommuner of the reference list (of
    ``region`` only, when given)."""
    rows = [r for r in _all_kommuner() if region is None or r[2] == region]
    return rows[:n]


def _all_kommuner() -> list[tuple[str, str, str, str, int]]:
    import csv

    with KOMMUNER_CSV.open(encoding="utf-8") as f:
        return [(r["kode"], r["navn"], r["region_kode"], r["region_navn"], int(r["indbyggere"]))
                for r in csv.DictReader(f)]


def _realistic_cells(kom: list[tuple], rng: np.random.Generator, pop: int | None = None) -> dict:
    """One month's kommune cells {(kommune, group): (antal, tilgang, afgang)}: the group's national stock
    (:data:`NATIONAL`) times the kommune's share of the population (reference kommuner.csv), times a log-normal
    local factor (sd 0.3: kommuner differ in their social structure), drawn Poisson; tilgang and afgang binomial
    at the group's national entry rate.  Small kommuner x small groups give the cells below 5 that the
    suppression must handle (Laesoe has 1,800 inhabitants: 0.8 persons in integration)."""
    pop = pop or sum(k[4] for k in kom)
    out = {}
    for k in kom:
        for g, (stock, entries) in NATIONAL.items():
            a = int(rng.poisson(stock * k[4] / pop * rng.lognormal(0.0, 0.3)))
            rate = entries / stock
            out[(k[0], g)] = (a, int(rng.binomial(a, rate)), int(rng.binomial(a, rate)))
    return out


def build(path: Path, n_kommuner: int, months: int, seed: int = 1, shape: str = "realistic",
          region: str | None = None, national_scale: bool = False) -> None:
    """A warehouse-shaped database with ``months`` months of computed figures (mart_ydelser_beregning).

    ``shape``: 'realistic' (the kommuner of the reference list with their populations, group sizes of the
    national simulation: :func:`_realistic_cells`) or 'stress' (synthetic kommune sizes log-normal around 1 and
    group sizes 3..1500 per kommune: far more small cells than Denmark has, a harder suppression problem).
    A kommune's 'i alt' is 95 % of the sum of its groups (a person in two groups counts once), a region's
    antal 99 % of its kommuner's (movers count once), flows are additive over geography.  ``region``: the kommuner
    of that region only; ``national_scale``: their cells at their national size (the group's national stock times
    the kommune's share of Denmark's population, not of the chosen kommuner's): a scaled-down grid with the small
    cells of the national one, for the independent attacker."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA meta")
    con.execute("CREATE TABLE meta.loaded_payload AS SELECT 'kontaktgruppe' AS dataset, DATE '2026-01-01' AS "
                "leveringsdato")
    if shape == "realistic":
        kom = _kommuner(n_kommuner, region)
    else:
        kom = [(f"{100 + 7 * i}", f"Kommune {i}", f"08{1 + i % 5}", f"Region {1 + i % 5}", 0)
               for i in range(n_kommuner)]
    con.execute("CREATE TABLE dim_kommune (kommunekode VARCHAR, kommune VARCHAR, region_kode VARCHAR, region VARCHAR)")
    con.executemany("INSERT INTO dim_kommune VALUES (?, ?, ?, ?)", [k[:4] for k in kom])
    con.execute("CREATE TABLE dim_ydelsesgruppe AS SELECT unnest(?) AS ydelsesgruppe, unnest(?) AS navn",
                [GRUPPER, [g.capitalize() for g in GRUPPER]])
    size = {k[0]: rng.lognormvariate(0, 1.0) for k in kom}
    gsize = {g: rng.choice([3, 10, 30, 100, 400, 1500]) for g in GRUPPER}
    rows = []
    for mi in range(months):
        start = dt.date(2026, 1 + mi % 12, 1) if mi < 12 else dt.date(2027, 1 + mi % 12, 1)
        tot: dict = {}
        pop = sum(k[4] for k in _all_kommuner()) if national_scale else None
        real = _realistic_cells(kom, nrng, pop) if shape == "realistic" else None
        for k, _, r, _, _ in kom:
            cell = {}
            for g in GRUPPER:
                if real is not None:
                    cell[g] = real[(k, g)]
                    continue
                a = int(size[k] * gsize[g] * rng.uniform(0.8, 1.2))
                cell[g] = (a, rng.randint(0, a // 5), rng.randint(0, a // 5))
            cell["i alt"] = tuple(int(sum(v[m] for v in cell.values()) * (0.95 if m == 0 else 1)) for m in range(3))
            for g, v in cell.items():
                rows.append(("kommune", k, g, *v, start))
                tot[(r, g)] = tuple(x + y for x, y in zip(tot.get((r, g), (0, 0, 0)), v, strict=True))
        for (r, g), v in tot.items():
            rows.append(("region", r, g, int(v[0] * 0.99), v[1], v[2], start))
        for g in GRUPPER + ["i alt"]:
            rows.append(("land", "000", g, *(int(sum(tot[(r, g)][m] for r in {x[2] for x in kom}) * (0.99 if m == 0 else 1))
                                              for m in range(3)), start))
    # quarters from their three months, the year from its four quarters (when 12 months): a parent's persons are
    # its largest child's plus most of the entries in the others (at most the children's sum), its flows the
    # children's sum less a little (a person entering twice counts once) and at most its persons -- so every
    # relation of suppression.constraints holds for the true figures (months <= quarter <= sum, flows <= persons)
    def parent(rs: list[tuple[int, int, int]]) -> tuple[int, int, int]:
        big = max(range(len(rs)), key=lambda i: rs[i][0])
        a = min(sum(r[0] for r in rs), rs[big][0] + int(0.9 * sum(r[1] for i, r in enumerate(rs) if i != big)))
        return a, min(a, int(sum(r[1] for r in rs) * 0.95)), min(a, int(sum(r[2] for r in rs) * 0.95))

    kv: dict = defaultdict(list)
    for r in sorted(rows, key=lambda r: r[6]):
        kv[(r[0], r[1], r[2], dt.date(r[6].year, 3 * ((r[6].month - 1) // 3) + 1, 1))].append(r[3:6])
    agg = [("kvartal", *k[:3], *parent(rs), k[3]) for k, rs in kv.items() if len(rs) == 3]
    aar: dict = defaultdict(list)
    for q in sorted(agg, key=lambda q: q[7]):
        aar[(*q[1:4], dt.date(q[7].year, 1, 1))].append(q[4:7])
    agg += [("aar", *k[:3], *parent(qs), k[3]) for k, qs in aar.items() if len(qs) == 4]
    con.execute("CREATE TABLE mart_ydelser_beregning (indlaesning_nr INTEGER, periode_type VARCHAR, periode_start DATE, "
                "geo_niveau VARCHAR, geo_kode VARCHAR, ydelsesgruppe VARCHAR, antal_personer BIGINT, ydelsesuger BIGINT, "
                "tilgang BIGINT, afgang BIGINT, periode_slut DATE, periode VARCHAR, uger_i_perioden INTEGER, "
                "er_foreloebig BOOLEAN, horisont DATE)")
    # one Arrow table, one INSERT (executemany took 5 minutes for a year's 26,520 rows)
    cells = [("maaned", r[6], r[0], r[1], r[2], r[3], 4 * r[3], r[4], r[5], 4) for r in rows]
    cells += [(q[0], q[7], q[1], q[2], q[3], q[4], (4 if q[0] == "kvartal" else 3) * q[4], q[5], q[6],
               13 if q[0] == "kvartal" else 52) for q in agg]
    names = ("periode_type", "periode_start", "geo_niveau", "geo_kode", "ydelsesgruppe", "antal_personer",
             "ydelsesuger", "tilgang", "afgang", "uger_i_perioden")
    arrow = pa.table({n: [c[k] for c in cells] for k, n in enumerate(names)})  # noqa: F841 (read by DuckDB)
    con.execute("""INSERT INTO mart_ydelser_beregning BY NAME SELECT 1 AS indlaesning_nr, *,
        CASE periode_type WHEN 'maaned' THEN strftime(periode_start, '%YM%m') WHEN 'kvartal' THEN
            year(periode_start) || 'K' || (month(periode_start) + 2) // 3 ELSE year(periode_start)::VARCHAR END
            AS periode, false AS er_foreloebig,
        DATE '2028-01-01' AS horisont FROM arrow""")
    con.execute("CREATE VIEW mart_ydelser_fuld AS\n" + plain_sql("mart_ydelser_fuld"))
    con.close()


def bench_suppression(db: Path, caps: tuple[int | None, ...] = (None, 40), from_points: bool = True,
                      methods: tuple[str, ...] = ("auto",), checkpoint: Any = None) -> dict:
    """Suppression (with its LP audit) of all periods of the database at once -- months, quarters and the year
    are linked -- once per per-cell cap, each followed by the attack check: the attacker's own "one more person"
    certificates, then for every hidden cell not already shown wide by points consistent with the published data
    its own max and min LPs (no cap: every suppressed cell is attacked).  ``from_points``: the attack check starts
    from the suppression's points (:class:`Seen`, stamped for the same relations), else from the truth alone.
    ``methods``: suppression.choose_grid_hidden's methods to run, one after the other on the same grid ('auto':
    modular from suppression.MODULAR_CELLS cells on); the standard method's results keep their old keys
    (``per_cell_lps_<cap>``), the others are ``<method>_per_cell_lps_<cap>``.  ``checkpoint(out)`` is called after
    each (the results so far are written before the next method starts: a run stopped later keeps them)."""
    con = duckdb.connect(str(db))
    try:
        src = "SELECT * FROM mart_ydelser_fuld"
        t0, l0, c0 = time.perf_counter(), _load(), time.process_time()
        g = grid_from(con, src)
        t1 = time.perf_counter()
        counts = np.ones(g.n, dtype=bool)
        counts[UGER::NM] = False
        # the synthetic truth must satisfy every relation the audit uses (else the LPs are infeasible)
        broken = [c.why for c in g.constraints if not (abs(float(c.coefs @ g.values[c.cells]) - c.rhs) < 1e-6 if c.eq
                                                       else float(c.coefs @ g.values[c.cells]) <= c.rhs + 1e-6)]
        if broken:
            raise SystemExit(f"the synthetic grid breaks {len(broken)} relations ({sorted(set(broken))})")
        perioder = sorted({(r[0], str(r[1])) for r in g.rows})
        out: dict = {"cells": int(g.n), "periods": len(perioder), "period_types": sorted({p[0] for p in perioder}),
                     "relations": len(g.constraints), "primary": int(((g.values < GRAENSE) & counts).sum()),
                     "sparse_grid": sparse_kommuner(g) is not None, "grid_seconds": t1 - t0,
                     "stage_grid": _stage(t0, c0, l0), "local_neighbourhood": LOKAL, "local_escalated": ESKALER,
                     "highs_simplex_strategy": sup.SIMPLEX,
                     "warm_iterations": sup._warm_iterations(), "relaxation_cells": sup.RELAKS}
        for method, cap in ((m, c) for m in methods for c in caps):
            used = sup._method(None if method == "auto" else method, g.n)
            st: dict = {}
            t1, l1, c1 = time.perf_counter(), _load(), time.process_time()
            # the suppression's points (stamped for g's relations) start the attack check: a cell a point of the
            # rounds showed wide needs no LP there (audit checks they are points of the same relations)
            points = Seen.of(g.values) if from_points else None
            log.info("bench: suppression by the %s method (%s), per-cell cap %s", used, method, cap)
            hidden = choose_grid_hidden(g, per_cell=cap, stats=st, points=points, method=used)
            t2, l2, c2 = time.perf_counter(), _load(), time.process_time()
            supp = _stage(t1, c1, l1)
            dirs = valid_directions(g.n, g.constraints, g.directions)
            check = audit(g.values, hidden, g.constraints, dirs=dirs, per_cell=None, seen=points)
            t3 = time.perf_counter()
            att = _stage(t2, c2, l2)
            widths = [check.width(i) for i in check.lo]
            name = f"per_cell_lps_{cap if cap is not None else 'uncapped'}"
            out[name if used == "standard" else f"{used}_{name}"] = {
                "method": used, "method_asked": method, "modular": st.get("modular"), "per_cell_cap": cap, "hidden": int(hidden.sum()), "hidden_share": float(hidden.mean()),
                "secondary": int((hidden & ~((g.values < GRAENSE) & counts)).sum()),
                "hidden_by_measure": {m: int(hidden[k::NM].sum()) for k, m in enumerate(MAAL_ALLE)},
                "suppression_seconds": t2 - t1, "suppression_rounds": st["rounds"],
                "suppression_lp_solves": st["lp_solves"],
                # summed over the rounds: a cell counts once per round it was audited in
                "suppression_cells_settled_by": st["how"], "fail_safe_blocks": st["fail_safe_blocks"],
                "attack_check_from_suppression_points": from_points,
                "attack_check_seconds": t3 - t2, "attack_lp_solves": check.lp_solves, "attack_blocks": check.blocks,
                "attack_cells": len(check.lo), "attack_cells_settled_by": check.how,
                "min_interval_width": min(widths) if widths else None, "pinned": len(check.pinned(GRAENSE)),
                "stage_suppression": supp, "stage_attack_check": att,
                "suppression_plus_attack_wall_s": supp["wall_s"] + att["wall_s"],
                "suppression_plus_attack_cpu_s": supp["cpu_s"] + att["cpu_s"]}
            if checkpoint is not None:
                checkpoint(out)
        return out
    finally:
        con.close()


def _stage(t0: float, c0: float, l0: float) -> dict:
    """Wall and CPU seconds of a stage begun at (t0, c0), with the 1-minute load average at its start and end."""
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "load_1min_start": l0,
            "load_1min_end": _load()}


def bench_attacker(db: Path, limit: int, method: str | None = None) -> dict:
    """The independent attacker (tests/attacker.py: its own relations, an integer program per hidden cell) on the
    suppression of the grid in ``db``: every hidden cell, or ``limit`` of them evenly spaced (its dense MILPs do
    not scale to a national year).  ``method``: the suppression's (choose_grid_hidden; None: its default)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from attacker import Attack, width

    con = duckdb.connect(str(db))
    try:
        g = grid_from(con, "SELECT * FROM mart_ydelser_fuld")
    finally:
        con.close()
    t0, l0, c0 = time.perf_counter(), _load(), time.process_time()
    hidden = choose_grid_hidden(g, method=method)
    supp = _stage(t0, c0, l0)
    tab = {}
    for j, r in enumerate(g.rows):
        truth = tuple(float(v) for v in g.values[NM * j:NM * j + NM])
        h = hidden[NM * j:NM * j + NM]
        tab[r[:6]] = (truth, tuple(None if h[m] else truth[m] for m in range(NM)), float(r[6] or 1))
    t1, l1, c1 = time.perf_counter(), _load(), time.process_time()
    att = Attack()
    att.add(tab)
    keys = sorted(att.var, key=lambda v: att.var[v])
    step = max(1, len(keys) // limit) if limit else 1
    which = keys[::step][:limit] if limit else keys
    got = att.intervals(which)
    widths = [width(*v) for v in got.values()]
    return {"cells": int(g.n), "method": sup._method(method, g.n), "hidden": int(hidden.sum()), "hidden_share": float(hidden.mean()),
            "stage_suppression": supp, "attacker_unknowns": len(keys), "attacked": len(which),
            "attacked_every_hidden_cell": len(which) == len(keys), "stage_attacker": _stage(t1, c1, l1),
            "pinned": sum(1 for w in widths if w < GRAENSE), "min_interval_width": min(widths) if widths else None}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_api(db: Path, keys: Path, n_queries: int, n_concurrent: int) -> dict:
    """The API as it is run: its own process (``dsdw api serve``) on loopback, read-only on the published file;
    the client here (a server in this process would share the client's interpreter lock)."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "api", "serve", "--root", str(db.parent),
                               "--keys", str(keys), "--port", str(port)], stdout=subprocess.DEVNULL)
    for _ in range(600):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    base = f"http://127.0.0.1:{port}"
    hdr = {"X-API-Key": KEY}
    try:
        with httpx.Client(base_url=base, headers=hdr, timeout=30) as c:
            kommuner = [o["geo_kode"] for o in c.get("/api/v1/tables/ydelser_dagpenge").json()["omraader"]]
            types = ("maaned", "kvartal", "aar")

            def ask(i: int) -> float:
                t0 = time.perf_counter()
                r = c.get("/api/v1/data/ydelser_dagpenge", params={"omraade": kommuner[i % len(kommuner)],
                                                                   "periode_type": types[i // len(kommuner) % 3]})
                r.raise_for_status()
                return time.perf_counter() - t0

            # every question asked once (no answer cached yet: the table's rows are read on the first question of
            # the generation, the answer is computed and serialised per question), then the same questions again
            # (answered from the per-generation cache, pipelines.api.app.Answers)
            first = ask(0)
            fresh = [ask(i) for i in range(1, n_queries + 1)]
            again = [ask(i) for i in range(1, n_queries + 1)]
            rss_kib = _rss_kib(server.pid)

        async def burst() -> list[int]:
            # 200 requests in flight at once, each on its own connection (the pool allows all of them): one
            # asyncio client, so the client's own CPU (threads, TLS contexts) does not crowd the server's 2 cores
            limits = httpx.Limits(max_connections=n_concurrent, max_keepalive_connections=0)
            async with httpx.AsyncClient(base_url=base, headers=hdr, timeout=60, limits=limits) as ac:
                async def one(i: int) -> int:
                    r = await ac.get("/api/v1/data/ydelser_i_alt", params={
                        "omraade": kommuner[i % len(kommuner)], "format": "csv" if i % 2 else "json"})
                    return r.status_code
                return list(await asyncio.gather(*(one(i) for i in range(n_concurrent)), return_exceptions=True))

        cpu0 = _cpu_seconds(server.pid)
        t0 = time.perf_counter()
        codes = asyncio.run(burst())
        wall = time.perf_counter() - t0
        server_cpu = _cpu_seconds(server.pid) - cpu0
        errors = sum(1 for c in codes if c != 200)
        q, q2 = statistics.quantiles(fresh, n=100), statistics.quantiles(again, n=100)
        return {"query_p50_ms": 1000 * q[49], "query_p95_ms": 1000 * q[94], "queries": n_queries,
                "queries_distinct": True, "first_query_of_generation_ms": 1000 * first,
                "repeated_query_p50_ms": 1000 * q2[49], "repeated_query_p95_ms": 1000 * q2[94],
                "server_rss_mib": rss_kib / 1024 if rss_kib else None,
                "concurrent_requests": n_concurrent, "concurrent_errors": errors, "concurrent_wall_s": wall,
                "concurrent_server_cpu_s": server_cpu,
                "machine_load_1min": _load()}
    finally:
        server.terminate()
        server.wait(timeout=30)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (/proc/<pid>/stat)."""
    import os

    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def add_history(db: Path, periods: int) -> int:
    """Give the published table the size of a national history: ``periods`` earlier months, each a copy of the
    published month's cells (suppression pattern included) under an earlier period label.  Only the API's
    latency depends on it (the queries filter one kommune over all periods); the suppression is timed on the
    real month.  Returns the rows of the published table."""
    con = duckdb.connect(str(db))
    try:
        first = con.execute("SELECT min(periode_start) FROM mart_ydelser_publiceret").fetchone()[0]
        for k in range(1, periods + 1):
            m = first.year * 12 + first.month - 1 - k
            start = dt.date(m // 12, m % 12 + 1, 1)
            con.execute(f"""INSERT INTO mart_ydelser_publiceret BY NAME SELECT * REPLACE (
                    DATE '{start}' AS periode_start, DATE '{start}' + INTERVAL 1 MONTH - INTERVAL 1 DAY AS periode_slut,
                    '{start:%Y}M{start:%m}' AS periode)
                FROM mart_ydelser_publiceret WHERE periode_type = 'maaned' AND periode_start = DATE '{first}'""")
        return con.execute("SELECT count(*) FROM mart_ydelser_publiceret").fetchone()[0]
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kommuner", type=int, default=98)
    ap.add_argument("--months", type=int, default=1, help="months of the grid (3: with their quarter; 12: the year)")
    ap.add_argument("--shape", choices=("realistic", "stress"), default="realistic")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--history", type=int, default=120,
                    help="earlier months copied into the published table before the API benchmark (add_history)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/dsdw_bench_publication"))
    ap.add_argument("--skip-api", action="store_true", help="suppression and attack check only")
    ap.add_argument("--caps", default="none,40",
                    help="per-cell LP caps to run the suppression with, comma separated ('none': uncapped)")
    ap.add_argument("--api-only", action="store_true", help="publish and serve only (no suppression benchmark)")
    ap.add_argument("--case", choices=("national-year",),
                    help="national-year: the 98 kommuner x 12 months with their quarters and the year, suppression "
                         "and attack check (uncapped), then the independent attacker on a scaled-down year")
    ap.add_argument("--attacker-kommuner", type=int, default=4,
                    help="kommuner of the scaled-down year the independent attacker runs on (0: none)")
    ap.add_argument("--attacker-region", default="081")
    ap.add_argument("--region", default=None,
                    help="national-year: only this region's kommuner (e.g. 081), cells at their national size: the "
                         "exact sub-table the national year gives the region, run to the end in minutes")
    ap.add_argument("--attacker-limit", type=int, default=300,
                    help="hidden cells the attacker attacks (evenly spaced; 0: all)")
    ap.add_argument("--simplex", type=int, default=None,
                    help="HiGHS simplex_strategy for the audit's LPs (suppression.SIMPLEX; 4: primal)")
    ap.add_argument("--warm-iterations", type=float, default=None,
                    help="suppression.WARM_ITERATIONS (inf: never switch a block to cold solves; default: 0.1 with dual "
                         "simplex, inf with primal)")
    ap.add_argument("--attack-from-truth", action="store_true",
                    help="start the attack check from the truth alone, not from the suppression's points")
    ap.add_argument("--methods", default="auto",
                    help="suppression methods to run one after the other on the same grid, comma separated: standard, "
                         "modular, auto (modular from suppression.MODULAR_CELLS cells on); the first is also the "
                         "independent attacker's")
    ap.add_argument("--modular-kommuner", type=int, default=None,
                    help="suppression.MODULAR_KOMMUNER: at most this many kommuner per sub-table of the modular method "
                         "(0: a region's kommuner in one)")
    ap.add_argument("--log", type=Path, default=None,
                    help="also write the progress lines to this file (national-year: bench/results/"
                         "publication_national_year_<time>.log unless given)")
    ap.add_argument("--relax", type=int, default=None,
                    help="suppression.RELAKS: relaxation size of the rounds' narrow proofs (0: off)")
    a = ap.parse_args()
    methods = tuple(a.methods.split(","))
    for m in methods:
        sup._method(m, 0)  # an unknown method fails before the grid is built
    if a.case == "national-year" and a.log is None:
        a.log = Path(__file__).parent / "results" / f"publication_national_year_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.log"
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if a.log is not None:
        a.log.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(a.log, encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", handlers=handlers)
    if a.simplex is not None:
        sup.SIMPLEX = a.simplex
    if a.warm_iterations is not None:
        sup.WARM_ITERATIONS = a.warm_iterations
    if a.relax is not None:
        sup.RELAKS = a.relax or None
    if a.modular_kommuner is not None:
        sup.MODULAR_KOMMUNER = a.modular_kommuner or None
    if a.case == "national-year":
        a.kommuner, a.months, a.caps, a.skip_api = 98, 12, "none", True
    a.work.mkdir(parents=True, exist_ok=True)
    path = Path(__file__).parent / "results" / f"publication_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    db = a.work / "warehouse.duckdb"
    db.unlink(missing_ok=True)
    t0 = time.perf_counter()
    if a.region is not None:  # the region's kommuner (at most 29) with their national-size cells
        a.kommuner = len(_kommuner(999, a.region))
        build(db, a.kommuner, a.months, shape=a.shape, region=a.region, national_scale=True)
    else:
        build(db, a.kommuner, a.months, shape=a.shape)
    grid = {"realistic": "synthetic national mart (bench_publication.build, shape 'realistic'): the 98 kommuner "
                         "of data/reference/kommuner.csv with their populations, per ydelsesgruppe the month's "
                         "persons and entries of the national simulation (dsdw.simulate, /tmp/natgen) spread by "
                         "population share x a log-normal local factor, Poisson/binomial draws",
            "stress": "synthetic grid with many small cells (kommune sizes log-normal, ydelsesgrupper 3..1500 "
                      "per kommune)"}[a.shape]
    out: dict = {"kommuner": a.kommuner, "region": a.region, "months": a.months, "shape": a.shape, "grid": grid, "methods": list(methods),
                 "modular_cells": sup.MODULAR_CELLS, "modular_kommuner": sup.MODULAR_KOMMUNER,
                 "log": None if a.log is None else str(a.log),
                 "why_synthetic": "a month of national data from the generator takes 30 national days (~2.5 h); the "
                                  "mart is generated directly at national size instead",
                 "build_seconds": time.perf_counter() - t0, "machine_load_1min": _load()}
    if not a.api_only:
        caps = tuple(None if c == "none" else int(c) for c in a.caps.split(","))
        def checkpoint(part: dict) -> None:
            _write({**out, "suppression_all_periods": part, "partial": True}, path, quiet=True)

        out["suppression_all_periods"] = bench_suppression(db, caps, from_points=not a.attack_from_truth,
                                                           methods=methods, checkpoint=checkpoint)
    if a.case == "national-year" and a.attacker_kommuner:
        # the attacker checks the pattern of the method the big grid used (auto resolves by the big grid's size)
        att_method = next((v["method"] for v in out.get("suppression_all_periods", {}).values()
                           if isinstance(v, dict) and "method" in v), None if methods[0] == "auto" else methods[0])
        small = a.work / "attacker.duckdb"
        small.unlink(missing_ok=True)
        build(small, a.attacker_kommuner, 12, region=a.attacker_region, national_scale=True)
        out["independent_attacker"] = {
            "grid": f"the first {a.attacker_kommuner} kommuner of region {a.attacker_region}, 12 months with their "
                    "quarters and the year, cells at their national size (build(national_scale=True))",
            **bench_attacker(small, a.attacker_limit, att_method)}
    if a.skip_api:
        out["machine_load_1min_end"] = _load()
        _write(out, path)
        return
    con = duckdb.connect(str(db))
    t0 = time.perf_counter()
    publish_suppressed(con, SimpleNamespace(load_id="bench", indlaest_dato=dt.date(2028, 1, 1)))
    out["publish_hook_seconds"] = time.perf_counter() - t0
    out["published_cells_hidden"] = con.execute(
        "SELECT count(*) FILTER (WHERE antal_personer_diskretioneret) + count(*) FILTER (WHERE tilgang_diskretioneret) "
        "+ count(*) FILTER (WHERE afgang_diskretioneret) FROM mart_ydelser_publiceret").fetchone()[0]
    con.close()
    out["api_history_months"] = a.history
    out["api_published_rows"] = add_history(db, a.history) if a.history else None
    keys = a.work / "api_keys"
    keys.write_text(KEY + "\n", encoding="utf-8")
    out["api"] = bench_api(db, keys, a.queries, a.requests)
    out["api"]["query_p95_ok"] = out["api"]["query_p95_ms"] <= 50
    out["api"]["concurrent_ok"] = out["api"]["concurrent_errors"] == 0
    out["machine_load_1min_end"] = _load()
    _write(out, path)


def _load() -> float:
    import os

    return os.getloadavg()[0]


def _write(out: dict, path: Path, quiet: bool = False) -> None:
    """The results to ``path`` (rewritten as they grow: a partial file is marked ``"partial": true``)."""
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=float), encoding="utf-8")
    if quiet:
        log.info("bench: results so far written to %s", path)
        return
    print(json.dumps(out, indent=1, default=float))
    print(path)



if __name__ == "__main__":
    main()
