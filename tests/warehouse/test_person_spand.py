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
from pipelines.warehouse.dbt_runner import DbtError, compiled_sql, dbt_env, run_dbt

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
    as_full_build(db)  # the full build: no earlier run of the panel, every person affected (as in a rebuild)
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


def full_build_db(tiny_warehouse, tmp_path: Path) -> Path:
    """A copy of the tiny warehouse set up for the panel's full build (no earlier panel run, every person
    affected)."""
    _src, root, _keys = tiny_warehouse
    db = tmp_path / "build.duckdb"
    shutil.copyfile(published_path(root), db)
    return as_full_build(db)


def as_full_build(db: Path) -> Path:
    """``db`` as a full build of the panel finds it: no earlier panel run, every person affected."""
    con = duckdb.connect(str(db))
    try:
        con.execute("CREATE OR REPLACE TABLE staging.int_affected_persons AS SELECT DISTINCT person_key "
                    "FROM fct_ydelsesforloeb WHERE person_key IS NOT NULL")
        con.execute("DELETE FROM meta.model_run WHERE model = 'fct_person_week'")
    finally:
        con.close()
    return db


def test_bucket_count_of_the_national_day_one():
    """The estimate of the national day 1 (issue 14: 52,069,472 spell-weeks and grid weeks) at the benchmark's
    14GB: 100 bytes a row gave one bucket, whose pass (with DuckDB's build-side optimizer) needed ~22 GiB; the 150
    measured on the bucketed path give two of ~2 GiB."""
    from pipelines.warehouse import stats

    con = duckdb.connect(config={"memory_limit": "14GB"})
    assert con.execute(stats.spand_sql("52069472", 100)).fetchone()[0] == 1
    assert stats.BYTES_PER_UGE_RAEKKE == 150
    assert con.execute(stats.spand_sql("52069472", stats.BYTES_PER_UGE_RAEKKE)).fetchone()[0] == 2
    con.execute("SET memory_limit = '6GB'")  # the 2026-12-03 runs' limit: 3 buckets
    assert con.execute(stats.spand_sql("52069472", stats.BYTES_PER_UGE_RAEKKE)).fetchone()[0] == 3


def inject_failures(monkeypatch: pytest.MonkeyPatch) -> tuple[dict, list[str], set[str]]:
    """DuckDB's errors raised in chosen passes of the panel scope, in this process's dbt-duckdb cursor: ``fail``
    maps a pass (``"<buckets> = <bucket>"``) to the exception to raise; ``seen`` lists the passes run, in order;
    ``optimizers`` the disabled optimizers they ran with."""
    import dbt.adapters.duckdb.environments.local as local

    seen: list[str] = []
    optimizers: set[str] = set()
    fail: dict[str, type[Exception]] = {}
    execute = local.DuckDBCursorWrapper.execute

    def fake(self, sql, bindings=None):  # noqa: ANN001, ANN202
        import re

        m = re.search(r"% (\d+) = (\d+) /\*dsdw_spand\*/", sql)
        if m and "int_person_week_ny" in sql:
            seen.append(f"{m[1]}/{m[2]}")
            # a bucketed pass runs without the optimizer that built the person-week side's hash tables
            optimizers.add(self._cursor.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0])
            for key, exc in fail.items():
                if f"% {key} /*dsdw_spand*/" in sql:
                    oom = exc is duckdb.OutOfMemoryException
                    raise exc(("Out of Memory Error: failed to pin block of size 256.0 KiB" if oom
                               else "Invalid Input Error: something else") + f" (test {key})")
        return execute(self, sql, bindings)

    monkeypatch.setattr(local.DuckDBCursorWrapper, "execute", fake)
    return fail, seen, optimizers


