"""The noise of the Gaussian, Laplace and exponential mechanisms (everything but DP-SGD).

Two sources, one interface (:class:`Noise`): each method takes the *query value* and returns
the mechanism's output, so a sampler may round the query as well as add to it.

* :class:`GeneratorNoise`: numpy's floating-point samplers on a :class:`numpy.random.Generator`
  (``--no-secure-mode``, and the tests' and benchmarks' fixed noise, which it reproduces).
* :class:`SecureNoise` (secure mode, the default: :func:`default_secure_mode`): exact
  samplers driven by the OS CSPRNG
  (:class:`random.SystemRandom`) in integer arithmetic, immune to the floating-point attacks
  on textbook samplers (Mironov 2012: the low bits of a float Laplace or Gaussian sample
  reveal the value it was added to). Following Canonne, Kamath & Steinke 2020 (CKS20,
  "The discrete Gaussian for differential privacy", Algorithms 1-3):

  - **Gaussian** (L2 sensitivity ``s``, sd ``sigma``): the query is rounded to a grid of step
    ``g`` (a power of two) and the *discrete Gaussian* ``N_Z(0, (sigma (1 + k) / g)^2)`` is
    added per coordinate in grid units. Rounding moves a neighbour's vector by at most
    ``g sqrt(d) <= k s / 2`` more, so the rounded query's sensitivity is at most
    ``s (1 + k)`` (with ``k s / 2`` left for the float rounding of the sums, below), the
    same ratio to the noise as calibrated. Added to an integer-valued query, the discrete
    Gaussian has the continuous Gaussian's concentrated DP (CKS20): Renyi divergence at most
    ``alpha mu^2 / (2 sigma^2)`` at every order for an integer shift ``mu`` per coordinate,
    adding over independent coordinates, so the RDP the accountant gives a Gaussian step holds
    as it is (and for replace-one, an integer shift of twice the bound). (The extra ``tau``
    term of Kairouz, Liu & Steinke 2021 concerns *sums* of discrete Gaussians, not one draw;
    an sd below 6 steps is still refused as a margin, never reached: the grid gives at least
    ``2 sigma sqrt(d) / (k s)`` steps.) The released epsilon is the larger of the RDP and PLD
    figures (:mod:`dpgenome.accountant`), so it is at least the RDP figure; the PLD of the
    continuous Gaussian is not proven to bound the discrete one's, so a secure-mode ledger
    refuses to report the PLD figure alone.
  - **Laplace** (sensitivity ``s``, scale ``b``): the query is rounded to the grid likewise
    and the *integer part* of a Laplace(``b (1 + k) / g``) variable is added: exactly the
    Laplace mechanism on the rounded query followed by ``floor`` (post-processing), so the
    Laplace mechanism's own privacy loss, as accounted, holds as it is. That integer part is
    a two-sided geometric, sampled exactly.
  - **Exponential mechanism** (utilities ``u``, scale ``c``: probability proportional to
    ``exp(u_i / c)``, the law of ``argmax(u + Gumbel(c))``): rejection sampling, a uniform
    candidate accepted with probability ``exp(-(max u - u_i) / (c (1 + k)))`` by an exact
    Bernoulli on the utilities' exact rational values.

  The widening factor ``1 + k``, ``k = max(2^-20, 8 n^2 u)`` (``u = 2^-53``), also covers
  the rounding of the floating-point sums the queries are: each coordinate of a sum of ``n``
  terms is within ``(n + 1) u sum_i |x_ij|`` of the exact one in any order, so the whole
  vector within ``(n + 1) u sum_i ||x_i||_2 <= (n + 1) n u s`` in L2 whatever its length
  ``d`` (the grid's own ``sqrt(d)`` is in its step); doubled for the neighbour, that is at
  most ``k s / 2``.
  Not covered: timing (the samplers' running time depends on their output) and DP-SGD,
  whose noise stays Opacus-style floating point (:mod:`dpgenome.dpsgd`).
"""

from __future__ import annotations

import math
import os
import random
from fractions import Fraction
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

#: under DP, the randomness of every mechanism (the Gaussian, Laplace and exponential noise,
#: the DP-SGD noise and Poisson batches, the DP bins) is drawn from fresh OS entropy that is
#: recorded nowhere, since ``results.json`` and the manifest publish the configuration's
#: ``seed``: noise derived from a published (or guessable) seed can be regenerated and
#: subtracted, which voids every guarantee the ledger states. This environment variable
#: fixes it for tests and benchmarks only: ``seed`` derives it from the configuration's seed
#: (reproducible; no privacy against anyone who knows the seed), an integer from that
#: integer (a secret as long as the integer is). Without formal privacy nothing is noised and
#: the configuration's seed is used as it is. Secure mode's samplers cannot be seeded, so
#: setting it also turns secure mode's default off (:func:`default_secure_mode`).
NOISE_SEED_ENV = "DPGENOME_NOISE_SEED"


def fixed_noise() -> str:
    """:data:`NOISE_SEED_ENV` as set (``""``: unset, the noise is fresh OS entropy)."""
    return os.environ.get(NOISE_SEED_ENV, "").strip()


