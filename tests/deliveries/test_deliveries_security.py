"""Encryption to the recipient's key and the tamper-evident audit log."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from pipelines.deliveries import audit, crypto
from pipelines.deliveries import decrypt as decrypt_file


@pytest.fixture
def keydir(tmp_path, monkeypatch):
    monkeypatch.setenv("DSDW_KEY_DIR", str(tmp_path / "keys"))
    return tmp_path / "keys"


CHUNK = 64 * 1024  # age's STREAM chunk
HEADER_END = b"\n--- "


def _payload_start(blob: bytes) -> int:
    """Offset of the first STREAM chunk: after the header's MAC line and the 16-byte payload nonce."""
    return blob.index(b"\n", blob.index(HEADER_END) + 1) + 1 + 16


def test_round_trip_with_the_recipients_key_and_not_with_another(keydir):
    crypto.ensure_recipient_keypair("dst")
    crypto.ensure_recipient_keypair("fff")
    data = os.urandom(3 * CHUNK + 123)  # several chunks
    blob = crypto.encrypt(data, crypto.load_public_key("dst"))
    assert blob.startswith(crypto.MAGIC)
    assert data not in blob and data[:64] not in blob
    assert crypto.decrypt(blob, crypto.load_private_key("dst")) == data
    with pytest.raises(crypto.DeliveryCryptoError, match="another key"):
        crypto.decrypt(blob, crypto.load_private_key("fff"))
    # with the header's recipient stanza swapped for one made for fff, the header MAC fails
    other = crypto.encrypt(data, crypto.load_public_key("fff"))
    forged = other[:other.index(HEADER_END)] + blob[blob.index(HEADER_END):]
    with pytest.raises(crypto.DeliveryCryptoError):
        crypto.decrypt(forged, crypto.load_private_key("fff"))


def test_a_recipient_opens_a_delivery_with_the_standard_age_tool(keydir, tmp_path):
    """The delivery is a plain age file: Go's reference implementation (Debian's ``age``) opens it."""
    age = shutil.which("age")
    assert age, "the age command line tool is a test dependency (`make sysdeps` installs Debian's age)"
    crypto.ensure_recipient_keypair("dst")
    data = "cpr;navn\n0101801234;Søren Æblegård\n".encode() * 5000
    enc = tmp_path / "d.csv.enc"
    enc.write_bytes(crypto.encrypt(data, crypto.load_public_key("dst")))
    out = subprocess.run([age, "--decrypt", "-i", str(crypto.recipient_key_dir() / "dst.key"), str(enc)],
                         capture_output=True, check=True)
    assert out.stdout == data
    # and what the standard tool encrypts to the recipient, dsdw's reader opens
    plain = tmp_path / "p.txt"
    plain.write_bytes(b"from age\n")
    enc2 = subprocess.run([age, "-r", crypto.load_public_key("dst"), str(plain)], capture_output=True, check=True)
    assert crypto.decrypt(enc2.stdout, crypto.load_private_key("dst")) == b"from age\n"


def test_ciphertext_is_fresh_per_run_and_small_inputs_work(keydir):
    crypto.ensure_recipient_keypair("uvm")
    pub = crypto.load_public_key("uvm")
    a, b = crypto.encrypt(b"cpr;x\n", pub), crypto.encrypt(b"cpr;x\n", pub)
    assert a != b
    assert crypto.decrypt(a, crypto.load_private_key("uvm")) == crypto.decrypt(b, crypto.load_private_key("uvm"))
    assert crypto.decrypt(crypto.encrypt(b"", pub), crypto.load_private_key("uvm")) == b""


@pytest.mark.parametrize("damage", ["flip", "truncate", "drop_chunk", "swap_chunks", "not_age"])
def test_damaged_ciphertext_is_refused(keydir, damage):
    crypto.ensure_recipient_keypair("dst")
    data = os.urandom(3 * CHUNK + 10)
    blob = bytearray(crypto.encrypt(data, crypto.load_public_key("dst")))
    h = _payload_start(bytes(blob))
    chunk_len = CHUNK + 16
    if damage == "flip":
        blob[h + 100] ^= 1
    elif damage == "truncate":
        blob = blob[:-5]
    elif damage == "drop_chunk":
        blob = blob[:h + chunk_len] + blob[h + 2 * chunk_len:]
    elif damage == "swap_chunks":
        c1, c2 = blob[h:h + chunk_len], blob[h + chunk_len:h + 2 * chunk_len]
        blob = blob[:h] + c2 + c1 + blob[h + 2 * chunk_len:]
    else:
        blob = bytearray(b"DSDWDLV1" + bytes(blob[8:]))
    with pytest.raises(crypto.DeliveryCryptoError):
        crypto.decrypt(bytes(blob), crypto.load_private_key("dst"))


