"""The release dossier: one self-contained, printable HTML file a governance officer can sign.

``render_dossier(results, evaluation, figures)`` fills ``reports/templates/release.html.j2``
(Jinja2 with autoescape and ``StrictUndefined``: a missing template variable is an error, not
an empty cell). Everything is inline -- CSS, SVG figures -- and nothing is fetched from the
network: figures are checked for scripts and external references before they are inlined.

Figures the results document drives directly are drawn here as hand-built SVG: ROC curves of
the membership attacks (``audit.attacks.*.roc``), the distance-to-closest-record histograms
(``audit.nearest_neighbour.dcr_*``) and, for ``render_frontier``, the privacy/utility frontier
of a sweep. The others arrive as SVG strings in ``figures`` under these keys (any other key is
shown under "Other figures"): ``manhattan``, ``qq``, ``allele_frequency``, ``ld_decay``,
``pca``, ``phenotype_correlation``. A figure that is not supplied is labelled as missing in
the dossier rather than silently left out.

Aggregates only: the dossier shows what the results document holds (which, by contract,
holds no sample id, genotype row or phenotype value of a real individual).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from markupsafe import Markup

from dpgenome import __version__
from dpgenome.accountant import PUBLIC_ASSUMPTIONS
from dpgenome.errors import DpgenomeError, InputError
from dpgenome.findings import (
    Evaluation,
    Status,
    as_number,
    claim_text,
    fmt,
    fmt_claim,
    is_missing,
    lookup,
)
from dpgenome.paths import templates_dir
from dpgenome.policy import Override
from dpgenome.release_id import results_release_id

#: figure keys the release template places, with their captions
FIGURE_CAPTIONS: dict[str, str] = {
    "manhattan": "Manhattan plot: real (top) vs synthetic (bottom) GWAS",
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

_PALETTE = ("#1f5fa8", "#d4522a", "#2a8c55", "#8a4fb0", "#b8860b", "#2b8fa8", "#555555")


# ---------------------------------------------------------------------------- SVG helpers

_BAD_SVG = re.compile(
    r"<\s*script|<\s*foreignObject|\bon[a-z]+\s*=|(?:href|src)\s*=\s*[\"']\s*(?!#|data:)[^\"']"
    r"|url\(\s*[\"']?\s*(?!#)|@import",
    re.IGNORECASE,
)
_PROLOGUE = re.compile(
    r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->|<metadata\b.*?</metadata>", re.DOTALL
)
_ID = re.compile(r'\bid="([^"]+)"')


def inline_svg(svg: str, name: str) -> Markup:
    """An SVG string made safe to inline: prologue, comments and metadata removed, ids made
    unique per figure.

    Raises :class:`InputError` if the SVG holds a script, an event handler or a reference to
    anything outside itself (an external request would break the no-network promise).
    """
    text = _PROLOGUE.sub("", svg).strip()
    if not text.startswith("<svg"):
        raise InputError(f"figure {name!r} is not an SVG document (it must start with <svg)")
    bad = _BAD_SVG.search(text)
    if bad:
        raise InputError(
            f"figure {name!r} contains {bad.group(0)!r}: scripts and external references are "
            "not allowed in the dossier"
        )
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    ids = set(_ID.findall(text))
    if ids:
        text = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', text)
        text = re.sub(
            r"(url\(#|href=\"#)([^)\"]+)",
            lambda m: m.group(1) + (f"{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(2)),
            text,
        )
    return Markup(text)


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class _Frame:
    """A plot area inside an SVG canvas, mapping data coordinates to pixels."""

    width: float = 360.0
    height: float = 300.0
    left: float = 52.0
    right: float = 12.0
    top: float = 28.0
    bottom: float = 44.0

    def x(self, value: float, lo: float, hi: float) -> float:
        span = (hi - lo) or 1.0
        return self.left + (value - lo) / span * (self.width - self.left - self.right)

    def y(self, value: float, lo: float, hi: float) -> float:
        span = (hi - lo) or 1.0
        return (
            self.height - self.bottom - (value - lo) / span * (self.height - self.top - self.bottom)
        )


def _svg_open(frame: _Frame, title: str, label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_num(frame.width)} '
        f'{_num(frame.height)}" width="{_num(frame.width)}" height="{_num(frame.height)}" '
        f'role="img" aria-label="{html.escape(label)}" class="chart">',
        f'<text x="{_num(frame.width / 2)}" y="16" text-anchor="middle" class="ct">'
        f"{html.escape(title)}</text>",
    ]


def _axes(
    frame: _Frame,
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_label: str,
    y_label: str,
) -> list[str]:
    left, right = frame.left, frame.width - frame.right
    top, bottom = frame.top, frame.height - frame.bottom
    out = [
        f'<rect x="{_num(left)}" y="{_num(top)}" width="{_num(right - left)}" '
        f'height="{_num(bottom - top)}" class="pa"/>'
    ]
    for px, text in x_ticks:
        out.append(
            f'<line x1="{_num(px)}" y1="{_num(bottom)}" x2="{_num(px)}" y2="{_num(bottom + 4)}" '
            f'class="tk"/><text x="{_num(px)}" y="{_num(bottom + 15)}" text-anchor="middle" '
            f'class="tl">{html.escape(text)}</text>'
        )
    for py, text in y_ticks:
        out.append(
            f'<line x1="{_num(left - 4)}" y1="{_num(py)}" x2="{_num(left)}" y2="{_num(py)}" '
            f'class="tk"/><text x="{_num(left - 6)}" y="{_num(py + 3.5)}" text-anchor="end" '
            f'class="tl">{html.escape(text)}</text>'
        )
    out.append(
        f'<text x="{_num((left + right) / 2)}" y="{_num(bottom + 34)}" '
        f'text-anchor="middle" class="al">{html.escape(x_label)}</text>'
    )
    cy = (top + bottom) / 2
    out.append(
        f'<text x="12" y="{_num(cy)}" text-anchor="middle" class="al" '
        f'transform="rotate(-90 12 {_num(cy)})">{html.escape(y_label)}</text>'
    )
    return out


_LEGEND_ROW = 13.0


def _legend_frame(width: float, plot_height: float, n_entries: int) -> _Frame:
    """A frame whose bottom margin leaves room for the legend rows under the axis label."""
    bottom = 44.0 + _LEGEND_ROW * n_entries + 4.0
    return _Frame(width=width, height=plot_height + bottom, bottom=bottom)


def _legend(frame: _Frame, labels: Sequence[tuple[str, str, str]]) -> list[str]:
    """Legend rows under the x-axis label, so it never hides data: (label, colour, dash)."""
    out = []
    for i, (label, colour, dash) in enumerate(labels):
        y = frame.height - frame.bottom + 44.0 + _LEGEND_ROW * i + 8.0
        x = frame.left
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{_num(x)}" y1="{_num(y - 3)}" x2="{_num(x + 16)}" y2="{_num(y - 3)}" '
            f'stroke="{colour}" stroke-width="2"{dash_attr}/><text x="{_num(x + 20)}" '
            f'y="{_num(y)}" class="lg">{html.escape(label)}</text>'
        )
    return out


def roc_svg(attacks: Mapping[str, Any]) -> str | None:
    """ROC curves of every membership attack that reports one (``roc.fpr``/``roc.tpr``)."""
    curves = []
    for name, attack in attacks.items():
        roc = attack.get("roc") if isinstance(attack, Mapping) else None
        if not isinstance(roc, Mapping):
            continue
        fpr, tpr = roc.get("fpr"), roc.get("tpr")
        if not isinstance(fpr, list) or not isinstance(tpr, list) or len(fpr) != len(tpr):
            continue
        auc = attack.get("auc")
        label = f"{name} (AUC {fmt(auc)})" if isinstance(auc, int | float) else name
        curves.append((label, [float(v) for v in fpr], [float(v) for v in tpr]))
    if not curves:
        return None
    frame = _legend_frame(360, 286, len(curves) + 1)
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    out = _svg_open(frame, "Membership attacks: ROC", "ROC curves of the membership attacks")
    out += _axes(
        frame,
        [(frame.x(t, 0, 1), f"{t:g}") for t in ticks],
        [(frame.y(t, 0, 1), f"{t:g}") for t in ticks],
        "false-positive rate (holdout called member)",
        "true-positive rate",
    )
    out.append(
        f'<line x1="{_num(frame.x(0, 0, 1))}" y1="{_num(frame.y(0, 0, 1))}" '
        f'x2="{_num(frame.x(1, 0, 1))}" y2="{_num(frame.y(1, 0, 1))}" stroke="#999" '
        'stroke-dasharray="4 3"/>'
    )
    legend = []
    for i, (label, fpr_values, tpr_values) in enumerate(curves):
        colour = _PALETTE[i % len(_PALETTE)]
        points = " ".join(
            f"{_num(frame.x(f, 0, 1))},{_num(frame.y(t, 0, 1))}"
            for f, t in zip(fpr_values, tpr_values, strict=True)
        )
        out.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8"/>'
        )
        legend.append((label, colour, ""))
    legend.append(("guessing (AUC 0.5)", "#999", "4 3"))
    out += _legend(frame, legend)
    out.append("</svg>")
    return "".join(out)


def dcr_svg(nearest: Mapping[str, Any]) -> str | None:
    """Distance-to-closest-record histograms (share of records per bin): synthetic-to-member vs
    synthetic-to-holdout. Identical shapes = no memorisation signal."""
    series = []
    for key, label in (("dcr_members", "to members"), ("dcr_holdout", "to holdout")):
        block = nearest.get(key)
        if not isinstance(block, Mapping):
            continue
        hist, edges = block.get("hist"), block.get("edges")
        if not isinstance(hist, list) or not isinstance(edges, list):
            continue
        if len(edges) != len(hist) + 1 or not hist:
            continue
        total = float(sum(hist)) or 1.0
        series.append((label, [float(e) for e in edges], [h / total for h in hist]))
    if not series:
        return None
    lo = min(s[1][0] for s in series)
    hi = max(s[1][-1] for s in series)
    top = max(max(s[2]) for s in series) * 1.1 or 1.0
    frame = _legend_frame(360, 256, len(series))
    out = _svg_open(
        frame, "Distance to closest real record", "Histograms of synthetic-to-real distances"
    )
    x_ticks = [lo + (hi - lo) * k / 4 for k in range(5)]
    y_ticks = [top * k / 4 for k in range(5)]
    out += _axes(
        frame,
        [(frame.x(t, lo, hi), f"{t:.3g}") for t in x_ticks],
        [(frame.y(t, 0, top), f"{t:.2f}") for t in y_ticks],
        "distance from a synthetic record to its closest real record",
        "share of synthetic records",
    )
    legend = []
    for i, (label, edges, shares) in enumerate(series):
        colour = _PALETTE[i]
        pts = [(frame.x(edges[0], lo, hi), frame.y(0, 0, top))]
        for k, share in enumerate(shares):
            pts.append((frame.x(edges[k], lo, hi), frame.y(share, 0, top)))
            pts.append((frame.x(edges[k + 1], lo, hi), frame.y(share, 0, top)))
        pts.append((frame.x(edges[-1], lo, hi), frame.y(0, 0, top)))
        points = " ".join(f"{_num(a)},{_num(b)}" for a, b in pts)
        dash = "" if i == 0 else "5 3"
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.8"'
            f"{dash_attr}/>"
        )
        legend.append((label, colour, dash))
    out += _legend(frame, legend)
    out.append("</svg>")
    return "".join(out)


def _nice_ticks(lo: float, hi: float, *, integer: bool = False) -> list[float]:
    """Four to eight round tick values (steps of 1, 2 or 5 times a power of ten; whole
    numbers for counts) covering ``[lo, hi]``: 0, 0.25, 0.5, ... not 0.275, 0.55, 0.825."""
    span = hi - lo if hi > lo else 1.0
    raw = span / 5
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integer:
        step = max(1.0, math.ceil(step))
    first = math.floor(lo / step + 1e-9) * step
    count = math.ceil((hi - first) / step - 1e-9)
    return [round(first + k * step, 10) for k in range(count + 1)]


def line_chart_svg(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    y_label: str,
    x_label: str,
    y_range: tuple[float, float] | None = None,
    reference: tuple[float, str] | None = None,
    integer: bool = False,
) -> str:
    """A small line chart over categorical x positions, evenly spaced (e.g. epsilons, the
    non-private point first). ``None`` values are gaps. ``reference`` draws a dashed
    horizontal line; ``integer``: counts, ticked at whole numbers."""
    values = [v for _, ys in series for v in ys if v is not None and math.isfinite(v)]
    if reference is not None:
        values.append(reference[0])
    if y_range is None:
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        pad = (hi - lo) * 0.1 or 0.5
        y_range = (0.0 if lo >= 0 and lo - pad < 0 else lo - pad, hi + pad)
    ticks = _nice_ticks(*y_range, integer=integer)
    lo, hi = min(y_range[0], ticks[0]), max(y_range[1], ticks[-1])
    frame = _legend_frame(360, 236, len(series) + (reference is not None))
    n = len(categories)

    def px(i: int) -> float:
        return frame.x(i + 0.5, 0, n)

    out = _svg_open(frame, title, title)
    out += _axes(
        frame,
        [(px(i), c) for i, c in enumerate(categories)],
        [(frame.y(t, lo, hi), f"{t:g}") for t in ticks],
        x_label,
        y_label,
    )
    legend = []
    if reference is not None:
        ry = frame.y(reference[0], lo, hi)
        out.append(
            f'<line x1="{_num(frame.left)}" y1="{_num(ry)}" x2="{_num(frame.width - frame.right)}"'
            f' y2="{_num(ry)}" stroke="#999" stroke-dasharray="4 3"/>'
        )
        legend.append((reference[1], "#999", "4 3"))
    for k, (label, ys) in enumerate(series):
        colour = _PALETTE[k % len(_PALETTE)]
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, v in enumerate(ys):
            if v is None or not math.isfinite(v):
                if segment:
                    segments.append(segment)
                segment = []
                continue
            point = f"{_num(px(i))},{_num(frame.y(min(max(v, lo), hi), lo, hi))}"
            segment.append(point)
            out.append(
                f'<circle cx="{point.split(",")[0]}" cy="{point.split(",")[1]}" r="3" '
                f'fill="{colour}"/>'
            )
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) > 1:
                out.append(
                    f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" '
                    'stroke-width="1.8"/>'
                )
        legend.append((label, colour, ""))
    out += _legend(frame, legend)
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------------------- view model


def _get(results: Mapping[str, Any], path: str, default: Any = None) -> Any:
    value = lookup(results, path)
    return default if is_missing(value) else value


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
    rows = _rows(_get(results, "provenance.seeds"))
    noise = _get(results, "synthesis.noise_source")
    return [*rows, ("DP noise", str(noise))] if noise else rows


def _plural(n: Any, singular: str, plural: str) -> str:
    """``1 synthetic locus``, ``2 synthetic loci`` (a missing count reads "—")."""
    return f"{fmt(n)} {singular if n == 1 else plural}"


def epsilon_text(results: Mapping[str, Any]) -> tuple[str, bool]:
    """The release's epsilon as the dossier shows it, and whether it has no formal privacy."""
    ledger = _get(results, "ledger", {})
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
        attacks = _get(results, "audit.attacks", {})
        roc = roc_svg(attacks) if isinstance(attacks, Mapping) else None
        out["roc"] = None if roc is None else inline_svg(roc, "roc")
    if "dcr" not in out:
        nearest = _get(results, "audit.nearest_neighbour", {})
        dcr = dcr_svg(nearest) if isinstance(nearest, Mapping) else None
        out["dcr"] = None if dcr is None else inline_svg(dcr, "dcr")
    for name in FIGURE_CAPTIONS:
        out.setdefault(name, None)
    return out


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> jinja2.Environment:
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
    attacks = _get(results, "audit.attacks", {})
    thresholds = _get(results, "fidelity.gwas.thresholds", {})
    provenance = _get(results, "provenance", {})
    kinship = _get(results, "audit.kinship", {})
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
    ledger = _get(results, "ledger", {})
    mechanisms = ledger.get("mechanisms", []) if isinstance(ledger, Mapping) else []
    mechanisms = mechanisms if isinstance(mechanisms, list) else []
    canary = _get(results, "audit.canary", {})
    delta = ledger.get("delta") if isinstance(ledger, Mapping) else None
    date = generated_at or _get(results, "provenance.date") or _now()
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
        "cohort": _get(results, "cohort", {}),
        "split": _get(results, "split", {}),
        "ledger": ledger if isinstance(ledger, Mapping) else {},
        "mechanisms": mechanisms,
        # what the Gaussian DP mu leaves out: every mechanism that is not DP-SGD or Gaussian
        "gdp_excluded": [
            f"{m.get('name', '—')} ({m.get('kind', '—')})"
            for m in mechanisms
            if isinstance(m, Mapping) and m.get("kind") not in ("dp-sgd", "gaussian", "none")
        ],
        "n_input": _input_individuals(_get(results, "cohort", {})),
        "context": evaluation.context.to_dict(),
        "attacks": attacks if isinstance(attacks, Mapping) else {},
        "fpr_resolution": {
            name: _fpr_resolution(a)
            for name, a in (attacks.items() if isinstance(attacks, Mapping) else [])
        },
        "tpr_null_1pct": _tpr_null_1pct(attacks),
        "nearest": _get(results, "audit.nearest_neighbour", {}),
        "kinship": kinship,
        "attribute": _get(results, "audit.attribute_inference", {}),
        "canary": canary,
        "canary_reach": _canary_reach(canary, delta),
        "public_control": _get(results, "audit.public_control", {}),
        "control_judged": any("audit.public_control" in f.metric for f in evaluation.findings),
        "distinct_judged": any("distinct_share_p_value" in f.metric for f in evaluation.findings),
        "share_judged": {
            kind: any(f.rule == f"nearest_neighbour.{rule}" for f in evaluation.findings)
            for kind, rule in (("raw", "share_closer_to_members"), ("centred", "centred_share"))
        },
        "gwas_thresholds": thresholds if isinstance(thresholds, Mapping) else {},
        "loci": _get(results, "fidelity.gwas.loci", {}),
        "association": _association_rows(_get(results, "synthesis.association", {})),
        "phenotype_release": _phenotype_release_rows(_get(results, "synthesis", {})),
        "pairing": _pairing_choice(_get(results, "synthesis.pairing", {})),
        "allele_order": _get(results, "synthesis.allele_order"),
        "ancestry": _ancestry_text(_get(results, "synthesis.ancestry")),
        "missing_calls": _missing_calls_text(_get(results, "synthesis.genotype_missingness")),
        "panel_imputation": _panel_imputation_text(
            _get(results, "synthesis.public_panel_imputation")
        ),
        "gwas": _get(results, "fidelity.gwas", {}),
        "fidelity": _get(results, "fidelity", {}),
        "provenance": provenance if isinstance(provenance, Mapping) else {},
        "config_json": json.dumps(_get(results, "provenance.config", {}), indent=2, sort_keys=True),
        "seeds": _seed_rows(results),
        "packages": _rows(_get(results, "provenance.packages")),
        "timings": _rows(_get(results, "provenance.timings_s")),
        "input_files": _rows(_get(results, "provenance.input_files")),
        "panel_files": _rows(_get(results, "provenance.public_panel_files")),
        "figures": _figures(figures or {}, results),
        "captions": FIGURE_CAPTIONS,
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
    return _environment().get_template("release.html.j2").render(**context)


# ---------------------------------------------------------------------------- frontier


def _strongest_attack(
    results: Mapping[str, Any],
) -> tuple[str | None, float | None, float | None]:
    """``(name, AUC, upper 95% bound)`` of the attack whose bound is the highest (the
    largest AUC and the largest bound could be two attacks'); all None without one."""
    attacks = _get(results, "audit.attacks", {})
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
    attacks = _get(results, "audit.attacks", {})
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
    epsilon = _get(results, "ledger.epsilon")
    no_formal = epsilon is None or _get(results, "ledger.no_formal_privacy") is True

    def num(path: str) -> float | None:
        value = _get(results, path)
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
    env = _environment()
    return env.get_template("frontier.html.j2").render(
        title=title,
        version=__version__,
        date=generated_at or _now(),
        figures=figures,
        rows=rows,
    )
