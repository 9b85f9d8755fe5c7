"""The ledger-against-lake reconciliation, checked after every load (the published warehouse's asset check,
``dsdw warehouse check``).

The tests of the models themselves (keys, foreign keys, spells, fact rows = staged rows) are dbt tests in
``warehouse/dbt`` and run in every ``dbt build``; this one compares files with the SQLite ledger, which are
not relations dbt can read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.landing.ledger import read_only


@dataclass
class CheckResult:
    name: str
    model: str
    kind: str  # unique | foreign_key | no_overlap | reconcile
    failures: int
    examples: list = field(default_factory=list)
    rule: str = ""
    # foreign keys only warn: a code the quality rules already reported (e.g. an unknown kommunekode) is kept
    # in the facts as received; the other kinds are errors
    severity: str = "error"

    @property
    def passed(self) -> bool:
        return self.failures == 0


def lake_ledger_checks(root: Path | str) -> list[CheckResult]:
    """Ledger against lake, per payload: every ``loaded`` payload's lake file holds exactly its
    ``rows_accepted`` rows, all carrying its payload id, and no lake file holds rows of a payload
    the ledger does not have loaded (superseded, rejected, unknown). Fails loudly on any difference:
    the warehouse follows the lake, so a lake that drifted from the ledger is a wrong warehouse.
    """

    root = Path(root)
    ledger, lake = root / "ledger.sqlite", root / "lake"
    if not ledger.exists() or not lake.is_dir():
        return []
    with read_only(ledger) as lc:
        loaded = {pid: (ds, n, path) for pid, ds, n, path in lc.execute(
            "SELECT payload_id, dataset, rows_accepted, lake_path FROM payloads WHERE status='loaded'")}
    files = _dataset_files(lake)
    found = {(fname, pid): n for fname, pid, n in _rows_per_file(files)}
    bad: list[tuple] = []
    in_files: dict[str, list[str]] = {}
    for (fname, pid), n in found.items():
        in_files.setdefault(pid, []).append(fname)
        want = loaded.get(pid)
        if want is None:
            bad.append((pid, fname, n, "rows of a payload the ledger does not have loaded"))
        elif want[2] != fname:
            bad.append((pid, fname, n, f"rows in another file than the ledger's lake_path {want[2]}"))
    for pid, (ds, n, path) in loaded.items():
        got = sum(found.get((f, pid), 0) for f in in_files.get(pid, []))
        if got != (n or 0):
            bad.append((pid, path, got, f"ledger rows_accepted {n}, lake holds {got} ({ds})"))
    listed = {p for _, _, p in loaded.values() if p}
    with_rows = {k[0] for k in found}
    for f in files:
        if f not in listed and f not in with_rows:
            bad.append(("-", f, 0, "empty lake file no loaded payload owns"))
    return [CheckResult("reconcile:ledger=lake per payload", "lake", "reconcile", len(bad), bad[:3],
                        "every loaded payload's rows_accepted = its rows in the lake, and the lake holds "
                        "rows of loaded payloads only"),
            _archive_check(root, lake)]


def _dataset_files(base: Path) -> list[str]:
    """The datasets' Parquet files under ``base`` (the lake, or its archive), the quarantine and archive left out."""
    return sorted(str(p) for p in base.glob("*/leveringsdato=*/*.parquet") if not p.parts[-3].startswith("_"))


def _rows_per_file(files: list[str]) -> list[tuple[str, str, int]]:
    """(file, payload id, rows) of every payload id in ``files``."""
    if not files:
        return []
    con = duckdb.connect()
    try:
        flist = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        return con.execute(f"SELECT filename, _payload_id, count(*) FROM read_parquet([{flist}], filename = true, "
                           "union_by_name = true) GROUP BY ALL").fetchall()
    finally:
        con.close()


def _archive_check(root: Path, lake: Path) -> CheckResult:
    """The lake's archive against the ledger: each archived lake file is the archive's copy of a superseded
    payload's file (ingest.archive_payload_files) and holds exactly its rows_accepted rows, all of that payload.
    A superseded payload without an archived file is not a failure: lakes written before the archive existed lack
    them (``dsdw warehouse rebuild`` refuses such a lake, naming them)."""
    from pipelines.lake.write import ARCHIVE_DIR, archive_path

    files = _dataset_files(lake / ARCHIVE_DIR)
    bad: list[tuple] = []
    if files:
        with read_only(root / "ledger.sqlite") as lc:
            superseded = {pid: (n, str(archive_path(root, path))) for pid, n, path in lc.execute(
                "SELECT payload_id, rows_accepted, lake_path FROM payloads WHERE status='superseded' "
                "AND lake_path IS NOT NULL")}
        for fname, pid, n in _rows_per_file(files):
            want = superseded.get(pid)
            if want is None:
                bad.append((pid, fname, n, "archived rows of a payload the ledger does not have superseded"))
            elif want[1] != fname:
                bad.append((pid, fname, n, f"archived in another file than its lake_path's archive {want[1]}"))
            elif want[0] != n:
                bad.append((pid, fname, n, f"ledger rows_accepted {want[0]}, archive holds {n}"))
    return CheckResult("reconcile:ledger=archive per payload", "lake", "reconcile", len(bad), bad[:3],
                       "every archived lake file holds exactly the rows_accepted rows of the superseded payload "
                       "whose file it was")


