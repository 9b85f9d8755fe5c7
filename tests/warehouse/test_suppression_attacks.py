"""Attacks on the published cells beyond one table's margins (issue 13 item 1, "an attacker with a solver"):
sparse grids, two vintages of the same period, fuldtidspersoner as its own measure, and relations across
calendar years.  Each test publishes a small hand-made grid with the project's suppression and then runs the
independent attacker of tests/attacker.py (its own relations, its own integer program) against what was
published: no hidden cell may be narrowed to fewer than GRAENSE values.
"""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import numpy as np
from attacker import Attack, width

from pipelines.warehouse.suppression import GRAENSE, NM, UGER, Layer, grid_from, suppress

OKT, NOV, DEC, JAN = dt.date(2026, 10, 1), dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1)
REGIONER = {"084": ["101", "147", "151"], "085": ["253", "259"]}
GRUPPER = ["dagpenge", "kontanthjaelp", "sygedagpenge"]


def grid(rng: random.Random, months: list[dt.date], sizes: list[int], uger: int = 4) -> dict:
    """{key: (antal, tilgang, afgang, ydelsesuger)} for kommuner, regions and land; regions and land are sums
    (distinct persons: a kommune's 'i alt' is the sum of its groups minus one where it can)."""
    cells: dict = {}
    for mo in months:
        tot: dict = {}
        for r, ks in REGIONER.items():
            for k in ks:
                vals = {}
                for g in GRUPPER:
                    a = rng.choice(sizes)
                    t, f = rng.randint(0, a), rng.randint(0, a)
                    vals[g] = (a, t, f, a * rng.randint(1, uger))
                vals["i alt"] = tuple(sum(v[m] for v in vals.values()) for m in range(4))
                for g, v in vals.items():
                    cells[("maaned", mo, "kommune", k, r, g)] = v
                    tot[(r, g)] = tuple(x + y for x, y in zip(tot.get((r, g), (0,) * 4), v, strict=True))
        for (r, g), v in tot.items():
            cells[("maaned", mo, "region", r, "000", g)] = v
        for g in [*GRUPPER, "i alt"]:
            cells[("maaned", mo, "land", "000", None, g)] = tuple(sum(tot[(r, g)][m] for r in REGIONER)
                                                                  for m in range(4))
    return cells


def load(con: duckdb.DuckDBPyConnection, cells: dict, name: str, uger: int = 4) -> str:
    con.execute(f"CREATE OR REPLACE TABLE {name} (periode_type VARCHAR, periode_start DATE, geo_niveau VARCHAR, "
                "geo_kode VARCHAR, overordnet_geo_kode VARCHAR, ydelsesgruppe VARCHAR, antal_personer BIGINT, "
                "fuldtidspersoner DOUBLE, tilgang BIGINT, afgang BIGINT, ydelsesuger BIGINT, uger_i_perioden BIGINT)")
    con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [[*k, v[0], v[3] / uger, v[1], v[2], v[3], uger] for k, v in cells.items()])
    return f"SELECT * FROM {name}"


def published(con: duckdb.DuckDBPyConnection, rel: str) -> dict:
    """{key: (antal, tilgang, afgang, ydelsesuger)} as published; fuldtidspersoner x weeks gives ydelsesuger."""
    out = {}
    rel = rel if rel.startswith("SELECT") else f"SELECT * FROM {rel}"
    for r in con.execute(f"SELECT periode_type, periode_start, geo_niveau, geo_kode, overordnet_geo_kode, "
                         f"ydelsesgruppe, antal_personer, tilgang, afgang, fuldtidspersoner * uger_i_perioden, "
                         f"antal_personer_diskretioneret FROM ({rel})").fetchall():
        assert (r[6] is None) == r[10]
        out[r[:6]] = (r[6], r[7], r[8], None if r[9] is None else round(r[9]))
    return out


def table(truth: dict, pub: dict, uger: int = 4) -> dict:
    assert set(truth) == set(pub), "every cell of the grid is published, hidden or not"
    return {k: (truth[k], pub[k], uger) for k in truth}


def assert_unpinned(att: Attack) -> dict:
    got = att.bounds(GRAENSE)
    narrow = {k: v for k, v in got.items() if width(*v) < GRAENSE}
    assert got and not narrow, narrow
    return got


def as_layer(con: duckdb.DuckDBPyConnection, truth_rel: str, pub: dict, vintage: int, current: bool) -> Layer:
    g = grid_from(con, truth_rel)
    hidden = np.array([pub[r[:6]][m if m < 3 else 0] is None for r in g.rows for m in range(NM)])
    return Layer(g.rows, g.values, hidden, vintage, current)


