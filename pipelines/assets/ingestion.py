"""Dagster assets for ingestion: one asset per reported dataset, partitioned by delivery day.

Thin wrappers over :func:`pipelines.ingest.ingest_dataset_day`: the asset adds
partitioning, grouping by source, metadata and failure reporting, nothing else.
"""


import concurrent.futures as cf
import datetime as dt
import json
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from pipelines.assets.ingest_worker import Checked, check_partition, ingest_and_check
from pipelines.contracts import Contract, load_contracts
from pipelines.ingest import (
    IngestionFailed,
    SourcesConfig,
    UnitResult,
    Zones,
    classify_name,
    folder_datasets,
    ingest_dataset_day,
)

if TYPE_CHECKING:
    from pipelines.quality.results import QualityRun

TZ = "Europe/Copenhagen"
PARTITIONS_START = os.environ.get("DSDW_PARTITIONS_START", "2026-09-01")
daily = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone=TZ)


class DsdwResource(dg.ConfigurableResource):
    """Where this environment keeps its zones and finds its source systems."""

    root: str = "data/demo/pipeline"
    sources_file: str = "data/demo/sources.json"
    received_at: str = ""  # logical receive time for reproducible reruns; empty = now
    # a partition blocks when more than this share of its records break error rules, and at least
    # error_min_records do (one defect in a 20-record partition is a finding, not a broken feed)
    error_tolerance: float = 0.05
    error_min_records: int = 10
    # dq_results' HTML outputs: the reports per kommune/a-kasse and GX Data Docs (the GX pandas path,
    # minutes a day); the demo renders the reports on its last night only and skips Data Docs
    quality_reports: bool = True
    gx_data_docs: bool = True
    # > 1: the in-process executor's ingestion steps take their datasets' work from a pool of this many
    # processes (NightlyPool), as the direct engine does; 1 under `dagster dev`, whose executor runs each
    # step in its own process already
    ingest_workers: int = 1

    def zones(self) -> Zones:
        return Zones(Path(self.root))

    def sources(self) -> SourcesConfig:
        path = Path(self.sources_file)
        if not path.exists():
            raise dg.Failure(f"no source systems description at {path}: start them with "
                             f"`dsdw sources serve --data DIR --state-file {path}`")
        return SourcesConfig.from_file(path)


def group_of(c: Contract) -> str:
    """Assets grouped by source, as the issue names them."""
    if c.channel == "ftp":
        return "raadighed_sanktion_ftp"
    return {"jobcenter": "jobcenter", "akasse": "akasse", "jobnet": "jobnet", "uvm": "uvm", "ssi": "ssi"}[c.reporter]


def asset_key(dataset: str) -> dg.AssetKey:
    return dg.AssetKey(["lake", dataset])


STATE_DATASETS = ("kontaktgruppe", "foerste_henvendelse", "samtale")


def state_deps(c: Contract) -> list[str]:
    """Datasets whose partition must be loaded before this one's checks can judge it:
    kontaktgruppe spells for personkreds, the reported groups for Bilag 1, referenced records."""
    deps = set()
    kinds = {r.kind for r in c.rules}
    if kinds & {"personkreds", "bilag1", "only_when_changed"}:
        deps.add("kontaktgruppe")
    if kinds & {"bilag1", "only_when_changed"}:
        deps.update(("foerste_henvendelse", "samtale"))
    for r in c.rules:
        if r.kind == "reference_exists" and r.params.get("dataset"):
            deps.add(r.params["dataset"])
    if c.dataset == "foerste_henvendelse":
        deps.discard("samtale")  # samtale waits for foerste_henvendelse, not the other way round
    deps.discard(c.dataset)
    return sorted(deps)


