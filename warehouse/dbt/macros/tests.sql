{#- The generic tests' SQL where it differs by engine (tests/generic/dsdw_tests.sql). The failing rows of
    dsdw_unique_columns: every repeated key (with `not_null`, every NULL key too). -#}
{% macro unique_columns_sql(model, columns, not_null, night_scope=none, night_scope_columns=none) -%}
    {#- checked on every engine, though only DuckDB's nights use the scope: a YAML error shows on any target -#}
    {%- if night_scope is not none and ((night_scope_columns or columns) | reject('in', columns) | list) -%}
        {{ exceptions.raise_compiler_error('dsdw_unique_columns: night_scope_columns ' ~ night_scope_columns
                                           ~ ' must be key columns ' ~ columns
                                           ~ ' (a duplicate\'s rows share them, so the scope holds all of them)') }}
    {%- endif %}
    {{ return(adapter.dispatch('unique_columns_sql', 'dsdw_warehouse')(model, columns, not_null, night_scope,
                                                                        night_scope_columns)) }}
{%- endmacro %}
{% macro default__unique_columns_sql(model, columns, not_null, night_scope=none, night_scope_columns=none) -%}
SELECT {{ columns | join(', ') }}, count(*) AS n FROM {{ model }} GROUP BY ALL HAVING count(*) > 1
{%- if not_null %}{% for c in columns %} OR {{ c }} IS NULL{% endfor %}{% endif %}
{%- endmacro %}

{% macro duckdb__unique_columns_sql(model, columns, not_null, night_scope=none, night_scope_columns=none) -%}
{%- set any_null %}{% for c in columns %}{{ c }} IS NULL{% if not loop.last %} OR {% endif %}{% endfor %}{% endset -%}
{%- set sc = night_scope_columns or columns -%}
{%- if night_scope is not none and not dsdw_schema_check() %}
-- a night whose project is unchanged: only the keys the night may have written (night_scope); the rest of the
-- table passed this test on the night that wrote it and nothing else writes it. The rows a night writes have
-- their scope columns set (the night's load_id; a touched record's key, the only rows a delete-and-insert
-- writes), so NULL keys are looked for among them and only the scope's rows are grouped
SELECT {{ columns | join(', ') }}, count(*) AS n FROM {{ model }}
WHERE ({{ sc | join(', ') }}) IN (SELECT {{ sc | join(', ') }} FROM {{ night_scope }})
GROUP BY ALL HAVING count(*) > 1{% if not_null %} OR {{ any_null }}{% endif %}
{%- else %}
WITH kandidat AS MATERIALIZED (
    SELECT count(*) <> count(DISTINCT hash({{ columns | join(', ') }}))
    {%- if not_null %} OR coalesce(bool_or({{ any_null }}), false){% endif %} AS k
    FROM {{ model }}
)
SELECT {{ columns | join(', ') }}, count(*) AS n FROM {{ model }}
WHERE (SELECT k FROM kandidat)
GROUP BY ALL HAVING count(*) > 1{% if not_null %} OR {{ any_null }}{% endif %}
{%- endif %}
{%- endmacro %}
