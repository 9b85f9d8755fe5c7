"""The file ledger: one row per payload version, the ground of exactly-once loading.

SQLite, because the ledger is small operational state written by several
processes (Dagster runs, sensors, the CLI) and SQLite serialises writers with
transactions that survive a SIGKILL.  The warehouse reads it, never writes it.

States: ``landed`` (raw bytes stored, not yet in the lake) -> ``loaded``; or
``failed`` with the error.  A rerun redoes ``landed`` and ``failed`` payloads
and skips ``loaded`` ones.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
    status TEXT NOT NULL CHECK (status IN ('landed', 'loaded', 'failed', 'superseded')),
    error TEXT,
    landing_path TEXT NOT NULL,
    lake_path TEXT,
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
    PRIMARY KEY (channel, reporter, dataset, leveringsdato)
);
CREATE TABLE IF NOT EXISTS messages (
    dataset TEXT NOT NULL, besked_id TEXT NOT NULL, payload_id TEXT NOT NULL, record_no INTEGER NOT NULL,
    PRIMARY KEY (dataset, besked_id)
);
CREATE TABLE IF NOT EXISTS record_keys (
    dataset TEXT NOT NULL, record_key TEXT NOT NULL, payload_id TEXT NOT NULL,
    PRIMARY KEY (dataset, record_key)
);
"""


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


@dataclass(frozen=True)
class Registration:
    """What registering a payload decided: ``new``, ``new_version``, ``retry`` or ``duplicate``."""

    action: str
    row: LedgerRow


