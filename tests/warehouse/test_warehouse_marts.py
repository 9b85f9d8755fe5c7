"""Statistics marts: Jobindsats-style ydelses-figures, small-cell suppression, reporting timeliness.

Expected figures are computed by hand in the comments from the fixture spells, not copied from output.
ISO weeks used below (a week belongs to the month of its Thursday):
  Sep 2026: W36 (Aug 31-Sep 6) .. W39 (Sep 21-27)                 -> 4 weeks
  Oct 2026: W40 (Sep 28-Oct 4), W41 (5-11), W42 (12-18), W43 (19-25), W44 (Oct 26-Nov 1) -> 5 weeks
  Nov 2026: W45 (Nov 2-8), W46 (9-15), W47, W48 (23-29)           -> 4 weeks
  Dec 2026: W49 (Nov 30-Dec 6) .. W53 (Dec 28-Jan 3 2027)         -> 5 weeks; Q4 = 14 weeks, Q3 = 13 weeks
"""

from __future__ import annotations

import datetime as dt
import math
import random

import duckdb
import numpy as np
import pytest
from fixtures_wh import assert_mart_equals_full_recomputation, cpr_for, deliver, kg

from pipelines.warehouse import build, dbt_runner, stats
from pipelines.warehouse.build import load_warehouse, published_path
from pipelines.warehouse.stats import ydelser_for_months, ydelser_fuld, ydelser_model_body, ydelser_spand
from pipelines.warehouse.suppression import (
    GRAENSE,
    MAAL,
    MAAL_ALLE,
    NM,
    audit,
    grid_from,
    publish_suppressed,
    suppress,
    valid_directions,
)

L1, L2, L3 = dt.date(2027, 1, 4), dt.date(2027, 1, 5), dt.date(2027, 1, 6)
A, B, C, D, E, F, G = (cpr_for(dt.date(1970 + i, 3, 1 + i), i + 1, male=i % 2 == 0) for i in range(7))
OKT, NOV, SEP = dt.date(2026, 10, 1), dt.date(2026, 11, 1), dt.date(2026, 9, 1)
Q3, Q4 = dt.date(2026, 7, 1), dt.date(2026, 10, 1)


@pytest.fixture
def keydir(keydir, monkeypatch):
    """The area's fresh keys (conftest.py), with the publication hook, whether or not build.py registers it."""
    monkeypatch.setattr(build, "POST_MODEL_HOOKS", [publish_suppressed])
    return keydir


@pytest.fixture
def small_denmark(tmp_path, monkeypatch):
    """The warehouse's reference data with four kommuner in three regions (101, 147 in 084; 751 in 082; 461 in
    083): the published grid keeps the demo's shape (sparse, region level, every group and period) at a
    twentieth of its cells, so the end-to-end publication and its LP attack take seconds, not minutes."""
    import csv

    from pipelines.contracts import REFERENCE_DIR

    ref = tmp_path / "reference"
    ref.mkdir()
    for f in REFERENCE_DIR.iterdir():
        if f.name != "kommuner.csv":
            (ref / f.name).symlink_to(f)
    with (REFERENCE_DIR / "kommuner.csv").open(encoding="utf-8") as src, \
            (ref / "kommuner.csv").open("w", encoding="utf-8", newline="") as dst:
        r = csv.DictReader(src)
        w = csv.DictWriter(dst, fieldnames=r.fieldnames)
        w.writeheader()
        w.writerows(row for row in r if row["kode"] in ("101", "147", "751", "461"))
    # both readers of the code lists: the load's own SQL (build) and dbt's environment (dbt_runner: the models'
    # reference_csv() reads DSDW_REFERENCE_DIR); patching build alone left dbt building all 98 kommuner
    monkeypatch.setattr(build, "REFERENCE_DIR", ref)
    monkeypatch.setattr(dbt_runner, "REFERENCE_DIR", ref)
    return ref


def d(s: str | None) -> dt.date | None:
    return dt.date.fromisoformat(s) if s else None


# kontaktgruppe 1 = dagpenge, 24 = sygedagpenge, 2 and 3 = kontanthjaelp (dim_kontaktgruppe's ydelsesgruppe)
SPELLS_101 = [
    kg("a1", A, "1", "2026-09-15", "2026-10-10", "101", "2026-09-15"),   # crosses Sep/Oct and Q3/Q4
    kg("b1", B, "24", "2026-10-01", "2026-10-31", "101", "2026-10-01"),  # B: two overlapping benefits
    kg("b2", B, "2", "2026-10-20", None, "101", "2026-10-27"),
    kg("e1", E, "2", "2026-09-01", "2026-10-15", "101", "2026-09-01"),   # E: adjacent spells, same group,
]
SPELLS_147 = [
    kg("e2", E, "3", "2026-10-16", "2026-11-20", "147", "2026-10-16"),   # ... moving 101 -> 147: merged
    kg("c1", C, "1", "2026-10-28", "2026-11-03", "147", "2026-10-30"),   # its W44 crosses Oct/Nov
    kg("f1", F, "1", "2026-10-05", None, "147", "2026-10-05"),
]
SPELLS_751 = [kg("d1", D, "1", "2026-11-01", "2026-11-01", "751", "2026-11-01")]  # only Sunday Nov 1 (in W44)


def cells(con: duckdb.DuckDBPyConnection, where: str, table: str = "mart_ydelser") -> dict:
    rows = con.execute(f"SELECT geo_niveau, geo_kode, ydelsesgruppe, antal_personer, fuldtidspersoner, tilgang, "
                       f"afgang FROM {table} WHERE {where}").fetchall()
    return {(r[0], r[1], r[2]): (r[3], None if r[4] is None else round(r[4], 6), r[5], r[6]) for r in rows}


def cell(con: duckdb.DuckDBPyConnection, typ: str, start: dt.date, niveau: str, kode: str, grp: str) -> tuple:
    got = cells(con, f"periode_type = '{typ}' AND periode_start = DATE '{start}' AND geo_niveau = '{niveau}' "
                     f"AND geo_kode = '{kode}' AND ydelsesgruppe = '{grp}'")
    return got.get((niveau, kode, grp))


