"""The lake: landed payloads parsed and typed by contract into Parquet (docs/ingestion.md).

``parse_payload`` turns one payload's bytes into accepted rows and quarantine rows,
``reconcile`` proves nothing was lost, ``write_parquet`` writes a table deterministically
and atomically.
"""

from .parse import ParseResult, ReconciliationError, parse_payload, reconcile
from .schema import LINEAGE_NAMES, QUARANTINE_SCHEMA, arrow_schema
from .write import lake_path, quarantine_path, write_parquet

__all__ = [
    "LINEAGE_NAMES", "QUARANTINE_SCHEMA", "ParseResult", "ReconciliationError", "arrow_schema", "lake_path",
    "parse_payload", "quarantine_path", "reconcile", "write_parquet",
]
