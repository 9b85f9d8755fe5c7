"""Ingestion, deliveries and reports obey the governance register (issue 17, §§ 5, 6, 8, 9).

Real tiny ingestions over the simulated source servers: a closed aftager's and an agreement-less
reporter's deliveries are refused with the § in the ledger and nothing in the lake; a webservice
call without identification is refused (§ 6, stk. 2); without a register nothing changes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.contracts import codelist_codes, get_contract
from pipelines.governance import Register, register_path, withhold_closed
from pipelines.ingest import SourcesConfig, Zones, ingest_dataset_day
from pipelines.landing import Ledger
from pipelines.simulate.servers import start_sources

DAY = dt.date(2026, 10, 1)
RECEIVED_AT = "2026-10-02T02:00:00+02:00"
DATASETS = ["tilmelding", "samtale"]  # webservice, jobcentre


@pytest.fixture(scope="module")
def sources_dir(generated) -> Path:
    """Tiny, 1 day, seed 17, 2 % defects (conftest ``generated``, read only): in this seed kommune 101's samtale
    extract spans more than one page, which the fetched-ahead test needs."""
    return generated(days=1, seed=17, defect_rate=0.02)


@pytest.fixture(scope="module")
def pair(sources_dir: Path) -> tuple[str, str]:
    """Two kommuner that report every one of DATASETS on DAY in this seed: one closed, one without agreement."""
    have = [{p.stem for p in (sources_dir / "webservice" / ds / DAY.isoformat()).glob("*.jsonl")} for ds in DATASETS]
    both = sorted(set.intersection(*have), key=lambda k: (k != "101", k))
    assert len(both) >= 3, both
    return both[0], both[1]


@pytest.fixture(scope="module")
def systems(sources_dir: Path):
    with start_sources(sources_dir) as s:
        yield s


def _register(root: Path, *, without: set[str] = frozenset()) -> Register:
    reg = Register(register_path(root), hvem="test")
    for code in codelist_codes("kommuner"):
        if code not in without:
            reg.add_aftale(code, "webservice", dt.date(2015, 8, 1), aftager_type="kommune")
    return reg


def _lake_reporters(root: Path, dataset: str) -> dict[str, int]:
    files = list((root / "lake" / dataset).rglob("*.parquet"))
    if not files:
        return {}
    con = duckdb.connect()
    rows = con.execute("SELECT _reporter, count(*) FROM read_parquet(?) GROUP BY 1",
                       [[str(f) for f in files]]).fetchall()
    return dict(rows)


def _ingest(root: Path, systems, dataset: str):
    return ingest_dataset_day(dataset, DAY, Zones(root), SourcesConfig.from_describe(systems.describe()),
                              RECEIVED_AT, raise_on_failure=True)


def test_without_a_register_everything_loads_as_before(systems, tmp_path: Path) -> None:
    res = _ingest(tmp_path, systems, "tilmelding")
    assert not res.failures and res.payloads and all(p.action != "rejected" for p in res.payloads)
    assert "101" in _lake_reporters(tmp_path, "tilmelding")


def test_closed_aftager_and_missing_agreement_are_refused_with_the_reason(systems, tmp_path: Path,
                                                                         pair: tuple[str, str]) -> None:
    closed, without = pair
    with _register(tmp_path, without={without}) as reg:
        reg.close_access(closed, DAY, "test før ibrugtagning ikke gennemført")
    for ds in DATASETS:
        res = _ingest(tmp_path, systems, ds)  # raise_on_failure: a refusal is not a failure of the run
        refused = {p.reporter for p in res.payloads if p.action == "rejected"}
        assert {closed, without} <= refused
        lake = _lake_reporters(tmp_path, ds)
        assert closed not in lake and without not in lake
        assert lake  # the others were loaded
        ledger = Ledger(tmp_path / "ledger.sqlite")
        try:
            rows = ledger.rows(ds, DAY)
        finally:
            ledger.close()
        by = {}
        for r in rows:
            by.setdefault(r.key.reporter, []).append(r)
        assert all(r.status == "rejected" and "§ 8" in r.error and "lukket" in r.error for r in by[closed])
        assert all(r.status == "rejected" and "§ 6, stk. 1" in r.error for r in by[without])
        assert all(r.status == "loaded" for rep, rs in by.items() if rep not in (closed, without) for r in rs)
        assert not list((tmp_path / "lake" / "_quarantine").rglob(f"{ds}__{closed}__*.parquet"))
    from pipelines.governance.demo import demo_summary

    summary = demo_summary(tmp_path)
    assert any(line.startswith(f"afvist ved indlæsning: {closed} 2026-10-01") and "§ 8" in line for line in summary)
    assert any(line.startswith(f"afvist ved indlæsning: {without} 2026-10-01") and "§ 6, stk. 1" in line
               for line in summary)
    # a rerun after reopening gives the same verdict for that day (the closure is history), idempotently
    with Register(register_path(tmp_path), hvem="test") as reg:
        reg.reopen_access(closed, DAY + dt.timedelta(days=1))
    res = _ingest(tmp_path, systems, "tilmelding")
    assert not [p for p in res.payloads if p.reporter == closed and p.action != "unchanged"]  # a no-op
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        assert {r.status for r in ledger.rows("tilmelding", DAY) if r.key.reporter == closed} == {"rejected"}
    finally:
        ledger.close()
    assert closed not in _lake_reporters(tmp_path, "tilmelding")


def _ingest_without_identification(tmp_path: Path, systems, calls: int):
    """Ingest samtale while the register's first ``calls`` webservice calls carry no identification."""
    _register(tmp_path).close()
    systems.faults.update({"no_identification": {"count": calls, "path": "/v1/samtale/"}})
    try:
        return _ingest(tmp_path, systems, "samtale")
    finally:
        systems.faults.clear()


