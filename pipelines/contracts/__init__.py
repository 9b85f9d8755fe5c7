"""One declarative contract per reported dataset, read in exactly one place.

Each ``<dataset>.yaml`` beside this file is the single source of truth for a
dataset: the simulator writes records from it, ingestion types rows by it, the
expectation suites and the data dictionary are generated from it.  Everything
else asks :func:`load_contracts` / :func:`get_contract` and never re-declares a
field list.

The loader validates every contract when it is first loaded (on import of any
consumer): unknown types, PII classes, rule kinds, channels, reporter kinds,
code lists that have no CSV under ``data/reference`` and fields named by keys or
rules that do not exist all raise :class:`ContractError` naming file and item.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster
CONTRACT_DIR = Path(__file__).resolve().parent
REPO_ROOT = CONTRACT_DIR.parents[1]
REFERENCE_DIR = REPO_ROOT / "data" / "reference"

# Field types. Semantic identifier types are strings on the wire but carry their
# own validation (python-stdnum for cpr/cvr).
FIELD_TYPES = {
    "string",
    "text",  # long free text
    "integer",
    "decimal",
    "boolean",
    "date",
    "time",
    "datetime",
    "uuid",
    "cpr",
    "cvr",
    "pnummer",
    "kommunekode",
    "akassekode",
    "code",  # value from a code list (codelist required)
}
PII_CLASSES = {"cpr", "name", "contact", "free_text", "health", "none"}
REPORTER_KINDS = {"jobcenter", "akasse", "uvm", "ssi", "jobnet"}
CHANNELS = {"webservice", "ftp", "portal", "filedrop"}
CHANGE_TYPES = {"create", "update", "delete"}
SEVERITIES = {"error", "warn"}
# Rule kinds understood by the simulator and the quality suites.  Parameters per kind:
#   deadline:        event_field, registration_field, max_lag_days (0 = same day),
#                    optional change_type (create|update|delete) and when (dict field -> values)
#   date_window:     field, relative_to, min_days, max_days (field - relative_to in [min, max]),
#                    optional when
#   personkreds:     (uses the contract's personkreds block)
#   bilag1:          reason_field (fravær reason allowed for KG + visitations-/matchgruppe)
#   age_range:       min_age, max_age, at_field
#   start_before_end: start_field, end_field
#   required_when:   field, when (dict field -> list of values)
#   only_when_changed: field (reported only when it differs from the last value)
#   reference_exists: field, dataset, key (must refer to a known record of dataset)
#   version_increases: field
#   fixed_values:    when (dict), then (dict field -> value)  e.g. § 17 stk. 8-9
#   no_overlap:      start_field, end_field, partition_by (list)
#   allowed_values:  field, values (list) or exclude (list): a narrower set than the code list
RULE_KINDS = {
    "allowed_values",
    "deadline",
    "date_window",
    "personkreds",
    "bilag1",
    "age_range",
    "start_before_end",
    "required_when",
    "only_when_changed",
    "reference_exists",
    "version_increases",
    "fixed_values",
    "no_overlap",
}

# The envelope every record carries, as DFDG's webservice messages do (EntitetNavn,
# Aendringstype 1/2/3, VersionIdentifier, MessageIdentifier ...).  It is part of every
# contract's effective schema; contracts do not repeat it.
ENVELOPE_FIELDS: list[dict[str, Any]] = [
    {"name": "besked_id", "type": "uuid", "required": True, "pii": "none",
     "description": "Unik besked-id (DFDG MessageIdentifier); samme id to gange = dublet."},
    {"name": "entitet", "type": "string", "required": True, "pii": "none",
     "description": "Datasættets navn (DFDG EntitetNavn)."},
    {"name": "aendringstype", "type": "code", "codelist": "aendringstyper", "required": True, "pii": "none",
     "description": "1 Oprettelse, 2 Opdatering, 3 Sletning (DFDG Aendringstype)."},
    {"name": "version", "type": "integer", "required": True, "pii": "none",
     "description": "Versionsnummer for posten; stiger med hver ændring."},
    {"name": "indberetter", "type": "string", "required": True, "pii": "none",
     "description": "Indberetteren: kommunekode, a-kassekode, 'UVM', 'SSI' eller 'JOBNET'."},
    {"name": "haendelsestidspunkt", "type": "datetime", "required": True, "pii": "none",
     "description": "Hvornår hændelsen skete i kildesystemet (Europe/Copenhagen)."},
    {"name": "registreringstidspunkt", "type": "datetime", "required": True, "pii": "none",
     "description": "Hvornår hændelsen blev registreret og indberettet (Europe/Copenhagen)."},
]
ENVELOPE_NAMES = [f["name"] for f in ENVELOPE_FIELDS]


class ContractError(ValueError):
    """A contract file breaks the contract schema; the message names file and item."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool
    pii: str
    description: str = ""
    codelist: str | None = None
    paragraph: str | None = None  # e.g. "§ 16, stk. 6, nr. 3"
    label: str | None = None
    max_length: int | None = None
    multi: bool = False  # list of values (e.g. stillingsbetegnelser)
    sub_kind: str | None = None  # only for this sub-kind (foranstaltningsart ...)
    inferred: bool = False  # not in the order's text; assumed (documented)
    generator: str | None = None  # simulator hint (e.g. "person_name", "phone")

    @property
    def is_envelope(self) -> bool:
        return self.name in ENVELOPE_NAMES


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    paragraph: str
    severity: str
    text_da: str
    text_en: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Personkreds:
    kontaktgrupper: tuple[int, ...] = ()
    person_groups: tuple[str, ...] = ()  # dimittend, uo, ky, ...
    paragraph: str | None = None
    note: str | None = None
    min_age: int | None = None
    max_age: int | None = None


