"""The warehouse's dbt models as Dagster assets (dagster-dbt): one asset per model, dbt tests as checks.

``@dbt_assets`` reads the dbt manifest (``dsdw warehouse dbt-parse`` writes it to
``warehouse/target/manifest.json``); the lake sources carry ``meta.dagster.asset_key`` = the lake's
asset keys, so lineage runs from each reporter's dataset to every model.  The Python steps around
``dbt build`` (ledger increment, pseudonyms of new CPRs, unsealing/sealing the restricted database,
publishing by atomic swap, restoring on failure) run in the same step, because
DuckDB has one writer per file and the restricted database is unsealed in memory for one step only.
"""


import datetime as dt
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from pipelines.assets.ingestion import DsdwResource, daily
from pipelines.warehouse.dbt_runner import PROJECT_DIR, _env, target_dir

MANIFEST = PROJECT_DIR / "target" / "manifest.json"


class WarehouseTranslator(DagsterDbtTranslator):
    """Models are ``warehouse/<model>`` (the keys the deliveries and checks depend on); sources use their meta keys."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey(["warehouse", dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "warehouse_dbt"


def dbt_resource() -> DbtCliResource:
    """dbt of this interpreter's environment (a venv's bin/ is not always on PATH)."""
    exe = Path(sys.executable).parent / "dbt"
    return DbtCliResource(project_dir=str(PROJECT_DIR), profiles_dir=str(PROJECT_DIR),
                          dbt_executable=str(exe) if exe.exists() else "dbt")


def build_dbt_assets(manifest: Path = MANIFEST) -> dg.AssetsDefinition:
    """The ``@dbt_assets`` definition of the nightly load (needs a parsed manifest)."""

    @dbt_assets(manifest=manifest, name="warehouse_dbt", partitions_def=daily,
                dagster_dbt_translator=WarehouseTranslator(
                    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)))
    def warehouse_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, dsdw: DsdwResource):
        """Load the lake's new payloads up to the partition day with dbt building the models, and publish."""
        from pipelines.warehouse.dbt_runner import (
            Outcome,
            classify_run_results,
            load_warehouse_dbt,
            retry_in_buckets,
        )

        events: list = []

        def once(root: Path, env: dict[str, str], args: tuple[str, ...]) -> Outcome:
            with _env(env):
                inv = dbt.cli(["build", *args], context=context, target_path=target_dir(root), raise_on_error=False)
                events.extend(inv.stream())
                results = inv.get_artifact("run_results.json") or {}
                # the manifest (MBs) only when a node failed: it says which models run in person buckets
                bad = any(r.get("status") in ("error", "fail", "skipped") for r in results.get("results", []))
                out = classify_run_results(results, inv.get_artifact("manifest.json") if bad else {})
                if not inv.is_successful() and not out[1]:  # dbt itself failed: no node to blame, no retry
                    out[1].append(f"dbt build exited {inv.process.returncode}")
                return out

        def invoke(root: Path, env: dict[str, str], args: list[str]) -> dict:
            # the in-process runner's retry of person-bucket models out of memory, through Dagster's subprocess
            return retry_in_buckets(lambda e, x: once(root, e, x), env, args, "dbt build (Dagster)")

        day = dt.date.fromisoformat(context.partition_key)
        res = load_warehouse_dbt(Path(dsdw.root), day, invoke=invoke)
        context.log.info(f"load {res.load_id}: {res.payloads} payloads, {sum(res.rows_staged.values())} rows "
                         f"staged, published {res.published}")
        yield from with_unchanged_models(context, events)

    return warehouse_dbt


def with_unchanged_models(context: dg.AssetExecutionContext, events: list) -> list:
    """dbt's events, with a materialization for each model of the run that the night's dbt selection left out, the
    models in the order of their dependencies (Dagster's rule for a multi-asset), then the checks.

    Why: a night builds only the models downstream of the datasets with new payloads (dbt_runner.nightly_selection),
    and dagster-dbt reports only the models dbt ran; Dagster then skips every asset after an unreported one, so the
    published warehouse (and its ledger-against-lake check) was skipped on every night but the first. A model the
    night left out is current as of the night (its inputs did not change), so its partition is the night's state:
    reported as such, with why it was not rebuilt."""
    import graphlib

    deps = context.assets_def.asset_deps
    outputs: dict[dg.AssetKey, Any] = {}
    rest = []
    for ev in events:
        if isinstance(ev, dg.Output):
            outputs[context.asset_key_for_output(ev.output_name)] = ev
        else:
            rest.append(ev)
    order = graphlib.TopologicalSorter({k: {d for d in v if d in deps} for k, v in deps.items()}).static_order()
    out = []
    for k in order:
        if k in outputs:
            out.append(outputs[k])
        elif k in context.selected_asset_keys:
            out.append(dg.MaterializeResult(asset_key=k, metadata={
                "dsdw/rebuilt": False,
                "dsdw/why": "unchanged: the night's load changed none of its inputs, so the night's dbt selection "
                            "left it out (dbt_runner.nightly_selection)"}))
    return out + rest


def make_dbt_defs(dsdw: DsdwResource, manifest: Path = MANIFEST) -> dg.Definitions:
    """A code location with only the ingestion and the dbt-built warehouse models."""
    from pipelines.assets.ingestion import INGESTION_ASSETS, dq_results

    return dg.Definitions(assets=[*INGESTION_ASSETS, dq_results, build_dbt_assets(manifest)],
                          resources={"dsdw": dsdw, "dbt": dbt_resource()})