def test_ydelser_hand_computed_and_incremental_equals_full(tmp_path, keydir, small_denmark, monkeypatch):
    # the first build's full computation in three person buckets (stats.ydelser_fuld), as at national scale: the
    # hand-computed cells below are sums over persons that lie in different buckets
    monkeypatch.setenv("DSDW_YDELSER_SPAND", "3")
    root = tmp_path / "p"
    # the data foundation's first delivery (empty), 1 September 2026: periods from then on are covered
    deliver(root, "kontaktgruppe", SEP, [], reporter="101", source="first")
    deliver(root, "kontaktgruppe", L1, SPELLS_101, reporter="101")
    deliver(root, "kontaktgruppe", L1, SPELLS_147, reporter="147")
    deliver(root, "kontaktgruppe", L1, SPELLS_751, reporter="751")
    load_warehouse(root, L1)
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        # the warehouse was built with small_denmark's four kommuner (else the grid is the nation's, 25x the cells)
        assert con.execute("SELECT list(kommunekode ORDER BY kommunekode) FROM dim_kommune").fetchone()[0] == \
            ["101", "147", "461", "751"]
        okt = cells(con, f"periode_type = 'maaned' AND periode_start = DATE '{OKT}'")
        assert con.execute(f"SELECT DISTINCT uger_i_perioden, er_foreloebig FROM mart_ydelser WHERE periode_type = "
                           f"'maaned' AND periode_start = DATE '{OKT}'").fetchall() == [(5, False)]
        # (antal_personer, fuldtidspersoner, tilgang, afgang), October 2026:
        # 101 dagpenge: A (Sep 15-Oct 10): weeks W40, W41 -> 2/5; A's end Oct 10 is an afgang, its start is September's
        assert okt[("kommune", "101", "dagpenge")] == (1, 0.4, 0, 1)
        # 101 sygedagpenge: B (Oct 1-31): W40-W44 -> 5/5; starts and ends in October
        assert okt[("kommune", "101", "sygedagpenge")] == (1, 1.0, 1, 1)
        # 101 kontanthjaelp: B (Oct 20-open: W43, W44) + E (Sep 1-Oct 15: W40-W42) = 5/5 = 1.0; B counts fully here
        # too (no overlap treatment); tilgang B; E's Oct 15 end continues in 147 on Oct 16 (merged): no afgang
        assert okt[("kommune", "101", "kontanthjaelp")] == (2, 1.0, 1, 0)
        # 101 i alt: A, B, E; weeks A 2 + B 5 (W40-44 once, not syge + kontant) + E 3 = 10 -> 2.0; tilgang B (Oct 1),
        # afgang A (Oct 10); B's syge end Oct 31 is followed by kontanthjaelp: no afgang from "any state"
        assert okt[("kommune", "101", "i alt")] == (3, 2.0, 1, 1)
        # 147 dagpenge: C (Oct 28-Nov 3: W44 only in October) 1 + F (Oct 5-open: W41-W44) 4 = 5 -> 1.0
        assert okt[("kommune", "147", "dagpenge")] == (2, 1.0, 2, 0)
        # 147 kontanthjaelp: E (Oct 16-Nov 20: W42-W44) 3 -> 0.6; E's merged spell started Sep 1 (in 101): no tilgang
        assert okt[("kommune", "147", "kontanthjaelp")] == (1, 0.6, 0, 0)
        assert okt[("kommune", "147", "i alt")] == (3, 1.6, 2, 0)
        # 751 dagpenge: D is in the state only on Sunday Nov 1, which lies in W44 (Thursday Oct 29): a week of
        # October with the benefit (0.2 fuldtidspersoner) although D has no October day (antal 0)
        assert okt[("kommune", "751", "dagpenge")] == (0, 0.2, 0, 0)
        # region 084 (101 + 147) kontanthjaelp: B 2 + E's weeks W40-42 u W42-44 = 5 -> 7/5 = 1.4, not 5 + 3 = 8
        assert okt[("region", "084", "kontanthjaelp")] == (2, 1.4, 1, 0)
        # region 084 dagpenge: A 2 + C 1 + F 4 = 7 -> 1.4; tilgang C, F; afgang A
        assert okt[("region", "084", "dagpenge")] == (3, 1.4, 2, 1)
        # region 084 i alt: A 2 + B 5 + C 1 + E 5 + F 4 = 17 -> 3.4; tilgang B, C, F; afgang A
        assert okt[("region", "084", "i alt")] == (5, 3.4, 3, 1)
        assert okt[("region", "082", "dagpenge")] == (0, 0.2, 0, 0)
        # land: dagpenge A 2 + C 1 + F 4 + D 1 = 8 -> 1.6; i alt 17 + D 1 = 18 -> 3.6
        assert okt[("land", "000", "dagpenge")] == (3, 1.6, 2, 1)
        assert okt[("land", "000", "sygedagpenge")] == (1, 1.0, 1, 1)
        assert okt[("land", "000", "kontanthjaelp")] == (2, 1.4, 1, 0)
        assert okt[("land", "000", "i alt")] == (5, 3.6, 3, 1)
        # September (4 weeks): A (Sep 15-30) W38, W39 -> 0.5 (W40 is October's); E from Sep 1: W36-W39 -> 1.0
        assert cell(con, "maaned", SEP, "land", "000", "dagpenge") == (1, 0.5, 1, 0)
        assert cell(con, "maaned", SEP, "land", "000", "kontanthjaelp") == (1, 1.0, 1, 0)
        # Q3 (13 weeks): A W38, W39 -> 2/13; Q4 (14 weeks): A W40-41 (2), C W44-45 (2), D W44 (1), F W41-W53 (13)
        # = 18/14; persons A, C, D, F; tilgang C, D, F; afgang A (Oct 10), C (Nov 3), D (Nov 1)
        assert cell(con, "kvartal", Q3, "land", "000", "dagpenge") == (1, round(2 / 13, 6), 1, 0)
        assert cell(con, "kvartal", Q4, "land", "000", "dagpenge") == (4, round(18 / 14, 6), 3, 3)
        # November (4 weeks): C W45 (1; Nov 1 lies in October's W44), D none, F W45-48 (4) -> 5/4
        assert cell(con, "maaned", NOV, "land", "000", "dagpenge") == (3, 1.25, 1, 2)
        # reporting timeliness, KG-001 (§ 16, stk. 1: registered the day the spell starts), October starts:
        # 101: B syge lag 0, B kontant lag 7 -> 2 records, 1 in time, median 3.5; 147: C 2, E 0, F 0 -> median 0
        rt = {r[0]: r[1:] for r in con.execute(
            "SELECT indberetter, paragraf, poster, poster_rettidige, median_forsinkelse_dage FROM "
            "mart_indberetning_rettidighed WHERE regel_id = 'KG-001' AND maaned = DATE '2026-10-01'").fetchall()}
        assert rt == {"101": ("§ 16, stk. 1", 2, 1, 3.5), "147": ("§ 16, stk. 1", 3, 2, 0.0)}
        # published: no count < 5 survives; October 101 dagpenge (1 person) is hidden, with one flag
        pub = con.execute("SELECT antal_personer, antal_personer_diskretioneret, fuldtidspersoner FROM "
                          "mart_ydelser_publiceret WHERE periode_type = 'maaned' AND periode_start = DATE '2026-10-01' "
                          "AND geo_kode = '101' AND ydelsesgruppe = 'dagpenge'").fetchall()
        assert pub == [(None, True, None)]
        assert con.execute("SELECT count(*) FROM mart_ydelser_publiceret WHERE antal_personer < 5 OR tilgang < 5 "
                           "OR afgang < 5").fetchone()[0] == 0
        # only covered periods (beginning on or after the first delivery, 1 Sep 2026) are published, each with
        # the full grid: every kommune, region and land x every ydelsesgruppe and 'i alt', zeros included
        published = con.execute("SELECT DISTINCT periode FROM mart_ydelser_publiceret ORDER BY 1").fetchall()
        assert [p for (p,) in published] == ["2026K4", "2026M09", "2026M10", "2026M11", "2026M12", "2027",
                                             "2027K1", "2027M01"]
        n_geo, n_grp = con.execute("SELECT (SELECT count(*) + count(DISTINCT region_kode) + 1 FROM dim_kommune), "
                                   "(SELECT count(*) + 1 FROM dim_ydelsesgruppe)").fetchone()
        assert con.execute("SELECT count(*) FROM mart_ydelser_publiceret").fetchone()[0] == 8 * n_geo * n_grp
        assert con.execute("SELECT daekket, count(DISTINCT periode) FROM mart_ydelser_fuld GROUP BY 1 ORDER BY 1"
                           ).fetchall() == [(False, 2), (True, 8)]  # 2026K3 and 2026 begin before the data
        # a sparse grid: every kommune cell is hidden, the regions and hele landet are audited; the LP attacker on
        # everything published there pins no hidden cell (with the kommune cells as unknowns too: the slow
        # test_the_attack_with_every_kommune_cell_pins_nothing, and test_suppression_attacks.py's sparse grid)
        assert con.execute("SELECT count(*) FROM mart_ydelser_publiceret WHERE geo_niveau = 'kommune' AND NOT "
                           "(antal_personer_diskretioneret AND tilgang_diskretioneret AND afgang_diskretioneret)"
                           ).fetchone()[0] == 0
        got = attack(con, "SELECT * FROM mart_ydelser_fuld WHERE daekket AND geo_niveau <> 'kommune'",
                     "SELECT * FROM mart_ydelser_publiceret WHERE geo_niveau <> 'kommune'")
        assert len(got) > 500 and min(width(lo, hi) for lo, hi in got.values()) >= GRAENSE
        # the first publication is vintage 1, logged with its load
        assert con.execute("SELECT vintage, indlaest_dato, perioder FROM meta.publikation").fetchall() == [(1, L1, 8)]
    finally:
        con.close()
    assert assert_mart_equals_full_recomputation(root, L1) > 50

    # load 2: A's spell corrected: ends Nov 12 instead of Oct 10 (an update of an old spell)
    deliver(root, "kontaktgruppe", L2, [kg("a1", A, "1", "2026-09-15", "2026-11-12", "101", "2027-01-05", 2, "2")])
    # the marts are the subject of load 2: its suppressed publication is left to load 3, which republishes every
    # year loads 2 and 3 moved (audited with vintage 1 as context) -- one LP audit less in this test
    load_warehouse(root, L2, statistics=False)
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        # October dagpenge: A now W40-W44 (5) + C 1 + F 4 + D 1 = 11 -> 2.2; A's afgang moved to November
        assert cell(con, "maaned", OKT, "land", "000", "dagpenge") == (3, 2.2, 2, 0)
        # November: A (Nov 1-12: W45, W46) 2 + C 1 + F 4 = 7/4; persons A, C, D, F; afgang A, C, D
        assert cell(con, "maaned", NOV, "land", "000", "dagpenge") == (4, 1.75, 1, 3)
        # KG-002 (§ 16, stk. 2): the end (Nov 12) registered Jan 5 2027: 54 days late
        assert con.execute("SELECT poster, poster_rettidige, median_forsinkelse_dage FROM mart_indberetning_rettidighed "
                           "WHERE regel_id = 'KG-002' AND maaned = DATE '2026-11-01'").fetchall() == [(1, 0, 54.0)]
    finally:
        con.close()
    assert_mart_equals_full_recomputation(root, L2)

    # load 3: D's spell (Sunday Nov 1) deleted: the runner marks November only, but October's W44 held D's day
    deliver(root, "kontaktgruppe", L3, [kg("d1", D, "1", "2026-11-01", "2026-11-01", "751", "2027-01-06", 2, "3")],
            reporter="751")
    load_warehouse(root, L3)
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        assert cell(con, "maaned", OKT, "land", "000", "dagpenge") == (3, 2.0, 2, 0)   # 11 - D's week = 10 -> 2.0
        assert cell(con, "maaned", OKT, "region", "082", "dagpenge") is None
        assert cell(con, "maaned", NOV, "land", "000", "dagpenge") == (3, 1.75, 0, 2)  # A, C, F; afgang A, C
        # superseded computations are gone: one computation per period; load 3 published vintage 2
        assert con.execute("SELECT vintage, indlaest_dato FROM meta.publikation ORDER BY 1").fetchall() == \
            [(1, L1), (2, L3)]
        assert con.execute("SELECT count(*) FROM (SELECT DISTINCT periode_type, periode_start, indlaesning_nr "
                           "FROM mart_ydelser_beregning) GROUP BY periode_type, periode_start HAVING count(*) > 1"
                           ).fetchall() == []
    finally:
        con.close()
    assert_mart_equals_full_recomputation(root, L3)


