"""The building blocks of a policy's rules: :class:`RuleSpec` and the checks rules share.

A rule is a :class:`RuleSpec`: its id, plain title, the metric path(s) it reads and a check
from the results document (and the :class:`~dpgenome.findings.EvaluationContext`) to one
:class:`~dpgenome.findings.Finding`. :func:`bound_rule` is the common "metric at most /
at least a threshold" check; the rule families are in :mod:`dpgenome.rules_privacy`,
:mod:`dpgenome.rules_audit` and :mod:`dpgenome.rules_fidelity`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dpgenome.findings import (
    EvaluationContext,
    Finding,
    Status,
    as_interval,
    as_number,
    fmt,
    is_missing,
    lookup,
    why_missing,
)


@dataclass(frozen=True)
class RuleSpec:
    """One configured rule: its id, plain title, the metric path(s) it reads and its check."""

    id: str
    title: str
    metric: str
    key: str  # policy key ("section.key") for the line number
    check: Callable[[Mapping[str, Any], EvaluationContext], Finding]


def make_finding(
    spec_id: str,
    title: str,
    metric: str,
    threshold: str,
    status: Status,
    measured: float | str | None,
    detail: str = "",
    ci: tuple[float, float] | None = None,
) -> Finding:
    # required / policy_line are filled in by evaluate()
    return Finding(spec_id, title, status, measured, threshold, metric, True, detail, ci, None)


def not_evaluated(spec_id: str, title: str, metric: str, threshold: str, why: str) -> Finding:
    return make_finding(spec_id, title, metric, threshold, Status.NOT_EVALUATED, None, why)


def epsilon_cap(
    rule: tuple[str, str, str, str], eps: float, cap: float, allow_no_formal: bool, detail: str
) -> Finding:
    """``eps <= cap``; an infinite epsilon passes only where the policy allows releases
    without formal privacy (its own rule reports them)."""
    rid, title, metric, threshold = rule
    if math.isinf(eps) and allow_no_formal:
        note = "cap applies to DP releases; no-formal-privacy releases are allowed"
        return make_finding(
            rid, title, metric, threshold, Status.PASS, eps, f"{detail}; {note}" if detail else note
        )
    status = Status.PASS if eps <= cap else Status.FAIL
    return make_finding(rid, title, metric, threshold, status, eps, detail)


#: a FAIL whose estimate meets the limit but whose confidence interval does not: for signers,
#: who may otherwise read it as a detected leak
WIDE_CI = (
    "the estimate itself is within the limit; the 95% CI is too wide to show it, as with a "
    "small holdout (a larger one narrows it)"
)


def bound_rule(
    rule_id: str,
    title: str,
    metric: str,
    key: str,
    *,
    max_value: float | None = None,
    min_value: float | None = None,
    ci_path: str | None = None,
    show_ci: str | None = None,
    note: str = "",
) -> RuleSpec:
    """``metric <= max`` / ``>= min``. With ``ci_path`` the rule compares the CI bound on the
    unfavourable side (upper for a max, lower for a min) and needs the CI to be present."""
    parts = []
    if min_value is not None:
        parts.append(f">= {fmt(min_value)}")
    if max_value is not None:
        parts.append(f"<= {fmt(max_value)}")
    threshold = " and ".join(parts)
    if ci_path is not None:
        threshold = (
            "95% CI upper bound " if max_value is not None else "95% CI lower bound "
        ) + threshold
    shown_metric = metric if ci_path is None else f"{metric} (CI: {ci_path})"

    def check(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
        raw = lookup(results, metric)
        if is_missing(raw):
            return not_evaluated(
                rule_id, title, shown_metric, threshold, why_missing(results, metric)
            )
        value = as_number(raw)
        if value is None:
            return not_evaluated(
                rule_id, title, shown_metric, threshold, f"{metric} is not a number ({raw!r})"
            )
        ci = None
        compared = value
        if show_ci is not None:  # shown beside the value, not compared
            raw_shown = lookup(results, show_ci)
            ci = None if is_missing(raw_shown) else as_interval(raw_shown)
        if ci_path is not None:
            raw_ci = lookup(results, ci_path)
            ci = None if is_missing(raw_ci) else as_interval(raw_ci)
            if ci is None:
                return make_finding(
                    rule_id,
                    title,
                    shown_metric,
                    threshold,
                    Status.NOT_EVALUATED,
                    value,
                    f"{ci_path} is missing: the rule needs the confidence interval",
                )
            compared = ci[1] if max_value is not None else ci[0]
        ok = (max_value is None or compared <= max_value) and (
            min_value is None or compared >= min_value
        )
        status = Status.PASS if ok else Status.FAIL
        within = (max_value is None or value <= max_value) and (
            min_value is None or value >= min_value
        )
        detail = note
        if not ok and within and ci_path is not None:
            detail = "; ".join(filter(None, (note, WIDE_CI)))
        return make_finding(rule_id, title, shown_metric, threshold, status, value, detail, ci)

    return RuleSpec(rule_id, title, shown_metric, key, check)


def ledger_epsilon(results: Mapping[str, Any]) -> tuple[bool, float | None, str]:
    """(present, epsilon or inf, why-not). ``ledger.epsilon`` null or ``no_formal_privacy``
    true means epsilon = inf."""
    ledger = lookup(results, "ledger")
    if is_missing(ledger) or not isinstance(ledger, Mapping) or "epsilon" not in ledger:
        return False, None, "ledger.epsilon is missing"
    eps = ledger["epsilon"]
    if eps is None or ledger.get("no_formal_privacy") is True:
        return True, math.inf, ""
    value = as_number(eps)
    if value is None or value < 0:
        return False, None, f"ledger.epsilon is not a non-negative number ({eps!r})"
    return True, value, ""
