{{ config(materialized='table', schema='staging') }}
-- The months whose state statistics this load changed (meta.load.affected_maaneder counts them).
SELECT DISTINCT maaned FROM {{ ref('int_affected_person_maaneder') }}
