"""Webservice channel client: a reporter's daily extract, one page at a time.

Ingestion lands every page as it was received (the page is the payload, see
``docs/ingestion.md``), so the client hands out the raw response bytes next to the
parsed records and never asks for page N+1 before the caller is done with page N: a
crash then resumes from the last landed page's ``next_cursor`` (``start_cursor``).

Everything transient (connect errors, timeouts, 5xx, 429, a cut body) is retried by the
channels' one policy (:mod:`.retry`: exponential backoff with full jitter); 429 waits what
``Retry-After`` says (capped).
Refused credentials and unknown endpoints fail at once, because retrying cannot help.
The webservice is known to serve the previous page again for a cursor now and then;
such a page is detected and re-requested, never yielded twice.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import email.utils
import functools
import hashlib
import json
import os
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from .errors import AuthError, SourceError
from .retry import RetryPolicy

__all__ = ["Page", "WebserviceClient"]

_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Page:
    """One page of an extract: the payload to land (``body``) plus what was parsed from it.

    ``cursor`` is the cursor this page was requested with (None for the first page);
    ``next_cursor`` is what to resume from once this page is landed (None = last page).
    ``page_no`` is 1-based within one :meth:`WebserviceClient.iter_pages` call.
    """

    dataset: str
    dato: dt.date
    reporter: str
    cursor: str | None
    next_cursor: str | None
    body: bytes = field(repr=False)
    records: list[dict[str, Any]] = field(repr=False)
    page_no: int
    total: int | None = None
    # § 6, stk. 2 (issue 17): who the call says reported (a person, or the dataansvarlig aftager for
    # automatic reports); None when the call carried none. Kept in the landed body; ingestion checks it.
    identifikation: dict[str, Any] | None = None
    # the whole page as ``orjson.loads(body)`` read it (None when only the lenient ``json`` module could):
    # ingestion's parser takes it instead of reading the page a second time
    decoded: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    # set when the answer cannot be used as a page of this extract (not JSON after every retry, not an
    # extract page, for another dataset or day): ``body`` is what was received, to land and reject; no
    # ``next_cursor`` is known, so the extract stops here (the next run asks again)
    refused: str | None = None
    # SHA-256 (hex) of ``body``, computed where the page was fetched (a fetch thread: hashlib releases the
    # GIL, so the page's landing does not hash it again on the thread that parses)
    sha256: str | None = field(default=None, repr=False, compare=False)


class _Retryable(Exception):
    """A transient failure of one attempt; ``retry_after`` overrides the backoff (Retry-After);
    ``body``: the answer received, when there was one (a page that did not read); ``status``: the
    HTTP status of an error answer (408, 429, 5xx)."""

    def __init__(self, message: str, wait: float | None = None, body: bytes | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = wait
        self.body = body
        self.status = status


class _Unusable(Exception):
    """Every attempt got an answer that is not a page of the extract: ``body`` is the last one."""

    def __init__(self, message: str, body: bytes) -> None:
        super().__init__(message)
        self.body = body


def _page_problem(obj: Any) -> str | None:
    """Why a JSON answer is not an extract page whose place in the extract is known, or None.

    Only what the client needs to go on is judged here (an object, a ``records`` array, a readable
    ``next_cursor`` and reporter); the records themselves are the parser's (quarantined one by one).
    """
    if not isinstance(obj, dict):
        return f"a JSON {type(obj).__name__}, not an object"
    if not isinstance(obj.get("records"), list):
        return "no 'records' array"
    if not isinstance(obj.get("indberetter"), str):
        return "no 'indberetter' string"
    if obj.get("next_cursor") is not None and not isinstance(obj.get("next_cursor"), str):
        return f"'next_cursor' is a JSON {type(obj.get('next_cursor')).__name__}, not a string or null"
    return None


def _transient(exc: BaseException) -> bool:
    """Worth another attempt: a cut or refused connection, a timeout, 5xx/429 -- not a bad URL."""
    return isinstance(exc, (_Retryable, httpx.TimeoutException, httpx.TransportError)) and not isinstance(
        exc, httpx.UnsupportedProtocol)


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One verifying SSL context for all clients: building one costs ~20 ms, and a
    night's load opens a client per reporter and dataset (thousands)."""
    return ssl.create_default_context()


