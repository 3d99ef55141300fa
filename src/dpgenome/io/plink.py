"""PLINK 1 binary genotypes: ``<name>.bed/.bim/.fam`` plus ``pheno.csv``.

The ``.bed`` matrix is read and written with bed-reader (Kadie & Heckerman, the Rust
implementation behind FaST-LMM). PLINK 1 stores **hard calls** only: reading gives dosages in
{0, 1, 2, NaN}, and writing a cohort with non-integer dosages rounds them to the nearest call
(a warning gives the count), so the round trip is lossless only for hard-call cohorts.

Conventions: the counted allele is A1 (``.bim`` column 5), written as the cohort's ``alt``;
A2 (column 6) is ``ref``. The sample id is the ``.fam`` IID (FID = IID on write); the
``.fam`` parent, sex and phenotype columns are not read (phenotypes come from ``pheno.csv``).
Map quality, which ``.bim`` cannot hold, lives in an optional ``<name>.qual`` file in the
format of PLINK 1.9's ``--qual-scores`` (variant id, quality; whitespace separated, no header).
The companions of ``<name>.bed`` are found in any upper/lower case (``COHORT.BIM``,
``cohort.Fam``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dpgenome.cohort import Cohort
from dpgenome.errors import InputError
from dpgenome.io.files import find_case_insensitive
from dpgenome.io.pheno import FLAG_COLUMNS, assemble_cohort, write_pheno_csv
from dpgenome.io.tables import (
    build_variants,
    check_quality,
    check_unique_ids,
    parse_floats,
    read_whitespace_table,
)

log = logging.getLogger(__name__)

BED_MAGIC = b"\x6c\x1b\x01"


def _fields(path: Path, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Whitespace-separated rows of exactly ``width`` fields (text) and their line numbers."""
    _, values, lines = read_whitespace_table(path, header=False, width=width)
    return values, lines


def _read_quality(path: Path | None, variant_ids: pd.Index) -> np.ndarray:
    quality = np.full(len(variant_ids), np.nan)
    if path is None:
        return quality
    rows, lines = _fields(path, 2)
    where = variant_ids.get_indexer(rows[:, 0].tolist())
    if (where < 0).any():
        i = int(np.argmax(where < 0))
        raise InputError(
            f"variant {rows[i, 0]!r} is not in the .bim", file=path, line=int(lines[i]), column=1
        )
    values = parse_floats(rows[:, 1].tolist(), file=path, lines=lines, column=2, what="quality")
    check_quality(values, file=path, lines=lines, column=2)
    quality[where] = values
    return quality


