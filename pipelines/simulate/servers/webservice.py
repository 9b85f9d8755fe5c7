"""Simulated reporter webservice (HTTP JSON), serving ``DIR/webservice``.

Ingestion pulls each reporter's daily extract the way the real webservice delivers it:
bearer token per reporter, cursor pagination and the failures listed in
:mod:`.faults`. The server is a real HTTP server on loopback so the client code under
test is exercised end to end (sockets, timeouts, retries).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import re
import threading
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from .faults import Faults


def _loads(line: str) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


log = logging.getLogger(__name__)

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CACHE_FILES = 256
_LAST_PAGES = 1024


class ApiError(Exception):
    """An error response: status, message and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def encode_cursor(dataset: str, dato: str, offset: int) -> str:
    """Opaque cursor: bound to dataset and dato so a cursor cannot be replayed elsewhere."""
    raw = f"v1|{dataset}|{dato}|{offset}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, dataset: str, dato: str) -> int:
    """Line offset encoded in ``cursor``; raises :class:`ApiError` 400 if it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        version, c_dataset, c_dato, offset = raw.split("|")
        value = int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid cursor") from exc
    if version != "v1" or c_dataset != dataset or c_dato != dato or value < 0:
        raise ApiError(400, "cursor does not belong to this dataset/dato")
    return value


class ExtractStore:
    """Reads ``DIR/webservice`` lazily: tokens, datasets and per-file line caches.

    Files are validated once and kept as raw JSON lines (LRU, invalidated on mtime/size
    change) so a page is assembled by joining strings instead of re-serialising records.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}
        self._tokens_stamp: tuple[int, int] | None = None
        self._files: OrderedDict[Path, tuple[tuple[int, int], list[str]]] = OrderedDict()

    def reporter_for(self, token: str) -> str | None:
        """Reporter owning ``token`` (tokens.json is re-read when it changes)."""
        path = self.root / "tokens.json"
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._tokens_stamp:
                data = json.loads(path.read_text(encoding="utf-8"))
                self._tokens = {str(tok): str(rep) for rep, tok in data.items()}
                self._tokens_stamp = stamp
            reporter = self._tokens.get(token)
        if reporter is None or not _NAME_RE.match(reporter):
            return None
        return reporter

    def datasets(self) -> list[str]:
        """Datasets the webservice offers: every webservice contract, plus any directory present.

        A dataset with no records in the whole period is still a known dataset
        (an empty extract, not a 404).
        """
        from pipelines.contracts import load_contracts

        known = {n for n, c in load_contracts().items() if c.channel == "webservice"}
        if self.root.is_dir():
            known |= {p.name for p in self.root.iterdir() if p.is_dir() and _NAME_RE.match(p.name)}
        return sorted(known)

    def lines(self, dataset: str, dato: str, reporter: str) -> list[str]:
        """Raw JSON object lines of one reporter's extract; [] if there is none."""
        path = self.root / dataset / dato / f"{reporter}.jsonl"
        try:
            st = path.stat()
        except FileNotFoundError:
            return []
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._files.get(path)
            if hit is not None and hit[0] == stamp:
                self._files.move_to_end(path)
                return hit[1]
        lines = self._load(path)
        with self._lock:
            self._files[path] = (stamp, lines)
            self._files.move_to_end(path)
            while len(self._files) > _CACHE_FILES:
                self._files.popitem(last=False)
        return lines

    @staticmethod
    def _load(path: Path) -> list[str]:
        """Every non-blank line is a record the reporter's system holds, served as it is: a line that
        is JSON (an object or not) as that JSON, a line that is not JSON as a JSON string of its text,
        bytes that are not UTF-8 as those bytes. Ingestion judges them (quarantine); nothing is dropped
        here, so the extract's ``total`` is every record."""
        out: list[str] = []
        with path.open(encoding="utf-8", errors="surrogateescape") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:  # orjson first (~4x faster); what it refuses, json still judges
                    _loads(line)
                    ok = True
                except (json.JSONDecodeError, UnicodeEncodeError):
                    ok = False
                if ok:
                    out.append(line)
                else:
                    log.warning("%s:%d: not JSON, served as a JSON string", path, lineno)
                    out.append(json.dumps(line, ensure_ascii=False))
        return out


