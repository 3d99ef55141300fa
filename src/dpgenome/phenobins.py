"""The DP quantile step: bins for a continuous phenotype column the public schema does not
cover (:func:`dp_bins`), two Gaussian histograms charged to the ledger as one mechanism.

A range on a data-independent ``asinh`` grid first (the finest cell sums whose noisy counts
pass a test, grown over blocks well above the noise), then quantiles of a denoised
(:func:`piecewise_constant_fit`) cumulative histogram on a linear grid inside it.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import lsq_linear
from scipy.stats import norm

from dpgenome.noise import Noise
from dpgenome.phenoencoding import NO_RANGE, ColumnSchema

# ---------------------------------------------------------------------------- DP bins


#: probability that the DP range step keeps a cell no member is in (:func:`dp_bins`)
RANGE_FALSE_CELL = 1e-3
#: cell sums the DP range step tries in turn, the finest first (:func:`dp_bins`)
RANGE_WIDTHS = (1, 2, 4, 8, 16)
#: the finest of them whose cells left hold this share of the most any width keeps is used
RANGE_KEEP = 0.5
#: the range when nothing passes the range test (too few members for the noise): a
#: data-independent default that knows nothing of the column
RANGE_UNKNOWN = (-1.0, 1.0)
#: the range then grows over each next block whose noisy sum is at least this many noise sds:
#: the blocks kept hold the mass far above the noise, and a column's tails lie beyond them
#: (without it, a normal column at 240 members and noise sd 10 kept 0.84 of its values in
#: the range, 0.59 in the worst of 40 draws; with it 0.97 and 0.85. One sd grew the range
#: into empty blocks more often, which cost the real CFW columns' means more: stop 36)
RANGE_GROW = 2.0
#: equal bins of the DP quantile step's range (:func:`dp_bins`): fewer bins, less noise in
#: the cumulative sum (40 against 100: a model's uniform start on those bins gave synthetic
#: sds off by a factor 1.08 against 1.11 over the first 20 CFW columns, bins sigma 7.3)
FINE_BINS = 40
#: total-variation penalty of the DP quantile step's denoising, in noise sds (:func:`dp_bins`)
FINE_TV_PENALTY = 4.0


def piecewise_constant_fit(y: np.ndarray, penalty: float) -> np.ndarray:
    """``y`` as runs of equal values: the runs of its 1-D total-variation denoising
    (``argmin_x 0.5 ||x - y||^2 + penalty * sum |x[i+1] - x[i]|``, solved exactly through its
    dual, ``x = y - D^T z`` for the ``z`` in ``[-penalty, penalty]`` minimising
    ``||y - D^T z||``, ``D`` the first-difference matrix: a box-constrained least-squares
    problem), each run then set to the mean of ``y`` over it (the relaxed fit: the
    denoising alone lowers every peak and raises every trough by about ``2 penalty / run
    length``, which put 5% of a model's uniform start into an empty stretch between two
    modes, against 1.2% relaxed). Keeps the sum of ``y``; a stretch of pure noise becomes
    one run near zero."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n < 2 or penalty <= 0:
        return y.copy()
    dt = np.diff(np.eye(n), axis=0).T  # (n, n - 1): D^T
    fit = y - dt @ lsq_linear(dt, y, bounds=(-penalty, penalty)).x
    steps = np.abs(np.diff(fit)) > 1e-7 * max(1.0, float(np.abs(fit).max()))  # solver's tolerance
    starts = np.r_[0, np.flatnonzero(steps) + 1]
    lengths = np.diff(np.r_[starts, n])
    return np.repeat(np.add.reduceat(y, starts) / lengths, lengths)


