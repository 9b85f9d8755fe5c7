"""The warehouse's data dictionary and ERD, generated from the dbt project's manifest and an empty build.

Nobody writes column documentation twice: a contract field's description, § reference and code list travel
with it into every model generated from the contract (``stg_`` -> ``fct_`` -> ``_aktuel``/``_historik``), and
what the analysts' database receives from a field follows :mod:`pipelines.warehouse.generate` (``cpr`` ->
``person_key``; ``name``/``contact``/``free_text`` fields stay in the lake; health datasets only in the
restricted database).  The hand-written models (``warehouse/dbt/models/derived``) are documented in their
schema YAML (description; grain, keys, § and a dimension's code list, ``codeliste``, in ``meta``; column
descriptions); a column takes its code list, and where the YAML has none its description and §, from the same
column in a model it reads from.  Models, their dependencies
and docs come from dbt's manifest; column names and types from ``dbt run`` on an empty warehouse (the
nightly load's own SQL on zero rows), or from a built ``warehouse.duckdb`` when one is given.

``dsdw warehouse docs`` (and ``make generate``) writes ``docs/warehouse_dictionary.md`` and
``docs/warehouse_erd.md``; a test fails while the committed files differ from what the project produces.
``dbt docs generate`` serves the same YAML as a browsable site with lineage (README).
"""

from __future__ import annotations

import datetime as dt
import graphlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.contracts import REPO_ROOT, Contract, load_contracts
from pipelines.warehouse.generate import DROPPED_PII, fct_name, is_restricted, stg_name, valid_time

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
    "meta.publikation_koersel": "One row per run of the publication hook (every load, and `dsdw warehouse revise`):"
                                " its vintage if it made one, the closed years it revised and those still pending "
                                "a revision after it (docs/statistics.md, Revisioner).",
    "meta.publikation_afventer": "View: the closed years with a revision pending after the latest run, since which "
                                 "load day, and the vintage whose figures stay in force until then (the API shows "
                                 "it per table).",
    "dq.results": "Copied from dq.duckdb: data-quality results per delivery day, reporter, dataset and rule "
                  "(with its §); sample_keys are record keys, never CPR numbers.",
    "dq.timeliness": "Copied from dq.duckdb: registration lag histogram per delivery day, reporter, dataset and "
                     "deadline rule (with its §).",
    "dq.completeness": "Copied from dq.duckdb: payloads and records per delivery day, reporter and dataset.",
}
EMPTY_DAY = dt.date(2000, 1, 1)
LAYERS = {"stg_": "staging", "int_": "scope", "dim_": "core", "fct_": "core", "mart_": "mart"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str = ""
    paragraph: str = ""
    codelist: str | None = None
    ref: str | None = None  # the dimension the column refers to


@dataclass(frozen=True)
class Model:
    """One documented model, as dbt's manifest describes it."""

    name: str
    path: str  # the model file, relative to the repository
    layer: str  # staging | scope | core | mart
    database: str  # warehouse | restricted
    materialization: str
    grain: str = ""
    keys: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    legal_basis: str = ""
    source: str = ""  # the code list a dimension is keyed by (its YAML's meta.codeliste)


@dataclass
class ModelDoc:
    model: Model
    columns: list[Column]
    contract: Contract | None = None
    generated: bool = False
    history: list[Column] = field(default_factory=list)  # extra columns of the _historik view
    built: bool | None = None  # None: no warehouse given; False: the model is missing from it


# --------------------------------------------------------------------------- manifest and empty build
Schema = dict[tuple[str, str], tuple[str, list[tuple[str, str]]]]  # (database kind, table) -> (schema, columns)


def _columns(con: duckdb.DuckDBPyConnection, databases: dict[str, str]) -> Schema:
    """Columns and types of every table and view in the given attached databases (name -> kind)."""
    out: Schema = {}
    rows = con.execute("SELECT database_name, schema_name, table_name, column_name, data_type FROM duckdb_columns() "
                       "WHERE database_name IN (SELECT unnest(?::VARCHAR[])) "
                       "ORDER BY database_name, schema_name, table_name, column_index", [list(databases)]).fetchall()
    for db, schema, table, col, typ in rows:
        out.setdefault((databases[db], table), (schema, []))[1].append((col, typ))
    return out


def empty_build(workdir: Path) -> tuple[object, Schema]:
    """dbt's parsed manifest and every model's columns from ``dbt run`` on an empty warehouse in ``workdir``
    (the load's bookkeeping tables as a first load has them; the published statistics table as the load's hook
    makes it)."""
    from pipelines.warehouse import build as B
    from pipelines.warehouse.dbt_runner import LOAD_SQL, dbt_env, parsed_manifest, run_dbt
    from pipelines.warehouse.suppression import publish_suppressed

    db = B.build_path(workdir)  # the load's file name: a process that also loads reuses the parsed manifest
    rdb = workdir / "restricted" / "restricted.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    rdb.parent.mkdir(parents=True, exist_ok=True)

    def connect() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(db))
        con.execute(f"ATTACH '{rdb}' AS restricted")
        B._setup(con, EMPTY_DAY, "dictionary")
        return con

    con = connect()
    for s in LOAD_SQL:
        con.execute(s)
    con.execute("INSERT INTO meta.current_load VALUES ('dictionary', ?)", [EMPTY_DAY])
    con.close()
    env = dbt_env(workdir, db, rdb)
    run_dbt(workdir, env, "run")
    con = connect()
    try:
        publish_suppressed(con)  # the published statistics table is made by the load's hook, not a model
        schema = _columns(con, {db.stem: "warehouse", "restricted": "restricted"})
    finally:
        con.close()
    return parsed_manifest(workdir, env), schema


