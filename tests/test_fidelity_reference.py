"""The cohort-level fidelity metrics against plink2 2.00a3.5 on the same files (stop 62's
review: each had been checked against the code's own output or hand examples only).

A toy cohort with 3% missing calls, written as PLINK files by ``dpgenome.io``, split in two
halves standing for a real and a synthetic cohort. Conventions that differ from plink2's
defaults are stated where they are tested: plink2 ``--adjust-file`` divides the median
chi-square by a rounded 0.456 and never reports a lambda below 1; the inbreeding F here is
plink2 ``--het``'s pooled ratio (sum of observed over sum of expected heterozygotes), not
the mean of its per-sample F.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dpgenome import fidelity as F
from dpgenome.gwas import lambda_gc
from dpgenome.io import write_cohort
from dpgenome.testing import ToyConfig, toy_cohort

PLINK2 = shutil.which("plink2")
pytestmark = pytest.mark.tools


def _plink(cwd: Path, *args: str) -> None:
    if PLINK2 is None:
        pytest.skip("plink2 is not on PATH (CI installs it: apt-get install plink2)")
    subprocess.run([PLINK2, *args, "--threads", "1"], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    root = tmp_path_factory.mktemp("fidelity_reference")
    cohort, _ = toy_cohort(0, ToyConfig(n=240, n_chrom=2, snps_per_chrom=200))
    dos = cohort.dosages.astype(np.float64)
    dos[np.random.default_rng(5).random(dos.shape) < 0.03] = np.nan
    cohort = replace(cohort, dosages=dos.astype(cohort.dosages.dtype))
    real, synth = cohort.take_samples(np.arange(120)), cohort.take_samples(np.arange(120, 240))
    write_cohort(real, root / "real", "plink")
    write_cohort(synth, root / "synth", "plink")
    return root, real, synth


def test_allele_frequencies__plink2_freq(halves) -> None:
    root, real, _ = halves
    _plink(root, "--bfile", "real/cohort", "--freq", "--out", "f")
    ref = pd.read_csv(root / "f.afreq", sep="\t").set_index("ID").loc[real.variants["id"]]
    alt = real.variants["alt"].to_numpy()
    want = np.where(ref["ALT"].to_numpy() == alt, ref["ALT_FREQS"], 1 - ref["ALT_FREQS"])
    np.testing.assert_allclose(real.alt_frequency(), want, atol=1e-6)


def test_inbreeding_and_heterozygosity__plink2_het_pooled(halves) -> None:
    root, real, _ = halves
    _plink(root, "--bfile", "real/cohort", "--het", "--out", "h")
    het = pd.read_csv(root / "h.het", sep="\t")
    observed = het["OBS_CT"] - het["O(HOM)"]
    expected = het["OBS_CT"] - het["E(HOM)"]
    ours = F.genotype_balance(real.dosages)
    assert ours["inbreeding"] == pytest.approx(1 - observed.sum() / expected.sum(), abs=2e-6)
    assert ours["observed"] == pytest.approx(observed.sum() / het["OBS_CT"].sum(), abs=1e-9)


def test_hardy_weinberg__plink2_hardy_with_missing_calls(halves) -> None:
    root, real, _ = halves
    _plink(root, "--bfile", "real/cohort", "--hardy", "--out", "w")
    ref = pd.read_csv(root / "w.hardy", sep="\t").set_index("ID").loc[real.variants["id"]]
    g = np.asarray(real.dosages, dtype=np.float64)
    counts = [(g == v).sum(axis=0) for v in (0, 1, 2)]
    np.testing.assert_allclose(F.hwe_exact_p(*counts), ref["P"], rtol=2e-5)


def test_missing_calls__plink2_missing(halves) -> None:
    root, real, _ = halves
    _plink(root, "--bfile", "real/cohort", "--missing", "--out", "m")
    smiss = pd.read_csv(root / "m.smiss", sep="\t")
    vmiss = pd.read_csv(root / "m.vmiss", sep="\t")
    missing = np.isnan(np.asarray(real.dosages, dtype=np.float64))
    ours = F.missing_calls(missing, missing)["real"]
    assert ours["share"] == pytest.approx(smiss["MISSING_CT"].sum() / smiss["OBS_CT"].sum())
    assert ours["individuals_over_5pct"] == pytest.approx((smiss["F_MISS"] > 0.05).mean())
    assert ours["snps_over_5pct"] == pytest.approx((vmiss["F_MISS"] > 0.05).mean())


def test_pca__plink2_pca_and_its_score_projection(halves) -> None:
    """The real cohort's axes as plink2 --pca meanimpute finds them (explained shares), and
    the synthetic cohort projected on them as plink2 --score variance-standardize
    no-mean-imputation does (the variance ratios per PC)."""
    root, real, synth = halves
    _plink(root, "--bfile", "real/cohort", "--freq", "--pca", "10", "allele-wts", "meanimpute",
           "--out", "pca")  # fmt: skip
    freq = pd.read_csv(root / "pca.afreq", sep="\t")
    poly = freq.loc[(freq["ALT_FREQS"] > 0) & (freq["ALT_FREQS"] < 1), "ID"]
    poly.to_csv(root / "poly.txt", index=False, header=False)
    for who in ("real", "synth"):
        _plink(root, "--bfile", f"{who}/cohort", "--extract", "poly.txt", "--read-freq",
               "pca.afreq", "--score", "pca.eigenvec.allele", "2", "5", "header-read",
               "no-mean-imputation", "variance-standardize", "cols=+scoresums",
               "--score-col-nums", "6-15", "--out", f"proj_{who}")  # fmt: skip
    shared = np.arange(real.n_variants)
    info, _, _ = F._pca(
        real, synth, shared, shared, real.alt_frequency(), np.random.default_rng(0), 20_000, 10, 5
    )
    proj = {w: pd.read_csv(root / f"proj_{w}.sscore", sep="\t") for w in ("real", "synth")}
    ratio = [
        proj["synth"][f"PC{k}_SUM"].var() / proj["real"][f"PC{k}_SUM"].var() for k in range(1, 11)
    ]
    np.testing.assert_allclose(info["variance_ratio_synthetic_over_real"], ratio, rtol=1e-5)
    eigen = np.loadtxt(root / "pca.eigenval")  # sv^2 / M (all SNPs): ratios are scale free
    explained = np.asarray(info["real_explained_variance"])
    np.testing.assert_allclose(explained / explained[0], eigen / eigen[0], rtol=1e-4)


@pytest.mark.parametrize(("m", "inflation"), [(2001, 1.0), (2000, 1.3), (5000, 2.5)])
def test_lambda_gc__plink2_adjust_file(tmp_path: Path, m: int, inflation: float) -> None:
    rng = np.random.default_rng(m)
    p = stats.chi2.sf(inflation * rng.chisquare(1, m), 1)
    table = pd.DataFrame({"#CHROM": 1, "POS": np.arange(m) + 1, "ID": [f"s{i}" for i in range(m)],
                          "A1": "A", "TEST": "ADD", "P": p})  # fmt: skip
    table.to_csv(tmp_path / "a.tsv", sep="\t", index=False, float_format="%.17g")
    _plink(tmp_path, "--adjust-file", "a.tsv", "test=ADD", "--out", "a")
    found = re.search(
        r"lambda \(based on median chisq\) = ([0-9.]+)", (tmp_path / "a.log").read_text()
    )
    assert found is not None
    theirs = float(found.group(1).rstrip("."))
    ours = lambda_gc(-np.log10(p))
    # plink2 divides by 0.456, not chi2.ppf(0.5, 1) = 0.45494, and reports at least 1
    assert theirs == pytest.approx(max(1.0, ours * stats.chi2.ppf(0.5, 1) / 0.456), rel=1e-5)
    assert ours == pytest.approx(np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1), rel=1e-5)
