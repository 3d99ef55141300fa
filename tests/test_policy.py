"""Policies: schema validation with file/line/key in every error, and rule evaluation.

Fixture results documents (tests/fixtures/results_*.json) hold hand-set aggregates: the
expected findings below are computed by hand from them and the shipped thresholds.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dpgenome.errors import PolicyError
from dpgenome.findings import (
    EvaluationContext,
    Status,
    Verdict,
    claim_text,
    fmt_claim,
    is_missing,
    lookup,
)
from dpgenome.paths import policies_dir, shipped_policy
from dpgenome.policy import (
    SCHEMA,
    describe_failing,
    evaluate,
    load_policy,
    parse_policy,
    preflight,
    rule_specs,
)
from test_dossier import DEMO_PHENOTYPES_ONLY, consortium_with_control

FIXTURES = Path(__file__).parent / "fixtures"
NONE_SPENT = EvaluationContext(0.0, 0.0, 0)

MINIMAL = """\
schema_version: 1
name: test
privacy:
  max_epsilon: 10
"""


def results(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"results_{name}.json").read_text())


def finding(evaluation: Any, rule: str) -> Any:
    (match,) = [f for f in evaluation.findings if f.rule == rule]
    return match


# ---------------------------------------------------------------------------- loading


@pytest.mark.parametrize("name", ["strict", "consortium", "internal"])
def test_load_policy__shipped_policies_validate(name: str) -> None:
    policy = load_policy(shipped_policy(name))
    assert policy.name == name
    assert policy.signoff_roles, "every shipped policy names its sign-off roles"
    assert not policy.allow_no_formal_privacy or name == "internal"
    assert policy.overrides_allowed is (name != "strict")
    assert policy.max_delta is not None and policy.min_holdout is not None
    assert len(policy.sha256) == 64


def test_load_policy__every_shipped_file_is_documented() -> None:
    readme = (policies_dir() / "README.md").read_text()
    for path in policies_dir().glob("*.yaml"):
        assert path.name in readme
    for section, keys in SCHEMA.items():
        for key in keys:
            assert f"`{key}`" in readme, f"{section}.{key} is not documented in policies/README.md"


def test_parse_policy__unknown_key_names_key_and_line() -> None:
    text = MINIMAL + "  max_epsilom: 3\n"
    with pytest.raises(PolicyError) as err:
        parse_policy(text, file="p.yaml")
    assert err.value.file == "p.yaml"
    assert err.value.line == 5
    assert err.value.column == "max_epsilom"
    assert "max_epsilon" in str(err.value)  # the valid keys are listed


def test_parse_policy__unknown_section_names_line() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(MINIMAL + "fidelty:\n  min_recall: 0.5\n", file="p.yaml")
    assert (err.value.line, err.value.column) == (5, "fidelty")


@pytest.mark.parametrize(
    ("snippet", "line", "key"),
    [
        (
            "membership:\n  attacks: [dcr]\n  max_auc_ci_upper: high\n",
            7,
            "membership.max_auc_ci_upper",
        ),
        ("membership:\n  attacks: dcr\n", 6, "membership.attacks"),
        ("fidelity:\n  min_recall: 1.5\n", 6, "fidelity.min_recall"),
        ("fidelity:\n  lambda_gc_range: [1.2, 0.9]\n", 6, "fidelity.lambda_gc_range"),
        ("fidelity:\n  max_spurious_loci: 0.5\n", 6, "fidelity.max_spurious_loci"),
        ("overrides:\n  allowed: 1\n", 6, "overrides.allowed"),
        (
            "nearest_neighbour:\n  public_panel_control: 'no'\n",
            6,
            "nearest_neighbour.public_panel_control",
        ),
        (
            "canary:\n  require_lower_bound_below_claimed: 'yes'\n",
            6,
            "canary.require_lower_bound_below_claimed",
        ),
    ],
)
def test_parse_policy__wrong_type_names_key_and_line(snippet: str, line: int, key: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(MINIMAL + snippet, file="p.yaml")
    assert err.value.line == line
    assert err.value.column == key
    assert f"p.yaml, line {line}" in err.value.render()


def test_parse_policy__duplicate_key_is_an_error() -> None:
    with pytest.raises(PolicyError, match="appears twice") as err:
        parse_policy(MINIMAL + "  max_epsilon: 3\n", file="p.yaml")
    assert err.value.line == 5


def test_parse_policy__schema_version_required() -> None:
    with pytest.raises(PolicyError, match="needs 'schema_version: 1' \\(the key is missing\\)"):
        parse_policy("name: x\n")
    with pytest.raises(PolicyError, match="schema_version must be 1 \\(got 2\\)"):
        parse_policy("schema_version: 2\nname: x\n")


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("fidelity:\n  lambda_gc_range: [1.2, 0.9]\n", r"got a list \(low above high\)"),
        ("fidelity:\n  lambda_gc_range: [0.9, 1.0, 1.1]\n", r"got a list of 3 item\(s\)"),
        ("  max_delta: [1, 2]\n", r"must be .*, got a list$"),
        ("  max_delta: {a: 1}\n", r"got a mapping$"),
    ],
)
def test_parse_policy__a_wrong_shape_is_named_plainly(snippet: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as err:
        parse_policy(MINIMAL + snippet, file="p.yaml")
    assert "Node" not in str(err.value)


def test_parse_policy__exponent_without_dot_is_a_number() -> None:
    # YAML 1.1 resolves a plain 1e-6 to a string; the policy reads it as the number it shows.
    policy = parse_policy(MINIMAL + "  max_delta: 1e-6\n")
    assert policy.max_delta == pytest.approx(1e-6, rel=0, abs=0)
    with pytest.raises(PolicyError):
        parse_policy(MINIMAL + "  max_delta: '1e-6'\n")  # quoted: a string, rejected


def test_parse_policy__advisory_must_name_a_rule() -> None:
    with pytest.raises(PolicyError, match=re.escape("fidelity.recal")) as err:
        parse_policy(MINIMAL + "advisory: [fidelity.recal]\n", file="p.yaml")
    assert err.value.line == 5


def test_parse_policy__membership_limits_need_attacks() -> None:
    with pytest.raises(PolicyError, match=re.escape("membership.attacks")):
        parse_policy(MINIMAL + "membership:\n  max_auc_ci_upper: 0.6\n")


def test_load_policy__missing_file() -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy("/nonexistent/policy.yaml")
    with pytest.raises(PolicyError, match="no-such-policy: policy file not found") as err:
        load_policy("no-such-policy")
    assert "named without a path: consortium, internal, strict" in str(err.value)


def test_load_policy__not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes((MINIMAL + "# r\xe9vis\xe9 par le comit\xe9\n").encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8 text") as err:
        load_policy(path)
    assert err.value.line == MINIMAL.count("\n") + 1


def test_load_policy__a_bare_name_is_the_shipped_policy(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_policy("consortium").sha256 == load_policy(shipped_policy("consortium")).sha256
    # a file of that name in the working directory wins
    (tmp_path / "consortium").write_text("not a policy")
    with pytest.raises(PolicyError):
        load_policy("consortium")


def test_parse_policy__invalid_yaml_names_line() -> None:
    with pytest.raises(PolicyError, match="not valid YAML") as err:
        parse_policy(MINIMAL + "  bad: [1, 2\n", file="p.yaml")
    assert err.value.line is not None


# ---------------------------------------------------------------------------- lookup


def test_lookup__keys_containing_dots() -> None:
    doc = {"a": {"tpr_at_fpr_0.01": 0.2, "t": {"1e-08": {"recall": 0.5}}}}
    assert lookup(doc, "a.tpr_at_fpr_0.01") == 0.2
    assert lookup(doc, "a.t.1e-08.recall") == 0.5
    assert is_missing(lookup(doc, "a.tpr_at_fpr_0.05"))
    assert is_missing(lookup(doc, "a.tpr_at_fpr_0.01.x"))


# ---------------------------------------------------------------------------- evaluate


def test_evaluate__approve_fixture_passes_consortium() -> None:
    evaluation = evaluate(
        results("approve"), load_policy(shipped_policy("consortium")), context=NONE_SPENT
    )
    assert evaluation.verdict is Verdict.APPROVE
    assert evaluation.failing == ()
    assert evaluation.counts() == {"PASS": 25, "FAIL": 0, "NOT EVALUATED": 0}
    assert len(evaluation.findings) == len(rule_specs(load_policy(shipped_policy("consortium"))))


def test_evaluate__block_fixture_lists_every_failing_rule() -> None:
    evaluation = evaluate(
        results("block"), load_policy(shipped_policy("consortium")), context=NONE_SPENT
    )
    assert evaluation.verdict is Verdict.BLOCK
    assert {f.rule for f in evaluation.failing} == {
        "privacy.max_epsilon",  # 14 > 10
        "nearest_neighbour.exact_duplicate_genotypes",  # 2 > 0
        "kinship.excess_first_degree",  # 3.84e-5 > 0
        "fidelity.spurious_loci",  # 1 > 0
    }
    # advisory in consortium: shown, never blocking
    residual = finding(evaluation, "fidelity.matching_residual")
    assert (residual.status, residual.measured) == (Status.FAIL, 0.6)  # 0.6 > 0.5
    assert residual in evaluation.warnings
    eps = finding(evaluation, "privacy.max_epsilon")
    assert (eps.measured, eps.threshold, eps.status) == (14.0, "<= 10", Status.FAIL)
    assert eps.policy_line is not None
    lines = describe_failing(evaluation)
    assert any("measured 14, required <= 10" in line for line in lines)


def test_evaluate__ci_upper_bound_is_compared_and_reported() -> None:
    # strict: AUC upper CI <= 0.55; dcr has AUC 0.512 with CI [0.468, 0.556] -> FAIL on the CI
    evaluation = evaluate(
        results("approve"), load_policy(shipped_policy("strict")), context=NONE_SPENT
    )
    dcr = finding(evaluation, "membership.dcr.auc")
    assert dcr.status is Status.FAIL
    assert dcr.measured == 0.512 and dcr.ci == (0.468, 0.556)
    af = finding(evaluation, "membership.allele_frequency.auc")  # CI upper 0.547
    assert af.status is Status.PASS


def test_evaluate__threshold_is_inclusive() -> None:
    doc = results("approve")
    doc["audit"]["attacks"]["dcr"]["auc_ci"] = [0.45, 0.6]  # exactly at consortium's 0.6
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert finding(evaluation, "membership.dcr.auc").status is Status.PASS
    doc["audit"]["attacks"]["dcr"]["auc_ci"] = [0.45, 0.6000001]
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert finding(evaluation, "membership.dcr.auc").status is Status.FAIL


def test_evaluate__missing_measurement_is_never_a_pass() -> None:
    evaluation = evaluate(
        results("partial"), load_policy(shipped_policy("consortium")), context=NONE_SPENT
    )
    assert evaluation.verdict is Verdict.BLOCK
    not_evaluated = {f.rule for f in evaluation.findings if f.status is Status.NOT_EVALUATED}
    assert not_evaluated == {
        "nearest_neighbour.centred_share",  # CI removed: the rule needs it
        "canary.lower_bound",  # canary block removed
        "fidelity.lambda_gc",
        "fidelity.matching_residual",  # no record of the association release (advisory)
    }
    assert {f.rule for f in evaluation.failing} == not_evaluated - {"fidelity.matching_residual"}
    nn = finding(evaluation, "nearest_neighbour.centred_share")
    assert nn.measured == 0.503 and "share_closer_to_members_ci is missing" in nn.detail


def test_evaluate__not_run_audit_reason_is_shown() -> None:
    doc = results("approve")
    doc["audit"]["attacks"]["shadow"] = {"status": "NOT RUN", "reason": "no train_fn"}
    evaluation = evaluate(doc, load_policy(shipped_policy("strict")), context=NONE_SPENT)
    shadow = finding(evaluation, "membership.shadow.auc")
    assert shadow.status is Status.NOT_EVALUATED
    assert "NOT RUN: no train_fn" in shadow.detail


def test_evaluate__advisory_rule_never_blocks() -> None:
    doc = results("approve")
    del doc["audit"]["attribute_inference"]
    policy = load_policy(shipped_policy("consortium"))  # attribute_inference.risk is advisory
    evaluation = evaluate(doc, policy, context=NONE_SPENT)
    risk = finding(evaluation, "attribute_inference.risk")
    assert risk.status is Status.NOT_EVALUATED and not risk.required
    assert evaluation.verdict is Verdict.APPROVE
    assert evaluation.warnings == (risk,)


@pytest.mark.parametrize("value", [float("nan"), "0.5", True, None])
def test_evaluate__non_numeric_metric_is_not_evaluated(value: Any) -> None:
    doc = results("approve")
    doc["fidelity"]["gwas"]["thresholds"]["1e-08"]["recall"] = value
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert finding(evaluation, "fidelity.recall").status is Status.NOT_EVALUATED
    assert evaluation.verdict is Verdict.BLOCK


def test_evaluate__no_formal_privacy_blocked_unless_allowed() -> None:
    doc = results("inf")
    strict = evaluate(doc, load_policy(shipped_policy("strict")), context=NONE_SPENT)
    nofp = finding(strict, "privacy.no_formal_privacy")
    assert nofp.status is Status.FAIL and "NO FORMAL PRIVACY" in nofp.detail
    assert math.isinf(finding(strict, "privacy.max_epsilon").measured)
    internal = evaluate(doc, load_policy(shipped_policy("internal")), context=NONE_SPENT)
    assert internal.verdict is Verdict.APPROVE
    assert "NO FORMAL PRIVACY" in finding(internal, "privacy.no_formal_privacy").detail


def test_evaluate__secure_mode_required_where_the_policy_asks() -> None:
    """``privacy.require_secure_mode``: a release whose ledger says its noise came from
    numpy's samplers fails, one without the record is not evaluated (never a pass), and the
    open-publication policy asks for it while the others do not."""
    policy = parse_policy(MINIMAL + "  require_secure_mode: true\n")
    doc = results("approve")
    doc["ledger"]["secure_mode"] = True
    assert finding(evaluate(doc, policy, context=NONE_SPENT), "privacy.secure_mode").status is (
        Status.PASS
    )
    doc["ledger"]["secure_mode"] = False
    failed = finding(evaluate(doc, policy, context=NONE_SPENT), "privacy.secure_mode")
    assert failed.status is Status.FAIL and "floating-point samplers" in failed.detail
    del doc["ledger"]["secure_mode"]
    missing = finding(evaluate(doc, policy, context=NONE_SPENT), "privacy.secure_mode")
    assert missing.status is Status.NOT_EVALUATED
    doc["ledger"]["secure_mode"] = "yes"
    odd = finding(evaluate(doc, policy, context=NONE_SPENT), "privacy.secure_mode")
    assert odd.status is Status.NOT_EVALUATED and "not a bool" in odd.detail
    assert load_policy(shipped_policy("strict")).require_secure_mode
    # consortium releases leave the institution: secure mode is required there too
    assert load_policy(shipped_policy("consortium")).require_secure_mode
    assert not load_policy(shipped_policy("internal")).require_secure_mode
    assert not any(r.id == "privacy.secure_mode" for r in rule_specs(parse_policy(MINIMAL)))


def test_evaluate__delta_auto_bound_uses_n_members() -> None:
    # The mechanism sees the training members: n = 768 members of 960 (80/20 split).
    # 768 ** -1.1 = exp(-1.1 * 6.64379) = exp(-7.30817) = 6.7004e-4
    bound = 768**-1.1
    assert bound == pytest.approx(6.7004e-4, rel=1e-4)
    doc = results("approve")
    doc["split"]["n_members"] = 768
    policy = load_policy(shipped_policy("consortium"))
    doc["ledger"]["delta"] = bound  # exactly the default delta of a release
    at = finding(evaluate(doc, policy, context=NONE_SPENT), "privacy.max_delta")
    assert at.status is Status.PASS
    # shown to the same digits, rounded up: it read "0.0006701 | <= ... = 0.00067"
    assert (
        claim_text(at.rule, at.measured) == "0.0006701" and "= 0.0006701 (n = 768" in at.threshold
    )
    doc["ledger"]["delta"] = bound * 1.001
    delta = finding(evaluate(doc, policy, context=NONE_SPENT), "privacy.max_delta")
    assert delta.status is Status.FAIL and "n = 768" in delta.threshold
    del doc["split"]["n_members"]  # falls back to the cohort size (960): stricter
    doc["ledger"]["delta"] = 960**-1.1 * 1.001
    delta = finding(evaluate(doc, policy, context=NONE_SPENT), "privacy.max_delta")
    assert delta.status is Status.FAIL and "n = 960" in delta.threshold
    del doc["cohort"]["n_samples"]
    delta = finding(evaluate(doc, policy, context=NONE_SPENT), "privacy.max_delta")
    assert delta.status is Status.NOT_EVALUATED


def test_evaluate__lifetime_cap_uses_context() -> None:
    doc = results("approve")  # epsilon 8; consortium lifetime cap 20
    policy = load_policy(shipped_policy("consortium"))
    unknown = finding(evaluate(doc, policy), "privacy.max_lifetime_epsilon")
    assert unknown.status is Status.NOT_EVALUATED  # no ledger consulted: blocks
    ok = finding(
        evaluate(doc, policy, context=EvaluationContext(12.0, 2e-5, 1)),
        "privacy.max_lifetime_epsilon",
    )
    assert ok.status is Status.PASS and ok.measured == 20.0
    over = finding(
        evaluate(doc, policy, context=EvaluationContext(12.5, 2e-5, 2)),
        "privacy.max_lifetime_epsilon",
    )
    assert over.status is Status.FAIL and over.measured == 20.5
    inf = finding(
        evaluate(doc, policy, context=EvaluationContext(math.inf, 0.0, 1)),
        "privacy.max_lifetime_epsilon",
    )
    assert inf.status is Status.FAIL
    # composed with this release's mechanisms: the smaller of that and the sum holds
    composed = finding(
        evaluate(doc, policy, context=EvaluationContext(12.5, 2e-5, 2, 17.0)),
        "privacy.max_lifetime_epsilon",
    )
    assert composed.status is Status.PASS and composed.measured == 17.0
    assert "20.5 adding epsilons" in composed.detail
    looser = finding(
        evaluate(doc, policy, context=EvaluationContext(12.0, 2e-5, 1, 21.0)),
        "privacy.max_lifetime_epsilon",
    )
    assert looser.status is Status.PASS and looser.measured == 20.0
    for context in (
        EvaluationContext(12.5, 2e-5, 2, 17.0),
        EvaluationContext(math.inf, 0.0, 1, math.inf),
        EvaluationContext(1.0, 0.0, 1),
    ):
        data = json.loads(json.dumps(context.to_dict(), allow_nan=False))
        assert EvaluationContext.from_dict(data) == context


def test_evaluate__lifetime_delta_cap_adds_deltas() -> None:
    """An individual's deltas add over the releases that included them: the cap judges the
    ledger's sum with this release, or the sum before plus this release's delta; without a
    ledger it is NOT EVALUATED (blocks). A release without formal privacy, where allowed, is
    not judged on delta."""
    policy = parse_policy(MINIMAL + "  max_lifetime_delta: 1.0e-3\n")
    assert policy.max_lifetime_delta == 1e-3
    doc = results("approve")
    doc["ledger"]["delta"] = 4e-4
    rule = "privacy.max_lifetime_delta"
    assert finding(evaluate(doc, policy), rule).status is Status.NOT_EVALUATED
    ok = finding(evaluate(doc, policy, context=EvaluationContext(8.0, 6e-4, 1)), rule)
    assert ok.status is Status.PASS and ok.measured == pytest.approx(1e-3)
    assert ok.detail.startswith("0.0006 spent before by its most-spent individual, over 1")
    over = finding(evaluate(doc, policy, context=EvaluationContext(8.0, 7e-4, 2)), rule)
    assert over.status is Status.FAIL and over.measured == pytest.approx(1.1e-3)
    # the ledger's figure with this release, when given, is the one judged
    after = EvaluationContext(8.0, 7e-4, 2, 12.0, 9e-4)
    judged = finding(evaluate(doc, policy, context=after), rule)
    assert judged.status is Status.PASS and judged.measured == pytest.approx(9e-4)
    data = json.loads(json.dumps(after.to_dict(), allow_nan=False))
    assert EvaluationContext.from_dict(data) == after
    del doc["ledger"]["delta"]
    missing = finding(evaluate(doc, policy, context=NONE_SPENT), rule)
    assert missing.status is Status.NOT_EVALUATED
    for bad in ("auto", "0", "1", "-1e-5", "yes"):
        with pytest.raises(PolicyError, match="max_lifetime_delta"):
            parse_policy(MINIMAL + f"  max_lifetime_delta: {bad}\n")


def test_parse_policy__an_unknown_attack_is_refused_at_load() -> None:
    """A typo in membership.attacks ran the whole release, then blocked it NOT EVALUATED."""
    text = MINIMAL + "membership:\n  attacks: [dcr, density_ratoi]\n  max_auc_ci_upper: 0.6\n"
    with pytest.raises(PolicyError, match="lists 'density_ratoi', which is not an attack") as err:
        parse_policy(text)
    assert err.value.line == 6 and err.value.column == "membership.attacks"


def test_evaluate__canary_lower_bound_above_claim_fails() -> None:
    doc = results("approve")
    doc["audit"]["canary"]["epsilon_lower_bound"] = 8.2  # claimed 8
    canary = finding(
        evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT),
        "canary.lower_bound",
    )
    assert canary.status is Status.FAIL and "accounting or implementation error" in canary.detail


def test_evaluate__a_canary_pass_that_could_not_fail_says_so() -> None:
    """A canary audit whose best possible outcome is below the claim passes whatever the
    synthesizer leaks: its finding says so (the dossier's table counted it as evidence)."""
    doc = results("approve")
    policy = load_policy(shipped_policy("consortium"))
    doc["audit"]["canary"] |= {"epsilon_lower_bound": 0.0, "max_lower_bound": 1.718}
    weak = finding(evaluate(doc, policy, context=NONE_SPENT), "canary.lower_bound")
    assert weak.status is Status.PASS
    assert "uninformative: no outcome of this audit can show more than 1.718" in weak.detail
    doc["audit"]["canary"]["max_lower_bound"] = 9.0  # above the claimed 8
    able = finding(evaluate(doc, policy, context=NONE_SPENT), "canary.lower_bound")
    assert able.status is Status.PASS and "uninformative" not in able.detail


def test_evaluate__loci_fraction_and_attribute_worst_phenotype() -> None:
    doc = results("approve")
    doc["fidelity"]["gwas"]["loci"]["recovered"] = 1  # 1 of 2 = 0.5 >= consortium 0.5
    doc["audit"]["attribute_inference"]["BMD"] = {"risk": 0.1, "risk_ci": [0.02, 0.25]}
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    loci = finding(evaluation, "fidelity.loci_recovered")
    assert (loci.status, loci.measured, loci.detail) == (Status.PASS, 0.5, "1 of 2 loci")
    risk = finding(evaluation, "attribute_inference.risk")
    assert risk.status is Status.FAIL and risk.ci == (0.02, 0.25) and "BMD" in risk.detail


def test_evaluate__precision_finding_says_where_the_false_hits_stand() -> None:
    doc = results("approve")
    t8 = doc["fidelity"]["gwas"]["thresholds"]["1e-08"]
    policy = load_policy(shipped_policy("consortium"))
    t8["precision"] = 0.6
    plain = finding(evaluate(doc, policy, context=NONE_SPENT), "fidelity.precision")
    assert plain.status is Status.FAIL and plain.detail == ""  # older results: no breakdown
    doc["fidelity"]["gwas"]["loci"]["support_threshold"] = 2e-6
    t8 |= {"false_hits": 40, "false_hits_supported": 40, "false_hits_real_log10_p": [6.3, 8.0]}
    precision = finding(evaluate(doc, policy, context=NONE_SPENT), "fidelity.precision")
    assert (precision.status, precision.measured) == (Status.FAIL, 0.6)
    assert precision.detail == (
        "40 synthetic hits are not real hits at 1e-8; all reach p < 2e-06 in the real GWAS "
        "(real -log10 p 6.3-8.0): SNPs of real loci short of the line"
    )
    t8 |= {"false_hits_supported": 30}
    detail = finding(evaluate(doc, policy, context=NONE_SPENT), "fidelity.precision").detail
    assert "; 30 of them reach p < 2e-06" in detail
    assert detail.endswith("; the other 10: association the real data do not show")
    t8 |= {"false_hits_supported": 0}
    detail = finding(evaluate(doc, policy, context=NONE_SPENT), "fidelity.precision").detail
    assert "; none reaches p < 2e-06 in the real GWAS (real -log10 p 6.3-8.0): association" in (
        detail
    )
    t8 |= {"false_hits": 1, "false_hits_supported": 1, "false_hits_real_log10_p": [7.8, 7.8]}
    assert finding(evaluate(doc, policy, context=NONE_SPENT), "fidelity.precision").detail == (
        "1 synthetic hit is not a real hit at 1e-8; it reaches p < 2e-06 in the real GWAS "
        "(real -log10 p 7.8): SNPs of real loci short of the line"
    )
    t8 |= {"false_hits": 0, "false_hits_supported": 0, "false_hits_real_log10_p": None}
    assert finding(evaluate(doc, policy, context=NONE_SPENT), "fidelity.precision").detail == ""


def test_evaluate__custom_rule_on_any_path() -> None:
    policy = parse_policy(
        MINIMAL + "custom:\n  - id: af\n    metric: fidelity.allele_frequency_correlation\n"
        "    min: 0.995\n"
    )
    evaluation = evaluate(results("approve"), policy)
    af = finding(evaluation, "custom.af")
    assert (af.status, af.measured) == (Status.FAIL, 0.991)


def test_evaluate__matching_residual_rule() -> None:
    """A carried region's relative residual is compared with the limit (inclusive); a release
    that carried no association has nothing to reproduce (PASS, n/a); without an association
    path the rule is NOT EVALUATED, which blocks."""
    policy = parse_policy(MINIMAL + "fidelity:\n  max_matching_residual: 0.1\n")
    carried = {"chr": "5", "dropped": False}
    cases = [
        ({"regions": [carried], "matching_relative_residual": 0.1}, Status.PASS, 0.1),
        ({"regions": [carried], "matching_relative_residual": 0.25}, Status.FAIL, 0.25),
        ({"regions": [{"chr": "5", "dropped": True}]}, Status.PASS, "n/a"),
        ({"regions": []}, Status.PASS, "n/a"),
        ({"regions": [carried]}, Status.NOT_EVALUATED, None),
        (None, Status.NOT_EVALUATED, None),
    ]
    for association, status, measured in cases:
        doc = results("approve")
        doc["synthesis"] = {} if association is None else {"association": association}
        evaluation = evaluate(doc, policy, context=NONE_SPENT)
        rule = finding(evaluation, "fidelity.matching_residual")
        assert (rule.status, rule.measured) == (status, measured), association
        assert (evaluation.verdict is Verdict.BLOCK) == (status is not Status.PASS)


def test_evaluate__lambda_excess_rule_is_relative_to_the_members() -> None:
    """``max_lambda_gc_excess``: the synthetic lambda less the members' (a stratified trait
    inflates both: stop 54's structured demo, synthetic 1.39 for the members' 1.84, passes
    where the absolute band fails it); at the limit inclusive; NOT EVALUATED without both
    values, which blocks."""
    policy = parse_policy(MINIMAL + "fidelity:\n  max_lambda_gc_excess: 0.15\n")
    assert policy.max_lambda_gc_excess == 0.15
    cases = [
        ({"synthetic": 1.39, "real": 1.84}, Status.PASS),
        ({"synthetic": 1.25, "real": 1.125}, Status.PASS),
        ({"synthetic": 1.3, "real": 1.05}, Status.FAIL),
        ({"synthetic": 1.3}, Status.NOT_EVALUATED),
        ({"synthetic": 1.3, "real": float("nan")}, Status.NOT_EVALUATED),
    ]
    for pair, status in cases:
        doc = results("approve")
        doc["fidelity"]["gwas"]["lambda_gc"] = pair
        evaluation = evaluate(doc, policy, context=NONE_SPENT)
        rule = finding(evaluation, "fidelity.lambda_gc_excess")
        assert rule.status is status, pair
        if status is not Status.NOT_EVALUATED:
            assert rule.measured == pytest.approx(pair["synthetic"] - pair["real"])
        assert (evaluation.verdict is Verdict.BLOCK) == (status is not Status.PASS)
    with pytest.raises(PolicyError, match="max_lambda_gc_excess"):
        parse_policy(MINIMAL + "fidelity:\n  max_lambda_gc_excess: -0.1\n")


def test_evaluate__does_not_mutate_results() -> None:
    doc = results("block")
    before = copy.deepcopy(doc)
    evaluate(doc, load_policy(shipped_policy("strict")), context=NONE_SPENT)
    assert doc == before


def test_evaluation_to_dict__round_trips_through_json() -> None:
    evaluation = evaluate(results("inf"), load_policy(shipped_policy("strict")), context=NONE_SPENT)
    data = json.loads(json.dumps(evaluation.to_dict(), allow_nan=False))
    assert data["verdict"] == "BLOCK"
    assert data["failing"] == [f.rule for f in evaluation.failing]
    assert EvaluationContext.from_dict(data["context"]) == NONE_SPENT


def test_evaluate__phenotype_columns_typed_from_the_data_block_strict_and_consortium() -> None:
    """A column whose type nothing public fixes is an assumption outside the ledger: the
    strict and consortium policies refuse it, internal does not look."""
    doc = results("approve")
    doc["cohort"]["phenotype_types"] = {
        "declared": None,
        "typed_from_data": ["bmi", "site"],
        "n_typed_from_data": 2,
    }
    for name in ("strict", "consortium"):
        evaluation = evaluate(doc, load_policy(shipped_policy(name)), context=NONE_SPENT)
        f = finding(evaluation, "privacy.phenotype_types")
        assert (f.status, f.measured, f.threshold) == (Status.FAIL, 2.0, "<= 0")
        assert f in evaluation.failing
    internal = evaluate(doc, load_policy(shipped_policy("internal")), context=NONE_SPENT)
    assert not any(f.rule == "privacy.phenotype_types" for f in internal.findings)
    del doc["cohort"]["phenotype_types"]  # a results document from before the record
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert finding(evaluation, "privacy.phenotype_types").status is Status.NOT_EVALUATED


# ---------------------------------------------------------------- public-panel control


def _split_favours_panel_relatives() -> dict[str, Any]:
    """The approve fixture with the demo's distance figures at stop 33: the raw share's CI
    reaches 0.613, the panel itself (never split) gives 0.580, the synthetic genotypes'
    excess over it is -0.024 [-0.103, 0.055]; the phenotype columns alone show nothing."""
    doc = results("approve")
    doc["audit"]["attacks"]["dcr"] |= {"auc": 0.5305, "auc_ci": [0.4812, 0.5776]}
    doc["audit"]["nearest_neighbour"] |= {
        "share_closer_to_members": 0.5525,
        "share_closer_to_members_ci": [0.492, 0.613],
        "phenotypes_only": dict(DEMO_PHENOTYPES_ONLY),
    }
    doc["audit"]["public_control"] = {
        "dcr_auc_synthetic": 0.5206,
        "dcr_auc_public": 0.5772,
        "dcr_auc_excess": -0.0567,
        "dcr_auc_excess_ci": [-0.1028, -0.0034],
        "share_closer_synthetic": 0.5555,
        "share_closer_public": 0.5795,
        "share_closer_excess": -0.024,
        "share_closer_excess_ci": [-0.1035, 0.0555],
    }
    return doc


SHARE = "nearest_neighbour.share_closer_to_members"


def test_evaluate__public_panel_control_judges_genotype_excess_and_phenotypes_alone() -> None:
    doc = _split_favours_panel_relatives()
    evaluation = evaluate(doc, load_policy(consortium_with_control()), context=NONE_SPENT)
    assert evaluation.verdict is Verdict.APPROVE
    share = finding(evaluation, SHARE)
    assert share.status is Status.PASS
    assert (share.measured, share.ci) == (-0.024, (-0.1035, 0.0555))
    assert "excess over the public panel <= 0.1" in share.threshold
    assert "phenotype columns alone: 95% CI upper bound <= 0.6" in share.threshold
    assert "against the panel's 0.5795" in share.detail
    assert "together 0.5525 (0.492 – 0.613), shown, not judged" in share.detail
    dcr = finding(evaluation, "membership.dcr.auc")
    assert (dcr.status, dcr.measured) == (Status.PASS, -0.0567)
    # the raw figures judged at the same bound: the raw share's CI fails 0.6
    policy = replace(load_policy(consortium_with_control()), public_panel_control=False)
    raw = evaluate(doc, policy, context=NONE_SPENT)
    assert finding(raw, SHARE).status is Status.FAIL
    assert (finding(raw, SHARE).measured, raw.verdict) == (0.5525, Verdict.BLOCK)
    # consortium as shipped judges the centred share (0.503, CI up to 0.554): it passes
    shipped = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert SHARE not in {f.rule for f in shipped.findings}
    centred = finding(shipped, "nearest_neighbour.centred_share")
    assert (centred.status, centred.ci) == (Status.PASS, (0.452, 0.554))
    # strict judges it at 0.55
    strict = evaluate(doc, load_policy(shipped_policy("strict")), context=NONE_SPENT)
    assert finding(strict, "nearest_neighbour.centred_share").status is Status.FAIL


@pytest.mark.parametrize(
    ("path", "upper", "status"),
    [
        ("public_control.share_closer_excess_ci", 0.1, Status.PASS),  # inclusive
        ("public_control.share_closer_excess_ci", 0.1001, Status.FAIL),
        ("nearest_neighbour.phenotypes_only.share_closer_to_members_ci", 0.6, Status.PASS),
        ("nearest_neighbour.phenotypes_only.share_closer_to_members_ci", 0.6001, Status.FAIL),
    ],
)
def test_evaluate__public_panel_control_either_part_fails_the_rule(
    path: str, upper: float, status: Status
) -> None:
    doc = _split_favours_panel_relatives()
    *parents, leaf = path.split(".")
    node = doc["audit"]
    for key in parents:
        node = node[key]
    node[leaf] = [node[leaf][0], upper]
    evaluation = evaluate(doc, load_policy(consortium_with_control()), context=NONE_SPENT)
    assert finding(evaluation, SHARE).status is status


def test_evaluate__public_panel_control_bound_is_inclusive_as_shown() -> None:
    """The excess is compared with the threshold shown (bound - 0.5): 0.5 + 0.07 <= 0.57
    is False in floating point, 0.07 <= 0.07 is True."""
    doc = _split_favours_panel_relatives()
    doc["audit"]["public_control"]["share_closer_excess_ci"] = [-0.03, 0.07]
    policy = replace(
        load_policy(consortium_with_control()), max_share_closer_to_members_ci_upper=0.57
    )
    share = finding(evaluate(doc, policy, context=NONE_SPENT), SHARE)
    assert "excess over the public panel <= 0.07;" in share.threshold
    assert share.status is Status.PASS


def test_evaluate__public_panel_control_without_a_panel_judges_the_raw_figures() -> None:
    doc = _split_favours_panel_relatives()
    doc["audit"]["public_control"] = {"status": "NOT RUN", "reason": "no public panel given"}
    evaluation = evaluate(doc, load_policy(consortium_with_control()), context=NONE_SPENT)
    share = finding(evaluation, SHARE)
    assert (share.status, share.measured, share.ci) == (Status.FAIL, 0.5525, (0.492, 0.613))
    assert "the raw figures are judged" in share.detail
    assert "NOT RUN: no public panel given" in share.detail
    assert finding(evaluation, "membership.dcr.auc").status is Status.PASS  # 0.5776 <= 0.6


def test_evaluate__public_panel_control_needs_the_phenotype_part() -> None:
    doc = _split_favours_panel_relatives()
    del doc["audit"]["nearest_neighbour"]["phenotypes_only"]  # an audit from before stop 33
    evaluation = evaluate(doc, load_policy(consortium_with_control()), context=NONE_SPENT)
    assert finding(evaluation, SHARE).status is Status.NOT_EVALUATED
    assert evaluation.verdict is Verdict.BLOCK
    # distances without phenotype columns: the genotype excess is the whole rule
    doc["audit"]["nearest_neighbour"]["phenotypes_only"] = {
        "status": "NOT RUN",
        "reason": "the distance audits used no phenotype column",
    }
    evaluation = evaluate(doc, load_policy(consortium_with_control()), context=NONE_SPENT)
    share = finding(evaluation, SHARE)
    assert share.status is Status.PASS
    assert "no phenotype column in the distances" in share.detail


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        ("split.n_members", float("inf"), "privacy.max_delta"),
        ("fidelity.gwas.loci.real_loci", float("inf"), "fidelity.loci_recovered"),
        ("synthesis.association.regions", 5, "fidelity.matching_residual"),
    ],
)
def test_evaluate__hand_edited_inner_values_are_not_evaluated_not_a_crash(
    path: str, value: Any, rule: str
) -> None:
    """A results document edited by hand (``verify`` re-evaluates one) with a value of the
    wrong kind: the rule reading it is NOT EVALUATED, with the reason."""
    doc = results("approve")
    *parents, leaf = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    node[leaf] = value
    found = finding(
        evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT), rule
    )
    assert found.status is Status.NOT_EVALUATED, found


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (7.9827, 4, "7.983"),  # an auditor's recomputed claim (it printed 7.98 / 7.983)
        (7.9827, 3, "7.99"),
        (10.0004, 4, "10.01"),  # over a cap of 10: the printed claim shows it (not "10")
        (8.0, 4, "8"),  # exact values do not move a step up
        (0.0125, 4, "0.0125"),
        (0.003636789, 3, "0.00364"),
        (2.5e-7, 3, "2.5e-07"),
        (8.000000000000002, 4, "8"),  # float noise of a sum is not a claim
        (math.inf, 4, "∞"),
        (None, 4, "—"),
    ],
)
def test_fmt_claim__rounds_a_privacy_claim_up(value: float, digits: int, text: str) -> None:
    assert fmt_claim(value, digits) == text


