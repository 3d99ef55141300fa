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
