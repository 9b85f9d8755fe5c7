"""The synthetic population: persons and their kontaktgruppe spells over time.

A population simulator, not a row randomiser: every record the sources send
follows from the state held here (who is in which kontaktgruppe on which day,
in which kommune, in which a-kasse).  State is numpy arrays so that a
national-scale population (1M persons) advances a day in well under a second.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from pipelines.contracts import codelist
from pipelines.simulate.scales import (
    KG_PROFILES,
    KG_TRANSITIONS,
    MATCH,
    MOVE_RATE,
    OPHOLD_DIFFERS,
    PERSON_GROUP_SHARE,
    SDP_KATEGORI,
    VISITATION,
    Scale,
)

PERSON_GROUPS = ("", "dimittend", "uo", "ky", "may")
KGS = np.array(sorted(KG_PROFILES), dtype=np.int16)


def cpr_for(birth: dt.date, serial: int, male: bool) -> str:
    """A CPR number consistent with birth date, century digit and gender (odd = male).

    Since 2007 CPR numbers need not satisfy modulus 11, and python-stdnum does not
    require it; the 7th digit encodes the century as the CPR office does.  Distinct
    serials on one birth date give distinct numbers (2,000 a day before 2000, 3,000 after).
    """
    yy = birth.year % 100
    if 1937 <= birth.year <= 1999:
        digits7 = "0123"
    elif 2000 <= birth.year <= 2036:
        digits7 = "456789"
    else:  # pragma: no cover - the population is born 1937-2011
        raise ValueError(f"birth year {birth.year} outside the simulated range")
    d7 = digits7[serial % len(digits7)]
    rest = serial // len(digits7)
    if rest >= 500:
        raise ValueError(f"more than {500 * len(digits7)} persons born on {birth}")
    last = rest // 100 * 2 + (1 if male else 0)
    return f"{birth:%d%m}{yy:02d}{d7}{rest % 100:02d}{last}"


@dataclass
class Spell:
    """One kontaktgruppe spell (the unit of kontaktgruppe records)."""

    spell_id: str
    person: int
    kg: int
    start: dt.date
    end: dt.date | None = None
    persongruppe: str = ""
    registered: dt.date | None = None  # registration day of the create record
    version: int = 1  # version of the spell's latest kontaktgruppe record
    reported_start: dt.date | None = None  # a wrong start date reported until corrected (issue 19)
    reported_kg: int | None = None  # a wrong kontaktgruppe reported until corrected


@dataclass
class Population:
    """Person attributes and current state, as parallel numpy arrays."""

    cpr: np.ndarray
    birth: np.ndarray  # datetime64[D]
    male: np.ndarray
    bopael: np.ndarray  # kommunekode as int
    ophold: np.ndarray
    akasse: np.ndarray  # a-kassekode as int, -1 = not a member
    kg: np.ndarray  # current kontaktgruppe, 0 = none
    spell: np.ndarray  # index into spells, -1 = none
    visitation: np.ndarray  # 0 none
    match: np.ndarray  # 0 none
    sdp_kat: np.ndarray  # 0 none
    pgroup: np.ndarray  # index into PERSON_GROUPS
    uuid: UuidSource
    spells: list[Spell] = field(default_factory=list)
    kommuner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    kommune_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    akasser: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    akasse_weights: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def size(self) -> int:
        return len(self.cpr)

    def age_on(self, day: dt.date) -> np.ndarray:
        """Age in whole years on ``day`` for every person (vectorised)."""
        b = self.birth
        years = day.year - (b.astype("datetime64[Y]").astype(int) + 1970)
        month = b.astype("datetime64[M]").astype(int) % 12 + 1
        dom = (b - b.astype("datetime64[M]")).astype(int) + 1
        not_yet = month * 100 + dom > day.month * 100 + day.day
        return years - not_yet

    def age_of(self, i: int, day: dt.date) -> int:
        b = self.birth[i].astype(dt.date)
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def _weights(rows: tuple[dict[str, str], ...], column: str) -> np.ndarray:
    w = np.array([float(r.get(column) or 1.0) for r in rows])
    return w / w.sum()


def _choice_dict(rng: np.random.Generator, d: dict[int, float], n: int) -> np.ndarray:
    keys = np.array(list(d))
    p = np.array(list(d.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


class UuidSource:
    """Version-4 UUIDs from a seeded generator (deterministic, unlike uuid4()).

    Drawn in blocks of 4096 for speed; the sequence depends only on the seed.
    """

    BLOCK = 4096

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.pool: list[str] = []

    def __call__(self) -> str:
        if not self.pool:
            raw = np.frombuffer(self.rng.bytes(16 * self.BLOCK), dtype=np.uint8).reshape(self.BLOCK, 16).copy()
            raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
            raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
            hexes = [row.tobytes().hex() for row in raw]
            self.pool = [f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" for h in reversed(hexes)]
        return self.pool.pop()


def build_population(scale: Scale, start: dt.date, rng: np.random.Generator) -> Population:
    """Persons aged 15-66 at ``start`` with an initial stock of kontaktgruppe spells."""
    n = scale.persons
    kommune_rows = codelist("kommuner")
    akasse_rows = codelist("akasser")
    kommuner = np.array([int(r["kode"]) for r in kommune_rows], dtype=np.int16)
    kw = _weights(kommune_rows, "indbyggere")
    akasser = np.array([int(r["kode"]) for r in akasse_rows], dtype=np.int16)
    aw = _weights(akasse_rows, "medlemmer")

    # Ages 15-66 at start, roughly flat with fewer at the ends.
    age_days = rng.integers(15 * 365 + 1, 67 * 365 - 1, size=n)
    birth = np.datetime64(start, "D") - age_days.astype("timedelta64[D]")
    male = rng.random(n) < 0.5
    # unique CPR: serial per birth date
    order = np.argsort(birth, kind="stable")
    serial = np.zeros(n, dtype=np.int64)
    sb = birth[order]
    run_start = np.r_[0, np.flatnonzero(sb[1:] != sb[:-1]) + 1]
    counts = np.diff(np.r_[run_start, n])
    serial[order] = np.arange(n) - np.repeat(run_start, counts)
    serial = serial * 7 + rng.integers(0, 7, size=n)  # spread, still unique per date
    birth_py = birth.astype(dt.date)
    cpr = np.array([cpr_for(b, int(s), bool(m)) for b, s, m in zip(birth_py, serial, male, strict=True)],
                   dtype=object)

    bopael = kommuner[rng.choice(len(kommuner), size=n, p=kw)]
    ophold = bopael.copy()
    differs = rng.random(n) < OPHOLD_DIFFERS
    ophold[differs] = kommuner[rng.choice(len(kommuner), size=int(differs.sum()), p=kw)]
    akasse = np.where(rng.random(n) < 0.65, akasser[rng.choice(len(akasser), size=n, p=aw)], -1).astype(np.int16)

    pop = Population(
        cpr=cpr, birth=birth, male=male, bopael=bopael, ophold=ophold, akasse=akasse,
        kg=np.zeros(n, dtype=np.int16), spell=np.full(n, -1, dtype=np.int64),
        visitation=np.zeros(n, dtype=np.int8), match=np.zeros(n, dtype=np.int8),
        sdp_kat=np.zeros(n, dtype=np.int8), pgroup=np.zeros(n, dtype=np.int8), uuid=UuidSource(rng),
        kommuner=kommuner, kommune_weights=kw, akasser=akasser, akasse_weights=aw,
    )
    ages = pop.age_on(start)
    factor = n / 1_000_000
    for kg in KGS:
        prof = KG_PROFILES[int(kg)]
        want = int(round(prof.stock_per_million * factor))
        chosen = _draw_outside(pop, rng, want, prof.min_age, prof.max_age, ages)
        if len(chosen) == 0:
            continue
        # Spell already running: elapsed time ~ exponential with the mean duration,
        # capped so no spell starts before the order's effect date (2015-06-29).
        elapsed = np.minimum(rng.exponential(prof.mean_days, size=len(chosen)).astype(int) + 1, 3650)
        for i, e in zip(chosen, elapsed, strict=True):
            s = max(start - dt.timedelta(days=int(e)), dt.date(2015, 6, 29))
            open_spell(pop, rng, int(i), int(kg), s, registered=s)
    return pop


def _draw_outside(pop: Population, rng: np.random.Generator, want: int, min_age: int, max_age: int,
                  ages: np.ndarray) -> np.ndarray:
    """Up to ``want`` random persons with no kontaktgruppe and an age in range."""
    if want <= 0:
        return np.zeros(0, dtype=np.int64)
    ok = np.flatnonzero((pop.kg == 0) & (ages >= min_age) & (ages <= max_age))
    if len(ok) == 0:
        return ok
    return rng.choice(ok, size=min(want, len(ok)), replace=False)


def open_spell(pop: Population, rng: np.random.Generator, i: int, kg: int, start: dt.date,
                registered: dt.date) -> Spell:
    prof = KG_PROFILES[kg]
    pg = ""
    for group, share in PERSON_GROUP_SHARE.get(kg, {}).items():
        if rng.random() < share:
            pg = group
            break
    sp = Spell(pop.uuid(), i, kg, start, None, pg, registered)
    pop.spells.append(sp)
    pop.kg[i] = kg
    pop.spell[i] = len(pop.spells) - 1
    pop.pgroup[i] = PERSON_GROUPS.index(pg)
    pop.visitation[i] = _choice_dict(rng, VISITATION[kg], 1)[0] if kg in VISITATION else 0
    if pg in ("uo", "ky"):  # § 17, stk. 8-9: administratively KG 2, visitationsgruppe 1
        pop.visitation[i] = 1
    pop.match[i] = _choice_dict(rng, MATCH[kg], 1)[0] if kg in MATCH else 0
    pop.sdp_kat[i] = _choice_dict(rng, SDP_KATEGORI, 1)[0] if kg in (6, 24, 25) else 0
    if pop.akasse[i] < 0 and (kg == 1 or pg == "dimittend" or rng.random() < prof.akasse_share):
        # dagpenge (KG 1) and dimittend rights require membership; others join with the group's share
        pop.akasse[i] = pop.akasser[rng.choice(len(pop.akasser), p=pop.akasse_weights)]
    return sp


def close_spell(pop: Population, i: int, end: dt.date) -> Spell:
    sp = pop.spells[int(pop.spell[i])]
    sp.end = end
    pop.kg[i] = 0
    pop.spell[i] = -1
    pop.visitation[i] = 0
    pop.match[i] = 0
    pop.sdp_kat[i] = 0
    pop.pgroup[i] = 0
    return sp


@dataclass
class DayTransitions:
    ended: list[Spell]
    started: list[Spell]
    moved: list[tuple[int, int, int]]  # person, old kommune, new kommune


def advance_day(pop: Population, rng: np.random.Generator, day: dt.date) -> DayTransitions:
    """Spells that end on ``day`` (last day in the group) and spells starting the day after.

    A person leaving group A for group B has A end on ``day`` and B start on
    ``day + 1``, so spells never overlap (§ 16, stk. 6; rule KG-004).
    """
    factor = pop.size / 1_000_000
    ended: list[Spell] = []
    started: list[Spell] = []
    nxt = day + dt.timedelta(days=1)
    ages = pop.age_on(nxt)
    transfers: list[tuple[int, int]] = []
    for kg in KGS:
        kg = int(kg)
        prof = KG_PROFILES[kg]
        members = np.flatnonzero(pop.kg == kg)
        if len(members) == 0:
            continue
        too_old = members[(ages[members] > prof.max_age)]
        exits = members[rng.random(len(members)) < 1.0 / prof.mean_days]
        exits = np.union1d(exits, too_old)
        trans = KG_TRANSITIONS.get(kg, {})
        for i in exits:
            sp = close_spell(pop, int(i), day)
            ended.append(sp)
            u = rng.random()
            acc = 0.0
            for to, p in trans.items():
                acc += p
                if u < acc:
                    tp = KG_PROFILES[to]
                    if tp.min_age <= ages[i] <= tp.max_age:
                        transfers.append((int(i), to))
                    break
    for i, to in transfers:
        started.append(open_spell(pop, rng, i, to, nxt, registered=nxt))
    # inflow from outside keeps each group's stock stable in expectation
    for kg in KGS:
        kg = int(kg)
        prof = KG_PROFILES[kg]
        target = prof.stock_per_million * factor
        incoming = sum(1 for _, to in transfers if to == kg)
        lam = max(0.0, target / prof.mean_days - incoming * 0.5)
        # pull the stock back toward the target
        current = int((pop.kg == kg).sum())
        lam += max(0.0, (target - current) / 30.0)
        want = int(rng.poisson(lam))
        for i in _draw_outside(pop, rng, want, prof.min_age, prof.max_age, ages):
            started.append(open_spell(pop, rng, int(i), kg, nxt, registered=nxt))
    moved = []
    movers = np.flatnonzero(rng.random(pop.size) < MOVE_RATE)
    for i in movers:
        old = int(pop.bopael[i])
        new = int(pop.kommuner[rng.choice(len(pop.kommuner), p=pop.kommune_weights)])
        if new == old:
            continue
        pop.bopael[i] = new
        if pop.ophold[i] == old:
            pop.ophold[i] = new
        moved.append((int(i), old, new))
    return DayTransitions(ended, started, moved)
