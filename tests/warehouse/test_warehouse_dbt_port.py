"""The hand-written models' dbt port (pipelines/warehouse/dbt_port.py): every model has one, with ref()/source()
in place of table names and the load's values as macros; the sql runner's scoped and delta materializations
become explicit models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipelines.warehouse.dbt_port import DERIVED, convert_sql, derived_files
from pipelines.warehouse.dbt_runner import generated_model
from pipelines.warehouse.generate import MODELS_DIR
from pipelines.warehouse.models import load_models


@pytest.fixture(scope="module")
def files() -> dict[Path, str]:
    return derived_files()


def test_convert_sql_refs_tables_not_words_in_strings_or_comments():
    names = {"fct_person_week", "dim_kommune", "fct_kontaktgruppe_aktuel"}
    sql = ("SELECT k.kommune -- from dim_kommune\n"
           "FROM dim_kommune k JOIN fct_kontaktgruppe_aktuel f USING (kommunekode)\n"
           "WHERE f.person_key IN (SELECT person_key FROM affected_persons)\n"
           "  AND l.load_id IN (SELECT load_id FROM meta.model_run WHERE model = 'fct_person_week')\n"
           "  AND coalesce(getvariable('model_first_run'), false) AND x = $load_id\n"
           "  AND d <= CAST(getvariable('load_date') AS DATE) AND error('no dim_kommune') IS NULL\n"
           "  AND c IN (SELECT kode FROM read_csv(getvariable('reference_dir') || '/kommuner.csv', "
           "all_varchar = true, header = true))")
    out = convert_sql(sql, names)
    assert "-- from dim_kommune\n" in out and "'fct_person_week'" in out and "'no dim_kommune'" in out
    assert "FROM {{ ref('dim_kommune') }} k JOIN {{ ref('fct_kontaktgruppe_aktuel') }} f" in out
    assert "FROM {{ ref('int_affected_persons') }}" in out
    assert "FROM {{ source('meta', 'model_run') }}" in out
    assert "{{ first_run() }} AND x = {{ load_id() }}" in out
    assert "CAST({{ load_date() }} AS DATE)" in out and "{{ raise_error_fn() }}('no dim_kommune')" in out
    assert "{{ reference_csv('kommuner.csv') }}" in out and "getvariable" not in out


def test_every_hand_written_model_is_ported(files):
    ported = {p.stem for p in files if p.suffix in (".sql", ".py")}
    runner = {n for n in load_models(MODELS_DIR) if not generated_model(n)}
    assert runner <= ported, sorted(runner - ported)
    for p, text in files.items():
        if p.suffix != ".sql":
            continue
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        body = re.sub(r"'(?:[^']|'')*'", "''", body)
        # a table of the warehouse is read through ref()/source() only
        bare = re.findall(r"\b(?:FROM|JOIN)\s+((?:fct|dim|mart|stg)_\w+|meta\.\w+|restricted\.\w+)", body)
        assert not bare, (p, bare)
        assert "getvariable(" not in body and "$load" not in body, p


def test_scoped_and_delta_materializations_are_explicit_models(files):
    panel = files[DERIVED / "core" / "fct_person_week.sql"]
    assert "delete_scope('person_key', ref('int_affected_persons'))" in panel
    assert "ref('int_person_week_ny')" in panel and "ref('int_person_week_erstattet')" in panel
    flows = files[DERIVED / "marts" / "mart_overgange_bidrag.sql"]
    assert "{{ ref('int_person_week_ny') }}" in flows and "{{ ref('int_person_week_erstattet') }}" in flows
    assert "incremental_strategy='append'" in flows and "{{ first_run() }}" in flows
    assert "delete+insert" in files[DERIVED / "core" / "dim_virksomhed.sql"]
    kat = files[DERIVED / "core" / "fct_kategori_forloeb.sql"]
    assert "ref('int_kategori_personer')" in kat and "{% if is_incremental() %}" in kat
    py = files[DERIVED / "marts" / "mart_ydelser_beregning.py"]
    assert "ydelser_python_model" in py and 'dbt.ref("int_affected_person_maaneder")' in py
    core = yaml.safe_load(files[DERIVED / "core" / "_core.yml"])
    by = {m["name"]: m for m in core["models"]}
    assert by["fct_person_week"]["config"]["tags"] == ["nightly"]
    assert by["dim_person"]["data_tests"][0]["dsdw_unique_columns"]["arguments"]["columns"] == ["person_key",
                                                                                              "gyldig_fra"]
    assert "§ 15" in by["fct_ydelsesforloeb"]["config"]["meta"]["paragraf"]
    scope = Path(__file__).parents[2] / "warehouse" / "dbt" / "models" / "scope"
    assert (scope / "int_affected_persons.sql").exists() and (scope / "_scope.yml").exists()


def test_nightly_selection_builds_everything_until_the_project_is_unchanged():
    import duckdb

    from pipelines.warehouse.dbt_runner import nightly_selection, project_digest

    con = duckdb.connect()
    con.execute("CREATE SCHEMA meta")
    con.execute("CREATE TABLE meta.schema_state (name VARCHAR PRIMARY KEY, digest VARCHAR)")
    new = [{"dataset": "kontaktgruppe"}, {"dataset": "samtale"}, {"dataset": "kontaktgruppe"}]
    assert nightly_selection(con, new) == []  # nothing built yet: everything
    con.execute("INSERT INTO meta.schema_state VALUES ('dbt_project', 'an older project')")
    assert nightly_selection(con, new) == []  # the project or a code list changed: everything
    con.execute("UPDATE meta.schema_state SET digest = ?", [project_digest()])
    assert nightly_selection(con, new) == ["--select", "source:lake.kontaktgruppe+", "source:lake.samtale+",
                                           "tag:nightly", "--exclude", "config.materialized:view",
                                           "config.severity:warn", "tag:full_build"]
    assert nightly_selection(con, []) == ["--select", "tag:nightly", "--exclude", "config.materialized:view",
                                          "config.severity:warn", "tag:full_build"]



def test_engine_function_calls_become_dispatch_macro_calls():
    out = convert_sql("SELECT dsdw_isodow(d), 'dsdw_isodow(x)' AS s -- dsdw_unnest(y)\n"
                      ", dsdw_date_diff('day', $load_date, max(\"a\")) AS n, CAST(NULL AS VARCHAR) AS v, "
                      "dsdw_unnest(dsdw_date_series(a, least(b, c), INTERVAL 7 DAY)) AS u FROM dim_dato",
                      {"dim_dato"})
    assert out.startswith('SELECT {{ dsdw_isodow("d") }}, \'dsdw_isodow(x)\' AS s -- dsdw_unnest(y)\n')
    assert '{{ dsdw_date_diff("day", (load_date()), "max(\\"a\\")") }} AS n' in out
    assert "CAST(NULL AS STRING) AS v" in out
    assert ('{{ dsdw_unnest((dsdw_date_series("a", "least(b, c)", "INTERVAL 7 DAY"))) }} AS u '
            "FROM {{ ref('dim_dato') }}") in out


def test_engine_functions_are_the_dbt_macros_duckdb_bodies():
    """The sql runner's DuckDB macros (generate.ENGINE_FUNCTIONS) are engines.sql's default__ bodies, and every
    one has a spark__ body: the two runners and the two engines run the same definitions."""
    from pipelines.warehouse.generate import ENGINE_FUNCTIONS

    text = (Path(__file__).parents[2] / "warehouse" / "dbt" / "macros" / "engines.sql").read_text(encoding="utf-8")
    for name, (args, body) in ENGINE_FUNCTIONS.items():
        m = re.search(r"\{% macro default__" + name + r"\(([^)]*)\) -%\}\s*(.*?)\s*\{%- endmacro %\}", text, re.S)
        assert m, name
        params = [a.split("=")[0].strip() for a in m.group(1).split(",") if a.strip()]
        assert tuple(params) == args, name
        dbt_body = re.sub(r"'?\{\{ (\w+) \}\}'?", lambda g: g.group(1), m.group(2))
        assert " ".join(dbt_body.split()) == " ".join(body.split()), name
        assert re.search(r"\{% macro spark__" + name + r"\(", text), name
