"""Policy-gated, atomic export of a release bundle, and its verification.

A bundle is a directory::

    BUNDLE/
      manifest.json     schema version, SHA-256 and size of every other file, verdict, policy
                        name and hash, every finding, the privacy ledger, configuration, seeds,
                        lifetime spending before this release, override (if any)
      manifest.sig      optional: base64 Ed25519 signature of the exact bytes of manifest.json
      results.json      the release results document (aggregates only)
      dossier.html      the self-contained dossier
      policy.yaml       byte-for-byte copy of the policy the verdict was reached under
      <data files>      the synthetic cohort, as given by the caller (relative paths kept)

:func:`export_bundle` evaluates the policy (with the cohort's lifetime spending from the
:class:`~dpgenome.lifetime.LifetimeLedger`), and writes the bundle only when the verdict is
APPROVE, or BLOCK with an override that the policy allows. Otherwise it raises
:class:`~dpgenome.errors.ReleaseBlocked` (exit code 3) before anything is written.

Atomicity: everything is written (and fsynced) into a hidden temporary directory beside the
destination, which is then renamed onto it in one ``rename(2)``. A process killed at any point
leaves either no bundle or the complete bundle; leftovers of killed exports
(``.<name>.partial-<pid>-<token>``) are removed by the next export to the same place. An
existing non-empty destination is never overwritten (:class:`~dpgenome.errors.InputError`).

:func:`verify_bundle` re-hashes every file, rejects missing and unlisted files, checks the
signature, and re-evaluates ``results.json`` against ``policy.yaml`` with the recorded
context to confirm the recorded verdict. Without a signature, a consistent rewrite of
manifest.json itself cannot be detected: sign bundles that leave your hands, or publish the
manifest's SHA-256 (printed by the export) through another channel.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import errno
import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any, TypeGuard

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dpgenome import __version__
from dpgenome.accountant import reaccount, reaccount_replace_one
from dpgenome.dossier import epsilon_text, render_dossier
from dpgenome.errors import ConfigError, DpgenomeError, InputError, PolicyError, ReleaseBlocked
from dpgenome.lifetime import LifetimeLedger, LifetimeTotal, ReleaseBudget, check_individuals
from dpgenome.policy import (
    Evaluation,
    EvaluationContext,
    Override,
    Policy,
    Verdict,
    describe_failing,
    evaluate,
    fmt,
    fmt_claim,
    load_policy,
    parse_policy,
)

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


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key in PEM (``openssl genpkey -algorithm ed25519``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read the signing key: {err.strerror}", file=path) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"not an unencrypted PEM private key ({err}); create one with "
            "`openssl genpkey -algorithm ed25519 -out key.pem`",
            file=path,
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"the signing key must be Ed25519, not {type(key).__name__}", file=path)
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key in PEM (``openssl pkey -in key.pem -pubout``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read the public key: {err.strerror}", file=path) from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as err:
        raise InputError(f"not a PEM public key ({err})", file=path) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"the public key must be Ed25519, not {type(key).__name__}", file=path)
    return key


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


def _is_plain_relative(name: str) -> bool:
    pure = PurePosixPath(name)
    return not (
        not name
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in pure.parts)
        or "\\" in name
        or str(pure) != name
    )


def _json_kind(value: Any) -> str:
    """How a JSON value reads in a problem: 'a list', 'null', 'a string', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    kinds = ((Mapping, "an object"), (list, "a list"), (str, "a string"), (int | float, "a number"))
    return next((kind for t, kind in kinds if isinstance(value, t)), type(value).__name__)


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


def _check_name(name: str) -> str:
    if not _is_plain_relative(name):
        raise ConfigError(f"bundle file name {name!r} must be a plain relative path")
    if name in RESERVED:
        raise ConfigError(f"bundle file name {name!r} is reserved for the bundle itself")
    return name


def _write(path: Path, source: bytes | Path) -> tuple[str, int]:
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


def _json_bytes(obj: Any) -> bytes:
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


def _check_destination(dest: Path) -> None:
    """Refuse a destination that exists (other than an empty directory), or lies inside a
    bundle or public copy (links followed), which would then no longer verify (an added
    file)."""
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
    data = _json_bytes(manifest)
    _write(tmp / manifest_name, data)
    if key is not None:
        _write(tmp / signature_name, base64.b64encode(key.sign(data)) + b"\n")
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


def default_release_id(files: Mapping[str, bytes | Path], fingerprint: str) -> str:
    """A release is its released data: SHA-256 over the cohort fingerprint and the sorted
    (name, SHA-256) of every data file. The same data exported twice is one release."""
    h = hashlib.sha256(fingerprint.encode())
    for name in sorted(files):
        source = files[name]
        if isinstance(source, bytes | bytearray):
            digest = hashlib.sha256(source).hexdigest()
        else:
            try:
                digest = sha256_file(Path(source))
            except OSError as err:
                raise InputError(f"cannot read {err.strerror}", file=source) from None
        h.update(f"\x1f{name}\x1e{digest}".encode())
    return h.hexdigest()


def synthetic_release_id(fingerprint: str, synthetic_fingerprint: str) -> str:
    """A release of ``dpgenome release`` is its synthetic cohort, whatever files carry it:
    SHA-256 over the source cohort's fingerprint and the synthetic cohort's content
    fingerprint (:meth:`Cohort.fingerprint`, independent of the file format). The same
    synthetic cohort exported again in another format (PLINK's hard calls are a rounding of
    the same dosages: post-processing) is the same release and costs nothing more in the
    lifetime ledger."""
    h = hashlib.sha256(b"dpgenome-release\x1f")
    h.update(f"{fingerprint}\x1f{synthetic_fingerprint}".encode())
    return h.hexdigest()


#: where results.json names the synthetic cohort it describes (its content fingerprint)
SYNTHETIC_FINGERPRINT = ("synthesis", "synthetic_fingerprint")
#: the fingerprint of the same cohort with its dosages rounded to hard calls, as a PLINK .bed
#: holds them (:func:`dpgenome.cohort.hard_call_fingerprint`)
SYNTHETIC_HARDCALL_FINGERPRINT = ("synthesis", "synthetic_hardcall_fingerprint")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def results_release_id(results: Mapping[str, Any], given: str | None = None) -> str | None:
    """The release id a results document fixes, checked against the caller's ``given``.

    ``dpgenome release`` records the synthetic cohort's content fingerprint in
    ``results["synthesis"]["synthetic_fingerprint"]``; the release is then
    :func:`synthetic_release_id` of it, whoever exports it and in whatever format, and a
    ``given`` id that differs is a :class:`ConfigError` (it would let another synthesis pass
    as this one, or this one as another, in the lifetime ledger: an id already recorded costs
    nothing more). Results without that field (written by another tool or an older version)
    leave the id to ``given`` (``None``: the caller's default, a hash of the data files)."""
    synthesis = results.get(SYNTHETIC_FINGERPRINT[0])
    synthetic = synthesis.get(SYNTHETIC_FINGERPRINT[1]) if isinstance(synthesis, Mapping) else None
    fingerprint = _fingerprint(results)
    if synthetic is None or fingerprint is None:
        return given
    field_name = ".".join(SYNTHETIC_FINGERPRINT)
    if not isinstance(synthetic, str) or not _SHA256_HEX.fullmatch(synthetic):
        raise InputError(
            f"{field_name} must be a SHA-256 (64 lower-case hex digits), got {synthetic!r}",
            file=RESULTS,
            column=field_name,
        )
    derived = synthetic_release_id(fingerprint, synthetic)
    if given is not None and given != derived:
        raise ConfigError(
            f"release id {given[:12]} is not this release's: its results name the synthetic "
            f"cohort {synthetic[:12]}, whose release id is {derived[:12]} (an id names one "
            "synthetic cohort in the lifetime ledger)"
        )
    return derived


def _epsilon_delta(results: Mapping[str, Any]) -> tuple[float, float]:
    """The release's (epsilon, delta) as its ledger states them (epsilon ``inf``: no formal
    privacy). A finite-epsilon release needs its delta: a missing one read as 0 would drop
    it from its individuals' lifetime deltas."""
    ledger = results.get("ledger")
    if not isinstance(ledger, Mapping) or "epsilon" not in ledger:
        raise InputError("results.json has no ledger.epsilon: nothing to record", column="ledger")
    eps = ledger["epsilon"]
    delta = ledger.get("delta")
    if eps is None or ledger.get("no_formal_privacy") is True:
        return math.inf, float(delta) if isinstance(delta, int | float) else 0.0
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps >= 0:
        raise InputError(
            f"the ledger's epsilon must be a number >= 0 or null, got {eps!r}",
            file=RESULTS,
            column="ledger.epsilon",
        )
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 <= delta < 1:
        raise InputError(
            f"the ledger states epsilon {eps!r} but no delta in [0, 1) (got "
            f"{'none' if 'delta' not in ledger else repr(delta)}): a release's delta adds to "
            "its individuals' lifetime delta and cannot be left out",
            file=RESULTS,
            column="ledger.delta",
        )
    return float(eps), float(delta)


#: how far above the stated epsilon the re-accounted one may be: the same accountants on the
#: same mechanisms give the same figure, the tolerance only absorbs floating point across
#: platforms
_REACCOUNT_RTOL = 1e-6


