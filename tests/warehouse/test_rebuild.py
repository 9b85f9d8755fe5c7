"""The rebuild's load plan: which load brought each payload in and which loads retracted which payloads.

A corrected re-delivery after the first night's load supersedes a loaded payload: the nightly loads retract it at
the second load; the plan read from the warehouse must say exactly that (its retraction rows are the nightly
``meta.retracted_payload``). Without a warehouse the plan follows the ledger (one load per leveringsdato, the
superseded payload left out). The rebuild of these plans is compared with the nightly warehouse on the shared
tiny lake in test_spark_parity.py.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
from fixtures_wh import cpr_for, deliver, kg, uid, use_keys

from pipelines.warehouse.build import load_warehouse, published_path
from pipelines.warehouse.rebuild import load_plan

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
P1 = cpr_for(dt.date(1980, 5, 17), 1)


@pytest.fixture(scope="module")
def corrected(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("plan")
    use_keys(mp, base / "keys")
    root = base / "root"
    a = deliver(root, "kontaktgruppe", D1, [kg(1, P1, "1", "2026-09-01")])
    load_warehouse(root, D1, statistics=False)
    # the file of D1 corrected, sent on D2 (filed under D1, offered in D2's folder)
    a2 = deliver(root, "kontaktgruppe", D1, [kg(1, P1, "1", "2026-09-01", "2026-09-20", version=2, change="2")],
                 arrived=D2)
    b = deliver(root, "kontaktgruppe", D2, [kg(2, P1, "2", "2026-09-21")])
    load_warehouse(root, D2)  # with the statistics' publication step, which drops superseded computations
    yield root, a, a2, b
    mp.undo()


def test_plan_from_the_warehouse_reproduces_its_loads_and_retractions(corrected):
    root, a, a2, b = corrected
    plan = load_plan(root)
    assert plan.source == "warehouse"
    con = duckdb.connect(str(published_path(root)), read_only=True)
    loads = dict(con.execute("SELECT payload_id, indlaest_dato FROM meta.loaded_payload").fetchall())
    nightly = con.execute("SELECT payload_id, superseded_by, indlaest_dato, load_id FROM meta.retracted_payload"
                          ).fetchall()
    con.close()
    assert {p["payload_id"]: p["indlaest_dato"] for p in plan.payloads} == loads == {a: D1, a2: D2, b: D2}
    assert [(r["payload_id"], r["superseded_by"], r["indlaest_dato"], r["load_id"]) for r in plan.retracted] == nightly
    assert nightly and nightly[0][:3] == (a, a2, D2)
    tables = plan.tables()
    assert tables["load_increment"].num_rows == 3 and tables["current_load"].column("indlaest_dato")[0].as_py() == D2
    assert tables["retracted_payload"].column("payload_id").to_pylist() == [a]


def test_plan_without_a_warehouse_follows_the_ledger(corrected, tmp_path):
    root, a, a2, b = corrected
    copy = tmp_path / "root"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("warehouse*", "restricted"))
    assert not published_path(copy).exists()
    plan = load_plan(copy)
    assert plan.source == "ledger"
    # each payload on the day that offered it, the corrected one from the archive until its correction's day: the
    # nights the warehouse ran
    assert {p["payload_id"]: p["indlaest_dato"] for p in plan.payloads} == {a: D1, a2: D2, b: D2}
    assert [(r["payload_id"], r["superseded_by"], r["indlaest_dato"]) for r in plan.retracted] == [(a, a2, D2)]
    assert len({p["load_id"] for p in plan.payloads}) == 2
    # rebuilt from the lake alone (the warehouse lost), the facts hold the nights' versions: equal to the nightly
    # warehouse's but for the load ids, which only the warehouse knew
    from pipelines.warehouse.rebuild import rebuild

    rebuild(copy, "duckdb", tmp_path / "rb")
    con = duckdb.connect()
    con.execute(f"ATTACH '{tmp_path / 'rb' / 'warehouse.duckdb'}' AS r (READ_ONLY)")
    con.execute(f"ATTACH '{published_path(root)}' AS n (READ_ONLY)")
    for t in ("fct_kontaktgruppe", "fct_kontaktgruppe_aktuel", "fct_ydelsesforloeb", "dim_person"):
        cols = ", ".join(c for (c,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = 'n' AND table_name = ? "
            "AND column_name <> 'load_id'", [t]).fetchall())
        rows = con.execute(f"SELECT {cols} FROM n.main.{t} ORDER BY ALL").fetchall()
        assert rows and con.execute(f"SELECT {cols} FROM r.main.{t} ORDER BY ALL").fetchall() == rows, t
    assert con.execute("SELECT count(*) FROM r.main.fct_kontaktgruppe").fetchone()[0] == 3  # a's version kept
    con.close()
    # the same correction offered on its own day never reached a night: left out
    same_day = tmp_path / "same_day"
    c1 = deliver(same_day, "kontaktgruppe", D1, [kg(7, P1, "1", "2026-09-01")])
    c2 = deliver(same_day, "kontaktgruppe", D1, [kg(7, P1, "1", "2026-09-01", "2026-09-20", version=2, change="2")])
    plan = load_plan(same_day)
    assert [p["payload_id"] for p in plan.payloads] == [c2] and plan.retracted == [] and c1 != c2


def test_superseded_payload_is_archived_and_the_rebuild_equals_the_nightly_warehouse(corrected, tmp_path):
    """The corrected payload's file moved to the lake's archive (ingest.archive_payload_files), the plan reads it
    from there, and the one-pass rebuild holds the version the correction retracted, with the loads the nights
    gave, as the nightly warehouse does: every fact and current state equal to the checksum, every other table
    equal by rebuild.nightly_differences."""
    from pipelines.lake.write import archive_path
    from pipelines.warehouse.rebuild import nightly_differences, rebuild, table_checksums

    root, a, a2, b = corrected
    plan = load_plan(root)
    where = {p["payload_id"]: p for p in plan.payloads}
    assert where[a]["archived"] and Path(where[a]["lake_path"]).is_relative_to(root / "lake" / "_archive")
    assert not where[a2]["archived"] and not where[b]["archived"] and plan.missing_files == []
    gone = root / "lake" / "kontaktgruppe" / f"leveringsdato={D1}"
    assert [f.name for f in gone.glob(f"*{a}*")] == [] and archive_path(root, where[a2]["lake_path"]).parent.is_dir()

    res = rebuild(root, "duckdb", tmp_path / "rb")
    assert (res.payloads, res.loads) == (3, 2)
    db = tmp_path / "rb" / "warehouse.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    versions = con.execute("SELECT _payload_id, load_id, indlaest_dato, version, slutdato FROM fct_kontaktgruppe "
                           "WHERE kontaktgruppe_id = ? ORDER BY version", [uid(1)]).fetchall()
    current = con.execute("SELECT _payload_id, version FROM fct_kontaktgruppe_aktuel WHERE kontaktgruppe_id = ?",
                          [uid(1)]).fetchall()
    con.close()
    nightly = duckdb.connect(str(published_path(root)), read_only=True)
    load_ids = dict(nightly.execute("SELECT payload_id, load_id FROM meta.loaded_payload").fetchall())
    nightly.close()
    # the retracted version (from the archive) with its first night, the correction with the second
    assert versions == [(a, load_ids[a], D1, 1, None), (a2, load_ids[a2], D2, 2, dt.date(2026, 9, 20))]
    assert current == [(a2, 2)]
    sums = table_checksums(db)
    night = table_checksums(published_path(root), names=set(sums))
    facts = {t for t in sums if t.startswith("fct_") and t != "fct_person_week"}
    assert "fct_kontaktgruppe" in facts and "fct_kontaktgruppe_aktuel" in facts
    assert {t: sums[t] for t in facts} == {t: night[t] for t in facts}
    assert nightly_differences(db, published_path(root), names=set(night)) == {}


def test_the_spark_target_says_what_to_install_when_java_or_pyspark_is_missing(monkeypatch, tmp_path):
    """Refused before anything is read or written, naming the parts and how to install them."""
    import importlib.util
    import shutil as sh

    from pipelines.warehouse.build import WarehouseError
    from pipelines.warehouse.rebuild import rebuild

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(sh, "which", lambda name, *a, **k: None)
    with pytest.raises(WarehouseError, match="a Java 17 runtime.*openjdk-17-jre-headless"):
        rebuild(tmp_path / "root", "spark", tmp_path / "out")
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m.startswith("pyspark") else find(m, *a))
    with pytest.raises(WarehouseError, match=r"needs pyspark, a Java 17 runtime: pip install -e '\.\[spark\]'"):
        rebuild(tmp_path / "root", "spark", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _bench_rebuild():
    """bench/bench_rebuild.py as a module (bench/ is not a package)."""
    import sys
    from pathlib import Path

    bench = str(Path(__file__).resolve().parents[2] / "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import bench_rebuild

    return bench_rebuild


def test_national_clone_ends_spells_and_tilmeldinger():
    """The rebuild bench's cloned history is shaped like real data: a cloned copy's spells end (at most one open
    spell per person and kind, the real copy's), cloned kontaktgruppe spells lie in their copy's window (§ 16,
    stk. 6: one at a time) and every cloned tilmelding is ended by an afmelding naming it (§ 17, stk. 7)."""
    import pyarrow as pa

    b = _bench_rebuild()
    day = dt.date(2026, 6, 10)
    d = dt.date.fromisoformat
    kgt = pa.table({"kontaktgruppe_id": ["a", "b", "c"], "registreringsdato": [d("2019-01-01"), d("2026-06-01"),
                                                                              d("2020-01-01")],
                    "startdato": [d("2019-01-01"), d("2026-06-01"), d("2020-01-01")],
                    "slutdato": pa.array([None, None, d("2020-03-01")], pa.date32())})
    out = b.end_spells(kgt, "kontaktgruppe", day, 41).to_pydict()
    assert out["startdato"] == [d("2026-05-01"), d("2026-06-01"), d("2020-01-01")]  # a: clamped into the window
    assert out["registreringsdato"][0] == d("2026-05-01")
    assert out["slutdato"] == [day, day, d("2020-03-01")]  # open spells end on the copy's day; a closed one stays
    fr = pa.table({"startdato": [day], "slutdato": pa.array([None], pa.date32())})
    assert b.end_spells(fr, "fravaer", day, 41).column("slutdato").to_pylist() == [day]
    assert b.end_spells(pa.table({"startdato": [day]}), "tilmelding", day, 41).num_rows == 1

    ts = pa.timestamp("us", tz="UTC")
    til = pa.table({"besked_id": ["m1c3"], "indberetter": ["101"], "tilmelding_id": ["t1c3"], "cpr": ["0101801234"],
                    "kommunekode": ["101"], "_channel": ["webservice"], "_reporter": ["101"],
                    "_payload_id": ["pc3"], "_record_no": pa.array([1], pa.int64())})
    schema = pa.schema([("besked_id", pa.string()), ("entitet", pa.string()), ("aendringstype", pa.string()),
                        ("version", pa.int64()), ("indberetter", pa.string()), ("haendelsestidspunkt", ts),
                        ("registreringstidspunkt", ts), ("afmelding_id", pa.string()), ("cpr", pa.string()),
                        ("kommunekode", pa.string()), ("registreringsdato", pa.date32()),
                        ("afmeldingsdato", pa.date32()), ("afmeldingsaarsag", pa.string()),
                        ("tilmelding_id", pa.string()), ("_channel", pa.string()), ("_reporter", pa.string()),
                        ("_payload_id", pa.string()), ("_record_no", pa.int64()), ("_leveringsdato", pa.date32())])
    af = b.afmeldinger(til, "tilmelding", day, schema)
    assert af.schema == schema
    row = af.to_pylist()[0]
    assert (row["tilmelding_id"], row["cpr"], row["afmeldingsdato"], row["registreringsdato"], row["entitet"],
            row["_payload_id"], row["afmelding_id"]) == ("t1c3", "0101801234", day, day, "afmelding", "pc3a", "t1c3a")
