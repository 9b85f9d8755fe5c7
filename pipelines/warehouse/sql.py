"""The analysts' SQL entry point: queries on the published warehouse, read-only.

The nightly load writes ``<root>/warehouse/build.duckdb`` and publishes a copy as
``<root>/warehouse.duckdb`` by atomic rename, so a reader never blocks the load
and never sees half of it.  A query opens the published file read-only: it runs
while a load writes the build database, and one started before a publish reads
the file it opened (the old inode stays readable after the rename) to the end.

The file is ATTACHed (READ_ONLY) to a fresh in-memory DuckDB rather than opened
with ``duckdb.connect(path)``: DuckDB's Python module caches one database
instance per path, so in a long-lived process (Dagster, a notebook) a connection
left open would pin every later ``connect(path)`` to the snapshot it opened; an
attach always opens the file that is published now.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
from rich.table import Table


class SqlError(RuntimeError):
    """The warehouse is missing or the query failed; the message says which."""


def connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published warehouse (Europe/Copenhagen time zone)."""
    path = Path(warehouse)
    if not path.exists():
        raise SqlError(f"no warehouse at {path}: run `dsdw warehouse load` first")
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(path)])
    except duckdb.Error as exc:
        con.close()
        raise SqlError(f"cannot open {path} read-only: {exc}") from exc
    con.execute("USE warehouse")
    con.execute("SET TimeZone = 'Europe/Copenhagen'")
    return con


def run_sql(warehouse: Path, query: str, params: Sequence[Any] | dict[str, Any] | None = None
            ) -> tuple[list[str], list[tuple]]:
    """Run one query on the published warehouse; returns (column names, rows)."""
    con = connect(warehouse)
    try:
        try:
            cur = con.execute(query, params) if params is not None else con.execute(query)
        except duckdb.Error as exc:
            raise SqlError(str(exc)) from exc
        if cur.description is None:
            return [], []
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def _fmt(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) >= 1 else f"{v:.4g}"
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_rows: int = 50) -> Table:
    """A rich table of the first ``max_rows`` rows; the caption says how many were left out."""
    t = Table(show_lines=False)
    numeric = [bool(rows) and all(isinstance(r[i], int | float | decimal.Decimal) for r in rows[:max_rows]
                                  if r[i] is not None) for i in range(len(columns))]
    for c, num in zip(columns, numeric, strict=True):
        t.add_column(str(c), justify="right" if num else "left", overflow="fold")
    for r in rows[:max_rows]:
        t.add_row(*(_fmt(v) for v in r))
    shown = min(len(rows), max_rows)
    t.caption = f"{len(rows)} row{'s' if len(rows) != 1 else ''}" + (
        f" (first {shown} shown)" if len(rows) > shown else "")
    return t
