"""Synthetic kontaktgruppe spells, a-kasse tilmeldinger and afmeldinger of persons of five shapes: the one
generator behind dim_person's linear-form test (tests/warehouse/test_dim_person_linear.py) and the many-spells
bench (bench/bench_spells_stress.py).

Why one generator: the test proves the linear forms equal their definitions on the cases they treat specially,
the bench measures them on many spells per person; both must see the same shapes, or a case the test covers
could be missing from what the bench measures (and the other way round).  Shapes (person number mod 5):
disjoint, adjacent, nested in one long spell, overlapping, open or backwards (slutdato before startdato, rule
KG-003) spells; NULL kommune, registration and id now and then; same-day starts; tilmeldinger with afmeldinger
around them (now and then one without a startdato), some of them ophør (årsag 10/11, § 17, stk. 7, nr. 3), some not.
"""

from __future__ import annotations

import datetime as dt
import random

import duckdb
import pyarrow as pa

KG_COLS = ("person_key", "kontaktgruppe_id", "kommunekode", "startdato", "slutdato", "registreringstidspunkt",
           "foedselsaar", "koen", "kontaktgruppe")
TILM_COLS = ("person_key", "tilmelding_id", "akassekode", "startdato", "registreringstidspunkt", "foedselsaar",
             "koen")
AFM_COLS = ("person_key", "akassekode", "afmeldingsdato", "afmeldingsaarsag")


def spell_rows(persons: int, spells: int, seed: int = 15,
               start: dt.date = dt.date(2024, 1, 1)) -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
    """The rows of ``fct_kontaktgruppe_aktuel``, ``fct_akasse_tilmelding_aktuel`` and
    ``fct_akasse_afmelding_aktuel`` for ``persons`` persons with ``spells`` spells each and 0..max(6, spells/10)
    tilmeldinger; deterministic in ``seed``."""
    r = random.Random(seed)
    kg, tl, af = [], [], []
    t0 = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    for p in range(persons):
        pk, mode, d = f"p{p:04d}", p % 5, start + dt.timedelta(days=r.randint(0, 30))
        for i in range(spells):
            if mode == 0:  # disjoint
                s = d + dt.timedelta(days=r.randint(1, 9))
                e = s + dt.timedelta(days=r.randint(0, 8))
                d = e
            elif mode == 1:  # adjacent
                s, e = d, d + dt.timedelta(days=r.randint(0, 5))
                d = e + dt.timedelta(days=1)
            elif mode == 2:  # nested in the first, long spell
                d += dt.timedelta(days=0 if i == 0 else r.randint(0, 5))
                s, e = d, d + dt.timedelta(days=spells * 6 if i == 0 else r.randint(0, 12))
            elif mode == 3:  # overlapping, same-day starts
                d += dt.timedelta(days=r.randint(0, 3))
                s, e = d, d + dt.timedelta(days=r.randint(0, 25))
            else:  # overlapping, some backwards
                d += dt.timedelta(days=r.randint(0, 4))
                s, e = d, d + dt.timedelta(days=r.randint(-2, 20))
            e = None if r.random() < 0.1 else e
            reg = None if r.random() < 0.05 else t0 + dt.timedelta(seconds=r.randint(0, 2))
            kid = None if r.random() < 0.03 else f"k{p}-{r.randint(0, 9)}-{i}"
            kom = r.choice(["101", "147", "151", "751", None])
            kg.append((pk, kid, kom, s, e, reg, 1980 + p % 40, "MK"[p % 2], "1234"[i % 4]))
        d = start
        for i in range(r.randint(0, max(6, spells // 10))):
            d += dt.timedelta(days=r.randint(0, 25))
            tl.append((pk, f"t{p}-{i}", r.choice(["01", "02", "03", None]), None if (p + i) % 97 == 0 else d,
                       None if r.random() < 0.05 else t0 + dt.timedelta(seconds=r.randint(0, 2)), 1980 + p % 40,
                       "MK"[p % 2]))
            for _ in range(r.randint(0, 2)):
                af.append((pk, r.choice(["01", "02", "03"]), d + dt.timedelta(days=r.randint(-3, 20)),
                           r.choice(["10", "11", "1"])))
    return {"fct_kontaktgruppe_aktuel": (KG_COLS, kg), "fct_akasse_tilmelding_aktuel": (TILM_COLS, tl),
            "fct_akasse_afmelding_aktuel": (AFM_COLS, af)}


def write_spells(con: duckdb.DuckDBPyConnection, persons: int, spells: int, seed: int = 15) -> None:
    """The three tables of :func:`spell_rows` and ``affected_persons`` (everybody in them) in ``con``."""
    for name, (cols, rows) in spell_rows(persons, spells, seed).items():
        con.register("t_in", pa.table({c: [row[i] for row in rows] for i, c in enumerate(cols)}))
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM t_in")
        con.unregister("t_in")
    con.execute("CREATE OR REPLACE TABLE affected_persons AS SELECT person_key FROM fct_kontaktgruppe_aktuel "
                "UNION SELECT person_key FROM fct_akasse_tilmelding_aktuel")
