"""Disclosures between jobcentres and a-kasser and to the municipality a person moves to.

§ 20, stk. 5 / § 25, stk. 4 / § 66, stk. 4 / § 78, stk. 2 (to the citizen's a-kasse), § 60, stk. 5 /
§ 63, stk. 4 / § 64, stk. 5 / § 66, stk. 4 (to the citizen's jobcentre), § 39, stk. 11 and § 75, stk. 3
(to the tilflytningskommune): each file goes to the right party only, encrypted to that party's key.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fixtures_deliveries import D, declared_columns, foranst, read_manifest, read_rows
from fixtures_wh import cpr_for, deliver, kg, uid

from pipelines.deliveries import deliver as make_delivery
from pipelines.warehouse.build import load_warehouse

DAY = dt.date(2026, 10, 30)
K1 = cpr_for(D("1980-01-01"), 1)               # KG 1, a-kasse 067, from 2026-10-10 reports from 010
K2 = cpr_for(D("1981-01-01"), 2)               # KG 2: not § 19, nr. 1
K3 = cpr_for(D("1982-01-01"), 3)               # KG 1, a-kasse unknown
K4 = cpr_for(D("1983-01-01"), 4)               # KG 1, first a-kasse report after the event
M1 = cpr_for(D("1984-01-01"), 5, male=False)   # moves 101 -> 147 on 2026-10-10
N1 = cpr_for(D("1985-01-01"), 6)               # two spells in the same kommune: no move
X1 = cpr_for(D("1986-01-01"), 7)               # no kontaktgruppe spell at all
M2 = cpr_for(D("1987-01-01"), 8, male=False)   # moves 101 -> 147 on 2026-10-12 as the simulator emits it:
                                               # 147 sends a new version of the same spell (§ 16, stk. 5)
M3 = cpr_for(D("1989-01-01"), 10)             # a version with an unknown kommunekode (999): no move
F1 = cpr_for(D("1988-01-01"), 9)               # a-kasse member employed in fleksjob (§ 72, nr. 2)
MOVE_TS = dt.datetime(2026, 10, 12, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def akt(tag, cpr, akasse, start):
    return {"tilmelding_id": uid(tag), "cpr": cpr, "akassekode": akasse, "startdato": D(start),
            "registreringsdato": D(start), "tilmeldekategori": "1"}


@pytest.fixture(scope="module")
def wh(keyed_root: Path):
    root = keyed_root  # conftest: keys in the environment for the module
    deliver(root, "kontaktgruppe", DAY, [
        kg("k1", K1, "1", "2026-01-01"), kg("k2", K2, "2", "2026-01-01"), kg("k3", K3, "1", "2026-01-01"),
        kg("k4", K4, "1", "2026-01-01"), kg("m1a", M1, "1", "2026-01-01", "2026-10-09"),
        kg("n1a", N1, "1", "2026-01-01", "2026-10-09"), kg("n1b", N1, "12", "2026-10-10")])
    deliver(root, "kontaktgruppe", DAY, [kg("m1b", M1, "1", "2026-10-10", kommune="147")], reporter="147")
    # the simulator's move: version 1 from 101 (earlier payload), version 2 of the SAME spell from 147
    deliver(root, "kontaktgruppe", DAY - dt.timedelta(days=20), [kg("m2", M2, "1", "2026-01-01")])
    deliver(root, "kontaktgruppe", DAY, [
        {**kg("m2", M2, "1", "2026-01-01", kommune="147", version=2, change="2"),
         "registreringsdato": D("2026-10-12"), "haendelsestidspunkt": MOVE_TS}], reporter="147", source="flyt")
    deliver(root, "kontaktgruppe", DAY - dt.timedelta(days=20), [kg("m3", M3, "1", "2026-01-01")], source="m3")
    deliver(root, "kontaktgruppe", DAY, [{**kg("m3", M3, "1", "2026-01-01", kommune="999", version=2, change="2"),
                                          "haendelsestidspunkt": MOVE_TS}], source="m3")
    deliver(root, "akasse_tilmelding", DAY, [akt("t1", K1, "067", "2026-01-05"), akt("t2", K2, "067", "2026-01-05"),
                                             akt("t3", M1, "067", "2026-01-05"), akt("t4", M2, "067", "2026-01-05"),
                                             akt("t5", F1, "010", "2026-01-05")], reporter="067")
    deliver(root, "akasse_samtale", DAY, [
        {"samtale_id": uid("as1"), "cpr": K1, "akassekode": "010", "samtaledato": D("2026-10-10"),
         "samtaletype": "1", "samtaleform": "1", "registreringsdato": D("2026-10-10"), "cv_aftaler": "fritekst"},
        {"samtale_id": uid("as2"), "cpr": X1, "akassekode": "010", "samtaledato": D("2026-10-10"),
         "samtaletype": "1", "samtaleform": "1", "registreringsdato": D("2026-10-10")}], reporter="010")
    deliver(root, "indkaldelse", DAY, [
        {"indkaldelse_id": uid("i1"), "cpr": K1, "samtaledato": D("2026-10-05"), "samtaletype": "1",
         "samtaleform": "1", "registreringsdato": D("2026-10-01"), "brevdato": D("2026-10-01"),
         "adresse": "Jobcentervej 1", "titel": "fritekst"},
        {"indkaldelse_id": uid("i2"), "cpr": K1, "samtaledato": D("2026-10-12"), "samtaletype": "1",
         "samtaleform": "1", "registreringsdato": D("2026-10-01"), "brevdato": D("2026-10-01")},
        {"indkaldelse_id": uid("i3"), "cpr": K2, "samtaledato": D("2026-10-05"), "samtaletype": "1",
         "samtaleform": "1", "registreringsdato": D("2026-10-01"), "brevdato": D("2026-10-01")},
        {"indkaldelse_id": uid("i4"), "cpr": K3, "samtaledato": D("2026-10-05"), "samtaletype": "1",
         "samtaleform": "1", "registreringsdato": D("2026-10-01"), "brevdato": D("2026-10-01")}])
    deliver(root, "samtale", DAY, [
        {"samtale_id": uid("s1"), "cpr": K1, "samtaledato": D("2026-10-06"), "samtaletype": "1",
         "samtaleform": "1", "registreringsdato": D("2026-10-08"), "matchgruppe": "1"},
        {"samtale_id": uid("s4"), "cpr": K4, "samtaledato": D("2026-10-03"), "samtaletype": "1",
         "samtaleform": "1", "registreringsdato": D("2026-10-03")}])
    deliver(root, "joblog_jobsoegning", DAY, [
        {"joblog_id": uid("j1"), "cpr": K1, "oprettelsesdato": D("2026-10-08"), "logtype": "1", "kilde": "2",
         "akassekode": "067", "status": "2", "soegningsdato": D("2026-10-08"), "virksomhedsnavn": "Firma",
         "stillingsbetegnelse": "Lagerarbejder", "virksomhed_email": "a@b.dk"},
        {"joblog_id": uid("j4"), "cpr": K4, "oprettelsesdato": D("2026-10-20"), "logtype": "1", "kilde": "2",
         "akassekode": "030", "status": "2", "soegningsdato": D("2026-10-20")}], reporter="JOBNET")
    deliver(root, "haendelse_akasse", DAY, [
        {"haendelse_id": uid("h1"), "cpr": K1, "haendelsesdato": D("2026-10-07"), "haendelsestype": "1",
         "kommentar": "fritekst"},
        {"haendelse_id": uid("h0"), "cpr": K1, "haendelsesdato": D("2026-09-07"), "haendelsestype": "1"},
        {"haendelse_id": uid("hm1"), "cpr": M1, "haendelsesdato": D("2026-09-20"), "haendelsestype": "13",
         "virksomhed_cvr": "12345674", "virksomhed_pnummer": "1000000001", "kommunekode": "101"},
        {"haendelse_id": uid("hm2"), "cpr": M1, "haendelsesdato": D("2026-09-21"), "haendelsestype": "1",
         "kommunekode": "101"},
        # § 74, stk. 1: the jobcentre reports the event type only; the data foundation marks it
        {"haendelse_id": uid("h7"), "cpr": K1, "haendelsesdato": D("2026-10-08"), "haendelsestype": "7",
         "udeblivelse": None}])
    deliver(root, "akasse_indkaldelse", DAY, [
        {"indkaldelse_id": uid("ai1"), "cpr": K1, "akassekode": "067", "samtaledato": D("2026-10-09"),
         "samtaletype": "1", "meddelelsesdato": D("2026-10-01"), "registreringsdato": D("2026-10-01")}],
        reporter="067")
    deliver(root, "akasse_fravaer", DAY, [
        {"fravaer_id": uid("af1"), "cpr": M1, "akassekode": "067", "fravaersaarsag": "9",
         "startdato": D("2026-10-05"), "registreringsdato": D("2026-10-05"), "bemaerkning": "fritekst"},
        {"fravaer_id": uid("af2"), "cpr": M1, "akassekode": "067", "fravaersaarsag": "9",
         "startdato": D("2026-10-15"), "registreringsdato": D("2026-10-15")},
        {"fravaer_id": uid("af3"), "cpr": M2, "akassekode": "067", "fravaersaarsag": "9",
         "startdato": D("2026-10-11"), "registreringsdato": D("2026-10-11")},
        {"fravaer_id": uid("af4"), "cpr": M2, "akassekode": "067", "fravaersaarsag": "9",
         "startdato": D("2026-10-12"), "registreringsdato": D("2026-10-12")}], reporter="067")
    deliver(root, "minplan_udkast", DAY, [
        {"udkast_id": uid("u1"), "cpr": K1, "akassekode": "010", "udkastdato": D("2026-10-11"),
         "registreringsdato": D("2026-10-11"), "planforslag": "fritekst"}], reporter="010")
    deliver(root, "plan", DAY, [
        {"plan_id": uid("p1"), "cpr": M1, "kommunekode": "101", "plantype": "1", "status": "2",
         "oprettelses_revisionsdato": D("2026-08-01"), "planversion": 1, "beskaeftigelsesmaal": "Lagerarbejde"},
        {"plan_id": uid("p2"), "cpr": M1, "kommunekode": "101", "plantype": "1", "status": "4",
         "oprettelses_revisionsdato": D("2026-03-01"), "planversion": 1},
        {"plan_id": uid("p3"), "cpr": M1, "kommunekode": "147", "plantype": "1", "status": "2",
         "oprettelses_revisionsdato": D("2026-10-11"), "planversion": 1},
        {"plan_id": uid("p4"), "cpr": N1, "kommunekode": "101", "plantype": "1", "status": "2",
         "oprettelses_revisionsdato": D("2026-08-01"), "planversion": 1},
        {"plan_id": uid("p6"), "cpr": M3, "kommunekode": "101", "plantype": "1", "status": "2",
         "oprettelses_revisionsdato": D("2026-09-01"), "planversion": 1},
        {"plan_id": uid("p5"), "cpr": M2, "kommunekode": "101", "plantype": "1", "status": "3",
         "oprettelses_revisionsdato": D("2026-09-01"), "planversion": 2, "planbeskrivelse": "Plan for M2"}])
    deliver(root, "uddannelsesplan", DAY, [
        {"uddannelsesplan_id": uid("up1"), "cpr": M1, "kommunekode": "101", "trin": "2", "status": "3",
         "oprettelses_revisionsdato": D("2026-09-01"), "planversion": 1, "uddannelsesmaal": "1030"}])
    deliver(root, "foranstaltning", DAY, [
        foranst("fm1", M1, "12", "2026-08-01", "2026-09-30"),               # ended before the move
        foranst("fm2", M1, "12", "2026-09-01", "2026-12-31"),               # ongoing
        foranst("fm3", M1, "20", "2026-11-01", "2026-11-30"),               # agreed, future
        {**foranst("fm4", M1, "20", "2026-11-01", "2026-11-30"), "status": "1"},  # annulleret
        foranst("fm5", M1, "20", "2026-10-20", "2026-11-30", kommune="147"),   # the new kommune's own
        foranst("fm6", M2, "12", "2026-10-01", "2026-12-31"),
        foranst("fx1", F1, "14", "2026-09-01", None, cvr="87654328"),        # fleksjob of an a-kasse member
        foranst("fx2", K2, "14", "2026-09-01", None)])                       # K2 is a member of 067 too
    load_warehouse(root, DAY)
    yield {"root": root, "m": {rid: make_delivery(root, rid, "2026-10", create_missing_keys=True)
                               for rid in ("akasse", "jobcenter", "tilflytningskommune")}}


def by_part(rows, *cols):
    return sorted((r["_part"], *(r[c] for c in cols)) for r in rows)


def test_akasse_gets_kg1_summonses_and_conversations_of_its_own_members(wh):
    rows = read_rows(wh["m"]["akasse"], "akasse")
    assert by_part(rows["indkaldelser"], "indkaldelse_id") == sorted([("067", uid("i1")), ("010", uid("i2"))])
    assert by_part(rows["samtaler"], "samtale_id", "cpr") == sorted([("067", uid("s1"), K1), ("030", uid("s4"), K4)])
    assert by_part(rows["haendelser"], "haendelse_id") == sorted([("067", uid("h1")), ("067", uid("h7"))])
    assert by_part(rows["joblog"], "joblog_id") == sorted([("067", uid("j1")), ("030", uid("j4"))])
    # § 67, stk. 2, nr. 5-6 give the a-kasse the citizen's own job title and the company name; both stay out
    # of the analysts' warehouse (free text / maybe a sole trader), so the cut takes them from the lake
    j1 = next(r for r in rows["joblog"] if r["joblog_id"] == uid("j1"))
    assert (j1["stillingsbetegnelse"], j1["virksomhedsnavn"]) == ("Lagerarbejder", "Firma")
    # § 25, stk. 2: the matchgruppe holds from the registration date, which the a-kasse receives with it
    s1 = next(r for r in rows["samtaler"] if r["samtale_id"] == uid("s1"))
    assert (str(s1["samtaledato"]), str(s1["registreringsdato"]), s1["matchgruppe"]) == ("2026-10-06", "2026-10-08", "1")
    for name, rs in rows.items():
        assert {k for r in rs for k in r} == set(declared_columns("akasse", name)) | {"_part"}


def test_akasse_gets_all_the_information_including_free_text_and_contact_data(wh):
    """"Oplysningerne videregives" (§ 20, stk. 5; § 66, stk. 4; § 78, stk. 2): every field, free text and
    contact data too, taken from the restricted lake by besked_id."""
    rows = read_rows(wh["m"]["akasse"], "akasse")
    i1 = next(r for r in rows["indkaldelser"] if r["indkaldelse_id"] == uid("i1"))
    assert (i1["adresse"], i1["titel"]) == ("Jobcentervej 1", "fritekst")        # § 20, stk. 1, nr. 7 and 9
    j1 = next(r for r in rows["joblog"] if r["joblog_id"] == uid("j1"))
    assert j1["virksomhed_email"] == "a@b.dk"                                       # § 67, stk. 2, nr. 11
    h1 = next(r for r in rows["haendelser"] if r["haendelse_id"] == uid("h1"))
    assert h1["kommentar"] == "fritekst"                                            # § 75, stk. 1, nr. 6


def test_akasse_haendelser_are_marked_by_the_data_foundation(wh):
    """§ 74, stk. 1: the marking is made in the data foundation's message, from the event type."""
    rows = read_rows(wh["m"]["akasse"], "akasse")["haendelser"]
    h7 = next(r for r in rows if r["haendelse_id"] == uid("h7"))
    assert (h7["udeblivelse"], h7["afslag"], h7["ophoer"], h7["fravaersdag"]) == (True, False, False, False)
    h1 = next(r for r in rows if r["haendelse_id"] == uid("h1"))
    assert not (h1["udeblivelse"] or h1["afslag"] or h1["ophoer"] or h1["fravaersdag"])


