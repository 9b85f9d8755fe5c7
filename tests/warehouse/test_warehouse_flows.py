"""Week-to-week flows: fct_person_week.forrige_status, the additive mart_overgange(_bidrag), person_key indexes.

The lake (three loads, known answers; ISO weeks of 2026: W36 starts Monday 31 Aug, W41 5 Oct, W43 19 Oct):
  P1  dagpenge 31 Aug - 13 Sep (W36-W37), kontanthjælp 14 - 27 Sep (W38-W39), then nothing (selvforsørget);
      on the second load the dagpenge spell is corrected to end 20 Sep: in W38 both overlap and dagpenge wins,
      so the flow dagpenge -> kontanthjælp moves from W38 to W39.
  P2  sygedagpenge in kommune 147 from 7 Sep, reported to end 18 Oct (Sunday of W42): on the third load, which
      brings no data, P2 is not affected and gets only the new week W43, selvforsørget after sygedagpenge.
  P3  uddannelseshjælp 1 - 20 Sep (W36-W38), then tilmeldt uden ydelse from 21 Sep (W39).
  P4  kontanthjælp from 12 Oct (W42), first seen on the second load: no flow in its first week.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from fixtures_wh import cpr_for, deliver, kg, use_keys
from fixtures_wh import query as q

from pipelines.warehouse import keys as wkeys
from pipelines.warehouse.build import load_warehouse, published_path
from pipelines.warehouse.clustering import person_sorted_tables
from pipelines.warehouse.dbt_runner import materializations
from pipelines.warehouse.restricted import open_restricted

D1 = dt.date(2026, 10, 5)   # Monday of W41
D2 = dt.date(2026, 10, 14)  # Wednesday of W42
D3 = dt.date(2026, 10, 19)  # Monday of W43: no new data
P1 = cpr_for(dt.date(1981, 4, 2), 1)
P2 = cpr_for(dt.date(1990, 8, 9), 2, male=False)
P3 = cpr_for(dt.date(2001, 1, 15), 3)
P4 = cpr_for(dt.date(1977, 12, 24), 4, male=False)

FLOWS_SQL = ("SELECT uge_id, kommunekode, fra_status, til_status, antal_personer FROM mart_overgange "
             "ORDER BY ALL")
# the flows recomputed from scratch: lag over the whole panel (what the mart saves analysts from doing)
FULL_SQL = """
    SELECT uge_id, uge_start, uge_maaned, iso_aar, iso_uge, kommunekode, fra_status, til_status,
           count(*) AS antal_personer
    FROM (SELECT *, lag(status) OVER (PARTITION BY person_key ORDER BY uge_start) AS fra_status,
                 status AS til_status
          FROM fct_person_week)
    WHERE fra_status <> til_status
    GROUP BY ALL ORDER BY ALL"""
MART_SQL = ("SELECT uge_id, uge_start, uge_maaned, iso_aar, iso_uge, kommunekode, fra_status, til_status, "
            "antal_personer FROM mart_overgange ORDER BY ALL")
# the panel's stock per week: what mart_panel_bestand sums from its signed bidrag
STOCK_SQL = ("SELECT uge_id, uge_start, uge_maaned, iso_aar, iso_uge, kommunekode, status, count(*) AS antal_personer "
             "FROM fct_person_week GROUP BY ALL ORDER BY ALL")
STOCK_MART_SQL = ("SELECT uge_id, uge_start, uge_maaned, iso_aar, iso_uge, kommunekode, status, antal_personer "
                  "FROM mart_panel_bestand ORDER BY ALL")
PANEL_SQL = "SELECT person_key, uge_id, status, forrige_status FROM fct_person_week ORDER BY person_key, uge_start"


def d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def uid(n: int) -> str:
    return f"33333333-0000-4000-8000-{n:012d}"


def snapshot(root: Path) -> dict:
    pub = published_path(root)
    return {"flows": q(pub, FLOWS_SQL), "mart": q(pub, MART_SQL), "full": q(pub, FULL_SQL),
            "panel": q(pub, PANEL_SQL), "stock": q(pub, STOCK_SQL), "stock_mart": q(pub, STOCK_MART_SQL),
            "stock_bidrag": q(pub, "SELECT indlaest_dato, uge_id, kommunekode, status, antal "
                                   "FROM mart_panel_bestand_bidrag ORDER BY ALL"),
            "bidrag": q(pub, "SELECT indlaest_dato, uge_id, fra_status, til_status, antal FROM mart_overgange_bidrag "
                             "ORDER BY ALL")}


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    root = tmp_path_factory.mktemp("flows")
    with pytest.MonkeyPatch.context() as mp:
        use_keys(mp, root / "keys")
        deliver(root, "kontaktgruppe", D1, [
            kg(uid(1), P1, "1", "2026-08-31", "2026-09-13"),
            kg(uid(2), P1, "2", "2026-09-14", "2026-09-27"),
            kg(uid(3), P3, "12", "2026-09-01", "2026-09-20"),
            kg(uid(4), P3, "8", "2026-09-21"),
        ], reporter="101", source="kg101")
        deliver(root, "kontaktgruppe", D1, [kg(uid(5), P2, "24", "2026-09-07", "2026-10-18", kommune="147")],
                reporter="147", source="kg147")
        deliver(root, "kontaktgruppe", D2, [
            kg(uid(1), P1, "1", "2026-08-31", "2026-09-20", version=2, change="2"),
            kg(uid(6), P4, "2", "2026-10-12"),
        ], reporter="101", source="kg101-d2")
        out = {"root": root, "key": {c: wkeys.person_key(c, wkeys.load_key("pseudonym")) for c in (P1, P2, P3, P4)}}
        for n, day in enumerate((D1, D2, D3), start=1):
            out[f"r{n}"] = load_warehouse(root, day)
            out[f"after{n}"] = snapshot(root)
        yield out


def panel(rows: list[tuple], pk: str) -> dict[str, tuple]:
    """uge_id -> (status, forrige_status) of one person."""
    return {r[1]: (r[2], r[3]) for r in rows if r[0] == pk}


def test_forrige_status_is_the_week_before_and_null_in_the_first_week(wh):
    k, p = wh["key"], wh["after1"]["panel"]
    assert panel(p, k[P1]) == {
        "2026-W36": ("dagpenge", None),
        "2026-W37": ("dagpenge", "dagpenge"),
        "2026-W38": ("kontanthjaelp", "dagpenge"),
        "2026-W39": ("kontanthjaelp", "kontanthjaelp"),
        "2026-W40": ("selvforsoerget", "kontanthjaelp"),
        "2026-W41": ("selvforsoerget", "selvforsoerget")}
    assert panel(p, k[P2])["2026-W37"] == ("sygedagpenge", None)
    assert panel(wh["after2"]["panel"], k[P4]) == {"2026-W42": ("kontanthjaelp", None)}


def test_flows_by_hand_after_each_load(wh):
    assert wh["after1"]["flows"] == [
        ("2026-W38", "101", "dagpenge", "kontanthjaelp", 1),
        ("2026-W39", "101", "uddannelseshjaelp", "uden_ydelse", 1),
        ("2026-W40", "101", "kontanthjaelp", "selvforsoerget", 1)]
    # the corrected dagpenge spell moves P1's flow from W38 to W39; P4's first week is no flow
    assert wh["after2"]["flows"] == [
        ("2026-W39", "101", "dagpenge", "kontanthjaelp", 1),
        ("2026-W39", "101", "uddannelseshjaelp", "uden_ydelse", 1),
        ("2026-W40", "101", "kontanthjaelp", "selvforsoerget", 1)]
    # a load without data in a new week: P2's sygedagpenge ended on the Sunday before
    assert wh["after3"]["flows"] == wh["after2"]["flows"] + [("2026-W43", "147", "sygedagpenge", "selvforsoerget", 1)]


def test_the_correction_is_a_signed_delta_in_the_bidrag(wh):
    assert [r for r in wh["after2"]["bidrag"] if r[0] == D2] == [
        (D2, "2026-W38", "dagpenge", "kontanthjaelp", -1),
        (D2, "2026-W39", "dagpenge", "kontanthjaelp", 1)]
    assert [r for r in wh["after3"]["bidrag"] if r[0] == D3] == [(D3, "2026-W43", "sygedagpenge", "selvforsoerget", 1)]
    assert wh["r2"].affected_persons == 2  # P1 (corrected) and P4 (new); P2 and P3 only get week 42


def test_flows_mart_equals_a_full_recomputation_over_the_panel(wh):
    for n in (1, 2, 3):
        after = wh[f"after{n}"]
        assert after["mart"] == after["full"], f"after load {n}"
        assert after["mart"]  # not trivially equal


def test_stock_mart_equals_the_panel_counted_after_each_load(wh):
    for n in (1, 2, 3):
        after = wh[f"after{n}"]
        assert after["stock_mart"] == after["stock"], f"after load {n}"
    # by hand: P1's corrected spell makes W38 dagpenge (was kontanthjaelp) in kommune 101; P4 is new in W42
    w = {(r[0], r[5], r[6]): r[7] for r in wh["after2"]["stock_mart"]}
    assert (w[("2026-W38", "101", "dagpenge")], w.get(("2026-W38", "101", "kontanthjaelp"))) == (1, None)
    assert wh["after1"]["stock_mart"][0][:7] == ("2026-W36", d("2026-08-31"), d("2026-09-01"), 2026, 36, "101",
                                                  "dagpenge")
    assert w[("2026-W42", "101", "kontanthjaelp")] == 1
    # the correction is a signed delta: -1 kontanthjaelp, +1 dagpenge in W38; the weeks P4 adds are +1
    d2 = [r[1:] for r in wh["after2"]["stock_bidrag"] if r[0] == D2]
    assert ("2026-W38", "101", "kontanthjaelp", -1) in d2 and ("2026-W38", "101", "dagpenge", 1) in d2
    assert all(abs(r[3]) >= 1 for r in d2)


def test_forrige_status_equals_lag_over_the_whole_panel(wh):
    pub = published_path(wh["root"])
    assert q(pub, """SELECT count(*) FROM (
                       SELECT forrige_status, lag(status) OVER (PARTITION BY person_key ORDER BY uge_start) AS l,
                              uge_start - lag(uge_start) OVER (PARTITION BY person_key ORDER BY uge_start) AS gap
                       FROM fct_person_week)
                     WHERE forrige_status IS DISTINCT FROM l OR gap <> 7""") == [(0,)]


def test_unaffected_person_gets_the_new_week_with_its_previous_status(wh):
    k = wh["key"]
    p2 = panel(wh["after3"]["panel"], k[P2])
    assert p2["2026-W42"] == ("sygedagpenge", "sygedagpenge")
    assert p2["2026-W43"] == ("selvforsoerget", "sygedagpenge")
    assert panel(wh["after3"]["panel"], k[P3])["2026-W43"] == ("uden_ydelse", "uden_ydelse")
    assert wh["r3"].affected_persons == 0
    # the rows written before stay as they were: only W43 is new for P2
    before = {u: v for u, v in panel(wh["after2"]["panel"], k[P2]).items()}
    assert {u: v for u, v in p2.items() if u != "2026-W43"} == before


# --------------------------------------------------------------------------- person_key: sorted, not indexed


def _person_tables(con: duckdb.DuckDBPyConnection, database: str) -> tuple[set[str], set[str]]:
    """(tables fct_* with a person_key column, not _aktuel; tables with a <table>__person_key index)."""
    tables = {r[0] for r in con.execute(
        """SELECT c.table_name FROM duckdb_columns() c JOIN duckdb_tables() t USING (database_name, schema_name, table_name)
           WHERE c.database_name = ? AND c.schema_name = 'main' AND c.column_name = 'person_key'
             AND c.table_name LIKE 'fct\\_%' ESCAPE '\\' AND c.table_name NOT LIKE '%\\_aktuel' ESCAPE '\\'""",
        [database]).fetchall()}
    indexed = {r[0] for r in con.execute("SELECT table_name FROM duckdb_indexes() WHERE database_name = ? "
                                         "AND index_name = table_name || '__person_key'", [database]).fetchall()}
    return tables, indexed


def test_person_facts_and_panel_are_kept_sorted_not_indexed_and_no_current_state_has_a_person_index(wh):
    """The analysts' person facts and the panel are the tables clustering.person_sorted_tables names (sorted by
    person_key once large: tests/warehouse/test_clustering.py); none has an ART index on person_key, which each
    night's checkpoint rewrote whole; only the small per-person category spells keep theirs."""
    con = duckdb.connect(str(published_path(wh["root"])), read_only=True)
    try:
        db = con.execute("SELECT current_database()").fetchone()[0]
        tables, indexed = _person_tables(con, db)
        assert {"fct_kontaktgruppe", "fct_person_week", "fct_tilmelding"} <= tables
        assert set(person_sorted_tables()) == tables - {"fct_kategori_forloeb"}
        assert indexed == {"fct_kategori_forloeb"}  # an incremental model kept per person (§ 2 category spells)
        # the current-state tables have their record key's unique index (<table>__key), not a person_key one
        assert not con.execute("SELECT index_name FROM duckdb_indexes() WHERE table_name LIKE '%\\_aktuel' "
                               "ESCAPE '\\' AND index_name NOT LIKE '%\\_\\_key' ESCAPE '\\'").fetchall()
        # the incremental facts of this process's parsed dbt project (the fixture's loads parsed it)
        facts = {n for n, mat in materializations().items() if n.startswith("fct_") and mat == "incremental"}
        assert tables - {"fct_person_week"} <= facts
    finally:
        con.close()
    with open_restricted(wh["root"]) as rcon:  # the module fixture keeps DSDW_KEY_DIR set
        # the restricted facts have none either: nobody looks a person up there
        tables, indexed = _person_tables(rcon, "restricted")
        assert tables >= {"fct_ssi_lpr_kontakt", "fct_ssi_sygesikring_kontakt"} and indexed == set()


