"""The warehouse's data dictionary and ERD, generated from the contracts and the model files.

Nobody writes column documentation by hand twice: a contract field's description,
§ reference and code list travel with it into every model that carries it
(``stg_`` -> ``fct_`` -> views, marts), and what the analysts' database receives
from a field follows :mod:`pipelines.warehouse.generate` (``cpr`` -> ``person_key``,
``name``/``contact``/``free_text`` stay in the lake, health datasets only in the
restricted database).  Column names and types come from an empty build of every
model in memory (the same SQL the nightly load runs, on zero rows), or from a
built ``warehouse.duckdb`` when one is given.

Hand-written models document a column in their header comment, ``-- kommunekode:
the opholdskommune ...`` (several in one entry as ``a: ...; b/c: ...; d = formula``),
or with a trailing comment on the line that defines it (``k.kommunekode,  -- ...``);
otherwise its description, § and code list are inherited from the models it
depends on (a column of a fact keeps its contract field's).

``dsdw warehouse docs`` writes ``docs/warehouse_dictionary.md`` and
``docs/warehouse_erd.md``; a test fails while the committed files differ from what
the contracts and models produce.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.contracts import REFERENCE_DIR, REPO_ROOT, Contract, load_contracts
from pipelines.warehouse.generate import (
    DROPPED_PII,
    MODELS_DIR,
    fact_sql,
    fct_name,
    is_restricted,
    macro_sql,
    staging_sql,
    stg_name,
    valid_time,
)
from pipelines.warehouse.models import Model, build_order, load_models, parse_model

DOCS_DIR = REPO_ROOT / "docs"
DICTIONARY_FILE = "warehouse_dictionary.md"
ERD_FILE = "warehouse_erd.md"
FACT_ONLY = ("indlaest_dato", "load_id")
HISTORY_ONLY = ("indlaest_til", "er_seneste")
# § that make the reported data the statistical warehouse's data (one per part of the order).
USE_PARAGRAPHS = "§§ 51, 69, 78, 91 og 95"

# Technical columns every generated model carries: (description, the contract item whose § applies).
# The item is "cpr" (the person's id field), "valid" (the valid-time fields), "registration" or None.
TECHNICAL: dict[str, tuple[str, str | None]] = {
    "person_key": ("Pseudonym for personens CPR-nummer: HMAC-SHA256 med en hemmelig nøgle (hex). "
                   "CPR-nummeret findes kun i den krypterede restricted-database.", "cpr"),
    "foedselsaar": ("Fødselsår, afledt af CPR-nummerets fødselsdato og århundredeciffer.", "cpr"),
    "koen": ("Køn afledt af CPR-nummerets sidste ciffer: 'M' (ulige) eller 'K' (lige).", "cpr"),
    "alder": ("Alder i hele år på gyldighedsperiodens første dag (gyldig_fra).", "cpr"),
    "gyldig_fra": ("Gyldighedstid: første dag posten gælder (forløbets startdato eller hændelsens dato).",
                   "valid"),
    "gyldig_til": ("Gyldighedstid: sidste dag posten gælder; NULL = åbent forløb; lig gyldig_fra for en "
                   "hændelse.", "valid"),
    "registreret_dato": ("Indberetterens registrering (registreringstidspunkt som dato, Europe/Copenhagen).",
                         "registration"),
    "er_slettet": ("Sand for en sletning (aendringstype 3): en tombstone-version, der lukker posten.", None),
    "indlaest_dato": ("Transaktionstid: datoen for den natlige indlæsning, der tilføjede versionen.", None),
    "load_id": ("Id for indlæsningen (meta.load), der tilføjede rækken.", None),
    "_channel": ("Kanalen payloaden kom ad: webservice, ftp, portal eller filedrop.", None),
    "_reporter": ("Indberetteren payloaden kom fra: kommunekode, a-kassekode, 'UVM', 'SSI' eller 'JOBNET'.",
                  None),
    "_payload_id": ("Id for den modtagne payload (filregistret og landing): sporbarhed til det rå data.", None),
    "_record_no": ("Postens nummer (fra 1) i payloaden.", None),
    "_leveringsdato": ("Leveringsdato: den dag payloaden blev leveret (lake-partitionen).", None),
    "indlaest_til": ("Transaktionstid: indlæsningen hvor versionen blev afløst (ny version, sletning eller "
                     "tilbagetrukket payload); NULL = stadig gældende.", None),
    "er_seneste": ("Sand for postens seneste version, når dens payload ikke er tilbagetrukket.", None),
}
# Columns of the dimensions built from data/reference (their CSV columns carry no descriptions).
KNOWN_COLUMNS: dict[str, str] = {
    "kommunekode": "Kommunekode (DST's kommuneliste, 3 cifre).",
    "kommune": "Kommunens navn.",
    "region_kode": "Regionskode (DST).",
    "region": "Regionens navn.",
    "landsdel_kode": "Landsdelskode (DST).",
    "landsdel": "Landsdelens navn.",
    "indbyggere": "Indbyggertal (afrundet, fra kodelisten).",
    "akassekode": "A-kassens kode (STAR's kode; kode_syntetisk når dsdw har tildelt den).",
    "akasse": "A-kassens navn.",
    "beskrivelse": "Beskrivelse fra kodelisten.",
    "kode_syntetisk": "Sand når koden er tildelt af dsdw, fordi STAR's kode ikke er offentlig.",
    "medlemmer": "Antal medlemmer (fra kodelisten).",
    "kontaktgruppe": "Kontaktgruppe (§ 15; 1-8 og 10-25, der findes ingen kontaktgruppe 9).",
    "navn": "Navn fra kodelisten.",
    "paragraf": "Lovhenvisning fra kodelisten.",
    "lov_grundlag": "Lovgrundlag fra kodelisten.",
    "ydelsesgruppe": "Ydelsesgruppe (Jobindsats-lignende gruppering af kontaktgrupperne; dsdw's mapping).",
    "kilde": "Kilde til kodelisten.",
    "dato": "Kalenderdag (Europe/Copenhagen).",
    "aar": "Kalenderår.",
    "kvartal": "Kvartal (1-4).",
    "maaned_nr": "Måned (1-12).",
    "maaned": "Månedens første dag.",
    "kvartal_start": "Kvartalets første dag.",
    "iso_aar": "ISO-år (ugens år).",
    "iso_uge": "ISO-ugenummer.",
    "uge_id": "ISO-uge som 'YYYY-Www'.",
    "uge_start": "Ugens mandag.",
    "uge_maaned": "Den måned ugens torsdag ligger i (ugen hører til én måned).",
    "ugedag": "ISO-ugedag (1 = mandag).",
    "er_weekend": "Sand for lørdag og søndag.",
}
# Identity columns that refer to the dimension keyed by the same name even without a code list.
IDENTITY_TYPES = frozenset({"cvr", "pnummer", "kommunekode", "akassekode"})
IDENTITY_NAMES = frozenset({"person_key", "indberetter"})
# Tables the load keeps beside the models (meta) or copies from dq.duckdb (dq).
OTHER_TABLES: dict[str, str] = {
    "main.mart_ydelser_publiceret": "The published statistics (latest vintage): the full grid of the covered "
                                    "periods, suppressed against an LP attacker (hidden counts NULL, flagged in "
                                    "*_diskretioneret); written by the load's hook "
                                    "(pipelines/warehouse/suppression.py, docs/statistics.md).",
    "meta.load": "One row per nightly load: its load date (indlaest_dato, the transaction time the facts' "
                 "as-of macros take), timings and counts.",
    "meta.loaded_payload": "One row per lake payload the warehouse has loaded, with the load that loaded it.",
    "meta.retracted_payload": "Payloads superseded by a corrected re-delivery: their rows leave the current "
                              "views from that load on (as-of views still show them before).",
    "meta.model_run": "Rows and seconds per model and load.",
    "dq.results": "Copied from dq.duckdb: data-quality results per delivery day, reporter, dataset and rule "
                  "(with its §); sample_keys are record keys, never CPR numbers.",
    "dq.timeliness": "Copied from dq.duckdb: registration lag histogram per delivery day, reporter, dataset and "
                     "deadline rule (with its §).",
    "dq.completeness": "Copied from dq.duckdb: payloads and records per delivery day, reporter and dataset.",
}
_TRAILING = re.compile(r'("?)([A-Za-z_][A-Za-z0-9_]*)\1\s*,?\s*--\s*(.+?)\s*$')
_SOURCE_CSV = re.compile(r"data/reference/([a-z0-9_]+)\.csv")


class DictionaryError(RuntimeError):
    """A model cannot be documented because its SQL fails; the message names the model file."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str = ""
    paragraph: str = ""
    codelist: str | None = None
    ref: str | None = None  # the dimension the column refers to


