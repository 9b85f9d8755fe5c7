"""The recipients declaration: § basis, minimised columns, DST's legal scope, schedules, file formats."""

from __future__ import annotations

import copy
import datetime as dt

import pyarrow as pa
import pytest
import yaml

from pipelines.contracts import load_contracts
from pipelines.deliveries import parse_period, period_of
from pipelines.deliveries.assets import DELIVERY_ASSETS, DELIVERY_SCHEDULES, asset_key
from pipelines.deliveries.cut import DeliveryError
from pipelines.deliveries.recipients import RECIPIENTS_FILE, RecipientError, get_recipient, load_recipients
from pipelines.deliveries.serialize import csv_bytes, parquet_bytes

EXPECTED = {"dst", "uvm", "atp_skat", "fff", "udbetaling_danmark", "ungedatabasen", "virksomhedsdata",
            "uddannelse_kommuner", "akasse", "jobcenter", "tilflytningskommune", "akasseskifte",
            "uddannelsesinstitution"}


def raw() -> dict:
    return yaml.safe_load(RECIPIENTS_FILE.read_text(encoding="utf-8"))


def load_variant(tmp_path, mutate) -> dict:
    d = copy.deepcopy(raw())
    mutate(d["recipients"])
    p = tmp_path / "recipients.yaml"
    p.write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    return load_recipients(p)


def test_every_recipient_carries_its_legal_basis():
    recs = load_recipients()
    assert set(recs) >= EXPECTED
    for r in recs.values():
        assert "§" in r.retsgrundlag and "§" in r.paragraf_tekst and r.population
        for f in r.filer:
            assert all("§" in c.paragraf and c.beskrivelse for c in f.kolonner), (r.id, f.navn)
            if r.cpr:
                assert f.column_names[0] == "cpr" or "cpr" in f.column_names


def test_field_lists_are_the_orders_lists():
    """Columns of the recipients whose § lists the information passed on (§ 41, stk. 2-5; § 42, stk. 1)."""
    cols = {rid: [c for f in get_recipient(rid).filer for c in f.column_names]
            for rid in ("uvm", "atp_skat", "fff", "udbetaling_danmark", "ungedatabasen")}
    assert cols["uvm"] == ["cpr", "foranstaltning", "startdato", "slutdato"]                       # § 41, stk. 2
    assert cols["atp_skat"] == ["cpr", "startdato", "slutdato"]                                     # § 41, stk. 3
    assert cols["fff"] == ["cpr", "kontaktgruppe", "kontaktgruppe_startdato", "foranstaltning",     # § 41, stk. 4
                           "startdato", "slutdato", "aktivitetsudbyder_cvr"]
    assert cols["udbetaling_danmark"] == ["cpr", "visitationsdato_fleksjob", "kontaktgruppe"]       # § 41, stk. 5
    assert cols["ungedatabasen"] == ["cpr", "oensket_startdato", "slutdato", "ophoersaarsag"]       # § 42, stk. 1
    inst = get_recipient("uddannelsesinstitution")                                                  # § 42, stk. 2
    paalaeg = next(f for f in inst.filer if f.navn == "paalaeg")
    assert {c.navn: c.paragraf.split(";")[0] for c in paalaeg.kolonner if c.navn != "uddannelsesplan_id"} == {
        "foedselsdato": "§ 42, stk. 2, nr. 1", "navn": "§ 42, stk. 2, nr. 2", "paalaegsdato": "§ 42, stk. 2, nr. 3",
        "paalagt_uddannelse": "§ 42, stk. 2, nr. 3", "fristdato": "§ 42, stk. 2, nr. 3",
        "risiko_saerlige_vanskeligheder": "§ 42, stk. 2, nr. 5"}
    assert all(c.paragraf.startswith("§ 42, stk. 2, nr. 4") for f in inst.filer if f.navn == "indsatser"
               for c in f.kolonner)
    assert not inst.cpr and inst.krypteret and not any("cpr" in f.column_names for f in inst.filer)
    # § 66, stk. 5 sends "oplysningerne i § 67": the same columns as the § 66, stk. 4 joblog
    skift = get_recipient("akasseskifte").filer[0].column_names
    assert skift[2:] == next(f for f in get_recipient("akasse").filer if f.navn == "joblog").column_names


def test_shared_derivations_enter_only_the_files_that_use_them():
    """The top-level faelles_cte (kommune timeline, moves, membership) are spliced in only where used."""
    assert "kg_version" not in get_recipient("uvm").filer[0].sql
    tilf = get_recipient("tilflytningskommune").filer[0].sql
    assert "kg_version" in tilf and "fct_kontaktgruppe_historik" in tilf and "medlemskab" not in tilf
    assert "medlem_bevis" in next(f for f in get_recipient("akasse").filer if f.navn == "indkaldelser").sql


def test_dst_gets_the_reported_areas_but_not_uvm_ssi_or_unrelated_chapters():
    dst = get_recipient("dst")
    got = {f.datasaet for f in dst.filer}
    contracts = load_contracts()
    allowed = {str(c) for c in range(3, 19)} | {"20"}
    assert got == {ds for ds, c in contracts.items() if c.chapter in allowed}
    assert not got & {"uddannelse", "ssi_lpr_kontakt", "ssi_sygesikring_kontakt", "ssi_misbrugsbehandling"}
    assert not got & {"akasse_oplysning", "syge_raskmelding", "stillingsopslag"}
    assert {"kontaktgruppe", "foranstaltning", "akasse_samtale", "haendelse_akasse", "joblog_jobsoegning"} <= got


