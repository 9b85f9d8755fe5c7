"""The work a pool worker does for one ingestion asset step (no Dagster import: a spawned worker
starts faster without it)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from pipelines.ingest import SourcesConfig, UnitResult, Zones, ingest_dataset_day

Checked = tuple[list[dict], list[dict], list[dict]]  # a partition's rules: (results, failures, timeliness)


def check_partition(root: Path, day: dt.date, dataset: str) -> Checked:
    """Every rule of the dataset's GX suite and contract over its partition (what the partition checks judge)."""
    from pipelines.quality.results import run_quality

    run = run_quality(root, [day], [dataset])
    return run.results, run.failures, run.timeliness


def ingest_and_check(dataset: str, day: dt.date, zones: Zones, sources: SourcesConfig, received_at: str | None
                     ) -> tuple[UnitResult, Checked | None, float]:
    """One dataset's partition: ingestion, then (unless a reporter failed, which fails the step) its rules.
    Also returns the CPU seconds it took (the pool's workers are reaped only at its shutdown: the demo's
    CPU per stage counts them from here)."""
    cpu = time.process_time()
    res = ingest_dataset_day(dataset, day, zones, sources, received_at, raise_on_failure=False)
    checked = None if res.failures else check_partition(zones.root, day, dataset)
    return res, checked, time.process_time() - cpu
