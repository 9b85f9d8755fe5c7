"""Raw, immutable, content-addressed payload storage.

A payload is stored under its content hash before anything parses it, so a
re-delivery of the same bytes lands on the same path (idempotent) and a
corrected re-delivery lands beside the old one (which stays).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

from pipelines.fsio import DurableBatch, atomic_write

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def payload_id(data: bytes) -> str:
    """The payload's id: the first 32 hex digits of its SHA-256."""
    return hashlib.sha256(data).hexdigest()[:32]


def safe_name(name: str) -> str:
    """A file-system-safe key for page cursors and remote file names."""
    return _SAFE.sub("_", name).strip("._") or "payload"


class LandingStore:
    """``<root>/<channel>/<dataset>/<leveringsdato>/<reporter>/<payload_id><ext>``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, channel: str, dataset: str, leveringsdato: dt.date, reporter: str, pid: str,
                 ext: str) -> Path:
        return self.root / channel / dataset / leveringsdato.isoformat() / safe_name(reporter) / f"{pid}{ext}"

    def put(self, data: bytes, channel: str, dataset: str, leveringsdato: dt.date, reporter: str,
            ext: str, batch: DurableBatch | None = None, sha256: str | None = None) -> tuple[str, Path]:
        """Store ``data`` (once); returns (payload id, path).

        An existing file with these bytes is never rewritten. One that differs can only be a write
        a crash cut before its flush (its name is its hash): it is written again. With ``batch`` the
        file is made durable by the batch's flush (before the ledger commit that refers to it).
        """
        pid = (sha256 or hashlib.sha256(data).hexdigest())[:32]
        path = self.path_for(channel, dataset, leveringsdato, reporter, pid, ext)
        if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return pid, path
        if batch is not None:
            batch.write(path, data)
        else:
            atomic_write(path, data)
        return pid, path
