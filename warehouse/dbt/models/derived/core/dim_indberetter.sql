{{ config(materialized='table', schema='main') }}
-- layer: core
-- grain: one row per reporter (the facts' indberetter): the 98 kommuner as jobcentre, the a-kasser, UVM, SSI and Jobnet
-- keys: indberetter
-- source: dim_kommune (kommunekode = the jobcentre's indberetter), dim_akasse (akassekode), and the three national
-- reporters of the contracts ('UVM', 'SSI', 'JOBNET').  indberetterart equals the contracts' `reporter`.
-- legal basis: kommuner kap. 2-13 (§ 52), a-kasser kap. 14-21 (§ 70), UVM kap. 24 (§ 88), SSI kap. 25 (§ 92),
-- Jobnet: joblog (§ 66) and stillingsopslag (§ 86, nr. 2; § 87)
SELECT
    kommunekode AS indberetter,  -- Indberetteren: kommunekode, a-kassekode, 'UVM', 'SSI' eller 'JOBNET'.
    'Jobcenter ' || kommune AS navn,
    'jobcenter' AS indberetterart,  -- Slags indberetter (kontrakternes reporter): jobcenter, akasse, uvm, ssi, jobnet.
    kommunekode,
    CAST(NULL AS STRING) AS akassekode,
    'BEK 912/2015 kap. 2-13 (kommunens indberetning, § 52); kode: DST kommunekode' AS kilde
FROM {{ ref('dim_kommune') }}
UNION ALL
SELECT
    akassekode,
    akasse,
    'akasse',
    NULL,
    akassekode,
    'BEK 912/2015 kap. 14-21 (arbejdsløshedskassens indberetning, § 70); kode: data/reference/akasser.csv'
FROM {{ ref('dim_akasse') }}
UNION ALL
SELECT * FROM (VALUES
    ('UVM', 'Undervisningsministeriet', 'uvm', NULL, NULL,
     'BEK 912/2015 kap. 24, § 88 (uddannelsesoplysninger)'),
    ('SSI', 'Statens Serum Institut', 'ssi', NULL, NULL,
     'BEK 912/2015 kap. 25, § 92 (sundhedsoplysninger)'),
    ('JOBNET', 'Jobnet (Styrelsen for Arbejdsmarked og Rekruttering)', 'jobnet', NULL, NULL,
     'BEK 912/2015 § 66 (joblog via Jobnet); § 86, nr. 2 og § 87 (stillingsopslag på Jobnet)')
) AS t(indberetter, navn, indberetterart, kommunekode, akassekode, kilde)
