"""Window layout, the grouped masked autoregressive model and its Opacus grad sampler."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.func import functional_call, grad, vmap

from dpgenome.errors import ConfigError
from dpgenome.model import (
    WindowModel,
    autoregressive_mask,
    genotype_nll,
    genotype_probabilities,
    make_layout,
)
from dpgenome.testing import ToyConfig, toy_cohort
from dpgenome.train import per_sample_gradients


def _variants(sizes: dict[str, int]) -> pd.DataFrame:
    chrom = [c for c, m in sizes.items() for _ in range(m)]
    pos = [1000 * (j + 1) for m in sizes.values() for j in range(m)]
    return pd.DataFrame({"id": [f"s{i}" for i in range(len(chrom))], "chr": chrom, "pos": pos})


def _random_model(layout, seed: int = 0) -> WindowModel:
    torch.manual_seed(seed)
    model = WindowModel(layout)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    return model


def test_make_layout__every_snp_once_and_context_from_previous_window() -> None:
    v = _variants({"1": 37, "2": 16, "3": 5})
    v = v.sample(frac=1.0, random_state=0).reset_index(drop=True)  # columns need not be sorted
    lay = make_layout(v, window=8, context=3)
    idx = lay.snp_index[lay.snp_index >= 0]
    assert sorted(idx.tolist()) == list(range(len(v)))
    assert lay.n_windows == 5 + 2 + 1
    for w in range(lay.n_windows):
        cols = lay.snp_index[w][lay.snp_index[w] >= 0]
        assert v["chr"].iloc[cols].nunique() == 1
        assert np.all(np.diff(v["pos"].iloc[cols].to_numpy()) > 0)
        if lay.step[w] == 0:
            assert np.all(lay.context_index[w] == -1)
        else:
            assert lay.chrom[w - 1] == lay.chrom[w]
            np.testing.assert_array_equal(lay.context_index[w], lay.snp_index[w - 1, -3:])
    assert np.all(lay.window_of_snp[lay.snp_index[lay.snp_index >= 0]] >= 0)


def test_make_layout__rejects_bad_sizes() -> None:
    with pytest.raises(ConfigError, match="context"):
        make_layout(_variants({"1": 10}), window=4, context=5)
    with pytest.raises(ConfigError, match="window"):
        make_layout(_variants({"1": 10}), window=0, context=0)


def test_autoregressive_mask__output_sees_context_and_earlier_snps_only() -> None:
    mask = autoregressive_mask(4, 2)
    assert mask.shape == (6, 4)
    assert torch.all(mask[:2] == 1)
    expected = torch.tensor(
        [[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=torch.float32
    )
    assert torch.equal(mask[2:], expected)


def test_window_model__logits_depend_only_on_earlier_snps() -> None:
    lay = make_layout(_variants({"1": 24, "2": 12}), window=8, context=3)
    model = _random_model(lay)
    x = np.random.default_rng(0).integers(0, 3, size=(1, 36)).astype(np.float32)
    rows = model.prepare(x).float().requires_grad_(True)
    eta, delta = model.logits(rows)
    # order of every SNP along its chromosome (the autoregressive order)
    order = np.full(36, -1)
    for w in range(lay.n_windows):
        for j, col in enumerate(lay.snp_index[w]):
            if col >= 0:
                order[col] = lay.step[w] * lay.window + j
    flat_pos = lay.snp_index.reshape(-1)
    for logits in (eta, delta):
        for w, j in [(0, 0), (1, 0), (1, 5), (2, 7), (3, 2)]:
            (g,) = torch.autograd.grad(logits[0, w, j], rows, retain_graph=True)
            col = lay.snp_index[w, j]
            deps = flat_pos[np.flatnonzero(g[0].numpy() != 0)]
            assert np.all(order[deps] < order[col])
            assert np.all(lay.chrom[lay.window_of_snp[deps]] == lay.chrom[w])
        # the last SNP of window 1 sees its window and the previous one's context
        (g,) = torch.autograd.grad(logits[0, 1, 7], rows, retain_graph=True)
        assert (g[0].numpy() != 0).sum() > 0


def test_window_model__missing_dosages_do_not_enter_the_likelihood() -> None:
    lay = make_layout(_variants({"1": 20}), window=8, context=2)
    model = _random_model(lay)
    x = np.random.default_rng(1).integers(0, 3, size=(3, 20)).astype(np.float32)
    x_nan = x.copy()
    x_nan[0, 19] = np.nan  # the last SNP: nothing depends on it
    full = model(model.prepare(x)).detach()
    part = model(model.prepare(x_nan)).detach()
    assert part[1] == pytest.approx(float(full[1]))
    assert float(part[0]) < float(full[0])


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")
def test_grouped_masked_linear_grad_sample__matches_torch_func() -> None:
    cohort, _ = toy_cohort(
        3, ToyConfig(n=12, n_chrom=2, snps_per_chrom=40, causal=((0, 10), (1, 5)))
    )
    x = cohort.dosages.copy()
    x[0, 5] = 1.37  # a non-integer dosage
    x[2, 11] = np.nan  # a missing one
    lay = make_layout(cohort.variants, window=8, context=3)
    model = _random_model(lay, seed=4)
    rows = model.prepare(x)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p: dict[str, torch.Tensor], row: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (row.unsqueeze(0),)).sum()

    reference = vmap(grad(loss_one), in_dims=(None, 0))(params, rows)
    ours = per_sample_gradients(model, x)
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    assert len(ours) == len(names) == 5  # dosages -> eta (3), indicators -> delta (2)
    for name, g in zip(names, ours, strict=True):
        # float32 einsums: agreement to 1e-5 relative
        torch.testing.assert_close(g, reference[name], rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")
def test_window_model__ancestry_scores_enter_eta_only_with_exact_per_sample_gradients() -> None:
    """A model reading 2 ancestry scores per chromosome: the scores move ``eta`` of every SNP
    of their chromosome's windows (and nothing else), and Opacus's per-sample gradients of
    the ancestry layer (our grad sampler) match torch.func's."""
    cohort, _ = toy_cohort(3, ToyConfig(n=9, n_chrom=2, snps_per_chrom=20, causal=((0, 10),)))
    lay = make_layout(cohort.variants, window=8, context=3)
    torch.manual_seed(2)
    model = WindowModel(lay, ancestry=2)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    scores = np.random.default_rng(0).normal(size=(9, 2, 2))
    x = cohort.dosages
    rows = model.prepare(x, scores)
    assert rows.shape == (9, lay.n_windows * 8 + 4)
    eta, delta = model.logits(rows)
    moved = scores.copy()
    moved[:, 1] += 1.0  # the second chromosome's scores
    eta2, delta2 = model.logits(model.prepare(x, moved))
    torch.testing.assert_close(delta2, delta)
    on_second = torch.from_numpy(lay.chrom == lay.chrom.max())
    torch.testing.assert_close(eta2[:, ~on_second], eta[:, ~on_second])
    step = model.ancestry_layer.weight.detach().sum(dim=1)  # (W, k): +1 on both scores
    torch.testing.assert_close(
        (eta2 - eta)[:, on_second], step[on_second].expand(9, -1, -1), atol=2e-3, rtol=1e-3
    )  # float16 rows
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p: dict[str, torch.Tensor], row: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (row.unsqueeze(0),)).sum()

    reference = vmap(grad(loss_one), in_dims=(None, 0))(params, rows)
    ours = per_sample_gradients(model, x, scores)
    names = [k for k, p in model.named_parameters() if p.requires_grad]
    assert "ancestry_layer.weight" in names and len(ours) == len(names) == 6
    for name, g in zip(names, ours, strict=True):
        torch.testing.assert_close(g, reference[name], rtol=1e-5, atol=1e-5)
    # missing dosages: the observed block sits between the dosages and the scores
    x_nan = x.copy()
    x_nan[0, 3] = np.nan
    eta_nan, _ = model.logits(model.prepare(x_nan, scores))
    torch.testing.assert_close(eta_nan[1:], eta[1:])
    np.testing.assert_array_equal(model.prepare(x_nan, scores)[:, -4:], rows[:, -4:])
    with pytest.raises(ValueError, match="ancestry scores of shape"):
        model.prepare(x)
    with pytest.raises(ValueError, match="no ancestry"):
        WindowModel(lay).prepare(x, scores)


