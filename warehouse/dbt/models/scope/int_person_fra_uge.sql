{{ config(materialized='table', schema='staging') }}
-- Per affected person whose weekly panel rows may change: the first ISO week (its Monday) whose row may differ.
-- A panel row (fct_person_week) depends on the person's spells (status, forrige_status, kontaktgruppe,
-- antal_forloeb) and on dim_person's period in force on the week's Sunday (kommunekode, akassekode), nothing else
-- of the load.  So the first week that can change is the earlier of
--   * the week of the first day of the earliest month whose state this load changed for the person
--     (int_affected_person_maaneder: the days a changed spell covered before or after the load, both whole when its
--     group, kommune or person changed; month-exact, so a safe bound), and
--   * the week holding the first day on which the person's new dim_person periods give another kommunekode or
--     akassekode than the replaced ones (int_dim_person_erstattet); both are constant between period boundaries,
--     so that day is one of the boundaries.
-- fct_person_week then rewrites the person's weeks from there (the week before is read again for forrige_status),
-- not the whole history, and mart_overgange_bidrag counts only those.  An affected person with no change here
-- keeps every row.  Empty in a one-pass rebuild (every person is computed from the first week).
-- depends_on: {{ ref('int_affected_persons') }}
{%- if var('full_lake', false) %}
SELECT person_key, CAST(NULL AS DATE) AS fra_uge FROM {{ ref('int_affected_persons') }} WHERE 1 = 0
{%- else %}
WITH ny AS (
    SELECT d.person_key, d.gyldig_fra, d.gyldig_til, d.kommunekode, d.akassekode
    FROM {{ ref('dim_person') }} d
    WHERE d.person_key IN (SELECT person_key FROM {{ ref('int_affected_persons') }})
), gammel AS (
    SELECT person_key, gyldig_fra, gyldig_til, kommunekode, akassekode FROM {{ ref('int_dim_person_erstattet') }}
), graenser AS (
    SELECT person_key, gyldig_fra AS dato FROM ny
    UNION SELECT person_key, gyldig_til + 1 FROM ny WHERE gyldig_til IS NOT NULL
    UNION SELECT person_key, gyldig_fra FROM gammel
    UNION SELECT person_key, gyldig_til + 1 FROM gammel WHERE gyldig_til IS NOT NULL
), tilknytning AS (
    -- the first boundary where old and new attribution differ (no period = both unknown)
    SELECT b.person_key, min(b.dato) AS dato
    FROM graenser b
    LEFT JOIN ny n ON n.person_key = b.person_key AND n.gyldig_fra <= b.dato
        AND (n.gyldig_til IS NULL OR n.gyldig_til >= b.dato)
    LEFT JOIN gammel g ON g.person_key = b.person_key AND g.gyldig_fra <= b.dato
        AND (g.gyldig_til IS NULL OR g.gyldig_til >= b.dato)
    WHERE n.kommunekode IS DISTINCT FROM g.kommunekode OR n.akassekode IS DISTINCT FROM g.akassekode
    GROUP BY b.person_key
), fra AS (
    SELECT person_key, min(maaned) AS dato FROM {{ ref('int_affected_person_maaneder') }} GROUP BY person_key
    UNION ALL
    SELECT person_key, dato FROM tilknytning
)
SELECT person_key, CAST(date_trunc('week', min(dato)) AS DATE) AS fra_uge
FROM fra
WHERE person_key IS NOT NULL
GROUP BY person_key
{%- endif %}
