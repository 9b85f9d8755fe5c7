"""The delivery tests' shared fixtures (their record builders and readers: ``fixtures_deliveries.py`` and
``fixtures_wh.py`` in tests/, which the governance and quality tests use too)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_deliveries import key_env


@pytest.fixture(scope="module")
def keyed_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty zones root for the module's hand-made deliveries, with fresh pseudonym and restricted keys
    in ``DSDW_KEY_DIR`` while the module's fixtures and tests run."""
    base = tmp_path_factory.mktemp("deliveries")
    with key_env(base / "keys"):
        yield base / "root"
