"""Revisions of closed years (pipelines/warehouse/publication.py: schedule, revision_years; docs/statistics.md
"Revisioner"), through the real load hook on a small hand-made mart spanning 2024-2026: a night that corrects a
closed year makes no vintage and leaves its published cells as they are (a revision pending, shown in
meta.publikation_afventer); the month's first load republishes exactly that year; an open year's correction is
still republished the same night.  Privacy: after each of those nights the independent attacker
(tests/attacker.py) and the production's exact audit, both holding every vintage and the current true state,
pin no cell (the audit of an open year beside a pending one takes the pending year's current figures:
suppression.context_layers)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import duckdb
import numpy as np
import pytest
from attacker import Attack, width
from test_publication_schedule import bump, figures, mart_inputs, write

from pipelines.warehouse import publication
from pipelines.warehouse.publication import pending_revisions, vintage_sql
from pipelines.warehouse.suppression import (
    GRAENSE,
    NM,
    Layer,
    audit,
    context_layers,
    grid_from,
    publish_suppressed,
    with_context,
)

D24, J25, D25, J26 = dt.date(2024, 12, 1), dt.date(2025, 1, 1), dt.date(2025, 12, 1), dt.date(2026, 1, 1)
MONTHS = [D24, J25, D25, J26]


def setup(c: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The marts' inputs the hook reads: coverage from December 2024, four kommuner, two groups."""
    mart_inputs(c, D24)
    publication.ensure_tables(c)
    return c


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = setup(duckdb.connect())
    yield c
    c.close()


class Nights:
    """The nightly loads of one test: each writes every month's computation (all final) and runs the hook."""

    def __init__(self, c: duckdb.DuckDBPyConnection) -> None:
        self.c, self.nr = c, 0
        self.truth_of: dict[int, dict] = {}  # vintage -> the true figures when it was published

    def load(self, cells: dict, day: dt.date, revidere: list[int] | None = None) -> int:
        self.nr += 1
        write(self.c, cells, self.nr, day, False)
        before = self.vintage()
        if revidere is None:
            n = publish_suppressed(self.c, SimpleNamespace(load_id=f"L{day}", indlaest_dato=day))
        else:
            n = publication.publish(self.c, SimpleNamespace(load_id=f"L{day}", indlaest_dato=day), revidere)
        if self.vintage() != before:
            self.truth_of[self.vintage()] = cells
        self.now = cells
        return n

    def vintage(self) -> int:
        return self.c.execute("SELECT coalesce(max(vintage), 0) FROM meta.publikation").fetchone()[0]

    def log(self) -> list[tuple]:
        return self.c.execute("SELECT vintage, indlaest_dato, aar, perioder FROM meta.publikation "
                              "ORDER BY 1").fetchall()

    def published(self) -> list[tuple]:
        return self.c.execute("SELECT * FROM mart_ydelser_publiceret ORDER BY ALL").fetchall()

    def edition(self, vintage: int | None, truth: dict) -> tuple[dict, set]:
        """The attacker's view of the cells in force at ``vintage`` (None: now) beside the true figures ``truth``
        of that moment: a published figure is a constant only where the cell's figure is still the one its
        vintage published (the attacker knows which cells moved since, not by how much).  Also returns the
        (key, measure) of the published figures that moved: unknowns that are the not yet published figures."""
        out, moved = {}, set()
        for r in self.c.execute(f"SELECT periode_type, periode_start, geo_niveau, geo_kode, overordnet_geo_kode, "
                                f"ydelsesgruppe, antal_personer, tilgang, afgang, fuldtidspersoner * uger_i_perioden, "
                                f"vintage FROM ({vintage_sql(vintage)})").fetchall():
            k = (r[1], r[2], r[3], r[5])
            then = self.truth_of[r[10]][k]
            pub = (r[6], r[7], r[8], None if r[9] is None else round(r[9]))
            moved |= {(r[:6], m) for m, p in enumerate(pub) if p is not None and then[m] != truth[k][m]}
            out[r[:6]] = (truth[k], tuple(p if then[m] == truth[k][m] else None for m, p in enumerate(pub)), 4)
        return out, moved

    def attack(self) -> dict:
        """The independent attacker over every vintage (with the truth of its night) and the current state,
        every pair of editions compared; returns the intervals of every unknown that is a hidden figure (or a
        moved one not yet published): exact where narrower than the threshold (Attack.bounds)."""
        att = Attack()
        eds: list[dict] = []
        moved: list[set] = []
        for e, mv in [self.edition(v, self.truth_of[v]) for v in sorted(self.truth_of)] + \
                [self.edition(None, self.now)]:
            if e not in eds:  # the current state is the latest vintage's when nothing waits
                eds.append(e)
                moved.append(mv)
        nums = [att.add(e) for e in eds]
        for i in range(len(eds)):
            for j in range(i + 1, len(eds)):
                att.same(nums[i], eds[i], nums[j], eds[j])
        # an unknown of an earlier edition whose figure is the current one is the current edition's unknown (same):
        # its interval is that one's; where the current edition publishes the figure, an earlier hidden one must not
        # be it (pinned), but a moved one -- the figure a revision then published -- is meant to be known
        last = eds[-1]

        def check(t: tuple) -> bool:
            i = nums.index(t[0])
            if i == len(eds) - 1 or t[1] not in last or last[t[1]][0][t[2]] != eds[i][t[1]][0][t[2]]:
                return True
            return last[t[1]][1][t[2]] is not None and (t[1], t[2]) not in moved[i]

        return att.bounds(GRAENSE, [t for t in att.var if check(t)])

    def exact_audit(self) -> list[int]:
        """The production's model of the same attacker (suppression.with_context), audited with both LPs of every
        unknown: the current true grid (a cell is known where a vintage published its present figure, else one
        unknown with every hidden version of that figure) beside every vintage.  Returns the pinned cells."""
        grid = grid_from(self.c, "SELECT * FROM mart_ydelser_fuld WHERE daekket")
        layers = []
        for (v,) in self.c.execute("SELECT vintage FROM meta.publikation ORDER BY 1").fetchall():
            data = self.c.execute(
                "SELECT periode_type, periode_start, geo_niveau, geo_kode, overordnet_geo_kode, ydelsesgruppe, "
                "uger_i_perioden, antal_personer, tilgang, afgang, ydelsesuger, h0, h1, h2 FROM "
                "meta.publikation_grundlag WHERE vintage = ? ORDER BY ALL", [v]).fetchall()
            layers.append(Layer([r[:7] for r in data], np.array([float(x) for r in data for x in r[7:11]]),
                                np.array([bool(r[11 + (m if m < 3 else 0)]) for r in data for m in range(NM)]),
                                v, False))
        p = with_context(grid, layers)
        hidden = p.start.copy()
        hidden[:grid.n] = ~p.known[:grid.n]
        return audit(p.values, hidden, p.constraints, exact=True).pinned(GRAENSE)


