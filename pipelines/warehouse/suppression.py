"""Small-cell suppression (diskretionering) that holds against a linear-programming attacker.

Why: a published count below 5 can point at a person, and hidden cells can be recovered from the
published margins.  The old rule published which cells were primary (so each was known to be 0-4),
left empty cells out (a missing row revealed a zero) and protected groups only against a lone hidden
cell; issue 13 recovered 100+ cells by subtraction.  The rule now (docs/statistics.md):

1. every cell of the grid is published, zeros included (``mart_ydelser_fuld``);
2. primary: every count (antal_personer, tilgang, afgang) below ``GRAENSE`` is hidden;
3. secondary: cells are hidden until, for every hidden cell, the interval of values consistent with
   everything published -- all linear relations an attacker can use (:func:`constraints`) and
   non-negativity -- is at least ``GRAENSE`` wide (``floor(max) - ceil(min)``, so an integer attacker
   gains nothing from rounding).  The intervals are computed by linear programming with scipy's HiGHS
   (:func:`audit`): per hidden cell minimise and maximise it, per independent block of hidden cells;
4. one flag per measure (``<maal>_diskretioneret``): never which cells were primary.

:func:`suppress` applies the rule to a relation; :func:`publish_suppressed` is the load hook that keeps
``mart_ydelser_publiceret`` in step and logs each publication as a vintage (``publication.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np

log = logging.getLogger(__name__)
GRAENSE = 5
# seconds the secondary suppression may take before a grid is published with every count hidden (a safety
# net; sparse grids are handled deterministically by sparse_kommuner)
BUDGET_S = 60.0
# above this share of kommune cells below GRAENSE a grid is published with every count hidden (sparse_kommuner)
SPARSE_SHARE = 0.5
MAAL = ("antal_personer", "tilgang", "afgang")
I_ALT = "i alt"
PUBLISHED = "mart_ydelser_publiceret"
FULL_GRID = "mart_ydelser_fuld"
KEY = ("periode_type", "periode_start", "geo_niveau", "geo_kode", "ydelsesgruppe")


@dataclass
class Constraint:
    """One linear relation over cells: sum(coef * x) (= or <=) rhs; rhs from the true values where the
    relation is not exactly additive (the attacker is assumed to know the overlap: conservative)."""

    cells: np.ndarray
    coefs: np.ndarray
    eq: bool
    rhs: float
    why: str


@dataclass
class Grid:
    """The cells of one suppression problem: ``values[i]`` is cell i (row ``i // 3``, measure ``i % 3``)."""

    rows: list[tuple]
    values: np.ndarray
    constraints: list[Constraint] = field(default_factory=list)
    directions: list[np.ndarray] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)


