"""DP bins of a continuous column outside the public schema (:func:`dpgenome.phenobins.dp_bins`):
how far a synthetic column drawn through them is from the members' values, against the named
reference in the same run, the exact quantile bins a release without formal privacy uses.

    python bench/bins.py [--n 240 768] [--sigma 5 10 20] [--reps 20] [--seed 0]

Six simulated column shapes (normal 25 +- 4; lognormal; large, 1000 +- 50; small, 0.05 +- 0.01;
two overlapping modes; negative, -3 +- 1.5), each at every member count ``--n`` and noise sd
``--sigma`` (the bins' noise multiplier: about 5 at the demo's epsilon and 11 at epsilon 3 for
~1,000 members, 2x the phenotype DP-SGD run's). Two views of the synthetic column:

* ``learnt``: every member's value redrawn within its own bin by the bins' shape (a model that
  learnt the bins' shares exactly): the mean |log ratio| of synthetic to real sd and the
  Wasserstein-1 distance in real sds;
* ``start``: values drawn from the bins alone, every bin equally likely (a model's uniform
  start, the bins' own distribution, as a DP-binned column starts: it has no public shares):
  the |error| of the mean in real sds and the |log ratio| of the sds;
* ``gap``: two modes 100 apart (sd 5) and a model's uniform start on the bins (every bin
  equally likely): the share of values in the empty stretch (130, 170).

``--reps`` columns are drawn per cell; the same draws go to both arms.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from dpgenome.noise import GeneratorNoise
from dpgenome.phenobins import dp_bins
from dpgenome.phenoencoding import SHAPE_POINTS, ColumnSchema, _decode_column, _within_bins
from dpgenome.phenotypes import _quantile_bins

SHAPES = ("normal", "lognormal", "large", "small", "two modes", "negative")


def draw(shape: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if shape == "normal":
        return rng.normal(25.0, 4.0, n)
    if shape == "lognormal":
        return np.exp(rng.normal(3.0, 0.5, n))
    if shape == "large":
        return rng.normal(1000.0, 50.0, n)
    if shape == "small":
        return rng.normal(0.05, 0.01, n)
    if shape == "two modes":
        return np.r_[rng.normal(20.0, 2.0, n // 2), rng.normal(32.0, 2.0, n - n // 2)]
    return rng.normal(-3.0, 1.5, n)


def learnt(x: np.ndarray, spec: ColumnSchema, rng: np.random.Generator) -> np.ndarray:
    """Each value redrawn within its own bin (clamped into the end bins) by the bins' shape."""
    edges = np.asarray(spec.edges)
    bins = np.searchsorted(edges[1:-1], x, side="right")
    return _within_bins(edges, bins, spec.quantiles, spec.probabilities, rng.random(len(x)))


def arms(x: np.ndarray, sigma: float, seed: int) -> dict[str, ColumnSchema]:
    return {
        "dp": dp_bins(
            x, n_bins=20, noise_multiplier=sigma, noise=GeneratorNoise(np.random.default_rng(seed))
        ),
        "exact (no formal privacy)": _quantile_bins(x, 20, SHAPE_POINTS, source="reference"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[240, 768])
    parser.add_argument("--sigma", type=float, nargs="+", default=[5.0, 10.0, 20.0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    print(
        "learnt: mean |log sd ratio|, W1 in sds; start: |mean error| in sds (m), |log sd ratio|"
        " (s); dp | exact quantile bins (the reference)"
    )
    print(f"{'shape':10s} {'n':>5s} {'sigma':>5s} | {'dp':>29s} | {'reference':>29s}")
    for shape in SHAPES:
        for n in args.n:
            for sigma in args.sigma:
                res: dict[str, list[tuple[float, ...]]] = {}
                for _ in range(args.reps):
                    x = draw(shape, n, rng)
                    seed = int(rng.integers(1 << 31))
                    for name, spec in arms(x, sigma, seed).items():
                        r2 = np.random.default_rng(seed + 1)
                        s = learnt(x, spec, r2)
                        u = _decode_column(r2.integers(0, len(spec.edges) - 1, 20_000), spec, r2)
                        res.setdefault(name, []).append(
                            (
                                abs(float(np.log(s.std() / x.std()))),
                                float(stats.wasserstein_distance(x, s) / x.std()),
                                abs(float(u.mean() - x.mean())) / x.std(),
                                abs(float(np.log(u.std() / x.std()))),
                            )
                        )
                cells = [np.mean(v, axis=0) for v in res.values()]
                print(
                    f"{shape:10s} {n:5d} {sigma:5.0f} | "
                    + " | ".join(f"{c[0]:.3f} W{c[1]:.3f} m{c[2]:.3f} s{c[3]:.3f}" for c in cells),
                    flush=True,
                )
    print("\ngap: share of a uniform start on the bins in the empty stretch (130, 170)")
    for n in args.n:
        for sigma in args.sigma:
            shares = []
            for _ in range(args.reps):
                x = np.r_[rng.normal(100.0, 5.0, n // 2), rng.normal(200.0, 5.0, n - n // 2)]
                spec = dp_bins(x, n_bins=20, noise_multiplier=sigma, noise=GeneratorNoise(rng))
                u = _decode_column(rng.integers(0, len(spec.edges) - 1, 20_000), spec, rng)
                shares.append(np.mean((u > 130) & (u < 170)))
            print(f"n {n:5d} sigma {sigma:5.0f}: {np.mean(shares):.4f}")
    print(f"\n{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