def _understated(ledger: Mapping[str, Any], again: Mapping[str, float]) -> str | None:
    """What is wrong when ``ledger`` states an epsilon below ``again``, its mechanisms
    re-accounted (:func:`~dpgenome.accountant.reaccount`); None when it does not."""
    stated = float(ledger["epsilon"])
    if again["epsilon"] <= stated * (1 + _REACCOUNT_RTOL) + 1e-12:
        return None
    return (
        f"its ledger states epsilon {fmt_claim(stated)}, but its mechanisms re-account to "
        f"{fmt_claim(again['epsilon'])} at delta {fmt(ledger['delta'])} (Opacus RDP "
        f"{fmt_claim(again['opacus_rdp'])}, PLD {fmt_claim(again['pld'])})"
    )


def _replace_one_understated(ledger: Mapping[str, Any]) -> tuple[str | None, dict[str, float]]:
    """``(what is wrong, figures)`` when ``ledger`` states a replace-one epsilon below what
    its mechanisms re-account to under replace-one (or states none that is a number); the
    figures are the stated and re-accounted values. ``(None, {})`` for a ledger with group
    privacy only (before stop 43), which derives from the add/remove epsilon."""
    replace = ledger.get("replace_one")
    if not isinstance(replace, Mapping) or replace.get("epsilon") is None:
        return None, {}  # states nothing (no formal privacy, or a ledger before stop 43)
    claim = replace.get("epsilon")
    if isinstance(claim, bool) or not isinstance(claim, int | float):
        return f"its replace-one epsilon is not a number ({claim!r})", {}
    if not replace.get("method"):
        # group privacy over remove-then-add (before stop 43): twice the add/remove epsilon
        group = 2.0 * reaccount(dict(ledger))["epsilon"]
        if group <= float(claim) * (1 + _REACCOUNT_RTOL) + 1e-12:
            return None, {}
        return (
            f"its ledger states a replace-one epsilon of {fmt_claim(float(claim))} by group "
            f"privacy, but twice its re-accounted epsilon is {fmt_claim(group)}"
        ), {}
    direct = reaccount_replace_one(dict(ledger))
    figures = {"replace_one_stated": float(claim), "replace_one": direct}
    if direct <= float(claim) * (1 + _REACCOUNT_RTOL) + 1e-12:
        return None, figures
    return (
        f"its ledger states a replace-one epsilon of {fmt_claim(float(claim))}, but its "
        f"mechanisms re-account to {fmt_claim(direct)} at delta {fmt(ledger['delta'])}"
    ), figures


def synthetic_mismatches(
    results: Mapping[str, Any], files: Mapping[str, bytes | Path]
) -> list[str]:
    """Each synthetic cohort among a bundle's data ``files`` (``synthetic/``, or
    ``synthetic/<format>/`` for several formats) whose content is not the synthetic cohort
    ``results`` describe (its ``synthesis.synthetic_fingerprint``; for PLINK's hard calls
    ``synthesis.synthetic_hardcall_fingerprint``), or that cannot be read as a cohort. Empty
    when the results name no synthetic cohort (written by another tool or before stop 44).
    Without this, the audits, verdict and release id of one synthesis could carry the files
    of another, which no audit or policy judged and the lifetime ledger would not charge."""
    synthesis = results.get("synthesis")
    if not isinstance(synthesis, Mapping) or not synthesis.get(SYNTHETIC_FINGERPRINT[1]):
        return []
    exact = synthesis.get(SYNTHETIC_FINGERPRINT[1])
    hard = synthesis.get(SYNTHETIC_HARDCALL_FINGERPRINT[1])
    contents = _synthetic_contents(files)
    if not contents:
        return ["the bundle holds no synthetic/ files for the synthetic cohort results.json names"]
    problems = []
    for folder, fmt_name, fingerprint in contents:
        if fmt_name is None:
            problems.append(f"{folder}: cannot be read as a cohort ({fingerprint})")
            continue
        expected = hard if fmt_name == "plink" else exact
        if expected is None:
            log.warning(
                "%s holds PLINK hard calls and results.json records no hard-call "
                "fingerprint (a release before stop 46): its content is not checked",
                folder,
            )
        elif fingerprint != expected:
            problems.append(
                f"{folder}: its synthetic cohort is not the one results.json describes "
                f"(content fingerprint {fingerprint[:12]}, recorded {str(expected)[:12]})"
            )
    return problems


def _synthetic_contents(files: Mapping[str, bytes | Path]) -> list[tuple[str, str | None, str]]:
    """Each synthetic cohort among a bundle's data ``files`` (``synthetic/``, or
    ``synthetic/<format>/`` for several formats), read back: ``(folder, format, content
    fingerprint)``, or ``(folder, None, why it cannot be read as a cohort)``."""
    groups: dict[str, dict[str, bytes | Path]] = {}
    for name, src in files.items():
        path = PurePosixPath(name)
        if path.parts[0] == "synthetic":
            groups.setdefault(path.parent.as_posix(), {})[path.name] = src
    if not groups:
        return []
    from dpgenome.io import detect_format, read_cohort

    contents: list[tuple[str, str | None, str]] = []
    with tempfile.TemporaryDirectory(prefix="dpgenome-synthetic-") as tmp:
        for i, (folder, members) in enumerate(sorted(groups.items())):
            where = Path(tmp) / str(i)
            where.mkdir()
            for fname, src in members.items():
                if isinstance(src, Path):
                    (where / fname).symlink_to(src.resolve())
                else:
                    (where / fname).write_bytes(src)
            try:
                fmt = detect_format(where)
                fingerprint = read_cohort(where).fingerprint()
            except (DpgenomeError, OSError, ValueError) as err:
                why = err.message if isinstance(err, DpgenomeError) else str(err)
                contents.append((folder, None, why))
                continue
            contents.append((folder, fmt, fingerprint))
    return contents


def _refuse_understated(ledger: Any, epsilon: float) -> None:
    """An :class:`InputError` when the results' ``ledger``, stating ``epsilon``
    (:func:`_epsilon_delta`), states less than its mechanisms re-account to (what ``verify``
    reports as a problem): such a claim must not be exported or charged to the lifetime
    ledger. A finite ledger whose mechanisms cannot be re-accounted (a fractional count, a
    missing list, an unknown kind) is refused too: ``verify`` would reject the bundle, and
    meanwhile its stated epsilon, which nothing checks, would pass the policy and be charged
    (an API caller's hand-made ledger stated 1 where its mechanisms spent 10)."""
    if math.isinf(epsilon) or not isinstance(ledger, Mapping):
        return
    try:
        again = reaccount(dict(ledger))
    except DpgenomeError as err:
        raise InputError(
            f"its privacy ledger cannot be re-accounted ({err.message}): the epsilon it states "
            "is unchecked; nothing was exported and nothing was recorded",
            file=RESULTS,
            column="ledger.mechanisms",
        ) from None
    for problem, column in (
        (_understated(ledger, again), "ledger.epsilon"),
        (_replace_one_understated(ledger)[0], "ledger.replace_one.epsilon"),
    ):
        if problem is not None:
            raise InputError(
                f"{problem}: a release states at least what its mechanisms spent; nothing was "
                "exported and nothing was recorded",
                file=RESULTS,
                column=column,
            )


# ---------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportResult:
    path: Path
    release_id: str
    evaluation: Evaluation
    override: Override | None
    manifest_sha256: str
    signed: bool
    new_lifetime_entry: bool
    manifest: dict[str, Any] = field(repr=False)


def _fingerprint(results: Mapping[str, Any]) -> str | None:
    cohort = results.get("cohort")
    fingerprint = cohort.get("fingerprint") if isinstance(cohort, Mapping) else None
    return fingerprint if isinstance(fingerprint, str) and fingerprint else None


def lifetime_spent(
    results: Mapping[str, Any],
    lifetime: LifetimeLedger | None,
    *,
    release_id: str | None = None,
    individuals: Iterable[object] | None = None,
    replace_one: bool = False,
) -> tuple[LifetimeTotal, LifetimeTotal | None] | None:
    """What the individuals of the release's source cohort have spent before it and would
    have spent with it (the most any one of them: :meth:`LifetimeLedger.total`, composing
    this release's mechanisms with theirs), excluding ``release_id`` itself so a re-export is
    not counted twice; ``individuals`` are the source cohort's sample ids when the caller has
    them; ``replace_one`` also composes the total after under replace-one (a second
    accounting, for a policy's replace-one lifetime cap). ``None`` without a ledger or a
    cohort fingerprint; the total after is ``None`` when the results hold no ledger."""
    fingerprint = _fingerprint(results)
    if lifetime is None or fingerprint is None:
        return None
    release_id = results_release_id(results, release_id)
    ids = None if individuals is None else list(individuals)
    before = lifetime.total(fingerprint, individuals=ids, exclude_release=release_id)
    try:
        epsilon, delta = _epsilon_delta(results)
    except (InputError, TypeError, ValueError):
        return before, None
    budget = ReleaseBudget.of(epsilon, delta, results.get("ledger"))
    after = lifetime.total(
        fingerprint,
        individuals=ids,
        exclude_release=release_id,
        including=budget,
        replace_one=replace_one,
    )
    return before, after