@dataclass
class ModelDoc:
    model: Model
    columns: list[Column]
    contract: Contract | None = None
    generated: bool = False
    history: list[Column] = field(default_factory=list)  # extra columns of the _historik view
    built: bool | None = None  # None: no warehouse given; False: the model is missing from it
    header: dict[str, str] = field(default_factory=dict)  # header keys with their wrapped lines joined
    notes: list[str] = field(default_factory=list)  # the header's other comments


# --------------------------------------------------------------------------- models and schema
def _all_models(models_dir: Path, contracts: dict[str, Contract]
                ) -> tuple[dict[str, Model], dict[str, Contract], dict[str, str]]:
    """Model files, with the generated ones replaced by what ``contracts`` generate now; and their texts."""
    models = load_models(models_dir)
    texts = {n: m.path.read_text(encoding="utf-8") for n, m in models.items()}
    owner: dict[str, Contract] = {}
    with tempfile.TemporaryDirectory(prefix="dsdw-dict-") as tmp:
        for c in contracts.values():
            for name, text in ((stg_name(c), staging_sql(c)), (fct_name(c), fact_sql(c))):
                p = Path(tmp) / f"{name}.sql"
                p.write_text(text, encoding="utf-8")
                models[name] = parse_model(p)
                texts[name] = text
                owner[name] = c
    return models, owner, texts


