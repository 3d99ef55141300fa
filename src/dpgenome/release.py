"""The whole release behind ``dpgenome release`` / ``demo`` / ``sweep``.

ingest + QC + member/holdout split -> phenotype and genotype synthesis under one ledger ->
audits -> real vs synthetic GWAS and fidelity -> policy evaluation -> dossier -> gated export.

Caching: everything up to the fidelity metrics is stored in a work directory keyed by a hash
of the input cohort's content, the split, the synthesizer and audit configuration and the
dpgenome version. A re-run after a policy change (or to re-render) reuses it: nothing is
retrained, and the lifetime ledger charges nothing new (its release id is a hash of the
released data files, which are unchanged). A change that retrains (another seed, epsilon,
cohort) is a new release and is charged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import functools
import getpass
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from dpgenome import __version__
from dpgenome.audit import AuditConfig, run_audits
from dpgenome.budget import columns_typed_from_data
from dpgenome.bundle import load_signing_key, remove_dead_writers
from dpgenome.cohort import (
    Cohort,
    QCReport,
    Split,
    align_panel,
    analysis_subset,
    in_allele_order,
    public_allele_map,
    qc,
    require_separate_panel,
    split_members,
)
from dpgenome.config import ReleaseConfig, typed_replace
from dpgenome.dossier import render_dossier
from dpgenome.errors import ConfigError, DpgenomeError, InputError, ReleaseBlocked
from dpgenome.export import ExportResult, export_bundle, prepare_evaluation
from dpgenome.fidelity import CohortFidelity, cohort_fidelity
from dpgenome.findings import Evaluation
from dpgenome.gwas import GwasResult, linear_gwas, require_full_rank
from dpgenome.gwas_comparison import compare_gwas, gwas_rows
from dpgenome.io import detect_format, read_cohort, write_cohort
from dpgenome.io.files import check_writable, write_text_atomic
from dpgenome.io.pheno import find_pheno
from dpgenome.lifetime import (
    LifetimeLedger,
    default_db_path,
    distinct_ids,
    individuals_fingerprint,
)
from dpgenome.lmm import lmm_gwas
from dpgenome.phenoschema import (
    DeclaredSchema,
    read_pheno_schema,
    warn_values_encoded_as_missing,
    with_schema_types,
)
from dpgenome.policy import Override, Policy, load_policy, preflight
from dpgenome.release_id import (
    SYNTHETIC_FINGERPRINT,
    SYNTHETIC_HARDCALL_FINGERPRINT,
    synthetic_release_id,
)
from dpgenome.synthconfig import SynthConfig
from dpgenome.synthesize import SynthResult, synthesize

log = logging.getLogger(__name__)

#: each stage's share of a release's wall time, for the progress estimate, from the demo's
#: stage timings on the idle machine at stop 38 (ingest 11.7 s, synthesis 116.7 s, audits
#: 38.2 s, fidelity and its figures 13 s, policy, dossier and export a few seconds). The
#: shares were 0.08 / 0.50 / 0.22 / 0.12 / 0.03 / 0.05: the demo said 2 minutes were left
#: at 0:12 of 9:26 (beside other work)
STAGES: tuple[tuple[str, float], ...] = (
    ("ingest", 0.06),
    ("synthesize", 0.65),
    ("audit", 0.21),
    ("fidelity", 0.06),
    ("policy + dossier", 0.01),
    ("export", 0.01),
)
#: 3: the member/holdout split is drawn per individual (stop 41), not shuffled in strata
CACHE_VERSION = 3


@functools.cache
def code_digest(root: Path = Path(__file__).parent) -> str:
    """Digest of the package's Python sources (under ``root``): a cached stage computed by
    other code (an edited checkout, another version) is not reused."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


_PACKAGES = ("numpy", "pandas", "scipy", "torch", "opacus", "dp-accounting", "msprime", "jinja2")


# ---------------------------------------------------------------------------- progress


