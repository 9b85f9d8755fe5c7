{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per visitationsgruppe (jobparat, aktivitetsparat, åbenlyst uddannelsesparat, uddannelsesparat)
-- keys: visitationsgruppe
-- source: data/reference/visitationsgrupper.csv; legal basis: § 17, stk. 8-9; § 25, stk. 1, nr. 9; Bilag 1
-- kontaktgrupper: the kontaktgrupper (§ 15) the group applies to
SELECT
    kode AS visitationsgruppe,
    navn,
    beskrivelse,
    split(kontaktgrupper, ';') AS kontaktgrupper,
    kilde
FROM {{ reference_csv('visitationsgrupper.csv') }}
