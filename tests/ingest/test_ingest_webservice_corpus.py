"""Bad webservice answers, ingested for real from a hostile HTTP server: every page the client
receives ends in the ledger (loaded, or rejected with the reason), an extract that cannot go on is a
failure naming the page and resumes there next run, nothing of a rejected page reaches the lake,
the lake equals the ledger per payload, and a rerun changes nothing.

Each case is one kommune's extract of ``samtale`` for one day: the server answers its token's
requests from a table of canned bodies (by cursor), exactly as bytes, whatever they hold.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyarrow.parquet as pq
import pytest
from ingest_builders import ledger_rows, records, template, zone_tree

from pipelines.contracts import codelist_codes, load_contracts
from pipelines.ingest import SourcesConfig, Zones, account_day, ingest_dataset_day
from pipelines.sources import retry
from pipelines.warehouse.checks import lake_ledger_checks

DS = "samtale"
DAY = dt.date(2026, 10, 1)
RECEIVED_AT = "2026-10-02T02:00:00+02:00"
C = load_contracts()[DS]


def recs(rep: str, n: int = 3, tag: str = "") -> list[dict]:
    """``n`` clean records of ``rep``'s (its kommunekode too), with message ids of this tag alone."""
    own = {"kommunekode": rep} if "kommunekode" in template(DS) else {}
    return records(DS, n, rep, key=f"ws-corpus/{rep}/{tag}", **own)


def page(rep: str, records: list[Any], next_cursor: Any = None, **envelope: Any) -> dict:
    return {"dataset": DS, "dato": DAY.isoformat(), "indberetter": rep,
            "identifikation": {"type": "automatisk", "dataansvarlig_aftager": rep}, "records": records,
            "next_cursor": next_cursor, "total": len(records), **envelope}


