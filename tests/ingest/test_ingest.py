"""Ingestion end to end: real source servers -> landing + ledger -> lake + quarantine.

Exactly once, corrected re-deliveries, nothing lost (counts reconcile with the
sources counted independently), ground-truth defects quarantined with the right
reason, fault isolation per reporter, and Dagster wiring (assets, schedule, sensor).
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
from ingest_builders import kontaktgruppe_record, webservice_page

from pipelines.contracts import load_contracts
from pipelines.ingest import SourcesConfig, Zones, ingest_dataset_day, ingest_day
from pipelines.landing import Ledger
from pipelines.simulate.channels import iter_payloads, read_payload
from pipelines.simulate.servers import start_sources

START = dt.date(2026, 10, 1)
DAYS = [START, START + dt.timedelta(days=1)]
CONTRACTS = load_contracts()
RECEIVED_AT = "2026-10-03T02:00:00+02:00"


@pytest.fixture(scope="module")
def sources_dir(tiny_lake: tuple[Path, Path]) -> Path:
    """Tiny, 2 days, seed 8, 5 % defects (conftest ``tiny_lake``; this module ingests it again itself)."""
    return tiny_lake[0]


@pytest.fixture(scope="module")
def systems(sources_dir: Path):
    with start_sources(sources_dir) as s:
        yield s


def config(systems) -> SourcesConfig:
    return SourcesConfig.from_describe(systems.describe())


@pytest.fixture(scope="module")
def loaded(copy_tiny_lake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both DAYS ingested at RECEIVED_AT without failures (conftest ``tiny_lake``), copied: tests rerun into it."""
    return copy_tiny_lake(tmp_path_factory.mktemp("zones"))


def tree_digest(root: Path, sub: str) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / sub).rglob("*")) if p.is_file()}


def source_records(sources_dir: Path) -> collections.Counter:
    """Records per dataset in the sources, counted with the simulator's reader (not the parser)."""
    n: collections.Counter = collections.Counter()
    for _ch, ds, path in iter_payloads(sources_dir):
        recs, _ = read_payload(path, CONTRACTS[ds])
        n[ds] += len(recs)
    return n


def test_every_record_is_accepted_or_quarantined(sources_dir: Path, loaded: Path) -> None:
    sent = source_records(sources_dir)
    con = duckdb.connect()
    q = con.execute(f"""SELECT dataset, count(DISTINCT payload_id || ':' || record_no)
                        FROM read_parquet('{loaded}/lake/_quarantine/**/*.parquet', hive_partitioning=true)
                        GROUP BY dataset""").fetchall()
    quarantined = dict(q)
    for ds, n in sent.items():
        files = list((loaded / "lake" / ds).rglob("*.parquet"))
        accepted = con.execute(f"SELECT count(*) FROM read_parquet({[str(f) for f in files]})").fetchone()[0] \
            if files else 0
        assert accepted + quarantined.get(ds, 0) == n, ds
    ledger = Ledger(loaded / "ledger.sqlite")
    rows = [r for r in ledger.rows() if r.status == "loaded"]
    assert rows and all(r.rows_read == r.rows_accepted + r.rows_quarantined for r in rows)


