"""Core dimensions, dim_person (SCD2) and the weekly panel fct_person_week over a small hand-made lake.

The lake (two loads, known answers):
  A  dagpenge in kommune 101 (1 Sep - 16 Sep) overlapping kontanthjælp in 147 (from 14 Sep): a move and an
     overlap week (W38) in which the higher-priority status (dagpenge) wins although kontanthjælp started later;
     a-kasse 005 from 3 Sep; an afmelding for job (årsag 1) that does not end the membership.
  B  uddannelseshjælp 3 Aug - 21 Aug, nothing, then tilmeldt uden ydelse from 7 Sep: two weeks without a state;
     on the second load the first spell is corrected (aendringstype 2, version 2) to end 28 Aug.
  C  sygedagpenge in 151 from 21 Sep, deleted (aendringstype 3) on the second load.
  D  dagpenge in 101; a-kasse 001 from 1 Sep, 002 from 15 Sep (overflytning), afmelding by 002 for
     'Flyttet til udlandet' (årsag 10) on 29 Sep: membership ends.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml
from fixtures_wh import cpr_for, deliver, kg, uid, use_keys
from fixtures_wh import query as q

from pipelines.contracts import REFERENCE_DIR, get_contract
from pipelines.warehouse import keys as wkeys
from pipelines.warehouse.build import load_warehouse, published_path
from pipelines.warehouse.dbt_runner import PROJECT_DIR, compiled_sql
from pipelines.warehouse.restricted import open_restricted

D1 = dt.date(2026, 10, 5)   # Monday of ISO week 41
D2 = dt.date(2026, 10, 14)  # Wednesday of ISO week 42
PA = cpr_for(dt.date(1980, 3, 1), 1)
PB = cpr_for(dt.date(1995, 6, 15), 2, male=False)
PC = cpr_for(dt.date(1970, 1, 20), 3)
PD = cpr_for(dt.date(1962, 11, 30), 4, male=False)

DIMS = ["dim_ydelsesgruppe", "dim_panelstatus", "dim_visitationsgruppe", "dim_matchgruppe",
        "dim_sygedagpengekategori", "dim_samtaletype", "dim_samtaleform", "dim_fravaersaarsag",
        "dim_foranstaltningsart", "dim_aktiveringstype", "dim_uddannelse", "dim_indberetter", "dim_virksomhed",
        "dim_person"]
RESTRICTED_DIMS = ["dim_diagnosekapitel", "dim_diagnose"]


def d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def tilm(key: str, cpr: str, akasse: str, start: str) -> dict:
    return {"tilmelding_id": key, "cpr": cpr, "akassekode": akasse, "startdato": d(start), "tilmeldekategori": "1",
            "ledighedsgrad": "1"}


def afm(key: str, cpr: str, akasse: str, dato: str, aarsag: str) -> dict:
    return {"afmelding_id": key, "cpr": cpr, "akassekode": akasse, "afmeldingsdato": d(dato),
            "afmeldingsaarsag": aarsag}


def build_lake(root: Path) -> None:
    deliver(root, "kontaktgruppe", D1, [
        kg(uid(1), PA, "1", "2026-09-01", "2026-09-16"),
        kg(uid(3), PB, "12", "2026-08-03", "2026-08-21"),
        kg(uid(4), PB, "8", "2026-09-07"),
        kg(uid(6), PD, "1", "2026-09-01"),
    ], reporter="101", source="kg101")
    deliver(root, "kontaktgruppe", D1, [kg(uid(2), PA, "2", "2026-09-14", kommune="147")],
            reporter="147", source="kg147")
    deliver(root, "kontaktgruppe", D1, [kg(uid(5), PC, "24", "2026-09-21", kommune="151")],
            reporter="151", source="kg151")
    deliver(root, "akasse_tilmelding", D1, [tilm(uid(11), PA, "005", "2026-09-03")], reporter="005", source="t005")
    deliver(root, "akasse_tilmelding", D1, [tilm(uid(12), PD, "001", "2026-09-01")], reporter="001", source="t001")
    deliver(root, "akasse_tilmelding", D1, [tilm(uid(13), PD, "002", "2026-09-15")], reporter="002", source="t002")
    deliver(root, "akasse_afmelding", D1, [afm(uid(21), PA, "005", "2026-09-20", "1")], reporter="005", source="a005")
    deliver(root, "akasse_afmelding", D1, [afm(uid(22), PD, "002", "2026-09-29", "10")], reporter="002",
            source="a002")
    # companies for dim_virksomhed
    deliver(root, "foranstaltning", D1, [{
        "foranstaltning_id": uid(31), "cpr": PA, "foranstaltningsart": "mentor", "startdato": d("2026-09-20"),
        "udbyder_cvr": "12345678", "udbyder_pnummer": "1000000001",
        "mentor_arbejdsgiver_cvr": "87654321", "mentor_arbejdsgiver_pnummer": "1000000002"}], source="f101")
    deliver(root, "stillingsopslag", D1, [{
        "jobordreident": "J-1", "cvr": "12345678", "pnummer": "1000000003", "virksomhedsnavn": "Testfirma ApS",
        "kommunekode": "101"}], reporter="JOBNET", source="s1")
    # the later load: B's first spell corrected, C's spell deleted, a renamed company, a new CVR
    deliver(root, "kontaktgruppe", D2, [
        kg(uid(3), PB, "12", "2026-08-03", "2026-08-28", version=2, change="2"),
    ], reporter="101", source="kg101-d2")
    deliver(root, "kontaktgruppe", D2, [kg(uid(5), PC, "24", "2026-09-21", kommune="151", version=2, change="3")],
            reporter="151", source="kg151-d2")
    deliver(root, "stillingsopslag", D2, [{
        "jobordreident": "J-1", "cvr": "12345678", "pnummer": "1000000003", "virksomhedsnavn": "Testfirma A/S",
        "kommunekode": "101", "version": 2, "aendringstype": "2"}], reporter="JOBNET", source="s2")
    deliver(root, "haendelse_akasse", D2, [{
        "haendelse_id": uid(41), "cpr": PD, "haendelsesdato": d("2026-10-13"), "haendelsestype": "12",
        "virksomhed_cvr": "11223344"}], source="h101")


def person_key(cpr: str) -> str:
    return wkeys.person_key(cpr, wkeys.load_key("pseudonym"))


PERSON_SQL = ("SELECT person_key, foedselsaar, koen, kommunekode, akassekode, gyldig_fra, gyldig_til, er_aktuel "
              "FROM dim_person ORDER BY person_key, gyldig_fra")
WEEK_SQL = ("SELECT person_key, uge_id, iso_aar, iso_uge, uge_start, uge_maaned, status, kontaktgruppe, antal_forloeb, "
            "kommunekode, akassekode, indlaest_dato FROM fct_person_week ORDER BY person_key, uge_start")


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    """Two loads over the hand-made lake; the panel and dim_person as published after each."""
    root = tmp_path_factory.mktemp("core")
    with pytest.MonkeyPatch.context() as mp:
        use_keys(mp, root / "keys")
        build_lake(root)
        r1 = load_warehouse(root, D1)
        pub = published_path(root)
        after1 = {"person": q(pub, PERSON_SQL), "week": q(pub, WEEK_SQL)}
        r2 = load_warehouse(root, D2)
        after2 = {"person": q(pub, PERSON_SQL), "week": q(pub, WEEK_SQL)}
        keys = {c: person_key(c) for c in (PA, PB, PC, PD)}
        yield {"root": root, "r1": r1, "r2": r2, "after1": after1, "after2": after2, "key": keys}


def rows_of(rows: list[tuple], pk: str) -> list[tuple]:
    return [r[1:] for r in rows if r[0] == pk]


def weeks(rows: list[tuple], pk: str) -> dict[str, tuple]:
    """uge_id -> (status, kontaktgruppe, antal_forloeb, kommunekode, akassekode)."""
    return {r[1]: (r[6], r[7], r[8], r[9], r[10]) for r in rows if r[0] == pk}


# --------------------------------------------------------------------------- dim_person


def test_dim_person_periods_after_first_load(wh):
    p, k = wh["after1"]["person"], wh["key"]
    # A: kommune 101 until the overlapping 147-spell starts (latest start wins), a-kasse 005 from its tilmelding;
    # the afmelding for job (årsag 1) does not end the membership
    assert rows_of(p, k[PA]) == [
        (1980, "M", "101", None, d("2026-09-01"), d("2026-09-02"), False),
        (1980, "M", "101", "005", d("2026-09-03"), d("2026-09-13"), False),
        (1980, "M", "147", "005", d("2026-09-14"), None, True)]
    # B: the kommune carries forward through the gap between spells: one open period
    assert rows_of(p, k[PB]) == [(1995, "K", "101", None, d("2026-08-03"), None, True)]
    assert rows_of(p, k[PC]) == [(1970, "M", "151", None, d("2026-09-21"), None, True)]
    # D: overflytning 001 -> 002, then afmelding årsag 10 (udlandet) ends the membership from afmeldingsdato
    assert rows_of(p, k[PD]) == [
        (1962, "K", "101", "001", d("2026-09-01"), d("2026-09-14"), False),
        (1962, "K", "101", "002", d("2026-09-15"), d("2026-09-28"), False),
        (1962, "K", "101", None, d("2026-09-29"), None, True)]


def test_dim_person_after_correction_and_deletion(wh):
    p, k = wh["after2"]["person"], wh["key"]
    assert rows_of(p, k[PC]) == []  # the only spell was deleted
    assert rows_of(p, k[PB]) == [(1995, "K", "101", None, d("2026-08-03"), None, True)]
    assert rows_of(p, k[PA]) == rows_of(wh["after1"]["person"], k[PA])
    assert len(p) == 7


def test_dim_person_periods_never_overlap_and_are_contiguous(wh):
    pub = published_path(wh["root"])
    assert q(pub, """SELECT count(*) FROM dim_person a JOIN dim_person b ON a.person_key = b.person_key
                     AND a.gyldig_fra < b.gyldig_fra AND coalesce(a.gyldig_til, DATE '9999-12-31') >= b.gyldig_fra""") \
        == [(0,)]
    assert q(pub, """SELECT count(*) FROM (SELECT gyldig_fra, lag(gyldig_til) OVER (PARTITION BY person_key
                     ORDER BY gyldig_fra) AS forrige FROM dim_person) WHERE forrige IS NOT NULL
                     AND forrige + 1 <> gyldig_fra""") == [(0,)]
    assert q(pub, "SELECT person_key FROM dim_person GROUP BY 1 HAVING count(*) FILTER (WHERE er_aktuel) <> 1") == []
    assert q(pub, "SELECT count(*) FROM dim_person WHERE er_aktuel <> (gyldig_til IS NULL)") == [(0,)]


# --------------------------------------------------------------------------- fct_person_week


def test_panel_priority_in_overlap_week_and_kommune_per_week(wh):
    w = weeks(wh["after1"]["week"], wh["key"][PA])
    assert sorted(w) == [f"2026-W{n}" for n in range(36, 42)]
    assert w["2026-W36"] == ("dagpenge", "1", 1, "101", "005")
    assert w["2026-W37"] == ("dagpenge", "1", 1, "101", "005")
    # W38: dagpenge (prioritet 2) and kontanthjælp (8) overlap; dagpenge wins, the kommune is Sunday's (147)
    assert w["2026-W38"] == ("dagpenge", "1", 2, "147", "005")
    for n in (39, 40, 41):
        assert w[f"2026-W{n}"] == ("kontanthjaelp", "2", 1, "147", "005")


def test_panel_weeks_without_state_and_akasse_per_week(wh):
    k = wh["key"]
    b = weeks(wh["after1"]["week"], k[PB])
    assert sorted(b) == [f"2026-W{n}" for n in range(32, 42)]
    assert [b[f"2026-W{n}"][0] for n in range(32, 42)] == (
        ["uddannelseshjaelp"] * 3 + ["selvforsoerget"] * 2 + ["uden_ydelse"] * 5)
    assert b["2026-W35"] == ("selvforsoerget", None, 0, "101", None)  # kommune carried forward
    dd = weeks(wh["after1"]["week"], k[PD])
    assert [dd[f"2026-W{n}"][4] for n in range(36, 42)] == ["001", "001", "002", "002", None, None]
    c = weeks(wh["after1"]["week"], k[PC])
    assert c == {f"2026-W{n}": ("sygedagpenge", "24", 1, "151", None) for n in (39, 40, 41)}


def test_panel_calendar_columns(wh):
    row = next(r for r in wh["after1"]["week"] if r[0] == wh["key"][PB] and r[1] == "2026-W36")
    # ISO week 36 of 2026 starts Monday 31 Aug; its Thursday (3 Sep) puts it in September
    assert row[2:6] == (2026, 36, d("2026-08-31"), d("2026-09-01"))


def test_panel_recomputed_for_corrected_person_only(wh):
    k, w2 = wh["key"], wh["after2"]["week"]
    b = weeks(w2, k[PB])
    assert sorted(b) == [f"2026-W{n}" for n in range(32, 43)]
    assert b["2026-W35"] == ("uddannelseshjaelp", "12", 1, "101", None)  # the corrected end (28 Aug) reaches W35
    assert b["2026-W36"] == ("selvforsoerget", None, 0, "101", None)
    assert b["2026-W42"][0] == "uden_ydelse"
    assert {r[11] for r in w2 if r[0] == k[PB]} == {D2}  # all of B's rows rewritten by the second load
    assert weeks(w2, k[PC]) == {}  # deleted spell: no panel rows left
    # A was not affected: its rows of the first load stay as written, only the new load week is added
    a1 = [r for r in wh["after1"]["week"] if r[0] == k[PA]]
    a2 = [r for r in w2 if r[0] == k[PA]]
    assert a2[:-1] == a1
    assert a2[-1][1] == "2026-W42" and a2[-1][6] == "kontanthjaelp" and a2[-1][11] == D2
    assert wh["r2"].affected_persons == 2  # B and C


def documented_keys() -> dict[str, list[str]]:
    """The hand-written models' keys as their schema YAML documents them (meta.keys)."""
    out = {}
    for y in (PROJECT_DIR / "dbt" / "models" / "derived").rglob("_*.yml"):
        for m in yaml.safe_load(y.read_text(encoding="utf-8"))["models"]:
            out[m["name"]] = m.get("config", {}).get("meta", {}).get("keys", [])
    return out


