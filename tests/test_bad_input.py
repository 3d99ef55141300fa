"""Bad input found by a biobank-staff review of the CLI (stop 45): each case exits 2 with a
message naming the file, line and column, quotes no individual's data, leaves nothing
written, and is never silently accepted."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from dpgenome.audit.neighbours import window_duplicate_rate
from dpgenome.cli import main
from dpgenome.cli.audit import read_holdout_ids
from dpgenome.cohort import analysis_subset
from dpgenome.config import parse_epsilon
from dpgenome.errors import CohortError, ConfigError, InputError, PolicyError
from dpgenome.gwas_comparison import normalise_gwas
from dpgenome.io import read_cohort
from dpgenome.policy import parse_policy

TINY = Path(__file__).resolve().parent / "data" / "tiny"


def _run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _copy(tmp_path: Path, fmt: str = "plink") -> Path:
    out = tmp_path / fmt
    shutil.copytree(TINY / fmt, out)
    return out


def test_pheno_table_without_a_header_quotes_none_of_its_first_line(tmp_path: Path) -> None:
    """A PLINK-style ``FID IID value`` table without a header row: the error named the file
    and line but quoted the line, a real sample id and phenotype value."""
    cohort = _copy(tmp_path)
    lines = (cohort / "pheno.csv").read_text().splitlines()
    first = lines[1]
    (cohort / "pheno.csv").write_text("\n".join(lines[1:]) + "\n")
    res = _run("inspect", cohort)
    assert res.exit_code == 2 and "pheno.csv, line 1" in res.output
    assert "header" in res.output and "not quoted" in res.output
    for field in first.split(","):
        if len(field) > 2:  # a sample id or a value
            assert field not in res.output, field


def test_a_position_beyond_64_bits_is_located_not_a_traceback(tmp_path: Path) -> None:
    cohort = _copy(tmp_path)
    bim = (cohort / "cohort.bim").read_text().splitlines()
    fields = bim[4].split("\t")
    fields[3] = "99999999999999999999"
    bim[4] = "\t".join(fields)
    (cohort / "cohort.bim").write_text("\n".join(bim) + "\n")
    res = _run("inspect", cohort)
    assert res.exit_code == 2, res.output
    assert "cohort.bim, line 5, column position (4)" in res.output and "too large" in res.output


@pytest.mark.parametrize(("value", "ok"), [("O.9", False), ("NaN", False), (".", True)])
def test_vcf_quality_that_is_not_a_number_is_an_error(tmp_path: Path, value: str, ok: bool) -> None:
    """INFO=O.9 read as "no quality" let the SNP pass the quality filter that the same typo
    in a map file stops; ``.`` (VCF's missing value) still means unknown."""
    cohort = _copy(tmp_path, "vcf")
    text = gzip.decompress((cohort / "cohort.vcf.gz").read_bytes()).decode()
    text = text.replace("INFO=0.971", f"INFO={value}", 1)
    (cohort / "cohort.vcf.gz").unlink()
    (cohort / "cohort.vcf").write_text(text)
    if ok:
        assert np.isnan(read_cohort(cohort).variants["quality"].iloc[1])
        return
    with pytest.raises(InputError, match="is not a number") as err:
        read_cohort(cohort)
    assert (err.value.line, err.value.column) == (10, "INFO")


def test_an_unwritable_out_is_a_located_error_before_any_work(tmp_path: Path) -> None:
    """``--out`` under a file: a traceback after training (synthesize) or at the write
    (gwas); now exit 2 naming the path, before any work, nothing written."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = _run(
        "synthesize", TINY / "plink", "--pheno", "BMD", "--epsilon", "inf", "--out", afile / "o"
    )
    assert res.exit_code == 2 and "is a file" in res.output, res.output
    res = _run("gwas", TINY / "plink", "--pheno", "BMD", "--out", afile / "g.tsv")
    assert res.exit_code == 2 and "afile" in res.output, res.output
    assert afile.read_text() == "x"


def _gwas_table(**changes: object) -> pd.DataFrame:
    table = pd.DataFrame(
        {"id": ["a", "b", "c"], "chr": ["1", "1", "2"], "pos": [10, 20, 30], "p": [0.5, 1e-9, 0.2]}
    )
    for key, value in changes.items():
        column, row = key.rsplit("_", 1)
        table[column] = table[column].astype(object)
        table.loc[int(row), column] = value
    return table


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"p_1": "abc"}, "line 3, column p: non-numeric value 'abc'"),
        ({"p_1": -0.5}, "line 3, column p: p-values must lie in [0, 1]"),
        ({"p_0": 1.5}, "line 2, column p: p-values must lie in [0, 1]"),
        ({"pos_2": "NA"}, "line 4, column pos: missing value"),
    ],
)
def test_gwas_tables_refuse_values_they_read_as_missing(change: dict, message: str) -> None:
    """A p-value of "abc" or -0.5 was read as missing: a real hit vanished and the comparison
    reported a spurious locus, exit 0. NA stays a missing p-value (plink2 writes it)."""
    with pytest.raises(InputError) as err:
        normalise_gwas(_gwas_table(**change), source="real.tsv")
    assert str(err.value) == f"real.tsv, {message}" or message in str(err.value)
    out = normalise_gwas(_gwas_table(p_0="NA"), source="real.tsv")
    assert np.isnan(out["log10_p"].iloc[0]) and out["log10_p"].iloc[1] == pytest.approx(9.0)


def test_window_duplicate_rate_without_a_window_is_not_measured() -> None:
    """No chromosome with a whole window's SNPs: NaN made audit.json invalid JSON (exit 1);
    the rate is now None (not measured)."""
    empty = np.zeros((5, 0), dtype=np.uint64)
    assert window_duplicate_rate(empty, empty) is None
    keys = np.arange(6, dtype=np.uint64).reshape(3, 2)
    assert window_duplicate_rate(keys, keys[:1]) == pytest.approx(2 / 6)


def test_a_covariate_that_is_the_phenotype_is_refused() -> None:
    cohort = read_cohort(TINY / "plink")
    with pytest.raises(CohortError, match="'bw' is the analysis phenotype"):
        analysis_subset(cohort, "bw", ["bw"])
    with pytest.raises(CohortError, match="'SW16' is named twice"):
        analysis_subset(cohort, "bw", ["SW16", "SW16"])
    res = _run("gwas", TINY / "plink", "--pheno", "bw", "--covar", "bw", "--out", "x.tsv")
    assert res.exit_code == 2 and "cannot also be a covariate" in res.output


def test_export_of_a_results_json_that_is_a_directory(tmp_path: Path) -> None:
    release = tmp_path / "release"
    (release / "results.json").mkdir(parents=True)
    (release / "data.txt").write_text("x")
    res = _run("export", release, "--policy", "consortium", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "results.json" in res.output and "cannot read" in res.output
    assert not (tmp_path / "o").exists()


def test_holdout_list_with_a_bom_and_one_that_is_not_utf8(tmp_path: Path) -> None:
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfM0700000\r\nM0700001\r\n")
    assert read_holdout_ids(str(bom)) == (["M0700000", "M0700001"], [1, 2])
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"M0700000\nM07\xe900001\n")
    with pytest.raises(InputError) as err:
        read_holdout_ids(str(latin))
    assert err.value.line == 2 and "M07" not in str(err.value)


def test_inspect_reports_what_synthesize_will_refuse(tmp_path: Path) -> None:
    """abBMD = 2 where the public CFW schema types abBMD 0/1: inspect exited 0 with nothing
    to say, and synthesize refused the file; inspect now says so, naming the line."""
    cohort = _copy(tmp_path)
    table = pd.read_csv(cohort / "pheno.csv", dtype=str, keep_default_na=False)
    row = int(np.flatnonzero(table["abBMD"].isin(["0", "1"]).to_numpy())[0])
    table.loc[row, "abBMD"] = "2"
    table.to_csv(cohort / "pheno.csv", index=False)
    res = _run("inspect", cohort, "--json")
    assert res.exit_code == 0
    problem = json.loads(res.stdout)["schema_problem"]
    assert f"line {row + 2}, column abBMD" in problem
    assert "synthesize and release refuse" in _run("inspect", cohort).output
    assert json.loads(_run("inspect", TINY / "plink", "--json").stdout)["schema_problem"] is None


@pytest.mark.parametrize(
    "line",
    [
        "  max_epsilon: -1",
        "  max_lifetime_epsilon: 0",
        "  max_replace_one_epsilon: -3",
        "kinship:\n  max_excess_first_degree_rate: -0.5",
    ],
)
def test_policy_thresholds_that_block_everything_are_refused_at_their_line(line: str) -> None:
    text = "schema_version: 1\nname: t\nprivacy:\n  max_delta: auto\n" + line + "\n"
    with pytest.raises(PolicyError) as err:
        parse_policy(text)
    assert err.value.line is not None and err.value.line >= 5


def test_an_epsilon_too_large_for_a_float_is_not_no_privacy() -> None:
    with pytest.raises(ConfigError, match="too large"):
        parse_epsilon("1e400")
    assert parse_epsilon("inf") == float("inf") and parse_epsilon("1e300") == 1e300
    res = _run("synthesize", TINY / "plink", "--pheno", "BMD", "--epsilon", "1e400", "--out", "o")
    assert res.exit_code == 2 and "write the word inf" in res.output


@pytest.mark.parametrize("value", ["97.1", "-0.1"])
def test_a_map_quality_outside_0_1_is_an_error(tmp_path: Path, value: str) -> None:
    """A quality written in percent turned the quality filter off without a word ("dropped 0
    variants: quality <= 0.95")."""
    cohort = _copy(tmp_path)
    qual = (cohort / "cohort.qual").read_text().splitlines()
    snp = qual[2].split()[0]
    qual[2] = f"{snp} {value}"
    (cohort / "cohort.qual").write_text("\n".join(qual) + "\n")
    res = _run("inspect", cohort)
    assert res.exit_code == 2 and "cohort.qual, line 3" in res.output and "[0, 1]" in res.output


def test_export_out_inside_the_release_directory_is_refused(tmp_path: Path) -> None:
    release = tmp_path / "release"
    release.mkdir()
    (release / "results.json").write_text("{}")
    res = _run("export", release, "--policy", "consortium", "--out", release / "bundle")
    assert res.exit_code == 2 and "inside RELEASE_DIR" in res.output
    assert not (release / "bundle").exists()


@pytest.mark.parametrize(
    ("ref", "alt", "column", "why"),
    [
        ("", "C", "REF", "REF is empty"),
        ("T", "T", "ALT", "ALT equals REF"),
        ("T", "<DEL>", "ALT", "is symbolic"),
    ],
)
def test_vcf_records_that_are_not_biallelic_snps(
    tmp_path: Path, ref: str, alt: str, column: str, why: str
) -> None:
    """An empty REF, ALT = REF or a symbolic ALT was read as an ordinary SNP."""
    cohort = _copy(tmp_path, "vcf")
    lines = gzip.decompress((cohort / "cohort.vcf.gz").read_bytes()).decode().splitlines()
    at = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    fields = lines[at].split("\t")
    fields[3], fields[4] = ref, alt
    lines[at] = "\t".join(fields)
    (cohort / "cohort.vcf.gz").unlink()
    (cohort / "cohort.vcf").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=why) as err:
        read_cohort(cohort)
    assert (err.value.line, err.value.column) == (at + 1, column)


def test_gwas_table_ragged_row_and_bad_bytes_are_located(tmp_path: Path) -> None:
    """``compare`` passed pandas' text through (no line) for a ragged row and gave a byte
    position for a non-UTF-8 table; both now name the line."""
    from dpgenome.gwas_comparison import read_gwas_tsv

    good = "id\tchr\tpos\tp\na\t1\t10\t0.5\nb\t1\t20\t1e-9\n"
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text(good + "c\t2\t30\t0.2\textra\n")
    with pytest.raises(InputError, match="5 fields where 4 are expected") as err:
        read_gwas_tsv(ragged)
    assert err.value.line == 4
    latin = tmp_path / "latin.tsv"
    latin.write_bytes(good.encode() + b"r\xe9s\t2\t30\t0.2\n")
    with pytest.raises(InputError, match="not UTF-8") as err:
        read_gwas_tsv(latin)
    assert err.value.line == 4
    assert len(read_gwas_tsv(_write(tmp_path / "ok.tsv", good))) == 2


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_gwas_table_errors_name_the_file_line_after_a_blank_line(tmp_path: Path) -> None:
    from dpgenome.gwas_comparison import read_gwas_tsv

    path = _write(tmp_path / "g.tsv", "id\tchr\tpos\tp\na\t1\t10\t0.5\n\nb\t1\t20\t0.S\n")
    with pytest.raises(InputError, match=r"non-numeric value '0\.S'") as err:
        read_gwas_tsv(path)
    assert err.value.line == 4


def test_a_failed_replace_puts_the_previous_output_back(tmp_path: Path, monkeypatch) -> None:
    """``atomic_directory(overwrite=True)`` moves the previous output aside first; when the
    new one then cannot be moved in, the previous one goes back (it was left under a hidden
    name)."""
    from dpgenome.io import files

    out = tmp_path / "synthetic"
    out.mkdir()
    (out / "geno.txt").write_text("previous\n")
    real_rename = files.os.rename

    def failing(src, dst):
        if Path(dst) == out and ".tmp" in Path(src).name:
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(files.os, "rename", failing)
    with pytest.raises(InputError, match="No space left"):
        with files.atomic_directory(out, overwrite=True) as tmp:
            (tmp / "geno.txt").write_text("new\n")
    assert (out / "geno.txt").read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


def test_a_yaml_epsilon_that_overflows_is_not_no_privacy(tmp_path: Path) -> None:
    """YAML reads ``epsilon: 1.0e+400`` as the float inf: refused at its key and line; the
    word ``inf`` still means no formal privacy."""
    from dpgenome.config import ReleaseConfig, config_key_lines, load_config_file

    base = {"cohort": "c", "policy": "p", "out": "o"}
    for text in ("1.0e+400", ".inf"):
        path = _write(tmp_path / "c.yaml", f"pheno: abBMD\nepsilon: {text}\n")
        with pytest.raises(ConfigError, match="write the word inf") as err:
            ReleaseConfig.from_mapping(
                {**load_config_file(path), **base}, source=str(path), lines=config_key_lines(path)
            )
        assert err.value.line == 2
    path = _write(tmp_path / "c.yaml", "pheno: abBMD\nepsilon: inf\n")
    config = ReleaseConfig.from_mapping({**load_config_file(path), **base}, source=str(path))
    assert config.no_formal_privacy


def test_gwas_table_row_short_of_a_field_is_located_not_shifted(tmp_path: Path) -> None:
    """A row missing a field in its middle was read with its later values one column left
    (its ``n`` as its ``log10_p``: a made-up hit and spurious locus, exit 0)."""
    from dpgenome.gwas_comparison import read_gwas_tsv

    header = "id\tchr\tpos\tbeta\tlog10_p\tn\n"
    rows = "a\t1\t10\t0.1\t0.5\t300\n\nb\t1\t20\t0.2\t300\nc\t1\t30\t0.1\t1.0\t300\n"
    with pytest.raises(InputError, match="5 fields where the header has 6") as err:
        read_gwas_tsv(_write(tmp_path / "short.tsv", header + rows))
    assert err.value.line == 4  # after the blank line, as the file numbers it
    commas = "id,chr,pos,p\na,1,10,0.5\nb,1,20\n"
    with pytest.raises(InputError, match="3 fields where the header has 4"):
        read_gwas_tsv(_write(tmp_path / "short.csv", commas))
    quoted = 'id,chr,pos,p\n"rs1,x",1,10,0.5\n'  # a quoted separator is no field
    assert read_gwas_tsv(_write(tmp_path / "quoted.csv", quoted))["id"].tolist() == ["rs1,x"]


def test_out_as_the_current_folder_is_refused_before_any_work(tmp_path: Path, monkeypatch) -> None:
    """``--out .`` was renamed into place over the folder the command ran in: a traceback
    (``PosixPath('.') has an empty name``) and, for synthesize, a release charged to the
    lifetime ledger and left in a hidden folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    res = _run("simulate", "--out", ".", "--n", 10, "--chromosomes", 19)
    assert res.exit_code == 2 and "is the current folder" in res.output
    res = _run("simulate", "--out", "..", "--n", 10, "--chromosomes", 19)
    assert res.exit_code == 2 and "is the current folder or holds it" in res.output
    db = tmp_path / "life.sqlite"
    res = _run(
        "synthesize", TINY / "parker", "--pheno", "abBMD", "--epsilon", 8, "--out", ".",
        "--lifetime-db", db,
    )  # fmt: skip
    assert res.exit_code == 2 and "is the current folder" in res.output
    assert not db.exists()  # refused before the ledger was touched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert not any(work.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("audit", TINY / "parker", "--synthetic", TINY / "parker", "--seed", -1), "--seed"),
        (("release", "--seed", -1), "--seed"),
        (("synthesize", TINY / "parker", "--pheno", "abBMD", "--epsilon", "-inf"), "positive"),
        (("synthesize", TINY / "parker", "--pheno", "abBMD", "--delta", "abc"), "delta"),
    ],
)
def test_option_values_no_command_can_use(args: tuple, message: str, tmp_path: Path) -> None:
    """A negative seed was a traceback when the synthesis or audit started; ``-inf`` was
    called too large for a number; ``--delta abc`` gave Python's float() message."""
    res = _run(*args, "--out", tmp_path / "o")
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("epsilon: true", "epsilon must be a positive number or 'inf', got True"),
        ("epsilon: [8]", "epsilon must be a positive number or 'inf', got [8]"),
        ("seed: -1", "expected a seed from 0"),
        ("delta: abc", "delta must be 'auto' or a number in (0, 1)"),
    ],
)
def test_release_yaml_values_of_the_wrong_kind_are_refused(
    tmp_path: Path, line: str, message: str
) -> None:
    """``epsilon: true`` trained at epsilon 1 (a bool is an int in Python)."""
    from dpgenome.config import ReleaseConfig, config_key_lines, load_config_file

    path = _write(tmp_path / "c.yaml", f"pheno: abBMD\n{line}\n")
    base = {"cohort": "c", "policy": "p", "out": "o"}
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        ReleaseConfig.from_mapping(
            {**load_config_file(path), **base}, source=str(path), lines=config_key_lines(path)
        )
    assert err.value.line == 2