def test_out_of_memory_is_retried_with_twice_the_buckets(tiny_warehouse, tmp_path, monkeypatch, caplog):
    """A bucketed build that runs out of memory is rerun with twice the buckets (the model and the nodes its
    failure skipped, nothing else), until a pass fits; the rows are the one pass's.  Another error is not retried,
    and the retries stop at x2**SPAND_FORSOEG.  DuckDB's out-of-memory error is raised here by the test, as the
    national day 1 raised it (13.0 GiB of 13.0 GiB used)."""
    from pipelines.warehouse import dbt_runner

    db = full_build_db(tiny_warehouse, tmp_path)
    work = tmp_path / "dbt"
    build(work, db, 1, "fuld_1", monkeypatch)  # the reference: one pass
    monkeypatch.delenv("DSDW_PERSON_SPAND", raising=False)  # the estimate's count (1 here), times the factor
    fail, seen, optimizers = inject_failures(monkeypatch)
    (work / "restricted").mkdir(parents=True, exist_ok=True)
    env = dbt_env(work, db, work / "restricted" / "restricted.duckdb")
    models = ("int_person_week_ny", "int_person_week_erstattet")

    # one pass and the second bucket of two run out of memory: x2, then x4 builds it
    fail.update({"1 = 0": duckdb.OutOfMemoryException, "2 = 1": duckdb.OutOfMemoryException})
    with caplog.at_level("WARNING", logger="pipelines.warehouse.dbt_runner"):
        nodes = run_dbt(work, env, "run", "--select", *models)
    assert seen == ["1/0", "2/0", "2/1", "4/0", "4/1", "4/2", "4/3"]
    assert optimizers == {"build_side_probe_side"}  # a full build's passes, the one bucket's too, run without it
    assert {uid.rsplit(".", 1)[1]: s for uid, (s, _secs, _rows) in nodes.items()} == {
        "int_person_week_ny": "success", "int_person_week_erstattet": "success"}
    warnings = [r.getMessage() for r in caplog.records if "ran out of memory" in r.getMessage()]
    assert len(warnings) == 2 and "2 x the buckets, with 1 skipped" in warnings[0] and "4 x" in warnings[1]
    con = duckdb.connect(str(db))
    try:
        assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'int_person_week_ny'"
                           ).fetchone()[0] == "person_spand: 4"
        assert differ(con, "fuld_1", "staging.int_person_week_ny") == 0
        assert con.execute("SELECT count(*) FROM fuld_1").fetchone()[0] > 0
    finally:
        con.close()

    # another error: no retry
    seen.clear()
    fail.clear()
    fail["1 = 0"] = duckdb.InvalidInputException
    with pytest.raises(dbt_runner.DbtError, match="int_person_week_ny: error"):
        run_dbt(work, env, "run", "--select", *models)
    assert seen == ["1/0"]

    # out of memory whatever the buckets: 1, 2, 4, 8 buckets' first pass, then the error
    seen.clear()
    fail.clear()
    fail.update({f"{n} = 0": duckdb.OutOfMemoryException for n in (1, 2, 4, 8, 16)})
    with pytest.raises(dbt_runner.DbtError, match="Out of Memory Error"):
        run_dbt(work, env, "run", "--select", *models)
    assert seen == ["1/0", "2/0", "4/0", "8/0"]


def test_a_rebuild_over_a_warehouse_with_nights_is_a_full_build(tiny_warehouse, tmp_path, monkeypatch):
    """bench_warehouse's rebuild (``dbt run --full-refresh --vars '{full_lake: true}'``) over a warehouse whose
    nights built fct_person_week computes every person's every week: it takes the full build's path (the estimate,
    the passes without the build-side optimizer, the table's bucket comment), not the night's one pass, which
    the meta.model_run check alone had chosen.  The rows are the nightly panel's."""
    _src, root, _keys = tiny_warehouse
    monkeypatch.delenv("DSDW_PERSON_SPAND", raising=False)
    db = tmp_path / "build.duckdb"
    shutil.copyfile(published_path(root), db)
    work = tmp_path / "dbt"
    (work / "restricted").mkdir(parents=True, exist_ok=True)
    env = dbt_env(work, db, work / "restricted" / "restricted.duckdb")

    def comment() -> str | None:
        con = duckdb.connect(str(db))
        try:
            return con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = ?", [MODEL]).fetchone()[0]
        finally:
            con.close()

    run_dbt(work, env, "run", "--select", MODEL)  # a night: one pass
    assert comment() is None
    run_dbt(work, env, "run", "--full-refresh", "--vars", "{full_lake: true}", "--select", "int_affected_persons",
            MODEL)
    assert comment() == "person_spand: 1"
    con = duckdb.connect(str(db))
    try:
        assert con.execute(f"SELECT count(DISTINCT person_key) FROM staging.{MODEL}").fetchone()[0] >= 4
        assert differ(con, f"(SELECT * EXCLUDE (indlaest_dato) FROM staging.{MODEL})",
                      "(SELECT * EXCLUDE (indlaest_dato) FROM fct_person_week)") == 0
    finally:
        con.close()


