"""Genotypes replaced at the selected regions, joined on both sides (dpgenome.splice)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpgenome.model import WindowModel, make_layout
from dpgenome.sample import sample_dosages
from dpgenome.splice import Splice, assign_donors, merge_overlapping, splice_regions
from dpgenome.testing import ToyConfig, toy_cohort
from dpgenome.train import TrainConfig, train


def test_assign_donors__cheapest_within_each_donors_capacity() -> None:
    cost = np.array([[0.0, 5.0], [0.0, 5.0], [0.0, 5.0], [9.0, 0.0]])
    donors = assign_donors(cost, np.random.default_rng(0))
    # ceil(4 / 2) = 2 rows per donor: one of the first three rows goes to donor 1
    assert np.bincount(donors, minlength=2).tolist() == [2, 2]
    assert donors[3] == 1
    # ties are broken at random: three rows, three equally good donors
    picks = {tuple(assign_donors(np.zeros((3, 3)), np.random.default_rng(s))) for s in range(20)}
    assert len(picks) > 1 and all(sorted(p) == [0, 1, 2] for p in picks)


def _mean_r2(d: np.ndarray, left: np.ndarray, right: np.ndarray) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(d[:, np.concatenate([left, right])].T)[: len(left), len(left) :]
    return float(np.nanmean(r**2))


@pytest.fixture(scope="module")
def fitted():
    """A toy colony: 300 members the model is trained on, 300 others as the public panel."""
    cohort, _ = toy_cohort(0, ToyConfig(n=600, n_chrom=2, snps_per_chrom=200))
    torch.manual_seed(0)
    model = WindowModel(make_layout(cohort.variants, 16, 8))
    model.init_bias_from_frequency(cohort.alt_frequency())
    train(model, cohort.dosages[:300], TrainConfig(200, 0.5, 0.05), seed=1)
    synth = sample_dosages(model, 300, np.random.default_rng(0))
    return cohort, model, synth


def test_splice_regions__ld_across_both_edges(fitted) -> None:
    """The block is a donor's; the SNPs before the region are the synthetic individual's
    own; those after it are drawn again given the block. LD across both edges is kept (a
    naive copy keeps none), and nothing off the region's chromosome moves."""
    cohort, model, synth = fitted
    members, panel = cohort.dosages[:300], cohort.dosages[300:]
    cols = np.arange(90, 130)
    up, first = np.arange(82, 90), np.arange(90, 98)
    last, down = np.arange(122, 130), np.arange(130, 138)
    out, info = splice_regions(
        model, synth, cohort.variants, [Splice(cols)], np.random.default_rng(1), panel=panel
    )
    assert info["most_served_by_one_donor"] == 1 and info["columns_drawn_again"] == 70
    donors = [np.flatnonzero((panel[:, cols] == row).all(axis=1)) for row in out[:, cols]]
    assert all(len(d) for d in donors)  # every block is a panel individual's
    np.testing.assert_array_equal(out[:, :90], synth[:, :90])
    np.testing.assert_array_equal(out[:, 200:], synth[:, 200:])  # chromosome 2
    assert not np.array_equal(out[:, 130:200], synth[:, 130:200])
    naive = synth.copy()
    naive[:, cols] = panel[np.random.default_rng(1).permutation(300)][:, cols]
    for left, right in ((up, first), (last, down)):
        real = _mean_r2(members, left, right)
        assert _mean_r2(out, left, right) > 0.5 * real
        assert _mean_r2(naive, left, right) < 0.2 * real


def test_splice_regions__given_values_and_a_small_panel(fitted) -> None:
    cohort, model, synth = fitted
    values = np.full((300, 3), 2.0, dtype=np.float32)
    out, info = splice_regions(
        model,
        synth,
        cohort.variants,
        [Splice(np.arange(10, 20)), Splice(np.array([250, 251, 252]), values)],
        np.random.default_rng(2),
        panel=cohort.dosages[:100],  # 300 synthetic individuals, 100 donors
    )
    assert (out[:, 250:253] == 2).all()
    assert info["regions"] == 2 and info["most_served_by_one_donor"] == 3
    with pytest.raises(ValueError, match="panel"):
        splice_regions(
            model, synth, cohort.variants, [Splice(np.arange(3))], np.random.default_rng(0)
        )


def test_merge_overlapping__one_donor_across_overlapping_regions(fitted) -> None:
    cohort, model, synth = fitted
    chrom = np.repeat([1, 2], 200)
    pos = np.tile(np.arange(200) * 1000, 2)
    a, b, c = Splice(np.arange(10, 30)), Splice(np.arange(25, 40)), Splice(np.arange(50, 60))
    lead = Splice(np.array([35]), np.zeros((300, 1), dtype=np.float32))
    merged = merge_overlapping([c, b, lead, a], chrom, pos)
    assert [m.columns.tolist() for m in merged] == [
        list(range(10, 40)),
        [35],
        list(range(50, 60)),
    ]
    out, info = splice_regions(
        model, synth, cohort.variants, [a, b], np.random.default_rng(3), panel=cohort.dosages
    )
    assert info["regions"] == 1
    block = out[:, 10:40]
    assert all(
        (cohort.dosages[:, 10:40] == row).all(axis=1).any() for row in block
    )  # each row one donor's block across both regions


def test_splice_regions__missing_calls_and_a_lead_inside_a_block(fitted) -> None:
    """A missing call in the panel (matched SNPs, the block) neither stops the splice nor
    zeroes the SNPs drawn after it (the model reads a missing value as training does); a
    lead spliced inside a block leaves the rest of the block the donor's."""
    cohort, model, synth = fitted
    panel = cohort.dosages[300:].astype(np.float32).copy()
    panel[3, 85] = np.nan  # among the 16 SNPs matched before the region
    panel[:, 125] = np.nan  # inside the block, for every donor
    cols = np.arange(90, 130)
    out, _ = splice_regions(
        model, synth, cohort.variants, [Splice(cols)], np.random.default_rng(4), panel=panel
    )
    assert np.isnan(out[:, 125]).all()  # a missing call stays missing
    after = out[:, 130:140]
    assert np.isfinite(after).all()
    assert abs(after.mean() - synth[:, 130:140].mean()) < 0.15  # not all drawn as 0
    lead = Splice(np.array([100]), np.full((300, 1), 2.0, dtype=np.float32))
    out, _ = splice_regions(
        model,
        synth,
        cohort.variants,
        [Splice(cols), lead],
        np.random.default_rng(5),
        panel=cohort.dosages[300:],
    )
    assert (out[:, 100] == 2).all()
    block = np.delete(out[:, cols], 10, axis=1)
    donors = np.delete(cohort.dosages[300:][:, cols], 10, axis=1)
    assert all((donors == row).all(axis=1).any() for row in block)
