"""The analysis phenotype as the association path sees it: adjusted for the GWAS covariates,
centred and scaled, each by a DP release or a fixed map of DP outputs.

- :func:`normalise_phenotype`: the phenotype's centre and scale (a Gaussian release of a
  clipped sum, :func:`centre_sensitivity`).
- :func:`release_covariate_slopes`: the phenotype's regression on the covariates, released
  as the clipped cross-moments of ``[1, covariates, y]`` (:func:`covariate_sensitivity`),
  then shrunk by their share of signal (:func:`shrink_slopes`); a
  :class:`CovariateAdjustment` applies them to every member alike (post-processing).
- :func:`released_prevalence`, :func:`binary_slope_unit`, :func:`released_affine`: a 0/1
  phenotype's prevalence and the scale its released slopes are in.
- :func:`phenotype_values`, :func:`phenotype_bound`: the values a standardised phenotype can
  take, which bound a 0/1 phenotype's sensitivity tighter than its clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import optimize

from dpgenome.association import Reference, clip_rows
from dpgenome.cohort import PhenoType, category_levels, design_matrix, observed_rows
from dpgenome.noise import Noise


@dataclass(frozen=True)
class CovariateAdjustment:
    """``y - [1, covariates] @ coef``: the phenotype adjusted for the GWAS covariates with
    coefficients fitted on the *synthetic* phenotype table (a DP output, so applying the same
    fixed map to every member is post-processing and each member's value still depends on
    that member only). The GWAS tests SNPs against this residual, so it is the residual whose
    cross-moments with the genotypes are released and matched. Categorical covariates are
    one-hot on the synthetic table's levels (first dropped); a missing covariate counts as
    its synthetic mean. The coefficients are fitted on the rows the GWAS uses
    (:meth:`complete`)."""

    covariates: tuple[str, ...]
    levels: dict[str, list[str]]
    means: np.ndarray
    coef: np.ndarray

    @classmethod
    def fit(
        cls,
        table: pd.DataFrame,
        types: dict[str, PhenoType],
        pheno: str,
        covariates: tuple[str, ...],
    ) -> CovariateAdjustment:
        levels = category_levels(table, types, covariates)
        x, _ = design_matrix(table, covariates, levels)
        means = np.nan_to_num(np.nanmean(x, axis=0)) if x.shape[1] else np.zeros(0)
        return cls(tuple(covariates), levels, means, np.zeros(x.shape[1] + 1)).refit(table, pheno)

    def refit(self, table: pd.DataFrame, pheno: str) -> CovariateAdjustment:
        """The same covariate columns (levels, missing-value fill) with coefficients fitted
        by least squares on ``table``'s rows a GWAS tests (:meth:`complete`): e.g. rows drawn
        from those this was fitted on. Too few rows: the intercept alone (their mean)."""
        x, _ = self.design(table)
        y = table[pheno].to_numpy(dtype=np.float64, na_value=np.nan)
        ok = self.complete(table, pheno)
        design = np.column_stack([np.ones(len(y)), x])
        coef = np.zeros(design.shape[1])
        if ok.sum() > design.shape[1]:
            coef, *_ = np.linalg.lstsq(design[ok], y[ok], rcond=None)
        elif ok.any():
            coef[0] = y[ok].mean()
        return replace(self, coef=np.asarray(coef))

    def design(self, table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """``(columns, names)``: the covariate columns of every row of ``table`` on this
        adjustment's levels (:func:`dpgenome.cohort.design_matrix`), a missing value as its
        synthetic mean."""
        x, names = design_matrix(table, self.covariates, self.levels)
        return np.where(np.isnan(x), self.means, x), names

    def residual(self, table: pd.DataFrame, pheno: str) -> np.ndarray:
        """Adjusted phenotype of every row (NaN where the phenotype is missing)."""
        x, _ = self.design(table)
        y = table[pheno].to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(y - np.column_stack([np.ones(len(y)), x]) @ self.coef)

    def complete(self, table: pd.DataFrame, pheno: str) -> np.ndarray:
        """Rows with the phenotype and every covariate present: the rows a GWAS tests."""
        return observed_rows(table, pheno, self.covariates)


def standardise_phenotype(y: np.ndarray, ref: Reference, clip: float | None) -> np.ndarray:
    z = (np.asarray(y, dtype=np.float64) - ref.y_mean) / max(ref.y_sd, 1e-12)
    z = np.nan_to_num(z, nan=0.0)
    return z if clip is None else np.clip(z, -clip, clip)


@dataclass(frozen=True)
class Location:
    """The released location and scale of the standardised phenotype."""

    mean: float
    sd: float


def centre_sensitivity(clip: float) -> float:
    """L2 sensitivity of :func:`normalise_phenotype`'s release: each individual adds
    ``(y / 2, y^2 / clip - clip / 2)`` for ``y`` in ``[-clip, clip]``, both coordinates in
    ``[-clip / 2, clip / 2]``, so its norm is at most ``clip / sqrt(2)``."""
    return clip / math.sqrt(2.0)


def normalise_phenotype(
    y_std: np.ndarray, clip: float | None, noise_multiplier: float | None, noise: Noise
) -> tuple[np.ndarray, Location]:
    """Re-centre and re-scale the standardised phenotype on its own (DP) mean and sd, and clip
    again.

    The reference location/scale come from the DP phenotype synthesizer, whose prevalence or
    spread can be off: a residual offset ``m`` adds ``n * mean(x) * m`` to every SNP score
    wherever the reference allele frequencies are off, and a scale too large shrinks every
    score towards the public selection threshold (and every released effect with it).

    Each individual's ``(y / 2, y^2 / clip - clip / 2)`` (clipped ``y``; norm at most
    :func:`centre_sensitivity`) is summed and released by one Gaussian mechanism (``None`` =
    exact); the mean and second moment are read back with the public ``n`` (as the scores'
    sensitivity and the default delta treat it). Shifting ``y^2 / clip``, which lies in
    ``[0, clip]``, to the middle of its range halves its bound, and halving ``y`` costs the
    mean nothing: its noise is that of the plain ``(y, y^2 / clip)`` release (norm up to
    ``clip * sqrt(2)``) while the second moment's is half, at the same noise multiplier (the
    scale moves every score and released effect; at epsilon 3 and 960 members its relative
    noise falls from ~3.9% to ~1.9%). ``y`` is then centred and scaled by the released moments
    and clipped again to ``[-clip, clip]``, so every later sensitivity is unchanged (the
    released moments are fixed public values for the later mechanisms: adaptive composition).
    """
    n = len(y_std)
    if clip is None or noise_multiplier is None:
        mean = float(y_std.mean())
        second = float((y_std**2).mean())
    else:
        half = clip / 2.0
        sums = np.array([(y_std / 2.0).sum(), (y_std**2 / clip - half).sum()], dtype=np.float64)
        sens = centre_sensitivity(clip)
        sums = noise.gaussian(sums, sd=noise_multiplier * sens, sensitivity=sens)
        mean = float(2.0 * sums[0] / n)
        second = float((sums[1] / n + half) * clip)
    sd = math.sqrt(max(second - mean**2, 0.05))  # floor: a noisy moment cannot blow y up
    out = (y_std - mean) / sd
    return (out if clip is None else np.clip(out, -clip, clip)), Location(mean, sd)


#: the second-moment block's share of :func:`release_covariate_slopes`' sensitivity: each
#: member's ``(r u, kappa q)`` has ``||kappa q|| <= COVARIATE_MOMENT_SHARE * |r|max ||u||max``,
#: so the cross-moment's noise grows by ``sqrt(1 + 0.25)`` (+12%) and the members' covariate
#: second moments come with it
COVARIATE_MOMENT_SHARE = 0.5


def covariate_sensitivity(y_clip: float, w_clip: float) -> float:
    """L2 sensitivity of :func:`release_covariate_slopes`' sums: each member adds ``r * u``
    with ``|r| <= y_clip`` and ``||u|| <= w_clip``, and its covariate second moments scaled to
    at most :data:`COVARIATE_MOMENT_SHARE` of that."""
    return y_clip * w_clip * math.sqrt(1.0 + COVARIATE_MOMENT_SHARE**2)


def _moment_block(u: np.ndarray, w_clip: float) -> tuple[np.ndarray, np.ndarray, float]:
    """``(q, shift, bound)``: each row's ``u u^T`` as its upper triangle (off-diagonal
    entries times sqrt 2, so that ``||q|| = ||u u^T||_F = ||u||^2``), less ``shift`` (the
    triangle of ``w_clip^2 / 2`` times the identity, which halves the bound of one or two
    columns: ``||u u^T - h I||_F <= sqrt(k) h`` for ``||u|| <= w_clip``, ``h = w_clip^2 / 2``),
    and the bound of ``||q||``."""
    k = u.shape[1]
    iu, factor = _triangle(k)
    q = (u[:, iu[0]] * u[:, iu[1]]) * factor
    h = w_clip**2 / 2.0
    shift = np.where(iu[0] == iu[1], h, 0.0) if k <= 3 else np.zeros(len(factor))
    bound = math.sqrt(k) * h if k <= 3 else w_clip**2
    return q - shift, shift, bound


def _triangle(k: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The upper triangle's indices of a ``k x k`` matrix and each entry's factor (sqrt 2
    off the diagonal: the triangle's norm is the matrix's Frobenius norm)."""
    iu = np.triu_indices(k)
    return iu, np.where(iu[0] == iu[1], 1.0, math.sqrt(2.0))


