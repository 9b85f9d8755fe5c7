"""Property: whatever sequence of deliveries, corrections, re-sends, renames and reruns a
reporter produces, the lake holds exactly the valid records of the latest version of every
file, every offered file has a ledger row, and each loaded payload's lake file holds its rows.

The model: a file is a (day, reporter) slot of the Arbejdsmarkedsportalen export
(``akasse_fravaer``). A rename puts a slot's current bytes under another slot's name: the
same delivery offered again, so it adds nothing (the same reporter's: duplicate; another
reporter's: rejected). A correction may change a value, add a record, drop one, or revert
to an earlier version; some records carry a typing error and are quarantined.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_builders import template

from pipelines.contracts import load_contracts
from pipelines.contracts.wire import portal_payload
from pipelines.ingest import SourcesConfig, Zones, account_day, ingest_dataset_day
from pipelines.landing import Ledger

DS = "akasse_fravaer"
C = load_contracts()[DS]
DAYS = [dt.date(2026, 10, 1), dt.date(2026, 10, 2)]
REPORTERS = ["001", "013"]
SLOTS = [(d, r) for d in range(len(DAYS)) for r in REPORTERS]
RECEIVED_AT = "2026-10-03T02:00:00+02:00"

pytestmark = pytest.mark.usefixtures("portal_stable_now")  # conftest


@pytest.fixture(scope="module")
def tpl() -> dict:
    """One clean record of DS, built by the simulator (``ingest_builders.template``: nothing generated)."""
    return template(DS)


slot = st.integers(0, len(SLOTS) - 1)
ops = st.lists(st.one_of(
    st.tuples(st.just("deliver"), slot, st.integers(1, 4), st.booleans()),
    st.tuples(st.just("correct"), slot, st.sampled_from(["value", "add", "drop", "revert", "bad"])),
    st.tuples(st.just("resend"), slot),
    st.tuples(st.just("rename"), slot, slot),
    st.tuples(st.just("rerun"),),
), min_size=1, max_size=8)


class World:
    """The drop folders on disk and what the lake must hold."""

    def __init__(self, base: Path, tpl: dict) -> None:
        self.portal = base / "portal"
        self.root = base / "zones"
        self.tpl = tpl
        self.cfg = SourcesConfig("http://127.0.0.1:9", {}, "127.0.0.1", 9, "star", "x", self.portal,
                                 base / "uvm", base / "ssi")
        self.versions: dict[tuple[int, str], list[list[dict]]] = {}  # origin files: every version
        self.aliases: set[tuple[int, str]] = set()
        self.serial = 0

    def path(self, s: tuple[int, str]) -> Path:
        day = DAYS[s[0]]
        return self.portal / day.isoformat() / f"{DS}_{s[1]}_{day.strftime('%Y%m%d')}.csv"

    def record(self, s: tuple[int, str], bad: bool = False) -> dict:
        self.serial += 1
        bid = str(uuid.UUID(int=(SLOTS.index(s) + 1) << 64 | self.serial, version=4))
        return dict(self.tpl, besked_id=bid, indberetter=s[1], version="x" if bad else "1")

    def write(self, s: tuple[int, str], recs: list[dict]) -> None:
        p = self.path(s)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(portal_payload(C, recs))

    def apply(self, op: tuple) -> None:
        kind = op[0]
        if kind == "deliver":
            s = SLOTS[op[1]]
            if s in self.versions or s in self.aliases:
                return
            recs = [self.record(s, bad=op[3] and k == 0) for k in range(op[2])]
            self.versions[s] = [recs]
            self.write(s, recs)
        elif kind == "correct":
            s = SLOTS[op[1]]
            if s not in self.versions:
                return
            cur = [dict(r) for r in self.versions[s][-1]]
            how = op[2]
            if how == "value":
                cur[0]["version"] = str(int(cur[0]["version"]) + 1) if cur[0]["version"] != "x" else "2"
            elif how == "add":
                cur.append(self.record(s))
            elif how == "drop" and len(cur) > 1:
                cur.pop()
            elif how == "revert" and len(self.versions[s]) > 1:
                cur = [dict(r) for r in self.versions[s][-2]]
            elif how == "bad":
                cur[-1]["version"] = "x"
            else:
                return
            self.versions[s].append(cur)
            self.write(s, cur)
        elif kind == "resend":
            p = self.path(SLOTS[op[1]])
            if p.exists():
                p.write_bytes(p.read_bytes())
        elif kind == "rename":
            src, dst = SLOTS[op[1]], SLOTS[op[2]]
            if src not in self.versions or dst in self.versions or dst in self.aliases:
                return
            self.aliases.add(dst)
            self.path(dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.path(src), self.path(dst))

    def load(self) -> None:
        for day in DAYS:
            res = ingest_dataset_day(DS, day, Zones(self.root), self.cfg, RECEIVED_AT)
            assert not res.failures

    def expected(self) -> set[tuple]:
        return {(DAYS[s[0]], s[1], r["besked_id"], int(r["version"]))
                for s, vs in self.versions.items() for r in vs[-1] if r["version"] != "x"}

    def lake(self) -> set[tuple]:
        files = sorted((self.root / "lake" / DS).rglob("*.parquet"))
        if not files:
            return set()
        df = pl.concat([pl.read_parquet(f) for f in files])
        rows = list(zip(df["_leveringsdato"], df["_reporter"], df["besked_id"], df["version"], strict=True))
        assert len(rows) == len(set(rows)), "a record is in the lake twice"
        return set(rows)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                                                   HealthCheck.function_scoped_fixture])
@given(ops)
def test_lake_equals_the_valid_records_of_every_files_latest_version(tpl: dict, monkeypatch: pytest.MonkeyPatch,
                                                                      seq: list[tuple]) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not the property here; speed is
    with tempfile.TemporaryDirectory() as tmp:
        w = World(Path(tmp), tpl)
        for op in seq:
            w.apply(op)
            w.load()
            assert w.lake() == w.expected(), (op, seq)
        led = Ledger(w.root / "ledger.sqlite")
        try:
            rows = led.rows()
            for r in rows:
                if r.status == "loaded":
                    n = pl.read_parquet(r.lake_path).height
                    assert n == r.rows_accepted and r.payload_id in r.lake_path
            for s in w.aliases:
                statuses = [r.status for r in rows if r.key.source_name == w.path(s).name
                            and r.key.leveringsdato == DAYS[s[0]]]
                assert statuses and statuses[-1] in ("duplicate", "rejected"), (s, statuses)
        finally:
            led.close()
        for day in DAYS:
            [acc] = account_day(day, Zones(w.root), w.cfg, folders=["portal"])
            assert acc.unaccounted == []
        before = sorted(map(str, Path(tmp, "zones").rglob("*")))
        w.load()  # a rerun is a no-op
        assert sorted(map(str, Path(tmp, "zones").rglob("*"))) == before
        assert w.lake() == w.expected()