def test_a_sparse_grid_publishes_its_regions_and_pins_nothing():
    """Most kommune cells below 5 (a demo-sized Denmark): the kommune cells of the sparse groups and the
    kommuner's 'i alt' are hidden at once, the regions and hele landet are published where the audit allows,
    and the independent integer attacker narrows no hidden cell -- kommune cells included."""
    con = duckdb.connect()
    truth = grid(random.Random(3), [OKT], [0, 1, 2, 3, 4])
    out = suppress(con, load(con, truth, "t"))
    pub = published(con, f"SELECT * FROM {out.alias}")
    kommune = [k for k in truth if k[2] == "kommune"]
    assert all(pub[k][0] is None for k in kommune), "every kommune cell of a sparse grid is hidden"
    regions = [k for k in truth if k[2] in ("region", "land")]
    shown = [k for k in regions if pub[k][0] is not None]
    assert shown, "regions and hele landet are published where safe"
    assert all(pub[k] == truth[k] for k in shown)  # published figures are the true ones
    att = Attack()
    att.add(table(truth, pub))
    assert_unpinned(att)


def test_fuldtidspersoner_is_audited_as_its_own_measure():
    """ydelsesuger (fuldtidspersoner x weeks) has its own margins and binds antal_personer (weeks per person
    between 1 and the period's weeks): the attacker uses both, and neither hidden measure is pinned."""
    con = duckdb.connect()
    truth = grid(random.Random(11), [OKT], [0, 2, 5, 8, 30, 60])
    out = suppress(con, load(con, truth, "t"))
    pub = published(con, f"SELECT * FROM {out.alias}")
    att = Attack()
    att.add(table(truth, pub))
    got = assert_unpinned(att)
    assert any(k[2] == 3 for k in got), "hidden ydelsesuger cells were attacked"
    # the weeks alone would give a hidden antal away: antal <= ydelsesuger <= 4 x antal with ydelsesuger known
    k = next(k for k in truth if pub[k][0] is None)
    leak = Attack()
    leak.add(table(truth, {kk: (*v[:3], truth[kk][3]) for kk, v in pub.items()}))
    lo, hi = leak.intervals([(0, k, 0)])[(0, k, 0)]
    assert hi <= truth[k][3] and lo >= truth[k][3] / 4 - 1e-9
    # the attacker's shortcut (points spanning a cell) reports a narrow cell exactly, as both programs do
    if width(lo, hi) < GRAENSE:
        assert leak.bounds(GRAENSE, [(0, k, 0)]) == {(0, k, 0): (lo, hi)}
    every = leak.intervals()
    short = leak.bounds(GRAENSE)
    assert short.keys() == every.keys()
    for t, (a, b) in short.items():
        e = every[t]
        assert (a, b) == e if width(*e) < GRAENSE else e[0] <= a and b <= e[1] and width(a, b) >= GRAENSE
    assert any(width(*e) < GRAENSE for e in every.values())  # the leak narrows cells: the check can fail


def test_two_vintages_of_a_period_are_audited_together():
    """Vintage 2 corrects a few kommune figures of October.  An attacker holding both vintages equates the
    cells whose figure did not change; the new vintage is audited with vintage 1 as context, so no cell of
    either vintage is pinned.  An unchanged figure published in vintage 1 stays published (hiding it again
    would protect nothing)."""
    con = duckdb.connect()
    rng = random.Random(5)
    t1 = grid(rng, [OKT], [0, 3, 6, 9, 25, 60])
    src1 = load(con, t1, "t1")
    p1 = published(con, "SELECT * FROM " + suppress(con, src1).alias)
    t2 = dict(t1)
    for k in [("maaned", OKT, "kommune", "101", "084", "dagpenge"), ("maaned", OKT, "kommune", "253", "085", "sygedagpenge")]:
        old = t2[k]
        new = (old[0] + 7, old[1] + 2, old[2], old[3] + 14)
        for kk in (k, (*k[:5], "i alt"), ("maaned", OKT, "region", k[4], "000", k[5]),
                   ("maaned", OKT, "region", k[4], "000", "i alt"), ("maaned", OKT, "land", "000", None, k[5]),
                   ("maaned", OKT, "land", "000", None, "i alt")):
            t2[kk] = tuple(a + b - c for a, b, c in zip(t2[kk], new, old, strict=True))
    src2 = load(con, t2, "t2")
    p2 = published(con, suppress(con, src2, layers=[as_layer(con, src1, p1, 1, False)]).alias)
    changed = {k for k in t1 if t1[k] != t2[k]}
    assert changed
    for k in t1:
        if k not in changed and p1[k][0] is not None:
            assert p2[k][0] == t1[k][0], "an unchanged figure published before is published again"
    att = Attack()
    e1 = att.add(table(t1, p1))
    e2 = att.add(table(t2, p2))
    att.same(e1, table(t1, p1), e2, table(t2, p2))
    assert_unpinned(att)


