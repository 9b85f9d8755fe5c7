"""`dsdw sql --format table|csv|json|markdown` and `--file`: the rows themselves, every one, in each format.

Top-level: it mirrors the top-level modules ``pipelines/cli.py`` (the command) and ``pipelines/sqlout.py``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

ROWS = [  # (kommunekode, navn, dato, fuldtidspersoner, antal, koder)
    ("101", "København", dt.date(2026, 10, 1), Decimal("1234.5"), 7, ["1", "2"]),
    ("147", 'Frederiksberg, "by" | C', dt.date(2026, 10, 2), Decimal("0.3"), None, []),
    ("860", None, None, None, 0, None),
]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """A published warehouse.duckdb with one small table of known values (commas, quotes, pipes, NULLs)."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE TABLE t (kommunekode VARCHAR, navn VARCHAR, dato DATE, fuldtidspersoner DECIMAL(12, 1), "
                "antal INTEGER, koder VARCHAR[])")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    con.execute("CREATE TABLE big AS SELECT range AS n, 'r' || range AS label FROM range(2500)")
    con.close()
    return tmp_path


def sql(root: Path, *args: str) -> str:
    res = CliRunner().invoke(app, ["sql", "--root", str(root), *args])
    assert res.exit_code == 0, res.output
    return res.stdout


Q = "SELECT * FROM t ORDER BY kommunekode"


def test_csv_has_a_header_and_every_value(root: Path) -> None:
    rows = list(csv.reader(io.StringIO(sql(root, "--format", "csv", Q))))
    assert rows == [
        ["kommunekode", "navn", "dato", "fuldtidspersoner", "antal", "koder"],
        ["101", "København", "2026-10-01", "1234.5", "7", '["1", "2"]'],
        ["147", 'Frederiksberg, "by" | C', "2026-10-02", "0.3", "", "[]"],
        ["860", "", "", "", "0", ""],
    ]


def test_json_is_one_array_of_objects_with_typed_values(root: Path) -> None:
    out = sql(root, "--format", "json", Q)
    assert json.loads(out) == [
        {"kommunekode": "101", "navn": "København", "dato": "2026-10-01", "fuldtidspersoner": 1234.5, "antal": 7,
         "koder": ["1", "2"]},
        {"kommunekode": "147", "navn": 'Frederiksberg, "by" | C', "dato": "2026-10-02", "fuldtidspersoner": 0.3,
         "antal": None, "koder": []},
        {"kommunekode": "860", "navn": None, "dato": None, "fuldtidspersoner": None, "antal": 0, "koder": None},
    ]
    assert len(out.strip().splitlines()) == 2 + len(ROWS)  # one row per line: line tools work on it too


def test_markdown_table_escapes_pipes_and_aligns_numbers(root: Path) -> None:
    lines = sql(root, "--format", "markdown", Q).splitlines()
    assert lines[0] == "| kommunekode | navn | dato | fuldtidspersoner | antal | koder |"
    assert lines[1] == "|---|---|---|---:|---:|---|"
    assert lines[2] == '| 101 | København | 2026-10-01 | 1234.5 | 7 | ["1", "2"] |'
    assert lines[3] == '| 147 | Frederiksberg, "by" \\| C | 2026-10-02 | 0.3 |  | [] |'
    assert len(lines) == 2 + len(ROWS)


def test_csv_and_json_stream_every_row_beyond_the_table_limit(root: Path) -> None:
    q = "SELECT n, label FROM big ORDER BY n"
    rows = list(csv.reader(io.StringIO(sql(root, "--format", "csv", "--max-rows", "5", q))))
    assert len(rows) == 2501 and rows[1] == ["0", "r0"] and rows[-1] == ["2499", "r2499"]
    data = json.loads(sql(root, "--format", "json", q))
    assert [d["n"] for d in data] == list(range(2500))
    table = sql(root, "--max-rows", "5", q)  # the default format: a table of the first rows, the total said
    assert "2500 rows (first 5 shown)" in " ".join(table.split())  # the caption wraps at the table's width
    assert "r4" in table and "r5" not in table


def test_query_from_a_file_and_from_stdin(root: Path, tmp_path: Path) -> None:
    f = tmp_path / "q.sql"
    f.write_text("-- fuldtidspersoner per kommune\nSELECT kommunekode, fuldtidspersoner FROM t\n"
                 "WHERE antal > 0 ORDER BY 1;\n", encoding="utf-8")
    assert sql(root, "--file", str(f), "--format", "csv") == "kommunekode,fuldtidspersoner\n101,1234.5\n"
    res = CliRunner().invoke(app, ["sql", "--root", str(root), "--file", "-", "--format", "csv"],
                             input="SELECT count(*) AS n FROM big")
    assert res.exit_code == 0 and res.stdout == "n\n2500\n"


def test_errors_go_to_stderr_with_exit_1(root: Path) -> None:
    res = CliRunner().invoke(app, ["sql", "--root", str(root), "--format", "csv", "SELECT * FROM nowhere"])
    assert res.exit_code == 1 and res.stdout == "" and "nowhere" in res.stderr
    res = CliRunner().invoke(app, ["sql", "--root", str(root), "--format", "xml", "SELECT 1"])
    assert res.exit_code != 0
    res = CliRunner().invoke(app, ["sql", "--root", str(root), "--file", "x.sql", "SELECT 1"])
    assert res.exit_code != 0
