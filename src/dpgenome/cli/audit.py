"""``dpgenome audit COHORT --synthetic SYNTH --holdout IDS.txt --out DIR``: privacy audits."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dpgenome.cli.options import SEED
from dpgenome.errors import CohortError, ConfigError, InputError
from dpgenome.io.files import write_json_atomic

if TYPE_CHECKING:
    from dpgenome.cohort import Cohort

log = logging.getLogger(__name__)


def _read_cohort(path: str) -> Cohort:
    from dpgenome.io import read_cohort

    return read_cohort(path)


def aligned_panel(panel: Cohort, real: Cohort, synthetic: Cohort, path: str) -> Cohort:
    """The public panel on the SNPs it shares (by id) with the real and the synthetic cohort,
    in the real cohort's order, its alleles harmonised with the real cohort's by
    :func:`dpgenome.cohort.align_panel` as in ``release``/``synthesize``: a SNP listed with
    its two alleles the other way round is flipped, other alleles (another strand or build)
    are a :class:`~dpgenome.errors.CohortError` naming the panel ``path``.

    Unlike a release, the audit does not need the panel to cover every SNP: its public
    control uses the distance SNPs the panel has (and reports NOT RUN on too few), so only
    the shared SNPs, the only ones the control can use, are aligned."""
    import numpy as np
    import pandas as pd

    from dpgenome.cohort import align_panel, require_separate_panel

    panel_ids = pd.Index(panel.variants["id"].astype(str))
    if panel_ids.has_duplicates:
        dup = panel_ids[panel_ids.duplicated()][0]
        raise CohortError(f"the public panel lists SNP {dup!r} twice", file=path)
    real_ids = real.variants["id"].astype(str)
    synth_ids = set(synthetic.variants["id"].astype(str))
    shared = (real_ids.isin(set(panel_ids)) & real_ids.isin(synth_ids)).to_numpy(dtype=bool)
    if not shared.any():
        raise CohortError(
            "the public panel shares no SNP (by id) with the cohort and the synthetic cohort: "
            "its control cannot run (leave --public-panel out to audit without it)",
            file=path,
        )
    try:
        aligned = align_panel(panel, real.variants.loc[shared].reset_index(drop=True))
        # as release and synthesize: a panel holding members would be a control against
        # the members themselves
        require_separate_panel(aligned, real.take_variants(np.flatnonzero(shared)))
    except CohortError as err:
        raise CohortError(err.message, file=path) from err
    return aligned


def read_holdout_ids(path: str) -> tuple[list[str], list[int]]:
    """``(ids, lines)``: one id per line (and the line it is on); blank lines and lines
    starting with ``#`` are skipped."""
    from dpgenome.io.files import check_utf8, strip_bom

    try:
        data = strip_bom(Path(path).read_bytes())
    except OSError as err:
        raise InputError(
            f"cannot read the holdout id list: {err.strerror or err}", file=path
        ) from None
    check_utf8(data, Path(path))  # names the line of a bad byte, quotes nothing
    text = data.decode("utf-8")
    ids, lines = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(line.split()) > 1:
            raise InputError(
                f"expected one id per line, got {len(line.split())} fields", file=path, line=number
            )
        ids.append(line)
        lines.append(number)
    if not ids:
        raise InputError("the holdout id list is empty", file=path)
    return ids, lines


def check_trained_without(synthetic_path: str, holdout_path: str, n_ids: int) -> None:
    """A synthetic cohort written by ``dpgenome synthesize`` records how many ids its
    ``--holdout`` left out (``synthesis.json``): one that trained on every sample has no
    non-members, and an audit against any holdout would measure members against members
    (its AUCs near 0.5 would read as "no leak"). Refused; a count that differs from the
    list's is warned. A synthetic cohort without that record (a release bundle's) passes."""
    record = Path(synthetic_path) / "synthesis.json"
    if not record.is_file():
        return
    try:
        listed = json.loads(record.read_text(encoding="utf-8")).get("holdout_ids_listed", 0)
    except (OSError, ValueError, AttributeError):
        return  # not a record of ours: nothing to check against
    if not listed:
        raise ConfigError(
            "the synthetic cohort was trained on every QC-passing sample of its cohort "
            f"(`dpgenome synthesize` without --holdout, says {record.name}): the ids of "
            f"{holdout_path} were members, and an audit against them would compare members "
            "with members; synthesize with `--holdout` this list, or audit a release",
            file=record,
        )
    if listed != n_ids:
        log.warning(
            "%s: the synthetic cohort held out %d ids, %s lists %d: is it the same list?",
            record,
            listed,
            holdout_path,
            n_ids,
        )


