"""Parker et al. 2016 dosage text: ``geno.txt``, ``map.txt`` and ``pheno.csv``.

* ``geno.txt`` (optionally gzipped): single-space separated, header ``id discard <snp1> ...``,
  one row per mouse; ``discard`` yes/no; dosages in [0, 2] (mostly 0/1/2, some non-integer),
  ``NA`` or an empty field = missing.
* ``map.txt``: whitespace separated with a header naming at least ``id chr pos ref alt``
  (``quality`` optional; other columns ignored).

The genotype block is read line by line and each line is tokenised with numpy on its bytes
(:func:`dpgenome.io.dosage_text.parse_row`), which keeps memory at the size of the float32
matrix and is much faster than ``pandas.read_csv`` on ~80,000 columns.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from dpgenome.cohort import Cohort
from dpgenome.errors import InputError
from dpgenome.io.dosage_text import RowError, format_row, parse_row
from dpgenome.io.files import (
    check_line_ends,
    decode_utf8,
    find_case_insensitive,
    is_gzip,
    open_binary,
    strip_bom,
)
from dpgenome.io.pheno import FLAG_COLUMNS, assemble_cohort, write_pheno_csv
from dpgenome.io.tables import (
    NA_TOKENS,
    build_variants,
    check_unique_ids,
    first_duplicate,
    read_whitespace_table,
)

log = logging.getLogger(__name__)

GENO_NAMES = ("geno.txt", "geno.txt.gz")
MAP_NAMES = ("map.txt", "map.txt.gz")
_MISSING = frozenset(t.encode() for t in NA_TOKENS)
_YES = {b"yes": True, b"no": False, b"YES": True, b"NO": False, b"Yes": True, b"No": False}


def _one_of(directory: Path, names: tuple[str, ...], what: str) -> Path:
    """The one of ``names`` in ``directory``, in any upper/lower case (``GENO.TXT``)."""
    found = [p for p in (find_case_insensitive(directory, n) for n in names) if p is not None]
    if not found:
        raise InputError(f"no {what} ({' or '.join(names)})", file=directory)
    if len(found) > 1:
        raise InputError(
            f"both {' and '.join(p.name for p in found)} present; keep one", file=directory
        )
    return found[0]


def _delimiter_hint(line: bytes) -> str:
    for byte, name in ((b"\t", "tab"), (b",", "comma"), (b";", "semicolon")):
        if byte in line:
            return f"; it looks {name}-separated, but the file must be single-space separated"
    if b'"' in line:
        return "; fields must not be quoted (R: write.table(..., quote = FALSE))"
    return ""


def read_map(path: Path) -> tuple[dict[str, int], np.ndarray, np.ndarray, bool]:
    """Fields of ``map.txt`` as text (rows x columns), the position of each named column and
    the file line of each row."""
    names, rows, lines = read_whitespace_table(path, header=True)
    assert names is not None
    required = ("id", "chr", "pos", "ref", "alt")
    absent = [c for c in required if c not in names]
    if absent:
        raise InputError(
            f"header lacks column(s) {', '.join(absent)} (need {' '.join(required)} [quality])"
            + _delimiter_hint(" ".join(names).encode()),
            file=path,
            line=1,
        )
    index = {name: names.index(name) for name in (*required, "quality") if name in names}
    return index, rows, lines, "quality" in index


def _estimate_rows(path: Path, header_len: int, first_line_len: int) -> int:
    if is_gzip(path):
        return 256
    body = os.path.getsize(path) - header_len
    return max(16, int(body / max(first_line_len, 1) * 1.02) + 8)


def read_geno(path: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Sample ids, discard flags, SNP ids and the float32 dosage matrix of ``geno.txt``."""
    with open_binary(path) as f:
        header = strip_bom(f.readline())
        if not header.strip():
            raise InputError("the file is empty (no header line)", file=path)
        check_line_ends(header, path)
        # trailing spaces (as some writers leave) are not an empty last field
        head = header.rstrip(b"\r\n").rstrip(b" ").split(b" ")
        if len(head) < 3 or head[0] != b"id" or head[1] != b"discard":
            raise InputError(
                "header must be 'id discard <snp1> <snp2> ...'" + _delimiter_hint(header),
                file=path,
                line=1,
            )
        if b"" in head:
            raise InputError(
                f"field {head.index(b'') + 1} of the header is empty (a trailing or doubled "
                "space?); the file must be single-space separated",
                file=path,
                line=1,
            )
        snp_ids = [decode_utf8(h, file=path, line=1, column=k + 3) for k, h in enumerate(head[2:])]
        m = len(snp_ids)
        ids: list[str] = []
        discard: list[bool] = []
        out: np.ndarray | None = None
        n = 0
        blank_at: int | None = None
        for line_no, line in enumerate(f, start=2):
            line = line.rstrip(b"\r\n").rstrip(b" ")
            if not line:
                blank_at = blank_at or line_no
                continue
            if blank_at is not None:
                raise InputError("empty line inside the genotype block", file=path, line=blank_at)
            parts = line.split(b" ", 2)
            if len(parts) < 3:
                raise InputError(
                    f"{len(parts)} fields where the header has {m + 2}" + _delimiter_hint(line),
                    file=path,
                    line=line_no,
                )
            if parts[1] not in _YES:
                raise InputError(
                    "discard must be yes or no",
                    file=path,
                    line=line_no,
                    column="discard",
                )
            try:
                row = parse_row(parts[2], m, missing=_MISSING)
            except RowError as err:
                column = None if err.index is None else snp_ids[err.index]
                hint = _delimiter_hint(line) if err.index is None else ""
                raise InputError(
                    err.message + hint, file=path, line=line_no, column=column
                ) from None
            if out is None:
                out = np.empty((_estimate_rows(path, len(header), len(line) + 1), m), np.float32)
            elif n == len(out):
                out = np.concatenate([out, np.empty_like(out)])
            out[n] = row
            n += 1
            ids.append(decode_utf8(parts[0], file=path, line=line_no, column="id"))
            discard.append(_YES[parts[1]])
    if out is None:
        raise InputError("no sample rows after the header", file=path)
    dosages = out[:n] if n > 0.9 * len(out) else out[:n].copy()
    return ids, np.asarray(discard, dtype=bool), snp_ids, dosages


