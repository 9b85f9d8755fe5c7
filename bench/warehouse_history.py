"""Synthetic warehouse history for the warehouse benchmark (issue #5, Performance).

Generating five years of national deliveries is out of reach here (about 30 s a day
to generate and ingest), so the history is *cloned* from one real delivery day that
has been loaded into the warehouse: the fact rows loaded on ``clone_day`` (the first
day after the initial extract, i.e. an ordinary day's volume) are copied ``H`` times,
copy ``k`` (1..H) standing for the load of ``first_day - k``:

* every DATE/TIMESTAMP column (valid time, registreringstidspunkt, indlaest_dato,
  _leveringsdato, ...) moves back ``(clone_day - first_day) + k`` days;
* record keys, besked_id, _payload_id and every other id column are made unique per
  copy (the same rewrite in every table, so references between records stay intact);
* persons: copy ``k`` of a row of person ``i`` belongs to another person of the same
  kommune (rank ``(i + k * 104729) mod n`` among the kommune's persons), with that
  person's foedselsaar/koen (and, in the restricted database, CPR), so the day's
  volume is spread over the population and every person accumulates history, instead
  of one day's persons getting ``H`` overlapping copies;
* spells: the copies are history, so a copy that starts before ``first_day`` ends
  before it (open spells get an end 1-52 weeks after their start, from a hash of the
  record key); the currently open spells are the real initial extract's;
* meta.loaded_payload / meta.load and the file ledger's ``payloads`` get one row per
  copied payload / load, so code reading the load history sees its real size (the ledger
  watermark is moved past them, as nightly loads would have);
* the current-state tables (``<fct>_aktuel``) are rebuilt over the whole history;
* ``fraction`` < 1 clones only that share of the day's records (by a hash of
  besked_id), to fit the disk; payload and load rows are always cloned in full.

The cloned rows are appended before the real ones, so the tables' physical order is
that of nightly appends (oldest first).  Not synthesized: the ledger's message and
record-key tables (ingestion's, not read by a warehouse load) and quality results.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path

import duckdb

from pipelines.contracts import load_contracts
from pipelines.warehouse.build import PERSON_SCOPE_DATASETS, build_path
from pipelines.warehouse.generate import fct_name, is_restricted, valid_time
from pipelines.warehouse.restricted import open_restricted

PERSON_STRIDE = 104729  # a prime: copy k of person i goes to rank (i + k * stride) mod n in the kommune
ID_EXTRA = {"besked_id", "svar_paa_besked_id", "_payload_id", "jobordreident"}
ID_KEEP = {"load_id", "ansoegning_dokument_id", "cv_dokument_id"}


def id_columns(columns: dict[str, str]) -> list[str]:
    """Columns whose values identify records or messages and must be unique per copy."""
    keys = {k for c in load_contracts().values() for k in c.record_key}
    out = []
    for name, typ in columns.items():
        if typ != "VARCHAR" or name in ID_KEEP:
            continue
        if name in keys or name in ID_EXTRA or name.endswith("_id") or name.endswith("_uuid"):
            out.append(name)
    return out


def id_expr(col: str) -> str:
    """Copy k's id: the first 8 characters of a long id replaced by k in hex (unique per k), else suffixed."""
    return (f"CASE WHEN length(f.{col}) > 12 THEN printf('%08x', h.k) || substr(f.{col}, 9) "
            f"ELSE f.{col} || '.' || h.k END")


def _columns(con: duckdb.DuckDBPyConnection, db: str, table: str) -> dict[str, str]:
    rows = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
                       "AND schema_name = 'main' AND table_name = ? ORDER BY column_index", [db, table]).fetchall()
    return dict(rows)


