"""The nightly load: ``dbt build`` between the Python steps (``dsdw warehouse load``, the Dagster job).

dbt (``warehouse/dbt_project.yml``) builds the models generated from the contracts (staging, the
append-only facts, their ``_aktuel`` current state and ``_historik`` views) and the hand-written ones
(``warehouse/dbt/models/derived``: dims, panel, category spells, marts; the load's scope as explicit models in
``scope/``), with their tests.  What stays Python around ``dbt build`` and why:

* the ledger increment (which payloads are new, which are retracted): state in SQLite, not in a model;
  it also decides the night's selection (:func:`nightly_selection`);
* pseudonyms: the HMAC key must never reach dbt's logs or compiled SQL, so new CPRs get their
  ``person_key`` here and staging looks them up in ``restricted.person``;
* unsealing/sealing the restricted database, publishing by atomic swap, restoring on failure: files,
  not relations;
* the small-cell suppression of the published statistics (a solver) and the quality results (another
  database), after dbt.

DuckDB allows one writer process per file: the load's connection is closed while dbt runs and
reopened afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from pipelines.contracts import REFERENCE_DIR, REPO_ROOT, get_contract, load_contracts
from pipelines.warehouse import build as B
from pipelines.warehouse.clustering import sort_by_person
from pipelines.warehouse.generate import FULL_BUILD_TAG, is_restricted, stg_name
from pipelines.warehouse.keys import hmac_pads, key_id, load_key
from pipelines.warehouse.restricted import unsealed

log = logging.getLogger(__name__)

PROJECT_DIR = REPO_ROOT / "warehouse"
# A person-bucket model (config person_spand) whose build ran out of memory is rerun with its buckets x2, up to
# x2**SPAND_FORSOEG (run_dbt): the bucket count is an estimate of the model's working rows x a measured size per row,
# and a wrong figure (issue 14: 100 bytes a row where the national day 1's plan held ~450) should cost a rerun, not
# the load
SPAND_FORSOEG = 3
LOAD_SQL = [
    "CREATE OR REPLACE TABLE meta.load_increment (payload_id VARCHAR, dataset VARCHAR, lake_path VARCHAR)",
    "CREATE OR REPLACE TABLE meta.current_load (load_id VARCHAR, indlaest_dato DATE)",
]


class DbtError(B.WarehouseError):
    """dbt build failed; the message lists the failed nodes."""


def target_dir(root: Path) -> Path:
    """dbt's target directory per environment (kept between loads, so a new process's parse is a partial one)."""
    return Path(root) / "warehouse" / "dbt_target"


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stable_restricted(root: Path, restricted: Path) -> Path:
    """A fixed path to the unsealed restricted database: a link to its private in-memory directory (so its
    WAL stays there too), the same on every load of the environment: dbt's partial-parse check hashes the profile's
    values (dbt-duckdb's connection keys: path, attach, settings), so a new path would make a new process's parse a
    full one."""
    link = target_dir(root) / "restricted"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(restricted.parent, target_is_directory=True)
    return link / restricted.name


def dbt_env(root: Path, database: Path, restricted: Path, *, schema_check: bool = True) -> dict[str, str]:
    """The variables profiles.yml, the sources and the code-list macro read.

    ``schema_check=False`` (a night whose project is unchanged) lets the materializations take their one-statement
    fast path (``dbt/macros/materializations.sql``): no model's columns can have changed since the last build."""
    return {"DSDW_DBT_DATABASE": str(database), "DSDW_DBT_RESTRICTED": str(_stable_restricted(root, restricted)),
            "DSDW_LAKE": str(Path(root) / "lake"), "DSDW_REFERENCE_DIR": str(REFERENCE_DIR),
            "DSDW_DBT_SCHEMA_CHECK": "1" if schema_check else "0", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def dbt_args(command: str, root: Path | None, *extra: str) -> list[str]:
    """dbt's command line for an environment's load (``root``) or the project's own target (None)."""
    target = target_dir(root) if root is not None else PROJECT_DIR / "target"
    # a load reads its results in-process: no debug log file, no manifest.json/run_results.json written per night
    # (measured: the file log alone was ~8 s of a demo night's dbt build); partial parsing keeps its own file
    quiet = ["--log-level", "none", "--log-level-file", "none", "--no-write-json"] if root is not None else []
    return [command, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
            "--target-path", str(target), "--log-path", str(target), "--quiet", *quiet, *extra]


def parse_manifest() -> Path:
    """``dbt parse`` into ``warehouse/target`` (the manifest the Dagster dbt assets are defined from)."""
    from dbt.cli.main import dbtRunner

    res = dbtRunner().invoke(dbt_args("parse", None))
    if not res.success:
        raise DbtError(f"dbt parse failed: {res.exception}")
    return PROJECT_DIR / "target" / "manifest.json"


# the parsed project per (project digest, what of dbt's environment shapes a parse): a process that loads several
# nights or several environments (a replay, the benchmarks, a long-lived worker, a pytest worker's many roots)
# parses once; dbt re-reads nothing when handed a manifest
_MANIFESTS: dict[tuple, object] = {}
# read by dbt at run time only (the profile's connection, the lake's file_search_path, the schema-check switch, the
# person buckets' retry factor), so a manifest parsed for one environment serves every other: the database's file
# name, not its directory, names the nodes' database
RUN_TIME_ENV = frozenset({"DSDW_DBT_DATABASE", "DSDW_DBT_RESTRICTED", "DSDW_LAKE", "DSDW_DBT_SCHEMA_CHECK",
                          "DSDW_PERSON_SPAND_FAKTOR"})


def manifest_key(env: dict[str, str]) -> tuple:
    """What a parsed manifest depends on: the project's files and the environment variables read while parsing
    (the database's name: dbt-duckdb names it after the file's stem)."""
    return (project_digest(), Path(env.get("DSDW_DBT_DATABASE", "dev.duckdb")).stem,
            tuple(sorted((k, v) for k, v in env.items() if k not in RUN_TIME_ENV)))


def _manifest(root: Path, env: dict[str, str]) -> object | None:
    """The cached manifest for this environment's parse key, parsing (partially, from ``root``'s target directory)
    on a miss."""
    from dbt.cli.main import dbtRunner

    key = manifest_key(env)
    if key not in _MANIFESTS:
        with _env(env):  # the key's environment is the parse's (the database's name is rendered into the nodes)
            res = dbtRunner().invoke(dbt_args("parse", root))
        if not res.success:
            raise DbtError(f"dbt parse failed: {res.exception}")
        _MANIFESTS.clear()
        _MANIFESTS[key] = res.result
    return _MANIFESTS[key]


def parsed_manifest(root: Path, env: dict[str, str]) -> object:
    """dbt's parsed project (a ``Manifest``: nodes with their config, docs and dependencies) for an environment:
    this process's cached parse, or a new one."""
    return _manifest(root, env)


@contextlib.contextmanager
def _quiet_events() -> Iterator[None]:
    """dbt's event manager for an in-process load, which logs nothing (``--log-level none``): dbt builds a
    protobuf message of every event (~18 a node) before asking whether any logger or callback wants it; this one
    skips the events nobody reads (no logger, only dbt's own behaviour-change callback, below warn level).
    Warnings and errors still go through dbt's own handling (``--warn-error``)."""
    from dbt.tracking import track_behavior_change_warn
    from dbt_common.events import event_manager_client as emc
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager import EventManager

    class QuietEventManager(EventManager):
        def fire_event(self, e, level=None, node=None, force_warn_or_error_handling=False) -> None:  # noqa: ANN001
            lvl = level or e.level_tag()
            if (not force_warn_or_error_handling and not self.loggers
                    and all(cb is track_behavior_change_warn for cb in self.callbacks)
                    and lvl not in (EventLevel.WARN, EventLevel.ERROR)):
                return
            super().fire_event(e, level=level, node=node, force_warn_or_error_handling=force_warn_or_error_handling)

    old = emc.get_event_manager()
    quiet = QuietEventManager()
    lazy = _lazy_event_messages()
    lazy.__enter__()
    for attr in ("_warn_error", "_warn_error_options", "require_warn_or_error_handling", "allow_deferral"):
        setattr(quiet, attr, getattr(old, attr))
    emc.ctx_set_event_manager(quiet)
    try:
        yield
    finally:
        lazy.__exit__(None, None, None)
        quiet.loggers.clear()
        quiet.callbacks.clear()
        emc.ctx_set_event_manager(old)


@contextlib.contextmanager
def _lazy_event_messages() -> Iterator[None]:
    """dbt's events with their protobuf message built on first use: dbt constructs every event (~24 a node) before
    firing it, and the construction (``ParseDict`` of its fields into the message) is most of an event's cost;
    :func:`_quiet_events` then drops nearly all of them unread.  An event's fields are kept as given and parsed
    when something reads the event (a logger, a callback, a warning's handling, ``level_tag`` reading a field):
    the same message dbt would have built, later or never."""
    from dbt_common.events.base_types import BaseEvent

    init, getattr_ = BaseEvent.__init__, BaseEvent.__getattr__

    def lazy_init(self, *args, **kwargs) -> None:  # noqa: ANN001
        object.__setattr__(self, "_dsdw_felter", (args, kwargs))

    def lazy_getattr(self, key: str):  # noqa: ANN001, ANN202
        pending = self.__dict__.pop("_dsdw_felter", None)
        if pending is not None:
            init(self, *pending[0], **pending[1])
        return getattr_(self, key)

    BaseEvent.__init__ = lazy_init  # type: ignore[method-assign]
    BaseEvent.__getattr__ = lazy_getattr  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseEvent.__init__ = init  # type: ignore[method-assign]
        BaseEvent.__getattr__ = getattr_  # type: ignore[method-assign]


@contextlib.contextmanager
def _no_sql_files() -> Iterator[None]:
    """dbt without its per-node SQL files: it writes every node's compiled SQL to ``target/compiled`` and, for a
    model, the executed statement again to ``target/run`` (two file writes a node, no flag turns them off); a
    nightly load reads neither (the statements are in the node results).  Measured on a tiny night: about a
    tenth of dbt's worker thread's wall, waiting on the disk (bench/bench_dbt_overhead.py)."""
    from dbt.contracts.graph.nodes import ParsedNode

    write = ParsedNode.__dict__["write_node"]
    ParsedNode.write_node = lambda self, project_root, compiled_path, compiled_code: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        ParsedNode.write_node = write  # type: ignore[method-assign]


# Jinja templates compiled to Python code, by (environment class, template source): this process's, and a load's
# earlier ones read from its target directory (:func:`_compiled_templates`)
_TEMPLATE_CODE: dict[bytes, object] = {}
TEMPLATE_CACHE = "jinja_code.marshal"


def _template_cache_version() -> bytes:
    """What a compiled template's code depends on besides its source: marshal's format is the interpreter's, the
    generated code Jinja's and dbt-common's (its parser renames macros, its environments set the filters)."""
    import sys
    from importlib.metadata import version

    return f"{sys.version}|jinja2 {version('jinja2')}|dbt-common {version('dbt-common')}".encode()


@contextlib.contextmanager
def _compiled_templates(path: Path | None) -> Iterator[None]:
    """dbt with its Jinja templates compiled once, not once a process: dbt compiles every node's SQL, every hook and
    every macro it calls from the source text on each use (``Environment.from_string``; no cache), and a night
    compiles the same ~300 texts as the night before.  Here the compiled code is kept by (environment class,
    source), in memory and in ``path`` (this environment's target directory, beside dbt's own
    ``partial_parse.msgpack``), written back with the templates this invocation used when it compiled a new one.
    Measured on a tiny night: about a quarter of dbt's own Python time in a build (bench/bench_dbt_overhead.py).

    The code of a template depends only on its source and the environment's class (the native one generates other
    code; the undefined-handling ``capture_macros`` variant is a run-time setting), so a cached code object is
    the one Jinja would compile.  Not used when dbt's macro debugging names each template's code after a file.
    The file is code, like dbt's ``partial_parse.msgpack`` beside it (the project's models, which dbt runs): the
    target directory must be writable by the load's account only, as it already had to be."""
    import marshal

    from dbt_common.clients import jinja as dj

    version = _template_cache_version()
    if path is not None and path.exists() and not _TEMPLATE_CODE:
        with contextlib.suppress(Exception):  # a cache from another interpreter or a torn file: compile anew
            stored_version, stored = marshal.loads(path.read_bytes())
            if stored_version == version:
                _TEMPLATE_CODE.update(stored)
    used: set[bytes] = set()
    compiled = []
    cls = dj.MacroFuzzEnvironment
    own = cls.__dict__.get("compile")
    compile_source = cls.compile

    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):  # noqa: ANN001, ANN202
        if not isinstance(source, str) or name or filename or raw or defer_init or dj.MACRO_DEBUGGING:
            return compile_source(self, source, name, filename, raw, defer_init)
        key = hashlib.sha256(type(self).__qualname__.encode() + b"\0" + source.encode()).digest()
        code = _TEMPLATE_CODE.get(key)
        if code is None:
            code = _TEMPLATE_CODE[key] = compile_source(self, source)
            compiled.append(key)
        used.add(key)
        return code

    cls.compile = compile  # type: ignore[method-assign]
    try:
        yield
    finally:
        if own is None:
            del cls.compile
        else:
            cls.compile = own  # type: ignore[method-assign]
        if path is not None and compiled:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(marshal.dumps((version, {k: _TEMPLATE_CODE[k] for k in used})))
            tmp.replace(path)


def run_dbt(root: Path, env: dict[str, str], command: str = "build", *extra: str, sql_files: bool = True) -> dict:
    """Run dbt in this process; returns ``{node: (status, seconds, rows)}``, raising on an error.

    A person-bucket model that runs out of memory is rerun in more buckets (:func:`retry_in_buckets`).
    ``sql_files=False``: no compiled SQL under the target directory (:func:`_no_sql_files`); a rebuild keeps them
    (bench/bench_model_alone.py reads one)."""
    return retry_in_buckets(lambda e, x: _run_dbt_once(root, e, command, *x, sql_files=sql_files), env, extra,
                            f"dbt {command}")


# One dbt invocation's outcome: {unique_id: (status, seconds, rows)}, the failures' lines, and by unique id the
# person-bucket models that ran out of memory and the skipped nodes (their names, for a retry's selection)
Outcome = tuple[dict[str, tuple[str, float, int | None]], list[str], dict[str, str], dict[str, str]]


def retry_in_buckets(once: Callable[[dict[str, str], tuple[str, ...]], Outcome], env: dict[str, str],
                     extra: tuple[str, ...] | list[str], what: str) -> dict:
    """``once(env, args)`` (one dbt invocation, any runner: in process, a rebuild's, Dagster's subprocess), rerun
    while its only failures are person-bucket models out of memory and the nodes they skipped: those nodes alone,
    with twice the buckets (``DSDW_PERSON_SPAND_FAKTOR``), at most :data:`SPAND_FORSOEG` times, logged.  Why: the
    bucket count is an estimate, and a wrong one should cost a rerun, not the load.  Returns the nodes' results
    (a retried node's seconds include its failed attempts); raises :class:`DbtError` on what is left failing."""
    nodes, failed, oom, skipped = once(env, tuple(extra))
    faktor = int(env.get("DSDW_PERSON_SPAND_FAKTOR") or os.environ.get("DSDW_PERSON_SPAND_FAKTOR") or 1)
    for _ in range(SPAND_FORSOEG):
        if not oom or len(failed) != len(oom) + len(skipped):  # another failure: no retry
            break
        faktor *= 2
        log.warning("%s: %s ran out of memory in person buckets; rerun with %d x the buckets, with %d "
                    "skipped nodes", what, ", ".join(sorted(oom.values())), faktor, len(skipped))
        forrige = nodes
        nodes, failed, oom, skipped = once(
            {**env, "DSDW_PERSON_SPAND_FAKTOR": str(faktor)},
            (*_uden_udvalg(tuple(extra)), "--select", " ".join(sorted({*oom.values(), *skipped.values()}))))
        for uid, (status, secs, rows) in forrige.items():  # the failed attempts' seconds stay in the model's
            nodes[uid] = (nodes[uid][0], nodes[uid][1] + secs, nodes[uid][2]) if uid in nodes else (
                status, secs, rows)
    if failed:
        raise DbtError(f"{what} failed: " + "; ".join(failed[:5]))
    return nodes


def classify(results: list[tuple[str, str, str, float, int | None, str, bool]]) -> Outcome:
    """An :data:`Outcome` from a run's node results ``(unique_id, name, status, seconds, rows, message,
    person_spand)``, whichever runner produced them (dbt's result objects or run_results.json)."""
    nodes: dict[str, tuple[str, float, int | None]] = {}
    failed: list[str] = []
    oom: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for uid, name, status, secs, rows, message, spand in results:
        nodes[uid] = (status, secs, rows)
        if status in ("error", "fail", "skipped"):
            failed.append(f"{uid}: {status} {message or ''}".strip())
        if status == "skipped":
            skipped[uid] = name
        elif status == "error" and "Out of Memory" in (message or "") and uid.startswith("model.") and spand:
            oom[uid] = name
    return nodes, failed, oom, skipped


def classify_run_results(run_results: dict, manifest: dict) -> Outcome:
    """:func:`classify` over dbt's ``run_results.json`` and ``manifest.json`` (a subprocess's artefacts)."""
    spec = manifest.get("nodes", {})
    out = []
    for r in run_results.get("results", []):
        node = spec.get(r["unique_id"], {})
        out.append((r["unique_id"], node.get("name") or r["unique_id"].split(".")[2], str(r["status"]),
                    float(r.get("execution_time") or 0.0), (r.get("adapter_response") or {}).get("rows_affected"),
                    r.get("message") or "", bool((node.get("config") or {}).get("person_spand"))))
    return classify(out)


def dbt_outcome(res: Any) -> Outcome:
    """:func:`classify` over an in-process ``dbtRunnerResult``; dbt's own failure (no node results to blame)
    is a failure without a retry."""
    out = classify([(r.node.unique_id, r.node.name, str(r.status), r.execution_time,
                     (r.adapter_response or {}).get("rows_affected"), r.message or "",
                     bool(r.node.config.get("person_spand")))
                    for r in getattr(res.result, "results", None) or []])
    if res.exception is not None or (not res.success and not out[1]):
        out[1].append(f"({res.exception})")
    return out


def _uden_udvalg(args: tuple[str, ...]) -> list[str]:
    """dbt's arguments without the node selection (``--select`` and its values; ``--exclude`` stays): a retry
    selects its nodes by name."""
    out: list[str] = []
    skip = False
    for a in args:
        if a in ("--select", "-s", "--selector"):
            skip = True
        elif skip and not a.startswith("-"):
            continue
        else:
            skip = False
            out.append(a)
    return out


def _run_dbt_once(root: Path, env: dict[str, str], command: str, *extra: str, sql_files: bool) -> Outcome:
    """One dbt invocation in this process (:data:`Outcome`)."""
    from dbt.cli.main import dbtRunner

    files = contextlib.nullcontext() if sql_files else _no_sql_files()
    with _env(env), _quiet_events(), files, _compiled_templates(target_dir(root) / TEMPLATE_CACHE):
        try:
            res = dbtRunner(manifest=_manifest(root, env)).invoke(dbt_args(command, root, *extra))
        finally:
            _release_duckdb()
    return dbt_outcome(res)


def plain_sql(model: str) -> str:
    """A view model's SQL with ``ref('x')`` as ``x`` and ``source('s', 't')`` as ``s.t``, rendered with Jinja (dbt's
    template engine) and without dbt: for hand-made databases in tests and benchmarks that hold the model's inputs
    under their plain names, where a dbt compile (a project parse) would cost more than the test."""
    import jinja2

    path = next((PROJECT_DIR / "dbt" / "models").rglob(f"{model}.sql"))
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return env.from_string(path.read_text(encoding="utf-8")).render(
        ref=lambda name: name, source=lambda schema, table: f"{schema}.{table}", config=lambda **_: "")


def compiled_sql(model: str, database: Path | str, workdir: Path) -> str:
    """``model``'s SQL as dbt compiles it for a first build (``--full-refresh``: the full computation, not a
    night's increment) with its relations in ``database`` (named by the file's stem, as DuckDB names an opened
    file; named ``build.duckdb`` like the load's, the process's parsed project serves it): what a test or a
    benchmark runs on a built warehouse.
    ``workdir`` holds dbt's target directory and an empty restricted database for the profile."""
    from dbt.cli.main import dbtRunner

    workdir.mkdir(parents=True, exist_ok=True)
    env = {**dbt_env(workdir, Path(workdir) / "unused.duckdb", Path(workdir) / "restricted" / "restricted.duckdb"),
           "DSDW_DBT_DATABASE": str(database)}
    (Path(workdir) / "restricted").mkdir(exist_ok=True)
    with _env(env), _quiet_events():
        try:
            res = dbtRunner(manifest=_manifest(workdir, env)).invoke(
                dbt_args("compile", workdir, "--select", model, "--full-refresh"))
        finally:
            _release_duckdb()
    if not res.success:
        raise DbtError(f"dbt compile {model} failed: {res.exception}")
    # the selection's tests are compiled too: the model's own node
    (node,) = [r.node for r in res.result.results if r.node.resource_type == "model" and r.node.name == model]
    return node.compiled_code


def _release_duckdb() -> None:
    """Close dbt-duckdb's process-wide DuckDB instance, so the load can reopen the files it wrote (dbt-duckdb
    keeps it open for the next invocation and only forgets it in close_all_connections)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    if env is not None:
        with contextlib.suppress(Exception):
            env.close()
    DuckDBConnectionManager.close_all_connections()


def _prepare(con: duckdb.DuckDBPyConnection, root: Path, load_date: dt.date, load_id: str, res: B.LoadResult,
             key: bytes, ipad: bytes, opad: bytes) -> list[dict]:
    """The Python before dbt: ledger increment, retractions, new persons' pseudonyms, the load's tables."""
    new = B._new_payloads(root, con, load_date)
    res.payloads = len(new)
    res.retracted = B._retract(con, new, load_date, load_id)
    for s in LOAD_SQL:
        con.execute(s)
    con.execute("INSERT INTO meta.current_load VALUES (?, ?)", [load_id, load_date])
    if new:
        # one statement (DuckDB's executemany runs one per row)
        con.execute("INSERT INTO meta.load_increment SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                    "unnest(?::VARCHAR[])", [[p["payload_id"] for p in new], [p["dataset"] for p in new],
                                             [p["lake_path"] for p in new]])
    by_ds: dict[str, list[dict]] = {}
    for p in new:
        by_ds.setdefault(p["dataset"], []).append(p)
    for ds, payloads in sorted(by_ds.items()):
        B._register_increment(con, ds, payloads)
        B._add_persons(con, get_contract(ds), load_date, key, ipad, opad)
        con.unregister("inc_empty")
        # before dbt: the arrival histogram (mart_indberetning_ankomst_bidrag) reads the payloads' receive
        # time; the staged counts follow once staging is built (_record_staged)
        B.record_payloads(con, ds, payloads, {}, load_date, load_id)
    return new


def _record_staged(con: duckdb.DuckDBPyConnection, new: list[dict], res: B.LoadResult) -> None:
    """``meta.loaded_payload.rows_staged`` of this load's payloads (recorded before dbt with 0), from staging.

    Only datasets with new payloads are read: a build that selects the models downstream of them leaves the
    other staging tables as an earlier load left them."""
    by_ds: dict[str, list[dict]] = {}
    for p in new:
        by_ds.setdefault(p["dataset"], []).append(p)
    for c in load_contracts().values():
        ds = c.dataset
        payloads = by_ds.get(ds, [])
        res.rows_lake[ds] = sum(int(p["rows_accepted"] or 0) for p in payloads)
        res.rows_staged[ds] = 0
        if not payloads:
            continue
        stg = ("restricted." if is_restricted(c) else "staging.") + stg_name(c)
        # one UPDATE per dataset (a statement per payload was ~800 indexed single-row updates a night)
        con.execute(f"CREATE OR REPLACE TEMP TABLE staged_counts AS SELECT _payload_id, count(*) AS n FROM {stg} "
                    "GROUP BY 1")
        res.rows_staged[ds] = con.execute("SELECT coalesce(sum(n), 0) FROM staged_counts").fetchone()[0]
        con.execute("UPDATE meta.loaded_payload SET rows_staged = c.n FROM staged_counts c "
                    "WHERE meta.loaded_payload.payload_id = c._payload_id")
    con.execute("DROP TABLE IF EXISTS staged_counts")


def materializations() -> dict[str, str]:
    """Model -> dbt materialization, from this process's parsed project (empty when dbt ran elsewhere, e.g. as
    Dagster's subprocess)."""
    return {n.name: n.config.materialized for m in _MANIFESTS.values()
            for n in getattr(m, "nodes", {}).values() if n.resource_type == "model"}


def _invoke_in_process(root: Path, env: dict[str, str], args: list[str]) -> dict:
    """``dbt build`` in this process without the tests whose result a load does not use: the ``warn`` ones (a
    warning cannot stop a load, and nothing here would read it: ``dsdw warehouse check`` runs every test and lists
    the warnings, the Dagster path keeps them as asset checks) and the ``full_build`` ones (the facts'
    ``besked_id``, which the lake's validation enforces on every build, the first included, and the restricted
    current-state views' record keys, which a night does not select). The analysts' current-state tables' record
    keys are tested on every build, on a night only for the records it touched."""
    skip = [x for x in (WARN_TESTS, f"tag:{FULL_BUILD_TAG}") if x not in args]
    if "--exclude" in args:
        i = args.index("--exclude") + 1
        args = [*args[:i], *skip, *args[i:]]
    elif skip:
        args = [*args, "--exclude", *skip]
    return run_dbt(root, env, "build", *args, sql_files=False)


DbtInvoke = Callable[[Path, dict[str, str], list[str]], dict]
# models every nightly build runs, whatever arrived: the load's scope, the weekly panel (a new week for
# everyone), the flows of the rows it rewrote, and the statistics whose open periods move with the load date
NIGHTLY_TAG = "tag:nightly"
WARN_TESTS = "config.severity:warn"


def project_digest() -> str:
    """What a build's result depends on besides the data: the dbt project's files and the code lists."""
    h = hashlib.sha256()
    project = sorted([*(PROJECT_DIR / "dbt").rglob("*"), PROJECT_DIR / "dbt_project.yml", PROJECT_DIR / "profiles.yml"])
    for base, files in ((PROJECT_DIR, project), (REFERENCE_DIR, sorted(REFERENCE_DIR.glob("*.csv")))):
        for f in files:
            if f.is_file():
                h.update(str(f.relative_to(base)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def nightly_selection(con: duckdb.DuckDBPyConnection, new: list[dict]) -> list[str]:
    """dbt's arguments for this load: everything when nothing was built yet or the project or a code list
    changed since the last build; else the models downstream of the datasets with new payloads (``source:
    lake.<dataset>+``; a retraction always comes with its dataset's corrected payload) and the nightly ones,
    views left out.  Models that only read code lists (the dims) and views are then left as they are.

    Tests: the ``error`` ones of the selected models, except those tagged ``full_build`` (the facts'
    ``besked_id``, a field every contract requires, and the restricted current-state views' record keys): ~40 fewer
    nodes a night at ~40 ms of dbt's own work each. The current-state tables' record-key tests run, scoped to the
    records the night touched (generate._fact_tests).

    Each flag's selectors are one space-separated value (dbt's union): dagster-dbt (0.29.27) reads a flag's
    first value only and passes the rest to dbt as stray arguments, which failed every Dagster night after the
    first (tests/warehouse/test_warehouse_build.py)."""
    row = con.execute("SELECT digest FROM meta.schema_state WHERE name = 'dbt_project'").fetchone()
    if row is None or row[0] != project_digest():
        return []
    # views are defined once: a night's data never changes them (a changed definition changes the digest)
    return ["--select", " ".join([*[f"source:lake.{d}+" for d in sorted({p["dataset"] for p in new})], NIGHTLY_TAG]),
            "--exclude", " ".join(["config.materialized:view", WARN_TESTS, f"tag:{FULL_BUILD_TAG}"])]


def _after_selection(con: duckdb.DuckDBPyConnection, new: list[dict]) -> None:
    """Staging holds this load's increment: a dataset with nothing new, whose staging model the selection
    left out, is emptied (as a full build leaves it); the project digest is recorded for the next load."""
    with_payloads = {p["dataset"] for p in new}
    for c in load_contracts().values():
        if c.dataset not in with_payloads:
            con.execute(f"DELETE FROM {('restricted.' if is_restricted(c) else 'staging.') + stg_name(c)}")
    con.execute("DELETE FROM meta.schema_state WHERE name = 'dbt_project'")
    con.execute("INSERT INTO meta.schema_state VALUES ('dbt_project', ?)", [project_digest()])


def load_warehouse_dbt(root: Path, load_date: dt.date, *, publish: bool = True,
                       invoke: DbtInvoke = _invoke_in_process, statistics: bool = True) -> B.LoadResult:
    """:func:`pipelines.warehouse.build.load_warehouse`: the Python steps around ``dbt build``.

    ``invoke(root, env, args)`` runs ``dbt build *args`` (the night's selection, :func:`nightly_selection`) with the
    environment ``env`` (the database paths) and returns
    ``{node: (status, seconds, rows)}``; the default runs dbt in this process, Dagster passes its
    ``DbtCliResource`` invocation (pipelines.assets.warehouse_dbt).
    """
    root = Path(root)
    t0 = time.perf_counter()
    load_id = f"{load_date.isoformat()}-{uuid.uuid4().hex[:8]}"
    res = B.LoadResult(load_id=load_id, indlaest_dato=load_date)
    key = load_key("pseudonym")
    ipad, opad = hmac_pads(key)
    B._register_hooks()
    build = B.build_path(root)
    build.parent.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    ok = False
    con: duckdb.DuckDBPyConnection | None = None
    try:
        tr = time.perf_counter()
        with unsealed(root, write=True) as plain:
            res.step_seconds["restricted_unseal"] = time.perf_counter() - tr
            con = duckdb.connect(str(build))
            con.execute(f"ATTACH '{plain}' AS restricted")
            B._setup(con, load_date, load_id)
            last = con.execute("SELECT max(indlaest_dato) FROM meta.load").fetchone()[0]
            if last is not None and load_date < last:
                raise B.WarehouseError(f"load date {load_date} is before the last load {last}: "
                                       "transaction time only moves forward")
            new = _prepare(con, root, load_date, load_id, res, key, ipad, opad)
            selection = nightly_selection(con, new)
            con.execute("CHECKPOINT")
            con.execute("CHECKPOINT restricted")
            con.execute("DETACH restricted")
            con.close()
            con = None
            td = time.perf_counter()
            nodes = invoke(root, dbt_env(root, build, plain, schema_check=not selection), selection)
            res.step_seconds["dbt_build"] = time.perf_counter() - td
            # dbt's own cost (start, parse, compile, scheduling): the build minus its nodes' execution
            res.step_seconds["dbt_nodes"] = sum(x[1] for x in nodes.values())
            res.step_seconds["dbt_overhead"] = res.step_seconds["dbt_build"] - res.step_seconds["dbt_nodes"]
            for uid, (_status, secs, rows) in nodes.items():
                if uid.startswith("model."):
                    name = uid.rsplit(".", 1)[1]
                    res.model_seconds[name] = secs
                    res.model_rows[name] = rows if rows is not None else 0
            con = duckdb.connect(str(build))
            con.execute(f"ATTACH '{plain}' AS restricted")
            B._setup(con, load_date, load_id)
            _record_staged(con, new, res)
            _after_selection(con, new)
            _after_dbt(con, res, statistics)
            ts = time.perf_counter()
            res.sorted_by_person = {s.table: s.rows for s in sort_by_person(con, load_date)}
            res.step_seconds["sort_by_person"] = time.perf_counter() - ts
            B._attach_quality(con, root, {dt.date.fromisoformat(p["leveringsdato"]) for p in new} | {load_date})
            res.seconds = time.perf_counter() - t0
            con.execute("INSERT INTO meta.load VALUES (?, ?, ?, now(), ?, ?, ?, ?, ?, ?, ?)", [
                load_id, load_date, started, key_id(key), res.payloads, sum(res.rows_staged.values()),
                res.rows_deduplicated, res.affected_persons, res.affected_maaneder, res.seconds])
            mats = materializations()
            con.executemany("INSERT INTO meta.model_run VALUES (?, ?, ?, ?, ?)", [
                [load_id, n, mats.get(n, "dbt"), res.model_rows.get(n), s] for n, s in res.model_seconds.items()])
            tc = time.perf_counter()
            con.execute("CHECKPOINT")
            con.execute("CHECKPOINT restricted")
            res.step_seconds["checkpoint"] = time.perf_counter() - tc
            con.execute("DETACH restricted")
            con.close()
            con = None
            tr = time.perf_counter()
        res.step_seconds["restricted_seal"] = time.perf_counter() - tr
        ok = True
    finally:
        if con is not None:
            con.close()
        if not ok:
            B._restore(root, build)
    if publish:
        tp = time.perf_counter()
        res.published = B._publish(root, build)
        res.publish_seconds = time.perf_counter() - tp
    res.seconds = time.perf_counter() - t0
    return res


def _after_dbt(con: duckdb.DuckDBPyConnection, res: B.LoadResult, statistics: bool) -> None:
    """The load's scope for meta.load (dbt's scope models) and the hooks after the models (the suppressed
    publication: a solver, not SQL)."""
    res.affected_persons = con.execute("SELECT count(*) FROM staging.int_affected_persons").fetchone()[0]
    res.affected_maaneder = con.execute("SELECT count(*) FROM staging.int_affected_maaneder").fetchone()[0]
    for hook in B.POST_MODEL_HOOKS if statistics else []:
        th = time.perf_counter()
        hook(con, res)
        res.hook_seconds[hook.__name__] = time.perf_counter() - th


def ydelser_python_model(dbt, session: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """The dbt-duckdb Python model ``mart_ydelser_beregning``: the full computation on its first build (in person
    buckets at national scale); later the cells the load moved, by delta
    (:func:`pipelines.warehouse.stats.maintain_ydelser`, which maintains the table in place), returning no rows to
    append.  The delta reads the scope models' tables under the temp names the delta's SQL uses."""
    from types import SimpleNamespace

    from pipelines.warehouse import stats

    name = "mart_ydelser_beregning"
    d = session.execute("SELECT indlaest_dato FROM meta.current_load").fetchone()[0]
    session.execute("SET VARIABLE load_date = ?", [d])
    if not dbt.is_incremental:
        session.execute("SET VARIABLE model_first_run = true")
        # in person buckets when one pass would not fit in memory (stats.ydelser_fuld; its temp tables live in
        # this connection, which also materialises the relation)
        return session.sql(stats.ydelser_fuld(session))
    for temp, model in (("affected_person_maaneder", "int_affected_person_maaneder"),
                        ("changed_keys", "int_state_changed_keys"), ("changed_old", "int_state_changed_old")):
        session.execute(f"CREATE OR REPLACE TEMP VIEW {temp} AS SELECT * FROM staging.{model}")
    session.execute("SET VARIABLE model_first_run = false")
    q = f"{dbt.this.schema}.{dbt.this.identifier}"
    stats.maintain_ydelser(session, SimpleNamespace(name=name, qualified=q), {"load_date": d})
    return session.sql(f"SELECT * FROM {q} LIMIT 0")
