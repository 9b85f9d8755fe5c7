"""Arrow schemas of the lake: accepted rows (typed from the contract) and quarantine rows.

The accepted-row schema is derived from the contract and nothing else: every wire field
(envelope + fields, in contract order) typed by its contract type, then the lineage columns.
"""

from __future__ import annotations

import pyarrow as pa

from pipelines.contracts import Contract, Field

STRING_TYPES = frozenset(
    {"string", "text", "code", "cpr", "cvr", "pnummer", "kommunekode", "akassekode", "uuid", "time"})
TIMESTAMP = pa.timestamp("us", tz="UTC")

LINEAGE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("_channel", pa.string(), nullable=False),
    pa.field("_reporter", pa.string(), nullable=False),
    pa.field("_payload_id", pa.string(), nullable=False),
    pa.field("_record_no", pa.int64(), nullable=False),  # 1-based record number in the payload
    pa.field("_leveringsdato", pa.date32(), nullable=False),
)
LINEAGE_NAMES = tuple(f.name for f in LINEAGE_FIELDS)

QUARANTINE_SCHEMA = pa.schema([
    pa.field("payload_id", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("channel", pa.string(), nullable=False),
    pa.field("reporter", pa.string(), nullable=False),
    pa.field("leveringsdato", pa.date32(), nullable=False),
    pa.field("record_no", pa.int64()),  # null: the payload as a whole is bad
    pa.field("field", pa.string()),  # null: structural error (not one field's value)
    pa.field("error_kind", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
    pa.field("raw_record", pa.string(), nullable=False),  # decoded with errors='replace', never cut
])

ERROR_KINDS = frozenset({
    "encoding", "column_count", "header", "type", "required", "change_type", "truncated", "json",
    "trailer", "duplicate_message", "empty_payload",
    # issue 11: payload and content checks
    "binary", "unterminated_quote", "control_character", "unknown_field", "implausible_date",
    "padding",  # NUL / Ctrl-Z bytes after the last line (the payload is rejected)
})


def arrow_type(f: Field) -> pa.DataType:
    """The Arrow type of one contract field (``multi`` fields are lists of strings)."""
    if f.multi:
        return pa.list_(pa.string())
    if f.type in STRING_TYPES:
        return pa.string()
    if f.type == "integer":
        return pa.int64()
    if f.type == "decimal":
        return pa.float64()
    if f.type == "boolean":
        return pa.bool_()
    if f.type == "date":
        return pa.date32()
    if f.type == "datetime":
        return TIMESTAMP
    raise ValueError(f"field {f.name!r}: no Arrow type for contract type {f.type!r}")


_CACHE: dict[int, tuple[Contract, pa.Schema]] = {}


def arrow_schema(contract: Contract) -> pa.Schema:
    """Schema of the accepted rows of ``contract``'s dataset: wire fields + lineage columns."""
    hit = _CACHE.get(id(contract))
    if hit is not None and hit[0] is contract:
        return hit[1]
    fields = [pa.field(f.name, arrow_type(f)) for f in contract.all_fields]
    schema = pa.schema(fields + list(LINEAGE_FIELDS))
    _CACHE[id(contract)] = (contract, schema)  # keeps the contract alive: ids stay unique
    return schema
