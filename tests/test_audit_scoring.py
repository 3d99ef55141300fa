"""Scoring of attacks: AUC, bootstrap CI, ROC, TPR at low FPR, Wilson rates, residual risk.

References: scipy's Mann-Whitney U (AUC = U / (n1 n0)), statsmodels' Wilson interval and
anonymeter's own ``success_rate``/``residual_success`` (installed test dependency).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from dpgenome.audit.scoring import (
    MAX_ROC_POINTS,
    auc_mann_whitney,
    bootstrap_auc_ci,
    residual_risk,
    roc_curve,
    score_attack,
    thin_curve,
    tpr_at_fpr,
    tpr_at_fpr_direct,
    tpr_null,
    widen,
    wilson_interval,
    wilson_rate,
)


def test_auc_mann_whitney__matches_scipy_u_statistic_with_ties():
    rng = np.random.default_rng(0)
    pos = rng.integers(0, 6, size=57).astype(float)  # many ties
    neg = rng.integers(0, 5, size=43).astype(float)
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    assert auc_mann_whitney(pos, neg) == pytest.approx(u / (57 * 43), abs=1e-12)


def test_auc_mann_whitney__separated_and_identical_scores():
    assert auc_mann_whitney(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert auc_mann_whitney(np.zeros(5), np.zeros(7)) == 0.5


def test_bootstrap_auc_ci__covers_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(0.5, 1, 200), rng.normal(0, 1, 150)
    ci1 = bootstrap_auc_ci(pos, neg, n_bootstrap=300, rng=np.random.default_rng(7))
    ci2 = bootstrap_auc_ci(pos, neg, n_bootstrap=300, rng=np.random.default_rng(7))
    assert ci1 == ci2
    auc = auc_mann_whitney(pos, neg)
    assert ci1[0] < auc < ci1[1]
    # Hanley & McNeil (1982) standard error as an independent check of the width (+-30%)
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt((auc * (1 - auc) + 199 * (q1 - auc**2) + 149 * (q2 - auc**2)) / (200 * 150))
    assert (ci1[1] - ci1[0]) == pytest.approx(2 * 1.96 * se, rel=0.3)


def test_roc_curve__hand_example_and_tpr_at_fpr():
    pos = np.array([0.9, 0.8, 0.4])
    neg = np.array([0.7, 0.3, 0.2, 0.1])
    fpr, tpr = roc_curve(pos, neg)
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.25, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1, 1])
    assert tpr_at_fpr(fpr, tpr, 0.01) == pytest.approx(2 / 3)
    assert tpr_at_fpr(fpr, tpr, 0.25) == 1.0


def test_thin_curve__keeps_at_most_200_points_with_endpoints():
    rng = np.random.default_rng(2)
    fpr, tpr = roc_curve(rng.normal(size=1000), rng.normal(size=900))
    f, t = thin_curve(fpr, tpr)
    assert len(f) <= MAX_ROC_POINTS and f[0] == 0 and f[-1] == 1 and t[-1] == 1
    assert np.all(np.diff(f) >= 0) and np.all(np.diff(t) >= 0)


def test_score_attack__to_dict_has_the_documented_keys():
    rng = np.random.default_rng(3)
    res = score_attack(
        rng.normal(size=50), rng.normal(size=40), method="m", n_bootstrap=50, rng=rng
    )
    d = res.to_dict()
    for key in ("auc", "auc_ci", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "roc", "method"):
        assert key in d
    assert len(d["roc"]["fpr"]) == len(d["roc"]["tpr"]) <= 200


def test_wilson_interval__matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in [(0, 10), (3, 10), (47, 120), (120, 120)]:
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((lo, hi), abs=1e-9)


def test_residual_risk__matches_anonymeter():
    from anonymeter.stats.confidence import residual_success, success_rate

    for (ka, na), (kc, nc) in [((80, 100), (50, 100)), ((30, 200), (28, 150)), ((5, 40), (9, 40))]:
        ref_a, ref_c = success_rate(na, ka, 0.95), success_rate(nc, kc, 0.95)
        a, c = wilson_rate(ka, na), wilson_rate(kc, nc)
        assert (a.value, a.error) == pytest.approx((ref_a.value, ref_a.error), abs=1e-12)
        ref = residual_success(ref_a, ref_c).to_risk()
        risk, ci = residual_risk(a, c)
        assert risk == pytest.approx(ref.value, abs=1e-12)
        assert ci == pytest.approx(ref.ci, abs=1e-12)


def test_tpr_at_fpr_direct__equals_exact_roc_value():
    from dpgenome.audit.scoring import tpr_at_fpr_direct

    rng = np.random.default_rng(8)
    for n0 in (50, 218, 1000):
        pos = rng.integers(0, 40, size=300).astype(float)  # ties included
        neg = rng.integers(0, 35, size=n0).astype(float)
        fpr, tpr = roc_curve(pos, neg)
        for level in (0.0, 0.001, 0.01, 0.1, 0.5):
            assert tpr_at_fpr_direct(pos, neg, level)[0] == pytest.approx(
                tpr_at_fpr(fpr, tpr, level)
            )


def test_score_attack__tpr_ci_covers_the_estimate():
    rng = np.random.default_rng(9)
    res = score_attack(
        rng.normal(1, 1, 400), rng.normal(0, 1, 300), method="m", n_bootstrap=200, rng=rng
    )
    lo, hi = res.tpr_at_fpr_ci[0.01]
    assert lo <= res.tpr_at_fpr[0.01] <= hi


def test_widen__adds_an_independent_variance_component_to_each_side():
    """Each side's implied sd (its distance over z) and the extra sd add in quadrature: a
    symmetric +-0.05 CI and an extra sd of 0.03 give +-1.96 sqrt((0.05/1.96)^2 + 0.03^2);
    an asymmetric one keeps its asymmetry; a zero-width CI becomes +-1.96 sd; [0, 1] holds."""
    z = stats.norm.ppf(0.975)
    lo, hi = widen(0.5, (0.45, 0.55), 0.03)
    half = z * np.hypot(0.05 / z, 0.03)
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half))
    lo, hi = widen(0.6, (0.5, 0.62), 0.01)
    assert 0.6 - lo == pytest.approx(z * np.hypot(0.1 / z, 0.01))
    assert hi - 0.6 == pytest.approx(z * np.hypot(0.02 / z, 0.01))
    assert widen(0.5, (0.5, 0.5), 0.1) == pytest.approx((0.5 - 0.1 * z, 0.5 + 0.1 * z))
    assert widen(0.98, (0.95, 0.99), 0.05)[1] == 1.0
    a = score_attack(
        np.arange(10.0), np.arange(10.0), method="x", n_bootstrap=50, rng=np.random.default_rng(0)
    )
    b = score_attack(
        np.arange(10.0),
        np.arange(10.0),
        method="x",
        n_bootstrap=50,
        rng=np.random.default_rng(0),
        reference_sd=0.05,
    )
    assert b.auc_ci == pytest.approx(widen(a.auc, a.auc_ci, 0.05))
    assert b.to_dict()["auc_reference_sd"] == 0.05 and "auc_reference_sd" not in a.to_dict()


def test_tpr_null__the_exact_law_is_what_label_shuffles_give() -> None:
    """With the labels random given the scores, the TPR at 1% FPR follows the negative
    hypergeometric law; 20,000 shuffles of fixed scores agree with its mean, its upper
    quantile and the p-value of an observed TPR (Monte Carlo error well inside the
    tolerances)."""
    rng = np.random.default_rng(0)
    m, h = rng.normal(size=786), rng.normal(size=174)
    pooled = np.concatenate([m, h])
    shuffled = np.array([rng.permutation(pooled) for _ in range(20_000)])
    sims = tpr_at_fpr_direct(shuffled[:, :786], shuffled[:, 786:], 0.01)
    null = tpr_null(786, 174, 0.01, 19 / 786)
    assert null["mean"] == pytest.approx(sims.mean(), abs=5e-4)
    assert null["mean"] == pytest.approx(2 / 175, abs=1e-6)  # (f + 1) / (n0 + 1), f = 1
    assert np.mean(sims <= null["q95"]) == pytest.approx(0.95, abs=0.01)
    assert null["p_value"] == pytest.approx(np.mean(sims >= 19 / 786), abs=0.006)
    assert 0.08 < null["p_value"] < 0.12  # 19 of 786 members above the 2nd-highest holdout


def test_score_attack__a_leak_beyond_the_null_and_none_for_dependent_scores() -> None:
    rng = np.random.default_rng(4)
    leak = score_attack(
        rng.normal(size=400) + 1.5, rng.normal(size=200), method="m", n_bootstrap=20, rng=rng
    ).to_dict()
    null = leak["tpr_at_fpr_0.01_null"]
    assert leak["tpr_at_fpr_0.01"] > null["q95"] and null["p_value"] < 1e-6
    shadow = score_attack(
        rng.normal(size=40), rng.normal(size=40), method="m", n_bootstrap=20, rng=rng, auc_sd=0.05
    ).to_dict()
    assert "tpr_at_fpr_0.01_null" not in shadow  # games cluster in targets: not exchangeable
