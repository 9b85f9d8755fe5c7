"""The ledger's id tables (message ids, record keys): what a load inserts and a new version releases.

Issue 11 (speed): the id tables are WITHOUT ROWID and have no payload-id index, so a superseded
version's ids are deleted by primary key, read from its lake file, with a scan as the fallback. These
tests pin the data: after any supersession the tables hold exactly the ids of the loaded versions.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.contracts import get_contract, load_contracts
from pipelines.ingest import Zones, lake_ids
from pipelines.landing import Ledger, PayloadKey
from pipelines.landing.ledger import Ids, LoadCommit

START = dt.date(2026, 10, 1)
RECEIVED_AT = "2026-10-03T02:00:00+02:00"


def _ids(ledger: Ledger, table: str) -> set[tuple]:
    col = "besked_id" if table == "messages" else "record_key"
    return set(ledger.con.execute(f"SELECT dataset, {col}, payload_id FROM {table}"))


def _load(ledger: Ledger, name_bytes: bytes, msgs: list[str], keys: list[str], released=None):
    key = PayloadKey("portal", "013", "akasse_fravaer", START, "akasse_fravaer_013_20261001.csv")
    pid = name_bytes.hex().ljust(32, "0")[:32]
    reg = ledger.register(key, pid, pid * 2, len(name_bytes), Path("/landing") / pid, RECEIVED_AT)
    load = LoadCommit(reg.row, len(msgs), len(msgs), 0, f"/lake/{pid}.parquet",
                      [Ids("akasse_fravaer", pa.array(msgs), pa.array(range(1, len(msgs) + 1), pa.int64()))],
                      [Ids("akasse_fravaer", pa.array(keys))])
    return reg.row, ledger.commit_loads([load], released)[0]


def test_a_new_version_releases_exactly_the_old_ids_by_key(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    v1, _ = _load(ledger, b"v1", ["m1", "m2", "m3"], ["k1", "k2"])
    statements: list[str] = []
    ledger.con.set_trace_callback(statements.append)
    v2, old = _load(ledger, b"v2", ["m2", "m3", "m4"], ["k2"],
                    released=lambda row: (["m1", "m2", "m3"], ["k1", "k2"]) if row.payload_id == v1.payload_id
                    else None)
    ledger.con.set_trace_callback(None)
    assert old is not None and old.payload_id == v1.payload_id
    assert _ids(ledger, "messages") == {("akasse_fravaer", m, v2.payload_id) for m in ("m2", "m3", "m4")}
    assert _ids(ledger, "record_keys") == {("akasse_fravaer", "k2", v2.payload_id)}
    assert not [s for s in statements if "WHERE payload_id=" in s]  # by key, no scan


@pytest.mark.parametrize("reader", [None, lambda row: None, lambda row: (["m1"], ["k1"]),
                                    lambda row: (["m1", "m2", "m3", "zz"], ["k1", "k2"])],
                         ids=["no-reader", "unreadable", "fewer-ids", "foreign-id"])
def test_when_the_lake_file_does_not_name_the_ids_the_ledger_scans(tmp_path: Path, reader) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    _load(ledger, b"v1", ["m1", "m2", "m3"], ["k1", "k2"])
    v2, old = _load(ledger, b"v2", ["m3", "m4"], ["k3"], released=reader)
    assert old is not None
    assert _ids(ledger, "messages") == {("akasse_fravaer", m, v2.payload_id) for m in ("m3", "m4")}
    assert _ids(ledger, "record_keys") == {("akasse_fravaer", "k3", v2.payload_id)}


def test_a_batch_keeps_the_first_copy_of_an_id(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    rows = []
    for k, name in enumerate(("a", "b", "c")):
        key = PayloadKey("portal", "013", "akasse_fravaer", START, f"f{name}.csv")
        pid = f"{k}" * 32
        rows.append(ledger.register(key, pid, pid * 2, 1, Path("/l") / pid, RECEIVED_AT).row)
    loads = [LoadCommit(r, 2, 2, 0, "/lake", [Ids("akasse_fravaer", pa.array(ids), pa.array([1, 2], pa.int64()))],
                        []) for r, ids in zip(rows, (["z", "y"], ["y", "x"], ["x", "z"]), strict=True)]
    ledger.commit_loads(loads)
    got = {b: (p[0], n) for _, b, p, n in ledger.con.execute("SELECT * FROM messages")}
    assert got == {"z": ("0", 1), "y": ("0", 2), "x": ("1", 2)}


def test_an_older_ledger_gets_its_id_tables_rebuilt_without_rowid(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE messages (dataset TEXT NOT NULL, besked_id TEXT NOT NULL, payload_id TEXT NOT NULL,
                               record_no INTEGER NOT NULL, PRIMARY KEY (dataset, besked_id));
        CREATE TABLE record_keys (dataset TEXT NOT NULL, record_key TEXT NOT NULL, payload_id TEXT NOT NULL,
                                  PRIMARY KEY (dataset, record_key));
        INSERT INTO messages VALUES ('d', 'b2', 'p1', 2), ('d', 'b1', 'p1', 1), ('e', 'b1', 'p2', 7);
        INSERT INTO record_keys VALUES ('d', 'k1', 'p1');
    """)
    con.close()
    for _ in range(2):  # a second open finds nothing to do
        ledger = Ledger(path)
        sql = dict(ledger.con.execute("SELECT name, sql FROM sqlite_master WHERE type='table'"))
        assert "WITHOUT ROWID" in sql["messages"] and "WITHOUT ROWID" in sql["record_keys"]
        assert sorted(ledger.con.execute("SELECT * FROM messages")) == [
            ("d", "b1", "p1", 1), ("d", "b2", "p1", 2), ("e", "b1", "p2", 7)]
        assert list(ledger.con.execute("SELECT * FROM record_keys")) == [("d", "k1", "p1")]
        assert not [n for n in sql if n.endswith("_rowid")]
        ledger.close()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, copy_tiny_lake) -> Path:
    """Two tiny generated days of every channel loaded, 5 % defects (conftest ``tiny_lake``), copied: opening
    the ledger may write beside it."""
    return copy_tiny_lake(tmp_path_factory.mktemp("ids") / "zones")


