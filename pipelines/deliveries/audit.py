"""The append-only audit log of deliveries: what went to whom, when, under which §, from which load.

``<root>/deliveries/audit.jsonl``: one JSON object per line, each carrying
``prev_sha256`` (the previous entry's ``sha256``; 64 zeros for the first) and
its own ``sha256`` over its canonical JSON without that field, so editing,
deleting or reordering any entry breaks the chain at that point.
``audit.head`` (seq and sha256 of the last entry, replaced atomically after
each append) makes cutting entries off the end detectable as well.  Writers
serialise on an exclusive lock; every append is fsynced.  The chain protects
against silent edits, not against someone rewriting log and head together:
for that, ship the head hash elsewhere (e.g. a WORM store or the
recipient's receipt); each entry records its manifest's sha256.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.fsio import atomic_write, fsync_dir

GENESIS = "0" * 64


def audit_dir(root: Path) -> Path:
    return Path(root) / "deliveries"


def audit_path(root: Path) -> Path:
    return audit_dir(root) / "audit.jsonl"


def head_path(root: Path) -> Path:
    return audit_dir(root) / "audit.head"


def _canonical(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def entry_hash(entry: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in entry.items() if k != "sha256"})).hexdigest()


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    d = audit_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "audit.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(root: Path) -> list[str]:
    p = audit_path(root)
    if not p.exists():
        return []
    return p.read_text(encoding="utf-8").splitlines()


def append(root: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Append one delivery to the log (chained, fsynced); returns the entry as written."""
    with _locked(root):
        lines = _read(root)
        prev = json.loads(lines[-1]) if lines else None
        entry = {"seq": (prev["seq"] + 1) if prev else 1, **record,
                 "prev_sha256": prev["sha256"] if prev else GENESIS}
        entry["sha256"] = entry_hash(entry)
        path = audit_path(root)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, _canonical(entry) + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(path.parent)
        atomic_write(head_path(root), f"{entry['seq']} {entry['sha256']}\n".encode("ascii"))
    return entry


def list_deliveries(root: Path) -> list[dict[str, Any]]:
    """Every logged delivery, oldest first (what went to whom and when)."""
    return [json.loads(line) for line in _read(root) if line.strip()]


@dataclass
class AuditVerification:
    ok: bool
    entries: int
    problems: list[str] = field(default_factory=list)


def verify_audit(root: Path) -> AuditVerification:
    """Check the hash chain and the head; every break is reported with its line number."""
    lines = _read(root)
    problems: list[str] = []
    prev_hash, prev_seq = GENESIS, 0
    for no, line in enumerate(lines, start=1):
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"line {no}: not JSON")
            prev_hash, prev_seq = None, prev_seq + 1
            continue
        if e.get("sha256") != entry_hash(e):
            problems.append(f"line {no} (seq {e.get('seq')}): content does not match its sha256 (entry edited)")
        if prev_hash is not None and e.get("prev_sha256") != prev_hash:
            problems.append(f"line {no} (seq {e.get('seq')}): prev_sha256 does not match the previous entry "
                            "(an entry was removed, inserted or reordered)")
        if e.get("seq") != prev_seq + 1:
            problems.append(f"line {no}: seq {e.get('seq')} follows {prev_seq}")
        prev_hash, prev_seq = e.get("sha256"), e.get("seq", prev_seq + 1)
    head = head_path(root)
    if head.exists():
        try:
            seq_s, h = head.read_text(encoding="ascii").split()
            if (int(seq_s), h) != (prev_seq, prev_hash):
                problems.append(f"audit.head names entry {seq_s} {h[:12]}..., the log ends at {prev_seq} "
                                f"{(prev_hash or '?')[:12]}... (entries cut off or appended outside dsdw)")
        except ValueError:
            problems.append("audit.head is malformed")
    elif lines:
        problems.append("audit.head is missing")
    return AuditVerification(ok=not problems, entries=len(lines), problems=problems)
