"""The disclosures issue 16 added: § 66, stk. 5 (the joblog to the a-kasse a citizen changes to) and
§ 42, stk. 2 (the uddannelsesinstitution where a young person is ordered to start).

Expected rows are written from the order's text: § 66, stk. 5 sends "oplysningerne i § 67" -- the whole
joblog, not only the period's -- to the new a-kasse for persons covered by LAB § 2, nr. 1 (kontaktgruppe
1); § 42, stk. 2 sends birth date (never the CPR number), name, the pålæg, the measures since the first
pålæg and the risk assessment to the institution, for kontaktgruppe 1 and 12.
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
S1 = cpr_for(D("1980-02-02"), 1)               # KG 1, a-kasse 067 -> 010 on 2026-10-15
S2 = cpr_for(D("1981-02-02"), 2)               # KG 1, stays with 067
S3 = cpr_for(D("1982-02-02"), 3)               # KG 2 (not LAB § 2, nr. 1), changes 067 -> 010
U1 = cpr_for(D("2004-03-03"), 4, male=False)   # KG 12, pålæg reaches trin 4 on 2026-10-05 at 101001
U2 = cpr_for(D("2004-04-04"), 5)               # KG 2: outside § 42, stk. 2
U3 = cpr_for(D("2005-05-05"), 6)               # KG 1, trin 4 but annulleret


def tilm(tag: str, cpr: str, akasse: str, start: str) -> dict:
    return {"tilmelding_id": uid(tag), "cpr": cpr, "akassekode": akasse, "startdato": D(start),
            "registreringsdato": D(start), "tilmeldekategori": "1"}


def log(tag: str, cpr: str, day: str, akasse: str | None = None, **extra) -> dict:
    return {"joblog_id": uid(tag), "cpr": cpr, "oprettelsesdato": D(day), "logtype": "1", "kilde": "1",
            "akassekode": akasse, "status": "2", "soegningsdato": D(day), "stillingsbetegnelse": "Tømrer",
            "virksomhedsnavn": "Byg ApS", **extra}


def upl(tag: str, cpr: str, trin: str, day: str, version: int, status: str = "2", **extra) -> dict:
    return {"uddannelsesplan_id": uid(tag), "cpr": cpr, "trin": trin, "status": status,
            "oprettelses_revisionsdato": D(day), "registreringsdato": D(day), "version": version,
            "planversion": version, "aendringstype": "1" if version == 1 else "2", **extra}


@pytest.fixture(scope="module")
def wh(keyed_root: Path):
    root = keyed_root  # conftest: keys in the environment for the module
    deliver(root, "kontaktgruppe", DAY, [
        kg("s1", S1, "1", "2026-01-01"), kg("s2", S2, "1", "2026-01-01"), kg("s3", S3, "2", "2026-01-01"),
        kg("u1", U1, "12", "2026-01-01"), kg("u2", U2, "2", "2026-01-01"), kg("u3", U3, "1", "2026-01-01")])
    deliver(root, "akasse_tilmelding", DAY, [tilm("t1", S1, "067", "2026-01-05"),
                                             tilm("t2", S2, "067", "2026-01-05"),
                                             tilm("t3", S3, "067", "2026-01-05")], reporter="067")
    deliver(root, "akasse_tilmelding", DAY, [tilm("t4", S1, "010", "2026-10-15"),
                                             tilm("t5", S3, "010", "2026-10-15")], reporter="010")
    deliver(root, "joblog_jobsoegning", DAY, [
        log("j1", S1, "2026-09-10", "067", virksomhed_email="job@byg.dk"),   # before the period: still sent
        log("j2", S1, "2026-10-02"),
        log("j3", S2, "2026-10-03", "067"),
        log("j4", S3, "2026-10-04", "067")], reporter="JOBNET")
    deliver(root, "uddannelsesplan", DAY, [
        upl("p1", U1, "3", "2026-09-01", 1, optagelsesstatus="afventer"),
        upl("p1", U1, "4", "2026-10-05", 2, paalagt_uddannelse="1030", fristdato=D("2027-01-05"),
            uddannelsesinstitution="101001", risiko_saerlige_vanskeligheder=True, personens_navn="Ung Person"),
        upl("p2", U2, "4", "2026-10-06", 1, paalagt_uddannelse="1030", uddannelsesinstitution="101001"),
        upl("p3", U3, "4", "2026-10-07", 1, status="5", paalagt_uddannelse="1030",
            uddannelsesinstitution="147001")])
    deliver(root, "foranstaltning", DAY, [
        foranst("fa", U1, "20", "2026-08-01", "2026-08-31"),      # ended before the first pålæg (2026-09-01)
        foranst("fb", U1, "21", "2026-09-15", "2026-12-31"),
        foranst("fc", U2, "21", "2026-09-15", "2026-12-31")])
    load_warehouse(root, DAY)
    yield {"root": root, "m": {rid: make_delivery(root, rid, "2026-10", create_missing_keys=True)
                               for rid in ("akasse", "akasseskifte", "uddannelsesinstitution")}}


def test_new_akasse_gets_the_whole_joblog_on_a_change_of_akasse(wh):
    """§ 66, stk. 5: S1 changes 067 -> 010 on 2026-10-15; 010 gets every § 67 entry, also September's."""
    rows = read_rows(wh["m"]["akasseskifte"], "akasseskifte")["joblog"]
    got = sorted((r["_part"], r["joblog_id"], r["skiftedato"], r["tidligere_akasse"], r["cpr"]) for r in rows)
    assert got == sorted([("010", uid("j1"), D("2026-10-15"), "067", S1),
                          ("010", uid("j2"), D("2026-10-15"), "067", S1)])   # S2 stayed; S3 is not KG 1
    j1 = next(r for r in rows if r["joblog_id"] == uid("j1"))
    assert (j1["stillingsbetegnelse"], j1["virksomhedsnavn"], j1["virksomhed_email"]) == (
        "Tømrer", "Byg ApS", "job@byg.dk")                                        # § 67, stk. 2, nr. 5, 6, 11
    assert {k for r in rows for k in r} == set(declared_columns("akasseskifte", "joblog")) | {"_part"}
    m = read_manifest(wh["m"]["akasseskifte"])
    assert {u["krypteret"]["noegle"] for f in m["filer"] for u in f["udgaver"]} == {"akasseskifte-010"}


