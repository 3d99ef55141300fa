"""Verification of a release bundle: the check an auditor runs on a bundle they received.

:func:`verify_bundle` re-hashes every file, rejects missing and unlisted files, checks the
signature, re-accounts the privacy ledger from its mechanisms, checks the dossier
(:mod:`dpgenome.verify_dossier`) and re-evaluates ``results.json`` against ``policy.yaml``
with the recorded context to confirm the recorded verdict. Without a signature, a consistent
rewrite of manifest.json itself cannot be detected: sign bundles that leave your hands, or
publish the manifest's SHA-256 (printed by the export) through another channel.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dpgenome.accountant import reaccount, reaccount_replace_one
from dpgenome.bundle import (
    BUNDLE_FORMAT,
    MANIFEST,
    MANIFEST_SCHEMA_VERSION,
    POLICY_COPY,
    PUBLIC_MANIFEST,
    RESULTS,
    SIGNATURE,
    SYNTHETIC_DIR,
    is_plain_relative,
    load_public_key,
    outside_synthetic,
    public_pem,
    read_bundle_json,
    sha256_file,
    shown_name,
)
from dpgenome.errors import DpgenomeError, InputError, PolicyError
from dpgenome.findings import EvaluationContext, Verdict, fmt, fmt_claim
from dpgenome.jsonvalues import is_number, json_kind
from dpgenome.policy import Policy, evaluate, parse_policy
from dpgenome.release_id import (
    SYNTHETIC_FINGERPRINT,
    default_release_id,
    named_synthetic,
    results_release_id,
    synthetic_contents,
    synthetic_mismatches,
    synthetic_release_id,
    unnamed_synthetic_version,
)
from dpgenome.verify_dossier import check_dossier

#: how far above the stated epsilon the re-accounted one may be: the same accountants on the
#: same mechanisms give the same figure, the tolerance only absorbs floating point across
#: platforms
_REACCOUNT_RTOL = 1e-6


def understated(ledger: Mapping[str, Any], again: Mapping[str, float]) -> str | None:
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


def replace_one_understated(ledger: Mapping[str, Any]) -> tuple[str | None, dict[str, float]]:
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


def check_signature(
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
        entry, shown = listing[name], shown_name(name)
        if not is_plain_relative(name):
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
        shown = shown_name(rel)
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
    check_signature(report, root, manifest, manifest_bytes, key)

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
        if not (is_number(got) and is_number(asked)):
            continue  # no formal privacy, "auto", or not recorded
        if not math.isclose(float(got), float(asked), rel_tol=1e-9):
            report.problems.append(
                f"{RESULTS}: its privacy ledger is {what} {got:g}, but its recorded "
                f"configuration asks {asked:g} (a ledger of another run?)"
            )


def check_reaccount(report: VerifyReport, ledger: Any, where: str = RESULTS) -> None:
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
    problem = understated(ledger, again)
    if problem is not None:
        report.problems.append(f"{where}: {problem}")
    problem, figures = replace_one_understated(ledger)
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
            f"{RESULTS}: changed or corrupt (the results document is {json_kind(results)}, "
            "not a JSON object)"
        )
        return
    recorded = manifest.get("evaluation")
    if not isinstance(recorded, Mapping):
        report.problems.append(
            f"{MANIFEST}: changed or corrupt (its evaluation is {json_kind(recorded)}, "
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
            f"{MANIFEST}: changed or corrupt (its evaluation findings are {json_kind(findings)}, "
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
    if named_synthetic(results):
        # results naming their synthetic cohort come from an export that packs it alone
        report.problems += [
            f"{shown_name(name)}: a data file outside {SYNTHETIC_DIR}/, not part of the "
            "synthetic cohort (publish would copy it out)"
            for name in outside_synthetic(data)
        ]
    check_reaccount(report, results.get("ledger"))
    _check_ledger_config(report, results)
    check_dossier(report, root, manifest, results)
    if again.verdict is Verdict.BLOCK:
        override = manifest.get("override")
        if not manifest.get("released_under_override") or not isinstance(override, Mapping):
            report.problems.append(f"{MANIFEST}: a BLOCKED release without a recorded override")
        elif not policy.overrides_allowed:
            report.problems.append(
                f"{MANIFEST}: released under an override that {POLICY_COPY} does not allow"
            )


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
    if named_synthetic(results) is not None:
        return  # named, but no cohort fingerprint to derive the id from (re-evaluation's)
    field_name = ".".join(SYNTHETIC_FINGERPRINT)
    version = unnamed_synthetic_version(results)
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
    contents = synthetic_contents(data)
    lossless = [fp for _, fmt_name, fp in contents if fmt_name not in (None, "plink")]
    if fingerprint and any(recorded == synthetic_release_id(fingerprint, fp) for fp in lossless):
        return None
    plink_only = contents and not lossless and all(f == "plink" for _, f, _ in contents)
    return (
        "is neither the hash of the bundle's data files nor the id of the synthetic cohort "
        "they hold (the files of another release?)" + (_HARD_CALLS_ONLY if plink_only else "")
    )
