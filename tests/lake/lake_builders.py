"""Builders the lake parser tests share: pick a generated payload, write records back in a channel's
wire format, read a parse's quarantine as (record, field, kind) triples.

Plain functions, not fixtures: the tests call them inside their own helpers.  Only the helpers the
modules define alike live here.  ``records`` and ``parse`` keep their per-module definitions: they share
names but not signatures (``records(path, ds, at_least=6)`` repeats a payload's records for the
strictness tests, ``parse(data, ds, ch, contract)`` takes another contract).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pipelines.contracts import Contract, load_contracts, wire
from pipelines.lake import ParseResult
from pipelines.simulate.channels import iter_payloads, read_payload

START = dt.date(2026, 10, 1)
C = load_contracts()


def pick(gen: Path, channel: str, suffix: str | None = None, dataset: str | None = None) -> tuple[str, Path]:
    """The largest payload of ``channel`` in the generated directory (optionally of a dataset / file suffix);
    ties broken by path, so a test always gets the same one."""
    found = [(ds, p) for ch, ds, p in iter_payloads(gen)
             if ch == channel and (suffix is None or p.suffix == suffix) and (dataset is None or ds == dataset)]
    assert found, f"no {channel} payload in {gen}"
    return max(found, key=lambda dp: (len(read_payload(dp[1], C[dp[0]])[0]), str(dp[1])))


def write_like(channel: str, dataset: str, recs: list[dict[str, Any]], contract: Contract | None = None) -> bytes:
    """``recs`` as the bytes ``channel`` delivers them in (SSI files dated ``START``)."""
    c = contract or C[dataset]
    if channel == "ftp":
        return wire.ftp_payload(c, recs)
    if channel == "portal":
        return wire.portal_payload(c, recs)
    if channel == "webservice":
        return wire.json_lines(recs)
    if c.reporter == "uvm":
        return wire.uvm_payload(c, recs)
    return wire.ssi_payload(c, recs, START.strftime("%Y%m%d"))


def problems(res: ParseResult) -> list[tuple[int | None, str | None, str]]:
    """The quarantine rows as (record_no, field, error_kind)."""
    return [(r["record_no"], r["field"], r["error_kind"]) for r in res.quarantine.to_pylist()]
