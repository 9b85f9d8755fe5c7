"""Small-cell suppression (diskretionering) of the ydelses-statistics before publication.

Why: a published count below 5 can point at a person; a published total next
to exactly one hidden cell gives the hidden cell away by subtraction.  Rule
(docs/statistics.md):

* primær: every count (antal_personer, tilgang, afgang) below ``GRAENSE`` (5),
  zeros included, is suppressed; fuldtidspersoner is suppressed with its
  antal_personer;
* sekundær: cells are protected in groups, as statistics offices do, even though
  distinct-person counts are not strictly additive: the kommuner of one region,
  the regions of the country (same period, ydelsesgruppe and measure), and the
  ydelsesgrupper of one geography (without 'i alt', their total).  A group with
  exactly one suppressed cell gets its smallest unsuppressed cell suppressed too
  (ties: lowest geo_kode / ydelsesgruppe); if it has none left, its total is.
  Repeated over both dimensions until nothing changes.

:func:`suppress` is the pure rule over any relation with the mart's columns;
:func:`publish_suppressed` is the load hook that keeps ``mart_ydelser_publiceret``
in step with ``mart_ydelser`` for the periods a load recomputed.
"""

from __future__ import annotations

import uuid
from typing import Any

import duckdb

GRAENSE = 5
MAAL = ("antal_personer", "tilgang", "afgang")
PRIMAER, SEKUNDAER = "primær", "sekundær"
I_ALT = "i alt"
PUBLISHED = "mart_ydelser_publiceret"


def _cell_key() -> str:
    return "periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe"