def test_panel_keys_unique_and_incremental_equals_full_rebuild(wh, tmp_path):
    pub = published_path(wh["root"])
    assert q(pub, "SELECT person_key, uge_id FROM fct_person_week GROUP BY ALL HAVING count(*) > 1") == []
    # rebuild both scoped models from scratch on a copy: every person affected, no earlier run
    copy = tmp_path / "build.duckdb"  # the load's database name: the process's parsed project serves the compile
    shutil.copyfile(pub, copy)
    # the models' full computations as dbt compiles them for a first build, on the copy (the last load's date);
    # the panel's rows are its scope model's (int_person_week_ny)
    sql = {m: compiled_sql(m, copy, tmp_path / "dbt") for m in ("dim_person", "int_person_week_ny")}
    con = duckdb.connect(str(copy))
    try:
        con.execute("CREATE OR REPLACE TABLE staging.int_affected_persons AS SELECT DISTINCT person_key "
                    "FROM fct_kontaktgruppe UNION SELECT person_key FROM fct_akasse_tilmelding "
                    "UNION SELECT person_key FROM fct_akasse_afmelding")
        con.execute("DELETE FROM meta.model_run WHERE model = 'fct_person_week'")
        full_person = con.execute(sql["dim_person"]).fetchall()
        con.execute("ALTER TABLE dim_person RENAME TO dim_person_inkrementel")
        con.execute(f"CREATE TABLE dim_person AS {sql['dim_person']}")
        full_week = con.execute(f"SELECT * EXCLUDE (indlaest_dato) FROM ({sql['int_person_week_ny']})").fetchall()
        inc_person = con.execute("SELECT * FROM dim_person_inkrementel").fetchall()
        inc_week = con.execute("SELECT * EXCLUDE (indlaest_dato) FROM fct_person_week").fetchall()
    finally:
        con.close()
    assert sorted(full_person, key=str) == sorted(inc_person, key=str)
    assert sorted(full_week, key=str) == sorted(inc_week, key=str)
    assert len(full_week) == len(wh["after2"]["week"]) == 7 + 11 + 7  # A, B, D (C deleted)


