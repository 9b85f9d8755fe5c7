"""One retry policy for every channel, on tenacity.

A reporter's webservice or FTP server fails now and then (timeouts, cut transfers,
5xx, 429).  Every channel retries such a failure the same way: exponential backoff
with full jitter (uniform in ``[0, min(max, base * 2**n)]``, so clients that failed
together do not return together), capped, a server's own wait (HTTP ``Retry-After``)
winning when it gives one, and a fixed number of retries after the first attempt.
Errors that retrying cannot help (refused credentials, unknown paths) are not in
``retry_on`` and fail at once.  ``sleep`` and ``rng_seed`` are injectable so tests
record the waits instead of sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

T = TypeVar("T")


class RetryPolicy:
    """How many times and how long to wait; :meth:`call` runs an operation under it."""

    def __init__(self, *, max_retries: int, backoff_base: float, backoff_max: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep, rng_seed: int | None = None) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep
        self._rng = random.Random(rng_seed)

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    def backoff(self, retry_no: int) -> float:
        """Full jitter: the wait before retry ``retry_no`` (0 = the first retry)."""
        return self._rng.uniform(0.0, min(self.backoff_max, self.backoff_base * (2**retry_no)))

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        server_wait = getattr(exc, "retry_after", None)
        if server_wait is not None:
            return min(float(server_wait), self.backoff_max)
        return self.backoff(state.attempt_number - 1)

    def call(self, op: Callable[[], T], *, retry_on: Callable[[BaseException], bool],
             on_failure: Callable[[BaseException], None] | None = None) -> T:
        """``op()`` until it succeeds; re-raises the last error after :attr:`attempts` tries.

        ``retry_on`` says which errors are transient; any other error is raised at once.
        ``on_failure`` runs after each transient failure (e.g. to drop a broken connection).
        """

        def after(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            if on_failure is not None and exc is not None and retry_on(exc):
                on_failure(exc)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(retry_on),
            sleep=self.sleep,
            after=after,
            reraise=True,
        )
        return retrying(op)
