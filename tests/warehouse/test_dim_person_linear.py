"""dim_person's linear form (running maxima along a person's time line) gives the rows of its definition written
directly: every boundary day joined to every earlier spell and tilmelding of the person, ``max_by`` over them.

Why a test of its own: the tiny lakes rarely hold what the linear form handles in special ways -- overlapping and
nested spells (the spell that started last has ended while an earlier one runs), spells and tilmeldinger on the
same day, NULL kommune or registration, ophør (§ 17, stk. 7, nr. 3) before, on and after a tilmelding's day. Random
persons of five shapes (bench/spell_cases.py, the generator bench/bench_spells_stress.py measures with), the model's
SQL (warehouse/dbt/models/derived/core/dim_person.sql, as dbt compiles it for a first build) against the direct
definition.
"""

from __future__ import annotations

import duckdb

from bench.spell_cases import write_spells
from pipelines.warehouse.dbt_runner import compiled_sql

# the definition as dim_person stated it before the linear form (quadratic in a person's spells): kommune and
# a-kasse of every boundary day from all earlier spells / tilmeldinger of the person
DIREKTE = """
WITH kg AS (
    SELECT * FROM fct_kontaktgruppe_aktuel
    WHERE startdato IS NOT NULL AND (slutdato IS NULL OR slutdato >= startdato)
), tilm AS (SELECT * FROM fct_akasse_tilmelding_aktuel WHERE startdato IS NOT NULL
), ophoer AS (
    SELECT person_key, akassekode, afmeldingsdato FROM fct_akasse_afmelding_aktuel
    WHERE afmeldingsaarsag IN ('10', '11') AND afmeldingsdato IS NOT NULL
), person AS (
    SELECT person_key, any_value(foedselsaar) AS foedselsaar, any_value(koen) AS koen
    FROM (SELECT person_key, foedselsaar, koen FROM kg UNION ALL SELECT person_key, foedselsaar, koen FROM tilm)
    GROUP BY person_key
), graenser AS (
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
), seneste AS (
    SELECT g.person_key, g.dato,
           max_by(t.akassekode, (t.startdato, t.registreringstidspunkt, t.tilmelding_id)) AS akassekode,
           max(t.startdato) AS tilmeldt_fra
    FROM graenser g JOIN tilm t ON t.person_key = g.person_key AND t.startdato <= g.dato
    GROUP BY g.person_key, g.dato
), medlem AS (
    SELECT s.person_key, s.dato,
           CASE WHEN EXISTS (SELECT 1 FROM ophoer o WHERE o.person_key = s.person_key AND o.akassekode = s.akassekode
                               AND o.afmeldingsdato > s.tilmeldt_fra AND o.afmeldingsdato <= s.dato)
                THEN NULL ELSE s.akassekode END AS akassekode
    FROM seneste s
), segment AS (
    SELECT g.person_key, g.dato AS fra, lead(g.dato) OVER (PARTITION BY g.person_key ORDER BY g.dato) - 1 AS til,
           k.kommunekode, m.akassekode
    FROM graenser g
    LEFT JOIN kommune k ON k.person_key = g.person_key AND k.dato = g.dato
    LEFT JOIN medlem m ON m.person_key = g.person_key AND m.dato = g.dato
), kendt AS (
    SELECT * FROM segment
    QUALIFY fra >= min(CASE WHEN kommunekode IS NOT NULL OR akassekode IS NOT NULL THEN fra END)
                      OVER (PARTITION BY person_key)
), periode AS (
    SELECT *, sum(ny) OVER (PARTITION BY person_key ORDER BY fra ROWS UNBOUNDED PRECEDING) AS nr
    FROM (SELECT *, CASE WHEN row_number() OVER w = 1 OR lag(kommunekode) OVER w IS DISTINCT FROM kommunekode
                           OR lag(akassekode) OVER w IS DISTINCT FROM akassekode THEN 1 ELSE 0 END AS ny
          FROM kendt WINDOW w AS (PARTITION BY person_key ORDER BY fra))
)
SELECT p.person_key, pe.foedselsaar, pe.koen, any_value(p.kommunekode) AS kommunekode,
       any_value(p.akassekode) AS akassekode, min(p.fra) AS gyldig_fra,
       CASE WHEN count(p.til) = count(*) THEN max(p.til) END AS gyldig_til, count(p.til) < count(*) AS er_aktuel
FROM periode p JOIN person pe ON pe.person_key = p.person_key
GROUP BY p.person_key, pe.foedselsaar, pe.koen, p.nr
"""


def test_dim_person_linear_form_equals_its_definition(tmp_path) -> None:
    db = tmp_path / "build.duckdb"  # the load's database name: a process that loaded already has the project parsed
    model = compiled_sql("dim_person", db, tmp_path / "dbt")  # the model's relations in this database (before it opens)
    con = duckdb.connect(str(db))
    write_spells(con, persons=150, spells=30, seed=15)
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    con.execute("CREATE TABLE staging.int_affected_persons AS FROM affected_persons")
    con.execute(f"CREATE TABLE ny AS {model}")
    con.execute(f"CREATE TABLE direkte AS {DIREKTE}")
    n = con.execute("SELECT count(*) FROM ny").fetchone()[0]
    differ = con.execute("SELECT (SELECT count(*) FROM (FROM ny EXCEPT ALL FROM direkte)) + "
                         "(SELECT count(*) FROM (FROM direkte EXCEPT ALL FROM ny))").fetchone()[0]
    assert n > 1000 and differ == 0
    # the input holds what the linear form treats specially: days on which the spell that started last has ended
    # while an earlier one runs, and memberships ended by an ophør of the a-kasse the person is a member of
    nested = con.execute("""SELECT count(*) FROM fct_kontaktgruppe_aktuel a JOIN fct_kontaktgruppe_aktuel b
        ON a.person_key = b.person_key AND a.startdato < b.startdato AND a.slutdato > b.slutdato""").fetchone()[0]
    ophoert = con.execute("""SELECT count(*) FROM direkte d JOIN fct_akasse_tilmelding_aktuel t
        ON t.person_key = d.person_key AND t.startdato <= d.gyldig_fra AND t.akassekode IS NOT NULL
        WHERE d.akassekode IS NULL""").fetchone()[0]
    assert nested > 100 and ophoert > 10
    # ... and the other shapes the generator promises: same-day starts, open and backwards spells, NULL kommune,
    # registration and id, tilmeldinger without a startdato or an a-kasse
    shapes = con.execute("""SELECT
        (SELECT count(*) FROM (SELECT person_key, startdato FROM fct_kontaktgruppe_aktuel GROUP BY ALL
                               HAVING count(*) > 1)),
        count(*) FILTER (WHERE slutdato IS NULL), count(*) FILTER (WHERE slutdato < startdato),
        count(*) FILTER (WHERE kommunekode IS NULL), count(*) FILTER (WHERE registreringstidspunkt IS NULL),
        count(*) FILTER (WHERE kontaktgruppe_id IS NULL),
        (SELECT count(*) FILTER (WHERE startdato IS NULL) FROM fct_akasse_tilmelding_aktuel),
        (SELECT count(*) FILTER (WHERE akassekode IS NULL) FROM fct_akasse_tilmelding_aktuel)
        FROM fct_kontaktgruppe_aktuel""").fetchone()
    assert min(shapes) > 0, shapes
