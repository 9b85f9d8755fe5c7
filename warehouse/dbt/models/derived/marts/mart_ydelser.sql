{{ config(materialized='view', schema='main') }}
-- layer: mart
-- grain: one row per periode_type ('maaned','kvartal','aar') x periode_start x geo_niveau ('kommune','region','land') x geo_kode x ydelsesgruppe (incl. 'i alt')
-- keys: periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe
-- legal basis: § 15 (kontaktgrupper), § 16 (indberetning); ydelsesgruppe: dsdw's mapping (data/reference/kontaktgrupper.csv)
-- INTERNAL, not suppressed: small counts are shown as they are.  The published form is mart_ydelser_publiceret
-- (small-cell suppression, pipelines/warehouse/suppression.py).  Definitions: docs/statistics.md.
-- antal_personer: distinct persons >= 1 day in the state in the period (regions/land: distinct, not sums);
-- fuldtidspersoner = ydelsesuger / uger_i_perioden, ydelsesuger = sum over persons of ISO weeks (a week
-- belongs to the month of its Thursday) with >= 1 day in the state; tilgang/afgang: persons whose merged
-- spell (same person and ydelsesgruppe; overlapping or adjacent spells merged) starts/ends in the period,
-- in the kommune of the spell starting/ending it.  er_foreloebig: the period was not over at horisont (the
-- load date whose data it shows); it then counts the days and begun weeks up to horisont.
SELECT
    b.periode_type,
    b.periode_start,
    b.periode_slut,
    b.periode,
    b.geo_niveau,
    b.geo_kode,
    CASE b.geo_niveau WHEN 'kommune' THEN k.kommune WHEN 'region' THEN r.region ELSE 'Hele landet' END AS geo_navn,
    CASE b.geo_niveau WHEN 'kommune' THEN k.region_kode WHEN 'region' THEN '000' END AS overordnet_geo_kode,
    b.ydelsesgruppe,
    b.antal_personer,
    b.fuldtidspersoner,
    b.tilgang,
    b.afgang,
    b.uger_i_perioden,
    b.ydelsesuger,
    b.er_foreloebig,
    b.horisont,
    b.indlaesning_nr
FROM {{ ref('mart_ydelser_beregning') }} b
LEFT JOIN {{ ref('dim_kommune') }} k ON b.geo_niveau = 'kommune' AND k.kommunekode = b.geo_kode
LEFT JOIN (SELECT DISTINCT region_kode, region FROM {{ ref('dim_kommune') }}) r ON b.geo_niveau = 'region' AND r.region_kode = b.geo_kode
-- a period nobody was in any state in keeps one all-zero row in the computation only (stats.TOM_PERIODE)
WHERE NOT (b.geo_niveau = 'land' AND b.ydelsesgruppe = 'i alt' AND b.antal_personer = 0 AND b.ydelsesuger = 0
           AND b.tilgang = 0 AND b.afgang = 0)
QUALIFY b.indlaesning_nr = max(b.indlaesning_nr) OVER (PARTITION BY b.periode_type, b.periode_start)