_KEY_LINE = re.compile(r"^--\s*([a-z_ ]+):\s*(.*)$")
# A line ending like this is continued by the next, even one starting in upper case ("DST's" / "DOMYD").
_CONTINUES = re.compile(r"(?:[,;(:\-]|'s|\b(?:and|og|or|eller|the|a|an|of|af|to|til|in|i|by|with|med|for|from|fra"
                        r"|per|than|end|as|som|is|er))$")
# Header keys of models.py that hold one line; the others may wrap over several comment lines.
ONE_LINE_KEYS = frozenset({"model", "layer", "database", "materialization", "depends_on", "scope", "keys",
                           "kind", "record_key", "valid time", "callable", "keeps_replaced"})
HEADER_KEYS = ONE_LINE_KEYS | {"grain", "legal basis", "source"}


def header_entries(text: str, columns: Iterable[str] = ()) -> list[tuple[str | None, str]]:
    """The leading comment block of a model as (key, text) entries; key None for a free note.

    Long values wrap over several comment lines: a line continues the entry above
    when it starts in lower case, with punctuation or indented, or when the line
    above ends mid-phrase.  ``-- word: ...`` starts a new entry when ``word`` is a
    header key or one of the model's ``columns`` (the author's column description).
    An empty ``--`` line ends an entry.
    """
    cols = set(columns)
    out: list[list] = []
    open_entry = False
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        if line.startswith("-- generated by"):
            continue
        body = line[2:]
        stripped = body.strip()
        if not stripped:
            open_entry = False
            continue
        m = _KEY_LINE.match(line)
        prev = out[-1] if out else None
        can_continue = open_entry and prev is not None and prev[0] not in ONE_LINE_KEYS
        if m and (m.group(1).strip() in HEADER_KEYS or m.group(1).strip() in cols
                  or not can_continue or prev[1].endswith(".")):
            out.append([m.group(1).strip(), m.group(2).strip()])
            open_entry = True
        elif can_continue and (body.startswith("   ") or not stripped[0].isupper() or prev[0] is None
                               or _CONTINUES.search(prev[1]) is not None):
            prev[1] = f"{prev[1]} {stripped}"
        else:
            out.append([None, stripped])
            open_entry = True
    return [(k, " ".join(v.split())) for k, v in out]


def split_column_notes(text: str, columns: Iterable[str]) -> tuple[str, list[tuple[list[str], str]]]:
    """Cut ``a: ...; b/c: ...; d = e / f, e = ...`` into the text before the first column and per column.

    A column note starts at the beginning, after ``;`` or ``.``, or (for ``name = formula``) after a
    comma; ``a/b:`` describes both.  ``name = formula`` keeps the formula with its name.
    """
    cols = sorted(set(columns), key=len, reverse=True)
    if not cols:
        return text, []
    alt = "|".join(re.escape(c) for c in cols)
    pat = re.compile(rf"(?:^|(?<=[;.])\s+|(?<=,)\s+(?=(?:{alt})\s+=\s))((?:{alt})(?:/(?:{alt}))*)(?::\s+|\s+=\s)")
    found = list(pat.finditer(text))
    if not found:
        return text, []
    head = text[:found[0].start()].strip().rstrip(";,").strip()
    parts = []
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        body = text[m.start(1) if "=" in m.group(0)[len(m.group(1)):] else m.end():end].strip().rstrip(";,").strip()
        parts.append((m.group(1).split("/"), body))
    return head, parts


