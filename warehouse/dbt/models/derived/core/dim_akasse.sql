{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per a-kasse (arbejdsløshedskasse)
-- keys: akassekode
-- source: data/reference/akasser.csv (kode_syntetisk: codes assigned by dsdw where STAR's are not public)
SELECT
    kode AS akassekode,
    navn AS akasse,
    beskrivelse,
    kode_syntetisk = 'true' AS kode_syntetisk,
    CAST(medlemmer AS INTEGER) AS medlemmer
FROM {{ reference_csv('akasser.csv') }}