def test_a_bad_signing_key_is_refused_before_the_ingest(tmp_path: Path, monkeypatch) -> None:
    """``release --signing-key`` was read only at export, after minutes of training."""
    from dpgenome import release as rel
    from dpgenome.config import ReleaseConfig

    def no_ingest(config):
        raise AssertionError("ingest ran: the key was not checked first")

    monkeypatch.setattr(rel, "ingest", no_ingest)
    key = _write(tmp_path / "key.pem", "not a key\n")
    config = ReleaseConfig(
        cohort=str(TINY / "parker"),
        pheno="abBMD",
        policy="internal",
        out=str(tmp_path / "out"),
        signing_key=str(key),
    )
    with pytest.raises(InputError, match="not an unencrypted PEM private key") as err:
        rel.run_release(config, lifetime=None)
    assert "key.pem" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_bad_option_beside_a_config_file_is_named_as_the_option(tmp_path: Path) -> None:
    """With ``--config``, an option's bad value was blamed on the file ("release.yaml: key
    'holdout_fraction'"), which had no such key."""
    config = _write(
        tmp_path / "release.yaml",
        f"cohort: {TINY / 'parker'}\npheno: abBMD\npolicy: internal\nout: {tmp_path / 'o'}\n",
    )
    for args, flag in (
        (("--holdout-fraction", 0), "--holdout-fraction (command line)"),
        (("--n", 0), "--n (command line): key 'n_synthetic'"),
        (("--epsilon", "abc"), "--epsilon (command line)"),
    ):
        res = _run("release", "--config", config, *args)
        assert res.exit_code == 2 and flag in res.output, res.output
        assert "release.yaml" not in res.output
    bad = _write(tmp_path / "bad.yaml", config.read_text() + "n: 0\n")
    res = _run("release", "--config", bad)
    assert res.exit_code == 2 and "bad.yaml, line 5: key 'n_synthetic'" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--min-maf", "nan"), "min_maf must be a number in [0, 0.5)"),
        (("--min-quality", "nan"), "min_quality must be a number in [0, 1)"),
        (("--min-quality", "2"), "not in the range 0.0<=x<1.0"),
        (("--min-maf", "0.5"), "not in the range 0.0<=x<0.5"),
    ],
)
def test_qc_thresholds_that_drop_everything_or_nothing_are_refused(
    tmp_path: Path, args: tuple, message: str
) -> None:
    """``--min-maf nan`` kept no SNP and ``--min-quality nan`` turned the quality filter off,
    each with exit 0 (NaN passes every comparison)."""
    out = tmp_path / "g.tsv"
    res = _run("gwas", TINY / "parker", "--pheno", "abBMD", *args, "--out", out)
    assert res.exit_code == 2 and message in res.output, res.output
    assert not out.exists()
    res = _run("inspect", TINY / "parker", *args)
    assert res.exit_code == 2 and message in res.output, res.output


