"""Fidelity metrics (hand-counted fixtures, identity and destroyed-LD cases), SVG plots and
the ``gwas`` / ``compare`` commands."""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from dpgenome.cli import main
from dpgenome.cohort import Cohort, PhenoType, qc, swap_alleles
from dpgenome.errors import InputError
from dpgenome.fidelity import (
    cohort_fidelity,
    genotype_balance,
    hwe_exact_p,
    ld_pairs,
    pair_r2,
    pca_histogram,
)
from dpgenome.gwas import linear_gwas
from dpgenome.gwas_comparison import (
    clump_loci,
    compare_gwas,
    gwas_rows,
    read_gwas_tsv,
    threshold_key,
)
from dpgenome.pheno_fidelity import phenotype_marginals, phenotype_missingness
from dpgenome.plots import manhattan_svg
from dpgenome.testing import toy_cohort
from reference import tools


def _table(rows: list[tuple[str, str, int, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id", "chr", "pos", "beta", "log10_p"])


# real: hits at 1e-8 = a, b, c (chr1 two loci: a,b within 1 Mb; c far), d only at 2e-6
REAL = _table(
    [
        ("a", "1", 1_000_000, 0.5, 12.0),
        ("b", "1", 1_400_000, 0.4, 9.0),
        ("c", "1", 9_000_000, -0.3, 8.5),
        ("d", "2", 5_000_000, 0.2, 6.0),
        ("e", "2", 7_000_000, 0.1, 1.0),
        ("f", "3", 1_000_000, 0.0, 0.2),
    ]
)
# synthetic: hits at 1e-8 = a, e (e is spurious at the locus level), c at 2e-6 only;
# c's effect has the opposite sign; "z" is only in the synthetic table
SYNTH = _table(
    [
        ("a", "1", 1_000_000, 0.45, 10.0),
        ("b", "1", 1_400_000, 0.30, 7.0),
        ("c", "1", 9_000_000, 0.10, 6.5),
        ("d", "2", 5_000_000, 0.25, 2.0),
        ("e", "2", 7_000_000, 0.30, 8.2),
        ("f", "3", 1_000_000, 0.01, 0.1),
        ("z", "3", 2_000_000, 0.01, 0.1),
    ]
)


def test_threshold_key__matches_architecture_doc() -> None:
    assert threshold_key(1e-8) == "1e-08" and threshold_key(2e-6) == "2e-06"


def test_compare_gwas__hand_counted_fixture() -> None:
    cmp = compare_gwas(REAL, SYNTH)
    d = cmp.to_dict()
    t8, t6 = d["thresholds"]["1e-08"], d["thresholds"]["2e-06"]
    assert (t8["real_hits"], t8["synthetic_hits"], t8["overlap"]) == (3, 2, 1)
    assert t8["recall"] == pytest.approx(1 / 3) and t8["precision"] == pytest.approx(1 / 2)
    assert t8["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    # 2e-6 (-log10 = 5.699): real a,b,c,d; synthetic a,b,c,e
    assert (t6["real_hits"], t6["synthetic_hits"], t6["overlap"]) == (4, 4, 3)
    # e is the one synthetic-only hit at 1e-8, at real -log10 p 1.0 (not even suggestive);
    # the 2e-6 row is the support threshold itself: no breakdown there
    assert (t8["false_hits"], t8["false_hits_supported"]) == (1, 0)
    assert t8["false_hits_real_log10_p"] == [1.0, 1.0] and "false_hits" not in t6
    loci = d["loci"]
    # real loci: {a,b} and {c}; synthetic loci: {a} and {e}: one recovered, one spurious
    assert (loci["real_loci"], loci["synthetic_loci"]) == (2, 2)
    assert (loci["recovered"], loci["spurious"], loci["unmatched"]) == (1, 1, 1)
    assert d["snps"] == {
        "shared": 6,
        "only_real": 0,
        "only_synthetic": 1,
        "matching": d["snps"]["matching"],
    }
    # effects at the 3 real hits (1e-8): real (.5,.4,-.3) vs synthetic (.45,.3,.1)
    assert d["sign_agreement_at_real_hits"] == pytest.approx(2 / 3)
    want = np.corrcoef([0.5, 0.4, -0.3], [0.45, 0.3, 0.1])[0, 1]
    assert d["effect_correlation_at_real_hits"] == pytest.approx(want)
    # size: (.5*.45 + .4*.3 - .3*.1) / (.25 + .16 + .09) = .315 / .5; at the real lead a
    assert d["effect_ratio_at_real_hits"] == pytest.approx(0.63)
    assert d["effect_ratio_at_real_lead"] == pytest.approx(0.9)
    assert -1 <= d["spearman_log10p"] <= 1
    json.dumps(d, allow_nan=False)


def test_compare_gwas__a_locus_the_real_gwas_shows_below_the_line_is_not_spurious() -> None:
    """A synthetic 1e-8 locus 2 Mb from every real one is unmatched; it is spurious only when
    no real SNP within the window reaches the support threshold (2e-6 by default)."""
    real = _table(
        [
            ("a", "1", 1_000_000, 0.5, 12.0),
            ("g", "1", 3_000_000, 0.3, 7.3),  # real p 5e-8: under the line, at the locus
            ("h", "1", 3_900_000, 0.1, 1.0),
            ("k", "2", 1_000_000, 0.1, 5.0),  # real p 1e-5: below the support threshold
            ("m", "2", 1_800_000, 0.1, 1.0),
        ]
    )
    synth = _table(
        [
            ("a", "1", 1_000_000, 0.5, 11.0),
            ("g", "1", 3_000_000, 0.3, 8.5),
            ("h", "1", 3_900_000, 0.1, 8.1),
            ("k", "2", 1_000_000, 0.1, 1.0),
            ("m", "2", 1_800_000, 0.1, 9.0),
        ]
    )
    d = compare_gwas(real, synth).to_dict()
    loci = d["loci"]
    # SNP level at 1e-8: g, h and m are synthetic-only hits; g alone is suggestive (7.3)
    t8 = d["thresholds"]["1e-08"]
    assert (t8["false_hits"], t8["false_hits_supported"]) == (3, 1)
    assert t8["false_hits_real_log10_p"] == [1.0, 7.3]
    # synthetic loci: {a}, {g, h} (h within 1 Mb of g), {m}
    assert (loci["synthetic_loci"], loci["unmatched"], loci["spurious"]) == (3, 2, 1)
    rows = {r["lead_id"]: r for r in loci["table"] if r["source"] == "synthetic"}
    assert rows["g"]["supported"] and not rows["g"]["matched"]
    assert not rows["m"]["supported"]  # k (1e-5) is within 1 Mb but not suggestive
    assert loci["support_threshold"] == 2e-6 and "2e-06" in loci["method"]
    # with the support threshold at the primary one, unmatched = spurious
    strict = compare_gwas(real, synth, support_threshold=1e-8).to_dict()
    assert strict["loci"]["spurious"] == strict["loci"]["unmatched"] == 2
    assert "false_hits" not in strict["thresholds"]["1e-08"]


def test_compare_gwas__identical_results_are_perfect() -> None:
    cohort, _ = toy_cohort(0)
    res = linear_gwas(qc(cohort)[0], "abBMD", ["SW16"])
    d = compare_gwas(res, res).to_dict()
    for level in d["thresholds"].values():
        assert level["recall"] == 1.0 and level["precision"] == 1.0 and level["f1"] == 1.0
    assert d["spearman_log10p"] == pytest.approx(1.0)
    assert d["lambda_gc"]["real"] == d["lambda_gc"]["synthetic"]
    assert d["loci"]["recovered"] == d["loci"]["real_loci"] >= 1 and d["loci"]["spurious"] == 0
    assert d["sign_agreement_at_real_hits"] == 1.0


def test_compare_gwas__flips_effect_sign_when_a1_differs() -> None:
    real = REAL.assign(a1="A")
    synth = SYNTH.assign(a1=np.where(SYNTH["id"] == "c", "G", "A"), beta=SYNTH["beta"])
    d = compare_gwas(real, synth).to_dict()
    # c counts the other allele: its 0.1 becomes -0.1 and agrees with the real -0.3
    assert d["sign_agreement_at_real_hits"] == 1.0
    synth2 = synth.assign(beta=np.where(synth["id"] == "c", -0.1, synth["beta"]))
    assert compare_gwas(real, synth2).to_dict()["sign_agreement_at_real_hits"] == pytest.approx(
        2 / 3
    )


def test_clump_loci__distance_window() -> None:
    loci = clump_loci(REAL, 8.0, 500_000)
    assert loci["lead_id"].tolist() == ["a", "c"]
    assert loci.loc[0, ["start", "end", "n_snps"]].tolist() == [1_000_000, 1_400_000, 2]
    assert len(clump_loci(REAL, 8.0, 100_000)) == 3  # b is too far from a


def test_clump_loci__one_long_block_is_one_locus() -> None:
    """Hits every 0.4 Mb over 5 Mb of one chromosome (a CFW QTL's LD block) and one hit 3 Mb
    beyond it: clumping at 1 Mb gives several clumps along the block, merged into one locus
    led by the block's strongest SNP; the far hit stays apart; ``merge=False`` keeps the
    clumps."""
    pos = np.r_[np.arange(10_000_000, 15_000_001, 400_000), 18_000_000]
    lp = np.r_[np.linspace(9.0, 12.0, len(pos) - 1), 9.5]
    table = pd.DataFrame(
        {"id": [f"s{i}" for i in range(len(pos))], "chr": "11", "pos": pos, "log10_p": lp}
    )
    clumps = clump_loci(table, 8.0, 1_000_000, merge=False)
    assert len(clumps) >= 4
    loci = clump_loci(table, 8.0, 1_000_000)
    assert len(loci) == 2
    block = loci.iloc[0]
    assert (block["start"], block["end"], block["n_snps"]) == (10_000_000, 14_800_000, 13)
    assert block["lead_id"] == "s12" and block["n_clumps"] == len(clumps) - 1
    assert loci.iloc[1][["lead_id", "n_snps", "n_clumps"]].tolist() == ["s13", 1, 1]


def test_read_gwas_tsv__bad_value_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "g.tsv"
    REAL.assign(pos=REAL["pos"].astype(object).where(REAL["id"] != "c", "x")).to_csv(
        path, sep="\t", index=False
    )
    with pytest.raises(InputError) as err:
        read_gwas_tsv(path)
    assert err.value.line == 4 and err.value.column == "pos" and str(path) in str(err.value)
    REAL.drop(columns="pos").to_csv(path, sep="\t", index=False)
    with pytest.raises(InputError, match="pos"):
        read_gwas_tsv(path)


def test_ld_pairs__seeded_and_within_distance() -> None:
    cohort, _ = toy_cohort(0)
    i, j = ld_pairs(cohort.variants, max_distance_bp=200_000, pairs_per_chrom=500, seed=4)
    i2, j2 = ld_pairs(cohort.variants, max_distance_bp=200_000, pairs_per_chrom=500, seed=4)
    assert (i == i2).all() and (j == j2).all() and len(i) == 3 * 500
    v = cohort.variants
    assert (v["chr"].to_numpy()[i] == v["chr"].to_numpy()[j]).all()
    dist = v["pos"].to_numpy()[j] - v["pos"].to_numpy()[i]
    assert (dist > 0).all() and (dist <= 200_000).all()


def test_cohort_fidelity__identical_cohort_is_exact() -> None:
    cohort, _ = toy_cohort(0)
    fid = cohort_fidelity(cohort, cohort, seed=1)
    d = fid.to_dict()
    assert d["allele_frequency_correlation"] == pytest.approx(1.0)
    assert d["ld_decay_error"] == pytest.approx(0.0, abs=1e-12)
    assert d["phenotype_correlation_error"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(d["pca"]["variance_ratio_synthetic_over_real"], 1.0, rtol=1e-9)
    assert d["pca"]["centroid_distance_pc12_sd"] == pytest.approx(0.0, abs=1e-9)
    assert d["phenotypes_compared"] == ["abBMD", "BMD", "bw", "SW16"]
    assert d["phenotype_marginal_error"] == pytest.approx(0.0, abs=1e-12)
    assert d["phenotype_marginals"]["max_abs_smd"] == pytest.approx(0.0, abs=1e-12)
    json.dumps(d, allow_nan=False)


def test_cohort_fidelity__alleles_listed_the_other_way_are_harmonised() -> None:
    """Allele frequencies, LD and PCA compare genotypes: a synthetic cohort listing some SNPs'
    alleles the other way round scores as the same cohort listed the real cohort's way."""
    cohort, _ = toy_cohort(0)
    flipped = swap_alleles(cohort, np.arange(0, cohort.n_variants, 3))
    assert flipped.alt_frequency()[0] != pytest.approx(cohort.alt_frequency()[0])
    a = cohort_fidelity(cohort, cohort, seed=1).to_dict()
    b = cohort_fidelity(cohort, flipped, seed=1).to_dict()
    assert b["allele_frequency_correlation"] == pytest.approx(1.0)
    assert json.dumps(b, sort_keys=True) == json.dumps(a, sort_keys=True)


def test_gwas_rows__a_larger_synthetic_cohort_is_compared_at_the_members_size() -> None:
    """A synthetic cohort three times the members' size that carries their association per
    individual (here: the members' rows three times over) triples every test statistic; the
    comparison's seeded subset of as many rows as the members brings the lead back to the
    members' strength. A cohort no larger is compared whole."""
    members, _ = toy_cohort(0)
    members = members.take_samples(np.flatnonzero(members.phenotypes["abBMD"].notna().to_numpy()))
    n = members.n_samples
    triple = members.take_samples(np.tile(np.arange(n), 3))
    rows, counts = gwas_rows(members, triple, seed=4)
    assert counts == {"members": n, "synthetic": 3 * n, "compared": n}
    assert rows.n_samples == n
    again, _ = gwas_rows(members, triple, seed=4)
    np.testing.assert_array_equal(again.dosages, rows.dosages)  # seeded
    other, _ = gwas_rows(members, triple, seed=5)
    assert not np.array_equal(other.dosages, rows.dosages)

    def lead_chi2(cohort: Cohort) -> float:
        t = linear_gwas(cohort, "abBMD", ["SW16"]).table
        return float(np.nanmax(t["beta"] ** 2 / t["se"] ** 2))

    real = lead_chi2(members)
    assert lead_chi2(triple) == pytest.approx(3 * real, rel=0.02)
    assert 0.6 * real < lead_chi2(rows) < 1.5 * real
    same, counts = gwas_rows(members, members, seed=4)
    assert same is members and counts["compared"] == n
    half = members.take_samples(np.arange(n // 2))
    assert gwas_rows(members, half, seed=4)[0] is half


def test_phenotype_marginals__hand_computed_prevalence_and_level_shares() -> None:
    """A binary phenotype's mean is its prevalence (0.2 real, ~0.1 synthetic over the observed
    rows) and its smd the gap over the real sd (ddof 1); categorical level shares
    {a: .5, b: .5} vs {a: .8, c: .2}: total variation distance 0.5."""
    real, _ = toy_cohort(0)
    n = real.n_samples
    y_r = np.where(np.arange(n) % 5 == 0, 1.0, 0.0)  # prevalence 0.2
    y_s = np.where(np.arange(n) % 10 == 0, 1.0, 0.0)  # 0.1
    y_s[-1] = np.nan
    lev_r = np.where(np.arange(n) % 2 == 0, "a", "b").astype(object)
    lev_s = np.where(np.arange(n) % 5 == 0, "c", "a").astype(object)
    types = {"case": PhenoType.BINARY, "batch": PhenoType.CATEGORICAL}
    r = replace(real, phenotypes=pd.DataFrame({"case": y_r, "batch": lev_r}), pheno_types=types)
    s = replace(real, phenotypes=pd.DataFrame({"case": y_s, "batch": lev_s}), pheno_types=types)
    out = phenotype_marginals(r, s, focus=("batch",))
    rows = {row["name"]: row for row in out["rows"]}
    assert [row["name"] for row in out["rows"]] == ["batch", "case"]  # focus first
    assert rows["batch"]["total_variation"] == pytest.approx(0.5)
    case = rows["case"]
    assert (case["mean_real"], case["mean_synthetic"]) == (
        pytest.approx(0.2),
        pytest.approx(0.1, abs=0.002),
    )
    sd_r = float(np.std(y_r, ddof=1))
    assert case["smd"] == pytest.approx((float(np.nanmean(y_s)) - 0.2) / sd_r)
    assert case["missing_synthetic"] == pytest.approx(1 / n) and case["missing_real"] == 0
    assert out["mean_abs_smd"] == pytest.approx(abs(case["smd"]))
    json.dumps(out, allow_nan=False)


def test_phenotype_marginals__a_column_few_people_have_is_not_shown() -> None:
    # the mean and sd of two values are those two people's values
    real, _ = toy_cohort(0)
    n = real.n_samples
    rare = np.full(n, np.nan)
    rare[[3, 8]] = [123.456789, 100.0]
    five = np.full(n, np.nan)
    five[:5] = [1.0, 2.0, 3.0, 4.0, 5.0]
    table = pd.DataFrame({"rare": rare, "five": five})
    types = {"rare": PhenoType.CONTINUOUS, "five": PhenoType.CONTINUOUS}
    r = replace(real, phenotypes=table, pheno_types=types)
    s = replace(real, phenotypes=table.fillna(50.0), pheno_types=types)
    out = phenotype_marginals(r, s, focus=("rare",))
    assert [row["name"] for row in out["rows"]] == ["five"]
    assert out["n_compared"] == 1
    assert "123.45" not in json.dumps(out) and "111.72" not in json.dumps(out)


def test_cohort_fidelity__shuffled_genotypes_lose_ld_not_frequencies() -> None:
    cohort, _ = toy_cohort(0)
    rng = np.random.default_rng(2)
    shuffled = np.column_stack([rng.permutation(col) for col in cohort.dosages.T])
    synth = Cohort(
        shuffled, cohort.variants, cohort.samples, cohort.phenotypes, dict(cohort.pheno_types)
    )
    d = cohort_fidelity(cohort, synth, seed=1).to_dict()
    assert d["allele_frequency_correlation"] == pytest.approx(1.0)  # same column contents
    real_ld = np.array(d["ld_decay"]["real"])
    synth_ld = np.array(d["ld_decay"]["synthetic"])
    # toy LD: mean r^2 ~0.13 at < 50 kb decaying to ~0.05 at 1 Mb; shuffled: ~1/n everywhere
    assert real_ld[0] > 0.1 and real_ld[0] > real_ld[-1]
    assert synth_ld.max() < 0.01
    assert d["ld_decay_error"] > 0.05


def test_cohort_fidelity__figures_render_without_real_points() -> None:
    cohort, _ = toy_cohort(0)
    synth, _ = toy_cohort(1)
    synth.variants[["ref", "alt"]] = cohort.variants[["ref", "alt"]].to_numpy()  # one map
    fid = cohort_fidelity(cohort, synth, seed=3, max_snps=500)
    for svg in (
        fid.af_scatter_svg(),
        fid.ld_decay_svg(),
        fid.pca_svg(),
        fid.phenotype_correlation_svg(),
    ):
        assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    hist = fid.pca_real_hist
    assert hist is not None and ((hist[0] == 0) | (hist[0] >= 5)).all()


def test_pca_histogram__axes_do_not_show_a_real_outlier() -> None:
    # a suppressed cell hides one person's point, but an axis reaching it would show where
    # that person lies: the range comes from aggregates and the synthetic scores only
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 2))
    real[7] = [123.456, -98.765]
    synthetic = rng.normal(size=(200, 2))
    hist, xe, ye = pca_histogram(real, synthetic, min_cell=5)
    assert xe[-1] < 50 and ye[0] > -50
    assert ((hist == 0) | (hist >= 5)).all()
    every, _, _ = pca_histogram(real, synthetic, min_cell=1)
    assert every.sum() == 300  # the outlier counts in an edge cell, not beyond the axis


def test_manhattan_svg__80k_snps_stays_small() -> None:
    rng = np.random.default_rng(0)
    m = 80_000
    chroms = np.repeat([str(c) for c in range(1, 20)], m // 19 + 1)[:m]
    pos = np.tile(np.arange(m // 19 + 1) * 30_000, 19)[:m]
    real = -np.log10(rng.random(m))
    real[5000:5100] = rng.uniform(8, 14, 100)
    svg = manhattan_svg(chroms, pos, real, synthetic_log10_p=-np.log10(rng.random(m)))
    assert len(svg.encode()) < 1_500_000
    assert svg.count("<image") >= 1  # the dense layer is rasterised
    # each dashed threshold line is named, above (real) and below (synthetic) the axis
    assert svg.count("p = 1e-8") == 2 and svg.count("p = 2e-6") == 2


def test_cli__gwas_then_compare(tmp_path: Path) -> None:
    from dpgenome.io import write_cohort

    write_cohort(toy_cohort(0)[0], tmp_path / "real")
    write_cohort(toy_cohort(1)[0], tmp_path / "synth")
    runner = CliRunner()
    r1 = runner.invoke(
        main,
        [
            "gwas",
            str(tmp_path / "real"),
            "--pheno",
            "abBMD",
            "--covar",
            "SW16",
            "--out",
            str(tmp_path / "r.tsv"),
        ],
    )
    assert r1.exit_code == 0, r1.output
    r2 = runner.invoke(
        main,
        [
            "gwas",
            str(tmp_path / "synth"),
            "--pheno",
            "abBMD",
            "--covar",
            "round",
            "--lmm",
            "--out",
            str(tmp_path / "s.tsv"),
        ],
    )
    assert r2.exit_code == 0, r2.output
    table = pd.read_csv(tmp_path / "r.tsv", sep="\t")
    assert list(table.columns) == [
        "chr",
        "pos",
        "id",
        "a1",
        "beta",
        "se",
        "t_stat",
        "p",
        "log10_p",
        "n",
    ]
    assert (table["log10_p"].dropna() >= 0).all()
    r3 = runner.invoke(
        main,
        [
            "compare",
            str(tmp_path / "r.tsv"),
            str(tmp_path / "s.tsv"),
            "--out",
            str(tmp_path / "cmp"),
        ],
    )
    assert r3.exit_code == 0, r3.output
    metrics = json.loads((tmp_path / "cmp" / "metrics.json").read_text())
    assert set(metrics) >= {
        "thresholds",
        "loci",
        "lambda_gc",
        "spearman_log10p",
        "effect_correlation_at_real_hits",
        "sign_agreement_at_real_hits",
        "effect_ratio_at_real_hits",
        "effect_ratio_at_real_lead",
    }
    assert set(metrics["thresholds"]) == {"1e-08", "2e-06"}
    for name in ("manhattan.svg", "qq.svg"):
        assert (tmp_path / "cmp" / name).read_text().rstrip().endswith("</svg>")
    synth_n = pd.read_csv(tmp_path / "s.tsv", sep="\t")["n"]
    assert metrics["sample_sizes"] == {
        "real": float(table["n"].median()),
        "synthetic": float(synth_n.median()),
    }
    assert "note:" not in r3.stderr
    # a synthetic GWAS on three times the samples: said, as the chi^2 it scales
    tripled = pd.read_csv(tmp_path / "s.tsv", sep="\t").assign(n=3 * synth_n)
    tripled.to_csv(tmp_path / "s3.tsv", sep="\t", index=False)
    r4 = runner.invoke(
        main,
        [
            "compare",
            str(tmp_path / "r.tsv"),
            str(tmp_path / "s3.tsv"),
            "--out",
            str(tmp_path / "c3"),
        ],
    )
    assert r4.exit_code == 0, r4.output
    ratio = 3 * synth_n.median() / table["n"].median()
    assert f"about {ratio:.1f}x the chi^2" in r4.stderr
    bad = runner.invoke(
        main, ["gwas", str(tmp_path / "real"), "--pheno", "nope", "--out", str(tmp_path / "x.tsv")]
    )
    assert bad.exit_code == 2 and "nope" in bad.output
    assert not (tmp_path / "x.tsv").exists()


def test_read_gwas_tsv__published_cfw_gwas_counts() -> None:
    """The packaged real abBMD GWAS (Parker et al. 2016; CSV with snp, chr, pos, p and no
    beta): 193 SNPs at p < 1e-8 and 351 at p < 2e-6, lead rs29477109 (published figures)."""
    import dpgenome

    path = Path(dpgenome.__file__).parent / "data" / "gwas_abBMD_lm.csv.gz"
    table = read_gwas_tsv(path)
    assert len(table) == 79_645 and table["beta"].isna().all()
    assert table.loc[table["log10_p"].idxmax(), "id"] == "rs29477109"
    d = compare_gwas(table, table).to_dict()
    assert d["thresholds"]["1e-08"]["real_hits"] == 193
    assert d["thresholds"]["2e-06"]["real_hits"] == 351
    assert d["effect_correlation_at_real_hits"] is None  # no beta: not evaluated
    assert d["effect_ratio_at_real_hits"] is None and d["effect_ratio_at_real_lead"] is None
    chroms = {row["chr"] for row in d["loci"]["table"]}
    assert chroms == {"5", "11"}


def test_cohort_fidelity__without_shared_phenotypes_says_so() -> None:
    cohort, _ = toy_cohort(0)
    bare = Cohort(cohort.dosages, cohort.variants, cohort.samples)
    fid = cohort_fidelity(cohort, bare, seed=0, max_snps=300)
    assert fid.to_dict()["phenotype_correlation_error"] is None  # not evaluated, not 0
    assert "not computed" in fid.phenotype_correlation_svg()


def test_compare_gwas__lambda_gc_on_the_shared_snps_only() -> None:
    """SNPs in one result only are left out of every metric, lambda_GC included: 2,000
    real-only SNPs at p = 1e-5 took the real lambda from ~1 to ~36."""
    rng = np.random.default_rng(0)
    m = 2000
    null = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(m)],
            "chr": "1",
            "pos": np.arange(m) * 20_000 + 1,
            "beta": rng.normal(size=m),
            "log10_p": -np.log10(rng.random(m)),
        }
    )
    extra = null.assign(id=[f"x{i}" for i in range(m)], chr="3", log10_p=5.0)
    cmp = compare_gwas(pd.concat([null, extra], ignore_index=True), null)
    assert cmp.n_only_real == m
    assert cmp.lambda_gc_real == pytest.approx(compare_gwas(null, null).lambda_gc_real)
    assert cmp.lambda_gc_real < 1.3


def test_compare_gwas__f1_is_zero_when_only_one_side_has_hits() -> None:
    """F1 = 2 overlap / (real hits + synthetic hits): a synthetic GWAS with no hit against
    a real one with three scores 0 (recall 0, precision undefined), not null."""
    none = SYNTH.assign(log10_p=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a constant side: no rank correlation, no warning
        d = compare_gwas(REAL, none).to_dict()
    t8 = d["thresholds"]["1e-08"]
    assert (t8["recall"], t8["precision"], t8["f1"]) == (0.0, None, 0.0)
    assert d["spearman_log10p"] is None
    t8 = compare_gwas(REAL.assign(log10_p=1.0), SYNTH).to_dict()["thresholds"]["1e-08"]
    assert (t8["recall"], t8["precision"], t8["f1"]) == (None, 0.0, 0.0)
    t8 = compare_gwas(REAL.assign(log10_p=1.0), none).to_dict()["thresholds"]["1e-08"]
    assert (t8["recall"], t8["precision"], t8["f1"]) == (None, None, None)


def test_compare_gwas__records_each_sides_model() -> None:
    cohort, _ = toy_cohort(0)
    res = linear_gwas(qc(cohort)[0], "abBMD", ["SW16"])
    models = compare_gwas(res, REAL.assign(id=res.table["id"][: len(REAL)].to_numpy())).models
    assert models["real"] == res.method and models["real"].startswith("linear")
    assert models["synthetic"] is None  # a table read from a file


def _structured(n: int, seed: int, m: int = 3000) -> Cohort:
    """Three subpopulations (Balding-Nichols, Fst 0.02) with fixed frequencies: every seed
    draws new individuals of one population."""
    rng = np.random.default_rng(seed)
    anc = np.random.default_rng(99).uniform(0.1, 0.9, m)
    fst = 0.02
    sub = np.random.default_rng(98).beta(
        anc * (1 - fst) / fst, (1 - anc) * (1 - fst) / fst, size=(3, m)
    )
    dos = rng.binomial(2, sub[rng.integers(0, 3, n)]).astype(np.float32)
    variants = pd.DataFrame(
        {"id": [f"s{j}" for j in range(m)], "chr": "1", "pos": np.arange(m) * 1000 + 1}
    ).assign(ref="A", alt="G")
    return Cohort(dos, variants, pd.DataFrame({"id": [f"i{i}" for i in range(n)]}))


def test_cohort_fidelity__pca_out_of_sample_ratio_is_one_for_the_same_population() -> None:
    """New individuals of the real cohort's own population, projected on its PCs, have a
    fraction of its in-sample PC variance (fitting inflates it: ~0.6 on the two structure
    PCs and ~0.06 on the noise PCs here), which read as a synthetic cohort lacking
    structure. The out-of-sample ratio projects held-out real rows too: about 1."""
    pca = cohort_fidelity(_structured(300, 0), _structured(300, 100), seed=0).pca
    in_sample = np.array(pca["variance_ratio_synthetic_over_real"])
    out = np.array(pca["variance_ratio_out_of_sample"])
    assert len(out) == 10
    assert in_sample[:2].max() < 0.8 and in_sample[2:].max() < 0.2
    assert 0.8 < out[:2].min() and out[:2].max() < 1.25
    assert 0.85 < out.mean() < 1.2
    assert "variance_ratio_out_of_sample" in pca["method"]


def test_cohort_fidelity__ld_of_a_cohort_with_missing_calls_is_not_diluted() -> None:
    """r^2 over the samples with both calls observed (pandas' pairwise-complete Pearson):
    10% missing calls in the real cohort left its LD curve within 0.001 of the same cohort
    complete; mean imputation pulled it 18-19% lower (LD-decay error 0.015 on this toy)."""
    cohort, _ = toy_cohort(0)
    dos = cohort.dosages.copy()
    dos[np.random.default_rng(3).random(dos.shape) < 0.1] = np.nan
    missing = replace(cohort, dosages=dos)
    i, j = np.array([0, 5, 10]), np.array([1, 7, 30])
    want = [pd.Series(dos[:, a]).corr(pd.Series(dos[:, b])) ** 2 for a, b in zip(i, j, strict=True)]
    np.testing.assert_allclose(pair_r2(dos, i, j), want, rtol=1e-9)
    fid = cohort_fidelity(missing, cohort, seed=1)
    assert fid.ld_decay_error < 0.002


def test_cli_compare__names_the_false_hits_and_their_real_support(tmp_path: Path) -> None:
    """The hand-counted fixture: e is the synthetic-only 1e-8 hit, at real -log10 p 1.0."""
    REAL.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    SYNTH.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    out = CliRunner().invoke(
        main,
        ["compare", str(tmp_path / "r.tsv"), str(tmp_path / "s.tsv"), "--out", str(tmp_path)],
    )
    assert out.exit_code == 0, out.output
    want = "2 synthetic hits (1 the real GWAS does not reach, 0 of them at real p < 2e-06);"
    assert want in out.output
    t8 = json.loads((tmp_path / "metrics.json").read_text())["thresholds"]["1e-08"]
    assert (t8["false_hits"], t8["false_hits_supported"]) == (1, 0)


def test_strong_correlations__share_of_the_strong_pairs_kept() -> None:
    """Pairs with real |r| >= 0.5 only, the synthetic r read in the real r's direction: a
    sign flip counts against; pairs near zero do not dilute it."""
    from dpgenome.pheno_fidelity import strong_correlations

    real = np.array([[1.0, 0.8, -0.6, 0.1], [0.8, 1.0, 0.0, 0.2], [-0.6, 0.0, 1.0, 0.0],
                     [0.1, 0.2, 0.0, 1.0]])  # fmt: skip
    synth = np.array([[1.0, 0.4, 0.3, 0.1], [0.4, 1.0, 0.0, 0.2], [0.3, 0.0, 1.0, 0.0],
                      [0.1, 0.2, 0.0, 1.0]])  # fmt: skip
    got = strong_correlations(real, synth)
    assert got["pairs"] == 2 and got["real_mean_abs_r"] == pytest.approx(0.7)
    assert got["synthetic_mean_r_same_sign"] == pytest.approx((0.4 - 0.3) / 2)
    assert got["kept"] == pytest.approx(0.05 / 0.7)
    assert strong_correlations(real, real)["kept"] == pytest.approx(1.0)
    assert strong_correlations(np.eye(3), np.eye(3)) == {"threshold": 0.5, "pairs": 0, "kept": None}
    assert strong_correlations(None, None)["kept"] is None


def test_qq_figure__the_x_axis_spans_the_expected_values_not_the_strongest_hit() -> None:
    """A hit at -log10 p 20 among 6,000 SNPs (largest expected 4.1) once stretched both axes
    to 20, squeezing every point into the x axis's first fifth: x now ends just past the
    largest expected value, y past the largest observed one."""
    from dpgenome.plots import qq_figure

    rng = np.random.default_rng(0)
    lp = -np.log10(rng.uniform(size=6000))
    lp[:3] = (20.0, 15.0, 12.0)
    ax = qq_figure({"real": lp, "synthetic": lp[::-1].copy()}).axes[0]
    top_expected = -np.log10(0.5 / 6000)
    assert ax.get_xlim() == pytest.approx((0.0, top_expected * 1.05))
    assert ax.get_ylim() == pytest.approx((0.0, 21.0))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["real", "synthetic", "expected (no association)"]


def test_correlation_pair_svg__many_phenotypes_draw_one_point_per_pair() -> None:
    """161 phenotypes (the CFW table) made two 46-inch matrices; above 30 the figure is a
    4.6-inch scatter of each pair's synthetic r against its real r, its axis naming the
    pairs counted."""
    from dpgenome.plots import correlation_pair_svg

    rng = np.random.default_rng(0)
    real = np.corrcoef(rng.normal(size=(40, 200)))
    synth = np.corrcoef(rng.normal(size=(40, 200)))
    svg = correlation_pair_svg(real, synth, [f"p{i}" for i in range(40)], title="t")
    width = float(re.search(r'<svg[^>]* width="([0-9.]+)pt"', svg).group(1))
    assert "780 pairs of 40 phenotypes" in svg and width < 400  # points: 5.5 inches
    few = correlation_pair_svg(real[:5, :5], synth[:5, :5], [f"p{i}" for i in range(5)])
    assert "pairs of" not in few and "p4" in few


def test_cli_compare__plink2_rows_of_covariates_and_p_of_zero(tmp_path: Path, caplog) -> None:
    """plink2 --glm without hide-covar writes a row per model term (TEST ADD, SW16...), and
    p = 0 below the smallest double (GEMMA too): the ADD rows are compared, and a p of 0 is
    floored at the smallest double, never an infinite lead (metrics.json is strict
    JSON) nor a hit dropped from lambda."""
    rows = []
    for _, r in REAL.iterrows():
        p = 0.0 if r["id"] == "a" else 10 ** -r["log10_p"]
        for test in ("ADD", "SW16"):
            rows.append(
                {
                    "#CHROM": r["chr"],
                    "POS": r["pos"],
                    "ID": r["id"],
                    "TEST": test,
                    "BETA": r["beta"],
                    "P": p if test == "ADD" else 0.5,
                }
            )
    pd.DataFrame(rows).to_csv(tmp_path / "real.glm.linear", sep="\t", index=False)
    SYNTH.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    out = CliRunner().invoke(
        main,
        [
            "compare",
            str(tmp_path / "real.glm.linear"),
            str(tmp_path / "s.tsv"),
            "--out",
            str(tmp_path / "c"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "1 p-value(s) of 0 (below the file's precision) read as p = 4.94e-324" in caplog.text
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    t8 = metrics["thresholds"]["1e-08"]
    assert t8["real_hits"] == 3  # a (p = 0), b, c: the SW16 rows are not SNPs
    lead = max(row["lead_log10_p"] for row in metrics["loci"]["table"] if row["source"] == "real")
    assert lead == pytest.approx(323.31, abs=0.01)
    # --glm dominant: its own test; several terms and no genotype test: refused, named
    dom = pd.DataFrame(rows).assign(TEST=lambda t: t["TEST"].replace({"ADD": "DOM"}))
    dom.to_csv(tmp_path / "dom.glm.linear", sep="\t", index=False)
    args = ["compare", str(tmp_path / "dom.glm.linear"), str(tmp_path / "s.tsv")]
    out = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "d")])
    assert out.exit_code == 0, out.output
    dom.assign(TEST=lambda t: t["TEST"].replace({"DOM": "HOM"})).to_csv(
        tmp_path / "hom.glm.linear", sep="\t", index=False
    )
    args = ["compare", str(tmp_path / "hom.glm.linear"), str(tmp_path / "s.tsv")]
    out = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "h")])
    assert out.exit_code == 2
    assert "rows of several model terms (HOM, SW16) and no ADD, DOM or REC test" in out.output


def test_phenotype_missingness__complete_rows_and_indicator_correlations() -> None:
    """Hand-computed: real a and b missing together in 2 of 5 rows, c never; synthetic
    a and b missing apart."""
    nan = np.nan
    real = pd.DataFrame(
        {
            "a": [1, nan, nan, 1, 1],
            "b": [1, nan, nan, 1, 1],
            "c": [1, 1, 1, 1, 1],
            "only_real": [nan] * 5,
        }
    )
    synth = pd.DataFrame({"a": [nan, 1, 1, 1, 1], "b": [1, nan, 1, 1, 1], "c": [1.0] * 5})
    m = phenotype_missingness(real, synth)
    assert m["columns"] == 3 and m["columns_with_missing_values"] == 2
    assert m["complete_rows_real"] == pytest.approx(0.6)
    assert m["complete_rows_synthetic"] == pytest.approx(0.6)
    # real corr(a, b) = 1; synthetic: indicators (1,0,0,0,0) and (0,1,0,0,0): r = -0.25
    assert m["indicator_correlation_error"] == pytest.approx(1.25)
    # a column never missing in the synthetic rows counts as uncorrelated (0), not NaN
    m = phenotype_missingness(real, synth.fillna(1.0))
    assert m["indicator_correlation_error"] == pytest.approx(1.0)
    assert m["complete_rows_synthetic"] == 1.0
    assert phenotype_missingness(real[["c"]], synth)["indicator_correlation_error"] is None
    none = phenotype_missingness(real, synth.iloc[:0])
    assert none["indicator_correlation_error"] is None and none["complete_rows_synthetic"] is None


def test_hwe_exact_p__brute_force_enumeration() -> None:
    """Every genotype count of up to 12 individuals: p is the total probability of the
    configurations no more likely than the observed one (enumerated with exact weights)."""
    from math import factorial

    cases, expected = [], []
    for n in range(1, 13):
        for hom1 in range(n + 1):
            for het in range(n + 1 - hom1):
                hom2 = n - hom1 - het
                minor = min(2 * hom1 + het, 2 * hom2 + het)
                weights = {
                    h: 2**h
                    / (
                        factorial(h)
                        * factorial((minor - h) // 2)
                        * factorial(n - h - (minor - h) // 2)
                    )
                    for h in range(minor % 2, minor + 1, 2)
                }
                total = sum(weights.values())
                observed = weights[het]
                expected.append(
                    sum(w for w in weights.values() if w <= observed * (1 + 1e-7)) / total
                )
                cases.append((hom1, het, hom2))
    counts = np.array(cases).T
    np.testing.assert_allclose(hwe_exact_p(*counts), expected, rtol=1e-12)


def test_genotype_balance__hand_counts() -> None:
    # SNP 1: 25/50/25 (Hardy-Weinberg); SNP 2: 50/0/50 (no heterozygote); SNP 3: monomorphic
    g = np.zeros((100, 3))
    g[25:75, 0], g[75:, 0] = 1, 2
    g[50:, 1] = 2
    g[0, 2] = np.nan
    d = genotype_balance(g)
    assert d["snps"] == 2
    assert d["observed"] == pytest.approx(0.25) and d["expected"] == pytest.approx(0.5)
    assert d["inbreeding"] == pytest.approx(0.5)
    assert d["hwe_failure_share"] == pytest.approx(0.5)  # SNP 2: no heterozygote in 100
    assert genotype_balance(np.ones((4, 2)) * 2)["inbreeding"] is None
    # an ambiguous dosage (further than 0.1 from a whole number) is no call, as in plink2
    soft = g[:, :1].copy()
    soft[25:75] = 1.5  # the heterozygotes made ambiguous: no call
    assert genotype_balance(soft)["snps"] == 1
    assert genotype_balance(soft)["observed"] == 0.0
    assert genotype_balance(np.where(g == 1, 1.05, g))["inbreeding"] == pytest.approx(0.5)


@pytest.mark.tools
def test_genotype_balance__matches_plink2_hardy() -> None:
    """Observed and expected heterozygosity as plink2 --hardy counts them, and its exact
    Hardy-Weinberg test's p per SNP, on a colony and on one whose
    heterozygotes were partly made homozygous (as the Binomial-only model did)."""
    if tools.PLINK2 is None:
        pytest.skip("plink2 is not on PATH (CI installs it with apt-get install plink2)")
    cohort, _ = toy_cohort(0)
    g = cohort.dosages.astype(np.float64)
    rng = np.random.default_rng(0)
    inbred = g.copy()
    lose = (inbred == 1) & (rng.random(g.shape) < 0.6)
    inbred[lose] = rng.choice([0.0, 2.0], size=int(lose.sum()))
    ids = [str(i) for i in cohort.variants["id"]]
    for dos in (g, inbred):
        with tempfile.TemporaryDirectory() as tmp:
            ref = tools.plink2_hardy(Path(tmp), dos, ids)
        poly = ref["E(HET_A1)"] > 0
        ours = genotype_balance(dos)
        assert ours["snps"] == int(poly.sum())
        expected_f = 1 - ref["O(HET_A1)"][poly].sum() / ref["E(HET_A1)"][poly].sum()
        assert ours["inbreeding"] == pytest.approx(expected_f, abs=1e-4)
        fails = float((ref["P"][poly] < 1e-6).mean())
        assert ours["hwe_failure_share"] == pytest.approx(fails, abs=1e-12)
        counts = [(dos == v).sum(axis=0) for v in (0, 1, 2)]
        # the exact test's p per SNP, as plink2 prints it (6 significant digits)
        np.testing.assert_allclose(hwe_exact_p(*counts), ref["P"], rtol=2e-5, atol=1e-300)
