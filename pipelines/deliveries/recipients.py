"""The recipients of the order's disclosures, read from ``recipients.yaml`` in exactly one place.

Each recipient is declared once, beside the § text that allows the disclosure:
population rule, column list (types, descriptions, § per column), formats,
schedule, period kind and the SQL cutting the population from the warehouse.
Danmarks Statistik's files are not listed column by column: § 41, stk. 1,
§ 51, stk. 2, § 69, stk. 2 and § 78, stk. 2 give the whole reported areas,
so its files are derived from the contracts of the chapters named in the YAML
by a declared rule (PII class and field type), see :func:`dst_files`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.contracts import Contract, load_contracts

RECIPIENTS_FILE = Path(__file__).resolve().parent / "recipients.yaml"
COLUMN_TYPES = {"string", "integer", "decimal", "boolean", "date", "timestamp", "string_list"}
PERIOD_KINDS = {"maaned", "uge"}
KINDS = ("full", "increment")
FORMATS = {"parquet", "csv"}
SPLITS = {"kommune", "akasse", "uddannelsesinstitution"}
# Chapters whose use paragraphs give no basis for passing data on to Danmarks Statistik, whatever the YAML says.
DST_FORBIDDEN_CHAPTERS = {
    "24": "§ 91: UVM's uddannelsesoplysninger videregives kun til kommunerne (stk. 2)",
    "25": "§ 95: sundhedsoplysninger anvendes alene til analyse og statistik i STAR's datavarehus",
}
# contract field type -> delivered column type (DST files)
CONTRACT_TYPE_MAP = {
    "uuid": "string", "code": "string", "kommunekode": "string", "akassekode": "string", "cvr": "string",
    "pnummer": "string", "time": "string", "cpr": "string", "string": "string", "text": "string",
    "integer": "integer", "decimal": "decimal", "boolean": "boolean", "date": "date", "datetime": "timestamp",
}


class RecipientError(ValueError):
    """recipients.yaml breaks its schema; the message names recipient and item."""


@dataclass(frozen=True)
class Column:
    navn: str
    type: str
    beskrivelse: str
    paragraf: str


@dataclass(frozen=True)
class FileSpec:
    navn: str
    kolonner: tuple[Column, ...]
    noegle: tuple[str, ...]
    sql: str
    datasaet: str | None = None  # DST: the contract the file comes from
    # DST increments: SQL selecting the keys whose versions changed in ($prev, $cut]
    aendrede_noegler_sql: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.navn for c in self.kolonner]


@dataclass(frozen=True)
class Recipient:
    id: str
    navn: str
    retsgrundlag: str
    paragraf_tekst: str
    formaal: str
    population: str
    periode: str
    leveringer: tuple[str, ...]
    tidsplan: dict[str, str]
    formater: tuple[str, ...]
    cpr: bool
    opdeling: str | None
    filer: tuple[FileSpec, ...]
    raw: dict[str, Any]
    # encrypted to the recipient's key: every CPR recipient, and those receiving other personal data
    # (§ 42, stk. 2: name and birth date, never the CPR number)
    krypteret: bool = True


def _req(where: str, d: dict, key: str) -> Any:
    if key not in d or d[key] in (None, "", []):
        raise RecipientError(f"{where}: missing {key!r}")
    return d[key]


def _used(ctes: dict[str, str], sql: str) -> dict[str, str]:
    """The CTEs ``sql`` refers to, directly or through another CTE, in declaration order."""
    need: set[str] = set()
    todo = [sql]
    while todo:
        text = todo.pop()
        for name, body in ctes.items():
            if name not in need and re.search(rf"\b{name}\b", text):
                need.add(name)
                todo.append(body)
    return {n: b for n, b in ctes.items() if n in need}


def _with_ctes(ctes: dict[str, str], sql: str) -> str:
    """The file's SQL below the shared CTEs it uses (visible inside the subquery)."""
    ctes = _used(ctes, sql)
    if not ctes:
        return sql
    defs = ",\n".join(f"{name} AS (\n{body.strip()}\n)" for name, body in ctes.items())
    return f"WITH {defs}\nSELECT * FROM (\n{sql.strip()}\n) AS _fil"


