{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per aktiveringstype (løntilskud, virksomhedspraktik, fleksjob, mentor, ...), under its foranstaltningsart
-- keys: aktiveringstype
-- source: data/reference/aktiveringstyper.csv; legal basis: § 39, stk. 3, nr. 14 (the field), lovgrundlag per type
SELECT
    a.kode AS aktiveringstype,
    a.navn,
    a.foranstaltningsart,
    f.navn AS foranstaltningsart_navn,  -- Foranstaltningsartens navn (dim_foranstaltningsart).
    a.lovgrundlag,  -- Lovgrundlaget for aktiveringstypen (fra kodelisten).
    a.beskrivelse,
    a.kilde
FROM {{ reference_csv('aktiveringstyper.csv') }} a
LEFT JOIN {{ ref('dim_foranstaltningsart') }} f ON f.foranstaltningsart = a.foranstaltningsart
