"""Ancestral sampling of the window model, and fresh sample ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dpgenome.fidelity import genotype_balance
from dpgenome.model import HET_CENTRE, WindowModel, genotype_probabilities, make_layout
from dpgenome.sample import fresh_ids, sample_dosages, synthetic_samples
from dpgenome.testing import ToyConfig, toy_cohort
from dpgenome.train import TrainConfig, train


def _het(g: int) -> float:
    return 1.0 - HET_CENTRE - abs(g - 1)


def _check(x: np.ndarray, sel: np.ndarray, col: int, eta: float, delta: float) -> None:
    """The draws of ``col`` among ``sel`` rows follow the model's conditional."""
    p1, p2 = genotype_probabilities(np.array(eta), np.array(delta))
    m = int(sel.sum())
    for g, p in ((1, float(p1)), (2, float(p2))):
        assert abs((x[sel, col] == g).mean() - p) < 4 * np.sqrt(p * (1 - p) / m) + 1e-9


def test_sample_dosages__reproduces_the_model_conditionals() -> None:
    """Two chromosomes, windows of 2 SNPs, context 1 (so delta reads 2 lags). Chromosome 1
    has 2 windows: SNP b depends on SNP a (within a window), SNP c on SNP b (across the window
    boundary, through the context), through the dosage (eta) and the heterozygote indicator
    (delta); SNP d's delta reads b's indicator at lag 2."""
    v = pd.DataFrame(
        {"id": list("abcdxy"), "chr": ["1"] * 4 + ["2"] * 2, "pos": [1, 2, 3, 4, 1, 2]}
    )
    lay = make_layout(v, window=2, context=1)
    model = WindowModel(lay)
    assert model.lags == 2
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.window_layer.bias[0] = torch.tensor([0.4, -0.3])
        model.window_layer.weight[0, 0, 1] = 1.5  # a -> b
        # delta's weights: (window, input: the previous window's last 2 then its own 2, output)
        model.het_layer.bias[0] = torch.tensor([0.5, -1.0])
        model.het_layer.weight[0, 2, 1] = 3.0  # a heterozygous -> b heterozygous (lag 1)
        model.het_layer.weight[0, 0, 0] = 9.0  # lag 2 of a: before the context, masked
        model.context_layer.weight[1, 0, 0] = -2.0  # b -> c (previous window's last SNP)
        model.het_layer.weight[1, 1, 0] = 2.5  # b -> c (lag 1, in the previous window)
        model.het_layer.weight[1, 1, 1] = -1.5  # b -> d (lag 2)
        model.het_layer.weight[2, 1, 0] = 7.0  # x's lag 1 (a first window): reads zeros
        model.window_layer.bias[2] = torch.tensor([1.0, 0.0])  # chromosome 2, independent
    n = 60_000
    x = sample_dosages(model, n, np.random.default_rng(0))
    assert x.shape == (n, 6) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0, 2.0}
    everyone = np.ones(n, dtype=bool)
    _check(x, everyone, 0, 0.4, 0.5)
    for a in (0, 1, 2):
        _check(x, x[:, 0] == a, 1, -0.3 + 1.5 * (a - 1), -1.0 + 3.0 * _het(a))
    for b in (0, 1, 2):
        _check(x, x[:, 1] == b, 2, -2.0 * (b - 1), 2.5 * _het(b))
        _check(x, x[:, 1] == b, 3, 0.0, -1.5 * _het(b))
    # a heterozygous a makes b heterozygous more often than any Binomial(2, p) could
    assert (x[x[:, 0] == 1, 1] == 1).mean() > 0.5
    # no dependence between chromosomes
    assert abs(np.corrcoef(x[:, 0], x[:, 4])[0, 1]) < 4 / np.sqrt(n)
    _check(x, everyone, 4, 1.0, 0.0)


def test_sample_dosages__seeded() -> None:
    v = pd.DataFrame({"id": [f"s{i}" for i in range(30)], "chr": "1", "pos": np.arange(30) + 1})
    model = WindowModel(make_layout(v, window=8, context=2))
    a = sample_dosages(model, 50, np.random.default_rng(3))
    b = sample_dosages(model, 50, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)


def test_fresh_ids__never_collide_with_real_ids() -> None:
    ids = fresh_ids(3, avoid=["SYN000002", "M1"])
    assert len(set(ids)) == 3 and "SYN000002" not in set(ids)
    table = synthetic_samples(4, avoid=["x"])
    assert list(table.columns) == ["id", "discard", "mixup"]
    assert not table["discard"].any()


