"""Dimensions kept by merging the load's rows into the table (``python`` models).

Why: a dimension aggregated over every fact row (e.g. the CVR numbers ever seen) costs the
whole history each night when rebuilt; its aggregates (union of lists, latest value, first and
last date) merge, so the load's own rows are enough.
"""

from __future__ import annotations

import duckdb

from pipelines.warehouse.build import _params, _table_exists


def maintain_virksomhed(con: duckdb.DuckDBPyConnection, model, values: dict) -> int:
    """``dim_virksomhed``: the model's SQL over the load's fact rows, merged by CVR into the table.

    On the first run (the runner's ``model_first_run``) or without the table, the SQL reads every
    fact row and replaces the table.  Returns the rows written.
    """
    q = model.qualified
    p = _params(model.sql, values)
    first = con.execute("SELECT coalesce(getvariable('model_first_run'), true)").fetchone()[0]
    if first or not _table_exists(con, q):
        con.execute("SET VARIABLE model_first_run = true")
        con.execute(f"CREATE OR REPLACE TABLE {q} AS {model.sql}", p)
        return con.execute(f"SELECT count(*) FROM {q}").fetchone()[0]
    con.execute(f"CREATE OR REPLACE TEMP TABLE _dim_ny AS {model.sql}", p)

    def union(col: str) -> str:
        # list(...) FILTER gives NULL, not [], when nothing qualified: keep that
        return (f"CASE WHEN n.{col} IS NULL AND o.{col} IS NULL THEN NULL ELSE list_sort(list_distinct("
                f"list_concat(coalesce(o.{col}, []), coalesce(n.{col}, [])))) END AS {col}")

    con.execute(f"""CREATE OR REPLACE TEMP TABLE _dim_flettet AS
        SELECT n.cvr, {union("pnumre")},
               coalesce(n.virksomhedsnavn, o.virksomhedsnavn) AS virksomhedsnavn,  -- the load's rows are the latest
               coalesce(n.branchekode, o.branchekode) AS branchekode, {union("kilder")},
               least(o.foerst_set_dato, n.foerst_set_dato) AS foerst_set_dato,
               greatest(o.senest_set_dato, n.senest_set_dato) AS senest_set_dato
        FROM _dim_ny n LEFT JOIN {q} o USING (cvr)""")
    con.execute(f"DELETE FROM {q} WHERE cvr IN (SELECT cvr FROM _dim_flettet)")
    n = con.execute(f"INSERT INTO {q} BY NAME SELECT * FROM _dim_flettet").fetchone()[0]
    con.execute("DROP TABLE _dim_ny")
    con.execute("DROP TABLE _dim_flettet")
    return int(n)
