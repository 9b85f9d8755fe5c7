"""Record-level validation against a contract: required, type, code list, CPR/CVR.

The checks every contract implies without writing them down (see
``GENERIC_CHECKS``).  Ingestion uses them to type and quarantine rows; tests use
them to prove that generated records conform except for the injected defects.
Each problem names the rule id, the field and what was wrong.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass
from typing import Any

from stdnum.dk import cpr as std_cpr
from stdnum.dk import cvr as std_cvr

from pipelines.contracts import Contract, Field, codelist_codes, generic_rule_id

# The wire formats' value syntax (docs/sources.md), ASCII only: Python's \\d and int()/float()
# also take other scripts' digits ('١٢'), and date.fromisoformat takes ISO week dates.
TIME_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?")
PNR_RE = re.compile(r"[0-9]{10}")
INT_RE = re.compile(r"-?[0-9]+")
DECIMAL_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# ISO 8601 with offset (docs/sources.md: "datetimes ISO 8601 with offset"): a time without
# one is ambiguous (local time, and which?) and is not accepted.
DATETIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})")
DATETIME_NAIVE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CODE3_RE = re.compile(r"[0-9]{3}")
DIGITS_RE = re.compile(r"[0-9]+")
TRUE = {"true", "1", True}
FALSE = {"false", "0", False}
# Types whose wire value is text: in JSON a string, never a number (a CPR number as a JSON
# number has lost its leading zero).
STRING_WIRE_TYPES = frozenset(
    {"string", "text", "code", "cpr", "cvr", "pnummer", "kommunekode", "akassekode", "uuid", "time", "date",
     "datetime"})
# Text may hold TAB and line ends; every other C0 control, DEL and C1 control is not text
# (a NUL byte usually means a binary or UTF-16 fragment, or a C string's end).
CONTROL_CHARS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
CONTROL_RE = re.compile(CONTROL_CHARS)

# Plausible dates (issue 11, item 12).  Bounds, not rules of the order: a date outside them
# is a placeholder or a typing slip (0001-01-01, 9999-12-31 for "open", 2206 for 2026), not
# a fact to report back through the quality suites, so ingestion quarantines the record.
DATE_FLOOR = dt.date(1900, 1, 1)
DATE_FLOOR_WHY = ("before 1900: the order's data concern persons of working age (15-66, the personkredse "
                  "of §§ 15 and 93) in today's employment system; no event of theirs is that old")
FUTURE_YEARS = 10
FUTURE_WHY = (f"more than {FUTURE_YEARS} years after the leveringsdato: the order's forward-looking dates "
              "(an education's or a plan's end, a dagpenge period's expiry, a job ad's deadline) lie at most "
              "a few years ahead; an open end is an empty field, not 9999-12-31")
PAST_ONLY_WHY = ("after the leveringsdato (+1 day for time zones): an event or a registration is delivered "
                 "after it happened (the extract for leveringsdato holds that day's registrations)")
PAST_ONLY_ENVELOPE = ("haendelsestidspunkt", "registreringstidspunkt")


def date_bounds(c: Contract, f: Field, leveringsdato: dt.date) -> tuple[dt.date, dt.date, str]:
    """(earliest, latest plausible date, why the latest) of a date/datetime field in a payload.

    Past-facing fields (the envelope's event and registration times, the contract's
    registration date) end the day after delivery; every other date ends ``FUTURE_YEARS``
    after it.  Dates before ``DATE_FLOOR`` are never plausible.
    """
    if f.name in PAST_ONLY_ENVELOPE or f.name == c.registration_time:
        return DATE_FLOOR, leveringsdato + dt.timedelta(days=1), PAST_ONLY_WHY
    try:
        hi = leveringsdato.replace(year=leveringsdato.year + FUTURE_YEARS)
    except ValueError:  # 29 February
        hi = leveringsdato.replace(year=leveringsdato.year + FUTURE_YEARS, day=28)
    return DATE_FLOOR, hi, FUTURE_WHY


def check_json_kind(f: Field, v: Any) -> str | None:
    """None if a JSON value has the JSON kind the field's wire type has, else the reason.

    JSON carries the CSV formats' names and types (docs/sources.md): text types are JSON
    strings, integers and decimals JSON numbers, booleans JSON true/false.
    """
    if v is None:
        return None
    t = f.type
    if t in STRING_WIRE_TYPES:
        if isinstance(v, str):
            return None
        kind = "boolean" if isinstance(v, bool) else "number" if isinstance(v, int | float) else type(v).__name__
        return (f"a JSON {kind} ({short_repr(v)}) where the format has a string"
                + (" (a number loses leading zeros)" if kind == "number" else ""))
    if t in ("integer", "decimal"):
        if isinstance(v, bool) or not isinstance(v, int | float):
            return f"a JSON {'boolean' if isinstance(v, bool) else 'string'} ({short_repr(v)}) where the format has a number"
        if isinstance(v, float) and not math.isfinite(v):
            return f"{v!r} is not a number"
        return None
    if t == "boolean" and not isinstance(v, bool):
        return f"a JSON {'string' if isinstance(v, str) else 'number'} ({short_repr(v)}) where the format has true/false"
    return None


def short_repr(v: Any, limit: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= limit else r[:limit] + "..."


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
    """None if ``v`` is a valid value of ``f``'s type, else the reason (the wire syntax, ASCII digits)."""
    t = f.type
    s = v if isinstance(v, str) else None
    try:
        if t == "integer":
            if isinstance(v, bool) or not (isinstance(v, int) or (s is not None and INT_RE.fullmatch(s))):
                return f"{v!r} is not an integer (ASCII digits)"
        elif t == "decimal":
            if isinstance(v, bool) or not (isinstance(v, int | float) or (s is not None and DECIMAL_RE.fullmatch(s))):
                return f"{v!r} is not a number (ASCII digits, '.' as the decimal mark)"
            if not math.isfinite(float(v)):
                return f"{v!r} is not a finite number"
        elif t == "boolean":
            if v not in TRUE and v not in FALSE:
                return f"{v!r} is not true/false"
        elif t == "date":
            if s is None or not DATE_RE.fullmatch(s):
                return f"{v!r} is not YYYY-MM-DD"
            dt.date.fromisoformat(s)
        elif t == "time":
            if s is None or not TIME_RE.fullmatch(s):
                return f"{v!r} is not HH:MM"
        elif t == "datetime":
            if s is None or not DATETIME_RE.fullmatch(s):
                if s is not None and DATETIME_NAIVE_RE.fullmatch(s):
                    return (f"{v!r} has no UTC offset: the wire format's datetimes are ISO 8601 with offset "
                            "(YYYY-MM-DDTHH:MM:SS+HH:MM)")
                return f"{v!r} is not an ISO 8601 datetime with offset (YYYY-MM-DDTHH:MM:SS+HH:MM)"
            dt.datetime.fromisoformat(s)
        elif t == "uuid":
            if s is None or not UUID_RE.fullmatch(s):
                return f"{v!r} is not a UUID (8-4-4-4-12 hex digits)"
        elif t == "pnummer":
            if s is None or not PNR_RE.fullmatch(s):
                return f"{v!r} is not a 10-digit P-nummer"
        elif t in ("kommunekode", "akassekode"):
            if s is None or not CODE3_RE.fullmatch(s):
                return f"{v!r} is not a 3-digit code"
        elif t in ("cpr", "cvr") and (s is None or not DIGITS_RE.fullmatch(s)):
            # ASCII digits only here; validity (length, date, modulus) is the quality suites' question
            return f"{short_repr(v)} is not ASCII digits (a {t.upper()} number is digits only)"
    except (ValueError, TypeError, OverflowError):
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
