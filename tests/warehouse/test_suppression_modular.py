"""The modular suppression (suppression.choose_modular, method='modular'): sub-tables of one region and one quarter
protected in turn as restrictions of the whole grid, then the exact audit over every relation of the grid.

What must hold: the result pins no cell under the exact audit and under the independent integer attacker; the
sub-tables' points are points of the whole grid (so the final audit may start from them); and where a sub-table's
protection is not enough -- HiTaS's classic sub-tables, their own relations only -- the final audit finds the narrow
cells and the standard method's fallback protects them.
"""

from __future__ import annotations

import copy
import datetime as dt
import random

import duckdb
import numpy as np
from attacker import Attack
from scipy.optimize import linprog
from test_suppression_attacks import JAN, _parents, assert_unpinned, grid, load, published, table

from pipelines.warehouse import suppression
from pipelines.warehouse.suppression import (
    GRAENSE,
    NM,
    Grid,
    Seen,
    _restrict,
    audit,
    choose_grid_hidden,
    choose_modular,
    grid_from,
    subtables,
    suppress,
    valid_directions,
)


def _year(rng: random.Random, sizes: list[int], months: int = 12) -> dict:
    """The hand-made grid of test_suppression_attacks (5 kommuner in 2 regions, hele landet, 3 groups and 'i alt')
    over ``months`` months of 2027 with their quarters and the year; a parent's figures by the rule of
    :func:`test_suppression_attacks._parents` (persons: the largest child's plus most entries of the others, at
    most the children's sum; flows the children's sum less what repeats; weeks the children's sum)."""
    cells = grid(rng, [dt.date(2027, m, 1) for m in range(1, months + 1)], sizes)
    out = dict(cells)
    quarters: dict = {}
    for q in range(0, months, 3):
        part = {k: v for k, v in cells.items() if q + 1 <= k[1].month <= q + 3}
        start = dt.date(2027, q + 1, 1)
        quarters.update({("kvartal", start, *k[2:]): v for k, v in _parents(part).items() if k[0] == "kvartal"})
    out.update(quarters)
    if months == 12:
        out.update({("aar", JAN, *k[2:]): v for k, v in _parents(
            {("maaned", *k[1:]): v for k, v in quarters.items()}).items() if k[0] == "aar"})
    return out


def _grid(seed: int, sizes: list[int], months: int = 12) -> Grid:
    return _grid_of(_year(random.Random(seed), sizes, months))


def _grid_of(cells: dict) -> Grid:
    con = duckdb.connect()
    return grid_from(con, load(con, cells, "t"))


def test_the_subtables_are_one_region_each_and_cover_the_grid():
    """Every row is in a sub-table; each sub-table holds one region's kommuner, the region and hele landet over every
    period (hele landet is in each); with the period split (measured not to pay), one quarter's months, the quarter
    and the year."""
    g = _grid(1, [0, 4, 30])
    perioder = {(r[0], r[1]) for r in g.rows}
    for tid in (False, True):
        subs = subtables(g.rows, tid=tid)
        assert len(subs) == 2 * (4 if tid else 1), [k for k, _ in subs]
        seen = np.zeros(len(g.rows), dtype=bool)
        for (q, (region, _)), rows in subs:
            seen[rows] = True
            geo = {(g.rows[j][2], g.rows[j][3] if g.rows[j][2] != "kommune" else g.rows[j][4]) for j in rows}
            assert geo == {("kommune", region), ("region", region), ("land", "000")}, geo
            per = {(g.rows[j][0], g.rows[j][1]) for j in rows}
            if tid:
                assert per == {("maaned", dt.date(2027, q[1].month + i, 1)) for i in range(3)} | {q, ("aar", JAN)}
            else:
                assert per == perioder
        assert seen.all()
    # at most two kommuner per sub-table: region 084's three kommuner in two runs, each with the region and landet
    runs = subtables(g.rows, kommuner=2)
    assert [k[1] for k, _ in runs] == [("084", 0), ("084", 1), ("085", 0)]
    for _, rows in runs:
        assert 1 <= len({g.rows[j][3] for j in rows if g.rows[j][2] == "kommune"}) <= 2
        assert {g.rows[j][2] for j in rows} == {"kommune", "region", "land"}
    assert sorted({j for _, rows in runs for j in rows}) == list(range(len(g.rows)))


