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
from pipelines.simulate.generate import generate
from pipelines.simulate.servers import start_sources

START = dt.date(2026, 10, 1)
DAYS = [START + dt.timedelta(days=k) for k in range(5)]
CONTRACTS = load_contracts()
# checks whose failures reach the lake (required/type/encoding/duplicate end in quarantine instead)
LAKE_CHECKS = {"codelist", "cpr_valid", "cvr_valid"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("dq")
    src = base / "sources"
    generate(src, scale="tiny", start=START, days=len(DAYS), seed=5, defect_rate=0.05)
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
                     "personkreds", "bilag1", "age_range"}


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
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from fixtures_wh import cpr_for, deliver
    from test_deliveries_support import kg, uid

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
