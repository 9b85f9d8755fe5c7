"""Great Expectations Data Docs for one delivery day: the committed suites, run by GX itself.

The results tables (``dq.duckdb``) come from the DuckDB executor; this module is the GX-native
view of the same generic checks, for stewards who know GX.  For every dataset partition of the
day (``<root>/lake/<dataset>/leveringsdato=<day>/*.parquet``) the suite from
``expectations/<dataset>.json`` is validated through GX's pandas path in a *file* context under
``<root>/gx/``; the validation results are stored there and the local Data Docs site is built
(``<root>/gx/uncommitted/data_docs/local_site/index.html``).

The dataframe is prepared as :func:`pipelines.quality.gx_sql.run_suite_gx_pandas` does, so the
stdnum and list checks mean the same: python-stdnum's verdict becomes a boolean column checked
with ``expect_column_values_to_be_in_set([True])`` next to the DFDG regex, and a list column
(``meta.multi``) is exploded so GX checks each element.  An exploded column is its own batch,
so it gets its own suite and validation page, ``<dataset>.<column>`` (counts there are list
elements, not records).

No personal data in the site: results are stored with ``SUMMARY`` / ``partial_unexpected_count
0`` / ``exclude_unexpected_values``, so GX keeps counts and percentages but no unexpected values
(a CPR number failing the CPR check would otherwise be rendered); only the columns the suite
checks are handed to GX, and GX replaces the dataframe by a placeholder in the stored batch
parameters.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pipelines.quality.gx_sql import (
    _NULL_ELEMENT,
    IN_SET,
    NOT_NULL,
    _check_supported,
    _is_empty,
    _stdnum_valid,
)

if TYPE_CHECKING:
    import pandas as pd

DATASOURCE = "dsdw_lake"
ASSET = "partition"
BATCH_DEFINITION = "whole"
SITE_NAME = "local_site"
# counts and percentages only: no unexpected values (CPR numbers, names) reach the stored results
RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 0,
                                 "exclude_unexpected_values": True, "include_unexpected_rows": False}


@dataclass(frozen=True)
class GxFrame:
    """One batch to validate: the suite name, the prepared dataframe and the GX expectation dicts."""

    suite_name: str
    frame: pd.DataFrame
    expectations: list[dict[str, Any]]


def _gx_expectation(e: dict[str, Any], i: int, **kwargs: Any) -> dict[str, Any]:
    """The committed expectation as GX runs it: same type, kwargs (maybe edited), meta and severity."""
    out: dict[str, Any] = {"type": e["type"], "kwargs": {**e["kwargs"], **kwargs},
                           "meta": {**(e.get("meta") or {}), "i": i}}
    if e.get("severity"):
        out["severity"] = e["severity"]
    return out


def prepare_gx_frames(suite: dict[str, Any], df: pd.DataFrame) -> list[GxFrame]:
    """Split ``suite`` over ``df`` into GX batches, prepared as ``run_suite_gx_pandas`` prepares them.

    The first frame holds the suite's plain columns plus the derived ``__nonempty__<col>``
    (list column required) and ``__stdnum.dk.cpr__<col>`` (python-stdnum verdict) columns; each
    list column with a set or regex check gets an exploded frame of its elements (a NULL
    element becomes a marker that fails every set and regex, as in SQL).
    """
    import pandas as pd

    name = str(suite.get("name"))
    exps = list(suite.get("expectations") or [])
    for e in exps:
        _check_supported(e)
    base = df.reset_index(drop=True)
    main = pd.DataFrame(index=base.index)
    main_exps: list[dict[str, Any]] = []
    exploded: dict[str, GxFrame] = {}
    for i, e in enumerate(exps):
        col, meta = e["kwargs"]["column"], e.get("meta") or {}
        if col not in base.columns:
            raise ValueError(f"{meta.get('rule_id')}: column {col!r} is not in the dataframe")
        if meta.get("multi"):
            values = base[col]
            if e["type"] == NOT_NULL:
                derived = f"__nonempty__{col}"
                main[derived] = values.map(lambda v: None if _is_empty(v) else True)
                main_exps.append(_gx_expectation(e, i, column=derived))
                continue
            if col not in exploded:
                elems = values[~values.map(_is_empty)].map(list).explode()
                elems = elems.where(elems.notna(), _NULL_ELEMENT)
                exploded[col] = GxFrame(f"{name}.{col}", pd.DataFrame({col: elems.to_numpy(dtype=object)}), [])
            exploded[col].expectations.append(_gx_expectation(e, i))
            continue
        main[col] = base[col]
        main_exps.append(_gx_expectation(e, i))
        validator = meta.get("validator")
        if validator:
            derived = f"__{validator}__{col}"
            is_valid = _stdnum_valid(validator)
            main[derived] = base[col].map(lambda v, f=is_valid: None if _is_empty(v) else bool(f(str(v))))
            verdict = {"type": IN_SET, "kwargs": {"column": derived, "value_set": [True]},
                       "meta": {**meta, "i": i, "note": f"python-stdnum verdict ({validator})"}}
            if e.get("severity"):
                verdict["severity"] = e["severity"]
            main_exps.append(verdict)
    frames = [GxFrame(name, main, main_exps)] if main_exps else []
    return frames + list(exploded.values())


def _partition(lake: Path, dataset: str, day: dt.date) -> Path | None:
    part = lake / dataset / f"leveringsdato={day.isoformat()}"
    return part if any(part.glob("*.parquet")) else None


def _read(part: Path, max_rows: int) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        src = str(part / "*.parquet").replace("'", "''")
        return con.execute(f"SELECT * FROM read_parquet('{src}', hive_partitioning = false, union_by_name = true) "
                           f"ORDER BY _payload_id, _record_no LIMIT {int(max_rows)}").df()
    finally:
        con.close()


def _batch_definition(context: Any) -> Any:
    """The context's pandas dataframe batch definition, created on first use (a file context keeps it)."""
    try:
        source = context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError):
        source = context.data_sources.add_pandas(DATASOURCE)
    try:
        asset = source.get_asset(ASSET)
    except LookupError:
        asset = source.add_dataframe_asset(name=ASSET)
    try:
        return asset.get_batch_definition(BATCH_DEFINITION)
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)


