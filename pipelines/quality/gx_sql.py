"""Run a GX 1.x expectation suite (JSON dict) as DuckDB SQL over lake partitions.

Why not GX itself: GX 1.24 has no DuckDB datasource and its SQLAlchemy path over
duckdb-engine returns empty results, while its pandas path has to load each partition into
memory and costs seconds per suite.  The suites stay GX suites (``expectations/*.json``); this
module translates each supported expectation type into SQL booleans per row, counts all of
a suite's expectations per reporter (``_reporter``) in one aggregate scan, and reads the
failing rows in a second scan only when something failed.  :func:`run_suite_gx_pandas` runs
the same suite through GX's pandas path, for the parity test and the benchmark.

Semantics (both paths):

- ``expect_column_values_to_not_be_null``: every row is checked; NULL fails (for list
  columns, an empty list fails as well, as ``validate_record`` treats ``[]`` as missing);
- ``expect_column_values_to_be_in_set`` / ``..._match_regex``: non-NULL values are checked.
  ``meta.multi``: the column is a list; a record fails when any element fails (a NULL element
  fails).  Regexes are searched, as GX's pandas path does (``str.contains``); Python's ``$``
  is translated to RE2 (``\\n?$``) so both engines agree;
- ``meta.validator`` ``stdnum.dk.cpr`` / ``stdnum.dk.cvr``: the value must also pass
  python-stdnum's ``validate`` (same compaction, century rule, date, not in the future,
  modulus 11), expressed in SQL by :func:`cpr_valid_sql` / :func:`cvr_valid_sql`.

Any other expectation type raises :class:`UnsupportedExpectation`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import sys
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    import pandas as pd

NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
MATCH_REGEX = "expect_column_values_to_match_regex"
SUPPORTED = frozenset({NOT_NULL, IN_SET, MATCH_REGEX})
VALIDATORS = frozenset({"stdnum.dk.cpr", "stdnum.dk.cvr"})
SAMPLE_KEYS = 5
# kwargs the executor understands; anything else (mostly, row_condition ...) would change the
# meaning, so it is refused rather than ignored
_KWARGS = {NOT_NULL: {"column"}, IN_SET: {"column", "value_set"}, MATCH_REGEX: {"column", "regex"}}


class UnsupportedExpectation(ValueError):
    """The suite holds an expectation (type, kwarg or validator) this executor cannot translate."""


@dataclass(frozen=True)
class ReporterCount:
    reporter: str
    records_checked: int
    records_failed: int
    sample_keys: tuple[str, ...]  # up to 5 record keys (uuid key or besked_id), sorted


@dataclass(frozen=True)
class Failure:
    """One failing record, for ``dq_failures`` (restricted: stays beside the lake)."""

    reporter: str
    besked_id: str | None
    record_key: str | None
    payload_id: str
    record_no: int
    detail: str  # never a CPR number: values of PII fields are not repeated


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one expectation over one relation, per reporter."""

    rule_id: str
    paragraph: str
    severity: str
    text_da: str
    text_en: str
    expectation_type: str
    column: str
    reporters: tuple[ReporterCount, ...]
    failures: tuple[Failure, ...] = field(repr=False)

    @property
    def records_checked(self) -> int:
        return sum(r.records_checked for r in self.reporters)

    @property
    def records_failed(self) -> int:
        return sum(r.records_failed for r in self.reporters)


@dataclass(frozen=True)
class GxCount:
    """GX pandas-path outcome of one expectation (what the parity test compares)."""

    rule_id: str
    expectation_type: str
    column: str
    records_checked: int
    records_failed: int
    failed_rows: frozenset[tuple[str, int]]  # (_payload_id, _record_no)
    failed_by_reporter: dict[str, int]


# ---------------------------------------------------------------------------- SQL helpers
def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | float):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


_PY_ONLY = re.compile(r"\\[dDwWsSbBAZ]|\(\?[=!<P]|\\[1-9]")


