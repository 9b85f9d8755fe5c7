"""Which periods a load republishes (pipelines/warehouse/publication.py: schedule, publish), through the real
load hook on a small hand-made mart: an unchanged period keeps its last vintage (its cells are not written
again, its published flags are fixed in the audit of the periods that moved), a load that moves nothing makes
no vintage, and a preliminary period's moved figures are republished once per ISO week.  The independent
attacker (tests/attacker.py) holds every vintage: no hidden cell of either is narrower than GRAENSE."""

from __future__ import annotations

import datetime as dt
import logging
import random
from types import SimpleNamespace

import duckdb
import pytest
from attacker import Attack, width

from pipelines.warehouse import publication
from pipelines.warehouse.dbt_runner import plain_sql
from pipelines.warehouse.publication import vintage_sql
from pipelines.warehouse.suppression import GRAENSE, publish_suppressed

OKT, NOV = dt.date(2026, 10, 1), dt.date(2026, 11, 1)
REGION = {"101": "084", "147": "084", "253": "085", "259": "085"}
GRUPPER = ["dagpenge", "kontanthjaelp"]
MODEL = plain_sql("mart_ydelser_fuld")


def figures(seed: int, months: list[dt.date]) -> dict:
    """{(periode_start, geo_niveau, geo_kode, ydelsesgruppe): (antal, tilgang, afgang, ydelsesuger)}: kommune
    figures at random, regions, land and 'i alt' their sums."""
    rng = random.Random(seed)
    out: dict = {}
    for mo in months:
        for k, r in REGION.items():
            kom = {}
            for g in GRUPPER:
                a = rng.choice([0, 3, 9, 25, 60, 80])
                kom[g] = (a, rng.randint(0, a), rng.randint(0, a), a * rng.randint(1, 4))
            kom["i alt"] = tuple(sum(v[m] for v in kom.values()) for m in range(4))
            for g, v in kom.items():
                for key in ((mo, "kommune", k, g), (mo, "region", r, g), (mo, "land", "000", g)):
                    out[key] = tuple(x + y for x, y in zip(out.get(key, (0, 0, 0, 0)), v, strict=True))
    return out


def bump(cells: dict, mo: dt.date, kommune: str, grp: str, by: tuple[int, int, int, int]) -> dict:
    """A correction of one kommune cell, carried into its region, land and 'i alt'."""
    out = dict(cells)
    for g in (grp, "i alt"):
        for key in ((mo, "kommune", kommune, g), (mo, "region", REGION[kommune], g), (mo, "land", "000", g)):
            out[key] = tuple(x + d for x, d in zip(out[key], by, strict=True))
    return out


def write(con: duckdb.DuckDBPyConnection, cells: dict, nr: int, horisont: dt.date, foreloebig: bool) -> None:
    """The computation ``nr`` of every period in ``cells`` (mart_ydelser_beregning, as the nightly model writes it)."""
    con.executemany("INSERT INTO mart_ydelser_beregning VALUES (?, 'maaned', ?, ?, ?, ?, ?, ?, ?, ?, "
                    "last_day(?::DATE), strftime(?::DATE, '%YM%m'), 4, ?, ?)",
                    [[nr, mo, niv, kode, g, a, y, t, f, mo, mo, foreloebig, horisont]
                     for (mo, niv, kode, g), (a, t, f, y) in cells.items()])


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = mart_inputs(duckdb.connect(), OKT)
    yield c
    c.close()


def mart_inputs(c: duckdb.DuckDBPyConnection, coverage: dt.date) -> duckdb.DuckDBPyConnection:
    """The marts' inputs the hook reads (the data foundation's first delivery ``coverage``, the four kommuner, the
    two groups, an empty computation table) and the full grid's view over them."""
    c.execute("CREATE SCHEMA meta")
    c.execute("CREATE TABLE meta.loaded_payload AS SELECT 'kontaktgruppe' AS dataset, ?::DATE AS leveringsdato",
              [coverage])
    c.execute("CREATE TABLE dim_kommune (kommunekode VARCHAR, kommune VARCHAR, region_kode VARCHAR, region VARCHAR)")
    c.executemany("INSERT INTO dim_kommune VALUES (?, ?, ?, ?)", [[k, f"K{k}", r, f"R{r}"] for k, r in REGION.items()])
    c.execute("CREATE TABLE dim_ydelsesgruppe (ydelsesgruppe VARCHAR, navn VARCHAR)")
    c.executemany("INSERT INTO dim_ydelsesgruppe VALUES (?, ?)", [[g, g] for g in GRUPPER])
    c.execute("CREATE TABLE mart_ydelser_beregning (indlaesning_nr INTEGER, periode_type VARCHAR, periode_start DATE, "
              "geo_niveau VARCHAR, geo_kode VARCHAR, ydelsesgruppe VARCHAR, antal_personer BIGINT, ydelsesuger BIGINT, "
              "tilgang BIGINT, afgang BIGINT, periode_slut DATE, periode VARCHAR, uger_i_perioden INTEGER, "
              "er_foreloebig BOOLEAN, horisont DATE)")
    c.execute("CREATE VIEW mart_ydelser_fuld AS\n" + MODEL)
    return c


def load(c: duckdb.DuckDBPyConnection, day: dt.date) -> int:
    return publish_suppressed(c, SimpleNamespace(load_id=f"L{day}", indlaest_dato=day))


