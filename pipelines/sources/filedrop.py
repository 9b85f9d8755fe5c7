"""File drop channel client: pick up only files whose delivery is finished.

UVM and SSI drop files into directories and declare each one complete with a
``<name>.done`` marker written after it; a file without its marker may still be
uploading (or be the leftover of a crashed upload), so reading it would land a
truncated payload. The Arbejdsmarkedsportalen export has no markers: there a file
counts as complete once its size stopped changing. Each picked-up file comes with its
size and sha256, computed from the same read, so the ledger can detect re-deliveries.

Ingestion reads a day's drop folder with :func:`scan_day`, which never leaves the folder:
symbolic links, devices, FIFOs and sockets are reported (refused, with the reason), never
opened; files in subfolders are reported as refused (drop folders are flat); regular files
are opened with ``O_NOFOLLOW`` and checked to be regular on the open descriptor, so a
file swapped for a link between the listing and the read is refused too.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines.contracts.wire import MARKER_SUFFIX, PART_SUFFIX, is_complete, marker_path

from .retry import RetryPolicy

__all__ = ["DroppedFile", "Offer", "complete_files", "portal_files", "read_regular", "scan_day",
           "wait_size_stable"]

_TEMP_SUFFIXES = (MARKER_SUFFIX, PART_SUFFIX, ".tmp", ".temp", ".partial", ".filepart", ".crdownload", "~")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class DroppedFile:
    """A complete dropped file: ``name`` is its POSIX path relative to the drop directory."""

    path: Path
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Offer:
    """One entry a day's drop folder offers: a complete top-level file to read, or a refused entry.

    ``name`` is the path relative to the day folder (POSIX), exactly as on disk; ``kind`` is
    file, symlink, fifo, socket, device or other; ``refused`` says why it is not read as a
    payload (None for a complete regular file directly in the day folder).
    """

    path: Path
    name: str
    kind: str
    size: int
    refused: str | None = None


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "other"


def _in_progress(name: str) -> bool:
    """Hidden, temporary and marker files: the upload protocol's, not payloads."""
    return name.startswith(".") or name.endswith(_TEMP_SUFFIXES)


def _not_read(kind: str, path: Path) -> str:
    if kind == "symlink":
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return f"symbolic link (to {target!r}): a drop folder is never left, links are not followed; not read"
    return f"not a regular file ({kind}): not read"


def scan_day(day_dir: Path, *, markers: bool, interval: float = 0.2, sleep: Callable[[float], None] = time.sleep,
             max_depth: int = 4, in_progress: list[str] | None = None) -> list[Offer]:
    """Everything a day's drop folder offers, without following a link or recursing into the read set.

    ``markers``: a top-level file is offered once its ``.done`` marker exists (UVM, SSI); without
    markers (the portal) once its size and mtime are the same in two looks ``interval`` apart.
    Uploads in progress (hidden, temporary, unmarked or still growing files) are not offered yet.
    Entries in subfolders (up to ``max_depth``) are offered as refused: drop folders are flat.
    ``in_progress``: if given, the names of the entries not offered yet are added to it (the day's
    reconciliation lists them, so a file that never completes is seen, not silently left).
    """
    day_dir = Path(day_dir)
    try:
        top = os.lstat(day_dir)
    except FileNotFoundError:
        return []
    if not stat.S_ISDIR(top.st_mode):
        kind = _kind(top.st_mode)
        return [Offer(day_dir, ".", kind, 0, f"the day folder itself is a {kind}: " + _not_read(kind, day_dir))]
    out: list[Offer] = []
    waiting: dict[str, tuple[int, int]] = {}

    def walk(directory: Path, rel: str, depth: int) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            out.append(Offer(directory, rel or ".", "directory", 0, f"folder cannot be listed: {exc}"))
            return
        for e in entries:
            name = f"{rel}/{e.name}" if rel else e.name
            if _in_progress(e.name):
                if in_progress is not None and not e.name.endswith(MARKER_SUFFIX):
                    in_progress.append(name)
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            kind = _kind(st.st_mode)
            path = Path(e.path)
            if kind == "directory":
                if depth >= max_depth:
                    out.append(Offer(path, name, kind, 0, f"subfolder nested deeper than {max_depth}: not read"))
                else:
                    walk(path, name, depth + 1)
                continue
            if kind != "file":
                out.append(Offer(path, name, kind, 0, _not_read(kind, path)))
                continue
            if st.st_nlink > 1:
                out.append(Offer(path, name, "hardlink", st.st_size, f"hard link ({st.st_nlink} names for one "
                                 "file): it may be a file outside the drop folder; not read"))
                continue
            if rel:
                out.append(Offer(path, name, kind, st.st_size, "file in a subfolder of the day folder: drop "
                                 "folders are flat (files are named <dataset>[_<reporter>]_<YYYYMMDD>); not loaded"))
                continue
            if markers:
                if not marker_path(path).exists():
                    if in_progress is not None:
                        in_progress.append(name)
                    continue  # upload not finished
                out.append(Offer(path, name, kind, st.st_size))
            else:
                waiting[name] = (st.st_size, st.st_mtime_ns)
                out.append(Offer(path, name, kind, st.st_size))

    walk(day_dir, "", 0)
    if waiting:
        sleep(interval)
        keep = []
        for o in out:
            if o.name in waiting and o.refused is None:
                try:
                    st = os.lstat(o.path)
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) != waiting[o.name]:
                    if in_progress is not None:
                        in_progress.append(o.name)
                    continue  # still growing or replaced: taken next time
            keep.append(o)
        out = keep
    return sorted(out, key=lambda o: o.name)


