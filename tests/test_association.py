"""Private selection of associated regions and the Gaussian release of their association."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dpgenome import analysis_phenotype as aph
from dpgenome import association as A
from dpgenome import region_selection as regsel
from dpgenome.association_config import AssociationConfig
from dpgenome.cohort import PhenoType
from dpgenome.errors import ConfigError
from dpgenome.model import make_layout
from dpgenome.noise import GeneratorNoise
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
    """Empirical check of the bound ``x_clip * select_y_clip / sqrt(n)`` (n public: the same n
    is used on both sides, as in the release), with outlying individuals included."""
    cohort, _ = toy
    cfg = AssociationConfig(x_clip=2.0, y_clip=2.5, select_y_clip=1.5)
    lay = make_layout(cohort.variants, window=16, context=4)
    y = cohort.phenotype("BMD").copy()
    y[:5] = [40.0, -40.0, 12.0, -9.0, 25.0]  # outliers are clipped
    ref = A.Reference(np.clip(cohort.alt_frequency() + 0.05, 0, 1), y_mean=0.2, y_sd=1.1)
    n = cohort.n_samples
    bound = regsel.score_sensitivity(cfg, n)

    def scores(keep: np.ndarray) -> np.ndarray:
        y_std = aph.standardise_phenotype(y[keep], ref, cfg.y_clip)
        y_sel = np.clip(y_std, -cfg.select_y_clip, cfg.select_y_clip)
        s = regsel.snp_scores(cohort.dosages[keep], y_sel, ref.alt_freq, cfg.x_clip) * math.sqrt(
            keep.sum()
        )
        return regsel.window_scores(s / math.sqrt(n), lay)

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
    y_std = aph.standardise_phenotype(y, ref, None)
    scores = regsel.window_scores(regsel.snp_scores(cohort.dosages, y_std, ref.alt_freq, None), lay)
    cfg = AssociationConfig(max_regions=3, flank_bp=600_000, threshold=4.5)
    leads = _select(scores, lay, cfg, np.random.default_rng(0), eps=math.inf)
    causal_windows = set(lay.window_of_snp[truth.causal_index].tolist())
    found = {w for lead in leads for w in A.region_windows(lead, lay, cfg.flank_bp)}
    assert causal_windows <= found
    # excluded windows are never chosen twice
    assert len(set(leads)) == len(leads)


def test_select_regions__stops_when_nothing_passes_the_threshold() -> None:
    lay = make_layout(pd.DataFrame({"id": range(64), "chr": "1", "pos": np.arange(64) + 1}), 8, 2)
    scores = np.full(lay.n_windows, 1.0)
    cfg = AssociationConfig(max_regions=3)
    assert _select(scores, lay, cfg, np.random.default_rng(1)) == []


def _select(scores, lay, cfg, rng, eps: float = 1.0, null_sd: float = 1.0) -> list[int]:
    """Lead windows selected at eps_select = eps_test = ``eps`` (inf: exact) with a score
    sensitivity of 0.1."""
    chosen = regsel.select_regions(
        scores,
        lay,
        cfg,
        sensitivity=0.1,
        eps_select=eps,
        eps_test=eps,
        noise=GeneratorNoise(rng),
        null_sd=null_sd,
    )
    return [s.lead for s in chosen]


class _ScriptedNoise:
    """A stand-in generator whose Gumbel and Laplace draws are scripted (to reach the branch
    where a round's winner fails its noisy threshold test)."""

    def __init__(self, boost: dict[int, float], laplace: list[float]) -> None:
        self.boost, self.laplace_draws = boost, list(laplace)
        self.rounds = 0

    def gumbel(self, scale: float, size: int) -> np.ndarray:
        out = np.zeros(size)
        for i, v in self.boost.items():
            if self.rounds == 0 and i < size:
                out[i] = v
        self.rounds += 1
        return out

    def laplace(self, scale: float) -> float:
        return self.laplace_draws.pop(0)


def test_select_regions__a_failed_round_does_not_stop_the_later_paid_rounds() -> None:
    """Round 1's (noise-boosted) winner fails its test and is dropped; round 2, already
    charged, still runs and selects the real locus far away."""
    lay = make_layout(
        pd.DataFrame({"id": range(64), "chr": "1", "pos": np.arange(64) * 10**6}), 8, 2
    )
    scores = np.full(lay.n_windows, 1.0)
    scores[7] = 9.0  # the real locus
    cfg = AssociationConfig(max_regions=2, flank_bp=1_000_000, threshold=5.0)
    rng = _ScriptedNoise(boost={0: 100.0}, laplace=[0.0, 0.25])
    (chosen,) = regsel.select_regions(
        scores,
        lay,
        cfg,
        sensitivity=0.1,
        eps_select=1.0,
        eps_test=1.0,
        noise=GeneratorNoise(rng),  # type: ignore[arg-type]
    )
    assert rng.rounds == 2
    # the test's released value: the region's best score plus its Laplace draw (scale 0.1)
    assert (chosen.lead, chosen.score) == (7, pytest.approx(9.25))
    assert chosen.noise_sd == pytest.approx(0.1 * math.sqrt(2.0))


def test_release_effect__noise_has_the_calibrated_scale() -> None:
    """All-zero phenotype: the release is pure noise, std = sigma * z_clip * y_clip / n."""
    rng = np.random.default_rng(0)
    n, q = 200, 4
    z = rng.normal(size=(n, q)) * 3
    draws = np.array(
        [
            A.release_effect(
                z,
                np.zeros(n),
                noise_multiplier=2.0,
                z_clip=1.5,
                y_clip=2.0,
                noise=GeneratorNoise(rng),
            )
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


@pytest.mark.parametrize("weighted", [False, True])
def test_region_basis__whitened_in_the_reference(toy, weighted: bool) -> None:
    cohort, _ = toy
    cols = np.arange(40, 90)
    w = np.where(np.arange(50) < 10, 4.0, 1.0) if weighted else None
    rb = A.region_basis(cohort.dosages[:, cols], 5, w)
    center, scale, basis, loading = rb.center, rb.scale, rb.basis, rb.loading
    z = A.components(cohort.dosages[:, cols], center, scale, basis)
    np.testing.assert_allclose(np.cov(z.T), np.eye(5), atol=1e-5)  # float32 dosages
    # loading = norm of each component's covariances with the standardised SNPs
    xs = np.nan_to_num((cohort.dosages[:, cols] - center) / scale)
    cov = (xs - xs.mean(0)).T @ (z - z.mean(0)) / (len(xs) - 1)
    np.testing.assert_allclose(loading, np.linalg.norm(cov, axis=0), rtol=1e-3)


def test_region_basis__lead_weights_capture_more_of_the_lead_snps(toy) -> None:
    """Weighting the SNPs near the lead window steers the few components towards them: the
    share of the lead SNPs' variance inside the components' span grows."""
    cohort, _ = toy
    cols = np.arange(20, 140)
    lead = np.arange(55, 65)  # positions within cols

    def explained(weights: np.ndarray | None) -> float:
        rb = A.region_basis(cohort.dosages[:, cols], 3, weights)
        center, scale, basis = rb.center, rb.scale, rb.basis
        xs = np.nan_to_num((cohort.dosages[:, cols] - center) / scale)
        z = xs @ basis
        fit = z @ np.linalg.lstsq(z, xs[:, lead], rcond=None)[0]
        return float((fit**2).sum() / (xs[:, lead] ** 2).sum())

    w = np.where(np.isin(np.arange(len(cols)), lead), 5.0, 1.0)
    assert explained(w) > explained(None) + 0.05


def test_column_weights__lead_flank_on_the_public_map(toy) -> None:
    cohort, _ = toy
    layout = make_layout(cohort.variants, 16, 8)
    cfg = AssociationConfig(lead_flank_bp=0, lead_weight=3.0)
    cols = A.region_columns(4, layout, 10_000_000)
    w = A.column_weights(4, cols, layout, cfg)
    # flank 0: exactly the lead window's own SNPs weigh 3
    lead_snps = layout.snp_index[4][layout.snp_index[4] >= 0]
    np.testing.assert_array_equal(
        np.flatnonzero(w == 3.0), np.flatnonzero(np.isin(cols, lead_snps))
    )
    assert set(np.unique(w)) == {1.0, 3.0}


def test_near_lead__the_lead_windows_flank_or_no_limit(toy) -> None:
    cohort, _ = toy
    layout = make_layout(cohort.variants, 16, 8)
    cols = A.region_columns(4, layout, 10_000_000)
    assert A.near_lead(4, cols, layout, None) is None
    near = A.near_lead(4, cols, layout, 0)
    lead_snps = layout.snp_index[4][layout.snp_index[4] >= 0]
    np.testing.assert_array_equal(np.flatnonzero(near), np.flatnonzero(np.isin(cols, lead_snps)))


def test_implied_lead__reads_the_effect_off_an_allowed_snp_only(toy) -> None:
    """An effect pointing at a SNP outside ``allowed`` is read off the best-aligned allowed
    one, never the excluded one; with no SNP allowed there is no implied lead."""
    cohort, _ = toy
    ref = cohort.dosages[:, 20:140].astype(np.float64)
    rb = A.region_basis(ref, 6)
    first = A.implied_lead(rb, rb.cov[100] * 0.3, 0.0, 0.0, 0.0)
    assert first is not None
    j = first[0]
    allowed = np.ones(rb.cov.shape[0], dtype=bool)
    allowed[j] = False
    other = A.implied_lead(rb, rb.cov[100] * 0.3, 0.0, 0.0, 0.0, allowed)
    assert other is not None and other[0] != j and allowed[other[0]]
    assert A.implied_lead(rb, rb.cov[100] * 0.3, 0.0, 0.0, 0.0, np.zeros_like(allowed)) is None


def test_typical_draw__median_lambda_among_draws_without_a_stray_hit() -> None:
    lambdas = [1.2, 1.0, 1.1, 0.9, 1.05]
    assert A.typical_draw(lambdas, [False] * 5) == 4  # 0.9, 1.0, 1.05, 1.1, 1.2
    # draw 2 (1.1) has a hit outside the regions: the lower median of the other four
    assert A.typical_draw(lambdas, [False, False, True, False, False]) == 1
    assert A.typical_draw(lambdas, [True, True, True, True, False]) == 4
    assert A.typical_draw(lambdas, [True] * 5) == 4  # no clean draw: the median of all
    assert A.typical_draw([1.3], [False]) == 0
    with pytest.raises(ValueError, match="one lambda"):
        A.typical_draw([1.0, 1.1], [False])


def test_explained_log10_p__what_the_released_targets_imply_per_snp() -> None:
    """A region whose one component is SNP 0 (standardised) with released cross-moment 0.2:
    a copy of SNP 0 is explained at correlation 0.2, a SNP independent of it at ~0, SNPs
    outside the region at exactly 0; and a phenotype matched to the target does give the
    copy that correlation (what the function predicts for every draw)."""
    rng = np.random.default_rng(11)
    n = 2000
    x0 = rng.binomial(2, 0.4, size=n).astype(float)
    other = rng.binomial(2, 0.3, size=n).astype(float)
    dosages = np.column_stack([x0, x0, other, other, x0, other])
    cols = np.arange(4)
    center, scale = dosages[:, cols].mean(axis=0), dosages[:, cols].std(axis=0)
    basis = np.zeros((4, 1))
    basis[0, 0] = 1.0
    region = A.Region(0, cols, center, scale, basis, np.array([0.2]), np.ones(1))
    lp = A.explained_log10_p(dosages, [region])
    expected = -np.log10(2 * stats.norm.sf(0.2 * math.sqrt(n)))
    assert lp[0] == pytest.approx(expected, rel=1e-6) and lp[1] == pytest.approx(expected)
    assert lp[2] < 2.0 and lp[3] < 2.0
    assert lp[4] == lp[5] == 0.0  # outside the region: nothing released there
    assert A.explained_log10_p(dosages, [], 100).tolist() == [0.0] * 6
    # fewer tested rows: the same correlation is weaker evidence
    assert A.explained_log10_p(dosages, [region], n // 4)[0] < lp[0]
    # a matched pairing realises it
    y = rng.normal(size=n)
    y = (y - y.mean()) / y.std()
    z = A.region_components(dosages, [region])
    perm, _ = A.match_rows(z, region.targets() * n, y, rng)
    assert np.corrcoef(dosages[:, 1], y[perm])[0, 1] == pytest.approx(0.2, abs=0.01)


def test_match_rows__reproduces_the_target_cross_moments_with_a_permutation() -> None:
    """Binary phenotype, 3 components: a permutation of the rows reaches target moments that
    a random pairing misses by ~sqrt(n) per component; nothing but the order changes."""
    rng = np.random.default_rng(0)
    n = 2000
    z = rng.normal(size=(n, 3))
    z -= z.mean(axis=0)
    y = (rng.random(n) < 0.2).astype(float)
    y = (y - y.mean()) / y.std()
    target = np.array([0.25, -0.1, 0.0]) * n  # correlations 0.25, -0.1, 0 with the components
    perm, residual = A.match_rows(z, target, y, rng)
    assert sorted(perm.tolist()) == list(range(n))
    moved = y[perm]
    np.testing.assert_allclose(np.sort(moved), np.sort(y))
    np.testing.assert_allclose(z.T @ moved, target, atol=0.02 * n * 0.25)
    assert residual < 0.02
    # control: an unmatched random order is off by ~sqrt(n) per component
    assert np.linalg.norm(z.T @ y[rng.permutation(n)] - target) > 20


def test_match_rows__continuous_with_missing_values_keeps_them() -> None:
    rng = np.random.default_rng(1)
    n = 1000
    z = rng.normal(size=(n, 2))
    z -= z.mean(axis=0)
    y = rng.normal(size=n)
    y[:50] = np.nan
    target = np.array([0.3, 0.1]) * n
    perm, residual = A.match_rows(z, target, y, rng)
    assert np.isnan(y[perm]).sum() == 50
    assert residual < 0.02
    np.testing.assert_allclose(z.T @ np.nan_to_num(y[perm]), target, rtol=0.03, atol=3)


def test_match_tested_rows__reproduces_the_targets_over_the_tested_rows() -> None:
    """A tenth of the phenotype rows are untested (missing phenotype or covariate): the
    correlations a GWAS of the tested rows sees are the targets (matching those rows as
    zeros left the tested rows' correlations off by the untested share and their placement),
    and the untested rows land on the other genotype rows, not on the extremes of a
    component."""
    rng = np.random.default_rng(2)
    n = 2000
    z = rng.normal(size=(n, 2))
    y = rng.normal(size=n)
    tested = rng.random(n) > 0.1
    y[~tested & (rng.random(n) < 0.5)] = np.nan  # missing phenotype; the rest: a covariate
    target = np.array([0.3, -0.15])
    order, residual = A.match_tested_rows(z, y, tested, target, rng)
    assert sorted(order.tolist()) == list(range(n))
    assert residual < 0.02
    on = tested[order]  # genotype rows that took a tested phenotype row
    assert on.sum() == tested.sum()
    yt = y[order][on]
    corr = [np.corrcoef(z[on, k], yt)[0, 1] for k in range(2)]
    np.testing.assert_allclose(corr, target / z[on].std(axis=0), atol=0.01)
    # the untested rows sit on genotype rows like any others
    assert np.abs(z[~on].mean(axis=0)).max() < 4 / np.sqrt((~on).sum())
    # what the pairing reached, read back as it matched it
    reached = A.tested_cross_moments(z, y[order], on)
    np.testing.assert_allclose(reached, target, atol=0.01)
    zt, ys = z[on] - z[on].mean(axis=0), (yt - yt.mean()) / yt.std()
    np.testing.assert_allclose(reached, zt.T @ ys / on.sum())


def test_explained_log10_p__extra_columns_reach_every_snp_in_blocks(monkeypatch) -> None:
    """Matched columns beyond the regions (the ancestry scores) explain the association of
    every SNP they correlate with, ``t . g / sd(x)`` with ``g`` the SNP's least-squares
    coefficients on them, and nothing of a SNP they do not; reading the SNPs in blocks of 7
    gives what one block gives."""
    rng = np.random.default_rng(8)
    n, m = 2000, 40
    score = rng.normal(size=n)
    x = rng.binomial(2, 0.3, size=(n, m)).astype(float)
    x[:, :10] += (score[:, None] > 0.5).astype(float)  # ten SNPs follow the score
    target = np.array([0.25])
    out = A.explained_log10_p(x, [], None, (score[:, None], target))
    xc = x - x.mean(axis=0)
    sc = score - score.mean()
    r = target[0] * (sc @ xc / (sc @ sc)) / xc.std(axis=0)
    expected = -np.log10(2 * stats.norm.sf(np.abs(r) * np.sqrt(n)))
    np.testing.assert_allclose(out, expected, rtol=1e-9)
    assert out[:10].min() > 3 and np.median(out[10:]) < 1
    monkeypatch.setattr(A, "EXPLAINED_BLOCK", 7)
    np.testing.assert_allclose(A.explained_log10_p(x, [], None, (score[:, None], target)), out)
    assert not A.explained_log10_p(x, []).any()  # nothing matched: nothing explained


def test_residual_directions__hold_the_pairings_chance_in_a_block_at_zero() -> None:
    """A block of 30 SNPs on three latent haplotype factors, one matched column (SNP 0 with
    target 0.2): the residual directions are orthogonal to it, unit variance, ordered by
    weight; matched at zero they bring every SNP's synthetic correlation close to the one
    the target implies, where the pairing's chance alone scatters it by ~1/sqrt(n)."""
    rng = np.random.default_rng(5)
    n, m = 1000, 30
    f = rng.normal(size=(n, 3))
    dosages = f @ rng.normal(size=(3, m)) + 0.3 * rng.normal(size=(n, m))
    cols = np.arange(m)
    center, scale = dosages.mean(axis=0), dosages.std(axis=0)
    basis = np.zeros((m, 1))
    basis[0, 0] = 1.0
    region = A.Region(0, cols, center, scale, basis, np.array([0.2]), np.ones(1))
    z = A.region_components(dosages, [region])
    extra, weights = A.residual_directions(dosages, [region], 10)
    assert extra.shape == (n, 10) and weights.shape == (10,)
    np.testing.assert_allclose(extra.T @ z / n, 0.0, atol=1e-10)
    np.testing.assert_allclose(extra.std(axis=0), 1.0, rtol=1e-10)
    assert np.all(np.diff(weights) <= 0) and weights[0] > 0
    assert A.residual_directions(dosages, [], 10)[0].shape == (n, 0)
    # the correlation each SNP gets from the target alone
    x = (dosages - center) / scale
    x -= x.mean(axis=0)
    g, *_ = np.linalg.lstsq(z, x, rcond=None)
    implied = 0.2 * g[0] / x.std(axis=0)
    y = rng.normal(size=n)
    y = (y - y.mean()) / y.std()
    errors = {}
    for label, zz, target, w in (
        ("matched only", z, region.targets(), region.weights()),
        (
            "with residual directions",
            np.hstack([z, extra]),
            np.r_[region.targets(), [0.0] * 10],
            np.r_[region.weights(), weights],
        ),
    ):
        err = []
        for _ in range(5):
            perm, _ = A.match_rows(zz, target * n, y, rng, weights=w)
            corr = (x * y[perm][:, None]).mean(axis=0) / x.std(axis=0)
            err.append(np.sqrt(np.mean((corr - implied) ** 2)))
        errors[label] = np.mean(err)
    assert errors["matched only"] > 0.01  # the chance of one pairing (~1 / sqrt(n))
    assert errors["with residual directions"] < errors["matched only"] / 3


def test_match_rows__no_components_is_the_identity() -> None:
    perm, residual = A.match_rows(
        np.zeros((5, 0)), np.zeros(0), np.arange(5.0), np.random.default_rng(0)
    )
    assert perm.tolist() == [0, 1, 2, 3, 4] and residual == 0.0


def test_phenotype_bound__binary_values_inside_the_clip() -> None:
    ref = A.Reference(alt_freq=np.zeros(1), y_mean=0.2, y_sd=0.4)
    # standardised values (0 - 0.2)/0.4 = -0.5 and (1 - 0.2)/0.4 = 2.0; missing -> 0
    two = np.array([0.0, 1.0])
    assert aph.phenotype_bound(ref, aph.Location(0.0, 1.0), 2.5, two) == pytest.approx(2.0)
    assert aph.phenotype_bound(ref, aph.Location(0.1, 1.0), 2.5, two) == pytest.approx(1.9)
    assert aph.phenotype_bound(ref, aph.Location(0.0, 1.25), 2.5, two) == pytest.approx(1.6)
    assert aph.phenotype_bound(ref, aph.Location(0.0, 1.0), 1.5, two) == pytest.approx(1.5)
    assert aph.phenotype_bound(ref, aph.Location(0.0, 1.0), 2.5) == 2.5
    # a missing value standardises to 0 and is then normalised like the others
    centred = A.Reference(alt_freq=np.zeros(1), y_mean=0.0, y_sd=1.0)
    near = np.array([0.5, 0.6])
    assert aph.phenotype_bound(centred, aph.Location(1.0, 1.0), 2.5, near) == pytest.approx(1.0)


def test_release_covariate_slopes__exact_slope_and_calibrated_noise() -> None:
    """Without noise the release is the members' least-squares slope of the residual on the
    covariates (two columns, whatever the synthetic columns look like); with noise and no
    residual left the released slopes are pure noise of the stated scale: sensitivity
    ``y_clip * w_clip * sqrt(1.25)``, read through the members' released covariance (here
    the identity: standard normal columns, standardised by synthetic rows like them)."""
    rng = np.random.default_rng(5)
    n = 4000
    w = np.column_stack([rng.normal(3.0, 2.0, n), rng.binomial(1, 0.3, n).astype(float)])
    r = 0.4 * w[:, 0] - 0.5 * w[:, 1] + rng.normal(size=n)
    w_synth = rng.normal(size=(500, 2))  # location, scale and covariance off
    kwargs = {
        "w_clip": None,
        "y_clip": None,
        "noise_multiplier": None,
        "noise": GeneratorNoise(rng),
    }
    exact, exact_sd = aph.release_covariate_slopes(r, w, w_synth, **kwargs)
    assert not exact_sd.any()
    design = np.column_stack([np.ones(n), w])
    assert exact == pytest.approx(np.linalg.lstsq(design, r, rcond=None)[0][1:], abs=1e-12)
    # noise: independent standard normal columns, a zero residual
    w = rng.normal(size=(n, 2))
    w_synth = rng.normal(size=(20000, 2))
    noisy = {"w_clip": 2.5, "y_clip": 2.0, "noise_multiplier": 3.0, "noise": GeneratorNoise(rng)}
    draws = np.array(
        [aph.release_covariate_slopes(np.zeros(n), w, w_synth, **noisy)[0] for _ in range(2000)]
    )
    assert aph.covariate_sensitivity(2.0, 2.5) == pytest.approx(5.0 * math.sqrt(1.25))
    # E[u u^T] of the clipped columns: ~0.9 of the identity (4% of rows beyond norm 2.5)
    expected = 3.0 * 5.0 * math.sqrt(1.25) / n
    assert draws.mean(axis=0) == pytest.approx(np.zeros(2), abs=4 * 1.2 * expected / np.sqrt(2000))
    assert draws.std(axis=0) == pytest.approx([expected, expected], rel=0.15)
    _, stated = aph.release_covariate_slopes(np.zeros(n), w, w_synth, **noisy)
    assert stated == pytest.approx(draws.std(axis=0), rel=0.06)


def test_release_covariate_slopes__a_rare_covariate_read_with_the_members_share() -> None:
    """A rare 0/1 covariate (SW16: ~4% of members) sits ~5 sd out and the clip at 2.5 halves
    its cross-moment; its synthetic share is half the members' (as the DP phenotype model
    gave it in a bench run). The members' released second moment reads the slope whole:
    unbiased over repeated releases (the members' own slope is 0.8 in expectation), with
    the spread the stated sd and the members' sampling give it."""
    rng = np.random.default_rng(8)
    n = 960
    got, stated, own = [], [], []
    for _ in range(300):
        w = rng.binomial(1, 0.04, n).astype(float)[:, None]
        r = np.clip(0.8 * (w[:, 0] - w.mean()) + rng.normal(size=n), -2.5, 2.5)
        w_synth = rng.binomial(1, 0.02, 4 * n).astype(float)[:, None]
        slope, sd = aph.release_covariate_slopes(
            r, w, w_synth, w_clip=2.5, y_clip=2.5, noise_multiplier=3.0, noise=GeneratorNoise(rng)
        )
        got.append(slope[0])
        stated.append(sd[0])
        own.append(np.polyfit(w[:, 0], r, 1)[0])
    got_arr, own_arr = np.array(got), np.array(own)
    assert got_arr.mean() == pytest.approx(own_arr.mean(), abs=4 * got_arr.std() / np.sqrt(300))
    assert own_arr.mean() == pytest.approx(0.8, abs=0.05)  # (the clip at 2.5 barely bites)
    # the release's own noise: the spread about the members' own slope
    assert np.std(got_arr - own_arr) == pytest.approx(np.mean(stated), rel=0.2)


def test_release_covariate_slopes__a_column_constant_in_the_synthetic_rows_stays_out() -> None:
    """A 0/1 covariate the synthetic rows never carry (a DP model can lose a rare level) has
    no synthetic spread to standardise by: it gets slope 0 and no noise, and the members
    holding it keep their other columns' values (standardised by a zero spread they would
    fill every clipped vector), so the other column's slope is read as without it. The
    eigenvalue floor follows the moments' noise: a released variance pushed near zero by
    it cannot multiply the slope."""
    rng = np.random.default_rng(11)
    n = 2000
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.3, n).astype(float)
    r = np.clip(0.5 * x1 - 0.4 * (x2 - 0.3) + rng.normal(scale=0.5, size=n), -2.5, 2.5)
    w = np.column_stack([x1, x2])
    w_synth = np.column_stack([rng.normal(size=4 * n), np.zeros(4 * n)])
    kwargs = {"w_clip": 2.5, "y_clip": 2.5, "noise": GeneratorNoise(rng)}
    slope, sd = aph.release_covariate_slopes(r, w, w_synth, noise_multiplier=1e-6, **kwargs)
    alone = np.polyfit(x1, r, 1)[0]
    assert slope[1] == 0.0 and sd[1] == 0.0
    assert slope[0] == pytest.approx(alone, abs=0.02)
    # with the column alone, the same
    only, _ = aph.release_covariate_slopes(
        r, w[:, :1], w_synth[:, :1], noise_multiplier=1e-6, **kwargs
    )
    assert slope[0] == pytest.approx(only[0], abs=1e-4)
    # nothing to release: zeros
    none, none_sd = aph.release_covariate_slopes(
        r, w[:, 1:], w_synth[:, 1:], noise_multiplier=3.0, **kwargs
    )
    assert not none.any() and not none_sd.any()
    # a 1% covariate under heavy noise (multiplier 20) and no slope: the released variance
    # (0.06) is floored at one noise sd (0.07: kappa 1), so the slope in u units is at most
    # about |cross-moment| / floor, a standard normal, and ~2.5 covariate units per u unit
    # (a clipped 0/1 column): root mean square ~2.4 over 300 releases; with the synthetic
    # floor alone (0.25 x 0.06) it was 7.1
    rare = rng.binomial(1, 0.01, n).astype(float)[:, None]
    synth_rare = rng.binomial(1, 0.01, 4 * n).astype(float)[:, None]
    got = np.array(
        [
            aph.release_covariate_slopes(
                np.clip(rng.normal(size=n), -2.5, 2.5),
                rare,
                synth_rare,
                noise_multiplier=20.0,
                **kwargs,
            )[0][0]
            for _ in range(300)
        ]
    )
    assert np.sqrt(np.mean(got**2)) < 3.0


def test_normalise_phenotype__exact_and_noised_moments() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(0.3, 1.4, size=5000)
    out, loc = aph.normalise_phenotype(y, None, None, GeneratorNoise(rng))
    assert loc.mean == pytest.approx(y.mean()) and loc.sd == pytest.approx(y.std())
    np.testing.assert_allclose(out.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(), 1.0, rtol=1e-12)
    # private: clipped; each member adds (y / 2, y^2 / clip - clip / 2), norm <= clip / sqrt 2,
    # and the sums carry N(0, (sigma * clip / sqrt 2)^2) noise: the mean's sd is
    # sigma * clip * sqrt 2 / n (that of releasing (y, y^2 / clip) as such), the second
    # moment's sigma * clip^2 / sqrt 2 / n (half of it)
    yc = np.clip(y, -2.5, 2.5)
    locs = [aph.normalise_phenotype(yc, 2.5, 40.0, GeneratorNoise(rng))[1] for _ in range(3000)]
    means = np.array([loc.mean for loc in locs])
    seconds = np.array([loc.sd**2 + loc.mean**2 for loc in locs])
    n = len(y)
    assert aph.centre_sensitivity(2.5) == pytest.approx(2.5 / math.sqrt(2))
    assert means.std() == pytest.approx(40.0 * 2.5 * math.sqrt(2) / n, rel=0.05)
    assert abs(means.mean() - yc.mean()) < 0.01
    assert seconds.std() == pytest.approx(40.0 * 2.5**2 / math.sqrt(2) / n, rel=0.05)
    assert abs(seconds.mean() - (yc**2).mean()) < 0.01
    clipped, _ = aph.normalise_phenotype(yc, 2.5, 40.0, GeneratorNoise(rng))
    assert np.abs(clipped).max() <= 2.5


def test_covariate_adjustment__matches_least_squares_with_one_hot_levels() -> None:
    rng = np.random.default_rng(3)
    n = 400
    cage = rng.choice(["a", "b", "c"], size=n)
    w = rng.normal(20, 2, size=n)
    y = 0.5 * w + np.select([cage == "b", cage == "c"], [1.0, -2.0], 0.0) + rng.normal(size=n)
    table = pd.DataFrame({"y": y, "w": w, "cage": cage})
    types = {"y": PhenoType.CONTINUOUS, "w": PhenoType.CONTINUOUS, "cage": PhenoType.CATEGORICAL}
    adj = aph.CovariateAdjustment.fit(table, types, "y", ("w", "cage"))
    design = np.column_stack([np.ones(n), w, cage == "b", cage == "c"]).astype(float)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    np.testing.assert_allclose(adj.coef, coef, atol=1e-10)
    np.testing.assert_allclose(adj.residual(table, "y"), y - design @ coef, atol=1e-10)
    # a level unseen in the fitted (synthetic) table counts as the reference level
    other = table.head(3).assign(cage=["z", "b", None])
    res = adj.residual(other, "y")
    assert res[0] == pytest.approx(other.y[0] - coef[0] - coef[1] * other.w[0])
    # refit on rows drawn from the table without cage "c": same columns, their own fit
    rows = table[table.cage != "c"].reset_index(drop=True)
    re = adj.refit(rows, "y")
    assert re.levels == adj.levels and len(re.coef) == len(adj.coef)
    x = np.column_stack([np.ones(len(rows)), rows.w, rows.cage == "b"]).astype(float)
    sub, *_ = np.linalg.lstsq(x, rows.y, rcond=None)
    np.testing.assert_allclose(re.coef[:3], sub, atol=1e-10)
    np.testing.assert_allclose(re.residual(rows, "y"), rows.y - x @ sub, atol=1e-10)


def test_covariate_adjustment__fits_and_marks_the_rows_a_gwas_tests() -> None:
    """Rows with a missing covariate are left out of the fit (as a GWAS leaves them out) and
    marked untested, like rows with a missing phenotype."""
    rng = np.random.default_rng(4)
    n = 300
    w = rng.normal(size=n)
    y = 2.0 * w + rng.normal(size=n)
    w_seen = w.copy()
    w_seen[:20] = np.nan
    y[20:30] = np.nan
    y[:20] += 50.0  # outliers that a mean-imputed fit would chase
    table = pd.DataFrame({"y": y, "w": w_seen})
    adj = aph.CovariateAdjustment.fit(table, {"w": PhenoType.CONTINUOUS}, "y", ("w",))
    ok = np.arange(n) >= 30
    coef, *_ = np.linalg.lstsq(np.column_stack([np.ones(ok.sum()), w[ok]]), y[ok], rcond=None)
    np.testing.assert_allclose(adj.coef, coef, atol=1e-10)
    np.testing.assert_array_equal(adj.complete(table, "y"), ok)


def test_score_sensitivity__uses_the_smaller_phenotype_bound() -> None:
    cfg = AssociationConfig(x_clip=2.0, y_clip=3.0, select_y_clip=2.5)
    assert regsel.score_sensitivity(cfg, 100) == pytest.approx(0.5)
    assert regsel.score_sensitivity(cfg, 100, 2.0) == pytest.approx(0.4)
    assert regsel.score_sensitivity(cfg, 100, 3.0) == pytest.approx(0.5)
    assert regsel.select_y_bound(cfg, 2.0) == 2.0 and regsel.select_y_bound(cfg) == 2.5


def test_null_score_sd__matches_the_spread_of_clipped_null_scores() -> None:
    """Genotypes with varied allele frequencies and a phenotype independent of them: the sd
    of the signed clipped scores over SNPs is the formula's; unclipped it is 1."""
    rng = np.random.default_rng(3)
    n, m = 3000, 800
    freq = rng.uniform(0.03, 0.5, size=m)
    dos = rng.binomial(2, freq, size=(n, m)).astype(float)
    y = rng.normal(size=n)
    for x_clip, y_clip in ((None, None), (1.25, 2.0), (1.0, 1.5)):
        xs = A.standardise_dosages(dos, freq, x_clip)
        yc = y if y_clip is None else np.clip(y, -y_clip, y_clip)
        spread = float(np.std(yc @ xs / math.sqrt(n)))
        sd = regsel.null_score_sd(dos, freq, x_clip, regsel.clipped_normal_second_moment(y_clip))
        assert sd == pytest.approx(spread, rel=0.08)
        if x_clip is None:
            assert sd == pytest.approx(1.0, rel=0.03)
        else:
            assert sd < 0.9  # clipping lowers the null sd

    # ... but less than the sensitivity: null sd per unit of x_clip * y_clip, the selection's
    # signal-to-noise, is higher at the default 1.25 x 2 than at the former 2 x 2.5
    def per_unit(xc: float, yc: float) -> float:
        return regsel.null_score_sd(dos, freq, xc, regsel.clipped_normal_second_moment(yc)) / (
            xc * yc
        )

    assert per_unit(1.25, 2.0) > 1.4 * per_unit(2.0, 2.5)


def test_clipped_normal_second_moment__matches_monte_carlo() -> None:
    z = np.random.default_rng(0).normal(size=2_000_000)
    for c in (0.5, 1.25, 2.0, 3.0):
        assert regsel.clipped_normal_second_moment(c) == pytest.approx(
            float(np.mean(np.minimum(z**2, c**2))), rel=2e-3
        )
    assert regsel.clipped_normal_second_moment(None) == 1.0


def test_select_regions__threshold_is_in_null_sd_units() -> None:
    """Exact mode: a score of 3 passes a threshold of 5 null sds when the null sd is 0.5."""
    lay = make_layout(pd.DataFrame({"id": range(64), "chr": "1", "pos": np.arange(64) + 1}), 8, 2)
    scores = np.full(lay.n_windows, 1.0)
    scores[3] = 3.0
    cfg = AssociationConfig(max_regions=1, threshold=5.0)
    rng = np.random.default_rng(0)
    assert _select(scores, lay, cfg, rng, eps=math.inf, null_sd=1.0) == []
    assert _select(scores, lay, cfg, rng, eps=math.inf, null_sd=0.5) == [3]


def test_association_config__rejects_invalid_values() -> None:
    with pytest.raises(ConfigError):
        AssociationConfig(y_clip=0.0)
    with pytest.raises(ConfigError):
        AssociationConfig(max_regions=-1)
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="min_shrink"):
            AssociationConfig(min_shrink=bad)


def test_region_weights__are_the_reference_singular_values(toy) -> None:
    cohort, _ = toy
    cols = np.arange(40, 90)
    rb = A.region_basis(cohort.dosages[:, cols], 5)
    center, scale, basis = rb.center, rb.scale, rb.basis
    region = A.Region(0, cols, center, scale, basis, np.zeros(5), rb.loading)
    xs = np.nan_to_num((cohort.dosages[:, cols] - center) / scale)
    sv = np.linalg.svd(xs / math.sqrt(len(xs) - 1), compute_uv=False)[:5]
    np.testing.assert_allclose(A.region_weights([region, region]), np.tile(sv, 2), rtol=1e-5)


def test_implied_lead__recovers_a_single_causal_snp_and_its_cross_moment(toy) -> None:
    """``y = b x_j + e`` in the reference itself: the exact cross-moments of the components
    point at SNP ``j`` (or one in complete LD with it), and the implied cross-moment is the
    SNP's own, which the components alone carry only ``R^2`` of."""
    cohort, _ = toy
    cols = np.arange(20, 140)
    ref = cohort.dosages[:, cols].astype(np.float64)
    rb = A.region_basis(ref, 8)
    center, scale, basis = rb.center, rb.scale, rb.basis
    xs = np.nan_to_num((ref - center) / scale)
    xs = xs - xs.mean(axis=0)
    z = xs @ basis
    var = (xs**2).sum(axis=0) / (len(xs) - 1)
    r2 = ((xs.T @ z / (len(xs) - 1)) ** 2).sum(axis=1) / var
    j = int(np.argmax(np.where(r2 < 0.97, r2, 0)))  # well inside the span, but not exactly
    y = 0.3 * xs[:, j]
    beta = z.T @ y / (len(xs) - 1)
    found = A.implied_lead(rb, beta, 0.5)
    assert found is not None
    k, effect = found
    assert np.corrcoef(xs[:, k], xs[:, j])[0, 1] ** 2 > 0.999
    truth = float(xs[:, k] @ y / (len(xs) - 1))
    assert effect == pytest.approx(truth, rel=1e-6)
    # the components alone imply only R^2 of it
    assert float(np.linalg.norm(beta)) ** 2 / (0.3**2 * var[j]) == pytest.approx(r2[j], rel=1e-6)


def test_implied_lead__none_without_a_well_represented_candidate(toy) -> None:
    cohort, _ = toy
    ref = cohort.dosages[:, 20:140].astype(np.float64)
    rb = A.region_basis(ref, 2)
    assert A.implied_lead(rb, np.array([0.1, 0.0]), 1.01) is None
    assert A.implied_lead(rb, np.zeros(2), 0.0) is None
    # only rare SNPs qualify: none
    assert A.implied_lead(rb, np.array([0.1, 0.0]), 0.0, 0.6) is None


def test_implied_lead__none_when_no_snp_is_aligned_with_the_effect(toy) -> None:
    """An effect spread evenly over many whitened directions matches no single SNP."""
    cohort, _ = toy
    ref = cohort.dosages[:, 20:140].astype(np.float64)
    rb = A.region_basis(ref, 12)
    beta = np.random.default_rng(1).normal(size=12)
    assert A.implied_lead(rb, beta, 0.0, 0.0, 0.99) is None
    assert A.implied_lead(rb, beta, 0.0, 0.0, 0.0) is not None


def test_implied_lead__cross_moment_is_a_bounded_covariance(toy) -> None:
    cohort, _ = toy
    ref = cohort.dosages[:, 20:140].astype(np.float64)
    rb = A.region_basis(ref, 4)
    center, scale = rb.center, rb.scale
    found = A.implied_lead(rb, np.array([50.0, 0, 0, 0]), 0.0, 0.0, 0.0)
    assert found is not None
    xs = np.nan_to_num((ref - center) / scale)
    sd = float(np.sqrt(((xs - xs.mean(0)) ** 2).sum(0)[found[0]] / (len(xs) - 1)))
    assert abs(found[1]) == pytest.approx(sd)


def test_implied_lead_sd__is_the_spread_of_the_cross_moment_under_release_noise(toy) -> None:
    """Monte Carlo: for a fixed SNP ``j``, the implied cross-moment of ``T (u + e)`` (iid
    noise ``e`` of sd 0.01, a debiasing map ``T``) has the sd :func:`implied_lead_sd` gives."""
    cohort, _ = toy
    rb = A.region_basis(cohort.dosages[:, 20:140].astype(np.float64), 6)
    rng = np.random.default_rng(3)
    t = np.eye(6) + 0.1 * rng.normal(size=(6, 6))
    j, sd = 17, 0.01
    a = rb.cov[j]
    beta = (0.2 * a + rng.normal(scale=sd, size=(20_000, 6))) @ t.T
    cross = beta @ a / (a @ a) * rb.var[j]
    assert float(cross.std()) == pytest.approx(A.implied_lead_sd(rb, j, sd, t), rel=0.02)
    assert A.implied_lead_sd(rb, j, sd) == pytest.approx(
        sd * rb.var[j] / float(np.linalg.norm(a)), rel=1e-12
    )


def test_score_attenuation__scales_the_clipped_score_to_the_cross_moment() -> None:
    """A phenotype linear in one SNP: ``E[clip(x) clip(y)] = a_x kappa E[x y]`` with ``a_x``
    from the reference dosages and ``kappa`` the normal model's (the test's value is read
    back through them), and 1 without a clip."""
    rng = np.random.default_rng(4)
    n, f = 400_000, 0.3
    x = rng.binomial(2, f, size=(n, 1)).astype(np.float64)
    freq = np.array([f])
    xs = A.standardise_dosages(x, freq, None)[:, 0]
    y = 0.1 * xs + rng.normal(scale=math.sqrt(1 - 0.01), size=n)
    a_x = float(A.score_attenuation(x[:50_000], freq, 1.25)[0])
    assert 0.7 < a_x < 0.95  # the allele-2 dosage (+1.53 sd) is clipped at 1.25
    clipped = float(np.mean(np.clip(xs, -1.25, 1.25) * np.clip(y, -2.0, 2.0)))
    expected = a_x * A.phenotype_attenuation(2.0) * float(np.mean(xs * y))
    assert clipped == pytest.approx(expected, rel=0.03)
    assert A.score_attenuation(x[:1000], freq, None)[0] == pytest.approx(1.0)


def test_lead_attenuation__largest_among_the_snps_in_ld() -> None:
    """Three SNPs: a rare one, the common one it is linked to, and an unlinked common one.
    The rare SNP's read-back uses its linked partner's (larger) attenuation, never the
    unlinked SNP's; with ``min_r2`` above their ``r^2``, its own."""
    rng = np.random.default_rng(5)
    n = 20_000
    common = rng.binomial(2, 0.5, size=n).astype(np.float64)
    # the rare SNP: its minor allele only where the common one carries two copies
    rare = np.where(common == 2, rng.binomial(2, 0.6, size=n), 0).astype(np.float64)
    other = rng.binomial(2, 0.45, size=n).astype(np.float64)
    x = np.column_stack([rare, common, other])
    freq = x.mean(axis=0) / 2
    own = A.score_attenuation(x, freq, 1.25)
    assert own[0] < own[1]  # the rarer allele is clipped harder
    xs = A.standardise_dosages(x, freq, None)
    r2 = np.corrcoef(xs.T) ** 2
    assert r2[0, 1] > 0.3 and r2[0, 2] < 0.01
    linked = A.lead_attenuation(x, freq, 0, 1.25, 0.3)
    assert linked == pytest.approx(max(own[0], own[1]))
    assert A.lead_attenuation(x, freq, 0, 1.25, 0.99) == pytest.approx(own[0])


def test_pool_lead__inverse_variance_mean_with_the_implied_sign() -> None:
    # weights 1/4 and 1: (0.25 * -0.2 + 1 * -0.4) / 1.25
    assert A.pool_lead(-0.2, 2.0, 0.4, 1.0, 1.0) == pytest.approx(-0.36)
    assert A.pool_lead(0.2, 1.0, 0.4, 0.0, 1.0) == pytest.approx(0.4)  # exact test value
    assert A.pool_lead(0.2, 0.0, 0.4, 1.0, 1.0) == pytest.approx(0.2)
    assert A.pool_lead(0.9, 1.0, 1.5, 1.0, 1.0) == pytest.approx(1.0)  # a correlation <= 1


def test_region_targets__append_the_matched_snps() -> None:
    basis = np.eye(3)[:, :2] * 0.5
    r = A.Region(
        0,
        np.arange(3),
        np.zeros(3),
        np.ones(3),
        basis,
        np.array([0.1, 0.2]),
        np.array([4.0, 2.0]),
        snps=np.array([1]),
        snp_effects=np.array([0.3]),
    )
    np.testing.assert_allclose(r.targets(), [0.1, 0.2, 0.3])
    np.testing.assert_allclose(A.region_weights([r]), [4.0, 2.0, 4.0])
    d = np.array([[0.0, 1, 2], [1, 2, 0], [2, 0, 1], [1, 1, 1]])
    z = A.region_components(d, [r])
    assert z.shape == (4, 3)
    np.testing.assert_allclose(z[:, 2], d[:, 1] - d[:, 1].mean())


def test_shrink_effect__keeps_strong_releases_and_zeroes_pure_noise() -> None:
    rng = np.random.default_rng(3)
    q, sd = 6, 0.01
    # pure noise of the stated scale: mostly shrunk to (nearly) nothing
    factors = [A.shrink_effect(rng.normal(scale=sd, size=q), sd)[1] for _ in range(2000)]
    assert np.mean(np.array(factors) == 0.0) > 0.5
    assert np.mean(factors) < 0.15
    # a strong effect: energy share ~ 1 - q sd^2 / ||beta||^2, direction kept
    beta = np.full(q, 0.1)
    out, f = A.shrink_effect(beta, sd)
    assert f == pytest.approx(1 - q * sd**2 / float(beta @ beta))
    np.testing.assert_allclose(out, f * beta)
    # a partial scaling keeps the same factor (the gate) and scales by its power
    out, f_half = A.shrink_effect(beta, sd, 0.5)
    assert f_half == f
    np.testing.assert_allclose(out, math.sqrt(f) * beta)
    # no formal privacy: untouched
    out, f = A.shrink_effect(beta, 0.0)
    assert f == 1.0 and np.array_equal(out, beta)


def test_effect_noise_sd__is_the_release_noise_scale() -> None:
    assert A.effect_noise_sd(2.0, 1.5, 2.0, 200) == pytest.approx(2.0 * 1.5 * 2.0 / 200)
    assert A.effect_noise_sd(None, 1.5, 2.0, 200) == 0.0


def test_debias_map__undoes_the_attenuation_of_both_clips() -> None:
    """A phenotype linear in non-Gaussian components (genotype-like, skewed): the noiseless
    release from clipped rows and a clipped phenotype, debiased with the public attenuation
    (``M`` from a separate reference sample, ``kappa`` from the normal model), recovers the
    unclipped cross-moment; without debiasing it is ~25% short."""
    rng = np.random.default_rng(11)
    q, n = 4, 400_000

    def draw(size: int) -> np.ndarray:
        # standardised binomial dosages of four SNPs of different frequencies
        f = np.array([0.1, 0.25, 0.4, 0.5])
        x = rng.binomial(2, f, size=(size, q))
        return (x - 2 * f) / np.sqrt(2 * f * (1 - f))

    b = np.array([0.12, -0.08, 0.05, 0.0])
    z = draw(n)
    y = z @ b + rng.normal(size=n) * math.sqrt(1 - b @ b)
    exact = z.T @ y / n
    z_clip, y_clip = 1.25 * math.sqrt(q), 1.5
    released = A.release_effect(
        z,
        np.clip(y, -y_clip, y_clip),
        noise_multiplier=0.0,
        z_clip=z_clip,
        y_clip=y_clip,
        noise=GeneratorNoise(rng),
    )
    m = A.component_attenuation(draw(50_000), z_clip)
    kappa = A.phenotype_attenuation(y_clip)
    assert kappa == pytest.approx(2 * stats.norm.cdf(y_clip) - 1, abs=1e-4)  # P(|Z| < 1.5)
    debiased = A.debias_map(m, kappa) @ released
    assert np.linalg.norm(released - exact) > 0.15 * np.linalg.norm(exact)
    np.testing.assert_allclose(debiased, exact, atol=0.006)


def test_component_attenuation__identity_below_the_clip() -> None:
    z = np.random.default_rng(0).normal(size=(1000, 3))
    m = A.component_attenuation(z, z_clip=100.0)
    np.testing.assert_allclose(m, z.T @ z / 1000)


def test_phenotype_attenuation__two_values_is_the_slope_of_the_clip() -> None:
    # values -0.5 and 2.0 clipped at 1.5 -> -0.5 and 1.5: slope 2.0 / 2.5
    assert A.phenotype_attenuation(1.5, np.array([-0.5, 2.0])) == pytest.approx(0.8)
    assert A.phenotype_attenuation(2.5, np.array([-0.5, 2.0])) == pytest.approx(1.0)
    # values already clipped once (3.0 -> 2.5): the slope is against the unclipped values
    clipped, raw = np.array([-0.5, 2.5]), np.array([-0.5, 3.0])
    assert A.phenotype_attenuation(2.0, clipped, raw=raw) == pytest.approx(2.5 / 3.5)
    # normal model: P(|Z| < c)
    assert A.phenotype_attenuation(2.0) == pytest.approx(2 * stats.norm.cdf(2.0) - 1, abs=1e-4)


def test_exact_snp_targets__the_most_associated_snps_one_per_ld_clump(toy) -> None:
    """The top SNP by |corr| comes first with its exact cross-moment (the one the matching
    reproduces: reference-standardised, centred, over n); a SNP in near-complete LD with a
    taken one is skipped, and at most ``k`` are taken."""
    cohort, _ = toy
    cols = np.arange(20, 140)
    x = cohort.dosages[:, cols].astype(np.float64)
    rb = A.region_basis(x, 4)
    xs = np.nan_to_num((x - rb.center) / rb.scale)
    xs = xs - xs.mean(axis=0)
    sd = np.sqrt((xs**2).mean(axis=0))
    j = int(np.argmax(sd))
    rng = np.random.default_rng(0)
    y = xs[:, j] / sd[j] + rng.normal(size=len(xs))
    snps, effects = A.exact_snp_targets(x, y, rb, x, 5, 0.8)
    assert snps[0] == j and len(snps) == 5
    np.testing.assert_allclose(effects, xs[:, snps].T @ (y - y.mean()) / len(y))
    r = np.corrcoef(xs[:, snps].T)
    assert np.all(r[np.triu_indices(5, 1)] ** 2 <= 0.8 + 1e-9)
    # |corr| never increases down the list among what was taken
    c = np.abs(effects) / sd[snps]
    assert np.all(np.diff(c) <= 1e-12)
    # with every SNP in one clump (max_r2 < 0), only the top one
    assert list(A.exact_snp_targets(x, y, rb, x, 5, -1.0)[0]) == [j]


def test_exact_snp_targets__snps_matched_for_an_earlier_region_are_not_matched_twice(toy) -> None:
    cohort, _ = toy
    cols = np.arange(20, 140)
    x = cohort.dosages[:, cols].astype(np.float64)
    rb = A.region_basis(x, 4)
    y = np.random.default_rng(1).normal(size=len(x)) + np.nan_to_num(x[:, 40])
    first, _ = A.exact_snp_targets(x, y, rb, x, 5, 0.8)
    again, effects = A.exact_snp_targets(x, y, rb, x, 5, 0.8, matched=first[:2])
    # the two already matched count among the five and are not returned
    np.testing.assert_array_equal(again, first[2:])
    assert len(effects) == 3


def test_debias_map__with_the_covariance_recovers_correlated_columns_cross_moments() -> None:
    """Correlated columns (pinned SNPs, not whitened components), rows clipped to norm
    sqrt(3) and the phenotype at 2: ``C (kappa M)^-1`` gives back their unclipped
    cross-moments with the phenotype; without ``C`` it gives the regression coefficients."""
    rng = np.random.default_rng(0)
    n = 200_000
    mix = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.5, 0.3, 0.81]])
    x = rng.normal(size=(n, 3)) @ mix.T
    b = np.array([0.2, -0.1, 0.05])
    y = x @ b + rng.normal(size=n)
    clip = math.sqrt(3.0)
    released = A.clip_rows(x, clip).T @ np.clip(y, -2.0, 2.0) / n
    kappa = A.phenotype_attenuation(2.0)
    m = A.component_attenuation(x, clip)
    got = A.debias_map(m, kappa, x.T @ x / n) @ released
    np.testing.assert_allclose(got, x.T @ y / n, atol=0.004)
    np.testing.assert_allclose(A.debias_map(m, kappa) @ released, b, atol=0.01)


