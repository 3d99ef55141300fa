"""Tests of the CFW-like simulator (dpgenome.simulate) and its phenotype model.

Reference values: r^2 decay bins quoted in issue 3 from a prototype of the same demography
(mean r^2 0.44 at 0-10 kb, 0.34 at 10-100 kb, 0.20 at 100 kb-1 Mb, 0.09 at 1-5 Mb), the real
GWAS of Parker et al. 2016 (lead SNP rs29477109, chr 11 at 95.29 Mb) and statsmodels OLS for
the calibration regression.
"""

from __future__ import annotations

import itertools
import json
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from dpgenome.errors import ConfigError
from dpgenome.phenomodel import fit_pheno_model
from dpgenome.simulate import (
    REAL_N,
    SimConfig,
    Simulated,
    calibration_gwas,
    colony_labels,
    load_panel,
    load_real_phenotypes,
    simulate,
)


@lru_cache(maxsize=1)
def _small() -> Simulated:
    """One simulation shared by several tests: the small preset (chromosomes 5 and 11, 400
    mice, loci calibrated to the real lead p-values) with a public panel of 100."""
    return simulate(SimConfig.small(n_public=100))


def _ld_bins(dos: np.ndarray, pos: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Mean r^2 of SNP pairs at distances 0-10 kb, 10-100 kb, 100 kb-1 Mb, 1-5 Mb."""
    z = (dos - dos.mean(0)) / dos.std(0)
    m = z.shape[1]
    first = rng.integers(0, m, 3000)
    bins = {
        "0-10kb": (0, 1e4),
        "10-100kb": (1e4, 1e5),
        "100kb-1Mb": (1e5, 1e6),
        "1-5Mb": (1e6, 5e6),
    }
    sums = {k: [] for k in bins}
    for lag in range(1, 300):
        second = first + lag
        ok = second < m
        a, b = first[ok], second[ok]
        dist = pos[b] - pos[a]
        r2 = (z[:, a] * z[:, b]).mean(0) ** 2
        for name, (lo, hi) in bins.items():
            sel = (dist >= lo) & (dist < hi)
            sums[name].append(r2[sel])
    return {k: float(np.mean(np.concatenate(v))) for k, v in sums.items()}


def test_simulate__ld_decays_with_distance_in_cfw_range() -> None:
    sim = _small()
    v = sim.cohort.variants
    sel = (v["chr"] == "11").to_numpy()
    bins = _ld_bins(sim.cohort.dosages[:, sel], v["pos"].to_numpy()[sel], np.random.default_rng(0))
    values = list(bins.values())
    assert all(a > b for a, b in itertools.pairwise(values)), bins
    # prototype: 0.44 / 0.34 / 0.20 / 0.09; one chromosome of 400 mice: +-0.12 absolute
    for got, want in zip(values, (0.44, 0.34, 0.20, 0.09), strict=True):
        assert abs(got - want) < 0.12, bins


def test_simulate__snps_at_real_panel_with_maf_above_2pct() -> None:
    sim = _small()
    panel = load_panel()
    want = panel[panel["chr"].isin(["5", "11"])].reset_index(drop=True)
    v = sim.cohort.variants
    assert v["id"].tolist() == want["id"].tolist()
    assert (v["pos"].to_numpy() == want["pos"].to_numpy()).all()
    assert sim.cohort.maf().min() > 0.02
    assert (v["ref"] != v["alt"]).all() and set(v["ref"]) | set(v["alt"]) <= set("ACGT")
    assert (v["quality"] > 0.95).all() and (v["quality"] < 1.0).mean() > 0.5


def test_simulate__imputed_entries_are_about_3pct_non_integer() -> None:
    dos = _small().cohort.dosages
    frac = float((dos != np.round(dos)).mean())
    assert 0.025 < frac < 0.035
    assert np.nanmin(dos) >= 0.0 and np.nanmax(dos) <= 2.0
    hard = simulate(SimConfig(n=100, chromosomes=("19",), imputed_fraction=0.0)).cohort.dosages
    assert (hard == np.round(hard)).all()


def test_simulate__same_seed_identical_other_seed_different() -> None:
    a = simulate(SimConfig(n=120, seed=3, chromosomes=("19",)))
    b = simulate(SimConfig(n=120, seed=3, chromosomes=("19",)))
    c = simulate(SimConfig(n=120, seed=4, chromosomes=("19",)))
    assert np.array_equal(a.cohort.dosages, b.cohort.dosages)
    pd.testing.assert_frame_equal(a.cohort.phenotypes, b.cohort.phenotypes)
    assert a.cohort.fingerprint() == b.cohort.fingerprint()
    assert a.truth == b.truth
    assert not np.array_equal(a.cohort.dosages, c.cohort.dosages)
    assert not a.cohort.phenotypes.equals(c.cohort.phenotypes)


def test_simulate__planted_association_at_real_locus() -> None:
    sim = _small()
    c = sim.cohort
    y = c.phenotype("abBMD")
    _, p = calibration_gwas(c.dosages, y, c.phenotype("SW16")[:, None])
    v = c.variants
    lead = int(np.argmin(p))
    assert v["chr"].iat[lead] == "11"
    assert abs(v["pos"].iat[lead] - 95_300_000) < 2_000_000
    # the small preset is calibrated to the real lead p-values (5.05e-14 on chromosome 11,
    # 2.1e-9 on chromosome 5), on hard calls: the GWAS on dosages agrees within 1 log10 unit
    assert 12.3 < -np.log10(p[lead]) < 14.3
    chr5 = (v["chr"] == "5").to_numpy()
    lead5 = np.flatnonzero(chr5)[np.argmin(p[chr5])]
    assert abs(v["pos"].iat[lead5] - 23_800_000) < 2_000_000
    assert 7.68 < -np.log10(p[lead5]) < 9.68
    ids = set(v["id"])
    assert {rec["chr"] for rec in sim.truth["causal_variants"]} == {"5", "11"}
    assert all(rec["id"] in ids for rec in sim.truth["causal_variants"])
    assert abs(np.nanmean(y) - 0.194) < 0.01


def test_calibration_gwas__matches_statsmodels_ols() -> None:
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(5)
    dos = rng.integers(0, 3, size=(200, 4)).astype(np.float32)
    cov = rng.normal(size=(200, 1))
    y = 0.4 * dos[:, 1] + cov[:, 0] + rng.normal(size=200)
    y[:7] = np.nan
    beta, p = calibration_gwas(dos, y, cov)
    ok = ~np.isnan(y)
    for j in range(4):
        fit = sm.OLS(y[ok], sm.add_constant(np.column_stack([cov[ok], dos[ok, j]]))).fit()
        assert beta[j] == pytest.approx(fit.params[2], rel=1e-9)
        assert p[j] == pytest.approx(fit.pvalues[2], rel=1e-6)


def test_simulate__real_table_row_for_row_at_1092() -> None:
    sim = simulate(SimConfig(n=REAL_N, chromosomes=("19",)))
    real = load_real_phenotypes()
    c = sim.cohort
    assert c.sample_ids.tolist() == real["id"].astype(str).tolist()
    assert not c.samples["discard"].any() and not c.samples["mixup"].any()
    planted = ("abBMD", "BMD", "abnormalbone")  # the trait, and the bone columns with it
    others = [col for col in real.columns if col not in ("id", *planted, "discard", "mixup")]
    # same columns in the same order (discard/mixup become sample flags)
    assert list(c.phenotypes.columns) == [
        col for col in real.columns if col not in ("id", "discard", "mixup")
    ]
    pd.testing.assert_frame_equal(c.phenotypes[others], real[others])
    # abBMD is re-generated but keeps the real missingness (960 observed) and case fraction
    observed = c.phenotypes["abBMD"].notna().to_numpy()
    assert np.array_equal(observed, real["abBMD"].notna().to_numpy()) and observed.sum() == 960
    assert abs(c.phenotypes["abBMD"].mean() - 0.194) < 0.005
    # the bone columns follow it as in the real table: abBMD is BMD above the line (r 0.83),
    # each value a real one of its class
    ab, bmd = c.phenotypes["abBMD"], c.phenotypes["BMD"]
    assert ((bmd > 1.9545) == (ab == 1))[observed].all() and bmd[~observed].isna().all()
    assert np.corrcoef(ab[observed], bmd[observed])[0, 1] == pytest.approx(0.83, abs=0.02)
    assert set(bmd[ab == 1]) <= set(real["BMD"][real["abBMD"] == 1])
    assert set(bmd[ab == 0]) <= set(real["BMD"][real["abBMD"] == 0])
    assert c.phenotypes[["abBMD", "abnormalbone"]].corr().iloc[0, 1] > 0.5  # real: 0.59


def test_bone_columns_follow__quantile_match_in_liability_order() -> None:
    """Cases take the real cases' (BMD, abnormalbone) pairs, controls the controls', the
    higher the liability the higher the BMD; without a BMD column nothing changes."""
    from dpgenome.phenomodel import bone_columns_follow

    real = pd.DataFrame({"BMD": [1.80, 1.90, 1.95, 2.00, 2.10], "abnormalbone": [0, 0, 1, 1, 0]})
    pheno = pd.DataFrame({"BMD": [9.0] * 5, "abnormalbone": [9.0] * 5, "x": range(5)})
    ab = np.array([1.0, 0.0, np.nan, 0.0, 1.0])
    liability = np.array([5.0, 2.0, 0.0, 1.0, 4.0])
    out = bone_columns_follow(pheno, ab, liability, real)
    # controls (rows 3, 1 in liability order) take the three donors' quantiles 1/4 and 3/4
    # (1.80, 1.95); cases (rows 4, 0) the two donors in order; pairs stay together
    assert out["BMD"].tolist()[:2] == [2.10, 1.95] and out["BMD"].tolist()[3:] == [1.80, 2.00]
    assert np.isnan(out["BMD"][2]) and out["abnormalbone"][2] == 9.0  # abBMD missing
    assert out["abnormalbone"].tolist() == [0.0, 1.0, 9.0, 0.0, 1.0]
    assert out["x"].tolist() == list(range(5))
    assert bone_columns_follow(pheno.drop(columns="BMD"), ab, liability, real).equals(
        pheno.drop(columns="BMD")
    )


def test_monotone_nearest__each_candidate_used_once_in_order() -> None:
    from dpgenome.simulate import _monotone_nearest

    candidates = np.array([10, 20, 30, 40, 50])
    # 11, 12 and 13 all want 10: they take 10, 20, 30; 49 takes 50
    assert _monotone_nearest(candidates, np.array([11, 12, 13, 49])).tolist() == [0, 1, 2, 4]
    # crowding at the right end pushes back left
    assert _monotone_nearest(candidates, np.array([48, 49, 50])).tolist() == [2, 3, 4]
    with pytest.raises(ConfigError, match="only 5 eligible"):
        _monotone_nearest(candidates, np.arange(6))


def test_simulate__public_panel_is_disjoint_and_genotype_only() -> None:
    sim = _small()
    assert sim.public is not None
    assert sim.public.n_samples == 100 and sim.public.phenotypes.shape[1] == 0
    assert not set(sim.public.sample_ids) & set(sim.cohort.sample_ids)
    assert sim.public.variants["id"].tolist() == sim.cohort.variants["id"].tolist()
    # same colony: allele frequencies agree within sampling error
    diff = sim.public.alt_frequency() - sim.cohort.alt_frequency()
    assert np.abs(diff).mean() < 0.05


def test_simconfig__colony_effects_are_normalised_or_refused() -> None:
    """One finite number per sub-colony, stored as a tuple of floats (truth.json takes it as
    written); anything else is a ConfigError naming the field."""
    cfg = SimConfig(colonies=2, colony_effects=[0, "1.5"]).validate()  # type: ignore[arg-type]
    assert cfg.colony_effects == (0.0, 1.5)
    assert SimConfig().validate().colony_effects is None
    for bad in ((0.0,), (0.0, float("nan")), ("a", "b"), (0.0, 1e300), (-11.0, 0.0)):
        with pytest.raises(ConfigError, match="colony_effects must be 2 numbers"):
            SimConfig(colonies=2, colony_effects=bad).validate()  # type: ignore[arg-type]
    assert SimConfig(colonies=2, colony_effects=(-10, 10)).validate().colony_effects
    # one colony: a shift the liability threshold absorbs, refused rather than ignored
    with pytest.raises(ConfigError, match="colony_effects need sub-colonies"):
        SimConfig(colony_effects=(3.0,)).validate()
    # msprime joins at most 100 populations in one event
    with pytest.raises(ConfigError, match=r"colonies must be in \[1, 99\]"):
        SimConfig(colonies=100).validate()


def test_simconfig__rejects_unknown_chromosome() -> None:
    with pytest.raises(ConfigError, match="unknown chromosome 'X'"):
        SimConfig(chromosomes=("X",)).validate()


def test_fit_pheno_model__keeps_marginals_correlations_missingness() -> None:
    real = load_real_phenotypes().drop(columns="id")
    model = fit_pheno_model(real)
    synth = model.sample(4000, np.random.default_rng(0))
    assert list(synth.columns) == list(real.columns)
    numeric = [c for c in real.columns if pd.api.types.is_numeric_dtype(real[c])]
    numeric = [c for c in numeric if real[c].notna().sum() > 1]
    ks = [stats.ks_2samp(real[c].dropna(), synth[c].dropna()).statistic for c in numeric]
    # marginals: KS distance (real n = 1092 vs 4000 draws) median < 0.02, max < 0.05
    assert np.median(ks) < 0.02 and max(ks) < 0.05
    # missingness rate per column within 2 percentage points
    assert np.abs(real.isna().mean() - synth.isna().mean()).max() < 0.02
    # Pearson correlations of the numeric columns: mean absolute error < 0.06
    err = (real[numeric].corr() - synth[numeric].corr()).abs().to_numpy()
    assert np.nanmean(err) < 0.06
    # one-hot columns rebuilt consistently from their parent
    sw16 = synth["SW16"].to_numpy()
    ok = synth["round"].notna().to_numpy()
    assert np.array_equal(sw16[ok], (synth["round"][ok] == "SW16").to_numpy(dtype=float))


def test_cli_simulate__writes_contract_files(tmp_path) -> None:
    from dpgenome.cli import main
    from dpgenome.io import read_cohort

    out = tmp_path / "cohort"
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            "--out",
            str(out),
            "--n",
            "60",
            "--seed",
            "2",
            "--format",
            "plink",
            "--chromosomes",
            "19",
            "--public-panel",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    pheno = pd.read_csv(out / "pheno.csv")
    assert {"id", "abBMD", "SW16", "round", "BMD"} <= set(pheno.columns)
    truth = json.loads((out / "truth.json").read_text())
    assert truth["n_samples"] == 60 and truth["config"]["chromosomes"] == ["19"]
    cohort = read_cohort(out)
    assert cohort.n_samples == 60 and set(cohort.variants["chr"]) == {"19"}
    public = read_cohort(out / "public")
    assert public.n_samples == 20
    assert np.array_equal(public.dosages, np.rint(public.dosages))  # plink: hard calls


def test_cli_simulate__says_when_a_small_cohort_falls_short_of_the_real_lead(tmp_path) -> None:
    """At 100 mice the chr-11 locus, capped at 60% of the liability, cannot reach the real
    lead's p ('pvalue' sizing): the command says so, naming the chi^2 reached and aimed at;
    at 400 it reaches it, and says nothing."""
    from dpgenome.cli import main

    def run(n: int) -> Any:
        out = tmp_path / f"c{n}"
        args = ["simulate", "--out", str(out), "--n", str(n), "--chromosomes", "11"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        return result, json.loads((out / "truth.json").read_text())["loci"][0]

    small, locus = run(100)
    assert locus["lead_chi2"] < 0.9 * locus["target_lead_chi2"]
    assert f"note: the chr11 locus reaches a lead chi^2 of {locus['lead_chi2']:.1f}" in (
        small.stderr
    )
    large, locus = run(400)
    assert locus["lead_chi2"] >= 0.9 * locus["target_lead_chi2"] and "note:" not in large.stderr


def test_cli_simulate__shard_writes_one_cohort_per_chromosome(tmp_path) -> None:
    from dpgenome.cli import main
    from dpgenome.io import read_cohort

    out = tmp_path / "sharded"
    args = ["simulate", "--out", str(out), "--n", "40", "--chromosomes", "18,19", "--shard"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["chr18", "chr19", "pheno.csv", "truth.json"]
    chr19 = read_cohort(out / "chr19")
    assert chr19.n_samples == 40 and set(chr19.variants["chr"]) == {"19"}
    assert len(pd.read_csv(out / "pheno.csv")) == 40


def test_cli_simulate__bad_chromosome_exits_2(tmp_path) -> None:
    from dpgenome.cli import main

    result = CliRunner().invoke(
        main, ["simulate", "--out", str(tmp_path / "c"), "--chromosomes", "5,23"]
    )
    assert result.exit_code == 2
    assert "unknown chromosome '23'" in result.output


def test_cli_simulate__colonies_give_structure_across_chromosomes(tmp_path) -> None:
    """``--colonies 2 --colony-shares 0.75,0.25``: truth.json records them, and on *each*
    chromosome the mice's sub-colony labels (:func:`colony_labels`, 3:1) split the allele
    frequencies far more than any random split of the same sizes (one ancestry per mouse,
    across its genome); ``--colony-effects 0,1.5`` makes abBMD a stratified trait (sub-colony
    1's liability 1.5 sds up: far more cases there); bad shares or effects exit 2 naming the
    option, writing nothing."""
    from dpgenome.cli import main
    from dpgenome.io import read_cohort

    out = tmp_path / "c"
    args = ["simulate", "--out", str(out), "--n", "200", "--chromosomes", "18,19"]
    structure = ["--colonies", "2", "--colony-shares", "0.75,0.25", "--colony-effects", "0,1.5"]
    result = CliRunner().invoke(main, [*args, *structure])
    assert result.exit_code == 0, result.output
    truth = json.loads((out / "truth.json").read_text())
    assert truth["config"]["colonies"] == 2 and truth["config"]["colony_shares"] == [0.75, 0.25]
    assert truth["config"]["colony_effects"] == [0.0, 1.5]
    assert "colony_effects" in truth["liability_model"]["formula"]
    cohort = read_cohort(out)
    colony, _ = colony_labels(
        SimConfig(n=200, seed=1, chromosomes=("18", "19"), colonies=2, colony_shares=(0.75, 0.25))
    )
    assert np.bincount(colony).tolist() == [150, 50]
    cases = cohort.phenotypes["abBMD"].to_numpy(dtype=float)
    rates = [np.nanmean(cases[colony == c]) for c in (0, 1)]
    assert rates[1] > rates[0] + 0.25, rates  # a 1.5-sd shift at a ~19% case line
    rng = np.random.default_rng(0)

    def split(x: np.ndarray, labels: np.ndarray) -> float:
        return float(np.abs(x[labels == 1].mean(axis=0) - x[labels == 0].mean(axis=0)).mean())

    for chrom in ("18", "19"):
        x = cohort.dosages[:, (cohort.variants["chr"] == chrom).to_numpy()]
        chance = max(split(x, rng.permutation(colony)) for _ in range(10))
        assert split(x, colony) > 1.8 * chance  # measured: 0.19 against at most 0.086
    bad_args = ["simulate", "--out", str(tmp_path / "d"), "--n", "200", "--chromosomes", "19"]
    bad = CliRunner().invoke(main, [*bad_args, "--colonies", "2", "--colony-shares", "1,1"])
    assert bad.exit_code == 2 and "colony_shares" in bad.output
    for effects, message in (("1", "colony_effects must be 2 numbers"), ("0,x", "numbers")):
        bad = CliRunner().invoke(main, [*bad_args, "--colonies", "2", "--colony-effects", effects])
        assert bad.exit_code == 2 and message in bad.output, bad.output
    bad = CliRunner().invoke(main, [*bad_args, "--colonies", "100"])
    assert bad.exit_code == 2 and "1<=x<=99" in bad.output, bad.output
    assert not (tmp_path / "d").exists()
