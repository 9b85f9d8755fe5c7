"""`dsdw demo` runs the nightly Dagster jobs on a persistent instance: the runs, materializations, checks
and partitions are in the instance's storage afterwards (what `dagster dev` shows), and the data went
through them into the lake, the warehouse and every recipient's delivery.

One tiny day (the 02:00 schedule's run, the sensor's warehouse run, every delivery job) keeps it short.
Top-level: it mirrors the top-level module ``pipelines/demo.py``, which drives every area.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from fixtures_wh import use_keys
from typer.testing import CliRunner

from pipelines.api.keys import KeyFile
from pipelines.cli import app
from pipelines.contracts import load_contracts
from pipelines.deliveries.recipients import load_recipients
from pipelines.demo import open_instance, statistics_api_hint
from pipelines.governance.register import Register, register_path

DAY = "2026-10-01"


def shows(output: str, text: str) -> bool:
    """``text`` is in the printout, wherever the console wrapped its lines (also inside a long path)."""
    return "".join(text.split()) in "".join(output.split())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("demo")
    use_keys(mp, tmp / "keys")
    try:
        res = CliRunner().invoke(app, ["demo", "--out", str(tmp / "demo"), "--scale", "tiny", "--days", "1",
                                       "--start", DAY])
    finally:
        mp.undo()
    assert res.exit_code == 0, res.output
    return tmp / "demo", res.output


def test_the_schedule_and_the_sensor_runs_are_in_the_instance(demo: tuple[Path, str]) -> None:
    out, output = demo
    home = out / "dagster"
    assert (home / "dagster.yaml").exists()
    inst = open_instance(home)
    runs = inst.get_runs()
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    by_job = {r.job_name: r for r in runs}
    ing, wh = by_job["nightly_ingestion"], by_job["nightly_warehouse"]
    assert ing.tags["dagster/partition"] == DAY and ing.tags["dagster/schedule_name"] == "nightly_0200"
    assert wh.tags["dagster/partition"] == DAY and wh.tags["dagster/sensor_name"] == "warehouse_after_ingestion"
    assert wh.tags["dagster/run_key"] == f"warehouse:{DAY}"
    lev = by_job["leveringer"]  # one day: mid cut = last cut, one full delivery run for every recipient
    assert lev.tags["dsdw/levering"] == "full" and sum(r.job_name == "leveringer" for r in runs) == 1
    for rid in load_recipients():
        ev = inst.get_latest_materialization_event(dg.AssetKey(["deliveries", rid]))
        assert ev is not None and ev.run_id == lev.run_id
    assert shows(output, f"DAGSTER_HOME={home.resolve()}") and shows(output, "dagster dev -m pipelines.definitions")
    assert shows(output, str(out / "demo.log")) and (out / "demo.log").exists()  # warnings go there, not inline


def test_materializations_partitions_and_checks_hold_what_reached_the_lake(demo: tuple[Path, str]) -> None:
    out, _ = demo
    inst = open_instance(out / "dagster")
    root = out / "pipeline"
    con = duckdb.connect()
    for ds in ("kontaktgruppe", "samtale", "tilmelding"):
        key = dg.AssetKey(["lake", ds])
        assert inst.get_materialized_partitions(key) == {DAY}
        mat = inst.fetch_materializations(key, limit=1).records[0].asset_materialization
        in_lake = con.execute(f"SELECT count(*) FROM read_parquet('{root}/lake/{ds}/*/*.parquet')").fetchone()[0]
        assert mat.metadata["rows_accepted"].value == in_lake > 0
        for check in ("dq_error_rules", "dq_warn_rules"):
            ev = inst.event_log_storage.get_latest_asset_check_execution_by_key([dg.AssetCheckKey(key, check)])
            rec = ev[dg.AssetCheckKey(key, check)]
            assert rec.status.value == "SUCCEEDED" and rec.evaluation.passed
            assert rec.evaluation.metadata["records_checked"].value > 0
    ing = next(r for r in inst.get_runs() if r.job_name == "nightly_ingestion")
    checks = inst.get_records_for_run(ing.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                                      limit=1000).records
    assert len(checks) == 2 * len(load_contracts())  # both checks of every dataset's partition
    assert inst.get_materialized_partitions(dg.AssetKey(["quality", "dq_results"])) == {DAY}
    # the day's quality was computed once, by the partition checks; dq_results published their results:
    # the same as evaluating every rule over the finished lake again
    from pipelines.quality.results import run_quality

    fresh = run_quality(root, [dt.date.fromisoformat(DAY)])
    dq = duckdb.connect(str(root / "dq.duckdb"), read_only=True)
    published = dq.execute("SELECT dataset, reporter, rule_id, records_checked, records_failed FROM dq_results "
                           "ORDER BY ALL").fetchall()
    dq.close()
    assert published == sorted((r["dataset"], r["reporter"], r["rule_id"], r["records_checked"],
                                r["records_failed"]) for r in fresh.results)
    assert sum(p[4] for p in published) > 0
    checked = root / "quality" / "_checked"  # the checks' kept results are gone once published
    assert not checked.exists() or not any(checked.iterdir())
    assert inst.get_materialized_partitions(dg.AssetKey(["warehouse", "warehouse_duckdb"])) == {DAY}


def test_the_warehouse_and_every_delivery_hold_the_data(demo: tuple[Path, str]) -> None:
    out, output = demo
    root = out / "pipeline"
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    spells = con.execute("SELECT count(DISTINCT kontaktgruppe_id) FROM fct_kontaktgruppe").fetchone()[0]
    lake = con.execute(f"SELECT count(DISTINCT kontaktgruppe_id) FROM "
                       f"read_parquet('{root}/lake/kontaktgruppe/*/*.parquet')").fetchone()[0]
    assert spells == lake > 0
    assert con.execute("SELECT count(*) FROM meta.load").fetchone()[0] == 1
    # the statistics table says which load's data it shows (a preliminary month is republished once a week)
    assert con.execute("SELECT vintage, indlaest_dato FROM meta.publikation").fetchall() == [(1, dt.date.fromisoformat(DAY))]
    con.close()
    assert shows(output, f"data as of {DAY} (vintage 1)")
    assert (root / "reports" / "index.html").exists()  # rendered by the last night's dq_results
    audit = [json.loads(x) for x in (root / "deliveries" / "audit.jsonl").read_text().splitlines() if x.strip()]
    assert {e["modtager"] for e in audit} == set(load_recipients())
    shown = {}  # the summary's deliveries table: recipient -> rows (cells between the box characters)
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 7 and cells[0] in load_recipients() and cells[2] == "full":
            shown[cells[0]] = cells[5]
    for rid in load_recipients():  # every recipient with its row count, 0 included
        assert shown[rid] == f"{next(e['raekker'] for e in audit if e['modtager'] == rid):,}"
    assert not (out / "sources.json").exists()  # the addresses died with the servers
    assert (out / "sources" / "generation.json").exists()
    assert "webservice" in output.lower() and "ftp" in output.lower()


def test_the_demo_seeds_the_governance_register_and_shows_it(demo: tuple[Path, str]) -> None:
    out, output = demo
    root = out / "pipeline"
    with Register(register_path(root), readonly=True) as reg:
        aftaler, sager, us = reg.aftaler(), reg.sager(), reg.underretninger()
        # § 6 agreements for every webservice/portal reporter; Jobnet, FTP, UVM and SSI need none: nothing of
        # theirs was refused, and every dataset's blocking check passed (the closure is not on the first day)
        assert {a.kanal for a in aftaler} >= {"webservice"} and len(aftaler) > 100
        assert reg.lukning("101", dt.date(2026, 10, 2)) is not None
        assert reg.lukning("101", dt.date.fromisoformat(DAY)) is None
    assert shows(output, f"§ 6: {len(aftaler)} tilslutningsaftaler")
    assert shows(output, f"§ 9: {us[0].aftager}") and us[0].for_sen
    assert shows(output, f"§ 5: sag {sager[0].sag_id} for {sager[0].aftager}")
    page = (root / "reports" / "kommune" / f"{sager[0].aftager}.html").read_text(encoding="utf-8")
    assert "§ 5" in page and "handlingsplan" in page.lower()
    con = sqlite3.connect(root / "ledger.sqlite")
    assert con.execute("SELECT count(*) FROM payloads WHERE error LIKE 'afvist: §%'").fetchone()[0] == 0
    con.close()


def test_the_demo_prints_the_statistics_api_with_a_key_under_its_own_directory(demo: tuple[Path, str]) -> None:
    out, output = demo
    keys = out / "api_keys"
    assert shows(output, f"dsdw api serve --root {out / 'pipeline'} --keys {keys}")
    key = output.split("X-API-Key: ", 1)[1].split("'", 1)[0].strip()
    assert KeyFile(keys).accepts(key) and keys.stat().st_mode & 0o077 == 0
    lines = statistics_api_hint(out / "pipeline", keys)  # a second demo run reuses the key: no new line
    assert lines[0].startswith(f"Statistics API: dsdw api serve --root {out / 'pipeline'} --keys {keys}")
    assert any("/api/v1/data/" in line and key in line for line in lines)
    assert KeyFile(keys).keys() == (key,)
    # the printed example request answers with the demo's published figures (land and regions)
    from fastapi.testclient import TestClient

    from pipelines.api.app import create_app
    from pipelines.warehouse.build import published_path

    example = next(line for line in lines if "/api/v1/data/" in line)
    url = "/" + example.split("'")[3].split("/", 3)[3]
    rows = TestClient(create_app(published_path(out / "pipeline"), keys)).get(url, headers={"X-API-Key": key})
    assert rows.status_code == 200
    body = [r.split(",") for r in rows.text.splitlines()[1:]]
    assert {r[3] for r in body} == {"land", "region"} and any(r[4] == "000" for r in body)


def test_the_governance_story_follows_the_simulators_problem_reporters(tmp_path: Path) -> None:
    from pipelines.governance.demo import demo_roles, seed_demo
    from pipelines.governance.hooks import ingest_refusal

    behaviour = [  # generation.json's reporter_behaviour, as the simulator writes it
        {"kind": "late", "reporter_kind": "kommune", "reporter": "630", "dataset": None, "detail": "late"},
        {"kind": "late", "reporter_kind": "akasse", "reporter": "006", "dataset": None, "detail": "late"},
        {"kind": "broken_field", "reporter_kind": "kommune", "reporter": "851", "dataset": "indkaldelse",
         "detail": "system change: indkaldelse.samtaleform carries an invalid code 2026-10-03 - 2026-10-07"},
        {"kind": "stopped", "reporter_kind": "kommune", "reporter": "101", "dataset": "samtale",
         "detail": "no samtale delivered 2026-10-04 - 2026-10-10; the records follow on 2026-10-11"}]
    roles = demo_roles(behaviour)
    assert roles == {"underretning_aftager": "851", "idriftsaettelse": dt.date(2026, 10, 3), "sag_aftager": "630",
                     "lukket_aftager": "751"}  # the closed kommune is none of the problem reporters
    start = dt.date(2026, 10, 1)
    with Register(register_path(tmp_path), hvem="test") as reg:
        g = seed_demo(reg, start, 14, **roles)
        u = reg.underretninger("851")[0]
        assert u.planlagt_idriftsaettelse == dt.date(2026, 10, 3) and u.for_sen  # § 9: < 40 arbejdsdage
        assert reg.sager("630")[0].sag_id == g.sag_id
        assert g.lukket_dag == start + dt.timedelta(days=6) and "§ 8" in ingest_refusal(reg, "751", "webservice",
                                                                                         g.lukket_dag)
        # never the first day (the opening stock); Jobnet and the drops are outside the register
        assert ingest_refusal(reg, "751", "webservice", start) is None
        assert ingest_refusal(reg, "JOBNET", "webservice", g.lukket_dag) is None
        assert ingest_refusal(reg, "751", "ftp", g.lukket_dag) is None
        with Register(register_path(tmp_path / "one"), hvem="test") as one:
            assert seed_demo(one, start, 1).lukket_dag == start + dt.timedelta(days=1)