def test_pinned_snps__strongest_implied_first_one_per_clump_none_linked_to_the_lead(toy) -> None:
    """Given a region whose only target is its lead SNP, the implied -log10 p ranks the
    pins; a SNP in LD above ``max_r2`` with the lead or a pin taken is skipped, nothing below
    ``min_log10_p`` is taken, and at most ``k``."""
    cohort, _ = toy
    cols = np.arange(20, 140)
    x = cohort.dosages[:, cols].astype(np.float64)
    rb = A.region_basis(x, 4)
    xs = A.standardise_columns(x, rb.center, rb.scale)
    xs = xs - xs.mean(axis=0)
    sd = xs.std(axis=0)
    lead = int(np.argmax(sd))
    region = A.Region(
        0,
        cols,
        rb.center,
        rb.scale,
        rb.basis,
        np.zeros(rb.basis.shape[1]),
        rb.loading,
        np.array([lead]),
        np.array([0.3 * sd[lead]]),
    )
    implied = A.explained_log10_p(x, [replace(region, columns=np.arange(120))], n_tested=len(x))
    norms = np.maximum(np.linalg.norm(xs, axis=0), 1e-12)
    r2 = ((xs.T @ xs) / np.outer(norms, norms)) ** 2
    for k, max_r2, floor in [(3, 0.8, 2.0), (10, 0.5, 1.0), (10, 0.8, 50.0)]:
        pins = A.pinned_snps(x, region, implied, k, max_r2, floor)
        assert len(pins) <= k and lead not in pins
        assert np.all(implied[pins] >= floor)
        assert np.all(np.diff(implied[pins]) <= 1e-12)
        taken = [lead, *pins]
        sub = r2[np.ix_(taken, taken)][np.triu_indices(len(taken), 1)]
        assert np.all(sub <= max_r2 + 1e-9)
        # every SNP passed over above the floor, before the last pin, was linked
        if len(pins):
            skipped = np.flatnonzero(implied > implied[pins[-1]])
            for j in set(skipped) - set(pins) - {lead}:
                assert r2[j, taken].max() > max_r2 - 1e-9
    # a high floor takes none; the strongest implied SNPs are the lead's LD partners
    assert len(A.pinned_snps(x, region, implied, 10, 0.8, 50.0)) == 0
    assert len(A.pinned_snps(x, region, implied, 3, 0.8, 2.0)) > 0


