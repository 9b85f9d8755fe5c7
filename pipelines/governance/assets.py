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


def _md(header: list[str], rows: list[list[object]]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset(group_name=GROUP, description="§ 6 tilslutningsaftaler per dataansvarlig aftager and channel.")
def tilslutningsaftaler(dsdw: DsdwResource) -> dg.MaterializeResult:
    today = dt.date.today()
    with _register(dsdw) as reg:
        aftaler = reg.aftaler()
    gyldige = [a for a in aftaler if a.gyldig(today)]
    return dg.MaterializeResult(metadata={
        "aftaler": len(aftaler), "gyldige_i_dag": len(gyldige),
        "tabel": _md(["aftager", "kanal", "§", "fra", "til"],
                     [[a.aftager, a.kanal, a.paragraf, a.gyldig_fra, a.gyldig_til or "-"] for a in aftaler])})


@dg.asset(group_name=GROUP, description="§ 8 closed access (ingestion refuses, deliveries withhold).")
def adgangslukninger(dsdw: DsdwResource) -> dg.MaterializeResult:
    today = dt.date.today()
    with _register(dsdw) as reg:
        lk = reg.lukninger()
    return dg.MaterializeResult(metadata={
        "lukket_i_dag": len([x for x in lk if x.lukket(today)]),
        "tabel": _md(["aftager", "fra", "til", "begrundelse"],
                     [[x.aftager, x.lukket_fra, x.lukket_til or "-", x.begrundelse] for x in lk])})


@dg.asset(group_name=GROUP, description="§ 9 notices of system changes; late ones flagged (40 arbejdsdage).")
def systemaendringer(dsdw: DsdwResource) -> dg.MaterializeResult:
    with _register(dsdw) as reg:
        us = reg.underretninger()
    return dg.MaterializeResult(metadata={
        "underretninger": len(us), "for_sene": len([u for u in us if u.for_sen]),
        "tabel": _md(["aftager", "underrettet", "idriftsættelse", "for sen", "tidligste tilladte"],
                     [[u.aftager, u.underrettet, u.planlagt_idriftsaettelse, "JA" if u.for_sen else "nej",
                       u.tidligste_tilladte] for u in us])})


@dg.asset(group_name=GROUP, description="§ 5 datagenopretningssager; action plans past their frist.")
def genopretningssager(dsdw: DsdwResource) -> dg.MaterializeResult:
    today = dt.date.today()
    with _register(dsdw) as reg:
        sager = reg.sager()
    return dg.MaterializeResult(metadata={
        "aabne": len([s for s in sager if s.status == "aaben"]),
        "handlingsplaner_efter_frist": len([s for s in sager if s.handlingsplan_overskredet(today)]),
        "tabel": _md(["sag", "aftager", "status", "åbnet", "handlingsplan frist"],
                     [[s.sag_id, s.aftager, s.status, s.aabnet, s.handlingsplan_frist or "-"] for s in sager])})


GOVERNANCE_ASSETS = [tilslutningsaftaler, adgangslukninger, systemaendringer, genopretningssager]
