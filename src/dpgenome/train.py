"""Training loop of the window model, on :class:`dpgenome.dpsgd.DpSgdTrainer` (Opacus).

Private training is DP-SGD (Abadi et al. 2016, CCS) exactly as the ``dp-sgd`` mechanism of the
ledger: Poisson sampling at an explicit sample rate from a seeded generator, each individual's
gradient over *all* window parameters clipped to ``max_grad_norm`` as one vector, one Gaussian
noise draw of std ``noise_multiplier * max_grad_norm`` per step, a fixed number of steps. The
per-sample norms come from the closed-form norm sampler of :mod:`dpgenome.model` (ghost
clipping, Opacus's fast gradient clipping: the clipped sum without any per-sample gradient
held) or, with ``grad_sample_mode="hooks"``, from its closed-form grad sampler; the two give
the same run (``bench/dpsgd.py``: 0.28 against 1.49 s per step at 960 x 79,645, Opacus's
generic functorch path 2.40). The accounting inputs come from the calibrated ledger, never
from the data.

``private=False`` ("no formal privacy", ``--epsilon inf``) runs the same loop without clipping
or noise. Public-panel pretraining uses that mode on public data (no privacy cost).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from dpgenome.dpsgd import DpSgdConfig, DpSgdTrainer
from dpgenome.errors import ConfigError
from dpgenome.model import WindowModel


@dataclass(frozen=True)
class TrainConfig:
    """``steps`` Adam steps at Poisson sample rate ``sample_rate``.

    ``noise_multiplier=None`` = no clipping, no noise (public pretraining or ``--epsilon
    inf``). ``trainable="bias"`` trains only the per-SNP biases (allele-frequency terms) and
    keeps the LD weights fixed: the low-dimensional DP fine-tune after public pretraining.
    """

    steps: int
    sample_rate: float
    lr: float = 0.02
    noise_multiplier: float | None = None
    max_grad_norm: float = 1.0
    trainable: Literal["all", "bias"] = "all"
    secure_mode: bool = False
    #: per-sample gradient norms by ghost clipping (two backward passes, no per-sample
    #: gradient held: :func:`dpgenome.model.grouped_masked_linear_norm_sample`) or by Opacus
    #: hooks (each individual's gradient materialised, ~0.6 GB per step at 96 individuals x
    #: 80k SNPs). The same clipped sum and noise either way (tests/test_train.py)
    grad_sample_mode: Literal["ghost", "hooks"] = "ghost"

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if not 0.0 < self.sample_rate <= 1.0:
            raise ConfigError(f"sample_rate must be in (0, 1], got {self.sample_rate}")
        if self.noise_multiplier is not None and not self.noise_multiplier >= 0:
            raise ConfigError(f"noise_multiplier must be >= 0, got {self.noise_multiplier}")
        if not self.max_grad_norm > 0:
            raise ConfigError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.trainable not in ("all", "bias"):
            raise ConfigError(f"trainable must be 'all' or 'bias', got {self.trainable!r}")
        if self.grad_sample_mode not in ("ghost", "hooks"):
            raise ConfigError(
                f"grad_sample_mode must be 'ghost' or 'hooks', got {self.grad_sample_mode!r}"
            )

    @property
    def private(self) -> bool:
        return self.noise_multiplier is not None

    def dpsgd(self) -> DpSgdConfig:
        if not self.private:
            return DpSgdConfig.no_privacy(self.sample_rate, self.steps)
        return DpSgdConfig(
            self.sample_rate,
            self.steps,
            float(self.noise_multiplier or 0.0),
            self.max_grad_norm,
            private=True,
            secure_mode=self.secure_mode,
        )


@dataclass
class TrainReport:
    steps: int
    sample_rate: float
    noise_multiplier: float | None
    max_grad_norm: float | None
    seconds: float
    #: mean per-SNP negative log-likelihood of each step's batch (NaN for an empty batch)
    losses: list[float] = field(default_factory=list)
    #: share of per-sample gradients that were clipped, over all steps (private runs only)
    clipped_fraction: float | None = None
    #: Opacus's own RDP epsilon of this run at the ledger's delta (cross-check), if asked
    opacus_epsilon: float | None = None
    #: the run as Opacus did it (:meth:`dpgenome.dpsgd.DpSgdTrainer.ran`; None without
    #: privacy), which a release checks against its ledger (:func:`dpgenome.dpsgd.check_ran`)
    ran: dict[str, float | int] | None = None


def set_trainable(model: WindowModel, trainable: str) -> None:
    for p in model.parameters():
        p.requires_grad_(trainable == "all")
    for bias in model.biases():
        bias.requires_grad_(True)


def train(
    model: WindowModel,
    dosages: np.ndarray,
    config: TrainConfig,
    *,
    seed: int,
    delta: float | None = None,
    ancestry: np.ndarray | None = None,
) -> TrainReport:
    """Fit ``model`` to ``dosages`` (samples x variants, NaN = missing) in place; a model
    with ancestry reads each individual's scores ``ancestry`` (:meth:`WindowModel.prepare`),
    part of the individual's row (clipped with it under DP)."""
    set_trainable(model, config.trainable)
    x_all = model.prepare(dosages, ancestry)
    per_snp = float(max(1, model.layout.n_variants))
    start = time.perf_counter()
    trainer = DpSgdTrainer(
        model,
        lambda ps: torch.optim.Adam([p for p in ps if p.requires_grad], lr=config.lr),
        x_all.shape[0],
        config.dpsgd(),
        seed=seed,
        grad_sample_mode=config.grad_sample_mode,
    )
    clipped = [0, 0]

    def loss_fn(module: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
        return module(x_all[idx])

    def count_clipped(step: int, loss: float) -> None:
        if not config.private or math.isnan(loss):
            return
        norms = trainer.per_sample_grad_norms()
        clipped[0] += int((norms > config.max_grad_norm).sum())
        clipped[1] += len(norms)

    try:
        losses = [v / per_snp for v in trainer.run(loss_fn, count_clipped)]
    finally:
        close = getattr(trainer.module, "_close", None)
        if config.private and close is not None:
            close()
        for p in model.parameters():
            p.requires_grad_(True)
    eps = trainer.opacus_epsilon(delta) if (delta is not None and config.private) else None
    ran = trainer.ran()  # what Opacus did, not what it was asked: checked against the ledger
    return TrainReport(
        config.steps if ran is None else int(ran["steps"]),
        config.sample_rate if ran is None else float(ran["sample_rate"]),
        None if ran is None else float(ran["noise_multiplier"]),
        None if ran is None else float(ran["max_grad_norm"]),
        time.perf_counter() - start,
        losses,
        clipped[0] / clipped[1] if clipped[1] else None,
        eps,
        ran,
    )


def per_sample_gradients(
    model: WindowModel, dosages: np.ndarray, ancestry: np.ndarray | None = None
) -> list[torch.Tensor]:
    """Per-sample gradients of every trainable parameter through Opacus (our grad sampler),
    for tests and diagnostics: a list of ``(B, *param.shape)`` tensors."""
    from opacus import GradSampleModule

    gsm = GradSampleModule(model, loss_reduction="sum")
    try:
        model.zero_grad()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            gsm(model.prepare(dosages, ancestry)).sum().backward()
        out = [
            p.grad_sample.detach().clone()  # type: ignore[attr-defined]
            for p in model.parameters()
            if p.requires_grad
        ]
        for p in model.parameters():
            p.grad_sample = None  # type: ignore[attr-defined]
    finally:
        gsm._close()
    return out
