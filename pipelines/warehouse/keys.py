"""Secret keys of the restricted zone: the pseudonym key and the at-rest key.

Keys never live in the repository.  Each key is read from an environment
variable (hex) or, failing that, from a key file in the key directory
(``DSDW_KEY_DIR``, default ``~/.config/dsdw/keys``), created with mode 0600 by
``make demo`` / :func:`ensure_key`.  Rotating a key is documented in
docs/warehouse.md (the pseudonym key changes every ``person_key``, so it is a
full rebuild with a new key version).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_BYTES = 32
# name -> environment variable that may carry the key as hex
KEY_ENV = {
    "pseudonym": "DSDW_PSEUDONYM_KEY",
    "restricted": "DSDW_RESTRICTED_KEY",
}


class KeyError_(RuntimeError):
    """A key is missing or malformed; the message says where it was looked for."""


def key_dir() -> Path:
    return Path(os.environ.get("DSDW_KEY_DIR") or Path.home() / ".config" / "dsdw" / "keys")


def key_path(name: str) -> Path:
    return key_dir() / f"{name}.key"


def ensure_key(name: str) -> Path:
    """Create the named key file (0600) if neither env var nor file provides it."""
    env = KEY_ENV.get(name)
    if env and os.environ.get(env):
        return key_path(name)
    path = key_path(name)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(KEY_BYTES) + "\n")
    return path


def load_key(name: str) -> bytes:
    """The key's 32 bytes, from ``DSDW_<NAME>_KEY`` or the key file."""
    env = KEY_ENV.get(name, f"DSDW_{name.upper()}_KEY")
    text = os.environ.get(env)
    where = f"environment variable {env}"
    if not text:
        path = key_path(name)
        where = f"key file {path}"
        if not path.exists():
            raise KeyError_(f"no {name} key: set {env} (64 hex characters) or create {path} "
                            f"(`dsdw keys init` does)")
        text = path.read_text(encoding="ascii")
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise KeyError_(f"{name} key in {where} is not hex") from None
    if len(key) != KEY_BYTES:
        raise KeyError_(f"{name} key in {where} has {len(key)} bytes, expected {KEY_BYTES}")
    return key


def key_id(key: bytes) -> str:
    """A non-secret fingerprint recorded with every build, so a rotation is visible."""
    return hashlib.sha256(b"dsdw-key-id:" + key).hexdigest()[:16]


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256 inner and outer pads, so DuckDB can compute the HMAC in SQL."""
    block = key.ljust(64, b"\0") if len(key) <= 64 else hashlib.sha256(key).digest().ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def person_key(cpr: str, key: bytes) -> str:
    """The analysts' pseudonym of a CPR number: HMAC-SHA256(key, cpr), hex."""
    return hmac.new(key, cpr.encode("ascii"), hashlib.sha256).hexdigest()


# DuckDB macro computing the same HMAC; the pads are passed as query parameters and
# never written into the database.
HMAC_MACRO_SQL = "CREATE OR REPLACE TEMP MACRO dsdw_hmac(m, ipad, opad) AS sha256(opad || unhex(sha256(ipad || encode(m))))"
