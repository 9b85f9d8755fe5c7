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
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyrage
from bech32 import bech32_encode, convertbits

from pipelines.fsio import atomic_write, fsync_dir

MAGIC = b"age-encryption.org/v1\n"


class SealError(RuntimeError):
    """A sealed file is damaged, truncated or sealed with another key."""


def _unopenable(what: Path, exc: Exception) -> SealError:
    return SealError(f"{what}: cannot be opened with the current restricted key (sealed with another key, "
                     f"damaged or truncated): {exc}")


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
        raise _unopenable(src, exc) from None


# ---------------------------------------------------------------- sealed in chunks (the restricted database)
#
# Why chunks: the restricted database grows with the years of health facts it keeps, and a night changes a few of
# its DuckDB blocks. Sealed as one age file it was encrypted and written whole every night (3.0 s at 5 years of
# national history against 0.7 s at 1 year, bench/results/warehouse_national_s15.json). Sealed as a directory of
# age files, one per CHUNK bytes of the database, a night writes only the chunks whose content changed: a chunk's
# file is named by a keyed digest of its plaintext (HMAC-SHA256 under a key derived from the restricted key, so a
# name says nothing about the content without the key), so an unchanged chunk keeps its file.
#
# ``manifest.age`` (age too) lists the chunks in order after a three-line header, each as its name and the MAC of
# its age header, and ends with an HMAC of those lines under another key derived from the restricted key. The age
# header's MAC is keyed by the file's own random file key, so it names one age file: a renamed, swapped or
# substituted chunk file fails the unseal without hashing the plaintext again, and the manifest itself cannot be
# forged with the public recipient alone (which a single age file could be). It is replaced last and atomically,
# so a crash leaves the previous night's set whole (orphan chunk files are removed by the next seal). An operator
# opens a copy with the standard tool, in the sealed directory:
#
#     age -d -i identity.txt manifest.age | sed '1,3d;$d' | while read c m; do age -d -i identity.txt "chunks/$c.age"; done
#
FORMAT = "dsdw-sealed-chunks 2"
CHUNK = 4 * 2**20
MANIFEST = "manifest.age"
CHUNKS = "chunks"


def _derived(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"dsdw sealed " + purpose, hashlib.sha256).digest()


