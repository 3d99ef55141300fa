"""The audit suite as a whole: results shape (docs/architecture.md), aggregate-only output,
NOT RUN reporting, the shadow-model attack, and the ``dpgenome audit`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dpgenome.audit import NOT_RUN, AuditConfig, run_audits
from dpgenome.audit.features import code_phenotypes, pheno_distance
from dpgenome.cli import main
from dpgenome.cohort import swap_alleles
from dpgenome.errors import CohortError, ConfigError
from dpgenome.policy import MEMBERSHIP_ATTACKS
from dpgenome.testing import ToyConfig, toy_cohort
from test_audit_membership import reports, world

ATTACK_KEYS = {"auc", "auc_ci", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "roc", "method"}
NN_KEYS = {
    "share_closer_to_members",
    "share_closer_to_members_ci",
    "dcr_members",
    "dcr_holdout",
    "nndr_median",
    "exact_duplicate_genotypes",
    "near_duplicate_genotypes",
    "duplicate_genotype_windows_rate",
    "exact_duplicate_phenotype_rows",
    "centred",
}
KIN_KEYS = {
    "thresholds",
    "synthetic_member_duplicate_pairs",
    "synthetic_member_first_degree_pairs",
    "holdout_member_duplicate_pairs",
    "holdout_member_first_degree_pairs",
    "synthetic_first_degree_rate",
    "holdout_first_degree_rate",
    "excess_first_degree_rate",
    "member_member_first_degree_pairs",
    "member_member_duplicate_pairs",
    "method",
}


def _lists(obj, out):
    if isinstance(obj, dict):
        for v in obj.values():
            _lists(v, out)
    elif isinstance(obj, list):
        out.append(len(obj))
        for v in obj:
            _lists(v, out)
    return out


def test_run_audits__to_dict_has_the_architecture_shape():
    d = reports()[0]
    assert tuple(d["attacks"]) == MEMBERSHIP_ATTACKS  # the names a policy may list
    for name in ("dcr", "density_ratio", "allele_frequency"):
        assert ATTACK_KEYS <= set(d["attacks"][name]), name
    assert d["attacks"]["shadow"] == {  # the contracted keys are there, null (issue 6)
        "auc": None,
        "auc_ci": None,
        "tpr_at_fpr_0.01": None,
        "status": NOT_RUN,
        "reason": "no shadow targets requested (--shadow 0)",
    }
    assert NN_KEYS <= set(d["nearest_neighbour"])
    assert KIN_KEYS <= set(d["kinship"])
    for res in d["attribute_inference"].values():
        assert {
            "attack_accuracy",
            "baseline_accuracy",
            "control_accuracy",
            "risk",
            "risk_ci",
        } <= set(res)
    assert d["canary"]["status"] == NOT_RUN and "epsilon_lower_bound" not in d["canary"]
    json.dumps(d, allow_nan=False)


def test_run_audits__output_is_aggregate_only():
    """No real id anywhere, and no list long enough to be per-individual (ROC <= 200)."""
    real, split, _, _ = world()
    for d in reports():
        text = json.dumps(d)
        leaked = [i for i in real.sample_ids.astype(str) if i in text]
        assert leaked == []
        assert max(_lists(d, [])) <= 200
        assert max(_lists(d, [])) < len(split.members)


def test_run_audits__seeded_and_reproducible():
    real, split, fresh, _ = world()
    cfg = AuditConfig(seed=3, n_bootstrap=200)
    a = run_audits(real, split, fresh, cfg).to_dict()
    a.pop("timings_s")
    b = dict(reports()[0])
    b.pop("timings_s")
    assert a == b


def test_run_audits__a_synthetic_cohort_listing_alleles_the_other_way_is_harmonised():
    """A synthetic file may list a SNP's alleles the other way round (plink 1.9 rewrites a
    ``.bim`` minor allele first): the audit compares genotypes, not dosages by SNP id, so a
    copy of the members listed that way is caught as a copy (before, it read as 0 duplicates
    and a DCR AUC of 0.59); another pair of alleles is an error naming the synthetic cohort."""
    real, split, _, copy = world()
    cfg = AuditConfig(seed=3, n_bootstrap=50)
    flipped = swap_alleles(copy, np.arange(1, copy.n_variants, 2))
    a, b = (run_audits(real, split, c, cfg).to_dict() for c in (copy, flipped))
    for d in (a, b):
        d.pop("timings_s", None)
    assert b["nearest_neighbour"]["exact_duplicate_genotypes"] == len(split.members)
    assert b["kinship"]["synthetic_member_duplicate_pairs"] == len(split.members)
    assert b == a
    strand = flipped.take_variants(np.arange(flipped.n_variants))
    pair = set(real.variants.loc[3, ["ref", "alt"]])
    strand.variants.loc[3, ["ref", "alt"]] = [b for b in "ACGT" if b not in pair]
    with pytest.raises(CohortError, match=r"the synthetic cohort's alleles differ .* 'rs1_3'"):
        run_audits(real, split, strand, cfg)


def _copy(cohort, seed):
    return cohort


def _fresh(cohort, seed):
    out, _ = toy_cohort(seed % 1000 + 100, ToyConfig(n=cohort.n_samples))
    return out


def test_run_audits__shadow_attack_separates_a_copying_synthesizer():
    real, split, fresh, _ = world()
    cfg = AuditConfig(seed=1, shadow_targets=8, shadow_games=2, shadow_size=60)
    copy = run_audits(real, split, fresh, cfg, train_fn=_copy).to_dict()["attacks"]["shadow"]
    assert copy["auc"] > 0.9 and copy["targets"] == 8
    obl = run_audits(real, split, fresh, cfg, train_fn=_fresh).to_dict()["attacks"]["shadow"]
    assert obl["auc_ci"][0] <= 0.5 <= obl["auc_ci"][1]


def test_run_audits__shadow_without_train_fn_is_not_run():
    real, split, fresh, _ = world()
    d = run_audits(real, split, fresh, AuditConfig(shadow_targets=4, canaries=20)).to_dict()
    assert d["attacks"]["shadow"]["status"] == NOT_RUN
    assert "train_fn" in d["canary"]["reason"]


def test_run_audits__tiny_holdout_reports_density_ratio_not_run():
    real, split, fresh, _ = world()
    small = type(split)(split.members, split.holdout[:6], -1, 0.02, None, split.member_hash)
    d = run_audits(real, small, fresh, AuditConfig(pheno="BMD", n_bootstrap=50)).to_dict()
    assert d["attacks"]["density_ratio"]["status"] == NOT_RUN
    assert "auc" in d["attacks"]["dcr"]


def _with_missing_round(cohort, rows):
    """A copy of ``cohort`` whose categorical ``round`` is missing in ``rows``."""
    out = cohort.take_samples(np.arange(cohort.n_samples))
    out.phenotypes.loc[rows, "round"] = np.nan
    return out


def test_code_phenotypes__missing_categorical_is_a_level_of_its_own():
    real, _, fresh, _ = world()
    a = _with_missing_round(real.take_samples(np.arange(6)), [0, 1])
    b = _with_missing_round(fresh.take_samples(np.arange(4)), [0])
    b.phenotypes.loc[1, "round"] = "nan"  # an observed label that reads like a missing one
    assert a.phenotypes["round"].isna().sum() == 2 and b.phenotypes["round"].isna().sum() == 1
    ca, cb = code_phenotypes([a, b], ["round"], a)  # sorted() once mixed float NaN and str
    assert ca.categorical[0, 0] == ca.categorical[1, 0] == cb.categorical[0, 0]
    observed = set(ca.categorical[2:, 0]) | set(cb.categorical[1:, 0])
    assert ca.categorical[0, 0] not in observed
    d = pheno_distance(ca, cb)
    assert d[0, 0] == d[1, 0] == 0.0  # missing vs missing: the same level
    assert d[0, 1] == 1.0 and d[2, 0] == 1.0  # missing vs "nan", observed vs missing
    assert set(np.unique(d)) <= {0.0, 1.0}


@pytest.mark.parametrize("pheno", [None, "round"])
def test_run_audits__categorical_column_with_missing_values_on_both_sides(pheno):
    real, split, fresh, _ = world()
    real = _with_missing_round(real, [int(split.members[0]), int(split.holdout[0])])
    fresh = _with_missing_round(fresh, [0, 5])
    d = run_audits(real, split, fresh, AuditConfig(seed=3, n_bootstrap=50, pheno=pheno)).to_dict()
    assert "round" in d["nearest_neighbour"]["phenotypes_only"]["columns"]
    assert np.isfinite(d["attacks"]["dcr"]["auc"])
    if pheno == "round":
        assert "attack_accuracy" in d["attribute_inference"]["round"]
    json.dumps(d, allow_nan=False)


def _audit(root: Path, *extra: str, holdout: str = "holdout.txt", out: Path | None = None):
    """``dpgenome audit`` on ``root``'s real and synthetic cohorts and holdout file."""
    args = ["audit", str(root / "real"), "--synthetic", str(root / "synth")]
    args += ["--holdout", str(root / holdout), "--out", str(out or root / "o"), *extra]
    return CliRunner().invoke(main, args)


