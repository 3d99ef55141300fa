"""The mechanisms' noise sources: the exact samplers' laws against their probability mass
functions, the grid that keeps secure mode's privacy ratio, and numpy's draws unchanged."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from dpgenome import noise as N


def _chi2_p(draws: list[int], pmf, support: range) -> float:
    """Chi-square goodness of fit of integer ``draws`` against ``pmf`` on ``support``, the
    values outside it pooled into one cell."""
    draws_a = np.asarray(draws)
    observed = [int((draws_a == k).sum()) for k in support]
    expected = [len(draws) * pmf(k) for k in support]
    observed.append(len(draws) - sum(observed))
    expected.append(len(draws) - sum(expected))
    return float(stats.chisquare(observed, expected).pvalue)


@pytest.mark.parametrize("gamma", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(5, 2)])
def test_bernoulli_exp__succeeds_with_probability_exp_minus_gamma(gamma: Fraction) -> None:
    rand = random.Random(1)
    n = 20_000
    hits = sum(N.bernoulli_exp(gamma, rand) for _ in range(n))
    p = math.exp(-float(gamma))
    assert abs(hits / n - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-12


def test_geometric__law_and_the_test_has_power() -> None:
    rand = random.Random(2)
    rate = Fraction(2, 5)
    draws = [N.geometric(rate, rand) for _ in range(20_000)]

    def pmf(g: int, r: float = float(rate)) -> float:
        return (1 - math.exp(-r)) * math.exp(-r * g)

    assert _chi2_p(draws, pmf, range(15)) > 1e-3
    assert _chi2_p(draws, lambda g: pmf(g, 0.45), range(15)) < 1e-6  # a wrong rate is seen


def test_discrete_laplace__law() -> None:
    rand = random.Random(3)
    scale = Fraction(5, 2)
    draws = [N.discrete_laplace(scale, rand) for _ in range(20_000)]
    r = 1 / float(scale)
    norm = (1 - math.exp(-r)) / (1 + math.exp(-r))
    assert _chi2_p(draws, lambda y: norm * math.exp(-r * abs(y)), range(-12, 13)) > 1e-3


def test_floor_laplace__is_the_integer_part_of_laplace_noise() -> None:
    """``P(floor X = k)`` for ``X ~ Laplace(b)``: the continuous law integrated over
    ``[k, k + 1)``; and numpy's continuous draws, floored, agree with the same law."""
    rand = random.Random(4)
    b = Fraction(3, 2)
    draws = [N.floor_laplace(b, rand) for _ in range(20_000)]
    cdf = stats.laplace(scale=float(b)).cdf

    def pmf(k: int) -> float:
        return float(cdf(k + 1) - cdf(k))

    assert _chi2_p(draws, pmf, range(-8, 8)) > 1e-3
    floored = np.floor(np.random.default_rng(4).laplace(scale=float(b), size=20_000))
    assert _chi2_p(floored.astype(int).tolist(), pmf, range(-8, 8)) > 1e-3
    # the symmetric discrete Laplace is a different law, and the test tells them apart
    r = 1 / float(b)
    sym = (1 - math.exp(-r)) / (1 + math.exp(-r))
    assert _chi2_p(draws, lambda y: sym * math.exp(-r * abs(y)), range(-8, 8)) < 1e-6


@pytest.mark.parametrize("sigma2", [Fraction(9, 4), Fraction(40)])
def test_discrete_gaussian__law(sigma2: Fraction) -> None:
    rand = random.Random(5)
    draws = [N.discrete_gaussian(sigma2, rand) for _ in range(20_000)]
    s2 = float(sigma2)
    half = int(6 * math.sqrt(s2)) + 1
    weights = {k: math.exp(-(k * k) / (2 * s2)) for k in range(-half - 40, half + 41)}
    total = sum(weights.values())
    assert _chi2_p(draws, lambda k: weights[k] / total, range(-half, half + 1)) > 1e-3


def test_secure_gaussian__on_its_grid_with_the_calibrated_scale() -> None:
    """A zero query: the output is pure noise, a whole number of grid steps, of sd ``sd``
    (widened by ``1 + k``, invisible at this precision); a query moves it by itself."""
    sn = N.SecureNoise(500, rand=random.Random(6))
    out = sn.gaussian(np.zeros(4000), sd=2.0, sensitivity=0.5)
    step, _ = sn.grid(2.0, 0.5, 4000)
    assert np.all(np.mod(out / step, 1.0) == 0.0)
    assert out.mean() == pytest.approx(0.0, abs=4.5 * 2.0 / math.sqrt(4000))
    assert out.std() == pytest.approx(2.0, rel=0.05)
    shifted = N.SecureNoise(500, rand=random.Random(6)).gaussian(
        np.full(4000, 7.25), sd=2.0, sensitivity=0.5
    )
    assert shifted == pytest.approx(out + 7.25, abs=step)


