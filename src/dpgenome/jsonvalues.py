"""What a JSON value is, as the results documents, ledgers and bundles read and write them.

JSON has no infinity or NaN: a figure that is not finite is written as ``null``
(:func:`finite_or_none`). ``true`` and ``false`` are not numbers here, though Python's bools
are ints (:func:`is_number`). A problem names a value's kind as a reader knows it
(:func:`json_kind`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeGuard


def finite_or_none(x: float | None) -> float | None:
    """``x`` as a float, or ``None`` (JSON ``null``) when it is missing, infinite or NaN."""
    return None if x is None or not math.isfinite(x) else float(x)


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number: an int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_kind(value: Any) -> str:
    """How a JSON value reads in a problem: 'a list', 'null', 'a string', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    kinds = ((Mapping, "an object"), (list, "a list"), (str, "a string"), (int | float, "a number"))
    return next((kind for t, kind in kinds if isinstance(value, t)), type(value).__name__)
