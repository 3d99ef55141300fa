"""The public part of a release: its synthetic cohort and its privacy ledger, alone.

A release bundle (:mod:`dpgenome.export`) is a governance record: its ``results.json`` and
``dossier.html`` hold exact aggregates of the real members (their GWAS, allele frequencies,
phenotype marginals, the audits' figures), which the privacy guarantee does not cover and
which can themselves reveal membership (GWAS summary statistics: Homer et al. 2008). What
the guarantee covers is the synthetic cohort, and the ledger that states it. For open
publication :func:`publish` copies exactly those out of a bundle that verifies::

    PUBLIC/
      public-manifest.json  format, release id, the bundle manifest's SHA-256, verdict,
                            policy name, the (epsilon, delta) claim, SHA-256 and size of
                            every other file
      public-manifest.sig   optional: base64 Ed25519 signature of public-manifest.json
      ledger.json           the release's privacy ledger (its mechanisms, for re-accounting)
      <data files>          the synthetic cohort, byte for byte as in the bundle

Every data file's hash is the one the bundle's (signed) manifest records, so whoever holds
the bundle's manifest can tie the public copy to the approved release; ``dpgenome verify``
checks a public copy on its own (hashes, no added file, signature, the ledger re-accounted).
Writing is atomic, as an export's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from dpgenome import __version__
from dpgenome.errors import InputError, ReleaseBlocked
from dpgenome.export import (
    DOSSIER,
    MANIFEST,
    POLICY_COPY,
    RESULTS,
    SIGNATURE,
    VerifyReport,
    _check_destination,
    _check_signature,
    _json_bytes,
    _reaccount,
    _write,
    check_listing,
    load_signing_key,
    move_into_place,
    parse_manifest,
    read_bundle_json,
    staging_directory,
    verify_bundle,
    write_manifest,
)
from dpgenome.policy import parse_policy

PUBLIC_FORMAT = "dpgenome-public-release"
PUBLIC_SCHEMA_VERSION = 1
PUBLIC_MANIFEST, PUBLIC_SIGNATURE, LEDGER = (
    "public-manifest.json",
    "public-manifest.sig",
    "ledger.json",
)
#: the bundle's files that hold real-data aggregates or governance records: never published
#: (only files the bundle's manifest gives the role "data" are)
RESTRICTED = (MANIFEST, SIGNATURE, RESULTS, DOSSIER, POLICY_COPY)


@dataclass(frozen=True)
class PublishResult:
    path: Path
    release_id: str
    files: tuple[str, ...]
    manifest_sha256: str
    signed: bool
    #: how the bundle's own signature was checked: ``"given public key"``, ``"embedded key
    #: only"`` (signed, but checked against the key its manifest carries: anyone who altered
    #: the bundle could have re-signed it), or ``"unsigned"``
    bundle_signature: str


def publish(
    bundle: str | Path,
    dest: str | Path,
    *,
    public_key: Ed25519PublicKey | str | Path | None = None,
    signing_key: Ed25519PrivateKey | str | Path | None = None,
) -> PublishResult:
    """Copy a verified bundle's synthetic cohort and privacy ledger to ``dest`` (atomic;
    an existing non-empty ``dest`` is never overwritten). A bundle that does not verify
    (:func:`~dpgenome.export.verify_bundle`, against ``public_key`` when given) or holds no
    formal privacy guarantee is an :class:`InputError` and nothing is written."""
    source = Path(bundle).expanduser()
    report = verify_bundle(source, public_key=public_key)
    if not report.ok:
        raise InputError(
            "the bundle does not verify, so nothing was published: " + "; ".join(report.problems),
            file=source,
        )
    manifest_bytes = (source / MANIFEST).read_bytes()
    if hashlib.sha256(manifest_bytes).hexdigest() != report.manifest_sha256:
        raise InputError(
            "changed while it was being verified; nothing was published", file=source / MANIFEST
        )
    manifest = json.loads(manifest_bytes)
    policy = parse_policy(
        (source / POLICY_COPY).read_text(encoding="utf-8"), file=str(source / POLICY_COPY)
    )
    recorded = manifest.get("policy") if isinstance(manifest.get("policy"), Mapping) else {}
    if policy.sha256 != recorded.get("sha256"):  # verified above; read again here
        raise InputError(
            "changed while the bundle was being published; nothing was published",
            file=source / POLICY_COPY,
        )
    if not policy.open_publication:
        raise ReleaseBlocked(
            f"the release was approved under the '{policy.name}' policy, whose copy in the "
            "bundle does not set 'publication: {open: true}': it is not for open publication "
            "(of the shipped policies only strict is; a bundle exported before policies said "
            "so carries none: export the release again under the current strict policy, "
            "which charges nothing new); nothing was published",
            file=source / POLICY_COPY,
        )
    ledger = manifest.get("ledger")
    if not isinstance(ledger, Mapping) or ledger.get("no_formal_privacy") is True:
        raise InputError(
            "the release carries no formal privacy guarantee (no formal privacy): it is not "
            "for open publication; nothing was published",
            file=source / MANIFEST,
        )
    epsilon = ledger.get("epsilon")
    if not isinstance(epsilon, int | float) or isinstance(epsilon, bool) or math.isinf(epsilon):
        raise InputError(
            f"the release's ledger states no finite epsilon ({epsilon!r})", file=source / MANIFEST
        )
    data = sorted(
        name
        for name, entry in manifest["files"].items()
        if entry.get("role") == "data" and name not in RESTRICTED
    )
    if not data:
        raise InputError("the bundle holds no data files to publish", file=source / MANIFEST)
    key = load_signing_key(signing_key) if isinstance(signing_key, str | Path) else signing_key
    bundle_signature = (
        "unsigned"
        if report.signature == "absent"
        else "given public key"
        if public_key is not None
        else "embedded key only"
    )

    target = Path(dest).expanduser()
    _check_destination(target)
    tmp = staging_directory(target, "public release")
    try:
        listing: dict[str, dict[str, Any]] = {}
        for name in data:
            digest, size = _write(tmp / name, source / name)
            if digest != manifest["files"][name].get("sha256"):  # changed since verified
                raise InputError(
                    "changed while the bundle was being published; nothing was published",
                    file=source / name,
                )
            listing[name] = {"sha256": digest, "bytes": size, "role": "data"}
        digest, size = _write(tmp / LEDGER, _json_bytes(ledger))
        listing[LEDGER] = {"sha256": digest, "bytes": size, "role": "ledger"}
        policy = manifest.get("policy") if isinstance(manifest.get("policy"), Mapping) else {}
        assert isinstance(policy, Mapping)
        public = {
            "format": PUBLIC_FORMAT,
            "schema_version": PUBLIC_SCHEMA_VERSION,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "dpgenome_version": __version__,
            "release_id": manifest.get("release_id"),
            "bundle_manifest_sha256": report.manifest_sha256,
            "bundle_signature_checked_against": bundle_signature,
            "verdict": manifest.get("verdict"),
            "released_under_override": bool(manifest.get("released_under_override")),
            "policy": {"name": policy.get("name"), "sha256": policy.get("sha256")},
            "privacy": {
                "epsilon": epsilon,
                "delta": ledger.get("delta"),
                "unit": ledger.get("unit"),
                "label": ledger.get("label"),
                "ledger": LEDGER,
            },
            "files": listing,
        }
        public_bytes = write_manifest(tmp, public, key, (PUBLIC_MANIFEST, PUBLIC_SIGNATURE))
        move_into_place(tmp, target)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            where = err.filename if err.filename is not None else target
            raise InputError(
                f"writing the public release failed ({err.strerror or err}); nothing was written",
                file=where,
            ) from None
        raise
    return PublishResult(
        path=target,
        release_id=str(manifest.get("release_id")),
        files=tuple(sorted(listing)),
        manifest_sha256=hashlib.sha256(public_bytes).hexdigest(),
        signed=key is not None,
        bundle_signature=bundle_signature,
    )


def verify_public(root: Path, public_key: Ed25519PublicKey | None, report: VerifyReport) -> None:
    """Check a public release (the directory :func:`publish` writes) into ``report``: every
    file's hash and size, no added file, the signature, the (epsilon, delta) claim the same in
    the manifest and the ledger, and the ledger re-accounted from its mechanisms (a stated
    epsilon below them is a problem, as for a bundle)."""
    report.kind = "public release"
    try:
        manifest_bytes = (root / PUBLIC_MANIFEST).read_bytes()
    except OSError as err:
        report.problems.append(f"{PUBLIC_MANIFEST}: cannot be read ({err.strerror or err})")
        return
    manifest = parse_manifest(
        report,
        PUBLIC_MANIFEST,
        manifest_bytes,
        (PUBLIC_FORMAT, PUBLIC_SCHEMA_VERSION),
        "public release",
    )
    if manifest is None:
        return
    _check_signature(
        report, root, manifest, manifest_bytes, public_key, (PUBLIC_MANIFEST, PUBLIC_SIGNATURE)
    )
    if check_listing(report, root, manifest, (PUBLIC_MANIFEST, PUBLIC_SIGNATURE)) is None:
        return
    report.verdict_recorded = manifest.get("verdict")
    report.released_under_override = bool(manifest.get("released_under_override"))
    policy = manifest.get("policy")
    report.policy = policy.get("name") if isinstance(policy, Mapping) else None
    try:
        ledger = read_bundle_json((root / LEDGER).read_bytes())
    except (OSError, ValueError) as err:
        report.problems.append(f"{LEDGER}: cannot be read as JSON ({err})")
        return
    if not isinstance(ledger, Mapping):
        report.problems.append(f"{LEDGER}: not a JSON object")
        return
    privacy = manifest.get("privacy")
    claim = privacy if isinstance(privacy, Mapping) else {}
    differ = [
        f"{LEDGER}: its {key} differs from the one {PUBLIC_MANIFEST} states ({claim.get(key)!r})"
        for key in ("epsilon", "delta")
        if key not in ledger or key not in claim or ledger[key] != claim[key]
    ]
    if differ:
        report.problems.extend(differ)
        return
    _reaccount(report, ledger, LEDGER)