def python_regex_to_re2(pattern: str) -> str:
    """The RE2 pattern that searches like Python's ``re.search`` (GX pandas) for ``pattern``.

    Python's ``$`` also matches before a final newline; RE2's only at the end, so an unescaped
    ``$`` outside a character class becomes ``\\n?$``.  Constructs whose meaning differs
    (Unicode ``\\d``/``\\w``/``\\s``, ``\\b``, ``\\A``/``\\Z``) or that RE2 lacks (lookaround,
    backreferences) are refused rather than silently evaluated differently.
    """
    if _PY_ONLY.search(pattern):
        raise UnsupportedExpectation(f"regex {pattern!r} uses a construct RE2 evaluates differently; "
                                     "write it with explicit classes ([0-9]) and ^/$ anchors")
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]":  # ']' first in a class is literal
                out.append("[]")
                i += 2
                continue
        elif ch == "$":
            out.append("\\n?$")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@functools.cache
def _stdnum_clean_args(deletechars: str) -> tuple[str, str, str]:
    """translate() from/to and trim() characters equal to stdnum's ``clean(n, deletechars).strip()``."""
    try:
        from stdnum.util import _char_map as char_map  # the Unicode -> ASCII map clean() applies
    except ImportError:  # pragma: no cover - older stdnum: no mapping step
        char_map = {}
    keep_from, keep_to, delete = [], [], []
    for ch, to in char_map.items():
        if to in deletechars:
            delete.append(ch)
        elif ch != to:
            keep_from.append(ch)
            keep_to.append(to)
    delete += [ch for ch in deletechars if ch not in delete]
    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    return "".join(keep_from) + "".join(delete), "".join(keep_to), spaces


def _compact_sql(expr: str, deletechars: str, upper: bool = False) -> str:
    """stdnum's compaction in SQL; a value of ASCII digits only (the normal case) is left as is.

    The fast path matters: translate() over stdnum's ~200-character map costs microseconds a row.
    """
    frm, to, spaces = _stdnum_clean_args(deletechars)
    s = f"translate(CAST({expr} AS VARCHAR), {sql_literal(frm)}, {sql_literal(to)})"
    if upper:
        s = f"upper({s})"
    slow = f"trim({s}, {sql_literal(spaces)})"
    raw = f"CAST({expr} AS VARCHAR)"
    return f"CASE WHEN regexp_full_match({raw}, '[0-9]*') THEN {raw} ELSE {slow} END"


def _bind(expr: str, body: str) -> str:
    """Evaluate ``body`` with ``n`` bound to ``expr`` once (DuckDB has no LET; a one-element list does it)."""
    return f"list_transform([{expr}], lambda n: {body})[1]"


def cpr_valid_sql(expr: str, today: dt.date) -> str:
    """SQL boolean: ``expr`` passes ``stdnum.dk.cpr.validate`` (NULL for NULL input).

    compact (Unicode map, drop ' ' and '-', strip) -> 10 ASCII digits -> DDMMYY with the
    century from digit 7 as ``get_birth_date`` does -> a real date -> not after ``today``.
    """
    yy = "TRY_CAST(substr(n, 5, 2) AS INTEGER)"
    d7 = "substr(n, 7, 1)"
    century = (f"CASE WHEN {d7} IN ('5', '6', '7', '8') AND {yy} >= 58 THEN 1800 "
               f"WHEN {d7} IN ('0', '1', '2', '3') OR ({d7} IN ('4', '9') AND {yy} >= 37) THEN 1900 "
               "ELSE 2000 END")
    birth = (f"CAST(try_strptime(CAST({century} + {yy} AS VARCHAR) || substr(n, 3, 2) || substr(n, 1, 2), "
             "'%Y%m%d') AS DATE)")
    body = (f"CASE WHEN regexp_full_match(n, '[0-9]{{10}}') "
            f"THEN coalesce({birth} <= DATE {sql_literal(today.isoformat())}, FALSE) ELSE FALSE END")
    return f"CASE WHEN {expr} IS NULL THEN NULL ELSE {_bind(_compact_sql(expr, ' -'), body)} END"


