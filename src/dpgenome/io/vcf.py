"""VCF genotypes (plain or bgzipped) plus ``pheno.csv``.

Reading takes the FORMAT field ``DS`` (alternative-allele dosage) when present, else ``GT``
(phased or unphased, ``.`` missing; a haploid call counts as homozygous, as PLINK does); a
sample whose DS is ``.`` or dropped takes its GT call, as plink2 ``dosage=DS`` does.
Multi-allelic records and records without GT and DS are errors. Map quality is read from the
INFO key ``INFO`` (IMPUTE2's info score), else ``R2`` (minimac) or ``DR2`` (Beagle).

Writing produces VCF 4.2 with ``GT`` (the rounded dosage, unphased) and ``DS`` (exact: the
shortest decimal that round-trips the float32), compressed as BGZF (SAMtools/hts-specs
"The BGZF compression format": gzip members of <= 64 KiB with a ``BC`` extra field, then the
28-byte EOF block) so that tabix and bcftools accept it.
"""

from __future__ import annotations

import math
import re
import struct
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from dpgenome import __version__
from dpgenome.cohort import Cohort
from dpgenome.errors import InputError
from dpgenome.io.dosage_text import RowError, parse_row, parse_tokens, short_float32
from dpgenome.io.files import check_line_ends, decode_utf8, open_binary, strip_bom
from dpgenome.io.pheno import FLAG_COLUMNS, assemble_cohort, write_pheno_csv
from dpgenome.io.tables import build_variants, check_unique_ids, first_duplicate

_MISSING = frozenset({b".", b""})
#: our names of the fixed fields read, and the VCF's (for messages)
_FIXED = {"chr": "CHROM", "pos": "POS", "id": "ID", "ref": "REF", "alt": "ALT"}
_QUALITY_KEYS = (b"INFO", b"R2", b"DR2")
_BLOCK = 4096  # variants per transposition block


# ---------------------------------------------------------------------------- reading


def _gt_fast(rest: bytes, n: int, first_key_only: bool) -> np.ndarray | None:
    """GT as the first FORMAT key, every call diploid with one-digit alleles: vectorised.
    Returns None when the line needs the general path."""
    buf = np.frombuffer(rest, dtype=np.uint8)
    tabs = np.flatnonzero(buf == 9)
    if len(tabs) != n - 1:
        return None
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = tabs + 1
    ends = np.append(tabs, len(buf))
    if first_key_only:
        if not (ends - starts == 3).all():
            return None
    else:
        if not (ends - starts > 4).all() or not (buf[starts + 3] == ord(":")).all():
            return None
    sep = buf[starts + 1]
    if not ((sep == ord("/")) | (sep == ord("|"))).all():
        return None
    a1 = buf[starts].astype(np.int16) - 48
    a2 = buf[starts + 2].astype(np.int16) - 48
    ok = ((a1 == 0) | (a1 == 1)) & ((a2 == 0) | (a2 == 1))
    missing = (a1 == ord(".") - 48) | (a2 == ord(".") - 48)
    if not (ok | missing).all():
        return None
    out = (a1 + a2).astype(np.float32)
    out[missing] = np.nan
    return out


def _ds_fast(rest: bytes, n: int, k: int, n_keys: int) -> np.ndarray | None:
    """DS as subfield ``k`` of ``n_keys`` in every sample field: tokenise the line once on tabs
    and colons. Returns None when some field has fewer subfields (general path)."""
    buf = np.frombuffer(rest, dtype=np.uint8)
    delim = np.flatnonzero((buf == 9) | (buf == 58))
    if len(delim) != n * n_keys - 1 or not (buf[delim[n_keys - 1 :: n_keys]] == 9).all():
        return None
    starts = np.append(0, delim + 1)[k::n_keys]
    ends = np.append(delim, len(buf))[k::n_keys]
    return parse_tokens(rest, buf, starts, ends, missing=_MISSING)


def _gt_value(token: bytes) -> float:
    alleles = re.split(rb"[/|]", token)
    if len(alleles) == 1:
        alleles = alleles * 2  # haploid call: homozygous, as PLINK imports it
    if len(alleles) != 2:
        raise ValueError("not a diploid or haploid genotype")
    if b"." in alleles:
        return float("nan")
    if any(a not in (b"0", b"1") for a in alleles):
        raise ValueError("allele index other than 0/1")
    return float(int(alleles[0]) + int(alleles[1]))


def _subfields(rest: bytes, n: int, k: int, default: bytes) -> list[bytes]:
    fields = rest.split(b"\t")
    if len(fields) != n:
        raise RowError(f"{len(fields)} sample fields where the header has {n}")
    out = []
    for f in fields:
        parts = f.split(b":")
        out.append(parts[k] if len(parts) > k else default)
    return out


