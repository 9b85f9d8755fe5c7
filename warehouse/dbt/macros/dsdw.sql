{#- Hand-written macros of the warehouse's dbt project (the generated ones are in cpr.sql). -#}

{#- A model's schema is exactly its configured schema (staging, main), not <target>_<schema>. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}

{#- The one current-version rule of every fact (its history view, as-of macro and _aktuel table): the
    reporter's version number decides, the load date only breaks ties, so a version 1 arriving after its
    version 2 never becomes current. -#}
{% macro version_order(alias='f', descending=false) -%}
    {%- set cols = ['version', 'indlaest_dato', 'er_slettet', 'registreringstidspunkt', 'besked_id'] -%}
    {%- for c in cols %}{{ alias }}.{{ c }}{{ ' DESC' if descending }}{{ ', ' if not loop.last }}{% endfor -%}
{%- endmacro %}

{#- The current version of each record of `fact` among the rows `where` admits (deleted records
    excluded); `retracted` is the table of retracted payloads. `columns`: what of each version to return (all of
    it, or a DuckDB row id to fetch the winners by: current_touched); `er_slettet` must be among them. -#}
{% macro current_versions(fact, keys, retracted, where, columns='f.*') -%}
SELECT {{ star_except('_rn') }} FROM (
    SELECT {{ columns }}, row_number() OVER (PARTITION BY {% for k in keys %}f.{{ k }}{{ ', ' if not loop.last }}{% endfor %}
                                   ORDER BY {{ version_order('f', descending=true) }}) AS _rn
    FROM {{ fact }} f LEFT JOIN {{ retracted }} r ON r.payload_id = f._payload_id
    WHERE {{ where }}
) WHERE _rn = 1 AND NOT er_slettet
{%- endmacro %}

{#- The current version of each record this load touched (touched_records), for a night's `_aktuel`.  The
    touched keys are a materialized CTE: as an inline `IN (subquery)` DuckDB 2.0 read every column of every
    version before the semi-join (national, 5 years: 9-10 s for fct_joblog_jobsoegning's 13.1M versions, the
    night's largest model), against 0.3 s when the keys are computed first; the nights then grew with the history.
    Dispatched: on DuckDB the rule picks the winners from the versions' key and order columns only, and the
    winners (nearly all from this load's row groups, at the table's end) are then read whole by row id: reading
    every column of the touched records' older versions, scattered over the whole history, was most of the model
    (fct_joblog_jobsoegning_aktuel at 5 years: 2.0-3.4 s against 1.3-1.6 s, the same rows). -#}
{% macro current_touched(fact, keys, retracted) -%}
    {{ return(adapter.dispatch('current_touched', 'dsdw_warehouse')(fact, keys, retracted)) }}
{%- endmacro %}
{% macro default__current_touched(fact, keys, retracted) -%}
WITH touched AS {{ cte_materialized() }} ({{ touched_records(fact, keys[0], retracted) }})
{{ current_versions(fact, keys, retracted, current_of_touched(keys[0])) }}
{%- endmacro %}
{% macro duckdb__current_touched(fact, keys, retracted) -%}
WITH touched AS MATERIALIZED ({{ touched_records(fact, keys[0], retracted) }}),
winners AS MATERIALIZED (
{{ current_versions(fact, keys, retracted, current_of_touched(keys[0]), columns='f.rowid AS _rid, f.er_slettet') }}
)
SELECT * FROM {{ fact }} WHERE rowid IN (SELECT _rid FROM winners)
{%- endmacro %}

{#- current_versions' condition for the versions of the records in the CTE `touched` (retracted payloads left out). -#}
{% macro current_of_touched(key) -%}
r.indlaest_dato IS NULL AND f.{{ key }} IN (SELECT {{ key }} FROM touched)
{%- endmacro %}

{#- `MATERIALIZED` where the engine knows it (a CTE computed once, before the query that reads it). -#}
{% macro cte_materialized() -%}
    {{ return(adapter.dispatch('cte_materialized', 'dsdw_warehouse')()) }}
{%- endmacro %}
{% macro default__cte_materialized() -%}{%- endmacro %}
{% macro duckdb__cte_materialized() -%}MATERIALIZED{%- endmacro %}

{#- Records this load touched: a new version, or a version in a payload this load retracted. -#}
{% macro touched_records(fact, key, retracted) -%}
SELECT DISTINCT {{ key }} FROM {{ fact }} WHERE load_id = (SELECT load_id FROM {{ source('meta', 'current_load') }})
UNION SELECT DISTINCT f.{{ key }} FROM {{ fact }} f JOIN {{ retracted }} r ON r.payload_id = f._payload_id
WHERE r.indlaest_dato = (SELECT indlaest_dato FROM {{ source('meta', 'current_load') }})
{%- endmacro %}

{#- The records this load touched as a subquery: the night scope of a current-state table's record-key test (every
    row a night writes into `<fct>_aktuel` has its first key column in it; tests/generic/dsdw_tests.sql). -#}
{% macro touched_scope(fact, key, retracted) -%}
({{ touched_records(fact, key, retracted) }})
{%- endmacro %}

{#- The lake rows of one dataset a model reads: normally only the files of this load's new payloads
    (meta.load_increment, written by the load's ledger step), so a night reads the night's files; with
    `--vars '{full_lake: true}'` (a one-pass rebuild) the whole hive-partitioned dataset (the source's external
    location) and, when the plan has superseded payloads of it, the dataset's part of the lake's archive
    (`_archive/<dataset>`, relative to the lake as the source is), each row tagged with the load of its payload
    (`_load_id`, from meta.load_plan; payloads the plan lacks are left out). `typed_empty` gives every contract
    column its type even when a file predates a field. Dispatched: Spark reads the lake through views its runner registers (engines.sql). -#}
{% macro lake_rows(src, dataset, typed_empty) -%}
    {{ return(adapter.dispatch('lake_rows', 'dsdw_warehouse')(src, dataset, typed_empty)) }}
{%- endmacro %}
{% macro default__lake_rows(src, dataset, typed_empty) -%}
    {%- if var('full_lake', false) -%}
        {%- set n, archived = 0, 0 -%}
        {%- if execute -%}
            {%- set row = run_query("SELECT count(*), count(*) FILTER (WHERE archived) FROM "
                                    ~ source('meta', 'load_plan') ~ " WHERE dataset = '" ~ dataset ~ "'").rows[0] -%}
            {%- set n, archived = row[0], row[1] -%}
        {%- endif -%}
(SELECT l.*, p.load_id AS _load_id FROM (({{ typed_empty }}){% if n %} UNION ALL BY NAME SELECT * FROM {{ src }}{% endif %}
    {%- if archived %} UNION ALL BY NAME SELECT * FROM read_parquet('_archive/{{ dataset }}/*/*.parquet', hive_partitioning = true, union_by_name = true){% endif %}) l
 JOIN {{ source('meta', 'load_plan') }} p ON p.payload_id = l._payload_id)
    {%- else -%}
        {%- set files = [] -%}
        {%- if execute -%}
            {%- set res = run_query("SELECT DISTINCT lake_path FROM " ~ source('meta', 'load_increment')
                                    ~ " WHERE dataset = '" ~ dataset ~ "' AND lake_path IS NOT NULL ORDER BY 1") -%}
            {%- set files = res.columns[0].values() -%}
        {%- endif -%}
(({{ typed_empty }})
        {%- if files %} UNION ALL BY NAME SELECT * FROM read_parquet([
            {%- for f in files %}'{{ f | replace("'", "''") }}'{{ ', ' if not loop.last }}{% endfor -%}
        ], union_by_name = true){% endif %})
    {%- endif -%}
{%- endmacro %}

{#- The pseudonym of a CPR column: looked up in restricted.person, which the load's ledger step fills
    with HMAC-SHA256(pseudonym key, CPR) for every new CPR (the key never reaches dbt). Spark computes it
    with a function its runner registers in the session (engines.sql). -#}
{% macro pseudonym(col) -%}
    {{ return(adapter.dispatch('pseudonym', 'dsdw_warehouse')(col)) }}
{%- endmacro %}
{% macro default__pseudonym(col) -%}
(SELECT p.person_key FROM {{ source('restricted', 'person') }} p WHERE p.cpr = {{ col }})
{%- endmacro %}

{#- ART index on person_key (one person's category spells are a point lookup): DuckDB only; other engines
    (Spark) have no secondary indexes. Only fct_kategori_forloeb (a small table, rewritten per person): the facts and
    the weekly panel are kept sorted by person_key instead (pipelines/warehouse/clustering.py). -#}
{% macro person_key_index(relation) -%}
    {{ return(adapter.dispatch('person_key_index', 'dsdw_warehouse')(relation)) }}
{%- endmacro %}
{% macro default__person_key_index(relation) -%}
SELECT 1
{%- endmacro %}
{% macro duckdb__person_key_index(relation) -%}
{%- if dsdw_indexes_may_be_missing() -%}
CREATE INDEX IF NOT EXISTS {{ relation.identifier }}__person_key ON {{ relation }} (person_key)
{%- endif -%}
{%- endmacro %}

{#- The person_key index an older build made on a table that no longer has one (the facts and the weekly panel,
    now kept sorted by person_key: pipelines/warehouse/clustering.py; see generate.dbt_fact_sql); like the indexes,
    only when the project changed. -#}
{% macro drop_person_key_index(relation) -%}
    {{ return(adapter.dispatch('drop_person_key_index', 'dsdw_warehouse')(relation)) }}
{%- endmacro %}
{% macro default__drop_person_key_index(relation) -%}
SELECT 1
{%- endmacro %}
{% macro duckdb__drop_person_key_index(relation) -%}
{%- if dsdw_indexes_may_be_missing() -%}
DROP INDEX IF EXISTS {{ relation.database }}.{{ relation.schema }}.{{ relation.identifier }}__person_key
{%- endif -%}
{%- endmacro %}

{#- Whether a build may meet a table without its indexes: not on a night whose project is unchanged
    (DSDW_DBT_SCHEMA_CHECK=0, set by the runner; see materializations.sql), whose tables all exist with the
    indexes the build that created them made. An empty hook is not run (one statement less per model). -#}
{% macro dsdw_indexes_may_be_missing() -%}
    {{ return(dsdw_schema_check()) }}
{%- endmacro %}

{#- Whether this build may meet a model whose columns or indexes changed since the last build (the runner sets
    DSDW_DBT_SCHEMA_CHECK=0 on a night whose project is unchanged; materializations.sql). Read at run time only:
    an env_var read while dbt parses is recorded in the manifest, and a flipped value then makes dbt parse every
    model calling it again (74 files on the national bench's second night). -#}
{% macro dsdw_schema_check() -%}
    {{ return(not execute or env_var('DSDW_DBT_SCHEMA_CHECK', '1') != '0') }}
{%- endmacro %}

{#- The unique ART index on a current-state table's record key an older build made (`<table>__key`), dropped by
    the first build of the changed project like the person_key index above. It was the nights' guard against a
    second current version of a record, and at 5 years of history its deletes and inserts of random record keys
    were a quarter of a night (docs/warehouse_bench.md); the guard is now the `dsdw_unique_columns` test scoped to
    the records the night touched (`touched_scope`). -#}
{% macro drop_record_key_index(relation) -%}
    {{ return(adapter.dispatch('drop_record_key_index', 'dsdw_warehouse')(relation)) }}
{%- endmacro %}
{% macro default__drop_record_key_index(relation) -%}
SELECT 1
{%- endmacro %}
{% macro duckdb__drop_record_key_index(relation) -%}
{%- if dsdw_indexes_may_be_missing() -%}
DROP INDEX IF EXISTS {{ relation.database }}.{{ relation.schema }}.{{ relation.identifier }}__key
{%- endif -%}
{%- endmacro %}

{#- <fact>_as_of(d): the records as known after the load of date d (a DuckDB table macro; other engines
    query the _historik view with the same condition). -#}
{% macro as_of_macro(name, fact, keys, retracted) -%}
    {{ return(adapter.dispatch('as_of_macro', 'dsdw_warehouse')(name, fact, keys, retracted)) }}
{%- endmacro %}
{% macro default__as_of_macro(name, fact, keys, retracted) -%}
SELECT 1
{%- endmacro %}
{% macro duckdb__as_of_macro(name, fact, keys, retracted) -%}
{#- a macro keeps the catalog names it was written with: the analysts' copy of the build database has another
    name (warehouse.duckdb), so relations of the main database are named without it -#}
{%- set f = fact if fact.database == 'restricted' else fact.include(database=false) -%}
{%- set r = retracted if retracted.database == 'restricted' else retracted.include(database=false) -%}
CREATE OR REPLACE MACRO {{ name }}_as_of(d) AS TABLE
{{ current_versions(f, keys, r, "f.indlaest_dato <= d AND (r.indlaest_dato IS NULL OR r.indlaest_dato > d)") }}
{%- endmacro %}
