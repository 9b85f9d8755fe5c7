{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per uddannelseskode (dsdw's realistic subset; not UVM/DST UDD codes)
-- keys: uddannelseskode
-- source: data/reference/uddannelseskoder.csv; legal basis: § 90, nr. 2 (UVM's reporting); § 39, stk. 2 (plans)
SELECT
    kode AS uddannelseskode,
    navn,
    niveau,  -- Uddannelsesniveau (forberedende, gymnasial, erhvervsfaglig, videregående ...).
    beskrivelse,
    kilde
FROM {{ reference_csv('uddannelseskoder.csv') }}
