"""Every recipient's population is in the synthetic Denmark (issue 12): counted from the generated payloads.

The recipients that got no rows in the demo (§ 41, stk. 2 UVM; § 41, stk. 3 ATP/SKAT; § 39, stk. 11 the
tilflytningskommune; § 42, stk. 2 the uddannelsesinstitution; § 66, stk. 5 the new a-kasse) each need
persons the simulator rarely produced.  Here a small Denmark (5,000 persons, the 14 days of the demo) is
generated and each population is counted from the payloads as the recipient's SQL in
pipelines/deliveries/recipients.yaml cuts it, without running the pipeline.
"""

from __future__ import annotations

import collections
import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.contracts import load_contracts
from pipelines.simulate.channels import iter_payloads, read_payload

START = dt.date(2026, 10, 1)
DAYS = 14
END = START + dt.timedelta(days=DAYS - 1)
CONTRACTS = load_contracts()
DATASETS = ("kontaktgruppe", "foranstaltning", "plan", "uddannelsesplan", "haendelse_akasse",
            "akasse_tilmelding", "akasse_afmelding", "indplacering", "joblog_jobsoegning")


def read_records(out: Path, datasets: tuple[str, ...] = DATASETS) -> dict[str, list[dict]]:
    """Every record of ``datasets`` in the payloads, with its delivery day (``_day``)."""
    recs: dict[str, list[dict]] = collections.defaultdict(list)
    for _channel, ds, p in iter_payloads(out):
        if ds in datasets:
            rows, _bad = read_payload(p, CONTRACTS[ds])
            recs[ds] += [{**r, "_day": p.parent.name} for r in rows]
    return recs


def _d(s: str | None) -> dt.date | None:
    return dt.date.fromisoformat(s[:10]) if s else None


