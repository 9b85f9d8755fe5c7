"""Issue 11, the parser's part: payloads rejected as a whole, typing as strict as the wire format.

Every test asserts the data: the rejection reason, the quarantine rows (record, field, kind,
message) and the accepted rows themselves, on real generated payloads (tiny scale) that are
corrupted where the test needs it.  Every parse is reconciled (records counted in the raw
bytes = accepted + distinct quarantined records).
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import hashlib
import io
import json
import lzma
import os
import random
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lake_builders import pick, problems, write_like

from pipelines.contracts import load_contracts, wire
from pipelines.contracts.validate import DATE_FLOOR, FUTURE_YEARS, _check_type
from pipelines.lake import ParseResult, parse_payload, reconcile
from pipelines.lake.parse import binary_problem
from pipelines.simulate.channels import read_payload

START = dt.date(2026, 10, 1)
C = load_contracts()


@pytest.fixture(scope="module")
def gen(sources_seed1: Path) -> Path:
    """Tiny, 2 days from 1 Oct, seed 1 (conftest ``sources_seed1``, generated once per session; read only)."""
    return sources_seed1


def records(path: Path, dataset: str, at_least: int = 0) -> list[dict[str, Any]]:
    """The payload's records, repeated with fresh message ids up to ``at_least`` records."""
    recs, bad = read_payload(path, C[dataset])
    assert not bad and recs
    out = list(recs)
    while len(out) < at_least:
        k = len(out)
        out.append({**recs[k % len(recs)], "besked_id": str(uuid.UUID(int=random.Random(k).getrandbits(128)))})
    return out


def parse(data: bytes, dataset: str, channel: str, leveringsdato: dt.date = START) -> ParseResult:
    pid = hashlib.sha256(data).hexdigest()[:32]
    res = parse_payload(data, C[dataset], channel=channel, reporter="R01", leveringsdato=leveringsdato,
                        payload_id=pid)
    reconcile(res)
    assert res.records_received == res.rows_accepted + res.rows_quarantined
    return res


def messages(res: ParseResult) -> list[str]:
    return res.quarantine.column("message").to_pylist()


def accepted_ids(res: ParseResult) -> list[str]:
    return res.accepted.column("besked_id").to_pylist()


def ids(recs: list[dict[str, Any]]) -> list[str]:
    return [r["besked_id"] for r in recs]


def page_of(ds: str, recs: list[dict[str, Any]]) -> bytes:
    return json.dumps({"dataset": ds, "dato": START.isoformat(), "indberetter": "R01", "records": recs,
                       "next_cursor": None, "total": len(recs)}, ensure_ascii=False).encode()


def field_of(dataset: str, ftype: str, required: bool | None = None) -> str:
    return next(f.name for f in C[dataset].fields
                if f.type == ftype and not f.multi and (required is None or f.required == required))


# --------------------------------------------------------------------------- clean payloads are not rejected


@pytest.mark.parametrize("channel,suffix", [("ftp", None), ("portal", None), ("filedrop", ".csv"),
                                            ("filedrop", ".txt"), ("webservice", None)])
def test_generated_payload_is_not_rejected(gen: Path, channel: str, suffix: str | None) -> None:
    ds, path = pick(gen, channel, suffix)
    res = parse(path.read_bytes(), ds, channel)
    assert res.rejected_reason is None and problems(res) == []
    assert accepted_ids(res) == ids(records(path, ds))


# --------------------------------------------------------------------------- items 6 and 8: trailers


def test_ssi_trailer_wrong_missing_or_file_cut(gen: Path) -> None:
    ds, path = pick(gen, "filedrop", suffix=".txt")
    data = path.read_bytes()
    recs = records(path, ds)
    n = len(recs)
    at = data.rindex(b"T|")
    wrong = data[:at] + f"T|{n + 2}\n".encode()
    res = parse(wrong, ds, "filedrop")
    assert res.rejected_reason == f"trailer says {n + 2} record(s), the payload holds {n}"
    assert problems(res) == [(None, None, "trailer")]
    assert accepted_ids(res) == ids(recs)  # readable records: the ingest side quarantines them
    res = parse(data[:at], ds, "filedrop")  # trailer missing, every record complete
    assert res.rejected_reason is not None and res.rejected_reason.startswith("missing trailer 'T|<record count>'")
    assert accepted_ids(res) == ids(recs)
    cut = data[:data.rindex(b"D|") + 30]  # cut inside the last data record
    res = parse(cut, ds, "filedrop")
    assert "missing trailer" in res.rejected_reason and f"cut mid-record: the last record (record {n})" \
        in res.rejected_reason
    assert problems(res) == [(None, None, "trailer"), (n, None, "truncated")]
    assert accepted_ids(res) == ids(recs[:-1])