def _file(where: str, d: dict, ctes: dict[str, str]) -> FileSpec:
    name = _req(where, d, "navn")
    where = f"{where}: file {name!r}"
    cols = []
    # a nested list is spliced in (a YAML alias of another file's columns, e.g. the joblog's § 67 fields)
    flat = [x for c in _req(where, d, "kolonner") for x in (c if isinstance(c, list) else [c])]
    for c in flat:
        for k in ("navn", "type", "beskrivelse", "paragraf"):
            _req(f"{where}: column {c.get('navn')!r}", c, k)
        if c["type"] not in COLUMN_TYPES:
            raise RecipientError(f"{where}: column {c['navn']!r} has unknown type {c['type']!r} ({sorted(COLUMN_TYPES)})")
        if "§" not in c["paragraf"]:
            raise RecipientError(f"{where}: column {c['navn']!r} carries no § reference")
        cols.append(Column(c["navn"], c["type"], " ".join(str(c["beskrivelse"]).split()), c["paragraf"]))
    names = [c.navn for c in cols]
    if len(set(names)) != len(names) or any(n.startswith("_") or n == "aendring" for n in names):
        raise RecipientError(f"{where}: duplicate or reserved column names in {names}")
    key = tuple(_req(where, d, "noegle"))
    if not set(key) <= set(names):
        raise RecipientError(f"{where}: key columns {sorted(set(key) - set(names))} are not columns")
    return FileSpec(navn=name, kolonner=tuple(cols), noegle=key, sql=_with_ctes(ctes, _req(where, d, "sql")))


def _recipient(rid: str, d: dict, common: dict[str, str] | None = None) -> Recipient:
    where = f"recipients.yaml: {rid}"
    basis = _req(where, d, "retsgrundlag")
    text = " ".join(str(_req(where, d, "paragraf_tekst")).split())
    if "§" not in basis or "§" not in text:
        raise RecipientError(f"{where}: retsgrundlag and paragraf_tekst must carry the § reference")
    periode = _req(where, d, "periode")
    if periode not in PERIOD_KINDS:
        raise RecipientError(f"{where}: periode must be one of {sorted(PERIOD_KINDS)}")
    kinds = tuple(_req(where, d, "leveringer"))
    if not kinds or not set(kinds) <= set(KINDS) or "full" not in kinds:
        raise RecipientError(f"{where}: leveringer must include 'full' and only {KINDS}")
    plan = dict(_req(where, d, "tidsplan"))
    if set(plan) != set(kinds):
        raise RecipientError(f"{where}: tidsplan needs exactly one cron per delivery kind {kinds}")
    formats = tuple(_req(where, d, "formater"))
    if not set(formats) <= FORMATS:
        raise RecipientError(f"{where}: unknown formats {sorted(set(formats) - FORMATS)}")
    split = d.get("opdeling")
    if split is not None and split not in SPLITS:
        raise RecipientError(f"{where}: opdeling must be one of {sorted(SPLITS)}")
    cpr = bool(d.get("cpr"))
    krypteret = bool(d.get("krypteret", cpr))
    if cpr and not krypteret:
        raise RecipientError(f"{where}: a CPR recipient must be encrypted (krypteret: false is not allowed)")
    if "kontrakter" in d:
        files = dst_files(d["kontrakter"], where)
    else:
        own = dict(d.get("faelles_cte") or {})
        bad = [n for n in own if not n.isidentifier() or n in (common or {})]
        if bad:
            raise RecipientError(f"{where}: faelles_cte names must be identifiers not shadowing the file's "
                                 f"top-level faelles_cte: {bad}")
        ctes = {**(common or {}), **own}
        files = tuple(_file(where, f, ctes) for f in _req(where, d, "filer"))
    fnames = [f.navn for f in files]
    if len(set(fnames)) != len(fnames):
        raise RecipientError(f"{where}: duplicate file names {fnames}")
    for f in files:
        has_cpr = any(c.navn == "cpr" or c.navn.endswith("_cpr") for c in f.kolonner)
        if cpr and "cpr" not in f.column_names:
            raise RecipientError(f"{where}: file {f.navn!r} of a CPR recipient has no 'cpr' column")
        if not cpr and has_cpr:
            raise RecipientError(f"{where}: file {f.navn!r} carries a CPR column but the recipient is not cpr: true "
                                 "(CPR-bearing outputs must be encrypted)")
        if split and "_modtager" not in f.sql:
            raise RecipientError(f"{where}: file {f.navn!r}: opdeling {split!r} needs a _modtager column in its SQL")
    return Recipient(
        id=rid, navn=_req(where, d, "navn"), retsgrundlag=basis, paragraf_tekst=text,
        formaal=" ".join(str(d.get("formaal", "")).split()), population=" ".join(str(_req(where, d, "population")).split()),
        periode=periode, leveringer=kinds, tidsplan=plan, formater=formats, cpr=cpr, opdeling=split,
        filer=files, raw=d, krypteret=krypteret)