def assert_nothing_pinned(n: Nights) -> None:
    got = n.attack()
    assert got, "the attacker has unknowns"
    narrow = {k: v for k, v in got.items() if width(*v) < GRAENSE}
    assert not narrow, narrow
    assert n.exact_audit() == []


def test_a_closed_year_waits_for_the_months_revision_run_and_nothing_is_pinned_on_the_way(con):
    n = Nights(con)
    t1 = figures(5, MONTHS)
    assert n.load(t1, dt.date(2026, 3, 2)) > 0  # first publication: every year (none published before)
    assert n.log() == [(1, dt.date(2026, 3, 2), [2024, 2025, 2026], 4)]
    v1 = con.execute(f"SELECT * FROM ({vintage_sql(1)}) ORDER BY ALL").fetchall()
    pub1 = n.published()

    # (a) a correction of December 2025 (2025 closed: final and published): no vintage, cells unchanged, pending
    t2 = bump(t1, D25, "101", "dagpenge", (6, 1, 0, 12))
    assert n.load(t2, dt.date(2026, 3, 3)) == 0
    assert n.vintage() == 1 and n.published() == pub1
    assert pending_revisions(con) == [{"aar": 2025, "afventer_siden": dt.date(2026, 3, 3), "gaeldende_vintage": 1}]
    plan = publication.schedule(con, dt.date(2026, 3, 3))
    assert plan.years == [] and plan.afventer == [2025] and plan.deferred == [("maaned", D25)]
    assert_nothing_pinned(n)

    # (c) a correction of January 2026 (open: the current year) is republished the same night, 2025 still waits;
    # its audit holds 2025's current December (the corrected cell an unknown), not the published one
    t3 = bump(t2, J26, "253", "kontanthjaelp", (5, 5, 0, 10))
    assert n.load(t3, dt.date(2026, 3, 4)) > 0
    assert n.log()[-1] == (2, dt.date(2026, 3, 4), [2026], 1)
    assert con.execute("SELECT DISTINCT vintage FROM mart_ydelser_publiceret WHERE periode_start = ?",
                       [D25]).fetchall() == [(1,)]
    assert [r["aar"] for r in pending_revisions(con)] == [2025]
    lay = context_layers(con, [2026], moved=[2025])
    cur = next(ly for ly in lay if ly.current)
    j = cur.rows.index(("maaned", D25, "kommune", "101", "084", "dagpenge", 4))
    assert list(cur.values[NM * j:NM * j + NM]) == list(t3[(D25, "kommune", "101", "dagpenge")])
    assert cur.hidden[NM * j:NM * j + NM].all()  # moved since: the attacker does not know it
    stale = [ly for ly in lay if not ly.current and ("maaned", D25, "kommune", "101", "084", "dagpenge", 4) in ly.rows]
    assert len(stale) == 1  # the published December, as an earlier vintage
    k = stale[0].rows.index(("maaned", D25, "kommune", "101", "084", "dagpenge", 4))
    assert list(stale[0].values[NM * k:NM * k + NM]) == list(t1[(D25, "kommune", "101", "dagpenge")])
    assert_nothing_pinned(n)

    # an ordinary night in between: nothing moved, no vintage, still pending
    assert n.load(t3, dt.date(2026, 3, 5)) == 0 and n.vintage() == 2

    # (b) the first load of April is the revision run: exactly 2025's moved December is republished
    assert n.load(t3, dt.date(2026, 4, 1)) > 0
    assert n.log()[-1] == (3, dt.date(2026, 4, 1), [2025], 1)
    assert con.execute("SELECT DISTINCT periode_start, vintage FROM mart_ydelser_publiceret ORDER BY 1").fetchall() \
        == [(D24, 1), (J25, 1), (D25, 3), (J26, 2)]
    assert pending_revisions(con) == []
    cell = con.execute("SELECT antal_personer, antal_personer_diskretioneret FROM mart_ydelser_publiceret WHERE "
                       "periode_start = ? AND geo_niveau = 'land' AND ydelsesgruppe = 'i alt'", [D25]).fetchone()
    assert cell == (t3[(D25, "land", "000", "i alt")][0], False)  # the corrected national figure, published
    assert con.execute(f"SELECT * FROM ({vintage_sql(1)}) ORDER BY ALL").fetchall() == v1  # reproduced exactly
    assert con.execute("SELECT revideret, afventer FROM meta.publikation_koersel ORDER BY koersel").fetchall() == \
        [([], []), ([], [2025]), ([], [2025]), ([], [2025]), ([2025], [])]
    assert_nothing_pinned(n)


