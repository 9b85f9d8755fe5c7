{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per sygedagpengekategori (1-3, sygedagpengelovens § 12)
-- keys: sygedagpengekategori
-- source: data/reference/sygedagpengekategorier.csv; legal basis: § 35, nr. 5
SELECT
    kode AS sygedagpengekategori,
    navn,
    beskrivelse,
    kilde
FROM {{ reference_csv('sygedagpengekategorier.csv') }}
