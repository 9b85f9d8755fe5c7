"""The Dagster code location (``dagster dev`` loads ``defs``).

Assets are thin wrappers over plain functions in ``pipelines/``; ingestion,
quality, warehouse and delivery assets are added by their own modules.
"""

from __future__ import annotations

import dagster as dg

defs = dg.Definitions(assets=[])
