"""The publication log: every published vintage of the statistics, append-only.

Why: the nightly mart keeps one computation per period, and a later correction or deletion overwrites
it, so "what did we publish on day D" could not be answered.  Each run of the publication hook
(:func:`pipelines.warehouse.suppression.publish_suppressed`) that republishes anything is a *vintage*:
``meta.publikation`` logs it with its load, and ``meta.publikation_celler`` keeps the cells it
published (after suppression), never updated or deleted; ``meta.publikation_grundlag`` (internal, not
served by the API) keeps the true figures behind them, so that a later vintage of the same periods is
audited together with what this one published (an attacker compares vintages).  A vintage's figures are, per period, the cells
of the latest vintage up to it that published the period (:func:`vintage_sql`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

HISTORIK = "meta.publikation_celler"
# internal, never served: each vintage's true figures and flags, the context the next vintages are audited with
GRUNDLAG = "meta.publikation_grundlag"
LOG = "meta.publikation"
METODE = ("LP-revideret diskretionering (HiGHS), graense 5, revideret sammen med tidligere vintager og naboaar; "
          "kun daekkede perioder")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The log and the history table (created empty on first use; their columns follow the published mart)."""
    from pipelines.warehouse.suppression import PUBLISHED_COLUMNS, _empty_published

    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {LOG} (
        vintage INTEGER PRIMARY KEY, load_id VARCHAR, indlaest_dato DATE, publiceret_tid TIMESTAMPTZ,
        aar INTEGER[], perioder INTEGER, celler BIGINT, celler_diskretioneret BIGINT, metode VARCHAR)""")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {GRUNDLAG} (vintage INTEGER, periode_type VARCHAR, periode_start DATE,
        geo_niveau VARCHAR, geo_kode VARCHAR, ydelsesgruppe VARCHAR, overordnet_geo_kode VARCHAR,
        uger_i_perioden BIGINT, antal_personer BIGINT, tilgang BIGINT, afgang BIGINT, ydelsesuger BIGINT,
        h0 BOOLEAN, h1 BOOLEAN, h2 BOOLEAN)""")
    con.execute(f"CREATE TABLE IF NOT EXISTS {HISTORIK} AS SELECT {PUBLISHED_COLUMNS}, "
                f"CAST(NULL AS INTEGER) AS vintage FROM ({_empty_published()}) LIMIT 0")


def next_vintage(con: duckdb.DuckDBPyConnection) -> int:
    """The number the next publication gets (1, 2, ...)."""
    return int(con.execute(f"SELECT coalesce(max(vintage), 0) + 1 FROM {LOG}").fetchone()[0])


def record(con: duckdb.DuckDBPyConnection, vintage: int, result: Any, years: list[int],
           grundlag: str | None = None) -> None:
    """Append vintage ``vintage``: its log row, the cells it published (from the published mart) and, from
    the temp table ``grundlag``, their true figures and flags."""
    from pipelines.warehouse.suppression import PUBLISHED

    load_id = getattr(result, "load_id", None)
    day = getattr(result, "indlaest_dato", None)
    if day is None:
        day = con.execute("SELECT max(horisont) FROM mart_ydelser_publiceret").fetchone()[0]
    n = con.execute(f"INSERT INTO {HISTORIK} BY NAME SELECT * FROM {PUBLISHED} WHERE vintage = ?",
                    [vintage]).fetchone()[0]
    if grundlag:
        con.execute(f"INSERT INTO {GRUNDLAG} BY NAME SELECT {int(vintage)} AS vintage, * FROM {grundlag}")
    per, hid = con.execute(
        f"SELECT count(DISTINCT (periode_type, periode_start)), count(*) FILTER (WHERE antal_personer_diskretioneret "
        f"OR tilgang_diskretioneret OR afgang_diskretioneret) FROM {PUBLISHED} WHERE vintage = ?", [vintage]).fetchone()
    con.execute(f"INSERT INTO {LOG} VALUES (?, ?, ?, now(), ?, ?, ?, ?, ?)",
                [vintage, load_id, day, sorted(years), per, n, hid, METODE])


def vintage_sql(vintage: int | None = None) -> str:
    """SELECT of the published cells as of vintage ``vintage`` (None: the latest), same columns as the mart.

    Per period, the cells of the latest vintage <= ``vintage`` that published the period.
    """
    cond = "" if vintage is None else f"WHERE vintage <= {int(vintage)}"
    return (f"SELECT h.* FROM {HISTORIK} h JOIN (SELECT periode_type, periode_start, max(vintage) AS v FROM {HISTORIK} "
            f"{cond} GROUP BY ALL) s ON s.periode_type = h.periode_type AND s.periode_start = h.periode_start "
            "AND s.v = h.vintage")


def vintage_on(con: duckdb.DuckDBPyConnection, day: dt.date) -> int | None:
    """The vintage in force after the loads of ``day`` (the last one published on or before it)."""
    return con.execute(f"SELECT max(vintage) FROM {LOG} WHERE indlaest_dato <= ?", [day]).fetchone()[0]


def vintages(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The log, newest first."""
    cur = con.execute(f"SELECT vintage, load_id, indlaest_dato, publiceret_tid, aar, perioder, celler, "
                      f"celler_diskretioneret, metode FROM {LOG} ORDER BY vintage DESC")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
