"""Linear GWAS: hand-computable case, statsmodels per-SNP oracle, mpmath tail values, and the
real tools (plink2 ``--glm``, GEMMA ``-lm 1``; see tests/reference/tools.py)."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import mpmath
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from dpgenome.cohort import Cohort, qc
from dpgenome.errors import CohortError
from dpgenome.gwas import (
    GWAS_COLUMNS,
    Collinearity,
    chi2_1df_log10_p,
    find_collinearity,
    lambda_gc,
    linear_gwas,
    linear_scan,
    prepare,
    require_full_rank,
    t_test_log10_p,
)
from dpgenome.testing import toy_cohort
from reference import tools


@pytest.fixture(scope="module")
def toy() -> Cohort:
    cohort, _ = toy_cohort(0)
    return qc(cohort)[0]


def _mp_log10_t(t: float, df: int) -> float:
    mpmath.mp.dps = 40
    x = mpmath.mpf(df) / (df + mpmath.mpf(t) ** 2)
    return float(-mpmath.log10(mpmath.betainc(mpmath.mpf(df) / 2, 0.5, 0, x, regularized=True)))


@pytest.mark.parametrize(("df", "t_max"), [(3, 1e6), (100, 1e6), (958, 1e3), (20_000, 40.0)])
def test_t_test_log10_p__matches_mpmath_into_far_tail(df: int, t_max: float) -> None:
    ts = np.array([0.1, 1.0, 2.5, 6.0, 12.0, 30.0, t_max])
    got = t_test_log10_p(ts, df)
    want = np.array([_mp_log10_t(t, df) for t in ts])
    # relative 1e-9 (absolute 1e-12 near 0)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    if df >= 100:
        assert want[-1] > 320  # p itself would underflow a double


def test_chi2_1df_log10_p__matches_mpmath() -> None:
    stats_ = np.array([0.0, 0.5, 3.84, 30.0, 1500.0, 4000.0])
    got = chi2_1df_log10_p(stats_)
    mpmath.mp.dps = 40
    want = [float(-mpmath.log10(mpmath.erfc(mpmath.sqrt(mpmath.mpf(s) / 2)))) for s in stats_]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_linear_scan__hand_computable_tiny_case() -> None:
    # y on x with an intercept: xbar = 1.2, Sxx = 2.8, Sxy = 5.8, Syy = 14.8, so
    # beta = 29/14, RSS = Syy - Sxy^2/Sxx = 39/14, df = 3, se^2 = RSS / 3 / Sxx = 39/117.6
    x = np.array([[0.0], [1.0], [1.0], [2.0], [2.0]])
    y = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
    res = linear_scan(x, y, dtype=np.float64)
    beta, se = 29 / 14, np.sqrt(39 / 117.6)
    assert res.df == 3
    assert res.beta[0] == pytest.approx(beta, rel=1e-12)
    assert res.se[0] == pytest.approx(se, rel=1e-12)
    assert res.t_stat[0] == pytest.approx(beta / se, rel=1e-12)
    assert res.log10_p[0] == pytest.approx(_mp_log10_t(beta / se, 3), rel=1e-10)


def test_linear_scan__matches_statsmodels_ols_per_snp(toy: Cohort) -> None:
    rows, y, design, names = prepare(toy, "BMD", ["bw", "round"])
    # round has levels SW14..SW18: one-hot with the first level dropped, as plink2 does
    assert names == ["bw", "round=SW15", "round=SW16", "round=SW17", "round=SW18"]
    dos = toy.dosages[rows][:, :120]
    res = linear_scan(dos, y, design, dtype=np.float64)
    for j in range(dos.shape[1]):
        exog = sm.add_constant(np.column_stack([design, dos[:, j].astype(np.float64)]))
        fit = sm.OLS(y, exog).fit()
        assert res.beta[j] == pytest.approx(fit.params[-1], rel=1e-9, abs=1e-12)
        assert res.se[j] == pytest.approx(fit.bse[-1], rel=1e-9)
        assert res.log10_p[j] == pytest.approx(-np.log10(fit.pvalues[-1]), rel=1e-8, abs=1e-10)


def test_linear_scan__float32_agrees_with_float64(toy: Cohort) -> None:
    rows, y, design, _ = prepare(toy, "abBMD", ["SW16"])
    r32 = linear_scan(toy.dosages, y, design, rows=rows, dtype=np.float32)
    r64 = linear_scan(toy.dosages[rows], y, design, dtype=np.float64)
    assert np.nanmax(np.abs(r32.log10_p - r64.log10_p)) < 1e-4
    assert np.nanmax(np.abs(r32.beta - r64.beta) / np.abs(r64.se)) < 1e-4


def test_linear_scan__mean_imputes_missing_dosages() -> None:
    rng = np.random.default_rng(3)
    dos = rng.integers(0, 3, size=(200, 30)).astype(np.float64)
    y = dos[:, 0] * 0.5 + rng.normal(size=200)
    holes = dos.copy()
    holes[rng.random(holes.shape) < 0.1] = np.nan
    filled = np.where(np.isnan(holes), np.nanmean(holes, axis=0), holes)
    got = linear_scan(holes, y, dtype=np.float64)
    want = linear_scan(filled, y, dtype=np.float64)
    np.testing.assert_allclose(got.log10_p, want.log10_p, rtol=1e-12)


def test_linear_scan__monomorphic_snp_gives_nan() -> None:
    dos = np.column_stack([np.ones(50), np.arange(50) % 3]).astype(np.float32)
    res = linear_scan(dos, np.arange(50.0))
    assert np.isnan(res.log10_p[0]) and np.isfinite(res.log10_p[1])


def test_linear_scan__collinear_covariates_raise() -> None:
    cov = np.column_stack([np.arange(10.0), 2 * np.arange(10.0)])
    with pytest.raises(CohortError, match="collinear"):
        linear_scan(np.ones((10, 2)), np.arange(10.0), cov)
    with pytest.raises(CohortError) as err:
        linear_scan(np.ones((10, 2)), np.arange(10.0), cov, covariate_names=["age", "age2"])
    assert err.value.message == (
        "covariates age and age2 are collinear among the 10 samples analysed, so the design "
        "[intercept + covariates] is rank-deficient: drop one of age and age2 from the "
        "covariates"
    )


def test_find_collinearity__names_the_covariates_at_fault() -> None:
    """The first covariate in the span of the intercept and the covariates before it, and
    those it depends on; whatever the covariates' units."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=40), rng.normal(size=40)
    assert find_collinearity(np.column_stack([a, b]), ["a", "b"]) is None
    assert find_collinearity(np.column_stack([a, np.full(40, 7.0)]), ["a", "c"]) == Collinearity(
        ("c",), constant=True
    )
    assert find_collinearity(np.column_stack([a, b, 3 * a + 2]), ["a", "b", "c"]) == (
        Collinearity(("a", "c"))
    )
    assert find_collinearity(np.column_stack([a, b, a - b]), ["a", "b", "c"]) == (
        Collinearity(("a", "b", "c"))
    )
    # grams and micrograms of one measurement: collinear; two scales of two: not
    assert find_collinearity(np.column_stack([a, a * 1e6]), ["g", "ug"]) == Collinearity(
        ("g", "ug")
    )
    assert find_collinearity(np.column_stack([a * 1e-9, b * 1e9]), ["a", "b"]) is None
    assert find_collinearity(np.column_stack([a, np.zeros(40)]), None) == Collinearity(
        ("column 2",), constant=True
    )
    assert Collinearity(("c",), constant=True).describe("the 40 rows") == (
        "covariate c is constant among the 40 rows"
    )


