"""One ingestion unit: (dataset, delivery day) from its channel into landing and lake.

The Dagster assets, the ``dsdw load`` command, the tests and the benchmarks all
call :func:`ingest_dataset_day`; none of them re-implements a step.  Order per
payload: fetch -> land raw (atomic) -> register in the ledger -> parse and type by
contract -> reconcile counts -> write lake + quarantine (atomic, deterministic)
-> mark loaded (one transaction with the message ids it brought).  Every step is
idempotent, so a rerun after a crash (even SIGKILL) converges on the same lake
and ledger.

Every entry a channel offers is accounted for in the ledger (issue 11): a file whose
name, day, place or reporter does not hold, a link, a FIFO, a payload the parser
rejects - each gets a ``rejected`` (or ``duplicate``) row with its reason, its bytes
landed when it is a regular file, its records quarantined, nothing in the lake.
:func:`account_day` compares what the channels offer with the ledger.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import Contract, codelist_codes, get_contract, load_contracts
from pipelines.fsio import DurableBatch
from pipelines.governance.hooks import payload_refusal
from pipelines.landing import LandingStore, Ledger, LedgerRow, PayloadKey
from pipelines.landing.ledger import CursorCommit, Ids, LoadCommit, ReleasedIds, late_remark

CHANNEL_EXT = {"webservice": ".json", "ftp": ".csv", "portal": ".csv", "filedrop": ".dat"}


@dataclass(frozen=True)
class SourcesConfig:
    """Where the reporters' channels are (as `dsdw sources serve --state-file` writes it)."""

    webservice_url: str
    tokens: dict[str, str]
    ftp_host: str
    ftp_port: int
    ftp_user: str
    ftp_password: str
    portal_dir: Path
    uvm_dir: Path
    ssi_dir: Path

    @classmethod
    def from_describe(cls, info: dict[str, Any]) -> SourcesConfig:
        ws, ftp = info["webservice"], info["ftp"]
        tokens = json.loads(Path(ws["tokens_file"]).read_text(encoding="utf-8"))
        return cls(ws["url"], tokens, ftp["host"], int(ftp["port"]), ftp["user"], ftp["password"],
                   Path(info["portal_dir"]), Path(info["uvm_dir"]), Path(info["ssi_dir"]))

    @classmethod
    def from_file(cls, path: Path) -> SourcesConfig:
        return cls.from_describe(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclass
class Zones:
    """The restricted zones of one environment: landing, lake, ledger."""

    root: Path

    @property
    def landing(self) -> LandingStore:
        return LandingStore(self.root / "landing")

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.sqlite"


@dataclass
class PayloadOutcome:
    reporter: str
    source_name: str
    payload_id: str
    # new | new_version | retry: loaded now; unchanged: the same bytes again (a rerun, nothing to do);
    # duplicate | rejected | ignored: accounted for in the ledger with ``reason``, nothing in the lake
    action: str
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    error_kinds: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    reason: str | None = None
    day: dt.date | None = None  # set when the payload belongs to another delivery day (the webservice sweep)


LOADED_NOW = ("new", "new_version", "retry")

# Where a unit's time goes, per stage, in seconds of the unit's main thread (the benchmark sums them:
# bench/results/ingest_*.json "stage_seconds"); process-local, reset by each unit.
STAGES: Counter = Counter()


@contextmanager
def _stage(name: str) -> Iterator[None]:
    t = time.perf_counter()
    try:
        yield
    finally:
        STAGES[name] += time.perf_counter() - t


@dataclass
class UnitResult:
    channel: str
    dataset: str
    day: dt.date
    payloads: list[PayloadOutcome] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (reporter or file, error)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # main-thread wall per stage (STAGES)

    @property
    def loaded_now(self) -> list[PayloadOutcome]:
        return [p for p in self.payloads if p.action in LOADED_NOW]

    @property
    def rows_accepted(self) -> int:
        return sum(p.accepted for p in self.loaded_now)

    @property
    def rows_quarantined(self) -> int:
        return sum(p.quarantined for p in self.payloads if p.action in (*LOADED_NOW, "rejected"))

    @property
    def refused(self) -> list[PayloadOutcome]:
        """Files and pages accounted for but not loaded: rejected, duplicate or ignored, with the reason."""
        return [p for p in self.payloads if p.action in ("rejected", "duplicate", "ignored")]

    def summary(self) -> str:
        kinds: Counter = Counter()
        for p in self.payloads:
            kinds.update(p.error_kinds)
        s = (f"{self.dataset} {self.day} via {self.channel}: {len(self.payloads)} payloads, "
             f"{self.rows_accepted} accepted, {self.rows_quarantined} quarantined")
        if kinds:
            s += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) + ")"
        refused = Counter(p.action for p in self.refused)
        if refused:
            s += "; " + ", ".join(f"{k}: {v}" for k, v in sorted(refused.items()))
        if self.failures:
            s += f"; FAILED: {len(self.failures)} (" + "; ".join(f"{r}: {e}" for r, e in self.failures[:5]) + ")"
        return s


# Payload-level problems that make the count of received records untrustworthy, or leave nothing to
# load: the payload is rejected (landed, ledger 'rejected' with the reason, records quarantined).
PAYLOAD_FATAL = {"trailer", "truncated", "json", "empty_payload"}


class PayloadRejected(RuntimeError):
    """A payload whose record count cannot be trusted (cut file, wrong trailer, unreadable page)."""


class IngestionFailed(RuntimeError):
    """Some reporters failed; the others were loaded. Names each failure."""

    def __init__(self, result: UnitResult) -> None:
        super().__init__(result.summary())
        self.result = result


class Pending:
    """Load commits kept back and made together: one fsync pass and one ledger transaction for many
    payloads (docs/ingestion.md, "Durability").

    Each payload's files are written (temp file + rename) as it is parsed; its ``loaded`` commit
    (message ids, record keys, webservice cursor) waits here. :meth:`settle` fsyncs every file
    written since (each directory once), then commits all of them in one transaction, in order
    (:meth:`Ledger.commit_loads`), then removes the files of the versions they superseded. Until
    then the duplicate checks of later payloads see the pending ids and keys in memory (and not
    the ids of versions they release), so they decide as if each commit had been made at once.
    A payload whose bytes or slot are pending, any other ledger write, a bound on the rows held
    and the end of the unit settle first. A crash before the commit leaves those payloads
    ``landed`` (or unregistered): the rerun redoes them, byte for byte.
    """

    # message ids held back at most (memory, and the work a crash makes the rerun redo). Each commit of
    # random ids rewrites most pages of its dataset's part of the id tables, so fewer, larger batches cost
    # less: 1.5 M ids into one dataset took 5.3 CPU s in batches of 500,000, 7.6 s in batches of 250,000.
    MAX_ROWS = 500_000
    MAX_PAYLOADS = 2_000

    def __init__(self, ledger: Ledger, released: ReleasedIds | None = None) -> None:
        self.ledger = ledger
        self.released_ids = released  # reads a superseded version's ids (its lake file) for the commit
        self.batch = DurableBatch()
        self.items: list[tuple[LoadCommit | CursorCommit, Any]] = []
        self.shas: set[str] = set()
        self.slots: set[PayloadKey] = set()
        self.ids: dict[str, set[str]] = {}  # dataset -> pending message ids
        self._where: dict[str, dict[str, tuple[str, int]]] | None = None  # built when a duplicate is found
        self.keys: dict[str, set[str]] = {}  # dataset -> record keys created by a pending payload
        self.released: set[str] = set()  # payload ids a pending load supersedes (their ids no longer count)
        self.rows = 0

    def holds(self, key: PayloadKey, sha: str) -> bool:
        return sha in self.shas or key in self.slots

    def held(self, dataset: str) -> set[str]:
        """The pending message ids of ``dataset``."""
        return self.ids.get(dataset, set())

    def first_of(self, dataset: str, besked_id: str) -> tuple[str, int] | None:
        """The pending payload and record that brought ``besked_id`` first (asked for duplicates only)."""
        if self._where is None:
            self._where = {}
            for c, _ in self.items:
                if isinstance(c, LoadCommit):
                    for m in c.messages:
                        at = self._where.setdefault(m.dataset, {})
                        for bid, n in zip(m.ids.to_pylist(), m.record_nos.to_pylist(), strict=True):
                            at.setdefault(bid, (c.row.payload_id, n))  # the first copy counts
        return self._where.get(dataset, {}).get(besked_id)

    def add(self, load: LoadCommit, sha: str, batch: DurableBatch, superseded: LedgerRow | None,
            on_superseded: Any) -> None:
        """Keep ``load`` back; ``batch``'s files are made durable at :meth:`settle`."""
        self.batch.absorb(batch)
        self.items.append((load, on_superseded))
        self.shas.add(sha)
        self.slots.add(load.row.key)
        self._where = None
        for m in load.messages:
            self.ids.setdefault(m.dataset, set()).update(m.py if m.py is not None else m.ids.to_pylist())
        for k in load.keys:
            self.keys.setdefault(k.dataset, set()).update(k.ids.to_pylist())
        if superseded is not None:
            self.released.add(superseded.payload_id)
        self.rows += load.message_count
        if self.rows >= self.MAX_ROWS or len(self.items) >= self.MAX_PAYLOADS:
            self.settle()

    def cursor(self, c: CursorCommit) -> None:
        """A cursor write, kept in order with the loads before it (a page that loaded nothing new)."""
        self.items.append((c, None))

    def settle(self) -> None:
        if not self.items:
            return
        items = self.items
        self.items = []
        self.shas, self.slots, self.ids, self.keys, self.released = set(), set(), {}, {}, set()
        self._where = None
        self.rows = 0
        loads = [c for c, _ in items]
        try:
            with _stage("fsync"):
                self.batch.flush()  # no final ledger row names a file that is not durable
            with _stage("ledger_commit"):  # (its wait for the write lock included)
                olds = self.ledger.commit_loads(loads, self.released_ids)
        except Exception as exc:
            for c in loads:
                if isinstance(c, LoadCommit):
                    with suppress(Exception):
                        self.ledger.mark_failed(c.row.key, c.row.version, f"{type(exc).__name__}: {exc}")
            raise
        for (_c, on_superseded), old in zip(items, olds, strict=True):
            if old is not None and on_superseded is not None:  # after the commit: crash-safe
                on_superseded(old)


