"""SIGKILL at any point of a load, then a rerun, gives byte-identical lake, landing and ledger content."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

START = dt.date(2026, 10, 1)
RECEIVED_AT = "2026-10-03T02:00:00+02:00"


def load_cmd(root: Path, state: Path) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "load", "--from", "2026-10-01", "--to", "2026-10-02",
            "--root", str(root), "--sources", str(state), "--engine", "direct", "--received-at", RECEIVED_AT]


def files(root: Path) -> dict[str, str]:
    out = {}
    for sub in ("landing", "lake"):
        for p in sorted((root / sub).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def ledger_content(root: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(root / "ledger.sqlite")
    rel = str(root) + "/"
    out = {}
    for table, order in (("payloads", "channel, reporter, dataset, leveringsdato, source_name, version"),
                         ("cursors", "channel, reporter, dataset, leveringsdato"),
                         ("messages", "dataset, besked_id"), ("record_keys", "dataset, record_key")):
        rows = con.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
        out[table] = [tuple(v.replace(rel, "") if isinstance(v, str) else v for v in r) for r in rows]
    con.close()
    return out


def payload_count(root: Path) -> int:
    db = root / "ledger.sqlite"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(db, timeout=1)
        n = con.execute("SELECT count(*) FROM payloads").fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, serve_sources, tiny_lake: tuple[Path, Path], copy_tiny_lake):
    """(sources state, reference root): conftest's ``tiny_lake`` sources served, and its zones as the unbroken
    load to compare with (the same days, received at the same time: ``RECEIVED_AT`` is ``TINY_RECEIVED_AT``)."""
    base = tmp_path_factory.mktemp("crash")
    ref = copy_tiny_lake(base / "reference")
    with serve_sources(tiny_lake[0], base / "sources.json") as state:
        yield state, ref


@pytest.mark.parametrize("fraction", [0.15, 0.6])
def test_sigkill_then_rerun_is_byte_identical(served, tmp_path: Path, fraction: float) -> None:
    state, ref = served
    total = payload_count(ref)
    assert total > 100
    root = tmp_path / "killed"
    proc = subprocess.Popen(load_cmd(root, state), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while payload_count(root) < total * fraction and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the load finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < payload_count(root) < total
    subprocess.run(load_cmd(root, state), check=True, capture_output=True, timeout=300)
    assert files(root) == files(ref)
    assert ledger_content(root) == ledger_content(ref)
