"""Private selection of associated regions and a low-dimensional release of the association.

The structure model carries no phenotype; the phenotype-genotype association enters through
this sparse, separately accounted path (the design that kept the genomic inflation at 1 in the
prototype, see issue 5):

1. **Scores with bounded sensitivity.** Dosages are standardised with *reference* allele
   frequencies ``f`` (a public panel, or the DP structure model's synthetic genotypes:
   post-processing) and clipped to ``[-x_clip, x_clip]``; the phenotype is standardised with a
   reference mean/sd (from the DP phenotype synthesizer's output) and clipped to
   ``[-y_clip, y_clip]``. The score of SNP ``j`` is ``|sum_i x_ij y_i| / sqrt(n)`` and a window's
   score is the maximum over its SNPs. Adding or removing one individual changes every sum by
   at most ``x_clip * y_clip``, hence every window score by at most
   ``sensitivity = x_clip * y_clip / sqrt(n)`` (a maximum of functions that each move by at most
   ``D`` moves by at most ``D``). ``n`` is treated as public, as for the default delta.
2. **Selection.** Up to ``max_regions`` rounds of report-noisy-max with Gumbel noise of scale
   ``2 * sensitivity / eps_select`` (= the exponential mechanism, McSherry & Talwar 2007;
   ``eps_select``-DP), each followed by a noisy threshold test of the winner's score with
   Laplace noise of scale ``sensitivity / eps_test`` (``eps_test``-DP, Dwork et al. 2006); the
   first failed test stops selection (so the number of loci is chosen privately).
   Every round is charged whether it runs or not (the plan is fixed before data are touched).
   Windows within ``exclusion_factor * flank_bp`` of a selected lead leave the candidates.
3. **Association release.** For each selected region (the lead window +/- ``flank_bp``)
   the top ``n_components`` principal components of the *reference* genotypes of the region
   (whitened: unit variance in the reference; free) summarise its LD block. Each individual's
   component vector is clipped to L2 norm ``z_clip`` and ``u = sum_i z_i y_i`` (``q`` numbers)
   is released by the Gaussian mechanism with L2 sensitivity ``z_clip * y_clip``. The effect
   estimate is ``beta = u / n`` (whitened components: reference covariance = identity).
4. **Generation.** Synthetic individuals get a genetic score ``g = z_synth . beta`` (summed over
   regions, from the synthetic genotypes) and their analysis phenotype is drawn given ``g``
   (:func:`apply_genetic_score`), so SNPs outside the selected regions keep the null.

With ``epsilon = inf`` (no formal privacy) nothing is clipped or noised, the threshold test is
exact and ``beta`` is the least-squares fit on the members' components.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dpgenome.errors import ConfigError
from dpgenome.model import WindowLayout


@dataclass(frozen=True)
class AssociationConfig:
    """Hyperparameters of the association path (tuned on simulated cohorts only)."""

    max_regions: int = 3
    #: a region is the lead window +/- ``flank_bp`` (public map); selected regions exclude
    #: candidates within ``exclusion_factor * flank_bp`` of their lead (one locus, one region)
    flank_bp: int = 2_500_000
    exclusion_factor: float = 2.0
    n_components: int = 16
    #: components without formal privacy (no noise: more components, more of the LD block)
    n_components_exact: int = 32
    x_clip: float = 2.5
    y_clip: float = 2.5
    z_clip_per_component: float = 2.0
    #: public threshold of the (normalised) lead score, plus ``threshold_margin`` noise scales
    threshold: float = 5.0
    threshold_margin: float = 2.0
    #: noise weight of the phenotype-centring Gaussian relative to the common scale
    center_weight: float = 0.3

    def __post_init__(self) -> None:
        if self.max_regions < 0:
            raise ConfigError(f"max_regions must be >= 0, got {self.max_regions}")
        if self.flank_bp < 0 or self.n_components < 1 or self.exclusion_factor < 1:
            raise ConfigError("flank_bp must be >= 0, exclusion_factor >= 1, n_components >= 1")
        for name in ("x_clip", "y_clip", "z_clip_per_component"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def z_clip(self) -> float:
        return self.z_clip_per_component * math.sqrt(self.n_components)


@dataclass(frozen=True)
class Reference:
    """Reference allele frequencies and phenotype location/scale (public or DP outputs)."""

    alt_freq: np.ndarray
    y_mean: float
    y_sd: float


@dataclass(frozen=True)
class Region:
    """A selected region: its lead window, SNP columns and released effect."""

    lead_window: int
    columns: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    basis: np.ndarray  # (m_r, q): standardised dosages -> whitened components
    beta: np.ndarray  # (q,) effect on the standardised phenotype per component


def standardise_dosages(x: np.ndarray, freq: np.ndarray, clip: float | None) -> np.ndarray:
    """``(x - 2f) / sqrt(2 f (1 - f))``, clipped to ``[-clip, clip]``; missing -> 0."""
    f = np.clip(np.asarray(freq, dtype=np.float64), 0.005, 0.995)
    z = (np.asarray(x, dtype=np.float64) - 2 * f) / np.sqrt(2 * f * (1 - f))
    z = np.nan_to_num(z, nan=0.0)
    return z if clip is None else np.clip(z, -clip, clip)


def standardise_phenotype(y: np.ndarray, ref: Reference, clip: float | None) -> np.ndarray:
    z = (np.asarray(y, dtype=np.float64) - ref.y_mean) / max(ref.y_sd, 1e-12)
    z = np.nan_to_num(z, nan=0.0)
    return z if clip is None else np.clip(z, -clip, clip)


def centre_phenotype(
    y_std: np.ndarray, clip: float | None, noise_multiplier: float | None, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Re-centre the standardised phenotype on its (DP) mean and clip again.

    The reference mean comes from the DP phenotype synthesizer; a residual offset ``m`` would
    add ``n * mean(x) * m`` to every SNP score wherever the reference allele frequencies are
    off. The mean of the clipped ``y`` is released by the Gaussian mechanism (L2 sensitivity
    ``clip``; ``None`` = exact) and subtracted; clipping again keeps every value in
    ``[-clip, clip]``, so the score sensitivity is unchanged (the released mean is a fixed
    public value for the later mechanisms: adaptive composition).
    """
    n = len(y_std)
    total = float(y_std.sum())
    if noise_multiplier is not None and clip is not None:
        total += float(rng.normal(scale=noise_multiplier * clip))
    m = total / n
    out = y_std - m
    return (out if clip is None else np.clip(out, -clip, clip)), m