def test_webservice_call_without_identification_is_refused(systems, tmp_path: Path) -> None:
    res = _ingest_without_identification(tmp_path, systems, calls=1)
    refused = [p for p in res.payloads if p.action == "rejected"]
    assert len(refused) == 1 and "§ 6, stk. 2" in refused[0].warnings[0]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        row = next(r for r in ledger.rows("samtale", DAY) if r.payload_id == refused[0].payload_id)
    finally:
        ledger.close()
    assert row.status == "rejected" and "§ 6, stk. 2" in row.error
    # the landed body is the record of the call: it carries no identification
    assert b'"identifikation": null' in Path(row.landing_path).read_bytes()
    assert refused[0].reporter not in _lake_reporters(tmp_path, "samtale")
    # every loaded page recorded who reported (automatic: the dataansvarlig aftager alone)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        loaded = [r for r in ledger.rows("samtale", DAY) if r.status == "loaded"]
    finally:
        ledger.close()
    assert loaded and all(f'"dataansvarlig_aftager": "{r.key.reporter}"'.encode()
                          in Path(r.landing_path).read_bytes() for r in loaded)


def test_every_refused_call_is_recorded_even_on_an_empty_extract(systems, sources_dir: Path,
                                                                 tmp_path: Path) -> None:
    """Every call lacks identification: each reporter's page is landed and rejected, including the
    reporters whose extract is empty that day (their empty page used to be dropped unrecorded, so a
    one-shot fault that hit one of them left no trace: the flaky single-fault test above)."""
    from pipelines.ingest import reporters_for

    res = _ingest_without_identification(tmp_path, systems, calls=10_000)
    sources = SourcesConfig.from_describe(systems.describe())
    reporters = reporters_for(get_contract("samtale"), sources.tokens)
    empty = {r for r in reporters if not (sources_dir / "webservice" / "samtale" / DAY.isoformat() / f"{r}.jsonl").exists()}
    assert empty, "the seed gives some kommune an empty samtale extract"
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        rows = ledger.rows("samtale", DAY)
        cursors = {r: ledger.cursor("webservice", r, "samtale", DAY) for r in reporters}
    finally:
        ledger.close()
    assert {r.key.reporter for r in rows} == set(reporters)
    assert all(r.status == "rejected" and "§ 6, stk. 2" in r.error for r in rows)
    assert {p.reporter for p in res.payloads if p.action == "rejected"} == set(reporters)
    assert all(cursors[r][2] for r in reporters)  # every extract read to its end
    for r in rows:
        if r.key.reporter in empty:
            assert r.rows_read == 0 and b'"records": []' in Path(r.landing_path).read_bytes()
    assert _lake_reporters(tmp_path, "samtale") == {}
    # a rerun asks nothing again and changes nothing
    again = _ingest(tmp_path, systems, "samtale")
    assert again.payloads == []