def read_parker(directory: str | Path) -> Cohort:
    """Read a Parker-format cohort directory (``geno.txt``, ``map.txt``, ``pheno.csv``)."""
    directory = Path(directory)
    geno_path = _one_of(directory, GENO_NAMES, "genotype file")
    map_path = _one_of(directory, MAP_NAMES, "SNP map")
    index, table, map_lines, has_quality = read_map(map_path)
    variants = build_variants(
        ids=table[:, index["id"]].tolist(),
        chrom=table[:, index["chr"]].tolist(),
        pos=table[:, index["pos"]].tolist(),
        ref=table[:, index["ref"]].tolist(),
        alt=table[:, index["alt"]].tolist(),
        quality=table[:, index["quality"]].tolist() if has_quality else None,
        file=map_path,
        lines=map_lines,
    )
    ids, discard, snp_ids, dosages = read_geno(geno_path)
    check_unique_ids(
        ids, file=geno_path, lines=np.arange(2, len(ids) + 2), column="id", what="sample"
    )
    j = first_duplicate(snp_ids)
    if j is not None:
        raise InputError(
            f"duplicate SNP id {snp_ids[j]!r}", file=geno_path, line=1, column=snp_ids[j]
        )
    where = pd.Index(variants["id"]).get_indexer(snp_ids)
    if (where < 0).any():
        snp = snp_ids[int(np.argmax(where < 0))]
        raise InputError(
            f"SNP {snp!r} is not in {map_path.name}", file=geno_path, line=1, column=snp
        )
    if len(variants) != len(snp_ids):
        in_geno = np.zeros(len(variants), dtype=bool)
        in_geno[where] = True
        i = int(np.argmin(in_geno))
        raise InputError(
            f"SNP {variants['id'].iloc[i]!r} is not in {geno_path.name}",
            file=map_path,
            line=int(map_lines[i]),
            column="id",
        )
    variants = variants.iloc[where].reset_index(drop=True)
    return assemble_cohort(
        dosages=dosages,
        variants=variants,
        sample_ids=ids,
        discard=discard,
        directory=directory,
        source=str(directory),
    )


def write_parker(cohort: Cohort, directory: Path) -> None:
    """Write ``geno.txt``, ``map.txt`` and ``pheno.csv`` into an existing (empty) directory.
    Dosages 0/1/2 are written as one digit, other values with the shortest decimal that
    round-trips the float32; NaN as ``NA``."""
    snp_ids = [str(x) for x in cohort.variants["id"]]
    discard = cohort.samples["discard"].to_numpy(dtype=bool)
    with open(directory / "geno.txt", "wb") as f:
        f.write(b"id discard " + " ".join(snp_ids).encode() + b"\n")
        for i, sid in enumerate(cohort.sample_ids.astype(str).tolist()):
            flag = b"yes" if discard[i] else b"no"
            f.write(sid.encode() + b" " + flag + b" " + format_row(cohort.dosages[i]) + b"\n")
    v = cohort.variants
    quality = v["quality"].to_numpy(dtype=np.float64)
    q_text = ["NA" if q != q else repr(float(q)) for q in quality.tolist()]
    with open(directory / "map.txt", "w", encoding="utf-8") as text:
        text.write("id chr pos ref alt quality\n")
        for row in zip(
            snp_ids,
            v["chr"].astype(str),
            v["pos"].astype(np.int64),
            v["ref"].astype(str),
            v["alt"].astype(str),
            q_text,
            strict=True,
        ):
            text.write(" ".join(map(str, row)) + "\n")
    flags = {f: cohort.samples[f].to_numpy(dtype=bool) for f in FLAG_COLUMNS if f != "discard"}
    write_pheno_csv(
        directory / "pheno.csv",
        cohort.sample_ids.astype(str).tolist(),
        cohort.phenotypes,
        {"discard": discard, **flags},
    )