# --------------------------------------------------------------------------- a night rewrites the weeks that moved

P5 = cpr_for(dt.date(1969, 3, 3), 5)
P6 = cpr_for(dt.date(1985, 6, 6), 6, male=False)


def test_a_night_rewrites_a_persons_weeks_from_the_first_week_it_changed(tmp_path, monkeypatch):
    """A long panel history is not rewritten for a late change: P5's spell (dagpenge since January) is corrected to
    end 27 Sep, so its rows from the week of 1 Sep (the changed month's first week) are rewritten and the earlier
    ones kept; P6 (kontanthjælp since February, no a-kasse) gets an a-kasse tilmelding from 23 Sep, a change of
    dim_person only, so its rows from that week (W39) are rewritten with the a-kasse.  The panel then equals a
    one-pass rebuild of the same lake (every column but indlaest_dato, the night that last wrote the row) and the
    flows and stock marts their recomputation over it."""

    from pipelines.warehouse.build import build_path
    from pipelines.warehouse.rebuild import rebuild

    root = tmp_path / "root"
    use_keys(monkeypatch, root / "keys")
    deliver(root, "kontaktgruppe", D1, [kg(uid(51), P5, "1", "2026-01-05"), kg(uid(52), P6, "2", "2026-02-02")],
            reporter="101", source="kg101")
    load_warehouse(root, D1)
    deliver(root, "kontaktgruppe", D2, [kg(uid(51), P5, "1", "2026-01-05", "2026-09-27", version=2, change="2")],
            reporter="101", source="kg101-d2")
    deliver(root, "akasse_tilmelding", D2, [{
        "tilmelding_id": uid(53), "cpr": P6, "akassekode": "005", "startdato": d("2026-09-23"),
        "tilmeldekategori": "1", "ledighedsgrad": "1"}], reporter="005", source="t005")
    load_warehouse(root, D2)
    key = {c: wkeys.person_key(c, wkeys.load_key("pseudonym")) for c in (P5, P6)}
    con = duckdb.connect(str(build_path(root)), read_only=True)
    fra = dict(con.execute("SELECT person_key, fra_uge FROM staging.int_person_fra_uge").fetchall())
    con.close()
    assert fra == {key[P5]: d("2026-08-31"), key[P6]: d("2026-09-21")}
    pub = published_path(root)
    rows = {(r[0], r[1]): r[2:] for r in q(pub, "SELECT person_key, uge_start, indlaest_dato, status, akassekode "
                                                "FROM fct_person_week")}
    p5 = {u: v for (p, u), v in rows.items() if p == key[P5]}
    p6 = {u: v for (p, u), v in rows.items() if p == key[P6]}
    assert min(p5) == d("2026-01-05") and min(p6) == d("2026-02-02")
    assert {v[0] for u, v in p5.items() if u < d("2026-08-31")} == {D1}  # kept
    assert {v[0] for u, v in p5.items() if u >= d("2026-08-31")} == {D2}  # rewritten
    assert p5[d("2026-09-21")][1] == "dagpenge" and p5[d("2026-09-28")][1] == "selvforsoerget"
    assert {v[0] for u, v in p6.items() if u < d("2026-09-21")} == {D1}
    assert {(v[0], v[2]) for u, v in p6.items() if u >= d("2026-09-21")} == {(D2, "005")}
    assert {v[2] for u, v in p6.items() if u < d("2026-09-21")} == {None}
    assert len([u for u in p5 if u < d("2026-08-31")]) == 34  # 34 weeks kept, not rewritten
    # the same lake built in one pass: the same panel and marts
    rebuild(root, "duckdb", tmp_path / "rb")
    cols = "person_key, uge_id, status, forrige_status, kontaktgruppe, antal_forloeb, kommunekode, akassekode"
    one_pass = q(tmp_path / "rb" / "warehouse.duckdb", f"SELECT {cols} FROM fct_person_week ORDER BY ALL")
    assert q(pub, f"SELECT {cols} FROM fct_person_week ORDER BY ALL") == one_pass and len(one_pass) == 41 + 37
    assert q(pub, MART_SQL) == q(pub, FULL_SQL) and q(pub, STOCK_MART_SQL) == q(pub, STOCK_SQL)
