"""Small-cell suppression (diskretionering) that holds against a linear-programming attacker.

Why: a published count below 5 can point at a person, and hidden cells can be recovered from the
published margins.  The old rule published which cells were primary (so each was known to be 0-4),
left empty cells out (a missing row revealed a zero) and protected groups only against a lone hidden
cell; issue 13 recovered 100+ cells by subtraction.  The rule now (docs/statistics.md):

1. every cell of the grid is published, zeros included (``mart_ydelser_fuld``);
2. primary: every count (antal_personer, tilgang, afgang) below ``GRAENSE`` is hidden; fuldtidspersoner
   (ydelsesuger / weeks of the period) is hidden with its antal_personer;
3. sparse grids: where most kommune cells are below ``GRAENSE`` the kommune level is hidden at once
   (:func:`sparse_kommuner`); the regions and hele landet stay published where the audit allows;
4. secondary: cells are hidden until, for every hidden cell, the interval of values consistent with
   everything published -- all linear relations an attacker can use (:func:`constraints`), the cells of
   earlier vintages of the same periods and of the neighbouring published years (:func:`with_context`), and
   non-negativity -- is at least ``GRAENSE`` wide (``floor(max) - ceil(min)``, so an integer attacker gains
   nothing from rounding).  The intervals are computed by linear programming with scipy's HiGHS
   (:func:`audit`): per hidden cell minimise and maximise it, per independent block of hidden cells.  A large
   grid (a national year) is protected region by region, each region's sub-table as a restriction of the whole
   grid, then audited exactly as a whole (:func:`choose_modular`);
5. one flag per measure (``<maal>_diskretioneret``): never which cells were primary.

Every step is deterministic (no time budget decides what is hidden): a vintage does not depend on how busy
the machine was.  :func:`suppress` applies the rule to a relation; :func:`publish_suppressed` is the load
hook that keeps ``mart_ydelser_publiceret`` in step and logs each publication as a vintage
(``publication.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

log = logging.getLogger(__name__)
GRAENSE = 5
# above this share of a ydelsesgruppe's kommune cells below GRAENSE all its kommune cells are hidden (sparse_kommuner)
SPARSE_SHARE = 0.5
MAAL = ("antal_personer", "tilgang", "afgang")
# the audited measures per row: the three counts and ydelsesuger (fuldtidspersoner x weeks of the period)
MAAL_ALLE = (*MAAL, "ydelsesuger")
NM = len(MAAL_ALLE)
UGER = 3
I_ALT = "i alt"
PUBLISHED = "mart_ydelser_publiceret"
FULL_GRID = "mart_ydelser_fuld"
# per audit, at most this many cells get their own LPs after the batch certificates (rays, joint pushes); the
# rest count as narrow and get more cells hidden: a deterministic cap that errs on the safe side.  None (the
# default): every uncertified cell gets its own LPs.  Measured on one national month (stress grid,
# bench/results/publication_20261202T185433.json): a cap of 40 hid 96 % of the cells in 190 s, no cap 33 % in
# 69 s -- the cap never let a narrow cell through, but the cells it left uncertified cost more rounds and more
# hidden cells than their LPs.
PER_CELL_LPS: int | None = None
# a warm-started LP that needs more simplex iterations than this share of its block's cells switches the block to
# cold solves with presolve (_Block.solve): measured 10x faster on the demo's linked 8-period grid with dual simplex;
# with primal simplex (SIMPLEX 4) and the switch off (inf) the 20-kommune year's suppression took 30 instead of 145
# CPU s, but the marts' every-kommune-cell attack was not shown to stay fast that way (a 1500 s test timeout at load
# ~10): both stay at the measured defaults until it is.  None (the default): 0.1 with dual simplex, never (inf) with
# primal simplex -- primal goes on from the previous basis, which the switch would throw away: the 20-kommune year
# with --simplex 4 took 67.1 CPU s with the switch at 0.1 and 36.9 without, same 3,182 cells hidden (s7 commit)
WARM_ITERATIONS: float | None = None


def _warm_iterations() -> float:
    """The cold switch's threshold (:data:`WARM_ITERATIONS`) for the simplex in use."""
    if WARM_ITERATIONS is not None:
        return WARM_ITERATIONS
    return math.inf if SIMPLEX == 4 else 0.1
# a hidden cell of a block larger than LOKAL gets its own max/min LPs first over its neighbourhood of at most LOKAL
# hidden cells, the block's other hidden cells fixed at their true values (audit, _local: a restriction, so sound);
# None: off.  Off by default: measured on the 20-kommune year, 400-cell neighbourhoods certified few cells (their
# protecting cycles run through months, quarter and year, kommuner and groups at once) and, unescalated (ESKALER
# False), counted so many wide cells narrow that the hidden share grew 14 % -> 23 % in four rounds and still rising
LOKAL: int | None = None
# a cell narrow over its neighbourhood gets the whole block's LPs (True: exact); False counts it narrow (more cells
# are hidden: deterministic, bounded, errs towards hiding)
ESKALER = True
# in the suppression's rounds a cell of a block larger than RELAKS that points do not certify is first tried over a
# relaxation of at most RELAKS hidden cells (audit, _relaxed): narrow there is narrow (exact), so only the cells it
# cannot settle get their two LPs over the whole block; the cells hidden are the same.  None: off
RELAKS: int | None = 50
# ... in blocks of more than RELAKS_BLOK hidden cells only: in a smaller block the warm-started LP over the whole
# block costs less than building the relaxation (20-kommune year, 4,539-cell block: 5.7 ms a full LP, 2-3 ms a
# relaxation of 20-60 cells, which proved 100-112 of 142 narrow cells narrow)
RELAKS_BLOK = 2000
# a block larger than LOKAL is pushed (audit's joint pushes) in chunks of CHUNK cells, not as a whole
CHUNK = 1500
# HiGHS's primal simplex (simplex_strategy 4) for the audit's LPs: between two solves of a block only the objective
# (and a cap on the cell maximised) changes, so the previous optimal basis stays primal feasible and primal simplex
# goes on from it, where dual simplex (HiGHS's default) first has to repair dual feasibility.  Measured on the
# 20-kommune year (22,440 cells): suppression 145 -> 30 CPU s, same cells hidden (bench/results, commit message)
SIMPLEX: int | None = None
# with primal simplex (SIMPLEX 4) the audit's joint pushes (random signed objectives over a whole block, the first
# solves of a new model) are solved cold with presolve by this strategy (1: dual), the per-cell LPs by primal from
# the basis they leave.  Measured on Nordjylland's national-size year, 3 kommuner per sub-table, nice 19, load
# 2.4-3.7 (2026-12-04, docs/statistics.md): 152.4 CPU s against 178.1 all primal, the same 8,313 cells hidden; the
# 16 pushes of sub-table 2's 3,313-cell block 5.2 CPU s against 29.8 (warm dual without the cold start: 14.9, and
# 247.4 CPU s for the year).  None: SIMPLEX for the pushes too, warm
PUSH_SIMPLEX: int | None = 1
# the audit's joint pushes (audit): at most BATCH_ROUNDS, repeated while one certifies at least BATCH_GAIN cells
BATCH_ROUNDS, BATCH_GAIN = 100, 4
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
    """The cells of one suppression problem: ``values[i]`` is cell i (row ``i // NM``, measure
    ``MAAL_ALLE[i % NM]``); rows are (periode_type, periode_start, geo_niveau, geo_kode, overordnet_geo_kode,
    ydelsesgruppe, uger_i_perioden)."""

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