def test_the_rebuild_retries_out_of_memory_in_more_buckets(tiny_warehouse, tmp_path, monkeypatch, caplog):
    """``dsdw warehouse rebuild``'s dbt run (its own runner, ``rebuild._dbt_run``) reruns a person-bucket model
    that ran out of memory in twice the buckets, as a night does: the rows are the one pass's."""
    from pipelines.warehouse import rebuild

    db = full_build_db(tiny_warehouse, tmp_path)
    work = tmp_path / "dbt"
    build(work, db, 1, "fuld_1", monkeypatch)
    monkeypatch.delenv("DSDW_PERSON_SPAND", raising=False)
    fail, seen, _ = inject_failures(monkeypatch)
    fail["1 = 0"] = duckdb.OutOfMemoryException
    env = dbt_env(work, db, work / "restricted" / "restricted.duckdb")
    with caplog.at_level("WARNING", logger="pipelines.warehouse.dbt_runner"):
        secs = rebuild._dbt_run("duckdb", work / "rebuild_target", env, ["int_affected_persons", MODEL])
    assert seen == ["1/0", "2/0", "2/1"]
    assert set(secs) == {"int_affected_persons", MODEL}
    assert any("dbt rebuild (duckdb): int_person_week_ny ran out of memory" in r.getMessage() for r in caplog.records)
    con = duckdb.connect(str(db))
    try:
        assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = ?", [MODEL]).fetchone()[0] == (
            "person_spand: 2")
        assert differ(con, "fuld_1", f"staging.{MODEL}") == 0
    finally:
        con.close()


