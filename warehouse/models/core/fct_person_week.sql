-- model: fct_person_week
-- layer: core
-- materialization: scoped
-- scope: person_key
-- keeps_replaced: true
-- depends_on: fct_ydelsesforloeb, dim_panelstatus, dim_person, dim_dato
-- grain: one row per person and ISO week, from the week of the person's first state (kontaktgruppe spell) up to
-- the week of the load date: the weekly event-history panel (DREAM-style forløbsdata)
-- keys: person_key, uge_id
-- legal basis: the states are the kontaktgruppe spells (§ 15; § 16, stk. 6, nr. 3-5) grouped into ydelsesgrupper
-- (data/reference/kontaktgrupper.csv); kommunekode is the opholdskommune (§ 16, stk. 5) and akassekode the
-- a-kasse membership (§ 53), both from dim_person.
--
-- status: a spell counts in every ISO week (Monday-Sunday) in which it covers at least one day.  Its ydelsesgruppe
-- maps to a status in data/reference/panel_status.csv (dim_panelstatus).  When several states overlap in one week
-- (a change of group, or overlapping spells), the status with the lowest prioritet wins; the order follows DST's
-- DOMYD tie-break order (pension > a-dagpenge > sygedagpenge > kontanthjælp > revalidering) with dsdw's other
-- groups placed beside their nearest DOMYD neighbour, then uden_ydelse; see the kilde column of panel_status.csv:
--   1 foertidspension, 2 dagpenge, 3 sygedagpenge, 4 jobafklaring, 5 ressourceforloeb, 6 ledighedsydelse,
--   7 fleksjob, 8 kontanthjaelp, 9 uddannelseshjaelp, 10 revalidering, 11 integration, 12 seniorjob,
--   13 beskaeftiget_med_indsats, 14 uden_ydelse, 99 selvforsoerget.
-- A week without any state gets the status without ydelsesgrupper (selvforsoerget: no public benefit
-- registered), so a transition out of a benefit is visible as a change of status.  A ydelsesgruppe without a
-- panel status fails the load.
-- forrige_status: the person's status in the preceding ISO week; NULL in the person's first panel week.  A flow
-- between statuses is a row with forrige_status <> status (mart_overgange counts them per week and kommune).
-- kontaktgruppe: the kontaktgruppe of the spell that gave the status (of two spells with the same status, the one
-- that started last); NULL in a week without a state.
-- antal_forloeb: the number of spells that touch the week (0 = no state, > 1 = overlap).
-- kommunekode: the opholdskommune (§ 16, stk. 5) of dim_person's period in force on the week's last day (Sunday).
-- akassekode: the a-kasse membership (§ 53) of dim_person's period in force on the week's last day (Sunday).
-- indlaest_dato: the load that (re)computed the row.
--
-- Incremental: the rows of the load's affected persons are rebuilt from their first state week; every other
-- person only gets the weeks after the week of the previous load that ran this model (meta.load/meta.model_run)
-- up to the load week; their first new week's forrige_status is recomputed from the facts (the status of the
-- week before, by the same rule), so the model never reads its own table.  A week's row depends only on the
-- facts, never on the load date, so rows once written stay right until the person's facts change (and the
-- person is affected again).  Spells are taken as reported, including days after the load date.  A full rebuild: drop the table and delete its meta.model_run rows
-- (the next load then writes every person's weeks), and rebuild mart_overgange_bidrag the same way.  The runner
-- keeps the rows a load replaces and inserts (keeps_replaced) for mart_overgange_bidrag.
WITH param AS (
    SELECT
        CAST(date_trunc('week', CAST(getvariable('load_date') AS DATE)) AS DATE) AS load_uge,
        (SELECT CAST(date_trunc('week', max(l.indlaest_dato)) AS DATE)
         FROM meta.load l
         WHERE l.load_id IN (SELECT load_id FROM meta.model_run WHERE model = 'fct_person_week')) AS forrige_uge,
        (SELECT status FROM dim_panelstatus WHERE er_uden_tilstand) AS uden_tilstand
), status_af AS (
    SELECT dsdw_unnest(ydelsesgrupper) AS ydelsesgruppe, status, prioritet FROM dim_panelstatus
), forloeb AS (
    SELECT f.person_key, f.kontaktgruppe_id, f.kontaktgruppe, f.startdato, f.slutdato,
           coalesce(s.status, error('ydelsesgruppe ' || coalesce(f.ydelsesgruppe, 'NULL')
                                    || ' has no status in panel_status.csv')) AS status,
           s.prioritet
    FROM fct_ydelsesforloeb f
    LEFT JOIN status_af s ON s.ydelsesgruppe = f.ydelsesgruppe
    CROSS JOIN param
    WHERE f.startdato IS NOT NULL AND (f.slutdato IS NULL OR f.slutdato >= f.startdato)
      -- in a week already written only the affected persons get rows: read only their spells
      AND (param.forrige_uge IS NULL OR param.forrige_uge < param.load_uge
           OR f.person_key IN (SELECT person_key FROM affected_persons))
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
    LEFT JOIN (SELECT DISTINCT person_key FROM affected_persons) a ON a.person_key = pf.person_key
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
               dsdw_unnest(dsdw_date_series(
                   greatest(CAST(date_trunc('week', f.startdato) AS DATE), p.beregn_fra),
                   least(CAST(date_trunc('week', coalesce(f.slutdato, p.til_uge)) AS DATE), p.til_uge),
                   INTERVAL 7 DAY)) AS uge
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
    FROM (SELECT p.person_key, p.fra_uge, dsdw_unnest(dsdw_date_series(p.beregn_fra, p.til_uge, INTERVAL 7 DAY)) AS uge
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
    CAST(getvariable('load_date') AS DATE) AS indlaest_dato
FROM status_uge g
JOIN dim_dato d ON d.dato = g.uge_start
LEFT JOIN dim_person dp ON dp.person_key = g.person_key
    AND dp.gyldig_fra <= g.uge_start + 6 AND (dp.gyldig_til IS NULL OR dp.gyldig_til >= g.uge_start + 6)
WHERE g.uge_start >= g.fra_uge
