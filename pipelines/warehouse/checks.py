"""dbt-style tests on the warehouse models: keys, foreign keys, spells, reconciliation.

Run after every load (Dagster asset checks on the warehouse asset, and
``dsdw warehouse check``).  Each check returns the number of offending rows and
a few examples, so a failure names model, rule and rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.contracts import load_contracts
from pipelines.landing.ledger import read_only
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


def lake_ledger_checks(root: Path | str) -> list[CheckResult]:
    """Ledger against lake, per payload: every ``loaded`` payload's lake file holds exactly its
    ``rows_accepted`` rows, all carrying its payload id, and no lake file holds rows of a payload
    the ledger does not have loaded (superseded, rejected, unknown). Fails loudly on any difference:
    the warehouse follows the lake, so a lake that drifted from the ledger is a wrong warehouse.
    """

    root = Path(root)
    ledger, lake = root / "ledger.sqlite", root / "lake"
    if not ledger.exists() or not lake.is_dir():
        return []
    with read_only(ledger) as lc:
        loaded = {pid: (ds, n, path) for pid, ds, n, path in lc.execute(
            "SELECT payload_id, dataset, rows_accepted, lake_path FROM payloads WHERE status='loaded'")}
    files = sorted(str(p) for p in lake.glob("*/leveringsdato=*/*.parquet") if not p.parts[-3].startswith("_"))
    found: dict[tuple[str, str], int] = {}
    if files:
        con = duckdb.connect()
        try:
            flist = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            for fname, pid, n in con.execute(
                    f"SELECT filename, _payload_id, count(*) FROM read_parquet([{flist}], filename = true, "
                    "union_by_name = true) GROUP BY ALL").fetchall():
                found[(fname, pid)] = n
        finally:
            con.close()
    bad: list[tuple] = []
    in_files: dict[str, list[str]] = {}
    for (fname, pid), n in found.items():
        in_files.setdefault(pid, []).append(fname)
        want = loaded.get(pid)
        if want is None:
            bad.append((pid, fname, n, "rows of a payload the ledger does not have loaded"))
        elif want[2] != fname:
            bad.append((pid, fname, n, f"rows in another file than the ledger's lake_path {want[2]}"))
    for pid, (ds, n, path) in loaded.items():
        got = sum(found.get((f, pid), 0) for f in in_files.get(pid, []))
        if got != (n or 0):
            bad.append((pid, path, got, f"ledger rows_accepted {n}, lake holds {got} ({ds})"))
    listed = {p for _, _, p in loaded.values() if p}
    with_rows = {k[0] for k in found}
    for f in files:
        if f not in listed and f not in with_rows:
            bad.append(("-", f, 0, "empty lake file no loaded payload owns"))
    return [CheckResult("reconcile:ledger=lake per payload", "lake", "reconcile", len(bad), bad[:3],
                        "every loaded payload's rows_accepted = its rows in the lake, and the lake holds "
                        "rows of loaded payloads only")]


def run_checks(con: duckdb.DuckDBPyConnection, root: Path | str | None = None) -> list[CheckResult]:
    """All checks against an analysts' warehouse connection (the published or the build DB);
    with ``root`` also the ledger-against-lake reconciliation of that environment's zones."""
    out: list[CheckResult] = lake_ledger_checks(root) if root is not None else []
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
