"""Wire formats of the reporters' channels (docs/sources.md): part of the contract.

What a reporter's file looks like on each channel: delimiters, encodings, trailers,
multi-value separator, and the file-drop protocol (a file counts as delivered when its
``.done`` marker exists).  Ingestion (:mod:`pipelines.lake.formats`, :mod:`pipelines.sources`)
reads these formats; the simulator and the vendors' test extracts write them with the
writers below, so readers and writers cannot drift apart.  Production code imports this
module, never the simulator.
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
# file drops: the marker that declares a file complete, and the suffix of a file still being written
MARKER_SUFFIX = ".done"
PART_SUFFIX = ".part"


def marker_path(path: Path) -> Path:
    """The ``.done`` marker that declares ``path`` complete."""
    path = Path(path)
    return path.with_name(path.name + MARKER_SUFFIX)


def is_complete(path: Path) -> bool:
    """True when ``path`` and its marker both exist (what a consumer should check)."""
    return Path(path).is_file() and marker_path(path).is_file()


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
