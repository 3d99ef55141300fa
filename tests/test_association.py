"""Private selection of associated regions and the Gaussian release of their association."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dpgenome import association as A
from dpgenome.errors import ConfigError
from dpgenome.model import make_layout
from dpgenome.testing import ToyConfig, toy_cohort


@pytest.fixture(scope="module")
def toy():
    c, truth = toy_cohort(
        2, ToyConfig(n=300, n_chrom=3, snps_per_chrom=160, causal=((0, 60), (2, 100)))
    )
    y = c.phenotype("BMD")
    ok = ~np.isnan(y)
    return c.take_samples(ok), truth


def test_score_sensitivity__add_or_remove_one_individual_moves_scores_within_the_bound(toy) -> None:
    """Empirical check of the bound ``x_clip * y_clip / sqrt(n)`` (n public: the same n is
    used on both sides, as in the release), with outlying individuals included."""
    cohort, _ = toy
    cfg = A.AssociationConfig(x_clip=2.0, y_clip=1.5)
    lay = make_layout(cohort.variants, window=16, context=4)
    y = cohort.phenotype("BMD").copy()
    y[:5] = [40.0, -40.0, 12.0, -9.0, 25.0]  # outliers are clipped
    ref = A.Reference(np.clip(cohort.alt_frequency() + 0.05, 0, 1), y_mean=0.2, y_sd=1.1)
    n = cohort.n_samples
    bound = A.score_sensitivity(cfg, n)

    def scores(keep: np.ndarray) -> np.ndarray:
        y_std = A.standardise_phenotype(y[keep], ref, cfg.y_clip)
        s = A.snp_scores(cohort.dosages[keep], y_std, ref.alt_freq, cfg.x_clip) * math.sqrt(
            keep.sum()
        )
        return A.window_scores(s / math.sqrt(n), lay)

    full = scores(np.ones(n, dtype=bool))
    worst = 0.0
    for i in range(0, n, 7):  # remove individual i (add = the reverse comparison)
        keep = np.ones(n, dtype=bool)
        keep[i] = False
        worst = max(worst, float(np.abs(scores(keep) - full).max()))
    assert worst <= bound * (1 + 1e-9)
    assert worst > 0.5 * bound  # the bound is not vacuous: an outlier nearly attains it


def test_select_regions__exact_mode_finds_the_planted_loci(toy) -> None:
    cohort, truth = toy
    lay = make_layout(cohort.variants, window=16, context=4)
    y = cohort.phenotype("BMD")
    ref = A.Reference(cohort.alt_frequency(), float(y.mean()), float(y.std()))
    y_std = A.standardise_phenotype(y, ref, None)
    scores = A.window_scores(A.snp_scores(cohort.dosages, y_std, ref.alt_freq, None), lay)
    cfg = A.AssociationConfig(max_regions=3, flank_bp=600_000, threshold=4.5)
    leads = A.select_regions(
        scores,
        lay,
        cfg,
        sensitivity=0.1,
        eps_select=math.inf,
        eps_test=math.inf,
        rng=np.random.default_rng(0),
    )
    causal_windows = set(lay.window_of_snp[truth.causal_index].tolist())
    found = {w for lead in leads for w in A.region_windows(lead, lay, cfg.flank_bp)}
    assert causal_windows <= found
    # excluded windows are never chosen twice
    assert len(set(leads)) == len(leads)


def test_select_regions__stops_when_nothing_passes_the_threshold() -> None:
    lay = make_layout(
        __import__("pandas").DataFrame({"id": range(64), "chr": "1", "pos": np.arange(64) + 1}),
        8,
        2,
    )
    scores = np.full(lay.n_windows, 1.0)
    cfg = A.AssociationConfig(max_regions=3)
    assert (
        A.select_regions(
            scores,
            lay,
            cfg,
            sensitivity=0.1,
            eps_select=1.0,
            eps_test=1.0,
            rng=np.random.default_rng(1),
        )
        == []
    )


def test_release_effect__noise_has_the_calibrated_scale() -> None:
    """All-zero phenotype: the release is pure noise, std = sigma * z_clip * y_clip / n."""
    rng = np.random.default_rng(0)
    n, q = 200, 4
    z = rng.normal(size=(n, q)) * 3
    draws = np.array(
        [
            A.release_effect(z, np.zeros(n), noise_multiplier=2.0, z_clip=1.5, y_clip=2.0, rng=rng)
            for _ in range(4000)
        ]
    )
    expected = 2.0 * 1.5 * 2.0 / n
    # std of a sample std from 16000 normal draws: ~ expected / sqrt(2 * 16000)
    assert draws.std() == pytest.approx(expected, rel=0.03)
    assert abs(draws.mean()) < 4 * expected / math.sqrt(draws.size)


def test_clip_rows__bounds_every_row() -> None:
    z = np.random.default_rng(2).normal(size=(50, 6)) * 5
    out = A.clip_rows(z, 2.0)
    assert np.all(np.linalg.norm(out, axis=1) <= 2.0 + 1e-12)
    small = z / 100
    np.testing.assert_allclose(A.clip_rows(small, 2.0), small)


def test_region_basis__whitened_in_the_reference(toy) -> None:
    cohort, _ = toy
    cols = np.arange(40, 90)
    center, scale, basis = A.region_basis(cohort.dosages[:, cols], 5)
    z = A.components(cohort.dosages[:, cols], center, scale, basis)
    np.testing.assert_allclose(np.cov(z.T), np.eye(5), atol=1e-5)  # float32 dosages


def test_apply_genetic_score__binary_conditional_mean_is_prevalence_plus_shift() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    y = (rng.random(n) < 0.2).astype(float)
    g = np.where(rng.random(n) < 0.5, 0.15, -0.15)
    out = A.apply_genetic_score(y, g, binary=True, y_sd=1.0, rng=rng)
    assert set(np.unique(out)) <= {0.0, 1.0}
    for v in (0.15, -0.15):
        assert out[g == v].mean() == pytest.approx(0.2 + v, abs=0.006)


def test_apply_genetic_score__continuous_keeps_variance_and_missingness() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(3.0, 2.0, size=100_000)
    y[:100] = np.nan
    g = rng.normal(size=y.size) * 0.4
    out = A.apply_genetic_score(y, g, binary=False, y_sd=2.0, rng=rng)
    assert np.isnan(out[:100]).all()
    assert np.nanstd(out) == pytest.approx(2.0, rel=0.01)
    ok = ~np.isnan(out)
    assert np.corrcoef(out[ok], g[ok])[0, 1] == pytest.approx(0.4, abs=0.01)


def test_association_config__rejects_invalid_values() -> None:
    with pytest.raises(ConfigError):
        A.AssociationConfig(y_clip=0.0)
    with pytest.raises(ConfigError):
        A.AssociationConfig(max_regions=-1)