def test_akasse_gets_its_members_fleksjob(wh):
    """§ 72, nr. 2, stk. 2 and § 78, stk. 2: a member's fleksjob (§ 39, stk. 3-4 fields) to the a-kasse."""
    rows = read_rows(wh["m"]["akasse"], "akasse")["fleksjob"]
    assert by_part(rows, "foranstaltning_id", "cpr", "udbyder_cvr") == sorted([
        ("010", uid("fx1"), F1, "87654328"), ("067", uid("fx2"), K2, "12345674")])
    fx1 = next(r for r in rows if r["foranstaltning_id"] == uid("fx1"))
    assert fx1["udbyder_kontaktinformation"] == "+45 12345678" and fx1["aktiveringstype"] == "14"


def test_akasse_files_are_encrypted_per_akasse(wh):
    m = read_manifest(wh["m"]["akasse"])
    keys = {u["modtager_part"]: u["krypteret"]["noegle"] for f in m["filer"] for u in f["udgaver"]}
    assert keys == {"067": "akasse-067", "010": "akasse-010", "030": "akasse-030"}
    paths = {u["sti"] for f in m["filer"] for u in f["udgaver"]}
    assert "067/indkaldelser.parquet.enc" in paths and "010/indkaldelser.csv.enc" in paths


def test_jobcenter_gets_akasse_data_of_its_own_citizens(wh):
    rows = read_rows(wh["m"]["jobcenter"], "jobcenter")
    assert by_part(rows["akasse_indkaldelser"], "indkaldelse_id") == [("101", uid("ai1"))]
    assert by_part(rows["akasse_samtaler"], "samtale_id") == [("101", uid("as1"))]  # X1 has no kommune
    assert by_part(rows["minplan_udkast"], "udkast_id") == [("101", uid("u1"))]
    assert by_part(rows["akasse_fravaer"], "fravaer_id") == sorted([("101", uid("af1")), ("147", uid("af2")),
                                                                     ("101", uid("af3")), ("147", uid("af4"))])
    # § 63, stk. 2, nr. 3-4 and § 63, stk. 1, nr. 7: the draft's and the conversation's free text go too
    assert [r["planforslag"] for r in rows["minplan_udkast"]] == ["fritekst"]
    assert [r["cv_aftaler"] for r in rows["akasse_samtaler"]] == ["fritekst"]
    af1 = next(r for r in rows["akasse_fravaer"] if r["fravaer_id"] == uid("af1"))
    assert af1["bemaerkning"] == "fritekst"
    assert by_part(rows["joblog"], "joblog_id") == sorted([("101", uid("j1")), ("101", uid("j4"))])
    assert X1 not in {r["cpr"] for rs in rows.values() for r in rs}