def test_dagster_subprocess_results_are_retried_the_same_way(monkeypatch):
    """The Dagster path runs dbt in a subprocess (dagster-dbt's ``dbt.cli``): its outcome is read from
    run_results.json and manifest.json, and the same retry applies.  Here ``once`` plays the subprocess: the
    panel scope runs out of memory once (its test and the panel skipped), then builds."""
    from pipelines.warehouse import dbt_runner

    monkeypatch.delenv("DSDW_PERSON_SPAND_FAKTOR", raising=False)
    ny, panel = "model.dsdw_warehouse.int_person_week_ny", "model.dsdw_warehouse.fct_person_week"
    test, other = "test.dsdw_warehouse.not_null_fct_person_week_uge_id.1a2b", "model.dsdw_warehouse.dim_kommune"
    manifest = {"nodes": {ny: {"name": "int_person_week_ny", "config": {"person_spand": "panel"}},
                          panel: {"name": "fct_person_week", "config": {}},
                          test: {"name": "not_null_fct_person_week_uge_id", "config": {}},
                          other: {"name": "dim_kommune", "config": {}}}}

    def result(uid: str, status: str, secs: float, message: str = "") -> dict:
        return {"unique_id": uid, "status": status, "execution_time": secs, "message": message,
                "adapter_response": {"rows_affected": 7} if status == "success" else {}}

    oom = "Out of Memory Error: could not allocate block of size 256.0 KiB (13.0 GiB/13.0 GiB used)"
    calls: list[tuple[str | None, tuple[str, ...]]] = []

    def once(env: dict[str, str], args: tuple[str, ...]) -> dbt_runner.Outcome:
        calls.append((env.get("DSDW_PERSON_SPAND_FAKTOR"), args))
        if len(calls) == 1:
            return dbt_runner.classify_run_results({"results": [
                result(other, "success", 1.0), result(ny, "error", 5.0, oom), result(panel, "skipped", 0.0),
                result(test, "skipped", 0.0)]}, manifest)
        return dbt_runner.classify_run_results({"results": [
            result(ny, "success", 9.0), result(panel, "success", 2.0), result(test, "pass", 0.1)]}, manifest)

    nodes = dbt_runner.retry_in_buckets(once, {}, ["--select", "source:lake.kontaktgruppe+", "--exclude", "x"],
                                        "dbt build (Dagster)")
    assert calls == [(None, ("--select", "source:lake.kontaktgruppe+", "--exclude", "x")),
                     ("2", ("--exclude", "x", "--select",
                            "fct_person_week int_person_week_ny not_null_fct_person_week_uge_id"))]
    assert nodes[ny] == ("success", 14.0, 7) and nodes[other] == ("success", 1.0, 7) and nodes[test][0] == "pass"
    # a failure that is not the buckets' memory (the skipped panel included): no retry, the error
    calls.clear()
    plain = dbt_runner.classify_run_results({"results": [result(ny, "error", 5.0, "Binder Error: x"),
                                                         result(panel, "skipped", 0.0)]}, manifest)
    with pytest.raises(dbt_runner.DbtError, match="int_person_week_ny: error Binder Error"):
        dbt_runner.retry_in_buckets(lambda e, a: (calls.append((None, a)), plain)[1], {}, [], "dbt build (Dagster)")
    assert len(calls) == 1
    # a model without person buckets out of memory is no bucket problem either
    assert dbt_runner.classify_run_results({"results": [result(other, "error", 1.0, oom)]}, manifest)[2] == {}


def test_unique_key_tests_find_a_duplicate_and_a_null_key(tiny_warehouse, tmp_path):
    """dsdw_unique_columns on DuckDB counts distinct key hashes first and groups the keys only when a hash repeats
    (the whole 105M-row panel's grouping was most of a 5-year night's tests): a duplicate panel week and a NULL
    record key still fail their tests, naming the rows; the clean warehouse passes."""
    _src, root, _keys = tiny_warehouse
    db = tmp_path / "build.duckdb"
    shutil.copyfile(published_path(root), db)
    work = tmp_path / "dbt"
    (work / "restricted").mkdir(parents=True)
    env = dbt_env(work, db, work / "restricted" / "restricted.duckdb")
    sel = ("test", "--select", "fct_person_week", "fct_afmelding_aktuel")
    nodes = run_dbt(work, env, *sel)
    unique = {u: st for u, (st, _, _) in nodes.items() if ".dsdw_unique_columns_" in u}
    assert len(unique) == 2 and set(unique.values()) == {"pass"}
    (compiled,) = (work / "warehouse" / "dbt_target" / "compiled").rglob("dsdw_unique_columns_fct_person_week*.sql")
    assert "count(DISTINCT hash(person_key, uge_id))" in compiled.read_text(encoding="utf-8")
    con = duckdb.connect(str(db))
    try:
        week = con.execute("SELECT person_key, uge_id FROM fct_person_week ORDER BY person_key, uge_id LIMIT 1"
                           ).fetchone()
        con.execute("INSERT INTO fct_person_week SELECT * FROM fct_person_week WHERE person_key = ? AND uge_id = ?",
                    list(week))
        con.execute("INSERT INTO fct_afmelding_aktuel SELECT * REPLACE (NULL AS afmelding_id) "
                    "FROM fct_afmelding_aktuel LIMIT 1")
    finally:
        con.close()
    with pytest.raises(DbtError) as err:
        run_dbt(work, env, *sel)
    assert "dsdw_unique_columns_fct_person_week" in str(err.value)
    assert "dsdw_unique_columns_fct_afmelding_aktuel" in str(err.value)
    con = duckdb.connect(str(db))
    try:  # the failing rows as the test selects them: the repeated week (twice) and the NULL key
        for name, want in (("fct_person_week", [(*week, 2)]), ("fct_afmelding_aktuel", [(None, 1)])):
            (f,) = (work / "warehouse" / "dbt_target" / "compiled").rglob(f"dsdw_unique_columns_{name}*.sql")
            assert con.execute(f.read_text(encoding="utf-8")).fetchall() == want
    finally:
        con.close()