def _make_asset(c: Contract) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(c.dataset),
        deps=[asset_key(d) for d in state_deps(c)],
        group_name=group_of(c),
        partitions_def=daily,
        description=f"{c.title} ({c.legal_basis}; {c.channel}, {c.channel_paragraph}): raw payloads landed, "
                    f"typed by contract into lake/{c.dataset}, rejected rows in lake/_quarantine.",
        kinds={"parquet"},
        tags={"channel": c.channel, "reporter": c.reporter},
        check_specs=[
            dg.AssetCheckSpec("dq_error_rules", asset=asset_key(c.dataset), blocking=True,
                              description="Error-severity rules of the GX suite and the contract: fails, and "
                                          "blocks downstream for the partition, when more than the tolerated "
                                          "share of records break them."),
            dg.AssetCheckSpec("dq_warn_rules", asset=asset_key(c.dataset),
                              description="Warning-severity rules: reported, never blocking."),
        ],
    )
    def _asset(context: dg.AssetExecutionContext, dsdw: DsdwResource) -> dg.MaterializeResult:
        day = dt.date.fromisoformat(context.partition_key)
        computed = None
        if dsdw.ingest_workers > 1:
            res, computed = NightlyPool.of(context, dsdw).result(c.dataset)
        else:
            res = ingest_dataset_day(c.dataset, day, dsdw.zones(), dsdw.sources(), dsdw.received_at or None,
                                     raise_on_failure=False)
        if res.failures:
            exc = IngestionFailed(res)
            raise dg.Failure(description=str(exc), metadata={
                "failed": dg.MetadataValue.json([{"reporter": r, "error": e} for r, e in res.failures]),
                "accepted": res.rows_accepted, "quarantined": res.rows_quarantined})
        kinds: Counter = Counter()
        warnings = []
        for p in res.payloads:
            kinds.update(p.error_kinds)
            warnings.extend(p.warnings)
        for p in res.refused:
            context.log.warning(f"{p.action}: {p.source_name!r} ({p.reporter}): {p.reason}")
        for w in warnings[:5]:
            context.log.warning(w)
        if len(warnings) > 5:
            context.log.warning(f"... and {len(warnings) - 5} more changes of records never created "
                                f"(the quality checks list them all)")
        checks = partition_checks(c, day, dsdw, context.run.run_id, computed)
        return dg.MaterializeResult(check_results=checks, metadata={
            "payloads": len(res.payloads),
            "new_payloads": len(res.loaded_now),
            "refused": dg.MetadataValue.json([{"file": p.source_name, "reporter": p.reporter, "status": p.action,
                                               "reason": p.reason} for p in res.refused]),
            "rows_accepted": res.rows_accepted,
            "rows_quarantined": res.rows_quarantined,
            "quarantine_by_kind": dg.MetadataValue.json(dict(sorted(kinds.items()))),
            "unknown_reference_warnings": len(warnings),
        })

    return _asset


def _checked_path(root: Path, run_id: str, day: dt.date, dataset: str) -> Path:
    return Path(root) / "quality" / "_checked" / run_id / day.isoformat() / f"{dataset}.pickle"


def partition_checks(c: Contract, day: dt.date, dsdw: DsdwResource, run_id: str | None = None,
                     computed: Checked | None = None) -> list[dg.AssetCheckResult]:
    """Every check of the partition: the GX suite and all the contract's rules, judged against
    what the lake knows (the assets in ``state_deps`` ran first for this partition).
    ``computed``: the rules' results already evaluated (by the ingestion pool's worker).

    The results are kept for this Dagster run's ``dq_results`` (``run_id``), which publishes them
    instead of evaluating every rule a second time: the day's quality is computed once."""
    import pickle

    root = dsdw.zones().root
    results, failures, timeliness = computed if computed is not None else check_partition(root, day, c.dataset)
    if run_id:
        path = _checked_path(root, run_id, day, c.dataset)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps((results, failures, timeliness), pickle.HIGHEST_PROTOCOL))
        tmp.replace(path)
    return judge_partition(c, results, failures, dsdw.error_tolerance, dsdw.error_min_records)


