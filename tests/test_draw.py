"""Rows of a 0/1 phenotype drawn to a released prevalence and covariate slopes."""

from __future__ import annotations

import numpy as np
import pytest

from dpgenome import draw as D


def test_draw_with_prevalence__whole_rows_at_the_asked_prevalence() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(50), np.zeros(350)]
    pick = D.draw_with_prevalence(y, 100, 0.19, rng)
    assert len(set(pick.tolist())) == 100 and y[pick].sum() == 19
    # as near as the rows allow: only 50 ones
    assert y[D.draw_with_prevalence(y, 100, 0.8, rng)].sum() == 50
    assert y[D.draw_with_prevalence(y, 100, -0.1, rng)].sum() == 0
    with pytest.raises(ValueError, match="400 rows cannot give 500"):
        D.draw_with_prevalence(y, 500, 0.2, rng)


def test_inclusion_probabilities__proportional_and_capped_at_one() -> None:
    """Hand-worked: weights (10, 1, 1, 1, 1) and 2 draws: proportional would give the first
    row 10 / 14 * 2 > 1, so it is certain and the other draw spreads over four rows."""
    pi = D.inclusion_probabilities(np.array([10.0, 1, 1, 1, 1]), 2)
    np.testing.assert_allclose(pi, [1.0, 0.25, 0.25, 0.25, 0.25])
    # uncapped: exactly proportional
    np.testing.assert_allclose(
        D.inclusion_probabilities(np.array([1.0, 2, 3, 4]), 1), [0.1, 0.2, 0.3, 0.4]
    )
    # two capped in turn: (100, 50, 1, 1) with 3 draws -> 1, 1, 0.5, 0.5
    np.testing.assert_allclose(
        D.inclusion_probabilities(np.array([100.0, 50, 1, 1]), 3), [1.0, 1.0, 0.5, 0.5]
    )
    assert D.inclusion_probabilities(np.ones(3), 0).sum() == 0
    assert D.inclusion_probabilities(np.ones(3), 5).tolist() == [1.0, 1.0, 1.0]


def test_systematic_sample__distinct_rows_at_their_inclusion_probabilities() -> None:
    rng = np.random.default_rng(3)
    pi = D.inclusion_probabilities(rng.exponential(size=40), 12)
    draws = 4000
    counts = np.zeros(40)
    for _ in range(draws):
        pick = D.systematic_sample(pi, rng)
        assert len(pick) == 12 and len(np.unique(pick)) == 12
        counts[pick] += 1
    sd = np.sqrt(pi * (1 - pi) / draws)
    assert np.all(np.abs(counts / draws - pi) <= 4 * sd + 1e-12)


def test_tilted_sample__reaches_the_target_mean() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2000, 2))
    target = np.array([0.3, -0.2])
    means = np.array([x[D.tilted_sample(x, 500, target, rng)].mean(axis=0) for _ in range(40)])
    np.testing.assert_allclose(means.mean(axis=0), target, atol=0.02)
    # the target is the rows' own mean: a uniform draw
    own = x.mean(axis=0)
    pick = D.tilted_sample(x, 500, own, rng)
    assert len(np.unique(pick)) == 500
    # every row kept: nothing to tilt
    assert sorted(D.tilted_sample(x[:10], 10, target, rng).tolist()) == list(range(10))


def _ols_slopes(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(y)), x])
    return np.linalg.lstsq(design, y, rcond=None)[0][1:]


def test_draw_with_prevalence__rows_take_the_asked_slopes() -> None:
    """Sampled rows with no relation between the 0/1 phenotype and two covariates; the kept
    rows have the asked prevalence exactly and the asked least-squares slopes (within the
    draw's own spread, measured over repeats), at the sampled rows' covariate mean. Asked
    for no slope, rows sampled with one lose it."""
    rng = np.random.default_rng(7)
    n, over = 1000, 4
    x = rng.standard_normal((n * over, 2)) * [1.0, 3.0] + [0.0, 20.0]
    y = (rng.uniform(size=n * over) < 0.3).astype(float)
    assert np.abs(_ols_slopes(y, x)).max() < 0.01
    asked = np.array([0.08, -0.02])  # r about 0.2 and -0.15 at prevalence 0.2
    got, prevalence, centre = [], [], []
    for _ in range(20):
        pick = D.draw_with_prevalence(y, n, 0.2, rng, covariates=x, slopes=asked)
        assert len(np.unique(pick)) == n
        got.append(_ols_slopes(y[pick], x[pick]))
        prevalence.append(y[pick].mean())
        centre.append(x[pick].mean(axis=0))
    got_arr = np.array(got)
    assert set(prevalence) == {0.2}
    spread = got_arr.std(axis=0) / np.sqrt(len(got_arr))
    assert np.all(np.abs(got_arr.mean(axis=0) - asked) < 4 * spread + 0.002)
    np.testing.assert_allclose(np.mean(centre, axis=0), x.mean(axis=0), atol=0.05)
    # rows sampled with a slope, asked for none
    tilted = (rng.uniform(size=n * over) < 0.2 + 0.1 * np.tanh(x[:, 0])).astype(float)
    assert _ols_slopes(tilted, x)[0] > 0.05
    flat = [
        _ols_slopes(tilted[p], x[p])[0]
        for p in (
            D.draw_with_prevalence(tilted, n, 0.2, rng, covariates=x, slopes=np.zeros(2))
            for _ in range(10)
        )
    ]
    assert abs(float(np.mean(flat))) < 0.01


def test_draw_with_prevalence__a_class_kept_whole_cannot_tilt() -> None:
    """When the 1-class must keep every sampled row, its mean cannot move: the draw still
    returns distinct rows at the prevalence, with the slope the rows allow."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((400, 1))
    y = np.r_[np.ones(20), np.zeros(380)]
    pick = D.draw_with_prevalence(y, 100, 0.2, rng, covariates=x, slopes=np.array([0.2]))
    assert y[pick].sum() == 20 and len(np.unique(pick)) == 100
    assert set(np.flatnonzero(y)).issubset(set(pick.tolist()))
