"""Regenerate every artefact derived from the contracts, in one step (``make generate``).

A contract change (a field, a rule, a code list, a dataset) reaches ingestion at once,
because ingestion reads the contracts at run time.  What is *written out* from them is
committed so that it can be reviewed and diffed: the contract JSON Schema for editors,
the GX expectation suites, the dbt project's generated models (staging, facts, current state and
history per contract, the timeliness marts and category spells from the contracts' rules) with
their schema YAML and sources, and the data dictionary and ERD (from dbt's manifest).  Tests keep
each of them in step, so a forgotten ``make generate`` fails CI instead of drifting.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.contracts import SCHEMA_PATH, contract_json_schema


def write_contract_schema(path: Path = SCHEMA_PATH) -> list[Path]:
    """Write ``contract.schema.json`` when it differs; returns the paths written."""
    text = contract_json_schema()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return []
    path.write_text(text, encoding="utf-8")
    return [path]


def generate_all() -> list[Path]:
    """Every generated artefact, in dependency order; returns the files that changed."""
    from pipelines.quality.suites import write_suites
    from pipelines.warehouse.dictionary import write_docs
    from pipelines.warehouse.generate import write_dbt_generated

    changed = write_contract_schema()
    changed += write_suites()
    changed += write_dbt_generated()  # the dbt project's models, schema YAML and sources
    docs = write_docs()  # rewrites only what differs; reports both paths
    return changed + docs


def main() -> None:
    for p in generate_all():
        print(p)


if __name__ == "__main__":
    main()