def test_consecutive_periods_across_the_calendar_year():
    """December 2026 is published; January 2027 is published later.  antal(Dec) - afgang(Dec) <= antal(Jan)
    and antal(Jan) - tilgang(Jan) <= antal(Dec) link the two years: January is audited with December as
    context and the attacker holding both narrows no hidden cell of either."""
    con = duckdb.connect()
    rng = random.Random(8)
    both = grid(rng, [DEC, JAN], [0, 2, 5, 9, 20, 40])
    # consistent stocks and flows at every cell: January's persons are December's minus leavers plus entrants
    for k in [k for k in both if k[1] == JAN]:
        dec = both[(k[0], DEC, *k[2:])]
        a = max(dec[0] - dec[2] + both[k][1], both[k][1])
        both[k] = (a, both[k][1], min(both[k][2], a), both[k][3])
    dec = {k: v for k, v in both.items() if k[1] == DEC}
    jan = {k: v for k, v in both.items() if k[1] == JAN}
    src_d = load(con, dec, "d")
    p_d = published(con, "SELECT * FROM " + suppress(con, src_d).alias)
    src_j = load(con, jan, "j")
    g = grid_from(con, f"{src_d} UNION ALL {src_j}")
    assert any(c.why == "bestand" for c in g.constraints), "the relation crosses the calendar year"
    p_j = published(con, suppress(con, src_j, layers=[as_layer(con, src_d, p_d, 1, True)]).alias)
    att = Attack()
    att.add(table({**dec, **jan}, {**p_d, **p_j}))
    assert_unpinned(att)


def test_a_cell_the_capped_audit_leaves_uncertified_is_never_published_around(monkeypatch):
    """Fail safe of choose_hidden: with the most pessimistic cap (every cell not unbounded above counts as
    uncertified), such cells get cells hidden until none of their relations has a published cell; then their own
    uncapped LPs decide, and a cell still narrow gets its whole block (period x measure) hidden.  Whatever the
    path, the independent attacker pins no cell of what is published."""
    from pipelines.warehouse import suppression

    real_audit, uncapped = suppression.audit, []

    def capped(*a, **k):
        if k.get("targets") is not None:  # the fail safe's uncapped audit of the stuck cells
            uncapped.append(1)
            return real_audit(*a, **k)
        res = real_audit(*a, **{**k, "per_cell": 0})
        for i in res.lo:  # a pessimistic cap: every primary cell counts as uncertified
            if a[0][i] < GRAENSE:
                res.lo[i] = res.hi[i] = float(a[0][i])
        return res

    monkeypatch.setattr(suppression, "audit", capped)
    con = duckdb.connect()
    truth = grid(random.Random(5), [OKT], [2, 30, 40, 50, 60, 70, 80, 90])
    out = suppress(con, load(con, truth, "t"))
    pub = published(con, f"SELECT * FROM {out.alias}")
    assert uncapped, "the fail-safe path (uncapped LPs for stuck cells) was not driven"
    # the pessimistic cap spreads the hidden cells through every relation (it errs towards hiding)
    assert all(pub[k][0] is None for k in truth if truth[k][0] < GRAENSE)
    att = Attack()
    att.add(table(truth, pub))
    assert_unpinned(att)


