"""Writing what the simulator produced: each day's payloads in their channels' formats, the ground
truth, generation.json and the simulator's own state (issue 18: split out of generate.py)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.contracts import wire

if TYPE_CHECKING:  # pragma: no cover
    import datetime as dt

    from pipelines.simulate.emission import Pending
    from pipelines.simulate.generate import Simulator


GROUND_TRUTH_COLUMNS = ["besked_id", "dataset", "channel", "indberetter", "leveringsdato", "defect",
                        "rule_id", "field", "detail", "expected"]


class WritersMixin:
    """Output side of :class:`~pipelines.simulate.generate.Simulator`."""

    def write_day(self: Simulator, out: Path, day: dt.date, counts: dict[str, dict[str, dict[str, int]]]) -> int:
        pend = self.outbox.pop(day, [])
        groups: dict[tuple[str, str], list[Pending]] = defaultdict(list)
        for p in pend:
            groups[(p.dataset, p.reporter)].append(p)
        self._redeliver(day, groups)
        self._write_redeliveries(out, day)
        d = day.isoformat()
        compact = day.strftime("%Y%m%d")
        by_dataset: dict[str, list[Pending]] = defaultdict(list)
        for (ds, rep), items in sorted(groups.items()):
            c = self.contracts[ds]
            recs = [p.record for p in items]
            counts[c.channel].setdefault(ds, {})
            counts[c.channel][ds][d] = counts[c.channel][ds].get(d, 0) + len(recs)
            if c.channel == "webservice":
                _write(out / "webservice" / ds / d / f"{rep}.jsonl", wire.json_lines(recs))
            elif c.channel == "ftp":
                _write(out / "ftp" / d / f"{ds}_{rep}_{compact}.csv", wire.ftp_payload(c, recs))
            elif c.channel == "portal":
                bad = {k for k, p in enumerate(items) if p.bad_encoding}
                _write(out / "portal" / d / f"{ds}_{rep}_{compact}.csv", wire.portal_payload(c, recs, bad))
            else:
                by_dataset[ds].extend(items)
        for ds, items in sorted(by_dataset.items()):
            c = self.contracts[ds]
            recs = [p.record for p in items]
            if c.reporter == "uvm":
                bad = {k for k, p in enumerate(items) if p.bad_encoding}
                path = out / "drops" / "uvm" / d / f"{ds}_{compact}.csv"
                _write(path, wire.uvm_payload(c, recs, bad))
            else:
                path = out / "drops" / "ssi" / d / f"{ds}_{compact}.txt"
                _write(path, wire.ssi_payload(c, recs, compact))
            _write(path.with_name(path.name + ".done"), b"")
        return len(pend)

    def write_meta(self: Simulator, out: Path, counts: dict[str, Any], total: int) -> None:
        tokens = {}
        tok_rng = np.random.default_rng([self.seed, 7])
        reporters = [f"{int(k):03d}" for k in self.pop.kommuner] + [f"{int(a):03d}" for a in self.pop.akasser]
        for rep in sorted(set(reporters)) + ["JOBNET"]:
            tokens[rep] = tok_rng.bytes(16).hex()
        _write(out / "webservice" / "tokens.json", json.dumps(tokens, indent=1, sort_keys=True).encode())
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=GROUND_TRUTH_COLUMNS, lineterminator="\n")
        w.writeheader()
        rows = self.ground_truth + self.behaviour_rows()
        for row in sorted(rows, key=lambda r: (r["leveringsdato"], r["dataset"], r["besked_id"], r["rule_id"])):
            w.writerow(row)
        _write(out / "ground_truth.csv", buf.getvalue().encode())
        self.write_truth(out / "truth")
        defects = Counter(r["defect"] for r in self.ground_truth)
        meta = {
            "generator": "dsdw.simulate", "scale": self.scale.name, "persons": self.pop.size, "seed": self.seed,
            "start": self.start.isoformat(), "days": self.days, "defect_rate": self.defect_rate,
            "records": total, "defects": dict(sorted(defects.items())),
            "changes": dict(sorted(self.change_count.items())),
            "reporter_behaviour": [{"kind": b.kind, "reporter_kind": b.reporter_kind, "reporter": b.reporter,
                                    "dataset": b.dataset, "detail": b.detail} for b in self.behaviours.items],
            "counts": {ch: {ds: dict(sorted(v.items())) for ds, v in sorted(dd.items())}
                       for ch, dd in sorted(counts.items())},
        }
        _write(out / "generation.json", json.dumps(meta, indent=1, ensure_ascii=False).encode())

    def behaviour_rows(self) -> list[dict[str, Any]]:
        """One ground-truth row per problem reporter (no message: the reporter is the finding)."""
        rule = {"late": "reporter:lateness", "broken_field": "reporter:error_rate",
                "stopped": "reporter:missing_deliveries"}
        out = []
        for b in self.behaviours.items:
            out.append({"besked_id": "", "dataset": b.dataset or "", "channel": "", "indberetter": b.reporter,
                        "leveringsdato": (b.first or self.start).isoformat(), "defect": f"reporter_{b.kind}",
                        "rule_id": rule[b.kind], "field": b.field or "", "detail": b.detail,
                        "expected": f"{b.reporter_kind} {b.reporter} ranked among the worst reporters "
                                    "on the national overview"})
        return out

    def write_truth(self: Simulator, out: Path) -> None:
        """The simulator's own state, for tests (restricted: contains CPR)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        p = self.pop
        out.mkdir(parents=True, exist_ok=True)
        hp = self.history_persons  # persons only the first extract's history knows (history.py)
        persons = pa.table({
            "cpr": pa.array(p.cpr.tolist() + [h["cpr"] for h in hp], pa.string()),
            "foedselsdato": pa.concat_arrays([pa.array(p.birth.astype("datetime64[D]")),
                                              pa.array([h["birth"] for h in hp], pa.date32()).cast(pa.date32())]
                                             ) if hp else pa.array(p.birth.astype("datetime64[D]")),
            "koen": pa.array(np.where(p.male, "M", "K").tolist() + [h["koen"] for h in hp], pa.string()),
            "bopaelskommune": pa.array([f"{int(k):03d}" for k in p.bopael] + [h["kommune"] for h in hp], pa.string()),
            "opholdskommune": pa.array([f"{int(k):03d}" for k in p.ophold] + [h["kommune"] for h in hp], pa.string()),
            "akassekode": pa.array([f"{int(a):03d}" if a >= 0 else None for a in p.akasse] + [None] * len(hp),
                                   pa.string()),
        })
        pq.write_table(persons, out / "persons.parquet")
        sp = p.spells
        hs = self.history_spells
        spells = pa.table({
            "spell_id": pa.array([s.spell_id for s in sp] + [h["spell_id"] for h in hs], pa.string()),
            "cpr": pa.array([p.cpr[s.person] for s in sp] + [h["cpr"] for h in hs], pa.string()),
            "kontaktgruppe": pa.array([s.kg for s in sp] + [h["kg"] for h in hs], pa.int16()),
            "startdato": pa.array([s.start for s in sp] + [h["start"] for h in hs], pa.date32()),
            "slutdato": pa.array([s.end for s in sp] + [h["end"] for h in hs], pa.date32()),
            "persongruppe": pa.array([s.persongruppe or None for s in sp] + [None] * len(hs), pa.string()),
        })
        pq.write_table(spells, out / "spells.parquet")
        gl = self.group_log
        groups = pa.table({
            "cpr": pa.array([g[0] for g in gl], pa.string()),
            "fra_dato": pa.array([g[1] for g in gl], pa.date32()),
            "kontaktgruppe": pa.array([g[2] for g in gl], pa.int16()),
            "visitationsgruppe": pa.array([g[3] for g in gl], pa.int8()),
            "matchgruppe": pa.array([g[4] for g in gl], pa.int8()),
        })
        pq.write_table(groups, out / "groups.parquet")



def _write(path: Path, data: bytes) -> None:
    """Write via temp file + rename, so a reader never sees half a payload.

    No fsync: these are simulated sources, regenerated from the seed after a crash.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


OUTPUT_ENTRIES = ("webservice", "ftp", "portal", "drops", "truth", "ground_truth.csv", "generation.json")


def prepare_out(out: Path) -> None:
    """Start from an empty output: stale payloads of an earlier run must not mix in.

    Only a directory that is empty or holds an earlier generation is cleared.
    """
    import shutil

    if not out.exists():
        return
    entries = {p.name for p in out.iterdir()}
    if entries and "generation.json" not in entries:
        raise FileExistsError(f"{out} is not empty and holds no earlier generation; refusing to overwrite")
    for name in OUTPUT_ENTRIES:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


