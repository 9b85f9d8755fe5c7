{{ config(materialized='table', database='restricted', schema='main') }}
-- layer: core
-- database: restricted
-- grain: one row per diagnosis code (SKS form of 3-character ICD-10, D-prefixed) with its chapter
-- keys: diagnosekode
-- source: data/reference/icd10_diagnoser.csv (WHO ICD-10, realistic subset)
-- Health code lists live only in the restricted database beside the SSI facts (kap. 25, § 94, nr. 1): never published.
SELECT
    d.kode AS diagnosekode,
    d.navn,
    d.icd10,  -- WHO ICD-10-koden uden SKS' D-præfiks.
    d.kapitel AS diagnosekapitel,
    k.navn AS diagnosekapitel_navn,  -- Kapitlets navn (dim_diagnosekapitel).
    d.kilde
FROM {{ reference_csv('icd10_diagnoser.csv') }} d
LEFT JOIN {{ ref('dim_diagnosekapitel') }} k ON k.diagnosekapitel = d.kapitel
