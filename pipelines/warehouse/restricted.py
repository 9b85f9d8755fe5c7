"""The restricted zone's database: CPR <-> person_key and all health (SSI) facts.

At rest it is ``<root>/restricted/sealed/`` (age files of its chunks and their manifest, see
:mod:`pipelines.warehouse.sealed`; a root sealed before the chunks has one age file,
``restricted.duckdb.sealed``, read once and replaced by the next seal).  :func:`open_restricted` unseals it into a
private directory in memory, attaches it to a DuckDB connection as
``restricted`` and, when the block ends without error and ``write=True``,
checkpoints and seals it again; the plaintext is removed either way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb

from pipelines.warehouse.keys import load_key
from pipelines.warehouse.sealed import MANIFEST, seal_chunks, unseal_chunks, unseal_file


def sealed_path(root: Path) -> Path:
    """The directory the restricted database is sealed in (its chunks and their manifest)."""
    return Path(root) / "restricted" / "sealed"


def legacy_sealed_path(root: Path) -> Path:
    """The single age file a root sealed before the chunks (read if there is no manifest; removed by a seal)."""
    return Path(root) / "restricted" / "restricted.duckdb.sealed"


def sealed_files(root: Path) -> list[Path]:
    """Every file of the sealed restricted database (what is at rest)."""
    return sorted(p for p in (Path(root) / "restricted").rglob("*") if p.is_file())


def remove_sealed(root: Path) -> None:
    """Delete the sealed restricted database (a rebuild writes a new one)."""
    shutil.rmtree(sealed_path(root), ignore_errors=True)
    legacy_sealed_path(root).unlink(missing_ok=True)


PRIVATE_PREFIX = "dsdw-restricted-"


def _private_base() -> Path:
    """Where plaintext copies live: memory (``/dev/shm``) when there is one, else the temp directory."""
    shm = "/dev/shm"
    return Path(shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_plaintext(base: Path | None = None) -> list[Path]:
    """Remove the plaintext copies whose process is gone, and return them.

    Why: a load or delivery removes its copy when it ends, but a killed process (SIGKILL, out of memory, power
    cut of a container without a reboot) cannot, and the CPR map would stay in memory-backed files until the
    machine restarts. Each copy's directory is named after its process (``dsdw-restricted-<pid>-...``), so the next
    unseal removes those of processes that no longer exist (a reused pid keeps its directory: on the safe side)."""
    base = Path(base) if base is not None else _private_base()
    removed = []
    for d in base.glob(f"{PRIVATE_PREFIX}*-*"):
        pid = d.name[len(PRIVATE_PREFIX):].split("-", 1)[0]
        if d.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def _private_dir() -> Path:
    base = _private_base()
    remove_stale_plaintext(base)
    d = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-", dir=base))
    os.chmod(d, 0o700)
    return d


# free share of the file's blocks above which the database is rewritten before it is sealed
SPARSE = 0.25


def compact_if_sparse(plain: Path, sparse: float = SPARSE) -> bool:
    """Rewrite the DuckDB file ``plain`` without its free blocks when they are more than ``sparse`` of it.

    Why: the file is encrypted and decrypted whole every night, free blocks included. DuckDB reuses free
    blocks but does not give them back, so a dropped table or index (a model that became a view), or the
    nights' rewritten tables, would be sealed forever. ``COPY FROM DATABASE`` keeps tables, views, macros,
    indexes and keys. Returns whether it rewrote the file."""
    con = duckdb.connect(str(plain))
    try:
        total, free = con.execute("SELECT total_blocks, free_blocks FROM pragma_database_size() "
                                  "WHERE database_name = current_database()").fetchone()
    finally:
        con.close()
    if not total or free / total <= sparse:
        return False
    new = plain.with_name(plain.name + ".compact")
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH '{plain}' AS sparse (READ_ONLY)")
        con.execute(f"ATTACH '{new}' AS compact")
        con.execute("COPY FROM DATABASE sparse TO compact")
    finally:
        con.close()
    os.replace(new, plain)
    return True


@contextlib.contextmanager
def unsealed(root: Path, write: bool = False) -> Iterator[Path]:
    """Path of a plaintext copy of the restricted database, removed afterwards (with ``write``, compacted when
    sparse and sealed again first)."""
    key = load_key("restricted")
    src, legacy = sealed_path(root), legacy_sealed_path(root)
    tmp = _private_dir()
    plain = tmp / "restricted.duckdb"
    try:
        if (src / MANIFEST).exists():
            unseal_chunks(src, plain, key)
        elif legacy.exists():
            unseal_file(legacy, plain, key)
        yield plain
        if write and plain.exists():
            compact_if_sparse(plain)
            seal_chunks(plain, src, key)
            legacy.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def open_restricted(root: Path, con: duckdb.DuckDBPyConnection | None = None, write: bool = False
                    ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with the restricted database attached as ``restricted``."""
    own = con is None
    with unsealed(root, write=write) as plain:
        if own:
            con = duckdb.connect()
        assert con is not None
        con.execute(f"ATTACH '{plain}' AS restricted {'' if write else '(READ_ONLY)'}")
        try:
            yield con
            if write:
                con.execute("CHECKPOINT restricted")
        finally:
            con.execute("DETACH restricted")
            if own:
                con.close()