def _wrap(sql: str) -> str:
    return f"SELECT * FROM (\n{sql}\n) LIMIT 0"


def empty_schema(models: dict[str, Model], owner: dict[str, Contract]) -> dict[str, list[tuple[str, str]]]:
    """Every model's (and history view's) columns and DuckDB types from a build on zero rows.

    The SQL is the nightly load's own; only the data is missing, so a model the load
    could not create fails here too, naming the model.
    """
    from pipelines.lake.schema import arrow_schema
    from pipelines.warehouse.build import META_SQL, RESTRICTED_SQL, history_views_sql
    from pipelines.warehouse.keys import HMAC_MACRO_SQL

    con = duckdb.connect()
    try:
        con.execute("ATTACH ':memory:' AS restricted")
        for s in [*META_SQL, *RESTRICTED_SQL, HMAC_MACRO_SQL, *macro_sql()]:
            con.execute(s)
        con.execute("SET VARIABLE reference_dir = ?", [str(REFERENCE_DIR)])
        con.execute("SET VARIABLE load_date = ?", [dt.date(2000, 1, 1)])
        con.execute("SET VARIABLE load_id = ?", ["dictionary"])
        con.execute("CREATE TEMP TABLE inc_payloads (payload_id VARCHAR)")
        con.execute("CREATE TEMP TABLE affected_persons (person_key VARCHAR)")
        con.execute("CREATE TEMP TABLE affected_maaneder (maaned DATE)")
        values = {"ipad": bytes(64), "opad": bytes(64), "load_date": dt.date(2000, 1, 1), "load_id": "dictionary"}
        order = build_order(models)
        # as the load: increments and facts first, then the derived models (marts' appends too) in dependency order
        first = [m for m in order if m.materialization == "increment"
                 or (m.materialization == "append" and m.layer != "mart")]
        order = first + [m for m in order if m not in first]
        out: dict[str, list[tuple[str, str]]] = {}
        for m in order:
            q = m.qualified
            params = {k: v for k, v in values.items() if f"${k}" in m.sql}
            try:
                if m.materialization == "increment":
                    c = owner[m.name]
                    con.register("inc_empty", pa.Table.from_batches([], schema=arrow_schema(c)))
                    con.execute("CREATE OR REPLACE TEMP VIEW inc AS SELECT * FROM inc_empty")
                if m.materialization == "view":
                    con.execute(f"CREATE VIEW {q} AS {m.sql}")
                else:
                    con.execute(f"CREATE TABLE {q} AS {_wrap(m.sql)}", params)
                if m.materialization == "append" and m.name in owner:
                    for s in history_views_sql(owner[m.name].dataset):
                        con.execute(s)
                    out[m.name + "_historik"] = _describe(con, q + "_historik")
            except duckdb.Error as exc:
                raise DictionaryError(f"model {m.name} ({m.path}): its SQL fails on an empty build: {exc}") from exc
            out[m.name] = _describe(con, q)
        from pipelines.warehouse.suppression import PUBLISHED, publish_suppressed

        publish_suppressed(con)  # the published statistics table is made by the load's hook, not a model
        out[f"main.{PUBLISHED}"] = _describe(con, PUBLISHED)
        for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                                "AND schema_name = 'meta' ORDER BY 1").fetchall():
            out[f"meta.{t}"] = _describe(con, f"meta.{t}")
        return out
    finally:
        con.close()