def warehouse_schema(path: Path) -> Schema:
    """Columns and types of every table and view in a built (published) warehouse."""
    from pipelines.warehouse.sql import connect

    con = connect(path)
    try:
        name = con.execute("SELECT current_database()").fetchone()[0]
        return _columns(con, {name: "warehouse"})
    finally:
        con.close()


# --------------------------------------------------------------------------- column documentation
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
    """The first documented column of that name among the models this one reads."""
    for d in deps:
        for col in d.columns + d.history:
            if col.name == name and (col.description or col.codelist or col.ref):
                return col
    return None


@dataclass
class Catalog:
    """Everything the dictionary and the ERD are rendered from."""

    docs: list[ModelDoc]
    by_list: dict[str, str]
    by_key: dict[str, str]
    warehouse: Path | None = None
    built: Schema = field(default_factory=dict)
    other: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # schema.table -> columns

    @property
    def by_name(self) -> dict[str, ModelDoc]:
        return {d.model.name: d for d in self.docs}


def _owners(contracts: dict[str, Contract]) -> dict[str, tuple[Contract, str]]:
    """Generated model name -> (its contract, which of the contract's models it is)."""
    out: dict[str, tuple[Contract, str]] = {}
    for c in contracts.values():
        out[stg_name(c)] = (c, "staging")
        for suffix in ("", "_aktuel", "_historik"):
            out[fct_name(c) + suffix] = (c, "fact" + suffix)
    return out


def _model(node, contract: Contract | None, kind: str) -> Model:  # noqa: ANN001 (dbt's ModelNode)
    name = node.name
    layer = next(v for k, v in LAYERS.items() if name.startswith(k))
    database = "restricted" if node.config.database == "restricted" else "warehouse"
    deps = tuple(dict.fromkeys(_entry(u.rsplit(".", 1)[1]) for u in node.depends_on.nodes if u.startswith("model.")))
    meta = node.meta or {}
    if contract is not None:
        keys = list(contract.record_key or ["besked_id"])
        keys += ["version", "aendringstype"] + (["indlaest_dato"] if kind == "fact" else [])
        return Model(name, f"warehouse/{node.original_file_path}", layer, database, node.config.materialized,
                     node.description.rstrip("."), tuple(keys), deps, contract.legal_basis)
    grain = meta.get("grain") or node.description.rstrip(".")
    return Model(name, f"warehouse/{node.original_file_path}", layer, database, node.config.materialized, grain,
                 tuple(meta.get("keys") or ()), deps, meta.get("paragraf", ""),
                 f"data/reference/{meta['codeliste']}.csv" if meta.get("codeliste") else "")


