"""Private selection of the associated regions: scores with bounded sensitivity, then rounds
of report-noisy-max, each followed by a noisy threshold test (steps 1 and 2 of
:mod:`dpgenome.association`).

A SNP's score is ``|sum_i x_ij y_i| / sqrt(n)`` on dosages standardised with reference
allele frequencies and clipped, and a phenotype clipped for selection
(:func:`select_y_bound`); a window's score is the maximum over its SNPs
(:func:`window_scores`), so one individual moves every window score by at most
:func:`score_sensitivity`. :func:`select_regions` runs the rounds; :func:`null_score_sd`
(public: reference genotypes and a clipped normal phenotype) sets the test's threshold.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dpgenome.association import region_windows, standardise_dosages
from dpgenome.association_config import AssociationConfig
from dpgenome.model import WindowLayout
from dpgenome.noise import Noise


def snp_scores(
    dosages: np.ndarray,
    y_std: np.ndarray,
    freq: np.ndarray,
    x_clip: float | None,
    block: int = 4096,
) -> np.ndarray:
    """``|sum_i x_ij y_i| / sqrt(n)`` for every SNP (blocked over SNPs to bound memory)."""
    n = len(dosages)
    return per_snp(dosages, freq, x_clip, lambda xs: np.abs(y_std @ xs) / math.sqrt(n), block)


def per_snp(
    dosages: np.ndarray,
    freq: np.ndarray,
    x_clip: float | None,
    stat: Callable[[np.ndarray], np.ndarray],
    block: int = 4096,
) -> np.ndarray:
    """``stat`` of the standardised, clipped dosages (:func:`standardise_dosages`), one value
    per SNP, computed over blocks of SNPs to bound memory."""
    m = dosages.shape[1]
    parts = [
        stat(standardise_dosages(dosages[:, s : s + block], freq[s : s + block], x_clip))
        for s in range(0, m, block)
    ]
    return np.concatenate(parts) if parts else np.zeros(0)


def window_scores(snp_score: np.ndarray, layout: WindowLayout) -> np.ndarray:
    """Maximum SNP score of each window."""
    idx = layout.snp_index
    vals = np.where(idx >= 0, snp_score[np.clip(idx, 0, None)], -np.inf)
    return vals.max(axis=1)


def select_y_bound(config: AssociationConfig, y_bound: float | None = None) -> float:
    """The phenotype clip of the selection scores: ``select_y_clip``, or ``y_bound``
    (:func:`phenotype_bound`) when smaller."""
    return config.select_y_clip if y_bound is None else min(config.select_y_clip, y_bound)


def score_sensitivity(config: AssociationConfig, n: int, y_bound: float | None = None) -> float:
    """Add/remove-one sensitivity of every window score (see the module docstring):
    ``x_clip * select_y_bound / sqrt(n)``."""
    return config.x_clip * select_y_bound(config, y_bound) / math.sqrt(n)


def clipped_normal_second_moment(clip: float | None) -> float:
    """``E[min(Z^2, clip^2)]`` for a standard normal ``Z`` (1 without a clip)."""
    if clip is None or not math.isfinite(clip):
        return 1.0
    c = float(clip)
    tail = math.erfc(c / math.sqrt(2.0))  # P(|Z| > c)
    density = math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    return (1.0 - tail) - 2.0 * c * density + c * c * tail


def null_score_sd(
    reference_dosages: np.ndarray,
    freq: np.ndarray,
    x_clip: float | None,
    y_second_moment: float,
    block: int = 4096,
) -> float:
    """Null sd of a SNP score ``sum_i x_ij y_i / sqrt(n)`` with clipped ``x`` and ``y``:
    ``sqrt(mean_j E[x_j^2] E[y^2])``, ``E[x_j^2]`` over the *reference* genotypes (public
    panel or DP synthetic: public) and ``E[y^2]`` given (a public model of the clipped
    phenotype, e.g. :func:`clipped_normal_second_moment`). Unclipped and standardised it is 1;
    clipping lowers it, and the threshold test is stated in these units."""
    ex2 = per_snp(
        np.asarray(reference_dosages), freq, x_clip, lambda xs: (xs**2).mean(axis=0), block
    )
    return float(math.sqrt(float(ex2.mean()) * float(y_second_moment)))


@dataclass(frozen=True)
class Selection:
    """A selected region: its lead window (the noisy max's winner) and the threshold test's
    released value, the region's best score plus Laplace noise of sd ``noise_sd`` (0 when
    exact). Both are outputs of charged mechanisms, so every later use is post-processing."""

    lead: int
    score: float
    noise_sd: float


def select_regions(
    scores: np.ndarray,
    layout: WindowLayout,
    config: AssociationConfig,
    *,
    sensitivity: float,
    eps_select: float,
    eps_test: float,
    noise: Noise,
    null_sd: float = 1.0,
) -> list[Selection]:
    """Regions chosen by noisy max + noisy threshold rounds (exact when eps = inf);
    the threshold is ``config.threshold`` null sds (``null_sd``, public) plus
    ``threshold_margin`` test noise scales."""
    available = np.ones(layout.n_windows, dtype=bool)
    chosen: list[Selection] = []
    test_scale = sensitivity / eps_test if math.isfinite(eps_test) else 0.0
    threshold = config.threshold * null_sd + config.threshold_margin * test_scale
    for _ in range(config.max_regions):
        if not available.any():
            break
        cand = np.flatnonzero(available)
        noisy = scores[cand].astype(np.float64)
        if math.isfinite(eps_select):
            lead = int(cand[noise.exponential(noisy, scale=2.0 * sensitivity / eps_select)])
        else:
            lead = int(cand[np.argmax(noisy)])
        # the test asks for the best score of the winner's region (a maximum: sensitivity
        # still ``sensitivity``), not of the winning window: a locus spans many windows, and
        # the noisy max often lands on one of its weaker ones
        best = float(scores[region_windows(lead, layout, config.flank_bp)].max())
        value = (
            noise.laplace(best, scale=test_scale, sensitivity=sensitivity)
            if test_scale > 0
            else best
        )
        if value >= threshold:
            chosen.append(Selection(lead, value, math.sqrt(2.0) * test_scale))
        elif test_scale == 0.0:
            break  # exact: every later winner scores lower and fails too
        # a failed winner leaves the candidates as well (post-processing of the noisy max):
        # the next round, already paid for, looks elsewhere
        available[region_windows(lead, layout, config.exclusion_factor * config.flank_bp)] = False
    return chosen
