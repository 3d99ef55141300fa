"""Public-panel negative control for the distance audits (DCR attack, DCR share).

With a public reference panel, the synthetic genotypes come from a model trained on the
panel, so synthetic records resemble panel individuals. A real individual's distance to the
synthetic cohort then partly measures how related that individual is to the panel: a fact
about the population, not about membership. The panel was drawn independently of the
member/holdout split, so the same statistics computed with the panel in place of the
synthetic cohort are a *negative control*: 0.5 in expectation, and whatever they show on
this split is the split's chance (which members happen to have relatives in the panel). The
release's own contribution is the excess, synthetic minus control, computed paired (the same
resampled members and holdout for both) so that the split's chance cancels.

Both sides use the genotype block only (the panel has no phenotypes), on the same SNPs.
A policy with ``nearest_neighbour.public_panel_control`` judges the DCR attack and share by
this excess for the genotypes and by the phenotype columns alone
(``audit.nearest_neighbour.phenotypes_only``) for the rest; other policies judge the raw
figures, and a reviewer who accepts the control's explanation records a signed override
(``dpgenome export --override-reason ... --signer ...``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from dpgenome.audit.membership import dcr_scores
from dpgenome.audit.neighbours import share_closer, share_estimate
from dpgenome.audit.scoring import auc_mann_whitney, auc_rows


def _r(x: float) -> float:
    return float(round(float(x), 6))


def public_control(
    d_synthetic: np.ndarray,
    d_public: np.ndarray,
    members: np.ndarray,
    holdout: np.ndarray,
    rng: np.random.Generator,
    *,
    confidence: float = 0.95,
    n_bootstrap: int = 200,
) -> dict[str, Any]:
    """DCR AUC and DCR share against the synthetic cohort and against the public panel, and
    their paired differences with bootstrap CIs.

    ``d_synthetic`` is real x synthetic and ``d_public`` real x panel genotype distance on
    the same SNPs. AUC CI: stratified percentile bootstrap of the paired difference. Share
    CI: estimate +- z x bootstrap SE, members, holdout and each reference set resampled (as
    :func:`dpgenome.audit.neighbours.share_closer_to_members`).
    """
    members, holdout = np.asarray(members), np.asarray(holdout)
    s_syn, s_pub = dcr_scores(d_synthetic), dcr_scores(d_public)
    auc_syn = auc_mann_whitney(s_syn[members], s_syn[holdout])
    auc_pub = auc_mann_whitney(s_pub[members], s_pub[holdout])
    # paired bootstrap: the same resampled members and holdout score both references
    mem = members[rng.integers(len(members), size=(n_bootstrap, len(members)))]
    hold = holdout[rng.integers(len(holdout), size=(n_bootstrap, len(holdout)))]
    diffs = auc_rows(s_syn[mem], s_syn[hold]) - auc_rows(s_pub[mem], s_pub[hold])
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])

    share_syn = share_estimate(d_synthetic, members, holdout, rng)[0]
    share_pub = share_estimate(d_public, members, holdout, rng)[0]
    k = min(len(members), len(holdout))
    boot = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        mem_b = rng.choice(members, size=k, replace=True)
        hold_b = rng.choice(holdout, size=k, replace=True)
        boot[b] = share_closer(d_synthetic, mem_b, hold_b, rng) - share_closer(
            d_public, mem_b, hold_b, rng
        )
    z = float(stats.norm.ppf(0.5 * (1.0 + confidence)))
    excess = share_syn - share_pub
    half = z * float(np.std(boot, ddof=1))
    return {
        "n_public": int(d_public.shape[1]),
        "dcr_auc_synthetic": _r(auc_syn),
        "dcr_auc_public": _r(auc_pub),
        "dcr_auc_excess": _r(auc_syn - auc_pub),
        "dcr_auc_excess_ci": [_r(lo), _r(hi)],
        "share_closer_synthetic": _r(share_syn),
        "share_closer_public": _r(share_pub),
        "share_closer_excess": _r(excess),
        "share_closer_excess_ci": [_r(excess - half), _r(excess + half)],
        "method": (
            "the DCR attack and the DCR share on genotype distance only, once against the "
            "synthetic cohort and once against the public panel (a negative control: drawn "
            "independently of the split, so 0.5 in expectation); excess = synthetic minus "
            "control, paired bootstrap (same resampled members and holdout)"
        ),
    }