def test_every_kommunekode_resolves_in_dim_kommune(wh):
    con = duckdb.connect(str(published_path(wh["root"])), read_only=True)
    try:
        tables = [r[0] for r in con.execute("""SELECT table_name FROM information_schema.columns
                                               WHERE table_schema = 'main' AND column_name = 'kommunekode'
                                                 AND (table_name LIKE 'fct_%' OR table_name LIKE 'dim_%')""").fetchall()]
        assert {"fct_kontaktgruppe", "fct_person_week", "dim_person"} <= set(tables)
        for t in tables:
            bad = con.execute(f"SELECT DISTINCT kommunekode FROM {t} WHERE kommunekode IS NOT NULL "
                              "AND kommunekode NOT IN (SELECT kommunekode FROM dim_kommune)").fetchall()
            assert bad == [], f"{t}: kommunekode not in dim_kommune: {bad}"
    finally:
        con.close()


# --------------------------------------------------------------------------- dimensions


def _ref(name: str) -> list[dict[str, str]]:
    with (REFERENCE_DIR / f"{name}.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_every_dimension_exists_with_unique_keys(wh):
    documented = documented_keys()
    con = duckdb.connect(str(published_path(wh["root"])), read_only=True)
    try:
        for name in DIMS:
            mkeys = documented[name]
            assert mkeys, f"{name}: its schema YAML documents no keys"
            assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] > 0, f"{name} is empty"
            keys = ", ".join(mkeys)
            assert con.execute(f"SELECT {keys} FROM {name} GROUP BY ALL HAVING count(*) > 1").fetchall() == [], \
                f"{name}: keys not unique"
            nulls = " OR ".join(k + " IS NULL" for k in mkeys)
            assert con.execute(f"SELECT count(*) FROM {name} WHERE {nulls}").fetchone()[0] == 0, name
        for csv_name, dim in [("visitationsgrupper", "dim_visitationsgruppe"), ("matchgrupper", "dim_matchgruppe"),
                              ("sygedagpengekategorier", "dim_sygedagpengekategori"),
                              ("samtaletyper", "dim_samtaletype"), ("samtaleformer", "dim_samtaleform"),
                              ("fravaersaarsager", "dim_fravaersaarsag"),
                              ("foranstaltningsarter", "dim_foranstaltningsart"), ("uddannelseskoder", "dim_uddannelse"),
                              ("aktiveringstyper", "dim_aktiveringstype"), ("panel_status", "dim_panelstatus")]:
            assert con.execute(f"SELECT count(*) FROM {dim}").fetchone()[0] == len(_ref(csv_name)), dim
    finally:
        con.close()


