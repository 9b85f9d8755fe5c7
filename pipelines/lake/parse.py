"""Parse one landed payload into typed accepted rows and quarantine rows (docs/ingestion.md).

``parse_payload`` reads the bytes in the channel's wire format (:mod:`.formats`), splits
records, checks structure (encoding, header, column count, truncation, trailer, JSON),
types every field by the contract (:mod:`.convert`) and returns the accepted rows with
lineage plus one quarantine row per problem.  Every record ends up accepted or
quarantined; problems of the payload as a whole (a bad header, a wrong trailer, an
unreadable page) are quarantine rows with ``record_no`` null.

Records received are counted from the raw bytes by :mod:`.count`, code that shares
nothing with the parser; ``reconcile`` insists that received = accepted + quarantined.

Implementation, chosen by measurement (bench/bench_parse.py, 2-core VM): payloads are
small (one reporter, one day: a handful to a few thousand records), so the cost per payload
decides.  A DuckDB ``read_csv`` query alone costs ~1.5 ms per small file (a raw COPY to
Parquet ~2 ms); Arrow's CSV reader ~0.4 ms; the Python split below ~0.1 ms.  So records
are split in Python (``str.split`` when the payload has no quote character, a
possessive-regex tokenizer when it has) and typed with vectorized pyarrow compute, and from
``BULK_MIN_BYTES`` on a clean payload's fields are split by Arrow's multithreaded CSV reader
instead (the crossover measured at ~300 records).  DuckDB's ``store_rejects`` was not used:
its reject lines cannot be tied back to record numbers across quoted newlines without the
record scan this module does anyway.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipelines.contracts import Contract

from .convert import STRING_WIRE_TYPES, short, type_columns
from .count import Count, count_delimited, count_json_lines, count_ssi
from .formats import UTF8, WireFormat, wire_format
from .schema import QUARANTINE_SCHEMA, arrow_schema

BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\udc80-\udcff]")
_C1_OR_UTF8 = re.compile(rb"[\x80-\x9f]|[\xc2-\xf4][\x80-\xbf]")  # cheap pre-filter for Latin-1 files
_NON_ASCII = re.compile(rb"[\x80-\xff]")
_NOT_80_BF = bytes(b for b in range(256) if not 0x80 <= b <= 0xBF)
_PAGE_START = re.compile(rb'^\s*\{\s*"(?:dataset|dato|indberetter|records|next_cursor|total)"')
_DELIMITERS = (";", ",", "|", "\t")
_LINE_END = re.compile("\r\n|\r|\n")
_ASCII_COUNT = re.compile("[0-9]{1,18}")  # a trailer count: ASCII digits only (int() takes '١٢', ' 12', '1_2')
# Payloads from this size on go to Arrow's CSV reader when clean (measured: below it, a call
# costs more than the Python split); a record longer than a block sends them back to Python.
BULK_MIN_BYTES = 64 * 1024
BULK_BLOCK_SIZE = 4 << 20


class ReconciliationError(RuntimeError):
    """Records received differ from records accepted + quarantined: the payload fails loudly."""


@dataclass
class ParseResult:
    accepted: pa.Table  # arrow_schema(contract)
    quarantine: pa.Table  # QUARANTINE_SCHEMA
    records_received: int  # counted from the raw bytes, independently of the parser
    trailer_count: int | None  # what the trailer says, when the format has one and it is readable
    counted_by: str  # how records_received was counted
    payload_id: str = ""
    dataset: str = ""
    channel: str = ""
    reporter: str = ""
    leveringsdato: dt.date | None = None
    # Set when the payload as a whole cannot be trusted (trailer wrong or missing, file cut mid-record,
    # unterminated quote, compressed or wrongly encoded bytes): ingestion lands it, marks the ledger row
    # ``rejected`` with this reason, quarantines its readable records and writes nothing to the lake.
    rejected_reason: str | None = None

    @property
    def rows_accepted(self) -> int:
        return self.accepted.num_rows

    @property
    def quarantined_records(self) -> frozenset[int]:
        """Record numbers with at least one quarantine row."""
        return frozenset(r for r in self.quarantine.column("record_no").to_pylist() if r is not None)

    @property
    def rows_quarantined(self) -> int:
        """Distinct quarantined records (a record with three bad fields counts once)."""
        return len(self.quarantined_records)

    @property
    def payload_errors(self) -> list[dict[str, Any]]:
        """Problems of the payload as a whole (record_no null): bad header, trailer, page ..."""
        q = self.quarantine.select(["record_no", "error_kind", "message"]).to_pylist()
        return [{"error_kind": r["error_kind"], "message": r["message"]} for r in q if r["record_no"] is None]


@dataclass
class _Candidates:
    """Structurally sound records on their way to typing."""

    record_nos: list[int] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)  # CSV: list of strings (contract order); JSON: dict
    raws: list[Any] = field(default_factory=list)  # raw text, or a callable producing it
    missing_keys: Any = field(default_factory=dict)  # (pos, field) -> why; .get() is all that is used
    columns: dict[str, Any] | None = None  # set by the bulk path: Arrow string columns by field name
    raw_at: Callable[[int], str] | None = None  # set by the bulk path: raw text of a candidate

    def raw(self, pos: int) -> str:
        if self.raw_at is not None:
            return self.raw_at(pos)
        raw = self.raws[pos]
        if isinstance(raw, dict):  # a JSON page's record: serialised only when it is quarantined
            return json.dumps(raw, ensure_ascii=False)
        return raw() if callable(raw) else raw


_EMPTY_QUARANTINE = QUARANTINE_SCHEMA.empty_table()


class _Quarantine:
    def __init__(self) -> None:
        self.rows: list[tuple[int | None, str | None, str, str, str]] = []
        self.rejected: list[str] = []  # why the payload as a whole is rejected (ParseResult.rejected_reason)

    def reject(self, reason: str) -> None:
        if reason not in self.rejected:
            self.rejected.append(reason)

    def add(self, record_no: int | None, fld: str | None, kind: str, message: str, raw: str) -> None:
        # every text cleaned: a key or value of an undecodable page may be named in the field and message too
        self.rows.append((record_no, None if fld is None else _clean(fld), kind, _clean(short(message, 2000)),
                          _clean(raw)))

    def table(self, dataset: str, channel: str, reporter: str, leveringsdato: dt.date,
              payload_id: str) -> pa.Table:
        if not self.rows:
            return _EMPTY_QUARANTINE
        rows = sorted(self.rows, key=lambda r: -1 if r[0] is None else r[0])  # stable: payload-level first
        n = len(rows)
        cols = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
        return pa.Table.from_arrays([
            pa.array([payload_id] * n, pa.string()), pa.array([dataset] * n, pa.string()),
            pa.array([channel] * n, pa.string()), pa.array([reporter] * n, pa.string()),
            pa.array([leveringsdato] * n, pa.date32()), pa.array(cols[0], pa.int64()),
            pa.array(cols[1], pa.string()), pa.array(cols[2], pa.string()), pa.array(cols[3], pa.string()),
            pa.array(cols[4], pa.string()),
        ], schema=QUARANTINE_SCHEMA)


def _clean(text: str) -> str:
    """Text safe for Arrow: bytes that did not decode (surrogate escapes) become U+FFFD."""
    if _SURROGATE.search(text):
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _is_empty(data: bytes) -> bool:
    stripped = data.strip()
    if stripped.startswith(BOM):
        stripped = stripped[len(BOM):].strip()
    return not stripped


# --------------------------------------------------------------------------- not text at all

# Magic bytes of containers a reporter may send by mistake instead of the plain text the
# formats declare (docs/sources.md): named in the rejection so the reporter knows what to fix.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip-compressed"),
    (b"PK\x03\x04", "a zip archive (or an .xlsx/.docx file)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"PK\x07\x08", "a zip archive"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
    (b"\x04\x22\x4d\x18", "lz4-compressed"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"%PDF-", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 document (.xls/.doc)"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"age-encryption.org/", "age-encrypted"),
    (b"-----BEGIN PGP MESSAGE-----", "PGP-encrypted"),
    (b"\x00\x00\xfe\xff", "UTF-32BE text (byte order mark 00 00 FE FF)"),
    (b"\xff\xfe\x00\x00", "UTF-32LE text (byte order mark FF FE 00 00)"),
    (b"\xfe\xff", "UTF-16BE text (byte order mark FE FF)"),
    (b"\xff\xfe", "UTF-16LE text (byte order mark FF FE)"),
)
_BZIP2 = re.compile(rb"BZh[1-9]1AY&SY")
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")  # U+0080-U+009F (C1 controls) in UTF-8
_JSON_CONTROL_ESCAPE = re.compile(rb"\\(?:u00[0189][0-9a-fA-F]|u007[fF]|[bf])")  # may be \\ + b: a pre-filter
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"
_NOT_CONTROL_BYTES = bytes(b for b in range(256) if b not in _CONTROL_BYTES)
_SNIFF = 64 * 1024  # bytes looked at: enough for a verdict, cheap for a large payload
BINARY_CONTROL_SHARE = 0.05  # text has none; random (compressed, encrypted) bytes ~11 %


def _may_hold_controls(data: bytes, fmt: WireFormat) -> bool:
    """Could a value of this payload hold a control character?  (A cheap scan; False skips the check.)"""
    if data.translate(None, _NOT_CONTROL_BYTES):  # what is left are C0 controls (not TAB/LF/CR) and DEL
        return True
    if fmt.encoding == UTF8 and b"\xc2" in data and _C1_UTF8.search(data):
        return True
    return fmt.kind == "json" and b"\\" in data and _JSON_CONTROL_ESCAPE.search(data) is not None


def binary_problem(data: bytes) -> str | None:
    """Why ``data`` is not text at all (compressed, an archive, UTF-16/32, binary), or None.

    Magic bytes and byte order marks first; then the NUL pattern of UTF-16/UTF-32 text
    without a byte order mark (ASCII characters are every second / fourth byte); then the
    share of control bytes.  A single NUL or control byte inside a text value is not this:
    its record is quarantined by the typing checks (``control_character``).
    """
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return f"{what} (first bytes {data[:len(magic)].hex(' ')})"
    if _BZIP2.match(data):
        return f"bzip2-compressed (first bytes {data[:4].hex(' ')})"
    if len(data) > 262 and data[257:262] == b"ustar":
        return "a tar archive ('ustar' at byte 257)"
    sample = data[:_SNIFF]
    n = len(sample)
    controls = n - len(sample.translate(None, _CONTROL_BYTES))
    if not controls:
        return None
    nul = sample.count(0)
    if nul * 3 >= n:
        quads = [sample[k::4].count(0) for k in range(4)]
        quarter = n // 4 or 1
        if min(quads[1], quads[2], quads[3]) > 0.8 * quarter and quads[0] < 0.2 * quarter:
            return f"UTF-32LE text without byte order mark ({nul:,} NUL bytes in the first {n:,})"
        if min(quads[0], quads[1], quads[2]) > 0.8 * quarter and quads[3] < 0.2 * quarter:
            return f"UTF-32BE text without byte order mark ({nul:,} NUL bytes in the first {n:,})"
        even, odd, half = sample[0::2].count(0), sample[1::2].count(0), n // 2 or 1
        if odd > 0.6 * half and even < 0.1 * half:
            return f"UTF-16LE text without byte order mark ({nul:,} NUL bytes in the first {n:,}, every second)"
        if even > 0.6 * half and odd < 0.1 * half:
            return f"UTF-16BE text without byte order mark ({nul:,} NUL bytes in the first {n:,}, every second)"
    if controls > BINARY_CONTROL_SHARE * n:
        return (f"binary content: {controls:,} control bytes ({nul:,} NUL) in the first {n:,} bytes "
                f"(text has none)")
    return None


_PADDING = b"\x00\x1a"  # NUL (zero fill) and Ctrl-Z (the DOS end-of-file mark)


def trailing_padding(data: bytes) -> tuple[int, str] | None:
    """(bytes, what they are) of NUL / Ctrl-Z bytes after the last line of an otherwise textual
    payload, or None.

    A preallocated file, a copy that stopped, or a DOS-era writer leaves them. Without this check
    they read as one more record cut mid-line, or hide the trailer record ("missing trailer"),
    so the reason named the wrong fault; a payload that is mostly NUL stays ``binary``.
    """
    if not data or data[-1] not in _PADDING:
        return None
    body = data.rstrip(_PADDING)
    n = len(data) - len(body)
    if body and binary_problem(body) is not None:
        return None
    tail = data[len(body):]
    nul, eof = tail.count(0), tail.count(0x1A)
    if not nul:
        what = ("a DOS end-of-file mark (Ctrl-Z, byte 1A)" if eof == 1 else
                f"{eof:,} DOS end-of-file marks (Ctrl-Z, byte 1A)")
    elif not eof:
        what = f"{nul:,} NUL byte(s) (zero padding)"
    else:
        what = f"{nul:,} NUL byte(s) and {eof:,} Ctrl-Z byte(s)"
    return n, what


# --------------------------------------------------------------------------- tokenizing


@functools.cache
def _field_patterns(delim: str, quote: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    d, q = re.escape(delim), re.escape(quote)
    quoted = re.compile(f"{q}([^{q}]*+(?:{q}{q}[^{q}]*+)*+){q}([^{d}\r\n]*+)")
    unquoted = re.compile(f"[^{d}\r\n]*+")
    return quoted, unquoted


def split_records(text: str, delim: str, quote: str | None
                  ) -> tuple[list[tuple[str, list[str]]], bool, dict[int, int]]:
    """Records of delimited text as (raw text, fields); blank lines are not records.

    Returns (records, last record ends with a line end, unterminated quotes).  Line ends are
    CRLF, LF or a lone CR; inside a quoted field they belong to the value.  A quoted field
    that never closes ends at the end of the line where it opened (so the records after a
    stray quote stay records of their own); ``unterminated quotes`` maps the index of such
    a record to that line's number (1-based, in ``text``).
    """
    if quote is None or quote not in text:
        last_terminated = text.endswith(("\n", "\r"))
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return [(ln, ln.split(delim)) for ln in text.split("\n") if ln], last_terminated, {}
    quoted, unquoted = _field_patterns(delim, quote)
    qq = quote + quote
    records: list[tuple[str, list[str]]] = []
    unterminated: dict[int, int] = {}
    pos, n = 0, len(text)
    last_terminated = True
    while pos < n:
        if text[pos] in "\r\n":  # blank line
            pos += 1
            continue
        start, fields = pos, []
        while True:
            if text.startswith(quote, pos):
                m = quoted.match(text, pos)
                if m is None:  # the quote never closes: the value ends with its line
                    eol = _LINE_END.search(text, pos)
                    line_end = eol.start() if eol else n
                    fields.append(text[pos + 1:line_end].replace(qq, quote))
                    unterminated[len(records)] = len(_LINE_END.findall(text, 0, pos)) + 1
                    pos = line_end
                else:
                    fields.append(m.group(1).replace(qq, quote) + m.group(2))
                    pos = m.end()
            else:
                m = unquoted.match(text, pos)
                fields.append(m.group())
                pos = m.end()
            if pos >= n:
                end, last_terminated = n, False
                break
            if text[pos] == delim:
                pos += 1
                continue
            end = pos
            pos += 2 if text.startswith("\r\n", pos) else 1
            last_terminated = True
            break
        records.append((text[start:end], fields))
    return records, last_terminated, unterminated


# --------------------------------------------------------------------------- encodings


def _decode(body: bytes, fmt: WireFormat) -> tuple[str, bool]:
    """(text, some bytes did not decode); undecodable bytes become surrogate escapes."""
    if fmt.encoding == UTF8:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            return body.decode("utf-8", "surrogateescape"), True
    return body.decode("latin-1"), False


def _suspect_latin1(body: bytes) -> bool:
    """Could some record of this ISO-8859-1 payload be in another encoding (C1 bytes, UTF-8)?"""
    if body.isascii() or not body.translate(None, _NOT_80_BF):  # every UTF-8 sequence has an 80-BF byte
        return False
    return _C1_OR_UTF8.search(body) is not None


def _utf8_problem(value: str) -> str | None:
    """Why ``value`` (decoded with surrogate escapes) is not UTF-8, or None."""
    m = _SURROGATE.search(value)
    if m is None:
        return None
    a = max(0, m.start() - 10)
    raw = value[a:m.end() + 20].encode("utf-8", "surrogateescape")
    guess = raw.decode("cp1252", "replace")
    return f"bytes that are not valid UTF-8: {raw!r} (as cp1252: {guess!r})"


def _latin1_problem(value: str) -> str | None:
    """Why ``value`` (decoded as ISO-8859-1) looks like another encoding, or None."""
    raw = value.encode("latin-1")
    if not _C1_OR_UTF8.search(raw):
        return None
    if _NON_ASCII.search(raw):
        try:
            utf8 = raw.decode("utf-8")
        except UnicodeDecodeError:
            utf8 = None
        if utf8 is not None:
            sample = next(m for m in re.finditer(r"[^\x00-\x7f]+", utf8))
            return (f"UTF-8 text in an ISO-8859-1 payload (mojibake): "
                    f"{sample.group().encode('utf-8').decode('latin-1')!r} is {sample.group()!r} in UTF-8")
    c1 = re.search(rb"[\x80-\x9f]", raw)
    if c1:
        return (f"byte {c1.group()!r} is a C1 control character in ISO-8859-1 "
                f"(cp1252 text? it would read {c1.group().decode('cp1252', 'replace')!r})")
    return None


def _encoding_problems(raw: str, fields: list[str], names: list[str] | None, fmt: WireFormat,
                       check: Callable[[str], str | None]) -> list[tuple[str | None, str]]:
    """(field or None, reason) for a record that does not fit its declared encoding; [] if it does."""
    why = check(raw)
    if why is None:
        return []
    out = []
    if names is not None and len(fields) == len(names):
        out = [(name, f"{name}: {r}") for name, v in zip(names, fields, strict=True) if (r := check(v))]
    return out or [(None, why)]


# --------------------------------------------------------------------------- delimited files


def _header_problem(header: list[str], header_raw: str, expected: list[str],
                    fmt: WireFormat) -> tuple[str, str, list[int] | None]:
    """(error kind, message, column order) - kind '' and the order when the header is usable."""
    n = len(expected)
    if header == expected:
        return "", "", list(range(n))
    if len(header) == n and len(set(header)) == n and set(header) == set(expected):
        return "", "", [header.index(name) for name in expected]  # same columns, another order
    hint = _delimiter_hint(header_raw, expected, fmt) or _header_hint(header, expected)
    missing = [c for c in expected if c not in header]
    extra = [c for c in header if c not in expected]
    msg = (f"header does not match the contract{hint}: {len(header)} column(s), the contract has {n}; "
           f"missing {short(repr(missing), 200)}, unexpected {short(repr(extra), 200)}")
    return ("column_count" if len(header) != n else "header"), msg, None


def _header_hint(header: list[str], expected: list[str]) -> str:
    """What is wrong with a header in the format's own delimiter, in words (names are matched exactly)."""
    said = []
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        said.append(f"column(s) {short(repr(twice), 120)} named more than once")
    if "" in header:
        where = "at the end (a trailing delimiter)" if header[-1] == "" else "without a name"
        said.append(f"an empty column name {where}")
    if any(c != c.strip() for c in header) and {c.strip() for c in header} & set(expected):
        said.append("names padded with spaces")
    if any(c != c.lower() for c in header) and {c.lower() for c in header} & set(expected):
        said.append("names in another case (the format's names are lower case)")
    return f" - {'; '.join(said)}" if said else ""