def _parse_line(rest: bytes, n: int, keys: list[bytes]) -> np.ndarray:
    if b"DS" in keys:
        k = keys.index(b"DS")
        if len(keys) == 1:
            return parse_row(rest, n, sep=b"\t", missing=_MISSING)
        out = _ds_fast(rest, n, k, len(keys))
        if out is None:
            tokens = _subfields(rest, n, k, b".")
            out = parse_row(b"\t".join(tokens), n, sep=b"\t", missing=_MISSING)
        if b"GT" in keys and np.isnan(out).any():
            # a missing DS ('.', or dropped as a trailing field may be) falls back on the call
            gone = np.flatnonzero(np.isnan(out))
            calls = _subfields(rest, n, keys.index(b"GT"), b"./.")
            out[gone] = [_gt_or_error(calls[j], j) for j in gone]
        return out
    k = keys.index(b"GT")
    if k == 0:
        fast = _gt_fast(rest, n, len(keys) == 1)
        if fast is not None:
            return fast
    out = np.empty(n, dtype=np.float32)
    for j, token in enumerate(_subfields(rest, n, k, b"./.")):
        out[j] = _gt_or_error(token, j)
    return out


def _gt_or_error(token: bytes, j: int) -> float:
    """The dosage of sample ``j``'s GT call ``token`` (:func:`_gt_value`), or a
    :class:`RowError` naming the sample."""
    try:
        return _gt_value(token)
    except ValueError as err:
        raise RowError(f"genotype is not a 0/1 call ({err})", j) from None


class _Rows:
    """Parses the sample columns of each record into variant-major blocks of ``_BLOCK`` rows
    (transposed into the samples x variants matrix at the end)."""

    def __init__(self, n: int, path: Path) -> None:
        self.n, self.path = n, path
        self.blocks: list[np.ndarray] = []
        self.block = np.empty((_BLOCK, n), dtype=np.float32)
        self.filled = 0

    def add(self, rest: bytes, keys: list[bytes], line_no: int) -> None:
        try:
            self.block[self.filled] = _parse_line(rest, self.n, keys)
        except RowError as err:
            column = None if err.index is None else _sample_column(err.index)
            raise InputError(err.message, file=self.path, line=line_no, column=column) from None
        self.filled += 1
        if self.filled == _BLOCK:
            self.blocks.append(self.block)
            self.block = np.empty((_BLOCK, self.n), dtype=np.float32)
            self.filled = 0

    def finish(self) -> list[np.ndarray]:
        self.blocks.append(self.block[: self.filled])
        return self.blocks


def _sample_column(j: int) -> str:
    """The column of sample ``j`` (0-based) as messages name it: ``10 (sample 1)``."""
    return f"{j + 10} (sample {j + 1})"


def _allele_problem(ref: bytes, alt: bytes) -> tuple[str, str] | None:
    """``(column, why)`` a record's REF/ALT is not a biallelic variant dosages can count, or
    ``None``: an empty REF, a symbolic ALT (``<DEL>``, a breakend) or ALT equal to REF would
    otherwise be read as an ordinary SNP. ``.`` as ALT (no alternative allele seen) is
    allowed."""
    if ref in (b"", b"."):
        return "REF", "REF is empty; a record needs its reference allele"
    if alt.startswith(b"<") or b"[" in alt or b"]" in alt:
        shown = alt[:30].decode("latin-1")
        return "ALT", f"ALT {shown} is symbolic (a structural variant), not an allele"
    if alt.upper() == ref.upper():
        return "ALT", "ALT equals REF; a variant needs two different alleles"
    return None


def _quality(info: bytes, path: Path, line: int) -> float:
    """The imputation quality (INFO, R2 or DR2) of a record's INFO field; NaN when it has
    none or gives ``.`` (VCF's missing value). Any other value that is not a finite number
    is an error naming the line: read as "no quality", a typo (``O.9``) would let the SNP
    pass the quality filter that the same typo in a map file stops."""
    if b"=" not in info:
        return float("nan")
    pairs = dict(kv.split(b"=", 1) for kv in info.split(b";") if b"=" in kv)
    for key in _QUALITY_KEYS:
        if key in pairs:
            raw = pairs[key].strip()
            if raw == b".":
                return float("nan")
            try:
                value = float(raw)
            except ValueError:
                value = float("nan")
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                shown = raw.decode("utf-8", "replace")[:20]
                raise InputError(
                    f"quality {key.decode()}={shown!r} is not a number in [0, 1] (write . "
                    "when unknown)",
                    file=path,
                    line=line,
                    column="INFO",
                )
            return value
    return float("nan")


