"""Reference readers for the simulator's output directory (tests and tools).

The wire formats themselves are part of the contract (:mod:`pipelines.contracts.wire`);
this module only knows how the simulator lays its payloads out on disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipelines.contracts import Contract
from pipelines.contracts.wire import (
    FTP_DELIM,
    FTP_ENCODING,
    FTP_TRAILER,
    MULTI_SEP,
    SSI_DELIM,
    SSI_ENCODING,
    UVM_DELIM,
)


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