def _delimiter_hint(line: str, expected: list[str], fmt: WireFormat) -> str:
    for cand in _DELIMITERS:
        if cand != fmt.delimiter and line.split(cand) == expected:
            return f" - the header is {cand!r}-separated, the {fmt.name} format declares {fmt.delimiter!r}"
    return ""


def _encoding_or_width_problem(q: _Quarantine, no: int, raw: str, fields: list[str], expected: list[str],
                               order: list[int] | None, fmt: WireFormat, enc_check: Any, ncols: int,
                               hint: str = "") -> bool:
    """Quarantine a delimited record whose bytes or field count are wrong; True if it was."""
    if enc_check is not None:
        problems = _encoding_problems(raw, fields, _payload_names(expected, order), fmt, enc_check)
        if problems:
            for fld, why in problems:
                q.add(no, fld, "encoding", f"{why}; the {fmt.name} format declares {fmt.label}", raw)
            return True
    if len(fields) != ncols:
        q.add(no, None, "column_count", f"{len(fields)} field(s), the contract has {ncols}{hint}", raw)
        return True
    return False


def _parse_delimited(data: bytes, contract: Contract, fmt: WireFormat,
                     q: _Quarantine) -> tuple[_Candidates, Count, int | None]:
    delim, quote = fmt.delimiter or "", fmt.quote
    trailer_prefix = f"{fmt.trailer}{delim}" if fmt.trailer else None
    cnt = count_delimited(data, delim.encode(), quote.encode() if quote else None,
                          trailer_prefix=trailer_prefix.encode() if trailer_prefix else None)
    body = _strip_bom(data, fmt, q)
    text, undecodable = _decode(body, fmt)
    suspect = undecodable if fmt.encoding == UTF8 else _suspect_latin1(body)
    if len(body) >= BULK_MIN_BYTES and not suspect:
        bulk = _bulk_delimited(body, text, contract, fmt, cnt)
        if bulk is not None:
            return bulk, cnt, _check_trailer(_decoded_trailer(cnt, fmt), fmt, cnt, q, "")
    records, last_terminated, unterminated = split_records(text, delim, quote)
    expected = contract.field_names
    ncols = len(expected)
    cand = _Candidates()
    header_raw, header = records[0]
    kind, msg, order = _header_problem(header, header_raw, expected, fmt)
    if kind:
        q.add(None, None, kind, msg, header_raw)
    if 0 in unterminated:
        q.reject(f"unterminated quote: the quoted field opened in the header (line {unterminated[0]}) never closes")
    trailer = None
    if trailer_prefix and len(records) > 1 and records[-1][0].startswith(trailer_prefix):
        trailer = records.pop()
    data_records = records[1:]
    enc_check = None if not suspect else _utf8_problem if fmt.encoding == UTF8 else _latin1_problem
    header_lines = {header_raw, delim.join(expected), "\ufeff" + header_raw}
    hint = _delimiter_hint(header_raw, expected, fmt)
    last_no = len(data_records)
    identity = order == list(range(ncols))
    for no, (raw, fields) in enumerate(data_records, 1):
        line = unterminated.get(no)
        if line is not None:
            q.add(no, None, "unterminated_quote", f"the quoted field opened at line {line} never closes "
                  f"(unterminated quote); the record ends with that line", raw)
            q.reject(f"unterminated quote: the quoted field opened at line {line} (record {no}) never closes")
            continue
        if no == last_no and fmt.final_newline and trailer is None and not last_terminated:
            width = "" if len(fields) == ncols else f" and {len(fields)} field(s), the contract has {ncols}"
            q.add(no, None, "truncated", f"the last record has no line end{width}: the payload ends "
                  "mid-record", raw)
            q.reject(f"cut mid-record: the last record (record {no}) has no line end{width}; the "
                     f"{fmt.name} format ends every record with one")
            continue
        if _encoding_or_width_problem(q, no, raw, fields, expected, order, fmt, enc_check, ncols, hint):
            continue
        if raw in header_lines or fields == expected:
            q.add(no, None, "header", "a header line again inside the data (duplicated header)", raw)
            continue
        if order is None:
            q.add(no, None, "header", "the payload's header does not match the contract: record not mapped",
                  raw)
            continue
        cand.record_nos.append(no)
        cand.rows.append(fields if identity else [fields[i] for i in order])
        cand.raws.append(raw)
    trailer_count = _check_trailer(trailer, fmt, cnt, q, records[-1][0] if len(records) > 1 else "")
    return cand, cnt, trailer_count


