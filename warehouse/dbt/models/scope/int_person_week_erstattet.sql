{{ config(materialized='table', schema='staging') }}
-- The rows of fct_person_week this load replaces (its changed persons' weeks from int_person_fra_uge on, before the
-- rebuild), read before fct_person_week's pre-hook deletes them: mart_overgange_bidrag subtracts them.  Empty on the
-- first build.
-- depends_on: {{ ref('int_person_week_ny') }}, {{ ref('int_person_fra_uge') }}
{%- set panel = existing_relation('fct_person_week') %}
{%- if panel is not none %}
SELECT f.* FROM {{ panel }} f
JOIN {{ ref('int_person_fra_uge') }} a ON a.person_key = f.person_key AND f.uge_start >= a.fra_uge
{%- else %}
SELECT * FROM {{ ref('int_person_week_ny') }} WHERE false
{%- endif %}
