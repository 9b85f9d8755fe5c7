"""Contract -> Great Expectations 1.x expectation suite (the generic field checks), as JSON.

The suites are generated, never hand-written: each contract's wire schema (envelope +
fields) implies its checks (``pipelines.contracts.GENERIC_CHECKS``), and
``expectations/<dataset>.json`` is the declarative, reviewable form of them.  A test fails
when a contract changed and the files were not regenerated (``python -m
pipelines.quality.suites``).

The dicts are exactly what ``gx.ExpectationSuite(...).to_json_dict()`` produces (a test
loads every file into ``gx.ExpectationSuite`` and compares the round trip), but they are
built without importing GX: ``import great_expectations`` costs seconds, and the fast
executor (``pipelines.quality.gx_sql``) only needs the JSON.

What the executor needs beyond GX's kwargs travels in each expectation's ``meta``:
``rule_id``, ``paragraph``, ``severity`` (``error``/``warn``), ``text_da``/``text_en``,
``check``, ``field``, ``pii``; ``multi: true`` (list column: every element must pass) and
``validator`` (``stdnum.dk.cpr`` / ``stdnum.dk.cvr``: the value must also pass
python-stdnum's rule, which a regex cannot express).
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pipelines.contracts import (
    GENERIC_CHECKS,
    REPO_ROOT,
    Contract,
    Field,
    codelist_codes,
    generic_rule_id,
    load_contracts,
)

SUITE_DIR = REPO_ROOT / "expectations"

# DFDG's pattern for x-civilRegistrationIdentifier (DFDG facts 8.3), anchored: a GX regex is
# searched (re.search), not matched.  0000000000 ("required but unknown") passes the pattern
# but not python-stdnum, which the executors apply as well (meta.validator).
DFDG_CPR_PATTERN = (
    "((((0[1-9]|1[0-9]|2[0-9]|3[0-1])(01|03|05|07|08|10|12))|((0[1-9]|1[0-9]|2[0-9]|30)(04|06|09|11))"
    "|((0[1-9]|1[0-9]|2[0-9])(02)))[0-9]{6})|0000000000"
)
CPR_REGEX = f"^(?:{DFDG_CPR_PATTERN})$"
CVR_REGEX = r"^[1-9][0-9]{7}$"  # 8 digits, no leading zero; modulus 11 via meta.validator
PNUMMER_REGEX = r"^[0-9]{10}$"

NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
MATCH_REGEX = "expect_column_values_to_match_regex"
GX_SEVERITY = {"error": "critical", "warn": "warning"}  # GX 1.x's own per-expectation severity
SEVERITY = {"required": "error", "type": "error",  # structural problems are errors
            "codelist": "warn", "cpr_valid": "warn", "cvr_valid": "warn"}


def _texts(check: str, f: Field, extra_da: str = "", extra_en: str = "") -> tuple[str, str]:
    da, en = GENERIC_CHECKS[check].split(" / ", 1)
    what = f"{f.label} ({f.name})" if f.label else f.name
    return f"{da}{extra_da}: {what}", f"{en[:1].upper()}{en[1:]}{extra_en}: {f.name}"


def _expectation(c: Contract, f: Field, check: str, gx_type: str, kwargs: dict[str, Any],
                 extra_da: str = "", extra_en: str = "", **meta: Any) -> dict[str, Any]:
    text_da, text_en = _texts(check, f, extra_da, extra_en)
    severity = SEVERITY[check]
    m: dict[str, Any] = {
        "rule_id": generic_rule_id(c.dataset, check, f.name),
        "paragraph": f.paragraph or c.legal_basis,
        "severity": severity,
        "text_da": text_da,
        "text_en": text_en,
        "check": check,
        "field": f.name,
        "pii": f.pii,
    }
    if f.multi:
        m["multi"] = True
    m.update(meta)
    return {"type": gx_type, "kwargs": {"column": f.name, **kwargs}, "meta": m,
            "severity": GX_SEVERITY[severity]}


def field_expectations(c: Contract, f: Field) -> list[dict[str, Any]]:
    """The generic expectations one field implies (required, code list, CPR, CVR, P-nummer)."""
    out = []
    if f.required:
        out.append(_expectation(c, f, "required", NOT_NULL, {}))
    if f.codelist:
        out.append(_expectation(c, f, "codelist", IN_SET, {"value_set": codelist_codes(f.codelist)},
                                f" ({f.codelist})", f" ({f.codelist})", codelist=f.codelist))
    if f.type == "cpr":
        out.append(_expectation(c, f, "cpr_valid", MATCH_REGEX, {"regex": CPR_REGEX},
                                validator="stdnum.dk.cpr"))
    elif f.type == "cvr":
        out.append(_expectation(c, f, "cvr_valid", MATCH_REGEX, {"regex": CVR_REGEX},
                                validator="stdnum.dk.cvr"))
    elif f.type == "pnummer":
        out.append(_expectation(c, f, "type", MATCH_REGEX, {"regex": PNUMMER_REGEX},
                                " (P-nummer: 10 cifre)", " (P-nummer: 10 digits)"))
    return out


def build_suite(contract: Contract) -> dict[str, Any]:
    """The dataset's GX 1.x ExpectationSuite as its JSON dict (``ExpectationSuite.to_json_dict()`` form)."""
    expectations = [e for f in contract.all_fields for e in field_expectations(contract, f)]
    return {
        "name": contract.dataset,
        "id": None,
        "expectations": expectations,
        "meta": {
            "dataset": contract.dataset,
            "record_key": list(contract.record_key),
            "legal_basis": contract.legal_basis,
            "generated_from": f"pipelines/contracts/{contract.path.name}",
            "generated_by": "pipelines.quality.suites.build_suite",
            "great_expectations_version": version("great_expectations"),
        },
        "notes": None,
    }


def suite_text(suite: dict[str, Any]) -> str:
    """Stable serialisation (sorted keys, UTF-8, trailing newline): regenerating changes nothing."""
    return json.dumps(suite, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _wanted() -> dict[str, str]:
    return {f"{name}.json": suite_text(build_suite(c)) for name, c in load_contracts().items()}


def write_suites(dir: Path = SUITE_DIR) -> list[Path]:
    """Write ``<dir>/<dataset>.json`` for every contract; drop suites of datasets that are gone.

    Files whose content is unchanged are not rewritten (mtimes stay put).  Returns the
    paths written or removed.
    """
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    wanted = _wanted()
    touched = []
    for name, text in wanted.items():
        path = dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            touched.append(path)
    for path in sorted(dir.glob("*.json")):
        if path.name not in wanted:
            path.unlink()
            touched.append(path)
    return touched


def suites_up_to_date(dir: Path = SUITE_DIR) -> list[str]:
    """Names of stale suite files (missing, different from the contract, or orphaned); [] = in step."""
    dir = Path(dir)
    wanted = _wanted()
    stale = []
    for name, text in wanted.items():
        path = dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    stale += [p.name for p in sorted(dir.glob("*.json")) if p.name not in wanted]
    return sorted(stale)


def load_suite(dataset: str, dir: Path = SUITE_DIR) -> dict[str, Any]:
    """The committed suite of ``dataset`` (the declarative source the executors run)."""
    return json.loads((Path(dir) / f"{dataset}.json").read_text(encoding="utf-8"))


if __name__ == "__main__":
    for p in write_suites():
        print(f"wrote {p}")
    print(f"{len(load_contracts())} suites in {SUITE_DIR}, up to date")
