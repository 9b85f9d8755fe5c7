"""What the first extract carries besides the open spells: the history the deliveries need.

The DFDG's first extract holds what was registered before the simulation starts.  Besides
the open kontaktgruppe spells (generate.py ``_bestand``) that is

* the current jobplan of about half of the persons in a spell, and the running
  beskæftigelsesforanstaltninger of a quarter (every revalidend and forrevalidend has one):
  a person who moves takes them to the tilflytningskommune (§ 39, stk. 11), a person under 18
  in kontaktgruppe 2-6 is delivered to UVM (§ 41, stk. 2);
* finished spells with løntilskud of persons born 1946-1952 in 2015-2016 (ATP and SKAT,
  § 41, stk. 3: persons of those years with løntilskud in 2010-2016).  They are older than
  the simulated population (15-66), so they exist only in this history.

All of it is registered on time (registreringsdato = the event) and delivered on the first day.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.contracts.validate import validate_record, validate_rules
from pipelines.simulate.population import cpr_for, open_spell

if TYPE_CHECKING:  # pragma: no cover
    from pipelines.simulate.generate import Simulator
    from pipelines.simulate.population import Spell

PLAN_STOCK = 0.5  # share of persons in a spell with a current plan
FORANSTALTNING_STOCK = 0.25  # share with a running foranstaltning
REVALIDERING_KG = (4, 5)  # revalidering/forrevalidering is itself a measure: always one running
# § 41, stk. 3: seniors with løntilskud 2010-2016, per 1M simulated persons (a handful per kommune)
SENIORS_PER_MILLION = 1000
LOENTILSKUD = ("10", "11")  # aktiveringstyper: løntilskud, privat / offentlig arbejdsgiver
ORDER_EFFECT = dt.date(2015, 6, 29)  # the order's effect date: no history before it
# § 41, stk. 2: revalidender and forrevalidender under 18 (kontaktgruppe 4-5 = § 38, nr. 4-5), whose
# measures go to UVM.  Rare (the groups' ages run to 64), so a generation holds at least UVM_MIN of them.
UVM_MIN = 3


def _past(rng: np.random.Generator, sp: Spell, day: dt.date, back: int = 180) -> dt.date:
    lo = max(sp.start, day - dt.timedelta(days=back))
    span = (day - lo).days
    return lo + dt.timedelta(days=int(rng.integers(0, span))) if span > 0 else lo


def first_extract(sim: Simulator, day: dt.date) -> None:
    """Plans, foranstaltninger and the seniors' history, delivered on ``day`` (the first)."""
    rng = sim.rng
    hrng = np.random.default_rng([sim.seed, 41])
    plan_c = sim.contracts.get("plan")
    for_c = sim.contracts.get("foranstaltning")
    _young_revalidender(sim, day, hrng)
    for sp in sim.pop.spells:
        if sp.end is not None or sp.start >= day:
            continue
        i = sp.person
        u = hrng.random(2)
        if plan_c is not None and u[0] < PLAN_STOCK and sim.in_personkreds(plan_c, i, day):
            ev = _past(rng, sp, day)
            rec = sim.emit("plan", i, ev, reg=ev, deliver=day, defect_ok=False, correctable=False, referenced=True,
                           changes_ok=False)
            if rec and plan_c.record_key and rec.get("cpr") == sim.pop.cpr[i]:
                sim.plans[i] = (rec[plan_c.record_key[0]], 1)
                sim.plan_records[i] = rec
        running = u[1] < FORANSTALTNING_STOCK or sp.kg in REVALIDERING_KG
        if for_c is not None and running and sim.in_personkreds(for_c, i, day):
            ev = _past(rng, sp, day)
            ends = day + dt.timedelta(days=int(hrng.integers(14, 300)))  # running: it ends after the extract
            sim.emit("foranstaltning", i, ev, {"slutdato": ends.isoformat()}, reg=ev, deliver=day, defect_ok=False, correctable=False, changes_ok=False)
    _seniors(sim, day, hrng)


