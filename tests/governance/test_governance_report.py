"""The DQ pages show the governance register (issue 17): § 9 notices beside quality before/after go-live,
the open § 5 case with its trend since it opened, and overdue action plans on the national overview."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb

from pipelines.governance import Register, register_path
from pipelines.governance.demo import seed_demo
from pipelines.quality.report import build_reports

START = dt.date(2026, 10, 1)


def _dq(path: Path) -> None:
    """Fourteen days of results: 461's error rate jumps when its new system goes live (day 8);
    851 reports late from the day its case opens (day 5)."""
    con = duckdb.connect(str(path))
    con.execute("""CREATE TABLE dq_results (leveringsdato DATE, reporter VARCHAR, reporter_kind VARCHAR,
        dataset VARCHAR, rule_id VARCHAR, paragraph VARCHAR, severity VARCHAR, text_da VARCHAR, text_en VARCHAR,
        records_checked BIGINT, records_failed BIGINT, sample_keys VARCHAR[])""")
    con.execute("""CREATE TABLE dq_timeliness (leveringsdato DATE, reporter VARCHAR, dataset VARCHAR,
        rule_id VARCHAR, paragraph VARCHAR, lag_days INTEGER, records BIGINT, max_lag_days INTEGER)""")
    con.execute("CREATE TABLE dq_completeness (leveringsdato DATE, reporter VARCHAR, dataset VARCHAR, "
                "payloads BIGINT, records BIGINT)")
    for k in range(14):
        d = START + dt.timedelta(days=k)
        failed_461 = 30 if k >= 7 else 2
        for rep, failed in (("461", failed_461), ("851", 5), ("101", 1)):
            con.execute("INSERT INTO dq_results VALUES (?, ?, 'kommune', 'samtale', 'SAM-001', '§ 25', 'error', "
                        "'tekst', 'text', 100, ?, [])", [d, rep, failed])
            con.execute("INSERT INTO dq_completeness VALUES (?, ?, 'samtale', 1, 100)", [d, rep])
        late = 40 if k >= 4 else 0
        con.execute("INSERT INTO dq_timeliness VALUES (?, '851', 'samtale', 'SAM-002', '§ 25', 0, ?, 7)",
                    [d, 100 - late])
        if late:
            con.execute("INSERT INTO dq_timeliness VALUES (?, '851', 'samtale', 'SAM-002', '§ 25', 9, ?, 7)",
                        [d, late])
    con.close()


def test_reporter_pages_and_overview_show_the_register(tmp_path: Path) -> None:
    root = tmp_path / "pipeline"
    root.mkdir()
    _dq(root / "dq.duckdb")
    without = build_reports(root / "dq.duckdb", tmp_path / "plain")
    assert 'id="styring"' not in without.kommuner["461"].read_text(encoding="utf-8")  # no register: unchanged
    with Register(register_path(root), hvem="demo") as reg:
        g = seed_demo(reg, START, 14, lukket_aftager="101", sag_aftager="851", underretning_aftager="461")
    idx = build_reports(root / "dq.duckdb", tmp_path / "reports")
    p461 = idx.kommuner["461"].read_text(encoding="utf-8")
    notice = re.search(r'<div class="underretning for-sen".*?</div>', p461, re.S).group(0)
    assert 'data-idriftsaettelse="2026-10-08"' in notice and "§ 9, stk. 2" in notice
    assert 'data-periode="foer" data-checked="700" data-failed="14"' in notice  # 7 days x 2 failures
    assert 'data-periode="efter" data-checked="700" data-failed="210"' in notice  # 7 days x 30
    p851 = idx.kommuner["851"].read_text(encoding="utf-8")
    case = re.search(r'<div class="genopretning".*?</div>', p851, re.S).group(0)
    assert f'data-sag="{g.sag_id}"' in case and 'data-overskredet="true"' in case and "§ 5, stk. 2" in case
    days = re.findall(r'<tr class="dag" data-dag="([\d-]+)"[^>]*data-timely="(\d+)" data-late="(\d+)"', case)
    assert [d for d, _, _ in days] == [(START + dt.timedelta(days=k)).isoformat() for k in range(4, 14)]
    assert all((t, late) == ("100", "40") for _, t, late in days)
    p101 = idx.kommuner["101"].read_text(encoding="utf-8")
    assert "§ 8: Styrelsen har lukket 101" in p101 and "Ingen åben genopretningssag" in p101
    index = idx.index.read_text(encoding="utf-8")
    overdue = re.findall(r'<tr class="overskredet" data-aftager="(\d+)" data-sag="(\d+)">', index)
    assert overdue == [("851", str(g.sag_id))]
    assert 'class="sen-underretning" data-aftager="461"' in index