def default_secure_mode() -> bool:
    """Secure mode unless chosen otherwise: on, except where :data:`NOISE_SEED_ENV` fixes the
    noise (tests and benchmarks), which only numpy's seeded samplers can reproduce."""
    return not fixed_noise()


#: the widening of secure mode's noise scales never falls below this (see the module text)
MIN_WIDENING = 2.0**-20
UNIT_ROUNDOFF = 2.0**-53
#: the discrete Gaussian's sd, in grid steps, below which it is refused: a margin (its RDP on
#: an integer query is the continuous one's at any sd), never reached through :meth:`grid`
MIN_GAUSSIAN_STEPS = 6


class Noise(Protocol):
    """Where a mechanism's noise comes from; every method returns the mechanism's output."""

    secure: bool

    def gaussian(self, values: ArrayLike, *, sd: float, sensitivity: float) -> np.ndarray:
        """``values`` plus ``N(0, sd^2)`` per coordinate; ``sensitivity`` is the L2 norm by
        which one individual can move the whole vector ``values``."""
        ...

    def laplace(self, value: float, *, scale: float, sensitivity: float) -> float:
        """``value`` plus ``Laplace(scale)``; one individual moves ``value`` by at most
        ``sensitivity``."""
        ...

    def exponential(self, utilities: ArrayLike, *, scale: float) -> int:
        """An index drawn with probability proportional to ``exp(utilities[i] / scale)``:
        the exponential mechanism, the law of ``argmax(utilities + Gumbel(scale))``."""
        ...


class GeneratorNoise:
    """numpy's floating-point samplers on ``rng`` (the draws are those of ``rng.normal``,
    ``rng.laplace`` and ``rng.gumbel``, in call order)."""

    secure = False

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def gaussian(self, values: ArrayLike, *, sd: float, sensitivity: float) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        return np.asarray(v + self.rng.normal(scale=sd, size=v.shape))

    def laplace(self, value: float, *, scale: float, sensitivity: float) -> float:
        return float(value + self.rng.laplace(scale=scale))

    def exponential(self, utilities: ArrayLike, *, scale: float) -> int:
        u = np.asarray(utilities, dtype=np.float64).ravel()
        return int(np.argmax(u + self.rng.gumbel(scale=scale, size=u.size)))


class SecureNoise:
    """Exact samplers on the OS CSPRNG for a cohort of ``n`` individuals (module text).
    ``rand`` replaces the CSPRNG in tests of the samplers' laws only."""

    secure = True

    def __init__(self, n: int, rand: random.Random | None = None) -> None:
        if n < 1:
            raise ValueError(f"a cohort of {n} individuals")
        self.n = int(n)
        self.rand = rand if rand is not None else random.SystemRandom()

    def widening(self) -> float:
        """``k``: every noise scale is widened by ``1 + k``, whatever the query's length
        (the float error of a vector sum is bounded in L2 by its terms' norms: module text)."""
        return max(MIN_WIDENING, 8.0 * self.n**2 * UNIT_ROUNDOFF)

    def grid(self, scale: float, sensitivity: float, d: int = 1) -> tuple[float, Fraction]:
        """``(step, scale_in_steps)`` for a query of ``d`` values: the grid's step, a power
        of two with ``step sqrt(d) <= k sensitivity / 2``, and the noise scale widened by
        ``1 + k`` in steps. A neighbour moves the rounded query by at most
        ``(sensitivity (1 + k / 2)) / step + sqrt(d) <= sensitivity (1 + k) / step`` steps:
        the same ratio to the noise as ``sensitivity`` to ``scale``."""
        _positive(scale=scale, sensitivity=sensitivity)
        k = self.widening()
        step = _grid(k * sensitivity / (2.0 * math.sqrt(d)))
        if not (step > 0.0 and step * math.sqrt(d) <= k * sensitivity / 2.0):
            raise ValueError(f"no grid step fits sensitivity {sensitivity} over {d} values")
        return step, Fraction(scale) * (1 + Fraction(k)) / Fraction(step)

    def gaussian(self, values: ArrayLike, *, sd: float, sensitivity: float) -> np.ndarray:
        v = _finite(values)
        step, sd_steps = self.grid(sd, sensitivity, max(v.size, 1))
        if sd_steps < MIN_GAUSSIAN_STEPS:
            raise ValueError(
                f"noise sd {sd} is too small for the grid of sensitivity {sensitivity}"
            )
        draw = _DiscreteGaussian(sd_steps**2)
        out = [float(round(x / step) + draw(self.rand)) * step for x in v.ravel().tolist()]
        return np.asarray(out, dtype=np.float64).reshape(v.shape)

    def laplace(self, value: float, *, scale: float, sensitivity: float) -> float:
        x = float(_finite(value))
        step, b = self.grid(scale, sensitivity)
        return float(round(x / step) + floor_laplace(b, self.rand)) * step

    def exponential(self, utilities: ArrayLike, *, scale: float) -> int:
        u = _finite(utilities).ravel()
        if u.size == 0:
            raise ValueError("the exponential mechanism needs at least one candidate")
        _positive(scale=scale)
        c = Fraction(scale) * (1 + Fraction(self.widening()))
        top = Fraction(float(u.max()))
        values = u.tolist()
        while True:
            i = self.rand.randrange(len(values))
            if bernoulli_exp((top - Fraction(values[i])) / c, self.rand):
                return i


