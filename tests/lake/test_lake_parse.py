"""The lake parser: every record accepted or quarantined, problems named, counts reconciled.

Fixtures are real generated payloads (tiny scale), corrupted byte by byte where a test needs
a defect.  Every parse is reconciled: records counted in the raw bytes = accepted + distinct
quarantined records.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lake_builders import pick, problems, write_like

import pipelines.lake.parse as lake_parse
from pipelines.contracts import Field, load_contracts, wire
from pipelines.lake import (
    QUARANTINE_SCHEMA,
    ParseResult,
    ReconciliationError,
    arrow_schema,
    parse_payload,
    reconcile,
    write_parquet,
)
from pipelines.lake.formats import PORTAL_CSV
from pipelines.simulate.channels import iter_payloads, read_payload

START = dt.date(2026, 10, 1)
C = load_contracts()
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def gen(sources_seed1: Path) -> Path:
    """The generated directory the issue names: tiny, 2 days, seed 1; no defects (the structural tests
    edit one record of a payload and expect exactly that problem): conftest ``sources_seed1``, read only."""
    return sources_seed1


@pytest.fixture(scope="module")
def gen_defects(generated) -> Path:
    """Tiny with many defects: seed 6 at 50 % holds both 'bad_encoding' and 'missing_required' records."""
    return generated(days=2, seed=6, defect_rate=0.5)


# --------------------------------------------------------------------------- helpers


def pid_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def reporter_of(channel: str, path: Path) -> str:
    if channel == "webservice":
        return path.stem
    if channel in ("ftp", "portal"):
        return path.stem.rsplit("_", 2)[1]
    return path.parts[-3].upper()


def parse(data: bytes, dataset: str, channel: str, contract: Any = None, reporter: str = "R01") -> ParseResult:
    res = parse_payload(data, contract or C[dataset], channel=channel, reporter=reporter, leveringsdato=START,
                        payload_id=pid_of(data))
    check_reconciled(res, data)
    return res


def check_reconciled(res: ParseResult, data: bytes) -> None:
    reconcile(res)
    assert res.records_received == res.rows_accepted + res.rows_quarantined
    q = res.quarantine
    assert q.schema == QUARANTINE_SCHEMA
    for col, want in (("payload_id", pid_of(data)), ("dataset", res.dataset), ("reporter", res.reporter),
                      ("channel", res.channel)):
        assert set(q.column(col).to_pylist()) <= {want}
    assert set(res.accepted.column("_payload_id").to_pylist()) <= {pid_of(data)}


def rows(res: ParseResult) -> list[dict[str, Any]]:
    return res.quarantine.to_pylist()


def records(path: Path, dataset: str) -> list[dict[str, Any]]:
    recs, bad = read_payload(path, C[dataset])
    assert not bad
    return recs


def first_field(dataset: str, ftype: str) -> str:
    return next(f.name for f in C[dataset].all_fields if f.type == ftype and not f.multi)


# --------------------------------------------------------------------------- schema and writing


def test_arrow_schema_types_every_wire_field_and_lineage() -> None:
    kinds = {"string": pa.string(), "text": pa.string(), "code": pa.string(), "cpr": pa.string(),
             "cvr": pa.string(), "pnummer": pa.string(), "kommunekode": pa.string(), "akassekode": pa.string(),
             "uuid": pa.string(), "time": pa.string(), "integer": pa.int64(), "decimal": pa.float64(),
             "boolean": pa.bool_(), "date": pa.date32(), "datetime": pa.timestamp("us", tz="UTC")}
    for c in C.values():
        schema = arrow_schema(c)
        assert schema.names == c.field_names + ["_channel", "_reporter", "_payload_id", "_record_no",
                                                "_leveringsdato"]
        for f in c.all_fields:
            assert schema.field(f.name).type == (pa.list_(pa.string()) if f.multi else kinds[f.type]), f.name
        assert schema.field("_record_no").type == pa.int64()
        assert schema.field("_leveringsdato").type == pa.date32()
    assert QUARANTINE_SCHEMA.names == ["payload_id", "dataset", "channel", "reporter", "leveringsdato",
                                       "record_no", "field", "error_kind", "message", "raw_record"]


def test_parse_and_write_twice_gives_byte_identical_parquet(gen_defects: Path, tmp_path: Path) -> None:
    ds, path = pick(gen_defects, "portal")
    data = path.read_bytes()
    recs = records(path, ds)
    recs[0] = {**recs[0], "version": "x"}  # a quarantine row too
    data = write_like("portal", ds, recs)
    outs = []
    for k in range(2):
        res = parse(data, ds, "portal")
        a = write_parquet(res.accepted, tmp_path / f"run{k}" / "accepted.parquet")
        q = write_parquet(res.quarantine, tmp_path / f"run{k}" / "quarantine.parquet")
        outs.append((a.read_bytes(), q.read_bytes()))
    assert outs[0] == outs[1]
    assert pq.read_table(tmp_path / "run0" / "accepted.parquet").equals(res.accepted)
    meta = pq.ParquetFile(tmp_path / "run0" / "accepted.parquet").metadata
    assert meta.row_group(0).column(0).compression == "SNAPPY"  # small payload: zstd's setup costs more
    big = pa.table({"x": pa.array(range(5000), pa.int64())})
    big_meta = pq.ParquetFile(write_parquet(big, tmp_path / "big.parquet")).metadata
    assert big_meta.row_group(0).column(0).compression == "ZSTD"
    # atomic: nothing but the two files is left behind
    assert sorted(p.name for p in (tmp_path / "run0").iterdir()) == ["accepted.parquet", "quarantine.parquet"]
    write_parquet(res.accepted.slice(0, 1), tmp_path / "run0" / "accepted.parquet")  # replaces
    assert pq.read_table(tmp_path / "run0" / "accepted.parquet").num_rows == 1


# --------------------------------------------------------------------------- the generated directory


@pytest.mark.parametrize("which", ["gen", "gen_defects"])
def test_generated_payloads_quarantine_exactly_the_ground_truth(which: str, request: pytest.FixtureRequest) -> None:
    out: Path = request.getfixturevalue(which)
    truth: dict[str, set[str]] = collections.defaultdict(set)
    with (out / "ground_truth.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            truth[row["defect"]].add(row["besked_id"])
    expected = truth["bad_encoding"] | truth["missing_required"]
    if which == "gen_defects":
        assert truth["bad_encoding"] and truth["missing_required"], "fixture must hold both defect kinds"
    quarantined: dict[str, set[str]] = collections.defaultdict(set)
    channels_seen = set()
    for channel, ds, path in iter_payloads(out):
        data = path.read_bytes()
        res = parse_payload(data, C[ds], channel=channel, reporter=reporter_of(channel, path),
                            leveringsdato=dt.date.fromisoformat(path.parent.name), payload_id=pid_of(data))
        check_reconciled(res, data)
        assert not res.payload_errors, (path, res.payload_errors)
        recs, _bad = read_payload(path, C[ds])
        assert res.records_received == len(recs), path
        for r in rows(res):
            quarantined[r["error_kind"]].add(recs[r["record_no"] - 1]["besked_id"])
        check_typed_round_trip(res, recs, ds)
        channels_seen.add(channel)
    assert channels_seen == {"webservice", "ftp", "portal", "filedrop"}
    assert set().union(*quarantined.values()) == expected
    assert quarantined["encoding"] == truth["bad_encoding"]
    assert set(quarantined) <= {"encoding", "required"}


def check_typed_round_trip(res: ParseResult, recs: list[dict[str, Any]], ds: str) -> None:
    """Accepted values are the wire values, typed: dates as dates, ints as ints ..."""
    c = C[ds]
    for row in res.accepted.to_pylist():
        wire = recs[row["_record_no"] - 1]
        assert row["_leveringsdato"] == res.leveringsdato and row["_channel"] == res.channel
        for f in c.all_fields:
            v, w = row[f.name], wire.get(f.name)
            if w in (None, "", []):
                assert v is None, (ds, f.name, w, v)
            elif f.multi:
                assert v == [str(x) for x in (w if isinstance(w, list) else str(w).split("#"))]
            elif f.type == "integer":
                assert type(v) is int and v == int(w)
            elif f.type == "decimal":
                assert isinstance(v, float) and v == float(w)
            elif f.type == "boolean":
                assert v is (w in ("true", "1", True))
            elif f.type == "date":
                assert type(v) is dt.date and v == dt.date.fromisoformat(str(w))
            elif f.type == "datetime":
                assert isinstance(v, dt.datetime) and v == dt.datetime.fromisoformat(str(w))
                assert v.utcoffset() == dt.timedelta(0)
            elif f.type == "uuid":
                assert v == str(uuid.UUID(str(w)))
            else:
                assert v == (w if isinstance(w, str) else json.dumps(w)), (ds, f.name)


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("channel", ["portal", "filedrop"])
def test_latin1_bytes_where_utf8_is_declared(gen: Path, channel: str) -> None:
    ds, path = pick(gen, channel, suffix=".csv")
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    assert len(lines) >= 3
    # record 2: its 'entitet' value arrives in Latin-1 ('Æ' is one byte C6, not UTF-8)
    delim = b";" if channel == "portal" else b","
    lines[2] = lines[2].replace(delim + ds.encode() + delim, delim + ("Æ" + ds).encode("latin-1") + delim, 1)
    res = parse(b"".join(lines), ds, channel)
    assert problems(res) == [(2, "entitet", "encoding")]
    r = rows(res)[0]
    assert "not valid UTF-8" in r["message"] and "Æ" in r["message"]  # the cp1252 reading is offered
    assert "\ufffd" + ds in r["raw_record"]  # decoded with errors='replace': the record is kept
    assert res.rows_accepted == res.records_received - 1


def test_utf8_text_in_a_latin1_ftp_file_is_mojibake(gen: Path) -> None:
    ds, path = pick(gen, "ftp")
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    lines[1] = lines[1].replace(f";{ds};".encode(), f";{ds}ø;".encode(), 1)
    res = parse(b"".join(lines), ds, "ftp")
    assert problems(res) == [(1, "entitet", "encoding")]
    assert "mojibake" in rows(res)[0]["message"] and "'ø'" in rows(res)[0]["message"]
    # genuine Latin-1 is fine, and so is a UTF-8 BOM only as a payload-level note
    ok = b"".join(lines).replace("ø".encode(), "ø".encode("latin-1"))
    res = parse(BOM + ok, ds, "ftp")
    assert problems(res) == [(None, None, "encoding")]
    assert "byte order mark" in rows(res)[0]["message"]
    assert res.rows_accepted == res.records_received == len(lines) - 2
    assert res.accepted.column("entitet")[0].as_py() == ds + "ø"


def test_utf8_bom_is_stripped_where_utf8_is_declared(gen: Path) -> None:
    ds, path = pick(gen, "portal")
    data = path.read_bytes()
    assert data.startswith(BOM)  # the portal writes one
    with_bom = parse(data, ds, "portal")
    without = parse(data[len(BOM):], ds, "portal")
    assert problems(with_bom) == problems(without) == []
    assert with_bom.accepted.drop_columns(["_payload_id"]).equals(without.accepted.drop_columns(["_payload_id"]))
    uds, upath = pick(gen, "filedrop", suffix=".csv")
    res = parse(BOM + upath.read_bytes(), uds, "filedrop")
    assert problems(res) == [] and res.rows_accepted == len(records(upath, uds))


# --------------------------------------------------------------------------- line ends and quoting


@pytest.mark.parametrize("newline", [b"\r\n", b"\r", b"\n"])
def test_crlf_lone_cr_and_lf_line_ends(gen: Path, newline: bytes) -> None:
    ds, path = pick(gen, "filedrop", suffix=".csv")
    data = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", newline)
    res = parse(data, ds, "filedrop")
    assert problems(res) == []
    assert res.rows_accepted == res.records_received == len(records(path, ds))
    fds, fpath = pick(gen, "ftp")  # FTP: CRLF and its trailer, read with lone CRs as well
    res = parse(fpath.read_bytes().replace(b"\r\n", newline), fds, "ftp")
    assert problems(res) == [] and res.trailer_count == res.rows_accepted


def test_quoted_field_with_newlines_delimiters_and_quotes(gen: Path) -> None:
    ds, path = pick(gen, "portal", dataset="akasse_fravaer") if any(
        d == "akasse_fravaer" for _c, d, _p in iter_payloads(gen)) else (None, None)
    if ds is None:
        pytest.skip("no akasse_fravaer payload")
    recs = records(path, ds)
    text = 'linje 1\nlinje 2; "citat"\r\nlinje 3\rslut'
    recs = [{**recs[0], "bemaerkning": text}, *recs]
    data = write_like("portal", ds, recs)
    assert data.count(b"\n") > len(recs) + 2  # the newlines are in the bytes
    res = parse(data, ds, "portal")
    assert problems(res) == []
    assert res.records_received == len(recs)
    assert res.accepted.column("bemaerkning")[0].as_py() == text
    assert res.accepted.column("_record_no").to_pylist() == list(range(1, len(recs) + 1))


def test_five_megabyte_field_is_kept_whole(gen: Path) -> None:
    ds, path = pick(gen, "filedrop", suffix=".csv")  # UVM: ',' separated UTF-8
    recs = records(path, ds)
    big = ("Ærø, \"Østergade\"\n" * 300_000)[:5_000_000]
    text_field = next(f.name for f in C[ds].fields if f.type in ("string", "text", "code") and not f.multi)
    good = {**recs[0], text_field: big}
    bad = {**recs[-1], text_field: big, "version": "not-a-number"}
    data = write_like("filedrop", ds, [good, *recs, bad])
    assert len(data) > 10_000_000
    res = parse(data, ds, "filedrop")
    n = len(recs) + 2
    assert problems(res) == [(n, "version", "type")]
    assert res.accepted.column(text_field)[0].as_py() == big
    raw = rows(res)[0]["raw_record"]
    assert len(raw) > 5_000_000 and raw.count("Østergade") == big.count("Østergade")  # not cut


# --------------------------------------------------------------------------- delimiters and numbers


def test_wrong_delimiter_quarantines_every_record_and_loses_nothing(gen: Path) -> None:
    ds, path = pick(gen, "portal")
    recs = records(path, ds)
    data = wire.csv_payload(C[ds], recs, delim=",", encoding="utf-8", bom=True)  # ',' where ';' is declared
    res = parse(data, ds, "portal")
    assert problems(res) == [(None, None, "column_count")] + [(k, None, "column_count")
                                                             for k in range(1, len(recs) + 1)]
    assert "','-separated" in rows(res)[0]["message"]
    assert res.rows_accepted == 0 and res.rows_quarantined == len(recs)
    assert [r["raw_record"] for r in rows(res)[1:]] == data.decode("utf-8-sig").splitlines()[1:]
    uds, upath = pick(gen, "filedrop", suffix=".csv")  # and ';' where ',' is declared
    urecs = records(upath, uds)
    res = parse(wire.csv_payload(C[uds], urecs, delim=";", encoding="utf-8"), uds, "filedrop")
    assert {k for k, _f, kind in problems(res) if kind == "column_count"} == {None, *range(1, len(urecs) + 1)}


def test_decimal_comma_is_a_type_error_unless_the_format_declares_it(
        gen: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds, path = pick(gen, "portal")
    recs = records(path, ds)
    base = C[ds]
    c = dataclasses.replace(base, fields=base.fields + (Field("beloeb", "decimal", False, "none"),))
    data = write_like("portal", ds, [{**recs[0], "beloeb": "12,5"}, {**recs[0], "beloeb": "12.5"}], contract=c)
    res = parse(data, ds, "portal", contract=c)
    assert problems(res) == [(1, "beloeb", "type")]
    assert "decimal comma" in rows(res)[0]["message"]
    assert res.accepted.column("beloeb").to_pylist() == [12.5]
    comma = dataclasses.replace(PORTAL_CSV, decimal_comma=True)
    monkeypatch.setattr(lake_parse, "wire_format", lambda channel, contract: comma)
    res = parse(data, ds, "portal", contract=c)
    assert problems(res) == [] and res.accepted.column("beloeb").to_pylist() == [12.5, 12.5]


def test_non_numeric_value_in_a_numeric_field(gen: Path) -> None:
    ds, path = pick(gen, "ftp")
    recs = records(path, ds)
    recs[-1] = {**recs[-1], "version": "tre"}
    res = parse(write_like("ftp", ds, recs), ds, "ftp")
    assert problems(res) == [(len(recs), "version", "type")]
    assert "'tre' is not an integer" in rows(res)[0]["message"]
    jds, jpath = pick(gen, "webservice", dataset="foranstaltning")
    jrecs = records(jpath, jds)
    dec = next(f.name for f in C[jds].all_fields if f.type == "decimal")
    jrecs[0] = {**jrecs[0], dec: "1O,5", "version": True}
    res = parse(write_like("webservice", jds, jrecs), jds, "webservice")
    assert problems(res) == [(1, "version", "type"), (1, dec, "type")]


def test_impossible_date(gen: Path) -> None:
    ds, path = pick(gen, "portal")
    recs = records(path, ds)
    fld = first_field(ds, "date")
    recs[0] = {**recs[0], fld: "2023-02-30"}
    res = parse(write_like("portal", ds, recs), ds, "portal")
    assert problems(res) == [(1, fld, "type")]
    assert "'2023-02-30' does not parse as date" in rows(res)[0]["message"]
    sds, spath = pick(gen, "filedrop", suffix=".txt")  # SSI, and a datetime on the 30th of February
    srecs = records(spath, sds)
    srecs[1] = {**srecs[1], "haendelsestidspunkt": "2023-02-30T10:00:00+01:00"}
    res = parse(write_like("filedrop", sds, srecs), sds, "filedrop")
    assert problems(res) == [(2, "haendelsestidspunkt", "type")]


# --------------------------------------------------------------------------- structure


def test_truncated_last_record(gen: Path) -> None:
    ds, path = pick(gen, "filedrop", suffix=".csv")  # no trailer: the missing line end tells
    data = path.read_bytes()
    n = len(records(path, ds))
    res = parse(data[:-15], ds, "filedrop")
    assert problems(res) == [(n, None, "truncated")]
    assert res.rows_accepted == n - 1
    # a quoted field that never closes
    pds, ppath = pick(gen, "portal")
    precs = records(ppath, pds)
    cut = write_like("portal", pds, [*precs, {**precs[0], "entitet": 'abc;"def\nghi'}])
    res = parse(cut[:cut.rindex(b"ghi")], pds, "portal")
    assert problems(res) == [(len(precs) + 1, None, "unterminated_quote")]
    line = len(precs) + 2  # header is line 1
    assert f"opened at line {line} never closes" in rows(res)[0]["message"]
    assert res.rejected_reason == f"unterminated quote: the quoted field opened at line {line} (record {len(precs) + 1}) never closes"
    # FTP cut inside its last record: the record is truncated and the trailer is missing
    fds, fpath = pick(gen, "ftp")
    fdata = fpath.read_bytes()
    fn = len(records(fpath, fds))
    res = parse(fdata[:fdata.index(b"TRAILER") - 10], fds, "ftp")
    assert problems(res) == [(None, None, "trailer"), (fn, None, "truncated")]
    # JSON lines cut inside the last object
    jds, jpath = pick(gen, "webservice")
    jdata = jpath.read_bytes()
    res = parse(jdata[:-20], jds, "webservice")
    assert problems(res) == [(len(records(jpath, jds)), None, "truncated")]


@pytest.mark.parametrize("channel", ["ftp", "filedrop"])
def test_missing_or_wrong_trailer_count(gen: Path, channel: str) -> None:
    ds, path = pick(gen, channel, suffix=".txt" if channel == "filedrop" else None)
    data = path.read_bytes()
    n = len(records(path, ds))
    prefix = b"TRAILER;" if channel == "ftp" else b"T|"
    at = data.rindex(prefix)
    res = parse(data, ds, channel)
    assert problems(res) == [] and res.trailer_count == n and "trailer says" in res.counted_by
    res = parse(data[:at], ds, channel)  # cut exactly before the trailer: every record complete
    assert problems(res) == [(None, None, "trailer")] and res.trailer_count is None
    assert "missing trailer" in rows(res)[0]["message"] and res.rows_accepted == n
    wrong = data[:at] + prefix + str(n + 3).encode() + data[at:].split(prefix, 1)[1].lstrip(b"0123456789")
    res = parse(wrong, ds, channel)
    assert problems(res) == [(None, None, "trailer")] and res.trailer_count == n + 3
    assert f"trailer says {n + 3} record(s), the payload holds {n}" in rows(res)[0]["message"]
    assert res.payload_errors and res.payload_errors[0]["error_kind"] == "trailer"


def test_wrong_column_count(gen: Path) -> None:
    ds, path = pick(gen, "ftp")
    lines = write_like("ftp", ds, records(path, ds) * 3).split(b"\r\n")
    lines[1] = lines[1].rsplit(b";", 1)[0]  # one field short
    lines[2] = lines[2] + b";extra"  # one too many
    res = parse(b"\r\n".join(lines), ds, "ftp")
    assert problems(res) == [(1, None, "column_count"), (2, None, "column_count")]
    assert res.trailer_count == res.records_received == res.rows_accepted + 2
    assert f"the contract has {len(C[ds].field_names)}" in rows(res)[0]["message"]
    sds, spath = pick(gen, "filedrop", suffix=".txt")
    slines = spath.read_bytes().split(b"\n")
    slines[3] += b"|x"
    res = parse(b"\n".join(slines), sds, "filedrop")
    assert problems(res) == [(2, None, "column_count")]


def test_duplicated_header_line(gen: Path) -> None:
    ds, path = pick(gen, "portal")
    lines = path.read_bytes().split(b"\r\n")
    lines.insert(2, lines[0][len(BOM):])  # a second header, as when two exports are concatenated
    res = parse(b"\r\n".join(lines), ds, "portal")
    assert problems(res) == [(2, None, "header")]
    assert "duplicated header" in rows(res)[0]["message"]
    # a wrong header: every record is quarantined as unmapped, nothing is lost
    lines = path.read_bytes().split(b"\r\n")
    lines[0] = lines[0].replace(b"besked_id", b"message_id")
    res = parse(b"\r\n".join(lines), ds, "portal")
    n = len(records(path, ds))
    assert problems(res) == [(None, None, "header")] + [(k, None, "header") for k in range(1, n + 1)]
    assert "'message_id'" in rows(res)[0]["message"]


def test_columns_in_another_order_are_mapped_by_name(gen: Path) -> None:
    ds, path = pick(gen, "portal")
    recs = records(path, ds)
    names = C[ds].field_names
    shuffled = dataclasses.replace(C[ds], fields=tuple(reversed(C[ds].fields)))  # writes another order
    data = write_like("portal", ds, recs, contract=shuffled)
    assert data.split(b"\r\n")[0] != (";".join(names)).encode()
    lines = data.split(b"\r\n")
    lines[1] = lines[1].replace(f";{ds};".encode(), f";{ds}Æ;".encode("latin-1"), 1)
    res = parse(b"\r\n".join(lines), ds, "portal")
    assert problems(res) == [(1, "entitet", "encoding")]
    straight = parse(path.read_bytes(), ds, "portal")
    assert res.accepted.drop_columns(["_payload_id"]).equals(
        straight.accepted.filter(pa.compute.greater(straight.accepted["_record_no"], 1))
        .drop_columns(["_payload_id"]))


def test_ssi_header_record_for_another_dataset(gen: Path) -> None:
    ds, path = pick(gen, "filedrop", suffix=".txt")
    data = path.read_bytes().replace(f"H|{ds}|".encode(), b"H|other_dataset|", 1)
    res = parse(data, ds, "filedrop")
    n = len(records(path, ds))
    assert problems(res) == [(None, None, "header")] + [(k, None, "header") for k in range(1, n + 1)]
    assert "other_dataset" in rows(res)[0]["message"]


@pytest.mark.parametrize("channel,suffix", [("ftp", None), ("portal", None), ("filedrop", ".csv"),
                                            ("filedrop", ".txt"), ("webservice", None)])
def test_empty_file(gen: Path, channel: str, suffix: str | None) -> None:
    ds, _path = pick(gen, channel, suffix=suffix)
    for data in (b"", BOM, b"\r\n"):
        res = parse(data, ds, channel)
        assert problems(res) == [(None, None, "empty_payload")]
        assert res.records_received == 0 and res.rows_accepted == 0


@pytest.mark.parametrize("channel,suffix", [("ftp", None), ("portal", None), ("filedrop", ".csv"),
                                            ("filedrop", ".txt"), ("webservice", None)])
def test_header_only_is_zero_records_not_an_error(gen: Path, channel: str, suffix: str | None) -> None:
    ds, _path = pick(gen, channel, suffix=suffix)
    data = write_like(channel, ds, [])
    if channel == "webservice":  # a page without records
        data = json.dumps({"dataset": ds, "dato": START.isoformat(), "indberetter": "R01", "records": [],
                           "next_cursor": None, "total": 0}).encode()
    res = parse(data, ds, channel)
    assert problems(res) == [] and res.records_received == 0 and res.accepted.num_rows == 0
    assert res.accepted.schema == arrow_schema(C[ds])


# --------------------------------------------------------------------------- JSON and envelope


def page_of(ds: str, recs: list[dict[str, Any]]) -> bytes:
    """A webservice page as the server sends it."""
    return json.dumps({"dataset": ds, "dato": START.isoformat(), "indberetter": "R01", "records": recs,
                       "next_cursor": None, "total": len(recs)}, ensure_ascii=False).encode()


def test_http_page_with_invalid_json(gen: Path) -> None:
    ds, path = pick(gen, "webservice")
    recs = records(path, ds)
    page = page_of(ds, recs)
    res = parse(page, ds, "webservice")
    assert problems(res) == [] and res.rows_accepted == len(recs)
    assert "'records' array" in res.counted_by
    res = parse(page[: len(page) // 2], ds, "webservice")  # cut in transfer
    assert problems(res) == [(None, None, "json")]
    assert "invalid JSON page" in rows(res)[0]["message"] and "truncated" in rows(res)[0]["message"]
    assert res.records_received == res.rows_accepted == 0 and res.payload_errors
    assert rows(res)[0]["raw_record"] == page[: len(page) // 2].decode()
    # JSON lines: a line that is not JSON, and one that is not an object
    lines = path.read_bytes().split(b"\n")
    lines[0] = lines[0][:-1] + b",}"
    lines.insert(1, b"[1, 2, 3]")
    res = parse(b"\n".join(lines), ds, "webservice")
    assert problems(res) == [(1, None, "json"), (2, None, "json")]


def test_json_record_missing_required_keys(gen: Path) -> None:
    ds, path = pick(gen, "webservice")
    recs = records(path, ds)
    optional = next(f.name for f in C[ds].all_fields if not f.required)
    required = next(f.name for f in C[ds].fields if f.required)
    broken = {k: v for k, v in recs[0].items() if k not in ("besked_id", required)}
    no_optional = {k: v for k, v in recs[-1].items() if k != optional}
    for data in (page_of(ds, [broken, *recs[1:-1], no_optional]),
                 wire.json_lines([broken, *recs[1:-1], no_optional])):
        res = parse(data, ds, "webservice")
        assert problems(res) == [(1, "besked_id", "required"), (1, required, "required")]
        assert f"required key '{required}' is missing" in rows(res)[1]["message"]
        last = res.accepted.filter(pa.compute.equal(res.accepted["_record_no"], len(recs))).to_pylist()[0]
        assert last[optional] is None  # a missing optional key is null


def test_unknown_change_type(gen: Path) -> None:
    ds, path = pick(gen, "ftp")
    recs = records(path, ds)
    recs[0] = {**recs[0], "aendringstype": "4"}
    res = parse(write_like("ftp", ds, recs), ds, "ftp")
    assert problems(res) == [(1, "aendringstype", "change_type")]
    assert "'4' is not 1, 2 or 3" in rows(res)[0]["message"]
    jds, jpath = pick(gen, "webservice")
    jrecs = records(jpath, jds)
    jrecs[1] = {**jrecs[1], "aendringstype": "0"}
    jrecs[2] = {**jrecs[2], "aendringstype": 1}  # a code is a JSON string: a number is a type error
    res = parse(wire.json_lines(jrecs), jds, "webservice")
    assert problems(res) == [(2, "aendringstype", "change_type"), (3, "aendringstype", "type")]
    assert "a JSON number (1) where the format has a string" in rows(res)[1]["message"]


def test_codelist_and_cpr_validity_are_not_quarantine_reasons(gen: Path) -> None:
    ds, path = pick(gen, "portal")
    recs = records(path, ds)
    code = next(f.name for f in C[ds].fields if f.type == "code" and not f.multi)
    recs[0] = {**recs[0], "cpr": "0000000000", code: "no-such-code"}
    res = parse(write_like("portal", ds, recs), ds, "portal")
    assert problems(res) == [] and res.accepted.column(code)[0].as_py() == "no-such-code"


# --------------------------------------------------------------------------- the two CSV paths, reconciliation


def test_bulk_and_python_paths_agree(gen: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large clean payloads go to Arrow's CSV reader; the result must equal the Python path's."""
    ds, path = pick(gen, "filedrop", suffix=".csv")
    recs = records(path, ds)
    big = (recs * (3000 // len(recs) + 1))[:3000]
    big[7] = {**big[7], "version": "x"}
    big[100] = {**big[100], first_field(ds, "date"): "2023-02-30"}
    big[2000] = {**big[2000], "aendringstype": None}
    code = next(f.name for f in C[ds].fields if f.type == "code" and not f.multi)
    for k, text in ((3, 'a "quoted", value'), (50, "two\nlines, and\r\nthree"), (51, '""'), (52, ",")):
        big[k] = {**big[k], code: text}  # quoting and line ends inside values: both readers must agree
    data = write_like("filedrop", ds, big)
    assert len(data) > lake_parse.BULK_MIN_BYTES
    taken = []
    real = lake_parse._bulk_delimited
    monkeypatch.setattr(lake_parse, "_bulk_delimited", lambda *a: taken.append(real(*a)) or taken[-1])
    bulk = parse(data, ds, "filedrop")
    assert taken and taken[0] is not None
    monkeypatch.setattr(lake_parse, "BULK_MIN_BYTES", 1 << 40)
    slow = parse(data, ds, "filedrop")
    assert bulk.accepted.equals(slow.accepted)
    assert bulk.quarantine.equals(slow.quarantine)
    assert {(k, f) for k, f, _kind in problems(bulk)} >= {(8, "version"), (101, first_field(ds, "date")),
                                                          (2001, "aendringstype")}
    by_no = dict(zip(bulk.accepted["_record_no"].to_pylist(), bulk.accepted[code].to_pylist(), strict=True))
    assert (by_no[4], by_no[51], by_no[52], by_no[53]) == ('a "quoted", value', "two\nlines, and\r\nthree", '""', ",")


def test_independent_count_agrees_with_the_tokenizer_on_random_text() -> None:
    """The record count (bytes, quote walk) and the parser's tokenizer (text, regex) are separate code."""
    from pipelines.lake.count import count_delimited

    rng = random.Random(3)
    for _ in range(20_000):
        text = "".join(rng.choice('ab;"\r\n') for _ in range(rng.randint(0, 14)))
        recs, terminated, unterminated = lake_parse.split_records(text, ";", '"')
        open_quote = bool(unterminated)
        cnt = count_delimited(text.encode(), b";", b'"', header=False)
        assert (cnt.records, cnt.open_quote) == (len(recs), open_quote), text
        if recs and not open_quote:
            assert cnt.last_terminated == terminated, text


def test_reconcile_names_payload_dataset_reporter_and_counts(gen: Path) -> None:
    ds, path = pick(gen, "ftp")
    data = path.read_bytes()
    res = parse(data, ds, "ftp")
    broken = dataclasses.replace(res, accepted=res.accepted.slice(1))
    with pytest.raises(ReconciliationError) as err:
        reconcile(broken)
    msg = str(err.value)
    n = res.records_received
    for part in (pid_of(data), ds, "R01", f"received {n} record(s)", f"{n - 1} accepted", "trailer says"):
        assert part in msg
