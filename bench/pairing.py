"""Which pairing draw to keep: every draw's synthetic GWAS against the real one, and rules
that choose among the draws from synthetic data and released values only.

    python bench/pairing.py --seed 1 --eps 10,3 --noise-seeds 10

A synthesis draws the pairing of synthetic phenotype rows with genotype rows
``AssociationConfig.null_draws`` times and keeps the draw with the median genomic inflation
among those without a stray hit (``synthesize._pairing``). This records, for every draw of
``bench/synth.py``'s syntheses (the same cohort and noise seeds), its hits at 1e-8 against the
real members' GWAS and against the -log10 p the released targets explain
(``association.explained_log10_p``), then prints, per rule, the mean recall / precision of the
draws it keeps, how many runs keep recall >= 0.5, the kept lambda range and how many runs
find both planted loci. The named reference is the rule in force ("median lambda"); "best
F1" uses the real GWAS and is a ceiling no release can reach. docs/tuning-history.md, stop 25.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

import dpgenome.association as A
import dpgenome.synthesize as S
from dpgenome.synthconfig import SynthConfig
from dpgenome.synthesize import NOISE_SEED_ENV
from synth import COVARS, PHENO, prepare  # bench/synth.py: this script's directory

# the DP noise is drawn from fresh OS entropy unless fixed: a benchmark's draws are
# reproducible from its seeds (dpgenome.synthesize.NOISE_SEED_ENV; never for a release)
os.environ.setdefault(NOISE_SEED_ENV, "seed")

LINE = 8.0  # -log10 p of the 1e-8 line

Draw = dict[str, Any]


def _eligible(draws: list[Draw]) -> list[Draw]:
    return [d for d in draws if not d["stray"]] or draws


def median_lambda(draws: list[Draw]) -> Draw:
    pool = sorted(_eligible(draws), key=lambda d: d["lam"])
    return pool[(len(pool) - 1) // 2]


def least(key: Callable[[Draw], float]) -> Callable[[list[Draw]], Draw]:
    def rule(draws: list[Draw]) -> Draw:
        pool = _eligible(draws)
        best = min(key(d) for d in pool)
        return median_lambda([d for d in pool if key(d) == best])

    return rule


def middle_least_sq(draws: list[Draw]) -> Draw:
    pool = sorted(_eligible(draws), key=lambda d: d["lam"])
    pool = pool[1:-1] if len(pool) >= 3 else pool
    return min(pool, key=lambda d: d["sq"])


RULES: dict[str, Callable[[list[Draw]], Draw]] = {
    "median lambda (in force)": median_lambda,
    "min-sq": least(lambda d: d["sq"]),
    "min-sq, middle lambdas": middle_least_sq,
    "min-disagree": least(lambda d: d["disagree"]),
    "min-over": least(lambda d: d["over"]),
    "hits closest to explained": least(lambda d: abs(d["hits"] - d["explained_hits"])),
    "best F1 (ceiling)": lambda ds: max(ds, key=lambda d: 2 * d["tp"] / (d["hits"] + d["real"])),
}


def record_draws(data: dict[str, Any], eps: float, seed: int) -> list[Draw]:
    """Synthesise once, keeping every pairing draw's scan and the explained -log10 p."""
    seen: dict[str, Any] = {"scans": []}
    scan, explained, typical = S._pairing_scan, A.explained_log10_p, A.typical_draw

    def scan_hook(*a: Any, **k: Any) -> tuple[float, np.ndarray]:
        out = scan(*a, **k)
        seen["scans"].append(out)
        return out

    def explained_hook(*a: Any, **k: Any) -> np.ndarray:
        seen["explained"] = explained(*a, **k)
        return seen["explained"]

    def typical_hook(lambdas: list[float], stray: list[bool]) -> int:
        seen["stray"] = stray
        return typical(lambdas, stray)

    S._pairing_scan, A.explained_log10_p, A.typical_draw = scan_hook, explained_hook, typical_hook
    try:
        config = SynthConfig(pheno=PHENO, covariates=COVARS)
        S.synthesize(data["members"], replace(config, epsilon=eps, seed=seed), data["public"])
    finally:
        S._pairing_scan, A.explained_log10_p, A.typical_draw = scan, explained, typical
    real = data["real_lp"] >= LINE
    e = seen.get("explained", np.zeros_like(data["real_lp"]))
    out = []
    for k, (lam, lp) in enumerate(seen["scans"]):
        hit = lp >= LINE
        out.append(
            {
                "lam": lam,
                "stray": seen.get("stray", [False] * len(seen["scans"]))[k],
                "hits": int(hit.sum()),
                "tp": int((hit & real).sum()),
                "real": int(real.sum()),
                "explained_hits": int((e >= LINE).sum()),
                "disagree": int((hit != (e >= LINE)).sum()),
                "over": int((hit & (e < LINE)).sum()),
                "sq": float(np.sum((np.minimum(lp, 30) - np.minimum(e, 30))[e > 0] ** 2)),
                "planted": all(bool(hit[m].any()) for m in data["planted_masks"]),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=1, help="cohort seed (bench/synth.py)")
    ap.add_argument("--eps", default="10,3")
    ap.add_argument("--noise-seeds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = prepare(args.seed, 1092, 1000, None)
    p = data["real"].table["p"].to_numpy(dtype=float)
    data["real_lp"] = -np.log10(np.clip(p, 1e-300, 1.0))
    v = data["members"].variants
    chrom, pos = v["chr"].astype(str).to_numpy(), v["pos"].to_numpy()
    data["planted_masks"] = [
        (chrom == c) & (pos >= lo - 4_000_000) & (pos <= hi + 4_000_000)
        for c, lo, hi in data["planted"]
    ]
    seeds = [args.seed] + [1000 * args.seed + k for k in range(1, args.noise_seeds)]
    for eps in (math.inf if e.strip() == "inf" else float(e) for e in args.eps.split(",")):
        runs = [record_draws(data, eps, s) for s in seeds]
        print(f"\n## cohort {args.seed}, epsilon {eps}: {len(runs)} syntheses")
        print("rule | recall | precision | recall >= 0.5 | lambda | both planted")
        for name, rule in RULES.items():
            kept = [rule(r) for r in runs]
            recall = [d["tp"] / d["real"] for d in kept]
            precision = [d["tp"] / max(d["hits"], 1) for d in kept]
            lam = [d["lam"] for d in kept]
            print(
                f"{name} | {np.mean(recall):.3f} | {np.mean(precision):.3f} | "
                f"{sum(r >= 0.5 for r in recall)} of {len(kept)} | "
                f"{min(lam):.3f}-{max(lam):.3f} | {sum(d['planted'] for d in kept)} of {len(kept)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
