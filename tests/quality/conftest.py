"""The quality tests' shared fixtures: ``dq_db``, a realistic, deterministic dq.duckdb for the report tests.

Why: the reports and their tests must not wait for the quality engine that fills the results tables.
This builder writes exactly the published tables (dq_results, dq_timeliness, dq_completeness) for 14
delivery days, all 98 kommuner and the a-kasser, with the contracts' real rule ids, § references and
texts, and generic check ids.  Numbers are internally consistent the way the engine's must be: a
deadline rule's records_failed equals the records in dq_timeliness beyond its max_lag_days, and only
datasets that arrived (dq_completeness) carry results.  One a-kasse sends nothing in the period.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.contracts import GENERIC_CHECKS, Contract, codelist, generic_rule_id, load_contracts

START = dt.date(2026, 10, 1)
DAYS = 14
# One a-kasse sends nothing in the period: it must get no page (pages are for reporters present).
SILENT_AKASSE = "067"
# Relative daily volume per dataset (records per 1,000 inhabitants / members).
VOLUME = {
    "samtale": 1.0, "samtale_deltager": 1.3, "indkaldelse": 1.2, "kontaktgruppe": 0.5, "fravaer": 0.4,
    "foranstaltning": 0.5, "plan": 0.4, "cv_samtale": 0.2, "tilmelding": 0.3, "afmelding": 0.3,
    "foerste_henvendelse": 0.2, "haendelse_akasse": 0.2, "sagsbehandler": 0.1, "raadighedsvurdering": 0.1,
    "sanktion": 0.05, "sdp_opfoelgning": 0.3, "syge_raskmelding": 0.4, "uddannelsesplan": 0.1,
}
RULES_PER_DATASET = 4  # contract rules besides the deadline rules, kept small for speed
SEVERITY_BASE = {"error": 0.01, "warn": 0.03}

SCHEMA = """
CREATE TABLE dq_results (
    leveringsdato DATE, reporter VARCHAR, reporter_kind VARCHAR, dataset VARCHAR, rule_id VARCHAR,
    paragraph VARCHAR, severity VARCHAR, text_da VARCHAR, text_en VARCHAR,
    records_checked BIGINT, records_failed BIGINT, sample_keys VARCHAR[]);
CREATE TABLE dq_timeliness (
    leveringsdato DATE, reporter VARCHAR, dataset VARCHAR, rule_id VARCHAR,
    lag_days INTEGER, records BIGINT, max_lag_days INTEGER);
CREATE TABLE dq_completeness (
    leveringsdato DATE, reporter VARCHAR, dataset VARCHAR, payloads INTEGER, records BIGINT);
