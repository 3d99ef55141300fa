"""The cohort model (dpgenome.cohort): QC counts, analysis subset, seeded member/holdout split,
design matrix, chromosome names.

References: QC is checked against a plain-loop oracle and against plink2 (``--remove``,
``--exclude``, ``--maf 0.02``; exact set equality: on the tiny cohort no MAF lies on the 2%
boundary, where plink2's ``<`` and the study's ``<=`` would differ); the design matrix against
patsy's treatment coding (the formula layer of statsmodels), exactly.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dpgenome.cohort import (
    PER_INDIVIDUAL,
    SHUFFLED,
    Cohort,
    PhenoType,
    QCConfig,
    align_panel,
    analysis_subset,
    individual_draws,
    infer_pheno_types,
    normalise_chromosome,
    qc,
    require_separate_panel,
    split_from_holdout_ids,
    split_members,
)
from dpgenome.errors import CohortError, InputError
from dpgenome.io import read_cohort
from dpgenome.testing import ToyConfig, toy_cohort

TINY = Path(__file__).resolve().parent / "data" / "tiny"


@pytest.fixture(scope="module")
def tiny() -> Cohort:
    return read_cohort(TINY / "parker")


def _maf_oracle(dosages: np.ndarray) -> np.ndarray:
    out = np.empty(dosages.shape[1])
    for j in range(dosages.shape[1]):
        col = [float(x) for x in dosages[:, j] if not np.isnan(x)]
        f = sum(col) / (2 * len(col))
        out[j] = min(f, 1 - f)
    return out


def test_qc__counts_and_reasons_on_tiny_cohort(tiny: Cohort):
    kept, report = qc(tiny)
    flagged = tiny.samples["discard"] | tiny.samples["mixup"]
    keep_samples = ~flagged.to_numpy()
    quality = pd.read_csv(TINY / "parker" / "map.txt", sep=" ")["quality"].to_numpy()
    good_quality = quality > 0.95
    maf = _maf_oracle(tiny.dosages[keep_samples][:, good_quality])
    common = maf > 0.02
    assert [(s.unit, s.reason, s.removed, s.remaining) for s in report.steps] == [
        ("samples", "flagged discard", 1, 39),
        ("samples", "flagged mixup", 1, 38),
        ("variants", "quality <= 0.95", int((~good_quality).sum()), int(good_quality.sum())),
        (
            "variants",
            "minor allele frequency <= 2% or not observed",
            int((~common).sum()),
            int(common.sum()),
        ),
    ]
    assert (~good_quality).sum() > 0 and (~common).sum() > 0  # the fixture exercises both
    assert kept.n_samples == 38 and kept.n_variants == int(common.sum())
    expected_ids = tiny.variants["id"].to_numpy()[good_quality][common]
    assert kept.variants["id"].tolist() == expected_ids.tolist()
    assert report.to_dict()[0] == {
        "unit": "samples",
        "reason": "flagged discard",
        "removed": 1,
        "remaining": 39,
    }


@pytest.mark.tools
def test_qc__variant_set_matches_plink2(tiny: Cohort, tmp_path: Path):
    exe = shutil.which("plink2")
    if exe is None:
        pytest.skip("plink2 is not on PATH (CI installs the Debian package plink2)")
    flagged = tiny.samples.loc[tiny.samples["discard"] | tiny.samples["mixup"], "id"]
    (tmp_path / "remove.txt").write_text("".join(f"{i}\t{i}\n" for i in flagged))
    low = tiny.variants.loc[tiny.variants["quality"] <= 0.95, "id"]
    (tmp_path / "exclude.txt").write_text("".join(f"{i}\n" for i in low))
    subprocess.run(
        [
            exe,
            "--bfile",
            str(TINY / "plink" / "cohort"),
            "--remove",
            str(tmp_path / "remove.txt"),
            "--exclude",
            str(tmp_path / "exclude.txt"),
            "--maf",
            "0.02",
            "--write-snplist",
            "--out",
            str(tmp_path / "ref"),
        ],
        check=True,
        capture_output=True,
    )
    expected = (tmp_path / "ref.snplist").read_text().split()
    kept, _ = qc(tiny)
    assert kept.variants["id"].tolist() == expected


def test_qc__no_quality_column_means_no_quality_step(tiny: Cohort):
    cohort = tiny.take_variants(np.arange(tiny.n_variants))
    cohort.variants["quality"] = np.nan
    _, report = qc(cohort, QCConfig(min_maf=0.0))
    assert [s.reason for s in report.steps] == [
        "flagged discard",
        "flagged mixup",
        "minor allele frequency <= 0% or not observed",
    ]


def test_analysis_subset__keeps_samples_with_pheno_and_covariates(tiny: Cohort):
    kept, report = qc(tiny)
    sub = analysis_subset(kept, "abBMD", ["SW16", "round"], report)
    observed = kept.phenotypes[["abBMD", "SW16", "round"]].notna().all(axis=1)
    assert sub.n_samples == int(observed.sum()) < kept.n_samples
    step = report.steps[-1]
    assert (step.removed, step.remaining) == (int((~observed).sum()), int(observed.sum()))
    assert step.reason == "abBMD or a covariate (SW16, round) missing"
    assert sub.sample_ids.tolist() == kept.sample_ids[observed.to_numpy()].tolist()


def test_analysis_subset__unknown_phenotype_is_a_cohort_error(tiny: Cohort):
    with pytest.raises(CohortError, match="unknown phenotype/covariate 'nope'") as err:
        analysis_subset(tiny, "nope")
    assert "did you mean" not in str(err.value)
    # a misspelt name, or one in the wrong case, is matched to the column meant
    with pytest.raises(CohortError) as err:
        analysis_subset(tiny, "abBDM", ["sw16"])
    assert "did you mean 'abBMD' for 'abBDM', 'SW16' for 'sw16'? available" in str(err.value)


def test_split_members__deterministic_disjoint_and_hashed(tiny: Cohort):
    a = split_members(tiny, holdout_fraction=0.25, seed=3)
    b = split_members(tiny, holdout_fraction=0.25, seed=3)
    c = split_members(tiny, holdout_fraction=0.25, seed=4)
    np.testing.assert_array_equal(a.members, b.members)
    assert a.member_hash == b.member_hash and a.member_hash != c.member_hash
    assert len(a.holdout) == 7 and len(a.members) == 33
    assert not set(a.members) & set(a.holdout)
    assert sorted([*a.members, *a.holdout]) == list(range(tiny.n_samples))
    ids = sorted(tiny.sample_ids[a.members].astype(str))
    assert a.member_hash == hashlib.sha256("\n".join(ids).encode()).hexdigest()
    record = a.record()
    assert record == {
        "seed": 3,
        "holdout_fraction": 0.25,
        "method": PER_INDIVIDUAL,
        "stratified_on": None,
        "n_members": 33,
        "n_holdout": 7,
        "member_ids_sha256": a.member_hash,
    }


def test_individual_draws__sha256_of_the_seed_and_the_id():
    """Each draw is the first 64 bits of SHA-256 over the seed and the id, read as a
    fraction of 2^64 (independent of the other ids and of their order)."""
    digest = hashlib.sha256(b"dpgenome-split\x1f3\x1fM0700001").digest()
    expected = int.from_bytes(digest[:8], "big") / 2.0**64
    draws = individual_draws(["M0700000", "M0700001"], 3)
    assert draws[1] == pytest.approx(expected, rel=1e-15)
    assert individual_draws(["M0700001"], 3)[0] == draws[1]
    assert individual_draws(["M0700001"], 4)[0] != draws[1]
    many = individual_draws(range(20_000), 0)
    assert 0.0 <= many.min() and many.max() < 1.0 and abs(many.mean() - 0.5) < 0.01


def test_split_members__one_individual_more_or_less_moves_nobody_else():
    """The release's split (no stratification): adding or removing one individual of the
    input changes no other individual's side, so a guarantee about the members is one about
    the input cohort. The stratified shuffle moves many others (why a release no longer
    uses it)."""
    cohort, _ = toy_cohort(0, ToyConfig(n=400, n_chrom=1, snps_per_chrom=20, causal=((0, 5),)))
    full = split_members(cohort, seed=0)
    fewer = cohort.take_samples(np.arange(1, cohort.n_samples))  # the first one withdraws
    less = split_members(fewer, seed=0)
    ids, ids_less = cohort.sample_ids.astype(str), fewer.sample_ids.astype(str)
    assert set(ids[full.holdout]) - {ids[0]} == set(ids_less[less.holdout])
    assert 0.15 < len(full.holdout) / cohort.n_samples < 0.25
    by_strata = split_members(cohort, seed=0, stratify="BMD")
    by_strata_less = split_members(fewer, seed=0, stratify="BMD")
    moved = (set(ids[by_strata.holdout]) ^ set(ids_less[by_strata_less.holdout])) - {ids[0]}
    assert len(moved) > 10 and by_strata.method == SHUFFLED


def test_split_members__stratified_on_binary_phenotype(tiny: Cohort):
    split = split_members(tiny, holdout_fraction=0.2, seed=0, stratify="abBMD")
    values = tiny.phenotypes["abBMD"].to_numpy()
    for stratum in (values == 1, values == 0, np.isnan(values)):
        size = int(stratum.sum())
        assert int(stratum[split.holdout].sum()) == round(0.2 * size)


def test_split_members__stratified_on_continuous_by_quintile(tiny: Cohort):
    split = split_members(tiny, holdout_fraction=0.5, seed=1, stratify="BMD")
    bmd = tiny.phenotypes["BMD"].to_numpy()
    ok = ~np.isnan(bmd)
    edges = np.quantile(bmd[ok], [0.2, 0.4, 0.6, 0.8])
    strata = np.where(ok, np.searchsorted(edges, np.nan_to_num(bmd)), -1)
    for s in np.unique(strata):
        size = int((strata == s).sum())
        assert int((strata[split.holdout] == s).sum()) == round(0.5 * size)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_members__bad_fraction_is_an_error(tiny: Cohort, fraction: float):
    with pytest.raises(CohortError, match="holdout fraction must be in"):
        split_members(tiny, holdout_fraction=fraction)


@pytest.mark.parametrize("fraction", [0.001, 0.999])
def test_split_members__a_fraction_leaving_one_side_empty_is_an_error(
    tiny: Cohort, fraction: float
):
    # each stratum rounds its holdout share to all or none of its samples; drawn per
    # individual, none of the 40 falls below 0.001 or all below 0.999
    with pytest.raises(CohortError, match="leaves"):
        split_members(tiny, holdout_fraction=fraction, stratify="round")
    with pytest.raises(CohortError, match="leaves"):
        split_members(tiny, holdout_fraction=fraction)


def test_split_from_holdout_ids__rebuilds_the_split(tiny: Cohort):
    split = split_members(tiny, seed=9, stratify="round")
    again = split_from_holdout_ids(tiny, tiny.sample_ids[split.holdout].tolist(), file="h.txt")
    np.testing.assert_array_equal(again.members, split.members)
    assert again.member_hash == split.member_hash
    with pytest.raises(InputError, match="not in the cohort"):
        split_from_holdout_ids(tiny, ["nobody"], file="h.txt")
    first = str(tiny.sample_ids[0])
    with pytest.raises(InputError, match="listed twice"):
        split_from_holdout_ids(tiny, [first, first], file="h.txt")


def test_split_from_holdout_ids__a_bad_id_is_located_never_quoted(tiny: Cohort):
    first, second = (str(i) for i in tiny.sample_ids[:2])
    with pytest.raises(InputError, match=r"listed twice \(first on line 2\)") as err:
        split_from_holdout_ids(tiny, [first, second, first], file="h.txt", lines=[2, 3, 5])
    assert err.value.line == 5 and first not in str(err.value)
    with pytest.raises(InputError, match=r"entries 1 and 3 of the list") as err:
        split_from_holdout_ids(tiny, [first, second, first], file="h.txt")
    assert first not in str(err.value)
    with pytest.raises(InputError, match="1 holdout id") as err:
        split_from_holdout_ids(tiny, [first, "REALPERSON_0042"], file="h.txt", lines=[1, 4])
    assert err.value.line == 4 and "REALPERSON_0042" not in str(err.value)


def test_design__one_hot_first_level_dropped_matches_patsy(tiny: Cohort):
    patsy = pytest.importorskip("patsy")
    x, names = tiny.design(["SW16", "round", "bw"])
    frame = tiny.phenotypes[["SW16", "round", "bw"]].copy()
    frame["round"] = frame["round"].astype(object)
    ref = patsy.dmatrix("SW16 + C(round) + bw", frame, return_type="dataframe")
    dummies = [c for c in ref.columns if c.startswith("C(round)")]  # patsy lists these first
    ref = ref[["SW16", *dummies, "bw"]]
    observed = frame.notna().all(axis=1).to_numpy()
    np.testing.assert_array_equal(x[observed], ref.to_numpy())
    assert names == ["SW16", *(f"round={c[len('C(round)[T.') : -1]}" for c in dummies), "bw"]
    other = tiny.take_samples(np.arange(6))
    other.phenotypes.loc[0, "round"] = None
    x2, _ = other.design(["round"])
    assert np.isnan(x2[0]).all() and not np.isnan(x2[1:]).any()


def test_design__no_covariates_gives_empty_matrix(tiny: Cohort):
    x, names = tiny.design([])
    assert x.shape == (tiny.n_samples, 0) and names == []


def test_fingerprint__changes_with_one_dosage(tiny: Cohort):
    other = tiny.take_samples(np.arange(tiny.n_samples))
    assert other.fingerprint() == tiny.fingerprint()
    other.dosages[5, 7] = 2.0 if other.dosages[5, 7] != 2.0 else 1.0
    assert other.fingerprint() != tiny.fingerprint()


def test_infer_pheno_types__text_binary_continuous():
    table = pd.DataFrame(
        {"t": ["a", None, "b"], "b": [0.0, 1.0, np.nan], "c": [0.5, 1.0, 2.0], "e": [np.nan] * 3}
    )
    types = infer_pheno_types(table, {"c": PhenoType.CATEGORICAL})
    assert types == {
        "t": PhenoType.CATEGORICAL,
        "b": PhenoType.BINARY,
        "c": PhenoType.CATEGORICAL,
        "e": PhenoType.CONTINUOUS,
    }


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("chr1", "1"),
        ("01", "1"),
        ("chrX", "X"),
        ("23", "X"),
        ("M", "MT"),
        ("19", "19"),
        ("chrUn", None),
        ("0", None),
        ("", None),
    ],
)
def test_normalise_chromosome__names(raw: str, canonical: str | None):
    assert normalise_chromosome(raw) == canonical


def test_qc__dp_keeps_snps_by_the_public_panel_only(tiny: Cohort):
    """A DP release's SNP set must not depend on the members: the members' own frequencies
    and quality scores are not read; the public panel's frequencies decide, and without a
    panel no SNP is dropped. Sample flags still act record by record."""
    rng = np.random.default_rng(0)
    # a panel over the same map (shuffled order, one extra SNP) whose rare SNPs differ from
    # the members': panel frequency 0.01 on the first five, 0.3 elsewhere
    m = tiny.n_variants
    freq = np.full(m, 0.3)
    freq[:5] = 0.01
    panel_dosages = rng.binomial(2, freq, size=(400, m)).astype(float)
    panel_dosages[:, :5] = 0.0
    panel_dosages[:4, :5] = 1.0  # frequency 4 / 800 = 0.005 in the panel
    order = rng.permutation(m)
    extra = tiny.variants.iloc[[0]].assign(id="not_in_cohort")
    variants = pd.concat([tiny.variants.iloc[order], extra], ignore_index=True)
    panel = Cohort(
        np.hstack([panel_dosages[:, order], np.ones((400, 1))]),
        variants,
        pd.DataFrame({"id": [f"P{i}" for i in range(400)]}),
        pd.DataFrame(index=range(400)),
        {},
        source="panel_dir",
    )
    kept, report = qc(tiny, dp=True, public=panel)
    assert kept.n_samples == 38  # the flagged samples still go
    assert kept.variants["id"].tolist() == tiny.variants["id"].iloc[5:].tolist()
    reasons = [(s.unit, s.removed, s.remaining) for s in report.steps]
    assert reasons[2:] == [("variants", 5, m - 5)]
    assert "public panel" in report.steps[2].reason
    # the members' low-quality and rare SNPs (the non-DP QC drops them) stay
    assert kept.n_variants > qc(tiny)[0].n_variants
    # the members' data do not enter: a cohort that differs in its genotypes and quality
    # scores keeps the same SNPs
    other = tiny.take_variants(np.arange(m))
    other.dosages = np.zeros_like(other.dosages)
    other.variants["quality"] = 0.0
    assert (
        qc(other, dp=True, public=panel)[0].variants["id"].tolist() == kept.variants["id"].tolist()
    )
    # without a panel nothing is dropped
    alone, report = qc(tiny, dp=True)
    assert alone.n_variants == m and report.steps[-1].removed == 0
    # a panel that lacks a SNP of the cohort is an error naming it
    with pytest.raises(CohortError, match="panel_dir: the public panel lacks 1 of"):
        qc(tiny, dp=True, public=panel.take_variants(np.arange(1, m + 1)))


def _panel_of(cohort: Cohort, seed: int = 0) -> Cohort:
    rng = np.random.default_rng(seed)
    dosages = rng.binomial(2, 0.3, size=(50, cohort.n_variants)).astype(np.float32)
    dosages[0, 0] = np.nan
    return Cohort(
        dosages,
        cohort.variants.copy(),
        pd.DataFrame({"id": [f"P{i}" for i in range(50)]}),
        pd.DataFrame(index=range(50)),
        {},
        source="panel_dir",
    )


def test_align_panel__flips_snps_listed_the_other_way_round(tiny: Cohort):
    """A panel in reference order beside a cohort with some SNPs' alleles swapped (a PLINK
    .bim with the minor allele first): the aligned panel counts the cohort's alt allele."""
    panel = _panel_of(tiny)
    swap = np.zeros(tiny.n_variants, dtype=bool)
    swap[[0, 3, 7]] = True
    cohort_map = tiny.variants.copy()
    cohort_map.loc[swap, ["ref", "alt"]] = cohort_map.loc[swap, ["alt", "ref"]].to_numpy()
    cohort_map.loc[5, "ref"] = "."  # unknown on one side: taken as matching
    out = align_panel(panel, cohort_map)
    assert out.variants["id"].tolist() == cohort_map["id"].tolist()
    known = cohort_map["ref"] != "."
    assert (
        (out.variants.loc[known, ["ref", "alt"]] == cohort_map.loc[known, ["ref", "alt"]])
        .all()
        .all()
    )
    np.testing.assert_array_equal(out.dosages[:, swap], 2 - panel.dosages[:, swap])
    np.testing.assert_array_equal(out.dosages[:, ~swap], panel.dosages[:, ~swap])
    assert np.isnan(out.dosages[0, 0])
    np.testing.assert_allclose(out.maf(), panel.maf())  # the DP QC reads the same frequencies
    assert panel.variants.equals(tiny.variants)  # the panel itself is not changed
    # another pair of alleles (strand or build) is an error naming the SNP and both pairs
    strand = tiny.variants.copy()
    ref, alt = strand.loc[2, "ref"], strand.loc[2, "alt"]
    flip = {"A": "T", "T": "A", "C": "G", "G": "C"}
    strand.loc[2, ["ref", "alt"]] = [flip[ref], flip[alt]]
    if {flip[ref], flip[alt]} == {ref, alt}:  # an A/T or C/G SNP reads as a swap
        strand.loc[2, ["ref", "alt"]] = ["ACGT"[("ACGT".index(ref) + 1) % 4], alt]
    with pytest.raises(CohortError, match=r"panel_dir: .* alleles differ .* at 1 SNP\(s\)") as err:
        align_panel(panel, strand)
    assert repr(str(strand.loc[2, "id"])) in str(err.value)