@pytest.mark.parametrize("trailer", [b"TRAILER;abc", b"TRAILER;", b"TRAILER;\xd9\xa1\xd9\xa2", b"TRAILER; 2",
                                     b"TRAILER;2;3"])
def test_ftp_trailer_not_a_count(gen: Path, trailer: bytes) -> None:
    ds, path = pick(gen, "ftp")
    data = path.read_bytes()
    recs = records(path, ds)
    res = parse(data[:data.rindex(b"TRAILER;")] + trailer + b"\r\n", ds, "ftp")
    assert problems(res) == [(None, None, "trailer")]
    assert res.rejected_reason is not None and "holds no record count ('TRAILER;<n>')" in res.rejected_reason
    assert res.trailer_count is None and accepted_ids(res) == ids(recs)


def test_ftp_trailer_wrong_missing_and_cut(gen: Path) -> None:
    ds, path = pick(gen, "ftp")
    data = path.read_bytes()
    recs = records(path, ds)
    n = len(recs)
    at = data.rindex(b"TRAILER;")
    res = parse(data[:at] + f"TRAILER;{n - 1}\r\n".encode(), ds, "ftp")
    assert res.rejected_reason == f"trailer says {n - 1} record(s), the payload holds {n}"
    res = parse(data[:at], ds, "ftp")
    assert res.rejected_reason.startswith("missing trailer 'TRAILER;<record count>'")
    assert accepted_ids(res) == ids(recs)
    res = parse(data[:at - 7], ds, "ftp")  # cut inside the last record
    assert problems(res) == [(None, None, "trailer"), (n, None, "truncated")]
    assert "cut mid-record: the last record (record " in res.rejected_reason
    assert accepted_ids(res) == ids(recs[:-1])


# --------------------------------------------------------------------------- item 7: cut files, quotes


@pytest.mark.parametrize("channel,suffix", [("portal", None), ("filedrop", ".csv")])
def test_delimited_file_cut_mid_record_is_rejected(gen: Path, channel: str, suffix: str | None) -> None:
    ds, path = pick(gen, channel, suffix)
    data = path.read_bytes()
    recs = records(path, ds)
    n = len(recs)
    res = parse(data[:-25], ds, channel)
    assert problems(res) == [(n, None, "truncated")]
    assert res.rejected_reason.startswith(f"cut mid-record: the last record (record {n}) has no line end")
    assert "field(s), the contract has" in res.rejected_reason  # the cut left too few fields
    assert accepted_ids(res) == ids(recs[:-1])
    res = parse(data.rstrip(b"\r\n"), ds, channel)  # only the line end is missing: may be cut in its last field
    assert problems(res) == [(n, None, "truncated")] and res.rejected_reason is not None


def test_unterminated_quote_names_its_line_and_keeps_the_next_records_apart(gen: Path) -> None:
    ds, path = pick(gen, "portal")
    recs = records(path, ds, at_least=8)
    text = field_of(ds, "text") if any(f.type == "text" for f in C[ds].fields) else "entitet"
    lines = write_like("portal", ds, recs).split(b"\r\n")
    k = 2  # record 2 (line 3) gets a stray quote that never closes
    cells = lines[k].split(b";")
    pos = C[ds].field_names.index(text)
    cells[pos] = b'"' + cells[pos]
    lines[k] = b";".join(cells)
    res = parse(b"\r\n".join(lines), ds, "portal")
    assert res.rejected_reason == f"unterminated quote: the quoted field opened at line {k + 1} (record {k}) never closes"
    assert problems(res) == [(k, None, "unterminated_quote")]
    assert f"opened at line {k + 1} never closes" in messages(res)[0]
    # the records after it are records of their own (5 of them were one quarantined record before)
    assert accepted_ids(res) == ids(recs[:k - 1] + recs[k:])
    assert res.records_received == len(recs)


