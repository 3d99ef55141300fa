"""A lifetime total: the releases that included an individual, composed.

What :class:`~dpgenome.lifetime.LifetimeLedger` charges a release with. Each earlier release is a
:class:`ReleaseBudget` (its epsilon, delta and, where recorded, its mechanisms); :func:`compose`
and :func:`compose_replace_one` compose them; a :class:`LifetimeTotal` is what the ledger
reports.

Composition across releases is per individual, over the releases that included them. Where
each release's mechanisms are recorded (its ledger's ``mechanisms``: DP-SGD runs, Gaussian,
exponential and Laplace steps, kept only when they re-account to at least the release's
epsilon; a release whose mechanisms re-account to more costs that more), they are composed by
the same accountants as one release's (:class:`dpgenome.accountant.Ledger`: the larger of
Opacus's RDP and Google's PLD) at the smallest delta among those releases; the epsilon taken
is the smaller of that and *basic composition* (Dwork & Roth 2014, Thm 3.16: the epsilons
add), both valid at the delta reported, the sum of the releases' deltas. Reading the
composition at the smallest delta, not the sum, keeps a release with a large delta (a small
cohort's 1/n^1.1) from lowering everyone's total. Releases whose mechanisms are unknown
(recorded by an older ledger, a results document without them, or recorded mechanisms that
do not parse) add their epsilons to the composed rest. Releases of the demo's mechanisms
(epsilon 8 each, delta 6.7e-4) compose to 12.7, 16.8 and 20.4 for two, three and four, where
basic composition gives 16, 24 and 32 (:func:`compose`). A release with epsilon = inf (no
formal privacy) makes its individuals' lifetime totals infinite. The epsilon and the delta
reported are each the largest over the individuals (an upper bound on every individual's
pair, possibly reached by two different individuals).

The totals are valid bounds for the releases made. A cap checked release by release, with
later releases chosen after seeing earlier ones, is a *privacy filter*: proven for adding
epsilons (Rogers et al. 2016) and for RDP at fixed orders (Feldman & Zrnic 2021), not in
general for the composed figure used here.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dpgenome.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LifetimeTotal:
    """What the individuals of a cohort have spent: ``epsilon`` and ``delta`` are the most
    any one of them has, composed over the releases that included them (:func:`compose`;
    ``basic_epsilon``: the sum of those releases' epsilons, for comparison). ``individuals``
    is how many individuals that maximum is over, or ``None`` when the cohort's individuals
    are unknown to the ledger and only the releases recorded under its fingerprint count."""

    fingerprint: str
    epsilon: float
    delta: float
    releases: int
    individuals: int | None = None
    basic_epsilon: float | None = None
    #: the earlier releases reaching these individuals (what an export's check relied on)
    release_ids: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    #: the same releases between cohorts that replace one individual
    #: (:func:`compose_replace_one`; asked for with ``LifetimeLedger.total(replace_one=True)``):
    #: ``(epsilon, delta)``, ``None`` when no pair bounds it; absent when not asked for
    replace_one: tuple[float, float] | None = field(default=None, compare=False)
    replace_one_accounted: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        per_individual = self.individuals is not None
        basic = self.epsilon if self.basic_epsilon is None else self.basic_epsilon
        return {
            "fingerprint": self.fingerprint,
            "epsilon": None if math.isinf(self.epsilon) else self.epsilon,
            "no_formal_privacy": math.isinf(self.epsilon),
            "delta": self.delta,
            "releases": self.releases,
            "unit": "individual" if per_individual else "cohort fingerprint",
            "individuals": self.individuals,
            "epsilon_basic_composition": None if math.isinf(basic) else basic,
            "composition": COMPOSITION if per_individual else COMPOSITION_UNLINKED,
        } | ({"replace_one": self._replace_one_dict()} if self.replace_one_accounted else {})

    def _replace_one_dict(self) -> dict[str, Any]:
        if self.replace_one is None:
            return {"epsilon": None, "delta": None, "note": REPLACE_ONE_UNBOUNDED}
        eps, delta = self.replace_one
        return {
            "epsilon": None if math.isinf(eps) else eps,
            "no_formal_privacy": math.isinf(eps),
            "delta": delta,
            "composition": REPLACE_ONE_COMPOSITION,
        }


_COMPOSED = (
    "composed by the accountants (the larger of Opacus RDP and PLD, at the smallest of the "
    "releases' deltas; delta: their sum) where the releases' mechanisms are recorded, never "
    "more than the sum of the epsilons"
)
#: how :class:`LifetimeTotal` composes, as the manifest and ``dpgenome ledger --json`` say it
COMPOSITION = (
    "per individual: the most any one individual has spent over the releases that included "
    f"them, {_COMPOSED}"
)
COMPOSITION_UNLINKED = (
    f"over the releases recorded under this cohort fingerprint, {_COMPOSED} (the ledger does "
    "not know this cohort's individuals, so releases of overlapping cohorts are not linked)"
)


#: how :func:`compose_replace_one` composes, as ``dpgenome ledger --json`` says it
REPLACE_ONE_COMPOSITION = (
    "between cohorts of the same size that differ in one individual: each release's own "
    "replace-one accounting where its mechanisms are recorded (else group privacy, twice its "
    "epsilon), composed as the add/remove total is"
)
REPLACE_ONE_UNBOUNDED = (
    "no bound: a release without recorded mechanisms has group privacy's delta, "
    "(1 + e^epsilon) delta, at 1 or more (or the deltas sum to 1)"
)


@dataclass(frozen=True)
class ReleaseBudget:
    """One release's privacy cost as the lifetime ledger composes it: its (epsilon, delta)
    (epsilon inf = no formal privacy) and its ledger's mechanisms as canonical JSON (``None``:
    unknown, so only its epsilon composes)."""

    epsilon: float
    delta: float
    mechanisms: str | None = None

    @classmethod
    def of(cls, epsilon: float, delta: float, ledger: Any) -> ReleaseBudget:
        """From a release's (epsilon, delta) and its ledger object (``results["ledger"]``).
        Mechanisms are kept only when re-accounting them at ``delta`` gives at least the
        release's epsilon; unreadable or incomplete ones are left out, with a warning (the
        release then composes by its epsilon alone: the safe side). Mechanisms that
        re-account to *more* than the epsilon stated are kept, and the budget's epsilon is
        theirs (with a warning): an understated epsilon would lower every total it is in."""
        mechanisms = ledger.get("mechanisms") if isinstance(ledger, Mapping) else None
        if math.isinf(epsilon) or not isinstance(mechanisms, list):
            return cls(epsilon, delta)
        text = json.dumps(mechanisms, sort_keys=True, separators=(",", ":"))
        accounted = _accounted(text, delta, epsilon) if 0.0 < delta < 1.0 else None
        if accounted is None or accounted < epsilon * (1.0 - 1e-9):
            # unreadable, or not all of what the release spent (an incomplete or stale list)
            _warn_once(
                "the release's ledger mechanisms "
                + (
                    "cannot be re-accounted"
                    if accounted is None
                    else f"account for epsilon {accounted:.4g}, not the {epsilon:.4g} it reports"
                )
                + "; its lifetime cost is its epsilon alone"
            )
            return cls(epsilon, delta)
        if accounted > epsilon * (1.0 + 1e-9):
            _warn_once(
                f"the release's ledger states epsilon {epsilon:.4g}, but its mechanisms "
                f"re-account to {accounted:.4g}; its lifetime cost is the larger"
            )
        return cls(max(epsilon, accounted), delta, text)


@functools.lru_cache(maxsize=64)
def _warn_once(message: str) -> None:
    """Log ``message`` once per process (an export reads a release's budget several times)."""
    log.warning("%s", message)


def _mechanisms(text: str, delta: float, epsilon: float) -> list[Any] | None:
    """The accountant's mechanisms of a recorded release of ``epsilon``, or None when they
    do not parse (:meth:`~dpgenome.accountant.Ledger.from_dict`)."""
    from dpgenome.accountant import Ledger

    try:
        return Ledger.from_dict(_as_ledger(text, delta, epsilon)).mechanisms
    except (ConfigError, ValueError, TypeError, KeyError):
        return None


def _as_ledger(text: str, delta: float, epsilon: float) -> dict[str, Any]:
    """A release ledger of the mechanisms ``text`` at ``delta``, stating ``epsilon`` (so that
    an empty list for a release that spent something does not parse)."""
    return {
        "delta": delta,
        "epsilon": epsilon if math.isfinite(epsilon) else None,
        "mechanisms": json.loads(text),
    }


def compose(budgets: Iterable[ReleaseBudget]) -> tuple[float, float, float]:
    """``(epsilon, delta, basic epsilon)`` of a set of releases for one individual.

    ``delta`` is the sum of the releases' deltas and ``basic epsilon`` the sum of their
    epsilons (basic composition: a valid pair). The epsilon is the smaller of that and the
    releases' mechanisms composed by :class:`~dpgenome.accountant.Ledger` (the larger of its
    two accountants, as a release reports) at the *smallest* positive delta among them, plus
    the epsilons of releases whose mechanisms are unknown or do not parse; that pair holds at
    a delta no larger than the sum, so the smaller epsilon holds at the sum. Composing at the
    smallest delta keeps the total from falling when a release is added: a release with a
    large delta (a small cohort's 1/n^1.1) would otherwise raise the delta everyone's total is
    read at and lower their epsilon."""
    return _compose(_ordered(budgets))


def _ordered(budgets: Iterable[ReleaseBudget]) -> tuple[ReleaseBudget, ...]:
    """The budgets in a fixed order: one cache entry per set of releases, however listed."""
    return tuple(sorted(budgets, key=lambda b: (b.epsilon, b.delta, b.mechanisms or "")))


@functools.lru_cache(maxsize=512)
def _compose(budgets: tuple[ReleaseBudget, ...]) -> tuple[float, float, float]:
    delta = math.fsum(b.delta for b in budgets)
    basic = _sum_epsilon(None if math.isinf(b.epsilon) else b.epsilon for b in budgets)
    if math.isinf(basic):
        return basic, delta, basic
    # a release whose recorded mechanisms do not parse is unknown: its epsilon adds
    known: list[tuple[ReleaseBudget, list[Any]]] = []
    rest: list[float] = []
    for b in budgets:
        parsed = None if b.mechanisms is None else _mechanisms(b.mechanisms, b.delta, b.epsilon)
        if parsed is None:
            rest.append(b.epsilon)
        else:
            known.append((b, parsed))
    strictest = min((b.delta for b, _ in known if b.delta > 0), default=0.0)
    if len(known) < 2 or not 0.0 < strictest < 1.0:
        return basic, delta, basic
    together = _together([parsed for _, parsed in known], strictest)
    return min(basic, together.epsilon() + math.fsum(rest)), delta, basic


def _together(releases: Sequence[Sequence[Any]], delta: float) -> Any:
    """One :class:`~dpgenome.accountant.Ledger` at ``delta`` of several releases' mechanisms
    (renamed per release, so equal names do not collide)."""
    from dpgenome.accountant import Ledger

    together = Ledger(delta)
    for i, parsed in enumerate(releases):
        for m in parsed:
            together.add(dataclasses.replace(m, name=f"release {i + 1}: {m.name}"))
    return together


def compose_replace_one(budgets: Iterable[ReleaseBudget]) -> tuple[float, float] | None:
    """``(epsilon, delta)`` of a set of releases for one individual between cohorts of the
    same size that differ in that individual (replace one), or ``None`` when no pair
    bounds it. ``epsilon`` is ``inf`` when a release had no formal privacy.

    A release whose mechanisms are recorded takes its own replace-one accounting
    (:meth:`~dpgenome.accountant.Ledger.replace_one`) at its delta; any other its group-privacy
    pair ``(2 eps, (1 + e^eps) delta)`` (:func:`dpgenome.accountant.replace_one`), which
    bounds nothing once that delta reaches 1. ``delta`` is the sum of those deltas; the
    epsilon the smaller of the sum of the epsilons (basic composition) and the recorded
    mechanisms composed together under replace-one at the smallest of their deltas plus the
    other releases' epsilons -- the add/remove figure's rule (:func:`compose`), neighbour
    relation aside."""
    return _compose_replace(_ordered(budgets))


@functools.lru_cache(maxsize=512)
def _compose_replace(budgets: tuple[ReleaseBudget, ...]) -> tuple[float, float] | None:
    from dpgenome.accountant import reaccount_replace_one, replace_one

    if any(math.isinf(b.epsilon) for b in budgets):
        return math.inf, math.fsum(b.delta for b in budgets)
    known: list[tuple[ReleaseBudget, list[Any]]] = []
    pairs: list[tuple[float, float]] = []  # each release's own (epsilon, delta)
    rest: list[tuple[float, float]] = []  # of the releases without mechanisms
    for b in budgets:
        parsed = None if b.mechanisms is None else _mechanisms(b.mechanisms, b.delta, b.epsilon)
        if parsed is not None and 0.0 < b.delta < 1.0:
            assert b.mechanisms is not None  # parsed from them
            known.append((b, parsed))
            own = reaccount_replace_one(_as_ledger(b.mechanisms, b.delta, b.epsilon))
            pairs.append((own, b.delta))
            continue
        group = replace_one(b.epsilon, b.delta)
        eps, d = group["epsilon"], group["delta"]
        if not isinstance(eps, int | float) or not isinstance(d, int | float) or d >= 1.0:
            return None  # group privacy bounds nothing
        rest.append((float(eps), float(d)))
        pairs.append(rest[-1])
    delta = math.fsum(d for _, d in pairs)
    if delta >= 1.0:
        return None
    basic = math.fsum(e for e, _ in pairs)
    if len(known) < 2:
        return basic, delta
    strictest = min(b.delta for b, _ in known)
    together = _together([parsed for _, parsed in known], strictest)
    tight = float(together.replace_one(strictest)["epsilon"]) + math.fsum(e for e, _ in rest)
    return min(basic, tight), delta


def _accounted(text: str, delta: float, epsilon: float) -> float | None:
    """A release's epsilon at ``delta`` re-accounted from its recorded mechanisms (the larger
    of the two accountants), or None when they do not parse (for a release stating
    ``epsilon``)."""
    from dpgenome.accountant import reaccount

    try:
        return reaccount(_as_ledger(text, delta, epsilon))["epsilon"]
    except (ConfigError, ValueError, TypeError):
        return None


def _sum_epsilon(values: Iterable[float | None]) -> float:
    """Basic composition of stored epsilons (NULL = no formal privacy = infinite)."""
    eps = list(values)
    return math.inf if any(e is None for e in eps) else math.fsum(e for e in eps if e is not None)