def test_linear_gwas__collinear_covariates_are_named(toy: Cohort) -> None:
    """A categorical covariate's one-hot columns collinear with a 0/1 one (the toy's SW16 is
    round == SW16), and a covariate constant over the samples analysed: named, with the
    samples' count."""
    n = int(toy.phenotypes[["BMD", "round"]].notna().all(axis=1).sum())
    with pytest.raises(CohortError, match=f"covariates round and SW16 are collinear among the {n}"):
        linear_gwas(toy, "BMD", ["round", "SW16"])
    pheno = toy.phenotypes.copy()
    pheno["SW16"] = 0.0
    flat = replace(toy, phenotypes=pheno)
    with pytest.raises(CohortError, match="covariate SW16 is constant among the"):
        linear_gwas(flat, "BMD", ["SW16"])
    # the same, checked before any work, worded by the caller, with the file and column
    with pytest.raises(CohortError) as err:
        require_full_rank(
            flat, "BMD", ["bw", "SW16"], among="the {n} rows", subject="S", file="p.csv"
        )
    rows = int(pheno[["BMD", "bw"]].notna().all(axis=1).sum())
    assert (err.value.file, err.value.line, err.value.column) == ("p.csv", None, "SW16")
    assert err.value.message == (
        "S [intercept + covariates] is rank-deficient: covariate SW16 is constant among the "
        f"{rows} rows: drop SW16 from the covariates (--covar)"
    )
    require_full_rank(toy, "BMD", ["bw", "SW16"], among="the {n} rows")  # full rank: passes


