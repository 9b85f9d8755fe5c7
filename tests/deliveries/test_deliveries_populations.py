"""Every recipient's legal population and exact columns, on a hand-made warehouse with known answers.

Persons are built around each rule's edges (born 1946-01-01 vs 1953-01-01, the day a person turns 18,
kontaktgruppe 10 vs 1, spells ending before the period ...); the expected CPR sets are written from the
order's text, not from the code.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fixtures_deliveries import (
    D,
    declared_columns,
    foranst,
    open_file,
    plan,
    read_manifest,
    read_rows,
)
from fixtures_wh import cpr_for, deliver, kg, uid

from pipelines.deliveries import deliver as make_delivery
from pipelines.deliveries import get_recipient, load_recipients
from pipelines.quality.rules import birth_sql
from pipelines.warehouse.build import load_warehouse

LOAD = dt.date(2026, 10, 18)
PERIOD = "2026-10"
WEEK = "2026-W42"  # 2026-10-12 .. 2026-10-18

# ATP/SKAT (§ 41, stk. 3)
A_1950 = cpr_for(D("1950-03-10"), 1)
A_1946 = cpr_for(D("1946-01-01"), 2, male=False)
A_1953 = cpr_for(D("1953-01-01"), 3)
A_1952_PRAKTIK = cpr_for(D("1952-12-31"), 4)
A_1945 = cpr_for(D("1945-12-31"), 5)
# UVM (§ 41, stk. 2)
U_17_KG2 = cpr_for(D("2009-05-01"), 10)
U_18_BEFORE = cpr_for(D("2008-10-15"), 11)   # turns 18 on 2026-10-15, measure starts 2026-10-20
U_17_KG8 = cpr_for(D("2009-01-01"), 12)
U_17_KG6 = cpr_for(D("2009-02-02"), 13)
U_TURNS_18 = cpr_for(D("2008-10-10"), 14)    # under 18 on 2026-10-01..09, measure the whole month
U_ADULT_KG2 = cpr_for(D("1990-01-01"), 15)
# FFF (§ 41, stk. 4) and Udbetaling Danmark (§ 41, stk. 5)
F_KG10 = cpr_for(D("1970-01-01"), 20)
F_KG10_NO_MEASURE = cpr_for(D("1971-01-01"), 21)
F_KG1 = cpr_for(D("1972-01-01"), 22)
F_KG10_ENDED = cpr_for(D("1973-01-01"), 23)
G_KG7_THEN_10 = cpr_for(D("1974-01-01"), 24)
G_KG7_GAP = cpr_for(D("1975-01-01"), 25)
# Ungedatabasen (§ 42, stk. 1)
Y_KG12 = cpr_for(D("2003-01-01"), 30)
Y_KG2 = cpr_for(D("2003-02-01"), 31)
Y_KG1_CLOSED = cpr_for(D("2002-03-01"), 32)
Y_KG3 = cpr_for(D("2001-04-01"), 33)
Y_KG12_TRIN2 = cpr_for(D("2004-05-01"), 34)
# § 91, stk. 2 and the DST exclusion of chapters 24-25
E_101 = cpr_for(D("2005-01-01"), 40)
E_147 = cpr_for(D("2006-01-01"), 41)
E_NO_KOMMUNE = cpr_for(D("2007-01-01"), 42)

CVR_FLEKS, CVR_OLD = "11111111", "22222222"


@pytest.fixture(scope="module")
def wh(keyed_root: Path):
    root = keyed_root  # conftest: keys in the environment for the module
    day = dt.date(2026, 10, 17)
    deliver(root, "kontaktgruppe", day, [
        kg("u1", U_17_KG2, "2", "2026-09-01"), kg("u2", U_18_BEFORE, "3", "2026-01-01"),
        kg("u3", U_17_KG8, "8", "2026-01-01"), kg("u4", U_17_KG6, "6", "2026-01-01"),
        kg("u5", U_TURNS_18, "5", "2026-01-01"), kg("u6", U_ADULT_KG2, "2", "2026-01-01"),
        kg("f1", F_KG10, "10", "2026-06-01"), kg("f2", F_KG10_NO_MEASURE, "10", "2026-10-10"),
        kg("f3", F_KG1, "1", "2026-01-01"), kg("f4", F_KG10_ENDED, "10", "2026-01-01", "2026-09-30"),
        kg("g1a", G_KG7_THEN_10, "7", "2026-03-01", "2026-08-31"), kg("g1b", G_KG7_THEN_10, "10", "2026-09-01"),
        kg("g2a", G_KG7_GAP, "7", "2025-01-01", "2025-03-01"), kg("g2b", G_KG7_GAP, "7", "2026-10-05"),
        kg("y1", Y_KG12, "12", "2026-01-01"), kg("y2", Y_KG2, "2", "2026-01-01"),
        kg("y3", Y_KG1_CLOSED, "1", "2026-01-01"), kg("y4", Y_KG3, "3", "2026-01-01"),
        kg("y5", Y_KG12_TRIN2, "12", "2026-01-01"),
        kg("e1", E_101, "12", "2026-01-01"),
    ])
    deliver(root, "kontaktgruppe", day, [kg("e2", E_147, "12", "2026-02-01", kommune="147")], reporter="147")
    deliver(root, "foranstaltning", day, [
        foranst("a1", A_1950, "10", "2015-01-01", "2015-06-30"),
        foranst("a2", A_1946, "11", "2009-06-01", "2010-01-01"),          # one day inside 2010-2016
        foranst("a3", A_1953, "10", "2012-01-01", "2012-12-31"),          # born 1953
        foranst("a4", A_1952_PRAKTIK, "12", "2012-01-01", "2012-12-31"),  # virksomhedspraktik, not løntilskud
        foranst("a5", A_1952_PRAKTIK, "10", "2017-01-01", "2017-05-01"),  # after 2016
        foranst("a6", A_1945, "10", "2011-01-01", "2011-12-31"),          # born 1945
        foranst("u1", U_17_KG2, "20", "2026-10-05", "2026-12-31"),
        foranst("u2", U_18_BEFORE, "20", "2026-10-20", "2026-11-30"),
        foranst("u3", U_17_KG8, "20", "2026-10-01", "2026-10-31"),
        foranst("u4a", U_17_KG6, "20", "2026-09-01", "2026-09-30"),       # before the period
        foranst("u4b", U_17_KG6, "21", "2026-10-01", "2026-10-10"),
        foranst("u5", U_TURNS_18, "22", "2026-10-01", "2026-10-31"),
        foranst("u6", U_ADULT_KG2, "20", "2026-10-01", "2026-10-31"),
        foranst("f1a", F_KG10, "14", "2026-06-01", "2027-05-31", cvr=CVR_FLEKS),
        foranst("f1b", F_KG10, "12", "2025-01-01", "2025-02-01", cvr=CVR_OLD),  # before the KG 10 spell
        foranst("f3", F_KG1, "10", "2026-10-01", "2026-12-31"),
        foranst("f4", F_KG10_ENDED, "14", "2026-01-01", "2026-09-30"),
        foranst("v1", F_KG1, "10", "2025-06-01", "2025-12-31", cvr="33333333"),
        foranst("v2", F_KG1, "10", "2024-01-01", "2024-06-30", cvr="44444444"),  # more than two years back
    ])
    deliver(root, "uddannelsesplan", day, [
        plan("y1", Y_KG12, "2", "2026-09-01", 1), plan("y1", Y_KG12, "3", "2026-10-02", 2),
        plan("y2", Y_KG2, "3", "2026-10-02", 1),                               # kg 2: outside § 42
        plan("y3", Y_KG1_CLOSED, "3", "2026-09-15", 1),
        plan("y3", Y_KG1_CLOSED, "3", "2026-10-05", 2, status="4"),           # afsluttet
        plan("y4", Y_KG3, "3", "2026-10-03", 1),
        plan("y5", Y_KG12_TRIN2, "2", "2026-10-03", 1),                       # never trin 3
    ])
    deliver(root, "uddannelse", day, [
        {"uddannelse_id": uid("e1"), "cpr": E_101, "uddannelseskode": "1030", "startdato": D("2026-08-01"),
         "slutdato": D("2027-06-30"), "statuskode": "2", "opgoerelsesdato": day},
        {"uddannelse_id": uid("e1old"), "cpr": E_101, "uddannelseskode": "1020", "startdato": D("2025-08-01"),
         "slutdato": D("2026-06-30"), "statuskode": "4", "opgoerelsesdato": day},
        {"uddannelse_id": uid("e2"), "cpr": E_147, "uddannelseskode": "1030", "startdato": D("2026-08-01"),
         "slutdato": None, "statuskode": "2", "opgoerelsesdato": day},
        {"uddannelse_id": uid("e3"), "cpr": E_NO_KOMMUNE, "uddannelseskode": "1030",
         "startdato": D("2026-08-01"), "slutdato": None, "statuskode": "2", "opgoerelsesdato": day},
    ], reporter="UVM")
    deliver(root, "ssi_lpr_kontakt", day, [
        {"kontakt_id": uid("s1"), "cpr": E_NO_KOMMUNE, "register": "LPR", "kontakttype": "1",
         "startdato": D("2026-09-01"), "slutdato": D("2026-09-02"), "diagnose": "DF32", "opgoerelsesdato": day},
    ], reporter="SSI")
    deliver(root, "stillingsopslag", day, [
        {"jobordreident": "J-1", "cvr": CVR_FLEKS, "pnummer": "1000000001", "virksomhedsnavn": "Firma A/S",
         "stillingsbetegnelse": "2512", "kommunekode": "101", "antal_stillinger": 2,
         "offentliggoerelsesdato": D("2026-10-01"), "stillingsbeskrivelse": "fritekst"},
        {"jobordreident": "J-OLD", "cvr": CVR_OLD, "pnummer": "1000000002", "virksomhedsnavn": "Gammel ApS",
         "stillingsbetegnelse": "2512", "kommunekode": "101", "antal_stillinger": 1,
         "offentliggoerelsesdato": D("2024-01-01")},
    ], reporter="JOBNET")
    load_warehouse(root, LOAD)
    manifests = {rid: make_delivery(root, rid, WEEK if rec.periode == "uge" else PERIOD,
                                    create_missing_keys=True)
                 for rid, rec in load_recipients().items()}
    yield {"root": root, "manifests": manifests}


def cprs(rows: list[dict]) -> set[str]:
    return {r["cpr"] for r in rows}


def test_every_file_has_exactly_the_declared_columns_and_types(wh):
    for rid, mpath in wh["manifests"].items():
        m = read_manifest(mpath)
        rec = get_recipient(rid)
        assert [f["navn"] for f in m["filer"]] == [f.navn for f in rec.filer]
        for f in m["filer"]:
            want = declared_columns(rid, f["navn"])
            assert [c["navn"] for c in f["kolonner"]] == want
            for out in f["udgaver"]:
                data = open_file(mpath, out, rid)
                if out["format"] == "parquet":
                    import io

                    schema = pq.read_schema(io.BytesIO(data))
                    assert schema.names == want, (rid, f["navn"])
                    types = {c.navn: c.type for c in next(s for s in rec.filer if s.navn == f["navn"]).kolonner}
                    for field in schema:
                        assert str(field.type) == {"string": "string", "date": "date32[day]", "integer": "int64",
                                                   "boolean": "bool", "decimal": "double",
                                                   "timestamp": "timestamp[us, tz=UTC]",
                                                   "string_list": "list<element: string>"}[types[field.name]], \
                            (rid, field)
                else:
                    header = data.decode("utf-8").split("\n", 1)[0]
                    assert header.split(";") == want
            assert set(m["filer"][0]) >= {"kolonner", "udgaver", "raekker"}


def test_atp_skat_born_1946_to_1952_with_loentilskud_2010_to_2016(wh):
    rows = read_rows(wh["manifests"]["atp_skat"], "atp_skat")["loentilskud"]
    assert cprs(rows) == {A_1950, A_1946}
    assert {(r["cpr"], r["startdato"], r["slutdato"]) for r in rows} == {
        (A_1950, D("2015-01-01"), D("2015-06-30")), (A_1946, D("2009-06-01"), D("2010-01-01"))}
    csv_rows = read_rows(wh["manifests"]["atp_skat"], "atp_skat", "csv")["loentilskud"]
    assert {(r["cpr"], r["startdato"]) for r in csv_rows} == {(A_1950, "2015-01-01"), (A_1946, "2009-06-01")}


def test_atp_skat_population_holds_by_birth_date(wh):
    """Independent check: every delivered CPR's birth date (century rule) lies in 1946-1952."""
    import duckdb

    rows = read_rows(wh["manifests"]["atp_skat"], "atp_skat")["loentilskud"]
    con = duckdb.connect()
    for r in rows:
        born = con.execute(f"SELECT {birth_sql('c')} FROM (SELECT ? AS c)", [r["cpr"]]).fetchone()[0]
        assert dt.date(1946, 1, 1) <= born <= dt.date(1952, 12, 31)


