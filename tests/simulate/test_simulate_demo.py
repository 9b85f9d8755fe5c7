"""`make demo`'s synthetic Denmark (demo scale, 14 days, its seed): every issue-19 change kind, the problem
reporters and the persons of the deliveries that got no rows before (§ 41, stk. 2-3; § 39, stk. 11)."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.contracts import load_contracts
from pipelines.simulate.changes import CHANGE_KINDS
from pipelines.simulate.channels import iter_payloads, read_payload

START = dt.date(2026, 10, 1)
END = START + dt.timedelta(days=13)
CONTRACTS = load_contracts()


@pytest.fixture(scope="module")
def demo(generated) -> Path:
    return generated(scale="demo", days=14, seed=20261001)  # what `make demo` generates


@pytest.fixture(scope="module")
def records(demo: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = collections.defaultdict(list)
    for _channel, ds, p in iter_payloads(demo):
        if ds in ("kontaktgruppe", "foranstaltning", "plan", "tilmelding", "afmelding", "akasse_tilmelding",
                  "akasse_afmelding"):
            recs, _bad = read_payload(p, CONTRACTS[ds])
            out[ds] += [{**r, "_day": p.parent.name, "_file": p.name} for r in recs]
    return out


def test_every_change_kind_is_in_the_payloads_as_the_ground_truth_says(demo: Path, records) -> None:
    with (demo / "ground_truth.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["defect"] in CHANGE_KINDS]
    kinds = collections.Counter(r["defect"] for r in rows)
    assert set(kinds) == set(CHANGE_KINDS), kinds
    delivered = collections.defaultdict(set)
    for ds, recs in records.items():
        for r in recs:
            delivered[r["besked_id"]].add((ds, r["_day"]))
    for r in rows:
        if r["rule_id"].endswith(":duplicate:payload") or r["dataset"] not in records:
            continue
        assert (r["dataset"], r["leveringsdato"]) in delivered[r["besked_id"]], r
    # a deletion is an aendringstype 3 of a key created earlier in the period
    deletes = {r["besked_id"] for r in rows if r["defect"] == "deleted_in_error" and r["expected"].startswith("wins")}
    assert deletes and all(rec["aendringstype"] == "3" for recs in records.values() for rec in recs
                           if rec["besked_id"] in deletes)
    meta = json.loads((demo / "generation.json").read_text(encoding="utf-8"))
    assert {b["kind"] for b in meta["reporter_behaviour"]} == {"late", "broken_field", "stopped"}


def test_the_delivery_populations_that_had_no_rows_now_have_persons(demo: Path, records) -> None:
    persons = {r["cpr"]: r for r in pq.read_table(demo / "truth" / "persons.parquet").to_pylist()}
    spells = collections.defaultdict(list)
    for s in pq.read_table(demo / "truth" / "spells.parquet").to_pylist():
        spells[s["cpr"]].append(s)
    foranst = records["foranstaltning"]

    def age(cpr: str, day: dt.date) -> int:
        b = persons[cpr]["foedselsdato"]
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))

    # § 41, stk. 2 (UVM): under 18, kontaktgruppe 2-6, a foranstaltning
    uvm = {r["cpr"] for r in foranst if r["cpr"] in persons and age(r["cpr"], END) < 18
           and any(s["kontaktgruppe"] in (2, 3, 4, 5, 6) for s in spells[r["cpr"]])}
    assert len(uvm) >= 2
    # § 41, stk. 3 (ATP/SKAT): born 1946-1952, løntilskud overlapping 2010-2016
    atp = {r["cpr"] for r in foranst if r["cpr"] in persons
           and dt.date(1946, 1, 1) <= persons[r["cpr"]]["foedselsdato"] <= dt.date(1952, 12, 31)
           and r["aktiveringstype"] in ("10", "11") and r["startdato"] <= "2016-12-31"}
    assert len(atp) >= 10
    # § 39, stk. 11: a spell moved to another kommune whose person has a plan or foranstaltning from the old one
    kg = sorted(records["kontaktgruppe"], key=lambda r: (r["registreringstidspunkt"], r["version"]))
    first_kommune: dict[str, str] = {}
    moved: dict[str, str] = {}
    for r in kg:
        k = r["kontaktgruppe_id"]
        if k in first_kommune and r["kommunekode"] not in (first_kommune[k], "999"):
            moved[r["cpr"]] = first_kommune[k]
        first_kommune.setdefault(k, r["kommunekode"])
    carried = {r["cpr"] for ds in ("plan", "foranstaltning") for r in records[ds]
               if r["cpr"] in moved and r["kommunekode"] == moved[r["cpr"]]}
    assert len(moved) >= 10 and len(carried) >= 3, (len(moved), len(carried))


def test_every_recipient_population_has_persons_in_the_demo(demo: Path) -> None:
    """The five recipients that had no rows (issue 12), counted as their SQL cuts them, at the demo's scale."""
    from test_simulate_recipients import populations

    got = {k: len(v) for k, v in populations(demo, START, END).items()}
    assert len(got) == 5 and min(got.values()) >= 3, got
