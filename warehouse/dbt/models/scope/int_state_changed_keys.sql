{{ config(materialized='table', schema='staging') }}
-- The kontaktgruppe spells (the statistics' states, § 15) this load changed: a new version, or a version in a
-- payload this load retracted.
SELECT DISTINCT kontaktgruppe_id FROM {{ ref('fct_kontaktgruppe') }} WHERE load_id = {{ load_id() }}
UNION
SELECT DISTINCT f.kontaktgruppe_id FROM {{ ref('fct_kontaktgruppe') }} f
JOIN {{ source('meta', 'retracted_payload') }} r ON r.payload_id = f._payload_id
WHERE r.load_id = {{ load_id() }}
