"""Ancestry across chromosomes: the panel's axes, leave-one-chromosome-out scores, the public
clusters, the DP release of the members' mix and the synthetic cohort that follows it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from dpgenome.ancestry import (
    AUTO_PCS,
    ancestry_domain,
    detect_structure,
    fit_axes,
    phenotype_moments_sensitivity,
    release_ancestry,
    release_phenotype_moments,
)
from dpgenome.association import clip_rows
from dpgenome.association_config import AssociationConfig
from dpgenome.budget import calibrated_ledger
from dpgenome.cohort import analysis_subset
from dpgenome.errors import ConfigError
from dpgenome.noise import GeneratorNoise
from dpgenome.relatedness import Indicators, king_robust, unrelated
from dpgenome.simulate import SimConfig, colony_labels, simulate
from dpgenome.synthconfig import ANCESTRY, ANCESTRY_PHENOTYPE, SynthConfig
from dpgenome.synthesize import synthesize


@pytest.fixture(scope="module")
def colonies():
    """Two sub-colonies split 30 generations ago; the cohort 3:1, the panel 1:1 (each row's
    sub-colony from :func:`colony_labels`)."""
    cfg = SimConfig.small(seed=3, n=320, n_public=300, colonies=2, colony_shares=(0.75, 0.25))
    sim = simulate(cfg)
    return sim, *colony_labels(cfg)


def _classified(score: np.ndarray, colony: np.ndarray) -> float:
    """Share of individuals on their colony's side of the midpoint of the colony means."""
    means = [score[colony == c].mean() for c in (0, 1)]
    side = (score - np.mean(means)) * np.sign(means[1] - means[0]) > 0
    return float(np.mean(side == (colony == 1)))


def test_colony_labels__follow_the_shares_spread_over_the_rows() -> None:
    cohort, public = colony_labels(SimConfig(n=10, n_public=7, colonies=3))
    assert np.bincount(cohort).tolist() == [4, 3, 3] and np.bincount(public).tolist() == [3, 2, 2]
    cfg = SimConfig(n=400, colonies=2, colony_shares=(0.75, 0.25))
    cohort, _ = colony_labels(cfg)
    assert np.bincount(cohort).tolist() == [300, 100]
    np.testing.assert_array_equal(colony_labels(cfg)[0], cohort)  # seeded
    # spread, not in row order: each half of the rows holds about its share of colony 1
    assert abs(cohort[:200].mean() - 0.25) < 0.08 and abs(cohort[200:].mean() - 0.25) < 0.08
    with pytest.raises(ConfigError, match="colony_shares"):
        SimConfig(colonies=2, colony_shares=(0.5, 0.6)).validate()
    with pytest.raises(ConfigError, match="colony_split_generations"):
        SimConfig(colonies=2, colony_split_generations=40).validate()