class WebserviceClient:
    """Client for ``GET /v1/{dataset}/udtraek`` with one reporter's bearer token.

    ``max_retries`` is the number of retries after the first attempt. ``sleep`` and
    ``rng_seed`` are injectable so tests can record the waits instead of sleeping.
    ``reporter`` (optional) is the reporter the token belongs to: used in error messages
    before the first response, and a response for another reporter is refused.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 6,
        backoff_base: float = 0.2,
        backoff_max: float = 10.0,
        rng_seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        reporter: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.retry = RetryPolicy(max_retries=max_retries, backoff_base=backoff_base, backoff_max=backoff_max,
                                 sleep=sleep, rng_seed=rng_seed)
        self.base_url = base_url.rstrip("/")
        self.reporter = reporter
        # the token goes with each request, so one connection pool (``http``, see :func:`shared_http`)
        # serves every reporter of a load instead of a new client and TLS setup per reporter x dataset
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._own = http is None
        self._http = http if http is not None else _new_http(self.base_url, timeout)

    # --- lifecycle

    def close(self) -> None:
        """Close the pooled connections (a shared pool stays open for the next reporter)."""
        if self._own:
            self._http.close()

    def __enter__(self) -> WebserviceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- API

    def list_datasets(self) -> list[str]:
        """Datasets the webservice serves (``GET /v1/datasets``), retried like pages."""
        _, obj, _strict = self._get_json("/v1/datasets", {}, context={"endpoint": "/v1/datasets"})
        datasets = obj.get("datasets") if isinstance(obj, dict) else None
        if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
            raise SourceError("unexpected /v1/datasets response", channel="webservice",
                              reporter=self.reporter)
        return list(datasets)

    def iter_pages(
        self,
        dataset: str,
        dato: dt.date,
        *,
        start_cursor: str | None = None,
        limit: int = 500,
    ) -> Iterator[Page]:
        """Yield the pages of ``dataset``'s extract for ``dato`` in order, each exactly once.

        The next page is requested only when the caller asks for it, i.e. after it has
        landed the current one; to resume after a crash pass the last landed page's
        ``next_cursor`` as ``start_cursor``.
        """
        if limit < 1:
            raise ValueError("limit must be >= 1")
        path = f"/v1/{dataset}/udtraek"
        cursor = start_cursor
        previous: Page | None = None
        page_no = 0
        asked: set[str | None] = {cursor}
        while True:
            page_no += 1
            page = self._fetch_page(path, dataset, dato, cursor, limit, page_no)
            if page.refused is not None:
                yield page  # landed and rejected by the caller; nothing to continue from
                return
            if self._is_duplicate(page, previous):
                # The server sent the previous page again: ask once more for the proper one.
                page = self._fetch_page(path, dataset, dato, cursor, limit, page_no)
                if self._is_duplicate(page, previous):
                    raise SourceError(
                        "webservice served the previous page again, twice in a row",
                        channel="webservice", reporter=page.reporter, dataset=dataset, dato=dato,
                        cursor=cursor, page_no=page_no,
                    )
            if page.next_cursor is not None and page.next_cursor in asked:
                # a cursor already asked for in this extract (A -> B -> A): following it never ends; the page
                # is handed over refused (landed and rejected), the extract stops
                yield dataclasses.replace(page, next_cursor=None, refused=(
                    f"cursor loop: the page's next_cursor {page.next_cursor!r} was already requested in this "
                    "extract (following it would never end)"))
                return
            yield page
            if page.next_cursor is None:
                return
            asked.add(page.next_cursor)
            previous, cursor = page, page.next_cursor

    # --- internals

    @staticmethod
    def _is_duplicate(page: Page, previous: Page | None) -> bool:
        """A page pointing back at its own cursor, or starting where the previous one did."""
        if page.cursor is not None and page.next_cursor == page.cursor:
            return True  # == previous.next_cursor: the previous page served again
        if previous is None:
            return False
        if previous.next_cursor is not None and page.next_cursor == previous.next_cursor:
            return True
        # (not "starts with the same message id": a reporter's repeated message at the head of the next
        # page is a duplicate record to quarantine, not the previous page served again)
        return page.body == previous.body

    def _fetch_page(
        self, path: str, dataset: str, dato: dt.date, cursor: str | None, limit: int, page_no: int
    ) -> Page:
        params: dict[str, Any] = {"dato": dato.isoformat(), "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        context = {"dataset": dataset, "dato": dato, "cursor": cursor, "page_no": page_no}
        try:
            body, obj, strict = self._get_json(path, params, context=context, expect_page=True)
        except _Unusable as exc:  # received, but not a page of this extract: the caller lands and rejects it
            return Page(dataset=dataset, dato=dato, reporter=self.reporter or "", cursor=cursor, next_cursor=None,
                        body=exc.body, records=[], page_no=page_no, refused=str(exc))
        reporter = obj.get("indberetter")
        context["reporter"] = reporter
        if obj.get("dataset") != dataset or obj.get("dato") != dato.isoformat():
            return Page(dataset=dataset, dato=dato, reporter=self.reporter or reporter, cursor=cursor,
                        next_cursor=None, body=body, records=[], page_no=page_no,
                        refused=f"the answer is a page for dataset={obj.get('dataset')!r} "
                                f"dato={obj.get('dato')!r}, not the {dataset} {dato} that was asked for")
        if self.reporter is not None and reporter != self.reporter:
            raise SourceError(
                f"response is for reporter {reporter!r}, token belongs to {self.reporter!r}",
                channel="webservice", **context,
            )
        if self.reporter is None:
            self.reporter = reporter
        total = obj.get("total")
        return Page(
            dataset=dataset,
            dato=dato,
            reporter=reporter,
            cursor=cursor,
            next_cursor=obj.get("next_cursor"),
            body=body,
            records=obj["records"],
            page_no=page_no,
            total=total if isinstance(total, int) else None,
            identifikation=obj.get("identifikation") if isinstance(obj.get("identifikation"), dict) else None,
            decoded=obj if strict else None,
            sha256=hashlib.sha256(body).hexdigest(),
        )

    def _get_json(
        self,
        path: str,
        params: dict[str, Any],
        *,
        context: dict[str, Any],
        expect_page: bool = False,
    ) -> tuple[bytes, Any, bool]:
        """GET with retries; returns the raw body, its parsed JSON and whether orjson (strict) read it."""
        context = {"channel": "webservice", "reporter": self.reporter, **context}
        try:
            return self.retry.call(lambda: self._attempt(path, params, context, expect_page),
                                   retry_on=_transient)
        except httpx.UnsupportedProtocol as exc:
            raise SourceError(f"bad webservice URL {self.base_url!r}", last_error=exc, **context) from exc
        except _Retryable as exc:
            if expect_page and exc.body is not None and exc.status is None:  # unreadable every attempt
                raise _Unusable(f"{exc} (after {self.retry.attempts} attempts)", exc.body) from exc
            err = SourceError(
                f"webservice request failed after {self.retry.attempts} attempts",
                last_error=exc, attempts=self.retry.attempts, status=exc.status, **context,
            )
            err.body, err.detail = exc.body, f"{exc} (after {self.retry.attempts} attempts)"
            raise err from exc
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise SourceError(
                f"webservice request failed after {self.retry.attempts} attempts",
                last_error=exc, attempts=self.retry.attempts, **context,
            ) from exc

    def _attempt(
        self, path: str, params: dict[str, Any], context: dict[str, Any], expect_page: bool
    ) -> tuple[bytes, Any, bool]:
        resp = self._http.get(path, params=params, headers=self._headers)
        status = resp.status_code
        # an error answer's status and bytes go with the error (``status``, ``body``, ``detail``), so that
        # ingestion lands a client error (4xx) and rejects it instead of dropping the answer unrecorded
        if status in (401, 403):
            err: SourceError = AuthError(f"webservice refused the token (HTTP {status}): {_detail(resp)}",
                                         status=status, **context)
            err.body, err.detail = resp.content, f"HTTP {status}: {_detail(resp)}"
            raise err
        if status == 429:
            raise _Retryable(f"HTTP 429: {_detail(resp)}", wait=_retry_after(resp), body=resp.content, status=status)
        if status >= 500 or status in _RETRY_STATUS:
            raise _Retryable(f"HTTP {status}: {_detail(resp)}", body=resp.content, status=status)
        if status != 200:
            err = SourceError(f"webservice answered HTTP {status}: {_detail(resp)}", status=status, **context)
            err.body, err.detail = resp.content, f"HTTP {status}: {_detail(resp)}"
            raise err
        body = resp.content
        strict = True
        try:  # orjson (~3x faster) reads strict JSON; what it refuses, json still judges, as before
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            strict = False
            try:
                # bytes that are not UTF-8 in an otherwise whole page are the records' problem (the parser
                # quarantines them as encoding), not the transfer's: read them as surrogate escapes
                obj = json.loads(body.decode("utf-8-sig", "surrogateescape"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                # The page was cut (or garbled) in transit: a fresh request gets it whole.
                raise _Retryable(f"body is not valid JSON ({len(body)} bytes): {exc}", body=body) from exc
        if expect_page:
            problem = _page_problem(obj)
            if problem is not None:  # retried: a server answering garbage once may answer properly next time
                raise _Retryable(f"the answer is JSON but not an extract page: {problem}", body=body)
        return body, obj, strict


def _new_http(base_url: str, timeout: float = 10.0) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout), verify=_ssl_context())


_SHARED: dict[tuple[int, str], httpx.Client] = {}


def shared_http(base_url: str) -> httpx.Client:
    """One connection pool per webservice and process, for the whole load (closed at exit).

    Carries no credentials: each :class:`WebserviceClient` sends its reporter's token per request.
    """
    key = (os.getpid(), base_url.rstrip("/"))
    client = _SHARED.get(key)
    if client is None or client.is_closed:
        if not _SHARED:
            atexit.register(_close_shared)
        client = _SHARED[key] = _new_http(key[1])
    return client


def _close_shared() -> None:
    for c in _SHARED.values():
        c.close()
    _SHARED.clear()


def _detail(resp: httpx.Response) -> str:
    """The server's error detail if it sent one, else the start of the body."""
    try:
        obj = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(obj, dict) and "detail" in obj:
        return str(obj["detail"])
    return resp.text[:200]


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or HTTP date); None if absent/unreadable."""
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
