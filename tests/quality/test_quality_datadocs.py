"""GX Data Docs for a delivery day: a file context under <root>/gx/, one validation page per
suite, and no CPR number anywhere in what GX writes (results keep counts, not values)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from urllib.parse import unquote

import duckdb
import pytest

from pipelines.quality.datadocs import build_data_docs

DAY = dt.date(2026, 10, 1)
DATASETS = ["indkaldelse", "samtale", "tilmelding"]


def _break_cprs(part: Path, n: int = 3) -> int:
    """Make ``n`` CPR numbers of one partition file invalid (day 32), so the CPR check fails."""
    src = sorted(part.glob("*.parquet"))[0]
    tmp = src.with_name(".broken.tmp")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * REPLACE (CASE WHEN _record_no < {n} AND cpr IS NOT NULL "
                f"THEN '32' || substr(cpr, 3) ELSE cpr END AS cpr) "
                f"FROM read_parquet('{src}', hive_partitioning = false)) TO '{tmp}' (FORMAT parquet)")
    broken = con.execute(f"SELECT count(*) FROM read_parquet('{tmp}') WHERE cpr LIKE '32%'").fetchone()[0]
    con.close()
    tmp.replace(src)
    return int(broken)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, copy_tiny_lake) -> tuple[Path, Path, int]:
    """(zones, Data Docs index, CPRs broken): a copy of conftest's ``tiny_lake`` with CPRs broken on DAY."""
    root = copy_tiny_lake(tmp_path_factory.mktemp("datadocs") / "zones")
    broken = _break_cprs(root / "lake" / "samtale" / f"leveringsdato={DAY.isoformat()}")
    assert broken >= 1
    return root, build_data_docs(root, DAY, DATASETS), broken


def test_site_lands_in_the_file_context_with_a_page_per_suite(site) -> None:
    root, index, _broken = site
    assert index == root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert index.is_file()
    html = index.read_text(encoding="utf-8")
    links = {unquote(p) for p in re.findall(r"validations/[^'\"]+\.html", html)}
    for ds in DATASETS:
        mine = [p for p in links if p.startswith(f"validations/{ds}/leveringsdato={DAY.isoformat()}/")]
        assert mine, f"no validation page linked for {ds}"
        assert all((index.parent / p).is_file() for p in mine)
    # tilmelding's list column is validated element-wise as its own suite
    assert any(p.startswith("validations/tilmelding/") and p.count("/") > 4 for p in links)
    assert (index.parent / "expectations" / "samtale.html").is_file()


def test_results_carry_counts_and_the_broken_cprs_fail(site) -> None:
    root, _index, broken = site
    files = list((root / "gx" / "uncommitted" / "validations" / "samtale").rglob("*.json"))
    assert len(files) == 1
    res = json.loads(files[0].read_text(encoding="utf-8"))
    cpr = [r for r in res["results"] if r["expectation_config"]["kwargs"]["column"] == "cpr"
           and r["expectation_config"]["type"] == "expect_column_values_to_match_regex"]
    assert cpr and cpr[0]["success"] is False
    assert cpr[0]["result"]["unexpected_count"] >= broken
    assert not cpr[0]["result"].get("partial_unexpected_list")


def test_no_cpr_number_in_the_generated_files(site) -> None:
    root, _index, _broken = site
    con = duckdb.connect()
    cprs: set[str] = set()
    for ds in DATASETS:
        rows = con.execute(f"SELECT DISTINCT cpr FROM read_parquet('{root}/lake/{ds}/*/*.parquet', "
                           "hive_partitioning = false) WHERE cpr IS NOT NULL").fetchall()
        cprs |= {r[0] for r in rows}
    con.close()
    assert len(cprs) > 50 and any(c.startswith("32") for c in cprs)
    scanned = 0
    for path in (root / "gx").rglob("*"):
        if path.suffix not in {".html", ".json", ".yml", ".js"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found = set(re.findall(r"[0-9]{10}", text)) & cprs
        assert not found, f"CPR numbers in {path.relative_to(root)}"
        scanned += 1
    assert scanned >= 10
