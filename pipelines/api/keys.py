"""API keys from a key file: one key a line (``#`` comments and blank lines ignored).

Why a file: the statistics API is read-only and serves only published (suppressed) figures, so a key
identifies a user and limits who can call it, nothing more; the file is re-read when it changes, so a key
is added or revoked without a restart.  Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
from pathlib import Path

DEFAULT_KEY_FILE = Path(os.environ.get("DSDW_API_KEYS", str(Path.home() / ".config" / "dsdw" / "api_keys")))


class KeyFile:
    """The accepted keys, reloaded when the file's mtime changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime: int | None = None
        self._keys: tuple[str, ...] = ()

    def keys(self) -> tuple[str, ...]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return ()
        with self._lock:
            if mtime != self._mtime:
                lines = self.path.read_text(encoding="utf-8").splitlines()
                self._keys = tuple(x.split("#", 1)[0].strip() for x in lines if x.split("#", 1)[0].strip())
                self._mtime = mtime
            return self._keys

    def accepts(self, key: str | None) -> bool:
        if not key:
            return False
        ok = False
        for k in self.keys():
            ok |= hmac.compare_digest(k.encode(), key.encode())
        return ok


def new_key(path: Path, note: str = "") -> str:
    """Append a fresh random key to the key file (created 0600) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(f"{key}{'  # ' + note if note else ''}\n")
    return key
