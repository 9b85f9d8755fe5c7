{#- One row per combination of `columns` (a record key may have several columns); with `not_null`, no key column
    NULL either (a record key: one query instead of a unique and a not_null test per column). Dispatched: DuckDB
    first compares count(*) with the count of distinct 64-bit hashes of the key and groups the key columns themselves
    only when they differ (a duplicate always makes them differ; a hash collision only costs the exact query), since
    grouping a 105M-row panel by its 64-character person_key was the largest part of a 5-year night's tests. -#}
{% test dsdw_unique_columns(model, columns, not_null=false) %}
{{ unique_columns_sql(model, columns, not_null) }}
{% endtest %}

{#- No two spells of one partition (a person) overlap, where the order forbids it (e.g. § 16, stk. 6). -#}
{% test dsdw_no_overlap(model, start, end, partition_by, key) %}
SELECT a.{{ key }} AS a_key, b.{{ key }} AS b_key
FROM {{ model }} a JOIN {{ model }} b
  ON {% for p in partition_by %}a.{{ p }} = b.{{ p }} AND {% endfor %}a.{{ key }} < b.{{ key }}
 AND a.{{ start }} <= coalesce(b.{{ end }}, DATE '9999-12-31') AND b.{{ start }} <= coalesce(a.{{ end }}, DATE '9999-12-31')
{% endtest %}