def test_align_panel__refuses_another_map_and_a_panel_with_the_cohorts_ids(tiny: Cohort):
    """The panel's SNP ids on another chromosome or at another position (another build, a
    relabelled file) are an error naming the panel and the first SNP; so is a panel holding
    any of the cohort's sample ids (named by count only: its data would enter unprotected)."""
    panel = _panel_of(tiny)
    for column, value in (("chr", "19"), ("pos", 1)):
        moved = tiny.variants.copy()
        moved[column] = moved[column].astype(object)
        moved.loc[4, column] = value
        with pytest.raises(CohortError, match=r"panel_dir: the public panel places 1 of") as err:
            align_panel(panel, moved)
        assert repr(str(moved.loc[4, "id"])) in str(err.value)


def _random_cohort(seed: int, n: int, m: int, ids: list[str], source: str | None = None) -> Cohort:
    rng = np.random.default_rng(seed)
    dosages = rng.binomial(2, rng.uniform(0.1, 0.9, m), size=(n, m)).astype(np.float32)
    dosages[rng.random((n, m)) < 0.02] = np.nan  # 2% missing calls
    variants = pd.DataFrame(
        {"chr": "1", "pos": np.arange(1, m + 1), "id": [f"v{i}" for i in range(m)]}
    )
    variants["ref"], variants["alt"] = "A", "G"
    samples = pd.DataFrame({"id": ids})
    return Cohort(dosages, variants, samples, pd.DataFrame(index=range(n)), {}, source=source)


