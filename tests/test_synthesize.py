"""End to end: synthesize() and `dpgenome synthesize` on a tiny toy cohort."""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner, Result

from dpgenome import analysis_phenotype as aph
from dpgenome import association as A
from dpgenome.budget import calibrated_ledger, noise_multiplier
from dpgenome.cli import main
from dpgenome.cohort import analysis_subset, qc, swap_alleles
from dpgenome.errors import CohortError, ConfigError
from dpgenome.gwas import linear_gwas
from dpgenome.io import read_cohort, write_cohort
from dpgenome.lifetime import LifetimeLedger, individuals_fingerprint
from dpgenome.noise import GeneratorNoise, SecureNoise
from dpgenome.phenoencoding import PhenoSchema
from dpgenome.phenotypes import PhenotypeConfig
from dpgenome.release_id import synthetic_release_id
from dpgenome.synthconfig import (
    CENTRE,
    FLOAT_NOISE_CAVEAT,
    SECURE_MODE_SCOPE,
    SLOPES,
    SynthConfig,
)
from dpgenome.synthesize import (
    NOISE_SEED_ENV,
    fixed_noise_assumption,
    mechanism_seeds,
    resolve_ancestry,
    synthesize,
)
from dpgenome.testing import ToyConfig, toy_cohort

TOY = ToyConfig(n=300, n_chrom=2, snps_per_chrom=150, causal=((0, 70), (1, 40)), effect=1.2)
FAST = SynthConfig(
    pheno="BMD",
    covariates=("SW16",),
    structure_steps=80,
    pretrain_steps=80,
    finetune_steps=5,
    phenotypes=PhenotypeConfig(steps=20, hidden=16),
)


def _toy(seed: int, config: ToyConfig = TOY):
    """Toy cohort without ``bw`` (a continuous column outside the public CFW schema would add
    a DP-bins step to every test)."""
    cohort, truth = toy_cohort(seed, config)
    cohort.phenotypes = cohort.phenotypes.drop(columns=["bw"])
    cohort.pheno_types.pop("bw")
    return cohort, truth


@pytest.fixture(scope="module")
def members():
    cohort, truth = _toy(11)
    cohort, report = qc(cohort)
    return analysis_subset(cohort, "BMD", ["SW16"], report), truth


@pytest.fixture(scope="module")
def public():
    cohort, _ = _toy(12, replace(TOY, n=200))  # another draw: a separate "colony"
    return cohort


def test_synthesize__no_formal_privacy_keeps_the_association(members) -> None:
    m, truth = members
    res = synthesize(m, replace(FAST, epsilon=math.inf, seed=3))
    syn = res.cohort
    assert syn.dosages.shape == m.dosages.shape
    assert list(syn.variants["id"]) == list(m.variants["id"])
    assert set(np.unique(syn.dosages)) <= {0.0, 1.0, 2.0}
    assert not set(syn.sample_ids) & set(m.sample_ids)
    assert len(set(syn.sample_ids)) == syn.n_samples
    assert set(syn.phenotypes.columns) == set(m.phenotypes.columns)
    # no synthetic genotype row is a copy of a member row
    real_rows = {r.tobytes() for r in np.round(m.dosages).astype(np.int8)}
    assert not any(r.tobytes() in real_rows for r in syn.dosages.astype(np.int8))
    assert res.ledger.no_formal_privacy and math.isinf(res.ledger.epsilon())
    # the association survives: the synthetic GWAS peaks at a planted locus, far below 1e-6
    gw = linear_gwas(syn, "BMD", ["SW16"]).table
    top = gw.sort_values("p").iloc[0]
    pos = m.variants["pos"].to_numpy()
    chrom = m.variants["chr"].astype(str).to_numpy()
    near = [
        chrom[c] == top["chr"] and abs(int(pos[c]) - int(top["pos"])) <= 2_000_000
        for c in truth.causal_index
        if c < len(pos)
    ]
    assert any(near)
    assert top["p"] < 1e-6
    assert res.details["association"]["regions"]


def test_synthesize__ledger_composes_every_mechanism_within_the_target(members, public) -> None:
    m, _ = members
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    res = synthesize(m, replace(FAST, epsilon=4.0, seed=1), pub)
    led = res.ledger.to_dict()
    assert 3.9 < led["epsilon"] <= 4.0
    assert led["unit"] == "individual"
    assert led["delta"] == pytest.approx(1.0 / m.n_samples**1.1)
    kinds = {mech["name"]: mech["kind"] for mech in led["mechanisms"]}
    assert kinds["genotype-structure"] == "dp-sgd"
    assert kinds["phenotypes"] == "dp-sgd"
    assert kinds["region-selection"] == "exponential"
    assert kinds["region-test"] == "laplace"
    assert kinds["region-association"] == "gaussian"
    # one noisy max and one noisy threshold per round, at the budget the selection used
    by_name = {mech["name"]: mech for mech in led["mechanisms"]}
    k = FAST.association.max_regions
    assert by_name["region-selection"]["count"] == by_name["region-test"]["count"] == k
    a_det = res.details["association"]
    assert by_name["region-selection"]["epsilon"] == pytest.approx(a_det["eps_select_per_round"])
    assert by_name["region-test"]["epsilon"] == pytest.approx(a_det["eps_test_per_round"])
    assert a_det["eps_select_per_round"] == pytest.approx(
        min(4.0 * FAST.select_fraction, FAST.select_epsilon_max)
    )
    assert a_det["eps_test_per_round"] == pytest.approx(
        min(4.0 * FAST.test_fraction, FAST.test_epsilon_max)
    )
    assert kinds["phenotype-centre"] == "gaussian"
    # an analysis phenotype with a covariate: its slope is a mechanism of its own (the
    # cross-moments, and the covariate second moments at half their bound)
    assert kinds[SLOPES] == "gaussian"
    assert by_name[SLOPES]["sensitivity"] == pytest.approx(
        FAST.association.y_clip * FAST.association.covariate_clip * math.sqrt(1.25)
    )
    for mech in led["mechanisms"]:
        if mech["kind"] == "dp-sgd":
            assert (
                mech["noise_multiplier"] > 0 and 0 < mech["sample_rate"] <= 1 and mech["steps"] > 0
            )
    s = res.details["structure"]
    assert s["trainable"] == "bias" and s["noise_multiplier"] > 0
    assert "pretrain" in res.details
    assert res.details["association"]["reference"] == "public panel"
    assert res.cohort.n_samples == m.n_samples
    # the association release's sensitivity is that of its own clips, which the release used
    a = FAST.association
    gauss = {mech["name"]: mech for mech in led["mechanisms"]}["region-association"]
    assert gauss["sensitivity"] == pytest.approx(a.z_clip * a.effect_y_clip)
    d = res.details["association"]
    assert d["effect_phenotype_bound"] <= a.effect_y_clip
    assert 0.9 < d["phenotype_attenuation"] < 1.0  # P(|Z| < 2) under the public normal model
    # the ledger is fixed before any private data is read: planning it alone gives the same
    cfg = replace(FAST, epsilon=4.0, seed=1).validate(m.n_samples)
    with pytest.raises(ValueError, match="resolved from the public panel first"):
        calibrated_ledger(m, cfg, has_public=True)  # ancestry_pcs 'auto' is the panel's to set
    cfg, test, _ = resolve_ancestry(cfg, pub)
    assert cfg.ancestry_pcs == test.pcs == 0  # a panel of one colony: off
    alone = calibrated_ledger(m, cfg, has_public=True)
    assert alone.to_dict()["mechanisms"] == led["mechanisms"]
    assert noise_multiplier(alone, "region-association") == gauss["noise_multiplier"]
    assert (
        noise_multiplier(
            calibrated_ledger(m, replace(cfg, epsilon=math.inf), has_public=True), "phenotypes"
        )
        is None
    )