def test_two_pending_years_go_on_consecutive_revision_nights_oldest_first(con, monkeypatch):
    monkeypatch.setattr(publication, "MAX_AAR_PR_NAT", 1)
    n = Nights(con)
    t1 = figures(6, MONTHS)
    assert n.load(t1, dt.date(2026, 3, 30)) > 0
    t2 = bump(bump(t1, D24, "147", "kontanthjaelp", (4, 0, 2, 8)), D25, "259", "dagpenge", (-3, 0, 1, -3))
    assert n.load(t2, dt.date(2026, 3, 31)) == 0
    assert [r["aar"] for r in pending_revisions(con)] == [2024, 2025]
    from pipelines.warehouse import suppression

    seen: list = []

    def spy(c, years, moved=None, full_grid=suppression.FULL_GRID):
        out = real(c, years, moved, full_grid)
        seen.append((years, moved, out))
        return out

    real = suppression.context_layers
    monkeypatch.setattr(suppression, "context_layers", spy)
    assert n.load(t2, dt.date(2026, 4, 1)) > 0
    assert n.log()[-1] == (2, dt.date(2026, 4, 1), [2024], 1)
    # the audit of 2024 took its pending neighbour 2025 by its current figures: the corrected cell an unknown
    (years, moved, layers), = seen
    assert years == [2024] and moved == [2025]
    row = ("maaned", D25, "kommune", "259", "085", "dagpenge", 4)
    cur = [ly for ly in layers if ly.current and row in ly.rows]
    assert len(cur) == 1
    j = cur[0].rows.index(row)
    assert list(cur[0].values[NM * j:NM * j + NM]) == list(t2[(D25, "kommune", "259", "dagpenge")])
    assert cur[0].hidden[NM * j:NM * j + NM].all()
    assert [r["aar"] for r in pending_revisions(con)] == [2025]
    # a year corrected after the month's run opened waits for the next month; the backlog goes on
    t3 = bump(t2, J25, "101", "dagpenge", (2, 2, 0, 2))  # 2025 again: already in the backlog
    assert n.load(t3, dt.date(2026, 4, 2)) > 0
    assert n.log()[-1] == (3, dt.date(2026, 4, 2), [2025], 2)
    t4 = bump(t3, D24, "253", "dagpenge", (3, 0, 0, 3))
    assert n.load(t4, dt.date(2026, 4, 3)) == 0  # 2024 pending anew, not in the backlog of April's run
    assert [r["aar"] for r in pending_revisions(con)] == [2024]
    assert n.load(t4, dt.date(2026, 5, 4)) > 0 and n.log()[-1][2] == [2024]
    assert n.load(t4, dt.date(2026, 5, 5)) == 0 and n.vintage() == 4
    assert con.execute("SELECT antal_personer FROM mart_ydelser_publiceret WHERE periode_start = ? AND "
                       "geo_niveau = 'land' AND ydelsesgruppe = 'i alt'", [D24]).fetchone()[0] == \
        t4[(D24, "land", "000", "i alt")][0]


