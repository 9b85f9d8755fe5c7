"""Files sealed at rest with AES-256-GCM (the restricted database).

DuckDB's own database encryption needs its OpenSSL crypto module (shipped in the
httpfs extension); without it DuckDB refuses to write encrypted files except
through a setting its developers mark unsafe (non-cryptographic nonces).  The
extension cannot be installed on machines without access to DuckDB's extension
repository, so the restricted DuckDB file is sealed as a whole with
``cryptography``'s AES-GCM instead: it exists in plaintext only in a private
directory in memory (``/dev/shm``) while a build holds it open.

Format: ``MAGIC | key id (16 ascii) | chunk*``; each chunk is
``nonce(12) | len(4, big endian) | ciphertext+tag`` over at most 4 MiB, with the
header, chunk number and a last-chunk flag as associated data, so chunks cannot
be reordered, dropped or truncated without the tag failing.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipelines.fsio import fsync_dir
from pipelines.warehouse.keys import key_id

MAGIC = b"DSDWSEAL1\n"
CHUNK = 4 * 1024 * 1024


class SealError(RuntimeError):
    """A sealed file is damaged, truncated or sealed with another key."""


def seal_file(src: Path, dst: Path, key: bytes) -> None:
    """Encrypt ``src`` into ``dst`` (written to a temp file, fsynced, renamed)."""
    aead = AESGCM(key)
    header = MAGIC + key_id(key).encode("ascii")
    tmp = dst.with_name(dst.name + ".tmp")
    size = src.stat().st_size
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        fout.write(header)
        n = 0
        done = 0
        while True:
            block = fin.read(CHUNK)
            done += len(block)
            last = done >= size
            nonce = os.urandom(12)
            ct = aead.encrypt(nonce, block, header + struct.pack(">Q?", n, last))
            fout.write(nonce + struct.pack(">I", len(ct)) + ct)
            n += 1
            if last:
                break
        fout.flush()
        os.fsync(fout.fileno())
    os.replace(tmp, dst)
    fsync_dir(dst.parent)


def unseal_file(src: Path, dst: Path, key: bytes) -> None:
    """Decrypt ``src`` into ``dst``; raises :class:`SealError` naming the file on any damage."""
    aead = AESGCM(key)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        header = fin.read(len(MAGIC) + 16)
        if not header.startswith(MAGIC):
            raise SealError(f"{src}: not a dsdw sealed file")
        if header[len(MAGIC):].decode("ascii", "replace") != key_id(key):
            raise SealError(f"{src}: sealed with another key (key id {header[len(MAGIC):].decode('ascii', 'replace')}, "
                            f"current key id {key_id(key)})")
        n = 0
        while True:
            head = fin.read(16)
            if len(head) < 16:
                raise SealError(f"{src}: truncated at chunk {n}")
            nonce, (length,) = head[:12], struct.unpack(">I", head[12:])
            ct = fin.read(length)
            if len(ct) != length:
                raise SealError(f"{src}: truncated in chunk {n}")
            last = fin.peek(1) == b"" if hasattr(fin, "peek") else False
            try:
                block = aead.decrypt(nonce, ct, header + struct.pack(">Q?", n, last))
            except Exception:
                raise SealError(f"{src}: chunk {n} fails authentication (damaged or reordered)") from None
            fout.write(block)
            n += 1
            if last:
                break
