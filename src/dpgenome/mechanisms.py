"""The mechanisms a privacy ledger lists, with their parameters validated.

Each kind is one frozen dataclass: :class:`DpSgdMechanism` (a Poisson-subsampled Gaussian
run ``steps`` times), :class:`GaussianMechanism` (``count`` Gaussian queries of an L2
sensitivity), and the kinds whose steps are each ``epsilon``-DP: :class:`PureDpMechanism`,
:class:`ExponentialMechanism` and :class:`LaplaceMechanism` (:data:`EpsilonSteps`). What
each kind means and how it is accounted: :mod:`dpgenome.accountant` and
:mod:`dpgenome.privacy_loss`. :func:`validate_mechanism` rejects a parameter no mechanism
can have (a negative noise multiplier, a sample rate above 1, a fractional count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dpgenome.errors import ConfigError

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
    the bounded-range worst case (:func:`~dpgenome.privacy_loss._rdp_bounded_range`) where an
    accountant has it."""

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
EPSILON_KINDS: dict[str, type[EpsilonSteps]] = {
    "pure-dp": PureDpMechanism,
    "exponential": ExponentialMechanism,
    "laplace": LaplaceMechanism,
}


def _check_finite_nonneg(name: str, what: str, value: float, *, allow_inf: bool = False) -> None:
    if not (isinstance(value, int | float) and not math.isnan(value)) or value < 0:
        raise ConfigError(f"mechanism {name!r}: {what} must be a number >= 0, got {value!r}")
    if math.isinf(value) and not allow_inf:
        raise ConfigError(f"mechanism {name!r}: {what} must be finite, got {value!r}")


def validate_mechanism(m: Mechanism) -> None:
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