def test_require_separate_panel__refuses_the_cohorts_individuals_read_on_their_genotypes():
    """A panel individual whose calls agree with a cohort individual's at >= 98% of the SNPs
    both called is one of the cohort's: refused by count (never an id) under another id over
    >= 5,000 SNPs, under the same id over any number; unrelated individuals numbered alike,
    or a short map on which distinct relatives can agree throughout, are not refused."""
    cohort = _random_cohort(1, 30, 6000, [str(i) for i in range(30)])
    panel = _random_cohort(2, 40, 6000, [str(i) for i in range(40)], source="panel_dir")
    require_separate_panel(panel, cohort)  # other individuals under the same numbers: fine
    copied = panel.dosages.copy()
    copied[[1, 3]] = cohort.dosages[[0, 7]]
    copied[1, :60] = 2 - np.nan_to_num(copied[1, :60])  # 1% of calls differ: still a copy
    mixed = Cohort(copied, panel.variants, panel.samples, panel.phenotypes, {}, source="panel_dir")
    with pytest.raises(
        CohortError, match=r"panel_dir: 2 of the public panel's 40 individuals"
    ) as e:
        require_separate_panel(mixed, cohort)
    assert "'0'" not in str(e.value) and "'7'" not in str(e.value)
    short = np.arange(1000)  # on 1,000 SNPs only a copy under its own id is named
    require_separate_panel(mixed.take_variants(short), cohort.take_variants(short))
    named = pd.DataFrame({"id": ["x", "y", "z", "7"] + [f"p{i}" for i in range(36)]})
    same_id = Cohort(copied, panel.variants, named, panel.phenotypes, {}, source="panel_dir")
    with pytest.raises(CohortError, match=r"panel_dir: 1 of the public panel's 40"):
        require_separate_panel(same_id.take_variants(short), cohort.take_variants(short))


