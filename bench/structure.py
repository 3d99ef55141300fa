"""Benchmark of ``ancestry_pcs = "auto"`` (:func:`dpgenome.ancestry.detect_structure`): what
the public panel's structure test chooses on simulated CFW-like panels, and what it costs.

    python bench/structure.py                         # the six panels of docs/tuning-history.md
    python bench/structure.py --panels 1:1:30,1:2:5   # SEED:COLONIES:SPLIT_GENERATIONS

Each panel is simulated (``dpgenome.simulate``: 1,000 public mice beside the 1,092-mouse
cohort at the real 79,645-SNP map; ``COLONIES`` sub-colonies split ``SPLIT`` generations ago,
the panel in equal shares) and tested.
Printed per panel: the individuals kept (no first-degree relatives among them), the three
largest canonical correlations between the two genome halves' principal components, the
Bartlett p-value of the first, the shared axes and the K chosen, and the test's wall time
beside the named reference measured in the same run: one :func:`dpgenome.ancestry.fit_axes`
at K = 4 on the same panel (the whole-genome Gram pass and projection that ancestry needs
anyway; the test hands its Gram matrix on to it).
"""

from __future__ import annotations

import argparse
import time

import torch

from dpgenome.ancestry import detect_structure, fit_axes
from dpgenome.simulate import SimConfig, simulate

PANELS = "1:1:30,2:1:30,1:2:30,1:2:10,2:2:5,1:3:30"
#: the cohort's shares of the sub-colonies (the panel's are equal)
SHARES = {2: (0.75, 0.25), 3: (0.5, 0.3, 0.2)}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--panels", default=PANELS, help="SEED:COLONIES:SPLIT,... (default: six)")
    ap.add_argument("--public", type=int, default=1000, help="panel size")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"# bench/structure.py: panels of {args.public} simulated mice; reference: fit_axes "
        "at K = 4 on the same panel"
    )
    print("seed | colonies | split | kept | correlations | p_first | axes | K | test_s | axes_s")
    for spec in args.panels.split(","):
        seed, colonies, split = (int(v) for v in spec.split(":"))
        cfg = SimConfig(  # the cohort as bench/ancestry.py simulates it beside the panel
            n=1092,
            seed=seed,
            n_public=args.public,
            colonies=colonies,
            colony_shares=SHARES.get(colonies),
            colony_split_generations=split,
        ).validate()
        panel = simulate(cfg).public
        assert panel is not None
        t0 = time.perf_counter()
        test, _ = detect_structure(panel.dosages, panel.variants)
        t_test = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit_axes(panel.dosages, panel.variants, 4)
        t_axes = time.perf_counter() - t0
        rho = ", ".join(f"{v:.3f}" for v in test.correlations[:3])
        p = f"{test.p_values[0]:.2g}" if test.p_values.size else "-"
        print(
            f"{seed} | {colonies} | {split} | {test.unrelated}/{test.panel} | {rho} | {p} | "
            f"{test.axes} | {test.pcs} | {t_test:.1f} | {t_axes:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
