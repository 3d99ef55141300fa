"""``dpgenome sweep``: the privacy/utility frontier for auditors.

For each cohort size and each epsilon, the release pipeline's expensive part (synthesis,
audits, fidelity; :func:`dpgenome.release.compute`) runs on the same member/holdout split, and
the frontier page plots SNP recall/precision, loci and lambda_GC against epsilon beside the
membership AUC and the canary lower bound. A sweep is an analysis by the data holder, not a
release: nothing is exported, and every point trains on the data again, so a sweep on a
private cohort spends the sum of its epsilons. Run sweeps on simulated or public cohorts
(the default): hyperparameters are never tuned on the private one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from dpgenome.config import ReleaseConfig
from dpgenome.errors import ConfigError
from dpgenome.findings import fmt_claim
from dpgenome.frontier import render_frontier
from dpgenome.io import write_cohort
from dpgenome.io.files import write_text_atomic
from dpgenome.paths import shipped_policy
from dpgenome.release import Progress, compute, ingest, json_default


def _simulated_cohort(n: int, seed: int, out: Path, echo: Callable[[str], None] | None) -> Path:
    from dpgenome.simulate import SimConfig, simulate

    target = out / f"cohort-n{n}-seed{seed}"
    if not (target / "cohort").is_dir():
        if echo:
            echo(f"simulating a CFW-like cohort of {n} mice (+ public panel of 1000) ...")
        sim = simulate(SimConfig(n=n, seed=seed, n_public=1000).validate())
        write_cohort(sim.cohort, target / "cohort", "parker")
        if sim.public is not None:
            write_cohort(sim.public, target / "public", "parker")
    return target


def run_sweep(
    *,
    cohort: str | None,
    pheno: str,
    covariates: Sequence[str],
    epsilons: Sequence[float],
    sizes: Sequence[int],
    public_panel: str | None,
    seed: int,
    out: Path,
    echo: Callable[[str], None] | None = None,
    pheno_schema: str | None = None,
) -> Path:
    """Run every (size, epsilon) point; write ``out/sweep.json`` and ``out/sweep.html``. An
    ``out`` the sweep created is removed again when a point fails (nothing half-written)."""
    if not epsilons:
        raise ConfigError("--epsilons lists no epsilon")
    if cohort is None and public_panel is not None:
        raise ConfigError(
            "--public-panel applies to a COHORT given; without one each simulated cohort "
            "comes with its own simulated panel"
        )
    if out.is_dir() and any(out.iterdir()) and not _previous_sweep(out):
        raise ConfigError(
            "the sweep folder exists and holds other files; give an empty or new --out (a "
            "previous sweep's folder is reused: its simulated cohorts, its pages replaced)",
            file=out,
        )
    with _removed_on_failure(out):
        runs: list[dict[str, Any]] = []
        for n in sizes:
            panel: str | None
            if cohort is None:
                base = _simulated_cohort(n, seed, out, echo)
                cohort_path, panel = str(base / "cohort"), str(base / "public")
            else:
                cohort_path, panel = cohort, public_panel
            base_config = ReleaseConfig(
                cohort=cohort_path,
                pheno=pheno,
                covariates=tuple(covariates),
                policy=str(shipped_policy("internal")),
                out=str(out),
                seed=seed,
                public_panel=panel,
                pheno_schema=pheno_schema,
            )
            # ingested once at the base configuration's finite epsilon: the DP QC (SNPs chosen
            # from the public panel only) serves every point, the non-private one included
            ing = ingest(base_config)
            for eps in epsilons:
                config = replace(base_config, epsilon=eps).resolve(ing.members.n_samples)
                label = "inf (no formal privacy)" if math.isinf(eps) else f"{eps:g}"
                if echo:
                    echo(f"== sweep point: n = {ing.cohort.n_samples}, epsilon = {label}")
                results, _, _ = compute(ing, config, Progress(echo))
                results["provenance"]["config"] = config.synthesis_dict()
                runs.append(results)
                ledger = results.get("ledger") or {}
                if echo and not math.isinf(eps):
                    echo(
                        f"   accounted: epsilon = {fmt_claim(ledger.get('epsilon'))}, delta = "
                        f"{fmt_claim(ledger.get('delta'))}"
                    )
        write_text_atomic(
            out / "sweep.json", json.dumps({"runs": runs}, indent=1, default=json_default)
        )
        page = out / "sweep.html"
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        write_text_atomic(page, render_frontier(runs, generated_at=stamp))
        return page


def _previous_sweep(out: Path) -> bool:
    """Whether ``out`` holds only what a sweep writes (its page, its JSON, the simulated
    cohorts it keeps): such a folder is reused, any other non-empty one refused."""
    return all(
        p.name in {"sweep.json", "sweep.html"} or (p.is_dir() and p.name.startswith("cohort-n"))
        for p in out.iterdir()
    )


@contextlib.contextmanager
def _removed_on_failure(out: Path) -> Iterator[None]:
    """``out`` created if absent, and removed again when the block fails if it was created."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
