{{ config(materialized='table', database='restricted', schema='main') }}
-- layer: core
-- database: restricted
-- grain: one row per ICD-10 chapter (I-XXII), with its code range
-- keys: diagnosekapitel
-- source: data/reference/icd10_kapitler.csv (WHO ICD-10; Danish labels dsdw's short forms)
-- Health code lists live only in the restricted database beside the SSI facts (kap. 25, §§ 92-95): never published.
SELECT
    kode AS diagnosekapitel,
    navn,
    fra AS kode_fra,  -- Første ICD-10-kode i kapitlet.
    til AS kode_til,  -- Sidste ICD-10-kode i kapitlet.
    kilde
FROM {{ reference_csv('icd10_kapitler.csv') }}