def _from_triangle(v: np.ndarray, k: int) -> np.ndarray:
    """The symmetric matrix whose :func:`_moment_block` triangle is ``v``."""
    iu, factor = _triangle(k)
    out = np.zeros((k, k))
    out[iu] = v / factor
    return np.asarray(out + np.triu(out, 1).T)


def release_covariate_slopes(
    r_std: np.ndarray,
    w: np.ndarray,
    w_synth: np.ndarray,
    *,
    w_clip: float | None,
    y_clip: float | None,
    noise_multiplier: float | None,
    noise: Noise,
) -> tuple[np.ndarray, np.ndarray]:
    """``(slopes, noise sd)``: per covariate column, the members' slope of the phenotype
    residual beyond the one already removed, in residual units per covariate unit (add it to
    the adjustment's coefficients to give the synthetic rows the members' slopes), and the sd
    that the release noise gives it (first order, a public function of the noise multiplier,
    the clips, ``n``, the released moments and the synthetic rows; 0 without noise).

    ``r_std`` is the members' phenotype residual under the synthetic rows' adjustment,
    centred, scaled and clipped at ``y_clip`` by the centre release
    (:func:`normalise_phenotype`); ``w`` their covariate columns
    (:meth:`CovariateAdjustment.design`) and ``w_synth`` the synthetic rows' (a DP output),
    which fix the columns' centre and scale. Each member's standardised column vector ``u``
    is clipped to norm ``w_clip``; one Gaussian mechanism (L2 sensitivity
    :func:`covariate_sensitivity`; ``None`` = exact) releases the sums of ``r u`` and of
    ``u u^T`` (scaled and shifted, :func:`_moment_block`), read back with the public ``n``.
    The slope of ``r`` on ``u`` is the released cross-moment through the members' released
    covariance of ``u`` (its eigenvalues floored at a quarter of the synthetic rows' smallest
    and at ``sqrt(k)`` sds of its noise: a noisy moment cannot blow the slope up), and it is
    carried to the covariates' own units by the least-squares map from the synthetic rows'
    columns to their ``u`` (exact for a 0/1 column, whose clipped ``u`` is affine in it; the
    identity over the scale for a column the clip leaves alone). So the members' covariate
    shares, not the DP phenotype model's, set the slope: a rare 0/1 covariate (SW16: 4% of
    members) whose synthetic share is half the members' read the slope twice too large
    through the synthetic rows' moments alone. A column the synthetic rows leave constant
    gets slope 0 and stays out of every member's ``u``. Without noise (no formal privacy) it
    is the members' own least squares slope of ``r_std`` on ``[1, w]``."""
    w = np.asarray(w, dtype=np.float64)
    w_synth = np.asarray(w_synth, dtype=np.float64)
    n, k = w.shape
    if noise_multiplier is None:
        design = np.column_stack([np.ones(n), np.nan_to_num(w)])
        exact, *_ = np.linalg.lstsq(design, np.asarray(r_std, dtype=np.float64), rcond=None)
        return np.asarray(exact[1:]), np.zeros(k)
    if w_clip is None or y_clip is None:
        raise ValueError("a noisy covariate release needs both clips")
    slopes, sds = np.zeros(k), np.zeros(k)
    centre = np.nanmean(w_synth, axis=0) if len(w_synth) else np.full(k, np.nan)
    spread = np.nanstd(w_synth, axis=0) if len(w_synth) else np.full(k, np.nan)
    # a column the synthetic rows leave constant (or empty) has no synthetic slope to give:
    # it stays out (slope 0), so that its members' values, standardised by a zero spread,
    # cannot fill every clipped vector and drown the other columns
    live = np.flatnonzero(spread > 1e-9 * np.maximum(1.0, np.abs(np.nan_to_num(centre))))
    if len(live) == 0:
        return slopes, sds
    kl = len(live)
    centre, scale = centre[live], spread[live]
    u = clip_rows(np.nan_to_num((w[:, live] - centre) / scale), w_clip)
    q, shift, q_bound = _moment_block(u, w_clip)
    kappa = COVARIATE_MOMENT_SHARE * y_clip * w_clip / q_bound
    sens = covariate_sensitivity(y_clip, w_clip)
    sums = np.concatenate([np.asarray(r_std, dtype=np.float64) @ u, kappa * q.sum(axis=0)])
    sums = noise.gaussian(sums, sd=noise_multiplier * sens, sensitivity=sens)
    cross = sums[:kl] / n
    second = _from_triangle(sums[kl:] / (kappa * n) + shift, kl)
    # the synthetic rows' u: its mean stands in for the members' (second order: E[r] ~ 0)
    u_synth = clip_rows(np.nan_to_num((w_synth[:, live] - centre) / scale), w_clip)
    u_mean = u_synth.mean(axis=0)
    cov_synth = np.atleast_2d(np.cov(u_synth, rowvar=False))
    noise_sd = noise_multiplier * sens / n
    # the released covariance's eigenvalues are floored at a quarter of the synthetic rows'
    # smallest and at sqrt(k) sds of its own noise (entries of sd noise / kappa on the
    # diagonal): a released variance within about one noise sd of zero is not told apart
    # from it, and its inverse would blow the slope up (the bench's SW16 at epsilon 3: a
    # variance of 0.29 released with sd 0.06, the synthetic floor 0.03; a column the
    # synthetic rows barely vary in floors at ~0). Public: the noise scale, the synthetic
    # rows
    floor = max(
        0.25 * float(np.linalg.eigvalsh(cov_synth).min()),
        math.sqrt(kl) * noise_sd / kappa,
        1e-6,
    )
    vals, vecs = np.linalg.eigh(second - np.outer(u_mean, u_mean))
    inv_cov = (vecs / np.maximum(vals, floor)) @ vecs.T
    slope_u = inv_cov @ cross
    # covariate units: u_synth ~ w_synth @ to_u (centred), so slope_u . u = (to_u slope_u) . w
    to_u, *_ = np.linalg.lstsq(
        np.nan_to_num(w_synth[:, live] - centre), u_synth - u_mean, rcond=None
    )
    reader = to_u @ inv_cov
    # first order: the cross-moment's noise, and the second moments' times the slope
    inflation = math.sqrt(1.0 + float(slope_u @ slope_u) / kappa**2)
    slopes[live] = to_u @ slope_u
    sds[live] = noise_sd * inflation * np.linalg.norm(reader, axis=1)
    return slopes, sds


