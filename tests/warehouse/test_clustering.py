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


def _stored_in_person_order(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("SELECT count(*) FROM (SELECT person_key < lag(person_key) OVER (ORDER BY rowid) AS ned "
                       "FROM fct_kontaktgruppe) WHERE ned").fetchone()[0] == 0


def test_a_sort_keeps_the_rows_and_a_lookup_reads_one_row_group(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _fact(con)
    con.execute("CREATE TABLE before AS SELECT * FROM fct_kontaktgruppe")
    person = con.execute("SELECT sha256('4711')").fetchone()[0]
    con.execute("CHECKPOINT")
    read, total = _row_groups_read(con, person)
    assert read == total >= 4 and not _stored_in_person_order(con)  # unsorted: every row group read

    done = C.sort_by_person(con, D1)
    assert [(s.table, s.rows, s.tail) for s in done] == [("fct_kontaktgruppe", ROWS, None)]  # never sorted: due
    con.execute("CHECKPOINT")
    assert _stored_in_person_order(con)
    assert con.execute("SELECT count(*) FROM ((SELECT * FROM before EXCEPT ALL SELECT * FROM fct_kontaktgruppe) "
                       "UNION ALL (SELECT * FROM fct_kontaktgruppe EXCEPT ALL SELECT * FROM before))").fetchone()[0] == 0
    assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'fct_kontaktgruppe'").fetchone()[0] \
        == f"a note; person_key_sorted: {D1}"
    read, total = _row_groups_read(con, person)
    assert read <= 2 and total >= 4
    assert con.execute("SELECT count(*) FROM fct_kontaktgruppe WHERE person_key = ?", [person]).fetchone()[0] == 8

    # a night's rows go to the end: below the threshold the table stays as it is, and a lookup reads the tail too
    con.execute("""INSERT INTO fct_kontaktgruppe SELECT sha256(CAST(i * 7 % 50000 AS VARCHAR)), 'ny-' || i, '101',
                   DATE '2026-10-02' FROM range(20000) r(i)""")
    assert C.sort_by_person(con, D2) == []
    con.execute("CHECKPOINT")
    read, total = _row_groups_read(con, person)
    assert read <= 3 and not _stored_in_person_order(con)
    # past it (here: a tail over 1,000 rows and 1 % of the table), sorted again and marked with that load
    done = C.sort_by_person(con, D3, share=0.01, tail_min=1000)
    assert [(s.table, s.rows, s.tail) for s in done] == [("fct_kontaktgruppe", ROWS + 20000, 20000)]
    assert _stored_in_person_order(con)
    assert C.sorted_on(con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'fct_kontaktgruppe'"
                                   ).fetchone()[0]) == D3
    assert con.execute("SELECT count(*) FROM fct_kontaktgruppe WHERE person_key = ?", [person]).fetchone()[0] == 9
    # an older build's person_key index does not stop a sort (it is dropped: the sort replaces it)
    con.execute("CREATE INDEX fct_kontaktgruppe__person_key ON fct_kontaktgruppe (person_key)")
    assert len(C.sort_by_person(con, D3, force=True)) == 1
    assert con.execute("SELECT count(*) FROM duckdb_indexes()").fetchone()[0] == 0
    con.close()


@pytest.mark.parametrize(("rows", "tail", "want"), [
    (100_000, None, False),        # a row group or two: nothing to skip, never sorted
    (1_000_000, None, True),       # never sorted (a new table, a full refresh)
    (1_000_000, 240_000, False),   # under TAIL_MIN
    (1_000_000, 260_000, True),
    (20_000_000, 900_000, False),  # under 5 % of the table
    (20_000_000, 1_100_000, True),
])
def test_a_table_is_due_when_its_tail_passes_the_threshold(rows, tail, want):
    assert C.due(rows, tail) is want


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
    assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'fct_kontaktgruppe'"
                       ).fetchone()[0] == "a note"
    assert con.execute("SELECT count(*) FROM (SELECT * FROM before EXCEPT ALL SELECT * FROM fct_kontaktgruppe)"
                       ).fetchone()[0] == 0 and not _stored_in_person_order(con)
    assert [s.table for s in C.sort_by_person(con, D2)] == ["fct_kontaktgruppe"]  # the next load
    con.close()
