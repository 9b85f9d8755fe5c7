-- model: dim_sygedagpengekategori
-- layer: core
-- materialization: table
-- grain: one row per sygedagpengekategori (1-3, sygedagpengelovens § 12)
-- keys: sygedagpengekategori
-- source: data/reference/sygedagpengekategorier.csv; legal basis: § 35, nr. 5
SELECT
    kode AS sygedagpengekategori,
    navn,
    beskrivelse,
    kilde
FROM read_csv(getvariable('reference_dir') || '/sygedagpengekategorier.csv', all_varchar = true, header = true)
