"""File- and payload-level ingestion (issue 11): nothing lost, misfiled or read from outside.

Each test writes bad files into the drop folders (or the FTP tree) of a small generated
source directory, runs the real ingestion and asserts the data: the lake's rows per
payload, the ledger's rows and reasons, the quarantine's error kinds.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from ingest_builders import kontaktgruppe_record, ledger_rows, records, webservice_page

from pipelines.contracts import load_contracts
from pipelines.contracts.wire import ftp_payload, portal_payload, ssi_payload
from pipelines.ingest import SourcesConfig, Zones, account_day, ingest_dataset_day, ingest_day
from pipelines.lake.write import archive_path
from pipelines.landing import Ledger
from pipelines.simulate.servers import marker_path, start_sources
from pipelines.warehouse.checks import lake_ledger_checks

START = dt.date(2026, 10, 1)
D1 = START.strftime("%Y%m%d")
RECEIVED_AT = "2026-10-03T02:00:00+02:00"
C = load_contracts()

pytestmark = pytest.mark.usefixtures("portal_stable_now")  # conftest


@pytest.fixture(scope="module")
def clean_sources(generated) -> Path:
    """Tiny, 2 days, seed 11, no defects (conftest ``generated``, read only)."""
    return generated(days=2, seed=11, defect_rate=0.0)


@pytest.fixture
def src(clean_sources: Path, tmp_path: Path) -> Path:
    """A copy of ``clean_sources`` the test may write into."""
    out = tmp_path / "sources"
    shutil.copytree(clean_sources, out)
    return out


def drops_config(src: Path) -> SourcesConfig:
    """Portal and drop folders only (no servers needed for those channels)."""
    return SourcesConfig("http://127.0.0.1:9", {}, "127.0.0.1", 9, "star", "x", src / "portal", src / "drops" / "uvm",
                         src / "drops" / "ssi")


def day_dir_of(src: Path, *folder: str) -> Path:
    """A channel's folder of START (created: a generated day may have no file of that channel)."""
    d = src.joinpath(*folder, START.isoformat())
    d.mkdir(parents=True, exist_ok=True)
    return d


def vacate(path: Path) -> Path:
    """Remove a generated file at ``path``, so that the test alone decides what the name holds."""
    path.unlink(missing_ok=True)
    return path


def lake_rows(root: Path, dataset: str, day: dt.date = START) -> pl.DataFrame:
    files = sorted((root / "lake" / dataset / f"leveringsdato={day}").glob("*.parquet"))
    if not files:
        return pl.DataFrame()
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal")


