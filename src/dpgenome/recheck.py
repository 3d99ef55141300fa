"""An auditor's recomputation of a release's figures from its bundle and the real cohort.

``dpgenome verify`` checks that a bundle is the one that was exported and that its verdict
follows from the figures ``results.json`` records; it trusts the figures. An auditor who
holds the real cohort can also recompute them: :func:`recheck_bundle` ingests the cohort
with the release's recorded configuration (the same QC and the same member/holdout split,
checked against the recorded input hashes and member-id hash), reads the bundle's
synthetic cohort, runs the audits and the GWAS fidelity again through the same code as
``dpgenome release`` (:func:`dpgenome.release.assess`) and compares every recorded number.

Everything in those sections is a deterministic function of the cohort, the synthetic
cohort and the configuration's seed, except what retrains the synthesizer: the shadow-model
attack and the canary audit draw fresh DP noise, so they are not recomputed (listed as
skipped). Nothing here spends privacy budget: the synthetic cohort is already released, and
the figures are the aggregates the dossier already shows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dpgenome.bundle import read_bundle_json
from dpgenome.cohort import Cohort, harmonise_alleles
from dpgenome.config import ReleaseConfig
from dpgenome.errors import InputError
from dpgenome.io import detect_format, read_cohort

#: recorded figures whose recomputation needs the synthesizer retrained (fresh DP noise),
#: or that measure this machine rather than the data
NOT_RECOMPUTED = {
    "audit.canary": "the canary audit retrains the synthesizer with fresh DP noise",
    "audit.attacks.shadow": "the shadow-model attack retrains the synthesizer with fresh DP noise",
    "audit.timings_s": "timings measure the machine",
}
#: figures an older version recorded that this one no longer computes: reported as not
#: recomputed, with why, rather than as a difference
_P90 = (
    "the 90th percentile of the individuals' missing-call shares (one member's own share) is "
    "no longer computed: individuals_over_5pct, the share missing over 5% of their calls, "
    "replaced it"
)
RETIRED = {
    "fidelity.missing_calls.real.individual_share_p90": _P90,
    "fidelity.missing_calls.synthetic.individual_share_p90": _P90,
}
#: relative tolerance of a recomputed float (another BLAS or thread count moves the last bits)
RTOL = 1e-6
#: the synthetic cohort's formats, best first: Parker text and VCF hold its dosages exactly
_READ_ORDER = ("parker", "vcf", "plink")


@dataclass
class Recheck:
    """What :func:`recheck_bundle` compared. ``ok`` when no recorded figure differs."""

    cohort: str
    synthetic_format: str
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "cohort": self.cohort,
            "synthetic_format": self.synthetic_format,
            "figures_checked": self.checked,
            "ok": self.ok,
            "mismatches": list(self.mismatches),
            "skipped": dict(self.skipped),
        }


def recheck_bundle(
    bundle: str | Path,
    cohort: str | Path,
    *,
    public_panel: str | Path | None = None,
    pheno_schema: str | Path | None = None,
) -> Recheck:
    """Recompute the audits and the fidelity of the release in ``bundle`` (which should
    verify first: :func:`dpgenome.verify.verify_bundle`) from the real ``cohort`` it was
    made from and, when the release used them, its public panel and phenotype schema (by
    default the paths the configuration records). Raises :class:`InputError` when the
    inputs are not the release's (another cohort, panel or split). That the synthetic files
    are the synthetic cohort the results describe is ``verify``'s check
    (:func:`dpgenome.release_id.synthetic_mismatches`)."""
    from dpgenome.release import Progress, assess, ingest  # release imports the exporter

    root = Path(bundle).expanduser()
    results = _results(root)
    provenance = results.get("provenance") or {}
    recorded_config = provenance.get("config") if isinstance(provenance, Mapping) else None
    if not isinstance(recorded_config, Mapping):
        raise InputError("results.json records no configuration to recompute with", file=root)
    config = _config(recorded_config, cohort, public_panel, pheno_schema, root)
    # the files first: the ingest's panel checks would otherwise speak for another cohort
    ing = ingest(config, input_hashes=_same_files(provenance, config))
    config = config.resolve(ing.members.n_samples)
    _same_inputs(ing, results, provenance, config)
    synthetic, fmt = _synthetic(root)
    check = Recheck(str(Path(cohort)), fmt)
    if fmt == "plink":  # the figures were computed on the exact dosages
        check.skipped["audit"] = check.skipped["fidelity"] = (
            "the bundle holds PLINK files only, whose .bed keeps hard calls: the figures, "
            "computed on the exact dosages, cannot be recomputed from them"
        )
        return check
    # the audits and the fidelity read the members' allele order (the files carry the public)
    synthetic = harmonise_alleles(synthetic, ing.members.variants, what="synthetic")
    ledger = results.get("ledger")
    if not isinstance(ledger, Mapping) or "delta" not in ledger:
        raise InputError("results.json has no privacy ledger with a delta", file=root)
    audit, fidelity, _ = assess(ing, config, synthetic, dict(ledger), Progress(None))
    for section, now in (("audit", audit), ("fidelity", fidelity)):
        _compare(check, section, results.get(section), now)
    return check


def _results(root: Path) -> dict[str, Any]:
    path = root / "results.json"
    try:
        data = read_bundle_json(path.read_bytes())
    except FileNotFoundError:
        raise InputError("not a release bundle: no results.json", file=root) from None
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError too
        raise InputError(f"cannot be read ({err})", file=path) from None
    if not isinstance(data, dict):
        raise InputError("is not a JSON object", file=path)
    return data


def _config(
    recorded: Mapping[str, Any],
    cohort: str | Path,
    public_panel: str | Path | None,
    pheno_schema: str | Path | None,
    root: Path,
) -> ReleaseConfig:
    """The release's configuration with the auditor's paths in place of the recorded ones."""
    data = dict(recorded)
    data.update(cohort=str(cohort), policy="", out=str(root))
    for key, given in (("public_panel", public_panel), ("pheno_schema", pheno_schema)):
        if given is not None:
            data[key] = str(given)
        elif data.get(key) and not Path(str(data[key])).exists():
            option = key.replace("_", "-")
            raise InputError(
                f"the release used {key} {data[key]!r}, which is not there: give it with "
                f"--{option}",
                file=root / "results.json",
            )
    if data.get("epsilon") is None:
        data["epsilon"] = math.inf
    config = ReleaseConfig.from_mapping(data, source=str(root / "results.json"))
    # no sampling here: secure mode only names how the release drew its noise
    return replace(config, secure_mode=bool(recorded.get("secure_mode")))


def _same_files(provenance: Mapping[str, Any], config: ReleaseConfig) -> dict[str, str]:
    """The auditor's cohort and panel files must be the release's (their SHA-256), checked
    before anything reads them: another cohort is named as such, not by the panel's SNPs
    it lacks. Returns the cohort files' hashes (for the ingest)."""
    from dpgenome.release import file_hashes

    recorded_files = provenance.get("input_files")
    given = file_hashes(config.cohort)
    if isinstance(recorded_files, Mapping) and dict(recorded_files) != given:
        differ = sorted(
            name
            for name in set(recorded_files) | set(given)
            if recorded_files.get(name) != given.get(name)
        )
        raise InputError(
            "is not the cohort this release was made from: its files' SHA-256 differ from "
            f"those results.json records ({', '.join(differ)})",
            file=config.cohort,
        )
    panel = provenance.get("public_panel_files")
    if isinstance(panel, Mapping) and config.public_panel:
        if dict(panel) != file_hashes(config.public_panel):
            raise InputError(
                "is not the public panel this release used (its files' SHA-256 differ)",
                file=config.public_panel,
            )
    return given