def snp_scores(
    dosages: np.ndarray,
    y_std: np.ndarray,
    freq: np.ndarray,
    x_clip: float | None,
    block: int = 4096,
) -> np.ndarray:
    """``|sum_i x_ij y_i| / sqrt(n)`` for every SNP (blocked over SNPs to bound memory)."""
    n, m = dosages.shape
    out = np.empty(m)
    for s in range(0, m, block):
        xs = standardise_dosages(dosages[:, s : s + block], freq[s : s + block], x_clip)
        out[s : s + block] = np.abs(y_std @ xs) / math.sqrt(n)
    return out


def window_scores(snp_score: np.ndarray, layout: WindowLayout) -> np.ndarray:
    """Maximum SNP score of each window."""
    idx = layout.snp_index
    vals = np.where(idx >= 0, snp_score[np.clip(idx, 0, None)], -np.inf)
    return vals.max(axis=1)


def score_sensitivity(config: AssociationConfig, n: int) -> float:
    """Add/remove-one sensitivity of every window score (see the module docstring)."""
    return config.x_clip * config.y_clip / math.sqrt(n)


def region_windows(lead: int, layout: WindowLayout, flank_bp: float) -> np.ndarray:
    """Windows of the same chromosome whose middle lies within ``flank_bp`` of ``lead``'s."""
    same = layout.chrom == layout.chrom[lead]
    near = np.abs(layout.position - layout.position[lead]) <= flank_bp
    return np.flatnonzero(same & near)


def select_regions(
    scores: np.ndarray,
    layout: WindowLayout,
    config: AssociationConfig,
    *,
    sensitivity: float,
    eps_select: float,
    eps_test: float,
    rng: np.random.Generator,
) -> list[int]:
    """Lead windows chosen by noisy max + noisy threshold rounds (exact when eps = inf)."""
    available = np.ones(layout.n_windows, dtype=bool)
    chosen: list[int] = []
    test_scale = sensitivity / eps_test if math.isfinite(eps_test) else 0.0
    threshold = config.threshold + config.threshold_margin * test_scale
    for _ in range(config.max_regions):
        if not available.any():
            break
        cand = np.flatnonzero(available)
        noisy = scores[cand].astype(np.float64)
        if math.isfinite(eps_select):
            noisy = noisy + rng.gumbel(scale=2.0 * sensitivity / eps_select, size=len(cand))
        lead = int(cand[np.argmax(noisy)])
        value = scores[lead] + (rng.laplace(scale=test_scale) if test_scale > 0 else 0.0)
        if value < threshold:
            break
        chosen.append(lead)
        available[region_windows(lead, layout, config.exclusion_factor * config.flank_bp)] = False
    return chosen


