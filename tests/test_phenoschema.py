"""A declared phenotype schema (``--pheno-schema``): public types and domains in place of the
members' own data, checked against the cohort, named in the ledger."""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dpgenome.accountant import Ledger
from dpgenome.cli import main
from dpgenome.cohort import PhenoType, analysis_subset, qc
from dpgenome.errors import ConfigError, InputError
from dpgenome.io import read_cohort, write_cohort
from dpgenome.phenoencoding import EncodedMissing, cfw_schema
from dpgenome.phenoschema import (
    check_schema_domains,
    read_pheno_schema,
    schema_pheno_types,
    typed_from_data,
    values_encoded_as_missing,
    warn_values_encoded_as_missing,
    with_schema_types,
)
from dpgenome.phenotypes import PhenotypeConfig, dp_binned_columns
from dpgenome.synthconfig import PHENOTYPE_BINS, SynthConfig
from dpgenome.synthesize import synthesize
from dpgenome.testing import ToyConfig, toy_cohort

TOY = ToyConfig(n=160, n_chrom=2, snps_per_chrom=60, causal=((0, 30), (1, 20)), effect=1.2)
FAST = SynthConfig(
    pheno="BMD",
    covariates=("SW16",),
    epsilon=4.0,
    structure_steps=20,
    pretrain_steps=20,
    phenotypes=PhenotypeConfig(steps=10, hidden=8),
)
EXAMPLE = """\
# public knowledge of the phenotype table
strict: false
columns:
  bw: {type: continuous, range: [10, 40]}
  age: continuous
  smoker: binary
  site: {type: categorical, levels: [A, B, C]}
  parity: {type: continuous, values: [0, 1, 2, 3]}
"""


