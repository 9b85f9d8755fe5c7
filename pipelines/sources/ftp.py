"""FTP channel client: the kommuners chapter 11 files (``/<YYYY-MM-DD>/*.csv``).

Kommune FTP transfers break off now and then, and a half-downloaded file must never
look like a delivered one. So a file is downloaded to a hidden ``.<name>.part`` beside
its destination, resumed with ``REST`` after a disconnect (also across process
restarts: the ``.part`` survives), and only renamed to ``<name>`` once its size equals
the server's ``SIZE`` and its trailer ``TRAILER;<n>`` matches the data lines (§ 52,
stk. 4). A file that fails verification is discarded, so the next attempt starts clean.

Ingestion fetches with ``trailer=False`` and lets the parser judge the trailer: a file with a
wrong or missing trailer is then landed and rejected with its reason in the ledger, not lost.
:meth:`FtpClient.list_entries` lists everything a day directory offers (files of any name,
subdirectories, links), so every offered entry can be accounted for.
"""

from __future__ import annotations

import csv
import datetime as dt
import ftplib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pipelines.contracts.wire import FTP_DELIM, FTP_ENCODING, FTP_TRAILER
from pipelines.fsio import fsync_dir

from .errors import AuthError, RefusedError, SourceError, StillWrittenError, TrailerError
from .retry import RetryPolicy

__all__ = ["FtpClient", "RemoteFile", "count_trailer"]

_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Failures worth another attempt (with a fresh connection): network trouble, 4xx replies.
_TRANSIENT = (OSError, EOFError, ftplib.error_temp, ftplib.error_reply, ftplib.error_proto)
_BLOCK = 64 * 1024
T = TypeVar("T")


@dataclass(frozen=True)
class RemoteFile:
    """A file on the FTP server as listed: absolute ``path``, file ``name``, ``size`` in bytes."""

    path: str
    name: str
    size: int
    day: dt.date | None = None
    kind: str = "file"  # file | dir | other (as MLSD reports it)


