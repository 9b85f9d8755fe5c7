"""Clients for the reporters' channels: fetch bytes, nothing else (see ``docs/ingestion.md``).

Webservice pages, FTP files and dropped files are handed over exactly as delivered and
only once they are complete; landing, parsing and the ledger live downstream.
"""

from .errors import AuthError, RefusedError, SourceError, StillWrittenError, TrailerError
from .filedrop import (
    DroppedFile,
    FileChanged,
    Offer,
    complete_files,
    portal_files,
    read_regular,
    scan_day,
    wait_size_stable,
)
from .ftp import FtpClient, RemoteFile, count_trailer
from .webservice import Page, WebserviceClient

__all__ = [
    "AuthError",
    "DroppedFile",
    "FileChanged",
    "Offer",
    "FtpClient",
    "Page",
    "RefusedError",
    "RemoteFile",
    "SourceError",
    "StillWrittenError",
    "TrailerError",
    "WebserviceClient",
    "complete_files",
    "count_trailer",
    "portal_files",
    "read_regular",
    "scan_day",
    "wait_size_stable",
]