def judge_partition(c: Contract, results: list[dict], failures: list[dict], tolerance: float, min_records: int
                    ) -> list[dg.AssetCheckResult]:
    """The partition's two check results from its rules' results: error rules block past the tolerance."""
    out = []
    # the partition's records (every record is checked by the envelope's required-field checks): per reporter
    # the most records any rule checked (one pass: results hold a row per reporter and rule)
    per_reporter: dict[str, int] = {}
    for r in results:
        per_reporter[r["reporter"]] = max(per_reporter.get(r["reporter"], 0), r["records_checked"])
    checked = sum(per_reporter.values())
    for sev, name in (("error", "dq_error_rules"), ("warn", "dq_warn_rules")):
        rows = [r for r in results if r["severity"] == sev]
        by_rule: Counter = Counter()
        for r in rows:
            by_rule[f"{r['rule_id']} ({r['paragraph']})"] += r["records_failed"]
        # A reference to a record not received (yet) is the referenced dataset's lateness, not broken data
        # (§ 5: a reporter that stops delivering samtaler orphans its deltagere for days): reported as an
        # error on the reporter's page, but it does not block the night for every other reporter.
        late_parent = {r.id for r in c.rules if r.kind == "reference_exists"}
        ids = {r["rule_id"] for r in rows} - late_parent
        failed = len({(f["payload_id"], f["record_no"]) for f in failures if f["rule_id"] in ids})
        share = failed / checked if checked else 0.0  # distinct records breaking any rule of this severity
        passed = sev == "warn" or share <= tolerance or failed < min_records
        out.append(dg.AssetCheckResult(
            check_name=name, passed=passed,
            severity=dg.AssetCheckSeverity.ERROR if sev == "error" else dg.AssetCheckSeverity.WARN,
            metadata={"records_failed": failed, "records_checked": checked, "failed_share": round(share, 5),
                      "tolerance": tolerance, "min_records": min_records,
                      "not_blocking": sorted(late_parent & {r["rule_id"] for r in rows}),
                      "by_rule": dg.MetadataValue.json({k: v for k, v in by_rule.most_common() if v})}))
    return out


_POOLS: dict[int, "cf.ProcessPoolExecutor"] = {}
WORKER_CPU = [0.0]  # CPU seconds the pools' workers spent on the results taken so far (the demo's accounting)


def ingest_pool(workers: int) -> "cf.ProcessPoolExecutor":
    """The process pool of this interpreter's in-process runs (spawned once: a worker's imports cost
    seconds, more than a small partition's work), shut down at exit."""
    import atexit
    import multiprocessing as mp

    pool = _POOLS.get(workers)
    if pool is None:
        pool = _POOLS[workers] = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        atexit.register(pool.shutdown, cancel_futures=True)
    return pool


def shutdown_ingest_pools() -> None:
    """Stop the pools' workers (the demo, once its nights are done)."""
    while _POOLS:
        _POOLS.popitem()[1].shutdown(cancel_futures=True)


class NightlyPool:
    """One run's ingestion partitions on the process pool (``DsdwResource.ingest_workers`` > 1).

    The in-process executor runs the run's asset steps one after the other; each step takes its
    dataset's result from here, while the pool already works on the next datasets.  A dataset is sent
    to the pool only when the datasets it depends on (``state_deps``) in this run are loaded and passed
    their blocking check, as Dagster would start its step: a dataset whose step Dagster skips was never
    ingested.  Every materialization, check result and log line is still its own asset step's."""

    _runs: dict[str, "NightlyPool"] = {}

    def __init__(self, context: dg.AssetExecutionContext, dsdw: DsdwResource) -> None:
        keys = set(context.job_def.asset_layer.selected_asset_keys)
        contracts = load_contracts()
        self.todo = [ds for ds in _topological(contracts) if asset_key(ds) in keys]
        self.deps = {ds: [d for d in state_deps(contracts[ds]) if d in self.todo] for ds in self.todo}
        self.day = dt.date.fromisoformat(context.partition_key)
        self.dsdw, self.contracts = dsdw, contracts
        self.zones, self.sources = dsdw.zones(), dsdw.sources()
        self.pool = ingest_pool(dsdw.ingest_workers)
        self.futures: dict[str, cf.Future] = {}
        self.ok: dict[str, bool] = {}  # dataset -> loaded and its blocking check passed

    @classmethod
    def of(cls, context: dg.AssetExecutionContext, dsdw: DsdwResource) -> "NightlyPool":
        run_id = context.run.run_id
        if run_id not in cls._runs:
            for old in [r for r, p in cls._runs.items() if not p.pending()]:  # finished runs (steps skipped)
                del cls._runs[old]
            cls._runs[run_id] = cls(context, dsdw)
        return cls._runs[run_id]

    def pending(self) -> list[cf.Future]:
        return [f for f in self.futures.values() if f is not None and not f.done()]

    def _settle(self) -> None:
        """Verdicts of the finished datasets: loaded without a reporter failing, blocking check passed."""
        for ds, fut in self.futures.items():
            if fut is None or ds in self.ok or not fut.done():
                continue
            if fut.exception() is not None:
                self.ok[ds] = False
                continue
            res, computed, _cpu = fut.result()
            self.ok[ds] = not res.failures and computed is not None and all(
                r.passed for r in judge_partition(self.contracts[ds], computed[0], computed[1],
                                                  self.dsdw.error_tolerance, self.dsdw.error_min_records))

    def _submit(self, ds: str) -> None:
        from concurrent.futures.process import BrokenProcessPool

        args = (ingest_and_check, ds, self.day, self.zones, self.sources, self.dsdw.received_at or None)
        try:
            self.futures[ds] = self.pool.submit(*args)
        except BrokenProcessPool:  # a worker died (an earlier run's failure): a new pool
            _POOLS.pop(self.dsdw.ingest_workers, None)
            self.pool = ingest_pool(self.dsdw.ingest_workers)
            self.futures[ds] = self.pool.submit(*args)

    def _submit_ready(self) -> None:
        for ds in self.todo:
            if ds not in self.futures and all(self.ok.get(d) for d in self.deps[ds]):
                self._submit(ds)

    def result(self, dataset: str) -> tuple[UnitResult, Checked | None]:
        """``dataset``'s ingestion and rules (Dagster started its step: its dependencies succeeded)."""
        if self.futures.get(dataset) is None:
            self._submit(dataset)
        self._submit_ready()
        fut = self.futures[dataset]
        while not fut.done():  # keep the pool busy: a finished dataset may free its dependents
            cf.wait(self.pending(), return_when=cf.FIRST_COMPLETED)
            self._settle()
            self._submit_ready()
        self._settle()
        self.futures[dataset] = None  # taken: its step holds the result now
        res, computed, cpu = fut.result()
        WORKER_CPU[0] += cpu
        return res, computed


