"""Cutting a recipient's population from the warehouse, as of one recorded load.

CPR numbers enter a delivery only here, inside the restricted zone: the
analysts' published warehouse (read-only, no CPR) is opened together with the
restricted database (``restricted.person(cpr, person_key)``), and the
recipient's SQL joins ``person_key -> cpr``.

Reproducibility: every fact is read with ``fct_<ds>_as_of($cut)``, where
``$cut`` is the transaction date of the load the delivery is cut from
(``meta.load``).  Facts are append-only and bitemporal, so the same cut gives
the same rows after any number of later loads, and a recorded delivery can be
re-made byte for byte.  An increment is the difference between the
recipient's rows at the previous delivery's cut and at this one, keyed by the
declared key: new rows ``ny``, changed rows ``rettet``, vanished rows
``slettet`` (with the values last delivered) -- corrections and deletions are
carried explicitly, never silently.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.deliveries.recipients import FileSpec, Recipient
from pipelines.warehouse.build import published_path
from pipelines.warehouse.generate import macro_sql
from pipelines.warehouse.restricted import open_restricted

OPEN_END = "DATE '9999-12-31'"


class DeliveryError(RuntimeError):
    """A delivery cannot be made as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Period:
    text: str  # '2026-10' or '2026-W41'
    kind: str  # maaned | uge
    fra: dt.date
    til: dt.date


def parse_period(text: str, kind: str = "maaned") -> Period:
    """'YYYY-MM' (maaned) or 'YYYY-Www' (ISO week, uge)."""
    if kind == "maaned":
        m = re.fullmatch(r"(\d{4})-(\d{2})", text)
        if not m or not 1 <= int(m[2]) <= 12:
            raise DeliveryError(f"period {text!r}: expected a month like 2026-10")
        y, mo = int(m[1]), int(m[2])
        start = dt.date(y, mo, 1)
        end = (dt.date(y + (mo == 12), mo % 12 + 1, 1) - dt.timedelta(days=1))
        return Period(text, kind, start, end)
    if kind == "uge":
        m = re.fullmatch(r"(\d{4})-W(\d{2})", text)
        if not m:
            raise DeliveryError(f"period {text!r}: expected an ISO week like 2026-W41")
        try:
            start = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
        except ValueError as exc:
            raise DeliveryError(f"period {text!r}: {exc}") from None
        return Period(text, kind, start, start + dt.timedelta(days=6))
    raise DeliveryError(f"unknown period kind {kind!r}")


def period_of(day: dt.date, kind: str) -> str:
    """The period text containing ``day``."""
    if kind == "uge":
        y, w, _ = day.isocalendar()
        return f"{y}-W{w:02d}"
    return f"{day:%Y-%m}"


@dataclass(frozen=True)
class Cut:
    load_id: str
    indlaest_dato: dt.date


def lake_refs(rec: Recipient) -> set[str]:
    """The datasets whose ``lake_<dataset>`` view the recipient's files read."""
    sql = " ".join(s for spec in rec.filer for s in (spec.sql, spec.aendrede_noegler_sql or ""))
    return set(re.findall(r"\blake_([a-z0-9_]+)", sql))


