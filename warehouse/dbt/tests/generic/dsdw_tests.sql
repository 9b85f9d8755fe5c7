{#- One row per combination of `columns` (a record key may have several columns); with `not_null`, no key column
    NULL either (a record key: one query instead of a unique and a not_null test per column). Dispatched: DuckDB
    first compares count(*) with the count of distinct 64-bit hashes of the key and groups the key columns themselves
    only when they differ (a duplicate always makes them differ; a hash collision only costs the exact query), since
    grouping a 105M-row panel by its 64-character person_key was the largest part of a 5-year night's tests.
    `night_scope` (a relation or a parenthesised query, e.g. `touched_scope(...)`) with `night_scope_columns` (some of the key columns, all of them by default): on a
    night whose project is unchanged, only the rows whose key columns occur in that relation are tested: the keys
    the night may have written (an incremental model's delete-and-insert scope, or this load's load_id). Exact: a
    duplicate's rows share the key columns, so if one of them was written tonight all of them are in the scope,
    and a duplicate among rows not written tonight would have failed the night that wrote them (full builds and
    `dsdw warehouse check` test every row). -#}
{% test dsdw_unique_columns(model, columns, not_null=false, night_scope=none, night_scope_columns=none) %}
{{ unique_columns_sql(model, columns, not_null, night_scope, night_scope_columns) }}
{% endtest %}

{#- No two spells of one partition (a person) overlap, where the order forbids it (e.g. § 16, stk. 6). -#}
{% test dsdw_no_overlap(model, start, end, partition_by, key) %}
SELECT a.{{ key }} AS a_key, b.{{ key }} AS b_key
FROM {{ model }} a JOIN {{ model }} b
  ON {% for p in partition_by %}a.{{ p }} = b.{{ p }} AND {% endfor %}a.{{ key }} < b.{{ key }}
 AND a.{{ start }} <= coalesce(b.{{ end }}, DATE '9999-12-31') AND b.{{ start }} <= coalesce(a.{{ end }}, DATE '9999-12-31')
{% endtest %}
