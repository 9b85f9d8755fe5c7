"""A corpus of bad input files for every file channel (FTP chapter 11 CSV, portal CSV, UVM and SSI
drops), ingested for real: each must end as loaded, rejected or duplicate with a reason in the
ledger, never crash the day, put no row of a rejected payload in the lake, and a rerun is a no-op.
(Webservice pages: tests/ingest/test_ingest_webservice_corpus.py.)

Each case gets a delivery day of its own (its files are named for that day), so cases cannot meet
in a slot; every record is unique to its case unless the case is about repeated bytes. After one
ingestion of every day the invariants are checked for the whole corpus at once:

* the case's files have the ledger status (and reason) the table says;
* every entry each folder offered is accounted for (``account_day``: nothing unaccounted);
* every ledger row is final, a row that is not ``loaded`` says why, and rows read = accepted +
  quarantined;
* the lake equals the ledger per payload (the warehouse's own check, ``lake_ledger_checks``), and no
  lake row belongs to a rejected payload;
* a rerun changes no byte of the zones and no ledger row.
"""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
import io
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from ingest_builders import ledger_rows, records, zone_tree

import pipelines.ingest as ingest
from pipelines.contracts import load_contracts
from pipelines.contracts.wire import ftp_payload, portal_payload, ssi_payload, uvm_payload
from pipelines.ingest import SourcesConfig, Zones, account_day, folder_datasets, ingest_day
from pipelines.simulate.servers import marker_path, start_sources
from pipelines.warehouse.checks import lake_ledger_checks

START = dt.date(2026, 10, 1)
RECEIVED_AT = "2027-03-01T02:00:00+01:00"
C = load_contracts()
DS = {"ftp": "sanktion", "portal": "akasse_fravaer", "uvm": "uddannelse", "ssi": "ssi_lpr_kontakt"}
REP = {"ftp": "101", "portal": "013", "uvm": "UVM", "ssi": "SSI"}
FOLDER_DIR = {"ftp": ("ftp",), "portal": ("portal",), "uvm": ("drops", "uvm"), "ssi": ("drops", "ssi")}

LOADED, REJECTED, DUPLICATE = "loaded", "rejected", "duplicate"

pytestmark = pytest.mark.usefixtures("portal_stable_now")  # conftest


def recs(folder: str, case: str, n: int = 3, reporter: str | None = None, **change: object) -> list[dict]:
    """``n`` clean records of the folder's dataset, with message ids of this case alone."""
    return records(DS[folder], n, reporter or REP[folder], key=f"corpus/{case}", **change)


def wire(folder: str, records: list[dict], day: dt.date) -> bytes:
    c = C[DS[folder]]
    if folder == "ftp":
        return ftp_payload(c, records)
    if folder == "portal":
        return portal_payload(c, records)
    if folder == "uvm":
        return uvm_payload(c, records)
    return ssi_payload(c, records, day.strftime("%Y%m%d"))


def good(folder: str, case: str, day: dt.date, n: int = 3, **change: object) -> bytes:
    return wire(folder, recs(folder, case, n, **change), day)


def name(folder: str, day: dt.date, reporter: str | None = None) -> str:
    d = day.strftime("%Y%m%d")
    if folder in ("ftp", "portal"):
        return f"{DS[folder]}_{reporter or REP[folder]}_{d}.csv"
    return f"{DS[folder]}_{d}.{'txt' if folder == 'ssi' else 'csv'}"


def lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def with_lines(data: bytes, edit: Callable[[list[bytes]], list[bytes]]) -> bytes:
    return b"".join(edit(lines(data)))


def newline(data: bytes, nl: bytes) -> bytes:
    return b"".join(ln.rstrip(b"\r\n") + nl for ln in lines(data))