def read_vcf(path: str | Path) -> Cohort:
    """Read a VCF (plain or gzip/BGZF) and ``pheno.csv`` from the same directory."""
    path = Path(path)
    with open_binary(path) as f:
        header: list[bytes] | None = None
        line_no = 0
        for line in f:
            line_no += 1
            if line_no == 1:
                line = strip_bom(line)
                check_line_ends(line, path)
            if line.startswith(b"##"):
                continue
            if line.startswith(b"#CHROM"):
                header = line.rstrip(b"\r\n").split(b"\t")
                break
            raise InputError(
                "neither a '##' meta-information line nor the '#CHROM' header line (a blank "
                "line, a malformed meta line, or a record before the header?)",
                file=path,
                line=line_no,
            )
        if header is None:
            what = "the file is empty" if line_no == 0 else "no '#CHROM' header line"
            raise InputError(what, file=path, line=line_no or None)
        if len(header) < 10 or header[8] != b"FORMAT":
            raise InputError(
                "the #CHROM line has no FORMAT and sample columns (tab separated)",
                file=path,
                line=line_no,
            )
        sample_ids = [
            decode_utf8(h, file=path, line=line_no, column=_sample_column(j))
            for j, h in enumerate(header[9:])
        ]
        n = len(sample_ids)
        j = first_duplicate(sample_ids)
        if j is not None:
            raise InputError(
                f"duplicate sample id (first in column "
                f"{_sample_column(sample_ids.index(sample_ids[j]))})",
                file=path,
                line=line_no,
                column=_sample_column(j),
            )
        check_unique_ids(
            sample_ids, file=path, lines=np.full(n, line_no), column="sample", what="sample"
        )
        cols: dict[str, list[str]] = {k: [] for k in _FIXED}
        quality: list[float] = []
        lines: list[int] = []
        rows = _Rows(n, path)
        format_cache: dict[bytes, list[bytes]] = {}
        for line in f:
            line_no += 1
            line = line.rstrip(b"\r\n")
            if not line:
                continue
            parts = line.split(b"\t", 9)
            if len(parts) < 10:
                raise InputError(
                    f"{len(parts)} tab-separated fields; a record needs 9 plus {n} samples",
                    file=path,
                    line=line_no,
                )
            chrom, pos, vid, ref, alt, _qual, _filter, info, fmt, rest = parts
            if b"," in alt:
                raise InputError(
                    f"multi-allelic record (ALT {alt[:30].decode('latin-1')}); split it with "
                    "'bcftools norm -m-'",
                    file=path,
                    line=line_no,
                    column="ALT",
                )
            problem = _allele_problem(ref, alt)
            if problem is not None:
                raise InputError(problem[1], file=path, line=line_no, column=problem[0])
            keys = format_cache.get(fmt)
            if keys is None:
                keys = format_cache[fmt] = fmt.split(b":")
            if b"DS" not in keys and b"GT" not in keys:
                raise InputError(
                    f"FORMAT {fmt[:40].decode('latin-1')!r} has neither GT nor DS",
                    file=path,
                    line=line_no,
                    column="FORMAT",
                )
            rows.add(rest, keys, line_no)
            for key, value in zip(_FIXED, (chrom, pos, vid, ref, alt), strict=True):
                try:
                    cols[key].append(value.decode("utf-8"))
                except UnicodeDecodeError:
                    decode_utf8(value, file=path, line=line_no, column=_FIXED[key])
            if vid == b".":
                cols["id"][-1] = f"{cols['chr'][-1]}:{cols['pos'][-1]}"
            quality.append(_quality(info, path, line_no))
            lines.append(line_no)
        blocks = rows.finish()
    m = len(lines)
    if m == 0:
        raise InputError("no variant records after the header", file=path)
    dosages = np.empty((n, m), dtype=np.float32)
    start = 0
    while blocks:
        b = blocks.pop(0)
        dosages[:, start : start + len(b)] = b.T
        start += len(b)
    variants = build_variants(
        ids=cols["id"],
        chrom=cols["chr"],
        pos=cols["pos"],
        ref=cols["ref"],
        alt=cols["alt"],
        quality=None,
        file=path,
        lines=np.asarray(lines),
        columns={"id": "ID", "chr": "CHROM", "pos": "POS"},
    )
    variants["quality"] = np.asarray(quality, dtype=np.float64)
    return assemble_cohort(
        dosages=dosages,
        variants=variants,
        sample_ids=sample_ids,
        discard=None,
        directory=path.parent,
        source=str(path),
    )