def _topological(contracts: dict[str, Contract]) -> list[str]:
    """Datasets after their ``state_deps``, alphabetical among the ready ones (as the executor orders steps)."""
    deps = {n: set(state_deps(c)) & set(contracts) for n, c in contracts.items()}
    out: list[str] = []
    while deps:
        ready = sorted(n for n, d in deps.items() if not d - set(out))
        if not ready:
            raise ValueError(f"cycle among {sorted(deps)}")
        out.append(ready[0])
        del deps[ready[0]]
    return out


@dg.asset(
    key=dg.AssetKey(["quality", "dq_results"]),
    group_name="quality",
    partitions_def=daily,
    deps=[asset_key(n) for n in load_contracts()],
    description="Every check (GX suites + the contracts' § rules, incl. personkreds and Bilag 1 against the "
                "kontaktgruppe spells) for the day, published to dq.duckdb, and the HTML reports per kommune "
                "and a-kasse.",
    kinds={"duckdb", "html"},
)
def dq_results(context: dg.AssetExecutionContext, dsdw: DsdwResource) -> dg.MaterializeResult:
    from pipelines.quality.report import build_reports
    from pipelines.quality.results import publish

    day = dt.date.fromisoformat(context.partition_key)
    root = dsdw.zones().root
    run = day_quality(root, day, context.run.run_id)
    db = publish(run, root, [day])
    failed = sum(r["records_failed"] for r in run.results)
    md = {"records_failed": failed, "rules_evaluated": len({r["rule_id"] for r in run.results}), "dq_db": str(db)}
    if dsdw.quality_reports:
        md["reports"] = dg.MetadataValue.path(str(build_reports(db, root / "reports").index))
    if dsdw.gx_data_docs:
        from pipelines.quality.datadocs import build_data_docs

        md["gx_data_docs"] = dg.MetadataValue.path(str(build_data_docs(root, day)))
    return dg.MaterializeResult(metadata=md)