def test_audit_command__categorical_column_with_missing_values(cli_env: Path, monkeypatch):
    real, split, _, copy = world()
    cohorts = {
        str(cli_env / "real"): _with_missing_round(real, [int(split.holdout[1])]),
        str(cli_env / "synth"): _with_missing_round(copy, [2]),
    }
    monkeypatch.setattr("dpgenome.cli.audit._read_cohort", lambda path: cohorts[str(path)])
    res = _audit(cli_env, "--bootstrap", "50")
    assert res.exit_code == 0, res.output
    d = json.loads((cli_env / "o" / "audit.json").read_text())
    assert "round" in d["nearest_neighbour"]["phenotypes_only"]["columns"]


def test_audit_config__rejects_bad_values():
    with pytest.raises(ConfigError, match="shadow"):
        AuditConfig(shadow_targets=2).validate()
    with pytest.raises(ConfigError, match="canary_guesses"):
        AuditConfig(canaries=20, canary_guesses=11).validate()


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    real, split, _, copy = world()
    (tmp_path / "real").mkdir()
    (tmp_path / "synth").mkdir()
    cohorts = {str(tmp_path / "real"): real, str(tmp_path / "synth"): copy}
    monkeypatch.setattr("dpgenome.cli.audit._read_cohort", lambda path: cohorts[str(path)])
    ids = real.sample_ids.astype(str)[split.holdout]
    (tmp_path / "holdout.txt").write_text("# holdout\n" + "\n".join(ids) + "\n\n")
    return tmp_path


