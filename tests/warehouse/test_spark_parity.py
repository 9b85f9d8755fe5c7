"""The same dbt models on DuckDB and Spark give the same rows; the one-pass rebuild equals the nightly loads.

One module fixture rebuilds the shared tiny warehouse's lake (``tiny_warehouse``: 2 nightly loads) on both
targets with a full refresh (``dsdw warehouse rebuild``): DuckDB into a new database, Spark ``local[2]`` into
Parquet tables (one session, 2 shuffle partitions, no UI). Every model the Spark target builds is compared row for
row with DuckDB's: the current state and history of every fact, the dims, the weekly panel (fct_person_week), the
statistics (mart_ydelser, its computation -- SQL on Spark, a Python model on DuckDB -- and its full grid) and the
published statistics, suppressed from each engine's marts. The DuckDB rebuild is compared with the nightly-built
warehouse table by table (rebuild.nightly_differences: every column but the night that last recomputed a row).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.contracts import load_contracts
from pipelines.warehouse.build import published_path
from pipelines.warehouse.generate import fct_name, is_restricted
from pipelines.warehouse.keys import load_key, person_key
from pipelines.warehouse.publication import GRUNDLAG, HISTORIK, LOG
from pipelines.warehouse.rebuild import load_plan, nightly_differences, publish, rebuild, table_checksums
from pipelines.warehouse.suppression import PUBLISHED

# models the issue names (mart_ydelser_publiceret is the publication step's, compared on its own)
MARTS = ("mart_ydelser", "mart_ydelser_beregning", "mart_ydelser_fuld", "fct_person_week", "dim_person",
         "fct_ydelsesforloeb", "mart_overgange", "mart_panel_bestand", "mart_indberetning_rettidighed_bidrag",
         "mart_indberetning_ankomst_bidrag", "mart_indberetning_rettidighed")
# hand-written models not built on Spark (warehouse/dbt_project.yml says why): the health code lists of the
# restricted database, and the scope models only the statistics' nightly delta reads
NOT_ON_SPARK = {"dim_diagnose", "dim_diagnosekapitel", "int_state_changed_keys", "int_state_changed_new",
                "int_state_changed_old", "int_affected_person_maaneder", "int_affected_maaneder"}
DBT = Path(__file__).parents[2] / "warehouse" / "dbt"


@pytest.fixture(scope="module")
def rebuilt(tiny_warehouse_keys, tmp_path_factory):
    from pyspark.sql import SparkSession

    from pipelines.warehouse import spark as S

    _src, root = tiny_warehouse_keys
    base = tmp_path_factory.mktemp("rebuild")
    duck = rebuild(root, "duckdb", base / "duckdb")
    # interpreted expressions instead of generated code: on a few thousand rows Spark's code generation (a Java
    # compile per query) is most of a model's time (the tiny Spark rebuild: 104 -> 88 s); the results do not depend
    # on it, and the plan tests below look at the exchanges, which it does not change
    spark = rebuild(root, "spark", base / "spark", master="local[2]", threads=4,
                    extra={"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"})
    session = SparkSession.getActiveSession()
    yield root, duck, spark, session
    S.stop(session)


def test_spark_builds_every_analysts_model_with_the_same_rows(rebuilt):
    from pipelines.warehouse import spark as S

    _root, duck, spark, session = rebuilt
    analysts = {c.dataset for c in load_contracts().values() if not is_restricted(c)}
    restricted = {c.dataset for c in load_contracts().values() if is_restricted(c)}
    # Spark builds the analysts' models (none of the restricted ones: CPR/health, docs/scale-out.md); a model
    # DuckDB builds and Spark does not is one disabled on the spark target (its reason in its config)
    assert set(spark.models) <= set(duck.models)
    for ds in analysts:
        assert {f"fct_{ds}", f"fct_{ds}_aktuel", f"fct_{ds}_historik"} <= set(spark.models)
    assert not [m for m in spark.models if any(ds in m for ds in restricted)]
    assert {m for m in set(duck.models) - set(spark.models) if not any(ds in m for ds in restricted)} == NOT_ON_SPARK
    res = S.compare_with_duckdb(session, duck.out / "warehouse.duckdb", sorted(spark.models), spark.out / "tables")
    differ = {m: v for m, v in res.items() if v[2] or v[0] != v[1]}
    assert not differ, differ
    for m in MARTS:
        assert res[m][0] > 0, m
    # the data is there: the contact groups' current state, its history, pseudonymised persons
    assert res["fct_kontaktgruppe_aktuel"][0] > 100
    assert res["fct_kontaktgruppe_historik"][0] >= res["fct_kontaktgruppe"][0] > 0
    assert sum(v[0] for v in res.values()) > 5000


def _first_publication(db: Path, copy: Path, plan) -> int:
    """A copy of ``db`` with its publication record dropped and published afresh (a first vintage)."""
    shutil.copy(db, copy)
    con = duckdb.connect(str(copy))
    try:
        for t in (PUBLISHED, LOG, GRUNDLAG, HISTORIK):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        return publish(con, plan)
    finally:
        con.close()


def test_spark_published_statistics_are_duckdbs(rebuilt, tmp_path):
    """The published mart (small-cell suppression, a solver in Python) from Spark's marts equals DuckDB's.

    Both rebuilds carried the nightly publication record (nothing moved, so nothing was republished): the
    suppression is compared on a first publication made from each engine's marts."""
    root, duck, spark, _session = rebuilt
    assert duck.published == spark.published  # both carried the record and republished the same periods
    plan = load_plan(root)
    d, s = tmp_path / "first_duck.duckdb", tmp_path / "first_spark.duckdb"  # not a catalog named like a schema
    assert _first_publication(duck.out / "warehouse.duckdb", d, plan) == \
        _first_publication(spark.out / "published.duckdb", s, plan) > 0
    con = duckdb.connect()
    con.execute(f"ATTACH '{d}' AS d (READ_ONLY)")
    con.execute(f"ATTACH '{s}' AS s (READ_ONLY)")
    q = "SELECT * FROM {}.main.mart_ydelser_publiceret"
    diff = con.execute(f"SELECT count(*) FROM (({q.format('d')} EXCEPT ALL {q.format('s')}) UNION ALL "
                       f"({q.format('s')} EXCEPT ALL {q.format('d')}))").fetchone()[0]
    hidden = con.execute(f"SELECT count(*) FILTER (WHERE antal_personer_diskretioneret) FROM ({q.format('d')})"
                         ).fetchone()[0]
    con.close()
    assert diff == 0 and hidden > 0


