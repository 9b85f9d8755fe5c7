"""Ground truth: on generator data every injected defect is flagged by the right rule, and no
clean record is flagged (precision = recall = 1.0), for the GX suites and the § rules alike."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipelines.contracts import load_contracts
from pipelines.ingest import SourcesConfig, Zones, ingest_day
from pipelines.quality.results import publish, run_quality
from pipelines.quality.rules import RuleEngine, birth_sql
from pipelines.simulate.servers import start_sources

START = dt.date(2026, 10, 1)
DAYS = [START + dt.timedelta(days=k) for k in range(5)]
CONTRACTS = load_contracts()
# checks whose failures reach the lake (required/type/encoding/duplicate end in quarantine instead)
LAKE_CHECKS = {"codelist", "cpr_valid", "cvr_valid"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, generated) -> tuple[Path, Path]:
    """Tiny, 5 days, seed 5, 5 % defects, ingested: more days and rules than ``tiny_lake`` (31 of the contracts'
    rules among the expected failures against its 10)."""
    base = tmp_path_factory.mktemp("dq")
    src = generated(days=len(DAYS), seed=5, defect_rate=0.05)
    with start_sources(src) as systems:
        cfg = SourcesConfig.from_describe(systems.describe())
        for day in DAYS:
            ingest_day(day, Zones(base / "zones"), cfg, received_at="2026-10-06T02:00:00+02:00")
    return src, base / "zones"


@pytest.fixture(scope="module")
def run(lake):
    _src, root = lake
    return run_quality(root, DAYS, today=dt.date(2026, 11, 26))


def expected(src: Path) -> set[tuple[str, str]]:
    rule_ids = {r.id for c in CONTRACTS.values() for r in c.rules}
    out = set()
    with (src / "ground_truth.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rid = row["rule_id"]
            if rid in rule_ids or (rid.count(":") == 2 and rid.split(":")[1] in LAKE_CHECKS):
                out.add((row["besked_id"], rid))
    return out


def test_precision_and_recall_are_one(lake, run) -> None:
    src, _root = lake
    want = expected(src)
    got = run.failed_pairs()
    assert len(want) > 30
    false_pos = sorted(got - want)
    false_neg = sorted(want - got)
    assert not false_pos, f"clean records flagged: {false_pos[:10]}"
    assert not false_neg, f"defects missed: {false_neg[:10]}"
    kinds = {rid.split(":")[1] if ":" in rid else "rule" for _b, rid in got}
    assert {"codelist", "cpr_valid", "rule"} <= kinds


def test_every_rule_kind_is_evaluated(lake) -> None:
    _src, root = lake
    eng = RuleEngine(root / "lake")
    kinds = {chk.rule.kind for c in CONTRACTS.values() for chk in eng.checks(c)}
    assert kinds >= {"deadline", "date_window", "start_before_end", "required_when", "allowed_values",
                     "fixed_values", "reference_exists", "version_increases", "only_when_changed", "no_overlap",
                     "personkreds", "bilag1", "age_range", "sygemelding_kontaktgruppe"}


def test_results_table_carries_paragraphs_and_no_personal_data(lake, run, tmp_path: Path) -> None:
    _src, root = lake
    db = publish(run, root, DAYS)
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT rule_id, paragraph, records_checked, records_failed, sample_keys FROM dq_results"
                       ).fetchall()
    assert rows and all(("§" in p or "Bilag" in p) for _r, p, _c, _f, _k in rows)
    assert all(0 <= f <= c for _r, _p, c, f, _k in rows)
    # sample keys are record keys (uuids, Jobnet job-order ids) or message ids: never a CPR number
    keys = [k for *_x, ks in rows for k in ks]
    assert keys
    check = duckdb.connect()
    for k in keys:
        assert check.execute(f"SELECT {birth_sql(repr(k))}").fetchone()[0] is None, k
    total_failed = con.execute("SELECT sum(records_failed) FROM dq_results").fetchone()[0]
    assert total_failed == len(run.failures)
    # republishing a day replaces it instead of adding to it
    publish(run_quality(root, DAYS[:1], today=dt.date(2026, 11, 26)), root, DAYS[:1])
    con2 = duckdb.connect(str(db), read_only=True)
    assert con2.execute("SELECT sum(records_failed) FROM dq_results").fetchone()[0] == total_failed


def test_timeliness_distribution_matches_deadline_failures(run) -> None:
    late = sum(t["records"] for t in run.timeliness if t["lag_days"] > t["max_lag_days"])
    failed = sum(r["records_failed"] for r in run.results
                 if any(x.id == r["rule_id"] and x.kind == "deadline" for x in CONTRACTS[r["dataset"]].rules))
    assert late == failed > 0


# ---------------------------------------------------------------------------- the rule gaps of issue 16
# Hand-made lake records at each rule's edge: the expected failures are written from the order's text.
def _rule_lake(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    from fixtures_wh import cpr_for, deliver, kg, uid

    day = dt.date(2026, 10, 10)
    d = dt.date.fromisoformat
    p = {"kg1": cpr_for(d("1980-01-01"), 1), "kg3": cpr_for(d("1981-01-01"), 2), "kg12": cpr_for(d("2001-01-01"), 3),
         "kg24": cpr_for(d("1975-01-01"), 4), "kg2": cpr_for(d("1982-01-01"), 5), "kg3_jobparat": cpr_for(d("1983-01-01"), 6)}
    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", day, [kg("r1", p["kg1"], "1", "2026-01-01"), kg("r2", p["kg3"], "3", "2026-01-01"),
                                         kg("r3", p["kg12"], "12", "2026-01-01"), kg("r4", p["kg24"], "24", "2026-01-01"),
                                         kg("r5", p["kg2"], "2", "2026-01-01"),
                                         kg("r6", p["kg3_jobparat"], "3", "2026-01-01")])
    sam = {"samtaletype": "1", "samtaleform": "101", "registreringsdato": d("2026-10-01"), "samtaledato": d("2026-10-01")}
    deliver(root, "samtale", day, [
        {**sam, "samtale_id": uid("q1"), "cpr": p["kg1"], "visitationsgruppe": "1"},    # § 25, stk. 1, nr. 9: not KG 1
        {**sam, "samtale_id": uid("q2"), "cpr": p["kg3"], "visitationsgruppe": "2"},
        {**sam, "samtale_id": uid("q3"), "cpr": p["kg12"], "visitationsgruppe": "4"},
        {**sam, "samtale_id": uid("q6"), "cpr": p["kg3_jobparat"], "visitationsgruppe": "1"}])
    deliver(root, "sdp_opfoelgning", day, [
        {"opfoelgning_id": uid("o4"), "cpr": p["kg24"], "opfoelgningsdato": d("2026-10-01"),
         "registreringsdato": d("2026-10-01"), "opfoelgningsform": "1", "sygedagpengekategori": "1"}])
    cv = {"samtaledato": d("2026-10-05"), "registreringsdato": d("2026-10-05"), "samtaleform": "101"}
    deliver(root, "cv_samtale", day, [{**cv, "cv_samtale_id": uid("c2"), "cpr": p["kg3"]},     # KG 3, aktivitetsparat
                                      {**cv, "cv_samtale_id": uid("c6"), "cpr": p["kg3_jobparat"]}])
    sb = {"startdato": d("2026-10-05"), "sagsbehandlertype": "1"}
    deliver(root, "sagsbehandler", day, [{**sb, "tilknytning_id": uid("b3"), "cpr": p["kg12"]},   # uddannelsesparat
                                         {**sb, "tilknytning_id": uid("b4"), "cpr": p["kg24"]},   # sdp-kategori 1
                                         {**sb, "tilknytning_id": uid("b1"), "cpr": p["kg1"]}])
    fr = {"fravaersaarsag": "9", "startdato": d("2026-10-05"), "anmeldelsesdato": d("2026-10-05"),
          "registreringsdato": d("2026-10-05")}
    deliver(root, "fravaer", day, [{**fr, "fravaer_id": uid("f1"), "cpr": p["kg1"]},             # KG 1, no ledighedsgrad
                                   {**fr, "fravaer_id": uid("f5"), "cpr": p["kg2"], "kommentar": "x"}])
    ind = {"samtaledato": d("2026-10-20"), "brevdato": d("2026-10-05"), "registreringsdato": d("2026-10-05"),
           "samtaletype": "17", "samtaleform": "101", "titel": "t", "beskrivelse": "b"}
    deliver(root, "indkaldelse", day, [
        {**ind, "indkaldelse_id": uid("i1"), "cpr": p["kg1"], "selvbooking_mulig": True,
         "alternativ_dato": ["2026-10-21"]},                                               # § 12, § 21, stk. 2
        {**ind, "indkaldelse_id": uid("i2"), "cpr": p["kg1"], "samtaletype": "4", "telefonnummer": "70123456"},
        {**ind, "indkaldelse_id": uid("i3"), "cpr": p["kg1"], "samtaletype": "4", "samtaleform": "102"},
        {**ind, "indkaldelse_id": uid("i4"), "cpr": p["kg1"], "samtaletype": "4", "samtaleform": "102",
         "telefonnummer": "70123456"}])
    deliver(root, "akasse_tilmelding", day, [
        {"tilmelding_id": uid("t1"), "cpr": p["kg1"], "akassekode": "067", "tilmeldekategori": "7",
         "startdato": d("2026-10-05"), "registreringsdato": d("2026-10-05")},
        {"tilmelding_id": uid("t2"), "cpr": p["kg1"], "akassekode": "067", "tilmeldekategori": "1",
         "startdato": d("2026-10-05"), "registreringsdato": d("2026-10-05")}], reporter="067")
    return root, {k: uid(k) for k in ("q1", "q2", "q3", "q6", "c2", "c6", "b1", "b3", "b4", "f1", "f5", "i1", "i2",
                                      "i3", "i4", "t1", "t2")}


def test_issue_16_rule_gaps_fail_exactly_the_records_the_order_forbids(tmp_path: Path) -> None:
    root, k = _rule_lake(tmp_path)
    eng = RuleEngine(root / "lake")
    day = dt.date(2026, 10, 10)
    failed: dict[str, set[str]] = {}
    applied: dict[str, set[str]] = {}
    for ds in ("samtale", "cv_samtale", "sagsbehandler", "fravaer", "indkaldelse", "akasse_tilmelding"):
        for row in eng.evaluate(ds, day):
            applied.setdefault(row["rule_id"], set()).add(row["record_key"])
            if row["failed"]:
                failed.setdefault(row["rule_id"], set()).add(row["record_key"])
    assert failed.get("SAM-011") == {k["q1"]}                   # § 25, stk. 1, nr. 9
    assert failed.get("CVS-001") == {k["c2"]}                   # § 29, nr. 1: KG 3 only jobparat
    assert failed.get("SBH-001") == {k["b3"], k["b4"]}          # § 48, nr. 4, 6, 7
    assert failed.get("FRA-007") == {k["f1"]} and k["f5"] not in applied["FRA-007"]   # § 33, stk. 4, nr. 9
    assert failed.get("FRA-009") == {k["f1"]}                   # empty kommentar: a warning, not quarantine
    assert failed.get("IND-014") == {k["i1"]} and failed.get("IND-015") == {k["i1"]}   # § 12; § 21, stk. 2
    assert failed.get("IND-016") == {k["i3"]} and failed.get("IND-017") == {k["i2"]}   # § 20, stk. 1, nr. 8
    assert failed.get("ATI-004") == {k["t1"]}                   # § 57
    sev = {r.id: r.severity for c in CONTRACTS.values() for r in c.rules}
    assert sev["ASA-002"] == "error" and sev["FRA-009"] == "warn"
    assert "DFDG" in next(r for r in CONTRACTS["akasse_tilmelding"].rules if r.id == "ATI-003").paragraph


def test_empty_required_free_text_does_not_quarantine_the_record() -> None:
    """"Bemærkningsfelt" names a field, not a duty to fill it: no field-level problem, only a warn rule."""
    from pipelines.contracts.validate import validate_record

    for ds, fld in (("fravaer", "kommentar"), ("sagsbehandler", "bemaerkning_borger"),
                    ("sagsbehandler", "bemaerkning_sagsbehandler"), ("indkaldelse", "titel"),
                    ("indkaldelse", "beskrivelse"), ("minplan_udkast", "planforslag")):
        c = CONTRACTS[ds]
        assert not c.field(fld).required
        assert not [p for p in validate_record(c, {fld: None}) if getattr(p, "field", None) == fld], (ds, fld)
        assert any(r.kind == "required_when" and r.params["field"] == fld and r.severity == "warn" for r in c.rules)
    for c in CONTRACTS.values():  # no required free text is left anywhere
        assert not [f.name for f in c.fields if f.required and f.pii == "free_text"], c.dataset


# ------------------------------------------------- § 17, stk. 8-9; § 25, stk. 2; § 34, stk. 3-6 (hand-made lake)
def _state_lake(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    from fixtures_wh import cpr_for, deliver, kg, uid

    day = dt.date(2026, 10, 10)
    d = dt.date.fromisoformat
    p = {n: cpr_for(d(f"19{60 + k}-02-01"), 20 + k) for k, n in enumerate(
        ("uo_ok", "uo_novis", "ky_vis2", "kg3", "flex", "ledig", "ustoettet", "ustoettet_kg8", "uo_kg3"))}
    spells = [
        {**kg("u1", p["uo_ok"], "2", "2026-09-01"), "persongruppe": "uo", "visitationsgruppe": "1"},
        {**kg("u2", p["uo_novis"], "2", "2026-09-01"), "persongruppe": "uo"},                  # KG-007
        {**kg("u3", p["ky_vis2"], "2", "2026-09-01"), "persongruppe": "ky", "visitationsgruppe": "2"},  # KG-005
        {**kg("u4", p["uo_kg3"], "3", "2026-09-01"), "persongruppe": "uo"},          # KG-005 and KG-007
        kg("s3", p["kg3"], "3", "2026-01-01"),
        kg("fx", p["flex"], "10", "2026-01-01", "2026-10-02"), kg("fx24", p["flex"], "24", "2026-10-03"),
        kg("ld", p["ledig"], "1", "2026-01-01", "2026-10-07"), kg("ld25", p["ledig"], "25", "2026-10-08"),
        kg("us24", p["ustoettet"], "24", "2026-10-08"),
        kg("k8", p["ustoettet_kg8"], "8", "2026-10-02", "2026-10-07"), kg("k8_24", p["ustoettet_kg8"], "24", "2026-10-08"),
    ]
    deliver(root := tmp_path / "root", "kontaktgruppe", day, spells)
    sam = {"samtaletype": "4", "samtaleform": "101"}
    deliver(root, "samtale", day, [
        # aktivitetsparat from 1 September; a conversation held 1 October makes the person jobparat, but is
        # registered on 6 October: the visitationsgruppe has effect from then (§ 25, stk. 2)
        {**sam, "samtale_id": uid("v0"), "cpr": p["kg3"], "samtaledato": d("2026-09-01"),
         "registreringsdato": d("2026-09-01"), "visitationsgruppe": "2"},
        {**sam, "samtale_id": uid("v1"), "cpr": p["kg3"], "samtaledato": d("2026-10-01"),
         "registreringsdato": d("2026-10-06"), "visitationsgruppe": "1"},
        {**sam, "samtale_id": uid("v2"), "cpr": p["kg3"], "samtaledato": d("2026-10-08"),
         "registreringsdato": d("2026-10-08"), "visitationsgruppe": "1"}])       # unchanged: § 25, stk. 1, nr. 9
    cv = {"samtaleform": "101"}
    deliver(root, "cv_samtale", day, [
        {**cv, "cv_samtale_id": uid("cv3"), "cpr": p["kg3"], "samtaledato": d("2026-10-03"),
         "registreringsdato": d("2026-10-03")},       # still aktivitetsparat on 3 October: § 29, nr. 1
        {**cv, "cv_samtale_id": uid("cv7"), "cpr": p["kg3"], "samtaledato": d("2026-10-07"),
         "registreringsdato": d("2026-10-07")}])
    syg = {"meldingstype": "sygemelding", "registreringsdato": d("2026-10-08"), "bevillingsdato": d("2026-10-08")}
    deliver(root, "syge_raskmelding", day, [
        {**syg, "sygemelding_uuid": uid("y1"), "fravaersforhold_uuid": uid("yf1"), "cpr": p["flex"],
         "foerste_sygedag": d("2026-10-03"), "anmeldelsesdato": d("2026-10-03")},   # KG 24 before the grant
        {**syg, "sygemelding_uuid": uid("y2"), "fravaersforhold_uuid": uid("yf2"), "cpr": p["ledig"],
         "foerste_sygedag": d("2026-10-03"), "anmeldelsesdato": d("2026-10-03")},   # stays in KG 1 until the grant
        {**syg, "sygemelding_uuid": uid("y3"), "fravaersforhold_uuid": uid("yf3"), "cpr": p["ustoettet"],
         "foerste_sygedag": d("2026-10-01"), "anmeldelsesdato": d("2026-10-02")},   # no KG 8 before KG 24
        {**syg, "sygemelding_uuid": uid("y4"), "fravaersforhold_uuid": uid("yf4"), "cpr": p["ustoettet_kg8"],
         "foerste_sygedag": d("2026-10-01"), "anmeldelsesdato": d("2026-10-02")}])
    keys = {k: uid(k) for k in ("u1", "u2", "u3", "u4", "v0", "v1", "v2", "cv3", "cv7", "y1", "y2", "y3", "y4")}
    return root, keys, p


def test_state_rules_of_17_25_34_fail_exactly_the_records_the_order_forbids(tmp_path: Path) -> None:
    root, k, p = _state_lake(tmp_path)
    day = dt.date(2026, 10, 10)
    run = run_quality(root, [day], datasets=["kontaktgruppe", "samtale", "cv_samtale", "syge_raskmelding"])
    failed: dict[str, set[str]] = {}
    checked: dict[str, set[str]] = {}
    for f in run.failures:
        failed.setdefault(f["rule_id"], set()).add(f["record_key"])
    eng = RuleEngine.shared(root / "lake")
    for ds in ("kontaktgruppe", "samtale", "cv_samtale", "syge_raskmelding"):
        for row in eng.evaluate(ds, day):
            checked.setdefault(row["rule_id"], set()).add(row["record_key"])
    # § 17, stk. 8-9: UO/KY in kontaktgruppe 2 "med visitationsgruppe 1"
    assert failed.get("KG-007") == {k["u2"], k["u4"]}
    assert failed.get("KG-005") == {k["u3"], k["u4"]} and k["u1"] in checked["KG-005"]
    # § 25, stk. 2: the visitationsgruppe holds from its registration date, not the conversation date
    assert failed.get("CVS-001") == {k["cv3"]} and k["cv7"] in checked["CVS-001"]
    assert failed.get("SAM-005") == {k["v2"]} and k["v1"] in checked["SAM-005"]
    # § 34, stk. 4-6 and stk. 3
    assert failed.get("SYG-006") == {k["y1"]} and k["y2"] in checked["SYG-006"]
    assert failed.get("SYG-007") == {k["y3"]} and k["y4"] in checked["SYG-007"]
    assert not {k["y2"], k["y4"]} & failed.get("SYG-004", set())   # personkreds on the grant date
    detail = {f["rule_id"]: f["detail"] for f in run.failures if f["record_key"] == k["y1"]}
    assert "kontaktgruppe 24 from 2026-10-03 before the grant on 2026-10-08" in detail["SYG-006"]
    # every result line names its § (the DQ report's line)
    para = {r["rule_id"]: r["paragraph"] for r in run.results}
    assert para["SYG-006"] == "§ 34, stk. 4-6" and para["SYG-007"] == "§ 34, stk. 3"
    assert para["KG-005"] == para["KG-007"] == "§ 17, stk. 8-9"


def test_category_spells_are_valid_from_the_registration_date(tmp_path: Path) -> None:
    """§ 2, nr. 3-5 as spells: each registered value from its registreringsdato (§ 25, stk. 2) to the day
    before the next; the UO/KY registration's visitationsgruppe 1 (§ 17, stk. 8-9) is one of them."""
    root, k, p = _state_lake(tmp_path)
    spells = RuleEngine(root / "lake").kategori_forloeb()
    kg3 = [(kat, v, str(fra), str(til) if til else None) for cpr, kat, v, fra, til, _rid in spells if cpr == p["kg3"]]
    # the repeated 1 registered on 8 October (SAM-005's warning) continues the spell
    assert kg3 == [("visitationsgruppe", "1", "2026-10-06", None), ("visitationsgruppe", "2", "2026-09-01", "2026-10-05")]
    uo = [(kat, v, str(fra)) for cpr, kat, v, fra, _til, _rid in spells if cpr == p["uo_ok"]]
    assert uo == [("visitationsgruppe", "1", "2026-09-01")]


