"""``dsdw governance ...`` and ``dsdw testdata ...``: the data steward's commands (issue 17)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pipelines.governance.register import GovernanceError, Register, register_path

governance_app = typer.Typer(help="Styring af indberetterne (BEK 912/2015 §§ 5, 6, 8, 9): tilslutningsaftaler, "
                                  "lukning af adgang, underretninger om systemændringer, datagenopretning.",
                             no_args_is_help=True)
aftale_app = typer.Typer(help="§ 6 tilslutningsaftaler.", no_args_is_help=True)
adgang_app = typer.Typer(help="§ 8 lukning og genåbning af adgang.", no_args_is_help=True)
sag_app = typer.Typer(help="§ 5 datagenopretningssager.", no_args_is_help=True)
governance_app.add_typer(aftale_app, name="aftale")
governance_app.add_typer(adgang_app, name="adgang")
governance_app.add_typer(sag_app, name="sag")
testdata_app = typer.Typer(help="§§ 10-11 testmiljøer: anonymiserede udtræk til it-leverandører.",
                           no_args_is_help=True)
console = Console()

ROOT = typer.Option(Path("data/demo/pipeline"), "--root", help="The environment (register beside the ledger).")
HVEM = typer.Option(None, "--hvem", help="Who makes the change (audit log); default $DSDW_USER or the login.")


def _d(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _reg(root: Path, hvem: str | None = None) -> Register:
    return Register(register_path(root), hvem)


def _run(fn):  # noqa: ANN001, ANN202 - tiny wrapper turning the order's refusals into CLI errors
    try:
        return fn()
    except GovernanceError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@aftale_app.command("add")
def aftale_add(aftager: str, kanal: str = typer.Option(..., help="webservice | portal"),
               fra: str = typer.Option(...), til: str | None = typer.Option(None),
               aftager_type: str | None = typer.Option(None, help="kommune|akasse|myndighed|leverandoer"),
               note: str | None = None, root: Path = ROOT, hvem: str | None = HVEM) -> None:
    """Record a tilslutningsaftale (§ 6, stk. 1 webservice, stk. 3 portal)."""
    with _reg(root, hvem) as reg:
        aid = _run(lambda: reg.add_aftale(aftager, kanal, _d(fra), _d(til), aftager_type, note))
    console.print(f"tilslutningsaftale {aid}: {aftager} {kanal} fra {fra}")


@aftale_app.command("end")
def aftale_end(aftale_id: int, til: str = typer.Option(...), root: Path = ROOT, hvem: str | None = HVEM) -> None:
    """Terminate an agreement (valid up to and including --til)."""
    with _reg(root, hvem) as reg:
        _run(lambda: reg.end_aftale(aftale_id, _d(til)))
    console.print(f"tilslutningsaftale {aftale_id} gyldig til {til}")


@aftale_app.command("list")
def aftale_list(aftager: str | None = None, root: Path = ROOT) -> None:
    """Every agreement."""
    with _reg(root) as reg:
        t = Table("id", "aftager", "type", "kanal", "§", "gyldig fra", "gyldig til")
        for a in reg.aftaler(aftager):
            t.add_row(str(a.aftale_id), a.aftager, a.aftager_type, a.kanal, a.paragraf, str(a.gyldig_fra),
                      str(a.gyldig_til or "indtil opsigelse"))
    console.print(t)


@adgang_app.command("close")
def adgang_close(aftager: str, fra: str = typer.Option(...), begrundelse: str = typer.Option(...),
                 root: Path = ROOT, hvem: str | None = HVEM) -> None:
    """Close the aftager's access to read, register and receive via webservices (§ 8)."""
    with _reg(root, hvem) as reg:
        _run(lambda: reg.close_access(aftager, _d(fra), begrundelse))
    console.print(f"§ 8: {aftager}s adgang lukket fra {fra}")


@adgang_app.command("reopen")
def adgang_reopen(aftager: str, dato: str = typer.Option(..., help="First open day."), root: Path = ROOT,
                  hvem: str | None = HVEM) -> None:
    """Reopen the access from --dato."""
    with _reg(root, hvem) as reg:
        lk = _run(lambda: reg.reopen_access(aftager, _d(dato)))
    console.print(lk.grund())


@adgang_app.command("list")
def adgang_list(root: Path = ROOT) -> None:
    """Every closure, open or ended."""
    with _reg(root) as reg:
        for lk in reg.lukninger():
            console.print(lk.grund())


@governance_app.command("underretning")
def underretning(aftager: str, beskrivelse: str = typer.Option(...), underrettet: str = typer.Option(...),
                 idriftsaettelse: str = typer.Option(..., help="Planned go-live."), root: Path = ROOT,
                 hvem: str | None = HVEM) -> None:
    """File a notice of a system change (§ 9); says whether it is in time and the earliest allowed go-live."""
    with _reg(root, hvem) as reg:
        u = _run(lambda: reg.add_underretning(aftager, beskrivelse, _d(underrettet), _d(idriftsaettelse)))
    console.print(f"underretning {u.underretning_id}: {u.vurdering()}")


