"""``dpgenome inspect COHORT [--json]``: summary contents, the JSON contract (plain integer
``n_samples``/``n_variants`` after QC), identical answers for every format, exit code 2 with
a located message for bad input, and no individual-level data in the output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dpgenome.cli import main
from dpgenome.cohort import qc
from dpgenome.io import read_cohort
from dpgenome.phenoencoding import cfw_schema

DATA = Path(__file__).resolve().parent / "data"
TINY = DATA / "tiny"
FORMATS = ("parker", "plink", "vcf")


def _inspect(*args: str):
    return CliRunner().invoke(main, ["inspect", *args])


def test_inspect__human_summary(tmp_path: Path):
    result = _inspect(str(TINY / "parker"))
    assert result.exit_code == 0, result.output
    kept, report = qc(read_cohort(TINY / "parker"))
    text = result.output
    assert "samples: 40 read, 38 after QC" in text
    assert f"SNPs: 120 read, {kept.n_variants} after QC" in text
    per_chr = kept.variants["chr"].value_counts()
    assert f"SNPs per chromosome after QC: 1: {per_chr['1']}, 2: {per_chr['2']}" in text
    assert "missing dosages as read:" in text and "MAF after QC (median" in text
    assert "abBMD" in text and "binary" in text and "categorical" in text
    for line in report.lines():
        assert line in text


def test_inspect__json_contract_and_same_answer_for_every_format():
    answers = {}
    for fmt in FORMATS:
        result = _inspect(str(TINY / fmt), "--json")
        assert result.exit_code == 0, result.output
        answers[fmt] = json.loads(result.stdout)
    kept, report = qc(read_cohort(TINY / "parker"))
    doc = answers["parker"]
    assert type(doc["n_samples"]) is int and type(doc["n_variants"]) is int
    assert (doc["n_samples"], doc["n_variants"]) == (kept.n_samples, kept.n_variants)
    assert doc["qc"] == report.to_dict()
    assert doc["format"] == "parker" and doc["n_samples_read"] == 40
    assert sum(doc["maf"]["counts"]) == kept.n_variants
    assert {p["name"]: p["type"] for p in doc["phenotypes"]}["round"] == "categorical"
    for fmt in ("plink", "vcf"):
        other = dict(answers[fmt])
        assert other.pop("format") == fmt
        other.pop("source")
        same = {k: v for k, v in doc.items() if k not in ("format", "source")}
        assert other == same


def test_inspect__output_holds_no_sample_ids():
    ids = read_cohort(TINY / "parker").sample_ids.astype(str)
    for args in ((), ("--json",)):
        out = _inspect(str(TINY / "vcf"), *args).output
        assert not [i for i in ids if i in out]


def test_inspect__qc_thresholds_are_options():
    result = _inspect(str(TINY / "plink"), "--json", "--min-maf", "0.3")
    doc = json.loads(result.stdout)
    kept, _ = qc(read_cohort(TINY / "plink"))
    assert doc["n_variants"] < kept.n_variants
    assert doc["qc"][-1]["reason"] == "minor allele frequency <= 30% or not observed"


def test_inspect__bad_input_exits_2_with_location(tmp_path: Path):
    shutil.copytree(TINY / "parker", tmp_path / "c")
    geno = tmp_path / "c" / "geno.txt"
    lines = geno.read_text().split("\n")
    fields = lines[4].split(" ")
    fields[10] = "abc"
    lines[4] = " ".join(fields)
    geno.write_text("\n".join(lines))
    snp = lines[0].split(" ")[10]
    result = _inspect(str(tmp_path / "c"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert f"geno.txt, line 5, column {snp}: dosage is not a number" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_inspect__several_formats_in_one_directory_exits_2(tmp_path: Path):
    shutil.copytree(TINY / "plink", tmp_path / "c")
    shutil.copy(TINY / "vcf" / "cohort.vcf.gz", tmp_path / "c")
    result = _inspect(str(tmp_path / "c"))
    assert result.exit_code == 2
    assert "several genotype files: cohort.bed, cohort.vcf.gz" in result.stderr


def test_inspect__console_script_exit_code_and_streams(tmp_path: Path):
    exe = Path(sys.executable).with_name("dpgenome")
    if not exe.exists():
        pytest.skip("the dpgenome console script is not installed next to this Python")
    ok = subprocess.run(
        [str(exe), "inspect", str(TINY / "plink"), "--json"], capture_output=True, text=True
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["n_samples"] == 38
    shutil.copytree(TINY / "plink", tmp_path / "c")
    bed = tmp_path / "c" / "cohort.bed"
    bed.write_bytes(bed.read_bytes()[:100])
    bad = subprocess.run([str(exe), "inspect", str(tmp_path / "c")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "cohort.bed: size is 100 bytes but 1203 are expected" in bad.stderr
    assert "Traceback" not in bad.stderr


def _bad_inputs():
    from test_io import BAD_INPUT  # the builders of every bad input of issue 2

    return BAD_INPUT


@pytest.mark.parametrize("make", _bad_inputs(), ids=lambda f: f.__name__)
def test_inspect__every_bad_input_exits_2_naming_file_and_line(tmp_path: Path, make):
    directory, file, line, column, _ = make(tmp_path)
    result = _inspect(str(directory))
    assert result.exit_code == 2, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and f"{file}" in message
    if line is not None:
        assert f", line {line}" in message
    if column is not None:
        assert f", column {column}" in message


def test_inspect__says_what_fixes_each_phenotype_type(tmp_path: Path):
    """Before a DP release staff see which columns nothing public types; a --pheno-schema
    file types them (and the cohort is checked against it: a bad one exits 2)."""
    text = _inspect(str(TINY / "parker")).output
    assert "bw     continuous   observed     35, missing   7.9%; type from data" in text
    assert "abBMD  binary       observed     34, missing  10.5%; type from public CFW table" in text
    assert "SW16   binary       observed     38, missing   0.0%; type from one-hot of round" in text
    assert "1 column(s) typed from the data (bw): declare them" in text
    assert "categorical (" not in text
    # a text column nothing public declares: a DP release refuses it, inspect says so first
    cohort = tmp_path / "site"
    shutil.copytree(TINY / "parker", cohort)
    rows = (cohort / "pheno.csv").read_text().splitlines()
    sites = ["site"] + ["A" if i % 2 else "B" for i in range(len(rows) - 1)]
    delim = "," if "," in rows[0] else "\t"
    (cohort / "pheno.csv").write_text(
        "\n".join(f"{row}{delim}{site}" for row, site in zip(rows, sites, strict=True)) + "\n"
    )
    text = _inspect(str(cohort)).output
    assert "1 of them categorical (site): a DP release refuses them undeclared" in text
    schema = tmp_path / "s.yaml"
    schema.write_text("columns:\n  bw: {type: continuous, range: [0, 80]}\n")
    result = _inspect(str(TINY / "parker"), "--pheno-schema", str(schema), "--json")
    assert result.exit_code == 0, result.output
    typed = {p["name"]: p["typed_by"] for p in json.loads(result.output)["phenotypes"]}
    assert typed == {
        "abBMD": "public CFW table",
        "BMD": "public CFW table",
        "bw": "s.yaml",
        "SW16": "one-hot of round",
        "round": "public CFW table",
    }
    schema.write_text("columns:\n  round: {type: categorical, levels: [A]}\n")
    result = _inspect(str(TINY / "parker"), "--pheno-schema", str(schema))
    assert result.exit_code == 2, result.output
    assert "pheno.csv, line 2, column round: 40 level(s) not among" in result.output


def _recode(tmp_path: Path) -> Path:
    """The tiny cohort with rounds outside the public CFW schema's (SW99) and the CFW binary
    ``deaf`` coded 1/2."""
    cohort = tmp_path / "recoded"
    shutil.copytree(TINY / "parker", cohort)
    rows = (cohort / "pheno.csv").read_text().splitlines()
    header = rows[0].split(",")
    at = header.index("round")
    out = [f"{rows[0]},deaf"]
    for i, row in enumerate(rows[1:]):
        fields = row.split(",")
        if i % 5 == 1:
            fields[at] = "SW99"
        out.append(",".join(fields) + (",2" if i % 3 == 0 else ",1"))
    (cohort / "pheno.csv").write_text("\n".join(out) + "\n")
    return cohort


def test_inspect__counts_phenotype_values_the_synthesizer_reads_as_missing(tmp_path: Path):
    """A level outside a column's public levels (and a binary value other than 0/1) used to be
    trained on as missing, unannounced: inspect counts them per column (after sample QC),
    says why and what to do, in text and JSON, quoting no value and no sample id."""
    cohort = _recode(tmp_path)
    kept, _ = qc(read_cohort(cohort))
    levels = cfw_schema().columns["round"].levels
    rounds = kept.phenotypes["round"]
    n_round = int((rounds.notna() & ~rounds.isin(levels)).sum())
    n_deaf = int((kept.phenotypes["deaf"] == 2).sum())
    assert (n_round, n_deaf) == (7, 13)  # of the 38 samples QC keeps

    result = _inspect(str(cohort))
    assert result.exit_code == 0, result.output
    text = result.output
    assert (
        "  round: 7 observed value(s) have a level not in the schema (type from public CFW "
        "table): synthesize and release train on them as missing; declare the column's levels "
        "in a --pheno-schema file or recode the values"
    ) in text
    assert (
        "  deaf: 13 observed value(s) are not 0 or 1 (type from public CFW table): synthesize "
        "and release refuse the column (its type read from the data is not the schema's); "
        "recode the column to 0 / 1 or declare its type (and levels) in a --pheno-schema file"
    ) in text
    doc = json.loads(_inspect(str(cohort), "--json").stdout)
    assert doc["phenotype_values_encoded_as_missing"] == [
        {
            "name": "round",
            "count": 7,
            "reason": "level not in the schema",
            "refused": False,
            "typed_by": "public CFW table",
        },
        {
            "name": "deaf",
            "count": 13,
            "reason": "not 0 or 1",
            "refused": True,
            "typed_by": "public CFW table",
        },
    ]
    ids = read_cohort(cohort).sample_ids.astype(str)
    for out in (text, json.dumps(doc)):
        assert "SW99" not in out and not [i for i in ids if i in out]

    # clean columns: no line, an empty list
    clean = _inspect(str(TINY / "parker"), "--json")
    assert json.loads(clean.stdout)["phenotype_values_encoded_as_missing"] == []
    assert "observed value(s)" not in _inspect(str(TINY / "parker")).output
    # a --pheno-schema declaration covering the values (it replaces the CFW entries)
    schema = tmp_path / "s.yaml"
    schema.write_text(
        "columns:\n"
        f"  round: {{type: categorical, levels: [{', '.join([*levels, 'SW99'])}]}}\n"
        "  deaf: {type: categorical, levels: [1, 2]}\n"
    )
    declared = _inspect(str(cohort), "--pheno-schema", str(schema), "--json")
    assert declared.exit_code == 0, declared.output
    assert json.loads(declared.stdout)["phenotype_values_encoded_as_missing"] == []


def test_inspect__says_when_the_allele_order_was_read_off_the_genotypes(tmp_path: Path):
    """A ``.bim`` listing each SNP's minor allele as A1 (plink 1.9 without
    --keep-allele-order): inspect says a DP release refuses to copy that order; a map in
    another order says nothing."""
    import numpy as np

    from dpgenome.cohort import swap_alleles
    from dpgenome.io import write_cohort

    tiny = read_cohort(TINY / "plink")
    assert (
        json.loads(_inspect(str(TINY / "plink"), "--json").stdout)["allele_order_from_data"] is None
    )
    assert "allele order" not in _inspect(str(TINY / "plink")).output
    write_cohort(swap_alleles(tiny, np.flatnonzero(tiny.alt_frequency() > 0.5)), tmp_path, "plink")
    text = _inspect(str(tmp_path)).output
    assert "allele order: the minor allele is the counted one" in text
    assert "--allele-order sorted" in text
    assert json.loads(_inspect(str(tmp_path), "--json").stdout)["allele_order_from_data"] == "minor"
