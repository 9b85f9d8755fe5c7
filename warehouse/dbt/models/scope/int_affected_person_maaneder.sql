{{ config(materialized='table', schema='staging') }}
-- Months whose state statistics this load changed, per person: for each changed spell the days covered by
-- exactly one of its version before the load and after it (both whole when its kommune, group or person
-- changed), up to the end of the load month for an open spell.  mart_ydelser_beregning recounts these.
WITH h AS (
    SELECT last_day({{ load_date() }}) AS end_open
), pairs AS (
    SELECT o.person_key AS p1, o.gyldig_fra AS s1, coalesce(o.gyldig_til, h.end_open) AS e1,
           o.kontaktgruppe_id IS NULL AS o_gone,
           n.person_key AS p2, n.gyldig_fra AS s2, coalesce(n.gyldig_til, h.end_open) AS e2,
           n.kontaktgruppe_id IS NULL AS n_gone,
           o.kommunekode IS DISTINCT FROM n.kommunekode OR o.kontaktgruppe IS DISTINCT FROM n.kontaktgruppe
               OR o.person_key IS DISTINCT FROM n.person_key AS moved
    FROM {{ ref('int_state_changed_new') }} n
    FULL JOIN {{ ref('int_state_changed_old') }} o ON n.kontaktgruppe_id = o.kontaktgruppe_id
    CROSS JOIN h
), ranges AS (
    SELECT p1 AS p, s1 AS a, e1 AS b FROM pairs WHERE NOT o_gone AND (n_gone OR moved)
    UNION ALL SELECT p2, s2, e2 FROM pairs WHERE NOT n_gone AND (o_gone OR moved)
    UNION ALL SELECT p2, least(s1, s2), greatest(s1, s2) FROM pairs
              WHERE NOT o_gone AND NOT n_gone AND NOT moved AND s1 <> s2
    UNION ALL SELECT p2, least(e1, e2), greatest(e1, e2) FROM pairs
              WHERE NOT o_gone AND NOT n_gone AND NOT moved AND e1 <> e2
)
SELECT DISTINCT p AS person_key, CAST(date_trunc('month', m) AS DATE) AS maaned
FROM ranges CROSS JOIN h, {{ month_series("date_trunc('month', a)", "date_trunc('month', least(b, h.end_open))", 'm') }}
WHERE p IS NOT NULL AND a IS NOT NULL AND b IS NOT NULL AND a <= b