def test_a_page_fetched_ahead_of_a_failed_page_is_named_not_dropped(systems, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The next page is fetched while one is landed; when landing fails, the failure names the page
    fetched ahead (and that its call lacked identification), and the rerun lands it."""
    import concurrent.futures as cf

    import pipelines.ingest as ingest

    monkeypatch.setattr(ingest, "WEBSERVICE_PAGE_LIMIT", 1)
    real = ingest.load_payload
    started: list = []
    orig_init = ingest._Ahead.__init__

    def init(self, pool, pages):
        orig_init(self, pool, pages)
        started.append(self)

    def failing(*args, **kw):
        if args[3].reporter == "101" and args[3].source_name == "page-00001":
            cf.wait([a.next for a in started])  # page 2 is fetched by now (deterministic)
            raise OSError("disk full (simulated)")
        return real(*args, **kw)

    monkeypatch.setattr(ingest._Ahead, "__init__", init)
    monkeypatch.setattr(ingest, "load_payload", failing)
    _register(tmp_path).close()
    ahead = []
    orig_close = ingest._Ahead.close

    def close(self):
        page = orig_close(self)
        ahead.append(page)
        return page

    monkeypatch.setattr(ingest._Ahead, "close", close)
    res = ingest_dataset_day("samtale", DAY, Zones(tmp_path), SourcesConfig.from_describe(systems.describe()),
                             RECEIVED_AT, raise_on_failure=False)
    (failure,) = [e for r, e in res.failures if r == "101"]
    assert ahead and ahead[0] is not None and ahead[0].records  # page 2 had been fetched
    assert "disk full" in failure and "page fetched ahead" in failure and "not landed" in failure
    monkeypatch.setattr(ingest, "load_payload", real)
    again = _ingest(tmp_path, systems, "samtale")  # the rerun resumes with page 1 and lands page 2
    assert {p.source_name for p in again.payloads if p.reporter == "101"} >= {"page-00001", "page-00002"}
    assert all(p.action in ("new", "retry") for p in again.payloads if p.reporter == "101")


def test_deliveries_withhold_a_closed_party(tmp_path: Path) -> None:
    with _register(tmp_path) as reg:
        reg.close_access("101", DAY, "grund")
    tables = {"f": pa.table({"_modtager": ["101", "147", "101", "157"], "v": [1, 2, 3, 4]})}
    out, log = withhold_closed(tmp_path, "kommune", DAY, tables)
    assert out["f"].column("_modtager").to_pylist() == ["147", "157"]
    assert out["f"].column("v").to_pylist() == [2, 4]
    assert log == [{"modtager_part": "101", "paragraf": "§ 8", "raekker_tilbageholdt": 2,
                    "lukket_fra": DAY.isoformat(), "grund": log[0]["grund"]}]
    assert "§ 8" in log[0]["grund"]
    # the day after reopening, and for recipients not split by aftager, nothing is withheld
    with Register(register_path(tmp_path)) as reg:
        reg.reopen_access("101", DAY + dt.timedelta(days=1))
    assert withhold_closed(tmp_path, "kommune", DAY + dt.timedelta(days=1), tables) == (tables, [])
    assert withhold_closed(tmp_path, None, DAY, tables) == (tables, [])


def test_a_real_delivery_withholds_the_closed_kommune_and_logs_it(tmp_path: Path) -> None:
    from fixtures_deliveries import D, key_env, read_manifest, read_rows
    from fixtures_wh import cpr_for, deliver, kg, uid

    from pipelines.deliveries import deliver as make_delivery
    from pipelines.deliveries.audit import list_deliveries
    from pipelines.warehouse.build import load_warehouse

    root, day = tmp_path / "root", dt.date(2026, 10, 17)
    e101, e147 = cpr_for(D("2005-01-01"), 40), cpr_for(D("2006-01-01"), 41)
    with key_env(tmp_path / "keys"):
        deliver(root, "kontaktgruppe", day, [kg("e1", e101, "12", "2026-01-01")])
        deliver(root, "kontaktgruppe", day, [kg("e2", e147, "12", "2026-02-01", kommune="147")], reporter="147")
        deliver(root, "uddannelse", day, [
            {"uddannelse_id": uid(f"u{k}"), "cpr": c, "uddannelseskode": "1030", "startdato": D("2026-08-01"),
             "slutdato": None, "statuskode": "2", "opgoerelsesdato": day} for k, c in enumerate((e101, e147))],
            reporter="UVM")
        load_warehouse(root, dt.date(2026, 10, 18))
        with Register(register_path(root), hvem="test") as reg:
            reg.close_access("147", dt.date(2026, 10, 18), "grund")
        mpath = make_delivery(root, "uddannelse_kommuner", "2026-10", create_missing_keys=True)
        rows = read_rows(mpath, "uddannelse_kommuner")["uddannelser"]
    assert {(r["_part"], r["cpr"]) for r in rows} == {("101", e101)}  # nothing for the closed kommune
    m = read_manifest(mpath)
    assert [(w["modtager_part"], w["raekker_tilbageholdt"]) for w in m["tilbageholdt_lukket_adgang"]] == [("147", 1)]
    logged = list_deliveries(root)[-1]
    assert logged["tilbageholdt_lukket_adgang"][0]["paragraf"] == "§ 8"
