"""dbt-style tests on the warehouse models: keys, foreign keys, spells, reconciliation.

Run after every load (Dagster asset checks on the warehouse asset, and
``dsdw warehouse check``).  Each check returns the number of offending rows and
a few examples, so a failure names model, rule and rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from pipelines.contracts import load_contracts
from pipelines.warehouse.generate import fct_name, ident, is_restricted
from pipelines.warehouse.models import load_models

# fact column -> (dimension, its key) for conformed codes
FOREIGN_KEYS = {
    "kommunekode": ("dim_kommune", "kommunekode"),
    "akassekode": ("dim_akasse", "akassekode"),
    "kontaktgruppe": ("dim_kontaktgruppe", "kontaktgruppe"),
}


@dataclass
class CheckResult:
    name: str
    model: str
    kind: str  # unique | foreign_key | no_overlap | reconcile
    failures: int
    examples: list = field(default_factory=list)
    rule: str = ""
    # foreign keys only warn: a code the quality rules already reported (e.g. an unknown kommunekode) is kept
    # in the facts as received; the other kinds are errors
    severity: str = "error"

    @property
    def passed(self) -> bool:
        return self.failures == 0


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND NOT internal").fetchall()}


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[int, list]:
    n = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
    ex = con.execute(f"SELECT * FROM ({sql}) LIMIT 3").fetchall() if n else []
    return n, ex


def run_checks(con: duckdb.DuckDBPyConnection) -> list[CheckResult]:
    """All checks against an analysts' warehouse connection (the published or the build DB)."""
    out: list[CheckResult] = []
    have = _tables(con)
    models = load_models()
    # unique keys of hand-written tables and of the current state of every fact
    for m in models.values():
        if m.database != "warehouse" or m.layer == "staging" or m.name not in have or not m.keys:
            continue
        if m.materialization == "append":
            continue
        keys = ", ".join(ident(k) for k in m.keys)
        n, ex = _count(con, f"SELECT {keys}, count(*) AS n FROM {m.name} GROUP BY ALL HAVING count(*) > 1")
        out.append(CheckResult(f"unique:{m.name}", m.name, "unique", n, ex, f"keys ({keys}) unique"))
    contracts = load_contracts()
    for c in contracts.values():
        if is_restricted(c) or f"{fct_name(c)}_aktuel" not in have:
            continue
        t = f"{fct_name(c)}_aktuel"
        keys = ", ".join(c.record_key or ["besked_id"])
        n, ex = _count(con, f"SELECT {keys}, count(*) FROM {t} GROUP BY ALL HAVING count(*) > 1")
        out.append(CheckResult(f"unique:{t}", t, "unique", n, ex, f"one current version per ({keys})"))
        n, ex = _count(con, f"SELECT besked_id, count(*) FROM {fct_name(c)} GROUP BY 1 HAVING count(*) > 1")
        out.append(CheckResult(f"unique:{fct_name(c)}.besked_id", fct_name(c), "unique", n, ex,
                               "each received message is one fact row"))
        cols = set(c.field_names)
        for col, (dim, dkey) in FOREIGN_KEYS.items():
            if col in cols and dim in have:
                n, ex = _count(con, f"SELECT DISTINCT f.{col} FROM {t} f ANTI JOIN {dim} d ON d.{dkey} = f.{col} "
                                    f"WHERE f.{col} IS NOT NULL")
                out.append(CheckResult(f"fk:{t}.{col}->{dim}", t, "foreign_key", n, ex,
                                       f"{col} resolves in {dim}", severity="warn"))
        for r in c.rules:
            if r.kind != "no_overlap":
                continue
            s, e = r.params["start_field"], r.params["end_field"]
            part = ["person_key" if p == "cpr" else p for p in r.params.get("partition_by", [])]
            on = " AND ".join(f"a.{p} = b.{p}" for p in part) or "TRUE"
            key = (c.record_key or ["besked_id"])[0]
            n, ex = _count(con, f"""
                SELECT a.{key} AS a_key, b.{key} AS b_key FROM {t} a JOIN {t} b ON {on} AND a.{key} < b.{key}
                 AND a.{s} <= coalesce(b.{e}, DATE '9999-12-31') AND b.{s} <= coalesce(a.{e}, DATE '9999-12-31')""")
            out.append(CheckResult(f"no_overlap:{t}:{r.id}", t, "no_overlap", n, ex,
                                   f"{r.id} ({r.paragraph}): {r.text_en}"))
    # reconciliation: every accepted lake row is a staged row or a counted duplicate, and every staged row a fact row
    if "loaded_payload" in {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'meta'").fetchall()}:
        n, ex = _count(con, """SELECT load_id, sum(rows_lake) AS lake, sum(rows_staged) AS staged
                               FROM meta.loaded_payload GROUP BY 1 HAVING sum(rows_staged) > sum(rows_lake)""")
        out.append(CheckResult("reconcile:staged<=lake", "meta.loaded_payload", "reconcile", n, ex,
                               "staged rows never exceed accepted lake rows"))
        for c in contracts.values():
            if is_restricted(c) or fct_name(c) not in have:
                continue
            n, ex = _count(con, f"""
                SELECT p.staged, f.n FROM
                  (SELECT coalesce(sum(rows_staged), 0) AS staged FROM meta.loaded_payload WHERE dataset = '{c.dataset}') p,
                  (SELECT count(*) AS n FROM {fct_name(c)}) f WHERE p.staged <> f.n""")
            out.append(CheckResult(f"reconcile:{fct_name(c)}", fct_name(c), "reconcile", n, ex,
                                   "fact rows = staged rows of all loads (append-only)"))
    return out
