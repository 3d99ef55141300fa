"""Shadow-model membership attack: retrain the synthesizer with and without each target.

Shokri et al. 2017 ("Membership inference attacks against machine learning models", IEEE
S&P) and, for synthetic data, Stadler et al. 2022 ("Synthetic data - anonymisation groundhog
day", USENIX Security). For each of K targets (random members, seeded) and each of g games
per side, a shadow training set of ``size`` - 1 random real individuals other than the
targets is completed with the target (IN) or with one more random individual (OUT), the
synthesizer is retrained on it (``train_fn``) and features of its output relative to the
target are extracted: the distance to the closest synthetic record, the mean distance to the
5 closest, and the allele-frequency likelihood ratio of the target (synthetic frequencies vs
holdout frequencies, as in :func:`dpgenome.audit.membership.allele_frequency_scores`).

Stadler et al. train one classifier per target; with a handful of games per target we pool
targets instead: features are centred per target over its 2g games (no labels used), a
logistic regression is trained on half of the targets and scores the other half (2-fold
cross-fitting over targets), and the AUC is computed over all K x 2g out-of-fold games.
This costs 2 K g trainings; black-box distance attacks on one release underestimate what
such an attacker achieves, which is why it is run at all.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dpgenome.audit.features import genotype_distance, hard_calls, match_variants, threshold_code
from dpgenome.audit.scoring import AttackResult, auc_mann_whitney, score_attack
from dpgenome.cohort import Cohort, Split

TrainFn = Callable[[Cohort, int], Cohort]


def _logistic_fit(x: np.ndarray, y: np.ndarray, ridge: float = 1e-2, iters: int = 50) -> np.ndarray:
    """Ridge-penalised logistic regression by Newton-Raphson (intercept unpenalised)."""
    xd = np.column_stack([np.ones(len(x)), x])
    w = np.zeros(xd.shape[1])
    pen = np.full(xd.shape[1], ridge)
    pen[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(xd @ w)))
        grad = xd.T @ (p - y) + pen * w
        hess = (xd * (p * (1 - p))[:, None]).T @ xd + np.diag(pen) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def shadow_attack(
    real: Cohort,
    split: Split,
    train_fn: TrainFn,
    *,
    n_targets: int,
    games: int,
    size: int,
    distance_columns: np.ndarray,
    reference_freq: np.ndarray,
    n_bootstrap: int,
    rng: np.random.Generator,
) -> AttackResult:
    """Run the K-target shadow game (see the module docstring) and score it.

    ``distance_columns`` are real-cohort columns used for the features and
    ``reference_freq`` the holdout alternative-allele frequencies on them."""
    if n_targets > len(split.members):
        raise ValueError(f"{n_targets} shadow targets but only {len(split.members)} members")
    targets = rng.choice(split.members, size=n_targets, replace=False)
    others = np.setdiff1d(np.arange(real.n_samples), targets)
    if size > len(others):
        size = len(others)
    fill = np.rint(2 * reference_freq).astype(np.float32)
    q = np.clip(reference_freq, 1e-4, 1 - 1e-4)
    features = np.zeros((n_targets, 2 * games, 3))
    labels = np.zeros((n_targets, 2 * games))
    for t, target in enumerate(targets):
        tgt_dos = real.dosages[target, distance_columns].astype(np.float64)
        tgt_code = threshold_code(hard_calls(real.dosages[[target]], distance_columns, fill))
        for g in range(2 * games):
            is_in = g < games
            chosen = rng.choice(others, size=size, replace=False)
            rows = np.append(chosen[:-1], target) if is_in else chosen
            synth = train_fn(real.take_samples(rng.permutation(rows)), int(rng.integers(2**31)))
            matched = match_variants(real, synth)
            pos = np.searchsorted(matched.real, distance_columns)
            pos = np.clip(pos, 0, max(matched.n - 1, 0))
            found = matched.real[pos] == distance_columns
            syn_cols = matched.synthetic[pos[found]]
            syn_code = threshold_code(hard_calls(synth.dosages, syn_cols, fill[found]))
            d = np.sort(genotype_distance(tgt_code[:, np.r_[found, found]], syn_code)[0])
            with np.errstate(invalid="ignore"):
                p = np.nanmean(synth.dosages[:, syn_cols], axis=0, dtype=np.float64) / 2.0
            p = np.clip(np.nan_to_num(p, nan=0.5), 1e-4, 1 - 1e-4)
            x = tgt_dos[found]
            ok = ~np.isnan(x)
            qq = q[found]
            lr = np.sum(
                x[ok] * np.log(p[ok] / qq[ok]) + (2 - x[ok]) * np.log((1 - p[ok]) / (1 - qq[ok]))
            )
            features[t, g] = (-d[0], -d[: min(5, len(d))].mean(), lr)
            labels[t, g] = float(is_in)
    member_scores, other_scores, auc_sd = score_games(features, labels, n_bootstrap, rng)
    return score_attack(
        member_scores,
        other_scores,
        method="shadow-model attack (Shokri et al. 2017; Stadler et al. 2022): retrain with and "
        "without each target, logistic regression on DCR, 5-NN distance and allele-frequency LR",
        n_bootstrap=n_bootstrap,
        rng=rng,
        extra={
            "targets": n_targets,
            "games_per_side": games,
            "shadow_size": size,
            "auc_ci_method": "normal, with the AUC's sd over label permutations within targets "
            "(the model refitted each time)",
        },
        auc_sd=auc_sd,
    )


def score_games(
    features: np.ndarray, labels: np.ndarray, n_draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(member games' scores, other games' scores, the AUC's sd)`` of the shadow game:
    ``features`` (targets x games x 3) centred on each target's own mean and standardised,
    each target's games scored by the logistic model fitted on the other half of the targets,
    and the sd over label shuffles (:func:`_permutation_sd`)."""
    features = features - features.mean(axis=1, keepdims=True)
    sd = features.reshape(-1, 3).std(axis=0)
    sd[sd == 0] = 1.0
    features = features / sd
    scores = _cross_fitted(features, labels, _random_half(len(labels), rng)).ravel()
    y = labels.ravel().astype(bool)
    return scores[y], scores[~y], _permutation_sd(features, labels, n_draws, rng)