def _entry(name: str) -> str:
    """The dictionary entry a model is documented in (a fact's ``_aktuel``/``_historik`` in the fact's)."""
    return re.sub(r"_(aktuel|historik)$", "", name) if name.startswith("fct_") else name


def catalog(warehouse: Path | None = None, contracts: dict[str, Contract] | None = None) -> Catalog:
    """Document every model: dbt's manifest (models, dependencies, YAML docs) and an empty build's columns (or
    ``warehouse``'s), with the contracts' field docs for the generated models."""
    contracts = contracts if contracts is not None else load_contracts()
    with tempfile.TemporaryDirectory(prefix="dsdw-dict-") as tmp:
        manifest, schema = empty_build(Path(tmp))
    built = warehouse_schema(warehouse) if warehouse else None
    owners = _owners(contracts)
    nodes = {n.name: n for n in manifest.nodes.values()
             if n.resource_type == "model" and n.package_name == "dsdw_warehouse" and n.config.enabled}
    documented = {n: node for n, node in nodes.items() if n not in owners or owners[n][1] in ("staging", "fact")}
    models = {n: _model(node, *(owners.get(n) or (None, ""))) for n, node in documented.items()}
    by_list: dict[str, str] = {}
    by_key: dict[str, str] = {}
    for m in sorted(models.values(), key=lambda m: m.name):
        if not m.name.startswith("dim_"):
            continue
        codeliste = (documented[m.name].meta or {}).get("codeliste")  # the list the dimension is keyed by
        if codeliste:
            by_list.setdefault(codeliste, m.name)
        if len(m.keys) == 1 or m.keys[1:] == ("gyldig_fra",):  # a type-2 dimension: key + valid time
            by_key.setdefault(m.keys[0], m.name)
    ts = graphlib.TopologicalSorter({n: {d for d in m.depends_on if d in models and d != n} for n, m in models.items()})
    docs: dict[str, ModelDoc] = {}
    for name in ts.static_order():
        m, node = models[name], documented[name]
        _, cols = schema.get((m.database, name), ("", []))
        hist = schema.get((m.database, name + "_historik"), ("", []))[1]
        present: bool | None = None
        if built is not None and m.database == "warehouse":
            present = ("warehouse", name) in built
            if present:
                cols = built[("warehouse", name)][1]
                hist = built.get(("warehouse", name + "_historik"), ("", hist))[1]
        c = owners[name][0] if name in owners else None
        deps = [docs[d] for d in m.depends_on if d in docs]
        own_list = next((x for x, d in by_list.items() if d == name), None)
        out: list[Column] = []
        for cname, typ in cols:
            if c is not None:
                col = _contract_column(c, cname, typ)
                ref = by_list.get(col.codelist or "")
                ftype = c.field(cname).type if cname in c.field_names else ""
                if ref is None and cname in IDENTITY_NAMES:
                    ref = by_key.get(cname)
                if ref is None and ftype in IDENTITY_TYPES:
                    ref = by_key.get(cname) or by_key.get(ftype)
            else:
                yml = node.columns.get(cname)
                inh = _inherited(cname, deps)
                is_key = cname in m.keys and own_list is not None
                desc = (yml.description if yml else "") or (TECHNICAL[cname][0] if cname in TECHNICAL else "") \
                    or (inh.description if inh else "") or KNOWN_COLUMNS.get(cname, "") \
                    or (f"Kode i kodelisten {own_list}." if is_key else "")
                par = ((yml.meta or {}).get("paragraf", "") if yml else "") or (inh.paragraph if inh else "")
                cl = (inh.codelist if inh else None) or (own_list if is_key else None)
                ref = (inh.ref if inh else None) or by_list.get(cl or "") or by_key.get(cname)
                col = Column(cname, typ, desc, par, cl)
            if ref == name:
                ref = None
            out.append(Column(col.name, col.type, col.description, col.paragraph, col.codelist, ref))
        hcols = [Column(n, t, TECHNICAL[n][0]) for n, t in hist if n in HISTORY_ONLY] if c is not None else []
        docs[name] = ModelDoc(m, out, c, c is not None, hcols, present)
    known = {(m.database, n + s) for n, m in models.items() for s in ("", "_aktuel", "_historik")}
    src = built if built is not None else schema
    other = {f"{sch}.{t}": cols for (kind, t), (sch, cols) in src.items()
             if kind == "warehouse" and (kind, t) not in known}
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
    ("Load scope (schema staging: what each load recomputes)",
     lambda d: d.model.database == "warehouse" and d.model.layer == "scope"),
    ("Restricted database (CPR and health data; not in the analysts' database)",
     lambda d: d.model.database == "restricted"),
)