_COLS = ("channel, reporter, dataset, leveringsdato, source_name, version, payload_id, sha256, bytes, supersedes, "
         "rows_read, rows_accepted, rows_quarantined, received_at, status, error, landing_path, lake_path")


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
        self.con.executescript(SCHEMA)

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
        r = self.con.execute(
            f"SELECT {_COLS} FROM payloads WHERE channel=? AND reporter=? AND dataset=? AND leveringsdato=? "
            "AND source_name=? ORDER BY version DESC LIMIT 1", key.as_tuple()).fetchone()
        return _row(r) if r else None

    def register(self, key: PayloadKey, payload_id: str, sha256: str, nbytes: int, landing_path: Path,
                 received_at: str) -> Registration:
        """Record a landed payload; decides whether it is new, a new version, a retry or a duplicate."""
        with self.tx() as con:
            prev = self.latest(key)
            if prev is not None and prev.sha256 == sha256:
                if prev.status == "loaded":
                    con.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)",
                                (received_at, *key.as_tuple(), payload_id, "duplicate_payload",
                                 f"same bytes as version {prev.version}; nothing to do"))
                    return Registration("duplicate", prev)
                return Registration("retry", prev)  # landed/failed earlier: redo the idempotent steps
            if prev is None:
                same = con.execute(
                    f"SELECT {_COLS} FROM payloads WHERE channel=? AND reporter=? AND dataset=? AND sha256=? "
                    "AND status IN ('loaded', 'superseded') ORDER BY leveringsdato, source_name, version LIMIT 1",
                    (key.channel, key.reporter, key.dataset, sha256)).fetchone()
                if same is not None:  # the same bytes under another name: already loaded
                    first = _row(same)
                    con.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)",
                                (received_at, *key.as_tuple(), payload_id, "duplicate_payload",
                                 f"same bytes as {first.key.source_name} ({first.key.leveringsdato}, version "
                                 f"{first.version}); nothing to do"))
                    return Registration("duplicate", first)
            version = 1 if prev is None else prev.version + 1
            supersedes = None if prev is None else prev.payload_id
            con.execute(
                f"INSERT INTO payloads ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (*key.as_tuple(), version, payload_id, sha256, nbytes, supersedes, None, None, None, received_at,
                 "landed", None, str(landing_path), None))
            if prev is not None:
                con.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)",
                            (received_at, *key.as_tuple(), payload_id, "new_version",
                             f"version {version} supersedes {prev.payload_id} (version {prev.version})"))
            row = self.latest(key)
            assert row is not None
            return Registration("new" if prev is None else "new_version", row)

    def mark_loaded(self, row: LedgerRow, rows_read: int, accepted: int, quarantined: int, lake_path: str,
                    messages: Iterable[tuple[str, str, int]] = (), keys: Iterable[tuple[str, str]] = (),
                    cursor: tuple[str | None, int, bool] | None = None) -> None:
        """Loaded, in one transaction with the message ids and record keys the payload brought
        (and, for a webservice page, the cursor to resume from)."""
        with self.tx() as con:
            if cursor is not None:
                k = row.key
                con.execute("INSERT OR REPLACE INTO cursors VALUES (?,?,?,?,?,?,?)",
                            (k.channel, k.reporter, k.dataset, k.leveringsdato.isoformat(), cursor[0], cursor[1],
                             int(cursor[2])))
            if row.supersedes:
                con.execute("DELETE FROM messages WHERE payload_id=?", (row.supersedes,))
                con.execute("DELETE FROM record_keys WHERE payload_id=?", (row.supersedes,))
                con.execute("UPDATE payloads SET status='superseded' WHERE payload_id=? AND status='loaded'",
                            (row.supersedes,))
            con.executemany("INSERT OR IGNORE INTO messages VALUES (?,?,?,?)",
                            ((ds, bid, row.payload_id, n) for ds, bid, n in messages))
            con.executemany("INSERT OR IGNORE INTO record_keys VALUES (?,?,?)",
                            ((ds, k, row.payload_id) for ds, k in keys))
            con.execute(
                "UPDATE payloads SET status='loaded', error=NULL, rows_read=?, rows_accepted=?, rows_quarantined=?, "
                "lake_path=? WHERE channel=? AND reporter=? AND dataset=? AND leveringsdato=? AND source_name=? "
                "AND version=?", (rows_read, accepted, quarantined, lake_path, *row.key.as_tuple(), row.version))

    def mark_failed(self, key: PayloadKey, version: int, error: str) -> None:
        with self.tx() as con:
            con.execute("UPDATE payloads SET status='failed', error=? WHERE channel=? AND reporter=? AND dataset=? "
                        "AND leveringsdato=? AND source_name=? AND version=?", (error, *key.as_tuple(), version))

    def seen_messages(self, dataset: str, besked_ids: list[str], payload_id: str) -> dict[str, tuple[str, int]]:
        """Message ids already loaded by another payload (duplicates), with where they came first."""
        out: dict[str, tuple[str, int]] = {}
        for k in range(0, len(besked_ids), 900):
            chunk = besked_ids[k:k + 900]
            q = ",".join("?" * len(chunk))
            for bid, pid, n in self.con.execute(
                    f"SELECT besked_id, payload_id, record_no FROM messages WHERE dataset=? AND besked_id IN ({q}) "
                    "AND payload_id<>?", (dataset, *chunk, payload_id)):
                out[bid] = (pid, n)
        return out

    def known_keys(self, dataset: str, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for k in range(0, len(keys), 900):
            chunk = keys[k:k + 900]
            q = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.con.execute(
                f"SELECT record_key FROM record_keys WHERE dataset=? AND record_key IN ({q})", (dataset, *chunk)))
        return found

    # --- webservice cursors: resume from the last committed page after a crash
    def cursor(self, channel: str, reporter: str, dataset: str, day: dt.date) -> tuple[str | None, int, bool]:
        r = self.con.execute("SELECT next_cursor, pages, complete FROM cursors WHERE channel=? AND reporter=? "
                             "AND dataset=? AND leveringsdato=?", (channel, reporter, dataset, day.isoformat())
                             ).fetchone()
        return (r[0], r[1], bool(r[2])) if r else (None, 0, False)

    def commit_cursor(self, channel: str, reporter: str, dataset: str, day: dt.date, next_cursor: str | None,
                      pages: int, complete: bool) -> None:
        with self.tx() as con:
            con.execute("INSERT OR REPLACE INTO cursors VALUES (?,?,?,?,?,?,?)",
                        (channel, reporter, dataset, day.isoformat(), next_cursor, pages, int(complete)))

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