def test_timeliness_is_measured_against_arrival_as_well_as_registration(tmp_path: Path) -> None:
    """§ 5: a record dated on time by the reporter but received late counts as late against the receive time."""
    from fixtures_wh import cpr_for, deliver, kg, uid

    from pipelines.quality.report import _load

    root = tmp_path / "root"
    d = dt.date.fromisoformat
    who = cpr_for(d("1980-03-01"), 7)
    deliver(root, "kontaktgruppe", d("2026-09-01"), [kg("a1", who, "1", "2026-09-01")])
    sam = {"samtaletype": "4", "samtaleform": "101", "cpr": who}
    # both registered the day they were held; the ledger received them on 10 October (fixtures: 12:00 Danish time)
    deliver(root, "samtale", d("2026-10-10"), [
        {**sam, "samtale_id": uid("late"), "samtaledato": d("2026-10-01"), "registreringsdato": d("2026-10-01")},
        {**sam, "samtale_id": uid("ontime"), "samtaledato": d("2026-10-09"), "registreringsdato": d("2026-10-09")}])
    run = run_quality(root, [d("2026-10-10")], datasets=["samtale"])
    got = sorted((t["rule_id"], t["lag_days"], t["arrival_lag_days"], t["records"]) for t in run.timeliness)
    assert got == [("SAM-002", 0, 1, 1), ("SAM-002", 0, 9, 1), ("SAM-003", 0, 1, 1), ("SAM-003", 0, 9, 1)]
    # by registration date nothing is late: no SAM-002 failure
    assert not [f for f in run.failures if f["rule_id"] in ("SAM-002", "SAM-003")]
    db = publish(run, root, [d("2026-10-10")])
    rows = duckdb.connect(str(db), read_only=True).execute(
        "SELECT rule_id, sum(records) FILTER (WHERE arrival_lag_days > max_lag_days) FROM dq_timeliness "
        "GROUP BY ALL ORDER BY 1").fetchall()
    assert rows == [("SAM-002", 1), ("SAM-003", 2)]
    # the reporter's page: registered on time, received late
    rep = _load(db, ("kommune", "101")).reporters[("kommune", "101")]
    sam2 = rep.deadlines[("samtale", "SAM-002")]
    assert (sam2.late, sam2.late_arrival, sam2.on_time_arrival_share) == (0, 1, 0.5)
