"""The analysts' person facts and the weekly panel are kept sorted by ``person_key`` instead of ART-indexed.

Why: one person's history must be a point lookup (issue #14 (c)), and an ART index on the 64-character
pseudonym did that, but a night's rows land at random places of it, so each night's checkpoint wrote most of
every index again: the cost of a night grew with the years kept (bench/bench_index_growth.py; on the national
benchmark the checkpoints were the largest cost growing with the history, docs/warehouse_bench.md).  DuckDB keeps
the min and max of every column per row group (122,880 rows); in a table sorted by ``person_key`` one person's
rows lie in one or two row groups, and a lookup skips the others.  Rows a night appends or rewrites go to the end
(the *tail*: rows with ``indlaest_dato`` after the last sort), where a lookup reads every row group.

So the tables are kept like a log-structured merge tree of sorted *runs*: when a table's tail passes
``TAIL_SHARE`` of its rows (and at least ``TAIL_MIN`` rows), the tail alone is sorted into a new run (deleted and
written again in person order: its cost is the tail's, not the table's); a lookup reads one or two row groups of
each run.  When a table holds ``MAX_RUNS`` runs, the whole table is sorted into one.  Both sorts come once per so
many new rows in proportion to the table, so their cost per night does not grow with the years kept, and a lookup
reads at most ``MAX_RUNS`` runs' row groups and a tail of ``TAIL_SHARE``.  Tables of fewer than ``MIN_ROWS`` rows
are left as they are (a row group or two: nothing to skip).

A table's comment holds the date of its last sort and its runs (``person_key_sorted: <load date>;
person_key_runs: <n>``): a table that a full refresh or a new environment created has none, and the next load
sorts it whole.  DuckDB only: Spark's Parquet tables are read whole by the engine anyway (docs/scale-out.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass

import duckdb

log = logging.getLogger(__name__)

MARK = "person_key_sorted"
RUNS = "person_key_runs"
TAIL_SHARE = 0.01
TAIL_MIN = 250_000
MAX_RUNS = 16
MIN_ROWS = 2 * 122_880
PANEL = "fct_person_week"
_MARK_RE = re.compile(rf"(?:^|; ){MARK}: (\d{{4}}-\d{{2}}-\d{{2}})")
_RUNS_RE = re.compile(rf"(?:^|; ){RUNS}: (\d+)")


@dataclass
class Sorted:
    """A table sorted by one call: its rows, the tail that made it due (None: never sorted), how ('whole' or
    'tail'), the seconds."""

    table: str
    rows: int
    tail: int | None
    how: str
    seconds: float


def person_sorted_tables() -> list[str]:
    """The tables kept sorted: every analysts' fact with a person (``fct_<dataset>``; the restricted ones are
    read as populations, never per person) and the weekly panel."""
    from pipelines.contracts import load_contracts
    from pipelines.warehouse.generate import fct_name, has_person_key, is_restricted

    return sorted([fct_name(c) for c in load_contracts().values() if has_person_key(c) and not is_restricted(c)]
                  + [PANEL])


def sorted_on(comment: str | None) -> dt.date | None:
    """The load date of the table's last sort, from its comment."""
    m = _MARK_RE.search(comment or "")
    return dt.date.fromisoformat(m.group(1)) if m else None


def runs_of(comment: str | None) -> int:
    """The sorted tail runs written since the table's last whole sort, from its comment."""
    m = _RUNS_RE.search(comment or "")
    return int(m.group(1)) if m else 0


def _with_mark(comment: str | None, load_date: dt.date, runs: int = 0) -> str:
    rest = [p for p in (comment or "").split("; ") if p and not p.startswith((f"{MARK}: ", f"{RUNS}: "))]
    return "; ".join([*rest, f"{MARK}: {load_date.isoformat()}", f"{RUNS}: {runs}"])


def due(rows: int, tail: int | None, runs: int = 0, *, share: float | None = None, tail_min: int | None = None,
        min_rows: int | None = None) -> str | None:
    """How a table of ``rows`` rows is sorted now, if at all: ``'whole'``, ``'tail'`` or None, given the ``tail``
    rows written after its last sort (None: never sorted) and the ``runs`` since its last whole sort (the module's
    thresholds unless given)."""
    share = TAIL_SHARE if share is None else share
    tail_min = TAIL_MIN if tail_min is None else tail_min
    if rows < (MIN_ROWS if min_rows is None else min_rows):
        return None
    if tail is None:
        return "whole"
    if tail <= max(tail_min, share * rows):
        return None
    return "whole" if runs + 1 >= MAX_RUNS else "tail"