def cvr_valid_sql(expr: str) -> str:
    """SQL boolean: ``expr`` passes ``stdnum.dk.cvr.validate`` (NULL for NULL input).

    compact (Unicode map, drop ' -.,/:', upper, strip, drop a 'DK' prefix) -> 8 ASCII digits,
    no leading zero -> weights 2,7,6,5,4,3,2,1 sum to 0 modulo 11.
    """
    weights = (2, 7, 6, 5, 4, 3, 2, 1)
    checksum = " + ".join(f"{w} * TRY_CAST(substr(n, {i + 1}, 1) AS INTEGER)" for i, w in enumerate(weights))
    body = (f"CASE WHEN regexp_full_match(n, '[1-9][0-9]{{7}}') THEN ({checksum}) % 11 = 0 ELSE FALSE END")
    strip_dk = "CASE WHEN starts_with(m, 'DK') THEN substr(m, 3) ELSE m END"
    inner = f"list_transform([{_compact_sql(expr, ' -.,/:', upper=True)}], lambda m: {strip_dk})[1]"
    return f"CASE WHEN {expr} IS NULL THEN NULL ELSE {_bind(inner, body)} END"


# ---------------------------------------------------------------------------- translation
@dataclass(frozen=True)
class _Plan:
    """One expectation as SQL: which rows it checks, which fail, and what to say about a failure."""

    checked: str
    failed: str
    detail: str


def _check_supported(exp: dict[str, Any]) -> None:
    etype = exp.get("type")
    rid = (exp.get("meta") or {}).get("rule_id", "?")
    if etype not in SUPPORTED:
        raise UnsupportedExpectation(f"{rid}: expectation type {etype!r} is not supported by the DuckDB "
                                     f"executor (supported: {sorted(SUPPORTED)})")
    extra = set(exp.get("kwargs") or {}) - _KWARGS[etype]
    if extra:
        raise UnsupportedExpectation(f"{rid}: {etype} kwargs {sorted(extra)} are not supported")
    validator = (exp.get("meta") or {}).get("validator")
    if validator is not None and (validator not in VALIDATORS or etype != MATCH_REGEX):
        raise UnsupportedExpectation(f"{rid}: validator {validator!r} is not supported on {etype}")