def suppress(con: duckdb.DuckDBPyConnection, source: str, graense: int = GRAENSE, target: str | None = None
             ) -> duckdb.DuckDBPyRelation:
    """Apply the suppression rule to relation ``source`` and return the published relation.

    ``source`` needs periode_type, periode_start, geo_niveau ('kommune'|'region'|'land'), geo_kode,
    overordnet_geo_kode (the region of a kommune, '000' for a region, NULL for land), ydelsesgruppe
    ('i alt' = total), antal_personer, fuldtidspersoner, tilgang, afgang; other columns pass through.
    The result (temp table ``target``) has the counts NULL where suppressed and ``<maal>_diskretion`` =
    'primær'/'sekundær' (NULL = published).
    """
    t = f"_sup_{uuid.uuid4().hex[:10]}"
    target = target or f"{t}_r"
    key = _cell_key()
    unpivot = " UNION ALL ".join(
        f"SELECT {key}, overordnet_geo_kode, '{m}' AS maal, {m} AS vaerdi FROM ({source})" for m in MAAL)
    con.execute(f"""CREATE TEMP TABLE {t} AS
        SELECT row_number() OVER () AS celle_id, *, CASE WHEN vaerdi < {int(graense)} THEN '{PRIMAER}' END AS status
        FROM ({unpivot})""")
    try:
        while True:
            changed = _secondary_geo(con, t) + _secondary_ydelsesgrupper(con, t)
            if changed == 0:
                break
        pivot = ", ".join(
            f"any_value(status) FILTER (WHERE maal = '{m}') AS {m}_diskretion" for m in MAAL)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {t}_p AS SELECT {key}, {pivot} FROM {t} GROUP BY ALL")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {target} AS
            SELECT s.* EXCLUDE (antal_personer, fuldtidspersoner, tilgang, afgang),
                   CASE WHEN p.antal_personer_diskretion IS NULL THEN s.antal_personer END AS antal_personer,
                   p.antal_personer_diskretion,
                   CASE WHEN p.antal_personer_diskretion IS NULL THEN s.fuldtidspersoner END AS fuldtidspersoner,
                   CASE WHEN p.tilgang_diskretion IS NULL THEN s.tilgang END AS tilgang, p.tilgang_diskretion,
                   CASE WHEN p.afgang_diskretion IS NULL THEN s.afgang END AS afgang, p.afgang_diskretion
            FROM ({source}) s JOIN {t}_p p USING ({key})""")
        return con.table(target)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {t}")
        con.execute(f"DROP TABLE IF EXISTS {t}_p")


def _mark(con: duckdb.DuckDBPyConnection, t: str, members: str, group: str, total_join: str) -> int:
    """One pass over one dimension: groups (``group`` columns over the ``members`` rows) with exactly
    one suppressed cell get their smallest unsuppressed member, or failing that their total, suppressed."""
    before = con.execute(f"SELECT count(*) FROM {t} WHERE status IS NOT NULL").fetchone()[0]
    con.execute(f"""
        WITH m AS (
            SELECT celle_id, status, vaerdi, geo_kode, ydelsesgruppe, {group},
                   count(status) OVER (PARTITION BY {group}) AS n_sup,
                   count(*) FILTER (WHERE status IS NULL) OVER (PARTITION BY {group}) AS n_fri
            FROM {t} WHERE {members}
        ), valg AS (
            SELECT celle_id FROM m WHERE n_sup = 1 AND status IS NULL
            QUALIFY row_number() OVER (PARTITION BY {group} ORDER BY vaerdi, geo_kode, ydelsesgruppe) = 1
        ), total AS (
            SELECT DISTINCT x.celle_id FROM (SELECT DISTINCT {group} FROM m WHERE n_sup = 1 AND n_fri = 0) g
            JOIN {t} x ON {total_join}
            WHERE x.status IS NULL
        )
        UPDATE {t} SET status = '{SEKUNDAER}'
        WHERE celle_id IN (SELECT celle_id FROM valg UNION SELECT celle_id FROM total)""")
    after = con.execute(f"SELECT count(*) FROM {t} WHERE status IS NOT NULL").fetchone()[0]
    return after - before


def _secondary_geo(con: duckdb.DuckDBPyConnection, t: str) -> int:
    """Kommuner of a region, regions of the country: same period, ydelsesgruppe and measure."""
    group = "periode_type, periode_start, maal, ydelsesgruppe, geo_niveau, overordnet_geo_kode"
    total = ("x.periode_type = g.periode_type AND x.periode_start = g.periode_start AND x.maal = g.maal "
             "AND x.ydelsesgruppe = g.ydelsesgruppe AND x.geo_kode = g.overordnet_geo_kode "
             "AND x.geo_niveau = CASE g.geo_niveau WHEN 'kommune' THEN 'region' ELSE 'land' END")
    return _mark(con, t, "geo_niveau IN ('kommune', 'region') AND overordnet_geo_kode IS NOT NULL", group, total)


def _secondary_ydelsesgrupper(con: duckdb.DuckDBPyConnection, t: str) -> int:
    """The ydelsesgrupper of one geography (their total is the 'i alt' row)."""
    group = "periode_type, periode_start, maal, geo_niveau, geo_kode"
    total = ("x.periode_type = g.periode_type AND x.periode_start = g.periode_start AND x.maal = g.maal "
             f"AND x.geo_niveau = g.geo_niveau AND x.geo_kode = g.geo_kode AND x.ydelsesgruppe = '{I_ALT}'")
    return _mark(con, t, f"ydelsesgruppe <> '{I_ALT}'", group, total)


PUBLISHED_COLUMNS = (
    "periode_type, periode_start, periode_slut, periode, geo_niveau, geo_kode, geo_navn, ydelsesgruppe, "
    "antal_personer, antal_personer_diskretion, round(fuldtidspersoner, 1) AS fuldtidspersoner, "
    "tilgang, tilgang_diskretion, afgang, afgang_diskretion, uger_i_perioden, er_foreloebig, horisont, "
    "indlaesning_nr")


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                       "AND schema_name = 'main' AND table_name = ?", [name]).fetchone()[0] > 0


def publish_suppressed(con: duckdb.DuckDBPyConnection, result: Any = None) -> int:
    """Load hook (``build.POST_MODEL_HOOKS``): bring ``mart_ydelser_publiceret`` in step with ``mart_ydelser``.

    Republishes every period whose latest computation is not the published one (normally the
    periods this load recomputed; after a missed hook, all it missed), and deletes the superseded
    computations from ``mart_ydelser_beregning``.  Returns the number of rows published.
    """
    if not _exists(con, "mart_ydelser_beregning"):
        return 0
    con.execute("""DELETE FROM mart_ydelser_beregning b USING (
            SELECT periode_type, periode_start, max(indlaesning_nr) AS nr FROM mart_ydelser_beregning GROUP BY ALL
        ) s WHERE b.periode_type = s.periode_type AND b.periode_start = s.periode_start AND b.indlaesning_nr < s.nr""")
    have = _exists(con, PUBLISHED)
    stale = ("SELECT DISTINCT b.periode_type, b.periode_start, b.indlaesning_nr FROM mart_ydelser_beregning b"
             + ("" if not have else f" WHERE NOT EXISTS (SELECT 1 FROM {PUBLISHED} p WHERE p.periode_type = "
                "b.periode_type AND p.periode_start = b.periode_start AND p.indlaesning_nr = b.indlaesning_nr)"))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _sup_perioder AS {stale}")
    n = con.execute("SELECT count(*) FROM _sup_perioder").fetchone()[0]
    if n == 0 and have:
        return 0
    suppress(con, "SELECT y.* FROM mart_ydelser y JOIN _sup_perioder USING (periode_type, periode_start)",
             target="_sup_resultat")
    try:
        sel = f"SELECT {PUBLISHED_COLUMNS} FROM _sup_resultat"
        if not have:
            con.execute(f"CREATE TABLE {PUBLISHED} AS {sel} LIMIT 0")
        con.execute(f"DELETE FROM {PUBLISHED} p USING _sup_perioder s "
                    "WHERE p.periode_type = s.periode_type AND p.periode_start = s.periode_start")
        rows = con.execute(f"INSERT INTO {PUBLISHED} BY NAME {sel}").fetchone()[0]
    finally:
        con.execute("DROP TABLE IF EXISTS _sup_resultat")
        con.execute("DROP TABLE IF EXISTS _sup_perioder")
    return int(rows)
