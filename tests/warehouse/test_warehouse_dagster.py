"""The warehouse load as Dagster assets: one asset per model, checks on the published database."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
from fixtures_wh import cpr_for, deliver

from pipelines.assets.ingestion import DsdwResource
from pipelines.assets.warehouse import PUBLISHED, model_key, warehouse_load
from pipelines.definitions import defs
from pipelines.warehouse import keys as wkeys
from pipelines.warehouse.models import load_models

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def test_every_model_is_an_asset_with_lineage_from_the_lake():
    keys = warehouse_load.keys
    models = load_models()
    assert {model_key(m) for m in models.values()} | {PUBLISHED} == set(keys)
    deps = warehouse_load.asset_deps
    assert dg.AssetKey(["lake", "kontaktgruppe"]) in deps[dg.AssetKey(["warehouse", "stg_jobcenter__kontaktgruppe"])]
    assert dg.AssetKey(["warehouse", "fct_kontaktgruppe"]) in deps[dg.AssetKey(["warehouse", "fct_ydelsesforloeb"])]
    assert defs.resolve_job_def("nightly_warehouse") is not None


def test_materialize_loads_publishes_and_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("DSDW_KEY_DIR", str(tmp_path / "keys"))
    wkeys.ensure_key("pseudonym")
    wkeys.ensure_key("restricted")
    root = tmp_path / "root"
    day = dt.date(2026, 10, 2)
    deliver(root, "kontaktgruppe", day, [
        {"kontaktgruppe_id": "k1", "cpr": cpr_for(dt.date(1970, 1, 1), 1), "kontaktgruppe": "1",
         "startdato": dt.date(2026, 9, 1)},
        {"kontaktgruppe_id": "k2", "cpr": cpr_for(dt.date(1970, 1, 1), 1), "kontaktgruppe": "2",
         "startdato": dt.date(2026, 9, 10)}])  # overlaps k1: § 16, stk. 6 check must fail
    res = dg.materialize([warehouse_load], partition_key=day.isoformat(), run_config=QUIET,
                         resources={"dsdw": DsdwResource(root=str(root), sources_file="unused")},
                         raise_on_error=False)
    assert res.success
    mats = res.get_asset_materialization_events()
    assert {e.asset_key for e in mats} == set(warehouse_load.keys)
    pub = next(e for e in mats if e.asset_key == PUBLISHED).materialization.metadata
    assert pub["payloads"].value == 1 and pub["rows_staged"].value == 2
    checks = {c.check_name: c for c in res.get_asset_check_evaluations()}
    assert checks["unique"].passed and checks["reconcile"].passed
    assert not checks["no_overlap"].passed
    assert "§ 16" in str(checks["no_overlap"].metadata["failed"].value)
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM fct_kontaktgruppe").fetchone()[0] == 2