def test_spark_pseudonyms_are_duckdbs_and_no_cpr_is_written(rebuilt):
    root, duck, spark, session = rebuilt
    key = load_key("pseudonym")
    lake = duckdb.connect()
    cprs = {r[0] for r in lake.execute(
        f"SELECT DISTINCT cpr FROM read_parquet('{root}/lake/kontaktgruppe/*/*.parquet') WHERE cpr IS NOT NULL"
    ).fetchall()}
    assert len(cprs) > 100
    got = dict(session.sql(
        "SELECT l.cpr, s.person_key FROM dsdw_lake__kontaktgruppe l JOIN staging.stg_jobcenter__kontaktgruppe s "
        "ON s.besked_id = l.besked_id").collect())
    assert got and all(pk == person_key(c, key) for c, pk in got.items())
    # no CPR number in any Parquet file Spark wrote (the rebuild's tables), nor the key in its compiled SQL
    files = sorted(str(p) for p in (spark.out / "tables").rglob("*.parquet"))
    assert files
    lake.execute("CREATE TABLE cpr AS SELECT unnest(?::VARCHAR[]) AS v", [sorted(cprs)])
    checked = 0
    for f in files:
        for c, t, *_ in lake.execute(f"DESCRIBE SELECT * FROM read_parquet('{f}')").fetchall():
            if t == "VARCHAR":
                q = f'SELECT count(*) FROM read_parquet(\'{f}\') JOIN cpr ON v = "{c}"'
            elif t == "VARCHAR[]":
                q = f'SELECT count(*) FROM (SELECT unnest("{c}") AS x FROM read_parquet(\'{f}\')) JOIN cpr ON v = x'
            else:
                continue
            assert lake.execute(q).fetchall()[0][0] == 0, (f, c)
            checked += 1
    assert checked > 100
    assert not [p for p in (spark.out / "tables").rglob("*") if re.search(r"ssi_|restricted", p.name)]
    compiled = " ".join(p.read_text(errors="replace") for p in (spark.out / "dbt_target").rglob("*.sql"))
    assert compiled and key.hex() not in compiled and "dsdw_person p" in compiled