def test_audit_command__writes_audit_json(cli_env: Path):
    out = cli_env / "out"
    res = _audit(cli_env, "--pheno", "BMD", "--covar", "SW16", "--bootstrap", "50", out=out)
    assert res.exit_code == 0, res.output
    d = json.loads((out / "audit.json").read_text())
    assert d["attacks"]["dcr"]["auc"] > 0.99  # the synthetic cohort is a copy of the members
    assert list(d["attribute_inference"]) == ["BMD"]
    assert d["config"]["covariates"] == ["SW16"]
    assert "dcr" in res.output and "NOT RUN" in res.output
    assert [p.name for p in out.iterdir()] == ["audit.json"]  # no temporary file left
    text = (out / "audit.json").read_text()
    real, _, _, _ = world()
    assert not [i for i in real.sample_ids.astype(str) if i in text]


def test_audit_command__unknown_holdout_id_names_the_file(cli_env: Path):
    (cli_env / "bad.txt").write_text("nobody\n")
    res = _audit(cli_env, holdout="bad.txt")
    assert res.exit_code == 2
    assert "bad.txt" in res.output and "not in the cohort" in res.output


@pytest.mark.parametrize("case", ["duplicate", "unknown"])
def test_audit_command__bad_holdout_id_is_located_never_quoted(cli_env: Path, case: str):
    # a sample id identifies a person, and an error message may end up in a log
    real, split, _, _ = world()
    ids = list(real.sample_ids.astype(str)[split.holdout])
    bad = ids[1] if case == "duplicate" else "REALPERSON_0042"
    (cli_env / "bad.txt").write_text("# holdout\n" + "\n".join([*ids, bad]) + "\n")
    res = _audit(cli_env, holdout="bad.txt")
    assert res.exit_code == 2
    assert f"bad.txt, line {len(ids) + 2}" in res.output
    assert bad not in res.output


def test_audit_command__two_fields_on_a_line_names_the_line(cli_env: Path):
    (cli_env / "bad.txt").write_text("a\nb c\n")
    res = _audit(cli_env, holdout="bad.txt")
    assert res.exit_code == 2 and "line 2" in res.output


