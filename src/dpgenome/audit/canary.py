"""Empirical epsilon lower bound from one training run with canaries.

Steinke, Nasr & Jagielski 2023, "Privacy auditing with one (1) training run" (NeurIPS 2023,
arXiv:2305.08846). m canaries are each included in the training set independently with
probability 1/2; after training, the auditor scores every canary, guesses the top k as IN and
the bottom k as OUT (abstaining on the rest) and counts the correct guesses v out of r = 2k.
For an (eps, delta)-DP mechanism, Theorem 5.2 and the delta extension of their Appendix D
bound the chance of v or more correct guesses by

    P[Binomial(r, q) >= v] + 2 m delta max_{1 <= i <= v} P[v - i <= Binomial(r, q) < v] / i,

with q = e^eps / (1 + e^eps), the accuracy of eps-DP randomised response. The lower bound at
confidence 1 - beta is the largest eps whose bound is still below beta: the mechanism cannot
be (eps', delta)-DP for any smaller eps' except with probability beta. A lower bound above
the accountant's epsilon means the accounting or the implementation is wrong. The bound
cannot exceed that of a perfect guesser (v = r), which depends only on m, r, delta and the
confidence (:func:`max_lower_bound`, reported as ``max_lower_bound``): a claimed epsilon
above it is one the audit cannot contradict, however the synthesizer behaves.
"""

from __future__ import annotations

from collections.abc import Callable
from math import exp
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dpgenome.audit.features import genotype_distance, hard_calls, match_variants, threshold_code
from dpgenome.cohort import Cohort, PhenoType

TrainFn = Callable[[Cohort, int], Cohort]


def one_run_p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """Upper bound on P[>= v of r guesses correct] for an (epsilon, delta)-DP mechanism
    audited with m canaries (Steinke et al. 2023, Theorem 5.2 / Appendix D)."""
    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    q = 1.0 / (1.0 + exp(-epsilon))
    tail = float(stats.binom.sf(v - 1, r, q))
    if delta == 0 or v == 0:
        return min(tail, 1.0)
    below = stats.binom.pmf(v - np.arange(1, v + 1), r, q)  # P[B = v - i], i = 1..v
    window = np.cumsum(below)  # P[v - i <= B < v]
    alpha = float((window / np.arange(1, v + 1)).max())
    return min(tail + 2.0 * m * delta * alpha, 1.0)


def epsilon_lower_bound(
    m: int, r: int, v: int, *, delta: float, confidence: float = 0.95, tol: float = 1e-6
) -> float:
    """Largest epsilon whose p-value stays below 1 - confidence (0 if none), by bisection
    (the p-value increases with epsilon)."""
    beta = 1.0 - confidence
    if r == 0 or one_run_p_value(m, r, v, 0.0, delta) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while one_run_p_value(m, r, v, hi, delta) < beta:
        lo, hi = hi, 2.0 * hi
        if hi > 1e3:
            return float(lo)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if one_run_p_value(m, r, v, mid, delta) < beta:
            lo = mid
        else:
            hi = mid
    return float(lo)


def max_lower_bound(m: int, r: int, *, delta: float, confidence: float = 0.95) -> float:
    """The largest lower bound an audit of m canaries and r guesses can show: the bound of a
    perfect guesser (all r guesses right), by :func:`epsilon_lower_bound` at the same delta
    and confidence. A claimed epsilon above it can never be contradicted by the audit, however
    much the mechanism leaks (50 canaries, 20 guesses, delta = 1/768^1.1: about 1.72)."""
    return float(round(epsilon_lower_bound(m, r, r, delta=delta, confidence=confidence), 6))


#: a continuous column with at most this many distinct values gets canary values among them
_DISCRETE_LEVELS = 20