def _context(spent: tuple[LifetimeTotal, LifetimeTotal | None] | None) -> EvaluationContext:
    if spent is None:
        return EvaluationContext()
    before, after = spent
    one = None
    if after is not None and after.replace_one_accounted:
        one = math.inf if after.replace_one is None else after.replace_one[0]
    return EvaluationContext(
        before.epsilon,
        before.delta,
        before.releases,
        None if after is None else after.epsilon,
        None if after is None else after.delta,
        one,
    )


def prepare_evaluation(
    results: Mapping[str, Any],
    policy: Policy,
    *,
    lifetime: LifetimeLedger | None,
    release_id: str | None = None,
    individuals: Iterable[object] | None = None,
) -> Evaluation:
    """Evaluate a release with its individuals' lifetime spending (:func:`lifetime_spent`).
    Without a ledger the lifetime rule is NOT EVALUATED."""
    total = _policy_spent(results, policy, lifetime, release_id, individuals)
    return evaluate(results, policy, context=_context(total))


def _policy_spent(
    results: Mapping[str, Any],
    policy: Policy,
    lifetime: LifetimeLedger | None,
    release_id: str | None,
    individuals: Iterable[object] | None,
) -> tuple[LifetimeTotal, LifetimeTotal | None] | None:
    """:func:`lifetime_spent` with what ``policy`` judges (the replace-one composition only
    when it caps it)."""
    return lifetime_spent(
        results,
        lifetime,
        release_id=release_id,
        individuals=individuals,
        replace_one=policy.max_lifetime_replace_one_epsilon is not None,
    )


def public_control_note(results: Mapping[str, Any], evaluation: Evaluation) -> str:
    """A line after the failing rules when a distance audit (the DCR attack, the DCR share)
    blocks on its raw figures and the audit ran the public-panel control: the excess over
    the panel, which explains such a finding or not (a reviewer's evidence for an override).
    A policy with ``nearest_neighbour.public_panel_control`` judges the excess itself."""
    audit = results.get("audit")
    control = audit.get("public_control") if isinstance(audit, Mapping) else None
    if not isinstance(control, Mapping) or "dcr_auc_excess" not in control:
        return ""
    distance_rules = (
        "membership.dcr.",
        "nearest_neighbour.share_closer_to_members",
        "nearest_neighbour.centred_share",
    )
    raw = [f for f in evaluation.failing if "audit.public_control" not in f.metric]
    if not any(f.rule.startswith(distance_rules) for f in raw):
        return ""  # no failing distance rule judged on the raw figures
    (alo, ahi), (slo, shi) = control["dcr_auc_excess_ci"], control["share_closer_excess_ci"]
    return (
        "\nPublic-panel control (genotypes only; this policy judges the audit's own figures, "
        "not their excess over the panel): over the "
        "panel, which never saw the split, the synthetic cohort's DCR AUC excess is "
        f"{control['dcr_auc_excess']:+.3f} (95% CI {alo:+.3f} to {ahi:+.3f}) and its share "
        f"excess {control['share_closer_excess']:+.3f} ({slo:+.3f} to {shi:+.3f}); see the "
        "dossier"
    )


def _charge_blocked(
    results: Mapping[str, Any],
    policy: Policy,
    lifetime: LifetimeLedger | None,
    release_id: str,
    fingerprint: str,
    individuals: Iterable[object] | None,
) -> str:
    """Under a policy with ``privacy.charge_blocked_releases``, record a blocked DP release in
    the lifetime ledger as ``blocked``: its synthetic cohort was made and seen, so running
    again costs budget. Returns the clause the refusal adds (empty when nothing is charged).
    A release without formal privacy, or one whose ledger cannot be re-accounted, is not
    charged: nothing would bound it, and no policy lets it out."""
    if lifetime is None:
        return ""
    epsilon, delta = _epsilon_delta(results)
    if not policy.charge_blocked_releases or math.isinf(epsilon):
        # not charged, but the verdict is kept in the release's history all the same
        with contextlib.suppress(DpgenomeError, OSError):
            lifetime.log_verdict(release_id, (policy.name, str(Verdict.BLOCK), False), "blocked")
        return "; a run without formal privacy is not charged" * policy.charge_blocked_releases
    _refuse_understated(results.get("ledger"), epsilon)
    cohort = results.get("cohort")
    try:
        # whatever was recorded meanwhile (no expect_releases): charging is never unsafe
        new = lifetime.record(
            fingerprint,
            epsilon,
            delta,
            release_id,
            policy=policy.name,
            verdict=str(Verdict.BLOCK),
            pheno=str(cohort.get("pheno") or "") if isinstance(cohort, Mapping) else "",
            status="blocked",
            individuals=individuals,
            mechanisms=ReleaseBudget.of(epsilon, delta, results.get("ledger")).mechanisms,
        )
    except (DpgenomeError, OSError) as err:
        why = err.message if isinstance(err, DpgenomeError) else (err.strerror or str(err))
        raise InputError(
            f"policy {policy.name!r} blocks this release and charges blocked releases, but "
            f"recording the charge in the lifetime ledger failed ({why}): the release's "
            "synthetic cohort is UNCHARGED. Fix the ledger and run the release again (a "
            "cached synthesis is reused and charged, not retrained)",
            file=lifetime.path,
        ) from None
    return (
        f", but policy {policy.name!r} charges blocked releases: this one "
        + ("is now" if new else "was already")
        + f" in the lifetime ledger {lifetime.path} (epsilon {fmt_claim(epsilon)}, delta "
        f"{fmt_claim(delta)})"
    )


