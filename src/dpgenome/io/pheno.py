"""Phenotype/covariate tables: ``pheno.csv`` as Parker et al. 2016 distribute it (quoted
header, ``NA`` for missing, text columns such as round ``"SW18"``), or any CSV/TSV keyed by
sample id (delimiter sniffed from the header line, or named by Excel's ``sep=;`` first line).

Columns named ``discard`` and ``mixup`` (yes/no) are sample flags, not phenotypes: they go to
the cohort's sample table (OR-ed with the genotype file's own flag) so QC can drop them. With
PLINK's key ``FID IID`` the sample id is ``IID`` and ``FID`` is not read (it identifies; it is
no phenotype), and -9 in a numeric column is missing, as PLINK reads it. Spaces around a
field are dropped and blank lines skipped.
Numeric columns become float64; any column with a non-numeric value stays text (categorical),
except that numbers written with a decimal comma (or thousands separators) are an error.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dpgenome.cohort import Cohort
from dpgenome.errors import InputError
from dpgenome.io.files import check_utf8, find_case_insensitive, open_binary
from dpgenome.io.tables import NA_TOKENS, first_duplicate

log = logging.getLogger(__name__)

#: the first line Excel writes (and reads) to name a CSV file's delimiter, e.g. ``sep=;``
_EXCEL_SEP = re.compile(r"sep=([,;\t])[ ]*(?:\r\n|\n|\r)")

ID_COLUMNS = ("id", "IID")
#: PLINK's missing-phenotype code (``--missing-phenotype``), read as missing in a numeric
#: column of a table keyed by ``IID``
PLINK_MISSING = -9.0
# no phenotype or covariate is measured beyond this: larger values are sentinels or
# spreadsheet overflows, and squaring them (variances, the GWAS) overflows float64
MAX_MAGNITUDE = 1e100
FLAG_COLUMNS = ("discard", "mixup")
#: the phenotype table of a cohort directory (matched in any upper/lower case)
PHENO_NAMES = ("pheno.csv", "pheno.csv.gz")
_TRUE = frozenset({"yes", "y", "true", "t", "1"})
_FALSE = frozenset({"no", "n", "false", "f", "0"})
#: a number written with a decimal comma or thousands separators: ``25,3``, ``-0,5``, ``1,234``
_COMMA_NUMBER = re.compile(r"[+-]?[0-9]*,[0-9]+(?:,[0-9]+)*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")


def _sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _parse_rows(path: Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """The header, the records (each cell stripped of surrounding spaces, so ``a, b, NA``
    reads as ``a,b,NA``) and the file line where each record starts (a quoted field can run
    over several lines). Blank lines are skipped."""
    with open_binary(path) as f:
        data = f.read()
    check_utf8(data, path)
    text = data.decode("utf-8-sig")
    excel = _EXCEL_SEP.match(text)  # Excel's "sep=;" line names the delimiter
    if excel:
        text = text[excel.end() :]
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError("the file is empty (no header line)", file=path)
    delim = excel.group(1) if excel else _sniff_delimiter(lines[0])
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delim, strict=True, skipinitialspace=True
    )
    rows: list[list[str]] = []
    starts: list[int] = []
    skipped = 1 if excel else 0  # lines before the text the reader reads
    start = 1 + skipped  # the line where the record being read starts (a quote runs on)
    try:
        for row in reader:
            if row:
                rows.append([cell.strip() for cell in row])
                starts.append(start)
            start = reader.line_num + 1 + skipped
    except csv.Error as err:
        raise InputError(
            f"malformed CSV record starting on this line ({err}; unbalanced quote?)",
            file=path,
            line=start,
        ) from None
    header = rows[0]
    body = rows[1:]
    while body and not any(body[-1]):
        body.pop()
    record_lines = np.asarray(starts[1 : len(body) + 1], dtype=np.int64)
    width = len(header)
    lengths = np.fromiter((len(r) for r in body), dtype=np.int64, count=len(body))
    bad = np.flatnonzero(lengths != width)
    if len(bad):
        i = int(bad[0])
        shown = {",": "comma", "\t": "tab", ";": "semicolon"}[delim]
        raise InputError(
            f"{lengths[i]} fields where the header has {width} ({shown}-separated; "
            "wrong delimiter or ragged row?)",
            file=path,
            line=int(record_lines[i]),
        )
    return header, body, record_lines


def _flag_values(raw: np.ndarray, *, file: Path, lines: np.ndarray, column: str) -> np.ndarray:
    low = np.char.lower(np.char.strip(raw.astype(str)))
    is_true = np.isin(low, list(_TRUE))
    ok = is_true | np.isin(low, list(_FALSE)) | np.isin(raw, list(NA_TOKENS))
    if not ok.all():
        i = int(np.argmin(ok))
        raise InputError("flag value is not yes/no", file=file, line=int(lines[i]), column=column)
    return is_true


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_text_column(
    raw: np.ndarray, missing: np.ndarray, *, file: Path, lines: np.ndarray, column: str
) -> None:
    """A column read as text (categorical) whose values are mostly numbers is a typo, not a
    category: a stray ``zero`` in a 0/1 phenotype, ``x1`` in a covariate would otherwise turn
    the column categorical and change the analysis silently. Locate the first such value
    (its line and column; the value itself is not quoted: it is a person's, and the message
    may end up in a log)."""
    present = np.flatnonzero(~missing)
    numeric = np.array([_is_number(v) for v in raw[present]], dtype=bool)
    if len(present) and numeric.sum() * 2 > len(present):
        i = int(present[np.argmax(~numeric)])
        raise InputError(
            f"the value on this line is not a number, but {int(numeric.sum())} of the "
            f"column's {len(present)} values are: fix the value (missing values are NA), or "
            "make every level of a categorical column text",
            file=file,
            line=int(lines[i]),
            column=column,
        )


def _check_decimal_comma(
    raw: np.ndarray, missing: np.ndarray, *, file: Path, lines: np.ndarray, column: str
) -> None:
    """A column of numbers some of which are written with a comma (``25,3``: a decimal comma,
    as a spreadsheet in many locales saves a semicolon- or tab-separated file, or a thousands
    separator) would otherwise be read as text -- every value its own category -- and change
    the analysis silently. Locate the first such value, never quoting it."""
    present = np.flatnonzero(~missing)
    comma = np.array([_COMMA_NUMBER.fullmatch(v) is not None for v in raw[present]], bool)
    if not comma.any():
        return
    if all(comma[j] or _is_number(raw[i]) for j, i in enumerate(present.tolist())):
        i = int(present[np.argmax(comma)])
        raise InputError(
            f"{int(comma.sum())} of the column's {len(present)} values are numbers written "
            "with a comma (first on this line): write numbers with a decimal point and no "
            "thousands separator (e.g. 1234.5), or make every level of a categorical column "
            "text",
            file=file,
            line=int(lines[i]),
            column=column,
        )


def read_pheno_csv(path: str | Path, sample_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a phenotype table keyed by sample id (column ``id`` or ``IID``).

    Returns a DataFrame indexed by sample id (``str``); flag columns ``discard``/``mixup``
    are booleans, numeric columns float64 (NaN = missing), others text. With ``sample_ids``
    the table is aligned to them: phenotype rows of unmatched samples are NaN (a warning gives
    the counts), and no shared sample at all is an error."""
    path = Path(path)
    header, body, lines = _parse_rows(path)
    id_col = next((c for c in ID_COLUMNS if c in header), None)
    if id_col is None:
        raise InputError(
            f"no sample id column: the first line must be a header naming one of "
            f"{', '.join(ID_COLUMNS)} (its {len(header)} field(s) name neither; a table "
            "without a header row, such as PLINK's FID IID value, needs one added). The "
            "line is not quoted: it may be a row of data",
            file=path,
            line=1,
        )
    if all(c in header for c in ID_COLUMNS):
        raise InputError(
            f"two sample id columns, {' and '.join(ID_COLUMNS)}: keep the one that matches "
            "the genotype sample ids",
            file=path,
            line=1,
            column=ID_COLUMNS[1],
        )
    if "" in header:
        raise InputError(
            f"column {header.index('') + 1} has no name (a delimiter at the end of the header, "
            "or row names written by R's write.csv? write with row.names = FALSE)",
            file=path,
            line=1,
            column=header.index("") + 1,
        )
    j = first_duplicate(header)
    if j is not None:
        raise InputError(
            f"duplicate column name {header[j]!r}", file=path, line=1, column=header[j]
        )
    if not body:
        raise InputError("no data rows: the file holds only its header", file=path)
    table = np.array(body, dtype=object).reshape(len(body), len(header))
    k = header.index(id_col)
    ids = [str(v) for v in table[:, k]]
    j = first_duplicate(ids)
    if j is not None:
        first = int(lines[ids.index(ids[j])])
        raise InputError(
            f"duplicate sample id (first on line {first})",
            file=path,
            line=int(lines[j]),
            column=id_col,
        )
    missing_id = [i for i, v in enumerate(ids) if v in NA_TOKENS]
    if missing_id:
        raise InputError(
            "missing sample id", file=path, line=int(lines[missing_id[0]]), column=id_col
        )
    # PLINK's key is FID + IID; the family id identifies, it is no phenotype
    plink = id_col == "IID"
    skip = {k} | ({header.index("FID")} if plink and "FID" in header else set())
    columns: dict[str, pd.Series] = {}
    for c, name in enumerate(header):
        if c in skip:
            continue
        raw = table[:, c].astype(str)
        if name in FLAG_COLUMNS:
            columns[name] = pd.Series(_flag_values(raw, file=path, lines=lines, column=name))
            continue
        missing = np.isin(raw, list(NA_TOKENS))
        try:  # float() per value: exact (pandas' to_numeric parser is not correctly rounded)
            numbers = np.where(missing, "nan", raw).astype(np.float64)
        except ValueError:
            _check_decimal_comma(raw, missing, file=path, lines=lines, column=name)
            _check_text_column(raw, missing, file=path, lines=lines, column=name)
            columns[name] = pd.Series([None if m else v for v, m in zip(raw, missing, strict=True)])
            continue
        bad = ~missing & ~np.isfinite(numbers)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                "not a finite number (write missing values as NA)",
                file=path,
                line=int(lines[i]),
                column=name,
            )
        huge = ~missing & (np.abs(numbers) > MAX_MAGNITUDE)
        if huge.any():
            raise InputError(
                f"a value of magnitude above {MAX_MAGNITUDE:g}: a sentinel or an overflow, not "
                "a measurement (its square overflows; write missing values as NA)",
                file=path,
                line=int(lines[int(np.argmax(huge))]),
                column=name,
            )
        if plink and (numbers == PLINK_MISSING).any():
            log.info(
                "%s: column %s: %d value(s) of %g read as missing (PLINK's missing-phenotype "
                "code; an IID column marks a PLINK file)",
                path,
                name,
                int((numbers == PLINK_MISSING).sum()),
                PLINK_MISSING,
            )
            numbers = np.where(numbers == PLINK_MISSING, np.nan, numbers)
        columns[name] = pd.Series(numbers)
    frame = pd.DataFrame(columns)
    frame.index = pd.Index(ids, name="id")
    if sample_ids is None:
        return frame
    wanted = pd.Index([str(s) for s in sample_ids], name="id")
    shared = wanted.isin(frame.index)
    if not shared.any():
        raise InputError(
            f"no sample id is shared with the genotypes ({len(wanted)} genotyped samples, "
            f"{len(frame)} phenotype rows): check the {id_col!r} column",
            file=path,
            column=id_col,
        )
    if not shared.all() or len(frame) > shared.sum():
        unmatched = {_loose_id(i) for i in frame.index.difference(wanted)}
        loose = sum(_loose_id(i) in unmatched for i in wanted[~shared])
        log.warning(
            "%s: %d of %d genotyped samples have no phenotype row (their phenotypes are "
            "missing); %d phenotype rows have no genotypes and are ignored%s",
            path,
            int((~shared).sum()),
            len(wanted),
            int(len(frame) - shared.sum()),
            f"; {loose} of the unmatched samples match a phenotype row when upper/lower case "
            "and Unicode normal form are ignored: the two files spell those ids differently "
            "(ids must match exactly)"
            if loose
            else "",
        )
    out = frame.reindex(wanted)
    for flag in FLAG_COLUMNS:
        if flag in out:
            out[flag] = out[flag].astype("boolean").fillna(False).astype(bool)
    return out


