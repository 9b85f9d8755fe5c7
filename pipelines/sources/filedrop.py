"""File drop channel client: pick up only files whose delivery is finished.

UVM and SSI drop files into directories and declare each one complete with a
``<name>.done`` marker written after it; a file without its marker may still be
uploading (or be the leftover of a crashed upload), so reading it would land a
truncated payload. The Arbejdsmarkedsportalen export has no markers: there a file
counts as complete once its size stopped changing. Each picked-up file comes with its
size and sha256, computed from the same read, so the ledger can detect re-deliveries.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines.contracts.wire import MARKER_SUFFIX, PART_SUFFIX, is_complete, marker_path

__all__ = ["DroppedFile", "complete_files", "portal_files", "wait_size_stable"]

_TEMP_SUFFIXES = (MARKER_SUFFIX, PART_SUFFIX, ".tmp", ".temp", ".partial", ".filepart", ".crdownload", "~")
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class DroppedFile:
    """A complete dropped file: ``name`` is its POSIX path relative to the drop directory."""

    path: Path
    name: str
    size: int
    sha256: str


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
        if path.is_file():
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