def populations(out: Path, start: dt.date = START, end: dt.date = END) -> dict[str, set[str]]:
    """The persons (CPR) each recipient would get rows for in the period ``start``..``end``."""
    recs = read_records(out)
    persons = {r["cpr"]: r for r in pq.read_table(out / "truth" / "persons.parquet").to_pylist()}
    spells: dict[str, list[dict]] = collections.defaultdict(list)
    for s in pq.read_table(out / "truth" / "spells.parquet").to_pylist():
        spells[s["cpr"]].append(s)

    def in_kg(cpr: str, groups: tuple[int, ...], lo: dt.date, hi: dt.date) -> bool:
        return any(s["kontaktgruppe"] in groups and s["startdato"] <= hi and (s["slutdato"] or hi) >= lo
                   for s in spells[cpr])

    def eighteen(cpr: str) -> dt.date:
        b = persons[cpr]["foedselsdato"]
        return b.replace(year=b.year + 18) if (b.month, b.day) != (2, 29) else dt.date(b.year + 18, 3, 1)

    out_sets: dict[str, set[str]] = {}
    # § 41, stk. 2: a foranstaltning in the period of a person under 18 in kontaktgruppe 2-6
    out_sets["uvm"] = {
        r["cpr"] for r in recs["foranstaltning"] if r["cpr"] in persons
        and _d(r["startdato"]) <= end and (_d(r["slutdato"]) or end) >= start
        and start < eighteen(r["cpr"]) and in_kg(r["cpr"], (2, 3, 4, 5, 6), start, min(end, eighteen(r["cpr"])))}
    # § 41, stk. 3: born 1946-1952 with løntilskud (aktiveringstype 10/11) in 2010-2016
    out_sets["atp_skat"] = {
        r["cpr"] for r in recs["foranstaltning"] if r["cpr"] in persons
        and dt.date(1946, 1, 1) <= persons[r["cpr"]]["foedselsdato"] <= dt.date(1952, 12, 31)
        and r["aktiveringstype"] in ("10", "11") and _d(r["startdato"]) <= dt.date(2016, 12, 31)
        and (_d(r["slutdato"]) or end) >= dt.date(2010, 1, 1)}
    # § 39, stk. 11: a move in the period (a spell's kommune changes, or a new spell in another kommune)
    # of a person with a current plan, uddannelsespålæg, foranstaltning or henvisning from the old kommune
    kg = sorted(recs["kontaktgruppe"], key=lambda r: (r["_day"], r["registreringstidspunkt"], int(r["version"])))
    kommune: dict[str, str] = {}
    last_kommune: dict[str, str] = {}
    moves: dict[str, tuple[str, dt.date]] = {}
    for r in kg:
        k, cpr, kom = r["kontaktgruppe_id"], r["cpr"], r["kommunekode"]
        if kom == "999" or r["aendringstype"] == "3":
            continue
        prev = kommune.get(k) or last_kommune.get(cpr)
        when = _d(r["haendelsestidspunkt"]) if k in kommune else _d(r["startdato"])
        if prev and prev != kom and when and start <= when <= end:
            moves[cpr] = (prev, when)
        kommune[k] = kom
        last_kommune[cpr] = kom
    carried = set()
    for ds, ok in (("plan", lambda r, _w: r["plantype"] in ("1", "2", "4") and r["status"] in ("2", "3")),
                   ("uddannelsesplan", lambda r, _w: r["status"] in ("2", "3")),
                   ("foranstaltning", lambda r, w: (_d(r["slutdato"]) or w) >= w and r["status"] not in ("1", "2")),
                   ("haendelse_akasse", lambda r, w: r["haendelsestype"] in ("12", "13", "14", "15")
                    and _d(r["haendelsesdato"]) <= w)):
        for r in recs[ds]:
            mv = moves.get(r["cpr"])
            if mv and r["kommunekode"] == mv[0] and ok(r, mv[1]):
                carried.add(r["cpr"])
    out_sets["tilflytningskommune"] = carried
    # § 42, stk. 2: an uddannelsespålæg at trin 4 in the period for a person in kontaktgruppe 1 or 12
    out_sets["uddannelsesinstitution"] = {
        r["cpr"] for r in recs["uddannelsesplan"] if r["cpr"] in persons and r["trin"] == "4"
        and r["uddannelsesinstitution"] and r["status"] not in ("4", "5") and r["aendringstype"] != "3"
        and start <= _d(r["oprettelses_revisionsdato"]) <= end
        and in_kg(r["cpr"], (1, 12), _d(r["oprettelses_revisionsdato"]), _d(r["oprettelses_revisionsdato"]))}
    # § 66, stk. 5: a person in kontaktgruppe 1 whose a-kasse reports follow another a-kasse's, with a joblog
    evidence: dict[str, list[tuple[str, str, str]]] = collections.defaultdict(list)
    date_field = {"akasse_tilmelding": "startdato", "akasse_afmelding": "afmeldingsdato",
                  "indplacering": "indplaceringsdato", "joblog_jobsoegning": "oprettelsesdato"}
    for ds, fld in date_field.items():
        for r in recs[ds]:
            if r.get(fld) and r.get("akassekode"):
                evidence[r["cpr"]].append((r[fld][:10], r["akassekode"], ds))
    joblog = {r["cpr"] for r in recs["joblog_jobsoegning"]}
    skift = set()
    for cpr, ev in evidence.items():
        ev.sort()
        for (_d0, a0, _), (d1, a1, _) in zip(ev, ev[1:], strict=False):
            when = _d(d1)
            if a1 != a0 and start <= when <= end and cpr in joblog and cpr in persons and in_kg(cpr, (1,), when, when):
                skift.add(cpr)
    out_sets["akasseskifte"] = skift
    return out_sets


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 persons for the demo's 14 days (the smallest Denmark the demo may run at)."""
    from pipelines.simulate.generate import Simulator, prepare_out
    from pipelines.simulate.scales import Scale

    out = tmp_path_factory.mktemp("recipients") / "sources"
    prepare_out(out)
    Simulator(Scale("small", 5_000, 0.001), START, DAYS, seed=20261001).run(out)
    return out


def test_every_recipient_population_has_persons_in_a_small_denmarks_fortnight(small: Path) -> None:
    pops = populations(small)
    got = {k: len(v) for k, v in pops.items()}
    assert set(got) == {"uvm", "atp_skat", "tilflytningskommune", "uddannelsesinstitution", "akasseskifte"}
    # the generation's minimum (3 each) less what a background defect may take; ATP/SKAT: 1,000 per million
    assert got["uvm"] >= 2 and got["tilflytningskommune"] >= 2 and got["akasseskifte"] >= 2, got
    assert got["atp_skat"] >= 3 and got["uddannelsesinstitution"] >= 3, got
    # the persons are who the law names: UVM's under 18 in a revalidering group, ATP/SKAT's born 1946-1952
    persons = {r["cpr"]: r for r in pq.read_table(small / "truth" / "persons.parquet").to_pylist()}
    assert all(persons[c]["foedselsdato"] > dt.date(END.year - 18, END.month, END.day) for c in pops["uvm"])
    assert all(dt.date(1946, 1, 1) <= persons[c]["foedselsdato"] <= dt.date(1952, 12, 31) for c in pops["atp_skat"])