def test_restricted_dimensions_live_only_in_the_restricted_db(wh):
    pub = published_path(wh["root"])
    assert q(pub, "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'dim_diagnose%'") == []
    documented = documented_keys()
    with open_restricted(wh["root"]) as con:  # the module fixture keeps DSDW_KEY_DIR set
        for name in RESTRICTED_DIMS:
            keys = ", ".join(documented[name])
            assert con.execute(f"SELECT {keys} FROM restricted.{name} GROUP BY ALL HAVING count(*) > 1"
                               ).fetchall() == []
        assert con.execute("SELECT count(*) FROM restricted.dim_diagnosekapitel").fetchone()[0] == 22
        # every diagnosis has its chapter (the join to the restricted chapter table worked)
        assert con.execute("SELECT count(*), count(diagnosekapitel_navn) FROM restricted.dim_diagnose"
                           ).fetchone() == (len(_ref("icd10_diagnoser")),) * 2


def test_ydelsesgruppe_and_panel_status_cover_every_kontaktgruppe(wh):
    pub = published_path(wh["root"])
    groups = {r["ydelsesgruppe"] for r in _ref("kontaktgrupper")}
    got = dict(q(pub, "SELECT ydelsesgruppe, panel_status FROM dim_ydelsesgruppe"))
    assert set(got) == groups and all(got.values())
    assert q(pub, "SELECT list(kontaktgruppe ORDER BY kontaktgruppe) FROM (SELECT unnest(kontaktgrupper) AS "
                  "kontaktgruppe FROM dim_ydelsesgruppe WHERE ydelsesgruppe = 'sygedagpenge')") == [(["24", "25", "6"],)]
    # exactly one status without a state, ranked after every state
    st = q(pub, "SELECT status, prioritet, er_uden_tilstand FROM dim_panelstatus ORDER BY prioritet")
    assert [s for s, _, no in st if no] == ["selvforsoerget"] and st[-1][0] == "selvforsoerget"
    assert len({p for _, p, _ in st}) == len(st), "priorities must be distinct so the choice is unambiguous"


