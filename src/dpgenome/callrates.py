"""Missing genotype calls: a DP release of how many calls each member misses, applied to the
synthetic genotypes (``SynthConfig.genotype_missingness``; off by default).

Real genotype files miss calls (an array probe that failed, a low-coverage read), unevenly:
a few samples miss many, a few SNPs fail often. The synthesizer's genotypes are complete, so
a pipeline developed on a synthetic cohort meets its first missing call on the real data.
With this release on, the synthetic cohort misses calls as the members do:

1. **Domain (public)**: :data:`SHARE_EDGES`, bins of an individual's share of missing calls
   over the cohort's SNPs: exactly none, then ``(0, 0.1%]``, ``(0.1%, 0.2%]``, ... ``(50%,
   100%]``.
2. **Counts**: each member adds 1 to the bin of its own share (a deterministic map of one
   record): one Gaussian histogram of L2 sensitivity 1 (:mod:`dpgenome.histogram`;
   ``sqrt(2)`` under replace-one), the ledger's ``genotype-missingness``. Bins whose noisy
   count is below :data:`KEEP_SDS` (3) noise sds are dropped and the rest normalised; if none
   passes, the public default stands: no missing call. Three, not the two of the other
   histograms: an empty bin passes two sds in 2.3% of releases, and a spurious bin at the top
   of this domain gives a share of the synthetic cohort over half its calls missing (a demo
   at 2% missing calls released 3% of individuals in ``(50%, 100%]``, which doubled the
   synthetic share); three sds let one through in 0.13%.
3. **Where along the genome (public)**: a public panel genotyped on the same platform misses
   calls at the same SNPs, so its per-SNP shares of missing calls (smoothed by half a call:
   no SNP is never missed) give each SNP's weight ``s_j`` (mean 1); without a panel, or with
   a complete one, every SNP weighs alike. No member's per-SNP rate is read: at ~1,000
   members a per-SNP release would drown in its noise.
4. **Sampling** (post-processing): each synthetic individual draws a bin by the released
   shares and a share ``r`` log-uniform within it (0 in the first bin), and misses SNP ``j``
   with probability ``min(1, c s_j)``, ``c`` solved so that the mean over SNPs is ``r``
   (:func:`scale_for_share`). Calls are missing at random given the individual and the SNP,
   not given the genotype.

Without formal privacy (``epsilon = inf``) the counts are exact. The synthetic cohort's GWAS
then mean-imputes the missing calls as the members' GWAS does (:mod:`dpgenome.gwas`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dpgenome.histogram import noisy_shares
from dpgenome.noise import Noise

#: a released bin is kept when its noisy count is at least this many noise sds
KEEP_SDS = 3.0

#: upper edges of the bins of an individual's missing-call share after the first bin (no
#: missing call at all); public and fixed
SHARE_EDGES: tuple[float, ...] = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
#: a panel SNP's missing calls are smoothed by this many calls (and as many calls made)
SMOOTHING_CALLS = 0.5
#: rows of missingness drawn at a time (a float32 uniform per call: 4 x rows x SNPs bytes)
ROWS_PER_CHUNK = 256


def n_bins() -> int:
    """The domain's size: no missing call, then one bin per interval of :data:`SHARE_EDGES`."""
    return len(SHARE_EDGES)


def share_bins(dosages: np.ndarray) -> np.ndarray:
    """Each row's bin (0: no missing call; ``k``: share in ``(SHARE_EDGES[k-1],
    SHARE_EDGES[k]]``); a function of the row alone."""
    missing = np.isnan(dosages).sum(axis=1)
    share = missing / max(dosages.shape[1], 1)
    bins = np.searchsorted(np.asarray(SHARE_EDGES), share, side="left")
    return np.where(missing == 0, 0, np.clip(bins, 1, n_bins() - 1)).astype(np.int64)


def snp_weights(panel: np.ndarray | None, n_variants: int) -> tuple[np.ndarray, str]:
    """``(s, source)``: each SNP's weight (mean 1) from the public panel's dosages (public),
    or all 1 without a panel or when the panel misses no call."""
    if panel is None or panel.shape[0] == 0:
        return np.ones(n_variants), "every SNP alike (no public panel)"
    if panel.shape[1] != n_variants:
        raise ValueError(f"the panel has {panel.shape[1]} SNPs, the cohort {n_variants}")
    missed = np.isnan(panel).sum(axis=0, dtype=np.int64)
    if not missed.any():
        return np.ones(n_variants), "every SNP alike (the public panel misses no call)"
    share = (missed + SMOOTHING_CALLS) / (panel.shape[0] + 2 * SMOOTHING_CALLS)
    return share / share.mean(), "the public panel's per-SNP missing calls"


