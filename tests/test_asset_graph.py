"""The Dagster code location's shape, snapshotted: a change to the graph shows up in review.

Every asset (key, group, upstream deps, kinds, partitions, its checks with blocking flag), every job
(the assets and checks it selects), schedule (cron, job, time zone) and sensor (kind, jobs, interval)
of ``pipelines.definitions.defs`` is compared with ``tests/__snapshots__/test_asset_graph.ambr``.

After an intended change to the graph (a new model, dataset, delivery, check, job ...) update the
snapshot and commit its diff with the change:

    pytest --snapshot-update tests/test_asset_graph.py
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest
from syrupy.assertion import SnapshotAssertion


def _key(k: dg.AssetKey) -> str:
    return k.to_user_string()


@pytest.fixture(scope="module")
def repo() -> Any:
    from pipelines.definitions import defs

    return defs


def graph_shape(defs: dg.Definitions) -> dict[str, Any]:
    """The graph as plain sorted data: what a reviewer must see change."""
    g = defs.resolve_asset_graph()
    checks_of: dict[str, list[str]] = {}
    for ck in sorted(g.asset_check_keys, key=lambda c: (_key(c.asset_key), c.name)):
        node = g.get(ck)
        checks_of.setdefault(_key(ck.asset_key), []).append(f"{ck.name}{' (blocking)' if node.blocking else ''}")
    assets = {}
    for k in sorted(g.get_all_asset_keys(), key=_key):
        n = g.get(k)
        assets[_key(k)] = {
            "group": n.group_name,
            "deps": sorted(_key(p) for p in n.parent_keys),
            "kinds": sorted(n.kinds),
            "partitions": str(n.partitions_def) if n.partitions_def else None,
            "checks": checks_of.get(_key(k), []),
        }
    repo = defs.get_repository_def()
    jobs = {j.name: sorted(_key(k) for k in j.asset_layer.selected_asset_keys)
            for j in repo.get_all_jobs() if not j.name.startswith("__")}  # __ASSET_JOB: Dagster's implicit job
    schedules = {s.name: {"cron": s.cron_schedule, "job": s.job_name, "timezone": s.execution_timezone}
                 for s in repo.schedule_defs}
    sensors = {s.name: {"type": s.sensor_type.value, "jobs": sorted(t.job_name for t in s.targets),
                        "interval_s": s.minimum_interval_seconds}
               for s in repo.sensor_defs}
    return {"assets": assets, "jobs": dict(sorted(jobs.items())), "schedules": dict(sorted(schedules.items())),
            "sensors": dict(sorted(sensors.items()))}


def test_asset_graph_matches_the_snapshot(repo: dg.Definitions, snapshot: SnapshotAssertion) -> None:
    """Fails on any change to the graph; after an intended one: ``pytest --snapshot-update tests/test_asset_graph.py``."""
    assert graph_shape(repo) == snapshot


def test_the_shape_holds_what_a_reviewer_needs(repo: dg.Definitions) -> None:
    """The snapshot is not vacuous: the nightly chain, lake checks and delivery schedules are in the shape."""
    shape = graph_shape(repo)
    lake = shape["assets"]["lake/kontaktgruppe"]
    assert lake["checks"] and lake["partitions"] and lake["group"]
    assert "lake/kontaktgruppe" in shape["jobs"]["nightly_ingestion"]
    assert shape["schedules"]["nightly_0200"]["job"] == "nightly_ingestion"
    assert shape["sensors"]["warehouse_after_ingestion"]["jobs"] == ["nightly_warehouse"]
    assert any("lake/kontaktgruppe" in a["deps"] for a in shape["assets"].values())
