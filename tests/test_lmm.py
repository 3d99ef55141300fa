"""Mixed-model GWAS: dense-matrix oracles for REML/ML and GLS, the K = 0 reduction to OLS,
and GEMMA ``-gk 1`` / ``-lmm 4`` per chromosome with the leave-one-chromosome-out kinship
(tests/reference/tools.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from dpgenome.cohort import Cohort, qc
from dpgenome.errors import CohortError
from dpgenome.gwas import GWAS_COLUMNS, linear_scan, prepare
from dpgenome.lmm import centred_kinship, fit_null, lmm_gwas, lmm_scan, rotate
from dpgenome.testing import ToyConfig, toy_cohort
from reference import tools


@pytest.fixture(scope="module")
def toy() -> Cohort:
    cohort, _ = toy_cohort(0)
    return qc(cohort)[0]


def _small(seed: int = 5, n: int = 90) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense-matrix sized data: related samples (shared founders), y with a polygenic part."""
    cohort, _ = toy_cohort(seed, ToyConfig(n=n, n_chrom=2, snps_per_chrom=150, n_founders=4))
    cohort = qc(cohort)[0]
    rows, y, design, _ = prepare(cohort, "BMD", ["bw"])
    dos = cohort.dosages[rows].astype(np.float64)
    w = np.column_stack([np.ones(len(y)), design])
    return dos, y, w


