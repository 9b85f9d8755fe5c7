"""Reporter behaviour: the few reporters whose data-quality reports must stand out (issue 12).

Real reporting problems are not spread evenly: a handful of kommuner and a-kasser register
systematically late, one sends a broken field for some days after a system change, one stops
delivering a dataset for a week.  The simulator picks them from the seed among the larger
reporters (so they have data every day, also at ``tiny`` scale) and lists each in the ground
truth; the national overview's ranking (pipelines/quality/report.py) must put them on top.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

# share of a late reporter's deadline-bound records registered after the deadline
LATE_SHARE = 0.5
# the field a "system change" breaks: the code-list field samtaleform, which every conversation record of the
# kommune carries (summons, first request, CV conversation, held conversation); one field of one dataset
# is too few records to show in a small kommune's week
BROKEN_FIELD = ("indkaldelse", "samtaleform", "99")
BROKEN_DATASETS = ("indkaldelse", "foerste_henvendelse", "cv_samtale", "samtale")
BROKEN_DAYS = 6
# the dataset a reporter stops delivering for a week (its records follow in one catch-up delivery)
STOPPED_DATASET = "samtale"
STOPPED_DAYS = 7


@dataclass
class Behaviour:
    """One reporter's systematic problem, as the ground truth lists it."""

    kind: str  # late | broken_field | stopped
    reporter_kind: str  # kommune | akasse
    reporter: str  # code, 3 digits
    dataset: str | None = None
    field: str | None = None
    first: dt.date | None = None
    last: dt.date | None = None
    datasets: tuple[str, ...] = ()  # every dataset the problem touches (a broken field: all that carry it)

    def active(self, day: dt.date) -> bool:
        return (self.first is None or self.first <= day) and (self.last is None or day <= self.last)

    @property
    def detail(self) -> str:
        if self.kind == "late":
            return f"registers about {int(LATE_SHARE * 100)} % of deadline-bound records after the deadline"
        if self.kind == "broken_field":
            return (f"system change: {self.field} carries an invalid code in {', '.join(self.datasets)} "
                    f"{self.first} - {self.last}")
        return f"no {self.dataset} delivered {self.first} - {self.last}; the records follow on {self.catch_up}"

    @property
    def catch_up(self) -> dt.date | None:
        return None if self.last is None else self.last + dt.timedelta(days=1)


@dataclass
class Behaviours:
    """Who behaves how; looked up per record by :class:`~pipelines.simulate.generate.Simulator`."""

    items: list[Behaviour] = field(default_factory=list)
    late: set[str] = field(default_factory=set)
    broken: dict[tuple[str, str], Behaviour] = field(default_factory=dict)  # (reporter, dataset) ->
    stopped: dict[tuple[str, str], Behaviour] = field(default_factory=dict)

    def is_late(self, reporter: str) -> bool:
        return reporter in self.late

    def broken_on(self, reporter: str, dataset: str, day: dt.date) -> Behaviour | None:
        """The system change that breaks ``dataset``'s field for ``reporter`` on ``day`` (or None)."""
        b = self.broken.get((reporter, dataset))
        return b if b is not None and b.active(day) else None

    def withheld(self, reporter: str, dataset: str, day: dt.date) -> dt.date | None:
        """The catch-up delivery day if ``reporter`` does not deliver ``dataset`` on ``day``."""
        b = self.stopped.get((reporter, dataset))
        return b.catch_up if b is not None and b.active(day) else None


def choose(rng: np.random.Generator, kommuner: np.ndarray, kommune_weights: np.ndarray, akasser: np.ndarray,
           akasse_weights: np.ndarray, start: dt.date, days: int, datasets: set[str]) -> Behaviours:
    """Two late kommuner, one late a-kasse, one broken field, one stopped dataset (distinct kommuner).

    Drawn among the largest kommuner and a-kasser: a problem reporter must have records every day
    for its problem to show (and for the overview to rank it), also at ``tiny`` scale.  The stop of
    one dataset needs the most volume (a week without the records of a reporter that sends a few a
    day is chance), so the largest kommune stops; the broken field is one of the next three, the late
    ones two of the six after them.
    """
    out = Behaviours()
    if days < 3:
        return out
    big_k = [f"{int(k):03d}" for k in kommuner[np.argsort(-kommune_weights, kind="stable")][:10]]
    big_a = [f"{int(a):03d}" for a in akasser[np.argsort(-akasse_weights, kind="stable")][:5]]
    broken = big_k[1 + int(rng.integers(3))]
    rest = big_k[4:10]
    ks = [rest[int(j)] for j in rng.permutation(len(rest))[:2]] + [broken, big_k[0]]
    a = big_a[int(rng.integers(len(big_a)))]
    end = start + dt.timedelta(days=days - 1)
    for code, kind in ((ks[0], "kommune"), (ks[1], "kommune"), (a, "akasse")):
        out.items.append(Behaviour("late", kind, code))
        out.late.add(code)
    ds, fld, _bad = BROKEN_FIELD
    if ds in datasets:
        first = start + dt.timedelta(days=min(2, days - 1))
        touched = tuple(d for d in BROKEN_DATASETS if d in datasets)
        b = Behaviour("broken_field", "kommune", ks[2], ds, fld, first,
                      min(end, first + dt.timedelta(days=BROKEN_DAYS - 1)), touched)
        out.items.append(b)
        for d in touched:
            out.broken[(ks[2], d)] = b
    if STOPPED_DATASET in datasets and days >= 5:
        first = start + dt.timedelta(days=min(2, days - 3))  # after a day of deliveries, so the stop shows
        last = min(end - dt.timedelta(days=1), first + dt.timedelta(days=STOPPED_DAYS - 1))
        b = Behaviour("stopped", "kommune", ks[3], STOPPED_DATASET, None, first, last)
        out.items.append(b)
        out.stopped[(ks[3], STOPPED_DATASET)] = b
    return out
