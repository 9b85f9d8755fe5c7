"""The governance register (issue 17): §§ 5, 6, 8, 9 as rules, its audit log, CLI, assets and demo seed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.governance import GovernanceError, Register, ingest_refusal, register_path
from pipelines.governance.arbejdsdage import (
    arbejdsdage_mellem,
    er_arbejdsdag,
    flyt_arbejdsdage,
    seneste_rettidige_underretning,
    tidligste_idriftsaettelse,
)
from pipelines.governance.demo import seed_demo
from pipelines.governance.hooks import identification_refusal

D = dt.date


@pytest.fixture
def reg(tmp_path: Path) -> Register:
    with Register(register_path(tmp_path), hvem="steward-a") as r:
        yield r


# ------------------------------------------------------------------ § 9 and arbejdsdage

def test_arbejdsdage_use_the_danish_public_holidays() -> None:
    # 24 December is a working day in law; 25 December (Friday) is juledag, then a weekend
    assert er_arbejdsdag(D(2026, 12, 24)) and not er_arbejdsdag(D(2026, 12, 25))
    assert flyt_arbejdsdage(D(2026, 12, 23), 3) == D(2026, 12, 29)
    # Easter 2027: skærtorsdag 25 March, langfredag 26 March, 2. påskedag 29 March
    assert flyt_arbejdsdage(D(2027, 3, 24), 1) == D(2027, 3, 30)
    # Store bededag is no longer a holiday from 2024 (the package knows; a hand list would not)
    assert er_arbejdsdag(D(2026, 5, 1))
    assert flyt_arbejdsdage(D(2027, 3, 30), -1) == D(2027, 3, 24)


def test_paragraph_9_forty_arbejdsdage_and_the_earliest_date(reg: Register) -> None:
    golive = D(2027, 1, 4)
    latest = seneste_rettidige_underretning(golive)
    assert arbejdsdage_mellem(latest, golive) == 40
    on_time = reg.add_underretning("101", "nyt fagsystem", latest, golive)
    late = reg.add_underretning("101", "nyt fagsystem", latest + dt.timedelta(days=1), golive)
    assert not on_time.for_sen and late.for_sen
    assert "§ 9, stk. 2" in late.vurdering() and "§ 9, stk. 1: rettidig" in on_time.vurdering()
    # § 9, stk. 2: a late change may wait until 40 arbejdsdage after the notice
    assert late.tidligste_tilladte == tidligste_idriftsaettelse(late.underrettet)
    assert arbejdsdage_mellem(late.underrettet, late.tidligste_tilladte) == 40
    assert late.tidligste_tilladte > golive
    with pytest.raises(GovernanceError, match="§ 9"):
        reg.add_underretning("101", "x", D(2027, 1, 5), D(2027, 1, 4))


# ------------------------------------------------------------------ § 6 and § 8

def test_paragraph_6_agreement_per_aftager_and_channel_with_validity(reg: Register) -> None:
    aid = reg.add_aftale("101", "webservice", D(2026, 1, 1), D(2026, 10, 31))
    reg.add_aftale("069", "portal", D(2026, 10, 2))
    day = D(2026, 10, 15)
    assert ingest_refusal(reg, "101", "webservice", day) is None
    assert "§ 6, stk. 3" in ingest_refusal(reg, "101", "portal", day)  # no portal agreement
    assert "§ 6, stk. 1" in ingest_refusal(reg, "101", "webservice", D(2026, 11, 1))  # expired
    assert "§ 6, stk. 1" in ingest_refusal(reg, "147", "webservice", day)  # none at all
    assert "§ 6, stk. 3" in ingest_refusal(reg, "069", "portal", D(2026, 10, 1))  # not yet valid
    assert ingest_refusal(reg, "069", "portal", D(2026, 10, 2)) is None
    # no agreement in the order for ftp (§ 52, stk. 4) or the drops; Jobnet is STAR's own
    assert ingest_refusal(reg, "147", "ftp", day) is None
    assert ingest_refusal(reg, "UVM", "filedrop", day) is None
    assert ingest_refusal(reg, "JOBNET", "webservice", day) is None
    reg.end_aftale(aid, D(2026, 10, 10))
    assert "§ 6, stk. 1" in ingest_refusal(reg, "101", "webservice", day)
    with pytest.raises(GovernanceError, match="§ 6"):
        reg.add_aftale("101", "ftp", D(2026, 1, 1))


def test_paragraph_6_stk_2_the_call_identifies_who_reports() -> None:
    page = {"dataset": "samtale", "dato": "2026-10-01", "indberetter": "101", "records": []}
    assert "§ 6, stk. 2" in identification_refusal(json.dumps(page).encode(), "101")
    page["identifikation"] = {"type": "automatisk", "dataansvarlig_aftager": "101"}
    assert identification_refusal(json.dumps(page).encode(), "101") is None
    page["identifikation"] = {"type": "automatisk", "dataansvarlig_aftager": "147"}
    assert "147" in identification_refusal(json.dumps(page).encode(), "101")
    page["identifikation"] = {"type": "manuel", "person": "sagsbehandler 4711"}
    assert identification_refusal(json.dumps(page).encode(), "101") is None
    page["identifikation"] = {"type": "manuel", "person": " "}
    assert "tom" in identification_refusal(json.dumps(page).encode(), "101")


def test_paragraph_8_closing_and_reopening(reg: Register) -> None:
    reg.add_aftale("101", "webservice", D(2026, 1, 1))
    reg.add_aftale("101", "portal", D(2026, 1, 1))
    reg.close_access("101", D(2026, 10, 4), "test før ibrugtagning ikke gennemført")
    assert "§ 8" in ingest_refusal(reg, "101", "webservice", D(2026, 10, 4))
    assert "§ 8" in ingest_refusal(reg, "101", "webservice", D(2026, 12, 1))  # closed until reopened
    assert ingest_refusal(reg, "101", "webservice", D(2026, 10, 3)) is None
    assert ingest_refusal(reg, "101", "portal", D(2026, 10, 4)) is None  # § 8 is about webservices
    with pytest.raises(GovernanceError, match="allerede lukket"):
        reg.close_access("101", D(2026, 10, 6), "igen")
    lk = reg.reopen_access("101", D(2026, 10, 5))
    assert lk.lukket_til == D(2026, 10, 4)
    assert "§ 8" in ingest_refusal(reg, "101", "webservice", D(2026, 10, 4))  # history stays: reruns agree
    assert ingest_refusal(reg, "101", "webservice", D(2026, 10, 5)) is None
    with pytest.raises(GovernanceError, match="begrundes"):
        reg.close_access("147", D(2026, 10, 4), " ")


# ------------------------------------------------------------------ § 5

def test_paragraph_5_case_steps_follow_the_order(reg: Register) -> None:
    sid = reg.open_sag("851", D(2026, 10, 5), "mange fejl")
    with pytest.raises(GovernanceError, match="§ 5, stk. 1"):
        reg.add_skridt(sid, "handlingsplan_krav", D(2026, 10, 5), "plan", frist=D(2026, 10, 9))
    reg.add_skridt(sid, "dialog", D(2026, 10, 5), "møde")
    with pytest.raises(GovernanceError, match="§ 5, stk. 2"):
        reg.add_skridt(sid, "handlingsplan_krav", D(2026, 10, 6), "plan uden frist")
    reg.add_skridt(sid, "handlingsplan_krav", D(2026, 10, 6), "plan", frist=D(2026, 10, 9))
    reg.add_skridt(sid, "ekstern_bistand", D(2026, 10, 7), "kommunens revision inddrages")
    with pytest.raises(GovernanceError, match="§ 5, stk. 4"):
        reg.add_skridt(sid, "beslutning", D(2026, 10, 8), "indhold og frister")
    reg.add_skridt(sid, "hoering", D(2026, 10, 8), "høring af kommunen")
    reg.add_skridt(sid, "beslutning", D(2026, 10, 9), "indhold og frister fastsat", frist=D(2026, 11, 1))
    reg.add_skridt(sid, "it_system", D(2026, 10, 9), "jobcenterløsning version 7")
    with pytest.raises(GovernanceError, match="allerede en åben"):
        reg.open_sag("851", D(2026, 10, 9), "igen")
    sag = reg.sag(sid)
    assert [s.paragraf for s in sag.skridt] == ["§ 5, stk. 1", "§ 5, stk. 2", "§ 5, stk. 3", "§ 5, stk. 4",
                                                "§ 5, stk. 4", "§ 5, stk. 5"]
    assert sag.paalagt_it_system == "jobcenterløsning version 7"
    # the action plan is overdue after its frist until it is received
    assert not sag.handlingsplan_overskredet(D(2026, 10, 9))
    assert [s.sag_id for s in reg.overskredne_handlingsplaner(D(2026, 10, 10))] == [sid]
    reg.add_skridt(sid, "handlingsplan_modtaget", D(2026, 10, 11), "planen modtaget")
    assert reg.overskredne_handlingsplaner(D(2026, 10, 12)) == []
    reg.add_skridt(sid, "afsluttet", D(2026, 10, 30), "data genoprettet")
    assert reg.sag(sid).status == "afsluttet" and reg.sager(aabne=True) == []
    with pytest.raises(GovernanceError, match="§ 5 gælder"):
        reg.open_sag("LEV-X", D(2026, 10, 5), "ikke en kommune")


def test_every_change_is_audited_with_who_and_when(reg: Register, tmp_path: Path) -> None:
    reg.add_aftale("101", "webservice", D(2026, 1, 1))
    with Register(register_path(tmp_path), hvem="steward-b") as other:
        other.close_access("101", D(2026, 10, 4), "grund")
    with pytest.raises(GovernanceError):
        reg.close_access("101", D(2026, 10, 4), "grund")  # refused: no audit row either
    rows = reg.audit()
    assert [(r["hvem"], r["handling"]) for r in rows] == [("steward-a", "tilslutningsaftale_indgaaet"),
                                                         ("steward-b", "adgang_lukket")]
    assert rows[1]["data"]["begrundelse"] == "grund" and rows[1]["data"]["paragraf"] == "§ 8"
    assert all(dt.datetime.fromisoformat(r["tid"]).tzinfo is not None for r in rows)


# ------------------------------------------------------------------ CLI, demo, assets

def test_cli_keeps_the_register(tmp_path: Path) -> None:
    from pipelines.cli import app

    runner = CliRunner()
    root = ["--root", str(tmp_path)]

    def run(*args: str) -> str:
        res = runner.invoke(app, [*args, *root, "--hvem", "cli-steward"] if args[-1] != "--ro" else
                            [*args[:-1], *root])
        assert res.exit_code == 0, res.output
        return res.output

    run("governance", "aftale", "add", "101", "--kanal", "webservice", "--fra", "2026-01-01")
    run("governance", "adgang", "close", "101", "--fra", "2026-10-04", "--begrundelse", "manglende test")
    out = run("governance", "underretning", "101", "--beskrivelse", "nyt system", "--underrettet", "2026-10-03",
              "--idriftsaettelse", "2026-10-08")
    assert "for sen" in out
    run("governance", "sag", "open", "101", "--dato", "2026-10-05", "--begrundelse", "fejl")
    bad = runner.invoke(app, ["governance", "sag", "step", "1", "beslutning", "--dato", "2026-10-06", "--tekst",
                              "x", *root])
    assert bad.exit_code == 2 and "§ 5, stk. 1" in bad.output
    with Register(register_path(tmp_path)) as reg:
        assert {r["hvem"] for r in reg.audit()} == {"cli-steward"}
        assert reg.lukning("101", D(2026, 10, 4)) is not None
        assert reg.underretninger("101")[0].for_sen


def test_demo_seed(tmp_path: Path) -> None:
    start = D(2026, 10, 1)
    with Register(register_path(tmp_path), hvem="demo") as reg:
        g = seed_demo(reg, start, 14)
        again = seed_demo(reg, start, 14)
        assert again.sag_id == g.sag_id and len(reg.aftaler()) == g.aftaler
        assert "§ 8" in ingest_refusal(reg, g.lukket_aftager, "webservice", g.lukket_dag)
        assert ingest_refusal(reg, g.lukket_aftager, "webservice", g.lukket_dag + dt.timedelta(days=1)) is None
        assert ingest_refusal(reg, "147", "webservice", start) is None  # every reporter has its agreement
        assert reg.underretninger()[0].for_sen
        assert [s.sag_id for s in reg.overskredne_handlingsplaner(start + dt.timedelta(days=13))] == [g.sag_id]
        assert reg.testmiljoe_adgang("LEV-JOBSYS", start) == ("§ 10, stk. 2", [g.lukket_aftager])
        assert reg.testmiljoe_adgang("LEV-NYAPP", start)[0] == "§ 11"


def test_dagster_assets_publish_the_register(tmp_path: Path) -> None:
    import dagster as dg

    from pipelines.assets.ingestion import DsdwResource
    from pipelines.governance.assets import GOVERNANCE_ASSETS

    with Register(register_path(tmp_path), hvem="demo") as reg:
        seed_demo(reg, dt.date.today() - dt.timedelta(days=13), 14)
    res = dg.materialize(GOVERNANCE_ASSETS, resources={"dsdw": DsdwResource(root=str(tmp_path))})
    assert res.success
    meta = {m.asset_key.path[-1]: m.metadata for m in res.get_asset_materialization_events()
            for m in [m.materialization]}
    assert meta["systemaendringer"]["for_sene"].value == 1
    assert meta["genopretningssager"]["handlingsplaner_efter_frist"].value == 1
    assert meta["tilslutningsaftaler"]["gyldige_i_dag"].value > 100
