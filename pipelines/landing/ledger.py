"""The file ledger: one row per payload version, the ground of exactly-once loading.

SQLite, because the ledger is small operational state written by several
processes (Dagster runs, sensors, the CLI) and SQLite serialises writers with
transactions that survive a SIGKILL.  The warehouse reads it, never writes it.

Every file a channel offers gets a row, whatever becomes of it (docs/ingestion.md):
``landed`` (raw bytes stored, not yet in the lake) -> ``loaded`` (later ``superseded`` by a
corrected version); ``rejected`` (the payload as a whole cannot be trusted, or the file may
not be read: the reason is in ``error``); ``duplicate`` (same bytes as a payload already
loaded); ``ignored``; or ``failed`` (an error of ours or of the channel). A rerun redoes
``landed`` and ``failed`` payloads and skips the final states.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

SCHEMA = """
CREATE TABLE IF NOT EXISTS payloads (
    channel TEXT NOT NULL,
    reporter TEXT NOT NULL,
    dataset TEXT NOT NULL,
    leveringsdato TEXT NOT NULL,
    source_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    payload_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    supersedes TEXT,
    rows_read INTEGER,
    rows_accepted INTEGER,
    rows_quarantined INTEGER,
    received_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('landed', 'loaded', 'failed', 'superseded', 'rejected', 'duplicate',
                                           'ignored')),
    error TEXT,
    landing_path TEXT NOT NULL,
    lake_path TEXT,
    arrived TEXT,
    PRIMARY KEY (channel, reporter, dataset, leveringsdato, source_name, version)
);
CREATE INDEX IF NOT EXISTS payloads_by_day ON payloads (dataset, leveringsdato);
CREATE INDEX IF NOT EXISTS payloads_by_sha ON payloads (sha256);
CREATE TABLE IF NOT EXISTS events (
    at TEXT NOT NULL,
    channel TEXT, reporter TEXT, dataset TEXT, leveringsdato TEXT, source_name TEXT,
    payload_id TEXT, event TEXT NOT NULL, detail TEXT
);
CREATE TABLE IF NOT EXISTS cursors (
    channel TEXT NOT NULL, reporter TEXT NOT NULL, dataset TEXT NOT NULL, leveringsdato TEXT NOT NULL,
    next_cursor TEXT, pages INTEGER NOT NULL, complete INTEGER NOT NULL,
    last_cursor TEXT, total INTEGER,
    PRIMARY KEY (channel, reporter, dataset, leveringsdato)
);
CREATE TABLE IF NOT EXISTS messages (
    dataset TEXT NOT NULL, besked_id TEXT NOT NULL, payload_id TEXT NOT NULL, record_no INTEGER NOT NULL,
    PRIMARY KEY (dataset, besked_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS record_keys (
    dataset TEXT NOT NULL, record_key TEXT NOT NULL, payload_id TEXT NOT NULL,
    PRIMARY KEY (dataset, record_key)
) WITHOUT ROWID;
"""
# messages and record_keys are WITHOUT ROWID: one B-tree keyed by (dataset, id) instead of a rowid table
# plus its primary-key index, so a load inserts each id once and a duplicate check looks it up once
# (measured: 1.5 M random ids, 10.5 -> 4.8 CPU s). There is deliberately no index on payload_id (it
# would cost 3.2 CPU s more per 1.5 M ids): a superseded version's ids are deleted by primary key, read
# from its lake file (:meth:`Ledger.commit_loads`, ``released``).
_ID_TABLES = {"messages": ("besked_id", "payload_id, record_no"), "record_keys": ("record_key", "payload_id")}



@contextmanager
def read_only(path: Path | str) -> Iterator[sqlite3.Connection]:
    """The ledger opened read-only, for readers beside ingestion (warehouse, rebuild, reports).

    ``mode=ro`` means a reader can never create, migrate or lock-for-write the file the ingestion owns.
    """
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield con
    finally:
        con.close()

@dataclass(frozen=True)
class PayloadKey:
    """What identifies a delivery slot: a corrected re-delivery has the same key, new bytes."""

    channel: str
    reporter: str
    dataset: str
    leveringsdato: dt.date
    source_name: str

    def as_tuple(self) -> tuple[str, str, str, str, str]:
        return (self.channel, self.reporter, self.dataset, self.leveringsdato.isoformat(), self.source_name)


@dataclass(frozen=True)
class LedgerRow:
    key: PayloadKey
    version: int
    payload_id: str
    sha256: str
    bytes: int
    supersedes: str | None
    rows_read: int | None
    rows_accepted: int | None
    rows_quarantined: int | None
    received_at: str
    status: str
    error: str | None
    landing_path: str
    lake_path: str | None
    # the day whose folder held a file named for an earlier day (a late delivery or correction);
    # None: offered on its own day
    arrived: str | None = None

    @property
    def offered_on(self) -> dt.date:
        """The day (folder) this version was offered in."""
        return dt.date.fromisoformat(self.arrived) if self.arrived else self.key.leveringsdato


@dataclass(frozen=True)
class Ids:
    """Ids one payload brings to one dataset, as Arrow arrays (no Python object per id until the insert).

    ``ids``: message ids (``besked_id``) or record keys, strings without nulls; ``record_nos``: the record
    each message id came in (message ids only).
    """

    dataset: str
    ids: pa.Array
    record_nos: pa.Array | None = None
    # ``ids`` as Python strings when the caller has them already (the duplicate check made them): the
    # pending duplicate checks of later payloads take them instead of converting the array again
    py: list[str] | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, rows: Iterable[tuple]) -> list[Ids]:
        """From (dataset, id[, record_no]) tuples, grouped by dataset in order of first appearance."""
        by: dict[str, list[tuple]] = {}
        for r in rows:
            by.setdefault(r[0], []).append(r)
        return [cls(ds, pa.array([r[1] for r in rs], pa.string()),
                    pa.array([r[2] for r in rs], pa.int64()) if len(rs[0]) > 2 else None) for ds, rs in by.items()]


@dataclass(frozen=True)
class LoadCommit:
    """What :meth:`Ledger.commit_loads` writes for one loaded payload."""

    row: LedgerRow
    rows_read: int
    accepted: int
    quarantined: int
    lake_path: str
    messages: list[Ids]  # message ids with their record numbers
    keys: list[Ids]  # record keys of the records it creates
    cursor: tuple[str | None, int, bool] | None = None  # a webservice page: where the extract resumes
    last_cursor: str | None = None
    total: int | None = None

    @property
    def message_count(self) -> int:
        return sum(len(m) for m in self.messages)


# the ids a superseded version brought: (message ids, record keys), or None when they cannot be
# read (then its rows are found by a scan of the tables)
ReleasedIds = Callable[[LedgerRow], tuple[list[str], list[str]] | None]


@dataclass(frozen=True)
class CursorCommit:
    """A webservice cursor write kept in order with the load commits around it."""

    channel: str
    reporter: str
    dataset: str
    day: dt.date
    next_cursor: str | None
    pages: int
    complete: bool
    last_cursor: str | None = None
    total: int | None = None

    def values(self) -> tuple:
        return (self.channel, self.reporter, self.dataset, self.day.isoformat(), self.next_cursor, self.pages,
                int(self.complete), self.last_cursor, self.total)


FINAL = ("loaded", "superseded", "rejected", "duplicate", "ignored")


@dataclass(frozen=True)
class Registration:
    """What registering a payload decided.

    ``new``, ``new_version`` or ``retry``: parse and load it. ``unchanged``: the same bytes under
    the same key again (a rerun): nothing to do. ``duplicate`` or ``rejected``: a new ledger row
    in that final state was written (same bytes as a payload already loaded), nothing to load.
    """

    action: str
    row: LedgerRow


_COLS_V1 = ("channel, reporter, dataset, leveringsdato, source_name, version, payload_id, sha256, bytes, supersedes, "
            "rows_read, rows_accepted, rows_quarantined, received_at, status, error, landing_path, lake_path")
_COLS = _COLS_V1 + ", arrived"
_KEY = "channel=? AND reporter=? AND dataset=? AND leveringsdato=? AND source_name=?"


def revert_payload_id(sha256: str, version: int) -> str:
    """The payload id of a version whose bytes an earlier version of the same slot already had.

    Content-addressed ids would give the revert its old id, which the warehouse has loaded and
    since retracted; this id is as deterministic (a rerun gives the same) and names its own lake file.
    """
    return hashlib.sha256(f"{sha256}:version:{version}".encode("ascii")).hexdigest()[:32]


def late_remark(key: PayloadKey, arrived: dt.date, prev: LedgerRow | None) -> str:
    what = ("a late delivery" if prev is None else
            f"a correction of version {prev.version} ({prev.status}, offered on {prev.offered_on})")
    return (f"file named for {key.leveringsdato} was offered in the folder of {arrived}: filed under "
            f"{key.leveringsdato} as {what}")


def _sorted_rows(items: list[tuple[str, list[Ids]]], with_record_nos: bool) -> Iterator[tuple]:
    """(dataset, id, payload_id[, record_no]) rows of many payloads, in (dataset, id) order.

    Arrow's sort is stable, so among equal ids the payload that came first stays first. Only the ids
    become Python strings one by one: the dataset and payload id of a row are the part's own string
    objects, picked by index (1.5 M rows: a string object fewer for each of them, twice).
    """
    import numpy as np

    parts = [(pid, i) for pid, ids in items for i in ids if len(i)]
    if not parts:
        return iter(())
    names = sorted({i.dataset for _, i in parts})
    rank = {d: k for k, d in enumerate(names)}
    lens = np.array([len(i) for _, i in parts], dtype=np.int64)
    part_no = np.repeat(np.arange(len(parts), dtype=np.int32), lens)
    ids = pa.concat_arrays([i.ids.cast(pa.string()) for _, i in parts])
    if len(names) == 1:
        order = pc.sort_indices(ids)
    else:
        ds_rank = np.repeat(np.array([rank[i.dataset] for _, i in parts], dtype=np.int32), lens)
        order = pc.sort_indices(pa.table({"d": ds_rank, "id": ids}), sort_keys=[("d", "ascending"),
                                                                                ("id", "ascending")])
    at = order.to_numpy()
    which = part_no[at]
    cols: list[list] = [
        np.array([i.dataset for _, i in parts], dtype=object)[which].tolist(),
        ids.take(order).to_pylist(),
        np.array([pid for pid, _ in parts], dtype=object)[which].tolist(),
    ]
    if with_record_nos:
        cols.append(pa.concat_arrays([i.record_nos for _, i in parts]).to_numpy(zero_copy_only=False)[at].tolist())
    return zip(*cols, strict=True)


def _row(r: tuple) -> LedgerRow:
    key = PayloadKey(r[0], r[1], r[2], dt.date.fromisoformat(r[3]), r[4])
    return LedgerRow(key, *r[5:])


class Ledger:
    """The file ledger in ``<root>/ledger.sqlite``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a SIGKILL loses nothing committed; a power cut may lose the last
        # commits, which the idempotent rerun redoes. FULL costs an fsync per commit.
        self.con.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        self.con.executescript(SCHEMA)

    def _migrate(self) -> None:
        """Ledgers written before the final states existed: widen the status check, add cursor columns."""
        r = self.con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='payloads'").fetchone()
        if r is not None and "'rejected'" not in r[0]:
            with self.tx() as con:
                con.execute("ALTER TABLE payloads RENAME TO payloads_old")
                con.execute("DROP INDEX IF EXISTS payloads_by_day")
                con.execute("DROP INDEX IF EXISTS payloads_by_sha")
                for stmt in SCHEMA.split(";"):
                    if "CREATE TABLE IF NOT EXISTS payloads" in stmt or "ON payloads" in stmt:
                        con.execute(stmt)
                con.execute(f"INSERT INTO payloads ({_COLS_V1}) SELECT {_COLS_V1} FROM payloads_old ORDER BY rowid")
                con.execute("DROP TABLE payloads_old")
            r = self.con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='payloads'").fetchone()
        if r is not None and "arrived" not in r[0]:
            try:
                self.con.execute("ALTER TABLE payloads ADD COLUMN arrived TEXT")
            except sqlite3.OperationalError as exc:  # another process migrated it just now
                if "duplicate column" not in str(exc):
                    raise
        r = self.con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='cursors'").fetchone()
        if r is not None and "last_cursor" not in r[0]:
            self.con.execute("ALTER TABLE cursors ADD COLUMN last_cursor TEXT")
            self.con.execute("ALTER TABLE cursors ADD COLUMN total INTEGER")
        for table in _ID_TABLES:
            self._without_rowid(table)

    def _without_rowid(self, table: str) -> None:
        """An id table of an older ledger (a rowid table plus its key index) rebuilt WITHOUT ROWID, once."""
        def rowid_table() -> bool:
            r = self.con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
            return r is not None and "WITHOUT ROWID" not in r[0].upper()
        if not rowid_table():
            return
        with self.tx() as con:
            if not rowid_table():  # another process rebuilt it just now
                return
            stmt = next(s for s in SCHEMA.split(";") if f"CREATE TABLE IF NOT EXISTS {table} " in s)
            con.execute(f"ALTER TABLE {table} RENAME TO {table}_rowid")
            con.execute(stmt)
            con.execute(f"INSERT INTO {table} SELECT * FROM {table}_rowid ORDER BY dataset, {_ID_TABLES[table][0]}")
            con.execute(f"DROP TABLE {table}_rowid")

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue instead of failing)."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def latest(self, key: PayloadKey) -> LedgerRow | None:
        r = self.con.execute(f"SELECT {_COLS} FROM payloads WHERE {_KEY} ORDER BY version DESC LIMIT 1",
                             key.as_tuple()).fetchone()
        return _row(r) if r else None

    def loaded_version(self, key: PayloadKey) -> LedgerRow | None:
        """The version of ``key`` now in the lake (a newer one may be rejected or pending)."""
        r = self.con.execute(f"SELECT {_COLS} FROM payloads WHERE {_KEY} AND status='loaded' "
                             "ORDER BY version DESC LIMIT 1", key.as_tuple()).fetchone()
        return _row(r) if r else None

    def _event(self, con: sqlite3.Connection, at: str, key: PayloadKey, pid: str, event: str, detail: str) -> None:
        con.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", (at, *key.as_tuple(), pid, event, detail))

    def _insert(self, con: sqlite3.Connection, key: PayloadKey, version: int, pid: str, sha256: str, nbytes: int,
                received_at: str, status: str, error: str | None, landing_path: str, rows_read: int | None = None,
                quarantined: int | None = None, arrived: dt.date | None = None) -> LedgerRow:
        con.execute(
            f"INSERT INTO payloads ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (*key.as_tuple(), version, pid, sha256, nbytes, None, rows_read, None if rows_read is None else 0,
             quarantined, received_at, status, error, landing_path, None,
             arrived.isoformat() if arrived is not None and arrived != key.leveringsdato else None))
        row = self.latest(key)
        assert row is not None
        return row

    def register(self, key: PayloadKey, payload_id: str, sha256: str, nbytes: int, landing_path: Path,
                 received_at: str, same_bytes_check: bool = True,
                 before_final: Callable[[], None] | None = None, arrived: dt.date | None = None
                 ) -> Registration:
        """Record a landed payload; decides whether it is new, a new version, a retry or a duplicate.

        Same bytes as a payload of this dataset already loaded (or loaded and since superseded),
        under any name, day or reporter: not loaded again. The same reporter's is a ``duplicate``;
        another reporter's bytes under this reporter's name are ``rejected`` (a file is one
        reporter's: it is neither accepted twice nor filed under the wrong reporter).
        ``same_bytes_check=False`` when the caller rejects the payload anyway (its own reason first).
        ``before_final``: makes the landed file durable before a final row naming it is committed
        (a ``landed`` row needs not: a rerun redoes it and rewrites a landing file a crash cut).
        ``arrived``: the day whose folder offered a file named for the earlier day ``key.leveringsdato``.

        Two rules keep versions from flipping: bytes offered again from the folder of an earlier
        day than the current version's (the rerun of a day whose file was corrected later) are
        ``unchanged``; and a reporter who reverts to an earlier version's exact bytes gets a new
        version with its own payload id (derived from the bytes and the version), so the warehouse,
        which loads each payload id once, sees the revert as a new load that supersedes the correction.
        """
        offered_on = arrived or key.leveringsdato
        with self.tx() as con:
            prev = self.latest(key)
            if prev is not None and prev.sha256 == sha256:
                if prev.status in FINAL:
                    return Registration("unchanged", prev)
                return Registration("retry", prev)  # landed/failed earlier: redo the idempotent steps
            if prev is not None and offered_on < prev.offered_on:
                r = con.execute(f"SELECT {_COLS} FROM payloads WHERE {_KEY} AND sha256=? AND "
                                "coalesce(arrived, leveringsdato)=? ORDER BY version DESC LIMIT 1",
                                (*key.as_tuple(), sha256, offered_on.isoformat())).fetchone()
                if r is not None:
                    return Registration("unchanged", _row(r))
            version = 1 if prev is None else prev.version + 1
            if prev is not None and con.execute(f"SELECT 1 FROM payloads WHERE {_KEY} AND sha256=? LIMIT 1",
                                                (*key.as_tuple(), sha256)).fetchone():
                payload_id = revert_payload_id(sha256, version)
            else:
                payload_id = self._own_id(con, key, sha256, payload_id)
            # (a slot's own earlier versions do not count: a reporter may revert a correction; nor do
            # payloads without records: every a-kasse's header-only export has the same bytes)
            same = con.execute(
                f"SELECT {_COLS} FROM payloads WHERE dataset=? AND sha256=? AND status IN ('loaded', 'superseded') "
                f"AND rows_read > 0 AND NOT ({_KEY}) ORDER BY leveringsdato, source_name, version LIMIT 1",
                (key.dataset, sha256, *key.as_tuple())).fetchone() if same_bytes_check else None
            if same is not None:
                first = _row(same)
                where = (f"{first.key.source_name!r} ({first.key.leveringsdato}, reporter {first.key.reporter}, "
                         f"version {first.version}, {first.status})")
                if first.key.reporter == key.reporter:
                    status, why = "duplicate", f"same bytes as {where}: already loaded, nothing to do"
                else:
                    status, why = "rejected", (f"same bytes as {where}: another reporter's file under reporter "
                                               f"{key.reporter}'s name; not loaded twice, not filed under {key.reporter}")
                if before_final is not None:
                    before_final()
                row = self._insert(con, key, version, payload_id, sha256, nbytes, received_at, status, why,
                                   str(landing_path), arrived=arrived)
                self._event(con, received_at, key, payload_id, "duplicate_payload", why)
                return Registration(status, row)
            row = self._insert(con, key, version, payload_id, sha256, nbytes, received_at, "landed", None,
                               str(landing_path), arrived=arrived)
            if prev is not None:
                self._event(con, received_at, key, payload_id, "new_version",
                            f"version {version} follows {prev.payload_id} (version {prev.version}, {prev.status})"
                            + (f"; the same bytes as an earlier version (a revert): payload id {payload_id}"
                               if payload_id != sha256[:32] else ""))
            if arrived is not None and arrived != key.leveringsdato:
                self._event(con, received_at, key, payload_id, "late_delivery", late_remark(key, arrived, prev))
            return Registration("new" if prev is None else "new_version", row)

    def _own_id(self, con: sqlite3.Connection, key: PayloadKey, sha256: str, payload_id: str) -> str:
        """``payload_id`` unless another slot's row already has these bytes: then an id of this slot's own.

        The same bytes may be offered under several slots (every a-kasse's header-only export, one
        file in two folders, a copy under a bad name); each is a payload of its own, with its own lake
        and quarantine file, so the payload id names exactly one ledger row (docs/ingestion.md).
        Deterministic: a rerun finds this row by its key and bytes first.
        """
        if con.execute(f"SELECT 1 FROM payloads WHERE sha256=? AND NOT ({_KEY}) LIMIT 1",
                       (sha256, *key.as_tuple())).fetchone() is None:
            return payload_id
        slot = "\x1f".join(key.as_tuple())
        return hashlib.sha256(f"{sha256}:slot:{slot}".encode("utf-8", "surrogateescape")).hexdigest()[:32]

    def record_final(self, key: PayloadKey, payload_id: str, sha256: str, nbytes: int, landing_path: str,
                     received_at: str, status: str, reason: str) -> Registration:
        """A file offered that is not parsed (bad name, not a regular file, ...): one row with its reason.

        Idempotent: the same (key, bytes) again changes nothing.
        """
        assert status in ("rejected", "ignored")
        with self.tx() as con:
            prev = self.latest(key)
            if prev is not None and prev.sha256 == sha256 and prev.status in FINAL:
                return Registration("unchanged", prev)
            version = 1 if prev is None else prev.version + 1
            payload_id = self._own_id(con, key, sha256, payload_id)
            row = self._insert(con, key, version, payload_id, sha256, nbytes, received_at, status, reason,
                               landing_path)
            self._event(con, received_at, key, payload_id, status, reason)
            return Registration(status, row)

    def mark_loaded(self, row: LedgerRow, rows_read: int, accepted: int, quarantined: int, lake_path: str,
                    messages: Iterable[tuple[str, str, int]] = (), keys: Iterable[tuple[str, str]] = (),
                    cursor: tuple[str | None, int, bool] | None = None, last_cursor: str | None = None,
                    total: int | None = None) -> LedgerRow | None:
        """Loaded, in one transaction with the message ids and record keys the payload brought
        (``(dataset, besked_id, record_no)`` and ``(dataset, key)`` tuples; and, for a webservice page,
        the cursor to resume from). The version of the same key loaded before is superseded in the same
        transaction (its ids released); it is returned, so the caller removes its lake files."""
        return self.commit_loads([LoadCommit(row, rows_read, accepted, quarantined, lake_path, Ids.of(messages),
                                             Ids.of(keys), cursor, last_cursor, total)])[0]

    def commit_loads(self, loads: list[LoadCommit | CursorCommit], released: ReleasedIds | None = None
                     ) -> list[LedgerRow | None]:
        """Several payloads' load commits (and cursor writes) in one transaction, in their order.

        Why one: the message ids are random UUIDs, so every commit rewrites pages all over the
        ``messages`` table; committing many payloads at once writes each page once and inserts the
        ids in key order (measured: ~6x less CPU and ~10x less WAL than one commit per page of 500).
        The rows are built and sorted (by Arrow) before the write lock is taken, so other writers wait
        only for the inserts. The caller has checked duplicates across the batch in memory
        (:class:`pipelines.ingest.Pending`); the superseded versions' ids are released before any new id
        is inserted: by primary key when ``released`` names them (their lake file), else by a scan.
        Returns, per entry, the version it superseded (None for cursor writes and first loads).
        """
        out: list[LedgerRow | None] = []
        done = [c for c in loads if isinstance(c, LoadCommit)]
        msgs = _sorted_rows([(c.row.payload_id, c.messages) for c in done], with_record_nos=True)
        rkeys = _sorted_rows([(c.row.payload_id, c.keys) for c in done], with_record_nos=False)
        with self.tx() as con:
            for load in loads:
                if isinstance(load, CursorCommit):
                    con.execute("INSERT OR REPLACE INTO cursors VALUES (?,?,?,?,?,?,?,?,?)", load.values())
                    out.append(None)
                    continue
                row = load.row
                if load.cursor is not None:
                    k = row.key
                    con.execute("INSERT OR REPLACE INTO cursors VALUES (?,?,?,?,?,?,?,?,?)",
                                (k.channel, k.reporter, k.dataset, k.leveringsdato.isoformat(), load.cursor[0],
                                 load.cursor[1], int(load.cursor[2]), load.last_cursor, load.total))
                old = self.loaded_version(row.key)
                if old is not None and old.version != row.version:
                    self._release(con, old, released)
                    con.execute(f"UPDATE payloads SET status='superseded' WHERE {_KEY} AND version=?",
                                (*old.key.as_tuple(), old.version))
                else:
                    old = None
                con.execute(
                    "UPDATE payloads SET status='loaded', error=NULL, rows_read=?, rows_accepted=?, "
                    f"rows_quarantined=?, lake_path=?, supersedes=? WHERE {_KEY} AND version=?",
                    (load.rows_read, load.accepted, load.quarantined, load.lake_path,
                     old.payload_id if old else None, *row.key.as_tuple(), row.version))
                out.append(old)
            # key order: each page is visited once; the stable sort keeps the first copy first
            # (INSERT OR IGNORE: the first payload to bring a key keeps it, however the loads were batched)
            con.executemany("INSERT OR IGNORE INTO messages VALUES (?,?,?,?)", msgs)
            con.executemany("INSERT OR IGNORE INTO record_keys VALUES (?,?,?)", rkeys)
        return out

    @staticmethod
    def _release(con: sqlite3.Connection, old: LedgerRow, released: ReleasedIds | None) -> None:
        """Delete the message ids and record keys of the superseded version ``old``.

        By primary key when ``released`` reads them (from its lake file) and they check out: one message
        id per accepted row (``besked_id`` is required), each of them ``old``'s, and each record key
        ``old``'s. Otherwise (no lake file, rows missing, an id another payload holds) by a scan of the
        table for its payload id: slower, never wrong.
        """
        ids = released(old) if released is not None else None
        trusted = ids is not None and len(ids[0]) == old.rows_accepted
        for k, (table, (id_col, _rest)) in enumerate(_ID_TABLES.items()):
            if trusted:
                assert ids is not None
                before = con.total_changes
                con.executemany(f"DELETE FROM {table} WHERE dataset=? AND {id_col}=? AND payload_id=?",
                                [(old.key.dataset, i, old.payload_id) for i in ids[k]])
                if con.total_changes - before == len(ids[k]):
                    continue
                trusted = False  # the file does not name what the ledger holds: scan this table and the next
            con.execute(f"DELETE FROM {table} WHERE payload_id=?", (old.payload_id,))

    def mark_rejected(self, row: LedgerRow, reason: str, rows_read: int, quarantined: int) -> None:
        """The payload as a whole is not trusted: nothing of it is in the lake, the version loaded
        before (if any) stays loaded, its readable records are in the quarantine."""
        with self.tx() as con:
            con.execute(f"UPDATE payloads SET status='rejected', error=?, rows_read=?, rows_accepted=0, "
                        f"rows_quarantined=?, lake_path=NULL WHERE {_KEY} AND version=?",
                        (reason, rows_read, quarantined, *row.key.as_tuple(), row.version))
            self._event(con, row.received_at, row.key, row.payload_id, "rejected", reason)

    def mark_failed(self, key: PayloadKey, version: int, error: str) -> None:
        with self.tx() as con:
            con.execute(f"UPDATE payloads SET status='failed', error=? WHERE {_KEY} AND version=?",
                        (error, *key.as_tuple(), version))

    def seen_messages(self, dataset: str, besked_ids: list[str], *exclude: str) -> dict[str, tuple[str, int]]:
        """Message ids already loaded by another payload (duplicates), with where they came first.

        ``exclude``: payload ids whose messages do not count - the payload itself (a retry) and the
        version it is about to supersede (its ids are released by the same load).
        """
        out: dict[str, tuple[str, int]] = {}
        skip = set(exclude)
        besked_ids = sorted(besked_ids)  # neighbouring lookups share index pages
        for k in range(0, len(besked_ids), 900):
            chunk = besked_ids[k:k + 900]
            q = ",".join("?" * len(chunk))
            for bid, pid, n in self.con.execute(
                    f"SELECT besked_id, payload_id, record_no FROM messages WHERE dataset=? AND besked_id IN ({q})",
                    (dataset, *chunk)):
                if pid not in skip:
                    out[bid] = (pid, n)
        return out

    def known_keys(self, dataset: str, keys: list[str], *exclude: str) -> set[str]:
        """Record keys created by a loaded payload (``exclude``: payloads whose keys are being released)."""
        found: set[str] = set()
        skip = set(exclude)
        for k in range(0, len(keys), 900):
            chunk = keys[k:k + 900]
            q = ",".join("?" * len(chunk))
            found.update(key for key, pid in self.con.execute(
                f"SELECT record_key, payload_id FROM record_keys WHERE dataset=? AND record_key IN ({q})",
                (dataset, *chunk)) if pid not in skip)
        return found

    # --- webservice cursors: resume from the last committed page after a crash
    def cursor(self, channel: str, reporter: str, dataset: str, day: dt.date) -> tuple[str | None, int, bool]:
        r = self.con.execute("SELECT next_cursor, pages, complete FROM cursors WHERE channel=? AND reporter=? "
                             "AND dataset=? AND leveringsdato=?", (channel, reporter, dataset, day.isoformat())
                             ).fetchone()
        return (r[0], r[1], bool(r[2])) if r else (None, 0, False)

    def cursor_tail(self, channel: str, reporter: str, dataset: str, day: dt.date
                    ) -> tuple[str | None, int, int | None] | None:
        """(cursor the last page was requested with, pages, the reporter's total then) of a complete extract."""
        r = self.con.execute("SELECT last_cursor, pages, total FROM cursors WHERE channel=? AND reporter=? "
                             "AND dataset=? AND leveringsdato=? AND complete=1",
                             (channel, reporter, dataset, day.isoformat())).fetchone()
        return (r[0], r[1], r[2]) if r else None

    def complete_extracts(self, channel: str, dataset: str, day: dt.date) -> list[str]:
        return [r[0] for r in self.con.execute(
            "SELECT reporter FROM cursors WHERE channel=? AND dataset=? AND leveringsdato=? AND complete=1 "
            "ORDER BY reporter", (channel, dataset, day.isoformat()))]

    def open_extract(self, channel: str, reporter: str, dataset: str, day: dt.date, cursor: str | None,
                     pages: int) -> None:
        """An extract that was asked for and failed before any page was committed: an incomplete cursor
        row (where the next run starts), unless the extract has one already (never moved back)."""
        with self.tx() as con:
            con.execute("INSERT OR IGNORE INTO cursors VALUES (?,?,?,?,?,?,0,NULL,NULL)",
                        (channel, reporter, dataset, day.isoformat(), cursor, pages))

    def commit_cursor(self, channel: str, reporter: str, dataset: str, day: dt.date, next_cursor: str | None,
                      pages: int, complete: bool, last_cursor: str | None = None, total: int | None = None) -> None:
        self.commit_loads([CursorCommit(channel, reporter, dataset, day, next_cursor, pages, complete,
                                        last_cursor, total)])

    def rows(self, dataset: str | None = None, day: dt.date | None = None) -> list[LedgerRow]:
        q, args = f"SELECT {_COLS} FROM payloads WHERE 1=1", []
        if dataset:
            q += " AND dataset=?"
            args.append(dataset)
        if day:
            q += " AND leveringsdato=?"
            args.append(day.isoformat())
        q += " ORDER BY channel, reporter, dataset, leveringsdato, source_name, version"
        return [_row(r) for r in self.con.execute(q, args)]

    def events(self) -> list[tuple]:
        return list(self.con.execute("SELECT * FROM events ORDER BY rowid"))
