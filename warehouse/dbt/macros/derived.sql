{#- Macros of the hand-written models (dims, dim_person, the weekly panel, the category spells, the marts).
    What differs between engines goes through adapter.dispatch: the DuckDB form here, the default the
    ANSI/Spark form where one exists. -#}

{#- This load's transaction date and id (one row in meta.current_load, written by the load's ledger step;
    a night's values are data, not --vars, so dbt keeps its partial parse across nights). -#}
{% macro load_date() -%}
(SELECT indlaest_dato FROM {{ source('meta', 'current_load') }})
{%- endmacro %}

{% macro load_id() -%}
(SELECT load_id FROM {{ source('meta', 'current_load') }})
{%- endmacro %}

{#- TRUE when the model builds its table from nothing (the count-everything branch of an additive or
    merged model), FALSE on a nightly incremental run: a constant the optimizer folds. -#}
{% macro first_run() -%}
{{ 'false' if is_incremental() else 'true' }}
{%- endmacro %}

{#- A load's signed histogram of the weekly panel (mart_overgange_bidrag, mart_panel_bestand_bidrag): per ISO week
    x kommunekode x ``columns`` the panel rows the load inserted (+1, int_person_week_ny) minus those it replaced (-1,
    int_person_week_erstattet), rows kept by ``where``; on the first build every row of fct_person_week counts once.
    Cells that sum to 0 are left out, so a night costs the rows it rewrote, not the panel. -#}
{% macro panel_bidrag(columns, where='1 = 1') -%}
WITH raekker AS (
    SELECT {{ panel_uge() }}, forrige_status, status, 1 AS antal
    FROM {{ ref('int_person_week_ny') }}
    WHERE NOT {{ first_run() }}
    UNION ALL
    SELECT {{ panel_uge() }}, forrige_status, status, -1 AS antal
    FROM {{ ref('int_person_week_erstattet') }}
    WHERE NOT {{ first_run() }}
    UNION ALL
    -- first run: the whole panel as this load left it
    SELECT {{ panel_uge() }}, forrige_status, status, 1 AS antal
    FROM {{ ref('fct_person_week') }}
    WHERE {{ first_run() }}
)
SELECT
    {{ load_id() }} AS load_id,
    CAST({{ load_date() }} AS DATE) AS indlaest_dato,
    {{ panel_uge() }},
    {{ columns }},
    CAST(sum(antal) AS BIGINT) AS antal
FROM raekker
WHERE {{ where }}
GROUP BY ALL
HAVING sum(antal) <> 0
{%- endmacro %}

{#- The mart over a panel_bidrag histogram: its cells summed over the loads, the empty ones left out. -#}
{% macro panel_sum(bidrag, columns) -%}
SELECT
    {{ panel_uge() }},
    {{ columns }},
    CAST(sum(antal) AS BIGINT) AS antal_personer
FROM {{ ref(bidrag) }}
GROUP BY ALL
HAVING sum(antal) > 0
{%- endmacro %}

{#- The week and kommune columns of the panel's histograms. -#}
{% macro panel_uge() -%}
uge_id, uge_start, uge_maaned, iso_aar, iso_uge, kommunekode
{%- endmacro %}

{#- A code list of data/reference as a relation of VARCHAR columns. -#}
{% macro reference_csv(name) -%}
    {{ return(adapter.dispatch('reference_csv', 'dsdw_warehouse')(name)) }}
{%- endmacro %}
{% macro default__reference_csv(name) -%}
{#- parse renders disabled models too (the derived models on Spark): fail only when a model really runs -#}
{%- if execute -%}
{{ exceptions.raise_compiler_error("reference_csv: no reader of CSV code lists for adapter " ~ adapter.type()) }}
{%- endif -%}
{%- endmacro %}
{% macro duckdb__reference_csv(name) -%}
read_csv('{{ env_var("DSDW_REFERENCE_DIR", "../data/reference") }}/{{ name }}', all_varchar = true, header = true)
{%- endmacro %}

{#- The function that fails the query with a message (a broken code list stops the build). -#}
{% macro raise_error_fn() -%}
    {{ return(adapter.dispatch('raise_error_fn', 'dsdw_warehouse')()) }}
{%- endmacro %}
{% macro default__raise_error_fn() -%}raise_error{%- endmacro %}
{% macro duckdb__raise_error_fn() -%}error{%- endmacro %}

{#- The sorted distinct union of two lists, NULL when both are NULL (dim_virksomhed's merge). -#}
{% macro list_union(a, b) -%}
    {{ return(adapter.dispatch('list_union', 'dsdw_warehouse')(a, b)) }}
{%- endmacro %}
{% macro default__list_union(a, b) -%}
CASE WHEN {{ a }} IS NULL AND {{ b }} IS NULL THEN NULL
     ELSE array_sort(array_distinct(concat(coalesce({{ a }}, array()), coalesce({{ b }}, array())))) END
{%- endmacro %}
{% macro duckdb__list_union(a, b) -%}
CASE WHEN {{ a }} IS NULL AND {{ b }} IS NULL THEN NULL
     ELSE list_sort(list_distinct(list_concat(coalesce({{ a }}, []), coalesce({{ b }}, [])))) END
{%- endmacro %}

{#- Delete the rows of the load's scope (e.g. the affected persons) before the model inserts them anew: the
    pre-hook of the scoped incremental models (dim_person, fct_person_week, fct_kategori_forloeb). -#}
{% macro delete_scope(column, scope) -%}
{% if is_incremental() %}DELETE FROM {{ this }} WHERE {{ column }} IN (SELECT {{ column }} FROM {{ scope }}){% endif %}
{%- endmacro %}

{#- fct_person_week's nightly delete: each changed person's weeks from its first changed week (int_person_fra_uge). -#}
{% macro delete_panel_weeks(scope) -%}
{% if is_incremental() %}DELETE FROM {{ this }} AS f USING {{ scope }} a WHERE f.person_key = a.person_key AND f.uge_start >= a.fra_uge{% endif %}
{%- endmacro %}

{#- A relation of this project that a model must read *before* it is rebuilt in the same build (the rows a
    scoped model replaces): not a ref, which would make a cycle.  NULL when it does not exist yet. -#}
{% macro existing_relation(name, schema='main') -%}
    {%- if execute -%}
        {{ return(adapter.get_relation(database=target.database, schema=schema, identifier=name)) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- One row per month from `a` to `b` (month starts) beside each row of the FROM clause before it, as `alias`. -#}
{% macro month_series(a, b, alias) -%}
    {{ return(adapter.dispatch('month_series', 'dsdw_warehouse')(a, b, alias)) }}
{%- endmacro %}
{% macro default__month_series(a, b, alias) -%}
LATERAL (SELECT explode(sequence({{ a }}, {{ b }}, INTERVAL 1 MONTH)) AS {{ alias }}) g
{%- endmacro %}
{% macro duckdb__month_series(a, b, alias) -%}
generate_series({{ a }}, {{ b }}, INTERVAL 1 MONTH) AS g({{ alias }})
{%- endmacro %}

{#- dbt-duckdb's incremental materialization of a Python model writes the model's rows to a
    `<model>__dbt_tmp<time>` table that it does not drop (it takes it for a temporary table): the post-hook
    drops it. -#}
{% macro drop_python_tmp(relation) -%}
    {#- only DuckDB runs the Python model (Spark builds the table from models/engines/, which shares its name) -#}
    {%- if execute and target.type == 'duckdb' -%}
        {%- set res = run_query("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                                ~ "AND schema_name = '" ~ relation.schema ~ "' AND table_name LIKE '"
                                ~ relation.identifier ~ "\\_\\_dbt\\_tmp%' ESCAPE '\\'") -%}
        {%- for t in res.columns[0].values() -%}
            {%- do run_query('DROP TABLE IF EXISTS ' ~ relation.schema ~ '."' ~ t ~ '"') -%}
        {%- endfor -%}
    {%- endif -%}
SELECT 1
{%- endmacro %}