def _decoded_trailer(cnt: Count, fmt: WireFormat) -> tuple[str, list[str]] | None:
    if cnt.trailer is None:
        return None
    raw = cnt.trailer.decode(fmt.encoding)
    return raw, raw.split(fmt.delimiter)


def _bulk_delimited(body: bytes, text: str, contract: Contract, fmt: WireFormat,
                    cnt: Count) -> _Candidates | None:
    """Large, clean delimited payloads: Arrow's multithreaded CSV reader splits the fields.

    Only when nothing needs a record-by-record look: the header matches, the encoding is
    clean, the last record is complete, every record has the contract's column count (the
    reader reports the others; only the trailer may be one) and the reader's row count
    equals the independent count.  Anything else returns None: the Python path then
    finds and names the problems record by record.
    """
    delim, quote = fmt.delimiter or "", fmt.quote
    m = _LINE_END.search(text)
    header_raw = text[:m.start()] if m else text
    if quote and quote in header_raw:
        return None
    header = header_raw.split(delim)
    kind, _msg, order = _header_problem(header, header_raw, contract.field_names, fmt)
    if kind or cnt.open_quote or (fmt.final_newline and cnt.trailer is None and not cnt.last_terminated):
        return None
    invalid: list[str] = []

    def on_invalid(row: Any) -> str:
        invalid.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(body if fmt.encoding == UTF8 else text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=BULK_BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(
                delimiter=delim, quote_char=quote or False, double_quote=True, escape_char=False,
                newlines_in_values=bool(quote and quote in text), ignore_empty_lines=True,
                invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=True, null_values=[""],
                quoted_strings_can_be_null=True))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    trailer = _decoded_trailer(cnt, fmt)
    if invalid != ([trailer[0]] if trailer else []) or table.num_rows != cnt.records:
        return None
    first = table.column(header[0])
    if pc.any(pc.equal(first, header[0])).as_py():  # a duplicated header line: named record by record
        return None
    n = table.num_rows
    records: list[str] = []

    def raw_at(pos: int) -> str:  # only called for records with a problem
        if not records:
            if quote and quote in text:
                records.extend(raw for raw, _ in split_records(text, delim, quote)[0])
            else:
                records.extend(ln for ln in _LINE_END.split(text) if ln)
        return records[pos + 1]

    return _Candidates(record_nos=list(range(1, n + 1)), columns={c: table.column(c) for c in header},
                       raw_at=raw_at)


