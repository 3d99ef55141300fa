"""What secure mode's exact samplers cost (``dpgenome.noise``), against numpy's in the same run.

    python bench/noise.py                  # samplers, then the demo's members at epsilon 8
    python bench/noise.py --runs 3 --eps 3 # three syntheses per mode
    python bench/noise.py --samplers-only
    python bench/noise.py --runs 1 --eps 3 --no-public   # DP-SGD on the members' genotypes

1. **Samplers**: microseconds per draw of each mechanism's noise, exact (:class:`SecureNoise`,
   the OS CSPRNG, integer arithmetic; secure mode, the default) against numpy's
   floating-point draws (:class:`GeneratorNoise`, ``--no-secure-mode``), at the demo's
   shapes: a Gaussian vector of 200 values, one Laplace value, an exponential mechanism over
   4,700 candidate windows whose utilities spread like the demo's region scores (null
   N(0, 1) scores, a few loci at 6-9, the selection scale 0.5).
2. **A release's synthesis**: the demo's members (``bench/synth.py --holdout 0.2 --seeds 1``:
   786 mice, 79k SNPs, the public panel), synthesized ``--runs`` times per mode at
   ``--eps``; printed per run: the wall seconds of the association step (where the
   Gaussian, Laplace and exponential mechanisms are) and of the whole synthesis, and the
   GWAS recall / precision at 1e-8 against the members' own with the loci found. Secure
   mode also puts DP-SGD on the OS CSPRNG (Opacus-style), which the whole-synthesis time
   includes; ``--no-public`` drops the panel, so the genotype model itself trains on the
   members by DP-SGD (its parameters' noise drawn from ``os.urandom`` every step). The
   numpy mode's noise is fixed by each run's seed (``bench/synth.py`` sets
   ``DPGENOME_NOISE_SEED=seed``); secure noise cannot be fixed, so the fidelity columns say
   only that nothing broke, not which mode is better.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import replace

import numpy as np

from dpgenome.noise import GeneratorNoise, SecureNoise
from dpgenome.synthconfig import SynthConfig
from dpgenome.synthesize import synthesize
from synth import COVARS, PHENO, evaluate, fmt, prepare  # bench/synth.py


def per_draw_us(fn, draws: int) -> float:
    t0 = time.perf_counter()
    for _ in range(draws):
        fn()
    return 1e6 * (time.perf_counter() - t0) / draws


def samplers(n: int = 786) -> None:
    rng = np.random.default_rng(0)
    sources = {"numpy (--no-secure-mode)": GeneratorNoise(rng), "exact (secure)": SecureNoise(n)}
    vector = rng.normal(size=200)
    scores = rng.normal(size=4700)
    scores[rng.choice(4700, 40, replace=False)] = rng.uniform(6.0, 9.0, 40)
    print("\n## samplers: microseconds per draw")
    print("source | gaussian (per value, 200-vector) | laplace | exponential (4,700 candidates)")
    for name, src in sources.items():
        g = per_draw_us(lambda s=src: s.gaussian(vector, sd=3.0, sensitivity=1.0), 20) / 200
        lap = per_draw_us(lambda s=src: s.laplace(5.0, scale=2.0, sensitivity=1.0), 500)
        ex = per_draw_us(lambda s=src: s.exponential(scores, scale=0.5), 20)
        print(f"{name} | {g:.2f} | {lap:.1f} | {ex:.0f}")
    # the laws agree: the exponential mechanism's top choice, exact against Gumbel noisy max
    top = int(np.argmax(scores))
    exact = SecureNoise(n, rand=random.Random(1))
    gumbel = GeneratorNoise(np.random.default_rng(1))
    share = [
        np.mean([s.exponential(scores, scale=0.5) == top for _ in range(400)])
        for s in (exact, gumbel)
    ]
    w = np.exp((scores - scores.max()) / 0.5)
    print(
        f"top candidate chosen: exact {share[0]:.3f}, Gumbel {share[1]:.3f}, "
        f"law {w.max() / w.sum():.3f} (400 draws each)"
    )


def syntheses(eps: float, runs: int, public: bool = True) -> None:
    data = prepare(1, 1092, 1000 if public else 0, None, holdout=0.2)
    base = SynthConfig(pheno=PHENO, covariates=COVARS, epsilon=eps)
    panel = "with" if public else "without"
    print(
        f"\n## the demo's members ({data['members'].n_samples} mice), epsilon {fmt(eps)}, "
        f"{panel} the public panel"
    )
    print("mode | run | association s | synthesis s | recall | precision | loci | planted | eps")
    for secure in (False, True):
        for run in range(runs):
            cfg = replace(base, seed=1 + run, secure_mode=secure)
            t0 = time.perf_counter()
            res = synthesize(data["members"], cfg, data["public"])
            wall = time.perf_counter() - t0
            row = evaluate("", eps, 1, data, res.cohort, wall, res.ledger.epsilon())
            assoc = res.timings.get("association", math.nan)
            print(
                f"{'secure' if secure else 'numpy'} | {run + 1} | {assoc:.1f} | "
                f"{wall:.0f} | {fmt(row['recall'])} | {fmt(row['precision'])} | {row['loci']} | "
                f"{row['planted']} | {fmt(row['ledger_eps'])}",
                flush=True,
            )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--eps", type=float, default=8.0)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--samplers-only", action="store_true")
    ap.add_argument("--no-public", action="store_true", help="no public panel (DP-SGD genotypes)")
    args = ap.parse_args()
    samplers()
    if not args.samplers_only:
        syntheses(args.eps, args.runs, public=not args.no_public)


if __name__ == "__main__":
    main()