class Progress:
    """Per-stage progress on stderr: a bar, elapsed time and an estimate of what is left.

    ``echo`` is a callable taking a line (the CLI passes ``click.echo(err=True)``); the
    library itself never prints.
    """

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self.echo = echo
        self.weights = dict(STAGES)
        self.done_weight = 0.0
        self.start = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, note: str = "") -> Iterator[None]:
        t0 = time.perf_counter()
        self._line(name, "...", note)
        yield
        self.timings[name] = round(time.perf_counter() - t0, 3)
        self.done_weight += self.weights.get(name, 0.0)
        self._line(name, f"done in {self.timings[name]:.1f} s", "")

    def _line(self, name: str, what: str, note: str) -> None:
        if self.echo is None:
            return
        elapsed = time.perf_counter() - self.start
        frac = min(self.done_weight, 1.0)
        width = 20
        bar = "#" * round(frac * width)
        left = ""
        if 0 < frac < 1:
            left = f", ~{_clock(elapsed * (1 - frac) / frac)} left"
        extra = f" ({note})" if note else ""
        self.echo(f"[{bar:<{width}}] {_clock(elapsed)} elapsed{left} | {name} {what}{extra}")


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}:{s % 60:02d}"


# ---------------------------------------------------------------------------- outcome


@dataclass
class ReleaseOutcome:
    results: dict[str, Any]
    evaluation: Evaluation
    work_dir: Path
    dossier_path: Path
    export: ExportResult | None
    reused_cache: bool
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return str(self.evaluation.verdict)

    def summary(self) -> dict[str, Any]:  # its keys: SUMMARY_KEYS
        """The short final summary (also ``--json``): aggregates only."""
        res = self.results
        gw = res.get("fidelity", {}).get("gwas", {})
        th = gw.get("thresholds", {}).get("1e-08", {})
        attacks = res.get("audit", {}).get("attacks", {})
        led = res.get("ledger", {})
        override = None if self.export is None else self.export.override
        return {
            "verdict": self.verdict,
            "override": None if override is None else override.to_dict(),
            "failing_rules": [f.rule for f in self.evaluation.failing],
            "epsilon": led.get("epsilon"),
            "delta": led.get("delta"),
            "privacy": led.get(
                "label",
                "no formal privacy"
                if led.get("no_formal_privacy")
                else f"({led.get('epsilon')}, {led.get('delta')})-DP per individual",
            ),
            "snp_recall_1e-8": th.get("recall"),
            "snp_precision_1e-8": th.get("precision"),
            "loci_recovered": gw.get("loci", {}).get("recovered"),
            "loci_real": gw.get("loci", {}).get("real_loci"),
            "spurious_loci": gw.get("loci", {}).get("spurious"),
            "lambda_gc_synthetic": gw.get("lambda_gc", {}).get("synthetic"),
            "membership_auc": {k: v.get("auc") for k, v in attacks.items() if isinstance(v, dict)},
            "canary_epsilon_lower_bound": res.get("audit", {})
            .get("canary", {})
            .get("epsilon_lower_bound"),
            "dossier": str(self.dossier_path),
            "bundle": None if self.export is None else str(self.export.path),
            "reused_cache": self.reused_cache,
            "timings_s": self.timings,
            # what `dpgenome export WORK_DIR` takes to export this release under another
            # policy or an override
            "work_dir": str(self.work_dir),
        }


#: the keys of a release's summary (``--json``): a release refused before training has them
#: too, null where nothing was measured
SUMMARY_KEYS = (
    "verdict",
    "override",
    "failing_rules",
    "epsilon",
    "delta",
    "privacy",
    "snp_recall_1e-8",
    "snp_precision_1e-8",
    "loci_recovered",
    "loci_real",
    "spurious_loci",
    "lambda_gc_synthetic",
    "membership_auc",
    "canary_epsilon_lower_bound",
    "dossier",
    "bundle",
    "reused_cache",
    "timings_s",
    "work_dir",
)


# ---------------------------------------------------------------------------- stages


@dataclass
class Ingested:
    cohort: Cohort  # QC'd analysis subset (phenotype and covariates observed)
    split: Split
    members: Cohort
    public: Cohort | None
    qc: QCReport
    input_format: str
    input_hashes: dict[str, str]
    #: the lifetime ledger's key: the input's individuals (:func:`individuals_fingerprint`)
    fingerprint: str
    #: the input's sample ids as read, for the lifetime ledger's per-individual accounting
    #: (kept in memory only: the ledger stores keyed tokens of them)
    individuals: tuple[str, ...]
    #: how the synthetic map lists each SNP's alleles (``--allele-order``, resolved) and the
    #: public map it follows (``None``: the input's; :func:`dpgenome.cohort.public_allele_map`)
    allele_order: str = "input"
    allele_map: pd.DataFrame | None = None