@pytest.mark.slow
def test_the_attack_with_every_kommune_cell_pins_nothing(tmp_path, keydir, small_denmark):
    """The first publication of the hand-computed test, attacked with every cell of the grid as an unknown:
    kommune cells included (the sparse-grid rule's argument, suppression.choose_grid_hidden).  Slow: the
    attacker's LPs span every kommune cell of eight linked periods."""
    root = tmp_path / "p"
    deliver(root, "kontaktgruppe", SEP, [], reporter="101", source="first")
    deliver(root, "kontaktgruppe", L1, SPELLS_101, reporter="101")
    deliver(root, "kontaktgruppe", L1, SPELLS_147, reporter="147")
    deliver(root, "kontaktgruppe", L1, SPELLS_751, reporter="751")
    load_warehouse(root, L1)
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        got = attack(con, "SELECT * FROM mart_ydelser_fuld WHERE daekket", "SELECT * FROM mart_ydelser_publiceret")
        assert any(k[0] == "101" for k in got) and min(width(lo, hi) for lo, hi in got.values()) >= GRAENSE
    finally:
        con.close()


def test_horizon_moves_without_new_data_and_timeliness_retraction(tmp_path, keydir):
    """Loads with no new spells still move the open periods (open spell, begun weeks, month rollover)."""
    root = tmp_path / "p"
    day = dt.date(2026, 10, 29)
    deliver(root, "kontaktgruppe", day, [kg("g1", G, "1", "2026-10-26", None, "101", "2026-10-26")])
    sam = [{"samtale_id": f"33333333-0000-4000-8000-00000000000{i}", "cpr": G, "kommunekode": "101",
            "samtaledato": dt.date(2026, 10, 5 + i), "registreringsdato": dt.date(2026, 10, 5 + i) + dt.timedelta(lag),
            "samtaletype": "1", "samtaleform": "1"} for i, lag in enumerate((0, 3, 9))]
    deliver(root, "samtale", day, sam, source="s")
    load_warehouse(root, day)
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        # Thursday Oct 29: October's weeks begun are W40-W44 (5); G (from Monday Oct 26) has W44 -> 0.2, preliminary
        assert con.execute("SELECT antal_personer, fuldtidspersoner, tilgang, uger_i_perioden, er_foreloebig FROM "
                           "mart_ydelser WHERE periode_type = 'maaned' AND periode_start = DATE '2026-10-01' "
                           "AND geo_niveau = 'land' AND ydelsesgruppe = 'dagpenge'").fetchall() == [(1, 0.2, 1, 5, True)]
        # samtale lags 0, 3, 9: SAM-002 (max 7 days, § 25, stk. 2) 2 of 3 in time; SAM-003 (same day) 1; median 3
        rt = con.execute("SELECT regel_id, paragraf, poster, poster_rettidige, median_forsinkelse_dage FROM "
                         "mart_indberetning_rettidighed WHERE dataset = 'samtale' ORDER BY 1").fetchall()
        assert rt == [("SAM-002", "§ 25, stk. 2", 3, 2, 3.0), ("SAM-003", "§ 23, stk. 3", 3, 1, 3.0)]
    finally:
        con.close()
    assert_mart_equals_full_recomputation(root, day)
    # the samtale payload is re-delivered corrected (lags 0, 1): the old rows are retracted from the histogram
    deliver(root, "samtale", day, [dict(sam[0]), dict(sam[1], registreringsdato=dt.date(2026, 10, 7))], source="s")
    for h in (dt.date(2026, 11, 1), dt.date(2026, 11, 2)):
        r = load_warehouse(root, h)
        assert r.affected_maaneder == 0  # no spell changed: only the horizon moved
        assert_mart_equals_full_recomputation(root, h)
        if h.day == 1:
            # Sunday Nov 1: November has begun (G in it: antal 1) but none of its weeks (W45 starts Monday
            # Nov 2; Nov 1 lies in October's W44): 0 weeks, fuldtidspersoner undefined (NULL)
            con = duckdb.connect(str(published_path(root)), read_only=True)
            try:
                assert cell(con, "maaned", NOV, "land", "000", "dagpenge") == (1, None, 0, 0)
                assert con.execute("SELECT DISTINCT uger_i_perioden FROM mart_ydelser WHERE periode_type = 'maaned' "
                                   "AND periode_start = DATE '2026-11-01'").fetchall() == [(0,)]
            finally:
                con.close()
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        q = ("SELECT periode_type, periode_start, antal_personer, round(fuldtidspersoner, 6), uger_i_perioden, "
             "er_foreloebig FROM mart_ydelser WHERE geo_niveau = 'land' AND ydelsesgruppe = 'dagpenge' ORDER BY 1, 2")
        # at Monday Nov 2: October is final (its last week ended Sunday Nov 1); November has begun W45 (1 week, G
        # in it -> 1.0); Q4 W40-W45 = 6 weeks, G in W44, W45 -> 2/6; the year 2026 has weeks W1-W45 begun
        assert con.execute(q).fetchall() == [
            ("aar", dt.date(2026, 1, 1), 1, round(2 / 45, 6), 45, True),
            ("kvartal", Q4, 1, round(2 / 6, 6), 6, True),
            ("maaned", OKT, 1, 0.2, 5, False),
            ("maaned", NOV, 1, 1.0, 1, True)]
        rt = con.execute("SELECT regel_id, poster, poster_rettidige, median_forsinkelse_dage FROM "
                         "mart_indberetning_rettidighed WHERE dataset = 'samtale' ORDER BY 1").fetchall()
        assert rt == [("SAM-002", 2, 2, 0.5), ("SAM-003", 2, 1, 0.5)]
    finally:
        con.close()


