"""A policy's audit rules: membership inference, nearest-neighbour leakage, kinship of
synthetic to real individuals, attribute inference and the canary bound.

Membership rules follow Carlini et al. 2022 ("Membership Inference Attacks From First
Principles": TPR at low FPR, not only AUC), and are judged against a public control where
the audit ran one; the canary rule follows Jagielski et al. 2020 / Nasr et al. 2021, in the
one-run form of Steinke, Nasr & Jagielski 2023 (an empirical epsilon lower bound above the
claimed epsilon proves an implementation or accounting error).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dpgenome.findings import (
    EvaluationContext,
    Finding,
    Status,
    as_interval,
    as_number,
    fmt,
    fmt_claim,
    is_missing,
    lookup,
    why_missing,
)
from dpgenome.rules import (
    WIDE_CI,
    RuleSpec,
    bound_rule,
    ledger_epsilon,
    make_finding,
    not_evaluated,
)

if TYPE_CHECKING:
    from dpgenome.policy import Policy


def attack_rules(p: Policy) -> list[RuleSpec]:
    rules: list[RuleSpec] = []
    for attack in p.attacks:
        base = f"audit.attacks.{attack}"
        if p.max_auc_ci_upper is not None:
            raw = bound_rule(
                f"membership.{attack}.auc",
                f"Membership inference ({attack}): ROC AUC",
                f"{base}.auc",
                "membership.max_auc_ci_upper",
                max_value=p.max_auc_ci_upper,
                ci_path=f"{base}.auc_ci",
            )
            if attack == "dcr" and p.public_panel_control:
                raw = _against_public_control(raw, p.max_auc_ci_upper, "dcr_auc", "dcr_auc")
            rules.append(raw)
        if p.max_tpr_at_1pct_fpr is not None:
            rules.append(
                _measurable_at(
                    0.01,
                    base,
                    bound_rule(
                        f"membership.{attack}.tpr_at_1pct_fpr",
                        f"Membership inference ({attack}): true-positive rate at 1% false "
                        "positives",
                        f"{base}.tpr_at_fpr_0.01",
                        "membership.max_tpr_at_1pct_fpr",
                        max_value=p.max_tpr_at_1pct_fpr,
                    ),
                )
            )
    return rules


def _measurable_at(fpr: float, attack: str, raw: RuleSpec) -> RuleSpec:
    """A TPR-at-``fpr`` rule, NOT EVALUATED when the attack's holdout cannot show that false
    positive rate: with n holdout individuals the smallest non-zero one is 1/n, and a "TPR
    at 1% FPR" on fewer than 100 is the TPR at FPR 0, not a measurement."""

    def check(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
        resolution = as_number(lookup(results, f"{attack}.fpr_resolution"))
        if resolution is None:
            n = as_number(lookup(results, f"{attack}.n_holdout"))
            resolution = 1.0 / n if n is not None and n >= 1 else None
        found = raw.check(results, ctx)
        if resolution is None or resolution <= fpr * (1 + 1e-12):
            return found
        return replace(
            found,
            status=Status.NOT_EVALUATED,
            detail=f"not measurable: with {round(1 / resolution)} holdout individuals the "
            f"smallest non-zero false-positive rate is {fmt(resolution)}, above {fmt(fpr)} "
            "(a larger holdout is needed)",
        )

    return RuleSpec(raw.id, raw.title, raw.metric, raw.key, check)


def _against_public_control(raw: RuleSpec, bound: float, control: str, alone: str) -> RuleSpec:
    """A distance rule (the DCR attack's AUC, the DCR share; 0.5 = no signal) judged in two
    parts when the audit ran the public-panel control (``nearest_neighbour.
    public_panel_control``): the genotypes by their excess over the panel, which never saw
    the split (upper CI bound <= ``bound - 0.5``), and the phenotype columns alone against
    the holdout (upper CI bound <= ``bound``). Without the control, ``raw`` judges the
    combined statistic as usual. ``control`` / ``alone`` name the statistic in
    ``audit.public_control`` (``<control>_excess``) and ``audit.nearest_neighbour.
    phenotypes_only``."""
    pc, ph = "audit.public_control", "audit.nearest_neighbour.phenotypes_only"
    excess, pheno = f"{pc}.{control}_excess", f"{ph}.{alone}"
    limit = round(bound - 0.5, 12)  # the threshold shown: 0.6 - 0.5 is 0.09999999999999998
    threshold = (
        f"genotypes: 95% CI upper bound of the excess over the public panel <= {fmt(limit)}; "
        f"phenotype columns alone: 95% CI upper bound <= {fmt(bound)}"
    )
    metric = f"{excess} (CI: {excess}_ci); {pheno} (CI: {pheno}_ci)"

    def check(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
        if is_missing(lookup(results, excess)):
            found = raw.check(results, ctx)
            why = f"the raw figures are judged: {why_missing(results, excess)}"
            return replace(found, detail=f"{found.detail}; {why}".strip("; "))
        value, ci = (
            as_number(lookup(results, excess)),
            as_interval(lookup(results, f"{excess}_ci")),
        )
        if value is None or ci is None:
            return not_evaluated(
                raw.id, raw.title, metric, threshold, f"{excess} or its CI is not a number"
            )
        block = lookup(results, ph)
        if is_missing(block):
            return not_evaluated(raw.id, raw.title, metric, threshold, why_missing(results, ph))
        parts = [
            f"genotypes: synthetic {fmt(lookup(results, f'{pc}.{control}_synthetic'))} against "
            f"the panel's {fmt(lookup(results, f'{pc}.{control}_public'))}"
        ]
        ok = ci[1] <= limit  # (0.5 + 0.07 <= 0.57 is False in floating point)
        if isinstance(block, Mapping) and block.get("status") is not None:
            parts.append(f"no phenotype column in the distances ({block.get('reason', '')})")
        else:
            p_value, p_ci = (
                as_number(lookup(results, pheno)),
                as_interval(lookup(results, f"{pheno}_ci")),
            )
            if p_value is None or p_ci is None:
                return not_evaluated(
                    raw.id, raw.title, metric, threshold, f"{pheno} or its CI is missing"
                )
            ok = ok and p_ci[1] <= bound
            parts.append(f"phenotypes alone {fmt(p_value)} ({fmt(p_ci[0])} – {fmt(p_ci[1])})")
        combined = raw.check(results, ctx)
        if combined.measured is not None and combined.ci is not None:
            parts.append(
                f"genotypes and phenotypes together {fmt(combined.measured)} "
                f"({fmt(combined.ci[0])} – {fmt(combined.ci[1])}), shown, not judged"
            )
        status = Status.PASS if ok else Status.FAIL
        return make_finding(
            raw.id, raw.title, metric, threshold, status, value, "; ".join(parts), ci
        )

    return RuleSpec(raw.id, raw.title, metric, raw.key, check)


def leakage_rules(p: Policy) -> list[RuleSpec]:
    rules: list[RuleSpec] = []
    nn = "audit.nearest_neighbour"
    if p.max_share_closer_to_members_ci_upper is not None:
        share = bound_rule(
            "nearest_neighbour.share_closer_to_members",
            "Synthetic records closer to members than to holdout",
            f"{nn}.share_closer_to_members",
            "nearest_neighbour.max_share_closer_to_members_ci_upper",
            max_value=p.max_share_closer_to_members_ci_upper,
            ci_path=f"{nn}.share_closer_to_members_ci",
            note="0.5 means synthetic records are no closer to members than to non-members",
        )
        if p.public_panel_control:
            share = _against_public_control(
                share,
                p.max_share_closer_to_members_ci_upper,
                "share_closer",
                "share_closer_to_members",
            )
        rules.append(share)
    if p.max_centred_share_ci_upper is not None:
        rules.append(
            bound_rule(
                "nearest_neighbour.centred_share",
                "Synthetic records closer to members than to holdout, hub-centred distances",
                f"{nn}.centred.share_closer_to_members",
                "nearest_neighbour.max_centred_share_ci_upper",
                max_value=p.max_centred_share_ci_upper,
                ci_path=f"{nn}.centred.share_closer_to_members_ci",
                note="each real individual's distances less its median distance to the "
                "synthetic records; 0.5 means synthetic records are no closer to members than "
                "to non-members",
            )
        )
    if p.min_distinct_share_p_value is not None:
        rules.append(
            bound_rule(
                "nearest_neighbour.distinct_share",
                "Members among the distinct real individuals nearest to synthetic records",
                f"{nn}.distinct_share_p_value",
                "nearest_neighbour.min_distinct_share_p_value",
                min_value=p.min_distinct_share_p_value,
                note="exact one-sided p-value (hypergeometric over the split); small when "
                "more of them are members than the split's chance gives",
            )
        )
    if p.max_exact_duplicate_genotypes is not None:
        rules.append(
            bound_rule(
                "nearest_neighbour.exact_duplicate_genotypes",
                "Synthetic genotype rows identical to a member's",
                f"{nn}.exact_duplicate_genotypes",
                "nearest_neighbour.max_exact_duplicate_genotypes",
                max_value=float(p.max_exact_duplicate_genotypes),
            )
        )
    kin = "audit.kinship"
    if p.max_excess_first_degree_rate is not None:
        rules.append(
            bound_rule(
                "kinship.excess_first_degree",
                "Synthetic-member first-degree relatives beyond the holdout baseline",
                f"{kin}.excess_first_degree_rate",
                "kinship.max_excess_first_degree_rate",
                max_value=p.max_excess_first_degree_rate,
                show_ci=f"{kin}.excess_first_degree_rate_ci",
                note="rate of synthetic-member pairs at kinship >= 0.177 minus the same rate "
                "for holdout-member pairs",
            )
        )
    if p.max_synthetic_member_duplicate_pairs is not None:
        rules.append(
            bound_rule(
                "kinship.duplicate_pairs",
                "Synthetic-member pairs at duplicate/identical-twin level",
                f"{kin}.synthetic_member_duplicate_pairs",
                "kinship.max_synthetic_member_duplicate_pairs",
                max_value=float(p.max_synthetic_member_duplicate_pairs),
            )
        )
    if p.max_risk_ci_upper is not None:
        cap = p.max_risk_ci_upper

        def attribute(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
            rid, title = "attribute_inference.risk", "Attribute inference risk"
            metric = "audit.attribute_inference.*.risk_ci"
            threshold = f"95% CI upper bound <= {fmt(cap)} for every phenotype attacked"
            block = lookup(results, "audit.attribute_inference")
            if is_missing(block) or not isinstance(block, Mapping) or not block:
                return not_evaluated(
                    rid, title, metric, threshold, "audit.attribute_inference is missing"
                )
            worst: tuple[str, float, tuple[float, float]] | None = None
            for pheno, entry in block.items():
                ci = as_interval(entry.get("risk_ci")) if isinstance(entry, Mapping) else None
                risk = as_number(entry.get("risk")) if isinstance(entry, Mapping) else None
                if ci is None or risk is None:
                    return not_evaluated(
                        rid, title, metric, threshold, f"risk or risk_ci missing for {pheno}"
                    )
                if worst is None or ci[1] > worst[2][1]:
                    worst = (str(pheno), risk, ci)
            assert worst is not None
            status = Status.PASS if worst[2][1] <= cap else Status.FAIL
            named = ", ".join(map(str, list(block)[:5])) + (" ..." if len(block) > 5 else "")
            detail = f"{len(block)} phenotype(s) attacked as the secret ({named})"
            detail += f"; worst: {worst[0]}"
            if status is Status.FAIL and worst[1] <= cap:
                detail += f"; {WIDE_CI}"
            return make_finding(rid, title, metric, threshold, status, worst[1], detail, worst[2])

        rules.append(
            RuleSpec(
                "attribute_inference.risk",
                "Attribute inference risk",
                "audit.attribute_inference",
                "attribute_inference.max_risk_ci_upper",
                attribute,
            )
        )
    if p.require_lower_bound_below_claimed:

        def canary(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
            rid, title = "canary.lower_bound", "Canary audit: empirical epsilon lower bound"
            metric = "audit.canary.epsilon_lower_bound"
            threshold = "<= claimed epsilon"
            raw = lookup(results, metric)
            lower = None if is_missing(raw) else as_number(raw)
            ok, eps, why = ledger_epsilon(results)
            if lower is None:
                return not_evaluated(rid, title, metric, threshold, why_missing(results, metric))
            if not ok or eps is None:
                return not_evaluated(rid, title, metric, threshold, why)
            threshold = f"<= claimed epsilon ({fmt_claim(eps)})"
            conf = lookup(results, "audit.canary.confidence")
            detail = "" if is_missing(conf) else f"{fmt(conf)} one-sided confidence"
            status = Status.PASS if lower <= eps else Status.FAIL
            if status is Status.FAIL:
                detail += (
                    "; the measured leakage exceeds the claim: accounting or implementation error"
                )
            reach_raw = lookup(results, "audit.canary.max_lower_bound")
            reach = None if is_missing(reach_raw) else as_number(reach_raw)
            if status is Status.PASS and reach is not None and reach < eps:
                detail += (
                    f"; uninformative: no outcome of this audit can show more than {fmt(reach)}, "
                    "below the claim, so this pass cannot tell whether the claim holds (more "
                    "canaries raise what it can show)"
                )
            return make_finding(rid, title, metric, threshold, status, lower, detail.strip("; "))

        rules.append(
            RuleSpec(
                "canary.lower_bound",
                "Canary audit: empirical epsilon lower bound",
                "audit.canary.epsilon_lower_bound",
                "canary.require_lower_bound_below_claimed",
                canary,
            )
        )
    return rules
