"""Small matplotlib figures as SVG text, for the fidelity report and the dossier.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI
backend) and returns the SVG as a string with text kept as text. Dense layers are kept small:
points that cannot matter visually (non-significant GWAS points, the bulk of a QQ plot or of a
scatter) are thinned deterministically to one point per display cell and drawn rasterised,
so an 80k-SNP Manhattan plot stays well under 1.5 MB.

Only aggregates are drawn: per-SNP statistics, frequencies, correlation matrices and, for
PCA, a histogram of the real cohort with small cells suppressed (no real individual is drawn
as a point).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

mpl.rcParams["svg.fonttype"] = "none"
mpl.rcParams["svg.hashsalt"] = "dpgenome"  # deterministic ids: identical input, identical SVG

REAL_COLOUR = "#1f5f99"
SYNTH_COLOUR = "#c0562b"
_CHROM_SHADES = ("#1f5f99", "#7fa7cc")
_SYNTH_SHADES = ("#c0562b", "#e5a98c")


def to_svg(fig: Figure) -> str:
    """Serialise a figure as SVG text (metadata stripped so output is reproducible)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None}, dpi=110)
    return buf.getvalue()


def message_svg(text: str) -> str:
    """A small figure that only states why a plot is absent (never an empty frame)."""
    fig = Figure(figsize=(5.0, 0.8))
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, color="#555555")
    return to_svg(fig)


