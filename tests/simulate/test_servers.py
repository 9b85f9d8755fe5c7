"""Simulated source systems: real loopback servers, real httpx/ftplib clients, no mocks."""

from __future__ import annotations

import ftplib
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.simulate.servers import (
    Faults,
    SourceSystems,
    complete_files,
    filedrop,
    is_complete,
    leave_partial,
    leave_zero_byte,
    marker_path,
    publish,
    publish_slowly,
    serve_forever,
    start_sources,
)

DATO = "2024-01-02"
TOKENS = {"101": "tok-101-secret", "147": "tok-147-secret"}
N_101 = 1234
N_147 = 7
N_STOR = 5100
FTP_FILE = f"/{DATO}/sanktion_101_20240102.csv"
FTP_OTHER = f"/{DATO}/sanktion_147_20240102.csv"


def _record(reporter: str, i: int) -> dict[str, Any]:
    return {
        "besked_id": f"{reporter}-{DATO}-{i:06d}",
        "indberetter": reporter,
        "seq": i,
        "navn": "Søren Ærø",
        "beloeb": None if i % 7 == 0 else i * 1.5,
    }


def _write_jsonl(path: Path, reporter: str, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps(_record(reporter, i), ensure_ascii=False) + "\n")


def _csv_bytes(kode: str, rows: int) -> bytes:
    lines = ["besked_id;indberetter;cpr_hash;sanktionstype;bemaerkning"]
    lines += [f"{kode}-{i:06d};{kode};h{i:08x};A;Frederiksværk øst" for i in range(rows)]
    lines.append(f"TRAILER;{rows}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated DIR following docs/sources.md."""
    root = tmp_path_factory.mktemp("generated")
    ws = root / "webservice"
    ws.mkdir()
    (ws / "tokens.json").write_text(json.dumps(TOKENS), encoding="utf-8")
    _write_jsonl(ws / "aktivitet" / DATO / "101.jsonl", "101", N_101)
    _write_jsonl(ws / "aktivitet" / DATO / "147.jsonl", "147", N_147)
    _write_jsonl(ws / "stor" / DATO / "101.jsonl", "101", N_STOR)
    (ws / "ydelse" / DATO).mkdir(parents=True)
    ftp = root / "ftp" / DATO
    ftp.mkdir(parents=True)
    (ftp / "sanktion_101_20240102.csv").write_bytes(_csv_bytes("101", 4000))
    (ftp / "sanktion_147_20240102.csv").write_bytes(_csv_bytes("147", 3))
    for sub in ("portal", "drops/uvm", "drops/ssi"):
        (root / sub / DATO).mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def sources(data_dir: Path) -> Iterator[SourceSystems]:
    with start_sources(data_dir) as src:
        yield src


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    if "sources" in request.fixturenames:
        src: SourceSystems = request.getfixturevalue("sources")
        src.faults.clear()
        yield
        src.faults.clear()
    else:
        yield


@pytest.fixture()
def client(sources: SourceSystems) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sources.webservice_url, timeout=5.0) as c:
        yield c


def _get(
    client: httpx.Client, reporter: str | None, dataset: str = "aktivitet", **params: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKENS[reporter]}"} if reporter else {}
    return client.get(f"/v1/{dataset}/udtraek", params={"dato": DATO, **params}, headers=headers)


