"""Channel clients against the real loopback source systems (no network mocks).

The webservice and FTP tests run against ``start_sources`` over a tiny generated DIR (or
a small fixture DIR written per test); waits are recorded by an injected ``sleep``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.simulate.servers import (
    Faults,
    SourceSystems,
    leave_zero_byte,
    marker_path,
    publish,
    publish_slowly,
    start_sources,
)
from pipelines.sources import (
    AuthError,
    FtpClient,
    Page,
    RemoteFile,
    SourceError,
    TrailerError,
    WebserviceClient,
    complete_files,
    count_trailer,
    portal_files,
    wait_size_stable,
)

START = dt.date(2026, 10, 1)
DATASET = "kontaktgruppe"
LIMIT = 10


@pytest.fixture(scope="module")
def gen(sources_seed1: Path) -> Path:
    """Tiny, 2 days from 1 Oct, seed 1 (conftest ``sources_seed1``, generated once per session; read only)."""
    return sources_seed1


@pytest.fixture(scope="module")
def running(gen: Path) -> Iterator[SourceSystems]:
    with start_sources(gen) as systems:
        yield systems


@pytest.fixture
def src(running: SourceSystems) -> Iterator[SourceSystems]:
    running.faults.clear()
    yield running
    running.faults.clear()


@pytest.fixture(scope="module")
def extract(gen: Path) -> tuple[str, str, list[dict]]:
    """(reporter, token, records) of the largest kontaktgruppe extract on the first day."""
    files = sorted((gen / "webservice" / DATASET / START.isoformat()).glob("*.jsonl"))
    path = max(files, key=lambda p: p.stat().st_size)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    assert len(records) > 3 * LIMIT
    tokens = json.loads((gen / "webservice" / "tokens.json").read_text())
    return path.stem, tokens[path.stem], records


class Waits(list):
    """Injected ``sleep``: records the seconds instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _client(src: SourceSystems, token: str, waits: Waits, **kw) -> WebserviceClient:
    return WebserviceClient(src.webservice_url, token, sleep=waits, rng_seed=7, **kw)


def _pages(client: WebserviceClient, **kw) -> list[Page]:
    return list(client.iter_pages(DATASET, START, limit=LIMIT, **kw))


def _records(pages: list[Page]) -> list[dict]:
    return [r for p in pages for r in p.records]


# --- webservice


def test_pages_hold_every_record_once_and_the_bytes_as_received(src: SourceSystems, extract) -> None:
    reporter, token, expected = extract
    waits = Waits()
    with _client(src, token, waits) as client:
        pages = _pages(client)
    assert _records(pages) == expected
    assert len(pages) == math.ceil(len(expected) / LIMIT)
    assert [p.page_no for p in pages] == list(range(1, len(pages) + 1))
    assert pages[0].cursor is None and pages[-1].next_cursor is None
    assert all(p.cursor == prev.next_cursor for prev, p in zip(pages, pages[1:], strict=False))
    assert {p.reporter for p in pages} == {reporter} and {p.total for p in pages} == {len(expected)}
    # body is exactly what the server sends for that cursor, and what records were parsed from
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=src.webservice_url, headers=headers) as raw:
        for p in (pages[0], pages[1], pages[-1]):
            params = {"dato": START.isoformat(), "limit": LIMIT, **({"cursor": p.cursor} if p.cursor else {})}
            assert raw.get(f"/v1/{DATASET}/udtraek", params=params).content == p.body
            assert json.loads(p.body)["records"] == p.records
    assert waits == []


def test_resume_from_the_last_committed_cursor(src: SourceSystems, extract) -> None:
    _, token, expected = extract
    with _client(src, token, Waits()) as client:
        it = client.iter_pages(DATASET, START, limit=LIMIT)
        committed = [next(it) for _ in range(3)]  # crash after landing page 3
    with _client(src, token, Waits()) as client:
        rest = _pages(client, start_cursor=committed[-1].next_cursor)
    assert rest[0].cursor == committed[-1].next_cursor
    assert _records(committed) + _records(rest) == expected


def test_list_datasets(src: SourceSystems, gen: Path, extract) -> None:
    with _client(src, extract[1], Waits()) as client:
        got = client.list_datasets()
    from pipelines.contracts import load_contracts

    # every webservice contract (a dataset without records in the period is an empty extract), and every
    # directory present
    known = {n for n, c in load_contracts().items() if c.channel == "webservice"}
    assert got == sorted(known | {p.name for p in (gen / "webservice").iterdir() if p.is_dir()})


