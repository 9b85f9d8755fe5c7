"""Typing wire values by the contract: vectorized with pyarrow, judged by validate.py.

The type rules are expressed once, in :func:`pipelines.contracts.validate._check_type`.
Here every column first goes through a strict, vectorized fast path that accepts only
values that rule accepts too (canonical ``YYYY-MM-DD`` dates, ``-?digits`` integers, ...).
Whatever the fast path does not take is handed to ``_check_type`` one value at a time:
it rejects (a ``type`` error with its message) or accepts, and then the value is
converted in Python.  So the parser never accepts what the validator rejects, nor the
other way round; the one exception is an integer outside int64, which the lake cannot hold.

Code-list membership and CPR/CVR validity are not typing questions: those columns stay
strings and are judged by the quality suites.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import Contract, Field
from pipelines.contracts.validate import (
    CONTROL_CHARS,
    CONTROL_RE,
    DATE_FLOOR_WHY,
    STRING_WIRE_TYPES,
    check_json_kind,
    date_bounds,
)
from pipelines.contracts.validate import _check_type as check_type  # the one statement of the type rules

from .formats import WireFormat
from .schema import TIMESTAMP, arrow_type

CHANGE_TYPES = ("1", "2", "3")  # DFDG Aendringstype: Oprettelse, Opdatering, Sletning
_CHANGE_TYPES = pa.array(CHANGE_TYPES)
MAX_MESSAGE = 300

# Fast paths: strict patterns (RE2) whose matches _check_type accepts as well.  Dates and
# datetimes that match are then cast by Arrow, which rejects impossible ones (2023-02-30).
_YEAR = "([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"  # 0001-9999
_DATE = _YEAR + "-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_FAST_PATTERNS = {
    "integer": r"^-?[0-9]{1,18}$",
    "decimal": r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$",
    "uuid": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    "pnummer": r"^[0-9]{10}$",
    "kommunekode": r"^[0-9]{3}$",
    "akassekode": r"^[0-9]{3}$",
    "time": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
    "cpr": r"^[0-9]+$",
    "cvr": r"^[0-9]+$",
    "date": f"^{_DATE}$",
    "datetime": f"^{_DATE}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9][+-]([01][0-9]|2[0-3]):[0-5][0-9]$",
}
SMALL_ROWS = 16  # up to this many rows every value takes the slow path (same verdicts, less overhead)
_UNCHECKED = frozenset({"string", "text", "code"})
_TRUE_STR = pa.array(["true", "1"])
_FALSE_STR = pa.array(["false", "0"])


@dataclass(frozen=True)
class FieldError:
    pos: int  # position among the candidate rows
    field: str
    kind: str  # "type" | "required" | "change_type" | "control_character" | "implausible_date"
    message: str


def short(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def json_scalar(v: Any) -> str | None:
    """A JSON value of a single-valued field as wire text ('' -> None); TypeError for arrays/objects."""
    if v is None:
        return None
    if isinstance(v, str):
        return v or None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    raise TypeError(f"expected a single value, got a JSON {'array' if isinstance(v, list) else 'object'}")


def _py_value(f: Field, v: Any) -> Any:
    """The typed value of a wire value ``_check_type`` accepted (the slow path)."""
    t = f.type
    if t == "integer":
        i = int(v)
        if not -(2**63) <= i < 2**63:
            raise ValueError(f"{short(repr(v))} is outside the int64 range the lake holds")
        return i
    if t == "decimal":
        return float(v)
    if t == "boolean":
        return v in ("true", "1", True, 1)
    if t == "date":
        return dt.date.fromisoformat(str(v))
    if t == "datetime":  # _check_type accepted it: it carries its offset
        return dt.datetime.fromisoformat(str(v))
    if t == "uuid":
        return str(uuid.UUID(str(v)))
    return v if isinstance(v, str) else json_scalar(v)


def _fast(f: Field, arr: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """(typed array, mask of non-null values the fast path did not take, None if there are none).

    Few Arrow calls per column (each costs ~20-100 us whatever the length): a pattern match,
    then a cast only where the column has a target type; the masks only when some value missed.
    """
    t = f.type
    if t in _UNCHECKED:
        return arr, None
    if t == "boolean":
        is_true = pc.is_in(arr, value_set=_TRUE_STR)
        ok = pc.or_(is_true, pc.is_in(arr, value_set=_FALSE_STR))
        typed = pc.if_else(ok, is_true, pa.scalar(None, pa.bool_()))
        missed = pc.and_(pc.invert(ok), arr.is_valid())
        return typed, (missed if missed.true_count else None)
    ok = pc.match_substring_regex(arr, _FAST_PATTERNS[t])  # null where arr is null
    target = _TARGETS.get(t)
    if not ok.false_count:  # every value matched: no mask needed
        if target is None:  # uuid, pnummer, kommunekode, akassekode, time, cpr, cvr: strings matching a pattern
            return arr, None
        try:
            return pc.cast(arr, target), None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. 2023-02-30: the slow path judges
            return pa.nulls(len(arr), target), arr.is_valid()
    missed = pc.fill_null(pc.invert(ok), False)
    if target is None:
        return arr, missed
    cand = pc.if_else(ok, arr, pa.scalar(None, pa.string()))
    try:
        return pc.cast(cand, target), missed
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(len(arr), target), arr.is_valid()


_TARGETS = {"integer": pa.int64(), "decimal": pa.float64(), "date": pa.date32(), "datetime": TIMESTAMP}


def _type_message(f: Field, why: str, v: Any, fmt: WireFormat) -> str:
    msg = f"{f.name}: {why}"
    if f.type == "decimal" and isinstance(v, str) and "," in v and not fmt.decimal_comma:
        msg += f" (decimal comma: the {fmt.name} format declares '.' as the decimal mark)"
    return short(msg)


def _type_scalar(f: Field, arr: pa.Array, value_at: Callable[[int], Any], fmt: WireFormat,
                 errors: list[FieldError], skip: set[int]) -> pa.Array:
    """Typed values of one single-valued column: fast path, then _check_type for what it left."""
    if f.type in _UNCHECKED:
        return arr
    if len(arr) <= SMALL_ROWS:  # a few rows: Arrow's per-call cost exceeds judging each value
        typed, todo = pa.nulls(len(arr), arrow_type(f)), [i for i, v in enumerate(arr.to_pylist()) if v is not None]
    else:
        if f.type == "decimal" and fmt.decimal_comma:
            arr = pc.replace_substring(arr, ",", ".")
        typed, missed = _fast(f, arr)
        if missed is None:
            return typed
        todo = pc.indices_nonzero(missed).to_pylist()
    patches: dict[int, Any] = {}
    for pos in todo:
        v = orig = value_at(pos)
        if f.type == "decimal" and fmt.decimal_comma and isinstance(v, str):
            v = v.replace(",", ".")
        why = check_type(f, v)
        if why is None:
            try:
                patches[pos] = _py_value(f, v)
                continue
            except (ValueError, TypeError, OverflowError) as exc:
                why = str(exc)
        errors.append(FieldError(pos, f.name, "type", _type_message(f, why, orig, fmt)))
        skip.add(pos)
    if not patches:
        return typed
    values = typed.to_pylist()
    for pos, value in patches.items():
        values[pos] = value
    return pa.array(values, arrow_type(f))


def _type_multi(f: Field, vals: Sequence[Any] | pa.Array, fmt: WireFormat, errors: list[FieldError],
                missing_keys: dict[tuple[int, str], str], from_json: bool, controls: bool) -> pa.Array:
    """A list-valued field: items split on '#' (CSV) or a JSON array; each item judged by its type.

    Text items (the common case: every value a JSON array of strings, or CSV text) are split and
    checked by Arrow; only rows that may hold a problem (empty and required, a control character)
    are judged one by one, by the same code as every row otherwise.
    """
    fast = _multi_fast(f, vals, fmt, from_json, controls)
    if fast is not None:
        arr, suspects = fast
        if suspects:
            values = vals.to_pylist() if isinstance(vals, pa.Array) else vals
            for pos in suspects:
                _judge_multi(f, pos, values[pos], fmt, errors, missing_keys, from_json, controls)
        return arr
    if isinstance(vals, pa.Array):
        vals = vals.to_pylist()
    out = [_judge_multi(f, pos, v, fmt, errors, missing_keys, from_json, controls) for pos, v in enumerate(vals)]
    return pa.array(out, pa.list_(pa.string()))


_LIST_OF_STRINGS = pa.list_(pa.string())


def _multi_fast(f: Field, vals: Sequence[Any] | pa.Array, fmt: WireFormat, from_json: bool, controls: bool
                ) -> tuple[pa.Array, list[int]] | None:
    """(the typed list column, rows to judge one by one) of a text list field, or None when some value
    is not a JSON array of strings (or null), so every row is judged by :func:`_judge_multi`."""
    if f.type not in _UNCHECKED:
        return None
    try:
        if from_json:
            if isinstance(vals, pa.Array) or not set(map(type, vals)) <= {list, type(None)}:
                return None
            arr = pa.array(vals, _LIST_OF_STRINGS)  # raises unless every item is a string or null
            empty = pc.equal(pc.list_value_length(arr), 0)  # an empty array is empty, as null is
            if empty.true_count:
                arr = pc.if_else(empty, pa.scalar(None, _LIST_OF_STRINGS), arr)
        else:
            text = vals if isinstance(vals, pa.Array) else pa.array(vals, pa.string())
            if text.type != pa.string():
                return None
            text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)  # '' is empty
            arr = pc.split_pattern(text, pattern=fmt.multi_sep)
    except _ARROW_ERRORS:
        return None
    suspects: set[int] = set()
    if f.required and arr.null_count:
        suspects.update(pc.indices_nonzero(arr.is_null()).to_pylist())
    if controls:
        bad = pc.fill_null(pc.match_substring_regex(pc.list_flatten(arr), CONTROL_CHARS), False)
        if bad.true_count:
            suspects.update(pc.filter(pc.list_parent_indices(arr), bad).to_pylist())
    return arr, sorted(suspects)


def _judge_multi(f: Field, pos: int, v: Any, fmt: WireFormat, errors: list[FieldError],
                 missing_keys: dict[tuple[int, str], str], from_json: bool, controls: bool) -> list[str | None] | None:
    """One row of a list-valued field: its items as wire text, every problem added to ``errors``."""
    if v is None or v == "" or v == []:
        if f.required:
            why = missing_keys.get((pos, f.name), "required field is empty")
            errors.append(FieldError(pos, f.name, "required", f"{f.name}: {why}"))
        return None
    items = v if isinstance(v, list) else v.split(fmt.multi_sep) if isinstance(v, str) else [v]
    row: list[str | None] = []
    for item in items:
        why = check_json_kind(f, item) if from_json else None
        if why:
            errors.append(FieldError(pos, f.name, "type", short(f"{f.name}: list item: {why}")))
            continue
        try:
            s = None if item is None else json_scalar(item) or ""
        except TypeError as exc:
            errors.append(FieldError(pos, f.name, "type", f"{f.name}: list item: {exc}"))
            continue
        if s is not None and f.type not in _UNCHECKED:
            why = check_type(f, item)
            if why:
                errors.append(FieldError(pos, f.name, "type", _type_message(f, why, item, fmt)))
        if s is not None and controls and CONTROL_RE.search(s):
            errors.append(FieldError(pos, f.name, "control_character", _control_message(f, s)))
        row.append(s)
    return row


def _control_message(f: Field, value: str) -> str:
    m = CONTROL_RE.search(value)
    assert m is not None
    ch = m.group()
    return short(f"{f.name}: control character U+{ord(ch):04X} ({_CONTROL_NAMES.get(ch, 'control')}) at "
                 f"character {m.start() + 1}: text holds no control characters but TAB and line ends")


_CONTROL_NAMES = {"\x00": "NUL", "\x1b": "ESC", "\x7f": "DEL", "\x08": "BACKSPACE", "\x0c": "FORM FEED",
                  "\x0b": "VERTICAL TAB"}


def _implausible(contract: Contract, f: Field, typed: pa.Array, leveringsdato: dt.date | None,
                 errors: list[FieldError], skip: set[int]) -> None:
    """Dates outside :func:`date_bounds` (placeholders, typing slips): ``implausible_date``."""
    if leveringsdato is None or typed.null_count == len(typed):
        return
    lo, hi, why_hi = date_bounds(contract, f, leveringsdato)
    if f.type == "date":
        lo_s, hi_s = pa.scalar(lo, pa.date32()), pa.scalar(hi, pa.date32())
    else:
        lo_s = pa.scalar(dt.datetime(lo.year, lo.month, lo.day, tzinfo=dt.UTC), TIMESTAMP)
        hi_s = pa.scalar(dt.datetime(hi.year, hi.month, hi.day, tzinfo=dt.UTC) + dt.timedelta(days=1), TIMESTAMP)
    mm = pc.min_max(typed)
    if mm["min"].as_py() >= lo_s.as_py() and (
            mm["max"].as_py() < hi_s.as_py() if f.type == "datetime" else mm["max"].as_py() <= hi_s.as_py()):
        return
    early = pc.fill_null(pc.less(typed, lo_s), False)
    late = pc.fill_null(pc.greater_equal(typed, hi_s) if f.type == "datetime" else pc.greater(typed, hi_s),
                        False)
    if not (early.true_count or late.true_count):
        return
    for pos in pc.indices_nonzero(pc.or_(early, late)).to_pylist():
        if pos in skip:
            continue
        v = typed[pos].as_py()
        shown = v.isoformat() if f.type == "date" else v.isoformat().replace("+00:00", "Z")
        why = DATE_FLOOR_WHY if early[pos].as_py() else why_hi
        errors.append(FieldError(pos, f.name, "implausible_date", short(
            f"{f.name}: {shown} is implausible ({why}; plausible {lo}..{hi} for leveringsdato "
            f"{leveringsdato})", 600)))
        skip.add(pos)


def _required_nulls(f: Field, typed: pa.Array, skip: set[int], missing_keys: dict[tuple[int, str], str],
                    errors: list[FieldError]) -> None:
    if f.required and typed.null_count:
        for pos in pc.indices_nonzero(typed.is_null()).to_pylist():
            if pos in skip:
                continue
            why = missing_keys.get((pos, f.name), "required field is empty")
            errors.append(FieldError(pos, f.name, "required", f"{f.name}: {why}"))


_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError)


def _json_column(f: Field, vals: Sequence[Any]) -> tuple[pa.Array, bool] | None:
    """A JSON column in one Arrow call when every value has its type's JSON kind, else None.

    (array, True) is typed already (integers, decimals, booleans); (array, False) is the
    string column ('' as null) for the usual checks.  None sends the column value by value
    through :func:`check_json_kind` and ``_check_type``, which name what is wrong.
    """
    t = f.type
    try:
        if t in STRING_WIRE_TYPES:
            arr = pa.array(vals, pa.string())  # raises unless every value is a JSON string or null
            if "" in vals:  # '' is null on the wire
                arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
            return arr, False
        arr = pa.array(vals)  # inferred: int64 only when all are ints, bool only when all are booleans
    except _ARROW_ERRORS:
        return None
    if arr.type == pa.null():
        return pa.nulls(len(arr), arrow_type(f)), True
    if t == "integer" and arr.type == pa.int64():
        return arr, True
    if t == "boolean" and arr.type == pa.bool_():
        return arr, True
    if t == "decimal" and arr.type in (pa.int64(), pa.float64()) and not any(type(v) is bool for v in vals):
        arr = arr.cast(pa.float64())
        if pc.all(pc.is_finite(arr)).as_py() is not False:
            return arr, True
    return None


def type_columns(contract: Contract, fmt: WireFormat, columns: dict[str, Sequence[Any] | pa.Array], n: int, *,
                 from_json: bool = False, missing_keys: dict[tuple[int, str], str] | None = None,
                 leveringsdato: dt.date | None = None, controls: bool = True
                 ) -> tuple[list[pa.Array], list[FieldError]]:
    """Typed arrays (contract order) for ``n`` candidate rows, and every field-level problem.

    ``columns`` maps each wire field to its ``n`` values: a string array (null = empty) or
    a sequence of strings ('' = empty) from CSV, the decoded JSON values from JSON.
    ``missing_keys`` names (row, field) whose JSON key was absent (for the message).
    ``leveringsdato`` sets the plausible date range (none checked without it); ``controls``
    False says the caller found no control character in the payload (the check is skipped).
    """
    errors: list[FieldError] = []
    arrays: list[pa.Array] = []
    missing_keys = missing_keys or {}
    for f in contract.all_fields:
        col = columns[f.name]
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if f.multi:
            arrays.append(_type_multi(f, col, fmt, errors, missing_keys, from_json, controls))
            continue
        skip: set[int] = set()
        if isinstance(col, pa.Array):
            arr = col if col.type == pa.string() else col.cast(pa.string())
            value_at: Callable[[int], Any] = lambda pos, arr=arr: arr[pos].as_py()  # noqa: E731
        elif from_json and (fast := _json_column(f, col)) is not None:
            arr, direct = fast
            value_at = col.__getitem__
            if direct:  # numbers and booleans Arrow took as they are: typed already
                _required_nulls(f, arr, skip, missing_keys, errors)
                arrays.append(arr)
                continue
        elif from_json:
            strs: list[str | None] = []
            for pos, v in enumerate(col):
                why = check_json_kind(f, v)
                if why is None:
                    try:
                        strs.append(json_scalar(v))
                        continue
                    except TypeError as exc:
                        why = str(exc)
                errors.append(FieldError(pos, f.name, "type", short(f"{f.name}: {why}")))
                skip.add(pos)
                strs.append(None)
            arr, value_at = pa.array(strs, pa.string()), col.__getitem__
        else:
            arr, value_at = pa.array([v or None for v in col], pa.string()), col.__getitem__
        typed = _type_scalar(f, arr, value_at, fmt, errors, skip)
        if controls and typed.type == pa.string():
            bad = pc.fill_null(pc.match_substring_regex(typed, CONTROL_CHARS), False)
            if bad.true_count:
                for pos in pc.indices_nonzero(bad).to_pylist():
                    if pos not in skip:
                        errors.append(FieldError(pos, f.name, "control_character",
                                                 _control_message(f, typed[pos].as_py())))
                        skip.add(pos)
        if f.type in ("date", "datetime"):
            _implausible(contract, f, typed, leveringsdato, errors, skip)
        _required_nulls(f, typed, skip, missing_keys, errors)
        if f.name == "aendringstype":
            wrong = pc.and_(typed.is_valid(), pc.invert(pc.is_in(typed, value_set=_CHANGE_TYPES)))
            if wrong.true_count:
                for pos in pc.indices_nonzero(wrong).to_pylist():
                    errors.append(FieldError(pos, f.name, "change_type", short(
                        f"aendringstype {typed[pos].as_py()!r} is not 1, 2 or 3 (oprettelse/opdatering/sletning)")))
        arrays.append(typed)
    return arrays, errors
