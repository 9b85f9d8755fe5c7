"""Fault switches shared by the simulated source systems.

Ingestion must survive the failures the real channels produce (5xx, throttling, stalls,
cut or repeated pages, broken FTP transfers, half-written drops). The servers consult
one :class:`Faults` object per request, so a test or an operator can arm a fault for
the next N requests (optionally only for matching paths) on a running server, and see
how often each fault actually fired.
"""

from __future__ import annotations

import copy
import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Any

#: Switch name -> its parameters and their defaults.
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    # HTTP 500 on the next N /v1 requests.
    "http_500": {},
    # HTTP 429 with ``Retry-After: <retry_after>`` (whole seconds) on the next N /v1 requests.
    "http_429": {"retry_after": 1},
    # Delay the next N /v1 responses by ``delay`` seconds, so a client timeout triggers.
    "slow": {"delay": 2.0},
    # The next N udtraek pages are cut mid-JSON (Content-Length matches the cut body).
    "truncated_page": {},
    # The next N udtraek pages carry no identification of the reporter (§ 6, stk. 2; issue 17).
    "no_identification": {},
    # The next N udtraek requests carrying a cursor get the previous page again,
    # including that page's next_cursor (== the cursor just sent).
    "duplicate_page": {},
    # The next N FTP RETR transfers are cut after ``after_bytes`` bytes (426 on control).
    "ftp_disconnect": {"after_bytes": 1024},
    # The next N file drops are left partially written without marker; ``nbytes`` None =
    # half the file, 0 = zero-byte file.
    "partial_file": {"nbytes": None},
}


@dataclass
class FaultSwitch:
    """One armed fault: fires for the next ``count`` matching requests."""

    count: int = 0
    path: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    def matches(self, path: str | None) -> bool:
        """Glob match if the pattern has wildcards, else prefix match; None matches all."""
        if self.path is None:
            return True
        if path is None:
            return False
        if any(c in self.path for c in "*?["):
            return fnmatch.fnmatchcase(path, self.path)
        return path.startswith(self.path)


class Faults:
    """Thread-safe set of fault switches (see :data:`FAULT_PARAMS` for names/parameters).

    ``faults.set("http_429", 2, retry_after=3)`` arms a switch; servers call
    :meth:`consume` per request, which returns the switch parameters when the fault
    fires (and counts it down) or None.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._switches: dict[str, FaultSwitch] = {name: self._fresh(name) for name in FAULT_PARAMS}

    @staticmethod
    def _fresh(name: str) -> FaultSwitch:
        return FaultSwitch(params=dict(FAULT_PARAMS[name]))

    @staticmethod
    def _check_name(name: str) -> None:
        if name not in FAULT_PARAMS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULT_PARAMS)}")

    def set(self, name: str, count: int = 1, path: str | None = None, **params: Any) -> None:
        """Arm ``name`` for the next ``count`` requests matching ``path`` (prefix or glob)."""
        self._check_name(name)
        unknown = set(params) - set(FAULT_PARAMS[name])
        if unknown:
            raise ValueError(f"unknown parameter(s) for {name}: {', '.join(sorted(unknown))}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"{name}: count must be a non-negative integer")
        merged = {**FAULT_PARAMS[name], **params}
        with self._lock:
            sw = self._switches[name]
            sw.count, sw.path, sw.params = count, path, merged

    def clear(self, name: str | None = None) -> None:
        """Disarm one switch (or all) and reset its fired counter."""
        with self._lock:
            for n in [name] if name else list(FAULT_PARAMS):
                self._check_name(n)
                self._switches[n] = self._fresh(n)

    def consume(self, name: str, path: str | None = None) -> dict[str, Any] | None:
        """Fire ``name`` for this request if armed and matching; returns its parameters."""
        with self._lock:
            sw = self._switches[name]
            if sw.count <= 0 or not sw.matches(path):
                return None
            sw.count -= 1
            sw.fired += 1
            return dict(sw.params)

    def active(self, name: str, path: str | None = None) -> bool:
        """Whether ``name`` would fire for ``path`` (without consuming it)."""
        with self._lock:
            sw = self._switches[name]
            return sw.count > 0 and sw.matches(path)

    def fired(self, name: str) -> int:
        """How often ``name`` fired since it was last cleared."""
        with self._lock:
            return self._switches[name].fired

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """JSON-able state of all switches (for ``GET /_faults``)."""
        with self._lock:
            return {
                n: {"count": s.count, "path": s.path, "fired": s.fired, **copy.deepcopy(s.params)}
                for n, s in self._switches.items()
            }

    def update(self, spec: dict[str, Any]) -> None:
        """Apply a ``POST /_faults`` body.

        ``{"clear": true}`` disarms everything first; each other key is a switch name with
        either a count (``{"http_500": 2}``) or an object
        (``{"http_429": {"count": 1, "retry_after": 3, "path": "/v1/ydelse"}}``).
        Validates everything before changing anything.
        """
        if not isinstance(spec, dict):
            raise ValueError("fault spec must be a JSON object")
        calls: list[tuple[str, dict[str, Any]]] = []
        for name, value in spec.items():
            if name == "clear":
                continue
            self._check_name(name)
            if isinstance(value, bool) or not isinstance(value, int | dict):
                raise ValueError(f"{name}: expected a count or an object")
            kwargs = {"count": value} if isinstance(value, int) else dict(value)
            kwargs.setdefault("count", 1)
            unknown = set(kwargs) - {"count", "path"} - set(FAULT_PARAMS[name])
            if unknown:
                raise ValueError(f"unknown parameter(s) for {name}: {', '.join(sorted(unknown))}")
            if (
                not isinstance(kwargs["count"], int)
                or isinstance(kwargs["count"], bool)
                or kwargs["count"] < 0
            ):
                raise ValueError(f"{name}: count must be a non-negative integer")
            calls.append((name, kwargs))
        if spec.get("clear"):
            self.clear()
        for name, kwargs in calls:
            self.set(name, **kwargs)
