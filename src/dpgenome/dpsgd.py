"""DP-SGD with Opacus, every accounting input explicit: Poisson sampling at a given sample
rate, a fixed number of steps, explicit generators, ``secure_mode`` recorded.

:class:`DpSgdTrainer` assembles Opacus's parts directly -- ``GradSampleModule`` (per-sample
gradients; models may register fast grad samplers with
``opacus.grad_sample.register_grad_sampler``), ``DPOptimizer`` (flat clipping of each
individual's gradient over *all* parameters to ``max_grad_norm``, one Gaussian noise draw of
std ``noise_multiplier * max_grad_norm`` per step, division by the expected batch size
``q * n``), ``UniformWithReplacementSampler`` (Poisson sampling: each individual joins each
step independently with probability ``q``) and ``RDPAccountant``. It does not call
``PrivacyEngine.make_private``, which derives the sample rate from the data loader's length
and truncates the expected batch size to an integer (hidden accounting inputs).

This is DP-SGD of Abadi et al. 2016 with Poisson subsampling as analysed by Mironov, Talwar &
Zhang 2019 (the sampled Gaussian mechanism), i.e. exactly the ``dp-sgd`` mechanism of
:mod:`dpgenome.accountant`. The model sees individuals only through ``loss_fn(module, idx)``,
which must return one loss per sampled individual (each individual = one row).

``private=False`` (``--epsilon inf``) runs the *same loop* -- same sampler, same generator,
same division by the expected batch size -- with a plain optimizer: no clipping, no noise.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from opacus.accountants import RDPAccountant
from opacus.grad_sample import GradSampleModule, GradSampleModuleFastGradientClipping
from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
from opacus.utils.fast_gradient_clipping_utils import DPTensorFastGradientClipping
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from torch import nn

from dpgenome.errors import ConfigError

#: ``loss_fn(module, idx) -> per-sample losses`` (shape ``[len(idx)]``)
LossFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class DpSgdConfig:
    """One DP-SGD run. ``noise_multiplier`` comes from :func:`dpgenome.calibrate.calibrate`.

    ``private=False`` ignores ``noise_multiplier`` and ``max_grad_norm`` (no formal privacy).
    """

    sample_rate: float
    steps: int
    noise_multiplier: float
    max_grad_norm: float
    private: bool = True
    secure_mode: bool = False

    def validate(self) -> DpSgdConfig:
        if not 0.0 < self.sample_rate <= 1.0:
            raise ConfigError(f"DP-SGD sample rate must be in (0, 1], got {self.sample_rate!r}")
        if int(self.steps) != self.steps or self.steps < 1:
            raise ConfigError(f"DP-SGD steps must be an integer >= 1, got {self.steps!r}")
        if self.private:
            if not (self.noise_multiplier >= 0 and math.isfinite(self.noise_multiplier)):
                raise ConfigError(
                    "DP-SGD noise multiplier must be finite and >= 0, "
                    f"got {self.noise_multiplier!r}"
                )
            if not (self.max_grad_norm > 0 and math.isfinite(self.max_grad_norm)):
                raise ConfigError(
                    f"DP-SGD max_grad_norm must be finite and > 0, got {self.max_grad_norm!r} "
                    "(an infinite clip is no privacy: use DpSgdConfig.no_privacy)"
                )
        return self

    @classmethod
    def no_privacy(cls, sample_rate: float, steps: int) -> DpSgdConfig:
        return cls(sample_rate, steps, 0.0, math.inf, private=False)


def seeded_generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Two independent torch generators (Poisson sampling, noise) derived from ``seed``."""
    s_sample, s_noise = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint64)
    g_sample = torch.Generator().manual_seed(int(s_sample) & 0x7FFF_FFFF_FFFF_FFFF)
    g_noise = torch.Generator().manual_seed(int(s_noise) & 0x7FFF_FFFF_FFFF_FFFF)
    return g_sample, g_noise


