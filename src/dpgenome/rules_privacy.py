"""A policy's privacy rules: the release's (epsilon, delta), its lifetime caps, secure mode.

Privacy-side rules follow NIST SP 800-226 (Guidelines for Evaluating Differential Privacy
Guarantees, 2025). The lifetime caps read the :class:`~dpgenome.findings.EvaluationContext`
(the lifetime ledger's spending before this release); without it they are NOT EVALUATED.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dpgenome.findings import (
    EvaluationContext,
    Finding,
    Status,
    as_number,
    fmt,
    fmt_claim,
    is_missing,
    lookup,
    why_missing,
)
from dpgenome.rules import (
    RuleSpec,
    bound_rule,
    epsilon_cap,
    ledger_epsilon,
    make_finding,
    not_evaluated,
)

if TYPE_CHECKING:
    from dpgenome.policy import Policy


#: (id, title, metric) of the rule ``privacy.require_secure_mode`` configures
SECURE_RULE = (
    "privacy.secure_mode",
    "Noise drawn by exact samplers from the OS CSPRNG (secure mode)",
    "ledger.secure_mode",
)
#: (id, title, metric) of the rules ``privacy.max_replace_one_epsilon`` and
#: ``privacy.max_lifetime_replace_one_epsilon`` configure
REPLACE_ONE_RULE = (
    "privacy.max_replace_one_epsilon",
    "Epsilon of this release, replacing one individual",
    "ledger.replace_one.epsilon",
)
LIFETIME_REPLACE_ONE_RULE = (
    "privacy.max_lifetime_replace_one_epsilon",
    "Lifetime epsilon of its individuals, replacing one",
    "ledger.replace_one.epsilon + lifetime ledger",
)


_NO_LIFETIME = "no lifetime ledger was consulted"


def _release_cap(
    rule: tuple[str, str, str],
    cap: float,
    read: Callable[[Mapping[str, Any]], tuple[bool, float | None, str]],
    allow_no_formal: bool,
) -> Callable[[Mapping[str, Any], EvaluationContext], Finding]:
    """The rule ``read(results) <= cap`` for one release's epsilon (``rule``: id, title,
    metric); NOT EVALUATED when ``read`` finds none."""
    rid, title, metric = rule
    threshold = f"<= {fmt(cap)}"

    def judge(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
        ok, eps, why = read(results)
        if not ok or eps is None:
            return not_evaluated(rid, title, metric, threshold, why)
        return epsilon_cap((rid, title, metric, threshold), eps, cap, allow_no_formal, "")

    return judge


def _replace_one_epsilon(results: Mapping[str, Any]) -> tuple[bool, float | None, str]:
    """As :func:`ledger_epsilon`, for ``ledger.replace_one.epsilon`` (infinite without formal
    privacy)."""
    ok, eps, why = ledger_epsilon(results)
    if not ok or eps is None or math.isinf(eps):
        return ok, eps, why
    path = "ledger.replace_one.epsilon"
    raw = lookup(results, path)
    if is_missing(raw):
        return False, None, why_missing(results, path)
    value = as_number(raw)
    if value is None or value < 0:
        return False, None, f"{path} is not a non-negative number ({raw!r})"
    return True, value, ""


def _lifetime_epsilon(
    rule: tuple[str, str, str, str], results: Mapping[str, Any], ctx: EvaluationContext
) -> float | Finding:
    """This release's epsilon for a lifetime rule, or its NOT EVALUATED finding when that
    or the lifetime ledger's figure is missing (both block)."""
    ok, eps, why = ledger_epsilon(results)
    if not ok or eps is None:
        return not_evaluated(*rule, why)
    if ctx.lifetime_epsilon_spent is None:
        return not_evaluated(*rule, _NO_LIFETIME)
    return eps