def _describe(con: duckdb.DuckDBPyConnection, qualified: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {qualified}").fetchall()]


def warehouse_schema(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Columns and types of every table and view in a built warehouse, keyed ``schema.name``."""
    from pipelines.warehouse.sql import connect

    con = connect(path)
    try:
        rows = con.execute(
            "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY schema_name, table_name, column_index").fetchall()
    finally:
        con.close()
    out: dict[str, list[tuple[str, str]]] = {}
    for schema, table, col, typ in rows:
        out.setdefault(f"{schema}.{table}", []).append((col, typ))
    return out


# --------------------------------------------------------------------------- column documentation
def _trailing_comments(sql: str) -> dict[str, str]:
    """``col, -- text`` lines of a hand-written model: the author's column descriptions."""
    out: dict[str, str] = {}
    for line in sql.splitlines():
        code = line.split("--", 1)[0]
        if not code.strip():
            continue
        m = _TRAILING.search(line)
        if m and m.start(2) < len(code):
            out[m.group(2)] = m.group(3)
    return out


def _pk_field(name: str) -> str | None:
    if name == "person_key":
        return "cpr"
    if name.endswith("_person_key"):
        return name.removesuffix("_person_key") + "_cpr"
    return None


def _contract_column(c: Contract, name: str, typ: str) -> Column:
    """Description, § and code list of one column of a generated model."""
    names = set(c.field_names)
    src = _pk_field(name)
    if src and src in names and src != "cpr":
        f = c.field(src)
        return Column(name, typ, f"Pseudonym (HMAC-SHA256) af {src}: {f.description}".strip(),
                      f.paragraph or c.legal_basis)
    if name in TECHNICAL:
        desc, item = TECHNICAL[name]
        return Column(name, typ, desc, _technical_paragraph(c, item))
    if name in names:
        f = c.field(name)
        return Column(name, typ, " ".join(f.description.split()), f.paragraph or "", f.codelist)
    return Column(name, typ)


def _technical_paragraph(c: Contract, item: str | None) -> str:
    if item == "cpr" and "cpr" in c.field_names:
        return c.field("cpr").paragraph or ""
    if item == "valid":
        vt = valid_time(c)
        ps = [c.field(n).paragraph for n in (vt.start, vt.end) if n and c.field(n).paragraph]
        return "; ".join(dict.fromkeys(p for p in ps if p))
    if item == "registration":
        return c.field(c.registration_time).paragraph or ""
    return ""


def _inherited(name: str, deps: list[ModelDoc]) -> Column | None:
    """The first documented column of that name among the models this one depends on."""
    for d in deps:
        for col in d.columns + d.history:
            if col.name == name and (col.description or col.codelist or col.ref):
                return col
    return None


def _dim_index(models: dict[str, Model]) -> tuple[dict[str, str], dict[str, str]]:
    """code list -> dim (from the dim's ``source: data/reference/<list>.csv``) and key column -> dim."""
    by_list: dict[str, str] = {}
    by_key: dict[str, str] = {}
    for m in sorted(models.values(), key=lambda m: m.name):
        if not m.name.startswith("dim_"):
            continue
        lists = _SOURCE_CSV.findall(m.header.get("source", ""))
        if lists:
            by_list.setdefault(lists[0], m.name)
        if len(m.keys) == 1 or m.keys[1:] == ("gyldig_fra",):  # a type-2 dimension: key + valid time
            by_key.setdefault(m.keys[0], m.name)
    return by_list, by_key


@dataclass
class Catalog:
    """Everything the dictionary and the ERD are rendered from."""

    docs: list[ModelDoc]
    by_list: dict[str, str]
    by_key: dict[str, str]
    warehouse: Path | None = None
    built: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    other: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # schema.table -> columns

    @property
    def by_name(self) -> dict[str, ModelDoc]:
        return {d.model.name: d for d in self.docs}


def catalog(models_dir: Path = MODELS_DIR, warehouse: Path | None = None,
            contracts: dict[str, Contract] | None = None) -> Catalog:
    """Document every model: columns from an empty build (or ``warehouse``), text from contracts and SQL."""
    contracts = contracts if contracts is not None else load_contracts()
    models, owner, texts = _all_models(models_dir, contracts)
    schema = empty_schema(models, owner)
    built = warehouse_schema(warehouse) if warehouse else None
    by_list, by_key = _dim_index(models)
    docs: dict[str, ModelDoc] = {}
    for m in build_order(models):
        cols = schema[m.name]
        hist = schema.get(m.name + "_historik", [])
        present: bool | None = None
        if built is not None and m.database == "warehouse":
            key = ("staging." if m.layer == "staging" else "main.") + m.name
            present = key in built
            if present:
                cols = built[key]
                hist = built.get(key + "_historik", hist)
        c = owner.get(m.name)
        names = [n for n, _ in cols]
        entries = header_entries(texts[m.name], names)
        header = {k: v for k, v in entries if k in HEADER_KEYS}
        col_notes: dict[str, str] = {}
        notes: list[str] = []
        for k, v in entries:
            if k in HEADER_KEYS:
                continue
            if k not in names and k is not None:
                v = f"{k}: {v}"
            head, parts = split_column_notes(v, names)
            if k in names:
                col_notes.setdefault(k, head)
            elif head:
                notes.append(head)
            for cs, text in parts:
                for x in cs:
                    col_notes.setdefault(x, text)
        comments = {**col_notes, **_trailing_comments(m.sql)} if c is None else {}
        deps = [docs[d] for d in m.depends_on if d in docs]
        own_list = next((x for x, d in by_list.items() if d == m.name), None)
        out: list[Column] = []
        for name, typ in cols:
            if c is not None:
                col = _contract_column(c, name, typ)
                ref = by_list.get(col.codelist or "")
                ftype = c.field(name).type if name in c.field_names else ""
                if ref is None and name in IDENTITY_NAMES:
                    ref = by_key.get(name)
                if ref is None and ftype in IDENTITY_TYPES:
                    ref = by_key.get(name) or by_key.get(ftype)
            else:
                inh = _inherited(name, deps)
                is_key = name in m.keys and own_list is not None
                desc = comments.get(name) or (TECHNICAL[name][0] if name in TECHNICAL else "") \
                    or (inh.description if inh else "") or KNOWN_COLUMNS.get(name, "") \
                    or (f"Kode i kodelisten {own_list}." if is_key else "")
                cl = (inh.codelist if inh else None) or (own_list if is_key else None)
                ref = (inh.ref if inh else None) or by_list.get(cl or "") or by_key.get(name)
                col = Column(name, typ, desc, inh.paragraph if inh else "", cl)
            if ref == m.name:
                ref = None
            out.append(Column(col.name, col.type, col.description, col.paragraph, col.codelist, ref))
        hcols = [Column(n, t, TECHNICAL[n][0]) for n, t in hist if n in HISTORY_ONLY]
        docs[m.name] = ModelDoc(m, out, c, c is not None, hcols, present, header, notes)
    if built is not None:
        known = {("staging." if m.layer == "staging" else "main.") + n for n, m in models.items()
                 if m.database == "warehouse"}
        known |= {k + "_historik" for k in known} | {k + "_aktuel" for k in known}
        other = {k: v for k, v in built.items() if k not in known}
    else:
        other = {k: v for k, v in schema.items() if k.startswith("meta.") or k == "main.mart_ydelser_publiceret"}
    return Catalog(list(docs.values()), by_list, by_key, warehouse, built or {}, dict(sorted(other.items())))


# --------------------------------------------------------------------------- Markdown
def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def _ref_cell(col: Column) -> str:
    parts = [col.codelist] if col.codelist else []
    if col.ref:
        parts.append(f"[{col.ref}](#{col.ref})")
    return " -> ".join(parts)


_SECTIONS = (
    ("Dimensions", lambda d: d.model.database == "warehouse" and d.model.name.startswith("dim_")),
    ("Facts and core views", lambda d: d.model.database == "warehouse" and d.model.layer == "core"
     and not d.model.name.startswith("dim_")),
    ("Marts", lambda d: d.model.database == "warehouse" and d.model.layer == "mart"),
    ("Staging (each load's increment)", lambda d: d.model.database == "warehouse" and d.model.layer == "staging"),
    ("Restricted database (CPR and health data; not in the analysts' database)",
     lambda d: d.model.database == "restricted"),
)


def build_dictionary(models_dir: Path = MODELS_DIR, warehouse: Path | None = None, *,
                     contracts: dict[str, Contract] | None = None) -> str:
    """The data dictionary as Markdown (deterministic: the same inputs give the same bytes)."""
    return render_dictionary(catalog(models_dir, warehouse, contracts))


def render_dictionary(cat: Catalog) -> str:
    docs = cat.docs
    lines = [
        "# Data dictionary: the dsdw warehouse",
        "",
        "<!-- generated by `dsdw warehouse docs` (pipelines/warehouse/dictionary.py) from "
        "pipelines/contracts/*.yaml and warehouse/models/**/*.sql: do not edit -->",
        "",
        f"The reported data are used for analysis and statistics in STAR's statistiske datavarehus "
        f"({USE_PARAGRAPHS}, BEK nr 912 af 17/07/2015). The analysts' database is `warehouse.duckdb`, "
        "published by the nightly load; open it read-only (`dsdw sql \"...\"`; examples in "
        "`docs/example_queries.sql`). It holds no CPR numbers, names, contact data, free text or health data:",
        "",
        "- a contract field of PII class `cpr` becomes a keyed pseudonym (`cpr` -> `person_key`, "
        "`aegtefaelle_cpr` -> `aegtefaelle_person_key`), plus `foedselsaar`, `koen` and `alder` derived "
        "from the CPR number;",
        f"- fields of PII class {', '.join(f'`{p}`' for p in sorted(DROPPED_PII))} stay in the restricted lake "
        "(listed per dataset below);",
        "- datasets with `health` fields (Statens Serum Institut, §§ 92-95) go to the restricted database "
        "only, sealed at rest as an age file, together with the CPR <-> person_key map.",
        "",
        "Facts are append-only and bitemporal. Each fact `fct_<dataset>` has the views `fct_<dataset>_historik` "
        "(every version with `indlaest_til` and `er_seneste`), `fct_<dataset>_aktuel` (the current, non-deleted "
        "version of each record) and the table macro `fct_<dataset>_as_of(d)` (the versions current on load "
        "date `d`: what the warehouse knew then).",
        "",
        "Code lists are `data/reference/<list>.csv`; the last column names the list and, linked, the dimension "
        "a column refers to.",
        "",
        (f"Column names and types are those of the built warehouse `{cat.warehouse}`." if cat.warehouse else
         "Column names and types are those every model produces (its SQL run on an empty build)."),
        "",
        "## Technical columns",
        "",
        "| column | description |",
        "|---|---|",
        *[f"| `{n}` | {_cell(d)} |" for n, (d, _) in TECHNICAL.items()],
        "",
        "## Contents",
        "",
    ]
    for title, pred in _SECTIONS:
        sel = sorted((d for d in docs if pred(d)), key=lambda d: d.model.name)
        if sel:
            lines.append(f"- {title}: " + ", ".join(f"[{d.model.name}](#{d.model.name})" for d in sel))
    lines.append("")
    by_name = cat.by_name
    for title, pred in _SECTIONS:
        sel = sorted((d for d in docs if pred(d)), key=lambda d: d.model.name)
        if not sel:
            continue
        lines += [f"## {title}", ""]
        for d in sel:
            lines += _model_md(d, by_name)
    if cat.other:
        lines += ["## Load metadata and data-quality tables", ""]
        for k, cols in cat.other.items():
            lines += [f"### {k}", "", *([OTHER_TABLES[k], ""] if k in OTHER_TABLES else []),
                      "| column | type | description |", "|---|---|---|"]
            lines += [f"| `{n}` | {t} | {_cell(TECHNICAL.get(n, ('',))[0])} |" for n, t in cols]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _model_md(d: ModelDoc, by_name: dict[str, ModelDoc]) -> list[str]:
    m = d.model
    h = d.header
    lines = [f"### {m.name}", ""]
    if d.built is False:
        lines += ["**Not found in the given warehouse.**", ""]
    c = d.contract
    meta = [
        ("layer", m.layer), ("database", m.database),
        ("materialization", m.materialization + (f" (scope: {m.scope})" if m.scope else "")
         + (f" (`{h['callable']}`)" if h.get("callable") else "")
         + (" (keeps the rows it replaces and inserts)" if h.get("keeps_replaced") == "true" else "")),
        ("grain", h.get("grain", m.grain)), ("keys", ", ".join(f"`{k}`" for k in m.keys)),
        ("depends on", ", ".join(f"[{x}](#{x})" for x in m.depends_on)),
        ("legal basis", h.get("legal basis") or (c.legal_basis if c else "")),
        ("source", h.get("source", "")), ("kind", h.get("kind", "")), ("valid time", h.get("valid time", "")),
    ]
    if c is not None:
        meta.append(("dataset", f"{c.title} (`pipelines/contracts/{c.dataset}.yaml`; reporter {c.reporter}, "
                                f"channel {c.channel}" + (f", {c.channel_paragraph}" if c.channel_paragraph else "")
                     + ")"))
        dropped = [f for f in c.fields if f.pii in DROPPED_PII]
        if dropped and not is_restricted(c):
            meta.append(("not in this database (PII; stays in the restricted lake)",
                         ", ".join(f"`{f.name}` ({f.pii})" for f in dropped)))
        cprs = [f for f in c.fields if f.type == "cpr"]
        if cprs and not is_restricted(c):
            meta.append(("pseudonymised", ", ".join(f"`{f.name}` -> `{_pk(f.name)}`" for f in cprs)))
        if is_restricted(c):
            meta.append(("restricted", "health data (PII class health): only in the sealed restricted database"))
    if d.notes and c is None:  # a generated model's notes repeat its contract (rendered above)
        meta.append(("notes", " ".join(d.notes)))
    lines += ["| | |", "|---|---|", *[f"| {k} | {_cell(v)} |" for k, v in meta if v], ""]
    if m.layer == "staging" and "__" in m.name:
        fact = by_name.get(f"fct_{m.name.split('__', 1)[1]}")
        if fact is not None and [x.name for x in d.columns] == [x.name for x in fact.columns
                                                                if x.name not in FACT_ONLY]:
            return lines + [f"Columns: those of [{fact.model.name}](#{fact.model.name}) except "
                            f"{', '.join(f'`{x}`' for x in FACT_ONLY)}, for the payloads new in the load only.", ""]
    lines += ["| column | type | description | § | code list -> dimension |", "|---|---|---|---|---|"]
    lines += [f"| `{x.name}` | {x.type} | {_cell(x.description)} | {_cell(x.paragraph)} | {_ref_cell(x)} |"
              for x in d.columns]
    lines.append("")
    if d.history:
        db = "restricted." if m.database == "restricted" else ""
        lines += [f"Views: `{db}{m.name}_historik` (these columns and "
                  + " and ".join(f"`{x.name}` {x.type}" for x in d.history)
                  + f"), `{db}{m.name}_aktuel` and table macro `{db}{m.name}_as_of(d)`.", ""]
    return lines


def _pk(name: str) -> str:
    return "person_key" if name == "cpr" else name.removesuffix("_cpr") + "_person_key"


# --------------------------------------------------------------------------- ERD
def _mermaid_type(t: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", t).strip("_") or "ANY"


def build_erd(models_dir: Path = MODELS_DIR, warehouse: Path | None = None, *,
              contracts: dict[str, Contract] | None = None) -> str:
    """Mermaid erDiagram of the analysts' database: facts, marts and dimensions.

    An edge is a column that refers to a dimension: through the code list the
    dimension is built from, or by carrying the dimension's key (``person_key``,
    ``indberetter``, CVR/kommune/a-kasse codes, and any key in hand-written
    models).  Facts and marts show their key and foreign-key columns only.
    """
    return render_erd(catalog(models_dir, warehouse, contracts))


def render_erd(cat: Catalog) -> str:
    wh = [d for d in cat.docs if d.model.database == "warehouse" and d.model.layer in ("core", "mart")]
    dims = sorted((d for d in wh if d.model.name.startswith("dim_")), key=lambda d: d.model.name)
    facts = sorted((d for d in wh if not d.model.name.startswith("dim_")), key=lambda d: d.model.name)
    lines = ["# Warehouse ERD", "",
             "<!-- generated by `dsdw warehouse docs` (pipelines/warehouse/dictionary.py): do not edit -->", "",
             "The analysts' database (`warehouse.duckdb`): facts and marts and the dimensions their columns "
             "refer to (through a code list or the dimension's key). Facts and marts show their key and "
             "foreign-key columns only; every column is in [the data dictionary](warehouse_dictionary.md).",
             "", "```mermaid", "erDiagram"]
    edges: set[tuple[str, str, str]] = set()
    for d in dims + facts:
        is_dim = d.model.name.startswith("dim_")
        lines.append(f"    {d.model.name} {{")
        for col in d.columns:
            is_pk = col.name in d.model.keys
            if col.ref:
                edges.add((d.model.name, col.ref, col.name))
            if is_dim or is_pk or col.ref:
                mark = ", ".join(x for x, on in (("PK", is_pk), ("FK", bool(col.ref))) if on)
                lines.append(f"        {_mermaid_type(col.type)} {col.name}" + (f" {mark}" if mark else ""))
        lines.append("    }")
    known = {d.model.name: d for d in wh}
    for a, b, col in sorted(edges):
        if b in known:  # one row per key, or (type 2) several periods per key
            card = "||" if len(known[b].model.keys) == 1 else "|{"
            lines.append(f'    {a} }}o--{card} {b} : "{col}"')
    lines += ["```", ""]
    return "\n".join(lines)


def write_docs(out_dir: Path = DOCS_DIR, warehouse: Path | None = None) -> list[Path]:
    """Write the data dictionary and the ERD into ``out_dir``; returns both paths."""
    cat = catalog(warehouse=warehouse)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in ((DICTIONARY_FILE, render_dictionary(cat)), (ERD_FILE, render_erd(cat))):
        p = out_dir / name
        if not p.exists() or p.read_text(encoding="utf-8") != text:
            p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths


if __name__ == "__main__":  # pragma: no cover
    for p in write_docs():
        print(p)
