"""What a JSON value is (:mod:`dpgenome.jsonvalues`), and the dotted lookup with a default
(:func:`dpgenome.findings.value_at`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dpgenome.findings import value_at
from dpgenome.jsonvalues import finite_or_none, is_number, json_kind


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (1, 1.0),
        (0.25, 0.25),
        (-3.5, -3.5),
        (np.float64(2.5), 2.5),
        (np.int64(7), 7.0),
        (None, None),
        (math.inf, None),
        (-math.inf, None),
        (math.nan, None),
        (np.float32("nan"), None),
    ],
)
def test_finite_or_none(x: float | None, expected: float | None) -> None:
    got = finite_or_none(x)
    assert got == expected
    assert got is None or type(got) is float  # a plain float: json.dumps writes it
    json.dumps(got, allow_nan=False)  # never a NaN or infinity in strict JSON


def test_is_number__json_numbers_only() -> None:
    assert is_number(0) and is_number(2.9) and is_number(-1e300) and is_number(math.inf)
    # a bool is an int in Python, not a number in a ledger or manifest
    assert not is_number(True) and not is_number(False)
    assert not any(is_number(v) for v in ("3", None, [1], {"a": 1}))


def test_json_kind__as_a_problem_names_it() -> None:
    kinds = [json_kind(v) for v in (None, True, {"a": 1}, [1], "x", 3, 2.5)]
    assert kinds == [
        "null",
        "true/false",
        "an object",
        "a list",
        "a string",
        "a number",
        "a number",
    ]
    assert json_kind(b"x") == "bytes"  # not a JSON type: its Python name


def test_value_at__dotted_keys_and_defaults() -> None:
    results = {
        "audit": {"attacks": {"dcr": {"tpr_at_fpr_0.01": 0.02}}},
        "fidelity": {"gwas": {"thresholds": {"1e-08": {"recall": 0.6}}}},
        "ledger": {"epsilon": None},
    }
    assert value_at(results, "audit.attacks.dcr.tpr_at_fpr_0.01") == 0.02
    assert value_at(results, "fidelity.gwas.thresholds.1e-08.recall") == 0.6
    assert value_at(results, "fidelity.gwas.thresholds.2e-06.recall", "n/a") == "n/a"
    assert value_at(results, "audit.attacks.dcr.tpr_at_fpr_0.01.deeper") is None
    # a key present as null is not missing: it reads as None, not as the default
    assert value_at(results, "ledger.epsilon", 0.0) is None
