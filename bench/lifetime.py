"""The lifetime ledger (:mod:`dpgenome.lifetime`): what an individual's repeated releases cost,
composed by their mechanisms, against the named reference in the same run, basic composition
(the epsilons add); and how long the ledger takes at biobank scale.

    python bench/lifetime.py [--results PATH] [--releases 5] [--ids 200000] [--cohorts 10]

* ``composition``: k releases with the same mechanisms (those of ``--results``, a
  ``results.json`` or ``ledger.json`` such as a demo release's; default a release of one
  Gaussian query with noise multiplier 0.6, epsilon 8.6 at delta 1e-5, whose exact k-fold
  epsilon is printed too): the composed lifetime epsilon and the sum, for k = 1..``--releases``,
  between cohorts that add or remove one individual and between cohorts that replace one
  (:func:`dpgenome.lifetime_compose.compose_replace_one`, against the sum of the releases' own
  replace-one epsilons and, for the Gaussian, the exact figure at twice the sensitivity).
* ``scale``: ``--cohorts`` overlapping cohorts drawn from ``--ids`` distinct ids (each a
  third of them, shifted along), one release each, recorded in a fresh ledger: seconds per
  record, per total (first call, and again), and the file size; the same ledger read by
  fingerprint alone (no individuals: the basic, unlinked reference) beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from scipy import optimize, stats

from dpgenome.accountant import Ledger
from dpgenome.lifetime import LifetimeLedger, individuals_fingerprint
from dpgenome.lifetime_compose import ReleaseBudget, _compose, compose, compose_replace_one


def _gaussian_ledger(sigma: float, delta: float) -> dict[str, Any]:
    ledger = Ledger(delta)
    ledger.add_gaussian("release", sigma, 1)
    return ledger.to_dict()


def _exact_gaussian(mu: float, delta: float) -> float:
    """Exact epsilon of a mu-GDP mechanism at ``delta`` (Balle & Wang 2018, Thm 8)."""

    def excess(eps: float) -> float:
        a = stats.norm.cdf(-eps / mu + mu / 2)
        return a - math.exp(eps) * stats.norm.cdf(-eps / mu - mu / 2) - delta

    return float(optimize.brentq(excess, 0.0, 200.0))


def composition(results: Path | None, releases: int) -> None:
    if results is None:
        sigma = 0.6
        ledger = _gaussian_ledger(sigma, 1e-5)
        source = f"one Gaussian query, noise multiplier {sigma}"
    else:
        data = json.loads(results.read_text())
        ledger = data.get("ledger", data)
        sigma = math.nan
        source = str(results)
    budget = ReleaseBudget.of(float(ledger["epsilon"]), float(ledger["delta"]), ledger)
    if budget.mechanisms is None:
        raise SystemExit(f"{source}: its mechanisms do not re-account to its epsilon")
    kinds = ", ".join(m["kind"] for m in ledger["mechanisms"])
    print(
        f"composition: {source} ({kinds}); epsilon {budget.epsilon:.3f}, delta {budget.delta:.3g}"
    )
    print(
        f"{'':>3} {'add/remove one':^30} | {'replace one':^30}\n"
        f"{'k':>3} {'composed':>9} {'basic (sum)':>12} {'exact':>7} | {'composed':>9} "
        f"{'basic (sum)':>12} {'exact':>7} {'seconds':>8}"
    )
    for k in range(1, releases + 1):
        start = time.perf_counter()
        eps, _, basic = compose([budget] * k)
        replaced = compose_replace_one([budget] * k)
        took = time.perf_counter() - start
        one = compose_replace_one([budget])
        assert replaced is not None and one is not None  # recorded mechanisms: always bounded
        exact = exact_r = None
        if math.isfinite(sigma):  # replacing one moves the query by twice its sensitivity
            exact = _exact_gaussian(math.sqrt(k) / sigma, budget.delta)
            exact_r = _exact_gaussian(2 * math.sqrt(k) / sigma, budget.delta)
        print(
            f"{k:>3} {eps:9.3f} {basic:12.3f} {_shown(exact)} | {replaced[0]:9.3f} "
            f"{k * one[0]:12.3f} {_shown(exact_r)} {took:8.2f}"
        )


def _shown(value: float | None) -> str:
    return f"{value:7.3f}" if value is not None else f"{'-':>7}"


def scale(n_ids: int, n_cohorts: int) -> None:
    ids = [f"id{i:07d}" for i in range(n_ids)]
    size = n_ids // 3
    step = max((n_ids - size) // max(n_cohorts - 1, 1), 1)
    with tempfile.TemporaryDirectory() as tmp:
        book = LifetimeLedger(Path(tmp) / "lifetime.sqlite")
        print(f"\nscale: {n_cohorts} cohorts of {size} ids from {n_ids}, one release each")
        print(
            f"{'cohort':>6} {'record s':>9} {'total s':>8} {'again s':>8} {'unlinked s':>11} "
            f"{'epsilon':>8} {'releases':>8}"
        )
        for c in range(n_cohorts):
            members = ids[c * step : c * step + size]
            fp = individuals_fingerprint(members)
            # each release's noise a little different, so no composition is reused
            doc = _gaussian_ledger(2.0 + 0.01 * c, 1e-6)
            budget = ReleaseBudget.of(doc["epsilon"], doc["delta"], doc)
            start = time.perf_counter()
            book.record(
                fp,
                doc["epsilon"],
                doc["delta"],
                f"r{c}",
                individuals=members,
                mechanisms=budget.mechanisms,
            )
            recorded = time.perf_counter() - start
            _compose.cache_clear()
            start = time.perf_counter()
            total = book.total(fp)
            first = time.perf_counter() - start
            start = time.perf_counter()
            book.total(fp)
            again = time.perf_counter() - start
            start = time.perf_counter()
            LifetimeLedger(book.path).releases(fp)  # the unlinked reference: one fingerprint
            unlinked = time.perf_counter() - start
            print(
                f"{c:>6} {recorded:9.2f} {first:8.2f} {again:8.3f} {unlinked:11.4f} "
                f"{total.epsilon:8.3f} {total.releases:>8}"
            )
        print(f"ledger file: {book.path.stat().st_size / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, help="results.json or ledger.json of a release")
    parser.add_argument("--releases", type=int, default=5)
    parser.add_argument("--ids", type=int, default=200_000)
    parser.add_argument("--cohorts", type=int, default=10)
    args = parser.parse_args()
    start = time.perf_counter()
    composition(args.results, args.releases)
    scale(args.ids, args.cohorts)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"in all: {time.perf_counter() - start:.0f} s, peak {peak_gb:.2f} GB for the process")


if __name__ == "__main__":
    main()
