"""The warehouse load through Dagster: one asset per dbt model (dagster-dbt), dbt tests as asset checks, and the
published database as the asset after them."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb
from fixtures_wh import cpr_for, deliver

from pipelines.assets.ingestion import DsdwResource
from pipelines.assets.warehouse import PUBLISHED, warehouse_defs
from pipelines.definitions import defs
from pipelines.warehouse import keys as wkeys

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def test_every_model_is_an_asset_with_lineage_from_the_lake():
    wh = warehouse_defs()
    models, published = wh["assets"]
    deps = models.asset_deps
    assert dg.AssetKey(["lake", "kontaktgruppe"]) in deps[dg.AssetKey(["warehouse", "stg_jobcenter__kontaktgruppe"])]
    assert dg.AssetKey(["warehouse", "fct_kontaktgruppe_aktuel"]) in deps[dg.AssetKey(["warehouse", "fct_ydelsesforloeb"])]
    assert dg.AssetKey(["warehouse", "fct_kontaktgruppe"]) in deps[dg.AssetKey(["warehouse", "fct_kontaktgruppe_aktuel"])]
    assert dg.AssetKey(["warehouse", "mart_ydelser"]) in published.asset_deps[PUBLISHED]
    assert any(c.name.startswith("dsdw_no_overlap") for c in models.check_specs)
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
         "startdato": dt.date(2026, 9, 10)}])  # overlaps k1: the § 16, stk. 6 check warns
    wh = warehouse_defs()
    res = dg.materialize(wh["assets"], partition_key=day.isoformat(), run_config=QUIET, raise_on_error=False,
                         resources={"dsdw": DsdwResource(root=str(root), sources_file="unused"), **wh["resources"]})
    assert res.success
    mats = {e.asset_key for e in res.get_asset_materialization_events()}
    assert {PUBLISHED, dg.AssetKey(["warehouse", "fct_kontaktgruppe"]), dg.AssetKey(["warehouse", "mart_ydelser"])} <= mats
    pub = next(e for e in res.get_asset_materialization_events() if e.asset_key == PUBLISHED
               ).step_materialization_data.materialization.metadata
    assert pub["payloads"].value == 1 and pub["rows_staged"].value == 2
    checks = {c.check_name: c for c in res.get_asset_check_evaluations()}
    assert checks["reconcile_ledger_lake"].passed
    overlap = [c for n, c in checks.items() if n.startswith("dsdw_no_overlap") and "kontaktgruppe" in n]
    assert overlap and not overlap[0].passed and overlap[0].severity == dg.AssetCheckSeverity.WARN
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM fct_kontaktgruppe").fetchone()[0] == 2
    con.close()