def _payload_names(names: list[str] | None, order: list[int] | None) -> list[str] | None:
    """Column names in payload order (the encoding check looks at fields as they arrive)."""
    if names is None or order is None:
        return None
    out = [""] * len(order)
    for contract_pos, payload_pos in enumerate(order):
        out[payload_pos] = names[contract_pos]
    return out


def _strip_bom(data: bytes, fmt: WireFormat, q: _Quarantine) -> bytes:
    if not data.startswith(BOM):
        return data
    if fmt.encoding != UTF8:
        q.add(None, None, "encoding", f"UTF-8 byte order mark at the start of a payload the {fmt.name} "
              f"format declares {fmt.label}", "")
    return data[len(BOM):]


def _check_trailer(trailer: tuple[str, list[str]] | None, fmt: WireFormat, cnt: Count, q: _Quarantine,
                   last_raw: str) -> int | None:
    if not fmt.trailer:
        return None
    delim = fmt.delimiter
    if trailer is None:
        q.add(None, None, "trailer", f"missing trailer '{fmt.trailer}{delim}<record count>': the {fmt.name} "
              f"format ends with one (the payload may be cut short); it holds {cnt.records} record(s)",
              last_raw)
        q.reject(f"missing trailer '{fmt.trailer}{delim}<record count>' (the file may be cut short; "
                 f"{cnt.records} record(s) read)")
        return None
    raw, fields = trailer
    try:
        if len(fields) != 2 or not _ASCII_COUNT.fullmatch(fields[1]):
            raise ValueError(raw)
        count = int(fields[1])
    except ValueError:
        q.add(None, None, "trailer", f"trailer {short(raw, 80)!r} holds no record count "
              f"('{fmt.trailer}{delim}<n>')", raw)
        q.reject(f"trailer {short(raw, 80)!r} holds no record count ('{fmt.trailer}{delim}<n>')")
        return None
    if count != cnt.records:
        q.add(None, None, "trailer", f"trailer says {count} record(s), the payload holds {cnt.records} "
              f"({cnt.method})", raw)
        q.reject(f"trailer says {count} record(s), the payload holds {cnt.records}")
    return count


