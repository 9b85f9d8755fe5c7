"""The person tables sorted by person_key (pipelines/warehouse/clustering.py): what a sort keeps, when a table is
due, and that a lookup then reads one row group of the sorted part plus the tail, not the table."""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pytest

from pipelines.warehouse import clustering as C

D1, D2, D3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)
ROWS = 400_000  # > 3 row groups of 122,880


def _fact(con: duckdb.DuckDBPyConnection) -> None:
    """fct_kontaktgruppe-shaped: 64-character hex pseudonyms of 50,000 persons in load order, not person order."""
    con.execute(f"""CREATE TABLE fct_kontaktgruppe AS
        SELECT sha256(CAST(i % 50000 AS VARCHAR)) AS person_key, 'kg-' || i AS kontaktgruppe_id,
               CAST(i % 98 AS VARCHAR) AS kommunekode, DATE '2021-10-01' + CAST(i // 250 AS INTEGER) AS indlaest_dato
        FROM range({ROWS}) r(i) ORDER BY i""")
    con.execute("UPDATE fct_kontaktgruppe SET indlaest_dato = LEAST(indlaest_dato, DATE '2026-10-01')")
    con.execute("COMMENT ON TABLE fct_kontaktgruppe IS 'a note'")


def _row_groups_read(con: duckdb.DuckDBPyConnection, person: str) -> tuple[int, int]:
    plan = con.execute(f"EXPLAIN ANALYZE SELECT * FROM fct_kontaktgruppe WHERE person_key = '{person}'"
                       ).fetchall()[0][1]
    m = re.search(r"Row Groups Scanned: (\d+) / (\d+)", plan)
    assert m, plan
    return int(m.group(1)), int(m.group(2))


def _descents(con: duckdb.DuckDBPyConnection) -> int:
    """Where the stored order steps back in person_key: 0 = one sorted run, n = n + 1 runs (or no order)."""
    return con.execute("SELECT count(*) FROM (SELECT person_key < lag(person_key) OVER (ORDER BY rowid) AS ned "
                       "FROM fct_kontaktgruppe) WHERE ned").fetchone()[0]


def _stored_in_person_order(con: duckdb.DuckDBPyConnection) -> bool:
    return _descents(con) == 0