# ---------------------------------------------------------------- suppression against an LP attacker

def table(con: duckdb.DuckDBPyConnection, rows: list[tuple], name: str = "t") -> str:
    """rows: (geo_niveau, geo_kode, overordnet, ydelsesgruppe, antal, tilgang, afgang[, periode_type, start])."""
    con.execute(f"CREATE OR REPLACE TABLE {name} (periode_type VARCHAR, periode_start DATE, geo_niveau VARCHAR, "
                "geo_kode VARCHAR, overordnet_geo_kode VARCHAR, ydelsesgruppe VARCHAR, antal_personer BIGINT, "
                "fuldtidspersoner DOUBLE, tilgang BIGINT, afgang BIGINT)")
    con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [[*(r[7:9] if len(r) > 7 else ("maaned", OKT)), *r[:4], r[4], r[4] * 0.5, r[5], r[6]]
                     for r in rows])
    return f"SELECT * FROM {name}"


def attack(con: duckdb.DuckDBPyConnection, truth: str, published: str, exact: bool = False) -> dict:
    """The attacker: from the published cells (NULL = hidden) and every relation, each hidden cell's interval
    (``exact``: both LPs solved for every cell; else until the cell is shown to span the threshold by points
    consistent with the published data).  Returns {(geo_kode, ydelsesgruppe, maal, periode_type): (lo, hi)}."""
    g = grid_from(con, truth)
    pub = {(r[0], r[1], r[2], r[3], r[4]): r[5:] for r in con.execute(
        f"SELECT periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe, antal_personer, tilgang, afgang "
        f"FROM ({published})").fetchall()}
    assert len(pub) == len(g.rows), "every cell of the grid is published (a missing row reveals a zero)"
    # fuldtidspersoner (ydelsesuger) is hidden with antal_personer
    hidden = np.array([pub[(r[0], r[1], r[2], r[3], r[5])][m % 3 if m < 3 else 0] is None for r in g.rows
                       for m in range(NM)])
    # the attacker's own certificates: 'one more person' directions (checked against every relation) and no
    # cap on per-cell LPs
    dirs = valid_directions(len(g.values), g.constraints, g.directions)
    res = audit(g.values, hidden, g.constraints, exact=exact, dirs=dirs, per_cell=None)
    return {(g.rows[i // NM][3], g.rows[i // NM][5], MAAL_ALLE[i % NM], g.rows[i // NM][0]): (res.lo[i], res.hi[i])
            for i in res.lo}


def width(lo: float, hi: float) -> float:
    return math.inf if math.isinf(hi) else math.floor(hi + 1e-6) - math.ceil(lo - 1e-6)


def region_082(con: duckdb.DuckDBPyConnection) -> str:
    """Issue 13's example: region 082 kontanthjaelp 330, published kommuner 318, three hidden cells of 4.
    Regions and land are the sums of their kommuner (tilgang/afgang are additive over geography)."""
    vals = {"751": 100, "727": 118, "730": 100, "741": 4, "740": 4, "746": 4}
    kom = {}
    for k, v in vals.items():
        kt, ka = (2, 1) if v == 4 else (9, 6)
        kom[(k, "kontanthjaelp")] = (v, kt, ka)
        kom[(k, "dagpenge")] = (60 + v, 10 + v % 7, 2)
        kom[(k, "i alt")] = (2 * v + 60, kt + 10 + v % 7, ka + 2)
    rows = [("kommune", k, "082", y, *v) for (k, y), v in kom.items()]
    for y in ("kontanthjaelp", "dagpenge", "i alt"):
        tot = tuple(sum(v[m] for (k, yy), v in kom.items() if yy == y) for m in range(3))
        rows += [("region", "082", "000", y, *tot), ("land", "000", None, y, *tot)]
    assert ("region", "082", "000", "kontanthjaelp", 330, 33, 21) in rows
    return table(con, rows)


def test_the_subtraction_attack_of_issue_13_pins_nothing():
    con = duckdb.connect()
    src = region_082(con)
    # the old rule (primaries known to be 0-4, group rule only): 330 - 318 = 12 = 3 x 4 pinned them all; with the
    # primary cells alone hidden, the LP attacker reads each one off exactly
    g = grid_from(con, src)
    only_primary = g.values < GRAENSE
    res = audit(g.values, only_primary, g.constraints, exact=True)
    assert res.pinned() and all(res.width(i) < GRAENSE for i in res.pinned())
    out = suppress(con, src)
    con.execute(f"CREATE TABLE pub AS SELECT * FROM {out.alias}")
    got = attack(con, src, "SELECT * FROM pub")
    assert got and all(width(lo, hi) >= GRAENSE for lo, hi in got.values()), got
    for k in ("741", "740", "746"):
        assert (f"{k}", "kontanthjaelp", "antal_personer", "maaned") in got
    # one flag, never which cells were primary
    cols = [d[0] for d in con.execute("SELECT * FROM pub").description]
    assert "antal_personer_diskretioneret" in cols and not any("primær" in c or c[-10:] == "diskretion" for c in cols)
    assert con.execute("SELECT count(*) FROM pub WHERE antal_personer < 5 OR tilgang < 5 OR afgang < 5").fetchone()[0] == 0
    # the integer attacker (scipy's MILP) narrows no hidden cell below the threshold either
    hidden = np.array([v is None for r in con.execute(
        "SELECT antal_personer, tilgang, afgang, antal_personer FROM pub ORDER BY periode_type, periode_start, "
        "geo_niveau, geo_kode, overordnet_geo_kode, ydelsesgruppe").fetchall() for v in r])
    for i in np.flatnonzero(hidden)[:12]:
        assert integer_width(g, hidden, int(i)) >= GRAENSE


def integer_width(g, hidden: np.ndarray, i: int) -> float:
    """max - min of hidden cell i over the integer points consistent with the published cells (HiGHS MILP)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    idx = np.flatnonzero(hidden)
    pos = {int(c): k for k, c in enumerate(idx)}
    rows, lo, hi = [], [], []
    for c in g.constraints:
        h = hidden[c.cells]
        if not h.any():
            continue
        row = np.zeros(len(idx))
        for x, a in zip(c.cells[h], c.coefs[h], strict=True):
            row[pos[int(x)]] = a
        rhs = c.rhs - float(c.coefs[~h] @ g.values[c.cells[~h]])
        rows.append(row)
        lo.append(rhs if c.eq else -np.inf)
        hi.append(rhs)
    cons = LinearConstraint(np.array(rows), lo, hi)
    obj = np.zeros(len(idx))
    vals = []
    for sign in (1.0, -1.0):
        obj[pos[i]] = sign
        r = milp(obj, constraints=cons, integrality=np.ones(len(idx)), bounds=Bounds(0, 10**6))
        assert r.status == 0
        vals.append(r.x[pos[i]])
    return vals[1] - vals[0]


def test_a_hidden_rectangle_with_small_margins_is_widened():
    """Four hidden cells of a 2 x 2 rectangle (two kommuner x two groups) with published margins: x11 = t,
    x12 = a - t, ... with t in [max(0, c - b), min(a, c)].  With a = 3 the rectangle pins t to 0..3: the
    group rule accepts it (two hidden in every row and column), the LP audit does not."""
    con = duckdb.connect()
    grid = {"101": {"dagpenge": 0, "kontanthjaelp": 3, "sygedagpenge": 40},
            "147": {"dagpenge": 2, "kontanthjaelp": 1, "sygedagpenge": 50},
            "151": {"dagpenge": 30, "kontanthjaelp": 30, "sygedagpenge": 30}}
    rows = []
    for k, gs in grid.items():
        rows += [("kommune", k, "084", y, a, a // 2, a // 3) for y, a in gs.items()]
        rows.append(("kommune", k, "084", "i alt", sum(gs.values()), sum(a // 2 for a in gs.values()),
                     sum(a // 3 for a in gs.values())))
    for y in ("dagpenge", "kontanthjaelp", "sygedagpenge", "i alt"):
        rows.append(("region", "084", "000", y, *(sum(r[4 + m] for r in rows if r[3] == y) for m in range(3))))
    src = table(con, rows)
    g = grid_from(con, src)
    res = audit(g.values, g.values < GRAENSE, g.constraints, exact=True)
    assert res.pinned(), "the primary pattern alone is attackable"
    out = suppress(con, src)
    con.execute(f"CREATE TABLE pub AS SELECT * FROM {out.alias}")
    got = attack(con, src, "SELECT * FROM pub")
    assert all(width(lo, hi) >= GRAENSE for lo, hi in got.values()), got
    # the 0-4 cells are all hidden; large published cells stay published where possible
    assert {k[:2] for k, v in got.items() if k[2] == "antal_personer"} >= {
        ("101", "dagpenge"), ("101", "kontanthjaelp"), ("147", "dagpenge"), ("147", "kontanthjaelp")}


def test_months_quarter_and_flows_are_relations_too():
    """A month's hidden cell is bounded by its published quarter (antal: month <= quarter), the quarter by
    its months (quarter <= sum of months) and a flow by its antal: the attacker uses them, so the audit does."""
    con = duckdb.connect()
    k101 = {"maaned-10": (3, 1, 0), "maaned-11": (20, 10, 10), "maaned-12": (22, 10, 10), "kvartal-10": (25, 15, 12)}
    k147 = {"maaned-10": (50, 10, 10), "maaned-11": (50, 10, 10), "maaned-12": (50, 10, 10),
            "kvartal-10": (60, 25, 25)}
    rows = []
    for key, a in k101.items():
        pt, mon = key.split("-")
        start = dt.date(2026, int(mon), 1)
        b = k147[key]
        rows += [("kommune", "101", "084", "i alt", *a, pt, start), ("kommune", "147", "084", "i alt", *b, pt, start),
                 ("region", "084", "000", "i alt", *(x + y for x, y in zip(a, b, strict=True)), pt, start)]
    src = table(con, rows)
    g = grid_from(con, src)
    assert any(c.why == "tid" for c in g.constraints) and any(c.why == "flow" for c in g.constraints)
    out = suppress(con, src)
    con.execute(f"CREATE TABLE pub AS SELECT * FROM {out.alias}")
    got = attack(con, src, "SELECT * FROM pub", exact=True)
    assert all(width(lo, hi) >= GRAENSE for lo, hi in got.values()), got
    # October 101 (3 persons) is hidden; geography alone allows 0..53, the published quarter (25 persons) caps the
    # month at 25, November's stock less its tilgang bounds it below, and its weeks (ydelsesuger, additive over
    # the quarter's months) would pin it if the other months' weeks and the quarter's were all published
    lo, hi = got[("101", "i alt", "antal_personer", "maaned")]
    assert lo >= 0 and hi <= 25 and width(lo, hi) >= GRAENSE
    assert ("101", "i alt", "ydelsesuger", "maaned") in got


def test_random_tables_pin_no_cell():
    rng = random.Random(7)
    con = duckdb.connect()
    regions = {"081": ["773", "787", "810"], "084": ["101", "147", "151", "153"], "082": ["751", "727"]}
    grps = ["dagpenge", "kontanthjaelp", "sygedagpenge", "fleksjob"]
    for _ in range(4):
        rows = []
        tot: dict = {}
        for r, ks in regions.items():
            for k in ks:
                vals = {}
                for y in grps:
                    a = rng.choice([0, 1, 2, 4, 5, 6, 9, 15, 40, 120])
                    vals[y] = (a, rng.randint(0, a), rng.randint(0, a))
                # a person in two groups counts once in 'i alt': the groups overlap by one in kommune 101
                vals["i alt"] = tuple(sum(v[m] for v in vals.values()) for m in range(3))
                if k == "101" and min(vals["i alt"][0] - vals["i alt"][1], vals["i alt"][0] - vals["i alt"][2]) > 0:
                    vals["i alt"] = (vals["i alt"][0] - 1, *vals["i alt"][1:])
                for y, v in vals.items():
                    rows.append(("kommune", k, r, y, *v))
                    tot[(r, y)] = tuple(a + b for a, b in zip(tot.get((r, y), (0, 0, 0)), v, strict=True))
        for (r, y), v in tot.items():
            rows.append(("region", r, "000", y, *v))
        for y in grps + ["i alt"]:
            rows.append(("land", "000", None, y, *(sum(tot[(r, y)][m] for r in regions) for m in range(3))))
        src = table(con, rows)
        out = suppress(con, src)
        con.execute(f"CREATE OR REPLACE TABLE pub AS SELECT * FROM {out.alias}")
        got = attack(con, src, "SELECT * FROM pub")
        assert got and all(width(lo, hi) >= GRAENSE for lo, hi in got.values())
        for m in MAAL:
            assert con.execute(f"SELECT count(*) FROM pub JOIN t USING (geo_niveau, geo_kode, ydelsesgruppe) "
                               f"WHERE t.{m} < 5 AND NOT pub.{m}_diskretioneret").fetchone()[0] == 0
            assert con.execute(f"SELECT count(*) FROM pub WHERE {m} < 5").fetchone()[0] == 0


def test_random_corrections_keep_the_nightly_delta_equal_to_the_full_computation(tmp_path, keydir, small_denmark):
    """The nightly mart moves cells by delta (stats.maintain_ydelser); after every load of a random sequence of
    new, corrected (dates, kommune, group, even the person), deleted, future and re-delivered spells, with load
    dates crossing ISO weeks, months and a quarter and two loads on one day, it equals the full computation."""
    rng = random.Random(11)
    root = tmp_path / "p"
    persons = [cpr_for(dt.date(1960 + i, 1 + i % 12, 1 + i), 40 + i, male=i % 2 == 0) for i in range(10)]
    kommuner, groups = ["101", "147", "751", "461"], ["1", "2", "3", "24"]
    records: dict[str, dict] = {}   # key -> current row (None once deleted)
    versions: dict[str, int] = {}
    n = 0

    def spell(day: dt.date) -> tuple[str, str | None]:
        start = day + dt.timedelta(days=rng.randint(-420, 12))          # some start after the load date
        end = None if rng.random() < 0.35 else start + dt.timedelta(days=rng.randint(0, 200))  # some end after it
        return start.isoformat(), end.isoformat() if end else None

    def ops(day: dt.date, k: int) -> list[dict]:
        nonlocal n
        rows = []
        for _ in range(k):
            live = [x for x, r in records.items() if r is not None]
            r = rng.random()
            if r < 0.4 or not live:
                n += 1
                key = f"{n:x}"
                start, end = spell(day)
                row = kg(key, rng.choice(persons), rng.choice(groups), start, end, rng.choice(kommuner),
                         day.isoformat())
                versions[key] = 1
            else:
                key = rng.choice(live)
                versions[key] += 1
                old = dict(records[key])
                if r < 0.55:
                    row = dict(old, version=versions[key], aendringstype="3", registreringsdato=day)
                else:
                    change = rng.choice(["start", "end", "kommune", "group", "person", "open"])
                    start, end = spell(day)
                    upd = {"start": {"startdato": d(start)}, "end": {"slutdato": d(end) if end else None},
                           "kommune": {"kommunekode": rng.choice(kommuner)},
                           "group": {"kontaktgruppe": rng.choice(groups)}, "person": {"cpr": rng.choice(persons)},
                           "open": {"slutdato": None}}[change]
                    row = dict(old, **upd, version=versions[key], aendringstype="2", registreringsdato=day)
                    if row["slutdato"] is not None and row["slutdato"] < row["startdato"]:
                        row["slutdato"] = row["startdato"]
            records[row["kontaktgruppe_id"][-12:].lstrip("0") or "0"] = None if row["aendringstype"] == "3" else row
            rows.append(row)
        return rows

    day = dt.date(2026, 9, 24)  # Thursday; the steps cross weeks, months and the end of Q3
    for step, gap in enumerate([0, 1, 3, 1, 4, 0, 7, 2, 0, 9]):
        day += dt.timedelta(days=gap)
        rows = ops(day, 14 if step == 0 else rng.randint(2, 7))
        if gap == 0 and step:
            # the same day again: a corrected re-delivery of the day's payload (the first one is retracted)
            deliver(root, "kontaktgruppe", day, rows + ops(day, 2), source=f"s{day}")
        else:
            deliver(root, "kontaktgruppe", day, rows, source=f"s{day}")
        # the delta is the subject here: the suppressed publication (tested in test_suppression_attacks.py and
        # the vintage tests) runs only at the last load, which republishes every year the others moved
        r = load_warehouse(root, day, statistics=step == 9)
        assert r.retracted == (1 if gap == 0 and step else 0)
        assert assert_mart_equals_full_recomputation(root, day) > 20
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        # the later loads rewrote only the periods they moved: some periods still hold an early computation
        nrs = con.execute("SELECT min(indlaesning_nr), max(indlaesning_nr) FROM mart_ydelser_beregning").fetchone()
        assert nrs[0] < nrs[1] == step + 1
    finally:
        con.close()


def test_tilgang_and_afgang_are_placed_where_the_merged_spell_starts_and_ends():
    """docs/statistics.md: a tilgang (afgang) is placed in the kommune of the spell that starts (ends) the merged
    spell; a person entering (leaving) twice in a period counts once, at the first entry (last exit).  The old
    code took the lowest kommunekode among the spells, which differs for both persons below."""
    con = duckdb.connect()
    con.execute("CREATE TABLE dim_kommune AS SELECT * FROM (VALUES ('101', '084'), ('147', '084'), ('751', '082')) "
                "t(kommunekode, region_kode)")
    con.execute("""CREATE TABLE s AS SELECT * FROM (VALUES
        ('p', '751', 'dagpenge', DATE '2026-10-05', DATE '2026-10-10'),   -- p enters in 751 first ...
        ('p', '101', 'dagpenge', DATE '2026-10-20', DATE '2026-10-25'),   -- ... and again in 101, last exit 101
        ('q', '101', 'dagpenge', DATE '2026-10-03', DATE '2026-10-08'),   -- q enters in 101, leaves 101 ...
        ('q', '751', 'dagpenge', DATE '2026-10-12', DATE '2026-10-28'),   -- ... re-enters 751, last exit 751
        ('r', '147', 'dagpenge', DATE '2026-09-01', DATE '2026-10-15'),   -- r moves 147 -> 751 without a gap:
        ('r', '751', 'dagpenge', DATE '2026-10-16', DATE '2026-10-30')    -- one merged spell, afgang in 751
        ) t(person_key, kommunekode, ydelsesgruppe, startdato, slutdato)""")
    rel = ydelser_for_months(con, "SELECT * FROM s", [OKT], dt.date(2026, 12, 31))
    got = {(r[0], r[1]): (r[2], r[3]) for r in rel.filter("periode_type = 'maaned' AND geo_niveau = 'kommune' "
                                                           "AND ydelsesgruppe = 'dagpenge'")
           .select("geo_kode, periode, tilgang, afgang").fetchall()}
    # tilgang: p at 751 (first entry), q at 101; r entered in September; afgang: p 101, q 751, r 751
    assert got == {("101", "2026M10"): (1, 1), ("147", "2026M10"): (0, 0), ("751", "2026M10"): (1, 2)}
    # regions follow their kommune: 082 (751) and 084 (101, 147); flows add up over geography
    reg = dict(rel.filter("periode_type = 'maaned' AND geo_niveau <> 'kommune' AND ydelsesgruppe = 'dagpenge'")
               .select("geo_kode, (tilgang, afgang)").fetchall())
    assert reg == {"082": (1, 2), "084": (1, 1), "000": (2, 3)}


def test_the_full_computation_in_person_buckets_equals_one_pass(monkeypatch):
    """stats.ydelser_fuld sums the cells of disjoint person buckets (pid % N): every measure is a sum over
    persons, so the rows equal the one-pass computation's -- also a person's tilgang/afgang placed by its own
    spells in two kommuner, a spell without a person (left out) and the all-zero row of an empty period."""
    con = duckdb.connect()
    con.execute("CREATE TABLE dim_kommune AS SELECT * FROM (VALUES ('101', '084'), ('147', '084'), ('751', '082')) "
                "t(kommunekode, region_kode)")
    con.execute("CREATE SCHEMA meta")
    con.execute("CREATE TABLE meta.load AS SELECT 1 AS load_id")
    con.execute("""CREATE TABLE fct_ydelsesforloeb AS SELECT * FROM (VALUES
        ('p', '751', 'dagpenge', DATE '2026-10-05', DATE '2026-10-10'),
        ('p', '101', 'dagpenge', DATE '2026-10-20', DATE '2026-10-25'),
        ('q', '101', 'dagpenge', DATE '2026-10-03', DATE '2026-10-08'),
        ('q', '751', 'kontanthjaelp', DATE '2026-10-12', NULL),
        ('r', '147', 'dagpenge', DATE '2026-08-01', DATE '2026-10-15'),
        ('r', '751', 'dagpenge', DATE '2026-10-16', DATE '2026-10-30'),
        ('s', '147', 'sygedagpenge', DATE '2026-06-01', DATE '2026-06-30'),
        ('t', '101', 'dagpenge', DATE '2026-03-02', DATE '2026-03-10'),
        (NULL, '101', 'dagpenge', DATE '2026-10-01', NULL)
        ) t(person_key, kommunekode, ydelsesgruppe, startdato, slutdato)""")
    con.execute("SET VARIABLE load_date = DATE '2026-12-15'")
    one = con.execute(ydelser_model_body()).fetchall()
    for n in (2, 3, 5):
        rows = con.execute(ydelser_fuld(con, n)).fetchall()
        assert sorted(rows, key=repr) == sorted(one, key=repr), n
    # the persons numbered once (p..t: 1..5; the spell without a person has no number, in no bucket)
    assert con.execute("SELECT list(DISTINCT person_key ORDER BY person_key) FROM ys_forloeb_nr "
                       "WHERE person_key IS NOT NULL").fetchone()[0] \
        == [1, 2, 3, 4, 5]
    got = {(r[1], r[2], r[5], r[6], r[7]): (r[8], r[10], r[11], r[13]) for r in rows}
    okt, jul, apr = dt.date(2026, 10, 1), dt.date(2026, 7, 1), dt.date(2026, 4, 1)
    # October, land, i alt (antal, tilgang, afgang, ydelsesuger): p, q, r (in different buckets); tilgang p (Oct 5)
    # and q (Oct 3; again Oct 12: once); afgang p, q (Oct 8, a gap before Oct 12) and r (Oct 30); weeks W40-W44:
    # p 2 (W41, W43), q 5, r 5
    assert got[("maaned", okt, "land", "000", "i alt")] == (3, 2, 3, 12)
    # 751 dagpenge: p (first entry in 751, last exit in 101: W41) and r (W42-W44; its merged spell started in 147 in
    # August: no tilgang; its afgang Oct 30 is placed in 751)
    assert got[("maaned", okt, "kommune", "751", "dagpenge")] == (2, 1, 1, 4)
    # July: no day in a state, but s's June 29-30 lie in W27 (Thursday July 2) and r's August 1 in W31 (Thursday
    # July 30), two of July's weeks
    assert got[("maaned", jul, "land", "000", "i alt")] == (0, 0, 0, 2)
    # April: nobody (t ended March 10): the period's one all-zero row
    assert [k for k in got if k[:2] == ("maaned", apr)] == [("maaned", apr, "land", "000", "i alt")]
    assert got[("maaned", apr, "land", "000", "i alt")] == (0, 0, 0, 0)
    # the number of buckets grows with the period x spell rows over the memory limit
    con.execute("SET memory_limit = '10GB'")
    assert ydelser_spand(con) == 1
    # 64MB, not less: the in-memory database's own tables count against the limit (1MB ran out of memory, 2026-12-05)
    con.execute("SET memory_limit = '64MB'")
    monkeypatch.setattr(stats, "BYTES_PER_PF_RAEKKE", 10**7)
    n = ydelser_spand(con)
    monkeypatch.setattr(stats, "BYTES_PER_PF_RAEKKE", 2 * 10**7)
    assert 1 < n < ydelser_spand(con)
    monkeypatch.setenv("DSDW_YDELSER_SPAND", "4")
    assert ydelser_spand(con) == 4
    # one rule for every person-bucket build (stats.spand_sql): rows x bytes over half of memory_limit, read in SQL;
    # the panel scope's dbt macro (dbt/macros/spand.sql) is generated from it and renders the same SQL
    monkeypatch.delenv("DSDW_YDELSER_SPAND")
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]  # e.g. '61.0 MiB'
    tal, enhed = limit.split()
    bytes_limit = float(tal) * {"KiB": 1024, "MiB": 1024**2, "MB": 10**6, "kB": 10**3}[enhed]
    assert con.execute(stats.spand_sql("12345", 400)).fetchone()[0] == math.ceil(12345 * 400 / (0.5 * bytes_limit))
    assert con.execute(stats.spand_sql("1", 1)).fetchone()[0] == 1  # never fewer than one bucket
    con.execute("SET memory_limit = '2GiB'")
    assert con.execute(stats.spand_sql("10000000", 400)).fetchone()[0] == math.ceil(4e9 / (0.5 * 2 * 2**30))  # 2 GiB
    import jinja2

    macro = jinja2.Environment().from_string(stats.dbt_spand_macro()).module.dsdw_spand_sql
    for navn, b in (("panel", stats.BYTES_PER_UGE_RAEKKE), ("ydelser", stats.BYTES_PER_PF_RAEKKE)):
        assert str(macro("(SELECT 7)", navn)).strip() == stats.spand_sql("(SELECT 7)", b)
