{#- One row per combination of `columns` (a record key may have several columns); with `not_null`, no key column
    NULL either (a record key: one query instead of a unique and a not_null test per column). -#}
{% test dsdw_unique_columns(model, columns, not_null=false) %}
SELECT {{ columns | join(', ') }}, count(*) AS n FROM {{ model }} GROUP BY ALL HAVING count(*) > 1
{%- if not_null %}{% for c in columns %} OR {{ c }} IS NULL{% endfor %}{% endif %}
{% endtest %}

{#- No two spells of one partition (a person) overlap, where the order forbids it (e.g. § 16, stk. 6). -#}
{% test dsdw_no_overlap(model, start, end, partition_by, key) %}
SELECT a.{{ key }} AS a_key, b.{{ key }} AS b_key
FROM {{ model }} a JOIN {{ model }} b
  ON {% for p in partition_by %}a.{{ p }} = b.{{ p }} AND {% endfor %}a.{{ key }} < b.{{ key }}
 AND a.{{ start }} <= coalesce(b.{{ end }}, DATE '9999-12-31') AND b.{{ start }} <= coalesce(a.{{ end }}, DATE '9999-12-31')
{% endtest %}
