"""Anonymised extracts for the it-leverandørers test environments (BEK 912/2015 §§ 10-11).

§ 10: vendors of applications supporting a dataansvarlig's casework may use STAR's test
environments, which hold anonymised production data; stk. 2: only when the vendor's customer has
a tilslutningsaftale under § 6, stk. 1.  § 11: a vendor without a customer yet needs its own
agreement.  ``extract`` checks that in the governance register and refuses otherwise.

The test environment is the webservice (the agreement of § 6, stk. 1 is a webservice agreement),
so an extract holds the webservice datasets, laid out as the simulator's source directory
(``webservice/<dataset>/<dato>/<reporter>.jsonl`` + ``tokens.json``): the vendor's tests, and ours,
serve it with ``dsdw sources serve --data DIR`` and load it through the real ingestion.

What the extract keeps and what it replaces, all keyed with one random key per extract (kept in the
key directory, never in the extract), so values are consistent across datasets within an extract
and cannot be traced back without the key:

* CPR numbers -> synthetic, format-valid numbers with the same structure: a real birth date, the
  century digit that fits it and the gender parity of the last digit (modulus 11 is not required of
  modern CPR numbers; python-stdnum checks date and format).  Invalid source CPRs stay invalid.
* every date and timestamp of a person's records (and the birth date in the CPR, so ages at events
  hold) -> shifted by the same keyed number of days; the record moves to the shifted delivery day.
* names, contact data and free text (the contracts' ``pii`` classes, and any prose - a value with a
  space - in a string field without a code list) -> neutral test values;
  uuids (record keys, message ids) -> keyed uuids, so references between datasets still resolve.
* rare combinations: a person whose (birth year, gender, reporter) group has fewer than ``K_ANONYM``
  persons in the extract gets the birth date generalised to 1 July of the year.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from stdnum.dk import cpr as std_cpr

from pipelines.contracts import Contract, Field, load_contracts
from pipelines.governance.register import GovernanceError, Register, register_path

K_ANONYM = 3
MAX_SHIFT_DAYS = 14
CPH = ZoneInfo("Europe/Copenhagen")
PII_REPLACED = {"name", "contact", "free_text", "health"}


class TestdataRefused(RuntimeError):
    """The register gives the vendor no access (the message names §§ 10-11)."""

    __test__ = False  # not a pytest class


@dataclass
class ExtractResult:
    """What an extract wrote and on which legal basis."""

    out_dir: Path
    hjemmel: str
    aftagere: list[str]
    key_path: Path | None
    files: list[Path] = field(default_factory=list)
    records: int = 0
    persons: int = 0
    generalised: int = 0
    source_payloads: list[str] = field(default_factory=list)


class Anonymiser:
    """Keyed, deterministic replacements for one extract (the same key gives the same extract)."""

    def __init__(self, key: bytes, source_cprs: set[str]) -> None:
        self.key = key
        self.source_cprs = source_cprs
        self._cpr: dict[str, str] = {}
        self._used: set[str] = set()
        self.generalised: set[str] = set()  # source CPRs whose birth date was generalised

    def _h(self, *parts: str) -> bytes:
        return hmac.new(self.key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).digest()

    def _n(self, *parts: str) -> int:
        return int.from_bytes(self._h(*parts)[:8], "big")

    def shift(self, cpr: str | None) -> int:
        """Days a person's dates move: keyed, in [-MAX, MAX] without 0; 0 for records without a person."""
        if not cpr:
            return 0
        k = self._n("shift", cpr) % (2 * MAX_SHIFT_DAYS)
        return k - MAX_SHIFT_DAYS if k < MAX_SHIFT_DAYS else k - MAX_SHIFT_DAYS + 1

    def code(self, kind: str, value: str, n: int = 6) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        x = self._n(kind, value)
        return "".join(alphabet[(x >> (5 * i)) & 31] for i in range(n))

    def uuid(self, value: str) -> str:
        return str(uuid.UUID(bytes=self._h("uuid", value.lower())[:16], version=4))

    def cpr(self, value: str, rare: bool = False) -> str:
        if value in self._cpr:
            return self._cpr[value]
        try:
            std_cpr.validate(value)
            born = std_cpr.get_birth_date(value)
        except Exception:  # noqa: BLE001 - an invalid CPR stays invalid (day 00), keyed
            out = "00" + f"{self._n('ugyldig', value) % 10**8:08d}"
            self._cpr[value] = out
            return out
        born = born + dt.timedelta(days=self.shift(value))
        if rare:
            born = born.replace(month=7, day=1)
            self.generalised.add(value)
        female = int(value[-1]) % 2 == 0
        seed = self._n("cpr", value)
        for attempt in range(10_000):
            cand = _synthetic_cpr(born, female, seed + attempt * 7919)
            if cand not in self._used and cand not in self.source_cprs:
                break
        else:  # pragma: no cover - 10,000 serials of one birth date and gender exhausted
            raise RuntimeError(f"no free synthetic CPR for birth date {born}")
        self._used.add(cand)
        self._cpr[value] = cand
        return cand

    def text(self, f: Field, value: str) -> str:
        gen = f.generator or ""
        code = self.code(f.name, value)
        if f.pii == "name":
            out = {"person_name": f"Testperson {code}", "company_name": f"Testvirksomhed {code}"}.get(
                gen, f"Testnavn {code}")
        elif f.pii == "contact":
            if gen == "email" or "@" in value:
                out = f"test.{code.lower()}@example.invalid"
            elif gen == "phone" or value.replace(" ", "").replace("+", "").isdigit():
                out = "9" + f"{self._n('tlf', value) % 10**7:07d}"
            elif gen == "address":
                out = f"Testvej {self._n('adr', value) % 200 + 1}"
            else:
                out = f"Testkontakt {code}"
        else:  # free text and health: the content is gone, the field stays filled
            out = f"Testtekst {code}"
        return out[: f.max_length] if f.max_length else out