@dataclass(frozen=True)
class Contract:
    dataset: str
    title: str
    description: str
    chapter: str
    legal_basis: str
    reporter: str
    channel: str
    channel_paragraph: str
    fields: tuple[Field, ...]
    record_key: tuple[str, ...]
    event_time: str
    registration_time: str
    change_types: tuple[str, ...]
    versioned: bool
    personkreds: Personkreds
    rules: tuple[Rule, ...]
    parent: dict[str, Any] | None
    path: Path
    raw: dict[str, Any]

    @functools.cached_property
    def all_fields(self) -> tuple[Field, ...]:
        """Envelope fields followed by the dataset's own fields (the wire schema)."""
        env = tuple(_field_from_dict(self.path, dict(f)) for f in ENVELOPE_FIELDS)
        return env + self.fields

    @functools.cached_property
    def _by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.all_fields}

    def field(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.dataset}: no field {name!r}") from None

    @functools.cached_property
    def field_names(self) -> list[str]:
        return [f.name for f in self.all_fields]

    @property
    def codelists(self) -> set[str]:
        return {f.codelist for f in self.all_fields if f.codelist}

    @property
    def health(self) -> bool:
        return any(f.pii == "health" for f in self.fields)


def _field_from_dict(path: Path, d: dict[str, Any]) -> Field:
    where = f"{path.name}: field {d.get('name')!r}"
    for key in ("name", "type", "pii"):
        if key not in d:
            raise ContractError(f"{where}: missing {key!r}")
    if d["type"] not in FIELD_TYPES:
        raise ContractError(f"{where}: unknown type {d['type']!r} (known: {sorted(FIELD_TYPES)})")
    if d["pii"] not in PII_CLASSES:
        raise ContractError(f"{where}: unknown PII class {d['pii']!r} (known: {sorted(PII_CLASSES)})")
    if d["type"] == "code" and not d.get("codelist"):
        raise ContractError(f"{where}: type 'code' needs a codelist")
    known = set(Field.__dataclass_fields__)
    extra = set(d) - known
    if extra:
        raise ContractError(f"{where}: unknown keys {sorted(extra)}")
    d.setdefault("required", False)
    return Field(**d)


