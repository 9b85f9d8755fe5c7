"""The ingestion steps' process pool (``DsdwResource.ingest_workers`` > 1, the demo's setting): a dataset
is ingested only when Dagster would start its step, so a failed blocking check upstream leaves its
dependents' partitions unloaded, as with serial steps."""

import datetime as dt
import sqlite3
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from pipelines.assets.ingestion import INGESTION_ASSETS, DsdwResource, shutdown_ingest_pools

DAY = dt.date(2026, 10, 1)
# samtale waits for indkaldelse (and kontaktgruppe; foerste_henvendelse is not in the run); opslag for nothing
DATASETS = ("kontaktgruppe", "indkaldelse", "samtale", "stillingsopslag")


def test_a_failed_blocking_check_keeps_its_dependents_out_of_the_pool(sources_seed21: Path, serve_sources,
                                                                      tmp_path: Path) -> None:
    assets = [a for a in INGESTION_ASSETS if a.key.path[-1] in DATASETS]
    root = tmp_path / "zones"
    try:
        with serve_sources(sources_seed21, tmp_path / "sources.json") as state:
            res = dg.materialize(assets, partition_key=DAY.isoformat(), raise_on_error=False, resources={
                "dsdw": DsdwResource(root=str(root), sources_file=str(state), error_tolerance=0.0,
                                     error_min_records=1, ingest_workers=2)})
    finally:
        shutdown_ingest_pools()
    checks = {(e.asset_key.path[-1], e.check_name): e.passed for e in res.get_asset_check_evaluations()}
    assert checks[("indkaldelse", "dq_error_rules")] is False  # 30 % defects, zero tolerance
    assert checks[("kontaktgruppe", "dq_error_rules")] is True
    mats = {m.asset_key.path[-1]: m for m in res.get_asset_materialization_events()}
    assert set(mats) == {"kontaktgruppe", "indkaldelse", "stillingsopslag"}  # samtale's step skipped ...
    con = sqlite3.connect(root / "ledger.sqlite")
    loaded = {r[0] for r in con.execute("SELECT DISTINCT dataset FROM payloads")}
    con.close()
    assert "samtale" not in loaded and not (root / "lake" / "samtale").exists()  # ... and never ingested
    assert {"kontaktgruppe", "indkaldelse", "stillingsopslag"} <= loaded
    for ds in ("kontaktgruppe", "indkaldelse", "stillingsopslag"):  # what the steps report is what the workers landed
        md = mats[ds].step_materialization_data.materialization.metadata
        assert md["rows_accepted"].value == pq.read_table(root / "lake" / ds).num_rows > 0