def test_synthesize__continuous_phenotype_takes_the_members_covariate_slope(
    members, public
) -> None:
    """The ``covariate-slopes`` release gives the synthetic rows the members' slope of the
    analysis phenotype on its covariate: exactly without formal privacy, within three sd of
    the release's noise at epsilon 8, which the details state (the synthetic covariate's
    marginal stands in for the members': the public schema's shares here); a phenotype
    without covariates has no such mechanism on its ledger."""
    m, _ = members

    def slope(table):
        return float(np.polyfit(table["SW16"].to_numpy(float), table["BMD"].to_numpy(float), 1)[0])

    schema = PhenoSchema.from_public_table(public.phenotypes, public.pheno_types)
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    config = replace(FAST, seed=3, phenotypes=replace(FAST.phenotypes, schema=schema))
    exact = synthesize(m, replace(config, epsilon=math.inf), pub)
    assert slope(exact.cohort.phenotypes) == pytest.approx(slope(m.phenotypes), abs=1e-9)
    assert exact.details["covariate_slopes"]["released"][0] == pytest.approx(slope(m.phenotypes))
    res = synthesize(m, replace(config, epsilon=8.0), pub)
    info = res.details["covariate_slopes"]
    assert slope(res.cohort.phenotypes) == pytest.approx(info["released"][0])
    # the release's noise on the slope, as the details state it (tests/test_association.py
    # checks that statement against the noise of repeated releases)
    assert info["noise_sd"][0] > 0
    assert abs(info["released"][0] - slope(m.phenotypes)) < 3.0 * info["noise_sd"][0]
    cfg = replace(FAST, epsilon=8.0).validate(m.n_samples)
    names = [mech.name for mech in calibrated_ledger(m, cfg, has_public=False).mechanisms]
    assert SLOPES in names
    assert info["synthetic"][0] == pytest.approx(info["released"][0])
    names = [
        mech.name
        for mech in calibrated_ledger(m, replace(cfg, covariates=()), has_public=False).mechanisms
    ]
    assert SLOPES not in names


@pytest.mark.parametrize("epsilon", [math.inf, 8.0])
def test_synthesize__binary_phenotype_rows_drawn_to_the_released_slope(
    members, public, epsilon
) -> None:
    """A 0/1 analysis phenotype's rows are drawn whole to the released prevalence and
    covariate slope (dpgenome.draw): without formal privacy the released slope is the
    members' own least-squares slope, at epsilon 8 it is within three of its stated noise
    sd; the drawn rows reach it up to the draw's own spread (the details record the slope
    they reach). The toy's abBMD liability carries 0.8 sd of SW16."""
    m = analysis_subset(members[0], "abBMD", ["SW16"])
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))

    def slope(table):
        w = table["SW16"].to_numpy(float)
        return float(np.polyfit(w, table["abBMD"].to_numpy(float), 1)[0])

    members_slope = slope(m.phenotypes)
    cfg = replace(
        FAST, pheno="abBMD", covariates=("SW16",), epsilon=epsilon, seed=4, ancestry_pcs=0
    )
    names = [
        mech.name
        for mech in calibrated_ledger(m, cfg.validate(m.n_samples), has_public=True).mechanisms
    ]
    assert SLOPES in names
    res = synthesize(m, cfg, pub)
    info = res.details["covariate_slopes"]
    got = slope(res.cohort.phenotypes)
    assert info["synthetic"][0] == pytest.approx(got)
    step = info["released"][0] - info["synthetic_model"][0]
    if math.isinf(epsilon):
        assert info["released"][0] == pytest.approx(members_slope, abs=1e-9)
        # the members' residual of the association path is their own least-squares one
        assert info["members_residual_step"][0] == pytest.approx(step)
    else:
        assert abs(info["released"][0] - members_slope) < 3.0 * info["noise_sd"][0]
        # shrunk by its noise (positive-part James-Stein)
        keep = max(0.0, 1.0 - info["noise_sd"][0] ** 2 / step**2)
        assert info["members_residual_step"][0] == pytest.approx(step * keep)
    # the draw's spread: a slope on a 0/1 covariate is a difference of two prevalences
    w = res.cohort.phenotypes["SW16"].to_numpy(float)
    p = float(res.cohort.phenotypes["abBMD"].mean())
    draw_sd = math.sqrt(p * (1 - p) * (1 / max(w.sum(), 1) + 1 / max((1 - w).sum(), 1)))
    assert abs(got - info["released"][0]) < 3.0 * draw_sd
    assert set(np.unique(res.cohort.phenotypes["abBMD"])) <= {0.0, 1.0}


def test_synthesize__binary_phenotype_release_bound_and_attenuation(members, public) -> None:
    """A 0/1 phenotype without covariates takes two standardised values: the release's
    phenotype bound is the larger magnitude (capped by effect_y_clip) and the attenuation is
    the slope of the clips between the two values (unit tests pin its value)."""
    m = analysis_subset(members[0], "abBMD")
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    res = synthesize(m, replace(FAST, pheno="abBMD", covariates=(), epsilon=4.0, seed=2), pub)
    d = res.details["association"]
    bound, kappa = d["effect_phenotype_bound"], d["phenotype_attenuation"]
    assert bound <= min(d["phenotype_bound"], FAST.association.effect_y_clip) + 1e-12
    assert 0.0 < kappa <= 1.0
    assert kappa != pytest.approx(A.phenotype_attenuation(bound))  # not the normal model
    # the synthetic rows are drawn to the prevalence the released location implies
    prev = res.details["phenotype_prevalence"]
    syn = res.cohort.phenotypes["abBMD"].to_numpy(dtype=float)
    assert prev["rows_sampled"] == FAST.phenotype_oversample * m.n_samples
    assert syn.sum() == round(prev["released"] * len(syn))
    assert prev["released"] == pytest.approx(m.phenotypes["abBMD"].mean(), abs=0.1)


@pytest.mark.parametrize("covariates", [(), ("SW16",)])
def test_synthesize__binary_phenotype_keeps_the_members_prevalence(
    members, public, covariates
) -> None:
    """Without formal privacy the released location is the members' exact mean, so the
    synthetic prevalence is theirs (to one row without covariates; with one, up to the
    strata shares of the synthetic rows), whatever the phenotype model sampled."""
    m = analysis_subset(members[0], "abBMD", list(covariates))
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    cfg = replace(FAST, pheno="abBMD", covariates=covariates, epsilon=math.inf, seed=3)
    res = synthesize(m, cfg, pub)
    p_m = float(m.phenotypes["abBMD"].mean())
    p_s = float(res.cohort.phenotypes["abBMD"].mean())
    assert res.details["phenotype_prevalence"]["released"] == pytest.approx(
        p_m, abs=1e-9 if not covariates else 0.02
    )
    assert p_s == pytest.approx(p_m, abs=1.0 / m.n_samples if not covariates else 0.02)
    assert res.cohort.n_samples == m.n_samples


@pytest.mark.parametrize("epsilon", [math.inf, 8.0])
def test_synthesize__continuous_phenotype_takes_the_released_location(
    members, public, epsilon
) -> None:
    """A continuous analysis phenotype's residuals take the released mean and scale: exactly
    the members' without formal privacy (up to the covariate shares of the synthetic rows),
    within three sd of the centre release's noise (from the ledger) at epsilon 8, where the
    DP phenotype model alone is 0.09 sd off. The schema is the public colony's (the toy's
    BMD is not on the CFW scale)."""
    m, _ = members
    schema = PhenoSchema.from_public_table(public.phenotypes, public.pheno_types)
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    phenotypes = replace(FAST.phenotypes, schema=schema)
    res = synthesize(m, replace(FAST, epsilon=epsilon, seed=3, phenotypes=phenotypes), pub)
    info = res.details["phenotype_location"]
    y_m = m.phenotypes["BMD"].to_numpy(dtype=float)
    y_s = res.cohort.phenotypes["BMD"].to_numpy(dtype=float)
    sd = y_m.std()
    assert info["applied"] and info["synthetic"]["mean"] == pytest.approx(y_s.mean())
    # the centre release's noise, in members' sd: 2 sigma s / n on the mean and sigma s c / n
    # on the second moment (s: its sensitivity, c: the clip), half that on the sd
    noise = noise_multiplier(res.ledger, CENTRE) or 0.0
    clip = FAST.association.y_clip
    mean_sd = 2.0 * noise * aph.centre_sensitivity(clip) / m.n_samples
    sd_sd = 0.5 * noise * aph.centre_sensitivity(clip) * clip / m.n_samples
    assert abs(y_s.mean() - y_m.mean()) < (0.02 + 3.0 * mean_sd) * sd
    assert y_s.std() == pytest.approx(sd, rel=0.02 + 3.0 * sd_sd)
    # the DP phenotype model alone was further off (0.09 sd at epsilon 8)
    assert abs(y_s.mean() - y_m.mean()) < abs(info["synthetic_model"]["mean"] - y_m.mean())


