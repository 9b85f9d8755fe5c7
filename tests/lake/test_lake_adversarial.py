"""Adversarial bytes for the parser of every wire format: whatever a reporter sends, parsing never
raises, every record is accounted for (received = accepted + quarantined) and every text it keeps
is storable (no undecodable bytes reach Arrow).

Random damage (hypothesis) to a valid payload of each of the five wire formats: cut anywhere,
bytes inserted (NUL, CR, quotes, delimiters, invalid UTF-8, byte order marks, Ctrl-Z, trailers,
JSON brackets), line ends rewritten, re-encoded (UTF-8 <-> ISO-8859-1, UTF-16), lines duplicated,
swapped or upper-cased, huge lines; and structural damage to webservice pages (records of the
wrong type, nested nulls, unknown and duplicate keys, envelopes missing or wrong).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lake_builders import pick

from pipelines.contracts import load_contracts
from pipelines.lake import parse_payload, reconcile
from pipelines.simulate.channels import read_payload

C = load_contracts()
START = dt.date(2026, 10, 1)
FORMATS = [("ftp", None), ("portal", None), ("filedrop", ".csv"), ("filedrop", ".txt"), ("webservice", None)]


class Samples(dict):
    """Keeps hypothesis' report of a failing example short."""

    def __repr__(self) -> str:
        return "<valid payloads>"


@pytest.fixture(scope="module")
def samples(sources_seed1: Path) -> Samples:
    """One valid payload per wire format (a webservice page built as the service builds it)."""
    out = Samples()
    for channel, suffix in FORMATS:
        ds, path = pick(sources_seed1, channel, suffix)
        if channel == "webservice":
            recs = read_payload(path, C[ds])[0][:12]
            data = json.dumps({"dataset": ds, "dato": START.isoformat(), "indberetter": "101",
                               "identifikation": None, "records": recs, "next_cursor": None,
                               "total": len(recs)}, ensure_ascii=False).encode()
        else:
            data = path.read_bytes()
        out[(channel, suffix)] = (ds, data)
    return out


def check(data: bytes, dataset: str, channel: str) -> None:
    """The parser's promises for any bytes."""
    res = parse_payload(data, C[dataset], channel=channel, reporter="101", leveringsdato=START,
                        payload_id="p" * 32)
    reconcile(res)  # received = accepted + distinct quarantined, every record number in range
    assert res.records_received == res.rows_accepted + res.rows_quarantined
    assert set(res.accepted.column("_payload_id").to_pylist()) <= {"p" * 32}
    q = res.quarantine
    assert not q.num_rows or all(k for k in q.column("error_kind").to_pylist())
    if res.rejected_reason is not None:  # a rejected payload names why, with a payload-level row
        assert res.rejected_reason.strip()
    for col in ("field", "message", "raw_record"):  # storable: valid UTF-8 (Arrow checked it on building)
        for v in q.column(col).to_pylist():
            assert v is None or isinstance(v.encode("utf-8"), bytes)


INSERTS = [b"\x00", b"\r", b"\n", b"\r\n", b'"', b";", b",", b"|", b"\xff", b"\xc3", b"\xef\xbb\xbf", b"\x1a",
           b"{", b"}", b"[", b"]", b"null", b"T|3\n", b"TRAILER;9\r\n", b"TRAILER;x\r\n", b"\\", b"\\u0000",
           b"\xe2\x80\x8b", b"\xc2\x85", b"D|", b"H|x|20261001|1\n", b"\t", b" "]

damage = st.lists(st.one_of(
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 80)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(INSERTS)),
    st.tuples(st.just("byte"), st.floats(0, 1), st.integers(0, 255)),
    st.tuples(st.just("newlines"), st.sampled_from([b"\n", b"\r\n", b"\r"])),
    st.tuples(st.just("encode"), st.sampled_from(["utf-8", "latin-1", "utf-16", "utf-16-le", "cp1252"])),
    st.tuples(st.just("lines"), st.sampled_from(["dup", "swap", "drop", "upper", "first"]), st.floats(0, 1),
              st.floats(0, 1)),
    st.tuples(st.just("huge"), st.floats(0, 1), st.sampled_from([1_000, 70_000])),
), min_size=1, max_size=4)


def apply(data: bytes, ops: list[tuple]) -> bytes:
    b = data
    for op in ops:
        at = int(op[1] * len(b)) if len(op) > 1 and isinstance(op[1], float) else 0
        kind = op[0]
        if kind == "cut":
            b = b[:at]
        elif kind == "delete":
            b = b[:at] + b[at + op[2]:]
        elif kind == "insert":
            b = b[:at] + op[2] + b[at:]
        elif kind == "byte" and b:
            at = min(at, len(b) - 1)
            b = b[:at] + bytes([op[2]]) + b[at + 1:]
        elif kind == "newlines":
            b = b.replace(b"\r\n", b"\n").replace(b"\n", op[1])
        elif kind == "encode":
            text = b.decode("utf-8", "surrogateescape") if op[1] != "utf-8" else b.decode("latin-1")
            b = text.encode(op[1], "surrogateescape" if op[1] in ("utf-8",) else "replace")
        elif kind == "lines":
            lines = b.split(b"\n")
            i, j = int(op[2] * (len(lines) - 1)), int(op[3] * (len(lines) - 1))
            if op[1] == "dup":
                lines.insert(i, lines[i])
            elif op[1] == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            elif op[1] == "drop":
                del lines[i]
            elif op[1] == "upper":
                lines[i] = lines[i].upper()
            else:
                lines = lines[: i + 1]
            b = b"\n".join(lines)
        elif kind == "huge":
            b = b[:at] + b"A" * op[2] + b[at:]
    return b


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f[0] + (f[1] or ""))
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=damage)
def test_damaged_bytes_never_crash_the_parser_and_every_record_is_accounted_for(samples, fmt, ops) -> None:
    dataset, data = samples[fmt]
    check(apply(data, ops), dataset, fmt[0])