def _urandom_normal(shape: torch.Size, std: float, dtype: torch.dtype) -> torch.Tensor:
    """Gaussian noise from the OS CSPRNG (``os.urandom``): four standard normals summed and
    halved, the floating-point-attack mitigation of Holohan & Braghin 2021 that Opacus's
    ``secure_mode`` uses. The four come from two Box-Muller pairs on 53-bit uniforms, both
    outputs of each pair (independent normals): half the bytes of one output per pair."""
    k = int(np.prod(shape)) if len(shape) else 1
    raw = np.frombuffer(os.urandom(8 * 4 * k), dtype=np.uint64).reshape(2, 2, k)
    u = ((raw >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)  # in (0, 1)
    radius = np.sqrt(-2.0 * np.log(u[:, 0]))
    angle = 2.0 * np.pi * u[:, 1]
    noise = std * (radius * (np.cos(angle) + np.sin(angle))).sum(axis=0) / 2.0
    return torch.from_numpy(noise.reshape(tuple(shape))).to(dtype)


class _UrandomPoissonSampler:
    """Poisson sampling from the OS CSPRNG (secure mode): each of ``n`` individuals joins
    each of ``steps`` batches independently with probability ``q``."""

    def __init__(self, n: int, q: float, steps: int) -> None:
        self.n, self.q, self.steps = n, q, steps

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.steps):
            raw = np.frombuffer(os.urandom(8 * self.n), dtype=np.uint64)
            u = (raw >> np.uint64(11)).astype(np.float64) / float(1 << 53)
            yield np.flatnonzero(u < self.q).tolist()


class _UrandomNoise:
    """Mixin for Opacus's DP optimizers: noise from the OS CSPRNG, since ``torchcsprng``
    (which Opacus's own secure mode needs) is not installable for torch 2.13."""

    params: list[nn.Parameter]
    noise_multiplier: float
    max_grad_norm: float

    def add_noise(self) -> None:
        std = self.noise_multiplier * self.max_grad_norm
        for p in self.params:
            summed: torch.Tensor = p.summed_grad  # type: ignore[attr-defined]
            noise = (
                torch.zeros_like(summed)
                if std == 0
                else _urandom_normal(summed.shape, std, summed.dtype)
            )
            p.grad = (summed + noise).view_as(p)


class _SecureDPOptimizer(_UrandomNoise, DPOptimizer):
    pass


class _SecureDPOptimizerFGC(_UrandomNoise, DPOptimizerFastGradientClipping):
    pass


