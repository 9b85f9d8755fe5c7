"""Record emission: one person's record, as its reporter registers and delivers it.

``emit`` is the one way a record enters the outbox.  It runs in steps, each a method here:
draw a defect (:mod:`.defects`), decide the registration day (deadline lag, a late reporter),
build the record from the contract (:mod:`.records`), let a defect or a reporter's system change
break it, wrap it in the message envelope, write what it breaks to the ground truth and put it
in the outbox of its delivery day; then the follow-ups a create may get (a deletion in error,
a later correction).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.contracts import Contract, generic_rule_id
from pipelines.simulate import reporters
from pipelines.simulate.changes import SPELL_LIKE
from pipelines.simulate.defects import QUARANTINED_DEFECTS, Truth
from pipelines.simulate.population import PERSON_GROUPS
from pipelines.simulate.records import RuleView, _matches, iso_dt

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.simulate.generate import Simulator

CORRECTION_RATE = 0.02
DELETE_RATE = 0.003
# Datasets emitted from state transitions or bookings, not from daily rates (see :mod:`.schedule`).
LIFECYCLE = {
    "kontaktgruppe", "tilmelding", "afmelding", "akasse_tilmelding", "akasse_afmelding", "indplacering",
    "dagpengeret_udloeb", "syge_raskmelding", "samtale", "samtale_deltager", "akasse_samtale",
    "akasse_samtale_deltager", "foerste_henvendelse", "stillingsopslag",
}


@dataclass
class Pending:
    dataset: str
    reporter: str
    record: dict[str, Any]
    bad_encoding: bool = False


@dataclass
class _Draft:
    """One record on its way through :meth:`EmissionMixin.emit`."""

    c: Contract
    i: int | None
    event: dt.date
    change: str
    key: str | None
    version: int
    defect: str | None
    label: str | None  # the defect as the ground truth names it (kept when the defect itself falls away)
    gt: Truth = field(default_factory=list)
    reg: dt.date | None = None
    after_minute: int = -1
    late_rep: bool = False

    @property
    def dataset(self) -> str:
        return self.c.dataset


class EmissionMixin:
    """Person state -> records in the outbox, for :class:`~pipelines.simulate.generate.Simulator`."""

    # ------------------------------------------------------------------ the person and the reporter
    def ctx(self: Simulator, i: int | None, event: dt.date, reg: dt.date, change: str,
            version: int) -> dict[str, Any]:
        """What the record builder needs to know of the person (``i`` None: no person, a random kommune)."""
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

    def in_personkreds(self: Simulator, c: Contract, i: int, day: dt.date) -> bool:
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

    def eligible(self: Simulator, c: Contract, day: dt.date) -> np.ndarray:
        """Indices of the persons in the dataset's personkreds on ``day``."""
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

    def reporter_of(self: Simulator, c: Contract, rec: dict[str, Any], i: int | None) -> str:
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

    def clean_lag(self: Simulator, rv: RuleView, change: str, late_reporter: bool = False) -> int:
        """Days from the event to its registration: mostly the same day, within the deadline."""
        max_lag, rule = rv.max_lag(change)
        if late_reporter and rule is not None and self.crng.random() < reporters.LATE_SHARE:
            return max_lag + 1 + int(self.crng.integers(0, 3))  # a systematically late reporter: 1-3 days
        if rule is None:
            return 0 if self.rng.random() < 0.9 else int(self.rng.integers(1, 4))
        if max_lag == 0 or self.rng.random() < 0.8:
            return 0
        return int(self.rng.integers(1, max_lag + 1))

    # ------------------------------------------------------------------ emit
    def emit(self: Simulator, dataset: str, i: int | None, event: dt.date, overrides: dict[str, Any] | None = None,
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
        overrides = dict(overrides or {})
        defect = self._draw_defect(dataset, defect_ok, referenced, key, defects, force_defect)
        d = _Draft(c, i, event, change, key, version, defect, defect)
        if d.defect == "outside_personkreds":
            d.defect, d.i = self._outside_person(c, d.i, event, d.gt)
        if d.defect == "update_unknown":
            d.change, d.key, d.version = "update", self.pop.uuid(), 2
        self._registration(d, reg)
        rec = self._build(d, overrides, person)
        self._mutate(c, rec, d.defect, d.gt)
        reporter = self.reporter_of(c, rec, d.i)
        self._system_change(d, reporter, rec)
        env, reg_minute = self._envelope(d, reporter, deliver is None)
        full = {**env, **rec}
        if d.defect in ("deadline_breach", "broken_field") or d.defect is None:
            self._deadline_truth(d, full)
        bad_enc = self._finish_defect(c, full, d.defect, d.gt)
        self.last_defect = d.defect
        day_out = self._deliver(d, reporter, full, bad_enc, deliver, referenced, reg_minute)
        self._track(dataset, full, day_out)
        self._follow_ups(d, rec, full, overrides, day_out, deliver, correctable, changes_ok)
        return full

    def _registration(self: Simulator, d: _Draft, reg: dt.date | None) -> None:
        """The registration day: given, or the event plus a lag (late when the defect or the reporter is);
        never before the record it changes."""
        c, i = d.c, d.i
        rv = self.ruleviews[d.dataset]
        # a late reporter is late with its everyday records; the records that carry a person's state
        # (spells, registrations) stay on time, or the person's other records would lose their personkreds
        if reg is None and i is not None and self.behaviours.late and d.dataset not in LIFECYCLE:
            d.late_rep = self.behaviours.is_late(self.reporter_of(c, {}, i))
        if reg is None:
            lag = self.clean_lag(rv, d.change, d.late_rep)
            if d.defect == "deadline_breach":
                max_lag, _ = rv.max_lag(d.change)
                lag = max_lag + 1 + int(self.rng.integers(0, 6))
            reg = d.event + dt.timedelta(days=lag)
        if d.change != "create" and d.key is not None and d.key in self.created_on:
            c_day, c_min = self.created_on[d.key]
            reg = max(reg, c_day)
            d.after_minute = c_min if reg == c_day else -1
        d.reg = reg

    def _build(self: Simulator, d: _Draft, overrides: dict[str, Any], person: dict[str, Any] | None
               ) -> dict[str, Any]:
        ctx = self.ctx(d.i, d.event, d.reg, d.change, d.version)
        if person is not None:
            ctx.update(person)
        d.defect = self._fravaer_reason(d.c, d.i, overrides, d.defect, d.gt)
        rec = self.builders[d.dataset].build(self.rng, ctx, overrides)
        if d.key is not None and d.c.record_key:
            rec[d.c.record_key[0]] = d.key
        return rec

    def _system_change(self: Simulator, d: _Draft, reporter: str, rec: dict[str, Any]) -> None:
        """A reporter's broken field after a system change (:mod:`.reporters`) breaks its clean records."""
        if d.defect is None and self.behaviours.broken:
            b = self.behaviours.broken_on(reporter, d.dataset, d.reg)
            if b is not None and b.field in rec and rec[b.field] is not None:
                rec[b.field] = reporters.BROKEN_FIELD[2]
                d.defect = d.label = "broken_field"

    def _envelope(self: Simulator, d: _Draft, reporter: str, own_day: bool) -> tuple[dict[str, Any], int]:
        """The message envelope; the registration minute is after the create's when on the same day."""
        minute = int(self.rng.integers(7 * 60, 16 * 60))
        reg_minute = minute + int(self.rng.integers(0, 120)) if d.reg == d.event \
            else int(self.rng.integers(7 * 60, 18 * 60))
        if d.after_minute >= 0:
            reg_minute = max(reg_minute, d.after_minute + 1)
        reg_minute = min(reg_minute, 23 * 60 + 59)
        env = {
            "besked_id": self.pop.uuid(),
            "entitet": d.dataset,
            "aendringstype": {"create": "1", "update": "2", "delete": "3"}[d.change],
            "version": d.version,
            "indberetter": reporter,
            "haendelsestidspunkt": iso_dt(d.event, minute),
            "registreringstidspunkt": iso_dt(d.reg, reg_minute),
        }
        return env, reg_minute if own_day else 0

    def _deadline_truth(self: Simulator, d: _Draft, full: dict[str, Any]) -> None:
        """Every deadline the final record breaks is ground truth (none for clean records)."""
        for r in self.ruleviews[d.dataset].deadlines:
            ct = r.params.get("change_type")
            if ct and ct != d.change or (r.params.get("when") and not _matches(full, r.params["when"])):
                continue
            ev, rg = full.get(r.params["event_field"]), full.get(r.params["registration_field"])
            if ev and rg:
                late = (dt.date.fromisoformat(str(rg)[:10]) - dt.date.fromisoformat(str(ev)[:10])).days
                if late > int(r.params.get("max_lag_days", 0)):
                    d.gt.append((r.id, r.params["event_field"], f"registered {late} days after the event"))

    def _deliver(self: Simulator, d: _Draft, reporter: str, full: dict[str, Any], bad_enc: bool,
                 deliver: dt.date | None, referenced: bool, reg_minute: int) -> dt.date:
        """Into the outbox of its delivery day (a stopped reporter's: the catch-up day), with its truth."""
        c = d.c
        pend = Pending(d.dataset, reporter, full, bad_enc)
        day_out = deliver or d.reg
        if self.behaviours.stopped and deliver is None:
            day_out = self.behaviours.withheld(reporter, d.dataset, day_out) or day_out
        if d.label is None and d.late_rep and d.gt:
            d.label = "late_reporter"
        if d.change == "create" and (referenced or d.key is not None) and c.record_key:
            self.created_on[str(full[c.record_key[0]])] = (day_out, reg_minute)
        self.outbox[day_out].append(pend)
        if d.defect == "duplicate_message":
            self.outbox[day_out].append(Pending(d.dataset, reporter, dict(full)))
            d.gt.append((generic_rule_id(d.dataset, "duplicate", "besked_id"), "besked_id",
                         "second copy of a message"))
        if d.gt and day_out <= self.end:
            self.defect_ids.add(full["besked_id"])
            for rule_id, fld, detail in d.gt:
                self.ground_truth.append({
                    "besked_id": full["besked_id"], "dataset": d.dataset, "channel": c.channel,
                    "indberetter": reporter, "leveringsdato": day_out.isoformat(),
                    "defect": d.label or "deadline_breach", "rule_id": rule_id, "field": fld, "detail": detail,
                    "expected": "quarantined" if d.defect in QUARANTINED_DEFECTS or ":duplicate:" in rule_id
                    else f"reported by {rule_id}",
                })
        return day_out

    def _follow_ups(self: Simulator, d: _Draft, rec: dict[str, Any], full: dict[str, Any],
                    overrides: dict[str, Any], day_out: dt.date, deliver: dt.date | None, correctable: bool,
                    changes_ok: bool) -> None:
        """A clean create may be registered twice and deleted (issue 19), or corrected/deleted later."""
        c, i = d.c, d.i
        if d.defect is not None or d.change != "create" or i is None:
            return
        if changes_ok and deliver is None and d.dataset in SPELL_LIKE and c.record_key and day_out <= self.end:
            self._maybe_duplicate_registration(d.dataset, i, full, d.reg, d.event)
        if correctable and "update" in c.change_types:
            u = self.rng.random()
            if u < CORRECTION_RATE + DELETE_RATE:
                kind = "delete" if u < DELETE_RATE and "delete" in c.change_types else "update"
                when = d.reg + dt.timedelta(days=int(self.rng.integers(1, 6)))
                keyval = rec.get(c.record_key[0]) if c.record_key else None
                self.actions[when].append(functools.partial(
                    self._correct, d.dataset, i, d.event, overrides, keyval, kind, when, int(self.pop.spell[i])))

    def _correct(self: Simulator, dataset: str, i: int, event: dt.date, overrides: dict[str, Any],
                 key: str | None, change: str, when: dt.date, spell: int) -> None:
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
