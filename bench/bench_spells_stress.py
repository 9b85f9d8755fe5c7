"""dim_person and mart_ydelser_beregning on many spells per person: a model's SQL at a git revision against the
working tree's, same inputs, one DuckDB process each (issue 15).

Why: at 5 years of national history a person has ~45 kontaktgruppe spells and ~10 a-kasse tilmeldinger, and the
two models' old forms joined every boundary day (dim_person) or every period's spells (the mart's tilgang/afgang)
of a person to the person's other spells: work and spill grew with the square of a person's spells.  This bench
builds the models' inputs without a warehouse -- synthetic (``--persons``, ``--spells``: disjoint, adjacent,
nested, overlapping and open spells, NULL kommune/registration, ophør) or a sample of a lake's persons
(``--lake``, latest version of each record, person_key = CPR) -- runs both forms in separate processes (CPU
seconds, peak RSS) and checks their rows are the same (EXCEPT ALL both ways).  Results:
``bench/results/spells_stress_<time>.json``.

    python bench/bench_spells_stress.py --persons 500 --spells 100 400
    python bench/bench_spells_stress.py --lake /tmp/spark_eng/nat5y/lake --sample 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spell_cases import write_spells  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# the old forms' files at --old (before the dbt project became the models' source); the working tree's forms are
# dbt's compiled SQL of the model (dbt_runner.compiled_sql, a first build's full computation)
MODELS = {"dim_person": "warehouse/models/core/dim_person.sql",
          "mart_ydelser_beregning": "warehouse/models/marts/mart_ydelser_beregning.sql"}


def synthetic(con: duckdb.DuckDBPyConnection, persons: int, spells: int, seed: int = 7) -> None:
    """The spells of bench/spell_cases.py (the generator dim_person's linear-form test uses): five shapes --
    disjoint, adjacent, nested in one long spell, overlapping, open or backwards -- with tilmeldinger and
    afmeldinger (årsag 10, 11 or 1) around them."""
    write_spells(con, persons, spells, seed)


def sample(con: duckdb.DuckDBPyConnection, lake: Path, persons: int) -> None:
    """The current version of every record of ``persons`` persons of a lake (not deleted: aendringstype 3)."""
    con.execute(f"CREATE TEMP TABLE cprs AS SELECT cpr FROM (SELECT DISTINCT cpr FROM "
                f"read_parquet('{lake}/kontaktgruppe/*/*.parquet')) ORDER BY hash(cpr) LIMIT {persons}")

    def current(ds: str, key: str, cols: str) -> str:
        return (f"SELECT cpr AS person_key, {cols} FROM read_parquet('{lake}/{ds}/*/*.parquet') "
                f"WHERE cpr IN (SELECT cpr FROM cprs) QUALIFY row_number() OVER (PARTITION BY {key} "
                "ORDER BY version DESC, _leveringsdato DESC, _record_no DESC) = 1 AND aendringstype IS DISTINCT FROM '3'")
    con.execute("CREATE TABLE fct_kontaktgruppe_aktuel AS " + current(
        "kontaktgruppe", "kontaktgruppe_id", "kontaktgruppe_id, kommunekode, startdato, slutdato, "
        "registreringstidspunkt, CAST(1980 AS BIGINT) AS foedselsaar, 'M' AS koen, kontaktgruppe"))
    con.execute("CREATE TABLE fct_akasse_tilmelding_aktuel AS " + current(
        "akasse_tilmelding", "tilmelding_id", "tilmelding_id, akassekode, startdato, registreringstidspunkt, "
        "CAST(1980 AS BIGINT) AS foedselsaar, 'M' AS koen"))
    con.execute("CREATE TABLE fct_akasse_afmelding_aktuel AS " + current(
        "akasse_afmelding", "afmelding_id", "akassekode, afmeldingsdato, afmeldingsaarsag"))


def dims(con: duckdb.DuckDBPyConnection) -> None:
    """dim_kommune and dim_kontaktgruppe from the code lists, fct_ydelsesforloeb, meta.load, affected_persons."""
    ref = ROOT / "data" / "reference"
    con.execute(f"CREATE TABLE dim_kommune AS SELECT kode AS kommunekode, region_kode FROM read_csv("
                f"'{ref}/kommuner.csv', all_varchar = true)")
    con.execute(f"CREATE TABLE dim_kontaktgruppe AS SELECT kode AS kontaktgruppe, ydelsesgruppe FROM read_csv('{ref}/kontaktgrupper.csv', all_varchar = true)")
    con.execute("CREATE VIEW fct_ydelsesforloeb AS SELECT k.kontaktgruppe_id, k.person_key, k.kommunekode, "
                "k.kontaktgruppe, g.ydelsesgruppe, k.startdato, k.slutdato FROM fct_kontaktgruppe_aktuel k "
                "JOIN dim_kontaktgruppe g ON g.kontaktgruppe = k.kontaktgruppe")
    con.execute("CREATE SCHEMA meta")
    con.execute("CREATE TABLE meta.load AS SELECT 1 AS x")
    con.execute("CREATE OR REPLACE TABLE affected_persons AS SELECT person_key FROM fct_kontaktgruppe_aktuel "
                "UNION SELECT person_key FROM fct_akasse_tilmelding_aktuel")
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")  # the dbt model's scope relation
    con.execute("CREATE OR REPLACE TABLE staging.int_affected_persons AS FROM affected_persons")


def compiled(model: str, db: Path, work: Path) -> Path:
    """The working tree's form of ``model``: dbt's compiled SQL with its relations in ``db``; the ydelser mart is a
    dbt Python model, whose full computation is :func:`pipelines.warehouse.stats.ydelser_model_sql`."""
    sys.path.insert(0, str(ROOT))
    from pipelines.warehouse.dbt_runner import compiled_sql
    from pipelines.warehouse.stats import ydelser_model_sql

    f = work / f"{model}_{db.stem}_new.sql"
    f.write_text(ydelser_model_sql() if model == "mart_ydelser_beregning" else compiled_sql(model, db, work / "dbt"))
    return f


RUN = r"""
import json, resource, sys, time, duckdb
db, sql, out, mem = sys.argv[1:5]
con = duckdb.connect(db)
con.execute(f"SET threads = 1; SET memory_limit = '{mem}'; SET preserve_insertion_order = false; "
            "SET enable_progress_bar = false")
con.execute("SET VARIABLE load_date = (SELECT max(startdato) FROM fct_kontaktgruppe_aktuel)")
t = time.time()
con.execute(f"CREATE TABLE {out} AS " + open(sql).read())
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": round(time.time() - t, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
                  "peak_rss_mib": ru.ru_maxrss // 1024, "rows": con.execute(f"SELECT count(*) FROM {out}").fetchone()[0]}))
"""


def run(db: Path, sql: Path, out: str, mem: str) -> dict:
    p = subprocess.run([sys.executable, "-c", RUN, str(db), str(sql), out, mem], capture_output=True, text=True)
    if p.returncode:
        return {"error": " | ".join(ln.strip() for ln in p.stderr.strip().splitlines()[-6:])[:600]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def same(db: Path, a: str, b: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"SELECT (SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})) + "
                           f"(SELECT count(*) FROM (FROM {b} EXCEPT ALL FROM {a}))").fetchone()[0]
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", default="9f70dbd", help="git revision of the old forms (default: before the rewrite)")
    ap.add_argument("--persons", type=int, default=500)
    ap.add_argument("--spells", type=int, nargs="+", default=[100, 400])
    ap.add_argument("--lake", type=Path, help="sample this lake's persons instead of synthetic spells")
    ap.add_argument("--sample", type=int, default=20000)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--memory-limit", default="4GB")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spells_stress_"))
    old = {}
    for m in a.models:
        old[m] = work / f"{m}_old.sql"
        old[m].write_text(subprocess.run(["git", "show", f"{a.old}:{MODELS[m]}"], cwd=ROOT, check=True,
                                         capture_output=True, text=True).stdout)
    cases = [("lake", a.sample)] if a.lake else [("synthetic", n) for n in a.spells]
    out = {"bench": "spells_stress", "old": a.old, "load_before": os.getloadavg(), "threads": 1,
           "memory_limit": a.memory_limit, "cases": []}
    for kind, n in cases:
        db = work / f"{kind}_{n}.duckdb"
        con = duckdb.connect(str(db))
        if kind == "lake":
            sample(con, a.lake, n)
        else:
            synthetic(con, a.persons, n)
        dims(con)
        case = {"kind": kind, "persons": con.execute("SELECT count(*) FROM affected_persons").fetchone()[0],
                "spells": con.execute("SELECT count(*) FROM fct_kontaktgruppe_aktuel").fetchone()[0],
                "tilmeldinger": con.execute("SELECT count(*) FROM fct_akasse_tilmelding_aktuel").fetchone()[0]}
        con.close()
        for m in a.models:
            r_old = run(db, old[m], f"{m}_old", a.memory_limit)
            r_new = run(db, compiled(m, db, work), f"{m}_new", a.memory_limit)
            diff = same(db, f"{m}_old", f"{m}_new") if "error" not in r_old and "error" not in r_new else None
            case[m] = {"old": r_old, "new": r_new, "rows_differing": diff, "load": os.getloadavg()}
            print(kind, n, m, json.dumps(case[m]), flush=True)
        out["cases"].append(case)
        db.unlink()
    shutil.rmtree(work)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"spells_stress_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(out, indent=1))
    print(path)


if __name__ == "__main__":
    main()