def body(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


@dataclass
class Case:
    id: str
    pages: Any  # rep -> {cursor or "": bytes}
    status: list[str]  # the ledger status of page-00001, page-00002, ...
    reason: str = ""  # part of the last page's reason
    fails: bool = False  # the extract stops (a failure of the run naming the page)
    quarantined: str | None = None  # an error kind of the loaded pages' quarantine
    total_off: bool = False  # the reporter's total disagrees (the day's reconciliation shows it)


def _bad_utf8(rep: str) -> bytes:
    rs = recs(rep)
    rs[1]["entitet"] = "Søren"
    return body(page(rep, rs)).replace("Søren".encode(), "Søren".encode("latin-1"))


def _dup_key(rep: str) -> bytes:
    rs = recs(rep)
    text = body(page(rep, rs)).decode()
    return text.replace(f'"besked_id": "{rs[0]["besked_id"]}"',
                        f'"besked_id": "{recs(rep, 4, "x")[3]["besked_id"]}", "besked_id": "{rs[0]["besked_id"]}"',
                        1).encode()


def _cases() -> list[Case]:
    def one(make: Any) -> Any:
        return lambda rep: {"": make(rep)}
    return [
        Case("ok", one(lambda r: body(page(r, recs(r)))), ["loaded"]),
        Case("two-pages", lambda r: {"": body(page(r, recs(r, 2, "a"), "c2", total=4)),
                                     "c2": body(page(r, recs(r, 2, "b"), total=4))},
             ["loaded", "loaded"]),
        Case("bytes-not-utf8-in-a-record", one(_bad_utf8), ["loaded"], quarantined="encoding"),
        Case("bom-before-the-page", one(lambda r: b"\xef\xbb\xbf" + body(page(r, recs(r)))), ["loaded"]),
        Case("page-cut", one(lambda r: body(page(r, recs(r)))[:150]), ["rejected"], "not valid JSON", fails=True),
        Case("html-error-page", one(lambda r: b"<html><body>502 Bad Gateway</body></html>"), ["rejected"],
             "not valid JSON", fails=True),
        Case("empty-body", one(lambda r: b""), ["rejected"], "not valid JSON", fails=True),
        Case("gzip-body", one(lambda r: gzip.compress(body(page(r, recs(r))), mtime=0)), ["rejected"], "gzip",
             fails=True),
        Case("json-array", one(lambda r: body([page(r, recs(r))])), ["rejected"], "not an object", fails=True),
        Case("records-not-a-list", one(lambda r: body(page(r, {"0": recs(r)[0]}))), ["rejected"], "'records'",
             fails=True),
        Case("next-cursor-a-number", one(lambda r: body(page(r, recs(r), 7))), ["rejected"], "next_cursor",
             fails=True),
        Case("page-for-another-dataset", one(lambda r: body(page(r, recs(r), dataset="tilmelding"))), ["rejected"],
             "dataset='tilmelding'", fails=True),
        Case("page-for-another-day", one(lambda r: body(page(r, recs(r), dato="2026-09-30"))), ["rejected"],
             "dato='2026-09-30'", fails=True),
        Case("envelope-names-another-reporter", one(lambda r: body(page(r, recs(r), indberetter="147"))),
             ["rejected"], "envelope names reporter"),
        Case("records-name-another-reporter", one(lambda r: body(page(r, recs("147")))), ["rejected"],
             "another reporter"),
        Case("record-a-string", one(lambda r: body(page(r, [*recs(r, 2), "besked"]))), ["loaded"],
             quarantined="json"),
        Case("record-null", one(lambda r: body(page(r, [*recs(r, 2), None]))), ["loaded"], quarantined="json"),
        Case("required-null", one(lambda r: body(page(r, [{**recs(r, 1)[0], "cpr": None}, *recs(r, 2, "b")]))),
             ["loaded"], quarantined="required"),
        Case("value-an-object", one(lambda r: body(page(r, [{**recs(r, 1)[0], "cpr": {"nr": None}},
                                                            *recs(r, 2, "b")]))), ["loaded"], quarantined="type"),
        Case("cpr-a-number", one(lambda r: body(page(r, [{**recs(r, 1)[0], "cpr": 101701234}]))), ["loaded"],
             quarantined="type"),
        Case("unknown-key", one(lambda r: body(page(r, [{**recs(r, 1)[0], "diagnose": "x"}]))), ["loaded"],
             quarantined="unknown_field"),
        # a key twice in one object: the last value wins, as RFC 8259 readers (orjson, json) do; detecting it
        # costs a scan of every page (docs/ingestion.md, "Policies")
        Case("duplicate-key", one(_dup_key), ["loaded"]),
        Case("message-id-twice", one(lambda r: body(page(r, [*recs(r, 2), recs(r, 2)[0]]))), ["loaded"],
             quarantined="duplicate_message"),
        Case("next-page-starts-with-the-same-message", lambda r: {
            "": body(page(r, recs(r, 2, "a"), "c2", total=5)),
            "c2": body(page(r, [recs(r, 2, "a")[0], recs(r, 1, "b")[0], recs(r, 2, "b")[1]], total=5))},
            ["loaded", "loaded"], quarantined="duplicate_message"),
        Case("total-wrong", one(lambda r: body(page(r, recs(r), total=9))), ["loaded"], total_off=True),
        Case("empty-page-in-the-middle", lambda r: {"": body(page(r, [], "c2")), "c2": body(page(r, recs(r)))},
             ["loaded", "loaded"]),
        # a client error (4xx) that the client does not retry, or gives up on (408, 429): the answer is landed
        # and rejected with its HTTP status, the extract stops there (incomplete in the day's reconciliation)
        Case("cursor-expired-410", lambda r: {"": body(page(r, recs(r, 2, "a"), "c2", total=4)),
                                              "c2": (410, b'{"detail": "cursor expired"}')},
             ["loaded", "rejected"], "HTTP 410: cursor expired", fails=True),
        Case("first-page-400", lambda r: {"": (400, b'{"detail": "dato out of range"}')}, ["rejected"],
             "HTTP 400: dato out of range", fails=True),
        Case("token-refused-403", lambda r: {"": (403, b'{"detail": "agreement ended"}')}, ["rejected"],
             "HTTP 403: agreement ended", fails=True),
        Case("throttled-429-every-attempt", lambda r: {"": (429, b'{"detail": "slow down"}')}, ["rejected"],
             "HTTP 429: slow down", fails=True),
        Case("cursor-loop", lambda r: {"": body(page(r, recs(r, 1, "a"), "c2")),
                                       "c2": body(page(r, recs(r, 1, "b"), "c3")),
                                       "c3": body(page(r, recs(r, 1, "c"), "c2"))},
             ["loaded", "loaded", "rejected"], "cursor loop", fails=True),
    ]


CASES = _cases()
REPORTERS = sorted(codelist_codes("kommuner"))[: len(CASES)]
BY_REP = {rep: case for rep, case in zip(REPORTERS, CASES, strict=True)}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlparse(self.path)
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        rep = token.removeprefix("tok-")
        if rep not in BY_REP or url.path != f"/v1/{DS}/udtraek":
            self.send_response(401 if rep not in BY_REP else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        cursor = parse_qs(url.query).get("cursor", [""])[-1]
        data = BY_REP[rep].pages(rep).get(cursor)
        status = 200
        if isinstance(data, tuple):  # an error answer: (status, body)
            status, data = data
        if data is None:
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    real_init = retry.RetryPolicy.__init__

    def no_sleep(self: Any, **kw: Any) -> None:  # the retries are real, their waits are not
        real_init(self, **{**kw, "sleep": lambda s: None})

    mp.setattr(retry.RetryPolicy, "__init__", no_sleep)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        base = tmp_path_factory.mktemp("ws_corpus")
        cfg = SourcesConfig(f"http://127.0.0.1:{server.server_address[1]}", {r: f"tok-{r}" for r in REPORTERS},
                            "127.0.0.1", 9, "star", "x", base / "p", base / "u", base / "s")
        root = base / "zones"
        first = ingest_dataset_day(DS, DAY, Zones(root), cfg, RECEIVED_AT, raise_on_failure=False)
        rows = ledger_rows(root)
        files = zone_tree(root)
        second = ingest_dataset_day(DS, DAY, Zones(root), cfg, RECEIVED_AT, raise_on_failure=False)
        [acc] = [a for a in account_day(DAY, Zones(root), cfg, folders=["webservice"])]
        yield {"root": root, "first": first, "second": second, "rows": rows, "rows_after": ledger_rows(root),
               "files": files, "files_after": zone_tree(root), "account": acc}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        mp.undo()


@pytest.mark.parametrize("rep", REPORTERS, ids=[c.id for c in CASES])
def test_each_answer_ends_in_the_ledger_as_the_table_says(corpus, rep: str) -> None:
    case = BY_REP[rep]
    mine = sorted((r for r in corpus["rows"] if r.key.reporter == rep), key=lambda r: r.key.source_name)
    assert [r.status for r in mine] == case.status, [(r.key.source_name, r.status, r.error) for r in mine]
    if case.reason:
        assert case.reason in (mine[-1].error or ""), mine[-1].error
    for r in mine:
        if r.status != "loaded":
            assert r.error and r.landing_path and Path(r.landing_path).exists(), r
    failures = [e for who, e in corpus["first"].failures if who == rep]
    if case.fails:
        assert failures and "stopped at page" in failures[0], failures
        assert [e for who, e in corpus["second"].failures if who == rep], "the rerun reports it again"
    else:
        assert not failures, failures
    if case.quarantined:
        kinds = {k for r in mine if r.status == "loaded"
                 for p in (corpus["root"] / "lake" / "_quarantine").rglob(f"{DS}__{rep}__*{r.payload_id}.parquet")
                 for k in pq.read_table(p).column("error_kind").to_pylist()}
        assert case.quarantined in kinds, kinds
    unaccounted = [u for u in corpus["account"].unaccounted if u.startswith(f"{DS}/{rep}:")]
    assert bool(unaccounted) == (case.fails or case.total_off), unaccounted
    # the lake holds exactly the records of the loaded pages
    lake = sorted(i for r in mine if r.status == "loaded"
                  for i in pq.read_table(r.lake_path, columns=["besked_id"]).column(0).to_pylist())
    assert len(lake) == sum(r.rows_accepted for r in mine if r.status == "loaded"), lake
    assert not list((corpus["root"] / "lake" / DS).rglob(f"*{rep}*rejected*"))


def test_an_extract_failing_before_any_page_is_counted_by_the_reconciliation(tmp_path: Path) -> None:
    """An extract whose first request fails on every attempt without a client error to land (HTTP 500, a
    refused connection) leaves no page, but its cursor row (incomplete) is written: the day's reconciliation
    counts it as not read to its end, and the next run that gets the pages loads them and completes it."""
    mp = pytest.MonkeyPatch()
    real_init = retry.RetryPolicy.__init__
    mp.setattr(retry.RetryPolicy, "__init__", lambda self, **kw: real_init(self, **{**kw, "sleep": lambda s: None}))
    rep = REPORTERS[0]
    answers: list[Any] = [(500, b'{"detail": "down"}')]

    class H(_Handler):
        def do_GET(self) -> None:  # noqa: N802
            status, data = answers[0] if answers[0] else (200, body(page(rep, recs(rep, 2, "late"))))
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        cfg = SourcesConfig(f"http://127.0.0.1:{server.server_address[1]}", {rep: f"tok-{rep}"},
                            "127.0.0.1", 9, "star", "x", tmp_path / "p", tmp_path / "u", tmp_path / "s")
        root = tmp_path / "zones"
        res = ingest_dataset_day(DS, DAY, Zones(root), cfg, RECEIVED_AT, raise_on_failure=False)
        assert [who for who, _ in res.failures] == [rep] and "HTTP 500" in res.failures[0][1]
        assert ledger_rows(root) == []  # a server error is no answer to land
        [acc] = account_day(DAY, Zones(root), cfg, folders=["webservice"])
        assert acc.offered == 1 and acc.by_status == {"incomplete": 1}
        assert acc.unaccounted == [f"{DS}/{rep}: extract not read to its end"]
        answers[0] = None
        res = ingest_dataset_day(DS, DAY, Zones(root), cfg, RECEIVED_AT, raise_on_failure=False)
        assert not res.failures
        [row] = ledger_rows(root)
        assert row.status == "loaded" and sorted(pq.read_table(row.lake_path).column("besked_id").to_pylist()) == \
            sorted(r["besked_id"] for r in recs(rep, 2, "late"))
        [acc] = account_day(DAY, Zones(root), cfg, folders=["webservice"])
        assert acc.unaccounted == [] and acc.by_status == {"complete": 1}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        mp.undo()


def test_lake_equals_ledger_and_holds_nothing_rejected(corpus) -> None:
    for check in lake_ledger_checks(corpus["root"]):  # the lake and its archive
        assert check.failures == 0, (check.name, check.examples)
    for r in corpus["rows"]:
        assert r.status in ("loaded", "rejected"), r
        if r.status in ("loaded", "rejected"):
            assert r.rows_read == (r.rows_accepted or 0) + (r.rows_quarantined or 0), r
        if r.status == "rejected":
            assert not list((corpus["root"] / "lake" / DS).rglob(f"*{r.payload_id}*")), r


def test_a_rerun_changes_nothing(corpus) -> None:
    assert all(p.action == "unchanged" for p in corpus["second"].payloads), \
        [(p.reporter, p.source_name, p.action) for p in corpus["second"].payloads if p.action != "unchanged"]
    assert corpus["rows_after"] == corpus["rows"]
    assert corpus["files_after"] == corpus["files"]


def test_bad_lines_in_the_simulated_services_extract_are_served_and_quarantined(tmp_path: Path) -> None:
    """The simulated webservice serves every line of a reporter's extract file as it is (it used to
    drop lines that were not JSON objects, so their records vanished unseen): a cut line as a JSON
    string, a line with bytes that are not UTF-8 as those bytes, a JSON array as an array. Ingestion
    loads the good records and quarantines each bad one; the reporter's total counts them all."""
    from pipelines.simulate.servers import start_sources

    rep = REPORTERS[0]
    good = recs(rep, 3, "sim")
    bad_utf8 = json.dumps({**recs(rep, 1, "sim-latin1")[0], "entitet": "Søren"}, ensure_ascii=False)
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in good] + [
        json.dumps(recs(rep, 1, "sim-cut")[0]).encode()[:60],  # cut mid-record
        bad_utf8.encode().replace("Søren".encode(), "Søren".encode("latin-1")),
        b"[1, 2, 3]",
    ]
    src = tmp_path / "sources"
    extract = src / "webservice" / DS / DAY.isoformat() / f"{rep}.jsonl"
    extract.parent.mkdir(parents=True)
    extract.write_bytes(b"\n".join(lines) + b"\n")
    (src / "webservice" / "tokens.json").write_text(json.dumps({rep: f"tok-{rep}"}))
    for d in ("ftp", "portal", "drops/uvm", "drops/ssi"):
        (src / d).mkdir(parents=True, exist_ok=True)
    with start_sources(src) as s:
        cfg = SourcesConfig.from_describe(s.describe())
        res = ingest_dataset_day(DS, DAY, Zones(tmp_path / "zones"), cfg, RECEIVED_AT)
        [acc] = account_day(DAY, Zones(tmp_path / "zones"), cfg, folders=["webservice"])
    assert not res.failures and acc.unaccounted == []
    [row] = ledger_rows(tmp_path / "zones")
    assert (row.status, row.rows_read, row.rows_accepted, row.rows_quarantined) == ("loaded", 6, 3, 3)
    lake = pq.read_table(row.lake_path)
    assert sorted(lake.column("besked_id").to_pylist()) == sorted(r["besked_id"] for r in good)
    q = [p for p in (tmp_path / "zones" / "lake" / "_quarantine").rglob("*.parquet")]
    kinds = sorted(k for p in q for k in pq.read_table(p).column("error_kind").to_pylist())
    assert kinds == ["encoding", "json", "json"], kinds
