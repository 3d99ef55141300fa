"""Validation shared by every reader: the variant table (ids, chromosomes, positions,
quality) and sample ids, each error naming the file, line and column."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dpgenome.cohort import normalise_chromosome
from dpgenome.errors import InputError

#: tokens that mean "missing" in the text formats (R's ``NA``, an empty field)
NA_TOKENS = frozenset({"NA", ""})
_POSITION = re.compile(r"[0-9]+")


def first_duplicate(values: Sequence[str]) -> int | None:
    """Index of the first value that repeats an earlier one, or None."""
    dup = pd.Index(values).duplicated()
    return int(np.argmax(dup)) if dup.any() else None


def check_unique_ids(
    ids: Sequence[str], *, file: Path, lines: np.ndarray, column: str, what: str
) -> None:
    j = first_duplicate(ids)
    if j is not None:
        first = int(lines[list(ids).index(ids[j])])
        # sample ids identify individuals: located, never quoted
        shown = f" {ids[j]!r}" if what != "sample" else ""
        raise InputError(
            f"duplicate {what} id{shown} (first on line {first})",
            file=file,
            line=int(lines[j]),
            column=column,
        )
    empty = [i for i, v in enumerate(ids) if not v]
    if empty:
        raise InputError(f"empty {what} id", file=file, line=int(lines[empty[0]]), column=column)


def build_variants(
    *,
    ids: Sequence[str],
    chrom: Sequence[str],
    pos: Sequence[str],
    ref: Sequence[str],
    alt: Sequence[str],
    quality: Sequence[str] | None,
    file: Path,
    lines: np.ndarray,
    columns: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Validate the raw text columns of a variant table and return it typed
    (``id, chr, pos, ref, alt, quality``). ``lines[i]`` is the file line of row ``i``;
    ``columns`` maps our names to the file's column names for messages."""
    names = {"id": "id", "chr": "chr", "pos": "pos", "quality": "quality", **(columns or {})}
    ids = [str(v) for v in ids]
    check_unique_ids(ids, file=file, lines=lines, column=names["id"], what="SNP")

    chrom_s = pd.Series(chrom, dtype=object).astype(str)
    uniq = chrom_s.unique()
    canon = {u: normalise_chromosome(u) for u in uniq}
    unknown = [u for u in uniq if canon[u] is None]
    if unknown:
        i = int(np.argmax(chrom_s.isin(unknown).to_numpy()))
        raise InputError(
            f"unknown chromosome name {chrom_s.iloc[i]!r}; expected one of 1-38, X, Y, MT "
            "(optionally prefixed 'chr')",
            file=file,
            line=int(lines[i]),
            column=names["chr"],
        )
    chr_canon = chrom_s.map(canon).to_numpy(dtype=object)

    pos_s = [str(p) for p in pos]
    try:  # fast path: plain ASCII digits only
        pos_i = np.array(pos_s, dtype=np.int64) if np.char.isdigit(pos_s).all() else None
    except (ValueError, OverflowError):
        pos_i = None
    if pos_i is None:
        good = np.fromiter((_POSITION.fullmatch(p) is not None for p in pos_s), bool, len(pos_s))
        if not good.all():
            i = int(np.argmin(good))
            raw = pos_s[i]
            if raw in NA_TOKENS or raw.lower() == "nan":
                why = "missing position (NA is not allowed here)"
            elif raw.lstrip().startswith("-"):
                why = f"negative position {raw!r}"
            else:
                why = f"position {raw!r} is not a non-negative integer"
            raise InputError(why, file=file, line=int(lines[i]), column=names["pos"])
        try:
            pos_i = np.array(pos_s, dtype=np.int64)
        except OverflowError:
            top = int(np.iinfo(np.int64).max)
            i = next(k for k, p in enumerate(pos_s) if int(p) > top)
            raise InputError(
                f"position {pos_s[i][:30]!r} is too large (at most {top})",
                file=file,
                line=int(lines[i]),
                column=names["pos"],
            ) from None

    if quality is None:
        qual = np.full(len(ids), np.nan)
    else:
        qual = parse_floats(
            quality, file=file, lines=lines, column=names["quality"], what="quality"
        )
        check_quality(qual, file=file, lines=lines, column=names["quality"])
    return pd.DataFrame(
        {
            "id": ids,
            "chr": chr_canon.tolist(),
            "pos": pos_i,
            "ref": [str(v) for v in ref],
            "alt": [str(v) for v in alt],
            "quality": qual,
        }
    )


