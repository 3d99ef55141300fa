"""``dpgenome synthesize``: a DP synthetic cohort and its privacy ledger."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
import numpy as np

from dpgenome.cli.options import (
    SEED,
    allele_order_option,
    ancestry_pcs_option,
    genotype_missingness_option,
)

if TYPE_CHECKING:
    from dpgenome.cohort import Cohort
    from dpgenome.lifetime import LifetimeLedger

log = logging.getLogger(__name__)


def _parse_epsilon(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from dpgenome.config import parse_epsilon

    return parse_epsilon(value)


def _previous_output(out: Path) -> bool:
    """A directory this command wrote before (its ledger.json and synthesis.json beside the
    cohort): re-running into it replaces it whole, atomically."""
    return (out / "ledger.json").is_file() and (out / "synthesis.json").is_file()


def _check_out(out: Path, inputs: dict[str, str | None]) -> None:
    """Refuse, before any training, an --out that would replace files it did not write: one
    that is (or contains) an input cohort or panel, or a non-empty directory other than an
    earlier synthesize output."""
    from dpgenome.errors import InputError
    from dpgenome.io.files import check_writable

    target = out.resolve()
    for what, given in inputs.items():
        if given is None:
            continue
        source = Path(given).resolve()
        if target == source or target in source.parents:
            raise InputError(
                f"--out is or contains the {what} ({given}): writing there would replace it; "
                "choose another directory",
                file=out,
            )
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not _previous_output(out))):
        raise InputError(
            "the output directory exists and is not empty, and is not an earlier synthesize "
            "output (ledger.json, synthesis.json); a synthetic cohort is never written over "
            "other files (choose a new --out)",
            file=out,
        )
    check_writable(out, "output directory")


@click.command()
@click.argument("cohort", type=click.Path(exists=True, file_okay=False))
@click.option("--pheno", required=True, help="Analysis phenotype (numeric: 0/1 or continuous).")
@click.option("--covar", "covars", multiple=True, help="Covariate of the analysis (repeatable).")
@click.option(
    "--epsilon",
    required=True,
    callback=_parse_epsilon,
    help="Target epsilon of the whole release, or 'inf' (no formal privacy).",
)
@click.option(
    "--delta",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="Delta of the release [default: 1/n^1.1, n = training samples].",
)
@click.option(
    "--seed",
    type=SEED,
    default=0,
    show_default=True,
    help="Seed of the synthesis's random draws; the DP noise comes from a fresh secret in "
    "every run, not from the seed.",
)
@click.option(
    "--n",
    "n_synth",
    type=click.IntRange(1),
    default=None,
    help="Synthetic cohort size [default: the number of training samples].",
)
@click.option(
    "--public-panel",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="A public reference panel COHORT (same SNP map): pretraining, free of "
    "privacy cost (e.g. DIR/public of `dpgenome simulate --public-panel N`).",
)
@ancestry_pcs_option
@click.option(
    "--pheno-schema",
    type=click.Path(dir_okay=False),
    default=None,
    help="Phenotype schema YAML: the public types and domains of columns outside the CFW "
    "schema (dpgenome.phenoschema); columns it leaves out are typed from the data.",
)
@click.option(
    "--secure-mode/--no-secure-mode",
    default=None,
    help="Every mechanism's noise from the OS CSPRNG: the Gaussian, Laplace and exponential "
    "mechanisms sampled exactly in integer arithmetic (discrete Gaussian, integer part of "
    "Laplace noise, exact rejection sampling; dpgenome.noise), immune to floating-point "
    "attacks; DP-SGD's noise and Poisson batches from os.urandom (four summed Gaussians, as "
    "Opacus's secure mode). On by default (off only where DPGENOME_NOISE_SEED fixes the noise "
    "for tests); --no-secure-mode uses numpy's floating-point samplers (faster).",
)
@allele_order_option("auto")
@genotype_missingness_option
@click.option(
    "--holdout",
    "holdout_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Real ids NOT to train on, one per line (as `dpgenome audit --holdout` takes them): "
    "the non-members an audit of the output compares the members with. Default: every "
    "QC-passing sample trains.",
)
@click.option(
    "--lifetime-db",
    type=click.Path(dir_okay=False),
    default=None,
    help="Lifetime ledger (SQLite) charged with this synthetic cohort, as release and export "
    "charge theirs (default: $DPGENOME_LIFETIME_DB, else ~/.dpgenome/lifetime.sqlite).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory to write: the synthetic cohort (input's format) + ledger.json.",
)
def synthesize(
    cohort: str,
    pheno: str,
    covars: tuple[str, ...],
    epsilon: float,
    delta: float | None,
    seed: int,
    n_synth: int | None,
    public_panel: str | None,
    ancestry_pcs: int | Literal["auto"],
    pheno_schema: str | None,
    secure_mode: bool | None,
    allele_order: str,
    genotype_missingness: bool,
    holdout_path: str | None,
    lifetime_db: str | None,
    out: str,
) -> None:
    """Train the DP synthesizer on COHORT and write a synthetic cohort (fresh sample ids, the
    same QC-passing SNPs, every phenotype column) with its privacy ledger to OUT.

    QC (Parker et al. 2016 thresholds) is applied, then the samples with PHENO and every
    covariate observed are kept: all of them train the synthesizer, except the ids listed in
    --holdout (to audit the output with `dpgenome audit --holdout` the same list; `dpgenome
    release` splits members and holdout itself).

    Under DP the synthetic cohort is charged to the lifetime ledger before it is written, to
    every individual of COHORT (status ``synthesized``): it is a release wherever it goes
    next. A run without formal privacy is not charged (nothing would bound it) and says so."""
    from dpgenome.cohort import (
        align_panel,
        analysis_subset,
        in_allele_order,
        public_allele_map,
        qc,
        require_separate_panel,
    )
    from dpgenome.findings import fmt_claim
    from dpgenome.gwas import require_full_rank
    from dpgenome.io import detect_format, read_cohort, write_cohort
    from dpgenome.io.files import atomic_directory
    from dpgenome.io.pheno import find_pheno
    from dpgenome.lifetime import LifetimeLedger, default_db_path
    from dpgenome.phenoschema import (
        read_pheno_schema,
        warn_values_encoded_as_missing,
        with_schema_types,
    )
    from dpgenome.phenotypes import PhenotypeConfig
    from dpgenome.synthesize import SynthConfig
    from dpgenome.synthesize import synthesize as run

    _check_out(Path(out), {"input cohort": cohort, "public panel": public_panel})
    if ancestry_pcs != "auto" and ancestry_pcs and public_panel is None:
        raise click.UsageError("--ancestry-pcs K needs --public-panel (the panel's ancestry axes)")
    book = LifetimeLedger(lifetime_db or default_db_path())
    if math.isfinite(epsilon):
        book.check_writable()  # before minutes of training
    declared = None if pheno_schema is None else read_pheno_schema(pheno_schema)
    fmt = detect_format(cohort)
    panel = None if public_panel is None else read_cohort(public_panel)
    raw = read_cohort(cohort)
    if declared is not None:
        raw = declared.apply(raw)
    raw = with_schema_types(raw, PhenotypeConfig(declared=declared))
    # under DP the SNPs kept are chosen from public data only (the panel's frequencies)
    real, report = qc(raw, dp=math.isfinite(epsilon), public=panel)
    # the synthetic map's allele order: an input order read off the genotypes fails now
    order, allele_map = public_allele_map(
        allele_order, raw, panel, private=math.isfinite(epsilon), file=raw.source
    )
    members = analysis_subset(real, pheno, list(covars), report)
    n_listed = n_left_out = 0
    if holdout_path is not None:
        from dpgenome.cli.audit import read_holdout_ids
        from dpgenome.cohort import split_from_holdout_ids

        ids, lines = read_holdout_ids(holdout_path)
        split_from_holdout_ids(raw, ids, file=holdout_path, lines=lines)  # every id is known
        n_listed = len(ids)
        keep = ~np.isin(members.sample_ids.astype(str), ids)
        n_left_out = int((~keep).sum())  # the others were not among them (QC, missing pheno)
        members = members.take_samples(np.flatnonzero(keep))
    # a constant or redundant covariate: named now, not after training
    require_full_rank(
        members,
        pheno,
        list(covars),
        file=find_pheno(Path(cohort)) if Path(cohort).is_dir() else None,
    )
    for line in report.lines():
        log.info("QC: %s", line)
    observed = f"with {pheno}{' and ' + ', '.join(covars) if covars else ''} observed"
    click.echo(
        f"training on all {members.n_samples} QC-passing samples {observed} "
        f"({members.n_variants} SNPs); no holdout"
        if holdout_path is None
        else f"training on {members.n_samples} QC-passing samples {observed} "
        f"({members.n_variants} SNPs); the {n_listed} ids of {holdout_path} held out "
        f"({n_left_out} of them were among those samples)"
    )
    public = None if panel is None else align_panel(panel, members.variants)
    if public is not None:  # every QC-passing sample, whether trained on or held out
        require_separate_panel(public, real)  # the same SNPs as the members
    config = SynthConfig(
        pheno=pheno,
        covariates=tuple(covars),
        epsilon=epsilon,
        delta=delta,
        seed=seed,
        n_synth=n_synth,
        secure_mode=secure_mode,
        ancestry_pcs=ancestry_pcs,
        phenotypes=PhenotypeConfig(declared=declared),
        genotype_missingness=genotype_missingness,
    )
    warn_values_encoded_as_missing(members, config.phenotypes)
    result = run(members, config, public, echo=lambda line: click.echo(line, err=True))
    result.cohort = in_allele_order(result.cohort, allele_map)
    result.details["allele_order"] = order
    ledger = result.ledger.to_dict()
    private = not result.ledger.no_formal_privacy
    if private:  # run times move with the members' data (a sampler's rejections): log only
        log.info("timings (s): %s", {k: round(v, 1) for k, v in result.timings.items()})
    summary = {
        "ledger": ledger,
        "config": result.config.record(),
        # beside the synthetic cohort, which may be shared: no member statistic outside the
        # ledger, so no run time under DP
        "timings_s": None if private else result.timings,
        "details": result.details,
        "training_samples": members.n_samples,
        # how many ids --holdout listed (0: every QC-passing sample trained), for `audit`
        "holdout_ids_listed": n_listed,
        "public_panel": public_panel,
        "pheno_schema": None if declared is None else declared.record(),
        # under DP the SNPs kept follow public data; how many samples each step dropped (a
        # missing phenotype, say) is a count of the members outside the ledger: logged only
        "qc": [s for s in report.to_dict() if not private or s["unit"] != "samples"],
    }
    charged = _charge(book, raw, result.cohort, ledger, pheno, Path(out))
    # a directory that appeared during training is refused by atomic_directory
    with atomic_directory(out, overwrite=_previous_output(Path(out))) as tmp:
        write_cohort(result.cohort, tmp, fmt, overwrite=True)
        for name, payload in (("ledger.json", ledger), ("synthesis.json", summary)):
            (tmp / name).write_text(
                json.dumps(payload, indent=2, allow_nan=False, default=str) + "\n"
            )
    eps = ledger["epsilon"]
    label = (
        "no formal privacy"
        if eps is None or not math.isfinite(eps)
        else (f"epsilon = {fmt_claim(eps)}, delta = {fmt_claim(ledger['delta'])}")
    )
    click.echo(
        f"wrote {result.cohort.n_samples} synthetic samples x {result.cohort.n_variants} SNPs "
        f"({fmt}) and ledger.json to {out} ({label}); {charged}"
    )


def _charge(
    book: LifetimeLedger,
    source: Cohort,
    synthetic: Cohort,
    ledger: dict[str, Any],
    pheno: str,
    out: Path,
) -> str:
    """Record the synthetic cohort in the lifetime ledger ``book`` as a release of every
    individual of ``source`` (as read, before QC, as ``release`` charges them), before
    anything is written: a failure is an :class:`InputError` and nothing is written. Returns
    what the closing line says about the charge."""
    from dpgenome.errors import DpgenomeError, InputError
    from dpgenome.lifetime import individuals_fingerprint
    from dpgenome.lifetime_compose import ReleaseBudget
    from dpgenome.release_id import synthetic_release_id

    epsilon = ledger["epsilon"]
    if epsilon is None or not math.isfinite(epsilon):
        return "not charged to the lifetime ledger: it has no formal privacy to bound"
    delta = float(ledger["delta"])
    fingerprint = individuals_fingerprint(source.sample_ids)
    release_id = synthetic_release_id(fingerprint, synthetic.fingerprint())
    try:
        new = book.record(
            fingerprint,
            float(epsilon),
            delta,
            release_id,
            status="synthesized",
            bundle=str(out.resolve()),
            pheno=pheno,
            individuals=source.sample_ids,
            mechanisms=ReleaseBudget.of(float(epsilon), delta, ledger).mechanisms,
        )
    except (DpgenomeError, OSError) as err:
        why = err.message if isinstance(err, DpgenomeError) else (err.strerror or str(err))
        raise InputError(
            f"recording the synthetic cohort in the lifetime ledger failed ({why}); nothing "
            "was written: fix the ledger and run again",
            file=book.path,
        ) from None
    return (
        f"charged to the lifetime ledger {book.path} (release {release_id[:12]})"
        if new
        else f"already in the lifetime ledger {book.path} (release {release_id[:12]})"
    )
