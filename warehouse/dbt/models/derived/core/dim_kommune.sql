{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per kommune (DST's municipality list), with region and landsdel
-- keys: kommunekode
-- source: data/reference/kommuner.csv (DST); indbyggere is the list's rounded figure
SELECT
    kode AS kommunekode,
    navn AS kommune,
    region_kode,
    region_navn AS region,
    landsdel_kode,
    landsdel_navn AS landsdel,
    CAST(indbyggere AS INTEGER) AS indbyggere
FROM {{ reference_csv('kommuner.csv') }}