def _synthetic_cpr(born: dt.date, female: bool, seed: int) -> str:
    """A CPR for ``born`` whose 7th digit fits the century and whose last digit has the gender's parity."""
    yy = born.year % 100
    if 1900 <= born.year <= 1999:
        digits = [0, 1, 2, 3] + ([4, 9] if yy >= 37 else [])
    elif 2000 <= born.year <= 2036:
        digits = [4, 9, 5, 6, 7, 8]
    elif 2037 <= born.year <= 2057 or 1858 <= born.year <= 1899:
        digits = [5, 6, 7, 8]
    else:
        raise ValueError(f"no CPR century digit for {born.year}")
    d7 = digits[seed % len(digits)]
    mid = (seed // 7) % 100
    last = ((seed // 701) % 5) * 2 + (0 if female else 1)
    return f"{born:%d%m%y}{d7}{mid:02d}{last}"


def _shift_value(t: str, v: Any, days: int) -> Any:
    if days == 0 or not isinstance(v, str) or not v:
        return v
    try:
        if t == "date":
            if len(v) != 10:
                return v
            return (dt.date.fromisoformat(v) + dt.timedelta(days=days)).isoformat()
        if t == "datetime":
            ts = dt.datetime.fromisoformat(v)
            if ts.tzinfo is None:
                return (ts + dt.timedelta(days=days)).isoformat(timespec="seconds")
            local = ts.astimezone(CPH).replace(tzinfo=None) + dt.timedelta(days=days)
            return local.replace(tzinfo=CPH).isoformat(timespec="seconds")
    except ValueError:
        return v  # a broken date is the record's defect: it stays broken
    return v


def _person(c: Contract, rec: dict[str, Any]) -> str | None:
    for f in c.all_fields:
        if f.type == "cpr" and isinstance(rec.get(f.name), str) and rec[f.name]:
            return rec[f.name]
    return None


def anonymise_record(anon: Anonymiser, c: Contract, rec: Any, rare: set[str]) -> tuple[Any, int]:
    """One record anonymised, and the days its person's dates moved."""
    if not isinstance(rec, dict):
        return "ugyldig post (testdata)", 0  # not an object: stays invalid, content gone
    who = _person(c, rec)
    days = anon.shift(who)
    by_name = {f.name: f for f in c.all_fields}
    out: dict[str, Any] = {}
    for k, v in rec.items():
        f = by_name.get(k)
        if f is None:
            out[k] = None if v is None else "ukendt felt (testdata)"  # unknown fields: content not kept
            continue
        out[k] = [_value(anon, f, x, days, rare) for x in v] if isinstance(v, list) else _value(anon, f, v, days, rare)
    return out, days


def _value(anon: Anonymiser, f: Field, v: Any, days: int, rare: set[str]) -> Any:
    if v is None or v == "":
        return v
    if f.type == "cpr":
        return anon.cpr(str(v), rare=str(v) in rare)
    if f.type in ("date", "datetime"):
        return _shift_value(f.type, v, days)
    if f.type == "uuid" and isinstance(v, str):
        try:
            uuid.UUID(v)
        except ValueError:
            return v
        return anon.uuid(v)
    if f.pii in PII_REPLACED and isinstance(v, str):
        return anon.text(f, v)
    if (f.type in ("string", "text") and not f.codelist and not f.is_envelope and isinstance(v, str)
            and any(ch.isspace() for ch in v)):
        # prose in a field the contract classes as non-personal (a venue's address, a comment in a
        # code-like field): the contracts' pii classes serve the warehouse; an extract leaves the zone
        return anon.text(f, v)
    return v


def _quasi(cpr: str, reporter: str) -> tuple[int, int, str] | None:
    try:
        std_cpr.validate(cpr)
    except Exception:  # noqa: BLE001
        return None
    return (std_cpr.get_birth_date(cpr).year, int(cpr[-1]) % 2, reporter)


def _pages(root: Path, reporters: list[str] | None) -> list[tuple[str, str, dt.date, str, Path]]:
    """Loaded webservice pages: (dataset, reporter, leveringsdato, payload id, landing path)."""
    import sqlite3

    con = sqlite3.connect(f"file:{Path(root) / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT dataset, reporter, leveringsdato, payload_id, landing_path FROM payloads "
                           "WHERE channel='webservice' AND status='loaded' "
                           "ORDER BY leveringsdato, dataset, reporter, source_name, version").fetchall()
    finally:
        con.close()
    want = set(reporters) if reporters else None
    return [(ds, rep, dt.date.fromisoformat(d), pid, Path(p)) for ds, rep, d, pid, p in rows
            if want is None or rep in want]


def _key_path(extract_id: str) -> Path:
    from pipelines.warehouse.keys import key_dir

    return key_dir() / f"testdata-{extract_id}.key"


def extract(root: Path | str, vendor: str, *, aftager: str | None = None, out: Path | str | None = None,
            day: dt.date | None = None, key: bytes | None = None) -> ExtractResult:
    """Write an anonymised extract for ``vendor`` (restricted to ``aftager`` if given); refuses without access.

    ``key`` fixes the keyed mapping (tests); by default a fresh random key per extract is stored 0600 in
    the key directory as ``testdata-<id>.key``, so STAR (not the vendor) can recompute a mapping.
    """
    root = Path(root)
    day = day or dt.date.today()
    if not register_path(root).exists():
        raise TestdataRefused(f"§§ 10-11: no governance register at {register_path(root)}: no agreement can "
                              "give {vendor} access")
    with Register(register_path(root), readonly=True) as reg:
        try:
            hjemmel, aftagere = reg.testmiljoe_adgang(vendor, day, aftager)
        except GovernanceError as exc:
            raise TestdataRefused(str(exc)) from None
    contracts = load_contracts()
    pages = _pages(root, aftagere or None)
    extract_id = f"{vendor}-{day:%Y%m%d}-{secrets.token_hex(4)}"
    out_dir = Path(out) if out is not None else root / "testdata" / extract_id
    key_path = None
    if key is None:
        key = secrets.token_bytes(32)
        key_path = _key_path(extract_id)
        key_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key.hex() + "\n")
    # pass 1: the source records, their persons and the rare (birth year, gender, reporter) groups
    source: list[tuple[Contract, str, dt.date, list[Any]]] = []
    cprs: set[str] = set()
    groups: dict[tuple, set[str]] = defaultdict(set)
    for ds, rep, lev, _pid, path in pages:
        c = contracts[ds]
        obj = json.loads(path.read_bytes().decode("utf-8", "replace"))
        records = obj.get("records") or []
        source.append((c, rep, lev, records))
        for r in records:
            if not isinstance(r, dict):
                continue
            for f in c.all_fields:
                if f.type == "cpr" and isinstance(r.get(f.name), str):
                    cprs.add(r[f.name])
            who = _person(c, r)
            q = _quasi(who, rep) if who else None
            if q:
                groups[q].add(who)
    rare = {p for members in groups.values() if len(members) < K_ANONYM for p in members}
    anon = Anonymiser(key, cprs)
    # pass 2: anonymise and place each record on its person's shifted delivery day
    files: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    res = ExtractResult(out_dir, hjemmel, aftagere, key_path, source_payloads=[p[3] for p in pages])
    persons: set[str] = set()
    for c, rep, lev, records in source:
        for r in records:
            new, days = anonymise_record(anon, c, r, rare)
            if isinstance(r, dict) and (who := _person(c, r)):
                persons.add(who)
            target = (lev + dt.timedelta(days=days)).isoformat()
            files[(c.dataset, target, rep)].append(json.dumps(new, ensure_ascii=False, separators=(",", ":")))
            res.records += 1
    ws = out_dir / "webservice"
    ws.mkdir(parents=True, exist_ok=True)
    for sub in ("ftp", "portal", "drops/uvm", "drops/ssi"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    for (ds, d, rep), lines in sorted(files.items()):
        p = ws / ds / d / f"{rep}.jsonl"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        res.files.append(p)
    reporters = sorted({rep for _, _, rep in files})
    (ws / "tokens.json").write_text(json.dumps({r: secrets.token_hex(16) for r in reporters}, indent=1),
                                    encoding="utf-8")
    res.persons = len(persons)
    res.generalised = len(anon.generalised)
    counts = Counter(ds for ds, _, _ in files)
    (out_dir / "LAESMIG.json").write_text(json.dumps({
        "hjemmel": hjemmel, "leverandoer": vendor, "aftagere": aftagere or "alle", "dato": day.isoformat(),
        "udtraek": extract_id, "poster": res.records, "personer": res.persons,
        "generaliserede_foedselsdatoer": res.generalised, "k_anonym": K_ANONYM, "filer_pr_datasaet": counts,
        "note": "Anonymiserede oplysninger fra produktionsmiljøet (§ 10, stk. 1; § 11, stk. 1): CPR-numre er "
                "syntetiske, datoer forskudt pr. person, navne, kontaktdata og fritekst erstattet.",
    }, ensure_ascii=False, indent=1), encoding="utf-8")
    return res
