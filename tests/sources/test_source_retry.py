"""The one retry policy every channel uses (pipelines/sources/retry.py, on tenacity)."""

from __future__ import annotations

import pytest

from pipelines.sources.ftp import FtpClient
from pipelines.sources.retry import RetryPolicy
from pipelines.sources.webservice import WebserviceClient


class Flaky(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("flaky")
        self.retry_after = retry_after


def _policy(waits: list[float], **kw) -> RetryPolicy:
    kw.setdefault("max_retries", 3)
    kw.setdefault("backoff_base", 0.5)
    return RetryPolicy(sleep=waits.append, rng_seed=1, **kw)


def test_transient_errors_are_retried_with_capped_full_jitter() -> None:
    waits: list[float] = []
    calls = iter([Flaky(), Flaky(), Flaky(), "ok"])

    def op() -> str:
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v

    assert _policy(waits, backoff_max=1.5).call(op, retry_on=lambda e: isinstance(e, Flaky)) == "ok"
    assert len(waits) == 3
    assert all(0 <= w <= min(1.5, 0.5 * 2**i) for i, w in enumerate(waits))
    assert len(set(waits)) == 3  # jittered, not a fixed ladder


def test_the_servers_wait_wins_but_is_capped_and_the_last_error_is_raised() -> None:
    waits: list[float] = []
    failures: list[BaseException] = []

    def op() -> None:
        raise Flaky(retry_after=30.0)

    with pytest.raises(Flaky):
        _policy(waits, max_retries=2, backoff_max=4.0).call(
            op, retry_on=lambda e: isinstance(e, Flaky), on_failure=failures.append)
    assert waits == [4.0, 4.0] and len(failures) == 3


def test_errors_retrying_cannot_help_fail_at_once() -> None:
    waits: list[float] = []
    failures: list[BaseException] = []

    def op() -> None:
        raise PermissionError("refused")

    with pytest.raises(PermissionError):
        _policy(waits).call(op, retry_on=lambda e: isinstance(e, Flaky), on_failure=failures.append)
    assert waits == [] and failures == []


def test_every_channel_retries_through_the_same_policy() -> None:
    ws = WebserviceClient("http://127.0.0.1:9", "t", max_retries=2)
    ftp = FtpClient("127.0.0.1", 9, "u", "p", max_retries=2)
    try:
        assert type(ws.retry) is type(ftp.retry) is RetryPolicy
        assert ws.retry.attempts == ftp.retry.attempts == 3
    finally:
        ws.close()
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1, backoff_base=0.1)
