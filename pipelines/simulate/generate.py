"""The synthetic Denmark: advance the population day by day and write what every
reporter would send, through its channel, on the day it registers it.

Deterministic by seed: one numpy Generator drives everything, files are written
in sorted order, and nothing reads the clock.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.contracts import Contract, generic_rule_id, load_contracts
from pipelines.contracts.validate import validate_record, validate_rules
from pipelines.simulate import history, reporters
from pipelines.simulate.changes import SPELL_LIKE, ChangesMixin
from pipelines.simulate.population import (
    PERSON_GROUPS,
    Population,
    Spell,
    advance_day,
    build_population,
)
from pipelines.simulate.records import RecordBuilder, RuleView, Vocab, _matches, iso_dt
from pipelines.simulate.scales import SCALES, Scale
from pipelines.simulate.writers import GROUND_TRUTH_COLUMNS, OUTPUT_ENTRIES, WritersMixin, _write, prepare_out

# Daily probability that a dagpengemodtager changes a-kasse (~9 % a year, the order of the yearly
# switches between Danish a-kasser; § 66, stk. 5).
AKASSE_CHANGE_RATE = 0.00025
# Expected events per eligible person per day (eligibility = the contract's personkreds).
RATES: dict[str, float] = {
    "indkaldelse": 1 / 40,
    "cv_samtale": 1 / 150,
    "fravaer": 1 / 60,
    "sdp_opfoelgning": 1 / 28,
    "plan": 1 / 60,
    "uddannelsesplan": 1 / 120,
    "foranstaltning": 1 / 45,
    "haendelse_akasse": 1 / 100,
    "akasse_indkaldelse": 1 / 45,
    "minplan_udkast": 1 / 120,
    "akasse_fravaer": 1 / 90,
    "joblog_jobsoegning": 2.5 / 7,
    "joblog_anden_aktivitet": 0.3 / 7,
    "akasse_oplysning": 1 / 60,
    "uddannelse": 1 / 150,
    "ssi_lpr_kontakt": 1 / 60,
    "ssi_sygesikring_kontakt": 1 / 15,
    "ssi_misbrugsbehandling": 1 / 2000,
    "sanktion": 1 / 250,
    "raadighedsvurdering": 1 / 150,
    "sagsbehandler": 1 / 400,
}
# Datasets emitted from state transitions or bookings, not from daily rates.
LIFECYCLE = {
    "kontaktgruppe", "tilmelding", "afmelding", "akasse_tilmelding", "akasse_afmelding", "indplacering",
    "dagpengeret_udloeb", "syge_raskmelding", "samtale", "samtale_deltager", "akasse_samtale",
    "akasse_samtale_deltager", "foerste_henvendelse", "stillingsopslag",
}
JOBSEEKER_KG = {1, 2, 3, 8, 12}  # groups registered as jobseekers (tilmelding)
STILLINGSOPSLAG_PER_MILLION = 3000
CORRECTION_RATE = 0.02
DELETE_RATE = 0.003
DEFECT_KINDS = (
    "invalid_cpr", "unknown_kommunekode", "outside_personkreds", "missing_required", "deadline_breach",
    "duplicate_message", "update_unknown", "bilag1_violation", "bad_encoding",
)
# defects whose record ingestion quarantines (it never reaches the lake)
QUARANTINED_DEFECTS = {"missing_required", "bad_encoding"}
# a spell's or a group's record may only be late or duplicated: losing it would put the
# person's later, clean records outside their personkreds
STATE_DEFECTS = ("deadline_breach", "duplicate_message")


@dataclass
class Pending:
    dataset: str
    reporter: str
    record: dict[str, Any]
    bad_encoding: bool = False


@dataclass
class GenerationResult:
    out: Path
    counts: dict[str, dict[str, dict[str, int]]]
    defects: int
    persons: int
    records: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def _bilag1() -> dict[str, list[tuple[int, str, str]]]:
    from pipelines.contracts import codelist

    out: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for r in codelist("bilag1_fravaer"):
        out[r["aarsag_kode"]].append((int(r["kontaktgruppe"]), r["kvalifikator_type"], r["kvalifikator_vaerdi"]))
    return out


def bilag1_allows(cells: list[tuple[int, str, str]], kg: int, visitation: int, match: int) -> bool:
    """Bilag 1: is a reason allowed for this kontaktgruppe and visitations-/matchgruppe?"""
    for ckg, qtype, qval in cells:
        if ckg != kg:
            continue
        if qtype in ("", "none"):
            return True
        if qtype == "visitationsgruppe" and str(visitation) == qval:
            return True
        if qtype == "matchgruppe" and str(match) == qval:
            return True
    return False


class Simulator(ChangesMixin, WritersMixin):
    """Advances a :class:`Population` and turns its state into reporters' records.

    The issue-19 changes (deletions, corrections, late and out-of-order versions, re-deliveries,
    overlaps) live in :mod:`.changes`, reporter behaviour in :mod:`.reporters`, the history the
    first extract carries in :mod:`.history`, the writing of payloads and truth in :mod:`.writers`.
    """

    def __init__(self, scale: Scale, start: dt.date, days: int, seed: int,
                 defect_rate: float | None = None, bestand: bool = True) -> None:
        self.scale, self.start, self.days, self.seed = scale, start, days, seed
        self.end = start + dt.timedelta(days=days - 1)
        self.defect_rate = scale.defect_rate if defect_rate is None else defect_rate
        self.rng = np.random.default_rng(seed)
        self.contracts: dict[str, Contract] = load_contracts()
        self.vocab = Vocab()
        self.builders = {n: RecordBuilder(c, self.vocab) for n, c in self.contracts.items()}
        self.ruleviews = {n: RuleView.of(c) for n, c in self.contracts.items()}
        self.pop: Population = build_population(scale, start, self.rng)
        self.outbox: dict[dt.date, list[Pending]] = defaultdict(list)
        self.actions: dict[dt.date, list[Callable[[], None]]] = defaultdict(list)
        self.ground_truth: list[dict[str, Any]] = []
        self.last_reported: dict[tuple[str, int], Any] = {}
        self.plans: dict[int, tuple[str, int]] = {}
        self.tilmeldinger: dict[int, str] = {}
        self.sygemeldinger: dict[str, str] = {}  # spell id -> uuid of the sygemelding
        self.created_on: dict[str, tuple[dt.date, int]] = {}  # key -> (delivery day, minute) of its create
        self.group_log: list[tuple[str, dt.date, int, int, int]] = []  # cpr, from, kg, visitation, match
        self.bilag1 = _bilag1()
        self.bestand = bestand
        self.eligible_cache: dict[tuple[str, dt.date], np.ndarray] = {}
        self.defect_kinds = {n: self._applicable_defects(c) for n, c in self.contracts.items()}
        self.defect_turn: dict[str, int] = {}
        self.last_defect: str | None = None
        self._init_changes()
        self.redeliveries: list[tuple] = []
        p = self.pop
        self.behaviours = reporters.choose(np.random.default_rng([seed, 12]), p.kommuner, p.kommune_weights,
                                           p.akasser, p.akasse_weights, start, days, set(self.contracts))
        self.history_persons: list[dict[str, Any]] = []
        self.history_spells: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ helpers
    def _applicable_defects(self, c: Contract) -> list[str]:
        names = {f.name: f for f in c.fields}
        kinds = ["duplicate_message"]
        if "cpr" in names:
            kinds.append("invalid_cpr")
        if any(f.type == "kommunekode" for f in c.fields):
            kinds.append("unknown_kommunekode")
        if self._required_candidates(c):
            kinds.append("missing_required")
        rv = RuleView.of(c)
        if rv.max_lag("create")[1] is not None:
            kinds.append("deadline_breach")
        if any(r.kind == "personkreds" for r in c.rules) and c.personkreds.kontaktgrupper:
            kinds.append("outside_personkreds")
        if "update" in c.change_types and self._own_reference_rule(c):
            kinds.append("update_unknown")
        if any(r.kind == "bilag1" for r in c.rules):
            kinds.append("bilag1_violation")
        utf8_csv = c.channel == "portal" or (c.channel == "filedrop" and c.reporter == "uvm")
        if utf8_csv and self._text_field(c):
            kinds.append("bad_encoding")
        return kinds

    @staticmethod
    def _required_candidates(c: Contract) -> list[str]:
        key = set(c.record_key)
        return [f.name for f in c.fields if f.required and f.name not in key and f.name != "cpr"
                and f.name not in (c.registration_time,)]

    @staticmethod
    def _own_reference_rule(c: Contract):
        for r in c.rules:
            if r.kind == "reference_exists" and r.params.get("dataset") == c.dataset \
                    and r.params.get("field") in c.record_key:
                return r
        return None

    @staticmethod
    def _text_field(c: Contract) -> str | None:
        for f in c.fields:
            if f.type in ("string", "text") and not f.codelist and f.pii in ("none", "free_text", "contact"):
                return f.name
        return None

    def _rule(self, c: Contract, kind: str):
        return next((r for r in c.rules if r.kind == kind), None)

    def ctx(self, i: int | None, event: dt.date, reg: dt.date, change: str, version: int) -> dict[str, Any]:
        p = self.pop
        base: dict[str, Any] = {"event_date": event, "reg_date": reg, "change_type": change, "version": version,
                                "uuid": p.uuid}
        if i is None:
            base["kommunekode"] = int(p.kommuner[self.rng.choice(len(p.kommuner), p=p.kommune_weights)])
            base["akassekode"] = -1
            return base
        kg = int(p.kg[i])
        base.update(
            cpr=p.cpr[i], kommunekode=int(p.ophold[i]), akassekode=int(p.akasse[i]),
            kontaktgruppe=str(kg) if kg else None,
            visitationsgruppe=str(int(p.visitation[i])) if p.visitation[i] else None,
            matchgruppe=str(int(p.match[i])) if p.match[i] else None,
            sygedagpengekategori=str(int(p.sdp_kat[i])) if p.sdp_kat[i] else None,
            persongruppe=PERSON_GROUPS[int(p.pgroup[i])] or None,
            birth=p.birth[i].astype(dt.date),
        )
        return base

    def in_personkreds(self, c: Contract, i: int, day: dt.date) -> bool:
        pk = c.personkreds
        p = self.pop
        if pk.min_age is not None or pk.max_age is not None:
            age = p.age_of(i, day)
            if pk.min_age is not None and age < pk.min_age or pk.max_age is not None and age > pk.max_age:
                return False
        if not pk.kontaktgrupper:
            return True
        return int(p.kg[i]) in pk.kontaktgrupper or (
            bool(pk.person_groups) and PERSON_GROUPS[int(p.pgroup[i])] in pk.person_groups)

    def eligible(self, c: Contract, day: dt.date) -> np.ndarray:
        p = self.pop
        pk = c.personkreds
        mask = np.ones(p.size, dtype=bool)
        if pk.kontaktgrupper:
            mask = np.isin(p.kg, np.array(pk.kontaktgrupper, dtype=np.int16))
            if pk.person_groups:
                codes = [PERSON_GROUPS.index(g) for g in pk.person_groups if g in PERSON_GROUPS]
                mask |= np.isin(p.pgroup, np.array(codes, dtype=np.int8))
        elif c.reporter == "ssi":
            mask = p.kg > 0  # LAB § 2 persons (§ 93)
        if pk.min_age is not None or pk.max_age is not None:
            ages = p.age_on(day)
            if pk.min_age is not None:
                mask &= ages >= pk.min_age
            if pk.max_age is not None:
                mask &= ages <= pk.max_age
        if c.reporter == "akasse":
            mask &= p.akasse >= 0
        # "dele af" a kontaktgruppe (§ 29, nr. 1; § 48, nr. 4, 6, 7): the personkreds rule's qualifiers
        for r in (r for r in c.rules if r.kind == "personkreds" and r.params.get("kvalifikatorer")):
            for kg, q in r.params["kvalifikatorer"].items():
                for name, vals in q.items():
                    arr = p.visitation if name == "visitationsgruppe" else p.sdp_kat
                    mask &= ~((p.kg == int(kg)) & ~np.isin(arr, np.array([int(v) for v in vals], dtype=arr.dtype)))
        return np.flatnonzero(mask)

    def _outside(self, c: Contract, day: dt.date) -> int | None:
        """A person outside the dataset's personkreds (for the 'outside_personkreds' defect)."""
        for _ in range(50):
            i = int(self.rng.integers(0, self.pop.size))
            if not self.in_personkreds(c, i, day) and (c.reporter != "akasse" or self.pop.akasse[i] >= 0):
                pk = c.personkreds
                if pk.min_age is not None and self.pop.age_of(i, day) < pk.min_age:
                    continue
                if pk.max_age is not None and self.pop.age_of(i, day) > pk.max_age:
                    continue
                return i
        return None

    def reporter_of(self, c: Contract, rec: dict[str, Any], i: int | None) -> str:
        if c.reporter == "jobcenter":
            if i is not None:
                return f"{int(self.pop.ophold[i]):03d}"
            k = rec.get("kommunekode")
            return str(k) if k else "101"
        if c.reporter == "akasse":
            if i is not None and self.pop.akasse[i] >= 0:
                return f"{int(self.pop.akasse[i]):03d}"
            return str(rec.get("akassekode") or f"{int(self.pop.akasser[0]):03d}")
        return {"uvm": "UVM", "ssi": "SSI", "jobnet": "JOBNET"}[c.reporter]

    def clean_lag(self, rv: RuleView, change: str, late_reporter: bool = False) -> int:
        max_lag, rule = rv.max_lag(change)
        if late_reporter and rule is not None and self.crng.random() < reporters.LATE_SHARE:
            return max_lag + 1 + int(self.crng.integers(0, 8))  # a systematically late reporter
        if rule is None:
            return 0 if self.rng.random() < 0.9 else int(self.rng.integers(1, 4))
        if max_lag == 0 or self.rng.random() < 0.8:
            return 0
        return int(self.rng.integers(1, max_lag + 1))

    # ------------------------------------------------------------------ emit
    def emit(self, dataset: str, i: int | None, event: dt.date, overrides: dict[str, Any] | None = None,
             change: str = "create", key: str | None = None, version: int = 1, reg: dt.date | None = None,
             defect_ok: bool = True, correctable: bool = True,
             deliver: dt.date | None = None, referenced: bool = False,
             defects: tuple[str, ...] | None = None, force_defect: str | None = None, changes_ok: bool = True,
             person: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Build one record for person ``i`` and put it in the outbox of its registration day.

        ``deliver`` overrides the delivery day (the first extract carries history
        registered long before it).  ``referenced`` marks a create that later records
        refer to (so it must not be turned into an update of an unknown record, nor be
        quarantined); ``defects`` narrows the defect kinds (records that carry a person's
        state, whose loss would make other clean records look wrong); ``force_defect`` injects
        one kind regardless of the rate; ``person`` gives the state of a person outside the
        population (the first extract's history); ``changes_ok`` lets a create be duplicated
        and deleted (issue 19).
        """
        c = self.contracts.get(dataset)
        if c is None:
            return None
        rv = self.ruleviews[dataset]
        overrides = dict(overrides or {})
        defect = None
        if defect_ok and self.rng.random() < self.defect_rate:
            # kinds in turn (from a seeded offset), so every applicable kind shows up
            # even in datasets with few records
            kinds = self.defect_kinds[dataset]
            turn = self.defect_turn.setdefault(dataset, int(self.rng.integers(len(kinds))))
            self.defect_turn[dataset] = turn + 1
            defect = kinds[turn % len(kinds)]
            if defect == "update_unknown" and (referenced or key is not None):
                defect = None
            if referenced and defect in QUARANTINED_DEFECTS:
                defect = None  # a quarantined create would leave its references dangling
            if defects is not None and defect not in defects:
                defect = None
        if force_defect is not None:
            defect = force_defect
        label = defect
        gt: list[tuple[str, str, str]] = []  # rule_id, field, detail
        if defect == "outside_personkreds":
            j = self._outside(c, event)
            if j is None:
                defect = None
            else:
                i = j
                gt.append((self._rule(c, "personkreds").id, "cpr", "person outside the personkreds"))
                if any(r.kind == "bilag1" for r in c.rules):
                    gt.append((self._rule(c, "bilag1").id, "fravaersaarsag", "no kontaktgruppe allows it"))
        if defect == "update_unknown":
            change, key, version = "update", self.pop.uuid(), 2
        late_rep = False
        # a late reporter is late with its everyday records; the records that carry a person's state
        # (spells, registrations) stay on time, or the person's other records would lose their personkreds
        if reg is None and i is not None and self.behaviours.late and dataset not in LIFECYCLE:
            late_rep = self.behaviours.is_late(self.reporter_of(c, {}, i))
        if reg is None:
            lag = self.clean_lag(rv, change, late_rep)
            if defect == "deadline_breach":
                max_lag, _ = rv.max_lag(change)
                lag = max_lag + 1 + int(self.rng.integers(0, 6))
            reg = event + dt.timedelta(days=lag)
        after_minute = -1
        if change != "create" and key is not None and key in self.created_on:
            c_day, c_min = self.created_on[key]
            reg = max(reg, c_day)  # never before the record it changes
            after_minute = c_min if reg == c_day else -1
        ctx = self.ctx(i, event, reg, change, version)
        if person is not None:
            ctx.update(person)
        if dataset in ("fravaer", "akasse_fravaer") and "fravaersaarsag" not in overrides and i is not None:
            overrides["fravaersaarsag"] = self.pick_reason(c, i, violate=defect == "bilag1_violation")
            if defect == "bilag1_violation":
                if overrides["fravaersaarsag"] is None:
                    defect = None
                    overrides.pop("fravaersaarsag")
                else:
                    gt.append((self._rule(c, "bilag1").id, "fravaersaarsag", "reason not allowed by Bilag 1"))
        rec = self.builders[dataset].build(self.rng, ctx, overrides)
        if key is not None and c.record_key:
            rec[c.record_key[0]] = key
        # defects that mutate the built record
        if defect == "invalid_cpr":
            bad = self._bad_cpr(str(rec.get("cpr") or ""))
            rec["cpr"] = bad
            gt.append((generic_rule_id(dataset, "cpr_valid", "cpr"), "cpr", f"invalid CPR {bad[:4]}..."))
        elif defect == "unknown_kommunekode":
            fld = next(f.name for f in c.fields if f.type == "kommunekode")
            rec[fld] = "999"
            gt.append((generic_rule_id(dataset, "codelist", fld), fld, "kommunekode 999 does not exist"))
        elif defect == "missing_required":
            cands = self._required_candidates(c)
            fld = cands[int(self.rng.integers(len(cands)))]
            rec[fld] = None
            gt.append((generic_rule_id(dataset, "required", fld), fld, "required field left empty"))
        elif defect == "update_unknown":
            r = self._own_reference_rule(c)
            gt.append((r.id, c.record_key[0], "update of a record never created"))
        reporter = self.reporter_of(c, rec, i)
        if defect is None and self.behaviours.broken:
            b = self.behaviours.broken_on(reporter, dataset, reg)
            if b is not None and b.field in rec and rec[b.field] is not None:
                rec[b.field] = reporters.BROKEN_FIELD[2]
                defect = label = "broken_field"
        minute = int(self.rng.integers(7 * 60, 16 * 60))
        reg_minute = minute + int(self.rng.integers(0, 120)) if reg == event else int(self.rng.integers(7 * 60, 18 * 60))
        if after_minute >= 0:
            reg_minute = max(reg_minute, after_minute + 1)
        reg_minute = min(reg_minute, 23 * 60 + 59)
        env = {
            "besked_id": self.pop.uuid(),
            "entitet": dataset,
            "aendringstype": {"create": "1", "update": "2", "delete": "3"}[change],
            "version": version,
            "indberetter": reporter,
            "haendelsestidspunkt": iso_dt(event, minute),
            "registreringstidspunkt": iso_dt(reg, reg_minute),
        }
        full = {**env, **rec}
        if defect in ("deadline_breach", "broken_field") or defect is None:
            # every deadline the final record breaks is ground truth (none for clean records)
            for r in rv.deadlines:
                ct = r.params.get("change_type")
                if ct and ct != change or (r.params.get("when") and not _matches(full, r.params["when"])):
                    continue
                ev, rg = full.get(r.params["event_field"]), full.get(r.params["registration_field"])
                if ev and rg:
                    late = (dt.date.fromisoformat(str(rg)[:10]) - dt.date.fromisoformat(str(ev)[:10])).days
                    if late > int(r.params.get("max_lag_days", 0)):
                        gt.append((r.id, r.params["event_field"], f"registered {late} days after the event"))
        bad_enc = False
        if defect == "bad_encoding":
            fld = self._text_field(c)
            full[fld] = "Ærø Østergade på Ålandsvej"
            bad_enc = True
            gt.append((generic_rule_id(dataset, "encoding", fld), fld, "line encoded as cp1252 in a UTF-8 file"))
        if defect is not None:
            # a defect may break more than its own rule (a person outside the personkreds
            # may also lack an a-kasse ...): every problem the record shows is ground truth
            have = {g[0] for g in gt}
            for prob in validate_record(c, full) + validate_rules(c, full):
                if prob.rule_id not in have:
                    gt.append((prob.rule_id, prob.field, prob.message))
                    have.add(prob.rule_id)
        self.last_defect = defect
        pend = Pending(dataset, reporter, full, bad_enc)
        day_out = deliver or reg
        if self.behaviours.stopped and deliver is None:
            day_out = self.behaviours.withheld(reporter, dataset, day_out) or day_out
        if label is None and late_rep and gt:
            label = "late_reporter"
        if change == "create" and (referenced or key is not None) and c.record_key:
            self.created_on[str(full[c.record_key[0]])] = (day_out, reg_minute if deliver is None else 0)
        self.outbox[day_out].append(pend)
        if defect == "duplicate_message":
            self.outbox[day_out].append(Pending(dataset, reporter, dict(full)))
            gt.append((generic_rule_id(dataset, "duplicate", "besked_id"), "besked_id", "second copy of a message"))
        if gt and day_out <= self.end:
            self.defect_ids.add(full["besked_id"])
            for rule_id, fld, detail in gt:
                self.ground_truth.append({
                    "besked_id": full["besked_id"], "dataset": dataset, "channel": c.channel,
                    "indberetter": reporter, "leveringsdato": day_out.isoformat(), "defect": label or "deadline_breach",
                    "rule_id": rule_id, "field": fld, "detail": detail,
                    "expected": "quarantined" if defect in QUARANTINED_DEFECTS or ":duplicate:" in rule_id
                    else f"reported by {rule_id}",
                })
        self._track(dataset, full, day_out)
        if changes_ok and defect is None and change == "create" and i is not None and deliver is None \
                and dataset in SPELL_LIKE and c.record_key and day_out <= self.end:
            self._maybe_duplicate_registration(dataset, i, full, reg, event)
        if correctable and defect is None and change == "create" and i is not None and "update" in c.change_types:
            u = self.rng.random()
            if u < CORRECTION_RATE + DELETE_RATE:
                kind = "delete" if u < DELETE_RATE and "delete" in c.change_types else "update"
                when = reg + dt.timedelta(days=int(self.rng.integers(1, 6)))
                keyval = rec.get(c.record_key[0]) if c.record_key else None
                self.actions[when].append(functools.partial(
                    self._correct, dataset, i, event, overrides, keyval, kind, when, int(self.pop.spell[i])))
        return full

    def _correct(self, dataset: str, i: int, event: dt.date, overrides: dict[str, Any], key: str | None,
                 change: str, when: dt.date, spell: int) -> None:
        """A later update or delete of a record (a correction the reporter sends).

        Only while the person is still in the same kontaktgruppe spell, so the
        corrected record fits the person's groups on its (possibly moved) event date.
        """
        c = self.contracts[dataset]
        if int(self.pop.spell[i]) != spell or not self.in_personkreds(c, i, when) or key is None:
            return
        rv = self.ruleviews[dataset]
        max_lag, rule = rv.max_lag(change)
        ev = event
        if rule is not None and (when - event).days > max_lag:
            ev = when - dt.timedelta(days=int(self.rng.integers(0, max_lag + 1)))
        self.emit(dataset, i, ev, overrides, change=change, key=key, version=2, reg=when,
                  defect_ok=False, correctable=False)

    def _bad_cpr(self, cpr: str) -> str:
        k = int(self.rng.integers(0, 3))
        if k == 0:
            return "32" + cpr[2:]  # day 32
        if k == 1:
            return cpr[:2] + "13" + cpr[4:]  # month 13
        return cpr[:9]  # nine digits

    def pick_reason(self, c: Contract, i: int, violate: bool) -> str | None:
        """A fravær reason Bilag 1 allows for the person's groups (or, to violate, one it doesn't)."""
        p = self.pop
        kg, vis, mat = int(p.kg[i]), int(p.visitation[i]), int(p.match[i])
        rule = self._rule(c, "bilag1")
        allowed_names = set((rule.params.get("allowed_reasons") or []) if rule else [])
        from pipelines.contracts import codelist

        reasons = [r for r in codelist("fravaersaarsager")
                   if not allowed_names or r["navn"] in allowed_names or r["kode"] in allowed_names]
        ok = [r["kode"] for r in reasons if bilag1_allows(self.bilag1.get(r["kode"], []), kg, vis, mat)]
        if violate:
            bad = [r["kode"] for r in codelist("fravaersaarsager")
                   if not bilag1_allows(self.bilag1.get(r["kode"], []), kg, vis, mat)]
            return bad[int(self.rng.integers(len(bad)))] if bad else None
        if not ok:  # no group allows any reason (a person outside the personkreds: a defect record)
            ok = [r["kode"] for r in reasons]
        return ok[int(self.rng.integers(len(ok)))]

    # ------------------------------------------------------------------ the day
    def run_day(self, day: dt.date) -> None:
        if day == self.start and self.bestand:
            self._bestand(day)
            history.first_extract(self, day)
            self._warm_bookings(day)
        for act in self.actions.pop(day, []):
            act()
        self._rate_events(day)
        self._bookings_due(day)
        tr = advance_day(self.pop, self.rng, day)
        for sp in tr.ended:
            self._spell_ended(sp, day)
        for sp in tr.started:
            self._spell_started(sp)
        for sp in tr.ended:  # after the next spells' creates: a late correction arrives after them
            self._late_start_correction(sp, day)
            self.last_end[sp.person] = day
        for i, _old, _new in tr.moved:
            self._moved(i, day)
        self._akasse_changes(day)
        if "stillingsopslag" in self.contracts:
            n = int(self.rng.poisson(STILLINGSOPSLAG_PER_MILLION * self.pop.size / 1_000_000))
            for _ in range(n):
                self.emit("stillingsopslag", None, day)

    def _bestand(self, day: dt.date) -> None:
        """First extract: open spells registered before the simulation (the DFDG's history).

        They were registered on time (registreringsdato = startdato) and are
        delivered in the first day's extract.
        """
        for sp in self.pop.spells:
            if sp.end is None and sp.start < day:
                i = sp.person
                self._log_groups(i, sp.start)
                self.emit("kontaktgruppe", i, sp.start, {"startdato": sp.start.isoformat(),
                          "slutdato": None, "persongruppe": sp.persongruppe or None},
                          key=sp.spell_id, reg=sp.start, deliver=day, defect_ok=False, correctable=False)
                self._report_groups(i, sp.start, deliver=day)
                if sp.kg in JOBSEEKER_KG:
                    rec = self.emit("tilmelding", i, sp.start, {"startdato": sp.start.isoformat()},
                                    reg=sp.start, deliver=day, defect_ok=False, correctable=False)
                    if rec:
                        self.tilmeldinger[i] = rec.get("tilmelding_id")

    def _warm_bookings(self, day: dt.date) -> None:
        """Conversations booked before the simulation starts are held in its first weeks.

        Bookings are made 5-21 days ahead (see ``_ev_indkaldelse``); the summons
        itself was delivered before the first extract, so the held conversation
        carries no booking reference.
        """
        for booking_ds, held_ds in (("indkaldelse", "samtale"), ("akasse_indkaldelse", "akasse_samtale")):
            c = self.contracts.get(booking_ds)
            if c is None or held_ds not in self.contracts:
                continue
            elig = self.eligible(c, day)
            for k in range(21):
                share = 1.0 if k <= 4 else (21 - k) / 17
                n = int(self.rng.binomial(len(elig), RATES[booking_ds] * share))
                for i in np.sort(self.rng.choice(elig, size=min(n, len(elig)), replace=False)):
                    self.actions[day + dt.timedelta(days=k)].append(
                        functools.partial(self._held, held_ds, int(i), None, None))

    def _report_groups(self, i: int, start: dt.date, deliver: dt.date | None = None) -> None:
        """§ 26: the first request (visitationsgruppe, KG 2, 3, 12) or the matchgruppe (KG 4, 5, 7)
        is registered when the spell starts, so a person's groups are known from the data."""
        p = self.pop
        vis, mat = int(p.visitation[i]), int(p.match[i])
        if not vis and not mat:
            return
        ov: dict[str, Any] = {"anledning": "1" if vis else "2"}
        extra = {"reg": start, "deliver": deliver, "defect_ok": False} if deliver else {"defects": STATE_DEFECTS}
        rec = self.emit("foerste_henvendelse", i, start, ov, correctable=False, **extra)
        if rec:
            for fld, val in (("visitationsgruppe", vis), ("matchgruppe", mat)):
                if val and rec.get(fld) == str(val):
                    self.last_reported[(fld, i)] = val

    def _log_groups(self, i: int, day: dt.date) -> None:
        p = self.pop
        self.group_log.append((p.cpr[i], day, int(p.kg[i]), int(p.visitation[i]), int(p.match[i])))

    def _spell_started(self, sp: Spell) -> None:
        i, s = sp.person, sp.start
        self._log_groups(i, s)
        ov, kind, after = self._new_spell_overrides(sp)
        if kind is None:
            self.emit("kontaktgruppe", i, s, ov, key=sp.spell_id, defect_ok=True, correctable=False,
                      defects=STATE_DEFECTS)
        else:
            # version 1 is wrong; version 2 corrects it (issue 19); out of order: version 1 arrives late
            late = s + dt.timedelta(days=int(self.crng.integers(2, 4))) if kind == "out_of_order" else None
            create = self.emit("kontaktgruppe", i, s, ov, key=sp.spell_id, reg=s, deliver=late, defect_ok=False,
                               correctable=False, changes_ok=False)
            if late is not None:
                self.created_on.pop(sp.spell_id, None)
            self._schedule_spell_correction(sp, kind, create, after, s, late or s)
            if create is not None and late is not None:
                # the ground truth of the late create is written with its own delivery day
                self.key_msgs[sp.spell_id] = [(create["besked_id"], late, create["indberetter"])]
        self._report_groups(i, s)
        history.on_spell_started(self, sp)
        if sp.kg in JOBSEEKER_KG:
            rec = self.emit("tilmelding", i, s, {"startdato": s.isoformat()}, correctable=False, referenced=True)
            if rec and rec.get("cpr") == self.pop.cpr[i]:
                self.tilmeldinger[i] = rec.get("tilmelding_id")
        if sp.kg == 1 and self.pop.akasse[i] >= 0:
            self.emit("akasse_tilmelding", i, s, {"startdato": s.isoformat()}, correctable=False)
            self.emit("indplacering", i, s)
            self.emit("dagpengeret_udloeb", i, s)
        if sp.kg in (24, 25):
            rec = self.emit("syge_raskmelding", i, s, {"foerste_sygedag": s.isoformat(), "sidste_sygedag": None,
                                                      "meldingstype": "sygemelding"},
                            correctable=False, referenced=True)
            c = self.contracts.get("syge_raskmelding")
            if rec and c and c.record_key and rec.get("cpr") == self.pop.cpr[i]:
                self.sygemeldinger[sp.spell_id] = rec.get(c.record_key[0])

    def _spell_ended(self, sp: Spell, day: dt.date) -> None:
        i = sp.person
        # the update carries the spell as it was, now with its end date (§ 16, stk. 2)
        p = self.pop
        if sp.reported_start and sp.reported_start > day:
            sp.reported_start = None  # an end before the reported start: the end update reports the true one
        unknown = sp.spell_id not in self.busy_spells and self.change_due("unknown_kommunekode", day)
        if unknown:
            self.change_count["unknown_kommunekode"] += 1
        self._spell_update(sp, day, {"slutdato": day.isoformat()},
                           force_defect="unknown_kommunekode" if unknown else None)
        saved = (p.kg[i], p.visitation[i], p.match[i], p.sdp_kat[i], p.pgroup[i])
        p.kg[i] = sp.kg
        p.pgroup[i] = PERSON_GROUPS.index(sp.persongruppe)
        if sp.kg in JOBSEEKER_KG and i in self.tilmeldinger:
            self.emit("afmelding", i, day, {"afmeldingsdato": day.isoformat(),
                                            "tilmelding_id": self.tilmeldinger.pop(i)},
                      reg=day, correctable=False)
        if sp.kg == 1 and p.akasse[i] >= 0:
            self.emit("akasse_afmelding", i, day, {"afmeldingsdato": day.isoformat()}, reg=day, correctable=False)
        if sp.spell_id in self.sygemeldinger:
            self.emit("syge_raskmelding", i, day, {"foerste_sygedag": sp.start.isoformat(),
                                                   "sidste_sygedag": day.isoformat(), "meldingstype": "raskmelding"},
                      change="update", key=self.sygemeldinger.pop(sp.spell_id), version=2,
                      defect_ok=False, correctable=False)
        p.kg[i], p.visitation[i], p.match[i], p.sdp_kat[i], p.pgroup[i] = saved

    def _akasse_changes(self, day: dt.date) -> None:
        """A dagpengemodtager changes a-kasse (~9 % a year): the new a-kasse registers the member as a
        jobseeker (§ 53, stk. 1), which is what the § 66, stk. 5 delivery sees as the change."""
        p = self.pop
        if "akasse_tilmelding" not in self.contracts or len(p.akasser) < 2:
            return
        members = np.flatnonzero((p.kg == 1) & (p.akasse >= 0))
        n = int(self.rng.binomial(len(members), AKASSE_CHANGE_RATE)) if len(members) else 0
        for i in (np.sort(self.rng.choice(members, size=n, replace=False)) if n else []):
            others = p.akasser[p.akasser != p.akasse[i]]
            p.akasse[i] = others[int(self.rng.integers(len(others)))]
            self.emit("akasse_tilmelding", int(i), day, {"startdato": day.isoformat()}, reg=day,
                      defect_ok=False, correctable=False)

    def _moved(self, i: int, day: dt.date) -> None:
        """A move changes the myndighedstilknytning: the new opholdskommune updates the spell (§ 16, stk. 5)."""
        k = int(self.pop.spell[i])
        if k < 0:
            return
        sp = self.pop.spells[k]
        if sp.start > day:
            return
        if self._overlap_move(sp, day):
            return
        self._spell_update(sp, day)

    def _rate_events(self, day: dt.date) -> None:
        for name in sorted(self.contracts):
            if name in LIFECYCLE or name not in RATES:
                continue
            c = self.contracts[name]
            if c.parent:
                continue
            elig = self.eligible(c, day)
            if len(elig) == 0:
                continue
            n = int(self.rng.binomial(len(elig), min(1.0, RATES[name])))
            if n == 0:
                continue
            chosen = np.sort(self.rng.choice(elig, size=n, replace=False))
            handler = getattr(self, f"_ev_{name}", None)
            for i in chosen:
                if handler:
                    handler(int(i), day)
                else:
                    self.emit(name, int(i), day)

    def _ev_indkaldelse(self, i: int, day: dt.date) -> None:
        meeting = day + dt.timedelta(days=int(self.rng.integers(5, 22)))
        rec = self.emit("indkaldelse", i, day, {"samtaledato": meeting.isoformat()}, referenced=True)
        if rec and rec.get("indkaldelse_id") and rec.get("cpr") == self.pop.cpr[i]:
            self.actions[meeting].append(
                functools.partial(self._held, "samtale", i, rec["indkaldelse_id"], rec.get("samtaletype")))

    def _ev_akasse_indkaldelse(self, i: int, day: dt.date) -> None:
        meeting = day + dt.timedelta(days=int(self.rng.integers(5, 22)))
        c = self.contracts["akasse_indkaldelse"]
        date_field = next((f.name for f in c.fields if f.type == "date" and f.name not in
                           (c.event_time, c.registration_time)), None)
        ov = {date_field: meeting.isoformat()} if date_field else {}
        rec = self.emit("akasse_indkaldelse", i, day, ov)
        if rec and rec.get("cpr") == self.pop.cpr[i]:
            self.actions[meeting].append(functools.partial(self._held, "akasse_samtale", i, None, None))

    def _held(self, dataset: str, i: int, booking: str | None, samtaletype: str | None) -> None:
        """A booked conversation is held (if the person is still in the personkreds)."""
        c = self.contracts.get(dataset)
        day = self._today
        if c is None or not self.in_personkreds(c, i, day):
            return
        ov: dict[str, Any] = {}
        if booking and "indkaldelse_id" in c.field_names:
            ov["indkaldelse_id"] = booking
        if samtaletype and "samtaletype" in c.field_names:
            ov["samtaletype"] = samtaletype
        # match/visitation reported only when they differ from the last reported (§ 25, stk. 1, nr. 8-9)
        for fld, arr in (("matchgruppe", self.pop.match), ("visitationsgruppe", self.pop.visitation)):
            if fld in self.ruleviews[dataset].only_changed:
                cur = int(arr[i])
                if cur and self.last_reported.get((fld, i)) != cur:
                    ov[fld] = str(cur)
                    self.last_reported[(fld, i)] = cur
        rec = self.emit(dataset, i, day, ov)
        child = f"{dataset}_deltager"
        parent_known = self.last_defect not in QUARANTINED_DEFECTS | {"update_unknown"}
        if rec and parent_known and child in self.contracts and self.rng.random() < 0.3:
            pc = self.contracts[child]
            pkey = pc.parent["key"] if pc.parent else "samtale_id"
            for _ in range(int(self.rng.integers(1, 3))):
                self.emit(child, i, day, {pkey: rec.get(pkey)}, reg=dt.date.fromisoformat(
                    rec["registreringstidspunkt"][:10]), correctable=False)

    def _bookings_due(self, day: dt.date) -> None:
        pass  # bookings are actions on their meeting day (see _ev_indkaldelse)

    def _ev_plan(self, i: int, day: dt.date) -> None:
        key, version = self.plans.get(i, (None, 0))
        if key is None:
            rec = self.emit("plan", i, day, correctable=False, referenced=True)
            c = self.contracts["plan"]
            if rec and c.record_key and rec.get("cpr") == self.pop.cpr[i]:
                self.plans[i] = (rec[c.record_key[0]], 1)
        else:
            rec = self.emit("plan", i, day, change="update", key=key, version=version + 1, correctable=False)
            if rec:
                self.plans[i] = (key, version + 1)

    # ------------------------------------------------------------------ output
    def run(self, out: Path, progress: Callable[[dt.date], None] | None = None) -> GenerationResult:
        out.mkdir(parents=True, exist_ok=True)
        counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        total = 0
        for k in range(self.days):
            day = self.start + dt.timedelta(days=k)
            self._today = day
            # actions scheduled for today need _today; run_day runs them first
            self.run_day(day)
            total += self.write_day(out, day, counts)
            if progress:
                progress(day)
        self.write_meta(out, counts, total)
        return GenerationResult(out, {k: dict(v) for k, v in counts.items()}, len(self.ground_truth),
                                self.pop.size, total)

def generate(out: Path, scale: str = "demo", start: dt.date = dt.date(2026, 10, 1), days: int = 14,
             seed: int = 1, defect_rate: float | None = None,
             progress: Callable[[dt.date], None] | None = None) -> GenerationResult:
    """Generate ``days`` days of every reporter's payloads under ``out`` (see docs/sources.md)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    prepare_out(Path(out))
    sim = Simulator(SCALES[scale], start, days, seed, defect_rate)
    return sim.run(Path(out), progress)


def iter_payload_files(out: Path) -> Iterator[Path]:
    for p in sorted(out.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            yield p


__all__ = ["generate", "Simulator", "GenerationResult", "bilag1_allows", "_matches", "prepare_out", "_write",
           "OUTPUT_ENTRIES", "GROUND_TRUTH_COLUMNS"]