def _parse_ssi(data: bytes, contract: Contract, fmt: WireFormat,
               q: _Quarantine) -> tuple[_Candidates, Count, int | None]:
    cnt = count_ssi(data)
    body = _strip_bom(data, fmt, q)
    text, _ = _decode(body, fmt)
    records, last_terminated, _ = split_records(text, fmt.delimiter or "|", None)
    expected = contract.field_names
    ncols = len(expected)
    seen_h = seen_k = False
    header_ok = True
    order: list[int] | None = None
    trailer = None
    data_records: list[tuple[int, str, list[str]]] = []
    for idx, (raw, fields) in enumerate(records):
        tag = raw[:2]
        if tag == "D|":
            data_records.append((len(data_records) + 1, raw, fields[1:]))
        elif tag == "H|":
            if seen_h or idx != 0:
                q.add(None, None, "header", f"line {idx + 1}: header record 'H|' "
                      f"{'repeated' if seen_h else 'is not the first line'}", raw)
                continue
            seen_h = True
            if len(fields) != 4 or fields[1] != contract.dataset:
                header_ok = False
                q.add(None, None, "header", f"header record names dataset {fields[1:2]} (expected "
                      f"'H|{contract.dataset}|<YYYYMMDD>|<version>')", raw)
        elif tag == "K|":
            if seen_k:
                q.add(None, None, "header", f"line {idx + 1}: column record 'K|' repeated", raw)
                continue
            seen_k = True
            kind, msg, order = _header_problem(fields[1:], raw[2:], expected, fmt)
            if kind:
                q.add(None, None, kind, f"column record: {msg}", raw)
        elif tag == "T|" and idx == len(records) - 1:
            trailer = (raw, fields)
        elif tag == "T|":
            q.add(None, None, "trailer", f"line {idx + 1}: trailer record 'T|' before the end", raw)
        else:
            q.add(None, None, "column_count", f"line {idx + 1}: unknown record type {raw[:1]!r} "
                  "(SSI records are H|, K|, D| and T|)", raw)
    if not seen_h:
        header_ok = False
        q.add(None, None, "header", f"missing header record 'H|{contract.dataset}|<YYYYMMDD>|<version>'",
              records[0][0] if records else "")
    if not seen_k:
        q.add(None, None, "header", "missing column record 'K|<field>|...'", records[0][0] if records else "")
    enc_check = _latin1_problem if _suspect_latin1(body) else None
    last_no = len(data_records)
    identity = order == list(range(ncols))
    cand = _Candidates()
    for no, raw, values in data_records:
        if no == last_no and trailer is None and not last_terminated and records[-1][0] == raw:
            q.add(no, None, "truncated", "the last record has no line end: the payload ends mid-record", raw)
            q.reject(f"cut mid-record: the last record (record {no}) has no line end and no trailer follows")
            continue
        if _encoding_or_width_problem(q, no, raw, values, expected, order, fmt, enc_check, ncols):
            continue
        if not header_ok or order is None:
            q.add(no, None, "header", "the payload's header or column record does not match the contract: "
                  "record not mapped", raw)
            continue
        cand.record_nos.append(no)
        cand.rows.append(values if identity else [values[i] for i in order])
        cand.raws.append(raw)
    trailer_count = _check_trailer(trailer, fmt, cnt, q, records[-1][0] if records else "")
    return cand, cnt, trailer_count


