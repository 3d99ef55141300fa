"""``dpgenome inspect COHORT``: what is in a cohort directory, before and after QC."""

from __future__ import annotations

import json

import click

from dpgenome.cli.options import qc_options


@click.command()
@click.argument("cohort", type=click.Path(exists=True, file_okay=False, dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--pheno-schema",
    type=click.Path(dir_okay=False),
    default=None,
    help="Phenotype schema YAML: check the cohort against it and type its columns by it.",
)
@qc_options
def inspect(
    cohort: str, as_json: bool, pheno_schema: str | None, min_maf: float, min_quality: float
) -> None:
    """Summarise the cohort in directory COHORT (Parker text, PLINK or VCF, plus pheno.csv):
    samples, SNPs per chromosome, missingness, MAF distribution, phenotype types and
    missingness (and what fixes each type: the public CFW schema, a --pheno-schema file, or
    the data), how many observed phenotype values the synthesizer would read as missing (a
    level outside the schema's, a binary value other than 0/1), and every count dropped by
    QC and why. Aggregates only: no sample ids, no values."""
    from dpgenome.cohort import QCConfig
    from dpgenome.io import detect_format, read_cohort
    from dpgenome.phenoschema import read_pheno_schema
    from dpgenome.summary import summarize

    declared = None if pheno_schema is None else read_pheno_schema(pheno_schema)
    raw = read_cohort(cohort)
    config = QCConfig(min_quality=min_quality, min_maf=min_maf)
    summary = summarize(raw, config, fmt=detect_format(cohort), declared=declared)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2, allow_nan=False))
    else:
        click.echo("\n".join(summary.lines()))