def _write(tmp_path: Path, text: str, name: str = "schema.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_pheno_schema__types_domains_and_a_digest_of_the_content(tmp_path) -> None:
    d = read_pheno_schema(_write(tmp_path, EXAMPLE))
    assert dict(d.types) == {
        "bw": PhenoType.CONTINUOUS,
        "age": PhenoType.CONTINUOUS,
        "smoker": PhenoType.BINARY,
        "site": PhenoType.CATEGORICAL,
        "parity": PhenoType.CONTINUOUS,
    }
    cols = d.schema.columns
    assert cols["bw"].kind == "bins" and cols["bw"].edges[0] == 10 and cols["bw"].edges[-1] == 40
    assert len(cols["bw"].edges) == 21
    assert cols["site"].levels == ("A", "B", "C")
    assert cols["parity"].values == (0, 1, 2, 3) and cols["parity"].integer
    assert cols["smoker"].kind == "binary"
    assert d.unbinned == {"age"} and "age" not in cols
    # the digest is of the declarations, not of the file's layout or comments
    same = "columns:\n  age: {type: continuous}\n  bw:\n    type: continuous\n    range: [10, 40]\n"
    same += "  smoker: binary\n  site: {type: categorical, levels: [A, B, C]}\n"
    same += "  parity: {values: [0, 1, 2, 3], type: continuous}\nstrict: false\n"
    assert read_pheno_schema(_write(tmp_path, same, "b.yaml")).digest == d.digest
    other = EXAMPLE.replace("[10, 40]", "[10, 41]")
    assert read_pheno_schema(_write(tmp_path, other, "c.yaml")).digest != d.digest


def test_resolved__a_declaration_replaces_the_cfw_entry_of_its_column(tmp_path) -> None:
    base = cfw_schema()
    assert base.columns["bw1"].kind == "bins" and base.columns["bw1"].source == "public"
    ranged = read_pheno_schema(
        _write(tmp_path, "columns:\n  bw1: {type: continuous, range: [0, 1]}\n")
    )
    col = ranged.resolved(base).columns["bw1"]
    assert col.source == "declared" and col.edges[-1] == 1.0
    # declared without a domain: not the CFW bins of a column that shares its name, DP bins
    bare = read_pheno_schema(_write(tmp_path, "columns:\n  bw1: continuous\n", "b.yaml"))
    schema = bare.resolved(base)
    assert "bw1" not in schema.columns and len(schema.columns) == len(base.columns) - 1
    cfg = PhenotypeConfig(declared=bare)
    assert dp_binned_columns(["bw1", "abBMD"], {"bw1": PhenoType.CONTINUOUS}, cfg) == ["bw1"]
    assert (
        dp_binned_columns(["bw1", "abBMD"], {"bw1": PhenoType.CONTINUOUS}, PhenotypeConfig()) == []
    )


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("columns:\n  a: binary\n  b: {type: ordinal}\n", 3, "not one of"),
        ("columns:\n  site: categorical\n", 2, "needs its public 'levels'"),
        ("columns:\n  x: {type: continuous, range: [5, 1]}\n", 2, "low < high"),
        ("columns:\n  x: {type: binary, range: [0, 1]}\n", 2, "no domain"),
        ("columns:\n  x: {type: continuous, range: [0, 1], levels: [a]}\n", 2, "takes range"),
        ("columns:\n  x: {type: continuous, rnage: [0, 1]}\n", 2, "unknown key 'rnage'"),
        ("columns:\n  x: {type: continuous, values: [1, .nan]}\n", 2, "not a finite number"),
        ("columns:\n  x: {type: categorical, levels: [a, a]}\n", 2, "twice"),
        ("colums:\n  x: binary\n", 1, "unknown key 'colums'"),
        ("strict: true\n", None, "'columns' mapping"),
        ("strict: yes please\ncolumns:\n  x: binary\n", 1, "true or false"),
        ("columns: [x]\n", 1, "map each column"),
        ("columns:\n  x: binary\nextra: 1\n", 3, "unknown key 'extra'"),
        ("columns: {x: [\n", None, "not valid YAML"),
        ("columns:\n  x: {type: continuous, values: [2, 1]}\n", 2, "increasing"),
        ("columns:\n  x: {type: binary, shares: [1, 2, 3]}\n", 2, "2 non-negative numbers"),
        ("columns:\n  x: {type: categorical, levels: [a], missing: 1}\n", 2, r"in \[0, 1\)"),
        ("columns:\n  x: {type: continuous, missing: 0.1}\n", 2, "need a domain"),
        ("columns:\n  x: {type: continuous, range: [0, 1], n_bins: 100000000}\n", 2, "to 1000"),
        ("columns:\n  x: {type: continuous, integer: true}\n", 2, "'integer' needs a 'range'"),
        ("columns:\n  x: {type: continuous, range: [0, 9], integer: 1}\n", 2, "true or false"),
        ("columns:\n  x: {type: continuous, range: [0.2, 0.8], integer: true}\n", 2, "no whole"),
        ("columns:\n  x: binary\n  y: binary\n  x: continuous\n", 4, "'x' appears twice"),
        ("columns:\n  2010: binary\n  '2010': binary\n", 3, "declared twice"),
        ("columns:\n  x: {type: categorical, levels: [a, yes]}\n", 2, "quote the level"),
        ("columns:\n  x: {type: categorical, levels: [a, null]}\n", 2, "quote the level"),
        ("columns:\n  x: {type: categorical, levels: [[a], b]}\n", 2, "as text or a number"),
    ],
)
def test_read_pheno_schema__errors_name_file_line_and_column(tmp_path, text, line, message) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as err:
        read_pheno_schema(path)
    assert err.value.file == str(path)
    if line is not None:
        assert err.value.line == line
    with pytest.raises(ConfigError, match="not found"):
        read_pheno_schema(tmp_path / "missing.yaml")


def _cohort(tmp_path: Path, name: str = "c"):
    cohort, _ = toy_cohort(3, TOY)
    rng = np.random.default_rng(0)
    cohort.phenotypes["clinic"] = rng.integers(1, 4, cohort.n_samples).astype(float)
    cohort.pheno_types.pop("clinic", None)
    path = tmp_path / name
    write_cohort(cohort, path, "parker")
    return read_cohort(path), path


