"""The release dossier: one self-contained, printable HTML file a governance officer can sign.

``render_dossier(results, evaluation, figures)`` fills ``reports/templates/release.html.j2``
(Jinja2 with autoescape and ``StrictUndefined``: a missing template variable is an error, not
an empty cell). Everything is inline -- CSS, SVG figures -- and nothing is fetched from the
network: figures are checked for scripts and external references before they are inlined
(:func:`~dpgenome.svgcharts.inline_svg`). A sweep's frontier page is :mod:`dpgenome.frontier`.

Figures the results document drives directly are drawn as hand-built SVG
(:mod:`dpgenome.svgcharts`): ROC curves of the membership attacks (``audit.attacks.*.roc``)
and the distance-to-closest-record histograms (``audit.nearest_neighbour.dcr_*``). The
others arrive as SVG strings in ``figures`` under these keys (any other key is shown under
"Other figures"): ``manhattan``, ``qq``, ``allele_frequency``, ``ld_decay``, ``pca``,
``phenotype_correlation``. A figure that is not supplied is labelled as missing in the
dossier rather than silently left out.

Aggregates only: the dossier shows what the results document holds (which, by contract,
holds no sample id, genotype row or phenotype value of a real individual).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

import jinja2
from markupsafe import Markup

from dpgenome import __version__
from dpgenome.accountant import PUBLIC_ASSUMPTIONS
from dpgenome.errors import DpgenomeError
from dpgenome.findings import (
    Evaluation,
    Status,
    as_number,
    claim_text,
    fmt,
    fmt_claim,
    value_at,
)
from dpgenome.jsonvalues import is_number
from dpgenome.paths import templates_dir
from dpgenome.policy import Override
from dpgenome.release_id import results_release_id
from dpgenome.svgcharts import dcr_svg, inline_svg, roc_svg

#: figure keys the release template places, with their captions
FIGURE_CAPTIONS: dict[str, str] = {
    "manhattan": "Manhattan plot: real (top) vs synthetic (bottom) GWAS, one dot per SNP, "
    "shades alternating by chromosome; dashed lines at p = 1e-8 and 2e-6",
    "qq": "QQ plot of GWAS p-values, real vs synthetic",
    "allele_frequency": "Allele frequencies: real vs synthetic, one dot per SNP",
    "ld_decay": "Linkage-disequilibrium decay with distance, real vs synthetic",
    "pca": (
        "Principal components: synthetic samples (points) projected on the real PCA; the real "
        "members are a 30 x 30 histogram whose cells of fewer than 5 individuals are left "
        "blank, so that no real individual's position is drawn (with a few hundred members "
        "most cells are blank)"
    ),
    "phenotype_correlation": "Phenotype correlations, real vs synthetic: the two matrices, "
    "or, above 30 phenotypes, each pair's synthetic r against its real r (on the line: kept)",
}


# ---------------------------------------------------------------------------- view model


def _association_rows(association: Any) -> dict[str, Any]:
    """The regions whose association the synthesizer released (DP outputs and their
    post-processing only: selected regions, released effect sizes, the implied lead SNP)."""
    if not isinstance(association, Mapping) or "regions" not in association:
        return {"recorded": False, "regions": [], "residual": None}
    regions = []
    for r in association.get("regions") or []:
        if not isinstance(r, Mapping):
            continue
        lead = r.get("implied_lead")
        exact = r.get("exact_snps")
        matched = (
            f"{len(exact)} most associated SNPs (exact)"
            if isinstance(exact, list) and exact
            else (lead.get("snp") if isinstance(lead, Mapping) else None)
        )
        regions.append(
            {
                "where": f"chr{r.get('chr')}:{fmt((r.get('start') or 0) / 1e6)}-"
                f"{fmt((r.get('end') or 0) / 1e6)} Mb",
                "n_snps": r.get("n_snps"),
                "n_components": r.get("n_components"),
                "effect_norm": r.get("released_effect_norm"),
                "shrink_factor": r.get("shrink_factor"),
                "carried": not r.get("dropped", False),
                "drop_reason": r.get("drop_reason", "mostly noise"),
                "matched_snps": matched,
            }
        )
    return {
        "recorded": True,
        "regions": regions,
        "residual": association.get("matching_relative_residual"),
        # without a public panel: one SNP per region, no LD around it
        "lead_snps": association.get("release") == "lead SNP",
        # what the ledger's region-association entry was planned for, and what ran
        "released": len(regions),
        "noise_multiplier": association.get("region_noise_multiplier"),
    }


def _pairing_choice(pairing: Any) -> dict[str, Any] | None:
    """How the kept pairing of synthetic phenotype rows with genotype rows was chosen among
    its draws (:func:`dpgenome.association.typical_draw`): None for a single draw, or when
    the draws were not scanned."""
    if not isinstance(pairing, Mapping):
        return None
    lambdas, stray, chosen = (pairing.get(k) for k in ("lambda_gc", "unexplained_hit", "chosen"))
    if not (isinstance(lambdas, list) and isinstance(stray, list) and isinstance(chosen, int)):
        return None
    if not 0 <= chosen < len(lambdas) or len(stray) != len(lambdas):
        return None
    return {
        "draws": len(lambdas),
        "set_aside": sum(bool(h) for h in stray),
        "all_stray": all(bool(h) for h in stray),
        "kept": chosen + 1,
        "kept_lambda": lambdas[chosen],
        "lambdas": lambdas,
        "line": pairing.get("stray_hit_log10_p"),
    }


def _ancestry_text(ancestry: Any) -> str | None:
    """How the synthesizer kept ancestry across chromosomes (public-panel figures and the
    configuration only), or None when the synthesis recorded nothing of it."""
    if not isinstance(ancestry, Mapping):
        return None
    axes = ancestry.get("axes")
    auto = ancestry.get("auto")
    on = f"{axes} principal axes of the public panel" if isinstance(axes, int) else "off"
    if not isinstance(auto, Mapping):
        return f"{on} (set by the configuration)"
    rho = auto.get("correlations") or []
    if not rho:
        return "off: chosen automatically, nothing to test (one chromosome or a tiny panel)"
    try:
        top, p = float(rho[0]), float((auto.get("p_values") or [None])[0])
    except (TypeError, ValueError):
        return f"{on}: chosen automatically from the public panel alone"
    share = (
        f"its two genome halves share {auto.get('shared_axes')} axis(es)"
        if auto.get("shared_axes")
        else "its two genome halves share no structure"
    )
    among = auto.get("unrelated")
    who = f" among its {among} individuals without first-degree relatives" if among else ""
    p_text = f"{p:.2g}" if p > 0 else "< 1e-300"
    return (
        f"{on}: chosen automatically from the public panel alone (no privacy cost): {share} "
        f"(canonical correlations of their principal components{who}, largest {top:.2f}, "
        f"Bartlett p {p_text}; the threshold: p < {auto.get('alpha')} and a correlation of at "
        f"least {auto.get('min_correlation')})"
    )


def _share(value: Any) -> str:
    """A share (0-1) to four significant digits, or "n/a"."""
    return f"{value:.4g}" if isinstance(value, int | float) else "n/a"


def _panel_imputation_text(imputed: Any) -> str | None:
    """How many of the public panel's calls were filled before the synthesizer read it
    (public data only), or None when it missed none."""
    if not isinstance(imputed, Mapping) or not imputed.get("calls_filled"):
        return None
    return (
        f"{imputed.get('calls_filled'):,} missing calls (a share of "
        f"{_share(imputed.get('share_filled'))} of its calls) filled before the synthesizer "
        "read the panel, each from the nearest of its "
        f"individuals with the call over windows of {imputed.get('window_snps')} SNPs "
        f"({imputed.get('from_snp_mean'):,} from the SNP's mean); public data, no privacy cost, "
        "so no copied panel block brings a missing call into the synthetic cohort"
    )


def _missing_calls_text(release: Any) -> str | None:
    """What the ``genotype-missingness`` release gave the synthetic genotypes (DP outputs and
    public data only), or None when the synthesis did not release missing calls."""
    if not isinstance(release, Mapping):
        return None
    kept = release.get("bins_kept")
    expected = _share(release.get("expected_missing_share"))
    realised = _share(release.get("synthetic_missing_share"))
    what = (
        "no bin passed the noise, so the public default stands: no missing call"
        if not kept
        else f"{kept} of {len(release.get('bins_upper_share') or [])} bins of an individual's "
        f"share of missing calls kept (noisy count at least {release.get('keep_sds'):g} noise "
        f"sds; their released shares give an expected share of {expected})"
    )
    return (
        f"released (one Gaussian histogram of the members' shares of missing calls): {what}; "
        f"spread over the SNPs by {release.get('snp_weights')}; the synthetic genotypes miss "
        f"{realised} of their calls"
    )


def _phenotype_release_rows(synthesis: Any) -> list[dict[str, Any]]:
    """A 0/1 analysis phenotype's released prevalence and any phenotype's released covariate
    slopes, beside the DP phenotype model's own value and the synthetic rows' (DP outputs and
    their post-processing only; the members' exact values are not shown)."""
    if not isinstance(synthesis, Mapping):
        return []
    rows: list[dict[str, Any]] = []
    prevalence = synthesis.get("phenotype_prevalence")
    if isinstance(prevalence, Mapping):
        rows.append(
            {
                "quantity": "prevalence",
                "model": prevalence.get("synthetic_model"),
                "released": prevalence.get("released"),
                "noise_sd": None,
                "synthetic": prevalence.get("synthetic"),
            }
        )
    slopes = synthesis.get("covariate_slopes")
    if isinstance(slopes, Mapping):
        columns = slopes.get("columns") or []

        def value(key: str, i: int) -> Any:
            return (slopes.get(key) or [None] * len(columns))[i]

        for i, column in enumerate(columns):
            rows.append(
                {
                    "quantity": f"slope on {column}",
                    "model": value("synthetic_model", i),
                    "released": value("released", i),
                    "noise_sd": value("noise_sd", i),
                    "synthetic": value("synthetic", i),
                }
            )
    return rows


def _rows(mapping: Any) -> list[tuple[str, str]]:
    if not isinstance(mapping, Mapping):
        return []
    out = []
    for key, value in mapping.items():
        if isinstance(value, Mapping | list):
            value = json.dumps(value, sort_keys=True)
        out.append((str(key), fmt(value)))
    return out


def _canary_reach(canary: Any, delta: Any) -> float | None:
    """The largest lower bound the canary audit could show (a perfect guesser's, at the
    release's delta): ``max_lower_bound`` when the audit recorded it, else computed from its
    recorded m, guesses, delta and confidence by the audit's own function; ``None`` when the
    record lacks them (an audit that did not run, or results from before the counts)."""
    if not isinstance(canary, Mapping):
        return None
    stored = as_number(canary.get("max_lower_bound"), finite=True)
    if stored is not None:
        return stored
    m, r = canary.get("m"), canary.get("guesses")
    d = as_number(canary.get("delta", delta), finite=True)
    confidence = as_number(canary.get("confidence"), finite=True)
    if not isinstance(m, int) or not isinstance(r, int) or d is None or confidence is None:
        return None
    from dpgenome.audit.canary import max_lower_bound

    try:
        return max_lower_bound(m, r, delta=d, confidence=confidence)
    except ValueError:
        return None


def _fpr_resolution(attack: Any) -> float | None:
    """The smallest non-zero false-positive rate an attack's holdout can show (1/n_holdout):
    below it a "TPR at FPR" is the TPR at FPR 0, not a measurement."""
    if not isinstance(attack, Mapping):
        return None
    recorded = as_number(attack.get("fpr_resolution"), finite=True)
    if recorded is not None:
        return recorded
    n = attack.get("n_holdout")
    return 1.0 / n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


def _tpr_null_1pct(attacks: Any) -> float | None:
    """What the TPR at 1% FPR averages when nothing leaks, at the attacks' holdout size n:
    (f + 1) / (n + 1) with f = floor(0.01 n), the threshold letting through at most f holdout
    individuals (above 0.01: 0.0137 at n = 218)."""
    sizes: set[int] = set()
    for a in attacks.values() if isinstance(attacks, Mapping) else []:
        n = a.get("n_holdout") if isinstance(a, Mapping) else None
        if isinstance(n, int) and not isinstance(n, bool):
            sizes.add(n)
    if len(sizes) != 1:
        return None
    (n,) = sizes
    return (math.floor(0.01 * n) + 1) / (n + 1) if n >= 100 else None


def _input_individuals(cohort: Any) -> int | None:
    """How many individuals the input held (the set the lifetime ledger charges): recorded as
    ``cohort.n_input``, else read off the first sample step of the QC report (before it)."""
    if not isinstance(cohort, Mapping):
        return None
    recorded = cohort.get("n_input")
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        return recorded
    for step in cohort.get("qc") or []:
        if isinstance(step, Mapping) and step.get("unit") == "samples":
            removed, remaining = step.get("removed"), step.get("remaining")
            if isinstance(removed, int) and isinstance(remaining, int):
                return removed + remaining
            return None
    return None


def _finding_ci(f: Any, kinship: Mapping[str, Any]) -> str:
    """A finding's 95% CI as text; the kinship excess when neither the synthetic nor the
    holdout individuals have a first-degree pair with a member is no interval but a count
    of nothing on both sides, and says so."""
    if f.ci is None:
        return ""
    if (
        f.metric.startswith("audit.kinship.excess_first_degree_rate")
        and f.ci[0] == f.ci[1] == 0
        and kinship.get("synthetic_member_first_degree_pairs") == 0
        and kinship.get("holdout_member_first_degree_pairs") == 0
    ):
        return "0 (no first-degree pair either side)"
    return f"{fmt(f.ci[0])} – {fmt(f.ci[1])}"


def _seed_rows(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The recorded seeds, and where the DP noise came from (not from a published seed)."""
    rows = _rows(value_at(results, "provenance.seeds"))
    noise = value_at(results, "synthesis.noise_source")
    return [*rows, ("DP noise", str(noise))] if noise else rows


def _plural(n: Any, singular: str, plural: str) -> str:
    """``1 synthetic locus``, ``2 synthetic loci`` (a missing count reads "—")."""
    return f"{fmt(n)} {singular if n == 1 else plural}"


def epsilon_text(results: Mapping[str, Any]) -> tuple[str, bool]:
    """The release's epsilon as the dossier shows it, and whether it has no formal privacy."""
    ledger = value_at(results, "ledger", {})
    if not isinstance(ledger, Mapping) or "epsilon" not in ledger:
        return "not reported", False
    if ledger.get("epsilon") is None or ledger.get("no_formal_privacy") is True:
        return "∞ — NO FORMAL PRIVACY", True
    return fmt_claim(ledger["epsilon"]), False


def _figures(figures: Mapping[str, str], results: Mapping[str, Any]) -> dict[str, Markup | None]:
    out: dict[str, Markup | None] = {}
    for name, svg in figures.items():
        out[name] = inline_svg(svg, name)
    if "roc" not in out:
        attacks = value_at(results, "audit.attacks", {})
        roc = roc_svg(attacks) if isinstance(attacks, Mapping) else None
        out["roc"] = None if roc is None else inline_svg(roc, "roc")
    if "dcr" not in out:
        nearest = value_at(results, "audit.nearest_neighbour", {})
        dcr = dcr_svg(nearest) if isinstance(nearest, Mapping) else None
        out["dcr"] = None if dcr is None else inline_svg(dcr, "dcr")
    for name in FIGURE_CAPTIONS:
        out.setdefault(name, None)
    return out


def now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["claim"] = fmt_claim
    env.filters["plural"] = _plural
    # the ledger's assumptions beyond those every ledger states (a release's own)
    env.globals["public_assumptions"] = PUBLIC_ASSUMPTIONS
    env.filters["pct"] = lambda v: "—" if not isinstance(v, int | float) else f"{100 * v:.1f}%"
    return env


def _release_id(results: Mapping[str, Any]) -> str | None:
    """The release id the results fix (their synthetic cohort's fingerprint), if they do."""
    try:
        return results_release_id(results)
    except DpgenomeError:
        return None


def build_context(
    results: Mapping[str, Any],
    evaluation: Evaluation,
    figures: Mapping[str, str] | None = None,
    *,
    override: Override | None = None,
    generated_at: str | None = None,
) -> dict[str, Any]:
    """The template's view of a release: plain values, pre-formatted where it helps."""
    eps_text, no_formal = epsilon_text(results)
    attacks = value_at(results, "audit.attacks", {})
    thresholds = value_at(results, "fidelity.gwas.thresholds", {})
    provenance = value_at(results, "provenance", {})
    kinship = value_at(results, "audit.kinship", {})
    kinship = kinship if isinstance(kinship, Mapping) else {}
    finding_rows = [
        {
            "rule": f.rule,
            "title": f.title,
            "status": str(f.status),
            # an advisory FAIL never blocks: amber, as a NOT EVALUATED, not the blocking red
            "css": {"PASS": "pass", "FAIL": "fail" if f.required else "ne"}.get(
                str(f.status), "ne"
            ),
            "measured": claim_text(f.rule, f.measured),
            "ci": _finding_ci(f, kinship),
            "threshold": f.threshold,
            "required": f.required,
            "detail": f.detail,
            "metric": f.metric,
            "policy_line": f.policy_line,
        }
        for f in evaluation.findings
    ]
    ledger = value_at(results, "ledger", {})
    mechanisms = ledger.get("mechanisms", []) if isinstance(ledger, Mapping) else []
    mechanisms = mechanisms if isinstance(mechanisms, list) else []
    canary = value_at(results, "audit.canary", {})
    delta = ledger.get("delta") if isinstance(ledger, Mapping) else None
    date = generated_at or value_at(results, "provenance.date") or now_text()
    return {
        "version": __version__,
        "date": str(date),
        "verdict": str(evaluation.verdict),
        "overridden": override is not None,
        "override": None if override is None else override.to_dict(),
        "policy": {
            "name": evaluation.policy_name,
            "purpose": evaluation.policy_purpose,
            "sha256": evaluation.policy_sha256,
            "signoff_roles": list(evaluation.signoff_roles),
            "overrides_allowed": evaluation.overrides_allowed,
            "charges_blocked_releases": evaluation.charges_blocked_releases,
            "open_publication": evaluation.open_publication,
        },
        "failing": [r for r, f in zip(finding_rows, evaluation.findings, strict=True) if f.blocks],
        "warnings": [
            r
            for r, f in zip(finding_rows, evaluation.findings, strict=True)
            if not f.required and f.status != Status.PASS
        ],
        "findings": finding_rows,
        "counts": evaluation.counts(),
        "advisory_failing": sum(
            1 for f in evaluation.findings if not f.required and f.status == Status.FAIL
        ),
        "epsilon_text": eps_text,
        "no_formal_privacy": no_formal,
        "release_id": _release_id(results),
        "cohort": value_at(results, "cohort", {}),
        "split": value_at(results, "split", {}),
        "ledger": ledger if isinstance(ledger, Mapping) else {},
        "mechanisms": mechanisms,
        # what the Gaussian DP mu leaves out: every mechanism that is not DP-SGD or Gaussian
        "gdp_excluded": [
            f"{m.get('name', '—')} ({m.get('kind', '—')})"
            for m in mechanisms
            if isinstance(m, Mapping) and m.get("kind") not in ("dp-sgd", "gaussian", "none")
        ],
        "n_input": _input_individuals(value_at(results, "cohort", {})),
        "scale": _guarantee_scale(ledger, value_at(results, "split.n_members")),
        "context": evaluation.context.to_dict(),
        "attacks": attacks if isinstance(attacks, Mapping) else {},
        "fpr_resolution": {
            name: _fpr_resolution(a)
            for name, a in (attacks.items() if isinstance(attacks, Mapping) else [])
        },
        "tpr_null_1pct": _tpr_null_1pct(attacks),
        "nearest": value_at(results, "audit.nearest_neighbour", {}),
        "kinship": kinship,
        "attribute": value_at(results, "audit.attribute_inference", {}),
        "canary": canary,
        "canary_reach": _canary_reach(canary, delta),
        "public_control": value_at(results, "audit.public_control", {}),
        "control_judged": any("audit.public_control" in f.metric for f in evaluation.findings),
        # whether any rule judges a fidelity figure other than the GWAS's
        "fidelity_beyond_gwas": any(
            f.metric.startswith("fidelity.") and not f.metric.startswith("fidelity.gwas")
            for f in evaluation.findings
        ),
        "distinct_judged": any("distinct_share_p_value" in f.metric for f in evaluation.findings),
        "share_judged": {
            kind: any(f.rule == f"nearest_neighbour.{rule}" for f in evaluation.findings)
            for kind, rule in (("raw", "share_closer_to_members"), ("centred", "centred_share"))
        },
        "gwas_thresholds": thresholds if isinstance(thresholds, Mapping) else {},
        "loci": value_at(results, "fidelity.gwas.loci", {}),
        "association": _association_rows(value_at(results, "synthesis.association", {})),
        "phenotype_release": _phenotype_release_rows(value_at(results, "synthesis", {})),
        "pairing": _pairing_choice(value_at(results, "synthesis.pairing", {})),
        "allele_order": value_at(results, "synthesis.allele_order"),
        "ancestry": _ancestry_text(value_at(results, "synthesis.ancestry")),
        "missing_calls": _missing_calls_text(value_at(results, "synthesis.genotype_missingness")),
        "panel_imputation": _panel_imputation_text(
            value_at(results, "synthesis.public_panel_imputation")
        ),
        "gwas": value_at(results, "fidelity.gwas", {}),
        "fidelity": value_at(results, "fidelity", {}),
        "marginal_rows": _marginal_rows(
            value_at(results, "fidelity.phenotype_marginals", {}),
            value_at(results, "split.n_members"),
        ),
        "provenance": provenance if isinstance(provenance, Mapping) else {},
        "config_json": json.dumps(
            value_at(results, "provenance.config", {}), indent=2, sort_keys=True
        ),
        "seeds": _seed_rows(results),
        "packages": _rows(value_at(results, "provenance.packages")),
        "timings": _rows(value_at(results, "provenance.timings_s")),
        "input_files": _rows(value_at(results, "provenance.input_files")),
        "panel_files": _rows(value_at(results, "provenance.public_panel_files")),
        "figures": _figures(figures or {}, results),
        "captions": FIGURE_CAPTIONS,
    }


#: a real count under this many individuals is shown as "< 5 of n", not as an exact share
#: (small-cell suppression: a share of 1/786 says one member lacks the value)
MIN_SHOWN_COUNT = 5


def _small_share(share: Any, n: Any) -> str | None:
    """``share`` of ``n`` individuals as the dossier shows a real figure: "< 5 of n" when it
    stands for 1 to 4 of them (or as many short of all), else None (shown as it is)."""
    if not (is_number(share) and is_number(n)) or n <= 0:
        return None
    count = round(float(share) * float(n))
    for k, side in ((count, ""), (round(n) - count, "all but ")):
        if 0 < k < MIN_SHOWN_COUNT:
            return f"{side}< {MIN_SHOWN_COUNT} of {round(n):,}"  # escaped by the template
    return None


def _marginal_rows(marginals: Any, n_members: Any) -> list[dict[str, Any]]:
    """The phenotype-marginal rows with the real missing share and a binary column's real
    prevalence suppressed where they stand for fewer than :data:`MIN_SHOWN_COUNT` members
    (``missing_real_shown``, ``mean_real_shown``: None where the figure is shown as is)."""
    rows = marginals.get("rows") if isinstance(marginals, Mapping) else None
    out = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping):
            continue
        missing = row.get("missing_real")
        observed = (
            float(n_members) * (1.0 - float(missing))
            if is_number(n_members) and is_number(missing)
            else None
        )
        binary = row.get("type") == "binary"
        out.append(
            dict(row)
            | {
                "missing_real_shown": _small_share(missing, n_members),
                "mean_real_shown": _small_share(row.get("mean_real"), observed) if binary else None,
            }
        )
    return out


def _guarantee_scale(ledger: Any, n_members: Any) -> dict[str, str | None]:
    """What the pair means in plain numbers: the factor e^epsilon by which one member can
    move an output's probability, and n delta, delta summed over the members (with the
    default delta = 1/n^1.1 it is n^-0.1, about 0.5 at n ~ 1,000: read as a per-person
    chance, not a cohort-wide one). None where a figure is missing or no formal privacy."""
    eps = ledger.get("epsilon") if isinstance(ledger, Mapping) else None
    delta = ledger.get("delta") if isinstance(ledger, Mapping) else None
    factor = math.exp(eps) if is_number(eps) and 0 <= eps < 700 else None
    n_delta = float(n_members) * float(delta) if is_number(n_members) and is_number(delta) else None
    return {
        "factor": None if factor is None else f"{factor:,.0f}" if factor >= 10 else f"{factor:.2f}",
        "n_delta": None if n_delta is None else f"{n_delta:.2g}",
    }


def render_dossier(
    results: Mapping[str, Any],
    evaluation: Evaluation,
    figures: Mapping[str, str] | None = None,
    *,
    override: Override | None = None,
    generated_at: str | None = None,
) -> str:
    """Render the release dossier (``reports/templates/release.html.j2``) to an HTML string."""
    context = build_context(
        results, evaluation, figures, override=override, generated_at=generated_at
    )
    return environment().get_template("release.html.j2").render(**context)