def file_hashes(path: str | Path) -> dict[str, str]:
    """SHA-256 of every file of a cohort directory (provenance; names only, no content)."""
    root = Path(path)
    out: dict[str, str] = {}
    for p in sorted(root.iterdir()) if root.is_dir() else [root]:
        if p.is_file():
            h = hashlib.sha256()
            with p.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            out[p.name] = h.hexdigest()
    return out


def declared_schema(config: ReleaseConfig) -> DeclaredSchema | None:
    return None if config.pheno_schema is None else read_pheno_schema(config.pheno_schema)


def ingest(config: ReleaseConfig, *, input_hashes: dict[str, str] | None = None) -> Ingested:
    """``input_hashes``: the cohort's files' SHA-256 when the caller has them already."""
    declared = declared_schema(config)  # a bad schema file fails before the cohort is read
    raw = read_cohort(config.cohort)
    individuals = tuple(distinct_ids(raw.sample_ids))
    fingerprint = individuals_fingerprint(individuals)
    if declared is not None:
        raw = declared.apply(raw)
    pheno_config = synth_config(config).phenotypes
    # values outside the types the public schema fixes: an error naming the line, now
    raw = with_schema_types(raw, pheno_config)
    fmt = detect_format(config.cohort)
    panel = read_cohort(config.public_panel) if config.public_panel else None
    # under DP the SNPs kept are chosen from public data only (the panel's frequencies)
    cohort, report = qc(raw, dp=not config.no_formal_privacy, public=panel)
    cohort = analysis_subset(cohort, config.pheno, config.covariates, report)
    # each individual's side is their own draw: a guarantee about the members is then one
    # about the input cohort (a stratified shuffle moves others when one joins or leaves)
    split = split_members(cohort, holdout_fraction=config.holdout_fraction, seed=config.seed)
    members = cohort.take_samples(split.members)
    # a constant or redundant covariate would fail the GWAS only after training and audits
    where = find_pheno(Path(config.cohort)) if Path(config.cohort).is_dir() else None
    require_full_rank(cohort, config.pheno, config.covariates, file=where)
    require_full_rank(
        members,
        config.pheno,
        config.covariates,
        among="the {n} training members (the analysis samples less the audit holdout)",
        file=where,
    )
    # observed values the phenotype encoding reads as missing: a warning (counts only)
    warn_values_encoded_as_missing(members, pheno_config)
    public = None if panel is None else align_panel(panel, cohort.variants)
    if public is not None:  # members and holdout: the audits' non-members must not be in it
        require_separate_panel(public, cohort)
    # the synthetic map's allele order: an input order read off the genotypes fails now
    order, allele_map = public_allele_map(
        config.allele_order, raw, panel, private=not config.no_formal_privacy, file=raw.source
    )
    return Ingested(
        cohort,
        split,
        members,
        public,
        report,
        fmt,
        file_hashes(config.cohort) if input_hashes is None else input_hashes,
        fingerprint,
        individuals,
        order,
        allele_map,
    )


def synth_config(config: ReleaseConfig) -> SynthConfig:
    """The synthesizer configuration of a release; ``extra: {synth: {...}}`` in the release
    configuration overrides SynthConfig fields (tuned on simulated/public data only)."""
    base = SynthConfig(
        pheno=config.pheno,
        covariates=tuple(config.covariates),
        epsilon=config.epsilon,
        delta=None if isinstance(config.delta, str) else float(config.delta),
        seed=config.seed,
        n_synth=config.n_synthetic,
        secure_mode=config.secure_mode,
        ancestry_pcs=config.ancestry_pcs,
        genotype_missingness=config.genotype_missingness,
    )
    cfg = typed_replace(base, config.extra.get("synth", {}), "extra.synth")
    declared = declared_schema(config)
    if declared is None:
        return cfg
    return replace(cfg, phenotypes=replace(cfg.phenotypes, declared=declared))


def audit_config(config: ReleaseConfig) -> AuditConfig:
    base = AuditConfig(
        seed=config.seed,
        pheno=config.pheno,
        covariates=tuple(config.covariates),
        shadow_targets=config.shadow,
        canaries=config.canaries,
        claimed_epsilon=None if config.no_formal_privacy else config.epsilon,
        delta=1e-5 if isinstance(config.delta, str) else float(config.delta),
    )
    return typed_replace(base, config.extra.get("audit", {}), "extra.audit")