def _fetch_all(
    client: httpx.Client, reporter: str, dataset: str = "aktivitet", limit: int = 500
) -> list[dict]:
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        resp = _get(client, reporter, dataset, **params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def _ftp(sources: SourceSystems, user: str | None = None) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect(sources.ftp_host, sources.ftp_port, timeout=5)
    user = user or sources.ftp_user
    password = sources.ftp_password if user == sources.ftp_user else sources.ftp_password_for(user)
    ftp.login(user, password)
    ftp.voidcmd("TYPE I")
    return ftp


def _retr(ftp: ftplib.FTP, path: str, rest: int | None = None) -> bytes:
    buf = io.BytesIO()
    ftp.retrbinary(f"RETR {path}", buf.write, rest=rest)
    return buf.getvalue()


# --------------------------------------------------------------------------- webservice


def test_healthz_and_datasets(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    from pipelines.contracts import load_contracts

    offered = client.get("/v1/datasets").json()["datasets"]
    webservice = {n for n, c in load_contracts().items() if c.channel == "webservice"}
    assert set(offered) == {"aktivitet", "stor", "ydelse"} | webservice
    assert offered == sorted(offered)


def test_paginates_every_record_exactly_once_in_order(client: httpx.Client) -> None:
    pages = _fetch_all(client, "101", limit=500)
    assert [len(p["records"]) for p in pages] == [500, 500, 234]
    assert all(p["total"] == N_101 and p["dataset"] == "aktivitet" for p in pages)
    assert all(p["dato"] == DATO and p["indberetter"] == "101" for p in pages)
    assert [p["next_cursor"] is None for p in pages] == [False, False, True]
    records = [r for p in pages for r in p["records"]]
    assert records == [_record("101", i) for i in range(N_101)]  # order, content, UTF-8, nulls


def test_default_and_max_limit(client: httpx.Client) -> None:
    default = _get(client, "101").json()
    assert len(default["records"]) == 500 and default["next_cursor"]
    clamped = _get(client, "101", "stor", limit=100_000).json()
    assert len(clamped["records"]) == 5000 and clamped["total"] == N_STOR
    rest = _get(client, "101", "stor", limit=5000, cursor=clamped["next_cursor"]).json()
    assert [r["seq"] for r in rest["records"]] == list(range(5000, N_STOR))
    assert rest["next_cursor"] is None


def test_bad_parameters_are_400(client: httpx.Client) -> None:
    assert _get(client, "101", limit=0).status_code == 400
    assert _get(client, "101", limit="x").status_code == 400
    assert _get(client, "101", cursor="not-a-cursor").status_code == 400
    foreign = _get(client, "101", "stor", limit=10).json()["next_cursor"]
    assert _get(client, "101", "aktivitet", cursor=foreign).status_code == 400  # bound to dataset
    bad_date = client.get(
        "/v1/aktivitet/udtraek",
        params={"dato": "2024-02-30"},
        headers={"Authorization": "Bearer " + TOKENS["101"]},
    )
    assert bad_date.status_code == 400 and bad_date.json()["status"] == 400


def test_reporter_isolation(client: httpx.Client) -> None:
    pages = _fetch_all(client, "147")
    records = [r for p in pages for r in p["records"]]
    assert len(pages) == 1 and pages[0]["total"] == N_147
    assert {r["indberetter"] for r in records} == {"147"}
    assert records == [_record("147", i) for i in range(N_147)]
    ids_101 = {r["besked_id"] for p in _fetch_all(client, "101", limit=5000) for r in p["records"]}
    assert ids_101.isdisjoint(r["besked_id"] for r in records)


def test_date_without_file_is_empty(client: httpx.Client) -> None:
    resp = client.get(
        "/v1/aktivitet/udtraek",
        params={"dato": "2024-01-03"},
        headers={"Authorization": "Bearer " + TOKENS["101"]},
    )
    assert resp.status_code == 200
    assert resp.json() == {
        "dataset": "aktivitet",
        "dato": "2024-01-03",
        "indberetter": "101",
        "identifikation": {"type": "automatisk", "dataansvarlig_aftager": "101"},  # § 6, stk. 2 (issue 17)
        "records": [],
        "next_cursor": None,
        "total": 0,
    }
    assert _get(client, "147", "ydelse").json()["total"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKENS["101"]},
        {"Authorization": "Basic eDp5"},
    ],
)
def test_missing_or_wrong_token_is_401(client: httpx.Client, headers: dict[str, str]) -> None:
    resp = client.get("/v1/aktivitet/udtraek", params={"dato": DATO}, headers=headers)
    assert resp.status_code == 401
    assert resp.json()["status"] == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_dataset_and_endpoint_are_404(client: httpx.Client) -> None:
    assert _get(client, "101", "findes_ikke").status_code == 404
    assert client.get("/v2/whatever").status_code == 404
    assert client.get("/v1/aktivitet/andet").status_code == 404