def test_grouped_layers__use_the_registered_closed_form_samplers() -> None:
    """The test above proves the gradients right, not that our sampler made them: without
    its registration Opacus falls back to torch.func (correct, ~17x slower). The registry
    must hold our closed forms for both grouped layers (genotype windows, phenotype batches)."""
    from opacus.grad_sample import GradSampleModule, GradSampleModuleFastGradientClipping

    from dpgenome import model as genotype_model
    from dpgenome import phenomade

    for layer, grad_sampler, norm_sampler in (
        (
            genotype_model.GroupedMaskedLinear,
            genotype_model.grouped_masked_linear_grad_sample,
            genotype_model.grouped_masked_linear_norm_sample,
        ),
        (
            phenomade.GroupedMaskedLinear,
            phenomade.grouped_masked_linear_grad_sample,
            phenomade.grouped_masked_linear_norm_sample,
        ),
    ):
        assert GradSampleModule.GRAD_SAMPLERS[layer] is grad_sampler  # the "hooks" mode
        ghost = GradSampleModuleFastGradientClipping  # the "ghost" mode, the default
        assert ghost.GRAD_SAMPLERS[layer] is grad_sampler
        assert ghost.NORM_SAMPLERS[layer] is norm_sampler


def test_genotype_nll__value_and_gradient_match_the_plain_formula() -> None:
    """The written-out backward of the genotype NLL equals autograd's through the plain
    ``-log softmax(0, eta + delta + log 2, 2 eta)[y]``, soft (imputed) dosages and large
    logits included; with ``delta = 0`` it is the Binomial(2, sigmoid(eta)) NLL less
    ``log C(2, y)``."""
    gen = torch.Generator().manual_seed(0)
    eta = (torch.randn(7, 5, 4, generator=gen, dtype=torch.float64) * 6).requires_grad_(True)
    delta = (torch.randn(7, 5, 4, generator=gen, dtype=torch.float64) * 4).requires_grad_(True)
    y = torch.randint(0, 3, (7, 5, 4), generator=gen).double()
    y[0, 0] = torch.tensor([0.3, 1.7, 2.0, 0.0], dtype=torch.float64)
    observed = (torch.rand(5, 4, generator=gen) > 0.2).double()
    logp = torch.log_softmax(
        torch.stack([torch.zeros_like(eta), eta + delta + np.log(2.0), 2 * eta], dim=-1), -1
    )
    targets = torch.stack([(1 - y).clamp(min=0), 1 - (y - 1).abs(), (y - 1).clamp(min=0)], -1)
    plain = -(logp * targets).sum(-1) * observed
    weights = torch.rand(7, 5, 4, generator=gen, dtype=torch.float64)
    expected = torch.autograd.grad((plain * weights).sum(), (eta, delta))
    ours = genotype_nll(eta, delta, y, observed)
    torch.testing.assert_close(ours, plain)
    got = torch.autograd.grad((ours * weights).sum(), (eta, delta))
    torch.testing.assert_close(got, expected)
    # delta = 0: the binomial
    zero = torch.zeros_like(eta)
    whole = y.round()
    binomial = -(
        whole * torch.nn.functional.logsigmoid(eta)
        + (2 - whole) * torch.nn.functional.logsigmoid(-eta)
    ) - torch.log(torch.where(whole == 1, 2.0, 1.0).double())
    torch.testing.assert_close(genotype_nll(eta, zero, whole, torch.ones(5, 4)), binomial)


