"""File drop channel: atomic publishing, ``.done`` markers and broken-upload faults.

Portal exports (``DIR/portal``) and the UVM/SSI drops (``DIR/drops/uvm``,
``DIR/drops/ssi``) are plain directories: serving them means pointing the consumer at
the directory. A file counts as delivered only when its marker ``<name>.done`` exists
beside it; the simulator always writes the file before the marker, so a consumer that
trusts only marked files never reads a half-written one. The helpers here produce both
the well-behaved case and the failures (partial file, zero-byte file, growing ``.part``).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import BinaryIO

from pipelines.contracts.wire import MARKER_SUFFIX, PART_SUFFIX, marker_path
from pipelines.fsio import atomic_write_with, fsync_dir

from .faults import Faults


def complete_files(directory: Path, pattern: str = "*") -> list[Path]:
    """Files under ``directory`` (recursively) that carry a marker, sorted."""
    return sorted(
        p
        for p in Path(directory).rglob(pattern)
        if p.is_file() and not p.name.endswith((MARKER_SUFFIX, PART_SUFFIX)) and marker_path(p).is_file()
    )


def write_marker(path: Path) -> Path:
    """Write the (empty) ``.done`` marker for ``path`` durably; returns the marker path."""
    marker = marker_path(path)
    atomic_write_with(marker, lambda fh: None)
    return marker


def publish(src: Path, drop_dir: Path, name: str | None = None, faults: Faults | None = None) -> Path:
    """Deliver ``src`` into ``drop_dir``: temp file + fsync + rename, then the marker.

    If ``faults`` has ``partial_file`` armed (matched against the target file name), the
    delivery crashes instead: a partial (or zero-byte) file is left and no marker.
    Returns the delivered path.
    """
    src = Path(src)
    drop_dir = Path(drop_dir)
    drop_dir.mkdir(parents=True, exist_ok=True)
    target = drop_dir / (name or src.name)
    fault = faults.consume("partial_file", target.name) if faults is not None else None
    if fault is not None:
        size = src.stat().st_size
        nbytes = size // 2 if fault.get("nbytes") is None else min(int(fault["nbytes"]), size)
        with src.open("rb") as fh:
            head = fh.read(nbytes)
        marker_path(target).unlink(missing_ok=True)
        target.write_bytes(head)
        return target
    marker_path(target).unlink(missing_ok=True)  # a re-delivery is incomplete until re-marked

    def copy(fh: BinaryIO) -> None:
        with src.open("rb") as s:
            shutil.copyfileobj(s, fh)

    atomic_write_with(target, copy)
    write_marker(target)
    return target


def leave_partial(path: Path, nbytes: int) -> Path:
    """Simulate an upload that crashed after ``nbytes``: truncate ``path``, drop its marker."""
    path = Path(path)
    marker_path(path).unlink(missing_ok=True)
    with path.open("r+b") as fh:
        fh.truncate(max(0, nbytes))
    return path


def leave_zero_byte(path: Path) -> Path:
    """Simulate a crashed upload that left only an empty file (no marker)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    marker_path(path).unlink(missing_ok=True)
    path.write_bytes(b"")
    return path


def publish_slowly(
    src: Path,
    drop_dir: Path,
    chunk_bytes: int = 4096,
    interval: float = 0.05,
    marker: bool = True,
    name: str | None = None,
) -> threading.Thread:
    """Upload ``src`` as a growing ``<name>.part`` (one chunk per ``interval``), then rename.

    Models an FTP/SFTP upload in progress that a poller may observe half-way. Returns the
    started thread; join it to wait for completion (the marker follows if ``marker``).
    """
    src = Path(src)
    drop_dir = Path(drop_dir)
    drop_dir.mkdir(parents=True, exist_ok=True)
    target = drop_dir / (name or src.name)
    part = target.with_name(target.name + PART_SUFFIX)

    def run() -> None:
        with src.open("rb") as s, part.open("wb") as out:
            while chunk := s.read(chunk_bytes):
                out.write(chunk)
                out.flush()
                time.sleep(interval)
            os.fsync(out.fileno())
        os.replace(part, target)
        fsync_dir(drop_dir)
        if marker:
            write_marker(target)

    thread = threading.Thread(target=run, name=f"publish-slowly-{target.name}", daemon=True)
    thread.start()
    return thread