def _rule_from_dict(path: Path, d: dict[str, Any]) -> Rule:
    where = f"{path.name}: rule {d.get('id')!r}"
    for key in ("id", "kind", "paragraph", "severity", "text_da", "text_en"):
        if not d.get(key):
            raise ContractError(f"{where}: missing {key!r}")
    if d["kind"] not in RULE_KINDS:
        raise ContractError(f"{where}: unknown rule kind {d['kind']!r} (known: {sorted(RULE_KINDS)})")
    if d["severity"] not in SEVERITIES:
        raise ContractError(f"{where}: severity must be one of {sorted(SEVERITIES)}")
    if "§" not in d["paragraph"] and "Bilag" not in d["paragraph"]:
        raise ContractError(f"{where}: paragraph {d['paragraph']!r} carries no § reference")
    return Rule(
        id=d["id"], kind=d["kind"], paragraph=d["paragraph"], severity=d["severity"],
        text_da=d["text_da"], text_en=d["text_en"], params=dict(d.get("params") or {}),
    )


def known_codelists() -> set[str]:
    """Code list names = CSV file stems under data/reference."""
    return {p.stem for p in REFERENCE_DIR.glob("*.csv")}


@functools.cache
def codelist(name: str) -> tuple[dict[str, str], ...]:
    """Rows of a reference code list (every list has at least ``kode`` and ``kilde``)."""
    path = REFERENCE_DIR / f"{name}.csv"
    if not path.exists():
        raise ContractError(f"unknown code list {name!r}: no {path}")
    with path.open(encoding="utf-8", newline="") as fh:
        return tuple(csv.DictReader(fh))


def codelist_codes(name: str) -> list[str]:
    return [row["kode"] for row in codelist(name)]


