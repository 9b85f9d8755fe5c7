"""Fixtures of the warehouse tests.

The builders the warehouse tests share with other areas (``kg``, ``deliver``, ``cpr_for``, ``uid``, ``use_keys``,
``query``) are plain functions in ``tests/fixtures_wh.py``, because module-level test data calls them; this file
turns what every warehouse test module needs into fixtures, so no module defines them again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_wh import use_keys


@pytest.fixture
def keydir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh pseudonym and restricted keys for one test, with the key environment variables cleared (no
    machine key leaks in)."""
    return use_keys(monkeypatch, tmp_path / "keys")