class FtpClient:
    """ftplib client for the kommune FTP: listing, verified resumable downloads.

    Connects lazily and reconnects after any failure. ``max_retries`` bounds the
    consecutive failed attempts of one operation (a download attempt that made progress
    resets the count, so repeated disconnects still finish a large file).
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
    ) -> None:
        self.retry = RetryPolicy(max_retries=max_retries, backoff_base=backoff_base, backoff_max=backoff_max,
                                 sleep=sleep)
        self.host, self.port, self.user = host, port, user
        self._password = password
        self.timeout = timeout
        self._ftp: ftplib.FTP | None = None

    # --- connection

    def _connect(self) -> ftplib.FTP:
        ftp = ftplib.FTP(timeout=self.timeout, encoding="latin-1")
        try:
            ftp.connect(self.host, self.port, timeout=self.timeout)
            try:
                ftp.login(self.user, self._password)
            except ftplib.error_perm as exc:
                raise AuthError(f"FTP login refused: {exc}", channel="ftp", reporter=self.user,
                                server=f"{self.host}:{self.port}") from exc
        except BaseException:
            ftp.close()
            raise
        return ftp

    def _conn(self) -> ftplib.FTP:
        if self._ftp is None:
            self._ftp = self._connect()
        return self._ftp

    def _drop(self) -> None:
        """Forget the connection after a failure: its control channel state is unknown."""
        if self._ftp is not None:
            try:
                self._ftp.close()
            finally:
                self._ftp = None

    def close(self) -> None:
        """Say goodbye politely if possible, then close."""
        if self._ftp is not None:
            try:
                self._ftp.quit()
            except (*_TRANSIENT, ftplib.error_perm):
                pass
            self._drop()

    def __enter__(self) -> FtpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retrying(self, what: str, op: Callable[[ftplib.FTP], T], **context: object) -> T:
        try:
            return self.retry.call(lambda: op(self._conn()), retry_on=lambda e: isinstance(e, _TRANSIENT),
                                   on_failure=lambda _e: self._drop())
        except ftplib.error_perm as exc:
            raise SourceError(f"FTP {what} refused: {exc}", channel="ftp", reporter=self.user,
                              **context) from exc
        except _TRANSIENT as last:
            raise SourceError(f"FTP {what} failed after {self.retry.attempts} attempts", last_error=last,
                              channel="ftp", reporter=self.user, **context) from last

    # --- listing

    def list_files(self, day: dt.date | None = None) -> list[RemoteFile]:
        """The ``.csv`` files under ``/<day>/`` (all day directories if ``day`` is None), sorted.

        Hidden and ``.part`` files are not listed: they are uploads in progress.
        """
        days = [day] if day is not None else self._retrying("listing /", _list_days)
        out: list[RemoteFile] = []
        for d in days:
            entries = self._retrying(f"listing /{d.isoformat()}", lambda ftp, d=d: _list_day(ftp, d),
                                     dato=d)
            out.extend(entries)
        return sorted(out, key=lambda f: f.path)

    def list_days(self) -> list[dt.date]:
        """The day directories ``/<YYYY-MM-DD>/`` on the server, sorted."""
        return self._retrying("listing /", _list_days)

    def list_entries(self, day: dt.date, in_progress: list[str] | None = None) -> list[RemoteFile]:
        """Every entry of ``/<day>/`` except uploads in progress (hidden, ``.part``): any name, any type.

        ``in_progress``: if given, the names of the uploads in progress are added to it (ingestion
        records them ``ignored`` until they complete, and the day's reconciliation counts them).
        """
        directory = f"/{day.isoformat()}"
        seen: list[str] = []

        def op(ftp: ftplib.FTP) -> list[RemoteFile]:
            try:
                entries = _entries_all(ftp, directory)
            except ftplib.error_perm as exc:
                if str(exc).startswith("550"):
                    return []
                raise
            seen[:] = [name for name, _kind, _size in entries
                       if name not in (".", "..") and (name.startswith(".") or name.endswith(".part"))]
            return [RemoteFile(f"{directory}/{name}", name, size, day, kind) for name, kind, size in entries
                    if not name.startswith(".") and not name.endswith(".part") and name not in (".", "..")]

        out = sorted(self._retrying(f"listing {directory}", op, dato=day), key=lambda f: f.path)
        if in_progress is not None:
            in_progress += sorted(seen)
        return out

    # --- download

    def fetch(self, remote: RemoteFile, dest_dir: Path, *, trailer: bool = True, durable: bool = True) -> Path:
        """Download ``remote`` to ``dest_dir/<name>`` verified (size, trailer), atomically.

        Resumes a ``.<name>.part`` left by an earlier attempt. Raises :class:`TrailerError`
        if the trailer count is wrong or missing (when ``trailer``), :class:`SourceError` if
        the size changed since listing or the transfer keeps failing. ``durable=False`` skips the
        fsyncs: for a scratch copy whose bytes the caller lands (durably) itself.
        """
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        final = dest_dir / remote.name
        part = dest_dir / f".{remote.name}.part"
        ctx = {"channel": "ftp", "reporter": self.user, "dato": remote.day, "file": remote.path}
        failures = 0
        while True:
            before = _size(part)
            try:
                ftp = self._conn()
                ftp.voidcmd("TYPE I")  # SIZE/REST are refused in ASCII mode, where listings leave us
                size = ftp.size(remote.path)
                if size is None or size != remote.size:
                    part.unlink(missing_ok=True)
                    raise StillWrittenError(
                        f"size changed since listing: listed {remote.size} bytes, SIZE now {size}"
                        " (still being written?)", **ctx)
                if before > size:
                    part.unlink()
                    before = 0
                if size == 0:
                    part.write_bytes(b"")  # an empty file is a (rejected) delivery, not a missing .part
                if before < size:
                    with part.open("ab") as fh:
                        ftp.retrbinary(f"RETR {remote.path}", fh.write, blocksize=_BLOCK, rest=before or None)
                got = _size(part)
                if got == size:
                    break
                if got > size:
                    part.unlink(missing_ok=True)
                    raise SourceError(f"downloaded {got} bytes, more than SIZE {size}", **ctx)
                raise EOFError(f"transfer ended after {got} of {size} bytes")
            except ftplib.error_perm as exc:
                raise RefusedError(f"FTP refused {remote.path}: {exc}", **ctx) from exc
            except _TRANSIENT as exc:
                self._drop()
                failures = 0 if _size(part) > before else failures + 1
                if failures > self.retry.max_retries:
                    raise SourceError(
                        f"download failed: {failures} attempts in a row without progress "
                        f"({_size(part)} of {remote.size} bytes)", last_error=exc, **ctx) from exc
                # a download that made progress starts its failure count again (resume with REST)
                self.retry.sleep(self.retry.backoff(failures - 1))
        if trailer:
            expected, actual = count_trailer(part)
            if expected != actual:
                part.unlink(missing_ok=True)
                what = "no trailer line" if expected is None else f"trailer says {expected}"
                raise TrailerError(f"{remote.name}: {what}, file has {actual} data lines",
                                   expected=expected, actual=actual, **ctx)
        if durable:
            _fsync_file(part)
        os.replace(part, final)
        if durable:
            fsync_dir(dest_dir)
        return final


def count_trailer(path: Path) -> tuple[int | None, int]:
    """(trailer count or None if there is no trailer, number of data records) of a chapter 11 CSV.

    Records are counted as CSV records (a quoted field may span lines), blank lines ignored;
    the header and the trailer are not data.
    """
    rows = 0
    last: list[str] | None = None
    with Path(path).open(encoding=FTP_ENCODING, newline="") as fh:
        try:
            for row in csv.reader(fh, delimiter=FTP_DELIM):
                if not row or row == [""]:
                    continue
                rows += 1
                last = row
        except csv.Error as exc:
            raise TrailerError(f"{Path(path).name}: unreadable as CSV ({exc})", expected=None, actual=rows,
                               file=str(path)) from exc
    if last is not None and len(last) == 2 and last[0] == FTP_TRAILER and last[1].isdigit():
        return int(last[1]), max(0, rows - 2)
    return None, max(0, rows - 1)


def _list_days(ftp: ftplib.FTP) -> list[dt.date]:
    days = []
    for name in _names(ftp, "/", want_dirs=True):
        if _DAY_RE.match(name):
            try:
                days.append(dt.date.fromisoformat(name))
            except ValueError:
                continue
    return sorted(days)


def _list_day(ftp: ftplib.FTP, day: dt.date) -> list[RemoteFile]:
    directory = f"/{day.isoformat()}"
    try:
        entries = _entries(ftp, directory)
    except ftplib.error_perm as exc:
        if str(exc).startswith("550"):
            return []  # no directory for that day (yet): nothing delivered
        raise
    return [
        RemoteFile(path=f"{directory}/{name}", name=name, size=size, day=day)
        for name, size in entries
        if name.endswith(".csv") and not name.startswith(".")
    ]


def _entries(ftp: ftplib.FTP, directory: str) -> list[tuple[str, int]]:
    """(name, size) of the plain files in ``directory``: MLSD, or NLST + SIZE if unsupported."""
    try:
        return [
            (name, int(facts["size"]))
            for name, facts in ftp.mlsd(directory, facts=["type", "size"])
            if facts.get("type") == "file" and "size" in facts
        ]
    except ftplib.error_perm as exc:
        if not str(exc).startswith(("500", "501", "502", "504")):
            raise
    out = []
    names = ftp.nlst(directory)
    ftp.voidcmd("TYPE I")  # NLST switched to ASCII; SIZE needs binary
    for entry in names:
        name = entry.rsplit("/", 1)[-1]
        try:
            size = ftp.size(f"{directory}/{name}")
        except ftplib.error_perm:
            continue  # a directory, or gone meanwhile
        if size is not None:
            out.append((name, size))
    return out


def _entries_all(ftp: ftplib.FTP, directory: str) -> list[tuple[str, str, int]]:
    """(name, kind, size) of every entry in ``directory``: MLSD, or NLST + SIZE if unsupported."""
    try:
        out = []
        for name, facts in ftp.mlsd(directory, facts=["type", "size"]):
            kind = facts.get("type", "other")
            if kind in ("cdir", "pdir"):
                continue
            out.append((name, kind if kind in ("file", "dir") else "other", int(facts.get("size", 0) or 0)))
        return out
    except ftplib.error_perm as exc:
        if not str(exc).startswith(("500", "501", "502", "504")):
            raise
    out = []
    names = ftp.nlst(directory)
    ftp.voidcmd("TYPE I")
    for entry in names:
        name = entry.rsplit("/", 1)[-1]
        try:
            size = ftp.size(f"{directory}/{name}")
        except ftplib.error_perm:
            out.append((name, "dir", 0))
            continue
        out.append((name, "file", size or 0))
    return out


def _names(ftp: ftplib.FTP, directory: str, *, want_dirs: bool) -> list[str]:
    try:
        return [n for n, f in ftp.mlsd(directory, facts=["type"]) if (f.get("type") == "dir") == want_dirs]
    except ftplib.error_perm as exc:
        if not str(exc).startswith(("500", "501", "502", "504")):
            raise
    return [e.rsplit("/", 1)[-1] for e in ftp.nlst(directory)]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())
