{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per samtaleform / kontaktform (personligt, telefonisk, digitalt, ...)
-- keys: samtaleform
-- source: data/reference/samtaleformer.csv; legal basis: § 20, stk. 1, nr. 3; § 25, stk. 1, nr. 4; § 63, stk. 1, nr. 5
-- dfdg_kode: the code is DFDG's own (6); 101-105 are dsdw's, kept apart from DFDG's unknown id space
SELECT
    kode AS samtaleform,
    navn,
    beskrivelse,
    CAST(kode AS INTEGER) < 100 AS dfdg_kode,  -- Sand når koden er DFDG's egen (< 100); ellers tildelt af dsdw.
    kilde
FROM {{ reference_csv('samtaleformer.csv') }}
