{#- Fast paths of dbt-duckdb's `table` and `incremental` materializations and dbt's `view`.

    A night rebuilds the same ~120 models with unchanged definitions; dbt-duckdb's materializations spend most
    of a node's time on bookkeeping around the one statement that matters (an intermediate table and two
    renames per table; a temp table, four catalog reads for type expansion and schema changes, then the insert
    per incremental model). Measured at demo scale those catalog reads alone were 7 s a night. So, on DuckDB:

    * `table` over an existing table: one `CREATE OR REPLACE TABLE ... AS` (atomic in DuckDB; no index or
      foreign key of this project sits on a table model);
    * `incremental` with the `append` strategy over an existing table: one `INSERT INTO ... BY NAME`, with the
      model's pre-/post-hooks as usual.
    * a first build (no relation yet, the case of every new environment: ~180 models): `table` and `incremental`
      one `CREATE TABLE ... AS` (dbt-duckdb's builds an intermediate table and renames it, with a dozen macro
      calls of bookkeeping around it); a `view` always one `CREATE OR REPLACE VIEW` (a view holds no rows and
      no index: replacing it is the whole of dbt's intermediate/rename/drop).

    * a `table` model with config(person_spand=...) on a full build (its bucket count estimated) or in more than
      one person bucket: the buckets' passes (dsdw_table_i_spand, below); every night the paths above, unchanged.

    * `incremental` Python models (`mart_ydelser_beregning`, which maintains its table in place and returns the
      rows to append): the rows into a scratch table, appended by name, the scratch table dropped (dbt runs a
      Python model only from the materialization it resolves, so this one cannot hand it on to dbt-duckdb's).

    Everything else (--full-refresh over an existing table, Python models, other strategies) and every night on
    which the project changed (the runner sets DSDW_DBT_SCHEMA_CHECK=1: a contract may have added a column, which
    `on_schema_change: append_new_columns` must add) goes through dbt-duckdb's own materialization. -#}

{#- The model's relation on a night whose project is unchanged (DSDW_DBT_SCHEMA_CHECK=0): the table the last full
    build made (a night builds only tables and incremental models; the project's digest is recorded only after a
    successful build, and a failed load restores the last good state), without dbt's lookup (each scans the
    relation cache: ~1 ms a call, ~300 calls a night with is_incremental below). Otherwise dbt's cached relation. -#}
{% macro dsdw_existing() -%}
    {%- if execute and not dsdw_schema_check() -%}
        {{ return(this.incorporate(type='table')) }}
    {%- endif -%}
    {{ return(load_cached_relation(this)) }}
{%- endmacro %}

{#- dbt's is_incremental() (the project's macro wins over dbt's), with the same shortcut: on such a night an
    incremental model's table exists, so it is incremental unless --full-refresh. -#}
{% macro is_incremental() -%}
    {%- if execute and not dsdw_schema_check() -%}
        {{ return(model.config.materialized == 'incremental' and not should_full_refresh()) }}
    {%- endif -%}
    {{ return(dbt.is_incremental()) }}
{%- endmacro %}

{#- `existing`: the model's relation as dbt's cache has it (looked up once per node: each lookup scans the cache) -#}
{% macro dsdw_fast_path(existing) -%}
    {{ return(model['language'] == 'sql' and (existing is none or (existing.is_table
              and not should_full_refresh() and not dsdw_schema_check()))) }}
{%- endmacro %}

{#- the fast path's one statement, hooks around it: CREATE OR REPLACE <kind> AS (<code>) -#}
{% macro dsdw_create_or_replace(kind, code) %}
    {%- set target_relation = this.incorporate(type=kind) -%}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {% call statement('main') -%}
        CREATE OR REPLACE {{ kind | upper }} {{ target_relation }} AS (
        {{ code }}
        )
    {%- endcall %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmacro %}

{% materialization view, adapter='duckdb' %}
    {%- set existing = load_cached_relation(this) -%}
    {%- if existing is none or existing.is_view -%}
        {{ return(dsdw_create_or_replace('view', sql)) }}
    {%- else -%}
        {{ return(dbt.materialization_view_default()) }}
    {%- endif -%}
{% endmaterialization %}

{% materialization table, adapter='duckdb', supported_languages=['sql', 'python'] %}
    {%- set existing = dsdw_existing() -%}
    {%- set spand = dsdw_person_spand_antal() if model['language'] == 'sql' and config.get('person_spand') else [1, false] -%}
    {%- if spand[0] > 1 or spand[1] -%}
        {{ return(dsdw_table_i_spand(spand[0], existing)) }}
    {%- elif dsdw_fast_path(existing) -%}
        {{ return(dsdw_create_or_replace('table', compiled_code)) }}
    {%- else -%}
        {{ return(dbt.materialization_table_duckdb()) }}
    {%- endif -%}
{% endmaterialization %}

{% materialization incremental, adapter='duckdb', supported_languages=['sql', 'python'] %}
    {%- set existing = dsdw_existing() -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- if model['language'] == 'python' -%}
        {#- dbt runs a Python model only from the materialization it resolves (not from a macro it calls) -#}
        {{ run_hooks(pre_hooks, inside_transaction=False) }}
        {{ run_hooks(pre_hooks, inside_transaction=True) }}
        {%- if existing is none or should_full_refresh() -%}
            {%- if existing is not none -%}{% do adapter.drop_relation(existing) %}{%- endif -%}
            {% call statement('main', language='python') -%}
                {{- create_table_as(False, target_relation, compiled_code, 'python') }}
            {%- endcall %}
        {%- else -%}
            {%- set scratch = make_temp_relation(target_relation) -%}
            {% do adapter.drop_relation(scratch) %}
            {% call statement('main', language='python') -%}
                {{- create_table_as(False, scratch, compiled_code, 'python') }}
            {%- endcall %}
            {% call statement('append') -%}
                INSERT INTO {{ target_relation }} BY NAME SELECT * FROM {{ scratch }}
            {%- endcall %}
            {% do adapter.drop_relation(scratch) %}
        {%- endif -%}
    {%- elif dsdw_fast_path(existing) and (existing is none or config.get('incremental_strategy') == 'append') -%}
        {{ run_hooks(pre_hooks, inside_transaction=False) }}
        {{ run_hooks(pre_hooks, inside_transaction=True) }}
        {% call statement('main') -%}
            {{ dsdw_create_or_append(target_relation, compiled_code, existing is none) }}
        {%- endcall %}
    {%- else -%}
        {{ return(dbt.materialization_incremental_duckdb()) }}
    {%- endif -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{#- Person buckets: a `table` model whose every row belongs to one person, built on DuckDB in N passes.

    Why: at national scale with 5 years the panel scope (int_person_week_ny) groups and windows ~280M rows
    (spell-weeks and the persons' week grids) and spilled past the 20 GB cap in one pass; every step of it is per
    person, so the rows of disjoint person sets are the rows of their union (docs/scale-out.md). A model opts in
    with config(person_spand='<name>') and puts {{ person_spand('<person key>') }} in the WHERE of its first read
    of the rows (all later steps then see one bucket's persons; a filter after a window over all persons left the
    first read's ~3 GB in every pass and a pass ran out of memory): on DuckDB that renders
    `(hash(<person key>) % 1 = 0 /*dsdw_spand*/)` (true: the SQL stands alone, as dbt compiles it), and the
    materialization runs it N times with `% N = b` in its place, the first pass creating
    the table, the others appending. N: DSDW_PERSON_SPAND when set (tests, benchmarks), else the project's one rule
    for person buckets (dsdw_spand_sql, generated from stats.spand_sql, which the ydelser mart's buckets use too) over
    the model's estimated working rows (person_spand_raekker); 1 (the unchanged single statement)
    on a night, checked first without the estimate. Either count is multiplied by DSDW_PERSON_SPAND_FAKTOR (unset:
    1), which the runner sets only to rerun a model whose build ran out of memory (dbt_runner.run_dbt: x2, x4, x8;
    an estimate is an estimate). A full build runs as buckets even when the estimate says one (the estimate's
    per-row figure is measured on that path's plan), and a table built in buckets carries their count as its
    comment ('person_spand: N': the benchmarks report it). Spark and the other engines render `true` and build as
    before. -#}
{% macro person_spand(person) -%}
    {{ return(adapter.dispatch('person_spand', 'dsdw_warehouse')(person)) }}
{%- endmacro %}
{% macro default__person_spand(person) -%}
true
{%- endmacro %}
{% macro duckdb__person_spand(person) -%}
(hash({{ person }}) % 1 = 0 /*dsdw_spand*/)
{%- endmacro %}

{#- [the number of person buckets of this model's build (see above), whether it was estimated (a full build)]:
    1 without a query on a night (a cheap check first: the estimate scans the model's input, ~7 s at national
    scale). A rebuild (--full-refresh, or var full_lake: every person's every week) is never a night, though
    fct_person_week may have run: bench_warehouse's rebuild over a warehouse whose nights ran took one pass (the
    whole history's) while the check alone decided. A full build runs as buckets even in one
    (dsdw_table_i_spand): the estimate's per-row figure (stats.BYTES_PER_UGE_RAEKKE) is measured on that plan -#}
{% macro dsdw_person_spand_antal() -%}
    {%- set faktor = [1, env_var('DSDW_PERSON_SPAND_FAKTOR', '1') | int] | max -%}
    {%- set fast = env_var('DSDW_PERSON_SPAND', '') -%}
    {%- if fast -%}{{ return([[1, fast | int] | max * faktor, false]) }}{%- endif -%}
    {%- set sql = person_spand_raekker(config.get('person_spand')) -%}
    {%- set genopbygning = should_full_refresh() or var('full_lake', false) -%}
    {%- if not genopbygning and run_query(sql['nat']).columns[0].values()[0] -%}{{ return([faktor, false]) }}{%- endif -%}
    {%- set r = run_query(dsdw_spand_sql(sql['raekker'], 'panel')) -%}
    {{ return([r.columns[0].values()[0] * faktor, true]) }}
{%- endmacro %}

{#- A model's two queries for its bucket count: 'nat' (SQL of one boolean: a night's build, one pass) and
    'raekker' (SQL of one number: the rows a full build groups). 'panel' (int_person_week_ny): a night once
    fct_person_week has run; a full build expands every spell to its weeks and every person to the weeks from the
    first one, up to the load week -#}
{% macro person_spand_raekker(navn) -%}
    {%- if navn == 'panel' -%}
        {%- set ld = "(SELECT CAST(date_trunc('week', indlaest_dato) AS DATE) FROM " ~ source('meta', 'current_load') ~ ")" -%}
        {%- set raekker -%}
(WITH f AS (
    SELECT person_key, CAST(date_trunc('week', startdato) AS DATE) AS fra,
           least(CAST(date_trunc('week', coalesce(slutdato, {{ ld }})) AS DATE), {{ ld }}) AS til
    FROM {{ ref('fct_ydelsesforloeb') }}
    WHERE person_key IS NOT NULL AND startdato IS NOT NULL AND (slutdato IS NULL OR slutdato >= startdato))
SELECT coalesce((SELECT sum(date_diff('week', fra, til) + 1) FROM f WHERE til >= fra), 0)
     + coalesce((SELECT sum(greatest(date_diff('week', fra, {{ ld }}) + 1, 0))
                 FROM (SELECT min(fra) AS fra FROM f GROUP BY person_key) p), 0))
        {%- endset -%}
        {{ return({'nat': "SELECT EXISTS (SELECT 1 FROM " ~ source('meta', 'model_run')
                          ~ " WHERE model = 'fct_person_week')", 'raekker': raekker}) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("person_spand: no row estimate for '" ~ navn ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- The statement that creates `relation` from `code` (`create`), or appends its rows by name -#}
{% macro dsdw_create_or_append(relation, code, create, replace=false) -%}
    {%- if create -%}
    CREATE {{ 'OR REPLACE ' if replace }}TABLE {{ relation }} AS (
    {%- else -%}
    INSERT INTO {{ relation }} BY NAME (
    {%- endif %}
    {{ code }}
    )
{%- endmacro %}

{#- The table in `n` person buckets: the first pass creates it, the others append (see above). The passes run
    without DuckDB's build_side_probe_side optimizer (reset afterwards): it cannot estimate the UNNESTed week series
    (3 rows for millions), so it built the hash tables of the panel scope's final joins (status, person, dim_person)
    on the person-week side; without it a pass of the national day 1 held ~5x less (4.5 -> 0.7 GiB of hash tables
    for a quarter of the persons) in ~0.4x the time, the same rows (docs/warehouse_bench.md, 2026-12-05). The night's
    one pass is left as it is. -#}
{% macro dsdw_table_i_spand(n, existing) %}
    {%- set marker = '% 1 = 0 /*dsdw_spand*/' -%}
    {%- if compiled_code.count(marker) != 1 -%}
        {{ exceptions.raise_compiler_error(this ~ ": person_spand needs exactly one {{ person_spand(...) }}") }}
    {%- endif -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- if existing is not none and not existing.is_table -%}{% do adapter.drop_relation(existing) %}{%- endif -%}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}
    {% call statement('spand_optimizer') -%}
        SET disabled_optimizers = 'build_side_probe_side'
    {%- endcall %}
    {%- for b in range(n) -%}
        {%- set code = compiled_code.replace(marker, '% ' ~ n ~ ' = ' ~ b ~ ' /*dsdw_spand*/') -%}
        {% call statement('main' if loop.last else 'spand_' ~ b) -%}
            {{ dsdw_create_or_append(target_relation, code, b == 0, replace=true) }}
        {%- endcall %}
    {%- endfor -%}
    {% call statement('spand_reset') -%}
        RESET disabled_optimizers
    {%- endcall %}
    {% call statement('spand_antal') -%}
        COMMENT ON TABLE {{ target_relation }} IS 'person_spand: {{ n }}'
    {%- endcall %}
    {% do log(this ~ ': built in ' ~ n ~ ' person buckets', info=True) %}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmacro %}
