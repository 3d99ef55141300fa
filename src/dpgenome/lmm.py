"""Linear mixed-model GWAS with leave-one-chromosome-out (LOCO) kinship, following GEMMA.

Model (Zhou & Stephens 2012, "Genome-wide efficient mixed-model analysis for association
studies", Nat. Genet. 44:821; GEMMA manual 0.98): ``y = W a + x b + u + e`` with
``u ~ N(0, lambda tau^-1 K)``, ``e ~ N(0, tau^-1 I)``, W = [intercept, covariates].

* Kinship: GEMMA ``-gk 1``, K = X_c X_c^T / p with X_c the mean-imputed, per-SNP centred
  dosages. With LOCO the SNPs of chromosome c are tested against the kinship of all other
  chromosomes (the per-chromosome GEMMA runs of Parker et al. 2016).
* K = U diag(d) U^T once per chromosome; y, W and the dosages are rotated by U^T, after
  which every likelihood evaluation is O(n) per SNP (H = lambda diag(d) + I is diagonal).
* lambda is estimated per SNP in [1e-5, 1e5] as in GEMMA: REML under the alternative for the
  Wald test (GEMMA's ``l_remle``), ML under the alternative and the null for the likelihood
  ratio test (``l_mle``). GEMMA brackets the optimum on 10 log-spaced intervals and polishes
  with Brent/Newton; here a log-spaced grid of 21 points (evaluated for all SNPs of a chunk
  by matrix products) brackets it and a vectorised safeguarded parabolic search polishes it
  to 1e-6 in log10 lambda.
* Wald: F = Pxy^2 (n-c-1) / (Pxx y'P_X y) on (1, n-c-1) df; LRT: 2 (l1 - l0) on chi^2_1.
* Cost per SNP and lambda: the SNP-independent sums (log det H, W'H^-1W, W'H^-1y, y'H^-1y)
  come from a Chebyshev interpolant in log10 lambda built once per kinship
  (:class:`_LambdaTerms`), so an evaluation reads the rotated dosages a few times only;
  the rotation is done in float32 (agreement with GEMMA is unaffected: tested).

Eigenvalues below 1e-10 are set to 0 as GEMMA does. Memory is O(n^2 + n * chunk), so the
mixed model suits cohorts of a few thousand samples (the kinship of 50,000 is 20 GB).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.polynomial import chebyshev
from scipy import linalg

from dpgenome.cohort import Cohort
from dpgenome.errors import CohortError
from dpgenome.gwas import (
    MEAN_IMPUTE,
    GwasResult,
    ScanResult,
    _impute_mean,
    chi2_1df_log10_p,
    lambda_gc,
    p_from_log10,
    prepare,
    result_table,
    t_test_log10_p,
)

LOG10_LAMBDA_MIN = -5.0
LOG10_LAMBDA_MAX = 5.0
_GRID = np.linspace(LOG10_LAMBDA_MIN, LOG10_LAMBDA_MAX, 21)
_TOL = 1e-6  # in log10 lambda
_FTOL = 1e-10  # in log-likelihood units
_MAX_ITER = 60


# ---------------------------------------------------------------------------- kinship


def _block(
    dosages: np.ndarray, rows: np.ndarray | None, cols: np.ndarray, dtype: type[np.floating[Any]]
) -> np.ndarray:
    """Mean-imputed, centred dosages of ``rows`` x ``cols`` (one copy of the chunk only)."""
    raw = dosages[:, cols] if rows is None else dosages[np.ix_(rows, cols)]
    block = _impute_mean(np.asarray(raw, dtype=dtype))
    return block - block.mean(axis=0, dtype=np.float64).astype(dtype)[None, :]


def centred_crossproduct(
    dosages: np.ndarray,
    *,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
    chunk: int = 4096,
) -> tuple[np.ndarray, int]:
    """S = X_c X_c^T (float64 accumulation of float32 products) and the SNP count used.

    X_c: dosages (optionally the ``rows`` x ``cols`` submatrix) mean-imputed and centred per
    SNP (GEMMA ``-gk 1``); monomorphic SNPs add nothing but are counted, as in GEMMA when
    they pass its filters.
    """
    cols = np.arange(dosages.shape[1]) if cols is None else np.asarray(cols)
    n = dosages.shape[0] if rows is None else len(rows)
    s = np.zeros((n, n))
    for start in range(0, len(cols), chunk):
        block = _block(dosages, rows, cols[start : start + chunk], np.float32)
        s += block @ block.T
    return s, len(cols)


def centred_kinship(dosages: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """GEMMA ``-gk 1`` kinship: X_c X_c^T / p."""
    s, m = centred_crossproduct(dosages, chunk=chunk)
    if m == 0:
        raise CohortError("no SNP to build a kinship matrix from")
    return s / m


# ---------------------------------------------------------------------------- likelihood


@dataclass(frozen=True)
class Rotated:
    """Eigen-rotated null model pieces for one kinship: d (n,), y~ (n,), W~ (n x c)."""

    d: np.ndarray
    u: np.ndarray
    y: np.ndarray
    w: np.ndarray

    @property
    def n(self) -> int:
        return int(self.d.shape[0])

    @property
    def c(self) -> int:
        return int(self.w.shape[1])

    def products(self) -> np.ndarray:
        """n x q: W_k W_j (k <= j), W_k y, y y; weighted sums of these give A, b_y, s_yy."""
        c = self.c
        cols = [self.w[:, k] * self.w[:, j] for k in range(c) for j in range(k, c)]
        cols += [self.w[:, k] * self.y for k in range(c)]
        cols.append(self.y * self.y)
        return np.column_stack(cols)


def rotate(kinship: np.ndarray, y: np.ndarray, w: np.ndarray) -> Rotated:
    """Eigendecompose the kinship and rotate the response and covariates."""
    d, u = linalg.eigh(kinship, driver="evr")
    d = np.where(np.abs(d) < 1e-10, 0.0, d)
    if (d < 0).any():
        d = np.clip(d, 0.0, None)
    return Rotated(d=d, u=u, y=u.T @ y, w=u.T @ w)


def _unpack(z: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of z (q x b, :meth:`Rotated.products` order) -> A (b,c,c), b_y (b,c), s_yy (b,)."""
    b = z.shape[1]
    a = np.empty((b, c, c))
    i = 0
    for k in range(c):
        for j in range(k, c):
            a[:, k, j] = z[i]
            a[:, j, k] = z[i]
            i += 1
    return a, z[i : i + c].T, z[i + c]


