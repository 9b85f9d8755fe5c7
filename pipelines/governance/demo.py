"""The demo's governance story (issue 17): agreements for every reporter, one closed day, one late
§ 9 notice, one § 5 case with an action plan that runs past its frist, and two vendors.

Call :func:`seed_demo` before the demo's first ingestion: from then on the register is active, so
every webservice and portal reporter needs its agreement (all get one; FTP and the UVM/SSI drops
need none, Jobnet is STAR's own system), the closed aftager's deliveries of that day are refused
(reason in the ledger) and its deliveries withheld.

The closed day is never the first delivery day: that day carries every reporter's opening stock (the
open kontaktgruppe spells), and refusing a large kommune's stock leaves its persons without a spell,
so the other feeds' personkreds rules (Jobnet's joblog, SSI's sygesikring contacts: datasets the
register does not govern) would rightly fail and block their partitions: the closure would then
show as a Jobnet/SSI defect instead of as a refused reporter.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pipelines.contracts import codelist_codes, load_contracts
from pipelines.governance.register import Register
from pipelines.landing.ledger import read_only

#: BEK 912/2015 took effect 1 August 2015; older agreements continue (§ 112, stk. 6).
AFTALER_FRA = dt.date(2015, 8, 1)


@dataclass(frozen=True)
class DemoGovernance:
    """What :func:`seed_demo` recorded, for the demo's printout and its tests."""

    aftaler: int
    lukket_aftager: str
    lukket_dag: dt.date
    underretning_id: int
    sag_id: int
    sag_aftager: str
    leverandoerer: tuple[str, ...]


def _channels(kind: str) -> set[str]:
    reporter = "jobcenter" if kind == "kommune" else "akasse"
    return {c.channel for c in load_contracts().values() if c.reporter == reporter} & {"webservice", "portal"}


def demo_roles(behaviour: list[dict]) -> dict[str, object]:
    """seed_demo's keyword arguments from the simulator's problem reporters (generation.json's
    ``reporter_behaviour``): the § 9 notice for the kommune whose "system change" breaks a field (go-live
    on the first broken day), the § 5 case for a systematically late kommune, the § 8 closure for a large
    kommune with no problem of its own.  Empty behaviour (a demo under 3 days): seed_demo's defaults."""
    kommuner = [b for b in behaviour if b.get("reporter_kind") == "kommune"]
    problem = {b["reporter"] for b in kommuner}
    out: dict[str, object] = {}
    broken = next((b for b in kommuner if b["kind"] == "broken_field"), None)
    if broken:
        out["underretning_aftager"] = broken["reporter"]
        first = broken.get("first") or re.search(r"\d{4}-\d{2}-\d{2}", str(broken.get("detail", "")))
        if first:  # the system change's first broken day (generation.json says it in the detail)
            out["idriftsaettelse"] = dt.date.fromisoformat(first if isinstance(first, str) else first.group())
    late = next((b for b in kommuner if b["kind"] == "late"), None)
    if late:
        out["sag_aftager"] = late["reporter"]
    out["lukket_aftager"] = next(k for k in ("101", "751", "461", "561", "851", "157") if k not in problem)
    return out