def _young_revalidender(sim: Simulator, day: dt.date, hrng: np.random.Generator) -> None:
    """Open spells of kontaktgruppe 4-5 for 16-17-year-olds (still under 18 at the period's end) until
    UVM_MIN persons under 18 are in kontaktgruppe 2-6; their measure follows in the first extract."""
    p = sim.pop
    under18_end = p.age_on(sim.end) < 18
    have = sum(1 for sp in p.spells if sp.end is None and sp.kg in (2, 3, 4, 5, 6) and under18_end[sp.person])
    cands = np.flatnonzero((p.kg == 0) & (p.age_on(day) >= 16) & under18_end)
    want = min(UVM_MIN - have, len(cands))
    if want <= 0 or "kontaktgruppe" not in sim.contracts:
        return
    for i in np.sort(hrng.choice(cands, size=want, replace=False)):
        b = p.birth[i].astype(dt.date)
        sixteen = dt.date(b.year + 16, b.month, 28 if (b.month, b.day) == (2, 29) else b.day)
        start = max(sixteen + dt.timedelta(days=1), day - dt.timedelta(days=int(hrng.integers(14, 200))))
        if start >= day:
            continue
        sp = open_spell(p, sim.rng, int(i), 4 if hrng.random() < 0.75 else 5, start, registered=start)
        sim._bestand_spell(sp, day)


def _seniors(sim: Simulator, day: dt.date, hrng: np.random.Generator) -> None:
    """Persons born 1950-1952 with a dagpenge spell and a løntilskud job in 2015-2016 (§ 41, stk. 3)."""
    kg_c, for_c = sim.contracts.get("kontaktgruppe"), sim.contracts.get("foranstaltning")
    if kg_c is None or for_c is None:
        return
    n = int(round(SENIORS_PER_MILLION * sim.pop.size / 1_000_000))
    p = sim.pop
    on_date: dict[dt.date, int] = {}  # serials per birth date: 500 a day at most (cpr_for), any scale
    for k in range(n):
        birth = dt.date(1950, 1, 1) + dt.timedelta(days=int(hrng.integers(0, 3 * 365)))
        male = bool(hrng.random() < 0.5)
        nth = on_date[birth] = on_date.get(birth, -1) + 1
        cpr = cpr_for(birth, 4 * nth + int(hrng.integers(0, 4)), male)
        kommune = int(p.kommuner[hrng.choice(len(p.kommuner), p=p.kommune_weights)])
        start = ORDER_EFFECT + dt.timedelta(days=int(hrng.integers(1, 300)))
        end = start + dt.timedelta(days=int(hrng.integers(120, 400)))
        f_start = start + dt.timedelta(days=int(hrng.integers(0, 30)))
        f_end = min(end, f_start + dt.timedelta(days=int(hrng.integers(30, 180))))
        person: dict[str, Any] = {"cpr": cpr, "birth": birth, "kommunekode": kommune, "akassekode": -1,
                                  "kontaktgruppe": "1", "visitationsgruppe": None, "matchgruppe": None,
                                  "sygedagpengekategori": None, "persongruppe": None}
        spell = sim.emit("kontaktgruppe", None, start, {"startdato": start.isoformat(), "slutdato": end.isoformat(),
                                                        "persongruppe": None},
                         reg=start, deliver=day, defect_ok=False, correctable=False, changes_ok=False, person=person)
        ov = {"foranstaltningsart": "virksomhedsrettet", "aktiveringstype": LOENTILSKUD[k % 2],
              "startdato": f_start.isoformat(), "slutdato": f_end.isoformat()}
        for _ in range(20):  # another draw of the optional fields until the record is clean
            rec = sim.builders["foranstaltning"].build(np.random.default_rng([sim.seed, 41, k, _]),
                                                       {**sim.ctx(None, f_start, f_start, "create", 1), **person},
                                                       dict(ov))
            if not validate_record(for_c, {**rec, "cpr": cpr}) and not validate_rules(for_c, rec):
                break
        sim.emit("foranstaltning", None, f_start, {k2: v for k2, v in rec.items()
                                                   if k2 not in (for_c.record_key or [])},
                 reg=f_start, deliver=day, defect_ok=False, correctable=False, changes_ok=False, person=person)
        if spell is None:
            continue
        sim.history_persons.append({"cpr": cpr, "birth": birth, "koen": "M" if male else "K",
                                    "kommune": f"{kommune:03d}"})
        sim.history_spells.append({"spell_id": spell["kontaktgruppe_id"], "cpr": cpr, "kg": 1, "start": start,
                                   "end": end})
        sim.group_log.append((cpr, start, 1, 0, 0))


def on_spell_started(sim: Simulator, sp: Spell) -> None:
    """A revalidend's or forrevalidend's spell starts with its measure."""
    if sp.kg in REVALIDERING_KG and "foranstaltning" in sim.contracts \
            and sim.in_personkreds(sim.contracts["foranstaltning"], sp.person, sp.start):
        sim.emit("foranstaltning", sp.person, sp.start, correctable=False, changes_ok=False)
