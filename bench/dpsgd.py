"""Benchmark of one DP-SGD step of the genotype structure model (the path a release without a
public panel trains on the members), by how Opacus gets the per-sample gradients.

    python bench/dpsgd.py [--n 960] [--steps 10] [--threads 1] [--modes functorch,hooks,ghost]

The model is the default ``WindowModel`` over the real 79,645-SNP CFW map shipped with the
package (windows of 16, context 8: ~1.9M parameters); the dosages are random (the cost does not
depend on their values). Each mode runs in its own process (peak memory per mode) at sample
rate 0.1 with clipping and noise, and prints seconds per step, the extrapolated wall time of
the default no-public training (``SynthConfig.structure_steps`` steps) and the process's peak
resident memory. Named reference, measured in the same run: Opacus's generic ``functorch``
per-sample gradients (what Opacus does for a layer it has no grad sampler for; the issue's
prototype found it ~17x slower than closed-form per-sample gradients). ``hooks`` is Opacus
with this package's closed-form grad sampler (each per-sample gradient materialised),
``ghost`` its norm sampler (ghost clipping: two backward passes, no per-sample gradient held;
the default).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from dpgenome.dpsgd import DpSgdConfig, DpSgdTrainer
from dpgenome.model import WindowModel, make_layout
from dpgenome.simulate import load_panel
from dpgenome.synthconfig import SynthConfig


def one_mode(mode: str, n: int, steps: int, threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    variants = load_panel()
    rng = np.random.default_rng(0)
    dosages = rng.binomial(2, rng.uniform(0.05, 0.5, len(variants)), size=(n, len(variants)))
    cfg = SynthConfig(pheno="abBMD")
    model = WindowModel(make_layout(variants, cfg.structure_window, cfg.structure_context))
    rows = model.prepare(dosages.astype(np.float32))
    trainer = DpSgdTrainer(
        model,
        lambda ps: torch.optim.Adam(ps, lr=cfg.structure_lr),
        n,
        DpSgdConfig(cfg.structure_sample_rate, steps + 1, 1.0, cfg.structure_clip),
        seed=0,
        grad_sample_mode=mode,
    )
    batches = iter(trainer.batches())
    trainer.step(next(batches), lambda module, idx: module(rows[idx]))  # warm-up
    start = time.perf_counter()
    for idx in batches:
        trainer.step(idx, lambda module, idx: module(rows[idx]))
    per_step = (time.perf_counter() - start) / steps
    return {
        "s_per_step": per_step,
        "training_s": per_step * cfg.structure_steps,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=960, help="individuals (the bench's members)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--modes", default="functorch,hooks,ghost")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a child process: one mode, JSON out
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_mode(args.one, args.n, args.steps, args.threads)))
        return
    steps = SynthConfig(pheno="abBMD").structure_steps
    print(
        f"# bench/dpsgd.py: structure model, {args.n} individuals x 79,645 SNPs, sample rate "
        f"0.1, {args.steps} timed steps per mode, {args.threads} thread(s); reference: "
        "Opacus functorch (generic per-sample gradients)"
    )
    print(f"mode | s/step | {steps} steps (s) | peak GB | x faster than functorch")
    base = None
    for mode in args.modes.split(","):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                mode,
                "--n",
                str(args.n),
                "--steps",
                str(args.steps),
                "--threads",
                str(args.threads),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        base = r["s_per_step"] if mode == "functorch" else base
        ratio = f"{base / r['s_per_step']:.1f}" if base else "-"
        print(
            f"{mode} | {r['s_per_step']:.3f} | {r['training_s']:.0f} | {r['peak_gb']:.2f} | "
            f"{ratio}",
            flush=True,
        )


if __name__ == "__main__":
    main()
