"""What a policy's evaluation yields, and how it reads the results document's metrics.

Every rule reads its metric by a dotted path into ``results.json`` (:func:`lookup`; a
missing value is :func:`is_missing`, never a pass) and yields one :class:`Finding` -- PASS,
FAIL or NOT EVALUATED -- with the measured value, the threshold and the confidence interval
where the audit reports one. An :class:`Evaluation` holds a policy's findings and its
:class:`Verdict`. Privacy claims are printed rounded up, never down (:func:`fmt_claim`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    NOT_EVALUATED = "NOT EVALUATED"


class Verdict(StrEnum):
    APPROVE = "APPROVE"
    BLOCK = "BLOCK"


# ---------------------------------------------------------------------------- results access

_MISSING = object()


def lookup(results: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, or the module-level ``_MISSING`` sentinel.

    Keys may themselves contain dots (``tpr_at_fpr_0.01``, ``1e-08`` thresholds written as
    ``1.0e-08``): at each level the longest run of segments that names a key wins.
    """
    parts = path.split(".")
    node: Any = results
    i = 0
    while i < len(parts):
        if not isinstance(node, Mapping):
            return _MISSING
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node:
                node = node[key]
                i = j
                break
        else:
            return _MISSING
    return node


def value_at(results: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """Value at a dotted path (:func:`lookup`), or ``default`` where no key names it (a key
    present with ``null`` reads as ``None``)."""
    value = lookup(results, path)
    return default if is_missing(value) else value


def is_missing(value: Any) -> bool:
    return value is _MISSING


def why_missing(results: Mapping[str, Any], path: str) -> str:
    """Why a metric is absent: the nearest enclosing block's ``reason`` (an audit that was
    not run says why), else "<path> is missing"."""
    parts = path.split(".")
    for k in range(len(parts) - 1, 0, -1):
        block = lookup(results, ".".join(parts[:k]))
        if isinstance(block, Mapping) and isinstance(block.get("reason"), str):
            status = block.get("status", "not measured")
            return f"{path} is missing ({status}: {block['reason']})"
    return f"{path} is missing"


def as_number(value: Any, *, finite: bool = False) -> float | None:
    """``value`` as a float when it is a number (not a bool, not NaN; not infinite either
    with ``finite``), else ``None``: results files are JSON of any provenance."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if math.isnan(value) or (finite and math.isinf(value)):
        return None
    return float(value)


def as_interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = as_number(value[0]), as_number(value[1])
        if lo is not None and hi is not None:
            return (lo, hi)
    return None


def fmt(value: Any) -> str:
    """Short human-readable number (used in findings and the dossier)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if 1e4 <= abs(value) < 1e9:  # 19,580 rather than 1.958e+04
            return f"{value:,.0f}"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e9):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def fmt_claim(value: Any, digits: int = 4) -> str:
    """A privacy claim (an epsilon or delta) for reading: rounded *up* to ``digits``
    significant digits, so a printed claim is never below the computed one (7.9827 reads
    7.983, not 7.982; an epsilon of 10.0004 over a cap of 10 reads 10.01, not 10)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return fmt(value)
    if value <= 0:
        return fmt(float(value))
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    # the tolerance keeps a value that is already exact (8.0, 0.0125) from moving up a step
    up = math.ceil(round(value * scale, 9)) / scale
    return f"{up:.{digits}g}"


def claim_text(rule: str, value: Any) -> str:
    """A finding's measured value: a privacy claim (``privacy.*`` epsilon and delta rules) by
    :func:`fmt_claim`, anything else by :func:`fmt`."""
    claims = (
        "privacy.no_formal_privacy",
        "privacy.max_epsilon",
        "privacy.max_lifetime_epsilon",
        "privacy.max_delta",
        "privacy.max_lifetime_delta",
        "privacy.max_replace_one_epsilon",
        "privacy.max_lifetime_replace_one_epsilon",
    )
    return fmt_claim(value) if rule in claims else fmt(value)


# ---------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class EvaluationContext:
    """What the results document cannot know: the privacy its individuals spent before this
    release (from the lifetime ledger: the most any one of them spent, and over how many
    releases that included any of them). ``None`` = unknown, so a lifetime cap is NOT
    EVALUATED (and blocks)."""

    lifetime_epsilon_spent: float | None = None
    lifetime_delta_spent: float | None = None
    lifetime_releases: int | None = None
    #: the most-spent individual's total with this release, its mechanisms composed with
    #: theirs (``None``: not computed, so the cap adds this release's epsilon)
    lifetime_epsilon_after: float | None = None
    #: the most-spent individual's delta with this release (``None``: not computed, so the
    #: cap adds this release's delta)
    lifetime_delta_after: float | None = None
    #: the most-spent individual's replace-one epsilon with this release, composed
    #: (:func:`dpgenome.lifetime_compose.compose_replace_one`; infinite: no bound; ``None``: not
    #: computed, as only a replace-one lifetime cap asks for it)
    lifetime_replace_one_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        eps, after = self.lifetime_epsilon_spent, self.lifetime_epsilon_after
        one = self.lifetime_replace_one_after
        return {
            "lifetime_epsilon_spent": None if eps is not None and math.isinf(eps) else eps,
            "lifetime_epsilon_spent_is_inf": eps is not None and math.isinf(eps),
            "lifetime_delta_spent": self.lifetime_delta_spent,
            "lifetime_releases": self.lifetime_releases,
            "lifetime_epsilon_after": None if after is not None and math.isinf(after) else after,
            "lifetime_epsilon_after_is_inf": after is not None and math.isinf(after),
            "lifetime_delta_after": self.lifetime_delta_after,
        } | (
            {}
            if one is None
            else {
                "lifetime_replace_one_after": None if math.isinf(one) else one,
                "lifetime_replace_one_after_is_inf": math.isinf(one),
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EvaluationContext:
        """The inverse of :meth:`to_dict` (``None``: nothing known). Raises ``ValueError``
        naming the key when ``data`` is not what :meth:`to_dict` writes (a context read
        from a hand-edited or damaged manifest)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"the context is a {type(data).__name__}, not a mapping")
        eps, after = (
            _context_epsilon(data, "lifetime_epsilon_spent"),
            _context_epsilon(data, "lifetime_epsilon_after"),
        )
        releases = data.get("lifetime_releases")
        if releases is not None and (
            isinstance(releases, bool) or not isinstance(releases, int) or releases < 0
        ):
            raise ValueError(f"lifetime_releases is not a non-negative integer ({releases!r})")
        return cls(
            eps,
            _context_amount(data, "lifetime_delta_spent"),
            releases,
            after,
            _context_amount(data, "lifetime_delta_after"),
            _context_epsilon(data, "lifetime_replace_one_after"),
        )


