"""Readers and writers (dpgenome.io): cross-format identity on the committed tiny cohort,
lossless round trips, agreement with plink2/tabix, and every bad input of issue 2 as an
InputError naming file, line and column.

Reference tools: plink2 (``--export A`` gives the ALT-allele count per sample and SNP;
``--vcf ... dosage=DS`` imports our DS field independently), htslib's ``tabix``/``bgzip``
(accept only well-formed BGZF). Dosage comparisons with plink2 use a tolerance of 1e-4:
plink2 stores dosages in units of 1/16384.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dpgenome.cohort import Cohort
from dpgenome.errors import InputError
from dpgenome.io import detect_format, read_cohort, read_pheno_csv, write_cohort
from dpgenome.io.dosage_text import RowError, format_row, parse_row
from dpgenome.io.vcf import BGZF_EOF
from dpgenome.testing import ToyConfig, toy_cohort

DATA = Path(__file__).resolve().parent / "data"
TINY = DATA / "tiny"
FORMATS = ("parker", "plink", "vcf")
sys.path.insert(0, str(DATA))
import make_tiny  # noqa: E402


def assert_same_cohort(
    a: Cohort, b: Cohort, *, quality: bool = True, pheno_rtol: float = 0.0
) -> None:
    np.testing.assert_array_equal(a.dosages, b.dosages)  # NaN == NaN here
    cols = ["id", "chr", "pos", "ref", "alt"] + (["quality"] if quality else [])
    pd.testing.assert_frame_equal(a.variants[cols], b.variants[cols], check_dtype=False)
    pd.testing.assert_frame_equal(a.samples, b.samples, check_dtype=False)
    # rtol 0 (the default) is an exact comparison; NaN matches NaN
    pd.testing.assert_frame_equal(
        a.phenotypes, b.phenotypes, check_exact=False, rtol=pheno_rtol, atol=0.0
    )
    assert a.pheno_types == b.pheno_types


def need(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not on PATH (CI installs it: Debian package plink2 / tabix)")
    return exe


# ---------------------------------------------------------------------------- cross-format


def test_read_cohort__tiny_cohort_identical_in_all_formats():
    cohorts = {fmt: read_cohort(TINY / fmt) for fmt in FORMATS}
    for fmt in ("plink", "vcf"):
        assert_same_cohort(cohorts["parker"], cohorts[fmt])
        assert cohorts[fmt].fingerprint() == cohorts["parker"].fingerprint()
    c = cohorts["parker"]
    assert (c.n_samples, c.n_variants) == (40, 120)
    assert c.samples["discard"].sum() == 1 and c.samples["mixup"].sum() == 1
    assert np.isnan(c.dosages).any()
    assert c.variants["quality"].notna().all()


def test_read_cohort__tiny_files_match_their_generator():
    """The committed files are what tests/data/make_tiny.py writes (no hand edits). The
    generator's phenotypes go through a BLAS matrix product, whose last bit depends on the
    CPU's OpenBLAS kernel (a Cooperlake kernel gives -0.45654528510111275 where the files hold
    ...264), so they are compared to 1e-12: any edit by hand is far larger."""
    assert_same_cohort(read_cohort(TINY / "parker"), make_tiny.tiny_cohort(), pheno_rtol=1e-12)
    assert_same_cohort(
        read_cohort(DATA / "tiny_dosage" / "parker"),
        make_tiny.tiny_dosage_cohort(),
        pheno_rtol=1e-12,
    )


def test_detect_format__each_form():
    assert [detect_format(TINY / f) for f in FORMATS] == list(FORMATS)
    assert detect_format(DATA / "tiny_gt") == "vcf"


def test_detect_format__several_forms_is_an_error(tmp_path: Path):
    shutil.copytree(TINY / "parker", tmp_path, dirs_exist_ok=True)
    shutil.copy(TINY / "vcf" / "cohort.vcf.gz", tmp_path)
    with pytest.raises(InputError, match=r"several genotype files: geno\.txt, cohort\.vcf\.gz"):
        detect_format(tmp_path)


def test_detect_format__no_genotypes_is_an_error(tmp_path: Path):
    shutil.copy(TINY / "parker" / "pheno.csv", tmp_path)
    with pytest.raises(InputError, match="no genotype file found"):
        read_cohort(tmp_path)
    with pytest.raises(InputError, match="no such cohort directory"):
        read_cohort(tmp_path / "absent")


# ---------------------------------------------------------------------------- names in any case


def _rename(directory: Path, names: dict[str, str]) -> None:
    for old, new in names.items():
        (directory / old).rename(directory / new)


PLINK_NAMES = ("cohort.bed", "cohort.bim", "cohort.fam", "cohort.qual", "pheno.csv")


@pytest.mark.parametrize(
    "names",
    [
        ("COHORT.BED", "COHORT.BIM", "COHORT.FAM", "COHORT.QUAL", "PHENO.CSV"),  # Windows export
        ("cohort.BED", "Cohort.Bim", "COHORT.fam", "cohort.QUAL", "Pheno.csv"),  # mixed
    ],
    ids=["upper", "mixed"],
)
def test_read_cohort__plink_fileset_in_any_case_reads_as_the_lower_case_one(
    tmp_path: Path, names: tuple[str, ...]
):
    d = _copy(tmp_path, "plink")
    _rename(d, dict(zip(PLINK_NAMES, names, strict=True)))
    assert detect_format(d) == "plink"
    cohort = read_cohort(d)
    # the same dosages, map (quality from the .qual), samples and phenotypes (pheno.csv)
    assert_same_cohort(cohort, read_cohort(TINY / "plink"))
    assert cohort.variants["quality"].notna().all() and len(cohort.phenotypes.columns) > 0


@pytest.mark.parametrize("name", ["COHORT.VCF.GZ", "cohort.VCF.gz", "COHORT.VCF"])
def test_read_cohort__vcf_in_any_case_reads_as_the_lower_case_one(tmp_path: Path, name: str):
    d = _copy(tmp_path, "vcf")
    if name.lower().endswith(".vcf"):
        _text_files(d, "vcf")
        _rename(d, {"cohort.vcf": name, "pheno.csv": "PHENO.CSV"})
    else:
        _rename(d, {"cohort.vcf.gz": name, "pheno.csv": "pheno.CSV"})
    assert detect_format(d) == "vcf"
    assert_same_cohort(read_cohort(d), read_cohort(TINY / "vcf"))


def test_read_cohort__parker_files_in_any_case_read_as_the_lower_case_ones(tmp_path: Path):
    d = _copy(tmp_path, "parker")
    names = sorted(p.name for p in d.iterdir())
    _rename(d, {n: n.upper() for n in names})
    assert detect_format(d) == "parker"
    assert_same_cohort(read_cohort(d), read_cohort(TINY / "parker"))


def test_read_cohort__pheno_csv_in_any_case_is_found_in_every_format(tmp_path: Path):
    for fmt in FORMATS:
        d = _copy(tmp_path, fmt)
        _rename(d, {"pheno.csv": "Pheno.CSV"})
        assert_same_cohort(read_cohort(d), read_cohort(TINY / fmt))


def _case_sensitive(directory: Path) -> bool:
    probe = directory / "case-probe"
    probe.touch()
    try:
        return not (directory / "CASE-PROBE").exists()
    finally:
        probe.unlink()


@pytest.mark.parametrize("name", PLINK_NAMES)
def test_read_cohort__names_differing_only_in_case_are_an_error(tmp_path: Path, name: str):
    # possible on Linux: a Windows copy beside the original; which one to read is ambiguous
    if not _case_sensitive(tmp_path):
        pytest.skip("the file system ignores case: two such names cannot exist")
    d = _copy(tmp_path, "plink")
    stem, dot, ext = name.partition(".")
    upper = f"{stem}{dot}{ext.upper()}"
    shutil.copy(d / name, d / upper)
    with pytest.raises(
        InputError, match=rf"both {upper} and {name} are present \(names diff"
    ) as err:
        read_cohort(d)
    assert err.value.file == str(d)


def test_read_cohort__pheno_csv_and_gz_in_other_cases_name_both(tmp_path: Path):
    d = _copy(tmp_path, "plink")
    (d / "PHENO.CSV.GZ").write_bytes(gzip.compress((d / "pheno.csv").read_bytes()))
    with pytest.raises(InputError, match=r"both pheno\.csv and PHENO\.CSV\.GZ are present"):
        read_cohort(d)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("missing", ["bim", "fam"])
def test_read_cohort__missing_plink_companion_names_the_file_expected(
    tmp_path: Path, upper: bool, missing: str
):
    d = _copy(tmp_path, "plink")
    (d / f"cohort.{missing}").unlink()
    bed, expected = "cohort.bed", f"cohort.{missing}"
    if upper:
        bed, expected = bed.upper(), expected.upper()
        _rename(d, {n: n.upper() for n in PLINK_NAMES if (d / n).exists()})
    with pytest.raises(InputError, match=rf"{bed} has no companion {expected}$") as err:
        read_cohort(d)
    assert err.value.file == str(d / expected)


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fmt", ["parker", "vcf"])
def test_write_cohort__dosage_round_trip_is_lossless(tmp_path: Path, fmt: str, seed: int):
    cohort, _ = toy_cohort(seed, ToyConfig(n=25, n_chrom=2, snps_per_chrom=40, causal=((0, 3),)))
    rng = np.random.default_rng(seed)
    d = cohort.dosages
    pick = rng.random(d.shape) < 0.2
    d[pick] = rng.uniform(0, 2, size=int(pick.sum())).astype(np.float32)  # full float32 digits
    d[rng.random(d.shape) < 0.05] = np.nan
    d[0, :3] = [np.float32(1e-8), np.float32(2.0), np.nextafter(np.float32(2), np.float32(0))]
    cohort.samples.loc[1, "discard"] = True
    cohort.samples.loc[2, "mixup"] = True
    back = read_cohort(write_cohort(cohort, tmp_path / "c", fmt))
    assert_same_cohort(cohort, back)
    assert back.fingerprint() == cohort.fingerprint()


def test_write_cohort__parker_non_integer_copy_round_trips(tmp_path: Path):
    original = read_cohort(DATA / "tiny_dosage" / "parker")
    assert (original.dosages != np.rint(original.dosages)).sum() > 50
    back = read_cohort(write_cohort(original, tmp_path / "c", "parker"))
    assert_same_cohort(original, back)
    again = (tmp_path / "c" / "geno.txt").read_bytes()
    assert again == (DATA / "tiny_dosage" / "parker" / "geno.txt").read_bytes()


def test_write_cohort__plink_round_trip_of_hard_calls(tmp_path: Path):
    original = read_cohort(TINY / "parker")
    back = read_cohort(write_cohort(original, tmp_path / "c", "plink"))
    assert_same_cohort(original, back)


def test_write_cohort__plink_rounds_non_integer_dosages_with_warning(tmp_path: Path, caplog):
    original = read_cohort(DATA / "tiny_dosage" / "parker")
    n_frac = int(
        ((original.dosages != np.rint(original.dosages)) & ~np.isnan(original.dosages)).sum()
    )
    with caplog.at_level(logging.WARNING):
        back = read_cohort(write_cohort(original, tmp_path / "c", "plink"))
    assert f"{n_frac} non-integer dosages" in caplog.text
    np.testing.assert_array_equal(back.dosages, np.rint(original.dosages))


def test_write_cohort__refuses_non_empty_directory_and_leaves_nothing_on_error(tmp_path: Path):
    cohort = read_cohort(TINY / "parker")
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        write_cohort(cohort, target, "parker")
    bad = cohort.take_samples(np.arange(5))
    bad.phenotypes["id"] = 1.0
    with pytest.raises(InputError, match="reserved column name"):
        write_cohort(bad, tmp_path / "new", "vcf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


def test_write_cohort__overwrite_replaces_directory(tmp_path: Path):
    cohort = read_cohort(TINY / "parker")
    write_cohort(cohort, tmp_path / "c", "vcf")
    write_cohort(cohort, tmp_path / "c", "plink", overwrite=True)
    assert detect_format(tmp_path / "c") == "plink"


def test_format_row__integers_compact_and_exact_float32():
    values = np.array([0, 1, 2, np.nan, 1.439, 0.1], dtype=np.float32)
    text = format_row(values)
    assert text == b"0 1 2 NA 1.439 0.1"
    back = parse_row(text, 6, missing=frozenset({b"NA", b""}))
    np.testing.assert_array_equal(back, values)


def test_parse_row__empty_field_is_missing_and_errors_locate_token():
    np.testing.assert_array_equal(
        parse_row(b"2  1", 3, missing=frozenset({b"NA", b""})), [2, np.nan, 1]
    )
    with pytest.raises(RowError) as err:
        parse_row(b"0 1 x 2", 4, missing=frozenset({b"NA"}))
    assert err.value.index == 2
    with pytest.raises(RowError, match="not a number"):
        parse_row(b"0 nan", 2, missing=frozenset({b"NA"}))


# ---------------------------------------------------------------------------- reference tools


def _plink2_alt_counts(tmp_path: Path, args: list[str], cohort: Cohort) -> np.ndarray:
    """plink2 ``--export A`` as ALT-allele counts (samples x variants). The .raw column
    ``<id>_<allele>`` names the counted allele (plink2 2.00 counts REF by default)."""
    exe = need("plink2")
    out = tmp_path / "ref"
    subprocess.run(
        [exe, *args, "--export", "A", "--out", str(out)], check=True, capture_output=True
    )
    raw = pd.read_csv(f"{out}.raw", sep="\t")
    assert raw["IID"].astype(str).tolist() == cohort.sample_ids.tolist()
    names = raw.columns[6:].tolist()
    assert [n.rsplit("_", 1)[0] for n in names] == cohort.variants["id"].tolist()
    counted = np.array([n.rsplit("_", 1)[1] for n in names])
    ref, alt = cohort.variants["ref"].to_numpy(str), cohort.variants["alt"].to_numpy(str)
    assert ((counted == ref) | (counted == alt)).all()
    values = raw.iloc[:, 6:].to_numpy(np.float64)
    return np.where(counted == ref, 2.0 - values, values)


@pytest.mark.tools
def test_read_plink__matches_plink2_export(tmp_path: Path):
    cohort = read_cohort(TINY / "plink")
    expected = _plink2_alt_counts(tmp_path, ["--bfile", str(TINY / "plink" / "cohort")], cohort)
    np.testing.assert_array_equal(cohort.dosages, expected)


@pytest.mark.tools
def test_read_vcf__ds_matches_plink2_import(tmp_path: Path):
    cohort = read_cohort(DATA / "tiny_dosage" / "parker")
    write_cohort(cohort, tmp_path / "v", "vcf")
    vcf = tmp_path / "v" / "cohort.vcf.gz"
    expected = _plink2_alt_counts(tmp_path, ["--vcf", str(vcf), "dosage=DS"], cohort)
    np.testing.assert_allclose(cohort.dosages, expected, atol=1e-4)
    np.testing.assert_array_equal(read_cohort(tmp_path / "v").dosages, cohort.dosages)


def test_read_vcf__missing_ds_falls_back_on_gt_as_plink2_does(tmp_path: Path):
    """A DS that is '.' or dropped (trailing FORMAT fields may be) takes the GT call, as plink2
    ``--vcf dosage=DS`` imports it (it read as missing); both missing stays missing."""
    lines = [
        "##fileformat=VCFv4.2",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DS,Number=1,Type=Float,Description="Dosage">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\tc\td",
        "1\t100\tv1\tA\tG\t.\t.\t.\tGT:DS\t0/1:0.8\t1/1\t1/1:.\t./.:.",
        "1\t200\tv2\tC\tT\t.\t.\t.\tGT:DS\t0/0:0.1\t0/1:1.2\t1/1:1.9\t0/1",
    ]
    (tmp_path / "v").mkdir()
    vcf = tmp_path / "v" / "x.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    cohort = read_cohort(tmp_path / "v")
    # plink2 v2.00a3.5 (Debian), measured: v1_A 1.2 0 0 NA, v2_C 1.9 0.8 0.1 1 (REF counts)
    expected = np.array([[0.8, 2.0, 2.0, np.nan], [0.1, 1.2, 1.9, 1.0]]).T
    np.testing.assert_allclose(cohort.dosages, expected, atol=1e-6)
    if shutil.which("plink2") or os.environ.get("DPGENOME_REQUIRE_TOOLS") == "1":  # live too
        ref = _plink2_alt_counts(tmp_path, ["--vcf", str(vcf), "dosage=DS"], cohort)
        np.testing.assert_allclose(cohort.dosages, ref, atol=1e-6)


@pytest.mark.tools
def test_write_vcf__bgzf_accepted_by_htslib(tmp_path: Path):
    bgzip, tabix = need("bgzip"), need("tabix")
    write_cohort(read_cohort(TINY / "parker"), tmp_path / "v", "vcf")
    vcf = tmp_path / "v" / "cohort.vcf.gz"
    assert vcf.read_bytes().endswith(BGZF_EOF) and len(BGZF_EOF) == 28
    subprocess.run([bgzip, "--test", str(vcf)], check=True, capture_output=True)
    subprocess.run([tabix, "-p", "vcf", str(vcf)], check=True, capture_output=True)
    region = subprocess.run(
        [tabix, str(vcf), "2:20000-60000"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert [line.split("\t")[2] for line in region] == ["rs2_0", "rs2_1", "rs2_2"]


def test_read_vcf__gt_only_file_written_by_plink2():
    """tiny_gt/cohort.vcf was exported by plink2 from tiny/plink (GT only, VCFv4.3)."""
    gt = read_cohort(DATA / "tiny_gt")
    ref = read_cohort(TINY / "plink")
    np.testing.assert_array_equal(gt.dosages, ref.dosages)
    assert_same_cohort(gt, ref, quality=False)


def test_read_vcf__phased_haploid_and_missing_gt(tmp_path: Path):
    lines = [
        "##fileformat=VCFv4.2",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ta\tb\tc\td",
        "1\t100\tv1\tA\tG\t.\t.\tR2=0.5\tGT:GQ\t0|1:9\t1|1:9\t.|0:9\t0/0:9",
        "X\t200\tv2\tC\tT\t.\t.\t.\tGT\t1\t0\t.\t1/0",
    ]
    (tmp_path / "x.vcf").write_text("\n".join(lines) + "\n")
    c = read_cohort(tmp_path)
    np.testing.assert_array_equal(c.dosages.T, [[1, 2, np.nan, 0], [2, 0, np.nan, 1]])
    assert c.variants["chr"].tolist() == ["1", "X"]
    assert c.variants["quality"].iloc[0] == 0.5 and np.isnan(c.variants["quality"].iloc[1])
    assert c.phenotypes.shape == (4, 0)


# ---------------------------------------------------------------------------- phenotypes


def test_read_pheno_csv__real_cfw_file():
    """src/dpgenome/data/pheno.csv.gz (Parker et al. 2016, CC0): counts from its README."""
    path = Path(__file__).resolve().parents[1] / "src" / "dpgenome" / "data" / "pheno.csv.gz"
    table = read_pheno_csv(path)
    assert table.shape == (1092, 163)
    assert table["abBMD"].notna().sum() == 960
    assert round(float(table["abBMD"].mean()), 3) == 0.194
    assert table["round"].dropna().str.startswith("SW").all()
    assert not table["discard"].any() and not table["mixup"].any()
    assert table["SW16"].dropna().isin([0.0, 1.0]).all()


def test_read_pheno_csv__partial_overlap_warns_and_aligns(tmp_path: Path, caplog):
    path = tmp_path / "pheno.csv"
    path.write_text('"id","bw","round"\n"a",1.5,"SW1"\n"b",NA,"SW2"\n"z",3,NA\n')
    with caplog.at_level(logging.WARNING):
        table = read_pheno_csv(path, ["b", "a", "c"])
    assert "1 of 3 genotyped samples have no phenotype row" in caplog.text
    assert "1 phenotype rows have no genotypes" in caplog.text
    assert table.index.tolist() == ["b", "a", "c"]
    np.testing.assert_array_equal(table["bw"].to_numpy(), [np.nan, 1.5, np.nan])
    assert table["round"].tolist()[:2] == ["SW2", "SW1"] and pd.isna(table["round"].iloc[2])


def test_read_pheno_csv__tsv_delimiter_is_sniffed(tmp_path: Path):
    path = tmp_path / "covars.tsv"
    path.write_text("IID\tage\tsex\ns1\t3\tF\ns2\t4\tM\n")
    table = read_pheno_csv(path)
    assert table["age"].tolist() == [3.0, 4.0] and table["sex"].tolist() == ["F", "M"]


def test_read_pheno_csv__spaces_after_delimiters_and_blank_lines_read_as_clean(tmp_path: Path):
    # a hand-written "a, b, NA" file: " NA" is missing and " SW18" the level "SW18"
    path = tmp_path / "pheno.csv"
    path.write_text('id, bw, round, sex\n a, 1.5, "SW1", F\n\nb, NA , SW2 ,M\n')
    table = read_pheno_csv(path)
    assert table.index.tolist() == ["a", "b"]
    np.testing.assert_array_equal(table["bw"].to_numpy(), [1.5, np.nan])
    assert table["round"].tolist() == ["SW1", "SW2"] and table["sex"].tolist() == ["F", "M"]


def test_read_pheno_csv__plink_fid_iid_key_is_no_phenotype(tmp_path: Path):
    # PLINK's key is FID + IID: the family id (often the sample id again) is not a phenotype
    path = tmp_path / "pheno.txt"
    path.write_text("FID\tIID\tbw\nf1\ts1\t3\nf2\ts2\t4\n")
    table = read_pheno_csv(path)
    assert table.columns.tolist() == ["bw"] and table.index.tolist() == ["s1", "s2"]


def test_read_pheno_csv__plink_missing_code_in_an_iid_keyed_table(tmp_path: Path, caplog):
    # PLINK reads -9 as a missing phenotype; a table keyed by id keeps -9 as a value
    path = tmp_path / "pheno.txt"
    path.write_text("FID\tIID\tbw\tsex\nf1\ts1\t-9\tF\nf2\ts2\t4\t-9\nf3\ts3\t-9.0\tM\n")
    with caplog.at_level(logging.INFO, logger="dpgenome.io.pheno"):
        table = read_pheno_csv(path)
    np.testing.assert_array_equal(table["bw"].to_numpy(), [np.nan, 4.0, np.nan])
    assert table["sex"].tolist() == ["F", "-9", "M"]  # a text column is not a PLINK phenotype
    assert "column bw: 2 value(s) of -9 read as missing" in caplog.text
    keyed = tmp_path / "pheno.csv"
    keyed.write_text("id,bw\ns1,-9\ns2,4\n")
    np.testing.assert_array_equal(read_pheno_csv(keyed)["bw"].to_numpy(), [-9.0, 4.0])


def test_read_pheno_csv__ids_spelt_differently_get_a_hint(tmp_path: Path, caplog):
    # "Mouse-É1" composed in the genotypes, decomposed and lower case in the phenotypes: no
    # match (ids match exactly), but the warning says why, without quoting an id
    path = tmp_path / "pheno.csv"
    decomposed = unicodedata.normalize("NFD", "mouse-é1")
    path.write_text(f"id,bw\n{decomposed},3\nm2,4\nx9,5\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="dpgenome.io.pheno"):
        table = read_pheno_csv(path, ["Mouse-É1", "m2", "m3"])
    assert np.isnan(table["bw"].iloc[0]) and table["bw"].iloc[1] == 4.0
    assert "2 of 3 genotyped samples have no phenotype row" in caplog.text
    assert "1 of the unmatched samples match a phenotype row when upper/lower case" in caplog.text
    assert "É1" not in caplog.text and "é1" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dpgenome.io.pheno"):
        read_pheno_csv(path, ["m2", "m3"])
    assert "when upper/lower case" not in caplog.text


def test_read_pheno_csv__excel_sep_line_names_the_delimiter(tmp_path: Path):
    # Excel writes "sep=;" first when asked to; it read as a 1-column header
    path = tmp_path / "pheno.csv"
    path.write_text("sep=;\r\nid;bw;round\r\ns1;3,5;SW1\r\ns2;4;SW2\r\n")
    with pytest.raises(InputError, match="numbers written with a comma") as err:
        read_pheno_csv(path)
    assert (err.value.line, err.value.column) == (3, "bw")  # file lines, the sep line counted
    path.write_text("sep=;\nid;bw;round\ns1;3.5;SW1\ns2;4;SW2\n")
    table = read_pheno_csv(path)
    assert table.columns.tolist() == ["bw", "round"] and table["bw"].tolist() == [3.5, 4.0]


def test_read_pheno_csv__lines_are_file_lines_after_a_multi_line_field(tmp_path: Path):
    path = tmp_path / "pheno.csv"
    path.write_text('id,note,mixup\na,"two\nlines",no\nb,x,no\nc,y,perhaps\n')
    with pytest.raises(InputError, match="flag value is not yes/no") as err:
        read_pheno_csv(path)
    assert (err.value.line, err.value.column) == (5, "mixup")


def test_read_cohort__map_written_by_r_with_quotes_reads_as_clean(tmp_path: Path):
    # R's write.table quotes every text field by default, the header's names too
    d = _copy(tmp_path)
    rows = [line.split(" ") for line in (d / "map.txt").read_text().splitlines()]
    quoted = [
        " ".join(f'"{v}"' if k in (0, 3, 4) or i == 0 else v for k, v in enumerate(r))
        for i, r in enumerate(rows)
    ]
    (d / "map.txt").write_text("\n".join(quoted) + "\n")
    assert_same_cohort(read_cohort(d), read_cohort(TINY / "parker"))


def _text_files(directory: Path, fmt: str) -> list[Path]:
    if fmt == "vcf":  # the BGZF file as plain text
        vcf = directory / "cohort.vcf"
        vcf.write_bytes(gzip.decompress((directory / "cohort.vcf.gz").read_bytes()))
        (directory / "cohort.vcf.gz").unlink()
    return sorted(p for p in directory.iterdir() if p.suffix != ".bed")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("change", ["bom", "crlf", "bom+crlf"])
def test_read_cohort__bom_and_crlf_read_as_the_clean_file(tmp_path: Path, fmt: str, change: str):
    # Windows tools write a UTF-8 byte-order mark and CRLF line ends: same cohort, not an error
    d = _copy(tmp_path, fmt)
    for path in _text_files(d, fmt):
        data = path.read_bytes()
        if "crlf" in change:
            data = data.replace(b"\n", b"\r\n")
        if "bom" in change:
            data = b"\xef\xbb\xbf" + data
        path.write_bytes(data)
    assert_same_cohort(read_cohort(d), read_cohort(TINY / fmt))


# ---------------------------------------------------------------------------- bad input


def _copy(tmp_path: Path, fmt: str = "parker") -> Path:
    target = tmp_path / fmt
    shutil.copytree(TINY / fmt, target)
    return target


def _edit(path: Path, line: int, old: str, new: str, count: int = 1) -> None:
    lines = path.read_text().split("\n")
    assert old in lines[line - 1], (old, lines[line - 1][:80])
    lines[line - 1] = lines[line - 1].replace(old, new, count)
    path.write_text("\n".join(lines))


def _geno_field(path: Path, line: int, column: int, value: str) -> str:
    """Replace field ``column`` (0-based) of ``line``; return the header name of that column."""
    lines = path.read_text().split("\n")
    header = lines[0].split(" ")
    fields = lines[line - 1].split(" ")
    fields[column] = value
    lines[line - 1] = " ".join(fields)
    path.write_text("\n".join(lines))
    return header[column]


BAD_INPUT = []


def bad_input(fn):
    BAD_INPUT.append(fn)
    return fn


@bad_input
def non_numeric_dosage(tmp_path):
    d = _copy(tmp_path)
    snp = _geno_field(d / "geno.txt", 5, 17, "1.4x")
    return d, "geno.txt", 5, snp, "dosage is not a number"


@bad_input
def dosage_out_of_range(tmp_path):
    d = _copy(tmp_path)
    snp = _geno_field(d / "geno.txt", 9, 30, "2.5")
    return d, "geno.txt", 9, snp, r"dosage is outside \[0, 2\]"


@bad_input
def negative_dosage(tmp_path):
    d = _copy(tmp_path)
    snp = _geno_field(d / "geno.txt", 41, 121, "-1")
    return d, "geno.txt", 41, snp, r"dosage is outside \[0, 2\]"


@bad_input
def nan_position_in_map(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "map.txt", 4, " 60000 ", " NA ")
    return d, "map.txt", 4, "pos", "missing position"


@bad_input
def duplicate_sample_id(tmp_path):
    d = _copy(tmp_path)
    text = (d / "geno.txt").read_text().split("\n")
    first = text[1].split(" ")[0]
    _edit(d / "geno.txt", 7, text[6].split(" ")[0] + " ", first + " ")
    return d, "geno.txt", 7, "id", r"duplicate sample id \(first on line 2\)"


@bad_input
def duplicate_snp_in_geno(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "geno.txt", 1, " rs1_5 ", " rs1_4 ")
    return d, "geno.txt", 1, "rs1_4", "duplicate SNP id 'rs1_4'"


@bad_input
def duplicate_snp_in_map(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "map.txt", 8, "rs1_6 ", "rs1_5 ")
    return d, "map.txt", 8, "id", r"duplicate SNP id 'rs1_5' \(first on line 7\)"


@bad_input
def snp_in_geno_not_in_map(tmp_path):
    d = _copy(tmp_path)
    lines = (d / "map.txt").read_text().split("\n")
    del lines[10]
    (d / "map.txt").write_text("\n".join(lines))
    return d, "geno.txt", 1, "rs1_9", "SNP 'rs1_9' is not in map.txt"


@bad_input
def snp_in_map_not_in_geno(tmp_path):
    d = _copy(tmp_path)
    with open(d / "map.txt", "a") as f:
        f.write("rs_extra 2 9999999 A G 0.99\n")
    return d, "map.txt", 122, "id", "SNP 'rs_extra' is not in geno.txt"


@bad_input
def unknown_chromosome(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "map.txt", 70, "rs2_8 2 ", "rs2_8 chrUn ")
    return d, "map.txt", 70, "chr", "unknown chromosome name 'chrUn'"


@bad_input
def non_integer_position(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "map.txt", 3, " 40000 ", " 40000.5 ")
    return d, "map.txt", 3, "pos", "position '40000.5' is not a non-negative integer"


@bad_input
def negative_position(tmp_path):
    d = _copy(tmp_path, "plink")
    _edit(d / "cohort.bim", 2, "\t40000\t", "\t-40000\t")
    return d, "cohort.bim", 2, "position (4)", "negative position '-40000'"


@bad_input
def no_shared_samples(tmp_path):
    d = _copy(tmp_path, "vcf")
    text = (d / "pheno.csv").read_text().replace("M07", "X07")
    (d / "pheno.csv").write_text(text)
    return d, "pheno.csv", None, "id", "no sample id is shared with the genotypes"


@bad_input
def empty_geno(tmp_path):
    d = _copy(tmp_path)
    (d / "geno.txt").write_text("")
    return d, "geno.txt", None, None, "the file is empty"


@bad_input
def empty_map(tmp_path):
    d = _copy(tmp_path)
    (d / "map.txt").write_text("\n")
    return d, "map.txt", None, None, "the file is empty"


@bad_input
def empty_pheno(tmp_path):
    d = _copy(tmp_path, "plink")
    (d / "pheno.csv").write_text("")
    return d, "pheno.csv", None, None, "the file is empty"


@bad_input
def header_only_pheno(tmp_path):
    d = _copy(tmp_path)
    header = (d / "pheno.csv").read_text().split("\n")[0]
    (d / "pheno.csv").write_text(header + "\n")
    return d, "pheno.csv", None, None, "no data rows: the file holds only its header"


@bad_input
def empty_vcf(tmp_path):
    d = _copy(tmp_path, "vcf")
    (d / "cohort.vcf.gz").unlink()
    (d / "cohort.vcf").write_text("")
    return d, "cohort.vcf", None, None, "the file is empty"


@bad_input
def tab_delimited_geno(tmp_path):
    d = _copy(tmp_path)
    (d / "geno.txt").write_text((d / "geno.txt").read_text().replace(" ", "\t"))
    return d, "geno.txt", 1, None, "looks tab-separated"


@bad_input
def ragged_geno_row(tmp_path):
    d = _copy(tmp_path)
    lines = (d / "geno.txt").read_text().split("\n")
    lines[12] = lines[12].rsplit(" ", 1)[0]
    (d / "geno.txt").write_text("\n".join(lines))
    return d, "geno.txt", 13, None, "119 dosage fields where the header has 120"


@bad_input
def ragged_map_row(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "map.txt", 20, " 0.", " 7 0.")
    return d, "map.txt", 20, None, "7 fields where 6 are expected"


@bad_input
def short_map_row(tmp_path):
    d = _copy(tmp_path)
    lines = (d / "map.txt").read_text().split("\n")
    lines[29] = lines[29].rsplit(" ", 1)[0]
    (d / "map.txt").write_text("\n".join(lines))
    return d, "map.txt", 30, None, "5 fields where 6 are expected"


@bad_input
def ragged_pheno_row(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "pheno.csv", 6, ",", ";", count=3)
    return d, "pheno.csv", 6, None, "fields where the header has 8"


@bad_input
def ragged_fam_row(tmp_path):
    d = _copy(tmp_path, "plink")
    _edit(d / "cohort.fam", 3, " 0 0 0 -9", " 0 0 -9")
    return d, "cohort.fam", 3, None, "5 fields where 6 are expected"


@bad_input
def truncated_bed(tmp_path):
    d = _copy(tmp_path, "plink")
    data = (d / "cohort.bed").read_bytes()
    (d / "cohort.bed").write_bytes(data[:-7])
    return d, "cohort.bed", None, None, "size is 1196 bytes but 1203 are expected"


@bad_input
def fam_one_row_short(tmp_path):
    # 39 samples need the same 10 bytes per variant as 40: only the padding shows it
    d = _copy(tmp_path, "plink")
    lines = (d / "cohort.fam").read_text().splitlines(keepends=True)
    (d / "cohort.fam").write_text("".join(lines[:-1]))
    return d, "cohort.fam", None, None, r"beyond the 39 samples of the \.fam \(in the unused"


@bad_input
def fam_one_row_long(tmp_path):
    # 39 samples written by write_cohort, then a 40th .fam row: it reads the zero padding
    d = _copy(tmp_path, "plink")
    cohort = read_cohort(d)
    shutil.rmtree(d)
    write_cohort(cohort.take_samples(np.arange(39)), d, "plink")
    with (d / "cohort.fam").open("a") as fam:
        fam.write("extra extra 0 0 0 -9\n")
    return d, "cohort.fam", None, None, r"lists 40 samples but row 40 has no calls in the \.bed"


@bad_input
def bed_wrong_magic(tmp_path):
    d = _copy(tmp_path, "plink")
    data = (d / "cohort.bed").read_bytes()
    (d / "cohort.bed").write_bytes(b"\x00" + data[1:])
    return d, "cohort.bed", None, None, "wrong magic bytes"


@bad_input
def corrupt_gzip_vcf(tmp_path):
    d = _copy(tmp_path, "vcf")
    data = bytearray((d / "cohort.vcf.gz").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 40] = b"\x00" * 40
    (d / "cohort.vcf.gz").write_bytes(bytes(data))
    return d, "cohort.vcf.gz", None, None, "corrupt or truncated gzip data"


@bad_input
def truncated_gzip_geno(tmp_path):
    d = _copy(tmp_path)
    data = gzip.compress((d / "geno.txt").read_bytes())
    (d / "geno.txt").unlink()
    (d / "geno.txt.gz").write_bytes(data[: len(data) // 2])
    return d, "geno.txt.gz", None, None, "corrupt or truncated gzip data"


@bad_input
def vcf_without_gt_or_ds(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    (d / "x.vcf").write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\n"
        "1\t10\tv1\tA\tG\t.\t.\t.\tGT\t0/1\t1/1\n"
        "1\t20\tv2\tA\tG\t.\t.\t.\tGQ:AD\t30:1,2\t20:3,0\n"
    )
    return d, "x.vcf", 4, "FORMAT", "has neither GT nor DS"


@bad_input
def vcf_bad_ds(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    (d / "x.vcf").write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\n"
        "1\t10\tv1\tA\tG\t.\t.\t.\tGT:DS\t0/1:1\t1/1:2.7\n"
    )
    return d, "x.vcf", 3, "11 (sample 2)", r"dosage is outside \[0, 2\]"


@bad_input
def vcf_multiallelic(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    (d / "x.vcf").write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\n"
        "1\t10\tv1\tA\tG,T\t.\t.\t.\tGT\t1/2\n"
    )
    return d, "x.vcf", 3, "ALT", "multi-allelic"


@bad_input
def bad_discard_flag(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "geno.txt", 4, " no ", " maybe ")
    return d, "geno.txt", 4, "discard", "discard must be yes or no"


@bad_input
def unbalanced_quote_in_pheno(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "pheno.csv", 4, ",SW", ',"SW')
    return d, "pheno.csv", 4, None, "malformed CSV"


@bad_input
def bad_mixup_flag_in_pheno(tmp_path):
    d = _copy(tmp_path)
    _edit(d / "pheno.csv", 10, ",no,no,", ",no,perhaps,")
    return d, "pheno.csv", 10, "mixup", "flag value is not yes/no"


def _set_bmd(d: Path, line: int, value: str) -> None:
    """Write ``value`` into the BMD column (the fifth) of pheno.csv's 1-based ``line``."""
    lines = (d / "pheno.csv").read_text().split("\n")
    fields = lines[line - 1].split(",")
    fields[4] = value
    lines[line - 1] = ",".join(fields)
    (d / "pheno.csv").write_text("\n".join(lines))


