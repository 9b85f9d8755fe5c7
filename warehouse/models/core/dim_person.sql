-- model: dim_person
-- layer: core
-- materialization: scoped
-- scope: person_key
-- depends_on: fct_kontaktgruppe, fct_akasse_tilmelding, fct_akasse_afmelding
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
WITH kg AS (
    SELECT person_key, kontaktgruppe_id, kommunekode, startdato, slutdato, registreringstidspunkt, foedselsaar, koen
    FROM fct_kontaktgruppe_aktuel
    WHERE person_key IN (SELECT person_key FROM affected_persons)
      AND startdato IS NOT NULL AND (slutdato IS NULL OR slutdato >= startdato)
), tilm AS (
    SELECT person_key, tilmelding_id, akassekode, startdato, registreringstidspunkt, foedselsaar, koen
    FROM fct_akasse_tilmelding_aktuel
    WHERE person_key IN (SELECT person_key FROM affected_persons) AND startdato IS NOT NULL
), ophoer AS (
    -- afmeldinger that end the membership itself (§ 17, stk. 7, nr. 3: årsag 10 udlandet, 11 død)
    SELECT person_key, akassekode, afmeldingsdato
    FROM fct_akasse_afmelding_aktuel
    WHERE person_key IN (SELECT person_key FROM affected_persons)
      AND afmeldingsaarsag IN ('10', '11') AND afmeldingsdato IS NOT NULL
), person AS (
    SELECT person_key, any_value(foedselsaar) AS foedselsaar, any_value(koen) AS koen
    FROM (SELECT person_key, foedselsaar, koen FROM kg UNION ALL SELECT person_key, foedselsaar, koen FROM tilm)
    GROUP BY person_key
), graenser AS (
    -- the days on which kommune or a-kasse may change
    SELECT person_key, startdato AS dato FROM kg
    UNION SELECT person_key, slutdato + 1 FROM kg WHERE slutdato IS NOT NULL
    UNION SELECT person_key, startdato FROM tilm
    UNION SELECT o.person_key, o.afmeldingsdato FROM ophoer o WHERE o.person_key IN (SELECT person_key FROM tilm)
), kommune AS (
    SELECT g.person_key, g.dato,
           coalesce(
               max_by(k.kommunekode, (k.startdato, k.registreringstidspunkt, k.kontaktgruppe_id))
                   FILTER (WHERE k.slutdato IS NULL OR k.slutdato >= g.dato),
               max_by(k.kommunekode, (k.slutdato, k.startdato, k.registreringstidspunkt, k.kontaktgruppe_id))
                   FILTER (WHERE k.slutdato < g.dato)) AS kommunekode
    FROM graenser g JOIN kg k ON k.person_key = g.person_key AND k.startdato <= g.dato
    GROUP BY g.person_key, g.dato
), seneste_tilmelding AS (
    SELECT g.person_key, g.dato,
           max_by(t.akassekode, (t.startdato, t.registreringstidspunkt, t.tilmelding_id)) AS akassekode,
           max(t.startdato) AS tilmeldt_fra
    FROM graenser g JOIN tilm t ON t.person_key = g.person_key AND t.startdato <= g.dato
    GROUP BY g.person_key, g.dato
), medlem AS (
    SELECT s.person_key, s.dato,
           CASE WHEN EXISTS (SELECT 1 FROM ophoer o
                             WHERE o.person_key = s.person_key AND o.akassekode = s.akassekode
                               AND o.afmeldingsdato > s.tilmeldt_fra AND o.afmeldingsdato <= s.dato)
                THEN NULL ELSE s.akassekode END AS akassekode
    FROM seneste_tilmelding s
), segment AS (
    SELECT g.person_key, g.dato AS fra,
           lead(g.dato) OVER (PARTITION BY g.person_key ORDER BY g.dato) - 1 AS til,
           k.kommunekode, m.akassekode
    FROM graenser g
    LEFT JOIN kommune k ON k.person_key = g.person_key AND k.dato = g.dato
    LEFT JOIN medlem m ON m.person_key = g.person_key AND m.dato = g.dato
), kendt AS (
    SELECT * FROM segment
    QUALIFY fra >= min(CASE WHEN kommunekode IS NOT NULL OR akassekode IS NOT NULL THEN fra END)
                      OVER (PARTITION BY person_key)
), skift AS (
    SELECT *,
           CASE WHEN row_number() OVER w = 1
                  OR lag(kommunekode) OVER w IS DISTINCT FROM kommunekode
                  OR lag(akassekode) OVER w IS DISTINCT FROM akassekode THEN 1 ELSE 0 END AS ny
    FROM kendt
    WINDOW w AS (PARTITION BY person_key ORDER BY fra)
), periode AS (
    SELECT *, sum(ny) OVER (PARTITION BY person_key ORDER BY fra ROWS UNBOUNDED PRECEDING) AS nr FROM skift
)
SELECT
    p.person_key,
    pe.foedselsaar,
    pe.koen,
    any_value(p.kommunekode) AS kommunekode,
    any_value(p.akassekode) AS akassekode,
    min(p.fra) AS gyldig_fra,
    CASE WHEN count(p.til) = count(*) THEN max(p.til) END AS gyldig_til,
    count(p.til) < count(*) AS er_aktuel  -- Sand for personens seneste, åbne periode (gyldig_til NULL).
FROM periode p
JOIN person pe ON pe.person_key = p.person_key
GROUP BY p.person_key, pe.foedselsaar, pe.koen, p.nr