def test_apply__declared_types_replace_the_data_read_ones_and_values_are_checked(
    tmp_path,
) -> None:
    cohort, path = _cohort(tmp_path)
    assert cohort.pheno_types["clinic"] == PhenoType.CONTINUOUS  # read from the data
    d = read_pheno_schema(
        _write(tmp_path, "columns:\n  clinic: {type: categorical, levels: [1, 2, 3]}\n")
    )
    out = d.apply(cohort)
    assert out.pheno_types["clinic"] == PhenoType.CATEGORICAL
    assert set(out.phenotypes["clinic"].dropna()) == {"1", "2", "3"}
    assert cohort.pheno_types["clinic"] == PhenoType.CONTINUOUS  # the input is not changed
    assert d.apply(out).phenotypes["clinic"].equals(out.phenotypes["clinic"])  # idempotent

    # levels written as 1.0 or 1e0 are the data's '1' (and numeric names mix with text)
    floats = "columns:\n  clinic: {type: categorical, levels: [1.0, 2e0, 3]}\n  2010: binary\n"
    assert (
        d.apply(cohort)
        .phenotypes["clinic"]
        .equals(
            read_pheno_schema(_write(tmp_path, floats, "f.yaml")).apply(cohort).phenotypes["clinic"]
        )
    )

    narrow = read_pheno_schema(
        _write(tmp_path, "columns:\n  clinic: {type: categorical, levels: [1, 2]}\n", "n.yaml")
    )
    with pytest.raises(InputError, match=r"\d+ level\(s\) not among the declared") as err:
        narrow.apply(cohort)
    assert err.value.file == str(path / "pheno.csv") and err.value.column == "clinic"
    # the line of the first, no value quoted (it is a person's)
    lines = (path / "pheno.csv").read_text().splitlines()
    header = lines[0].split(",")
    first = next(
        i
        for i, row in enumerate(lines[1:], start=2)
        if row.split(",")[header.index("clinic")] == "3"
    )
    assert err.value.line == first and "'3'" not in str(err.value)
    binary = read_pheno_schema(_write(tmp_path, "columns:\n  clinic: binary\n", "b.yaml"))
    with pytest.raises(
        InputError,
        match=r"value\(s\) other than 0 / 1 in a column declared binary \(the first on this line",
    ):
        binary.apply(cohort)
    values = read_pheno_schema(
        _write(tmp_path, "columns:\n  clinic: {type: continuous, values: [1, 2]}\n", "v.yaml")
    )
    with pytest.raises(InputError, match="outside the declared values"):
        values.apply(cohort)
    text = read_pheno_schema(_write(tmp_path, "columns:\n  round: continuous\n", "t.yaml"))
    with pytest.raises(InputError, match=r"text value\(s\) in a column declared continuous"):
        text.apply(cohort)


TINY = Path(__file__).parent / "data" / "tiny" / "parker"


def _tiny(tmp_path: Path, values: dict[int, str], column: str, name: str = "c") -> Path:
    """A copy of the tiny Parker cohort with ``column`` of pheno.csv set on the given file
    lines (``{0: ...}``: on every data line; a new column is appended, NA elsewhere)."""
    return tiny_with(tmp_path / name, column, values)


def tiny_with(d: Path, column: str, values: dict[int, str] | dict[str, str]) -> Path:
    """A copy at ``d`` of the tiny Parker cohort with ``column`` of pheno.csv set per file
    line (int keys; 0: every data line) or per sample id (str keys; ``"*"``: every sample);
    a new column is appended, NA elsewhere."""
    shutil.copytree(TINY, d)
    lines = (d / "pheno.csv").read_text().splitlines()
    header = lines[0].split(",")
    if column not in header:
        lines = [f"{lines[0]},{column}"] + [f"{row},NA" for row in lines[1:]]
        header.append(column)
    k = header.index(column)
    by: dict[object, str] = dict(values)
    for number in range(2, len(lines) + 1):
        fields = lines[number - 1].split(",")
        keys = (number, 0) if all(isinstance(key, int) for key in by) else (fields[0], "*")
        value = by.get(keys[0], by.get(keys[1]))
        if value is not None:
            fields[k] = value
            lines[number - 1] = ",".join(fields)
    (d / "pheno.csv").write_text("\n".join(lines) + "\n")
    return d