def seed_demo(register: Register, start_date: dt.date, days: int = 14, *, lukket_aftager: str = "101",
              sag_aftager: str = "851", underretning_aftager: str = "461",
              idriftsaettelse: dt.date | None = None) -> DemoGovernance:
    """Record the demo's governance events relative to ``start_date`` (idempotent: a seeded register is kept).

    ``sag_aftager`` should be the reporter the simulator makes misbehave, so its page shows why;
    ``idriftsaettelse``: the § 9 notice's planned go-live (default: a week into the period).
    """
    existing = register.sager(sag_aftager)
    if register.aftaler() and existing:
        u = register.underretninger(underretning_aftager)
        lk = register.lukninger(lukket_aftager)
        return DemoGovernance(len(register.aftaler()), lukket_aftager, lk[0].lukket_fra if lk else start_date,
                              u[0].underretning_id if u else 0, existing[0].sag_id, sag_aftager,
                              ("LEV-JOBSYS", "LEV-NYAPP"))
    n = 0
    for kind, codes in (("kommune", codelist_codes("kommuner")), ("akasse", codelist_codes("akasser"))):
        for code in codes:
            for kanal in sorted(_channels(kind)):
                register.add_aftale(code, kanal, AFTALER_FRA, aftager_type=kind,
                                    note="videreført efter § 112, stk. 6")
                n += 1
    # § 8: one day closed - the middle delivery day, the day of the demo's mid-period delivery cut, so both
    # the refused ingestion and the withheld delivery show - reopened the next; never the first day (the
    # opening stock, see the module's docstring): in a 1-day demo the closure lies after the period
    lukket = start_date + dt.timedelta(days=max(1, max(days - 1, 0) // 2))
    register.close_access(lukket_aftager, lukket, "tilslutningsbetingelserne er ikke overholdt: test før "
                          "ibrugtagning af ny webserviceklient ikke gennemført (§ 6, stk. 1)")
    register.reopen_access(lukket_aftager, lukket + dt.timedelta(days=1))
    # § 9: a late notice - given a few days before go-live (default: 3 days into the period for a go-live
    # a week in), far less than 40 arbejdsdage before
    idrift = idriftsaettelse or start_date + dt.timedelta(days=min(7, max(days - 1, 2)))
    u = register.add_underretning(underretning_aftager, "Skift af sagsbehandlingssystem (ny version af "
                                  "jobcenterløsningen)",
                                  idrift - dt.timedelta(days=5) if idriftsaettelse else start_date + dt.timedelta(days=2),
                                  idrift)
    # § 5: dialog, then an action plan required with a frist that passes inside the period
    sid = register.open_sag(sag_aftager, start_date + dt.timedelta(days=4), "vedvarende fejl og forsinkede "
                            "indberetninger i datakvalitetsrapporten")
    register.add_skridt(sid, "dialog", start_date + dt.timedelta(days=4), "møde med kommunens "
                        "indberetningsansvarlige om fejlene")
    register.add_skridt(sid, "handlingsplan_krav", start_date + dt.timedelta(days=5),
                        "konkret handlingsplan for genopretning af data", frist=start_date + dt.timedelta(days=9))
    # §§ 10-11: a vendor with a customer under agreement, and one without customers but with its own agreement
    register.add_kunde("LEV-JOBSYS", lukket_aftager, "jobcenterløsning", AFTALER_FRA)
    register.add_aftale("LEV-NYAPP", "webservice", start_date, aftager_type="leverandoer",
                        note="§ 11: applikation under udvikling")
    return DemoGovernance(n + 1, lukket_aftager, lukket, u.underretning_id, sid, sag_aftager,
                          ("LEV-JOBSYS", "LEV-NYAPP"))


def demo_summary(root: str | object) -> list[str]:
    """Lines for the demo's printout: what the register holds and what ingestion refused because of it."""
    from pathlib import Path

    from pipelines.governance.register import register_path

    path = register_path(Path(str(root)))
    if not path.exists():
        return []
    with Register(path, readonly=True) as reg:
        aftaler, lk, us, sager = reg.aftaler(), reg.lukninger(), reg.underretninger(), reg.sager()
    lines = [f"§ 6: {len(aftaler)} tilslutningsaftaler"]
    lines += [lkx.grund() for lkx in lk]
    lines += [f"§ 9: {u.aftager} {u.beskrivelse}: {u.vurdering()}" for u in us if u.for_sen]
    lines += [f"§ 5: sag {s.sag_id} for {s.aftager} ({s.status}), handlingsplan frist {s.handlingsplan_frist}"
              for s in sager]
    ledger = Path(str(root)) / "ledger.sqlite"
    if ledger.exists():
        with read_only(ledger) as con:
            rows = con.execute("SELECT reporter, leveringsdato, count(*), min(error) FROM payloads WHERE status='rejected' "
                               "AND error LIKE 'afvist: §%' GROUP BY 1, 2 ORDER BY 2, 1").fetchall()
        lines += [f"afvist ved indlæsning: {rep} {d}: {n} payloads ({err.split(':')[1].strip()})"
                  for rep, d, n, err in rows]
    return lines