def test_describe_failing__the_epsilon_cap_shows_a_claim_over_it() -> None:
    """A release at 10.0004 under a cap of 10 fails; the line says 10.01, not 10."""
    policy = parse_policy("schema_version: 1\nname: t\nprivacy:\n  max_epsilon: 10\n")
    results = {"ledger": {"epsilon": 10.0004, "delta": 1e-5, "unit": "individual"}}
    lines = describe_failing(evaluate(results, policy, context=EvaluationContext()))
    assert any("privacy.max_epsilon" in line and "measured 10.01," in line for line in lines), lines


def test_distinct_share_rule__judges_the_exact_p_value() -> None:
    """``min_distinct_share_p_value``: a p-value at or above the bound passes, below it fails,
    and an audit without the test is NOT EVALUATED (a missing measurement is never a pass)."""
    policy = parse_policy(
        "schema_version: 1\nname: t\nnearest_neighbour:\n  min_distinct_share_p_value: 0.01\n"
    )

    def status(nn: dict[str, float]) -> Status:
        results = {"audit": {"nearest_neighbour": nn}}
        found = {f.rule: f for f in evaluate(results, policy, context=EvaluationContext()).findings}
        return found["nearest_neighbour.distinct_share"].status

    assert status({"distinct_share_p_value": 0.2}) is Status.PASS
    assert status({"distinct_share_p_value": 0.01}) is Status.PASS
    assert status({"distinct_share_p_value": 0.004}) is Status.FAIL
    assert status({}) is Status.NOT_EVALUATED