def test_synthesize__drops_regions_whose_release_is_mostly_noise(members, public) -> None:
    """The gate is post-processing of the released effect: the same seed selects the same
    regions, and with min_shrink above every region's shrink factor none is carried into the
    synthetic cohort (no implied lead); the ledger is unchanged."""
    m, _ = members
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    # the toy's loci score ~3.6 null sds under the clipped scores: a lower public threshold
    base = replace(FAST, epsilon=30.0, seed=5, association=replace(FAST.association, threshold=3))
    keep = synthesize(m, base, pub)
    kept = keep.details["association"]["regions"]
    assert kept, "the toy's planted loci should be selected at epsilon 30"
    top = max(r["shrink_factor"] for r in kept)
    gate = replace(base.association, min_shrink=min(0.999, top + 1e-6))
    drop = synthesize(m, replace(base, association=gate), pub)
    dropped = drop.details["association"]["regions"]
    assert [(r["chr"], r["start"]) for r in dropped] == [(r["chr"], r["start"]) for r in kept]
    assert all(r["dropped"] and r["implied_lead"] is None for r in dropped)
    assert drop.ledger.epsilon() == pytest.approx(keep.ledger.epsilon())
    # the released regions share the planned region releases' privacy loss (fewer than
    # planned: less noise each)
    k = base.association.max_regions
    assert 0 < len(kept) < k
    planned = keep.ledger.mechanism("region-association")
    assert keep.details["association"]["region_noise_multiplier"] == pytest.approx(
        planned.noise_multiplier * math.sqrt(len(kept) / k)
    )


def _lead_cross_moments(m, pub, res) -> list[tuple[dict, float]]:
    """Each implied lead of ``res`` with its synthetic cross-moment (:func:`_cross_moments`)."""
    leads = [r["implied_lead"] for r in res.details["association"]["regions"]]
    return _cross_moments(m, pub, res, [lead for lead in leads if lead is not None])


def _cross_moments(m, pub, res, targets: list[dict]) -> list[tuple[dict, float]]:
    """Each target (``{"snp": id, ...}``) with its synthetic cross-moment: the
    covariate-adjusted, standardised phenotype against the SNP's dosage standardised with the
    reference (public) allele frequency, over the rows a GWAS tests (phenotype and covariate
    present)."""
    from dpgenome.analysis_phenotype import CovariateAdjustment

    syn = res.cohort
    adj = CovariateAdjustment.fit(syn.phenotypes, syn.pheno_types, "BMD", ("SW16",))
    tested = adj.complete(syn.phenotypes, "BMD")
    y = adj.residual(syn.phenotypes, "BMD")[tested]
    y = (y - y.mean()) / y.std()
    out = []
    for target in targets:
        col = int(np.flatnonzero(m.variants["id"].astype(str) == target["snp"])[0])
        f = np.clip(np.nanmean(pub.dosages[:, col]) / 2, 0.005, 0.995)
        x = (syn.dosages[tested, col] - 2 * f) / math.sqrt(2 * f * (1 - f))
        out.append((target, float((x - x.mean()) @ y / tested.sum())))
    return out


def test_synthesize__pinned_snps_are_released_and_matched(members, public) -> None:
    """With ``pinned_snps`` on, kept components regions release their pins' cross-moments
    (``region-snps`` on the ledger, the composed epsilon within the target) and the synthetic
    cohort reproduces them; no pin is in LD above ``pinned_max_r2`` with the region's lead."""
    m, _ = members
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    # the toy's loci score ~3.6 null sds under the clipped scores: a lower public threshold
    a = replace(FAST.association, threshold=3, pinned_snps=3, pinned_min_log10_p=1.0)
    res = synthesize(m, replace(FAST, epsilon=30.0, seed=5, association=a), pub)
    led = res.ledger.to_dict()
    assert led["epsilon"] <= 30.0
    assert "region-snps" in {mech["name"] for mech in led["mechanisms"]}
    kept = [r for r in res.details["association"]["regions"] if not r["dropped"]]
    pins = [p for r in kept for p in r.get("pinned_snps", [])]
    assert kept and pins and all(len(r["pinned_snps"]) <= 3 for r in kept)
    for pin, cross in _cross_moments(m, pub, res, pins):
        assert cross == pytest.approx(pin["cross_moment"], abs=0.03)
    ids = pub.variants["id"].astype(str).to_numpy()
    for r in kept:
        if r["implied_lead"] is None or not r["pinned_snps"]:
            continue
        cols = [int(np.flatnonzero(ids == p["snp"])[0]) for p in r["pinned_snps"]]
        lead = int(np.flatnonzero(ids == r["implied_lead"]["snp"])[0])
        x = pub.dosages[:, [lead, *cols]].astype(float)
        x = np.nan_to_num(x - np.nanmean(x, axis=0))  # a missing call at the panel's mean
        r2 = np.corrcoef(x.T)[0, 1:] ** 2
        assert np.all(r2 <= a.pinned_max_r2 + 1e-9)


def test_synthesize__pools_the_implied_lead_with_the_threshold_test(members, public) -> None:
    """With ``lead_from_test`` the matched lead cross-moment under DP is the inverse-variance
    mean of the implied lead's and the threshold test's (post-processing: the ledger is the
    same without it), and the synthetic cohort reproduces it."""
    m, _ = members
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    a = replace(FAST.association, threshold=3, n_components=4, lead_from_test=True)
    cfg = replace(FAST, epsilon=30.0, seed=5, association=a)
    res = synthesize(m, cfg, pub)
    leads = _lead_cross_moments(m, pub, res)
    assert leads, "the toy's loci should give implied leads at epsilon 30"
    for lead, cross in leads:
        implied, test, pooled = (
            lead["implied_cross_moment"],
            lead["tested_cross_moment"],
            lead["cross_moment"],
        )
        assert test > 0.0  # a released best score: unsigned
        lo, hi = sorted((implied, math.copysign(test, implied)))
        assert lo - 1e-12 <= pooled <= hi + 1e-12
        assert cross == pytest.approx(pooled, rel=0.05)
    off = synthesize(m, replace(cfg, association=replace(a, lead_from_test=False)), pub)
    assert off.ledger.epsilon() == pytest.approx(res.ledger.epsilon())
    assert all(
        set(r["implied_lead"]) == {"snp", "cross_moment"}
        for r in off.details["association"]["regions"]
        if r["implied_lead"]
    )


def test_synthesize__selected_regions_take_public_panel_blocks(members, public) -> None:
    """region_genotypes="public": inside each selected region, every synthetic individual
    carries one public-panel individual's genotypes (the population's long-range LD, no
    privacy cost); outside, the window model's draws."""
    m, _ = members
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    res = synthesize(m, replace(FAST, epsilon=math.inf, seed=3), pub)
    regions = res.details["association"]["regions"]
    assert regions
    var = m.variants
    for r in regions:
        cols = np.flatnonzero(
            (var["chr"].astype(str) == r["chr"]) & var["pos"].between(r["start"], r["end"])
        )
        blocks = {row.tobytes() for row in pub.dosages[:, cols]}
        assert all(row.tobytes() in blocks for row in res.cohort.dosages[:, cols])
    model = synthesize(m, replace(FAST, epsilon=math.inf, seed=3, region_genotypes="model"), pub)
    assert not np.array_equal(model.cohort.dosages, res.cohort.dosages)