# --------------------------------------------------------------------------- empty and binary payloads


@pytest.mark.parametrize("channel,suffix", [("ftp", None), ("portal", None), ("filedrop", ".csv"),
                                            ("filedrop", ".txt"), ("webservice", None)])
def test_empty_payload_is_rejected(gen: Path, channel: str, suffix: str | None) -> None:
    ds, _ = pick(gen, channel, suffix)
    for data in (b"", b"\xef\xbb\xbf", b"\r\n \r\n"):
        res = parse(data, ds, channel)
        assert problems(res) == [(None, None, "empty_payload")]
        assert res.rejected_reason is not None and res.rejected_reason.startswith("empty payload (")
        assert "requires a" in res.rejected_reason and res.rows_accepted == 0


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("x.csv", data)
    return buf.getvalue()


@pytest.mark.parametrize("wrap,named", [
    (gzip.compress, "gzip-compressed"), (_zip, "a zip archive"), (bz2.compress, "bzip2-compressed"),
    (lzma.compress, "xz-compressed"),
    (lambda d: d.decode("latin-1").encode("utf-16"), "UTF-16LE text (byte order mark FF FE)"),
    (lambda d: d.decode("latin-1").encode("utf-16-be"), "UTF-16BE text without byte order mark"),
    (lambda d: d.decode("latin-1").encode("utf-16-le"), "UTF-16LE text without byte order mark"),
    (lambda d: "\ufeff".encode("utf-16-be") + d.decode("latin-1").encode("utf-16-be"), "UTF-16BE text (byte order mark FE FF)"),
    (lambda d: d.decode("latin-1").encode("utf-32-le"), "UTF-32LE text without byte order mark"),
    (lambda d: os.urandom(4096), "binary content"),
])
@pytest.mark.parametrize("channel", ["ftp", "portal", "webservice"])
def test_compressed_or_wide_payload_is_rejected_naming_it(gen: Path, channel: str, wrap: Any, named: str) -> None:
    ds, path = pick(gen, channel)
    data = wrap(path.read_bytes())
    res = parse(data, ds, channel)
    assert res.rejected_reason is not None and res.rejected_reason.startswith(named), res.rejected_reason
    assert problems(res) == [(None, None, "binary")]
    assert res.rows_accepted == 0 and res.records_received == 0  # no garbage records


@pytest.mark.parametrize("channel,suffix", [("ftp", None), ("portal", None), ("filedrop", ".csv"),
                                            ("filedrop", ".txt")])
@pytest.mark.parametrize("tail,said", [(b"\x00" * 100, "100 NUL byte(s) (zero padding)"),
                                       (b"\x00" * 70_000, "70,000 NUL byte(s) (zero padding)"),
                                       (b"\x1a", "a DOS end-of-file mark (Ctrl-Z, byte 1A)"),
                                       (b"\x1a\x00\x00", "2 NUL byte(s) and 1 Ctrl-Z byte(s)")])
def test_nul_or_ctrl_z_after_the_last_line_rejects_naming_it(gen: Path, channel: str, suffix: str | None,
                                                             tail: bytes, said: str) -> None:
    """Zero fill (a preallocated file, a copy that stopped) or a DOS end-of-file mark after the last
    line: rejected with that reason, not as a record cut mid-line, a missing trailer or a binary file;
    the records before it are read (so ingestion quarantines them) and the trailer still counts."""
    ds, path = pick(gen, channel, suffix)
    data = path.read_bytes()
    recs, _bad = read_payload(path, C[ds])
    res = parse(data + tail, ds, channel)
    assert res.rejected_reason == (f"the payload ends in {said} after its last line: the "
                                   f"{wire_format_name(channel, ds)} format is plain {wire_label(channel, ds)} text "
                                   "and nothing follows its last line (a preallocated or not completely written file?)")
    assert problems(res) == [(None, None, "padding")]
    assert res.records_received == len(recs) and accepted_ids(res) == ids(recs)
    assert res.trailer_count in (None, len(recs))
    clean = parse(data, ds, channel)
    assert clean.rejected_reason is None and accepted_ids(clean) == ids(recs)