def test_uvm_under_18_in_kontaktgruppe_2_to_6(wh):
    rows = read_rows(wh["manifests"]["uvm"], "uvm")["foranstaltninger"]
    assert {(r["cpr"], r["foranstaltning"], r["startdato"]) for r in rows} == {
        (U_17_KG2, "20", D("2026-10-05")), (U_17_KG6, "21", D("2026-10-01")), (U_TURNS_18, "22", D("2026-10-01"))}


def test_fff_only_kontaktgruppe_10(wh):
    rows = read_rows(wh["manifests"]["fff"], "fff")["fleksjob"]
    assert cprs(rows) == {F_KG10, F_KG10_NO_MEASURE, G_KG7_THEN_10}
    assert {r["kontaktgruppe"] for r in rows} == {"10"}
    f1 = [r for r in rows if r["cpr"] == F_KG10]
    assert [(r["foranstaltning"], r["aktivitetsudbyder_cvr"], r["kontaktgruppe_startdato"]) for r in f1] == [
        ("14", CVR_FLEKS, D("2026-06-01"))]  # the 2025 measure lies before the spell
    none = [r for r in rows if r["cpr"] == F_KG10_NO_MEASURE]
    assert none == [{"cpr": F_KG10_NO_MEASURE, "kontaktgruppe": "10", "kontaktgruppe_startdato": D("2026-10-10"),
                     "foranstaltning": None, "startdato": None, "slutdato": None, "aktivitetsudbyder_cvr": None}]


