"""Files sealed at rest with age (the restricted database).

DuckDB's own database encryption needs its OpenSSL crypto module (shipped in the
httpfs extension); without it DuckDB refuses to write encrypted files except
through a setting its developers mark unsafe.  The extension cannot be installed
on machines without access to DuckDB's extension repository, so the restricted
DuckDB file is sealed as a whole as an ordinary age file (pyrage, streamed from
file to file): it exists in plaintext only in a private directory in memory
(``/dev/shm``) while a build holds it open, and an operator can open a sealed copy
with the standard ``age`` tool and the identity :func:`age_identity` derives
from the restricted key.

The restricted key (32 bytes, :mod:`.keys`) *is* the X25519 scalar of an age
identity; the identity is its Bech32 form ``AGE-SECRET-KEY-1...``.  age
authenticates every 64 KiB chunk and the end of the stream, so a damaged,
truncated or reordered file fails to open.
"""

from __future__ import annotations

import os
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