def _parent_period(pt: str, ps: dt.date) -> tuple[str, dt.date] | None:
    if pt == "maaned":
        return "kvartal", dt.date(ps.year, 3 * ((ps.month - 1) // 3) + 1, 1)
    if pt == "kvartal":
        return "aar", dt.date(ps.year, 1, 1)
    return None


def constraints(rows: list[tuple], values: np.ndarray) -> list[Constraint]:
    """Every linear relation between the published cells that holds for the true figures.

    ``rows``: (periode_type, periode_start, geo_niveau, geo_kode, overordnet_geo_kode, ydelsesgruppe).
    * geography (kommuner of a region, regions of the country) and ydelsesgrupper (of one geography, total
      'i alt'), per period and measure: equalities.  tilgang/afgang are exactly additive over geography
      (each person's flow is placed in one kommune); distinct-person counts are not (a mover counts once in
      the region), so the equality carries the true overlap as its constant: the attacker is assumed to
      know it exactly, the strongest (conservative) assumption;
    * periods (months of a quarter, quarters of a year; same cell and measure): parent <= sum of children
      (a person in the quarter is in one of its months; a quarter's tilgang is its first entry's month's),
      and for antal_personer child <= parent;
    * tilgang <= antal_personer and afgang <= antal_personer of the same cell (a flow's person is in the
      state, in that kommune, on the flow's day);
    * non-negativity is the LP's bound.
    """
    idx = {(r[0], r[1], r[2], r[3], r[5]): j for j, r in enumerate(rows)}
    cons: list[Constraint] = []
    kids: dict[tuple[int, str], list[int]] = defaultdict(list)
    for j, (pt, ps, niv, kode, over, grp) in enumerate(rows):
        if niv == "kommune" and over is not None:
            p = idx.get((pt, ps, "region", over, grp))
            if p is not None:
                kids[(p, "geo")].append(j)
        elif niv == "region":
            p = idx.get((pt, ps, "land", "000", grp))
            if p is not None:
                kids[(p, "geo")].append(j)
        if grp != I_ALT:
            p = idx.get((pt, ps, niv, kode, I_ALT))
            if p is not None:
                kids[(p, "grp")].append(j)
        pp = _parent_period(pt, ps)
        if pp is not None:
            p = idx.get((pp[0], pp[1], niv, kode, grp))
            if p is not None:
                kids[(p, "tid")].append(j)
    for (p, kind), ch in kids.items():
        for m in range(3):
            cells = np.array([3 * c + m for c in ch] + [3 * p + m])
            if kind in ("geo", "grp"):
                coefs = np.array([1.0] * len(ch) + [-1.0])
                cons.append(Constraint(cells, coefs, True, float(coefs @ values[cells]), kind))
            else:
                cons.append(Constraint(cells, np.array([-1.0] * len(ch) + [1.0]), False, 0.0, "tid"))
                if m == 0:
                    for c in ch:
                        cons.append(Constraint(np.array([3 * c, 3 * p]), np.array([1.0, -1.0]), False, 0.0, "tid"))
    for j in range(len(rows)):
        for m in (1, 2):
            cons.append(Constraint(np.array([3 * j + m, 3 * j]), np.array([1.0, -1.0]), False, 0.0, "flow"))
    return cons


def directions(rows: list[tuple]) -> list[np.ndarray]:
    """Cheap certificates of unboundedness: "one more person" in a kommune, group, month and measure.

    Adding 1 to a month's kommune cell, its 'i alt', its region and hele landet (group and 'i alt'), the same
    in its quarter and year, and to antal_personer where the measure is a flow, keeps every relation of
    :func:`constraints` true.  If all those cells are hidden, the attacker can add any number of such
    persons: each of them is unbounded above, and needs no LP.
    """
    idx = {(r[0], r[1], r[2], r[3], r[5]): j for j, r in enumerate(rows)}
    out = []
    for (pt, ps, niv, kode, over, grp) in rows:
        if pt != "maaned" or niv != "kommune" or grp == I_ALT or over is None:
            continue
        per = [(pt, ps)]
        q = _parent_period(pt, ps)
        while q is not None:
            per.append(q)
            q = _parent_period(*q)
        rr = [idx.get((p[0], p[1], n, k, g)) for p in per for n, k in (("kommune", kode), ("region", over),
                                                                        ("land", "000")) for g in (grp, I_ALT)]
        rr = [j for j in rr if j is not None]
        for m in range(3):
            out.append(np.array(sorted({3 * j + mm for j in rr for mm in {0, m}})))
    return out


def _components(n: int, hidden: np.ndarray, cons: list[Constraint]) -> list[tuple[np.ndarray, list[int]]]:
    """Independent blocks: hidden cells linked by a relation they share (union-find); with their relations."""
    parent = np.arange(n)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = int(parent[a])
        return a

    active = []
    for k, c in enumerate(cons):
        h = c.cells[hidden[c.cells]]
        if len(h) == 0:
            continue
        active.append(k)
        r0 = find(int(h[0]))
        for x in h[1:]:
            rx = find(int(x))
            if rx != r0:
                parent[rx] = r0
    groups: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(hidden):
        groups[find(int(i))].append(int(i))
    by_root: dict[int, list[int]] = defaultdict(list)
    for k in active:
        c = cons[k]
        by_root[find(int(c.cells[hidden[c.cells]][0]))].append(k)
    return [(np.array(sorted(v)), by_root.get(r, [])) for r, v in groups.items()]


def _width(lo: float, hi: float) -> float:
    """The integer values in [lo, hi] span floor(hi) - ceil(lo): what an integer attacker narrows to."""
    if math.isinf(hi):
        return math.inf
    return math.floor(hi + 1e-6) - math.ceil(lo - 1e-6)


@dataclass
class AuditResult:
    """Per hidden cell the interval an attacker can narrow it to (LP bounds; inf = unbounded)."""

    lo: dict[int, float]
    hi: dict[int, float]
    lp_solves: int
    blocks: int

    def width(self, i: int) -> float:
        return _width(self.lo[i], self.hi[i])

    def pinned(self, graense: int = GRAENSE) -> list[int]:
        return sorted(i for i in self.lo if self.width(i) < graense)


class _Block:
    """One block's LP in scipy's HiGHS, kept between solves: only the objective (and caps) change, so each
    solve starts from the previous basis (warm start) instead of building and presolving a new model."""

    def __init__(self, nv: int, a_rows: list[tuple[list[int], list[float], float, float]]) -> None:
        from scipy.optimize._highspy import _core as hc

        self.hc = hc
        self.nv = nv
        cols: list[list[tuple[int, float]]] = [[] for _ in range(nv)]
        lo, hi = [], []
        for r, (idx, coefs, rlo, rhi) in enumerate(a_rows):
            for j, a in zip(idx, coefs, strict=True):
                cols[j].append((r, a))
            lo.append(rlo)
            hi.append(rhi)
        lp = hc.HighsLp()
        lp.num_col_, lp.num_row_ = nv, len(a_rows)
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = nv, len(a_rows)
        lp.a_matrix_.format_ = hc.MatrixFormat.kColwise
        start = np.zeros(nv + 1, dtype=np.int32)
        start[1:] = np.cumsum([len(c) for c in cols])
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = np.array([r for c in cols for r, _ in c], dtype=np.int32)
        lp.a_matrix_.value_ = np.array([a for c in cols for _, a in c], dtype=float)
        lp.col_cost_ = np.zeros(nv)
        lp.col_lower_ = np.zeros(nv)
        lp.col_upper_ = np.full(nv, hc.kHighsInf)
        lp.row_lower_ = np.array(lo, dtype=float)
        lp.row_upper_ = np.array(hi, dtype=float)
        self.h = hc._Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.passModel(lp)
        self.cost = np.zeros(nv)

    def solve(self, obj: np.ndarray, upper: np.ndarray | None = None) -> tuple[str, np.ndarray | None]:
        """Minimise ``obj @ x``; returns ('optimal', x) or ('unbounded', None)."""
        idx = np.arange(self.nv, dtype=np.int32)
        self.h.changeColsCost(self.nv, idx, obj.astype(float))
        up = np.full(self.nv, self.hc.kHighsInf) if upper is None else upper.astype(float)
        self.h.changeColsBounds(self.nv, idx, np.zeros(self.nv), up)
        self.h.run()
        st = self.h.getModelStatus()
        if st == self.hc.HighsModelStatus.kOptimal:
            return "optimal", np.array(self.h.getSolution().col_value)
        if st in (self.hc.HighsModelStatus.kUnbounded, self.hc.HighsModelStatus.kUnboundedOrInfeasible):
            return "unbounded", None
        raise RuntimeError(f"suppression audit LP failed ({self.h.modelStatusToString(st)}); the true figures are "
                           "feasible, so the relations are inconsistent with them")


def audit(values: np.ndarray, hidden: np.ndarray, cons: list[Constraint], graense: int = GRAENSE,
          exact: bool = False, dirs: list[np.ndarray] | None = None, deadline: float | None = None) -> AuditResult:
    """The attack: for each hidden cell, minimise and maximise it over everything published (HiGHS LP).

    Why per block: hidden cells that share no relation (directly or through other hidden cells) are
    independent problems.  Why batched: every LP solution is a point consistent with the published data, and
    so is the truth, so a cell whose observed values already span ``graense`` is certified without its own
    LPs.  First LPs that push all uncertified cells of a block at once (up to truth + graense: the caps only
    shrink the feasible set, so the points stay valid), repeated while they certify cells; then each
    remaining cell's own max and min, warm-started from the previous basis.  ``exact=True`` solves both LPs
    for every cell (tests that want the intervals themselves).
    """
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    solves = 0
    unbounded = np.zeros(len(values), dtype=bool)
    for d in dirs or []:
        if hidden[d].all():
            unbounded[d] = True
    blocks = _components(len(values), hidden, cons)
    for cells, ks in blocks:
        if not exact and unbounded[cells].all():
            for c in cells:
                lo[int(c)], hi[int(c)] = float(values[c]), math.inf
            continue
        pos = {int(c): k for k, c in enumerate(cells)}
        a_rows = []
        for k in ks:
            c = cons[k]
            h = hidden[c.cells]
            rhs = c.rhs - float(c.coefs[~h] @ values[c.cells[~h]])
            a_rows.append(([pos[int(x)] for x in c.cells[h]], list(c.coefs[h]), rhs if c.eq else -np.inf, rhs))
        nv = len(cells)
        lp = _Block(nv, a_rows)
        truth = values[cells].astype(float)
        seen_lo, seen_hi = truth.copy(), truth.copy()
        if not exact:
            seen_hi[unbounded[cells]] = math.inf

        def solve(obj: np.ndarray, upper: np.ndarray | None = None, lp: _Block = lp, seen_lo: np.ndarray = seen_lo,
                  seen_hi: np.ndarray = seen_hi) -> np.ndarray | None:
            nonlocal solves
            solves += 1
            st, x = lp.solve(obj, upper)
            if x is not None:
                np.minimum(seen_lo, x, out=seen_lo)
                np.maximum(seen_hi, x, out=seen_hi)
            return x

        def certified(seen_lo: np.ndarray = seen_lo, seen_hi: np.ndarray = seen_hi) -> np.ndarray:
            with np.errstate(invalid="ignore"):
                return np.floor(seen_hi + 1e-6) - np.ceil(seen_lo - 1e-6) >= graense

        if not exact:
            # push up (capped at truth + graense) all uncertified cells, while that certifies some
            # random weights: a vertex then puts whole steps into single cells instead of spreading them
            rng = np.random.default_rng(nv)
            before, stale = int(certified().sum()), 0
            for _ in range(30):
                if deadline is not None and time.perf_counter() > deadline:
                    raise TimeoutError("suppression audit over budget")
                todo = ~certified()
                if not todo.any() or stale >= 2:
                    break
                # random signs: moving mass from the cells pushed down to the cells pushed up pays off
                w = rng.uniform(1.0, 2.0, nv) * rng.choice([-1.0, 1.0], nv)
                solve(np.where(todo, w, 0.0), truth + graense)
                now = int(certified().sum())
                stale = stale + 1 if now == before else 0
                before = now
            log.debug("audit block of %d cells: %d uncertified after %d batch LPs", nv, int((~certified()).sum()),
                      solves)
        for k in range(nv):
            c = int(cells[k])
            if deadline is not None and time.perf_counter() > deadline:
                raise TimeoutError("suppression audit over budget")
            if not exact and _width(seen_lo[k], seen_hi[k]) >= graense:
                lo[c], hi[c] = float(seen_lo[k]), float(seen_hi[k])
                continue
            obj = np.zeros(nv)
            obj[k] = -1.0
            x = solve(obj)
            mx = math.inf if x is None else float(x[k])
            if not exact and _width(seen_lo[k], mx) >= graense:
                lo[c], hi[c] = float(seen_lo[k]), mx
                continue
            obj[k] = 1.0
            mn = float(solve(obj)[k])
            lo[c], hi[c] = mn, mx
    return AuditResult(lo, hi, solves, len(blocks))


def choose_hidden(values: np.ndarray, cons: list[Constraint], graense: int = GRAENSE, max_rounds: int = 200,
                  dirs: list[np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, AuditResult]:
    """Primary cells, then secondary cells until the audit pins none; returns (hidden, primary, last audit).

    Each round: a relation (equality) with exactly one hidden cell gets its smallest published cell hidden
    (cheap, repeated until stable); then the LP audit; each cell still narrower than ``graense`` gets the
    smallest published cell of one of its relations hidden (preferring equalities).  Hiding more only
    widens intervals, so the loop ends (at worst with everything hidden).
    """
    primary = values < graense
    hidden = primary.copy()
    by_cell: dict[int, list[int]] = defaultdict(list)
    for k, c in enumerate(cons):
        for x in c.cells:
            by_cell[int(x)].append(k)
    eqs = [c for c in cons if c.eq]
    budget = float(os.environ.get("DSDW_SUPPRESSION_BUDGET_S", str(BUDGET_S)))
    t_start = time.perf_counter()
    for _ in range(max_rounds):
        if time.perf_counter() - t_start > budget:
            # the audit could not clear the grid in time (sparse, tiny figures): publish no count of it
            log.warning("suppression: budget of %.0f s exceeded; every count of the grid is hidden", budget)
            hidden[:] = True
            return hidden, primary, audit(values, hidden, cons, graense, dirs=dirs)
        while True:
            changed = False
            for c in eqs:
                h = hidden[c.cells]
                # a lone hidden cell is its relation's difference; hidden cells whose values sum to less than
                # graense lie in [0, that sum]: both pin, so a published cell of the relation is hidden too
                if h.any() and (h.sum() == 1 or values[c.cells[h]].sum() < graense) and not h.all():
                    free = c.cells[~h]
                    hidden[free[np.lexsort((free, values[free]))[0]]] = True
                    changed = True
            if not changed:
                break
        t0 = time.perf_counter()
        try:
            res = audit(values, hidden, cons, graense, dirs=dirs, deadline=t_start + budget)
        except TimeoutError:
            continue
        pinned = res.pinned(graense)
        log.debug("suppression round: %d hidden, %d pinned, %d LPs in %d blocks, %.2f s", hidden.sum(), len(pinned),
                  res.lp_solves, res.blocks, time.perf_counter() - t0)
        if not pinned:
            return hidden, primary, res
        for i in pinned:
            best = None
            for k in sorted(by_cell[i], key=lambda k: not cons[k].eq):
                free = cons[k].cells[~hidden[cons[k].cells]]
                if len(free):
                    cand = free[np.lexsort((free, values[free]))[0]]
                    if best is None or values[cand] < values[best]:
                        best = cand
            if best is None:  # all its relations' cells are hidden: widen through the block's relations
                free = np.array([x for k in range(len(cons)) if hidden[cons[k].cells].any()
                                 for x in cons[k].cells if not hidden[x]])
                if len(free) == 0:
                    raise RuntimeError(f"cell {i} is pinned with every related cell hidden")
                best = free[np.lexsort((free, values[free]))[0]]
            hidden[best] = True
    raise RuntimeError(f"suppression did not converge in {max_rounds} rounds")


def grid_from(con: duckdb.DuckDBPyConnection, source: str) -> Grid:
    """The cells of ``source`` (the mart's columns) as a :class:`Grid` with its relations."""
    data = con.execute(f"SELECT periode_type, periode_start, geo_niveau, geo_kode, overordnet_geo_kode, ydelsesgruppe, "
                       f"{', '.join(MAAL)} FROM ({source}) ORDER BY ALL").fetchall()
    rows = [r[:6] for r in data]
    values = np.array([float(v or 0) for r in data for v in r[6:9]])
    return Grid(rows, values, constraints(rows, values), directions(rows))


def suppress(con: duckdb.DuckDBPyConnection, source: str, graense: int = GRAENSE, target: str | None = None
             ) -> duckdb.DuckDBPyRelation:
    """Apply the rule to relation ``source`` and return the published relation (temp table ``target``).

    ``source`` needs the key columns, overordnet_geo_kode (region of a kommune, '000' for a region, NULL for
    land), antal_personer, fuldtidspersoner, tilgang, afgang; other columns pass through.  Hidden counts are
    NULL with ``<maal>_diskretioneret`` true; fuldtidspersoner is hidden with its antal_personer.
    """
    grid = grid_from(con, source)
    return _publish_relation(con, source, grid, choose_grid_hidden(grid, graense), target)


def sparse_kommuner(grid: Grid, graense: int = GRAENSE) -> np.ndarray | None:
    """The kommune-level cells, when most of them are below ``graense`` (else None).

    Why: in a sparse grid (a small population, a rare benefit) nearly every kommune cell is a primary
    cell; protecting them one by one costs LPs over the whole linked grid and ends with almost everything
    hidden anyway.  Such a grid is published with every count hidden (:func:`choose_grid_hidden`), at once
    and deterministically -- unlike a time budget, a vintage then does not depend on how busy the machine
    was.  Grids with enough data (national scale) get the LP-checked suppression cell by cell.
    """
    kommune = np.repeat(np.array([r[2] == "kommune" for r in grid.rows], dtype=bool), 3)
    if not kommune.any():
        return None
    return kommune if float((grid.values[kommune] < graense).mean()) > SPARSE_SHARE else None


def choose_grid_hidden(grid: Grid, graense: int = GRAENSE) -> np.ndarray:
    """The hidden cells of a grid: :func:`choose_hidden`, or every cell when :func:`sparse_kommuner` says so."""
    mask = sparse_kommuner(grid, graense)
    if mask is None:
        return choose_hidden(grid.values, grid.constraints, graense, dirs=grid.directions)[0]
    log.warning("suppression: %d of %d kommune cells below %d; the grid is published with every count hidden",
                int((grid.values[mask] < graense).sum()), int(mask.sum()), graense)
    return np.ones(grid.n, dtype=bool)


def _publish_relation(con: duckdb.DuckDBPyConnection, source: str, grid: Grid, hidden: np.ndarray,
                      target: str | None) -> duckdb.DuckDBPyRelation:
    t = f"_sup_{uuid.uuid4().hex[:10]}"
    target = target or f"{t}_r"
    flags = hidden.reshape(-1, 3)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {t} (periode_type VARCHAR, periode_start DATE, geo_niveau VARCHAR, "
                "geo_kode VARCHAR, ydelsesgruppe VARCHAR, h0 BOOLEAN, h1 BOOLEAN, h2 BOOLEAN)")
    if grid.rows:
        con.executemany(f"INSERT INTO {t} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [[r[0], r[1], r[2], r[3], r[5], bool(f[0]), bool(f[1]), bool(f[2])]
                         for r, f in zip(grid.rows, flags, strict=True)])
    key = ", ".join(KEY)
    try:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {target} AS
            SELECT s.* EXCLUDE (antal_personer, fuldtidspersoner, tilgang, afgang),
                   CASE WHEN NOT p.h0 THEN s.antal_personer END AS antal_personer, p.h0 AS antal_personer_diskretioneret,
                   CASE WHEN NOT p.h0 THEN s.fuldtidspersoner END AS fuldtidspersoner,
                   CASE WHEN NOT p.h1 THEN s.tilgang END AS tilgang, p.h1 AS tilgang_diskretioneret,
                   CASE WHEN NOT p.h2 THEN s.afgang END AS afgang, p.h2 AS afgang_diskretioneret
            FROM ({source}) s JOIN {t} p USING ({key})""")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return con.table(target)


PUBLISHED_COLUMNS = (
    "periode_type, periode_start, periode_slut, periode, geo_niveau, geo_kode, geo_navn, overordnet_geo_kode, "
    "ydelsesgruppe, antal_personer, antal_personer_diskretioneret, round(fuldtidspersoner, 1) AS fuldtidspersoner, "
    "tilgang, tilgang_diskretioneret, afgang, afgang_diskretioneret, uger_i_perioden, er_foreloebig, horisont, "
    "indlaesning_nr")


def _exists(con: duckdb.DuckDBPyConnection, name: str, schema: str = "main") -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                       "AND schema_name = ? AND table_name = ?", [schema, name]).fetchone()[0] > 0


def _view_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() "
                       "AND schema_name = 'main' AND view_name = ?", [name]).fetchone()[0] > 0


def publish_suppressed(con: duckdb.DuckDBPyConnection, result: Any = None) -> int:
    """Load hook (``build.POST_MODEL_HOOKS``): bring ``mart_ydelser_publiceret`` in step, log the vintage.

    Republishes every calendar year with a covered period whose latest computation is not the published one
    (a year at once: its months, quarters and the year are linked by the time relations, so they are
    suppressed together), deletes superseded computations from ``mart_ydelser_beregning``, and appends the
    republished cells to the publication log (:mod:`pipelines.warehouse.publication`).  Returns the rows
    published.
    """
    from pipelines.warehouse import publication

    if not _exists(con, "mart_ydelser_beregning") or not _view_exists(con, FULL_GRID):
        publication.ensure_tables(con)
        if not _exists(con, PUBLISHED):
            con.execute(f"CREATE TABLE {PUBLISHED} AS SELECT {PUBLISHED_COLUMNS}, "
                        f"CAST(NULL AS INTEGER) AS vintage FROM ({_empty_published()}) LIMIT 0")
        return 0
    con.execute("""DELETE FROM mart_ydelser_beregning b USING (
            SELECT periode_type, periode_start, max(indlaesning_nr) AS nr FROM mart_ydelser_beregning GROUP BY ALL
        ) s WHERE b.periode_type = s.periode_type AND b.periode_start = s.periode_start AND b.indlaesning_nr < s.nr""")
    have = _exists(con, PUBLISHED) and "vintage" in {
        r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
                                  "AND schema_name = 'main' AND table_name = ?", [PUBLISHED]).fetchall()}
    if not have:
        con.execute(f"DROP TABLE IF EXISTS {PUBLISHED}")
    stale = (f"SELECT DISTINCT year(f.periode_start) AS aar FROM {FULL_GRID} f WHERE f.daekket"
             + ("" if not have else f" AND NOT EXISTS (SELECT 1 FROM {PUBLISHED} p WHERE p.periode_type = "
                "f.periode_type AND p.periode_start = f.periode_start AND p.indlaesning_nr = f.indlaesning_nr)"))
    years = [r[0] for r in con.execute(stale).fetchall()]
    publication.ensure_tables(con)
    if not years:
        if not have:
            con.execute(f"CREATE TABLE {PUBLISHED} AS SELECT {PUBLISHED_COLUMNS}, CAST(NULL AS INTEGER) AS vintage "
                        f"FROM ({_empty_published()}) LIMIT 0")
        return 0
    src = f"SELECT * FROM {FULL_GRID} WHERE daekket AND year(periode_start) IN ({', '.join(map(str, years))})"
    suppress(con, src, target="_sup_resultat")
    try:
        vintage = publication.next_vintage(con)
        sel = f"SELECT {PUBLISHED_COLUMNS}, {vintage} AS vintage FROM _sup_resultat"
        if not have:
            con.execute(f"CREATE TABLE {PUBLISHED} AS {sel} LIMIT 0")
        con.execute(f"DELETE FROM {PUBLISHED} WHERE year(periode_start) IN ({', '.join(map(str, years))})")
        rows = con.execute(f"INSERT INTO {PUBLISHED} BY NAME {sel}").fetchone()[0]
        publication.record(con, vintage, result, years)
    finally:
        con.execute("DROP TABLE IF EXISTS _sup_resultat")
    return int(rows)


def _empty_published() -> str:
    return ("SELECT NULL::VARCHAR AS periode_type, NULL::DATE AS periode_start, NULL::DATE AS periode_slut, "
            "NULL::VARCHAR AS periode, NULL::VARCHAR AS geo_niveau, NULL::VARCHAR AS geo_kode, "
            "NULL::VARCHAR AS geo_navn, NULL::VARCHAR AS overordnet_geo_kode, NULL::VARCHAR AS ydelsesgruppe, "
            "NULL::BIGINT AS antal_personer, NULL::BOOLEAN AS antal_personer_diskretioneret, "
            "NULL::DOUBLE AS fuldtidspersoner, NULL::BIGINT AS tilgang, NULL::BOOLEAN AS tilgang_diskretioneret, "
            "NULL::BIGINT AS afgang, NULL::BOOLEAN AS afgang_diskretioneret, NULL::BIGINT AS uger_i_perioden, "
            "NULL::BOOLEAN AS er_foreloebig, NULL::DATE AS horisont, NULL::BIGINT AS indlaesning_nr")
