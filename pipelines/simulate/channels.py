"""Wire formats of the reporters' channels (see docs/sources.md).

The simulator writes payloads with these functions; ingestion reads the same
formats.  Kept in one module so the two sides cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipelines.contracts import Contract

MULTI_SEP = "#"
FTP_DELIM = ";"
FTP_ENCODING = "latin-1"
FTP_TRAILER = "TRAILER"
PORTAL_DELIM = ";"
UVM_DELIM = ","
SSI_DELIM = "|"
SSI_ENCODING = "latin-1"


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return MULTI_SEP.join(str(x) for x in v)
    return str(v)


def _csv_line(values: Iterable[Any], delim: str) -> str:
    out = []
    for v in values:
        s = _cell(v)
        if delim in s or '"' in s or "\n" in s or "\r" in s:
            s = '"' + s.replace('"', '""') + '"'
        out.append(s)
    return delim.join(out)


def json_lines(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records).encode()


def csv_payload(contract: Contract, records: list[dict[str, Any]], *, delim: str, encoding: str,
                newline: str = "\r\n", bom: bool = False, trailer: str | None = None,
                bad_encoding: set[int] | None = None) -> bytes:
    """Header + one line per record (+ optional trailer), each line encoded on its own.

    ``bad_encoding`` holds indexes of records deliberately encoded as cp1252 inside
    a UTF-8 file (the 'bad encoding' defect of the simulator).
    """
    cols = contract.field_names
    parts = ["\ufeff".encode(encoding)] if bom else []
    parts.append((_csv_line(cols, delim) + newline).encode(encoding))
    for i, r in enumerate(records):
        line = _csv_line((r.get(c) for c in cols), delim) + newline
        enc = "cp1252" if bad_encoding and i in bad_encoding else encoding
        parts.append(line.encode(enc, errors="replace"))
    if trailer is not None:
        parts.append(f"{trailer}{delim}{len(records)}{newline}".encode(encoding))
    return b"".join(parts)


def ftp_payload(contract: Contract, records: list[dict[str, Any]]) -> bytes:
    """Chapter 11 file: ';'-separated Latin-1 CSV, CRLF, trailer with the record count (§ 52, stk. 4)."""
    return csv_payload(contract, records, delim=FTP_DELIM, encoding=FTP_ENCODING, trailer=FTP_TRAILER)


def portal_payload(contract: Contract, records: list[dict[str, Any]], bad: set[int] | None = None) -> bytes:
    """Arbejdsmarkedsportalen daily export: ';'-separated UTF-8 with BOM, no trailer."""
    return csv_payload(contract, records, delim=PORTAL_DELIM, encoding="utf-8", bom=True, bad_encoding=bad)


def uvm_payload(contract: Contract, records: list[dict[str, Any]], bad: set[int] | None = None) -> bytes:
    """UVM education file: ','-separated UTF-8, LF line ends, header."""
    return csv_payload(contract, records, delim=UVM_DELIM, encoding="utf-8", newline="\n", bad_encoding=bad)


def ssi_payload(contract: Contract, records: list[dict[str, Any]], day_compact: str) -> bytes:
    """SSI register file: H|dataset|date|1 header record, D| data records, T|count trailer."""
    lines = [SSI_DELIM.join(["H", contract.dataset, day_compact, "1"])]
    lines.append(SSI_DELIM.join(["K", *contract.field_names]))  # column record
    for r in records:
        lines.append(SSI_DELIM.join(["D", *(_cell(r.get(c)).replace(SSI_DELIM, "/") for c in contract.field_names)]))
    lines.append(SSI_DELIM.join(["T", str(len(records))]))
    return ("\n".join(lines) + "\n").encode(SSI_ENCODING, errors="replace")


def _csv_rows(text: str, delim: str) -> list[list[str]]:
    import csv
    import io

    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delim))


def read_payload(path: Path, contract: Contract) -> tuple[list[dict[str, Any]], list[int]]:
    """Parse one payload back into wire records (strings, '' -> None).

    Returns the records and the indexes of lines that did not decode in the
    declared encoding (those records are decoded as cp1252 so nothing is lost).
    A simple reference reader for tests and tools; ingestion has its own,
    stricter parser with quarantine.
    """
    data = path.read_bytes()
    bad: list[int] = []
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line], bad
    if path.suffix == ".txt":  # SSI
        lines = data.decode(SSI_ENCODING).splitlines()
        cols = lines[1].split(SSI_DELIM)[1:]
        recs = [dict(zip(cols, (v or None for v in ln.split(SSI_DELIM)[1:]), strict=True))
                for ln in lines if ln.startswith("D" + SSI_DELIM)]
        return recs, bad
    in_ftp = path.parts[-3] == "ftp" if len(path.parts) >= 3 else False
    delim = FTP_DELIM if in_ftp or "portal" in path.parts else UVM_DELIM
    encoding = FTP_ENCODING if in_ftp else "utf-8"
    raw_lines = data.splitlines(keepends=True)
    text_lines = []
    for k, raw in enumerate(raw_lines):
        try:
            text_lines.append(raw.decode(encoding))
        except UnicodeDecodeError:
            bad.append(k - 1)  # record index (line 0 is the header)
            text_lines.append(raw.decode("cp1252"))
    rows = _csv_rows("".join(text_lines).lstrip("\ufeff"), delim)
    header, body = rows[0], rows[1:]
    if in_ftp and body and body[-1] and body[-1][0] == FTP_TRAILER:
        body = body[:-1]
    multi = {f.name for f in contract.all_fields if f.multi}
    recs = []
    for row in body:
        rec: dict[str, Any] = {}
        for col, v in zip(header, row, strict=True):
            rec[col] = (v.split(MULTI_SEP) if col in multi else v) if v != "" else None
        recs.append(rec)
    return recs, bad


def iter_payloads(out: Path) -> Iterable[tuple[str, str, Path]]:
    """(channel, dataset, path) of every payload under a generated directory (docs/sources.md)."""
    for p in sorted(out.rglob("*")):
        if not p.is_file() or p.name.endswith(".done") or p.name.startswith("."):
            continue
        rel = p.relative_to(out).parts
        if rel[0] == "webservice" and len(rel) == 4:
            yield "webservice", rel[1], p
        elif rel[0] in ("ftp", "portal"):
            yield rel[0], p.stem.rsplit("_", 2)[0], p
        elif rel[0] == "drops":
            yield "filedrop", p.stem.rsplit("_", 1)[0], p