def test_http_500_is_retried_with_jittered_backoff(src: SourceSystems, extract) -> None:
    _, token, expected = extract
    src.faults.set("http_500", 2, path=f"/v1/{DATASET}")
    waits = Waits()
    with _client(src, token, waits, backoff_base=0.1) as client:
        assert _records(_pages(client)) == expected
    assert src.faults.fired("http_500") == 2
    assert len(waits) == 2 and all(0 <= w <= 0.1 * 2**i for i, w in enumerate(waits))


def test_http_429_waits_retry_after_capped(src: SourceSystems, extract) -> None:
    _, token, expected = extract
    src.faults.set("http_429", 1, retry_after=3)
    waits = Waits()
    with _client(src, token, waits) as client:
        assert _records(_pages(client)) == expected
    assert waits == [3.0]

    src.faults.set("http_429", 1, retry_after=30)
    waits = Waits()
    with _client(src, token, waits, backoff_max=5.0) as client:
        assert _records(_pages(client)) == expected
    assert waits == [5.0]


def test_slow_response_times_out_and_is_retried(src: SourceSystems, extract) -> None:
    _, token, expected = extract
    src.faults.set("slow", 1, delay=1.5)
    waits = Waits()
    t0 = time.monotonic()
    with _client(src, token, waits, timeout=0.3) as client:
        assert _records(_pages(client)) == expected
    assert time.monotonic() - t0 < 1.4  # gave up on the slow response instead of waiting it out
    assert src.faults.fired("slow") == 1 and len(waits) == 1


def test_truncated_page_is_retried(src: SourceSystems, extract) -> None:
    _, token, expected = extract
    src.faults.set("truncated_page", 1, path=f"/v1/{DATASET}")
    waits = Waits()
    with _client(src, token, waits) as client:
        pages = _pages(client)
    assert _records(pages) == expected
    assert src.faults.fired("truncated_page") == 1 and len(waits) == 1
    assert all(json.loads(p.body)["records"] == p.records for p in pages)


def test_duplicate_page_is_not_yielded_twice(src: SourceSystems, extract) -> None:
    _, token, expected = extract
    src.faults.set("duplicate_page", 1)
    with _client(src, token, Waits()) as client:
        pages = _pages(client)
    assert src.faults.fired("duplicate_page") == 1
    assert _records(pages) == expected
    assert len({p.body for p in pages}) == len(pages) == math.ceil(len(expected) / LIMIT)

    src.faults.set("duplicate_page", 2)  # the re-request is a duplicate too: give up loudly
    with _client(src, token, Waits()) as client, pytest.raises(SourceError, match="previous page") as err:
        _pages(client)
    assert err.value.dataset == DATASET and err.value.page_no == 2 and err.value.cursor


def test_bad_token_raises_auth_error_without_retrying(src: SourceSystems) -> None:
    waits = Waits()
    with _client(src, "wrong-token", waits) as client, pytest.raises(AuthError) as err:
        _pages(client)
    assert waits == []
    assert DATASET in str(err.value) and START.isoformat() in str(err.value)


def test_unknown_dataset_fails_at_once(src: SourceSystems, extract) -> None:
    waits = Waits()
    with _client(src, extract[1], waits) as client, pytest.raises(SourceError, match="404") as err:
        list(client.iter_pages("no_such_dataset", START))
    assert not isinstance(err.value, AuthError) and waits == []


def test_persistent_500_gives_up_naming_the_unit(src: SourceSystems, extract) -> None:
    reporter, token, _ = extract
    src.faults.set("http_500", 100)
    waits = Waits()
    with _client(src, token, waits, max_retries=3, reporter=reporter) as client, \
            pytest.raises(SourceError) as err:
        _pages(client)
    msg = str(err.value)
    assert DATASET in msg and START.isoformat() in msg and reporter in msg and "HTTP 500" in msg
    assert err.value.dataset == DATASET and err.value.dato == START and err.value.attempts == 4
    again = pickle.loads(pickle.dumps(err.value))  # errors survive crossing a process boundary
    assert str(again) == msg and again.dataset == DATASET
    assert src.faults.fired("http_500") == 4 and len(waits) == 3


def test_response_for_another_reporter_is_refused(src: SourceSystems, gen: Path, extract) -> None:
    reporter, token, _ = extract
    other = next(r for r in json.loads((gen / "webservice" / "tokens.json").read_text()) if r != reporter)
    with _client(src, token, Waits(), reporter=other) as client, pytest.raises(SourceError, match="reporter"):
        _pages(client)


# --- FTP