def test_linear_scan__extreme_association_keeps_exact_log10_p() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, size=(3000, 1)).astype(np.float64)
    y = x[:, 0] + 0.01 * rng.normal(size=3000)
    res = linear_scan(x, y, dtype=np.float64)
    assert res.p[0] == 0.0  # below the double range
    assert res.log10_p[0] == pytest.approx(_mp_log10_t(res.t_stat[0], res.df), rel=1e-9)
    assert res.log10_p[0] > 1000


def test_linear_gwas__table_columns_and_analysis_subset(toy: Cohort) -> None:
    res = linear_gwas(toy, "abBMD", ["SW16"])
    assert tuple(res.table.columns) == GWAS_COLUMNS
    observed = toy.phenotypes[["abBMD", "SW16"]].notna().all(axis=1).sum()
    assert res.n == observed and (res.table["n"] == observed).all()
    assert len(res.table) == toy.n_variants
    assert "mean-impute" in res.missing_policy
    assert res.lambda_gc == pytest.approx(lambda_gc(res.table["log10_p"].to_numpy()))
    # the planted QTL on chromosome 1 is the top hit
    assert res.table.loc[res.table["log10_p"].idxmax(), "chr"] in {"1", "2"}


def test_linear_gwas__categorical_phenotype_raises(toy: Cohort) -> None:
    with pytest.raises(CohortError, match="categorical"):
        linear_gwas(toy, "round")


def test_lambda_gc__uniform_p_values_near_one() -> None:
    p = np.random.default_rng(0).random(200_000)
    assert lambda_gc(-np.log10(p)) == pytest.approx(1.0, abs=0.01)


# ---------------------------------------------------------------------------- real tools


@pytest.mark.tools
def test_linear_gwas__matches_plink2_glm(toy: Cohort) -> None:
    if tools.PLINK2 is None:
        pytest.skip("plink2 is not on PATH (CI installs it with apt-get install plink2)")
    # abBMD is 0/1: the helper shifts it so plink2 runs linear, not logistic, regression
    rows, y, design, _ = prepare(toy, "abBMD", ["bw", "round"])
    res = linear_gwas(toy, "abBMD", ["bw", "round"], dtype=np.float64).table
    v = toy.variants
    with tempfile.TemporaryDirectory() as tmp:
        ref = tools.plink2_glm(
            Path(tmp),
            toy.dosages[rows],
            list(v["id"]),
            v["chr"].to_numpy(),
            v["pos"].to_numpy(),
            y,
            design,
        )
    merged = res.merge(ref, left_on="id", right_on="ID")
    assert len(merged) == len(res)
    # |delta -log10 p| <= 1e-4 against plink2's printed precision (6 significant digits)
    assert np.max(np.abs(-np.log10(merged["P"]) - merged["log10_p"])) <= 1e-4
    # plink2 may report A1 = the other allele ("B" instead of the dosage allele "A"):
    # orient its effects on A1 before comparing signs and magnitudes
    assert (merged["A1"] == "B").any()
    sign = np.where(merged["A1"] == "A", 1.0, -1.0)
    np.testing.assert_allclose(sign * merged["BETA"], merged["beta"], rtol=1e-4, atol=1e-6)


