"""The ingestion tests' shared fixtures (their record and ledger builders: ``ingest_builders.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pipelines.ingest as ingest


@pytest.fixture(scope="module")
def portal_stable_now() -> Iterator[None]:
    """Portal files count as whole as soon as they are listed (``PORTAL_STABLE_SECONDS`` 0) for the module:
    its tests write a file and ingest it at once; files still changing have tests of their own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ingest, "PORTAL_STABLE_SECONDS", 0.0)
        yield
