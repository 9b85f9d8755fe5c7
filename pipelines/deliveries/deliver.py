"""One delivery: cut -> deterministic files -> encryption -> manifest -> audit log.

Output: ``<root>/deliveries/<recipient>/<period>/<kind>-<load_id>/`` (or the
same below ``out_dir``) with the data files and ``manifest.json``; for
recipients split by kommune or a-kasse one sub-directory per party, each
encrypted to that party's own key.  Plaintext of CPR-bearing files exists
only in memory: the manifest's ``sha256`` is the plaintext's (identical for
every re-run of the same cut), ``krypteret.sha256`` the ciphertext's (differs
per run: fresh ephemeral key and nonces).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import REPO_ROOT
from pipelines.deliveries import audit, crypto
from pipelines.deliveries.cut import (
    Cut,
    DeliveryError,
    Period,
    cut_full,
    cut_increment,
    lake_refs,
    open_sources,
    parse_period,
    period_of,
    resolve_cut,
)
from pipelines.deliveries.recipients import FileSpec, Recipient, get_recipient
from pipelines.deliveries.serialize import AENDRING, CSV_DELIMITER, SERIALIZERS, conform
from pipelines.fsio import DurableBatch, fsync_dir
from pipelines.governance.hooks import withhold_closed  # issue 17

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


@functools.cache
def pipeline_version() -> dict[str, str | None]:
    """dsdw's version, the git commit when run from a checkout, and the writers' versions."""
    from importlib.metadata import PackageNotFoundError, version

    import duckdb

    try:
        v = version("dsdw")
    except PackageNotFoundError:
        v = None
    commit = None
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5,
                           check=False)
        commit = r.stdout.strip() or None if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"dsdw": v, "git_commit": commit, "pyarrow": pa.__version__, "duckdb": duckdb.__version__}


def delivery_dir(base: Path, rec: Recipient, period: Period, kind: str, cut: Cut) -> Path:
    return Path(base) / rec.id / period.text / f"{kind}-{cut.load_id}"


def _previous(root: Path, rec: Recipient, period: Period, cut: Cut, since_load_id: str | None,
              con: Any) -> Cut:
    """The cut of the delivery an increment follows: the latest earlier delivery for this recipient and period."""
    mine = [e for e in audit.list_deliveries(root) if e.get("modtager") == rec.id and e.get("periode") == period.text]
    if since_load_id is not None:
        if not any(e.get("load_id") == since_load_id for e in mine):
            raise DeliveryError(f"{rec.id} {period.text}: no logged delivery from load {since_load_id} to increment on")
        prev = resolve_cut(con, since_load_id)
    else:
        earlier = [e for e in mine if e.get("indlaest_dato", "") < cut.indlaest_dato.isoformat()]
        if not earlier:
            raise DeliveryError(f"{rec.id} {period.text}: no earlier delivery from an earlier load to increment on; "
                                "deliver kind=full first")
        last = max(earlier, key=lambda e: (e["indlaest_dato"], e["seq"]))
        prev = Cut(last["load_id"], dt.date.fromisoformat(last["indlaest_dato"]))
    if prev.indlaest_dato >= cut.indlaest_dato:
        raise DeliveryError(f"increment: previous cut {prev.load_id} is not before this cut {cut.load_id}")
    return prev


def _parts(rec: Recipient, table: pa.Table) -> list[tuple[str | None, pa.Table]]:
    if rec.opdeling is None:
        return [(None, table)]
    col = table.column("_modtager")
    if col.null_count:
        raise DeliveryError(f"{rec.id}: {col.null_count} rows have no party (_modtager is NULL)")
    out = []
    for party in sorted(set(col.to_pylist())):
        if not re.fullmatch(r"[0-9A-Za-z_-]{1,32}", str(party)):
            raise DeliveryError(f"{rec.id}: party {party!r} is not a code usable as a directory and key name")
        out.append((str(party), table.filter(pc.equal(col, party)).drop_columns(["_modtager"])))
    return out


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _emit(rec: Recipient, spec: FileSpec, table: pa.Table, kind: str, staging: Path,
          create_missing_keys: bool, batch: DurableBatch) -> dict[str, Any]:
    columns = ([AENDRING] if kind == "increment" else []) + list(spec.kolonner)
    outputs = []
    for party, part in _parts(rec, table):
        data = conform(part, columns, f"{rec.id}/{spec.navn}")
        key_name = rec.id if party is None else f"{rec.id}-{party}"
        pub = None
        if rec.krypteret:
            if create_missing_keys:
                crypto.ensure_recipient_keypair(key_name)
            pub = crypto.load_public_key(key_name)
        for fmt in rec.formater:
            plain = SERIALIZERS[fmt](data)
            rel = (f"{party}/" if party else "") + f"{spec.navn}.{fmt}" + (".enc" if pub else "")
            out: dict[str, Any] = {"sti": rel, "format": fmt, "modtager_part": party, "raekker": data.num_rows,
                                   "sha256": _sha(plain), "bytes": len(plain), "krypteret": None}
            if pub is not None:
                blob = crypto.encrypt(plain, pub)
                out["krypteret"] = {"algoritme": crypto.ALGORITHM, "noegle": key_name,
                                    "noegle_id": crypto.public_key_id(pub), "sha256": _sha(blob), "bytes": len(blob)}
                batch.write(staging / rel, blob)
            else:
                batch.write(staging / rel, plain)
            del plain
            outputs.append(out)
    return {
        "navn": spec.navn, "datasaet": spec.datasaet, "noegle": list(spec.noegle),
        "raekker": table.num_rows,
        "kolonner": [{"navn": c.navn, "type": c.type, "beskrivelse": c.beskrivelse, "paragraf": c.paragraf}
                     for c in columns],
        "udgaver": outputs,
    }


def _swap_in(staging: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(staging, final)
    fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def deliver(root: Path | str, recipient: str, period: str, kind: str = "full", out_dir: Path | str | None = None,
            *, load_id: str | None = None, since_load_id: str | None = None,
            create_missing_keys: bool = False) -> Path:
    """Make one delivery and log it; returns the manifest's path.

    ``load_id`` pins the cut (default: the latest load) so a recorded delivery
    can be re-made byte-identically; ``since_load_id`` pins the base of an
    increment (default: the latest earlier delivery for the recipient and
    period in the audit log).  ``create_missing_keys`` creates demo key pairs
    for recipients without a public key (never in production).
    """
    root = Path(root)
    rec = get_recipient(recipient)
    if kind not in rec.leveringer:
        raise DeliveryError(f"{rec.id}: delivery kind {kind!r} not declared (declared: {', '.join(rec.leveringer)})")
    per = parse_period(period, rec.periode)
    prev: Cut | None = None
    tables: dict[str, pa.Table] = {}
    with open_sources(root, lake_refs(rec)) as con:
        cut = resolve_cut(con, load_id)
        if cut.indlaest_dato < per.fra:
            raise DeliveryError(f"{rec.id} {per.text}: the cut {cut.load_id} ({cut.indlaest_dato}) is before the "
                                f"period starts ({per.fra}); load the warehouse first")
        if kind == "increment":
            prev = _previous(root, rec, per, cut, since_load_id, con)
        for spec in rec.filer:
            tables[spec.navn] = (cut_full(con, rec, spec, cut, per) if kind == "full"
                                 else cut_increment(con, rec, spec, prev, cut, per))
    # issue 17 (§ 8): nothing goes to a party whose webservice access is closed on the cut's day; logged below
    tables, withheld = withhold_closed(root, rec.opdeling, cut.indlaest_dato, tables)
    base = Path(out_dir) if out_dir is not None else audit.audit_dir(root)
    final = delivery_dir(base, rec, per, kind, cut)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        # a split recipient's files (one per party, format and file: hundreds) are made durable together, before
        # the manifest names them and the swap publishes them (one fsync after another cost seconds)
        batch = DurableBatch()
        files = [_emit(rec, spec, tables.pop(spec.navn), kind, staging, create_missing_keys, batch)
                 for spec in rec.filer]
        batch.flush()
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "modtager": {"id": rec.id, "navn": rec.navn},
            "retsgrundlag": rec.retsgrundlag,
            "paragraf_tekst": rec.paragraf_tekst,
            "formaal": rec.formaal,
            "population": rec.population,
            "periode": {"tekst": per.text, "type": per.kind, "fra": per.fra.isoformat(), "til": per.til.isoformat()},
            "levering": kind,
            "snit": {"load_id": cut.load_id, "indlaest_dato": cut.indlaest_dato.isoformat()},
            "forrige_snit": ({"load_id": prev.load_id, "indlaest_dato": prev.indlaest_dato.isoformat()}
                             if prev else None),
            "opdeling": rec.opdeling,
            "raekker": sum(f["raekker"] for f in files),
            "filer": files,
            **({"tilbageholdt_lukket_adgang": withheld} if withheld else {}),  # issue 17 (§ 8)
            "kryptering": ({"algoritme": crypto.ALGORITHM,
                            "note": "sha256/bytes gælder klarteksten (ens ved hver genkørsel af samme snit); "
                                    "krypteret.sha256 gælder den krypterede fil (ny pr. kørsel)"}
                           if rec.krypteret else None),
            "csv": {"tegnsaet": "UTF-8", "separator": CSV_DELIMITER, "linjeskift": "LF", "null": "tom",
                    "lister": "|"} if "csv" in rec.formater else None,
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "pipeline_version": pipeline_version(),
        }
        mbytes = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
        _write(staging / MANIFEST, mbytes)
        fsync_dir(staging)
        _swap_in(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    mpath = final / MANIFEST
    try:
        mrel = str(mpath.relative_to(root))
    except ValueError:
        mrel = str(mpath)
    audit.append(root, {
        "tid": manifest["generated_at"], "modtager": rec.id, "modtager_navn": rec.navn,
        "retsgrundlag": rec.retsgrundlag, "periode": per.text, "levering": kind,
        "load_id": cut.load_id, "indlaest_dato": cut.indlaest_dato.isoformat(),
        "forrige_load_id": prev.load_id if prev else None, "raekker": manifest["raekker"],
        "filer": [{"sti": u["sti"], "raekker": u["raekker"], "sha256": u["sha256"],
                   "sha256_krypteret": u["krypteret"]["sha256"] if u["krypteret"] else None}
                  for f in files for u in f["udgaver"]],
        "manifest": mrel, "manifest_sha256": _sha(mbytes),
        **({"tilbageholdt_lukket_adgang": withheld} if withheld else {}),  # issue 17 (§ 8)
    })
    return mpath


def default_period(root: Path | str, recipient: str, kind: str, today: dt.date | None = None) -> str:
    """The period a scheduled delivery is for.

    full: the period containing yesterday (a run on the 1st delivers the month just ended, a Monday run
    the ISO week just ended); increment: the latest period that already has a full delivery for the recipient.
    """
    rec = get_recipient(recipient)
    today = today or dt.date.today()
    if kind == "full":
        return period_of(today - dt.timedelta(days=1), rec.periode)
    fulls = [e for e in audit.list_deliveries(Path(root)) if e.get("modtager") == rec.id and e.get("levering") == "full"]
    if not fulls:
        raise DeliveryError(f"{rec.id}: no full delivery yet to increment on")
    return max(fulls, key=lambda e: (parse_period(e["periode"], rec.periode).fra, e["seq"]))["periode"]


def demo_deliveries(root: Path | str, period: str, *, create_missing_keys: bool = True) -> list[dict[str, Any]]:
    """Every recipient once for the demo: a full cut from the middle load of ``period``, then (where
    declared) an increment from the latest load, so the increments show the corrections in between.

    Weekly recipients get a full for the ISO week of the latest load.  Returns one summary row per delivery.
    """
    root = Path(root)
    per = parse_period(period, "maaned")
    with open_sources(root, lake=()) as con:
        loads = [Cut(r[0], r[1]) for r in con.execute(
            "SELECT load_id, indlaest_dato FROM meta.load WHERE indlaest_dato <= ? "
            "ORDER BY indlaest_dato, finished_at, load_id", [per.til]).fetchall()]
    loads = [c for c in loads if c.indlaest_dato >= per.fra]
    if not loads:
        raise DeliveryError(f"no warehouse load in {period}")
    by_day: dict[dt.date, Cut] = {c.indlaest_dato: c for c in loads}  # the last load of each day
    days = sorted(by_day)
    mid, last = by_day[days[(len(days) - 1) // 2]], by_day[days[-1]]
    out = []
    for rec in [get_recipient(r) for r in _recipient_ids()]:
        plan = [("full", mid)] if "increment" in rec.leveringer and mid != last else [("full", last)]
        if "increment" in rec.leveringer and mid != last:
            plan.append(("increment", last))
        for kind, cut in plan:
            p = period if rec.periode == "maaned" else period_of(cut.indlaest_dato, rec.periode)
            mpath = deliver(root, rec.id, p, kind, load_id=cut.load_id, since_load_id=mid.load_id
                            if kind == "increment" else None, create_missing_keys=create_missing_keys)
            m = json.loads(mpath.read_text(encoding="utf-8"))
            out.append({"modtager": rec.id, "retsgrundlag": rec.retsgrundlag, "levering": kind, "periode": p,
                        "load_id": cut.load_id, "raekker": m["raekker"],
                        "filer": {f["navn"]: f["raekker"] for f in m["filer"]},
                        "parter": len({u["modtager_part"] for f in m["filer"] for u in f["udgaver"]
                                       if u["modtager_part"]}),
                        "manifest": str(mpath)})
    return out


def _recipient_ids() -> list[str]:
    from pipelines.deliveries.recipients import load_recipients

    return list(load_recipients())


def decrypt(file: Path | str, recipient: str, out: Path | str | None = None) -> bytes:
    """Open a delivered file with the recipient's age identity (demo and tests only).

    ``recipient`` is the recipient id; for split recipients every party's identity
    (``<id>-<party>``) is offered and age picks the one the file was encrypted to.
    """
    blob = Path(file).read_bytes()
    d = crypto.recipient_key_dir()
    names = [recipient] + sorted(p.stem for p in d.glob(f"{recipient}-*.key"))
    identities = [crypto.load_private_key(n) for n in names if (d / f"{n}.key").exists()]
    if not identities:
        crypto.load_private_key(recipient)  # raises, naming the missing key file
    plain = crypto.decrypt(blob, *identities)
    if out is not None:
        Path(out).write_bytes(plain)
    return plain
