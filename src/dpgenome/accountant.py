"""The privacy ledger of a release: every mechanism, composed tightly, reported two ways.

A :class:`Ledger` lists every mechanism that touched the private cohort in one release:

* ``dp-sgd``: a DP-SGD run = the Poisson-subsampled Gaussian mechanism (sample rate ``q``,
  noise multiplier ``sigma``) applied ``steps`` times (Abadi et al. 2016, CCS);
* ``gaussian``: ``count`` Gaussian queries, each of L2 sensitivity ``sensitivity`` and noise
  standard deviation ``noise_multiplier * sensitivity`` (a vector query released at once is
  one query whose sensitivity is the L2 sensitivity of the whole vector);
* ``pure-dp``: ``count`` ``epsilon``-DP steps of any kind;
* ``exponential``: ``count`` exponential mechanisms (or Gumbel report-noisy-max, the same
  distribution) of parameter ``epsilon``: ``epsilon``-DP and, more tightly,
  ``epsilon``-bounded-range (the log-likelihood ratio of two neighbouring inputs spans at most
  ``epsilon`` over the outputs; Durfee & Rogers 2019), which the RDP accountant uses;
* ``laplace``: ``count`` Laplace queries, each of sensitivity ``s`` with noise scale
  ``s / epsilon`` (``noise_multiplier = 1 / epsilon``): ``epsilon``-DP each, accounted by the
  Laplace mechanism's own (tighter) privacy loss rather than the generic pure-DP one.

The unit of privacy is the **individual** (one row of the cohort) under add/remove-one
neighbouring. Relatives are separate individuals: protection of a family is group privacy.
Between cohorts of the same size that differ by *replacing* one individual,
:meth:`Ledger.replace_one` accounts the same mechanisms again, by both accountants: every
contribution then moves by up to twice its bound (a Gaussian's multiplier halves -- a
histogram's shrinks by sqrt(2), as one count moves from one bin to another -- an
``epsilon`` step doubles), and DP-SGD is the Poisson-subsampled Gaussian's replace-one pair
``(1 - q) N(0, s^2) + q N(-+1, s^2)`` (dp-accounting's REPLACE_ONE for the PLD; its Renyi
divergence integrated numerically for the RDP figure, which Opacus does not give).

Composition is tight, by two independent accountants:

``opacus_rdp``
    Rényi DP (Mironov 2017). Each mechanism's RDP curve is added over a grid of orders:
    DP-SGD by Opacus's ``compute_rdp`` (the sampled Gaussian mechanism of Mironov, Talwar &
    Zhang 2019), a Gaussian release as ``compute_rdp`` with ``q = 1, steps = count``, and a
    pure ``eps``-DP step by the exact Rényi divergence of randomised response with parameter
    ``eps`` -- the dominating pair of every ``eps``-DP mechanism (Kairouz, Oh & Viswanath 2015),
    hence an upper bound; it is never above the zCDP bound ``alpha*eps^2/2`` (Bun & Steinke
    2016) nor ``eps``; an ``eps``-bounded-range step by the exact worst case over the
    two-point pairs whose privacy loss takes the values ``t`` and ``t - eps`` (every
    bounded-range pair is a mixture of these: the Rényi moment is convex in the likelihood
    ratio), never above Cesar & Rogers' (2021) zCDP bound ``alpha*eps^2/8`` -- a quarter of
    the generic one; a Laplace query by its exact RDP (Mironov 2017, Prop. 6). The sum is
    converted to ``(eps, delta)`` by Opacus's ``get_privacy_spent`` (Balle et al. 2020, Thm 21).
``pld``
    Privacy loss distributions (Koskela et al. 2020; Doroshenko et al. 2022) by Google's
    ``dp_accounting``: DP-SGD as ``from_gaussian_mechanism(sigma, sampling_prob=q)``
    self-composed ``steps`` times (what ``PLDAccountant`` does for a self-composed
    ``PoissonSampledDpEvent(GaussianDpEvent)``), a Gaussian release with standard deviation
    ``sigma / sqrt(count)``, and a pure step by ``from_privacy_parameters(eps, 0)`` (the
    randomised-response PLD: a ``LaplaceDpEvent`` would *under*-account a general
    ``eps``-DP mechanism because Laplace is not its worst case), self-composed ``count``
    times; an exponential mechanism by the dominating pair of every ``eps``-bounded-range
    mechanism (:func:`bounded_range_loss_cdf`, built by dp_accounting's ``create_from_cdf``;
    dp_accounting has no bounded-range PLD of its own, so this pair is derived here and
    tested against real exponential mechanisms); a Laplace query by
    ``from_laplace_mechanism(1 / eps)``. All PLDs are pessimistic
    estimates with value discretisation interval ``pld_interval`` (default ``1e-4``): losses
    are rounded up, so the reported epsilon is an upper bound that exceeds the exact one by
    at most about ``steps * pld_interval`` in the worst case and far less in practice:
    at q = 0.01, sigma = 4, T = 10,000, delta = 1e-5 (Abadi et al. 2016) the epsilon is
    0.94700 at ``1e-4`` vs 0.94687 at ``2e-5`` and 0.96005 at ``1e-3``.

The released epsilon is ``max(opacus_rdp, pld)`` by default (``reported="max"``): both are
valid upper bounds, PLD is usually the tighter, and taking the larger guards the release against a
defect in either implementation. ``reported="pld"`` (justified: PLD with pessimistic
rounding is itself a rigorous upper bound) or ``"rdp"`` may be chosen and is recorded --
not ``"pld"`` in secure mode, whose Gaussian steps are discrete Gaussians: their RDP is the
continuous Gaussian's (Canonne, Kamath & Steinke 2020), their PLD not proven to be.

:func:`calibrate` finds noise multipliers *before* training so that the composed epsilon
is at most the target (bisection on a common noise scale); ``--epsilon inf`` gives a
ledger in "no formal privacy" mode (no noise, no clipping) labelled :data:`NO_PRIVACY_LABEL`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Literal, TypeGuard

import numpy as np
from dp_accounting import NeighboringRelation
from dp_accounting.pld import common as pld_common
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from opacus.accountants.analysis import rdp as opacus_rdp
from scipy.special import logsumexp

from dpgenome.errors import BudgetError, ConfigError

#: the label used everywhere (dossier, CLI, ledger.json) for a release without a guarantee
NO_PRIVACY_LABEL = "no formal privacy"

#: RDP orders: a sparse set of fractional orders (Opacus's series for them is slow when the
#: sample rate is large), every integer order up to 64 (closed form) and large ones for tiny
#: epsilons. Missing an optimal order only loosens the bound (never invalidates it).
_FRACTIONAL = (1.02, 1.05, 1.1, 1.15, 1.2, 1.3, 1.4, 1.5, 1.6, 1.75, 1.9, 2.25, 2.5, 2.75, 3.5)
RDP_ORDERS: tuple[float, ...] = (
    *_FRACTIONAL,
    4.5,
    5.5,
    *(float(a) for a in range(2, 65)),
    *(80.0, 96.0, 128.0, 192.0, 256.0, 384.0, 512.0, 1024.0),
)

#: the integer orders of RDP_ORDERS (fast closed form): used to bracket during calibration
_INTEGER_ORDERS: tuple[float, ...] = tuple(a for a in RDP_ORDERS if a == int(a))

#: default PLD value discretisation interval (pessimistic rounding; see the module docstring)
PLD_INTERVAL = 1e-4

Reported = Literal["max", "pld", "rdp"]
_REPORTED_FROM_TEXT: dict[str, Reported] = {
    "max(opacus_rdp, pld)": "max",
    "pld": "pld",
    "opacus_rdp": "rdp",
}


def default_delta(n: int) -> float:
    """The default delta of a release on ``n`` individuals: ``1 / n**1.1`` (below ``1/n``, so
    that "release one random row" is not (0, delta)-DP)."""
    if n < 2:
        raise ConfigError(f"cannot derive a default delta from n = {n} individuals (need >= 2)")
    return float(1.0 / n**1.1)


# ---------------------------------------------------------------------------- mechanisms


@dataclass(frozen=True)
class DpSgdMechanism:
    """A DP-SGD run: the Poisson-subsampled Gaussian mechanism, ``steps`` times."""

    name: str
    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float | None = None  # recorded for display; not an accounting input
    kind: str = field(default="dp-sgd", init=False)

    @property
    def private(self) -> bool:
        return self.noise_multiplier > 0 or self.sample_rate == 0 or self.steps == 0


@dataclass(frozen=True)
class GaussianMechanism:
    """``count`` Gaussian queries of L2 sensitivity ``sensitivity``, noise std
    ``noise_multiplier * sensitivity`` each."""

    name: str
    noise_multiplier: float
    count: int = 1
    sensitivity: float = 1.0
    #: when the queries' sensitivities differ (a bound, and how each query's is set): the noise
    #: of each is the multiplier times its own, so the accounting holds for all
    note: str = ""
    #: each query's L2 sensitivity between cohorts that replace one individual, over the
    #: add/remove one: 2 in general (one contribution out, another in), sqrt(2) for a
    #: histogram (one count moves from one bin to another; :data:`HISTOGRAM_REPLACE_RATIO`);
    #: never above 2 (replace = remove + add) nor below 1
    replace_ratio: float = 2.0
    kind: str = field(default="gaussian", init=False)

    @property
    def private(self) -> bool:
        return self.noise_multiplier > 0 or self.count == 0


#: :attr:`GaussianMechanism.replace_ratio` of a histogram (each individual one count in one
#: bin): replacing an individual moves one count, so the L2 change is sqrt(2), not 2
HISTOGRAM_REPLACE_RATIO = math.sqrt(2.0)


@dataclass(frozen=True)
class _EpsilonSteps:
    """``count`` steps that are each ``epsilon``-DP (the fields both pure-DP kinds share)."""

    name: str
    epsilon: float
    count: int = 1

    @property
    def private(self) -> bool:
        return math.isfinite(self.epsilon) or self.count == 0


@dataclass(frozen=True)
class PureDpMechanism(_EpsilonSteps):
    """``count`` ``epsilon``-DP steps (exponential mechanisms, report-noisy-max...), each
    accounted by the worst case of every ``epsilon``-DP mechanism (randomised response)."""

    kind: str = field(default="pure-dp", init=False)


@dataclass(frozen=True)
class ExponentialMechanism(_EpsilonSteps):
    """``count`` exponential mechanisms of parameter ``epsilon`` (output ``o`` with
    probability proportional to ``exp(epsilon * u(o) / (2 * sensitivity))``, or the same law
    by Gumbel report-noisy-max): ``epsilon``-DP and ``epsilon``-bounded-range, accounted by
    the bounded-range worst case (:func:`_rdp_bounded_range`) where an accountant has it."""

    kind: str = field(default="exponential", init=False)


@dataclass(frozen=True)
class LaplaceMechanism(_EpsilonSteps):
    """``count`` Laplace queries, each adding ``Laplace(sensitivity / epsilon)`` noise to a
    value of sensitivity ``sensitivity``: ``epsilon``-DP each, with the Laplace mechanism's
    own privacy loss (tighter in composition than a generic ``epsilon``-DP step)."""

    kind: str = field(default="laplace", init=False)

    @property
    def noise_multiplier(self) -> float:
        """Noise scale over sensitivity (``inf`` epsilon: 0, no noise)."""
        if not math.isfinite(self.epsilon):
            return 0.0
        return math.inf if self.epsilon == 0 else 1.0 / self.epsilon


Mechanism = (
    DpSgdMechanism | GaussianMechanism | PureDpMechanism | ExponentialMechanism | LaplaceMechanism
)
#: the kinds whose steps are each ``epsilon``-DP
EpsilonSteps = PureDpMechanism | ExponentialMechanism | LaplaceMechanism
_EPSILON_KINDS: dict[str, type[EpsilonSteps]] = {
    "pure-dp": PureDpMechanism,
    "exponential": ExponentialMechanism,
    "laplace": LaplaceMechanism,
}


def _check_finite_nonneg(name: str, what: str, value: float, *, allow_inf: bool = False) -> None:
    if not (isinstance(value, int | float) and not math.isnan(value)) or value < 0:
        raise ConfigError(f"mechanism {name!r}: {what} must be a number >= 0, got {value!r}")
    if math.isinf(value) and not allow_inf:
        raise ConfigError(f"mechanism {name!r}: {what} must be finite, got {value!r}")


def _validate(m: Mechanism) -> None:
    if not m.name:
        raise ConfigError("a mechanism needs a non-empty name")
    if isinstance(m, DpSgdMechanism):
        _check_finite_nonneg(m.name, "noise_multiplier", m.noise_multiplier)
        if not 0.0 <= m.sample_rate <= 1.0:
            raise ConfigError(
                f"mechanism {m.name!r}: sample_rate must be in [0, 1], got {m.sample_rate!r}"
            )
        if int(m.steps) != m.steps or m.steps < 0:
            raise ConfigError(
                f"mechanism {m.name!r}: steps must be an integer >= 0, got {m.steps!r}"
            )
    elif isinstance(m, GaussianMechanism):
        _check_finite_nonneg(m.name, "noise_multiplier", m.noise_multiplier)
        _check_finite_nonneg(m.name, "sensitivity", m.sensitivity)
        if not 1.0 <= m.replace_ratio <= 2.0:  # replace = remove + add: at most twice
            raise ConfigError(
                f"mechanism {m.name!r}: replace_sensitivity_ratio must be in [1, 2], got "
                f"{m.replace_ratio!r}"
            )
        if int(m.count) != m.count or m.count < 0:
            raise ConfigError(
                f"mechanism {m.name!r}: count must be an integer >= 0, got {m.count!r}"
            )
    else:
        _check_finite_nonneg(m.name, "epsilon", m.epsilon, allow_inf=True)
        if int(m.count) != m.count or m.count < 0:
            raise ConfigError(
                f"mechanism {m.name!r}: count must be an integer >= 0, got {m.count!r}"
            )


# ---------------------------------------------------------------------------- pure functions


def _rdp_pure(epsilon: float, orders: np.ndarray) -> np.ndarray:
    """Rényi divergence of order ``alpha`` between the randomised-response pair
    ``(p, 1-p)`` and ``(1-p, p)``, ``p = e^eps / (1 + e^eps)``: the exact RDP curve of the
    dominating pair of ``eps``-DP, hence an RDP bound for every ``eps``-DP mechanism."""
    if epsilon == 0:
        return np.zeros_like(orders)
    log_p = epsilon - np.logaddexp(0.0, epsilon)
    log_q = -np.logaddexp(0.0, epsilon)
    a = orders
    log_sum = np.logaddexp(a * log_p + (1 - a) * log_q, a * log_q + (1 - a) * log_p)
    rdp = log_sum / (a - 1)
    return np.minimum(rdp, np.minimum(epsilon, a * epsilon**2 / 2))


def _rdp_bounded_range(epsilon: float, orders: np.ndarray, grid: int = 4096) -> np.ndarray:
    """An upper bound, tight to ``epsilon / grid``, on the RDP curve of every
    ``epsilon``-bounded-range mechanism.

    Such a mechanism's privacy loss lies in ``[t - epsilon, t]`` for some ``t`` in
    ``[0, epsilon]`` (it must take both signs: ``E_Q[e^L] = 1``). For a fixed ``t``,
    ``E_P[e^{(a-1) L}]`` is convex in the likelihood ratio and ``E_P[e^{-L}] = 1`` is linear in
    it, so the worst case puts all mass on the two ends: loss ``t`` with probability
    ``p_t = (e^eps - e^t) / (e^eps - 1)``, else ``t - eps``, and the order-``a`` divergence is
    ``t + log(p_t + (1 - p_t) e^{-(a-1) eps}) / (a-1)``. On a grid cell ``[t_k, t_k+1]`` the
    first term grows and ``p_t`` falls, so ``t_{k+1}`` with ``p_{t_k}`` bounds the cell: the
    maximum over cells is a rigorous upper bound. It is never above Cesar & Rogers' (2021,
    Lemma 3.2) ``a eps^2 / 8`` nor the generic pure-DP curve (:func:`_rdp_pure`), and both are
    applied too."""
    if epsilon == 0:
        return np.zeros_like(orders)
    a = np.asarray(orders, dtype=np.float64)[:, None]
    t = np.linspace(0.0, epsilon, grid + 1)
    # p_t = (e^eps - e^t) / (e^eps - 1), written without e^eps (no overflow at large eps)
    p = np.clip(np.expm1(t - epsilon) / math.expm1(-epsilon), 0.0, 1.0)
    low = np.exp(-(a - 1.0) * epsilon)  # e^{(a-1)(t - eps)} / e^{(a-1) t}
    cell = t[1:] + np.log(p[:-1] + (1.0 - p[:-1]) * low) / (a - 1.0)
    bound = np.minimum(cell.max(axis=1), a[:, 0] * epsilon**2 / 8.0)
    return np.minimum(bound, _rdp_pure(epsilon, np.asarray(orders, dtype=np.float64)))


def bounded_range_loss_cdf(epsilon: float, loss: float) -> float:
    """CDF of the privacy loss of a dominating pair for every ``epsilon``-bounded-range
    mechanism: density proportional to ``e^{l/2}`` on ``[-epsilon, epsilon]``.

    Over the two-point worst cases of :func:`_rdp_bounded_range` (loss ``t`` with
    probability ``p_t``, else ``t - epsilon``) the hockey-stick divergence at ``e^x``,
    ``0 <= x <= epsilon``, is ``p_t (1 - e^{x - t})`` (``t > x``), largest at
    ``t = (x + epsilon) / 2``: ``delta(x) = (1 - e^{(x - epsilon)/2})^2 / (1 - e^{-epsilon})``
    (``tanh(epsilon/4)`` at ``x = 0``, where a generic ``epsilon``-DP step has
    ``tanh(epsilon/2)``). For every convex hockey-stick function ``H(g)`` there is a pair
    with exactly that profile, and a pointwise maximum of profiles is convex, so the pair
    whose profile is this maximum dominates every bounded-range mechanism, and dominating
    pairs compose (Zhu, Dong & Wang 2022, Thm 10). Its loss density under ``P`` is
    ``g^2 H''(g)`` at ``g = e^l``, i.e. ``e^{l/2} / (2 e^{epsilon/2} (1 - e^{-epsilon}))``
    on ``(0, epsilon)``; the family is closed under swapping the neighbours, so the pair is
    symmetric (``mu(-l) = e^{-l} mu(l)``) and the same density holds on ``(-epsilon, 0)``.
    Integrated: ``F(l) = e^{(l - epsilon)/2} (1 - e^{-(l + epsilon)/2}) / (1 - e^{-epsilon})``,
    written without overflow at large ``epsilon``."""
    if loss <= -epsilon:
        return 0.0
    if loss >= epsilon:
        return 1.0
    return (
        math.exp((loss - epsilon) / 2.0)
        * -math.expm1(-(loss + epsilon) / 2.0)
        / -math.expm1(-epsilon)
    )


def _rdp_laplace(epsilon: float, orders: np.ndarray) -> np.ndarray:
    """Exact RDP of the Laplace mechanism with scale ``sensitivity / epsilon`` (Mironov 2017,
    Prop. 6): ``log(a/(2a-1) e^{(a-1) eps} + (a-1)/(2a-1) e^{-a eps}) / (a-1)``, ``a > 1``."""
    if epsilon == 0:
        return np.zeros_like(orders)
    a = np.asarray(orders, dtype=np.float64)
    log_sum = np.logaddexp(
        np.log(a / (2 * a - 1)) + (a - 1) * epsilon, np.log((a - 1) / (2 * a - 1)) - a * epsilon
    )
    return np.minimum(log_sum / (a - 1), epsilon)


def _rdp_replace_poisson_gaussian(q: float, sigma: float, orders: np.ndarray) -> np.ndarray:
    """RDP of one Poisson-subsampled Gaussian step (noise ``sigma`` times the clip, sample
    rate ``q``) between two datasets that differ by *replacing* one individual: the order-
    ``a`` divergence of ``P = (1 - q) N(0, s^2) + q N(-1, s^2)`` from ``Q = (1 - q) N(0, s^2) +
    q N(1, s^2)`` (one individual's clipped gradient, norm at most 1, swapped for another's
    pointing the other way: dp-accounting's REPLACE_ONE dominating pair; ``P`` and ``Q`` are
    mirror images, so one direction serves both). There is no closed form: the integral of
    ``P^a Q^(1-a)`` is summed in log space on a grid of step ``min(s, 1) / 50`` over
    ``[-a - 60 s - 2, 60 s + 2]``, which holds its mass (near ``x = -a`` at large orders,
    near 0 when the mixture's middle component dominates). At ``q = 1`` it is the Gaussian
    mechanism with twice the sensitivity, ``2 a / s^2``."""
    a = np.asarray(orders, dtype=np.float64)
    if q >= 1.0:
        return 2.0 * a / sigma**2
    step = min(sigma, 1.0) / 50.0
    x = np.arange(-float(a.max()) - 60.0 * sigma - 2.0, 60.0 * sigma + 2.0, step)
    log_mid = math.log1p(-q) - x**2 / (2 * sigma**2)
    log_p = np.logaddexp(log_mid, math.log(q) - (x + 1.0) ** 2 / (2 * sigma**2))
    log_q = np.logaddexp(log_mid, math.log(q) - (x - 1.0) ** 2 / (2 * sigma**2))
    norm = -0.5 * math.log(2 * math.pi * sigma**2) + math.log(step)
    out = np.empty_like(a)
    for i, order in enumerate(a):
        lo = int(np.searchsorted(x, -order - 60.0 * sigma - 2.0))  # this order's range
        f = order * log_p[lo:] + (1.0 - order) * log_q[lo:]
        log_integral = float(logsumexp(f)) + norm
        out[i] = max(log_integral, 0.0) / (order - 1.0)
    return out


def _rdp_curve(m: Mechanism, orders: np.ndarray, replace: bool = False) -> np.ndarray:
    """The mechanism's RDP curve between neighbours that add or remove one individual, or
    (``replace``) that replace one: each individual's contribution then moves by up to twice
    its bound, so a Gaussian's noise multiplier halves (a histogram's shrinks by sqrt(2):
    :attr:`GaussianMechanism.replace_ratio`), a pure, Laplace or bounded-range step's
    epsilon doubles, and DP-SGD takes :func:`_rdp_replace_poisson_gaussian`."""
    if replace and isinstance(m, GaussianMechanism):
        m = dataclasses.replace(m, noise_multiplier=m.noise_multiplier / m.replace_ratio)
    elif replace and isinstance(m, EpsilonSteps):
        m = dataclasses.replace(m, epsilon=2.0 * m.epsilon)
    if isinstance(m, DpSgdMechanism):
        if m.steps == 0 or m.sample_rate == 0:
            return np.zeros_like(orders)
        if replace:
            one = _rdp_replace_poisson_gaussian(m.sample_rate, m.noise_multiplier, orders)
            return float(m.steps) * one
        return np.asarray(
            opacus_rdp.compute_rdp(
                q=m.sample_rate,
                noise_multiplier=m.noise_multiplier,
                steps=int(m.steps),
                orders=list(orders),
            ),
            dtype=np.float64,
        )
    if isinstance(m, GaussianMechanism):
        if m.count == 0:
            return np.zeros_like(orders)
        return np.asarray(
            opacus_rdp.compute_rdp(
                q=1.0, noise_multiplier=m.noise_multiplier, steps=int(m.count), orders=list(orders)
            ),
            dtype=np.float64,
        )
    if m.count == 0:
        return np.zeros_like(orders)
    return m.count * _RDP_OF_STEP[type(m)](m.epsilon, orders)


#: the RDP curve of one step of each epsilon kind
_RDP_OF_STEP: dict[type, Callable[[float, np.ndarray], np.ndarray]] = {
    PureDpMechanism: _rdp_pure,
    ExponentialMechanism: _rdp_bounded_range,
    LaplaceMechanism: _rdp_laplace,
}


@lru_cache(maxsize=4096)
def _rdp_curve_cached(
    m: Mechanism, orders: tuple[float, ...], replace: bool = False
) -> tuple[float, ...]:
    return tuple(_rdp_curve(m, np.asarray(orders, dtype=np.float64), replace).tolist())


def rdp_epsilon(
    mechanisms: Sequence[Mechanism],
    delta: float,
    orders: Sequence[float] = RDP_ORDERS,
    *,
    replace: bool = False,
) -> tuple[float, float]:
    """``(epsilon, optimal order)`` of the composition by Rényi DP (Opacus conversion);
    ``replace``: between neighbours that replace one individual (:func:`_rdp_curve`)."""
    if not mechanisms:
        return 0.0, float("nan")
    if any(not m.private for m in mechanisms):
        return math.inf, float("nan")
    key = tuple(float(a) for a in orders)
    total = np.sum([np.asarray(_rdp_curve_cached(m, key, replace)) for m in mechanisms], axis=0)
    with warnings.catch_warnings():
        # "optimal order is the largest/smallest alpha": still a valid (looser) bound
        warnings.simplefilter("ignore", UserWarning)
        eps, order = opacus_rdp.get_privacy_spent(orders=list(key), rdp=list(total), delta=delta)
    pure = [
        (2 if replace else 1) * m.count * m.epsilon
        for m in mechanisms
        if isinstance(m, EpsilonSteps)
    ]
    if len(pure) == len(mechanisms):
        # RDP of order infinity = basic composition, which can beat every finite order
        basic = float(sum(pure))
        if basic <= eps:
            return basic, math.inf
    return max(float(eps), 0.0), float(order)


@lru_cache(maxsize=256)
def _pld_of(
    m: Mechanism, interval: float, replace: bool = False
) -> pld_lib.PrivacyLossDistribution:
    """The mechanism's PLD between neighbours that add or remove one individual, or
    (``replace``) that replace one: DP-SGD by dp-accounting's REPLACE_ONE relation for the
    Poisson-subsampled Gaussian, every other mechanism with twice its sensitivity (the
    relation's meaning without subsampling; a Gaussian histogram with sqrt(2) times it)."""
    twice = 2.0 if replace else 1.0
    if isinstance(m, DpSgdMechanism):
        return pld_lib.from_gaussian_mechanism(
            standard_deviation=m.noise_multiplier,
            sampling_prob=m.sample_rate,
            value_discretization_interval=interval,
            neighboring_relation=(
                NeighboringRelation.REPLACE_ONE
                if replace
                else NeighboringRelation.ADD_OR_REMOVE_ONE
            ),
        ).self_compose(int(m.steps))
    if isinstance(m, GaussianMechanism):
        return pld_lib.from_gaussian_mechanism(
            standard_deviation=m.noise_multiplier / math.sqrt(m.count),
            sensitivity=m.replace_ratio if replace else 1.0,
            value_discretization_interval=interval,
        )
    if isinstance(m, LaplaceMechanism):
        single = pld_lib.from_laplace_mechanism(
            1.0 / m.epsilon, sensitivity=twice, value_discretization_interval=interval
        )
    elif isinstance(m, ExponentialMechanism):
        single = pld_lib.create_from_cdf(
            partial(bounded_range_loss_cdf, twice * m.epsilon),
            pessimistic_estimate=True,
            value_discretization_interval=interval,
        )
    else:
        single = pld_lib.from_privacy_parameters(
            pld_common.DifferentialPrivacyParameters(epsilon=twice * m.epsilon, delta=0.0),
            value_discretization_interval=interval,
        )
    return single.self_compose(int(m.count)) if m.count > 1 else single


def pld_epsilon(
    mechanisms: Sequence[Mechanism],
    delta: float,
    interval: float = PLD_INTERVAL,
    *,
    replace: bool = False,
) -> float:
    """Epsilon of the composition by privacy loss distributions (``dp_accounting``,
    pessimistic estimates, value discretisation ``interval``); ``replace``: between
    neighbours that replace one individual (:func:`_pld_of`)."""
    active = [
        m
        for m in mechanisms
        if not (
            (isinstance(m, DpSgdMechanism) and (m.steps == 0 or m.sample_rate == 0))
            or (isinstance(m, GaussianMechanism) and m.count == 0)
            or (isinstance(m, EpsilonSteps) and (m.epsilon == 0 or m.count == 0))
        )
    ]
    if not active:
        return 0.0
    if any(not m.private for m in active):
        return math.inf
    pld = _pld_of(active[0], interval, replace)
    for m in active[1:]:
        pld = pld.compose(_pld_of(m, interval, replace))
    return max(float(pld.get_epsilon_for_delta(delta)), 0.0)


def _gdp_mu_of(m: Mechanism) -> float | None:
    if isinstance(m, GaussianMechanism):
        return math.sqrt(m.count) / m.noise_multiplier if m.count else 0.0
    if isinstance(m, DpSgdMechanism):
        if m.steps == 0 or m.sample_rate == 0:
            return 0.0
        if m.sample_rate == 1.0:
            return math.sqrt(m.steps) / m.noise_multiplier
        # Bu, Dong, Long & Su 2020 (HDSR), Thm 5: CLT for Poisson-subsampled Gaussians
        return m.sample_rate * math.sqrt(m.steps * math.expm1(m.noise_multiplier**-2))
    return None


def gdp_to_epsilon(mu: float, delta: float) -> float:
    """Epsilon of ``mu``-GDP at ``delta`` (Dong, Roth & Su 2022, Cor. 2.13), by root finding."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    def excess(eps: float) -> float:
        return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2))

    if excess(0.0) <= delta:
        return 0.0
    hi = 1.0
    while excess(hi) > delta:
        hi *= 2.0
    return float(brentq(lambda e: excess(e) - delta, 0.0, hi, xtol=1e-12))


def _shown(value: Any) -> str:
    """A JSON value as a message shows it: ``true``, ``null``, ``the string '3'``, ``2.9``,
    ``an object``, ``a list``."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    return "a list" if isinstance(value, list) else type(value).__name__


def _is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number (``true``/``false`` are not numbers here, though Python's ints)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(entry: dict[str, Any], key: str, i: int, *, default: float | None = None) -> float:
    """Field ``key`` of ledger mechanism ``i``: a JSON number (``default`` when absent)."""
    if key not in entry:
        if default is not None:
            return default
        raise ConfigError(f"ledger mechanism {i}: no {key}")
    value = entry[key]
    if not _is_number(value):
        raise ConfigError(f"ledger mechanism {i}: {key} must be a number, got {_shown(value)}")
    return float(value)


def _whole(entry: dict[str, Any], key: str, i: int, *, default: int | None = None) -> int:
    """Field ``key`` (``count``, ``steps``) of ledger mechanism ``i``: a whole number, stated
    (``default``: only where a ledger format left it out), never rounded: ``int()`` would
    read 2.9 steps as 2, ``true`` as 1 and ``"3"`` as 3."""
    if key not in entry:
        if default is not None:
            return default
        raise ConfigError(f"ledger mechanism {i}: no {key} (how many times it ran)")
    value = entry[key]
    if not _is_number(value) or not (isinstance(value, int) or float(value).is_integer()):
        raise ConfigError(
            f"ledger mechanism {i}: {key} must be a whole number, got {_shown(value)}"
        )
    return int(value)


# ---------------------------------------------------------------------------- the ledger


class Ledger:
    """Every mechanism of one release and its composed ``(epsilon, delta)``.

    ``delta`` is the release's delta (explicit; see :func:`default_delta`). ``target_epsilon``
    is what :func:`calibrate` aimed for (recorded, never trusted: the epsilon reported is
    always recomputed from the mechanisms). ``no_formal_privacy=True`` is the ``--epsilon
    inf`` mode: mechanisms are recorded with zero noise and the epsilon is infinite.
    """

    def __init__(
        self,
        delta: float,
        *,
        target_epsilon: float | None = None,
        no_formal_privacy: bool = False,
        secure_mode: bool = False,
        reported: Reported = "max",
        pld_interval: float = PLD_INTERVAL,
    ) -> None:
        if not (isinstance(delta, int | float) and 0.0 < delta < 1.0):
            raise ConfigError(f"delta must be in (0, 1), got {delta!r}")
        if reported not in ("max", "pld", "rdp"):
            raise ConfigError(f"reported must be 'max', 'pld' or 'rdp', got {reported!r}")
        if secure_mode and reported == "pld":
            raise ConfigError(
                "a secure-mode ledger cannot report the PLD figure alone: its Gaussian steps "
                "are discrete Gaussians, whose RDP is the continuous one's (Canonne, Kamath & "
                "Steinke 2020) but whose PLD is not proven to be; report 'max' or 'rdp'"
            )
        if not 0.0 < pld_interval <= 0.1:
            raise ConfigError(f"pld_interval must be in (0, 0.1], got {pld_interval!r}")
        self.delta = float(delta)
        self.target_epsilon = target_epsilon
        self.secure_mode = bool(secure_mode)
        self.reported: Reported = reported
        self.pld_interval = float(pld_interval)
        self._no_privacy = bool(no_formal_privacy)
        self.mechanisms: list[Mechanism] = []
        #: what the guarantee treats as public (written into ``ledger.json``); a release adds
        #: its own (e.g. phenotype types read from the data)
        self.assumptions: list[str] = list(PUBLIC_ASSUMPTIONS)
        self._memo: dict[tuple[Any, ...], dict[str, float]] = {}

    @classmethod
    def no_privacy(cls, delta: float, *, secure_mode: bool = False) -> Ledger:
        """A ledger for ``--epsilon inf``: training without noise or clipping."""
        return cls(delta, no_formal_privacy=True, secure_mode=secure_mode)

    # -------------------------------------------------------------- recording
    def add(self, mechanism: Mechanism) -> Mechanism:
        _validate(mechanism)
        if any(m.name == mechanism.name for m in self.mechanisms):
            raise ConfigError(f"mechanism name {mechanism.name!r} is already in the ledger")
        if self._no_privacy is False and not mechanism.private:
            # recorded honestly: the whole release then carries no formal guarantee
            self._no_privacy = True
        self.mechanisms.append(mechanism)
        return mechanism

    def add_dp_sgd(
        self,
        name: str,
        noise_multiplier: float,
        sample_rate: float,
        steps: int,
        *,
        max_grad_norm: float | None = None,
    ) -> DpSgdMechanism:
        m = DpSgdMechanism(
            name, float(noise_multiplier), float(sample_rate), int(steps), max_grad_norm
        )
        self.add(m)
        return m

    def add_gaussian(
        self,
        name: str,
        noise_multiplier: float,
        count: int = 1,
        sensitivity: float = 1.0,
        note: str = "",
        replace_ratio: float = 2.0,
    ) -> GaussianMechanism:
        m = GaussianMechanism(
            name,
            float(noise_multiplier),
            int(count),
            float(sensitivity),
            note,
            float(replace_ratio),
        )
        self.add(m)
        return m

    def add_epsilon_steps(
        self, kind: str, name: str, epsilon: float, count: int = 1
    ) -> EpsilonSteps:
        """``count`` ``epsilon``-DP steps of ``kind`` (``pure-dp``, ``exponential`` or
        ``laplace``)."""
        if kind not in _EPSILON_KINDS:
            raise ConfigError(f"unknown epsilon-step kind {kind!r}")
        m = _EPSILON_KINDS[kind](name, float(epsilon), int(count))
        self.add(m)
        return m

    def add_pure(self, name: str, epsilon: float, count: int = 1) -> EpsilonSteps:
        return self.add_epsilon_steps("pure-dp", name, epsilon, count)

    def add_exponential(self, name: str, epsilon: float, count: int = 1) -> EpsilonSteps:
        return self.add_epsilon_steps("exponential", name, epsilon, count)

    def add_laplace(self, name: str, epsilon: float, count: int = 1) -> EpsilonSteps:
        return self.add_epsilon_steps("laplace", name, epsilon, count)

    def mechanism(self, name: str) -> Mechanism:
        for m in self.mechanisms:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.mechanisms) or "(none)"
        raise ConfigError(f"no mechanism named {name!r} in the ledger; it has: {known}")

    # -------------------------------------------------------------- accounting
    @property
    def no_formal_privacy(self) -> bool:
        return self._no_privacy

    def accountants(self, delta: float | None = None) -> dict[str, float]:
        """Epsilon of the whole release by each accountant: ``opacus_rdp`` and ``pld``."""
        d = self.delta if delta is None else float(delta)
        if self._no_privacy:
            return {"opacus_rdp": math.inf, "pld": math.inf}
        key = (tuple(self.mechanisms), d, self.pld_interval)
        if key not in self._memo:
            self._memo[key] = {
                "opacus_rdp": rdp_epsilon(self.mechanisms, d)[0],
                "pld": pld_epsilon(self.mechanisms, d, self.pld_interval),
            }
        return dict(self._memo[key])

    def replace_one(self, delta: float | None = None) -> dict[str, Any]:
        """The guarantee between two cohorts of the same size that differ in one individual
        (replace one), accounted directly at ``delta`` (default: the ledger's) by both
        accountants (:func:`rdp_epsilon` and :func:`pld_epsilon` with ``replace``) and
        reported as their larger, as the add/remove figure is; ``group_privacy`` keeps the
        generic bound from the add/remove figure (:func:`replace_one`), which it never
        beats at that bound's delta. ``epsilon`` is ``None`` without formal privacy."""
        d = self.delta if delta is None else float(delta)
        if self._no_privacy:
            return {"epsilon": None, "delta": None}
        key = ("replace-one", tuple(self.mechanisms), d, self.pld_interval)
        if key not in self._memo:
            self._memo[key] = {
                "opacus_rdp": rdp_epsilon(self.mechanisms, d, replace=True)[0],
                "pld": pld_epsilon(self.mechanisms, d, self.pld_interval, replace=True),
            }
        acc = dict(self._memo[key])
        return {
            "epsilon": _json_float(max(acc.values())),
            "delta": d,
            "accountants": {k: _json_float(v) for k, v in acc.items()},
            "method": REPLACE_ONE_METHOD,
            "group_privacy": replace_one(self.epsilon(d), d),
        }

    def _report(self, eps: dict[str, float]) -> float:
        if self.reported == "max":
            return max(eps.values())
        return eps["pld" if self.reported == "pld" else "opacus_rdp"]

    def epsilon(self, delta: float | None = None) -> float:
        """The reported total epsilon at ``delta`` (default: the ledger's delta);
        ``inf`` in no-formal-privacy mode."""
        if self._no_privacy:
            return math.inf
        return self._report(self.accountants(delta))

    def epsilon_share(self, mechanism: Mechanism, delta: float | None = None) -> float:
        """Stand-alone epsilon of one mechanism (for display: shares do not add up)."""
        d = self.delta if delta is None else float(delta)
        if not mechanism.private or self._no_privacy:
            return math.inf
        if isinstance(mechanism, PureDpMechanism | ExponentialMechanism) and mechanism.count == 1:
            return mechanism.epsilon
        eps = {
            "opacus_rdp": rdp_epsilon([mechanism], d)[0],
            "pld": pld_epsilon([mechanism], d, self.pld_interval),
        }
        return self._report(eps)

    def gdp_mu(self) -> float | None:
        """Gaussian-DP ``mu`` of the Gaussian and DP-SGD mechanisms (Dong, Roth & Su 2022):
        ``mu = sqrt(sum mu_i^2)``; a Gaussian release is exactly ``sqrt(count)/sigma``-GDP,
        a DP-SGD run is *approximately* ``q sqrt(T (e^{1/sigma^2} - 1))``-GDP by the central
        limit theorem of Bu et al. 2020 (an asymptotic approximation, not a bound; it can
        under-state privacy loss for few steps). Pure-DP and Laplace steps are not included.
        ``None`` when there is no Gaussian/DP-SGD mechanism or no formal privacy."""
        if self._no_privacy:
            return None
        mus = [mu for m in self.mechanisms if (mu := _gdp_mu_of(m)) is not None]
        if not mus:
            return None
        return float(math.sqrt(sum(mu**2 for mu in mus)))

    @property
    def label(self) -> str:
        """Human label of the guarantee: ``"no formal privacy"`` or ``"(ε = 3, δ = 1e-05)"``."""
        if self._no_privacy:
            return NO_PRIVACY_LABEL
        from dpgenome.findings import fmt_claim  # a claim is rounded up, never down

        return f"(ε = {fmt_claim(self.epsilon())}, δ = {fmt_claim(self.delta)})"

    # -------------------------------------------------------------- serialisation
    def to_dict(self, delta: float | None = None) -> dict[str, Any]:
        """The ``ledger`` object of ``results.json`` / ``ledger.json`` (JSON-safe: ``inf`` is
        written as ``null``)."""
        d = self.delta if delta is None else float(delta)
        acc = self.accountants(d)
        mechs: list[dict[str, Any]] = []
        for m in self.mechanisms:
            share = self.epsilon_share(m, d)
            entry: dict[str, Any] = {"kind": m.kind, "name": m.name}
            if isinstance(m, DpSgdMechanism):
                entry |= {
                    "noise_multiplier": m.noise_multiplier,
                    "sample_rate": m.sample_rate,
                    "steps": m.steps,
                    "max_grad_norm": _json_float(m.max_grad_norm),
                }
            elif isinstance(m, GaussianMechanism):
                entry |= {
                    "noise_multiplier": m.noise_multiplier,
                    "count": m.count,
                    "sensitivity": m.sensitivity,
                }
                if m.note:
                    entry["sensitivity_note"] = m.note
                if m.replace_ratio != 2.0:
                    entry["replace_sensitivity_ratio"] = m.replace_ratio
            else:
                entry |= {"epsilon": _json_float(m.epsilon), "count": m.count}
                if isinstance(m, LaplaceMechanism):
                    entry["noise_multiplier"] = _json_float(m.noise_multiplier)
            entry["epsilon_share"] = _json_float(share)
            mechs.append(entry)
        mu = self.gdp_mu()
        total = self._report(acc) if not self._no_privacy else math.inf
        return {
            "epsilon": _json_float(total),
            "delta": d,
            "unit": "individual",
            "neighbouring": "add/remove one individual",
            "assumptions": list(self.assumptions),
            "replace_one": self.replace_one(d),
            "no_formal_privacy": self._no_privacy,
            "label": self.label,
            "target_epsilon": _json_float(self.target_epsilon),
            "accountants": {k: _json_float(v) for k, v in acc.items()},
            "reported": {"max": "max(opacus_rdp, pld)", "pld": "pld", "rdp": "opacus_rdp"}[
                self.reported
            ],
            "pld_value_discretization_interval": self.pld_interval,
            "gdp_mu": mu,
            "gdp_mu_note": (
                "Gaussian and DP-SGD mechanisms only; DP-SGD by the CLT approximation of "
                "Bu et al. 2020 (asymptotic, not a bound)"
            ),
            "secure_mode": self.secure_mode,
            "mechanisms": mechs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ledger:
        """Rebuild a ledger from :meth:`to_dict` output (to re-account a release).

        Read strictly, as a re-accounting must not under-count: ``mechanisms`` is a list of
        JSON objects; every entry states its ``count`` (``steps`` for ``dp-sgd``) as a whole
        number (an integral float is accepted, a bool, a string or a fraction is not), as
        :meth:`to_dict` always writes it -- except a ``pure-dp`` entry without ``count``,
        one step, as ledgers written before counts existed record it; numbers are JSON
        numbers. A ledger stating a finite epsilon > 0 lists at least one mechanism. Any
        other shape is a :class:`ConfigError` naming the entry."""
        if not isinstance(data, dict):
            raise ConfigError(f"malformed ledger: {_shown(data)}, not a JSON object")
        try:
            ledger = cls(
                float(data["delta"]),
                target_epsilon=data.get("target_epsilon"),
                no_formal_privacy=bool(data.get("no_formal_privacy", False)),
                secure_mode=bool(data.get("secure_mode", False)),
                reported=_REPORTED_FROM_TEXT[data.get("reported", "max(opacus_rdp, pld)")],
                pld_interval=float(data.get("pld_value_discretization_interval", PLD_INTERVAL)),
            )
            recorded = data.get("assumptions")
            if isinstance(recorded, list) and all(isinstance(a, str) for a in recorded):
                ledger.assumptions = list(recorded)
            mechanisms = data["mechanisms"]
            if not isinstance(mechanisms, list):
                raise ConfigError(
                    f"malformed ledger: its mechanisms are {_shown(mechanisms)}, not a list"
                )
            stated = data.get("epsilon")
            if (
                not mechanisms
                and not ledger.no_formal_privacy
                and _is_number(stated)
                and 0 < stated < math.inf
            ):
                raise ConfigError(
                    f"malformed ledger: it states epsilon {stated!r} but lists no mechanisms "
                    "to account for it"
                )
            for i, m in enumerate(mechanisms):
                if not isinstance(m, dict):
                    raise ConfigError(f"ledger mechanism {i}: {_shown(m)}, not a JSON object")
                kind = m.get("kind")
                if kind == "dp-sgd":
                    ledger.add_dp_sgd(
                        m["name"],
                        _number(m, "noise_multiplier", i),
                        _number(m, "sample_rate", i),
                        _whole(m, "steps", i),
                        max_grad_norm=m.get("max_grad_norm"),
                    )
                elif kind == "gaussian":
                    ledger.add_gaussian(
                        m["name"],
                        _number(m, "noise_multiplier", i),
                        _whole(m, "count", i),
                        _number(m, "sensitivity", i, default=1.0),
                        m.get("sensitivity_note", ""),
                        _number(m, "replace_sensitivity_ratio", i, default=2.0),
                    )
                elif kind in _EPSILON_KINDS:
                    eps = m["epsilon"]
                    ledger.add_epsilon_steps(
                        kind,
                        m["name"],
                        math.inf if eps is None else _number(m, "epsilon", i),
                        _whole(m, "count", i, default=1 if kind == "pure-dp" else None),
                    )
                else:
                    raise ConfigError(f"ledger mechanism {i}: unknown kind {kind!r}")
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise ConfigError(f"malformed ledger: {err!r}") from err
        return ledger

    def __repr__(self) -> str:
        names = ", ".join(f"{m.kind}:{m.name}" for m in self.mechanisms)
        return f"Ledger(delta={self.delta:g}, {self.label}, [{names}])"


#: what every ledger treats as public (written into ``ledger.json``): the guarantee is that of
#: mechanisms with these as fixed parameters
PUBLIC_ASSUMPTIONS = (
    "the number of individuals n is public: every mechanism is calibrated with n as a fixed "
    "parameter (sample rates, delta = 1/n^1.1, sums read back as means); n itself is released "
    "and not protected",
    "the SNP map, the phenotype columns with their types and value domains, and any public "
    "panel are public; nothing else about the individuals enters except through the "
    "mechanisms listed",
)


def reaccount(ledger: Any) -> dict[str, float]:
    """A release ledger (``results["ledger"]`` or ``ledger.json``) re-accounted from its
    mechanisms alone, at its delta: ``{"epsilon": reported, "opacus_rdp": ..., "pld": ...}``
    by the rule and discretisation it records (what an auditor recomputes and compares with
    the epsilon it states). Raises :class:`ConfigError` when the ledger does not parse.
    Cached on the ledger's canonical JSON, as one bundle is often re-checked."""
    if not isinstance(ledger, dict):
        raise ConfigError(f"malformed ledger: a {type(ledger).__name__}, not a JSON object")
    try:
        text = json.dumps(ledger, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as err:
        raise ConfigError(f"malformed ledger: {err}") from None
    try:
        return dict(_reaccount(text))
    except (MemoryError, OverflowError, ValueError) as err:
        raise ConfigError(f"its mechanisms cannot be accounted ({err})") from None


@lru_cache(maxsize=256)
def _reaccount(text: str) -> tuple[tuple[str, float], ...]:
    ledger = Ledger.from_dict(json.loads(text))
    return (("epsilon", ledger.epsilon()), *ledger.accountants().items())


def reaccount_replace_one(ledger: Any) -> float:
    """A release ledger's replace-one epsilon (:meth:`Ledger.replace_one`) re-accounted from
    its mechanisms alone, at its delta (``inf`` without formal privacy). Raises
    :class:`ConfigError` when the ledger does not parse."""
    if not isinstance(ledger, dict):
        raise ConfigError(f"malformed ledger: a {type(ledger).__name__}, not a JSON object")
    try:
        eps = Ledger.from_dict(ledger).replace_one()["epsilon"]
    except (MemoryError, OverflowError, ValueError, RecursionError) as err:
        raise ConfigError(f"its mechanisms cannot be accounted ({err})") from None
    return math.inf if eps is None else float(eps)


#: how :meth:`Ledger.replace_one` accounts, as the ledger states it
REPLACE_ONE_METHOD = (
    "both accountants with replace-one neighbouring: DP-SGD as the Poisson-subsampled "
    "Gaussian under dp-accounting's REPLACE_ONE relation (PLD) and by numerical integration "
    "of the same pair's Renyi divergence (RDP); every other mechanism with twice its "
    "sensitivity, a Gaussian histogram with sqrt(2) times its own (one count moves between "
    "bins)"
)


def replace_one(epsilon: float, delta: float) -> dict[str, float | str | None]:
    """The guarantee between two cohorts of the same size that differ in one individual
    (replace one = remove one, then add one): ``(2 epsilon, (1 + e^epsilon) delta)`` by group
    privacy over the two add/remove steps (an upper bound; ``None`` when unbounded). When
    that delta reaches 1 (epsilon 8 at the default delta of 768 members) the pair bounds
    nothing, and a ``note`` says so beside the capped figures."""
    if not math.isfinite(epsilon) or epsilon > 50:
        return {"epsilon": _json_float(2 * epsilon), "delta": None}
    d = (1 + math.exp(epsilon)) * delta
    if d < 1.0:
        return {"epsilon": 2 * epsilon, "delta": d}
    return {
        "epsilon": 2 * epsilon,
        "delta": 1.0,
        "note": "no guarantee: group privacy's delta, (1 + e^epsilon) delta, reaches 1",
    }


def _json_float(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


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
    target; ``kind``: ``pure-dp`` (generic), ``exponential`` (:class:`ExponentialMechanism`)
    or ``laplace`` (:class:`LaplaceMechanism`)."""

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
        if isinstance(p, PlannedPure) and p.kind not in _EPSILON_KINDS:
            raise ConfigError(
                f"plan entry {p.name!r}: kind must be one of {sorted(_EPSILON_KINDS)}, "
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
        return rdp_epsilon(mechs, delta, _INTEGER_ORDERS)[0]

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
