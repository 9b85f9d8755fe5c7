"""Files sealed at rest with age (the restricted database).

DuckDB's own database encryption needs its OpenSSL crypto module (shipped in the
httpfs extension); without it DuckDB refuses to write encrypted files except
through a setting its developers mark unsafe.  The extension cannot be installed
on machines without access to DuckDB's extension repository, so the restricted
DuckDB file is sealed with age (pyrage) in chunks (:func:`seal_chunks`, below:
a night writes only the chunks it changed): it exists in plaintext only in a
private directory in memory (``/dev/shm``) while a build holds it open, and an
operator can open a sealed copy with the standard ``age`` tool and the identity
:func:`age_identity` derives from the restricted key.  :func:`seal_file` (one
age file) is the form of roots sealed before the chunks.

The restricted key (32 bytes, :mod:`.keys`) *is* the X25519 scalar of an age
identity; the identity is its Bech32 form ``AGE-SECRET-KEY-1...``.  age
authenticates every 64 KiB chunk and the end of the stream, so a damaged,
truncated or reordered file fails to open.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyrage
from bech32 import bech32_encode, convertbits

from pipelines.fsio import fsync_dir

MAGIC = b"age-encryption.org/v1\n"


class SealError(RuntimeError):
    """A sealed file is damaged, truncated or sealed with another key."""


def age_identity(key: bytes) -> str:
    """The age identity (``AGE-SECRET-KEY-1...``) whose X25519 scalar is ``key``."""
    if len(key) != 32:
        raise SealError(f"an age identity needs a 32-byte key, got {len(key)} bytes")
    return bech32_encode("age-secret-key-", convertbits(key, 8, 5)).upper()


def age_recipient(key: bytes) -> str:
    """The age recipient (``age1...``) the restricted database is sealed to."""
    return str(pyrage.x25519.Identity.from_str(age_identity(key)).to_public())


def seal_file(src: Path, dst: Path, key: bytes) -> None:
    """Encrypt ``src`` into ``dst`` as an age file (written to a temp file, fsynced, renamed)."""
    ident = pyrage.x25519.Identity.from_str(age_identity(key))
    tmp = dst.with_name(dst.name + ".tmp")
    pyrage.encrypt_file(str(src), str(tmp), [ident.to_public()])
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dst)
    fsync_dir(dst.parent)


def unseal_file(src: Path, dst: Path, key: bytes) -> None:
    """Decrypt ``src`` into ``dst``; raises :class:`SealError` naming the file on any damage or other key."""
    with open(src, "rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            raise SealError(f"{src}: not an age-sealed file")
    try:
        pyrage.decrypt_file(str(src), str(dst), [pyrage.x25519.Identity.from_str(age_identity(key))])
    except (pyrage.DecryptError, OSError) as exc:  # a damaged STREAM chunk surfaces as an I/O error
        Path(dst).unlink(missing_ok=True)
        raise SealError(f"{src}: cannot be opened with the current restricted key (sealed with another key, "
                        f"damaged or truncated): {exc}") from None


# ---------------------------------------------------------------- sealed in chunks (the restricted database)
#
# Why chunks: the restricted database grows with the years of health facts it keeps, and a night changes a few of
# its DuckDB blocks. Sealed as one age file it was encrypted and written whole every night (3.0 s at 5 years of
# national history against 0.7 s at 1 year, bench/results/warehouse_national_s15.json). Sealed as a directory of
# age files, one per CHUNK bytes of the database, a night writes only the chunks whose content changed: a chunk's
# file is named by a keyed digest of its plaintext (HMAC-SHA256 under a key derived from the restricted key, so a
# name says nothing about the content without the key), so an unchanged chunk keeps its file. ``manifest.age`` (age
# too) lists the chunk names in order after a three-line header; it is replaced last and atomically, so a crash
# leaves the previous night's set whole (orphan chunk files are removed by the next seal). An operator opens a copy
# with the standard tool:
#
#     age -d -i identity.txt manifest.age | sed 1,3d | while read c; do age -d -i identity.txt "chunks/$c.age"; done
#
FORMAT = "dsdw-sealed-chunks 1"
CHUNK = 4 * 2**20
MANIFEST = "manifest.age"
CHUNKS = "chunks"


def _digest_key(key: bytes) -> bytes:
    return hmac.new(key, b"dsdw sealed chunk names", hashlib.sha256).digest()


def _chunk_names(plain: Path, key: bytes, chunk: int) -> list[str]:
    """The chunks' names: HMAC-SHA256 of each chunk, 128 bits in hex (hashlib releases the GIL: two threads)."""
    size = plain.stat().st_size
    dkey = _digest_key(key)
    fd = os.open(plain, os.O_RDONLY)
    try:
        def name(i: int) -> str:
            return hmac.new(dkey, os.pread(fd, chunk, i * chunk), hashlib.sha256).hexdigest()[:32]

        with ThreadPoolExecutor(2) as ex:
            return list(ex.map(name, range(-(-size // chunk))))
    finally:
        os.close(fd)


def read_manifest(sealed: Path, key: bytes) -> tuple[int, int, list[str]]:
    """``(size, chunk size, chunk names)`` of the database sealed in the directory ``sealed``."""
    ident = pyrage.x25519.Identity.from_str(age_identity(key))
    try:
        text = pyrage.decrypt((sealed / MANIFEST).read_bytes(), [ident]).decode("ascii")
        head, size, chunk, *names = text.splitlines()
        if head != FORMAT or not size.startswith("size ") or not chunk.startswith("chunk_size "):
            raise ValueError(f"not a {FORMAT!r} manifest")
        return int(size.split()[1]), int(chunk.split()[1]), names
    except (pyrage.DecryptError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise SealError(f"{sealed / MANIFEST}: cannot be opened with the current restricted key (sealed with "
                        f"another key, damaged or truncated): {exc}") from None


def seal_chunks(plain: Path, sealed: Path, key: bytes, chunk: int = CHUNK) -> dict[str, int]:
    """Seal the file ``plain`` into the directory ``sealed``, writing only the chunks not sealed already.

    Returns ``{"chunks": n, "written": new chunk files, "bytes_written": their plaintext bytes}``."""
    recipient = pyrage.x25519.Identity.from_str(age_identity(key)).to_public()
    chunks = sealed / CHUNKS
    chunks.mkdir(parents=True, exist_ok=True)
    names = _chunk_names(plain, key, chunk)
    present = {p.name for p in chunks.iterdir()}
    written = nbytes = 0
    with open(plain, "rb") as fh:
        for i, n in enumerate(names):
            if f"{n}.age" in present:
                continue
            fh.seek(i * chunk)
            data = fh.read(chunk)
            tmp = chunks / f".{n}.tmp"
            with open(tmp, "wb") as out:
                out.write(pyrage.encrypt(data, [recipient]))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, chunks / f"{n}.age")
            present.add(f"{n}.age")
            written += 1
            nbytes += len(data)
    fsync_dir(chunks)
    text = "\n".join([FORMAT, f"size {plain.stat().st_size}", f"chunk_size {chunk}", *names]) + "\n"
    tmp = sealed / (MANIFEST + ".tmp")
    with open(tmp, "wb") as out:
        out.write(pyrage.encrypt(text.encode("ascii"), [recipient]))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, sealed / MANIFEST)
    fsync_dir(sealed)
    keep = {f"{n}.age" for n in names}
    for p in chunks.iterdir():  # chunks of the previous seal no longer listed, and a crashed seal's leftovers
        if p.name not in keep:
            p.unlink(missing_ok=True)
    return {"chunks": len(names), "written": written, "bytes_written": nbytes}


def unseal_chunks(sealed: Path, plain: Path, key: bytes) -> None:
    """Decrypt the database sealed in the directory ``sealed`` into ``plain``; :class:`SealError` on any damage,
    a missing, swapped or foreign chunk or another key (no partial plaintext is left).

    Each chunk's keyed digest is checked against its name (a renamed or swapped chunk file is itself a valid age
    file); the digests are computed on a second thread while the next chunk is decrypted."""
    size, _chunk, names = read_manifest(sealed, key)
    ident = pyrage.x25519.Identity.from_str(age_identity(key))
    dkey = _digest_key(key)

    def digest(data: bytes) -> str:
        return hmac.new(dkey, data, hashlib.sha256).hexdigest()[:32]

    try:
        with open(plain, "wb") as out, ThreadPoolExecutor(1) as ex:
            checks = []
            for n in names:
                data = pyrage.decrypt((sealed / CHUNKS / f"{n}.age").read_bytes(), [ident])
                out.write(data)
                checks.append((n, ex.submit(digest, data)))
            bad = [n for n, f in checks if f.result() != n]
            if bad:
                raise SealError(f"{sealed}: {len(bad)} chunk file(s) do not hold the content the manifest names "
                                f"(renamed, swapped or replaced), e.g. {bad[0]}")
            if out.tell() != size:
                raise SealError(f"{sealed}: the chunks hold {out.tell()} bytes, the manifest says {size}")
    except (pyrage.DecryptError, OSError) as exc:
        Path(plain).unlink(missing_ok=True)
        raise SealError(f"{sealed}: cannot be opened with the current restricted key (sealed with another key, "
                        f"damaged or truncated): {exc}") from None
    except SealError:
        Path(plain).unlink(missing_ok=True)
        raise