def test_audit_command__shadow_needs_the_synthesizer(cli_env: Path):
    res = _audit(cli_env, "--shadow", "5")
    assert res.exit_code == 2 and "dpgenome release" in res.output


def test_audit_command__unknown_pheno_is_a_user_error(cli_env: Path):
    res = _audit(cli_env, "--pheno", "nope")
    assert res.exit_code == 2 and "nope" in res.output


def test_audit_command__round_trip_through_dpgenome_io(tmp_path: Path):
    from dpgenome import io

    real, split, fresh, _ = world()
    io.write_cohort(real, tmp_path / "real", fmt="plink")
    io.write_cohort(fresh, tmp_path / "synth", fmt="plink")
    ids = real.sample_ids.astype(str)[split.holdout]
    (tmp_path / "h.txt").write_text("\n".join(ids) + "\n")
    res = _audit(tmp_path, "--bootstrap", "50", holdout="h.txt")
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "o" / "audit.json").read_text())
    assert d["summary"]["n_holdout"] == len(split.holdout)
    assert np.isfinite(d["attacks"]["dcr"]["auc"])


def test_run_audits__reference_attacks_widen_their_auc_ci_by_the_references_spread():
    """The density-ratio and allele-frequency scores move with the holdout they are scored
    against: their AUC's CI is widened by its sd over resamples of the holdout (reported as
    ``auc_reference_sd``); the DCR attack's, which has no reference, is not. Without
    resamples (``reference_draws=0``) the CIs are the bootstrap's alone."""
    real, split, fresh, _ = world()
    wide = run_audits(real, split, fresh, AuditConfig(seed=3, n_bootstrap=100)).to_dict()
    narrow = run_audits(
        real, split, fresh, AuditConfig(seed=3, n_bootstrap=100, reference_draws=0)
    ).to_dict()
    for name in ("density_ratio", "allele_frequency"):
        w, n = wide["attacks"][name], narrow["attacks"][name]
        assert w["auc"] == n["auc"] and w["auc_reference_sd"] > 0
        assert w["auc_ci"][0] < n["auc_ci"][0] and w["auc_ci"][1] > n["auc_ci"][1]
        assert "auc_reference_sd" not in n
    assert "auc_reference_sd" not in wide["attacks"]["dcr"]
    assert wide["attacks"]["dcr"] == narrow["attacks"]["dcr"]
    with pytest.raises(ConfigError, match="reference_draws"):
        AuditConfig(reference_draws=3).validate()


def test_run_audits__shadow_auc_ci_is_normal_with_the_permutation_sd():
    """The shadow attack's games are clustered in targets: its AUC's CI is the AUC +- 1.96
    times the AUC's sd over label permutations within targets (``auc_sd``)."""
    real, split, fresh, _ = world()
    cfg = AuditConfig(seed=1, shadow_targets=8, shadow_games=2, shadow_size=60)
    shadow = run_audits(real, split, fresh, cfg, train_fn=_fresh).to_dict()["attacks"]["shadow"]
    half = 1.959964 * shadow["auc_sd"]
    lo, hi = max(0.0, shadow["auc"] - half), min(1.0, shadow["auc"] + half)
    assert shadow["auc_ci"] == pytest.approx([lo, hi], abs=2e-6)
    assert shadow["auc_sd"] > 0.05 and "permutations" in shadow["auc_ci_method"]


def test_run_audits__a_resample_too_small_for_domias_is_skipped(monkeypatch):
    """A holdout resample that leaves a fold too few reference rows (likely with a holdout of
    ten or twenty) discarded the whole density-ratio attack, which had scored fine on the
    holdout itself: such resamples are skipped, and with none left the CI is the bootstrap's."""
    from dpgenome.audit import suite
    from dpgenome.audit.membership import density_ratio_scores

    def fragile(*args, holdout=None, **kw):
        if holdout is not None:
            raise ValueError("density ratio: 4 reference individuals are too few")
        return density_ratio_scores(*args, **kw)

    monkeypatch.setattr(suite, "density_ratio_scores", fragile)
    real, split, fresh, _ = world()
    d = run_audits(real, split, fresh, AuditConfig(seed=3, n_bootstrap=50)).to_dict()
    attack = d["attacks"]["density_ratio"]
    assert "auc" in attack and "auc_reference_sd" not in attack
    assert "auc_reference_sd" in d["attacks"]["allele_frequency"]
