"""The day's schedule: what happens to the population on a day, and which records it causes.

A day runs the actions due (bookings held, corrections, deletions), the events drawn at their
daily rates among the persons in each dataset's personkreds, and the state transitions of
:func:`~pipelines.simulate.population.advance_day` (spells that end and start, moves, changes of
a-kasse).  Each becomes records through :meth:`~pipelines.simulate.emission.EmissionMixin.emit`.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.simulate import history
from pipelines.simulate.defects import QUARANTINED_DEFECTS, STATE_DEFECTS
from pipelines.simulate.emission import LIFECYCLE
from pipelines.simulate.population import PERSON_GROUPS, Spell, advance_day

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.simulate.generate import Simulator

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
# At least this many per generation, whatever the scale (the rates give a small Denmark's fortnight none):
# the recipients of § 66, stk. 5 and § 39, stk. 11 must get rows in the demo (issue 12).
AKASSE_CHANGES_MIN = 3
MOVES_WITH_PLAN_MIN = 3
JOBSEEKER_KG = {1, 2, 3, 8, 12}  # groups registered as jobseekers (tilmelding)
STILLINGSOPSLAG_PER_MILLION = 3000


class ScheduleMixin:
    """The day's events for :class:`~pipelines.simulate.generate.Simulator`."""

    def run_day(self: Simulator, day: dt.date) -> None:
        if day == self.start and self.bestand:
            self._bestand(day)
            history.first_extract(self, day)
            self._warm_bookings(day)
        for act in self.actions.pop(day, []):
            act()
        self._rate_events(day)
        tr = advance_day(self.pop, self.rng, day)
        for sp in tr.ended:
            self._spell_ended(sp, day)
        for sp in tr.started:
            self._spell_started(sp)
        for sp in tr.ended:  # after the next spells' creates: a late correction arrives after them
            self._late_start_correction(sp, day)
            self.last_end[sp.person] = day
        for i, old, _new in tr.moved:
            self._moved(i, day, old)
        self._move_with_plan(day)
        self._akasse_changes(day)
        if "stillingsopslag" in self.contracts:
            n = int(self.rng.poisson(STILLINGSOPSLAG_PER_MILLION * self.pop.size / 1_000_000))
            for _ in range(n):
                self.emit("stillingsopslag", None, day)

    def _bestand(self: Simulator, day: dt.date) -> None:
        """First extract: open spells registered before the simulation (the DFDG's history).

        They were registered on time (registreringsdato = startdato) and are
        delivered in the first day's extract.
        """
        for sp in self.pop.spells:
            if sp.end is None and sp.start < day:
                self._bestand_spell(sp, day)

    def _bestand_spell(self: Simulator, sp: Spell, day: dt.date) -> None:
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
        if sp.kg == 1 and self.pop.akasse[i] >= 0:
            # the a-kasse's registration of its dagpengemodtager (§ 53, stk. 1): the evidence of membership
            # that a later change of a-kasse (§ 66, stk. 5) is seen against
            self.emit("akasse_tilmelding", i, sp.start, {"startdato": sp.start.isoformat()},
                      reg=sp.start, deliver=day, defect_ok=False, correctable=False)

    def _warm_bookings(self: Simulator, day: dt.date) -> None:
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

    def _report_groups(self: Simulator, i: int, start: dt.date, deliver: dt.date | None = None) -> None:
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

    def _log_groups(self: Simulator, i: int, day: dt.date) -> None:
        p = self.pop
        self.group_log.append((p.cpr[i], day, int(p.kg[i]), int(p.visitation[i]), int(p.match[i])))

    def _spell_started(self: Simulator, sp: Spell) -> None:
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

    def _spell_ended(self: Simulator, sp: Spell, day: dt.date) -> None:
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

    def _akasse_changes(self: Simulator, day: dt.date) -> None:
        """A dagpengemodtager changes a-kasse (~9 % a year): the new a-kasse registers the member as a
        jobseeker (§ 53, stk. 1), which is what the § 66, stk. 5 delivery sees as the change.

        At that rate a small Denmark's fortnight may hold none; until AKASSE_CHANGES_MIN have happened,
        each day after the first has at least one (the § 66, stk. 5 recipient must get rows).
        """
        p = self.pop
        if "akasse_tilmelding" not in self.contracts or len(p.akasser) < 2:
            return
        members = np.flatnonzero((p.kg == 1) & (p.akasse >= 0))
        n = int(self.rng.binomial(len(members), AKASSE_CHANGE_RATE)) if len(members) else 0
        if n == 0 and len(members) and self.start < day < self.end and self.akasse_changes < AKASSE_CHANGES_MIN:
            n = 1
        for i in (np.sort(self.rng.choice(members, size=n, replace=False)) if n else []):
            others = p.akasser[p.akasser != p.akasse[i]]
            p.akasse[i] = others[int(self.rng.integers(len(others)))]
            self.akasse_changes += 1
            self.emit("akasse_tilmelding", int(i), day, {"startdato": day.isoformat()}, reg=day,
                      defect_ok=False, correctable=False)

    def _moved(self: Simulator, i: int, day: dt.date, old: int | None = None) -> None:
        """A move changes the myndighedstilknytning: the new opholdskommune updates the spell (§ 16, stk. 5)."""
        k = int(self.pop.spell[i])
        if k < 0:
            return
        sp = self.pop.spells[k]
        if sp.start > day:
            return
        if old is not None and self._plan_goes_along(i, old):
            self.moves_with_plan += 1
        if self._overlap_move(sp, day):
            return
        self._spell_update(sp, day)

    def _plan_goes_along(self: Simulator, i: int, old: int) -> bool:
        """Whether the person has a current plan of the old kommune that § 39, stk. 11 sends to the new one
        (a jobplan, an aftale om opfølgning or a rehabiliteringsplan, afgivet or kvitteret)."""
        rec = self.plan_records.get(i)
        return rec is not None and str(rec.get("kommunekode")) in (str(old), f"{old:03d}") \
            and rec.get("plantype") in ("1", "2", "4") and rec.get("status") in ("2", "3")

    def _move_with_plan(self: Simulator, day: dt.date) -> None:
        """Moves are ~7 % a year (population.MOVE_RATE): a small Denmark's fortnight may hold no move of a
        person whose plan goes along (§ 39, stk. 11).  Until MOVES_WITH_PLAN_MIN have happened, each day
        after the first moves one such person (the tilflytningskommune recipient must get rows)."""
        if not self.start < day < self.end or self.moves_with_plan >= MOVES_WITH_PLAN_MIN:
            return
        p = self.pop
        for i in sorted(self.plan_records):
            k = int(p.spell[i])
            if k < 0 or not self._plan_goes_along(i, int(p.ophold[i])):
                continue
            sp = p.spells[k]
            if sp.start >= day or sp.spell_id in self.busy_spells or sp.spell_id not in self.key_msgs:
                continue
            old = int(p.ophold[i])
            keep = p.kommuner != old
            w = p.kommune_weights[keep]
            p.bopael[i] = p.ophold[i] = p.kommuner[keep][int(self.crng.choice(int(keep.sum()), p=w / w.sum()))]
            self._moved(i, day, old)
            return

    def _rate_events(self: Simulator, day: dt.date) -> None:
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

    def _ev_indkaldelse(self: Simulator, i: int, day: dt.date) -> None:
        meeting = day + dt.timedelta(days=int(self.rng.integers(5, 22)))
        rec = self.emit("indkaldelse", i, day, {"samtaledato": meeting.isoformat()}, referenced=True)
        if rec and rec.get("indkaldelse_id") and rec.get("cpr") == self.pop.cpr[i]:
            self.actions[meeting].append(
                functools.partial(self._held, "samtale", i, rec["indkaldelse_id"], rec.get("samtaletype")))

    def _ev_akasse_indkaldelse(self: Simulator, i: int, day: dt.date) -> None:
        meeting = day + dt.timedelta(days=int(self.rng.integers(5, 22)))
        c = self.contracts["akasse_indkaldelse"]
        date_field = next((f.name for f in c.fields if f.type == "date" and f.name not in
                           (c.event_time, c.registration_time)), None)
        ov = {date_field: meeting.isoformat()} if date_field else {}
        rec = self.emit("akasse_indkaldelse", i, day, ov)
        if rec and rec.get("cpr") == self.pop.cpr[i]:
            self.actions[meeting].append(functools.partial(self._held, "akasse_samtale", i, None, None))

    def _held(self: Simulator, dataset: str, i: int, booking: str | None, samtaletype: str | None) -> None:
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

    def _ev_plan(self: Simulator, i: int, day: dt.date) -> None:
        key, version = self.plans.get(i, (None, 0))
        if key is None:
            rec = self.emit("plan", i, day, correctable=False, referenced=True)
            c = self.contracts["plan"]
            if rec and c.record_key and rec.get("cpr") == self.pop.cpr[i]:
                self.plans[i] = (rec[c.record_key[0]], 1)
                self.plan_records[i] = rec
        else:
            rec = self.emit("plan", i, day, change="update", key=key, version=version + 1, correctable=False)
            if rec:
                self.plans[i] = (key, version + 1)
                self.plan_records[i] = rec