# --------------------------------------------------------------------------- JSON


def _json_encoding_fields(obj: dict[str, Any]) -> list[str]:
    """The keys of ``obj`` whose key or value (at any depth) holds bytes that were not UTF-8."""
    return [_clean(k) for k, v in obj.items() if _has_surrogate(k) or _has_surrogate(v)]


def _has_surrogate(v: Any) -> bool:
    if isinstance(v, str):
        return _SURROGATE.search(v) is not None
    if isinstance(v, list):
        return any(_has_surrogate(x) for x in v)
    if isinstance(v, dict):
        return any(_has_surrogate(k) or _has_surrogate(x) for k, x in v.items())
    return False


def _dumps(obj: Any) -> Callable[[], str]:
    return lambda: json.dumps(obj, ensure_ascii=False)


def _parse_json(data: bytes, contract: Contract, fmt: WireFormat,
                q: _Quarantine, decoded: Any = None) -> tuple[_Candidates, Count, int | None]:
    body = data[len(BOM):] if data.startswith(BOM) else data
    items: list[tuple[int, Any, Any]] = []  # (record_no, decoded object, raw)
    if _PAGE_START.match(body):
        try:  # the common case: valid UTF-8 JSON (orjson: strict UTF-8, no NaN, ~2x json's speed)
            page = decoded if decoded is not None else orjson.loads(body)
            text, undecodable_page = None, False
        except orjson.JSONDecodeError:
            page = None
        if page is None:
            text, undecodable_page = _decode(body, fmt)
            try:
                page = json.loads(text)
            except json.JSONDecodeError as exc:
                # a page cut in transfer stops mid-value: the error is at its end, or it never closes
                cut = exc.pos >= len(text.rstrip()) - 1 or not text.rstrip().endswith("}")
                q.add(None, None, "json", f"invalid JSON page: {exc.msg} at line {exc.lineno} column "
                      f"{exc.colno} (character {exc.pos:,} of {len(text):,})"
                      f"{'; the page ends early (truncated)' if cut else ''}; no record can be read", text)
                q.reject(f"unreadable JSON page: {exc.msg} at line {exc.lineno} column {exc.colno}"
                         f"{' (the page ends early: truncated)' if cut else ''}")
                return _Candidates(), Count(0, "JSON page could not be read (no record recoverable)"), None
        if text is None:  # orjson read it: valid UTF-8, decoded only for the messages below
            text = body.decode("utf-8") if not isinstance(page, dict) or "records" not in page or \
                page.get("dataset") not in (None, contract.dataset) else ""
        records = page.get("records") if isinstance(page, dict) else None
        if not isinstance(records, list):
            q.add(None, None, "json", "the page has no 'records' array; no record can be read", text)
            q.reject("the JSON page has no 'records' array")
            return _Candidates(), Count(0, "JSON page without a 'records' array"), None
        cnt = Count(len(records), "elements of the page's 'records' array")
        if page.get("dataset") not in (None, contract.dataset):
            q.add(None, None, "header", f"page is for dataset {page.get('dataset')!r}, not {contract.dataset!r}",
                  text[:2000])
            q.reject(f"the page is for dataset {page.get('dataset')!r}, not {contract.dataset!r}")
            for no, rec in enumerate(records, 1):
                q.add(no, None, "header", "record of a page for another dataset", _dumps(rec)())
            return _Candidates(), cnt, None
        known = _known_keys(contract)
        # (types collected at C speed: JSON readers give plain dicts, never a subclass)
        if not undecodable_page and (not records or set(map(type, records)) == {dict}) and \
                known.issuperset(set().union(*records)):
            # the common case, judged for the whole page at once: objects only, every key a field
            rows = list(records)
            return _Candidates(list(range(1, len(rows) + 1)), rows, rows, _MissingKeys(rows)), cnt, None
        for no, rec in enumerate(records, 1):
            if not isinstance(rec, dict):
                q.add(no, None, "json", f"record is a JSON {type(rec).__name__}, not an object", _dumps(rec)())
                continue
            bad = _json_encoding_fields(rec) if undecodable_page else []
            if bad:
                for name in bad:
                    q.add(no, name, "encoding", f"{name}: bytes that are not valid UTF-8", _dumps(rec)())
                continue
            items.append((no, rec, rec))
    else:
        cnt = count_json_lines(data)
        lines = [ln for ln in body.split(b"\n") if ln.strip()]
        for no, line in enumerate(lines, 1):
            last = no == len(lines)
            try:
                s, undecodable = line.decode("utf-8"), False
            except UnicodeDecodeError:
                s, undecodable = line.decode("utf-8", "surrogateescape"), True
            try:
                obj = json.loads(s)
            except json.JSONDecodeError as exc:
                if undecodable:
                    q.add(no, None, "encoding", f"{_utf8_problem(s)}; JSON is UTF-8", s)
                elif last and not cnt.last_terminated:
                    q.add(no, None, "truncated", f"the last line has no line end and is not valid JSON ({exc.msg} "
                          f"at column {exc.colno}): the payload ends mid-record", s)
                    q.reject(f"cut mid-record: the last line (record {no}) has no line end and is not valid JSON")
                else:
                    q.add(no, None, "json", f"line is not valid JSON: {exc.msg} at column {exc.colno}", s)
                continue
            if not isinstance(obj, dict):
                q.add(no, None, "json", f"line is a JSON {type(obj).__name__}, not an object", s)
                continue
            if undecodable:
                for name in _json_encoding_fields(obj) or [None]:
                    q.add(no, name, "encoding", f"{name or 'record'}: {_utf8_problem(s)}; JSON is UTF-8", s)
                continue
            items.append((no, obj, s))
    cand = _Candidates()
    known = _known_keys(contract)
    for no, obj, raw in items:
        if not known.issuperset(obj):  # the order's field list is fixed: a misspelt or unlawful field
            text = json.dumps(raw, ensure_ascii=False) if isinstance(raw, dict) else raw() if callable(raw) else raw
            for key in sorted(obj.keys() - known):
                near = difflib.get_close_matches(key, contract.field_names, n=1)
                q.add(no, key, "unknown_field", short(
                    f"unknown key {key!r}: not a field of the {contract.dataset} contract"
                    + (f" (did you mean {near[0]!r}?)" if near else "")
                    + "; the order's field list is fixed, so the record is not loaded without it", 400), text)
            continue
        cand.record_nos.append(no)
        cand.rows.append(obj)
        cand.raws.append(raw)
    cand.missing_keys = _MissingKeys(cand.rows)
    return cand, cnt, None


