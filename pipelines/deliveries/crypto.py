"""Encryption at rest of CPR-bearing deliveries: one X25519 key pair per recipient.

A delivery file is encrypted to the recipient's public key, so only the
recipient's private key opens it; dsdw itself cannot read a delivery back
once the plaintext has left memory.  Construction (ECIES-style, as in age or
HPKE's base mode): an ephemeral X25519 key pair per file, the shared secret
through HKDF-SHA256 (salt = ephemeral public key || recipient public key) into
an AES-256-GCM key, and the plaintext in 1 MiB chunks ("STREAM": nonce =
random 8-byte prefix || chunk counter; the header, counter and a last-chunk
flag are associated data, so chunks cannot be reordered, dropped or truncated).

File format::

    MAGIC (8) | recipient key id (16 ascii) | ephemeral public key (32) | nonce prefix (8)
    chunk* = length (4, big endian) | ciphertext+tag

Key files (hex, one line) live under ``<DSDW_KEY_DIR>/recipients/``:
``<id>.pub`` is the recipient's public key (in production handed to us by
the recipient); ``<id>.key`` is its private key, which exists here only for
the demo and the tests (``dsdw deliveries decrypt``).
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pipelines.warehouse.keys import key_dir

MAGIC = b"DSDWDLV1"
CHUNK = 1024 * 1024
INFO = b"dsdw-delivery-v1 x25519-hkdf-sha256-aes256gcm"
ALGORITHM = "X25519 + HKDF-SHA256 + AES-256-GCM (STREAM, 1 MiB chunks)"
HEADER_LEN = len(MAGIC) + 16 + 32 + 8


class DeliveryCryptoError(RuntimeError):
    """A key is missing or a ciphertext is damaged, truncated or for another key."""


def recipient_key_dir() -> Path:
    return key_dir() / "recipients"


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_id(pub: bytes) -> str:
    """Non-secret fingerprint of a recipient public key (recorded in the manifest)."""
    return hashlib.sha256(b"dsdw-recipient-key:" + pub).hexdigest()[:16]


def ensure_recipient_keypair(key_name: str) -> Path:
    """Create a demo key pair for ``key_name`` unless its public key exists; returns the .pub path.

    Production does not call this: the recipient generates its key pair and
    hands over the public key only.
    """
    d = recipient_key_dir()
    pub_path, priv_path = d / f"{key_name}.pub", d / f"{key_name}.key"
    if pub_path.exists():
        return pub_path
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    priv = X25519PrivateKey.generate()
    raw_priv = priv.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                  serialization.NoEncryption())
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(raw_priv.hex() + "\n")
    tmp = pub_path.with_suffix(".pub.tmp")
    tmp.write_text(_raw(priv.public_key()).hex() + "\n", encoding="ascii")
    os.replace(tmp, pub_path)
    return pub_path


def _read_hex(path: Path, what: str) -> bytes:
    if not path.exists():
        raise DeliveryCryptoError(f"no {what} at {path}" + (
            ": install the recipient's public key there (for the demo: `dsdw deliver` creates a pair)"
            if what.startswith("public") else ""))
    try:
        raw = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except ValueError:
        raise DeliveryCryptoError(f"{what} at {path} is not hex") from None
    if len(raw) != 32:
        raise DeliveryCryptoError(f"{what} at {path} has {len(raw)} bytes, expected 32")
    return raw


def load_public_key(key_name: str) -> bytes:
    return _read_hex(recipient_key_dir() / f"{key_name}.pub", f"public key of recipient {key_name!r}")


def load_private_key(key_name: str) -> bytes:
    return _read_hex(recipient_key_dir() / f"{key_name}.key", f"private key of recipient {key_name!r}")


def _derive(shared: bytes, eph_pub: bytes, rcpt_pub: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_pub + rcpt_pub, info=INFO).derive(shared)


def encrypt(plaintext: bytes, recipient_public: bytes) -> bytes:
    """Encrypt ``plaintext`` to the recipient's X25519 public key (fresh ephemeral key and nonces)."""
    rcpt = X25519PublicKey.from_public_bytes(recipient_public)
    eph = X25519PrivateKey.generate()
    eph_pub = _raw(eph.public_key())
    aead = AESGCM(_derive(eph.exchange(rcpt), eph_pub, recipient_public))
    prefix = os.urandom(8)
    header = MAGIC + public_key_id(recipient_public).encode("ascii") + eph_pub + prefix
    out = [header]
    n_chunks = max(1, -(-len(plaintext) // CHUNK))
    for i in range(n_chunks):
        block = plaintext[i * CHUNK:(i + 1) * CHUNK]
        last = i == n_chunks - 1
        ct = aead.encrypt(prefix + struct.pack(">I", i), block, header + struct.pack(">I?", i, last))
        out.append(struct.pack(">I", len(ct)) + ct)
    return b"".join(out)


def decrypt(blob: bytes, recipient_private: bytes) -> bytes:
    """Decrypt with the recipient's private key; raises :class:`DeliveryCryptoError` on any mismatch."""
    if len(blob) < HEADER_LEN or not blob.startswith(MAGIC):
        raise DeliveryCryptoError("not a dsdw delivery ciphertext")
    priv = X25519PrivateKey.from_private_bytes(recipient_private)
    my_pub = _raw(priv.public_key())
    header = blob[:HEADER_LEN]
    kid = header[len(MAGIC):len(MAGIC) + 16].decode("ascii", "replace")
    if kid != public_key_id(my_pub):
        raise DeliveryCryptoError(f"encrypted for recipient key {kid}, this private key is {public_key_id(my_pub)}")
    eph_pub = header[len(MAGIC) + 16:len(MAGIC) + 48]
    prefix = header[len(MAGIC) + 48:]
    aead = AESGCM(_derive(priv.exchange(X25519PublicKey.from_public_bytes(eph_pub)), eph_pub, my_pub))
    pos, i, out = HEADER_LEN, 0, []
    while True:
        if pos + 4 > len(blob):
            raise DeliveryCryptoError(f"truncated before chunk {i}")
        (length,) = struct.unpack(">I", blob[pos:pos + 4])
        ct = blob[pos + 4:pos + 4 + length]
        if len(ct) != length:
            raise DeliveryCryptoError(f"truncated in chunk {i}")
        pos += 4 + length
        last = pos == len(blob)
        try:
            out.append(aead.decrypt(prefix + struct.pack(">I", i), ct, header + struct.pack(">I?", i, last)))
        except InvalidTag:
            raise DeliveryCryptoError(f"chunk {i} fails authentication (damaged, reordered, truncated or another key)"
                                      ) from None
        i += 1
        if last:
            return b"".join(out)