def log_rows(c: duckdb.DuckDBPyConnection) -> list[tuple]:
    return c.execute("SELECT vintage, indlaest_dato, perioder FROM meta.publikation ORDER BY 1").fetchall()


def as_table(c: duckdb.DuckDBPyConnection, truth: dict, vintage: int) -> dict:
    """The attacker's view of vintage ``vintage`` (every period as of it) with the true figures behind it."""
    out = {}
    for r in c.execute(f"SELECT periode_type, periode_start, geo_niveau, geo_kode, overordnet_geo_kode, "
                       f"ydelsesgruppe, antal_personer, tilgang, afgang, fuldtidspersoner * uger_i_perioden "
                       f"FROM ({vintage_sql(vintage)})").fetchall():
        pub = (r[6], r[7], r[8], None if r[9] is None else round(r[9]))
        out[r[:6]] = (truth[(r[1], r[2], r[3], r[5])], pub, 4)
    return out


def test_an_unchanged_period_keeps_its_vintage_and_the_combination_pins_nothing(con):
    final = dt.date(2026, 12, 10)
    t1 = figures(3, [OKT, NOV])
    write(con, t1, 1, final, False)
    assert load(con, final) > 0
    assert log_rows(con) == [(1, final, 2)]
    v1 = con.execute("SELECT * EXCLUDE (vintage) FROM meta.publikation_celler WHERE vintage = 1 ORDER BY ALL").fetchall()

    # load 2 recomputes both months (a new indlaesning_nr) but only November's figures moved
    t2 = bump(bump(t1, NOV, "101", "dagpenge", (7, 2, 0, 14)), NOV, "253", "kontanthjaelp", (-3, 0, 1, -3))
    write(con, t2, 2, final + dt.timedelta(days=1), False)
    day2 = final + dt.timedelta(days=1)
    assert load(con, day2) > 0
    assert log_rows(con) == [(1, final, 2), (2, day2, 1)]  # vintage 2 is November alone
    assert con.execute("SELECT DISTINCT periode, vintage FROM mart_ydelser_publiceret ORDER BY 1").fetchall() == \
        [("2026M10", 1), ("2026M11", 2)]
    # vintages are append-only: vintage 1 is reproduced exactly
    assert con.execute(f"SELECT * EXCLUDE (vintage) FROM ({vintage_sql(1)}) ORDER BY ALL").fetchall() == v1
    assert con.execute("SELECT count(*) FROM meta.publikation_grundlag WHERE vintage = 2 AND periode_start = ?",
                       [OKT]).fetchone()[0] == 0

    # load 3 moves nothing: no vintage
    write(con, t2, 3, day2 + dt.timedelta(days=1), False)
    assert load(con, day2 + dt.timedelta(days=1)) == 0
    assert len(log_rows(con)) == 2

    # everything published, attacked at once: vintage 1 and vintage 2 (October as kept, November new)
    att = Attack()
    a1, a2 = as_table(con, t1, 1), as_table(con, t2, 2)
    assert any(p[1][0] is None for p in a2.values())
    e1, e2 = att.add(a1), att.add(a2)
    att.same(e1, a1, e2, a2)
    got = att.bounds(GRAENSE)
    assert got and min(width(lo, hi) for lo, hi in got.values()) >= GRAENSE


def test_a_preliminary_period_is_republished_once_a_week(con, monkeypatch, caplog):
    thu, fri, mon = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 5)
    t1 = figures(4, [OKT])
    write(con, t1, 1, thu, True)
    assert load(con, thu) > 0
    t2 = bump(t1, OKT, "147", "kontanthjaelp", (5, 5, 0, 5))
    write(con, t2, 2, fri, True)
    with caplog.at_level(logging.INFO, logger="pipelines.warehouse.publication"):
        assert load(con, fri) == 0  # moved on Friday of the same ISO week: waits for Monday's load
    assert "next week's first load" in caplog.text and len(log_rows(con)) == 1
    assert publication.schedule(con, fri, kadence="dag").due == [("maaned", OKT)]
    write(con, t2, 3, mon, True)
    assert load(con, mon) > 0
    assert log_rows(con)[-1] == (2, mon, 1)
    assert con.execute("SELECT max(horisont) FROM mart_ydelser_publiceret").fetchone()[0] == mon

    # nightly cadence: a move on Tuesday is published on Tuesday; becoming final is published at once
    monkeypatch.setattr(publication, "KADENCE_FORELOEBIG", "dag")
    tue = mon + dt.timedelta(days=1)
    write(con, bump(t2, OKT, "259", "dagpenge", (6, 0, 6, 6)), 4, tue, True)
    assert load(con, tue) > 0 and log_rows(con)[-1] == (3, tue, 1)
    monkeypatch.setattr(publication, "KADENCE_FORELOEBIG", "uge")
    wed = tue + dt.timedelta(days=1)
    write(con, bump(t2, OKT, "259", "dagpenge", (6, 0, 6, 6)), 5, wed, False)
    assert load(con, wed) > 0 and log_rows(con)[-1] == (4, wed, 1)
    assert con.execute("SELECT DISTINCT er_foreloebig FROM mart_ydelser_publiceret").fetchall() == [(False,)]