def test_rebuild_equals_the_nightly_warehouse(rebuilt):
    root, duck, _spark, _session = rebuilt
    plan = load_plan(root)
    assert plan.source == "warehouse" and duck.loads == 2 and duck.payloads == len(plan.payloads) > 0
    # staging holds one night in the nightly warehouse and every night in a rebuild: schema main is compared
    rebuilt_sums = table_checksums(duck.out / "warehouse.duckdb")
    nightly = table_checksums(published_path(root), names=set(rebuilt_sums))
    assert set(rebuilt_sums) == set(nightly)
    assert {f"{fct_name(c)}_aktuel" for c in load_contracts().values() if not is_restricted(c)} <= set(nightly)
    assert {*MARTS, "mart_ydelser_publiceret", "mart_overgange_bidrag",
            "mart_panel_bestand_bidrag"} <= set(nightly)
    # the facts and most derived tables to the checksum; the rest differ only in the night that last wrote a row
    same = {t for t, v in rebuilt_sums.items() if nightly[t] == v}
    assert {f"{fct_name(c)}_aktuel" for c in load_contracts().values() if not is_restricted(c)} <= same
    assert {"dim_person", "mart_overgange", "fct_ydelsesforloeb"} <= same
    # the publication record is carried over (rebuild.carry_publications): a rebuild republishes nothing unmoved
    assert "mart_ydelser_publiceret" in same
    assert nightly_differences(duck.out / "warehouse.duckdb", published_path(root)) == {}
    assert nightly["fct_kontaktgruppe"][0] > 0 and nightly["fct_person_week"][0] > 0


def _shuffles(session, sql: str) -> list[tuple[str, set[str]]]:
    """Every hash shuffle in the physical plan of ``sql``: its keys (column names, comma-joined) and its input
    columns."""
    plan = session.sql("EXPLAIN FORMATTED " + sql).collect()[0][0]
    out = []
    for block in plan.split("\n\n")[1:]:
        if re.match(r"\(\d+\) Exchange\b", block.strip()):
            lines = [re.sub(r"#\d+L?", "", x) for x in block.splitlines()]
            args = next((x for x in lines if x.startswith("Arguments:")), "")
            cols = next((m.group(1) for x in lines if (m := re.match(r"Input \[\d+\]: \[(.*)\]", x))), "")
            if m := re.search(r"hashpartitioning\((.*), \d+\)", args):
                out.append((",".join(k.strip() for k in m.group(1).split(", ")), {c.strip() for c in cols.split(",")}))
    return out