@contextlib.contextmanager
def open_sources(root: Path, lake: Iterable[str] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """The published warehouse (read-only) with the restricted database attached, in the restricted zone.
    ``lake``: the datasets to give a ``lake_<dataset>`` view (None: all; binding a view reads the footer
    of every Parquet file of its dataset, seconds per delivery when made for every dataset)."""
    wh = published_path(root)
    if not wh.exists():
        raise DeliveryError(f"no published warehouse at {wh}: run the warehouse load first (`dsdw warehouse load`)")
    con = duckdb.connect(str(wh), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        for s in macro_sql():
            con.execute(s)
        with open_restricted(Path(root), con):
            _lake_views(con, Path(root), None if lake is None else set(lake))
            yield con
    finally:
        con.close()


def _lake_views(con: duckdb.DuckDBPyConnection, root: Path, only: set[str] | None = None) -> None:
    """``lake_<dataset>``: the fields the analysts' warehouse leaves in the lake (names, contact data, free
    text), by ``besked_id``, for the recipients the order gives them to (e.g. § 66, stk. 4: the joblog)."""
    from pipelines.contracts import load_contracts
    from pipelines.warehouse.generate import DROPPED_PII

    for c in load_contracts().values():
        kept = [f.name for f in c.fields if f.pii in DROPPED_PII]
        if not kept or (only is not None and c.dataset not in only):
            continue
        cols = ", ".join(f'"{n}"' for n in ["besked_id", *kept])
        files = sorted((root / "lake" / c.dataset).glob("leveringsdato=*/*.parquet"))
        if files:
            flist = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            con.execute(f"CREATE OR REPLACE TEMP VIEW lake_{c.dataset} AS SELECT {cols} "
                        f"FROM read_parquet([{flist}], union_by_name = true)")
        else:
            nulls = ", ".join(f'CAST(NULL AS VARCHAR) AS "{n}"' for n in ["besked_id", *kept])
            con.execute(f"CREATE OR REPLACE TEMP VIEW lake_{c.dataset} AS SELECT {nulls} WHERE false")


def resolve_cut(con: duckdb.DuckDBPyConnection, load_id: str | None = None) -> Cut:
    """The load to cut from: the named one, else the latest.

    Loads sharing one transaction date are not separable as-of; a cut is only
    reproducible from the last load of its date, so an earlier one is refused.
    """
    loads = con.execute("SELECT load_id, indlaest_dato FROM meta.load ORDER BY indlaest_dato, finished_at, load_id"
                        ).fetchall()
    if not loads:
        raise DeliveryError("the warehouse has no load yet")
    if load_id is None:
        lid, day = loads[-1]
    else:
        hit = [r for r in loads if r[0] == load_id]
        if not hit:
            raise DeliveryError(f"unknown load {load_id!r} (latest: {loads[-1][0]})")
        lid, day = hit[0]
        same_day = [r[0] for r in loads if r[1] == day]
        if same_day[-1] != lid:
            raise DeliveryError(f"load {lid} was followed by load {same_day[-1]} with the same transaction date {day}; "
                                "a cut as of that date includes both, so cut from the later one")
    return Cut(lid, day)


def _params(sql: str, values: dict) -> dict:
    return {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}


def _cols(spec: FileSpec, split: bool) -> list[str]:
    return (["_modtager"] if split else []) + spec.column_names


def _quoted(names: list[str]) -> list[str]:
    return ['"' + n.replace('"', '""') + '"' for n in names]


def _materialize(con: duckdb.DuckDBPyConnection, name: str, spec: FileSpec, split: bool, values: dict) -> None:
    """Temp table ``name`` with the file's rows at one cut (checked: declared columns, unique keys)."""
    sql = spec.sql
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", _params(sql, values))
    except duckdb.Error as exc:
        raise DeliveryError(f"file {spec.navn!r}: the cut's SQL fails: {exc}") from exc
    got = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
    want = _cols(spec, split)
    if got != want:
        raise DeliveryError(f"file {spec.navn!r}: the SQL yields columns {got}, declared {want}")
    if "cpr" in want:
        (orphans,) = con.execute(f"SELECT count(*) FROM {name} WHERE cpr IS NULL").fetchone()
        if orphans:
            raise DeliveryError(f"file {spec.navn!r}: {orphans} rows have no CPR number (person_key missing from "
                                "restricted.person): the restricted database does not match the warehouse")
    keys = ", ".join(_quoted((["_modtager"] if split else []) + list(spec.noegle)))
    dup = con.execute(f"SELECT {keys}, count(*) FROM {name} GROUP BY ALL HAVING count(*) > 1 LIMIT 1").fetchone()
    if dup:
        raise DeliveryError(f"file {spec.navn!r}: key ({keys}) is not unique, e.g. {dup[:-1]} x{dup[-1]}; "
                            "declare a longer key in recipients.yaml")


def _order(cols: list[str]) -> str:
    return ", ".join(f"{c} NULLS FIRST" for c in _quoted(cols))


def cut_full(con: duckdb.DuckDBPyConnection, rec: Recipient, spec: FileSpec, cut: Cut, period: Period) -> pa.Table:
    """The file's rows at the cut, in a total order (every column, key first)."""
    split = rec.opdeling is not None
    values = {"cut": cut.indlaest_dato, "fra": period.fra, "til": period.til}
    _materialize(con, "dlv_cur", spec, split, values)
    cols = _cols(spec, split)
    order = (["_modtager"] if split else []) + list(spec.noegle) + [c for c in spec.column_names if c not in spec.noegle]
    return con.sql(f"SELECT {', '.join(_quoted(cols))} FROM dlv_cur ORDER BY {_order(order)}").to_arrow_table()


def cut_increment(con: duckdb.DuckDBPyConnection, rec: Recipient, spec: FileSpec, prev: Cut, cut: Cut,
                  period: Period) -> pa.Table:
    """Rows that are new (ny), changed (rettet) or gone (slettet) between the two cuts, first column aendring."""
    split = rec.opdeling is not None
    base = {"fra": period.fra, "til": period.til, "prev": prev.indlaest_dato}
    _materialize(con, "dlv_prev", spec, split, {**base, "cut": prev.indlaest_dato})
    _materialize(con, "dlv_cur", spec, split, {**base, "cut": cut.indlaest_dato})
    if spec.aendrede_noegler_sql:  # narrow both sides to the records whose versions changed in (prev, cut]
        keys = ", ".join(_quoted(list(spec.noegle)))
        ch = spec.aendrede_noegler_sql
        con.execute(f"CREATE OR REPLACE TEMP TABLE dlv_changed AS {ch}",
                    _params(ch, {"prev": prev.indlaest_dato, "cut": cut.indlaest_dato}))
        for t in ("dlv_prev", "dlv_cur"):
            con.execute(f"DELETE FROM {t} WHERE ({keys}) NOT IN (SELECT ({keys}) FROM dlv_changed)")
    key = (["_modtager"] if split else []) + list(spec.noegle)
    rest = [c for c in spec.column_names if c not in spec.noegle]
    on = " AND ".join(f"a.{k} IS NOT DISTINCT FROM b.{k}" for k in _quoted(key))
    cols = ", ".join(_quoted(_cols(spec, split)))
    parts = [
        f"SELECT 'ny' AS aendring, {cols} FROM dlv_cur b WHERE NOT EXISTS (SELECT 1 FROM dlv_prev a WHERE {on})",
        f"SELECT 'slettet' AS aendring, {cols} FROM dlv_prev a WHERE NOT EXISTS (SELECT 1 FROM dlv_cur b WHERE {on})",
    ]
    if rest:
        changed = " OR ".join(f"a.{c} IS DISTINCT FROM b.{c}" for c in _quoted(rest))
        bcols = ", ".join(f"b.{c}" for c in _quoted(_cols(spec, split)))
        parts.append(f"SELECT 'rettet' AS aendring, {bcols} FROM dlv_cur b JOIN dlv_prev a ON {on} WHERE {changed}")
    order = key + rest
    sql = (f"SELECT * FROM ({' UNION ALL '.join(parts)}) "
           f"ORDER BY {_order(order)}, aendring")
    return con.sql(sql).to_arrow_table()