# --------------------------------------------------------------------------- faults (HTTP)


def test_http_500_for_next_n_requests(sources: SourceSystems, client: httpx.Client) -> None:
    sources.faults.set("http_500", 2)
    assert [_get(client, "101").status_code for _ in range(3)] == [500, 500, 200]
    assert sources.faults.fired("http_500") == 2


def test_http_429_with_retry_after(sources: SourceSystems, client: httpx.Client) -> None:
    sources.faults.set("http_429", 1, retry_after=3)
    resp = _get(client, "101")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "3"
    assert _get(client, "101").status_code == 200


def test_slow_response_triggers_client_timeout(sources: SourceSystems, client: httpx.Client) -> None:
    sources.faults.set("slow", 1, delay=1.0)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        _get_with_timeout(client, 0.3)
    assert time.monotonic() - started < 0.9
    assert _get_with_timeout(client, 0.5).status_code == 200  # cleared after one request


def _get_with_timeout(client: httpx.Client, timeout: float) -> httpx.Response:
    return client.get(
        "/v1/aktivitet/udtraek",
        params={"dato": DATO},
        headers={"Authorization": "Bearer " + TOKENS["101"]},
        timeout=timeout,
    )


def test_truncated_page_is_invalid_json(sources: SourceSystems, client: httpx.Client) -> None:
    sources.faults.set("truncated_page", 1)
    resp = _get(client, "101", limit=50)
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)
    assert len(_get(client, "101", limit=50).json()["records"]) == 50


def test_duplicate_page_is_detectable_by_record_ids(sources: SourceSystems, client: httpx.Client) -> None:
    first = _get(client, "101", limit=100).json()
    sources.faults.set("duplicate_page", 1)
    dup = _get(client, "101", limit=100, cursor=first["next_cursor"]).json()
    assert dup == first  # the previous page again, with its own next_cursor
    seen = {r["besked_id"] for r in first["records"]}
    assert seen.issuperset(r["besked_id"] for r in dup["records"])
    again = _get(client, "101", limit=100, cursor=first["next_cursor"]).json()
    assert seen.isdisjoint(r["besked_id"] for r in again["records"])
    assert again["records"][0]["seq"] == 100


def test_duplicate_page_does_not_fire_without_previous_page(
    sources: SourceSystems, client: httpx.Client
) -> None:
    sources.faults.set("duplicate_page", 1)
    assert _get(client, "147").json()["total"] == N_147  # first page, no cursor: untouched
    assert sources.faults.snapshot()["duplicate_page"]["count"] == 1


def test_faults_endpoint_and_path_filter(sources: SourceSystems, client: httpx.Client) -> None:
    resp = client.post("/_faults", json={"http_500": {"count": 1, "path": "/v1/ydelse"}, "http_429": 0})
    assert resp.status_code == 200 and resp.json()["http_500"]["count"] == 1
    assert client.get("/_faults").json()["http_500"]["path"] == "/v1/ydelse"
    assert _get(client, "101", "aktivitet").status_code == 200  # other path unaffected
    assert client.get("/healthz").status_code == 200
    assert _get(client, "101", "ydelse").status_code == 500
    assert _get(client, "101", "ydelse").status_code == 200
    assert client.get("/_faults").json()["http_500"] == {"count": 0, "path": "/v1/ydelse", "fired": 1}

    assert client.post("/_faults", json={"nope": 1}).status_code == 400
    assert client.post("/_faults", json={"http_429": {"count": 1, "bogus": 2}}).status_code == 400
    assert client.post("/_faults", content=b"{not json").status_code == 400
    client.post("/_faults", json={"slow": {"count": 3, "delay": 0.01}})
    assert client.delete("/_faults").json()["slow"]["count"] == 0