def test_spark_panel_shuffles_no_person_week_row_by_person(rebuilt):
    """Spark's weekly panel (int_person_week_ny) distributes the spells by person number once; its person-week
    rows (hundreds of millions at 5 national years) are then grouped, joined with the spells and dim_person and
    windowed in their partition: no shuffle by person carries a week.  Planned without broadcast joins, as the
    large tables are planned at national scale (the tiny lake would broadcast everything)."""
    _root, _duck, spark, session = rebuilt
    compiled = next((spark.out / "dbt_target" / "compiled").rglob("scope/int_person_week_ny.sql")).read_text()
    before = session.conf.get("spark.sql.autoBroadcastJoinThreshold")
    session.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        shuffles = _shuffles(session, compiled)
    finally:
        session.conf.set("spark.sql.autoBroadcastJoinThreshold", before)
    by_person = [(k, c) for k, c in shuffles if k.split(",")[0] in ("pid", "person_key")]
    assert any("startdato" in c for _k, c in by_person)  # the spells are distributed by person
    assert not [(k, c) for k, c in by_person if "uge_start" in c], by_person


def test_spark_ydelser_shuffles_the_spells_not_the_person_period_rows(rebuilt):
    """Spark's mart_ydelser_beregning distributes the spells by person once and keeps every per-person step in
    its partition: no shuffle is keyed by a person together with a period or a cell (at 5 national years those
    rows -- six rollups per person and period -- were hundreds of millions and their shuffle filled the disk,
    docs/scale-out.md).  The rows are DuckDB's (test_spark_builds_every_analysts_model_with_the_same_rows)."""
    _root, _duck, spark, session = rebuilt
    compiled = next((spark.out / "dbt_target" / "compiled").rglob("engines/mart_ydelser_beregning.sql")).read_text()
    keys = [k for k, _cols in _shuffles(session, compiled)]
    by_person = [k for k in keys if "person_key" in k.split(",")]
    assert by_person and set(by_person) == {"person_key"}, keys
    # the cells are shuffled once, after every person's rows were summed in their partition
    assert keys.count("periode_type,periode_start,geo_niveau,geo_kode,ydelsesgruppe") == 1, keys


def test_rebuild_reports_its_steps(rebuilt):
    _root, duck, spark, _session = rebuilt
    assert {"plan", "prepare", "dbt_run", "publish"} <= set(duck.step_seconds)
    assert {"spark_session", "lake_views", "pseudonyms", "meta_tables", "dbt_run", "publish"} <= set(spark.step_seconds)
    print("rebuild steps (s): duckdb", {k: round(v, 1) for k, v in duck.step_seconds.items()},
          "spark", {k: round(v, 1) for k, v in spark.step_seconds.items()})


# instants (epoch seconds) around Copenhagen's DST changes, a year end and a leap day, with their Danish dates
EDGE_INSTANTS = [(1774738799, "2026-03-28"), (1774738800, "2026-03-29"), (1774745999, "2026-03-29"),
                 (1774746000, "2026-03-29"), (1792879199, "2026-10-24"), (1792879200, "2026-10-25"),
                 (1792888200, "2026-10-25"), (1792891800, "2026-10-25"), (1792969199, "2026-10-25"),
                 (1792969200, "2026-10-26"), (1798757999, "2026-12-31"), (1798758000, "2027-01-01"),
                 (1709161200, "2024-02-29"), (1709247599, "2024-02-29")]
EVENT_DATES = ["2026-03-28", "2026-10-24", "2026-12-31", "2027-01-01", "2024-02-28", "2024-03-01"]


def _engine_macros():
    """engines.sql's macros as plain Jinja (the default__ and spark__ bodies need no dbt context)."""
    import jinja2

    return jinja2.Environment().from_string((DBT / "macros" / "engines.sql").read_text(encoding="utf-8")).module