def thin(x: np.ndarray, y: np.ndarray, *, cells: tuple[int, int] = (1200, 400)) -> np.ndarray:
    """Indices keeping one point per cell of a ``cells`` grid over the data range (first
    point of each cell), deterministic."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size == 0:
        return np.empty(0, dtype=np.int64)
    span_x = max(float(np.ptp(x)), 1e-12)
    span_y = max(float(np.ptp(y)), 1e-12)
    cx = np.floor((x - x.min()) / span_x * (cells[0] - 1)).astype(np.int64)
    cy = np.floor((y - y.min()) / span_y * (cells[1] - 1)).astype(np.int64)
    _, first = np.unique(cx * cells[1] + cy, return_index=True)
    return np.sort(first)


def _genome_axis(
    chroms: np.ndarray, pos: np.ndarray, order: Sequence[str]
) -> tuple[np.ndarray, list[float], list[str]]:
    """Cumulative x coordinate per SNP, chromosome tick positions and labels."""
    x = np.zeros(len(pos), dtype=np.float64)
    offset = 0.0
    ticks: list[float] = []
    labels: list[str] = []
    for c in order:
        on = chroms == c
        if not on.any():
            continue
        p = pos[on].astype(np.float64)
        lo, hi = p.min(), p.max()
        x[on] = offset + (p - lo)
        ticks.append(offset + (hi - lo) / 2)
        labels.append(c)
        offset += (hi - lo) + max((hi - lo) * 0.02, 1.0)
    return x, ticks, labels


def _chromosome_order(names: np.ndarray) -> list[str]:
    from dpgenome.cohort import chromosome_rank, normalise_chromosome

    uniq = [str(c) for c in dict.fromkeys(names.tolist())]
    known = [c for c in uniq if normalise_chromosome(c) == c]
    other = sorted(c for c in uniq if c not in known)
    return sorted(known, key=lambda c: int(chromosome_rank([c])[0])) + other


def manhattan_svg(
    chroms: np.ndarray,
    pos: np.ndarray,
    log10_p: np.ndarray,
    *,
    synthetic_log10_p: np.ndarray | None = None,
    thresholds: Sequence[float] = (1e-8, 2e-6),
    title: str = "",
    labels: tuple[str, str] = ("real", "synthetic"),
) -> str:
    """Manhattan plot; with ``synthetic_log10_p`` (same SNPs) a mirrored one: real above the
    axis, synthetic below, same x and |y| scale, dashed lines at each threshold."""
    chroms = np.asarray(chroms).astype(str)
    pos = np.asarray(pos, dtype=np.float64)
    order = _chromosome_order(chroms)
    x, ticks, tick_labels = _genome_axis(chroms, pos, order)
    rank = {c: i for i, c in enumerate(order)}
    parity = np.array([rank[c] % 2 for c in chroms])
    fig = Figure(figsize=(10, 4.2 if synthetic_log10_p is not None else 3.2))
    ax = fig.add_subplot()
    series = [(np.asarray(log10_p, dtype=np.float64), 1.0, _CHROM_SHADES)]
    if synthetic_log10_p is not None:
        series.append((np.asarray(synthetic_log10_p, dtype=np.float64), -1.0, _SYNTH_SHADES))
    top = 1.0
    loosest = -np.log10(max(thresholds)) if thresholds else np.inf
    for values, sign, shades in series:
        ok = np.isfinite(values)
        top = max(top, float(values[ok].max()) if ok.any() else 1.0)
        dense = ok & (values < min(2.0, loosest))
        sparse = ok & ~dense
        for layer, raster in ((dense, True), (sparse, False)):
            idx = np.flatnonzero(layer)
            if raster and idx.size:
                idx = idx[thin(x[idx], values[idx])]
            for par in (0, 1):
                sel = idx[parity[idx] == par]
                ax.scatter(
                    x[sel],
                    sign * values[sel],
                    s=3 if raster else 6,
                    c=shades[par],
                    linewidths=0,
                    rasterized=raster,
                )
    ymax = top * 1.08
    for t in thresholds:
        level = -np.log10(t)
        signs = (1.0, -1.0) if synthetic_log10_p is not None else (1.0,)
        for sign in signs:
            ax.axhline(sign * level, color="#555555", lw=0.8, ls="--")
            # each line named at its right end: the significance threshold it draws
            ax.text(
                1.002,
                sign * level,
                f"p = {t:.0e}".replace("e-0", "e-"),
                transform=ax.get_yaxis_transform(),
                va="center",
                ha="left",
                fontsize=7,
                color="#555555",
            )
    if synthetic_log10_p is not None:
        ax.axhline(0, color="black", lw=0.6)
        ax.set_ylim(-ymax, ymax)
        yt = ax.get_yticks()
        ax.set_yticks(yt)
        ax.set_yticklabels([f"{abs(v):g}" for v in yt])
        ax.text(0.005, 0.97, labels[0], transform=ax.transAxes, va="top", color=REAL_COLOUR)
        ax.text(0.005, 0.03, labels[1], transform=ax.transAxes, va="bottom", color=SYNTH_COLOUR)
    else:
        ax.set_ylim(0, ymax)
    ax.set_xticks(ticks)
    ax.set_xticklabels(tick_labels, fontsize=7)
    ax.set_xlim(x.min() - 1, x.max() + 1) if x.size else None
    ax.set_xlabel("chromosome")
    ax.set_ylabel("-log10 p")
    if title:
        ax.set_title(title)
    return to_svg(fig)


def qq_svg(series: Mapping[str, np.ndarray], *, title: str = "QQ plot") -> str:
    """QQ plot of -log10 p against its uniform expectation, one series per name, with the
    identity line; the bulk below 2 on both axes is thinned and rasterised."""
    return to_svg(qq_figure(series, title=title))


def qq_figure(series: Mapping[str, np.ndarray], *, title: str = "QQ plot") -> Figure:
    """The figure :func:`qq_svg` draws."""
    fig = Figure(figsize=(4.2, 4.2))
    ax = fig.add_subplot()
    colours = (REAL_COLOUR, SYNTH_COLOUR, "#4d9a4d", "#7a4d9a")
    top_exp, top_obs = 1.0, 1.0
    for (name, values), colour in zip(series.items(), colours, strict=False):
        obs = np.sort(np.asarray(values, dtype=np.float64)[np.isfinite(values)])[::-1]
        if obs.size == 0:
            continue
        m = obs.size
        exp = -np.log10((np.arange(1, m + 1) - 0.5) / m)
        top_exp, top_obs = max(top_exp, float(exp[0])), max(top_obs, float(obs[0]))
        bulk = (obs < 2) & (exp < 2)
        idx = np.flatnonzero(bulk)
        idx = idx[thin(exp[idx], obs[idx], cells=(400, 400))]
        ax.scatter(exp[idx], obs[idx], s=4, c=colour, linewidths=0, rasterized=True)
        tail = ~bulk
        ax.scatter(exp[tail], obs[tail], s=6, c=colour, linewidths=0, label=name)
    # the x axis spans the expected values only (the identity line to their end): a strong
    # hit's observed -log10 p, often several times the largest expected, no longer squeezes
    # the whole distribution into the axis's first quarter
    ax.plot([0, top_exp], [0, top_exp], color="#555555", lw=0.8, label="expected (no association)")
    ax.set_xlim(0, top_exp * 1.05)
    ax.set_ylim(0, max(top_obs, top_exp) * 1.05)
    ax.set_xlabel("expected -log10 p")
    ax.set_ylabel("observed -log10 p")
    ax.set_title(title)
    # upper left: the strongest observed values sit at the largest expected ones
    ax.legend(loc="upper left", frameon=False, markerscale=2.5, fontsize=8)
    return fig


def scatter_svg(
    x: np.ndarray,
    y: np.ndarray,
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    diagonal: bool = True,
    max_points: int = 20_000,
) -> str:
    """Scatter of two aggregates (e.g. allele frequencies), thinned to one point per display
    cell above ``max_points``, with an optional identity line."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size > max_points:
        keep = thin(x, y, cells=(300, 300))
        x, y = x[keep], y[keep]
    fig = Figure(figsize=(4.2, 4.2))
    ax = fig.add_subplot()
    ax.scatter(x, y, s=4, c=REAL_COLOUR, linewidths=0, alpha=0.6, rasterized=x.size > 2000)
    if diagonal and x.size:
        lo = min(float(x.min()), float(y.min()))
        hi = max(float(x.max()), float(y.max()))
        ax.plot([lo, hi], [lo, hi], color="#555555", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return to_svg(fig)


def lines_svg(
    x: np.ndarray,
    series: Mapping[str, np.ndarray],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
) -> str:
    """Line plot of several series over a shared x (e.g. LD decay curves)."""
    fig = Figure(figsize=(5.0, 3.4))
    ax = fig.add_subplot()
    colours = (REAL_COLOUR, SYNTH_COLOUR, "#4d9a4d", "#7a4d9a")
    for (name, values), colour in zip(series.items(), colours, strict=False):
        ax.plot(x, values, marker="o", ms=3, lw=1.2, color=colour, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    return to_svg(fig)


def pca_overlay_svg(
    real_hist: np.ndarray,
    xedges: np.ndarray,
    yedges: np.ndarray,
    synthetic: np.ndarray,
    *,
    explained: Sequence[float] = (),
    title: str = "PCA (axes fitted on the real cohort)",
) -> str:
    """Real cohort as a 2-D histogram (cells under the suppression threshold already
    zeroed by the caller), synthetic samples as points on the same PC1/PC2 axes."""
    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.add_subplot()
    masked = np.ma.masked_equal(real_hist.T, 0)
    # the scale starts at 0, so the smallest count drawn is blue, not the white of a blank cell
    mesh = ax.pcolormesh(xedges, yedges, masked, cmap="Blues", vmin=0, rasterized=True)
    fig.colorbar(mesh, ax=ax, label="real samples per cell (blank: too few to show)")
    pts = np.asarray(synthetic, dtype=np.float64)
    if pts.size:
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=4,
            c=SYNTH_COLOUR,
            linewidths=0,
            alpha=0.6,
            label="synthetic",
            rasterized=len(pts) > 2000,
        )
        ax.legend(loc="upper right", frameon=False)
    ev = list(explained) + [float("nan")] * 2
    ax.set_xlabel(f"PC1 ({ev[0]:.1%} of real variance)")
    ax.set_ylabel(f"PC2 ({ev[1]:.1%} of real variance)")
    ax.set_title(title)
    return to_svg(fig)


#: above this many phenotypes the two matrices' cells and labels are too small to read:
#: :func:`correlation_pair_svg` draws one point per pair instead
MAX_MATRIX_LABELS = 30


def correlation_pair_svg(
    real: np.ndarray, synthetic: np.ndarray, labels: Sequence[str], *, title: str = ""
) -> str:
    """Two correlation matrices side by side (real, synthetic) on one colour scale; above
    :data:`MAX_MATRIX_LABELS` phenotypes, the synthetic r of every pair against its real r
    (matrices of 161 phenotypes drew 46-inch panels, scaled to an unreadable strip)."""
    k = len(labels)
    if k > MAX_MATRIX_LABELS:
        upper = np.triu_indices(k, 1)
        fig = Figure(figsize=(4.6, 4.6))
        ax = fig.add_subplot()
        x, y = np.asarray(real)[upper], np.asarray(synthetic)[upper]
        ok = np.isfinite(x) & np.isfinite(y)
        ax.scatter(x[ok], y[ok], s=4, c=REAL_COLOUR, linewidths=0, alpha=0.5, rasterized=True)
        ax.plot([-1, 1], [-1, 1], color="#555555", lw=0.8)
        ax.set_xlim(-1.02, 1.02)
        ax.set_ylim(-1.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel(f"real Pearson r ({int(ok.sum()):,} pairs of {k} phenotypes)")
        ax.set_ylabel("synthetic Pearson r")
        if title:
            ax.set_title(title, fontsize=9)
        return to_svg(fig)
    size = max(3.0, 0.28 * k + 1.5)
    fig = Figure(figsize=(2 * size + 1.0, size))
    axes = fig.subplots(1, 2)
    image = None
    for ax, mat, name in zip(axes, (real, synthetic), ("real", "synthetic"), strict=True):
        image = ax.imshow(mat, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(name)
        ax.set_xticks(range(k))
        ax.set_yticks(range(k))
        fs = 7 if k <= 20 else 5
        ax.set_xticklabels(labels, rotation=90, fontsize=fs)
        ax.set_yticklabels(labels, fontsize=fs)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="Pearson r")
    if title:
        fig.suptitle(title)
    return to_svg(fig)
