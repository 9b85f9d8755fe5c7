{{ config(materialized='table', schema='staging') }}
-- The dim_person periods this load replaces (its affected persons' rows before the rebuild), read before dim_person's
-- pre-hook deletes them: int_person_fra_uge compares them with the new periods.  Empty on the first build and in a
-- one-pass rebuild (every panel row is computed then).
-- depends_on: {{ ref('int_affected_persons') }}
{%- set dim = existing_relation('dim_person') %}
{%- if dim is not none and not var('full_lake', false) %}
SELECT person_key, gyldig_fra, gyldig_til, kommunekode, akassekode
FROM {{ dim }}
WHERE person_key IN (SELECT person_key FROM {{ ref('int_affected_persons') }})
{%- else %}
SELECT person_key, CAST(NULL AS DATE) AS gyldig_fra, CAST(NULL AS DATE) AS gyldig_til,
       CAST(NULL AS STRING) AS kommunekode, CAST(NULL AS STRING) AS akassekode
FROM {{ ref('int_affected_persons') }}
WHERE 1 = 0
{%- endif %}
