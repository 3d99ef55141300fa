"""Drawing the synthetic rows of a 0/1 analysis phenotype to released values (post-processing).

The DP phenotype model samples more rows than needed (``SynthConfig.phenotype_oversample``);
``n`` of them are kept so that the kept rows have the prevalence and the covariate slopes
the release implies, whole rows at a time (every relation between a row's other columns is
the model's):

- the prevalence: ``round(prevalence * n)`` rows from the 1-class, the rest from the 0-class;
- the slopes: a 0/1 phenotype's least-squares slope on covariates ``x`` is
  ``cov(x)^-1 p (1 - p) (E[x | 1] - E[x | 0])``, so the slopes fix the gap between the two
  classes' covariate means, and the kept rows' overall mean stays the sampled rows'. Each
  class is drawn with inclusion probabilities exponentially tilted in ``x``
  (``min(1, c exp(theta . x))``, the least change of a uniform draw that moves its mean) to
  its target mean, by systematic sampling (a fixed number of distinct rows with exactly those
  inclusion probabilities); of ``DRAWS`` such draws the one whose mean is nearest the target
  is kept (a balanced draw: the kept rows' slope then spreads about the target by a fraction
  of a single draw's sampling error).

A class with few sampled rows cannot move far: when it must keep nearly all of them the
tilt is capped by the inclusion probabilities' ceiling of one, and the kept rows' slope falls
short of the target (``synthesize`` records the slope they reach).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

#: the largest tilt, per sd of a covariate column: beyond it a handful of extreme rows would
#: carry the class
MAX_TILT = 4.0
#: systematic draws per class, the one nearest the target mean kept
DRAWS = 16


def inclusion_probabilities(weights: np.ndarray, k: int) -> np.ndarray:
    """``pi_i = min(1, c * w_i)`` with ``sum(pi) = k`` (``0 <= k <= len(w)``, weights > 0):
    the inclusion probabilities of a fixed-size draw proportional to ``w`` (the largest
    weights capped at certainty)."""
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    if k <= 0:
        return np.zeros(n)
    if k >= n:
        return np.ones(n)
    ws = np.sort(w)[::-1]
    tail = np.cumsum(ws[::-1])[::-1]  # tail[j] = sum of all but the j largest
    j = np.arange(k)
    c = (k - j) / tail[:k]
    # the fewest capped rows such that the next one is not above one (j = k - 1 always is)
    first = int(np.argmax(c * ws[:k] <= 1.0 + 1e-12))
    return np.asarray(np.minimum(1.0, c[first] * w))


def systematic_sample(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``round(sum(pi))`` distinct rows, row ``i`` drawn with probability
    ``pi[i]`` (each at most one): systematic sampling over a random order of the rows."""
    pi = np.asarray(pi, dtype=np.float64)
    k = round(float(pi.sum()))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    order = rng.permutation(len(pi))
    cum = np.cumsum(pi[order])
    at = np.searchsorted(cum, rng.uniform() + np.arange(k), side="right")
    pick = np.unique(order[np.minimum(at, len(pi) - 1)])
    if len(pick) < k:  # rounding at an interval's edge: top up from the most probable others
        rest = np.setdiff1d(np.arange(len(pi)), pick)
        pick = np.union1d(pick, rest[np.argsort(-pi[rest], kind="stable")[: k - len(pick)]])
    return pick


def tilted_sample(
    x: np.ndarray, k: int, target: np.ndarray, rng: np.random.Generator, *, draws: int = DRAWS
) -> np.ndarray:
    """Indices of ``k`` distinct rows of ``x`` whose mean is near ``target`` (as near as the
    rows allow): inclusion probabilities ``min(1, c exp(theta . x))``
    (:func:`inclusion_probabilities`) with the tilt ``theta`` solved so that the expected
    mean is the target, then the best of ``draws`` :func:`systematic_sample` draws (mean
    nearest the target, in sd of each column). ``theta = 0`` when the target is the rows' own
    mean."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if k >= n or k <= 0 or x.shape[1] == 0:
        return systematic_sample(inclusion_probabilities(np.ones(n), k), rng)
    centre = x.mean(axis=0)
    scale = x.std(axis=0)
    flat = scale <= 1e-12
    scale = np.where(flat, 1.0, scale)
    xs = (x - centre) / scale
    goal = np.where(flat, 0.0, (np.asarray(target, dtype=np.float64) - centre) / scale)

    def probabilities(theta: np.ndarray) -> np.ndarray:
        t = xs @ theta
        return inclusion_probabilities(np.exp(t - t.max()), k)

    def gap(theta: np.ndarray) -> np.ndarray:
        return np.asarray(probabilities(theta) @ xs / k - goal)

    theta = np.zeros(x.shape[1])
    if np.any(goal != 0.0):
        theta = optimize.least_squares(gap, theta, bounds=(-MAX_TILT, MAX_TILT)).x
    pi = probabilities(theta)
    picks = [systematic_sample(pi, rng) for _ in range(max(draws, 1))]
    miss = [float(np.linalg.norm(xs[p].mean(axis=0) - goal)) for p in picks]
    return picks[int(np.argmin(miss))]


def draw_with_prevalence(
    y: np.ndarray,
    n: int,
    prevalence: float,
    rng: np.random.Generator,
    *,
    covariates: np.ndarray | None = None,
    slopes: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of ``n`` distinct rows of ``y`` (0/1) with ``round(prevalence * n)`` ones,
    as near as the rows allow (whole rows: every relation between a row's columns is kept).
    Without ``slopes`` each class is drawn uniformly at random. With them (one per column of
    ``covariates``, the rows' covariate columns) each class is drawn by
    :func:`tilted_sample` to the covariate mean that gives the kept rows those least-squares
    slopes of ``y`` on the covariates, at the sampled rows' overall covariate mean and
    covariance."""
    y = np.asarray(y, dtype=np.float64)
    ones, zeros = np.flatnonzero(y > 0.5), np.flatnonzero(y <= 0.5)
    if len(y) < n:
        raise ValueError(f"{len(y)} rows cannot give {n} distinct ones")
    k = round(float(np.clip(prevalence, 0.0, 1.0)) * n)
    k = min(max(k, n - len(zeros)), len(ones))
    if covariates is None or slopes is None or np.shape(covariates)[1] == 0 or k in (0, n):
        pick = np.concatenate(
            [rng.choice(ones, size=k, replace=False), rng.choice(zeros, size=n - k, replace=False)]
        )
        return np.asarray(rng.permutation(pick))
    x = np.asarray(covariates, dtype=np.float64)
    p = k / n
    # p (1 - p) (E[x | 1] - E[x | 0]) = cov(x) slopes, and p E[x | 1] + (1 - p) E[x | 0] = mean
    gap = np.atleast_2d(np.cov(x, rowvar=False)) @ np.asarray(slopes, dtype=np.float64)
    gap = gap / (p * (1.0 - p))
    mean = x.mean(axis=0)
    pick = np.concatenate(
        [
            ones[tilted_sample(x[ones], k, mean + (1.0 - p) * gap, rng)],
            zeros[tilted_sample(x[zeros], n - k, mean - p * gap, rng)],
        ]
    )
    return np.asarray(rng.permutation(pick))
