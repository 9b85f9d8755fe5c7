"""Deterministic file bytes: the same rows give byte-identical Parquet and CSV.

Nothing run-dependent goes into a file: fixed schema (declared types, declared
column order), rows already in a total order (see cut.py), one contiguous
chunk per column before writing (page and row-group boundaries then depend on
the rows alone), no timestamps or hostnames in metadata.  The Parquet writer's
``created_by`` names the pyarrow version, so bytes are stable per installed
pyarrow; the manifest records that version.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.deliveries.recipients import Column

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "decimal": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "string_list": pa.list_(pa.string()),
}
AENDRING = Column("aendring", "string", "Ændring siden forrige levering for perioden: ny, rettet eller slettet "
                  "(slettet: rækken, som den blev leveret sidst).", "§ 40, stk. 2 og 5 (ændringer og revision)")
CSV_DELIMITER = ";"


def schema(columns: Sequence[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.navn, ARROW_TYPES[c.type]) for c in columns])


def conform(table: pa.Table, columns: Sequence[Column], what: str) -> pa.Table:
    """The table with exactly the declared columns, order and types (raises if the SQL drifted)."""
    names = [c.navn for c in columns]
    if table.column_names != names:
        raise ValueError(f"{what}: the cut yields columns {table.column_names}, declared {names}")
    return table.cast(schema(columns), safe=True).combine_chunks()


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table.combine_chunks(), buf, compression="zstd", compression_level=3, use_dictionary=True,
                   write_statistics=True, version="2.6", row_group_size=1_000_000, store_schema=True)
    return buf.getvalue()


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return "|".join("" if x is None else str(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def csv_bytes(table: pa.Table) -> bytes:
    """UTF-8 (no BOM), ';'-separated, LF line ends, header row; lists joined by '|', empty = NULL."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=CSV_DELIMITER, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(table.column_names)
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    for row in zip(*cols, strict=True):
        w.writerow([_cell(v) for v in row])
    return buf.getvalue().encode("utf-8")


SERIALIZERS = {"parquet": parquet_bytes, "csv": csv_bytes}
