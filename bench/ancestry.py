"""Benchmark of ancestry across chromosomes (``SynthConfig.ancestry_pcs``, dpgenome.ancestry)
on a structured CFW-like cohort.

    python bench/ancestry.py                      # 2 sub-colonies, members 3:1, eps 8, K 0 / 4
    python bench/ancestry.py --eps 3 --noise-seeds 3 --pcs 0,2,4,8
    python bench/ancestry.py --colonies 1 --shares 1    # the default (unstructured) cohort

The simulator's ``colonies`` option splits the colony into sub-colonies ``--split``
generations ago (every chromosome's genealogy shares them, so a mouse's ancestry is one
across its genome); the members are in them by ``--shares``, the public panel (1,000 mice) by
equal shares. Each synthesis is run with ``ancestry_pcs`` 0 (the default: each chromosome
drawn on its own; the named reference, in the same run) and with K > 0, on the same members
and noise seeds. Printed per synthesis, beside the members' own figures:

* ``colony_1``: share of individuals on sub-colony 1's side of the midpoint between the
  sub-colonies' panel means on the panel's first principal axis (members: the simulation's
  labels, read the same way);
* ``admixed``: share within the middle half between the two means (an individual whose
  chromosomes come from both sub-colonies sits there);
* ``pc_var_oos``: the dossier's out-of-sample PCA variance ratio on PCs 1-4
  (``dpgenome.fidelity``: about 1 when the synthetic cohort has the members' structure);
* ``pheno_pc1``: the analysis phenotype's correlation with the panel's first axis (a
  stratified trait, ``--colony-effects``, moves it away from 0; the members' in the header);
* the GWAS and genotype figures of ``bench/synth.py`` (recall / precision at 1e-8 against
  the members' GWAS, spurious loci, lambda_GC, allele-frequency correlation, LD-decay error).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import torch

from dpgenome.ancestry import fit_axes
from dpgenome.cli.simulate import parse_numbers
from dpgenome.errors import ConfigError
from dpgenome.simulate import colony_labels
from dpgenome.synthconfig import SynthConfig
from dpgenome.synthesize import synthesize
from synth import COVARS, PHENO, add_set_option, evaluate, fmt, peak_gb, prepare, with_overrides

COLUMNS = (
    "pcs",
    "eps",
    "seed",
    "time_s",
    "peak_gb",
    "ledger_eps",
    "colony_1",
    "admixed",
    "pc_var_oos",
    "pheno_pc1",
    "recall",
    "precision",
    "loci",
    "spurious",
    "planted",
    "lambda_syn",
    "lambda_real",
    "af_corr",
    "ld_err",
)


def placement(
    first: np.ndarray, centre: tuple[float, float] | None
) -> tuple[float | None, float | None]:
    """(share on sub-colony 1's side, share in the middle half) of scores ``first`` on the
    panel's first axis (None, None for one colony)."""
    if centre is None:
        return None, None
    t = (first - centre[0]) / (centre[1] - centre[0])
    return float(np.mean(t > 0.5)), float(np.mean((t > 0.25) & (t < 0.75)))


def phenotype_pc1(first: np.ndarray, cohort: Any) -> float:
    """Correlation of the analysis phenotype with scores ``first`` on the panel's first axis
    (a stratified trait: away from 0), over the individuals with the phenotype."""
    y = cohort.phenotypes[PHENO].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = ~np.isnan(y)
    return float(np.corrcoef(y[ok], first[ok])[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--eps", default="8")
    ap.add_argument(
        "--pcs", default="0,4", help="ancestry_pcs values (0 = the reference; auto as shipped)"
    )
    ap.add_argument("--n", type=int, default=1092)
    ap.add_argument("--public", type=int, default=1000)
    ap.add_argument("--colonies", type=int, default=2)
    ap.add_argument("--shares", default="0.75,0.25")
    ap.add_argument("--split", type=int, default=30, help="generations since the split")
    ap.add_argument(
        "--colony-effects",
        default="",
        help="a stratified abBMD: each sub-colony's liability shift in sds, e.g. 0,0.5",
    )
    ap.add_argument("--chromosomes", default="", help="e.g. 5,11 (default: all 19)")
    ap.add_argument("--noise-seeds", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    add_set_option(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shares = tuple(float(v) for v in args.shares.split(","))
    try:
        effects = parse_numbers(args.colony_effects or None, "--colony-effects", "0,0.6")
    except ConfigError as err:
        sys.exit(err.message)
    print(
        f"# bench/ancestry.py: {args.colonies} sub-colonies split {args.split} generations ago, "
        f"members {shares}, panel {args.public} (equal shares), liability shifts {effects}; "
        f"reference: ancestry_pcs 0; overrides {args.set or 'none'}"
    )
    for seed in (int(s) for s in args.seeds.split(",")):
        data = prepare(
            seed,
            args.n,
            args.public,
            tuple(c for c in args.chromosomes.split(",") if c) or None,
            colonies=args.colonies,
            colony_shares=shares,
            colony_split_generations=args.split,
            colony_effects=effects,
        )
        members, public = data["members"], data["public"]
        cohort_colony, panel_colony = colony_labels(data["sim_config"])
        label = dict(zip(data["all_ids"].astype(str), cohort_colony, strict=True))
        member_colony = np.array([label[i] for i in members.sample_ids.astype(str)])
        axes = fit_axes(public.dosages, public.variants, 4)
        panel_first = axes.scores(public.dosages)[0][:, 0]
        centre = (
            (panel_first[panel_colony == 0].mean(), panel_first[panel_colony == 1].mean())
            if args.colonies > 1
            else None
        )
        member_first = axes.scores(members.dosages)[0][:, 0]
        share, middle = placement(member_first, centre)
        print(
            f"\n# seed {seed}: {members.n_samples} members x {members.n_variants} SNPs; "
            f"simulate {data['t_sim']:.0f} s; members in sub-colony 1 (labels) "
            f"{member_colony.mean():.3f}, read off the first axis {fmt(share)}, admixed "
            f"{fmt(middle)}; panel's first axis explains {axes.explained[0]:.4f}; phenotype's "
            f"correlation with it {phenotype_pc1(member_first, members):.3f}"
        )
        print(" | ".join(COLUMNS))
        for eps in (float(e) for e in args.eps.split(",")):
            for pcs in (k if k == "auto" else int(k) for k in args.pcs.split(",")):
                for s in [seed] + [1000 * seed + j for j in range(1, args.noise_seeds)]:
                    cfg = with_overrides(
                        SynthConfig(
                            pheno=PHENO, covariates=COVARS, epsilon=eps, seed=s, ancestry_pcs=pcs
                        ),
                        args.set,
                    )
                    t0 = time.perf_counter()
                    res = synthesize(members, cfg, public)
                    seconds = time.perf_counter() - t0
                    row = evaluate(
                        f"K={pcs}", eps, s, data, res.cohort, seconds, res.ledger.epsilon()
                    )
                    row |= {"pcs": pcs, "peak_gb": peak_gb()}
                    first = axes.scores(res.cohort.dosages)[0][:, 0]
                    row["colony_1"], row["admixed"] = placement(first, centre)
                    row["pheno_pc1"] = phenotype_pc1(first, res.cohort)
                    print(" | ".join(fmt(row.get(c)) for c in COLUMNS), flush=True)
        del data


if __name__ == "__main__":
    main()
