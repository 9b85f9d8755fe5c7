{{ config(materialized='table', schema='staging', person_spand='panel') }}
-- The rows of fct_person_week this load writes: the weeks of the affected persons from the first week their load
-- changed (int_person_fra_uge), the new weeks of everyone else.
-- Rules (fct_person_week's header): a spell (§ 15; § 16, stk. 6, nr. 3-5) counts in every ISO week it touches; of
-- a week's spells the lowest prioritet wins, then the later start, then the lower kontaktgruppe_id.
-- Why numbers: at national scale with 5 years the panel is ~140M person-weeks, and keyed by the 64-character
-- person_key its windows, grouping and joins spilled past 20 GB (docs/scale-out.md).  The persons are numbered once
-- (pid) and each person's spells once, in the order that picks a week's spell (nr: the lowest wins), so the
-- person-week rows carry three numbers: a week's spell is min(nr) of one grouping, and the person_key, status and
-- kontaktgruppe return by equality joins at the end.  Plain SQL on both engines.  Even so one pass of 5 years spilled
-- past the 20 GB cap, so a full build on DuckDB runs per person bucket (person_spand; docs/scale-out.md).
WITH param AS (
    SELECT
        CAST(date_trunc('week', CAST({{ load_date() }} AS DATE)) AS DATE) AS load_uge,
        -- the week of the last load that wrote the panel; none in a one-pass rebuild (var full_lake), which
        -- computes every person's every week
        {% if var('full_lake', false) -%}
        CAST(NULL AS DATE)
        {%- else -%}
        (SELECT CAST(date_trunc('week', max(l.indlaest_dato)) AS DATE)
         FROM {{ source('meta', 'load') }} l
         WHERE l.load_id IN (SELECT load_id FROM {{ source('meta', 'model_run') }} WHERE model = 'fct_person_week'))
        {%- endif %} AS forrige_uge,
        (SELECT status FROM {{ ref('dim_panelstatus') }} WHERE er_uden_tilstand) AS uden_tilstand
), status_nr AS (
    SELECT status, row_number() OVER (ORDER BY status) AS sn FROM {{ ref('dim_panelstatus') }}
), status_af AS (
    SELECT {{ dsdw_unnest("ydelsesgrupper") }} AS ydelsesgruppe, status, prioritet FROM {{ ref('dim_panelstatus') }}
), forloeb0 AS (
    SELECT f.person_key, f.kontaktgruppe_id, f.kontaktgruppe, f.startdato, f.slutdato,
           coalesce(s.status, {{ raise_error_fn() }}('ydelsesgruppe ' || coalesce(f.ydelsesgruppe, 'NULL')
                                    || ' has no status in panel_status.csv')) AS status,
           s.prioritet
    FROM {{ ref('fct_ydelsesforloeb') }} f
    LEFT JOIN status_af s ON s.ydelsesgruppe = f.ydelsesgruppe
    CROSS JOIN param
    -- a spell without a person gets no panel rows (the CPR is required: § 16, stk. 6, nr. 1)
    WHERE f.startdato IS NOT NULL AND (f.slutdato IS NULL OR f.slutdato >= f.startdato) AND f.person_key IS NOT NULL
      -- in a week already written only the persons with changed weeks get rows: read only their spells
      AND (param.forrige_uge IS NULL OR param.forrige_uge < param.load_uge
           OR f.person_key IN (SELECT person_key FROM {{ ref('int_person_fra_uge') }}))
      -- person_spand: on DuckDB a full build runs in person buckets (hash(person_key) % N = b;
      -- materializations.sql): every row below is one person's, pid numbers the bucket's persons
      AND {{ person_spand('f.person_key') }}
), person_nr AS (
    SELECT person_key, row_number() OVER (ORDER BY person_key) AS pid
    FROM (SELECT DISTINCT person_key FROM forloeb0) d
), forloeb AS (
    -- nr: the spell's place in the person's order of precedence (exact: kontaktgruppe_id is the record key)
    SELECT n.pid, f.kontaktgruppe, f.startdato, f.slutdato, sn.sn,
           row_number() OVER (PARTITION BY n.pid ORDER BY f.prioritet, f.startdato DESC, f.kontaktgruppe_id) AS nr
    FROM forloeb0 f
    JOIN person_nr n ON n.person_key = f.person_key
    JOIN status_nr sn ON sn.status = f.status
), person_foerste AS (
    SELECT pid, min(CAST(date_trunc('week', startdato) AS DATE)) AS foerste_uge
    FROM forloeb
    GROUP BY pid
), person_uger AS (
    -- the weeks to write per person: all of them on the first build; for a person the load changed, those from the
    -- first week it changed (int_person_fra_uge); and everyone's weeks new since the last run
    SELECT pf.pid, pf.foerste_uge,
           CASE WHEN param.forrige_uge IS NULL THEN pf.foerste_uge
                ELSE greatest(pf.foerste_uge, least(coalesce(a.fra_uge, param.forrige_uge + 7), param.forrige_uge + 7))
           END AS fra_uge,
           param.load_uge AS til_uge
    FROM person_foerste pf
    CROSS JOIN param
    LEFT JOIN (SELECT n.pid, fu.fra_uge FROM {{ ref('int_person_fra_uge') }} fu
               JOIN person_nr n ON n.person_key = fu.person_key) a ON a.pid = pf.pid
), person AS (
    -- the status is computed from the week before fra_uge when the person has weeks before it: that week's
    -- status is the first written week's forrige_status
    SELECT *, CASE WHEN fra_uge > foerste_uge THEN fra_uge - 7 ELSE fra_uge END AS beregn_fra
    FROM person_uger
    WHERE fra_uge <= til_uge
), uge_raekker AS (
    -- a spell's weeks (nr) and every week of the person from beregn_fra (nr NULL: the week exists even without a
    -- spell); a spell's weeks lie within the person's, so grouping both gives every week once
    SELECT pid, CAST(uge AS DATE) AS uge_start, nr
    FROM (
        SELECT f.pid, f.nr,
               {{ dsdw_unnest((dsdw_date_series("greatest(CAST(date_trunc('week', f.startdato) AS DATE), p.beregn_fra)", "least(CAST(date_trunc('week', coalesce(f.slutdato, p.til_uge)) AS DATE), p.til_uge)", "INTERVAL 7 DAY"))) }} AS uge
        FROM forloeb f
        JOIN person p ON p.pid = f.pid
    ) s
    UNION ALL
    SELECT pid, CAST(uge AS DATE) AS uge_start, CAST(NULL AS BIGINT) AS nr
    FROM (SELECT p.pid, {{ dsdw_unnest((dsdw_date_series("p.beregn_fra", "p.til_uge", "INTERVAL 7 DAY"))) }} AS uge
          FROM person p) s
), valgt AS (
    -- the week's spell: the lowest nr; antal_forloeb: the spells touching the week
    SELECT pid, uge_start, min(nr) AS nr, count(nr) AS antal_forloeb
    FROM uge_raekker
    GROUP BY pid, uge_start
), status_uge AS (
    SELECT v.pid, v.uge_start, v.antal_forloeb, f.kontaktgruppe, f.sn,
           -- the week before's status number, 0 for a week without a spell, NULL in the person's first week
           lag(coalesce(f.sn, 0)) OVER (PARTITION BY v.pid ORDER BY v.uge_start) AS forrige_sn
    FROM valgt v
    LEFT JOIN forloeb f ON f.pid = v.pid AND f.nr = v.nr
)
-- param (one row), the calendar and the status numbers (a few thousand rows at most) are broadcast: a hint Spark
-- follows whatever its size estimates say, so the week rows stay distributed by pid up to dim_person's join (a
-- comment to DuckDB)
SELECT /*+ BROADCAST(param, d, s, fs) */
    n.person_key,
    d.uge_id,
    d.iso_aar,
    d.iso_uge,
    d.uge_start,
    d.uge_maaned,
    coalesce(s.status, param.uden_tilstand) AS status,
    CASE WHEN g.forrige_sn IS NOT NULL THEN coalesce(fs.status, param.uden_tilstand) END AS forrige_status,
    g.kontaktgruppe,
    g.antal_forloeb,
    dp.kommunekode,
    dp.akassekode,
    CAST({{ load_date() }} AS DATE) AS indlaest_dato
FROM status_uge g
CROSS JOIN param
JOIN person p ON p.pid = g.pid
JOIN person_nr n ON n.pid = g.pid
JOIN {{ ref('dim_dato') }} d ON d.dato = g.uge_start
LEFT JOIN status_nr s ON s.sn = g.sn
LEFT JOIN status_nr fs ON fs.sn = g.forrige_sn
-- dim_person by the person's number, not its key: the week rows stay where they are (on Spark, distributed by pid
-- since forloeb's window) and only dim_person's rows move
LEFT JOIN (SELECT dn.pid, d0.kommunekode, d0.akassekode, d0.gyldig_fra, d0.gyldig_til
           FROM {{ ref('dim_person') }} d0 JOIN person_nr dn ON dn.person_key = d0.person_key) dp ON dp.pid = g.pid
    AND dp.gyldig_fra <= g.uge_start + 6 AND (dp.gyldig_til IS NULL OR dp.gyldig_til >= g.uge_start + 6)
WHERE g.uge_start >= p.fra_uge