@pytest.mark.parametrize(
    ("column", "values", "line", "message"),
    [
        (
            "abBMD",
            {6: "2"},
            6,
            "1 value(s) other than 0 or 1 in the column (the first on this line), but the "
            "public CFW schema types abBMD 0/1 (binary): recode the column to 0 / 1 (NA for "
            "missing), or, if it is not a 0/1 trait, declare its type in a --pheno-schema file",
        ),
        # the first line of the file holding one, whatever the genotype file's order
        ("abBMD", {9: "2", 4: "-1", 30: "0.5"}, 4, "3 value(s) other than 0 or 1 in the"),
        # a one-hot copy of round: rebuilt, not modelled, but the schema still types it 0/1
        ("SW16", {12: "2"}, 12, "but the public CFW schema types SW16 0/1 (binary)"),
        (
            "round",
            {0: "16"},
            2,
            "40 number(s) and no text level in the column (the first on this line), but the "
            "public CFW schema types round categorical (levels SW1, SW10, SW11, ...): write "
            "the levels as the schema names them",
        ),
        (
            "BMD",
            {0: "high", 7: "NA"},
            2,
            "39 text value(s) in the column (the first on this line), but the public CFW "
            "schema types BMD continuous (numbers)",
        ),
        (
            "deaf",
            {},
            None,
            "every value is missing, but the public CFW schema types deaf 0/1 (binary): the "
            "synthesizer cannot model the column",
        ),
    ],
)
def test_check_schema_domains__values_outside_the_public_types_are_located(
    tmp_path, column, values, line, message
) -> None:
    """A value the public schema's type of its column rules out: an InputError naming
    pheno.csv, the line of the first such value and the column, before any work (the
    synthesizer refused the column only after the ingest, naming no line). No value and no
    sample id is quoted."""
    d = _tiny(tmp_path, values, column)
    cohort = read_cohort(d)
    with pytest.raises(InputError) as err:
        check_schema_domains(cohort)
    assert (err.value.file, err.value.line, err.value.column) == (
        str(d / "pheno.csv"),
        line,
        column,
    )
    assert message in err.value.message
    ids = [str(i) for i in cohort.sample_ids]
    assert not [i for i in ids if i in str(err.value)]
    assert "high" not in str(err.value) and "0.5" not in str(err.value)


def test_check_schema_domains__a_declaration_replaces_the_public_type(tmp_path) -> None:
    """abBMD declared with the values 0, 1, 2 takes a 2; declared binary, the declaration's
    own check names the line; the tiny cohort as shipped passes."""
    check_schema_domains(read_cohort(TINY))
    d = _tiny(tmp_path, {6: "2"}, "abBMD")
    cohort = read_cohort(d)
    wide = read_pheno_schema(
        _write(tmp_path, "columns:\n  abBMD: {type: continuous, values: [0, 1, 2]}\n")
    )
    check_schema_domains(wide.apply(cohort), PhenotypeConfig(declared=wide))
    binary = read_pheno_schema(_write(tmp_path, "columns:\n  abBMD: binary\n", "b.yaml"))
    with pytest.raises(InputError, match="other than 0 / 1 in a column declared binary") as err:
        binary.apply(cohort)
    assert (err.value.line, err.value.column) == (6, "abBMD")
    # checked without the declaration's own check, the file is named as the typing schema
    with pytest.raises(InputError, match=r"but the --pheno-schema file b\.yaml types abBMD 0/1"):
        check_schema_domains(cohort, PhenotypeConfig(declared=binary))


