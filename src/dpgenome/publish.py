"""The public part of a release: its synthetic cohort and its privacy ledger, alone.

A release bundle (:mod:`dpgenome.export`) is a governance record: its ``results.json`` and
``dossier.html`` hold exact aggregates of the real members (their GWAS, allele frequencies,
phenotype marginals, the audits' figures), which the privacy guarantee does not cover and
which can themselves reveal membership (GWAS summary statistics: Homer et al. 2008). What
the guarantee covers is the synthetic cohort, and the ledger that states it. For open
publication :func:`publish` copies exactly those out of a bundle that verifies::

    PUBLIC/
      public-manifest.json  format, public id, the bundle manifest's SHA-256, how the
                            bundle's signature was checked, verdict, policy name and hash,
                            the (epsilon, delta) claim, SHA-256 and size of every other file
      public-manifest.sig   optional: base64 Ed25519 signature of public-manifest.json
      ledger.json           the release's privacy ledger (its mechanisms, for re-accounting)
      <data files>          the synthetic cohort, byte for byte as in the bundle

Nothing in the public copy is computed from the members' ids or the input files. The
bundle's release id is: a SHA-256 over the source cohort's fingerprint (itself a SHA-256 of
its sorted sample ids), an unkeyed hash of the member set that whoever knows or guesses
every member but one could recompute for each candidate, and so test whether a person is in
the cohort -- the membership test the guarantee is meant to prevent. The public copy is
tied to the bundle by the bundle manifest's SHA-256 instead (the manifest holds the hash of
``results.json``, exact aggregates no outsider can reproduce), and named by its public id
(:func:`public_release_id`: the bundle manifest's SHA-256 and the data files' hashes, which
anyone can recompute from the copy alone). Copies written before this carry the release id;
``dpgenome verify`` still accepts them, with a note.

Every data file's hash is the one the bundle's (signed) manifest records, so whoever holds
the bundle's manifest can tie the public copy to the approved release; ``dpgenome verify``
checks a public copy on its own (hashes, no added file, signature, public id, the ledger
re-accounted). Writing is atomic, as an export's.

What publishing trusts: the bundle's own manifest, unless the signer's key is given
(``public_key``). An unsigned bundle, or one checked only against the key its manifest
embeds, could have been rewritten consistently by anyone who could write to it (the CLI
warns; publishing it is not refused, as before). The policy copy decides whether the release
may be published at all, so a copy that calls itself by a shipped policy's name but is not
that policy (:func:`~dpgenome.verify.shipped_namesake`: a consortium policy edited to
``publication: {open: true}``) is refused unless a signature checked against the given key
pins it. A destination inside the bundle is refused: the bundle would no longer verify.
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
from dpgenome.bundle import (
    DOSSIER,
    MANIFEST,
    POLICY_COPY,
    PUBLIC_FORMAT,
    PUBLIC_MANIFEST,
    RESULTS,
    SIGNATURE,
    SYNTHETIC_DIR,
    check_destination,
    json_bytes,
    load_signing_key,
    move_into_place,
    outside_synthetic,
    read_bundle_json,
    shown_name,
    staging_directory,
    write_file,
    write_manifest,
)
from dpgenome.errors import InputError, ReleaseBlocked
from dpgenome.policy import parse_policy
from dpgenome.verify import (
    VerifyReport,
    check_listing,
    check_reaccount,
    check_signature,
    parse_manifest,
    policy_copy_recorded,
    shipped_namesake,
    verify_bundle,
)

PUBLIC_SCHEMA_VERSION = 1
PUBLIC_SIGNATURE, LEDGER = "public-manifest.sig", "ledger.json"
#: the bundle's files that hold real-data aggregates or governance records: never published
#: (only files the bundle's manifest gives the role "data" are)
RESTRICTED = (MANIFEST, SIGNATURE, RESULTS, DOSSIER, POLICY_COPY)


#: the public manifest's key that names an older public copy by its bundle's release id
#: (an unkeyed hash of the member ids: no longer written, still read)
OLD_RELEASE_ID = "release_id"


def public_release_id(bundle_manifest_sha256: str, data: Mapping[str, str]) -> str:
    """A public copy's name: SHA-256 over the bundle manifest's SHA-256 and the sorted
    (name, SHA-256) of its data files (``data``). Unlike the bundle's release id it hashes
    nothing computed from the members' ids or the input files, so it tests no one's
    membership; and it needs nothing but the public copy to recompute, so ``dpgenome verify``
    checks it. The same bundle published twice is one public id."""
    h = hashlib.sha256(b"dpgenome-public-release\x1f")
    h.update(bundle_manifest_sha256.encode())
    for name in sorted(data):
        h.update(f"\x1f{name}\x1e{data[name]}".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class PublishResult:
    path: Path
    #: :func:`public_release_id` of the copy
    public_id: str
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
    (:func:`~dpgenome.verify.verify_bundle`, against ``public_key`` when given: the signer's
    key, the trust root), holds no formal privacy guarantee, or a ``dest`` inside the bundle
    is an :class:`InputError`; a policy copy that does not allow open publication, or that
    calls itself by a shipped policy's name but is not it (unless the bundle's signature,
    checked against ``public_key``, pins it), is :class:`ReleaseBlocked`. Nothing is written
    then."""
    source = Path(bundle).expanduser()
    target = Path(dest).expanduser()
    _check_outside(source, target)
    check_destination(target)
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
    if not policy_copy_recorded(source / POLICY_COPY, policy, recorded.get("sha256")):
        raise InputError(
            "changed while the bundle was being published; nothing was published",
            file=source / POLICY_COPY,
        )
    pinned = public_key is not None and report.signature.startswith("valid (given public key)")
    namesake = shipped_namesake(policy)
    if namesake is not None and not pinned:
        raise ReleaseBlocked(
            f"the bundle's policy copy calls itself '{namesake}', a shipped policy, but differs "
            f"from dpgenome's policies/{namesake}.yaml, and "
            + (
                "the bundle is not signed"
                if report.signature == "absent"
                else "its signature was checked only against the key its own manifest carries"
            )
            + ": nothing but hashes anyone could rewrite shows which policy approved the "
            "release (a consortium copy edited to 'publication: {open: true}' would pass as "
            "the shipped one); nothing was published. A policy of your own needs a name of its "
            "own (export the release again under it); a bundle exported under an older "
            f"version of '{namesake}' can be exported again under the current one (it charges "
            "nothing new); a bundle signed by whoever approved that copy is published with "
            "their key (--public-key)",
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
    if manifest.get("verdict") != "APPROVE" or manifest.get("released_under_override"):
        # an override lets a release out to the people the policy names, not to everyone
        raise ReleaseBlocked(
            f"the release's verdict is {manifest.get('verdict')}"
            + (", released under an override" if manifest.get("released_under_override") else "")
            + ": only a release its policy approved is published openly; nothing was published",
            file=source / MANIFEST,
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
    stray = outside_synthetic(data)
    if stray:  # an older export packaged any layout: only the synthetic cohort goes out
        raise InputError(
            f"the bundle holds {len(stray)} data file(s) outside {SYNTHETIC_DIR}/ (e.g. "
            f"{shown_name(stray[0])}), which are not the synthetic cohort; nothing was published. "
            "Export "
            f"the release again from a directory holding only {SYNTHETIC_DIR}/ (the same "
            "release: nothing new is charged)",
            file=source / MANIFEST,
        )
    key = load_signing_key(signing_key) if isinstance(signing_key, str | Path) else signing_key
    bundle_signature = (
        "unsigned"
        if report.signature == "absent"
        else "given public key"
        if public_key is not None
        else "embedded key only"
    )

    tmp = staging_directory(target, "public release")
    try:
        listing: dict[str, dict[str, Any]] = {}
        for name in data:
            digest, size = write_file(tmp / name, source / name)
            if digest != manifest["files"][name].get("sha256"):  # changed since verified
                raise InputError(
                    "changed while the bundle was being published; nothing was published",
                    file=source / name,
                )
            listing[name] = {"sha256": digest, "bytes": size, "role": "data"}
        digest, size = write_file(tmp / LEDGER, json_bytes(ledger))
        listing[LEDGER] = {"sha256": digest, "bytes": size, "role": "ledger"}
        policy = manifest.get("policy") if isinstance(manifest.get("policy"), Mapping) else {}
        assert isinstance(policy, Mapping)
        public = {
            "format": PUBLIC_FORMAT,
            "schema_version": PUBLIC_SCHEMA_VERSION,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "dpgenome_version": __version__,
            "public_id": public_release_id(
                str(report.manifest_sha256),
                {name: listing[name]["sha256"] for name in data},
            ),
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
        public_id=str(public["public_id"]),
        files=tuple(sorted(listing)),
        manifest_sha256=hashlib.sha256(public_bytes).hexdigest(),
        signed=key is not None,
        bundle_signature=bundle_signature,
    )


def _check_outside(source: Path, target: Path) -> None:
    """Refuse the bundle itself as the destination: it would take files its manifest does
    not list and no longer verify (one inside it is refused by ``check_destination``)."""
    if target.resolve() == source.resolve():
        raise InputError(
            f"--out {target} is inside the bundle {source} (it is the bundle itself): the "
            "public copy would add files the bundle's manifest does not list, so the bundle "
            "would no longer verify; give a directory outside it. Nothing was written",
            file=target,
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
    check_signature(
        report, root, manifest, manifest_bytes, public_key, (PUBLIC_MANIFEST, PUBLIC_SIGNATURE)
    )
    if check_listing(report, root, manifest, (PUBLIC_MANIFEST, PUBLIC_SIGNATURE)) is None:
        return
    report.verdict_recorded = manifest.get("verdict")
    report.released_under_override = bool(manifest.get("released_under_override"))
    policy = manifest.get("policy")
    report.policy = policy.get("name") if isinstance(policy, Mapping) else None
    _check_public_id(report, manifest)
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
    check_reaccount(report, ledger, LEDGER)


def _check_public_id(report: VerifyReport, manifest: Mapping[str, Any]) -> None:
    """The public id, recomputed from the copy (:func:`public_release_id`). A copy written
    before public ids names itself by its bundle's release id instead: still accepted (its
    files and claim are checked as any copy's), with a note that the id is a hash of the
    member ids and how to replace the copy."""
    listing = manifest.get("files")
    data = {  # a hash that is not the file's is a problem of check_listing's already
        str(name): str(entry.get("sha256"))
        for name, entry in (listing.items() if isinstance(listing, Mapping) else ())
        if isinstance(entry, Mapping) and entry.get("role") == "data"
    }
    bundle_sha = manifest.get("bundle_manifest_sha256")
    if "public_id" in manifest:
        stated = manifest["public_id"]
        if not isinstance(bundle_sha, str):
            report.problems.append(
                f"{PUBLIC_MANIFEST}: its bundle manifest SHA-256 is {bundle_sha!r}, not text, "
                "so its public id cannot be recomputed"
            )
        elif stated != (derived := public_release_id(bundle_sha, data)):
            report.problems.append(
                f"{PUBLIC_MANIFEST}: public id {str(stated)[:12]} is not the one its bundle "
                f"manifest SHA-256 and data files give ({derived[:12]})"
            )
        if OLD_RELEASE_ID in manifest:
            report.problems.append(
                f"{PUBLIC_MANIFEST}: carries a release id beside its public id (dpgenome "
                "publish writes one or the other)"
            )
    elif OLD_RELEASE_ID in manifest:
        report.notes.append(
            f"{PUBLIC_MANIFEST}: an older public copy, named by its bundle's release id: a hash "
            "of the source cohort's fingerprint (the SHA-256 of its members' ids), so whoever "
            "knows every member but one can test whether a person is in the cohort. Publish the "
            "bundle again with this dpgenome (the copy then carries a public id instead) and "
            "withdraw this one"
        )
    else:
        report.problems.append(f"{PUBLIC_MANIFEST}: names no public id")
