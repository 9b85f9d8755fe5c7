"""The rule engine shared per lake and process sees the lake as it is now: files added since its last use
are appended to its histories, a removed or rewritten file rebuilds the history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fixtures_wh import cpr_for, deliver

from pipelines.quality.rules import RuleEngine


def _spell(kid: str, seq: int) -> dict:
    return {"kontaktgruppe_id": kid, "cpr": cpr_for(dt.date(1980, 1, 1), seq), "kontaktgruppe": "2",
            "startdato": dt.date(2026, 9, 1)}


def _ids(eng: RuleEngine) -> list[str]:
    table = eng.history("kontaktgruppe")
    assert table is not None
    return sorted(r[0] for r in eng.con.execute(f"SELECT kontaktgruppe_id FROM {table}").fetchall())


def test_shared_engine_follows_the_lake(tmp_path: Path) -> None:
    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", dt.date(2026, 10, 1), [_spell("k1", 1), _spell("k2", 2)])
    eng = RuleEngine.shared(root / "lake")
    assert _ids(eng) == ["k1", "k2"]
    deliver(root, "kontaktgruppe", dt.date(2026, 10, 2), [_spell("k3", 3)], reporter="147")
    again = RuleEngine.shared(root / "lake")
    assert again is eng and _ids(again) == ["k1", "k2", "k3"]  # appended
    first_day = next((root / "lake" / "kontaktgruppe").glob("leveringsdato=2026-10-01/*.parquet"))
    first_day.unlink()
    assert _ids(RuleEngine.shared(root / "lake")) == ["k3"]  # a removed file: the history is read again
    other = tmp_path / "other"
    deliver(other, "kontaktgruppe", dt.date(2026, 10, 1), [_spell("x1", 9)])
    assert _ids(RuleEngine.shared(other / "lake")) == ["x1"]  # one engine per lake


def test_partition_listing_cache_sees_every_change(tmp_path: Path) -> None:
    """A partition directory is listed again only when its mtime moved (or moved within the racy window):
    a file added to, or removed from, an old partition moves the directory's mtime and is seen."""
    import os

    from pipelines.quality import rules

    root = tmp_path / "root"
    day = dt.date(2026, 10, 1)
    deliver(root, "kontaktgruppe", day, [_spell("k1", 1)])
    part = root / "lake" / "kontaktgruppe" / f"leveringsdato={day}"
    old = 1_000_000_000  # 2001: far outside the racy window
    os.utime(part, (old, old))
    eng = rules.RuleEngine(root / "lake")
    first = eng._files("kontaktgruppe")
    assert eng._dir_files[str(part)][0] == old * 1_000_000_000
    assert eng._files("kontaktgruppe") == first  # unchanged directory: the cached listing
    deliver(root, "kontaktgruppe", day, [_spell("k2", 2)], reporter="147")  # same partition, another file
    now = eng._files("kontaktgruppe")
    assert len(now) == len(first) + 1 and set(first) < set(now)
    assert now == {str(f): (f.stat().st_size, f.stat().st_mtime_ns) for f in part.glob("*.parquet")}
    os.utime(part, (old, old))
    eng._files("kontaktgruppe")
    gone = sorted(now)[0]
    Path(gone).unlink()
    assert gone not in eng._files("kontaktgruppe")
