"""Loading delivery days: in-process Dagster runs of the ingestion assets, or direct calls.

Both paths end in :func:`pipelines.ingest.ingest_dataset_day`; the Dagster path
adds run records, retries and events, and its overhead is measured by the
ingestion benchmark.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.ingest import SourcesConfig, UnitResult, Zones, ingest_day

# the CLI prints its own summary (warnings counted there): Dagster's console log only for errors
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass
class LoadRow:
    """What one (dataset, day) load did, whichever engine ran it."""

    channel: str
    dataset: str
    day: dt.date
    payloads: int
    accepted: int
    quarantined: int
    kinds: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    unknown_changes: int = 0  # updates/deletes of records never created (kept, reported)
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (file or page, status, reason)

    @classmethod
    def of(cls, r: UnitResult) -> LoadRow:
        kinds: Counter = Counter()
        for p in r.payloads:
            kinds.update(p.error_kinds)
        return cls(r.channel, r.dataset, r.day, len(r.payloads), r.rows_accepted, r.rows_quarantined, kinds,
                   list(r.failures), sum(len(p.warnings) for p in r.payloads),
                   [(p.source_name, p.action, p.reason or "") for p in r.refused if p.action != "unchanged"])


def load_days_direct(days: list[dt.date], root: Path, sources: Path, datasets: list[str] | None = None,
                     received_at: str | None = None, workers: int = 1) -> list[LoadRow]:
    cfg = SourcesConfig.from_file(sources)
    return [LoadRow.of(r) for day in days
            for r in ingest_day(day, Zones(root), cfg, received_at=received_at, datasets=datasets, workers=workers)]


def load_days_dagster(days: list[dt.date], root: Path, sources: Path, datasets: list[str] | None = None,
                      received_at: str | None = None, error_tolerance: float | None = None) -> list[LoadRow]:
    """Materialise the ingestion assets for each day in-process (as the nightly job would)."""
    import dagster as dg

    from pipelines.assets.ingestion import INGESTION_ASSETS, DsdwResource, asset_key
    from pipelines.contracts import load_contracts

    contracts = load_contracts()
    wanted = set(datasets or contracts)
    assets = [a for a in INGESTION_ASSETS if a.key.path[-1] in wanted]
    rows: list[LoadRow] = []
    extra = {} if error_tolerance is None else {"error_tolerance": error_tolerance}
    resource = DsdwResource(root=str(root), sources_file=str(sources), received_at=received_at or "", **extra)
    with dg.DagsterInstance.ephemeral() as instance:
        for day in days:
            res = dg.materialize(assets, partition_key=day.isoformat(), resources={"dsdw": resource},
                                 instance=instance, raise_on_error=False, run_config=QUIET)
            for a in assets:
                ds = a.key.path[-1]
                c = contracts[ds]
                mats = res.asset_materializations_for_node(a.op.name)
                if mats:
                    md = {k: v.value for k, v in mats[-1].metadata.items()}
                    rows.append(LoadRow(c.channel, ds, day, int(md["payloads"]), int(md["rows_accepted"]),
                                        int(md["rows_quarantined"]), Counter(md["quarantine_by_kind"]),
                                        unknown_changes=int(md["unknown_reference_warnings"]),
                                        refused=[(x["file"], x["status"], x["reason"] or "")
                                                 for x in md.get("refused", [])]))
                else:
                    errs = [e for e in res.all_events if e.is_step_failure and e.step_key == a.op.name]
                    msg = errs[-1].step_failure_data.error.message.strip() if errs and \
                        errs[-1].step_failure_data.error else "step did not materialise"
                    rows.append(LoadRow(c.channel, ds, day, 0, 0, 0, Counter(), [(str(asset_key(ds)), msg)]))
    return rows