def test_synthesize__model_windows_follow_the_panel_and_the_selection_keeps_its_own(
    members, public
) -> None:
    """The genotype model's windows: ``window`` / ``context`` when it is pretrained on a
    panel, ``structure_window`` / ``structure_context`` when it is trained on the members
    (DP-SGD's noise grows with its parameters). The regions' noisy max runs over windows of
    ``association.window`` SNPs whatever the model's."""
    m, _ = members
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    per_chrom = m.variants["chr"].value_counts().to_numpy()
    cfg = replace(FAST, epsilon=math.inf, seed=3, window=32, context=32)
    wide = synthesize(m, cfg, pub)
    assert wide.details["windows"] == int(np.ceil(per_chrom / 32).sum())
    scratch = synthesize(m, replace(cfg, structure_window=8, structure_context=4))
    assert scratch.details["windows"] == int(np.ceil(per_chrom / 8).sum())
    narrow = synthesize(m, replace(cfg, window=8, context=4), pub)
    assert narrow.details["windows"] == int(np.ceil(per_chrom / 8).sum())

    selection = int(np.ceil(per_chrom / FAST.association.window).sum())
    for res in (wide, narrow):
        assert res.details["association"]["selection_windows"] == selection
    with pytest.raises(ConfigError, match="window"):
        replace(FAST.association, window=0)


def test_synthesize__reproduces_the_implied_lead_cross_moment(members, public) -> None:
    """The matching reproduces the implied lead's whole cross-moment: the synthetic
    covariate-adjusted, standardised phenotype against the lead's dosage standardised with
    the reference (public) allele frequency."""
    m, _ = members
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    # six components: 32 whitened components of a 200-individual panel overfit it, and the
    # released effect then matches no single SNP (no implied lead)
    # no exact SNP targets: the implied lead is what DP releases match
    cfg = replace(FAST, epsilon=math.inf, seed=3)
    a = replace(cfg.association, n_components_exact=6, exact_snps=0)
    res = synthesize(m, replace(cfg, association=a), pub)
    regions = res.details["association"]["regions"]
    assert regions and all(r["implied_lead"] is not None for r in regions)
    for lead, cross in _lead_cross_moments(m, pub, res):
        assert abs(lead["cross_moment"]) > 0.05
        assert cross == pytest.approx(lead["cross_moment"], rel=0.05)


@pytest.mark.parametrize("epsilon", [30.0, math.inf])
def test_synthesize__keeps_the_pairing_of_median_inflation(members, public, epsilon) -> None:
    """The phenotype-to-genotype pairing is drawn ``null_draws`` times and the one whose
    synthetic linear GWAS has the median lambda_GC is released: the released cohort's own
    GWAS gives that lambda. The draws are post-processing (the ledger is the same with one),
    and under DP each reproduces the released cross-moments (the residual stays small)."""
    m, _ = members
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    a = replace(FAST.association, threshold=3, null_draws=5)
    cfg = replace(FAST, epsilon=epsilon, seed=5, association=a)
    res = synthesize(m, cfg, pub)
    pairing = res.details["pairing"]
    lambdas, stray, chosen = (
        pairing["lambda_gc"],
        pairing["unexplained_hit"],
        pairing["chosen"],
    )
    assert pairing["draws"] == 5 and len(lambdas) == len(stray) == 5
    assert min(lambdas) < max(lambdas)  # the draws differ
    # the median draw among the draws without a 1e-8 hit the released targets do not explain
    assert chosen == A.typical_draw(lambdas, stray)
    gwas = linear_gwas(res.cohort, "BMD", ["SW16"])
    assert gwas.lambda_gc == pytest.approx(lambdas[chosen], rel=1e-4)
    var = m.variants
    inside = np.zeros(m.n_variants, dtype=bool)
    for r in res.details["association"]["regions"]:
        inside |= (
            (var["chr"].astype(str) == r["chr"]) & var["pos"].between(r["start"], r["end"])
        ).to_numpy()
    # every SNP outside the regions is unexplained (inside, one can be too)
    outside_hit = bool((gwas.table["log10_p"].to_numpy()[~inside] >= 8.0).any())
    assert stray[chosen] or not outside_hit
    assert res.details["association"]["regions"]
    if math.isfinite(epsilon):  # (the toy's 300 rows cannot match 32 exact components)
        assert res.details["association"]["matching_relative_residual"] < 0.1
    one = synthesize(m, replace(cfg, association=replace(a, null_draws=1)), pub)
    assert one.details["pairing"] == {"draws": 1}
    assert one.ledger.epsilon() == pytest.approx(res.ledger.epsilon())
    if math.isfinite(epsilon):  # residual directions held at zero: the targets still met
        held = synthesize(m, replace(cfg, association=replace(a, residual_directions=4)), pub)
        assert held.details["association"]["matching_relative_residual"] < 0.1
        assert held.ledger.epsilon() == pytest.approx(res.ledger.epsilon())
    with pytest.raises(ConfigError, match="residual_directions"):
        replace(a, residual_directions=-1)
    with pytest.raises(ConfigError, match="null_draws"):
        replace(a, null_draws=0)
    with pytest.raises(ConfigError, match="null_hit_log10_p"):
        replace(a, null_hit_log10_p=0.0)
    with pytest.raises(ConfigError, match="explained_log10_p"):
        replace(a, explained_log10_p=-1.0)


def test_synthesize__public_pretraining_is_shared_across_seeds_not_across_panels(
    members, public
) -> None:
    """The pretraining sees only the public panel: another release seed (an audit retraining,
    a sweep point) reuses it; a changed panel or pretraining setting trains anew."""
    m, _ = members
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    cfg = replace(FAST, epsilon=math.inf, association=replace(FAST.association, max_regions=0))
    first = synthesize(m, replace(cfg, seed=21, pretrain_steps=81), pub)
    again = synthesize(m, replace(cfg, seed=22, pretrain_steps=81), pub)
    assert first.details["pretrain"]["reused"] is False
    assert again.details["pretrain"]["reused"] is True
    assert again.details["pretrain"]["final_loss"] == first.details["pretrain"]["final_loss"]
    changed = replace(pub, dosages=pub.dosages.copy())
    changed.dosages[0, 0] = 2.0 - changed.dosages[0, 0]
    assert (
        synthesize(m, replace(cfg, seed=21, pretrain_steps=81), changed).details["pretrain"][
            "reused"
        ]
        is False
    )
    other = synthesize(m, replace(cfg, seed=21, pretrain_steps=81, pretrain_seed=1), pub)
    assert other.details["pretrain"]["reused"] is False


def test_synthesize__rejects_a_misaligned_public_panel(members, public) -> None:
    m, _ = members
    with pytest.raises(CohortError, match="same variants"):
        synthesize(m, replace(FAST, epsilon=1.0), public.take_variants(np.arange(10)))


def test_synthesize__rejects_members_outside_the_analysis_subset(members) -> None:
    """The synthetic analysis phenotype and covariates are never missing, which is faithful
    only to members that are the analysis subset."""
    m, _ = members
    pheno = m.phenotypes.copy()
    pheno.loc[3, "SW16"] = np.nan
    with pytest.raises(CohortError, match="analysis subset"):
        synthesize(replace(m, phenotypes=pheno), replace(FAST, epsilon=1.0))


def test_synthesize__refuses_a_phenotype_column_nobody_has(members) -> None:
    """A column with no observed value among the members is refused before any training (the
    model filled a few rows from its prior, and under DP charged bins for a range it could
    not know)."""
    m, _ = members
    pheno = m.phenotypes.copy()
    pheno["never_measured"] = np.nan
    with pytest.raises(CohortError, match="'never_measured' has no observed value"):
        synthesize(replace(m, phenotypes=pheno), replace(FAST, epsilon=1.0))


def test_synth_config__rejects_bad_values(members) -> None:
    m, _ = members
    with pytest.raises(ConfigError, match="epsilon"):
        synthesize(m, replace(FAST, epsilon=0.0))
    with pytest.raises(ConfigError, match="delta"):
        synthesize(m, replace(FAST, delta=1.5))


