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

    # the second night, the nightly selection through dagster-dbt (every Dagster night after the first failed on
    # its arguments once): the file corrected (k1 ended; the payload superseded and archived) loads and retracts
    deliver(root, "kontaktgruppe", day, [
        {"kontaktgruppe_id": "k1", "cpr": cpr_for(dt.date(1970, 1, 1), 1), "kontaktgruppe": "1",
         "startdato": dt.date(2026, 9, 1), "slutdato": dt.date(2026, 9, 9), "version": 2, "aendringstype": "2"},
        {"kontaktgruppe_id": "k2", "cpr": cpr_for(dt.date(1970, 1, 1), 1), "kontaktgruppe": "2",
         "startdato": dt.date(2026, 9, 10)}])
    night2 = day + dt.timedelta(days=1)
    res = dg.materialize(wh["assets"], partition_key=night2.isoformat(), run_config=QUIET, raise_on_error=False,
                         resources={"dsdw": DsdwResource(root=str(root), sources_file="unused"), **wh["resources"]})
    assert res.success
    checks = {c.check_name: c for c in res.get_asset_check_evaluations()}
    # every model of the run is reported for the night (the ones it did not rebuild as such), so the published
    # warehouse and its reconciliation ran after them
    night_mats = {e.asset_key: e.step_materialization_data.materialization.metadata
                  for e in res.get_asset_materialization_events()}
    assert PUBLISHED in night_mats and set(wh["assets"][0].keys) <= set(night_mats)
    kept = [k for k, m in night_mats.items() if "dsdw/rebuilt" in m]
    assert kept and dg.AssetKey(["warehouse", "fct_kontaktgruppe"]) not in kept
    assert all(night_mats[k]["dsdw/rebuilt"].value is False for k in kept)
    assert checks["reconcile_ledger_lake"].passed
    assert not [n for n, c in checks.items() if n.startswith("dsdw_no_overlap") and "kontaktgruppe" in n and
                not c.passed]  # k1 now ends before k2 starts
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT kontaktgruppe_id, version, CAST(slutdato AS VARCHAR) FROM fct_kontaktgruppe_aktuel "
                           "ORDER BY 1").fetchall() == [("k1", 2, "2026-09-09"), ("k2", 1, None)]
        assert con.execute("SELECT count(*), count(DISTINCT load_id) FROM fct_kontaktgruppe").fetchone() == (4, 2)
        assert con.execute("SELECT count(*) FROM meta.retracted_payload WHERE indlaest_dato = ?",
                           [night2]).fetchone()[0] == 1
    finally:
        con.close()