def zipped(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.csv", data)
    return buf.getvalue()


@dataclass
class Case:
    """Files one case puts in its folder for its day, and what must become of each name."""

    id: str
    folder: str
    build: Callable[[str, dt.date], dict[str, bytes]]  # (case id, day) -> {name: bytes}
    expect: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (status, reason part)
    default: tuple[str, str] | None = None  # for every name not in ``expect``
    quarantined: str | None = None  # an error kind the loaded payload's quarantine must show


def _c(id: str, folder: str, build: Callable[[str, dt.date], bytes | dict[str, bytes]], status: str,
       reason: str = "", quarantined: str | None = None) -> Case:
    """A case of one file under the folder's proper name for the day (or several, ``build`` gives a dict)."""
    def files(case: str, day: dt.date) -> dict[str, bytes]:
        out = build(case, day)
        return out if isinstance(out, dict) else {name(folder, day): out}
    return Case(id, folder, files, default=(status, reason), quarantined=quarantined)


def _encodings(f: str) -> list[Case]:
    utf8 = f in ("portal", "uvm")

    def accented(case: str, day: dt.date, enc: str) -> bytes:
        rs = recs(f, case, 3)
        rs[1]["entitet"] = "Søren Ærø"  # a text field every dataset has
        data = wire(f, rs, day)
        # re-encode only that record's line in ``enc``
        return data.replace("Søren Ærø".encode("latin-1" if not utf8 else "utf-8"), "Søren Ærø".encode(enc))
    other = "latin-1" if utf8 else "utf-8"
    return [
        _c(f"{f}-other-encoding-in-one-record", f, lambda c, d: accented(c, d, other), LOADED, "",
           quarantined="encoding"),
        _c(f"{f}-utf16-bom", f, lambda c, d: good(f, c, d).decode("latin-1").encode("utf-16"), REJECTED, "UTF-16"),
        _c(f"{f}-utf16le-no-bom", f, lambda c, d: good(f, c, d).decode("latin-1").encode("utf-16-le"), REJECTED,
           "UTF-16"),
        _c(f"{f}-utf32", f, lambda c, d: good(f, c, d).decode("latin-1").encode("utf-32"), REJECTED, "UTF-32"),
        # a UTF-8 byte order mark on an ISO-8859-1 file is stripped (its records are checked one by one)
        _c(f"{f}-utf8-bom", f, lambda c, d: (b"" if good(f, c, d).startswith(codecs.BOM_UTF8) else codecs.BOM_UTF8)
           + good(f, c, d), LOADED),
        _c(f"{f}-no-bom", f, lambda c, d: good(f, c, d).removeprefix(codecs.BOM_UTF8), LOADED),
    ]


def _line_ends(f: str) -> list[Case]:
    return [
        _c(f"{f}-crlf", f, lambda c, d: newline(good(f, c, d), b"\r\n"), LOADED),
        _c(f"{f}-lf", f, lambda c, d: newline(good(f, c, d), b"\n"), LOADED),
        _c(f"{f}-cr", f, lambda c, d: newline(good(f, c, d), b"\r"), LOADED),
        _c(f"{f}-mixed", f, lambda c, d: b"".join(ln.rstrip(b"\r\n") + (b"\r\n", b"\n", b"\r")[k % 3]
                                                  for k, ln in enumerate(lines(good(f, c, d)))), LOADED),
        _c(f"{f}-no-final-newline", f, lambda c, d: good(f, c, d).rstrip(b"\r\n"),
           LOADED if f in ("ftp", "ssi") else REJECTED, "" if f in ("ftp", "ssi") else "cut mid-record"),
        _c(f"{f}-blank-lines-between", f, lambda c, d: with_lines(good(f, c, d), lambda ls: [
            x for ln in ls for x in (ln, b"\r\n" if ln.endswith(b"\r\n") else b"\n")]), LOADED),
    ]


def _nul(f: str) -> list[Case]:
    def nul_in_value(case: str, day: dt.date) -> bytes:
        rs = recs(f, case, 3)
        rs[0]["entitet"] = rs[0]["entitet"] + "\x00"
        return wire(f, rs, day)
    return [
        _c(f"{f}-nul-in-a-value", f, nul_in_value, LOADED, quarantined="control_character"),
        _c(f"{f}-nul-padding", f, lambda c, d: good(f, c, d) + b"\x00" * 4096, REJECTED, "NUL"),
        _c(f"{f}-ctrl-z", f, lambda c, d: good(f, c, d) + b"\x1a", REJECTED, "Ctrl-Z"),
        _c(f"{f}-nul-in-header", f, lambda c, d: good(f, c, d).replace(b"besked_id", b"besked\x00id", 1), REJECTED),
    ]


def _headers(f: str) -> list[Case]:
    col = 1 if f == "ssi" else 0  # the header line (SSI: the K record)

    def edit_header(edit: Callable[[list[str]], list[str]]) -> Callable[[str, dt.date], bytes]:
        def build(case: str, day: dt.date) -> bytes:
            ls = lines(good(f, case, day))
            raw = ls[col]
            bom = codecs.BOM_UTF8 if raw.startswith(codecs.BOM_UTF8) else b""
            body = raw[len(bom):]
            end = body[len(body.rstrip(b"\r\n")):]
            delim = {"ftp": ";", "portal": ";", "uvm": ",", "ssi": "|"}[f]
            cols = body.rstrip(b"\r\n").decode("latin-1").split(delim)
            lead = cols[:1] if f == "ssi" else []
            cols = lead + edit(cols[len(lead):])
            ls[col] = bom + delim.join(cols).encode("latin-1") + end
            return b"".join(ls)
        return build

    def reorder_rows(case: str, day: dt.date) -> bytes:
        # a proper reordering: header and every record in the same (reversed) column order
        data = good(f, case, day)
        ls = lines(data)
        delim = {"ftp": ";", "portal": ";", "uvm": ",", "ssi": "|"}[f].encode()
        out = []
        for ln in ls:
            bom = codecs.BOM_UTF8 if ln.startswith(codecs.BOM_UTF8) else b""
            body = ln[len(bom):]
            end = body[len(body.rstrip(b"\r\n")):]
            parts = body.rstrip(b"\r\n").split(delim)
            is_meta = (f == "ssi" and parts[0] in (b"H", b"T")) or (f == "ftp" and parts[0] == b"TRAILER")
            if not is_meta:
                lead = parts[:1] if f == "ssi" else []
                parts = lead + parts[len(lead):][::-1]
            out.append(bom + delim.join(parts) + end)
        return b"".join(out)

    def missing_header(case: str, day: dt.date) -> bytes:
        ls = lines(good(f, case, day))
        bom = codecs.BOM_UTF8 if ls[0].startswith(codecs.BOM_UTF8) else b""
        del ls[col]
        if bom and col == 0:
            ls[0] = bom + ls[0]
        return b"".join(ls)

    def header_twice(case: str, day: dt.date) -> bytes:
        ls = lines(good(f, case, day))
        ls.insert(col + 2, ls[col].removeprefix(codecs.BOM_UTF8))
        return b"".join(ls)
    return [
        _c(f"{f}-header-missing", f, missing_header, REJECTED),
        _c(f"{f}-header-reordered", f, reorder_rows, LOADED),
        _c(f"{f}-header-duplicated-column", f, edit_header(lambda cs: [*cs, cs[0]]), REJECTED, "more than once"),
        _c(f"{f}-header-extra-column", f, edit_header(lambda cs: [*cs, "ekstra"]), REJECTED),
        _c(f"{f}-header-missing-column", f, edit_header(lambda cs: cs[:-1]), REJECTED),
        _c(f"{f}-header-upper-case", f, edit_header(lambda cs: [x.upper() for x in cs]), REJECTED, "case"),
        _c(f"{f}-header-padded", f, edit_header(lambda cs: [f" {x}" for x in cs]), REJECTED, "spaces"),
        _c(f"{f}-header-trailing-delimiter", f, edit_header(lambda cs: [*cs, ""]), REJECTED, "empty column name"),
        # the repeated header is a record: quarantined; the FTP trailer then counts one record too few
        _c(f"{f}-header-twice", f, header_twice, REJECTED if f == "ftp" else LOADED, "trailer" if f == "ftp" else ""),
        _c(f"{f}-header-only", f, lambda c, d: good(f, c, d, n=0), LOADED),
    ]


def _trailers(f: str) -> list[Case]:
    t = b"TRAILER;" if f == "ftp" else b"T|"
    nl = b"\r\n" if f == "ftp" else b"\n"

    def trailer(edit: Callable[[list[bytes]], list[bytes]]) -> Callable[[str, dt.date], bytes]:
        return lambda c, d: with_lines(good(f, c, d), edit)

    def last(ls: list[bytes]) -> bytes:
        return ls[-1]
    return [
        _c(f"{f}-trailer-wrong", f, trailer(lambda ls: [*ls[:-1], t + b"7" + nl]), REJECTED, "trailer"),
        _c(f"{f}-trailer-missing", f, trailer(lambda ls: ls[:-1]), REJECTED, "trailer"),
        _c(f"{f}-trailer-not-a-number", f, trailer(lambda ls: [*ls[:-1], t + b"tre" + nl]), REJECTED, "trailer"),
        _c(f"{f}-trailer-negative", f, trailer(lambda ls: [*ls[:-1], t + b"-3" + nl]), REJECTED, "trailer"),
        _c(f"{f}-trailer-padded", f, trailer(lambda ls: [*ls[:-1], t + b" 3" + nl]), REJECTED, "trailer"),
        _c(f"{f}-trailer-arabic-digits", f, trailer(lambda ls: [*ls[:-1], t + "٣".encode() + nl]), REJECTED,
           "trailer"),
        _c(f"{f}-trailer-extra-field", f, trailer(lambda ls: [*ls[:-1], last(ls).rstrip(b"\r\n") + b";x" + nl]),
           REJECTED, "trailer"),
        _c(f"{f}-trailer-twice", f, trailer(lambda ls: [*ls, ls[-1]]), REJECTED),
        _c(f"{f}-trailer-in-the-middle", f, trailer(lambda ls: [*ls[:-2], ls[-1], ls[-2]]), REJECTED),
        _c(f"{f}-trailer-lower-case", f, trailer(lambda ls: [*ls[:-1], last(ls).lower()]), REJECTED),
        _c(f"{f}-trailer-counts-header", f, trailer(lambda ls: [*ls[:-1], t + b"4" + nl]), REJECTED, "trailer"),
        _c(f"{f}-trailer-leading-zero", f, trailer(lambda ls: [*ls[:-1], t + b"03" + nl]), LOADED),
        _c(f"{f}-cut-in-trailer", f, lambda c, d: good(f, c, d)[:-3], REJECTED),
    ]


def _payload_level(f: str) -> list[Case]:
    def cut(case: str, day: dt.date) -> bytes:
        data = good(f, case, day, n=5)
        return data[: len(data) * 2 // 3]

    def unterminated(case: str, day: dt.date) -> bytes:
        rs = recs(f, case, 6)
        data = wire(f, rs, day)
        return data.replace(rs[1]["besked_id"].encode(), b'"' + rs[1]["besked_id"].encode(), 1)

    def too_many_fields(case: str, day: dt.date) -> bytes:
        rs = recs(f, case, 3)
        data = wire(f, rs, day)
        delim = {"ftp": b";", "portal": b";", "uvm": b",", "ssi": b"|"}[f]
        return data.replace(rs[0]["besked_id"].encode(), rs[0]["besked_id"].encode() + delim + b"x", 1)

    def huge_value(case: str, day: dt.date) -> bytes:
        rs = recs(f, case, 3)
        data = wire(f, rs, day)
        return data.replace(rs[2]["besked_id"].encode(), b"Z" * 3_000_000, 1)
    out = [
        _c(f"{f}-empty", f, lambda c, d: b"", REJECTED, "empty"),
        _c(f"{f}-only-newlines", f, lambda c, d: b"\r\n\n\r\n", REJECTED, "empty"),
        _c(f"{f}-only-spaces", f, lambda c, d: b"   \t ", REJECTED, "empty"),
        _c(f"{f}-only-bom", f, lambda c, d: codecs.BOM_UTF8, REJECTED, "empty"),
        _c(f"{f}-cut-mid-record", f, cut, REJECTED),
        _c(f"{f}-gzip", f, lambda c, d: gzip.compress(good(f, c, d), mtime=0), REJECTED, "gzip"),
        _c(f"{f}-zip", f, lambda c, d: zipped(good(f, c, d)), REJECTED, "zip"),
        _c(f"{f}-random-binary", f, lambda c, d: bytes((k * 7919 + 13) % 256 for k in range(5000)), REJECTED),
        _c(f"{f}-too-many-fields", f, too_many_fields, LOADED, quarantined="column_count"),
        _c(f"{f}-huge-value", f, huge_value, LOADED, quarantined="type"),
        _c(f"{f}-huge-line-garbage", f, lambda c, d: b"x" * 2_000_000, REJECTED),
        _c(f"{f}-another-datasets-file", f, lambda c, d: {
            name(f, d): (good("portal" if f != "portal" else "ftp", c, d))}, REJECTED),
    ]
    if f != "ssi":
        out.append(_c(f"{f}-unterminated-quote", f, unterminated, REJECTED, "unterminated quote"))
    return out


def _names(f: str) -> list[Case]:
    """One case a row: (case, the file's name as a pattern, the reason's part).  In a pattern ``{ds}`` is the
    folder's dataset, ``{rep}`` ``_`` and the reporter code in folders whose names carry one (else empty),
    ``{date}`` the case's day as YYYYMMDD (``{year}`` its year, ``{date3}`` three days later), ``{ext}`` the
    folder's extension."""
    table = [
        ("unicode", "{ds}æ{rep}_{date}{ext}", "naming rule"),
        ("space", "{ds}{rep}_{date} {ext}", "naming rule"),
        ("dots", "{ds}{rep}_{date}.v2{ext}", "naming rule"),
        ("upper-case", "{DS}{rep}_{date}{ext}", "naming rule"),
        ("upper-case-extension", "{ds}{rep}_{date}{EXT}", "naming rule"),
        ("wrong-extension", "{ds}{rep}_{date}.dat", "naming rule"),
        ("gz-extension", "{ds}{rep}_{date}{ext}.gz", "naming rule"),
        ("no-date", "{ds}{rep}{ext}", "naming rule"),
        ("impossible-date", "{ds}{rep}_{year}1340{ext}", "not a date"),
        ("future-date", "{ds}{rep}_{date3}{ext}", "a day after"),
        ("far-future-date", "{ds}{rep}_99991231{ext}", "a day after"),
        ("unknown-dataset", "noget_andet{rep}_{date}{ext}", "no dataset"),
        ("leading-dash", "-{ds}{rep}_{date}{ext}", "naming rule"),
        # FTP listings are lines: the server lists the name without its line break, and refuses it
        ("newline", "{ds}{rep}_{date}{ext}\n", "refused when asked for" if f == "ftp" else "naming rule"),
        ("backslash", "{ds}\\{rep}_{date}{ext}", "naming rule"),
        ("zero-width-space", "{ds}\u200b{rep}_{date}{ext}", "naming rule"),
        ("long-name", "{ds}{rep}_{date}" + "x" * 200 + "{ext}", "naming rule"),
    ]
    if f in ("ftp", "portal"):
        table += [("reporter-not-in-code-list", "{ds}_999_{date}{ext}", "code list"),
                  ("reporter-two-digits", "{ds}_13_{date}{ext}", "naming rule"),
                  ("no-reporter", "{ds}_{date}{ext}", "naming rule")]
    ext = ".txt" if f == "ssi" else ".csv"
    rep = f"_{REP[f]}" if f in ("ftp", "portal") else ""

    def named(pattern: str) -> Callable[[str, dt.date], dict[str, bytes]]:
        def files(case: str, day: dt.date) -> dict[str, bytes]:
            name = pattern.format(ds=DS[f], DS=DS[f].upper(), rep=rep, ext=ext, EXT=ext.upper(), year=day.year,
                                  date=day.strftime("%Y%m%d"), date3=(day + dt.timedelta(days=3)).strftime("%Y%m%d"))
            return {name: good(f, case, day)}
        return files
    return [_c(f"{f}-name-{k}", f, named(pattern), REJECTED, why) for k, pattern, why in table]


def _repeats(f: str) -> list[Case]:
    def same_bytes_twice(case: str, day: dt.date) -> dict[str, bytes]:
        data = good(f, case, day)
        out = {name(f, day): data}
        if f in ("ftp", "portal"):
            other = "147" if f == "ftp" else "002"
            out[name(f, day, other)] = data  # the same bytes under another reporter's name
        return out

    def another_reporters_records(case: str, day: dt.date) -> bytes:
        other = {"ftp": "147", "portal": "002", "uvm": "SSI", "ssi": "UVM"}[f]
        return wire(f, recs(f, case, 3, reporter=other), day)
    def header_only_twice(case: str, day: dt.date) -> dict[str, bytes]:
        other = "147" if f == "ftp" else "002"
        return {name(f, day): good(f, case, day, n=0), name(f, day, other): good(f, case, day, n=0)}
    out = [_c(f"{f}-records-of-another-reporter", f, another_reporters_records, REJECTED, "another reporter")]
    if f in ("ftp", "portal"):
        # two reporters' header-only exports: the same bytes, two payloads, each with a lake file of its own
        out.append(_c(f"{f}-header-only-from-two-reporters", f, header_only_twice, LOADED))
        c = Case(f"{f}-same-bytes-two-reporters", f, same_bytes_twice)
        # whichever comes first loads (the names sort by reporter); the other is refused as another reporter's
        c.expect = {"*0": (LOADED, ""), "*1": (REJECTED, "same bytes")} if f == "ftp" else \
            {"*0": (LOADED, ""), "*1": (REJECTED, "another reporter")}
        out.append(c)
    return out


def _ssi_records() -> list[Case]:
    f = "ssi"

    def edit(fn: Callable[[list[bytes], dt.date], list[bytes]]) -> Callable[[str, dt.date], bytes]:
        return lambda c, d: b"".join(fn(lines(good(f, c, d)), d))
    return [
        _c("ssi-H-names-another-dataset", f, edit(lambda ls, d: [ls[0].replace(b"ssi_lpr_kontakt",
                                                                               b"ssi_sygesikring_kontakt"), *ls[1:]]),
           REJECTED),
        _c("ssi-H-missing", f, edit(lambda ls, d: ls[1:]), REJECTED),
        _c("ssi-K-missing", f, edit(lambda ls, d: [ls[0], *ls[2:]]), REJECTED),
        # a line of an unknown type is no record (the trailer counts D| records): kept in the quarantine
        _c("ssi-unknown-record-type", f, edit(lambda ls, d: [*ls[:3], b"X|noget\n", *ls[3:]]), LOADED,
           quarantined="column_count"),
        _c("ssi-lower-case-record-type", f, edit(lambda ls, d: [*ls[:2], b"d" + ls[2][1:], *ls[3:]]), REJECTED),
    ]


def _all_cases() -> list[Case]:
    out = []
    for f in ("ftp", "portal", "uvm", "ssi"):
        out += _encodings(f) + _line_ends(f) + _nul(f) + _headers(f) + _payload_level(f) + _names(f) + _repeats(f)
        if f in ("ftp", "ssi"):
            out += _trailers(f)
    return out + _ssi_records()


CASES = _all_cases()


def _day_of(k: int) -> dt.date:
    return START + dt.timedelta(days=1 + k)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, portal_stable_now: None):
    """Every case's files written and ingested once (and ingested again: the rerun)."""
    base = tmp_path_factory.mktemp("corpus")
    src = base / "sources"
    for parts in FOLDER_DIR.values():
        src.joinpath(*parts).mkdir(parents=True, exist_ok=True)
    (src / "webservice").mkdir()
    (src / "webservice" / "tokens.json").write_text("{}")
    placed: dict[str, tuple[dt.date, dict[str, bytes]]] = {}
    for k, case in enumerate(CASES):
        day = _day_of(k)
        files = case.build(case.id, day)
        d = src.joinpath(*FOLDER_DIR[case.folder], day.isoformat())
        d.mkdir(parents=True, exist_ok=True)
        for n, data in files.items():
            (d / n).write_bytes(data)
            if case.folder in ("uvm", "ssi"):
                marker_path(d / n).touch()
        placed[case.id] = (day, files)
    root = base / "zones"
    try:
        with start_sources(src) as s:
            cfg = SourcesConfig.from_describe(s.describe())
            first = _ingest_all(root, cfg, placed)
            tree = zone_tree(root)
            rows = ledger_rows(root)
            second = _ingest_all(root, cfg, placed)
            rows_after = ledger_rows(root)
            accounts = {cid: account_day(day, Zones(root), cfg, folders=[c.folder])
                        for c in CASES for cid, (day, _) in [(c.id, placed[c.id])]}
            yield {"root": root, "placed": placed, "first": first, "second": second, "tree": tree,
                   "tree_after": zone_tree(root), "rows": rows, "rows_after": rows_after, "accounts": accounts}
    finally:
        if not os.environ.get("DSDW_KEEP_CORPUS"):
            shutil.rmtree(base, ignore_errors=True)


def _ingest_all(root: Path, cfg: SourcesConfig, placed: dict) -> dict[str, list]:
    out = {}
    for case in CASES:
        day, _ = placed[case.id]
        out[case.id] = ingest_day(day, Zones(root), cfg, RECEIVED_AT, datasets=folder_datasets(case.folder))
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_bad_file_ends_as_the_table_says(corpus, case: Case) -> None:
    day, files = corpus["placed"][case.id]
    failures = [f for r in corpus["first"][case.id] for f in r.failures]
    assert not failures, failures
    for k, n in enumerate(files):
        status, reason = case.expect.get(f"*{k}", case.expect.get(n, case.default))
        # (an FTP listing is lines: a line break in a name does not reach us)
        names = {ingest.text_name(n)} | ({n.replace("\n", "")} if case.folder == "ftp" else set())
        rows = [r for r in corpus["rows"] if r.key.source_name in names
                and r.key.channel == ingest.FOLDER_CHANNEL[case.folder]
                and day in (r.key.leveringsdato, r.arrived)]
        assert rows, (f"{n!r}: no ledger row", [(r.key, r.status, r.error) for r in corpus["rows"]
                                                 if day in (r.key.leveringsdato, r.arrived)])
        last = max(rows, key=lambda r: r.version)
        assert (last.status, reason in (last.error or "")) == (status, True), (n, last.status, last.error)
        if last.status != LOADED:
            assert last.error, (n, last)
        if case.quarantined and last.status == LOADED:
            q = Path(corpus["root"]) / "lake" / "_quarantine" / f"leveringsdato={last.key.leveringsdato}"
            kinds = {k for p in q.glob(f"*__{last.payload_id}.parquet")
                     for k in pq.read_table(p).column("error_kind").to_pylist()}
            assert case.quarantined in kinds, (n, kinds)
    [acc] = corpus["accounts"][case.id]
    assert acc.unaccounted == [], acc.unaccounted


def test_ledger_rows_are_final_with_reasons_and_counts_that_add_up(corpus) -> None:
    for r in corpus["rows"]:
        assert r.status in ("loaded", "superseded", "rejected", "duplicate", "ignored"), r
        if r.status != "loaded":
            assert r.error, r
        if r.status in ("loaded", "rejected") and r.rows_read is not None:
            assert r.rows_read == (r.rows_accepted or 0) + (r.rows_quarantined or 0), r


def test_the_lake_equals_the_ledger_per_payload_and_holds_nothing_rejected(corpus) -> None:
    root = corpus["root"]
    for check in lake_ledger_checks(root):  # the lake, and the archive of superseded payloads' files
        assert check.failures == 0, (check.name, check.examples)
    superseded = {r.payload_id for r in corpus["rows"] if r.status == "superseded" and r.lake_path}
    archived = {p.name.removesuffix(".parquet").rsplit("__", 1)[-1]
                for p in (root / "lake" / "_archive").glob("*/leveringsdato=*/*.parquet") if not p.parts[-3].startswith("_")}
    assert archived == superseded  # nothing archived but a superseded version's file
    rejected = {r.payload_id for r in corpus["rows"] if r.status != "loaded"}
    for p in (root / "lake").glob("*/leveringsdato=*/*.parquet"):
        if p.parts[-3].startswith("_"):
            continue
        assert not set(pq.read_table(p, columns=["_payload_id"]).column(0).to_pylist()) & rejected, p


def test_a_rerun_of_the_corpus_is_a_no_op(corpus) -> None:
    for cid, results in corpus["second"].items():
        assert not [f for r in results for f in r.failures], cid
        assert all(p.action == "unchanged" for r in results for p in r.payloads), \
            (cid, [(p.source_name, p.action) for r in results for p in r.payloads if p.action != "unchanged"])
    assert corpus["rows_after"] == corpus["rows"]
    assert corpus["tree_after"].keys() == corpus["tree"].keys()
    assert corpus["tree_after"] == corpus["tree"]


def _lake_ids(root: Path, dataset: str) -> list[str]:
    return sorted(i for p in (root / "lake" / dataset).rglob("*.parquet")
                  for i in pq.read_table(p, columns=["besked_id"]).column(0).to_pylist())


def test_uploads_in_progress_are_ignored_in_the_ledger_until_they_complete(tmp_path: Path) -> None:
    """Hidden and temporary names, a drop file without its .done marker and an FTP ``.part`` are uploads in
    progress: not read, but each gets an ``ignored`` row saying so, and the day's reconciliation counts them
    (offered = ledger rows, nothing unaccounted; a .done marker itself is the protocol's, not an entry). A
    rerun while they are in progress changes nothing; once they complete, the next run loads each once and
    the lake holds their records; a further rerun is a no-op."""
    day = START
    src = tmp_path / "sources"
    for parts in FOLDER_DIR.values():
        src.joinpath(*parts, day.isoformat()).mkdir(parents=True)
    (src / "webservice").mkdir()
    (src / "webservice" / "tokens.json").write_text("{}")
    portal, uvm, ftp = (src.joinpath(*FOLDER_DIR[f], day.isoformat()) for f in ("portal", "uvm", "ftp"))
    n_p, n_u, n_f = name("portal", day), name("uvm", day), name("ftp", day)
    data = {f: good(f, "progress", day) for f in ("portal", "uvm", "ftp")}
    (portal / f".{n_p}").write_bytes(data["portal"][:40])
    (portal / f"{n_p}.part").write_bytes(data["portal"])
    (portal / f"{n_p}~").write_bytes(b"x")
    (uvm / n_u).write_bytes(data["uvm"])  # no .done marker
    (uvm / "orphan.csv.done").touch()
    (ftp / f".{n_f}.part").write_bytes(data["ftp"][:50])
    root = tmp_path / "zones"
    datasets = [*folder_datasets("portal"), *folder_datasets("uvm"), *folder_datasets("ftp")]
    with start_sources(src) as s:
        cfg = SourcesConfig.from_describe(s.describe())

        def run() -> tuple[list, dict]:
            res = ingest_day(day, Zones(root), cfg, RECEIVED_AT, datasets=datasets)
            return res, {a.channel: a for a in account_day(day, Zones(root), cfg, folders=["portal", "uvm", "ftp"])}

        res, acc = run()
        rows = ledger_rows(root)
        tree = zone_tree(root)
        assert not [f for r in res for f in r.failures]
        waiting = {f".{n_p}": "portal", f"{n_p}.part": "portal", f"{n_p}~": "portal", n_u: "filedrop",
                   f".{n_f}.part": "ftp"}
        assert sorted((r.key.channel, r.key.source_name, r.key.dataset, r.status) for r in rows) == sorted(
            (ch, n, DS["uvm"] if ch == "filedrop" else DS[ch], "ignored") for n, ch in waiting.items())
        assert all("upload in progress" in r.error and r.rows_accepted is None and not r.lake_path for r in rows)
        assert "no .done marker" in next(r.error for r in rows if r.key.source_name == n_u)
        assert not (root / "lake" / DS["portal"]).exists() and not (root / "lake" / DS["uvm"]).exists()
        assert sorted(acc["portal"].in_progress) == sorted([f".{n_p}", f"{n_p}.part", f"{n_p}~"])
        assert acc["uvm"].in_progress == [n_u] and acc["ftp"].in_progress == [f".{n_f}.part"]
        for a in acc.values():
            assert a.unaccounted == [] and a.offered == a.by_status["ignored"] == len(a.in_progress), a

        res, _ = run()  # still in progress: nothing changes
        assert all(p.action == "unchanged" for r in res for p in r.payloads)
        assert ledger_rows(root) == rows and zone_tree(root) == tree

        # the uploads complete: the temporary names go, the files are whole (and marked)
        for p in (portal / f".{n_p}", portal / f"{n_p}~", ftp / f".{n_f}.part"):
            p.unlink()
        (portal / f"{n_p}.part").rename(portal / n_p)
        (ftp / n_f).write_bytes(data["ftp"])
        marker_path(uvm / n_u).touch()
        res, acc = run()
        assert not [f for r in res for f in r.failures]
        after = ledger_rows(root)
        loaded = {(r.key.channel, r.key.source_name): r for r in after if r.status == "loaded"}
        assert set(loaded) == {("portal", n_p), ("filedrop", n_u), ("ftp", n_f)}
        assert loaded[("filedrop", n_u)].version == 2  # the ignored row stays as version 1
        for f, ch, n in (("portal", "portal", n_p), ("uvm", "filedrop", n_u), ("ftp", "ftp", n_f)):
            assert loaded[(ch, n)].rows_accepted == 3
            assert _lake_ids(root, DS[f]) == sorted(r["besked_id"] for r in recs(f, "progress"))
        for a in acc.values():
            assert a.unaccounted == [] and a.in_progress == [] and a.by_status == {"loaded": 1}, a

        res, _ = run()  # loaded once: the next run is a no-op
        assert all(p.action == "unchanged" for r in res for p in r.payloads)
        assert ledger_rows(root) == after


def test_a_file_gone_or_still_changing_when_read_is_ignored_with_its_reason(tmp_path: Path) -> None:
    """A file listed and then gone before it is read (withdrawn by the reporter) is ``ignored`` with the
    reason, not a failure; one that keeps changing while it is read is ``ignored`` as an upload in
    progress and a failure of the run; both load once they are offered whole."""
    import pipelines.sources as sources_pkg
    from pipelines.sources import filedrop

    day = START
    uvm = tmp_path / "uvm" / day.isoformat()
    portal = tmp_path / "portal" / day.isoformat()
    uvm.mkdir(parents=True)
    portal.mkdir(parents=True)
    n_u, n_p = name("uvm", day), name("portal", day)
    (uvm / n_u).write_bytes(good("uvm", "gone", day))
    marker_path(uvm / n_u).touch()
    (portal / n_p).write_bytes(good("portal", "changing", day))
    cfg = SourcesConfig("http://127.0.0.1:9", {}, "127.0.0.1", 9, "star", "x", tmp_path / "portal",
                        tmp_path / "uvm", tmp_path / "ssi")
    root = tmp_path / "zones"
    real_read = filedrop.read_regular

    def flaky(path: Path, attempts: int = 3) -> bytes:
        if Path(path).name == n_u:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        raise filedrop.FileChanged(f"{Path(path).name}: changed while being read, 3 times")

    mp = pytest.MonkeyPatch()
    mp.setattr(sources_pkg, "read_regular", flaky)
    datasets = [*folder_datasets("portal"), *folder_datasets("uvm")]
    try:
        res = ingest_day(day, Zones(root), cfg, RECEIVED_AT, datasets=datasets)
        rows = {r.key.source_name: r for r in ledger_rows(root)}
        failures = [f for r in res for f in r.failures]
        assert [n for n, _ in failures] == [n_p], failures
        assert (rows[n_u].status, rows[n_p].status) == ("ignored", "ignored")
        assert "gone when read" in rows[n_u].error and "upload in progress" in rows[n_p].error
        mp.setattr(sources_pkg, "read_regular", real_read)
        res = ingest_day(day, Zones(root), cfg, RECEIVED_AT, datasets=datasets)
        assert not [f for r in res for f in r.failures]
        acc = account_day(day, Zones(root), cfg, folders=["portal", "uvm"])
    finally:
        mp.undo()
    latest = {}
    for r in ledger_rows(root):
        latest[r.key.source_name] = r
    assert {n: (r.status, r.version) for n, r in latest.items()} == {n_u: ("loaded", 2), n_p: ("loaded", 2)}
    assert _lake_ids(root, DS["uvm"]) == sorted(r["besked_id"] for r in recs("uvm", "gone"))
    assert _lake_ids(root, DS["portal"]) == sorted(r["besked_id"] for r in recs("portal", "changing"))
    assert all(a.unaccounted == [] for a in acc)
