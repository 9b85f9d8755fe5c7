"""Encryption at rest of CPR-bearing deliveries: age (age-encryption.org/v1), one X25519 key pair per recipient.

A delivery file is an ordinary age file encrypted to the recipient's age
recipient (``age1...``), so the recipient opens it with the standard ``age``
tool (``age -d -i <identity file> file.csv.enc``) or any other age
implementation; dsdw itself cannot read a delivery back once the plaintext has
left memory.  pyrage (the Rust ``age`` crate) does the encryption: no
dsdw-specific format.

Key files live under ``<DSDW_KEY_DIR>/recipients/`` in age's own formats:
``<id>.pub`` holds the recipient (``age1...``; in production handed to us by the
recipient); ``<id>.key`` is its identity file (``AGE-SECRET-KEY-1...``), which
exists here only for the demo and the tests (``dsdw deliveries decrypt``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyrage

from pipelines.warehouse.keys import key_dir

MAGIC = b"age-encryption.org/v1\n"
ALGORITHM = "age v1 (X25519 recipient, ChaCha20-Poly1305 STREAM, 64 KiB chunks)"


class DeliveryCryptoError(RuntimeError):
    """A key is missing or a ciphertext is damaged, truncated or for another key."""


def recipient_key_dir() -> Path:
    return key_dir() / "recipients"


def public_key_id(pub: str) -> str:
    """Non-secret fingerprint of a recipient (recorded in the manifest)."""
    return hashlib.sha256(b"dsdw-recipient-key:" + pub.encode("ascii")).hexdigest()[:16]


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def ensure_recipient_keypair(key_name: str) -> Path:
    """Create a demo age key pair for ``key_name`` unless its recipient file exists; returns the .pub path.

    Production does not call this: the recipient generates its key pair (``age-keygen``) and
    hands over the recipient line only.  A demo pair in an older format is replaced.
    """
    d = recipient_key_dir()
    pub_path, priv_path = d / f"{key_name}.pub", d / f"{key_name}.key"
    if pub_path.exists() and pub_path.read_text(encoding="ascii", errors="replace").strip().startswith("age1"):
        return pub_path
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    ident = pyrage.x25519.Identity.generate()
    recipient = str(ident.to_public())
    _write_private(priv_path, f"# dsdw demo identity of recipient {key_name}\n# public key: {recipient}\n{ident}\n")
    tmp = pub_path.with_suffix(".pub.tmp")
    tmp.write_text(recipient + "\n", encoding="ascii")
    os.replace(tmp, pub_path)
    return pub_path


def _lines(path: Path, what: str) -> list[str]:
    if not path.exists():
        raise DeliveryCryptoError(f"no {what} at {path}" + (
            ": install the recipient's age public key (age1...) there (for the demo: `dsdw deliver` creates a pair)"
            if what.startswith("public") else ""))
    return [ln.strip() for ln in path.read_text(encoding="ascii", errors="replace").splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")]


def _load(key_name: str, suffix: str, what: str, parse, errors: tuple[type[Exception], ...], form: str) -> str:
    path = recipient_key_dir() / f"{key_name}{suffix}"
    lines = _lines(path, f"{what} of recipient {key_name!r}")
    try:
        return str(parse(lines[0]))
    except (IndexError, ValueError, *errors) as exc:
        raise DeliveryCryptoError(f"{what} of recipient {key_name!r} at {path} is not an age X25519 {form}: "
                                  f"{exc}") from None


def load_public_key(key_name: str) -> str:
    """The recipient's age recipient string (``age1...``), validated."""
    return _load(key_name, ".pub", "public key", pyrage.x25519.Recipient.from_str, (pyrage.RecipientError,),
                 "recipient (age1...)")


def load_private_key(key_name: str) -> str:
    """The recipient's age identity (``AGE-SECRET-KEY-1...``), validated (demo and tests only)."""
    return _load(key_name, ".key", "private key", pyrage.x25519.Identity.from_str, (pyrage.IdentityError,),
                 "identity")


def encrypt(plaintext: bytes, recipient_public: str) -> bytes:
    """Encrypt ``plaintext`` to one age recipient (fresh file key and nonces each call)."""
    try:
        return pyrage.encrypt(plaintext, [pyrage.x25519.Recipient.from_str(recipient_public)])
    except (pyrage.RecipientError, pyrage.EncryptError) as exc:
        raise DeliveryCryptoError(f"cannot encrypt to {recipient_public!r}: {exc}") from None


def decrypt(blob: bytes, *identities: str) -> bytes:
    """Decrypt with any of the given age identities; raises :class:`DeliveryCryptoError` on any mismatch."""
    if not blob.startswith(MAGIC):
        raise DeliveryCryptoError("not an age file (age-encryption.org/v1)")
    try:
        return pyrage.decrypt(blob, [pyrage.x25519.Identity.from_str(i) for i in identities])
    except pyrage.DecryptError as exc:
        raise DeliveryCryptoError(f"cannot decrypt (damaged, truncated or encrypted for another key): {exc}"
                                  ) from None