def test_udbetaling_danmark_kontaktgruppe_7_and_10_with_visitation_date(wh):
    rows = read_rows(wh["manifests"]["udbetaling_danmark"], "udbetaling_danmark")["fleksvisiterede"]
    got = {r["cpr"]: (r["visitationsdato_fleksjob"], r["kontaktgruppe"]) for r in rows}
    assert got == {
        F_KG10: (D("2026-06-01"), "10"),
        F_KG10_NO_MEASURE: (D("2026-10-10"), "10"),
        G_KG7_THEN_10: (D("2026-03-01"), "10"),   # the continuous 7 -> 10 chain started 2026-03-01
        G_KG7_GAP: (D("2026-10-05"), "7"),        # a new chain after the 2025 gap
    }


def test_ungedatabasen_trin_3_subscriptions(wh):
    rows = read_rows(wh["manifests"]["ungedatabasen"], "ungedatabasen")["abonnementer"]
    got = {r["cpr"]: (r["oensket_startdato"], r["slutdato"], r["ophoersaarsag"]) for r in rows}
    assert got == {
        Y_KG12: (D("2026-10-02"), None, None),
        Y_KG1_CLOSED: (D("2026-09-15"), D("2026-10-05"), "afsluttet"),
        Y_KG3: (D("2026-10-03"), None, None),
    }


