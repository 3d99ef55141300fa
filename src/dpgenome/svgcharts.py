"""Hand-built SVG charts for the dossier and the frontier page, and the check that inlines SVG.

:func:`roc_svg` (membership attacks' ROC curves), :func:`dcr_svg` (distance-to-closest-record
histograms) and :func:`line_chart_svg` (the frontier's series over categories) draw from the
results document's aggregates without matplotlib. :func:`inline_svg` admits any SVG into a
page only without scripts, event handlers or external references, its ids made unique.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from dpgenome.errors import InputError
from dpgenome.findings import (
    fmt,
)

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
    x_ticks = _nice_ticks(min(s[1][0] for s in series), max(s[1][-1] for s in series))
    y_ticks = _nice_ticks(0.0, max(max(s[2]) for s in series) or 1.0)
    lo, hi, top = x_ticks[0], x_ticks[-1], y_ticks[-1]
    frame = _legend_frame(360, 256, len(series))
    out = _svg_open(
        frame, "Distance to closest real record", "Histograms of synthetic-to-real distances"
    )
    out += _axes(
        frame,
        [(frame.x(t, lo, hi), f"{t:g}") for t in x_ticks],
        [(frame.y(t, 0, top), f"{t:g}") for t in y_ticks],
        "distance to the closest real record (scaled, no unit)",
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
