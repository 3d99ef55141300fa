"""The CFW-like simulator: speed, memory, LD decay and GWAS resemblance to the real study.

    python bench/simulate.py [--sizes 1092,10000,50000] [--seed 1] [--seeds 2,3,4]
                             [--format plink] [--no-reference] [--skip-speed] [--skip-gwas]

1. Speed and memory. For each size, ``dpgenome simulate --out TMP --n N --format F`` runs in a
   child process (wall time, max RSS from ``os.wait4``); large sizes are written one chromosome
   at a time (the CLI's ``--shard`` default above 4 GiB of dosages). Beside it, the named
   reference measured in the same run: msprime alone (``sim_ancestry`` + ``sim_mutations``
   of the same chromosomes and sample size, in its own child), and the size of the float32
   dosage matrix.
2. LD decay of the simulated default cohort (mean r^2 of SNP pairs by distance bin) beside
   the prototype figures quoted in issue 3.
3. GWAS resemblance: ``abBMD ~ dosage + SW16`` with ``dpgenome.gwas.linear_gwas`` on the
   simulated default cohort beside the real GWAS (``src/dpgenome/data/gwas_abBMD_lm.csv.gz``,
   R ``lm`` of Parker et al. 2016): hits at 1e-8 and 2e-6 per chromosome, lead p, genomic
   inflation (lambda_GC, same estimator for both); ``--seeds`` adds the spread over other
   seeds. Writes a two-panel Manhattan plot (real above, simulated below) as SVG to
   ``bench/out/simulate_manhattan.svg``.

Timings on this shared 2-core machine are taken under load from other work.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "out"
PROTOTYPE_LD = {"0-10kb": 0.44, "10-100kb": 0.34, "100kb-1Mb": 0.20, "1-5Mb": 0.09}
LD_BINS = {"0-10kb": (0, 1e4), "10-100kb": (1e4, 1e5), "100kb-1Mb": (1e5, 1e6), "1-5Mb": (1e6, 5e6)}

_MSPRIME_ONLY = """
import sys, time
from dpgenome.simulate import SimConfig, _ancestry
cfg = SimConfig(n=int(sys.argv[1]), seed=int(sys.argv[2])).validate()
for chrom in cfg.chromosomes:
    _ancestry(cfg, chrom, cfg.n)
"""


def _run_child(args: list[str]) -> tuple[float, float]:
    """Wall seconds and max RSS (GB) of a child process."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"{' '.join(args)} failed:\n{err}")
    return wall, usage.ru_maxrss / 1e6


def bench_speed(sizes: list[int], seed: int, fmt: str, reference: bool) -> None:
    from dpgenome.simulate import load_panel

    m = len(load_panel())
    print("\n== speed and memory (child processes; machine shared, under load)")
    print(
        f"{'n':>7} {'simulate+write s':>17} {'max RSS GB':>11} {'msprime-only s':>15} "
        f"{'ref RSS GB':>11} {'float32 dosages GB':>19}"
    )
    for n in sizes:
        with tempfile.TemporaryDirectory(dir=OUT) as tmp:
            wall, rss = _run_child(
                [
                    sys.executable,
                    "-c",
                    "from dpgenome.cli import main; main()",
                    "simulate",
                    "--out",
                    f"{tmp}/c",
                    "--n",
                    str(n),
                    "--seed",
                    str(seed),
                    "--format",
                    fmt,
                ]
            )
        ref_wall, ref_rss = (float("nan"), float("nan"))
        if reference:
            ref_wall, ref_rss = _run_child([sys.executable, "-c", _MSPRIME_ONLY, str(n), str(seed)])
        print(
            f"{n:>7} {wall:>17.1f} {rss:>11.2f} {ref_wall:>15.1f} {ref_rss:>11.2f} "
            f"{n * m * 4 / 1e9:>19.2f}",
            flush=True,
        )