def test_faults_object_validation_and_globs() -> None:
    faults = Faults()
    faults.set("http_500", 1)
    with pytest.raises(ValueError):
        faults.update({"http_429": 2, "bogus": 1})
    assert faults.snapshot()["http_429"]["count"] == 0  # nothing applied from a bad spec
    faults.update({"clear": True, "ftp_disconnect": {"count": 2, "path": "*/sanktion_*", "after_bytes": 10}})
    assert faults.snapshot()["http_500"]["count"] == 0
    assert faults.consume("ftp_disconnect", "/2024-01-02/raadighed_101.csv") is None
    assert faults.consume("ftp_disconnect", "/2024-01-02/sanktion_101.csv") == {"after_bytes": 10}
    assert faults.active("ftp_disconnect", "/x/sanktion_1.csv")
    with pytest.raises(ValueError):
        faults.set("slow", -1)


def test_faults_are_thread_safe() -> None:
    faults = Faults()
    faults.set("http_500", 500)
    hits: list[int] = []

    def worker() -> None:
        hits.append(sum(faults.consume("http_500") is not None for _ in range(100)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(hits) == 500 and faults.fired("http_500") == 500


# --------------------------------------------------------------------------- FTP


def test_ftp_listing_download_and_size(sources: SourceSystems, data_dir: Path) -> None:
    expected = (data_dir / "ftp" / FTP_FILE.lstrip("/")).read_bytes()
    ftp = _ftp(sources)
    try:
        assert sorted(ftp.nlst(f"/{DATO}")) == ["sanktion_101_20240102.csv", "sanktion_147_20240102.csv"]
        ftp.voidcmd("TYPE I")  # NLST switches to ASCII; SIZE/REST need binary
        assert ftp.size(FTP_FILE) == len(expected)
        data = _retr(ftp, FTP_FILE)
    finally:
        ftp.quit()
    assert data == expected
    assert data.decode("latin-1").splitlines()[-1] == "TRAILER;4000"


def test_ftp_resume_with_rest(sources: SourceSystems, data_dir: Path) -> None:
    expected = (data_dir / "ftp" / FTP_FILE.lstrip("/")).read_bytes()
    ftp = _ftp(sources)
    try:
        assert _retr(ftp, FTP_FILE, rest=12345) == expected[12345:]
    finally:
        ftp.quit()


def test_ftp_disconnect_mid_transfer_then_resume(sources: SourceSystems, data_dir: Path) -> None:
    expected = (data_dir / "ftp" / FTP_FILE.lstrip("/")).read_bytes()
    sources.faults.set("ftp_disconnect", 1, after_bytes=5000)
    ftp = _ftp(sources)
    try:
        buf = io.BytesIO()
        with pytest.raises(ftplib.error_temp, match="^426"):
            ftp.retrbinary(f"RETR {FTP_FILE}", buf.write)
        partial = buf.getvalue()
        assert partial == expected[:5000]
        rest = _retr(ftp, FTP_FILE, rest=len(partial))  # fault cleared after one RETR
    finally:
        ftp.quit()
    assert partial + rest == expected
    assert sources.faults.fired("ftp_disconnect") == 1


def test_ftp_wrong_password_rejected(sources: SourceSystems) -> None:
    ftp = ftplib.FTP()
    ftp.connect(sources.ftp_host, sources.ftp_port, timeout=5)
    try:
        with pytest.raises(ftplib.error_perm, match="^530"):
            ftp.login(sources.ftp_user, "wrong")
    finally:
        ftp.close()


def test_ftp_kommune_user_sees_only_own_files(sources: SourceSystems) -> None:
    ftp = _ftp(sources, "147")
    try:
        assert ftp.nlst(f"/{DATO}") == ["sanktion_147_20240102.csv"]
        ftp.voidcmd("TYPE I")
        assert _retr(ftp, FTP_OTHER).decode("latin-1").endswith("TRAILER;3\r\n")
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.size(FTP_FILE)
        with pytest.raises(ftplib.error_perm, match="^550"):
            _retr(ftp, FTP_FILE)
    finally:
        ftp.quit()


def test_ftp_is_read_only(sources: SourceSystems) -> None:
    ftp = _ftp(sources)
    try:
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.storbinary(f"STOR /{DATO}/x.csv", io.BytesIO(b"x"))
        with pytest.raises(ftplib.error_perm, match="^550"):
            ftp.delete(FTP_FILE)
    finally:
        ftp.quit()


# --------------------------------------------------------------------------- file drops


def test_publish_writes_file_then_marker_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "uddannelse_20240102.csv"
    src.write_bytes(b"cpr_hash,udd\n" + b"h1,3000\n" * 10_000)
    drop = tmp_path / "drops" / "uvm" / DATO
    target = drop / src.name
    renames: list[tuple[str, bool]] = []
    real_replace = os.replace

    def spy(a: str, b: str) -> None:  # records order; the rename itself is real
        renames.append((Path(b).name, marker_path(target).exists()))
        real_replace(a, b)

    monkeypatch.setattr(filedrop.os, "replace", spy)
    out = publish(src, drop)
    assert out == target and target.read_bytes() == src.read_bytes()
    assert renames == [(target.name, False), (marker_path(target).name, False)]  # file, then marker
    assert is_complete(target)
    assert sorted(p.name for p in drop.iterdir()) == [target.name, target.name + ".done"]  # no temp files

    leave_partial(target, 100)  # re-delivery that crashed: truncated and unmarked
    assert target.stat().st_size == 100 and not is_complete(target)
    publish(src, drop)
    assert is_complete(target) and target.read_bytes() == src.read_bytes()


def test_partial_and_zero_byte_helpers(tmp_path: Path) -> None:
    src = tmp_path / "src" / "ydelse_20240102.txt"
    src.parent.mkdir()
    src.write_bytes(b"H|ydelse|20240102|1\n" + b"D|x\n" * 100 + b"T|100\n")
    drop = tmp_path / "ssi"
    zero = leave_zero_byte(drop / "crashed.txt")
    assert zero.stat().st_size == 0 and not is_complete(zero)

    faults = Faults()
    faults.set("partial_file", 1)
    half = publish(src, drop, faults=faults)
    assert half.read_bytes() == src.read_bytes()[: src.stat().st_size // 2] and not is_complete(half)
    faults.set("partial_file", 1, nbytes=0, path="other_")
    assert is_complete(publish(src, drop, faults=faults))  # path filter: not this file
    empty = publish(src, drop, name="other_20240102.txt", faults=faults)
    assert empty.stat().st_size == 0 and not is_complete(empty)
    assert complete_files(drop) == [drop / src.name]


def test_publish_slowly_grows_a_part_file(tmp_path: Path) -> None:
    src = tmp_path / "sanktion_101_20240102.csv"
    src.write_bytes(b"x" * 4000)
    drop = tmp_path / "in"
    thread = publish_slowly(src, drop, chunk_bytes=1000, interval=0.05)
    part = drop / (src.name + ".part")
    deadline = time.monotonic() + 2
    while not part.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not is_complete(drop / src.name)
    thread.join(timeout=5)
    assert not part.exists() and is_complete(drop / src.name)
    assert (drop / src.name).read_bytes() == src.read_bytes()


# --------------------------------------------------------------------------- lifecycle


def test_describe_and_drop_dirs(sources: SourceSystems, data_dir: Path) -> None:
    info = sources.describe()
    assert info["webservice"]["url"] == sources.webservice_url
    assert info["ftp"]["port"] == sources.ftp_port and info["ftp"]["user"] == "star"
    assert sources.portal_dir == data_dir / "portal" and sources.portal_dir.is_dir()
    assert sources.uvm_dir == data_dir / "drops" / "uvm"
    assert sources.ssi_dir == data_dir / "drops" / "ssi"
    json.dumps(info)


def test_serve_forever_publishes_state_and_stops(data_dir: Path, tmp_path: Path) -> None:
    state = tmp_path / "sources.json"
    stop = threading.Event()
    thread = threading.Thread(
        target=serve_forever, args=(data_dir,), kwargs={"state_file": state, "stop_event": stop}
    )
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        info = json.loads(state.read_text())
        assert httpx.get(info["webservice"]["url"] + "/healthz", timeout=2).status_code == 200
        ftp = ftplib.FTP()
        ftp.connect(info["ftp"]["host"], info["ftp"]["port"], timeout=5)
        ftp.login(info["ftp"]["user"], info["ftp"]["password"])
        ftp.quit()
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive() and not state.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(info["webservice"]["url"] + "/healthz", timeout=1)
