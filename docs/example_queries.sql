-- Example queries on the analysts' warehouse (warehouse.duckdb, read-only).
--
-- Run one with `dsdw sql "<query>"`, or open the file in any DuckDB client:
--     duckdb -readonly data/demo/pipeline/warehouse.duckdb
-- Every query below is run by tests/warehouse/test_warehouse_dictionary.py against a small warehouse and must return
-- rows; each starts with a `-- name: <id>` line.  Columns: docs/warehouse_dictionary.md; ERD:
-- docs/warehouse_erd.md.  No query needs (or can see) a CPR number: persons are person_key.


-- name: fuldtidspersoner_kommune_ydelsesgruppe
-- Fuldtidspersoner per month, kommune and ydelsesgruppe, over the years, from mart_ydelser: the states are the
-- kontaktgruppe spells (§ 15; § 16, stk. 6, nr. 3-5) grouped into ydelsesgrupper, in the reporting
-- opholdskommune (§ 16, stk. 5).  fuldtidspersoner = ydelsesuger / uger_i_perioden (a person-week counts when
-- the person is in the state on >= 1 day of the ISO week; a week belongs to the month of its Thursday);
-- er_foreloebig: the month was not over at the last load.  Definitions: docs/statistics.md.
-- mart_ydelser is internal (no small-cell suppression); publish from mart_ydelser_publiceret.
-- Quarters and years: periode_type 'kvartal' / 'aar'; regions and the whole country: geo_niveau.
SELECT
    year(periode_start) AS aar,
    periode_start AS maaned,
    geo_kode AS kommunekode,
    geo_navn AS kommune,
    ydelsesgruppe,
    fuldtidspersoner,
    antal_personer,
    tilgang,
    afgang,
    er_foreloebig
FROM mart_ydelser
WHERE periode_type = 'maaned' AND geo_niveau = 'kommune' AND ydelsesgruppe <> 'i alt'
ORDER BY maaned, kommunekode, ydelsesgruppe;


-- name: person_historik
-- One person's full history across the facts, by person_key: the current version of every record
-- (fct_<dataset>_aktuel) in valid time.  Replace the `valgt` CTE by the person you follow, e.g.
--     valgt AS (SELECT '3f9c...' AS person_key)
-- Here: the person with the most kontaktgruppe spells (ties: the smallest person_key).
WITH valgt AS (
    SELECT person_key FROM fct_ydelsesforloeb
    GROUP BY person_key ORDER BY count(*) DESC, person_key LIMIT 1
)
SELECT * FROM (
    SELECT 'kontaktgruppe' AS datasaet, gyldig_fra, gyldig_til, kommunekode AS indberetter,
           'kontaktgruppe ' || kontaktgruppe AS hvad, registreret_dato, indlaest_dato
    FROM fct_kontaktgruppe_aktuel WHERE person_key IN (SELECT person_key FROM valgt)
    UNION ALL
    SELECT 'tilmelding', gyldig_fra, gyldig_til, kommunekode, 'tilmeldekategori ' || tilmeldekategori,
           registreret_dato, indlaest_dato
    FROM fct_tilmelding_aktuel WHERE person_key IN (SELECT person_key FROM valgt)
    UNION ALL
    SELECT 'akasse_tilmelding', gyldig_fra, gyldig_til, akassekode, 'tilmeldekategori ' || tilmeldekategori,
           registreret_dato, indlaest_dato
    FROM fct_akasse_tilmelding_aktuel WHERE person_key IN (SELECT person_key FROM valgt)
    UNION ALL
    SELECT 'samtale', gyldig_fra, gyldig_til, kommunekode, 'samtaletype ' || samtaletype || ', form ' || samtaleform,
           registreret_dato, indlaest_dato
    FROM fct_samtale_aktuel WHERE person_key IN (SELECT person_key FROM valgt)
    UNION ALL
    SELECT 'fravaer', gyldig_fra, gyldig_til, kommunekode, 'fraværsårsag ' || fravaersaarsag,
           registreret_dato, indlaest_dato
    FROM fct_fravaer_aktuel WHERE person_key IN (SELECT person_key FROM valgt)
    UNION ALL
    SELECT 'foranstaltning', gyldig_fra, gyldig_til, kommunekode, foranstaltningsart || ' ' || coalesce(aktiveringstype, ''),
           registreret_dato, indlaest_dato
    FROM fct_foranstaltning_aktuel WHERE person_key IN (SELECT person_key FROM valgt)
    UNION ALL
    SELECT 'sanktion', gyldig_fra, gyldig_til, kommunekode, 'afgørelse ' || afgoerelse,
           registreret_dato, indlaest_dato
    FROM fct_sanktion_aktuel WHERE person_key IN (SELECT person_key FROM valgt)
)
ORDER BY gyldig_fra, datasaet, hvad;