@pytest.mark.parametrize("y_sd", [0.4, 0.15])  # 0.15: the members' cases clip at y_clip
def test_released_prevalence__reads_the_members_prevalence_off_the_released_mean(y_sd) -> None:
    """Members at prevalence 0.2, synthetic rows at 0.06 (the demo's DP model): the exact
    clipped, standardised mean of the members gives back 0.2 without covariates; with a
    covariate the shift is read as one shift of every stratum (exact when it is)."""
    rng = np.random.default_rng(0)
    ref = A.Reference(alt_freq=np.zeros(1), y_mean=0.0, y_sd=y_sd)
    members = (rng.uniform(size=5_000) < 0.2).astype(float)
    synth = (rng.uniform(size=4_000) < 0.06).astype(float)
    c0 = synth.mean()  # the synthetic fit's intercept
    released = float(aph.standardise_phenotype(members - c0, ref, 2.5).mean())
    got = aph.released_prevalence(synth, np.full(len(synth), c0), ref, 2.5, released)
    assert got == pytest.approx(members.mean(), abs=1e-9)
    # a covariate: both strata 0.14 above the synthetic ones
    w_m, w_s = rng.uniform(size=5_000) < 0.3, rng.uniform(size=4_000) < 0.3
    p_s = np.where(w_s, 0.2, 0.05)
    synth = (rng.uniform(size=4_000) < p_s).astype(float)
    fitted_s = np.where(w_s, synth[w_s].mean(), synth[~w_s].mean())
    p_m = np.where(w_m, 0.34, 0.19)
    members = (rng.uniform(size=5_000) < p_m).astype(float)
    fitted_m = np.where(w_m, synth[w_s].mean(), synth[~w_s].mean())
    released = float(aph.standardise_phenotype(members - fitted_m, ref, 2.5).mean())
    got = aph.released_prevalence(synth, fitted_s, ref, 2.5, released)
    # exact up to the strata shares of the two samples (0.3 each in expectation)
    assert got == pytest.approx(members.mean(), abs=0.01)
    # no formal privacy: nothing clipped, the exact mean
    released = float(aph.standardise_phenotype(members - fitted_m, ref, None).mean())
    assert aph.released_prevalence(synth, fitted_s, ref, None, released) == pytest.approx(
        members.mean(), abs=0.01
    )


