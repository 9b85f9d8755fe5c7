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
    {%- if dsdw_fast_path(dsdw_existing()) -%}
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
            {% if existing is none -%}
            CREATE TABLE {{ target_relation }} AS (
            {%- else -%}
            INSERT INTO {{ target_relation }} BY NAME (
            {%- endif %}
            {{ compiled_code }}
            )
        {%- endcall %}
    {%- else -%}
        {{ return(dbt.materialization_incremental_duckdb()) }}
    {%- endif -%}
    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