def _plan(exp: dict[str, Any], col_type: str, today: dt.date) -> _Plan:
    _check_supported(exp)
    etype, kw, meta = exp["type"], exp["kwargs"], exp.get("meta") or {}
    col = quote_ident(kw["column"])
    multi = bool(meta.get("multi"))
    is_list = col_type.endswith("[]")
    if multi != is_list:
        raise UnsupportedExpectation(f"{meta.get('rule_id')}: column {kw['column']!r} is {col_type} but the "
                                     f"expectation says multi={multi}")
    show = meta.get("pii", "none") == "none"  # never repeat a CPR, name or health value
    what = meta.get("codelist") or "value set"
    if etype == NOT_NULL:
        failed = f"({col} IS NULL OR len({col}) = 0)" if multi else f"({col} IS NULL)"
        return _Plan("TRUE", failed, "'missing'")
    if etype == IN_SET:
        values = ", ".join(sql_literal(v) for v in kw["value_set"]) or "NULL"
        bad_elem = f"(x IS NULL OR x NOT IN ({values}))"
        if multi:
            bad = f"[x for x in {col} if {bad_elem}]"
            failed = f"(len({bad}) > 0)"
            shown = f"array_to_string(list_transform({bad}, lambda v: coalesce(v, 'NULL')), ',')" \
                if show else "'…'"
            detail = f"'not in {what}: ' || {shown}"
            return _Plan(f"({col} IS NOT NULL AND len({col}) > 0)", failed, detail)
        shown = f"CAST({col} AS VARCHAR)" if show else "'…'"
        return _Plan(f"({col} IS NOT NULL)", f"({col} NOT IN ({values}))", f"'not in {what}: ' || {shown}")
    # MATCH_REGEX
    rx = sql_literal(python_regex_to_re2(kw["regex"]))
    validator = meta.get("validator")

    def elem_bad(x: str) -> str:
        cond = f"NOT regexp_matches(CAST({x} AS VARCHAR), {rx})"
        if validator == "stdnum.dk.cpr":
            cond = f"({cond} OR NOT {cpr_valid_sql(x, today)})"
        elif validator == "stdnum.dk.cvr":
            cond = f"({cond} OR NOT {cvr_valid_sql(x)})"
        return cond

    labels = {"stdnum.dk.cpr": "invalid CPR number (DFDG pattern / python-stdnum)",
              "stdnum.dk.cvr": "invalid CVR number (8 digits / modulus 11)"}
    label = labels.get(validator, f"does not match {kw['regex']}")
    if multi:
        bad = f"[x for x in {col} if x IS NULL OR {elem_bad('x')}]"
        listed = f"list_transform({bad}, lambda v: coalesce(CAST(v AS VARCHAR), 'NULL'))"
        shown = f"array_to_string({listed}, ',')" if show else "'…'"
        return _Plan(f"({col} IS NOT NULL AND len({col}) > 0)", f"(len({bad}) > 0)",
                     f"{sql_literal(label + ': ')} || {shown}")
    shown = f"CAST({col} AS VARCHAR)" if show else "'…'"
    return _Plan(f"({col} IS NOT NULL)", f"({col} IS NOT NULL AND {elem_bad(col)})",
                 f"{sql_literal(label + ': ')} || {shown}")


def _from(relation_sql: str) -> str:
    s = relation_sql.strip()
    return f"({s})" if re.match(r"(?is)^(\(|(select|with|from|values)\b)", s) else s


