"""Attribute inference, scored anonymeter-style (Giomi et al. 2023, PoPETs 2023(2)).

The attacker knows a target's genotypes (and covariates) and holds the synthetic cohort; they
guess the target's phenotype as that of the nearest synthetic record (anonymeter's
``InferenceEvaluator`` with its 1-nearest-neighbour predictor; the distance here is the
genotype + covariate distance of :mod:`dpgenome.audit.features`). The attack is run on the
members (training targets) and on the holdout (control targets, never seen by the
synthesizer); the baseline guesses the phenotype of a random synthetic record. Rates are
Wilson-centred, and the risk is anonymeter's residual success
(attack - control) / (1 - control) with its CI: genotype-phenotype association that the
synthetic data reproduce *legitimately* lifts attack and control alike, only what was
memorised about members separates them.

A guess of a binary or categorical phenotype succeeds when equal; of a continuous one when
``|guess - truth| <= tolerance x SD`` of the synthetic phenotype (anonymeter uses a 5%
relative error, which is undefined for centred traits near zero).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dpgenome.audit.scoring import Rate, residual_risk, wilson_rate


def nearest_guesses(distance: np.ndarray, synth_secret: np.ndarray) -> np.ndarray:
    """The secret of each row's nearest synthetic record (columns with a missing secret are
    not candidates; the first of tied records wins)."""
    usable = ~_missing(synth_secret)
    if not usable.any():
        raise ValueError("no synthetic record has the phenotype observed")
    d = np.where(usable[None, :], distance, np.inf)
    return synth_secret[np.argmin(d, axis=1)]


def _missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    return np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in values])


def successes(guess: np.ndarray, truth: np.ndarray, tolerance: float | None) -> np.ndarray:
    """Exact match, or within ``tolerance`` (absolute) for continuous secrets."""
    if tolerance is None:
        return np.asarray(guess == truth)
    return np.abs(guess.astype(np.float64) - truth.astype(np.float64)) <= tolerance


def score_inference(
    member_success: np.ndarray,
    control_success: np.ndarray,
    baseline_success: np.ndarray,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Rates of attack, baseline and control and the residual risk with its CI."""
    attack = wilson_rate(float(member_success.sum()), len(member_success), confidence)
    baseline = wilson_rate(float(baseline_success.sum()), len(baseline_success), confidence)
    control = wilson_rate(float(control_success.sum()), len(control_success), confidence)
    risk, ci = residual_risk(attack, control)

    def r(x: float) -> float:
        return float(round(x, 6))

    def interval(rate: Rate) -> list[float]:
        return [r(max(rate.value - rate.error, 0.0)), r(min(rate.value + rate.error, 1.0))]

    return {
        "attack_accuracy": r(attack.value),
        "attack_accuracy_ci": interval(attack),
        "baseline_accuracy": r(baseline.value),
        "baseline_accuracy_ci": interval(baseline),
        "control_accuracy": r(control.value),
        "control_accuracy_ci": interval(control),
        "risk": r(risk),
        "risk_ci": [r(ci[0]), r(ci[1])],
        "n_targets": len(member_success),
        "n_control": len(control_success),
    }


def attribute_inference(
    member_distance: np.ndarray,
    control_distance: np.ndarray,
    member_secret: np.ndarray,
    control_secret: np.ndarray,
    synth_secret: np.ndarray,
    *,
    continuous: bool,
    tolerance: float,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Run the nearest-neighbour attack, its control and the random baseline for one secret.

    ``*_distance`` are targets (rows) x synthetic records (columns); targets whose secret is
    missing are skipped. ``tolerance`` is in units of the synthetic SD (continuous only).
    """
    mem_ok = ~_missing(member_secret)
    ctl_ok = ~_missing(control_secret)
    syn_ok = ~_missing(synth_secret)
    if mem_ok.sum() == 0 or ctl_ok.sum() == 0:
        raise ValueError("no member or no holdout target has the phenotype observed")
    tol = None
    if continuous:
        sd = float(np.std(synth_secret[syn_ok].astype(np.float64)))
        tol = tolerance * (sd if sd > 0 else 1.0)
    mem_guess = nearest_guesses(member_distance[mem_ok], synth_secret)
    ctl_guess = nearest_guesses(control_distance[ctl_ok], synth_secret)
    pool = synth_secret[syn_ok]
    base_guess = pool[rng.integers(len(pool), size=int(mem_ok.sum()))]
    out = score_inference(
        successes(mem_guess, member_secret[mem_ok], tol),
        successes(ctl_guess, control_secret[ctl_ok], tol),
        successes(base_guess, member_secret[mem_ok], tol),
        confidence,
    )
    out["tolerance"] = None if tol is None else float(round(tol, 6))
    return out
