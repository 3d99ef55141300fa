"""Black-box membership inference against the member/holdout split.

Each attack returns one score per real individual (higher = "member") and is scored by
:func:`dpgenome.audit.scoring.score_attack`; the per-individual scores never leave the audit.
The non-members are the holdout, which the synthesizer never saw, so the AUC of every attack
is 0.5 in expectation when the synthetic data leak nothing about membership. The
density-ratio and allele-frequency attacks score against a reference built from the
holdout, so their scores move with it: their AUC's CI is widened by its sd over bootstrap
resamples of the holdout (:func:`reference_auc_sd`), which a bootstrap of fixed scores
leaves out (without it, 95% CIs covered a no-leak AUC of 0.5 in 88-90% of random splits).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

from dpgenome.audit.scoring import auc_rows
from dpgenome.cohort import Split


def dcr_scores(distance: np.ndarray) -> np.ndarray:
    """Distance to closest record (DCR) attack.

    Score = minus the distance from a real individual to its nearest synthetic record
    (genotype + phenotype distance of :mod:`dpgenome.audit.features`). Follows the
    distance-to-closest-record test used for synthetic data by Stadler et al. 2022
    ("Synthetic data - anonymisation groundhog day", USENIX Security) and Chen et al. 2020
    (GAN-Leaks): a generator that memorises training records places synthetic records closer
    to members than to non-members. No threshold is chosen: the whole ROC curve is reported.
    """
    return -distance.min(axis=1)


def cross_fit_folds(split: Split, n_real: int, rng: np.random.Generator) -> np.ndarray:
    """Assign every real individual to fold 0 or 1 (members and holdout halved separately,
    seeded). A target in fold f is scored against a reference built from the holdout of the
    other fold, so no holdout target is ever part of its own reference."""
    fold = np.zeros(n_real, dtype=np.int8)
    for group in (split.members, split.holdout):
        perm = rng.permutation(group)
        fold[perm[len(perm) // 2 :]] = 1
    return fold


def kde_logpdf(points: np.ndarray, query: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Log density of a Gaussian KDE of ``points`` (n x d) at ``query`` (q x d).

    Bandwidth matrix = Scott's factor² x sample covariance, as ``scipy.stats.gaussian_kde``,
    plus ``ridge`` x mean variance on the diagonal so that degenerate data (a constant
    phenotype, duplicated records) still give a proper density."""
    n, d = points.shape
    cov = np.atleast_2d(np.cov(points, rowvar=False))
    scale = float(np.trace(cov)) / d if np.trace(cov) > 0 else 1.0
    cov = cov + ridge * scale * np.eye(d)
    factor = n ** (-1.0 / (d + 4))
    chol = np.linalg.cholesky(cov * factor**2)
    whiten = np.linalg.inv(chol)
    p = points @ whiten.T
    q = query @ whiten.T
    sq = (q * q).sum(axis=1)[:, None] + (p * p).sum(axis=1)[None, :] - 2.0 * (q @ p.T)
    log_norm = np.log(np.diag(chol)).sum() + 0.5 * d * np.log(2 * np.pi) + np.log(n)
    return special.logsumexp(-0.5 * np.maximum(sq, 0.0), axis=1) - log_norm