def render_dictionary(cat: Catalog) -> str:
    docs = cat.docs
    lines = [
        "# Data dictionary: the dsdw warehouse",
        "",
        "<!-- generated by `make generate` (pipelines/warehouse/dictionary.py) from the dbt project's manifest "
        "(warehouse/dbt) and pipelines/contracts/*.yaml: do not edit -->",
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
        "Facts are append-only and bitemporal. Each fact `fct_<dataset>` has the table `fct_<dataset>_aktuel` "
        "(the current, non-deleted version of each record; a view in the restricted database), the view `fct_<dataset>_historik` (every version "
        "with `indlaest_til` and `er_seneste`) and the table macro `fct_<dataset>_as_of(d)` (the versions "
        "current on load date `d`: what the warehouse knew then).",
        "",
        "Code lists are `data/reference/<list>.csv`; the last column names the list and, linked, the dimension "
        "a column refers to.",
        "",
        (f"Column names and types are those of the built warehouse `{cat.warehouse}`." if cat.warehouse else
         "Column names and types are those every model produces (`dbt run` on an empty warehouse)."),
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
    lines = [f"### {m.name}", ""]
    if d.built is False:
        lines += ["**Not found in the given warehouse.**", ""]
    c = d.contract
    vt = valid_time(c) if c is not None else None
    meta = [
        ("layer", m.layer), ("database", m.database), ("materialization", f"{m.materialization} (dbt)"),
        ("model", f"`{m.path}`"), ("grain", m.grain), ("keys", ", ".join(f"`{k}`" for k in m.keys)),
        ("depends on", ", ".join(f"[{x}](#{x})" for x in m.depends_on)),
        ("legal basis", m.legal_basis), ("source", m.source),
        ("valid time", (f"{vt.start} .. {vt.end}" if vt.end else f"{vt.start} (event)") if vt else ""),
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
        kind = "view" if db else "table"
        lines += [f"Also: `{db}{m.name}_aktuel` ({kind}: the current version of each record, these columns), "
                  f"`{db}{m.name}_historik` (view: these columns and "
                  + " and ".join(f"`{x.name}` {x.type}" for x in d.history)
                  + f") and the table macro `{db}{m.name}_as_of(d)`.", ""]
    return lines


def _pk(name: str) -> str:
    return "person_key" if name == "cpr" else name.removesuffix("_cpr") + "_person_key"


# --------------------------------------------------------------------------- ERD
def _mermaid_type(t: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", t).strip("_") or "ANY"


def render_erd(cat: Catalog) -> str:
    """Mermaid erDiagram of the analysts' database: facts, marts and dimensions.

    An edge is a column that refers to a dimension: through the code list the dimension is built from, or by
    carrying the dimension's key (``person_key``, ``indberetter``, CVR/kommune/a-kasse codes, and any key in
    hand-written models).  Facts and marts show their key and foreign-key columns only.
    """
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