@pytest.mark.parametrize(
    ("n", "d"), [(10, 1), (1_000, 2), (20_000, 500), (200_000, 40), (5_000_000, 160)]
)
def test_secure_grid__keeps_the_calibrated_privacy_ratio(n: int, d: int) -> None:
    """Rounding to the grid moves a neighbour's query by at most ``sqrt(d)`` steps more, and
    the float sums by ``k / 2`` of the sensitivity (two sums of n terms, each within
    ``(n + 1) n u s`` in L2 whatever ``d``): the widened noise keeps the ratio of
    sensitivity to noise that the accountant was given."""
    sn = N.SecureNoise(n)
    sens, sd = 0.3, 1.7
    step, sd_steps = sn.grid(sd, sens, d)
    k = sn.widening()
    assert math.frexp(step)[0] == 0.5  # a power of two
    floats = 2 * (n + 1) * n * Fraction(N.UNIT_ROUNDOFF)  # both sums' rounding, over s
    assert k >= N.MIN_WIDENING and Fraction(k) / 2 >= floats
    assert step * math.sqrt(d) <= k * sens / 2
    worst = Fraction(sens) * (1 + Fraction(k) / 2) / Fraction(step) + Fraction(math.sqrt(d))
    assert worst / sd_steps <= Fraction(sens) / Fraction(sd)
    assert float(sd_steps) >= N.MIN_GAUSSIAN_STEPS


def test_secure_grid__refuses_a_sensitivity_no_step_fits() -> None:
    """A bound that underflows to 0 would make the step 0.5 (frexp of 0): the
    grid refuses it rather than round a query by more than the widening covers."""
    with pytest.raises(ValueError, match="no grid step fits"):
        N.SecureNoise(100).grid(1.0, 5e-324, 4)


def test_secure_laplace__on_its_grid_with_the_calibrated_scale() -> None:
    sn = N.SecureNoise(500, rand=random.Random(7))
    out = np.array([sn.laplace(3.0, scale=1.5, sensitivity=0.25) for _ in range(20_000)])
    step, _ = sn.grid(1.5, 0.25)
    assert np.all(np.mod(out / step, 1.0) == 0.0)
    assert np.median(out) == pytest.approx(3.0, abs=0.05)
    assert np.abs(out - 3.0).mean() == pytest.approx(1.5, rel=0.03)  # E|X| = b


def test_secure_exponential__draws_each_candidate_with_its_softmax_weight() -> None:
    sn = N.SecureNoise(50, rand=random.Random(8))
    u = np.array([0.0, 1.0, 2.5, -3.0, 2.0])
    draws = [sn.exponential(u, scale=1.2) for _ in range(20_000)]
    w = np.exp(u / 1.2)
    p = w / w.sum()
    assert _chi2_p(draws, lambda i: float(p[i]), range(len(u))) > 1e-3
    # the same law as numpy's Gumbel noisy max
    gen = N.GeneratorNoise(np.random.default_rng(8))
    gumbel = [gen.exponential(u, scale=1.2) for _ in range(20_000)]
    assert _chi2_p(gumbel, lambda i: float(p[i]), range(len(u))) > 1e-3


def test_secure_noise__refuses_what_it_cannot_calibrate() -> None:
    sn = N.SecureNoise(10)
    with pytest.raises(ValueError, match="finite"):
        sn.gaussian([1.0, math.nan], sd=1.0, sensitivity=1.0)
    with pytest.raises(ValueError, match="positive, finite scale"):
        sn.gaussian([1.0], sd=0.0, sensitivity=1.0)
    with pytest.raises(ValueError, match="sensitivity"):
        sn.laplace(1.0, scale=1.0, sensitivity=0.0)
    with pytest.raises(ValueError, match="candidate"):
        sn.exponential([], scale=1.0)


def test_generator_noise__is_numpy_s_draws_in_call_order() -> None:
    """The default path is the samplers every fixed-noise benchmark was measured with."""
    gen = N.GeneratorNoise(np.random.default_rng(9))
    ref = np.random.default_rng(9)
    x = np.array([1.0, -2.0, 0.5])
    assert np.array_equal(
        gen.gaussian(x, sd=0.7, sensitivity=1.0), x + ref.normal(scale=0.7, size=3)
    )
    assert gen.laplace(2.0, scale=0.3, sensitivity=1.0) == 2.0 + ref.laplace(scale=0.3)
    u = np.array([0.1, 0.4, 0.2])
    assert gen.exponential(u, scale=0.5) == int(np.argmax(u + ref.gumbel(scale=0.5, size=3)))


def test_mechanism_noise__secure_only_when_asked() -> None:
    rng = np.random.default_rng(0)
    assert isinstance(N.mechanism_noise(True, rng, 100), N.SecureNoise)
    plain = N.mechanism_noise(False, rng, 100)
    assert isinstance(plain, N.GeneratorNoise) and plain.rng is rng


def test_secure_mode__on_by_default_unless_the_noise_is_fixed(monkeypatch) -> None:
    """A release is made with the exact samplers unless asked otherwise; only the tests'
    and benchmarks' fixed noise (which exact samplers cannot reproduce) turns the default
    off. An explicit choice stands either way, and a release configuration records the
    resolved choice (its cache key and results name it)."""
    from dpgenome.config import ReleaseConfig
    from dpgenome.synthconfig import SynthConfig

    def release(**kw) -> ReleaseConfig:
        return ReleaseConfig(cohort="c", pheno="p", policy="internal", out="o", **kw)

    monkeypatch.delenv(N.NOISE_SEED_ENV, raising=False)
    assert SynthConfig("BMD").validate(100).secure_mode is True
    assert release().secure_mode is True and release().to_dict()["secure_mode"] is True
    assert SynthConfig("BMD", secure_mode=False).validate(100).secure_mode is False
    assert release(secure_mode=False).secure_mode is False
    monkeypatch.setenv(N.NOISE_SEED_ENV, "seed")
    assert SynthConfig("BMD").validate(100).secure_mode is False
    assert release().secure_mode is False
    assert SynthConfig("BMD", secure_mode=True).validate(100).secure_mode is True