def test_released_affine__gives_the_synthetic_residuals_the_members_moments() -> None:
    """Members' residuals ``0.3 + 1.2 z`` against synthetic ones ``z`` (standardised): the
    exact clipped moments give back the map; without clipping it is closed-form; a release
    at the clip's saturation does not identify it."""
    rng = np.random.default_rng(0)
    synth = rng.standard_normal(20_000)
    members = 0.3 + 1.2 * rng.standard_normal(20_000)
    for clip in (2.5, None):
        v = members if clip is None else np.clip(members, -clip, clip)
        loc = aph.Location(float(v.mean()), float(v.std()))
        got = aph.released_affine(synth, clip, loc)
        assert got is not None
        np.testing.assert_allclose(got, (0.3, 1.2), atol=0.03)
        mapped = got[0] + got[1] * synth
        mapped = mapped if clip is None else np.clip(mapped, -clip, clip)
        assert mapped.mean() == pytest.approx(loc.mean, abs=1e-3)
        assert mapped.std() == pytest.approx(loc.sd, abs=1e-3)
    # members 20 times as spread as the synthetic scale: nearly all at the clip
    wide = np.clip(20.0 * rng.standard_normal(20_000), -2.5, 2.5)
    assert (
        aph.released_affine(synth, 2.5, aph.Location(float(wide.mean()), float(wide.std()))) is None
    )