@bad_input
def infinite_phenotype(tmp_path):
    d = _copy(tmp_path, "plink")
    _set_bmd(d, 8, "inf")
    return d, "pheno.csv", 8, "BMD", "not a finite number"


@bad_input
def huge_phenotype(tmp_path):
    # finite, yet its square overflows: the GWAS would print empty p-values, exit 0
    d = _copy(tmp_path, "plink")
    _set_bmd(d, 9, "-3e300")
    return d, "pheno.csv", 9, "BMD", "magnitude above 1e\\+100: a sentinel"


@bad_input
def stray_word_in_a_numeric_phenotype(tmp_path):
    # a typo would otherwise turn the column categorical and change the analysis silently
    d = _copy(tmp_path, "plink")
    _set_bmd(d, 10, "zero")
    return d, "pheno.csv", 10, "BMD", "is not a number, but"


def test_read_cohort__a_stray_phenotype_value_is_located_never_quoted(tmp_path: Path):
    # a phenotype value is a person's, and an error message may end up in a log
    d = _copy(tmp_path, "plink")
    _set_bmd(d, 10, "1.8412kg")
    with pytest.raises(InputError, match="is not a number, but") as err:
        read_cohort(d)
    assert "1.8412" not in str(err.value)
    assert (err.value.line, err.value.column) == (10, "BMD")


