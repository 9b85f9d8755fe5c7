"""The Dagster code location named in pyproject.toml loads."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path


def test_code_location_loads() -> None:
    cfg = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["dagster"]
    mod = importlib.import_module(cfg["module_name"])
    import dagster as dg

    assert isinstance(mod.defs, dg.Definitions)