@pytest.mark.parametrize("no_compile", ["1", ""])
def test_genotype_nll__exact_for_large_logits(monkeypatch, no_compile: str) -> None:
    """-log P and its gradient stay exact far outside the logits' usual range, compiled
    (``torch.compile``) or not; float32 as in training."""
    monkeypatch.setenv("DPGENOME_NO_COMPILE", no_compile)
    eta = torch.tensor([60.0, 60.0, 29.0, -45.0, 0.3], requires_grad=True)
    delta = torch.tensor([5.0, 5.0, 40.0, 3.0, -80.0], requires_grad=True)
    y = torch.tensor([2.0, 1.0, 1.0, 0.0, 1.0])
    ours = genotype_nll(eta, delta, y, torch.ones(5))
    e, d = eta.double(), delta.double()
    logp = torch.log_softmax(torch.stack([torch.zeros_like(e), e + d + np.log(2.0), 2 * e], -1), -1)
    exact = -logp.gather(-1, y.long().unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(ours.double(), exact, rtol=1e-5, atol=1e-4)
    g_eta, g_delta = torch.autograd.grad(ours.sum(), (eta, delta))
    p = logp.exp()
    torch.testing.assert_close(
        g_eta.double(), p[:, 1] + 2 * p[:, 2] - y.double(), atol=1e-5, rtol=0
    )
    t1 = 1 - (y.double() - 1).abs()
    torch.testing.assert_close(g_delta.double(), p[:, 1] - t1, atol=1e-5, rtol=0)


def test_genotype_probabilities__can_favour_the_heterozygote() -> None:
    """A Binomial(2, p) puts at most half its mass on 1; delta lifts that ceiling (the
    heterozygotes of a chain of linked SNPs no longer die out)."""
    p1, p2 = genotype_probabilities(np.array([0.0, 0.0, 3.0]), np.array([0.0, 5.0, -50.0]))
    np.testing.assert_allclose(p1[0], 0.5)
    np.testing.assert_allclose(p2[0], 0.25)
    assert p1[1] > 0.98
    np.testing.assert_allclose(p2[2], 1.0 / (1.0 + np.exp(-6.0)), rtol=1e-9)


def test_window_model__input_dropout_only_in_training_and_only_on_dosage_inputs() -> None:
    """Input dropout drops input dosages in training mode (the targets stay whole, so the
    likelihood of a window's first SNP, which reads nothing, is unchanged) and never at
    evaluation, which is what sampling reads."""
    lay = make_layout(_variants({"1": 20}), window=8, context=2)
    model = _random_model(lay)
    rows = model.prepare(np.random.default_rng(2).integers(0, 3, size=(64, 20)).astype(np.float32))
    model.eval()
    plain = model(rows).detach()
    model.input_dropout = 0.3
    assert torch.equal(model(rows).detach(), plain)  # evaluation: no dropout
    model.train()
    torch.manual_seed(0)
    dropped = model(rows).detach()
    assert not torch.allclose(dropped, plain)
    model.input_dropout = 0.0
    assert torch.allclose(model(rows).detach(), plain)
    # only the eta path reads the dropped dosages: with its weights zero, nothing changes
    with torch.no_grad():
        model.window_layer.weight.zero_()
        assert model.context_layer is not None
        model.context_layer.weight.zero_()
    model.input_dropout = 0.3
    base = model(rows).detach()
    torch.manual_seed(1)
    assert torch.allclose(model(rows).detach(), base)
