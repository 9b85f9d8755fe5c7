"""The Dagster code location named in pyproject.toml loads.

Top-level: it mirrors the top-level module ``pipelines/definitions.py``, which gathers every area's assets.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path


def test_code_location_loads() -> None:
    cfg = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["dagster"]
    mod = importlib.import_module(cfg["module_name"])
    import dagster as dg

    assert isinstance(mod.defs, dg.Definitions)


def test_make_defs_binds_the_environment_and_keeps_the_nightly_chain() -> None:
    """The demo runs the code location's own jobs, schedule and sensor against its directories."""
    from pipelines.assets.ingestion import DsdwResource
    from pipelines.definitions import make_defs

    defs = make_defs(DsdwResource(root="/tmp/x", sources_file="/tmp/x.json"))
    assert defs.resources["dsdw"].root == "/tmp/x"
    assert "dsdw" in defs.resolve_job_def("nightly_ingestion").resource_defs
    assert defs.resolve_schedule_def("nightly_0200").job_name == "nightly_ingestion"
    sensor = defs.resolve_sensor_def("warehouse_after_ingestion")
    assert sensor.job_name == "nightly_warehouse"
