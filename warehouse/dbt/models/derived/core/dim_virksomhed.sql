{{ config(materialized='incremental', incremental_strategy=('append' if target.type == 'spark' else 'delete+insert'), unique_key='cvr', schema='main') }}
-- layer: core
-- grain: one row per CVR number seen in any version of the facts (a company register: no persons, no CPR)
-- keys: cvr
-- legal basis: kap. 23 Virksomhedsdata, § 86, nr. 1 (virksomheders brug af ansættelser på særlige vilkår og
-- praktik: fct_foranstaltning.udbyder_cvr, § 39, stk. 3; mentor_arbejdsgiver_cvr, § 39, stk. 6), § 86, nr. 2
-- (stillingsopslag på Jobnet: fct_stillingsopslag.cvr); fct_haendelse_akasse.virksomhed_cvr (kap. 20).
-- pnumre: the P-numbers (production units) reported with the CVR, NULL when none was; virksomhedsnavn: the
-- latest name from fct_stillingsopslag (the only fact that names companies), NULL when unknown;
-- branchekode: NULL = unknown (no reporter sends it; a CVR-register extract would fill it).
-- All versions count (also corrected or deleted ones), so every fact version's CVR resolves here.
-- Incremental (delete+insert by cvr): on the first build the SQL below reads every fact row; afterwards it reads
-- only the load's rows (first_run() false), and the CVRs they name are merged into the table (P-numbers and
-- sources united, the load's name wins, first/latest load kept).
-- nightly: the CVRs of the load's rows merged into the table (P-numbers and sources united, the load's name wins, first/latest load kept)
WITH ny AS (
WITH set_i_fakta AS (
    SELECT udbyder_cvr AS cvr, udbyder_pnummer AS pnummer, CAST(NULL AS STRING) AS navn,
           'foranstaltning' AS kilde, indlaest_dato, registreringstidspunkt
    FROM {{ ref('fct_foranstaltning') }} WHERE udbyder_cvr IS NOT NULL AND ({{ first_run() }} OR load_id = {{ load_id() }})
    UNION ALL
    SELECT mentor_arbejdsgiver_cvr, mentor_arbejdsgiver_pnummer, NULL, 'foranstaltning', indlaest_dato,
           registreringstidspunkt
    FROM {{ ref('fct_foranstaltning') }} WHERE mentor_arbejdsgiver_cvr IS NOT NULL AND ({{ first_run() }} OR load_id = {{ load_id() }})
    UNION ALL
    SELECT virksomhed_cvr, virksomhed_pnummer, NULL, 'haendelse_akasse', indlaest_dato, registreringstidspunkt
    FROM {{ ref('fct_haendelse_akasse') }} WHERE virksomhed_cvr IS NOT NULL AND ({{ first_run() }} OR load_id = {{ load_id() }})
    UNION ALL
    SELECT cvr, pnummer, virksomhedsnavn, 'stillingsopslag', indlaest_dato, registreringstidspunkt
    FROM {{ ref('fct_stillingsopslag') }} WHERE cvr IS NOT NULL AND ({{ first_run() }} OR load_id = {{ load_id() }})
)
SELECT
    cvr,
    {{ dsdw_list_distinct_sorted("pnummer") }} AS pnumre,
    max_by(navn, (indlaest_dato, registreringstidspunkt)) FILTER (WHERE navn IS NOT NULL) AS virksomhedsnavn,
    CAST(NULL AS STRING) AS branchekode,
    {{ dsdw_list_distinct_sorted("kilde") }} AS kilder,  -- Datasættene CVR-nummeret er set i.
    min(indlaest_dato) AS foerst_set_dato,  -- Første indlæsning med CVR-nummeret.
    max(indlaest_dato) AS senest_set_dato  -- Seneste indlæsning med CVR-nummeret.
FROM set_i_fakta
GROUP BY cvr
)
{% if is_incremental() %}
SELECT n.cvr, {{ list_union('o.pnumre', 'n.pnumre') }} AS pnumre,
       coalesce(n.virksomhedsnavn, o.virksomhedsnavn) AS virksomhedsnavn,
       coalesce(n.branchekode, o.branchekode) AS branchekode,
       {{ list_union('o.kilder', 'n.kilder') }} AS kilder,
       least(o.foerst_set_dato, n.foerst_set_dato) AS foerst_set_dato,
       greatest(o.senest_set_dato, n.senest_set_dato) AS senest_set_dato
FROM ny n LEFT JOIN {{ this }} o USING (cvr)
{% else %}
SELECT * FROM ny
{% endif %}
