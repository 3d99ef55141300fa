"""Membership attacks with known answers: a copy of the members is found, fresh draws from
the generating distribution are not (AUC within its CI of 0.5)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from dpgenome.audit import AuditConfig, run_audits
from dpgenome.audit.features import genotype_distance, match_variants, threshold_code
from dpgenome.audit.membership import allele_frequency_scores, cross_fit_folds
from dpgenome.cohort import Cohort, split_members
from dpgenome.errors import CohortError
from dpgenome.testing import ToyConfig, toy_cohort


def _renamed(cohort: Cohort, prefix: str) -> Cohort:
    cohort.samples["id"] = [f"{prefix}{i:05d}" for i in range(cohort.n_samples)]
    return cohort


@cache
def world(n_real: int = 320, n_synth: int = 320):
    """Real cohort, its split, fresh draws from the same generator (same founders), and a
    copy of the members."""
    full, _ = toy_cohort(11, ToyConfig(n=n_real + n_synth))
    real = full.take_samples(np.arange(n_real))
    fresh = _renamed(full.take_samples(np.arange(n_real, n_real + n_synth)), "SYN")
    split = split_members(real, holdout_fraction=0.3, seed=0)
    copy = _renamed(real.take_samples(split.members), "SYN")
    return real, split, fresh, copy


@cache
def reports():
    real, split, fresh, copy = world()
    cfg = AuditConfig(seed=3, n_bootstrap=200)
    return run_audits(real, split, fresh, cfg).to_dict(), run_audits(
        real, split, copy, cfg
    ).to_dict()


@pytest.mark.parametrize("attack", ["dcr", "density_ratio", "allele_frequency"])
def test_run_audits__fresh_draws_give_auc_within_ci_of_half(attack):
    a = reports()[0]["attacks"][attack]
    assert a["auc_ci"][0] <= 0.5 <= a["auc_ci"][1], a["auc"]
    assert a["auc_ci"][1] - a["auc_ci"][0] < 0.25


@pytest.mark.parametrize(
    ("attack", "floor"), [("dcr", 0.99), ("density_ratio", 0.75), ("allele_frequency", 0.55)]
)
def test_run_audits__copy_of_members_is_detected(attack, floor):
    a = reports()[1]["attacks"][attack]
    assert a["auc"] >= floor
    if attack == "allele_frequency":
        # scored against 48-individual references (96 holdout, two folds): once their spread
        # is counted, the CI of this weak attack reaches 0.5 (0.495-0.649 around 0.571)
        assert a["auc_ci"][0] > 0.48 and a["auc_reference_sd"] > 0
    else:
        assert a["auc_ci"][0] > 0.5


def test_dcr__copy_of_members_has_full_tpr_at_low_fpr():
    a = reports()[1]["attacks"]["dcr"]
    assert a["tpr_at_fpr_0.01"] == 1.0 and a["tpr_at_fpr_0.001"] == 1.0


def test_allele_frequency_scores__matches_plain_loop_oracle():
    rng = np.random.default_rng(0)
    n, m = 30, 25
    dos = rng.integers(0, 3, size=(n, m)).astype(np.float32)
    dos[rng.random((n, m)) < 0.05] = np.nan
    samples = pd.DataFrame({"id": [f"i{i}" for i in range(n)]})
    variants = pd.DataFrame(
        {"id": [f"s{j}" for j in range(m)], "chr": "1", "pos": np.arange(m) + 1}
    )
    real = Cohort(dos, variants, samples)
    split = split_members(real, holdout_fraction=0.4, seed=1)
    folds = cross_fit_folds(split, n, np.random.default_rng(2))
    p = rng.uniform(0.1, 0.9, size=m)
    got = allele_frequency_scores(real.dosages, np.arange(m), p, split, folds)
    for i in range(n):
        ref = [h for h in split.holdout if folds[h] != folds[i]]
        expect = 0.0
        for j in range(m):
            obs = [dos[h, j] for h in ref if not np.isnan(dos[h, j])]
            q = (sum(obs) + 0.5) / (2 * len(obs) + 1)
            x = dos[i, j]
            if not np.isnan(x):
                expect += x * np.log(p[j] / q) + (2 - x) * np.log((1 - p[j]) / (1 - q))
        assert got[i] == pytest.approx(expect, rel=1e-6, abs=1e-6)


def test_cross_fit_folds__holdout_never_in_own_reference():
    real, split, _, _ = world()
    folds = cross_fit_folds(split, real.n_samples, np.random.default_rng(0))
    for f in (0, 1):
        ref = split.holdout[folds[split.holdout] != f]
        assert not np.isin(ref, np.flatnonzero(folds == f)).any()
        assert abs(int((folds[split.holdout] == f).sum()) - len(split.holdout) / 2) <= 1


def test_genotype_distance__equals_mean_absolute_difference():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 3, size=(7, 50)).astype(np.int8)
    b = rng.integers(0, 3, size=(5, 50)).astype(np.int8)
    want = np.abs(a[:, None, :].astype(int) - b[None, :, :]).mean(axis=2)
    np.testing.assert_allclose(
        genotype_distance(threshold_code(a), threshold_code(b)), want, atol=1e-6
    )


def test_match_variants__no_shared_snp_is_a_cohort_error():
    real, split, fresh, _ = world()
    other = fresh.take_variants(np.arange(10))
    other.variants["id"] = [f"zz{i}" for i in range(10)]
    with pytest.raises(CohortError, match="shares no SNP id"):
        match_variants(real, other)
    with pytest.raises(CohortError, match="shares no SNP id"):
        run_audits(real, split, other, AuditConfig())


def test_match_variants__reordered_synthetic_panel_is_aligned():
    real, _, fresh, _ = world()
    perm = np.random.default_rng(5).permutation(fresh.n_variants)[:500]
    shuffled = fresh.take_variants(perm)
    matched = match_variants(real, shuffled)
    assert matched.n == 500
    np.testing.assert_array_equal(
        real.variants["id"].to_numpy()[matched.real],
        shuffled.variants["id"].to_numpy()[matched.synthetic],
    )


def test_kde_logpdf__matches_scipy_gaussian_kde():
    from scipy import stats

    from dpgenome.audit.membership import kde_logpdf

    rng = np.random.default_rng(6)
    pts = rng.normal(size=(150, 4)) @ rng.normal(size=(4, 4))
    q = rng.normal(size=(30, 4))
    want = stats.gaussian_kde(pts.T).logpdf(q.T)
    np.testing.assert_allclose(kde_logpdf(pts, q, ridge=0.0), want, rtol=1e-9, atol=1e-9)
    # degenerate data (a constant column) still give finite log densities
    pts[:, 2] = 1.0
    assert np.isfinite(kde_logpdf(pts, q)).all()