def day_quality(root: Path, day: dt.date, run_id: str) -> "QualityRun":
    """The day's checks over every dataset: what this run's partition checks computed (after every
    dataset of the day was loaded in this run, as dq_results depends on all of them), the datasets this
    run did not check evaluated now.  Results of other runs are never reused: a later load of a
    dependency may have changed their verdict."""
    import pickle
    import shutil

    from pipelines.quality.results import QualityRun, _completeness, run_quality

    names = sorted(load_contracts())
    run = QualityRun([], [], [], _completeness(Path(root), [day], None))
    missing = []
    for ds in names:
        path = _checked_path(root, run_id, day, ds)
        if not path.exists():
            missing.append(ds)
            continue
        results, failures, timeliness = pickle.loads(path.read_bytes())
        run.results += results
        run.failures += failures
        run.timeliness += timeliness
    if missing:
        rest = run_quality(root, [day], missing)
        run.results += rest.results
        run.failures += rest.failures
        run.timeliness += rest.timeliness
        order = {ds: k for k, ds in enumerate(names)}
        for rows in (run.results, run.failures, run.timeliness):
            rows.sort(key=lambda r: order[r["dataset"]])  # stable: each dataset's own order is kept
    shutil.rmtree(Path(root) / "quality" / "_checked" / run_id, ignore_errors=True)
    return run


INGESTION_ASSETS = [_make_asset(c) for c in load_contracts().values()]

nightly_ingestion = dg.define_asset_job(
    "nightly_ingestion",
    selection=dg.AssetSelection.groups(*sorted({group_of(c) for c in load_contracts().values()}), "quality"),
    description="The nightly load: every dataset for yesterday's deliveries.",
)

nightly_schedule = dg.build_schedule_from_partitioned_job(
    nightly_ingestion, hour_of_day=2, minute_of_hour=0, name="nightly_0200",
    description="02:00 Europe/Copenhagen: load the previous day's deliveries.",
)


def _new_files_sensor(name: str, channel: str, description: str) -> dg.SensorDefinition:
    """One run per new complete file (cursor = the files already requested)."""

    @dg.sensor(name=name, job=nightly_ingestion, minimum_interval_seconds=60, description=description,
               default_status=dg.DefaultSensorStatus.STOPPED)
    def _sensor(context: dg.SensorEvaluationContext, dsdw: DsdwResource) -> dg.SensorResult:
        seen = set(json.loads(context.cursor)) if context.cursor else set()
        requests = []
        for day, dataset, fname, size in list_channel_files(channel, dsdw.sources()):
            run_key = f"{channel}:{fname}:{size}"
            if run_key in seen:
                continue
            seen.add(run_key)
            requests.append(dg.RunRequest(run_key=run_key, partition_key=day.isoformat(),
                                          asset_selection=[asset_key(dataset)], tags={"dsdw/file": fname}))
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(sorted(seen)))

    return _sensor


def list_channel_files(channel: str, sources: SourcesConfig) -> list[tuple[dt.date, str, str, int]]:
    """(delivery day, dataset, file name, size) of every entry a file channel offers now.

    An entry that belongs to no dataset (a name that fits no rule, a link, a subfolder) is
    requested for the first dataset of its folder, whose run records it as rejected.
    """
    from pipelines.sources import FtpClient, scan_day

    folders = {"ftp": ["ftp"], "portal": ["portal"], "filedrop": ["uvm", "ssi"]}[channel]
    out = []
    for folder in folders:
        entries: list[tuple[dt.date, str, int]] = []
        if folder == "ftp":
            with FtpClient(sources.ftp_host, sources.ftp_port, sources.ftp_user, sources.ftp_password) as client:
                for d in client.list_days():
                    entries += [(d, f.name, f.size) for f in client.list_entries(d)]
        else:
            base = {"portal": sources.portal_dir, "uvm": sources.uvm_dir, "ssi": sources.ssi_dir}[folder]
            if not base.is_dir():
                continue
            for day_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()):
                try:
                    d = dt.date.fromisoformat(day_dir.name)
                except ValueError:
                    continue
                entries += [(d, o.name, o.size) for o in scan_day(day_dir, markers=folder != "portal")]
        first = folder_datasets(folder)[0]
        for d, name, size in entries:
            c = classify_name(folder, name.rsplit("/", 1)[-1], d)
            out.append((d, c.dataset or first, name, size))
    return out


ftp_sensor = _new_files_sensor("ftp_new_files", "ftp", "Chapter 11 files on the kommune FTP (§ 52, stk. 4).")
drop_sensor = _new_files_sensor("file_drops", "filedrop", "UVM and SSI file drops (kap. 24-25).")
portal_sensor = _new_files_sensor("portal_exports", "portal", "Arbejdsmarkedsportalen daily exports.")
