{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per samtaletype (DFDG InterviewTypeIdentifier; codes >= 100 assigned by dsdw)
-- keys: samtaletype
-- source: data/reference/samtaletyper.csv; legal basis: § 20, stk. 1, nr. 4; § 25, stk. 1, nr. 5; § 63, stk. 1
-- udbyder: who holds the conversation (jobcenter, akasse or begge); dfdg_kode: the code is DFDG's own
SELECT
    kode AS samtaletype,
    navn,
    udbyder,
    beskrivelse,
    CAST(kode AS INTEGER) < 100 AS dfdg_kode,  -- Sand når koden er DFDG's egen (< 100); ellers tildelt af dsdw.
    kilde
FROM {{ reference_csv('samtaletyper.csv') }}