def test_centred_share_rule__judges_the_upper_ci_bound_of_the_centred_share() -> None:
    """``max_centred_share_ci_upper`` reads ``audit.nearest_neighbour.centred``: its upper CI
    bound, not the raw share's, decides; a release whose audit lacks it is NOT EVALUATED."""
    policy = parse_policy(
        "schema_version: 1\nname: t\nnearest_neighbour:\n  max_centred_share_ci_upper: 0.6\n"
    )
    assert policy.max_share_closer_to_members_ci_upper is None

    def status(centred: dict[str, object] | None) -> Status:
        nn: dict[str, object] = {
            "share_closer_to_members": 0.58,
            "share_closer_to_members_ci": [0.52, 0.64],  # the raw share: not judged here
        }
        if centred is not None:
            nn["centred"] = centred
        results = {"audit": {"nearest_neighbour": nn}}
        found = {f.rule: f for f in evaluate(results, policy, context=EvaluationContext()).findings}
        assert "nearest_neighbour.share_closer_to_members" not in found
        return found["nearest_neighbour.centred_share"].status

    ok = {"share_closer_to_members": 0.51, "share_closer_to_members_ci": [0.46, 0.56]}
    assert status(ok) is Status.PASS
    assert status(ok | {"share_closer_to_members_ci": [0.46, 0.6]}) is Status.PASS
    assert status(ok | {"share_closer_to_members_ci": [0.5, 0.61]}) is Status.FAIL
    assert status(None) is Status.NOT_EVALUATED


