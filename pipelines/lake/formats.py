"""The wire format of each channel (docs/sources.md), as the lake parser needs it.

The constants come from :mod:`pipelines.contracts.wire`, the contract's wire formats that
the simulator and the vendors' test extracts also write, so reader and writer cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.contracts import Contract, wire

UTF8 = "utf-8"
LATIN1 = "latin-1"


@dataclass(frozen=True)
class WireFormat:
    name: str
    kind: str  # "json" | "csv" | "ssi"
    encoding: str  # UTF8 | LATIN1
    delimiter: str | None = None
    quote: str | None = None
    trailer: str | None = None  # first field of the trailer record ("TRAILER", SSI "T")
    final_newline: bool = True  # every record, the last included, ends with a line end
    decimal_comma: bool = False  # '12,5' means 12.5 (none of our formats declares it)
    multi_sep: str = wire.MULTI_SEP

    @property
    def label(self) -> str:
        return {UTF8: "UTF-8", LATIN1: "ISO-8859-1"}[self.encoding]


JSON = WireFormat("webservice_json", "json", UTF8, final_newline=False)
FTP_CSV = WireFormat("ftp_csv", "csv", LATIN1, wire.FTP_DELIM, '"', wire.FTP_TRAILER)
PORTAL_CSV = WireFormat("portal_csv", "csv", UTF8, wire.PORTAL_DELIM, '"')
UVM_CSV = WireFormat("uvm_csv", "csv", UTF8, wire.UVM_DELIM, '"')
SSI = WireFormat("ssi_records", "ssi", LATIN1, wire.SSI_DELIM, None, "T")


def wire_format(channel: str, contract: Contract) -> WireFormat:
    """The format a payload of ``contract``'s dataset has when it arrives on ``channel``."""
    if channel == "webservice":
        return JSON
    if channel == "ftp":
        return FTP_CSV
    if channel == "portal":
        return PORTAL_CSV
    if channel == "filedrop":
        if contract.reporter == "uvm":
            return UVM_CSV
        if contract.reporter == "ssi":
            return SSI
    raise ValueError(f"{contract.dataset}: no wire format for channel {channel!r} "
                     f"(reporter kind {contract.reporter!r})")
