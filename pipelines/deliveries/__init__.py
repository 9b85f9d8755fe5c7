"""Deliveries: the disclosures BEK 912/2015 prescribes, minimised, manifested, encrypted and audited.

Public API (the CLI and the Dagster assets call only these):
``deliver``, ``list_deliveries``, ``verify_audit``, ``decrypt``, ``load_recipients``.
See docs/deliveries.md.
"""

from __future__ import annotations

from pipelines.deliveries.audit import AuditVerification, list_deliveries, verify_audit
from pipelines.deliveries.cut import DeliveryError, parse_period, period_of
from pipelines.deliveries.deliver import decrypt, default_period, deliver, demo_deliveries, pipeline_version
from pipelines.deliveries.recipients import Recipient, get_recipient, load_recipients

__all__ = [
    "AuditVerification",
    "DeliveryError",
    "Recipient",
    "decrypt",
    "default_period",
    "deliver",
    "demo_deliveries",
    "get_recipient",
    "list_deliveries",
    "load_recipients",
    "parse_period",
    "period_of",
    "pipeline_version",
    "verify_audit",
]
