"""Records in the raw bytes, counted without the parser (the reconciliation's other method).

Deliberately separate code: it works on bytes (the parser works on decoded text), walks
quotes with ``bytes.find`` (the parser tokenizes with regular expressions) and knows
nothing about contracts or types.  Blank lines are not records, for both.
"""

from __future__ import annotations

from dataclasses import dataclass

_BLANK = frozenset({b"", b"\n", b"\r", b"\r\n"})


@dataclass(frozen=True)
class Count:
    records: int  # data records (header, column and trailer records excluded)
    method: str  # how they were counted (for messages)
    trailer: bytes | None = None  # the raw trailer record, when the format has one and it is there
    last_terminated: bool = True  # the last non-blank record ends with a line end
    open_quote: bool = False  # some quoted field never closes (its record ends with its line)


def _ends_in_quote(line: bytes, in_quote: bool, delim: bytes, quote: bytes) -> tuple[bool, bool]:
    """(quote state at the end of ``line``, that state's quote opened in this line).

    RFC 4180: a quote opens a field only at its start; ``""`` inside a quoted field is a quote.
    """
    i, n = 0, len(line)
    field_start = not in_quote
    opened_here = False
    while i < n:
        if in_quote:
            j = line.find(quote, i)
            if j < 0:
                return True, opened_here
            if line[j + 1:j + 2] == quote:  # "" inside a quoted field
                i = j + 2
                continue
            in_quote, field_start, i = False, False, j + 1
            continue
        if field_start and line[i:i + 1] == quote:
            in_quote, opened_here, i = True, True, i + 1
            continue
        j = line.find(delim, i)
        if j < 0:
            return False, False
        field_start, i = True, j + 1
    return in_quote, opened_here and in_quote


def count_delimited(data: bytes, delim: bytes, quote: bytes | None, *, header: bool = True,
                    trailer_prefix: bytes | None = None) -> Count:
    """Records of a delimited file: quoted line ends stay inside their record.

    A quote still open at the end of the bytes never closed: its record ends with the line
    where it opened, and the scan resumes on the next line outside any quote.
    """
    lines = data.splitlines(keepends=True)  # bytes: splits on \r\n, \r and \n only
    starts: list[bytes] = []  # first line of every record (only its start is looked at)
    open_quote = False
    if quote is None or quote not in data:
        starts = [ln for ln in lines if ln not in _BLANK]
    else:
        i, n = 0, len(lines)
        in_quote, opened_at = False, -1
        while i < n:
            ln = lines[i]
            if not in_quote:
                if ln not in _BLANK:
                    starts.append(ln)
                    if quote in ln:
                        in_quote, here = _ends_in_quote(ln, False, delim, quote)
                        opened_at = i if here else opened_at
            elif quote in ln:
                in_quote, here = _ends_in_quote(ln, True, delim, quote)
                opened_at = i if here else opened_at
            i += 1
            if i == n and in_quote:  # never closed: resume after the line where it opened
                open_quote, in_quote, i = True, False, opened_at + 1
    last_terminated = not lines or lines[-1].endswith((b"\n", b"\r"))
    n = len(starts) - (1 if header and starts else 0)
    trailer = None
    if trailer_prefix and n > 0 and starts[-1].startswith(trailer_prefix):
        trailer, n = starts[-1].rstrip(b"\r\n"), n - 1
    how = "quote-aware line scan of the raw bytes" if quote else "line scan of the raw bytes"
    return Count(n, how, trailer, last_terminated, open_quote)


def count_ssi(data: bytes) -> Count:
    """SSI: data records are the lines starting 'D|'; the trailer is a last line starting 'T|'."""
    lines = data.splitlines(keepends=True)
    n = sum(1 for ln in lines if ln.startswith(b"D|"))
    last = next((ln for ln in reversed(lines) if ln not in _BLANK), b"")
    trailer = last.rstrip(b"\r\n") if last.startswith(b"T|") else None
    last_terminated = not lines or lines[-1].endswith((b"\n", b"\r"))
    return Count(n, "'D|' lines of the raw bytes", trailer, last_terminated)


def count_json_lines(data: bytes) -> Count:
    """JSON lines: every non-blank line is a record."""
    lines = data.split(b"\n")
    n = sum(1 for ln in lines if ln.strip())
    return Count(n, "non-blank lines of the raw bytes", None, data.endswith(b"\n") or not data.strip())
