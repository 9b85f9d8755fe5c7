{{ config(materialized='view', schema='main') }}
-- layer: mart
-- grain: one row per maaned (month of the event date) x indberetter (kommune or a-kasse) x dataset x deadline rule
-- keys: maaned, indberetter_type, indberetter, dataset, regel_id
-- legal basis: each row's paragraf (the contract rule's §, e.g. § 16, stk. 1 for kontaktgruppe starts)
-- poster: received record versions the rule applies to (its change type and condition); poster_rettidige:
-- those registered at most max_forsinkelse_dage after the event (forsinkelse = registration date - event
-- date, the quality rule's own lag); median_forsinkelse_dage: the median lag (mean of the two middle values
-- for an even count: the first lag whose cumulative count reaches half, 2 * kum >= n, and the first past
-- half, 2 * kum > n; integer arithmetic, the same on DuckDB and Spark).  Late registrations of an old month
-- update that month when they arrive.
-- § 5 (datagenopretning): the same measures against the day the record reached us (the ledger's receive time
-- of its payload, mart_indberetning_ankomst_bidrag), which the reporter cannot set itself: poster_ankomst (the
-- records whose receive time is known), poster_rettidige_ankomst (received at most max_forsinkelse_dage after
-- the event), andel_rettidige_ankomst, median_ankomst_forsinkelse_dage.  A record registered in time but sent
-- late is timely in the first measure and late in the second.
WITH registrering AS (
    WITH h AS (
        SELECT haendelse_maaned AS maaned, indberetter_type, indberetter, dataset, regel_id, paragraf, alvorlighed, max_forsinkelse_dage,
               forsinkelse_dage, sum(antal) AS antal
        FROM {{ ref('mart_indberetning_rettidighed_bidrag') }}
        GROUP BY ALL
        HAVING sum(antal) > 0
    ), c AS (
        SELECT *,
               sum(antal) OVER (PARTITION BY maaned, indberetter_type, indberetter, dataset, regel_id
                                ORDER BY forsinkelse_dage ROWS UNBOUNDED PRECEDING) AS kum,
               sum(antal) OVER (PARTITION BY maaned, indberetter_type, indberetter, dataset, regel_id) AS n
        FROM h
    )
    SELECT
        c.maaned,
        c.indberetter_type,
        c.indberetter,
        CASE c.indberetter_type WHEN 'kommune' THEN k.kommune ELSE a.akasse END AS indberetter_navn,
        c.dataset,
        c.regel_id,
        c.paragraf,
        c.alvorlighed,
        c.max_forsinkelse_dage,
        CAST(sum(c.antal) AS BIGINT) AS poster,
        CAST(coalesce(sum(c.antal) FILTER (WHERE c.forsinkelse_dage <= c.max_forsinkelse_dage), 0) AS BIGINT) AS poster_rettidige,
        coalesce(sum(c.antal) FILTER (WHERE c.forsinkelse_dage <= c.max_forsinkelse_dage), 0) / sum(c.antal) AS andel_rettidige,
        (min(c.forsinkelse_dage) FILTER (WHERE 2 * c.kum >= c.n)
         + min(c.forsinkelse_dage) FILTER (WHERE 2 * c.kum > c.n)) / 2 AS median_forsinkelse_dage
    FROM c
    LEFT JOIN {{ ref('dim_kommune') }} k ON c.indberetter_type = 'kommune' AND k.kommunekode = c.indberetter
    LEFT JOIN {{ ref('dim_akasse') }} a ON c.indberetter_type = 'akasse' AND a.akassekode = c.indberetter
    GROUP BY c.maaned, c.indberetter_type, c.indberetter, k.kommune, a.akasse, c.dataset, c.regel_id, c.paragraf,
             c.alvorlighed, c.max_forsinkelse_dage
), ah AS (
    SELECT haendelse_maaned AS maaned, indberetter_type, indberetter, dataset, regel_id, max_forsinkelse_dage,
           ankomst_forsinkelse_dage, sum(antal) AS antal
    FROM {{ ref('mart_indberetning_ankomst_bidrag') }}
    WHERE ankomst_forsinkelse_dage IS NOT NULL
    GROUP BY ALL
    HAVING sum(antal) > 0
), ac AS (
    SELECT *,
           sum(antal) OVER (PARTITION BY maaned, indberetter_type, indberetter, dataset, regel_id
                            ORDER BY ankomst_forsinkelse_dage ROWS UNBOUNDED PRECEDING) AS kum,
           sum(antal) OVER (PARTITION BY maaned, indberetter_type, indberetter, dataset, regel_id) AS n
    FROM ah
), ankomst AS (
    SELECT maaned, indberetter_type, indberetter, dataset, regel_id,
           CAST(sum(antal) AS BIGINT) AS poster_ankomst,
           CAST(coalesce(sum(antal) FILTER (WHERE ankomst_forsinkelse_dage <= max_forsinkelse_dage), 0) AS BIGINT)
               AS poster_rettidige_ankomst,
           coalesce(sum(antal) FILTER (WHERE ankomst_forsinkelse_dage <= max_forsinkelse_dage), 0) / sum(antal)
               AS andel_rettidige_ankomst,
           (min(ankomst_forsinkelse_dage) FILTER (WHERE 2 * kum >= n)
            + min(ankomst_forsinkelse_dage) FILTER (WHERE 2 * kum > n)) / 2 AS median_ankomst_forsinkelse_dage
    FROM ac
    GROUP BY ALL
)
SELECT r.*, a.poster_ankomst, a.poster_rettidige_ankomst, a.andel_rettidige_ankomst,
       a.median_ankomst_forsinkelse_dage
FROM registrering r
LEFT JOIN ankomst a USING (maaned, indberetter_type, indberetter, dataset, regel_id)
