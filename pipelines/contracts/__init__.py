"""One declarative contract per reported dataset, read in exactly one place.

Each ``<dataset>.yaml`` beside this file is the single source of truth for a
dataset: the simulator writes records from it, ingestion types rows by it, the
expectation suites and the data dictionary are generated from it.  Everything
else asks :func:`load_contracts` / :func:`get_contract` and never re-declares a
field list.

The contract file's schema is declared once, as pydantic models (:class:`ContractFile`
with :class:`Field`, :class:`Rule` and :class:`Personkreds`); ``contract.schema.json``
beside the files is generated from them (``make generate``) for editors.  The loader
validates every contract when it is first loaded (on import of any consumer): unknown
types, PII classes, rule kinds, channels, reporter kinds, code lists that have no CSV
under ``data/reference`` and fields named by keys or rules that do not exist all raise
:class:`ContractError` naming file and item.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pydantic
import yaml
from pydantic import AfterValidator, ConfigDict, StringConstraints, WithJsonSchema, model_validator

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster
CONTRACT_DIR = Path(__file__).resolve().parent


def _project_root() -> Path:
    """Where reference code lists, warehouse models and expectation suites live.

    ``DSDW_PROJECT_ROOT`` when set; else the checkout the package runs from; else what an
    installed wheel put under ``<prefix>/share/dsdw`` (pyproject's data-files), so the
    package also works outside a checkout.
    """
    env = os.environ.get("DSDW_PROJECT_ROOT")
    if env:
        return Path(env).resolve()
    checkout = CONTRACT_DIR.parents[1]
    installed = Path(sys.prefix) / "share" / "dsdw"
    if not (checkout / "data" / "reference").is_dir() and (installed / "data" / "reference").is_dir():
        return installed
    return checkout


REPO_ROOT = _project_root()
REFERENCE_DIR = REPO_ROOT / "data" / "reference"
SCHEMA_PATH = CONTRACT_DIR / "contract.schema.json"

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
#   sygemelding_kontaktgruppe: the kontaktgruppe spells around a sick report (§ 34, stk. 3-6):
#                    tilfaelde bliver (fra_kontaktgrupper, sygedagpenge_kontaktgrupper: no sygedagpenge
#                    spell before the grant) or ustoettet (kontaktgrupper held on the anmeldelse date)
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
    "sygemelding_kontaktgruppe",
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


def _one_of(known: set[str], what: str) -> Any:
    """A string restricted to ``known``: an enum in the JSON Schema, a readable error otherwise."""

    def check(v: str) -> str:
        if v not in known:
            raise ValueError(f"unknown {what} {v!r} (known: {sorted(known)})")
        return v

    return Annotated[str, AfterValidator(check), WithJsonSchema({"type": "string", "enum": sorted(known)})]


FieldType = _one_of(FIELD_TYPES, "type")
PiiClass = _one_of(PII_CLASSES, "PII class")
RuleKind = _one_of(RULE_KINDS, "rule kind")
Severity = _one_of(SEVERITIES, "severity")
ChannelName = _one_of(CHANNELS, "channel")
ReporterKind = _one_of(REPORTER_KINDS, "reporter kind")
ChangeType = _one_of(CHANGE_TYPES, "change type")
Text = Annotated[str, StringConstraints(min_length=1)]
_STRICT = ConfigDict(extra="forbid")


@pydantic.dataclasses.dataclass(frozen=True, config=_STRICT)
class Field:
    """One field of a dataset's records, as the order lists it (§ in ``paragraph``)."""

    name: Text
    type: FieldType
    required: bool
    pii: PiiClass
    description: str = ""
    codelist: str | None = None
    paragraph: str | None = None  # e.g. "§ 16, stk. 6, nr. 3"
    label: str | None = None
    max_length: int | None = None
    multi: bool = False  # list of values (e.g. stillingsbetegnelser)
    sub_kind: str | None = None  # only for this sub-kind (foranstaltningsart ...)
    inferred: bool = False  # not in the order's text; assumed (documented)
    generator: str | None = None  # simulator hint (e.g. "person_name", "phone")

    @model_validator(mode="after")
    def _code_needs_list(self) -> Field:
        if self.type == "code" and not self.codelist:
            raise ValueError("type 'code' needs a codelist")
        return self

    @property
    def is_envelope(self) -> bool:
        return self.name in ENVELOPE_NAMES


@pydantic.dataclasses.dataclass(frozen=True, config=_STRICT)
class Rule:
    """A rule of the order checked on the data; ``params`` by kind (see RULE_KINDS above)."""

    id: Text
    kind: RuleKind
    paragraph: Text
    severity: Severity
    text_da: Text
    text_en: Text
    params: dict[str, Any] = pydantic.Field(default_factory=dict)

    @model_validator(mode="after")
    def _cites_the_order(self) -> Rule:
        if "§" not in self.paragraph and "Bilag" not in self.paragraph:
            raise ValueError(f"paragraph {self.paragraph!r} carries no § reference")
        return self


KONTAKTGRUPPER = set(range(1, 26)) - {9}  # § 16, stk. 2 (there is no kontaktgruppe 9)


@pydantic.dataclasses.dataclass(frozen=True, config=_STRICT)
class Personkreds:
    kontaktgrupper: tuple[int, ...] = ()
    person_groups: tuple[str, ...] = ()  # dimittend, uo, ky, ...
    paragraph: str | None = None
    note: str | None = None
    min_age: int | None = None
    max_age: int | None = None

    @model_validator(mode="after")
    def _known_groups(self) -> Personkreds:
        bad = set(self.kontaktgrupper) - KONTAKTGRUPPER
        if bad:
            raise ValueError(f"personkreds names unknown kontaktgrupper {sorted(bad)}")
        return self


class ParentRef(pydantic.BaseModel):
    model_config = _STRICT
    dataset: Text
    key: Text


class ContractFile(pydantic.BaseModel):
    """The schema of one ``<dataset>.yaml`` (JSON Schema: ``contract.schema.json``)."""

    model_config = ConfigDict(extra="forbid", title="dsdw dataset contract")
    dataset: Text
    title: Text
    description: str = ""
    chapter: str | int
    legal_basis: Text
    reporter: ReporterKind
    channel: ChannelName
    channel_paragraph: str = ""
    record_key: list[Text]
    event_time: Text
    registration_time: Text
    change_types: list[ChangeType]
    versioned: bool = False
    personkreds: Personkreds | None
    fields: list[Field]
    rules: list[Rule] = []
    parent: ParentRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _required_defaults_false(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and isinstance(raw.get("fields"), list):
            raw = {**raw, "fields": [{"required": False, **f} if isinstance(f, dict) else f for f in raw["fields"]]}
        return raw

    @model_validator(mode="after")
    def _names_refer_to_fields(self) -> ContractFile:
        names = [f.name for f in self.fields]
        dup = {n for n in names if names.count(n) > 1} | (set(names) & set(ENVELOPE_NAMES))
        if dup:
            raise ValueError(f"duplicate or envelope-clashing field names {sorted(dup)}")
        known = set(names) | set(ENVELOPE_NAMES)
        for key in ("event_time", "registration_time"):
            if getattr(self, key) not in known:
                raise ValueError(f"{key} {getattr(self, key)!r} is not a field")
        for k in self.record_key:
            if k not in known:
                raise ValueError(f"record_key {k!r} is not a field")
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate rule ids {sorted({i for i in ids if ids.count(i) > 1})}")
        for r in self.rules:
            for pkey, pval in r.params.items():
                if pkey.endswith("field") and isinstance(pval, str) and pval not in known:
                    raise ValueError(f"rule {r.id} param {pkey}={pval!r} is not a field")
        return self


def contract_json_schema() -> str:
    """The JSON Schema of a contract file, as written to ``contract.schema.json``."""
    return json.dumps(ContractFile.model_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


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
    try:
        return Field(**{"required": False, **d})
    except pydantic.ValidationError as exc:
        raise ContractError(_explain(path, {"fields": [d]}, exc)) from None


def _explain(path: Path, raw: dict[str, Any], exc: pydantic.ValidationError) -> str:
    """pydantic's errors as one message naming the file and the item (field or rule by name)."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = []
        if len(loc) >= 2 and loc[0] in ("fields", "rules") and isinstance(loc[1], int):
            items = raw.get(loc[0]) or []
            item = items[loc[1]] if loc[1] < len(items) and isinstance(items[loc[1]], dict) else {}
            label = "field" if loc[0] == "fields" else "rule"
            where.append(f"{label} {item.get('name' if label == 'field' else 'id')!r}")
            loc = loc[2:]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("missing", "missing_argument") and loc:
            msg, loc = f"missing {str(loc[-1])!r}", loc[:-1]
        elif err["type"] in ("extra_forbidden", "unexpected_keyword_argument") and loc:
            msg, loc = f"unknown key {str(loc[-1])!r}", loc[:-1]
        where.extend(str(x) for x in loc)
        lines.append(": ".join([*where, msg]) if where else msg)
    return f"{path.name}: " + "; ".join(lines)


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
    try:
        spec = ContractFile.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ContractError(_explain(path, raw, exc)) from None
    if spec.dataset != path.stem:
        raise ContractError(f"{path.name}: dataset {spec.dataset!r} must equal the file name")
    return Contract(
        dataset=spec.dataset, title=spec.title, description=spec.description, chapter=str(spec.chapter),
        legal_basis=spec.legal_basis, reporter=spec.reporter, channel=spec.channel,
        channel_paragraph=spec.channel_paragraph, fields=tuple(spec.fields), record_key=tuple(spec.record_key),
        event_time=spec.event_time, registration_time=spec.registration_time,
        change_types=tuple(spec.change_types), versioned=spec.versioned,
        personkreds=spec.personkreds or Personkreds(), rules=tuple(spec.rules),
        parent=spec.parent.model_dump() if spec.parent else None, path=path, raw=raw,
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