@bad_input
def duplicate_pheno_id(tmp_path):
    d = _copy(tmp_path)
    lines = (d / "pheno.csv").read_text().split("\n")
    lines.insert(5, lines[2])
    (d / "pheno.csv").write_text("\n".join(lines))
    return d, "pheno.csv", 6, "id", r"duplicate sample id \(first on line 3\)"


@bad_input
def vcf_ragged_rows_that_would_realign(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    (d / "x.vcf").write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\n"
        "1\t10\tv1\tA\tG\t.\t.\t.\tGT:DS\t0/1:1\n"
        "1\t20\tv2\tA\tG\t.\t.\t.\tGT:DS\t0/1:1\t0/0:0\t1/1:2\n"
    )
    return d, "x.vcf", 3, None, "1 sample fields where the header has 2"


@bad_input
def vcf_bad_gt(tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    (d / "x.vcf").write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2\n"
        "1\t10\tv1\tA\tG\t.\t.\t.\tGT\t0/1\t0/1/1\n"
    )
    return d, "x.vcf", 3, "11 (sample 2)", "genotype is not a 0/1 call"


def _replace_bytes(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data, old
    path.write_bytes(data.replace(old, new, 1))


def _semicolon_decimal_comma(path: Path) -> None:
    """Rewrite a pheno.csv as a spreadsheet in a decimal-comma locale saves it."""
    lines = path.read_text().split("\n")
    path.write_text("\n".join(line.replace(",", ";").replace(".", ",") for line in lines))


@bad_input
def decimal_comma_pheno(tmp_path):
    # every number of BMD (NA on lines 2, 3) would otherwise be text: a categorical column
    d = _copy(tmp_path)
    _semicolon_decimal_comma(d / "pheno.csv")
    return d, "pheno.csv", 4, "BMD", "values are numbers written with a comma"


@bad_input
def one_decimal_comma_in_pheno(tmp_path):
    d = _copy(tmp_path, "plink")
    _set_bmd(d, 7, '"1,84"')
    return d, "pheno.csv", 7, "BMD", "1 of the column's .* written with a comma"


@bad_input
def unnamed_pheno_column(tmp_path):
    # R's write.csv writes row names as a first column with an empty name
    d = _copy(tmp_path)
    lines = (d / "pheno.csv").read_text().split("\n")
    lines = ['""' + "," + lines[0]] + [f"{i},{t}" for i, t in enumerate(lines[1:], 1) if t]
    (d / "pheno.csv").write_text("\n".join(lines) + "\n")
    return d, "pheno.csv", 1, 1, "column 1 has no name"


@bad_input
def both_id_and_iid_in_pheno(tmp_path):
    d = _copy(tmp_path)
    text = (d / "pheno.csv").read_text().split("\n")
    text = [t.split(",")[0] + "," + t if t else t for t in text]
    text[0] = text[0].replace("id,id,", "id,IID,", 1)
    (d / "pheno.csv").write_text("\n".join(text))
    return d, "pheno.csv", 1, "IID", "two sample id columns"


@bad_input
def latin1_sample_id_in_geno(tmp_path):
    # decoded with replacement, two such ids became equal, or one matched no phenotype row
    d = _copy(tmp_path)
    _replace_bytes(d / "geno.txt", b"\nM0700003 ", b"\nM07\xe90003 ")
    return d, "geno.txt", 5, "id", "not UTF-8 text"


@bad_input
def latin1_sample_id_in_fam(tmp_path):
    d = _copy(tmp_path, "plink")
    _replace_bytes(d / "cohort.fam", b"M0700002 M0700002", b"M07\xe90002 M07\xe90002")
    return d, "cohort.fam", 3, None, "not UTF-8 text"


@bad_input
def latin1_sample_id_in_vcf(tmp_path):
    d = _copy(tmp_path, "vcf")
    _text_files(d, "vcf")
    _replace_bytes(d / "cohort.vcf", b"\tM0700001\t", b"\tM07\xe90001\t")
    return d, "cohort.vcf", 8, "11 (sample 2)", "not UTF-8 text"


@bad_input
def latin1_pheno(tmp_path):
    d = _copy(tmp_path)
    _replace_bytes(d / "pheno.csv", b",SW18\n", b",SW\xe918\n")
    return d, "pheno.csv", 2, None, "not UTF-8 text"


@bad_input
def utf16_pheno(tmp_path):
    # Excel's "Unicode Text"
    d = _copy(tmp_path)
    (d / "pheno.csv").write_bytes((d / "pheno.csv").read_text().encode("utf-16"))
    return d, "pheno.csv", None, None, "UTF-16 text"


@bad_input
def doubled_space_in_geno_header(tmp_path):
    d = _copy(tmp_path)
    _replace_bytes(d / "geno.txt", b" rs1_1 ", b"  rs1_1 ")
    return d, "geno.txt", 1, None, "field 4 of the header is empty"


@bad_input
def quoted_geno_header(tmp_path):
    d = _copy(tmp_path)
    _replace_bytes(d / "geno.txt", b"id discard ", b'"id" "discard" ')
    return d, "geno.txt", 1, None, r"must not be quoted \(R: write.table"


@bad_input
def geno_with_bare_cr_line_ends(tmp_path):
    d = _copy(tmp_path)
    (d / "geno.txt").write_bytes((d / "geno.txt").read_bytes().replace(b"\n", b"\r"))
    return d, "geno.txt", 1, None, "lines end in a bare CR"


@bad_input
def vcf_blank_line_before_header(tmp_path):
    d = _copy(tmp_path, "vcf")
    _text_files(d, "vcf")
    _replace_bytes(d / "cohort.vcf", b"\n#CHROM", b"\n\n#CHROM")
    return d, "cohort.vcf", 8, None, "neither a '##' meta-information line nor the '#CHROM'"


@bad_input
def vcf_duplicate_sample_is_located(tmp_path):
    d = _copy(tmp_path, "vcf")
    _text_files(d, "vcf")
    _replace_bytes(d / "cohort.vcf", b"\tM0700003\t", b"\tM0700001\t")
    return d, "cohort.vcf", 8, "13 (sample 4)", r"duplicate sample id \(first in column 11"


@bad_input
def dangling_pheno_link(tmp_path):
    # read as "no pheno.csv": a cohort without phenotypes
    d = _copy(tmp_path)
    (d / "pheno.csv").unlink()
    (d / "pheno.csv").symlink_to(tmp_path / "absent.csv")
    return d, "pheno.csv", None, None, "cannot open"


@bad_input
def dangling_qual_link(tmp_path):
    # read as "no .qual": every SNP's quality missing, so the quality filter dropped none
    d = _copy(tmp_path, "plink")
    (d / "cohort.qual").unlink()
    (d / "cohort.qual").symlink_to(tmp_path / "absent.qual")
    return d, "cohort.qual", None, None, "cannot open"


@pytest.mark.parametrize("make", BAD_INPUT, ids=[f.__name__ for f in BAD_INPUT])
def test_read_cohort__bad_input_names_file_line_and_column(tmp_path: Path, make):
    directory, file, line, column, message = make(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(InputError, match=message) as err:
        read_cohort(directory)
    ids = read_cohort(TINY / "parker").sample_ids.astype(str)
    assert not [i for i in ids if i in str(err.value)]  # located, never quoted
    assert err.value.file is not None and Path(err.value.file).name == file
    assert err.value.line == line
    assert err.value.column == column
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_read_cohort__trailing_spaces_in_geno_are_not_fields(tmp_path: Path) -> None:
    """Some writers leave a space at the end of each line of geno.txt; it is not an empty
    last field (it was an error on the header and on every row)."""
    d = _copy(tmp_path)
    path = d / "geno.txt"
    path.write_bytes(path.read_bytes().replace(b"\n", b"  \n"))
    spaced, plain = read_cohort(d), read_cohort(TINY / "parker")
    assert list(spaced.sample_ids) == list(plain.sample_ids)
    np.testing.assert_array_equal(spaced.dosages, plain.dosages)
