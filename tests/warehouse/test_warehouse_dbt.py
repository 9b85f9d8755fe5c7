"""The dbt runner (every model, the hand-written ones ported): the same warehouse as the sql runner, and the dbt
models as Dagster assets.

Slow (dbt parses ~140 models and ~300 tests, ~25 s CPU per build): excluded from the default run;
bench/compare_runners.py compares both runners on a synthetic tiny Denmark row for row.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3

import dagster as dg
import duckdb
import pytest
from fixtures_wh import cpr_for, deliver, kg, use_keys

from pipelines.warehouse.build import load_warehouse, published_path

pytestmark = pytest.mark.slow

D1, D2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
P1 = cpr_for(dt.date(1980, 5, 17), 1)
P2 = cpr_for(dt.date(1991, 2, 3), 2, male=False)
K = [f"22222222-0000-4000-8000-00000000000{i}" for i in range(4)]


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("dbt")
    use_keys(mp, base / "keys")
    lake = base / "lake_root"
    deliver(lake, "kontaktgruppe", D1, [kg(K[0], P1, "1", "2026-09-01"), kg(K[1], P2, "1", "2026-08-01", "2026-09-15"),
                                        kg(K[2], P2, "2", "2026-09-20")])
    deliver(lake, "kontaktgruppe", D2, [kg(K[0], P1, "1", "2026-09-01", "2026-09-30", version=2, change="2"),
                                        kg(K[2], P2, "2", "2026-09-20", version=2, change="3"),
                                        kg(K[3], P1, "3", "2026-10-01")])
    out = {}
    for runner in ("sql", "dbt"):
        root = base / runner
        shutil.copytree(lake, root)
        lc = sqlite3.connect(root / "ledger.sqlite")
        lc.execute("UPDATE payloads SET lake_path = replace(lake_path, ?, ?)", (str(lake), str(root)))
        lc.commit()
        lc.close()
        for d in (D1, D2):
            load_warehouse(root, d, runner=runner)
        out[runner] = root
    yield out
    mp.undo()


def test_dbt_runner_builds_the_same_warehouse(roots, tmp_path):
    con = duckdb.connect()
    con.execute(f"ATTACH '{published_path(roots['sql'])}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{published_path(roots['dbt'])}' AS b (READ_ONLY)")
    names = [r[0] for r in con.execute(
        "SELECT DISTINCT table_name FROM duckdb_tables() WHERE database_name = 'a' AND schema_name = 'main'"
    ).fetchall()]
    assert {"fct_kontaktgruppe", "fct_kontaktgruppe_aktuel", "dim_person", "fct_person_week"} <= set(names)
    dbt_names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'b'").fetchall()}
    assert not [n for n in dbt_names if "__dbt_tmp" in n]  # the Python model's leftover is dropped
    for t in names:
        cols = ", ".join(f'"{c}"' for (c,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = 'a' AND table_name = ? "
            "AND column_name <> 'load_id'", [t]).fetchall())
        diff = con.execute(f"SELECT count(*) FROM ((SELECT {cols} FROM a.{t} EXCEPT ALL SELECT {cols} FROM b.{t}) "
                           f"UNION ALL (SELECT {cols} FROM b.{t} EXCEPT ALL SELECT {cols} FROM a.{t}))").fetchone()[0]
        assert diff == 0, t
    # the data itself: K[0] closed by its version 2, K[2] deleted, K[3] new
    cur = con.execute("SELECT kontaktgruppe_id, gyldig_til FROM b.fct_kontaktgruppe_aktuel ORDER BY 1").fetchall()
    assert cur == [(K[0], dt.date(2026, 9, 30)), (K[1], dt.date(2026, 9, 15)), (K[3], None)]
    hist = con.execute("SELECT count(*), count(*) FILTER (er_seneste) FROM b.fct_kontaktgruppe_historik").fetchone()
    assert hist == (6, 4)
    con.close()
    pub = duckdb.connect(str(published_path(roots["dbt"])), read_only=True)  # macros resolve in their database
    assert pub.execute("SELECT kontaktgruppe_id FROM fct_kontaktgruppe_as_of(DATE '2026-10-01') ORDER BY 1"
                       ).fetchall() == [(K[0],), (K[1],), (K[2],)]  # before K[2]'s deletion and K[3]
    assert pub.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = 'fct_kontaktgruppe__person_key'"
                       ).fetchone()[0] == 1
    # the current state's record key is a unique index (the night's guard instead of a test query): a second
    # current version of a record is refused
    assert pub.execute("SELECT is_unique FROM duckdb_indexes() WHERE index_name = 'fct_kontaktgruppe_aktuel__key'"
                       ).fetchall() == [(True,)]
    pub.close()
    shutil.copy(published_path(roots["dbt"]), tmp_path / "copy.duckdb")
    copy = duckdb.connect(str(tmp_path / "copy.duckdb"))
    with pytest.raises(duckdb.ConstraintException):
        copy.execute("INSERT INTO fct_kontaktgruppe_aktuel BY NAME SELECT * FROM fct_kontaktgruppe_aktuel LIMIT 1")
    copy.close()


def test_dbt_models_are_dagster_assets_with_lake_lineage_and_test_checks(tmp_path, monkeypatch):
    from pipelines.assets.ingestion import DsdwResource
    from pipelines.assets.warehouse import PUBLISHED, warehouse_defs

    use_keys(monkeypatch, tmp_path / "keys")
    wh = warehouse_defs("dbt")
    assets, published = wh["assets"]
    kg_ = dg.AssetKey(["warehouse", "stg_jobcenter__kontaktgruppe"])
    assert dg.AssetKey(["lake", "kontaktgruppe"]) in assets.asset_deps[kg_]
    assert kg_ in assets.asset_deps[dg.AssetKey(["warehouse", "fct_kontaktgruppe"])]
    assert dg.AssetKey(["warehouse", "mart_ydelser"]) in published.asset_deps[PUBLISHED]
    checks = {c.name for c in assets.check_specs}
    assert any(n.startswith("dsdw_no_overlap") for n in checks)
    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", D1, [kg(K[0], P1, "1", "2026-09-01"), kg(K[1], P1, "2", "2026-09-10")])
    res = dg.materialize(wh["assets"], partition_key=D1.isoformat(), raise_on_error=False,
                         resources={"dsdw": DsdwResource(root=str(root), sources_file="unused"), **wh["resources"]},
                         run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
    assert res.success
    evals = {e.check_name: e for e in res.get_asset_check_evaluations()}
    overlap = [e for n, e in evals.items() if n.startswith("dsdw_no_overlap") and "kontaktgruppe" in n]
    assert overlap and not overlap[0].passed  # § 16, stk. 6: two open spells of one person (a warning)
    assert evals["reconcile_ledger_lake"].passed
    # the published database is an asset of its own, with the load's figures (the demo and deliveries read it)
    pub = next(e for e in res.get_asset_materialization_events() if e.asset_key == PUBLISHED
               ).step_materialization_data.materialization.metadata
    assert pub["payloads"].value == 1 and pub["rows_staged"].value == 2
    con = duckdb.connect(str(published_path(root)), read_only=True)
    assert con.execute("SELECT count(*) FROM fct_kontaktgruppe_aktuel").fetchone()[0] == 2
    con.close()