def test_fit_axes__first_axis_separates_the_colonies_and_scores_are_standardised(colonies):
    sim, cohort_colony, panel_colony = colonies
    axes = fit_axes(sim.public.dosages, sim.public.variants, 3)
    full, loco = axes.scores(sim.public.dosages)
    np.testing.assert_allclose(full.std(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(loco.std(axis=0), 1.0, rtol=1e-6)
    assert _classified(full[:, 0], panel_colony) > 0.95
    # the members (out of sample) sit on the same axis, and so does each chromosome's
    # leave-one-out score: the colony is one across the genome
    members_full, members_loco = axes.scores(sim.cohort.dosages)
    assert _classified(members_full[:, 0], cohort_colony) > 0.95
    for c in range(axes.n_chromosomes):
        assert _classified(members_loco[:, c, 0], cohort_colony) > 0.85
    assert axes.explained[0] > axes.explained[1] > 0


def test_fit_axes__a_chromosomes_own_snps_never_enter_its_leave_one_out_score(colonies):
    sim, _, _ = colonies
    axes = fit_axes(sim.public.dosages, sim.public.variants, 2)
    x = sim.cohort.dosages[:5].copy()
    _, before = axes.scores(x)
    on_first = axes.chromosome == 0
    x[:, on_first] = 2.0 - x[:, on_first]  # every genotype of the first chromosome flipped
    _, after = axes.scores(x)
    np.testing.assert_allclose(after[:, 0], before[:, 0], atol=1e-9)
    assert np.abs(after[:, 1] - before[:, 1]).max() > 0.1


def test_ancestry_domain__clusters_are_seeded_public_and_nearest_is_consistent(colonies):
    sim, _, panel_colony = colonies
    axes = fit_axes(sim.public.dosages, sim.public.variants, 4)
    full, _ = axes.scores(sim.public.dosages)
    weights = axes.full_sd / axes.full_sd[0]
    dom = ancestry_domain(full, 6, seed=0, weights=weights)
    again = ancestry_domain(full, 6, seed=0, weights=weights)
    np.testing.assert_array_equal(dom.panel_cluster, again.panel_cluster)
    assert dom.size <= 6 and np.all(dom.public_counts > 0)
    np.testing.assert_array_equal(dom.nearest(full), dom.panel_cluster)
    # clusters are nearly pure in colony (the axes weighed by their sds)
    purity = [
        max(
            np.mean(panel_colony[dom.panel_cluster == j]),
            1 - np.mean(panel_colony[dom.panel_cluster == j]),
        )
        for j in range(dom.size)
    ]
    assert np.average(purity, weights=dom.public_counts) > 0.9


def test_release_ancestry__exact_shares_noise_and_draws_of_panel_scores(colonies):
    sim, cohort_colony, panel_colony = colonies
    axes = fit_axes(sim.public.dosages, sim.public.variants, 2)
    panel_full, panel_loco = axes.scores(sim.public.dosages)
    weights = axes.full_sd / axes.full_sd[0]
    dom = ancestry_domain(panel_full, 4, seed=0, weights=weights, panel_loco=panel_loco)
    members, _ = axes.scores(sim.cohort.dosages)
    exact = release_ancestry(
        members, dom, noise_multiplier=None, noise=GeneratorNoise(np.random.default_rng(0))
    )
    np.testing.assert_allclose(
        exact.shares, np.bincount(dom.nearest(members), minlength=dom.size) / len(members)
    )
    draws = exact.draw(4000, np.random.default_rng(1))
    # every draw is a panel individual's leave-one-chromosome-out scores (what the model was
    # pretrained on), and the mix follows the members' (3:1)
    assert draws.shape == (4000, axes.n_chromosomes, 2)
    index = {tuple(r.ravel()): i for i, r in enumerate(panel_loco)}
    picked = np.array([index[tuple(r.ravel())] for r in draws])
    # (pulled a little towards the panel's 1:1 where the sub-colonies overlap on the axes:
    # a cluster's panel individuals keep the panel's mix; measured 0.26-0.34 for 0.25)
    assert abs(panel_colony[picked].mean() - cohort_colony.mean()) < 0.1
    # the Gaussian release: noise of sd sigma on each count (sensitivity 1)
    noisy = release_ancestry(
        members, dom, noise_multiplier=3.0, noise=GeneratorNoise(np.random.default_rng(2))
    )
    counts = np.bincount(dom.nearest(members), minlength=dom.size)
    expected = counts + np.random.default_rng(2).normal(scale=3.0, size=dom.size)
    keep = expected >= 6.0
    np.testing.assert_allclose(noisy.shares, np.where(keep, expected, 0) / expected[keep].sum())
    assert noisy.kept == int(keep.sum())
    bad = members.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="must be finite"):
        release_ancestry(
            bad, dom, noise_multiplier=3.0, noise=GeneratorNoise(np.random.default_rng(2))
        )


@pytest.mark.filterwarnings("ignore:.*DPGENOME_NOISE_SEED.*")
def test_synthesize__ancestry_keeps_each_synthetic_individual_in_one_colony(colonies):
    """Without ancestry the chromosomes of a synthetic mouse come from either colony: on the
    first axis most mice sit between the colonies (admixed) and the mix is about even. With
    it the mice are in one colony or the other, in the members' 3:1 mix, under one ledger
    that charges the ``ancestry`` histogram."""
    sim, _, panel_colony = colonies
    members = analysis_subset(sim.cohort, "abBMD", ["SW16"])
    axes = fit_axes(sim.public.dosages, sim.public.variants, 4)
    panel_full, _ = axes.scores(sim.public.dosages)
    centre = [panel_full[panel_colony == c, 0].mean() for c in (0, 1)]

    def placed(dosages: np.ndarray) -> tuple[float, float]:
        t = (axes.scores(dosages)[0][:, 0] - centre[0]) / (centre[1] - centre[0])
        return float(np.mean(t > 0.5)), float(np.mean((t > 0.25) & (t < 0.75)))

    share, middle = placed(members.dosages)
    assert 0.2 < share < 0.3 and middle < 0.3
    out = {}
    for pcs in (0, "auto"):  # auto, the default: the panel's halves share the colony axis
        cfg = SynthConfig(
            pheno="abBMD", covariates=("SW16",), epsilon=8.0, seed=1, ancestry_pcs=pcs
        )
        res = synthesize(members, cfg, sim.public)
        out[pcs] = placed(res.cohort.dosages)
        names = [m.name for m in res.ledger.mechanisms]
        assert (ANCESTRY in names) == bool(pcs)
        assert res.ledger.epsilon() <= 8.0 * (1 + 1e-9)
    assert out[0][1] > 0.5  # admixed
    assert out["auto"][1] < 0.45 and abs(out["auto"][0] - share) < 0.1
    auto = res.details["ancestry"]["auto"]
    assert auto["shared_axes"] >= 1 and auto["ancestry_pcs"] == 4 and auto["panel"] == 300
    record = res.ledger.to_dict()
    (mech,) = [m for m in record["mechanisms"] if m["name"] == ANCESTRY]
    assert mech["kind"] == "gaussian" and mech["count"] == 1 and mech["noise_multiplier"] > 0
    assert res.details["ancestry"]["clusters_kept"] >= 1
    assert "(4 axes)" in next(m.note for m in res.ledger.mechanisms if m.name == ANCESTRY)
    # auto without a panel is off; a number of axes without one is refused
    assert ANCESTRY not in [m.name for m in synthesize(members, cfg).ledger.mechanisms]
    cfg = replace(cfg, ancestry_pcs=4)
    with pytest.raises(ConfigError, match="public panel"):
        synthesize(members, cfg)
    # refused before the ledger is calibrated: too few panel individuals, one chromosome
    with pytest.raises(ConfigError, match=r"public panel of more individuals \(it has 4"):
        synthesize(members, cfg, sim.public.take_samples(np.arange(4)))
    on_5 = np.flatnonzero((members.variants["chr"].astype(str) == "5").to_numpy())
    with pytest.raises(ConfigError, match="at least two chromosomes"):
        synthesize(members.take_variants(on_5), cfg, sim.public.take_variants(on_5))


def test_release_phenotype_moments__exact_clipped_and_noisy() -> None:
    """Without formal privacy the members' own ``mean(y s)``; under DP the phenotype clipped
    at ``y_clip``, each score vector at norm ``score_clip``, one Gaussian draw of sd
    ``sigma * y_clip * score_clip`` on the sums, and the matched values moved two noise sds
    towards 0 (an axis whose moment is within that of 0 is dropped)."""
    rng = np.random.default_rng(4)
    n, k = 500, 3
    scores = rng.normal(size=(n, k)) * [2.0, 1.0, 0.5]
    y = 0.4 * scores[:, 0] + rng.normal(size=n)
    exact = release_phenotype_moments(
        y, scores, y_clip=None, score_clip=None, noise_multiplier=None, noise=GeneratorNoise(rng)
    )
    np.testing.assert_allclose(exact.released, y @ scores / n)
    np.testing.assert_array_equal(exact.kept, exact.released)
    np.testing.assert_array_equal(exact.columns(scores), scores)
    assert phenotype_moments_sensitivity(2.0, 1.5) == 3.0
    noisy = release_phenotype_moments(
        y,
        scores,
        y_clip=2.0,
        score_clip=1.5,
        noise_multiplier=4.0,
        noise=GeneratorNoise(np.random.default_rng(9)),
    )
    u = clip_rows(scores, 1.5)
    assert np.linalg.norm(u, axis=1).max() <= 1.5 + 1e-12
    draw = np.random.default_rng(9).normal(scale=4.0 * 3.0, size=k)
    expected = (np.clip(y, -2.0, 2.0) @ u + draw) / n
    np.testing.assert_allclose(noisy.released, expected)
    np.testing.assert_allclose(noisy.noise_sd, 12.0 / n)
    moved = np.sign(expected) * np.maximum(np.abs(expected) - 2.0 * 12.0 / n, 0.0)
    np.testing.assert_allclose(noisy.kept, moved)
    np.testing.assert_allclose(noisy.columns(scores), u)
    assert noisy.kept[0] > 0.2  # the real moment (0.4 x var 4, clipped) survives its noise
    # about a centre (the synthetic individuals' mean score), the clip's shrink divided out
    centre = np.array([0.5, -0.2, 0.1])
    moved = release_phenotype_moments(
        y,
        scores,
        y_clip=2.0,
        score_clip=1.5,
        noise_multiplier=4.0,
        noise=GeneratorNoise(np.random.default_rng(9)),
        centre=centre,
        attenuation=0.8,
    )
    u = clip_rows(scores - centre, 1.5)
    np.testing.assert_allclose(moved.released, (np.clip(y, -2.0, 2.0) @ u + draw) / (0.8 * n))
    np.testing.assert_allclose(moved.noise_sd, 12.0 / (0.8 * n))
    np.testing.assert_allclose(moved.columns(scores), u)
    with pytest.raises(ValueError, match="both clips"):
        release_phenotype_moments(
            y, scores, y_clip=2.0, score_clip=None, noise_multiplier=1.0, noise=GeneratorNoise(rng)
        )
    bad = scores.copy()
    bad[3, 1] = np.nan  # a NaN passes a clip: refused, not released
    with pytest.raises(ValueError, match="must be finite"):
        release_phenotype_moments(
            y, bad, y_clip=2.0, score_clip=1.5, noise_multiplier=1.0, noise=GeneratorNoise(rng)
        )


@pytest.fixture(scope="module")
def stratified():
    """Two sub-colonies (cohort 3:1, panel 1:1) with abBMD's liability 1.5 sds up in the
    second (fixed QTL variances: the calibration would resize them around the shift)."""
    cfg = SimConfig.small(
        seed=3,
        n=320,
        n_public=300,
        colonies=2,
        colony_shares=(0.75, 0.25),
        colony_effects=(0.0, 1.5),
        calibrate_lead="off",
    )
    return simulate(cfg)


@pytest.mark.filterwarnings("ignore:.*DPGENOME_NOISE_SEED.*")
def test_synthesize__a_stratified_trait_follows_ancestry(stratified):
    """A trait whose mean differs between sub-colonies: with ancestry on, the pairing matches
    the phenotype's cross-moments with the synthetic individuals' own ancestry scores, so the
    synthetic phenotype lines up with the first axis as the members' does (without the
    ``ancestry-phenotype`` release only what the selected regions carry does). Under DP the
    release is one Gaussian vector on the ledger and the pairing reaches its matched
    values."""
    members = analysis_subset(stratified.cohort, "abBMD", ["SW16"])
    axes = fit_axes(stratified.public.dosages, stratified.public.variants, 2)

    def pc1(cohort) -> float:
        y = cohort.phenotypes["abBMD"].to_numpy(dtype=float)
        ok = ~np.isnan(y)
        return float(np.corrcoef(y[ok], axes.scores(cohort.dosages)[0][ok, 0])[0, 1])

    real = pc1(members)
    assert abs(real) > 0.2  # measured 0.251
    # on the ledger exactly when it runs: ancestry on, a panel, the association path on
    for changes, has_public, charged in (
        ({}, True, True),
        ({}, False, False),
        ({"ancestry_pcs": 0}, True, False),
        ({"ancestry_phenotype": False}, True, False),
        ({"association": replace(AssociationConfig(), max_regions=0)}, True, False),
    ):
        settings = {"ancestry_pcs": 2, **changes}
        cfg = SynthConfig(pheno="abBMD", covariates=("SW16",), epsilon=8.0, **settings)
        cfg = cfg.validate(members.n_samples)
        names = [m.name for m in calibrated_ledger(members, cfg, has_public=has_public).mechanisms]
        assert (ANCESTRY_PHENOTYPE in names) == charged, changes
    base = {"pheno": "abBMD", "covariates": ("SW16",), "seed": 1, "ancestry_pcs": 2}
    exact = {
        on: synthesize(
            members,
            SynthConfig(epsilon=float("inf"), ancestry_phenotype=on, **base),
            stratified.public,
        )
        for on in (True, False)
    }
    # measured: 0.259 with it, 0.159 without
    assert abs(pc1(exact[True].cohort) - real) < 0.05 < abs(pc1(exact[False].cohort) - real)
    assert "phenotype" not in exact[False].details["ancestry"]
    record = exact[True].details["ancestry"]["phenotype"]
    # measured: 0.187 and -0.036 reached for 0.194 and -0.038
    np.testing.assert_allclose(record["synthetic"], record["matched"], atol=0.015)
    dp = synthesize(members, SynthConfig(epsilon=8.0, **base), stratified.public)
    assert dp.ledger.epsilon() <= 8.0 * (1 + 1e-9)
    (mech,) = [m for m in dp.ledger.to_dict()["mechanisms"] if m["name"] == ANCESTRY_PHENOTYPE]
    assert mech["kind"] == "gaussian" and mech["count"] == 1 and mech["noise_multiplier"] > 0
    record = dp.details["ancestry"]["phenotype"]
    # the noise sd is the calibrated multiplier times the planned sensitivity (2.0 x 2.0),
    # over n and the clip's attenuation (the region release's kappa)
    kappa = dp.details["association"]["phenotype_attenuation"]
    assert 0.9 < kappa <= 1.0
    np.testing.assert_allclose(
        record["noise_sd"], mech["noise_multiplier"] * 4.0 / (members.n_samples * kappa), atol=1e-5
    )
    np.testing.assert_allclose(record["synthetic"], record["matched"], atol=0.01)


def _panel(
    seed: int,
    n: int,
    chromosomes: int,
    snps: int,
    shift: float = 0.0,
    local: float = 0.0,
    populations: int = 2,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Genotypes ``(n, chromosomes * snps)`` drawn Binomial(2, f): the individuals spread over
    ``populations``, each but the first moving every SNP's frequency by ``shift`` (a random
    sign per SNP and population: structure across the genome), and on chromosome 1 alone a
    factor of the individuals' own moving its SNPs by ``local`` (a local structure: an LD
    block's haplotype)."""
    rng = np.random.default_rng(seed)
    m = chromosomes * snps
    base = rng.uniform(0.2, 0.8, m)
    member = np.eye(populations)[np.arange(n) % populations][:, 1:]  # (n, populations - 1)
    f = base + shift * member @ rng.choice([-1.0, 1.0], (populations - 1, m))
    block = np.zeros(m)
    block[:snps] = local
    f = f + rng.choice([-1.0, 1.0], (n, 1)) * block * rng.choice([-1.0, 1.0], m)
    x = rng.binomial(2, np.clip(f, 0.01, 0.99)).astype(np.float32)
    chrom = np.repeat([str(c + 1) for c in range(chromosomes)], snps)
    pos = np.tile(np.arange(1, snps + 1) * 1000, chromosomes)
    variants = pd.DataFrame({"chr": chrom, "pos": pos, "id": [f"s{i}" for i in range(m)]})
    return x, variants


def _families(
    seed: int, founders: int, children: int, chromosomes: int, snps: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """``founders / 2`` couples of unrelated founders (allele frequencies 0.2-0.8), each with
    ``children`` full siblings (one allele from each parent at every SNP, unlinked): a panel
    of one population with close relatives, founders first."""
    rng = np.random.default_rng(seed)
    m = chromosomes * snps
    haps = rng.random((founders, 2, m)) < rng.uniform(0.2, 0.8, m)
    kids = []
    for mother, father in np.arange(founders).reshape(-1, 2):
        for _ in range(children):
            pick = rng.integers(0, 2, (2, m))
            kids.append(haps[mother, pick[0], np.arange(m)] + haps[father, pick[1], np.arange(m)])
    x = np.vstack([haps.sum(axis=1), np.array(kids)]).astype(np.float32)
    chrom = np.repeat([str(c + 1) for c in range(chromosomes)], snps)
    pos = np.tile(np.arange(1, snps + 1) * 1000, chromosomes)
    return x, pd.DataFrame({"chr": chrom, "pos": pos, "id": [f"s{i}" for i in range(m)]})


def test_unrelated__keeps_no_pair_of_relatives() -> None:
    """Founders and their children: every child is first-degree kin of its parents and
    siblings, so the set kept has no pair at a first degree or closer (KING-robust on the
    kept set; nor, here, at a second degree), and keeps every founder when each family has
    more than two children (the children, with more relatives, go first)."""
    x, _ = _families(1, founders=40, children=3, chromosomes=2, snps=1500)
    keep = unrelated(x)
    calls = Indicators.from_dosages(x[keep])
    phi = king_robust(calls, calls)
    np.fill_diagonal(phi, 0.0)
    assert phi.max() < 0.0884
    assert set(range(40)) <= set(keep.tolist())
    np.testing.assert_array_equal(unrelated(x[:40]), np.arange(40))  # founders alone: all


def test_detect_structure__structure_shared_by_the_genome_halves_and_nothing_else() -> None:
    """Two populations across the genome: the halves' first components line up (canonical
    correlation near 1), ancestry is chosen with K = 4. No structure, or a strong one on one
    chromosome only (an LD block, the top component of its half), or nothing to compare:
    off. The Gram matrix returned is the whole genome's (fit_axes gives the same axes)."""
    x, v = _panel(1, 300, 4, 400, shift=0.1)
    test, gram = detect_structure(x, v)
    assert test.correlations[0] > 0.9 and test.p_values[0] < 1e-12 and test.axes == 1
    assert test.pcs == AUTO_PCS and test.panel == 300 and len(test.correlations) == 10
    summary = test.summary()
    assert summary["shared_axes"] == 1 and summary["ancestry_pcs"] == 4
    given, own = fit_axes(x, v, 3, gram=gram), fit_axes(x, v, 3)
    np.testing.assert_allclose(np.abs(given.loadings), np.abs(own.loadings), atol=1e-6)
    for panel in (_panel(2, 300, 4, 400), _panel(3, 300, 4, 400, local=0.3)):
        test, _ = detect_structure(*panel)
        assert test.axes == 0 and test.pcs == 0 and test.correlations[0] < 0.4
    # three populations: two shared axes, every p-value Bartlett's on the tail of the
    # correlations (degrees of freedom (k - j)^2)
    test, _ = detect_structure(*_panel(8, 300, 4, 400, shift=0.1, populations=3))
    assert test.axes == 2 and test.pcs == AUTO_PCS and test.correlations[1] > 0.8
    k = len(test.correlations)
    tail = np.cumsum(np.log1p(-(test.correlations**2))[::-1])[::-1]
    bartlett = chi2.sf(-(300 - 1 - (2 * k + 1) / 2) * tail, (k - np.arange(k)) ** 2)
    np.testing.assert_allclose(test.p_values, bartlett, rtol=1e-9)
    # one population with families (40 founders, 8 children per couple): relatives share
    # their genomes on every chromosome, and are set aside before the test
    x, v = _families(2, founders=40, children=8, chromosomes=4, snps=400)
    test, _ = detect_structure(x, v)
    assert test.panel == 200 and test.unrelated == 40 and test.pcs == 0
    x, v = _panel(7, 60, 2, 15)  # 30 SNPs span at most 30 axes: 40 would be noise
    with pytest.raises(ConfigError, match="span only 30 principal axes"):
        fit_axes(x, v, 40)
    x, v = _panel(4, 300, 1, 400, shift=0.1)  # one chromosome: no halves
    assert detect_structure(x, v)[0].pcs == 0 and detect_structure(x, v)[1] is None
    x, v = _panel(5, 10, 4, 50, shift=0.1)  # 10 individuals: no component tested
    assert detect_structure(x, v)[0].pcs == 0
    x, v = _panel(9, 100, 2, 30)  # every SNP monomorphic: no axis in either half
    assert detect_structure(np.ones_like(x), v)[0].pcs == 0


def _standardised_components(x: np.ndarray, k: int) -> np.ndarray:
    """The top ``k`` principal-component scores of ``x``'s columns standardised at their own
    frequency, by an SVD (not the Gram matrix's eigenvectors, as the code does)."""
    f = x.mean(axis=0) / 2
    z = (x - 2 * f) / np.sqrt(2 * f * (1 - f))
    u, d, _ = np.linalg.svd(z, full_matrices=False)
    return u[:, :k] * d[:k]


def test_detect_structure__against_direct_formulas() -> None:
    """The canonical correlations against the eigenvalues of ``Sxx^-1 Sxy Syy^-1 Syx`` of
    the halves' components computed by an SVD, and Bartlett's first p-value against Wilks'
    lambda read off the determinants of the correlation matrices (Mardia, Kent & Bibby
    1979, sec. 10.2): two other routes to the same numbers."""
    x, v = _panel(6, 200, 4, 300, shift=0.02)
    test, _ = detect_structure(x, v)
    k = len(test.correlations)
    odd = np.isin(v["chr"].to_numpy(), ["1", "3"])
    a, b = _standardised_components(x[:, odd], k), _standardised_components(x[:, ~odd], k)
    s = np.cov(np.hstack([a, b]).T)
    sxx, syy, sxy = s[:k, :k], s[k:, k:], s[:k, k:]
    m = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    rho = np.sqrt(np.sort(np.linalg.eigvals(m).real)[::-1])
    np.testing.assert_allclose(test.correlations, rho, atol=1e-6)  # float32 dosages
    r = np.corrcoef(np.hstack([a, b]).T)
    wilks = np.linalg.det(r) / (np.linalg.det(r[:k, :k]) * np.linalg.det(r[k:, k:]))
    stat = -(200 - 1 - (2 * k + 1) / 2) * np.log(wilks)
    np.testing.assert_allclose(test.p_values[0], chi2.sf(stat, k * k), rtol=1e-4)


def test_detect_structure__false_detections_at_the_tests_level() -> None:
    """Forty panels without structure (the halves independent): the first p-value falls
    below 0.05 about as often as it should (2 expected; the Bartlett correction keeps the
    chi-square calibrated at 120 individuals and 10 components), and none is detected."""
    tests = [detect_structure(*_panel(100 + i, 120, 2, 150))[0] for i in range(40)]
    below = sum(t.p_values[0] < 0.05 for t in tests)
    assert below <= 6
    assert all(t.pcs == 0 for t in tests)
