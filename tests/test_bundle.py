"""A bundle's files: signing keys and the removal of killed writers' leftovers
(:mod:`dpgenome.bundle`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dpgenome.bundle import load_signing_key
from dpgenome.errors import InputError


def test_load_signing_key__rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_text("not a key")
    with pytest.raises(InputError, match=re.escape("k.pem")):
        load_signing_key(path)


def test_load_keys__unreadable_or_wrong_kind(tmp_path: Path) -> None:
    """Each loader names the key and the file: a missing file, a PEM of the other kind."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dpgenome.bundle import load_public_key, public_pem

    missing = tmp_path / "absent.pem"
    with pytest.raises(InputError, match="cannot read the signing key") as err:
        load_signing_key(missing)
    assert "absent.pem" in str(err.value)
    with pytest.raises(InputError, match="cannot read the public key"):
        load_public_key(missing)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "key.pem").write_bytes(pem)
    (tmp_path / "key.pub").write_text(public_pem(private.public_key()))
    assert load_signing_key(tmp_path / "key.pem").public_key() == private.public_key()
    assert load_public_key(tmp_path / "key.pub") == private.public_key()
    with pytest.raises(InputError, match="not a PEM public key"):
        load_public_key(tmp_path / "key.pem")  # a private key where the public one goes


def test_load_keys__another_algorithm_or_an_encrypted_key(tmp_path: Path) -> None:
    """An EC key where Ed25519 is expected, and a password-protected signing key, are named
    with their file before any work (a release checks --signing-key before its ingest)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from dpgenome.bundle import load_public_key

    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ec.pem").write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "ec.pub").write_bytes(
        other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    ec_named = r"must be Ed25519, not EC \(secp256r1\)"
    with pytest.raises(InputError, match=f"signing key {ec_named}") as err:
        load_signing_key(tmp_path / "ec.pem")
    assert err.value.file == str(tmp_path / "ec.pem")
    with pytest.raises(InputError, match=f"public key {ec_named}") as err:
        load_public_key(tmp_path / "ec.pub")
    assert err.value.file == str(tmp_path / "ec.pub")
    (tmp_path / "locked.pem").write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(InputError, match="not an unencrypted PEM private key") as err:
        load_signing_key(tmp_path / "locked.pem")
    assert err.value.file == str(tmp_path / "locked.pem")


def test_remove_dead_writers__only_what_killed_processes_left(tmp_path: Path) -> None:
    """A killed run's cache copies (``KEY.tmp-PID``, ``synthetic.tmp-PID`` and its
    ``.formats.json``) stayed forever; a running writer's, and a name without an id, stay."""
    from dpgenome.bundle import remove_dead_writers

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = os.getpid()
    for name in (f"k.tmp-{dead.pid}", f"k.tmp-{live}", "k.tmp-x"):
        (tmp_path / name).mkdir()
    (tmp_path / f"synthetic.tmp-{dead.pid}.formats.json").write_text("[]")
    remove_dead_writers(tmp_path, "k.tmp-*", ".tmp-")
    remove_dead_writers(tmp_path, "synthetic.tmp-*", ".tmp-")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"k.tmp-{live}", "k.tmp-x"])
