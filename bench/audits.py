"""Benchmark of the audit suite on a CFW-size cohort (target: < 3 min wall, < 6 GB, 2 cores).

    python bench/audits.py [--source simulate|toy] [--n 1092] [--shadow 8] [--canaries 200]

The real cohort and a synthetic cohort of the same size are fresh draws from one generator
(``dpgenome.simulate`` with 2n mice, split in two; or the toy generator scaled to ~80k SNPs):
the synthetic cohort is what a perfect, non-memorising synthesizer would release, so every
attack's AUC on it should sit near 0.5. The canary audit and the shadow attack retrain a
stand-in synthesizer (independent allele frequencies + independently permuted phenotype
columns), trained on the members: its allele frequencies are theirs, so the shadow attack
may tell members apart (it did, AUC 1.0 on 4 targets, in a review's toy run);
the shadow attack is timed separately, as its cost is 2 x K x games trainings of whatever
synthesizer the release uses.

Reference measured in the same run: plink2 ``--make-king-table`` on the members (all SNPs,
same thread count), next to the suite's own KING-robust step.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dpgenome.audit import AuditConfig, run_audits
from dpgenome.cohort import Cohort, split_members


def rss_gb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e6
    return float("nan")


def _rate(value: float | None) -> str:
    """A duplicate-window rate, or "n/a" when no chromosome has a whole window."""
    return "n/a" if value is None else f"{value:.4f}"


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def make_cohorts(source: str, n: int, seed: int) -> tuple[Cohort, Cohort, str]:
    if source == "simulate":
        from dpgenome.simulate import SimConfig, simulate

        full = simulate(SimConfig(n=2 * n, seed=seed)).cohort
        label = f"dpgenome.simulate(n={2 * n}, seed={seed}) split in two"
    else:
        from dpgenome.testing import ToyConfig, toy_cohort

        full, _ = toy_cohort(seed, ToyConfig(n=2 * n, n_chrom=19, snps_per_chrom=4192))
        label = f"toy_cohort(n={2 * n}, 19 x 4192 SNPs, seed={seed}) split in two"
    real = full.take_samples(np.arange(n))
    synth = full.take_samples(np.arange(n, 2 * n))
    synth.samples["id"] = [f"syn{i:06d}" for i in range(n)]
    return real, synth, label


def marginal_synthesizer(cohort: Cohort, seed: int) -> Cohort:
    """Stand-in synthesizer: independent Binomial(2, p_j) per SNP, phenotype columns
    permuted independently (fresh ids)."""
    rng = np.random.default_rng(seed)
    p = np.nan_to_num(cohort.alt_frequency(), nan=0.5)
    dos = rng.binomial(2, p, size=(cohort.n_samples, cohort.n_variants)).astype(np.float32)
    pheno = pd.DataFrame(
        {
            c: cohort.phenotypes[c].to_numpy()[rng.permutation(cohort.n_samples)]
            for c in cohort.phenotypes
        }
    )
    samples = pd.DataFrame({"id": [f"shadow{i:06d}" for i in range(cohort.n_samples)]})
    return Cohort(
        dos, cohort.variants.copy(), samples, pheno, dict(cohort.pheno_types), "marginals"
    )


def plink_king_seconds(cohort: Cohort, threads: int) -> float | None:
    plink2 = shutil.which("plink2")
    if plink2 is None:
        return None
    from bed_reader import to_bed

    with tempfile.TemporaryDirectory() as tmp:
        ids = cohort.sample_ids.astype(str)
        v = cohort.variants
        to_bed(
            Path(tmp) / "m.bed",
            np.rint(cohort.dosages),
            properties={
                "fid": ids,
                "iid": ids,
                "sid": v["id"].to_numpy().astype(str),
                "chromosome": v["chr"].to_numpy().astype(str),
                "bp_position": v["pos"].to_numpy(),
                "allele_1": v["alt"].to_numpy().astype(str),
                "allele_2": v["ref"].to_numpy().astype(str),
            },
        )
        t = time.perf_counter()
        subprocess.run(
            [
                plink2,
                "--bfile",
                f"{tmp}/m",
                "--make-king-table",
                "--threads",
                str(threads),
                "--out",
                f"{tmp}/k",
            ],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=["simulate", "toy"], default="simulate")
    ap.add_argument("--n", type=int, default=1092)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--shadow", type=int, default=8, help="shadow targets (0 = skip)")
    ap.add_argument("--canaries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--reference-draws",
        type=int,
        default=20,
        help="holdout resamples widening the reference attacks' AUC CIs (0 = not widened)",
    )
    args = ap.parse_args()
    if args.shadow and args.shadow < 4:  # the audit's own minimums, checked before any work
        ap.error(f"--shadow must be 0 or at least 4 (two folds), got {args.shadow}")
    if 0 < args.reference_draws < 5:
        ap.error(f"--reference-draws must be 0 or at least 5, got {args.reference_draws}")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    t0 = time.perf_counter()
    real, synth, label = make_cohorts(args.source, args.n, args.seed)
    t_make = time.perf_counter() - t0
    split = split_members(real, holdout_fraction=0.2, seed=args.seed)
    print(
        f"cohorts: {label}: real {real.n_samples} x {real.n_variants}, synthetic "
        f"{synth.n_samples} x {synth.n_variants} ({t_make:.1f} s to make)"
    )
    print(
        f"members {len(split.members)}, holdout {len(split.holdout)}; RSS before audit "
        f"{rss_gb():.2f} GB (peak so far {peak_gb():.2f} GB)"
    )

    cfg = AuditConfig(
        seed=args.seed,
        pheno="abBMD",
        covariates=("SW16",),
        canaries=args.canaries,
        claimed_epsilon=None,
        reference_draws=args.reference_draws,
    )
    t = time.perf_counter()
    report = run_audits(real, split, synth, cfg, train_fn=marginal_synthesizer)
    wall = time.perf_counter() - t
    d = report.to_dict()
    print(
        f"\nfull suite without shadow: {wall:.1f} s wall (target < 180 s), "
        f"peak RSS {peak_gb():.2f} GB (target < 6 GB)"
    )
    for stage, sec in d["timings_s"].items():
        print(f"  {stage:20s} {sec:7.2f} s")
    for name, a in d["attacks"].items():
        if a.get("auc") is not None:
            print(
                f"  {name:17s} AUC {a['auc']:.3f} [{a['auc_ci'][0]:.3f}, {a['auc_ci'][1]:.3f}] "
                f"TPR@1% {a['tpr_at_fpr_0.01']:.3f} TPR@0.1% {a['tpr_at_fpr_0.001']:.3f}"
                + (f"; reference sd {a['auc_reference_sd']:.4f}" if "auc_reference_sd" in a else "")
            )
        else:
            print(f"  {name:17s} {a['status']}")
    nn = d["nearest_neighbour"]
    print(
        f"  share closer to members {nn['share_closer_to_members']:.3f} "
        f"{nn['share_closer_to_members_ci']}; NNDR median {nn['nndr_median']:.3f} "
        f"(holdout {nn['nndr_median_holdout']:.3f})"
    )
    print(
        f"  duplicates: genotypes {nn['exact_duplicate_genotypes']} exact / "
        f"{nn['near_duplicate_genotypes']} near (holdout {nn['exact_duplicate_genotypes_holdout']}"
        f" / {nn['near_duplicate_genotypes_holdout']}); {nn['window_snps']}-SNP windows "
        f"{_rate(nn['duplicate_genotype_windows_rate'])} (holdout "
        f"{_rate(nn['duplicate_genotype_windows_rate_holdout'])}); phenotype rows "
        f"{nn['exact_duplicate_phenotype_rows']}"
    )
    k = d["kinship"]
    print(
        f"  kinship: first-degree pair rate synthetic {k['synthetic_first_degree_rate']:.3g} vs "
        f"holdout {k['holdout_first_degree_rate']:.3g}, excess {k['excess_first_degree_rate']:.3g} "
        f"{k['excess_first_degree_rate_ci']}; "
        f"duplicate pairs {k['synthetic_member_duplicate_pairs']}; "
        f"member-member first-degree pairs {k['member_member_first_degree_pairs']}"
    )
    for pheno, a in d["attribute_inference"].items():
        print(
            f"  attribute {pheno}: attack {a['attack_accuracy']:.3f} baseline "
            f"{a['baseline_accuracy']:.3f} control {a['control_accuracy']:.3f} risk "
            f"{a['risk']:.3f} {a['risk_ci']}"
        )
    c = d["canary"]
    if "epsilon_lower_bound" in c:
        print(
            f"  canary: eps lower bound {c['epsilon_lower_bound']:.3f} (m={c['m']}, "
            f"{c['correct']}/{c['guesses']} correct; stand-in synthesizer)"
        )

    ref = plink_king_seconds(real.take_samples(split.members), args.threads)
    if ref is not None:
        print(
            f"\nreference: plink2 --make-king-table, members x members, all "
            f"{real.n_variants} SNPs, {args.threads} threads: {ref:.1f} s; suite kinship "
            f"step (synthetic+holdout+members vs members, {k['n_snps']} SNPs): "
            f"{d['timings_s']['kinship']:.1f} s"
        )

    if args.shadow:
        scfg = AuditConfig(
            seed=args.seed,
            pheno="abBMD",
            covariates=("SW16",),
            shadow_targets=args.shadow,
            shadow_games=2,
            shadow_size=200,
        )
        t = time.perf_counter()
        sd = run_audits(real, split, synth, scfg, train_fn=marginal_synthesizer).to_dict()
        swall = time.perf_counter() - t
        s = sd["attacks"]["shadow"]
        print(
            f"\nshadow attack (reported separately): {args.shadow} targets x 2 games x 2 sides "
            f"= {4 * args.shadow} trainings of the stand-in synthesizer: "
            f"{sd['timings_s']['shadow']:.1f} s ({swall:.1f} s with the rest of the suite); "
            f"AUC {s['auc']:.3f} {s['auc_ci']}"
        )
    print(f"\npeak RSS of the whole run {peak_gb():.2f} GB")


if __name__ == "__main__":
    main()