def _cli_synthesize(src, out, *options: str):
    """``dpgenome synthesize SRC --pheno BMD OPTIONS --out OUT`` through click."""
    args = ["synthesize", str(src), "--pheno", "BMD", *options, "--out", str(out)]
    return CliRunner().invoke(main, args)


def test_cli_synthesize__writes_cohort_in_input_format_and_ledger(tmp_path, members) -> None:
    cohort, _ = _toy(11, replace(TOY, n=120))
    src = tmp_path / "cohort"
    write_cohort(cohort, src, "parker")
    out = tmp_path / "synth"
    result = _cli_synthesize(
        src, out, "--covar", "SW16", "--epsilon", "4", "--seed", "2", "--n", "50"
    )
    assert result.exit_code == 0, result.output
    assert "no holdout" in result.output
    # each step announced on stderr, with its duration
    for step in ("calibrating the noise", "training the genotype structure model"):
        assert re.search(rf"  {step}[^\n]*: done in \d+\.\d s", result.stderr), result.stderr
    led = json.loads((out / "ledger.json").read_text())
    assert set(led) >= {"epsilon", "delta", "unit", "mechanisms"}
    assert led["epsilon"] <= 4.0
    syn = read_cohort(out)
    assert syn.n_samples == 50
    assert not set(map(str, syn.sample_ids)) & set(map(str, cohort.sample_ids))
    assert (out / "geno.txt").exists() or (out / "geno.txt.gz").exists()
    # beside a cohort that may be shared, no run time (it moves with the members' data)
    summary = json.loads((out / "synthesis.json").read_text())
    assert summary["timings_s"] is None and "structure" in summary["details"]
    assert '"seconds"' not in json.dumps(summary["details"])
    # nor how many members each QC step dropped (a count of missing values, say)
    assert summary["qc"] and {s["unit"] for s in summary["qc"]} == {"variants"}
    # charged to the lifetime ledger as a release of every individual of the input
    (row,) = LifetimeLedger().releases()
    assert row.status == "synthesized" and row.epsilon == pytest.approx(led["epsilon"])
    assert row.fingerprint == individuals_fingerprint(cohort.sample_ids)
    assert row.release_id == synthetic_release_id(row.fingerprint, syn.fingerprint())
    assert "charged to the lifetime ledger" in result.output
    total = LifetimeLedger().total(row.fingerprint, individuals=cohort.sample_ids)
    assert total.epsilon == pytest.approx(led["epsilon"], rel=1e-6)
    listing = CliRunner().invoke(main, ["ledger"])
    assert "synthesized" in listing.output, listing.output


def test_cli_synthesize__the_lifetime_ledger_is_checked_before_training(tmp_path) -> None:
    """A ledger that cannot be written stops the run before training, writing nothing; a run
    without formal privacy is not charged, and says so."""
    cohort, _ = _toy(12, replace(TOY, n=80))
    src = tmp_path / "cohort"
    write_cohort(cohort, src, "parker")
    (tmp_path / "ledger-is-a-dir").mkdir()
    args = ("--epsilon", "4", "--lifetime-db", str(tmp_path / "ledger-is-a-dir"))
    refused = _cli_synthesize(src, tmp_path / "o1", *args)
    assert refused.exit_code != 0 and "ledger-is-a-dir" in refused.output
    assert "training" not in refused.output and not (tmp_path / "o1").exists()
    free = _cli_synthesize(src, tmp_path / "o2", "--epsilon", "inf")
    assert free.exit_code == 0, free.output
    assert "not charged to the lifetime ledger" in free.output
    assert not LifetimeLedger().path.exists()


def _minor_first(cohort):
    """``cohort`` listed as plink 1.9 writes a ``.bim`` without --keep-allele-order: each
    SNP's minor allele among these individuals counted (A1)."""
    return swap_alleles(cohort, np.flatnonzero(cohort.alt_frequency() > 0.5))


def test_cli_synthesize__a_map_ordered_by_the_genotypes_is_refused_under_dp(tmp_path) -> None:
    """A synthetic map copying a minor-allele-first ``.bim`` would tell which allele was the
    minor one among the members, outside the ledger: refused under DP (exit 2, the .bed
    named, nothing written), allowed without formal privacy; ``--allele-order sorted``
    lists the synthetic map alphabetically, the same genotypes."""
    cohort, _ = _toy(11, replace(TOY, n=120))
    src = tmp_path / "cohort"
    write_cohort(_minor_first(cohort), src, "plink")
    refused = _cli_synthesize(src, tmp_path / "o", "--epsilon", "4", "--n", "50")
    assert refused.exit_code == 2, refused.output
    assert "cohort.bed" in refused.output and "minor allele among these" in refused.output
    assert "--allele-order sorted" in refused.output and not (tmp_path / "o").exists()
    out = tmp_path / "sorted"
    res = _cli_synthesize(src, out, "--epsilon", "4", "--n", "50", "--allele-order", "sorted")
    assert res.exit_code == 0, res.output
    syn = read_cohort(out)
    labels = syn.variants[["ref", "alt"]].astype(str)
    assert (labels["ref"] < labels["alt"]).all()
    summary = json.loads((out / "synthesis.json").read_text())
    assert summary["details"]["allele_order"] == "sorted"
    inf = _cli_synthesize(src, tmp_path / "inf", "--epsilon", "inf", "--n", "50")
    assert inf.exit_code == 0, inf.output
    kept, given = (read_cohort(d).variants.set_index("id") for d in (tmp_path / "inf", src))
    assert kept[["ref", "alt"]].equals(given.loc[kept.index, ["ref", "alt"]])


def test_cli_synthesize__with_a_panel_the_map_follows_the_panels_allele_order(
    tmp_path, public
) -> None:
    """``auto`` with a public panel: the synthetic map lists the alleles as the panel does,
    whatever order the input chose (here: minor allele first, which alone is refused).
    ``--ancestry-pcs`` puts the ancestry histogram on the ledger; without a panel, or not
    ``auto`` or a whole number, it is a usage error before anything is read."""
    cohort, _ = _toy(11, replace(TOY, n=120))
    src, pan, out = tmp_path / "cohort", tmp_path / "panel", tmp_path / "o"
    write_cohort(_minor_first(cohort), src, "plink")
    panel = public.take_variants(np.arange(public.n_variants))
    panel.variants[["ref", "alt"]] = cohort.variants[["ref", "alt"]].to_numpy()  # one strand
    write_cohort(panel, pan, "parker")
    alone = _cli_synthesize(src, tmp_path / "no", "--epsilon", "4", "--ancestry-pcs", "2")
    assert alone.exit_code == 2 and "--public-panel" in alone.output
    assert not (tmp_path / "no").exists()
    for bad in ("four", "-1", "2.5"):  # auto or a whole number >= 0
        res = _cli_synthesize(src, tmp_path / "no", "--epsilon", "4", "--ancestry-pcs", bad)
        assert res.exit_code == 2 and "expected 'auto' or a whole number >= 0" in res.output
    # the cohort given as its own public panel: its genotypes would enter unprotected
    res = _cli_synthesize(src, tmp_path / "no", "--epsilon", "4", "--public-panel", str(src))
    assert res.exit_code == 2 and "120 of the public panel's 120 individuals are" in res.output
    assert not (tmp_path / "no").exists()
    res = _cli_synthesize(
        src, out, "--epsilon", "4", "--n", "50", "--public-panel", str(pan), "--ancestry-pcs", "2"
    )
    assert res.exit_code == 0, res.output
    ledger = json.loads((out / "ledger.json").read_text())
    (anc,) = [m for m in ledger["mechanisms"] if m["name"] == "ancestry"]
    assert anc["kind"] == "gaussian" and anc["count"] == 1
    syn, panel = read_cohort(out), read_cohort(pan)
    ids = syn.variants["id"].astype(str)
    expect = panel.variants.set_index(panel.variants["id"].astype(str)).loc[ids, ["ref", "alt"]]
    np.testing.assert_array_equal(
        syn.variants[["ref", "alt"]].astype(str).to_numpy(), expect.astype(str).to_numpy()
    )
    assert json.loads((out / "synthesis.json").read_text())["details"]["allele_order"] == "panel"