def _parse(path: Path) -> Contract:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ContractError(f"{path.name}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ContractError(f"{path.name}: top level must be a mapping")
    required = ("dataset", "title", "chapter", "legal_basis", "reporter", "channel", "fields",
                "record_key", "event_time", "registration_time", "change_types", "personkreds")
    for key in required:
        if key not in raw:
            raise ContractError(f"{path.name}: missing {key!r}")
    if raw["dataset"] != path.stem:
        raise ContractError(f"{path.name}: dataset {raw['dataset']!r} must equal the file name")
    if raw["reporter"] not in REPORTER_KINDS:
        raise ContractError(f"{path.name}: unknown reporter kind {raw['reporter']!r}")
    if raw["channel"] not in CHANNELS:
        raise ContractError(f"{path.name}: unknown channel {raw['channel']!r}")
    fields = tuple(_field_from_dict(path, dict(f)) for f in raw["fields"])
    names = [f.name for f in fields]
    dup = {n for n in names if names.count(n) > 1} | (set(names) & set(ENVELOPE_NAMES))
    if dup:
        raise ContractError(f"{path.name}: duplicate or envelope-clashing field names {sorted(dup)}")
    all_names = set(names) | set(ENVELOPE_NAMES)
    for key in ("event_time", "registration_time"):
        if raw[key] not in all_names:
            raise ContractError(f"{path.name}: {key} {raw[key]!r} is not a field")
    for k in raw["record_key"]:
        if k not in all_names:
            raise ContractError(f"{path.name}: record_key {k!r} is not a field")
    bad_ct = set(raw["change_types"]) - CHANGE_TYPES
    if bad_ct:
        raise ContractError(f"{path.name}: unknown change types {sorted(bad_ct)}")
    pk = raw["personkreds"] or {}
    personkreds = Personkreds(
        kontaktgrupper=tuple(int(x) for x in pk.get("kontaktgrupper", [])),
        person_groups=tuple(pk.get("person_groups", [])),
        paragraph=pk.get("paragraph"),
        note=pk.get("note"),
        min_age=pk.get("min_age"),
        max_age=pk.get("max_age"),
    )
    bad_kg = set(personkreds.kontaktgrupper) - (set(range(1, 26)) - {9})
    if bad_kg:
        raise ContractError(f"{path.name}: personkreds names unknown kontaktgrupper {sorted(bad_kg)}")
    rules = tuple(_rule_from_dict(path, dict(r)) for r in raw.get("rules", []))
    ids = [r.id for r in rules]
    if len(ids) != len(set(ids)):
        raise ContractError(f"{path.name}: duplicate rule ids")
    for r in rules:
        for pkey, pval in r.params.items():
            if pkey.endswith("field") and isinstance(pval, str) and pval not in all_names:
                raise ContractError(f"{path.name}: rule {r.id} param {pkey}={pval!r} is not a field")
    return Contract(
        dataset=raw["dataset"], title=raw["title"], description=raw.get("description", ""),
        chapter=str(raw["chapter"]), legal_basis=raw["legal_basis"], reporter=raw["reporter"],
        channel=raw["channel"], channel_paragraph=raw.get("channel_paragraph", ""),
        fields=fields, record_key=tuple(raw["record_key"]), event_time=raw["event_time"],
        registration_time=raw["registration_time"], change_types=tuple(raw["change_types"]),
        versioned=bool(raw.get("versioned", False)), personkreds=personkreds, rules=rules,
        parent=raw.get("parent"), path=path, raw=raw,
    )


def validate_codelists(contracts: dict[str, Contract]) -> None:
    """Every code list a contract names must exist as data/reference/<name>.csv."""
    known = known_codelists()
    for c in contracts.values():
        for f in c.all_fields:
            if f.codelist and f.codelist not in known:
                raise ContractError(f"{c.path.name}: field {f.name!r} names unknown code list {f.codelist!r}")
        for r in c.rules:
            cl = r.params.get("codelist")
            if cl and cl not in known:
                raise ContractError(f"{c.path.name}: rule {r.id} names unknown code list {cl!r}")
        _validate_rule_codes(c)
        if c.parent and c.parent.get("dataset") not in contracts:
            raise ContractError(f"{c.path.name}: parent dataset {c.parent.get('dataset')!r} unknown")


def _validate_rule_codes(c: Contract) -> None:
    """Values rules compare with code-list fields must be codes of that list."""
    names = {f.name: f for f in c.all_fields}

    def check(rule: Rule, mapping: dict[str, Any], what: str) -> None:
        for fname, vals in (mapping or {}).items():
            f = names.get(fname)
            if f is None:
                raise ContractError(f"{c.path.name}: rule {rule.id} {what} names unknown field {fname!r}")
            if not f.codelist:
                continue
            codes = {row["kode"] for row in codelist(f.codelist)}
            for v in vals if isinstance(vals, list) else [vals]:
                if str(v) not in codes:
                    raise ContractError(f"{c.path.name}: rule {rule.id} {what} value {v!r} for {fname!r} "
                                        f"is not a code of {f.codelist}")

    for r in c.rules:
        check(r, r.params.get("when") or {}, "when")
        check(r, r.params.get("then") or {}, "then")
        if r.kind == "allowed_values":
            fld = r.params.get("field")
            check(r, {fld: list(r.params.get("values") or []) + list(r.params.get("exclude") or [])},
                  "values")


@functools.lru_cache(maxsize=1)
def load_contracts(directory: Path | None = None) -> dict[str, Contract]:
    """All contracts, validated, keyed by dataset name (sorted)."""
    directory = directory or CONTRACT_DIR
    contracts = {}
    for path in sorted(directory.glob("*.yaml")):
        c = _parse(path)
        contracts[c.dataset] = c
    validate_codelists(contracts)
    return contracts


def get_contract(dataset: str) -> Contract:
    try:
        return load_contracts()[dataset]
    except KeyError:
        raise ContractError(f"unknown dataset {dataset!r}") from None


# Checks every contract gets without writing them down: one per field and kind.
GENERIC_CHECKS = {
    "required": "Påkrævet felt mangler / required field missing",
    "type": "Værdien har ikke feltets type / value does not parse as the field's type",
    "codelist": "Koden findes ikke i kodelisten / code not in the code list",
    "cpr_valid": "Ugyldigt CPR-nummer (python-stdnum) / invalid CPR number",
    "cvr_valid": "Ugyldigt CVR-nummer (modulus 11) / invalid CVR number",
    "duplicate": "Samme besked modtaget to gange / the same message received twice",
    "encoding": "Tegnsæt svarer ikke til det erklærede / encoding differs from the declared one",
}


def generic_rule_id(dataset: str, check: str, field_name: str) -> str:
    """Id of a check generated from the contract, e.g. ``samtale:required:samtaletype``."""
    if check not in GENERIC_CHECKS:
        raise ContractError(f"unknown generic check {check!r}")
    return f"{dataset}:{check}:{field_name}"