def _night_and_full(tiny_warehouse, tmp_path: Path) -> tuple[Path, Path, dict, dict]:
    """A copy of the tiny warehouse's published database with dbt's environments for a night whose project is
    unchanged (the key tests' night scope) and for a full build (every row tested)."""
    _src, root, _keys = tiny_warehouse
    db = tmp_path / "build.duckdb"
    shutil.copyfile(published_path(root), db)
    work = tmp_path / "dbt"
    (work / "restricted").mkdir(parents=True)
    night = dbt_env(work, db, work / "restricted" / "restricted.duckdb", schema_check=False)
    full = dbt_env(work, db, work / "restricted" / "restricted.duckdb")
    return db, work, night, full


def test_a_nights_key_tests_group_only_the_keys_the_night_wrote(tiny_warehouse, tmp_path):
    """On a night whose project is unchanged (DSDW_DBT_SCHEMA_CHECK=0) the key tests of the tables a night appends to
    or rewrites in part group only the keys the night may have written (``night_scope``: the panel's rows in
    int_person_week_ny, dim_person's affected persons, the bidrag marts' load_id), not the 5-year table: a
    duplicate of a panel week the night wrote fails the night's test, naming it; a duplicate the night did not
    write (none survives a night: a failed load restores the published database) is outside the night's test, and
    the full test (a full build, ``dsdw warehouse check``) finds it."""
    db, work, night, full = _night_and_full(tiny_warehouse, tmp_path)
    sel = ("test", "--select", "fct_person_week", "dim_person", "mart_overgange_bidrag")
    nodes = run_dbt(work, night, *sel)
    unique = {u.split(".")[2]: st for u, (st, _, _) in nodes.items() if ".dsdw_unique_columns_" in u}
    assert unique == {"dsdw_unique_columns_fct_person_week_person_key__uge_id": "pass",
                      "dsdw_unique_columns_dim_person_person_key__gyldig_fra": "pass",
                      "dsdw_unique_columns_mart_overgange_bidrag_load_id__uge_id__kommunekode__fra_status__til_status":
                          "pass"}

    def compiled(name: str) -> str:
        (f,) = (work / "warehouse" / "dbt_target" / "compiled").rglob(f"dsdw_unique_columns_{name}*.sql")
        return f.read_text(encoding="utf-8")

    assert 'IN (SELECT person_key, uge_id FROM "build"."staging"."int_person_week_ny")' in compiled("fct_person_week")
    assert 'IN (SELECT person_key FROM "build"."staging"."int_affected_persons")' in compiled("dim_person")
    assert 'IN (SELECT load_id FROM "build"."meta"."current_load")' in compiled("mart_overgange_bidrag")
    con = duckdb.connect(str(db))
    try:
        written, outside = (con.execute(
            f"SELECT person_key, uge_id FROM fct_person_week WHERE (person_key, uge_id) {op} "
            "(SELECT person_key, uge_id FROM staging.int_person_week_ny) ORDER BY person_key, uge_id LIMIT 1"
        ).fetchone() for op in ("IN", "NOT IN"))
        assert written and outside  # the tiny warehouse's last night wrote some weeks and kept others
        con.execute("CREATE TABLE main.week_copy AS FROM fct_person_week WHERE person_key = ? AND uge_id = ?",
                    list(written))
        con.execute("INSERT INTO fct_person_week FROM main.week_copy")
    finally:
        con.close()
    with pytest.raises(DbtError, match="dsdw_unique_columns_fct_person_week"):
        run_dbt(work, night, *sel)
    con = duckdb.connect(str(db))
    try:
        assert con.execute(compiled("fct_person_week")).fetchall() == [(*written, 2)]
        con.execute("DELETE FROM fct_person_week WHERE person_key = ? AND uge_id = ?", list(written))
        con.execute("INSERT INTO fct_person_week FROM main.week_copy")  # the week once again
        con.execute("INSERT INTO fct_person_week FROM fct_person_week WHERE person_key = ? AND uge_id = ?",
                    list(outside))
    finally:
        con.close()
    run_dbt(work, night, *sel)  # the night's keys are clean again; the other duplicate is not the night's
    with pytest.raises(DbtError, match="dsdw_unique_columns_fct_person_week"):
        run_dbt(work, full, *sel)
    con = duckdb.connect(str(db))
    try:
        assert con.execute(compiled("fct_person_week")).fetchall() == [(*outside, 2)]
    finally:
        con.close()


