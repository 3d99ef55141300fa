"""Grouped per-window autoregressive model of genotype dosages (the "structure" model).

The SNP map (public) is cut into windows of ``k`` contiguous SNPs along each chromosome.
Each window is a small autoregressive model of its genotypes: SNP ``j`` of a window takes
0, 1 or 2 copies of its alternative allele with probabilities proportional to
``(1, 2 exp(eta_j + delta_j), exp(2 eta_j))`` -- ``Binomial(2, sigmoid(eta_j))`` tilted
towards (``delta_j > 0``) or away from the heterozygote -- where ``eta_j`` is an affine
function of the *dosages* and ``delta_j`` one of the *heterozygote indicators* of the SNPs
before it in the window *and* of the last ``context`` SNPs of the previous window of the same
chromosome. A dosage alone cannot say "the SNP before was heterozygous": a Binomial
conditional puts at most half its mass on the heterozygote, so along a chain of linked SNPs
the heterozygotes die out (a synthetic inbreeding coefficient F of 0.8 where an outbred
colony has 0: docs/tuning-history.md, stop 51). With ``delta = 0`` the model is the masked
linear autoregressive model of dosages -- the one-layer case of MADE (Germain et al. 2015,
ICML; the "fully visible sigmoid belief network" of Frey 1998) -- and its starting point.
The window-boundary context carries LD from one window to the next, so along a chromosome
the model is a single autoregressive chain (a Markov chain of order ``context + k - 1`` at
most).

All windows live in one module: the weights are grouped tensors ``(W, d_in, d_out)`` with a
fixed autoregressive mask, applied with one ``einsum`` each (dosages to ``eta``,
heterozygote indicators to ``delta``). Under DP-SGD every individual's
per-sample gradient spans *all* windows, so one clipping norm bounds their whole contribution
and one noise draw per step covers every window (one DP-SGD mechanism, one epsilon).

Opacus computes per-sample gradients of :class:`GroupedMaskedLinear` through the grad sampler
registered below: for input ``a`` ``(B, W, d_in)`` and output gradient ``g`` ``(B, W, d_out)``
the per-sample weight gradient is ``einsum("bwi,bwo->bwio", a, g) * mask`` and the bias
gradient is ``g`` (closed form). By default training needs only each individual's gradient
*norm* (ghost clipping), which the norm sampler registered below gives without materialising
the gradients: ``sum_w (a_bw^2)^T mask (g_bw^2)``. ``bench/dpsgd.py`` at 960 x 79,645: 0.28 s
per DP-SGD step by ghost clipping, 1.49 s with materialised per-sample gradients, 2.40 s by
Opacus's generic functorch path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from opacus.grad_sample import register_grad_sampler, register_norm_sampler
from torch import nn

from dpgenome.cohort import chromosome_rank
from dpgenome.errors import ConfigError


@dataclass(frozen=True)
class WindowLayout:
    """A public partition of the SNP map into windows (no private data involved).

    ``snp_index[w, j]`` is the column of SNP ``j`` of window ``w`` (``-1`` = padding: the last
    window of a chromosome may be short); ``context_index[w, i]`` is the column of the ``i``-th
    context SNP (the last ``context`` SNPs of the previous window on the same chromosome;
    ``-1`` for the first window of a chromosome). ``step[w]`` is the window's rank along its
    chromosome and ``chrom[w]`` the chromosome's rank, used by the sampler to run chromosomes
    in parallel.
    """

    n_variants: int
    window: int
    context: int
    snp_index: np.ndarray
    context_index: np.ndarray
    chrom: np.ndarray
    step: np.ndarray
    window_of_snp: np.ndarray
    #: ``(W,)`` position (bp) of each window's middle SNP, from the public map
    position: np.ndarray

    @property
    def n_windows(self) -> int:
        return int(self.snp_index.shape[0])


def make_layout(variants: pd.DataFrame, window: int = 16, context: int = 8) -> WindowLayout:
    """Cut the map into windows of ``window`` SNPs, chromosome by chromosome, in position
    order (columns need not be sorted: windows follow ``(chr, pos)``)."""
    if window < 1:
        raise ConfigError(f"window must be >= 1 SNP, got {window}")
    if not 0 <= context <= window:
        raise ConfigError(f"context must be in [0, window={window}], got {context}")
    chrom = variants["chr"].astype(str).to_numpy()
    pos = variants["pos"].to_numpy(dtype=np.int64)
    order = np.lexsort((pos, chromosome_rank(chrom)))
    rank_sorted = chromosome_rank(chrom[order])
    snp_rows: list[np.ndarray] = []
    ctx_rows: list[np.ndarray] = []
    chrom_w: list[int] = []
    step_w: list[int] = []
    for r in np.unique(rank_sorted):
        cols = order[rank_sorted == r]
        n_w = -(-len(cols) // window)
        padded = np.full(n_w * window, -1, dtype=np.int64)
        padded[: len(cols)] = cols
        blocks = padded.reshape(n_w, window)
        ctx = np.full((n_w, context), -1, dtype=np.int64)
        if context and n_w > 1:
            ctx[1:] = blocks[:-1, window - context :]
        snp_rows.append(blocks)
        ctx_rows.append(ctx)
        chrom_w.extend([int(r)] * n_w)
        step_w.extend(range(n_w))
    snp_index = np.concatenate(snp_rows, axis=0)
    window_of_snp = np.empty(len(variants), dtype=np.int64)
    w_idx, _ = np.nonzero(snp_index >= 0)
    window_of_snp[snp_index[snp_index >= 0]] = w_idx
    n_in = (snp_index >= 0).sum(axis=1)
    middle = snp_index[np.arange(len(snp_index)), (n_in - 1) // 2]
    return WindowLayout(
        n_variants=len(variants),
        window=window,
        context=context,
        snp_index=snp_index,
        context_index=np.concatenate(ctx_rows, axis=0),
        chrom=np.asarray(chrom_w, dtype=np.int64),
        step=np.asarray(step_w, dtype=np.int64),
        window_of_snp=window_of_snp,
        position=pos[middle],
    )


def autoregressive_mask(window: int, context: int) -> torch.Tensor:
    """``(context + window, window)`` mask: output ``j`` sees every context input and the
    window inputs ``< j`` (MADE ordering = map order)."""
    mask = torch.zeros(context + window, window)
    mask[:context, :] = 1.0
    mask[context:, :] = torch.triu(torch.ones(window, window), diagonal=1)
    return mask


class GroupedMaskedLinear(nn.Module):
    """``W`` independent masked linear maps applied at once: ``(B, W, d_in) -> (B, W, d_out)``."""

    def __init__(self, groups: int, mask: torch.Tensor, bias: bool = True) -> None:
        super().__init__()
        d_in, d_out = mask.shape
        # a plain tensor, not a buffer: Opacus refuses trainable layers with buffers
        self.mask = mask.clone()
        self.weight = nn.Parameter(torch.zeros(groups, d_in, d_out))
        self.bias = nn.Parameter(torch.zeros(groups, d_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("bwi,wio->bwo", x, self.weight * self.mask)
        return out if self.bias is None else out + self.bias


@register_grad_sampler(GroupedMaskedLinear)
def grouped_masked_linear_grad_sample(
    layer: GroupedMaskedLinear, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    """Closed-form per-sample gradients of :class:`GroupedMaskedLinear` for Opacus."""
    a = activations[0].to(backprops.dtype)
    out: dict[nn.Parameter, torch.Tensor] = {}
    if layer.weight.requires_grad:
        out[layer.weight] = torch.einsum("bwi,bwo->bwio", a, backprops) * layer.mask
    if layer.bias is not None and layer.bias.requires_grad:
        out[layer.bias] = backprops.clone()
    return out


@register_norm_sampler(GroupedMaskedLinear)
def grouped_masked_linear_norm_sample(
    layer: GroupedMaskedLinear, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    """Per-sample gradient norms of :class:`GroupedMaskedLinear` without materialising the
    gradients (ghost clipping, Li et al. 2022): for a 0/1 mask ``M``, ``||(a_bw g_bw^T) * M||^2
    = (a_bw^2)^T M (g_bw^2)``, summed over the windows ``w``."""
    a2 = activations[0].to(backprops.dtype) ** 2
    g2 = backprops**2
    out: dict[nn.Parameter, torch.Tensor] = {}
    if layer.weight.requires_grad:
        am = torch.einsum("bwi,io->bwo", a2, layer.mask)
        out[layer.weight] = (am * g2).sum(dim=(1, 2)).clamp(min=0).sqrt()
    if layer.bias is not None and layer.bias.requires_grad:
        out[layer.bias] = g2.sum(dim=(1, 2)).sqrt()
    return out


#: the heterozygote indicator enters centred at this public constant (as dosages at 1), so
#: that an unknown (missing, padding) genotype is 0 in both inputs
HET_CENTRE = 0.5


class WindowModel(nn.Module):
    """Every window's autoregressive model in one module (see the module docstring).

    Four grouped layers: ``window_layer`` (``(W, k, k)``, strictly upper triangular mask,
    with the per-SNP bias of ``eta``) reads the window's own dosages and ``context_layer``
    (``(W, context, k)``, no bias) the last ``context`` dosages of the previous window of the
    chromosome: together they are the masked layer of :func:`autoregressive_mask`, giving
    ``eta``. ``het_layer`` and ``het_context_layer`` do the same from the heterozygote
    indicators, giving ``delta`` (its bias: ``het_layer``'s).
    """

    def __init__(self, layout: WindowLayout) -> None:
        super().__init__()
        self.layout = layout
        k, c = layout.window, layout.context
        w = layout.n_windows
        self.window_layer = GroupedMaskedLinear(w, autoregressive_mask(k, 0))
        self.context_layer = GroupedMaskedLinear(w, torch.ones(c, k), bias=False) if c else None
        self.het_layer = GroupedMaskedLinear(w, autoregressive_mask(k, 0))
        self.het_context_layer = GroupedMaskedLinear(w, torch.ones(c, k), bias=False) if c else None
        # previous window on the same chromosome, or the all-zero window ``W`` for a first one
        prev = np.where(layout.step > 0, np.arange(layout.n_windows) - 1, layout.n_windows)
        self.prev_window = torch.from_numpy(prev.astype(np.int64))
        self.pad_mask = torch.from_numpy((layout.snp_index >= 0).astype(np.float32))
        flat = layout.snp_index.reshape(-1)
        self._order = np.where(flat >= 0, flat, 0)
        self._is_pad = flat < 0

    # ---------------------------------------------------------------- data plumbing
    def prepare(self, dosages: np.ndarray) -> torch.Tensor:
        """Rows ready for :meth:`forward`: dosages in window order, centred at 1 (a public
        constant), padding and missing values 0, float16 (exact to ~3 decimals at half the
        memory): ``(n, W * k)``; with missing dosages, ``(n, 2 * W * k)`` where the second half
        is the observed-indicator."""
        x = np.asarray(dosages, dtype=np.float32)[:, self._order] - 1.0
        x[:, self._is_pad] = 0.0
        missing = np.isnan(x)
        if not missing.any():
            return torch.from_numpy(x.astype(np.float16))
        observed = (~missing).astype(np.float16)
        x[missing] = 0.0
        return torch.from_numpy(np.concatenate([x.astype(np.float16), observed], axis=1))

    def _unpack(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Centred dosages, centred heterozygote indicators and the observed mask, each
        ``(B, W, k)``. A soft (imputed) dosage ``y`` is heterozygous to the degree
        ``1 - |y - 1|``; unknown genotypes are 0 in both inputs."""
        lay = self.layout
        w, k = lay.n_windows, lay.window
        b = rows.shape[0]
        x = rows[:, : w * k].float().reshape(b, w, k)
        observed = self.pad_mask.expand(b, w, k)
        if rows.shape[1] == 2 * w * k:
            observed = observed * rows[:, w * k :].float().reshape(b, w, k)
        het = (1.0 - HET_CENTRE - x.abs()) * observed
        return x, het, observed

    def _layer_pair(
        self, layer: GroupedMaskedLinear, context: GroupedMaskedLinear | None, x: torch.Tensor
    ) -> torch.Tensor:
        out = layer(x)
        if context is not None:
            lay = self.layout
            k, c = lay.window, lay.context
            padded = torch.cat([x[:, :, k - c :], torch.zeros(x.shape[0], 1, c)], dim=1)
            out = out + context(padded.index_select(1, self.prev_window))
        return out

    def logits(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(eta, delta)``, each ``(B, W, k)``, of prepared rows (teacher forcing)."""
        x, het, _ = self._unpack(rows)
        eta = self._layer_pair(self.window_layer, self.context_layer, x)
        delta = self._layer_pair(self.het_layer, self.het_context_layer, het)
        return eta, delta

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Per-sample genotype negative log-likelihood ``(B,)`` of prepared rows."""
        x, _, observed = self._unpack(rows)
        eta, delta = self.logits(rows)
        return genotype_nll(eta, delta, x + 1.0, observed).sum(dim=(1, 2))

    def effective_weights(self) -> dict[str, np.ndarray]:
        """The masked weights and biases: ``eta`` and ``delta`` (``(W, context + k, k)``,
        context rows first) and ``eta_bias`` and ``delta_bias`` (``(W, k)``)."""
        out: dict[str, np.ndarray] = {}
        with torch.no_grad():
            for name, layer, context in (
                ("eta", self.window_layer, self.context_layer),
                ("delta", self.het_layer, self.het_context_layer),
            ):
                win = (layer.weight * layer.mask).double()
                if context is not None:
                    win = torch.cat([(context.weight * context.mask).double(), win], dim=1)
                assert layer.bias is not None
                out[name] = win.numpy()
                out[f"{name}_bias"] = layer.bias.double().numpy()
        return out

    def biases(self) -> list[nn.Parameter]:
        """The per-SNP biases of ``eta`` and ``delta`` (what bias-only fine-tuning trains)."""
        out = [self.window_layer.bias, self.het_layer.bias]
        return [b for b in out if b is not None]

    @torch.no_grad()
    def init_bias_from_frequency(self, alt_freq: np.ndarray) -> None:
        """Start every SNP at Hardy-Weinberg proportions of its alternative allele frequency
        (``eta = logit(f)``, ``delta = 0``; frequency from public information: a public panel,
        or 0.5)."""
        f = np.clip(np.nan_to_num(np.asarray(alt_freq, dtype=np.float64), nan=0.5), 0.01, 0.99)
        logit = np.log(f / (1 - f))
        idx = self.layout.snp_index
        b = np.where(idx >= 0, logit[np.clip(idx, 0, None)], 0.0)
        assert self.window_layer.bias is not None and self.het_layer.bias is not None
        self.window_layer.bias.copy_(torch.from_numpy(b).to(self.window_layer.bias.dtype))
        self.het_layer.bias.zero_()


def genotype_probabilities(eta: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P(1), P(2))`` of the model's conditional (module docstring), elementwise."""
    l1 = eta + delta + math.log(2.0)
    l2 = 2.0 * eta
    m = np.maximum(0.0, np.maximum(l1, l2))
    e0, e1, e2 = np.exp(-m), np.exp(l1 - m), np.exp(l2 - m)
    z = e0 + e1 + e2
    return e1 / z, e2 / z


def genotype_nll(
    eta: torch.Tensor, delta: torch.Tensor, y: torch.Tensor, observed: torch.Tensor
) -> torch.Tensor:
    """Elementwise ``-log P(y)`` of the model's conditional (module docstring), zero where
    ``observed`` is 0. A non-integer dosage ``y`` (imputed) is a soft target with weights
    ``(max(1 - y, 0), 1 - |y - 1|, max(y - 1, 0))`` on 0, 1 and 2. With ``delta = 0`` it is
    the Binomial(2, sigmoid(eta)) NLL less ``log C(2, y)``."""
    return _GenotypeNll.apply(eta, delta, y) * observed


class _GenotypeNll(torch.autograd.Function):
    """``log Z - t1 l1 - t2 l2`` with ``l1 = eta + delta + log 2``, ``l2 = 2 eta``,
    ``Z = 1 + exp(l1) + exp(l2)``; the backward written out: ``d/d eta = P1 + 2 P2 - t1 - 2
    t2`` (expected minus observed dosage), ``d/d delta = P1 - t1``."""

    generate_vmap_rule = True  # torch.func (the per-sample gradient reference in the tests)

    @staticmethod
    def _parts(
        eta: torch.Tensor, delta: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        l1 = eta + delta + math.log(2.0)
        l2 = 2.0 * eta
        m = torch.clamp(torch.maximum(l1, l2), min=0.0)
        e0, e1, e2 = torch.exp(-m), torch.exp(l1 - m), torch.exp(l2 - m)
        z = e0 + e1 + e2
        t1 = 1.0 - (y - 1.0).abs()
        t2 = (y - 1.0).clamp(min=0.0)
        return m + torch.log(z) - t1 * l1 - t2 * l2, e1 / z, e2 / z, t1, t2

    @staticmethod
    def forward(eta: torch.Tensor, delta: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _GenotypeNll._parts(eta, delta, y)[0]

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, ...], output: Any) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        eta, delta, y = ctx.saved_tensors
        _, p1, p2, t1, t2 = _GenotypeNll._parts(eta, delta, y)
        return grad * (p1 + 2.0 * p2 - t1 - 2.0 * t2), grad * (p1 - t1), None
