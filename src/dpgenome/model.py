"""Grouped per-window autoregressive model of genotype dosages (the "structure" model).

The SNP map (public) is cut into windows of ``k`` contiguous SNPs along each chromosome.
Each window is a small autoregressive model of its genotypes: SNP ``j`` of a window takes
0, 1 or 2 copies of its alternative allele with probabilities proportional to
``(1, 2 exp(eta_j + delta_j), exp(2 eta_j))`` -- ``Binomial(2, sigmoid(eta_j))`` tilted
towards (``delta_j > 0``) or away from the heterozygote -- where ``eta_j`` is an affine
function of the *dosages* of the SNPs before it in the window *and* of the last ``context``
SNPs of the previous window of the same chromosome, and ``delta_j`` one of the
*heterozygote indicators* of the :data:`HET_LAGS` SNPs just before it on the chromosome.
A dosage alone cannot say "the SNP before was heterozygous": a Binomial conditional puts
at most half its mass on the heterozygote, so along a chain of linked SNPs the
heterozygotes die out (a synthetic inbreeding coefficient F of 0.8 where an outbred colony
has 0: docs/tuning-history.md, stop 51). With ``delta = 0`` the model is the masked linear
autoregressive model of dosages -- the one-layer case of MADE (Germain et al. 2015, ICML;
the "fully visible sigmoid belief network" of Frey 1998) -- and its starting point. The
window-boundary context carries LD from one window to the next, so along a chromosome the
model is a single autoregressive chain (a Markov chain of order ``context + k - 1`` at
most).

All windows live in one module: the weights of ``eta`` are a grouped tensor ``(W, d_in,
d_out)`` with a fixed autoregressive mask, applied with one ``einsum``; those of ``delta``
are another grouped masked layer over the heterozygote indicators of the previous window's
last :data:`HET_LAGS` SNPs and the window's own, banded so that each SNP reads its
:data:`HET_LAGS` predecessors (reading the window's whole past and context instead, a fit on
a simulated chromosome kept hardly more heterozygotes, F 0.047 against 0.056, for twice the
parameters). Under DP-SGD every individual's
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

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from opacus.grad_sample import register_grad_sampler, register_norm_sampler
from torch import nn

from dpgenome.cohort import chromosome_rank
from dpgenome.errors import ConfigError

log = logging.getLogger(__name__)


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


def make_layout(variants: pd.DataFrame, window: int = 32, context: int = 32) -> WindowLayout:
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

#: how many SNPs before it (along the chromosome) a SNP's ``delta`` reads the heterozygote
#: indicators of (a fit on a simulated chromosome: F 0.055 with 1, 0.056 with 4, 0.047 with
#: the whole window and context; the real chromosome 0.011)
HET_LAGS = 4


def lag_mask(window: int, context: int, lags: int) -> torch.Tensor:
    """``(lags + window, window)``: the inputs are the previous window's last ``lags`` SNPs,
    then the window's own; output ``j`` reads the ``lags`` SNPs just before it (those of the
    previous window only within the ``context`` SNPs the model has of it)."""
    i = torch.arange(lags + window)[:, None] - lags  # input position relative to the window
    j = torch.arange(window)[None, :]
    return ((j - i >= 1) & (j - i <= lags) & (i >= -context)).float()


def _window_major(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, W, k)`` as float32 laid out window by window (a ``(W, B, k)`` array)."""
    return (
        x.transpose(0, 1).to(torch.float32, memory_format=torch.contiguous_format).transpose(0, 1)
    )