def export_bundle(
    dest: str | Path,
    *,
    files: Mapping[str, bytes | Path],
    results: Mapping[str, Any],
    policy_path: str | Path,
    figures: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    override: Override | None = None,
    signing_key: Ed25519PrivateKey | str | Path | None = None,
    lifetime: LifetimeLedger | None = None,
    release_id: str | None = None,
    individuals: Iterable[object] | None = None,
) -> ExportResult:
    """Evaluate, gate, and atomically write a release bundle at ``dest``.

    ``files`` maps bundle-relative names to bytes or source paths (the synthetic cohort).
    ``config`` defaults to ``results["provenance"]["config"]``. ``lifetime`` supplies and
    records the lifetime spending of the release's individuals (``None``: a lifetime cap is
    NOT EVALUATED and nothing is recorded). ``individuals`` -- the source cohort's sample ids,
    checked against the results' cohort fingerprint -- let the ledger link this release to
    the releases of every cohort sharing its people; without them, and unless the ledger
    already knows this cohort's individuals, only releases of the same fingerprint count (a
    warning says so). Raises :class:`ReleaseBlocked` (nothing written) when the verdict is
    BLOCK and there is no override, or the policy forbids overrides; a policy with
    ``charge_blocked_releases`` then records the release in ``lifetime`` all the same.
    """
    dest = Path(dest).expanduser()
    policy = load_policy(policy_path)
    policy_path = Path(policy.path)  # a bare shipped name (consortium) resolved to its file
    policy_bytes = policy_path.read_bytes()
    names = {_check_name(n): src for n, src in files.items()}
    stray = outside_synthetic(names)
    if stray:
        raise InputError(
            f"{len(stray)} data file(s) outside {SYNTHETIC_DIR}/ "
            f"({', '.join(map(_shown_name, stray[:5]))}"
            f"{', ...' if len(stray) > 5 else ''}): a bundle's data files are the synthetic "
            "cohort alone, published as they are; nothing was exported"
        )
    _check_destination(dest)
    if override is not None and (not override.reason.strip() or not override.signer.strip()):
        raise ConfigError("an override needs both a reason and a signer name")

    cohort = results.get("cohort") if isinstance(results.get("cohort"), Mapping) else {}
    assert isinstance(cohort, Mapping)
    fingerprint = str(cohort.get("fingerprint") or "")
    if lifetime is not None and not fingerprint:
        raise InputError("results.json has no cohort.fingerprint: the lifetime ledger needs it")
    if individuals is not None and lifetime is not None:
        individuals = check_individuals(fingerprint, individuals)
    release_id = results_release_id(results, release_id) or default_release_id(names, fingerprint)
    spent = _policy_spent(results, policy, lifetime, release_id, individuals)
    evaluation = evaluate(results, policy, context=_context(spent))
    before = None if spent is None else spent[0]
    if before is not None and before.individuals is None:
        log.warning(
            "the lifetime ledger does not know this cohort's individuals: only releases of "
            "cohort %s count towards its lifetime budget, not those of cohorts sharing some of "
            "its people (give the source cohort: dpgenome export --cohort COHORT)",
            fingerprint[:12],
        )
    elif before is not None and lifetime is not None:
        unlinked = lifetime.unlinked_releases(besides=fingerprint)
        if unlinked:
            log.warning(
                "%d earlier release(s) in the lifetime ledger were recorded without their "
                "individuals and count only for their own cohort, not for any of these "
                "individuals they included: link each such cohort (dpgenome ledger --link "
                "COHORT)",
                unlinked,
            )

    if evaluation.verdict is Verdict.BLOCK:
        failing = "\n  ".join(describe_failing(evaluation)) + public_control_note(
            results, evaluation
        )
        if override is None or not policy.overrides_allowed:
            charged = _charge_blocked(
                results, policy, lifetime, release_id, fingerprint, individuals
            )
            why = "blocks this release" if override is None else "allows no override"
            err = ReleaseBlocked(
                f"policy {policy.name!r} {why}; nothing was exported{charged}. "
                f"Failing rules:\n  {failing}",
                file=policy_path,
                line=None if override is None else policy.line_of("overrides.allowed"),
            )
            err.evaluation = evaluation
            raise err
        log.warning("exporting a BLOCKED release under an override signed by %s", override.signer)
    elif override is not None:
        log.info("the verdict is APPROVE: the override is not needed and is not recorded")
        override = None

    key: Ed25519PrivateKey | None
    if signing_key is None or isinstance(signing_key, Ed25519PrivateKey):
        key = signing_key
    else:
        key = load_signing_key(signing_key)

    dossier = render_dossier(results, evaluation, figures or {}, override=override)
    try:
        results_bytes = _json_bytes(results)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"the results document is not plain JSON ({err}); write missing or infinite "
            "values as null"
        ) from None
    epsilon, delta = _epsilon_delta(results)
    _refuse_understated(results.get("ledger"), epsilon)
    unnamed = _unnamed_synthetic_version(results)
    if unnamed is not None:
        raise InputError(
            f"names no synthetic cohort ({'.'.join(SYNTHETIC_FINGERPRINT)}), though dpgenome "
            f"{unnamed}, which wrote it, names one for every release: verify would refuse the "
            "bundle; nothing was exported and nothing was recorded",
            file=RESULTS,
        )
    wrong = synthetic_mismatches(results, names)
    if wrong:
        raise InputError(
            "; ".join(wrong) + ": nothing was exported and nothing was recorded", file=RESULTS
        )

    # owner-only: results.json and the dossier hold exact aggregates of the members
    tmp = staging_directory(dest, "bundle", mode=0o700)
    new_entry = False
    recorded = False
    # this export's own claim on the ledger row while it is pending: another export of the
    # same release to the same path that fails must withdraw its claim, not this one's
    claim = f"{dest.resolve()} (export {secrets.token_hex(4)} under way)"
    moved = False
    try:
        listing: dict[str, dict[str, Any]] = {}
        for name in sorted(names):
            digest, size = _write(tmp / name, names[name])
            listing[name] = {"sha256": digest, "bytes": size, "role": "data"}
        for name, data, role in (
            (RESULTS, results_bytes, "results"),
            (DOSSIER, dossier.encode(), "dossier"),
            (POLICY_COPY, policy_bytes, "policy"),
        ):
            digest, size = _write(tmp / name, data)
            listing[name] = {"sha256": digest, "bytes": size, "role": role}

        provenance = (
            results.get("provenance") if isinstance(results.get("provenance"), Mapping) else {}
        )
        assert isinstance(provenance, Mapping)
        manifest: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "dpgenome_version": __version__,
            "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "release_id": release_id,
            "cohort_fingerprint": fingerprint,
            "verdict": str(evaluation.verdict),
            "released_under_override": override is not None,
            "override": None if override is None else override.to_dict(),
            "policy": {
                "name": policy.name,
                "file": POLICY_COPY,
                "sha256": listing[POLICY_COPY]["sha256"],
                "source_name": policy_path.name,
                "overrides_allowed": policy.overrides_allowed,
                "signoff_roles": list(policy.signoff_roles),
            },
            "evaluation": evaluation.to_dict(),
            "ledger": results.get("ledger"),
            "lifetime": {
                **evaluation.context.to_dict(),
                "composition": "basic: epsilons and deltas add across releases"
                if before is None
                else before.to_dict()["composition"],
                "unit": None if before is None else before.to_dict()["unit"],
                "individuals": None if before is None else before.individuals,
                "this_release_epsilon": None if math.isinf(epsilon) else epsilon,
                "this_release_delta": delta,
                "recorded": lifetime is not None,
            },
            "config": dict(config) if config is not None else provenance.get("config", {}),
            "seeds": provenance.get("seeds", {}),
            "files": listing,
        }
        manifest_bytes = write_manifest(tmp, manifest, key, (MANIFEST, SIGNATURE))

        if lifetime is not None:
            new_entry = lifetime.record(
                fingerprint,
                epsilon,
                delta,
                release_id,
                policy=policy.name,
                verdict=str(evaluation.verdict),
                overridden=override is not None,
                bundle=claim,
                pheno=str(cohort.get("pheno") or ""),
                status="pending",
                individuals=individuals,
                mechanisms=ReleaseBudget.of(epsilon, delta, results.get("ledger")).mechanisms,
                expect_releases=None if before is None else before.release_ids,
            )
            recorded = True
        move_into_place(tmp, dest)
        moved = True
    except BaseException as err:
        if moved or (not tmp.exists() and (dest / MANIFEST).is_file()):
            # renamed into place: the bundle is out, and its ledger row (pending) stays,
            # under the bundle's path rather than the claim
            if recorded and lifetime is not None:
                with contextlib.suppress(DpgenomeError, OSError):
                    lifetime.set_status(
                        release_id, None, bundle=str(dest.resolve()), replaces=claim
                    )
                    lifetime.log_verdict(
                        release_id,
                        (policy.name, str(evaluation.verdict), override is not None),
                        "exported",
                        str(dest.resolve()),
                    )
            if isinstance(err, OSError | DpgenomeError):
                charged = "; its lifetime spending is recorded (status pending)" * recorded
                raise InputError(
                    f"the bundle was written, but finishing it failed ({err}){charged}. "
                    "Check it with dpgenome verify",
                    file=dest,
                ) from None
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        if recorded and lifetime is not None:  # withdraw this export's claim
            lifetime.forget_pending(release_id, bundle=claim)
        if isinstance(err, OSError):
            # disk full, read-only or vanished destination: a user-facing failure, not a bug
            where = err.filename if err.filename is not None else dest
            raise InputError(
                f"writing the bundle failed ({err.strerror or err}); nothing was written "
                "and no lifetime spending was recorded",
                file=where,
            ) from None
        raise
    if lifetime is not None:
        try:
            lifetime.set_status(
                release_id,
                "exported",
                bundle=str(dest.resolve()),
                verdict=(policy.name, str(evaluation.verdict), override is not None),
                replaces=claim,
            )
        except DpgenomeError as err:  # a ledger locked too long: the row stays pending
            raise InputError(
                f"the bundle was written and its lifetime spending recorded (status pending, "
                f"counted), but marking it exported failed ({err.message}); nothing needs "
                "redoing. Check it with dpgenome verify",
                file=dest,
            ) from None
    return ExportResult(
        path=dest,
        release_id=release_id,
        evaluation=evaluation,
        override=override,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        signed=key is not None,
        new_lifetime_entry=new_entry,
        manifest=manifest,
    )


# ---------------------------------------------------------------------------- verify


@dataclass
class VerifyReport:
    """What :func:`verify_bundle` found. ``ok`` is True only when ``problems`` is empty."""

    path: Path
    problems: list[str] = field(default_factory=list)
    #: "bundle", or "public release" (:mod:`dpgenome.publish`)
    kind: str = "bundle"
    files_checked: int = 0
    signature: str = "absent"
    verdict_recorded: str | None = None
    verdict_reevaluated: str | None = None
    policy: str | None = None
    released_under_override: bool = False
    manifest_sha256: str | None = None
    #: the release's privacy ledger re-accounted from its mechanisms (``epsilon`` as the
    #: ledger reports, ``opacus_rdp``, ``pld``, ``stated``, ``delta``); ``None``: not done
    #: (no formal privacy, or the bundle did not get that far)
    reaccounted: dict[str, float] | None = None
    #: the figures recomputed from the real cohort (:mod:`dpgenome.recheck`); ``None``: not
    #: asked for, or the bundle did not verify
    recheck: dict[str, Any] | None = None
    #: the listed files that are missing or not as the manifest records them: nothing is
    #: read from them (a huge file put in place of a cohort is not parsed)
    changed: set[str] = field(default_factory=set)
    #: what the reader should know that is not a problem (each names the file): a policy copy
    #: that names a shipped policy but is not it, a public copy of an older format
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "ok": self.ok,
            "problems": list(self.problems),
            "files_checked": self.files_checked,
            "signature": self.signature,
            "verdict_recorded": self.verdict_recorded,
            "verdict_reevaluated": self.verdict_reevaluated,
            "policy": self.policy,
            "released_under_override": self.released_under_override,
            "manifest_sha256": self.manifest_sha256,
            "reaccounted": self.reaccounted,
            "recheck": self.recheck,
            "notes": list(self.notes),
        }