def _ftp(src: SourceSystems, **kw) -> FtpClient:
    kw.setdefault("sleep", Waits())
    return FtpClient(src.ftp_host, src.ftp_port, src.ftp_user, src.ftp_password, **kw)


def test_ftp_lists_day_directories(src: SourceSystems, gen: Path) -> None:
    local = {f"/{p.parent.name}/{p.name}": p.stat().st_size for p in (gen / "ftp").rglob("*.csv")}
    with _ftp(src) as ftp:
        every = ftp.list_files()
        first_day = ftp.list_files(START)
        assert ftp.list_files(START + dt.timedelta(days=30)) == []
    assert {f.path: f.size for f in every} == local
    assert first_day and all(f.day == START and f.path.startswith(f"/{START}/") for f in first_day)
    kode = first_day[0].name.split("_")[-2]
    with FtpClient(src.ftp_host, src.ftp_port, kode, src.ftp_password_for(kode)) as ftp:
        own = ftp.list_files()
    assert own and all(f"_{kode}_" in f.name for f in own)


def test_ftp_fetch_downloads_verified_file(src: SourceSystems, gen: Path, tmp_path: Path) -> None:
    with _ftp(src) as ftp:
        remote = ftp.list_files(START)[0]
        got = ftp.fetch(remote, tmp_path / "in")
    assert got == tmp_path / "in" / remote.name
    assert got.read_bytes() == (gen / "ftp" / START.isoformat() / remote.name).read_bytes()
    assert sorted(p.name for p in got.parent.iterdir()) == [remote.name]  # no .part left


def test_ftp_resumes_after_disconnects_with_identical_bytes(
    src: SourceSystems, gen: Path, tmp_path: Path
) -> None:
    with _ftp(src, max_retries=1) as ftp:
        remote = max(ftp.list_files(), key=lambda f: f.size)
        assert remote.size > 300
        src.faults.set("ftp_disconnect", 3, path=remote.path, after_bytes=100)
        got = ftp.fetch(remote, tmp_path)
    assert src.faults.fired("ftp_disconnect") == 3  # 4 attempts, each resumed where the last stopped
    assert got.read_bytes() == (gen / "ftp" / remote.path.lstrip("/")).read_bytes()


def test_ftp_resumes_a_part_file_left_by_a_crash(src: SourceSystems, gen: Path, tmp_path: Path) -> None:
    with _ftp(src) as ftp:
        remote = ftp.list_files(START)[0]
        data = (gen / "ftp" / remote.path.lstrip("/")).read_bytes()
        (tmp_path / f".{remote.name}.part").write_bytes(data[:150])
        got = ftp.fetch(remote, tmp_path)
    assert got.read_bytes() == data  # a restart from 0 would have appended the head twice
    assert not (tmp_path / f".{remote.name}.part").exists()