-- name: overgange_mellem_ydelsesgrupper
-- Flows between ydelsesgrupper, week to week, from the weekly panel fct_person_week (one row per person and ISO
-- week; status = the week's state from the kontaktgruppe spells, § 15 and § 16, stk. 6, nr. 3-5;
-- 'selvforsoerget' when no spell covers the week): persons whose status in one week differs from the week
-- before (forrige_status, stored in the panel: no window over the whole panel needed), per month of the later
-- week (uge_maaned: the month of its Thursday) and pair of statuses; a person counts once per month and pair.
-- Per week and kommune, ready-made: mart_overgange (next query).
SELECT
    p.uge_maaned AS maaned,
    p.forrige_status AS fra_status,
    fra.navn AS fra,
    p.status AS til_status,
    til.navn AS til,
    count(DISTINCT p.person_key) AS personer
FROM fct_person_week p
LEFT JOIN dim_panelstatus fra ON fra.status = p.forrige_status
LEFT JOIN dim_panelstatus til ON til.status = p.status
WHERE p.forrige_status <> p.status
GROUP BY ALL
ORDER BY maaned, personer DESC, fra_status, til_status;


-- name: overgange_per_maaned_kommune
-- The standard flows statistic, from mart_overgange: per month (uge_maaned, the month of the ISO week's
-- Thursday), opholdskommune (§ 16, stk. 5) and pair of panel statuses (the kontaktgruppe spells, § 15 and
-- § 16, stk. 6, nr. 3-5), the changes of status from one week to the next.  The mart holds only changes
-- (fra_status <> til_status) and counts person-weeks: a person who makes the same change twice in a month
-- counts twice.  It is kept up to date by each load (an additive delta), so 5 years take milliseconds.
SELECT
    o.uge_maaned AS maaned,
    o.kommunekode,
    k.kommune,
    o.fra_status,
    o.til_status,
    sum(o.antal_personer) AS overgange
FROM mart_overgange o
LEFT JOIN dim_kommune k ON k.kommunekode = o.kommunekode
GROUP BY ALL
ORDER BY maaned, o.kommunekode, overgange DESC, fra_status, til_status;


-- name: kontaktgruppe_as_of
-- Persons per kontaktgruppe on 5 October 2026 as the warehouse knew it after that day's load
-- (fct_kontaktgruppe_as_of: the versions current on load date 2026-10-05) and as it is known now
-- (fct_kontaktgruppe_aktuel).  The difference is late registrations and corrections: a spell must be
-- registered the day it starts (§ 16, stk. 1) and an end on its event day (§ 16, stk. 2).
WITH dengang AS (
    SELECT kontaktgruppe, count(DISTINCT person_key) AS personer
    FROM fct_kontaktgruppe_as_of(DATE '2026-10-05')
    WHERE gyldig_fra <= DATE '2026-10-05' AND (gyldig_til IS NULL OR gyldig_til >= DATE '2026-10-05')
    GROUP BY kontaktgruppe
), nu AS (
    SELECT kontaktgruppe, count(DISTINCT person_key) AS personer
    FROM fct_kontaktgruppe_aktuel
    WHERE gyldig_fra <= DATE '2026-10-05' AND (gyldig_til IS NULL OR gyldig_til >= DATE '2026-10-05')
    GROUP BY kontaktgruppe
)
SELECT
    g.kontaktgruppe,
    g.navn,
    g.ydelsesgruppe,
    coalesce(d.personer, 0) AS personer_kendt_2026_10_05,
    coalesce(n.personer, 0) AS personer_kendt_nu,
    coalesce(n.personer, 0) - coalesce(d.personer, 0) AS revision
FROM dim_kontaktgruppe g
LEFT JOIN dengang d ON d.kontaktgruppe = g.kontaktgruppe
LEFT JOIN nu n ON n.kontaktgruppe = g.kontaktgruppe
WHERE d.personer IS NOT NULL OR n.personer IS NOT NULL
ORDER BY CAST(g.kontaktgruppe AS INTEGER);


-- name: rettidighed_kommune
-- Timeliness per kommune: a new kontaktgruppe spell must be registered the day the person becomes covered
-- (§ 16, stk. 1; rule KG-001): the share of first versions (aendringstype 1) whose registreringsdato is the
-- startdato, and the lag in days of the late ones.  Every version ever received counts (fct_kontaktgruppe is
-- append-only), also those later corrected or deleted.
SELECT
    f.kommunekode,
    k.kommune,
    count(*) AS nye_forloeb,
    count(*) FILTER (WHERE f.registreringsdato <= f.startdato) AS rettidige,
    round(100.0 * rettidige / nye_forloeb, 1) AS pct_rettidige,
    max(date_diff('day', f.startdato, f.registreringsdato)) AS max_forsinkelse_dage,
    round(avg(date_diff('day', f.startdato, f.registreringsdato))
          FILTER (WHERE f.registreringsdato > f.startdato), 1) AS gns_forsinkelse_sene_dage
FROM fct_kontaktgruppe f
LEFT JOIN dim_kommune k ON k.kommunekode = f.kommunekode
WHERE f.aendringstype = '1'
GROUP BY ALL
ORDER BY pct_rettidige, f.kommunekode;
