"""The public panel's missing calls, filled from its nearest individuals."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dpgenome.cohort import align_panel, analysis_subset, qc
from dpgenome.impute import WINDOW, _windows, impute_nearest
from dpgenome.simulate import SimConfig, simulate
from dpgenome.synthconfig import SynthConfig
from dpgenome.synthesize import synthesize


@pytest.fixture(scope="module")
def panel():
    return simulate(SimConfig.small(seed=5, n=20, n_public=400)).public


def test_impute_nearest__recovers_masked_calls_far_better_than_the_mean(panel) -> None:
    truth = panel.dosages
    mask = np.random.default_rng(0).random(truth.shape) < 0.02
    x = truth.copy()
    x[mask] = np.nan
    out = impute_nearest(x, panel.variants["chr"])
    assert np.isnan(x).sum() == mask.sum()  # the input is not modified
    assert not np.isnan(out.dosages).any() and out.filled == mask.sum()
    assert np.array_equal(out.dosages[~mask], truth[~mask])  # called values kept
    right = np.rint(out.dosages[mask]) == np.rint(truth[mask])
    with np.errstate(invalid="ignore"):
        mean = np.rint(np.nanmean(x, axis=0))[np.nonzero(mask)[1]]
    by_mean = mean == np.rint(truth[mask])
    # a closed colony shares long haplotypes: the nearest individual has the call
    assert right.mean() > 0.95 and right.mean() > by_mean.mean() + 0.2
    assert out.from_mean < 0.01 * out.filled
    complete = impute_nearest(truth, panel.variants["chr"])
    assert complete.filled == 0 and complete.dosages is not None


def test_impute_nearest__the_nearest_individual_that_called_it_else_the_snps_mean() -> None:
    x = np.array(
        [[0, 1, 2, 0], [0, 1, 2, np.nan], [2, 1, 0, 2], [2, 1, 0, 2], [2, 1, 0, 2]],
        dtype=np.float32,
    )
    out = impute_nearest(x, np.array(["1"] * 4))
    # row 1 is row 0 on the SNPs both called: row 0's 0, not the SNP's rounded mean (2)
    assert out.dosages[1, 3] == 0 and out.from_mean == 0
    alone = np.array([[np.nan, 1], [np.nan, 1]], dtype=np.float32)
    out = impute_nearest(alone, np.array(["1", "1"]))
    assert out.dosages[:, 0].tolist() == [0, 0] and out.from_mean == 2  # nobody called it
    one = impute_nearest(np.array([[np.nan, 1, 2]], dtype=np.float32), np.array(["1"] * 3))
    assert one.dosages.tolist() == [[0, 1, 2]] and one.from_mean == 1  # a panel of one


def test_windows__never_cross_a_chromosome_and_merge_a_short_tail() -> None:
    chroms = np.array(["1"] * 150 + ["2"] * 40)
    windows = _windows(chroms, WINDOW)
    assert windows == [(0, 64), (64, 150), (150, 190)]


def test_synthesize__a_panel_missing_calls_is_imputed_first() -> None:
    """A panel block copied into a selected region carried its donor's missing calls into
    the synthetic cohort: the panel is imputed first, so the output is complete unless the
    missing calls are released."""
    sim = simulate(SimConfig.small(seed=3, n=400, n_public=300, missing_calls=0.02))
    real, report = qc(sim.cohort, dp=True, public=sim.public)
    members = analysis_subset(real, "abBMD", ["SW16"], report)
    panel = align_panel(sim.public, members.variants)
    cfg = SynthConfig(pheno="abBMD", covariates=("SW16",), epsilon=8.0, pretrain_steps=40)
    res = synthesize(members, cfg, panel)
    assert res.details["association"]["regions"]  # panel blocks were copied
    assert not np.isnan(res.cohort.dosages).any()
    imputed = res.details["public_panel_imputation"]
    assert imputed["calls_filled"] == np.isnan(panel.dosages).sum()
    assert np.isnan(panel.dosages).any()  # the caller's panel is left as it was
    complete = synthesize(members, cfg, replace(panel, dosages=np.nan_to_num(panel.dosages)))
    assert "public_panel_imputation" not in complete.details
