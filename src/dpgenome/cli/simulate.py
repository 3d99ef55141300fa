"""``dpgenome simulate``: write a CFW-like simulated cohort (the embedded default input)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import click

from dpgenome.cli.options import SEED, missing_calls_option
from dpgenome.errors import ConfigError
from dpgenome.io.files import write_json_atomic

log = logging.getLogger(__name__)


def _parse_chromosomes(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ConfigError(f"--chromosomes {text!r} names no chromosome; use e.g. 5,11")
    return names


def parse_numbers(text: str | None, option: str, example: str) -> tuple[float, ...] | None:
    """A comma-separated list of numbers given to ``option`` (None when not given)."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} {text!r} must be numbers, e.g. {example}") from None


#: Above this many bytes of float32 dosages the cohort is written one chromosome at a time.
SHARD_BYTES = 4 * 2**30


@click.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, dir_okay=True),
    help="Cohort directory to write (must not exist or be empty, unless --overwrite).",
)
@click.option(
    "--n",
    "n",
    type=click.IntRange(10),
    default=1092,
    show_default=True,
    help="Number of mice. 1092 uses the real phenotype table row for row.",
)
@click.option(
    "--seed",
    type=SEED,
    default=1,
    show_default=True,
    help="Seed of every random draw (same seed, same cohort).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parker", "plink", "vcf"]),
    default="parker",
    show_default=True,
    help="File format of the genotypes.",
)
@click.option(
    "--public-panel",
    "n_public",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Also write a public reference panel of this many other mice of the same "
    "simulated colony (genotypes only, own ids) to OUT/public/.",
)
@click.option(
    "--chromosomes",
    default=None,
    metavar="LIST",
    help="Comma-separated autosomes to simulate (e.g. 5,11); default all 19.",
)
@click.option(
    "--imputed-fraction",
    type=click.FloatRange(0.0, 0.49),
    default=0.03,
    show_default=True,
    help="Share of dosages made non-integer (uncertain calls); 0 = hard calls.",
)
@missing_calls_option(
    "Mean share of genotype calls missing (NA), uneven across mice and SNPs as on a "
    "genotyping array; the public panel misses calls at the same SNPs. 0 = complete."
)
@click.option(
    "--shard/--no-shard",
    default=None,
    help="Write one cohort directory per chromosome (OUT/chr<k>/, genotypes only) "
    "with OUT/pheno.csv, holding one chromosome in memory at a time. Default: on "
    "when the dosages would exceed 4 GiB (e.g. n = 50,000).",
)
@click.option(
    "--calibrate-lead",
    type=click.Choice(["auto", "variance", "pvalue", "off"]),
    default="auto",
    show_default=True,
    help="How the planted loci are sized: 'variance' keeps the real lead's variance "
    "explained (p scales with n), 'pvalue' aims at the real lead p (a small cohort may "
    "fall short: a locus explains at most 60% of the liability; the command says so, and "
    "truth.json records target and reached chi^2), 'off' uses fixed variances; 'auto' is "
    "'pvalue' below 1,092 mice and 'variance' from 1,092 up.",
)
@click.option(
    "--colonies",
    type=click.IntRange(1, 99),
    default=1,
    show_default=True,
    help="Population structure across chromosomes: the colony split into this many "
    "sub-colonies 30 generations ago, shared by every chromosome's genealogy (1 = one colony, "
    "as CFW). The public panel's mice are in them by equal shares.",
)
@click.option(
    "--colony-shares",
    default=None,
    metavar="LIST",
    help="The cohort's shares of the sub-colonies, e.g. 0.75,0.25 [default: equal].",
)
@click.option(
    "--colony-effects",
    default=None,
    metavar="LIST",
    help="A stratified abBMD: each sub-colony's shift of the trait's liability in liability "
    "sds, e.g. 0,0.5 [default: none].",
)
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def simulate(
    out: str,
    n: int,
    seed: int,
    fmt: str,
    n_public: int,
    chromosomes: str | None,
    imputed_fraction: float,
    missing_calls: float,
    shard: bool | None,
    calibrate_lead: str,
    colonies: int,
    colony_shares: str | None,
    colony_effects: str | None,
    overwrite: bool,
) -> None:
    """Simulate a CFW-like outbred-mouse cohort into directory OUT: msprime genotypes at
    the real CFW SNP panel, the real (n = 1092) or modelled phenotype rows, and an abBMD
    trait planted at the real loci (chromosomes 11 and 5). Writes the genotypes in the chosen
    format with pheno.csv, and truth.json (the causal variants and the liability model)."""
    from dpgenome.io import write_cohort
    from dpgenome.io.files import atomic_directory
    from dpgenome.simulate import AUTOSOMES, SimConfig, load_panel, simulate_stream

    config = SimConfig(
        n=n,
        seed=seed,
        n_public=n_public,
        imputed_fraction=imputed_fraction,
        missing_calls=missing_calls,
        chromosomes=_parse_chromosomes(chromosomes) or AUTOSOMES,
        calibrate_lead=calibrate_lead,
        colonies=colonies,
        colony_shares=parse_numbers(colony_shares, "--colony-shares", "0.75,0.25"),
        colony_effects=parse_numbers(colony_effects, "--colony-effects", "0,0.5"),
    ).validate()
    panel = load_panel()
    n_variants = int(panel["chr"].isin(config.chromosomes).sum())
    if shard is None:
        shard = 4 * n_variants * max(n, n_public) > SHARD_BYTES
        if shard:
            click.echo(
                f"{n} x {n_variants} dosages exceed 4 GiB: writing one directory per "
                "chromosome (OUT/chr<k>/) and OUT/pheno.csv",
                err=True,
            )
    start = time.perf_counter()
    stream = simulate_stream(config)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        if shard:
            _write_shards(stream, tmp, fmt, write_cohort)
        else:
            result = stream.assemble()
            write_cohort(result.cohort, tmp, fmt, overwrite=True)
            if result.public is not None:
                write_cohort(result.public, tmp / "public", fmt)
        write_json_atomic(tmp / "truth.json", stream.truth)
    log.info("simulated and wrote %d x %d in %.1f s", n, n_variants, time.perf_counter() - start)
    for locus in stream.truth.get("loci", []):
        target, reached = locus.get("target_lead_chi2"), locus.get("lead_chi2")
        if target and reached is not None and reached < 0.9 * target:
            click.echo(
                f"note: the chr{locus['chrom']} locus reaches a lead chi^2 of {reached:.1f}, "
                f"short of its target {target:.1f} (the real lead's p at n = {n}): at this "
                "size a locus cannot explain enough of the liability (see truth.json)",
                err=True,
            )
    click.echo(
        f"wrote {n} mice x {n_variants} SNPs ({fmt}) to {out}"
        + (f", public panel of {n_public} to {Path(out) / 'public'}" if n_public else "")
    )


def _write_shards(stream: Any, directory: Path, fmt: str, write_cohort: Any) -> None:
    """One genotype-only cohort per chromosome, then the phenotypes once."""
    from dpgenome.cohort import Cohort
    from dpgenome.io.pheno import write_pheno_csv

    for block in stream.blocks():
        chunk = Cohort(block.dosages, block.variants, stream.samples.copy())
        write_cohort(chunk, directory / f"chr{block.chrom}", fmt)
        if block.public_dosages is not None and stream.public_samples is not None:
            pub = Cohort(block.public_dosages, block.variants, stream.public_samples.copy())
            write_cohort(pub, directory / "public" / f"chr{block.chrom}", fmt)
        del block
    samples = stream.samples
    write_pheno_csv(
        directory / "pheno.csv",
        samples["id"].astype(str).tolist(),
        stream.phenotypes,
        {f: samples[f].to_numpy(dtype=bool) for f in ("discard", "mixup")},
    )
