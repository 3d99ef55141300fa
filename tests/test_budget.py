"""The release's privacy budget (:mod:`dpgenome.budget`): the plan of mechanisms, their
calibration to the target, and the noise each region release reads back."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dpgenome.accountant import Ledger
from dpgenome.association import pinned_noise_z
from dpgenome.budget import calibrated_ledger, noise_multiplier, plan, region_sigma
from dpgenome.calibrate import PlannedPure
from dpgenome.cohort import analysis_subset, qc
from dpgenome.errors import ConfigError
from dpgenome.phenotypes import planned_dp_sgd
from dpgenome.synthconfig import SynthConfig
from dpgenome.testing import ToyConfig, toy_cohort

#: the synthesizer's defaults, with a DP fine-tune so that the ledger holds a genotype DP-SGD
#: run too
FAST = SynthConfig(pheno="BMD", covariates=("SW16",), finetune_steps=5)


@pytest.fixture(scope="module")
def members():
    """A toy cohort's analysis mice (the ledger reads their count and phenotype schema only;
    ``bw``, outside the public CFW schema, dropped as in tests/test_synthesize.py)."""
    cohort, _ = toy_cohort(11, ToyConfig(n=300, n_chrom=2, snps_per_chrom=150))
    cohort.phenotypes = cohort.phenotypes.drop(columns=["bw"])
    cohort.pheno_types.pop("bw")
    cohort, report = qc(cohort)
    return analysis_subset(cohort, "BMD", ["SW16"], report)


@pytest.mark.parametrize(("eps", "select", "test"), [(3.0, 0.36, 0.225), (12.0, 1.0, 0.5)])
def test_plan__selection_rounds_spend_a_share_of_epsilon_up_to_a_cap(eps, select, test) -> None:
    """One noisy max and one Laplace threshold query per round, each its own ledger entry
    (composed tightly with the rest), at ``fraction * epsilon`` but never above the cap."""
    cfg = SynthConfig(pheno="y", epsilon=eps, ancestry_pcs=0).validate(1_000)
    steps = plan(cfg, 1_000, has_public=True, phenotype_plan=planned_dp_sgd(cfg.phenotypes, 1_000))
    pure = {p.name: p for p in steps if isinstance(p, PlannedPure)}
    k = cfg.association.max_regions
    sel, tst = pure["region-selection"], pure["region-test"]
    assert (sel.epsilon, sel.count, sel.kind) == (pytest.approx(select), k, "exponential")
    assert (tst.epsilon, tst.count, tst.kind) == (pytest.approx(test), k, "laplace")


@pytest.mark.parametrize("released", [1, 2, 3])
def test_region_sigma__fewer_regions_spend_the_planned_privacy_loss(released) -> None:
    """The regions the tests let through share the ledger's region releases: less noise each,
    the same privacy loss distribution (both accountants, 3 planned at multiplier 4)."""
    planned, sigma = 3, 4.0
    r_sigma = region_sigma(sigma, released, planned)
    assert r_sigma is not None and r_sigma <= sigma
    eps = {}
    for count, z in ((planned, sigma), (released, r_sigma)):
        ledger = Ledger(1e-5)
        ledger.add_gaussian("region-association", z, count=count)
        eps[count] = ledger.accountants()
    for name in eps[planned]:
        assert eps[released][name] == pytest.approx(eps[planned][name], rel=1e-3), name
    assert region_sigma(None, 2, 3) is None  # no formal privacy: nothing is noised
    assert region_sigma(sigma, 0, 3) == sigma  # nothing released
    with pytest.raises(ConfigError, match="4 regions released"):
        region_sigma(sigma, 4, 3)


def test_calibrated_ledger__plans_pinned_snps_only_where_their_noise_is_small(members) -> None:
    """``region-snps`` is on the ledger (sensitivity sqrt(k) x per-SNP clip x phenotype
    bound) when a pinned SNP's noise is at most ``pinned_max_noise_z`` z units; otherwise
    the ledger is the one without it, to the digit."""
    m = members
    a = replace(FAST.association, pinned_snps=4)
    for eps, held in [(3.0, False), (400.0, True)]:
        cfg = replace(FAST, epsilon=eps, ancestry_pcs=0, association=a).validate(m.n_samples)
        names = {x.name: x for x in calibrated_ledger(m, cfg, has_public=True).mechanisms}
        assert ("region-snps" in names) is held
        without = calibrated_ledger(
            m, replace(cfg, association=replace(a, pinned_snps=0)), has_public=True
        )
        if held:
            pins = names["region-snps"]
            assert pins.sensitivity == pytest.approx(2.0 * a.z_clip_per_component * a.effect_y_clip)
            z = pinned_noise_z(pins.noise_multiplier, a, a.effect_y_clip, m.n_samples)
            assert z <= a.pinned_max_noise_z
            assert names["region-association"].noise_multiplier > noise_multiplier(
                without, "region-association"
            )
        else:
            assert [x.name for x in without.mechanisms] == list(names)
            assert names["region-association"].noise_multiplier == noise_multiplier(
                without, "region-association"
            )
