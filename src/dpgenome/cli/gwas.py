"""``dpgenome gwas`` (per-SNP linear or mixed-model GWAS) and ``dpgenome compare`` (fidelity
of a synthetic GWAS against the real one: metrics JSON, Manhattan and QQ plots)."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np

from dpgenome.cli.options import qc_options
from dpgenome.io.files import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)


@click.command()
@click.argument("cohort", type=click.Path(exists=True, file_okay=False, dir_okay=True))
@click.option("--pheno", required=True, help="Phenotype column to test (numeric or 0/1).")
@click.option(
    "--covar",
    multiple=True,
    help="Covariate column; repeat for several. Text columns are one-hot encoded with the "
    "first level dropped, as plink2 does.",
)
@click.option("--lmm", is_flag=True, help="Mixed model (GEMMA-style Wald + LRT) instead of OLS.")
@click.option(
    "--loco/--no-loco",
    default=True,
    show_default=True,
    help="With --lmm: kinship leaving out the tested SNP's chromosome.",
)
@qc_options
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output TSV (one row per SNP; written atomically).",
)
def gwas(
    cohort: str,
    pheno: str,
    covar: tuple[str, ...],
    lmm: bool,
    loco: bool,
    min_maf: float,
    min_quality: float,
    out: str,
) -> None:
    """Per-SNP association of PHENO with every SNP of the cohort in directory COHORT, after
    the study's QC, on the samples with the phenotype and all covariates observed.

    Columns: chr, pos, id, a1 (the counted allele), beta, se, t_stat, p, log10_p (= -log10 p,
    exact even where p underflows to 0), n; --lmm adds p_lrt, log10_p_lrt, lambda_remle,
    lambda_mle. Missing dosages are mean-imputed per SNP."""
    from dpgenome.cohort import QCConfig, analysis_subset, qc
    from dpgenome.gwas import linear_gwas
    from dpgenome.io import read_cohort
    from dpgenome.lmm import lmm_gwas

    raw = read_cohort(cohort)
    raw.require_phenotypes([pheno, *covar])
    cleaned, report = qc(raw, QCConfig(min_quality=min_quality, min_maf=min_maf))
    subset = analysis_subset(cleaned, pheno, list(covar), report)
    for line in report.lines():
        log.info(line)
    if lmm:
        result = lmm_gwas(subset, pheno, list(covar), loco=loco)
    else:
        # float64: reference-grade output (float32 drifts ~1e-5 relative on huge -log10 p)
        result = linear_gwas(subset, pheno, list(covar), dtype=np.float64)
    table = result.table.to_csv(sep="\t", index=False, float_format="%.10g", na_rep="NA")
    write_text_atomic(Path(out), table)  # NA as plink2 writes it, for R and other readers
    lp = result.table["log10_p"]
    click.echo(
        f"{result.method}: {result.n} samples, {len(result.table)} SNPs, "
        f"lambda_GC {result.lambda_gc:.3f}, {int((lp >= 8).sum())} SNPs with p < 1e-8; "
        f"wrote {out}"
    )


@click.command()
@click.argument("real", type=click.Path(exists=True, dir_okay=False))
@click.argument("synthetic", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for metrics.json, manhattan.svg and qq.svg.",
)
@click.option(
    "--threshold",
    "thresholds",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    multiple=True,
    help="p threshold; repeat. [default: 1e-8, 2e-6]",
)
@click.option(
    "--locus-window",
    type=click.IntRange(0),
    default=1_000_000,
    show_default=True,
    help="Clumping and locus-matching distance in bp.",
)
def compare(
    real: str, synthetic: str, out: str, thresholds: tuple[float, ...], locus_window: int
) -> None:
    """Compare the GWAS in SYNTHETIC against the one in REAL (TSVs from ``dpgenome gwas``),
    matched on SNP id: hits, recall, precision and F1 per threshold, loci recovered and
    spurious, lambda_GC, Spearman correlation of -log10 p, effect agreement at real hits."""
    from dpgenome.gwas_comparison import DEFAULT_THRESHOLDS, compare_gwas, read_gwas_tsv

    comparison = compare_gwas(
        read_gwas_tsv(real),
        read_gwas_tsv(synthetic),
        thresholds or DEFAULT_THRESHOLDS,
        locus_window_bp=locus_window,
    )
    target = Path(out)
    if target.exists() and not target.is_dir():
        from dpgenome.errors import InputError

        raise InputError("exists and is not a directory", file=target)
    metrics = comparison.to_dict()
    n_real, n_synth = comparison.sample_sizes.get("real"), comparison.sample_sizes.get("synthetic")
    if n_real and n_synth and n_synth > 1.05 * n_real:
        click.echo(
            f"note: the synthetic GWAS has {n_synth:g} samples for the real {n_real:g}: the "
            f"same association scores about {n_synth / n_real:.1f}x the chi^2 there, so its "
            "hits and precision are not those of an equal-size cohort (run the synthetic "
            "GWAS on as many samples as the real one; `dpgenome release` does)",
            err=True,
        )
    write_text_atomic(target / "manhattan.svg", comparison.manhattan_svg())
    write_text_atomic(target / "qq.svg", comparison.qq_svg())
    write_json_atomic(target / "metrics.json", metrics)
    primary = next(iter(metrics["thresholds"].values()))
    false = (
        f" ({primary['false_hits']} the real GWAS does not reach, "
        f"{primary['false_hits_supported']} of them at real p < "
        f"{metrics['loci']['support_threshold']:g})"
        if primary.get("false_hits")
        else ""
    )
    click.echo(
        f"{comparison.n_shared} shared SNPs; at p < {comparison.thresholds[0]:g}: "
        f"{primary['overlap']}/{primary['real_hits']} real hits recovered, "
        f"{primary['synthetic_hits']} synthetic hits{false}; loci {metrics['loci']['recovered']}/"
        f"{metrics['loci']['real_loci']} recovered, {metrics['loci']['spurious']} spurious "
        f"({metrics['loci']['unmatched']} away from every real locus); "
        f"wrote {target}/metrics.json, manhattan.svg, qq.svg"
    )