class _MissingKeys:
    """Why a JSON row's required field is empty, asked only for rows with an empty one."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def get(self, key: tuple[int, str], default: str) -> str:
        pos, name = key
        return f"required key {name!r} is missing from the JSON object" if name not in self.rows[pos] else default


@functools.cache
def _known_keys_of(dataset: str, names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(names)


def _known_keys(contract: Contract) -> frozenset[str]:
    return _known_keys_of(contract.dataset, tuple(contract.field_names))


# --------------------------------------------------------------------------- assembly


def _json_columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Columns of JSON objects: one C-level itemgetter call per row when every key is present."""
    if not rows:
        return {name: [] for name in names}
    try:
        cols = zip(*map(operator.itemgetter(*names), rows), strict=True)
        return dict(zip(names, cols, strict=True))
    except KeyError:  # a key is missing (null and absent are the same on the wire)
        return {name: [row.get(name) for row in rows] for name in names}


@functools.cache
def _json_text_fields(dataset: str, fields: tuple[tuple[str, str, bool], ...]) -> tuple[list[str], pa.DataType]:
    """The single-valued fields that are JSON strings on the wire, and the struct type that reads them."""
    names = [name for name, t, multi in fields if t in STRING_WIRE_TYPES and not multi]
    return names, pa.struct([(name, pa.string()) for name in names])


def _json_columns_arrow(rows: list[dict[str, Any]], contract: Contract) -> dict[str, Any]:
    """Columns of JSON objects: the text fields converted by Arrow in one call (a missing key is null,
    '' is empty), the others as :func:`_json_columns` gives them.

    Arrow refuses a number, boolean, array or object where a string is expected; then every column
    is taken as it came and judged value by value (:func:`.convert.type_columns` names what is wrong).
    """
    names, struct = _json_text_fields(contract.dataset, tuple((f.name, f.type, f.multi) for f in contract.all_fields))
    if not rows or not names:
        return _json_columns(rows, contract.field_names)
    try:
        text = pa.array(rows, struct).flatten()
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return _json_columns(rows, contract.field_names)
    cols: dict[str, Any] = {}
    for name, arr in zip(names, text, strict=True):
        empty = pc.equal(arr, "")
        cols[name] = pc.if_else(empty, pa.scalar(None, pa.string()), arr) if empty.true_count else arr
    rest = [n for n in contract.field_names if n not in cols]
    if len(rest) == 1:
        cols[rest[0]] = [row.get(rest[0]) for row in rows]
    elif rest:
        cols.update(_json_columns(rows, rest))
    return cols