def _check_signature(
    report: VerifyReport,
    root: Path,
    manifest: Mapping[str, Any],
    manifest_bytes: bytes,
    public_key: Ed25519PublicKey | None,
    names: tuple[str, str] = (MANIFEST, SIGNATURE),
) -> None:
    """The manifest's Ed25519 signature (``names``: the manifest's and the signature's file
    names: a bundle's, or a public release's)."""
    manifest_name, signature_name = names
    block = manifest.get("signature")
    sig_path = root / signature_name
    if block is None:
        if sig_path.exists():
            report.problems.append(
                f"{signature_name}: present but the manifest records no signature"
            )
        if public_key is not None:
            report.problems.append(
                f"{manifest_name}: the release is not signed, but a key was given"
            )
        report.signature = "absent"
        return
    if not isinstance(block, Mapping) or block.get("algorithm") != "ed25519":
        report.problems.append(f"{manifest_name}: unsupported signature block {block!r}")
        report.signature = "INVALID"
        return
    try:
        embedded = serialization.load_pem_public_key(str(block["public_key_pem"]).encode())
        signature = base64.b64decode(sig_path.read_bytes().strip(), validate=True)
    except FileNotFoundError:
        report.problems.append(f"{signature_name}: missing (the manifest says it is signed)")
        report.signature = "INVALID"
        return
    except OSError as err:
        report.problems.append(f"{signature_name}: cannot be read ({err.strerror or err})")
        report.signature = "INVALID"
        return
    except (KeyError, ValueError, TypeError, UnsupportedAlgorithm) as err:
        report.problems.append(f"{signature_name}: unreadable signature or key ({err})")
        report.signature = "INVALID"
        return
    if not isinstance(embedded, Ed25519PublicKey):
        report.problems.append(f"{manifest_name}: the embedded public key is not Ed25519")
        report.signature = "INVALID"
        return
    trusted = public_key or embedded
    if public_key is not None and public_pem(public_key) != public_pem(embedded):
        report.problems.append(
            f"{manifest_name}: signed with a different key than the one given (--public-key)"
        )
        report.signature = "INVALID"
        return  # whether it matches the other key says nothing the line above does not
    try:
        trusted.verify(signature, manifest_bytes)
    except InvalidSignature:
        report.problems.append(f"{signature_name}: the signature does not match {manifest_name}")
        report.signature = "INVALID"
        return
    report.signature = (
        "valid (given public key)"
        if public_key is not None
        else "valid against the key embedded in the manifest (pass --public-key to establish "
        "who signed it)"
    )


def check_listing(
    report: VerifyReport, root: Path, manifest: Mapping[str, Any], own: tuple[str, ...]
) -> Mapping[str, Any] | None:
    """Every file the manifest lists, re-hashed (SHA-256 and size), and no file it does not
    list besides its ``own`` (the manifest and its signature): each problem names the file.
    The listing, or None when the manifest has none."""
    listing = manifest.get("files")
    if not isinstance(listing, Mapping):
        report.problems.append(f"{own[0]}: no file listing")
        return None
    for name in sorted(listing):
        entry, shown = listing[name], _shown_name(name)
        if not _is_plain_relative(name):
            report.problems.append(f"{shown}: listed, but not a plain relative path in the bundle")
            report.changed.add(name)  # never read: it could name a file outside the bundle
            continue
        file = root / name
        folders = [p for p in file.parents if p != root and root in p.parents]
        if file.is_symlink() or any(p.is_symlink() for p in folders):
            # its bytes can change later without the bundle changing
            how = "a symbolic link" if file.is_symlink() else "reached through a symbolic link"
            report.problems.append(f"{shown}: {how} (a bundle holds regular files only)")
            report.changed.add(name)
            continue
        if not file.is_file():
            report.problems.append(f"{shown}: missing")
            report.changed.add(name)
            continue
        report.files_checked += 1
        size = file.stat().st_size
        if not isinstance(entry, Mapping) or size != entry.get("bytes"):
            # before hashing: a file swapped for a huge one is not read through
            report.problems.append(f"{shown}: changed (size differs from the manifest)")
            report.changed.add(name)
            continue
        try:
            digest = sha256_file(file)
        except OSError as err:
            report.problems.append(f"{shown}: cannot be read ({err.strerror or err})")
            report.changed.add(name)
            continue
        if digest != entry.get("sha256"):
            report.problems.append(f"{shown}: changed (SHA-256 differs from the manifest)")
            report.changed.add(name)
    for name in own:
        if (root / name).is_symlink():
            report.problems.append(f"{name}: a symbolic link (a bundle holds regular files only)")
    holders = {parent.as_posix() for name in listing for parent in PurePosixPath(name).parents}
    for entry in sorted(root.rglob("*")):
        rel = entry.relative_to(root).as_posix()
        shown = _shown_name(rel)
        if rel in listing or rel in own:
            continue
        if entry.is_symlink():
            if rel not in holders:  # a listed file's folder as a link is reported above
                report.problems.append(
                    f"{shown}: a symbolic link the manifest does not list (added after export)"
                )
        elif entry.is_dir():
            if rel not in holders:
                report.problems.append(
                    f"{shown}/: a directory the manifest does not list (added after export)"
                )
        else:
            report.problems.append(f"{shown}: not listed in the manifest (added after export)")

    return listing


def _shown_name(name: str) -> str:
    """A file name as a message shows it: as it is when printable, else quoted with escapes
    (a newline in a name must not print as a line of its own, such as a forged "OK")."""
    return name if name.isprintable() else ascii(name)


def parse_manifest(
    report: VerifyReport, name: str, data: bytes, expected: tuple[str, int], what: str
) -> dict[str, Any] | None:
    """The manifest ``name`` read as ``data``: its SHA-256 into ``report``, and the JSON object
    when it is one of the ``expected`` (format, schema version); else None, with the problem
    in ``report`` (``what``: "bundle", "public release")."""
    report.manifest_sha256 = hashlib.sha256(data).hexdigest()
    try:
        manifest = read_bundle_json(data)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except ValueError as err:
        report.problems.append(f"{name}: changed or corrupt (not valid JSON: {err})")
        return None
    fmt_name, version = expected
    if manifest.get("format") != fmt_name or manifest.get("schema_version") != version:
        report.problems.append(f"{name}: not a dpgenome {what} manifest (schema version {version})")
        return None
    return manifest


def verify_bundle(
    path: str | Path, public_key: Ed25519PublicKey | str | Path | None = None
) -> VerifyReport:
    """Check a bundle: every file's SHA-256 and size, no missing or unlisted file, the
    signature, and the recorded verdict against a re-evaluation of ``results.json`` under
    ``policy.yaml``. Never raises for a damaged bundle: problems are listed in the report,
    each naming the file."""
    root = Path(path).expanduser()
    report = VerifyReport(path=root)
    key: Ed25519PublicKey | None
    if public_key is None or isinstance(public_key, Ed25519PublicKey):
        key = public_key
    else:
        key = load_public_key(public_key)
    if not root.is_dir():
        report.problems.append(f"{root}: not a bundle directory")
        return report
    try:
        manifest_bytes = (root / MANIFEST).read_bytes()
    except FileNotFoundError:
        from dpgenome.publish import verify_public

        if (root / PUBLIC_MANIFEST).is_file():  # a public release (dpgenome publish)
            verify_public(root, key, report)
        else:
            report.problems.append(f"{MANIFEST}: missing")
        return report
    except OSError as err:
        report.problems.append(f"{MANIFEST}: cannot be read ({err.strerror or err})")
        return report
    manifest = parse_manifest(
        report, MANIFEST, manifest_bytes, (BUNDLE_FORMAT, MANIFEST_SCHEMA_VERSION), "bundle"
    )
    if manifest is None:
        return report
    _check_signature(report, root, manifest, manifest_bytes, key)

    listing = check_listing(report, root, manifest, (MANIFEST, SIGNATURE))
    if listing is None:
        return report
    report.verdict_recorded = manifest.get("verdict")
    report.released_under_override = bool(manifest.get("released_under_override"))
    policy_block = manifest.get("policy") if isinstance(manifest.get("policy"), Mapping) else {}
    assert isinstance(policy_block, Mapping)
    report.policy = policy_block.get("name")
    _reevaluate(report, root, manifest)
    _note_shipped_namesake(report, root, manifest)
    return report


def shipped_namesake(policy: Policy) -> str | None:
    """The shipped policy ``policy`` calls itself by (its name, compared without case or
    surrounding blanks, is the stem of a file in ``policies/``) when its text is not that
    file's; None when it names none, or is the shipped file itself.

    A reader takes "approved under consortium" (or strict) to mean the policy dpgenome
    ships: a copy that kept the name but changed a threshold, or set ``publication: {open:
    true}``, would borrow that meaning. The text is compared as :class:`Policy` hashes it
    (read as UTF-8 text), so the same file checked out with other line endings still is it."""
    from dpgenome.paths import policies_dir

    wanted = policy.name.strip().casefold()
    for path in sorted(policies_dir().glob("*.yaml")):
        if path.stem.casefold() != wanted:
            continue
        shipped = hashlib.sha256(path.read_text(encoding="utf-8").encode()).hexdigest()
        return None if shipped == policy.sha256 else path.stem
    return None


def _note_shipped_namesake(report: VerifyReport, root: Path, manifest: Mapping[str, Any]) -> None:
    """A note (not a problem: a site may adapt a shipped policy under its name) when the
    bundle's policy copy names a shipped policy but is not it. Only for a copy whose hash is
    the manifest's (any other is a problem already); ``dpgenome publish`` refuses such a
    bundle unless its signature, checked against the signer's key, pins that copy."""
    block = manifest.get("policy")
    if POLICY_COPY in report.changed:
        return
    try:
        policy = parse_policy(
            (root / POLICY_COPY).read_text(encoding="utf-8"), file=str(root / POLICY_COPY)
        )
        name = shipped_namesake(policy)
    except (OSError, UnicodeDecodeError, DpgenomeError):
        return  # a copy that cannot be read is a problem already; no policies/ folder: no note
    if (
        name is None
        or not isinstance(block, Mapping)
        or not policy_copy_recorded(root / POLICY_COPY, policy, block.get("sha256"))
    ):
        return
    report.notes.append(
        f"{POLICY_COPY}: calls itself '{name}', a shipped policy, but differs from dpgenome's "
        f"policies/{name}.yaml: the release was judged under an edited copy, not the shipped "
        f"'{name}'"
        + (
            ""
            if report.signature.startswith("valid (given public key)")
            else " (nothing but this bundle's own hashes vouches for the copy; dpgenome "
            "publish refuses it unless the bundle is signed and checked with --public-key)"
        )
    )