def _chunk_names(plain: Path, key: bytes, chunk: int) -> list[str]:
    """The chunks' names: HMAC-SHA256 of each chunk, 128 bits in hex (hashlib releases the GIL: two threads)."""
    size = plain.stat().st_size
    dkey = _derived(key, b"chunk names")
    fd = os.open(plain, os.O_RDONLY)
    try:
        def name(i: int) -> str:
            return hmac.new(dkey, os.pread(fd, chunk, i * chunk), hashlib.sha256).hexdigest()[:32]

        with ThreadPoolExecutor(2) as ex:
            return list(ex.map(name, range(-(-size // chunk))))
    finally:
        os.close(fd)


def _header_mac(sealed_bytes: bytes) -> str:
    """The MAC of an age file's header (the ``---`` line): keyed by the file's random file key, so one file's."""
    i = sealed_bytes.find(b"\n--- ")
    j = sealed_bytes.find(b"\n", i + 5) if i >= 0 else -1
    if i < 0 or j < 0:
        raise SealError("not an age file (no header MAC)")
    return sealed_bytes[i + 5:j].decode("ascii")


def _manifest_text(size: int, chunk: int, entries: list[tuple[str, str]], key: bytes) -> str:
    lines = [FORMAT, f"size {size}", f"chunk_size {chunk}", *(f"{n} {m}" for n, m in entries)]
    body = "\n".join(lines) + "\n"
    return body + "mac " + hmac.new(_derived(key, b"manifest"), body.encode("ascii"), hashlib.sha256).hexdigest() + "\n"


def read_manifest(sealed: Path, key: bytes) -> tuple[int, int, list[tuple[str, str]]]:
    """``(size, chunk size, [(chunk name, its age header MAC)])`` of the database sealed in the directory
    ``sealed``; :class:`SealError` when it does not open with ``key`` or its MAC does not hold."""
    ident = pyrage.x25519.Identity.from_str(age_identity(key))
    try:
        text = pyrage.decrypt((sealed / MANIFEST).read_bytes(), [ident]).decode("ascii")
        head, size, chunk, *entries, _mac = text.splitlines()
        if head != FORMAT or not size.startswith("size ") or not chunk.startswith("chunk_size "):
            raise ValueError(f"not a {FORMAT!r} manifest")
        pairs: list[tuple[str, str]] = []
        for e in entries:
            name, mac = e.split(" ")  # ValueError unless '<name> <mac>'
            pairs.append((name, mac))
        size_n, chunk_n = int(size.split()[1]), int(chunk.split()[1])
    except (pyrage.DecryptError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise _unopenable(sealed / MANIFEST, exc) from None
    if not hmac.compare_digest(text.encode("ascii"), _manifest_text(size_n, chunk_n, pairs, key).encode("ascii")):
        raise SealError(f"{sealed / MANIFEST}: its MAC does not hold (not written with the restricted key)")
    return size_n, chunk_n, pairs


def seal_chunks(plain: Path, sealed: Path, key: bytes, chunk: int = CHUNK) -> dict[str, int]:
    """Seal the file ``plain`` into the directory ``sealed``, writing only the chunks not sealed already.

    Returns ``{"chunks": n, "written": new chunk files, "bytes_written": their plaintext bytes}``."""
    recipient = pyrage.x25519.Identity.from_str(age_identity(key)).to_public()
    chunks = sealed / CHUNKS
    chunks.mkdir(parents=True, exist_ok=True)
    names = _chunk_names(plain, key, chunk)
    present = {p.name for p in chunks.iterdir()}
    macs: dict[str, str] = {}
    written = nbytes = 0
    with open(plain, "rb") as fh:
        for i, n in enumerate(names):
            if n in macs:
                continue
            target = chunks / f"{n}.age"
            if f"{n}.age" in present:
                with open(target, "rb") as old:
                    macs[n] = _header_mac(old.read(1024))
                continue
            fh.seek(i * chunk)
            data = fh.read(chunk)
            enc = pyrage.encrypt(data, [recipient])
            atomic_write(target, enc)
            macs[n] = _header_mac(enc[:1024])
            written += 1
            nbytes += len(data)
    text = _manifest_text(plain.stat().st_size, chunk, [(n, macs[n]) for n in names], key)
    atomic_write(sealed / MANIFEST, pyrage.encrypt(text.encode("ascii"), [recipient]))
    keep = {f"{n}.age" for n in names}
    for p in chunks.iterdir():  # chunks of the previous seal no longer listed, and a crashed seal's leftovers
        if p.name not in keep:
            p.unlink(missing_ok=True)
    return {"chunks": len(names), "written": written, "bytes_written": nbytes}


# The unseal decrypts every chunk each night (the plaintext exists only while a build holds it open), and pyrage
# holds the GIL while it decrypts (two threads were no faster than one), so from PARALLEL_MIN chunks on the chunks
# are decrypted by worker processes (``python -m pipelines.warehouse.sealed``, one per core, at most
# MAX_WORKERS), each writing its share at the chunks' offsets. The identity reaches them on a pipe, never in their
# arguments or environment.
PARALLEL_MIN = 32
MAX_WORKERS = 4
# a worker's exit status for a refusal (SealError) and for a chunk that does not decrypt or read
_SEAL_ERROR, _DECRYPT_ERROR = 3, 4


def unseal_workers(chunks: int) -> int:
    """How many processes decrypt ``chunks`` chunks: one below PARALLEL_MIN (a process costs more than it saves),
    else one per core this process may use, at most MAX_WORKERS."""
    if chunks < PARALLEL_MIN:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS, chunks))


def _decrypt_into(sealed: Path, plain: Path, identity: str, chunk: int, size: int,
                  entries: list[tuple[int, str, str]]) -> None:
    """Decrypt the chunks ``entries`` (index, name, header MAC) into ``plain`` at their offsets (``plain`` exists,
    ``size`` bytes long)."""
    ident = pyrage.x25519.Identity.from_str(identity)
    fd = os.open(plain, os.O_WRONLY)
    try:
        for i, n, mac in entries:
            enc = (sealed / CHUNKS / f"{n}.age").read_bytes()
            if _header_mac(enc[:1024]) != mac:
                raise SealError(f"{sealed}: chunk file {n}.age is not the one the manifest lists (renamed, "
                                "swapped or replaced)")
            data = memoryview(pyrage.decrypt(enc, [ident]))
            if len(data) != min(chunk, size - i * chunk):
                raise SealError(f"{sealed}: chunk {i} holds {len(data)} bytes, the manifest's size and chunk size "
                                f"say {min(chunk, size - i * chunk)}")
            at = i * chunk
            while data:
                k = os.pwrite(fd, data, at)
                data, at = data[k:], at + k
    finally:
        os.close(fd)


def _decrypt_in_workers(sealed: Path, plain: Path, identity: str, chunk: int, size: int,
                        entries: list[tuple[int, str, str]], workers: int) -> None:
    """:func:`_decrypt_into` split into ``workers`` contiguous shares, each in its own process; a worker's
    :class:`SealError` or decryption failure is raised here as the same error."""
    import pipelines

    env = dict(os.environ)  # the workers import this very package, wherever it was imported from
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(pipelines.__file__).resolve().parents[1]),
                                                      env.get("PYTHONPATH")]))
    procs = []
    try:
        for k in range(workers):
            share = entries[k * len(entries) // workers:(k + 1) * len(entries) // workers]
            p = subprocess.Popen([sys.executable, "-m", "pipelines.warehouse.sealed"], stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            procs.append(p)
            assert p.stdin is not None
            p.stdin.write(json.dumps({"sealed": str(sealed), "plain": str(plain), "identity": identity,
                                      "chunk": chunk, "size": size, "entries": share}).encode())
            p.stdin.close()
        done = []  # (exit status, stderr) of each worker, in the shares' order
        for p in procs:
            assert p.stderr is not None
            err = p.stderr.read().decode(errors="replace").strip()
            done.append((p.wait(), err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for rc, err in done:  # the earliest share's failure, as one process would have met it first
        if rc == _SEAL_ERROR:
            raise SealError(err)
        if rc == _DECRYPT_ERROR:
            raise _unopenable(sealed, RuntimeError(err))
        if rc:
            raise SealError(f"{sealed}: an unseal worker failed: {err[-2000:]}")


def _worker_main() -> int:
    """A decrypting worker (:func:`_decrypt_in_workers`): its share as JSON on stdin."""
    job = json.load(sys.stdin)
    try:
        _decrypt_into(Path(job["sealed"]), Path(job["plain"]), job["identity"], job["chunk"], job["size"],
                      [tuple(e) for e in job["entries"]])
    except SealError as exc:
        print(exc, file=sys.stderr)
        return _SEAL_ERROR
    except (pyrage.DecryptError, OSError) as exc:
        print(exc, file=sys.stderr)
        return _DECRYPT_ERROR
    return 0


def unseal_chunks(sealed: Path, plain: Path, key: bytes, workers: int | None = None) -> None:
    """Decrypt the database sealed in the directory ``sealed`` into ``plain``; :class:`SealError` on any damage,
    a missing, swapped or foreign chunk, a forged manifest or another key (no partial plaintext is left).
    ``workers``: decrypting processes (default :func:`unseal_workers`)."""
    size, chunk, entries = read_manifest(sealed, key)
    if chunk <= 0 or len(entries) != -(-size // chunk):
        raise SealError(f"{sealed}: the manifest lists {len(entries)} chunks for {size} bytes in chunks of {chunk}")
    identity = age_identity(key)
    indexed = [(i, n, m) for i, (n, m) in enumerate(entries)]
    workers = unseal_workers(len(entries)) if workers is None else workers
    try:
        with open(plain, "wb") as out:
            out.truncate(size)
        if workers <= 1:
            _decrypt_into(sealed, plain, identity, chunk, size, indexed)
        else:
            _decrypt_in_workers(sealed, plain, identity, chunk, size, indexed, workers)
    except (pyrage.DecryptError, OSError) as exc:
        Path(plain).unlink(missing_ok=True)
        raise _unopenable(sealed, exc) from None
    except SealError:
        Path(plain).unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    sys.exit(_worker_main())
