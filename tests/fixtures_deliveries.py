"""Helpers shared by the delivery tests (hand-made warehouse rows, opening delivered files).

Shared by the delivery, governance and quality tests; it defines no tests itself.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fixtures_wh import uid, use_keys

from pipelines.deliveries import decrypt, get_recipient

D = dt.date.fromisoformat


@contextlib.contextmanager
def key_env(keydir: Path) -> Iterator[Path]:
    """DSDW_KEY_DIR set to ``keydir`` with fresh pseudonym and restricted keys (for module fixtures)."""
    with pytest.MonkeyPatch.context() as mp:
        yield use_keys(mp, keydir)


def foranst(tag: str, cpr: str, aktiveringstype: str, start: str, end: str | None, cvr: str = "12345674",
            version: int = 1, change: str = "1", kommune: str = "101") -> dict[str, Any]:
    art = "kursus" if aktiveringstype.startswith("2") else "virksomhedsrettet"
    return {"foranstaltning_id": uid(tag), "cpr": cpr, "foranstaltningsart": art, "aktiveringstype": aktiveringstype,
            "startdato": D(start), "slutdato": D(end) if end else None, "udbyder_cvr": cvr,
            "udbyder_pnummer": "1000000001", "haendelsesdato": D(start), "registreringsdato": D(start),
            "ugentligt_timetal": 37, "ugentligt_minuttal": 0, "kvitteret_paa_borgerens_vegne": False,
            "ansvarlig_sagsbehandler": "Sagsbehandler Navn", "udbyder_kontaktinformation": "+45 12345678",
            "statusbemaerkning": "fritekst der ikke må videregives", "version": version, "aendringstype": change,
            "kommunekode": kommune}


def plan(tag: str, cpr: str, trin: str, dato: str, version: int, status: str = "2", change: str = "1"
         ) -> dict[str, Any]:
    return {"uddannelsesplan_id": uid(tag), "cpr": cpr, "trin": trin, "status": status,
            "oprettelses_revisionsdato": D(dato), "registreringsdato": D(dato), "version": version,
            "planversion": version, "aendringstype": change, "planbeskrivelse": "fritekst"}


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def open_file(manifest_path: Path, out: dict[str, Any], recipient: str) -> bytes:
    """Plaintext bytes of one delivered file (decrypted with the recipient's key when encrypted)."""
    path = Path(manifest_path).parent / out["sti"]
    if out["krypteret"]:
        return decrypt(path, recipient)
    return path.read_bytes()


def read_rows(manifest_path: Path, recipient: str, fmt: str = "parquet") -> dict[str, list[dict[str, Any]]]:
    """file name -> rows (all parties together, each row with its party under '_part' when split)."""
    m = read_manifest(manifest_path)
    rows: dict[str, list[dict[str, Any]]] = {}
    for f in m["filer"]:
        rows[f["navn"]] = []
        for out in f["udgaver"]:
            if out["format"] != fmt:
                continue
            data = open_file(manifest_path, out, recipient)
            if fmt == "parquet":
                recs = pq.read_table(io.BytesIO(data)).to_pylist()
            else:
                recs = list(csv.DictReader(io.StringIO(data.decode("utf-8")), delimiter=";"))
            for r in recs:
                if out["modtager_part"]:
                    r["_part"] = out["modtager_part"]
                rows[f["navn"]].append(r)
    return rows


def declared_columns(recipient: str, file: str) -> list[str]:
    spec = next(f for f in get_recipient(recipient).filer if f.navn == file)
    return spec.column_names
