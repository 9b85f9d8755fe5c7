{{ config(materialized='table', schema='staging') }}
-- The rows of fct_person_week this load writes: every week of the affected persons, the new weeks of everyone else.
WITH param AS (
    SELECT
        CAST(date_trunc('week', CAST({{ load_date() }} AS DATE)) AS DATE) AS load_uge,
        (SELECT CAST(date_trunc('week', max(l.indlaest_dato)) AS DATE)
         FROM {{ source('meta', 'load') }} l
         WHERE l.load_id IN (SELECT load_id FROM {{ source('meta', 'model_run') }} WHERE model = 'fct_person_week')) AS forrige_uge,
        (SELECT status FROM {{ ref('dim_panelstatus') }} WHERE er_uden_tilstand) AS uden_tilstand
), status_af AS (
    SELECT {{ dsdw_unnest("ydelsesgrupper") }} AS ydelsesgruppe, status, prioritet FROM {{ ref('dim_panelstatus') }}
), forloeb AS (
    SELECT f.person_key, f.kontaktgruppe_id, f.kontaktgruppe, f.startdato, f.slutdato,
           coalesce(s.status, {{ raise_error_fn() }}('ydelsesgruppe ' || coalesce(f.ydelsesgruppe, 'NULL')
                                    || ' has no status in panel_status.csv')) AS status,
           s.prioritet
    FROM {{ ref('fct_ydelsesforloeb') }} f
    LEFT JOIN status_af s ON s.ydelsesgruppe = f.ydelsesgruppe
    CROSS JOIN param
    WHERE f.startdato IS NOT NULL AND (f.slutdato IS NULL OR f.slutdato >= f.startdato)
      -- in a week already written only the affected persons get rows: read only their spells
      AND (param.forrige_uge IS NULL OR param.forrige_uge < param.load_uge
           OR f.person_key IN (SELECT person_key FROM {{ ref('int_affected_persons') }}))
), person_foerste AS (
    SELECT f.person_key, min(CAST(date_trunc('week', f.startdato) AS DATE)) AS foerste_uge
    FROM forloeb f
    GROUP BY f.person_key
), person_uger AS (
    -- the weeks to write per person: all of them for an affected person, else the weeks new since the last run
    SELECT pf.person_key, pf.foerste_uge,
           CASE WHEN a.person_key IS NOT NULL OR param.forrige_uge IS NULL
                THEN pf.foerste_uge ELSE greatest(pf.foerste_uge, param.forrige_uge + 7) END AS fra_uge,
           param.load_uge AS til_uge
    FROM person_foerste pf
    CROSS JOIN param
    LEFT JOIN (SELECT DISTINCT person_key FROM {{ ref('int_affected_persons') }}) a ON a.person_key = pf.person_key
), person AS (
    -- the status is computed from the week before fra_uge when the person has weeks before it: that week's
    -- status is the first written week's forrige_status
    SELECT *, CASE WHEN fra_uge > foerste_uge THEN fra_uge - 7 ELSE fra_uge END AS beregn_fra
    FROM person_uger
    WHERE fra_uge <= til_uge
), forloeb_uge AS (
    -- a spell's weeks (a generator in the select list: both engines' form of a lateral series)
    SELECT person_key, CAST(uge AS DATE) AS uge_start, status, prioritet, kontaktgruppe, startdato, kontaktgruppe_id
    FROM (
        SELECT f.person_key, f.status, f.prioritet, f.kontaktgruppe, f.startdato, f.kontaktgruppe_id,
               {{ dsdw_unnest((dsdw_date_series("greatest(CAST(date_trunc('week', f.startdato) AS DATE), p.beregn_fra)", "least(CAST(date_trunc('week', coalesce(f.slutdato, p.til_uge)) AS DATE), p.til_uge)", "INTERVAL 7 DAY"))) }} AS uge
        FROM forloeb f
        JOIN person p ON p.person_key = f.person_key
    ) s
), valgt AS (
    SELECT person_key, uge_start, status, kontaktgruppe,
           count(*) OVER (PARTITION BY person_key, uge_start) AS antal_forloeb
    FROM forloeb_uge
    QUALIFY row_number() OVER (PARTITION BY person_key, uge_start
                               ORDER BY prioritet, startdato DESC, kontaktgruppe_id) = 1
), uge AS (
    SELECT person_key, fra_uge, CAST(uge AS DATE) AS uge_start
    FROM (SELECT p.person_key, p.fra_uge, {{ dsdw_unnest((dsdw_date_series("p.beregn_fra", "p.til_uge", "INTERVAL 7 DAY"))) }} AS uge
          FROM person p) s
), status_uge AS (
    SELECT g.person_key, g.fra_uge, g.uge_start, coalesce(v.status, param.uden_tilstand) AS status,
           lag(coalesce(v.status, param.uden_tilstand)) OVER (PARTITION BY g.person_key ORDER BY g.uge_start)
               AS forrige_status,
           v.kontaktgruppe, v.antal_forloeb
    FROM uge g
    CROSS JOIN param
    LEFT JOIN valgt v ON v.person_key = g.person_key AND v.uge_start = g.uge_start
)
SELECT
    g.person_key,
    d.uge_id,
    d.iso_aar,
    d.iso_uge,
    d.uge_start,
    d.uge_maaned,
    g.status,
    g.forrige_status,
    g.kontaktgruppe,
    coalesce(g.antal_forloeb, 0) AS antal_forloeb,
    dp.kommunekode,
    dp.akassekode,
    CAST({{ load_date() }} AS DATE) AS indlaest_dato
FROM status_uge g
JOIN {{ ref('dim_dato') }} d ON d.dato = g.uge_start
LEFT JOIN {{ ref('dim_person') }} dp ON dp.person_key = g.person_key
    AND dp.gyldig_fra <= g.uge_start + 6 AND (dp.gyldig_til IS NULL OR dp.gyldig_til >= g.uge_start + 6)
WHERE g.uge_start >= g.fra_uge