def test_timeliness_lags_are_the_same_on_edge_rows(rebuilt):
    """The timeliness marts' lag (dsdw_date_diff of an event date and dsdw_local_date of an instant) and month,
    evaluated by both engines on hand-made instants at the DST changes, a year end and a leap day: equal to
    each other and to Python's zoneinfo."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    _root, _duck, _spark, session = rebuilt
    m = _engine_macros()
    assert session.conf.get("spark.sql.session.timeZone") == "Europe/Copenhagen"
    rows = [(t, e) for t, _d in EDGE_INSTANTS for e in EVENT_DATES]
    values = ", ".join(f"({t}, DATE '{e}')" for t, e in rows)

    def sql(engine: str, ts: str) -> str:
        local = getattr(m, f"{engine}__dsdw_local_date")("t")
        lag = getattr(m, f"{engine}__dsdw_date_diff")("day", "CAST(e AS DATE)", local)
        return (f"SELECT s, CAST(e AS STRING), CAST({local} AS STRING), {lag}, "
                f"CAST(CAST(date_trunc('month', CAST(e AS DATE)) AS DATE) AS STRING) "
                f"FROM (SELECT s, {ts} AS t, e FROM (VALUES {values}) v(s, e)) x")

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # default__dsdw_local_date names its time zone; not the session's
    duck = sorted(con.execute(sql("default", "to_timestamp(s)")).fetchall())
    spark = sorted(tuple(r) for r in session.sql(sql("spark", "timestamp_seconds(s)")).collect())
    cph = ZoneInfo("Europe/Copenhagen")
    truth = sorted((t, e, str(dt.datetime.fromtimestamp(t, cph).date()),
                    (dt.datetime.fromtimestamp(t, cph).date() - dt.date.fromisoformat(e)).days, e[:8] + "01")
                   for t, e in rows)
    assert [(t, d) for t, d in EDGE_INSTANTS] == [(t, str(dt.datetime.fromtimestamp(t, cph).date()))
                                                   for t, _ in EDGE_INSTANTS]
    assert duck == truth
    assert spark == truth


def test_timeliness_medians_are_the_same_on_edge_histograms(rebuilt):
    """mart_indberetning_rettidighed (its dbt file, as both engines run it) on hand-made signed histograms: even
    and odd counts, a single value, retractions (-1) that empty a lag or a whole cell, a month at a year end.
    The medians equal Python's statistics.median of the expanded lags (the mean of the two middle values)."""
    import statistics

    _root, _duck, _spark, session = rebuilt
    # (cell, lag, antal): cell = (month, kommune, rule)
    hist = {("2026-12-01", "101", "KG-001"): [(0, 1), (3, 1)],                # even: 1.5
            ("2027-01-01", "101", "KG-001"): [(0, 2), (1, 1), (9, 1)],        # even, repeated: 0.5
            ("2026-12-01", "147", "KG-001"): [(2, 3), (5, 2)],                # odd: 2
            ("2026-12-01", "147", "KG-002"): [(7, 1)],                        # single: 7
            ("2026-11-01", "751", "KG-001"): [(1, 2), (1, -1), (4, 1), (6, 1), (6, -1), (8, 1)],  # 4 after retraction
            ("2026-11-01", "751", "KG-002"): [(3, 1), (3, -1)],               # retracted whole: no row
            ("2026-10-01", "615", "KG-001"): [(-2, 1), (0, 1), (2, 1), (30, 1)]}  # negative lag, even: 1.0
    rows = [(k[0], k[1], k[2], lag, n) for k, v in hist.items() for lag, n in v]
    bidrag = ("SELECT 'L1' AS load_id, DATE '2027-01-02' AS indlaest_dato, CAST(m AS DATE) AS haendelse_maaned, "
              "'kommune' AS indberetter_type, k AS indberetter, 'kontaktgruppe' AS dataset, r AS regel_id, "
              "'§ 16' AS paragraf, 'warn' AS alvorlighed, 1 AS max_forsinkelse_dage, CAST(lag AS INT) AS {lag}, "
              "CAST(n AS BIGINT) AS antal FROM (VALUES " + ", ".join(f"('{a}', '{b}', '{c}', {d}, {e})"
                                                                   for a, b, c, d, e in rows) + ") v(m, k, r, lag, n)")
    text = (DBT / "models" / "derived" / "marts" / "mart_indberetning_rettidighed.sql").read_text(encoding="utf-8")
    names = {"mart_indberetning_rettidighed_bidrag": "e_bidrag", "mart_indberetning_ankomst_bidrag": "e_ankomst",
             "dim_kommune": "e_kommune", "dim_akasse": "e_akasse"}
    text = re.sub(r"\{\{ config\(.*?\) \}\}", "", text)
    text = re.sub(r"\{\{ ref\('(\w+)'\) \}\}", lambda g: names[g.group(1)], text)
    assert "{{" not in text
    q = ("SELECT CAST(maaned AS STRING), indberetter, regel_id, poster, poster_rettidige, andel_rettidige, "
         "median_forsinkelse_dage, poster_ankomst, median_ankomst_forsinkelse_dage FROM v")
    con = duckdb.connect()
    for engine in ("duckdb", "spark"):
        views = {"e_bidrag": bidrag.format(lag="forsinkelse_dage"),
                 "e_ankomst": bidrag.format(lag="ankomst_forsinkelse_dage"),
                 "e_kommune": "SELECT k AS kommunekode, 'K' || k AS kommune FROM (VALUES ('101'), ('147')) v(k)",
                 "e_akasse": "SELECT '00' AS akassekode, 'A' AS akasse"}
        for name, body in views.items():
            (con.execute if engine == "duckdb" else session.sql)(f"CREATE OR REPLACE TEMP VIEW {name} AS {body}")
        (con.execute if engine == "duckdb" else session.sql)(f"CREATE OR REPLACE TEMP VIEW v AS {text}")
    duck = sorted(con.execute(q).fetchall())
    spark = sorted(tuple(r) for r in session.sql(q).collect())
    assert duck == spark
    want = {}
    for (mo, k, r), v in hist.items():
        lags = sorted(lag for lag, n in ((lag, sum(x for g, x in v if g == lag)) for lag in {g for g, _ in v})
                      for _ in range(max(n, 0)))
        if lags:
            want[(mo, k, r)] = (len(lags), statistics.median(lags))
    assert {(a, b, c): (p, med) for a, b, c, p, _r, _andel, med, _pa, _ma in duck} == want
    assert all(pa == p and ma == med for _a, _b, _c, p, _r, _andel, med, pa, ma in duck)
    assert [r for r in duck if r[1] == "751" and r[2] == "KG-002"] == []