@pytest.mark.tools
def test_linear_gwas__matches_gemma_lm_with_fractional_and_missing_dosages(toy: Cohort) -> None:
    if tools.GEMMA is None:
        pytest.skip("gemma is not on PATH (CI installs it with apt-get install gemma)")
    rng = np.random.default_rng(7)
    dos = toy.dosages.astype(np.float64)
    dos = np.clip(
        dos + rng.normal(scale=0.05, size=dos.shape) * (rng.random(dos.shape) < 0.2), 0, 2
    )
    dos[rng.random(dos.shape) < 0.01] = np.nan
    cohort = type(toy)(dos, toy.variants, toy.samples, toy.phenotypes, dict(toy.pheno_types))
    rows, y, design, _ = prepare(cohort, "BMD", ["SW16"])
    ours = linear_scan(cohort.dosages.astype(np.float64)[rows], y, design, dtype=np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        files = tools.write_bimbam(
            Path(tmp),
            cohort.dosages.astype(np.float64)[rows],
            list(toy.variants["id"]),
            y,
            design,
        )
        ref = tools.gemma_lm(Path(tmp), files)
    idx = toy.variants["id"].reset_index().set_index("id").loc[ref["rs"], "index"].to_numpy()
    # GEMMA mean-imputes missing genotypes too; |delta -log10 p| <= 1e-5 (printed 7 digits)
    assert np.max(np.abs(-np.log10(ref["p_wald"].to_numpy()) - ours.log10_p[idx])) <= 1e-5
    np.testing.assert_allclose(ref["beta"], ours.beta[idx], rtol=1e-5, atol=1e-7)


def test_linear_gwas__matches_committed_plink2_reference(toy: Cohort) -> None:
    """Same comparison as the plink2 tool test, against its committed output
    (tests/reference/plink2_glm_toy0_abBMD_bw_round.tsv, from tests/reference/tools.py)."""
    ref = pd.read_csv(tools.REFERENCE_DIR / "plink2_glm_toy0_abBMD_bw_round.tsv", sep="\t")
    res = linear_gwas(toy, "abBMD", ["bw", "round"], dtype=np.float64).table
    merged = res.merge(ref, left_on="id", right_on="ID")
    assert len(merged) == len(res) == len(ref)
    assert (merged["OBS_CT"] == merged["n"]).all()
    assert np.max(np.abs(-np.log10(merged["P"]) - merged["log10_p"])) <= 1e-4
    sign = np.where(merged["A1"] == "A", 1.0, -1.0)
    np.testing.assert_allclose(sign * merged["BETA"], merged["beta"], rtol=1e-4, atol=1e-6)


def test_linear_scan__float32_relative_accuracy_on_huge_signals() -> None:
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, size=(20_000, 40)).astype(np.float32)
    y = x[:, :20].astype(np.float64) @ rng.uniform(0.05, 0.3, 20) + rng.normal(size=20_000)
    r32 = linear_scan(x, y, dtype=np.float32)
    r64 = linear_scan(x, y, dtype=np.float64)
    assert r64.log10_p.max() > 100
    rel = np.abs(r32.log10_p - r64.log10_p) / np.maximum(r64.log10_p, 1.0)
    assert rel.max() < 1e-4


