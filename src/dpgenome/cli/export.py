"""``dpgenome export``, ``dpgenome verify`` and ``dpgenome ledger``.

Exit codes: 0 success; 2 user error (bad input, existing destination, unreadable key, and a
bundle that does not verify); 3 release blocked by the policy (also when the policy refuses
an override).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import click

from dpgenome.bundle import RESERVED, SYNTHETIC_DIR, outside_synthetic, shown_name
from dpgenome.errors import ConfigError, InputError, ReleaseBlocked, VerificationError
from dpgenome.export import export_bundle
from dpgenome.findings import fmt_claim
from dpgenome.io import read_cohort
from dpgenome.lifetime import (
    LifetimeLedger,
    check_individuals,
    default_db_path,
    distinct_ids,
    individuals_fingerprint,
)
from dpgenome.lifetime_compose import LifetimeTotal
from dpgenome.policy import Override
from dpgenome.verify import verify_bundle

_FIGURES = "figures"


def _collect(release_dir: Path) -> tuple[dict[str, Any], dict[str, Path], dict[str, str]]:
    """results.json, data files (everything else, relative paths kept) and figures/*.svg."""
    results_path = release_dir / "results.json"
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no results.json in the release directory", file=release_dir) from None
    except ValueError as err:
        raise InputError(f"not valid JSON: {err}", file=results_path) from None
    except OSError as err:  # a directory, unreadable
        raise InputError(f"cannot read it: {err.strerror or err}", file=results_path) from None
    if not isinstance(results, dict):
        raise InputError("results.json must hold one JSON object", file=results_path)
    files: dict[str, Path] = {}
    figures: dict[str, str] = {}
    for path in sorted(release_dir.rglob("*")):
        rel = path.relative_to(release_dir)
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        name = rel.as_posix()
        if rel.parts[0] == _FIGURES and path.suffix == ".svg":
            figures[path.stem] = path.read_text(encoding="utf-8")
        elif name not in RESERVED:
            files[name] = path
    if not files:
        raise InputError(
            "the release directory holds no data file besides results.json", file=release_dir
        )
    return results, files, figures


@click.command("export")
@click.argument("release_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Release policy: a YAML file, or a shipped policy's name (strict, consortium, internal).",
)
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Bundle directory to create."
)
@click.option("--override-reason", help="Release despite a BLOCK verdict, for this reason.")
@click.option("--signer", help="Name of the person signing the override.")
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ed25519 private key (PEM) to sign manifest.json.",
)
@click.option(
    "--lifetime-db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Lifetime privacy ledger (SQLite). Default: $DPGENOME_LIFETIME_DB or "
    "~/.dpgenome/lifetime.sqlite.",
)
@click.option(
    "--cohort",
    "source_cohort",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The source COHORT the release was made from: its sample ids (checked against "
    "results.json's cohort fingerprint) let the lifetime ledger charge this release to each "
    "individual, across every cohort that shares them. Not needed when the ledger already "
    "knows this cohort's individuals (an earlier release or export of it named them).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def export(
    release_dir: Path,
    policy_path: Path,
    out: Path,
    override_reason: str | None,
    signer: str | None,
    signing_key: Path | None,
    lifetime_db: Path | None,
    source_cohort: Path | None,
    as_json: bool,
) -> None:
    """Package RELEASE_DIR into a verifiable bundle at --out, if the policy approves.

    RELEASE_DIR holds results.json, the synthetic cohort files under synthetic/ (any layout
    beneath it; all are packaged, and nothing else may be) and optional figures/*.svg for the
    dossier. On BLOCK nothing is written and
    the exit code is 3. An override needs --override-reason and --signer and is refused by
    policies that allow none (exit 3).
    """
    if (override_reason is None) != (signer is None):
        raise click.UsageError("--override-reason and --signer must be given together")
    override = None
    if override_reason is not None and signer is not None:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        override = Override(override_reason, signer, now)
    from dpgenome.release import work_release  # the pipeline's imports: only here

    target = Path(out).resolve()
    if target == release_dir.resolve() or release_dir.resolve() in target.parents:
        raise InputError(
            "--out is inside RELEASE_DIR: the bundle would be packaged again by a later export "
            "of that directory; choose a directory outside it",
            file=out,
        )
    results, files, figures = _collect(release_dir)
    cohort = results.get("cohort")
    fingerprint = cohort.get("fingerprint") if isinstance(cohort, dict) else None
    # a work directory of `dpgenome release` (without a fingerprint export_bundle says so)
    work = work_release(release_dir, fingerprint) if isinstance(fingerprint, str) else None
    release_id = None
    if work is not None:
        files, release_id = dict(work[0]), work[1]
    stray = outside_synthetic(files)
    if stray and not any(name.startswith(f"{SYNTHETIC_DIR}/") for name in files):
        raise InputError(
            f"no {SYNTHETIC_DIR}/ folder: RELEASE_DIR must hold the synthetic cohort there "
            f"(as dpgenome synthesize writes it), beside results.json; nothing was exported",
            file=release_dir,
        )
    if stray:
        raise InputError(
            f"{len(stray)} file(s) of RELEASE_DIR outside {SYNTHETIC_DIR}/, e.g. "
            f"{shown_name(stray[0])}: a "
            f"bundle's data files are the synthetic cohort alone (under {SYNTHETIC_DIR}/), "
            "published as they are; move the others out (nothing was exported)",
            file=release_dir / stray[0],
        )
    ledger = LifetimeLedger(lifetime_db or default_db_path())
    individuals = None if source_cohort is None else _individuals(source_cohort, results)
    try:
        result = export_bundle(
            out,
            files=files,
            results=results,
            policy_path=policy_path,
            figures=figures,
            override=override,
            signing_key=signing_key,
            lifetime=ledger,
            release_id=release_id,
            individuals=individuals,
        )
    except ReleaseBlocked as err:
        if as_json and err.evaluation is not None:  # the summary still goes to stdout; exit 3
            blocked = {
                "bundle": None,
                "verdict": str(err.evaluation.verdict),
                "failing_rules": [f.rule for f in err.evaluation.failing],
                "released_under_override": False,
                "lifetime_db": str(ledger.path),
            }
            click.echo(json.dumps(blocked, indent=2))
        raise
    total = ledger.total(result.manifest["cohort_fingerprint"], replace_one=True)
    summary = {
        "bundle": str(result.path),
        "verdict": str(result.evaluation.verdict),
        "released_under_override": result.override is not None,
        "release_id": result.release_id,
        "manifest_sha256": result.manifest_sha256,
        "signed": result.signed,
        "files": len(result.manifest["files"]),
        "lifetime": total.to_dict(),
        "lifetime_db": str(ledger.path),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    verdict = str(result.evaluation.verdict) + (" (OVERRIDDEN)" if result.override else "")
    click.echo(f"{verdict}: bundle written to {result.path} ({summary['files']} files)")
    click.echo(f"manifest SHA-256: {result.manifest_sha256}{' (signed)' if result.signed else ''}")
    eps = _eps(total.epsilon)
    click.echo(
        f"lifetime privacy spent on this cohort: epsilon {eps}, delta {fmt_claim(total.delta)} "
        f"over {total.releases} release(s) ({ledger.path}){_basis(total)}{_replaced(total)}"
    )


def _individuals(cohort: Path, results: dict[str, Any]) -> list[str]:
    """The source cohort's sample ids, after checking it is the release's source."""
    ids = read_cohort(cohort).sample_ids
    fingerprint = (results.get("cohort") or {}).get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise InputError("results.json has no cohort.fingerprint to check --cohort against")
    try:
        return check_individuals(fingerprint, ids)
    except InputError as err:
        raise InputError(err.message, file=cohort) from None


def _link(book: LifetimeLedger, cohort: Path, as_json: bool) -> None:
    ids = read_cohort(cohort).sample_ids
    fingerprint = individuals_fingerprint(ids)
    releases = book.link(fingerprint, ids)
    if not releases:
        raise InputError(
            f"no release of this cohort (fingerprint {fingerprint[:12]}) is in the lifetime "
            f"ledger {book.path}: nothing to link",
            file=cohort,
        )
    n = len(distinct_ids(ids))
    summary = {"fingerprint": fingerprint, "individuals": n, "releases": releases}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"linked cohort {fingerprint[:12]}: {summary['individuals']} individuals, "
        f"{releases} release(s) now counted for them wherever they appear ({book.path})"
    )


def _basis(total: LifetimeTotal) -> str:
    """How the lifetime total was reached, after the figures."""
    basic = total.basic_epsilon
    added = (
        f" (composed; adding epsilons: {fmt_claim(basic)})"
        if basic is not None and math.isfinite(basic) and basic > total.epsilon
        else ""
    )
    if total.individuals is None:
        return (
            f"{added} -- by cohort fingerprint: the ledger does not know its individuals "
            "(dpgenome ledger --link COHORT)"
        )
    return f"{added} -- the most any one of its {total.individuals} individuals has spent"


def _eps(epsilon: float) -> str:
    """An epsilon as the command prints it: rounded up, or ∞ (no formal privacy)."""
    return "∞" if math.isinf(epsilon) else fmt_claim(epsilon)


def _replaced(total: LifetimeTotal) -> str:
    """The lifetime total between cohorts that replace one individual, as a sentence."""
    if not total.replace_one_accounted or total.releases == 0:
        return ""
    if total.replace_one is None:
        return "\n  replace one individual: no bound (group privacy's delta reaches 1)"
    eps, delta = total.replace_one
    return f"\n  replace one individual: epsilon {_eps(eps)}, delta {fmt_claim(delta)}"


@click.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ed25519 public key (PEM) the manifest must be signed with.",
)
@click.option(
    "--cohort",
    type=click.Path(file_okay=False, path_type=Path),
    help="The real cohort the release was made from: recompute every audit and fidelity "
    "figure of results.json from it and the bundle's synthetic cohort (all but the "
    "shadow-model and canary audits, which retrain) and report any that differ.",
)
@click.option(
    "--public-panel",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --cohort: the public panel the release used (default: its recorded path).",
)
@click.option(
    "--pheno-schema",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --cohort: the phenotype schema the release used (default: its recorded path).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(
    bundle: Path,
    public_key: Path | None,
    cohort: Path | None,
    public_panel: Path | None,
    pheno_schema: Path | None,
    as_json: bool,
) -> None:
    """Check a release bundle: every file's hash, the signature, the verdict, and the
    epsilon re-accounted from the privacy ledger's mechanisms. With --cohort, also
    recompute its audit and fidelity figures from the real cohort.

    Exit 0 when intact; exit 2 naming every changed, missing or added file (or, with
    --cohort, every figure that differs) otherwise.
    """
    if cohort is None and (public_panel is not None or pheno_schema is not None):
        raise ConfigError("--public-panel and --pheno-schema go with --cohort")
    report = verify_bundle(bundle, public_key=public_key)
    if cohort is not None:
        if report.kind != "bundle":
            raise ConfigError(
                "a published copy holds no results.json to recompute: give the release bundle",
                file=bundle,
            )
        if report.ok:
            from dpgenome.recheck import recheck_bundle

            rechecked = recheck_bundle(
                bundle, cohort, public_panel=public_panel, pheno_schema=pheno_schema
            )
            report.recheck = rechecked.to_dict()
            report.problems += [f"results.json: {m}" for m in rechecked.mismatches]
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"{report.kind}: {report.path}")
        if report.manifest_sha256 is not None:  # else nothing was read: the problems say why
            click.echo(f"files checked: {report.files_checked}")
            click.echo(f"signature: {report.signature}")
            judged = (
                "judged in the bundle it was published from"
                if report.kind != "bundle"
                else f"re-evaluated {report.verdict_reevaluated or 'not possible'}"
            )
            if report.verdict_recorded is not None:  # else the manifest could not be read
                click.echo(
                    f"verdict: recorded {report.verdict_recorded}, {judged} (policy "
                    f"{report.policy})"
                    + (" — released under an override" if report.released_under_override else "")
                )
            click.echo(f"manifest SHA-256: {report.manifest_sha256}")
        again = report.reaccounted
        if again is not None:
            click.echo(
                f"privacy ledger: epsilon {fmt_claim(again['stated'])} stated; its mechanisms "
                f"re-account to {fmt_claim(again['epsilon'])} at delta {fmt_claim(again['delta'])}"
                f" (Opacus RDP {fmt_claim(again['opacus_rdp'])}, dp-accounting PLD "
                f"{fmt_claim(again['pld'])})"
            )
            if "replace_one" in again:
                click.echo(
                    f"replace one individual: epsilon {fmt_claim(again['replace_one_stated'])} "
                    f"stated; re-accounts to {fmt_claim(again['replace_one'])}"
                )
        if report.recheck is not None:
            figures = report.recheck
            click.echo(
                f"recomputed from {figures['cohort']} and the synthetic cohort "
                f"({figures['synthetic_format']}): {figures['figures_checked']} figures, "
                f"{len(figures['mismatches'])} differ"
            )
            for where, why in figures["skipped"].items():
                click.echo(f"  not recomputed: {where} ({why})")
        elif cohort is not None:
            click.echo("not recomputed: the bundle does not verify")
        for problem in report.problems:
            click.echo(f"PROBLEM: {problem}")
        for note in report.notes:
            click.echo(f"note: {note}")
    if not report.ok:
        raise VerificationError(
            f"the {report.kind} does not verify ({len(report.problems)} problem(s)): "
            + "; ".join(report.problems),
            file=bundle,
        )
    if not as_json:
        click.echo(f"OK: the {report.kind} is intact.")
        if report.signature == "absent":
            click.echo(
                f"note: the {report.kind} is not signed, so this shows it was not changed by "
                "accident, not that it was not rewritten: whoever can write to it can change a "
                "file and its hash consistently. Sign releases (--signing-key) and verify with "
                "--public-key."
            )
        elif public_key is None:
            click.echo(
                f"note: the signature was checked against the public key the {report.kind} "
                "itself carries: whoever rewrites it can sign it again with a key of their own, "
                "or drop the signature. Give the signer's key (--public-key) to establish that "
                "the release is theirs."
            )


@click.command("publish")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Directory to create (outside the bundle).",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ed25519 public key (PEM) of the bundle's signer: the bundle must be signed with it "
    "(the trust root; without it the bundle vouches for itself).",
)
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ed25519 private key (PEM) to sign public-manifest.json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def publish(
    bundle: Path, out: Path, public_key: Path | None, signing_key: Path | None, as_json: bool
) -> None:
    """Copy the public part of a release bundle for open publication: its synthetic cohort
    and its privacy ledger, with a manifest of their hashes. The bundle's results.json and
    dossier.html (exact aggregates of the real members) and its policy stay behind.

    The bundle must verify (as `dpgenome verify`, against --public-key when given), and its
    policy must allow open publication (`publication: {open: true}`, as the shipped strict
    policy does); `dpgenome verify OUT` checks the copy. Without --public-key the bundle's
    integrity rests on its own manifest (a warning on stderr says so). Exit 0 when written;
    exit 3, writing nothing, when the bundle's policy does not allow open publication, or
    its policy copy calls itself by a shipped policy's name but is not that policy (unless
    the bundle is signed and checked with --public-key); exit 2, writing nothing, when the
    bundle does not verify (or is not signed with --public-key), holds no formal privacy
    guarantee, OUT is inside the bundle, or OUT exists and is not empty.
    """
    from dpgenome.publish import publish as publish_release

    result = publish_release(bundle, out, public_key=public_key, signing_key=signing_key)
    # on stderr, so a --json summary stays parseable and a script's log still shows it
    if result.bundle_signature == "unsigned":
        click.echo(
            "warning: the source bundle is not signed: its integrity rests on the SHA-256 "
            "hashes in its own manifest.json, which anyone who could write to it could have "
            "rewritten with the files (a changed synthetic cohort, ledger or policy would "
            "verify). Sign bundles at export (--signing-key) and publish with the signer's "
            "key (--public-key).",
            err=True,
        )
    elif result.bundle_signature == "embedded key only":
        click.echo(
            "warning: the source bundle's signature was checked only against the public key "
            "its own manifest carries, so it does not show who signed it: anyone who altered "
            "the bundle could have re-signed it with a key of their own. Give the signer's key "
            "with --public-key.",
            err=True,
        )
    summary = {
        "path": str(result.path),
        "public_id": result.public_id,
        "files": list(result.files),
        "public_manifest_sha256": result.manifest_sha256,
        "signed": result.signed,
        "bundle_signature": result.bundle_signature,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"published: {result.path} ({len(result.files)} files, public id {result.public_id})"
    )
    click.echo(f"public-manifest.json SHA-256: {result.manifest_sha256}")
    if not result.signed:
        click.echo(
            "note: the public copy is not signed; publish its manifest's SHA-256 through "
            "another channel, or sign it with --signing-key."
        )


@click.command("ledger")
@click.option(
    "--db",
    "--lifetime-db",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Lifetime ledger, as given to release and export as --lifetime-db (default: "
    "$DPGENOME_LIFETIME_DB or ~/.dpgenome/lifetime.sqlite).",
)
@click.option(
    "--fingerprint",
    help="Only this cohort: its fingerprint, or a prefix of it such as the 12 characters "
    "the listing shows.",
)
@click.option(
    "--link",
    "link_cohort",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Link the releases of this source COHORT that were recorded without its individuals "
    "(exported without --cohort, or by a dpgenome before per-individual accounting): its "
    "sample ids are stored as keyed tokens, so they count for its people in every cohort "
    "that shares them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ledger(
    db: Path | None, fingerprint: str | None, link_cohort: Path | None, as_json: bool
) -> None:
    """List past releases and the lifetime privacy spent per source cohort.

    A cohort's lifetime epsilon is the most any one of its individuals has spent, over every
    release that included them (of this cohort or of another sharing them), when the ledger
    knows its individuals; otherwise the sum over the releases of its fingerprint."""
    book = LifetimeLedger(db or default_db_path())
    if link_cohort is not None:
        _link(book, link_cohort, as_json)
        return
    rows = book.releases()
    if fingerprint is not None:
        prefix = fingerprint.strip().lower()
        rows = [r for r in rows if prefix and r.fingerprint.startswith(prefix)]
    cohorts = sorted({r.fingerprint for r in rows})
    totals = [book.total(fp, replace_one=True) for fp in cohorts]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "db": str(book.path),
                    "releases": [r.to_dict() for r in rows],
                    "cohorts": [t.to_dict() for t in totals],
                },
                indent=2,
            )
        )
        return
    if not rows:
        which = f" for cohort {fingerprint}" if fingerprint is not None else ""
        click.echo(f"no release recorded{which} in {book.path}")
        return
    click.echo(f"lifetime ledger: {book.path}")
    header = f"{'created (UTC)':<25} {'cohort':<14} {'epsilon':>8} {'delta':>9} {'policy':<11} {'verdict':<18} {'status':<11} bundle"  # noqa: E501
    click.echo(header)
    for r in rows:
        verdict = r.verdict + (" (override)" if r.overridden else "")
        eps = _eps(r.epsilon)
        click.echo(
            f"{r.created_utc:<25} {r.fingerprint[:12]:<14} {eps:>8} {fmt_claim(r.delta):>9} "
            f"{r.policy or '-':<11} {verdict or '-':<18} {r.status:<11} {r.bundle}"
        )
        if len(r.history) > 1:  # every verdict it was given: blocks, overrides, re-exports
            for e in r.history:
                given = e.verdict + (" (override)" if e.overridden else "")
                to = f" to {e.bundle}" if e.bundle else ""
                click.echo(f"  {e.at_utc:<23} {e.policy:<11} {given:<18} {e.outcome}{to}")
    for t in totals:
        eps = _eps(t.epsilon)
        click.echo(
            f"cohort {t.fingerprint[:12]}: {t.releases} release(s), lifetime epsilon {eps}, "
            f"delta {fmt_claim(t.delta)}{_basis(t)}{_replaced(t)}"
        )