def check_quality(
    quality: np.ndarray, *, file: Path, lines: Sequence[int] | np.ndarray, column: str | int
) -> None:
    """A map quality (an imputation INFO / R2 score) lies in [0, 1] or is missing: one written
    in percent (97.1) would turn the quality filter off without a word."""
    outside = np.flatnonzero(~np.isnan(quality) & ((quality < 0) | (quality > 1)))
    if outside.size:
        i = int(outside[0])
        raise InputError(
            f"quality {quality[i]:g} is outside [0, 1] (an imputation INFO / R2 score; not a "
            "percentage)",
            file=file,
            line=int(lines[i]),
            column=column,
        )


def parse_floats(
    values: Sequence[str], *, file: Path, lines: np.ndarray, column: str | int, what: str
) -> np.ndarray:
    """Text to float64 with Python's correctly rounded parser; ``NA``/empty -> NaN; anything
    else non-finite or non-numeric is an error at its line."""
    text = np.asarray(values, dtype=object)
    missing = np.isin(text, list(NA_TOKENS))
    try:  # one C loop calling float() per value
        out = np.where(missing, "nan", text).astype(np.float64)
        bad = ~missing & ~np.isfinite(out)
    except ValueError:
        bad = None
    if bad is None or bad.any():
        for i, v in enumerate(text.tolist()):
            if missing[i]:
                continue
            try:
                x = float(v)
            except ValueError:
                x = math.nan
            if not math.isfinite(x):
                raise InputError(
                    f"{what} {v!r} is not a number", file=file, line=int(lines[i]), column=column
                )
    return out


#: pandas' C parser's ragged-row message: expected fields, line, fields seen
_PANDAS_LINE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def parser_error(err: Exception, path: Path) -> InputError:
    """pandas' parser error on ``path`` as an :class:`InputError` naming the line of a ragged
    row (pandas' own text otherwise)."""
    found = _PANDAS_LINE.search(str(err))
    if found is None:
        return InputError(f"cannot parse: {err}", file=path)
    return InputError(
        f"{found.group(3)} fields where {found.group(1)} are expected (ragged row or wrong "
        "delimiter)",
        file=path,
        line=int(found.group(2)),
    )


def read_whitespace_table(
    path: Path, *, header: bool, width: int | None = None
) -> tuple[list[str] | None, np.ndarray, np.ndarray]:
    """A whitespace-separated text table (``.bim``, ``.fam``, ``map.txt``...) at C speed.

    Returns the header names (or None), the fields as an object array of ``str`` (rows x
    columns) and the file line of each row. Ragged rows and a wrong field count are errors
    naming the line."""
    from dpgenome.io.files import check_utf8, open_binary, strip_bom

    with open_binary(path) as f:
        data = strip_bom(f.read())
    check_utf8(data, path)
    physical = data.splitlines()
    lines = np.fromiter(
        (i for i, text in enumerate(physical, start=1) if text.strip()), dtype=np.int64
    )
    if len(lines) == 0:
        raise InputError("the file is empty", file=path)
    names: list[str] | None = None
    if header:
        # quoted names (R's write.table) read as the fields below them do (pandas unquotes)
        names = [n.strip('"') for n in physical[int(lines[0]) - 1].decode("utf-8").split()]
        lines = lines[1:]
        width = len(names)
    if len(lines) == 0:
        raise InputError("no rows after the header", file=path)
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=r"\s+",
            header=None,
            skiprows=1 if header else 0,
            dtype=str,
            na_filter=False,
            engine="c",
            encoding="utf-8",
        )
    except pd.errors.ParserError as err:
        raise parser_error(err, path) from None
    values = frame.to_numpy(dtype=object)
    expected = width if width is not None else values.shape[1]
    if values.shape[1] != expected:
        raise InputError(
            f"{values.shape[1]} fields where {expected} are expected (wrong delimiter?)",
            file=path,
            line=int(lines[0]),
        )
    short = (values == "").any(axis=1)
    if short.any():
        i = int(np.argmax(short))
        got = int((values[i] != "").sum())
        raise InputError(
            f"{got} fields where {expected} are expected (ragged row or wrong delimiter)",
            file=path,
            line=int(lines[i]),
        )
    return names, values, lines
