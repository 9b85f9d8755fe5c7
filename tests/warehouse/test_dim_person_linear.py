"""dim_person's linear form (running maxima along a person's time line) gives the rows of its definition written
directly: every boundary day joined to every earlier spell and tilmelding of the person, ``max_by`` over them.

Why a test of its own: the tiny lakes rarely hold what the linear form handles in special ways -- overlapping and
nested spells (the spell that started last has ended while an earlier one runs), spells and tilmeldinger on the
same day, NULL kommune or registration, ophør (§ 17, stk. 7, nr. 3) before, on and after a tilmelding's day. Random
persons of five shapes, the model's SQL (warehouse/dbt/models/derived/core/dim_person.sql, as dbt compiles it
for a first build) against the direct definition.
"""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import pyarrow as pa

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


def _inputs(con: duckdb.DuckDBPyConnection, persons: int = 150, spells: int = 30, seed: int = 15) -> None:
    """Persons of five shapes (number mod 5): disjoint, adjacent, nested in one long spell, overlapping, and
    open or backwards spells; NULL kommune, registration and id now and then; same-day starts; tilmeldinger with
    ophør (årsag 10/11) and other afmeldinger around them."""
    r = random.Random(seed)
    kg, tl, af = [], [], []
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for p in range(persons):
        pk, mode, d = f"p{p:04d}", p % 5, dt.date(2024, 1, 1) + dt.timedelta(days=r.randint(0, 30))
        for i in range(spells):
            if mode == 0:
                s = d + dt.timedelta(days=r.randint(1, 9))
                e = s + dt.timedelta(days=r.randint(0, 8))
                d = e
            elif mode == 1:
                s, e = d, d + dt.timedelta(days=r.randint(0, 5))
                d = e + dt.timedelta(days=1)
            elif mode == 2:
                d += dt.timedelta(days=0 if i == 0 else r.randint(0, 5))
                s, e = d, d + dt.timedelta(days=spells * 6 if i == 0 else r.randint(0, 12))
            elif mode == 3:
                d += dt.timedelta(days=r.randint(0, 3))
                s, e = d, d + dt.timedelta(days=r.randint(0, 25))
            else:
                d += dt.timedelta(days=r.randint(0, 4))
                s, e = d, d + dt.timedelta(days=r.randint(-2, 20))
            e = None if r.random() < 0.1 else e
            reg = None if r.random() < 0.05 else t0 + dt.timedelta(seconds=r.randint(0, 2))
            kid = None if r.random() < 0.03 else f"k{p}-{r.randint(0, 9)}-{i}"
            kom = r.choice(["101", "147", "151", "751", None])
            kg.append((pk, kid, kom, s, e, reg, 1980 + p % 40, "MK"[p % 2]))
        d = dt.date(2024, 1, 1)
        for i in range(r.randint(0, 6)):
            d += dt.timedelta(days=r.randint(0, 25))
            tl.append((pk, f"t{p}-{i}", r.choice(["01", "02", "03", None]), d,
                       None if r.random() < 0.05 else t0 + dt.timedelta(seconds=r.randint(0, 2)), 1980 + p % 40,
                       "MK"[p % 2]))
            for _ in range(r.randint(0, 2)):
                af.append((pk, r.choice(["01", "02", "03"]), d + dt.timedelta(days=r.randint(-3, 20)),
                           r.choice(["10", "11", "1"])))
    tables = {"fct_kontaktgruppe_aktuel": (("person_key", "kontaktgruppe_id", "kommunekode", "startdato", "slutdato",
                                            "registreringstidspunkt", "foedselsaar", "koen"), kg),
              "fct_akasse_tilmelding_aktuel": (("person_key", "tilmelding_id", "akassekode", "startdato",
                                                "registreringstidspunkt", "foedselsaar", "koen"), tl),
              "fct_akasse_afmelding_aktuel": (("person_key", "akassekode", "afmeldingsdato", "afmeldingsaarsag"), af)}
    for name, (cols, rows) in tables.items():
        con.register("t_in", pa.table({c: [row[i] for row in rows] for i, c in enumerate(cols)}))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM t_in")
        con.unregister("t_in")
    con.execute("CREATE SCHEMA IF NOT EXISTS staging")
    con.execute("CREATE TABLE staging.int_affected_persons AS SELECT person_key FROM fct_kontaktgruppe_aktuel "
                "UNION SELECT person_key FROM fct_akasse_tilmelding_aktuel")


def test_dim_person_linear_form_equals_its_definition(tmp_path) -> None:
    db = tmp_path / "build.duckdb"  # the load's database name: a process that loaded already has the project parsed
    model = compiled_sql("dim_person", db, tmp_path / "dbt")  # the model's relations in this database (before it opens)
    con = duckdb.connect(str(db))
    _inputs(con)
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
