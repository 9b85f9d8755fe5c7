"""Arbejdsdage for § 9: Monday to Friday except Danish public holidays (the ``holidays`` package).

§ 9, stk. 1 asks for notice "senest 40 arbejdsdage, inden ændringen idriftsættes"; stk. 2 lets
STAR postpone a late change "indtil 40 arbejdsdage efter underretningen".  Stk. 2's trigger says
"40 dage" but refers back to stk. 1 ("jf. stk. 1"), so both are read as 40 arbejdsdage.
Counting: the day of the notice itself is day 0; one arbejdsdag before a Monday go-live is the
Friday before (if it is not a holiday).
"""

from __future__ import annotations

import datetime as dt
import functools

import holidays

VARSEL_ARBEJDSDAGE = 40


@functools.cache
def _helligdage(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("DK", years=year, language="da")


def er_arbejdsdag(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in _helligdage(day.year)


def helligdag(day: dt.date) -> str | None:
    """The holiday's Danish name, if ``day`` is one."""
    return _helligdage(day.year).get(day)


def flyt_arbejdsdage(day: dt.date, n: int) -> dt.date:
    """The date ``n`` arbejdsdage after (n > 0) or before (n < 0) ``day``."""
    step = dt.timedelta(days=1 if n > 0 else -1)
    d, left = day, abs(n)
    while left:
        d += step
        if er_arbejdsdag(d):
            left -= 1
    return d


def arbejdsdage_mellem(fra: dt.date, til: dt.date) -> int:
    """Arbejdsdage after ``fra`` up to and including ``til`` (negative if ``til`` is earlier)."""
    if til < fra:
        return -arbejdsdage_mellem(til, fra)
    return sum(1 for k in range(1, (til - fra).days + 1) if er_arbejdsdag(fra + dt.timedelta(days=k)))


def seneste_rettidige_underretning(idriftsaettelse: dt.date) -> dt.date:
    """§ 9, stk. 1: the last day a notice is in time for a change going live on ``idriftsaettelse``."""
    return flyt_arbejdsdage(idriftsaettelse, -VARSEL_ARBEJDSDAGE)


def tidligste_idriftsaettelse(underrettet: dt.date) -> dt.date:
    """§ 9, stk. 2: the earliest go-live STAR must accept for a late notice given on ``underrettet``."""
    return flyt_arbejdsdage(underrettet, VARSEL_ARBEJDSDAGE)
