"""End to end: generated payloads served by the real loopback servers, read by real clients."""

from __future__ import annotations

import datetime as dt
import ftplib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.contracts import load_contracts
from pipelines.simulate.channels import read_payload
from pipelines.simulate.servers import start_sources

START = dt.date(2026, 10, 1)


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("e2e") / "sources"
    res = CliRunner().invoke(app, ["generate", "--scale", "tiny", "--days", "3", "--seed", "4", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "kontaktgruppe" in res.output and "ground-truth" in res.output
    return out


def test_webservice_serves_each_reporters_generated_extract(src: Path) -> None:
    tokens = json.loads((src / "webservice" / "tokens.json").read_text())
    day = START.isoformat()
    files = sorted((src / "webservice" / "kontaktgruppe" / day).glob("*.jsonl"))
    assert len(files) > 10
    path = max(files, key=lambda p: p.stat().st_size)
    reporter = path.stem
    expected, _ = read_payload(path, load_contracts()["kontaktgruppe"])
    with start_sources(src) as systems, httpx.Client(base_url=systems.webservice_url, timeout=10) as client:
        got, cursor, pages = [], None, 0
        while True:
            params = {"dato": day, "limit": 7}
            if cursor:
                params["cursor"] = cursor
            r = client.get("/v1/kontaktgruppe/udtraek", params=params,
                           headers={"Authorization": f"Bearer {tokens[reporter]}"})
            assert r.status_code == 200
            body = r.json()
            assert body["indberetter"] == reporter and body["total"] == len(expected)
            got.extend(body["records"])
            pages += 1
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert got == expected
        assert pages == -(-len(expected) // 7)
        other = next(k for k in tokens if k != reporter and k.isdigit())
        r = client.get("/v1/kontaktgruppe/udtraek", params={"dato": day},
                       headers={"Authorization": f"Bearer {tokens[other]}"})
        assert all(rec["indberetter"] == other for rec in r.json()["records"])
        assert client.get("/v1/kontaktgruppe/udtraek", params={"dato": day},
                          headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_ftp_serves_chapter_11_files_with_trailer(src: Path) -> None:
    local = sorted((src / "ftp").rglob("*.csv"))
    assert local
    with start_sources(src) as systems:
        ftp = ftplib.FTP()
        ftp.connect(systems.ftp_host, systems.ftp_port, timeout=10)
        ftp.login(systems.ftp_user, systems.ftp_password)
        ftp.voidcmd("TYPE I")
        p = local[0]
        remote = f"/{p.parent.name}/{p.name}"
        assert ftp.size(remote) == p.stat().st_size
        chunks: list[bytes] = []
        ftp.retrbinary(f"RETR {remote}", chunks.append)
        ftp.quit()
    data = b"".join(chunks)
    assert data == p.read_bytes()
    lines = data.decode("latin-1").split("\r\n")
    assert lines[-2] == f"TRAILER;{len(lines) - 3}"


def test_cli_serve_runs_until_sigterm(src: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "sources", "serve", "--data", str(src),
                             "--state-file", str(state)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        deadline = time.monotonic() + 30
        while not state.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.1)
        info = json.loads(state.read_text())
        url = info["webservice"]["url"]
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0, out
    assert "127.0.0.1" in out
    assert not state.exists()


def test_cli_serve_rejects_a_directory_without_sources(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["sources", "serve", "--data", str(tmp_path)])
    assert res.exit_code != 0
    # rich wraps the error panel at the terminal width (the message holds the tmp path): compare words
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", res.output).split())
    assert "no generated sources" in words


# `dsdw demo` (generation, sources, the Dagster runs): tests/test_demo.py
