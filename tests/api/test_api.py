"""The statistics API over a published warehouse made by the real publication hook (two vintages), and its page
in headless Chromium."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from fastapi.testclient import TestClient

from pipelines.api.app import create_app
from pipelines.warehouse.dbt_runner import plain_sql
from pipelines.warehouse.publication import vintage_sql, vintages
from pipelines.warehouse.suppression import publish_suppressed

CHROMIUM = Path("/usr/bin/chromium")
KEY = "test-key-123"
OKT, NOV = dt.date(2026, 10, 1), dt.date(2026, 11, 1)
KOM = {"101": "084", "147": "084", "751": "082", "461": "083"}


def _figures(con: duckdb.DuckDBPyConnection, bump: int, drop_751: bool) -> None:
    """The computation (``mart_ydelser_beregning``) for October and November: kommuner, regions, land."""
    con.execute("CREATE OR REPLACE TABLE mart_ydelser_beregning (indlaesning_nr INTEGER, periode_type VARCHAR, "
                "periode_start DATE, geo_niveau VARCHAR, geo_kode VARCHAR, ydelsesgruppe VARCHAR, antal_personer "
                "BIGINT, ydelsesuger BIGINT, tilgang BIGINT, afgang BIGINT, periode_slut DATE, periode VARCHAR, "
                "uger_i_perioden INTEGER, er_foreloebig BOOLEAN, horisont DATE)")
    rows = []
    for start, per, nr in ((OKT, "2026M10", 1), (NOV, "2026M11", 1 + bump)):
        kom = {"101": 40 + 3 * bump, "147": 30, "751": 0 if drop_751 else 12, "461": 25}
        if start == OKT:
            kom = {"101": 40, "147": 30, "751": 12, "461": 25}
        tot: dict = {}
        for k, a in kom.items():
            for y, v in (("dagpenge", a), ("i alt", a + 10)):
                rows.append((nr, "maaned", start, "kommune", k, y, v, 4 * v, v // 4, v // 5))
                tot[(KOM[k], y)] = tot.get((KOM[k], y), 0) + v
        for (r, y), v in tot.items():
            rows.append((nr, "maaned", start, "region", r, y, v, 4 * v, 0, 0))
        for y in ("dagpenge", "i alt"):
            v = sum(x for (r, yy), x in tot.items() if yy == y)
            rows.append((nr, "maaned", start, "land", "000", y, v, 4 * v, 0, 0))
        con.executemany("INSERT INTO mart_ydelser_beregning VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, 4, false, "
                        "DATE '2026-12-05')", [[*r, per] for r in rows if r[2] == start])
    # region/land flows are the sums of the kommuner's (additive over geography)
    con.execute("""UPDATE mart_ydelser_beregning b SET tilgang = s.t, afgang = s.a FROM (
        SELECT periode_start, ydelsesgruppe, r AS geo_kode, sum(tilgang) t, sum(afgang) a FROM (
            SELECT *, CASE geo_kode WHEN '101' THEN '084' WHEN '147' THEN '084' WHEN '751' THEN '082' ELSE '083' END r
            FROM mart_ydelser_beregning WHERE geo_niveau = 'kommune'
            UNION ALL SELECT *, '000' FROM mart_ydelser_beregning WHERE geo_niveau = 'kommune') GROUP BY ALL) s
        WHERE b.geo_niveau <> 'kommune' AND b.periode_start = s.periode_start AND b.ydelsesgruppe = s.ydelsesgruppe
          AND b.geo_kode = s.geo_kode""")


def make_db(path: Path) -> Path:
    """A published warehouse: vintage 1 (load of Dec 5), then November corrected and 751's spells deleted
    (vintage 2, Dec 6)."""
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA meta")
    con.execute("CREATE TABLE meta.loaded_payload AS SELECT 'kontaktgruppe' AS dataset, DATE '2026-10-01' AS "
                "leveringsdato")
    con.execute("CREATE TABLE dim_kommune AS SELECT * FROM (VALUES ('101', 'København', '084', 'Hovedstaden'), "
                "('147', 'Frederiksberg', '084', 'Hovedstaden'), ('751', 'Aarhus', '082', 'Midtjylland'), "
                "('461', 'Odense', '083', 'Syddanmark')) t(kommunekode, kommune, region_kode, region)")
    con.execute("CREATE TABLE dim_ydelsesgruppe AS SELECT 'dagpenge' AS ydelsesgruppe, 'A-dagpenge og MAY' AS navn")
    _figures(con, 0, False)
    con.execute("CREATE VIEW mart_ydelser_fuld AS\n" + plain_sql("mart_ydelser_fuld"))
    publish_suppressed(con, SimpleNamespace(load_id="L1", indlaest_dato=dt.date(2026, 12, 5)))
    _figures(con, 1, True)
    publish_suppressed(con, SimpleNamespace(load_id="L2", indlaest_dato=dt.date(2026, 12, 6)))
    con.close()
    return path


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return make_db(tmp_path_factory.mktemp("api") / "warehouse.duckdb")


@pytest.fixture(scope="module")
def client(db, tmp_path_factory) -> TestClient:
    keys = tmp_path_factory.mktemp("keys") / "api_keys"
    keys.write_text(f"# test\n{KEY}  # a user\n", encoding="utf-8")
    return TestClient(create_app(db, keys))


def get(client: TestClient, url: str, **params):
    r = client.get(url, params=params, headers={"X-API-Key": KEY})
    assert r.status_code == 200, r.text
    return r


def test_vintage_1_is_reproduced_after_a_correction_and_a_deletion(db):
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert [v["vintage"] for v in vintages(con)] == [2, 1]
        v1 = {r[0:2]: r[2] for r in con.execute(
            f"SELECT periode, geo_kode, antal_personer FROM ({vintage_sql(1)}) WHERE ydelsesgruppe = 'dagpenge' "
            "AND geo_niveau = 'kommune'").fetchall()}
        # November as published in vintage 1: 101 had 40, 751 had 12 (both large enough to publish)
        assert v1[("2026M11", "101")] == 40 and v1[("2026M11", "751")] == 12
        now = {r[0:2]: r[2] for r in con.execute(
            "SELECT periode, geo_kode, antal_personer FROM mart_ydelser_publiceret WHERE ydelsesgruppe = 'dagpenge' "
            "AND geo_niveau = 'kommune'").fetchall()}
        # corrected: 751 is now 0 (hidden); 101 is 43, or hidden as a secondary cell of the new pattern (audited
        # with vintage 1 as context) -- never vintage 1's 40
        assert now[("2026M11", "101")] in (43, None) and now[("2026M11", "751")] is None
        # the history is append-only: vintage 1's cells are still there, unchanged
        assert con.execute("SELECT count(*) FROM meta.publikation_celler WHERE vintage = 1").fetchone()[0] \
            == con.execute("SELECT celler FROM meta.publikation WHERE vintage = 1").fetchone()[0] > 0
    finally:
        con.close()


def test_api_shape_filters_vintage_csv_and_keys(client):
    assert client.get("/api/v1/subjects").status_code == 401
    assert client.get("/api/v1/subjects", headers={"X-API-Key": "wrong"}).status_code == 401
    assert get(client, "/api/v1/subjects").json()[0]["id"] == "ydelser"
    tabs = {t["id"]: t for t in get(client, "/api/v1/subjects/ydelser/tables").json()}
    assert set(tabs) == {"ydelser_dagpenge", "ydelser_i_alt"} and tabs["ydelser_dagpenge"]["navn"] == "A-dagpenge og MAY"
    meta = get(client, "/api/v1/tables/ydelser_dagpenge").json()
    assert {p["periode"] for p in meta["perioder"]} == {"2026M10", "2026M11"}
    d = get(client, "/api/v1/data/ydelser_dagpenge", omraade="101,751", maal="antal_personer", periode="2026M11").json()
    # 101 is 43 after the correction, or hidden as a secondary cell of vintage 2's pattern (audited with vintage 1)
    got = {(r[4], r[7], r[8]) for r in d["data"]}
    assert d["vintage"] == 2 and ("751", None, True) in got and len(got) == 2
    assert got - {("751", None, True)} <= {("101", 43.0, False), ("101", None, True)}
    d1 = get(client, "/api/v1/data/ydelser_dagpenge", omraade="101,751", maal="antal_personer", periode="2026M11",
             vintage=1).json()
    assert {(r[4], r[7]) for r in d1["data"]} == {("101", 40.0), ("751", 12.0)}
    text = get(client, "/api/v1/data/ydelser_dagpenge", omraade="000", format="csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["maal"] for r in rows} == {"antal_personer", "fuldtidspersoner", "tilgang", "afgang"}
    # 43 + 30 + 0 + 25, unless hidden in vintage 2's pattern
    assert [r["vaerdi"] for r in rows if r["maal"] == "antal_personer" and r["periode"] == "2026M11"] in (["98.0"], [""])
    assert client.get("/api/v1/data/ydelser_dagpenge", params={"maal": "person_key"},
                      headers={"X-API-Key": KEY}).status_code == 400
    assert client.get("/api/v1/data/fct_kontaktgruppe", headers={"X-API-Key": KEY}).status_code == 404
    spec = client.get("/openapi.json").json()
    assert "/api/v1/data/{table_id}" in spec["paths"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_page_draws_the_numbers_of_the_api(db, client, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: apt-get install -y chromium")
    import uvicorn

    keys = tmp_path / "k"
    keys.write_text(KEY + "\n", encoding="utf-8")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(db, keys), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/sider/ydelser_dagpenge?api_key={KEY}&omraade=101&maal=antal_personer"
        (tmp_path / "profile").mkdir()
        run = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
                              "--virtual-time-budget=5000", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr[-2000:]
        dom = run.stdout
        assert 'data-klar="1"' in dom, dom[:2000]
        drawn = dict(re.findall(r'<rect[^>]*data-periode="([^"]+)"[^>]*data-vaerdi="([^"]*)"', dom))
        api = get(client, "/api/v1/data/ydelser_dagpenge", omraade="101", maal="antal_personer",
                  periode_type="maaned").json()
        want = {r[0]: ("" if r[7] is None else f"{r[7]:g}") for r in api["data"]}
        assert drawn == want and set(drawn) == {"2026M10", "2026M11"}
        cells = dict(re.findall(r'<tr data-periode="([^"]+)"><td>[^<]*</td><td class="v">([^<]*)</td>', dom))
        assert cells == {k: (v or "..") for k, v in want.items()}
        assert "Antal personer" in dom and "København (101)" in dom  # Danish labels, kommune picker
    finally:
        server.should_exit = True
        th.join(timeout=10)


def test_the_api_reads_the_new_file_after_a_load_swaps_it(db, tmp_path):
    """The load publishes by atomic rename; the API notices the new file and reopens it read-only."""
    import os
    import shutil

    served = tmp_path / "warehouse.duckdb"
    shutil.copyfile(db, served)
    keys = tmp_path / "k"
    keys.write_text(KEY + "\n", encoding="utf-8")
    app = create_app(served, keys)
    c = TestClient(app)
    q = {"omraade": "101", "maal": "antal_personer", "periode": "2026M11"}
    assert get(c, "/api/v1/data/ydelser_dagpenge", **q).json()["data"][0][7] in (43.0, None)  # hidden if vintage 2 needs it
    nxt = tmp_path / "next.duckdb"
    shutil.copyfile(db, nxt)
    con = duckdb.connect(str(nxt))
    con.execute("UPDATE mart_ydelser_publiceret SET antal_personer = 44 WHERE geo_kode = '101' AND periode = '2026M11' "
                "AND ydelsesgruppe = 'dagpenge'")
    con.close()
    os.replace(nxt, served)
    assert get(c, "/api/v1/data/ydelser_dagpenge", **q).json()["data"][0][7] == 44.0
    assert app.state.store.reopened == 2


def test_the_demo_prints_the_address_and_an_example_request_that_works(db, tmp_path):
    """The demo's closing lines (pipelines.demo.statistics_api_hint -> pipelines.api.cli.demo_hint): the API's
    address, how to start it on the demo's own key file, one example request and the table's page.  The printed
    request and page, sent as printed (key, path, query), are answered with the published figures."""
    from urllib.parse import urlsplit

    from pipelines.api.cli import demo_hint
    from pipelines.demo import statistics_api_hint

    keys = tmp_path / "demo" / "api_keys"
    lines = statistics_api_hint(tmp_path / "pipeline", keys)
    text = "\n".join(lines)
    assert lines == demo_hint(tmp_path / "pipeline", keys).splitlines()
    key = keys.read_text(encoding="utf-8").split()[0]
    assert f"--keys {keys}" in text and "http://127.0.0.1:8000/docs" in text
    assert statistics_api_hint(tmp_path / "pipeline", keys) == lines, "the next demo run keeps its key"
    curl = re.search(r"curl -H 'X-API-Key: ([^']+)' '([^']+)'", text)
    page = re.search(r"page: (\S+)", text)
    assert curl and page and curl.group(1) == key
    c = TestClient(create_app(db, keys))
    u = urlsplit(curl.group(2))
    r = c.get(f"{u.path}?{u.query}", headers={"X-API-Key": curl.group(1)})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    con = duckdb.connect(str(db), read_only=True)
    try:
        want = con.execute("SELECT antal_personer FROM mart_ydelser_publiceret WHERE geo_kode = '000' AND "
                           "ydelsesgruppe = 'i alt' AND periode = '2026M10'").fetchone()[0]
    finally:
        con.close()
    got = [r["vaerdi"] for r in rows
           if r["maal"] == "antal_personer" and r["periode"] == "2026M10" and r["geo_kode"] == "000"]
    assert {r["geo_kode"] for r in rows} > {"000"}, "the example asks for the regions too"
    assert got == ["" if want is None else f"{float(want)}"]
    p = urlsplit(page.group(1))
    r = c.get(f"{p.path}?{p.query}")
    assert r.status_code == 200 and "<html" in r.text.lower()
