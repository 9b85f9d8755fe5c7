{{ config(materialized='table', enabled=(target.type == 'spark')) }}
-- mart_ydelser_beregning on Spark: the full computation in SQL.  On DuckDB the model is a dbt-duckdb Python model
-- (derived/marts/mart_ydelser_beregning.py) that runs the same computation on its first build and moves cells by
-- delta on later nights (pipelines.warehouse.stats.maintain_ydelser); a Spark build is a full refresh from the lake
-- (`dsdw warehouse rebuild --target spark`), so the first build's SQL is all it needs.  This is that SQL
-- (pipelines.warehouse.stats.ydelser_model_sql) written with the
-- engine macros; tests/warehouse/test_spark_parity.py compares it with DuckDB's table row for row.
-- Definitions (docs/statistics.md): § 15 (kontaktgrupper), § 16 (indberetning); a week counts in the month of its
-- Thursday; tilgang/afgang count merged spells.
SELECT z.nr AS indlaesning_nr, y.*
FROM (
    WITH ys_hz AS (SELECT CAST({{ load_date() }} AS DATE) AS h),
    ys_maaneder AS (
        SELECT CAST(g AS DATE) AS g FROM (
            SELECT {{ dsdw_unnest(dsdw_date_series(
                "coalesce((SELECT CAST(date_trunc('month', min(startdato)) AS DATE) FROM " ~ ref('fct_ydelsesforloeb')
                ~ "), CAST(date_trunc('month', h) AS DATE))", "h", "INTERVAL 1 MONTH")) }} AS g
            FROM ys_hz) s
    ),
    ys_per0 AS (
        SELECT DISTINCT periode_type, periode_start, h
        FROM (SELECT 'maaned' AS periode_type, g AS periode_start FROM ys_maaneder
              UNION ALL SELECT 'kvartal', CAST(date_trunc('quarter', g) AS DATE) FROM ys_maaneder
              UNION ALL SELECT 'aar', CAST(date_trunc('year', g) AS DATE) FROM ys_maaneder) p
        CROSS JOIN ys_hz
        WHERE periode_start <= h
    ), ys_per1 AS (
        SELECT *, (CASE periode_type WHEN 'maaned' THEN {{ dsdw_date_add('periode_start', 1, 'month') }}
                                     WHEN 'kvartal' THEN {{ dsdw_date_add('periode_start', 3, 'month') }}
                                     ELSE {{ dsdw_date_add('periode_start', 12, 'month') }} END) - 1 AS periode_slut
        FROM ys_per0
    ), ys_per2 AS (
        SELECT *, (periode_start + CAST((11 - {{ dsdw_isodow('periode_start') }}) % 7 AS INTEGER)) AS t1,
               (periode_slut - CAST(({{ dsdw_isodow('periode_slut') }} + 3) % 7 AS INTEGER)) AS t2,
               h - CAST({{ dsdw_isodow('h') }} AS INTEGER) + 4 AS th  -- Thursday of the horizon's week
        FROM ys_per1
    ), ys_per AS (
        SELECT periode_type, periode_start, periode_slut, h,
               CASE periode_type WHEN 'maaned' THEN CAST(year(periode_start) AS STRING) || 'M'
                                                    || lpad(CAST(month(periode_start) AS STRING), 2, '0')
                    WHEN 'kvartal' THEN CAST(year(periode_start) AS STRING) || 'K' || CAST(quarter(periode_start) AS STRING)
                    ELSE CAST(year(periode_start) AS STRING) END AS periode,
               {{ dsdw_div(dsdw_date_diff('day', "DATE '1970-01-05'", 't1'), 7) }} AS w1,
               {{ dsdw_div(dsdw_date_diff('day', "DATE '1970-01-05'", 'least(t2, th)'), 7) }} AS w2,
               CASE WHEN least(t2, th) >= t1 THEN {{ dsdw_div(dsdw_date_diff('day', 't1', 'least(t2, th)'), 7) }} + 1
                    ELSE 0 END AS uger,
               least(periode_start, t1 - 3) - 1 AS lo, greatest(periode_slut, t2 + 3) + 1 AS hi,
               greatest(periode_slut + 1, (periode_slut - CAST(({{ dsdw_isodow('periode_slut') }} + 3) % 7 AS INTEGER)) + 3) > h
                   AS er_foreloebig
        FROM ys_per2
    ), ys_f AS (
        -- the spells known at the horizon; an end after it is no end yet (til NULL).  Distributed by person once:
        -- every later step groups or windows per person (with the few periods broadcast), so its rows stay in
        -- their partition instead of being shuffled (at 5 national years the period x person rows are hundreds of
        -- millions; shuffled, they filled the disk: docs/scale-out.md)
        SELECT /*+ REPARTITION(person_key) */ s.person_key, s.kommunekode, k.region_kode, s.ydelsesgruppe, CAST(s.startdato AS DATE) AS fra,
               CASE WHEN s.slutdato <= z.h THEN CAST(s.slutdato AS DATE) END AS til
        FROM (SELECT person_key, kommunekode, ydelsesgruppe, startdato, slutdato FROM {{ ref('fct_ydelsesforloeb') }}) s
        CROSS JOIN ys_hz z
        LEFT JOIN (SELECT kommunekode, region_kode FROM {{ ref('dim_kommune') }}) k ON k.kommunekode = s.kommunekode
        WHERE s.startdato <= z.h AND s.person_key IS NOT NULL AND s.ydelsesgruppe IS NOT NULL
          AND (s.slutdato IS NULL OR s.slutdato >= s.startdato)
    ), ys_pf AS (
        -- period x spell for the spells touching the period's window (its days, its ISO weeks, +-1 day)
        SELECT /*+ BROADCAST(p) */ p.periode_type, p.periode_start, p.periode_slut, p.w1, p.w2, f.person_key, f.kommunekode, f.region_kode,
               f.ydelsesgruppe, f.fra, f.til, coalesce(f.til, p.h) AS til_h,
               {{ dsdw_div(dsdw_date_diff('day', "DATE '1970-01-05'", 'f.fra'), 7) }} AS fw,
               {{ dsdw_div(dsdw_date_diff('day', "DATE '1970-01-05'", 'coalesce(f.til, p.h)'), 7) }} AS tw
        FROM ys_per p JOIN ys_f f ON f.fra <= p.hi AND coalesce(f.til, p.h) >= p.lo
    ), ys_pers AS (
        -- per person and cell: in the state on a day of the period?  which of its ISO weeks (bit i = week w1+i;
        -- a year has at most 53, so a BIGINT holds them): OR-ing the masks unions overlapping spells' weeks
        SELECT periode_type, periode_start, person_key, kommunekode, region_kode, ydelsesgruppe,
               bool_or(fra <= periode_slut AND til_h >= periode_start) AS i_perioden,
               bit_or(CASE WHEN greatest(fw, w1) <= least(tw, w2)
                           THEN ((CAST(1 AS BIGINT) << (least(tw, w2) - greatest(fw, w1) + 1)) - 1) << (greatest(fw, w1) - w1)
                           ELSE CAST(0 AS BIGINT) END) AS uger_maske
        FROM ys_pf GROUP BY ALL
    ), ys_au AS (
        -- one row per person and cell: the person's rows rolled up to kommune, region and land, each in its
        -- ydelsesgruppe and in 'i alt' (the six grouping sets as a join with six rows, not GROUPING SETS: Spark's
        -- Expand loses the distribution by person and would shuffle six rows per person and period)
        SELECT periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe, person_key,
               CAST(bool_or(i_perioden) AS INTEGER) AS antal, CAST(bit_count(bit_or(uger_maske)) AS BIGINT) AS uger
        FROM (SELECT /*+ BROADCAST(g) */ p.periode_type, p.periode_start, g.geo_niveau,
                     CASE g.geo_niveau WHEN 'kommune' THEN p.kommunekode WHEN 'region' THEN p.region_kode
                                       ELSE '000' END AS geo_kode,
                     CASE WHEN g.i_alt THEN 'i alt' ELSE p.ydelsesgruppe END AS ydelsesgruppe,
                     p.person_key, p.i_perioden, p.uger_maske
              FROM ys_pers p
              CROSS JOIN (VALUES ('kommune', false), ('kommune', true), ('region', false), ('region', true),
                                 ('land', false), ('land', true)) g(geo_niveau, i_alt)) r
        WHERE geo_kode IS NOT NULL
        GROUP BY periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe, person_key
        HAVING bool_or(i_perioden) OR bit_or(uger_maske) <> 0
    ), ys_fy AS (
        -- every spell in its ydelsesgruppe and in 'i alt', with its start and end as day numbers (an open end is
        -- 9999-12-31): Spark's RANGE frames need a number
        SELECT person_key, kommunekode, region_kode, fra, coalesce(til, DATE '9999-12-31') AS til_aab, ygrp,
               {{ dsdw_date_diff('day', "DATE '1970-01-01'", 'fra') }} AS fra_nr,
               {{ dsdw_date_diff('day', "DATE '1970-01-01'", "coalesce(til, DATE '9999-12-31')") }} AS til_nr
        FROM (SELECT /*+ BROADCAST(g) */ f.person_key, f.kommunekode, f.region_kode, f.fra, f.til,
                     CASE WHEN g.i_alt THEN 'i alt' ELSE f.ydelsesgruppe END AS ygrp
              FROM ys_f f CROSS JOIN (VALUES (false), (true)) g(i_alt)) u
    ), ys_fs AS (
        -- whether a spell starts / ends a merged spell is a property of the spell, not of a period: it starts one
        -- when no spell of the person and group that started before it reaches the day before its start, it ends
        -- one when no spell that ends after it starts by the day after its end (two windows: linear in the spells)
        SELECT *,
               max(til_nr) OVER (PARTITION BY person_key, ygrp ORDER BY fra_nr
                                 RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS til_foer,
               min(fra_nr) OVER (PARTITION BY person_key, ygrp ORDER BY til_nr
                                 RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS fra_efter
        FROM ys_fy
    ), ys_haend AS (
        -- tilgang: a spell starting in the period with no spell of the person and group on the day before
        -- (overlapping or adjacent spells are one merged spell); afgang: ending with none on the day after;
        -- placed in the kommune of the spell that starts the merged spell; a person entering twice in the
        -- period counts once, at the first entry (ties on the day: lowest kommunekode, NULL last)
        SELECT /*+ BROADCAST(p) */ p.periode_type, p.periode_start, x.person_key, x.ygrp, 'tilgang' AS art,
               min_by(named_struct('k', x.kommunekode, 'r', x.region_kode),
                      named_struct('a', x.fra, 'b', x.kommunekode IS NULL, 'c', x.kommunekode)) AS g
        FROM ys_fs x JOIN ys_per p ON x.fra BETWEEN p.periode_start AND p.periode_slut
        WHERE x.til_foer IS NULL OR x.til_foer < x.fra_nr - 1
        GROUP BY p.periode_type, p.periode_start, x.person_key, x.ygrp
        UNION ALL
        -- placed in the kommune of the spell that ends it; leaving twice: the last exit
        SELECT /*+ BROADCAST(p) */ p.periode_type, p.periode_start, x.person_key, x.ygrp, 'afgang',
               min_by(named_struct('k', x.kommunekode, 'r', x.region_kode),
                      named_struct('a', {{ dsdw_date_diff('day', 'x.til_aab', "DATE '9999-12-31'") }},
                                   'b', x.kommunekode IS NULL, 'c', x.kommunekode))
        FROM ys_fs x JOIN ys_per p ON x.til_aab BETWEEN p.periode_start AND p.periode_slut
        WHERE x.fra_efter IS NULL OR x.fra_efter > x.til_nr + 1
        GROUP BY p.periode_type, p.periode_start, x.person_key, x.ygrp
    ), ys_ta AS (
        -- the merged spell's kommune (and its region) gets the person's tilgang/afgang; a kommune outside
        -- dim_kommune has no region: only its kommune and land rows
        SELECT h.periode_type, h.periode_start, x.geo_niveau,
               CASE x.geo_niveau WHEN 'kommune' THEN h.g.k WHEN 'region' THEN h.g.r ELSE '000' END AS geo_kode,
               h.ygrp AS ydelsesgruppe, h.person_key, 0 AS antal, CAST(0 AS BIGINT) AS uger,
               CAST(h.art = 'tilgang' AS INTEGER) AS tilgang, CAST(h.art = 'afgang' AS INTEGER) AS afgang
        FROM ys_haend h CROSS JOIN (VALUES ('kommune'), ('region'), ('land')) x(geo_niveau)
    ), ys_b AS (
        SELECT periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe, person_key, antal, uger,
               0 AS tilgang, 0 AS afgang
        FROM ys_au WHERE geo_kode IS NOT NULL
        UNION ALL
        SELECT * FROM ys_ta WHERE geo_kode IS NOT NULL
    )
    SELECT p.periode_type, p.periode_start, p.periode_slut, p.periode, c.geo_niveau, c.geo_kode, c.ydelsesgruppe,
           CAST(coalesce(c.antal_personer, 0) AS BIGINT) AS antal_personer,
           CASE WHEN p.uger > 0 THEN coalesce(c.ydelsesuger, 0) / p.uger END AS fuldtidspersoner,
           CAST(coalesce(c.tilgang, 0) AS BIGINT) AS tilgang, CAST(coalesce(c.afgang, 0) AS BIGINT) AS afgang,
           p.uger AS uger_i_perioden, CAST(coalesce(c.ydelsesuger, 0) AS BIGINT) AS ydelsesuger,
           p.er_foreloebig, p.h AS horisont
    FROM (SELECT periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe, sum(antal_personer) AS antal_personer,
                 sum(ydelsesuger) AS ydelsesuger, sum(tilgang) AS tilgang, sum(afgang) AS afgang
          FROM (SELECT periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe, antal AS antal_personer,
                       uger AS ydelsesuger, tilgang, afgang FROM ys_b
                UNION ALL SELECT periode_type, periode_start, 'land', '000', 'i alt', 0, 0, 0, 0 FROM ys_per) u
          GROUP BY ALL) c
    JOIN ys_per p USING (periode_type, periode_start)
) y
CROSS JOIN (SELECT count(*) + 1 AS nr FROM {{ source('meta', 'load') }}) z
