"""Simulated source systems: webservice (HTTP), kommune FTP and file drops over a generated DIR.

The real reporter channels are not reachable, so ingestion is developed and tested
against these real loopback servers (layout and behaviour: ``docs/sources.md``).
``start_sources`` is for tests and in-process use; ``serve_forever`` backs
``dsdw sources serve --data DIR``.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from pipelines.contracts.wire import is_complete, marker_path

from .faults import FAULT_PARAMS, Faults
from .filedrop import (
    complete_files,
    leave_partial,
    leave_zero_byte,
    publish,
    publish_slowly,
)
from .ftp import STAR_USER, FtpServer, ftp_password
from .webservice import Webservice

__all__ = [
    "FAULT_PARAMS",
    "Faults",
    "FtpServer",
    "STAR_USER",
    "SourceSystems",
    "Webservice",
    "complete_files",
    "ftp_password",
    "is_complete",
    "leave_partial",
    "leave_zero_byte",
    "marker_path",
    "publish",
    "publish_slowly",
    "serve_forever",
    "start_sources",
]


class SourceSystems:
    """Running webservice + FTP server over ``data_dir`` plus the drop directories.

    Use as a context manager (``with start_sources(DIR) as src: ...``) or call
    :meth:`stop`. ``faults`` is shared by both servers.
    """

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        http_port: int = 0,
        ftp_port: int = 0,
        faults: Faults | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.faults = faults if faults is not None else Faults()
        self._webservice = Webservice(self.data_dir, host, http_port, self.faults)
        try:
            self._ftp = FtpServer(self.data_dir, host, ftp_port, self.faults)
        except BaseException:
            self._webservice.stop()
            raise
        self._started = False

    def start(self) -> SourceSystems:
        if not self._started:
            self._webservice.start()
            self._ftp.start()
            self._started = True
        return self

    def stop(self) -> None:
        """Stop both servers and release their ports (idempotent)."""
        self._webservice.stop()
        self._ftp.stop()
        self._started = False

    def __enter__(self) -> SourceSystems:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def webservice_url(self) -> str:
        return self._webservice.url

    @property
    def tokens_file(self) -> Path:
        return self.data_dir / "webservice" / "tokens.json"

    @property
    def ftp_host(self) -> str:
        return self._ftp.host

    @property
    def ftp_port(self) -> int:
        return self._ftp.port

    @property
    def ftp_user(self) -> str:
        return self._ftp.user

    @property
    def ftp_password(self) -> str:
        return self._ftp.password

    def ftp_password_for(self, user: str) -> str:
        """Password of a kommune FTP user (user name = kommunekode)."""
        return self._ftp.password_for(user)

    @property
    def portal_dir(self) -> Path:
        return self.data_dir / "portal"

    @property
    def uvm_dir(self) -> Path:
        return self.data_dir / "drops" / "uvm"

    @property
    def ssi_dir(self) -> Path:
        return self.data_dir / "drops" / "ssi"

    def describe(self) -> dict[str, Any]:
        """Addresses and credentials of every channel, JSON-able (for the CLI / a state file)."""
        return {
            "data_dir": str(self.data_dir),
            "webservice": {
                "url": self.webservice_url,
                "tokens_file": str(self.tokens_file),
                "faults_url": f"{self.webservice_url}/_faults",
            },
            "ftp": {
                "host": self.ftp_host,
                "port": self.ftp_port,
                "user": self.ftp_user,
                "password": self.ftp_password,
                "kommune_users": "user = kommunekode, password = ftp_password(kommunekode)",
            },
            "portal_dir": str(self.portal_dir),
            "uvm_dir": str(self.uvm_dir),
            "ssi_dir": str(self.ssi_dir),
        }


def start_sources(
    data_dir: Path,
    host: str = "127.0.0.1",
    http_port: int = 0,
    ftp_port: int = 0,
    faults: Faults | None = None,
) -> SourceSystems:
    """Start webservice and FTP over ``data_dir`` (port 0 = a free port); returns them running."""
    return SourceSystems(data_dir, host, http_port, ftp_port, faults).start()


def _write_state(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def serve_forever(
    data_dir: Path,
    host: str = "127.0.0.1",
    http_port: int = 0,
    ftp_port: int = 0,
    faults: Faults | None = None,
    state_file: Path | None = None,
    stop_event: threading.Event | None = None,
) -> None:
    """Serve ``data_dir`` until Ctrl-C / SIGTERM (or ``stop_event``), printing the addresses.

    ``state_file`` receives :meth:`SourceSystems.describe` as JSON while running, so other
    processes (ingestion runs) can find the ports; it is removed on exit.
    """
    from rich.console import Console
    from rich.table import Table

    console = Console()
    stop = stop_event or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        with start_sources(Path(data_dir), host, http_port, ftp_port, faults) as sources:
            info = sources.describe()
            if state_file is not None:
                _write_state(Path(state_file), info)
            table = Table(title=f"dsdw source systems serving {data_dir}", show_header=False)
            table.add_column("channel", style="bold")
            table.add_column("address")
            table.add_row("webservice", info["webservice"]["url"])
            table.add_row("  tokens", info["webservice"]["tokens_file"])
            table.add_row("  faults", f"GET/POST {info['webservice']['faults_url']}")
            ftp = info["ftp"]
            table.add_row("ftp", f"ftp://{ftp['host']}:{ftp['port']}/")
            table.add_row("  star login", f"{ftp['user']} / {ftp['password']}")
            table.add_row("  kommune login", ftp["kommune_users"])
            table.add_row("portal", info["portal_dir"])
            table.add_row("uvm drops", info["uvm_dir"])
            table.add_row("ssi drops", info["ssi_dir"])
            console.print(table)
            console.print("[dim]Ctrl-C to stop[/dim]")
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
            console.print("stopping source systems")
    finally:
        if state_file is not None:
            Path(state_file).unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