def test_virksomhedsdata_last_two_years_without_persons(wh):
    rows = read_rows(wh["manifests"]["virksomhedsdata"], "virksomhedsdata")
    firms = {(r["cvr"], r["aktiveringstype"]) for r in rows["ansaettelser_saerlige_vilkaar"]}
    assert ("33333333", "10") in firms and ("44444444", "10") not in firms
    assert not any(r["aktiveringstype"].startswith("2") for r in rows["ansaettelser_saerlige_vilkaar"])
    assert [r["jobordreident"] for r in rows["stillingsopslag"]] == ["J-1"]
    m = read_manifest(wh["manifests"]["virksomhedsdata"])
    assert all(u["krypteret"] is None for f in m["filer"] for u in f["udgaver"])  # no CPR: not encrypted
    assert not any(c["navn"].endswith("cpr") for f in m["filer"] for c in f["kolonner"])


def test_education_data_split_by_the_citizens_kommune(wh):
    mpath = wh["manifests"]["uddannelse_kommuner"]
    rows = read_rows(mpath, "uddannelse_kommuner")["uddannelser"]
    assert {(r["_part"], r["cpr"], r["uddannelseskode"]) for r in rows} == {("101", E_101, "1030"),
                                                                          ("147", E_147, "1030")}
    m = read_manifest(mpath)
    keys = {u["modtager_part"]: u["krypteret"]["noegle"] for u in m["filer"][0]["udgaver"]}
    assert keys == {"101": "uddannelse_kommuner-101", "147": "uddannelse_kommuner-147"}
    out_101 = next(u for u in m["filer"][0]["udgaver"] if u["modtager_part"] == "101")
    from pipelines.deliveries.crypto import DeliveryCryptoError, decrypt, load_private_key

    blob = (mpath.parent / out_101["sti"]).read_bytes()
    with pytest.raises(DeliveryCryptoError):  # kommune 147 cannot open kommune 101's file
        decrypt(blob, load_private_key("uddannelse_kommuner-147"))