def test_tilflytningskommune_gets_the_previous_kommunes_current_plans_measures_and_referrals(wh):
    rows = read_rows(wh["m"]["tilflytningskommune"], "tilflytningskommune")
    assert by_part([r for r in rows["planer"] if r["cpr"] == M1], "plan_id", "fraflytningskommune", "flyttedato",
                   "beskaeftigelsesmaal") == [
        ("147", uid("p1"), "101", D("2026-10-10"), "Lagerarbejde")]
    assert by_part(rows["uddannelsespaalaeg"], "uddannelsesplan_id") == [("147", uid("up1"))]
    assert by_part([r for r in rows["foranstaltninger"] if r["cpr"] == M1], "foranstaltning_id") == sorted(
        [("147", uid("fm2")), ("147", uid("fm3"))])
    assert by_part(rows["henvisninger"], "haendelse_id", "haendelsestype") == [("147", uid("hm1"), "13")]
    assert {r["cpr"] for rs in rows.values() for r in rs} == {M1, M2}  # N1 stayed in 101


def test_a_kommune_change_on_the_existing_spell_is_a_move(wh):
    """The simulator moves a person by a new version of the same spell with the new kommune (§ 16, stk. 5):
    the new kommune gets the old kommune's current plan and ongoing measures (§ 39, stk. 11), the move
    dated by the version's event time, and the plan's free text (from the restricted lake)."""
    rows = read_rows(wh["m"]["tilflytningskommune"], "tilflytningskommune")
    m2 = [r for r in rows["planer"] if r["cpr"] == M2]
    assert [(r["_part"], r["plan_id"], r["fraflytningskommune"], r["flyttedato"], r["planbeskrivelse"])
            for r in m2] == [("147", uid("p5"), "101", D("2026-10-12"), "Plan for M2")]
    assert [(r["_part"], r["foranstaltning_id"]) for r in rows["foranstaltninger"] if r["cpr"] == M2] == [
        ("147", uid("fm6"))]
    fm6 = next(r for r in rows["foranstaltninger"] if r["foranstaltning_id"] == uid("fm6"))
    assert fm6["udbyder_kontaktinformation"] == "+45 12345678"   # § 39, stk. 3, nr. 18


def test_jobcentre_routing_follows_the_kommune_valid_on_the_records_date(wh):
    rows = read_rows(wh["m"]["jobcenter"], "jobcenter")["akasse_fravaer"]
    got = {r["fravaer_id"]: r["_part"] for r in rows if r["cpr"] == M2}
    assert got == {uid("af3"): "101", uid("af4"): "147"}   # the day before / the day of the move