class _DossierReader(HTMLParser):
    """What a dossier shows its signers, read as a browser shows it: the text of its first
    ``<title>``, its verdict banner (the element ``id="verdict"``: its class and heading),
    whether it has the at-a-glance section (``id="glance"``), its figure boxes
    (``<div><b>figure</b><span>label</span></div>``) and its table rows (header and cell
    text, whitespace collapsed). A comment is not text shown: a title written in a comment
    satisfied a search of the raw HTML while the real title and banner showed another
    verdict."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self.banner: tuple[str, str] | None = None  # (class, heading)
        self.glance = False
        self.boxes: list[tuple[str, str]] = []  # (figure, label)
        self.rows: list[tuple[str, str]] = []  # (header, cell)
        self._capture: tuple[str, list[str]] | None = None  # the element read, its text
        self._banner_class: str | None = None
        self._figure: str | None = None
        self._header: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if named.get("id") == "glance":
            self.glance = True
        if self._capture is not None:
            return  # markup inside a title, heading, figure or cell: part of its text
        if tag != "span":
            self._figure = None  # a box's label directly follows its figure
        if tag == "title" and self.title is None:
            self._capture = (tag, [])
        elif tag == "div" and named.get("id") == "verdict" and self._banner_class is None:
            self._banner_class = named.get("class") or ""
        elif tag == "h2" and self._banner_class is not None and self.banner is None:
            self._capture = (tag, [])
        elif tag in ("b", "span", "th", "td"):
            self._capture = (tag, [])
        elif tag == "tr":
            self._header = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._capture[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._capture is None or tag != self._capture[0]:
            return
        text = " ".join("".join(self._capture[1]).split())
        self._capture = None
        if tag == "title":
            self.title = text
        elif tag == "h2":
            self.banner = (self._banner_class or "", text)
        elif tag == "b":
            self._figure = text
        elif tag == "span":
            if self._figure is not None:
                self.boxes.append((self._figure, text))
            self._figure = None
        elif tag == "th":
            self._header = text
        elif tag == "td":
            if self._header is not None:
                self.rows.append((self._header, text))
            self._header = None


def _check_dossier(
    report: VerifyReport, root: Path, manifest: Mapping[str, Any], results: Mapping[str, Any]
) -> None:
    """The dossier, read as its signers see it (:class:`_DossierReader`), must show the
    manifest's verdict and release id and the ledger's privacy claim: hashes rewritten over
    an edited or swapped dossier pass the manifest."""
    if DOSSIER in report.changed:
        return  # missing, a link or not the listed size: a problem already, and not read
    try:
        text = (root / DOSSIER).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return  # reported as missing or unreadable with the files
    dossier = _DossierReader()
    try:
        dossier.feed(text)
        dossier.close()
    except (AssertionError, ValueError) as err:  # html.parser on a malformed declaration
        report.problems.append(f"{DOSSIER}: cannot be read as HTML ({err})")
        return
    _check_dossier_verdict(report, dossier, manifest, _no_formal_privacy(results))
    _check_dossier_guarantee(report, dossier, results)
    _check_dossier_release_id(report, dossier, manifest, results)


_DOSSIER_TITLE = re.compile(
    r"Release dossier — (\w+)( \(overridden\))?( — NO FORMAL PRIVACY)? — policy "
)
_SIGNOFF_VERDICT = re.compile(r"(\w+)( \(overridden\))?( — NO FORMAL PRIVACY)?")
#: the verdict banner's classes (its colour) for each verdict: an APPROVE without formal
#: privacy and an overridden BLOCK are amber
_BANNER_STYLES = {
    "APPROVE": {"approve", "override"},
    "BLOCK": {"block"},
    "BLOCK (overridden)": {"override"},
}


def _no_formal_privacy(results: Mapping[str, Any]) -> bool:
    """Whether the results' ledger states no formal privacy (no epsilon)."""
    ledger = results.get("ledger")
    return isinstance(ledger, Mapping) and (
        ledger.get("no_formal_privacy") is True or ledger.get("epsilon") is None
    )


def _check_dossier_verdict(
    report: VerifyReport,
    dossier: _DossierReader,
    manifest: Mapping[str, Any],
    no_privacy: bool = False,
) -> None:
    """The verdict the dossier shows its signers must be the manifest's: in its title, in its
    verdict banner (heading and colour) and in its sign-off's verdict row (when it has one:
    older dossiers have none); and the title and that row say NO FORMAL PRIVACY exactly when
    the ledger has none (``no_privacy``)."""
    marker = "NO FORMAL PRIVACY"
    recorded = str(manifest.get("verdict")) + (
        " (overridden)" if manifest.get("released_under_override") else ""
    )
    found = _DOSSIER_TITLE.match(dossier.title or "")
    if found is None:
        report.problems.append(f"{DOSSIER}: shows no release verdict in its title")
    else:
        shown = found.group(1) + (" (overridden)" if found.group(2) else "")
        if shown != recorded:
            report.problems.append(
                f"{DOSSIER}: shows verdict {shown}, but {MANIFEST} records {recorded}"
            )
        if bool(found.group(3)) != no_privacy:
            report.problems.append(_marker_problem("its title", marker, no_privacy))
    if dossier.banner is None:
        report.problems.append(f'{DOSSIER}: shows no verdict banner (id="verdict")')
    else:
        style, heading = dossier.banner
        words = heading.split()
        shown = (words[0] if words else "") + (" (overridden)" if "OVERRIDDEN" in words else "")
        styles = set(style.split()) & set().union(*_BANNER_STYLES.values())
        if shown != recorded:
            report.problems.append(
                f"{DOSSIER}: its verdict banner shows {heading or 'no verdict'}, but {MANIFEST} "
                f"records {recorded}"
            )
        elif not styles or not styles <= _BANNER_STYLES.get(recorded, set()):
            report.problems.append(
                f'{DOSSIER}: its verdict banner is styled "{style}", not as a {recorded} '
                f"banner ({MANIFEST} records {recorded})"
            )
    for header, cell in dossier.rows:
        if header != "Verdict":
            continue
        row = _SIGNOFF_VERDICT.fullmatch(cell)
        if row is None or row.group(1) + (" (overridden)" if row.group(2) else "") != recorded:
            report.problems.append(
                f"{DOSSIER}: its sign-off shows verdict {cell or 'none'}, but {MANIFEST} "
                f"records {recorded}"
            )
        elif bool(row.group(3)) != no_privacy:
            report.problems.append(_marker_problem("its sign-off verdict", marker, no_privacy))


def _marker_problem(where: str, marker: str, no_privacy: bool) -> str:
    """A dossier place (``where``) showing the no-formal-privacy ``marker`` against the ledger
    (``no_privacy``: the ledger states no formal privacy, so the marker must be there)."""
    if no_privacy:
        return (
            f"{DOSSIER}: {where} lacks {marker}, though {RESULTS}'s ledger states no formal privacy"
        )
    return f"{DOSSIER}: {where} says {marker}, but {RESULTS}'s ledger states an epsilon"


#: the label of an at-a-glance box showing the epsilon or the delta
_GLANCE_LABEL = re.compile(r"(epsilon) \(privacy loss\)|(delta)\b")
#: the target the ledger table shows after the total epsilon
_TARGET = re.compile(r" \(target [^()]*\)$")
_SIGNOFF_PRIVACY = re.compile(r"epsilon (.+), delta (\S+) per individual")
_SIGNOFF_NO_PRIVACY = "none (epsilon = ∞)"