def lake_ids(contract: Contract) -> ReleasedIds:
    """Reads the ids a loaded version of ``contract``'s dataset brought from its lake file: the message
    ids and created record keys the ledger holds for it, so superseding it deletes them by key.
    None (the ledger then scans for them) when the file is gone or does not hold the rows it had."""
    key = contract.record_key[0] if contract.record_key else None

    def read(old: LedgerRow) -> tuple[list[str], list[str]] | None:
        import pyarrow.parquet as pq

        if not old.lake_path:
            return None
        try:
            table = pq.read_table(old.lake_path, columns=["besked_id", "aendringstype"] + ([key] if key else []))
        except (OSError, pa.ArrowException):
            return None
        if table.num_rows != old.rows_accepted:
            return None
        ids = table.column("besked_id").drop_null().cast(pa.string())
        keys: list[str] = []
        if key is not None:
            kcol = table.column(key).cast(pa.string())
            keys = pc.unique(pc.filter(kcol, pc.and_kleene(pc.equal(table.column("aendringstype"), "1"),
                                                             kcol.is_valid()))).to_pylist()
        return ids.to_pylist(), keys
    return read


def _quarantine_rows(base: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**base, **r} for r in rows]


def _reporter_codes(contract: Contract) -> set[str] | None:
    """The reporters the code lists allow for ``contract`` (None: a single fixed reporter)."""
    if contract.reporter == "jobcenter":
        return set(codelist_codes("kommuner"))
    if contract.reporter == "akasse":
        return set(codelist_codes("akasser"))
    return None


def _identity_problem(contract: Contract, key: PayloadKey, accepted: pa.Table,
                      envelope_reporter: str | None) -> str | None:
    """Why the payload is not the named reporter's (code list, envelope, records), or None.

    The reporter a file name or a token claims must be in the code list and agree with the
    page envelope and with every record's ``indberetter``: a payload is one reporter's.
    """
    allowed = _reporter_codes(contract)
    if allowed is not None and key.reporter not in allowed:
        return (f"reporter {key.reporter!r} (from the {'token' if key.channel == 'webservice' else 'file name'}) is "
                f"not in the code list {'kommuner' if contract.reporter == 'jobcenter' else 'akasser'}")
    if allowed is None and key.reporter != contract.reporter.upper():
        return f"reporter {key.reporter!r} does not deliver {contract.dataset} (only {contract.reporter.upper()})"
    if envelope_reporter is not None and envelope_reporter != key.reporter:
        return f"the page envelope names reporter {envelope_reporter!r}, the credentials belong to {key.reporter!r}"
    if accepted.num_rows and "indberetter" in accepted.column_names:
        col = accepted.column("indberetter")
        if pc.all(pc.equal(col, key.reporter)).as_py() is not False:  # the common case, vectorised
            return None
        said = Counter(v for v in col.to_pylist() if v is not None)
        other = {k: n for k, n in said.items() if k != key.reporter}
        if other:
            shown = ", ".join(f"{k!r} x{n}" for k, n in sorted(other.items())[:5])
            return (f"records name another reporter in indberetter ({shown}) than the "
                    f"{'credentials' if key.channel == 'webservice' else 'file name'} ({key.reporter!r}): "
                    "a payload is one reporter's")
    return None