def _random_half(n: int, rng: np.random.Generator) -> np.ndarray:
    """A fold: ``n // 2`` of ``n`` targets at random (True), the rest False."""
    fold = np.zeros(n, dtype=bool)
    fold[rng.permutation(n)[: n // 2]] = True
    return fold


def _cross_fitted(features: np.ndarray, labels: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Scores of every game, each target's by the logistic model fitted on the other fold's
    targets (``fold``: one boolean per target)."""
    n_targets, width = labels.shape
    scores = np.zeros((n_targets, width))
    for f in (True, False):
        train, test = fold != f, fold == f
        w = _logistic_fit(features[train].reshape(-1, 3), labels[train].ravel())
        scores[test] = (
            np.column_stack([np.ones(test.sum() * width), features[test].reshape(-1, 3)])
            .dot(w)
            .reshape(-1, width)
        )
    return scores


def _permutation_sd(
    features: np.ndarray, labels: np.ndarray, n_draws: int, rng: np.random.Generator
) -> float:
    """The AUC's sd when no game's side shows: each target's IN and OUT labels shuffled among
    its own games, the folds redrawn and the model refitted, ``n_draws`` times. A target's
    games are not independent (centred on their own mean, scored by one fitted model), so a
    bootstrap of the games alone is too narrow (it covered a no-leak AUC of 0.5 only 80% of
    the time), and one of whole targets with the model refitted too wide (the duplicates it
    draws leave fewer distinct targets to fit on)."""
    aucs = np.empty(n_draws)
    for b in range(n_draws):
        shuffled = rng.permuted(labels, axis=1)
        s = _cross_fitted(features, shuffled, _random_half(len(labels), rng)).ravel()
        y = shuffled.ravel().astype(bool)
        aucs[b] = auc_mann_whitney(s[y], s[~y])
    return float(aucs.std(ddof=1))
