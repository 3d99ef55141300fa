"""One-run canary audit (Steinke, Nasr & Jagielski 2023): exact bound, and known answers
for a memorising and an oblivious synthesizer."""

from __future__ import annotations

from math import exp, log

import numpy as np
import pytest
from scipy import stats

from dpgenome.audit.canary import (
    epsilon_lower_bound,
    make_canaries,
    max_lower_bound,
    one_run_p_value,
)
from dpgenome.testing import ToyConfig, toy_cohort


def test_epsilon_lower_bound__all_correct_without_delta_is_closed_form():
    """v = r, delta = 0: P[Bin(r, q) >= r] = q^r = 0.05 gives q = 0.05^(1/r), eps = logit q."""
    for r in (10, 40, 100):
        q = 0.05 ** (1 / r)
        assert epsilon_lower_bound(500, r, r, delta=0.0) == pytest.approx(
            log(q / (1 - q)), abs=1e-5
        )


def test_one_run_p_value__delta_term_by_hand():
    """m = 100, r = 4, v = 3, eps = 1, delta = 1e-3: the delta term is 2 m delta max_i
    P[3 - i <= B < 3] / i over i = 1..3, computed term by term."""
    q = 1 / (1 + exp(-1.0))
    pmf = [stats.binom.pmf(k, 4, q) for k in range(5)]
    alpha = max(pmf[2] / 1, (pmf[2] + pmf[1]) / 2, (pmf[2] + pmf[1] + pmf[0]) / 3)
    want = sum(pmf[3:]) + 2 * 100 * 1e-3 * alpha
    assert one_run_p_value(100, 4, 3, 1.0, 1e-3) == pytest.approx(want, rel=1e-12)


def test_epsilon_lower_bound__monotone_and_zero_at_chance():
    assert epsilon_lower_bound(1000, 200, 100, delta=1e-5) == 0.0
    bounds = [epsilon_lower_bound(1000, 200, v, delta=1e-5) for v in (140, 160, 180, 200)]
    assert bounds == sorted(bounds) and bounds[0] > 0
    assert epsilon_lower_bound(1000, 200, 200, delta=1e-5) < epsilon_lower_bound(
        1000, 200, 200, delta=0
    )


def test_max_lower_bound__the_demo_audit_cannot_reach_its_claim():
    """The demo's audit, 50 canaries and 20 guesses at delta = 1/768^1.1: even every guess
    right bounds epsilon below by only about 1.72, far under the claimed 8; the reach grows
    with the guesses and never exceeds the no-delta closed form."""
    delta = 768**-1.1
    reach = max_lower_bound(50, 20, delta=delta)
    assert reach == pytest.approx(epsilon_lower_bound(50, 20, 20, delta=delta), abs=1e-6)
    assert reach == pytest.approx(1.716, abs=1e-3)
    q = 0.05 ** (1 / 20)
    assert reach < log(q / (1 - q))
    assert max_lower_bound(200, 80, delta=delta) > max_lower_bound(50, 20, delta=delta)
    # no number of correct guesses beats it
    assert all(epsilon_lower_bound(50, 20, v, delta=delta) <= reach for v in range(21))


def test_make_canaries__random_individuals_on_the_template():
    cohort, _ = toy_cohort(0, ToyConfig(n=50))
    can = make_canaries(cohort, 30, np.random.default_rng(0))
    assert can.n_samples == 30 and can.n_variants == cohort.n_variants
    assert set(np.unique(can.dosages)) <= {0.0, 1.0, 2.0}
    assert abs(float(can.dosages.mean()) - 1.0) < 0.05
    assert list(can.phenotypes.columns) == list(cohort.phenotypes.columns)
    assert not set(can.sample_ids) & set(cohort.sample_ids)


def test_make_canaries__phenotypes_pass_a_declared_schema(tmp_path):
    """A count declared by its values (parity 0-4) gets canary values among them, a measured
    column stays inside its observed range: a synthesizer retraining on members + canaries
    re-checks the schema (a Normal draw of parity, 1.017, failed the release's canary
    stage)."""
    from dpgenome.phenoschema import read_pheno_schema
    from dpgenome.phenotypes import PhenoType

    cohort, _ = toy_cohort(0, ToyConfig(n=200))
    rng = np.random.default_rng(1)
    cohort.phenotypes["parity"] = rng.integers(0, 5, cohort.n_samples).astype(float)
    cohort.phenotypes["bmi"] = rng.normal(25, 4, cohort.n_samples).clip(15, 40)
    cohort.pheno_types.update(parity=PhenoType.CONTINUOUS, bmi=PhenoType.CONTINUOUS)
    can = make_canaries(cohort, 400, np.random.default_rng(0))
    assert set(can.phenotypes["parity"]) == {0.0, 1.0, 2.0, 3.0, 4.0}
    bmi = can.phenotypes["bmi"]
    assert (
        cohort.phenotypes["bmi"].min() <= bmi.min() and bmi.max() <= cohort.phenotypes["bmi"].max()
    )
    assert bmi.nunique() > 300  # drawn, not copied
    schema = tmp_path / "s.yaml"
    schema.write_text(
        "columns:\n  parity: {type: continuous, values: [0, 1, 2, 3, 4]}\n"
        "  bmi: {type: continuous, range: [15, 40]}\n"
    )
    read_pheno_schema(schema).apply(can)  # raises InputError on a value outside


def _copy(cohort, seed):
    return cohort


def _fresh(cohort, seed):
    out, _ = toy_cohort(seed % 1000 + 500, ToyConfig(n=cohort.n_samples))
    return out


def test_run_audits__canary_copying_synthesizer_gives_large_bound_and_flags_claim():
    from dpgenome.audit import AuditConfig, run_audits
    from test_audit_membership import world

    real, split, fresh, _ = world()
    cfg = AuditConfig(seed=2, canaries=200, claimed_epsilon=1.0, delta=1e-5)
    can = run_audits(real, split, fresh, cfg, train_fn=_copy).to_dict()["canary"]
    # 40 IN + 40 OUT guesses all correct: the bound of v = r = 80 with delta
    assert can["correct"] == can["guesses"] == 80
    assert can["epsilon_lower_bound"] == pytest.approx(
        epsilon_lower_bound(200, 80, 80, delta=1e-5), abs=1e-5
    )
    assert can["epsilon_lower_bound"] > 3.0
    assert can["exceeds_claimed"] is True
    # a perfect guesser reaches the audit's ceiling, recorded beside the bound
    assert can["max_lower_bound"] == pytest.approx(can["epsilon_lower_bound"], abs=1e-5)


def test_run_audits__canary_oblivious_synthesizer_gives_about_zero():
    from dpgenome.audit import AuditConfig, run_audits
    from test_audit_membership import world

    real, split, fresh, _ = world()
    cfg = AuditConfig(seed=2, canaries=200, claimed_epsilon=1.0)
    can = run_audits(real, split, fresh, cfg, train_fn=_fresh).to_dict()["canary"]
    assert can["epsilon_lower_bound"] < 0.3
    assert can["exceeds_claimed"] is False
    assert can["max_lower_bound"] == pytest.approx(
        max_lower_bound(200, can["guesses"], delta=cfg.delta), abs=1e-6
    )
