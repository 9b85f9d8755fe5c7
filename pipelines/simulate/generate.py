"""The synthetic Denmark: advance the population day by day and write what every
reporter would send, through its channel, on the day it registers it.

Deterministic by seed: one numpy Generator drives everything, files are written
in sorted order, and nothing reads the clock.

:class:`Simulator` holds the state and composes one mixin per concern: the day's events
(:mod:`.schedule`), the records they cause (:mod:`.emission`), background defects
(:mod:`.defects`), the issue-19 changes (:mod:`.changes`) and the writers (:mod:`.writers`);
reporter behaviour is in :mod:`.reporters`, the first extract's history in :mod:`.history`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.contracts import Contract, load_contracts
from pipelines.simulate import reporters
from pipelines.simulate.changes import ChangesMixin
from pipelines.simulate.defects import DEFECT_KINDS, DefectsMixin, _bilag1, applicable_defects, bilag1_allows
from pipelines.simulate.emission import EmissionMixin, Pending
from pipelines.simulate.population import Population, build_population
from pipelines.simulate.records import RecordBuilder, RuleView, Vocab, _matches
from pipelines.simulate.scales import SCALES, Scale
from pipelines.simulate.schedule import RATES, ScheduleMixin
from pipelines.simulate.writers import GROUND_TRUTH_COLUMNS, OUTPUT_ENTRIES, WritersMixin, _write, prepare_out


@dataclass
class GenerationResult:
    out: Path
    counts: dict[str, dict[str, dict[str, int]]]
    defects: int
    persons: int
    records: int = 0
    timings: dict[str, float] = field(default_factory=dict)


class Simulator(ScheduleMixin, EmissionMixin, DefectsMixin, ChangesMixin, WritersMixin):
    """Advances a :class:`Population` and turns its state into reporters' records (see the module)."""

    def __init__(self, scale: Scale, start: dt.date, days: int, seed: int,
                 defect_rate: float | None = None, bestand: bool = True) -> None:
        self.scale, self.start, self.days, self.seed = scale, start, days, seed
        self.end = start + dt.timedelta(days=days - 1)
        self.defect_rate = scale.defect_rate if defect_rate is None else defect_rate
        self.rng = np.random.default_rng(seed)
        self.contracts: dict[str, Contract] = load_contracts()
        self.vocab = Vocab()
        self.builders = {n: RecordBuilder(c, self.vocab) for n, c in self.contracts.items()}
        self.ruleviews = {n: RuleView.of(c) for n, c in self.contracts.items()}
        self.pop: Population = build_population(scale, start, self.rng)
        self.outbox: dict[dt.date, list[Pending]] = defaultdict(list)
        self.actions: dict[dt.date, list[Callable[[], None]]] = defaultdict(list)
        self.ground_truth: list[dict[str, Any]] = []
        self.last_reported: dict[tuple[str, int], Any] = {}
        self.plans: dict[int, tuple[str, int]] = {}
        self.plan_records: dict[int, dict[str, Any]] = {}  # person -> their plan's latest record
        self.moves_with_plan = 0  # moves whose plan goes to the tilflytningskommune (§ 39, stk. 11)
        self.akasse_changes = 0
        self.tilmeldinger: dict[int, str] = {}
        self.sygemeldinger: dict[str, str] = {}  # spell id -> uuid of the sygemelding
        self.created_on: dict[str, tuple[dt.date, int]] = {}  # key -> (delivery day, minute) of its create
        self.group_log: list[tuple[str, dt.date, int, int, int]] = []  # cpr, from, kg, visitation, match
        self.bilag1 = _bilag1()
        self.bestand = bestand
        self.eligible_cache: dict[tuple[str, dt.date], np.ndarray] = {}
        self.defect_kinds = {n: applicable_defects(c) for n, c in self.contracts.items()}
        self.defect_turn: dict[str, int] = {}
        self.last_defect: str | None = None
        self._init_changes()
        self.redeliveries: list[tuple] = []
        p = self.pop
        self.behaviours = reporters.choose(np.random.default_rng([seed, 12]), p.kommuner, p.kommune_weights,
                                           p.akasser, p.akasse_weights, start, days, set(self.contracts))
        self.history_persons: list[dict[str, Any]] = []
        self.history_spells: list[dict[str, Any]] = []

    def run(self, out: Path, progress: Callable[[dt.date], None] | None = None) -> GenerationResult:
        out.mkdir(parents=True, exist_ok=True)
        counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
        total = 0
        for k in range(self.days):
            day = self.start + dt.timedelta(days=k)
            self._today = day
            # actions scheduled for today need _today; run_day runs them first
            self.run_day(day)
            total += self.write_day(out, day, counts)
            if progress:
                progress(day)
        self.write_meta(out, counts, total)
        return GenerationResult(out, {k: dict(v) for k, v in counts.items()}, len(self.ground_truth),
                                self.pop.size, total)


def generate(out: Path, scale: str = "demo", start: dt.date = dt.date(2026, 10, 1), days: int = 14,
             seed: int = 1, defect_rate: float | None = None,
             progress: Callable[[dt.date], None] | None = None) -> GenerationResult:
    """Generate ``days`` days of every reporter's payloads under ``out`` (see docs/sources.md)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    prepare_out(Path(out))
    sim = Simulator(SCALES[scale], start, days, seed, defect_rate)
    return sim.run(Path(out), progress)


def iter_payload_files(out: Path) -> Iterator[Path]:
    for p in sorted(out.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            yield p


__all__ = ["generate", "Simulator", "GenerationResult", "Pending", "bilag1_allows", "_bilag1", "_matches",
           "prepare_out", "_write", "OUTPUT_ENTRIES", "GROUND_TRUTH_COLUMNS", "DEFECT_KINDS", "RATES"]
