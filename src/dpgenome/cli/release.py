"""``dpgenome release``, ``dpgenome demo`` and ``dpgenome sweep``.

Exit codes: 0 released (or, for ``sweep``, the frontier written); 2 user error; 3 the policy
blocked the release (nothing at ``--out``; the explanatory dossier path is printed).
"""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from dpgenome.cli.options import (
    ANCESTRY_PCS_HELP,
    GENOTYPE_MISSINGNESS_HELP,
    SEED,
    AncestryPcs,
    allele_order_option,
    ancestry_pcs_option,
    missing_calls_option,
)
from dpgenome.config import (
    ReleaseConfig,
    canonical_keys,
    config_key_lines,
    load_config_file,
    parse_epsilon,
)
from dpgenome.errors import ConfigError, ReleaseBlocked
from dpgenome.findings import fmt_claim
from dpgenome.paths import shipped_policy

if TYPE_CHECKING:
    from dpgenome.simulate import SimConfig


def _echo_err(line: str) -> None:
    click.echo(line, err=True)


def _print_summary(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    eps = summary["epsilon"]
    privacy = (
        "no formal privacy (epsilon = inf)"
        if eps is None
        else f"epsilon = {fmt_claim(eps)}, delta = {fmt_claim(summary['delta'])} per individual"
    )

    def num(x: Any, spec: str = ".2f") -> str:
        return "n/a" if x is None else format(x, spec)

    aucs = ", ".join(f"{k} {num(v)}" for k, v in summary["membership_auc"].items())
    click.echo(f"verdict: {summary['verdict']}")
    if summary.get("override"):  # a BLOCK released under a signed override says so
        override = summary["override"]
        click.echo(f"released by override (signer {override['signer']}): {override['reason']}")
    for rule in summary["failing_rules"]:
        click.echo(f"  failing: {rule}")
    click.echo(f"privacy: {privacy}")
    click.echo(
        f"GWAS at p<1e-8: recall {num(summary['snp_recall_1e-8'])}, precision "
        f"{num(summary['snp_precision_1e-8'])}; loci {summary['loci_recovered']}/"
        f"{summary['loci_real']} recovered, {summary['spurious_loci']} spurious; "
        f"lambda_GC {num(summary['lambda_gc_synthetic'], '.3f')}"
    )
    click.echo(f"membership AUC: {aucs or 'n/a'}")
    if summary["canary_epsilon_lower_bound"] is not None:
        click.echo(f"canary epsilon lower bound: {num(summary['canary_epsilon_lower_bound'])}")
    if summary["reused_cache"]:
        click.echo("(reused the trained release: nothing retrained, no new budget spent)")
    click.echo(f"dossier: {summary['dossier']}")
    if summary.get("work_dir"):
        click.echo(f"work folder (dpgenome export takes it): {summary['work_dir']}")
    if summary["bundle"]:
        click.echo(
            f"bundle: {summary['bundle']}  "
            f"(check it with: dpgenome verify {shlex.quote(str(summary['bundle']))})"
        )


def _config_from(options: dict[str, Any], config_file: Path | None) -> ReleaseConfig:
    data: dict[str, Any] = load_config_file(config_file) if config_file else {}
    lines = config_key_lines(config_file) if config_file else {}
    # a flag's spelling in the file (covar, holdout-fraction) before the flags override it
    data, lines = canonical_keys(data, lines, source=str(config_file))
    flags = set()
    for key, value in options.items():
        if value is None or value == ():
            continue
        data[key] = list(value) if isinstance(value, tuple) else value
        lines.pop(key, None)  # given on the command line
        flags.add(key)
    return ReleaseConfig.from_mapping(
        data,
        source=str(config_file or "command line"),
        lines=lines,
        flags=flags,
    )


_release_options = [
    click.option("--pheno", help="Analysis phenotype (e.g. abBMD)."),
    click.option("--covar", "covariates", multiple=True, help="Covariate; may repeat."),
    click.option(
        "--policy",
        type=click.Path(dir_okay=False),
        help="Release policy: a YAML file, or a shipped policy's name (strict, consortium, "
        "internal).",
    ),
    click.option(
        "--epsilon",
        help="Target epsilon per individual, or 'inf' for no formal privacy (default 8).",
    ),
    click.option("--delta", help="Target delta, or 'auto' = 1/n^1.1, n = members (default)."),
    click.option(
        "--seed",
        type=SEED,
        help="Seed of the split, synthesis and audits (default 0; the DP noise comes from a "
        "fresh secret in every run, not from the seed).",
    ),
    click.option(
        "--holdout-fraction",
        type=float,
        help="Share of the cohort held out of training for the audits (default 0.2).",
    ),
    click.option(
        "--public-panel",
        type=click.Path(file_okay=False),
        help="Public reference panel (a cohort directory of other individuals, genotypes only) "
        "the genotype model is pretrained on; taken as public.",
    ),
    click.option("--ancestry-pcs", type=AncestryPcs(), help=ANCESTRY_PCS_HELP),
    click.option(
        "--genotype-missingness/--no-genotype-missingness",
        "genotype_missingness",
        default=None,
        help=GENOTYPE_MISSINGNESS_HELP + " (Configuration key genotype_missingness.)",
    ),
    click.option(
        "--pheno-schema",
        type=click.Path(dir_okay=False),
        help="Phenotype schema YAML: public column types and domains (dpgenome.phenoschema).",
    ),
    click.option("--n", "n_synthetic", type=int, help="Synthetic cohort size (default: members)."),
    click.option(
        "--shadow", type=int, help="Shadow-model attack targets (0 = not run; default 0)."
    ),
    click.option(
        "--canaries", type=int, help="Canaries of the one-run audit (0 = not run; default 50)."
    ),
    click.option(
        "--secure-mode/--no-secure-mode",
        "secure_mode",
        default=None,
        help="Every mechanism's noise from the OS CSPRNG, the Gaussian, Laplace and exponential "
        "mechanisms sampled exactly (as dpgenome synthesize). On by default; "
        "--no-secure-mode uses numpy's floating-point samplers (faster).",
    ),
    click.option(
        "--format",
        "formats",
        multiple=True,
        help="Format of the synthetic cohort: parker, plink or vcf; may repeat (default parker).",
    ),
    allele_order_option(None),
    click.option("--override-reason", help="Release despite a BLOCK verdict, for this reason."),
    click.option("--signer", help="Name of the person signing the override."),
    click.option(
        "--signing-key",
        type=click.Path(dir_okay=False),
        help="Ed25519 private key (PEM) to sign the bundle's manifest with.",
    ),
    click.option(
        "--lifetime-db",
        type=click.Path(dir_okay=False),
        help="Lifetime ledger (SQLite) charged with this release (default: "
        "$DPGENOME_LIFETIME_DB, else ~/.dpgenome/lifetime.sqlite: point it at the "
        "institution's one ledger).",
    ),
    click.option(
        "--cache-dir",
        type=click.Path(file_okay=False),
        help="Stage cache of trained releases (default: $DPGENOME_CACHE, else ~/.cache/dpgenome).",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
]


def _with_options(func: Any) -> Any:
    for option in reversed(_release_options):
        func = option(func)
    return func


@click.command("release")
@click.argument("cohort_arg", metavar="[COHORT]", required=False, type=click.Path())
@click.option("--cohort", type=click.Path(), help="Cohort directory (or give it as argument).")
@click.option("--out", type=click.Path(), help="Bundle directory to create.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Release configuration YAML (command-line options override it).",
)
@_with_options
def release(
    cohort_arg: str | None, config_file: Path | None, as_json: bool, **options: Any
) -> None:
    """Synthesize, audit, check fidelity, evaluate a policy, render the dossier and export.

    Exits 0 with a bundle in --out when the verdict is APPROVE (or an allowed override), 3
    with nothing at --out when the policy blocks the release.
    """
    from dpgenome.release import run_release

    if cohort_arg and options.get("cohort"):
        raise ConfigError("give the cohort either as argument or with --cohort, not both")
    options["cohort"] = options.get("cohort") or cohort_arg
    config = _config_from(options, config_file)
    try:
        outcome = run_release(config, echo=_echo_err)
    except ReleaseBlocked as err:
        if as_json and err.outcome is not None:  # the summary still goes to stdout; exit 3
            _print_summary(err.outcome.summary(), as_json=True)
        elif as_json and err.summary is not None:  # refused before training
            _print_summary(err.summary, as_json=True)
        raise
    _print_summary(outcome.summary(), as_json=as_json)


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dpgenome-demo"),
    show_default=True,
    help="Folder for the simulated cohort, the release bundle and its dossier.",
)
@click.option("--epsilon", default="8", show_default=True, help="Target epsilon or 'inf'.")
@click.option(
    "--policy", default="consortium", show_default=True, help="Shipped policy name or file."
)
@click.option("--n", "n", type=int, default=1092, show_default=True, help="Cohort size.")
@click.option(
    "--public",
    "n_public",
    type=int,
    default=1000,
    show_default=True,
    help="Size of the simulated public reference panel.",
)
@click.option("--chromosomes", help="Restrict to chromosomes, e.g. 5,11 (faster).")
@click.option(
    "--seed",
    type=SEED,
    default=1,
    show_default=True,
    help="Seed of the simulated cohort (as `simulate --seed`, default 1 there too) and of the "
    "release's split, synthesis and audits (`release --seed`, whose own default is 0). The "
    "DP noise comes from a fresh secret in every run, not from the seed.",
)
@click.option(
    "--colonies",
    type=click.IntRange(1, 99),
    default=1,
    show_default=True,
    help="Simulate population structure across chromosomes: this many sub-colonies (as "
    "`simulate --colonies`; the cohort 3:1 for two, equal shares otherwise). 1: one colony.",
)
@click.option(
    "--colony-effects",
    default=None,
    metavar="LIST",
    help="A stratified abBMD: each sub-colony's liability shift in sds (as `simulate "
    "--colony-effects`), e.g. 0,0.6 with --colonies 2.",
)
@ancestry_pcs_option
@missing_calls_option(
    "Simulate missing genotype calls at this mean share (as `simulate --missing-calls`) "
    "and release them (`release --genotype-missingness`). 0: complete genotypes."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(
    out: Path,
    epsilon: str,
    policy: str,
    n: int,
    n_public: int,
    chromosomes: str | None,
    seed: int,
    colonies: int,
    colony_effects: str | None,
    ancestry_pcs: int | Literal["auto"],
    missing_calls: float,
    as_json: bool,
) -> None:
    """Simulate the embedded CFW-like cohort and run a whole release on it.

    Prints the verdict and where the dossier is (exit 0 for either verdict: a blocked
    release is a demonstration of the gate; its explanatory dossier is printed). Everything
    stays under --out (cohort, public panel, cache, lifetime ledger, bundle).
    """
    from dpgenome.cli.simulate import parse_numbers
    from dpgenome.policy import load_policy
    from dpgenome.simulate import SimConfig

    if out.exists() and any(out.iterdir()):
        raise ConfigError(
            "the demo folder exists and is not empty; remove it or pass --out", file=out
        )
    target_epsilon = parse_epsilon(epsilon)  # before minutes of simulation
    if ancestry_pcs != "auto" and ancestry_pcs and not int(ancestry_pcs) < n_public:
        raise ConfigError(
            f"--ancestry-pcs {ancestry_pcs} needs a public panel of more individuals "
            f"(--public N, N > {ancestry_pcs})"
        )
    policy_path = (
        Path(policy) if Path(policy).suffix in {".yaml", ".yml"} else shipped_policy(policy)
    )
    load_policy(policy_path)  # a bad policy file fails before minutes of simulation
    chroms = tuple(c.strip() for c in chromosomes.split(",")) if chromosomes else None
    shares = (0.75, 0.25) if colonies == 2 else None
    sim = SimConfig(
        n=n,
        seed=seed,
        n_public=n_public,
        colonies=colonies,
        colony_shares=shares,
        colony_effects=parse_numbers(colony_effects, "--colony-effects", "0,0.6"),
        missing_calls=missing_calls,
    )
    if chroms:
        sim = replace(sim, chromosomes=chroms)
    sim = sim.validate()  # before minutes of simulation
    if ancestry_pcs != "auto" and ancestry_pcs and len(sim.chromosomes) < 2:
        raise ConfigError(
            f"--ancestry-pcs {ancestry_pcs} needs at least two chromosomes (--chromosomes): "
            "a window reads the scores of the other chromosomes"
        )
    created = not out.exists()
    try:
        _demo_release(out, sim, policy_path, target_epsilon, seed, ancestry_pcs, as_json)
    except Exception:
        # nothing half-written: what the demo wrote goes (the folder, when the demo made it)
        for name in DEMO_OUTPUTS:
            for child in out.glob(name):
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


#: what `dpgenome demo` writes under --out (removed again when it fails)
DEMO_OUTPUTS = ("cohort", "public", "release", "work", "lifetime.sqlite*")


def _demo_release(
    out: Path,
    sim: SimConfig,
    policy_path: Path,
    target_epsilon: float,
    seed: int,
    ancestry_pcs: int | Literal["auto"],
    as_json: bool,
) -> None:
    """The demo's simulation (``sim``, a validated SimConfig) written under ``out``, and its
    release (``dpgenome demo``)."""
    from dpgenome.io import write_cohort
    from dpgenome.release import run_release
    from dpgenome.simulate import simulate

    _echo_err(
        f"simulating a CFW-like cohort of {sim.n} mice (+ a public panel of {sim.n_public}) ..."
    )
    simulated = simulate(sim)
    write_cohort(simulated.cohort, out / "cohort", "parker")
    if simulated.public is not None:
        write_cohort(simulated.public, out / "public", "parker")
    config = ReleaseConfig(
        cohort=str(out / "cohort"),
        pheno="abBMD",
        covariates=("SW16",),
        policy=str(policy_path),
        out=str(out / "release"),
        epsilon=target_epsilon,
        seed=seed,
        public_panel=str(out / "public") if simulated.public is not None else None,
        ancestry_pcs=ancestry_pcs,
        genotype_missingness=sim.missing_calls > 0,
        lifetime_db=str(out / "lifetime.sqlite"),
        cache_dir=str(out / "work"),
    )
    try:
        outcome = run_release(config, echo=_echo_err, check_first=False)
    except ReleaseBlocked as err:
        # The demo's job is to show the whole release, gate included: a BLOCK verdict is a
        # successful demonstration (nothing was exported; the dossier says why).
        click.echo(err.render(), err=True)
        if as_json and err.outcome is not None:
            _print_summary(err.outcome.summary(), as_json=True)
            return
        click.echo("verdict: BLOCK (nothing exported; the policy gate did its job)")
        click.echo(f"dossier: {err.dossier}")
        return
    _print_summary(outcome.summary(), as_json=as_json)


@click.command("sweep")
@click.argument("cohort", required=False, type=click.Path(file_okay=False))
@click.option("--pheno", default="abBMD", show_default=True)
@click.option("--covar", "covariates", multiple=True, default=("SW16",), show_default=True)
@click.option(
    "--epsilons", default="inf,10,3,1", show_default=True, help="Comma list; inf allowed."
)
@click.option("--n", "sizes", help="Without COHORT: simulated cohort sizes, e.g. 1092,10000.")
@click.option(
    "--public-panel",
    type=click.Path(file_okay=False),
    help="With COHORT: its public reference panel (as for release). Without COHORT each "
    "simulated cohort has its own.",
)
@click.option(
    "--pheno-schema",
    type=click.Path(dir_okay=False),
    help="Phenotype schema YAML (as for release).",
)
@click.option(
    "--seed",
    type=SEED,
    default=1,
    show_default=True,
    help="Seed of the simulated cohorts (without COHORT; as `simulate --seed`) and of every "
    "point's split, synthesis and audits; the DP noise is fresh in every run.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def sweep(
    cohort: str | None,
    pheno: str,
    covariates: tuple[str, ...],
    epsilons: str,
    sizes: str | None,
    public_panel: str | None,
    pheno_schema: str | None,
    seed: int,
    out: Path,
) -> None:
    """The privacy/utility frontier: SNP recall/precision, loci and lambda_GC against epsilon
    (and cohort size), beside membership AUC and canary lower bounds. Writes DIR/sweep.html
    and DIR/sweep.json; without COHORT it simulates the embedded CFW-like cohort at each
    size (kept as DIR/cohort-n<N>-seed<S>/ and reused).

    Each point trains again with fresh DP noise: one draw per point. A sweep is an analysis,
    not a release: it exports nothing and is recorded in no lifetime ledger, so on a private
    COHORT it spends the sum of its epsilons (and a pass without formal privacy for inf)
    outside the ledger. Run it on simulated or public cohorts.
    """
    from dpgenome.sweep import run_sweep

    eps = list(dict.fromkeys(parse_epsilon(e) for e in epsilons.split(",") if e.strip()))
    if cohort:
        _echo_err(
            "note: a sweep is recorded in no lifetime ledger; on a private cohort its points "
            "spend their epsilons outside it (run it on simulated or public cohorts)"
        )
    if cohort and sizes:
        raise ConfigError("--n (simulated sizes) only applies without a COHORT argument")
    try:
        n_list = [int(x) for x in sizes.split(",")] if sizes else [1092]
    except ValueError:
        raise ConfigError(f"--n must be a comma list of cohort sizes, got {sizes!r}") from None
    page = run_sweep(
        cohort=cohort,
        pheno=pheno,
        covariates=covariates,
        epsilons=eps,
        sizes=n_list,
        public_panel=public_panel,
        seed=seed,
        out=out,
        echo=_echo_err,
        pheno_schema=pheno_schema,
    )
    click.echo(f"frontier: {page}")
