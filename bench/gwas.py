"""GWAS speed and memory against plink2 and GEMMA, measured in the same run.

    python bench/gwas.py [--sizes cfw,10000,50000] [--threads 1] [--mem-gb 0.6]

For each size a seeded cohort is simulated and written once as PLINK .bed/.bim/.fam: at the
CFW size by ``dpgenome.simulate`` (msprime, the real CFW SNP map, QC applied; ``--simulator
toy`` to skip it), at the larger sizes by ``dpgenome.testing.toy_cohort`` (mosaic
haplotypes, 19 chromosomes, planted QTLs). The phenotype is the binary ``abBMD`` with the
``SW16`` covariate as in the CFW study. Dosages are rounded to hard calls so that every
program reads the same data from the .bed. Then:

* linear: ``dpgenome.gwas.linear_gwas`` on the in-memory cohort vs the whole process
  ``plink2 --bfile ... --glm`` (the 0/1 phenotype is shifted by +10 so plink2 runs linear
  regression, which leaves beta, se and p unchanged);
* LMM with LOCO (sizes up to ``--lmm-max-n``): ``dpgenome.lmm.lmm_gwas`` (Wald and LRT,
  one kinship and eigendecomposition per chromosome) vs GEMMA ``-gk 1`` + ``-lmm 2`` with
  one kinship (the reference the issue names; GEMMA with LOCO would be ~19x slower).

Peak memory: for dpgenome the tracemalloc peak of the call (numpy buffers; the cohort itself
is allocated before), for the tools the child's max RSS (GNU ``time -f %M``). The CFW size
is 960 phenotyped x 79,645 SNPs; the larger sizes keep the dosage matrix under ``--mem-gb``
by using fewer SNPs (printed), because this machine is shared (the simulator needs ~3x
that). Both sides use ``--threads`` threads (BLAS and plink2/GEMMA).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

CFW_N, CFW_M = 960, 79_645


def _child(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and max RSS (GB) of one child process. The RSS comes from GNU time
    (``/usr/bin/time -f %M``) when present: the rusage of a child forked from this large
    Python process would count the pages it inherited before exec."""
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    full = [gnu_time, "-f", "%M", "-o", str(cwd / "rss.txt"), *cmd] if gnu_time else cmd
    start = time.perf_counter()
    proc = subprocess.run(
        full, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.decode()[-1000:]}")
    rss = float((cwd / "rss.txt").read_text().split()[-1]) / 1e6 if gnu_time else float("nan")
    return wall, rss