def _awkward_plink_cohort(directory: Path) -> None:
    """A PLINK cohort with what real files hold: chromosomes out of order (10, 2, 1), two
    SNPs at one position, a monomorphic and a near-monomorphic SNP, one SNP called in 15%
    of the samples, phenotype and covariates missing for some samples, and a text
    covariate whose first level in sorted order (A) is not the first one in the file."""
    from dpgenome.io.plink import write_plink

    rng = np.random.default_rng(5)
    n, per_chrom = 240, 50
    chroms = np.repeat(["10", "2", "1"], per_chrom)
    pos = np.concatenate([np.sort(rng.choice(10**7, per_chrom, replace=False)) for _ in range(3)])
    pos[61] = pos[60]  # duplicated position on chr 2
    dos = rng.binomial(2, rng.uniform(0.1, 0.9, 3 * per_chrom), size=(n, 3 * per_chrom))
    dos = dos.astype(np.float64)
    dos[:, 55] = 0.0  # monomorphic
    dos[:, 56] = 0.0
    dos[rng.choice(n, 14, replace=False), 56] = 1.0  # MAF 2.9%: passes the 2% QC
    dos[rng.random(n) < 0.85, 57] = np.nan  # few calls (mean-imputed: not compared)
    site = rng.choice(["B", "A", "C"], n).astype(object)
    age = rng.normal(10, 2, n)
    y = 0.5 * dos[:, 70] + 0.4 * (site == "C") + 0.1 * age + rng.normal(size=n)
    y[rng.random(n) < 0.1] = np.nan
    site[rng.random(n) < 0.05] = None
    age[rng.random(n) < 0.05] = np.nan
    variants = pd.DataFrame({"id": [f"rs{j}" for j in range(len(pos))], "chr": chroms})
    variants = variants.assign(pos=pos, ref="G", alt="T")
    samples = pd.DataFrame({"id": [f"M{i:03d}" for i in range(n)]})
    pheno = pd.DataFrame({"y": y, "site": site, "age": age})
    write_plink(Cohort(dos.astype(np.float32), variants, samples, pheno, {}), directory, "c")


@pytest.mark.tools
def test_linear_gwas__matches_plink2_on_an_awkward_plink_cohort(tmp_path: Path) -> None:
    """End to end against plink2 reading the same .bed and phenotype table itself: plink2
    drops the samples missing y or a covariate and one-hot encodes the text covariate on
    its own, so this checks the analysis subset and the design, not just the scan. SNPs with
    a missing call are left out (plink2 drops the sample, dpgenome mean-imputes)."""
    if tools.PLINK2 is None:
        pytest.skip("plink2 is not on PATH (CI installs it with apt-get install plink2)")
    import subprocess

    from dpgenome.cohort import analysis_subset
    from dpgenome.io import read_cohort

    _awkward_plink_cohort(tmp_path)
    cleaned, report = qc(read_cohort(tmp_path))
    ours = linear_gwas(
        analysis_subset(cleaned, "y", ["site", "age"], report),
        "y",
        ["site", "age"],
        dtype=np.float64,
    ).table
    assert "rs55" not in set(ours["id"]) and {"rs56", "rs57"} <= set(ours["id"])
    ph = pd.read_csv(tmp_path / "pheno.csv")
    fid = {"#FID": ph["id"], "IID": ph["id"]}
    pd.DataFrame(fid | {"y": ph["y"]}).to_csv(
        tmp_path / "p.pheno", sep="\t", index=False, na_rep="NA"
    )
    covar = pd.DataFrame(fid | {"site": ph["site"].fillna("NONE"), "age": ph["age"]})
    covar.to_csv(tmp_path / "p.covar", sep="\t", index=False, na_rep="NA")
    subprocess.run(
        [
            *(tools.PLINK2, "--bfile", "c", "--pheno", "p.pheno", "--covar", "p.covar"),
            *("--glm", "hide-covar", "--threads", "1", "--out", "ref"),
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    ref = pd.read_csv(tmp_path / "ref.y.glm.linear", sep="\t")
    merged = ours.merge(ref, left_on="id", right_on="ID")
    assert len(merged) == len(ours)
    complete = merged[merged["OBS_CT"] == merged["n"]]
    assert len(complete) == len(merged) - 1  # all but the SNP with few calls
    assert merged.loc[merged["id"] == "rs57", "OBS_CT"].item() < 0.3 * ours["n"].iloc[0]
    assert np.max(np.abs(-np.log10(complete["P"]) - complete["log10_p"])) <= 1e-4
    sign = np.where(complete["A1"] == complete["a1"], 1.0, -1.0)
    np.testing.assert_allclose(sign * complete["BETA"], complete["beta"], rtol=1e-4, atol=1e-6)
