"""DP-SGD training of the window model: one clipping norm over all windows, the
non-private limit, and accounting inputs taken from the config."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dpgenome.dpsgd import DpSgdConfig, DpSgdTrainer
from dpgenome.errors import ConfigError
from dpgenome.model import WindowModel, make_layout
from dpgenome.testing import ToyConfig, toy_cohort
from dpgenome.train import TrainConfig, per_sample_gradients, train


@pytest.fixture(scope="module")
def cohort():
    c, _ = toy_cohort(5, ToyConfig(n=60, n_chrom=2, snps_per_chrom=48, causal=((0, 10), (1, 5))))
    return c


def _model(cohort, seed: int = 0) -> WindowModel:
    torch.manual_seed(seed)
    model = WindowModel(make_layout(cohort.variants, window=8, context=3))
    model.init_bias_from_frequency(np.full(cohort.n_variants, 0.5))
    return model


def _flat(model: WindowModel) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_train__clipping_bounds_each_individuals_gradient_over_all_windows(cohort) -> None:
    """One DP-SGD step (q = 1, no noise, SGD lr = 1): the update is the mean of per-sample
    gradients each clipped *jointly over every window's parameters* to C."""
    clip = 3.0
    model = _model(cohort)
    x = cohort.dosages
    per_sample = per_sample_gradients(model, x)
    flat = torch.cat([g.reshape(len(x), -1) for g in per_sample], dim=1)
    norms = flat.norm(dim=1)
    assert torch.all(norms > clip)  # every individual is clipped in this setting
    # the bound is over all windows at once: the per-window norms are each well below the total
    n_windows = model.layout.n_windows
    assert n_windows >= 12
    clipped = flat * (clip / (norms + 1e-6)).clamp(max=1.0).unsqueeze(1)
    assert torch.all(clipped.norm(dim=1) <= clip * (1 + 1e-5))
    before = _flat(model)
    trainer = DpSgdTrainer(
        model,
        lambda ps: torch.optim.SGD(ps, lr=1.0),
        len(x),
        DpSgdConfig(1.0, 1, 0.0, clip),
        seed=0,
    )
    rows = model.prepare(x)
    trainer.run(lambda module, idx: module(rows[idx]))
    step = before - _flat(model)
    torch.testing.assert_close(step, clipped.mean(dim=0), rtol=1e-4, atol=1e-6)
    assert float(step.norm()) <= clip * (1 + 1e-4)


def test_train__zero_noise_and_huge_clip_reproduce_non_private_training(cohort) -> None:
    a, b = _model(cohort), _model(cohort)
    cfg = TrainConfig(steps=15, sample_rate=0.3, lr=0.05)
    train(a, cohort.dosages, cfg, seed=7)
    train(
        b,
        cohort.dosages,
        TrainConfig(15, 0.3, 0.05, noise_multiplier=0.0, max_grad_norm=1e9),
        seed=7,
    )
    torch.testing.assert_close(_flat(a), _flat(b), rtol=1e-4, atol=1e-5)


def test_train__private_run_reports_its_accounting_inputs(cohort) -> None:
    model = _model(cohort)
    cfg = TrainConfig(steps=20, sample_rate=0.25, noise_multiplier=1.1, max_grad_norm=2.0)
    rep = train(model, cohort.dosages, cfg, seed=1, delta=1e-5)
    assert (rep.steps, rep.sample_rate, rep.noise_multiplier, rep.max_grad_norm) == (
        20,
        0.25,
        1.1,
        2.0,
    )
    assert len(rep.losses) == 20
    assert rep.clipped_fraction is not None and 0.0 <= rep.clipped_fraction <= 1.0
    # Opacus's own RDP accountant over the run (cross-check value, not the ledger)
    assert rep.opacus_epsilon is not None and 0 < rep.opacus_epsilon < math.inf


def test_train__bias_only_fine_tune_leaves_ld_weights_untouched(cohort) -> None:
    model = _model(cohort)
    w0 = [m.weight.detach().clone() for m in (model.window_layer, model.het_layer)]
    assert model.lags == 4
    b0 = [b.detach().clone() for b in model.biases()]
    assert len(b0) == 2  # eta's and delta's
    train(
        model, cohort.dosages, TrainConfig(5, 0.5, noise_multiplier=1.0, trainable="bias"), seed=0
    )
    for m, w in zip((model.window_layer, model.het_layer), w0, strict=True):
        assert torch.equal(m.weight.detach(), w)
    for b, before in zip(model.biases(), b0, strict=True):
        assert not torch.equal(b.detach(), before)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("trainable", ["all", "bias"])
def test_ghost_norms__match_the_materialised_per_sample_gradients(cohort, trainable) -> None:
    """The ghost norm sampler of the window layers gives each individual's gradient norm over
    every trainable parameter without materialising it: the same as the norms of the
    per-sample gradients (hooks; tests/test_model.py checks those against torch.func)."""
    model = _model(cohort)
    x = cohort.dosages
    if trainable == "bias":
        for p in model.parameters():
            p.requires_grad_(False)
        for b in model.biases():
            b.requires_grad_(True)
    per_sample = per_sample_gradients(model, x)
    expected = torch.cat([g.reshape(len(x), -1) for g in per_sample], dim=1).norm(dim=1)
    trainer = DpSgdTrainer(
        model,
        lambda ps: torch.optim.SGD([p for p in ps if p.requires_grad], lr=0.0),
        len(x),
        DpSgdConfig(1.0, 1, 0.0, 1.0),
        seed=0,
        grad_sample_mode="ghost",
    )
    rows = model.prepare(x)
    trainer.run(lambda module, idx: module(rows[idx]))
    torch.testing.assert_close(trainer.per_sample_grad_norms(), expected, rtol=1e-4, atol=1e-6)


def test_train__ghost_and_hooks_give_the_same_private_run(cohort) -> None:
    """Ghost clipping and materialised per-sample gradients are two ways to one mechanism:
    with the same seed (batches, noise) the same parameters and the same clipped share."""
    runs = {}
    for mode in ("ghost", "hooks"):
        model = _model(cohort)
        cfg = TrainConfig(12, 0.3, 0.05, 0.8, 2.0, grad_sample_mode=mode)
        rep = train(model, cohort.dosages, cfg, seed=4)
        runs[mode] = (_flat(model), rep.clipped_fraction, rep.losses)
    torch.testing.assert_close(runs["ghost"][0], runs["hooks"][0], rtol=1e-4, atol=1e-5)
    assert runs["ghost"][1] == runs["hooks"][1] and 0.0 < runs["ghost"][1] <= 1.0
    np.testing.assert_allclose(runs["ghost"][2], runs["hooks"][2], rtol=1e-5)


def test_train_config__rejects_invalid_values() -> None:
    with pytest.raises(ConfigError, match="grad_sample_mode"):
        TrainConfig(steps=1, sample_rate=0.5, grad_sample_mode="vmap")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="sample_rate"):
        TrainConfig(steps=1, sample_rate=0.0)
    with pytest.raises(ConfigError, match="steps"):
        TrainConfig(steps=0, sample_rate=0.5)
    with pytest.raises(ConfigError, match="noise_multiplier"):
        TrainConfig(steps=1, sample_rate=0.5, noise_multiplier=-1.0)