def clone_select(dataset: str, columns: dict[str, str], first_day: dt.date, restricted: bool, fraction: float) -> str:
    """SELECT producing the copies ``k`` in temp table ``hist_k`` of the rows loaded on $clone_day."""
    c = load_contracts()[dataset]
    vt = valid_time(c)
    ends = {"gyldig_til"} | ({vt.end} if vt.end else set())
    starts = {"gyldig_fra": "gyldig_fra", **({vt.end: vt.start} if vt.end else {})}
    keys = list(c.record_key or ["besked_id"])
    ids = set(id_columns(columns))
    has_person = "person_key" in columns
    exprs = []
    d1 = f"DATE '{first_day.isoformat()}'"
    dur = f"(7 * (1 + hash(f.{keys[0]}) % 52))::INTEGER"
    for name, typ in columns.items():
        q = f"f.{name}"
        if name in ids:
            e = id_expr(name)
        elif name == "load_id":
            e = "strftime(f.indlaest_dato - h.s, '%Y-%m-%d') || '-hist'"
        elif has_person and name == "person_key":
            e = "coalesce(p1.person_key, f.person_key)"
        elif has_person and name in ("foedselsaar", "koen"):
            e = f"coalesce(p1.{name}, f.{name})"
        elif has_person and name == "alder":
            e = ("coalesce(CAST(year(f.gyldig_fra - h.s) - p1.foedselsaar AS BIGINT), f.alder)"
                 if "gyldig_fra" in columns else q)
        elif has_person and restricted and name == "cpr":
            e = "coalesce(rp.cpr, f.cpr)"
        elif name in ends and typ == "DATE":
            st = f"(f.{starts.get(name, 'gyldig_fra')} - h.s)"
            shifted = f"coalesce(f.{name} - h.s, {st} + {dur})"
            e = f"CASE WHEN {st} < {d1} THEN least({shifted}, {d1} - 1) ELSE f.{name} - h.s END"
        elif typ == "DATE":
            e = f"{q} - h.s"
        elif typ.startswith("TIMESTAMP"):
            e = f"{q} - to_days(h.s)"
        else:
            e = q
        exprs.append(f"{e} AS {name}" if e != q else q)
    db = "restricted." if restricted else ""
    sample = "" if fraction >= 1 else f" AND hash(besked_id) % 1000000 < {int(fraction * 1_000_000)}"
    joins = ""
    if has_person:
        joins = ("LEFT JOIN hist_person p0 ON p0.person_key = f.person_key\n"
                 f"LEFT JOIN hist_person p1 ON p1.grp = p0.grp AND p1.rnk = (p0.rnk + h.k * {PERSON_STRIDE}) % p0.n\n")
        if restricted:
            joins += "LEFT JOIN restricted.person rp ON rp.person_key = p1.person_key\n"
    return (f"SELECT {', '.join(exprs)}\n"
            f"FROM (SELECT * FROM {db}{fct_name(c)} WHERE indlaest_dato = $clone_day{sample}) f\n"
            f"CROSS JOIN hist_k h\n{joins}")


