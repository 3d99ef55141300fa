"""Attribute inference: cross-checked with anonymeter's InferenceEvaluator on a phenotype
table; at baseline on independent data; high when the synthetic data copy the members."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from dpgenome.audit.attribute import attribute_inference, nearest_guesses, successes
from test_audit_membership import reports


def _l1(a: pd.DataFrame, b: pd.DataFrame, ranges: pd.Series) -> np.ndarray:
    x, y = (a / ranges).to_numpy(), (b / ranges).to_numpy()
    return np.abs(x[:, None, :] - y[None, :, :]).sum(axis=2)


def _tables(seed: int, leak: float):
    """Members, control and synthetic phenotype tables: aux = (BMD, bw), secret = the binary
    abBMD, independent of aux. A share ``leak`` of the synthetic rows are members with a
    tiny perturbation of aux (memorised records); the rest are fresh draws."""
    rng = np.random.default_rng(seed)

    def draw(n: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "BMD": rng.normal(10, 1, n),
                "bw": rng.normal(25, 3, n),
                "abBMD": rng.integers(0, 2, n),
            }
        )

    members, control = draw(300), draw(300)
    n_leak = int(leak * 300)
    copied = members.iloc[:n_leak].copy()
    copied[["BMD", "bw"]] += rng.normal(0, 1e-3, size=(n_leak, 2))
    synth = pd.concat([copied, draw(300 - n_leak)], ignore_index=True)
    return members, control, synth


@pytest.mark.parametrize("leak", [0.0, 0.6])
def test_attribute_inference__agrees_with_anonymeter_within_its_ci(leak):
    from anonymeter.evaluators import InferenceEvaluator

    members, control, synth = _tables(5, leak)
    aux = ["BMD", "bw"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = InferenceEvaluator(
            ori=members,
            syn=synth,
            control=control,
            aux_cols=aux,
            secret="abBMD",
            regression=False,
            n_attacks=len(members),
        ).evaluate(n_jobs=1)
        ref = ev.risk(confidence_level=0.95)
    allx = pd.concat([members, control, synth])[aux]
    ranges = allx.max() - allx.min()
    ours = attribute_inference(
        _l1(members[aux], synth[aux], ranges),
        _l1(control[aux], synth[aux], ranges),
        members["abBMD"].to_numpy(np.float64),
        control["abBMD"].to_numpy(np.float64),
        synth["abBMD"].to_numpy(np.float64),
        continuous=False,
        tolerance=0.1,
        rng=np.random.default_rng(0),
    )
    assert ref.ci[0] - 1e-9 <= ours["risk"] <= ref.ci[1] + 1e-9, (ours["risk"], ref)
    if leak:
        assert ours["risk_ci"][0] > 0.3
    else:
        assert ours["risk_ci"][0] == 0.0


def test_attribute_inference__independent_data_is_at_baseline():
    members, control, synth = _tables(6, 0.0)
    rng = np.random.default_rng(1)
    d_m = rng.random((300, 300))
    d_c = rng.random((300, 300))
    res = attribute_inference(
        d_m,
        d_c,
        members["bw"].to_numpy(),
        control["bw"].to_numpy(),
        synth["bw"].to_numpy(),
        continuous=True,
        tolerance=0.1,
        rng=rng,
    )
    # two independent estimates of the same rate: their 95% intervals overlap
    (lo, hi), (blo, bhi) = res["attack_accuracy_ci"], res["baseline_accuracy_ci"]
    assert lo <= bhi and blo <= hi
    assert abs(res["attack_accuracy"] - res["baseline_accuracy"]) < 0.06
    assert res["risk_ci"][0] == 0.0


def test_run_audits__fresh_draws_attribute_risk_ci_covers_zero():
    for pheno, res in reports()[0]["attribute_inference"].items():
        assert res["risk_ci"][0] == 0.0, pheno
        lo, hi = res["attack_accuracy_ci"]
        assert lo - 0.05 <= res["control_accuracy"] <= hi + 0.05, pheno


def test_run_audits__copy_of_members_attribute_risk_is_high():
    for pheno, res in reports()[1]["attribute_inference"].items():
        assert res["risk"] > 0.8, pheno
        assert res["attack_accuracy"] > res["baseline_accuracy"]


def test_successes__tolerance_and_missing_candidates():
    assert successes(np.array([1.0, 2.0]), np.array([1.05, 2.5]), 0.1).tolist() == [True, False]
    guess = nearest_guesses(np.array([[0.0, 1.0, 2.0]]), np.array([np.nan, 3.0, 4.0]))
    assert guess.tolist() == [3.0]
