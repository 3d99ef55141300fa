"""Scoring of privacy attacks: ROC/AUC with confidence intervals, TPR at low FPR, success rates.

Membership attacks are scored the way Carlini et al. 2022 ("Membership inference attacks from
first principles") recommend: the full ROC curve and the true-positive rate at a low
false-positive rate next to the AUC. AUC is the Mann-Whitney statistic (ties count one half);
its confidence interval is a stratified percentile bootstrap (members and holdout resampled
separately, seeded), widened by the variance of the reference an attack scores against when
that reference is drawn from the holdout; where the scores are not independent (the shadow
attack) it is normal, with the AUC's sd over reruns of the attack.
Success rates of attribute inference use the Wilson score interval and the residual-risk
formula of anonymeter (Giomi et al. 2023, "A unified framework for quantifying privacy risk in
synthetic data", PoPETs), reimplemented here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import sqrt
from typing import Any

import numpy as np
from scipy import stats

#: FPR levels at which the TPR is reported.
FPR_LEVELS: tuple[float, ...] = (0.01, 0.001)
#: Most points of a ROC curve kept in the results document.
MAX_ROC_POINTS = 200


@dataclass(frozen=True)
class AttackResult:
    """One membership attack, aggregate only: scores of individuals never leave this object."""

    method: str
    auc: float
    auc_ci: tuple[float, float]
    tpr_at_fpr: dict[float, float]
    tpr_at_fpr_ci: dict[float, tuple[float, float]]
    roc_fpr: np.ndarray
    roc_tpr: np.ndarray
    n_members: int
    n_holdout: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "auc": _r(self.auc),
            "auc_ci": [_r(self.auc_ci[0]), _r(self.auc_ci[1])],
        }
        for level in FPR_LEVELS:
            out[f"tpr_at_fpr_{level:g}"] = _r(self.tpr_at_fpr[level])
            out[f"tpr_at_fpr_{level:g}_ci"] = [_r(x) for x in self.tpr_at_fpr_ci[level]]
        out["roc"] = {"fpr": [_r(x) for x in self.roc_fpr], "tpr": [_r(x) for x in self.roc_tpr]}
        out["method"] = self.method
        out["n_members"] = self.n_members
        out["n_holdout"] = self.n_holdout
        # below 1/n_holdout a "TPR at FPR" is the TPR at FPR = 0 (no interpolation)
        out["fpr_resolution"] = _r(1.0 / max(self.n_holdout, 1))
        out.update(self.extra)
        return out


def _r(x: float, digits: int = 6) -> float:
    return float(round(float(x), digits))


def auc_mann_whitney(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + 0.5 P(tie)."""
    pos = np.asarray(pos, dtype=np.float64)[None, :]
    neg = np.asarray(neg, dtype=np.float64)[None, :]
    return float(auc_rows(pos, neg)[0])


def auc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """:func:`auc_mann_whitney` of each row of (replicates x n) positive and negative
    score arrays, by ranks (ties count one half)."""
    n1, n0 = pos.shape[1], neg.shape[1]
    ranks = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def tpr_at_fpr_direct(pos: np.ndarray, neg: np.ndarray, level: float) -> np.ndarray:
    """TPR at FPR <= ``level`` for each row of (replicates x n) score arrays: with
    f = floor(level x n_neg) false positives allowed, the threshold must lie above the
    (f + 1)-th largest negative score v, so TPR = share of positives > v. Equals
    :func:`tpr_at_fpr` on the exact ROC curve."""
    pos, neg = np.atleast_2d(pos), np.atleast_2d(neg)
    f = int(np.floor(level * neg.shape[1] + 1e-9))
    if f >= neg.shape[1]:
        return np.ones(pos.shape[0])
    v = -np.partition(-neg, f, axis=1)[:, f]
    return (pos > v[:, None]).mean(axis=1)