def test_a_cell_no_cell_of_the_publication_can_protect_gets_its_block_hidden(caplog):
    """Fail safe: a hidden cell pinned by what an earlier publication gave away (a known figure and a published
    context total) cannot be widened through its relations; its whole block (period x measure) and then the
    grid are hidden, so the new publication shows none of its figures, and the cell is logged."""
    from pipelines.warehouse.suppression import Constraint, choose_hidden

    # three rows of NM cells: kommune A (antal 2), kommune B (antal 8, known: published earlier with 8), and
    # the region (antal 10, a context cell: published, not this publication's); A + B = region
    values = np.array([2, 30, 30, 60, 8, 30, 30, 60, 10, 60, 60, 120], dtype=float)
    cons = [Constraint(np.array([0, 4, 8]), np.array([1.0, 1.0, -1.0]), True, 0.0, "geo")]
    eligible = np.array([True] * 8 + [False] * 4)
    known = np.zeros(12, dtype=bool)
    known[4] = True
    blocks = np.array([0, 1, 2, 0, 0, 1, 2, 0, -1, -1, -1, -1])
    with caplog.at_level("WARNING"):
        hidden = choose_hidden(values, cons, eligible=eligible, known=known, blocks=blocks)[0]
    assert hidden[:8][~known[:8]].all(), hidden  # every cell this publication could hide
    assert "earlier publications alone pin it" in caplog.text
    assert "fail safe" in caplog.text


def test_cells_the_audit_settles_without_their_own_lps_are_wide_by_their_exact_intervals():
    """The audit's shortcuts (suppression.audit's docstring): a cell is left without its own max/min LPs only when
    a checked direction raises it without limit or LP solutions -- points consistent with the published data --
    already span GRAENSE.  On the suppression's own pattern and on attackable ones (the primary cells alone, and
    more hidden at random) every cell settled that way has an exact interval (both LPs of every cell) containing
    what the shortcut saw, and the shortcut audit finds exactly the cells the exact one finds narrow."""
    from pipelines.warehouse.suppression import audit, choose_grid_hidden, valid_directions

    con = duckdb.connect()
    rng = random.Random(21)
    skipped = 0
    for trial in range(2):
        truth = grid(rng, [OKT], [0, 2, 4, 9, 30, 60, 150])
        g = grid_from(con, load(con, truth, f"t{trial}"))
        primary = g.values < GRAENSE
        primary[UGER::NM] = primary[0::NM]
        extra = np.array([rng.random() < 0.3 for _ in range(g.n)])
        for h in (primary, choose_grid_hidden(g), primary | extra):
            dirs = valid_directions(g.n, g.constraints, g.directions)
            fast = audit(g.values, h, g.constraints, dirs=dirs, per_cell=None)
            exact = audit(g.values, h, g.constraints, exact=True)
            assert fast.by.keys() == exact.by.keys() == set(np.flatnonzero(h).tolist())
            assert fast.how["capped"] == 0
            for i, how in fast.by.items():
                if how == "lp":
                    continue
                skipped += 1
                assert fast.width(i) >= GRAENSE and exact.width(i) >= GRAENSE, (i, how)
                assert exact.lo[i] <= fast.lo[i] + 1e-6 and exact.hi[i] >= fast.hi[i] - 1e-6
                if how == "unbounded":
                    assert exact.hi[i] == np.inf
            assert set(fast.pinned()) == set(exact.pinned())
    assert skipped > 50, "the shortcuts were exercised"


def _correct(cells: dict, k: tuple, d: int) -> dict:
    """``cells`` with kommune cell ``k``'s antal_personer raised by ``d`` (ydelsesuger by 2d), carried into its
    'i alt', region and hele landet."""
    out, old = dict(cells), cells[k]
    new = (old[0] + d, old[1], old[2], old[3] + 2 * d)
    for kk in (k, (*k[:5], "i alt"), (k[0], k[1], "region", k[4], "000", k[5]), (k[0], k[1], "region", k[4], "000",
               "i alt"), (k[0], k[1], "land", "000", None, k[5]), (k[0], k[1], "land", "000", None, "i alt")):
        out[kk] = tuple(a + b - c for a, b, c in zip(out[kk], new, old, strict=True))
    return out


def test_a_correction_undone_later_is_audited_against_every_earlier_vintage():
    """Vintage 2 corrects three kommune figures of October; vintage 3 undoes the correction (the figures of
    vintage 1 again).  An attacker holding all three vintages equates every pair of versions with the same figure,
    vintage 1 with vintage 3 too.  Comparing consecutive vintages only left cells of vintage 3 open to exactly this
    (this grid: 'i alt' of kommune 151 and of region 084 pinned to one value); each new vintage is now audited
    against every earlier one, and no cell of any vintage is pinned."""
    con = duckdb.connect()
    rng = random.Random(3)
    t1 = grid(rng, [OKT], [0, 3, 6, 9, 25, 60])
    s1 = load(con, t1, "t1")
    p1 = published(con, "SELECT * FROM " + suppress(con, s1).alias)
    t2 = t1
    for k in rng.sample([k for k in t1 if k[2] == "kommune" and k[5] != "i alt"], 3):
        t2 = _correct(t2, k, rng.choice([2, 5, 7]))
    s2 = load(con, t2, "t2")
    l1 = as_layer(con, s1, p1, 1, False)
    p2 = published(con, suppress(con, s2, layers=[l1]).alias)
    t3 = dict(t1)
    s3 = load(con, t3, "t3")
    p3 = published(con, suppress(con, s3, layers=[l1, as_layer(con, s2, p2, 2, False)]).alias)
    for k in t1:
        if p1[k][0] is not None:
            assert p3[k][0] == t1[k][0], "a figure vintage 1 published is published again when it comes back"
    att = Attack()
    tabs = [table(t1, p1), table(t2, p2), table(t3, p3)]
    eds = [att.add(t) for t in tabs]
    for a in range(3):
        for b in range(a + 1, 3):
            att.same(eds[a], tabs[a], eds[b], tabs[b])
    assert_unpinned(att)