def region_columns(lead: int, layout: WindowLayout, flank_bp: float) -> np.ndarray:
    idx = layout.snp_index[region_windows(lead, layout, flank_bp)].ravel()
    return np.sort(idx[idx >= 0])


def region_basis(
    reference_dosages: np.ndarray, n_components: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(center, scale, basis)`` of the whitened top principal components of a region's
    reference genotypes: ``z = ((x - center) / scale) @ basis`` has identity covariance in the
    reference."""
    ref = np.asarray(reference_dosages, dtype=np.float64)
    freq = np.clip(np.nanmean(ref, axis=0) / 2.0, 0.005, 0.995)
    center = 2 * freq
    scale = np.sqrt(2 * freq * (1 - freq))
    xs = np.nan_to_num((ref - center) / scale, nan=0.0)
    _, s, vt = np.linalg.svd(xs / math.sqrt(max(1, len(xs) - 1)), full_matrices=False)
    q = int(min(n_components, int(np.sum(s > 1e-6 * max(s[0], 1e-12)))))
    basis = vt[:q].T / s[:q]
    return center, scale, basis


def components(
    x: np.ndarray, center: np.ndarray, scale: np.ndarray, basis: np.ndarray
) -> np.ndarray:
    xs = np.nan_to_num((np.asarray(x, dtype=np.float64) - center) / scale, nan=0.0)
    return xs @ basis


def clip_rows(z: np.ndarray, bound: float) -> np.ndarray:
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return z * np.minimum(1.0, bound / np.maximum(norms, 1e-12))


def release_effect(
    z: np.ndarray,
    y_std: np.ndarray,
    *,
    noise_multiplier: float | None,
    z_clip: float,
    y_clip: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Per-component effect on the standardised phenotype.

    Private (``noise_multiplier`` given): ``(sum_i clip(z_i) y_i + N(0, (sigma z_clip y_clip)^2
    I)) / n`` -- the Gaussian mechanism with L2 sensitivity ``z_clip * y_clip`` (``y`` already
    clipped to ``y_clip``). ``None``: least squares on the members (no formal privacy).
    """
    n = len(y_std)
    if noise_multiplier is None:
        zc = z - z.mean(axis=0)
        coef, *_ = np.linalg.lstsq(zc, y_std - y_std.mean(), rcond=None)
        return np.asarray(coef)
    zc = clip_rows(z, z_clip)
    u = zc.T @ y_std
    u = u + rng.normal(scale=noise_multiplier * z_clip * y_clip, size=u.shape)
    return np.asarray(u / n)


def genetic_score(dosages: np.ndarray, regions: list[Region]) -> np.ndarray:
    """``sum_regions z_synth . beta`` for synthetic genotype rows (standardised phenotype units)."""
    g = np.zeros(len(dosages))
    for r in regions:
        g += components(dosages[:, r.columns], r.center, r.scale, r.basis) @ r.beta
    return g


def apply_genetic_score(
    y: np.ndarray, g: np.ndarray, *, binary: bool, y_sd: float, rng: np.random.Generator
) -> np.ndarray:
    """Analysis phenotype given the genetic score ``g`` (standardised units), keeping the
    phenotype's marginal distribution and missingness.

    Continuous: ``mu + sqrt(1 - var(d)) (y - mu) + d`` with ``d = y_sd (g - mean g)`` scaled so
    the variance is kept. Binary: with ``d`` as above and prevalence ``pi``, a 0 becomes 1
    with probability ``d / (1 - pi)`` when ``d > 0`` and a 1 becomes 0 with probability
    ``-d / pi`` when ``d < 0``, so ``E[y | g] = pi + d`` (clipped to [0, 1]).
    """
    y = np.asarray(y, dtype=np.float64).copy()
    ok = ~np.isnan(y)
    if not ok.any() or not np.any(g):
        return y
    d = y_sd * (g - g[ok].mean())
    if binary:
        pi = float(np.clip(y[ok].mean(), 1e-3, 1 - 1e-3))
        u = rng.random(len(y))
        up = ok & (y == 0) & (d > 0) & (u < d / (1 - pi))
        down = ok & (y == 1) & (d < 0) & (u < -d / pi)
        y[up] = 1.0
        y[down] = 0.0
        return y
    mu = y[ok].mean()
    var_y = max(y[ok].var(), 1e-12)
    var_d = d[ok].var()
    shrink = math.sqrt(max(0.0, 1.0 - var_d / var_y))
    y[ok] = mu + shrink * (y[ok] - mu) + d[ok]
    return y
