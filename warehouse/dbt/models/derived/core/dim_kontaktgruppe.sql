{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per kontaktgruppe (§ 15; there is no kontaktgruppe 9)
-- keys: kontaktgruppe
-- source: data/reference/kontaktgrupper.csv (ydelsesgruppe: dsdw's mapping, see its kilde column)
SELECT
    kode AS kontaktgruppe,
    navn,
    paragraf,
    lov_grundlag,
    ydelsesgruppe,
    kilde
FROM {{ reference_csv('kontaktgrupper.csv') }}
