{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per foranstaltningsart, the sub-kinds of a beskæftigelsesforanstaltning (§ 39, stk. 3-8):
-- base (fields of all), virksomhedsrettet, kursus, mentor, hjaelpemiddel, personlig_assistance
-- keys: foranstaltningsart
-- source: data/reference/foranstaltningsarter.csv (the values of fct_foranstaltning.foranstaltningsart and of the
-- contract's sub_kind fields) and data/reference/aktiveringstyper.csv (aktiveringstyper: the aktiveringstyper,
-- § 39, stk. 3, nr. 14, that belong to the sub-kind; see dim_aktiveringstype)
WITH akt AS (
    SELECT foranstaltningsart, {{ dsdw_list_ordered("kode", "CAST(kode AS INTEGER)") }} AS aktiveringstyper
    FROM {{ reference_csv('aktiveringstyper.csv') }}
    GROUP BY foranstaltningsart
)
SELECT
    f.kode AS foranstaltningsart,
    f.navn,
    f.paragraf,
    f.beskrivelse,
    f.kode = 'base' AS er_faelles_felter,  -- Sand for 'base': kun de fælles felter (§ 39, stk. 3).
    coalesce(a.aktiveringstyper, {{ dsdw_empty_strings() }}) AS aktiveringstyper,  -- Aktiveringstyperne (§ 39, stk. 3, nr. 14) under foranstaltningsarten.
    f.kilde
FROM {{ reference_csv('foranstaltningsarter.csv') }} f
LEFT JOIN akt a ON a.foranstaltningsart = f.kode
