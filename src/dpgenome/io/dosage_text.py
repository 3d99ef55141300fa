"""Parsing and formatting one row of dosage tokens at C speed.

A row such as ``b"0 1 2 NA 1.439 2"`` is tokenised with numpy on its bytes: single-digit
tokens (the vast majority of any genotype file) are decoded arithmetically, and only the few
other tokens (missing markers, non-integer dosages, garbage) go through Python. Values are
checked against [0, 2] vectorised; the first bad token is reported by its column index so the
caller can name the file, line and SNP. Messages never quote the value itself: it belongs to
an individual, and the location is enough to find it.
"""

from __future__ import annotations

import math

import numpy as np

_INT_TOKENS = np.array([b"0", b"1", b"2"], dtype=object)


class RowError(Exception):
    """A bad token (``index`` is its 0-based position in the row) or a ragged row."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


def parse_row(text: bytes, n: int, *, sep: bytes = b" ", missing: frozenset[bytes]) -> np.ndarray:
    """Parse ``n`` dosages separated by the one-byte ``sep``; tokens in ``missing`` are NaN.

    Raises :class:`RowError` for a wrong number of fields, a non-numeric token (including
    ``nan``/``inf`` spelled out: missing values must use a missing marker) or a value outside
    [0, 2]."""
    buf = np.frombuffer(text, dtype=np.uint8)
    delim = np.flatnonzero(buf == sep[0])
    if len(delim) != n - 1:
        raise RowError(f"{len(delim) + 1} dosage fields where the header has {n}")
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    starts[1:] = delim + 1
    ends = np.empty(n, dtype=np.int64)
    ends[:-1] = delim
    ends[-1] = len(buf)
    return parse_tokens(text, buf, starts, ends, missing=missing)


def parse_tokens(
    text: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, *, missing: frozenset[bytes]
) -> np.ndarray:
    """Parse the dosage tokens ``text[starts[j]:ends[j]]`` (``buf`` is ``text`` as uint8)."""
    out = np.empty(len(starts), dtype=np.float32)
    single = ends - starts == 1
    digit = buf[starts[single]] - np.uint8(48)  # wraps for non-digits
    is_digit = digit <= 9
    out[single] = digit
    slow = ~single
    slow[np.flatnonzero(single)[~is_digit]] = True
    for j in np.flatnonzero(slow).tolist():
        token = text[starts[j] : ends[j]]
        if token in missing:
            out[j] = np.nan
            continue
        try:
            value = float(token)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or b"_" in token:
            raise RowError("dosage is not a number (write missing values as NA)", j)
        out[j] = value
    bad = ~((out >= 0.0) & (out <= 2.0)) & ~np.isnan(out)
    if bad.any():
        j = int(np.argmax(bad))
        raise RowError("dosage is outside [0, 2]", j)
    return out


def short_float32(value: float) -> bytes:
    """Shortest decimal that reads back (via float64) to the same float32."""
    x = np.float32(value)
    text = np.format_float_positional(x, unique=True, trim="-")
    if np.float32(float(text)) != x:
        text = f"{float(x):.9g}"
    return text.encode()


def format_row(values: np.ndarray, *, sep: bytes = b" ", missing: bytes = b"NA") -> bytes:
    """Format float32 dosages: 0/1/2 as one digit, NaN as ``missing``, other values with the
    shortest decimal that round-trips the float32 exactly."""
    values = np.asarray(values, dtype=np.float32)
    tokens = np.empty(len(values), dtype=object)
    is_int = (values == 0.0) | (values == 1.0) | (values == 2.0)
    tokens[is_int] = _INT_TOKENS[values[is_int].astype(np.int64)]
    nan = np.isnan(values)
    tokens[nan] = missing
    for j in np.flatnonzero(~is_int & ~nan).tolist():
        tokens[j] = short_float32(float(values[j]))
    return sep.join(tokens.tolist())
