"""``dsdw sql`` output formats: every row streamed to a pipe (csv, json, markdown), or a terminal table.

A wide mart does not fit a terminal table, and a pipe wants all rows in a format
another tool reads: csv (RFC 4180, header row, NULL as an empty field), json (one
array of objects, one row per line, so it is both a JSON document and line-friendly)
and markdown (a GitHub table).  Rows are fetched in batches from the read-only
connection and written as they come, so the output has no row limit and memory
stays flat whatever the query returns.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from pipelines.warehouse.sql import SqlError, connect

FORMATS = ("table", "csv", "json", "markdown")
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
           "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
BATCH = 10_000


def stream_rows(warehouse: Path, query: str) -> tuple[list[str], list[str], Iterator[tuple]]:
    """(column names, DuckDB type names, row iterator) of one query on the published warehouse; the
    connection closes when the iterator is exhausted or dropped."""
    import duckdb

    con = connect(warehouse)
    try:
        cur = con.execute(query)
    except duckdb.Error as exc:
        con.close()
        raise SqlError(str(exc)) from exc
    if cur.description is None:
        con.close()
        return [], [], iter(())
    cols = [d[0] for d in cur.description]
    types = [str(d[1]) for d in cur.description]

    def rows() -> Iterator[tuple]:
        try:
            while batch := cur.fetchmany(BATCH):
                yield from batch
        finally:
            con.close()

    return cols, types, rows()


def _plain(v: Any) -> Any:
    """A value as JSON has it: dates and times ISO 8601, decimals as numbers, nested values kept nested."""
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() and v.as_tuple().exponent >= 0 else float(v)
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, bytes | bytearray):
        return v.hex()
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _text(v: Any) -> str:
    """A value as one csv/markdown cell: NULL empty, nested values as JSON, everything else as str()."""
    if v is None:
        return ""
    v = _plain(v)
    if isinstance(v, list | dict):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def write_csv(cols: list[str], rows: Iterator[tuple], out: TextIO) -> int:
    """Header and every row as csv; returns the number of rows written."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    n = 0
    for r in rows:
        w.writerow([_text(v) for v in r])
        n += 1
    return n


def write_json(cols: list[str], rows: Iterator[tuple], out: TextIO) -> int:
    """A JSON array of {column: value} objects, one row per line; returns the number of rows written."""
    n = 0
    out.write("[")
    for r in rows:
        out.write(",\n" if n else "\n")
        out.write(json.dumps({c: _plain(v) for c, v in zip(cols, r, strict=True)}, ensure_ascii=False))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _md_cell(v: Any) -> str:
    return _text(v).replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")


def write_markdown(cols: list[str], types: list[str], rows: Iterator[tuple], out: TextIO) -> int:
    """A GitHub markdown table (numeric columns right-aligned, NULL empty); returns the rows written."""
    out.write("| " + " | ".join(_md_cell(c) for c in cols) + " |\n")
    out.write("|" + "|".join("---:" if t.split("(")[0] in NUMERIC else "---" for t in types) + "|\n")
    n = 0
    for r in rows:
        out.write("| " + " | ".join(_md_cell(v) for v in r) + " |\n")
        n += 1
    return n