def test_a_nights_record_key_test_groups_the_records_the_night_touched(tiny_warehouse, tmp_path):
    """The current-state tables carry no unique index (its deletes and inserts grew with the history); their
    record-key test guards a night instead, scoped to the records the night touched (``touched_scope``: the
    records with a version in this load or in a payload it retracted, the delete-and-insert's own scope): a
    second current version of a touched record fails the night, naming it; one of a record the night did not touch
    is outside the night's test (a full build and ``dsdw warehouse check`` find it)."""
    db, work, night, full = _night_and_full(tiny_warehouse, tmp_path)
    name = "dsdw_unique_columns_fct_kontaktgruppe_aktuel_kontaktgruppe_id__True"
    sel = ("test", "--select", "fct_kontaktgruppe_aktuel")
    nodes = run_dbt(work, night, *sel)
    assert {u.split(".")[2]: st for u, (st, _, _) in nodes.items() if ".dsdw_unique_columns_" in u} == {name: "pass"}
    (f,) = (work / "warehouse" / "dbt_target" / "compiled").rglob(f"{name}.sql")
    sql = f.read_text(encoding="utf-8")
    assert 'WHERE (kontaktgruppe_id) IN (SELECT kontaktgruppe_id FROM (SELECT DISTINCT kontaktgruppe_id FROM ' \
           '"build"."main"."fct_kontaktgruppe" WHERE load_id = ' in " ".join(sql.split())
    con = duckdb.connect(str(db))
    try:
        touched = {k for (k,) in con.execute(
            "SELECT kontaktgruppe_id FROM fct_kontaktgruppe WHERE load_id = (SELECT load_id FROM meta.current_load)"
        ).fetchall()}
        current = [k for (k,) in con.execute("SELECT kontaktgruppe_id FROM fct_kontaktgruppe_aktuel ORDER BY 1")
                   .fetchall()]
        written = next(k for k in current if k in touched)
        kept = next(k for k in current if k not in touched)  # the last night touched some records, not all
        con.execute("INSERT INTO fct_kontaktgruppe_aktuel FROM fct_kontaktgruppe_aktuel WHERE kontaktgruppe_id = ?",
                    [written])
    finally:
        con.close()
    with pytest.raises(DbtError, match=name):
        run_dbt(work, night, *sel)
    con = duckdb.connect(str(db))
    try:
        assert con.execute(sql).fetchall() == [(written, 2)]
        con.execute("DELETE FROM fct_kontaktgruppe_aktuel WHERE kontaktgruppe_id = ? AND rowid = "
                    "(SELECT max(rowid) FROM fct_kontaktgruppe_aktuel WHERE kontaktgruppe_id = ?)", [written, written])
        con.execute("INSERT INTO fct_kontaktgruppe_aktuel FROM fct_kontaktgruppe_aktuel WHERE kontaktgruppe_id = ?",
                    [kept])
    finally:
        con.close()
    run_dbt(work, night, *sel)  # the night's records are clean; the other duplicate is not the night's
    with pytest.raises(DbtError, match=name):
        run_dbt(work, full, *sel)
