"""Coverage of the membership attacks' AUC CIs when nothing leaks: how often the 95% CI
holds 0.5, against the plain bootstrap of fixed scores (the reference, measured in the same
run on the same scores).

    python bench/coverage.py [--shadow-replicates 300] [--splits 120] [--n 1000]

Shadow attack: the scoring step of ``audit.shadow`` on null features (IN and OUT games of a
target drawn alike, a random effect per target), as an independent review replayed it at
stop 45. Reference attacks (DOMIAS density ratio, allele frequency): a simulated colony of
``--n`` mice and a public panel of the same colony as a synthetic cohort that depends on no
split, over ``--splits`` random per-individual splits (holdout 0.2).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dpgenome.audit import features as ft
from dpgenome.audit.membership import (
    allele_counts,
    allele_frequency_score_draws,
    cross_fit_folds,
    density_ratio_scores,
    reference_auc_sd,
    reference_resamples,
)
from dpgenome.audit.scoring import score_attack
from dpgenome.audit.shadow import score_games
from dpgenome.cohort import Split


def shadow(replicates: int, rng: np.random.Generator) -> None:
    print("shadow attack, null features: coverage of 0.5 (plain bootstrap / shipped)")
    for targets, games in ((20, 2), (50, 2), (20, 5)):
        plain = shipped = 0
        for _ in range(replicates):
            features = rng.normal(size=(targets, 1, 3)) * 3 + rng.normal(
                size=(targets, 2 * games, 3)
            )
            labels = np.zeros((targets, 2 * games))
            labels[:, :games] = 1
            members, others, sd = score_games(features, labels, 200, rng)
            a = score_attack(members, others, method="x", n_bootstrap=200, rng=rng)
            b = score_attack(members, others, method="x", n_bootstrap=200, rng=rng, auc_sd=sd)
            plain += a.auc_ci[0] <= 0.5 <= a.auc_ci[1]
            shipped += b.auc_ci[0] <= 0.5 <= b.auc_ci[1]
        print(
            f"  {targets} targets x {games} games: {plain / replicates:.3f} / "
            f"{shipped / replicates:.3f} ({replicates} replicates)"
        )


def reference(n: int, splits: int, draws: int, rng: np.random.Generator) -> None:
    from dpgenome.simulate import SimConfig, simulate

    sim = simulate(SimConfig(n=n, seed=4, chromosomes=("5", "11"), n_public=800))
    real, public = sim.cohort, sim.public
    assert public is not None
    cols = np.arange(real.n_variants)
    total, observed = allele_counts(public.dosages, np.arange(public.n_samples), cols)
    synth_freq = (total + 0.5) / (2 * observed + 1)
    sub = np.sort(rng.choice(real.n_variants, min(5000, real.n_variants), replace=False))
    fill = ft.fill_values(real.dosages, sub)
    real_calls = ft.hard_calls(real.dosages, sub, fill)
    synth_calls = ft.hard_calls(public.dosages, sub, fill)
    none_r, none_s = np.zeros((real.n_samples, 0)), np.zeros((public.n_samples, 0))
    counts = {k: [0, 0] for k in ("density_ratio", "allele_frequency")}
    t0 = time.perf_counter()
    for s in range(splits):
        held = rng.random(real.n_samples) < 0.2
        split = Split(np.flatnonzero(~held), np.flatnonzero(held), s, 0.2, None, "")
        folds = cross_fit_folds(split, real.n_samples, rng)
        resamples = reference_resamples(split.holdout, draws, rng)

        def domias(rows: np.ndarray | None, split: Split = split, folds: np.ndarray = folds):
            return density_ratio_scores(
                real_calls, synth_calls, none_r, none_s, split, folds, 5, holdout=rows
            )

        af, *af_draws = allele_frequency_score_draws(
            real.dosages, cols, synth_freq, [split.holdout, *resamples], folds
        )
        scores = {
            "density_ratio": (domias(None), np.array([domias(r) for r in resamples])),
            "allele_frequency": (af, np.array(af_draws)),
        }
        for name, (v, d) in scores.items():
            m, h = v[split.members], v[split.holdout]
            sd = reference_auc_sd(d, split.members, split.holdout)
            a = score_attack(m, h, method=name, n_bootstrap=200, rng=rng)
            b = score_attack(m, h, method=name, n_bootstrap=200, rng=rng, reference_sd=sd)
            counts[name][0] += a.auc_ci[0] <= 0.5 <= a.auc_ci[1]
            counts[name][1] += b.auc_ci[0] <= 0.5 <= b.auc_ci[1]
    print(
        f"reference attacks, {real.n_samples} simulated mice x {real.n_variants} SNPs against "
        f"{public.n_samples} panel mice, {splits} splits ({time.perf_counter() - t0:.0f} s): "
        "coverage of 0.5 (plain bootstrap / shipped)"
    )
    for name, (plain, shipped) in counts.items():
        print(f"  {name:17s} {plain / splits:.3f} / {shipped / splits:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shadow-replicates", type=int, default=300)
    ap.add_argument("--splits", type=int, default=120)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=20, help="holdout resamples (shipped: 20)")
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.shadow_replicates:
        shadow(args.shadow_replicates, rng)
    if args.splits:
        reference(args.n, args.splits, args.draws, rng)


if __name__ == "__main__":
    main()