@pytest.mark.parametrize("command", ["release", "synthesize"])
def test_cli__a_value_outside_the_public_type_exits_2_at_ingest(tmp_path, command) -> None:
    """``abBMD`` is 0/1 in the public CFW schema: a 2 on line 6 exits 2 naming pheno.csv,
    line 6 and the column, before any training (the synthesizer refused the column after
    the ingest, without a line, advising a schema for a data error); nothing is written."""
    d = _tiny(tmp_path, {6: "2"}, "abBMD")
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = [command, str(d), "--pheno", "abBMD", "--epsilon", "8", "--out", str(out)]
    if command == "release":
        args += ["--policy", "consortium", "--cache-dir", str(cache)]
        args += ["--lifetime-db", str(tmp_path / "lifetime.sqlite")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert (
        f"{d / 'pheno.csv'}, line 6, column abBMD: 1 value(s) other than 0 or 1 in the column "
        "(the first on this line), but the public CFW schema types abBMD 0/1 (binary)"
    ) in result.output
    assert "synthesize ..." not in result.output  # no stage after the ingest started
    assert not out.exists() and not cache.exists()
    assert not (tmp_path / "lifetime.sqlite").exists()


def test_apply__strict_refuses_columns_nothing_public_declares(tmp_path) -> None:
    cohort, _ = _cohort(tmp_path)
    # toy columns: abBMD, BMD, SW16, round (in the CFW schema), bw and clinic (not)
    assert typed_from_data(cohort.phenotypes.columns, cfw_schema()) == ["bw", "clinic"]
    strict = "strict: true\ncolumns:\n  clinic: {type: categorical, levels: [1, 2, 3]}\n"
    with pytest.raises(InputError, match=r"1 phenotype column.* strict: bw") as err:
        read_pheno_schema(_write(tmp_path, strict)).apply(cohort)
    assert err.value.column == "bw"
    full = strict + "  bw: {type: continuous, range: [0, 100]}\n"
    assert read_pheno_schema(_write(tmp_path, full, "f.yaml")).apply(cohort).n_samples == 160


def test_warn_values_encoded_as_missing__per_column_counts_only(tmp_path, caplog) -> None:
    """The synthesizer's encoding reads a level outside the schema's, or a binary value other
    than 0 / 1, as missing: one warning per such column (count, reason, what types it, what
    to do), quoting no value and no sample id. A CFW binary column coded 1/2 is typed
    continuous by its values, and the fit refuses it (listed, not warned of); a clean cohort,
    or a declaration that covers the values, gives nothing."""
    clean, _ = toy_cohort(3, TOY)
    pheno = clean.phenotypes.copy()
    rows = pheno.index[pheno["round"].notna()][:4]
    pheno.loc[rows, "round"] = "SW99"  # not a round of the public CFW schema
    one_two = np.where(np.arange(clean.n_samples) % 4 == 0, 2.0, 1.0)  # 40 of 160 are 2
    pheno["smoker"] = one_two  # typed binary by the caller, outside every schema
    pheno["deaf"] = one_two  # binary in the CFW schema
    cohort = replace(
        clean, phenotypes=pheno, pheno_types={**clean.pheno_types, "smoker": PhenoType.BINARY}
    )
    assert cohort.pheno_types["deaf"] == PhenoType.CONTINUOUS
    assert values_encoded_as_missing(cohort) == [
        EncodedMissing("round", 4, "levels", False, "public CFW table"),
        EncodedMissing("smoker", 40, "binary", False, "data"),
        EncodedMissing("deaf", 40, "binary", True, "public CFW table"),
    ]
    with caplog.at_level(logging.WARNING):
        warned = warn_values_encoded_as_missing(cohort, PhenotypeConfig())
    assert [w.column for w in warned] == ["round", "smoker"]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages == [
        "phenotype column 'round': 4 observed value(s) have a level not in the schema (type "
        "from public CFW table): they are trained on as missing, so the synthetic column's "
        "missing share is inflated; declare the column's levels in a --pheno-schema file or "
        "recode the values",
        "phenotype column 'smoker': 40 observed value(s) are not 0 or 1 (type from data): they "
        "are trained on as missing, so the synthetic column's missing share is inflated; "
        "recode the column to 0 / 1 or declare its type (and levels) in a --pheno-schema file",
    ]
    assert "SW99" not in caplog.text
    assert not [i for i in cohort.sample_ids.astype(str) if i in caplog.text]

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert warn_values_encoded_as_missing(clean) == []
    assert not caplog.records
    declared = read_pheno_schema(
        _write(
            tmp_path,
            "columns:\n"
            "  round: {type: categorical, levels: [SW14, SW15, SW16, SW17, SW18, SW99]}\n"
            "  smoker: {type: categorical, levels: [1, 2]}\n"
            "  deaf: {type: continuous, values: [1, 2]}\n",
        )
    )
    fixed = declared.apply(cohort)
    assert values_encoded_as_missing(fixed, PhenotypeConfig(declared=declared)) == []


def _members(cohort):
    real, report = qc(cohort)
    return analysis_subset(real, "BMD", ["SW16"], report)


def test_synthesize__the_ledger_names_columns_typed_from_the_data(tmp_path) -> None:
    """Without a declaration the toy's ``bw`` (outside the CFW schema) is typed from the
    members' data and gets DP bins; declared with a range it needs neither, and the ledger
    names the declaration instead."""
    cohort, _ = toy_cohort(3, TOY)
    members = _members(cohort)
    plain = synthesize(members, FAST)
    led = plain.ledger.to_dict()
    assert any(m["name"] == PHENOTYPE_BINS for m in led["mechanisms"])
    extra = [a for a in led["assumptions"] if "read from the members' data" in a]
    assert len(extra) == 1 and extra[0].endswith(
        "is treated as public: bw; declare them with --pheno-schema to remove this assumption"
    )

    d = read_pheno_schema(_write(tmp_path, "columns:\n  bw: {type: continuous, range: [0, 60]}\n"))
    cfg = replace(FAST, phenotypes=replace(FAST.phenotypes, declared=d))
    res = synthesize(members, cfg)
    led = res.ledger.to_dict()
    assert not any(m["name"] == PHENOTYPE_BINS for m in led["mechanisms"])
    assert not any("read from the members' data" in a for a in led["assumptions"])
    assert any(f"declared in schema.yaml (sha256 {d.digest[:16]})" in a for a in led["assumptions"])
    bw = res.cohort.phenotypes["bw"].dropna()
    assert len(bw) and bw.between(0, 60).all()
    assert led["epsilon"] <= 4.0 + 1e-9
    # the assumptions survive a re-account from ledger.json
    assert Ledger.from_dict(json.loads(json.dumps(led))).assumptions == led["assumptions"]
    rec = res.config.record()
    assert rec["phenotypes"]["declared"] == {
        "source": "schema.yaml",
        "sha256": d.digest,
        "columns": 1,
    }
    json.dumps(rec)
    # no formal privacy claims nothing, so it assumes nothing
    exact = synthesize(members, replace(cfg, epsilon=math.inf))
    assert exact.ledger.to_dict()["assumptions"] == Ledger(0.1).to_dict()["assumptions"]


def test_cli_synthesize__pheno_schema(tmp_path) -> None:
    _, path = _cohort(tmp_path)
    schema = _write(
        tmp_path,
        "strict: true\ncolumns:\n  clinic: {type: categorical, levels: [1, 2, 3]}\n"
        "  bw: {type: continuous, range: [0, 60]}\n",
    )
    args = ["synthesize", str(path), "--pheno", "BMD", "--covar", "SW16", "--epsilon", "4"]
    out = tmp_path / "synth"
    result = CliRunner().invoke(main, [*args, "--pheno-schema", str(schema), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "synthesis.json").read_text())
    assert summary["pheno_schema"]["sha256"] == read_pheno_schema(schema).digest
    syn = read_cohort(out)
    assert set(syn.phenotypes["clinic"].dropna().astype(int)) <= {1, 2, 3}
    # a declaration the cohort breaks: exit 2 naming the file, nothing written
    bad = _write(tmp_path, "columns:\n  clinic: binary\n", "bad.yaml")
    out2 = tmp_path / "synth2"
    result = CliRunner().invoke(main, [*args, "--pheno-schema", str(bad), "--out", str(out2)])
    assert result.exit_code == 2
    assert "pheno.csv" in result.output and "clinic" in result.output
    assert not out2.exists()
    broken = _write(tmp_path, "columns:\n  clinic: {type: nominal}\n", "broken.yaml")
    result = CliRunner().invoke(main, [*args, "--pheno-schema", str(broken), "--out", str(out2)])
    assert result.exit_code == 2 and "broken.yaml" in result.output and "line 2" in result.output
    assert not out2.exists()


def test_read_pheno_schema__declared_shares_are_the_public_prior(tmp_path) -> None:
    """Public marginals (a census share, a published missing rate) start the model's marginal
    as the CFW table's shares do; without them a declared domain starts uniform."""
    text = (
        "columns:\n"
        "  sex: {type: categorical, levels: [F, M], shares: [3, 1], missing: 0.2}\n"
        "  smoker: {type: binary, missing: 0.5}\n"
        "  parity: {type: continuous, values: [0, 1, 2], shares: [0.5, 0.5, 0]}\n"
        "  site: {type: categorical, levels: [A, B]}\n"
    )
    cols = read_pheno_schema(_write(tmp_path, text)).schema.columns
    np.testing.assert_allclose(cols["sex"].prior, [0.6, 0.2, 0.2])
    np.testing.assert_allclose(cols["smoker"].prior, [0.25, 0.25, 0.5])
    # a share of 0 is floored (a logit of -inf would never be learnt away)
    np.testing.assert_allclose(cols["parity"].prior, np.array([0.5, 0.5, 1e-3, 1e-3]) / 1.002)
    assert cols["site"].prior == ()
    # shares written with an exponent and no dot (as Python prints small numbers) are numbers
    small = "columns:\n  smoker: {type: binary, shares: [1e-3, 999e-3], missing: 5E-4}\n"
    cols = read_pheno_schema(_write(tmp_path, small, "small.yaml")).schema.columns
    expected = np.maximum([1e-3 * 0.9995, 0.999 * 0.9995, 5e-4], 1e-3)  # floored at 1e-3
    np.testing.assert_allclose(cols["smoker"].prior, expected / expected.sum())


def test_read_pheno_schema__proportions_not_summing_to_one_are_named(tmp_path, caplog) -> None:
    # counts and percentages are rescaled quietly; proportions summing to 1.8 are a typo
    text = "columns:\n  site: {type: categorical, levels: [A, B], shares: [0.9, 0.9]}\n"
    cols = read_pheno_schema(_write(tmp_path, text)).schema.columns
    np.testing.assert_allclose(cols["site"].prior, [0.5, 0.5, 1e-3], rtol=2e-3)
    assert "line 2, column site: 'shares' sum to 1.8, not 1" in caplog.text
    caplog.clear()
    text = "columns:\n  site: {type: categorical, levels: [A, B], shares: [30, 70]}\n"
    read_pheno_schema(_write(tmp_path, text, "percent.yaml"))
    assert "shares" not in caplog.text


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("tibia", {0: "1", 3: "0"}),  # a binned column whose members hold only 0 and 1
        ("tibia", {0: "1", 3: "0.5"}),  # ... and one member with another value
        ("FCbox", {0: "1"}),  # a column of the values 1-4 whose members all hold 1
    ],
)
def test_with_schema_types__the_schema_types_a_column_not_its_values(
    tmp_path, column, values
) -> None:
    """A type read from the members' values is their statistic: one member moved the CFW
    column ``tibia`` between 0/1 and continuous, which for an analysis phenotype chooses the
    release path at no cost on the ledger. The public schema's entry fixes it instead, and
    the check of the domains still runs first."""
    cohort = read_cohort(_tiny(tmp_path, values, column))
    typed = with_schema_types(cohort)
    assert typed.pheno_types[column] == PhenoType.CONTINUOUS
    assert typed.pheno_types["abBMD"] == PhenoType.BINARY
    assert with_schema_types(typed) is typed  # idempotent
    assert schema_pheno_types(["tibia", "FCbox", "abBMD", "round", "not-in-the-schema"]) == {
        "tibia": PhenoType.CONTINUOUS,
        "FCbox": PhenoType.CONTINUOUS,
        "abBMD": PhenoType.BINARY,
        "round": PhenoType.CATEGORICAL,
    }
    with pytest.raises(InputError, match="abBMD"):
        with_schema_types(read_cohort(_tiny(tmp_path, {6: "2"}, "abBMD", "bad")))


def test_synthesize__a_mistyped_analysis_phenotype_takes_the_schema_path() -> None:
    """``synthesize`` types the members by the schema whatever their ``pheno_types`` say:
    BMD (a binned CFW column) marked 0/1 gives the continuous path's ledger and output."""
    members = _members(toy_cohort(3, TOY)[0])
    wrong = replace(members, pheno_types={**members.pheno_types, "BMD": PhenoType.BINARY})
    right = synthesize(members, replace(FAST, seed=2))
    mistyped = synthesize(wrong, replace(FAST, seed=2))
    assert [m.name for m in mistyped.ledger.mechanisms] == [m.name for m in right.ledger.mechanisms]
    assert mistyped.cohort.phenotypes["BMD"].equals(right.cohort.phenotypes["BMD"])
