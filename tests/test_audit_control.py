"""The public-panel negative control of the distance audits: it explains a DCR signal that
comes from the split (members who happen to be relatives of panel individuals) and does not
explain away a real leak (a copy of the members)."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dpgenome.audit import NOT_RUN, AuditConfig, run_audits
from dpgenome.audit.control import public_control
from dpgenome.audit.membership import dcr_scores
from dpgenome.audit.scoring import auc_mann_whitney
from dpgenome.cli import main
from dpgenome.cohort import Cohort, split_members, swap_alleles
from dpgenome.errors import CohortError
from dpgenome.findings import EvaluationContext, Status
from dpgenome.policy import evaluate, load_policy
from dpgenome.testing import ToyConfig, toy_cohort
from test_dossier import consortium_with_control


def _renamed(cohort: Cohort, prefix: str) -> Cohort:
    cohort.samples["id"] = [f"{prefix}{i:05d}" for i in range(cohort.n_samples)]
    return cohort


def _near_copy(dosages: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """Genotypes with ``share`` of the calls redrawn uniformly from {0, 1, 2}."""
    out = dosages.copy()
    redraw = rng.random(out.shape) < share
    out[redraw] = rng.integers(0, 3, size=int(redraw.sum())).astype(out.dtype)
    return out


@cache
def world():
    """A real cohort whose first 60 members are close relatives of 60 panel individuals
    (a split that by chance put the panel's relatives among the members), a synthetic cohort
    drawn from the panel only (near copies of its genotypes, with the phenotypes the toy
    generator gave those individuals: a model that learnt the panel), and a copy of the
    members (a real leak)."""
    full, _ = toy_cohort(23, ToyConfig(n=300 + 200 + 200))
    rng = np.random.default_rng(5)
    real = full.take_samples(np.arange(300))
    public = _renamed(full.take_samples(np.arange(300, 500)), "PUB")
    split = split_members(real, holdout_fraction=0.3, seed=0)
    related = split.members[:60]
    real.dosages[related] = _near_copy(public.dosages[:60], rng, 0.15)
    real.phenotypes.iloc[related] = public.phenotypes.iloc[:60].to_numpy()  # relatives alike
    synthetic = _renamed(full.take_samples(np.arange(300, 500)), "SYN")
    synthetic.dosages[:] = _near_copy(public.dosages, rng, 0.15)
    copy = _renamed(real.take_samples(split.members), "SYN")
    return real, split, public, synthetic, copy


@cache
def reports():
    real, split, public, synthetic, copy = world()
    cfg = AuditConfig(seed=3, n_bootstrap=200)
    return (
        run_audits(real, split, synthetic, cfg, public=public).to_dict(),
        run_audits(real, split, copy, cfg, public=public).to_dict(),
    )


def test_public_control__explains_a_split_that_favours_panel_relatives():
    d = reports()[0]
    # the raw DCR attack sees members closer to the synthetic records ...
    assert d["attacks"]["dcr"]["auc_ci"][0] > 0.55
    # ... and so does the panel, which was never trained on anyone: no excess
    pc = d["public_control"]
    assert pc["dcr_auc_public"] > 0.55
    lo, hi = pc["dcr_auc_excess_ci"]
    assert lo <= 0.0 <= hi and hi - lo < 0.15
    lo, hi = pc["share_closer_excess_ci"]
    assert lo <= 0.0 <= hi
    assert pc["n_public"] == 200 and pc["n_snps"] == real_snps()


def real_snps() -> int:
    return world()[0].n_variants


def test_public_control__does_not_explain_away_a_copy_of_the_members():
    pc = reports()[1]["public_control"]
    assert pc["dcr_auc_synthetic"] > 0.99
    assert pc["dcr_auc_excess_ci"][0] > 0.25  # the panel explains 0.15 of it, not the rest
    assert pc["share_closer_excess_ci"][0] > 0.0


def test_public_control__excess_is_the_difference_of_the_two_aucs():
    rng = np.random.default_rng(0)
    d_syn, d_pub = rng.random((50, 30)), rng.random((50, 40))
    members, holdout = np.arange(35), np.arange(35, 50)
    out = public_control(d_syn, d_pub, members, holdout, np.random.default_rng(1), n_bootstrap=50)
    s, p = dcr_scores(d_syn), dcr_scores(d_pub)
    a_syn = auc_mann_whitney(s[members], s[holdout])
    a_pub = auc_mann_whitney(p[members], p[holdout])
    assert out["dcr_auc_synthetic"] == round(a_syn, 6)
    assert out["dcr_auc_public"] == round(a_pub, 6)
    assert abs(out["dcr_auc_excess"] - (a_syn - a_pub)) < 2e-6
    again = public_control(d_syn, d_pub, members, holdout, np.random.default_rng(1), n_bootstrap=50)
    assert again == out
    # the same reference on both sides: the excess and its CI are exactly 0
    same = public_control(d_syn, d_syn, members, holdout, np.random.default_rng(1), n_bootstrap=50)
    assert same["dcr_auc_excess_ci"] == [0.0, 0.0]


def test_public_control__not_run_without_a_panel_and_on_too_few_shared_snps():
    real, split, public, synthetic, _ = world()
    cfg = AuditConfig(seed=3, n_bootstrap=50)
    d = run_audits(real, split, synthetic, cfg).to_dict()
    assert d["public_control"] == {"status": NOT_RUN, "reason": "no public panel given"}
    few = public.take_variants(np.arange(5))
    d = run_audits(real, split, synthetic, cfg, public=few).to_dict()
    assert d["public_control"]["status"] == NOT_RUN
    assert "shares 5 of the" in d["public_control"]["reason"]
    json.dumps(d, allow_nan=False)


def test_public_control__panel_on_a_subset_of_the_snps_uses_the_shared_ones():
    real, split, public, synthetic, _ = world()
    part = public.take_variants(np.arange(0, real.n_variants, 2))
    pc = run_audits(
        real, split, synthetic, AuditConfig(seed=3, n_bootstrap=50), public=part
    ).to_dict()["public_control"]
    assert pc["n_snps"] == part.n_variants
    assert pc["dcr_auc_public"] > 0.55


def test_audit_command__public_panel_adds_the_control(tmp_path: Path, monkeypatch):
    real, split, public, synthetic, _ = world()
    cohorts = {"real": real, "synth": synthetic, "public": public}
    monkeypatch.setattr("dpgenome.cli.audit._read_cohort", lambda path: cohorts[Path(path).name])
    for name in cohorts:
        (tmp_path / name).mkdir()
    ids = real.sample_ids.astype(str)[split.holdout]
    (tmp_path / "holdout.txt").write_text("\n".join(ids) + "\n")
    args = ["audit", str(tmp_path / "real"), "--synthetic", str(tmp_path / "synth")]
    args += ["--holdout", str(tmp_path / "holdout.txt"), "--bootstrap", "50"]
    res = CliRunner().invoke(
        main, [*args, "--public-panel", str(tmp_path / "public"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    assert "public-panel control: DCR AUC" in res.output
    d = json.loads((tmp_path / "o" / "audit.json").read_text())
    assert d["public_control"]["n_public"] == 200
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "o2")])
    assert res.exit_code == 0 and "public-panel control" not in res.output


def test_public_control__panel_listing_a_snp_twice_is_a_cohort_error():
    real, split, public, synthetic, _ = world()
    twice = public.take_variants(np.r_[np.arange(public.n_variants), 0])
    with pytest.raises(CohortError, match="lists SNP 'rs1_0' twice"):
        run_audits(real, split, synthetic, AuditConfig(seed=3, n_bootstrap=50), public=twice)


DISTANCE_RULES = ("membership.dcr.auc", "nearest_neighbour.share_closer_to_members")


def _distance_findings(report: dict) -> dict[str, Status]:
    evaluation = evaluate(
        {"audit": report}, load_policy(consortium_with_control()), context=EvaluationContext()
    )
    return {f.rule: f for f in evaluation.findings if f.rule in DISTANCE_RULES}


def test_public_panel_control__judges_genotypes_against_the_panel_and_phenotypes_alone():
    real, split, public, synthetic, _ = world()
    # phenotype rows the panel model could not have learnt: fresh draws of the generator
    fresh, _ = toy_cohort(23, ToyConfig(n=300 + 200 + 200))
    own = _renamed(synthetic.take_samples(np.arange(synthetic.n_samples)), "SYN")
    own.phenotypes.iloc[:] = fresh.phenotypes.iloc[500:700].to_numpy()
    report = run_audits(real, split, own, AuditConfig(seed=3, n_bootstrap=200), public=public)
    found = _distance_findings(report.to_dict())
    pc = report.to_dict()["public_control"]
    # the synthetic genotypes' raw DCR AUC is the panel's own: the split's chance
    assert pc["dcr_auc_synthetic"] > 0.6 and pc["dcr_auc_public"] > 0.6
    dcr = found["membership.dcr.auc"]
    assert dcr.status is Status.PASS and dcr.measured == pc["dcr_auc_excess"]
    share = found["nearest_neighbour.share_closer_to_members"]
    assert share.measured == pc["share_closer_excess"]
    assert share.status is (
        Status.PASS if 0.5 + pc["share_closer_excess_ci"][1] <= 0.6 else Status.FAIL
    )
    # a copy of the members blocks on both rules
    copied = _distance_findings(reports()[1])
    assert {r: f.status for r, f in copied.items()} == dict.fromkeys(DISTANCE_RULES, Status.FAIL)
    # the panel explains genotypes only: synthetic phenotype rows that are the panel
    # relatives' own (the world's synthetic cohort) still block the DCR attack
    po = reports()[0]["nearest_neighbour"]["phenotypes_only"]
    assert po["columns"] == ["abBMD", "BMD", "bw", "SW16", "round"]
    assert po["dcr_auc_ci"][1] > 0.6
    assert _distance_findings(reports()[0])["membership.dcr.auc"].status is Status.FAIL


def _audit_cli(tmp_path: Path, monkeypatch, panel: Cohort, out: str):
    real, split, _, synthetic, _ = world()
    cohorts = {"real": real, "synth": synthetic, "public": panel}
    monkeypatch.setattr("dpgenome.cli.audit._read_cohort", lambda path: cohorts[Path(path).name])
    for name in cohorts:
        (tmp_path / name).mkdir(exist_ok=True)
    ids = real.sample_ids.astype(str)[split.holdout]
    (tmp_path / "holdout.txt").write_text("\n".join(ids) + "\n")
    args = ["audit", str(tmp_path / "real"), "--synthetic", str(tmp_path / "synth")]
    args += ["--holdout", str(tmp_path / "holdout.txt"), "--bootstrap", "50"]
    args += ["--public-panel", str(tmp_path / "public"), "--out", str(tmp_path / out)]
    return CliRunner().invoke(main, args)


def _control(tmp_path: Path, out: str) -> dict:
    return json.loads((tmp_path / out / "audit.json").read_text())["public_control"]


def _control_with_flips(tmp_path: Path, monkeypatch, panel: Cohort, step: int) -> dict:
    """The audit command's public control with ``panel`` and with every ``step``-th SNP of
    it flipped: the two must agree (the flips are harmonised); returns the first."""
    res = _audit_cli(tmp_path, monkeypatch, panel, "o")
    assert res.exit_code == 0, res.output
    res = _audit_cli(
        tmp_path, monkeypatch, swap_alleles(panel, np.arange(0, panel.n_variants, step)), "flip"
    )
    assert res.exit_code == 0, res.output
    assert _control(tmp_path, "flip") == _control(tmp_path, "o")
    return _control(tmp_path, "o")


def test_audit_command__panel_alleles_the_other_way_round_are_flipped(tmp_path, monkeypatch):
    assert _control_with_flips(tmp_path, monkeypatch, world()[2], 2)["n_snps"] == real_snps()


def test_audit_command__panel_on_a_subset_of_the_snps_is_aligned_on_the_shared_ones(
    tmp_path, monkeypatch
):
    public = world()[2]
    part = public.take_variants(np.arange(0, public.n_variants, 2))
    assert _control_with_flips(tmp_path, monkeypatch, part, 3)["n_snps"] == part.n_variants


def test_audit_command__panel_with_other_alleles_exits_2_naming_the_panel(tmp_path, monkeypatch):
    public = world()[2]
    strand = public.take_variants(np.arange(public.n_variants))
    complement = {"A": "T", "T": "A", "C": "G", "G": "C"}
    k = next(
        i
        for i, (r, a) in enumerate(zip(strand.variants["ref"], strand.variants["alt"], strict=True))
        if complement[r] != a
    )
    for col in ("ref", "alt"):
        strand.variants.loc[k, col] = complement[strand.variants.loc[k, col]]
    res = _audit_cli(tmp_path, monkeypatch, strand, "o")
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert f"{tmp_path / 'public'}: the public panel's alleles differ" in res.output
    assert not (tmp_path / "o").exists()
    twice = public.take_variants(np.r_[np.arange(public.n_variants), 0])
    res = _audit_cli(tmp_path, monkeypatch, twice, "o")
    assert res.exit_code == 2 and "public: the public panel lists SNP 'rs1_0' twice" in res.output


def test_audit_command__a_panel_of_members_or_of_other_snps_is_refused(tmp_path, monkeypatch):
    """``audit --public-panel`` ran its control against the members themselves when given
    the cohort as the panel, and silently left it NOT RUN for a panel sharing no SNP; both
    are errors naming the panel, as release and synthesize make the first."""
    real, *_ = world()
    res = _audit_cli(tmp_path, monkeypatch, real, "o")
    assert res.exit_code == 2, res.output
    assert "public: 300 of the public panel's 300 individuals are individuals of the cohort" in (
        res.output
    )
    assert not (tmp_path / "o").exists()
    other = real.take_variants(np.arange(5))
    other = replace(other, variants=other.variants.assign(id=[f"other{i}" for i in range(5)]))
    res = _audit_cli(tmp_path, monkeypatch, other, "o2")
    assert res.exit_code == 2 and "shares no SNP" in res.output, res.output
    assert not (tmp_path / "o2").exists()
