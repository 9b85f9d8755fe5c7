"""The audit's neighbourhood LPs (suppression.audit, _local, LOKAL): a hidden cell of a large block is first
maximised and minimised over its neighbourhood, the block's other hidden cells fixed at their true values.

That is a restriction (the neighbourhood's feasible set lies inside the block's), so it can only under-state an
interval: a cell wide over its neighbourhood is wide.  The wrong decomposition -- dropping the relations beyond
the neighbourhood, or auditing blocks of periods or regions apart -- over-states intervals and publishes around
cells an attacker pins.  These grids are built so that such a decomposition would pin a cell.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import duckdb
import numpy as np
import pytest
from attacker import Attack
from test_suppression_attacks import JAN, OKT, _parents, assert_unpinned, grid, load, published, table

from pipelines.warehouse.suppression import GRAENSE, AuditResult, Constraint, Grid, audit, grid_from, suppress


def _chain(m: int) -> tuple[np.ndarray, list[Constraint]]:
    """Cells x0..x(m-1), all 20, hidden, in a chain x(i) + x(i+1) = 40, and x(m-1) + p = 20 with p a published
    cell (0): the far end pins x(m-1) = 20, and so, link by link, every cell.  Over any neighbourhood that stops
    short of the end with the relations beyond it dropped, x0 would range over [0, 40]."""
    values = np.full(m + 1, 20.0)
    values[m] = 0.0
    cons = [Constraint(np.array([i, i + 1]), np.array([1.0, 1.0]), True, 40.0, "geo") for i in range(m - 1)]
    cons.append(Constraint(np.array([m - 1, m]), np.array([1.0, 1.0]), True, 20.0, "geo"))
    return values, cons


def _linked_quarter(seed: int, values: list[int]) -> tuple[random.Random, Grid, np.ndarray]:
    """A linked quarter (months, quarter, year) of random cells drawn from ``values``, and a primary pattern in
    which every fourth cell follows the first, so that hidden cells link across the margins."""
    con = duckdb.connect()
    rng = random.Random(seed)
    months = grid(rng, [JAN, dt.date(2027, 2, 1)], values)
    g = grid_from(con, load(con, {**months, **_parents(months)}, "t"))
    primary = g.values < GRAENSE
    primary[3::4] = primary[0::4]
    return rng, g, primary


def _settled_cells(g: Grid, patterns: tuple[np.ndarray, ...], how: str,
                   sizes: tuple[int, ...]) -> Iterator[tuple[AuditResult, AuditResult, int, int]]:
    """(fast audit, exact audit, size, cell) for every cell the fast audit settles as ``how`` (``local``: neighbourhood
    LPs of that size; ``relaxed_narrow``: relaxations of that size).  On the way it asserts what must hold for every
    cell: both audits settle the same cells and find the same pinned ones."""
    keyword = "local" if how == "local" else "relax"
    for hidden in patterns:
        exact = audit(g.values, hidden, g.constraints, exact=True)
        for size in sizes:
            fast = audit(g.values, hidden, g.constraints, per_cell=None, **{keyword: size})
            assert fast.by.keys() == exact.by.keys()
            yield from ((fast, exact, size, i) for i, by in fast.by.items() if by == how)
            assert set(fast.pinned()) == set(exact.pinned()), size


def test_a_cell_narrow_only_through_a_far_relation_is_not_certified_locally():
    """A chain of 30 hidden cells pinned only by its far end: neighbourhoods of 3 cells never certify a cell
    (the cells beyond them are fixed, not freed), the escalated audit finds exactly the exact audit's pinned
    cells, and the unescalated one (the suppression's rounds) counts every cell narrow."""
    values, cons = _chain(30)
    hidden = np.ones(len(values), dtype=bool)
    hidden[-1] = False
    exact = audit(values, hidden, cons, exact=True)
    assert exact.pinned() == list(range(30))
    local = audit(values, hidden, cons, local=3)
    assert local.how["local"] == 0 and local.pinned() == exact.pinned()
    rounds = audit(values, hidden, cons, local=3, escalate=False)
    assert rounds.how["local_narrow"] + rounds.how["lp"] == 30 and rounds.pinned() == exact.pinned()
    # what a relaxation would claim: x0 alone in x0 + x1 = 40 with x1 free
    assert audit(values[:2], np.array([True, True]), cons[:1], exact=True).width(0) >= GRAENSE


def test_cells_certified_over_their_neighbourhood_are_wide_by_their_exact_intervals(monkeypatch):
    """On the primary pattern and an attackable one over a linked quarter (months, quarter, year), every cell the
    audit settles over its neighbourhood (no joint pushes and tiny neighbourhoods, so that most cells go that way)
    has an exact interval (both LPs over the whole block) containing what the neighbourhood saw, and the audit
    finds exactly the cells the exact audit finds narrow."""
    from pipelines.warehouse import suppression

    rng, g, primary = _linked_quarter(7, [0, 2, 4, 9, 30, 60])
    monkeypatch.setattr(suppression, "BATCH_ROUNDS", 0)
    patterns = (suppression.choose_grid_hidden(g), primary | np.array([rng.random() < 0.6 for _ in range(g.n)]))
    settled = 0
    for fast, exact, size, i in _settled_cells(g, patterns, "local", (40, 120, 200)):
        settled += 1
        assert fast.width(i) >= GRAENSE and exact.width(i) >= GRAENSE, (i, size)
        assert exact.lo[i] <= fast.lo[i] + 1e-6 and exact.hi[i] >= fast.hi[i] - 1e-6
    assert settled >= 5, "the neighbourhood LPs were exercised"


def test_suppression_over_small_neighbourhoods_pins_nothing(monkeypatch):
    """The suppression with neighbourhoods of 6 cells, unescalated (cells narrow there count as narrow: more cells
    hidden): the independent integer attacker, over the whole grid, narrows no hidden cell, and the neighbourhood
    path decided cells."""
    from pipelines.warehouse import suppression

    monkeypatch.setattr(suppression, "LOKAL", 6)
    monkeypatch.setattr(suppression, "ESKALER", False)
    seen: list[dict] = []
    real = suppression.audit

    def spy(*a, **k):
        res = real(*a, **k)
        seen.append(res.how)
        return res

    monkeypatch.setattr(suppression, "audit", spy)
    con = duckdb.connect()
    truth = grid(random.Random(17), [OKT], [0, 3, 6, 12, 30, 60])
    pub = published(con, "SELECT * FROM " + suppress(con, load(con, truth, "t")).alias)
    assert sum(h["local"] + h["local_narrow"] for h in seen) > 0, "no block went through its neighbourhoods"
    att = Attack()
    att.add(table(truth, pub))
    assert_unpinned(att)


# ---------------------------------------------------------------- relaxations (suppression._relaxed, RELAKS)
# A relaxation drops the relations beyond a cell's neighbourhood (nothing fixed): its interval contains the
# block's, so it may only ever prove a cell NARROW.  A relaxation built wrong -- the cells outside fixed at their
# true values, i.e. a restriction -- would call wide cells narrow; one that let a "wide" verdict stand would
# publish around pinned cells.  Both are caught here against the exact audit (both LPs of every cell).


def _free_chain(m: int) -> tuple[np.ndarray, list[Constraint]]:
    """Cells x0..x(m-1), all 20, hidden, in a chain x(i) + x(i+1) = 40 and nothing pinning either end: every
    cell ranges over [0, 40].  Over a neighbourhood with the cells beyond it FIXED, x0 would be pinned at 20."""
    values = np.full(m, 20.0)
    return values, [Constraint(np.array([i, i + 1]), np.array([1.0, 1.0]), True, 40.0, "geo") for i in range(m - 1)]


def test_a_relaxation_calls_narrow_only_cells_the_exact_audit_pins(monkeypatch):
    """Chains of 30 hidden cells, relaxations of 3 cells: where the far end pins every cell, only the cells whose
    relaxation reaches the far end are proved narrow by it (x0 is free without the far relations) and the others
    go to their own LPs, which pin them; where nothing pins the chain, no cell is called narrow (a restriction
    would pin every one)."""
    from pipelines.warehouse import suppression

    monkeypatch.setattr(suppression, "RELAKS_BLOK", 0)
    values, cons = _chain(30)
    hidden = np.ones(len(values), dtype=bool)
    hidden[-1] = False
    exact = audit(values, hidden, cons, exact=True)
    relaxed = audit(values, hidden, cons, relax=3)
    by_relaxation = [i for i, how in relaxed.by.items() if how == "relaxed_narrow"]
    assert 0 < len(by_relaxation) <= 3 and min(by_relaxation) >= 27, by_relaxation
    assert relaxed.pinned() == exact.pinned() == list(range(30))
    values, cons = _free_chain(30)
    hidden = np.ones(len(values), dtype=bool)
    exact = audit(values, hidden, cons, exact=True)
    assert exact.pinned() == []
    relaxed = audit(values, hidden, cons, relax=3)
    assert relaxed.how["relaxed_narrow"] == 0 and relaxed.pinned() == []


def test_cells_a_relaxation_calls_narrow_are_narrow_by_their_exact_intervals(monkeypatch):
    """On a linked quarter (months, quarter, year) with the primary cells and more hidden at random: every cell a
    relaxation settles is narrow by its exact interval, which lies inside the relaxation's; the audit with
    relaxations finds exactly the exact audit's narrow cells, at every relaxation size."""
    from pipelines.warehouse import suppression

    monkeypatch.setattr(suppression, "RELAKS_BLOK", 0)
    monkeypatch.setattr(suppression, "BATCH_ROUNDS", 0)  # no joint pushes: more cells reach the relaxation
    rng, g, primary = _linked_quarter(11, [0, 2, 3, 4, 9, 30, 60])
    patterns = (primary, primary | np.array([rng.random() < 0.4 for _ in range(g.n)]))
    settled = 0
    for fast, exact, size, i in _settled_cells(g, patterns, "relaxed_narrow", (4, 20, 80)):
        settled += 1
        assert fast.width(i) < GRAENSE and exact.width(i) < GRAENSE, (i, size)
        assert fast.lo[i] <= exact.lo[i] + 1e-6 and fast.hi[i] >= exact.hi[i] - 1e-6
    assert settled >= 10, "the relaxations were exercised"


def test_the_suppression_hides_the_same_cells_with_and_without_relaxations(monkeypatch):
    """The relaxations only spare LPs: the rounds' verdicts are the exact audit's, so the same cells are hidden
    (the plain suppression is the one the independent attacker checks in test_suppression_attacks.py; running it
    here again cost most of this test's time)."""
    from pipelines.warehouse import suppression

    con = duckdb.connect()
    months = grid(random.Random(5), [JAN, dt.date(2027, 2, 1)], [0, 2, 4, 9, 30, 60])
    truth = {**months, **_parents(months)}
    g = grid_from(con, load(con, truth, "t"))
    monkeypatch.setattr(suppression, "RELAKS", None)
    plain = suppression.choose_grid_hidden(g)
    monkeypatch.setattr(suppression, "RELAKS", 6)
    monkeypatch.setattr(suppression, "RELAKS_BLOK", 0)
    stats: dict = {}
    relaxed = suppression.choose_grid_hidden(g, stats=stats)
    assert stats["how"]["relaxed_narrow"] > 0, "the relaxations were exercised"
    assert (plain == relaxed).all()


# ---------------------------------------------------------------- the attack check from the suppression's points
# (suppression.Seen.stamp, choose_grid_hidden(points=...), audit(seen=...)): every LP solution of the rounds is a
# point consistent with what the final pattern publishes -- over the same relations and as long as the pattern hides
# every cell the point moved -- so the attack check may start from the lowest and highest values they reached.


def test_the_attack_check_from_the_suppressions_points_agrees_with_the_exact_audit():
    """On a linked quarter (months, quarter, year): the attack check started from the suppression's points finds no
    narrow cell, like the check from the truth and the exact audit; every cell it settles without its own LPs is wide
    by its exact interval, which contains what the points reached; it needs fewer LPs than from the truth.  The points
    are refused over fewer relations, other figures, or a pattern that publishes a cell they moved."""
    import copy

    from pipelines.warehouse.suppression import Seen, choose_grid_hidden, valid_directions

    _, g, _ = _linked_quarter(7, [0, 2, 4, 9, 30, 60])
    points = Seen.of(g.values)
    hidden = choose_grid_hidden(g, points=points)
    assert points.relations is not None and not (points.hidden & ~hidden).any()
    assert (points.hi - points.lo > 0).sum() > hidden.sum() // 2, "the rounds' points were kept"
    dirs = valid_directions(g.n, g.constraints, g.directions)
    started = audit(g.values, hidden, g.constraints, dirs=dirs, per_cell=None, seen=copy.deepcopy(points))
    fresh = audit(g.values, hidden, g.constraints, dirs=dirs, per_cell=None)
    # both exact LPs of every sixth hidden cell (all of them: 10 CPU s)
    sample = np.zeros(g.n, dtype=bool)
    sample[np.flatnonzero(hidden)[::6]] = True
    exact = audit(g.values, hidden, g.constraints, exact=True, targets=sample)
    assert started.pinned() == fresh.pinned() == exact.pinned() == []
    assert started.by.keys() == set(np.flatnonzero(hidden)) and exact.by.keys() == set(np.flatnonzero(sample))
    for i in exact.by:
        if started.by[i] != "lp":
            assert exact.lo[i] <= started.lo[i] + 1e-6 and exact.hi[i] >= started.hi[i] - 1e-6, (i, started.by[i])
    assert started.lp_solves < fresh.lp_solves, (started.lp_solves, fresh.lp_solves)
    with pytest.raises(ValueError, match="other figures or relations"):
        audit(g.values, hidden, g.constraints[:-1], seen=copy.deepcopy(points))
    with pytest.raises(ValueError, match="other figures or relations"):
        audit(g.values + 1.0, hidden, g.constraints, seen=copy.deepcopy(points))
    less = hidden.copy()
    less[int(np.flatnonzero(points.hidden)[0])] = False
    with pytest.raises(ValueError, match="publishes"):
        audit(g.values, less, g.constraints, seen=copy.deepcopy(points))


def test_a_suppression_with_context_hands_on_the_truth_alone():
    """With an earlier vintage as context the rounds' points are points of the joint problem, not of the grid's own
    relations: the suppression stamps the truth alone (no cell moved), which the attack check accepts."""
    from pipelines.warehouse.suppression import Layer, Seen, choose_grid_hidden

    con = duckdb.connect()
    g = grid_from(con, load(con, grid(random.Random(3), [OKT], [0, 4, 30, 60]), "t"))
    ctx = Seen.of(g.values)
    hidden = choose_grid_hidden(g, layers=[Layer(g.rows, g.values + (g.values > 0), g.values < GRAENSE, 1, False)],
                                points=ctx)
    assert ctx.relations is not None and not ctx.hidden.any()
    assert (ctx.lo == g.values).all() and (ctx.hi == g.values).all()
    assert audit(g.values, hidden, g.constraints, per_cell=None, seen=ctx).by.keys() == set(np.flatnonzero(hidden))


def test_a_cell_narrow_two_rounds_running_is_logged_with_its_relations(caplog):
    """The diagnosis of a stuck suppression (suppression._log_stuck): the narrow cell with its interval and, per
    relation, its kind and how many of its cells are hidden, free to hide and neither."""
    import logging
    from types import SimpleNamespace

    from pipelines.warehouse.suppression import Constraint, _log_stuck

    values = np.array([3.0, 10.0, 13.0, 40.0])
    cons = [Constraint(np.array([0, 1, 2]), np.array([1.0, 1.0, -1.0]), True, 0.0, "geo"),
            Constraint(np.array([0, 3]), np.array([1.0, -1.0]), False, 0.0, "tid")]
    hidden = np.array([True, True, False, False])
    known = np.array([False, False, False, True])
    res = SimpleNamespace(lo={0: 1.0}, hi={0: 4.0}, by={0: "lp"})
    with caplog.at_level(logging.INFO, logger="pipelines.warehouse.suppression"):
        _log_stuck([0], values, res, cons, {0: [0, 1]}, hidden, known, np.ones(4, dtype=bool))
    msg = caplog.records[-1].getMessage()
    assert "cell 0 (measure 0, value 3) narrow again: [1, 4] by lp" in msg
    assert "geo=[2h/1f/0o]" in msg and "tid<=[1h/0f/1o]" in msg