def _check_dossier_guarantee(
    report: VerifyReport, dossier: _DossierReader, results: Mapping[str, Any]
) -> None:
    """The epsilon and delta the dossier shows its signers must state ``results.json``'s
    ledger (:func:`_same_claim`: never below it): every at-a-glance box, the privacy ledger
    table's total epsilon and the sign-off's privacy row (when the dossier has them). A
    dossier must have the glance section and show both there: without it (its ``id``
    renamed) nothing would be checked."""
    ledger = results.get("ledger")
    if not isinstance(ledger, Mapping):
        return  # reported by the re-accounting
    if not dossier.glance:
        report.problems.append(
            f'{DOSSIER}: has no at-a-glance section (id="glance"), where a dossier shows its '
            "epsilon and delta"
        )
    shown: dict[str, list[str]] = {"epsilon": [], "delta": []}
    for figure, label in dossier.boxes:
        kind = _GLANCE_LABEL.match(label)
        if kind is not None:
            shown[kind.group(1) or kind.group(2)].append(figure)
    eps_text, no_formal = epsilon_text(results)
    delta_text = fmt_claim(ledger.get("delta"))
    expected = {"epsilon": (eps_text, ledger.get("epsilon"))}
    if not no_formal:  # older dossiers showed a no-DP run's delta; it claims nothing
        expected["delta"] = (delta_text, ledger.get("delta"))
    for what, (text_form, value) in expected.items():
        if not shown[what]:
            report.problems.append(f"{DOSSIER}: shows no {what} at a glance")
        for seen in shown[what]:
            if not _same_claim(seen, text_form, value):
                report.problems.append(
                    f"{DOSSIER}: shows {what} {seen}, but {RESULTS}'s ledger gives {text_form}"
                )
    for header, cell in dossier.rows:
        if header == "Total epsilon":
            seen = _TARGET.sub("", cell)
            if not _same_claim(seen, eps_text, ledger.get("epsilon")):
                report.problems.append(
                    f"{DOSSIER}: its privacy ledger table shows total epsilon {seen}, but "
                    f"{RESULTS}'s ledger gives {eps_text}"
                )
        elif header == "Privacy":
            row = _SIGNOFF_PRIVACY.fullmatch(cell)
            if no_formal:
                same = cell == _SIGNOFF_NO_PRIVACY
            else:
                same = (
                    row is not None
                    and _same_claim(row.group(1), eps_text, ledger.get("epsilon"))
                    and _same_claim(row.group(2), delta_text, ledger.get("delta"))
                )
            if not same:
                gives = (
                    _SIGNOFF_NO_PRIVACY
                    if no_formal
                    else f"epsilon {eps_text}, delta {delta_text} per individual"
                )
                report.problems.append(
                    f'{DOSSIER}: its sign-off shows privacy "{cell}", but {RESULTS}\'s ledger '
                    f'gives "{gives}"'
                )


def _same_claim(seen: str, text_form: str, value: Any) -> bool:
    """A figure as shown states the ledger's claim ``value``: the text a dossier shows for
    it (``text_form``, :func:`fmt_claim`: rounded *up* to 4 significant digits), the text
    older dossiers showed (:func:`fmt`, rounded to the nearest: epsilon until claims were
    rounded up, delta, to 3 significant digits below 0.001, a day longer), or a number
    rounded up to fewer digits: never below the ledger's, and less than one unit of its
    last digit shown above it. Any other figure below the ledger's understates the claim
    (an epsilon of 7.997 shown as 7, a delta of 0.0029 as 0): no dossier showed it."""
    if seen == text_form or (_is_number(value) and seen == fmt(value)):
        return True
    try:
        shown = decimal.Decimal(seen.replace(",", ""))
    except decimal.InvalidOperation:
        return False
    if not shown.is_finite() or not _is_number(value):
        return False
    exact = decimal.Decimal(float(value))
    unit = decimal.Decimal(1).scaleb(int(shown.as_tuple().exponent))
    # the tolerance below is fmt_claim's own: a value a hair above a digit is not moved up
    return exact - unit * decimal.Decimal("1e-9") <= shown < exact + unit


def _check_dossier_release_id(
    report: VerifyReport,
    dossier: _DossierReader,
    manifest: Mapping[str, Any],
    results: Mapping[str, Any],
) -> None:
    """The release id the dossier's sign-off names (each signer approves "the release
    identified here, and no other") must be the manifest's: another release's dossier
    swapped into a bundle shows its own. A dossier shows an id only for results that fix
    one (:func:`results_release_id`), and none ("—") for others (another tool's, or older):
    an id shown beside results that fix none is their synthetic cohort removed. A dossier
    from before the sign-off named the release has no sign-off rows at all; one with its
    verdict or privacy row but no release id has lost it."""
    recorded = str(manifest.get("release_id"))
    shown = [cell for header, cell in dossier.rows if header == "Release id"]
    if not shown:
        if any(header in ("Verdict", "Privacy") for header, _ in dossier.rows):
            report.problems.append(
                f"{DOSSIER}: its sign-off names no release id ({MANIFEST} records {recorded[:12]})"
            )
        return
    try:
        fixed = results_release_id(results)
    except InputError:
        return  # reported with the manifest's release id
    for cell in shown:
        if cell == "—" and fixed is None:
            continue
        if fixed is None:
            report.problems.append(
                f"{DOSSIER}: shows release id {cell[:12]}, but {RESULTS} fixes none (a dossier "
                f"shows one for results naming their synthetic cohort: "
                f"{'.'.join(SYNTHETIC_FINGERPRINT)} removed?)"
            )
        if cell != recorded:
            report.problems.append(
                f"{DOSSIER}: shows release id {cell[:12] or 'none'}, but {MANIFEST} records "
                f"{recorded[:12]} (the dossier of another release?)"
            )


def _check_ledger_config(report: VerifyReport, results: Mapping[str, Any]) -> None:
    """The ledger must be the one the recorded configuration asked for: its target epsilon
    and its delta (a ledger of another run, e.g. a smaller epsilon, re-accounts cleanly)."""
    ledger = results.get("ledger")
    provenance = results.get("provenance")
    config = provenance.get("config") if isinstance(provenance, Mapping) else None
    if not isinstance(ledger, Mapping) or not isinstance(config, Mapping):
        return
    for key, asked_key, what in (
        ("target_epsilon", "epsilon", "calibrated to epsilon"),
        ("delta", "delta", "at delta"),
    ):
        got, asked = ledger.get(key), config.get(asked_key)
        if not (_is_number(got) and _is_number(asked)):
            continue  # no formal privacy, "auto", or not recorded
        if not math.isclose(float(got), float(asked), rel_tol=1e-9):
            report.problems.append(
                f"{RESULTS}: its privacy ledger is {what} {got:g}, but its recorded "
                f"configuration asks {asked:g} (a ledger of another run?)"
            )


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reaccount(report: VerifyReport, ledger: Any, where: str = RESULTS) -> None:
    """Re-account the release's privacy ledger from its mechanisms (Opacus RDP and
    dp-accounting PLD, :func:`~dpgenome.accountant.reaccount`): an epsilon stated below what
    its mechanisms give, or mechanisms that cannot be accounted, is a problem (naming
    ``where``, the file the ledger was read from)."""
    if not isinstance(ledger, Mapping):
        report.problems.append(f"{where}: has no privacy ledger object")
        return
    stated, flag = ledger.get("epsilon"), ledger.get("no_formal_privacy")
    # a flag contradicting the epsilon would skip the re-accounting of a stated number
    if flag is True and stated is not None:
        report.problems.append(
            f"{where}: its ledger states no formal privacy beside an epsilon of {stated!r}"
        )
        return
    if flag is False and stated is None:
        report.problems.append(
            f"{where}: its ledger states no epsilon (null) but not that it has no formal privacy"
        )
        return
    if stated is None:
        return  # no formal privacy: nothing is claimed (the policy's own rule judges it)
    if isinstance(stated, bool) or not isinstance(stated, int | float) or stated < 0:
        report.problems.append(f"{where}: its ledger's epsilon is not a number ({stated!r})")
        return
    try:
        again = reaccount(dict(ledger))
    except DpgenomeError as err:
        report.problems.append(f"{where}: its privacy ledger cannot be re-accounted ({err})")
        return
    report.reaccounted = {**again, "stated": float(stated), "delta": float(ledger["delta"])}
    problem = _understated(ledger, again)
    if problem is not None:
        report.problems.append(f"{where}: {problem}")
    problem, figures = _replace_one_understated(ledger)
    report.reaccounted |= figures
    if problem is not None:
        report.problems.append(f"{where}: {problem}")


def policy_copy_recorded(path: Path, policy: Policy, recorded: object) -> bool:
    """Whether the policy copy at ``path`` (read as ``policy``) is the one the manifest
    records: export hashes the file's bytes, :class:`Policy` its text (newlines made
    ``\n``), so a policy written with CRLF line ends is matched by its bytes' hash."""
    return recorded in (policy.sha256, sha256_file(path))


