"""Dagster assets for the warehouse: every SQL model is an asset, loaded by one writer step.

All models of a nightly load run in one step (a multi-asset) because DuckDB has
one writer per database and the load publishes the analysts' database by one
atomic swap at its end; the per-model assets still show the lineage from each
lake dataset to every fact, dimension and mart, with per-model metadata.  The
dbt-style tests run as asset checks on the published database.
"""


import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg

from pipelines.assets.ingestion import DsdwResource, asset_key, daily, nightly_ingestion
from pipelines.warehouse.models import Model, build_order, load_models

PUBLISHED = dg.AssetKey(["warehouse", "warehouse_duckdb"])
PUBLISHED_DESCRIPTION = ("The analysts' warehouse.duckdb (pseudonymised; published by atomic swap after each load), "
                         "with the quality results attached in schema dq.")
CHECK_KINDS = {
    "unique": "Keys unique: hand-written models' keys, one current version per record, one fact row per message.",
    "foreign_key": "Codes in the facts resolve in their dimensions (warns: unknown codes are kept as received "
                   "and reported by the quality rules).",
    "no_overlap": "Spells of one person do not overlap where the contract forbids it (e.g. § 16, stk. 6).",
    "reconcile": "Accepted lake rows = staged rows + counted duplicates; fact rows = staged rows of all loads.",
}


def model_key(m: Model) -> dg.AssetKey:
    return dg.AssetKey(["warehouse", m.name])


def _failed(bad: list[Any], named: bool = False) -> dg.MetadataValue:
    """The failed checks as check metadata: rows and examples (the check's name and rule when several share a
    kind), so a steward sees which rows failed without opening the database."""
    return dg.MetadataValue.json([{**({"check": r.name, "rule": r.rule} if named else {}), "rows": r.failures,
                                   "examples": [list(map(str, e)) for e in r.examples]} for r in bad])


def _specs() -> list[dg.AssetSpec]:
    models = load_models()
    specs = []
    for m in build_order(models):
        deps: list[dg.AssetKey] = [model_key(models[d]) for d in m.depends_on]
        if m.materialization == "increment":
            deps.append(asset_key(m.name.split("__", 1)[1]))
        specs.append(dg.AssetSpec(
            key=model_key(m), deps=deps, group_name=f"warehouse_{m.layer}",
            description=f"{m.grain}" + (f" ({m.header.get('legal basis')})" if m.header.get("legal basis") else ""),
            kinds={"duckdb"}, metadata={"materialization": m.materialization, "database": m.database,
                                        "keys": ", ".join(m.keys), "sql": str(m.path)},
            skippable=False))
    specs.append(dg.AssetSpec(
        key=PUBLISHED, deps=[s.key for s in specs] + [dg.AssetKey(["quality", "dq_results"])],
        group_name="warehouse", kinds={"duckdb"},
        description=PUBLISHED_DESCRIPTION))
    return specs


@dg.multi_asset(
    name="warehouse_load",
    specs=_specs(),
    partitions_def=daily,
    check_specs=[dg.AssetCheckSpec(k, asset=PUBLISHED, description=d) for k, d in CHECK_KINDS.items()],
    can_subset=False,
)
def warehouse_load(context: dg.AssetExecutionContext, dsdw: DsdwResource):
    """Load the lake's new payloads up to the partition day into the warehouse and publish it."""
    import duckdb

    from pipelines.warehouse.build import load_warehouse
    from pipelines.warehouse.checks import run_checks

    day = dt.date.fromisoformat(context.partition_key)
    root = Path(dsdw.root)
    res = load_warehouse(root, day)
    models = load_models()
    for m in build_order(models):
        yield dg.MaterializeResult(asset_key=model_key(m), metadata={
            "seconds": round(res.model_seconds.get(m.name, 0.0), 3),
            "rows": res.model_rows.get(m.name, -1),
        })
    yield dg.MaterializeResult(asset_key=PUBLISHED, metadata={
        "path": dg.MetadataValue.path(str(res.published)), "load_id": res.load_id,
        "payloads": res.payloads, "rows_staged": sum(res.rows_staged.values()),
        "rows_deduplicated": res.rows_deduplicated, "retracted_payloads": res.retracted,
        "affected_persons": res.affected_persons, "affected_months": res.affected_maaneder,
        "seconds": round(res.seconds, 2), "publish_seconds": round(res.publish_seconds, 2)})
    con = duckdb.connect(str(res.published), read_only=True)
    try:
        results = run_checks(con, root)
    finally:
        con.close()
    for kind in CHECK_KINDS:
        mine = [r for r in results if r.kind == kind]
        bad = [r for r in mine if not r.passed]
        sev = dg.AssetCheckSeverity.WARN if kind == "foreign_key" else dg.AssetCheckSeverity.ERROR
        yield dg.AssetCheckResult(
            asset_key=PUBLISHED, check_name=kind, passed=not bad, severity=sev,
            metadata={"checks": len(mine), "failed": _failed(bad, named=True)})


nightly_warehouse = dg.define_asset_job(
    "nightly_warehouse", selection=dg.AssetSelection.assets(warehouse_load),
    description="The warehouse load after the day's ingestion and quality run.")


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


warehouse_after_ingestion = _after_ingestion(nightly_warehouse)


def _published_asset(models: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """``warehouse/warehouse_duckdb``: the analysts' database the dbt step published by atomic swap, with the
    load's figures (``meta.load``) as metadata, and the ledger-against-lake reconciliation (files, not
    relations: not a dbt test) as its check."""

    @dg.asset(key=PUBLISHED, deps=[*models.keys, dg.AssetKey(["quality", "dq_results"])], partitions_def=daily,
              group_name="warehouse", kinds={"duckdb"},
              check_specs=[dg.AssetCheckSpec("reconcile_ledger_lake", asset=PUBLISHED,
                                             description="Every loaded payload's accepted rows are its rows in the "
                                                         "lake, and the lake holds rows of loaded payloads only.")],
              description=PUBLISHED_DESCRIPTION)
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
        yield dg.AssetCheckResult(check_name="reconcile_ledger_lake", passed=not bad,
                                  metadata={"failed": _failed(bad)})

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


def warehouse_defs(runner: str | None = None) -> dict:
    """The warehouse's assets, job, sensor and resources for a runner (default: ``DSDW_WAREHOUSE_RUNNER``).

    ``sql``: ``warehouse_load`` above. ``dbt``: one ``@dbt_assets`` asset per model with the dbt tests as asset
    checks (pipelines.assets.warehouse_dbt; the manifest parsed again when the project changed), then the published
    database ``warehouse/warehouse_duckdb`` as its own asset (the load's figures, the reconciliation check), under
    the same job and sensor names, so schedules, the demo and deliveries do not change."""
    from pipelines.warehouse.build import default_runner

    if (runner or default_runner()) == "sql":
        return {"assets": [warehouse_load], "jobs": [nightly_warehouse], "sensors": [warehouse_after_ingestion],
                "resources": {}}
    from pipelines.assets.warehouse_dbt import MANIFEST, build_dbt_assets, dbt_resource

    assets = build_dbt_assets(current_manifest(MANIFEST))
    published = _published_asset(assets)
    job = dg.define_asset_job("nightly_warehouse", selection=dg.AssetSelection.assets(assets, published),
                              description="The warehouse load (dbt build) after the day's ingestion and quality run.")
    return {"assets": [assets, published], "jobs": [job], "sensors": [_after_ingestion(job)], "resources": {"dbt": dbt_resource()}}
