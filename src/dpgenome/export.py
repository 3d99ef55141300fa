"""Policy-gated, atomic export of a release bundle.

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
destination, which is then renamed onto it in one ``rename(2)`` (:mod:`dpgenome.bundle`). A
process killed at any point leaves either no bundle or the complete bundle; leftovers of
killed exports (``.<name>.partial-<pid>-<token>``) are removed by the next export to the same
place. An existing non-empty destination is never overwritten
(:class:`~dpgenome.errors.InputError`). :func:`dpgenome.verify.verify_bundle` checks a bundle
once written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import math
import secrets
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dpgenome import __version__
from dpgenome.accountant import reaccount
from dpgenome.bundle import (
    BUNDLE_FORMAT,
    DOSSIER,
    MANIFEST,
    MANIFEST_SCHEMA_VERSION,
    POLICY_COPY,
    RESULTS,
    SIGNATURE,
    SYNTHETIC_DIR,
    check_destination,
    check_name,
    json_bytes,
    load_signing_key,
    move_into_place,
    outside_synthetic,
    shown_name,
    staging_directory,
    write_file,
    write_manifest,
)
from dpgenome.dossier import render_dossier
from dpgenome.errors import ConfigError, DpgenomeError, InputError, ReleaseBlocked
from dpgenome.findings import Evaluation, EvaluationContext, Verdict, fmt_claim
from dpgenome.lifetime import LifetimeLedger, check_individuals
from dpgenome.lifetime_compose import LifetimeTotal, ReleaseBudget
from dpgenome.policy import Override, Policy, describe_failing, evaluate, load_policy
from dpgenome.release_id import (
    SYNTHETIC_FINGERPRINT,
    cohort_fingerprint,
    default_release_id,
    results_release_id,
    synthetic_mismatches,
    unnamed_synthetic_version,
)
from dpgenome.verify import replace_one_understated, understated

log = logging.getLogger(__name__)


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
        (understated(ledger, again), "ledger.epsilon"),
        (replace_one_understated(ledger)[0], "ledger.replace_one.epsilon"),
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
    fingerprint = cohort_fingerprint(results)
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
    names = {check_name(n): src for n, src in files.items()}
    stray = outside_synthetic(names)
    if stray:
        raise InputError(
            f"{len(stray)} data file(s) outside {SYNTHETIC_DIR}/ "
            f"({', '.join(map(shown_name, stray[:5]))}"
            f"{', ...' if len(stray) > 5 else ''}): a bundle's data files are the synthetic "
            "cohort alone, published as they are; nothing was exported"
        )
    check_destination(dest)
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
        results_bytes = json_bytes(results)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"the results document is not plain JSON ({err}); write missing or infinite "
            "values as null"
        ) from None
    epsilon, delta = _epsilon_delta(results)
    _refuse_understated(results.get("ledger"), epsilon)
    unnamed = unnamed_synthetic_version(results)
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
            digest, size = write_file(tmp / name, names[name])
            listing[name] = {"sha256": digest, "bytes": size, "role": "data"}
        for name, data, role in (
            (RESULTS, results_bytes, "results"),
            (DOSSIER, dossier.encode(), "dossier"),
            (POLICY_COPY, policy_bytes, "policy"),
        ):
            digest, size = write_file(tmp / name, data)
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
