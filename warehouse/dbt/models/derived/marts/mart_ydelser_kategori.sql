{{ config(materialized='view', schema='main') }}
-- layer: mart
-- grain: one row per maaned x geo_niveau ('kommune','region','land') x geo_kode x ydelsesgruppe (incl. 'i alt') x matchgruppe x visitationsgruppe x sygedagpengekategori (each 'uoplyst' when none is in force)
-- keys: maaned, geo_niveau, geo_kode, ydelsesgruppe, matchgruppe, visitationsgruppe, sygedagpengekategori
-- legal basis: § 2, nr. 3-5 (the categories); § 25, stk. 2 (matchgruppe and visitationsgruppe hold from the registration date); § 15, § 16 (kontaktgrupper, the states)
-- INTERNAL analysts' mart, NOT suppressed and NOT published (small counts are shown as they are; the
-- publication with small-cell suppression is mart_ydelser_publiceret, which does not break down by category).
-- antal_personer: distinct persons with >= 1 day in the ydelsesgruppe in the month (as mart_ydelser: the
-- kommune of the spell, its region, hele landet; regions/land and 'i alt' distinct, not sums), each counted in
-- the category values valid on the month's last day (the horizon, the latest load date, for the month still
-- running): the fct_kategori_forloeb spell with gyldig_fra <= that day <= gyldig_til, i.e. the value whose
-- registration date is on or before it (§ 25, stk. 2).  A person with no value in force then is 'uoplyst'.
-- Months from the first spell's month to the horizon's; spells starting after the horizon are left out.
-- matchgruppe: the matchgruppe (§ 2, nr. 3) in force on the month's last day, from its registration date (§ 25, stk. 2); 'uoplyst' when none
-- visitationsgruppe: the visitationsgruppe (§ 2, nr. 4) in force on that day, from its registration date (§ 25, stk. 2); 'uoplyst' when none
-- sygedagpengekategori: the sygedagpengekategori (§ 2, nr. 5; § 35, stk. 1, nr. 5) in force on that day; 'uoplyst' when none
WITH h AS (
    SELECT coalesce((SELECT max(indlaest_dato) FROM {{ source('meta', 'load') }}), current_date) AS horisont
), i_maaned AS (
    -- the spell's months from the calendar (a view: no generator, so an analyst's session needs no macro)
    SELECT DISTINCT y.person_key, y.kommunekode, y.ydelsesgruppe, m.maaned, h.horisont
    FROM {{ ref('fct_ydelsesforloeb') }} y
    CROSS JOIN h
    JOIN (SELECT DISTINCT maaned FROM {{ ref('dim_dato') }}) m
      ON m.maaned BETWEEN CAST(date_trunc('month', y.startdato) AS DATE)
                      AND CAST(date_trunc('month', least(coalesce(y.slutdato, h.horisont), h.horisont)) AS DATE)
    WHERE y.startdato <= h.horisont AND (y.slutdato IS NULL OR y.slutdato >= y.startdato)
), taelling AS (
    SELECT *, least(last_day(maaned), horisont) AS taelledag FROM i_maaned
), med_kategori AS (
    SELECT t.maaned, t.kommunekode, t.ydelsesgruppe, t.person_key,
           coalesce(km.vaerdi, 'uoplyst') AS matchgruppe,
           coalesce(kv.vaerdi, 'uoplyst') AS visitationsgruppe,
           coalesce(ks.vaerdi, 'uoplyst') AS sygedagpengekategori
    FROM taelling t
    LEFT JOIN {{ ref('fct_kategori_forloeb') }} km
        ON km.person_key = t.person_key AND km.kategori = 'matchgruppe'
       AND km.gyldig_fra <= t.taelledag AND (km.gyldig_til IS NULL OR t.taelledag <= km.gyldig_til)
    LEFT JOIN {{ ref('fct_kategori_forloeb') }} kv
        ON kv.person_key = t.person_key AND kv.kategori = 'visitationsgruppe'
       AND kv.gyldig_fra <= t.taelledag AND (kv.gyldig_til IS NULL OR t.taelledag <= kv.gyldig_til)
    LEFT JOIN {{ ref('fct_kategori_forloeb') }} ks
        ON ks.person_key = t.person_key AND ks.kategori = 'sygedagpengekategori'
       AND ks.gyldig_fra <= t.taelledag AND (ks.gyldig_til IS NULL OR t.taelledag <= ks.gyldig_til)
), geo AS (
    SELECT maaned, 'kommune' AS geo_niveau, kommunekode AS geo_kode, ydelsesgruppe, matchgruppe, visitationsgruppe,
           sygedagpengekategori, person_key
    FROM med_kategori
    UNION ALL
    SELECT m.maaned, 'region', k.region_kode, m.ydelsesgruppe, m.matchgruppe, m.visitationsgruppe,
           m.sygedagpengekategori, m.person_key
    FROM med_kategori m JOIN {{ ref('dim_kommune') }} k ON k.kommunekode = m.kommunekode
    UNION ALL
    SELECT maaned, 'land', '000', ydelsesgruppe, matchgruppe, visitationsgruppe, sygedagpengekategori, person_key
    FROM med_kategori
)
SELECT maaned, geo_niveau, geo_kode, ydelsesgruppe, matchgruppe, visitationsgruppe, sygedagpengekategori,
       count(DISTINCT person_key) AS antal_personer
FROM (SELECT * FROM geo
      UNION ALL
      SELECT maaned, geo_niveau, geo_kode, 'i alt', matchgruppe, visitationsgruppe, sygedagpengekategori, person_key
      FROM geo)
GROUP BY ALL
