-- model: dim_matchgruppe
-- layer: core
-- materialization: table
-- grain: one row per matchgruppe (1 jobklar, 2 indsatsklar, 3 midlertidigt passiv)
-- keys: matchgruppe
-- source: data/reference/matchgrupper.csv; legal basis: § 23, stk. 1, nr. 1; Bilag 1
SELECT
    kode AS matchgruppe,
    navn,
    beskrivelse,
    kilde
FROM read_csv(getvariable('reference_dir') || '/matchgrupper.csv', all_varchar = true, header = true)