WEIRD: list[Any] = [None, 1, -1, 1.5, 10**30, True, "", " ", "x" * 5000, [], {}, [None], {"a": None}, [[1]],
                    "\u0000", "2026-W40-4", "NaN", "١٢", {"$date": 1}, {"nested": {"deeper": None}}]

page_damage = st.lists(st.one_of(
    st.tuples(st.just("records"), st.sampled_from([None, {}, "x", 1, [None], [[]], [1], [{}]])),
    st.tuples(st.just("record"), st.integers(0, 11), st.sampled_from(WEIRD)),
    st.tuples(st.just("value"), st.integers(0, 11), st.integers(0, 40), st.sampled_from(WEIRD)),
    st.tuples(st.just("key"), st.integers(0, 11), st.sampled_from(["x", "", "besked_id ", "BESKED_ID", "æ",
                                                                    "records", "cpr\u0000"]),
              st.sampled_from(WEIRD)),
    st.tuples(st.just("envelope"), st.sampled_from(["dataset", "dato", "indberetter", "total", "next_cursor",
                                                    "identifikation", "extra"]), st.sampled_from(WEIRD)),
    st.tuples(st.just("drop"), st.sampled_from(["dataset", "dato", "indberetter", "records", "total"])),
    st.tuples(st.just("wrap"), st.sampled_from(["list", "null", "page"])),
    st.tuples(st.just("text"), st.sampled_from(["dupkey", "dupenvelope", "latin1", "bom", "ws"])),
), min_size=1, max_size=4)


def damage_page(data: bytes, ops: list[tuple]) -> bytes:
    page: Any = json.loads(data)
    text_ops = []
    for op in ops:
        recs = page.get("records") if isinstance(page, dict) else None
        if op[0] == "records" and isinstance(page, dict):
            page["records"] = copy.deepcopy(op[1])
        elif op[0] == "record" and isinstance(recs, list) and recs:
            recs[op[1] % len(recs)] = copy.deepcopy(op[2])
        elif op[0] == "value" and isinstance(recs, list) and recs and isinstance(recs[op[1] % len(recs)], dict):
            rec = recs[op[1] % len(recs)]
            if rec:
                rec[sorted(rec)[op[2] % len(rec)]] = copy.deepcopy(op[3])
        elif op[0] == "key" and isinstance(recs, list) and recs and isinstance(recs[op[1] % len(recs)], dict):
            recs[op[1] % len(recs)][op[2]] = copy.deepcopy(op[3])
        elif op[0] == "envelope" and isinstance(page, dict):
            page[op[1]] = copy.deepcopy(op[2])
        elif op[0] == "drop" and isinstance(page, dict):
            page.pop(op[1], None)
        elif op[0] == "wrap":
            page = {"list": [page], "null": None, "page": {"page": page}}[op[1]]
        elif op[0] == "text":
            text_ops.append(op[1])
    text = json.dumps(page, ensure_ascii=False)
    for t in text_ops:
        if t == "dupkey":
            text = text.replace('"besked_id": ', '"besked_id": "dup", "besked_id": ', 1)
        elif t == "dupenvelope":
            text = text.replace('"dataset": ', '"dataset": "afmelding", "dataset": ', 1)
        elif t == "ws":
            text = text.replace('": ', '" : ')
    out = text.encode()
    if "latin1" in text_ops:
        out = text.encode("latin-1", "replace")
    if "bom" in text_ops:
        out = b"\xef\xbb\xbf" + out
    return out


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=page_damage)
def test_damaged_webservice_pages_never_crash_the_parser(samples, ops) -> None:
    dataset, data = samples[("webservice", None)]
    check(damage_page(data, ops), dataset, "webservice")


def test_undecodable_bytes_in_a_json_key_or_nested_value_are_quarantined_as_encoding(samples) -> None:
    dataset, data = samples[("webservice", None)]
    page = json.loads(data)
    page["records"][0]["bemærkning\udcff"] = "x"  # an unknown key that is not UTF-8 either
    page["records"][1] = {**page["records"][1], "extra": {"deep": ["\udce6"]}}
    raw = json.dumps(page, ensure_ascii=False).encode("utf-8", "surrogateescape")
    res = parse_payload(raw, C[dataset], channel="webservice", reporter="101", leveringsdato=START,
                        payload_id="p" * 32)
    reconcile(res)
    rows = [(r["record_no"], r["error_kind"]) for r in res.quarantine.to_pylist()]
    assert (1, "encoding") in rows and (2, "encoding") in rows
    assert res.rows_accepted == len(page["records"]) - 2
    assert all("\ufffd" in r["raw_record"] for r in res.quarantine.to_pylist() if r["record_no"] == 1)