_os_read = os.read  # (a test hook: a reporter writing the file while we read it)
READ_ATTEMPTS = 3
READ_BACKOFF = 0.05  # seconds: a writer that is nearly done gets a moment to finish


class FileChanged(OSError):
    """The file changed while it was read, on every attempt: taken on a later run, never torn."""


def read_regular(path: Path, attempts: int = READ_ATTEMPTS) -> bytes:
    """The bytes of ``path`` if it is a regular file; never follows a link, never opens a FIFO or device.

    The bytes are returned only if the file held still while it was read (size and mtime the same
    before and after, and as many bytes read as it holds); else it is read again under the channels'
    one retry policy (:class:`~pipelines.sources.retry.RetryPolicy`), ``attempts`` reads in all, then
    :class:`FileChanged` is raised.  A file that is not regular is refused at once (never retried).
    """
    seen: list[str] = []

    def read_once() -> bytes:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(f"{path}: {_kind(st.st_mode)}, not a regular file")
            chunks = []
            while chunk := _os_read(fd, _CHUNK):
                chunks.append(chunk)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns) == (len(data), st.st_mtime_ns):
            return data
        seen.append(f"{st.st_size} -> {after.st_size} bytes, {len(data)} read"
                    + (", modified meanwhile" if after.st_mtime_ns != st.st_mtime_ns else ""))
        raise FileChanged(f"{Path(path).name}: changed while being read, {len(seen)} times ({'; '.join(seen)}): "
                          "still being written; taken on a later run once it holds still")

    policy = RetryPolicy(max_retries=attempts - 1, backoff_base=READ_BACKOFF, backoff_max=4 * READ_BACKOFF)
    return policy.call(read_once, retry_on=lambda exc: isinstance(exc, FileChanged))


def complete_files(drop_dir: Path, *, since: set[str] | None = None) -> list[DroppedFile]:
    """Files under ``drop_dir`` (recursively) that carry a ``.done`` marker, sorted by name.

    In-progress uploads (``.part``, temp and hidden files) and files without a marker,
    such as the zero-byte file of a crashed upload, are skipped. ``since`` holds the
    relative names already taken, which are skipped without hashing them again.
    """
    out = []
    for path in _candidates(Path(drop_dir), "*", since):
        if not is_complete(path):
            continue
        picked = _pick(path, Path(drop_dir))
        if picked is not None:
            out.append(picked)
    return out


def portal_files(
    portal_dir: Path,
    *,
    since: set[str] | None = None,
    interval: float = 0.2,
    pattern: str = "*.csv",
    sleep: Callable[[float], None] = time.sleep,
) -> list[DroppedFile]:
    """Arbejdsmarkedsportalen export files (``<portal_dir>/<date>/*.csv``) that are complete.

    The portal writes no markers, so a file counts as complete when it is non-empty and
    its size and mtime are the same in two checks ``interval`` seconds apart (one wait
    for the whole directory). A file that does carry a marker is taken at once.
    """
    portal_dir = Path(portal_dir)
    candidates = list(_candidates(portal_dir, pattern, since))
    first = {p: _stamp(p) for p in candidates if not marker_path(p).is_file()}
    if first:
        sleep(interval)
    out = []
    for path in candidates:
        if path in first:
            stamp = first[path]
            if stamp is None or stamp[0] == 0 or _stamp(path) != stamp:
                continue  # missing, empty (a crashed export) or still growing
        picked = _pick(path, portal_dir)
        if picked is not None:
            out.append(picked)
    return out


def wait_size_stable(
    path: Path,
    interval: float = 0.2,
    checks: int = 2,
    *,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """True when ``path`` is non-empty and unchanged (size, mtime) over ``checks`` looks ``interval`` apart.

    For drops without markers. Without ``timeout`` it looks ``checks`` times and answers;
    with ``timeout`` it keeps watching until the file is stable or the time is up.
    """
    if checks < 2:
        raise ValueError("checks must be >= 2")
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = [_stamp(path)]
    while True:
        if len(seen) >= checks:
            window = seen[-checks:]
            if window[0] is not None and window[0][0] > 0 and all(s == window[0] for s in window):
                return True
            if deadline is None or time.monotonic() >= deadline:
                return False
        sleep(interval)
        seen.append(_stamp(path))


def _candidates(root: Path, pattern: str, since: set[str] | None) -> Iterable[Path]:
    """Regular, visible, non-temporary files under ``root`` not yet taken, in name order."""
    if not root.is_dir():
        return []
    found = []
    for path in root.rglob(pattern):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.name.endswith(_TEMP_SUFFIXES):
            continue
        if since and rel.as_posix() in since:
            continue
        if path.is_symlink() or not path.is_file():
            continue  # links are never followed out of a drop folder; FIFOs and devices are not files
        if any((root / p).is_symlink() for p in rel.parents if p != Path(".")):
            continue
        found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def _pick(path: Path, root: Path) -> DroppedFile | None:
    """Hash ``path``; None if it vanished or changed while being read (taken next time)."""
    before = _stamp(path)
    if before is None:
        return None
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return None
    if _stamp(path) != before or size != before[0]:
        return None
    name = path.relative_to(root).as_posix()
    return DroppedFile(path=path, name=name, size=size, sha256=digest.hexdigest())
