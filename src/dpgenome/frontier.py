"""The privacy/utility frontier of a sweep: one HTML page from several releases' results.

:func:`frontier_point` reads one release's utility and audit figures (aggregates only);
:func:`render_frontier` fills ``reports/templates/frontier.html.j2`` with line charts of
recall, precision, loci, lambda_GC, the strongest membership attack and the canary bound
against the epsilon asked for, one series per cohort size, and the table of points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dpgenome import __version__
from dpgenome.dossier import environment, now_text
from dpgenome.errors import InputError
from dpgenome.findings import (
    fmt,
    value_at,
)
from dpgenome.svgcharts import inline_svg, line_chart_svg

# ---------------------------------------------------------------------------- frontier


def _strongest_attack(
    results: Mapping[str, Any],
) -> tuple[str | None, float | None, float | None]:
    """``(name, AUC, upper 95% bound)`` of the attack whose bound is the highest (the
    largest AUC and the largest bound could be two attacks'); all None without one."""
    attacks = value_at(results, "audit.attacks", {})
    best: tuple[str | None, float | None, float | None] = (None, None, None)
    if not isinstance(attacks, Mapping):
        return best
    for name, attack in attacks.items():
        if not isinstance(attack, Mapping):
            continue
        ci, auc = attack.get("auc_ci"), attack.get("auc")
        if not (isinstance(ci, list) and len(ci) == 2 and isinstance(ci[1], int | float)):
            continue
        if not math.isfinite(float(ci[1])):  # an attack without a bound never wins
            continue
        if best[2] is None or float(ci[1]) > best[2]:
            best = (str(name), float(auc) if isinstance(auc, int | float) else None, float(ci[1]))
    return best


def _max_attack(results: Mapping[str, Any], key: str) -> float | None:
    attacks = value_at(results, "audit.attacks", {})
    values = []
    if isinstance(attacks, Mapping):
        for attack in attacks.values():
            if not isinstance(attack, Mapping):
                continue
            if key == "auc_ci_upper":
                ci = attack.get("auc_ci")
                value = ci[1] if isinstance(ci, list) and len(ci) == 2 else None
            else:
                value = attack.get(key)
            if isinstance(value, int | float):
                values.append(float(value))
    return max(values) if values else None


def frontier_point(results: Mapping[str, Any]) -> dict[str, Any]:
    """One sweep point: the utility and audit figures of one release, aggregates only."""
    epsilon = value_at(results, "ledger.epsilon")
    no_formal = epsilon is None or value_at(results, "ledger.no_formal_privacy") is True

    def num(path: str) -> float | None:
        value = value_at(results, path)
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    target = num("ledger.target_epsilon")
    strongest = _strongest_attack(results)
    return {
        "epsilon": None if no_formal else float(epsilon),
        "no_formal_privacy": no_formal,
        # the point's place on the x axis: the epsilon asked for (the accounted one moves
        # with the cohort's size, a few thousandths below it)
        "target_epsilon": None if no_formal else (target or float(epsilon)),
        "delta": None if no_formal else num("ledger.delta"),
        "n": num("cohort.n_samples"),
        "n_members": num("split.n_members"),
        "recall_1e8": num("fidelity.gwas.thresholds.1e-08.recall"),
        "precision_1e8": num("fidelity.gwas.thresholds.1e-08.precision"),
        "recall_2e6": num("fidelity.gwas.thresholds.2e-06.recall"),
        "precision_2e6": num("fidelity.gwas.thresholds.2e-06.precision"),
        "loci_recovered": num("fidelity.gwas.loci.recovered"),
        "loci_real": num("fidelity.gwas.loci.real_loci"),
        "loci_spurious": num("fidelity.gwas.loci.spurious"),
        "lambda_gc": num("fidelity.gwas.lambda_gc.synthetic"),
        "lambda_gc_real": num("fidelity.gwas.lambda_gc.real"),
        # the attack whose AUC's upper 95% bound is the highest: its AUC and bound together
        "strongest_attack": strongest[0],
        "max_auc": strongest[1],
        "max_auc_ci_upper": strongest[2],
        "max_tpr_1pct": _max_attack(results, "tpr_at_fpr_0.01"),
        "canary_lower_bound": num("audit.canary.epsilon_lower_bound"),
        "canary_max_lower_bound": num("audit.canary.max_lower_bound"),
    }


def render_frontier(
    runs: Sequence[Mapping[str, Any]],
    *,
    title: str = "Privacy / utility frontier",
    generated_at: str | None = None,
) -> str:
    """The sweep page (``reports/templates/frontier.html.j2``): SNP recall/precision, loci,
    lambda_GC, membership AUC and canary lower bounds against epsilon, one series per cohort
    size, at the epsilons asked for (each point's accounted epsilon is in the table). ``runs``
    are results documents; the non-private point (epsilon = inf) is first and labelled
    "∞ (no DP)"."""
    if not runs:
        raise InputError("a frontier needs at least one release result")
    points = [frontier_point(r) for r in runs]
    targets = {p["target_epsilon"] for p in points if p["target_epsilon"] is not None}
    eps_values = sorted(targets, reverse=True)
    has_inf = any(p["target_epsilon"] is None for p in points)
    categories = (["∞ (no DP)"] if has_inf else []) + [fmt(e) for e in eps_values]
    keys: list[float | None] = ([None] if has_inf else []) + list(eps_values)
    sizes = sorted({p["n"] for p in points}, key=lambda v: (v is None, v or 0))

    def series(metric: str, label: str) -> list[tuple[str, list[float | None]]]:
        out = []
        for n in sizes:
            by_eps = {p["target_epsilon"]: p[metric] for p in points if p["n"] == n}
            name = label if len(sizes) == 1 else f"{label}, n = {fmt(int(n)) if n else '?'}"
            out.append((name, [by_eps.get(k) for k in keys]))
        return out

    x_label = "epsilon asked for (categories, not to scale)"
    charts = [
        line_chart_svg(
            "GWAS SNP recall and precision at p < 1e-8",
            categories,
            series("recall_1e8", "recall") + series("precision_1e8", "precision"),
            y_label="share",
            x_label=x_label,
            y_range=(0.0, 1.0),
        ),
        line_chart_svg(
            "Loci recovered and spurious loci",
            categories,
            series("loci_recovered", "recovered")
            + series("loci_spurious", "spurious")
            + series("loci_real", "real loci"),
            y_label="loci",
            x_label=x_label,
            integer=True,
        ),
        line_chart_svg(
            "Genomic inflation lambda_GC (synthetic GWAS)",
            categories,
            series("lambda_gc", "synthetic") + series("lambda_gc_real", "real GWAS"),
            y_label="lambda_GC",
            x_label=x_label,
            reference=(1.0, "no inflation (1.0)"),
        ),
        line_chart_svg(
            "Membership attacks: highest AUC bound",
            categories,
            series("max_auc_ci_upper", "upper 95% bound, strongest attack"),
            y_label="AUC",
            x_label=x_label,
            y_range=(0.4, 1.0),
            reference=(0.5, "guessing (0.5)"),
        ),
        line_chart_svg(
            "Canary audit: empirical epsilon lower bound",
            categories,
            [
                *series("canary_lower_bound", "lower bound"),
                *series("canary_max_lower_bound", "highest this audit can show"),
                ("claimed epsilon (must stay above)", list(keys)),
            ],
            y_label="epsilon",
            x_label=x_label,
        ),
    ]
    figures = [inline_svg(svg, f"frontier-{i}") for i, svg in enumerate(charts)]
    order = {k: i for i, k in enumerate(keys)}
    rows = sorted(points, key=lambda p: (p["n"] or 0, order.get(p["target_epsilon"], 0)))
    env = environment()
    return env.get_template("frontier.html.j2").render(
        title=title,
        version=__version__,
        date=generated_at or now_text(),
        figures=figures,
        rows=rows,
    )