"""


def _generic_rules(c: Contract) -> list[dict]:
    """Checks the engine derives from the contract: two code-list fields and one required field."""
    out = []
    codes = [f for f in c.fields if f.codelist and f.paragraph and f.name != "kommunekode"][:2]
    req = [f for f in c.fields if f.required and f.paragraph and f.type != "code"][:1]
    for check, f in [("codelist", f) for f in codes] + [("required", f) for f in req]:
        da, en = GENERIC_CHECKS[check].split(" / ")
        out.append({"id": generic_rule_id(c.dataset, check, f.name), "paragraph": f.paragraph,
                    "severity": "error", "text_da": f"{da}: {f.name}", "text_en": f"{en}: {f.name}",
                    "deadline": None})
    return out


def _rules(c: Contract) -> list[dict]:
    deadlines = [r for r in c.rules if r.kind == "deadline"]
    others = [r for r in c.rules if r.kind != "deadline"][:RULES_PER_DATASET]
    # Bilag 1 rules are the ones stewards talk about most: always keep them.
    others += [r for r in c.rules if r.kind == "bilag1" and r not in others]
    rules = [{"id": r.id, "paragraph": r.paragraph, "severity": r.severity, "text_da": r.text_da,
              "text_en": r.text_en, "deadline": r.params["max_lag_days"] if r.kind == "deadline" else None}
             for r in deadlines + others]
    return rules + _generic_rules(c)


def _key(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _lags(rng: random.Random, n: int, deadline: int, lateness: float) -> dict[int, int]:
    """Split n registrations over lag days: most within the deadline, a tail beyond it."""
    late = min(n, round(n * lateness * (0.5 + rng.random())))
    out: dict[int, int] = {}
    on_time = n - late
    for lag in range(deadline + 1):
        share = on_time if lag == deadline else round(on_time * (0.7 if lag == 0 else 0.5))
        share = min(share, on_time)
        if share:
            out[lag] = out.get(lag, 0) + share
        on_time -= share
    for _ in range(late):
        lag = deadline + 1 + min(int(rng.expovariate(0.35)), 25)
        out[lag] = out.get(lag, 0) + 1
    return out


def make_dq_db(path: Path, seed: int = 1) -> Path:
    """Write a dq.duckdb with the three published results tables at ``path``; returns ``path``."""
    path = Path(path)
    path.unlink(missing_ok=True)
    rng = random.Random(seed)
    contracts = load_contracts()
    days = [START + dt.timedelta(days=i) for i in range(DAYS)]
    reporters: list[tuple[str, str, int]] = [
        (row["kode"], "kommune", int(row["indbyggere"])) for row in codelist("kommuner")]
    reporters += [(row["kode"], "akasse", int(row["medlemmer"]) // 2)
                  for row in codelist("akasser") if row["kode"] != SILENT_AKASSE]
    by_kind = {
        "kommune": [c for c in contracts.values() if c.reporter == "jobcenter"],
        "akasse": [c for c in contracts.values() if c.reporter == "akasse"],
    }
    rules = {c.dataset: _rules(c) for cs in by_kind.values() for c in cs}

    res: dict[str, list] = {k: [] for k in (
        "leveringsdato", "reporter", "reporter_kind", "dataset", "rule_id", "paragraph", "severity",
        "text_da", "text_en", "records_checked", "records_failed", "sample_keys")}
    tim: dict[str, list] = {k: [] for k in (
        "leveringsdato", "reporter", "dataset", "rule_id", "lag_days", "records", "max_lag_days")}
    com: dict[str, list] = {k: [] for k in ("leveringsdato", "reporter", "dataset", "payloads", "records")}

    for code, kind, size in reporters:
        quality = rng.lognormvariate(0, 0.8)  # >1: a reporter with more errors than usual
        lateness = min(0.6, 0.04 * rng.lognormvariate(0, 0.9))
        datasets = by_kind[kind]
        problem = rng.choice([r for c in datasets for r in rules[c.dataset]])["id"]  # one chronic defect
        # An outage: one dataset missing for a few consecutive days for every 4th reporter.
        outage = (rng.choice(datasets).dataset, rng.randrange(DAYS - 3), rng.randint(1, 3)) \
            if rng.random() < 0.25 else None
        for c in datasets:
            vol = VOLUME.get(c.dataset, 0.3)
            for i, day in enumerate(days):
                if outage and outage[0] == c.dataset and outage[1] <= i < outage[1] + outage[2]:
                    continue
                weekend = day.weekday() >= 5
                mean = size / 1000 * vol * (0.15 if weekend else 1.0)
                n = max(0, round(mean * (0.7 + 0.6 * rng.random())))
                if n == 0 and rng.random() < 0.5:
                    continue  # small reporters send nothing on some days
                payloads = max(1, -(-n // 500))  # webservice pages of 500 records
                for col, val in zip(com, (day, code, c.dataset, payloads, n), strict=True):
                    com[col].append(val)
                for r in rules[c.dataset]:
                    if r["deadline"] is not None:
                        checked_n = round(n * 0.6)
                        lags = _lags(rng, checked_n, r["deadline"], lateness)
                        for lag, cnt in sorted(lags.items()):
                            for col, val in zip(tim, (day, code, c.dataset, r["id"], lag, cnt, r["deadline"]),
                                                strict=True):
                                tim[col].append(val)
                        checked = sum(lags.values())
                        failed = sum(cnt for lag, cnt in lags.items() if lag > r["deadline"])
                    else:
                        checked = round(n * (0.3 + 0.7 * rng.random()))
                        rate = SEVERITY_BASE[r["severity"]] * quality * (8 if r["id"] == problem else 1)
                        failed = min(checked, round(checked * rate * (0.4 + 1.2 * rng.random())))
                    samples = [_key(rng) for _ in range(min(5, failed))]
                    row = (day, code, kind, c.dataset, r["id"], r["paragraph"], r["severity"], r["text_da"],
                           r["text_en"], checked, failed, samples)
                    for col, val in zip(res, row, strict=True):
                        res[col].append(val)

    # Other reporter kinds exist in the results too; the reports must ignore them gracefully.
    for i, day in enumerate(days):
        uvm = (day, "UVM", "uvm", "uddannelse", "UDD-002", "§ 89; § 90", "error",
               "Personen skal være 15-29 år.", "Age 15-29.", 1000 + i, i, [])
        for col, val in zip(res, uvm, strict=True):
            res[col].append(val)
        for col, val in zip(com, (day, "UVM", "uddannelse", 1, 1000 + i), strict=True):
            com[col].append(val)

    con = duckdb.connect(str(path))
    try:
        con.execute(SCHEMA)
        types = {"leveringsdato": pa.date32(), "sample_keys": pa.list_(pa.string())}
        for name, cols in (("dq_results", res), ("dq_timeliness", tim), ("dq_completeness", com)):
            tbl = pa.table({k: pa.array(v, type=types.get(k)) for k, v in cols.items()})  # noqa: F841
            con.execute(f"INSERT INTO {name} SELECT * FROM tbl")
    finally:
        con.close()
    return path


@pytest.fixture(scope="session")
def dq_db(build_once) -> Path:
    """``make_dq_db`` with seed 1, written once per session for every worker (read only)."""
    return build_once("dq_db", lambda work: make_dq_db(work / "dq.duckdb", seed=1)) / "dq.duckdb"