def test_shrink_slopes__positive_part_james_stein() -> None:
    step = np.array([1.0, -0.5, 0.1, 0.3])
    sd = np.array([0.5, 0.0, 0.2, 0.3])
    np.testing.assert_allclose(aph.shrink_slopes(step, sd), [0.75, -0.5, 0.0, 0.0])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
def test_covariate_release__each_members_contribution_within_the_sensitivity(k) -> None:
    """The per-member vector the slope release sums, ``(r u, kappa q)`` with ``|r| <=
    y_clip`` and ``||u|| <= w_clip``, never exceeds :func:`covariate_sensitivity` (checked on
    the extremes: ``u`` at norm 0 and at the clip, along axes and diagonals, and at random),
    and the second-moment block reads back ``u u^T`` exactly."""
    rng = np.random.default_rng(k)
    y_clip, w_clip = 2.5, 2.5
    u = np.vstack(
        [
            np.zeros((1, k)),
            np.eye(k) * w_clip,
            np.ones((1, k)) * w_clip / math.sqrt(k),
            A.clip_rows(rng.normal(scale=3.0, size=(2000, k)), w_clip),
        ]
    )
    q, shift, bound = aph._moment_block(u, w_clip)
    assert np.linalg.norm(q, axis=1).max() <= bound + 1e-9
    kappa = aph.COVARIATE_MOMENT_SHARE * y_clip * w_clip / bound
    for r in (y_clip, -y_clip):
        v = np.hstack([r * u, kappa * q])
        assert np.linalg.norm(v, axis=1).max() <= aph.covariate_sensitivity(y_clip, w_clip) + 1e-9
    back = aph._from_triangle(q[-1] + shift, k)
    np.testing.assert_allclose(back, np.outer(u[-1], u[-1]), atol=1e-12)