def _pca_basis(ref: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mu = ref.mean(axis=0)
    sd = ref.std(axis=0)
    sd[sd == 0] = 1.0
    z = (ref - mu) / sd
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    return mu, sd, vt[:k].T


def density_ratio_scores(
    real_calls: np.ndarray,
    synth_calls: np.ndarray,
    real_pheno: np.ndarray,
    synth_pheno: np.ndarray,
    split: Split,
    folds: np.ndarray,
    n_components: int,
    holdout: np.ndarray | None = None,
) -> np.ndarray:
    """DOMIAS density-ratio attack (van Breugel et al. 2023, "Membership inference attacks
    against synthetic data through overfitting detection", AISTATS).

    Score = log p_synth(x) - log p_ref(x): Gaussian KDEs (:func:`kde_logpdf`) of the synthetic
    records and of a reference set, in the space of the first ``n_components`` principal
    components of standardised hard calls (plus standardised numeric phenotypes). The
    reference set, and the PCA fitted on it, is the holdout half of the other cross-fitting
    fold (DOMIAS assumes reference data from the population that the attacked target was not
    part of; here the auditor's own holdout plays that role). Overfitting shows as synthetic
    density concentrated at members beyond what the population density explains.
    ``holdout``: the rows to build the references from instead of ``split.holdout`` (a
    bootstrap resample of it, repeats allowed).
    """
    n_real = real_calls.shape[0]
    scores = np.empty(n_real)
    pool = split.holdout if holdout is None else holdout
    for f in (0, 1):
        ref_idx = pool[folds[pool] != f]
        targets = np.flatnonzero(folds == f)
        ref = real_calls[ref_idx].astype(np.float64)
        dim = n_components + real_pheno.shape[1]
        k = min(n_components, len(ref_idx) - real_pheno.shape[1] - 2)
        if k < 1:
            raise ValueError(
                f"density ratio: {len(ref_idx)} reference individuals are too few for "
                f"a {dim}-dimensional density"
            )
        mu, sd, basis = _pca_basis(ref, k)

        def embed(calls: np.ndarray, pheno: np.ndarray, mu=mu, sd=sd, basis=basis) -> np.ndarray:
            pcs = ((calls.astype(np.float64) - mu) / sd) @ basis
            return np.concatenate([pcs, pheno], axis=1)

        ref_e = embed(ref, real_pheno[ref_idx])
        syn_e = embed(synth_calls, synth_pheno)
        tgt_e = embed(real_calls[targets], real_pheno[targets])
        scores[targets] = kde_logpdf(syn_e, tgt_e) - kde_logpdf(ref_e, tgt_e)
    return scores


def reference_auc_sd(draws: np.ndarray, members: np.ndarray, holdout: np.ndarray) -> float | None:
    """The AUC's sd over score ``draws`` (one row per resample of the reference the attack
    scores against); ``None`` with fewer than two draws."""
    if len(draws) < 2:
        return None
    aucs = auc_rows(draws[:, members], draws[:, holdout])
    return float(aucs.std(ddof=1))


def reference_resamples(
    holdout: np.ndarray, n_draws: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``n_draws`` bootstrap resamples of the holdout rows (with replacement, same size)."""
    return [rng.choice(holdout, size=len(holdout), replace=True) for _ in range(n_draws)]


def allele_counts(
    dosages: np.ndarray, rows: np.ndarray, columns: np.ndarray, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of observed dosages and number of observed genotypes per column over ``rows``."""
    total = np.zeros(len(columns))
    observed = np.zeros(len(columns))
    for start in range(0, len(rows), chunk):
        block = dosages[rows[start : start + chunk]][:, columns]
        ok = ~np.isnan(block)
        total += np.where(ok, block, 0.0).sum(axis=0, dtype=np.float64)
        observed += ok.sum(axis=0)
    return total, observed


def _frequency(total: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Alternative-allele frequency with a Jeffreys-style pseudo-count (never 0 or 1)."""
    return (total + 0.5) / (2.0 * observed + 1.0)


def allele_frequency_scores(
    real_dosages: np.ndarray,
    real_columns: np.ndarray,
    synth_freq: np.ndarray,
    split: Split,
    folds: np.ndarray,
    chunk: int = 128,
) -> np.ndarray:
    """Allele-frequency likelihood-ratio attack (Homer et al. 2008, PLoS Genetics;
    statistic of Sankararaman et al. 2009, Nature Genetics, "Genomic privacy and limits of
    individual detection in a pool").

    Score = sum_j [x_j log(p_j / q_j) + (2 - x_j) log((1 - p_j) / (1 - q_j))] over observed
    SNPs: the log-likelihood ratio of the target's genotype under the synthetic allele
    frequencies p against reference frequencies q (binomial, SNPs treated as independent as
    in Sankararaman et al.; LD inflates the variance equally for members and holdout). q is
    the holdout of the other cross-fitting fold, so holdout targets are never scored against
    their own frequencies. Frequencies carry a 0.5 pseudo-count. All shared SNPs are used.
    """
    return allele_frequency_score_draws(
        real_dosages, real_columns, synth_freq, [split.holdout], folds, chunk
    )[0]


def allele_frequency_score_draws(
    real_dosages: np.ndarray,
    real_columns: np.ndarray,
    synth_freq: np.ndarray,
    holdouts: Sequence[np.ndarray],
    folds: np.ndarray,
    chunk: int = 128,
) -> np.ndarray:
    """:func:`allele_frequency_scores` with the reference frequencies built from each of
    ``holdouts`` (holdout rows, repeats allowed: bootstrap resamples of the holdout) in turn:
    one row of scores per entry, in one pass over the dosages."""
    n = real_dosages.shape[0]
    scores = np.empty((len(holdouts), n))
    p = synth_freq
    for f in (0, 1):
        weights, slopes = [], []
        for rows in holdouts:
            ref_idx = rows[folds[rows] != f]
            total, observed = allele_counts(real_dosages, ref_idx, real_columns)
            q = _frequency(total, observed)
            a = np.log(p / q)
            b = np.log((1.0 - p) / (1.0 - q))
            slopes.append(a - b)
            weights.append(b)
        slope, weight = np.column_stack(slopes), np.column_stack(weights)
        targets = np.flatnonzero(folds == f)
        for start in range(0, len(targets), chunk):
            rows = targets[start : start + chunk]
            x = real_dosages[rows][:, real_columns].astype(np.float64)
            ok = ~np.isnan(x)
            x = np.where(ok, x, 0.0)
            scores[:, rows] = (x @ slope + 2.0 * (ok @ weight)).T
    return scores
