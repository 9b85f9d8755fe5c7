"""The API's store of the published file (pipelines.api.store.Store) across the load's atomic swap."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pipelines.api.store import Store


def _publish(path: Path, value: int) -> None:
    """A published file holding ``value``, put in place by atomic rename as the load does."""
    nxt = path.with_name("next.duckdb")
    con = duckdb.connect(str(nxt))
    con.execute("CREATE TABLE t AS SELECT ? AS v", [value])
    con.close()
    os.replace(nxt, path)


def test_two_stores_of_one_file_in_one_process_both_read_the_swapped_file(tmp_path):
    """DuckDB caches one database instance per path in a process: a second store must not meet the first store's
    instance of the old file by the name of its hard link (both once numbered their links 1, 2, ... per store)."""
    served = tmp_path / "warehouse.duckdb"
    _publish(served, 1)
    first = Store(served)
    assert first.query("SELECT v FROM t")[1] == [(1,)]
    _publish(served, 2)
    second = Store(served)
    assert second.query("SELECT v FROM t")[1] == [(2,)]
    assert first.query("SELECT v FROM t")[1] == [(2,)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "the hard links are unlinked at once"
