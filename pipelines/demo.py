"""The demo through Dagster: the runs the 02:00 schedule, the sensors and the delivery schedules make.

``make demo`` must show the orchestrator doing the work, so every step here is a
Dagster run of a job from :mod:`pipelines.definitions` on a persistent instance
(``DAGSTER_HOME``, SQLite storage under ``data/demo/dagster``): ``dagster dev``
afterwards lists every run, materialization, asset-check result and partition.
Per delivery day: the ``nightly_0200`` schedule is evaluated at its tick (02:00
the next morning) and its run request executed (ingestion with the partition
checks, then ``dq_results``); the ``warehouse_after_ingestion`` run-status
sensor is evaluated on that run's success event and its request executed (the
warehouse load).  After the last day the ``leveringer`` job (every recipient's
delivery asset; each recipient also has its own scheduled ``levering_*`` job) runs
twice with the demo's delivery plan (a full cut from the middle load, an increment
from the last).  Runs execute in this process (``execute_in_process``): the
daemon would launch the same requests in subprocesses, which on a 2-core machine
costs more in imports than the work itself.  The ingestion steps take their datasets' work from a
pool of 2 processes spawned once for all nights (``NightlyPool``), as the direct engine ingests.

The ``direct`` engine (plain function calls, datasets in 2 processes) is kept
for the benchmark that measures what Dagster costs (bench/bench_demo.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.load import QUIET, LoadRow

DAGSTER_YAML = """\
# The demo's Dagster instance (written by `dsdw demo`): runs, event logs, schedules and
# sensors in SQLite under this directory (DAGSTER_HOME).  `dagster dev` with DAGSTER_HOME
# set to this directory shows the demo's runs, materializations, checks and partitions.
# The stock SQLite layout (history/runs.db, history/runs/<run>.db, schedules/), through subclasses that
# keep one engine per database instead of one per event (pipelines/dagster_sqlite.py).
run_storage:
  module: pipelines.dagster_sqlite
  class: PooledSqliteRunStorage
  config:
    base_dir: {home}/history/
event_log_storage:
  module: pipelines.dagster_sqlite
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {home}/history/runs/
schedule_storage:
  module: dagster._core.storage.schedules
  class: SqliteScheduleStorage
  config:
    base_dir: {home}/schedules
telemetry:
  enabled: false
"""


@dataclass
class WarehouseRow:
    """One nightly warehouse load, as the run's materialization metadata reports it."""

    day: dt.date
    run_id: str
    ok: bool
    payloads: int = 0
    rows_staged: int = 0
    deduplicated: int = 0
    retracted: int = 0
    persons: int = 0
    months: int = 0
    seconds: float = 0.0
    error: str = ""


@dataclass
class DeliveryRow:
    """One delivery run for one recipient (``ok`` False: the run failed, ``error`` says why)."""

    recipient: str
    retsgrundlag: str
    kind: str
    period: str
    load_id: str
    ok: bool
    rows: int = 0
    files: dict[str, int] = field(default_factory=dict)
    run_id: str = ""
    error: str = ""


@dataclass
class DemoResult:
    """What the demo's runs did (for the summary) and where the time went."""

    load: list[LoadRow] = field(default_factory=list)
    warehouse: list[WarehouseRow] = field(default_factory=list)
    deliveries: list[DeliveryRow] = field(default_factory=list)
    runs: list[tuple[str, str, str, bool]] = field(default_factory=list)  # (job, partition/config, run id, ok)
    seconds: Counter = field(default_factory=Counter)
    cpu: Counter = field(default_factory=Counter)  # CPU seconds per stage (this process + reaped children)

    @property
    def failed_runs(self) -> list[tuple[str, str, str, bool]]:
        return [r for r in self.runs if not r[3]]


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children: on a shared machine a steadier measure of the
    work than wall time, which the other processes' load inflates."""
    import resource

    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


@contextlib.contextmanager
def served_sources(src: Path, state: Path, timeout: float = 120.0) -> Iterator[dict[str, Any]]:
    """The simulated source systems in their own process (`dsdw sources serve`), as the real ones are:
    the in-process Dagster runs then share no interpreter lock with the servers.  Yields their addresses
    (also written to ``state``); stops them (SIGTERM, which removes ``state``) on exit."""
    import signal
    import subprocess
    import sys

    state.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "sources", "serve", "--data", str(src),
                             "--state-file", str(state)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not state.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"the source systems did not start: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the source systems did not start within {timeout:.0f} s")
            time.sleep(0.1)
        yield json.loads(state.read_text(encoding="utf-8"))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
        state.unlink(missing_ok=True)