def _person_table(con: duckdb.DuckDBPyConnection, tables: dict[str, dict[str, str]]) -> int:
    """``hist_person``: every person of the facts with kommune group, rank in it and attributes."""
    kom = [f"SELECT person_key, kommunekode FROM {t}" for t, cols in tables.items()
           if not t.startswith("restricted.") and {"person_key", "kommunekode"} <= set(cols)]
    att = [f"SELECT person_key, foedselsaar, koen FROM {t}" for t, cols in tables.items()
           if {"person_key", "foedselsaar", "koen"} <= set(cols)]
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE hist_person AS
        WITH kom AS (SELECT person_key, mode(kommunekode) AS grp FROM ({' UNION ALL '.join(kom)})
                     WHERE person_key IS NOT NULL GROUP BY 1),
             att AS (SELECT person_key, any_value(foedselsaar) AS foedselsaar, any_value(koen) AS koen
                     FROM ({' UNION ALL '.join(att)}) WHERE person_key IS NOT NULL GROUP BY 1),
             p AS (SELECT a.person_key, coalesce(k.grp, '?') AS grp, a.foedselsaar, a.koen
                   FROM att a LEFT JOIN kom k USING (person_key))
        SELECT *, CAST(row_number() OVER (PARTITION BY grp ORDER BY person_key) - 1 AS BIGINT) AS rnk,
               count(*) OVER (PARTITION BY grp) AS n
        FROM p""")
    return con.execute("SELECT count(*) FROM hist_person").fetchone()[0]


def synthesize_history(root: Path, first_day: dt.date, clone_day: dt.date, days: int, fraction: float = 1.0,
                       chunk: int = 30, log=print) -> dict:
    """Append ``days`` days of cloned history before ``first_day`` to every fact table (see module doc)."""
    root = Path(root)
    t0 = time.perf_counter()
    contracts = load_contracts()
    stats: dict = {"history_days": days, "first_history_load": (first_day - dt.timedelta(days=days)).isoformat(),
                   "last_history_load": (first_day - dt.timedelta(days=1)).isoformat(),
                   "clone_day": clone_day.isoformat(), "fraction": fraction, "rows_cloned": {}}
    gap = (clone_day - first_day).days
    con = duckdb.connect(str(build_path(root)))
    try:
        with open_restricted(root, con, write=True):
            tables: dict[str, dict[str, str]] = {}
            for c in contracts.values():
                db = "restricted" if is_restricted(c) else con.execute("SELECT current_database()").fetchone()[0]
                cols = _columns(con, db, fct_name(c))
                if cols:
                    tables[("restricted." if is_restricted(c) else "") + fct_name(c)] = cols
            # the product's indexes, whichever it makes (older builds: the current-state tables' record keys, the
            # facts' person_key): the tables are rewritten below, which drops them; they are made again at the end
            indexes = _indexes(con)
            stats["persons"] = _person_table(con, tables)
            for ds, c in sorted(contracts.items()):
                t = ("restricted." if is_restricted(c) else "") + fct_name(c)
                if t not in tables:
                    continue
                tl = time.perf_counter()
                sel = clone_select(ds, tables[t], first_day, is_restricted(c), fraction)
                new = t + "__hist"
                con.execute(f"CREATE OR REPLACE TABLE {new} AS SELECT * FROM {t} LIMIT 0")
                # oldest copies first, as nightly appends would have written them
                for hi in range(days, 0, -chunk):
                    lo = max(1, hi - chunk + 1)
                    con.execute("CREATE OR REPLACE TEMP TABLE hist_k AS SELECT CAST(k AS INTEGER) AS k, CAST(k + $gap AS INTEGER) AS s "
                                "FROM range($lo, $hi + 1) r(k)", {"lo": lo, "hi": hi, "gap": gap})
                    con.execute(f"INSERT INTO {new} BY NAME {sel}", {"clone_day": clone_day})
                n = con.execute(f"SELECT count(*) FROM {new}").fetchone()[0]
                con.execute(f"INSERT INTO {new} SELECT * FROM {t}")
                con.execute(f"DROP TABLE {t}")
                con.execute(f"ALTER TABLE {new} RENAME TO {t.split('.')[-1]}")
                stats["rows_cloned"][ds] = n
                log(f"  history {ds}: {n:,} rows ({time.perf_counter() - tl:.1f} s)")
            _meta_history(con, first_day, clone_day, days, gap)
            stats["payloads_cloned"], max_rowid = _ledger_history(root, clone_day, days, gap)
            if _exists(con, "meta", "ledger_watermark"):
                # as after nightly loads: the history's ledger rows are behind the watermark (the real days
                # 3.. stay pending in meta.ledger_pending, as the base loads left them)
                con.execute("DELETE FROM meta.ledger_watermark")
                con.execute("INSERT INTO meta.ledger_watermark VALUES (?)", [max_rowid])
            stats["aktuel_refresh_seconds"] = _refresh_current(con, tables, log)
            ti = time.perf_counter()
            for sql in indexes:
                con.execute(sql)
            stats["indexes_recreated"] = len(indexes)
            stats["indexes_seconds"] = round(time.perf_counter() - ti, 1)
            log(f"  {len(indexes)} indexes made again ({stats['indexes_seconds']} s)")
            stats["sorted_by_person"] = _sort_by_person(con, log)
            con.execute("CHECKPOINT")
    finally:
        con.close()
    stats["history_persons_scope"] = list(PERSON_SCOPE_DATASETS)
    stats["seconds"] = round(time.perf_counter() - t0, 1)
    return stats


def _indexes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """``CREATE INDEX IF NOT EXISTS`` of every index of the main and the restricted database, qualified with its
    database and schema: the nights are measured on the indexes the product keeps (fct_kategori_forloeb's, for one),
    whatever they are; a benchmark of older code (which indexed the current-state tables' record keys and the facts'
    person_key) finds its own again."""
    out = []
    for db, schema, table, sql in con.execute("SELECT database_name, schema_name, table_name, sql FROM duckdb_indexes() "
                                              "WHERE sql IS NOT NULL ORDER BY ALL").fetchall():
        head, sep, rest = sql.partition(f" ON {table}(")
        if not sep or not head.startswith("CREATE "):
            raise RuntimeError(f"index not understood: {sql}")
        head = head.replace("CREATE UNIQUE INDEX ", "CREATE UNIQUE INDEX IF NOT EXISTS ", 1) if "UNIQUE" in head \
            else head.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
        out.append(f'{head} ON "{db}"."{schema}"."{table}"({rest.rstrip().rstrip(";")}')
    return out


def _sort_by_person(con: duckdb.DuckDBPyConnection, log) -> dict | None:
    """The person tables sorted by person_key, as the product's loads keep them (pipelines/warehouse/clustering.py:
    a history loaded night by night would have been sorted as it grew); None for code without it.  Per table its
    rows and the whole sort's seconds (the benchmark's basis for the sorts' cost per night)."""
    try:
        from pipelines.warehouse.clustering import sort_by_person
    except ImportError:
        return None
    t0 = time.perf_counter()
    last = con.execute("SELECT max(indlaest_dato) FROM meta.load").fetchone()[0]
    done = sort_by_person(con, last, force=True)
    log(f"  {len(done)} person tables sorted by person_key ({time.perf_counter() - t0:.1f} s)")
    return {"seconds": round(time.perf_counter() - t0, 1),
            "tables": {s.table: {"rows": s.rows, "seconds": s.seconds} for s in done}}


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str, db: str | None = None) -> bool:
    return con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ? "
                       "AND database_name = coalesce(?, current_database())", [schema, table, db]).fetchone()[0] > 0