def build_data_docs(root: Path, day: dt.date, datasets: list[str] | None = None, max_rows: int = 20000) -> Path:
    """Validate the day's lake partitions with their committed suites in GX and build Data Docs.

    ``datasets`` defaults to every dataset with a partition that day (and a committed suite);
    a named dataset without a partition is skipped.  At most ``max_rows`` rows per partition
    are validated (ordered by payload and record number).  Runs are named by the delivery day.
    Returns the local site's ``index.html`` (``<root>/gx/uncommitted/data_docs/local_site/``).
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from pipelines.quality.suites import SUITE_DIR, load_suite

    root = Path(root)
    lake = root / "lake"
    if datasets is None:
        datasets = sorted(p.name for p in lake.iterdir() if p.is_dir()) if lake.is_dir() else []
        datasets = [ds for ds in datasets if (SUITE_DIR / f"{ds}.json").exists()]
    context = gx.get_context(mode="file", project_root_dir=str(root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_def = _batch_definition(context)
    run_time = dt.datetime.now(dt.UTC)
    for ds in datasets:
        part = _partition(lake, ds, day)
        if part is None:
            continue
        for f in prepare_gx_frames(load_suite(ds), _read(part, max_rows)):
            suite = context.suites.add_or_update(gx.ExpectationSuite(name=f.suite_name,
                                                                     expectations=f.expectations))
            vd = context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=f"{f.suite_name}@lake", data=batch_def, suite=suite))
            with warnings.catch_warnings():  # pandas: "pattern ... has match groups" (DFDG's CPR pattern)
                warnings.filterwarnings("ignore", message="This pattern is interpreted as a regular expression")
                vd.run(batch_parameters={"dataframe": f.frame}, result_format=RESULT_FORMAT,
                       run_id=RunIdentifier(run_name=f"leveringsdato={day.isoformat()}", run_time=run_time))
    context.build_data_docs(site_names=[SITE_NAME])
    index = Path(context.root_directory) / "uncommitted" / "data_docs" / SITE_NAME / "index.html"
    if not index.exists():
        raise FileNotFoundError(f"GX did not write Data Docs to {index}")
    return index