@governance_app.command("underretninger")
def underretninger(aftager: str | None = None, as_json: bool = typer.Option(False, "--json"),
                   root: Path = ROOT) -> None:
    """Every § 9 notice with its check."""
    with _reg(root) as reg:
        rows = [u.as_dict() for u in reg.underretninger(aftager)]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    t = Table("id", "aftager", "underrettet", "idriftsættelse", "seneste rettidige", "for sen", "tidligste tilladte")
    for r in rows:
        t.add_row(str(r["underretning_id"]), r["aftager"], r["underrettet"], r["planlagt_idriftsaettelse"],
                  r["seneste_rettidige"], "JA" if r["for_sen"] else "nej", r["tidligste_tilladte"])
    console.print(t)


@sag_app.command("open")
def sag_open(aftager: str, dato: str = typer.Option(...), begrundelse: str = typer.Option(...),
             root: Path = ROOT, hvem: str | None = HVEM) -> None:
    """Open a datagenopretning case (§ 5)."""
    with _reg(root, hvem) as reg:
        sid = _run(lambda: reg.open_sag(aftager, _d(dato), begrundelse))
    console.print(f"genopretningssag {sid} åbnet for {aftager}")


@sag_app.command("step")
def sag_step(sag_id: int, skridt: str = typer.Argument(..., help="dialog | handlingsplan_krav | "
                                                                 "handlingsplan_modtaget | ekstern_bistand | hoering"
                                                                 " | beslutning | it_system | afsluttet"),
             dato: str = typer.Option(...), tekst: str = typer.Option(...), frist: str | None = None,
             root: Path = ROOT, hvem: str | None = HVEM) -> None:
    """Add a step to a case (dialog, action plan with frist, external assistance, decision, IT system, close)."""
    with _reg(root, hvem) as reg:
        s = _run(lambda: reg.add_skridt(sag_id, skridt, _d(dato), tekst, _d(frist)))
    console.print(f"sag {sag_id} skridt {s.nr}: {s.skridt} ({s.paragraf})")


@sag_app.command("list")
def sag_list(aftager: str | None = None, root: Path = ROOT, today: str | None = None) -> None:
    """Every case with its steps; flags action plans past their frist."""
    day = _d(today) or dt.date.today()
    with _reg(root) as reg:
        for s in reg.sager(aftager):
            flag = " [red]handlingsplan efter fristen[/red]" if s.handlingsplan_overskredet(day) else ""
            console.print(f"sag {s.sag_id} {s.aftager} {s.status} åbnet {s.aabnet}: {s.begrundelse}{flag}")
            for k in s.skridt:
                console.print(f"  {k.nr}. {k.dato} {k.skridt} ({k.paragraf}) {k.tekst}"
                              + (f" frist {k.frist}" if k.frist else ""))


@governance_app.command("kunde")
def kunde(leverandoer: str, aftager: str, applikation: str = typer.Option(...), fra: str = typer.Option(...),
          til: str | None = None, root: Path = ROOT, hvem: str | None = HVEM) -> None:
    """Record that an it-leverandør's application has a dataansvarlig customer (§ 10, stk. 2)."""
    with _reg(root, hvem) as reg:
        reg.add_kunde(leverandoer, aftager, applikation, _d(fra), _d(til))
    console.print(f"{leverandoer}: kunde {aftager} ({applikation}) fra {fra}")


@governance_app.command("audit")
def audit(root: Path = ROOT) -> None:
    """Every change to the register: who, when, what."""
    with _reg(root) as reg:
        t = Table("seq", "tid", "hvem", "handling", "nøgle", "data")
        for a in reg.audit():
            t.add_row(str(a["seq"]), a["tid"], a["hvem"], a["handling"], a["noegle"],
                      json.dumps(a["data"], ensure_ascii=False))
    console.print(t)


@testdata_app.command("extract")
def testdata_extract(vendor: str = typer.Option(..., "--vendor", help="The it-leverandør."),
                     aftager: str | None = typer.Option(None, "--aftager", help="Only this customer's data."),
                     out: Path | None = typer.Option(None, help="Default <root>/testdata/<vendor>-<id>."),
                     day: str | None = typer.Option(None, "--dato", help="Access judged on this day (default "
                                                                         "today)."),
                     root: Path = ROOT) -> None:
    """Anonymised extract for a vendor's test environment (§ 10, stk. 2 or § 11), refused otherwise."""
    from pipelines.governance.testdata import TestdataRefused, extract

    try:
        res = extract(root, vendor, aftager=aftager, out=out, day=_d(day))
    except (TestdataRefused, GovernanceError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"{res.hjemmel}: {res.records} records, {res.persons} persons, {len(res.files)} files -> "
                  f"{res.out_dir} (key: {res.key_path})")
