{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per fraværsårsag (the 35 reasons of Bilag 1)
-- keys: fravaersaarsag
-- source: data/reference/fravaersaarsager.csv and the Bilag 1 matrix data/reference/bilag1_fravaer.csv
-- legal basis: § 33 and Bilag 1 (which reason a kontaktgruppe may have); akasse_tilladt: § 64, stk. 2
-- kontaktgrupper: the kontaktgrupper (§ 15) Bilag 1 allows the reason for (some only with a qualifier, see
-- bilag1_fravaer.csv)
WITH bilag1 AS (
    SELECT aarsag_kode, {{ dsdw_list_ordered("CAST(kontaktgruppe AS STRING)", "kontaktgruppe") }} AS kontaktgrupper
    FROM (SELECT DISTINCT aarsag_kode, CAST(kontaktgruppe AS INTEGER) AS kontaktgruppe
          FROM {{ reference_csv('bilag1_fravaer.csv') }})
    GROUP BY aarsag_kode
)
SELECT
    a.kode AS fravaersaarsag,
    a.navn,
    a.beskrivelse,
    a.dfdg_absence_type_id,  -- DFDG's AbsenceTypeIdentifier, hvor den kendes.
    a.hjemmel,  -- Særlig hjemmel for årsagen (fx sygedagpengeloven), fra kodelisten.
    coalesce(a.akasse_tilladt = 'true', false) AS akasse_tilladt,  -- Sand når a-kassen må indberette årsagen (§ 64, stk. 2).
    b.kontaktgrupper,  -- Kontaktgrupper Bilag 1 tillader årsagen for.
    a.kilde
FROM {{ reference_csv('fravaersaarsager.csv') }} a
LEFT JOIN bilag1 b ON b.aarsag_kode = a.kode
