"""Noise multipliers found before training, so that a release's epsilon meets its target.

:func:`calibrate` finds noise multipliers *before* training so that the composed epsilon
is at most the target (bisection on a common noise scale); ``--epsilon inf`` gives a
:class:`~dpgenome.accountant.Ledger` in "no formal privacy" mode (no noise, no clipping).

A plan lists the mechanisms to calibrate: :class:`PlannedDpSgd` and :class:`PlannedGaussian`
(noise multiplier ``scale / weight``, one common scale for all of them) and
:class:`PlannedPure` (pure-DP steps with a fixed epsilon each, or a fixed fraction of the
target).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dpgenome.accountant import Ledger, Reported
from dpgenome.errors import BudgetError, ConfigError
from dpgenome.mechanisms import EPSILON_KINDS
from dpgenome.privacy_loss import INTEGER_ORDERS, PLD_INTERVAL, pld_epsilon, rdp_epsilon

# ---------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class PlannedDpSgd:
    """A DP-SGD run to calibrate: ``sigma = scale / weight`` (more weight, less noise)."""

    name: str
    sample_rate: float
    steps: int
    weight: float = 1.0
    max_grad_norm: float | None = None


@dataclass(frozen=True)
class PlannedGaussian:
    """A Gaussian release to calibrate: ``sigma = scale / weight``."""

    name: str
    count: int = 1
    sensitivity: float = 1.0
    weight: float = 1.0
    note: str = ""  # GaussianMechanism.note
    replace_ratio: float = 2.0  # GaussianMechanism.replace_ratio


@dataclass(frozen=True)
class PlannedPure:
    """``count`` pure-DP steps with a fixed budget each: ``epsilon``, or ``fraction`` of the
    target; ``kind``: ``pure-dp`` (generic), ``exponential``
    (:class:`~dpgenome.mechanisms.ExponentialMechanism`) or ``laplace``
    (:class:`~dpgenome.mechanisms.LaplaceMechanism`)."""

    name: str
    epsilon: float | None = None
    fraction: float | None = None
    count: int = 1
    kind: str = "pure-dp"


Planned = PlannedDpSgd | PlannedGaussian | PlannedPure


def _build(
    plan: Sequence[Planned], scale: float, target: float, ledger_kwargs: dict[str, Any]
) -> Ledger:
    ledger = Ledger(**ledger_kwargs)
    for p in plan:
        if isinstance(p, PlannedDpSgd):
            ledger.add_dp_sgd(
                p.name, scale / p.weight, p.sample_rate, p.steps, max_grad_norm=p.max_grad_norm
            )
        elif isinstance(p, PlannedGaussian):
            ledger.add_gaussian(
                p.name, scale / p.weight, p.count, p.sensitivity, p.note, p.replace_ratio
            )
        else:
            eps = p.epsilon if p.epsilon is not None else float(p.fraction or 0.0) * target
            ledger.add_epsilon_steps(p.kind, p.name, eps, p.count)
    return ledger


def calibrate(
    target_epsilon: float,
    delta: float,
    plan: Sequence[Planned],
    *,
    secure_mode: bool = False,
    reported: Reported = "max",
    pld_interval: float = PLD_INTERVAL,
    rel_tol: float = 5e-3,
) -> Ledger:
    """Noise multipliers for ``plan`` so that the composed epsilon at ``delta`` is at most
    ``target_epsilon`` (never above; within ``rel_tol`` of the smallest common noise scale).

    Every Gaussian/DP-SGD entry gets ``sigma_i = s / weight_i``; the common scale ``s`` is
    found by bisection on ``log s`` (epsilon is decreasing in ``s``) using PLD at a coarse
    interval (10x ``pld_interval``) for speed, then verified with the ledger's own accounting
    and nudged up until it holds. Pure steps keep their fixed epsilon. ``target_epsilon =
    inf`` returns a no-formal-privacy ledger with every noise multiplier 0.
    """
    if not plan:
        raise ConfigError("nothing to calibrate: the plan is empty")
    names = [p.name for p in plan]
    if len(set(names)) != len(names):
        raise ConfigError(f"plan has duplicate mechanism names: {names}")
    for p in plan:
        if isinstance(p, PlannedDpSgd | PlannedGaussian) and not (
            p.weight > 0 and math.isfinite(p.weight)
        ):
            raise ConfigError(f"plan entry {p.name!r}: weight must be > 0, got {p.weight!r}")
        if isinstance(p, PlannedPure) and (p.epsilon is None) == (p.fraction is None):
            raise ConfigError(f"plan entry {p.name!r}: give exactly one of epsilon or fraction")
        if isinstance(p, PlannedPure) and p.kind not in EPSILON_KINDS:
            raise ConfigError(
                f"plan entry {p.name!r}: kind must be one of {sorted(EPSILON_KINDS)}, "
                f"got {p.kind!r}"
            )
    kwargs: dict[str, Any] = {
        "delta": delta,
        "secure_mode": secure_mode,
        "reported": reported,
        "pld_interval": pld_interval,
    }
    if (
        isinstance(target_epsilon, int | float)
        and math.isinf(target_epsilon)
        and target_epsilon > 0
    ):
        ledger = Ledger(**kwargs, no_formal_privacy=True)
        for p in plan:
            if isinstance(p, PlannedDpSgd):
                ledger.add_dp_sgd(p.name, 0.0, p.sample_rate, p.steps, max_grad_norm=math.inf)
            elif isinstance(p, PlannedGaussian):
                ledger.add_gaussian(p.name, 0.0, p.count, p.sensitivity, p.note, p.replace_ratio)
            else:
                ledger.add_epsilon_steps(p.kind, p.name, math.inf, p.count)
        return ledger
    if not (isinstance(target_epsilon, int | float) and target_epsilon > 0):
        raise ConfigError(f"target epsilon must be > 0 or inf, got {target_epsilon!r}")
    kwargs["target_epsilon"] = float(target_epsilon)

    if not any(isinstance(p, PlannedDpSgd | PlannedGaussian) for p in plan):
        ledger = _build(plan, 1.0, target_epsilon, kwargs)
        if ledger.epsilon() > target_epsilon:
            raise BudgetError(
                f"the pure-DP steps alone spend epsilon {ledger.epsilon():.4g} > target "
                f"{target_epsilon:g} at delta {delta:g}"
            )
        return ledger

    def rdp_int_at(scale: float) -> float:
        mechs = _build(plan, scale, target_epsilon, kwargs).mechanisms
        return rdp_epsilon(mechs, delta, INTEGER_ORDERS)[0]

    def pld_at(scale: float) -> float:  # coarse interval: fast, still pessimistic
        return pld_epsilon(_build(plan, scale, target_epsilon, kwargs).mechanisms, delta, coarse)

    def final_at(scale: float) -> float:
        return _build(plan, scale, target_epsilon, kwargs).epsilon()

    def refine_at(scale: float) -> float:  # the reported rule with a coarse PLD
        mechs = _build(plan, scale, target_epsilon, kwargs).mechanisms
        if reported == "pld":
            return pld_epsilon(mechs, delta, coarse)
        rdp = rdp_epsilon(mechs, delta)[0]
        return rdp if reported == "rdp" else max(rdp, pld_epsilon(mechs, delta, coarse))

    coarse = min(10 * pld_interval, 0.01)
    huge = 1e4
    if final_at(huge) > target_epsilon:
        raise BudgetError(
            f"target epsilon {target_epsilon:g} at delta {delta:g} cannot be met even with "
            f"noise multiplier {huge:g}: the pure-DP steps or the plan (steps, sample rates) "
            "spend too much; lower the pure-DP shares or the number of steps"
        )
    # 1. RDP on integer orders only (closed form, fast): an upper bound of the full RDP, so
    #    its solution is feasible for the full grid; 2. refine with the reported accounting
    #    (coarse PLD for "pld") between a third below it and it.
    scale = _smallest_scale(rdp_int_at, target_epsilon, 1.0, 1e-2)
    refine = refine_at
    if refine(scale) > target_epsilon:  # possible when PLD exceeds RDP
        scale = _smallest_scale(refine, target_epsilon, scale, rel_tol)
    else:
        scale = _bisect(refine, target_epsilon, scale / 1.5, scale, rel_tol)
    for _ in range(200):
        ledger = _build(plan, scale, target_epsilon, kwargs)
        if ledger.epsilon() <= target_epsilon:
            return ledger
        scale *= 1.0 + rel_tol
    raise BudgetError(
        f"calibration to epsilon {target_epsilon:g} did not converge"
    )  # pragma: no cover


def _bisect(
    eps_at: Callable[[float], float], target: float, lo: float, hi: float, rel_tol: float
) -> float:
    """Bisection on ``log scale`` in ``[lo, hi]`` (``hi`` feasible); returns a feasible scale."""
    if eps_at(lo) <= target:
        return lo
    while hi / lo > 1.0 + rel_tol:
        mid = math.sqrt(lo * hi)
        if eps_at(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def _smallest_scale(
    eps_at: Callable[[float], float], target: float, start: float, rel_tol: float
) -> float:
    """Bisection on ``log scale`` for the smallest noise scale with ``eps_at(scale) <= target``
    (``eps_at`` decreasing), to relative precision ``rel_tol``; returns a feasible scale."""
    lo, hi = start, start
    while eps_at(hi) > target:
        lo, hi = hi, hi * 2.0
    while lo == hi or (eps_at(lo) <= target and lo > 1e-3):
        hi, lo = lo, lo / 2.0
    return _bisect(eps_at, target, lo, hi, rel_tol)