def _dense_reml(lam: float, k: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """REML log-likelihood (up to a constant) with dense V = lam K + I (Harville 1977)."""
    n, c = x.shape
    v = lam * k + np.eye(n)
    vinv = np.linalg.inv(v)
    xtvx = x.T @ vinv @ x
    p = vinv - vinv @ x @ np.linalg.solve(xtvx, x.T @ vinv)
    return float(
        -0.5 * np.linalg.slogdet(v)[1]
        - 0.5 * np.linalg.slogdet(xtvx)[1]
        - 0.5 * (n - c) * np.log(y @ p @ y)
    )


def _dense_ml(lam: float, k: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    n = len(y)
    v = lam * k + np.eye(n)
    vinv = np.linalg.inv(v)
    p = vinv - vinv @ x @ np.linalg.solve(x.T @ vinv @ x, x.T @ vinv)
    r = float(y @ p @ y)
    return (
        0.5 * n * (np.log(n / (2 * np.pi)) - 1)
        - 0.5 * np.linalg.slogdet(v)[1]
        - 0.5 * n * np.log(r)
    )


def _argmax_log10(f: Callable[[float], float], lo: float = -5.0, hi: float = 5.0) -> float:
    grid = np.linspace(lo, hi, 401)
    vals = [f(10**g) for g in grid]
    i = int(np.argmax(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(
        lambda g: -f(10**g), bounds=(a, b), method="bounded", options={"xatol": 1e-9}
    )
    return float(res.x)


def test_centred_kinship__matches_definition() -> None:
    rng = np.random.default_rng(0)
    dos = rng.integers(0, 3, size=(30, 200)).astype(np.float32)
    dos[rng.random(dos.shape) < 0.05] = np.nan
    filled = np.where(np.isnan(dos), np.nanmean(dos, axis=0), dos).astype(np.float64)
    xc = filled - filled.mean(axis=0)
    np.testing.assert_allclose(centred_kinship(dos, chunk=64), xc @ xc.T / 200, atol=1e-6)


def test_fit_null__reml_and_ml_lambda_match_dense_optimisation() -> None:
    dos, y, w = _small()
    k = centred_kinship(dos)
    null = fit_null(rotate(k, y, w))
    want_reml = _argmax_log10(lambda lam: _dense_reml(lam, k, w, y))
    want_ml = _argmax_log10(lambda lam: _dense_ml(lam, k, w, y))
    # 1e-5 in log10 lambda: both optimisers are converged far below that
    assert np.log10(null.lambda_reml) == pytest.approx(want_reml, abs=1e-5)
    assert np.log10(null.lambda_mle) == pytest.approx(want_ml, abs=1e-5)
    # eigendecomposition vs dense inverse: ~1e-9 relative on the log-likelihood
    assert null.logl_mle == pytest.approx(_dense_ml(10**want_ml, k, w, y), abs=1e-6)


def test_lmm_scan__wald_and_lrt_match_dense_gls() -> None:
    dos, y, w = _small()
    k = centred_kinship(dos)
    rot = rotate(k, y, w)
    snps = [3, 40, 77, 160]
    res = lmm_scan(rot, dos[:, snps])
    null_ml = _dense_ml(res.null.lambda_mle, k, w, y)
    for col, j in enumerate(snps):
        x = np.column_stack([w, dos[:, j]])
        lr = _argmax_log10(lambda lam, x=x: _dense_reml(lam, k, x, y))
        assert np.log10(res.lambda_remle[col]) == pytest.approx(lr, abs=1e-4)
        # GLS at the REML lambda: beta = (X'V^-1X)^-1 X'V^-1 y, var = tau^-1 (X'V^-1X)^-1
        v = 10**lr * k + np.eye(len(y))
        vinv = np.linalg.inv(v)
        xtvx = x.T @ vinv @ x
        beta = np.linalg.solve(xtvx, x.T @ vinv @ y)
        resid = y - x @ beta
        tau_inv = float(resid @ vinv @ resid) / (len(y) - x.shape[1])
        se = np.sqrt(tau_inv * np.linalg.inv(xtvx)[-1, -1])
        # float32 rotation (lmm_scan): 1e-5 relative
        assert res.wald.beta[col] == pytest.approx(beta[-1], rel=1e-5, abs=1e-8)
        assert res.wald.se[col] == pytest.approx(se, rel=1e-5)
        lm = _argmax_log10(lambda lam, x=x: _dense_ml(lam, k, x, y))
        stat = 2 * (_dense_ml(10**lm, k, x, y) - null_ml)
        want = -np.log10(float(stats.chi2.sf(stat, 1)))
        assert res.log10_p_lrt[col] == pytest.approx(want, abs=1e-6)


def test_lmm_scan__zero_kinship_reduces_to_ols() -> None:
    dos, y, w = _small()
    rot = rotate(np.zeros((len(y), len(y))), y, w)
    res = lmm_scan(rot, dos)
    ols = linear_scan(dos, y, w[:, 1:], dtype=np.float64)
    # the rotation is done in float32 (lmm_scan), hence 1e-5 rather than 1e-12
    np.testing.assert_allclose(res.wald.log10_p, ols.log10_p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(res.wald.beta, ols.beta, rtol=1e-5, atol=1e-7)


def test_lmm_gwas__table_and_loco_requirement(toy: Cohort) -> None:
    res = lmm_gwas(toy, "BMD", ["SW16"])
    assert tuple(res.table.columns[: len(GWAS_COLUMNS)]) == GWAS_COLUMNS
    assert {"p_lrt", "log10_p_lrt", "lambda_remle", "lambda_mle"} <= set(res.table.columns)
    assert set(res.details["null_models"]) == set(toy.chromosomes)
    one = toy.take_variants(np.flatnonzero(toy.variants["chr"] == "1"))
    with pytest.raises(CohortError, match="at least 2 chromosomes"):
        lmm_gwas(one, "BMD")
    assert lmm_gwas(one, "BMD", loco=False).n == res.n


@pytest.mark.tools
def test_centred_kinship__matches_gemma_gk1(toy: Cohort) -> None:
    if tools.GEMMA is None:
        pytest.skip("gemma is not on PATH (CI installs it with apt-get install gemma)")
    rows, y, design, _ = prepare(toy, "BMD", ["SW16"])
    dos = toy.dosages[rows]
    with tempfile.TemporaryDirectory() as tmp:
        files = tools.write_bimbam(Path(tmp), dos, list(toy.variants["id"]), y, design)
        ref = tools.gemma_kinship(Path(tmp), files, out="k")
    # GEMMA prints the kinship with 7 significant digits
    np.testing.assert_allclose(centred_kinship(dos), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.tools
def test_lmm_gwas__matches_gemma_lmm_per_chromosome_loco(toy: Cohort) -> None:
    if tools.GEMMA is None:
        pytest.skip("gemma is not on PATH (CI installs it with apt-get install gemma)")
    rows, y, design, _ = prepare(toy, "BMD", ["SW16"])
    ours = lmm_gwas(toy, "BMD", ["SW16"]).table
    v = toy.variants
    with tempfile.TemporaryDirectory() as tmp:
        ref = tools.gemma_lmm_loco(
            Path(tmp), toy.dosages[rows], list(v["id"]), v["chr"].to_numpy(), y, design
        )
    merged = ours.merge(ref, left_on="id", right_on="rs", suffixes=("", "_gemma"))
    assert len(merged) == len(ours)
    # |delta -log10 p| <= 1e-3 (Wald with per-SNP REML lambda; LRT with ML lambdas)
    assert np.max(np.abs(-np.log10(merged["p_wald"]) - merged["log10_p"])) <= 1e-3
    assert np.max(np.abs(-np.log10(merged["p_lrt_gemma"]) - merged["log10_p_lrt"])) <= 1e-3
    np.testing.assert_allclose(merged["lambda_remle"], merged["l_remle"], rtol=1e-3)
    np.testing.assert_allclose(merged["beta"], merged["beta_gemma"], rtol=1e-4, atol=1e-6)


def test_lmm_gwas__matches_committed_gemma_reference(toy: Cohort) -> None:
    """Same comparison as the GEMMA tool test, against its committed output
    (tests/reference/gemma_lmm_loco_toy0_BMD_SW16.tsv, from tests/reference/tools.py)."""
    ref = pd.read_csv(tools.REFERENCE_DIR / "gemma_lmm_loco_toy0_BMD_SW16.tsv", sep="\t")
    ours = lmm_gwas(toy, "BMD", ["SW16"]).table
    merged = ours.merge(ref, left_on="id", right_on="rs", suffixes=("", "_gemma"))
    assert len(merged) == len(ours) == len(ref)
    assert np.max(np.abs(-np.log10(merged["p_wald"]) - merged["log10_p"])) <= 1e-3
    assert np.max(np.abs(-np.log10(merged["p_lrt_gemma"]) - merged["log10_p_lrt"])) <= 1e-3
    np.testing.assert_allclose(merged["lambda_remle"], merged["l_remle"], rtol=1e-3)
    # GEMMA writes 7 significant digits
    np.testing.assert_allclose(merged["beta"], merged["beta_gemma"], rtol=1e-4, atol=1e-6)


def test_lambda_terms__chebyshev_matches_direct_sums() -> None:
    from dpgenome.lmm import _cov_terms, _LambdaTerms

    dos, y, w = _small()
    rot = rotate(centred_kinship(dos), y, w)
    terms = _LambdaTerms(rot)
    s = np.random.default_rng(0).uniform(-5, 5, 300)
    h = np.power(10.0, s)[None, :] * rot.d[:, None] + 1.0
    sumlogh, a, by, syy = terms(s)
    a0, by0, syy0 = _cov_terms(rot, 1.0 / h)
    # round-off level: 1e-10 absolute on sums of order n
    np.testing.assert_allclose(sumlogh, np.log(h).sum(axis=0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(a, a0, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(by, by0, rtol=1e-11, atol=1e-10)
    np.testing.assert_allclose(syy, syy0, rtol=1e-11, atol=1e-10)
