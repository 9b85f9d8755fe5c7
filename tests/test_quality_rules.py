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
