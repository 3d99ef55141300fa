"""A release bundle's files: their names, hashing, strict JSON, signing keys, atomic writes.

Everything here is shared by the export (:mod:`dpgenome.export`), its verification
(:mod:`dpgenome.verify`) and the public copy (:mod:`dpgenome.publish`). A bundle is written
into a hidden staging directory beside its destination (:func:`staging_directory`), fsynced,
and renamed onto it in one ``rename(2)`` (:func:`move_into_place`); leftovers of killed
writers are removed by the next writer to the same place (:func:`remove_dead_writers`).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dpgenome.errors import ConfigError, InputError
from dpgenome.io.files import refuse_working_folder

log = logging.getLogger(__name__)

MANIFEST_SCHEMA_VERSION = 1
BUNDLE_FORMAT = "dpgenome-release-bundle"
#: a public copy's format and manifest name (:mod:`dpgenome.publish`), here so that a
#: destination inside one is known without importing it
PUBLIC_FORMAT = "dpgenome-public-release"
PUBLIC_MANIFEST = "public-manifest.json"
MANIFEST, SIGNATURE, RESULTS, DOSSIER, POLICY_COPY = (
    "manifest.json",
    "manifest.sig",
    "results.json",
    "dossier.html",
    "policy.yaml",
)
RESERVED = frozenset({MANIFEST, SIGNATURE, RESULTS, DOSSIER, POLICY_COPY})
_CHUNK = 1 << 20


# ---------------------------------------------------------------------------- keys


def _read_key(path: str | Path, what: str) -> tuple[Path, bytes]:
    path = Path(path)
    try:
        return path, path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read the {what}: {err.strerror}", file=path) from None


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key in PEM (``openssl genpkey -algorithm ed25519``)."""
    path, data = _read_key(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"not an unencrypted PEM private key ({err}); create one with "
            "`openssl genpkey -algorithm ed25519 -out key.pem`",
            file=path,
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"the signing key must be Ed25519, not {_algorithm(key)}", file=path)
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key in PEM (``openssl pkey -in key.pem -pubout``)."""
    path, data = _read_key(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as err:
        raise InputError(f"not a PEM public key ({err})", file=path) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"the public key must be Ed25519, not {_algorithm(key)}", file=path)
    return key


def _algorithm(key: object) -> str:
    """A key's algorithm as ``openssl`` names it: ``EC (secp256r1)``, ``RSA (2048 bits)``."""
    curve = getattr(key, "curve", None)
    if curve is not None:
        return f"EC ({curve.name})"
    size = getattr(key, "key_size", None)
    kind = type(key).__name__.removesuffix("PrivateKey").removesuffix("PublicKey")
    return f"{kind} ({size} bits)" if size else kind


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