def dagster_home(out: Path) -> Path:
    """Create ``out/dagster`` (absolute, as Dagster wants) with its dagster.yaml: the demo's DAGSTER_HOME."""
    home = (Path(out) / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    cfg, text = home / "dagster.yaml", DAGSTER_YAML.format(home=home)
    if not cfg.exists() or cfg.read_text(encoding="utf-8") != text:
        cfg.write_text(text, encoding="utf-8")
    return home


def open_instance(home: Path) -> Any:
    """The persistent instance at ``home``: what ``DagsterInstance.get()`` returns with DAGSTER_HOME=home
    (without changing this process's environment, so a test's other runs stay on their own instances)."""
    import dagster as dg

    return dg.DagsterInstance.from_config(str(home))


def dagster_dev_command(out: Path) -> str:
    """The command that opens the demo's instance in the Dagster UI."""
    out = Path(out).resolve()
    return f"DAGSTER_HOME={out / 'dagster'} DSDW_ROOT={out / 'pipeline'} dagster dev -m pipelines.definitions"


def _error(res: Any, step: str | None = None) -> str:
    """The first step failure's message of an in-process run (or of one step)."""
    for e in res.all_events:
        if e.is_step_failure and (step is None or e.step_key == step):
            err = e.step_failure_data.error
            return err.message.strip().splitlines()[0] if err else "step failed"
    return "run failed" if step is None else "step did not materialise"


def _md(mat: Any) -> dict[str, Any]:
    return {k: v.value for k, v in mat.metadata.items()}


class DagsterDemo:
    """Runs the demo's jobs from the code location's definitions on one persistent instance."""

    def __init__(self, root: Path, sources_file: Path, instance: Any | None = None,
                 log: Callable[[str], None] = lambda s: None, ingest_workers: int = 2) -> None:
        import dagster as dg

        from pipelines.assets.ingestion import DsdwResource
        from pipelines.definitions import make_defs

        self.root = Path(root).resolve()
        # ingestion steps take their datasets' work from a pool of ``ingest_workers`` processes, as the direct
        # engine's ingestion does (the in-process executor alone would ingest one dataset at a time)
        env = {"root": str(self.root), "sources_file": str(Path(sources_file).resolve()), "gx_data_docs": False,
               "ingest_workers": ingest_workers}
        self.defs = make_defs(DsdwResource(**env, quality_reports=False))
        # the reports cover every day so far: rendered by the last night's dq_results (not 14 times)
        self.defs_last_night = make_defs(DsdwResource(**env, quality_reports=True))
        self.instance = instance if instance is not None else dg.DagsterInstance.get()
        self.log = log
        self.result = DemoResult()

    # -- one run ----------------------------------------------------------------------------
    def _execute(self, request: Any, job_name: str, tags: dict[str, str], defs: Any = None) -> Any:
        job = (defs or self.defs).resolve_job_def(request.job_name or job_name)
        run_tags = {k: v for k, v in (request.tags or {}).items() if not k.startswith("dagster/partition")}
        run_tags.update(tags)
        if request.run_key:
            run_tags["dagster/run_key"] = request.run_key
        config = {**QUIET, **(request.run_config or {})}
        from pipelines.assets.ingestion import WORKER_CPU

        t, c = time.perf_counter(), cpu_seconds() + WORKER_CPU[0]
        res = job.execute_in_process(instance=self.instance, partition_key=request.partition_key,
                                     run_config=config, tags=run_tags, raise_on_error=False,
                                     asset_selection=request.asset_selection)
        stage = job.name if not job.name.startswith("levering") else "deliveries"
        self.result.seconds[stage] += time.perf_counter() - t
        self.result.cpu[stage] += cpu_seconds() + WORKER_CPU[0] - c
        label = request.partition_key or tags.get("dsdw/levering") or \
            json.dumps(request.run_config.get("ops", {}), sort_keys=True)[:80]
        self.result.runs.append((job.name, label, res.run_id, res.success))
        return res

    # -- a delivery day ---------------------------------------------------------------------
    def nightly(self, day: dt.date, last: bool = False) -> bool:
        """The 02:00 tick after ``day``: ingestion + quality for partition ``day``, then the sensor's
        warehouse load if the ingestion run succeeded.  True when both runs succeeded.  ``last``: the
        demo's last night, whose dq_results also renders the HTML reports."""
        import dagster as dg

        from pipelines.assets.ingestion import TZ

        defs = self.defs_last_night if last else self.defs
        sched = defs.resolve_schedule_def("nightly_0200")
        tick = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(2, 0), tzinfo=ZoneInfo(TZ))
        data = sched.evaluate_tick(dg.build_schedule_context(instance=self.instance, scheduled_execution_time=tick))
        ok = True
        for req in data.run_requests or []:
            res = self._execute(req, sched.job_name, {}, defs)
            self._collect_ingestion(res, day)
            if not res.success:
                ok = False
                self.log(f"nightly_ingestion {day}: FAILED ({_error(res)}); the warehouse waits")
                continue
            ok = self._after_ingestion(res.run_id, day) and ok
        return ok

    def _after_ingestion(self, run_id: str, day: dt.date) -> bool:
        """Evaluate the run-status sensor on the ingestion run's success and execute what it requests."""
        import dagster as dg

        sensor = self.defs.resolve_sensor_def("warehouse_after_ingestion")
        run = self.instance.get_run_by_id(run_id)
        records = self.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records
        ctx = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_event=records[-1].event_log_entry.dagster_event,
            dagster_instance=self.instance, dagster_run=run)
        req = sensor(ctx)
        if not isinstance(req, dg.RunRequest):
            return True
        res = self._execute(req, "nightly_warehouse", {"dagster/sensor_name": sensor.name})
        self._collect_warehouse(res, day)
        return res.success

    def _collect_ingestion(self, res: Any, day: dt.date) -> None:
        from pipelines.assets.ingestion import INGESTION_ASSETS
        from pipelines.contracts import load_contracts

        contracts = load_contracts()
        for a in INGESTION_ASSETS:
            ds = a.key.path[-1]
            c = contracts[ds]
            mats = res.asset_materializations_for_node(a.op.name)
            if mats:
                md = _md(mats[-1])
                self.result.load.append(LoadRow(c.channel, ds, day, int(md["payloads"]), int(md["rows_accepted"]),
                                                int(md["rows_quarantined"]), Counter(md["quarantine_by_kind"]),
                                                unknown_changes=int(md["unknown_reference_warnings"])))
            else:
                self.result.load.append(LoadRow(c.channel, ds, day, 0, 0, 0, Counter(),
                                                [("/".join(a.key.path), _error(res, a.op.name))]))

    def _collect_warehouse(self, res: Any, day: dt.date) -> None:
        from pipelines.assets.warehouse import PUBLISHED

        mats = [m for m in res.get_asset_materialization_events() if m.asset_key == PUBLISHED]
        if not mats:
            self.result.warehouse.append(WarehouseRow(day, res.run_id, False, error=_error(res)))
            return
        md = _md(mats[-1].step_materialization_data.materialization)
        self.result.warehouse.append(WarehouseRow(
            day, res.run_id, res.success, md["payloads"], md["rows_staged"], md["rows_deduplicated"],
            md["retracted_payloads"], md["affected_persons"], md["affected_months"], md["seconds"],
            "" if res.success else _error(res)))

    # -- the deliveries ---------------------------------------------------------------------
    def deliveries(self, period: str) -> list[DeliveryRow]:
        """Every recipient's delivery for the demo month, as two runs of the ``leveringer`` job (all
        recipients' assets, config per recipient): a full cut from the middle day's load for recipients
        that take increments (else from the last), then an increment from the last day's load, so the
        increments carry the corrections in between.  Weekly recipients: the ISO week of the load."""
        import dagster as dg

        from pipelines.deliveries.assets import LEVERINGER_JOB, asset_key, op_name
        from pipelines.deliveries.cut import parse_period, period_of
        from pipelines.deliveries.recipients import load_recipients

        mid, last = demo_cuts(self.root, period)
        plans: dict[str, dict[str, tuple[str, str]]] = {"full": {}, "increment": {}}  # kind -> rid -> cut
        for rec in load_recipients().values():
            plan = [("full", mid), ("increment", last)] if "increment" in rec.leveringer and mid != last \
                else [("full", last)]
            for kind, (load_id, day) in plan:
                p = period if rec.periode == "maaned" else period_of(day, rec.periode)
                parse_period(p, rec.periode)
                plans[kind][rec.id] = (load_id, p)
        for kind, plan in plans.items():
            if not plan:
                continue
            cfg = {"ops": {op_name(rid): {"config": {"kind": kind, "period": p, "load_id": load_id,
                                                      "demo_keys": True}} for rid, (load_id, p) in plan.items()}}
            res = self._execute(dg.RunRequest(run_config=cfg, asset_selection=[asset_key(r) for r in plan]),
                                LEVERINGER_JOB.name, {"dsdw/levering": kind, "dsdw/periode": period})
            for rid, (load_id, p) in plan.items():
                rec = load_recipients()[rid]
                mats = res.asset_materializations_for_node(op_name(rid))
                if mats:
                    md = _md(mats[-1])
                    row = DeliveryRow(rid, rec.retsgrundlag, kind, p, load_id, True, int(md["raekker"]),
                                      dict(md["filer"]), res.run_id)
                else:
                    row = DeliveryRow(rid, rec.retsgrundlag, kind, p, load_id, False, run_id=res.run_id,
                                      error=_error(res, op_name(rid)))
                self.result.deliveries.append(row)
        self.result.deliveries.sort(key=lambda r: (list(load_recipients()).index(r.recipient), r.kind))
        return self.result.deliveries

    def run(self, days: list[dt.date], period: str | None = None,
            progress: Callable[[dt.date], None] = lambda d: None) -> DemoResult:
        """Every day's nightly runs in order, then the deliveries for ``period`` (None: none)."""
        from pipelines.assets.ingestion import shutdown_ingest_pools

        try:
            for day in days:
                progress(day)
                self.nightly(day, last=day == days[-1])
        finally:
            shutdown_ingest_pools()
        if period and any(w.ok for w in self.result.warehouse):
            self.deliveries(period)
        return self.result


