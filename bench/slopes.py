"""An analysis phenotype's covariate slope in the synthetic rows: the ``covariate-slopes``
release against the DP phenotype model alone (the named reference, run in the same process
on the same members and seeds).

    python bench/slopes.py                       # BMD ~ SW16, cohort seeds 1 and 2, eps 10 and 3
    python bench/slopes.py --pheno abBMD         # the 0/1 phenotype: rows drawn to the slope
    python bench/slopes.py --seeds 1 --eps 3 --noise-seeds 5
    python bench/slopes.py --pheno abBMD --set phenotype_oversample=8   # any SynthConfig field

BMD is continuous: the released slope is added to its final rows. The bench's own analysis
phenotype, abBMD, is 0/1 (simulated from two QTLs and SW16, itself 0/1): its rows are
drawn whole to the released prevalence and slope (``dpgenome.draw``). At 1,092 mice the
simulated cohort keeps the public CFW table's phenotype rows (abBMD aside), so BMD's
relation to SW16 is the real table's and the same for every cohort seed; the seeds change
the genotypes, abBMD, the public panel and the synthesis. For each epsilon and synthesis
seed it prints the synthetic phenotype's slope on SW16 (in its sd per unit of SW16) and
correlation with it, with the release and without (``association.covariate_slopes`` off:
the ledger then lacks the mechanism), beside the members' own, and the released slope with
the noise sd that the release states (``details["covariate_slopes"]``).
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from dpgenome.cohort import align_panel, analysis_subset, qc
from dpgenome.simulate import SimConfig, simulate
from dpgenome.synthconfig import SynthConfig
from dpgenome.synthesize import NOISE_SEED_ENV, synthesize
from synth import add_set_option, with_overrides  # bench/synth.py: this script's directory

# the DP noise is drawn from fresh OS entropy unless fixed: a benchmark's draws are
# reproducible from its seeds (dpgenome.synthesize.NOISE_SEED_ENV; never for a release)
os.environ.setdefault(NOISE_SEED_ENV, "seed")

COVAR = "SW16"


def slope_and_r(table: pd.DataFrame, pheno: str) -> tuple[float, float]:
    """``(slope in phenotype sd per covariate unit, correlation)``."""
    w, y = table[COVAR].to_numpy(float), table[pheno].to_numpy(float)
    return float(np.polyfit(w, y, 1)[0] / y.std()), float(np.corrcoef(w, y)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pheno", default="BMD", choices=["BMD", "abBMD"])
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--eps", default="10,3")
    ap.add_argument("--noise-seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    add_set_option(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    epsilons = [float(e) for e in args.eps.split(",")]
    pheno = args.pheno
    errors: dict[tuple[float, bool], list[float]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        sim = simulate(SimConfig(n=1092, seed=seed, n_public=1000).validate())
        # a DP release's QC: the SNPs kept are chosen by the public panel's frequencies
        cohort, report = qc(sim.cohort, dp=True, public=sim.public)
        members = analysis_subset(cohort, pheno, [COVAR], report)
        public = align_panel(sim.public, members.variants)
        real_slope, real_r = slope_and_r(members.phenotypes, pheno)
        print(
            f"\n# cohort seed {seed}: {members.n_samples} members; members' {pheno} ~ {COVAR}: "
            f"slope {real_slope:.4f} sd, r {real_r:.3f}"
        )
        print(
            "eps | synthesis seed | with the release: slope / r (released slope, its noise sd)"
            " | model alone: slope / r"
        )
        for eps in epsilons:
            for k in range(args.noise_seeds):
                cells = []
                for on in (True, False):
                    cfg = with_overrides(
                        SynthConfig(
                            pheno=pheno, covariates=(COVAR,), epsilon=eps, seed=1000 * seed + k
                        ),
                        args.set,
                    )
                    cfg = replace(cfg, association=replace(cfg.association, covariate_slopes=on))
                    res = synthesize(members, cfg, public)
                    s, r = slope_and_r(res.cohort.phenotypes, pheno)
                    errors.setdefault((eps, on), []).append(abs(r - real_r))
                    info = res.details.get("covariate_slopes")
                    sd = float(members.phenotypes[pheno].std())
                    stated = (
                        f" (released {info['released'][0] / sd:.4f}, "
                        f"noise sd {info['noise_sd'][0] / sd:.4f})"
                        if info
                        else ""
                    )
                    prev = res.details.get("phenotype_prevalence")
                    if prev is not None:  # the drawn rows' source: the model's prevalence
                        stated += f" [model prevalence {prev['synthetic_model']:.3f}]"
                    cells.append(f"{s:.4f} / {r:.3f}{stated}")
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