def test_align_panel__warns_of_a_t_and_c_g_snps_flipped_as_swaps(tiny: Cohort, caplog):
    """At an A/T or C/G SNP a swap looks the same as the other strand: flipped as a swap (the
    panel's other SNPs show its strand), with a warning giving their count; a swapped A/G SNP
    and an A/T SNP in the same order give none."""
    panel = _panel_of(tiny.take_variants(np.arange(4)))
    panel.variants[["ref", "alt"]] = [["A", "T"], ["C", "G"], ["A", "G"], ["T", "A"]]
    cohort_map = panel.variants.copy()
    cohort_map[["ref", "alt"]] = [["T", "A"], ["G", "C"], ["G", "A"], ["T", "A"]]
    with caplog.at_level(logging.WARNING, logger="dpgenome.cohort"):
        out = align_panel(panel, cohort_map)
    flipped = np.array([True, True, True, False])
    np.testing.assert_array_equal(out.dosages[:, flipped], 2 - panel.dosages[:, flipped])
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and warned[0].startswith("2 A/T or C/G SNP(s) are listed the other")
    assert repr(str(panel.variants.loc[0, "id"])) in warned[0]
    caplog.clear()
    cohort_map.loc[[0, 1], ["ref", "alt"]] = [["A", "T"], ["C", "G"]]
    with caplog.at_level(logging.WARNING, logger="dpgenome.cohort"):
        align_panel(panel, cohort_map)
    assert caplog.records == []


