"""The Dagster code location (``dagster dev`` loads ``defs``).

Assets are thin wrappers over plain functions in ``pipelines/``; the CLI, the
tests and the benchmarks call the same functions without Dagster.
Environment: ``DSDW_ROOT`` (zones: landing, lake, ledger) and ``DSDW_SOURCES``
(the source systems' description written by ``dsdw sources serve --state-file``).
The warehouse load runs after the nightly ingestion (sensor ``warehouse_after_ingestion``).
"""

from __future__ import annotations

import os

import dagster as dg

from pipelines.assets.ingestion import (
    INGESTION_ASSETS,
    DsdwResource,
    dq_results,
    drop_sensor,
    ftp_sensor,
    nightly_ingestion,
    nightly_schedule,
    portal_sensor,
)
from pipelines.assets.warehouse import warehouse_defs
from pipelines.deliveries.assets import DELIVERY_ASSETS, DELIVERY_JOBS, DELIVERY_SCHEDULES
from pipelines.governance.assets import GOVERNANCE_ASSETS  # issue 17


def resource() -> DsdwResource:
    """The environment's zones and source systems, from DSDW_ROOT and DSDW_SOURCES."""
    return DsdwResource(root=os.environ.get("DSDW_ROOT", "data/demo/pipeline"),
                        sources_file=os.environ.get("DSDW_SOURCES", "data/demo/sources.json"))


def make_defs(dsdw: DsdwResource) -> dg.Definitions:
    """The code location for one environment (the demo runs the same jobs against its own directories); the
    warehouse built by dbt (pipelines.assets.warehouse)."""
    wh = warehouse_defs()
    return dg.Definitions(
        assets=[*INGESTION_ASSETS, dq_results, *wh["assets"], *DELIVERY_ASSETS, *GOVERNANCE_ASSETS],
        jobs=[nightly_ingestion, *wh["jobs"], *DELIVERY_JOBS],
        schedules=[nightly_schedule, *DELIVERY_SCHEDULES],
        sensors=[ftp_sensor, drop_sensor, portal_sensor, *wh["sensors"]],
        resources={"dsdw": dsdw, **wh["resources"]},
    )


defs = make_defs(resource())
