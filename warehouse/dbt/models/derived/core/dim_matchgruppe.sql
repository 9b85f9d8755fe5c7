{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per matchgruppe (1 jobklar, 2 indsatsklar, 3 midlertidigt passiv)
-- keys: matchgruppe
-- source: data/reference/matchgrupper.csv; legal basis: § 23, stk. 1, nr. 1; Bilag 1
SELECT
    kode AS matchgruppe,
    navn,
    beskrivelse,
    kilde
FROM {{ reference_csv('matchgrupper.csv') }}