def dp_bins(
    x: np.ndarray,
    *,
    n_bins: int,
    noise_multiplier: float,
    noise: Noise,
) -> ColumnSchema:
    """Bins of one continuous column by two Gaussian histograms (each individual adds 1 to
    one bin of each: L2 sensitivity 1 per histogram; missing values add nothing).

    1. Range: counts on the data-independent grid ``asinh(x)`` in ``[-20, 20]`` step 0.25
       (160 cells), noise ``N(0, sigma^2)``; cells below ``sigma * z`` are dropped, where
       ``z`` makes a cell without members pass with probability ``RANGE_FALSE_CELL / 160 /
       len(RANGE_WIDTHS)``. The same test runs on sums of 2, 4, 8, 16 adjacent cells (noise
       ``sigma sqrt(k)``, signal ``k`` times a cell's), and the finest width whose blocks
       left hold ``RANGE_KEEP`` of the largest mass left at any width gives the range: a
       sparse column, whose single cells mostly fail, is seen at a coarser range rather than
       narrowly or not at all. A false cell or block anywhere has probability at most
       ``RANGE_FALSE_CELL``. From the first to the last block kept, the range then grows
       outwards over each next block whose noisy sum reaches ``RANGE_GROW`` noise sds (a
       column's tails, too thin for the strict test; an empty block passes with probability
       0.023).
    2. Quantiles: counts on ``FINE_BINS`` equal bins of ``[lo, hi]`` (values clamped), noise;
       the noisy counts as runs of equal values (:func:`piecewise_constant_fit`, penalty
       ``FINE_TV_PENALTY`` noise sds), negatives set to zero, their cumulative sum
       normalised is a DP distribution function; ``n_bins`` edges at its quantiles (linear
       interpolation). It is also the bins' shape (:attr:`ColumnSchema.quantiles`): a value
       decoded from a bin follows it within the bin.

    Stop 36 added the growth and the runs (the quantile step took an isotonic regression of
    the noisy cumulative sum). ``bench/bins.py``, six simulated shapes at 768 members and
    noise sds 5-20, each value redrawn within its own bin (a model that learnt the bins'
    shares): the synthetic sd's mean |log ratio| 0.01-0.35 before, 0.01-0.26 after (a
    lognormal column at noise sd 20: 0.55 to 0.26; 240 members: 0.02-0.66 to 0.01-0.35 at
    noise sds 5-10). On the public CFW table with all 96 continuous columns DP-binned
    (``bench/phenotypes.py --dp-bins 999``, two seeds, the model trained): sd error 0.22 to
    0.15 at epsilon 3 and 0.09 to 0.08 at epsilon 8, mean error 0.09 to 0.10 and 0.07 to
    0.07 sds (docs/tuning-history.md, stop 36).

    Before stop 25: a ``3 sigma`` threshold on 500 cells of step 0.1, which kept a noise
    cell in about half the histograms, and the 1% and 99% quantiles of what was left; then
    100 fine bins with negative noisy counts zeroed. With ~1,000 members and many DP-binned
    columns such a noise cell held a tenth of the total and dragged ``lo`` or ``hi`` to
    ``sinh(25) ~ 4e10`` (37 of 96 CFW columns at a phenotype share of epsilon 2.5), and the
    zeroed negatives left the empty fine bins a positive mass (``sigma / sqrt(2 pi)`` each),
    which pulled the edges into empty space: under a model's uniform start the synthetic sd
    came out twice the real one (docs/tuning-history.md, stop 25).

    When nothing passes the range test at any width (too few members for the noise), the
    range is ``[-1, 1]``, which knows nothing of the column: :func:`fit_phenotypes` warns,
    and the column is sampled missing.

    Post-processing only after the noise: the output is DP with respect to ``x``.
    """
    obs = x[np.isfinite(x)]
    sigma = noise_multiplier
    grid = np.arange(-20.0, 20.0 + 1e-9, 0.25)
    cells = len(grid) - 1
    t = np.clip(np.arcsinh(obs), grid[0], grid[-1] - 1e-9)
    counts = np.bincount(np.searchsorted(grid, t, side="right") - 1, minlength=cells)
    noisy = noise.gaussian(counts[:cells], sd=sigma, sensitivity=1.0)
    # (kept noisy mass, width, the noisy block sums, the blocks kept)
    found: list[tuple[float, int, np.ndarray, np.ndarray]] = []
    for width in RANGE_WIDTHS:  # post-processing of the one noisy histogram
        blocks = noisy.reshape(-1, width).sum(axis=1)  # noise sd sigma * sqrt(width)
        z = norm.isf(RANGE_FALSE_CELL / len(RANGE_WIDTHS) / len(blocks))
        kept = np.flatnonzero(blocks >= sigma * math.sqrt(width) * z)
        if len(kept):
            found.append((float(blocks[kept].sum()), width, blocks, kept))
    lo, hi = RANGE_UNKNOWN
    source = "dp" if found else NO_RANGE  # nothing above the noise: nothing to draw
    if found:
        most = max(f[0] for f in found)
        _, width, blocks, kept = next(f for f in found if f[0] >= RANGE_KEEP * most)  # finest
        grows = blocks >= sigma * math.sqrt(width) * RANGE_GROW
        first, last = int(kept[0]), int(kept[-1])
        while first > 0 and grows[first - 1]:
            first -= 1
        while last < len(blocks) - 1 and grows[last + 1]:
            last += 1
        lo = float(np.sinh(grid[first * width]))
        hi = float(np.sinh(grid[(last + 1) * width]))
    fine = np.linspace(lo, hi, FINE_BINS + 1)
    idx = np.clip(np.searchsorted(fine, obs, side="right") - 1, 0, FINE_BINS - 1)
    noisy2 = noise.gaussian(np.bincount(idx, minlength=FINE_BINS), sd=sigma, sensitivity=1.0)
    mass = np.maximum(piecewise_constant_fit(noisy2, FINE_TV_PENALTY * sigma), 0.0)
    cum = np.cumsum(mass)
    if cum[-1] <= 0:
        return ColumnSchema(
            "bins", edges=tuple(np.linspace(lo, hi, n_bins + 1).tolist()), source=source
        )
    cum2 = np.concatenate([[0.0], cum / cum[-1]])
    edges = np.interp(np.linspace(0, 1, n_bins + 1), cum2, fine)
    edges[0], edges[-1] = lo, hi
    edges = np.unique(edges)  # lo < hi: at least two
    return ColumnSchema(
        "bins",
        edges=tuple(edges.tolist()),
        source=source,
        quantiles=tuple(fine.tolist()),
        probabilities=tuple(cum2.tolist()),
    )
