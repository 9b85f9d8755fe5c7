"""Deterministic, atomic Parquet files for the lake.

Same table in, byte-identical file out: fixed writer options (zstd level 1 without dictionary
pages for large tables, snappy with dictionaries for small ones, fixed row-group size, Parquet 2.6,
statistics on), no schema metadata
beyond the Arrow schema itself, and no timestamps anywhere (Parquet's footer holds none;
``created_by`` names the library version only).  The file appears all at once
(:func:`pipelines.fsio.atomic_write`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.fsio import DurableBatch, atomic_write
from pipelines.landing.store import safe_name

ROW_GROUP_SIZE = 128 * 1024
COMPRESSION = "zstd"
# Level 1 without dictionary pages, measured on 5,000-record webservice pages (kontaktgruppe, plan,
# tilmelding): 3.5-5.7 ms and 312-397 kB per file, against 7.6-9.2 ms and 382-420 kB for level 3 with
# dictionaries (the ids, timestamps and free text are unique per record; zstd finds the repeats of
# the codes itself).
COMPRESSION_LEVEL = 1


# Below this many rows zstd's per-file setup (~1.2 ms) costs more than it saves: most
# payloads are one reporter's day of one dataset (tens of rows), so those use snappy.
ZSTD_MIN_ROWS = 4096


def parquet_bytes(table: pa.Table) -> bytes:
    """The Parquet file of ``table`` as bytes (deterministic: the codec depends on the rows only)."""
    table = table.replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    big = table.num_rows >= ZSTD_MIN_ROWS
    pq.write_table(table, sink, row_group_size=ROW_GROUP_SIZE, compression=COMPRESSION if big else "snappy",
                   compression_level=COMPRESSION_LEVEL if big else None, version="2.6", use_dictionary=not big,
                   write_statistics=True, store_schema=True)
    return sink.getvalue().to_pybytes()


def write_parquet(table: pa.Table, path: Path | str, batch: DurableBatch | None = None) -> Path:
    """Write ``table`` to ``path`` deterministically and atomically (replaces an existing file);
    durable now, or at ``batch``'s flush."""
    data = parquet_bytes(table)
    return batch.write(path, data) if batch is not None else atomic_write(path, data)


def lake_path(root: Path | str, dataset: str, leveringsdato: dt.date, reporter: str, payload_id: str) -> Path:
    """``<root>/lake/<dataset>/leveringsdato=YYYY-MM-DD/<reporter>__<payload_id>.parquet``.

    Named by the payload id (the content hash), never by the delivered file name: a lake file
    belongs to exactly one payload, whatever names (newlines, subfolders, another reporter's)
    the channel offered.
    """
    return (Path(root) / "lake" / dataset / f"leveringsdato={leveringsdato.isoformat()}"
            / f"{safe_name(reporter)}__{safe_name(payload_id)}.parquet")


def quarantine_path(root: Path | str, dataset: str, leveringsdato: dt.date, reporter: str,
                    payload_id: str, tag: str = "") -> Path:
    """``<root>/lake/_quarantine/leveringsdato=YYYY-MM-DD/<dataset>__<reporter>[__<tag>]__<payload_id>.parquet``.

    ``tag`` tells the quarantines of one payload id apart when the same bytes were also offered
    under another name that was rejected (the rejected file's records, quarantined whole).
    """
    mid = f"{safe_name(tag)}__" if tag else ""
    return (Path(root) / "lake" / "_quarantine" / f"leveringsdato={leveringsdato.isoformat()}"
            / f"{dataset}__{safe_name(reporter)}__{mid}{safe_name(payload_id)}.parquet")


# the lake's archive of superseded payloads' files: <root>/lake/_archive/<dataset or _quarantine>/leveringsdato=D/
ARCHIVE_DIR = "_archive"


def archive_path(root: Path | str, path: Path | str) -> Path:
    """Where a superseded payload's lake (or quarantine) file is kept: ``<root>/lake/_archive/<its path in the
    lake>``.

    Why: a corrected re-delivery retracts its predecessor's rows from the current state, but the versions it
    retracted are history the warehouse holds (bitemporal facts); a one-pass rebuild reads them from here. Outside
    the dataset directories, so nothing reading a dataset's live files sees them.
    """
    dataset, part, name = Path(path).parts[-3:]  # <dataset or _quarantine>/leveringsdato=.../<file>
    return Path(root) / "lake" / ARCHIVE_DIR / dataset / part / name


def payload_of(path: Path | str) -> str:
    """The payload id a lake or quarantine file belongs to (the part after the last ``__``)."""
    return Path(path).name.removesuffix(".parquet").rsplit("__", 1)[-1]
