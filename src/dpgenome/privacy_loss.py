"""Each mechanism's privacy loss, and the tight composition of a ledger's mechanisms.

The curves :class:`~dpgenome.accountant.Ledger` composes, for the kinds of
:mod:`dpgenome.mechanisms`, at add/remove-one neighbouring (and, for DP-SGD, replace-one).
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
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache, partial

import numpy as np
from dp_accounting import NeighboringRelation
from dp_accounting.pld import common as pld_common
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from opacus.accountants.analysis import rdp as opacus_rdp
from scipy.special import logsumexp

from dpgenome.mechanisms import (
    DpSgdMechanism,
    EpsilonSteps,
    ExponentialMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    Mechanism,
    PureDpMechanism,
)

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
INTEGER_ORDERS: tuple[float, ...] = tuple(a for a in RDP_ORDERS if a == int(a))

#: default PLD value discretisation interval (pessimistic rounding; see the module docstring)
PLD_INTERVAL = 1e-4


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


def gdp_mu_of(m: Mechanism) -> float | None:
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
