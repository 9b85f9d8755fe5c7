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