def _loose_id(sample_id: str) -> str:
    """``sample_id`` up to Unicode normal form and case (for a hint, never for matching)."""
    return unicodedata.normalize("NFC", sample_id).casefold()


def pheno_line(path: Path, sample_id: str) -> int | None:
    """The line of ``path`` (a phenotype table) that holds ``sample_id``'s row, for an error
    message found after the table was aligned to the genotypes; None when it is not there."""
    return first_pheno_line(path, [sample_id])


def first_pheno_line(path: Path, sample_ids: Sequence[str]) -> int | None:
    """The first line of ``path`` (a phenotype table) holding the row of one of
    ``sample_ids`` (for an error message about values found after the table was aligned to
    the genotypes: the line, never the id); None when none is there."""
    try:
        header, body, lines = _parse_rows(path)
    except (OSError, InputError):
        return None
    k = next((header.index(c) for c in ID_COLUMNS if c in header), None)
    if k is None:
        return None
    wanted = set(sample_ids)
    return next((int(lines[i]) for i, row in enumerate(body) if row[k] in wanted), None)


def split_flags(pheno: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Separate the sample flag columns from the phenotypes (index dropped)."""
    flags = {f: pheno[f].to_numpy(dtype=bool) for f in FLAG_COLUMNS if f in pheno}
    rest = pheno.drop(columns=list(flags)).reset_index(drop=True)
    return rest, flags


def _format_column(col: pd.Series) -> list[str]:
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        out = []
        for v in values.tolist():
            if v != v:
                out.append("NA")
            elif v.is_integer() and abs(v) < 1e15:
                out.append(str(int(v)))
            else:
                out.append(repr(v))
        return out
    if pd.api.types.is_bool_dtype(col):
        return ["yes" if v else "no" for v in col.tolist()]
    return ["NA" if pd.isna(v) else str(v) for v in col.tolist()]


def write_pheno_csv(
    path: Path, ids: Sequence[str], phenotypes: pd.DataFrame, flags: dict[str, np.ndarray]
) -> None:
    """Write ``id``, the flags (yes/no) and the phenotypes as comma-separated text; floats are
    written with the shortest repr that round-trips, missing as ``NA``."""
    names = ["id", *flags, *phenotypes.columns]
    clash = [n for n in phenotypes.columns if n in ("id", *FLAG_COLUMNS, *ID_COLUMNS)]
    if clash:
        raise InputError(f"phenotype column {clash[0]!r} clashes with a reserved column name")
    cols = [[str(i) for i in ids]]
    cols += [["yes" if v else "no" for v in flag.tolist()] for flag in flags.values()]
    cols += [_format_column(phenotypes[c]) for c in phenotypes.columns]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(zip(*cols, strict=True))


def find_pheno(directory: Path) -> Path | None:
    """``pheno.csv`` (or ``pheno.csv.gz``) in a cohort directory, in any upper/lower case
    (``PHENO.CSV``); both present, or two names differing only in case, is an error."""
    found = [p for p in (find_case_insensitive(directory, n) for n in PHENO_NAMES) if p is not None]
    if len(found) > 1:
        raise InputError(
            f"both {' and '.join(p.name for p in found)} are present; keep one", file=directory
        )
    return found[0] if found else None


def assemble_cohort(
    *,
    dosages: np.ndarray,
    variants: pd.DataFrame,
    sample_ids: list[str],
    discard: np.ndarray | None,
    directory: Path,
    source: str,
) -> Cohort:
    """Join genotypes with ``pheno.csv`` from ``directory`` (when present) into a Cohort."""
    n = len(sample_ids)
    flags = {
        "discard": np.zeros(n, bool) if discard is None else discard,
        "mixup": np.zeros(n, bool),
    }
    pheno_path = find_pheno(directory)
    if pheno_path is None:
        log.warning("%s: no pheno.csv; the cohort has no phenotypes", directory)
        phenotypes = pd.DataFrame(index=pd.RangeIndex(n))
    else:
        table = read_pheno_csv(pheno_path, sample_ids)
        phenotypes, extra = split_flags(table)
        for name, values in extra.items():
            flags[name] = flags[name] | values
    samples = pd.DataFrame({"id": sample_ids, "discard": flags["discard"], "mixup": flags["mixup"]})
    return Cohort(dosages, variants, samples, phenotypes, {}, source=source)
