"""Errors raised by the channel clients.

A nightly load touches hundreds of (reporter, dataset, day) units; an error is only
actionable if it says which one failed and where (cursor, page, file). Every error
therefore carries that context as attributes and repeats it in its message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def describe(**context: Any) -> str:
    """``key=value`` pairs for the context that is known (None values are left out)."""
    parts = []
    for key, value in context.items():
        if value is None:
            continue
        if isinstance(value, dt.date):
            value = value.isoformat()
        parts.append(f"{key}={value}")
    return " ".join(parts)


class SourceError(Exception):
    """A channel could not deliver a payload (after retries, where retrying makes sense).

    ``context`` holds what identifies the unit: channel, reporter, dataset, dato,
    cursor, page_no, file, attempts, ...; the same keys are attributes of the error.
    ``body`` and ``detail``: an error answer's bytes and its one-line reason, when the channel got one
    (ingestion lands a webservice client error with them instead of dropping the answer unrecorded).
    """

    body: bytes | None = None
    detail: str | None = None

    def __init__(self, message: str, *, last_error: BaseException | None = None, **context: Any) -> None:
        self.context = {k: v for k, v in context.items() if v is not None}
        self.last_error = last_error
        where = describe(**context)
        text = f"{message} [{where}]" if where else message
        if last_error is not None:
            text += f": last error: {type(last_error).__name__}: {last_error}"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only context breaks the default pickling (errors cross process boundaries);
        # the last error (often unpicklable) is already spelled out in the message.
        return _restore, (type(self), self.args, {**self.__dict__, "last_error": None})

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set in __init__: expose the context keys.
        context = self.__dict__.get("context", {})
        if name in context:
            return context[name]
        raise AttributeError(name)


def _restore(cls: type[SourceError], args: tuple[Any, ...], state: dict[str, Any]) -> SourceError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class AuthError(SourceError):
    """Credentials were refused (HTTP 401/403, FTP 530): retrying cannot help."""


class RefusedError(SourceError):
    """The channel refuses a file it listed (FTP 550): retrying the same request cannot help."""


class StillWrittenError(SourceError):
    """A listed file whose size changed before it was read (an upload still in progress): taken later."""


class TrailerError(SourceError):
    """A file's trailer count disagrees with its data lines: the file is incomplete or corrupt.

    ``expected`` is the trailer count (None if there is no trailer), ``actual`` the data lines.
    """

    def __init__(self, message: str, *, expected: int | None, actual: int, **context: Any) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(message, expected=expected, actual=actual, **context)