def _comment(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'fct_kontaktgruppe'").fetchone()[0]


def test_a_sort_keeps_the_rows_and_a_lookup_reads_one_row_group(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _fact(con)
    con.execute("CREATE TABLE before AS SELECT * FROM fct_kontaktgruppe")
    person = con.execute("SELECT sha256('4711')").fetchone()[0]
    con.execute("CHECKPOINT")
    read, total = _row_groups_read(con, person)
    assert read == total >= 4 and not _stored_in_person_order(con)  # unsorted: every row group read

    done = C.sort_by_person(con, D1)
    assert [(s.table, s.rows, s.tail, s.how) for s in done] == [("fct_kontaktgruppe", ROWS, None, "whole")]
    con.execute("CHECKPOINT")
    assert _stored_in_person_order(con)
    assert con.execute("SELECT count(*) FROM ((SELECT * FROM before EXCEPT ALL SELECT * FROM fct_kontaktgruppe) "
                       "UNION ALL (SELECT * FROM fct_kontaktgruppe EXCEPT ALL SELECT * FROM before))").fetchone()[0] == 0
    assert _comment(con) == f"a note; person_key_sorted: {D1}; person_key_runs: 0"
    read, total = _row_groups_read(con, person)
    assert read <= 2 and total >= 4
    assert con.execute("SELECT count(*) FROM fct_kontaktgruppe WHERE person_key = ?", [person]).fetchone()[0] == 8

    # a night's rows go to the end: below the threshold the table stays as it is, and a lookup reads the tail too
    con.execute("""INSERT INTO fct_kontaktgruppe SELECT sha256(CAST(i * 7 % 50000 AS VARCHAR)), 'ny-' || i, '101',
                   DATE '2026-10-02' FROM range(130000) r(i)""")
    assert C.sort_by_person(con, D2) == []  # 130,000 <= max(250,000, 1 % of the rows)
    con.execute("CHECKPOINT")
    read, total = _row_groups_read(con, person)
    assert read >= 3 and not _stored_in_person_order(con)
    # past it (here: a tail over 1,000 rows and 1 % of the table) the tail alone becomes a second sorted run
    done = C.sort_by_person(con, D3, tail_min=1000)
    assert [(s.table, s.rows, s.tail, s.how) for s in done] == [("fct_kontaktgruppe", ROWS + 130000, 130000, "tail")]
    con.execute("CHECKPOINT")
    assert _descents(con) == 1  # two runs, each in person order
    assert C.sorted_on(_comment(con)) == D3 and C.runs_of(_comment(con)) == 1
    read, total = _row_groups_read(con, person)
    assert read <= 4  # one or two row groups of each run
    assert con.execute("SELECT count(*) FROM fct_kontaktgruppe WHERE person_key = ?", [person]).fetchone()[0] == 8 + 3
    assert con.execute("SELECT count(*) FROM ((SELECT kontaktgruppe_id FROM fct_kontaktgruppe) EXCEPT ALL "
                       "(SELECT kontaktgruppe_id FROM before UNION ALL SELECT 'ny-' || i FROM range(130000) r(i)))"
                       ).fetchone()[0] == 0 and con.execute("SELECT count(*) FROM fct_kontaktgruppe").fetchone()[0] \
        == ROWS + 130000
    # an older build's person_key index does not stop a sort (it is dropped: the sort replaces it); forced: whole
    con.execute("CREATE INDEX fct_kontaktgruppe__person_key ON fct_kontaktgruppe (person_key)")
    assert [s.how for s in C.sort_by_person(con, D3, force=True)] == ["whole"]
    assert con.execute("SELECT count(*) FROM duckdb_indexes()").fetchone()[0] == 0
    assert _stored_in_person_order(con) and C.runs_of(_comment(con)) == 0
    con.close()


def test_the_runs_are_merged_by_a_whole_sort_at_max_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "MAX_RUNS", 3)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _fact(con)
    hows = []
    for k, day in enumerate((D1, D2, D3, D3 + dt.timedelta(days=1)), start=1):
        con.execute(f"""INSERT INTO fct_kontaktgruppe SELECT sha256(CAST(i * {k + 2} % 50000 AS VARCHAR)), 'n{k}-' || i,
                        '101', DATE '{day}' + 1 FROM range(5000) r(i)""")
        hows += [(s.how, C.runs_of(_comment(con))) for s in C.sort_by_person(con, day + dt.timedelta(days=1),
                                                                           tail_min=1000)]
    # never sorted: whole; then two tail runs; the third would make MAX_RUNS runs: whole again
    assert hows == [("whole", 0), ("tail", 1), ("tail", 2), ("whole", 0)]
    assert _stored_in_person_order(con)
    con.close()


@pytest.mark.parametrize(("rows", "tail", "runs", "want"), [
    (100_000, None, 0, None),            # a row group or two: nothing to skip, never sorted
    (1_000_000, None, 0, "whole"),       # never sorted (a new table, a full refresh)
    (1_000_000, 240_000, 0, None),       # under TAIL_MIN
    (1_000_000, 260_000, 0, "tail"),     # the tail becomes a sorted run
    (1_000_000, 260_000, 15, "whole"),   # it would be the 16th run: the whole table in one
    (100_000_000, 900_000, 3, None),     # under 1 % of the table
    (100_000_000, 1_100_000, 3, "tail"),
])
def test_how_a_table_is_sorted_follows_its_tail_and_runs(rows, tail, runs, want):
    assert C.due(rows, tail, runs) == want


def test_the_sorted_tables_are_the_analysts_person_facts_and_the_panel():
    tables = C.person_sorted_tables()
    assert "fct_kontaktgruppe" in tables and "fct_person_week" in tables and "fct_joblog_jobsoegning" in tables
    assert not [t for t in tables if t.startswith("fct_ssi_")]  # the restricted facts: no person lookups
    assert "fct_stillingsopslag" not in tables  # no person in it


def test_a_sort_that_runs_out_of_memory_leaves_the_table_as_it_was(tmp_path, caplog):
    """A night's load is not lost for its maintenance step: the sort is one statement, so the table keeps its rows
    and order, gets no mark, and the next load tries again."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _fact(con)
    con.execute("CREATE TABLE before AS SELECT * FROM fct_kontaktgruppe")
    con.execute("SET temp_directory = ''")  # nowhere to spill
    con.execute("SET memory_limit = '8MB'")
    with caplog.at_level("WARNING", logger="pipelines.warehouse.clustering"):
        assert C.sort_by_person(con, D1) == []
    assert "sorting fct_kontaktgruppe by person_key failed" in caplog.text
    con.execute("RESET memory_limit")
    assert _comment(con) == "a note"
    assert con.execute("SELECT count(*) FROM (SELECT * FROM before EXCEPT ALL SELECT * FROM fct_kontaktgruppe)"
                       ).fetchone()[0] == 0 and not _stored_in_person_order(con)
    assert [s.table for s in C.sort_by_person(con, D2)] == ["fct_kontaktgruppe"]  # the next load
    con.close()