def test_dst_gets_no_uvm_ssi_or_free_text(wh):
    mpath = wh["manifests"]["dst"]
    m = read_manifest(mpath)
    names = {f["navn"] for f in m["filer"]}
    assert "foranstaltning" in names and "kontaktgruppe" in names
    assert not names & {"uddannelse", "ssi_lpr_kontakt", "ssi_sygesikring_kontakt", "ssi_misbrugsbehandling"}
    rows = read_rows(mpath, "dst")
    everywhere = {r.get("cpr") for rs in rows.values() for r in rs}
    assert E_NO_KOMMUNE not in everywhere  # known only from UVM and SSI data
    assert {U_17_KG2, F_KG10, E_101} <= everywhere
    for_rows = rows["foranstaltning"]
    assert all("statusbemaerkning" not in r and "ansvarlig_sagsbehandler" not in r for r in for_rows)
    assert not any("fritekst" in str(v) for rs in rows.values() for r in rs for v in r.values())
    assert {r["foranstaltning_id"] for r in for_rows} >= {uid("a1"), uid("f1a")}


def test_manifest_records_cut_checksums_and_basis(wh):
    import hashlib

    mpath = wh["manifests"]["fff"]
    m = read_manifest(mpath)
    assert m["retsgrundlag"] == "§ 41, stk. 4" and "kontaktgruppe 10" in m["paragraf_tekst"]
    assert m["snit"]["indlaest_dato"] == LOAD.isoformat() and m["snit"]["load_id"].startswith("2026-10-18-")
    assert m["periode"] == {"tekst": "2026-10", "type": "maaned", "fra": "2026-10-01", "til": "2026-10-31"}
    assert m["pipeline_version"]["dsdw"]
    for out in m["filer"][0]["udgaver"]:
        blob = (mpath.parent / out["sti"]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == out["krypteret"]["sha256"]
        assert hashlib.sha256(open_file(mpath, out, "fff")).hexdigest() == out["sha256"]
        assert F_KG10.encode() not in blob  # encrypted at rest
    assert m["raekker"] == sum(f["raekker"] for f in m["filer"]) == 3