def test_align_panel__one_missing_label_is_decided_by_the_known_one(tiny: Cohort):
    """PLINK writes 0 for the allele of a SNP monomorphic in its file: cohort G/0 against
    panel A/G is a swap (the cohort's G is the panel's alt), against G/A the same order,
    against A/T an error; no known label to compare keeps the SNP as it is."""
    panel = _panel_of(tiny.take_variants(np.arange(4)))
    panel.variants[["ref", "alt"]] = [["A", "G"], ["G", "A"], ["A", "G"], ["A", "G"]]
    cohort_map = panel.variants.copy()
    cohort_map[["ref", "alt"]] = [["G", "0"], ["G", "0"], ["0", "A"], ["0", "."]]
    out = align_panel(panel, cohort_map)
    assert out.variants[["ref", "alt"]].to_numpy().tolist() == [
        ["G", "A"],
        ["G", "A"],
        ["G", "A"],
        ["A", "G"],
    ]
    flipped = np.array([True, False, True, False])
    np.testing.assert_array_equal(out.dosages[:, flipped], 2 - panel.dosages[:, flipped])
    np.testing.assert_array_equal(out.dosages[:, ~flipped], panel.dosages[:, ~flipped])
    cohort_map.loc[1, ["ref", "alt"]] = ["T", "0"]
    with pytest.raises(CohortError, match=r"G/A in the public panel, T/\? in the cohort"):
        align_panel(panel, cohort_map)
