"""Dagster definitions of the warehouse: the dbt models as assets, the nightly job and its sensor.

dbt builds every model (``@dbt_assets`` in :mod:`pipelines.assets.warehouse_dbt`: one asset per model,
the dbt tests as asset checks).  The Python steps around ``dbt build`` (ledger increment, pseudonyms,
unsealing/sealing the restricted database, publishing by atomic swap, restoring on failure) run in the
same step, because DuckDB has one writer per file and the restricted database is unsealed for one step.
"""


import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg

from pipelines.assets.ingestion import DsdwResource, daily, nightly_ingestion

PUBLISHED = dg.AssetKey(["warehouse", "warehouse_duckdb"])


def _after_ingestion(job: Any) -> dg.SensorDefinition:
    @dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[nightly_ingestion], request_job=job,
                          name="warehouse_after_ingestion", default_status=dg.DefaultSensorStatus.STOPPED)
    def warehouse_after_ingestion(context: dg.RunStatusSensorContext):
        """Start the warehouse load for a partition once its nightly ingestion run succeeded."""
        run = context.dagster_run
        pk = run.tags.get("dagster/partition")
        if not pk:
            return dg.SkipReason("ingestion run without partition")
        return dg.RunRequest(run_key=f"warehouse:{pk}", partition_key=pk)

    return warehouse_after_ingestion


def _published_asset(models: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """``warehouse/warehouse_duckdb``: the analysts' database the dbt step published by atomic swap, with the
    load's figures (``meta.load``) as metadata, and the ledger-against-lake reconciliation (files, not
    relations: not a dbt test) as its check."""

    @dg.asset(key=PUBLISHED, deps=[*models.keys, dg.AssetKey(["quality", "dq_results"])], partitions_def=daily,
              group_name="warehouse", kinds={"duckdb"},
              check_specs=[dg.AssetCheckSpec("reconcile_ledger_lake", asset=PUBLISHED,
                                             description="Every loaded payload's accepted rows are its rows in the "
                                                         "lake, and the lake holds rows of loaded payloads only.")],
              description="The analysts' warehouse.duckdb (pseudonymised; published by atomic swap after each load), "
                          "with the quality results attached in schema dq.")
    def warehouse_duckdb(context: dg.AssetExecutionContext, dsdw: DsdwResource):
        import duckdb

        from pipelines.warehouse.build import published_path
        from pipelines.warehouse.checks import lake_ledger_checks

        root = Path(dsdw.root)
        day = dt.date.fromisoformat(context.partition_key)
        con = duckdb.connect(str(published_path(root)), read_only=True)
        try:
            row = con.execute("""SELECT l.load_id, l.payloads, l.rows_staged, l.rows_deduplicated, l.affected_persons,
                    l.affected_maaneder, l.seconds, (SELECT count(*) FROM meta.retracted_payload r
                                                    WHERE r.load_id = l.load_id)
                FROM meta.load l WHERE l.indlaest_dato = ? ORDER BY l.finished_at DESC LIMIT 1""", [day]).fetchone()
        finally:
            con.close()
        if row is None:
            raise RuntimeError(f"no warehouse load of {day} in {published_path(root)}")
        yield dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(published_path(root))), "load_id": row[0], "payloads": row[1],
            "rows_staged": row[2], "rows_deduplicated": row[3], "retracted_payloads": row[7],
            "affected_persons": row[4], "affected_months": row[5], "seconds": round(row[6] or 0.0, 2)})
        bad = [r for r in lake_ledger_checks(root) if not r.passed]
        yield dg.AssetCheckResult(check_name="reconcile_ledger_lake", passed=not bad, metadata={
            "failed": dg.MetadataValue.json([{"rows": r.failures, "examples": [list(map(str, e)) for e in r.examples]}
                                             for r in bad])})

    return warehouse_duckdb


def current_manifest(manifest: Path) -> Path:
    """dbt's manifest of the project as it is now: parsed again when the project's files or code lists changed
    since it was written (a stale manifest would define yesterday's assets), under a file lock, because every
    process that loads the definitions (the xdist workers, dagster's code server) may ask at once."""
    import fcntl

    from pipelines.warehouse.dbt_runner import parse_manifest, project_digest

    manifest.parent.mkdir(parents=True, exist_ok=True)
    stamp = manifest.with_name("manifest.digest")
    with open(manifest.with_name(".parse.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = project_digest()
        if not manifest.exists() or not stamp.exists() or stamp.read_text() != digest:
            parse_manifest()
            stamp.write_text(digest)
    return manifest


def warehouse_defs() -> dict:
    """The warehouse's assets, job, sensor and resources: one ``@dbt_assets`` asset per model with the dbt tests
    as asset checks (the manifest is parsed first when missing), the published database, the job ``nightly_warehouse`` and the sensor
    ``warehouse_after_ingestion``."""
    from pipelines.assets.warehouse_dbt import MANIFEST, build_dbt_assets, dbt_resource

    assets = build_dbt_assets(current_manifest(MANIFEST))
    published = _published_asset(assets)
    job = dg.define_asset_job("nightly_warehouse", selection=dg.AssetSelection.assets(assets, published),
                              description="The warehouse load (dbt build) after the day's ingestion and quality run.")
    return {"assets": [assets, published], "jobs": [job], "sensors": [_after_ingestion(job)], "resources": {"dbt": dbt_resource()}}
