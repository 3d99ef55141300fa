"""Click options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from dpgenome.config import MAX_SEED

F = TypeVar("F", bound=Callable[..., Any])

#: every command's ``--seed`` (a configuration file's ``seed`` is held to the same range)
SEED = click.IntRange(0, MAX_SEED)


def qc_options(func: F) -> F:
    """``--min-maf`` and ``--min-quality``: the study's QC thresholds (cohort.QCConfig)."""
    func = click.option(
        "--min-quality",
        type=click.FloatRange(0.0, 1.0, max_open=True),
        default=0.95,
        show_default=True,
        help="QC: drop SNPs with map quality <= this (when the map has a quality column).",
    )(func)
    return click.option(
        "--min-maf",
        type=click.FloatRange(0.0, 0.5, max_open=True),
        default=0.02,
        show_default=True,
        help="QC: drop SNPs with minor allele frequency <= this.",
    )(func)


def allele_order_option(default: str | None) -> Callable[[F], F]:
    """``--allele-order``: how a synthetic map lists each SNP's alleles
    (:func:`dpgenome.cohort.public_allele_map`)."""
    from dpgenome.cohort import ALLELE_ORDERS

    return click.option(
        "--allele-order",
        type=click.Choice(ALLELE_ORDERS),
        default=default,
        show_default=default is not None,
        help="How the synthetic map lists each SNP's two alleles: auto (the public panel's "
        "order with --public-panel, else the input's, refused under DP when that order was "
        "read off the genotypes, as plink 1.9 writes a .bim minor allele first), input, panel, "
        "or sorted (alphabetical).",
    )


class AncestryPcs(click.ParamType):
    """``--ancestry-pcs``: ``auto`` or a number of principal axes (0: off)."""

    name = "auto|K"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif str(value).strip().lower() == "auto":
            return "auto"
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                self.fail(f"expected 'auto' or a whole number >= 0, got {value!r}", param, ctx)
        if number < 0:
            self.fail(f"expected 'auto' or a whole number >= 0, got {value!r}", param, ctx)
        return number


#: what --ancestry-pcs does, for every command that takes it
ANCESTRY_PCS_HELP = (
    "Ancestry across chromosomes (with a public panel): every SNP window reads K scores on "
    "the panel's principal axes, and the synthetic individuals follow the members' mix of the "
    "panel's ancestry clusters (a Gaussian histogram more on the ledger; with the association "
    "path, also the phenotype's cross-moments with the scores). auto (the default): K = 4 "
    "(or the number of shared axes, when more) when the public panel's two genome halves "
    "share structure (canonical correlations of their principal components among unrelated "
    "panel individuals; the panel alone: no privacy cost), else 0; 0 without a panel. 0: "
    "off, each chromosome drawn on its own. A number K > 0 needs a panel."
)


def ancestry_pcs_option(func: F) -> F:
    """``--ancestry-pcs auto|K`` (default ``auto``)."""
    return click.option(
        "--ancestry-pcs",
        type=AncestryPcs(),
        default="auto",
        show_default=True,
        help=ANCESTRY_PCS_HELP,
    )(func)


#: what --genotype-missingness does, for every command that takes it
GENOTYPE_MISSINGNESS_HELP = (
    "Give the synthetic genotypes missing calls as the members have them: each member's share "
    "of missing calls is released over public bins (one Gaussian histogram more on the "
    "ledger, at under 1% of the other releases' noise), and the calls are missed at the SNPs "
    "the public panel misses (every SNP alike without one). Off by default: the synthetic "
    "genotypes are then complete."
)


def genotype_missingness_option(func: F) -> F:
    """``--genotype-missingness/--no-genotype-missingness`` (default off)."""
    return click.option(
        "--genotype-missingness/--no-genotype-missingness",
        default=False,
        show_default=True,
        help=GENOTYPE_MISSINGNESS_HELP,
    )(func)


def missing_calls_option(help_text: str) -> Callable[[F], F]:
    """``--missing-calls RATE``: the simulator's mean share of missing genotype calls
    (:attr:`dpgenome.simulate.SimConfig.missing_calls`; ``simulate`` and ``demo``)."""
    return click.option(
        "--missing-calls",
        type=click.FloatRange(0.0, 0.5, max_open=True),
        default=0.0,
        show_default=True,
        help=help_text,
    )