def test_ground_truth_defects_are_quarantined_with_their_reason(sources_dir: Path, loaded: Path) -> None:
    gt: dict[str, set[str]] = collections.defaultdict(set)
    with (sources_dir / "ground_truth.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            gt[row["defect"]].add(row["besked_id"])
    qt = pl.read_parquet(loaded / "lake" / "_quarantine" / "**" / "*.parquet", hive_partitioning=False)
    kinds = collections.defaultdict(set)
    for raw, kind in zip(qt["raw_record"].to_list(), qt["error_kind"].to_list(), strict=True):
        bid = next((b for b in _ids(raw)), None)
        kinds[kind].add(bid)
    assert gt["missing_required"] and gt["missing_required"] <= kinds["required"]
    assert gt["duplicate_message"] and gt["duplicate_message"] <= kinds["duplicate_message"]
    # nothing else is quarantined: every quarantined message is a ground-truth defect
    all_gt = set().union(*gt.values())
    assert set().union(*kinds.values()) <= all_gt


def _ids(raw: str):
    import re

    yield from re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", raw)[:1]


def test_lake_is_typed_hive_partitioned_parquet_with_lineage(loaded: Path) -> None:
    df = pl.read_parquet(loaded / "lake" / "kontaktgruppe" / "**" / "*.parquet", hive_partitioning=True)
    assert df.schema["startdato"] == pl.Date and df.schema["version"] == pl.Int64
    assert {"_channel", "_reporter", "_payload_id", "_record_no", "leveringsdato"} <= set(df.columns)
    con = duckdb.connect()
    n = con.execute(f"SELECT count(DISTINCT leveringsdato) FROM read_parquet('{loaded}/lake/kontaktgruppe/**/*.parquet',"
                    " hive_partitioning=true)").fetchone()[0]
    assert n == 2


def test_rerun_is_a_no_op(sources_dir: Path, systems, loaded: Path) -> None:
    before = tree_digest(loaded, "lake") | tree_digest(loaded, "landing")
    ledger_before = [r for r in Ledger(loaded / "ledger.sqlite").rows()]
    events_before = Ledger(loaded / "ledger.sqlite").events()
    for day in DAYS:
        results = ingest_day(day, Zones(loaded), config(systems), received_at="2026-10-04T02:00:00+02:00")
        assert all(p.action == "unchanged" for r in results for p in r.payloads)
    assert tree_digest(loaded, "lake") | tree_digest(loaded, "landing") == before
    assert Ledger(loaded / "ledger.sqlite").rows() == ledger_before
    assert Ledger(loaded / "ledger.sqlite").events() == events_before  # a rerun writes nothing at all


def test_corrected_redelivery_supersedes_and_same_bytes_new_name_is_a_no_op(
        sources_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "sources"
    shutil.copytree(sources_dir, src)
    root = tmp_path / "zones"
    day = START
    ftp_files = sorted((src / "ftp" / day.isoformat()).glob("sanktion_*.csv"))
    assert ftp_files
    with start_sources(src) as s:
        ingest_dataset_day("sanktion", day, Zones(root), config(s), RECEIVED_AT)
        ledger = Ledger(root / "ledger.sqlite")
        v1 = [r for r in ledger.rows("sanktion") if r.key.source_name == ftp_files[0].name]
        assert len(v1) == 1 and v1[0].status == "loaded"
        # corrected re-delivery: same name, different bytes (one record fewer, trailer adjusted)
        raw = ftp_files[0].read_bytes().decode("latin-1").split("\r\n")
        header, body = raw[0], [x for x in raw[1:] if x and not x.startswith("TRAILER")]
        corrected = [header, *body[:-1], f"TRAILER;{len(body) - 1}", ""] if len(body) > 1 else \
            [header, *body, f"TRAILER;{len(body)}", ""]
        corrected[1:1] = [] if len(body) > 1 else []
        ftp_files[0].write_bytes("\r\n".join(corrected).encode("latin-1") + (b"" if len(body) > 1 else b"\r\n"))
        # the same bytes as another file, under a new name
        twin = ftp_files[0].with_name(ftp_files[0].name.replace("_2026", "_2026", 1).replace(".csv", ".csv"))
        assert twin == ftp_files[0]
        res = ingest_dataset_day("sanktion", day, Zones(root), config(s), RECEIVED_AT)
        rows = [r for r in ledger.rows("sanktion") if r.key.source_name == ftp_files[0].name]
        assert [r.version for r in rows] == [1, 2]
        assert rows[0].status == "superseded" and rows[1].status == "loaded"
        assert rows[1].supersedes == rows[0].payload_id
        assert Path(rows[0].landing_path).exists() and Path(rows[1].landing_path).exists()
        assert any(e[7] == "new_version" for e in ledger.events())
        assert any(p.action == "new_version" for p in res.payloads)
        lake_rows = pl.read_parquet(rows[1].lake_path).height
        assert lake_rows + rows[1].rows_quarantined == rows[1].rows_read
        # same bytes under a new name (another day's directory, another file name): no-op
        other = src / "ftp" / (day + dt.timedelta(days=1)).isoformat()
        other.mkdir(parents=True, exist_ok=True)
        renamed = other / ftp_files[0].name.replace(day.strftime("%Y%m%d"), "20261002")
        renamed.write_bytes(ftp_files[0].read_bytes())
        res2 = ingest_dataset_day("sanktion", day + dt.timedelta(days=1), Zones(root), config(s), RECEIVED_AT)
        dup = [p for p in res2.payloads if p.source_name == renamed.name]
        assert dup and dup[0].action == "duplicate"
        assert any("same bytes as" in (e[8] or "") for e in ledger.events())


def test_one_reporters_failure_does_not_block_the_others_and_rerun_picks_up_only_it(
        sources_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    day = START
    with start_sources(sources_dir) as s:
        files = sorted((sources_dir / "webservice" / "kontaktgruppe" / day.isoformat()).glob("*.jsonl"))
        victim = files[0].stem
        tokens = json.loads((sources_dir / "webservice" / "tokens.json").read_text())
        # this reporter's requests fail (500) more often than the client retries
        s.faults.set("http_500", count=50, path="/v1/kontaktgruppe")
        cfg = config(s)
        only_victim = SourcesConfig(**{**cfg.__dict__, "tokens": {victim: tokens[victim]}})
        res = ingest_dataset_day("kontaktgruppe", day, Zones(root), only_victim, RECEIVED_AT, raise_on_failure=False)
        assert [r for r, _ in res.failures] == [victim]
        assert "kontaktgruppe" in res.failures[0][1] and "500" in res.failures[0][1]
        s.faults.clear()
        others = ingest_dataset_day("kontaktgruppe", day, Zones(root), cfg, RECEIVED_AT)
        loaded_reporters = {p.reporter for p in others.payloads}
        assert victim in loaded_reporters  # the rerun picked it up
        again = ingest_dataset_day("kontaktgruppe", day, Zones(root), cfg, RECEIVED_AT)
        assert again.payloads == []  # nothing missing any more


def test_update_before_create_is_kept_and_reported_with_its_rule(tmp_path: Path) -> None:
    """An update of a record never created is kept in the lake (nothing lost) and reported."""
    from pipelines.ingest import load_payload
    from pipelines.landing import PayloadKey

    c = CONTRACTS["kontaktgruppe"]
    rec = kontaktgruppe_record("101", aendringstype="2", version=2, slutdato="2026-10-01")
    page = webservice_page("kontaktgruppe", "101", [rec])
    ledger = Ledger(tmp_path / "ledger.sqlite")
    key = PayloadKey("webservice", "101", "kontaktgruppe", START, "page-00001")
    out = load_payload(Zones(tmp_path), ledger, c, key, page, ".json", RECEIVED_AT)
    assert out.accepted == 1 and out.quarantined == 0
    assert out.warnings and "KG-006" in out.warnings[0] and "record 1" in out.warnings[0]
    assert out.payload_id in out.warnings[0]


def test_schedule_runs_yesterday_at_two_and_sensor_requests_each_new_file_once(systems) -> None:
    import dagster as dg

    from pipelines.assets.ingestion import DsdwResource, ftp_sensor
    from pipelines.definitions import defs

    nightly_schedule = defs.resolve_schedule_def("nightly_0200")
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 10, 2, 2, 0))
    reqs = list(nightly_schedule.evaluate_tick(ctx).run_requests or [])
    assert [r.partition_key for r in reqs] == ["2026-10-01"]
    assert nightly_schedule.cron_schedule == "0 2 * * *"
    assert nightly_schedule.execution_timezone == "Europe/Copenhagen"

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "sources.json"
        state.write_text(json.dumps(systems.describe()))
        res = DsdwResource(root=tmp, sources_file=str(state))
        with dg.build_sensor_context(resources={"dsdw": res}) as sctx:
            first = ftp_sensor(sctx)
            n_files = len(list((Path(systems.describe()["data_dir"]) / "ftp").rglob("*.csv")))
            assert len(first.run_requests) == n_files > 0
            assert all(r.partition_key in ("2026-10-01", "2026-10-02") for r in first.run_requests)
        with dg.build_sensor_context(resources={"dsdw": res}, cursor=first.cursor) as sctx:
            assert ftp_sensor(sctx).run_requests == []


def test_dagster_in_process_run_equals_the_direct_call(sources_dir: Path, systems, loaded: Path,
                                                      tmp_path: Path) -> None:
    from pipelines.load import load_days_dagster

    state = tmp_path / "sources.json"
    state.write_text(json.dumps(systems.describe()))
    rows = load_days_dagster([START], tmp_path / "zones", state, ["kontaktgruppe", "sanktion", "uddannelse"],
                             received_at=RECEIVED_AT)
    assert {r.dataset for r in rows} == {"kontaktgruppe", "sanktion", "uddannelse"}
    assert not [r for r in rows if r.failures]
    for ds in ("kontaktgruppe", "sanktion", "uddannelse"):
        part = f"lake/{ds}/leveringsdato={START.isoformat()}"
        assert tree_digest(tmp_path / "zones", part) == tree_digest(loaded, part), ds


def test_parallel_workers_give_the_same_lake_and_ledger(systems, loaded: Path, tmp_path: Path) -> None:
    datasets = ["kontaktgruppe", "sanktion", "ssi_lpr_kontakt"]
    res = ingest_day(START, Zones(tmp_path), config(systems), received_at=RECEIVED_AT, datasets=datasets,
                     workers=2)
    assert [r.dataset for r in res] == datasets and not [f for r in res for f in r.failures]
    for ds in datasets:
        part = f"lake/{ds}/leveringsdato={START.isoformat()}"
        assert tree_digest(tmp_path, part) == tree_digest(loaded, part), ds
    seq = {(r.key.as_tuple(), r.payload_id, r.rows_read) for r in Ledger(loaded / "ledger.sqlite").rows()
           if r.key.dataset in datasets and r.key.leveringsdato == START}
    par = {(r.key.as_tuple(), r.payload_id, r.rows_read) for r in Ledger(tmp_path / "ledger.sqlite").rows()}
    assert par == seq