class WindowModel(nn.Module):
    """Every window's autoregressive model in one module (see the module docstring).

    ``window_layer`` (``(W, k, k)``, strictly upper triangular mask, with the per-SNP bias of
    ``eta``) reads the window's own dosages and ``context_layer`` (``(W, context, k)``, no
    bias) the last ``context`` dosages of the previous window of the chromosome: together
    they are the masked layer of :func:`autoregressive_mask`, giving ``eta``. ``het_layer``
    (``(W, lags + k, k)``, the band of :func:`lag_mask`, with the bias of ``delta``) reads the
    heterozygote indicators of each SNP's :data:`HET_LAGS` predecessors.
    """

    def __init__(self, layout: WindowLayout, ancestry: int = 0) -> None:
        super().__init__()
        self.layout = layout
        k, c = layout.window, layout.context
        w = layout.n_windows
        self.lags = min(HET_LAGS, k)
        self.window_layer = GroupedMaskedLinear(w, autoregressive_mask(k, 0))
        self.context_layer = GroupedMaskedLinear(w, torch.ones(c, k), bias=False) if c else None
        self.het_layer = GroupedMaskedLinear(w, lag_mask(k, c, self.lags))
        # ancestry: ``ancestry`` scores per chromosome (dpgenome.ancestry, leave-one-chromosome
        # -out), read by every SNP of the chromosome's windows
        self.ancestry = int(ancestry)
        chrom = np.unique(layout.chrom, return_inverse=True)[1].reshape(-1)
        self.n_chromosomes = int(chrom.max()) + 1 if chrom.size else 0
        self.window_chromosome = torch.from_numpy(chrom.astype(np.int64))
        self.ancestry_layer = (
            GroupedMaskedLinear(w, torch.ones(self.ancestry, k), bias=False)
            if self.ancestry
            else None
        )
        # previous window on the same chromosome, or the all-zero window ``W`` for a first one
        prev = np.where(layout.step > 0, np.arange(layout.n_windows) - 1, layout.n_windows)
        self.prev_window = torch.from_numpy(prev.astype(np.int64))
        self.pad_mask = torch.from_numpy((layout.snp_index >= 0).astype(np.float32))
        flat = layout.snp_index.reshape(-1)
        self._order = np.where(flat >= 0, flat, 0)
        self._is_pad = flat < 0

    # ---------------------------------------------------------------- data plumbing
    def prepare(self, dosages: np.ndarray, ancestry: np.ndarray | None = None) -> torch.Tensor:
        """Rows ready for :meth:`forward`: dosages in window order, centred at 1 (a public
        constant), padding and missing values 0, float16 (exact to ~3 decimals at half the
        memory): ``(n, W * k)``; with missing dosages, ``(n, 2 * W * k)`` where the second half
        is the observed-indicator. A model with ancestry takes each individual's
        leave-one-chromosome-out scores ``ancestry`` ``(n, C, a)``, appended last."""
        x = np.asarray(dosages, dtype=np.float32)[:, self._order] - 1.0
        x[:, self._is_pad] = 0.0
        missing = np.isnan(x)
        if missing.any():
            x[missing] = 0.0
        parts = [x.astype(np.float16)]
        if missing.any():
            parts.append((~missing).astype(np.float16))
        if self.ancestry:
            shape = (x.shape[0], self.n_chromosomes, self.ancestry)
            if ancestry is None or np.shape(ancestry) != shape:
                got = None if ancestry is None else np.shape(ancestry)
                raise ValueError(f"this model reads ancestry scores of shape {shape}, got {got}")
            parts.append(np.asarray(ancestry, dtype=np.float16).reshape(x.shape[0], -1))
        elif ancestry is not None:
            raise ValueError("this model reads no ancestry scores")
        return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1))

    def _unpack(
        self, rows: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Centred dosages, centred heterozygote indicators and the observed mask, each
        ``(B, W, k)``, and the ancestry scores each window reads ``(B, W, a)`` (None without
        ancestry). A soft (imputed) dosage ``y`` is heterozygous to the degree ``1 - |y -
        1|``; unknown genotypes are 0 in both inputs."""
        lay = self.layout
        w, k = lay.n_windows, lay.window
        b = rows.shape[0]
        anc = None
        if self.ancestry:
            a_cols = self.n_chromosomes * self.ancestry
            scores = rows[:, rows.shape[1] - a_cols :].reshape(b, self.n_chromosomes, -1)
            anc = _window_major(scores.index_select(1, self.window_chromosome))
            rows = rows[:, : rows.shape[1] - a_cols]
        # window-major memory ((W, B, k) strides), as the grouped layers' batched matrix
        # products read their input and write their output: the elementwise work on both
        # then runs over dense memory (mixed strides cost a third of a training step)
        x = _window_major(rows[:, : w * k].reshape(b, w, k))
        observed = self.pad_mask.expand(b, w, k)
        if rows.shape[1] == 2 * w * k:
            observed = observed * _window_major(rows[:, w * k :].reshape(b, w, k))
        het = (1.0 - HET_CENTRE - x.abs()) * observed
        return x, het, observed, anc

    def _previous(self, x: torch.Tensor, count: int) -> torch.Tensor:
        """``(B, W, count)``: the last ``count`` inputs of each window's previous window on
        its chromosome (zeros for a first window)."""
        k = self.layout.window
        padded = torch.cat([x[:, :, k - count :], torch.zeros(x.shape[0], 1, count)], dim=1)
        return padded.index_select(1, self.prev_window)

    def logits(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(eta, delta)``, each ``(B, W, k)``, of prepared rows (teacher forcing)."""
        x, het, _, anc = self._unpack(rows)
        eta, delta = self._logits(x, het)
        return self._with_ancestry(eta, anc), delta

    def _with_ancestry(self, eta: torch.Tensor, anc: torch.Tensor | None) -> torch.Tensor:
        if self.ancestry_layer is None or anc is None:
            return eta
        return eta + self.ancestry_layer(anc)

    def _logits(self, x: torch.Tensor, het: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        eta = self.window_layer(x)
        if self.context_layer is not None:
            eta = eta + self.context_layer(self._previous(x, self.layout.context))
        ext = torch.cat([self._previous(het, self.lags), het], dim=2)  # (B, W, lags + k)
        return eta, self.het_layer(ext)

    #: in training only, each input dosage (the ``eta`` path; not the heterozygote
    #: indicators, nor any target) is dropped with this probability and the others scaled by
    #: ``1 / (1 - p)`` (inverted dropout). Set around a public pretraining
    #: (``SynthConfig.pretrain_input_dropout``, off by default: docs/tuning-history.md,
    #: stops 56-57)
    input_dropout: float = 0.0

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Per-sample genotype negative log-likelihood ``(B,)`` of prepared rows."""
        x, het, observed, anc = self._unpack(rows)
        x_in = x
        if self.training and self.input_dropout > 0:
            keep = (torch.rand_like(x) >= self.input_dropout).to(x.dtype)
            x_in = x * keep / (1.0 - self.input_dropout)
        eta, delta = self._logits(x_in, het)
        eta = self._with_ancestry(eta, anc)
        return genotype_nll(eta, delta, x + 1.0, observed, het).sum(dim=(1, 2))

    def effective_weights(self) -> dict[str, np.ndarray]:
        """The masked weights and biases: ``eta`` (``(W, context + k, k)``, context rows
        first) and ``eta_bias`` (``(W, k)``); ``delta`` (``(W, lags + k, k)``: the previous
        window's last ``lags`` rows first) and ``delta_bias`` (``(W, k)``); with ancestry,
        ``ancestry`` (``(W, a, k)``: the weights of the scores in ``eta``)."""
        with torch.no_grad():
            win = (self.window_layer.weight * self.window_layer.mask).double()
            if self.context_layer is not None:
                ctx = (self.context_layer.weight * self.context_layer.mask).double()
                win = torch.cat([ctx, win], dim=1)
            assert self.window_layer.bias is not None
            het = self.het_layer
            assert het.bias is not None
            out = {
                "eta": win.numpy(),
                "eta_bias": self.window_layer.bias.double().numpy(),
                "delta": (het.weight * het.mask).double().numpy(),
                "delta_bias": het.bias.double().numpy(),
            }
            if self.ancestry_layer is not None:
                out["ancestry"] = self.ancestry_layer.weight.double().numpy()
            return out

    def biases(self) -> list[nn.Parameter]:
        """The per-SNP biases of ``eta`` and ``delta`` (what bias-only fine-tuning trains)."""
        assert self.window_layer.bias is not None and self.het_layer.bias is not None
        return [self.window_layer.bias, self.het_layer.bias]

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
    eta: torch.Tensor,
    delta: torch.Tensor,
    y: torch.Tensor,
    observed: torch.Tensor,
    het: torch.Tensor | None = None,
) -> torch.Tensor:
    """Elementwise ``-log P(y)`` of the model's conditional (module docstring), zero where
    ``observed`` is 0. A non-integer dosage ``y`` (imputed) is a soft target with weights
    ``(max(1 - y, 0), 1 - |y - 1|, max(y - 1, 0))`` on 0, 1 and 2. With ``delta = 0`` it is
    the Binomial(2, sigmoid(eta)) NLL less ``log C(2, y)``. ``het``: the heterozygote
    weights ``1 - |y - 1|`` less :data:`HET_CENTRE` where ``observed`` (as the model's
    input has them; computed from ``y`` if not given)."""
    t1 = (y - 1.0).abs().neg_().add_(1.0) if het is None else het + HET_CENTRE
    return _GenotypeNll.apply(eta, delta, y, t1)[0] * observed


def _nll_parts_eager(
    eta: torch.Tensor, delta: torch.Tensor, y: torch.Tensor, t1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The NLL and the backward's factors ``P1 + 2 P2 - y`` and ``P1 - t1``; ``log Z``
    shifted by its largest term (exact for logits of any size)."""
    l1 = eta + delta + math.log(2.0)
    l2 = 2.0 * eta
    m = torch.clamp(torch.maximum(l1, l2), min=0.0)
    e1 = torch.exp(l1 - m)
    e2 = torch.exp(l2 - m)
    z = torch.exp(-m) + e1 + e2
    nll = m + torch.log(z) - eta * y - t1 * (l1 - eta)
    p1 = e1 / z
    p2 = e2 / z
    return nll, p1 + 2.0 * p2 - y, p1 - t1


#: set (to anything but 0) to skip compiling :func:`_nll_parts_eager` (``torch.compile``,
#: one fused loop); compiled and eager sums agree to float32 rounding (1e-6), not bit for bit
NO_COMPILE_ENV = "DPGENOME_NO_COMPILE"
_compiled: dict[str, Any] = {}


def _nll_parts(
    eta: torch.Tensor, delta: torch.Tensor, y: torch.Tensor, t1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_nll_parts_eager`, compiled into one loop by ``torch.compile`` (Inductor's C++
    backend: about 15 s once per process, then 4-5 times faster than some twenty passes over
    memory, which were half a training step of the 80k-SNP model). Eager under
    ``torch.func`` transforms (the tests' per-sample reference), with ``DPGENOME_NO_COMPILE``
    set, or once compiling has failed (no C++ compiler: a warning)."""
    if (
        _compiled.get("failed")
        or os.environ.get(NO_COMPILE_ENV, "") not in ("", "0")
        or torch._C._functorch.peek_interpreter_stack() is not None
    ):
        return _nll_parts_eager(eta, delta, y, t1)
    if "fn" not in _compiled:
        _compiled["fn"] = torch.compile(_nll_parts_eager, dynamic=True)
    try:
        out: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = _compiled["fn"](eta, delta, y, t1)
        return out
    except Exception as err:  # any compiler failure: the same sums, eagerly (a bug re-raises)
        log.warning("torch.compile failed (%s): the genotype NLL runs uncompiled", err)
        _compiled["failed"] = True
        return _nll_parts_eager(eta, delta, y, t1)


class _GenotypeNll(torch.autograd.Function):
    """``log Z - t1 l1 - t2 l2`` with ``l1 = eta + delta + log 2``, ``l2 = 2 eta``, ``Z = 1 +
    exp(l1) + exp(l2)``, written ``log Z - y eta - t1 (delta + log 2)`` (``t1 + 2 t2 = y``); the
    backward written out from the forward's probabilities: ``d/d eta = P1 + 2 P2 - y`` (expected
    minus observed dosage), ``d/d delta = P1 - t1``. A training step of the 80k-SNP model spends
    most of its time here: autograd through a log-sum-exp took twice as long."""

    generate_vmap_rule = True  # torch.func (the per-sample gradient reference in the tests)

    @staticmethod
    def forward(
        eta: torch.Tensor, delta: torch.Tensor, y: torch.Tensor, t1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return _nll_parts(eta, delta, y, t1)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[torch.Tensor, ...], output: Any) -> None:
        _, d_eta, d_delta = output
        ctx.mark_non_differentiable(d_eta, d_delta)
        ctx.save_for_backward(d_eta, d_delta)

    @staticmethod
    def backward(
        ctx: Any, grad: torch.Tensor, _g1: Any, _g2: Any
    ) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        d_eta, d_delta = ctx.saved_tensors
        return grad * d_eta, grad * d_delta, None, None