def privacy_rules(p: Policy) -> list[RuleSpec]:
    rules: list[RuleSpec] = []

    def no_formal(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
        rid, title, metric = (
            "privacy.no_formal_privacy",
            "Formal privacy guarantee",
            "ledger.epsilon",
        )
        threshold = "epsilon finite" if not p.allow_no_formal_privacy else "epsilon = ∞ allowed"
        ok, eps, why = ledger_epsilon(results)
        if not ok:
            return not_evaluated(rid, title, metric, threshold, why)
        if eps is not None and math.isinf(eps):
            if p.allow_no_formal_privacy:
                return make_finding(
                    rid,
                    title,
                    metric,
                    threshold,
                    Status.PASS,
                    eps,
                    "NO FORMAL PRIVACY: epsilon is infinite; this policy allows it",
                )
            return make_finding(
                rid,
                title,
                metric,
                threshold,
                Status.FAIL,
                eps,
                "NO FORMAL PRIVACY: epsilon is infinite (non-private synthesis)",
            )
        return make_finding(rid, title, metric, threshold, Status.PASS, eps)

    rules.append(
        RuleSpec(
            "privacy.no_formal_privacy",
            "Formal privacy guarantee",
            "ledger.epsilon",
            "privacy.allow_no_formal_privacy",
            no_formal,
        )
    )

    if p.require_secure_mode:

        def secure(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
            rid, title, metric = SECURE_RULE
            raw = lookup(results, metric)
            if not isinstance(raw, bool):
                why = why_missing(results, metric) if is_missing(raw) else f"not a bool: {raw!r}"
                return not_evaluated(rid, title, metric, "true", why)
            if raw:
                return make_finding(rid, title, metric, "true", Status.PASS, "true")
            return make_finding(
                rid,
                title,
                metric,
                "true",
                Status.FAIL,
                "false",
                "the noise came from numpy's floating-point samplers (--no-secure-mode, or "
                "noise fixed for tests), whose low bits can reveal the values they were added "
                "to; release again without --no-secure-mode",
            )

        rules.append(RuleSpec(*SECURE_RULE, "privacy.require_secure_mode", secure))

    if p.max_epsilon is not None:
        rule = ("privacy.max_epsilon", "Epsilon of this release", "ledger.epsilon")
        judge = _release_cap(rule, p.max_epsilon, ledger_epsilon, p.allow_no_formal_privacy)
        rules.append(RuleSpec(*rule, "privacy.max_epsilon", judge))

    if p.max_lifetime_epsilon is not None:
        life_cap = p.max_lifetime_epsilon

        def lifetime(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
            rid, title = "privacy.max_lifetime_epsilon", "Lifetime epsilon of its individuals"
            metric = "ledger.epsilon + lifetime ledger"
            threshold = (
                f"<= {fmt(life_cap)} (per individual: the releases that included them, composed)"
            )
            eps = _lifetime_epsilon((rid, title, metric, threshold), results, ctx)
            if isinstance(eps, Finding):
                return eps
            assert ctx.lifetime_epsilon_spent is not None
            added = ctx.lifetime_epsilon_spent + eps
            n_before = ctx.lifetime_releases or 0
            detail = (
                f"{fmt_claim(ctx.lifetime_epsilon_spent)} spent before by its most-spent "
                f"individual, over {n_before} earlier release(s)"
            )
            total = added
            after = ctx.lifetime_epsilon_after
            if after is not None and after < added:  # both bound it: the smaller holds
                total = after
                detail += (
                    f"; with this release {fmt_claim(after)}, its mechanisms composed with "
                    f"theirs ({fmt_claim(added)} adding epsilons)"
                )
            return epsilon_cap(
                (rid, title, metric, threshold), total, life_cap, p.allow_no_formal_privacy, detail
            )

        rules.append(
            RuleSpec(
                "privacy.max_lifetime_epsilon",
                "Lifetime epsilon of its individuals",
                "ledger.epsilon",
                "privacy.max_lifetime_epsilon",
                lifetime,
            )
        )

    if p.max_replace_one_epsilon is not None:
        judge = _release_cap(
            REPLACE_ONE_RULE,
            p.max_replace_one_epsilon,
            _replace_one_epsilon,
            p.allow_no_formal_privacy,
        )
        rules.append(RuleSpec(*REPLACE_ONE_RULE, "privacy.max_replace_one_epsilon", judge))

    if p.max_lifetime_replace_one_epsilon is not None:
        life_one_cap = p.max_lifetime_replace_one_epsilon

        def lifetime_replace_one(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
            rid, title, metric = LIFETIME_REPLACE_ONE_RULE
            threshold = (
                f"<= {fmt(life_one_cap)} (per individual: the releases that included them, "
                "composed under replace-one)"
            )
            rule = (rid, title, metric, threshold)
            eps = _lifetime_epsilon(rule, results, ctx)
            if isinstance(eps, Finding):
                return eps
            if math.isinf(eps):
                return epsilon_cap(rule, eps, life_one_cap, p.allow_no_formal_privacy, "")
            total = ctx.lifetime_replace_one_after
            if total is None:
                return not_evaluated(
                    *rule, "the lifetime ledger's replace-one total was not computed"
                )
            detail = (
                f"over {ctx.lifetime_releases or 0} earlier release(s) of its most-spent "
                "individuals and this one, each accounted under replace-one (group privacy "
                "for one recorded without mechanisms), composed"
                + (
                    "; no bound: a release's group-privacy delta reaches 1"
                    if math.isinf(total)
                    else ""
                )
            )
            return epsilon_cap(rule, total, life_one_cap, False, detail)

        rules.append(
            RuleSpec(
                *LIFETIME_REPLACE_ONE_RULE,
                "privacy.max_lifetime_replace_one_epsilon",
                lifetime_replace_one,
            )
        )

    if p.max_lifetime_delta is not None:
        life_delta_cap = p.max_lifetime_delta

        def lifetime_delta(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
            rid, title = "privacy.max_lifetime_delta", "Lifetime delta of its individuals"
            metric = "ledger.delta + lifetime ledger"
            threshold = (
                f"<= {fmt(life_delta_cap)} (per individual: the releases that included them)"
            )
            eps = _lifetime_epsilon((rid, title, metric, threshold), results, ctx)
            if isinstance(eps, Finding):
                return eps
            if math.isinf(eps) and p.allow_no_formal_privacy:
                return make_finding(
                    rid,
                    title,
                    metric,
                    threshold,
                    Status.PASS,
                    None,
                    "not applicable: no formal privacy, allowed by this policy",
                )
            raw = lookup(results, "ledger.delta")
            value = None if is_missing(raw) else as_number(raw)
            if value is None or value < 0:
                return not_evaluated(rid, title, metric, threshold, "ledger.delta is missing")
            if ctx.lifetime_delta_spent is None:
                return not_evaluated(rid, title, metric, threshold, _NO_LIFETIME)
            # the deltas of one individual's releases add (the composed epsilon holds at
            # their sum); the ledger's figure with this release is the largest such sum over
            # the individuals; without it, spent + this one's bounds it
            total = ctx.lifetime_delta_after
            if total is None:
                total = ctx.lifetime_delta_spent + value
            detail = (
                f"{fmt_claim(ctx.lifetime_delta_spent)} spent before by its most-spent "
                f"individual, over {ctx.lifetime_releases or 0} earlier release(s); this "
                f"release {fmt_claim(value)}"
            )
            status = Status.PASS if total <= life_delta_cap * (1 + 1e-9) else Status.FAIL
            return make_finding(rid, title, metric, threshold, status, total, detail)

        rules.append(
            RuleSpec(
                "privacy.max_lifetime_delta",
                "Lifetime delta of its individuals",
                "ledger.delta",
                "privacy.max_lifetime_delta",
                lifetime_delta,
            )
        )

    if p.max_delta is not None:
        max_delta = p.max_delta

        def delta(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
            rid, title, metric = "privacy.max_delta", "Delta of this release", "ledger.delta"
            if max_delta == "auto":
                # n is the size of the data set the mechanism sees: the training members
                # (falling back to the whole cohort when no split is recorded).
                n_raw = lookup(results, "split.n_members")
                if is_missing(n_raw):
                    n_raw = lookup(results, "cohort.n_samples")
                n = as_number(n_raw) if not is_missing(n_raw) else None
                threshold = f"<= 1/n^{fmt(p.delta_exponent)}"
                if n is None or not 1 <= n < math.inf:
                    return not_evaluated(
                        rid,
                        title,
                        metric,
                        threshold,
                        "split.n_members and cohort.n_samples are missing: the 'auto' bound "
                        "needs n",
                    )
                # 1e-9 relative slack: delta = 1/n^1.1 computed elsewhere may differ by an ulp
                bound = float(n) ** -p.delta_exponent * (1 + 1e-9)
                threshold = (
                    # to the digits the measured delta is shown with (rounded up), so a
                    # delta at the bound does not read as above it
                    f"<= 1/n^{fmt(p.delta_exponent)} = {fmt_claim(bound)} (n = {int(n):,} training "
                    "members)"
                )
            else:
                bound = float(max_delta)
                threshold = f"<= {fmt(bound)}"
            ok, eps, _ = ledger_epsilon(results)
            if ok and eps is not None and math.isinf(eps) and p.allow_no_formal_privacy:
                return make_finding(
                    rid,
                    title,
                    metric,
                    threshold,
                    Status.PASS,
                    None,
                    "not applicable: no formal privacy, allowed by this policy",
                )
            raw = lookup(results, "ledger.delta")
            value = None if is_missing(raw) else as_number(raw)
            if value is None:
                return not_evaluated(rid, title, metric, threshold, "ledger.delta is missing")
            status = Status.PASS if value <= bound else Status.FAIL
            return make_finding(rid, title, metric, threshold, status, value)

        rules.append(
            RuleSpec(
                "privacy.max_delta",
                "Delta of this release",
                "ledger.delta",
                "privacy.max_delta",
                delta,
            )
        )

    if p.min_holdout is not None:
        rules.append(
            bound_rule(
                "privacy.min_holdout",
                "Holdout (non-member) set large enough for the audits",
                "split.n_holdout",
                "privacy.min_holdout",
                min_value=float(p.min_holdout),
            )
        )
    if p.max_phenotype_columns_typed_from_data is not None:
        rules.append(
            bound_rule(
                "privacy.phenotype_types",
                "Phenotype columns typed from the members' data (not declared)",
                "cohort.phenotype_types.n_typed_from_data",
                "privacy.max_phenotype_columns_typed_from_data",
                max_value=float(p.max_phenotype_columns_typed_from_data),
                note="columns to declare in a --pheno-schema file",
            )
        )
    return rules
