{{ config(materialized='view', schema='main') }}
-- layer: core
-- grain: one row per current (latest, not deleted) kontaktgruppe spell, with its ydelsesgruppe
-- keys: kontaktgruppe_id
-- legal basis: § 15 (kontaktgrupper), § 16 (indberetning); ydelsesgruppe is dsdw's mapping (data/reference/kontaktgrupper.csv)
-- The states of the statistics (Jobindsats' ydelsesgrupper).  Open spells have slutdato NULL.
SELECT
    k.kontaktgruppe_id,
    k.person_key,
    k.kommunekode,
    k.kontaktgruppe,
    g.ydelsesgruppe,
    k.startdato,
    k.slutdato,
    k.foedselsaar,
    k.koen,
    k.indlaest_dato,
    k.registreret_dato
FROM {{ ref('fct_kontaktgruppe_aktuel') }} k
JOIN {{ ref('dim_kontaktgruppe') }} g ON g.kontaktgruppe = k.kontaktgruppe
