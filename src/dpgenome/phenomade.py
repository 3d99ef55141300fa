"""The phenotype synthesizer's network: :class:`GroupedMade`, one MADE per batch of columns,
all batches in grouped layers so that one DP-SGD step clips each individual's gradient over
every batch at once.

:class:`GroupedMaskedLinear` and :class:`CategoryBias` register closed-form per-sample
gradients and norms with Opacus (the generic ``torch.func`` path is about 17x slower);
``tests/test_model.py`` checks them against ``torch.func``. :func:`batch_layout` places each
batch's encoded columns, and :func:`_masks` builds the autoregressive masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from opacus.grad_sample import register_grad_sampler, register_norm_sampler
from torch import nn

from dpgenome.phenoencoding import Encoding

# ---------------------------------------------------------------------------- the model


class GroupedMaskedLinear(nn.Module):
    """``B`` masked linear maps at once: ``y[:, b] = x[:, b] @ (W[b] * M[b]) + bias[b]``.

    Input ``[n, B, d_in]`` (or ``[n, d_in]``, shared by all groups), output ``[n, B, d_out]``.
    Per-sample gradients in closed form (registered with Opacus below)."""

    def __init__(
        self, mask: torch.Tensor, *, bias: bool = True, shared_input: bool = False
    ) -> None:
        super().__init__()
        groups, d_in, d_out = mask.shape
        self.shared_input = shared_input
        # a plain attribute, not a buffer: Opacus refuses trainable layers with buffers
        self.mask = mask.to(torch.float32)
        fan_in = mask.sum(dim=1).clamp(min=1.0)  # [B, d_out]
        w = torch.randn(groups, d_in, d_out) / fan_in.sqrt()[:, None, :]
        self.weight = nn.Parameter(w * self.mask)
        self.bias = nn.Parameter(torch.zeros(groups, d_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.mask
        y = (
            torch.einsum("ni,bio->nbo", x, w)
            if self.shared_input
            else torch.einsum("nbi,bio->nbo", x, w)
        )
        return y + self.bias if self.bias is not None else y


@register_grad_sampler(GroupedMaskedLinear)
def grouped_masked_linear_grad_sample(
    layer: GroupedMaskedLinear, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    x = activations[0]
    if layer.shared_input:
        gw = torch.einsum("ni,nbo->nbio", x, backprops)
    else:
        gw = torch.einsum("nbi,nbo->nbio", x, backprops)
    out = {layer.weight: gw * layer.mask}
    if layer.bias is not None:
        out[layer.bias] = backprops
    return out


@register_norm_sampler(GroupedMaskedLinear)
def grouped_masked_linear_norm_sample(
    layer: GroupedMaskedLinear, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    """Per-sample gradient norms without materialising the gradients (ghost clipping, Li et
    al. 2022): ``||(x_b g_b^T) * M_b||^2 = (x_b^2)^T M_b (g_b^2)`` for a 0/1 mask."""
    x2 = activations[0] ** 2
    g2 = backprops**2
    if layer.shared_input:
        xm = torch.einsum("ni,bio->nbo", x2, layer.mask)
    else:
        xm = torch.einsum("nbi,bio->nbo", x2, layer.mask)
    out = {layer.weight: (xm * g2).sum(dim=(1, 2)).clamp(min=0).sqrt()}
    if layer.bias is not None:
        out[layer.bias] = backprops.reshape(len(backprops), -1).norm(dim=1)
    return out


class CategoryBias(nn.Module):
    """Adds a learnt bias ``[B, C, K]`` to logits ``[n, B, C, K]`` (the marginal shape of
    every column); closed-form per-sample gradients (the backprops) registered below."""

    def __init__(self, groups: int, columns: int, categories: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(groups, columns, categories))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits + self.bias


@register_grad_sampler(CategoryBias)
def category_bias_grad_sample(
    layer: CategoryBias, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    return {layer.bias: backprops}


@register_norm_sampler(CategoryBias)
def category_bias_norm_sample(
    layer: CategoryBias, activations: list[torch.Tensor], backprops: torch.Tensor
) -> dict[nn.Parameter, torch.Tensor]:
    return {layer.bias: backprops.reshape(len(backprops), -1).norm(dim=1)}


@dataclass(frozen=True)
class Layout:
    """Fixed (public) tensors of the grouped model: input features and output bases.

    Each column's input features are ``[z, missing]`` for ordinal columns (bins, values,
    binary; ``z`` the category rank scaled to [-1, 1]) or a one-hot for categorical ones.
    Its conditional logits are ``bias[k] + sum_r u_r(h) V[r, k]`` with the basis ``V`` =
    ``(z_k, z_k^2, 1{k = missing})`` for ordinal columns -- an exponential tilt of the
    learnt marginal that moves its mean, spread and missingness with the inputs -- and the
    identity for categorical ones. This keeps the number of parameters, hence the DP noise
    per step, small."""

    sizes: tuple[int, ...]  # columns per batch
    n_cols: int  # max columns per batch
    n_cat: int  # max categories (incl. missing)
    n_feat: int  # max input features per column
    n_basis: int  # max basis functions per column
    features: torch.Tensor  # [B, C, K, F]: feature vector of each category
    feat_valid: torch.Tensor  # [B, C, F]
    basis: torch.Tensor  # [B, C, R, K]
    basis_valid: torch.Tensor  # [B, C, R]
    logit_mask: torch.Tensor  # [B, C, K]: 0 real category, -1e9 padding
    prior_logits: torch.Tensor  # [B, C, K]: log public shares (0: none, or padding)

    @property
    def flat_index(self) -> torch.Tensor:
        """Positions of the real input features in the padded ``[B * C * F]`` vector."""
        return torch.nonzero(self.feat_valid.reshape(-1) > 0).reshape(-1)

    @property
    def flat_batch(self) -> torch.Tensor:
        """The batch of each real input feature."""
        return self.flat_index // (self.n_cols * self.n_feat)


def batch_layout(encoding: Encoding) -> Layout:
    specs = [[encoding.schema[c] for c in cols] for cols in encoding.batches]
    n_b, n_c = len(specs), max(len(s) for s in specs)
    n_k = max(sp.n_categories for s in specs for sp in s)
    n_f = max(sp.n_categories if sp.kind == "levels" else 2 for s in specs for sp in s)
    n_r = max(sp.n_categories if sp.kind == "levels" else 3 for s in specs for sp in s)
    feats = torch.zeros(n_b, n_c, n_k, n_f)
    fvalid = torch.zeros(n_b, n_c, n_f)
    basis = torch.zeros(n_b, n_c, n_r, n_k)
    bvalid = torch.zeros(n_b, n_c, n_r)
    lmask = torch.full((n_b, n_c, n_k), -1e9)
    prior = torch.zeros(n_b, n_c, n_k)
    for b, cols in enumerate(specs):
        for j, sp in enumerate(cols):
            k = sp.n_categories
            lmask[b, j, :k] = 0.0
            if len(sp.prior) == k:
                prior[b, j, :k] = torch.log(torch.tensor(sp.prior, dtype=torch.float32))
            if sp.kind == "levels":
                feats[b, j, torch.arange(k), torch.arange(k)] = 1.0
                fvalid[b, j, :k] = 1.0
                basis[b, j, torch.arange(k), torch.arange(k)] = 1.0
                bvalid[b, j, :k] = 1.0
                continue
            observed = k - 1
            z = torch.linspace(-1.0, 1.0, observed) if observed > 1 else torch.zeros(1)
            feats[b, j, :observed, 0] = z
            feats[b, j, observed, 1] = 1.0
            fvalid[b, j, :2] = 1.0
            basis[b, j, 0, :observed] = z
            basis[b, j, 1, :observed] = z**2 - (z**2).mean()
            basis[b, j, 2, observed] = 1.0
            bvalid[b, j, :3] = 1.0
    return Layout(
        tuple(len(s) for s in specs),
        n_c,
        n_k,
        n_f,
        n_r,
        feats,
        fvalid,
        basis,
        bvalid,
        lmask,
        prior,
    )


def _masks(layout: Layout, hidden: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MADE masks per batch (Germain et al. 2015). Hidden unit ``h`` of a batch with ``k``
    columns has degree ``m = h mod k``: it sees the own columns at positions ``< m`` and
    feeds the outputs of columns at positions ``>= m``; so column ``p`` depends on columns
    ``< p`` of its batch and on every column of the batches before it (the context batch
    first), which makes the whole model autoregressive over batches."""
    n_b, n_c, n_f, n_r = len(layout.sizes), layout.n_cols, layout.n_feat, layout.n_basis
    m_in = torch.zeros(n_b, n_c * n_f, hidden)
    m_out = torch.zeros(n_b, hidden, n_c * n_r)
    pos_in = torch.arange(n_c).repeat_interleave(n_f)
    pos_out = torch.arange(n_c).repeat_interleave(n_r)
    for b, k in enumerate(layout.sizes):
        degree = torch.arange(hidden) % k
        fv = layout.feat_valid[b].reshape(-1) > 0
        bv = layout.basis_valid[b].reshape(-1) > 0
        m_in[b] = ((pos_in[:, None] < degree[None, :]) & fv[:, None]).float()
        m_out[b] = ((degree[:, None] <= pos_out[None, :]) & bv[None, :]).float()
    # batch b sees every real feature of the batches before it (block-autoregressive)
    src = layout.flat_batch
    ctx = (src[None, :] < torch.arange(n_b)[:, None]).float()[:, :, None].expand(-1, -1, hidden)
    return m_in, ctx.contiguous(), m_out