def test_evaluate__replace_one_caps() -> None:
    """``max_replace_one_epsilon`` judges the ledger's replace-one epsilon (missing: NOT
    EVALUATED); ``max_lifetime_replace_one_epsilon`` the lifetime ledger's replace-one total
    with this release (not computed, or no ledger: NOT EVALUATED; no bound: FAIL). The
    context carries the total, an infinite one too, through the manifest."""
    policy = parse_policy(
        MINIMAL + "  max_replace_one_epsilon: 20\n  max_lifetime_replace_one_epsilon: 40\n"
    )
    doc = results("approve")
    one, life = "privacy.max_replace_one_epsilon", "privacy.max_lifetime_replace_one_epsilon"
    assert finding(evaluate(doc, policy, context=NONE_SPENT), one).status is Status.NOT_EVALUATED
    doc["ledger"]["replace_one"] = {"epsilon": 19.56, "delta": doc["ledger"]["delta"]}
    ok = finding(evaluate(doc, policy, context=NONE_SPENT), one)
    assert ok.status is Status.PASS and ok.measured == 19.56
    doc["ledger"]["replace_one"]["epsilon"] = 20.5
    assert finding(evaluate(doc, policy, context=NONE_SPENT), one).status is Status.FAIL
    assert finding(evaluate(doc, policy), life).status is Status.NOT_EVALUATED
    spent = EvaluationContext(8.0, 1e-5, 1, 12.7, 2e-5)
    assert finding(evaluate(doc, policy, context=spent), life).status is Status.NOT_EVALUATED
    for total, status in ((32.3, Status.PASS), (43.8, Status.FAIL), (math.inf, Status.FAIL)):
        context = replace(spent, lifetime_replace_one_after=total)
        judged = finding(evaluate(doc, policy, context=context), life)
        assert judged.status is status and judged.measured == total
        data = json.loads(json.dumps(context.to_dict(), allow_nan=False))
        assert EvaluationContext.from_dict(data) == context
    assert "lifetime_replace_one_after" not in spent.to_dict()  # older manifests unchanged