def sort_by_person(con: duckdb.DuckDBPyConnection, load_date: dt.date, *, force: bool = False,
                   share: float | None = None, tail_min: int | None = None, min_rows: int | None = None,
                   schema: str = "main") -> list[Sorted]:
    """Sort the person tables of ``con``'s database that are due (``force``: every one of at least ``min_rows``
    rows, whole); mark each with ``load_date``.  Returns the tables sorted."""
    min_rows = MIN_ROWS if min_rows is None else min_rows
    want = person_sorted_tables()
    # the catalog's row estimate first (no scan): a table under min_rows has nothing to sort (the tests' and the
    # demo's warehouses never get further than this query)
    have = {t: c for t, c, n in con.execute(
        "SELECT table_name, comment, estimated_size FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND list_contains(?, table_name)", [schema, want]).fetchall() if n >= min_rows}
    marked = {t: d for t, c in have.items() if (d := sorted_on(c)) is not None}
    counts: dict[str, tuple[int, int | None]] = {}
    if have:
        q = " UNION ALL ".join(
            f"SELECT '{t}', count(*), " + (f"count(*) FILTER (WHERE indlaest_dato > DATE '{marked[t]}')"
                                            if t in marked else "NULL") + f" FROM {schema}.{t}"
            for t in sorted(have))
        counts = {t: (n, tail) for t, n, tail in con.execute(q).fetchall()}
    done: list[Sorted] = []
    for t in sorted(have):
        rows, tail = counts[t]
        runs = runs_of(have[t])
        how = "whole" if force and rows >= min_rows else due(rows, tail, runs, share=share, tail_min=tail_min,
                                                             min_rows=min_rows)
        if how is None:
            continue
        try:
            secs = (sort_table(con, t, load_date, have[t], schema) if how == "whole" else
                    sort_tail(con, t, marked[t], load_date, have[t], runs + 1, schema))
            done.append(Sorted(t, rows, tail, how, secs))
        except (duckdb.OutOfMemoryException, duckdb.IOException) as e:
            # atomic: the table stays as it was (lookups read more of it) and the next load tries again; a night's
            # data is not lost for a maintenance step
            log.warning("sorting %s by person_key failed, left for the next load: %s", t, e)
    return done


def sort_table(con: duckdb.DuckDBPyConnection, table: str, load_date: dt.date, comment: str | None = None,
               schema: str = "main") -> float:
    """Rewrite ``table`` in person_key order (one run) and mark it sorted at ``load_date`` (keeping the rest of
    ``comment``); returns the seconds.  One statement: atomic, and the rows are written once, in person order.
    These tables have no constraint, and no index once an older build's person_key index is gone."""
    t0 = time.perf_counter()
    mark = _with_mark(comment, load_date).replace("'", "''")
    con.execute(f"DROP INDEX IF EXISTS {schema}.{table}__person_key")
    con.execute(f"CREATE OR REPLACE TABLE {schema}.{table} AS SELECT * FROM {schema}.{table} ORDER BY person_key")
    con.execute(f"COMMENT ON TABLE {schema}.{table} IS '{mark}'")
    return round(time.perf_counter() - t0, 3)


def sort_tail(con: duckdb.DuckDBPyConnection, table: str, since: dt.date, load_date: dt.date,
              comment: str | None, runs: int, schema: str = "main") -> float:
    """Rewrite the rows of ``table`` written after ``since`` (its tail) in person_key order at its end: a new sorted
    run; mark it sorted at ``load_date`` with ``runs`` runs.  One transaction; returns the seconds."""
    t0 = time.perf_counter()
    mark = _with_mark(comment, load_date, runs).replace("'", "''")
    where = f"indlaest_dato > DATE '{since.isoformat()}'"
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE TEMP TABLE dsdw_hale AS SELECT * FROM {schema}.{table} WHERE {where} ORDER BY person_key")
        con.execute(f"DELETE FROM {schema}.{table} WHERE {where}")
        con.execute(f"INSERT INTO {schema}.{table} SELECT * FROM dsdw_hale")
        con.execute("DROP TABLE dsdw_hale")
        con.execute(f"COMMENT ON TABLE {schema}.{table} IS '{mark}'")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return round(time.perf_counter() - t0, 3)