@click.command()
@click.argument("cohort", type=click.Path(exists=True))
@click.option(
    "--synthetic",
    "synthetic_path",
    required=True,
    type=click.Path(exists=True),
    help="The synthetic cohort to audit (any format dpgenome reads).",
)
@click.option(
    "--holdout",
    "holdout_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Real ids NOT used for training, one per line; every other real sample is a member.",
)
@click.option(
    "--pheno",
    default=None,
    help="Phenotype audited beside genotypes (default: every shared column).",
)
@click.option(
    "--covar", "covars", multiple=True, help="Covariate known to the attacker (repeatable)."
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output directory; its audit.json is written atomically.",
)
@click.option(
    "--shadow",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Shadow-model attack targets (0 = NOT RUN); needs the synthesizer: `dpgenome release`.",
)
@click.option(
    "--seed",
    type=SEED,
    default=0,
    show_default=True,
    help="Seed of every random choice.",
)
@click.option(
    "--bootstrap",
    "n_bootstrap",
    type=click.IntRange(min=20),
    default=200,
    show_default=True,
    help="Bootstrap replicates of the AUC confidence intervals.",
)
@click.option(
    "--max-snps",
    type=click.IntRange(min=10),
    default=10_000,
    show_default=True,
    help="SNPs (seeded random subset) used for distances, PCA and attribute inference.",
)
@click.option(
    "--max-snps-kinship",
    type=click.IntRange(min=100),
    default=20_000,
    show_default=True,
    help="SNPs used for KING-robust kinship.",
)
@click.option(
    "--public-panel",
    default=None,
    type=click.Path(exists=True),
    help="The public reference panel the synthesizer learnt from: adds the negative control "
    "(DCR AUC and share against the panel, and the synthetic cohort's excess over it).",
)
@click.option(
    "--claimed-epsilon",
    type=click.FloatRange(min=0),
    default=None,
    help="The accountant's epsilon, recorded beside the audit.",
)
def audit(
    cohort: str,
    synthetic_path: str,
    holdout_path: str,
    pheno: str | None,
    covars: tuple[str, ...],
    out_dir: str,
    shadow: int,
    seed: int,
    n_bootstrap: int,
    max_snps: int,
    max_snps_kinship: int,
    claimed_epsilon: float | None,
    public_panel: str | None,
) -> None:
    """Audit the synthetic cohort (--synthetic) against the real COHORT: membership inference
    (DCR, DOMIAS density ratio, allele-frequency likelihood ratio), nearest-neighbour and
    kinship leakage, attribute inference. Writes aggregates only (no ids, no per-record
    values) to audit.json in --out. The synthetic cohort must not have trained on the
    --holdout ids (`dpgenome synthesize --holdout` the same list). The shadow-model attack
    and the canary audit retrain the synthesizer and run inside `dpgenome release`; here
    they are reported NOT RUN."""
    from dpgenome.audit import AuditConfig, run_audits
    from dpgenome.cohort import split_from_holdout_ids

    if shadow > 0:
        raise ConfigError(
            f"--shadow {shadow}: the shadow-model attack retrains the synthesizer, which "
            "`dpgenome audit` does not have (it audits a finished synthetic cohort); run it "
            "through `dpgenome release`, or use --shadow 0"
        )
    config = AuditConfig(
        seed=seed,
        n_bootstrap=n_bootstrap,
        pheno=pheno,
        covariates=tuple(covars),
        max_snps=max_snps,
        max_snps_kinship=max_snps_kinship,
        claimed_epsilon=claimed_epsilon,
    ).validate()
    ids, lines = read_holdout_ids(holdout_path)
    check_trained_without(synthetic_path, holdout_path, len(ids))
    real = _read_cohort(cohort)
    split = split_from_holdout_ids(real, ids, file=holdout_path, lines=lines)
    synthetic = _read_cohort(synthetic_path)
    public = None
    if public_panel is not None:
        public = aligned_panel(_read_cohort(public_panel), real, synthetic, public_panel)
    report = run_audits(real, split, synthetic, config, public=public)
    target = Path(out_dir) / "audit.json"
    write_json_atomic(target, report.to_dict())
    d = report.to_dict()
    for name, attack in d["attacks"].items():
        if attack.get("auc") is not None:
            lo, hi = attack["auc_ci"]
            click.echo(
                f"{name:17s} AUC {attack['auc']:.3f} [{lo:.3f}, {hi:.3f}]  "
                f"TPR@1%FPR {attack['tpr_at_fpr_0.01']:.3f}"
            )
        else:
            click.echo(f"{name:17s} {attack['status']}: {attack['reason']}")
    nn = d["nearest_neighbour"]
    for label, share in (("", nn), (" on hub-centred distances", nn["centred"])):
        lo, hi = share["share_closer_to_members_ci"]
        click.echo(
            f"share closer to members{label} {share['share_closer_to_members']:.3f} "
            f"[{lo:.3f}, {hi:.3f}] (null 0.5, sd {share['share_null_sd']:.3f} from "
            f"{share['share_nearest_effective']:.0f} effective nearest real individuals)"
        )
    click.echo(f"exact duplicate genotypes {nn['exact_duplicate_genotypes']}")
    click.echo(
        f"members among the distinct nearest real individuals {nn['distinct_nearest_members']} "
        f"of {nn['distinct_nearest']} ({nn['distinct_share']:.3f}, null "
        f"{nn['distinct_share_null']:.3f} sd {nn['distinct_share_null_sd']:.3f}; exact p "
        f"{nn['distinct_share_p_value']:.3g})"
    )
    pc = d["public_control"]
    if "dcr_auc_excess" in pc:
        (alo, ahi), (slo, shi) = pc["dcr_auc_excess_ci"], pc["share_closer_excess_ci"]
        click.echo(
            f"public-panel control: DCR AUC {pc['dcr_auc_synthetic']:.3f} vs panel "
            f"{pc['dcr_auc_public']:.3f}, excess {pc['dcr_auc_excess']:+.3f} "
            f"[{alo:+.3f}, {ahi:+.3f}]; share closer excess {pc['share_closer_excess']:+.3f} "
            f"[{slo:+.3f}, {shi:+.3f}] (genotypes only)"
        )
    kin = d["kinship"]
    click.echo(
        f"kinship: excess first-degree pair rate {kin['excess_first_degree_rate']:.3g}; "
        f"synthetic-member duplicate pairs {kin['synthetic_member_duplicate_pairs']}"
    )
    click.echo(f"wrote {target}")
