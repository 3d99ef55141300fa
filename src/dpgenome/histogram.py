"""A Gaussian histogram over a public domain, read as shares (one mechanism, sensitivity 1).

Each member adds 1 to one bin of a domain fixed by public information (the public table's
missingness patterns, the public panel's ancestry clusters): under add/remove one individual
moves the count vector by 1 in L2 (sqrt(2) under replace-one, which the accountant applies).
Every count gets ``N(0, sigma^2)``; bins whose noisy count is below :data:`KEEP_SDS` noise sds
are dropped (an empty bin passes with probability 0.023) and the rest normalised. If none
passes, the domain's public shares stand in. Without formal privacy the counts are exact.
"""

from __future__ import annotations

import numpy as np

from dpgenome.calibrate import PlannedGaussian
from dpgenome.mechanisms import HISTOGRAM_REPLACE_RATIO
from dpgenome.noise import Noise

#: a released bin is kept when its noisy count is at least this many noise sds
KEEP_SDS = 2.0


def planned_histogram(name: str, weight: float, note: str = "", count: int = 1) -> PlannedGaussian:
    """The ledger's plan of ``count`` such histograms: L2 sensitivity 1 each under add/remove,
    and replacing an individual moves one count per histogram (sqrt(2), not 2)."""
    return PlannedGaussian(
        name,
        count=count,
        sensitivity=1.0,
        weight=weight,
        note=note,
        replace_ratio=HISTOGRAM_REPLACE_RATIO,
    )


def noisy_shares(
    bins: np.ndarray,
    public_counts: np.ndarray,
    *,
    noise_multiplier: float | None,
    noise: Noise,
    keep_sds: float = KEEP_SDS,
) -> tuple[np.ndarray, int]:
    """The released shares over the domain (``len(public_counts)`` bins) of the members' bin
    indices ``bins``, and how many bins were kept (noisy count at least ``keep_sds`` noise
    sds; 0: the public shares)."""
    size = len(public_counts)
    counts = np.bincount(np.asarray(bins, dtype=np.int64), minlength=size).astype(np.float64)
    if noise_multiplier is None:
        return counts / counts.sum(), int((counts > 0).sum())
    sd = float(noise_multiplier)
    noisy = np.asarray(noise.gaussian(counts, sd=sd, sensitivity=1.0))
    kept = noisy >= keep_sds * sd
    if not kept.any():  # the noise hides every bin: the public shares (public)
        public = np.asarray(public_counts, dtype=np.float64)
        return public / public.sum(), 0
    shares = np.where(kept, noisy, 0.0)
    return shares / shares.sum(), int(kept.sum())
