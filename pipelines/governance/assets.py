"""The governance register as Dagster assets (issue 17): one observable view per duty.

The register is kept by people through ``dsdw governance``; these assets read it and publish
what the steward acts on (agreements in force, closed access, late § 9 notices, § 5 cases and
overdue action plans) as materialization metadata, so the Dagster UI shows it beside ingestion.
They write nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from pipelines.assets.ingestion import DsdwResource
from pipelines.governance.register import Register, register_path

GROUP = "styring"


def _register(dsdw: DsdwResource) -> Register:
    path = register_path(Path(dsdw.root))
    if not path.exists():
        raise dg.Failure(f"no governance register at {path}: create it with `dsdw governance aftale add ...`")
    return Register(path, readonly=True)


def _read(dsdw: DsdwResource, kind: str) -> list:
    """One list of the register (``aftaler``, ``lukninger``, ...), read and closed again."""
    with _register(dsdw) as reg:
        return getattr(reg, kind)()


def _result(header: list[str], rows: list[list[object]], **counts: int) -> dg.MaterializeResult:
    """The steward's counts and the register's rows as a Markdown table ``tabel``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return dg.MaterializeResult(metadata={**counts, "tabel": dg.MetadataValue.md("\n".join(lines))})


@dg.asset(group_name=GROUP, description="§ 6 tilslutningsaftaler per dataansvarlig aftager and channel.")
def tilslutningsaftaler(dsdw: DsdwResource) -> dg.MaterializeResult:
    aftaler = _read(dsdw, "aftaler")
    return _result(["aftager", "kanal", "§", "fra", "til"],
                   [[a.aftager, a.kanal, a.paragraf, a.gyldig_fra, a.gyldig_til or "-"] for a in aftaler],
                   aftaler=len(aftaler), gyldige_i_dag=sum(a.gyldig(dt.date.today()) for a in aftaler))


@dg.asset(group_name=GROUP, description="§ 8 closed access (ingestion refuses, deliveries withhold).")
def adgangslukninger(dsdw: DsdwResource) -> dg.MaterializeResult:
    lk = _read(dsdw, "lukninger")
    return _result(["aftager", "fra", "til", "begrundelse"],
                   [[x.aftager, x.lukket_fra, x.lukket_til or "-", x.begrundelse] for x in lk],
                   lukket_i_dag=sum(x.lukket(dt.date.today()) for x in lk))


@dg.asset(group_name=GROUP, description="§ 9 notices of system changes; late ones flagged (40 arbejdsdage).")
def systemaendringer(dsdw: DsdwResource) -> dg.MaterializeResult:
    us = _read(dsdw, "underretninger")
    return _result(["aftager", "underrettet", "idriftsættelse", "for sen", "tidligste tilladte"],
                   [[u.aftager, u.underrettet, u.planlagt_idriftsaettelse, "JA" if u.for_sen else "nej",
                     u.tidligste_tilladte] for u in us],
                   underretninger=len(us), for_sene=sum(u.for_sen for u in us))


@dg.asset(group_name=GROUP, description="§ 5 datagenopretningssager; action plans past their frist.")
def genopretningssager(dsdw: DsdwResource) -> dg.MaterializeResult:
    sager = _read(dsdw, "sager")
    return _result(["sag", "aftager", "status", "åbnet", "handlingsplan frist"],
                   [[s.sag_id, s.aftager, s.status, s.aabnet, s.handlingsplan_frist or "-"] for s in sager],
                   aabne=sum(s.status == "aaben" for s in sager),
                   handlingsplaner_efter_frist=sum(s.handlingsplan_overskredet(dt.date.today()) for s in sager))


GOVERNANCE_ASSETS = [tilslutningsaftaler, adgangslukninger, systemaendringer, genopretningssager]
