"""Changes the statistics must survive (issue 19): the spell-like datasets as reporters really change them.

Each kind is produced at a realistic rate, and at least once per generation (the first
opportunity after the first day is taken), so a ``tiny`` run already holds every kind.  Each
goes to the ground truth with what the pipeline must do with it: the rule that reports it
(``rule_id`` a contract rule or a generic check) or the version that must win
(``rule_id`` = ``<dataset>:version:<key>``; ``expected`` says which version and its values).

Kinds (kontaktgruppe unless named):

* ``deleted_in_error``: a registration made twice by mistake (a second record with its own key)
  and deleted (aendringstype 3) 1-3 days later; also tilmelding, afmelding, plan, foranstaltning.
* ``corrected_startdato``: a new spell is created with a start date a few days too late and
  corrected back (update, version + 1) 1-3 days later.
* ``corrected_kontaktgruppe``: a new spell is created in the wrong kontaktgruppe and corrected.
* ``late_correction``: the start date of a spell that ended in a transfer is corrected
  retroactively, delivered days after the create of the person's next spell.
* ``out_of_order``: a spell's create (version 1, wrong group) is delivered days late, after its
  correction (version 2) has arrived: version 2 must win although it arrived first.
* ``redelivered_unchanged``: one reporter's day of records is sent again in a later extract
  (webservice: the same messages again, quarantined as duplicates) or a portal file is uploaded
  again byte for byte under its name (the ledger ignores it).
* ``redelivered_corrected``: a portal file of akasse_tilmelding/akasse_afmelding is uploaded again
  under the same name with one record corrected (a new message id, same record key and version):
  the corrected record must win, the unchanged ones must not count twice.
* ``overlap_move``: on a move the new kommune creates a new spell instead of updating the
  old one, which the old kommune leaves open (§ 16, stk. 5): KG-004 (§ 16, stk. 6) reports
  every record of both spells.
* ``unknown_kommunekode``: a spell update carries kommunekode 999 (code-list check).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.contracts import generic_rule_id

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.simulate.emission import Pending
    from pipelines.simulate.generate import Simulator
    from pipelines.simulate.population import Spell

CHANGE_KINDS = ("deleted_in_error", "corrected_startdato", "corrected_kontaktgruppe", "late_correction",
                "out_of_order", "redelivered_unchanged", "redelivered_corrected", "overlap_move",
                "unknown_kommunekode")
# per opportunity: a create of a spell-like record, a new spell, a transfer, a move, a spell update, a payload
CHANGE_RATES: dict[str, float] = {
    "deleted_in_error": 0.004,
    "corrected_startdato": 0.01,
    "corrected_kontaktgruppe": 0.008,
    "out_of_order": 0.003,
    "late_correction": 0.01,
    "overlap_move": 0.05,
    "unknown_kommunekode": 0.002,
    "redelivered_unchanged": 0.003,
    "redelivered_corrected": 0.01,
}
SPELL_LIKE = ("kontaktgruppe", "tilmelding", "afmelding", "plan", "foranstaltning")
REDELIVERED_FILES = ("akasse_tilmelding", "akasse_afmelding")
# a group a caseworker can mistake for another (the corrected spell keeps its personkreds for most datasets)
CONFUSABLE = {1: 8, 8: 1, 2: 3, 3: 2, 12: 2, 24: 25, 25: 24, 11: 13, 13: 11, 7: 10, 10: 7, 17: 8, 20: 21,
              21: 20}


def version_rule(dataset: str, key: str) -> str:
    """Ground-truth rule id for 'the pipeline must keep the right version' (no contract rule reports it)."""
    return f"{dataset}:version:{key}"


class ChangesMixin:
    """The issue-19 kinds, mixed into :class:`~pipelines.simulate.generate.Simulator`."""

    def _init_changes(self: Simulator) -> None:
        self.crng = np.random.default_rng([self.seed, 19])  # decisions only: records still draw from self.rng
        self.change_count: Counter = Counter()
        self.key_msgs: dict[str, list[tuple[str, dt.date, str]]] = {}  # spell key -> (besked_id, day, reporter)
        self.flag_keys: dict[str, tuple[str, str]] = {}  # spell key -> (rule_id, detail) for every later record
        self.busy_spells: set[str] = set()  # spells with a pending change (one kind at a time)
        self.last_end: dict[int, dt.date] = {}  # person -> end of their latest ended spell
        self.defect_ids: set[str] = set()

    # ------------------------------------------------------------------ decisions
    def change_due(self: Simulator, kind: str, day: dt.date, room: int = 0) -> bool:
        """Whether to produce ``kind`` now: at its rate, or surely at its first opportunity after day 1.

        ``room``: days the kind needs after ``day`` for its follow-up delivery inside the period.
        """
        if day + dt.timedelta(days=room) > self.end or day <= self.start:
            return False
        if self.change_count[kind] == 0:
            return True
        return bool(self.crng.random() < CHANGE_RATES[kind])

    def _change_truth(self: Simulator, rec: dict[str, Any] | None, dataset: str, day: dt.date, kind: str,
                      rule_id: str, fld: str, detail: str, expected: str) -> None:
        if rec is None or day > self.end:
            return
        c = self.contracts[dataset]
        self.ground_truth.append({
            "besked_id": rec["besked_id"], "dataset": dataset, "channel": c.channel, "indberetter": rec["indberetter"],
            "leveringsdato": day.isoformat(), "defect": kind, "rule_id": rule_id, "field": fld, "detail": detail,
            "expected": expected})
        self.defect_ids.add(rec["besked_id"])

    def _track(self: Simulator, dataset: str, rec: dict[str, Any], day_out: dt.date) -> None:
        """Remember a spell's messages (an overlap flags all of them) and flag later ones."""
        if dataset != "kontaktgruppe":
            return
        key = str(rec["kontaktgruppe_id"])
        self.key_msgs.setdefault(key, []).append((rec["besked_id"], day_out, rec["indberetter"]))
        if key in self.flag_keys and rec["aendringstype"] != "3":
            rid, detail = self.flag_keys[key]
            self._change_truth(rec, dataset, day_out, "overlap_move", rid, "startdato", detail,
                               "reported by KG-004 (§ 16, stk. 6); both spells stay as reported")

    # ------------------------------------------------------------------ spell updates
    def _spell_update(self: Simulator, sp: Spell, day: dt.date, overrides: dict[str, Any] | None = None,
                      reg: dt.date | None = None, force_defect: str | None = None) -> dict[str, Any] | None:
        """The spell's next version as reported now (its reported start and group until corrected)."""
        from pipelines.simulate.population import PERSON_GROUPS

        p, i = self.pop, sp.person
        saved = (p.kg[i], p.visitation[i], p.match[i], p.sdp_kat[i], p.pgroup[i])
        p.kg[i] = sp.kg
        p.pgroup[i] = PERSON_GROUPS.index(sp.persongruppe)
        sp.version += 1
        ov: dict[str, Any] = {"startdato": (sp.reported_start or sp.start).isoformat(),
                              "slutdato": sp.end.isoformat() if sp.end and sp.end <= day else None,
                              "persongruppe": sp.persongruppe or None}
        if sp.reported_kg:
            ov["kontaktgruppe"] = str(sp.reported_kg)
        ov.update(overrides or {})
        try:
            return self.emit("kontaktgruppe", i, day, ov, change="update", key=sp.spell_id, version=sp.version,
                             reg=reg, defect_ok=False, correctable=False, force_defect=force_defect)
        finally:
            p.kg[i], p.visitation[i], p.match[i], p.sdp_kat[i], p.pgroup[i] = saved

    def _new_spell_overrides(self: Simulator, sp: Spell) -> tuple[dict[str, Any], str | None, int]:
        """A new spell's create: maybe reported wrongly (start, group) and corrected later.

        Returns the overrides, the kind (or None) and the days until the correction.
        """
        ov: dict[str, Any] = {"startdato": sp.start.isoformat(), "slutdato": None,
                              "persongruppe": sp.persongruppe or None}
        day = sp.start
        if sp.persongruppe:
            return ov, None, 0
        for kind in ("out_of_order", "corrected_kontaktgruppe", "corrected_startdato"):
            if kind != "corrected_startdato" and sp.kg not in CONFUSABLE:
                continue
            if not self.change_due(kind, day, room=4):
                continue
            if kind == "corrected_startdato":
                sp.reported_start = sp.start + dt.timedelta(days=int(self.crng.integers(1, 6)))
                ov["startdato"] = sp.reported_start.isoformat()
            else:
                sp.reported_kg = CONFUSABLE[sp.kg]
                ov["kontaktgruppe"] = str(sp.reported_kg)
            self.busy_spells.add(sp.spell_id)
            self.change_count[kind] += 1
            return ov, kind, int(self.crng.integers(1, 4)) if kind != "out_of_order" else 1
        return ov, None, 0

    def _schedule_spell_correction(self: Simulator, sp: Spell, kind: str, create: dict[str, Any] | None,
                                   after: int, create_day: dt.date, delivered: dt.date) -> None:
        when = create_day + dt.timedelta(days=after)
        self.actions[when].append(functools.partial(self._correct_spell, sp, kind, create, delivered, when))

    def _correct_spell(self: Simulator, sp: Spell, kind: str, create: dict[str, Any] | None, create_day: dt.date,
                       when: dt.date) -> None:
        if sp.reported_start is None and sp.reported_kg is None:
            self.busy_spells.discard(sp.spell_id)  # the spell's end update already reported the truth
            return
        wrong = {"startdato": sp.reported_start, "kontaktgruppe": sp.reported_kg}
        fld = "startdato" if sp.reported_start else "kontaktgruppe"
        sp.reported_start, sp.reported_kg = None, None
        rec = self._spell_update(sp, when, reg=when)
        self.busy_spells.discard(sp.spell_id)
        if rec is None:
            return
        right = sp.start.isoformat() if fld == "startdato" else str(sp.kg)
        rid = version_rule("kontaktgruppe", "kontaktgruppe_id")
        arrived = "arrives before version 1" if kind == "out_of_order" else "arrives after version 1"
        self._change_truth(rec, "kontaktgruppe", when, kind, rid, fld,
                           f"version {rec['version']} corrects {fld} {wrong[fld]} -> {right}; {arrived}",
                           f"wins: version {rec['version']} ({fld}={right})")
        if create is not None:
            self._change_truth(create, "kontaktgruppe", create_day, kind, rid, fld,
                               f"version 1 reports {fld}={wrong[fld]}",
                               f"superseded by version {rec['version']} ({fld}={right})")

    def _late_start_correction(self: Simulator, sp: Spell, day: dt.date) -> None:
        """The ended spell's start is corrected (earlier) after the person's next spell was delivered."""
        i = sp.person
        nxt = int(self.pop.spell[i])
        if nxt < 0 or sp.spell_id in self.busy_spells or sp.spell_id in self.flag_keys:
            return
        nsp = self.pop.spells[nxt]
        if nsp.start != day + dt.timedelta(days=1) or nsp.spell_id not in self.created_on:
            return
        next_day = self.created_on[nsp.spell_id][0]
        when = next_day + dt.timedelta(days=int(self.crng.integers(2, 5)))
        if when > self.end or not self.change_due("late_correction", day, room=(when - day).days):
            return
        new_start = sp.start - dt.timedelta(days=int(self.crng.integers(1, 11)))
        floor = max(self.last_end.get(i, dt.date(2015, 6, 28)), dt.date(2015, 6, 28))
        if new_start <= floor:
            return
        self.change_count["late_correction"] += 1
        self.busy_spells.add(sp.spell_id)
        self.actions[when].append(functools.partial(self._apply_late_correction, sp, new_start, nsp, next_day))

    def _apply_late_correction(self: Simulator, sp: Spell, new_start: dt.date, nsp: Spell, next_day: dt.date) -> None:
        when = self._today
        old = sp.start
        sp.start = new_start  # the truth: the spell began earlier than first reported
        rec = self._spell_update(sp, when, reg=when)
        self.busy_spells.discard(sp.spell_id)
        self._change_truth(rec, "kontaktgruppe", when, "late_correction",
                           version_rule("kontaktgruppe", "kontaktgruppe_id"), "startdato",
                           f"startdato {old} -> {new_start}, delivered {(when - next_day).days} days after the "
                           f"person's next spell {nsp.spell_id} ({next_day})",
                           f"wins: version {rec['version'] if rec else '?'} (startdato={new_start}, slutdato={sp.end})")

    def _overlap_move(self: Simulator, sp: Spell, day: dt.date) -> bool:
        """§ 16, stk. 5 done wrong: the new kommune opens its own spell, the old one stays open."""
        from pipelines.simulate.population import Spell as SpellT

        i = sp.person
        if sp.start >= day or sp.spell_id in self.busy_spells or sp.spell_id in self.flag_keys \
                or sp.spell_id not in self.key_msgs or not self.change_due("overlap_move", day):
            return False
        self.change_count["overlap_move"] += 1
        new = SpellT(self.pop.uuid(), i, sp.kg, day, None, sp.persongruppe, day)
        sp.end = day - dt.timedelta(days=1)  # the truth: the old kommune's spell ended with the move
        self.pop.spells.append(new)
        self.pop.spell[i] = len(self.pop.spells) - 1
        if sp.spell_id in self.sygemeldinger:
            self.sygemeldinger[new.spell_id] = self.sygemeldinger.pop(sp.spell_id)
        rid = "KG-004"
        detail = f"spells {sp.spell_id} (old kommune, left open) and {new.spell_id} (new kommune) overlap"
        self.flag_keys[sp.spell_id] = (rid, detail)
        self.flag_keys[new.spell_id] = (rid, detail)
        c = self.contracts["kontaktgruppe"]
        for bid, d, rep in self.key_msgs.get(sp.spell_id, []):
            self.ground_truth.append({
                "besked_id": bid, "dataset": "kontaktgruppe", "channel": c.channel, "indberetter": rep,
                "leveringsdato": d.isoformat(), "defect": "overlap_move", "rule_id": rid, "field": "startdato",
                "detail": detail, "expected": "reported by KG-004 (§ 16, stk. 6); both spells stay as reported"})
        self._log_groups(i, day)
        self.emit("kontaktgruppe", i, day, {"startdato": day.isoformat(), "slutdato": None,
                                            "persongruppe": sp.persongruppe or None},
                  key=new.spell_id, reg=day, defect_ok=False, correctable=False)
        return True

    # ------------------------------------------------------------------ deletions of records made in error
    def _maybe_duplicate_registration(self: Simulator, dataset: str, i: int, rec: dict[str, Any],
                                      reg: dt.date, event: dt.date) -> None:
        when = reg + dt.timedelta(days=int(self.crng.integers(1, 4)))
        if not self.change_due("deleted_in_error", reg, room=(when - reg).days):
            return
        c = self.contracts[dataset]
        key = c.record_key[0]
        ov = {k: v for k, v in rec.items() if k in c.field_names and k not in (key, c.registration_time)}
        dup = self.emit(dataset, i, event, dict(ov), reg=reg, defect_ok=False, correctable=False, changes_ok=False)
        if dup is None:
            return
        self.change_count["deleted_in_error"] += 1
        self.actions[when].append(functools.partial(self._delete_duplicate, dataset, i, event, ov, dup, reg))

    def _delete_duplicate(self: Simulator, dataset: str, i: int, event: dt.date, ov: dict[str, Any],
                          dup: dict[str, Any], reg: dt.date) -> None:
        c = self.contracts[dataset]
        key = c.record_key[0]
        when = self._today
        gone = self.emit(dataset, i, event, dict(ov), change="delete", key=dup[key], version=2, reg=when,
                         defect_ok=False, correctable=False, changes_ok=False)
        rid = version_rule(dataset, key)
        self._change_truth(dup, dataset, reg, "deleted_in_error", rid, key,
                           f"{key} {dup[key]} registered twice by mistake",
                           f"superseded: deleted on {when}; not current (nor counted) from that load on")
        self._change_truth(gone, dataset, when, "deleted_in_error", rid, key,
                           f"deletes {dup[key]} (aendringstype 3)", "wins: the record is deleted")

    # ------------------------------------------------------------------ re-deliveries
    def _redeliver(self: Simulator, day: dt.date, groups: dict[tuple[str, str], list[Pending]]) -> None:
        """Some of today's payloads are sent again on a later day (see the module docstring)."""
        for (ds, rep), items in sorted(groups.items()):
            c = self.contracts[ds]
            if any(p.bad_encoding or p.record["besked_id"] in self.defect_ids for p in items):
                continue
            if ds in SPELL_LIKE and c.channel == "webservice":
                if self.change_due("redelivered_unchanged", day, room=3):
                    later = day + dt.timedelta(days=int(self.crng.integers(1, 4)))
                    self.change_count["redelivered_unchanged"] += 1
                    for p in items:
                        self.outbox[later].append(type(p)(ds, rep, dict(p.record)))
                        self._change_truth(p.record, ds, later, "redelivered_unchanged",
                                           generic_rule_id(ds, "duplicate", "besked_id"), "besked_id",
                                           f"{rep}'s extract of {day} sent again on {later}",
                                           f"quarantined as duplicate_message: the delivery of {day} stands")
            elif ds in REDELIVERED_FILES and c.channel == "portal":
                for kind in ("redelivered_corrected", "redelivered_unchanged"):
                    if self.change_due(kind, day, room=3):
                        later = day + dt.timedelta(days=int(self.crng.integers(1, 4)))
                        self.change_count[kind] += 1
                        self.redeliveries.append((kind, ds, rep, day, later, [dict(p.record) for p in items]))
                        break

    def _write_redeliveries(self: Simulator, out: Any, day: dt.date) -> None:
        """Portal files uploaded again today under the name they first had."""
        from pipelines.contracts import wire
        from pipelines.contracts.validate import validate_record, validate_rules
        from pipelines.simulate.writers import _write

        for kind, ds, rep, first, later, recs in self.redeliveries:
            if later != day:
                continue
            c = self.contracts[ds]
            name = f"{ds}_{rep}_{first.strftime('%Y%m%d')}.csv"
            if kind == "redelivered_unchanged":
                for r in recs:
                    self._change_truth(r, ds, later, kind, f"{ds}:duplicate:payload", "besked_id",
                                       f"{name} uploaded again on {later}, byte for byte",
                                       f"ignored: the same bytes as {name} of {first} (ledger duplicate_payload)")
                _write(out / "portal" / day.isoformat() / name, wire.portal_payload(c, recs))
                continue
            k = int(self.crng.integers(len(recs)))
            fixed, fld, new = self._corrected_copy(c, recs[k])
            if fixed is None or validate_record(c, fixed) or validate_rules(c, fixed):
                continue
            recs2 = [fixed if j == k else r for j, r in enumerate(recs)]
            key = c.record_key[0]
            for j, r in enumerate(recs):
                if j != k:
                    self._change_truth(r, ds, later, kind, generic_rule_id(ds, "duplicate", "besked_id"),
                                       "besked_id", f"unchanged record of {name}, uploaded again on {later}",
                                       f"counted once: the record of {first} stands (quarantined as a duplicate "
                                       "or superseded by the same values)")
            self._change_truth(fixed, ds, later, kind, version_rule(ds, key), fld,
                               f"{name} uploaded again on {later} with {fld} {recs[k][fld]} -> {new} "
                               f"({key} {fixed[key]}, replaces message {recs[k]['besked_id']})",
                               f"wins: {fld}={new} for {key} {fixed[key]}")
            self._change_truth(recs[k], ds, first, kind, version_rule(ds, key), fld,
                               f"first delivery of {name}", f"superseded by the corrected re-delivery of {later}")
            _write(out / "portal" / day.isoformat() / name, wire.portal_payload(c, recs2))

    def _corrected_copy(self: Simulator, c: Any, rec: dict[str, Any]) -> tuple[dict[str, Any] | None, str, str]:
        fields = [f for f in c.fields if f.codelist and f.required and not f.multi
                  and f.name not in ("akassekode", "kommunekode")]
        if not fields:
            return None, "", ""
        f = fields[int(self.crng.integers(len(fields)))]
        codes = [x for x in self.vocab.codes(f.codelist) if x != str(rec.get(f.name))]
        if not codes:
            return None, "", ""
        new = codes[int(self.crng.integers(len(codes)))]
        fixed = {**rec, f.name: new, "besked_id": self.pop.uuid()}
        return fixed, f.name, new