def test_dst_columns_are_numeric_or_categorical_only():
    for f in get_recipient("dst").filer:
        c = load_contracts()[f.datasaet]
        for col in f.kolonner:
            field = c.field(col.navn)
            assert field.pii in ("none", "cpr"), (f.navn, col.navn, field.pii)
            assert field.type not in ("string", "text"), (f.navn, col.navn)
            assert not field.is_envelope
        dropped = [x.name for x in c.fields if x.pii in ("name", "contact", "free_text", "health")]
        assert not set(dropped) & set(f.column_names)
        assert "person_key" not in f.column_names and "cpr" in f.column_names
    sanktion = next(f for f in get_recipient("dst").filer if f.datasaet == "sanktion")
    assert "aegtefaelle_cpr" in sanktion.column_names  # both CPR link keys, resolved from the restricted zone
    assert "aegtefaelle_person_key" in sanktion.sql


def test_dst_scope_cannot_be_widened_to_chapters_24_or_25(tmp_path):
    def add(ch):
        def m(r):
            r["dst"]["kontrakter"]["kapitler"].append(ch)
            r["dst"]["kontrakter"]["udelukkede_kapitler"].pop(ch)
        return m

    for ch in ("24", "25"):
        with pytest.raises(RecipientError, match="§ 9"):
            load_variant(tmp_path, add(ch))

    def free_text(r):
        r["dst"]["kontrakter"]["typer"].append("text")
    with pytest.raises(RecipientError, match="free text"):
        load_variant(tmp_path, free_text)

    def health(r):
        r["dst"]["kontrakter"]["pii"].append("health")
    with pytest.raises(RecipientError):
        load_variant(tmp_path, health)


def test_declaration_errors_name_the_problem(tmp_path):
    def no_paragraph(r):
        r["fff"]["filer"][0]["kolonner"][1]["paragraf"] = "stk. 4"
    with pytest.raises(RecipientError, match="§ reference"):
        load_variant(tmp_path, no_paragraph)

    def bad_key(r):
        r["fff"]["filer"][0]["noegle"] = ["cpr", "navn"]
    with pytest.raises(RecipientError, match="key columns"):
        load_variant(tmp_path, bad_key)

    def cpr_unencrypted(r):
        r["fff"]["cpr"] = False
    with pytest.raises(RecipientError, match="encrypted"):
        load_variant(tmp_path, cpr_unencrypted)

    def cpr_without_encryption(r):
        r["fff"]["krypteret"] = False
    with pytest.raises(RecipientError, match="encrypted"):
        load_variant(tmp_path, cpr_without_encryption)

    def no_split_column(r):
        r["fff"]["opdeling"] = "kommune"
    with pytest.raises(RecipientError, match="_modtager"):
        load_variant(tmp_path, no_split_column)


def test_one_asset_per_recipient_and_one_stopped_schedule_per_kind():
    recs = load_recipients()
    assert {a.key for a in DELIVERY_ASSETS} == {asset_key(r) for r in recs}
    by_name = {s.name: s for s in DELIVERY_SCHEDULES}
    for r in recs.values():
        for kind, cron in r.tidsplan.items():
            s = by_name[f"levering_{r.id}_{kind}"]
            assert s.cron_schedule == cron and s.execution_timezone == "Europe/Copenhagen"
            assert s.default_status.value == "STOPPED"
    assert get_recipient("virksomhedsdata").periode == "uge"  # § 87: weekly


def test_periods():
    p = parse_period("2026-10")
    assert (p.fra, p.til) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert parse_period("2026-12").til == dt.date(2026, 12, 31)
    w = parse_period("2026-W42", "uge")
    assert (w.fra, w.til) == (dt.date(2026, 10, 12), dt.date(2026, 10, 18))
    assert period_of(dt.date(2026, 10, 18), "uge") == "2026-W42" and period_of(dt.date(2026, 2, 28), "maaned") == "2026-02"
    for bad in ("2026-13", "2026/10", "26-10"):
        with pytest.raises(DeliveryError):
            parse_period(bad)


def test_file_bytes_do_not_depend_on_chunking():
    rows = {"cpr": ["0101701234", None, "0202805678"], "startdato": [dt.date(2026, 1, 1), None, dt.date(2026, 2, 2)],
            "n": [1, 2, None], "l": [["a", "b"], [], None]}
    t1 = pa.table(rows)
    t2 = pa.concat_tables([t1.slice(0, 1), t1.slice(1, 1), t1.slice(2)])
    assert t2.column("cpr").num_chunks == 3
    assert parquet_bytes(t1) == parquet_bytes(t2)
    assert csv_bytes(t1) == csv_bytes(t2)
    text = csv_bytes(t1).decode("utf-8")
    assert text.splitlines() == ["cpr;startdato;n;l", "0101701234;2026-01-01;1;a|b", ";;2;", "0202805678;2026-02-02;;"]