def test_foranstaltningsart_has_every_sub_kind_of_the_contract(wh):
    pub = published_path(wh["root"])
    kinds = {f.sub_kind for f in get_contract("foranstaltning").fields if getattr(f, "sub_kind", None)}
    arts = {r[0] for r in q(pub, "SELECT foranstaltningsart FROM dim_foranstaltningsart")}
    assert kinds and kinds <= arts and "base" in arts
    assert q(pub, "SELECT aktiveringstyper FROM dim_foranstaltningsart WHERE foranstaltningsart = 'mentor'") \
        == [(["30", "31"],)]


def test_indberetter_lists_every_reporter_kind(wh):
    pub = published_path(wh["root"])
    kinds = dict(q(pub, "SELECT indberetterart, count(*) FROM dim_indberetter GROUP BY 1"))
    assert kinds == {"jobcenter": len(_ref("kommuner")), "akasse": len(_ref("akasser")), "uvm": 1, "ssi": 1,
                     "jobnet": 1}
    assert q(pub, "SELECT navn, kommunekode FROM dim_indberetter WHERE indberetter = '101'") == \
        [("Jobcenter København", "101")]
    seen = {r[0] for r in q(pub, "SELECT DISTINCT indberetter FROM fct_kontaktgruppe UNION "
                                 "SELECT DISTINCT indberetter FROM fct_akasse_tilmelding UNION "
                                 "SELECT DISTINCT indberetter FROM fct_stillingsopslag")}
    assert seen - {r[0] for r in q(pub, "SELECT indberetter FROM dim_indberetter")} == set()