def test_release_lead__exact_moments_and_each_members_contribution_within_the_sensitivity() -> None:
    """Without noise the release is the raw centred dosage's cross-moment and the allele
    frequency; adding one member moves the vector ``(sum (x - 1) y, w y_clip sum (x - 1))`` by
    at most ``y_clip sqrt(1 + w^2)`` (the worst member: a homozygote at the phenotype bound,
    a missing dosage counts as 1)."""
    rng = np.random.default_rng(3)
    n, y_clip, w = 500, 2.0, 0.5
    x = rng.binomial(2, 0.3, size=n).astype(float)
    y = rng.normal(size=n) + 0.4 * (x - 0.6)
    y = np.clip(y - y.mean(), -y_clip, y_clip)  # centred, as by the location release
    rel = A.release_lead(
        x, y, noise_multiplier=None, y_clip=y_clip, count_weight=w, noise=GeneratorNoise(rng)
    )
    assert rel.cross == pytest.approx(float(((x - 1) @ y) / n))
    assert rel.frequency == pytest.approx(x.mean() / 2)
    assert rel.cross_sd == 0.0 and rel.frequency_sd == 0.0
    r, r_sd, f = rel.correlation()
    assert f == pytest.approx(x.mean() / 2) and r_sd == 0.0
    # the covariance over the Hardy-Weinberg sd at the released frequency (y centred)
    hwe_sd = math.sqrt(2 * f * (1 - f))
    assert r == pytest.approx(float((x - 1) @ y) / n / hwe_sd)
    # ... which is the covariance's, up to the phenotype's mean times |2 f - 1| / sd_x
    gap = abs(r - float(np.cov(x, y, bias=True)[0, 1]) / hwe_sd)
    assert gap <= abs(2 * f - 1) * abs(y.mean()) / hwe_sd + 1e-12

    def vector(xs, ys):
        xc = np.clip(np.nan_to_num(xs - 1.0, nan=0.0), -1, 1)
        return np.array([xc @ ys, w * y_clip * xc.sum()])

    bound = y_clip * math.hypot(1.0, w)
    for extra_x, extra_y in [(2.0, y_clip), (0.0, -y_clip), (np.nan, y_clip), (1.0, 0.3)]:
        more = vector(np.append(x, extra_x), np.append(y, extra_y))
        assert np.linalg.norm(more - vector(x, y)) <= bound + 1e-9
    assert np.linalg.norm(vector(np.append(x, 2.0), np.append(y, y_clip)) - vector(x, y)) == (
        pytest.approx(bound)
    )
    with pytest.raises(ValueError, match="y_clip"):
        A.release_lead(
            x, y * 3, noise_multiplier=1.0, y_clip=y_clip, count_weight=w, noise=GeneratorNoise(rng)
        )


