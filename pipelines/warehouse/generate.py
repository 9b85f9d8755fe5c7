"""The dbt project's models generated from the contracts: per dataset its staging, fact, current-state and
history models, their schema YAML (descriptions, § and PII class in ``meta``, tests) and the lake sources.

A field added to a contract reaches the warehouse through these files: run ``make generate`` and commit; a
test fails while the committed files differ from what the contracts produce.  The hand-written models
(dimensions, the weekly panel, marts: ``warehouse/dbt/models/derived``) live beside them and are never
overwritten.

What the analysts' database receives from a contract field is decided by its
PII class alone: ``cpr`` fields become keyed pseudonyms (``cpr`` ->
``person_key``, ``aegtefaelle_cpr`` -> ``aegtefaelle_person_key``); ``name``,
``contact`` and ``free_text`` fields stay in the lake; datasets with ``health``
fields go to the restricted database only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from pipelines.contracts import REPO_ROOT, Contract, Field, load_contracts

DROPPED_PII = {"name", "contact", "free_text"}
ENVELOPE_KEPT = ["besked_id", "aendringstype", "version", "indberetter", "haendelsestidspunkt",
                 "registreringstidspunkt"]
LINEAGE = ["_channel", "_reporter", "_payload_id", "_record_no", "_leveringsdato"]


@dataclass(frozen=True)
class ValidTime:
    start: str
    end: str | None  # None: an event (valid on one day)


def source_of(c: Contract) -> str:
    """The ``<source>`` of ``stg_<source>__<dataset>``: the reporting system kind."""
    return c.reporter


def stg_name(c: Contract) -> str:
    return f"stg_{source_of(c)}__{c.dataset}"


def fct_name(c: Contract) -> str:
    return f"fct_{c.dataset}"


def is_restricted(c: Contract) -> bool:
    return c.health


def valid_time(c: Contract) -> ValidTime:
    """Valid time of a record: its spell (start/end rule or fields) or its event date."""
    names = {f.name for f in c.all_fields if f.type in ("date", "datetime")}
    for r in c.rules:
        if r.kind in ("start_before_end", "no_overlap"):
            s, e = r.params.get("start_field"), r.params.get("end_field")
            if s in names and e in names:
                return ValidTime(s, e)
    for s, e in (("startdato", "slutdato"), ("foerste_sygedag", "sidste_sygedag"),
                 ("sanktionsperiode_start", "sanktionsperiode_slut")):
        if s in names and e in names:
            return ValidTime(s, e)
    return ValidTime(c.event_time, None)


@functools.cache
def _reserved() -> frozenset[str]:
    import duckdb

    return frozenset(r[0] for r in duckdb.sql(
        "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category <> 'unreserved'").fetchall())


def ident(name: str) -> str:
    """A column name as SQL: quoted when it is a keyword (``by``)."""
    return f'"{name}"' if name.lower() in _reserved() else name


def _analyst_field(f: Field) -> bool:
    return not f.is_envelope and f.pii not in DROPPED_PII and f.type != "cpr"


def _cpr_fields(c: Contract) -> list[Field]:
    return [f for f in c.fields if f.type == "cpr"]


def _pk_name(f: Field) -> str:
    return "person_key" if f.name == "cpr" else f.name.removesuffix("_cpr") + "_person_key"


def macro_sql() -> list[str]:
    """DuckDB temp macros of the load's connection: the engine functions (the statistics' Python model runs its
    delta SQL in DuckDB, pipelines/warehouse/stats.py) and the CPR-derived person attributes."""
    from pipelines.quality.rules import birth_sql

    return [
        f"CREATE OR REPLACE TEMP MACRO dsdw_foedselsdato(cpr) AS {birth_sql('cpr')}",
        "CREATE OR REPLACE TEMP MACRO dsdw_koen(cpr) AS CASE WHEN regexp_full_match(cpr, '[0-9]{10}') THEN "
        "CASE WHEN CAST(right(cpr, 1) AS INTEGER) % 2 = 1 THEN 'M' ELSE 'K' END END",
        "CREATE OR REPLACE TEMP MACRO dsdw_alder(b, d) AS date_diff('year', b, d) - "
        "CASE WHEN strftime(d, '%m%d') < strftime(b, '%m%d') THEN 1 ELSE 0 END",
        *(f"CREATE OR REPLACE TEMP MACRO {name}({', '.join(args)}) AS {body}"
          for name, (args, body) in ENGINE_FUNCTIONS.items()),
    ]


# The engine functions where DuckDB's and Spark's SQL differ: adapter.dispatch macros in warehouse/dbt/macros/
# engines.sql for the models, and DuckDB macros of the same name here for the Python model's delta SQL.  The
# bodies are the engines.sql default__ (DuckDB) ones (a test keeps them in step).
ENGINE_FUNCTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "dsdw_local_date": (("col",), "CAST(timezone('Europe/Copenhagen', col) AS DATE)"),
    "dsdw_isodow": (("d",), "isodow(d)"),
    "dsdw_isoyear": (("d",), "isoyear(d)"),
    "dsdw_date_diff": (("part", "a", "b"), "date_diff(part, a, b)"),
    "dsdw_unnest": (("l",), "unnest(l)"),
    "dsdw_date_series": (("a", "b", "step"), "generate_series(CAST(a AS TIMESTAMP), CAST(b AS TIMESTAMP), step)"),
    "dsdw_list_ordered": (("v", "k"), "list(v ORDER BY k)"),
    "dsdw_list_distinct_sorted": (("v",), "list(DISTINCT v ORDER BY v) FILTER (WHERE v IS NOT NULL)"),
    "dsdw_string_agg_ordered": (("v", "sep", "k"), "string_agg(v, sep ORDER BY k)"),
    "dsdw_empty_strings": ((), "CAST([] AS VARCHAR[])"),
}
# parameters the dbt macros take as words (a SQL string literal in the model, a bare word for Jinja)
ENGINE_WORD_PARAMS = {"dsdw_date_diff": (0,)}


def write_files(files: dict[Path, str], root: Path) -> list[Path]:
    """Write ``root / rel`` for every generated file whose content differs; returns those written (so an
    unchanged tree stays untouched and git clean after ``make generate``)."""
    written = []
    for rel, text in sorted(files.items()):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists() or p.read_text(encoding="utf-8") != text:
            p.write_text(text, encoding="utf-8")
            written.append(p)
    return written


# ---------------------------------------------------------------------------------------------------------
# The dbt project (warehouse/dbt_project.yml): staging, facts, current state and history per contract, their
# schema YAML (descriptions, § and PII class in meta, tests) and the lake sources.

DBT_DIR = REPO_ROOT / "warehouse"
DBT_MARK = "generated by `make generate` from pipelines/contracts/{ds}.yaml: do not edit"
# code lists longer than this are checked by the quality rules only (a YAML list of 1,000 diagnoses helps nobody)
ACCEPTED_VALUES_MAX = 120
# tests a nightly build leaves out (dbt_runner.nightly_selection): what the engine or the lake's validation already
# guarantees for the rows a night adds (a unique key index, a required field)
FULL_BUILD_TAG = "full_build"


def _dbt_location(c: Contract) -> str:
    if is_restricted(c):
        return "database='restricted', schema='main'"
    return "schema='main'"


def _dbt_date_expr(c: Contract, name: str) -> str:
    """A date field as it is, a datetime's Danish date through the engine's macro (``dsdw_local_date``)."""
    return f"{{{{ dsdw_local_date('{name}') }}}}" if c.field(name).type == "datetime" else name


def _dbt_date_arg(c: Contract, name: str) -> str:
    """The same as a Jinja argument of another macro."""
    return f"dsdw_local_date('{name}')" if c.field(name).type == "datetime" else f"'{name}'"


def _typed_empty(c: Contract) -> str:
    """A zero-row relation with every lake column of the contract, typed (files from before a field was added
    lack it; the old runner used an empty Arrow table of the same schema)."""
    import duckdb
    import pyarrow as pa

    from pipelines.lake.schema import arrow_schema

    rel = duckdb.from_arrow(pa.Table.from_batches([], schema=arrow_schema(c)))
    cols = ", ".join(f"CAST(NULL AS {t}) AS {ident(n)}" for n, t in zip(rel.columns, rel.types, strict=True))
    return f"SELECT {cols} LIMIT 0"


def _retracted(c: Contract) -> str:
    return ("source('restricted', 'meta_retracted')" if is_restricted(c)
            else "source('meta', 'retracted_payload')")


def dbt_staging_sql(c: Contract) -> str:
    """Typed, renamed, deduplicated rows of one load's new payloads (read from the lake source); pseudonyms by
    lookup in the restricted person map (the key never reaches dbt)."""
    vt = valid_time(c)
    restricted = is_restricted(c)
    keys = list(c.record_key) or ["besked_id"]
    cols: list[str] = [*ENVELOPE_KEPT]
    for f in _cpr_fields(c):
        if restricted:
            cols.append(f.name)
        cols.append(f"{{{{ pseudonym('inc.{f.name}') }}}} AS {_pk_name(f)}")
    for f in c.fields:
        if (restricted and f.type != "cpr") or (not restricted and _analyst_field(f)):
            # a keyword (``by``) quoted by the engine's rule (Spark: backticks)
            cols.append(f"{{{{ adapter.quote('{f.name}') }}}}" if ident(f.name) != f.name else f.name)
    if "cpr" in c.field_names:
        cols += ["year({{ dsdw_foedselsdato('cpr') }}) AS foedselsaar", "{{ dsdw_koen('cpr') }} AS koen",
                 f"{{{{ dsdw_alder(dsdw_foedselsdato('cpr'), {_dbt_date_arg(c, vt.start)}) }}}} AS alder"]
    cols.append(f"{_dbt_date_expr(c, vt.start)} AS gyldig_fra")
    cols.append(f"{_dbt_date_expr(c, vt.end or vt.start)} AS gyldig_til")
    cols += ["{{ dsdw_local_date('registreringstidspunkt') }} AS registreret_dato",
             "aendringstype = '3' AS er_slettet", *LINEAGE]
    order = "registreringstidspunkt DESC, _leveringsdato DESC, _record_no DESC"
    empty = _typed_empty(c).replace('"', '\\"')
    return (
        f"-- {DBT_MARK.format(ds=c.dataset)}\n"
        f"{{{{ config(materialized='table', {_dbt_location(c) if restricted else 'schema=' + repr('staging')}) }}}}\n"
        "SELECT\n    " + ",\n    ".join(cols) + "\n"
        f"FROM {{{{ lake_rows(source('lake', '{c.dataset}'), '{c.dataset}', \"{empty}\") }}}} AS inc\n"
        "WHERE _payload_id IN (SELECT payload_id FROM {{ source('meta', 'load_increment') }})\n"
        "-- a record version sent twice in one load: the latest registration wins (counted as deduplicated)\n"
        f"QUALIFY row_number() OVER (PARTITION BY {{{{ load_partition() }}}}{', '.join(keys)}, version, aendringstype "
        f"ORDER BY {order}) = 1\n")


def has_person_key(c: Contract) -> bool:
    return "cpr" in c.field_names


def dbt_fact_sql(c: Contract) -> str:
    """Append-only bitemporal versions (incremental, append): this load's staged rows with its load date.

    No fact carries an index on ``person_key``. The analysts' facts are kept sorted by it instead
    (pipelines/warehouse/clustering.py: a lookup reads one row group, and a night's checkpoint does not rewrite an
    index as large as the history); the hook drops the ART index an older build made. The restricted (health)
    facts are read as populations, never per person (deliveries read them through ``_as_of``)."""
    hook = ", post_hook=\"{{ drop_person_key_index(this) }}\"" if is_restricted(c) or has_person_key(c) else ""
    return (
        f"-- {DBT_MARK.format(ds=c.dataset)}\n"
        f"{{{{ config(materialized='incremental', incremental_strategy='append', {_dbt_location(c)}{hook}) }}}}\n"
        f"SELECT s.*, l.indlaest_dato, l.load_id\n"
        f"FROM {{{{ ref('{stg_name(c)}') }}}} s {{{{ load_of('s') }}}}\n")


def dbt_aktuel_sql(c: Contract) -> str:
    """``<fct>_aktuel``: the current version of every record, kept in step by replacing the records a load
    touched (a pre-hook deletes them, the model inserts their current version).  In the restricted database a
    view over the versions instead: a table there was a second copy of nearly every health record (and its
    unique index) in the file sealed whole every night, for readers (deliveries, an operator) that scan.

    No index on the record key: its deletes and inserts of random keys grew with the history (a quarter of a
    5-year night); the post-hook drops the one an older build made, and the record-key test, scoped to the
    touched records, guards the nights instead (:func:`_fact_tests`)."""
    keys = list(c.record_key or ["besked_id"])
    k0 = keys[0]
    fct, ret = f"ref('{fct_name(c)}')", _retracted(c)
    if is_restricted(c):
        return (
            f"-- {DBT_MARK.format(ds=c.dataset)}\n"
            f"{{{{ config(materialized='view', {_dbt_location(c)}) }}}}\n"
            f"{{{{ current_versions({fct}, {keys!r}, {ret}, 'r.indlaest_dato IS NULL') }}}}\n")
    touched = f"touched_records({fct}, '{k0}', {ret})"
    pre = f"{{% if is_incremental() %}}DELETE FROM {{{{ this }}}} WHERE {k0} IN ({{{{ {touched} }}}}){{% endif %}}"
    return (
        f"-- {DBT_MARK.format(ds=c.dataset)}\n"
        f"{{{{ config(materialized='incremental', incremental_strategy='append', {_dbt_location(c)},\n"
        f"          pre_hook=\"{pre}\", post_hook=\"{{{{ drop_record_key_index(this) }}}}\") }}}}\n"
        f"{{% if is_incremental() %}}\n"
        f"{{{{ current_touched({fct}, {keys!r}, {ret}) }}}}\n"
        f"{{% else %}}\n"
        f"{{{{ current_versions({fct}, {keys!r}, {ret}, 'r.indlaest_dato IS NULL') }}}}\n"
        f"{{% endif %}}\n")


def dbt_historik_sql(c: Contract) -> str:
    """``<fct>_historik`` (every version with ``indlaest_til``, ``er_seneste``) and, as a DuckDB post-hook,
    the ``<fct>_as_of(d)`` table macro."""
    keys = list(c.record_key or ["besked_id"])
    part = ", ".join("f." + k for k in keys)
    fct, ret = f"ref('{fct_name(c)}')", _retracted(c)
    macro = ("restricted." if is_restricted(c) else "") + fct_name(c)
    return (
        f"-- {DBT_MARK.format(ds=c.dataset)}\n"
        f"{{{{ config(materialized='view', {_dbt_location(c)},\n"
        f"          post_hook=\"{{{{ as_of_macro('{macro}', {fct}, {keys!r}, {ret}) }}}}\") }}}}\n"
        "SELECT f.*,\n"
        "  least(CASE WHEN lead(f.indlaest_dato) OVER w IS NOT NULL\n"
        "             THEN greatest(f.indlaest_dato, lead(f.indlaest_dato) OVER w) END, r.indlaest_dato) AS indlaest_til,\n"
        f"  r.indlaest_dato IS NULL AND row_number() OVER (PARTITION BY {part} ORDER BY "
        "{{ version_order('f', descending=true) }}) = 1 AS er_seneste\n"
        f"FROM {{{{ {fct} }}}} f LEFT JOIN {{{{ {ret} }}}} r ON r.payload_id = f._payload_id\n"
        f"WINDOW w AS (PARTITION BY {part} ORDER BY {{{{ version_order('f') }}}})\n")


def dbt_cpr_macros() -> str:
    """The derived person attributes as dbt macros (the same SQL as :func:`macro_sql`'s DuckDB macros)."""
    from pipelines.quality.rules import birth_sql

    return (
        "{#- generated by `make generate` (pipelines/warehouse/generate.py): do not edit -#}\n"
        "{#- Birth date, sex and age from a CPR number (BEK 912/2015 reports CPR; analysts get these instead). -#}\n"
        "{#- default__: DuckDB's SQL; other engines' versions and the dispatchers are in engines.sql -#}\n"
        f"{{% macro default__dsdw_foedselsdato(cpr) -%}}\n{birth_sql('{{ cpr }}')}\n{{%- endmacro %}}\n\n"
        "{% macro default__dsdw_koen(cpr) -%}\nCASE WHEN regexp_full_match({{ cpr }}, '[0-9]{10}') THEN "
        "CASE WHEN CAST(right({{ cpr }}, 1) AS INTEGER) % 2 = 1 THEN 'M' ELSE 'K' END END\n{%- endmacro %}\n\n"
        "{#- b (birth date) and d (the day) are SQL expressions. -#}\n"
        "{% macro default__dsdw_alder(b, d) -%}\n"
        "(date_diff('year', {{ b }}, {{ d }}) - "
        "CASE WHEN strftime({{ d }}, '%m%d') < strftime({{ b }}, '%m%d') THEN 1 ELSE 0 END)\n{%- endmacro %}\n")


def _pii_class(f: Field, restricted: bool) -> str:
    if f.type == "cpr":
        return "cpr (pseudonymised as person_key)" if not restricted else "cpr (restricted database only)"
    return f.pii or "none"


def _column_yaml(c: Contract, f: Field) -> dict:
    meta: dict = {"pii": _pii_class(f, is_restricted(c))}
    if f.paragraph:
        meta["paragraf"] = f.paragraph
    return {"name": _pk_name(f) if f.type == "cpr" and not is_restricted(c) else f.name,
            "description": (f.description or f.label or f.name).strip(), "meta": meta}


def _model_columns(c: Contract) -> list[dict]:
    restricted = is_restricted(c)
    out = []
    for f in c.fields:
        if f.type == "cpr" or restricted or _analyst_field(f):
            out.append(_column_yaml(c, f))
        if f.type == "cpr" and restricted:
            out.append({"name": _pk_name(f), "description": f"Pseudonym of {f.name} (HMAC-SHA256, keyed).",
                        "meta": {"pii": "pseudonym"}})
    return out


def _fact_tests(c: Contract, model: str) -> tuple[list[dict], dict[str, list]]:
    """Model-level and column-level tests of a fact's current state ``model`` (the contract's rules)."""
    from pipelines.contracts import codelist_codes

    keys = list(c.record_key or ["besked_id"])
    # one current version per record and no record without its key. A table: tested every night, on the records
    # the night touched (the delete-and-insert's scope; no unique index: generate.dbt_aktuel_sql). A restricted
    # view over the versions: on full builds (a night selects no view)
    args: dict = {"columns": keys, "not_null": True}
    config: dict = {"severity": "error"}
    if is_restricted(c):
        config["tags"] = [FULL_BUILD_TAG]
    else:
        args |= {"night_scope": f"{{{{ touched_scope(ref('{fct_name(c)}'), '{keys[0]}', {_retracted(c)}) }}}}",
                 "night_scope_columns": keys[:1]}
    # the name dbt gave the test before it had a scope (a long argument list would make it a hash)
    name = f"dsdw_unique_columns_{model}_{'__'.join(keys)}__True"
    model_tests: list[dict] = [{"dsdw_unique_columns": {"name": name, "arguments": args, "config": config}}]
    col_tests: dict[str, list] = {}
    for r in c.rules:
        if r.kind == "no_overlap":
            part = ["person_key" if p == "cpr" else p for p in r.params.get("partition_by", [])]
            model_tests.append({"dsdw_no_overlap": {"arguments": {
                "start": r.params["start_field"], "end": r.params["end_field"], "partition_by": part,
                "key": keys[0]}, "config": {"severity": "warn", "meta": {"rule": r.id, "paragraf": r.paragraph}}}})
        elif r.kind == "reference_exists" and r.params["dataset"] != c.dataset:
            from pipelines.contracts import get_contract

            other = get_contract(r.params["dataset"])
            col_tests.setdefault(r.params["field"], []).append({"relationships": {
                "arguments": {"to": f"ref('{fct_name(other)}_aktuel')", "field": r.params["key"]},
                "config": {"severity": "warn", "meta": {"rule": r.id, "paragraf": r.paragraph}}}})
    for f in c.fields:
        if f.codelist and not f.multi and f.type != "cpr" and (is_restricted(c) or _analyst_field(f)):
            codes = codelist_codes(f.codelist)
            if 0 < len(codes) <= ACCEPTED_VALUES_MAX:
                col_tests.setdefault(f.name, []).append({"accepted_values": {
                    "arguments": {"values": list(codes)},
                    "config": {"severity": "warn", "meta": {"codeliste": f.codelist}}}})
    return model_tests, col_tests


def dbt_schema_yaml(layer: str) -> str:
    """Schema YAML of the generated models of one folder (staging, core, restricted)."""
    import yaml

    models = []
    for c in load_contracts().values():
        restricted = is_restricted(c)
        if (layer == "restricted") != restricted:
            continue
        meta = {"paragraf": c.legal_basis, "dataset": c.dataset, "reporter": c.reporter,
                "database": "restricted" if restricted else "warehouse"}
        cols = _model_columns(c)
        if layer in ("staging", "restricted"):
            models.append({"name": stg_name(c), "description": f"{c.title}: the record versions new in this load, "
                           "typed, renamed, pseudonymised, PII dropped, in-load duplicates removed.",
                           "config": {"meta": meta}, "columns": cols})
        if layer in ("core", "restricted"):
            vt = valid_time(c)
            kind = f"spell {vt.start} .. {vt.end}" if vt.end else f"event on {vt.start}"
            models.append({"name": fct_name(c), "description": f"{c.title}: one row per received version "
                           f"({kind}); append-only, bitemporal ({c.legal_basis}).",
                           "config": {"meta": meta},
                           "columns": [{"name": "besked_id", "description": "The reporter's message id.",
                                        # required by every contract: the lake's validation refuses a record
                                        # without it, so a night does not scan the history for it again
                                        "data_tests": [{"not_null": {"config": {"severity": "error",
                                                                                "tags": [FULL_BUILD_TAG]}}},
                                                       {"unique": {"config": {"severity": "warn"}}}]}]})
            model_tests, col_tests = _fact_tests(c, f"{fct_name(c)}_aktuel")
            acols = [dict(col, **({"data_tests": col_tests[col["name"]]} if col["name"] in col_tests else {}))
                     for col in cols]
            acols += [{"name": k, "data_tests": v} for k, v in col_tests.items() if k not in {x["name"] for x in cols}]
            models.append({"name": f"{fct_name(c)}_aktuel", "description": f"{c.title}: the current version of "
                           "every record (deleted records excluded); the records a load touched are replaced.",
                           "config": {"meta": meta}, "data_tests": model_tests, "columns": acols})
            models.append({"name": f"{fct_name(c)}_historik", "description": f"{c.title}: every version with "
                           "indlaest_til (when a newer version arrived or its payload was retracted) and er_seneste.",
                           "config": {"meta": meta}})
    head = f"# {DBT_MARK.format(ds='*')}\n"
    return head + yaml.safe_dump({"version": 2, "models": models}, sort_keys=False, allow_unicode=True, width=110)


def dbt_sources_yaml() -> str:
    """The lake datasets (hive-partitioned Parquet) mapped to their Dagster assets, and the load's tables."""
    import yaml

    tables = [{"name": c.dataset, "description": f"{c.title} ({c.legal_basis}), as accepted into the lake.",
               "meta": {"dagster": {"asset_key": ["lake", c.dataset]}, "paragraf": c.legal_basis}}
              for c in load_contracts().values()]
    doc = {"version": 2, "sources": [
        {"name": "lake", "description": "The lake: typed Parquet per dataset, hive-partitioned by leveringsdato.",
         # relative to DuckDB's file_search_path (the profile sets it to the environment's lake at run time): a
         # path rendered here would be fixed at parse time, and a parsed project could not serve another root
         "meta": {"external_location": "read_parquet('{name}/*/*.parquet', hive_partitioning = true, "
                                       "union_by_name = true)"},
         "tables": tables},
        {"name": "meta", "schema": "meta", "description": "Load metadata written by the load's Python steps.",
         "tables": [
             {"name": "load_increment", "description": "This load's new payloads (from the file ledger)."},
             {"name": "current_load", "description": "This load's load_id and indlaest_dato (one row)."},
             {"name": "retracted_payload", "description": "Payloads retracted by a corrected re-delivery."},
             {"name": "load_plan", "description": "A one-pass rebuild's plan (full_lake): per payload the load "
                                                   "(load_id, indlaest_dato) that brought it in."},
             *DBT_META_SOURCES]},
        # Spark has no second database (and never reads the restricted one: engines.sql)
        {"name": "restricted", "database": "{{ 'restricted' if target.type != 'spark' else none }}", "schema": "main",
         "description": "The restricted database (unsealed for the load only).",
         "tables": [{"name": "person", "description": "CPR <-> person_key (HMAC pseudonym)."},
                    {"name": "meta_retracted", "description": "Retracted payloads of restricted datasets."}]},
    ]}
    return f"# {DBT_MARK.format(ds='*')}\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)


def dbt_generated_files() -> dict[Path, str]:
    """Path relative to ``warehouse/`` -> content of every generated file of the dbt project: per contract its
    staging, fact, current-state and history models with their schema YAML, the lake sources, the CPR macros,
    and the models generated from the contracts' rules (the timeliness marts, the category spells)."""
    from pipelines.warehouse import kategori, stats

    out: dict[Path, str] = {Path("dbt/macros/cpr.sql"): dbt_cpr_macros(),
                            Path("dbt/models/sources.yml"): dbt_sources_yaml()}
    for layer in ("staging", "core", "restricted"):
        out[Path(f"dbt/models/{layer}/_{layer}.yml")] = dbt_schema_yaml(layer)
    out.update(stats.generated_marts())
    out.update(kategori.generated())
    for c in load_contracts().values():
        core = "restricted" if is_restricted(c) else "core"
        out[Path(f"dbt/models/{'restricted' if is_restricted(c) else 'staging'}/{stg_name(c)}.sql")] = \
            dbt_staging_sql(c)
        out[Path(f"dbt/models/{core}/{fct_name(c)}.sql")] = dbt_fact_sql(c)
        out[Path(f"dbt/models/{core}/{fct_name(c)}_aktuel.sql")] = dbt_aktuel_sql(c)
        out[Path(f"dbt/models/{core}/{fct_name(c)}_historik.sql")] = dbt_historik_sql(c)
    return out


# the load's bookkeeping the hand-written models read
DBT_META_SOURCES = [
    {"name": "loaded_payload", "description": "Every loaded payload: dataset, reporter, rows, receive time (§ 5)."},
    {"name": "load", "description": "One row per finished load (written after the models)."},
    {"name": "model_run", "description": "Per load the models that ran (written after the models)."},
]


def write_dbt_generated(dbt_dir: Path = DBT_DIR) -> list[Path]:
    return write_files(dbt_generated_files(), dbt_dir)