def test_virksomhed_register(wh, tmp_path):
    pub = published_path(wh["root"])
    rows = q(pub, "SELECT cvr, pnumre, virksomhedsnavn, branchekode, kilder FROM dim_virksomhed ORDER BY cvr")
    assert rows == [
        ("11223344", None, None, None, ["haendelse_akasse"]),
        ("12345678", ["1000000001", "1000000003"], "Testfirma A/S", None, ["foranstaltning", "stillingsopslag"]),
        ("87654321", ["1000000002"], None, None, ["foranstaltning"]),
    ]
    # merged by the second load (its renamed company and new CVR) exactly as the full computation over all rows
    dates = q(pub, "SELECT cvr, foerst_set_dato, senest_set_dato FROM dim_virksomhed ORDER BY cvr")
    assert dates == [("11223344", D2, D2), ("12345678", D1, D2), ("87654321", D1, D1)]
    copy = tmp_path / "build.duckdb"
    shutil.copyfile(pub, copy)
    full_sql = compiled_sql("dim_virksomhed", copy, tmp_path / "dbt")  # its first build: every fact row
    con = duckdb.connect(str(copy), read_only=True)
    try:
        full = con.execute(f"SELECT * FROM ({full_sql}) ORDER BY cvr").fetchall()
        assert con.execute("SELECT * FROM dim_virksomhed ORDER BY cvr").fetchall() == full
    finally:
        con.close()
