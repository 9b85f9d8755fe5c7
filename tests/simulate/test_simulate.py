"""The synthetic Denmark: deterministic, contract-conforming except the ground-truth defects,
consistent with the population's states (personkreds, Bilag 1), in the channels' formats."""

from __future__ import annotations

import bisect
import collections
import csv
import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from stdnum.dk import cpr as std_cpr

from pipelines.contracts import load_contracts
from pipelines.contracts.validate import SINGLE_RECORD_KINDS, validate_record, validate_rules
from pipelines.contracts.wire import FTP_TRAILER
from pipelines.simulate.changes import CHANGE_KINDS
from pipelines.simulate.channels import iter_payloads, read_payload
from pipelines.simulate.generate import DEFECT_KINDS, bilag1_allows, generate

START = dt.date(2026, 10, 1)
CONTRACTS = load_contracts()


@pytest.fixture(scope="module")
def gen(generated) -> Path:
    """Tiny, 10 days, seed 11, 3 % defects (conftest ``generated``, read only)."""
    return generated(days=10, seed=11, defect_rate=0.03)


def payloads(out: Path):
    """(dataset, path) for every payload file the sources would serve."""
    for _channel, ds, p in iter_payloads(out):
        yield ds, p


def all_records(out: Path):
    for ds, p in payloads(out):
        recs, bad = read_payload(p, CONTRACTS[ds])
        for k, r in enumerate(recs):
            yield ds, p, r, k in bad