def make_canaries(template: Cohort, m: int, rng: np.random.Generator) -> Cohort:
    """m fresh random individuals on ``template``'s variants and phenotype columns.

    Genotypes: independent Binomial(2, 1/2) per SNP (no LD, far from every real genome: the
    outliers a memorising synthesizer would reproduce most visibly). Phenotypes: continuous
    ~ Normal(template mean, template SD) within the template's observed range, and on a
    column of at most ``_DISCRETE_LEVELS`` distinct values (a count such as parity, whose
    schema may declare exactly those values) the nearest of them, so that a canary passes
    the checks of a declared phenotype schema when the synthesizer retrains on it; binary ~
    Bernoulli(1/2); categorical uniform over the template's levels. No template row is
    copied (the canaries stay inside the audit; the attack scores their genotypes)."""
    dos = rng.binomial(2, 0.5, size=(m, template.n_variants)).astype(np.float32)
    cols: dict[str, Any] = {}
    for c in template.phenotypes.columns:
        kind = template.pheno_types[c]
        if kind == PhenoType.CATEGORICAL:
            levels = sorted(template.phenotypes[c].dropna().astype(str).unique()) or ["NA"]
            cols[c] = rng.choice(np.asarray(levels, dtype=object), size=m)
        elif kind == PhenoType.BINARY:
            cols[c] = rng.integers(0, 2, size=m).astype(np.float64)
        else:
            v = template.phenotypes[c].to_numpy(dtype=np.float64, na_value=np.nan)
            v = v[np.isfinite(v)]
            mu = float(v.mean()) if len(v) else 0.0
            sd = float(v.std()) if len(v) > 1 else 1.0
            draw = rng.normal(mu, sd if sd > 0 else 1.0, size=m)
            seen = np.unique(v)
            if len(seen) and len(seen) <= _DISCRETE_LEVELS:
                draw = seen[np.abs(draw[:, None] - seen).argmin(axis=1)]  # the nearest
            elif len(seen):
                draw = np.clip(draw, seen[0], seen[-1])
            cols[c] = draw
    samples = pd.DataFrame({"id": [f"canary{i:05d}" for i in range(m)]})
    pheno = pd.DataFrame(cols, columns=list(template.phenotypes.columns))
    return Cohort(
        dos, template.variants.copy(), samples, pheno, dict(template.pheno_types), "canaries"
    )


def concat_cohorts(a: Cohort, b: Cohort, order: np.ndarray | None = None) -> Cohort:
    """Rows of ``a`` then ``b`` (same variants), optionally permuted by ``order``."""
    cohort = Cohort(
        np.concatenate([a.dosages, b.dosages]),
        a.variants.copy(),
        pd.concat([a.samples[["id"]], b.samples[["id"]]], ignore_index=True),
        pd.concat([a.phenotypes, b.phenotypes], ignore_index=True),
        dict(a.pheno_types),
        a.source,
    )
    return cohort if order is None else cohort.take_samples(order)


def canary_audit(
    members: Cohort,
    train_fn: TrainFn,
    *,
    m: int,
    k: int | None,
    distance_columns: np.ndarray,
    delta: float,
    claimed_epsilon: float | None,
    confidence: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Train once on members + a random half of m canaries and bound epsilon from below.

    Score of a canary = minus the genotype distance (mean absolute hard-call difference on
    ``distance_columns``) to its nearest synthetic record: the black-box input-space attack
    of Steinke et al. (their "input space" setting; canaries are random individuals). Guess
    the k highest scores IN and the k lowest OUT (ties broken at random, seeded); k is fixed
    before the run (default m // 5), never tuned on the outcome.
    """
    k = m // 5 if k is None else k
    canaries = make_canaries(members, m, rng)
    included = rng.random(m) < 0.5
    inc = canaries.take_samples(included)
    order = rng.permutation(members.n_samples + inc.n_samples)
    training = concat_cohorts(members, inc, order)
    del inc
    synthetic = train_fn(training, int(rng.integers(2**31)))
    matched = match_variants(canaries, synthetic)
    keep = np.isin(matched.real, distance_columns)
    real_cols, syn_cols = matched.real[keep], matched.synthetic[keep]
    if len(real_cols) == 0:
        real_cols, syn_cols = matched.real, matched.synthetic
    fill = np.ones(len(syn_cols), dtype=np.float32)
    can_code = threshold_code(hard_calls(canaries.dosages, real_cols, fill))
    syn_code = threshold_code(hard_calls(synthetic.dosages, syn_cols, fill))
    scores = -genotype_distance(can_code, syn_code).min(axis=1).astype(np.float64)
    ranking = np.lexsort((rng.random(m), -scores))  # by score descending, random tie-break
    guess_in, guess_out = ranking[:k], ranking[m - k :]
    correct = int(included[guess_in].sum() + (~included[guess_out]).sum())
    r = 2 * k
    bound = epsilon_lower_bound(m, r, correct, delta=delta, confidence=confidence)
    exceeds = claimed_epsilon is not None and bound > claimed_epsilon
    return {
        "epsilon_lower_bound": float(round(bound, 6)),
        # the audit's reach: the bound of a perfect guesser (every guess right)
        "max_lower_bound": max_lower_bound(m, r, delta=delta, confidence=confidence),
        "confidence": confidence,
        "delta": delta,
        "m": m,
        "included": int(included.sum()),
        "guesses": r,
        "correct": correct,
        "claimed_epsilon": claimed_epsilon,
        "exceeds_claimed": bool(exceeds),
        "method": "one-run canary audit (Steinke, Nasr & Jagielski 2023): random-genotype "
        "canaries, score = -distance to the nearest synthetic record, top/bottom k guessed",
    }