def bootstrap_auc_ci(
    pos: np.ndarray,
    neg: np.ndarray,
    *,
    n_bootstrap: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Stratified percentile bootstrap CI of the AUC (positives and negatives resampled
    separately, so every replicate keeps the group sizes)."""
    return bootstrap_cis(pos, neg, n_bootstrap=n_bootstrap, rng=rng, confidence=confidence)[0]


def bootstrap_cis(
    pos: np.ndarray,
    neg: np.ndarray,
    *,
    n_bootstrap: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[tuple[float, float], dict[float, tuple[float, float]]]:
    """Stratified percentile bootstrap CIs of the AUC and of the TPR at each FPR level
    (one set of replicates for all)."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    n1, n0 = len(pos), len(neg)
    bp = pos[rng.integers(n1, size=(n_bootstrap, n1))]
    bn = neg[rng.integers(n0, size=(n_bootstrap, n0))]
    aucs = auc_rows(bp, bn)
    alpha = (1.0 - confidence) / 2.0
    q = [alpha, 1.0 - alpha]
    lo, hi = np.quantile(aucs, q)
    tprs = {}
    for level in FPR_LEVELS:
        tlo, thi = np.quantile(tpr_at_fpr_direct(bp, bn, level), q)
        tprs[level] = (float(tlo), float(thi))
    return (float(lo), float(hi)), tprs


def tpr_null(n_members: int, n_holdout: int, level: float, observed: float) -> dict[str, float]:
    """What the TPR at FPR ``level`` does when nothing leaks: its mean, its 95th percentile
    and the ``observed`` TPR's p-value when which individuals are members and which holdout
    is random given the scores (true when the synthetic data do not depend on who is a
    member). :func:`tpr_at_fpr_direct` counts the members above the (f + 1)-th highest
    holdout score, f = floor(level x n_holdout); with the labels random that count is
    negative hypergeometric (the members drawn before f + 1 holdout individuals, from
    n_members of one kind and n_holdout of the other), so these figures are exact (tied
    scores only lower a TPR: its p-value is then conservative). A bootstrap CI of a tail TPR
    set against the no-leak mean misreads its spread: on a demo release (stop 62) the
    allele-frequency attack's TPR at 1% FPR had a bootstrap CI above that mean on the SNPs
    no member's genotype reaches, where only chance can act."""
    f = int(np.floor(level * n_holdout + 1e-9))
    count = stats.nhypergeom(n_members + n_holdout, n_members, min(f + 1, n_holdout))
    k = round(observed * n_members)
    return {
        "mean": _r(count.mean() / n_members),
        "q95": _r(count.ppf(0.95) / n_members),
        "p_value": _r(count.sf(k - 1)),
    }


def roc_curve(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact ROC curve (one point per distinct threshold, from (0, 0) to (1, 1)); a higher
    score means "member"."""
    scores = np.concatenate([pos, neg]).astype(np.float64)
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(scores) != 0), len(scores) - 1]
    tp = np.cumsum(labels)[last_of_run]
    fp = np.cumsum(1.0 - labels)[last_of_run]
    tpr = np.r_[0.0, tp / max(len(pos), 1)]
    fpr = np.r_[0.0, fp / max(len(neg), 1)]
    return fpr, tpr


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, level: float) -> float:
    """Largest TPR over thresholds whose FPR does not exceed ``level`` (no interpolation, so
    with fewer than 1/level non-members this is the TPR at FPR = 0)."""
    ok = fpr <= level + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def thin_curve(
    fpr: np.ndarray, tpr: np.ndarray, max_points: int = MAX_ROC_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` points of a ROC curve, evenly spaced along it, endpoints
    included (the curve is monotone, so the kept points stay on it)."""
    if len(fpr) <= max_points:
        return fpr, tpr
    idx = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(np.int64))
    return fpr[idx], tpr[idx]


def score_attack(
    member_scores: np.ndarray,
    holdout_scores: np.ndarray,
    *,
    method: str,
    n_bootstrap: int,
    rng: np.random.Generator,
    extra: dict[str, Any] | None = None,
    auc_sd: float | None = None,
    reference_sd: float | None = None,
) -> AttackResult:
    """Score a membership attack: higher score = more likely a member.

    The CIs come from a stratified bootstrap of the scores. When the scores are not
    independent, ``auc_sd`` (the AUC's sd, estimated by rerunning the attack) gives the AUC's
    CI instead, normal around the AUC. ``reference_sd``: the AUC's sd over resamples of the
    reference the scores are computed against, which a bootstrap of fixed scores leaves out;
    the AUC's CI is widened to include it (:func:`widen`)."""
    m = np.asarray(member_scores, dtype=np.float64)
    h = np.asarray(holdout_scores, dtype=np.float64)
    if not (np.isfinite(m).all() and np.isfinite(h).all()):
        raise ValueError(f"{method}: non-finite attack scores")
    fpr, tpr = roc_curve(m, h)
    thin_f, thin_t = thin_curve(fpr, tpr)
    auc_ci, tpr_ci = bootstrap_cis(m, h, n_bootstrap=n_bootstrap, rng=rng)
    auc = auc_mann_whitney(m, h)
    extra = dict(extra or {})
    if auc_sd is not None:
        auc_ci = widen(auc, (auc, auc), auc_sd)
        extra["auc_sd"] = _r(auc_sd)
    if reference_sd is not None:
        auc_ci = widen(auc, auc_ci, reference_sd)
        extra["auc_reference_sd"] = _r(reference_sd)
    tprs = {level: tpr_at_fpr(fpr, tpr, level) for level in FPR_LEVELS}
    if auc_sd is None:  # independent scores: exchangeable labels when nothing leaks
        extra["tpr_at_fpr_0.01_null"] = tpr_null(len(m), len(h), 0.01, tprs[0.01])
    return AttackResult(
        method=method,
        auc=auc,
        auc_ci=auc_ci,
        tpr_at_fpr_ci=tpr_ci,
        tpr_at_fpr=tprs,
        roc_fpr=thin_f,
        roc_tpr=thin_t,
        n_members=len(m),
        n_holdout=len(h),
        extra=extra,
    )


def widen(
    estimate: float, ci: tuple[float, float], extra_sd: float, confidence: float = 0.95
) -> tuple[float, float]:
    """``ci`` around ``estimate`` widened by an independent variance component of sd
    ``extra_sd``: each side's distance to the estimate scaled by sqrt(s^2 + extra_sd^2) / s,
    with s the sd that side implies (its distance over the normal quantile); clipped to
    [0, 1]."""
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    out = []
    for side, bound in enumerate(ci):
        gap = abs(bound - estimate)
        sd = gap / z
        wide = z * sqrt(sd * sd + extra_sd * extra_sd)
        out.append(estimate - wide if side == 0 else estimate + wide)
    return max(0.0, out[0]), min(1.0, out[1])


# ---------------------------------------------------------------------------- rates


@dataclass(frozen=True)
class Rate:
    """A Wilson-centred success rate and its half-width (anonymeter's ``SuccessRate``)."""

    value: float
    error: float
    n: int
    k: float


def wilson_rate(k: float, n: int, confidence: float = 0.95) -> Rate:
    """Wilson score interval (Wilson 1927): centre (k + z²/2)/(n + z²) and half-width
    z/(n + z²) sqrt(k(n-k)/n + z²/4)."""
    if n <= 0:
        return Rate(float("nan"), float("nan"), 0, k)
    z = float(stats.norm.ppf(0.5 * (1.0 + confidence)))
    z2 = z * z
    centre = (k + 0.5 * z2) / (n + z2)
    half = z / (n + z2) * sqrt(max(k * (n - k) / n, 0.0) + 0.25 * z2)
    return Rate(centre, half, n, k)


def wilson_interval(k: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    rate = wilson_rate(k, n, confidence)
    return max(rate.value - rate.error, 0.0), min(rate.value + rate.error, 1.0)


def residual_risk(attack: Rate, control: Rate) -> tuple[float, tuple[float, float]]:
    """Anonymeter's risk: (attack - control) / (1 - control), error propagated to first
    order, point and interval clipped to [0, 1]."""
    if control.value >= 1.0:
        return float("nan"), (float("nan"), float("nan"))
    risk = (attack.value - control.value) / (1.0 - control.value)
    d_attack = 1.0 / abs(1.0 - control.value)
    d_control = (attack.value - 1.0) / (1.0 - control.value) ** 2
    err = sqrt((attack.error * d_attack) ** 2 + (control.error * d_control) ** 2)

    def clip(x: float) -> float:
        return min(max(x, 0.0), 1.0)

    return clip(risk), (clip(risk - err), clip(risk + err))


def histogram(values: np.ndarray, edges: np.ndarray) -> dict[str, list[float]]:
    """Counts on fixed edges (values beyond the last edge go in the last bin)."""
    clipped = np.clip(values, edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=edges)
    return {"hist": [int(c) for c in counts], "edges": [_r(e) for e in edges]}