def wire_format_name(channel: str, ds: str) -> str:
    from pipelines.lake.formats import wire_format
    return wire_format(channel, C[ds]).name


def wire_label(channel: str, ds: str) -> str:
    from pipelines.lake.formats import wire_format
    return wire_format(channel, C[ds]).label


def test_a_nul_byte_in_one_value_is_not_a_binary_payload(gen: Path) -> None:
    ds, path = pick(gen, "portal")
    recs = records(path, ds, at_least=6)
    fld = field_of(ds, "text") if any(f.type == "text" for f in C[ds].fields) else "entitet"
    recs[1] = {**recs[1], fld: "abc\x00def"}
    recs[2] = {**recs[2], fld: "esc\x1b[31m red"}
    recs[3] = {**recs[3], fld: "tab\tand\nline ends are text"}
    data = write_like("portal", ds, recs)
    assert binary_problem(data) is None
    res = parse(data, ds, "portal")
    assert res.rejected_reason is None
    assert problems(res) == [(2, fld, "control_character"), (3, fld, "control_character")]
    assert messages(res)[0] == (f"{fld}: control character U+0000 (NUL) at character 4: text holds no "
                                "control characters but TAB and line ends")
    assert "U+001B (ESC)" in messages(res)[1]
    assert accepted_ids(res) == ids(recs[:1] + recs[3:])
    by_id = dict(zip(accepted_ids(res), res.accepted.column(fld).to_pylist(), strict=True))
    assert by_id[recs[3]["besked_id"]] == "tab\tand\nline ends are text"


def test_control_character_escaped_in_json(gen: Path) -> None:
    ds, path = pick(gen, "webservice")
    recs = records(path, ds, at_least=6)
    fld = "indberetter"  # a string field of the envelope: every dataset has it
    recs[0] = {**recs[0], fld: recs[0][fld] + "\u0000"}
    recs[1] = {**recs[1], fld: recs[1][fld] + "\u0085"}  # C1 (NEL)
    res = parse(page_of(ds, recs), ds, "webservice")
    assert problems(res) == [(1, fld, "control_character"), (2, fld, "control_character")]
    assert accepted_ids(res) == ids(recs[2:])


# --------------------------------------------------------------------------- item 11: typing


@pytest.mark.parametrize("value,why", [
    ("2026-W40-4", "is not YYYY-MM-DD"), ("20261001", "is not YYYY-MM-DD"), ("2026-10-1", "is not YYYY-MM-DD"),
    ("٢٠٢٦-١٠-٠١", "is not YYYY-MM-DD"), ("2026-10-01T00:00", "is not YYYY-MM-DD"), ("2026-02-30", "does not parse"),
])
def test_dates_are_yyyy_mm_dd_only(gen: Path, value: str, why: str) -> None:
    ds, path = pick(gen, "portal")
    recs = records(path, ds)
    fld = next(f.name for f in C[ds].fields if f.type == "date" and f.required)
    recs[0] = {**recs[0], fld: value}
    res = parse(write_like("portal", ds, recs), ds, "portal")
    assert problems(res) == [(1, fld, "type")]
    assert f"{fld}: {value!r} {why}" in messages(res)[0]
    assert accepted_ids(res) == ids(recs[1:])


def test_non_ascii_digits_are_not_numbers_nor_cpr(gen: Path) -> None:
    ds, path = pick(gen, "portal")  # UTF-8: the digits arrive as sent
    assert "cpr" in C[ds].field_names
    recs = records(path, ds, at_least=6)
    recs[0] = {**recs[0], "version": "١٢"}
    recs[1] = {**recs[1], "cpr": "٠٢٠١٧٨١٠١٠"}
    recs[2] = {**recs[2], "version": "１２"}  # full-width digits
    recs[3] = {**recs[3], "cpr": "0201781O10"}  # a letter O: not digits either
    res = parse(write_like("portal", ds, recs), ds, "portal")
    assert problems(res) == [(1, "version", "type"), (2, "cpr", "type"), (3, "version", "type"), (4, "cpr", "type")]
    assert "version: '١٢' is not an integer (ASCII digits)" in messages(res)[0]
    assert "is not ASCII digits (a CPR number is digits only)" in messages(res)[1]
    assert accepted_ids(res) == ids(recs[4:])
    # a nine-digit CPR is ASCII digits: not a typing question (the quality suites report it)
    recs = records(path, ds)
    recs[0] = {**recs[0], "cpr": "020178101"}
    res = parse(write_like("portal", ds, recs), ds, "portal")
    assert problems(res) == [] and res.accepted.column("cpr")[0].as_py() == "020178101"