def scale_for_share(weights: np.ndarray, shares: np.ndarray, *, iterations: int = 60) -> np.ndarray:
    """Per target share ``r`` the ``c >= 0`` with ``mean_j min(1, c w_j) = r`` (bisection on
    ``log c``; ``r`` at or above the reachable maximum gets the smallest ``c`` that reaches
    it). ``weights`` positive with mean 1; ``shares`` in [0, 1]."""
    w = np.sort(np.asarray(weights, dtype=np.float64))
    cum = np.concatenate([[0.0], np.cumsum(w)])
    m = len(w)
    r = np.asarray(shares, dtype=np.float64)

    def mean_prob(c: np.ndarray) -> np.ndarray:
        # SNPs with w < 1/c contribute c w; the rest 1
        k = np.searchsorted(w, 1.0 / c, side="left")
        return (c * cum[k] + (m - k)) / m

    lo = np.full(r.shape, 1e-12)
    hi = np.full(r.shape, 1.0 / w[0])  # every SNP certain
    for _ in range(iterations):
        mid = np.sqrt(lo * hi)
        below = mean_prob(mid) < r
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return np.where(r > 0, hi, 0.0)


@dataclass(frozen=True)
class CallRateRelease:
    """The released shares of the missing-call bins (a DP output, or exact without formal
    privacy) and the public per-SNP weights they are spread by."""

    shares: np.ndarray  # (n_bins,) sums to 1
    weights: np.ndarray  # (n_variants,) mean 1
    weights_source: str
    noise_multiplier: float | None
    #: bins kept (noisy count at least KEEP_SDS sds); 0: the public default (none missing)
    kept: int

    def draw_shares(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` individuals' missing-call shares: a bin by the released shares, then
        log-uniform within it (0 in the first bin). Both edges are raised to one call's
        share (``1 / SNPs``): on few SNPs the lowest bins lie below one call, and a bin other
        than the first means missing calls (each SNP is then missed at random, so now and then
        an individual drawn into the lowest bin still misses none)."""
        bins = rng.choice(n_bins(), size=n, p=self.shares)
        lower, upper = self._edges()
        lower, upper = lower[np.maximum(bins - 1, 0)], upper[np.maximum(bins - 1, 0)]
        u = rng.random(n)
        share = np.exp(np.log(lower) + u * (np.log(upper) - np.log(lower)))
        return np.where(bins == 0, 0.0, share)

    def apply(self, dosages: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``dosages`` (float32, modified in place and returned) with calls made missing."""
        n, m = dosages.shape
        if m != len(self.weights):
            raise ValueError(f"the release has {len(self.weights)} SNP weights, not {m}")
        share = self.draw_shares(n, rng)
        scale = scale_for_share(self.weights, share)
        w = self.weights.astype(np.float32)
        for start in range(0, n, ROWS_PER_CHUNK):
            stop = min(start + ROWS_PER_CHUNK, n)
            if not scale[start:stop].any():
                continue
            prob = np.minimum(1.0, scale[start:stop, None].astype(np.float32) * w[None, :])
            block = dosages[start:stop]
            block[rng.random((stop - start, m), dtype=np.float32) < prob] = np.nan
        return dosages

    def summary(self) -> dict[str, Any]:
        """Aggregates of DP outputs and public data only (the released shares are a DP
        output; no member's share)."""
        return {
            "bins_upper_share": list(SHARE_EDGES),
            "released_shares": [round(float(s), 5) for s in self.shares],
            "expected_missing_share": round(float(self.expected_share()), 6),
            "bins_kept": self.kept,
            "keep_sds": KEEP_SDS,
            "noise_multiplier": self.noise_multiplier,
            "snp_weights": self.weights_source,
        }

    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper edges of the bins after the first, raised to one call's share."""
        edges = np.asarray(SHARE_EDGES)
        one = 1.0 / max(len(self.weights), 1)
        return np.maximum(edges[:-1], one), np.maximum(edges[1:], one)

    def expected_share(self) -> float:
        """The mean missing-call share a synthetic individual draws (the mean of the
        log-uniform share of each bin, weighed by the released shares)."""
        lower, upper = self._edges()
        ratio = np.log(upper) - np.log(lower)
        means = np.where(ratio > 0, (upper - lower) / np.where(ratio > 0, ratio, 1.0), upper)
        return float(np.dot(self.shares[1:], means))


def release_call_rates(
    dosages: np.ndarray,
    panel: np.ndarray | None,
    *,
    noise_multiplier: float | None,
    noise: Noise,
) -> CallRateRelease:
    """The members' missing-call shares over :data:`SHARE_EDGES` (one Gaussian histogram of
    L2 sensitivity 1 at ``noise_multiplier`` from the ledger; exact counts when it is None)
    and the public panel's per-SNP weights."""
    public = np.zeros(n_bins())
    public[0] = 1.0  # the public default: no missing call
    shares, kept = noisy_shares(
        share_bins(dosages),
        public,
        noise_multiplier=noise_multiplier,
        noise=noise,
        keep_sds=KEEP_SDS,
    )
    weights, source = snp_weights(panel, dosages.shape[1])
    return CallRateRelease(
        shares=shares,
        weights=weights,
        weights_source=source,
        noise_multiplier=None if noise_multiplier is None else float(noise_multiplier),
        kept=kept,
    )