def test_preflight__refuses_only_what_training_cannot_change() -> None:
    """Before training: the asked epsilon over a cap, no formal privacy where it is not
    allowed, a delta over the bound, secure mode off where required, and a lifetime already
    spent to its cap. A target within every cap, or an unknown lifetime, passes."""
    strict = load_policy(shipped_policy("strict"))
    consortium = load_policy(shipped_policy("consortium"))
    internal = load_policy(shipped_policy("internal"))
    ok = {"epsilon": 1.0, "delta": 1e-5, "secure": True, "n_members": 768}
    assert preflight(strict, **ok) == []
    assert preflight(strict, **ok, lifetime_spent=1.9) == []
    rules = [p.split(":")[0] for p in preflight(strict, **{**ok, "epsilon": 8.0})]
    assert rules == ["privacy.max_epsilon", "privacy.max_lifetime_epsilon"]
    (why,) = preflight(strict, **{**ok, "epsilon": 1.5}, lifetime_spent=0.0)
    assert why.startswith("privacy.max_epsilon: epsilon 1.5 asked for, at most 1 allowed (")
    assert "strict.yaml, line " in why
    (why,) = preflight(strict, **ok, lifetime_spent=3.0)
    assert "already spent epsilon 3 in earlier releases" in why and "cap is 3" in why
    (why,) = preflight(strict, **ok, lifetime_spent=math.inf)
    assert "already spent epsilon ∞" in why
    # delta: auto = 1/n^1.1 of the training members (1/768^1.1 = 6.6e-4)
    assert preflight(strict, **{**ok, "delta": 768**-1.1}) == []
    (why,) = preflight(strict, **{**ok, "delta": 1e-3})
    assert why.startswith("privacy.max_delta: delta 0.001 asked for, at most 1/n^1.1 = ")
    (why,) = preflight(strict, **{**ok, "secure": False})
    assert why.startswith("privacy.secure_mode: ")
    (why,) = preflight(strict, **ok, n_holdout=75)
    assert why.startswith("privacy.min_holdout: the split leaves 75 holdout individuals, at ")
    assert preflight(strict, **ok, n_holdout=150) == []
    assert preflight(internal, **{**ok, "secure": False, "epsilon": 10.0}) == []
    (why,) = preflight(consortium, **{**ok, "secure": False, "epsilon": 10.0})
    assert why.startswith("privacy.secure_mode: ")
    # no formal privacy: refused where not allowed; internal allows it, caps and all
    rules = [p.split(":")[0] for p in preflight(consortium, **{**ok, "epsilon": math.inf})]
    assert rules == ["privacy.no_formal_privacy"]
    assert preflight(internal, **{**ok, "epsilon": math.inf}, lifetime_spent=math.inf) == []
    # after a no-DP copy, internal's lifetime rule passes a DP release (as after training)
    assert preflight(internal, **ok, lifetime_spent=math.inf) == []
    assert preflight(internal, **{**ok, "epsilon": 31.0})[0].startswith("privacy.max_epsilon")


def test_evaluate__a_fail_on_a_wide_ci_says_the_estimate_is_within_the_limit() -> None:
    """A rule on a CI bound that fails while the estimate meets the limit says so (a signer
    would otherwise read it as a detected leak); one whose estimate is over does not."""
    policy = load_policy(shipped_policy("strict"))
    doc = results("approve")
    doc["audit"]["attribute_inference"]["abBMD"].update(risk=0.0, risk_ci=[0.0, 0.38])
    doc["audit"]["attacks"]["dcr"].update(auc=0.52, auc_ci=[0.45, 0.59])
    evaluation = evaluate(doc, policy, context=NONE_SPENT)
    for rule in ("attribute_inference.risk", "membership.dcr.auc"):
        found = finding(evaluation, rule)
        assert found.status is Status.FAIL and "the estimate itself is within" in found.detail
    doc["audit"]["attacks"]["dcr"].update(auc=0.56, auc_ci=[0.5, 0.62])
    found = finding(evaluate(doc, policy, context=NONE_SPENT), "membership.dcr.auc")
    assert found.status is Status.FAIL and "within" not in found.detail