def test_release_lead__noise_has_the_calibrated_scale() -> None:
    """A zero phenotype: the cross-moment is pure noise of sd ``sigma y_clip sqrt(1 + w^2) /
    n``; the frequency's noise sd is that over ``2 w y_clip``; both as stated."""
    rng = np.random.default_rng(4)
    n, sigma, y_clip, w = 300, 2.0, 1.5, 0.5
    x = rng.binomial(2, 0.4, size=n).astype(float)
    draws = [
        A.release_lead(
            x,
            np.zeros(n),
            noise_multiplier=sigma,
            y_clip=y_clip,
            count_weight=w,
            noise=GeneratorNoise(rng),
        )
        for _ in range(6000)
    ]
    cross = np.array([d.cross for d in draws])
    freq = np.array([d.frequency for d in draws])
    expected = sigma * y_clip * math.hypot(1.0, w) / n
    assert draws[0].cross_sd == pytest.approx(expected)
    assert cross.std() == pytest.approx(expected, rel=0.04)
    assert abs(cross.mean()) < 4 * expected / math.sqrt(len(cross))
    assert freq.std() == pytest.approx(draws[0].frequency_sd, rel=0.04)
    assert draws[0].frequency_sd == pytest.approx(expected / (2 * w * y_clip))
    assert freq.mean() == pytest.approx(x.mean() / 2, abs=4 * draws[0].frequency_sd / 70)