def run_suite_sql(suite: dict[str, Any], con: duckdb.DuckDBPyConnection, relation_sql: str, key_column: str,
                  today: dt.date | None = None) -> list[CheckResult]:
    """Evaluate every expectation of ``suite`` over ``relation_sql`` in DuckDB; one result per expectation.

    ``relation_sql`` is a table expression (``read_parquet('<lake>/<ds>/leveringsdato=<d>/*.parquet')``,
    a table name, or a SELECT) with the lineage columns ``_reporter``, ``_payload_id`` and
    ``_record_no``.  ``key_column`` is the record key shown as sample key (the contract's uuid
    key, falling back to ``besked_id`` when NULL).  ``today`` fixes "not in the future" for the
    CPR rule (default: today, as python-stdnum).  Raises :class:`UnsupportedExpectation` for
    what it cannot translate and ``ValueError`` for columns the relation lacks.
    """
    today = today or dt.date.today()
    exps = list(suite.get("expectations") or [])
    for e in exps:
        _check_supported(e)
    src = _from(relation_sql)
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {src} AS src").fetchall()}
    needed = ["_reporter", "_payload_id", "_record_no", key_column]
    needed += [e["kwargs"]["column"] for e in exps]
    missing = sorted({c for c in needed if c not in types})
    if missing:
        raise ValueError(f"suite {suite.get('name')!r}: columns {missing} are not in {relation_sql}")
    plans = [_plan(e, types[e["kwargs"]["column"]], today) for e in exps]
    counts: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    fails: dict[int, list[Failure]] = defaultdict(list)
    if not plans:
        return []
    # 1) per reporter, every expectation's checked/failed counts in one aggregate (sum(bool::INT)
    #    plans and runs faster than count(*) FILTER or ordered list aggregates here)
    aggs = ", ".join(f"sum(CAST({p.checked} AS INTEGER)), sum(CAST({p.failed} AS INTEGER))" for p in plans)
    for row in con.execute(f"SELECT _reporter, {aggs} FROM {src} AS src GROUP BY _reporter").fetchall():
        for i in range(len(plans)):
            counts[i][row[0]] = (int(row[1 + 2 * i] or 0), int(row[2 + 2 * i] or 0))
    # 2) the failing rows, only for expectations that failed somewhere (usually none: no second scan)
    failing = [i for i in range(len(plans)) if any(f for _, f in counts[i].values())]
    if failing:
        besked = "CAST(besked_id AS VARCHAR)" if "besked_id" in types else "NULL"
        key = f"coalesce(CAST({quote_ident(key_column)} AS VARCHAR), {besked})"
        cols = [f"{key} AS __dq_key", f"{besked} AS __dq_besked", "_reporter", "_payload_id", "_record_no"]
        for i in failing:
            cols += [f"coalesce({plans[i].failed}, FALSE) AS __dq_f{i}",
                     f"CASE WHEN {plans[i].failed} THEN {plans[i].detail} END AS __dq_d{i}"]
        where = " OR ".join(f"__dq_f{i}" for i in failing)
        rows = con.execute(f"SELECT * FROM (SELECT {', '.join(cols)} FROM {src} AS src) WHERE {where} "
                           "ORDER BY _reporter, __dq_key, _payload_id, _record_no").fetchall()
        for r in rows:
            for k, i in enumerate(failing):
                if r[5 + 2 * k]:
                    fails[i].append(Failure(r[2], r[1], r[0], r[3], int(r[4]), r[6 + 2 * k] or ""))
    out = []
    for i, e in enumerate(exps):
        meta = e.get("meta") or {}
        samples: dict[str, list[str]] = defaultdict(list)
        for f in fails[i]:  # ordered by reporter, record key: the first five distinct keys are the sample
            got = samples[f.reporter]
            if f.record_key is not None and len(got) < SAMPLE_KEYS and f.record_key not in got:
                got.append(f.record_key)
        reps = tuple(ReporterCount(rep, chk, fl, tuple(samples.get(rep, ())))
                     for rep, (chk, fl) in sorted(counts[i].items()))
        out.append(CheckResult(
            rule_id=meta.get("rule_id", f"{suite.get('name')}:{e['type']}:{e['kwargs']['column']}"),
            paragraph=meta.get("paragraph", ""), severity=meta.get("severity", "warn"),
            text_da=meta.get("text_da", ""), text_en=meta.get("text_en", ""),
            expectation_type=e["type"], column=e["kwargs"]["column"], reporters=reps,
            failures=tuple(fails[i])))
    return out


# ---------------------------------------------------------------------------- GX pandas path
_NULL_ELEMENT = "\x00<NULL>"  # a NULL inside a list: fails every set and regex, as in SQL