def _context_epsilon(data: Mapping[str, Any], key: str) -> float | None:
    """``data[key]`` as :func:`_context_amount`, infinite when ``data[key + "_is_inf"]``."""
    is_inf = data.get(f"{key}_is_inf", False)
    if not isinstance(is_inf, bool):
        raise ValueError(f"{key}_is_inf is not true or false ({is_inf!r})")
    return math.inf if is_inf else _context_amount(data, key)


def _context_amount(data: Mapping[str, Any], key: str) -> float | None:
    """``data[key]``: absent or null (unknown), or a finite non-negative number."""
    value = data.get(key)
    if value is None:
        return None
    number = as_number(value, finite=True)
    if number is None or number < 0:
        raise ValueError(f"{key} is not a non-negative number ({value!r})")
    return number


@dataclass(frozen=True)
class Finding:
    rule: str
    title: str
    status: Status
    measured: float | str | None
    threshold: str
    metric: str
    required: bool
    detail: str = ""
    ci: tuple[float, float] | None = None
    policy_line: int | None = None

    @property
    def blocks(self) -> bool:
        return self.required and self.status != Status.PASS

    def to_dict(self) -> dict[str, Any]:
        measured = self.measured
        if isinstance(measured, float) and not math.isfinite(measured):
            measured = fmt(measured)
        return {
            "rule": self.rule,
            "title": self.title,
            "status": str(self.status),
            "measured": measured,
            "threshold": self.threshold,
            "ci": None if self.ci is None else list(self.ci),
            "metric": self.metric,
            "required": self.required,
            "detail": self.detail,
            "policy_line": self.policy_line,
        }


@dataclass(frozen=True)
class Evaluation:
    policy_name: str
    policy_sha256: str
    findings: tuple[Finding, ...]
    context: EvaluationContext
    policy_purpose: str = ""
    signoff_roles: tuple[str, ...] = ()
    overrides_allowed: bool = False
    charges_blocked_releases: bool = False
    #: the policy's ``publication.open``: ``dpgenome publish`` may copy the release out
    open_publication: bool = False

    @property
    def verdict(self) -> Verdict:
        return Verdict.BLOCK if self.failing else Verdict.APPROVE

    @property
    def failing(self) -> tuple[Finding, ...]:
        """The findings that block: required rules that FAIL or are NOT EVALUATED."""
        return tuple(f for f in self.findings if f.blocks)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Advisory rules that did not pass."""
        return tuple(f for f in self.findings if not f.required and f.status != Status.PASS)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(f.status == s for f in self.findings) for s in Status}

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy_name,
            "policy_sha256": self.policy_sha256,
            "verdict": str(self.verdict),
            "failing": [f.rule for f in self.failing],
            "counts": self.counts(),
            "context": self.context.to_dict(),
            "signoff_roles": list(self.signoff_roles),
            "overrides_allowed": self.overrides_allowed,
            "charges_blocked_releases": self.charges_blocked_releases,
            "findings": [f.to_dict() for f in self.findings],
        }