def test_datetime_needs_its_offset(gen: Path) -> None:
    ds, path = pick(gen, "webservice")
    recs = records(path, ds, at_least=6)
    recs[0] = {**recs[0], "haendelsestidspunkt": "2026-10-01T12:03:00"}
    recs[1] = {**recs[1], "haendelsestidspunkt": "2026-10-01 12:03:00+02:00"}
    recs[2] = {**recs[2], "haendelsestidspunkt": "2026-10-01T10:03:00Z"}  # UTC, explicit: accepted
    recs[3] = {**recs[3], "haendelsestidspunkt": "2026-10-01T12:03:00.250+02:00"}  # fractions: accepted
    res = parse(page_of(ds, recs), ds, "webservice")
    assert problems(res) == [(1, "haendelsestidspunkt", "type"), (2, "haendelsestidspunkt", "type")]
    assert ("haendelsestidspunkt: '2026-10-01T12:03:00' has no UTC offset: the wire format's datetimes are "
            "ISO 8601 with offset") in messages(res)[0]
    assert accepted_ids(res) == ids(recs[2:])
    got = res.accepted.column("haendelsestidspunkt").to_pylist()
    assert got[0] == dt.datetime(2026, 10, 1, 10, 3, tzinfo=dt.UTC)
    assert got[1] == dt.datetime(2026, 10, 1, 10, 3, 0, 250000, tzinfo=dt.UTC)


def test_json_kinds_follow_the_wire_types(gen: Path) -> None:
    ds, path = pick(gen, "webservice")
    recs = records(path, ds, at_least=6)
    assert "cpr" in recs[0]
    recs[0] = {**recs[0], "cpr": int(recs[0]["cpr"])}  # a CPR as a JSON number: the leading zero is gone
    recs[1] = {**recs[1], "version": "1"}  # a number as a string
    recs[2] = {**recs[2], "version": True}
    recs[3] = {**recs[3], "version": 1.0}
    res = parse(page_of(ds, recs), ds, "webservice")
    assert problems(res) == [(1, "cpr", "type"), (2, "version", "type"), (3, "version", "type"),
                             (4, "version", "type")]
    assert f"cpr: a JSON number ({int(recs[0]['cpr'])}) where the format has a string (a number loses leading " \
           "zeros)" in messages(res)[0]
    assert "version: a JSON string ('1') where the format has a number" in messages(res)[1]
    assert accepted_ids(res) == ids(recs[4:])
    assert res.accepted.column("version").to_pylist() == [r["version"] for r in recs[4:]]


def test_unknown_json_key_quarantines_its_record(gen: Path) -> None:
    ds, path = pick(gen, "webservice")
    recs = records(path, ds, at_least=6)
    opt = next(f.name for f in C[ds].fields if not f.required and not f.multi)
    recs[0] = {**{k: v for k, v in recs[0].items() if k != opt}, opt[:-1]: "x"}  # misspelt optional field
    recs[1] = {**recs[1], "diagnose_kode": "DF32"}
    res = parse(page_of(ds, recs), ds, "webservice")
    assert problems(res) == [(1, opt[:-1], "unknown_field"), (2, "diagnose_kode", "unknown_field")]
    assert f"unknown key {opt[:-1]!r}: not a field of the {ds} contract (did you mean {opt!r}?)" in messages(res)[0]
    assert accepted_ids(res) == ids(recs[2:])
    lines = wire.json_lines(recs)  # JSON lines as well
    res = parse(lines, ds, "webservice")
    assert [p[2] for p in problems(res)] == ["unknown_field", "unknown_field"]