def ld_decay(dos: np.ndarray, chrom: np.ndarray, pos: np.ndarray, seed: int = 0) -> dict:
    """Mean r^2 of SNP pairs on the same chromosome by distance bin (random anchors)."""
    rng = np.random.default_rng(seed)
    m = dos.shape[1]
    anchors = np.sort(rng.choice(m, size=min(4000, m), replace=False))
    mean = dos.mean(0)
    sd = dos.std(0)
    out: dict[str, list[np.ndarray]] = {k: [] for k in LD_BINS}
    for lag in range(1, 400):
        other = anchors + lag
        ok = other < m
        a, b = anchors[ok], other[ok]
        same = chrom[a] == chrom[b]
        a, b = a[same], b[same]
        dist = pos[b] - pos[a]
        za = (dos[:, a] - mean[a]) / sd[a]
        zb = (dos[:, b] - mean[b]) / sd[b]
        r2 = (za * zb).mean(0) ** 2
        for name, (lo, hi) in LD_BINS.items():
            sel = (dist >= lo) & (dist < hi)
            out[name].append(r2[sel])
    return {k: float(np.mean(np.concatenate(v))) for k, v in out.items()}


def summarise(table: pd.DataFrame) -> dict:
    """Hits per chromosome at 1e-8 and 2e-6, lead, lambda_GC of a (chr, pos, id, p) table."""
    from dpgenome.gwas import lambda_gc

    p = table["p"].to_numpy(dtype=np.float64)
    log10_p = -np.log10(np.maximum(p, 1e-300))
    lead = int(np.argmin(p))
    per_chr = {}
    for thr in (1e-8, 2e-6):
        counts = table.loc[p < thr, "chr"].astype(str).value_counts()
        per_chr[thr] = {str(k): int(v) for k, v in counts.items()}
    return {
        "hits": {thr: int((p < thr).sum()) for thr in (1e-8, 2e-6)},
        "per_chr": per_chr,
        "lead": (
            str(table["id"].iat[lead]),
            str(table["chr"].iat[lead]),
            int(table["pos"].iat[lead]),
            float(p[lead]),
        ),
        "lambda": lambda_gc(log10_p),
    }


def simulated_gwas(seed: int, n: int = 1092):
    from dpgenome.gwas import linear_gwas
    from dpgenome.simulate import SimConfig, simulate

    sim = simulate(SimConfig(n=n, seed=seed))
    result = linear_gwas(sim.cohort, "abBMD", ["SW16"])
    table = result.table[["chr", "pos", "id", "p"]].copy()
    return sim, table


def print_comparison(real: dict, sim: dict) -> None:
    print("\n== abBMD GWAS (abBMD ~ dosage + SW16): real (Parker et al. 2016) vs simulated")
    print(f"{'':28} {'real':>22} {'simulated':>22}")
    for thr in (1e-8, 2e-6):
        label = f"hits at p < {thr:g}"
        print(f"{label:28} {real['hits'][thr]:>22} {sim['hits'][thr]:>22}")
        chroms = sorted(set(real["per_chr"][thr]) | set(sim["per_chr"][thr]), key=int)
        for c in chroms:
            print(
                f"{'   chromosome ' + c:28} {real['per_chr'][thr].get(c, 0):>22} "
                f"{sim['per_chr'][thr].get(c, 0):>22}"
            )
    print(f"{'lead p':28} {real['lead'][3]:>22.3g} {sim['lead'][3]:>22.3g}")
    print(
        f"{'lead SNP':28} {real['lead'][0] + ' chr' + real['lead'][1]:>22} "
        f"{sim['lead'][0] + ' chr' + sim['lead'][1]:>22}"
    )
    print(f"{'lead position':28} {real['lead'][2]:>22,} {sim['lead'][2]:>22,}")
    print(f"{'lambda_GC':28} {real['lambda']:>22.3f} {sim['lambda']:>22.3f}")