# ---------------------------------------------------------------------------- writing


def bgzf_block(data: bytes, level: int = 6) -> bytes:
    """One BGZF member: a gzip member with the ``BC`` extra subfield holding its size - 1."""
    cdata = zlib.compress(data, level, wbits=-15)
    header = struct.pack("<4BI2BH2BHH", 31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, len(cdata) + 25)
    return header + cdata + struct.pack("<II", zlib.crc32(data), len(data))


BGZF_EOF = bgzf_block(b"")
_BGZF_INPUT = 0xFF00  # bgzip's input block size: the deflated member always fits in 64 KiB


class BgzfWriter:
    """Write-only BGZF stream over a binary file."""

    def __init__(self, raw: IO[bytes], level: int = 6) -> None:
        self._raw = raw
        self._level = level
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= _BGZF_INPUT:
            self._raw.write(bgzf_block(bytes(self._buf[:_BGZF_INPUT]), self._level))
            del self._buf[:_BGZF_INPUT]

    def close(self) -> None:
        if self._buf:
            self._raw.write(bgzf_block(bytes(self._buf), self._level))
            self._buf.clear()
        self._raw.write(BGZF_EOF)


_CALL = np.array([b"0/0:0", b"0/1:1", b"1/1:2"], dtype=object)
_GT = (b"0/0", b"0/1", b"1/1")


def _format_samples(values: np.ndarray) -> bytes:
    tokens = np.empty(len(values), dtype=object)
    is_int = (values == 0.0) | (values == 1.0) | (values == 2.0)
    tokens[is_int] = _CALL[values[is_int].astype(np.int64)]
    nan = np.isnan(values)
    tokens[nan] = b"./.:."
    for j in np.flatnonzero(~is_int & ~nan).tolist():
        v = float(values[j])
        tokens[j] = _GT[int(np.clip(np.rint(v), 0, 2))] + b":" + short_float32(v)
    return b"\t".join(tokens.tolist())


def write_vcf(cohort: Cohort, directory: Path, name: str = "cohort", compress: bool = True) -> None:
    """Write ``<name>.vcf.gz`` (BGZF; ``<name>.vcf`` when not ``compress``) and ``pheno.csv``."""
    v = cohort.variants
    quality = v["quality"].to_numpy(dtype=np.float64)
    has_quality = not np.isnan(quality).all()
    ids = cohort.sample_ids.astype(str).tolist()
    head = [
        b"##fileformat=VCFv4.2",
        f"##source=dpgenome {__version__}".encode(),
        *(f"##contig=<ID={c}>".encode() for c in cohort.chromosomes),
    ]
    if has_quality:
        head.append(
            b'##INFO=<ID=INFO,Number=1,Type=Float,Description="Imputation quality (map quality)">'
        )
    head += [
        b'##FORMAT=<ID=GT,Number=1,Type=String,Description="Hard call: rounded dosage, unphased">',
        b'##FORMAT=<ID=DS,Number=1,Type=Float,Description="Alternative allele dosage">',
        b"\t".join(
            [b"#CHROM", b"POS", b"ID", b"REF", b"ALT", b"QUAL", b"FILTER", b"INFO", b"FORMAT"]
            + [i.encode() for i in ids]
        ),
    ]
    target = directory / (f"{name}.vcf.gz" if compress else f"{name}.vcf")
    with open(target, "wb") as raw:
        out: BgzfWriter | IO[bytes] = BgzfWriter(raw) if compress else raw
        out.write(b"\n".join(head) + b"\n")
        chrom = v["chr"].astype(str).tolist()
        pos = v["pos"].astype(np.int64).tolist()
        vid = v["id"].astype(str).tolist()
        ref = v["ref"].astype(str).tolist()
        alt = v["alt"].astype(str).tolist()
        for j0 in range(0, cohort.n_variants, _BLOCK):
            block = np.ascontiguousarray(cohort.dosages[:, j0 : j0 + _BLOCK].T)
            lines = []
            for b, values in enumerate(block):
                j = j0 + b
                q = quality[j]
                info = "." if q != q else f"INFO={float(q)!r}"
                fixed = f"{chrom[j]}\t{pos[j]}\t{vid[j]}\t{ref[j]}\t{alt[j]}\t.\t.\t{info}\tGT:DS\t"
                lines.append(fixed.encode() + _format_samples(values) + b"\n")
            out.write(b"".join(lines))
        if isinstance(out, BgzfWriter):
            out.close()
    flags = {f: cohort.samples[f].to_numpy(dtype=bool) for f in FLAG_COLUMNS}
    write_pheno_csv(directory / "pheno.csv", ids, cohort.phenotypes, flags)