def test_a_forced_revision_and_the_nightly_cadence(con, monkeypatch):
    n = Nights(con)
    t1 = figures(7, MONTHS)
    assert n.load(t1, dt.date(2026, 3, 2)) > 0
    t2 = bump(t1, D24, "101", "kontanthjaelp", (5, 0, 0, 5))
    assert n.load(t2, dt.date(2026, 3, 3), revidere=[2025]) == 0  # 2025 has nothing pending: nothing revised
    assert n.load(t2, dt.date(2026, 3, 4), revidere=[2024]) > 0
    assert n.log()[-1] == (2, dt.date(2026, 3, 4), [2024], 1)
    monkeypatch.setattr(publication, "KADENCE_REVISION", "nat")
    t3 = bump(t2, J25, "147", "dagpenge", (4, 4, 0, 4))
    assert n.load(t3, dt.date(2026, 3, 5)) > 0 and n.log()[-1][2] == [2025]


def test_the_api_shows_a_pending_revision_and_dsdw_warehouse_revise_publishes_it(tmp_path):
    """An analyst sees in the table metadata that 2025's revision is pending while its figures stay vintage 1's;
    ``dsdw warehouse revise --aar 2025`` republishes it between loads and the notice goes."""
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from pipelines.api.app import create_app
    from pipelines.cli import app
    from pipelines.warehouse.build import _publish, build_path, published_path

    root = tmp_path / "root"
    build_path(root).parent.mkdir(parents=True)
    c = setup(duckdb.connect(str(build_path(root))))
    n = Nights(c)
    t1 = figures(8, MONTHS)
    n.load(t1, dt.date(2026, 3, 2))
    t2 = bump(t1, D25, "101", "dagpenge", (9, 0, 0, 9))
    assert n.load(t2, dt.date(2026, 3, 3)) == 0
    c.close()
    _publish(root, build_path(root))
    keys = tmp_path / "api_keys"
    keys.write_text("k-123\n", encoding="utf-8")

    client = TestClient(create_app(published_path(root), keys))  # one app: it reopens the file after a swap

    def meta() -> tuple[dict, list]:
        r = client.get("/api/v1/tables/ydelser_i_alt", headers={"X-API-Key": "k-123"})
        assert r.status_code == 200, r.text
        d = client.get("/api/v1/data/ydelser_i_alt", params={"periode": "2025M12", "omraade": "000"},
                       headers={"X-API-Key": "k-123"}).json()
        return r.json(), d["data"]

    m, data = meta()
    assert [(x["aar"], x["afventer_siden"], x["gaeldende_vintage"]) for x in m["revisioner_afventer"]] == \
        [(2025, "2026-03-03", 1)]
    assert m["revisioner_afventer"][0]["tekst"].startswith("En revision af 2025 afventer")
    assert data and {r[-1] for r in data} == {1}  # still vintage 1's December

    res = CliRunner().invoke(app, ["warehouse", "revise", "--aar", "2025", "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert "revised [2025]" in res.output
    m, data = meta()
    assert m["revisioner_afventer"] == []
    assert data and {r[-1] for r in data} == {2}
    c = duckdb.connect(str(published_path(root)), read_only=True)
    assert c.execute("SELECT vintage, aar FROM meta.publikation ORDER BY 1").fetchall() == [
        (1, [2024, 2025, 2026]), (2, [2025])]
    assert c.execute("SELECT antal_personer FROM mart_ydelser_publiceret WHERE periode_start = ? AND geo_niveau = "
                     "'land' AND ydelsesgruppe = 'i alt'", [D25]).fetchone()[0] == t2[(D25, "land", "000", "i alt")][0]
    c.close()