def _measure(fn, *, separate: bool = True):  # type: ignore[no-untyped-def]
    """(result, wall s, tracemalloc peak GB). With ``separate`` the wall comes from a plain
    call and the peak from a second, traced one; otherwise one traced call gives both
    (tracemalloc slows many small allocations, barely the few large ones of the LMM)."""
    wall = None
    if separate:
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
    tracemalloc.start()
    start = time.perf_counter()
    out = fn()
    traced = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, (wall if wall is not None else traced), peak / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--sizes",
        default="cfw,10000,50000",
        help="comma list: 'cfw' (960 x 79,645) or a sample count",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--mem-gb",
        type=float,
        default=0.6,
        help="max size of the float32 dosage matrix of the larger cohorts",
    )
    ap.add_argument(
        "--lmm-max-n",
        type=int,
        default=2000,
        help="run the LMM comparison only up to this many samples",
    )
    ap.add_argument("--no-gemma", action="store_true", help="skip the (slow) GEMMA reference")
    ap.add_argument(
        "--simulator",
        choices=("sim", "toy"),
        default="sim",
        help="CFW size: dpgenome.simulate (~1 min) or toy_cohort; larger sizes use toy_cohort",
    )
    args = ap.parse_args()
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(args.threads),
        OPENBLAS_NUM_THREADS=str(args.threads),
        MKL_NUM_THREADS=str(args.threads),
    )
    os.environ.update(
        {k: env[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    )

    import numpy as np
    from bed_reader import to_bed

    from dpgenome.gwas import linear_gwas, prepare
    from dpgenome.lmm import lmm_gwas
    from dpgenome.testing import ToyConfig, toy_cohort

    plink2, gemma = shutil.which("plink2"), shutil.which("gemma")
    print(
        f"# threads={args.threads}; plink2={plink2}; gemma={gemma}; load avg "
        f"{os.getloadavg()[0]:.1f} (machine shared: timings are noisy)"
    )
    for size in args.sizes.split(","):
        if size == "cfw":
            n, m = CFW_N, CFW_M
        else:
            n = int(size)
            m = min(CFW_M, int(args.mem_gb * 1e9 / (4 * n)))
        start = time.perf_counter()
        if size == "cfw" and args.simulator == "sim":
            from dpgenome.cohort import qc
            from dpgenome.simulate import SimConfig, simulate

            cohort = qc(simulate(SimConfig(seed=1)).cohort)[0]
            source = "dpgenome.simulate (msprime, real CFW SNP map), after QC"
        else:
            per_chrom = -(-m // 19)
            # toy_cohort drops ~8% of phenotypes: draw extra samples so n are phenotyped
            cfg = ToyConfig(n=int(n / 0.85) + 10, n_chrom=19, snps_per_chrom=per_chrom)
            cohort, _ = toy_cohort(1, cfg)
            source = "dpgenome.testing.toy_cohort (mosaic haplotypes)"
        rows, y, design, _ = prepare(cohort, "abBMD", ["SW16"])
        cohort = cohort.take_samples(rows[:n]).take_variants(np.arange(min(m, cohort.n_variants)))
        # hard calls, so that plink2 and GEMMA read exactly the same data from the .bed
        np.round(cohort.dosages, out=cohort.dosages)
        rows, y, design, _ = prepare(cohort, "abBMD", ["SW16"])
        n = cohort.n_samples
        print(
            f"\n## size {size}: {cohort.n_samples} samples x {cohort.n_variants} SNPs "
            f"({cohort.dosages.nbytes / 1e9:.2f} GB float32) from {source} "
            f"[{time.perf_counter() - start:.0f} s to simulate]"
        )
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            v = cohort.variants
            ids = [f"S{i}" for i in range(n)]
            to_bed(
                tmp / "c.bed",
                cohort.dosages,
                count_A1=True,
                num_threads=args.threads,
                properties={
                    "fid": ids,
                    "iid": ids,
                    "pheno": list(y),
                    "chromosome": list(v["chr"]),
                    "sid": list(v["id"]),
                    "bp_position": list(v["pos"]),
                    "allele_1": list(v["alt"]),
                    "allele_2": list(v["ref"]),
                },
            )
            (tmp / "c.pheno").write_text(
                "FID\tIID\tY\n"
                + "".join(f"{i}\t{i}\t{val + 10.0!r}\n" for i, val in zip(ids, y, strict=True))
            )
            (tmp / "c.covar").write_text(
                "FID\tIID\tSW16\n"
                + "".join(f"{i}\t{i}\t{val!r}\n" for i, val in zip(ids, design[:, 0], strict=True))
            )
            (tmp / "c.gcov").write_text("".join(f"1 {val!r}\n" for val in design[:, 0]))

            res, wall, peak = _measure(lambda c=cohort: linear_gwas(c, "abBMD", ["SW16"]))
            print(f"linear  dpgenome linear_gwas     wall {wall:7.2f} s  peak +{peak:.2f} GB")
            if plink2:
                pw, prss = _child(
                    [
                        plink2,
                        "--bfile",
                        "c",
                        "--pheno",
                        "c.pheno",
                        "--covar",
                        "c.covar",
                        "--pheno-name",
                        "Y",
                        "--glm",
                        "hide-covar",
                        "--threads",
                        str(args.threads),
                        "--out",
                        "p",
                    ],
                    tmp,
                    env,
                )
                print(f"linear  plink2 --glm (process)   wall {pw:7.2f} s  max RSS {prss:.2f} GB")
                print(f"linear  ratio dpgenome/plink2    {wall / pw:7.2f}  (target <= 1)")
                import pandas as pd

                ref = pd.read_csv(tmp / "p.Y.glm.linear", sep="\t")
                ref = ref[ref["TEST"] == "ADD"]
                merged = res.table.merge(ref, left_on="id", right_on="ID")
                # plink2 prints P = 0 below ~1e-308; those rows cannot be compared on p
                finite = merged["P"].to_numpy() > 0
                diff = np.abs(-np.log10(merged["P"][finite]) - merged["log10_p"][finite])
                print(
                    f"linear  max |delta -log10 p| vs plink2: {np.nanmax(diff):.1e} "
                    f"({int((~finite).sum())} SNPs with plink2 P = 0 left out)"
                )
            if n > args.lmm_max_n:
                print(
                    f"lmm     skipped (n > --lmm-max-n {args.lmm_max_n}: kinship n^2, "
                    "eigendecomposition n^3)"
                )
                continue
            _, lw, lpeak = _measure(
                lambda c=cohort: lmm_gwas(c, "abBMD", ["SW16"], loco=True), separate=False
            )
            print(
                f"lmm     dpgenome lmm_gwas LOCO   wall {lw:7.2f} s  peak +{lpeak:.2f} GB "
                "(Wald + LRT, 19 kinships)"
            )
            if gemma and not args.no_gemma:
                gk, grss = _child([gemma, "-bfile", "c", "-gk", "1", "-o", "k"], tmp, env)
                print(f"lmm     GEMMA -gk 1              wall {gk:7.2f} s  max RSS {grss:.2f} GB")
                lm2, lrss = _child(
                    [
                        gemma,
                        "-bfile",
                        "c",
                        "-c",
                        "c.gcov",
                        "-k",
                        "output/k.cXX.txt",
                        "-lmm",
                        "2",
                        "-o",
                        "l",
                    ],
                    tmp,
                    env,
                )
                print(f"lmm     GEMMA -lmm 2             wall {lm2:7.2f} s  max RSS {lrss:.2f} GB")
                print(f"lmm     ratio dpgenome/GEMMA     {lw / (gk + lm2):7.3f}  (target <= 0.25)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
