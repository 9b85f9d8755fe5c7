"""Landing zone: every payload stored raw and immutable before anything parses it,
and the file ledger that makes loading exactly-once (see docs/ingestion.md)."""

from pipelines.landing.ledger import Ledger, LedgerRow, PayloadKey, Registration
from pipelines.landing.store import LandingStore, atomic_write, payload_id

__all__ = ["LandingStore", "Ledger", "LedgerRow", "PayloadKey", "Registration", "atomic_write", "payload_id"]
