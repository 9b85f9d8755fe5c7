"""Simulated kommune FTP server (pyftpdlib), serving ``DIR/ftp`` read-only.

Chapter 11 files (sanktion, raadighedsvurdering) arrive over FTP. The server is a real
pyftpdlib server so ingestion exercises listing, SIZE, REST resume and broken transfers
(``ftp_disconnect`` fault) against real sockets.

Users: ``star`` reads everything; each kommune logs in with its kommunekode as user
name and sees only files whose name carries ``_<kommunekode>_``. Passwords come from
``DIR/ftp_passwords.json`` (``{"user": "password"}``, optional, kept outside the
served root) or else :func:`ftp_password` (deterministic, so clients need no secret).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Any

from .faults import Faults

with warnings.catch_warnings():
    # pyftpdlib is built on asyncore/asynchat, which warn on import under Python 3.11.
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*(asyncore|asynchat)")
    from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

try:  # reported as "426 <strerror>; transfer aborted." without a logged traceback
    from pyftpdlib.exceptions import _FileReadWriteError as _TransferCut
except ImportError:  # pragma: no cover - older/newer pyftpdlib
    _TransferCut = OSError  # type: ignore[misc,assignment]

log = logging.getLogger(__name__)

STAR_USER = "star"
KOMMUNE_USER_RE = re.compile(r"^\d{3,4}$")
_READ_PERMS = "elr"


def ftp_password(user: str) -> str:
    """Deterministic password for ``user`` (used when no passwords file exists)."""
    return "dsdw-" + hashlib.sha256(f"dsdw-ftp/{user}".encode()).hexdigest()[:12]


def load_passwords(data_dir: Path) -> dict[str, str]:
    """Passwords from ``DIR/ftp_passwords.json`` if present, else {} (deterministic ones apply)."""
    path = Path(data_dir) / "ftp_passwords.json"
    if not path.is_file():
        return {}
    return {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


class _Authorizer(DummyAuthorizer):
    """Read-only users; kommune users are admitted on first login (any 3-4 digit code)."""

    def __init__(self, root: Path, passwords: dict[str, str]) -> None:
        super().__init__()
        self.root = str(root)
        self.passwords = passwords
        self.add_user(STAR_USER, self.password_for(STAR_USER), self.root, perm=_READ_PERMS)

    def password_for(self, user: str) -> str:
        return self.passwords.get(user) or ftp_password(user)

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        if not self.has_user(username) and KOMMUNE_USER_RE.match(username):
            self.add_user(username, self.password_for(username), self.root, perm=_READ_PERMS)
        if not self.has_user(username):
            raise AuthenticationFailed("Authentication failed.")
        super().validate_authentication(username, password, handler)


class _ReporterFS(AbstractedFS):
    """Hides other kommuners' files from a kommune user (star sees everything)."""

    def _kode(self) -> str | None:
        user = getattr(self.cmd_channel, "username", None)
        return None if user in (None, STAR_USER) else str(user)

    def _visible(self, name: str) -> bool:
        kode = self._kode()
        return kode is None or f"_{kode}_" in name

    def listdir(self, path: str) -> list[str]:
        return [n for n in super().listdir(path) if os.path.isdir(os.path.join(path, n)) or self._visible(n)]

    def listdirinfo(self, path: str) -> list[str]:
        return self.listdir(path)

    def validpath(self, path: str) -> bool:
        if not super().validpath(path):
            return False
        return os.path.isdir(path) or self._visible(os.path.basename(path))


class _CutProducer:
    """Wraps a file producer: delivers ``after_bytes`` bytes, then aborts the data connection."""

    def __init__(self, inner: Any, after_bytes: int) -> None:
        self.inner = inner
        self.remaining = max(0, after_bytes)

    def more(self) -> bytes:
        if self.remaining <= 0:
            err = _TransferCut(errno.ECONNRESET, "simulated disconnect")
            # pyftpdlib renders the reply from ``errno``; make it say what happened.
            err.errno = "Connection reset by peer (simulated disconnect)"  # type: ignore[assignment]
            raise err
        data = self.inner.more()
        data = data[: self.remaining]
        self.remaining -= len(data)
        return data


class _Handler(FTPHandler):
    faults: Faults
    banner = "dsdw simulated kommune FTP"
    auth_failed_timeout = 0.1  # pyftpdlib's 3 s anti-brute-force pause only slows tests down
    # sendfile() bypasses producers, which the disconnect fault relies on; speed is irrelevant here.
    use_sendfile = False

    def push_dtp_data(
        self, data: Any, isproducer: bool = False, file: Any = None, cmd: str | None = None
    ) -> None:
        if cmd == "RETR" and isproducer and file is not None:
            cut = self.faults.consume("ftp_disconnect", self.fs.fs2ftp(file.name))
            if cut is not None:
                data = _CutProducer(data, int(cut["after_bytes"]))
        super().push_dtp_data(data, isproducer=isproducer, file=file, cmd=cmd)


class FtpServer:
    """pyftpdlib server on its own IOLoop, driven from a background thread."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        passwords: dict[str, str] | None = None,
    ) -> None:
        # pyftpdlib installs a stderr INFO handler unless logging is configured; as a library
        # we leave logging to the application (records still propagate to the root logger).
        ftplog = logging.getLogger("pyftpdlib")
        if not ftplog.handlers:
            ftplog.addHandler(logging.NullHandler())
        self.root = Path(data_dir) / "ftp"
        self.root.mkdir(parents=True, exist_ok=True)
        self.faults = faults if faults is not None else Faults()
        self.authorizer = _Authorizer(
            self.root, passwords if passwords is not None else load_passwords(data_dir)
        )
        handler = type(
            "DsdwFTPHandler",
            (_Handler,),
            {"authorizer": self.authorizer, "faults": self.faults, "abstracted_fs": _ReporterFS},
        )
        self.server = FTPServer((host, port), handler, ioloop=IOLoop.factory())
        self.host, self.port = self.server.address
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dsdw-ftp", daemon=True)

    @property
    def user(self) -> str:
        return STAR_USER

    @property
    def password(self) -> str:
        return self.authorizer.password_for(STAR_USER)

    def password_for(self, user: str) -> str:
        """Password of ``user`` (``star`` or a kommunekode)."""
        return self.authorizer.password_for(user)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.server.ioloop.loop(timeout=0.05, blocking=False)
        finally:
            self.server.close_all()

    def start(self) -> FtpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop and close every connection (the loop thread closes its own sockets)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        else:
            self.server.close_all()


def start_ftp(
    data_dir: Path, host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None
) -> FtpServer:
    """Start the FTP server for ``DIR/ftp`` (port 0 = a free port)."""
    return FtpServer(data_dir, host, port, faults).start()