def gwas_model(lmm: bool) -> Callable[[Cohort, str, Sequence[str]], GwasResult]:
    """The GWAS a release runs on the members and on the synthetic cohort, the same on both
    sides: ordinary least squares, or with ``lmm`` the mixed model with leave-one-chromosome-
    out kinship (GEMMA ``-lmm``; the release configuration's ``lmm`` key)."""
    return functools.partial(lmm_gwas, loco=True) if lmm else linear_gwas


def holdout_baseline(fid: CohortFidelity, n_holdout: int) -> dict[str, Any]:
    """The cohort-level fidelity figures of the real holdout against the members: what a
    second real sample of the colony scores (at the holdout's size, so with more sampling
    noise than a synthetic cohort of the members' size), the reference a synthetic figure is
    read against. Aggregates only."""
    d = fid.to_dict()
    return {
        "n": n_holdout,
        "allele_frequency_correlation": d["allele_frequency_correlation"],
        "ld_decay_error": d["ld_decay_error"],
        "phenotype_correlation_error": d["phenotype_correlation_error"],
        "phenotype_strong_correlations_kept": d["phenotype_strong_correlations"]["kept"],
        "phenotype_marginal_error": d["phenotype_marginal_error"],
        "phenotype_missingness_error": d["phenotype_missingness"]["indicator_correlation_error"],
        "complete_rows": d["phenotype_missingness"]["complete_rows_synthetic"],
        "pca_variance_ratio_out_of_sample": d["pca"].get("variance_ratio_out_of_sample"),
        "inbreeding": d["heterozygosity"]["synthetic"]["inbreeding"],
        "hwe_failure_share": d["heterozygosity"]["synthetic"].get("hwe_failure_share"),
        "missing_call_share": d["missing_calls"]["synthetic"]["share"],
    }


def cache_key(ing: Ingested, config: ReleaseConfig) -> str:
    h = hashlib.sha256()
    parts = {
        "cache_version": CACHE_VERSION,
        "dpgenome": __version__,
        "code": code_digest(),
        "cohort": ing.cohort.fingerprint(),
        "individuals": ing.fingerprint,  # results.json carries it
        "public": None if ing.public is None else ing.public.fingerprint(),
        "split": ing.split.record(),
        "synth": synth_config(config).record(),
        "audit": _jsonable(audit_config(config).record()),
        "lmm": config.lmm,
        # the synthetic map's allele order (resolved) and the labels it follows
        "allele_order": ing.allele_order,
        "allele_map": None
        if ing.allele_map is None
        else hashlib.sha256(
            ing.allele_map[["id", "ref", "alt"]].astype(str).to_csv(index=False).encode()
        ).hexdigest(),
    }
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    return h.hexdigest()[:24]


