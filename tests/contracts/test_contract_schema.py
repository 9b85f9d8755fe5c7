"""The contract files' schema: pydantic models, their JSON Schema for editors, readable errors."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipelines.contracts import CONTRACT_DIR, SCHEMA_PATH, ContractError, _parse, contract_json_schema


def test_the_committed_json_schema_is_generated_from_the_models() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == contract_json_schema(), "run `make generate`"


def test_every_contract_file_is_valid_under_the_json_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(CONTRACT_DIR.glob("*.yaml")):
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))]
        assert errors == [], path.name


def test_the_json_schema_refuses_what_the_loader_refuses(tmp_path: Path) -> None:
    """An editor using the schema flags the same mistakes as the loader (enum, unknown key)."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    raw = yaml.safe_load((CONTRACT_DIR / "kontaktgruppe.yaml").read_text(encoding="utf-8"))
    raw["fields"][0]["type"] = "personnummer"
    raw["fields"][1]["colour"] = "blue"
    messages = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(raw)]
    assert any("personnummer" in m for m in messages) and any("colour" in m for m in messages)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["fields"][2].pop("pii"), r"field '\w+': missing 'pii'"),
        (lambda r: r["fields"][2].update(colour="blue"), r"field '\w+': unknown key 'colour'"),
        (lambda r: r["fields"][2].update(type="code", codelist=None), r"field '\w+': type 'code' needs a codelist"),
        (lambda r: r["rules"][0].update(severity="fatal"), r"rule '[\w-]+': severity: unknown severity 'fatal'"),
        (lambda r: r["rules"].append(dict(r["rules"][0])), "duplicate rule ids"),
        (lambda r: r.update(event_time="nowhere"), "event_time 'nowhere' is not a field"),
        (lambda r: r.update(reporter="pigeon"), "reporter: unknown reporter kind 'pigeon'"),
    ],
)
def test_errors_name_the_file_and_the_item(tmp_path: Path, edit, message: str) -> None:
    raw = yaml.safe_load((CONTRACT_DIR / "kontaktgruppe.yaml").read_text(encoding="utf-8"))
    edit(raw)
    bad = tmp_path / "kontaktgruppe.yaml"
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ContractError, match=message) as exc:
        _parse(bad)
    assert str(exc.value).startswith("kontaktgruppe.yaml: ")