def _cov_terms(rot: Rotated, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A = W'H^-1W (b,c,c), b_y = W'H^-1y (b,c), s_yy (b,) for weight columns (n x b)."""
    return _unpack(rot.products().T @ weights, rot.c)


class _LambdaTerms:
    """The SNP-independent pieces of the likelihood as functions of s = log10 lambda:
    sum_i log(1 + lambda d_i) and the entries of W'H^-1W, W'H^-1y, y'H^-1y.

    Each is a sum of terms analytic in s within |Im s| < pi / ln 10 (poles where
    1 + 10^s d_i = 0), so Chebyshev interpolation on [-5, 5] converges geometrically
    (Trefethen 2013, ATAP ch. 8); degree 160 is at round-off (abs. error ~1e-10 on sums of
    order 1e4, tested against direct evaluation). Evaluating it costs O(degree) per SNP
    instead of O(n)."""

    DEGREE = 160

    def __init__(self, rot: Rotated) -> None:
        k = np.arange(self.DEGREE + 1)
        self.half = (LOG10_LAMBDA_MAX - LOG10_LAMBDA_MIN) / 2
        self.centre = (LOG10_LAMBDA_MAX + LOG10_LAMBDA_MIN) / 2
        t = np.cos(np.pi * (k + 0.5) / (self.DEGREE + 1))
        lam = np.power(10.0, self.centre + self.half * t)
        h = lam[None, :] * rot.d[:, None] + 1.0
        values = np.vstack([np.log(h).sum(axis=0), rot.products().T @ (1.0 / h)])  # K x N
        self.coef = chebyshev.chebfit(t, values.T, self.DEGREE)  # (deg+1) x K
        self.c = rot.c

    def __call__(self, log10_lam: np.ndarray) -> tuple[np.ndarray, ...]:
        """sum log h (b,), A (b,c,c), b_y (b,c), s_yy (b,) at each lambda."""
        t = (np.asarray(log10_lam, dtype=np.float64) - self.centre) / self.half
        vals = chebyshev.chebval(np.clip(t, -1.0, 1.0), self.coef)  # K x b
        return (vals[0], *_unpack(vals[1:], self.c))


def _profile(
    a: np.ndarray,
    by: np.ndarray,
    syy: np.ndarray,
    bx: np.ndarray,
    sxx: np.ndarray,
    sxy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pyy, Pxx, Pxy (projections off W in the H^-1 metric) and log det A, batched."""
    rhs = np.stack([by, bx], axis=-1)  # b x c x 2
    sol = np.linalg.solve(a, rhs)
    ay, ax = sol[..., 0], sol[..., 1]
    pyy = syy - np.einsum("bc,bc->b", by, ay)
    pxx = sxx - np.einsum("bc,bc->b", bx, ax)
    pxy = sxy - np.einsum("bc,bc->b", bx, ay)
    logdet = np.linalg.slogdet(a)[1]
    return pyy, pxx, pxy, logdet


def _objectives(
    n: int,
    c: int,
    sumlogh: np.ndarray,
    pyy: np.ndarray,
    pxx: np.ndarray,
    pxy: np.ndarray,
    logdet: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """REML and ML log-likelihoods of the alternative (up to a constant in lambda for REML;
    ML exact, GEMMA's normalisation) and y'P_X y."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = pyy - pxy * pxy / pxx
        df = n - c - 1
        reml = -0.5 * sumlogh - 0.5 * (logdet + np.log(pxx)) - 0.5 * df * np.log(r)
        ml = 0.5 * n * (np.log(n / (2 * np.pi)) - 1.0) - 0.5 * sumlogh - 0.5 * n * np.log(r)
    return reml, ml, r


class _SnpBlock:
    """Rotated dosages of a chunk of SNPs and the likelihood at per-SNP lambdas."""

    def __init__(self, rot: Rotated, xt: np.ndarray, terms: _LambdaTerms) -> None:
        self.rot = rot
        self.x = xt  # n x b, rotated, float64
        self.terms = terms
        self.wy = np.column_stack([rot.y, rot.w]).T  # (1 + c) x n

    def grid(self, log10_lams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """REML and ML objective (G x b) on a lambda grid shared by every SNP."""
        rot = self.rot
        lam = np.power(10.0, log10_lams)
        h = lam[None, :] * rot.d[:, None] + 1.0  # n x G
        wts = 1.0 / h
        sumlogh = np.log(h).sum(axis=0)
        a, by, syy = _cov_terms(rot, wts)
        g = len(lam)
        c = rot.c
        # x' diag(w_g) [y, W] for every g: one matrix product
        m = np.concatenate([wts * rot.y[:, None]] + [wts * rot.w[:, [k]] for k in range(c)], axis=1)
        xm = self.x.T @ m  # b x G(c+1)
        sxy = xm[:, :g].T  # G x b
        bx = np.stack([xm[:, (k + 1) * g : (k + 2) * g].T for k in range(c)], axis=-1)  # G x b x c
        sxx = ((self.x * self.x).T @ wts).T  # G x b
        nb = self.x.shape[1]
        reml = np.empty((g, nb))
        ml = np.empty((g, nb))
        for i in range(g):
            a_inv = np.linalg.inv(a[i])
            ay = a_inv @ by[i]
            pyy = np.full(nb, syy[i] - by[i] @ ay)
            pxx = sxx[i] - np.einsum("bk,kl,bl->b", bx[i], a_inv, bx[i])
            pxy = sxy[i] - bx[i] @ ay
            logdet = np.full(nb, np.linalg.slogdet(a[i])[1])
            r_i, m_i, _ = _objectives(rot.n, c, np.full(nb, sumlogh[i]), pyy, pxx, pxy, logdet)
            reml[i], ml[i] = r_i, m_i
        return reml, ml

    def at(self, idx: np.ndarray, log10_lam: np.ndarray) -> dict[str, np.ndarray]:
        """Likelihoods and Wald pieces for SNPs ``idx`` at their own lambdas."""
        rot = self.rot
        x = self.x if idx.size == self.x.shape[1] else self.x[:, idx]  # idx is sorted
        lam = np.power(10.0, log10_lam)
        h = lam[None, :] * rot.d[:, None]
        h += 1.0
        wx = np.divide(x, h, out=h)
        sumlogh, a, by, syy = self.terms(log10_lam)
        sxx = np.einsum("ij,ij->j", wx, x)
        proj = self.wy @ wx  # (1 + c) x b
        sxy = proj[0]
        bx = proj[1:].T
        pyy, pxx, pxy, logdet = _profile(a, by, syy, bx, sxx, sxy)
        reml, ml, r = _objectives(rot.n, rot.c, sumlogh, pyy, pxx, pxy, logdet)
        return {"reml": reml, "ml": ml, "r": r, "pxx": pxx, "pxy": pxy}


def _maximise(
    f: Any, grid_values: np.ndarray, grid: np.ndarray = _GRID
) -> tuple[np.ndarray, np.ndarray]:
    """Per-column maximiser of a smooth function of log10 lambda.

    ``grid_values`` (G x b) brackets the maximum; a safeguarded successive parabolic
    interpolation (Brent 1973, ch. 5, without the golden fallback; a bisection step is
    taken when the parabola does not shrink the bracket) polishes it. ``f(idx, x)`` returns
    the objective of columns ``idx`` at points ``x``. A maximum on the boundary of
    [1e-5, 1e5] is kept there, as GEMMA does.
    """
    g, b = grid_values.shape
    values = np.where(np.isfinite(grid_values), grid_values, -np.inf)
    k = np.argmax(values, axis=0)
    cols = np.arange(b)
    best_x = grid[k].astype(np.float64)
    best_f = values[k, cols]
    # brackets (lo, mid, hi) with f(mid) >= f(lo), f(hi)
    lo = grid[np.clip(k - 1, 0, g - 1)].astype(np.float64)
    hi = grid[np.clip(k + 1, 0, g - 1)].astype(np.float64)
    f_lo = values[np.clip(k - 1, 0, g - 1), cols]
    f_hi = values[np.clip(k + 1, 0, g - 1), cols]
    mid, f_mid = best_x.copy(), best_f.copy()
    active = np.isfinite(best_f)
    # boundary maxima: probe half-way to the neighbour; keep the boundary if it is better
    edge = active & ((k == 0) | (k == g - 1))
    if edge.any():
        idx = np.flatnonzero(edge)
        inner = np.where(k[idx] == 0, grid[1], grid[g - 2])
        probe = 0.5 * (grid[k[idx]] + inner)
        fp = f(idx, probe)
        better = fp > best_f[idx]
        keep = idx[~better]
        active[keep] = False
        mv = idx[better]
        at_lo = k[mv] == 0
        # bracket (boundary, probe, neighbour): all three values are known
        lo[mv] = np.where(at_lo, grid[0], grid[g - 2])
        hi[mv] = np.where(at_lo, grid[1], grid[g - 1])
        f_lo[mv] = np.where(at_lo, best_f[mv], values[g - 2, mv])
        f_hi[mv] = np.where(at_lo, values[1, mv], best_f[mv])
        mid[mv], f_mid[mv] = probe[better], fp[better]
        best_x[mv], best_f[mv] = mid[mv], f_mid[mv]
    moved = np.full(b, np.inf)
    for _ in range(_MAX_ITER):
        idx = np.flatnonzero(active & (hi - lo > _TOL) & (moved > _TOL))
        if idx.size == 0:
            break
        a_, b_, c_ = lo[idx], mid[idx], hi[idx]
        fa, fb, fc = f_lo[idx], f_mid[idx], f_hi[idx]
        num = (b_ - a_) ** 2 * (fb - fc) - (b_ - c_) ** 2 * (fb - fa)
        den = (b_ - a_) * (fb - fc) - (b_ - c_) * (fb - fa)
        with np.errstate(invalid="ignore", divide="ignore"):
            u = b_ - 0.5 * num / den
        # safeguards (Brent): stay inside the bracket and move at least _TOL / 2
        step = _TOL / 2
        outside = ~np.isfinite(u) | (u <= a_ + step) | (u >= c_ - step)
        larger_right = (c_ - b_) > (b_ - a_)
        bis = np.where(larger_right, 0.5 * (b_ + c_), 0.5 * (a_ + b_))
        u = np.where(outside, bis, u)
        # a vertex within _TOL / 2 of b: converged at b (a confirming step of _TOL / 2
        # could move b by no more than that, so it is not evaluated)
        tiny = np.abs(u - b_) < step
        moved[idx[tiny]] = 0.0
        go = ~tiny
        idx, u = idx[go], u[go]
        if idx.size == 0:
            break
        a_, b_, c_, fa, fb, fc = a_[go], b_[go], c_[go], fa[go], fb[go], fc[go]
        fu = f(idx, u)
        # converged: the step, or the change of the log-likelihood, is negligible
        moved[idx] = np.where(np.abs(fu - fb) < _FTOL, 0.0, np.abs(u - b_))
        up = fu > fb
        right = u > b_
        # new bracket
        na = np.where(up, np.where(right, b_, a_), np.where(right, a_, u))
        nfa = np.where(up, np.where(right, fb, fa), np.where(right, fa, fu))
        nc = np.where(up, np.where(right, c_, b_), np.where(right, u, c_))
        nfc = np.where(up, np.where(right, fc, fb), np.where(right, fu, fc))
        nb = np.where(up, u, b_)
        nfb = np.where(up, fu, fb)
        lo[idx], mid[idx], hi[idx] = na, nb, nc
        f_lo[idx], f_mid[idx], f_hi[idx] = nfa, nfb, nfc
    best_x = np.where(active, mid, best_x)
    best_f = np.where(active, f_mid, best_f)
    return best_x, best_f


@dataclass(frozen=True)
class NullModel:
    """Null-model variance components for one kinship (GEMMA's log: lambda, vg, ve)."""

    lambda_reml: float
    lambda_mle: float
    logl_mle: float
    vg: float
    ve: float


def fit_null(rot: Rotated) -> NullModel:
    """REML and ML lambda of ``y = W a + u + e`` and the null ML log-likelihood."""
    n, c = rot.n, rot.c

    def evaluate(log10_lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lam = np.power(10.0, log10_lam)
        h = lam[None, :] * rot.d[:, None] + 1.0
        wts = 1.0 / h
        sumlogh = np.log(h).sum(axis=0)
        a, by, syy = _cov_terms(rot, wts)
        ay = np.linalg.solve(a, by[..., None])[..., 0]
        pyy = syy - np.einsum("bc,bc->b", by, ay)
        logdet = np.linalg.slogdet(a)[1]
        reml = -0.5 * sumlogh - 0.5 * logdet - 0.5 * (n - c) * np.log(pyy)
        ml = 0.5 * n * (np.log(n / (2 * np.pi)) - 1.0) - 0.5 * sumlogh - 0.5 * n * np.log(pyy)
        return reml, ml, pyy

    reml_g, ml_g, _ = evaluate(_GRID)

    def f_reml(idx: np.ndarray, x: np.ndarray) -> np.ndarray:
        return evaluate(x)[0]

    def f_ml(idx: np.ndarray, x: np.ndarray) -> np.ndarray:
        return evaluate(x)[1]

    lr, _ = _maximise(f_reml, reml_g[:, None])
    lm, logl = _maximise(f_ml, ml_g[:, None])
    _, _, pyy = evaluate(lr)
    ve = float(pyy[0] / (n - c))
    lam = float(10.0 ** lr[0])
    return NullModel(
        lambda_reml=lam,
        lambda_mle=float(10.0 ** lm[0]),
        logl_mle=float(logl[0]),
        vg=lam * ve,
        ve=ve,
    )


def snp_grid(null: NullModel) -> np.ndarray:
    """The bracketing grid of the per-SNP searches: the coarse grid over [1e-5, 1e5] plus a
    fine one (step 0.05 in log10) within +-0.5 of the null REML and ML lambdas, where most
    per-SNP optima lie (a SNP of small effect barely moves lambda); fewer polishing steps."""
    centre = np.log10([null.lambda_reml, null.lambda_mle])
    fine = np.arange(centre.min() - 0.5, centre.max() + 0.5 + 1e-9, 0.05)
    fine = fine[(fine > LOG10_LAMBDA_MIN) & (fine < LOG10_LAMBDA_MAX)]
    grid = np.union1d(_GRID, np.round(fine, 10))
    keep = np.concatenate([[True], np.diff(grid) > 1e-3])
    return grid[keep]


@dataclass(frozen=True)
class LmmScan:
    """Per-SNP mixed-model statistics (arrays of length m) for one kinship."""

    wald: ScanResult
    log10_p_lrt: np.ndarray
    lambda_remle: np.ndarray
    lambda_mle: np.ndarray
    null: NullModel


def lmm_scan(
    rot: Rotated,
    dosages: np.ndarray,
    *,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
    lrt: bool = True,
    chunk: int = 2048,
) -> LmmScan:
    """Wald (REML lambda per SNP) and likelihood-ratio (ML lambda per SNP) tests of each
    column of ``dosages`` (n x m, unrotated; mean-imputed; optionally the ``rows`` x ``cols``
    submatrix) against the rotated null model."""
    cols = np.arange(dosages.shape[1]) if cols is None else np.asarray(cols)
    n = dosages.shape[0] if rows is None else len(rows)
    m = len(cols)
    if n != rot.n:
        raise CohortError(f"{n} dosage rows but a kinship of {rot.n} samples")
    c = rot.c
    df = n - c - 1
    if df < 1:
        raise CohortError(f"{n} samples are too few for {c - 1} covariate(s) and a dosage")
    null = fit_null(rot)
    grid = snp_grid(null)
    terms = _LambdaTerms(rot)
    beta = np.full(m, np.nan)
    se = np.full(m, np.nan)
    lrt_log10 = np.full(m, np.nan)
    l_remle = np.full(m, np.nan)
    l_mle = np.full(m, np.nan)
    ut32 = np.ascontiguousarray(rot.u.T, dtype=np.float32)
    for start in range(0, m, chunk):
        block = _block(dosages, rows, cols[start : start + chunk], np.float64)
        poly = np.einsum("ij,ij->j", block, block) > 1e-8 * n
        xt = (ut32 @ block[:, poly].astype(np.float32)).astype(np.float64)
        snp = _SnpBlock(rot, xt, terms)
        reml_g, ml_g = snp.grid(grid)
        nb = xt.shape[1]
        # statistics at the best lambda seen so far per SNP: spares a final evaluation
        best = {k: np.full(nb, np.nan) for k in ("reml", "lam", "pxx", "pxy", "r")}
        best["reml"][:] = -np.inf

        def f_reml(
            idx: np.ndarray, x: np.ndarray, snp: _SnpBlock = snp, best: dict = best
        ) -> np.ndarray:
            out = snp.at(idx, x)
            up = out["reml"] > best["reml"][idx]
            sel = idx[up]
            best["reml"][sel], best["lam"][sel] = out["reml"][up], x[up]
            for key in ("pxx", "pxy", "r"):
                best[key][sel] = out[key][up]
            return out["reml"]

        lr, _ = _maximise(f_reml, reml_g, grid)
        stale = np.flatnonzero(best["lam"] != lr)
        if stale.size:  # optimum on a grid point never evaluated per SNP
            f_reml(stale, lr[stale])
        out = np.flatnonzero(poly) + start
        with np.errstate(invalid="ignore", divide="ignore"):
            beta[out] = best["pxy"] / best["pxx"]
            tau = df / best["r"]
            se[out] = np.sqrt(1.0 / (tau * best["pxx"]))
        l_remle[out] = np.power(10.0, lr)
        if lrt:

            def f_ml(idx: np.ndarray, x: np.ndarray, snp: _SnpBlock = snp) -> np.ndarray:
                return snp.at(idx, x)["ml"]

            lm, l1 = _maximise(f_ml, ml_g, grid)
            lrt_log10[out] = chi2_1df_log10_p(2.0 * (l1 - null.logl_mle))
            l_mle[out] = np.power(10.0, lm)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = beta / se
    wald = ScanResult(beta=beta, se=se, t_stat=t, log10_p=t_test_log10_p(t, df), df=df)
    return LmmScan(
        wald=wald, log10_p_lrt=lrt_log10, lambda_remle=l_remle, lambda_mle=l_mle, null=null
    )


# ---------------------------------------------------------------------------- cohort level


def lmm_gwas(
    cohort: Cohort,
    pheno: str,
    covariates: Sequence[str] = (),
    *,
    loco: bool = True,
    lrt: bool = True,
    chunk: int = 2048,
) -> GwasResult:
    """Mixed-model GWAS (GEMMA ``-lmm``): Wald p in ``p``/``log10_p``, plus ``p_lrt``,
    ``log10_p_lrt``, ``lambda_remle`` and ``lambda_mle`` columns. With ``loco`` each
    chromosome is tested against the centred kinship of the other chromosomes."""
    rows, y, design, _ = prepare(cohort, pheno, covariates)
    sub_rows = None if len(rows) == cohort.n_samples else rows
    n = len(rows)
    w = np.column_stack([np.ones(n), design]) if design.size else np.ones((n, 1))
    chroms = cohort.variants["chr"].astype(str).to_numpy()
    order = cohort.chromosomes
    if loco and len(order) < 2:
        raise CohortError("leave-one-chromosome-out needs variants on at least 2 chromosomes")
    m = cohort.n_variants
    beta, se, t, lp = (np.full(m, np.nan) for _ in range(4))
    lp_lrt, l_remle, l_mle = (np.full(m, np.nan) for _ in range(3))
    df = n - w.shape[1] - 1
    nulls: dict[str, dict[str, float]] = {}
    parts: list[tuple[str, np.ndarray]] = [(c, chroms == c) for c in order]
    # per-chromosome cross-products are kept when small, recomputed otherwise (memory O(n^2))
    keep = len(parts) * n * n * 8 <= 512e6
    cross: dict[str, np.ndarray] = {}
    total = np.zeros((n, n))
    if loco:
        for c, mask in parts:
            s_c, _ = centred_crossproduct(cohort.dosages, rows=sub_rows, cols=np.flatnonzero(mask))
            total += s_c
            if keep:
                cross[c] = s_c
            del s_c

    def kinships() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        if not loco:
            yield (
                "all",
                np.ones(m, dtype=bool),
                centred_crossproduct(cohort.dosages, rows=sub_rows)[0] / m,
            )
            return
        for c, mask in parts:
            s_c = (
                cross.pop(c)
                if keep
                else centred_crossproduct(cohort.dosages, rows=sub_rows, cols=np.flatnonzero(mask))[
                    0
                ]
            )
            yield c, mask, (total - s_c) / (m - int(mask.sum()))

    for name, mask, kin in kinships():
        rot = rotate(kin, y, w)
        res = lmm_scan(
            rot, cohort.dosages, rows=sub_rows, cols=np.flatnonzero(mask), lrt=lrt, chunk=chunk
        )
        beta[mask], se[mask] = res.wald.beta, res.wald.se
        t[mask], lp[mask] = res.wald.t_stat, res.wald.log10_p
        lp_lrt[mask], l_remle[mask], l_mle[mask] = (
            res.log10_p_lrt,
            res.lambda_remle,
            res.lambda_mle,
        )
        nulls[name] = {
            "lambda_reml": res.null.lambda_reml,
            "vg": res.null.vg,
            "ve": res.null.ve,
        }
    scan = ScanResult(beta=beta, se=se, t_stat=t, log10_p=lp, df=df)
    extras = {
        "p_lrt": p_from_log10(lp_lrt),
        "log10_p_lrt": lp_lrt,
        "lambda_remle": l_remle,
        "lambda_mle": l_mle,
    }
    if not lrt:
        extras = {"lambda_remle": l_remle}
    table = result_table(cohort, scan, n, extras)
    kind = "LOCO" if loco else "one kinship"
    return GwasResult(
        table=table,
        n=n,
        lambda_gc=lambda_gc(lp),
        method=f"lmm (GEMMA-style REML Wald{' + LRT' if lrt else ''}, centred kinship, {kind})",
        missing_policy=MEAN_IMPUTE,
        pheno=pheno,
        covariates=tuple(covariates),
        details={"null_models": nulls},
    )