class WebserviceServer(ThreadingHTTPServer):
    """HTTP server holding the store, the faults and the last page per client extract."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], data_dir: Path, faults: Faults) -> None:
        self.store = ExtractStore(Path(data_dir) / "webservice")
        self.faults = faults
        self.stopping = threading.Event()
        self._pages_lock = threading.Lock()
        self._last_pages: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        super().__init__(address, _Handler)

    def remember_page(self, key: tuple[str, str, str], body: bytes) -> None:
        """Keep the page just served, so ``duplicate_page`` can serve it again."""
        with self._pages_lock:
            self._last_pages[key] = body
            self._last_pages.move_to_end(key)
            while len(self._last_pages) > _LAST_PAGES:
                self._last_pages.popitem(last=False)

    def last_page(self, key: tuple[str, str, str]) -> bytes | None:
        with self._pages_lock:
            return self._last_pages.get(key)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients dropping the connection (timeouts, cut pages) are expected: log quietly."""
        log.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dsdw-webservice-sim/1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms ACK stalls
    server: WebserviceServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)

    # --- responses

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), headers)

    def _error(self, err: ApiError) -> None:
        phrase = HTTPStatus(err.status).phrase
        self._json(err.status, {"error": phrase, "status": err.status, "detail": err.message}, err.headers)

    # --- dispatch

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path
        if method != "GET" and path != "/_faults":
            self.close_connection = True  # unread request body would poison keep-alive
        try:
            if path == "/healthz":
                self._require(method, "GET")
                self._json(200, {"status": "ok"})
            elif path == "/_faults":
                self._faults_endpoint(method)
            elif path.startswith("/v1/"):
                self._require(method, "GET")
                self._apply_request_faults(path)
                self._v1(path, parse_qs(url.query, keep_blank_values=True))
            else:
                raise ApiError(404, f"no such endpoint: {path}")
        except ApiError as err:
            self._error(err)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            log.exception("webservice: unhandled error for %s", self.path)
            self._error(ApiError(500, "internal error"))

    @staticmethod
    def _require(method: str, allowed: str) -> None:
        if method != allowed:
            raise ApiError(405, f"{method} not allowed", {"Allow": allowed})

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            return json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"body is not JSON: {exc}") from exc

    def _faults_endpoint(self, method: str) -> None:
        faults = self.server.faults
        if method == "POST":
            try:
                faults.update(self._read_body())
            except ValueError as exc:
                raise ApiError(400, str(exc)) from exc
        elif method == "DELETE":
            faults.clear()
        self._json(200, faults.snapshot())

    def _apply_request_faults(self, path: str) -> None:
        faults = self.server.faults
        slow = faults.consume("slow", path)
        if slow is not None:
            self.server.stopping.wait(float(slow["delay"]))
        if faults.consume("http_500", path) is not None:
            raise ApiError(500, "simulated server error")
        throttled = faults.consume("http_429", path)
        if throttled is not None:
            retry_after = str(int(throttled["retry_after"]))
            raise ApiError(429, "simulated rate limit", {"Retry-After": retry_after})

    # --- /v1

    def _v1(self, path: str, query: dict[str, list[str]]) -> None:
        store = self.server.store
        parts = path.strip("/").split("/")
        if parts == ["v1", "datasets"]:
            self._json(200, {"datasets": store.datasets()})
            return
        if len(parts) != 3 or parts[2] != "udtraek":
            raise ApiError(404, f"no such endpoint: {path}")
        dataset = parts[1]

        reporter = self._authenticate()
        if dataset not in store.datasets():
            raise ApiError(404, f"unknown dataset: {dataset}")
        dato = self._param(query, "dato")
        if dato is None or not _DATE_RE.match(dato):
            raise ApiError(400, "dato=YYYY-MM-DD is required")
        try:
            dt.date.fromisoformat(dato)
        except ValueError as exc:
            raise ApiError(400, f"invalid dato: {dato}") from exc
        limit_s = self._param(query, "limit")
        try:
            limit = DEFAULT_LIMIT if limit_s in (None, "") else int(limit_s)
        except ValueError as exc:
            raise ApiError(400, "limit must be an integer") from exc
        if limit < 1:
            raise ApiError(400, "limit must be >= 1")
        limit = min(limit, MAX_LIMIT)
        cursor = self._param(query, "cursor") or None

        faults = self.server.faults
        key = (reporter, dataset, dato)
        # duplicate_page: only a follow-up request (with cursor) can get "the previous page".
        body = self.server.last_page(key) if cursor is not None else None
        if body is not None and faults.consume("duplicate_page", path) is None:
            body = None
        if body is None:
            lines = store.lines(dataset, dato, reporter)
            offset = decode_cursor(cursor, dataset, dato) if cursor else 0
            if offset > len(lines):
                raise ApiError(400, "cursor beyond end of extract")
            end = min(offset + limit, len(lines))
            next_cursor = encode_cursor(dataset, dato, end) if end < len(lines) else None
            # § 6, stk. 2 (issue 17): the call identifies who reports; these extracts are automatic reports,
            # so the dataansvarlig aftager alone (fault ``no_identification`` leaves it out)
            ident = None if faults.consume("no_identification", path) is not None else {
                "type": "automatisk", "dataansvarlig_aftager": reporter}
            head = json.dumps({"dataset": dataset, "dato": dato, "indberetter": reporter, "identifikation": ident},
                              ensure_ascii=False)
            tail = json.dumps({"next_cursor": next_cursor, "total": len(lines)})
            text = head[:-1] + ', "records": [' + ", ".join(lines[offset:end]) + "], " + tail[1:]
            body = text.encode("utf-8", "surrogateescape")  # a reporter's bytes that are not UTF-8 as they are
            self.server.remember_page(key, body)
        if faults.consume("truncated_page", path) is not None:
            body = body[: max(1, len(body) // 2)]
        self._send(200, body)

    def _authenticate(self) -> str:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        reporter = self.server.store.reporter_for(token.strip()) if scheme.lower() == "bearer" else None
        if reporter is None:
            raise ApiError(
                401, "missing or invalid bearer token", {"WWW-Authenticate": 'Bearer realm="dsdw"'}
            )
        return reporter

    @staticmethod
    def _param(query: dict[str, list[str]], name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None


class Webservice:
    """The webservice running in a background thread; ``url`` is its base address."""

    def __init__(
        self, data_dir: Path, host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None
    ) -> None:
        self.faults = faults if faults is not None else Faults()
        self.server = WebserviceServer((host, port), Path(data_dir), self.faults)
        self.host, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="dsdw-webservice",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Webservice:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake slow-fault sleepers and release the port."""
        self.server.stopping.set()
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.server_close()


def start_webservice(
    data_dir: Path, host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None
) -> Webservice:
    """Start the webservice for ``data_dir`` (port 0 = a free port)."""
    return Webservice(data_dir, host, port, faults).start()