@functools.cache
def _gx_batch_definition() -> Any:
    """One ephemeral GX context with a pandas dataframe asset (imported lazily: GX costs seconds)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("dsdw_dq").add_dataframe_asset(name="partition")
    return asset.add_batch_definition_whole_dataframe("whole")


def _stdnum_valid(validator: str) -> Callable[[str], bool]:
    from stdnum.dk import cpr, cvr

    mod = cpr if validator == "stdnum.dk.cpr" else cvr
    return mod.is_valid


def _is_empty(v: Any) -> bool:
    """NULL (None, NaN, pd.NA) or an empty list: what SQL sees as NULL or len() = 0."""
    if isinstance(v, str):
        return False
    if hasattr(v, "__len__"):
        return len(v) == 0
    import pandas as pd

    return bool(pd.isna(v))


def run_suite_gx_pandas(suite: dict[str, Any], df: pd.DataFrame) -> list[GxCount]:
    """Run ``suite`` through GX's own pandas path; counts comparable with :func:`run_suite_sql`.

    GX evaluates the expectations as written.  Two things GX cannot say are prepared in pandas
    and then validated by GX as well: python-stdnum's verdict (``meta.validator``) becomes a
    boolean column checked with ``ExpectColumnValuesToBeInSet([True])``, and a list column
    (``meta.multi``) is exploded so GX checks each element; failing elements are mapped back
    to their records.
    """
    import great_expectations as gx
    import pandas as pd

    exps = list(suite.get("expectations") or [])
    for e in exps:
        _check_supported(e)
    base = df.reset_index(drop=True)
    main = pd.DataFrame(index=base.index)
    frames: list[tuple[pd.DataFrame, Any, list[tuple[int, dict[str, Any]]]]] = []  # frame, origin, exps
    main_exps: list[tuple[int, dict[str, Any]]] = []
    checked_override: dict[int, int] = {}
    for i, e in enumerate(exps):
        col, meta = e["kwargs"]["column"], e.get("meta") or {}
        if col not in base.columns:
            raise ValueError(f"{meta.get('rule_id')}: column {col!r} is not in the dataframe")
        plain = {"type": e["type"], "kwargs": dict(e["kwargs"]), "meta": {"i": i}}
        if meta.get("multi"):
            values = base[col]
            if e["type"] == NOT_NULL:
                name = f"__nonempty__{col}"
                main[name] = values.map(lambda v: None if _is_empty(v) else True)
                plain["kwargs"]["column"] = name
                main_exps.append((i, plain))
                continue
            present = values[~values.map(_is_empty)]
            checked_override[i] = len(present)
            exploded = present.map(list).explode()
            exploded = exploded.where(exploded.notna(), _NULL_ELEMENT)
            frame = pd.DataFrame({col: exploded.to_numpy(dtype=object)})
            frames.append((frame, exploded.index.to_numpy(), [(i, plain)]))
            continue
        main[col] = base[col]
        main_exps.append((i, plain))
        validator = meta.get("validator")
        if validator:
            name = f"__{validator}__{col}"
            is_valid = _stdnum_valid(validator)
            main[name] = base[col].map(lambda v, f=is_valid: None if _is_empty(v) else bool(f(str(v))))
            verdict = {"type": IN_SET, "kwargs": {"column": name, "value_set": [True]}, "meta": {"i": i}}
            main_exps.append((i, verdict))
    frames.insert(0, (main, main.index.to_numpy(), main_exps))
    bd = _gx_batch_definition()
    failed: dict[int, set[int]] = defaultdict(set)
    checked: dict[int, int] = {}
    for frame, origin, fexps in frames:
        if not fexps:
            continue
        gsuite = gx.ExpectationSuite(name=f"{suite.get('name')}_gx", expectations=[x for _, x in fexps])
        with warnings.catch_warnings():  # pandas: "pattern ... has match groups" (DFDG's CPR pattern has)
            warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular expression")
            result = bd.get_batch(batch_parameters={"dataframe": frame}).validate(
                gsuite, result_format={"result_format": "COMPLETE"})
        for r in result.results:
            i = int(r.expectation_config.meta["i"])
            res = r.result
            failed[i].update(int(origin[k]) for k in res.get("unexpected_index_list") or [])
            if not r.expectation_config.kwargs["column"].startswith("__stdnum"):
                n = int(res.get("element_count", 0)) - int(res.get("missing_count", 0) or 0)
                checked[i] = checked_override.get(i, n)
    out = []
    for i, e in enumerate(exps):
        rows = sorted(failed[i])
        keys = frozenset(zip(base.loc[rows, "_payload_id"], base.loc[rows, "_record_no"].astype(int),
                             strict=True))
        by_rep = base.loc[rows, "_reporter"].value_counts().to_dict() if rows else {}
        out.append(GxCount((e.get("meta") or {}).get("rule_id", ""), e["type"], e["kwargs"]["column"],
                           checked.get(i, 0), len(rows), keys, {str(k): int(v) for k, v in by_rep.items()}))
    return out