def test_key_files_private_mode_and_missing_key_message(keydir):
    crypto.ensure_recipient_keypair("atp_skat")
    priv = crypto.recipient_key_dir() / "atp_skat.key"
    assert priv.stat().st_mode & 0o777 == 0o600
    pub_before = crypto.load_public_key("atp_skat")
    assert pub_before.startswith("age1")
    assert "AGE-SECRET-KEY-1" in priv.read_text()
    crypto.ensure_recipient_keypair("atp_skat")  # never replaces an installed public key
    assert crypto.load_public_key("atp_skat") == pub_before
    with pytest.raises(crypto.DeliveryCryptoError, match="install the recipient's age public key"):
        crypto.load_public_key("nobody")
    (crypto.recipient_key_dir() / "hex.pub").write_text("ab" * 32 + "\n")
    with pytest.raises(crypto.DeliveryCryptoError, match="not an age X25519 recipient"):
        crypto.load_public_key("hex")


def test_decrypt_finds_the_partys_key(keydir, tmp_path):
    crypto.ensure_recipient_keypair("uddannelse_kommuner-101")
    crypto.ensure_recipient_keypair("uddannelse_kommuner-147")
    f = tmp_path / "u.parquet.enc"
    f.write_bytes(crypto.encrypt(b"hello 147", crypto.load_public_key("uddannelse_kommuner-147")))
    assert decrypt_file(f, "uddannelse_kommuner") == b"hello 147"
    with pytest.raises(crypto.DeliveryCryptoError):
        decrypt_file(f, "uddannelse_kommuner-101")


def _log(root, n=3):
    for i in range(n):
        audit.append(root, {"modtager": "fff", "periode": "2026-10", "levering": "full", "load_id": f"L{i}",
                            "indlaest_dato": f"2026-10-0{i + 1}", "raekker": i,
                            "filer": [{"sti": "x.parquet.enc", "sha256": f"{i:064d}"}]})


def test_audit_chain_verifies_and_lists(tmp_path):
    _log(tmp_path)
    entries = audit.list_deliveries(tmp_path)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev_sha256"] == audit.GENESIS
    assert entries[1]["prev_sha256"] == entries[0]["sha256"] == audit.entry_hash(entries[0])
    assert audit.verify_audit(tmp_path).ok and audit.verify_audit(tmp_path).entries == 3


def _lines(root):
    return audit.audit_path(root).read_text(encoding="utf-8").splitlines()


def _write(root, lines):
    audit.audit_path(root).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_edited_entry_is_detected(tmp_path):
    _log(tmp_path)
    lines = _lines(tmp_path)
    e = json.loads(lines[1])
    e["raekker"] = 999
    lines[1] = json.dumps(e, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    _write(tmp_path, lines)
    v = audit.verify_audit(tmp_path)
    assert not v.ok and any("line 2" in p and "edited" in p for p in v.problems)


def test_rehashed_edit_breaks_the_next_link(tmp_path):
    _log(tmp_path)
    lines = _lines(tmp_path)
    e = json.loads(lines[0])
    e["modtager"] = "dst"
    e["sha256"] = audit.entry_hash(e)  # a careful forger recomputes the entry's own hash
    lines[0] = json.dumps(e, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    _write(tmp_path, lines)
    v = audit.verify_audit(tmp_path)
    assert not v.ok and any("line 2" in p and "prev_sha256" in p for p in v.problems)


@pytest.mark.parametrize("change", ["delete_middle", "reorder", "cut_tail", "drop_head"])
def test_removed_reordered_or_cut_entries_are_detected(tmp_path, change):
    _log(tmp_path, 4)
    lines = _lines(tmp_path)
    if change == "delete_middle":
        del lines[1]
        _write(tmp_path, lines)
    elif change == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
        _write(tmp_path, lines)
    elif change == "cut_tail":
        _write(tmp_path, lines[:-1])
    else:
        audit.head_path(tmp_path).unlink()
    v = audit.verify_audit(tmp_path)
    assert not v.ok, change
    if change == "cut_tail":
        assert any("audit.head" in p for p in v.problems)


def test_append_after_verification_continues_the_chain(tmp_path):
    _log(tmp_path, 2)
    _log(tmp_path, 1)
    assert [e["seq"] for e in audit.list_deliveries(tmp_path)] == [1, 2, 3]
    assert audit.verify_audit(tmp_path).ok