def demo_cuts(root: Path, period: str) -> tuple[tuple[str, dt.date], tuple[str, dt.date]]:
    """(load id, load date) of the middle and the last day's warehouse load in the month ``period``."""
    import duckdb

    from pipelines.deliveries.cut import parse_period
    from pipelines.warehouse.build import published_path

    per = parse_period(period, "maaned")
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        loads = con.execute("SELECT load_id, indlaest_dato FROM meta.load WHERE indlaest_dato BETWEEN ? AND ? "
                            "ORDER BY indlaest_dato, finished_at, load_id", [per.fra, per.til]).fetchall()
    finally:
        con.close()
    by_day = {d: (lid, d) for lid, d in loads}  # the last load of each day
    days = sorted(by_day)
    if not days:
        raise ValueError(f"no warehouse load in {period}")
    return by_day[days[(len(days) - 1) // 2]], by_day[days[-1]]


def run_direct(days: list[dt.date], root: Path, sources_file: Path, period: str | None,
               workers: int = 2) -> dict[str, float]:
    """The same pipeline as plain calls (benchmarks only): ingestion with datasets in ``workers``
    processes, quality once over all days with the reports, the nightly warehouse loads (dbt build: with their
    model tests), the deliveries.
    Returns the seconds per stage."""

    from pipelines.load import load_days_direct
    from pipelines.quality.report import build_reports
    from pipelines.quality.results import publish, run_quality
    from pipelines.warehouse.build import load_warehouse
    from pipelines.warehouse.checks import lake_ledger_checks

    sec: dict[str, float] = {}
    t = time.perf_counter()
    for day in days:
        load_days_direct([day], root, sources_file, None, None, workers)
    sec["ingestion"] = time.perf_counter() - t
    t = time.perf_counter()
    run = run_quality(root, days, workers=workers)
    build_reports(publish(run, root, days), root / "reports")
    sec["quality"] = time.perf_counter() - t
    t = time.perf_counter()
    for day in days:  # dbt build runs the model tests; the reconciliation as the published asset's check runs it
        load_warehouse(root, day)
        lake_ledger_checks(root)
    sec["warehouse"] = time.perf_counter() - t
    if period:
        from pipelines.deliveries import demo_deliveries

        t = time.perf_counter()
        demo_deliveries(root, period)
        sec["deliveries"] = time.perf_counter() - t
    return sec


def statistics_api_hint(root: Path, keys: Path) -> list[str]:
    """Lines about the statistics API: how to start it, one example request and the table's page.
    ``keys``: the demo's own key file (under its data directory)."""
    from pipelines.api.cli import demo_hint

    return demo_hint(root, keys).splitlines()
