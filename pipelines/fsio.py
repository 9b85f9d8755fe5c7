"""Crash-safe file writes for the zones: a file appears whole or not at all.

Temp file in the target directory (``.<name>.<random>.tmp``, which the stale-temp
cleanup of a partition recognises), fsync, atomic rename, fsync of the directory
so the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (replaces an existing file)."""
    return atomic_write_with(path, lambda fh: fh.write(data))


def atomic_write_with(path: Path | str, write: Callable[[BinaryIO], object]) -> Path:
    """Let ``write`` fill a temp file beside ``path``, then rename it into place durably.

    For writers that stream (a copy from another file) rather than hold the bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


_SYNC_POOL: Any = None


def _sync_pool() -> Any:
    global _SYNC_POOL
    if _SYNC_POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _SYNC_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fsync")
    return _SYNC_POOL


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - directories on platforms that refuse it
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


class DurableBatch:
    """Files written now and made durable together, before the commit that refers to them.

    :func:`atomic_write` pays two sequential fsyncs per file. A payload writes three files
    (landing, lake, quarantine) before one ledger commit names them; here each is written to a
    temp file and renamed at once (a reader sees it whole or not at all), and :meth:`flush`
    fsyncs all of them and their directories concurrently, so the file system groups them into
    one journal commit. The caller flushes before the ledger commit that refers to the files: a
    crash before the flush leaves no final ledger row pointing at them (the rerun rewrites them).
    """

    def __init__(self) -> None:
        self.pending: list[Path] = []
        self.running: list[Any] = []

    def write(self, path: Path | str, data: bytes) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.pending.append(path)
        return path

    def absorb(self, other: DurableBatch) -> None:
        """Take over ``other``'s files: one flush makes both durable (each directory synced once)."""
        self.pending.extend(other.pending)
        self.running.extend(other.running)
        other.pending, other.running = [], []

    def start(self) -> None:
        """Begin the fsyncs of every file written so far (and their directories); :meth:`flush` waits."""
        if self.pending:
            targets = list(dict.fromkeys([*self.pending, *(p.parent for p in self.pending)]))
            self.pending = []
            self.running = [*self.running, *(_sync_pool().submit(_fsync_path, t) for t in targets)]

    def flush(self) -> None:
        """fsync every file written since the last flush, and the directories that name them."""
        self.start()
        running, self.running = self.running, []
        for f in running:
            f.result()
