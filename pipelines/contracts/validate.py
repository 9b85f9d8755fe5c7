"""Record-level validation against a contract: required, type, code list, CPR/CVR.

The checks every contract implies without writing them down (see
``GENERIC_CHECKS``).  Ingestion uses them to type and quarantine rows; tests use
them to prove that generated records conform except for the injected defects.
Each problem names the rule id, the field and what was wrong.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from dataclasses import dataclass
from typing import Any

from stdnum.dk import cpr as std_cpr
from stdnum.dk import cvr as std_cvr

from pipelines.contracts import Contract, Field, codelist_codes, generic_rule_id

TIME_RE = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")
PNR_RE = re.compile(r"^\d{10}$")
TRUE = {"true", "1", True}
FALSE = {"false", "0", False}


@dataclass(frozen=True)
class Problem:
    rule_id: str
    field: str
    message: str


@functools.cache
def _codes(name: str) -> frozenset[str]:
    return frozenset(codelist_codes(name))


def cpr_valid(value: str) -> bool:
    """CPR per python-stdnum: 10 digits with a real birth date (modulus 11 not required since 2007)."""
    try:
        std_cpr.validate(value)
    except Exception:
        return False
    return True


def cvr_valid(value: str) -> bool:
    try:
        std_cvr.validate(value)
    except Exception:
        return False
    return True


def _check_type(f: Field, v: Any) -> str | None:
    """None if ``v`` is a valid value of ``f``'s type, else the reason."""
    t = f.type
    s = v if isinstance(v, str) else None
    try:
        if t == "integer":
            if isinstance(v, bool) or not (isinstance(v, int) or (s is not None and re.fullmatch(r"-?\d+", s))):
                return f"{v!r} is not an integer"
        elif t == "decimal":
            if isinstance(v, bool):
                return f"{v!r} is not a number"
            float(v)
        elif t == "boolean":
            if v not in TRUE and v not in FALSE:
                return f"{v!r} is not true/false"
        elif t == "date":
            dt.date.fromisoformat(str(v))
            if len(str(v)) != 10:
                return f"{v!r} is not YYYY-MM-DD"
        elif t == "time":
            if not TIME_RE.match(str(v)):
                return f"{v!r} is not HH:MM"
        elif t == "datetime":
            dt.datetime.fromisoformat(str(v))
        elif t == "uuid":
            uuid.UUID(str(v))
        elif t == "pnummer":
            if not PNR_RE.match(str(v)):
                return f"{v!r} is not a 10-digit P-nummer"
        elif t in ("kommunekode", "akassekode") and not re.fullmatch(r"\d{3}", str(v)):
            return f"{v!r} is not a 3-digit code"
    except (ValueError, TypeError):
        return f"{v!r} does not parse as {t}"
    return None


def validate_record(c: Contract, rec: dict[str, Any]) -> list[Problem]:
    """All field-level problems of one wire record (envelope included)."""
    problems: list[Problem] = []
    ds = c.dataset
    for f in c.all_fields:
        v = rec.get(f.name)
        if v is None or v == "" or v == []:
            if f.required:
                problems.append(Problem(generic_rule_id(ds, "required", f.name), f.name, "required field is empty"))
            continue
        values = v if isinstance(v, list) else (str(v).split("#") if f.multi and isinstance(v, str) else [v])
        for item in values:
            if f.type == "cpr":
                if not cpr_valid(str(item)):
                    problems.append(Problem(generic_rule_id(ds, "cpr_valid", f.name), f.name,
                                            f"{str(item)[:4]}... is not a valid CPR number"))
                continue
            if f.type == "cvr":
                if not cvr_valid(str(item)):
                    problems.append(Problem(generic_rule_id(ds, "cvr_valid", f.name), f.name,
                                            f"{item!r} is not a valid CVR number"))
                continue
            why = _check_type(f, item)
            if why:
                problems.append(Problem(generic_rule_id(ds, "type", f.name), f.name, why))
                continue
            if f.codelist and str(item) not in _codes(f.codelist):
                problems.append(Problem(generic_rule_id(ds, "codelist", f.name), f.name,
                                        f"{item!r} is not in code list {f.codelist}"))
    return problems


def _when(rec: dict[str, Any], when: dict[str, Any] | None) -> bool:
    for k, vals in (when or {}).items():
        vals = vals if isinstance(vals, list) else [vals]
        if str(rec.get(k)).lower() not in {str(v).lower() for v in vals}:
            return False
    return True


def _day(v: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(v)[:10]) if v not in (None, "") else None
    except ValueError:
        return None


CHANGE_CODES = {"create": "1", "update": "2", "delete": "3"}
SINGLE_RECORD_KINDS = frozenset(
    {"deadline", "date_window", "start_before_end", "required_when", "allowed_values", "fixed_values"})


def validate_rules(c: Contract, rec: dict[str, Any]) -> list[Problem]:
    """Problems with the contract's single-record rules (a reference evaluator).

    Covers the rule kinds that need only the record itself: deadline, date_window,
    start_before_end, required_when, allowed_values and fixed_values.  Rules that
    need other records or the person's state (personkreds, bilag1, no_overlap,
    reference_exists, only_when_changed, version_increases) are evaluated by the
    quality suites against the warehouse.
    """
    out: list[Problem] = []
    for r in c.rules:
        p = r.params
        if p.get("change_type") and str(rec.get("aendringstype")) != CHANGE_CODES[p["change_type"]]:
            continue
        if r.kind != "required_when" and p.get("when") and not _when(rec, p["when"]):
            continue
        if r.kind == "deadline":
            ev, rg = _day(rec.get(p["event_field"])), _day(rec.get(p["registration_field"]))
            if ev and rg and (rg - ev).days > int(p.get("max_lag_days", 0)):
                out.append(Problem(r.id, p["event_field"], f"registered {(rg - ev).days} days after the event "
                                   f"(max {p.get('max_lag_days', 0)}; {r.paragraph})"))
        elif r.kind == "date_window":
            a, b = _day(rec.get(p["field"])), _day(rec.get(p["relative_to"]))
            if a and b and not int(p.get("min_days", 0)) <= (a - b).days <= int(p.get("max_days", 0)):
                out.append(Problem(r.id, p["field"], f"{p['field']} is {(a - b).days} days from {p['relative_to']}"
                                   f" (allowed {p.get('min_days', 0)}..{p.get('max_days', 0)}; {r.paragraph})"))
        elif r.kind == "start_before_end":
            s, e = rec.get(p["start_field"]), rec.get(p["end_field"])
            if s not in (None, "") and e not in (None, "") and str(e) < str(s):
                out.append(Problem(r.id, p["end_field"], f"{p['end_field']} {e} before {p['start_field']} {s}"))
        elif r.kind == "required_when":
            if _when(rec, p.get("when")) and rec.get(p["field"]) in (None, "", []):
                out.append(Problem(r.id, p["field"], f"{p['field']} is required here ({r.paragraph})"))
        elif r.kind == "allowed_values":
            v = rec.get(p["field"])
            if v in (None, ""):
                continue
            allowed = {str(x) for x in p.get("values") or []}
            excluded = {str(x) for x in p.get("exclude") or []}
            if (allowed and str(v) not in allowed) or str(v) in excluded:
                out.append(Problem(r.id, p["field"], f"{v!r} not allowed here ({r.paragraph})"))
        elif r.kind == "fixed_values":
            for fld, want in (p.get("then") or {}).items():
                if rec.get(fld) not in (None, "") and str(rec.get(fld)).lower() != str(want).lower():
                    out.append(Problem(r.id, fld, f"{fld} must be {want!r} ({r.paragraph})"))
    return out
