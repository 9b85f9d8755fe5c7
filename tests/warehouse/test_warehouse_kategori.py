"""§ 2 categories in the warehouse (fct_kategori_forloeb, mart_ydelser_kategori) and § 5 timeliness by arrival.

Hand-made records with known answers (expected values worked out in the comments):
  P1 dagpenge (kontaktgruppe 1) in 101 from 1 Sep; samtaler: held 2 Sep reg. 2 Sep matchgruppe 2; held 28 Sep
     reg. 2 Oct matchgruppe 1 (§ 25, stk. 2: holds from 2 Oct, not 28 Sep); held 5 Oct matchgruppe 1 again
     (continues the spell).
  P2 kontanthjaelp (kontaktgruppe 2) in 147 from 1 Sep; samtale 15 Sep visitationsgruppe 2; in load 2 a
     samtale registered 22 Oct with visitationsgruppe 1.  A samtale held 1 Oct, registered 5 Oct (4 days: in
     time by § 25, stk. 2's 7 days) but delivered only 15 Oct (14 days after the event: late by arrival).
  P3 sygedagpenge (kontaktgruppe 24) in 101 from 10 Sep; opfølgning 20 Sep sygedagpengekategori 1.
Load 1 on 20 Oct, load 2 on 3 Nov (the horizon: November is counted on 3 Nov).
"""

from __future__ import annotations

import datetime as dt

import pytest
from fixtures_wh import cpr_for, deliver, use_keys
from fixtures_wh import query as q

from pipelines.quality.rules import RuleEngine
from pipelines.warehouse import keys as wkeys
from pipelines.warehouse.build import load_warehouse, published_path
from pipelines.warehouse.kategori import kategori_forloeb_sql

L1, L2 = dt.date(2026, 10, 20), dt.date(2026, 11, 3)
P1 = cpr_for(dt.date(1981, 4, 2), 1)
P2 = cpr_for(dt.date(1990, 8, 9), 2, male=False)
P3 = cpr_for(dt.date(1975, 2, 3), 3)
SEP, OKT, NOV = dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)
UO = "uoplyst"


def d(s: str | None) -> dt.date | None:
    return dt.date.fromisoformat(s) if s else None


def uid(n: int) -> str:
    return f"44444444-0000-4000-8000-{n:012d}"


def sam(n: int, cpr: str, held: str, reg: str, match: str | None = None, vis: str | None = None) -> dict:
    return {"samtale_id": uid(n), "cpr": cpr, "samtaledato": d(held), "registreringsdato": d(reg),
            "samtaletype": "01", "samtaleform": "01", "matchgruppe": match, "visitationsgruppe": vis}


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    root = tmp_path_factory.mktemp("kategori")
    with pytest.MonkeyPatch.context() as mp:
        use_keys(mp, root / "keys")
        mp.setenv("DSDW_SUPPRESSION_BUDGET_S", "5")  # the publication hook on a nearly empty grid
        deliver(root, "kontaktgruppe", dt.date(2026, 9, 10), [
            {"kontaktgruppe_id": uid(101), "cpr": P1, "kontaktgruppe": "1", "startdato": SEP},
            {"kontaktgruppe_id": uid(103), "cpr": P3, "kontaktgruppe": "24", "startdato": d("2026-09-10")},
        ], reporter="101", source="kg101")
        deliver(root, "kontaktgruppe", dt.date(2026, 9, 10), [
            {"kontaktgruppe_id": uid(102), "cpr": P2, "kontaktgruppe": "2", "startdato": SEP}],
            reporter="147", source="kg147")
        deliver(root, "samtale", dt.date(2026, 10, 5), [
            sam(1, P1, "2026-09-02", "2026-09-02", match="2"),
            sam(2, P1, "2026-09-28", "2026-10-02", match="1"),
            sam(3, P1, "2026-10-05", "2026-10-05", match="1"),
        ], reporter="101", source="sam101")
        deliver(root, "samtale", dt.date(2026, 9, 15), [sam(4, P2, "2026-09-15", "2026-09-15", vis="2")],
                reporter="147", source="sam147a")
        # registered in time (4 days), delivered 14 days after the event
        deliver(root, "samtale", dt.date(2026, 10, 15), [sam(5, P2, "2026-10-01", "2026-10-05")],
                reporter="147", source="sam147b")
        deliver(root, "sdp_opfoelgning", dt.date(2026, 9, 20), [
            {"opfoelgning_id": uid(201), "cpr": P3, "opfoelgningsdato": d("2026-09-20"),
             "sygedagpengekategori": "1"}], reporter="101", source="sdp101")
        load_warehouse(root, L1)
        after1 = q(published_path(root), "SELECT * FROM fct_kategori_forloeb ORDER BY ALL")
        deliver(root, "samtale", dt.date(2026, 10, 22), [sam(6, P2, "2026-10-22", "2026-10-22", vis="1")],
                reporter="147", source="sam147c")
        load_warehouse(root, L2)
        pk = {c: wkeys.person_key(c, wkeys.load_key("pseudonym")) for c in (P1, P2, P3)}
        yield {"root": root, "pk": pk, "after1": after1}


def spells(wh) -> list[tuple]:
    return q(published_path(wh["root"]), "SELECT person_key, kategori, vaerdi, gyldig_fra, gyldig_til "
                                         "FROM fct_kategori_forloeb ORDER BY ALL")


