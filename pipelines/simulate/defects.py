"""Background defects: which kinds a dataset can carry, which one a record gets, and how it breaks.

Kept apart from the emission of clean records so that the rate, the rotation of kinds and
each kind's mutation are read in one place; every defect a record carries goes to the
ground truth with the rule that must report it (:mod:`.emission` writes the rows).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from pipelines.contracts import Contract, codelist, generic_rule_id
from pipelines.contracts.validate import validate_record, validate_rules
from pipelines.simulate.records import RuleView

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.simulate.generate import Simulator

DEFECT_KINDS = (
    "invalid_cpr", "unknown_kommunekode", "outside_personkreds", "missing_required", "deadline_breach",
    "duplicate_message", "update_unknown", "bilag1_violation", "bad_encoding",
)
# defects whose record ingestion quarantines (it never reaches the lake)
QUARANTINED_DEFECTS = {"missing_required", "bad_encoding"}
# a spell's or a group's record may only be late or duplicated: losing it would put the
# person's later, clean records outside their personkreds
STATE_DEFECTS = ("deadline_breach", "duplicate_message")
# a text a cp1252 encoder writes as bytes that are no UTF-8
NON_UTF8_TEXT = "Ærø Østergade på Ålandsvej"

Truth = list[tuple[str, str, str]]  # rule_id, field, detail


def _bilag1() -> dict[str, list[tuple[int, str, str]]]:
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


def applicable_defects(c: Contract) -> list[str]:
    """The defect kinds a record of ``c`` can carry (a kind needs the field or rule it breaks)."""
    names = {f.name: f for f in c.fields}
    kinds = ["duplicate_message"]
    if "cpr" in names:
        kinds.append("invalid_cpr")
    if any(f.type == "kommunekode" for f in c.fields):
        kinds.append("unknown_kommunekode")
    if required_candidates(c):
        kinds.append("missing_required")
    rv = RuleView.of(c)
    if rv.max_lag("create")[1] is not None:
        kinds.append("deadline_breach")
    if any(r.kind == "personkreds" for r in c.rules) and c.personkreds.kontaktgrupper:
        kinds.append("outside_personkreds")
    if "update" in c.change_types and own_reference_rule(c):
        kinds.append("update_unknown")
    if any(r.kind == "bilag1" for r in c.rules):
        kinds.append("bilag1_violation")
    utf8_csv = c.channel == "portal" or (c.channel == "filedrop" and c.reporter == "uvm")
    if utf8_csv and text_field(c):
        kinds.append("bad_encoding")
    return kinds


def required_candidates(c: Contract) -> list[str]:
    """Required fields a 'missing_required' defect may leave empty (not the key, the CPR or the time)."""
    key = set(c.record_key)
    return [f.name for f in c.fields if f.required and f.name not in key and f.name != "cpr"
            and f.name not in (c.registration_time,)]


def own_reference_rule(c: Contract):
    """The rule that an update refers to a record of the same dataset (broken by 'update_unknown')."""
    for r in c.rules:
        if r.kind == "reference_exists" and r.params.get("dataset") == c.dataset \
                and r.params.get("field") in c.record_key:
            return r
    return None


def text_field(c: Contract) -> str | None:
    """A free text field a 'bad_encoding' defect can carry."""
    for f in c.fields:
        if f.type in ("string", "text") and not f.codelist and f.pii in ("none", "free_text", "contact"):
            return f.name
    return None


def rule_of(c: Contract, kind: str):
    return next((r for r in c.rules if r.kind == kind), None)


class DefectsMixin:
    """Defect choice and mutation for :class:`~pipelines.simulate.generate.Simulator`."""

    def _draw_defect(self: Simulator, dataset: str, defect_ok: bool, referenced: bool, key: str | None,
                     defects: tuple[str, ...] | None, force_defect: str | None) -> str | None:
        """At the defect rate, the dataset's next kind in turn (from a seeded offset, so every applicable
        kind shows up even in datasets with few records), unless the record must not carry it."""
        defect = None
        if defect_ok and self.rng.random() < self.defect_rate:
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
        return defect

    def _outside_person(self: Simulator, c: Contract, i: int | None, event: dt.date,
                        gt: Truth) -> tuple[str | None, int | None]:
        """'outside_personkreds': the record is about another person, one outside the personkreds."""
        j = self._outside(c, event)
        if j is None:
            return None, i
        gt.append((rule_of(c, "personkreds").id, "cpr", "person outside the personkreds"))
        if any(r.kind == "bilag1" for r in c.rules):
            gt.append((rule_of(c, "bilag1").id, "fravaersaarsag", "no kontaktgruppe allows it"))
        return "outside_personkreds", j

    def _outside(self: Simulator, c: Contract, day: dt.date) -> int | None:
        """A person outside the dataset's personkreds (for the 'outside_personkreds' defect).

        Where the dataset has a Bilag 1 rule the person holds no kontaktgruppe at all: the truth then says no
        group allows the reason, which a person in another group (with a visitationsgruppe that Bilag 1
        admits) would contradict."""
        no_group = rule_of(c, "bilag1") is not None
        for _ in range(50):
            i = int(self.rng.integers(0, self.pop.size))
            if no_group and self.pop.kg[i] != 0:
                continue
            if not self.in_personkreds(c, i, day) and (c.reporter != "akasse" or self.pop.akasse[i] >= 0):
                pk = c.personkreds
                if pk.min_age is not None and self.pop.age_of(i, day) < pk.min_age:
                    continue
                if pk.max_age is not None and self.pop.age_of(i, day) > pk.max_age:
                    continue
                return i
        return None

    def _mutate(self: Simulator, c: Contract, rec: dict[str, Any], defect: str | None, gt: Truth) -> None:
        """The defects that change the built record's fields."""
        dataset = c.dataset
        if defect == "invalid_cpr":
            bad = self._bad_cpr(str(rec.get("cpr") or ""))
            rec["cpr"] = bad
            gt.append((generic_rule_id(dataset, "cpr_valid", "cpr"), "cpr", f"invalid CPR {bad[:4]}..."))
        elif defect == "unknown_kommunekode":
            fld = next(f.name for f in c.fields if f.type == "kommunekode")
            rec[fld] = "999"
            gt.append((generic_rule_id(dataset, "codelist", fld), fld, "kommunekode 999 does not exist"))
        elif defect == "missing_required":
            cands = required_candidates(c)
            fld = cands[int(self.rng.integers(len(cands)))]
            rec[fld] = None
            gt.append((generic_rule_id(dataset, "required", fld), fld, "required field left empty"))
        elif defect == "update_unknown":
            r = own_reference_rule(c)
            gt.append((r.id, c.record_key[0], "update of a record never created"))

    @staticmethod
    def _finish_defect(c: Contract, full: dict[str, Any], defect: str | None, gt: Truth) -> bool:
        """A bad encoding (the writer encodes the line as cp1252), and every problem the defect record
        shows: a defect may break more than its own rule (a person outside the personkreds may also
        lack an a-kasse ...).  Returns whether the line must be written badly encoded."""
        bad_enc = False
        if defect == "bad_encoding":
            fld = text_field(c)
            full[fld] = NON_UTF8_TEXT
            bad_enc = True
            gt.append((generic_rule_id(c.dataset, "encoding", fld), fld, "line encoded as cp1252 in a UTF-8 file"))
        if defect is not None:
            have = {g[0] for g in gt}
            for prob in validate_record(c, full) + validate_rules(c, full):
                if prob.rule_id not in have:
                    gt.append((prob.rule_id, prob.field, prob.message))
                    have.add(prob.rule_id)
        return bad_enc

    def _bad_cpr(self: Simulator, cpr: str) -> str:
        k = int(self.rng.integers(0, 3))
        if k == 0:
            return "32" + cpr[2:]  # day 32
        if k == 1:
            return cpr[:2] + "13" + cpr[4:]  # month 13
        return cpr[:9]  # nine digits

    def pick_reason(self: Simulator, c: Contract, i: int, violate: bool) -> str | None:
        """A fravær reason Bilag 1 allows for the person's groups (or, to violate, one it doesn't)."""
        p = self.pop
        kg, vis, mat = int(p.kg[i]), int(p.visitation[i]), int(p.match[i])
        rule = rule_of(c, "bilag1")
        allowed_names = set((rule.params.get("allowed_reasons") or []) if rule else [])
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

    def _fravaer_reason(self: Simulator, c: Contract, i: int | None, overrides: dict[str, Any], defect: str | None,
                        gt: Truth) -> str | None:
        """Fravær carries a reason Bilag 1 allows, or (the 'bilag1_violation' defect) one it doesn't."""
        if c.dataset not in ("fravaer", "akasse_fravaer") or "fravaersaarsag" in overrides or i is None:
            return defect
        overrides["fravaersaarsag"] = self.pick_reason(c, i, violate=defect == "bilag1_violation")
        if defect == "bilag1_violation":
            if overrides["fravaersaarsag"] is None:
                overrides.pop("fravaersaarsag")
                return None
            gt.append((rule_of(c, "bilag1").id, "fravaersaarsag", "reason not allowed by Bilag 1"))
        return defect