def load_payload(zones: Zones, ledger: Ledger, contract: Contract, key: PayloadKey, data: bytes, ext: str,
                 received_at: str, cursor: tuple[str | None, int, bool] | None = None, *,
                 reject: str | None = None, envelope_reporter: str | None = None,
                 last_cursor: str | None = None, total: int | None = None,
                 arrived: dt.date | None = None, pending: Pending | None = None,
                 decoded: Any = None, sha256: str | None = None) -> PayloadOutcome:
    """Land, register, parse, reconcile and write one payload (idempotent).

    ``reject``: a reason known before parsing (the file's name, day or place): the payload is
    landed and its records quarantined, but never loaded. A payload the parser rejects, or whose
    reporter identity does not hold, is treated the same way: ledger ``rejected`` with the reason,
    every readable record in the quarantine, nothing in the lake, the version loaded before (if
    any) stays loaded. ``arrived``: the day whose folder offered this file named for the earlier
    day ``key.leveringsdato`` (filed under the named day, the ledger keeps both days).
    ``pending``: the final commit is kept back there (see :class:`Pending`); the caller settles it.
    ``decoded``: the JSON page as the channel client already read it from ``data`` (not read twice);
    ``sha256``: the hex digest of ``data`` when the client computed it (on its fetch thread).
    """
    from pipelines.lake.parse import QUARANTINE_SCHEMA, ReconciliationError, parse_payload, reconcile
    from pipelines.lake.write import lake_path, quarantine_path, write_parquet

    # the payload's files (landing, lake, quarantine) are made durable together, right before the
    # ledger commit that names them final (docs/ingestion.md, "Durability")
    batch = DurableBatch()
    with _stage("land"):
        sha = sha256 or hashlib.sha256(data).hexdigest()
    if pending is not None and pending.holds(key, sha):  # the same bytes or slot as a payload not yet committed
        pending.settle()
    with _stage("land"):
        pid, path = zones.landing.put(data, key.channel, key.dataset, key.leveringsdato, key.reporter, ext,
                                      batch=batch, sha256=sha)
    with _stage("ledger_register"):
        reg = ledger.register(key, pid, sha, len(data), path, received_at, same_bytes_check=reject is None,
                              before_final=batch.flush, arrived=arrived)
    pid = reg.row.payload_id  # a revert to an earlier version's bytes has an id of its own
    out = PayloadOutcome(key.reporter, key.source_name, pid, reg.action,
                         reason=reg.row.error if reg.action in ("duplicate", "rejected", "unchanged") else None)
    if arrived is not None and arrived != key.leveringsdato:
        out.day = key.leveringsdato
        if reg.action in LOADED_NOW:
            out.warnings.append(late_remark(key, arrived, ledger.loaded_version(key)))
    if reg.action not in LOADED_NOW:
        batch.flush()  # a landing file a crash had cut, rewritten just now
        return out
    # §§ 6, 8 and § 6, stk. 2: refused by the governance register (only where one exists): landed, the
    # reason in the ledger (rejected), nothing in the lake; the verdict is per delivery day, so reruns agree
    if refusal := payload_refusal(zones.root, key, data):
        batch.flush()
        if pending is not None:
            pending.settle()
        ledger.mark_rejected(reg.row, refusal, 0, 0)
        out.action, out.reason, out.warnings = "rejected", refusal, [refusal]
        return out
    ident = {"payload_id": pid, "dataset": contract.dataset, "channel": key.channel, "reporter": key.reporter,
             "leveringsdato": key.leveringsdato}
    try:
        with _stage("parse"):
            res = parse_payload(data, contract, channel=key.channel, reporter=key.reporter,
                                leveringsdato=key.leveringsdato, payload_id=pid, decoded=decoded)
            reconcile(res)
        accepted, quarantine = res.accepted, res.quarantine
        fatal = [e for e in res.payload_errors if e.get("error_kind") in PAYLOAD_FATAL]
        reason = reject or getattr(res, "rejected_reason", None)
        if reason is None and not fatal and accepted.num_rows == 0:
            # a header that maps no record (another dataset's file, another delimiter, a line of garbage
            # with no record after it): nothing is usable, and it is not this dataset's (empty) file
            fatal = [e for e in res.payload_errors if e.get("error_kind") in ("header", "column_count")]
        if reason is None and fatal:
            reason = "; ".join(f"{e['error_kind']}: {e['message']}" for e in fatal)
        if reason is None:
            reason = _identity_problem(contract, key, accepted, envelope_reporter)
        out.rows_read = res.records_received
        if reason is not None:
            if pending is not None:  # other ledger writes keep their order with the pending loads
                pending.settle()
            # nothing of a rejected payload reaches the lake: its accepted-looking rows are quarantined too
            rows = [{"record_no": int(r["_record_no"]), "field": None, "error_kind": "payload_rejected",
                     "message": f"payload rejected: {reason}",
                     "raw_record": json.dumps({c: (str(v) if v is not None else None) for c, v in r.items()
                                               if not c.startswith("_")}, ensure_ascii=False)}
                    for r in accepted.to_pylist()]
            if rows:
                quarantine = pa.concat_tables([quarantine, pa.Table.from_pylist(
                    _quarantine_rows(ident, rows), schema=QUARANTINE_SCHEMA)])
            q_file = quarantine_path(zones.root, contract.dataset, key.leveringsdato, key.reporter, pid,
                                     rejected_tag(key))
            if quarantine.num_rows:
                write_parquet(quarantine, q_file, batch)
            batch.flush()
            out.quarantined = len({n for n in quarantine.column("record_no").to_pylist() if n is not None})
            out.error_kinds = Counter(quarantine.column("error_kind").to_pylist())
            out.action, out.reason = "rejected", reason
            ledger.mark_rejected(reg.row, reason, out.rows_read, out.quarantined)
            if cursor is not None:
                ledger.commit_cursor(key.channel, key.reporter, key.dataset, key.leveringsdato, *cursor,
                                     last_cursor, total)
            return out
        # duplicate messages: within this payload, or already loaded from another payload (the
        # version this one supersedes does not count: its ids are released by this load)
        own = pending is None
        pending = Pending(ledger, lake_ids(contract)) if pending is None else pending
        before = ledger.loaded_version(key)
        exclude = [pid, *pending.released] + ([before.payload_id] if before is not None else [])
        with _stage("duplicates"):
            accepted, dup_rows, kept_ids = _split_duplicates(ledger, contract, accepted, exclude, pending)
        if dup_rows:
            quarantine = pa.concat_tables([quarantine, pa.Table.from_pylist(
                _quarantine_rows(ident, dup_rows), schema=QUARANTINE_SCHEMA)])
        out.warnings += _unknown_references(ledger, contract, accepted, pid, pending)
        lake_file = lake_path(zones.root, contract.dataset, key.leveringsdato, key.reporter, pid)
        q_file = quarantine_path(zones.root, contract.dataset, key.leveringsdato, key.reporter, pid)
        with _stage("write"):
            write_parquet(accepted, lake_file, batch)
            if quarantine.num_rows:
                write_parquet(quarantine, q_file, batch)
            else:
                q_file.unlink(missing_ok=True)
        q_records = len({n for n in quarantine.column("record_no").to_pylist() if n is not None})
        out.accepted = accepted.num_rows
        out.quarantined = q_records
        out.error_kinds = Counter(quarantine.column("error_kind").to_pylist()) if quarantine.num_rows else Counter()
        if out.rows_read != out.accepted + out.quarantined:
            raise ReconciliationError(
                f"payload {pid} ({contract.dataset}, {key.reporter}, {key.leveringsdato}): received "
                f"{out.rows_read} != accepted {out.accepted} + quarantined {out.quarantined}")
        # the ids it brings, as Arrow arrays (the ledger sorts a whole batch of them at its commit)
        ds = contract.dataset
        bids = accepted.column("besked_id").combine_chunks()
        nos = accepted.column("_record_no").combine_chunks()
        if bids.null_count:
            valid = bids.is_valid()
            bids, nos = bids.filter(valid), nos.filter(valid)
            kept_ids = None
        msgs = [Ids(ds, bids, nos, py=kept_ids)]
        keys = []
        if contract.record_key:  # the keys it creates (aendringstype 1)
            kcol = accepted.column(contract.record_key[0]).cast(pa.string())
            made = pc.filter(kcol, pc.and_kleene(pc.equal(accepted.column("aendringstype"), "1"), kcol.is_valid()))
            keys = [Ids(ds, made.combine_chunks())]
        load = LoadCommit(reg.row, out.rows_read, out.accepted, out.quarantined, str(lake_file), msgs, keys,
                          cursor, last_cursor, total)
        # the superseded version's files move to the lake's archive after the commit (crash-safe: the sweep
        # archives what a crash left behind)
        pending.add(load, sha, batch, before, lambda old: archive_payload_files(zones.root, contract.dataset, old))
        if own:
            pending.settle()
    except Exception as exc:
        ledger.mark_failed(key, reg.row.version, f"{type(exc).__name__}: {exc}")
        raise
    return out