def _next_period(pt: str, ps: dt.date) -> dt.date:
    step = {"maaned": 1, "kvartal": 3, "aar": 12}[pt]
    m = ps.month - 1 + step
    return dt.date(ps.year + m // 12, m % 12 + 1, 1)


def _le(cells: list[int], coefs: list[float], values: np.ndarray, why: str) -> Constraint:
    """sum(coefs * x) <= max(0, its true value): a relation that holds up to a slack the attacker is assumed
    to know (movers between kommuner, boundary weeks): conservative, and the truth satisfies it."""
    c, a = np.array(cells), np.array(coefs, dtype=float)
    return Constraint(c, a, False, max(0.0, float(a @ values[c])), why)


def constraints(rows: list[tuple], values: np.ndarray) -> list[Constraint]:
    """Every linear relation between the published cells that holds for the true figures.

    * geography (kommuner of a region, regions of the country) and ydelsesgrupper (of one geography, total
      'i alt'), per period and measure: equalities.  tilgang/afgang are exactly additive over geography
      (each person's flow is placed in one kommune); distinct-person counts and weeks are not (a mover counts
      once in the region), so the equality carries the true overlap as its constant: the attacker is assumed
      to know it exactly, the strongest (conservative) assumption;
    * periods (months of a quarter, quarters of a year; same cell): for the counts parent <= sum of children
      (a person in the quarter is in one of its months; a quarter's tilgang is its first entry's month's) and
      for antal_personer child <= parent; ydelsesuger: sum of children - parent = its true value (a week
      belongs to one month, by its Thursday);
    * consecutive periods (month to month, quarter to quarter, year to year, across calendar years too):
      antal(t) - afgang(t) - antal(t+1) <= movers, antal(t+1) - tilgang(t+1) - antal(t) <= movers (a person
      in the state in t who does not leave in t is in it on t+1's first day);
    * tilgang <= antal_personer and afgang <= antal_personer of the same cell; ydelsesuger - weeks x antal and
      antal - ydelsesuger at most their true slack (a person has at most the period's weeks; a counted person
      has a week unless its days lie in a neighbouring month's week);
    * non-negativity is the LP's bound.
    """
    idx = {(r[0], r[1], r[2], r[3], r[5]): j for j, r in enumerate(rows)}
    cons: list[Constraint] = []
    kids: dict[tuple[int, str], list[int]] = defaultdict(list)
    for j, r in enumerate(rows):
        pt, ps, niv, kode, over, grp = r[:6]
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
        for m in range(NM):
            cells = np.array([NM * c + m for c in ch] + [NM * p + m])
            if kind in ("geo", "grp") or m == UGER:
                coefs = np.array([1.0] * len(ch) + [-1.0])
                cons.append(Constraint(cells, coefs, True, float(coefs @ values[cells]), kind))
            else:
                cons.append(Constraint(cells, np.array([-1.0] * len(ch) + [1.0]), False, 0.0, "tid"))
                if m == 0:
                    for c in ch:
                        cons.append(Constraint(np.array([NM * c, NM * p]), np.array([1.0, -1.0]), False, 0.0, "tid"))
    for j, r in enumerate(rows):
        a, t, f, y = (NM * j + m for m in range(NM))
        for m in (t, f):
            cons.append(Constraint(np.array([m, a]), np.array([1.0, -1.0]), False, 0.0, "flow"))
        uger = float(r[6] if len(r) > 6 and r[6] else 1)
        cons.append(_le([y, a], [1.0, -uger], values, "uger"))
        cons.append(_le([a, y], [1.0, -1.0], values, "uger"))
        nxt = idx.get((r[0], _next_period(r[0], r[1]), r[2], r[3], r[5]))
        if nxt is not None:
            a2, t2 = NM * nxt, NM * nxt + 1
            cons.append(_le([a, f, a2], [1.0, -1.0, -1.0], values, "bestand"))
            cons.append(_le([a2, t2, a], [1.0, -1.0, -1.0], values, "bestand"))
    return cons


def directions(rows: list[tuple]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Candidate certificates of unboundedness: "one more person" in a kommune and group, in every period.

    The person adds 1 to antal_personer of its kommune, region and hele landet (group and 'i alt') in every
    period of the grid, and its weeks to ydelsesuger (one a month, the sum of its months in a quarter or year);
    a flow variant adds a tilgang (afgang) in one month and its quarter and year.  :func:`valid_directions`
    keeps those that keep every relation true: if all cells of one are hidden, each of them is unbounded
    above, with no LP.
    """
    idx = {(r[0], r[1], r[2], r[3], r[5]): j for j, r in enumerate(rows)}
    perioder = sorted({(r[0], r[1]) for r in rows}, key=lambda p: ({"maaned": 0, "kvartal": 1, "aar": 2}[p[0]], p[1]))
    delta: dict[tuple[str, dt.date], float] = {}
    for p in perioder:
        kids = [q for q in perioder if _parent_period(*q) == p]
        delta[p] = sum(delta[q] for q in kids) if kids else 1.0
    out = []
    seen = set()
    for r in rows:
        pt, ps, niv, kode, over, grp = r[:6]
        if niv not in ("kommune", "region") or grp == I_ALT or over is None or (niv, kode, grp) in seen:
            continue
        seen.add((niv, kode, grp))
        # a region's person (valid where its kommuner are not in the grid: a sparse grid's region level)
        geo = [("kommune", kode), ("region", over), ("land", "000")] if niv == "kommune" else \
            [("region", kode), ("land", "000")]
        base: dict[int, float] = {}
        for p in perioder:
            for n, k in geo:
                for g in (grp, I_ALT):
                    j = idx.get((p[0], p[1], n, k, g))
                    if j is not None:
                        base[NM * j] = 1.0
                        base[NM * j + UGER] = delta[p]
        if not base:
            continue
        out.append((np.array(list(base)), np.array(list(base.values()))))
        for p in perioder:
            if p[0] != "maaned":
                continue
            chain = [p]
            while (q := _parent_period(*chain[-1])) is not None:
                chain.append(q)
            for m in (1, 2):
                d = dict(base)
                for q in chain:
                    for n, k in geo:
                        for g in (grp, I_ALT):
                            j = idx.get((q[0], q[1], n, k, g))
                            if j is not None:
                                d[NM * j + m] = 1.0
                out.append((np.array(list(d)), np.array(list(d.values()))))
    return out


def valid_directions(n: int, cons: list[Constraint], dirs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """The cells of the directions d (d >= 0) along which every relation stays true: a.d = 0 for an equality,
    a.d <= 0 for an inequality (checked, not assumed: a relation added later cannot make a certificate wrong).
    One sparse product relations x directions checks them all at once."""
    if not dirs or not cons:
        return [cells for cells, _ in dirs]
    from scipy import sparse

    a = sparse.csr_matrix((np.concatenate([c.coefs for c in cons]),
                           (np.repeat(np.arange(len(cons)), [len(c.cells) for c in cons]),
                            np.concatenate([c.cells for c in cons]))), shape=(len(cons), n))
    d = sparse.csc_matrix((np.concatenate([am for _, am in dirs]),
                           (np.concatenate([c for c, _ in dirs]), np.repeat(np.arange(len(dirs)), [len(c) for c, _ in dirs]))),
                          shape=(n, len(dirs)))
    s = (a @ d).tocoo()
    eq = np.array([c.eq for c in cons])
    bad = (eq[s.row] & (np.abs(s.data) > 1e-9)) | (~eq[s.row] & (s.data > 1e-9))
    broken = set(s.col[bad].tolist())
    return [cells for j, (cells, _) in enumerate(dirs) if j not in broken]


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


SETTLED_BY = ("unbounded", "points", "local", "lp", "capped", "local_narrow", "relaxed_narrow")


@dataclass
class AuditResult:
    """Per hidden cell the interval an attacker can narrow it to (LP bounds; inf = unbounded)."""

    lo: dict[int, float]
    hi: dict[int, float]
    lp_solves: int
    blocks: int
    # per cell how its interval was settled: 'unbounded' (a checked direction or ray raises it without limit),
    # 'points' (solutions of LPs, all consistent with the published data, already span graense), 'lp' (its own
    # max/min LPs), 'capped' (past the per-cell cap: reported as seen, so counted narrow and protected further),
    # 'local' (its max/min LPs over its neighbourhood, the block's other cells at their true values: wide there,
    # so wide), 'local_narrow' (narrow over its neighbourhood and not escalated to the block: counted narrow),
    # 'relaxed_narrow' (narrow over a relaxation of its block, :func:`_relaxed`: so narrow, exactly)
    by: dict[int, str] = field(default_factory=dict)

    @property
    def how(self) -> dict[str, int]:
        out = dict.fromkeys(SETTLED_BY, 0)
        for v in self.by.values():
            out[v] += 1
        return out

    def width(self, i: int) -> float:
        return _width(self.lo[i], self.hi[i])

    def pinned(self, graense: int = GRAENSE) -> list[int]:
        return sorted(i for i in self.lo if self.width(i) < graense)


def _sparse_rows(nv: int,
                 a_rows: list[tuple[list[int], list[float], float, float]]) -> tuple[Any, np.ndarray, np.ndarray]:
    """A block's relations (index, coefs, lower, upper per relation) as one scipy CSR matrix over ``nv`` cells and
    the relations' lower and upper bounds: the form both HiGHS (:class:`_Block`) and the neighbourhood walks
    (:class:`_Relax`) read."""
    from scipy import sparse

    lens = [len(r[0]) for r in a_rows]
    m = sparse.csr_matrix((np.array([a for r in a_rows for a in r[1]], dtype=float),
                           (np.repeat(np.arange(len(a_rows)), lens).astype(np.int64),
                            np.array([j for r in a_rows for j in r[0]], dtype=np.int64))),
                          shape=(len(a_rows), nv))
    return m, np.array([r[2] for r in a_rows], dtype=float), np.array([r[3] for r in a_rows], dtype=float)


class _Block:
    """One block's LP in scipy's HiGHS, kept between solves: only the objective (and caps) change, so each
    solve starts from the previous basis (warm start) instead of building and presolving a new model."""

    def __init__(self, nv: int, a_rows: list[tuple[list[int], list[float], float, float]] | None,
                 csc: Any = None) -> None:
        """``a_rows`` (index, coefs, lower, upper) per relation, or ``csc``: (scipy CSC matrix, lower, upper)."""
        from scipy.optimize._highspy import _core as hc

        self.hc = hc
        self.nv = nv
        if csc is None:
            rows, lo, hi = _sparse_rows(nv, a_rows or [])
            csc = (rows.tocsc(), lo, hi)
        m, lo, hi = csc
        m.sort_indices()
        lp = hc.HighsLp()
        lp.num_col_, lp.num_row_ = nv, m.shape[0]
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = nv, m.shape[0]
        lp.a_matrix_.format_ = hc.MatrixFormat.kColwise
        lp.a_matrix_.start_ = m.indptr.astype(np.int32)
        lp.a_matrix_.index_ = m.indices.astype(np.int32)
        lp.a_matrix_.value_ = m.data.astype(float)
        lp.col_cost_ = np.zeros(nv)
        lp.col_lower_ = np.zeros(nv)
        lp.col_upper_ = np.full(nv, hc.kHighsInf)
        lp.row_lower_ = np.asarray(lo, dtype=float)
        lp.row_upper_ = np.asarray(hi, dtype=float)
        self.h = hc._Highs()
        self.h.setOptionValue("output_flag", False)
        self.simplex = self.simplex_of_block = SIMPLEX
        if SIMPLEX is not None:
            self.h.setOptionValue("simplex_strategy", SIMPLEX)
        self.h.passModel(lp)
        self.cost = np.zeros(nv)
        self.upper = np.full(nv, hc.kHighsInf)
        self.cold = False

    def solve(self, obj: np.ndarray, upper: np.ndarray | None = None,
              simplex: int | None = None, cold: bool = False) -> tuple[str, np.ndarray | None]:
        """Minimise ``obj @ x``; returns ('optimal', x) or ('unbounded', None).  ``simplex``: HiGHS's strategy for
        this solve (None: the block's own, :data:`SIMPLEX`); the basis carries over either way.  ``cold``: this solve
        from scratch with presolve (as after the cold switch)."""
        want = self.simplex_of_block if simplex is None else simplex
        if want != self.simplex:
            self.h.setOptionValue("simplex_strategy", 0 if want is None else want)
            self.simplex = want
        # only what changed is passed on: a bound change on every column costs HiGHS the warm start's value
        obj = obj.astype(float)
        up = np.full(self.nv, self.hc.kHighsInf) if upper is None else np.minimum(upper, self.hc.kHighsInf)
        c = np.flatnonzero(obj != self.cost).astype(np.int32)
        if len(c):
            self.h.changeColsCost(len(c), c, obj[c])
            self.cost = obj
        u = np.flatnonzero(up != self.upper).astype(np.int32)
        if len(u):
            self.h.changeColsBounds(len(u), u, np.zeros(len(u)), up[u])
            self.upper = up
        if self.cold or cold:
            self.h.clearSolver()
        self.h.run()
        if not self.cold and self.h.getInfo().simplex_iteration_count > _warm_iterations() * self.nv:
            # the previous basis did not pay off (many more pivots than a presolved cold solve needs on linked
            # multi-period blocks): this block's later solves start cold, with presolve.  Deterministic: HiGHS's
            # simplex is, and the switch depends on its iteration count only
            self.cold = True
        st = self.h.getModelStatus()
        if st == self.hc.HighsModelStatus.kOptimal:
            return "optimal", np.array(self.h.getSolution().col_value)
        if st in (self.hc.HighsModelStatus.kUnbounded, self.hc.HighsModelStatus.kUnboundedOrInfeasible):
            return "unbounded", None
        raise RuntimeError(f"suppression audit LP failed ({self.h.modelStatusToString(st)}); the true figures are "
                           "feasible, so the relations are inconsistent with them")


# Not done, measured: growing each large block's HiGHS model from round to round of choose_hidden instead of
# building it anew.  A new model's first LP is solved cold WITH presolve, a grown one warm WITHOUT (HiGHS skips
# presolve when a basis is valid), and presolve cuts the cost per simplex iteration about 3x here: the 20-kommune
# year's block grown 3,084 -> 3,182 hidden cells took 2.96 CPU s for a joint push, built anew 0.80; the 40-kommune
# year's rounds 1-4 89.2 CPU s grown against 83.3 anew (same cells hidden; branch s7-pub, commit 41cae0a)


@dataclass
class Seen:
    """Per cell the lowest and highest value seen in points consistent with the published data (the truth
    first; +inf once a ray of the feasible set raises it).  Kept across the rounds of :func:`choose_hidden`:
    hiding more cells only adds unknowns, so a point (with the newly hidden cells at their true values) or a
    ray (zero on them) of an earlier round stays one of the later rounds -- a certified cell stays certified."""

    lo: np.ndarray
    hi: np.ndarray
    # set when the values leave the suppression for the attack check (:meth:`stamp`): the digest of the true
    # figures and relations the points satisfy, and the hidden cells they may differ from the truth on.  A stamped
    # Seen certifies cells of an audit only over the same relations and a superset of those hidden cells (audit
    # checks both): then every point seen is a point consistent with what that audit's pattern publishes
    relations: str | None = None
    hidden: np.ndarray | None = None

    @classmethod
    def of(cls, values: np.ndarray) -> Seen:
        return cls(values.astype(float).copy(), values.astype(float).copy())

    def stamp(self, values: np.ndarray, cons: list[Constraint], hidden: np.ndarray | None) -> Seen:
        """This Seen as certificates of the problem (``values``, ``cons``) with at most ``hidden`` hidden (None:
        none, the truth alone)."""
        self.relations = _digest(values, cons)
        self.hidden = np.zeros(len(values), dtype=bool) if hidden is None else hidden.copy()
        return self


def _digest(values: np.ndarray, cons: list[Constraint]) -> str:
    """A fingerprint of a problem: its true figures and every relation (cells, coefficients, kind, constant), so
    that points seen for one problem are never taken as points of another."""
    import hashlib

    h = hashlib.sha256(np.ascontiguousarray(values, dtype=float).tobytes())
    if cons:
        h.update(np.array([len(c.cells) for c in cons], dtype=np.int64).tobytes())
        h.update(np.concatenate([c.cells for c in cons]).astype(np.int64).tobytes())
        h.update(np.concatenate([c.coefs for c in cons]).astype(float).tobytes())
        h.update(np.array([c.eq for c in cons], dtype=bool).tobytes())
        h.update(np.array([c.rhs for c in cons], dtype=float).tobytes())
    return h.hexdigest()


def _rays(nv: int, a_rows: list[tuple[list[int], list[float], float, float]], todo: np.ndarray) -> np.ndarray:
    """The block's cells that lie on a ray of its feasible set (one LP).

    Why: a direction d >= 0 with A_eq d = 0 and A_le d <= 0 keeps every relation true from the truth on for
    any step, so each cell with d_i > 0 is unbounded above: "one more person" found by the solver, in the
    relations as they are (vintage copies, context years), not by a hand-made list.  The rays form a cone and
    the sum of two rays is a ray, so maximising sum(t_i) with t_i <= d_i, t_i <= 1 over the cone finds every
    cell that some ray raises, in one LP (a cap d <= 1 instead would make it a knapsack: one group per sum).
    The direction found is checked against every relation before it certifies anything."""
    rows = [(i, c, 0.0 if not math.isinf(lo) else -np.inf, 0.0) for i, c, lo, _ in a_rows]
    rows += [([nv + k, k], [1.0, -1.0], -np.inf, 0.0) for k in range(nv)]
    lp = _Block(2 * nv, rows)
    st, x = lp.solve(np.concatenate([np.zeros(nv), np.where(todo, -1.0, 0.0)]),
                     np.concatenate([np.full(nv, 1e4), np.ones(nv)]))
    if x is None:
        return np.zeros(nv, dtype=bool)
    d = x[:nv]
    tol = 1e-7 * max(1.0, float(d.max(initial=0.0)))
    for idx, coefs, rlo, _ in rows[:len(a_rows)]:
        s = float(np.dot(coefs, d[idx])) if idx else 0.0
        if s > tol or (rlo == 0.0 and s < -tol):
            log.debug("ray LP: direction fails the check (tolerance): no cell certified by it")
            return np.zeros(nv, dtype=bool)
    found = todo & (d > 0.5)
    log.debug("ray LP: %d of %d uncertified cells unbounded above", int(found.sum()), int(todo.sum()))
    return found


def _hood(k: int, a_rows: list[tuple[list[int], list[float], float, float]], hoods: list[list[int]],
          size: int) -> list[int]:
    """Cell ``k``'s neighbourhood in its block: at most ``size`` hidden cells, breadth first through the relations
    they share (each cell's smallest relations first); deterministic, a function of the relations only."""
    got = {k: None}
    layer = [k]
    while layer:
        nxt = []
        for v in layer:
            for r in hoods[v]:
                for u in a_rows[r][0]:
                    if u not in got:
                        got[u] = None
                        nxt.append(u)
                        if len(got) >= size:
                            return list(got)
        layer = nxt
    return list(got)


def _restricted(free: np.ndarray, a_rows: list[tuple[list[int], list[float], float, float]],
                hoods: list[list[int]], truth: np.ndarray) -> _Block:
    """The block's LP over the cells ``free`` (sorted), every other hidden cell of the block fixed at its true
    value: a restriction of the block's LP (see :func:`_local`)."""
    pos = np.full(len(truth), -1)
    pos[free] = np.arange(len(free))
    rows = []
    for r in sorted({r for v in free for r in hoods[v]}):
        idx, coefs, rlo, rhi = a_rows[r]
        li, lc, shift = [], [], 0.0
        for v, a in zip(idx, coefs, strict=True):
            if pos[v] >= 0:
                li.append(int(pos[v]))
                lc.append(a)
            else:
                shift += a * truth[v]
        rows.append((li, lc, rlo - shift, rhi - shift))
    return _Block(len(free), rows)


def _local(k: int, a_rows: list[tuple[list[int], list[float], float, float]], hoods: list[list[int]],
           truth: np.ndarray, size: int, graense: int, seen_lo: np.ndarray,
           push: Any) -> int:
    """Cell ``k``'s max (then min) LP over its neighbourhood (:func:`_hood`), the block's other hidden cells fixed at
    their true values; every solution is handed to ``push``.  Returns the LPs solved.

    Why this is sound (a restriction, not a relaxation): fixing hidden cells at their true values adds equalities
    the truth satisfies, so the restricted feasible set is a subset of the block's, with the truth in it; each
    restricted solution (the fixed cells at the truth) is a point consistent with everything published, a ray of
    the restricted cone (zero on the fixed cells) is one of the block's.  The neighbourhood's interval of a cell lies
    inside its block's: wide there means wide.  Dropping the relations beyond the neighbourhood instead would widen
    intervals: test_suppression_local.py::test_a_cell_narrow_only_through_a_far_relation_is_not_certified_locally
    """
    hood = np.array(sorted(_hood(k, a_rows, hoods, size)))
    lp = _restricted(hood, a_rows, hoods, truth)
    kk = int(np.searchsorted(hood, k))
    obj = np.zeros(len(hood))
    obj[kk] = -1.0
    up = np.full(len(hood), np.inf)
    up[kk] = math.ceil(seen_lo[k] - 1e-6) + graense + 0.5
    _, x = lp.solve(obj, up)
    if x is None:  # unbounded over the neighbourhood: unbounded (its ray is one of the block's)
        x = truth[hood].copy()
        x[kk] = math.inf
    push(x, hood)
    if math.floor(x[kk] + 1e-6) - math.ceil(seen_lo[k] - 1e-6) >= graense:
        return 1
    obj[kk] = 1.0
    _, x = lp.solve(obj)
    push(x, hood)
    return 2


# a long audit reports its progress at INFO at most every PROGRESS_SECONDS (cells certified, LPs solved, elapsed)
PROGRESS_SECONDS = 30.0
# blocks smaller than this are audited without progress lines (a national month has thousands of small blocks)
PROGRESS_CELLS = 500


class _Progress:
    """Progress lines of one audit, so that a long run (a national year) can be judged while it runs: per large
    block its cells, the cells certified after the joint pushes and then every ``PROGRESS_SECONDS`` the cells
    certified, the cells done and the LPs solved, with wall and CPU seconds since the audit began."""

    def __init__(self, blocks: list[tuple[np.ndarray, list[int]]]) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.n_blocks = len(blocks)
        self.k = 0
        self.nv = 0
        self.last = self.t0
        self.big = False

    def _t(self) -> str:
        return f"{time.perf_counter() - self.t0:.1f} s wall, {time.process_time() - self.c0:.1f} CPU s"

    def block(self, cells: np.ndarray, solves: int) -> None:
        self.k += 1
        self.nv = len(cells)
        self.big = self.nv >= PROGRESS_CELLS
        if self.big:
            log.info("audit: block %d of %d, %d hidden cells (%d LPs so far, %s)", self.k, self.n_blocks, self.nv,
                     solves, self._t())

    def batched(self, certified: int, solves: int) -> None:
        if self.big:
            log.info("audit: block %d: %d of %d cells certified by rays and joint pushes (%d LPs so far, %s)", self.k,
                     certified, self.nv, solves, self._t())

    def cell(self, k: int, certified: Any, solves: int) -> None:
        """``certified``: the block's certified mask, computed only when a line is due."""
        now = time.perf_counter()
        if self.big and now - self.last >= PROGRESS_SECONDS:
            self.last = now
            log.info("audit: block %d: cell %d of %d, %d certified, %d LPs so far (%s)", self.k, k, self.nv,
                     int(certified().sum()), solves, self._t())

    def done(self, solves: int) -> None:
        if time.perf_counter() - self.t0 >= PROGRESS_SECONDS or self.big:
            log.info("audit: %d blocks, %d LPs (%s)", self.n_blocks, solves, self._t())


class _Relax:
    """A block's relations as sparse matrices, for :func:`_relaxed`'s neighbourhoods (built once per block)."""

    def __init__(self, nv: int, a_rows: list[tuple[list[int], list[float], float, float]]) -> None:
        self.csr, self.lo, self.hi = _sparse_rows(nv, a_rows)
        self.csc = self.csr.tocsc()
        self.nv = nv

    def hood(self, k: int, size: int) -> np.ndarray:
        """Cell ``k``'s neighbourhood: breadth first through the relations, at most ``size`` cells (the last layer
        cut in cell order); deterministic, a function of the relations only."""
        got = np.zeros(self.nv, dtype=bool)
        got[k] = True
        layer = np.array([k])
        n = 1
        while len(layer) and n < size:
            rows = np.unique(np.concatenate([self.csc.indices[self.csc.indptr[v]:self.csc.indptr[v + 1]]
                                             for v in layer]))
            nxt = np.unique(np.concatenate([self.csr.indices[self.csr.indptr[r]:self.csr.indptr[r + 1]]
                                            for r in rows])) if len(rows) else np.zeros(0, dtype=int)
            nxt = nxt[~got[nxt]][:size - n]
            got[nxt] = True
            n += len(nxt)
            layer = nxt
        return np.flatnonzero(got)


def _relaxed(k: int, rel: _Relax, size: int, graense: int, truth: np.ndarray) -> tuple[tuple[float, float] | None, int]:
    """Cell ``k``'s interval over a relaxation of its block when that already proves it narrow, else None; with
    the LPs solved.

    The relaxation: every relation that holds a cell of the neighbourhood (:meth:`_Relax.hood`, at most ``size``
    hidden cells), over every hidden cell those relations hold; the block's other relations dropped.  Dropping
    relations only enlarges the feasible set (the block's feasible set, projected on these cells, lies inside the
    relaxation's), so the relaxation's min is <= the block's min and its max >= the block's max: narrower than
    ``graense`` there means narrower than ``graense`` in the block -- an exact verdict "narrow", at a fraction of
    the block's LP.  A cell not narrow there proves nothing (its own LPs over the whole block decide).  Its
    solutions are not points consistent with the published data and are never seen as such.  The opposite
    mistake -- the cells outside fixed at their true values, a restriction -- understates intervals and would call
    wide cells narrow.  Tested: test_suppression_local.py::test_a_relaxation_calls_narrow_only_cells_the_exact_audit_pins."""
    hood = rel.hood(k, size)
    rows = np.unique(np.concatenate([rel.csc.indices[rel.csc.indptr[v]:rel.csc.indptr[v + 1]] for v in hood]))
    sub = rel.csr[rows]
    cols = np.unique(sub.indices)
    lp = _Block(len(cols), None, (sub[:, cols].tocsc(), rel.lo[rows], rel.hi[rows]))
    kk = int(np.searchsorted(cols, k))
    obj = np.zeros(len(cols))
    obj[kk] = -1.0
    # capped: reaching truth + graense settles "not provably narrow here" without proving unboundedness
    up = np.full(len(cols), np.inf)
    cap = float(truth[k]) + graense
    up[kk] = cap
    _, x = lp.solve(obj, up)
    if x is None or x[kk] >= cap - 1e-6:
        return None, 1
    mx = float(x[kk])
    obj[kk] = 1.0
    _, x = lp.solve(obj, up)
    mn = float(x[kk])
    return ((mn, mx) if _width(mn, mx) < graense else None), 2


def _hidden_rows(values: np.ndarray, hidden: np.ndarray, cons: list[Constraint], ks: list[int],
                 cells: np.ndarray) -> list[tuple[list[int], list[float], float, float]]:
    """The relations ``ks`` as an LP's rows over the hidden ``cells`` (sorted, holding every hidden cell of those
    relations; their positions are the columns): the published cells' figures moved into the bounds (index, coefs,
    lower, upper per relation).  The audit's blocks and :func:`_binding`'s relaxation build their LPs with it."""
    rows = []
    for k in ks:
        c = cons[k]
        h = hidden[c.cells]
        rhs = c.rhs - float(c.coefs[~h] @ values[c.cells[~h]])
        rows.append(([int(x) for x in np.searchsorted(cells, c.cells[h])], list(c.coefs[h]), rhs if c.eq else -np.inf,
                     rhs))
    return rows


def audit(values: np.ndarray, hidden: np.ndarray, cons: list[Constraint], graense: int = GRAENSE,
          exact: bool = False, dirs: list[np.ndarray] | None = None,
          targets: np.ndarray | None = None, seen: Seen | None = None,
          per_cell: int | None = PER_CELL_LPS, local: int | None = LOKAL,
          escalate: bool = True, relax: int | None = None) -> AuditResult:
    """The attack: for each hidden cell, minimise and maximise it over everything published (HiGHS LP).

    Why per block: hidden cells that share no relation (directly or through other hidden cells) are
    independent problems.  Why batched: every LP solution is a point consistent with the published data, and
    so is the truth, so a cell whose observed values already span ``graense`` is certified without its own
    LPs.  Proof: the set F of figures consistent with the publication (the relations with the published cells
    fixed, x >= 0) is convex and holds the truth; an optimal HiGHS solution lies in F (to its feasibility
    tolerance), also with extra caps (they only shrink F); a ray d (checked: A_eq d = 0, A_le d <= 0, d >= 0)
    keeps truth + s d in F for every s >= 0.  So min over F of x_i <= every seen value <= max over F of x_i,
    and seen values spanning ``graense`` (or a ray raising x_i) prove the interval at least that wide.  Tested
    against both LPs of every cell: test_suppression_attacks.py::
    test_cells_the_audit_settles_without_their_own_lps_are_wide_by_their_exact_intervals.  First LPs that push all uncertified cells of a block at once (up to truth + graense: the caps only
    shrink the feasible set, so the points stay valid), repeated while they certify cells; then each
    remaining cell's own max and min, warm-started from the previous basis.  ``relax`` (the suppression's
    rounds, :data:`RELAKS`): before its own LPs, a cell of a block larger than ``relax`` is tried over a
    relaxation of at most ``relax`` hidden cells (:func:`_relaxed`), which can only prove it narrow -- the
    verdict is the exact audit's either way, so the cells hidden do not change.  The attack check runs without.  ``targets``: the cells whose interval is
    wanted (others are unknowns of the LPs only: a sparse group's kommune cells, :func:`sparse_kommuner`).  ``exact=True`` solves both LPs
    for every cell (tests that want the intervals themselves).  ``seen``: the lowest and highest values seen
    so far, updated in place -- the rounds' memo, or the suppression's points stamped for the attack check
    (:meth:`Seen.stamp`, :func:`choose_grid_hidden`), which are first checked to be points of these very
    relations (same figures and relations, no cell moved that this pattern publishes): a cell they show wide
    needs no LP.
    """
    if seen is not None and seen.relations is not None:
        # points of the suppression as the attack check's start: valid only for the same relations and a pattern
        # that hides at least the cells they moved (every published cell of a point is at its true figure)
        if seen.relations != _digest(values, cons) or seen.hidden is None or len(seen.hidden) != len(hidden):
            raise ValueError("audit: the seen values were found for other figures or relations than these")
        if (seen.hidden & ~hidden).any():
            raise ValueError("audit: the seen values move cells this pattern publishes")
    lo: dict[int, float] = {}
    hi: dict[int, float] = {}
    solves = 0
    unbounded = np.zeros(len(values), dtype=bool)
    for d in dirs or []:
        if hidden[d].all():
            unbounded[d] = True
    blocks = _components(len(values), hidden, cons)
    budget = math.inf if per_cell is None else per_cell
    by: dict[int, str] = {}
    progress = _Progress(blocks)
    for cells, ks in blocks:
        progress.block(cells, solves)
        if targets is not None and not targets[cells].any():  # no cell wanted here: no LP to build
            continue
        if not exact and unbounded[cells].all():
            for c in cells:
                lo[int(c)], hi[int(c)] = float(values[c]), math.inf
            by.update((int(c), "unbounded") for c in cells if targets is None or targets[c])
            continue
        a_rows = _hidden_rows(values, hidden, cons, ks, cells)
        nv = len(cells)
        lp = _Block(nv, a_rows)
        truth = values[cells].astype(float)
        seen_lo, seen_hi = truth.copy(), truth.copy()
        if seen is not None and not exact:
            seen_lo, seen_hi = seen.lo[cells].copy(), seen.hi[cells].copy()
        wanted = np.ones(nv, dtype=bool) if targets is None else targets[cells].copy()
        if not exact:
            seen_hi[unbounded[cells]] = math.inf
            with np.errstate(invalid="ignore"):
                todo = wanted & (np.floor(seen_hi + 1e-6) - np.ceil(seen_lo - 1e-6) < graense)
            if todo.any():
                solves += 1
                seen_hi[_rays(nv, a_rows, todo)] = math.inf
            if seen is not None:
                seen.lo[cells], seen.hi[cells] = seen_lo, seen_hi
                seen_lo, seen_hi = seen_lo.copy(), seen_hi.copy()
        if targets is not None:  # not wanted: counted as certified
            seen_lo[~wanted], seen_hi[~wanted] = -math.inf, math.inf

        def solve(obj: np.ndarray, upper: np.ndarray | None = None, lp: _Block = lp, seen_lo: np.ndarray = seen_lo,
                  seen_hi: np.ndarray = seen_hi, cells: np.ndarray = cells) -> np.ndarray | None:
            nonlocal solves
            solves += 1
            st, x = lp.solve(obj, upper)
            if x is not None:
                np.minimum(seen_lo, x, out=seen_lo)
                np.maximum(seen_hi, x, out=seen_hi)
                if seen is not None and not exact:
                    seen.lo[cells] = np.minimum(seen.lo[cells], x)
                    seen.hi[cells] = np.maximum(seen.hi[cells], x)
            return x

        def certified(seen_lo: np.ndarray = seen_lo, seen_hi: np.ndarray = seen_hi) -> np.ndarray:
            with np.errstate(invalid="ignore"):
                return np.floor(seen_hi + 1e-6) - np.ceil(seen_lo - 1e-6) >= graense

        hoods = None
        rel = _Relax(nv, a_rows) if not exact and relax is not None and nv > max(relax, RELAKS_BLOK) else None
        if not exact and local is not None and nv > local:
            # per cell the relations it is in, smallest first (its own row and period chain before the sums)
            hoods = [[] for _ in range(nv)]
            for r, row in enumerate(a_rows):
                for v in row[0]:
                    hoods[v].append(r)
            for v in range(nv):
                hoods[v].sort(key=lambda r: (len(a_rows[r][0]), r))

        def push(x: np.ndarray, where: np.ndarray | slice = slice(None), seen_lo: np.ndarray = seen_lo,
                 seen_hi: np.ndarray = seen_hi, cells: np.ndarray = cells) -> None:
            """A point consistent with the published data (``x`` on ``where``, the truth elsewhere) seen."""
            seen_lo[where] = np.minimum(seen_lo[where], x)
            seen_hi[where] = np.maximum(seen_hi[where], x)
            if seen is not None and not exact:
                seen.lo[cells[where]] = np.minimum(seen.lo[cells[where]], x)
                seen.hi[cells[where]] = np.maximum(seen.hi[cells[where]], x)

        if not exact:
            # push up (capped at truth + graense) all uncertified cells, while that certifies some; a block larger
            # than CHUNK is pushed chunk by chunk (runs of CHUNK cells in grid order: about one period each), the
            # block's other cells fixed at their true values (a restriction, as in _local: its points are points)
            push_simplex = PUSH_SIMPLEX if SIMPLEX == 4 else None  # see PUSH_SIMPLEX
            chunks = [np.arange(nv)] if hoods is None or nv <= CHUNK else \
                [np.arange(a, min(nv, a + CHUNK)) for a in range(0, nv, CHUNK)]
            for part in chunks:
                plp = lp if len(part) == nv else _restricted(part, a_rows, hoods, truth)
                # random weights: a vertex then puts whole steps into single cells instead of spreading them
                rng = np.random.default_rng(len(part))
                # repeated while a push certifies at least BATCH_GAIN cells (a push costs a few per-cell LPs)
                before = int(certified()[part].sum())
                for _ in range(BATCH_ROUNDS):
                    todo = ~certified()[part]
                    if not todo.any():
                        break
                    # random signs: moving mass from the cells pushed down to the cells pushed up pays off
                    w = rng.uniform(1.0, 2.0, len(part)) * rng.choice([-1.0, 1.0], len(part))
                    solves += 1
                    _, x = plp.solve(np.where(todo, w, 0.0), truth[part] + graense, simplex=push_simplex,
                                     cold=push_simplex is not None)
                    if x is not None:
                        push(x, part)
                    now = int(certified()[part].sum())
                    if now - before < BATCH_GAIN:
                        break
                    before = now
            log.debug("audit block of %d cells: %d uncertified after %d batch LPs", nv, int((~certified()).sum()),
                      solves)
        progress.batched(int(certified().sum()), solves)
        for k in range(nv):
            c = int(cells[k])
            if targets is not None and not targets[c]:
                continue
            progress.cell(k, certified, solves)
            if not exact and _width(seen_lo[k], seen_hi[k]) >= graense:
                lo[c], hi[c] = float(seen_lo[k]), float(seen_hi[k])
                by[c] = "unbounded" if math.isinf(seen_hi[k]) else "points"
                continue
            if rel is not None:
                got, n_lp = _relaxed(k, rel, relax, graense, truth)
                solves += n_lp
                if got is not None:
                    lo[c], hi[c] = got
                    by[c] = "relaxed_narrow"
                    continue
            if hoods is not None:
                solves += _local(k, a_rows, hoods, truth, local, graense, seen_lo, push)
                if _width(seen_lo[k], seen_hi[k]) >= graense:
                    lo[c], hi[c] = float(seen_lo[k]), float(seen_hi[k])
                    by[c] = "local"
                    continue
                if not escalate:  # narrow over its neighbourhood: counted narrow (more cells get hidden)
                    lo[c], hi[c] = float(seen_lo[k]), float(seen_hi[k])
                    by[c] = "local_narrow"
                    continue
            if not exact and budget <= 0:  # past the deterministic cap: reported as seen (narrow: hidden more)
                lo[c], hi[c] = float(seen_lo[k]), float(seen_hi[k])
                by[c] = "capped"
                continue
            budget -= 1
            by[c] = "lp"
            obj = np.zeros(nv)
            obj[k] = -1.0
            if exact:
                x = solve(obj)
            else:
                # capped where it certifies: a bounded LP solves faster than one that must prove unboundedness,
                # and a cap that does not bind leaves the true maximum
                up = np.full(nv, np.inf)
                up[k] = math.ceil(seen_lo[k] - 1e-6) + graense + 0.5
                x = solve(obj, up)
            mx = math.inf if x is None else float(x[k])
            if not exact and _width(seen_lo[k], mx) >= graense:
                lo[c], hi[c] = float(seen_lo[k]), mx
                continue
            obj[k] = 1.0
            mn = float(solve(obj)[k])
            lo[c], hi[c] = mn, mx
    progress.done(solves)
    if seen is not None and seen.hidden is not None and not exact:
        seen.hidden = seen.hidden | hidden  # this audit's points move its hidden cells only
    return AuditResult(lo, hi, solves, len(blocks), by)


def _tie(hidden: np.ndarray) -> None:
    """fuldtidspersoner (ydelsesuger) is hidden exactly when antal_personer is: one published flag covers both."""
    h = hidden.reshape(-1, NM)
    both = h[:, 0] | h[:, UGER]
    h[:, 0] = both
    h[:, UGER] = both


def _log_stuck(pinned: list[int], values: np.ndarray, res: AuditResult, cons: list[Constraint],
               by_cell: dict[int, list[int]], hidden: np.ndarray, known: np.ndarray, eligible: np.ndarray) -> None:
    """Log the cells narrow in two rounds running, with each relation of theirs (kind, hidden / published
    eligible / other cells): why hiding one more cell a round does not widen them (the national year's third
    sub-table kept ~10 cells narrow for 60+ rounds, 2026-12-04)."""
    for i in pinned:
        rel = []
        for k in by_cell[i]:
            c = cons[k].cells
            h = int(hidden[c].sum())
            free = int((eligible[c] & ~hidden[c] & ~known[c]).sum())
            rel.append(f"{cons[k].why}{'=' if cons[k].eq else '<='}[{h}h/{free}f/{len(c) - h - free}o]")
        log.info("suppression: cell %d (measure %d, value %g) narrow again: [%g, %g] by %s; relations %s", i,
                 i % NM, values[i], res.lo.get(i, float("nan")), res.hi.get(i, float("nan")), res.by.get(i),
                 " ".join(rel))


def _binding(i: int, values: np.ndarray, seen: np.ndarray, cons: list[Constraint], by_cell: dict[int, list[int]],
             graense: int, size: int = 50) -> list[int]:
    """The relations that bound hidden cell ``i``'s interval: indices into ``cons`` of the relations with a nonzero
    dual in its max (then its min) LP over a relaxation around it (every relation holding one of at most ``size``
    hidden cells reached from ``i`` through relations, as :func:`_relaxed`), when that relaxation keeps it narrower
    than ``graense``; else [].

    Why: a cell narrow with every cell of its relations hidden is bounded through chains of hidden relations that end
    at published cells or at zero; hiding the smallest cell of the whole block (one a round) rarely hits the chain
    (the national year's final audit: ~200 CPU s a round).  The relations whose duals are nonzero are the ones that
    hold the optimum: a published cell of theirs, hidden, loosens that relation.  A guide only: the next round's exact
    audit decides."""
    got = {i}
    layer = [i]
    while layer and len(got) < size:
        nxt = []
        for v in layer:
            for k in by_cell[v]:
                for x in cons[k].cells[seen[cons[k].cells]]:
                    if int(x) not in got and len(got) < size:
                        got.add(int(x))
                        nxt.append(int(x))
        layer = nxt
    ks = sorted({k for v in got for k in by_cell[v]})
    cells = np.array(sorted({int(x) for k in ks for x in cons[k].cells[seen[cons[k].cells]]}), dtype=int)
    lp = _Block(len(cells), _hidden_rows(values, seen, cons, ks, cells))
    kk = int(np.searchsorted(cells, i))
    for sign in (-1.0, 1.0):  # max first: most narrow cells are small counts held down from above
        obj = np.zeros(len(cells))
        obj[kk] = sign
        st, x = lp.solve(obj)
        if x is None:
            continue
        duals = np.array(lp.h.getSolution().row_dual)
        out = [k for k, d in zip(ks, duals, strict=True) if abs(d) > 1e-9 and not seen[cons[k].cells].all()]
        if out:
            return out
    return []


def choose_hidden(values: np.ndarray, cons: list[Constraint], graense: int = GRAENSE, max_rounds: int = 200,
                  dirs: list[np.ndarray] | None = None, start: np.ndarray | None = None,
                  eligible: np.ndarray | None = None, known: np.ndarray | None = None,
                  targets: np.ndarray | None = None, blocks: np.ndarray | None = None,
                  per_cell: int | None = PER_CELL_LPS, stats: dict | None = None,
                  points: Seen | None = None, defer: bool = False) -> tuple[np.ndarray, np.ndarray, AuditResult]:
    """Primary cells, then secondary cells until the audit pins none; returns (hidden, primary, last audit).

    ``start``: cells hidden from the outset (context cells' published flags, sparse groups); ``eligible``: the
    cells this publication may hide (not the context's); ``known``: cells the attacker reads elsewhere (an
    earlier vintage published the same figure), hidden or not they count as published in the audit.
    Each round: a relation (equality) with exactly one hidden cell gets its smallest published eligible cell
    hidden (cheap, repeated until stable); then the LP audit; each cell still narrower than ``graense`` gets
    the smallest published eligible cell of one of its relations hidden (preferring equalities).  Hiding more
    only widens intervals, so the loop ends.  ``targets``: the hidden cells whose interval is checked (default: all).
``per_cell``: the audit's cap on per-cell LPs per round (None: every uncertified cell gets its own LPs);
``stats``: filled with the rounds, LPs and how the cells were settled (:attr:`AuditResult.how`), summed over
the rounds; ``points``: a :meth:`Seen.of` of ``values``, filled with the lowest and highest values the rounds saw and
stamped (:meth:`Seen.stamp`) for an attack check over the same relations (:func:`audit`).

    Fail safe: a narrow cell with no published eligible cell left in the relations of the hidden cells first gets
    its own LPs without the per-cell cap (it may only have been uncertified); if it is still narrow, its whole
    block is hidden -- every eligible cell with its ``blocks`` label (period and measure, from
    :func:`choose_grid_hidden`), else every eligible cell of its measure, else every eligible cell -- and the
    audit runs again.  Only a cell narrow with every eligible cell hidden (earlier publications alone pin it:
    this publication shows none of its figures) is logged and left.

    ``defer`` (the modular method's sub-tables, :func:`choose_modular`): a narrow cell every cell of whose relations
    is already hidden is left to the caller's exact audit over the whole grid instead of being widened through its
    block.  Inside a sub-table such a cell is typically narrow only through the restriction (the other sub-tables'
    cells fixed at their truth): the national year's third sub-table kept 10 such tilgang cells at [0, 4] for 50+
    rounds while one more cell of the block was hidden per cell and round (2026-12-04).  Left cells are counted in
    ``stats['deferred']``; the final audit gives them the full treatment if they are narrow there too.
    """
    n = len(values)
    eligible = np.ones(n, dtype=bool) if eligible is None else eligible
    known = np.zeros(n, dtype=bool) if known is None else known
    counts = np.ones(n, dtype=bool)
    counts[UGER::NM] = False
    primary = (values < graense) & eligible & counts
    hidden = primary.copy() if start is None else (primary | start)
    _tie(hidden)
    by_cell: dict[int, list[int]] = defaultdict(list)
    for k, c in enumerate(cons):
        for x in c.cells:
            by_cell[int(x)].append(k)
    eqs = [c for c in cons if c.eq]
    given_up: set[int] = set()
    deferred: set[int] = set()  # defer: narrow with every relation hidden, left to the caller's whole-grid audit
    wide: set[int] = set()  # certified by their own uncapped LPs (hiding more only widens: they stay certified)
    memo = Seen.of(values) if points is None else points
    if memo.relations is not None or len(memo.lo) != n:
        raise ValueError("choose_hidden: points must be a fresh Seen.of(values)")
    tally = {"rounds": 0, "lp_solves": 0, "how": dict.fromkeys(SETTLED_BY, 0),
             "stuck_audits": 0, "fail_safe_blocks": 0, "deferred": 0}
    if stats is not None:
        stats.update(tally)
        tally = stats

    t_start, c_start = time.perf_counter(), time.process_time()
    last_pinned: list[int] = []

    def smallest(free: np.ndarray) -> int | None:
        # a known cell is published elsewhere with the same figure: hiding it would protect nothing
        free = free[eligible[free] & ~hidden[free] & ~known[free]]
        return None if len(free) == 0 else int(free[np.lexsort((free, values[free]))[0]])

    def done(seen: np.ndarray, res: AuditResult) -> tuple[np.ndarray, np.ndarray, AuditResult]:
        if deferred:
            log.info("suppression: %d narrow cells with every relation hidden left to the whole grid's audit",
                     len(deferred))
        if points is not None:
            points.stamp(values, cons, seen)
        return hidden, primary, res

    for _ in range(max_rounds):
        while True:
            changed = False
            seen = hidden & ~known
            for c in eqs:
                h = seen[c.cells]
                # a lone hidden cell is its relation's difference; hidden cells whose values sum to less than
                # graense lie in [0, that sum]: both pin, so a published cell of the relation is hidden too
                if h.any() and (h.sum() == 1 or values[c.cells[h]].sum() < graense) and not h.all():
                    best = smallest(c.cells[~h])
                    if best is not None:
                        hidden[best] = True
                        seen[best] = not known[best]
                        changed = True
            if not changed:
                break
            _tie(hidden)
        seen = hidden & ~known
        res = audit(values, seen, cons, graense, dirs=dirs, targets=targets, seen=memo, per_cell=per_cell,
                    local=LOKAL, escalate=ESKALER, relax=RELAKS)
        tally["rounds"] += 1
        tally["lp_solves"] += res.lp_solves
        for k, v in res.how.items():
            tally["how"][k] += v
        pinned = [i for i in res.pinned(graense) if i not in given_up and i not in wide and i not in deferred]
        log.info("suppression round %d: %d of %d cells hidden (%.2f %%), %d narrow; %d LPs in %d blocks (%d in all), "
                 "cells settled by %s; %.1f s wall, %.1f CPU s", tally["rounds"], int(hidden.sum()), n,
                 100.0 * hidden.mean(), len(pinned), res.lp_solves, res.blocks, tally["lp_solves"], res.how,
                 time.perf_counter() - t_start, time.process_time() - c_start)
        if not pinned:
            return done(seen, res)
        if len(pinned) <= 20 and pinned == last_pinned:
            _log_stuck(pinned, values, res, cons, by_cell, hidden, known, eligible)
        last_pinned = pinned
        stuck = []
        block_free: np.ndarray | None = None  # the cells of the relations of the hidden cells (once a round)
        before = int(hidden.sum())
        free0 = eligible & ~hidden & ~known  # the cells this round may hide
        for i in pinned:
            best = None
            for k in sorted(by_cell[i], key=lambda k: not cons[k].eq):
                cand = smallest(cons[k].cells)
                if cand is not None and (best is None or values[cand] < values[best]):
                    best = cand
            if best is None and defer:  # all its relations' cells are hidden: the whole grid's audit decides
                deferred.add(i)
                tally["deferred"] = len(deferred)
                continue
            if best is None:  # all its relations' cells are hidden: loosen the relations that bind it
                # those with a cell this publication could hide at the round's start (hidden now, here or for
                # another narrow cell); none: the fail safe below
                binding = [k for k in _binding(i, values, seen, cons, by_cell, graense)
                           if (free0[cons[k].cells]).any()]
                for k in binding:
                    cand = smallest(cons[k].cells)
                    if cand is not None:
                        hidden[cand] = True
                if binding:
                    continue
            if best is None:  # no binding relation with a cell left to hide: widen through the block's relations
                if block_free is None:
                    block_free = np.array(sorted({int(x) for c in cons if seen[c.cells].any() for x in c.cells}),
                                          dtype=int)
                best = smallest(block_free)
            if best is None:
                stuck.append(i)
            else:
                hidden[best] = True
        if defer and not stuck and int(hidden.sum()) == before:  # every narrow cell deferred: this audit stands
            return done(seen, res)
        if stuck:  # fail safe: no published cell of a relation left to hide
            want = np.zeros(n, dtype=bool)
            want[stuck] = True
            exact = audit(values, seen, cons, graense, dirs=dirs, targets=want, seen=memo, per_cell=None)
            tally["stuck_audits"] += 1
            tally["lp_solves"] += exact.lp_solves
            narrow = set(exact.pinned(graense))
            wide.update(i for i in stuck if i not in narrow)
            for i in sorted(narrow):
                free = eligible & ~hidden & ~known
                levels = [] if blocks is None or blocks[i] < 0 else [blocks == blocks[i]]
                levels += [np.arange(n) % NM == i % NM, np.ones(n, dtype=bool)]
                grow = next((lv & free for lv in levels if (lv & free).any()), None)
                if grow is None:
                    log.warning("suppression: cell %d stays narrower than %d with every cell of this publication "
                                "hidden: earlier publications alone pin it", i, graense)
                    given_up.add(i)
                    continue
                log.warning("suppression: cell %d stays narrower than %d and no cell of its relations is left to "
                            "hide: %d more cells of its block are hidden (fail safe)", i, graense, int(grow.sum()))
                hidden |= grow
                tally["fail_safe_blocks"] += 1
        _tie(hidden)
    raise RuntimeError(f"suppression did not converge in {max_rounds} rounds")


# ------------------------------------------------------------------------------------------- the modular method
# Which method chooses the hidden cells of a grid without context (choose_grid_hidden): 'standard' (choose_hidden over
# the whole grid), 'modular' (choose_modular: sub-tables in turn, then the exact audit over the whole grid) or 'auto'
# (modular from MODULAR_CELLS cells on).  A grid with context layers, fixed cells or a sparse kommune level always
# takes the standard method.
METHOD = "auto"
MODULAR_CELLS = 30_000
METHODS = ("standard", "modular", "auto")
# split the periods too (one sub-table per region and quarter: the quarter's months, the quarter and the year)?  Off:
# measured on the 20-kommune year (one region), the first quarter's sub-table alone took 15 rounds and 104 CPU s and
# hid 28 % of its cells, still narrow, where the standard method protects the whole year in 7 rounds and 39.5 CPU s
# (14.2 % hidden).  Why: the stock relations link every month to the next (antal(t) - afgang(t) - antal(t+1) <= movers
# and its mirror), so with April fixed at its truth March's antal can hardly move, and a person's "one more month"
# runs through the whole year; the time axis is not cut
MODULAR_TID = False
# at most this many kommuner per sub-table (a region's kommuner in runs of about equal size, by kommunekode), so that
# a sub-table's LPs do not grow with the region; None: a region's kommuner in one sub-table
MODULAR_KOMMUNER: int | None = None
# HiGHS's simplex strategy for the modular method's LPs (its sub-tables and the final audit) when SIMPLEX is None: 4,
# primal (and with it no cold switch, _warm_iterations).  Measured at national scale (2026-12-04, Nordjylland's 11
# kommuner at their national size, the sub-table the national year gives the region; docs/statistics.md): its first
# sub-table of 3 kommuner took 29.1 CPU s with primal against 74.0 with the default dual simplex, the same 2,166
# cells hidden.  Only the modular method (national-size grids): the demo's and the marts' grids keep the measured
# default (SIMPLEX's comment).  None: SIMPLEX's default
MODULAR_SIMPLEX: int | None = 4


def _method(method: str | None, n: int) -> str:
    """The method to use for a grid of ``n`` cells (``None``: :data:`METHOD`)."""
    m = METHOD if method is None else method
    if m not in METHODS:
        raise ValueError(f"unknown suppression method {m!r} (one of {', '.join(METHODS)})")
    if m == "auto":
        return "modular" if n >= MODULAR_CELLS else "standard"
    return m


def subtables(rows: list[tuple], tid: bool | None = None,
              kommuner: int | None = None) -> list[tuple[tuple, np.ndarray]]:
    """The modular method's sub-tables: ((period chain, region), row indices), in the order they are protected.

    One sub-table per region: the region's kommuner, the region and hele landet (a geography chain) x every period
    x every ydelsesgruppe with 'i alt' x every measure.  ``tid`` (None: :data:`MODULAR_TID`): one per region and
    quarter instead, the quarter's months, the quarter and its year (a period chain; measured not to pay).
    ``kommuner`` (None: :data:`MODULAR_KOMMUNER`): at most that many of a region's kommuner per sub-table (the
    region and hele landet in each; in the restriction a kommune then moves with the region only through the
    kommuner of its own run).  Why chains and not HiTaS's parent-with-children tables: a sub-table is protected as a
    *restriction* of the whole grid (:func:`_restrict`: every relation that holds one of its cells, the cells
    outside at their true figures), and a cell can move there only together with its parent and its children;
    a region cell with its kommuner fixed would be fixed by region = sum of kommuner.  With the chain a region cell
    moves with hele landet, a quarter with its year.  Without quarters a month is its own period chain (a single
    month: one sub-table per region); without regions the geography is one chain.  Cells of hele landet and of
    the year lie in several sub-tables (each protects them where it hides them).  Order: by period chain, then
    region (deterministic)."""
    perioder = {(r[0], r[1]) for r in rows}
    regioner = sorted({r[4] for r in rows if r[2] == "kommune" and r[4] is not None}
                      | {r[3] for r in rows if r[2] == "region"})
    aar_kvartaler: dict[tuple, list[tuple]] = defaultdict(list)
    for p in perioder:
        if p[0] == "kvartal" and (a := _parent_period(*p)) is not None:
            aar_kvartaler[a].append(p)

    size = MODULAR_KOMMUNER if kommuner is None else kommuner
    run: dict[str, tuple] = {}
    for reg in regioner:
        ks = sorted({r[3] for r in rows if r[2] == "kommune" and r[4] == reg})
        parts = 1 if not size or not ks else math.ceil(len(ks) / size)
        for i, k in enumerate(ks):
            run[k] = (reg, i * parts // len(ks))
    keys_of = defaultdict(list)
    for v in sorted(set(run.values()), key=lambda v: (str(v[0]), v[1])):
        if v not in keys_of[v[0]]:
            keys_of[v[0]].append(v)

    def geo(r: tuple) -> list:
        if r[2] == "kommune":
            return [run.get(r[3], (r[4], 0))]
        if r[2] == "region":
            return keys_of.get(r[3]) or [(r[3], 0)]
        return [v for reg in regioner for v in (keys_of.get(reg) or [(reg, 0)])] or [(None, 0)]

    def chain(p: tuple) -> list[tuple]:
        if p[0] == "maaned":
            q = _parent_period(*p)
            return [q] if q in perioder else [p]
        if p[0] == "aar":
            return sorted(aar_kvartaler.get(p, [])) or [p]
        return [p]

    order = {"maaned": 0, "kvartal": 1, "aar": 2, "alle": 3}
    split = MODULAR_TID if tid is None else tid
    out: dict[tuple, list[int]] = defaultdict(list)
    for j, r in enumerate(rows):
        for t in chain((r[0], r[1])) if split else [("alle", None)]:
            for g in geo(r):
                out[(t, g)].append(j)
    keys = sorted(out, key=lambda k: (order[k[0][0]], str(k[0][1]), str(k[1][0]), k[1][1]))
    return [(k, np.array(out[k], dtype=int)) for k in keys]


def _restrict(values: np.ndarray, cons: list[Constraint], by_cell: list[list[int]], cells: np.ndarray,
              own: bool = False) -> list[Constraint]:
    """The relations of the sub-table ``cells`` (sorted), re-indexed to their positions in ``cells``.

    Default: every relation that holds a cell of the sub-table, the cells outside it fixed at their true figures
    (their share moved into the constant).  That is a restriction of the whole grid's problem: whatever is
    hidden outside, fixing it at the truth adds equalities the truth satisfies, so every point of the sub-table's
    feasible set (the outside at the truth) is a point consistent with what the whole grid publishes, and a ray
    of its cone (zero outside) is one of the whole grid's.  A cell wide in the sub-table is wide in the grid: the
    sub-table's points certify it for the final audit too.  ``own``: only the relations that lie wholly inside
    the sub-table (HiTaS's classic sub-table, a relaxation: its intervals may be wider than the grid's, so its
    verdicts prove nothing and only the final exact audit decides; kept to test that audit)."""
    pos = np.full(len(values), -1, dtype=np.int64)
    pos[cells] = np.arange(len(cells))
    out: list[Constraint] = []
    for k in sorted({k for c in cells for k in by_cell[int(c)]}):
        c = cons[k]
        p = pos[c.cells]
        inside = p >= 0
        if own and not inside.all():
            continue
        shift = float(c.coefs[~inside] @ values[c.cells[~inside]]) if not inside.all() else 0.0
        out.append(Constraint(p[inside], c.coefs[inside], c.eq, c.rhs - shift, c.why))
    return out


# choose_hidden's counters that the modular method sums over its sub-tables and final audit
_TAELLERE = ("rounds", "lp_solves", "stuck_audits", "fail_safe_blocks", "deferred")


def _checkpoint(values: np.ndarray, cons: list[Constraint], own: bool) -> Path | None:
    """Where the modular method keeps its sub-tables' result (hidden cells and points) for these figures and
    relations, when ``DSDW_MODULAR_CHECKPOINT`` names a directory: a benchmark of the final audit then skips the
    national year's ~40 CPU minutes of sub-tables on a rerun.  Keyed by the figures, the relations and the modular
    settings, not by the code: empty the directory after changing how sub-tables are protected.  For benchmarks and
    diagnosis only: production never sets it."""
    import os

    where = os.environ.get("DSDW_MODULAR_CHECKPOINT")
    if not where or own:
        return None
    key = hashlib.sha256((_digest(values, cons) + str(MODULAR_KOMMUNER) + str(MODULAR_TID) + str(SIMPLEX)
                          ).encode()).hexdigest()[:16]
    Path(where).mkdir(parents=True, exist_ok=True)
    return Path(where) / f"modular_{key}.npz"


def choose_modular(values: np.ndarray, cons: list[Constraint], rows: list[tuple], graense: int = GRAENSE,
                   dirs: list[np.ndarray] | None = None, blocks: np.ndarray | None = None,
                   per_cell: int | None = PER_CELL_LPS, stats: dict | None = None, points: Seen | None = None,
                   own: bool = False, final_audit: bool = True) -> np.ndarray:
    """The hidden cells of a grid by the modular method: its :func:`subtables` protected in turn, then the exact
    audit over the whole grid.

    Each sub-table is :func:`choose_hidden` over its restriction (:func:`_restrict`), with the cells earlier
    sub-tables hid carried in as hidden (they stay hidden; a cell they showed wide stays certified by their points)
    and every cell of the sub-table eligible for hiding.  The LPs are those of one sub-table (a region's kommuner
    over one quarter's months: at most ~2,000 hidden cells nationally), not of the whole year, whose hidden cells
    merge into blocks of 20,000.  Every point a sub-table's LPs reach is a point of the whole grid (a restriction),
    so the final audit (:func:`choose_hidden` over every relation of the grid, started from the modular pattern
    with those points) normally needs no LP of its own; any cell it still finds narrow gets the standard method's
    treatment (its own exact LPs over its block, more cells hidden, audit again).  That final audit is the safety
    net: the result is exactly as safe as the standard method's.  ``own``/``final_audit``: HiTaS's classic
    sub-tables (their own relations only) and no final audit, for tests only.  ``points``: as for
    :func:`choose_hidden` (filled and stamped for ``cons``).  Its LPs use :data:`MODULAR_SIMPLEX` unless
    :data:`SIMPLEX` is set (the strategy changes which optimal vertices are seen, not what they prove)."""
    global SIMPLEX
    asked = SIMPLEX
    if SIMPLEX is None:  # the modular method's own simplex (MODULAR_SIMPLEX), for its LPs only
        SIMPLEX = MODULAR_SIMPLEX
    try:
        return _choose_modular(values, cons, rows, graense, dirs, blocks, per_cell, stats, points, own, final_audit)
    finally:
        SIMPLEX = asked


def _choose_modular(values: np.ndarray, cons: list[Constraint], rows: list[tuple], graense: int,
                    dirs: list[np.ndarray] | None, blocks: np.ndarray | None, per_cell: int | None,
                    stats: dict | None, points: Seen | None, own: bool, final_audit: bool) -> np.ndarray:
    """:func:`choose_modular`'s work, with the simplex strategy already chosen."""
    n = len(values)
    by_cell: list[list[int]] = [[] for _ in range(n)]
    for k, c in enumerate(cons):
        for x in c.cells:
            by_cell[int(x)].append(k)
    memo = Seen.of(values) if points is None else points
    if memo.relations is not None or len(memo.lo) != n:
        raise ValueError("choose_modular: points must be a fresh Seen.of(values)")
    hidden = np.zeros(n, dtype=bool)
    tally = {"rounds": 0, "lp_solves": 0, "how": dict.fromkeys(SETTLED_BY, 0), "stuck_audits": 0,
             "fail_safe_blocks": 0, "deferred": 0}
    subs = subtables(rows)
    t0, c0 = time.perf_counter(), time.process_time()
    sizes = []
    saved = _checkpoint(values, cons, own)
    if saved is not None and saved.exists():  # the sub-tables of these very figures and relations, done before
        with np.load(saved) as z:
            hidden, memo.lo[:], memo.hi[:] = z["hidden"], z["lo"], z["hi"]
            done = json.loads(str(z["tally"]))
        for k in _TAELLERE:
            tally[k] += done[k]
        log.info("modular: the sub-tables' result read from %s (%d hidden)", saved, int(hidden.sum()))
        subs = []
    for s, (key, rws) in enumerate(subs):
        cells = (NM * rws[:, None] + np.arange(NM)).reshape(-1)
        cells.sort()
        local = _restrict(values, cons, by_cell, cells, own)
        seen = Seen.of(values[cells])
        if not own:  # the whole grid's points so far, restricted to the sub-table: still points (see _restrict)
            seen.lo, seen.hi = memo.lo[cells].copy(), memo.hi[cells].copy()
        st: dict = {}
        before = int(hidden[cells].sum())
        h = choose_hidden(values[cells], local, graense, start=hidden[cells], per_cell=per_cell, stats=st,
                          blocks=None if blocks is None else blocks[cells], points=seen, defer=final_audit)[0]
        hidden[cells] |= h
        if not own:
            memo.lo[cells] = np.minimum(memo.lo[cells], seen.lo)
            memo.hi[cells] = np.maximum(memo.hi[cells], seen.hi)
        for k in _TAELLERE:
            tally[k] += st[k]
        for k, v in st["how"].items():
            tally["how"][k] += v
        sizes.append(len(cells))
        log.info("modular: sub-table %d of %d (period chain %s %s, region %s): %d cells, %d hidden before, %d after, "
                 "%d rounds, %d LPs, %d narrow cells left to the final audit; %d of %d cells of the grid hidden; "
                 "%.1f s wall, %.1f CPU s", s + 1, len(subs), key[0][0], key[0][1], key[1], len(cells), before,
                 int(h.sum()), st["rounds"], st["lp_solves"], st["deferred"], int(hidden.sum()), n,
                 time.perf_counter() - t0, time.process_time() - c0)
    if saved is not None and subs:
        np.savez(saved, hidden=hidden, lo=memo.lo, hi=memo.hi, tally=json.dumps(
            {k: tally[k] for k in _TAELLERE}))
    modular = {"subtables": len(subs), "subtable_cells_max": max(sizes, default=0), "simplex": SIMPLEX,
               "hidden_by_subtables": int(hidden.sum()), "subtables_cpu_s": time.process_time() - c0,
               "subtables_lp_solves": tally["lp_solves"], "own_relations_only": own}
    if final_audit:
        if own:
            memo = Seen.of(values) if points is None else points
        st = {}
        c1 = time.process_time()
        hidden = choose_hidden(values, cons, graense, dirs=dirs, start=hidden, blocks=blocks, per_cell=per_cell,
                               stats=st, points=memo)[0]
        modular.update(final_rounds=st["rounds"], final_lp_solves=st["lp_solves"], final_how=st["how"],
                       final_cpu_s=time.process_time() - c1,
                       hidden_by_final_audit=int(hidden.sum()) - modular["hidden_by_subtables"])
        for k in _TAELLERE:
            tally[k] += st[k]
        for k, v in st["how"].items():
            tally["how"][k] += v
        log.info("modular: final audit over the whole grid: %d rounds, %d LPs, %d more cells hidden; cells settled "
                 "by %s; %.1f s wall, %.1f CPU s in all", st["rounds"], st["lp_solves"],
                 modular["hidden_by_final_audit"], st["how"], time.perf_counter() - t0, time.process_time() - c0)
    tally["modular"] = modular
    if stats is not None:
        stats.update(tally)
    return hidden


def grid_from(con: duckdb.DuckDBPyConnection, source: str) -> Grid:
    """The cells of ``source`` (the mart's columns) as a :class:`Grid` with its relations.

    ydelsesuger and uger_i_perioden are read where the relation has them (else ydelsesuger is taken from
    fuldtidspersoner over a one-week period)."""
    cols = set(con.sql(source).columns)
    uger = "uger_i_perioden" if "uger_i_perioden" in cols else "1"
    y = "ydelsesuger" if "ydelsesuger" in cols else f"round(fuldtidspersoner * {uger})"
    data = con.execute(f"SELECT periode_type, periode_start, geo_niveau, geo_kode, overordnet_geo_kode, ydelsesgruppe, "
                       f"{uger}, {', '.join(MAAL)}, {y} FROM ({source}) ORDER BY ALL").fetchall()
    rows = [r[:7] for r in data]
    values = np.array([float(v or 0) for r in data for v in r[7:7 + NM]])
    return Grid(rows, values, constraints(rows, values), directions(rows))


@dataclass
class Layer:
    """Cells already published, as context of a new publication: their rows, true figures and published flags.

    ``current``: still the published version (a neighbouring year: linked by the consecutive-period relations);
    else an earlier vintage of the periods being republished (linked by the attacker's comparison of vintages).
    """

    rows: list[tuple]
    values: np.ndarray
    hidden: np.ndarray
    vintage: int
    current: bool


@dataclass
class Problem:
    """A grid with its context (:func:`with_context`): the new grid's cells come first (``n_new``)."""

    values: np.ndarray
    constraints: list[Constraint]
    start: np.ndarray
    eligible: np.ndarray
    known: np.ndarray
    dirs: list[np.ndarray]
    n_new: int


def with_context(grid: Grid, layers: list[Layer] | None = None, fixed: np.ndarray | None = None) -> Problem:
    """The new grid joined with the publications an attacker holds beside it.

    * current layers (neighbouring years) join the new grid's rows, so the consecutive-period relations cross
      the calendar year (December to January, Q4 to Q1, year to year);
    * each earlier vintage of the same periods is a copy of the grid with that vintage's true figures, its own
      relations and its published cells as constants; a cell whose true figure is the same in any two versions
      (consecutive or not: a correction can be undone) is one unknown to the attacker (x_old = x_new), whose
      figures differ are separate unknowns (the attacker is assumed to know which cells a correction touched,
      not by how much).  A cell any earlier vintage published with the figure it has now is ``known``: hiding it
      again would protect nothing.

    ``fixed`` (per cell of the new grid: -1 free, else its published flag 0/1): cells of periods that keep their
    last vintage (unchanged figures, not republished); they join the grid with that flag and are not eligible.
    """
    layers = layers or []
    cur = [ly for ly in layers if ly.current]
    old = sorted((ly for ly in layers if not ly.current), key=lambda ly: ly.vintage)
    rows = list(grid.rows) + [r for ly in cur for r in ly.rows]
    values = np.concatenate([grid.values, *[ly.values for ly in cur], *[ly.values for ly in old]]) \
        if layers else grid.values.copy()
    n_cur = len(rows) * NM
    cur_vals = values[:n_cur]
    cons = constraints(rows, cur_vals) if cur else list(grid.constraints)
    dirs = directions(rows) if cur else list(grid.directions)
    start = np.zeros(len(values), dtype=bool)
    off = grid.n
    for ly in cur:
        start[off:off + len(ly.values)] = ly.hidden
        off += len(ly.values)
    eligible = np.zeros(len(values), dtype=bool)
    eligible[:grid.n] = True
    if fixed is not None:
        eligible[:grid.n] = fixed < 0
        start[:grid.n] = fixed == 1
    known = np.zeros(len(values), dtype=bool)
    # per row key and measure, per true figure: its first cell among the earlier vintages (in vintage order) and
    # whether any vintage published it.  Every version of a cell with that figure is identified with the first:
    # the attacker is assumed to know which cells of ANY two vintages hold the same figure, not only of two
    # consecutive ones (a correction undone later brings an earlier vintage's figure back: differencing vintage 1
    # and 3 then pins what the comparison of consecutive vintages left open)
    same: dict[tuple, list[dict[float, list]]] = {}
    for ly in old:
        base = off
        start[off:off + len(ly.values)] = ly.hidden
        for c in constraints(ly.rows, ly.values):
            cons.append(Constraint(c.cells + base, c.coefs, c.eq, c.rhs, f"{c.why}@v{ly.vintage}"))
        for j, r in enumerate(ly.rows):
            by_m = same.setdefault((r[0], r[1], r[2], r[3], r[5]), [{} for _ in range(NM)])
            for m in range(NM):
                b = base + NM * j + m
                got = by_m[m].get(float(values[b]))
                if got is None:
                    by_m[m][float(values[b])] = [b, not start[b]]
                    continue
                if start[got[0]] or start[b]:
                    cons.append(Constraint(np.array([got[0], b]), np.array([1.0, -1.0]), True, 0.0,
                                           f"v{ly.vintage}"))
                got[1] = got[1] or not start[b]
        off += len(ly.values)
    # the current rows: the new grid's, and those of a current layer whose earlier vintage is a layer too (a
    # neighbouring year whose figures moved since it was published: context_layers)
    for j, r in enumerate(rows if old else []):
        by_m = same.get((r[0], r[1], r[2], r[3], r[5]))
        if by_m is None:
            continue
        for m in range(NM):
            b = NM * j + m
            got = by_m[m].get(float(values[b]))
            if got is None:
                continue
            if got[1]:  # published with this figure by an earlier vintage
                if j < len(grid.rows):
                    known[b] = True
                else:  # a context cell the attacker reads there: a constant of the audit
                    start[b] = False
            else:
                cons.append(Constraint(np.array([got[0], b]), np.array([1.0, -1.0]), True, 0.0, "vintage"))
    return Problem(values, cons, start, eligible, known, dirs, grid.n)


def sparse_kommuner(grid: Grid, graense: int = GRAENSE) -> np.ndarray | None:
    """The kommune-level cells, when most of them are below ``graense`` (else None).

    Why: in a sparse grid (a small population: the demo's Denmark) nearly every kommune cell is a primary
    cell; protecting them one by one costs LPs over the whole linked grid and ends with almost all of them
    hidden anyway.  Such a grid is published at region level: every kommune cell (every group, 'i alt',
    period and measure) is hidden at once, and the LP audit certifies -- or widens with secondary cells --
    the regions and hele landet, which stay published where that is safe (:func:`choose_grid_hidden`).
    Deterministic: the share decides, not a time budget.
    """
    kommune = np.array([r[2] == "kommune" for r in grid.rows], dtype=bool)
    if not kommune.any():
        return None
    share = float((grid.values[0::NM][kommune] < graense).mean())
    return np.repeat(kommune, NM) if share > SPARSE_SHARE else None


def _without_kommuner(rows: list[tuple], values: np.ndarray) -> tuple[list[int], Grid]:
    keep = [j for j, r in enumerate(rows) if r[2] != "kommune"]
    r2 = [rows[j] for j in keep]
    v2 = values.reshape(-1, NM)[keep].reshape(-1) if keep else np.zeros(0)
    return keep, Grid(r2, v2, constraints(r2, v2), directions(r2))


def choose_grid_hidden(grid: Grid, graense: int = GRAENSE, layers: list[Layer] | None = None,
                       per_cell: int | None = PER_CELL_LPS, stats: dict | None = None,
                       fixed: np.ndarray | None = None, points: Seen | None = None,
                       method: str | None = None) -> np.ndarray:
    """The hidden cells of a grid (with its context ``layers``): :func:`choose_hidden` over the joint problem;
    a sparse grid's kommune level (:func:`sparse_kommuner`) is hidden whole and the audit runs on its regions
    and hele landet.

    Why the kommune cells may then leave the LP: every relation that involves a kommune cell involves only
    hidden kommune cells besides one region cell (kommuner of a region, groups of a kommune, periods and
    measures of a kommune cell), so it tells the attacker about a region cell only what the region's own
    relations already say (the sum of a region's kommune relations is its region relation, with a slack
    at least as large).  tests/warehouse/test_suppression_attacks.py runs an independent integer attacker over the
    whole grid, kommune cells included, to check it.  ``fixed``: see :func:`with_context` (a fixed kommune cell
    that is published keeps the kommune level in the LP).

    ``points``: a :meth:`Seen.of` of ``grid.values``; filled with the suppression's lowest and highest values seen
    and stamped for the attack check over ``grid.constraints`` (:func:`audit`), when the suppression's problem is
    the grid's own (no context layers, no sparse kommune level); else stamped with the truth alone (still valid).
    Why: the attack check then needs LPs only for cells no point of the rounds showed wide.

    ``method`` (None: :data:`METHOD`): 'modular' protects the grid's :func:`subtables` in turn and then audits the
    whole grid exactly (:func:`choose_modular`); 'auto' does so from :data:`MODULAR_CELLS` cells on.  Only a grid
    without context layers, fixed cells or a sparse kommune level: else the standard method."""
    sparse = sparse_kommuner(grid, graense)
    if sparse is not None and fixed is not None and (sparse & (fixed == 0)).any():
        sparse = None
    work, keep = grid, None
    if sparse is not None:
        log.info("suppression: most kommune cells below %d: the kommune level (%d cells) is hidden, the grid is "
                 "published at region level", graense, int(sparse.sum()))
        keep, work = _without_kommuner(grid.rows, grid.values)
        layers = [Layer(*_strip(ly), ly.vintage, ly.current) for ly in layers or []]
        if fixed is not None:
            fixed = fixed.reshape(-1, NM)[keep].reshape(-1)
    p = with_context(work, layers, fixed)
    dirs = valid_directions(len(p.values), p.constraints, p.dirs) if p.dirs else None
    # fail-safe blocks (choose_hidden): one per period and measure of the new grid
    labels: dict[tuple, int] = {}
    blocks = np.full(len(p.values), -1, dtype=int)
    for j, r in enumerate(work.rows):
        for m in range(NM):
            blocks[NM * j + m] = labels.setdefault((r[0], r[1], 0 if m == UGER else m), len(labels))
    if _method(method, grid.n) == "modular":
        if keep is None and not layers and fixed is None:
            log.info("suppression: modular method (%d cells, %d relations)", grid.n, len(grid.constraints))
            if points is not None and (points.relations is not None or len(points.lo) != grid.n):
                raise ValueError("choose_grid_hidden: points must be a fresh Seen.of(grid.values)")
            return choose_modular(grid.values, grid.constraints, grid.rows, graense, dirs=dirs, blocks=blocks,
                                  per_cell=per_cell, stats=stats, points=points)
        log.info("suppression: the modular method needs a grid without context, fixed cells or a sparse kommune "
                 "level: standard method")
    own = points is not None and keep is None and not layers and p.n_new == len(p.values) \
        and len(p.constraints) == len(grid.constraints) \
        and all(a is b for a, b in zip(p.constraints, grid.constraints, strict=True))
    if points is not None and (points.relations is not None or len(points.lo) != grid.n):
        raise ValueError("choose_grid_hidden: points must be a fresh Seen.of(grid.values)")
    hidden = choose_hidden(p.values, p.constraints, graense, dirs=dirs, start=p.start, eligible=p.eligible,
                           known=p.known, blocks=blocks, per_cell=per_cell, stats=stats,
                           points=points if own else None)[0][:p.n_new]
    if points is not None and not own:
        points.stamp(grid.values, grid.constraints, None)
    if keep is None:
        return hidden
    full = np.ones(grid.n, dtype=bool)
    full.reshape(-1, NM)[keep] = hidden.reshape(-1, NM)
    return full


def _strip(ly: Layer) -> tuple[list[tuple], np.ndarray, np.ndarray]:
    keep = [j for j, r in enumerate(ly.rows) if r[2] != "kommune"]
    return ([ly.rows[j] for j in keep], ly.values.reshape(-1, NM)[keep].reshape(-1),
            ly.hidden.reshape(-1, NM)[keep].reshape(-1))


def suppress(con: duckdb.DuckDBPyConnection, source: str, graense: int = GRAENSE, target: str | None = None,
             layers: list[Layer] | None = None, grundlag: str | None = None,
             fixed: dict[tuple, tuple[bool, bool, bool]] | None = None,
             method: str | None = None) -> duckdb.DuckDBPyRelation:
    """Apply the rule to relation ``source`` and return the published relation (temp table ``target``).

    ``source`` needs the key columns, overordnet_geo_kode (region of a kommune, '000' for a region, NULL for
    land), antal_personer, fuldtidspersoner, tilgang, afgang (ydelsesuger and uger_i_perioden where it has
    them); other columns pass through.  Hidden counts are NULL with ``<maal>_diskretioneret`` true;
    fuldtidspersoner is hidden with its antal_personer.  ``grundlag``: a temp table to keep the true figures
    and flags in (the publication log stores them as the context of later vintages).  ``fixed``: per row key
    (:data:`KEY`) the published flags (antal_personer, tilgang, afgang) of a row that keeps its last vintage
    (:func:`with_context`).  ``method``: see :func:`choose_grid_hidden`.
    """
    grid = grid_from(con, source)
    mask = None
    if fixed:
        mask = np.full(grid.n, -1, dtype=np.int8)
        for j, r in enumerate(grid.rows):
            f = fixed.get((r[0], r[1], r[2], r[3], r[5]))
            if f is not None:
                mask[NM * j:NM * j + NM] = (f[0], f[1], f[2], f[0])  # ydelsesuger goes with antal_personer
    hidden = choose_grid_hidden(grid, graense, layers, fixed=mask, method=method)
    return _publish_relation(con, source, grid, hidden, target, grundlag)


def _publish_relation(con: duckdb.DuckDBPyConnection, source: str, grid: Grid, hidden: np.ndarray,
                      target: str | None, grundlag: str | None = None) -> duckdb.DuckDBPyRelation:
    t = f"_sup_{uuid.uuid4().hex[:10]}"
    target = target or f"{t}_r"
    flags = hidden.reshape(-1, NM)
    vals = grid.values.reshape(-1, NM)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {t} (periode_type VARCHAR, periode_start DATE, geo_niveau VARCHAR, "
                "geo_kode VARCHAR, ydelsesgruppe VARCHAR, overordnet_geo_kode VARCHAR, uger_i_perioden BIGINT, "
                "antal_personer BIGINT, tilgang BIGINT, afgang BIGINT, ydelsesuger BIGINT, "
                "h0 BOOLEAN, h1 BOOLEAN, h2 BOOLEAN)")
    if grid.rows:
        con.executemany(f"INSERT INTO {t} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [[r[0], r[1], r[2], r[3], r[5], r[4], r[6], *(int(x) for x in v), bool(f[0]), bool(f[1]),
                          bool(f[2])] for r, f, v in zip(grid.rows, flags, vals, strict=True)])
    key = ", ".join(KEY)
    try:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {target} AS
            SELECT s.* EXCLUDE (antal_personer, fuldtidspersoner, tilgang, afgang),
                   CASE WHEN NOT p.h0 THEN s.antal_personer END AS antal_personer, p.h0 AS antal_personer_diskretioneret,
                   CASE WHEN NOT p.h0 THEN s.fuldtidspersoner END AS fuldtidspersoner,
                   CASE WHEN NOT p.h1 THEN s.tilgang END AS tilgang, p.h1 AS tilgang_diskretioneret,
                   CASE WHEN NOT p.h2 THEN s.afgang END AS afgang, p.h2 AS afgang_diskretioneret
            FROM ({source}) s JOIN {t} p USING ({key})""")
        if grundlag:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {grundlag} AS SELECT * FROM {t}")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return con.table(target)


def context_layers(con: duckdb.DuckDBPyConnection, years: list[int], moved: list[int] | None = None,
                   full_grid: str = FULL_GRID) -> list[Layer]:
    """The context of republishing ``years`` from the publication log's true figures (meta.publikation_grundlag):
    every earlier vintage of those years' periods, and the published version of the neighbouring years.

    A neighbouring year in ``moved`` (moved periods not republished by this load: a closed year pending a
    revision, a preliminary period waiting for its week) no longer has its published figures as its true ones,
    and the consecutive-period relations that cross the year boundary hold between the *current* figures of
    both years.  Taking the stale figures as current would put into the audit relations that no longer hold,
    with constants (movers) computed from a mix of two states: tighter or looser than the attacker's, so not
    conservative.  Such a neighbour is given as what the attacker really holds: its latest vintage as an earlier
    vintage (its own relations, its published cells as constants), and its current figures as a current layer
    in which every cell is unknown except where the latest vintage published the very figure it has now
    (:func:`with_context` identifies the versions; the attacker is assumed to know which cells moved).  So the
    relations across the boundary hold for the truth, and the attacker knows at least what was published."""
    from pipelines.warehouse.publication import GRUNDLAG

    if not _exists(con, "publikation_grundlag", "meta"):
        return []
    cols = ("periode_type, periode_start, geo_niveau, geo_kode, overordnet_geo_kode, ydelsesgruppe, uger_i_perioden, "
            "antal_personer, tilgang, afgang, ydelsesuger, h0, h1, h2, vintage")
    yl = ", ".join(map(str, years))
    nb = sorted({y + d for y in years for d in (-1, 1)} - set(years))
    stale = sorted(set(nb) & set(moved or []))
    nb = [y for y in nb if y not in stale]
    out: list[Layer] = []

    def layer(data: list[tuple], vintage: int, current: bool) -> Layer:
        rows = [r[:7] for r in data]
        values = np.array([float(v) for r in data for v in r[7:11]])
        hidden = np.array([bool(r[11 + (m if m < 3 else 0)]) for r in data for m in range(NM)])
        return Layer(rows, values, hidden, vintage, current)

    old = con.execute(f"SELECT {cols} FROM {GRUNDLAG} WHERE year(periode_start) IN ({yl}) ORDER BY vintage, "
                      "periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe").fetchall()
    by_v: dict[int, list[tuple]] = defaultdict(list)
    for r in old:
        by_v[r[-1]].append(r)
    latest = f"""SELECT {cols} FROM {GRUNDLAG} g WHERE year(periode_start) IN ({{}})
            AND vintage = (SELECT max(vintage) FROM {GRUNDLAG} h WHERE h.periode_type = g.periode_type
                           AND h.periode_start = g.periode_start) ORDER BY ALL"""
    if stale:
        sl = ", ".join(map(str, stale))
        was = con.execute(latest.format(sl)).fetchall()
        if was:  # one earlier layer (its vintage: the newest among its periods', for the order of identification)
            by_v[max(r[-1] for r in was)] += was
        now = con.execute(f"SELECT periode_type, periode_start, geo_niveau, geo_kode, overordnet_geo_kode, "
                          f"ydelsesgruppe, uger_i_perioden, antal_personer, tilgang, afgang, ydelsesuger, true, true, "
                          f"true, NULL FROM {full_grid} WHERE daekket AND year(periode_start) IN ({sl}) "
                          "ORDER BY ALL").fetchall()
        if now:
            out.append(layer(now, 0, True))
    out += [layer(d, v, False) for v, d in sorted(by_v.items())]
    if nb:
        cur = con.execute(latest.format(", ".join(map(str, nb)))).fetchall()
        if cur:
            out.append(layer(cur, max(r[-1] for r in cur), True))
    return out


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

    Which periods are republished when is :func:`pipelines.warehouse.publication.publish`'s schedule (only the
    periods whose figures moved; an unchanged period keeps its last vintage).  Returns the rows published.
    """
    from pipelines.warehouse import publication

    return publication.publish(con, result)


def _empty_published() -> str:
    return ("SELECT NULL::VARCHAR AS periode_type, NULL::DATE AS periode_start, NULL::DATE AS periode_slut, "
            "NULL::VARCHAR AS periode, NULL::VARCHAR AS geo_niveau, NULL::VARCHAR AS geo_kode, "
            "NULL::VARCHAR AS geo_navn, NULL::VARCHAR AS overordnet_geo_kode, NULL::VARCHAR AS ydelsesgruppe, "
            "NULL::BIGINT AS antal_personer, NULL::BOOLEAN AS antal_personer_diskretioneret, "
            "NULL::DOUBLE AS fuldtidspersoner, NULL::BIGINT AS tilgang, NULL::BOOLEAN AS tilgang_diskretioneret, "
            "NULL::BIGINT AS afgang, NULL::BOOLEAN AS afgang_diskretioneret, NULL::BIGINT AS uger_i_perioden, "
            "NULL::BOOLEAN AS er_foreloebig, NULL::DATE AS horisont, NULL::BIGINT AS indlaesning_nr")