def mechanism_noise(secure: bool, rng: np.random.Generator, n: int) -> Noise:
    """Secure mode's exact samplers for ``n`` individuals, else numpy's on ``rng``."""
    return SecureNoise(n) if secure else GeneratorNoise(rng)


# --- exact samplers (CKS20), on a source of uniform integers -------------------------------


def bernoulli(p: Fraction, rand: random.Random) -> bool:
    """True with probability ``p`` (rational, in [0, 1])."""
    return rand.randrange(p.denominator) < p.numerator


def bernoulli_exp(gamma: Fraction, rand: random.Random) -> bool:
    """True with probability ``exp(-gamma)``, ``gamma >= 0`` rational (CKS20 Algorithm 1):
    ``floor(gamma)`` trials of ``exp(-1)`` (stopping at the first failure), then one of the
    fractional part."""
    whole = math.floor(gamma)
    for _ in range(whole):
        if not _bernoulli_exp_unit(Fraction(1), rand):
            return False
    return _bernoulli_exp_unit(gamma - whole, rand)


def _bernoulli_exp_unit(gamma: Fraction, rand: random.Random) -> bool:
    """``exp(-gamma)`` for ``gamma`` in [0, 1]: the first ``k`` at which a
    Bernoulli(``gamma / k``) fails is odd with exactly that probability."""
    k = 1
    while bernoulli(gamma / k, rand):
        k += 1
    return k % 2 == 1


def geometric(rate: Fraction, rand: random.Random) -> int:
    """``G >= 0`` with ``P(G = g)`` proportional to ``exp(-rate g)`` (rational ``rate > 0``):
    with ``rate = s / t``, ``X = U + t V`` (``U`` uniform below ``t`` kept with probability
    ``exp(-U / t)``, ``V`` the successes of Bernoulli(``exp(-1)``) before a failure) has
    ``P(X = x)`` proportional to ``exp(-x / t)``, and ``G = floor(X / s)``."""
    s, t = rate.numerator, rate.denominator
    while True:
        u = rand.randrange(t)
        if bernoulli_exp(Fraction(u, t), rand):
            break
    v = 0
    while _bernoulli_exp_unit(Fraction(1), rand):
        v += 1
    return (u + t * v) // s


def discrete_laplace(scale: Fraction, rand: random.Random) -> int:
    """``Y`` on the integers with ``P(Y = y)`` proportional to ``exp(-|y| / scale)``."""
    while True:
        g = geometric(1 / scale, rand)
        negative = rand.randrange(2) == 1
        if negative and g == 0:
            continue  # zero would otherwise be drawn twice as often
        return -g if negative else g


def floor_laplace(scale: Fraction, rand: random.Random) -> int:
    """``floor(X)`` for ``X ~ Laplace(0, scale)``: a sign, then ``G`` geometric of rate
    ``1 / scale``; ``G`` on the right, ``-G - 1`` on the left (``P(floor X = k)`` is
    ``(1 - e^{-1/b}) e^{-k/b} / 2`` for ``k >= 0`` and ``(1 - e^{-1/b}) e^{-(-k-1)/b} / 2``
    below)."""
    g = geometric(1 / scale, rand)
    return -g - 1 if rand.randrange(2) == 1 else g


class _DiscreteGaussian:
    """``N_Z(0, sigma2)``: ``P(Y = y)`` proportional to ``exp(-y^2 / (2 sigma2))`` (CKS20
    Algorithm 3): a discrete Laplace of scale ``t = floor(sigma) + 1`` kept with probability
    ``exp(-(|Y| - sigma2 / t)^2 / (2 sigma2))``."""

    def __init__(self, sigma2: Fraction) -> None:
        if sigma2 <= 0:
            raise ValueError("the discrete Gaussian needs a positive variance")
        self.sigma2 = sigma2
        self.t = Fraction(math.isqrt(math.floor(sigma2)) + 1)
        self.centre = sigma2 / self.t

    def __call__(self, rand: random.Random) -> int:
        while True:
            y = discrete_laplace(self.t, rand)
            if bernoulli_exp((abs(y) - self.centre) ** 2 / (2 * self.sigma2), rand):
                return y


def discrete_gaussian(sigma2: Fraction, rand: random.Random) -> int:
    """One draw of ``N_Z(0, sigma2)`` (:class:`_DiscreteGaussian`)."""
    return _DiscreteGaussian(sigma2)(rand)


def _grid(bound: float) -> float:
    """The largest power of two at most ``bound``: dividing by it is exact in floating point."""
    return math.ldexp(1.0, math.frexp(bound)[1] - 1)


def _finite(values: ArrayLike) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError("a mechanism's query must be finite")
    return v


def _positive(**scales: float) -> None:
    for name, value in scales.items():
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"secure noise needs a positive, finite {name}, got {value}")
