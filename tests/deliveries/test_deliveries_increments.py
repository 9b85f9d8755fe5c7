"""Reproducible cuts, byte-identical reruns and increments that carry corrections and deletions.

Two loads: on 2026-10-01 two persons in kontaktgruppe 10, one fleksjob; on 2026-10-02 the fleksjob's end
date is corrected, one kontaktgruppe spell is deleted (aendringstype 3) and a new person arrives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import dagster as dg
import pytest
from fixtures_deliveries import D, foranst, open_file, read_manifest, read_rows
from fixtures_wh import cpr_for, deliver, kg, uid

from pipelines.assets.ingestion import DsdwResource
from pipelines.deliveries import DeliveryError, default_period, list_deliveries, verify_audit
from pipelines.deliveries import deliver as make_delivery
from pipelines.deliveries.assets import DELIVERY_ASSETS, asset_key
from pipelines.warehouse.build import load_warehouse

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
F1 = cpr_for(D("1970-01-01"), 1)
F2 = cpr_for(D("1971-01-01"), 2, male=False)
F5 = cpr_for(D("1975-01-01"), 5)


@pytest.fixture(scope="module")
def wh(keyed_root: Path):
    root = keyed_root  # conftest: keys in the environment for the module
    deliver(root, "kontaktgruppe", D1, [kg("f1", F1, "10", "2026-06-01"), kg("f2", F2, "10", "2026-09-01")])
    deliver(root, "foranstaltning", D1, [foranst("fa", F1, "14", "2026-06-01", "2027-05-31", cvr="11111111")])
    load1 = load_warehouse(root, D1)
    first = {rid: make_delivery(root, rid, "2026-10", create_missing_keys=True)
             for rid in ("fff", "dst", "udbetaling_danmark")}
    deliver(root, "foranstaltning", D2, [
        foranst("fa", F1, "14", "2026-06-01", "2026-12-31", cvr="11111111", version=2, change="2")])
    deliver(root, "kontaktgruppe", D2, [kg("f2", F2, "10", "2026-09-01", version=2, change="3"),
                                        kg("f5", F5, "10", "2026-10-02")])
    load2 = load_warehouse(root, D2)
    inc = {rid: make_delivery(root, rid, "2026-10", kind="increment") for rid in first}
    yield {"root": root, "load1": load1.load_id, "load2": load2.load_id, "first": first, "inc": inc}


def plain_hashes(mpath) -> dict[str, str]:
    m = read_manifest(mpath)
    return {u["sti"]: u["sha256"] for f in m["filer"] for u in f["udgaver"]}


def test_rerun_after_a_later_load_reproduces_the_recorded_cut(wh, tmp_path):
    for rid, mpath in wh["first"].items():
        again = make_delivery(wh["root"], rid, "2026-10", out_dir=tmp_path / "again", load_id=wh["load1"])
        assert plain_hashes(again) == plain_hashes(mpath), rid
        m1, m2 = read_manifest(mpath), read_manifest(again)
        assert m2["snit"] == m1["snit"] == {"load_id": wh["load1"], "indlaest_dato": "2026-10-01"}
        for f1, f2 in zip(m1["filer"], m2["filer"], strict=True):
            for u1, u2 in zip(f1["udgaver"], f2["udgaver"], strict=True):
                assert open_file(mpath, u1, rid) == open_file(again, u2, rid)  # same decrypted bytes
                assert u1["krypteret"]["sha256"] != u2["krypteret"]["sha256"]  # fresh ephemeral key and nonces
    # the latest cut differs (the correction is in it), so the pinned cut is what made the bytes equal
    latest = make_delivery(wh["root"], "fff", "2026-10", out_dir=tmp_path / "latest")
    assert plain_hashes(latest) != plain_hashes(wh["first"]["fff"])


def test_two_runs_of_one_cut_are_byte_identical(wh, tmp_path):
    a = make_delivery(wh["root"], "dst", "2026-10", out_dir=tmp_path / "a")
    b = make_delivery(wh["root"], "dst", "2026-10", out_dir=tmp_path / "b")
    assert plain_hashes(a) == plain_hashes(b)
    ma = read_manifest(a)
    for f in ma["filer"]:
        for u in f["udgaver"]:
            data = open_file(a, u, "dst")
            assert hashlib.sha256(data).hexdigest() == u["sha256"]
            assert data == open_file(b, u, "dst")


def test_fff_increment_carries_the_correction_and_the_deletion(wh):
    m = read_manifest(wh["inc"]["fff"])
    assert m["levering"] == "increment"
    assert m["forrige_snit"] == {"load_id": wh["load1"], "indlaest_dato": "2026-10-01"}
    assert m["snit"]["load_id"] == wh["load2"]
    assert [c["navn"] for c in m["filer"][0]["kolonner"]][0] == "aendring"
    rows = read_rows(wh["inc"]["fff"], "fff")["fleksjob"]
    got = sorted((r["aendring"], r["cpr"], r["slutdato"]) for r in rows)
    # the key is every column (the order lists no identifier), so the corrected end date is old row out, new row in
    assert got == sorted([("slettet", F1, D("2027-05-31")), ("ny", F1, D("2026-12-31")),
                          ("slettet", F2, None), ("ny", F5, None)])


def test_dst_increment_marks_rettet_slettet_ny_by_record_key(wh):
    rows = read_rows(wh["inc"]["dst"], "dst")
    f = rows["foranstaltning"]
    assert [(r["aendring"], r["foranstaltning_id"], r["slutdato"]) for r in f] == [
        ("rettet", uid("fa"), D("2026-12-31"))]
    k = sorted((r["aendring"], r["cpr"], r["kontaktgruppe_id"]) for r in rows["kontaktgruppe"])
    assert k == sorted([("slettet", F2, uid("f2")), ("ny", F5, uid("f5"))])
    deleted = next(r for r in rows["kontaktgruppe"] if r["aendring"] == "slettet")
    assert deleted["startdato"] == D("2026-09-01") and deleted["kontaktgruppe"] == "10"  # as last delivered
    assert all(not rs for name, rs in rows.items() if name not in ("foranstaltning", "kontaktgruppe"))


def test_udbetaling_danmark_increment_keyed_by_cpr(wh):
    rows = read_rows(wh["inc"]["udbetaling_danmark"], "udbetaling_danmark")["fleksvisiterede"]
    assert sorted((r["aendring"], r["cpr"]) for r in rows) == sorted([("slettet", F2), ("ny", F5)])


def test_increment_needs_an_earlier_delivery_of_the_period(wh, tmp_path):
    with pytest.raises(DeliveryError, match="deliver kind=full first"):
        make_delivery(wh["root"], "fff", "2026-09", kind="increment", out_dir=tmp_path)
    with pytest.raises(DeliveryError, match="not before"):
        make_delivery(wh["root"], "fff", "2026-10", kind="increment", out_dir=tmp_path,
                      since_load_id=wh["load2"])
    with pytest.raises(DeliveryError, match="no logged delivery"):  # the base must be something the recipient got
        make_delivery(wh["root"], "uvm", "2026-10", kind="increment", out_dir=tmp_path, since_load_id=wh["load1"])
    with pytest.raises(DeliveryError, match="not declared"):
        make_delivery(wh["root"], "virksomhedsdata", "2026-W40", kind="increment", out_dir=tmp_path)
    with pytest.raises(DeliveryError, match="before the period"):
        make_delivery(wh["root"], "fff", "2026-11", out_dir=tmp_path)


def test_audit_log_lists_every_delivery_with_its_checksums(wh):
    entries = list_deliveries(wh["root"])
    mine = [(e["modtager"], e["levering"], e["load_id"]) for e in entries[:6]]
    assert mine == [("fff", "full", wh["load1"]), ("dst", "full", wh["load1"]),
                    ("udbetaling_danmark", "full", wh["load1"]),
                    ("fff", "increment", wh["load2"]), ("dst", "increment", wh["load2"]),
                    ("udbetaling_danmark", "increment", wh["load2"])]
    e = entries[3]
    assert e["retsgrundlag"] == "§ 41, stk. 4" and e["periode"] == "2026-10" and e["forrige_load_id"] == wh["load1"]
    m = read_manifest(wh["inc"]["fff"])
    assert {f["sti"]: f["sha256"] for f in e["filer"]} == plain_hashes(wh["inc"]["fff"])
    assert e["raekker"] == m["raekker"] == 4
    assert hashlib.sha256(wh["inc"]["fff"].read_bytes()).hexdigest() == e["manifest_sha256"]
    assert verify_audit(wh["root"]).ok


def test_default_periods_for_schedules(wh):
    assert default_period(wh["root"], "fff", "full", dt.date(2026, 11, 1)) == "2026-10"
    assert default_period(wh["root"], "virksomhedsdata", "full", dt.date(2026, 10, 19)) == "2026-W42"
    assert default_period(wh["root"], "fff", "increment") == "2026-10"
    with pytest.raises(DeliveryError):
        default_period(wh["root"], "ungedatabasen", "increment")


def test_dagster_asset_makes_the_delivery(wh):
    asset = next(a for a in DELIVERY_ASSETS if a.key == asset_key("udbetaling_danmark"))
    res = dg.materialize([asset], run_config={"ops": {"deliveries__udbetaling_danmark": {"config": {
        "kind": "full", "period": "2026-10"}}}, "loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        resources={"dsdw": DsdwResource(root=str(wh["root"]), sources_file="unused")})
    assert res.success
    md = res.get_asset_materialization_events()[0].materialization.metadata
    assert md["raekker"].value == 2 and md["load_id"].value == wh["load2"]  # F1 and F5 (F2 deleted)
    assert md["retsgrundlag"].value == "§ 41, stk. 5"
