{{ config(materialized='incremental', incremental_strategy='append', schema='main', pre_hook="{{ delete_scope('person_key', ref('int_affected_persons')) }}") }}
-- depends_on: {{ ref('int_dim_person_erstattet') }} (reads the periods this load replaces before the pre-hook)
-- layer: core
-- scope: person_key
-- grain: one row per person and period (valid time) in which the person's kommunekode and akassekode are both
-- constant (slowly changing dimension, type 2); periods of one person are contiguous and never overlap
-- keys: person_key, gyldig_fra
-- gyldig_fra .. gyldig_til are inclusive days like the facts' valid time; gyldig_til NULL = the period is open
-- (the person's latest known period, er_aktuel).  A period may begin after the load date when a change was
-- reported ahead of time (e.g. an a-kasse afmelding up to 30 days ahead, § 17, stk. 7, nr. 2).
--
-- kommunekode: the bopæls-/opholdskommune.  The kommune that reports a kontaktgruppe spell is the opholdskommune
-- (§ 16, stk. 5: it changes the myndighedstilknytning), so on a day covered by a current spell
-- (fct_kontaktgruppe_aktuel) the kommune is that spell's; of overlapping spells the one that started last wins
-- (then the later registration).  On a day no spell covers, the kommune of the spell that ended last carries
-- forward: the person's last known opholdskommune, so transitions out of benefits are counted where the person
-- left from.  Before the first spell: NULL (unknown).
--
-- akassekode: the a-kasse membership, derived from the a-kasser's own reports (§ 53, stk. 1-2; § 17, stk. 6-7):
--   * a tilmelding by a-kasse X (fct_akasse_tilmelding_aktuel) shows membership of X from its startdato;
--   * a person is a member of one a-kasse at a time, so a later tilmelding by a-kasse Y moves the membership to Y
--     from Y's startdato (overflytning);
--   * an afmelding (§ 17, stk. 7) ends the registration as jobseeker, not the membership (a member who finds a job
--     stays a member), except for the afmeldingsårsager that end membership itself: 10 'Flyttet til udlandet'
--     and 11 'Død'.  Such an afmelding by the a-kasse the person is a member of ends the membership from its
--     afmeldingsdato (the first day not registered); on the same day a tilmelding wins (re-registration).
--   * membership before the first tilmelding the warehouse has seen is unknown (NULL), also when an afmelding
--     shows the person was registered earlier: its start is not known.
-- Persons: those with a current kontaktgruppe spell or a-kasse tilmelding; leading periods in which neither
-- kommune nor a-kasse is known are left out.  Spells whose slutdato precedes their startdato (rule KG-003) carry no
-- day and are ignored.
WITH nr AS (
    -- every affected person numbered once: the time lines below are partitioned, sorted and joined on this 64-bit
    -- number instead of the 64-character person_key, so the rows their windows sort (and spill) are narrow; the
    -- person_key comes back in the last join.  Exact (a number per key), unlike a hash.
    SELECT person_key, row_number() OVER (ORDER BY person_key) AS pnr FROM {{ ref('int_affected_persons') }}
), kg AS (
    SELECT n.pnr, k.kontaktgruppe_id, k.kommunekode, k.startdato, k.slutdato, k.registreringstidspunkt,
           k.foedselsaar, k.koen
    FROM {{ ref('fct_kontaktgruppe_aktuel') }} k JOIN nr n ON n.person_key = k.person_key
    WHERE k.startdato IS NOT NULL AND (k.slutdato IS NULL OR k.slutdato >= k.startdato)
), tilm AS (
    SELECT n.pnr, t.tilmelding_id, t.akassekode, t.startdato, t.registreringstidspunkt, t.foedselsaar, t.koen
    FROM {{ ref('fct_akasse_tilmelding_aktuel') }} t JOIN nr n ON n.person_key = t.person_key
    WHERE t.startdato IS NOT NULL
), ophoer AS (
    -- afmeldinger that end the membership itself (§ 17, stk. 7, nr. 3: årsag 10 udlandet, 11 død)
    SELECT n.pnr, a.akassekode, a.afmeldingsdato
    FROM {{ ref('fct_akasse_afmelding_aktuel') }} a JOIN nr n ON n.person_key = a.person_key
    WHERE a.afmeldingsaarsag IN ('10', '11') AND a.afmeldingsdato IS NOT NULL
), person AS (
    SELECT pnr, any_value(foedselsaar) AS foedselsaar, any_value(koen) AS koen
    FROM (SELECT pnr, foedselsaar, koen FROM kg UNION ALL SELECT pnr, foedselsaar, koen FROM tilm)
    GROUP BY pnr
), graenser AS (
    -- the days on which kommune or a-kasse may change
    SELECT pnr, startdato AS dato FROM kg
    UNION SELECT pnr, slutdato + 1 FROM kg WHERE slutdato IS NOT NULL
    UNION SELECT pnr, startdato FROM tilm
    UNION SELECT o.pnr, o.afmeldingsdato FROM ophoer o WHERE o.pnr IN (SELECT pnr FROM tilm)
), kg_nr AS (
    -- Linear in a person's spells and portable (DuckDB, Spark): the spells are numbered per person in the order
    -- that decides between them -- by start ("started last, then the later registration, then the id") and the
    -- ended ones by end ("ended last, then ...") -- and one time line per person holds the boundary days and the
    -- events before them (a spell starts, a spell has ended, a tilmelding starts, an ophør).  A running maximum of
    -- the numbers along the time line is the number of the spell that started (ended) last by each day, looked up
    -- with an equality join.  Only a day on which the spell that started last has ended while an earlier one still
    -- runs (overlapping spells, which § 16, stk. 6 does not foresee) looks at the person's spells covering it.
    -- (The form before joined every boundary day to every earlier spell of the person: quadratic in a person's
    -- spells; 5 years of national history spilled past 18.6 GiB, docs/scale-out.md.)  Spells without a kommune and
    -- tilmeldinger without an a-kasse are passed over, as max_by passed over a NULL value.
    SELECT pnr, kommunekode, startdato, coalesce(slutdato, DATE '9999-12-31') AS slut,
           row_number() OVER (PARTITION BY pnr ORDER BY startdato, registreringstidspunkt NULLS LAST,
                                                            kontaktgruppe_id NULLS LAST) AS start_nr,
           CASE WHEN slutdato IS NOT NULL THEN row_number() OVER (
               PARTITION BY pnr ORDER BY slutdato NULLS LAST, startdato, registreringstidspunkt NULLS LAST,
                                                kontaktgruppe_id NULLS LAST) END AS slut_nr
    FROM kg
    WHERE kommunekode IS NOT NULL
), tilm_nr AS (
    -- the tilmeldinger numbered per person in the order "started last, then the later registration"
    SELECT pnr, akassekode,
           row_number() OVER (PARTITION BY pnr ORDER BY startdato, registreringstidspunkt NULLS LAST,
                                                            tilmelding_id NULLS LAST) AS nr, startdato
    FROM tilm
), haendelse AS (
    -- one time line per person: the boundary days (art 2) and the events before them on the same day (art 1:
    -- a spell starts, a spell ended the day before, a tilmelding starts; art 0: an ophør, which a tilmelding
    -- on the same day overrides)
    SELECT pnr, dato, 2 AS art, CAST(NULL AS BIGINT) AS start_nr,
           CAST(NULL AS BIGINT) AS slut_nr, CAST(NULL AS BIGINT) AS tilm_nr, CAST(NULL AS BIGINT) AS medlem_nr,
           CAST(NULL AS STRING) AS ophoer_akasse
    FROM graenser
    UNION ALL SELECT pnr, startdato, 1, start_nr, NULL, NULL, NULL, NULL FROM kg_nr
    UNION ALL SELECT pnr, slut + 1, 1, NULL, slut_nr, NULL, NULL, NULL FROM kg_nr WHERE slut_nr IS NOT NULL
    UNION ALL SELECT pnr, startdato, 1, NULL, NULL, nr, CASE WHEN akassekode IS NOT NULL THEN nr END, NULL
    FROM tilm_nr
    UNION ALL SELECT pnr, afmeldingsdato, 0, NULL, NULL, NULL, NULL, akassekode FROM ophoer
    WHERE pnr IN (SELECT pnr FROM tilm)
), forloeb AS (
    -- running maxima along the time line, so every day sees the spells and tilmeldinger begun by then in one
    -- pass (linear in a person's events; no join of every day to every earlier spell)
    SELECT pnr, dato, art, ophoer_akasse,
           max(start_nr) OVER w AS start_nr,  -- the spell that started last
           max(slut_nr) OVER w AS slut_nr,    -- the spell that ended last
           max(tilm_nr) OVER w AS tilm_nr,    -- the tilmelding that started last: the membership's segment
           max(medlem_nr) OVER w AS medlem_nr  -- ... of those naming an a-kasse: the membership
    FROM haendelse
    WINDOW w AS (PARTITION BY pnr ORDER BY dato, art ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), ophoert AS (
    -- per membership segment: the first day an ophør by the a-kasse the person is a member of ends it
    SELECT f.pnr, f.tilm_nr, min(f.dato) AS ophoert_fra
    FROM forloeb f JOIN tilm_nr t ON t.pnr = f.pnr AND t.nr = f.medlem_nr
    WHERE f.art = 0 AND f.ophoer_akasse = t.akassekode
    GROUP BY f.pnr, f.tilm_nr
), dag AS (
    -- the spells started by the day number 1..start_nr, those ended before it 1..slut_nr (in their orders), so
    -- start_nr > slut_nr when a spell covers the day.  Kommune: when none covers it, the spell that ended last;
    -- when the spell that started last covers it, that spell; else (indlejret) see below
    SELECT f.pnr, f.dato,
           CASE WHEN f.start_nr IS NULL THEN NULL
                WHEN f.start_nr = coalesce(f.slut_nr, 0) THEN e.kommunekode
                WHEN s.slut >= f.dato THEN s.kommunekode
           END AS kommunekode,
           f.start_nr > coalesce(f.slut_nr, 0) AND s.slut < f.dato AS indlejret,
           CASE WHEN o.ophoert_fra <= f.dato THEN NULL ELSE t.akassekode END AS akassekode
    FROM forloeb f
    LEFT JOIN kg_nr s ON s.pnr = f.pnr AND s.start_nr = f.start_nr
    LEFT JOIN kg_nr e ON e.pnr = f.pnr AND e.slut_nr = f.slut_nr
    LEFT JOIN tilm_nr t ON t.pnr = f.pnr AND t.nr = f.medlem_nr
    LEFT JOIN ophoert o ON o.pnr = f.pnr AND o.tilm_nr = f.tilm_nr
    WHERE f.art = 2
), indlejret AS (
    -- the rare day on which the spell that started last has ended but an earlier one still runs (overlapping
    -- spells): of the spells covering it, the one that started last
    SELECT d.pnr, d.dato, max(k.start_nr) AS start_nr
    FROM dag d JOIN kg_nr k ON k.pnr = d.pnr AND k.startdato <= d.dato AND k.slut >= d.dato
    WHERE d.indlejret
    GROUP BY d.pnr, d.dato
), segment AS (
    -- the boundary days in order; ny: the day's kommune or a-kasse differs from the day before's (a new period
    -- begins), kendt: kommune or a-kasse has been known by the day (the leading days in which neither is are left
    -- out).  Over all days, not only the known ones: the first known day differs from the unknown one before it,
    -- so it begins a period either way.  One window spec for all four functions: one sort.
    SELECT pnr, dato AS fra, kommunekode, akassekode,
           CASE WHEN row_number() OVER w = 1
                  OR lag(kommunekode) OVER w IS DISTINCT FROM kommunekode
                  OR lag(akassekode) OVER w IS DISTINCT FROM akassekode THEN 1 ELSE 0 END AS ny,
           max(CASE WHEN kommunekode IS NOT NULL OR akassekode IS NOT NULL THEN 1 ELSE 0 END) OVER w AS kendt
    FROM (SELECT d.pnr, d.dato, d.akassekode, coalesce(k.kommunekode, d.kommunekode) AS kommunekode
          FROM dag d
          LEFT JOIN indlejret i ON i.pnr = d.pnr AND i.dato = d.dato
          LEFT JOIN kg_nr k ON k.pnr = i.pnr AND k.start_nr = i.start_nr) x
    WINDOW w AS (PARTITION BY pnr ORDER BY dato)
), periode AS (
    -- a period runs from the day that begins it to the day before the next period begins; the last is open
    SELECT pnr, kommunekode, akassekode, fra AS gyldig_fra,
           lead(fra) OVER (PARTITION BY pnr ORDER BY fra) - 1 AS gyldig_til
    FROM segment
    WHERE ny = 1 AND kendt = 1
)
SELECT
    n.person_key,
    pe.foedselsaar,
    pe.koen,
    p.kommunekode,
    p.akassekode,
    p.gyldig_fra,
    p.gyldig_til,
    p.gyldig_til IS NULL AS er_aktuel  -- Sand for personens seneste, åbne periode (gyldig_til NULL).
FROM periode p
JOIN person pe ON pe.pnr = p.pnr
JOIN nr n ON n.pnr = p.pnr