def _ftp_csv(rows: list[str], trailer: int | None) -> bytes:
    lines = ["besked_id;indberetter;bemaerkning", *rows]
    if trailer is not None:
        lines.append(f"TRAILER;{trailer}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


@pytest.fixture
def ftp_fixture(tmp_path: Path) -> Iterator[tuple[SourceSystems, Path]]:
    """A small DIR with hand-written FTP files, served on its own."""
    day = tmp_path / "src" / "ftp" / START.isoformat()
    day.mkdir(parents=True)
    rows = ["a-1;101;Frederiksværk øst", 'a-2;101;"to\r\nlinjer"', "a-3;101;"]
    (day / "sanktion_101_20261001.csv").write_bytes(_ftp_csv(rows, 3))
    (day / "sanktion_147_20261001.csv").write_bytes(_ftp_csv(rows, 5))
    (day / "sanktion_151_20261001.csv").write_bytes(_ftp_csv(rows, None))
    (day / "sanktion_153_20261001.csv.part").write_bytes(b"besked_id;indb")
    with start_sources(tmp_path / "src", faults=Faults()) as systems:
        yield systems, day


def test_ftp_trailer_is_checked(ftp_fixture, tmp_path: Path) -> None:
    src, day = ftp_fixture
    with _ftp(src) as ftp:
        files = {f.name: f for f in ftp.list_files()}
        assert sorted(files) == [f"sanktion_{k}_20261001.csv" for k in ("101", "147", "151")]  # no .part
        good = ftp.fetch(files["sanktion_101_20261001.csv"], tmp_path / "in")
        assert count_trailer(good) == (3, 3)  # a quoted line break is one record, not two
        with pytest.raises(TrailerError) as err:
            ftp.fetch(files["sanktion_147_20261001.csv"], tmp_path / "in")
        assert "sanktion_147_20261001.csv: trailer says 5, file has 3 data lines" in str(err.value)
        assert (err.value.expected, err.value.actual) == (5, 3)
        assert pickle.loads(pickle.dumps(err.value)).expected == 5
        with pytest.raises(TrailerError, match="no trailer") as err:
            ftp.fetch(files["sanktion_151_20261001.csv"], tmp_path / "in")
        assert (err.value.expected, err.value.actual) == (None, 3)
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["sanktion_101_20261001.csv"]


def test_ftp_lists_every_entry_and_fetches_without_judging_the_trailer(ftp_fixture, tmp_path: Path) -> None:
    src, day = ftp_fixture
    (day / "sanktion_155_20261001.csv").write_bytes(b"")
    (day / "notes.txt").write_bytes(b"hello")
    (day / "sub").mkdir()
    with _ftp(src) as ftp:
        entries = {f.name: f for f in ftp.list_entries(START)}
        assert {n: f.kind for n, f in entries.items()} == {
            "notes.txt": "file", "sanktion_101_20261001.csv": "file", "sanktion_147_20261001.csv": "file",
            "sanktion_151_20261001.csv": "file", "sanktion_155_20261001.csv": "file", "sub": "dir"}
        assert ftp.list_days() == [START]
        wrong = ftp.fetch(entries["sanktion_147_20261001.csv"], tmp_path / "in", trailer=False)
        assert wrong.read_bytes() == (day / "sanktion_147_20261001.csv").read_bytes()
        empty = ftp.fetch(entries["sanktion_155_20261001.csv"], tmp_path / "in", trailer=False)
        assert empty.read_bytes() == b"" and not (tmp_path / "in" / ".sanktion_155_20261001.csv.part").exists()


def test_scan_day_never_follows_links_and_reports_what_it_refuses(tmp_path: Path) -> None:
    from pipelines.sources import read_regular, scan_day

    day = tmp_path / "drop" / START.isoformat()
    day.mkdir(parents=True)
    (day / "a.csv").write_bytes(b"x")
    marker_path(day / "a.csv").write_bytes(b"")
    (day / "b.csv").write_bytes(b"unmarked: upload not finished")
    (day / "link.csv").symlink_to(tmp_path / "elsewhere.csv")
    os.mkfifo(day / "pipe.csv")
    (day / "sub").mkdir()
    (day / "sub" / "c.csv").write_bytes(b"y")
    (day / "sub" / "deeper").symlink_to("/etc")
    got = {o.name: (o.kind, o.refused is None) for o in scan_day(day, markers=True)}
    assert got == {"a.csv": ("file", True), "link.csv": ("symlink", False), "pipe.csv": ("fifo", False),
                   "sub/c.csv": ("file", False), "sub/deeper": ("symlink", False)}
    assert read_regular(day / "a.csv") == b"x"
    with pytest.raises(OSError):
        read_regular(day / "link.csv")
    with pytest.raises(OSError):
        read_regular(day / "pipe.csv")  # refused on the open descriptor, never blocks


def test_ftp_size_change_since_listing_is_refused(ftp_fixture, tmp_path: Path) -> None:
    src, day = ftp_fixture
    with _ftp(src) as ftp:
        remote = next(f for f in ftp.list_files() if f.name == "sanktion_101_20261001.csv")
        with (day / remote.name).open("ab") as fh:
            fh.write(b"a-4;101;late\r\n")
        with pytest.raises(SourceError, match="size changed") as err:
            ftp.fetch(remote, tmp_path)
        assert err.value.file == remote.path
        assert f"listed {remote.size} bytes, SIZE now {remote.size + 14}" in str(err.value)
        # listed with the new size, it downloads fine
        fresh = RemoteFile(remote.path, remote.name, remote.size + 14, remote.day)
        with pytest.raises(TrailerError):  # ... and then the trailer (3) no longer matches the 4 lines
            ftp.fetch(fresh, tmp_path)
    assert list(tmp_path.iterdir()) == [tmp_path / "src"]


def test_ftp_bad_password_raises_auth_error(src: SourceSystems) -> None:
    with pytest.raises(AuthError), FtpClient(src.ftp_host, src.ftp_port, src.ftp_user, "wrong") as ftp:
        ftp.list_files()


# --- file drops


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generated_uvm_drops_are_picked_up(gen: Path) -> None:
    files = complete_files(gen / "drops" / "uvm")
    expected = sorted(p for p in (gen / "drops" / "uvm").rglob("*.csv"))
    assert [f.path for f in files] == expected and expected
    for f in files:
        assert f.name == f"{f.path.parent.name}/{f.path.name}"
        assert f.size == f.path.stat().st_size and f.sha256 == _sha(f.path)
    assert complete_files(gen / "drops" / "uvm", since={f.name for f in files}) == []


def test_only_marked_files_are_picked_up(tmp_path: Path) -> None:
    payload = tmp_path / "uddannelse_20261001.csv"
    payload.write_bytes("cpr,uddannelse\n0101011234,Tømrer\n".encode() * 50)
    drop = tmp_path / "drop"
    day = drop / START.isoformat()
    faults = Faults()

    publish(payload, day, faults=faults)
    leave_zero_byte(day / "uddannelse_crashed.csv")  # crashed upload: empty, no marker
    (day / ".hidden.csv").write_bytes(b"x")
    marker_path(day / ".hidden.csv").write_bytes(b"")
    (day / "upload.csv.part").write_bytes(b"x")
    faults.set("partial_file", 1)
    publish(payload, day, name="uddannelse_20261002.csv", faults=faults)  # half written, no marker
    assert (day / "uddannelse_20261002.csv").stat().st_size == payload.stat().st_size // 2

    got = complete_files(drop)
    assert [f.name for f in got] == [f"{START}/uddannelse_20261001.csv"]
    assert got[0].sha256 == _sha(payload) and got[0].size == payload.stat().st_size

    publish(payload, day, name="uddannelse_20261002.csv")  # the redelivery completes it
    got = complete_files(drop, since={f"{START}/uddannelse_20261001.csv"})
    assert [f.name for f in got] == [f"{START}/uddannelse_20261002.csv"]
    assert got[0].sha256 == _sha(payload)


def test_growing_upload_is_never_picked_up_half_written(tmp_path: Path) -> None:
    payload = tmp_path / "register.txt"
    payload.write_bytes(b"D|0101011234|x\n" * 200)
    drop = tmp_path / "ssi" / START.isoformat()
    thread = publish_slowly(payload, drop, chunk_bytes=256, interval=0.01)
    seen: list[str] = []
    while thread.is_alive():
        seen += [f.sha256 for f in complete_files(drop.parent)]
        time.sleep(0.005)
    thread.join()
    assert set(seen) <= {_sha(payload)}
    [done] = complete_files(drop.parent)
    assert done.sha256 == _sha(payload) and done.name == f"{START}/register.txt"


def test_portal_files_are_taken_when_size_is_stable(gen: Path, tmp_path: Path) -> None:
    generated = sorted((gen / "portal").rglob("*.csv"))
    assert [f.path for f in portal_files(gen / "portal", interval=0)] == generated and generated

    portal = tmp_path / "portal"
    day = portal / START.isoformat()
    day.mkdir(parents=True)
    stable, growing = day / "akasse_fravaer_001_20261001.csv", day / "akasse_fravaer_002_20261001.csv"
    stable.write_bytes("\ufeffa;b\r\n1;2\r\n".encode())
    growing.write_bytes("\ufeffa;b\r\n".encode())
    (day / "akasse_fravaer_003_20261001.csv").write_bytes(b"")  # export crashed before writing
    (day / ".akasse_fravaer_004_20261001.csv.tmp").write_bytes(b"a;b\r\n")

    def grow(seconds: float) -> None:
        with growing.open("ab") as fh:
            fh.write(b"3;4\r\n")

    assert [f.path for f in portal_files(portal, sleep=grow)] == [stable]
    waits = Waits()
    got = portal_files(portal, since={f"{START}/{stable.name}"}, sleep=waits)
    assert [f.path for f in got] == [growing] and waits == [0.2]
    assert got[0].sha256 == _sha(growing) and got[0].size == growing.stat().st_size


def test_wait_size_stable(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"a;b\r\n")
    grows = iter([True, True, False, False, False])

    def sleep(seconds: float) -> None:
        if next(grows):
            with path.open("ab") as fh:
                fh.write(b"1;2\r\n")

    assert wait_size_stable(path, 0, 2, sleep=sleep) is False  # grew between the two looks
    assert wait_size_stable(path, 0, 2, timeout=5, sleep=sleep) is True
    assert wait_size_stable(tmp_path / "missing.csv", 0, 2, sleep=lambda s: None) is False
    (tmp_path / "empty.csv").write_bytes(b"")
    assert wait_size_stable(tmp_path / "empty.csv", 0, 3, sleep=lambda s: None) is False