def _refresh_current(con: duckdb.DuckDBPyConnection, tables: dict[str, dict[str, str]], log) -> float:
    """Rebuild the current-state tables (``<fct>_aktuel``, where the build keeps them as tables) over the
    whole history, as if the history had been loaded night by night."""
    try:
        from pipelines.warehouse.build import refresh_aktuel
    except ImportError:
        return 0.0
    t0 = time.perf_counter()
    for c in load_contracts().values():
        t = ("restricted." if is_restricted(c) else "") + fct_name(c)
        if t in tables and _exists(con, "main", fct_name(c) + "_aktuel", "restricted" if is_restricted(c) else None):
            refresh_aktuel(con, c.dataset, full=True)
    log(f"  current-state tables refreshed ({time.perf_counter() - t0:.1f} s)")
    return round(time.perf_counter() - t0, 1)


def _meta_history(con: duckdb.DuckDBPyConnection, first_day: dt.date, clone_day: dt.date, days: int, gap: int
                  ) -> None:
    """meta.loaded_payload and meta.load rows of the synthetic loads."""
    con.execute("CREATE OR REPLACE TEMP TABLE hist_k AS SELECT CAST(k AS INTEGER) AS k, CAST(k + $gap AS INTEGER) AS s FROM range(1, $n + 1) r(k)",
                {"gap": gap, "n": days})
    pid = id_expr("payload_id")
    con.execute(f"""INSERT INTO meta.loaded_payload
        SELECT {pid}, f.dataset, f.reporter, f.leveringsdato - h.s, f.indlaest_dato - h.s,
               strftime(f.indlaest_dato - h.s, '%Y-%m-%d') || '-hist', f.rows_lake, f.rows_staged,
               f.modtaget_tidspunkt - to_days(h.s)
        FROM meta.loaded_payload f CROSS JOIN hist_k h WHERE f.indlaest_dato = $d""", {"d": clone_day})
    con.execute("""INSERT INTO meta.load
        SELECT strftime(f.indlaest_dato - h.s, '%Y-%m-%d') || '-hist', f.indlaest_dato - h.s,
               f.started_at - to_days(h.s), f.finished_at - to_days(h.s), f.pseudonym_key_id, f.payloads,
               f.rows_staged, f.rows_deduplicated, f.affected_persons, f.affected_maaneder, f.seconds
        FROM meta.load f CROSS JOIN hist_k h WHERE f.indlaest_dato = $d""", {"d": clone_day})


def _ledger_history(root: Path, clone_day: dt.date, days: int, gap: int) -> tuple[int, int]:
    """File-ledger rows of the synthetic payloads (status loaded); returns their count and the max rowid."""
    lc = sqlite3.connect(Path(root) / "ledger.sqlite")
    try:
        cols = [r[1] for r in lc.execute("PRAGMA table_info(payloads)")]
        rows = lc.execute("SELECT * FROM payloads WHERE leveringsdato = ? AND status = 'loaded'",
                          (clone_day.isoformat(),)).fetchall()
        i_pid, i_day = cols.index("payload_id"), cols.index("leveringsdato")
        out = []
        for k in range(1, days + 1):
            day = (clone_day - dt.timedelta(days=k + gap)).isoformat()
            for r in rows:
                r2 = list(r)
                p = r2[i_pid]
                r2[i_pid] = f"{k:08x}{p[8:]}" if len(p) > 12 else f"{p}.{k}"
                r2[i_day] = day
                out.append(r2)
        lc.executemany(f"INSERT INTO payloads VALUES ({', '.join('?' * len(cols))})", out)
        lc.commit()
        return len(out), lc.execute("SELECT max(rowid) FROM payloads").fetchone()[0]
    finally:
        lc.close()
