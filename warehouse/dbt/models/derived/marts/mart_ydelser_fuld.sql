{{ config(materialized='view', schema='main') }}
-- layer: mart
-- grain: one row per periode_type x periode_start x geo_niveau x geo_kode x ydelsesgruppe of the FULL grid (every kommune of dim_kommune, every region, hele landet; every ydelsesgruppe and 'i alt'), zeros included
-- keys: periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe
-- legal basis: § 15 (kontaktgrupper), § 16 (indberetning); what is published: docs/statistics.md
-- INTERNAL, not suppressed: the input of the publication (pipelines/warehouse/suppression.py).  Every cell is
-- here, so that a published grid has no missing row (a missing row would reveal a zero).  A kommunekode outside
-- dim_kommune counts in hele landet only.  daekket: the period begins on or after the first delivery of the
-- state data (kontaktgruppe, § 16), so the received data covers it; earlier periods hold only the spells still
-- open on that day (survivorship) and are not published.
WITH daekning AS (
    SELECT min(leveringsdato) AS fra FROM {{ source('meta', 'loaded_payload') }} WHERE dataset = 'kontaktgruppe'
), beregning AS (
    SELECT * FROM {{ ref('mart_ydelser_beregning') }}
    QUALIFY indlaesning_nr = max(indlaesning_nr) OVER (PARTITION BY periode_type, periode_start)
), perioder AS (
    SELECT DISTINCT periode_type, periode_start, periode_slut, periode, uger_i_perioden, er_foreloebig, horisont,
           indlaesning_nr
    FROM beregning
), geo AS (
    SELECT 'kommune' AS geo_niveau, kommunekode AS geo_kode, kommune AS geo_navn, region_kode AS overordnet_geo_kode
    FROM {{ ref('dim_kommune') }}
    UNION ALL
    SELECT DISTINCT 'region', region_kode, region, '000' FROM {{ ref('dim_kommune') }}
    UNION ALL
    SELECT 'land', '000', 'Hele landet', NULL
), grupper AS (
    SELECT ydelsesgruppe FROM {{ ref('dim_ydelsesgruppe') }} UNION ALL SELECT 'i alt'
)
SELECT
    p.periode_type,
    p.periode_start,
    p.periode_slut,
    p.periode,
    g.geo_niveau,
    g.geo_kode,
    g.geo_navn,
    g.overordnet_geo_kode,
    y.ydelsesgruppe,
    coalesce(b.antal_personer, 0) AS antal_personer,
    CASE WHEN p.uger_i_perioden > 0 THEN coalesce(b.ydelsesuger, 0) / p.uger_i_perioden END AS fuldtidspersoner,
    coalesce(b.tilgang, 0) AS tilgang,
    coalesce(b.afgang, 0) AS afgang,
    p.uger_i_perioden,
    coalesce(b.ydelsesuger, 0) AS ydelsesuger,
    p.er_foreloebig,
    p.horisont,
    p.indlaesning_nr,
    coalesce(p.periode_start >= d.fra, false) AS daekket,
    d.fra AS daekning_fra
FROM perioder p
CROSS JOIN geo g
CROSS JOIN grupper y
CROSS JOIN daekning d
LEFT JOIN beregning b
    ON b.periode_type = p.periode_type AND b.periode_start = p.periode_start AND b.geo_niveau = g.geo_niveau
   AND b.geo_kode = g.geo_kode AND b.ydelsesgruppe = y.ydelsesgruppe