def shrink_slopes(step: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``step * max(0, 1 - sd^2 / step^2)`` per coordinate (positive-part James-Stein): a
    released slope change mostly noise is mostly dropped, one well above its noise kept
    (``sd = 0``: kept whole)."""
    step = np.asarray(step, dtype=np.float64)
    sd = np.asarray(sd, dtype=np.float64)
    keep = np.where(sd > 0, np.clip(1.0 - sd**2 / np.maximum(step**2, 1e-300), 0.0, 1.0), 1.0)
    return np.asarray(step * keep)


def released_prevalence(
    y: np.ndarray,
    fitted: np.ndarray,
    ref: Reference,
    clip: float | None,
    released_mean: float,
) -> float:
    """The members' prevalence of a 0/1 phenotype that the released location implies
    (post-processing: the synthetic rows and :func:`normalise_phenotype`'s released mean).

    ``y`` are the synthetic rows' 0/1 values and ``fitted`` their covariate adjustment
    (``[1, covariates] @ coef``); a member's released value is
    ``clip((y - fitted - ref.y_mean) / ref.y_sd)``, which takes one of two values per
    covariate pattern. Shifting every pattern's prevalence by ``t`` moves the mean of those
    values by ``t`` times the mean gap between them, so ``t`` is read off the gap between the
    released mean and the synthetic rows' own. The DP phenotype model's prevalence can be
    far off (the demo's abBMD: 0.06 for 0.19 at epsilon 8) while this mean carries the
    centre release's small noise (~0.01 in prevalence at epsilon 3, 960 members)."""
    y = np.asarray(y, dtype=np.float64)
    fitted = np.asarray(fitted, dtype=np.float64)
    hi = standardise_phenotype(1.0 - fitted, ref, clip)
    lo = standardise_phenotype(0.0 - fitted, ref, clip)
    gap = float(np.mean(hi - lo))
    if len(y) == 0 or gap <= 0:
        return float(np.mean(y)) if len(y) else math.nan
    now = float(np.mean(np.where(y > 0.5, hi, lo)))
    return float(np.clip(np.mean(y) + (released_mean - now) / gap, 0.0, 1.0))


def binary_slope_unit(
    fitted: np.ndarray, ref: Reference, loc: Location, clip: float | None
) -> float:
    """0/1-phenotype units per unit of the standardised, normalised, clipped phenotype
    (:func:`normalise_phenotype`) of a 0/1 phenotype, whose rows take ``1 - fitted`` or
    ``-fitted`` once adjusted (``fitted``: the synthetic rows' ``[1, covariates] @ coef``).
    Raising the prevalence by ``t`` raises that phenotype's mean by ``t`` times the mean gap
    between its two values, which the clips shrink (a rare 1-class sits beyond them): a slope
    read off it is in units of that gap. Without clipping it is ``ref.y_sd * loc.sd``, as
    for a continuous phenotype."""
    fitted = np.asarray(fitted, dtype=np.float64)
    bound = math.inf if clip is None else clip
    gap = float(
        np.mean(
            phenotype_values(ref, loc, bound, 1.0 - fitted)
            - phenotype_values(ref, loc, bound, -fitted)
        )
    )
    return 1.0 / gap if gap > 0 else ref.y_sd * loc.sd


def released_affine(
    z: np.ndarray, clip: float | None, loc: Location, *, max_clipped: float = 0.1
) -> tuple[float, float] | None:
    """``(a, s)`` such that ``clip(a + s * z)`` has the released mean and second moment:
    the map that gives a continuous phenotype's synthetic residuals (standardised, ``z``) the
    members' location and scale (post-processing of :func:`normalise_phenotype`'s release).

    Without clipping it is exact (``s = loc.sd / sd(z)``, ``a = loc.mean - s * mean(z)``);
    with it the two clipped moments are matched by least squares from that start. ``None``
    when the release does not identify the map: the moments are not matched, or more than
    ``max_clipped`` of the mapped values sit at the clip (the members' spread is then only
    known to exceed the clip, e.g. when the synthetic scale is far too small). The DP
    phenotype model's mean and sd of a continuous column are off by ~0.1 sd at epsilon 3 on
    1,000 members; the release's noise is ~0.02 sd."""
    z = np.asarray(z, dtype=np.float64)
    z = z[np.isfinite(z)]
    if len(z) < 2 or float(z.std()) <= 0:
        return None
    s0 = loc.sd / float(z.std())
    a0 = loc.mean - s0 * float(z.mean())
    if clip is None:
        return a0, s0
    second = loc.sd**2 + loc.mean**2

    def gap(params: np.ndarray) -> np.ndarray:
        v = np.clip(params[0] + params[1] * z, -clip, clip)
        return np.array([v.mean() - loc.mean, (v**2).mean() - second])

    fit = optimize.least_squares(
        gap,
        np.array([np.clip(a0, -clip, clip), np.clip(s0, 1e-3, 100.0)]),
        bounds=([-clip, 1e-3], [clip, 100.0]),
    )
    a, s = (float(v) for v in fit.x)
    clipped = float(np.mean(np.abs(a + s * z) >= clip))
    if np.max(np.abs(gap(fit.x))) > 0.01 * max(1.0, second) or clipped > max_clipped:
        return None
    return a, s


def phenotype_values(
    ref: Reference, loc: Location, y_clip: float, values: np.ndarray
) -> np.ndarray:
    """The standardised, normalised, clipped values of a phenotype that can take only the
    ``values`` given (public constants and the released location)."""
    v = np.clip((np.asarray(values, float) - ref.y_mean) / max(ref.y_sd, 1e-12), -y_clip, y_clip)
    return np.asarray(np.clip((v - loc.mean) / loc.sd, -y_clip, y_clip))


def phenotype_bound(
    ref: Reference, loc: Location, y_clip: float, values: np.ndarray | None = None
) -> float:
    """The largest ``|y|`` the standardised, normalised phenotype can take (the ``y`` factor
    of every sensitivity): ``y_clip``, or less when the phenotype can only take the few
    ``values`` given (a 0/1 phenotype without covariates: two numbers fixed by public
    constants and the released location; a missing value standardises to 0)."""
    if values is None:
        return float(y_clip)
    # a missing value standardises to 0, i.e. it enters as the reference mean
    with_missing = np.append(np.asarray(values, float), ref.y_mean)
    return float(np.abs(phenotype_values(ref, loc, y_clip, with_missing)).max())