def default_cache_dir() -> Path:
    env = os.environ.get("DPGENOME_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "dpgenome"


# ---------------------------------------------------------------------------- pipeline


def _train_fn(config: ReleaseConfig, public: Cohort | None) -> Callable[[Cohort, int], Cohort]:
    """How the shadow-model and canary audits retrain the real synthesizer."""

    def train(training: Cohort, seed: int) -> Cohort:
        cfg = replace(synth_config(config), seed=seed, n_synth=None)
        return synthesize(training, cfg, public).cohort

    return train


def compute(
    ing: Ingested, config: ReleaseConfig, progress: Progress
) -> tuple[dict[str, Any], dict[str, str], Cohort]:
    """Synthesis, audits and fidelity: the expensive, budget-spending part."""
    cfg = synth_config(config)
    with progress.stage("synthesize", f"epsilon={_eps_text(config.epsilon)}"):
        synth: SynthResult = synthesize(ing.members, cfg, ing.public, echo=progress.echo)
    ledger = synth.ledger.to_dict(float(config.delta))
    train_fn = _train_fn(config, ing.public) if (config.shadow or config.canaries) else None
    audit_dict, fidelity, figures = assess(ing, config, synth.cohort, ledger, progress, train_fn)
    results = {
        "cohort": {
            "n_samples": ing.cohort.n_samples,
            "n_variants": ing.cohort.n_variants,
            "n_phenotypes": len(ing.cohort.phenotypes.columns),
            "n_synthetic": synth.cohort.n_samples,
            "pheno": config.pheno,
            "covariates": list(config.covariates),
            "fingerprint": ing.fingerprint,
            # the individuals the lifetime ledger charges (before QC; n is public)
            "n_input": len(ing.individuals),
            "input_format": ing.input_format,
            "qc": ing.qc.to_dict(),
            "phenotype_types": _phenotype_types(ing.members, cfg),
        },
        "split": ing.split.record(),
        "ledger": ledger,
        "audit": audit_dict,
        "fidelity": fidelity,
        "synthesis": _jsonable({**synth.details, "allele_order": ing.allele_order}),
    }
    results["provenance"] = {"timings_s": {**progress.timings, **_prefixed(synth.timings)}}
    # the audits and the fidelity read the members' allele order; the files carry the public one
    return results, figures, in_allele_order(synth.cohort, ing.allele_map)


def assess(
    ing: Ingested,
    config: ReleaseConfig,
    synthetic: Cohort,
    ledger: dict[str, Any],
    progress: Progress,
    train_fn: Callable[[Cohort, int], Cohort] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The audits and the fidelity of ``synthetic`` (in the members' allele order) against
    the ingested cohort: results.json's ``audit`` and ``fidelity`` sections and the figures.
    ``train_fn`` retrains the synthesizer for the shadow-model and canary audits (``None``:
    not run). Deterministic given the configuration's seed apart from those two, which is
    what lets an auditor recompute a release's figures (:mod:`dpgenome.recheck`)."""
    compared, rows = gwas_rows(ing.members, synthetic, config.seed)
    # the members' design passed at ingest; the synthetic one is checked before the audits
    require_full_rank(
        compared,
        config.pheno,
        config.covariates,
        among="its {n} samples the GWAS comparison analyses",
        subject="the synthetic cohort's design",
        note=(
            " (the members' design has full rank, checked at ingest: the synthesizer lost "
            "the covariate's variation, as a rare value can be lost at this epsilon)"
        ),
    )
    with progress.stage("audit"):
        # the canary audit checks the epsilon the accountants actually certify
        claimed = ledger.get("epsilon")
        audit = run_audits(
            ing.cohort,
            ing.split,
            synthetic,
            replace(
                audit_config(config),
                claimed_epsilon=None if claimed is None else float(claimed),
                delta=float(ledger["delta"]),
            ),
            train_fn=train_fn,
            public=ing.public,
        )
    with progress.stage("fidelity"):
        gwas = gwas_model(config.lmm)
        real_gwas = gwas(ing.members, config.pheno, config.covariates)
        synth_gwas = gwas(compared, config.pheno, config.covariates)
        comparison = compare_gwas(real_gwas, synth_gwas)
        focus = (config.pheno, *config.covariates)
        cfid = cohort_fidelity(ing.members, synthetic, seed=config.seed, focus=focus)
        holdout = ing.cohort.take_samples(ing.split.holdout)
        baseline = holdout_baseline(
            cohort_fidelity(ing.members, holdout, seed=config.seed, focus=focus), holdout.n_samples
        )
    fidelity = {
        "gwas": comparison.to_dict() | {"rows": rows},
        **cfid.to_dict(),
        "holdout_baseline": baseline,
    }
    figures = {
        "manhattan": comparison.manhattan_svg(),
        "qq": comparison.qq_svg(),
        "allele_frequency": cfid.af_scatter_svg(),
        "ld_decay": cfid.ld_decay_svg(),
        "pca": cfid.pca_svg(),
        "phenotype_correlation": cfid.phenotype_correlation_svg(),
    }
    return audit.to_dict(), fidelity, figures


def _phenotype_types(members: Cohort, cfg: SynthConfig) -> dict[str, Any]:
    """What fixes the phenotype columns' types: the declaration file and the columns nothing
    public types (names only; the policy key privacy.max_phenotype_columns_typed_from_data)."""
    declared = cfg.phenotypes.declared
    from_data = columns_typed_from_data(members, cfg)
    return {
        "declared": None if declared is None else declared.record(),
        "typed_from_data": from_data,
        "n_typed_from_data": len(from_data),
    }


def _prefixed(timings: dict[str, float]) -> dict[str, float]:
    return {f"synthesize/{k}": round(float(v), 3) for k, v in timings.items()}


def provenance(config: ReleaseConfig, ing: Ingested, key: str, reused: bool) -> dict[str, Any]:
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {
        "dpgenome_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "config": config.synthesis_dict(),
        "seeds": {"split": ing.split.seed, "synthesis": config.seed, "audit": config.seed},
        "input_files": ing.input_hashes,
        # the guarantee takes the panel as public: which panel, so an auditor can check it
        "public_panel_files": None
        if config.public_panel is None
        else file_hashes(config.public_panel),
        "cache": {"key": key, "reused": reused},
        # who ran this release, for the signers (the account and machine, not a person's data)
        "run_by": _run_by(),
    }


def _run_by() -> dict[str, str]:
    """The operating-system account and the host that ran a release ("unknown" where the
    system does not say)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no password-database entry
        user = "unknown"
    return {"user": user, "host": socket.gethostname() or "unknown"}


def run_release(
    config: ReleaseConfig,
    *,
    echo: Callable[[str], None] | None = None,
    lifetime: LifetimeLedger | None = None,
    check_first: bool = True,
) -> ReleaseOutcome:
    """Run the whole release; raises :class:`dpgenome.errors.ReleaseBlocked` (exit 3) after
    writing the explanatory dossier into the work directory when the policy blocks it, or
    before any training when the policy would block it whatever it produced (``check_first``;
    the demo turns it off to show the whole release, gate included)."""
    progress = Progress(echo)
    policy = load_policy(config.policy)  # fail early on a bad policy, before any training
    synth_config(config)  # and on bad extra settings
    audit_config(config).validate()
    out = Path(config.out)
    check_writable(out, "output directory")
    if out.exists() and any(out.iterdir()):
        raise ConfigError("the output directory exists and is not empty", file=out)
    if (config.override_reason is None) != (config.signer is None):
        raise ConfigError("an override needs both --override-reason and --signer")
    if config.signing_key:
        load_signing_key(config.signing_key)  # a bad key found now, not after the training

    with progress.stage("ingest"):
        ing = ingest(config)
        config = config.resolve(ing.members.n_samples)
    key = cache_key(ing, config)
    work = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    work = work / key
    reused = _complete(work)
    if lifetime is None:
        lifetime = LifetimeLedger(config.lifetime_db or default_db_path())
    # where the cache and the ledger go must be usable before minutes of training
    # (checked, not created: a release refused before training writes nothing)
    check_writable(work.parent, "stage cache folder", into=True)
    lifetime.check_writable()
    # an override the policy allows may export whatever the rules say: no certain BLOCK
    overridable = config.override_reason is not None and policy.overrides_allowed
    if check_first and not reused and not overridable:
        _preflight(policy, config, ing, lifetime)
    if reused:
        if echo:
            echo(f"reusing the trained release in {work} (no retraining, no new budget)")
        results, figures = _load_cached(work, config.formats)
        progress.done_weight += sum(
            w for n, w in STAGES if n in {"synthesize", "audit", "fidelity"}
        )
    else:
        results, figures, synthetic = compute(ing, config, progress)
        if not _write_work(work, results, figures, synthetic, config.formats):
            # another run of the same configuration cached its synthesis first: that one is
            # the release (this run's, never shown or exported, is discarded)
            if echo:
                echo(f"another run cached this release meanwhile: using it ({work})")
            results, figures = _load_cached(work, config.formats)
    results["provenance"] = {
        **provenance(config, ing, key, reused),
        "timings_s": results.get("provenance", {}).get("timings_s", {}),
    }

    packed = work_release(work, results["cohort"]["fingerprint"])
    assert packed is not None  # written above
    files, release_id = packed
    # results.json names the synthetic cohort it describes: that fixes the release id
    section, key = SYNTHETIC_FINGERPRINT
    results.setdefault(section, {})[key] = (work / _SYNTHETIC_FP).read_text().strip()
    if (work / _HARDCALL_FP).is_file():  # what its PLINK files read back as
        section, key = SYNTHETIC_HARDCALL_FINGERPRINT
        results[section][key] = (work / _HARDCALL_FP).read_text().strip()
    override = None
    if config.override_reason and config.signer:
        override = Override(
            config.override_reason,
            config.signer,
            dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
    with progress.stage("policy + dossier"):
        evaluation = prepare_evaluation(
            results,
            policy,
            lifetime=lifetime,
            release_id=release_id,
            individuals=ing.individuals,
        )
        dossier_path = work / "dossier.html"
        dossier = render_dossier(results, evaluation, figures, override=override)
        write_text_atomic(
            work / "results.json", json.dumps(results, indent=1, default=json_default)
        )
    # the dossier shows the verdict: it is written once the export has charged what the
    # policy charges (a run killed before that has shown nothing, and a re-run charges it)
    with progress.stage("export"):
        try:
            exported = export_bundle(
                out,
                files=files,
                results=results,
                policy_path=config.policy,
                figures=figures,
                config=config.synthesis_dict(),
                override=override,
                signing_key=config.signing_key,
                lifetime=lifetime,
                release_id=release_id,
                individuals=ing.individuals,
            )
        except ReleaseBlocked as err:
            write_text_atomic(dossier_path, dossier)
            err.message += f"\nThe dossier explaining the verdict: {dossier_path}"
            err.dossier = dossier_path
            if err.evaluation is not None:
                err.outcome = ReleaseOutcome(
                    results, err.evaluation, work, dossier_path, None, reused, progress.timings
                )
            err.args = (err.render(),)
            raise
        write_text_atomic(dossier_path, dossier)
    return ReleaseOutcome(
        results, exported.evaluation, work, out / "dossier.html", exported, reused, progress.timings
    )


def _preflight(
    policy: Policy, config: ReleaseConfig, ing: Ingested, lifetime: LifetimeLedger
) -> None:
    """Refuse, before any training, a release ``policy`` would block whatever it produced
    (:func:`dpgenome.policy.preflight`): nothing is trained, exported or charged."""
    spent = None
    if policy.max_lifetime_epsilon is not None:
        spent = lifetime.total(ing.fingerprint, individuals=ing.individuals).epsilon
    problems = preflight(
        policy,
        epsilon=config.epsilon,
        delta=float(config.delta),
        secure=bool(config.secure_mode),
        n_members=ing.members.n_samples,
        n_holdout=len(ing.split.holdout),
        lifetime_spent=spent,
    )
    if problems:
        err = ReleaseBlocked(
            f"policy {policy.name!r} would block this release whatever it produced; nothing "
            "was trained, exported or charged. Failing rules:\n  " + "\n  ".join(problems),
            file=policy.path,
        )
        err.summary = dict.fromkeys(SUMMARY_KEYS) | {
            "verdict": "BLOCK",
            "refused_before_training": True,
            "failing_rules": [p.rule for p in problems],
            "reasons": [str(p) for p in problems],
            "epsilon_asked": None if math.isinf(config.epsilon) else config.epsilon,
            "delta_asked": config.delta,
            "dossier": None,
            "bundle": None,
        }
        raise err


#: the synthetic cohort's content fingerprint, beside the cached formats
_SYNTHETIC_FP = "synthetic.fingerprint"
#: the same with the dosages rounded to hard calls (what PLINK files hold)
_HARDCALL_FP = "synthetic.hardcall-fingerprint"


def work_release(work: Path, fingerprint: str) -> tuple[dict[str, Path], str] | None:
    """For a work directory of ``dpgenome release`` (``dpgenome export`` of one) of the
    source cohort ``fingerprint``: the bundle's data files, ``synthetic/...`` as ``release``
    packs them (not the cache's own records or its lossless ``synthetic-source`` copy), and
    the release id (:func:`dpgenome.release_id.synthetic_release_id`), so exporting it again
    is the same lifetime entry. ``None`` for any other directory."""
    fp = work / _SYNTHETIC_FP
    if not fp.is_file() or not (work / "synthetic").is_dir():
        return None
    files = {
        f"synthetic/{p.relative_to(work / 'synthetic').as_posix()}": p
        for p in sorted((work / "synthetic").rglob("*"))
        if p.is_file()
    }
    return files, synthetic_release_id(fingerprint, fp.read_text().strip())


def _synthetic_dirs(root: Path, formats: Sequence[str]) -> dict[str, Path]:
    """Where each format's synthetic files go under ``root`` (one format: ``root`` itself)."""
    return {fmt: root / fmt if len(formats) > 1 else root for fmt in formats}


#: formats that hold the synthetic dosages exactly (PLINK's .bed holds hard calls)
_LOSSLESS = ("parker", "vcf")


def _write_synthetic(root: Path, synthetic: Cohort, formats: Sequence[str], exact: Path) -> None:
    """The synthetic cohort in each of ``formats`` under ``root``, the list of them beside it
    (``<root>.formats.json``) and, when none holds the dosages exactly and ``exact`` does not
    exist yet, a Parker copy there for a later run asking for another format."""
    for fmt, target in _synthetic_dirs(root, formats).items():
        write_cohort(synthetic, target, fmt, name="synthetic")
    (root.parent / f"{root.name}.formats.json").write_text(json.dumps(list(formats)))
    if not set(formats) & set(_LOSSLESS) and not exact.is_dir():
        write_cohort(synthetic, exact, "parker", name="synthetic")


def _load_cached(work: Path, formats: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """A cached release's results and figures, its synthetic cohort in ``formats``
    (:func:`_match_formats`); a damaged entry (a file missing, unreadable or not what it
    should be) is an :class:`InputError` saying how to recover, never a traceback."""
    try:
        results = json.loads((work / "results.json").read_text())
        cohort = results.get("cohort") if isinstance(results, dict) else None
        if not isinstance(cohort, dict) or "fingerprint" not in cohort:
            raise ValueError("results.json holds no cohort fingerprint")
        figures = {p.stem: p.read_text() for p in sorted((work / "figures").glob("*.svg"))}
        _match_formats(work, formats)
    except (OSError, ValueError, KeyError, TypeError, DpgenomeError) as err:
        why = err.message if isinstance(err, DpgenomeError) else f"{type(err).__name__}: {err}"
        raise InputError(
            f"the cached release is damaged ({why}). If another release of it is running (it "
            "may be writing it in another format), wait for it and run again; otherwise "
            "remove this folder to train again (a new synthesis, charged as a new release)",
            file=work,
        ) from None
    return results, figures


def _match_formats(work: Path, formats: Sequence[str]) -> None:
    """A reused release asked in other formats than it was cached in: the cached synthetic
    cohort is written again in those, from a copy that holds it exactly (a format of the
    cache, or its ``synthetic-source`` when it holds only PLINK's hard calls), replacing the
    cached files; nothing is retrained."""
    record = work / "synthetic.formats.json"
    cached = json.loads(record.read_text())
    if cached == list(formats):
        return
    root, exact = work / "synthetic", work / "synthetic-source"
    lossless = [f for f in cached if f in _LOSSLESS]
    synthetic = read_cohort(_synthetic_dirs(root, cached)[lossless[0]] if lossless else exact)
    remove_dead_writers(work, "synthetic.tmp-*", ".tmp-")  # a killed conversion's copies
    tmp = work / f"synthetic.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    _write_synthetic(tmp, synthetic, formats, exact)
    # no record while the folders are swapped: a run killed there leaves an entry named as
    # damaged (_load_cached), never one whose record lists formats it does not hold
    record.unlink()
    shutil.rmtree(root)
    tmp.rename(root)
    (work / f"{tmp.name}.formats.json").replace(record)


def _write_work(
    work: Path,
    results: dict[str, Any],
    figures: dict[str, str],
    synthetic: Cohort,
    formats: Sequence[str],
) -> bool:
    """Write the cache atomically (temporary sibling, then rename). Created readable by its
    owner only: it holds results.json and the dossier, exact aggregates of the members.
    False, writing nothing, when another run completed the same entry meanwhile (an
    incomplete one is replaced): a run reading that entry never has it removed under it."""
    work.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_dead_writers(work.parent, f"{work.name}.tmp-*", ".tmp-")  # killed runs' copies
    tmp = work.with_name(work.name + f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(mode=0o700)
    _write_synthetic(tmp / "synthetic", synthetic, formats, tmp / "synthetic-source")
    (tmp / _SYNTHETIC_FP).write_text(synthetic.fingerprint())
    (tmp / _HARDCALL_FP).write_text(synthetic.hard_call_fingerprint())
    (tmp / "figures").mkdir()
    for name, svg in figures.items():
        (tmp / "figures" / f"{name}.svg").write_text(svg, encoding="utf-8")
    (tmp / "results.json").write_text(json.dumps(results, indent=1, default=json_default))
    for _ in range(3):
        try:
            tmp.rename(work)
            return True
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if _complete(work):  # another run's whole entry: it is the release
            break
        # an incomplete entry: moved aside (never removed in place), unless another run
        # completed it meanwhile, which then stays the entry
        aside = work.with_name(f"{work.name}.tmp-{os.getpid()}-aside")
        try:
            work.rename(aside)
        except FileNotFoundError:
            continue
        if _complete(aside):
            with contextlib.suppress(OSError):
                aside.rename(work)
            break
        shutil.rmtree(aside, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return False


def _complete(work: Path) -> bool:
    """Whether the cache entry ``work`` holds a whole synthesis (its results, its synthetic
    cohort and that cohort's fingerprint)."""
    return all((work / n).exists() for n in ("results.json", "synthetic", _SYNTHETIC_FP))


def _eps_text(eps: float) -> str:
    return "inf (no formal privacy)" if math.isinf(eps) else f"{eps:g}"


def json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=json_default))
