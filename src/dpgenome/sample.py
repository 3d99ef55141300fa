"""Trained window model -> synthetic dosages and a synthetic cohort with fresh sample ids.

Sampling is ancestral along each chromosome: window by window (the first window of every
chromosome at once, then the second, ...), SNP by SNP inside a window, vectorised over
samples and over chromosomes. Each SNP is drawn from ``Binomial(2, sigmoid(logit))``; after a
draw its (masked) weight row is added to the logits of the later SNPs of the window, so the
cost is ``O(n * windows * window)`` per window step. Nothing of the training data is read
here: only the model's parameters (post-processing of a DP output).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from dpgenome.model import HET_CENTRE, WindowModel, genotype_probabilities


def sample_dosages(
    model: WindowModel,
    n: int,
    rng: np.random.Generator,
    *,
    given: np.ndarray | None = None,
    free: np.ndarray | None = None,
    ancestry: np.ndarray | None = None,
) -> np.ndarray:
    """``n`` synthetic genotype rows ``(n, M)``, float32 dosages in ``{0, 1, 2}``: ancestral
    sampling, the windows of one step along every chromosome at once.

    With ``given`` (``(n, M)`` dosages) and ``free`` (``(M,)`` bool), only the ``free``
    columns are drawn, each from the model's conditional given everything before it,
    ``given``'s values included; the other columns keep ``given``'s values (windows without a
    free column are not visited). A missing given value (NaN) is read as training reads one:
    0 in both inputs (:meth:`~dpgenome.model.WindowModel.prepare`), and stays missing.

    A model with ancestry needs ``ancestry`` ``(n, C, a)``: each synthetic individual's
    leave-one-chromosome-out scores (:meth:`dpgenome.ancestry.AncestryRelease.draw`), those
    of chromosome ``c`` read by its windows (as :meth:`WindowModel.prepare` takes them)."""
    layout = model.layout
    c, k, lags = layout.context, layout.window, model.lags
    weights = model.effective_weights()
    w_eta, w_delta = weights["eta"], weights["delta"]
    shape = (n, model.n_chromosomes, model.ancestry)
    if model.ancestry and (ancestry is None or np.shape(ancestry) != shape):
        got = None if ancestry is None else np.shape(ancestry)
        raise ValueError(f"this model needs ancestry scores of shape {shape}, got {got}")
    if not model.ancestry and ancestry is not None:
        raise ValueError("this model reads no ancestry scores")
    out = np.zeros((n, layout.n_variants + 1), dtype=np.float32)  # last column: pad sink
    sink = layout.n_variants
    draw_col = np.ones(layout.n_variants + 1, dtype=bool)
    if given is not None:
        if free is None or given.shape != (n, layout.n_variants):
            raise ValueError("given needs free and the shape (n, n_variants)")
        out[:, :sink] = given
        draw_col[:sink] = free
    draw_col[sink] = False
    visit = draw_col[np.where(layout.snp_index >= 0, layout.snp_index, sink)].any(axis=1)
    for t in range(int(layout.step.max()) + 1 if layout.n_windows else 0):
        ws = np.flatnonzero((layout.step == t) & visit)
        if not ws.size:
            continue
        ctx_idx = np.where(layout.context_index[ws] >= 0, layout.context_index[ws], sink)
        ctx = _inputs(out[:, ctx_idx])
        ctx[:, layout.context_index[ws] < 0] = 0.0
        eta = weights["eta_bias"][ws][None] + np.einsum("ngc,gck->ngk", ctx, w_eta[ws, :c, :])
        if ancestry is not None:
            scores = ancestry[:, model.window_chromosome.numpy()[ws], :]  # (n, g, a)
            eta += np.einsum("nga,gak->ngk", scores, weights["ancestry"][ws])
        delta = np.broadcast_to(weights["delta_bias"][ws][None], eta.shape).copy()
        # heterozygote indicators of the previous window's last SNPs, then of this window's
        hist = np.zeros((n, len(ws), lags + k))
        if t > 0:
            prev = layout.snp_index[ws - 1, k - lags :]
            hist[:, :, :lags] = _het(out[:, prev])
        snp_idx = np.where(layout.snp_index[ws] >= 0, layout.snp_index[ws], sink)
        for j in range(k):
            cols = snp_idx[:, j]
            d = delta[:, :, j] + np.einsum(
                "ngi,gi->ng", hist[:, :, : lags + j], w_delta[ws, : lags + j, j]
            )
            p1, p2 = genotype_probabilities(eta[:, :, j], d)
            u = rng.random(p1.shape)
            draw = (u >= 1.0 - p1 - p2).astype(np.float64) + (u >= 1.0 - p2)
            draw = np.where(draw_col[cols][None], draw, out[:, cols])
            out[:, cols] = draw
            x = _inputs(draw)
            hist[:, :, lags + j] = _het(draw)
            if j + 1 < k:
                eta[:, :, j + 1 :] += x[:, :, None] * w_eta[ws, c + j, j + 1 :][None]
    return out[:, :sink]


def _inputs(dosages: np.ndarray) -> np.ndarray:
    """Centred dosages as the model reads them (a missing one is 0)."""
    return np.nan_to_num(np.asarray(dosages, dtype=np.float64) - 1.0, nan=0.0)


def _het(dosages: np.ndarray) -> np.ndarray:
    """Centred heterozygote indicators as the model reads them (a missing one is 0)."""
    x = np.asarray(dosages, dtype=np.float64) - 1.0
    return np.where(np.isnan(x), 0.0, 1.0 - HET_CENTRE - np.abs(x))


def fresh_ids(n: int, avoid: Iterable[object] = (), prefix: str = "SYN") -> np.ndarray:
    """``n`` new sample ids ``SYN000001...`` that collide with none of ``avoid`` (ids carry
    no information about any real individual)."""
    taken = {str(a) for a in avoid}
    width = max(6, len(str(n)))
    while True:
        ids = np.array([f"{prefix}{i + 1:0{width}d}" for i in range(n)], dtype=object)
        if not taken.intersection(ids.tolist()):
            return ids
        prefix += "_"


def synthetic_samples(n: int, avoid: Iterable[object] = ()) -> pd.DataFrame:
    """The sample table of a synthetic cohort (fresh ids, nothing flagged)."""
    return pd.DataFrame({"id": fresh_ids(n, avoid), "discard": False, "mixup": False})
