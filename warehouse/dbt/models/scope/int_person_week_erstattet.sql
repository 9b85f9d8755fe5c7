{{ config(materialized='table', schema='staging') }}
-- The rows of fct_person_week this load replaces (its affected persons' rows before the rebuild), read before
-- fct_person_week's pre-hook deletes them: mart_overgange_bidrag subtracts them.  Empty on the first build.
-- depends_on: {{ ref('int_person_week_ny') }}, {{ ref('int_affected_persons') }}
{%- set panel = existing_relation('fct_person_week') %}
{%- if panel is not none %}
SELECT * FROM {{ panel }} WHERE person_key IN (SELECT person_key FROM {{ ref('int_affected_persons') }})
{%- else %}
SELECT * FROM {{ ref('int_person_week_ny') }} WHERE false
{%- endif %}