def test_type_rules_agree_between_validator_and_parser() -> None:
    """_check_type is the one statement of the type rules: the parser takes nothing it rejects."""
    c = C["ssi_lpr_kontakt"]
    f = {x.type: x for x in c.all_fields}
    for ftype, good, bad in [
        ("date", ["2026-10-01"], ["2026-W40-4", "2026-274", "20261001", "２０２６-10-01", "2026-10-01\n"]),
        ("integer", ["12", "-3", 12], ["١٢", "+12", " 12", "1_2", "12.0", True, 12.5]),
        ("datetime", ["2026-10-01T12:00:00+02:00", "2026-10-01T10:00:00Z"],
         ["2026-10-01T12:00:00", "2026-10-01", "2026-W40-4T12:00:00+02:00", "20261001T120000+0200"]),
        ("uuid", ["b0bde252-7705-432c-ae98-585e1ee8385a"],
         ["b0bde2527705432cae98585e1ee8385a", "{b0bde252-7705-432c-ae98-585e1ee8385a}"]),
        ("cpr", ["0201781010"], ["٠٢٠١٧٨١٠١٠", 201781010, "020178-1010"]),
    ]:
        if ftype not in f:
            continue
        for v in good:
            assert _check_type(f[ftype], v) is None, (ftype, v)
        for v in bad:
            assert _check_type(f[ftype], v) is not None, (ftype, v)


# --------------------------------------------------------------------------- item 12: implausible dates


def test_implausible_dates_are_quarantined_with_their_bounds(gen: Path) -> None:
    ds, path = pick(gen, "portal")
    recs = records(path, ds, at_least=9)
    c = C[ds]
    fld = next(f.name for f in c.fields if f.type == "date" and f.required and f.name != c.registration_time)
    far = START.replace(year=START.year + FUTURE_YEARS)
    cases = ["9999-12-31", "0001-01-01", "1899-12-31", (START + dt.timedelta(days=36525)).isoformat(),
             (far + dt.timedelta(days=1)).isoformat()]
    for k, v in enumerate(cases):
        recs[k] = {**recs[k], fld: v}
    recs[len(cases)] = {**recs[len(cases)], fld: far.isoformat()}  # the last plausible day
    recs[len(cases) + 1] = {**recs[len(cases) + 1], fld: DATE_FLOOR.isoformat()}  # the first one
    res = parse(write_like("portal", ds, recs), ds, "portal")
    assert problems(res) == [(k + 1, fld, "implausible_date") for k in range(len(cases))]
    msgs = messages(res)
    assert msgs[0].startswith(f"{fld}: 9999-12-31 is implausible (more than {FUTURE_YEARS} years after the "
                              "leveringsdato")
    assert "an open end is an empty field, not 9999-12-31" in msgs[0]
    assert msgs[1].startswith(f"{fld}: 0001-01-01 is implausible (before 1900")
    assert f"plausible 1900-01-01..{far} for leveringsdato {START}" in msgs[2]
    assert accepted_ids(res) == ids(recs[len(cases):])
    got = res.accepted.column(fld).to_pylist()
    assert got[:2] == [far, DATE_FLOOR]


def test_registration_after_its_delivery_is_implausible(gen: Path) -> None:
    ds, path = pick(gen, "webservice")
    recs = records(path, ds, at_least=6)
    reg = C[ds].registration_time
    recs[0] = {**recs[0], "registreringstidspunkt": "2027-10-01T12:00:00+02:00"}
    recs[1] = {**recs[1], "haendelsestidspunkt": "1026-10-01T12:00:00+02:00"}
    recs[2] = {**recs[2], "registreringstidspunkt": "2026-10-02T23:30:00+02:00"}  # next day (time zones): kept
    res = parse(page_of(ds, recs), ds, "webservice")
    assert problems(res) == [(1, "registreringstidspunkt", "implausible_date"),
                             (2, "haendelsestidspunkt", "implausible_date")]
    assert "after the leveringsdato (+1 day for time zones)" in messages(res)[0]
    assert accepted_ids(res) == ids(recs[2:])
    if C[ds].field(reg).type == "date":
        recs = records(path, ds)
        recs[0] = {**recs[0], reg: (START + dt.timedelta(days=2)).isoformat()}
        res = parse(page_of(ds, recs), ds, "webservice")
        assert problems(res) == [(1, reg, "implausible_date")]