def manhattan(real: pd.DataFrame, sim: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dpgenome.simulate import MM10_LENGTHS

    offsets = np.cumsum([0, *MM10_LENGTHS.values()])[:-1]
    start = dict(zip(MM10_LENGTHS, offsets, strict=True))
    fig, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    for ax, table, title in (
        (axes[0], real, "real (Parker et al. 2016)"),
        (axes[1], sim, "simulated (dpgenome simulate, default)"),
    ):
        chrom = table["chr"].astype(str).to_numpy()
        x = table["pos"].to_numpy() + np.array([start[c] for c in chrom])
        y = -np.log10(np.maximum(table["p"].to_numpy(dtype=np.float64), 1e-300))
        colour = np.where(np.array([int(c) for c in chrom]) % 2 == 0, "#1f4e79", "#7fa7d1")
        ax.scatter(x, y, c=colour, s=2, rasterized=True, linewidths=0)  # 160k points
        ax.axhline(8, color="#c00000", lw=0.8, ls="--")
        ax.axhline(-np.log10(2e-6), color="#888888", lw=0.6, ls=":")
        ax.set_ylabel("-log10 p")
        ax.set_title(f"abBMD ~ dosage + SW16: {title}", fontsize=10)
        ax.set_ylim(0, max(16.0, float(np.nanmax(y)) + 1))
    mids = offsets + np.array(list(MM10_LENGTHS.values())) / 2
    axes[1].set_xticks(mids, list(MM10_LENGTHS))
    axes[1].set_xlabel("chromosome")
    fig.tight_layout()
    fig.savefig(path, format="svg", dpi=150)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1092,10000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", default="", help="extra seeds for the GWAS spread")
    parser.add_argument("--format", default="plink", choices=["parker", "plink", "vcf"])
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-gwas", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    import torch

    torch.set_num_threads(1)
    if not args.skip_speed:
        sizes = [int(s) for s in args.sizes.split(",") if s]
        bench_speed(sizes, args.seed, args.format, not args.no_reference)

    if args.skip_gwas:
        return
    real = pd.read_csv(
        Path(__file__).resolve().parents[1] / "src/dpgenome/data/gwas_abBMD_lm.csv.gz"
    )
    real = real.rename(columns={"snp": "id"})[["chr", "pos", "id", "p"]]
    sim, table = simulated_gwas(args.seed)
    c = sim.cohort
    ld = ld_decay(c.dosages, c.variants["chr"].to_numpy(), c.variants["pos"].to_numpy())
    print(f"\n== LD decay, mean r^2 (simulated default cohort, seed {args.seed}, all chromosomes)")
    print(f"{'distance':12} {'simulated':>10} {'prototype (issue 3)':>20}")
    for k, v in ld.items():
        print(f"{k:12} {v:>10.3f} {PROTOTYPE_LD[k]:>20.2f}")
    real_s, sim_s = summarise(real), summarise(table)
    print_comparison(real_s, sim_s)
    print(f"{'case fraction':28} {0.194:>22.3f} {sim.truth['case_fraction']:>22.3f}")
    for locus in sim.truth["loci"]:
        print(
            f"   locus chr{locus['chrom']} at {locus['pos']:,}: variance {locus['variance']:.3f}, "
            f"{locus['n_causal_used']} causal SNPs"
        )
    path = OUT / "simulate_manhattan.svg"
    manhattan(real, table, path)
    print(f"\nManhattan plot: {path}")
    extra = [int(s) for s in args.seeds.split(",") if s]
    if extra:
        print("\n== spread over seeds (n = 1092)")
        print(
            f"{'seed':>5} {'hits 1e-8':>10} {'chr11/chr5/other':>17} {'hits 2e-6':>10} "
            f"{'lead -log10 p':>14} {'lead chr':>9} {'lambda':>7}"
        )
        for seed in [args.seed, *extra]:
            s = sim_s if seed == args.seed else summarise(simulated_gwas(seed)[1])
            pc = s["per_chr"][1e-8]
            other = s["hits"][1e-8] - pc.get("11", 0) - pc.get("5", 0)
            split = f"{pc.get('11', 0)}/{pc.get('5', 0)}/{other}"
            print(
                f"{seed:>5} {s['hits'][1e-8]:>10} {split:>17} {s['hits'][2e-6]:>10} "
                f"{-np.log10(s['lead'][3]):>14.2f} {s['lead'][1]:>9} {s['lambda']:>7.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