def test_lead_candidates__snps_well_inside_the_span_and_common() -> None:
    """A block in LD (a few haplotypes) has SNPs with most of their variance in a few
    components; independent SNPs, as DP genotypes without LD, have none at the same count;
    a rare SNP is never a candidate."""
    rng = np.random.default_rng(5)
    n, m = 400, 60
    haplotypes = rng.binomial(1, 0.4, size=(4, m))
    pick = rng.integers(4, size=(n, 2))
    block = (haplotypes[pick[:, 0]] + haplotypes[pick[:, 1]]).astype(float)
    flips = rng.random((n, m)) < 0.02
    block = np.where(flips, rng.binomial(2, 0.4, size=(n, m)), block)
    rb = A.region_basis(block, 6)
    assert len(A.lead_candidates(rb, 0.5)) > m // 2
    independent = rng.binomial(2, 0.4, size=(n, m)).astype(float)
    assert len(A.lead_candidates(A.region_basis(independent, 6), 0.5)) == 0
    rare = block.copy()
    rare[:, 0] = (rng.random(n) < 0.02).astype(float)
    rare[:, 1] = block[:, 2]
    ok = A.lead_candidates(A.region_basis(rare, 6), 0.5, min_maf=0.05)
    assert 0 not in ok and 1 in ok