def test_spark_reads_the_archived_versions_of_a_corrected_payload(rebuilt, tmp_path, monkeypatch):
    """Spark's lake views hold a superseded payload's archived rows beside the live ones (a rebuild's load plan
    picks the payloads it planned, the retracted versions included); the live lake files alone do not."""
    import datetime as dt

    from fixtures_wh import cpr_for, deliver, kg, use_keys

    from pipelines.warehouse import spark as S

    tiny_root, _duck, _spark, session = rebuilt
    use_keys(monkeypatch, tmp_path / "keys")
    root = tmp_path / "root"
    day, p1 = dt.date(2026, 10, 1), cpr_for(dt.date(1980, 5, 17), 1)
    a = deliver(root, "kontaktgruppe", day, [kg(1, p1, "1", "2026-09-01")])
    a2 = deliver(root, "kontaktgruppe", day, [kg(1, p1, "1", "2026-09-01", "2026-09-20", version=2, change="2")])
    plan = load_plan(root)
    assert plan.source == "ledger" and [p["payload_id"] for p in plan.payloads] == [a2]
    try:
        S.lake_views(session, root)
        rows = sorted(tuple(r) for r in session.sql(
            "SELECT _payload_id, version, CAST(slutdato AS STRING) FROM dsdw_lake__kontaktgruppe").collect())
    finally:
        S.lake_views(session, tiny_root)  # the module's other tests read the tiny lake's views
    assert rows == sorted([(a, 1, None), (a2, 2, "2026-09-20")])