def rejected_tag(key: PayloadKey) -> str:
    """Names a rejected payload's quarantine file apart from a loaded payload with the same bytes."""
    return "rejected-" + hashlib.sha256(key.source_name.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def archive_payload_files(root: Path, dataset: str, row: LedgerRow) -> list[Path]:
    """Move a superseded payload's lake and quarantine files to the lake's archive (``lake/_archive``); returns
    the archived paths.

    Why not delete them: the warehouse keeps the versions a correction retracted (bitemporal facts), and a one-pass
    rebuild (``dsdw warehouse rebuild``) must read them to equal the nightly-built warehouse. A rename within one
    file system: atomic, and idempotent on a rerun (a file already moved is not there to move)."""
    from pipelines.lake.write import quarantine_path

    k = row.key
    moved = []
    for src in (row.lake_path, quarantine_path(root, dataset, k.leveringsdato, k.reporter, row.payload_id)):
        if src and Path(src).exists():
            moved.append(_archive(root, Path(src)))
    return moved


def _archive(root: Path, src: Path) -> Path:
    from pipelines.fsio import fsync_dir
    from pipelines.lake.write import archive_path

    dst = archive_path(root, src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    fsync_dir(dst.parent)
    fsync_dir(src.parent)
    return dst


def sweep_partition(zones: Zones, ledger: Ledger, dataset: str, day: dt.date) -> list[Path]:
    """Lake and quarantine files of this partition whose payload the ledger no longer has loaded: a superseded
    payload's are archived (:func:`archive_payload_files`), any other's removed; returns the paths moved or removed.

    A crash between a new version's commit and the archiving of the old version's file leaves one
    behind; so does nothing else. Only files named for a payload the ledger knows are touched.
    """
    from pipelines.lake.write import payload_of

    rows = ledger.rows(dataset, day)
    live = {r.payload_id for r in rows if r.status == "loaded"}
    live_q = live | {r.payload_id for r in rows if r.status == "rejected"}
    known = {r.payload_id for r in rows}
    superseded = {r.payload_id for r in rows if r.status == "superseded"}
    removed = []
    part = zones.lake / dataset / f"leveringsdato={day.isoformat()}"
    qpart = zones.lake / "_quarantine" / f"leveringsdato={day.isoformat()}"
    for base, pattern, keep in ((part, "*.parquet", live), (qpart, f"{dataset}__*.parquet", live_q)):
        if not base.is_dir():
            continue
        for f in base.glob(pattern):
            pid = payload_of(f)
            if pid in known and pid not in keep:
                if pid in superseded:
                    _archive(zones.root, f)
                else:
                    f.unlink(missing_ok=True)
                removed.append(f)
    return removed


def _split_duplicates(ledger: Ledger, contract: Contract, table: pa.Table, exclude: list[str],
                      pending: Pending) -> tuple[pa.Table, list[dict[str, Any]], list[str] | None]:
    """Records whose ``besked_id`` is loaded already (committed, or pending in ``pending``) or repeats one
    of this payload: quarantined ``duplicate_message``. Also returns the kept rows' ids as Python strings
    when every row is kept (None otherwise)."""
    if table.num_rows == 0:
        return table, [], None
    ids = table.column("besked_id").to_pylist()
    present = [i for i in ids if i]
    seen_before = ledger.seen_messages(contract.dataset, present, *exclude)
    held = pending.held(contract.dataset)
    if not seen_before and held.isdisjoint(present) and len(set(present)) == len(present):
        return table, [], ids  # the common case: every id new, none repeated
    rec_no = table.column("_record_no").to_pylist()
    first: dict[str, int] = {}
    keep, dups = [], []
    for k, (bid, n) in enumerate(zip(ids, rec_no, strict=True)):
        prior = seen_before.get(bid) or (pending.first_of(contract.dataset, bid) if bid in held else None)
        if prior is not None:
            p, m = prior
            dups.append((k, n, f"besked_id {bid} already loaded from payload {p}, record {m}"))
        elif bid in first:
            dups.append((k, n, f"besked_id {bid} repeats record {first[bid]} of this payload"))
        else:
            if bid:
                first[bid] = n
            keep.append(k)
    if not dups:
        return table, [], ids
    rows = []
    raw = table.to_pylist()
    for k, n, msg in dups:
        rec = {c: (str(v) if v is not None else None) for c, v in raw[k].items() if not c.startswith("_")}
        rows.append({"record_no": n, "field": "besked_id", "error_kind": "duplicate_message",
                     "message": f"{msg} ({contract.dataset}:duplicate:besked_id)",
                     "raw_record": json.dumps(rec, ensure_ascii=False)})
    return table.take(pa.array(keep, pa.int64())), rows, None


def _unknown_references(ledger: Ledger, contract: Contract, table: pa.Table, pid: str,
                        pending: Pending) -> list[str]:
    """Updates/deletes of records never created: kept (nothing is lost), reported with the rule."""
    if not contract.record_key or table.num_rows == 0:
        return []
    mask = pc.not_equal(table.column("aendringstype"), "1")
    changes = table.filter(mask)
    if changes.num_rows == 0:
        return []
    key = contract.record_key[0]
    created_here = set(table.filter(pc.equal(table.column("aendringstype"), "1")).column(key).to_pylist())
    wanted = [str(k) for k in changes.column(key).to_pylist() if k is not None and k not in created_here]
    known = ledger.known_keys(contract.dataset, wanted, *pending.released) | {
        k for k in wanted if k in pending.keys.get(contract.dataset, ())}
    rule = next((r for r in contract.rules if r.kind == "reference_exists" and r.params.get("field") == key), None)
    rid = f"{rule.id} ({rule.paragraph})" if rule else "reference_exists"
    out = []
    for k, n in zip(changes.column(key).to_pylist(), changes.column("_record_no").to_pylist(), strict=True):
        if k is not None and k not in created_here and str(k) not in known:
            out.append(f"payload {pid} record {n}: {key}={k} changes a record never created (rule {rid})")
    return out


# ---------------------------------------------------------------------------- channels

def reporters_for(contract: Contract, tokens: dict[str, str]) -> list[str]:
    allowed = _reporter_codes(contract)
    if allowed is None:
        allowed = {"JOBNET"} if contract.reporter == "jobnet" else {contract.reporter.upper()}
    return sorted(r for r in tokens if r in allowed)


# The webservice extract of day D may grow after D was loaded (records registered on D, sent
# late): the load of day D + 1 re-reads the last page of every complete extract of day D.
WEBSERVICE_SWEEP_DAYS = 1


def ingest_dataset_day(dataset: str, day: dt.date, zones: Zones, sources: SourcesConfig,
                       received_at: str | None = None, raise_on_failure: bool = True) -> UnitResult:
    """Ingest every reporter's payloads of ``dataset`` delivered on ``day``.

    One reporter's failure does not stop the others; failures are collected and,
    unless ``raise_on_failure`` is false, raised together at the end.  Rejected,
    duplicate and ignored files are not failures: the ledger accounts for them.
    """
    contract = get_contract(dataset)
    received_at = received_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result = UnitResult(contract.channel, dataset, day)
    STAGES.clear()
    t0 = time.perf_counter()
    if contract.channel == "webservice":
        for back in range(WEBSERVICE_SWEEP_DAYS, 0, -1):
            earlier = day - dt.timedelta(days=back)
            with partition_lock(zones, dataset, earlier):
                _webservice_sweep(contract, earlier, zones, sources, received_at, result)
    with partition_lock(zones, dataset, day):
        remove_stale_temp(zones, contract, day)
        _ingest_locked(contract, day, zones, sources, received_at, result)
    result.stage_seconds = {**{k: round(v, 3) for k, v in sorted(STAGES.items())},
                            "unit": round(time.perf_counter() - t0, 3)}
    if result.failures and raise_on_failure:
        raise IngestionFailed(result)
    return result


@contextmanager
def partition_lock(zones: Zones, dataset: str, day: dt.date) -> Iterator[None]:
    """One writer per (dataset, day): a sensor run and the nightly run of the same partition queue."""
    path = zones.root / "locks" / f"{dataset}__{day.isoformat()}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def remove_stale_temp(zones: Zones, contract: Contract, day: dt.date) -> list[Path]:
    """Temp files a killed run left in this partition (we hold its lock, so nobody writes them now)."""
    d = day.isoformat()
    places = [(zones.root / "landing" / contract.channel / contract.dataset / d, "**/.*.tmp"),
              (zones.lake / contract.dataset / f"leveringsdato={d}", ".*.tmp"),
              (zones.lake / "_quarantine" / f"leveringsdato={d}", f".{contract.dataset}__*.tmp")]
    removed = []
    for base, pattern in places:
        if base.exists():
            for p in base.glob(pattern):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def _ingest_locked(contract: Contract, day: dt.date, zones: Zones, sources: SourcesConfig, received_at: str,
                   result: UnitResult) -> None:
    ledger = Ledger(zones.ledger_path)
    try:
        sweep_partition(zones, ledger, contract.dataset, day)
        if contract.channel == "webservice":
            _webservice(contract, day, zones, ledger, sources, received_at, result)
        elif contract.channel == "ftp":
            _ftp(contract, day, zones, ledger, sources, received_at, result)
        else:
            _files(contract, day, zones, ledger, sources, received_at, result)
    finally:
        ledger.close()


def _extract(contract: Contract, day: dt.date, sources: SourcesConfig, reporter: str, cursor: str | None,
             land_client_errors: bool = True) -> Iterator[Any]:
    """One reporter's pages from ``cursor`` on (one connection pool for every reporter of the load)."""
    from pipelines.sources import SourceError, WebserviceClient
    from pipelines.sources.webservice import shared_http

    with WebserviceClient(sources.webservice_url, sources.tokens[reporter],
                          http=shared_http(sources.webservice_url)) as client:
        try:
            yield from client.iter_pages(contract.dataset, day, start_cursor=cursor, limit=WEBSERVICE_PAGE_LIMIT)
        except SourceError as exc:
            refused = client_error_page(exc, contract.dataset, day, reporter) if land_client_errors else None
            if refused is None:
                raise
            yield refused


def client_error_page(exc: Exception, dataset: str, day: dt.date, reporter: str) -> Any:
    """A client error answer (HTTP 4xx: an expired cursor, a refused token, a bad request) that the
    client gave up on, as a refused page: ingestion lands its bytes and rejects it with the status, the
    extract stops there (incomplete), so the answer is in the ledger, not only in the run's log.
    None for any other failure (5xx, transport: nothing to land; the extract's cursor row records it)."""
    from pipelines.sources import Page

    status = getattr(exc, "context", {}).get("status")
    if not isinstance(status, int) or not 400 <= status < 500:
        return None
    body = getattr(exc, "body", None) or b""
    detail = getattr(exc, "detail", None) or f"HTTP {status}"
    return Page(dataset=dataset, dato=day, reporter=reporter, cursor=exc.context.get("cursor"), next_cursor=None,
                body=body, records=[], page_no=int(exc.context.get("page_no") or 1),
                refused=f"the webservice answered a client error, {detail}")


# Records asked for per webservice page (the service's maximum). A page is a payload: each costs a
# request, a landing file, a ledger row, a Parquet file and a fixed share of Arrow calls, so few large
# pages load the initial extract (~4,500 records per kommune and dataset) ~2x faster than pages of 500.
WEBSERVICE_PAGE_LIMIT = 5000

_END = object()
PREFETCH_REQUESTS = 8  # webservice requests in flight while pages are parsed and written
EXTRACTS_AHEAD = 4  # reporters' extracts being fetched beyond the one being loaded


class _Ahead:
    """An extract's pages fetched one ahead on a thread pool: the webservice answers the next
    request (and the other reporters' first ones) while this page is parsed and written. Only
    fetching runs ahead: pages are still landed, registered and committed one by one, in order,
    so a crash resumes from the last committed cursor as before."""

    def __init__(self, pool: Any, pages: Iterator[Any]) -> None:
        self.pool, self.pages = pool, pages
        self.next = pool.submit(next, pages, _END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            with _stage("fetch_wait"):
                page = self.next.result()
            if page is _END:
                return
            self.next = self.pool.submit(next, self.pages, _END)
            yield page

    def close(self) -> Any:
        """Stop fetching ahead (the extract stopped early); returns the page already fetched and now
        not landed, or None, so the caller can name it instead of dropping it silently."""
        if self.next.cancel():
            return None
        try:
            page = self.next.result()
        except Exception:  # noqa: BLE001 - a fetch that failed fetched no page
            return None
        return None if page is _END else page


def _dropped_note(page: Any) -> str:
    """What a failed extract's page fetched ahead, and not landed, was (the next run asks again)."""
    if page is None:
        return ""
    ident = "" if page.identifikation is not None else "; that call carried no identifikation (§ 6, stk. 2)"
    return (f" [page fetched ahead with cursor {page.cursor!r} ({len(page.records)} records) not landed: "
            f"the next run requests it again{ident}]")


def _pages(contract: Contract, day: dt.date, zones: Zones, ledger: Ledger, sources: SourcesConfig,
           received_at: str, result: UnitResult, reporter: str, cursor: str | None, pages: int,
           sweep: bool = False, fetched: Any = None, pending: Pending | None = None) -> None:
    """Land the pages of one reporter's extract from ``cursor`` on, numbering them after ``pages``
    (``fetched``: those pages, already being fetched; ``pending``: commits kept back across reporters,
    settled by the caller)."""
    last = None
    empty_total: int | None = None
    own = pending is None
    pending = Pending(ledger, lake_ids(contract)) if pending is None else pending
    try:
        # (the late-record sweep of a complete extract does not land a client error: an expired cursor of
        # yesterday's last page is the sweep's failure, not a reason to reopen an extract read to its end)
        for page in (fetched if fetched is not None else
                     _extract(contract, day, sources, reporter, cursor, land_client_errors=not sweep)):
            if page.refused is not None:
                # an answer that is no page of this extract (unreadable, another dataset or day, a cursor
                # loop): landed and rejected with the reason; the extract stays incomplete at this page's
                # cursor, so the day's reconciliation shows it and the next run asks for this page again
                from pipelines.lake.parse import binary_problem

                what = binary_problem(page.body) or (f"an empty answer ({len(page.body)} bytes)"
                                                     if not page.body.strip() else None)
                why = f"{EXTRACT_STOP}{page.refused}" + (f" ({what})" if what else "")
                key = PayloadKey("webservice", reporter, contract.dataset, day, f"page-{pages + 1:05d}")
                out = load_payload(zones, ledger, contract, key, page.body, ".json", received_at, reject=why,
                                   pending=pending)
                _stop_extract(contract, day, ledger, result, reporter, out, page.cursor, pages, pending)
            if not page.records and pages == 0 and page.next_cursor is None and payload_refusal(
                    zones.root, PayloadKey("webservice", reporter, contract.dataset, day, "page-00001"),
                    page.body) is None:
                # nothing delivered that day: no payload to land; the extract's cursor row (complete,
                # total 0) records the call. A refused call (no identification, § 6, stk. 2; no agreement)
                # is landed and rejected like any page: a page is never fetched and dropped unrecorded.
                empty_total = page.total
                break
            pages += 1
            key = PayloadKey("webservice", reporter, contract.dataset, day, f"page-{pages:05d}")
            cur = (page.next_cursor, pages, page.next_cursor is None)
            out = load_payload(zones, ledger, contract, key, page.body, ".json", received_at, cur,
                               envelope_reporter=page.reporter, last_cursor=page.cursor, total=page.total,
                               pending=pending, decoded=page.decoded, sha256=page.sha256)
            if out.action == "unchanged" and (out.reason or "").startswith(EXTRACT_STOP):
                # the page the extract stopped at last time, the same bytes again (a rerun): it stops again
                _stop_extract(contract, day, ledger, result, reporter, out, page.cursor, pages - 1, pending)
            if day != result.day:
                out.day = day
            result.payloads.append(out)
            if out.action not in LOADED_NOW:  # no load transaction carried it (idempotent if one did)
                pending.cursor(CursorCommit("webservice", reporter, contract.dataset, day, *cur, page.cursor,
                                            page.total))
            last = page
    finally:
        if own:
            pending.settle()
    if (last is None and not sweep) or (last is not None and last.next_cursor is not None):
        pending.cursor(CursorCommit("webservice", reporter, contract.dataset, day, None, pages, True,
                                    None if last is None else last.cursor, empty_total if last is None else last.total))
        if own:
            pending.settle()


EXTRACT_STOP = "the extract cannot go on from this answer: "  # the reason of a page the extract stopped at


def _stop_extract(contract: Contract, day: dt.date, ledger: Ledger, result: UnitResult, reporter: str,
                  out: PayloadOutcome, cursor: str | None, pages: int, pending: Pending) -> None:
    """Record the page an extract stopped at (already landed and rejected) and stop the extract: the
    cursor stays at that page, incomplete (the next run asks again), and the run reports it."""
    from pipelines.sources import SourceError

    if day != result.day:
        out.day = day
    result.payloads.append(out)
    pending.settle()
    ledger.commit_cursor("webservice", reporter, contract.dataset, day, cursor, pages, False)
    raise SourceError(f"extract stopped at page {pages + 1} ({out.action}, landed and rejected): "
                      f"{(out.reason or '').removeprefix(EXTRACT_STOP)}", channel="webservice", reporter=reporter,
                      dataset=contract.dataset, dato=day, cursor=cursor)


def _webservice(contract: Contract, day: dt.date, zones: Zones, ledger: Ledger, sources: SourcesConfig,
                received_at: str, result: UnitResult) -> None:
    import concurrent.futures as cf

    todo = []
    for reporter in reporters_for(contract, sources.tokens):
        cursor, pages, complete = ledger.cursor("webservice", reporter, contract.dataset, day)
        if not complete:
            todo.append((reporter, cursor, pages))
    if not todo:
        return
    pending = Pending(ledger, lake_ids(contract))  # the unit's load commits, made together (any reporter)
    failed: list[tuple[str, str | None, int]] = []
    with cf.ThreadPoolExecutor(max_workers=PREFETCH_REQUESTS, thread_name_prefix="ws-fetch") as pool:
        # extracts started ahead: a window, not all at once (a fetched page of 5,000 records holds ~50 MB
        # once read, so starting every reporter's first page together held gigabytes)
        ahead: list[_Ahead | None] = [_Ahead(pool, _extract(contract, day, sources, r, c))
                                      for r, c, _ in todo[:EXTRACTS_AHEAD]]
        for k, (reporter, cursor, pages) in enumerate(todo):
            fetched = ahead[k]
            if k + EXTRACTS_AHEAD < len(todo):
                r, c, _ = todo[k + EXTRACTS_AHEAD]
                ahead.append(_Ahead(pool, _extract(contract, day, sources, r, c)))
            ahead[k] = None  # its pages are released as they are loaded
            try:
                _pages(contract, day, zones, ledger, sources, received_at, result, reporter, cursor, pages,
                       fetched=fetched, pending=pending)
            except Exception as exc:  # noqa: BLE001 - isolate the reporter, report it below
                note = _dropped_note(fetched.close()) if fetched is not None else ""
                result.failures.append((reporter, f"{type(exc).__name__}: {exc}{note}"))
                failed.append((reporter, cursor, pages))
        try:
            pending.settle()
        except Exception as exc:  # noqa: BLE001
            result.failures.append(("webservice", f"{type(exc).__name__}: {exc}"))
    for reporter, cursor, pages in failed:
        # an extract that failed before any page was committed (5xx, a cut connection, every retry spent)
        # still gets its cursor row, incomplete: the day's reconciliation counts it as not read to its end
        with suppress(Exception):
            ledger.open_extract("webservice", reporter, contract.dataset, day, cursor, pages)


def _webservice_sweep(contract: Contract, day: dt.date, zones: Zones, sources: SourcesConfig, received_at: str,
                      result: UnitResult) -> None:
    """Re-read the last page of every complete extract of ``day``: records the reporter added after
    the extract was loaded arrive as a new version of that page (and further pages)."""
    ledger = Ledger(zones.ledger_path)
    try:
        for reporter in ledger.complete_extracts("webservice", contract.dataset, day):
            if reporter not in sources.tokens:
                continue
            tail = ledger.cursor_tail("webservice", reporter, contract.dataset, day)
            if tail is None:
                continue
            last_cursor, pages, _total = tail
            try:
                _pages(contract, day, zones, ledger, sources, received_at, result, reporter, last_cursor,
                       max(0, pages - 1), sweep=True)
            except Exception as exc:  # noqa: BLE001
                result.failures.append((reporter, f"late-record sweep of {day}: {type(exc).__name__}: {exc}"))
    finally:
        ledger.close()

# ---------------------------------------------------------------------------- file channels
#
# Every entry a file channel offers for a day is accounted for in the ledger: a file whose name
# fits the channel's naming rule goes to its dataset's unit; a name that does not fit, an unknown
# dataset, a file for another day, a file in a subfolder, a link, FIFO or device is rejected with
# the reason (its bytes landed when it is a regular file, links and devices are never opened).

# folder kind -> naming rule (docs/sources.md); names are matched whole (\Z: a trailing newline fails)
# (re.ASCII: \d is 0-9 only, so a code or date in other digits (Arabic-Indic, full-width) does not fit)
NAME_RULES: dict[str, re.Pattern[str]] = {
    "ftp": re.compile(r"(?P<ds>[a-z][a-z0-9_]*)_(?P<rep>\d{3})_(?P<day>\d{8})\.csv\Z", re.ASCII),
    "portal": re.compile(r"(?P<ds>[a-z][a-z0-9_]*)_(?P<rep>\d{3})_(?P<day>\d{8})\.csv\Z", re.ASCII),
    "uvm": re.compile(r"(?P<ds>[a-z][a-z0-9_]*)_(?P<day>\d{8})\.csv\Z", re.ASCII),
    "ssi": re.compile(r"(?P<ds>[a-z][a-z0-9_]*)_(?P<day>\d{8})\.txt\Z", re.ASCII),
}
RULE_TEXT = {"ftp": "<dataset>_<kommunekode>_<YYYYMMDD>.csv", "portal": "<dataset>_<akassekode>_<YYYYMMDD>.csv",
             "uvm": "<dataset>_<YYYYMMDD>.csv", "ssi": "<dataset>_<YYYYMMDD>.txt"}
FOLDER_CHANNEL = {"ftp": "ftp", "portal": "portal", "uvm": "filedrop", "ssi": "filedrop"}
UNMATCHED = "_unmatched"  # ledger dataset of entries that belong to no dataset
NO_REPORTER = "-"
EXT = {"ftp": ".csv", "portal": ".csv", "uvm": ".csv", "ssi": ".txt"}


def folder_of(contract: Contract) -> str:
    """Which drop folder (naming rule) a file-channel contract is delivered through."""
    if contract.channel in ("ftp", "portal"):
        return contract.channel
    return contract.reporter  # uvm | ssi


def folder_datasets(folder: str) -> list[str]:
    return sorted(n for n, c in load_contracts().items() if c.channel != "webservice" and folder_of(c) == folder)


@dataclass(frozen=True)
class Classified:
    """What a file name says: its dataset (None: no dataset's), reporter, day, and why it is refused."""

    dataset: str | None
    reporter: str
    day: dt.date | None
    reason: str | None


def classify_name(folder: str, name: str, folder_day: dt.date) -> Classified:
    """Check ``name`` against the folder's naming rule, the contracts, the code lists and the folder's day."""
    datasets = folder_datasets(folder)
    fixed = NO_REPORTER if folder in ("ftp", "portal") else folder.upper()
    rule = NAME_RULES[folder]
    m = rule.match(name)
    if m is None:
        # a name that does not fit is still filed under the dataset it starts with, if any
        ds = next((d for d in sorted(datasets, key=len, reverse=True) if name.startswith(d + "_")), None)
        shown = name.encode("unicode_escape").decode("ascii")
        return Classified(ds, fixed, None, f"file name {shown!r} does not follow the channel's naming rule "
                                           f"{RULE_TEXT[folder]} (lower case, no spaces or other characters)")
    ds, rep = m["ds"], (m.groupdict().get("rep") or fixed)
    contracts = load_contracts()
    if ds not in datasets:
        where = (f"; {ds} is delivered via {contracts[ds].channel} ({folder_of(contracts[ds])})"
                 if ds in contracts and contracts[ds].channel != "webservice" else
                 f"; {ds} is delivered via the webservice" if ds in contracts else "")
        return Classified(None, rep, None, f"no dataset {ds!r} is delivered in this folder{where}")
    try:
        named_day = dt.datetime.strptime(m["day"], "%Y%m%d").date()
    except ValueError:
        return Classified(ds, rep, None, f"file name date {m['day']} is not a date")
    if named_day > folder_day:
        return Classified(ds, rep, named_day, f"file name says {named_day.isoformat()}, a day after the folder of "
                                              f"{folder_day.isoformat()} it was delivered in: a file cannot be "
                                              "delivered before its day; not loaded under either day")
    # named for an earlier day: a late delivery or a corrected re-upload under its original name,
    # filed under the day its name says (never under the folder's day); the ledger keeps both days
    return Classified(ds, rep, named_day, None)


@dataclass(frozen=True)
class Offered:
    """One entry a file channel offers for a day, as the unit sees it."""

    name: str
    kind: str  # file | dir | symlink | fifo | device | socket | other
    size: int
    refused: str | None  # set by the channel scan (not a regular top-level file)
    fetch: Any  # () -> bytes, None when the entry may not be read


# the portal writes no markers: a file is complete when its size and mtime hold this long
PORTAL_STABLE_SECONDS = 0.2


def _scan_folder(folder: str, day: dt.date, sources: SourcesConfig,
                 in_progress: list[str] | None = None) -> list[Offered]:
    from pipelines.sources import read_regular, scan_day

    base = {"portal": sources.portal_dir, "uvm": sources.uvm_dir, "ssi": sources.ssi_dir}[folder]
    out = []
    waiting: list[str] = []
    for o in scan_day(base / day.isoformat(), markers=folder != "portal", interval=PORTAL_STABLE_SECONDS,
                      in_progress=waiting):
        readable = o.kind == "file"
        out.append(Offered(text_name(o.name), o.kind, o.size, o.refused,
                           (lambda p=o.path: read_regular(p)) if readable else None))
    if in_progress is not None:
        in_progress += waiting
    out += [Offered(text_name(n), IN_PROGRESS, 0, in_progress_reason(folder, n), None) for n in waiting]
    return out


def _still_written() -> tuple[type[BaseException], ...]:
    from pipelines.sources import FileChanged, StillWrittenError

    return (FileChanged, StillWrittenError)


IN_PROGRESS = "in_progress"  # Offered.kind of an upload not complete yet (recorded ``ignored``, not read)
_TEMP_DECOR = (".part", ".tmp", ".temp", ".partial", ".filepart", ".crdownload", "~")


def completed_name(name: str) -> str:
    """The name an upload in progress will have once complete (``.x.csv.part`` -> ``x.csv``)."""
    base = name.rsplit("/", 1)[-1]
    changed = True
    while changed:
        changed = False
        for suffix in _TEMP_DECOR:
            if base.endswith(suffix) and len(base) > len(suffix):
                base, changed = base[: -len(suffix)], True
    return base.lstrip(".") or base


def in_progress_reason(folder: str, name: str) -> str:
    """Why an entry is taken for an upload in progress (stable across runs: the ledger row's identity)."""
    base = name.rsplit("/", 1)[-1]
    if base.startswith(".") or completed_name(base) != base:
        why = "a hidden or temporary name (the upload protocol's: .x, x.part, x.tmp, x~)"
    elif folder in ("uvm", "ssi"):
        why = "no .done marker beside it yet"
    else:
        why = "its size or mtime still changing" if folder == "portal" else "still being written"
    return (f"upload in progress ({why}): not read until it completes; the first run after it completes "
            "loads it (a new version of this row)")


def text_name(name: str) -> str:
    """A file name as the ledger keeps it: bytes that are not UTF-8 (surrogate escapes) as ``\\xNN``."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _account_entry(zones: Zones, ledger: Ledger, channel: str, folder: str, day: dt.date, o: Offered,
                   dataset: str, reporter: str, reason: str, received_at: str,
                   data: bytes | None = None, status: str = "rejected") -> PayloadOutcome:
    """Ledger row for an entry not handed to a parser: landed raw when it is a regular file
    (``data``: its bytes, already read). ``status`` ``ignored``: an upload in progress, or a file gone
    when read (nothing wrong with it; the run after it completes or comes back loads it)."""
    key = PayloadKey(channel, reporter, dataset, day, o.name)
    if data is None and o.fetch is not None:
        data = _fetch_refused(o)
        if data is None:
            reason += "; its bytes could not be read from the channel (not landed)"
    if data is not None:
        pid, path = zones.landing.put(data, channel, dataset, day, reporter, EXT[folder])
        sha, nbytes, landed = hashlib.sha256(data).hexdigest(), len(data), str(path)
    else:  # never opened (or unreadable): the row is keyed by what the entry is
        # (an entry not read yet by its kind and name alone: the same upload still in progress on a
        # rerun is the same row, whatever the wording of why)
        what = f"{o.kind}:{o.name}" if status == "ignored" else f"{o.kind}:{o.name}:{reason}"
        sha = hashlib.sha256(what.encode("utf-8", "surrogateescape")).hexdigest()
        pid, nbytes, landed = sha[:32], 0, ""
    reg = ledger.record_final(key, pid, sha, nbytes, landed, received_at, status, reason)
    return PayloadOutcome(reporter, o.name, pid, "unchanged" if reg.action == "unchanged" else status,
                          reason=reg.row.error)


def _fetch_refused(o: Offered) -> bytes | None:
    """The bytes of an entry refused by its name, or None when the channel will not hand them over
    (an FTP name with a line break cannot be asked for): the refusal is recorded either way."""
    try:
        return o.fetch()
    except Exception:  # noqa: BLE001 - the verdict does not depend on the bytes
        return None


def _fetch_listed(o: Offered) -> bytes | None:
    """The bytes of a file whose name fits; None when the channel refuses a file it listed (a
    permanent refusal: retrying cannot help), any other error is raised (the rerun retries)."""
    from pipelines.sources import RefusedError

    try:
        return o.fetch()
    except RefusedError:
        return None


def _handle_files(contract: Contract, day: dt.date, zones: Zones, ledger: Ledger, offered: list[Offered],
                  received_at: str, result: UnitResult) -> None:
    """This dataset's files of the day, and the folder's entries that belong to no dataset."""
    folder = folder_of(contract)
    channel = contract.channel
    first_of_folder = folder_datasets(folder)[0] == contract.dataset
    pending = Pending(ledger, lake_ids(contract))  # the unit's load commits: one fsync pass, one transaction
    for o in offered:
        try:
            if o.kind == IN_PROGRESS:  # an upload not complete yet: ``ignored`` (with why) until it is
                c = classify_name(folder, completed_name(o.name), day)
                ds = c.dataset if c.dataset is not None else UNMATCHED
                if ds == contract.dataset or (ds == UNMATCHED and first_of_folder):
                    result.payloads.append(_account_entry(zones, ledger, channel, folder, day, o, ds, c.reporter,
                                                          o.refused or "", received_at, status="ignored"))
                continue
            if o.refused is not None:
                c = classify_name(folder, o.name.rsplit("/", 1)[-1], day)
                ds = c.dataset if c.dataset is not None else UNMATCHED
                if ds == contract.dataset and o.fetch is not None:
                    result.payloads.append(load_payload(zones, ledger, contract,
                                                        PayloadKey(channel, c.reporter, ds, day, o.name),
                                                        o.fetch(), EXT[folder], received_at, reject=o.refused))
                elif ds == contract.dataset or (ds == UNMATCHED and first_of_folder):
                    result.payloads.append(_account_entry(zones, ledger, channel, folder, day, o, ds, c.reporter,
                                                          o.refused, received_at))
                continue
            c = classify_name(folder, o.name, day)
            if c.dataset is None:
                if first_of_folder:  # one unit of the folder accounts for it (idempotent in any case)
                    result.payloads.append(_account_entry(zones, ledger, channel, folder, day, o, UNMATCHED,
                                                          c.reporter, c.reason or "", received_at))
                continue
            if c.dataset != contract.dataset:
                continue
            named = c.day if c.day is not None and c.reason is None else day
            key = PayloadKey(channel, c.reporter, contract.dataset, named, o.name)
            if named == day:
                why = c.reason
                try:
                    data = _fetch_listed(o) if why is None else _fetch_refused(o)
                except (FileNotFoundError, *_still_written()) as exc:
                    # listed, then gone or still being written when read: ``ignored`` with why (the run after
                    # it holds still, or comes back, loads it); a file still changing is also a run failure
                    gone = isinstance(exc, FileNotFoundError)
                    reason = ("listed by the channel, gone when read (withdrawn or renamed by the reporter "
                              "meanwhile): not loaded; loaded if it is offered again" if gone else
                              in_progress_reason(folder, o.name))
                    result.payloads.append(_account_entry(zones, ledger, channel, folder, day,
                                                          Offered(o.name, IN_PROGRESS if not gone else "gone",
                                                                  o.size, reason, None),
                                                          contract.dataset, c.reporter, reason, received_at,
                                                          status="ignored"))
                    if not gone:
                        result.failures.append((o.name, f"{type(exc).__name__}: {exc}"))
                    continue
                if data is None and why is None:
                    why = ("listed by the channel but refused when asked for (FTP 550): its name may hold a "
                           "character the protocol cannot carry (a line break), or it was removed after listing")
                if data is None:  # refused, and its bytes cannot be had: recorded without them
                    result.payloads.append(_account_entry(zones, ledger, channel, folder, day,
                                                          Offered(o.name, o.kind, o.size, o.refused, None),
                                                          contract.dataset, c.reporter, why or "", received_at))
                    continue
                result.payloads.append(load_payload(zones, ledger, contract, key, data, EXT[folder],
                                                    received_at, reject=c.reason, pending=pending))
                continue
            # an earlier day's partition: its lock too (locks are taken later day first, never the reverse);
            # its commit is made before that lock is released
            with partition_lock(zones, contract.dataset, named):
                result.payloads.append(load_payload(zones, ledger, contract, key, o.fetch(), EXT[folder],
                                                    received_at, arrived=day, pending=pending))
                pending.settle()
        except Exception as exc:  # noqa: BLE001 - one file's failure does not stop the others
            result.failures.append((o.name, f"{type(exc).__name__}: {exc}"))
    try:
        pending.settle()
    except Exception as exc:  # noqa: BLE001 - the payloads held back are marked failed (the rerun redoes them)
        result.failures.append(("ledger commit", f"{type(exc).__name__}: {exc}"))


def _ftp_name(name: str) -> str:
    """An FTP name as the ledger keeps it: the client reads names as ISO-8859-1 (every byte
    round-trips for RETR), the servers send UTF-8 (RFC 2640): 'æ' is kept as 'æ', not 'Ã¦'."""
    return text_name(name.encode("latin-1", "replace").decode("utf-8", "surrogateescape"))


def _ftp_offered(client: Any, day: dt.date, tmp: Path) -> list[Offered]:
    out = []
    waiting: list[str] = []
    for f in client.list_entries(day, waiting):
        if f.kind != "file":
            what = "subfolder" if f.kind == "dir" else f"entry of type {f.kind}"
            out.append(Offered(_ftp_name(f.name), f.kind, f.size, f"{what} in the FTP day directory: the channel's "
                               "files lie directly in /<YYYY-MM-DD>/; not read", None))
            continue
        out.append(Offered(_ftp_name(f.name), "file", f.size, None,
                           lambda f=f: client.fetch(f, tmp, trailer=False, durable=False).read_bytes()))
    out += [Offered(_ftp_name(n), IN_PROGRESS, 0, in_progress_reason("ftp", n), None) for n in waiting]
    return out


def _ftp(contract: Contract, day: dt.date, zones: Zones, ledger: Ledger, sources: SourcesConfig,
         received_at: str, result: UnitResult) -> None:
    from pipelines.sources import FtpClient

    with FtpClient(sources.ftp_host, sources.ftp_port, sources.ftp_user, sources.ftp_password) as client, \
            tempfile.TemporaryDirectory(prefix="dsdw-ftp-") as tmp:
        try:
            offered = _ftp_offered(client, day, Path(tmp))
        except Exception as exc:  # noqa: BLE001
            result.failures.append(("ftp", f"{type(exc).__name__}: {exc}"))
            return
        _handle_files(contract, day, zones, ledger, offered, received_at, result)


def _files(contract: Contract, day: dt.date, zones: Zones, ledger: Ledger, sources: SourcesConfig,
           received_at: str, result: UnitResult) -> None:
    try:
        offered = _scan_folder(folder_of(contract), day, sources)
    except Exception as exc:  # noqa: BLE001
        result.failures.append((folder_of(contract), f"{type(exc).__name__}: {exc}"))
        return
    _handle_files(contract, day, zones, ledger, offered, received_at, result)


# ---------------------------------------------------------------------------- accounting

@dataclass
class ChannelAccount:
    """Per channel and day: entries offered against ledger rows (``unaccounted`` must be empty)."""

    channel: str
    day: dt.date
    offered: int
    by_status: Counter = field(default_factory=Counter)
    unaccounted: list[str] = field(default_factory=list)
    note: str = ""
    # uploads in progress (hidden or temporary names, no .done marker, still changing): counted in
    # ``offered``, each with its ``ignored`` row until it completes, and listed so that one that never
    # completes is seen
    in_progress: list[str] = field(default_factory=list)


def account_day(day: dt.date, zones: Zones, sources: SourcesConfig, folders: list[str] | None = None
                ) -> list[ChannelAccount]:
    """Files offered by each file channel for ``day`` against the ledger's rows; webservice extracts
    against the totals their reporters announced (the per-day reconciliation of ``dsdw load``)."""
    from pipelines.sources import FtpClient

    ledger = Ledger(zones.ledger_path)
    try:
        rows = ledger.rows(day=day)
        by_day: dict[dt.date, dict[tuple[str, str], LedgerRow]] = {}

        def latest_of(d: dt.date) -> dict[tuple[str, str], LedgerRow]:
            """The newest row of each name offered for ``d`` (a corrected file has several)."""
            if d not in by_day:
                by_day[d] = {}
                for r in (rows if d == day else ledger.rows(day=d)):
                    k = (r.key.channel, r.key.source_name)
                    if k not in by_day[d] or r.version >= by_day[d][k].version:
                        by_day[d][k] = r
            return by_day[d]
        out = []
        wanted = folders if folders is not None else ["ftp", "portal", "uvm", "ssi", "webservice"]
        for folder in wanted:
            if folder == "webservice":
                continue
            channel = FOLDER_CHANNEL[folder]
            waiting: list[str] = []
            if folder == "ftp":
                with FtpClient(sources.ftp_host, sources.ftp_port, sources.ftp_user, sources.ftp_password) as c:
                    names = [_ftp_name(f.name) for f in c.list_entries(day, waiting)]
                waiting = [_ftp_name(n) for n in waiting]
            else:
                names = [o.name for o in _scan_folder(folder, day, sources, waiting) if o.kind != IN_PROGRESS]
                waiting = [text_name(n) for n in waiting]
            # uploads in progress are offered entries too: each has its ``ignored`` row until it completes
            names += waiting
            acc = ChannelAccount(folder, day, len(names), in_progress=waiting)
            for n in names:
                r = latest_of(day).get((channel, n))
                if r is None:  # a file named for an earlier day is filed under that day
                    c = classify_name(folder, n, day)
                    if c.reason is None and c.day is not None and c.day < day:
                        r = latest_of(c.day).get((channel, n))
                if r is None:
                    acc.unaccounted.append(n)
                else:
                    acc.by_status[r.status] += 1
            out.append(acc)
        if "webservice" not in wanted:
            return out
        ws = ChannelAccount("webservice", day, 0)
        got: Counter = Counter()  # records read from the pages in the lake or rejected (quarantined)
        for r in rows:
            if r.key.channel == "webservice" and r.status in ("loaded", "rejected"):
                got[(r.key.reporter, r.key.dataset)] += r.rows_read or 0
        for reporter, dataset, complete, total in ledger.con.execute(
                "SELECT reporter, dataset, complete, total FROM cursors WHERE channel='webservice' "
                "AND leveringsdato=?", (day.isoformat(),)):
            ws.offered += 1
            ws.by_status["complete" if complete else "incomplete"] += 1
            if not complete:
                ws.unaccounted.append(f"{dataset}/{reporter}: extract not read to its end")
            elif total is not None and total != got[(reporter, dataset)]:
                ws.unaccounted.append(f"{dataset}/{reporter}: reporter's total {total}, "
                                      f"{got[(reporter, dataset)]} record(s) in loaded pages")
        ws.note = "extracts (reporter x dataset): the reporter's announced total against records in loaded pages"
        out.append(ws)
        return out
    finally:
        ledger.close()


def ingest_day(day: dt.date, zones: Zones, sources: SourcesConfig, received_at: str | None = None,
               datasets: list[str] | None = None, workers: int = 1) -> list[UnitResult]:
    """Every dataset for one delivery day (the CLI's and the benchmark's entry point).

    ``workers`` > 1 runs datasets in that many processes (units are independent; the
    ledger serialises their short transactions).  Results come back in dataset order.
    """
    names = list(datasets or sorted(load_contracts()))
    received_at = received_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if workers <= 1 or len(names) <= 1:
        return [ingest_dataset_day(ds, day, zones, sources, received_at, raise_on_failure=False) for ds in names]
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futs = {ds: pool.submit(ingest_dataset_day, ds, day, zones, sources, received_at, False)
                for ds in longest_first(names, day, zones)}
        return [futs[ds].result() for ds in names]


def longest_first(names: list[str], day: dt.date, zones: Zones) -> list[str]:
    """``names`` in the order the pool should start them: the longest units first, so no worker is left
    alone with a large dataset at the end (longest-processing-time-first; with 2 workers and the national
    day's sizes, alphabetical order ends ~10 % later than this). A unit's length is taken from the records
    its dataset brought on the latest earlier day in the ledger; without history, webservice datasets
    (the reporters' extracts: the large units) before the file channels' daily files."""
    contracts = load_contracts()
    size: dict[str, int] = {}
    if zones.ledger_path.exists():
        from pipelines.landing.ledger import read_only

        with suppress(Exception), read_only(zones.ledger_path) as con:
            last = con.execute("SELECT dataset, max(leveringsdato) FROM payloads WHERE leveringsdato < ? "
                               "GROUP BY dataset", (day.isoformat(),)).fetchall()  # (index only)
            for ds, d in last:
                n = con.execute("SELECT sum(rows_read) FROM payloads WHERE dataset=? AND leveringsdato=?",
                                (ds, d)).fetchone()[0]
                size[ds] = int(n or 0)
    return sorted(names, key=lambda ds: (-size.get(ds, -1), contracts[ds].channel != "webservice", ds))
