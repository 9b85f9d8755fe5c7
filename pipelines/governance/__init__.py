"""Reporter governance (BEK 912/2015 §§ 5, 6, 8, 9) and vendor test data (§§ 10-11); see docs/governance.md."""

from pipelines.governance.hooks import (
    identification_refusal,
    ingest_refusal,
    payload_refusal,
    withhold_closed,
)
from pipelines.governance.register import (
    Aftale,
    GovernanceError,
    Lukning,
    Register,
    Sag,
    Underretning,
    register_path,
)

__all__ = [
    "Aftale", "GovernanceError", "Lukning", "Register", "Sag", "Underretning", "identification_refusal",
    "ingest_refusal", "payload_refusal", "register_path", "withhold_closed",
]