def parse_payload(data: bytes, contract: Contract, *, channel: str, reporter: str, leveringsdato: dt.date,
                  payload_id: str, decoded: Any = None) -> ParseResult:
    """Accepted rows (typed, with lineage) and quarantine rows of one payload.

    Never raises for bad data: every problem becomes a quarantine row.  Call
    :func:`reconcile` on the result before loading it.  ``decoded``: a JSON page as ``orjson.loads(data)``
    gave it to the channel client (the page is not read twice); None reads ``data`` here.
    """
    fmt = wire_format(channel, contract)
    q = _Quarantine()
    schema = arrow_schema(contract)
    ident = {"payload_id": payload_id, "dataset": contract.dataset, "channel": channel, "reporter": reporter,
             "leveringsdato": leveringsdato}
    pad = trailing_padding(data)
    if pad is not None:  # judged on the text before the padding: its records stay readable (quarantined)
        n_pad, what = pad
        why = (f"the payload ends in {what} after its last line: the {fmt.name} format is plain {fmt.label} "
               "text and nothing follows its last line (a preallocated or not completely written file?)")
        q.add(None, None, "padding", why, data[len(data) - n_pad:][:64].hex(" "))
        q.reject(why)
        data = data[:len(data) - n_pad]
    binary = binary_problem(data)
    if binary is not None or _is_empty(data):
        if binary is not None:
            why = f"{binary}: the {fmt.name} format is plain {fmt.label} text"
            q.add(None, None, "binary", why, data[:64].hex(" "))
            counted = f"not counted: {binary}"
        else:
            need = {"json": "a JSON page", "csv": "a header line", "ssi": "a header, column and trailer record"}
            why = f"empty payload ({len(data)} byte(s)): the {fmt.name} format requires {need[fmt.kind]}"
            q.add(None, None, "empty_payload", why, data.decode("utf-8", "replace"))
            counted = "empty payload: 0 records"
        q.reject(why)
        return ParseResult(schema.empty_table(), q.table(contract.dataset, channel, reporter, leveringsdato,
                                                         payload_id), 0, None, counted,
                           rejected_reason="; ".join(q.rejected), **ident)
    if fmt.kind == "json":
        cand, cnt, trailer_count = _parse_json(data, contract, fmt, q, decoded)
    elif fmt.kind == "csv":
        cand, cnt, trailer_count = _parse_delimited(data, contract, fmt, q)
    else:
        cand, cnt, trailer_count = _parse_ssi(data, contract, fmt, q)
    n = len(cand.record_nos)
    names = contract.field_names
    if cand.columns is not None:
        columns = cand.columns
    elif fmt.kind == "json":
        columns = _json_columns_arrow(cand.rows, contract)
    else:
        cols = list(zip(*cand.rows, strict=True)) if n else [()] * len(names)
        columns = dict(zip(names, cols, strict=True))
    arrays, errors = type_columns(contract, fmt, columns, n, from_json=fmt.kind == "json",
                                  missing_keys=cand.missing_keys, leveringsdato=leveringsdato,
                                  controls=_may_hold_controls(data, fmt))
    bad: set[int] = set()
    for e in errors:
        q.add(cand.record_nos[e.pos], e.field, e.kind, e.message, cand.raw(e.pos))
        bad.add(e.pos)
    keep = [pos for pos in range(n) if pos not in bad]
    if bad:
        idx = pa.array(keep, pa.int64())
        arrays = [a.take(idx) for a in arrays]
    m = len(keep)
    lineage = [
        pa.array([channel] * m, pa.string()), pa.array([reporter] * m, pa.string()),
        pa.array([payload_id] * m, pa.string()),
        pa.array([cand.record_nos[p] for p in keep], pa.int64()), pa.array([leveringsdato] * m, pa.date32()),
    ]
    accepted = pa.Table.from_arrays(arrays + lineage, schema=schema)
    counted_by = f"{cnt.method}: {cnt.records} record(s)" + (
        f"; trailer says {trailer_count}" if trailer_count is not None else "")
    return ParseResult(accepted, q.table(contract.dataset, channel, reporter, leveringsdato, payload_id),
                       cnt.records, trailer_count, counted_by,
                       rejected_reason="; ".join(q.rejected) if q.rejected else None, **ident)


def reconcile(result: ParseResult) -> None:
    """Raise :class:`ReconciliationError` unless received = accepted + distinct quarantined records."""
    accepted_nos = result.accepted.column("_record_no").to_pylist()
    quarantined = result.quarantined_records
    both = set(accepted_nos) & quarantined
    out_of_range = [r for r in (*accepted_nos, *quarantined) if not 1 <= r <= result.records_received]
    total = len(accepted_nos) + len(quarantined)
    if total == result.records_received and not both and not out_of_range and \
            len(set(accepted_nos)) == len(accepted_nos):
        return
    detail = []
    if both:
        detail.append(f"records both accepted and quarantined: {sorted(both)[:10]}")
    if out_of_range:
        detail.append(f"record numbers outside 1..{result.records_received}: {sorted(out_of_range)[:10]}")
    raise ReconciliationError(
        f"payload {result.payload_id} ({result.dataset}, reporter {result.reporter}, channel {result.channel}, "
        f"leveringsdato {result.leveringsdato}): received {result.records_received} record(s) "
        f"(counted by {result.counted_by}) but the parser accounts for {total} = {len(accepted_nos)} accepted "
        f"+ {len(quarantined)} quarantined" + (f"; {'; '.join(detail)}" if detail else ""))
