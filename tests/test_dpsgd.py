"""DP-SGD helpers: clipping bounds each individual's contribution, zero noise and an
infinite clip reproduce non-private training, the noise has the calibrated scale."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from dpgenome.accountant import Ledger
from dpgenome.dpsgd import DpSgdConfig, DpSgdTrainer, check_ran, seeded_generators
from dpgenome.errors import ConfigError

N = 120


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 6, generator=g)
    y = x @ torch.randn(6, 1, generator=g) + 0.3 * torch.randn(N, 1, generator=g)
    return x, 5.0 * y  # large targets: most per-sample gradients exceed the clip norm


def _model(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 1))


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _loss(data: tuple[torch.Tensor, torch.Tensor]):
    x, y = data
    return lambda m, idx: ((m(x[idx]) - y[idx]) ** 2).squeeze(1)


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_trainer__zero_noise_and_infinite_clip_match_non_private_training(data, mode) -> None:
    # Opacus computes the noise std as noise_multiplier * max_grad_norm, so an infinite clip
    # gives 0 * inf = NaN; 1e30 is "infinite" for gradients of order 1-100.
    base = _model()
    results = {}
    for name, config in {
        "plain": DpSgdConfig.no_privacy(0.2, 25),
        "dp": DpSgdConfig(0.2, 25, noise_multiplier=0.0, max_grad_norm=1e30),
    }.items():
        model = copy.deepcopy(base)
        trainer = DpSgdTrainer(
            model,
            lambda ps: torch.optim.Adam(ps, lr=0.01),
            N,
            config,
            seed=7,
            grad_sample_mode=mode,
        )
        trainer.run(_loss(data))
        results[name] = _flat(model)
    assert not torch.equal(results["plain"], _flat(base))  # it trained
    torch.testing.assert_close(results["dp"], results["plain"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_trainer__clipping_bounds_each_individuals_contribution(data, mode) -> None:
    clip = 0.5
    config = DpSgdConfig(1.0, 1, noise_multiplier=0.0, max_grad_norm=clip)
    trainer = DpSgdTrainer(
        _model(), lambda ps: torch.optim.SGD(ps, lr=0.0), N, config, seed=0, grad_sample_mode=mode
    )
    loss = _loss(data)
    params = list(trainer.module.parameters())

    def summed(idx: torch.Tensor) -> torch.Tensor:
        trainer.step(idx, loss)
        return torch.cat([p.summed_grad.flatten() for p in params])  # type: ignore[attr-defined]

    everyone = torch.arange(N)
    total = summed(everyone)
    raw = trainer.per_sample_grad_norms()
    assert (raw > clip).float().mean() > 0.5  # clipping is active for most individuals
    # removing any one individual changes the clipped sum by at most the clip norm
    for i in range(0, N, 7):
        without = summed(everyone[everyone != i])
        diff = float((total - without).norm())
        assert diff <= clip * (1 + 1e-5)
        assert diff == pytest.approx(min(clip, float(raw[i])), rel=1e-3)


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_trainer__noise_has_calibrated_scale(data, mode) -> None:
    """Zero gradients: the update is pure noise of std lr * sigma * C / (q n) per coordinate."""
    sigma, clip, q, lr = 1.3, 0.7, 0.25, 0.1
    model = nn.Linear(100, 100)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    x = torch.randn(N, 100)
    config = DpSgdConfig(q, 1, noise_multiplier=sigma, max_grad_norm=clip)
    trainer = DpSgdTrainer(
        model, lambda ps: torch.optim.SGD(ps, lr=lr), N, config, seed=11, grad_sample_mode=mode
    )
    trainer.run(lambda m, idx: 0.0 * m(x[idx]).sum(dim=1))
    expected_std = lr * sigma * clip / (q * N)
    z = _flat(model).double().numpy() / expected_std
    k = z.size
    assert stats.kstest(z, "norm").pvalue > 1e-3
    chi2 = float((z**2).sum())
    p_two_sided = 2 * min(stats.chi2.cdf(chi2, k), stats.chi2.sf(chi2, k))
    assert p_two_sided > 1e-3
    # the test has power: a 5% error in the scale would be rejected
    chi2_off = float(((z / 1.05) ** 2).sum())
    assert stats.chi2.cdf(chi2_off, k) < 1e-6


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_trainer__secure_mode_noise_has_calibrated_scale(mode) -> None:
    sigma, clip, q, lr = 0.9, 2.0, 0.5, 1.0
    model = nn.Linear(50, 100)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    x = torch.randn(40, 50)
    config = DpSgdConfig(q, 1, noise_multiplier=sigma, max_grad_norm=clip, secure_mode=True)
    trainer = DpSgdTrainer(
        model, lambda ps: torch.optim.SGD(ps, lr=lr), 40, config, seed=0, grad_sample_mode=mode
    )
    trainer.run(lambda m, idx: 0.0 * m(x[idx]).sum(dim=1))
    z = _flat(model).double().numpy() / (lr * sigma * clip / (q * 40))
    assert stats.kstest(z, "norm").pvalue > 1e-4


def test_trainer__same_seed_same_run_and_empty_batches_count(data) -> None:
    runs = []
    for _ in range(2):
        model = _model()
        config = DpSgdConfig(0.01, 30, noise_multiplier=1.0, max_grad_norm=1.0)
        trainer = DpSgdTrainer(model, lambda ps: torch.optim.SGD(ps, lr=0.1), N, config, seed=5)
        history = trainer.run(_loss(data))
        runs.append(_flat(model))
    assert len(history) == 30 and trainer.steps_done == 30
    assert any(math.isnan(h) for h in history)  # q n = 1.2: some batches are empty
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)


def test_trainer__opacus_accountant_matches_ledger(data) -> None:
    config = DpSgdConfig(0.1, 40, noise_multiplier=1.2, max_grad_norm=1.0)
    trainer = DpSgdTrainer(_model(), lambda ps: torch.optim.SGD(ps, lr=0.1), N, config, seed=0)
    trainer.run(_loss(data))
    # Opacus's accountant saw every step (empty batches too) at the configured noise, exactly
    assert trainer.accountant.history == [(1.2, 0.1, 40)]
    assert trainer.ran() == {
        "noise_multiplier": 1.2,
        "sample_rate": 0.1,
        "steps": 40,
        "max_grad_norm": 1.0,
    }
    ledger = Ledger(1e-5)
    ledger.add_dp_sgd("net", **trainer.ledger_entry())  # type: ignore[arg-type]
    (entry,) = ledger.to_dict()["mechanisms"]
    check_ran(trainer.ran(), entry, "net")  # the ledger accounts what ran
    # the same RDP analysis; the ledger's order grid differs from Opacus's default grid
    assert ledger.accountants()["opacus_rdp"] == pytest.approx(
        trainer.opacus_epsilon(1e-5), rel=0.01
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [("noise_multiplier", 0.6), ("steps", 39), ("sample_rate", 0.11), ("max_grad_norm", 2.0)],
)
def test_check_ran__a_run_unlike_its_ledger_entry_is_refused(key, value) -> None:
    ran = {"noise_multiplier": 1.2, "sample_rate": 0.1, "steps": 40, "max_grad_norm": 1.0}
    check_ran(ran, dict(ran), "net")
    check_ran(None, {}, "net")  # no formal privacy: nothing accounted
    with pytest.raises(RuntimeError, match=f"DP-SGD run 'net' ran with {key}"):
        check_ran(ran | {key: value}, ran, "net")


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_trainer__empty_batches_still_add_the_calibrated_noise(mode) -> None:
    """Poisson sampling at q n = 0.05: almost every batch is empty, and each must still add
    noise of std sigma C / (q n), or its absence would tell that the batch was empty: after
    T steps of zero gradients the update is noise of std lr sigma C sqrt(T) / (q n)."""
    sigma, clip, q, lr, n, steps = 0.8, 1.5, 0.001, 0.01, 50, 30
    model = nn.Linear(40, 50)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    x = torch.randn(n, 40)
    config = DpSgdConfig(q, steps, noise_multiplier=sigma, max_grad_norm=clip)
    trainer = DpSgdTrainer(
        model, lambda ps: torch.optim.SGD(ps, lr=lr), n, config, seed=3, grad_sample_mode=mode
    )
    history = trainer.run(lambda m, idx: 0.0 * m(x[idx]).sum(dim=1))
    assert sum(math.isnan(h) for h in history) >= steps - 3  # (almost) all empty
    z = _flat(model).double().numpy() / (lr * sigma * clip * math.sqrt(steps) / (q * n))
    chi2, k = float((z**2).sum()), z.size
    assert 2 * min(stats.chi2.cdf(chi2, k), stats.chi2.sf(chi2, k)) > 1e-3
    assert trainer.accountant.history == [(sigma, q, steps)]


def test_seeded_generators__independent_streams() -> None:
    a, b = seeded_generators(3)
    c, _ = seeded_generators(3)
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=c))
    assert not torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"sample_rate": 0.0}, "sample rate"),
        ({"steps": 0}, "steps"),
        ({"max_grad_norm": math.inf}, "infinite clip"),
        ({"noise_multiplier": -1.0}, "noise multiplier"),
    ],
)
def test_config__rejects_bad_values(kwargs, fragment) -> None:
    values = {"sample_rate": 0.1, "steps": 5, "noise_multiplier": 1.0, "max_grad_norm": 1.0}
    values.update(kwargs)
    with pytest.raises(ConfigError, match=fragment):
        DpSgdConfig(**values).validate()


def test_trainer__no_privacy_reports_infinite_epsilon(data) -> None:
    trainer = DpSgdTrainer(
        _model(), lambda ps: torch.optim.SGD(ps, lr=0.1), N, DpSgdConfig.no_privacy(0.5, 2), seed=0
    )
    trainer.run(_loss(data))
    assert trainer.opacus_epsilon(1e-5) == math.inf
    assert trainer.ledger_entry()["noise_multiplier"] == 0.0
    assert np.isinf(trainer.ledger_entry()["max_grad_norm"])  # type: ignore[arg-type]