class GroupedMade(nn.Module):
    """All batches' MADEs as one module of grouped tensors; each batch also sees the batches
    before it (batch 0, the context, first). ``features(codes [n, B, C])`` (-1 = padding)
    gives the inputs; ``forward(features) -> logits [n, B, C, K]``."""

    def __init__(self, layout: Layout, hidden: int, *, public_prior: bool = False) -> None:
        super().__init__()
        self.layout = layout
        m_in, m_ctx, m_out = _masks(layout, hidden)
        self.flat_index = layout.flat_index
        self.own = GroupedMaskedLinear(m_in)
        self.ctx = GroupedMaskedLinear(m_ctx, bias=False, shared_input=True)
        self.out = GroupedMaskedLinear(m_out, bias=False)
        self.marginal = CategoryBias(len(layout.sizes), layout.n_cols, layout.n_cat)
        if public_prior:  # start from the public marginals (no privacy cost)
            with torch.no_grad():
                self.marginal.bias.copy_(layout.prior_logits)

    def features(self, codes: torch.Tensor) -> torch.Tensor:
        n_b, n_c = codes.shape[1], codes.shape[2]
        b_idx = torch.arange(n_b)[None, :, None]
        c_idx = torch.arange(n_c)[None, None, :]
        f = self.layout.features[b_idx, c_idx, codes.clamp(min=0)]  # [n, B, C, F]
        f = f * (codes >= 0).unsqueeze(-1).float()
        return f.reshape(codes.shape[0], n_b, -1)

    def batch_logits(self, feats: torch.Tensor, b: int) -> torch.Tensor:
        """Logits ``[n, C, K]`` of batch ``b`` only (for sampling; same values as
        ``forward(feats)[:, b]``)."""
        lay = self.layout
        flat = feats.reshape(len(feats), -1)[:, self.flat_index]
        pre = feats[:, b] @ (self.own.weight[b] * self.own.mask[b])
        pre = pre + flat @ (self.ctx.weight[b] * self.ctx.mask[b])
        if self.own.bias is not None:
            pre = pre + self.own.bias[b]
        u = torch.tanh(pre) @ (self.out.weight[b] * self.out.mask[b])
        tilt = torch.einsum("ncr,crk->nck", u.reshape(-1, lay.n_cols, lay.n_basis), lay.basis[b])
        return tilt + self.marginal.bias[b] + lay.logit_mask[b]

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        lay = self.layout
        flat = feats.reshape(len(feats), -1)[:, self.flat_index]
        h = torch.tanh(self.own(feats) + self.ctx(flat))
        u = self.out(h).reshape(-1, len(lay.sizes), lay.n_cols, lay.n_basis)
        tilt = torch.einsum("nbcr,bcrk->nbck", u, lay.basis)
        return self.marginal(tilt) + lay.logit_mask