def test_spells_are_valid_from_the_registration_date(wh):
    pk = wh["pk"]
    want = sorted([
        # § 25, stk. 2: matchgruppe 1 holds from its registration on 2 Oct, not from the conversation on 28 Sep;
        # the repeat on 5 Oct continues the spell
        (pk[P1], "matchgruppe", "2", d("2026-09-02"), d("2026-10-01")),
        (pk[P1], "matchgruppe", "1", d("2026-10-02"), None),
        (pk[P2], "visitationsgruppe", "2", d("2026-09-15"), d("2026-10-21")),
        (pk[P2], "visitationsgruppe", "1", d("2026-10-22"), None),
        (pk[P3], "sygedagpengekategori", "1", d("2026-09-20"), None),
    ])
    assert spells(wh) == want
    # load 1 knew P2's visitationsgruppe 2 as open
    assert [r[:5] for r in wh["after1"] if r[0] == pk[P2]] == [(pk[P2], "visitationsgruppe", "2", d("2026-09-15"), None)]


def test_nightly_maintenance_equals_the_full_computation_and_the_rules(wh):
    full = q(published_path(wh["root"]), f"SELECT person_key, kategori, vaerdi, gyldig_fra, gyldig_til FROM "
                                         f"({kategori_forloeb_sql()}) ORDER BY ALL")
    assert spells(wh) == full
    # one definition: the quality rules' spells over the lake, with the CPR pseudonymised, are the same
    rules = RuleEngine(wh["root"] / "lake").kategori_forloeb()
    assert sorted((wh["pk"][c], k, v, f, t) for c, k, v, f, t, _ in rules) == full


def test_no_cpr_in_the_category_model(wh):
    cols = [r[0] for r in q(published_path(wh["root"]), "DESCRIBE fct_kategori_forloeb")]
    assert "cpr" not in cols
    assert not q(published_path(wh["root"]), "SELECT * FROM fct_kategori_forloeb WHERE person_key IN "
                                             f"('{P1}', '{P2}', '{P3}')")


def cells(wh, maaned: dt.date, niveau: str, kode: str) -> dict:
    rows = q(published_path(wh["root"]), f"""
        SELECT ydelsesgruppe, matchgruppe, visitationsgruppe, sygedagpengekategori, antal_personer
        FROM mart_ydelser_kategori WHERE maaned = DATE '{maaned}' AND geo_niveau = '{niveau}' AND geo_kode = '{kode}'""")
    return {r[:4]: r[4] for r in rows}


def test_mart_counts_each_person_in_the_category_valid_on_the_months_last_day(wh):
    # 30 Sep: P1 still in matchgruppe 2 (group 1 registered 2 Oct); P3 in sygedagpengekategori 1
    assert cells(wh, SEP, "kommune", "101") == {
        ("dagpenge", "2", UO, UO): 1, ("sygedagpenge", UO, UO, "1"): 1,
        ("i alt", "2", UO, UO): 1, ("i alt", UO, UO, "1"): 1}
    assert cells(wh, SEP, "kommune", "147") == {("kontanthjaelp", UO, "2", UO): 1, ("i alt", UO, "2", UO): 1}
    # 31 Oct: P1 matchgruppe 1, P2 visitationsgruppe 1 (registered 22 Oct, known from load 2)
    okt = cells(wh, OKT, "land", "000")
    assert okt == {("dagpenge", "1", UO, UO): 1, ("kontanthjaelp", UO, "1", UO): 1, ("sygedagpenge", UO, UO, "1"): 1,
                   ("i alt", "1", UO, UO): 1, ("i alt", UO, "1", UO): 1, ("i alt", UO, UO, "1"): 1}
    # both kommuner are in Region Hovedstaden (region_kode 084); November is counted on the horizon (3 Nov)
    assert cells(wh, NOV, "region", "084") == okt
    assert not cells(wh, dt.date(2026, 12, 1), "land", "000")


def rettidighed(wh, maaned: dt.date, kommune: str) -> tuple:
    return q(published_path(wh["root"]), f"""
        SELECT poster, poster_rettidige, median_forsinkelse_dage, poster_ankomst, poster_rettidige_ankomst,
               andel_rettidige_ankomst, median_ankomst_forsinkelse_dage
        FROM mart_indberetning_rettidighed
        WHERE maaned = DATE '{maaned}' AND indberetter = '{kommune}' AND regel_id = 'SAM-002'""")[0]


def test_a_record_registered_in_time_but_delivered_late_is_late_by_arrival(wh):
    # samtale held 1 Oct, registered 5 Oct (4 days <= 7, § 25, stk. 2), received 15 Oct (14 days): § 5's measure
    # October in 147 also holds the 22 Oct samtale (registered and received the same day)
    assert rettidighed(wh, OKT, "147") == (2, 2, 2.0, 2, 1, 0.5, 7.0)
    # September in 101: held 2 Sep (reg. 0, received 5 Oct: 33 days) and 28 Sep (reg. 4, received 7 days)
    assert rettidighed(wh, SEP, "101") == (2, 2, 2.0, 2, 1, 0.5, 20.0)
    hist = q(published_path(wh["root"]), "SELECT ankomst_forsinkelse_dage, sum(antal) FROM "
                                         "mart_indberetning_ankomst_bidrag WHERE regel_id = 'SAM-002' "
                                         "AND indberetter = '147' GROUP BY ALL ORDER BY ALL")
    assert hist == [(0, 2), (14, 1)]  # Sep 15 (same day), Oct 22 (same day), Oct 1 (14 days)
