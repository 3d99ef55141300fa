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

Composition is tight, by two independent accountants (:mod:`dpgenome.privacy_loss`):
Opacus's Rényi DP and Google's ``dp_accounting`` privacy loss distributions.
The mechanisms' parameters and their validation are in :mod:`dpgenome.mechanisms`.

The released epsilon is ``max(opacus_rdp, pld)`` by default (``reported="max"``): both are
valid upper bounds, PLD is usually the tighter, and taking the larger guards the release against a
defect in either implementation. ``reported="pld"`` (justified: PLD with pessimistic
rounding is itself a rigorous upper bound) or ``"rdp"`` may be chosen and is recorded --
not ``"pld"`` in secure mode, whose Gaussian steps are discrete Gaussians: their RDP is the
continuous Gaussian's (Canonne, Kamath & Steinke 2020), their PLD not proven to be.

:func:`dpgenome.calibrate.calibrate` finds noise multipliers *before* training so that the
composed epsilon is at most the target; ``--epsilon inf`` gives a ledger in "no formal
privacy" mode (no noise, no clipping) labelled :data:`NO_PRIVACY_LABEL`.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any, Literal

from dpgenome.errors import ConfigError
from dpgenome.jsonvalues import finite_or_none, is_number
from dpgenome.mechanisms import (
    EPSILON_KINDS,
    DpSgdMechanism,
    EpsilonSteps,
    ExponentialMechanism,
    GaussianMechanism,
    LaplaceMechanism,
    Mechanism,
    PureDpMechanism,
    validate_mechanism,
)
from dpgenome.privacy_loss import PLD_INTERVAL, gdp_mu_of, pld_epsilon, rdp_epsilon

#: the label used everywhere (dossier, CLI, ledger.json) for a release without a guarantee
NO_PRIVACY_LABEL = "no formal privacy"

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


def _number(entry: dict[str, Any], key: str, i: int, *, default: float | None = None) -> float:
    """Field ``key`` of ledger mechanism ``i``: a JSON number (``default`` when absent)."""
    if key not in entry:
        if default is not None:
            return default
        raise ConfigError(f"ledger mechanism {i}: no {key}")
    value = entry[key]
    if not is_number(value):
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
    if not is_number(value) or not (isinstance(value, int) or float(value).is_integer()):
        raise ConfigError(
            f"ledger mechanism {i}: {key} must be a whole number, got {_shown(value)}"
        )
    return int(value)


# ---------------------------------------------------------------------------- the ledger


class Ledger:
    """Every mechanism of one release and its composed ``(epsilon, delta)``.

    ``delta`` is the release's delta (explicit; see :func:`default_delta`). ``target_epsilon``
    is what :func:`~dpgenome.calibrate.calibrate` aimed for (recorded, never trusted: the
    epsilon reported is always recomputed from the mechanisms). ``no_formal_privacy=True`` is
    the ``--epsilon inf`` mode: mechanisms are recorded with zero noise and the epsilon is
    infinite.
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
        validate_mechanism(mechanism)
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
        if kind not in EPSILON_KINDS:
            raise ConfigError(f"unknown epsilon-step kind {kind!r}")
        m = EPSILON_KINDS[kind](name, float(epsilon), int(count))
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
            "epsilon": finite_or_none(max(acc.values())),
            "delta": d,
            "accountants": {k: finite_or_none(v) for k, v in acc.items()},
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
        mus = [mu for m in self.mechanisms if (mu := gdp_mu_of(m)) is not None]
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
                    "max_grad_norm": finite_or_none(m.max_grad_norm),
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
                entry |= {"epsilon": finite_or_none(m.epsilon), "count": m.count}
                if isinstance(m, LaplaceMechanism):
                    entry["noise_multiplier"] = finite_or_none(m.noise_multiplier)
            entry["epsilon_share"] = finite_or_none(share)
            mechs.append(entry)
        mu = self.gdp_mu()
        total = self._report(acc) if not self._no_privacy else math.inf
        return {
            "epsilon": finite_or_none(total),
            "delta": d,
            "unit": "individual",
            "neighbouring": "add/remove one individual",
            "assumptions": list(self.assumptions),
            "replace_one": self.replace_one(d),
            "no_formal_privacy": self._no_privacy,
            "label": self.label,
            "target_epsilon": finite_or_none(self.target_epsilon),
            "accountants": {k: finite_or_none(v) for k, v in acc.items()},
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
                and is_number(stated)
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
                elif kind in EPSILON_KINDS:
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
        return {"epsilon": finite_or_none(2 * epsilon), "delta": None}
    d = (1 + math.exp(epsilon)) * delta
    if d < 1.0:
        return {"epsilon": 2 * epsilon, "delta": d}
    return {
        "epsilon": 2 * epsilon,
        "delta": 1.0,
        "note": "no guarantee: group privacy's delta, (1 + e^epsilon) delta, reaches 1",
    }
