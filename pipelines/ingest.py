"""One ingestion unit: (dataset, delivery day) from its channel into landing and lake.

The Dagster assets, the ``dsdw load`` command, the tests and the benchmarks all
call :func:`ingest_dataset_day`; none of them re-implements a step.  Order per
payload: fetch -> land raw (atomic) -> register in the ledger -> parse and type by
contract -> reconcile counts -> write lake + quarantine (atomic, deterministic)
-> mark loaded (one transaction with the message ids it brought).  Every step is
idempotent, so a rerun after a crash (even SIGKILL) converges on the same lake
and ledger.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import Contract, codelist_codes, get_contract, load_contracts
from pipelines.governance.hooks import payload_refusal  # issue 17
from pipelines.landing import LandingStore, Ledger, PayloadKey

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
    action: str  # new | new_version | retry | duplicate
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    error_kinds: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)


@dataclass
class UnitResult:
    channel: str
    dataset: str
    day: dt.date
    payloads: list[PayloadOutcome] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (reporter or file, error)

    @property
    def rows_accepted(self) -> int:
        return sum(p.accepted for p in self.payloads if p.action != "duplicate")

    @property
    def rows_quarantined(self) -> int:
        return sum(p.quarantined for p in self.payloads if p.action != "duplicate")

    def summary(self) -> str:
        kinds = Counter()
        for p in self.payloads:
            kinds.update(p.error_kinds)
        s = (f"{self.dataset} {self.day} via {self.channel}: {len(self.payloads)} payloads, "
             f"{self.rows_accepted} accepted, {self.rows_quarantined} quarantined")
        if kinds:
            s += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) + ")"
        if self.failures:
            s += f"; FAILED: {len(self.failures)} (" + "; ".join(f"{r}: {e}" for r, e in self.failures[:5]) + ")"
        return s


# Payload-level problems that make the count of received records untrustworthy: the
# payload fails loudly (ledger 'failed', the run reports it) and waits for a new delivery.
PAYLOAD_FATAL = {"trailer", "truncated", "json"}


class PayloadRejected(RuntimeError):
    """A payload whose record count cannot be trusted (cut file, wrong trailer, unreadable page)."""


class IngestionFailed(RuntimeError):
    """Some reporters failed; the others were loaded. Names each failure."""

    def __init__(self, result: UnitResult) -> None:
        super().__init__(result.summary())
        self.result = result


def _quarantine_rows(base: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**base, **r} for r in rows]


def load_payload(zones: Zones, ledger: Ledger, contract: Contract, key: PayloadKey, data: bytes, ext: str,
                 received_at: str, cursor: tuple[str | None, int, bool] | None = None) -> PayloadOutcome:
    """Land, register, parse, reconcile and write one payload (idempotent)."""
    from pipelines.lake.parse import QUARANTINE_SCHEMA, parse_payload, reconcile
    from pipelines.lake.write import lake_path, quarantine_path, write_parquet

    pid, path = zones.landing.put(data, key.channel, key.dataset, key.leveringsdato, key.reporter, ext)
    sha = hashlib.sha256(data).hexdigest()
    reg = ledger.register(key, pid, sha, len(data), path, received_at)
    out = PayloadOutcome(key.reporter, key.source_name, pid, reg.action)
    if reg.action == "duplicate":
        return out
    # issue 17 (§§ 6, 8; § 6, stk. 2): refused by the governance register (only where one exists): the
    # reason in the ledger, nothing in the lake; not a failure of the run (the verdict is per delivery day)
    if refusal := payload_refusal(zones.root, key, data):
        ledger.mark_failed(key, reg.row.version, refusal)
        out.action, out.warnings = "refused", [refusal]
        return out
    try:
        res = parse_payload(data, contract, channel=key.channel, reporter=key.reporter,
                            leveringsdato=key.leveringsdato, payload_id=pid)
        reconcile(res)
        accepted, quarantine = res.accepted, res.quarantine
        # duplicate messages: within this payload, or already loaded from another payload
        accepted, dup_rows = _split_duplicates(ledger, contract, accepted, pid)
        if dup_rows:
            quarantine = pa.concat_tables([quarantine, pa.Table.from_pylist(
                _quarantine_rows({"payload_id": pid, "dataset": contract.dataset, "channel": key.channel,
                                  "reporter": key.reporter, "leveringsdato": key.leveringsdato}, dup_rows),
                schema=QUARANTINE_SCHEMA)])
        out.warnings = _unknown_references(ledger, contract, accepted, pid)
        lake_file = lake_path(zones.root, contract.dataset, key.leveringsdato, key.reporter, key.source_name)
        q_file = quarantine_path(zones.root, contract.dataset, key.leveringsdato, key.reporter, key.source_name)
        write_parquet(accepted, lake_file)
        if quarantine.num_rows:
            write_parquet(quarantine, q_file)
        elif q_file.exists():
            q_file.unlink()  # a corrected version without problems replaces the old quarantine
        q_records = len({n for n in quarantine.column("record_no").to_pylist() if n is not None})
        out.rows_read = res.records_received
        out.accepted = accepted.num_rows
        out.quarantined = q_records
        out.error_kinds = Counter(quarantine.column("error_kind").to_pylist()) if quarantine.num_rows else Counter()
        if out.rows_read != out.accepted + out.quarantined:
            from pipelines.lake.parse import ReconciliationError

            raise ReconciliationError(
                f"payload {pid} ({contract.dataset}, {key.reporter}, {key.leveringsdato}): received "
                f"{out.rows_read} != accepted {out.accepted} + quarantined {out.quarantined}")
        fatal = [e for e in res.payload_errors if e.get("error_kind") in PAYLOAD_FATAL]
        if fatal:
            # the quarantine holds what was readable; the payload must be delivered again
            raise PayloadRejected(
                f"payload {pid} ({contract.dataset}, {key.reporter}, {key.leveringsdato}, {key.source_name}): "
                + "; ".join(f"{e['error_kind']}: {e['message']}" for e in fatal))
        msgs = [(contract.dataset, b, int(n)) for b, n in zip(
            accepted.column("besked_id").to_pylist(), accepted.column("_record_no").to_pylist(), strict=True)
            if b is not None]
        keys = []
        if contract.record_key:
            kcol = accepted.column(contract.record_key[0]).to_pylist()
            ch = accepted.column("aendringstype").to_pylist()
            keys = [(contract.dataset, str(k)) for k, c in zip(kcol, ch, strict=True) if k is not None and c == "1"]
        ledger.mark_loaded(reg.row, out.rows_read, out.accepted, out.quarantined, str(lake_file), msgs, keys,
                           cursor)
    except Exception as exc:
        ledger.mark_failed(key, reg.row.version, f"{type(exc).__name__}: {exc}")
        raise
    return out


def _split_duplicates(ledger: Ledger, contract: Contract, table: pa.Table, pid: str
                      ) -> tuple[pa.Table, list[dict[str, Any]]]:
    if table.num_rows == 0:
        return table, []
    ids = table.column("besked_id").to_pylist()
    rec_no = table.column("_record_no").to_pylist()
    seen_before = ledger.seen_messages(contract.dataset, [i for i in ids if i], pid)
    first: dict[str, int] = {}
    keep, dups = [], []
    for k, (bid, n) in enumerate(zip(ids, rec_no, strict=True)):
        if bid in seen_before:
            p, m = seen_before[bid]
            dups.append((k, n, f"besked_id {bid} already loaded from payload {p}, record {m}"))
        elif bid in first:
            dups.append((k, n, f"besked_id {bid} repeats record {first[bid]} of this payload"))
        else:
            if bid:
                first[bid] = n
            keep.append(k)
    if not dups:
        return table, []
    rows = []
    raw = table.to_pylist()
    for k, n, msg in dups:
        rec = {c: (str(v) if v is not None else None) for c, v in raw[k].items() if not c.startswith("_")}
        rows.append({"record_no": n, "field": "besked_id", "error_kind": "duplicate_message",
                     "message": f"{msg} ({contract.dataset}:duplicate:besked_id)",
                     "raw_record": json.dumps(rec, ensure_ascii=False)})
    return table.take(pa.array(keep, pa.int64())), rows


def _unknown_references(ledger: Ledger, contract: Contract, table: pa.Table, pid: str) -> list[str]:
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
    known = ledger.known_keys(contract.dataset, wanted)
    rule = next((r for r in contract.rules if r.kind == "reference_exists" and r.params.get("field") == key), None)
    rid = f"{rule.id} ({rule.paragraph})" if rule else "reference_exists"
    out = []
    for k, n in zip(changes.column(key).to_pylist(), changes.column("_record_no").to_pylist(), strict=True):
        if k is not None and k not in created_here and str(k) not in known:
            out.append(f"payload {pid} record {n}: {key}={k} changes a record never created (rule {rid})")
    return out


# ---------------------------------------------------------------------------- channels

def reporters_for(contract: Contract, tokens: dict[str, str]) -> list[str]:
    if contract.reporter == "jobcenter":
        allowed = set(codelist_codes("kommuner"))
    elif contract.reporter == "akasse":
        allowed = set(codelist_codes("akasser"))
    else:
        allowed = {"JOBNET"} if contract.reporter == "jobnet" else {contract.reporter.upper()}
    return sorted(r for r in tokens if r in allowed)


def ingest_dataset_day(dataset: str, day: dt.date, zones: Zones, sources: SourcesConfig,
                       received_at: str | None = None, raise_on_failure: bool = True) -> UnitResult:
    """Ingest every reporter's payloads of ``dataset`` delivered on ``day``.

    One reporter's failure does not stop the others; failures are collected and,
    unless ``raise_on_failure`` is false, raised together at the end.
    """
    contract = get_contract(dataset)
    received_at = received_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with partition_lock(zones, dataset, day):
        remove_stale_temp(zones, contract, day)
        return _ingest_locked(contract, day, zones, sources, received_at, raise_on_failure)


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
                   raise_on_failure: bool) -> UnitResult:
    dataset = contract.dataset
    ledger = Ledger(zones.ledger_path)
    result = UnitResult(contract.channel, dataset, day)
    try:
        if contract.channel == "webservice":
            _webservice(contract, day, zones, ledger, sources, received_at, result)
        elif contract.channel == "ftp":
            _ftp(contract, day, zones, ledger, sources, received_at, result)
        else:
            _files(contract, day, zones, ledger, sources, received_at, result)
    finally:
        ledger.close()
    if result.failures and raise_on_failure:
        raise IngestionFailed(result)
    return result


def _webservice(contract: Contract, day: dt.date, zones: Zones, ledger: Ledger, sources: SourcesConfig,
                received_at: str, result: UnitResult) -> None:
    from pipelines.sources import WebserviceClient

    for reporter in reporters_for(contract, sources.tokens):
        cursor, pages, complete = ledger.cursor("webservice", reporter, contract.dataset, day)
        if complete:
            continue
        last = None
        try:
            with WebserviceClient(sources.webservice_url, sources.tokens[reporter]) as client:
                for page in client.iter_pages(contract.dataset, day, start_cursor=cursor):
                    if not page.records and pages == 0 and page.next_cursor is None:
                        break  # nothing delivered that day: no payload to land
                    pages += 1
                    key = PayloadKey("webservice", reporter, contract.dataset, day, f"page-{pages:05d}")
                    cur = (page.next_cursor, pages, page.next_cursor is None)
                    out = load_payload(zones, ledger, contract, key, page.body, ".json", received_at, cur)
                    result.payloads.append(out)
                    if out.action == "duplicate":  # no load transaction carried the cursor
                        ledger.commit_cursor("webservice", reporter, contract.dataset, day, *cur)
                    last = page
            if last is None or last.next_cursor is not None or pages == 0:
                ledger.commit_cursor("webservice", reporter, contract.dataset, day, None, pages, True)
        except Exception as exc:  # noqa: BLE001 - isolate the reporter, report it below
            result.failures.append((reporter, f"{type(exc).__name__}: {exc}"))


_FILE_RE = re.compile(r"^(?P<ds>[a-z0-9_]+?)(?:_(?P<rep>\d{3}))?_(?P<day>\d{8})\.(?:csv|txt)$")


def _parse_name(name: str) -> tuple[str, str | None, str] | None:
    """`<dataset>[_<reporter>]_<YYYYMMDD>.<ext>` -> (dataset, reporter, day) (docs/sources.md)."""
    m = _FILE_RE.match(name)
    return (m["ds"], m["rep"], m["day"]) if m else None


def _is_file_of(name: str, dataset: str) -> bool:
    p = _parse_name(name)
    return p is not None and p[0] == dataset


def _reporter_from_name(name: str, dataset: str) -> str:
    p = _parse_name(name)
    if p is None or p[1] is None:
        raise ValueError(f"file name {name!r} names no reporter (expected {dataset}_<code>_<YYYYMMDD>)")
    return p[1]


def _ftp(contract: Contract, day: dt.date, zones: Zones, ledger: Ledger, sources: SourcesConfig,
         received_at: str, result: UnitResult) -> None:
    from pipelines.sources import FtpClient

    with FtpClient(sources.ftp_host, sources.ftp_port, sources.ftp_user, sources.ftp_password) as client:
        try:
            files = [f for f in client.list_files(day) if _is_file_of(f.name, contract.dataset)]
        except Exception as exc:  # noqa: BLE001
            result.failures.append(("ftp", f"{type(exc).__name__}: {exc}"))
            return
        _fetch_ftp_files(client, files, contract, day, zones, ledger, received_at, result)


def _fetch_ftp_files(client: Any, files: list, contract: Contract, day: dt.date, zones: Zones, ledger: Ledger,
                     received_at: str, result: UnitResult) -> None:
    with tempfile.TemporaryDirectory(prefix="dsdw-ftp-") as tmp:
        for f in files:
            reporter = _reporter_from_name(f.name, contract.dataset)
            key = PayloadKey("ftp", reporter, contract.dataset, day, f.name)
            try:
                local = client.fetch(f, Path(tmp))
                result.payloads.append(load_payload(zones, ledger, contract, key, local.read_bytes(), ".csv",
                                                    received_at))
            except Exception as exc:  # noqa: BLE001
                result.failures.append((f.name, f"{type(exc).__name__}: {exc}"))


def _files(contract: Contract, day: dt.date, zones: Zones, ledger: Ledger, sources: SourcesConfig,
           received_at: str, result: UnitResult) -> None:
    from pipelines.sources import complete_files, portal_files

    if contract.channel == "portal":
        files = portal_files(sources.portal_dir / day.isoformat())
        ext = ".csv"
    else:
        base = sources.uvm_dir if contract.reporter == "uvm" else sources.ssi_dir
        files = complete_files(base / day.isoformat())
        ext = ".csv" if contract.reporter == "uvm" else ".txt"
    for f in files:
        name = Path(f.path).name
        if not _is_file_of(name, contract.dataset):
            continue
        reporter = _reporter_from_name(name, contract.dataset) if contract.channel == "portal" \
            else contract.reporter.upper()
        key = PayloadKey(contract.channel, reporter, contract.dataset, day, name)
        try:
            result.payloads.append(load_payload(zones, ledger, contract, key, Path(f.path).read_bytes(), ext,
                                                received_at))
        except Exception as exc:  # noqa: BLE001
            result.failures.append((name, f"{type(exc).__name__}: {exc}"))


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
        futs = {ds: pool.submit(ingest_dataset_day, ds, day, zones, sources, received_at, False) for ds in names}
        return [futs[ds].result() for ds in names]
