"""Click options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def qc_options(func: F) -> F:
    """``--min-maf`` and ``--min-quality``: the study's QC thresholds (cohort.QCConfig)."""
    func = click.option(
        "--min-quality",
        type=float,
        default=0.95,
        show_default=True,
        help="QC: drop SNPs with map quality <= this (when the map has a quality column).",
    )(func)
    return click.option(
        "--min-maf",
        type=click.FloatRange(0.0, 0.5),
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