def quarantine(root: Path, dataset: str) -> pl.DataFrame:
    files = sorted((root / "lake" / "_quarantine").rglob(f"{dataset}__*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]) if files else pl.DataFrame()


def by_name(root: Path, name: str) -> list:
    return [r for r in ledger_rows(root) if r.key.source_name == name]


def assert_lake_matches_ledger(root: Path) -> None:
    """Every loaded payload's lake file holds exactly its rows_accepted rows, all its own."""
    for r in ledger_rows(root):
        if r.status != "loaded":
            continue
        t = pq.read_table(r.lake_path)
        assert t.num_rows == r.rows_accepted, r
        assert set(t.column("_payload_id").to_pylist()) <= {r.payload_id}
        assert r.payload_id in Path(r.lake_path).name


# ---------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("channel", ["portal", "ftp"])
def test_corrected_redelivery_under_the_same_name_keeps_its_unchanged_records(channel: str, src: Path,
                                                                              tmp_path: Path) -> None:
    """A file sent again under its name with one record corrected: the new version replaces the old one in the
    lake, and its eight unchanged records count once (from a portal drop folder and from the FTP server)."""
    root = tmp_path / "zones"
    ds, reporter, payload = {"portal": ("akasse_fravaer", "013", portal_payload),
                             "ftp": ("sanktion", "147", ftp_payload)}[channel]
    name = f"{ds}_{reporter}_{D1}.csv"
    path = day_dir_of(src, channel) / name
    recs = records(ds, 9, reporter)
    fixed = [dict(r) for r in recs]
    fixed[4]["version"] = "7"  # one record corrected, eight unchanged
    with start_sources(src) as s:
        cfg = SourcesConfig.from_describe(s.describe())
        path.write_bytes(payload(C[ds], recs))
        ingest_dataset_day(ds, START, Zones(root), cfg, RECEIVED_AT)
        path.write_bytes(payload(C[ds], fixed))
        res = ingest_dataset_day(ds, START, Zones(root), cfg, RECEIVED_AT)
    assert [p.action for p in res.payloads if p.source_name == name] == ["new_version"]
    v1, v2 = by_name(root, name)
    assert (v1.status, v2.status) == ("superseded", "loaded") and v2.supersedes == v1.payload_id
    assert (v2.rows_read, v2.rows_accepted, v2.rows_quarantined) == (9, 9, 0)
    lake = lake_rows(root, ds).filter(pl.col("_reporter") == reporter)
    assert sorted(lake["besked_id"].to_list()) == sorted(r["besked_id"] for r in recs)
    assert set(lake["_payload_id"].to_list()) == {v2.payload_id}
    assert lake.filter(pl.col("besked_id") == recs[4]["besked_id"])["version"].to_list() == [7]
    q = quarantine(root, ds)
    assert q.is_empty() or q.filter(pl.col("error_kind") == "duplicate_message").is_empty()
    assert Path(v1.landing_path).read_bytes() != Path(v2.landing_path).read_bytes()
    # the superseded version's file moved to the lake's archive whole (the warehouse keeps the version it retracts;
    # a one-pass rebuild reads it there), out of the dataset's directory
    assert not Path(v1.lake_path).exists()
    kept = pl.read_parquet(archive_path(root, v1.lake_path))
    assert sorted(kept["besked_id"].to_list()) == sorted(r["besked_id"] for r in recs)
    assert set(kept["_payload_id"].to_list()) == {v1.payload_id} and kept.height == v1.rows_accepted == 9
    assert kept.filter(pl.col("besked_id") == recs[4]["besked_id"])["version"].to_list() == [int(recs[4]["version"])]
    assert all(c.passed for c in lake_ledger_checks(root))
    assert_lake_matches_ledger(root)
    # a crash between the ledger's commit and the move leaves the old file in the lake: the partition's next run
    # archives it (and loads nothing twice)
    shutil.move(archive_path(root, v1.lake_path), v1.lake_path)
    assert not all(c.passed for c in lake_ledger_checks(root))
    with start_sources(src) as s:
        again = ingest_dataset_day(ds, START, Zones(root), SourcesConfig.from_describe(s.describe()), RECEIVED_AT)
    assert [p.action for p in again.payloads if p.source_name == name] in ([], ["unchanged"])
    assert not Path(v1.lake_path).exists() and pl.read_parquet(archive_path(root, v1.lake_path)).equals(kept)
    assert all(c.passed for c in lake_ledger_checks(root))


# ---------------------------------------------------------------------------- items 2, 10


def test_names_that_do_not_fit_are_rejected_with_reason_and_the_day_goes_on(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    day_dir = day_dir_of(src, "portal")
    body = portal_payload(C["akasse_fravaer"], records("akasse_fravaer", 3, "013"))
    (day_dir / f"akasse_fravaer_013_{D1}.csv").write_bytes(body)
    vacate(day_dir / f"akasse_fravaer_009_{D1}.csv")
    good = sorted(p.name for p in day_dir.iterdir())
    odd = {
        f"akasse_fravaer_{D1}.csv": "naming rule",  # no reporter code
        f"AKASSE_FRAVAER_013_{D1}.csv": "naming rule",
        f"akasse fravaer_013_{D1}.csv": "naming rule",
        f"akasse_fravaer\\_013_{D1}.csv": "naming rule",
        f"akasse_fravaer_013_{D1}.csv\n": "naming rule",
        f"ukendt_datasaet_013_{D1}.csv": "no dataset 'ukendt_datasaet'",
        f"sanktion_101_{D1}.csv": "delivered via ftp",
        "akasse_fravaer_013_20261002.csv": "file name says 2026-10-02",
        f"akasse_fravaer_067_{D1}.csv.bak": "naming rule",
    }
    for n in odd:
        (day_dir / n).write_bytes(body.replace(b"013", b"067") if "067" in n else body + b"\n")
    (day_dir / f"akasse_fravaer_009_{D1}.csv").write_bytes(b"")  # zero bytes
    datasets = sorted(n for n, c in C.items() if c.channel == "portal")
    results = ingest_day(START, Zones(root), drops_config(src), RECEIVED_AT, datasets=datasets)
    assert not [f for r in results for f in r.failures]
    for n, why in odd.items():
        rows = by_name(root, n)
        assert len(rows) == 1 and rows[0].status == "rejected" and why in rows[0].error, (n, rows)
        assert Path(rows[0].landing_path).read_bytes() == (day_dir / n).read_bytes()
    [empty] = by_name(root, f"akasse_fravaer_009_{D1}.csv")
    assert empty.status == "rejected" and "empty" in empty.error
    for n in good:  # the generated files of the day are all loaded
        assert [r.status for r in by_name(root, n)] == ["loaded"], n
    # nothing of a rejected file is in the lake; its records are quarantined
    lake = lake_rows(root, "akasse_fravaer")
    rejected = {r.payload_id for r in ledger_rows(root) if r.status == "rejected"}
    assert not set(lake["_payload_id"].to_list()) & rejected
    q = quarantine(root, "akasse_fravaer")
    assert "payload_rejected" in set(q["error_kind"].to_list())
    # every entry of the folder is accounted for; a rerun changes nothing
    [acc] = account_day(START, Zones(root), drops_config(src), folders=["portal"])
    assert acc.unaccounted == [] and acc.offered == len(good) + len(odd) + 1
    before = ledger_rows(root)
    again = ingest_day(START, Zones(root), drops_config(src), RECEIVED_AT, datasets=datasets)
    assert all(p.action == "unchanged" for r in again for p in r.payloads)
    assert ledger_rows(root) == before


def test_ftp_name_without_reporter_code_does_not_stop_the_day_direct_and_dagster(src: Path, tmp_path: Path) -> None:
    from pipelines.load import load_days_dagster

    ds = "raadighedsvurdering"
    day_dir = day_dir_of(src, "ftp")
    bad = f"raadighedsvurdering_{D1}.csv"
    recs = records(ds, 3, "101")
    (day_dir / f"raadighedsvurdering_101_{D1}.csv").write_bytes(ftp_payload(C[ds], recs))
    shutil.copy(day_dir / f"raadighedsvurdering_101_{D1}.csv", day_dir / bad)
    good = sorted(p.name for p in day_dir.glob("*_???_*.csv"))
    with start_sources(src) as s:
        cfg = SourcesConfig.from_describe(s.describe())
        res = ingest_day(START, Zones(tmp_path / "direct"), cfg, RECEIVED_AT, datasets=["raadighedsvurdering",
                                                                                         "sanktion"])
        state = tmp_path / "sources.json"
        state.write_text(json.dumps(s.describe()))
        rows = load_days_dagster([START], tmp_path / "dagster", state, ["raadighedsvurdering"],
                                 received_at=RECEIVED_AT)
    assert not [f for r in res for f in r.failures] and not [r for r in rows if r.failures]
    for root in (tmp_path / "direct", tmp_path / "dagster"):
        [row] = by_name(root, bad)
        assert row.status == "rejected" and "naming rule" in row.error
        for n in good:
            if n.startswith("raadighedsvurdering"):
                assert [r.status for r in by_name(root, n)] == ["loaded"]
    assert lake_rows(tmp_path / "dagster", "raadighedsvurdering").height == \
        lake_rows(tmp_path / "direct", "raadighedsvurdering").height > 0
    for root in (tmp_path / "direct", tmp_path / "dagster"):  # the good file's records, once, under 101
        mine = lake_rows(root, ds).filter(pl.col("_reporter") == "101")
        assert sorted(mine["besked_id"]) == sorted(r["besked_id"] for r in recs)


# ---------------------------------------------------------------------------- items 3, 4


def test_a_lake_file_belongs_to_one_payload_whatever_the_names(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    ds = "akasse_fravaer"
    day_dir = day_dir_of(src, "portal")
    name = f"akasse_fravaer_013_{D1}.csv"
    (day_dir / name).write_bytes(portal_payload(C[ds], records(ds, 3, "013", version="1")))
    (day_dir / (name + "\n")).write_bytes(portal_payload(C[ds], records(ds, 10, "013", version="2")))
    (day_dir / "sub").mkdir()
    (day_dir / "sub" / name).write_bytes(portal_payload(C[ds], records(ds, 5, "013", version="5")))
    for _ in range(2):  # the rerun flips nothing
        ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
        [main] = by_name(root, name)
        assert main.status == "loaded" and main.rows_accepted == 3
        assert [r.status for r in by_name(root, name + "\n")] == ["rejected"]
        [sub] = by_name(root, f"sub/{name}")
        assert sub.status == "rejected" and "subfolder" in sub.error
        lake = lake_rows(root, ds).filter(pl.col("_reporter") == "013")
        assert lake.height == 3 and set(lake["version"].to_list()) == {1}
        assert set(lake["_payload_id"]) == {main.payload_id}
        assert_lake_matches_ledger(root)


def test_drop_folders_are_never_left(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    ds = "akasse_fravaer"
    day_dir = day_dir_of(src, "portal")
    outside = tmp_path / "outside.csv"
    outside.write_bytes(portal_payload(C[ds], records(ds, 4, "002")))
    vacate(day_dir / f"akasse_fravaer_002_{D1}.csv").symlink_to(outside)
    vacate(day_dir / f"akasse_fravaer_003_{D1}.csv").symlink_to("/etc/passwd")
    os.mkfifo(vacate(day_dir / f"akasse_fravaer_004_{D1}.csv"))
    (day_dir / "linked_dir").symlink_to(tmp_path)
    (src / "drops" / "uvm" / START.isoformat() / "evil").symlink_to("/etc")
    portal = sorted(n for n, c in C.items() if c.channel == "portal")
    res = ingest_day(START, Zones(root), drops_config(src), RECEIVED_AT, datasets=[*portal, "uddannelse"])
    assert not [f for r in res for f in r.failures]
    for n, what in ((f"akasse_fravaer_002_{D1}.csv", "symbolic link"), (f"akasse_fravaer_003_{D1}.csv", "symbolic"),
                    (f"akasse_fravaer_004_{D1}.csv", "fifo"), ("linked_dir", "symbolic link"),
                    ("evil", "symbolic link")):
        [row] = by_name(root, n)
        assert row.status == "rejected" and what in row.error and row.landing_path == "" and row.bytes == 0
    assert lake_rows(root, ds).filter(pl.col("_reporter").is_in(["002", "003", "004"])).is_empty()
    landed = b"".join(p.read_bytes() for p in (root / "landing").rglob("*") if p.is_file())
    assert b"root:" not in landed and outside.read_bytes() not in landed
    q = quarantine(root, ds)
    assert q.is_empty() or not q["raw_record"].str.contains("root:").any()


# ---------------------------------------------------------------------------- items 5, 9


def test_same_bytes_or_records_of_another_reporter_are_rejected_not_misfiled(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    ds = "akasse_fravaer"
    day_dir = day_dir_of(src, "portal")
    own = day_dir / f"akasse_fravaer_013_{D1}.csv"
    for rep in ("009", "999", "002"):  # these names are the test's alone
        vacate(day_dir / f"akasse_fravaer_{rep}_{D1}.csv")
    own.write_bytes(portal_payload(C[ds], records(ds, 4, "013")))
    ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
    shutil.copy(own, day_dir / f"akasse_fravaer_009_{D1}.csv")  # same bytes, another reporter's name
    (day_dir / f"akasse_fravaer_999_{D1}.csv").write_bytes(portal_payload(C[ds], records(ds, 2, "999")))
    (day_dir / f"akasse_fravaer_002_{D1}.csv").write_bytes(portal_payload(C[ds], records(ds, 2, "013")))
    ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
    reasons = {n: by_name(root, f"akasse_fravaer_{n}_{D1}.csv") for n in ("009", "999", "002")}
    assert all(len(v) == 1 and v[0].status == "rejected" for v in reasons.values()), reasons
    assert "same bytes as" in reasons["009"][0].error and "013" in reasons["009"][0].error
    assert "not in the code list akasser" in reasons["999"][0].error
    assert "records name another reporter" in reasons["002"][0].error and "'013'" in reasons["002"][0].error
    lake = lake_rows(root, ds)
    assert set(lake["_reporter"].to_list()).isdisjoint({"009", "999", "002"})
    assert lake.filter(pl.col("_reporter") == "013").height == 4
    assert lake["besked_id"].n_unique() == lake.height
    q = quarantine(root, ds).filter(pl.col("reporter").is_in(["999", "002"]))
    assert set(q["error_kind"].to_list()) == {"payload_rejected"} and q.height == 4


# ---------------------------------------------------------------------------- items 6, 7 (our side), 8


def _ssi(src: Path, n: int, trailer: str | None) -> bytes:
    ds = "ssi_lpr_kontakt"
    body = ssi_payload(C[ds], records(ds, n, "SSI"), D1)
    lines = body.decode("latin-1").splitlines(keepends=True)
    assert lines[-1].startswith("T|")
    lines = lines[:-1] + ([trailer] if trailer is not None else [])
    return "".join(lines).encode("latin-1")


def test_rejected_ssi_payload_never_reaches_the_lake(src: Path, tmp_path: Path) -> None:
    from pipelines.quality.rules import RuleEngine  # the quality checks read the lake partition

    root = tmp_path / "zones"
    ds = "ssi_lpr_kontakt"
    day_dir = day_dir_of(src, "drops", "ssi")
    path = day_dir / f"{ds}_{D1}.txt"
    path.write_bytes(_ssi(src, 6, "T|999\n"))
    marker_path(path).touch()
    ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
    [row] = by_name(root, path.name)
    assert row.status == "rejected" and "trailer" in row.error and row.rows_accepted == 0
    assert row.rows_read == row.rows_quarantined == 6
    assert lake_rows(root, ds).is_empty()
    assert RuleEngine(root / "lake").relation(ds, START) is None
    q = quarantine(root, ds)
    assert q.filter(pl.col("record_no").is_not_null())["record_no"].n_unique() == 6
    assert "payload_rejected" in q["error_kind"].to_list() and "trailer" in q["error_kind"].to_list()
    # a good version loads; a later cut version is rejected and leaves the good one in the lake
    path.write_bytes(_ssi(src, 6, "T|6\n"))
    ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
    path.write_bytes(_ssi(src, 6, None)[:-30])
    ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
    v1, v2, v3 = by_name(root, path.name)
    assert (v1.status, v2.status, v3.status) == ("rejected", "loaded", "rejected")
    assert set(lake_rows(root, ds)["_payload_id"]) == {v2.payload_id} and lake_rows(root, ds).height == 6
    assert_lake_matches_ledger(root)


def test_a_payload_the_parser_rejects_is_quarantined_whole(src: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.lake.parse as parse

    real = parse.parse_payload

    def verdict(*a, **k):
        res = real(*a, **k)
        res.rejected_reason = "unterminated quote in record 3: the rest of the file would be one value"
        return res

    monkeypatch.setattr(parse, "parse_payload", verdict)
    root = tmp_path / "zones"
    ingest_dataset_day("uddannelse", START, Zones(root), drops_config(src), RECEIVED_AT)
    [row] = [r for r in ledger_rows(root, "uddannelse")]
    assert row.status == "rejected" and "unterminated quote" in row.error
    assert lake_rows(root, "uddannelse").is_empty()
    q = quarantine(root, "uddannelse")
    assert q.height == row.rows_read > 0 and set(q["error_kind"]) == {"payload_rejected"}


def test_ftp_payload_failures_are_landed_and_rejected(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    ds = "sanktion"
    day_dir = day_dir_of(src, "ftp")
    good = ftp_payload(C[ds], records(ds, 3, "101"))
    cases = {
        "101": good.replace(b"TRAILER;3", b"TRAILER;5"),
        "147": good.replace(b"TRAILER;3\r\n", b""),
        "151": good.replace(b"TRAILER;3", b"TRAILER;tre"),
        "153": good[: len(good) // 2],
        "155": gzip.compress(good, mtime=0),
        "157": b"",
    }
    for rep, data in cases.items():
        (day_dir / f"sanktion_{rep}_{D1}.csv").write_bytes(data)
    ok = records(ds, 2, "159")  # a good neighbour: it loads, and the lake holds nothing else of ours
    (day_dir / f"sanktion_159_{D1}.csv").write_bytes(ftp_payload(C[ds], ok))
    with start_sources(src) as s:
        res = ingest_day(START, Zones(root), SourcesConfig.from_describe(s.describe()), RECEIVED_AT,
                         datasets=["raadighedsvurdering", ds])
        assert not [f for r in res for f in r.failures]
        [acc] = account_day(START, Zones(root), SourcesConfig.from_describe(s.describe()), folders=["ftp"])
    for rep, data in cases.items():
        [row] = by_name(root, f"sanktion_{rep}_{D1}.csv")
        assert row.status == "rejected" and row.error, rep
        assert Path(row.landing_path).read_bytes() == data
        assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert "trailer" in by_name(root, f"sanktion_101_{D1}.csv")[0].error
    lake = lake_rows(root, ds)
    assert sorted(lake.filter(pl.col("_reporter") == "159")["besked_id"]) == sorted(r["besked_id"] for r in ok)
    assert lake.filter(pl.col("_reporter").is_in(list(cases))).is_empty()
    assert acc.unaccounted == []


# ---------------------------------------------------------------------------- item 13 (printing)


def test_failure_lines_keep_their_bracketed_context() -> None:
    from rich.console import Console

    import pipelines.cli as cli
    from pipelines.load import LoadRow

    buf = Console(width=400, record=True, force_terminal=False)
    old, cli.console = cli.console, buf
    try:
        err = "SourceError: failed [channel=webservice reporter=101 page_no=3 attempts=7]"
        cli._print_load([LoadRow("webservice", "samtale", START, 0, 0, 0, failures=[("101", err)],
                                 refused=[("x[bold]y.csv", "rejected", "name [red]odd[/red]")])])
    finally:
        cli.console = old
    text = buf.export_text()
    assert "[channel=webservice reporter=101 page_no=3 attempts=7]" in text
    assert "x[bold]y.csv" in text and "[red]odd[/red]" in text


# ---------------------------------------------------------------------------- item 14


def test_webservice_extract_that_grows_after_its_day_is_swept_next_day(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    ds = "kontaktgruppe"
    files = sorted((src / "webservice" / ds / START.isoformat()).glob("*.jsonl"))
    path = max(files, key=lambda p: p.stat().st_size)
    rep = path.stem
    with start_sources(src) as s:
        cfg = SourcesConfig.from_describe(s.describe())
        ingest_dataset_day(ds, START, Zones(root), cfg, RECEIVED_AT)
        before = lake_rows(root, ds).filter(pl.col("_reporter") == rep)
        late = json.loads(path.read_text().splitlines()[0])
        late["besked_id"] = str(uuid.uuid4())
        with path.open("a") as fh:
            fh.write(json.dumps(late) + "\n")
        res = ingest_dataset_day(ds, START + dt.timedelta(days=1), Zones(root), cfg, RECEIVED_AT)
        assert not res.failures
        assert [p.day for p in res.payloads if p.reporter == rep and p.action == "new_version"] == [START]
        after = lake_rows(root, ds).filter(pl.col("_reporter") == rep)
        assert after.height == before.height + 1
        assert late["besked_id"] in after["besked_id"].to_list()
        assert sorted(after["besked_id"]) == sorted(set(after["besked_id"]))
        [acc] = account_day(START, Zones(root), cfg, folders=["webservice"])
        assert acc.unaccounted == []
        again = ingest_dataset_day(ds, START + dt.timedelta(days=1), Zones(root), cfg, RECEIVED_AT)
        assert all(p.action == "unchanged" for p in again.payloads)
    assert_lake_matches_ledger(root)


# ---------------------------------------------------------------------------- warehouse reconciliation


def test_reconciliation_check_fails_when_a_lake_file_is_tampered_with(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    ingest_dataset_day("ssi_sygesikring_kontakt", START, Zones(root), drops_config(src), RECEIVED_AT)
    assert all(c.passed for c in lake_ledger_checks(root))
    [row] = [r for r in ledger_rows(root) if r.status == "loaded"]
    t = pq.read_table(row.lake_path)
    pq.write_table(t.slice(0, t.num_rows - 1), row.lake_path)
    bad, archive = lake_ledger_checks(root)
    assert not bad.passed and bad.failures == 1 and row.payload_id in str(bad.examples) and archive.passed
    shutil.copy(row.lake_path, Path(row.lake_path).with_name("SSI__stray.parquet"))
    worse, _ = lake_ledger_checks(root)
    assert worse.failures == 2
    # the archive holds superseded payloads' files only: a loaded payload's rows there are caught
    archive_path(root, row.lake_path).parent.mkdir(parents=True)
    shutil.copy(row.lake_path, archive_path(root, row.lake_path))
    _, archive = lake_ledger_checks(root)
    assert archive.failures == 1 and "does not have superseded" in str(archive.examples)


def test_marker_channels_still_wait_for_the_marker(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    day_dir = day_dir_of(src, "drops", "uvm")
    (day_dir / f"uddannelse_{D1}.csv.done").unlink()
    assert not marker_path(day_dir / f"uddannelse_{D1}.csv").exists()
    res = ingest_dataset_day("uddannelse", START, Zones(root), drops_config(src), RECEIVED_AT)
    # not read: an ``ignored`` row says it waits for its marker, nothing landed, nothing in the lake
    assert [p.action for p in res.payloads] == ["ignored"]
    [row] = ledger_rows(root)
    assert row.status == "ignored" and "no .done marker" in row.error and not row.landing_path
    assert not (root / "lake" / "uddannelse").exists()


# ---------------------------------------------------------------------------- item 9 (webservice), CLI summary


def test_webservice_page_of_another_reporter_is_rejected(tmp_path: Path) -> None:
    from pipelines.ingest import load_payload
    from pipelines.landing import PayloadKey

    c = C["kontaktgruppe"]
    rec = kontaktgruppe_record("147")

    def page(envelope: str, records: list[dict]) -> bytes:
        return webservice_page("kontaktgruppe", envelope, records)

    led = Ledger(tmp_path / "ledger.sqlite")
    zones = Zones(tmp_path)
    k101 = PayloadKey("webservice", "101", "kontaktgruppe", START, "page-00001")
    out = load_payload(zones, led, c, k101, page("147", [rec]), ".json", RECEIVED_AT, envelope_reporter="147")
    assert out.action == "rejected" and "envelope names reporter '147'" in out.reason
    k151 = PayloadKey("webservice", "151", "kontaktgruppe", START, "page-00001")
    out = load_payload(zones, led, c, k151, page("151", [rec]), ".json", RECEIVED_AT, envelope_reporter="151")
    assert out.action == "rejected" and "records name another reporter" in out.reason
    k147 = PayloadKey("webservice", "147", "kontaktgruppe", START, "page-00001")
    out = load_payload(zones, led, c, k147, page("147", [rec]), ".json", RECEIVED_AT, envelope_reporter="147")
    assert out.action == "new" and out.accepted == 1
    assert {r.key.reporter: r.status for r in led.rows()} == {"101": "rejected", "151": "rejected", "147": "loaded"}
    assert set(lake_rows(tmp_path, "kontaktgruppe")["_reporter"]) == {"147"}
    led.close()


def test_dsdw_load_prints_rejections_and_the_days_reconciliation(src: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    day_dir = day_dir_of(src, "portal")
    body = portal_payload(C["akasse_fravaer"], records("akasse_fravaer", 3, "013"))
    (day_dir / f"akasse_fravaer_013_{D1}.csv").write_bytes(body)
    (day_dir / f"akasse_fravaer_{D1}.csv").write_bytes(body)
    with start_sources(src) as s:
        state = tmp_path / "sources.json"
        state.write_text(json.dumps(s.describe()))
        args = ["load", "--date", START.isoformat(), "--engine", "direct", "--root", str(tmp_path / "zones"),
                "--sources", str(state), "--received-at", RECEIVED_AT]
        res = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
        again = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    words = " ".join(res.output.split())
    assert f"REJECTED akasse_fravaer {START} 'akasse_fravaer_{D1}.csv'" in words and "naming rule" in words
    assert "Reconciliation" in words
    table = [ln for ln in res.output.splitlines() if START.isoformat() in ln and "│" in ln]
    cells = {ln.split("│")[2].strip(): ln.split("│")[-2].strip() for ln in table}
    assert set(cells) == {"ftp", "portal", "uvm", "ssi", "webservice"} and set(cells.values()) == {"0"}
    assert again.exit_code == 0 and "REJECTED" not in again.output  # the rerun: nothing new to report


def test_hard_links_undecodable_names_and_header_only_exports(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    ds = "akasse_fravaer"
    day_dir = day_dir_of(src, "portal")
    outside = tmp_path / "secret.csv"
    outside.write_bytes(b"hemmeligt;indhold\r\n")
    os.link(outside, vacate(day_dir / f"akasse_fravaer_002_{D1}.csv"))
    os.close(os.open(os.path.join(os.fsencode(day_dir), b"akasse_fravaer_\xff_" + D1.encode() + b".csv"),
                     os.O_CREAT | os.O_WRONLY))
    header = portal_payload(C[ds], [])
    for rep in ("001", "009"):  # two a-kasser with nothing to report send the same bytes
        (day_dir / f"akasse_fravaer_{rep}_{D1}.csv").write_bytes(header)
    portal = sorted(n for n, c in C.items() if c.channel == "portal")
    res = ingest_day(START, Zones(root), drops_config(src), RECEIVED_AT, datasets=portal)
    assert not [f for r in res for f in r.failures]
    [link] = by_name(root, f"akasse_fravaer_002_{D1}.csv")
    assert link.status == "rejected" and "hard link" in link.error and link.landing_path == ""
    [odd] = by_name(root, f"akasse_fravaer_\\xff_{D1}.csv")
    assert odd.status == "rejected" and "naming rule" in odd.error
    for rep in ("001", "009"):
        [row] = by_name(root, f"akasse_fravaer_{rep}_{D1}.csv")
        assert (row.status, row.rows_read, row.rows_accepted) == ("loaded", 0, 0)
    landed = b"".join(p.read_bytes() for p in (root / "landing").rglob("*") if p.is_file())
    assert b"hemmeligt" not in landed
    [acc] = account_day(START, Zones(root), drops_config(src), folders=["portal"])
    assert acc.unaccounted == []


def test_a_file_with_another_datasets_header_is_rejected(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    day_dir = day_dir_of(src, "portal")
    other = portal_payload(C["akasse_afmelding"], records("akasse_afmelding", 3, "013"))
    (day_dir / f"akasse_afmelding_013_{D1}.csv").write_bytes(other)
    target = day_dir / f"akasse_fravaer_013_{D1}.csv"
    target.write_bytes(other)
    ingest_dataset_day("akasse_fravaer", START, Zones(root), drops_config(src), RECEIVED_AT)
    [row] = by_name(root, target.name)
    assert row.status == "rejected" and "header" in row.error and row.rows_quarantined == row.rows_read > 0
    assert lake_rows(root, "akasse_fravaer").filter(pl.col("_payload_id") == row.payload_id).is_empty()


def test_a_ledger_written_before_the_final_states_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    con = sqlite3.connect(tmp_path / "ledger.sqlite")  # the schema before issue 11
    con.executescript("""
        CREATE TABLE payloads (channel TEXT NOT NULL, reporter TEXT NOT NULL, dataset TEXT NOT NULL,
          leveringsdato TEXT NOT NULL, source_name TEXT NOT NULL, version INTEGER NOT NULL, payload_id TEXT NOT NULL,
          sha256 TEXT NOT NULL, bytes INTEGER NOT NULL, supersedes TEXT, rows_read INTEGER, rows_accepted INTEGER,
          rows_quarantined INTEGER, received_at TEXT NOT NULL,
          status TEXT NOT NULL CHECK (status IN ('landed', 'loaded', 'failed', 'superseded')), error TEXT,
          landing_path TEXT NOT NULL, lake_path TEXT,
          PRIMARY KEY (channel, reporter, dataset, leveringsdato, source_name, version));
        CREATE TABLE cursors (channel TEXT NOT NULL, reporter TEXT NOT NULL, dataset TEXT NOT NULL,
          leveringsdato TEXT NOT NULL, next_cursor TEXT, pages INTEGER NOT NULL, complete INTEGER NOT NULL,
          PRIMARY KEY (channel, reporter, dataset, leveringsdato));
        INSERT INTO payloads VALUES ('ftp', '101', 'sanktion', '2026-10-01', 'a.csv', 1, 'p1', 's1', 3, NULL, 1, 1, 0,
          't', 'loaded', NULL, '/l', '/k');
        INSERT INTO cursors VALUES ('webservice', '101', 'samtale', '2026-10-01', NULL, 2, 1);
    """)
    con.close()
    led = Ledger(tmp_path / "ledger.sqlite")
    try:
        [row] = led.rows()
        assert (row.payload_id, row.status, row.lake_path) == ("p1", "loaded", "/k")
        from pipelines.landing import PayloadKey

        key = PayloadKey("ftp", "101", "sanktion", START, "b.csv")
        assert led.record_final(key, "p2", "s2", 0, "", "t", "rejected", "why").action == "rejected"
        assert led.cursor_tail("webservice", "101", "samtale", START) == (None, 2, None)
    finally:
        led.close()


# ---------------------------------------------------------------------------- a file named for another day


def test_a_file_named_for_an_earlier_day_is_filed_under_that_day_and_a_future_one_rejected(
        src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    ds, day2 = "akasse_fravaer", START + dt.timedelta(days=1)
    folder1, folder2 = day_dir_of(src, "portal"), src / "portal" / day2.isoformat()
    folder2.mkdir(parents=True, exist_ok=True)
    original = records(ds, 9, "013")
    name = f"akasse_fravaer_013_{D1}.csv"
    (folder1 / name).write_bytes(portal_payload(C[ds], original))
    ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
    # day 2: the reporter re-uploads the corrected file under its original name, another a-kasse's
    # file for day 1 arrives late, and a third names the day after the folder's
    corrected = [dict(r) for r in original]
    corrected[2]["version"] = "5"
    (folder2 / name).write_bytes(portal_payload(C[ds], corrected))
    late = records(ds, 4, "067")
    late_name = vacate(folder2 / f"akasse_fravaer_067_{D1}.csv").name
    (folder2 / late_name).write_bytes(portal_payload(C[ds], late))
    future = f"akasse_fravaer_009_{(day2 + dt.timedelta(days=1)):%Y%m%d}.csv"
    (folder2 / future).write_bytes(portal_payload(C[ds], records(ds, 2, "009")))
    res = ingest_dataset_day(ds, day2, Zones(root), drops_config(src), RECEIVED_AT)
    assert not res.failures
    got = {p.source_name: p for p in res.payloads}
    assert got[name].action == "new_version" and got[name].day == START
    assert any("correction of version 1" in w for w in got[name].warnings)
    assert got[late_name].action == "new" and any("late delivery" in w for w in got[late_name].warnings)
    v1, v2 = by_name(root, name)
    assert (v1.key.leveringsdato, v1.status, v1.arrived) == (START, "superseded", None)
    assert (v2.key.leveringsdato, v2.status, v2.arrived) == (START, "loaded", day2.isoformat())
    assert v2.supersedes == v1.payload_id and v2.rows_accepted == 9
    [lr] = by_name(root, late_name)
    assert (lr.key.leveringsdato, lr.status, lr.arrived, lr.rows_accepted) == (START, "loaded", day2.isoformat(), 4)
    [fr] = by_name(root, future)
    assert fr.status == "rejected" and "a day after the folder" in fr.error and fr.key.leveringsdato == day2
    # the data: day 1's partition holds the corrected version and the late file; day 2's none of them
    lake1 = lake_rows(root, ds, START)
    mine = lake1.filter(pl.col("_reporter") == "013")
    assert sorted(mine["besked_id"].to_list()) == sorted(r["besked_id"] for r in original)
    assert set(mine["_payload_id"]) == {v2.payload_id}
    assert mine.filter(pl.col("besked_id") == original[2]["besked_id"])["version"].to_list() == [5]
    assert set(mine["_leveringsdato"].to_list()) == {START}
    assert sorted(lake1.filter(pl.col("_reporter") == "067")["besked_id"]) == sorted(r["besked_id"] for r in late)
    lake2 = lake_rows(root, ds, day2)
    assert lake2.is_empty() or not set(lake2["besked_id"]) & {r["besked_id"] for r in original + late}
    events = [e for e in Ledger(root / "ledger.sqlite").events() if e[7] == "late_delivery"]
    assert {e[5] for e in events} == {name, late_name}
    # reruns of either day change nothing: day 1's folder still holds the original, which does not win back
    before = ledger_rows(root)
    for d in (START, day2, START):
        again = ingest_dataset_day(ds, d, Zones(root), drops_config(src), RECEIVED_AT)
        assert all(p.action == "unchanged" for p in again.payloads), [(p.source_name, p.action) for p in again.payloads]
    assert ledger_rows(root) == before
    for d in (START, day2):
        [acc] = account_day(d, Zones(root), drops_config(src), folders=["portal"])
        assert not [n for n in acc.unaccounted if n.startswith(ds + "_")], acc  # (only this dataset was loaded)
    assert_lake_matches_ledger(root)


# ---------------------------------------------------------------------------- a revert wins in the warehouse


def test_a_revert_to_an_earlier_versions_bytes_wins_in_lake_and_warehouse(src: Path, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb
    from fixtures_wh import use_keys

    from pipelines.warehouse.build import load_warehouse, published_path

    use_keys(monkeypatch, tmp_path / "keys")
    root = tmp_path / "zones"
    ds, name = "akasse_fravaer", f"akasse_fravaer_013_{D1}.csv"
    path = day_dir_of(src, "portal") / name
    first = records(ds, 3, "013")
    for k, r in enumerate(first):
        r["fravaer_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"revert/{k}"))
    start0 = dt.date.fromisoformat(str(first[1]["startdato"]))
    corrected = [dict(r) for r in first]
    corrected[1].update(startdato=(start0 - dt.timedelta(days=3)).isoformat(), version="2")
    again = [dict(r) for r in corrected]
    again[1].update(startdato=(start0 - dt.timedelta(days=5)).isoformat(), version="3")

    def current() -> dict[str, tuple]:
        con = duckdb.connect(str(published_path(root)), read_only=True)
        try:
            return {k: (s, v) for k, s, v in con.execute(
                f"SELECT fravaer_id, startdato, version FROM fct_{ds}_aktuel").fetchall()}
        finally:
            con.close()

    # deliver, correct, then correct again and revert to the first bytes between two warehouse loads
    for n, versions in enumerate(([first], [corrected], [again, first])):
        for recs in versions:
            path.write_bytes(portal_payload(C[ds], recs))
            res = ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
            assert [p.action for p in res.payloads if p.source_name == name] == ["new" if n == 0 else "new_version"]
        load_warehouse(root, START + dt.timedelta(days=n))
        want = start0 - dt.timedelta(days=3) if n == 1 else start0
        assert current()[first[1]["fravaer_id"]] == (want, 2 if n == 1 else 1), n
    v1, v2, _v3, v4 = by_name(root, name)
    assert (v1.status, v2.status, v4.status) == ("superseded", "superseded", "loaded")
    assert v4.sha256 == v1.sha256 and v4.payload_id != v1.payload_id and v4.supersedes == _v3.payload_id
    v3 = v4
    assert v3.landing_path == v1.landing_path and v3.payload_id in Path(v3.lake_path).name
    lake = lake_rows(root, ds).filter(pl.col("_reporter") == "013")
    assert set(lake["_payload_id"]) == {v3.payload_id} and lake.height == 3
    assert lake.filter(pl.col("fravaer_id") == first[1]["fravaer_id"])["startdato"].to_list() == [start0]
    now = current()
    assert {r["fravaer_id"]: now[r["fravaer_id"]] for r in first} == {
        r["fravaer_id"]: (dt.date.fromisoformat(str(r["startdato"])), 1) for r in first}
    # a rerun is a no-op, also for the warehouse
    again = ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
    assert all(p.action == "unchanged" for p in again.payloads)
    assert load_warehouse(root, START + dt.timedelta(days=3)).payloads == 0
    assert_lake_matches_ledger(root)


# ---------------------------------------------------------------------------- more bad-input classes


def test_headers_that_do_not_match_are_rejected_naming_what_is_wrong(src: Path, tmp_path: Path) -> None:
    """Duplicate column names, a trailing delimiter, names in upper case or padded: the format's header is
    matched exactly (only the order may differ); line ends may be CRLF, LF or mixed."""
    root = tmp_path / "zones"
    ds = "akasse_fravaer"
    day_dir = day_dir_of(src, "portal")
    recs = records(ds, 3, "013")
    body = portal_payload(C[ds], recs)
    bom, rest = body[:3], body[3:]
    assert bom == b"\xef\xbb\xbf"  # the portal's export writes one
    head, *lines = rest.split(b"\r\n")
    cols = head.split(b";")
    cases = {  # reporter -> (file body, what the reason must say)
        "002": (bom + b"\r\n".join([b";".join([*cols[:-1], cols[0]]), *lines]), "named more than once"),
        "005": (bom + b"\r\n".join([ln + b";" if ln else ln for ln in [head, *lines]]), "trailing delimiter"),
        "008": (bom + b"\r\n".join([head.upper(), *lines]), "another case"),
        "010": (bom + b"\r\n".join([head.replace(b";", b" ; "), *lines]), "padded with spaces"),
        "012": (bom + bom + rest, "missing ['besked_id']"),  # a second byte order mark
    }
    good = {"013": rest.replace(b"\r\n", b"\n"),  # LF only, no BOM
            "017": portal_payload(C[ds], records(ds, 3, "017")).replace(b"\r\n", b"\n", 2)}  # mixed
    for rep, data in [*((r, d) for r, (d, _) in cases.items()), *good.items()]:
        data = data.replace(b";013;", f";{rep};".encode()) if rep in cases else data
        vacate(day_dir / f"{ds}_{rep}_{D1}.csv").write_bytes(data)
    res = ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
    assert not res.failures
    lake = lake_rows(root, ds)
    for rep, (_data, why) in cases.items():
        [row] = by_name(root, f"{ds}_{rep}_{D1}.csv")
        assert row.status == "rejected" and why in row.error, (rep, row.error)
        assert row.rows_read == row.rows_quarantined == 3
        assert lake.filter(pl.col("_reporter") == rep).is_empty()
    for rep in good:
        [row] = by_name(root, f"{ds}_{rep}_{D1}.csv")
        assert (row.status, row.rows_accepted) == ("loaded", 3), rep
        got = lake.filter(pl.col("_reporter") == rep)
        assert sorted(got["fravaer_id"].to_list()) == sorted(r["fravaer_id"] for r in recs)
        assert set(got["indberetter"]) == {rep}


def test_names_with_other_digits_or_lookalike_letters_do_not_fit(src: Path, tmp_path: Path) -> None:
    root = tmp_path / "zones"
    ds = "akasse_fravaer"
    day_dir = day_dir_of(src, "portal")
    body = portal_payload(C[ds], records(ds, 2, "013"))
    odd = [f"{ds}_\u0660\u0661\u0663_{D1}.csv",  # Arabic-Indic digits for 013
           f"{ds}_\uff10\uff11\uff13_{D1}.csv",  # full-width digits
           f"{ds}_013_\u0662\u0660\u0662\u0666\u0661\u0660\u0660\u0661.csv",
           f"\u0430kasse_fravaer_013_{D1}.csv",  # Cyrillic a
           f"{ds}_013_{D1}.csv\u200b",  # zero-width space
           f"{ds}_013_{D1}.\u0441sv"]  # Cyrillic s
    for n in odd:
        (day_dir / n).write_bytes(body)
    portal = sorted(n for n, c in C.items() if c.channel == "portal")  # (a name of no dataset: the folder's first)
    res = ingest_day(START, Zones(root), drops_config(src), RECEIVED_AT, datasets=portal)
    assert not [f for r in res for f in r.failures]
    for n in odd:
        rows = [r for r in ledger_rows(root) if r.key.source_name == n]
        assert len(rows) == 1 and rows[0].status == "rejected" and "naming rule" in rows[0].error, (n, rows)
        assert rows[0].key.reporter == "-" and Path(rows[0].landing_path).read_bytes() == body
    assert lake_rows(root, ds).filter(pl.col("_reporter") == "013").is_empty() or all(
        r.status != "loaded" or r.key.source_name not in odd for r in ledger_rows(root))


def test_a_file_that_changes_while_it_is_read_is_not_loaded_torn(src: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.sources import filedrop

    root = tmp_path / "zones"
    ds = "akasse_fravaer"
    target = vacate(day_dir_of(src, "portal") / f"{ds}_013_{D1}.csv")
    recs = records(ds, 4, "013")
    target.write_bytes(portal_payload(C[ds], recs[:2]))
    real_read = os.read
    grown = portal_payload(C[ds], recs)

    def read_and_grow(fd: int, n: int) -> bytes:  # the reporter rewrites the file during our read
        chunk = real_read(fd, n)
        if chunk and target.read_bytes() != grown:
            target.write_bytes(grown)
        return chunk

    monkeypatch.setattr(filedrop, "_os_read", read_and_grow)
    res = ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
    mine = [p for p in res.payloads if p.source_name == target.name]
    # read again once it held still: the whole new file, never the first half of one and the rest of another
    assert [p.action for p in mine] == ["new"] and mine[0].accepted == 4
    [row] = by_name(root, target.name)
    assert Path(row.landing_path).read_bytes() == grown
    lake = lake_rows(root, ds).filter(pl.col("_reporter") == "013")
    assert sorted(lake["besked_id"]) == sorted(r["besked_id"] for r in recs)

    def always_grows(fd: int, n: int) -> bytes:
        chunk = real_read(fd, n)
        if chunk:
            with open(target, "ab") as fh:
                fh.write(b"")
            os.utime(target, ns=(1, os.stat(target).st_mtime_ns + 1_000_000))
        return chunk

    monkeypatch.setattr(filedrop, "_os_read", always_grows)
    target.write_bytes(portal_payload(C[ds], recs[:3]))
    res = ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT, raise_on_failure=False)
    assert [(p.source_name, p.action) for p in res.payloads if p.action != "unchanged"] == [(target.name, "ignored")]
    assert [n for n, e in res.failures] == [target.name] and "changed while" in res.failures[0][1]
    # the version before stays loaded (and in the lake); the new bytes wait, recorded as an upload in progress
    assert [r.status for r in by_name(root, target.name)] == ["loaded", "ignored"]
    assert "upload in progress" in by_name(root, target.name)[-1].error
    lake = lake_rows(root, ds).filter(pl.col("_reporter") == "013")
    assert sorted(lake["besked_id"]) == sorted(r["besked_id"] for r in recs)


# ---------------------------------------------------------------------------- padding after the last line


def reporter_rows(root: Path, dataset: str, reporter: str) -> pl.DataFrame:
    rows = lake_rows(root, dataset)
    return rows if rows.is_empty() else rows.filter(pl.col("_reporter") == reporter)


def test_nul_fill_or_ctrl_z_after_the_last_line_is_rejected_and_the_clean_resend_loads(src: Path,
                                                                                      tmp_path: Path) -> None:
    """A file zero-filled after its last line (preallocated, or a copy that stopped) or ended by a DOS
    Ctrl-Z: rejected naming that, its records quarantined (not one garbage record, not a 'missing
    trailer' while the trailer is there), nothing in the lake; the reporter's clean re-send loads."""
    from pipelines.contracts.wire import uvm_payload

    root = tmp_path / "zones"
    REPORTER = {"akasse_fravaer": "013", "ssi_lpr_kontakt": "SSI", "uddannelse": "UVM"}  # noqa: N806
    cases = {  # dataset -> (folder, file name, clean bytes, tail, what the reason says)
        "akasse_fravaer": (("portal",), f"akasse_fravaer_013_{D1}.csv",
                           portal_payload(C["akasse_fravaer"], records("akasse_fravaer", 4, "013")),
                           b"\x00" * 8192, "8,192 NUL byte(s) (zero padding)"),
        "ssi_lpr_kontakt": (("drops", "ssi"), f"ssi_lpr_kontakt_{D1}.txt",
                            ssi_payload(C["ssi_lpr_kontakt"], records("ssi_lpr_kontakt", 4, "SSI"), D1),
                            b"\x00" * 300, "300 NUL byte(s) (zero padding)"),
        "uddannelse": (("drops", "uvm"), f"uddannelse_{D1}.csv",
                       uvm_payload(C["uddannelse"], records("uddannelse", 4, "UVM")),
                       b"\x1a", "a DOS end-of-file mark (Ctrl-Z, byte 1A)"),
    }
    for folder, name, clean, tail, _said in cases.values():
        target = vacate(day_dir_of(src, *folder) / name)
        target.write_bytes(clean + tail)
        marker_path(target).touch()
    for ds, (_folder, name, _clean, _tail, said) in cases.items():
        res = ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
        assert not res.failures, res.failures
        [row] = by_name(root, name)
        assert row.status == "rejected" and row.error.startswith(f"the payload ends in {said} after its last line")
        assert "cut mid-record" not in row.error and "missing trailer" not in row.error
        assert (row.rows_read, row.rows_quarantined, row.rows_accepted) == (4, 4, 0)
        rep = REPORTER[ds]
        assert reporter_rows(root, ds, rep).is_empty()
        q = quarantine(root, ds).filter(pl.col("payload_id") == row.payload_id)
        held = q.filter(pl.col("error_kind") == "payload_rejected")
        assert sorted(json.loads(r)["besked_id"] for r in held["raw_record"]) == sorted(
            r["besked_id"] for r in records(ds, 4, rep))
        assert q.filter(pl.col("error_kind") == "padding")["record_no"].to_list() == [None]
    for ds, (folder, name, clean, _tail, _said) in cases.items():  # the reporter sends it again, clean
        day_dir_of(src, *folder).joinpath(name).write_bytes(clean)
        ingest_dataset_day(ds, START, Zones(root), drops_config(src), RECEIVED_AT)
        rows = by_name(root, name)
        assert [(r.version, r.status) for r in rows] == [(1, "rejected"), (2, "loaded")]
        got = reporter_rows(root, ds, REPORTER[ds])
        assert rows[1].rows_accepted == 4 and sorted(got["besked_id"]) == sorted(
            r["besked_id"] for r in records(ds, 4, REPORTER[ds]))
    assert_lake_matches_ledger(root)
