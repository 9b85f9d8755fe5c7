"""Read-only access to the published warehouse that survives the nightly swap.

Why: the load publishes ``warehouse.duckdb`` by atomic rename (docs/warehouse.md), so a connection opened
before the swap keeps reading the old file.  The store checks the file's identity (inode, mtime, size) on
every request and opens a new read-only connection when it changed; each request reads through its own
cursor, so concurrent requests never share a connection's state.  Nothing but the published statistics
tables is ever queried (:mod:`pipelines.api.app` builds every SQL from fixed column names).
"""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

import duckdb

_LINKS = itertools.count(1)  # the hard links' numbers in this process (Store._open)


class Store:
    """The published DuckDB file, reopened when a load has swapped it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._ident: tuple | None = None
        self.reopened = 0

    def identity(self) -> tuple:
        """The identity (inode, mtime, size) of the file now at ``path``."""
        return self._identity()

    def _identity(self) -> tuple:
        st = os.stat(self.path)
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _open(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the file now at ``path``.

        DuckDB shares one database instance per (canonical) path within a process, and that instance keeps
        the old, renamed-over file open as long as any connection to it lives (an in-flight request).  So each
        generation is opened through its own hard link (same directory, so same filesystem), unlinked at once:
        the new instance keeps the file open, the name is gone.  Where a link cannot be made, the old
        connection is closed and the path reopened.
        """
        self.reopened += 1
        # numbered per process, not per store: DuckDB's instance cache is keyed by the path, so two stores of one
        # file in one process numbering their own generations would meet the other's (older) instance by name
        link = self.path.parent / f".{self.path.stem}.api-{os.getpid()}-{next(_LINKS)}.duckdb"
        try:
            os.link(self.path, link)
        except OSError:
            if self._con is not None:
                self._con.close()
            return duckdb.connect(str(self.path), read_only=True)
        try:
            return duckdb.connect(str(link), read_only=True)
        finally:
            link.unlink(missing_ok=True)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the current published file (reopened after a swap)."""
        return self.generation()[0]

    def generation(self) -> tuple[duckdb.DuckDBPyConnection, tuple]:
        """A cursor on the current published file and that file's identity, taken together under the lock: an
        answer cached under the identity was read from that file (never a newer identity on older data)."""
        ident = self._identity()
        with self._lock:
            if self._con is None or ident != self._ident:
                self._con = self._open()
                self._ident = ident
            return self._con.cursor(), self._ident

    def query(self, sql: str, params: list | None = None) -> tuple[list[str], list[tuple]]:
        """Column names and rows of ``sql`` (parameters bound, never interpolated)."""
        cur = self.cursor()
        try:
            res = cur.execute(sql, params or [])
            return [d[0] for d in res.description], res.fetchall()
        finally:
            cur.close()