def dst_field_allowed(rule: dict, c: Contract, name: str) -> bool:
    """A contract field goes to Danmarks Statistik when its PII class and type are in the rule."""
    f = c.field(name)
    return not f.is_envelope and f.pii in rule["pii"] and f.type in rule["typer"]


def dst_contracts(rule: dict) -> list[Contract]:
    """The contracts whose chapter the rule names, in dataset order."""
    chapters = {str(x) for x in rule["kapitler"]}
    forbidden = chapters & set(DST_FORBIDDEN_CHAPTERS)
    if forbidden:
        raise RecipientError("recipients.yaml: dst: chapters " + ", ".join(sorted(forbidden)) + " may not go to "
                             "Danmarks Statistik (" + "; ".join(DST_FORBIDDEN_CHAPTERS[c] for c in sorted(forbidden)) + ")")
    excluded = {str(x) for x in (rule.get("udelukkede_kapitler") or {})}
    if chapters & excluded:
        raise RecipientError(f"recipients.yaml: dst: chapters both included and excluded: {sorted(chapters & excluded)}")
    return [c for c in load_contracts().values() if c.chapter in chapters]


def _pk_col(name: str) -> str:
    return "person_key" if name == "cpr" else name.removesuffix("_cpr") + "_person_key"


def dst_files(rule: dict, where: str = "recipients.yaml: dst") -> tuple[FileSpec, ...]:
    """One file per dataset of the named chapters: CPR link keys plus numeric/categorical fields."""
    for k in ("kapitler", "pii", "typer"):
        _req(f"{where}: kontrakter", rule, k)
    if set(rule["pii"]) - {"none", "cpr"}:
        raise RecipientError(f"{where}: kontrakter.pii may only name 'none' and 'cpr' (no names, contact, free text, health)")
    if {"string", "text"} & set(rule["typer"]):
        raise RecipientError(f"{where}: kontrakter.typer may not include string/text (free text)")
    files = []
    for c in dst_contracts(rule):
        cols: list[Column] = []
        select: list[str] = []
        joins: list[str] = []
        for f in c.fields:
            if not dst_field_allowed(rule, c, f.name):
                continue
            ctype = "string_list" if f.multi else CONTRACT_TYPE_MAP[f.type]
            cols.append(Column(f.name, ctype, " ".join(f.description.split()) or f.name,
                               f.paragraph or c.legal_basis))
            if f.type == "cpr":
                alias = f"p{len(joins)}"
                joins.append(f"LEFT JOIN restricted.person {alias} ON {alias}.person_key = f.{_pk_col(f.name)}")
                select.append(f"{alias}.cpr AS {f.name}")
            elif f.type == "datetime":
                select.append(f"timezone('UTC', f.{f.name}) AS {f.name}")
            else:
                select.append(f"f.{_ident(f.name)}")
        keys = tuple(c.record_key)
        if not set(keys) <= {col.navn for col in cols}:
            raise RecipientError(f"{where}: {c.dataset}: record key {keys} is not among the delivered columns")
        sql = (f"SELECT {', '.join(select)}\nFROM fct_{c.dataset}_as_of($cut) f\n" + "\n".join(joins))
        kl = ", ".join(keys)
        changed = (f"SELECT DISTINCT {kl} FROM fct_{c.dataset}_historik "
                   f"WHERE (indlaest_dato > $prev AND indlaest_dato <= $cut) "
                   f"OR (indlaest_til > $prev AND indlaest_til <= $cut)")
        files.append(FileSpec(navn=c.dataset, kolonner=tuple(cols), noegle=keys, sql=sql, datasaet=c.dataset,
                              aendrede_noegler_sql=changed))
    return tuple(files)


def _ident(name: str) -> str:
    from pipelines.warehouse.generate import ident

    return ident(name)


@functools.lru_cache(maxsize=1)
def load_recipients(path: Path = RECIPIENTS_FILE) -> dict[str, Recipient]:
    """Every recipient, validated, keyed by id (file order)."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("recipients"), dict):
        raise RecipientError(f"{path}: top level must be a mapping with 'recipients'")
    # derivations every recipient may use (e.g. the kommune timeline with moves, the a-kasse membership)
    common = dict(raw.get("faelles_cte") or {})
    bad = [n for n in common if not n.isidentifier()]
    if bad:
        raise RecipientError(f"{path}: faelles_cte names must be identifiers: {bad}")
    return {rid: _recipient(rid, d, common) for rid, d in raw["recipients"].items()}


def get_recipient(rid: str) -> Recipient:
    try:
        return load_recipients()[rid]
    except KeyError:
        raise RecipientError(f"unknown recipient {rid!r} (known: {', '.join(load_recipients())})") from None
