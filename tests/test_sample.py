"""Ancestral sampling of the window model, and fresh sample ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import special

from dpgenome.model import WindowModel, make_layout
from dpgenome.sample import fresh_ids, sample_dosages, synthetic_samples


def _sigmoid(x: float) -> float:
    return float(special.expit(x))


def test_sample_dosages__reproduces_the_model_conditionals() -> None:
    """Two chromosomes, windows of 2 SNPs, context 1. Chromosome 1 has 2 windows: SNP b
    depends on SNP a (within a window), SNP c on SNP b (across the window boundary, through
    the context). Each conditional distribution must be Binomial(2, sigmoid(logit))."""
    v = pd.DataFrame(
        {"id": list("abcdxy"), "chr": ["1"] * 4 + ["2"] * 2, "pos": [1, 2, 3, 4, 1, 2]}
    )
    lay = make_layout(v, window=2, context=1)
    model = WindowModel(lay)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.window_layer.bias[0] = torch.tensor([0.4, -0.3])
        model.window_layer.weight[0, 0, 1] = 1.5  # a -> b
        model.context_layer.weight[1, 0, 0] = -2.0  # b -> c (previous window's last SNP)
        model.window_layer.bias[2] = torch.tensor([1.0, 0.0])  # chromosome 2, independent
    n = 40_000
    x = sample_dosages(model, n, np.random.default_rng(0))
    assert x.shape == (n, 6) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0, 2.0}
    # P(a): mean dosage 2 p
    p_a = _sigmoid(0.4)
    se = np.sqrt(2 * p_a * (1 - p_a) / n)
    assert abs(x[:, 0].mean() / 2 - p_a) < 4 * se
    for a in (0, 1, 2):
        sel = x[:, 0] == a
        p_b = _sigmoid(-0.3 + 1.5 * (a - 1))
        assert abs(x[sel, 1].mean() / 2 - p_b) < 4 * np.sqrt(p_b * (1 - p_b) / (2 * sel.sum()))
    for b in (0, 1, 2):
        sel = x[:, 1] == b
        p_c = _sigmoid(-2.0 * (b - 1))
        assert abs(x[sel, 2].mean() / 2 - p_c) < 4 * np.sqrt(p_c * (1 - p_c) / (2 * sel.sum()))
    # no dependence between chromosomes
    assert abs(np.corrcoef(x[:, 0], x[:, 4])[0, 1]) < 4 / np.sqrt(n)
    p_x = _sigmoid(1.0)
    assert abs(x[:, 4].mean() / 2 - p_x) < 4 * np.sqrt(p_x * (1 - p_x) / (2 * n))


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
