"""A continuous analysis phenotype's covariate slope in the synthetic rows: the
``covariate-slopes`` release against the DP phenotype model alone (the named reference,
run in the same process on the same members and seeds).

    python bench/slopes.py                       # BMD ~ SW16, cohort seeds 1 and 2, eps 10 and 3
    python bench/slopes.py --seeds 1 --eps 3 --noise-seeds 5

The bench's own analysis phenotype, abBMD, is 0/1 (its rows are drawn whole to the released
prevalence, so it has no such release); BMD is the continuous measurement it was derived
from. At 1,092 mice the simulated cohort keeps the public CFW table's phenotype rows (abBMD
aside), so BMD's relation to SW16 is the real table's and the same for every cohort seed;
the seeds change the genotypes, the public panel and the synthesis. For each epsilon and
synthesis seed it prints the synthetic BMD's slope on SW16 (in BMD sd per unit of SW16) and
correlation with it, with the release and without (``association.covariate_slopes`` off:
the ledger then lacks the mechanism), beside the members' own, and the slope's noise sd
that the release states (``details["covariate_slopes"]["noise_sd"]``).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from dpgenome.cohort import analysis_subset, qc
from dpgenome.simulate import SimConfig, simulate
from dpgenome.synthesize import SynthConfig, synthesize

PHENO, COVAR = "BMD", "SW16"


def slope_and_r(table: pd.DataFrame) -> tuple[float, float]:
    """``(slope in phenotype sd per covariate unit, correlation)``."""
    w, y = table[COVAR].to_numpy(float), table[PHENO].to_numpy(float)
    return float(np.polyfit(w, y, 1)[0] / y.std()), float(np.corrcoef(w, y)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--eps", default="10,3")
    ap.add_argument("--noise-seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    epsilons = [float(e) for e in args.eps.split(",")]
    errors: dict[tuple[float, bool], list[float]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        sim = simulate(SimConfig(n=1092, seed=seed, n_public=1000).validate())
        cohort, report = qc(sim.cohort)
        members = analysis_subset(cohort, PHENO, [COVAR], report)
        keep = members.variants["id"].astype(str).to_numpy()
        index = {v: i for i, v in enumerate(sim.public.variants["id"].astype(str))}
        public = sim.public.take_variants(np.array([index[v] for v in keep]))
        real_slope, real_r = slope_and_r(members.phenotypes)
        print(
            f"\n# cohort seed {seed}: {members.n_samples} members; members' {PHENO} ~ {COVAR}: "
            f"slope {real_slope:.3f} sd, r {real_r:.3f}"
        )
        print("eps | synthesis seed | released slope / r (stated noise sd) | model alone slope / r")
        for eps in epsilons:
            for k in range(args.noise_seeds):
                cells = []
                for on in (True, False):
                    cfg = SynthConfig(
                        pheno=PHENO, covariates=(COVAR,), epsilon=eps, seed=1000 * seed + k
                    )
                    cfg = replace(cfg, association=replace(cfg.association, covariate_slopes=on))
                    res = synthesize(members, cfg, public)
                    s, r = slope_and_r(res.cohort.phenotypes)
                    errors.setdefault((eps, on), []).append(abs(r - real_r))
                    info = res.details.get("covariate_slopes")
                    stated = (
                        f" ({info['noise_sd'][0] / members.phenotypes[PHENO].std():.3f})"
                        if info
                        else ""
                    )
                    cells.append(f"{s:.3f} / {r:.3f}{stated}")
                print(f"{eps:g} | {1000 * seed + k} | " + " | ".join(cells), flush=True)
    print("\n## mean |r error| against the members': released | model alone")
    for eps in epsilons:
        print(
            f"eps {eps:g}: {np.mean(errors[(eps, True)]):.3f} | "
            f"{np.mean(errors[(eps, False)]):.3f}"
            + ("" if math.isfinite(eps) else " (no formal privacy)")
        )


if __name__ == "__main__":
    main()
