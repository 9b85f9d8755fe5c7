"""The panel scope (int_person_week_ny) built in person buckets has the rows of the build in one pass.

At national scale with 5 years one pass spilled past the 20 GB cap, so on DuckDB a full build runs the model's SQL
once per bucket of persons (``pid % N = b``, dbt/macros/materializations.sql: ``person_spand``). Here dbt builds the
model on a copy of the shared tiny warehouse with ``DSDW_PERSON_SPAND`` 1 and 4 (the night's increment and the
full build over every person) and the rows must be the same (EXCEPT ALL both ways).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.warehouse.build import published_path
from pipelines.warehouse.dbt_runner import compiled_sql, dbt_env, run_dbt

MODEL = "int_person_week_ny"


def build(workdir: Path, db: Path, spand: int, keep: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """dbt builds the panel scope on ``db`` in ``spand`` buckets (0: as many as the estimate says); its rows are
    kept as ``main.<keep>``."""
    if spand:
        monkeypatch.setenv("DSDW_PERSON_SPAND", str(spand))
    else:
        monkeypatch.delenv("DSDW_PERSON_SPAND", raising=False)
    (workdir / "restricted").mkdir(parents=True, exist_ok=True)
    run_dbt(workdir, dbt_env(workdir, db, workdir / "restricted" / "restricted.duckdb"), "run", "--select", MODEL)
    # dbt's record of the last statement: with buckets the last bucket's pass appended
    (ran,) = (workdir / "warehouse" / "dbt_target" / "run").rglob(f"{MODEL}.sql")
    text = ran.read_text(encoding="utf-8")
    if spand > 1:
        assert text.lstrip().startswith("INSERT INTO") and f"% {spand} = {spand - 1} /*dsdw_spand*/" in text
    else:
        assert "INSERT INTO" not in text and "% 1 = 0 /*dsdw_spand*/" in text
    con = duckdb.connect(str(db))
    try:
        con.execute(f"CREATE OR REPLACE TABLE main.{keep} AS SELECT * FROM staging.{MODEL}")
    finally:
        con.close()


def differ(con: duckdb.DuckDBPyConnection, a: str, b: str) -> int:
    return con.execute(f"SELECT (SELECT count(*) FROM (FROM {a} EXCEPT ALL FROM {b})) "
                       f"+ (SELECT count(*) FROM (FROM {b} EXCEPT ALL FROM {a}))").fetchone()[0]


def test_panel_scope_in_buckets_equals_one_pass(tiny_warehouse, tmp_path, monkeypatch):
    _src, root, _keys = tiny_warehouse
    db = tmp_path / "build.duckdb"  # the load's database name: the process's parsed project serves it
    shutil.copyfile(published_path(root), db)
    work = tmp_path / "dbt"
    # the last night's increment (the affected persons' weeks, the new week of everyone else)
    build(work, db, 1, "inc_1", monkeypatch)
    build(work, db, 4, "inc_4", monkeypatch)
    build(work, db, 0, "inc_auto", monkeypatch)  # a night: one pass, without the estimate
    # the full build: no earlier run of the panel, every person affected (as in a rebuild)
    con = duckdb.connect(str(db))
    try:
        con.execute("CREATE OR REPLACE TABLE staging.int_affected_persons AS SELECT DISTINCT person_key "
                    "FROM fct_ydelsesforloeb WHERE person_key IS NOT NULL")
        con.execute("DELETE FROM meta.model_run WHERE model = 'fct_person_week'")
    finally:
        con.close()
    build(work, db, 1, "fuld_1", monkeypatch)
    build(work, db, 4, "fuld_4", monkeypatch)
    build(work, db, 0, "fuld_auto", monkeypatch)  # the estimate: 81k weeks are one bucket at the memory limit
    # the person_spand marker's compiled form: one pass, every person (pid % 1 = 0)
    sql = compiled_sql(MODEL, db, work)
    assert sql.count("% 1 = 0 /*dsdw_spand*/") == 1
    con = duckdb.connect(str(db))
    try:
        n = {t: con.execute(f"SELECT count(*), count(DISTINCT person_key) FROM {t}").fetchone()
             for t in ("inc_1", "inc_4", "fuld_1", "fuld_4")}
        assert n["inc_1"] == n["inc_4"] and n["inc_1"][0] > 0
        assert n["fuld_1"] == n["fuld_4"] and n["fuld_1"][1] >= 4  # persons enough for every bucket
        assert n["fuld_1"][0] > n["inc_1"][0]
        assert differ(con, "inc_1", "inc_4") == 0 and differ(con, "inc_1", "inc_auto") == 0
        assert differ(con, "fuld_1", "fuld_auto") == 0
        assert differ(con, "fuld_1", "fuld_4") == 0
        # the buckets' full build is the nightly panel (what the two nights wrote), row for row
        assert differ(con, "(SELECT * EXCLUDE (indlaest_dato) FROM fuld_4)",
                      "(SELECT * EXCLUDE (indlaest_dato) FROM fct_person_week)") == 0
        # the compiled one-pass SQL standing alone gives the same rows
        assert differ(con, "fuld_4", f"({sql})") == 0
        # every person's weeks come from one pass: within a person, the weeks run without a gap or a repeat
        assert con.execute("""SELECT count(*) FROM (
                SELECT person_key, uge_start - lag(uge_start) OVER (PARTITION BY person_key ORDER BY uge_start) AS d
                FROM fuld_4) WHERE d <> 7""").fetchone()[0] == 0
    finally:
        con.close()