def test_an_out_below_a_file_names_the_file(tmp_path: Path) -> None:
    """``gwas --out afile/x.tsv`` said only "cannot write here: File exists"."""
    (tmp_path / "afile").write_text("")
    res = _run("gwas", TINY / "parker", "--pheno", "abBMD", "--out", tmp_path / "afile" / "x.tsv")
    assert res.exit_code == 2
    assert f"{tmp_path / 'afile'} is a file, not a folder" in res.output


def test_an_undeclared_categorical_column_names_the_phenotype_file(tmp_path: Path) -> None:
    """A text column the public schema lacks (its level set would be the members') was
    refused naming the column only; the message now names the file too, and nothing is
    charged or written."""
    cohort = _copy(tmp_path)
    table = pd.read_csv(cohort / "pheno.csv", dtype=str, keep_default_na=False)
    table["colour"] = np.where(np.arange(len(table)) % 2 == 0, "magenta", "teal")
    table.to_csv(cohort / "pheno.csv", index=False)
    db, out = tmp_path / "life.sqlite", tmp_path / "out"
    res = _run(
        "synthesize", cohort, "--pheno", "BMD", "--epsilon", 8, "--out", out, "--lifetime-db", db
    )
    assert res.exit_code == 2, res.output
    assert f"{cohort / 'pheno.csv'}, column colour: categorical column 'colour'" in res.output
    assert "magenta" not in res.output and "teal" not in res.output
    assert not out.exists() and not db.exists()


@pytest.mark.parametrize(
    ("p", "log10_p", "message"),
    [
        ("1e-9", "8", "-log10 p is 9 where log10_p is 8"),
        ("NA", "5", "p is missing where log10_p is 5"),
        ("0", "5", "-log10 p is inf where log10_p is 5"),
        ("1e-5", "inf", "-log10 p is 5 where log10_p is inf"),
    ],
)
def test_gwas_table_p_and_log10_p_that_disagree_are_located(
    tmp_path: Path, p: str, log10_p: str, message: str
) -> None:
    """A table with both columns was read by its log10_p alone, whatever its p said."""
    from dpgenome.gwas_comparison import read_gwas_tsv

    head = "id\tchr\tpos\tp\tlog10_p\na\t1\t10\t0.5\t0.30103\nb\t1\t20\t0\t400\n"
    path = _write(tmp_path / "g.tsv", f"{head}c\t1\t30\t{p}\t{log10_p}\n")
    with pytest.raises(InputError, match=re.escape(message)) as err:
        read_gwas_tsv(path)
    assert err.value.line == 4 and err.value.column == "log10_p"
    assert read_gwas_tsv(_write(tmp_path / "ok.tsv", head))["log10_p"].tolist() == [0.30103, 400]