def _reevaluate(report: VerifyReport, root: Path, manifest: Mapping[str, Any]) -> None:
    """Re-evaluate ``results.json`` under ``policy.yaml`` with the recorded context and
    compare with the recorded verdict and findings. Every file of the wrong shape (a
    results document that is not an object, a recorded evaluation, context or findings of
    the wrong type) is a problem naming the file, as a changed byte is."""
    if report.changed & {POLICY_COPY, RESULTS}:
        return  # missing, a link or not the listed size: a problem already, and not read
    try:
        policy_text = (root / POLICY_COPY).read_text(encoding="utf-8")
        policy = parse_policy(policy_text, file=str(root / POLICY_COPY))
    except (FileNotFoundError, IsADirectoryError):
        return  # reported as missing above
    except OSError as err:
        report.problems.append(f"{POLICY_COPY}: cannot be read ({err.strerror or err})")
        return
    except (PolicyError, UnicodeDecodeError) as err:
        report.problems.append(f"{POLICY_COPY}: cannot be re-read as a policy ({err})")
        return
    policy_block = manifest.get("policy")
    recorded_sha = policy_block.get("sha256") if isinstance(policy_block, Mapping) else None
    if not policy_copy_recorded(root / POLICY_COPY, policy, recorded_sha):
        report.problems.append(f"{POLICY_COPY}: its hash differs from the manifest's policy hash")
    elif isinstance(policy_block, Mapping):  # what verify and publish show must be the policy's
        shown = {
            "name": policy.name,
            "overrides_allowed": policy.overrides_allowed,
            "signoff_roles": list(policy.signoff_roles),
        }
        differ = sorted(k for k, v in shown.items() if policy_block.get(k) != v)
        if differ:
            report.problems.append(
                f"{MANIFEST}: its policy block differs from {POLICY_COPY} in: {', '.join(differ)}"
            )
    try:
        text = (root / RESULTS).read_text(encoding="utf-8")
        results = read_bundle_json(text)
    except (FileNotFoundError, IsADirectoryError):
        return  # reported as missing above
    except OSError as err:
        report.problems.append(f"{RESULTS}: cannot be read ({err.strerror or err})")
        return
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        report.problems.append(f"{RESULTS}: not valid JSON ({err})")
        return
    if not isinstance(results, dict):
        report.problems.append(
            f"{RESULTS}: changed or corrupt (the results document is {_json_kind(results)}, "
            "not a JSON object)"
        )
        return
    recorded = manifest.get("evaluation")
    if not isinstance(recorded, Mapping):
        report.problems.append(
            f"{MANIFEST}: changed or corrupt (its evaluation is {_json_kind(recorded)}, "
            "not a JSON object)"
        )
        return
    try:
        context = EvaluationContext.from_dict(recorded.get("context"))
    except ValueError as err:
        report.problems.append(f"{MANIFEST}: changed or corrupt (its evaluation context: {err})")
        return
    try:
        again = evaluate(results, policy, context=context)
    except (TypeError, ValueError, OverflowError, AttributeError, KeyError, IndexError) as err:
        # evaluate() reads missing metrics as NOT EVALUATED; a value of an unexpected type
        # deep in the document must still not end verify in a traceback
        report.problems.append(
            f"{RESULTS}: changed or corrupt (cannot be re-evaluated under {POLICY_COPY}: {err})"
        )
        return
    report.verdict_reevaluated = str(again.verdict)
    if report.verdict_recorded != str(again.verdict):
        report.problems.append(
            f"{MANIFEST}: records verdict {report.verdict_recorded}, but re-evaluating "
            f"{RESULTS} under {POLICY_COPY} gives {again.verdict}"
        )
    findings = recorded.get("findings")
    if not isinstance(findings, list) or not all(isinstance(f, Mapping) for f in findings):
        report.problems.append(
            f"{MANIFEST}: changed or corrupt (its evaluation findings are {_json_kind(findings)}, "
            "not a list of JSON objects)"
        )
    else:
        recorded_status = {str(f.get("rule")): str(f.get("status")) for f in findings}
        now_status = {f.rule: str(f.status) for f in again.findings}
        if recorded_status != now_status:
            changed = sorted(
                r
                for r in set(recorded_status) | set(now_status)
                if recorded_status.get(r) != now_status.get(r)
            )
            report.problems.append(
                f"{MANIFEST}: recorded findings differ from the re-evaluation for: "
                f"{', '.join(changed)}"
            )
    if manifest.get("ledger") != results.get("ledger"):
        report.problems.append(f"{MANIFEST}: its privacy ledger differs from {RESULTS}'s")
    listed = manifest.get("files")
    data = {
        str(name): root / str(name)
        for name, entry in (listed.items() if isinstance(listed, Mapping) else ())
        if isinstance(entry, Mapping) and entry.get("role") == "data"
    }
    if not report.changed & set(data):  # a changed or unsafe file is a problem already
        _check_release_id(report, manifest, results, data)
        report.problems += synthetic_mismatches(results, data)
    if _named_synthetic(results):
        # results naming their synthetic cohort come from an export that packs it alone
        report.problems += [
            f"{_shown_name(name)}: a data file outside {SYNTHETIC_DIR}/, not part of the "
            "synthetic cohort (publish would copy it out)"
            for name in outside_synthetic(data)
        ]
    _reaccount(report, results.get("ledger"))
    _check_ledger_config(report, results)
    _check_dossier(report, root, manifest, results)
    if again.verdict is Verdict.BLOCK:
        override = manifest.get("override")
        if not manifest.get("released_under_override") or not isinstance(override, Mapping):
            report.problems.append(f"{MANIFEST}: a BLOCKED release without a recorded override")
        elif not policy.overrides_allowed:
            report.problems.append(
                f"{MANIFEST}: released under an override that {POLICY_COPY} does not allow"
            )


#: the last dpgenome version whose results may lack ``synthesis.synthetic_fingerprint``: the
#: field came with release ids fixed by the results (stop 44) while the version stayed 0.1.0,
#: so results of 0.1.0 may lack it (an older release, or another tool's results) and those
#: of any later version must record it
_UNFINGERPRINTED_VERSION = (0, 1, 0)


def _results_version(results: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The dpgenome version the results record having been written by (its leading
    numbers), or None when they record none."""
    provenance = results.get("provenance")
    version = provenance.get("dpgenome_version") if isinstance(provenance, Mapping) else None
    found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version) if isinstance(version, str) else None
    return None if found is None else tuple(int(part or 0) for part in found.groups())


def _named_synthetic(results: Mapping[str, Any]) -> Any:
    """The synthetic cohort's fingerprint the results record (``synthesis.
    synthetic_fingerprint``, as written: checked where it is used), or None."""
    synthesis = results.get(SYNTHETIC_FINGERPRINT[0])
    return synthesis.get(SYNTHETIC_FINGERPRINT[1]) if isinstance(synthesis, Mapping) else None


def _unnamed_synthetic_version(results: Mapping[str, Any]) -> str | None:
    """The dpgenome version that wrote ``results`` when it is one that names the synthetic
    cohort of every release and these name none; None otherwise (named, or older)."""
    if _named_synthetic(results) is not None:
        return None
    version = _results_version(results)
    if version is None or version <= _UNFINGERPRINTED_VERSION:
        return None
    return ".".join(map(str, version))


def _check_release_id(
    report: VerifyReport,
    manifest: Mapping[str, Any],
    results: Mapping[str, Any],
    data: Mapping[str, Path],
) -> None:
    """Results that name their synthetic cohort fix the release id
    (:func:`results_release_id`): the manifest's must be that one. Results without it turn
    off this check and the synthetic files' (:func:`synthetic_mismatches`), so its absence
    must be explained: results of a version that records it must have it, and the release
    id of older results must be one an older version made from the bundle's ``data`` files
    (:func:`_older_release_id`)."""
    recorded = manifest.get("release_id")
    try:
        derived = results_release_id(results)
    except InputError as err:
        report.problems.append(f"{RESULTS}: {err.message}")
        return
    if derived is not None:
        if recorded != derived:
            report.problems.append(
                f"{MANIFEST}: release id {str(recorded)[:12]} is not the one {RESULTS}'s "
                f"synthetic cohort gives ({derived[:12]})"
            )
        return
    if _named_synthetic(results) is not None:
        return  # named, but no cohort fingerprint to derive the id from (re-evaluation's)
    field_name = ".".join(SYNTHETIC_FINGERPRINT)
    version = _unnamed_synthetic_version(results)
    if version is not None:
        report.problems.append(
            f"{RESULTS}: names no synthetic cohort ({field_name}), though dpgenome "
            f"{version}, which wrote it, names one for every release: its synthetic files "
            "and release id cannot be checked against it (removed?)"
        )
        return
    problem = _older_release_id(str(recorded), results, data)
    if problem is not None:
        text = (
            f"{RESULTS}: names no synthetic cohort ({field_name}), and {MANIFEST}'s release "
            f"id {str(recorded)[:12]} {problem}"
        )
        # a release of the days when results named no cohort, exported as PLINK alone:
        # its id cannot be recomputed, which says nothing against it
        (report.notes if problem.endswith(_HARD_CALLS_ONLY) else report.problems).append(text)


_HARD_CALLS_ONLY = (
    "; they hold PLINK hard calls only, from which a synthetic cohort's id cannot be recomputed"
)


def _older_release_id(
    recorded: str, results: Mapping[str, Any], data: Mapping[str, Path]
) -> str | None:
    """What is wrong with the ``recorded`` release id of results that name no synthetic
    cohort; None when it is one an older version made: the hash of the bundle's ``data``
    files (:func:`default_release_id`, still what an export of such results makes), or the
    id of the synthetic cohort they hold (:func:`synthetic_release_id` of its content,
    what ``dpgenome release`` made before its results recorded the cohort). Either way the
    id names the files: those of another release do not give it."""
    cohort = results.get("cohort")
    fingerprint = str(cohort.get("fingerprint") or "") if isinstance(cohort, Mapping) else ""
    try:
        if recorded == default_release_id(data, fingerprint):
            return None
    except InputError:
        return None  # a data file that cannot be read: reported with the files
    contents = _synthetic_contents(data)
    lossless = [fp for _, fmt_name, fp in contents if fmt_name not in (None, "plink")]
    if fingerprint and any(recorded == synthetic_release_id(fingerprint, fp) for fp in lossless):
        return None
    plink_only = contents and not lossless and all(f == "plink" for _, f, _ in contents)
    return (
        "is neither the hash of the bundle's data files nor the id of the synthetic cohort "
        "they hold (the files of another release?)" + (_HARD_CALLS_ONLY if plink_only else "")
    )
