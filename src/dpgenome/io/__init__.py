"""Readers and writers of the formats biobank staff hold: a COHORT is a directory with one of

* Parker et al. 2016 dosage text: ``geno.txt`` (or ``geno.txt.gz``), ``map.txt``, ``pheno.csv``;
* PLINK 1: ``<name>.bed/.bim/.fam`` (hard calls) plus ``pheno.csv``;
* VCF: ``<name>.vcf.gz`` or ``<name>.vcf`` (DS or GT) plus ``pheno.csv``.

The format is detected from the files present; several forms in one directory is an error.
File names (``geno.txt``, ``map.txt``, the PLINK and VCF extensions, ``.bim``, ``.fam``,
``.qual``, ``pheno.csv``) are matched in any upper/lower case (``COHORT.BED``, as Windows
tools write them); two files whose names differ only in case are an error.
``pheno.csv`` (or ``pheno.csv.gz``) is keyed by sample id; without it the cohort has no
phenotypes. Every malformed input raises :class:`dpgenome.errors.InputError` naming the
file, line and column; writers create the whole directory atomically.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from dpgenome.cohort import Cohort
from dpgenome.errors import InputError
from dpgenome.io.files import atomic_directory, case_duplicate_error, case_duplicates
from dpgenome.io.parker import GENO_NAMES, read_parker, write_parker
from dpgenome.io.pheno import read_pheno_csv
from dpgenome.io.plink import read_plink, write_plink
from dpgenome.io.vcf import read_vcf, write_vcf

__all__ = ["FORMATS", "detect_format", "read_cohort", "read_pheno_csv", "write_cohort"]

log = logging.getLogger(__name__)

Format = Literal["parker", "plink", "vcf"]
FORMATS: tuple[str, ...] = ("parker", "plink", "vcf")


def _candidates(directory: Path) -> dict[str, list[Path]]:
    # a dangling symbolic link counts: reading it then fails naming the file
    names = sorted(p for p in directory.iterdir() if p.is_file() or not p.exists())
    return {
        "parker": [p for p in names if p.name.lower() in GENO_NAMES],
        "plink": [p for p in names if p.suffix.lower() == ".bed"],
        "vcf": [p for p in names if p.name.lower().endswith((".vcf", ".vcf.gz"))],
    }


def _genotype_file(path: str | Path) -> tuple[str, Path]:
    directory = Path(path)
    if not directory.exists():
        raise InputError("no such cohort directory", file=directory)
    if not directory.is_dir():
        raise InputError(
            "a COHORT is a directory holding geno.txt + map.txt, <name>.bed/.bim/.fam or "
            "<name>.vcf[.gz], plus pheno.csv",
            file=directory,
        )
    found = {fmt: files for fmt, files in _candidates(directory).items() if files}
    every = [p.name for files in found.values() for p in files]
    if not found:
        raise InputError(
            "no genotype file found (expected geno.txt + map.txt, <name>.bed/.bim/.fam or "
            "<name>.vcf[.gz])",
            file=directory,
        )
    same = case_duplicates(p for files in found.values() for p in files)
    if same is not None:
        raise case_duplicate_error(same, directory)
    if len(every) > 1:
        raise InputError(
            f"several genotype files: {', '.join(every)}; keep one cohort per directory",
            file=directory,
        )
    fmt, files = next(iter(found.items()))
    return fmt, files[0]


def detect_format(path: str | Path) -> str:
    """``"parker"``, ``"plink"`` or ``"vcf"`` from the files present in directory ``path``."""
    return _genotype_file(path)[0]


def read_cohort(path: str | Path) -> Cohort:
    """Read the cohort in directory ``path`` (format detected from the files present)."""
    fmt, file = _genotype_file(path)
    log.info("reading %s cohort from %s", fmt, file)
    if fmt == "parker":
        return read_parker(Path(path))
    if fmt == "plink":
        return read_plink(file)
    return read_vcf(file)


def write_cohort(
    cohort: Cohort,
    path: str | Path,
    fmt: str = "parker",
    *,
    name: str = "cohort",
    overwrite: bool = False,
) -> Path:
    """Write ``cohort`` as directory ``path`` in format ``fmt`` (all files appear at once).

    ``plink`` keeps hard calls only (non-integer dosages are rounded, with a warning);
    ``parker`` and ``vcf`` (DS) are lossless. Returns the directory."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with atomic_directory(path, overwrite=overwrite) as tmp:
        if fmt == "parker":
            write_parker(cohort, tmp)
        elif fmt == "plink":
            write_plink(cohort, tmp, name)
        else:
            write_vcf(cohort, tmp, name)
    return Path(path)