def _parents(months: dict) -> dict:
    """The quarter and the year of the months in ``months`` (all in one quarter, so the year equals the quarter):
    a parent's persons are its largest month's plus most entries of the others (at most the months' sum), its
    flows the months' sum less what repeats (at most its persons), its weeks the months' sum."""
    by: dict = {}
    for k, v in months.items():
        by.setdefault(k[2:], []).append(v)
    out = {}
    for rest, vs in by.items():
        big = max(vs, key=lambda v: v[0])
        a = min(sum(v[0] for v in vs), big[0] + sum(v[1] for v in vs if v is not big) * 9 // 10)
        t, f = (min(a, sum(v[m] for v in vs) * 19 // 20) for m in (1, 2))
        q = (a, t, f, sum(v[3] for v in vs))
        out[("kvartal", JAN, *rest)] = q
        out[("aar", JAN, *rest)] = q
    return out


def test_months_quarter_and_year_with_every_margin_pin_nothing():
    """One grid with every margin of issue 13 at once: kommune < region < land, groups < 'i alt', months < quarter
    < year, tilgang/afgang with their stocks across consecutive months, ydelsesuger with antal, non-negativity, and
    every cell published (zeros included, hidden or shown).  The independent integer attacker uses all of them and
    narrows no hidden cell."""
    con = duckdb.connect()
    # two months of the quarter (the data foundation's first): the quarter and the year hold just these
    months = grid(random.Random(13), [JAN, dt.date(2027, 2, 1)], [0, 4, 30, 60])
    truth = {**months, **_parents(months)}
    src = load(con, truth, "t")
    kinds = {c.why for c in grid_from(con, src).constraints}
    assert kinds >= {"geo", "grp", "tid", "flow", "uger", "bestand"}, kinds
    assert any(v[0] == 0 for v in truth.values()), "zeros are in the grid"
    pub = published(con, "SELECT * FROM " + suppress(con, src).alias)
    att = Attack()
    att.add(table(truth, pub))
    got = assert_unpinned(att)
    assert {k[1][0] for k in got} == {"maaned", "kvartal", "aar"}, "hidden cells of every period type were attacked"


def test_a_cell_bound_through_hidden_relations_gets_the_binding_relation_loosened():
    """A hidden cell whose relations are all hidden can still be narrow through a chain: a = b (both hidden) and
    b + c <= 10 with c published pin a to [0, 3].  The cell to hide is c, the published cell of the relation that
    binds a's maximum (its LP dual, suppression._binding), not the smallest cell of the block (k = 6, in an unrelated
    relation g + h = k): the national year's final audit widened such cells one block cell a round at ~200 CPU s a
    round (2026-12-05)."""
    from pipelines.warehouse.suppression import Constraint, audit, choose_hidden

    a, b, c, g, h, k = 1, 5, 9, 13, 17, 21  # tilgang cells (measure 1) of six rows
    values = np.full(6 * NM, 50.0)
    values[[a, b, c, g, h, k]] = [2, 2, 7, 1, 5, 6]
    cons = [Constraint(np.array([a, b]), np.array([1.0, -1.0]), True, 0.0, "a = b"),
            Constraint(np.array([b, c]), np.array([1.0, 1.0]), False, 10.0, "b + c <= 10"),
            Constraint(np.array([g, h, k]), np.array([1.0, 1.0, -1.0]), True, 0.0, "g + h = k")]
    hidden = choose_hidden(values, cons)[0]
    assert hidden[[a, b, c, g, h]].all() and not hidden[k], np.flatnonzero(hidden)
    assert audit(values, hidden, cons, per_cell=None).pinned() == []
