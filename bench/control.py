"""The distance rules over random member/holdout splits: how often they block a release that
copies no member, and how often they catch one that does. Three ways of judging, evaluated by
the policy code itself at consortium.yaml's bounds: the DCR share on hub-centred distances
(``centred``, as shipped since stop 39), the raw DCR share (``raw``, as shipped before: the
named reference) and the raw share with ``public_panel_control: true`` (``control``: the
genotypes by their excess over the public panel, the phenotype columns alone against the
holdout). Each judges the DCR attack's AUC too.

    dpgenome demo --out DIR                  # once: the cohort, the panel and a release
    python bench/control.py DIR [--splits 200] [--copy 0.05 0.1 0.2] [--seed 7] [--ways raw centred]
    python bench/control.py DIR --holdout 0.2 0.3 0.4 0.5 --ways raw --copy 0.1   # holdout size

The synthetic cohort is the demo release's (its bundle's, or its work directory's when the
policy blocked it). Its genotype rows hold no member data (samples of
the panel-pretrained model, panel genotypes in the released regions), so over other splits of
the same analysis mice it stands for a release that copies nobody: every block of the
``none`` row is a false block. (Its phenotype rows are DP samples fitted on the demo split's
members, at the demo's epsilon.) The ``copy F`` rows replace a share F of the synthetic
records with exact copies of random members of each split (genotypes and the phenotype
columns of the distances): a leak both ways should catch. Per split, as the audit computes
them: the DCR attack's AUC and the DCR share on genotypes + phenotype columns (raw), the
public-panel control on genotypes (:func:`dpgenome.audit.control.public_control`), and both
statistics on the phenotype columns alone. Each row prints the share of splits that block on
``membership.dcr.auc``, on ``nearest_neighbour.share_closer_to_members`` and on either, for
each way, and the median of the figures judged.

``--holdout F ...`` repeats the whole table for each holdout fraction of the splits (the
release's ``holdout_fraction``; 0.2 is the demo's and the named reference), with the sd of
the raw share over the splits beside the audit's own bootstrap standard error. The share's
spread under no leak is about 0.5 / sqrt(n_eff), n_eff the effective number of distinct real
mice nearest to a synthetic record (1 / sum p^2 of their shares, printed): each falls among
the members or the holdout by the split's chance, so a larger holdout narrows the share's CI
only while the members' subsampling dominates. ``--ways raw`` skips the public-panel control
(about half the time per split).

``--few F ...`` adds arms where a share F of the records are copies of only F x n / 10 members,
ten records each (a synthesizer collapsing onto a few members). ``--distinct`` adds, per arm,
:func:`dpgenome.audit.neighbours.distinct_nearest_test` on the same distances: the share of
the distinct real mice nearest to a synthetic record that are members, its excess over the
members' share of the real mice (sd over splits beside the hypergeometric null sd) and how
often its exact p-value is below 0.05. No policy rule reads it.

    python bench/control.py DIR --splits 60 --ways raw --copy 0.05 0.1 --few 0.1 --distinct
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dpgenome.audit import features as ft
from dpgenome.audit import neighbours as nb
from dpgenome.audit.config import AuditConfig
from dpgenome.audit.membership import dcr_scores
from dpgenome.audit.scoring import score_attack
from dpgenome.audit.suite import _phenotypes_only, _public_control
from dpgenome.cohort import Cohort, analysis_subset, split_members
from dpgenome.findings import EvaluationContext, Status
from dpgenome.io import read_cohort
from dpgenome.paths import shipped_policy
from dpgenome.policy import evaluate, load_policy

AUC_RULE = "membership.dcr.auc"
SHARE_RULES = {
    "raw": "nearest_neighbour.share_closer_to_members",
    "control": "nearest_neighbour.share_closer_to_members",
    "centred": "nearest_neighbour.centred_share",
}


def policies() -> dict[str, Any]:
    """consortium.yaml's bounds judged three ways: the DCR share on hub-centred distances (as
    shipped since stop 39), the raw DCR share (as shipped before: the named reference), and
    the raw share with ``public_panel_control`` on."""
    shipped = load_policy(shipped_policy("consortium"))
    assert not shipped.public_panel_control, "consortium.yaml now sets public_panel_control"
    bound = shipped.max_centred_share_ci_upper or shipped.max_share_closer_to_members_ci_upper
    raw = replace(
        shipped, max_share_closer_to_members_ci_upper=bound, max_centred_share_ci_upper=None
    )
    centred = replace(
        shipped, max_share_closer_to_members_ci_upper=None, max_centred_share_ci_upper=bound
    )
    return {"raw": raw, "centred": centred, "control": replace(raw, public_panel_control=True)}


def audit_doc(
    data: tuple[Cohort, Cohort, Cohort, ft.MatchedVariants, np.ndarray, np.ndarray],
    d_geno: np.ndarray,
    d_pheno: np.ndarray,
    columns: list[str],
    members: np.ndarray,
    holdout: np.ndarray,
    config: AuditConfig,
    rng: np.random.Generator,
    control: bool = True,
) -> dict[str, Any]:
    """The ``audit`` entries the two distance rules read, computed as the suite does
    (``data``: real, synthetic and panel cohorts, the distance SNPs, their fill values and
    the real side's codes)."""
    distance = ft.combine(d_geno, d_pheno, ft.block_scales(d_geno, d_pheno, holdout))
    dcr = dcr_scores(distance)
    attack = score_attack(
        dcr[members], dcr[holdout], method="dcr", n_bootstrap=config.n_bootstrap, rng=rng
    ).to_dict()
    share = nb.share_closer_to_members(
        distance, members, holdout, rng, config.confidence, n_bootstrap=config.n_bootstrap
    )
    share |= nb.distinct_nearest_test(distance, members, holdout)  # as the suite does
    share["centred"] = nb.share_closer_to_members(
        distance,
        members,
        holdout,
        rng,
        config.confidence,
        n_bootstrap=config.n_bootstrap,
        centred=True,
    )
    share["phenotypes_only"] = _phenotypes_only(d_pheno, columns, members, holdout, config, rng)
    doc = {"attacks": {"dcr": attack}, "nearest_neighbour": share}
    if control:
        doc["public_control"] = _public_control(*data, d_geno, members, holdout, config, rng)
    return doc


def demo_synthetic(demo: Path) -> Path:
    """The demo release's synthetic cohort: in its bundle, or in its work directory when the
    policy blocked the export."""
    exported = demo / "release" / "synthetic"
    if exported.is_dir():
        return exported
    found = sorted((demo / "work").glob("*/synthetic"))
    if len(found) != 1:
        raise SystemExit(f"{demo}: no release/synthetic and not one work/*/synthetic")
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("demo", type=Path, help="a `dpgenome demo --out` directory")
    ap.add_argument("--splits", type=int, default=200)
    ap.add_argument("--copy", type=float, nargs="*", default=[0.05, 0.1, 0.2])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--holdout", type=float, nargs="+", default=[0.2])
    ap.add_argument(
        "--ways", nargs="+", choices=tuple(SHARE_RULES), default=["raw", "centred", "control"]
    )
    ap.add_argument("--few", type=float, nargs="*", default=[])
    ap.add_argument("--distinct", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()

    config = AuditConfig(pheno="abBMD", covariates=("SW16",), n_bootstrap=args.bootstrap)
    real = analysis_subset(read_cohort(args.demo / "cohort"), config.pheno, config.covariates)
    synthetic = read_cohort(demo_synthetic(args.demo))
    public = read_cohort(args.demo / "public")
    rng = np.random.default_rng(args.seed)
    matched = ft.match_variants(real, synthetic)
    sub = ft.snp_subset(matched, config.max_snps, rng)
    fill = ft.fill_values(real.dosages, sub.real)
    real_code = ft.threshold_code(ft.hard_calls(real.dosages, sub.real, fill))
    syn_code = ft.threshold_code(ft.hard_calls(synthetic.dosages, sub.synthetic, fill))
    d_geno = ft.genotype_distance(real_code, syn_code)
    data = (real, synthetic, public, sub, fill, real_code)
    d_real = ft.genotype_distance(real_code, real_code)  # a copied member's genotype columns
    print(
        f"{real.n_samples} analysis mice, {synthetic.n_samples} synthetic records, "
        f"{public.n_samples} panel individuals, {sub.n} SNPs; {args.splits} splits per "
        f"holdout fraction ({', '.join(f'{f:g}' for f in args.holdout)}; each mouse's side "
        f"its own draw, as a release's); distances in {time.perf_counter() - t0:.0f} s"
    )

    nearest = np.bincount(d_geno.argmin(axis=0), minlength=real.n_samples) / synthetic.n_samples
    n_eff = 1.0 / float((nearest**2).sum())
    print(
        f"nearest real mouse (genotypes) of each synthetic record: {np.count_nonzero(nearest)} "
        f"distinct, n_eff {n_eff:.0f}: a share sd of about 0.5 / sqrt(n_eff) = "
        f"{0.5 / np.sqrt(n_eff):.3f} under no leak"
    )
    judged = {w: p for w, p in policies().items() if w in args.ways}
    arms = {"none": 0.0} | {f"copy {f:g}": f for f in args.copy}
    arms |= {f"few {f:g}": f for f in args.few}
    rows = []
    for fraction in args.holdout:
        rows += holdout_rows(fraction, arms, judged, data, d_geno, d_real, config, args, rng)
        print(f"  holdout {fraction:g} done, {time.perf_counter() - t0:.0f} s", flush=True)
    print(pd.DataFrame(rows).to_string(index=False))
    print(
        "\nraw / centred: the CI upper bounds of the AUC and of the raw / centred share (bound "
        "0.6); public_panel_control: "
        "the genotypes' excess over the panel (bound 0.1; the median printed is the excess's) "
        f"and the phenotype columns alone (bound 0.6). {time.perf_counter() - t0:.0f} s."
    )


def holdout_rows(
    fraction: float,
    arms: dict[str, float],
    judged: dict[str, Any],
    data: tuple[Cohort, Cohort, Cohort, ft.MatchedVariants, np.ndarray, np.ndarray],
    d_geno: np.ndarray,
    d_real: np.ndarray,
    config: AuditConfig,
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> list[dict[str, str]]:
    """The table's rows for one holdout fraction: ``args.splits`` seeded splits, each arm
    judged each way."""
    real, synthetic = data[0], data[1]
    columns = [config.pheno, *config.covariates]
    n_syn = synthetic.n_samples
    blocks = {(arm, way): np.zeros((args.splits, 2), bool) for arm in arms for way in judged}
    figures: dict[tuple[str, str], list[float]] = {}
    shares: dict[tuple[str, str], list[tuple[float, float]]] = {}
    distincts: dict[str, list[tuple[float, float, float]]] = {arm: [] for arm in arms}
    n_holdout = 0
    for s in range(args.splits):
        # as a release draws it: each individual's side its own (stratified until stop 41)
        split = split_members(real, holdout_fraction=fraction, seed=10_000 + s)
        members, holdout = np.asarray(split.members), np.asarray(split.holdout)
        n_holdout = len(holdout)
        reference = real.take_samples(holdout)
        real_ph, syn_ph = ft.code_phenotypes([real, synthetic], columns, reference)
        d_pheno = ft.pheno_distance(real_ph, syn_ph)
        d_pheno_real = ft.pheno_distance(real_ph, real_ph)
        for arm, copied_share in arms.items():
            dg, dp = d_geno, d_pheno
            if copied_share > 0:
                k = round(copied_share * n_syn)
                cols = rng.choice(n_syn, size=k, replace=False)
                few = arm.startswith("few")  # k records from k // 10 members, 10 each
                copied = rng.choice(members, size=max(k // 10, 1) if few else k, replace=False)
                copied = np.resize(copied, k)
                dg, dp = d_geno.copy(), d_pheno.copy()
                dg[:, cols] = d_real[:, copied]
                dp[:, cols] = d_pheno_real[:, copied]
            audit = audit_doc(
                data, dg, dp, columns, members, holdout, config, rng, control="control" in judged
            )
            nn = audit["nearest_neighbour"]
            distincts[arm].append(
                (
                    nn["distinct_share"] - nn["distinct_share_null"],
                    nn["distinct_share_null_sd"],
                    nn["distinct_share_p_value"],
                )
            )
            z2 = 2 * stats.norm.ppf(0.5 + config.confidence / 2)
            for kind, share in (("raw", nn), ("centred", nn["centred"])):
                lo, hi = share["share_closer_to_members_ci"]
                shares.setdefault((arm, kind), []).append(
                    (share["share_closer_to_members"], (hi - lo) / z2)
                )
            for way, policy in judged.items():
                result = evaluate({"audit": audit}, policy, context=EvaluationContext())
                found = {f.rule: f for f in result.findings}
                rules = (AUC_RULE, SHARE_RULES[way])
                blocks[arm, way][s] = [found[r].status is not Status.PASS for r in rules]
                for i, r in enumerate(rules):
                    figures.setdefault((arm, f"{way} {i}"), []).append(float(found[r].ci[1]))
        if (s + 1) % 25 == 0:
            print(f"  holdout {fraction:g}: {s + 1} splits", flush=True)
    rows = []
    for arm in arms:
        extra: dict[str, str] = {}
        if args.distinct:
            excess, null_sd, p_value = np.array(distincts[arm]).T
            extra = {
                "distinct excess sd / null sd": f"{excess.std(ddof=1):.3f} / {null_sd.mean():.3f}",
                "median excess": f"{np.median(excess):+.3f}",
                "distinct p < 0.05": f"{(p_value < 0.05).mean():.3f}",
            }
        for way in judged:
            b = blocks[arm, way]
            est, se = np.array(shares[arm, "centred" if way == "centred" else "raw"]).T
            rows.append(
                extra
                | {
                    "holdout": f"{fraction:g} ({n_holdout})",
                    "share mean / sd / boot se": f"{est.mean():.3f} / {est.std(ddof=1):.3f} / "
                    f"{se.mean():.3f}",
                    "records copied": arm,
                    "judged": {
                        "raw": "raw share (reference)",
                        "centred": "centred share (shipped)",
                        "control": "public_panel_control",
                    }[way],
                    "blocks on DCR AUC": f"{b[:, 0].mean():.3f}",
                    "on share": f"{b[:, 1].mean():.3f}",
                    "on either": f"{b.any(axis=1).mean():.3f}",
                    "median CI upper (AUC / share)": " / ".join(
                        f"{np.median(figures[arm, f'{way} {i}']):.3f}" for i in range(2)
                    ),
                }
            )
    return rows


if __name__ == "__main__":
    main()
