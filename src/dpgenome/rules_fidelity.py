"""A policy's fidelity rules: GWAS recall and precision (with where the false hits fall),
loci recovered and spurious, lambda_GC and its excess over the members', the matching
residual."""

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
    lookup,
)
from dpgenome.rules import RuleSpec, bound_rule, make_finding, not_evaluated

if TYPE_CHECKING:
    from dpgenome.policy import Policy


def _with_false_hits(spec: RuleSpec, at: str) -> RuleSpec:
    """``spec`` (the SNP precision rule) with a detail saying where the synthetic hits the
    real GWAS does not reach stand in the real GWAS (``fidelity.compare_gwas``'s
    ``false_hits``), when the results carry it: the reader of a blocked release learns
    whether they are real loci's SNPs short of the line or association the real data lack."""

    def check(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
        finding = spec.check(results, ctx)
        false = as_number(lookup(results, f"{at}.false_hits"), finite=True)
        near = as_number(lookup(results, f"{at}.false_hits_supported"), finite=True)
        support = as_number(lookup(results, "fidelity.gwas.loci.support_threshold"), finite=True)
        if finding.status == Status.NOT_EVALUATED or not false or near is None or not support:
            return finding
        span = as_interval(lookup(results, f"{at}.false_hits_real_log10_p"))
        shown = None if span is None else [f"{x:.1f}" for x in span]
        where = (
            ""
            if shown is None
            else f" (real -log10 p {shown[0]})"
            if shown[0] == shown[1]
            else f" (real -log10 p {shown[0]}-{shown[1]})"
        )
        n_false, n_near = int(false), int(near)
        head = (
            "1 synthetic hit is not a real hit at 1e-8"
            if n_false == 1
            else f"{n_false} synthetic hits are not real hits at 1e-8"
        )
        reach = f"p < {fmt(support)} in the real GWAS{where}"
        if n_near == n_false:
            which = "it reaches" if n_false == 1 else "all reach"
            detail = f"{head}; {which} {reach}: SNPs of real loci short of the line"
        elif n_near == 0:
            which = "it does not reach" if n_false == 1 else "none reaches"
            detail = f"{head}; {which} {reach}: association the real data do not show"
        else:
            detail = (
                f"{head}; {n_near} of them reach {reach}: SNPs of real loci short of the line; "
                f"the other {n_false - n_near}: association the real data do not show"
            )
        return replace(finding, detail="; ".join(x for x in (finding.detail, detail) if x))

    return replace(spec, check=check)


def fidelity_rules(p: Policy) -> list[RuleSpec]:
    rules: list[RuleSpec] = []
    at = "fidelity.gwas.thresholds.1e-08"
    if p.min_recall is not None:
        rules.append(
            bound_rule(
                "fidelity.recall",
                "GWAS SNP recall at p < 1e-8",
                f"{at}.recall",
                "fidelity.min_recall",
                min_value=p.min_recall,
            )
        )
    if p.min_precision is not None:
        rules.append(
            _with_false_hits(
                bound_rule(
                    "fidelity.precision",
                    "GWAS SNP precision at p < 1e-8",
                    f"{at}.precision",
                    "fidelity.min_precision",
                    min_value=p.min_precision,
                ),
                at,
            )
        )
    if p.min_loci_recovered_fraction is not None:
        need = p.min_loci_recovered_fraction

        def loci(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
            rid, title = "fidelity.loci_recovered", "Real GWAS loci recovered"
            metric = "fidelity.gwas.loci.recovered / real_loci"
            threshold = f">= {fmt(need)} of the real loci"
            rec = as_number(lookup(results, "fidelity.gwas.loci.recovered"), finite=True)
            real = as_number(lookup(results, "fidelity.gwas.loci.real_loci"), finite=True)
            if rec is None or real is None:
                return not_evaluated(
                    rid,
                    title,
                    metric,
                    threshold,
                    "fidelity.gwas.loci.recovered or real_loci is missing or not finite",
                )
            if real == 0:
                return not_evaluated(
                    rid, title, metric, threshold, "the real GWAS has no locus: nothing to recover"
                )
            share = rec / real
            status = Status.PASS if share >= need else Status.FAIL
            return make_finding(
                rid, title, metric, threshold, status, share, f"{int(rec)} of {int(real)} loci"
            )

        rules.append(
            RuleSpec(
                "fidelity.loci_recovered",
                "Real GWAS loci recovered",
                "fidelity.gwas.loci",
                "fidelity.min_loci_recovered_fraction",
                loci,
            )
        )
    if p.max_spurious_loci is not None:
        rules.append(
            bound_rule(
                "fidelity.spurious_loci",
                "Spurious loci (synthetic only)",
                "fidelity.gwas.loci.spurious",
                "fidelity.max_spurious_loci",
                max_value=float(p.max_spurious_loci),
            )
        )
    if p.lambda_gc_range is not None:
        lo, hi = p.lambda_gc_range
        rules.append(
            bound_rule(
                "fidelity.lambda_gc",
                "Genomic inflation (lambda_GC) of the synthetic GWAS",
                "fidelity.gwas.lambda_gc.synthetic",
                "fidelity.lambda_gc_range",
                min_value=lo,
                max_value=hi,
            )
        )
    if p.max_lambda_gc_excess is not None:
        rules.append(_lambda_excess_rule(p.max_lambda_gc_excess))
    if p.max_matching_residual is not None:
        rules.append(_matching_rule(p.max_matching_residual))
    return rules


def _lambda_excess_rule(limit: float) -> RuleSpec:
    """``fidelity.lambda_gc_excess``: the synthetic GWAS's lambda_GC less the members' own
    (the real GWAS's, both from the same analysis) at most ``limit``. A stratified trait
    inflates the members' lambda itself, and a faithful synthetic cohort keeps that: an
    absolute band (``lambda_gc_range``) fails it, this rule asks only that the synthetic
    noise floor not rise above the members'. NOT EVALUATED without both values."""
    rid, title = "fidelity.lambda_gc_excess", "Genomic inflation beyond the members' own"
    metric = "fidelity.gwas.lambda_gc.synthetic - fidelity.gwas.lambda_gc.real"
    threshold = f"<= {fmt(limit)}"

    def check(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
        synthetic, real = (
            as_number(lookup(results, f"fidelity.gwas.lambda_gc.{side}"), finite=True)
            for side in ("synthetic", "real")
        )
        if synthetic is None or real is None:
            return not_evaluated(
                rid, title, metric, threshold, "the fidelity results hold no lambda_GC pair"
            )
        excess = synthetic - real
        status = Status.PASS if excess <= limit else Status.FAIL
        note = f"synthetic {fmt(synthetic)}, members' {fmt(real)}"
        return make_finding(rid, title, metric, threshold, status, excess, note)

    return RuleSpec(rid, title, metric, "fidelity.max_lambda_gc_excess", check)


def _matching_rule(limit: float) -> RuleSpec:
    """``fidelity.matching_residual``: the synthesizer assigns phenotype rows to genotype rows
    so that the synthetic cross-moments reproduce the released ones; its relative residual
    says how far they miss. A release that carried no association has nothing to reproduce
    (PASS, measured n/a); one whose synthesis recorded no association path is NOT EVALUATED."""
    rid, title = "fidelity.matching_residual", "Released associations reproduced (matching)"
    metric = "synthesis.association.matching_relative_residual"
    threshold = f"<= {fmt(limit)}"

    def check(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
        association = lookup(results, "synthesis.association")
        if not isinstance(association, Mapping):
            return not_evaluated(
                rid, title, metric, threshold, "the synthesis recorded no association path"
            )
        regions = association.get("regions") or []
        if not isinstance(regions, list):
            return not_evaluated(
                rid, title, metric, threshold, "synthesis.association.regions is not a list"
            )
        carried = [r for r in regions if isinstance(r, Mapping) and not r.get("dropped")]
        if not carried:
            note = "no association was released: nothing to reproduce"
            return make_finding(rid, title, metric, threshold, Status.PASS, "n/a", note)
        value = as_number(association.get("matching_relative_residual"))
        if value is None:
            return not_evaluated(rid, title, metric, threshold, f"{metric} is missing")
        status = Status.PASS if value <= limit else Status.FAIL
        note = f"{len(carried)} released region(s)"
        return make_finding(rid, title, metric, threshold, status, value, note)

    return RuleSpec(rid, title, metric, "fidelity.max_matching_residual", check)
