"""Contracts: every dataset of DOMAIN.md section 3 has one, and each is valid and complete."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.contracts import (
    CONTRACT_DIR,
    ENVELOPE_NAMES,
    ContractError,
    _parse,
    load_contracts,
    validate_codelists,
)

CHECKLIST_DIR = Path(__file__).parent / "checklist"

# Every reported dataset named in DOMAIN.md section 3 (and issue #2), by contract name.
EXPECTED_DATASETS = {
    # kommune / jobcenter
    "kontaktgruppe", "tilmelding", "afmelding", "indkaldelse", "samtale", "samtale_deltager",
    "foerste_henvendelse", "cv_samtale", "fravaer", "sdp_opfoelgning", "plan", "uddannelsesplan",
    "foranstaltning", "sanktion", "raadighedsvurdering", "sagsbehandler", "haendelse_akasse",
    "syge_raskmelding",
    # a-kasse
    "akasse_tilmelding", "akasse_afmelding", "indplacering", "dagpengeret_udloeb", "akasse_indkaldelse",
    "akasse_samtale", "akasse_samtale_deltager", "minplan_udkast", "akasse_fravaer", "joblog_jobsoegning",
    "joblog_anden_aktivitet", "akasse_oplysning",
    # Jobnet, UVM, SSI
    "stillingsopslag", "uddannelse", "ssi_lpr_kontakt", "ssi_sygesikring_kontakt", "ssi_misbrugsbehandling",
}


def test_every_dataset_has_a_contract() -> None:
    assert set(load_contracts()) == EXPECTED_DATASETS


def test_contracts_are_well_formed() -> None:
    for c in load_contracts().values():
        assert c.fields, c.dataset
        assert "§" in c.legal_basis, f"{c.dataset}: legal_basis without § reference"
        assert c.record_key, f"{c.dataset}: no record key"
        for f in c.fields:
            assert f.name not in ENVELOPE_NAMES
            assert re.fullmatch(r"[a-z][a-z0-9_]*", f.name), f"{c.dataset}.{f.name}: not ASCII snake_case"
            assert f.paragraph or f.inferred, f"{c.dataset}.{f.name}: neither a § reference nor marked inferred"
        for r in c.rules:
            assert "§" in r.paragraph or "Bilag" in r.paragraph


def test_person_datasets_carry_cpr_and_personkreds_rule() -> None:
    for c in load_contracts().values():
        if c.dataset == "stillingsopslag":
            continue  # about companies, not persons (kap. 23)
        assert "cpr" in {f.name for f in c.fields}, c.dataset
        assert c.field("cpr").pii == "cpr"
        if c.parent is None and c.dataset != "kontaktgruppe":
            assert any(r.kind in ("personkreds", "age_range") for r in c.rules), \
                f"{c.dataset}: no personkreds/age rule"


def test_health_data_is_marked_and_only_from_ssi() -> None:
    for c in load_contracts().values():
        if c.reporter == "ssi":
            assert c.health, f"{c.dataset}: SSI data must carry PII class 'health'"
        else:
            assert not c.health, f"{c.dataset}: health fields outside SSI data"


def _refs(paragraph: str | None) -> set[str]:
    return {p.strip() for p in (paragraph or "").split(";") if p.strip()}


def test_checklist_covers_every_numbered_field_item() -> None:
    """Each numbered item of each field-list § (tests/checklist/*.yaml) is a contract field."""
    contracts = load_contracts()
    items = []
    for path in sorted(CHECKLIST_DIR.glob("*.yaml")):
        items.extend(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert len(items) > 200, "the checklist looks incomplete"
    missing = []
    for it in items:
        c = contracts[it["dataset"]]
        refs = set().union(*(_refs(f.paragraph) for f in c.fields))
        if it["paragraph"] not in refs:
            missing.append(f"{it['dataset']}: {it['paragraph']} ({it.get('text', '')})")
    assert not missing, "checklist items without a contract field:\n" + "\n".join(missing)
    # and the checklist names every field-list § of the datasets it covers
    covered = {it["dataset"] for it in items}
    assert covered >= EXPECTED_DATASETS - {"stillingsopslag", "akasse_oplysning"}


def test_kontaktgruppe_checklist_inline() -> None:
    """§ 16, stk. 6, nr. 1-5 (the worked example) field by field."""
    c = load_contracts()["kontaktgruppe"]
    refs = set().union(*(_refs(f.paragraph) for f in c.fields))
    for nr in range(1, 6):
        assert f"§ 16, stk. 6, nr. {nr}" in refs


def test_unknown_codelist_fails(tmp_path: Path) -> None:
    src = CONTRACT_DIR / "kontaktgruppe.yaml"
    text = src.read_text(encoding="utf-8").replace("codelist: kontaktgrupper", "codelist: findes_ikke")
    bad = tmp_path / "kontaktgruppe.yaml"
    bad.write_text(text, encoding="utf-8")
    c = _parse(bad)
    with pytest.raises(ContractError, match="findes_ikke"):
        validate_codelists({c.dataset: c})


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("type: cpr", "type: personnummer", "unknown type"),
        ("pii: cpr", "pii: secret", "unknown PII class"),
        ("kind: no_overlap", "kind: magic", "unknown rule kind"),
        ("channel: webservice", "channel: pigeon", "unknown channel"),
        ('paragraph: "§ 16, stk. 1"', 'paragraph: "stk. 1"', "no § reference"),
        ("record_key: [kontaktgruppe_id]", "record_key: [nothing]", "record_key"),
        ("kontaktgrupper: [1, 2,", "kontaktgrupper: [9, 2,", "unknown kontaktgrupper"),
    ],
)
def test_schema_errors_name_file_and_item(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = (CONTRACT_DIR / "kontaktgruppe.yaml").read_text(encoding="utf-8")
    assert old in text
    bad = tmp_path / "kontaktgruppe.yaml"
    bad.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ContractError, match=message) as exc:
        _parse(bad)
    assert "kontaktgruppe.yaml" in str(exc.value)


def test_loader_reads_a_directory(tmp_path: Path) -> None:
    shutil.copy(CONTRACT_DIR / "kontaktgruppe.yaml", tmp_path / "kontaktgruppe.yaml")
    cs = load_contracts.__wrapped__(tmp_path)
    assert list(cs) == ["kontaktgruppe"]


def test_cli_contracts_json() -> None:
    from pipelines.cli import app

    res = CliRunner().invoke(app, ["contracts", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert {d["dataset"] for d in data} == EXPECTED_DATASETS
    kg = next(d for d in data if d["dataset"] == "kontaktgruppe")
    assert {"name": "cpr", "pii": "cpr"}.items() <= next(f for f in kg["fields"] if f["name"] == "cpr").items()
    assert any(r["paragraph"] == "§ 16, stk. 1" for r in kg["rules"])


LAW = Path(__file__).parents[2] / "docs" / "law" / "bek_912_2015.txt"
# The §§ of BEK 912/2015 whose numbered items are the fields to report.
FIELD_LIST_PARAGRAPHS = {16, 17, 20, 21, 22, 25, 26, 30, 33, 35, 39, 45, 46, 49, 56, 60, 63, 67, 75, 83, 86, 90, 94}
# Numbered items that are not fields, with the reason.
NOT_FIELDS = {"§ 22, stk. 1, nr. 1": "refers back to the §§ 12, 20 and 21 data, covered there"}


def numbered_items_of_the_order() -> list[str]:
    """Every numbered item 'N)' of the field-list §§, read from the order's own text."""
    text = LAW.read_text(encoding="utf-8")
    text = text[: text.index(" Bilag 1")]
    par, stk, items = None, 1, []
    for line in text.splitlines():
        s = line.strip()
        if m := re.match(r"^§ (\d+)\.", s):
            par, stk = int(m.group(1)), 1
        if m := re.match(r"^Stk\. (\d+)\.", s):
            stk = int(m.group(1))
        if (m := re.match(r"^(\d+)\) ", s)) and par in FIELD_LIST_PARAGRAPHS:
            items.append(f"§ {par}, stk. {stk}, nr. {m.group(1)}")
    return items


def test_every_numbered_field_item_of_the_order_is_a_contract_field() -> None:
    """Walks the order's text itself, independently of the hand-written checklist."""
    items = numbered_items_of_the_order()
    assert len(items) > 230
    refs = set()
    for c in load_contracts().values():
        for f in c.fields:
            for r in _refs(f.paragraph):
                refs.add(r)
                refs.add(re.sub(r"^(§ \d+), nr\.", r"\1, stk. 1, nr.", r))  # "§ 83, nr. 3" = stk. 1
    missing = [i for i in items if i not in refs and i not in NOT_FIELDS]
    assert not missing, f"items of the order with no contract field: {missing}"