def test_the_lake_file_names_every_id_the_ledger_holds_for_its_payload(loaded: Path) -> None:
    ledger = Ledger(loaded / "ledger.sqlite")
    rows = [r for r in ledger.rows() if r.status == "loaded" and r.rows_accepted]
    assert rows
    for r in rows:
        got = lake_ids(get_contract(r.key.dataset))(r)
        assert got is not None, r
        msgs, keys = got
        held = {b for (b,) in ledger.con.execute("SELECT besked_id FROM messages WHERE payload_id=?",
                                                 (r.payload_id,))}
        made = {k for (k,) in ledger.con.execute("SELECT record_key FROM record_keys WHERE payload_id=?",
                                                 (r.payload_id,))}
        assert sorted(msgs) == sorted(held) and len(msgs) == r.rows_accepted
        assert sorted(keys) == sorted(made)


def test_a_lake_file_that_lost_rows_names_no_ids(loaded: Path, tmp_path: Path) -> None:
    ledger = Ledger(loaded / "ledger.sqlite")
    r = next(r for r in ledger.rows() if r.status == "loaded" and (r.rows_accepted or 0) > 1)
    copy = tmp_path / "lake.parquet"
    shutil.copy(r.lake_path, copy)
    pq.write_table(pq.read_table(copy).slice(1), copy)
    assert lake_ids(get_contract(r.key.dataset))(replace(r, lake_path=str(copy))) is None
    assert lake_ids(get_contract(r.key.dataset))(replace(r, lake_path=str(tmp_path / "gone.parquet"))) is None


def test_units_start_longest_first(tmp_path: Path) -> None:
    """The pool starts the datasets that brought the most records on the latest earlier day first; without
    history the webservice extracts come before the file channels' daily files (each group by name)."""
    from pipelines.ingest import longest_first

    c = load_contracts()
    names = sorted(c)
    order = longest_first(names, START, Zones(tmp_path))
    ws = [n for n in names if c[n].channel == "webservice"]
    assert order == ws + [n for n in names if c[n].channel != "webservice"]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        for ds, day, n in (("sanktion", START - dt.timedelta(days=1), 900), ("samtale", START - dt.timedelta(days=1), 50),
                           ("samtale", START - dt.timedelta(days=2), 5000), ("plan", START, 10 ** 6)):
            key = PayloadKey(c[ds].channel, "101", ds, day, f"{ds}-{day}")
            ledger.con.execute(
                "INSERT INTO payloads (channel, reporter, dataset, leveringsdato, source_name, version, payload_id, "
                "sha256, bytes, received_at, status, landing_path, rows_read) VALUES (?,?,?,?,?,1,?,?,0,?,?,?,?)",
                (*key.as_tuple(), f"{ds}{day}", f"{ds}{day}", RECEIVED_AT, "loaded", "", n))
    finally:
        ledger.close()
    order = longest_first(names, START, Zones(tmp_path))
    # (the day itself does not count: plan's rows of START are not history)
    assert order[:2] == ["sanktion", "samtale"] and set(order) == set(names) and order[2:] == [
        n for n in ws + [n for n in names if c[n].channel != "webservice"] if n not in ("sanktion", "samtale")]