class _BinomialOnly(WindowModel):
    """The model before stop 51: dosages alone, ``delta = 0`` (Binomial conditionals)."""

    def _logits(self, x: torch.Tensor, het: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        eta, delta = super()._logits(x, het)
        return eta, delta * 0.0


def test_sample_dosages__linked_snps_keep_their_heterozygotes() -> None:
    """Trained without noise on an outbred toy colony in Hardy-Weinberg equilibrium, the
    samples stay in it; with Binomial conditionals (no heterozygote indicator) the
    heterozygotes die out along the chain (F 0.64, 94% of SNPs out of equilibrium)."""
    cohort, _ = toy_cohort(0, ToyConfig(n=300, n_chrom=2, snps_per_chrom=200))
    real = genotype_balance(cohort.dosages)
    assert abs(real["inbreeding"]) < 0.05
    out = {}
    for cls in (WindowModel, _BinomialOnly):
        torch.manual_seed(0)
        model = cls(make_layout(cohort.variants, 16, 8))
        model.init_bias_from_frequency(cohort.alt_frequency())
        train(model, cohort.dosages, TrainConfig(200, 0.5, 0.05), seed=1)
        out[cls] = genotype_balance(sample_dosages(model, 300, np.random.default_rng(0)))
    assert abs(out[WindowModel]["inbreeding"]) < 0.05
    assert out[WindowModel]["hwe_failure_share"] < 0.02
    assert out[_BinomialOnly]["inbreeding"] > 0.4
    assert out[_BinomialOnly]["hwe_failure_share"] > 0.5


def test_sample_dosages__given_columns_are_kept_and_condition_the_rest() -> None:
    """Windows of 2, context 1: with SNP b given (all 2), SNP c is drawn from its conditional
    given b = 2, and the given columns come back as they were."""
    v = pd.DataFrame({"id": list("abcd"), "chr": "1", "pos": [1, 2, 3, 4]})
    model = WindowModel(make_layout(v, window=2, context=1))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.context_layer.weight[1, 0, 0] = -2.0  # b -> c
    n = 20_000
    given = np.zeros((n, 4), dtype=np.float32)
    given[:, 1] = 2.0
    free = np.array([False, False, True, False])
    x = sample_dosages(model, n, np.random.default_rng(0), given=given, free=free)
    np.testing.assert_array_equal(x[:, [0, 1, 3]], given[:, [0, 1, 3]])
    _check(x, np.ones(n, dtype=bool), 2, -2.0, 0.0)
    nothing = sample_dosages(model, 5, np.random.default_rng(0), given=given[:5], free=~free & free)
    np.testing.assert_array_equal(nothing, given[:5])
    with pytest.raises(ValueError, match="free"):
        sample_dosages(model, 5, np.random.default_rng(0), given=given[:5])


def test_sample_dosages__ancestry_scores_enter_as_the_model_reads_them() -> None:
    """Two chromosomes (3 and 2 windows), each window with its own ancestry weights and each
    chromosome with its own (leave-one-out) scores: every SNP's sampled frequency is the
    sigmoid of the ``eta`` that :meth:`WindowModel.logits` gives the same scores (the
    training path), for two groups of individuals with different scores."""
    v = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(10)],
            "chr": ["1"] * 6 + ["2"] * 4,
            "pos": [*range(6), *range(4)],
        }
    )
    model = WindowModel(make_layout(v, window=2, context=1), ancestry=2)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.ancestry_layer.weight.copy_(torch.randn(5, 2, 2, generator=gen))
        model.window_layer.bias.copy_(0.3 * torch.randn(5, 2, generator=gen))
    n = 40_000
    groups = np.array([[[0.8, -0.5], [-1.2, 0.3]], [[-0.7, 1.1], [0.9, 0.0]]])  # (2, C, a)
    scores = np.repeat(groups, n // 2, axis=0)
    x = sample_dosages(model, n, np.random.default_rng(0), ancestry=scores)
    for g in (0, 1):
        eta, _ = model.logits(model.prepare(np.zeros((1, 10)), groups[g][None]))
        expected = np.zeros(10)
        lay = model.layout
        expected[lay.snp_index.reshape(-1)] = eta[0].detach().numpy().reshape(-1)
        freq = x[g * n // 2 : (g + 1) * n // 2].mean(axis=0) / 2
        np.testing.assert_allclose(freq, 1 / (1 + np.exp(-expected)), atol=0.012)
    assert np.ptp(expected) > 1.0  # the windows and chromosomes do differ
    with pytest.raises(ValueError, match="ancestry"):
        sample_dosages(model, 5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="ancestry"):
        sample_dosages(model, 5, np.random.default_rng(0), ancestry=np.zeros((5, 2)))
