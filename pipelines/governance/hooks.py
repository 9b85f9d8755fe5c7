"""What ingestion and deliveries ask the governance register (issue 17).

Active only where an environment has a register (``<root>/governance.sqlite``): without one,
nothing is refused, so environments that keep no agreements (the tests of other areas, a bare
demo) behave as before.  With one, the order's rules hold:

* § 6, stk. 1 and 3: a delivery over webservice or Arbejdsmarkedsportalen needs a tilslutningsaftale
  valid on the delivery day.  FTP (§ 52, stk. 4) and the UVM/SSI drops need none, and Jobnet is
  STAR's own system.
* § 6, stk. 2: every webservice call identifies who reports: a person, or for automatic reports the
  dataansvarlig aftager alone.  The page envelope carries it (``identifikation``); a page without it,
  or naming another aftager than the token's, is refused.
* § 8: while the aftager's access to read, register and receive via webservices is closed, its
  webservice deliveries are refused and nothing is delivered to it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from pipelines.governance.register import AFTALE_KANALER, Register, register_path

_IDENT_HEAD = re.compile(rb'^\s*\{[^\[]*?"identifikation"\s*:\s*(null|\{[^{}]*\})')
#: Reporters that are STAR's own systems (no dataansvarlig aftager to make an agreement with).
STAR_SYSTEMER = frozenset({"JOBNET"})


def ingest_refusal(register: Register, reporter: str, channel: str, day: dt.date) -> str | None:
    """Why a delivery from ``reporter`` over ``channel`` on ``day`` is refused, or None."""
    if channel not in AFTALE_KANALER or reporter.upper() in STAR_SYSTEMER:
        return None
    if channel == "webservice":
        lukket = register.lukning(reporter, day)
        if lukket is not None:
            return f"afvist: {lukket.grund()}"
    if register.gyldig_aftale(reporter, channel, day) is None:
        return (f"afvist: {AFTALE_KANALER[channel]}: {reporter} har ingen gyldig tilslutningsaftale for {channel} "
                f"den {day}")
    return None


def identification_refusal(body: bytes, reporter: str) -> str | None:
    """§ 6, stk. 2: why a webservice page does not identify who reported it, or None."""
    m = _IDENT_HEAD.search(body[:2048])  # the envelope comes first: no second parse of a whole page
    if m is not None:
        try:
            ident = json.loads(m.group(1))
        except ValueError:
            ident = None
    else:
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None  # an unreadable page is the parser's verdict, not this rule's
        ident = obj.get("identifikation") if isinstance(obj, dict) else None
    if not isinstance(ident, dict):
        return ("afvist: § 6, stk. 2: webservicekaldet identificerer ikke den, der foretager indberetningen "
                "(intet 'identifikation' i kaldet)")
    person = str(ident.get("person") or "").strip()
    aftager = str(ident.get("dataansvarlig_aftager") or "").strip()
    if aftager and aftager != reporter:
        return (f"afvist: § 6, stk. 2: kaldet identificerer aftager {aftager}, men er foretaget med {reporter}s "
                "adgang")
    if not person and not aftager:
        return ("afvist: § 6, stk. 2: identifikationen i webservicekaldet er tom (hverken person eller, ved "
                "automatisk indberetning, den dataansvarlige aftager)")
    return None


def payload_refusal(root: Path | str, key: Any, data: bytes) -> str | None:
    """The ingestion hook: why the payload ``key`` (a ledger PayloadKey) is refused, or None."""
    path = register_path(root)
    if not path.exists():
        return None
    with Register(path, readonly=True) as reg:
        why = ingest_refusal(reg, key.reporter, key.channel, key.leveringsdato)
    if why is None and key.channel == "webservice" and key.reporter.upper() not in STAR_SYSTEMER:
        why = identification_refusal(data, key.reporter)
    return why


def withhold_closed(root: Path | str, opdeling: str | None, day: dt.date, tables: dict[str, Any]
                    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The deliveries hook (§ 8): drop the rows for parties whose access is closed on ``day``.

    ``tables`` are the cut's Arrow tables with the ``_modtager`` column of split recipients; returns the
    tables to deliver and one log entry per withheld party (for the manifest and the audit log).
    """
    path = register_path(root)
    if opdeling not in ("kommune", "akasse") or not path.exists():
        return tables, []
    import pyarrow as pa
    import pyarrow.compute as pc

    parties = sorted({str(p) for t in tables.values() for p in t.column("_modtager").to_pylist() if p is not None})
    with Register(path, readonly=True) as reg:
        closed = {p: lk for p in parties if (lk := reg.lukning(p, day)) is not None}
    if not closed:
        return tables, []
    mask_values = pa.array(sorted(closed))
    out, held = {}, {p: 0 for p in closed}
    for name, t in tables.items():
        drop = pc.is_in(t.column("_modtager").cast(pa.string()), value_set=mask_values)
        for p in t.filter(drop).column("_modtager").to_pylist():
            held[str(p)] += 1
        out[name] = t.filter(pc.invert(pc.fill_null(drop, False)))
    log = [{"modtager_part": p, "paragraf": "§ 8", "raekker_tilbageholdt": held[p], "lukket_fra":
            lk.lukket_fra.isoformat(), "grund": lk.grund()} for p, lk in sorted(closed.items())]
    return out, log