def test_joblog_routing_uses_the_membership_valid_on_the_entrys_date(wh):
    """§ 66, stk. 4: S1's entry of 2026-10-02 goes to 067 (member until the change on 2026-10-15)."""
    rows = read_rows(wh["m"]["akasse"], "akasse")["joblog"]
    assert {r["joblog_id"]: r["_part"] for r in rows if r["cpr"] == S1} == {uid("j2"): "067"}


def test_institution_gets_the_trin_4_order_with_birth_date_and_name_never_cpr(wh):
    mpath = wh["m"]["uddannelsesinstitution"]
    rows = read_rows(mpath, "uddannelsesinstitution")
    assert [(r["_part"], r["uddannelsesplan_id"], r["foedselsdato"], r["navn"], r["paalaegsdato"],
             r["paalagt_uddannelse"], r["fristdato"], r["risiko_saerlige_vanskeligheder"]) for r in rows["paalaeg"]] == [
        ("101001", uid("p1"), D("2004-03-03"), "Ung Person", D("2026-10-05"), "1030", D("2027-01-05"), True)]
    # nr. 4: the measures from the first pålæg (2026-09-01) on
    assert [(r["_part"], r["foranstaltning_id"]) for r in rows["indsatser"]] == [("101001", uid("fb"))]
    m = read_manifest(mpath)
    assert not any(c["navn"].endswith("cpr") for f in m["filer"] for c in f["kolonner"])
    assert {u["krypteret"]["noegle"] for f in m["filer"] for u in f["udgaver"]} == {"uddannelsesinstitution-101001"}
    blob = (mpath.parent / m["filer"][0]["udgaver"][0]["sti"]).read_bytes()
    assert b"Ung Person" not in blob and U1.encode() not in blob   # encrypted at rest