# ---------------------------------------------------------------------------- helpers


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def is_plain_relative(name: str) -> bool:
    pure = PurePosixPath(name)
    return not (
        not name
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in pure.parts)
        or "\\" in name
        or str(pure) != name
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON (a bundle's JSON holds no NaN or Infinity)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"key(s) {', '.join(map(repr, twice))} given twice")
    return dict(pairs)


def read_bundle_json(data: bytes | str) -> Any:
    """A bundle's JSON document, strictly: no NaN or Infinity, no key given twice (the last
    would silently win), and a nesting too deep to parse is a :class:`ValueError` like any
    other malformed JSON, never a traceback."""
    try:
        return json.loads(data, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError("nested too deeply to be a dpgenome document") from None


#: where a bundle's data files live: the synthetic cohort, and nothing else
SYNTHETIC_DIR = "synthetic"


def outside_synthetic(names: Iterable[str]) -> list[str]:
    """The data file ``names`` not under ``synthetic/``. A bundle's data files are what
    ``dpgenome publish`` copies out for anyone to read, so only the synthetic cohort may be
    one: a note, an id list or a copy of the source table left in a release directory would
    otherwise ride along under the approving verdict (a review found a member id list and
    the real phenotype table published that way)."""
    return sorted(n for n in names if PurePosixPath(n).parts[0] != SYNTHETIC_DIR)


def check_name(name: str) -> str:
    if not is_plain_relative(name):
        raise ConfigError(f"bundle file name {name!r} must be a plain relative path")
    if name in RESERVED:
        raise ConfigError(f"bundle file name {name!r} is reserved for the bundle itself")
    return name


def write_file(path: Path, source: bytes | Path) -> tuple[str, int]:
    """Write ``source`` to ``path`` (fsynced); return (sha256, size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    size = 0
    with path.open("xb") as out:
        if isinstance(source, bytes | bytearray):
            out.write(source)
            h.update(source)
            size = len(source)
        else:
            try:
                fh = source.open("rb")
            except OSError as err:
                raise InputError(f"cannot read {err.strerror}", file=source) from None
            with fh:
                while chunk := fh.read(_CHUNK):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest(), size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_writers(folder: Path, pattern: str, marker: str) -> None:
    """Remove what killed processes left in ``folder``: the entries matching ``pattern``
    whose name carries, after ``marker``, the id of a process no longer running (a live
    writer's, and any name without an id, are left alone)."""
    for path in folder.glob(pattern):
        try:
            pid = int(path.name.rsplit(marker, 1)[1].split("-", 1)[0].split(".", 1)[0])
        except (IndexError, ValueError):
            continue
        if _pid_alive(pid):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _remove_stale_partials(dest: Path) -> None:
    """Remove temporary directories left beside ``dest`` by killed exports."""
    remove_dead_writers(dest.parent, f".{dest.name}.partial-*", ".partial-")


def check_destination(dest: Path) -> None:
    """Refuse a destination that exists (other than an empty directory), or lies inside a
    bundle or public copy (links followed), which would then no longer verify (an added
    file)."""
    refuse_working_folder(dest, "bundle")
    for folder in dest.resolve().parents:
        held = [n for n in (MANIFEST, PUBLIC_MANIFEST) if _is_bundle_manifest(folder / n)]
        if held:
            raise InputError(
                f"--out {dest} is inside the bundle {folder}, which holds {held[0]}: writing "
                "there would add files its manifest does not list, so it would no longer "
                "verify (choose a directory outside it); nothing was written",
                file=dest,
            )
    if dest.exists() or dest.is_symlink():
        if not dest.is_dir() or dest.is_symlink():
            raise InputError("the destination exists and is not a directory", file=dest)
        if any(dest.iterdir()):
            raise InputError(
                "the destination exists and is not empty; a bundle is never written over "
                "existing files (choose a new --out)",
                file=dest,
            )


def _is_bundle_manifest(path: Path) -> bool:
    """Whether ``path`` is a bundle's or a public copy's manifest (by its ``format``): a
    project's own ``manifest.json`` does not make its folder a bundle."""
    try:
        if not path.is_file() or path.stat().st_size > 1 << 26:
            return False
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.get("format") in (BUNDLE_FORMAT, PUBLIC_FORMAT)


def staging_directory(dest: Path, what: str, mode: int = 0o777) -> Path:
    """A fresh hidden directory beside ``dest`` to write the ``what`` into before
    :func:`move_into_place` (leftovers of killed writers to ``dest`` removed first), created
    with ``mode`` (less the umask)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(dest)
        tmp = dest.parent / f".{dest.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir(mode=mode)
    except OSError as err:
        raise InputError(
            f"cannot create the {what} here ({err.strerror or err}); nothing was written",
            file=dest,
        ) from None
    return tmp


def write_manifest(
    tmp: Path, manifest: dict[str, Any], key: Ed25519PrivateKey | None, names: tuple[str, str]
) -> bytes:
    """Write ``manifest`` (with its ``signature`` block) as ``names[0]`` in ``tmp``, and with
    ``key`` its Ed25519 signature as ``names[1]``; fsync the directory. The manifest's bytes
    (what the signature signs)."""
    manifest_name, signature_name = names
    manifest["signature"] = (
        None
        if key is None
        else {
            "algorithm": "ed25519",
            "file": signature_name,
            "signs": manifest_name,
            "public_key_pem": public_pem(key.public_key()),
        }
    )
    data = json_bytes(manifest)
    write_file(tmp / manifest_name, data)
    if key is not None:
        write_file(tmp / signature_name, base64.b64encode(key.sign(data)) + b"\n")
    _fsync_dir(tmp)
    return data


def move_into_place(tmp: Path, dest: Path) -> None:
    """Rename the finished ``tmp`` directory onto ``dest`` in one ``rename(2)``: a destination
    that appeared meanwhile is never overwritten (:class:`InputError`)."""
    try:
        os.rename(tmp, dest)
    except OSError as err:
        if err.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise InputError(
                "the destination appeared and is not empty; nothing was overwritten", file=dest
            ) from None
        raise
    try:
        _fsync_dir(dest.parent)
    except OSError as err:  # renamed: the directory is in place, its durability unconfirmed
        log.warning("could not sync %s after the rename (%s)", dest.parent, err.strerror or err)


def shown_name(name: str) -> str:
    """A file name as a message shows it: as it is when printable, else quoted with escapes
    (a newline in a name must not print as a line of its own, such as a forged "OK")."""
    return name if name.isprintable() else ascii(name)
