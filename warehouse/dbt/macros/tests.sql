{#- The generic tests' SQL where it differs by engine (tests/generic/dsdw_tests.sql). The failing rows of
    dsdw_unique_columns: every repeated key (with `not_null`, every NULL key too). -#}
{% macro unique_columns_sql(model, columns, not_null) -%}
    {{ return(adapter.dispatch('unique_columns_sql', 'dsdw_warehouse')(model, columns, not_null)) }}
{%- endmacro %}
{% macro default__unique_columns_sql(model, columns, not_null) -%}
SELECT {{ columns | join(', ') }}, count(*) AS n FROM {{ model }} GROUP BY ALL HAVING count(*) > 1
{%- if not_null %}{% for c in columns %} OR {{ c }} IS NULL{% endfor %}{% endif %}
{%- endmacro %}

{% macro duckdb__unique_columns_sql(model, columns, not_null) -%}
{%- set any_null %}{% for c in columns %}{{ c }} IS NULL{% if not loop.last %} OR {% endif %}{% endfor %}{% endset -%}
WITH kandidat AS MATERIALIZED (
    SELECT count(*) <> count(DISTINCT hash({{ columns | join(', ') }}))
    {%- if not_null %} OR coalesce(bool_or({{ any_null }}), false){% endif %} AS k
    FROM {{ model }}
)
SELECT {{ columns | join(', ') }}, count(*) AS n FROM {{ model }}
WHERE (SELECT k FROM kandidat)
GROUP BY ALL HAVING count(*) > 1{% if not_null %} OR {{ any_null }}{% endif %}
{%- endmacro %}