class DpSgdTrainer:
    """A model, its (DP) optimizer, a Poisson sampler and Opacus's RDP accountant.

    >>> trainer = DpSgdTrainer(model, lambda ps: torch.optim.Adam(ps, lr=1e-2), n, config, seed=0)
    >>> losses = trainer.run(lambda module, idx: per_sample_loss(module, data[idx]))

    ``trainer.module`` is the ``GradSampleModule`` (private) or the model itself; use
    ``trainer.model`` for the underlying ``nn.Module`` after training, and :meth:`close` to
    remove Opacus's hooks. ``grad_sample_mode``: ``"hooks"`` (per-sample gradients from
    registered grad samplers, materialised), ``"functorch"`` (Opacus's generic path) or
    ``"ghost"`` (Opacus's fast gradient clipping: per-sample *norms* from registered norm
    samplers, then a second backward pass on the clip-weighted loss; Li et al. 2022).
    """

    def __init__(
        self,
        model: nn.Module,
        make_optimizer: OptimizerFactory,
        n: int,
        config: DpSgdConfig,
        *,
        seed: int,
        grad_sample_mode: str = "hooks",
    ) -> None:
        self.config = config.validate()
        if n < 1:
            raise ConfigError(f"DP-SGD needs at least one individual, got n = {n}")
        self.n = int(n)
        self.model = model
        self.expected_batch_size = config.sample_rate * n
        g_sample, g_noise = seeded_generators(seed)
        self.sampler: Iterable[list[int]] = UniformWithReplacementSampler(
            num_samples=self.n,
            sample_rate=config.sample_rate,
            generator=g_sample,
            steps=config.steps,
        )
        if config.secure_mode and config.private:
            self.sampler = _UrandomPoissonSampler(self.n, config.sample_rate, config.steps)
        self.accountant = RDPAccountant()
        self.module: nn.Module
        self.optimizer: torch.optim.Optimizer
        if grad_sample_mode not in ("hooks", "functorch", "ghost"):
            raise ConfigError(
                f"grad_sample_mode must be hooks, functorch or ghost, got {grad_sample_mode!r}"
            )
        self.grad_sample_mode = grad_sample_mode
        if config.private:
            dp_opt: DPOptimizer
            common = {
                "noise_multiplier": config.noise_multiplier,
                "max_grad_norm": config.max_grad_norm,
                "expected_batch_size": self.expected_batch_size,
                "loss_reduction": "mean",
                "generator": None if config.secure_mode else g_noise,
                "secure_mode": config.secure_mode,
            }
            if grad_sample_mode == "ghost":
                self.module = GradSampleModuleFastGradientClipping(
                    model,
                    batch_first=True,
                    loss_reduction="mean",
                    max_grad_norm=config.max_grad_norm,
                    use_ghost_clipping=True,
                )
                fgc = (
                    _SecureDPOptimizerFGC if config.secure_mode else DPOptimizerFastGradientClipping
                )
                dp_opt = fgc(make_optimizer(self.module.parameters()), **common)
            else:
                self.module = GradSampleModule(
                    model,
                    batch_first=True,
                    loss_reduction="mean",
                    force_functorch=grad_sample_mode == "functorch",
                )
                opt_cls = _SecureDPOptimizer if config.secure_mode else DPOptimizer
                dp_opt = opt_cls(make_optimizer(self.module.parameters()), **common)
            dp_opt.attach_step_hook(
                self.accountant.get_optimizer_hook_fn(sample_rate=config.sample_rate)
            )
            self.optimizer = dp_opt
        else:
            self.module = model
            self.optimizer = make_optimizer(model.parameters())
        self.steps_done = 0

    # -------------------------------------------------------------- the loop
    def batches(self) -> Iterator[torch.Tensor]:
        """The Poisson batches: exactly ``config.steps`` index tensors (possibly empty)."""
        for idx in self.sampler:
            yield torch.as_tensor(idx, dtype=torch.long)

    def step(self, idx: torch.Tensor, loss_fn: LossFn) -> float:
        """One optimisation step on the individuals ``idx``; returns the mean loss (NaN for
        an empty batch, which still adds noise and counts as a step)."""
        self.optimizer.zero_grad(set_to_none=True)
        if len(idx) == 0:
            if self.config.private:
                for p in self.module.parameters():
                    if not p.requires_grad:
                        continue
                    if self.grad_sample_mode == "ghost":
                        p.grad = torch.zeros_like(p)
                    else:
                        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)  # type: ignore[attr-defined]
                self.optimizer.step()
            self.steps_done += 1
            return float("nan")
        losses = loss_fn(self.module, idx)
        if losses.shape != (len(idx),):
            raise ValueError(
                f"loss_fn must return one loss per individual, got {tuple(losses.shape)}"
            )
        with warnings.catch_warnings():
            # Opacus's hooks on a first layer whose input needs no gradient: harmless
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            if self.config.private and self.grad_sample_mode == "ghost":
                # two backward passes: per-sample norms (ghost), then the clipped sum
                assert isinstance(self.optimizer, DPOptimizerFastGradientClipping)
                DPTensorFastGradientClipping(
                    self.module,
                    self.optimizer,
                    losses,
                    "mean",
                ).backward()
            elif self.config.private:
                losses.mean().backward()  # Opacus rescales per-sample grads by the batch size
            else:
                (losses.sum() / self.expected_batch_size).backward()
        self.optimizer.step()
        self.steps_done += 1
        return float(losses.detach().mean())

    def run(
        self, loss_fn: LossFn, callback: Callable[[int, float], None] | None = None
    ) -> list[float]:
        """All ``config.steps`` steps; returns the mean loss of each step."""
        self.module.train()
        history: list[float] = []
        for t, idx in enumerate(self.batches()):
            history.append(self.step(idx, loss_fn))
            if callback is not None:
                callback(t, history[-1])
        self.module.eval()
        return history

    def close(self) -> None:
        """Remove Opacus's hooks from the model (after training; the model stays usable)."""
        close = getattr(self.module, "_close", None)
        if self.config.private and close is not None:
            close()

    # -------------------------------------------------------------- accounting
    def opacus_epsilon(self, delta: float) -> float:
        """Epsilon spent so far by Opacus's own RDP accountant (a cross-check of the ledger;
        ``inf`` without privacy)."""
        if not self.config.private:
            return math.inf
        if self.steps_done == 0:
            return 0.0
        with warnings.catch_warnings():
            # "optimal order is the largest alpha": Opacus's default grid, a valid bound
            warnings.simplefilter("ignore", UserWarning)
            return float(self.accountant.get_epsilon(delta=delta))

    def ran(self) -> dict[str, float | int] | None:
        """What this run did, read back from Opacus rather than from its configuration: the
        noise multiplier, sample rate and steps its accountant recorded at every optimizer
        step, and its DP optimizer's clipping norm (``None`` without privacy). A release
        checks these against its ledger (:func:`check_ran`)."""
        if not self.config.private:
            return None
        assert isinstance(self.optimizer, DPOptimizer)
        history = self.accountant.history  # [(noise multiplier, sample rate, steps)]
        if len({(sigma, q) for sigma, q, _ in history}) > 1:
            raise RuntimeError(f"the DP-SGD run changed its noise or sample rate: {history}")
        sigma, q = history[0][:2] if history else (self.optimizer.noise_multiplier, math.nan)
        return {
            "noise_multiplier": float(sigma),
            "sample_rate": float(q),
            "steps": int(sum(steps for _, _, steps in history)),
            "max_grad_norm": float(self.optimizer.max_grad_norm),
        }

    def ledger_entry(self) -> dict[str, float | int | None]:
        """Keyword arguments of :meth:`dpgenome.accountant.Ledger.add_dp_sgd` for this run."""
        c = self.config
        return {
            "noise_multiplier": c.noise_multiplier if c.private else 0.0,
            "sample_rate": c.sample_rate,
            "steps": c.steps,
            "max_grad_norm": c.max_grad_norm if c.private else math.inf,
        }

    def per_sample_grad_norms(self) -> torch.Tensor:
        """L2 norms (over all parameters) of the per-sample gradients of the last backward
        pass, before clipping (for diagnostics and tests; private mode only)."""
        if self.grad_sample_mode == "ghost":
            norms: torch.Tensor = self.module.per_sample_gradient_norms  # type: ignore[assignment]
            return norms.detach()
        # per parameter: no concatenated copy of every per-sample gradient
        grads = [
            getattr(p, "grad_sample", None) for p in self.module.parameters() if p.requires_grad
        ]
        squares = [g.reshape(len(g), -1).norm(dim=1).square() for g in grads if g is not None]
        return torch.stack(squares).sum(dim=0).sqrt()


def check_ran(
    ran: Mapping[str, float | int] | None, accounted: Mapping[str, Any], name: str
) -> None:
    """Refuse a DP-SGD run that did not do what the ledger accounts (``accounted``: its
    mechanism's noise multiplier, sample rate, steps and clipping norm): a run with less noise
    or more steps than the ledger states would make every epsilon printed about it wrong.
    ``ran``: :meth:`DpSgdTrainer.ran` (``None``: no formal privacy, nothing accounted)."""
    if ran is None:
        return
    for key in ("noise_multiplier", "sample_rate", "steps", "max_grad_norm"):
        want = accounted.get(key)
        if want is None or not math.isclose(float(ran[key]), float(want), rel_tol=1e-9):
            raise RuntimeError(
                f"DP-SGD run {name!r} ran with {key} {ran[key]!r}, but the privacy ledger "
                f"accounts {want!r}: nothing may be released from it (a bug; please report it)"
            )