def _same_inputs(
    ing: Any, results: Mapping[str, Any], provenance: Mapping[str, Any], config: ReleaseConfig
) -> None:
    """The auditor's individuals and split must be the release's (files: :func:`_same_files`)."""
    cohort = results.get("cohort") or {}
    if isinstance(cohort, Mapping) and cohort.get("fingerprint") not in (None, ing.fingerprint):
        raise InputError(
            "is not the cohort this release was made from (another set of individuals)",
            file=config.cohort,
        )
    split = results.get("split")
    if isinstance(split, Mapping) and split != ing.split.record():
        raise InputError(
            "splits into other members and holdout than the release recorded (another seed or "
            "holdout fraction, or other QC)",
            file=config.cohort,
        )


def _synthetic(root: Path) -> tuple[Cohort, str]:
    """The bundle's synthetic cohort, from its most exact format."""
    base = root / "synthetic"
    candidates = [(base / fmt, fmt) for fmt in _READ_ORDER if (base / fmt).is_dir()]
    if not candidates:
        if not base.is_dir():
            raise InputError("not a release bundle: no synthetic/ directory", file=root)
        candidates = [(base, detect_format(base))]
    path, fmt = candidates[0]
    return read_cohort(path), fmt


def _compare(check: Recheck, path: str, recorded: Any, now: Any) -> None:
    """Every leaf of ``recorded`` against ``now``: numbers to :data:`RTOL`, the rest exactly."""
    for where, why in NOT_RECOMPUTED.items():
        if path == where:
            if recorded is not None:
                check.skipped[path] = why
            return
    if isinstance(recorded, Mapping):
        if not isinstance(now, Mapping):
            check.mismatches.append(f"{path}: recorded a table, recomputed {_show(now)}")
            return
        for key in recorded:
            sub = f"{path}.{key}"
            if key not in now and sub in RETIRED:
                check.skipped[sub] = RETIRED[sub]
                continue
            if key not in now and sub not in NOT_RECOMPUTED:
                check.mismatches.append(f"{sub}: recorded, but not recomputed")
                continue
            _compare(check, sub, recorded[key], now.get(key))
        return
    if isinstance(recorded, list):
        if not isinstance(now, list) or len(now) != len(recorded):
            check.mismatches.append(f"{path}: recorded {_show(recorded)}, recomputed {_show(now)}")
            return
        for i, (a, b) in enumerate(zip(recorded, now, strict=True)):
            _compare(check, f"{path}[{i}]", a, b)
        return
    check.checked += 1
    if not _same(recorded, now):
        check.mismatches.append(f"{path}: recorded {_show(recorded)}, recomputed {_show(now)}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-12)
    return bool(a == b)


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