def ground_truth(out: Path) -> dict[str, list[dict[str, str]]]:
    gt: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
    with (out / "ground_truth.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            gt[row["besked_id"]].append(row)
    return gt


def digest(out: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(out.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(out)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, scale="tiny", start=START, days=3, seed=5)
    generate(b, scale="tiny", start=START, days=3, seed=5)
    generate(c, scale="tiny", start=START, days=3, seed=6)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_rerun_into_same_directory_replaces_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "o"
    generate(out, scale="tiny", start=START, days=3, seed=5)
    first = digest(out)
    generate(out, scale="tiny", start=START, days=2, seed=5)
    assert not list((out / "webservice" / "kontaktgruppe").glob("2026-10-03"))
    generate(out, scale="tiny", start=START, days=3, seed=5)
    assert digest(out) == first


def test_refuses_to_clobber_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="refusing"):
        generate(tmp_path, scale="tiny", start=START, days=1, seed=1)
    assert (tmp_path / "precious.txt").exists()


def test_records_conform_to_contracts_except_exactly_the_defects(gen: Path) -> None:
    """Field-level problems (required/type/code list/CPR/encoding) and single-record rule
    problems (deadlines, date windows, required_when, allowed/fixed values, start <= end)
    occur on, and only on, records the ground truth names for that rule."""
    gt = ground_truth(gen)
    field_rules = {"required", "type", "codelist", "cpr_valid", "cvr_valid", "encoding"}
    record_rules = {r.id for c in CONTRACTS.values() for r in c.rules if r.kind in SINGLE_RECORD_KINDS}
    expected = {(b, r["rule_id"]) for b, rows in gt.items() for r in rows
                if (r["rule_id"].count(":") == 2 and r["rule_id"].split(":")[1] in field_rules)
                or r["rule_id"] in record_rules}
    found = set()
    n = 0
    for ds, _p, rec, bad_enc in all_records(gen):
        n += 1
        for prob in validate_record(CONTRACTS[ds], rec) + validate_rules(CONTRACTS[ds], rec):
            found.add((rec["besked_id"], prob.rule_id))
        if bad_enc:
            enc = [r["rule_id"] for r in gt.get(rec["besked_id"], []) if ":encoding:" in r["rule_id"]]
            found.add((rec["besked_id"], enc[0] if enc else f"{ds}:encoding:?"))
    assert n > 3000
    assert found - expected == set(), "problems on records the ground truth does not name"
    assert expected - found == set(), "ground-truth defects that the records do not show"


@pytest.fixture(scope="module")
def demo_gen(generated) -> Path:
    """Demo scale, 4 days, seed 2, 20 % defects: every defect kind, and moves between kommuner."""
    return generated(scale="demo", days=4, seed=2, defect_rate=0.2)


def test_every_defect_kind_is_injected_and_documented(demo_gen: Path) -> None:
    rows = [r for rs in ground_truth(demo_gen).values() for r in rs]
    kinds = {r["defect"] for r in rows}
    behaviour = {"reporter_late", "reporter_broken_field", "reporter_stopped"}
    assert set(DEFECT_KINDS) <= kinds
    assert kinds <= set(DEFECT_KINDS) | set(CHANGE_KINDS) | behaviour | {"late_reporter", "broken_field"}
    rule_ids = {r.id for c in CONTRACTS.values() for r in c.rules}
    for r in rows:
        assert r["expected"], r
        if r["defect"] in behaviour:  # a reporter, not a message, is the finding
            assert r["rule_id"].startswith("reporter:") and r["indberetter"] and not r["besked_id"]
            continue
        assert r["rule_id"] in rule_ids or r["rule_id"].split(":")[0] in CONTRACTS, r
        assert r["besked_id"] and r["leveringsdato"] and r["field"]


def test_duplicates_are_the_same_message_twice(gen: Path) -> None:
    gt = ground_truth(gen)
    dup_ids = {b for b, rows in gt.items() if any(r["defect"] in ("duplicate_message", "redelivered_unchanged",
                                                                  "redelivered_corrected")
                                                  and ":duplicate:" in r["rule_id"] for r in rows)}
    assert dup_ids
    seen = collections.Counter(rec["besked_id"] for _ds, _p, rec, _b in all_records(gen))
    assert {b for b, n in seen.items() if n > 1} == dup_ids


class Truth:
    def __init__(self, out: Path) -> None:
        t = out / "truth"
        self.persons = {r["cpr"]: r for r in pq.read_table(t / "persons.parquet").to_pylist()}
        self.spells: dict[str, list[dict]] = collections.defaultdict(list)
        for r in pq.read_table(t / "spells.parquet").to_pylist():
            self.spells[r["cpr"]].append(r)
        self.groups: dict[str, list[tuple[dt.date, int, int, int]]] = collections.defaultdict(list)
        for r in pq.read_table(t / "groups.parquet").to_pylist():
            self.groups[r["cpr"]].append((r["fra_dato"], r["kontaktgruppe"], r["visitationsgruppe"],
                                          r["matchgruppe"]))
        for v in self.groups.values():
            v.sort()

    def spell_on(self, cpr: str, day: dt.date) -> dict | None:
        for s in self.spells.get(cpr, []):
            if s["startdato"] <= day and (s["slutdato"] is None or day <= s["slutdato"]):
                return s
        return None

    def groups_on(self, cpr: str, day: dt.date) -> tuple[int, int, int]:
        g = self.groups.get(cpr, [])
        k = bisect.bisect_right([x[0] for x in g], day) - 1
        return g[k][1:] if k >= 0 else (0, 0, 0)

    def age(self, cpr: str, day: dt.date) -> int:
        b = self.persons[cpr]["foedselsdato"]
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


@pytest.fixture(scope="module")
def truth(gen: Path) -> Truth:
    return Truth(gen)


def _event_day(c, rec) -> dt.date:
    return dt.date.fromisoformat(str(rec.get(c.event_time) or rec["haendelsestidspunkt"])[:10])


def test_clean_records_respect_personkreds(gen: Path, truth: Truth) -> None:
    gt = ground_truth(gen)
    checked = 0
    for ds, _p, rec, _b in all_records(gen):
        c = CONTRACTS[ds]
        if rec["besked_id"] in gt or not any(r.kind == "personkreds" for r in c.rules):
            continue
        pk = c.personkreds
        day = _event_day(c, rec)
        if pk.kontaktgrupper:
            sp = truth.spell_on(rec["cpr"], day)
            ok = sp is not None and (sp["kontaktgruppe"] in pk.kontaktgrupper
                                     or (sp["persongruppe"] or "") in pk.person_groups)
            assert ok, f"{ds} {rec['besked_id']}: {rec['cpr'][:6]} not in personkreds on {day} (spell {sp})"
        if pk.min_age is not None:
            assert pk.min_age <= truth.age(rec["cpr"], day) <= (pk.max_age or 200), ds
        checked += 1
    assert checked > 1000


def test_clean_fravaer_follows_bilag1(gen: Path, truth: Truth) -> None:
    from pipelines.simulate.generate import _bilag1

    cells = _bilag1()
    gt = ground_truth(gen)
    checked = 0
    for ds, _p, rec, _b in all_records(gen):
        if ds not in ("fravaer", "akasse_fravaer") or rec["besked_id"] in gt:
            continue
        day = _event_day(CONTRACTS[ds], rec)
        kg, vis, mat = truth.groups_on(rec["cpr"], day)
        assert bilag1_allows(cells[rec["fravaersaarsag"]], kg, vis, mat), (ds, rec["fravaersaarsag"], kg, vis)
        checked += 1
    assert checked > 20


def test_akasse_fravaer_uses_only_the_four_reasons_of_section_64(gen: Path) -> None:
    from pipelines.contracts import codelist

    allowed = {r["kode"] for r in codelist("fravaersaarsager") if r["akasse_tilladt"] == "true"}
    assert len(allowed) == 4
    gt = ground_truth(gen)
    reasons = {rec["fravaersaarsag"] for ds, _p, rec, _b in all_records(gen)
               if ds == "akasse_fravaer" and rec["besked_id"] not in gt}
    assert reasons and reasons <= allowed


def test_persons_have_valid_cpr_matching_birth_date_and_gender(gen: Path, truth: Truth) -> None:
    cprs = pq.read_table(gen / "truth" / "persons.parquet").column("cpr").to_pylist()
    assert len(set(cprs)) == len(cprs), "two persons share a CPR number"
    for cpr, p in truth.persons.items():
        std_cpr.validate(cpr)
        assert std_cpr.get_birth_date(cpr) == p["foedselsdato"]
        assert ("M" if int(cpr[-1]) % 2 else "K") == p["koen"]


def test_spells_never_overlap_and_stocks_are_realistic(truth: Truth) -> None:
    for cpr, spells in truth.spells.items():
        ss = sorted(spells, key=lambda s: s["startdato"])
        for a, b in zip(ss, ss[1:], strict=False):
            assert a["slutdato"] is not None and a["slutdato"] < b["startdato"], cpr
    open_on_start = collections.Counter(
        s["kontaktgruppe"] for v in truth.spells.values() for s in v
        if s["startdato"] <= START and (s["slutdato"] is None or s["slutdato"] >= START))
    n = len(truth.persons)
    # per 1M: ~100k dagpenge, ~80k sygedagpenge (24+25), ~95k kontant-/uddannelseshjælp (2+3+12)
    assert 0.08 < open_on_start[1] / n < 0.12
    assert 0.06 < (open_on_start[24] + open_on_start[25]) / n < 0.10
    assert 0.08 < (open_on_start[2] + open_on_start[3] + open_on_start[12]) / n < 0.13
    assert 9 not in open_on_start


def test_joblog_two_to_three_applications_a_week_per_dagpengemodtager(gen: Path, truth: Truth) -> None:
    n_jobsoeg = sum(1 for ds, _p, _r, _b in all_records(gen) if ds == "joblog_jobsoegning")
    kg1_days = 0
    for v in truth.spells.values():
        for s in v:
            if s["kontaktgruppe"] != 1:
                continue
            a = max(s["startdato"], START)
            b = min(s["slutdato"] or START + dt.timedelta(days=9), START + dt.timedelta(days=9))
            kg1_days += max(0, (b - a).days + 1)
    per_week = n_jobsoeg / (kg1_days / 7)
    assert 1.8 < per_week < 3.2, per_week


def test_cvr_numbers_pass_modulus_11(gen: Path) -> None:
    from stdnum.dk import cvr

    gt = ground_truth(gen)
    seen = 0
    for ds, _p, rec, _b in all_records(gen):
        for f in CONTRACTS[ds].fields:
            if f.type == "cvr" and rec.get(f.name) and rec["besked_id"] not in gt:
                cvr.validate(rec[f.name])
                seen += 1
    assert seen > 20


def test_channel_formats(gen: Path) -> None:
    ftp = sorted((gen / "ftp").rglob("*.csv"))
    assert ftp
    for p in ftp:
        raw = p.read_bytes()
        text = raw.decode("latin-1")
        lines = text.split("\r\n")
        assert lines[-1] == "" and lines[-2].startswith(FTP_TRAILER + ";")
        assert int(lines[-2].split(";")[1]) == len(lines) - 3  # header, trailer, final empty
        assert ";" in lines[0] and "\r\n" in text
    for p in sorted((gen / "portal").rglob("*.csv")):
        assert p.read_bytes().startswith(b"\xef\xbb\xbf")
    ssi = sorted((gen / "drops" / "ssi").rglob("*.txt"))
    assert ssi
    for p in ssi:
        lines = p.read_text(encoding="latin-1").splitlines()
        assert lines[0].startswith("H|") and lines[-1] == f"T|{sum(1 for x in lines if x.startswith('D|'))}"
        assert Path(str(p) + ".done").exists()
    for p in sorted((gen / "drops" / "uvm").rglob("*.csv")):
        assert Path(str(p) + ".done").exists()
    tokens = json.loads((gen / "webservice" / "tokens.json").read_text())
    assert "101" in tokens and "JOBNET" in tokens and len(set(tokens.values())) == len(tokens)


def test_every_dataset_is_generated(gen: Path) -> None:
    meta = json.loads((gen / "generation.json").read_text(encoding="utf-8"))
    produced = {ds for ch in meta["counts"].values() for ds in ch}
    assert produced == set(CONTRACTS)
    for ds, c in CONTRACTS.items():
        assert ds in meta["counts"][c.channel], f"{ds} not written to its channel {c.channel}"


def test_updates_and_deletes_refer_to_earlier_creates(gen: Path) -> None:
    gt = ground_truth(gen)
    created: set[tuple[str, str]] = set()
    recs = sorted(all_records(gen), key=lambda x: x[2]["registreringstidspunkt"])
    changes = 0
    for ds, _p, rec, _b in recs:
        c = CONTRACTS[ds]
        key = (ds, rec[c.record_key[0]])
        if rec["aendringstype"] == "1":
            created.add(key)
        elif rec["besked_id"] not in gt:
            changes += 1
            assert key in created or rec["registreringstidspunkt"][:10] == START.isoformat() or \
                ds == "kontaktgruppe", (ds, rec["besked_id"])
    assert changes > 10


def test_a_move_updates_the_spell_from_the_new_kommune(demo_gen: Path) -> None:
    """§ 16, stk. 5: the new opholdskommune takes over the spell (same key, higher version)."""
    truth = Truth(demo_gen)
    first: dict[str, dict] = {}
    moves = 0
    recs = sorted((r for ds, _p, r, _b in all_records(demo_gen) if ds == "kontaktgruppe"),
                  key=lambda r: (r["registreringstidspunkt"], r["version"]))
    for r in recs:
        k = r["kontaktgruppe_id"]
        if k in first and r["slutdato"] is None and r["kommunekode"] != first[k]["kommunekode"] \
                and r["aendringstype"] == "2":
            moves += 1
            assert r["version"] > first[k]["version"]
            assert r["indberetter"] == r["kommunekode"]
            assert truth.persons[r["cpr"]]["opholdskommune"] == r["kommunekode"]
        first.setdefault(k, r)
    assert moves >= 2


@pytest.mark.parametrize("day", [dt.date(2026, 10, 7), dt.date(2028, 2, 29), dt.date(2027, 3, 1), dt.date(2026, 1, 1)])
def test_vectorised_age_matches_calendar_age(day: dt.date) -> None:
    """Ages decide personkreds (UVM 15-29, SSI 15-64): birthdays, leap years included."""
    import numpy as np

    from pipelines.simulate.population import Population

    rng = np.random.default_rng(1)
    birth = np.datetime64("1940-01-01") + rng.integers(0, 30000, 5000).astype("timedelta64[D]")
    birth = np.concatenate([birth, np.array(["1996-10-07", "2000-02-29", "1996-02-29"], dtype="datetime64[D]")])
    pop = Population.__new__(Population)
    pop.birth = birth
    expected = [day.year - b.year - ((day.month, day.day) < (b.month, b.day)) for b in birth.astype(dt.date)]
    assert pop.age_on(day).tolist() == expected