def test_a_subtables_points_are_points_of_the_whole_grid():
    """The restriction (_restrict): an LP solution over one sub-table, the cells outside at their true figures,
    satisfies every relation of the whole grid (checked here with scipy's linprog, not the audit's code)."""
    g = _grid(2, [0, 4, 9, 30, 60])
    hidden = choose_grid_hidden(g, method="modular")
    by_cell = [[] for _ in range(g.n)]
    for k, c in enumerate(g.constraints):
        for x in c.cells:
            by_cell[int(x)].append(k)
    checked = 0
    for _, rows in subtables(g.rows, tid=True)[::3] + subtables(g.rows):
        cells = np.sort((NM * rows[:, None] + np.arange(NM)).reshape(-1))
        local = _restrict(g.values, g.constraints, by_cell, cells)
        free = np.flatnonzero(hidden[cells])
        pos = np.full(len(cells), -1)
        pos[free] = np.arange(len(free))
        a_eq, b_eq, a_ub, b_ub = [], [], [], []
        for c in local:
            row = np.zeros(len(free))
            fixed = 0.0
            for x, a in zip(c.cells, c.coefs, strict=True):
                if pos[x] >= 0:
                    row[pos[x]] += a
                else:
                    fixed += a * g.values[cells[x]]
            (a_eq if c.eq else a_ub).append(row)
            (b_eq if c.eq else b_ub).append(c.rhs - fixed)
        for k in free[:: max(1, len(free) // 6)]:
            obj = np.zeros(len(free))
            obj[pos[k]] = -1.0
            bounds = [(0, None)] * len(free)
            bounds[pos[k]] = (0, float(g.values[cells[k]]) + 50)
            res = linprog(obj, A_ub=np.array(a_ub), b_ub=b_ub, A_eq=np.array(a_eq), b_eq=b_eq, bounds=bounds,
                          method="highs")
            assert res.status == 0
            x = g.values.astype(float).copy()
            x[cells[free]] = res.x
            for c in g.constraints:
                s = float(c.coefs @ x[c.cells])
                assert (abs(s - c.rhs) < 1e-6) if c.eq else s <= c.rhs + 1e-6, c.why
            checked += 1
    assert checked > 10


def test_the_modular_method_pins_no_cell_of_a_two_region_year():
    """5 kommuner in 2 regions x 12 months with their quarters and the year, every margin: the modular result pins no
    cell under the exact attack check (from the suppression's stamped points, every other cell its own LPs over every
    relation), its final audit needed no LP beyond the sub-tables' points, and every cell those points certify is wide
    by its own exact LPs (a sample: the exact audit of every cell costs minutes)."""
    g = _grid(5, [0, 2, 4, 9, 30, 60])
    stats: dict = {}
    points = Seen.of(g.values)
    hidden = choose_grid_hidden(g, method="modular", stats=stats, points=points)
    assert stats["modular"]["subtables"] == 2
    assert (hidden[0::NM][g.values[0::NM] < GRAENSE]).all(), "every primary cell is hidden"
    assert stats["modular"]["final_lp_solves"] == 0, stats["modular"]
    dirs = valid_directions(g.n, g.constraints, g.directions)
    started = audit(g.values, hidden, g.constraints, dirs=dirs, per_cell=None, seen=copy.deepcopy(points))
    assert started.by.keys() == set(np.flatnonzero(hidden)) and started.pinned() == []
    sample = np.zeros(g.n, dtype=bool)
    sample[np.flatnonzero(hidden)[::100]] = True
    exact = audit(g.values, hidden, g.constraints, exact=True, targets=sample)
    assert exact.pinned() == []
    for i in exact.by:
        if started.by[i] == "points":
            assert exact.lo[i] <= started.lo[i] + 1e-6 and exact.hi[i] >= started.hi[i] - 1e-6, i


def test_the_modular_method_on_the_attackable_grids_withstands_the_independent_attacker():
    """The hand-made attackable grid with every margin (two regions, two months with their quarter and year),
    published with the modular method (one sub-table per region): the independent integer attacker
    (tests/attacker.py) narrows no hidden cell."""
    months = grid(random.Random(13), [JAN, dt.date(2027, 2, 1)], [0, 4, 30, 60])
    truth = {**months, **_parents(months)}
    con = duckdb.connect()
    pub = published(con, "SELECT * FROM " + suppress(con, load(con, truth, "t"), method="modular").alias)
    att = Attack()
    att.add(table(truth, pub))
    assert_unpinned(att)


def test_the_final_audit_protects_what_subtables_alone_leave_narrow():
    """HiTaS's classic sub-tables (own relations only: a region's sub-table does not see hele landet = the sum of
    the regions) leave cells an attacker pins over the whole grid; the final exact audit finds them and the standard
    method's fallback hides more until none is narrow (a quarter of two regions: 26 narrow cells, 12 more hidden)."""
    g = _grid(5, [0, 2, 4, 9, 30, 60], months=3)
    dirs = valid_directions(g.n, g.constraints, g.directions)
    alone = choose_modular(g.values, g.constraints, g.rows, own=True, final_audit=False)
    narrow = audit(g.values, alone, g.constraints, dirs=dirs, per_cell=None).pinned()
    assert narrow, "sub-tables over their own relations alone leave narrow cells"
    stats: dict = {}
    fixed = choose_modular(g.values, g.constraints, g.rows, dirs=dirs, own=True, stats=stats)
    assert stats["modular"]["hidden_by_final_audit"] > 0, stats["modular"]
    assert audit(g.values, fixed, g.constraints, dirs=dirs, per_cell=None).pinned() == []


def test_auto_takes_the_modular_method_from_the_threshold_on(monkeypatch):
    """'auto' keeps the standard method below MODULAR_CELLS cells and takes the modular one from there; a grid with
    context layers keeps the standard method."""
    g = _grid(1, [0, 4, 30], months=3)
    assert suppression._method(None, g.n) == "standard"
    monkeypatch.setattr(suppression, "MODULAR_CELLS", g.n)
    stats: dict = {}
    choose_grid_hidden(g, stats=stats)
    assert stats["modular"]["subtables"] == 2
    stats = {}
    choose_grid_hidden(g, stats=stats, layers=[suppression.Layer(g.rows, g.values, g.values < GRAENSE, 1, False)])
    assert "modular" not in stats


def test_runs_of_one_kommune_pin_no_cell_and_hide_through_their_own_run(monkeypatch):
    """MODULAR_KOMMUNER = 1 (each kommune its own sub-table with its region and hele landet, the smallest blocks):
    the result pins no cell under an audit from the truth alone (no point of the suppression reused), the final audit
    over the whole grid needed no LP, and the pattern shows the restriction at work: in a sub-table a hidden kommune
    cell can move only with its region (the other kommuner are fixed at their truth), so for every hidden kommune
    cell the region cell of its period, group and measure is hidden too."""
    monkeypatch.setattr(suppression, "MODULAR_KOMMUNER", 1)
    g = _grid(5, [0, 2, 4, 9, 30, 60], months=3)
    stats: dict = {}
    hidden = choose_grid_hidden(g, method="modular", stats=stats)
    assert stats["modular"]["subtables"] == 5, stats["modular"]
    assert stats["modular"]["final_lp_solves"] == 0, stats["modular"]
    assert (hidden[0::NM][g.values[0::NM] < GRAENSE]).all(), "every primary cell is hidden"
    where = {(r[0], r[1], r[2], r[3], r[5]): j for j, r in enumerate(g.rows)}
    kommune_cells = 0
    for j, r in enumerate(g.rows):
        if r[2] != "kommune":
            continue
        region = where[(r[0], r[1], "region", r[4], r[5])]
        for m in range(NM):
            if hidden[NM * j + m]:
                kommune_cells += 1
                assert hidden[NM * region + m], (r, m)
    assert kommune_cells > 20
    dirs = valid_directions(g.n, g.constraints, g.directions)
    check = audit(g.values, hidden, g.constraints, dirs=dirs, per_cell=None)
    assert check.by.keys() == set(np.flatnonzero(hidden)) and check.pinned() == []


def test_runs_of_one_kommune_withstand_the_independent_attacker(monkeypatch):
    """The hand-made attackable grid (two regions, two months with their quarter and year) published with one
    kommune per sub-table: the independent integer attacker (tests/attacker.py) narrows no hidden cell."""
    monkeypatch.setattr(suppression, "MODULAR_KOMMUNER", 1)
    months = grid(random.Random(13), [JAN, dt.date(2027, 2, 1)], [0, 4, 30, 60])
    truth = {**months, **_parents(months)}
    con = duckdb.connect()
    pub = published(con, "SELECT * FROM " + suppress(con, load(con, truth, "t"), method="modular").alias)
    assert any(x is None for k, v in pub.items() if k[2] == "kommune" for x in v), "kommune cells are hidden"
    att = Attack()
    att.add(table(truth, pub))
    assert_unpinned(att)


def test_the_modular_method_solves_by_primal_simplex_and_restores_the_default(monkeypatch):
    """The modular method's LPs use MODULAR_SIMPLEX (primal, measured cheaper at national scale) while SIMPLEX is
    unset, its joint pushes cold by PUSH_SIMPLEX (dual), an explicit SIMPLEX wins, and SIMPLEX is the caller's again afterwards (the demo's grids keep dual); both
    strategies give a pattern that pins no cell under an audit from the truth."""
    g = _grid(3, [0, 2, 4, 9, 30, 60], months=3)
    dirs = valid_directions(g.n, g.constraints, g.directions)
    built: list = []
    solves: list = []
    block = suppression._Block

    class Recording(block):
        def __init__(self, *a, **k) -> None:
            built.append(suppression.SIMPLEX)
            super().__init__(*a, **k)

        def solve(self, *a, **k) -> tuple:
            solves.append((k.get("simplex"), k.get("cold", False)))
            return super().solve(*a, **k)

    monkeypatch.setattr(suppression, "_Block", Recording)
    for asked, used in ((None, 4), (1, 1)):
        monkeypatch.setattr(suppression, "SIMPLEX", asked)
        built.clear()
        stats: dict = {}
        hidden = choose_grid_hidden(g, method="modular", stats=stats)
        assert stats["modular"]["simplex"] == used and built and set(built) == {used}, (asked, set(built))
        # under primal the joint pushes solve cold by PUSH_SIMPLEX (dual), the per-cell LPs by the block's primal
        pushes = {(1, True)} if used == 4 else {(None, False)}
        assert pushes <= set(solves) and (None, False) in set(solves) and set(solves) <= pushes | {(None, False)}
        solves.clear()
        assert asked == suppression.SIMPLEX, "the caller's strategy is restored"
        assert (hidden[0::NM][g.values[0::NM] < GRAENSE]).all()
        assert audit(g.values, hidden, g.constraints, dirs=dirs, per_cell=None).pinned() == []


def test_cells_narrow_only_inside_their_subtable_are_left_to_the_final_audit():
    """A sub-table is a restriction (the other regions fixed at their truth), so a cell can stay narrow there with
    every cell of its relations hidden; hiding one more cell of its block a round then barely moved it (the national
    year's third sub-table, 2026-12-04).  Such cells are left to the final audit over the whole grid (``defer``):
    on this quarter of two regions the sub-tables leave 74, the final audit protects those still narrow in the whole
    grid (27 more cells hidden), and the result pins no cell under an audit from the truth alone."""
    g = _grid_of(_year(random.Random(2), [0, 1, 3, 5, 12], months=3))
    stats: dict = {}
    hidden = choose_grid_hidden(g, method="modular", stats=stats)
    assert stats["deferred"] > 0 and stats["modular"]["hidden_by_final_audit"] > 0, stats
    dirs = valid_directions(g.n, g.constraints, g.directions)
    check = audit(g.values, hidden, g.constraints, dirs=dirs, per_cell=None)
    assert check.by.keys() == set(np.flatnonzero(hidden)) and check.pinned() == []


def test_deferred_cells_withstand_the_independent_attacker():
    """Two months of two regions whose sub-tables leave cells to the final audit (``defer``), published with the
    modular method: the independent integer attacker (tests/attacker.py) narrows no hidden cell."""
    truth = _year(random.Random(2), [0, 1, 3, 5, 12], months=2)
    con = duckdb.connect()
    stats: dict = {}
    choose_grid_hidden(grid_from(con, load(con, truth, "t")), method="modular", stats=stats)
    assert stats["deferred"] > 0, stats
    pub = published(con, "SELECT * FROM " + suppress(con, load(con, truth, "t2"), method="modular").alias)
    att = Attack()
    att.add(table(truth, pub))
    assert_unpinned(att)