def test_cli_synthesize__unknown_phenotype_is_a_user_error(tmp_path) -> None:
    cohort, _ = _toy(1, replace(TOY, n=40))
    src = tmp_path / "c"
    write_cohort(cohort, src, "parker")
    result = CliRunner().invoke(
        main,
        [
            "synthesize",
            str(src),
            "--pheno",
            "nope",
            "--epsilon",
            "inf",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2
    assert "nope" in result.output


def test_cli_synthesize__warns_of_phenotype_values_trained_as_missing(tmp_path, caplog) -> None:
    """Rounds outside the public CFW schema's were trained on as missing, unannounced: the
    command warns, naming the column, the count among the training samples and the reason
    (no value, no sample id), and trains as before; the clean columns give no warning."""
    cohort, _ = _toy(1, replace(TOY, n=40))
    rows = cohort.phenotypes.index[cohort.phenotypes["round"].notna()][::4]
    cohort.phenotypes.loc[rows, "round"] = "SW99"
    src = tmp_path / "c"
    write_cohort(cohort, src, "parker")
    real, report = qc(read_cohort(src))
    n_bad = int((analysis_subset(real, "BMD", [], report).phenotypes["round"] == "SW99").sum())
    assert n_bad > 0
    with caplog.at_level(logging.WARNING):
        result = _cli_synthesize(src, tmp_path / "o", "--epsilon", "inf")
    assert result.exit_code == 0, result.output
    warned = [r.getMessage() for r in caplog.records if "phenotype column" in r.getMessage()]
    assert warned == [
        f"phenotype column 'round': {n_bad} observed value(s) have a level not in the schema "
        "(type from public CFW table): they are trained on as missing, so the synthetic "
        "column's missing share is inflated; declare the column's levels in a --pheno-schema "
        "file or recode the values"
    ]
    assert "SW99" not in caplog.text
    assert not [i for i in map(str, cohort.sample_ids) if i in caplog.text]
    # without formal privacy the run times are kept (under DP they stay in the log)
    assert "structure" in json.loads((tmp_path / "o" / "synthesis.json").read_text())["timings_s"]


def _gwas_corr(cohort, ids: list[str]) -> np.ndarray:
    """corr(dosage, covariate-adjusted phenotype) of the SNPs ``ids`` (what the GWAS tests)."""
    t = linear_gwas(cohort, "BMD", ["SW16"]).table.set_index("id").loc[ids]
    t_stat = np.asarray(t["beta"] / t["se"], float)
    df = cohort.n_samples - 3
    return t_stat / np.sqrt(df + t_stat**2)


def test_synthesize__no_formal_privacy_reproduces_the_most_associated_snps() -> None:
    """Without formal privacy the exact cross-moments of each region's most associated SNPs
    are matched: their synthetic GWAS correlations are the members' (the components alone
    carry a SNP's association only as far as the SNP lies in their span). The public panel is
    other mice of the members' colony (its LD is theirs: the region genotypes are its)."""
    c, _ = _toy(13, replace(TOY, n=560))
    c, report = qc(c)
    c = analysis_subset(c, "BMD", ["SW16"], report)
    first = np.arange(c.n_samples) < 300
    m, pub = c.take_samples(first), c.take_samples(~first)
    res = synthesize(m, replace(FAST, epsilon=math.inf, seed=3), pub)
    ids = [i for r in res.details["association"]["regions"] for i in r["exact_snps"]]
    assert 10 <= len(ids) == len(set(ids))
    real, syn = _gwas_corr(m, ids), _gwas_corr(res.cohort, ids)
    assert np.abs(real).max() > 0.3
    err = np.abs(syn - real)
    assert err.max() < 0.06
    # and more closely than without them (components and the implied lead only)
    a = replace(FAST.association, exact_snps=0)
    base = synthesize(m, replace(FAST, epsilon=math.inf, seed=3, association=a), pub)
    assert err.mean() < 0.8 * np.abs(_gwas_corr(base.cohort, ids) - real).mean()


def test_synthesize__without_a_panel_releases_lead_snps(members) -> None:
    """No public panel (under DP): each selected region is one lead SNP, chosen by the noisy
    max over single SNPs, whose released cross-moment and allele frequency
    (``release_lead``) the synthetic cohort carries: the column is redrawn at the released
    frequency and paired to the released correlation. The ledger is the components
    release's (the same Gaussian step, the same noisy max and test)."""
    from dpgenome.analysis_phenotype import CovariateAdjustment

    m, truth = members
    a = replace(FAST.association, threshold=3, no_panel_release="lead")
    cfg = replace(FAST, epsilon=30.0, seed=5, association=a)
    res = synthesize(m, cfg)
    d = res.details["association"]
    assert d["release"] == "lead SNP" and d["reference"] == "DP synthetic genotypes"
    kept = [r for r in d["regions"] if not r["dropped"]]
    assert kept, "the toy's planted loci should be selected at epsilon 30"
    syn = res.cohort
    adj = CovariateAdjustment.fit(syn.phenotypes, syn.pheno_types, "BMD", ("SW16",))
    tested = adj.complete(syn.phenotypes, "BMD")
    y = adj.residual(syn.phenotypes, "BMD")[tested]
    ids = m.variants["id"].astype(str)
    pos = m.variants["pos"].to_numpy()
    for r in kept:
        assert r["n_snps"] == 1 and r["start"] == r["end"] and r["release"] == "lead SNP"
        col = int(np.flatnonzero(ids == r["implied_lead"]["snp"])[0])
        # within the flank of a planted locus on its chromosome
        near = [c for c in truth.causal_index if m.variants["chr"].iloc[c] == r["chr"]]
        assert near and min(abs(pos[c] - pos[col]) for c in near) <= a.flank_bp
        f = r["released_frequency"]
        members_f = float(np.nanmean(m.dosages[:, col]) / 2)
        assert f == pytest.approx(members_f, abs=0.03)
        x = syn.dosages[:, col].astype(float)
        assert x.mean() / 2 == pytest.approx(f, abs=4 * math.sqrt(f * (1 - f) / (2 * len(x))))
        synthetic_r = float(np.corrcoef(x[tested], y)[0, 1])
        assert synthetic_r == pytest.approx(r["implied_lead"]["cross_moment"], abs=0.03)
        assert abs(synthetic_r) > 0.2
    # shrink_power scales a lead release as it scales a components release's effect: by the
    # shrink factor to that power (the same seed, so the same noise draw and regions)
    full = synthesize(m, replace(cfg, association=replace(a, shrink_power=1.0)))
    regions = full.details["association"]["regions"]
    assert [r["dropped"] for r in regions] == [r["dropped"] for r in d["regions"]]
    for r0, r1 in zip(d["regions"], regions, strict=True):
        if not r0["dropped"]:
            assert 0.8 <= r0["shrink_factor"] < 1.0
            lead0, lead1 = r0["implied_lead"]["cross_moment"], r1["implied_lead"]["cross_moment"]
            assert lead1 == pytest.approx(lead0 * r0["shrink_factor"], rel=1e-9)
    # the ledger says the lead-SNP query has its own sensitivity (the same multiplier)
    (entry,) = [e for e in res.ledger.to_dict()["mechanisms"] if e["name"] == "region-association"]
    assert "lead-SNP release" in entry["sensitivity_note"]
    components = synthesize(m, replace(cfg, association=replace(a, no_panel_release="components")))
    assert components.details["association"]["release"] == "components"
    # the same accounting; a components-only release's note is the plan's rule alone
    noted, plain = res.ledger.to_dict(), components.ledger.to_dict()
    (rule,) = [e for e in plain["mechanisms"] if e["name"] == "region-association"]
    assert "sqrt(r / " in rule["sensitivity_note"] and "lead-SNP" not in rule["sensitivity_note"]
    assert entry["sensitivity_note"].startswith(rule["sensitivity_note"])
    for e in (*noted["mechanisms"], *plain["mechanisms"]):
        e.pop("sensitivity_note", None)
    assert plain == noted
    # "auto" chooses per region from the DP basis (post-processing): the same ledger, and a
    # region is one SNP exactly when released as a lead SNP
    auto = synthesize(m, replace(cfg, association=replace(a, no_panel_release="auto")))
    assert auto.ledger.to_dict() == res.ledger.to_dict()
    for r in auto.details["association"]["regions"]:
        assert (r["release"] == "lead SNP") == (r["n_snps"] == 1)


def test_synthesize__outputs_no_uncharged_member_statistics(members) -> None:
    """Under DP nothing computed from the members outside a ledger mechanism reaches the
    output: the synthetic map carries no per-SNP quality (an imputation INFO / R2 score is
    computed from the cohort's own dosages), and the structure run's details hold no loss or
    clipped share of the members' un-noised batches."""
    m, _ = members
    assert m.variants["quality"].notna().any()  # the toy map has a quality column
    # a member called like the first synthetic id: under DP the ids do not avoid it (that
    # would tell the id is taken); without formal privacy they do
    m = replace(m, samples=m.samples.assign(id=["SYN000001", *m.samples["id"].iloc[1:]]))
    res = synthesize(m, replace(FAST, epsilon=4.0, seed=1))
    assert res.cohort.sample_ids[0] == "SYN000001"
    assert res.cohort.variants["quality"].isna().all()
    cols = ["id", "chr", "pos", "ref", "alt"]
    assert res.cohort.variants[cols].equals(m.variants[cols])
    s = res.details["structure"]
    assert s["noise_multiplier"] > 0
    assert "final_loss" not in s and "clipped_fraction" not in s
    # without formal privacy the diagnostics stay (nothing is claimed)
    exact = synthesize(m, replace(FAST, epsilon=math.inf, seed=1))
    assert exact.details["structure"]["final_loss"] is not None
    assert "SYN000001" not in set(exact.cohort.sample_ids)


def test_mechanism_seeds__under_dp_not_a_function_of_the_published_seed(monkeypatch) -> None:
    """results.json and the manifest publish the configuration's seed: under DP the noise
    must come from elsewhere (fresh OS entropy by default), or anyone could regenerate and
    subtract it. Without formal privacy (nothing noised) the seed stays reproducible."""
    public = [int(v) for v in np.random.SeedSequence(5).generate_state(8)]
    dp = replace(FAST, epsilon=4.0, seed=5, secure_mode=False)  # numpy's seeded samplers
    monkeypatch.delenv(NOISE_SEED_ENV, raising=False)
    first, source = mechanism_seeds(dp)
    second, _ = mechanism_seeds(dp)
    assert first != second and public not in (first, second)
    assert "fresh OS entropy" in source
    # the default, secure mode: every mechanism draws from the OS CSPRNG itself
    assert "secure mode" in mechanism_seeds(replace(dp, secure_mode=None))[1]
    assert mechanism_seeds(replace(dp, epsilon=math.inf))[0] == public
    monkeypatch.setenv(NOISE_SEED_ENV, "seed")  # the test suite's setting (tests/conftest.py)
    assert mechanism_seeds(dp)[0] == public
    monkeypatch.setenv(NOISE_SEED_ENV, "123")
    assert mechanism_seeds(dp)[0] == mechanism_seeds(dp)[0] != public
    monkeypatch.setenv(NOISE_SEED_ENV, "abc")
    with pytest.raises(ConfigError, match=NOISE_SEED_ENV):
        mechanism_seeds(dp)


def test_synthesize__secure_mode_samples_every_mechanism_exactly(monkeypatch) -> None:
    """Secure mode: no Gaussian, Laplace or exponential mechanism (DP bins, the phenotype's
    location, covariate slopes, region selection and test, effects) draws from numpy's
    floating-point samplers; each kind goes through the exact ones, and a fixed noise seed
    fixes nothing."""
    cohort, _ = toy_cohort(11, TOY)  # with bw: a continuous column outside the schema
    cohort, report = qc(cohort)
    m = analysis_subset(cohort, "BMD", ["SW16"], report)

    def refuse(*args, **kwargs):
        raise AssertionError("a floating-point sampler in secure mode")

    calls: dict[str, int] = {}

    def counted(name):
        original = getattr(SecureNoise, name)

        def wrapper(self, *args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return original(self, *args, **kwargs)

        return wrapper

    for name in ("gaussian", "laplace", "exponential"):
        monkeypatch.setattr(GeneratorNoise, name, refuse)
        monkeypatch.setattr(SecureNoise, name, counted(name))
    res = synthesize(m, replace(FAST, epsilon=4.0, seed=1, secure_mode=True))
    assert set(calls) == {"gaussian", "laplace", "exponential"}
    assert any(x.name == "phenotype-bins" for x in res.ledger.mechanisms)
    assert "secure mode" in res.details["noise_source"]
    assert not [a for a in res.ledger.assumptions if NOISE_SEED_ENV in a]


def test_synthesize__fixed_noise_and_secure_mode_are_stated_in_the_ledger(
    members, monkeypatch
) -> None:
    """A release whose noise the test setting fixed says so in its ledger (which
    ``publish`` ships), not only in results.json: with ``seed`` it has no privacy at all,
    with an integer only against whoever does not know it (the value is not written). Secure
    mode states what it covers (the DP-SGD runs), not more."""
    m, _ = members
    res = synthesize(m, replace(FAST, epsilon=4.0, seed=1))
    (fixed,) = [a for a in res.ledger.assumptions if NOISE_SEED_ENV in a]
    assert "no privacy at all" in fixed and fixed in res.ledger.to_dict()["assumptions"]
    assert SECURE_MODE_SCOPE not in res.ledger.assumptions
    assert FLOAT_NOISE_CAVEAT in res.ledger.assumptions
    secure = synthesize(m, replace(FAST, epsilon=4.0, seed=1, secure_mode=True))
    assert secure.ledger.secure_mode and SECURE_MODE_SCOPE in secure.ledger.assumptions
    assert FLOAT_NOISE_CAVEAT not in secure.ledger.assumptions
    monkeypatch.setenv(NOISE_SEED_ENV, "4242")
    secret = fixed_noise_assumption(replace(FAST, epsilon=4.0))
    assert secret is not None and "4242" not in secret and "does not know" in secret
    assert fixed_noise_assumption(replace(FAST, epsilon=math.inf)) is None
    monkeypatch.delenv(NOISE_SEED_ENV)
    assert fixed_noise_assumption(replace(FAST, epsilon=4.0)) is None


def test_synthesize__released_noise_cannot_be_regenerated_from_the_seed(
    members, public, monkeypatch
) -> None:
    """The attack the default prevents: with the published seed, the phenotype-centre
    release's Gaussian noise is regenerated and subtracted, which gave the members' exact
    sum (error 0.0 for a noise sd of 10.6) when the noise was seeded from the configuration."""
    m, _ = members
    pub = public.take_variants(np.flatnonzero(public.variants["id"].isin(m.variants["id"])))
    exact: dict[str, float] = {}
    normalise = aph.normalise_phenotype

    def spy(y_std, clip, sigma, rng):
        exact.update(sum=float((y_std / 2.0).sum()), sd=sigma * aph.centre_sensitivity(clip))
        return normalise(y_std, clip, sigma, rng)

    monkeypatch.setattr(aph, "normalise_phenotype", spy)
    monkeypatch.delenv(NOISE_SEED_ENV, raising=False)
    cfg = replace(FAST, epsilon=4.0, seed=1, secure_mode=False)  # numpy's seeded samplers
    res = synthesize(m, cfg, pub)
    assert "fresh OS entropy" in res.details["noise_source"]
    assert not [a for a in res.ledger.assumptions if NOISE_SEED_ENV in a]
    released = m.n_samples * res.details["association"]["phenotype_location"]["mean"] / 2.0
    seeds = [int(v) for v in np.random.SeedSequence(cfg.seed).generate_state(8)]
    guess = np.random.default_rng(seeds[5]).normal(scale=exact["sd"], size=2)[0]
    assert abs(released - guess - exact["sum"]) > 1e-6 * exact["sd"]


def test_cli_synthesize__refuses_to_write_over_the_input_cohort_or_a_non_empty_dir(
    tmp_path,
) -> None:
    """`synthesize COHORT --out COHORT` used to replace the real cohort with the synthetic one
    (exit 0, after training); any non-empty --out was silently replaced too."""
    cohort, _ = _toy(1, replace(TOY, n=40))
    src = tmp_path / "c"
    write_cohort(cohort, src, "parker")
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    base = ["synthesize", str(src), "--pheno", "BMD", "--epsilon", "inf"]
    same = CliRunner().invoke(main, [*base, "--out", str(src)])
    assert same.exit_code == 2, same.output
    assert "input cohort" in same.output and "Traceback" not in same.output
    parent = CliRunner().invoke(main, [*base, "--out", str(tmp_path)])
    assert parent.exit_code == 2, parent.output
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    other = tmp_path / "taken"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    taken = CliRunner().invoke(main, [*base, "--out", str(other)])
    assert taken.exit_code == 2, taken.output
    assert "not empty" in taken.output and str(other) in taken.output
    assert (other / "notes.txt").read_text() == "keep me"
    # an earlier synthesize output is replaced whole (re-running into the same --out)
    out = tmp_path / "syn"
    for _ in range(2):
        again = CliRunner().invoke(main, [*base, "--out", str(out)])
        assert again.exit_code == 0, again.output
    assert (out / "ledger.json").is_file() and not list(tmp_path.glob(".syn.*"))


@pytest.mark.parametrize("word", ["abc", "1e", ""])
def test_cli_synthesize__non_numeric_epsilon_is_a_user_error(tmp_path, word) -> None:
    cohort, _ = _toy(1, replace(TOY, n=40))
    src = tmp_path / "c"
    write_cohort(cohort, src, "parker")
    result = CliRunner().invoke(
        main,
        ["synthesize", str(src), "--pheno", "BMD", "--epsilon", word, "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 2, result.output
    assert "epsilon must be a positive number or 'inf'" in result.output
    assert not (tmp_path / "o").exists()


def test_cli_synthesize__holdout_ids_are_left_out_and_audit_checks_it(tmp_path, caplog) -> None:
    """A newcomer's review (stop 48): `synthesize` trained on every sample, so `audit
    --holdout` compared members with members and read "no leak". `synthesize --holdout`
    leaves the listed ids out and records how many; `audit` refuses a synthetic cohort that
    held none out, and warns when the counts differ."""
    cohort, _ = _toy(11, replace(TOY, n=120))
    src = tmp_path / "cohort"
    write_cohort(cohort, src, "parker")
    ids = [str(i) for i in cohort.sample_ids[::6]]  # 20 ids
    (tmp_path / "holdout.txt").write_text("\n".join(ids) + "\n")
    out = tmp_path / "synth"
    result = _cli_synthesize(
        src, out, "--covar", "SW16", "--epsilon", "inf", "--holdout", str(tmp_path / "holdout.txt")
    )
    assert result.exit_code == 0, result.output
    assert f"the 20 ids of {tmp_path / 'holdout.txt'} held out" in result.output
    summary = json.loads((out / "synthesis.json").read_text())
    observed = cohort.phenotypes[["BMD", "SW16"]].notna().all(axis=1).to_numpy()
    held = np.isin(cohort.sample_ids.astype(str), ids)
    assert summary["holdout_ids_listed"] == 20
    assert summary["training_samples"] == int((observed & ~held).sum()) < int(observed.sum())

    def audit(listing: str) -> Result:
        args = ["audit", str(src), "--synthetic", str(out), "--holdout", str(tmp_path / listing)]
        return CliRunner().invoke(main, [*args, "--bootstrap", "20", "--out", str(tmp_path / "a")])

    assert audit("holdout.txt").exit_code == 0
    (tmp_path / "fewer.txt").write_text("\n".join(ids[:10]) + "\n")
    caplog.clear()
    assert audit("fewer.txt").exit_code == 0
    assert "the synthetic cohort held out 20 ids" in caplog.text
    (out / "synthesis.json").write_text(json.dumps(summary | {"holdout_ids_listed": 0}))
    refused = audit("holdout.txt")
    assert refused.exit_code == 2
    assert "was trained on every QC-passing sample of its cohort" in refused.output


@pytest.mark.parametrize("name", ["genotype-structure", "phenotypes"])
def test_synthesize__a_dp_sgd_run_unlike_its_ledger_is_refused(members, monkeypatch, name) -> None:
    """A test-suite review (stop 48): halving the noise a DP-SGD run was given left every test
    green, as the details recorded the ledger's value. The runs are now read back from Opacus
    (its accountant's record, its optimizer's clip) and checked against the ledger's entry."""
    import dpgenome.synthesize as synth

    m, _ = members
    assert name in (synth.STRUCTURE, synth.PHENOTYPES)
    real = synth.noise_multiplier

    def halved(ledger: synth.Ledger, which: str) -> float | None:
        sigma = real(ledger, which)
        return None if sigma is None else sigma / 2 if which == name else sigma

    monkeypatch.setattr(synth, "noise_multiplier", halved)
    with pytest.raises(RuntimeError, match=f"DP-SGD run '{name}' ran with noise_multiplier"):
        synthesize(m, replace(FAST, epsilon=3.0))
    monkeypatch.setattr(synth, "noise_multiplier", real)
    res = synthesize(m, replace(FAST, epsilon=3.0))
    ledger = {e["name"]: e for e in res.ledger.to_dict()["mechanisms"]}
    s = res.details["structure"]
    assert s["noise_multiplier"] == ledger["genotype-structure"]["noise_multiplier"]
    assert s["steps"] == ledger["genotype-structure"]["steps"]


def test_substream__tags_from_one_never_repeat_the_seeds_own_stream() -> None:
    """numpy drops trailing zero words of a SeedSequence's entropy: ``[s, 0]`` draws what
    ``s`` draws, so a tag 0 would give two mechanisms the same noise (not in secure mode)."""
    from dpgenome.synthesize import substream

    seed = 987654321
    first = np.random.default_rng(seed).random(4)
    assert np.array_equal(np.random.default_rng((seed, 0)).random(4), first)  # numpy's rule
    draws = [substream(seed, tag).random(4) for tag in range(1, 6)]
    assert not any(np.array_equal(d, first) for d in draws)
    assert len({d.tobytes() for d in draws}) == 5
    with pytest.raises(ValueError, match="tags start at 1"):
        substream(seed, 0)


def test_streams__each_stream_handed_out_once() -> None:
    """Two releases given one stream draw the same noise (outside secure mode), and the
    ledger composes them as independent: the pinned SNPs and the missing calls once shared
    ``substream(seeds[5], 5)``. A second request for a stream is an error naming both uses;
    a seed handed out whole and its own stream are one root."""
    from dpgenome.synthesize import Streams, substream

    seeds = [11, 12, 13, 14, 15, 16, 17, 18]
    streams = Streams(seeds)
    assert np.array_equal(
        streams.stream(5, "region noise").random(3), np.random.default_rng(16).random(3)
    )
    assert np.array_equal(streams.stream(5, "pins", 5).random(3), substream(16, 5).random(3))
    streams.stream(5, "missing calls", 6)
    streams.stream(4, "ancestry draws", 5)  # the same tag of another seed: another stream
    with pytest.raises(RuntimeError, match=r"\(5, 5\) handed out twice: to pins and to other"):
        streams.stream(5, "other", 5)
    assert streams.seed(6, "pairing") == 17
    with pytest.raises(RuntimeError, match="to pairing and to again"):
        streams.stream(6, "again")


def test_synth_config__pretrain_input_dropout_in_range_and_keys_the_pretraining() -> None:
    from dpgenome.synthesize import _pretrain_key

    with pytest.raises(ConfigError, match="pretrain_input_dropout"):
        replace(FAST, pretrain_input_dropout=0.5).validate(100)
    panel, _ = _toy(12, replace(TOY, n=40))
    cfg = replace(FAST, ancestry_pcs=0)
    assert _pretrain_key(panel, cfg) != _pretrain_key(
        panel, replace(cfg, pretrain_input_dropout=0.02)
    )