def check_bed(path: Path, n_samples: int, n_variants: int, fam: Path | None = None) -> None:
    """Magic bytes (SNP-major), size ``3 + n_variants * ceil(n_samples / 4)`` and zero
    padding (``fam``, named by errors about the samples, defaults to ``<name>.fam``)."""
    expected = 3 + n_variants * ((n_samples + 3) // 4)
    actual = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(3)
    if magic[:2] != BED_MAGIC[:2]:
        raise InputError("not a PLINK 1 .bed file (wrong magic bytes)", file=path)
    if magic[2:3] != BED_MAGIC[2:]:
        raise InputError(
            "individual-major .bed files are not supported (re-save with plink2)", file=path
        )
    if actual != expected:
        raise InputError(
            f"size is {actual} bytes but {expected} are expected for {n_samples} samples (.fam) x "
            f"{n_variants} variants (.bim): the file is truncated or does not belong to them",
            file=path,
        )
    check_padding(path, n_samples, n_variants, fam)


#: fewer variants than this and an all-zero sample in the last byte may be a real one
_PHANTOM_MIN_VARIANTS = 32


def check_padding(path: Path, n_samples: int, n_variants: int, fam: Path | None = None) -> None:
    """The ``.fam`` and the ``.bed`` agree on the samples where the size check cannot see it.

    Samples take 2 bits each, so a ``.fam`` one to three rows short or long can leave the
    byte count per variant unchanged. Short: the missing samples' calls sit in the unused
    high bits of each variant's last byte, which plink2 and bed-reader write as zero. Long:
    the extra rows read those zero bits, a call of ``00`` (homozygous for the first allele)
    at every variant, which no real sample of a panel with some variation shows; the trailing
    samples of the last byte so read are refused (with at least ``_PHANTOM_MIN_VARIANTS``
    variants and a first sample in that byte that is not all ``00``)."""
    if not n_samples or not n_variants:
        return
    per_variant = (n_samples + 3) // 4
    used = n_samples - 4 * (per_variant - 1)  # samples in each variant's last byte, 1-4
    last = np.memmap(path, dtype=np.uint8, mode="r", offset=3, shape=(n_variants, per_variant))
    final = np.array(last[:, -1])
    del last
    mask = np.uint8((0xFF << (2 * used)) & 0xFF)
    dirty = int(np.count_nonzero(final & mask))
    fam = path.with_suffix(".fam") if fam is None else fam
    if dirty:
        raise InputError(
            f"the .bed holds calls beyond the {n_samples} samples of the .fam (in the unused "
            f"bits of {dirty} of {n_variants} variants): the .fam is short of samples or the "
            "files do not belong together",
            file=fam,
        )
    if used == 1 or n_variants < _PHANTOM_MIN_VARIANTS:
        return
    codes = (final[:, None] >> (2 * np.arange(used, dtype=np.uint8))) & 3  # variants x used
    all_zero = ~codes.any(axis=0)
    if all_zero[0]:
        return
    phantom = 0  # trailing all-00 samples after the byte's first one
    for flag in all_zero[:0:-1]:
        if not flag:
            break
        phantom += 1
    if phantom:
        first = n_samples - phantom + 1
        rows = f"row {first}" if phantom == 1 else f"rows {first}-{n_samples}"
        raise InputError(
            f"the .fam lists {n_samples} samples but {rows} {'has' if phantom == 1 else 'have'} "
            "no calls in the .bed (read from its zero padding: homozygous for the first allele "
            f"at all {n_variants} variants): the .fam has rows beyond the .bed's samples or "
            "the files do not belong together",
            file=fam,
        )


def _companion(bed_path: Path, suffix: str) -> Path | None:
    """The file ``<name><suffix>`` beside ``bed_path``, in any upper/lower case."""
    return find_case_insensitive(bed_path.parent, bed_path.stem + suffix)


def _required_companion(bed_path: Path, suffix: str) -> Path:
    """:func:`_companion`; missing, an error naming the file expected (in upper case when
    the ``.bed``'s extension is)."""
    found = _companion(bed_path, suffix)
    if found is None:
        expected = bed_path.with_suffix(suffix.upper() if bed_path.suffix.isupper() else suffix)
        raise InputError(f"{bed_path.name} has no companion {expected.name}", file=expected)
    return found


def read_plink(bed_path: str | Path) -> Cohort:
    """Read ``<name>.bed/.bim/.fam`` (hard calls) and ``pheno.csv`` from the same directory."""
    from bed_reader import open_bed

    bed_path = Path(bed_path)
    bim_path = _required_companion(bed_path, ".bim")
    fam_path = _required_companion(bed_path, ".fam")
    fam, fam_lines = _fields(fam_path, 6)
    ids = fam[:, 1].tolist()
    check_unique_ids(ids, file=fam_path, lines=fam_lines, column="IID (2)", what="sample")
    bim, bim_lines = _fields(bim_path, 6)
    variants = build_variants(
        ids=bim[:, 1].tolist(),
        chrom=bim[:, 0].tolist(),
        pos=bim[:, 3].tolist(),
        ref=bim[:, 5].tolist(),
        alt=bim[:, 4].tolist(),
        quality=None,
        file=bim_path,
        lines=bim_lines,
        columns={"id": "variant id (2)", "chr": "chromosome (1)", "pos": "position (4)"},
    )
    check_bed(bed_path, len(ids), len(variants), fam_path)  # first: a short .bim is named as such
    variants["quality"] = _read_quality(_companion(bed_path, ".qual"), pd.Index(variants["id"]))
    with open_bed(bed_path, iid_count=len(ids), sid_count=len(variants), count_A1=True) as bed:
        dosages = bed.read(dtype=np.float32, order="C")
    return assemble_cohort(
        dosages=dosages,
        variants=variants,
        sample_ids=ids,
        discard=None,
        directory=bed_path.parent,
        source=str(bed_path),
    )


def write_plink(cohort: Cohort, directory: Path, name: str = "cohort") -> None:
    """Write ``<name>.bed/.bim/.fam`` (+ ``<name>.qual`` when the map has quality) and
    ``pheno.csv``. Non-integer dosages are rounded to hard calls (logged with their count)."""
    from bed_reader import to_bed

    dos = cohort.dosages
    calls = np.rint(dos)
    n_rounded = int(np.count_nonzero((calls != dos) & ~np.isnan(dos)))
    if n_rounded:
        log.warning(
            "PLINK .bed holds hard calls: %d non-integer dosages (%.3g%%) rounded",
            n_rounded,
            100.0 * n_rounded / max(dos.size, 1),
        )
    ids = cohort.sample_ids.astype(str).tolist()
    v = cohort.variants
    n = len(ids)
    properties = {
        "fid": ids,
        "iid": ids,
        "father": ["0"] * n,
        "mother": ["0"] * n,
        "sex": [0] * n,
        "pheno": ["-9"] * n,
        "chromosome": v["chr"].astype(str).tolist(),
        "sid": v["id"].astype(str).tolist(),
        "cm_position": [0.0] * len(v),
        "bp_position": v["pos"].astype(np.int64).tolist(),
        "allele_1": v["alt"].astype(str).tolist(),
        "allele_2": v["ref"].astype(str).tolist(),
    }
    to_bed(directory / f"{name}.bed", calls, properties=properties, count_A1=True)
    quality = v["quality"].to_numpy(dtype=np.float64)
    if not np.isnan(quality).all():
        with open(directory / f"{name}.qual", "w", encoding="utf-8") as f:
            for sid, q in zip(properties["sid"], quality.tolist(), strict=True):
                f.write(f"{sid} {'NA' if q != q else repr(q)}\n")
    flags = {f: cohort.samples[f].to_numpy(dtype=bool) for f in FLAG_COLUMNS}
    write_pheno_csv(directory / "pheno.csv", ids, cohort.phenotypes, flags)
