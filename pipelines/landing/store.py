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

from pipelines.fsio import atomic_write

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
            ext: str) -> tuple[str, Path]:
        """Store ``data`` (once); returns (payload id, path). Existing files are never rewritten."""
        pid = payload_id(data)
        path = self.path_for(channel, dataset, leveringsdato, reporter, pid, ext)
        if not path.exists():
            atomic_write(path, data)
        return pid, path
