"""Release policies: a validated YAML schema -> frozen :class:`Policy`; ``evaluate`` -> findings.

A policy is a YAML file (schema documented in ``policies/README.md``) whose rules compare
metrics of the release results document (``results.json``, see ``docs/architecture.md``)
against thresholds. Metrics are read by dotted paths into that document. Every configured
rule yields one :class:`~dpgenome.findings.Finding` -- PASS, FAIL or NOT EVALUATED -- with
the measured value, the threshold and the confidence interval where the audit reports one.
The rules themselves are in :mod:`dpgenome.rules` and its three families
(:mod:`dpgenome.rules_privacy`, :mod:`dpgenome.rules_audit`, :mod:`dpgenome.rules_fidelity`).

The verdict is BLOCK when any *required* rule FAILs or cannot be evaluated: a missing
measurement is never a pass. Every configured rule is required unless the policy lists its
id under ``advisory`` (advisory findings are shown but never block).

Validation walks the composed YAML node tree (``yaml.compose``) so an unknown key, a wrong
type or a bad value is reported with the file and line of the offending node.

Threshold choices are explained, with their sources, in the shipped policies
(``policies/strict.yaml``, ``consortium.yaml``, ``internal.yaml``). Privacy-side rules follow
NIST SP 800-226 (Guidelines for Evaluating Differential Privacy Guarantees, 2025); audit rules
follow the membership-inference evaluation practice of Carlini et al. 2022 ("Membership
Inference Attacks From First Principles": TPR at low FPR, not only AUC); the canary rule
follows Jagielski et al. 2020 / Nasr et al. 2021, in the one-run form of Steinke, Nasr &
Jagielski 2023 (an empirical epsilon lower bound above the claimed epsilon proves an
implementation or accounting error).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dpgenome.config import YamlLoader, read_user_text
from dpgenome.errors import ConfigError, PolicyError
from dpgenome.findings import Evaluation, EvaluationContext, Finding, claim_text, fmt, fmt_claim
from dpgenome.paths import policies_dir, shipped_policy
from dpgenome.rules import RuleSpec, bound_rule
from dpgenome.rules_audit import attack_rules, leakage_rules
from dpgenome.rules_fidelity import fidelity_rules
from dpgenome.rules_privacy import privacy_rules

SCHEMA_VERSION = 1


# ---------------------------------------------------------------------------- schema

#: value kinds of the schema: how a YAML node is checked and converted
_NUMBER, _INT, _PROB, _BOOL, _STR, _STRS, _DELTA, _RANGE, _OPEN, _POSITIVE = (
    "a number",
    "a non-negative integer",
    "a number in [0, 1]",
    "true or false",
    "a string",
    "a list of strings",
    "'auto' or a number in (0, 1)",
    "a list [low, high] of two numbers with low <= high",
    "a number in (0, 1)",
    "a positive number",
)

#: the membership-inference attacks of the audit (``audit.attacks.<name>``, run by
#: :func:`dpgenome.audit.suite.run_audits`)
MEMBERSHIP_ATTACKS = ("dcr", "density_ratio", "allele_frequency", "shadow")

#: section -> key -> (kind, one-line meaning). Documented in policies/README.md.
SCHEMA: dict[str, dict[str, tuple[str, str]]] = {
    "privacy": {
        "max_epsilon": (_POSITIVE, "largest epsilon of this release"),
        "max_lifetime_epsilon": (
            _POSITIVE,
            "largest epsilon of the most-spent individual over every release that included "
            "them, composed, this one included",
        ),
        "max_lifetime_delta": (
            _OPEN,
            "largest delta of the most-spent individual over every release that included "
            "them (their deltas add), this one included",
        ),
        "max_replace_one_epsilon": (
            _POSITIVE,
            "largest epsilon of this release between cohorts of the same size that differ by "
            "replacing one individual (ledger.replace_one.epsilon, at the release's delta)",
        ),
        "max_lifetime_replace_one_epsilon": (
            _POSITIVE,
            "largest replace-one epsilon of the most-spent individual over every release that "
            "included them, composed, this one included",
        ),
        "max_delta": (_DELTA, "largest delta; 'auto' = 1 / n ** delta_exponent"),
        "delta_exponent": (_NUMBER, "exponent of the 'auto' delta bound (default 1.1)"),
        "allow_no_formal_privacy": (_BOOL, "whether epsilon = inf (no DP) may be released"),
        "require_secure_mode": (
            _BOOL,
            "whether every mechanism must have drawn its noise by secure mode's exact samplers "
            "from the OS CSPRNG (ledger.secure_mode)",
        ),
        "charge_blocked_releases": (
            _BOOL,
            "whether a release this policy blocks is still charged to the lifetime ledger "
            "(its synthetic cohort was made and seen; running again then costs budget)",
        ),
        "min_holdout": (_INT, "smallest holdout (non-member) set of the audits"),
        "max_phenotype_columns_typed_from_data": (
            _INT,
            "phenotype columns whose type nothing public fixes (read from the members' data; "
            "declare them with --pheno-schema)",
        ),
    },
    "membership": {
        "attacks": (_STRS, "attacks that must have been run (audit.attacks.<name>)"),
        "max_auc_ci_upper": (_PROB, "largest upper 95% CI bound of each attack's ROC AUC"),
        "max_tpr_at_1pct_fpr": (_PROB, "largest true-positive rate at 1% false-positive rate"),
    },
    "nearest_neighbour": {
        "max_share_closer_to_members_ci_upper": (
            _PROB,
            "largest upper CI bound of the share of synthetic records closer to a member "
            "than to any holdout record (0.5 = no memorisation signal)",
        ),
        "max_centred_share_ci_upper": (
            _PROB,
            "largest upper CI bound of the same share on hub-centred distances (each real "
            "individual's distances less its median distance to the synthetic records; 0.5 = "
            "no memorisation signal; half the raw share's spread under no leak)",
        ),
        "min_distinct_share_p_value": (
            _PROB,
            "smallest exact p-value of the members among the distinct real individuals nearest "
            "to a synthetic record (a detection test: under no leak it falls below the value in "
            "that share of releases)",
        ),
        "max_exact_duplicate_genotypes": (_INT, "synthetic genotype rows equal to a member's"),
        "public_panel_control": (
            _BOOL,
            "with a public panel, the DCR attack's AUC and the raw DCR share judge the genotypes' "
            "excess over the panel (a negative control) and the phenotype columns alone",
        ),
    },
    "kinship": {
        "max_excess_first_degree_rate": (
            _PROB,
            "synthetic-member first-degree rate minus the holdout-member baseline rate",
        ),
        "max_synthetic_member_duplicate_pairs": (_INT, "synthetic-member pairs at duplicate level"),
    },
    "attribute_inference": {
        "max_risk_ci_upper": (_PROB, "largest upper CI bound of the attribute-inference risk"),
    },
    "canary": {
        "require_lower_bound_below_claimed": (
            _BOOL,
            "the empirical epsilon lower bound must not exceed the claimed epsilon",
        ),
    },
    "fidelity": {
        "min_recall": (_PROB, "smallest SNP recall of the synthetic GWAS at p < 1e-8"),
        "min_precision": (_PROB, "smallest SNP precision of the synthetic GWAS at p < 1e-8"),
        "min_loci_recovered_fraction": (_PROB, "smallest share of the real loci recovered"),
        "max_spurious_loci": (
            _INT,
            (
                "largest number of synthetic loci the real GWAS does not show (no real locus "
                "and no suggestive real SNP within the locus window)"
            ),
        ),
        "lambda_gc_range": (_RANGE, "allowed genomic-control inflation of the synthetic GWAS"),
        "max_lambda_gc_excess": (
            _POSITIVE,
            (
                "largest genomic-control inflation of the synthetic GWAS beyond the members' "
                "own (for a stratified trait, whose members' lambda is itself inflated)"
            ),
        ),
        "max_matching_residual": (
            _PROB,
            (
                "largest relative residual of the matching that reproduces the released "
                "associations in the synthetic cohort"
            ),
        ),
    },
    "signoff": {"roles": (_STRS, "roles that must sign the dossier before release")},
    "overrides": {"allowed": (_BOOL, "whether a BLOCK verdict may be overridden with a reason")},
    "publication": {
        "open": (
            _BOOL,
            "whether `dpgenome publish` may copy an approved release's synthetic cohort out for "
            "open publication (no access control); false when absent",
        )
    },
}
_TOP = {
    "schema_version": (_INT, "policy schema version (1)"),
    "name": (_STR, "short name shown in the dossier"),
    "purpose": (_STR, "what releases under this policy are for"),
    "advisory": (_STRS, "rule ids that are shown but never block"),
    "custom": ("a list of rule mappings", "extra threshold rules on any dotted metric path"),
}
_CUSTOM_KEYS = {
    "id": (_STR, "rule id (unique)"),
    "title": (_STR, "plain-language title"),
    "metric": (_STR, "dotted path into results.json"),
    "max": (_NUMBER, "the metric must be <= max"),
    "min": (_NUMBER, "the metric must be >= min"),
}

_CONSTRUCTOR = yaml.constructor.SafeConstructor()


@dataclass(frozen=True)
class CustomRule:
    id: str
    title: str
    metric: str
    max: float | None = None
    min: float | None = None


@dataclass(frozen=True)
class Policy:
    """A validated release policy. ``None`` means the rule is not configured."""

    name: str
    purpose: str
    path: str
    sha256: str
    schema_version: int = SCHEMA_VERSION
    max_epsilon: float | None = None
    max_lifetime_epsilon: float | None = None
    max_lifetime_delta: float | None = None
    max_replace_one_epsilon: float | None = None
    max_lifetime_replace_one_epsilon: float | None = None
    max_delta: float | str | None = None  # "auto" or a number
    delta_exponent: float = 1.1
    allow_no_formal_privacy: bool = False
    require_secure_mode: bool = False
    charge_blocked_releases: bool = False
    min_holdout: int | None = None
    max_phenotype_columns_typed_from_data: int | None = None
    attacks: tuple[str, ...] = ()
    max_auc_ci_upper: float | None = None
    max_tpr_at_1pct_fpr: float | None = None
    max_share_closer_to_members_ci_upper: float | None = None
    max_centred_share_ci_upper: float | None = None
    min_distinct_share_p_value: float | None = None
    max_exact_duplicate_genotypes: int | None = None
    public_panel_control: bool = False
    max_excess_first_degree_rate: float | None = None
    max_synthetic_member_duplicate_pairs: int | None = None
    max_risk_ci_upper: float | None = None
    require_lower_bound_below_claimed: bool = False
    min_recall: float | None = None
    min_precision: float | None = None
    min_loci_recovered_fraction: float | None = None
    max_spurious_loci: int | None = None
    lambda_gc_range: tuple[float, float] | None = None
    max_lambda_gc_excess: float | None = None
    max_matching_residual: float | None = None
    signoff_roles: tuple[str, ...] = ()
    overrides_allowed: bool = False
    #: ``publication.open``: ``dpgenome publish`` may copy the release out for anyone
    open_publication: bool = False
    advisory: tuple[str, ...] = ()
    custom: tuple[CustomRule, ...] = ()
    #: "section.key" -> line in the policy file (1-based), for findings and messages
    lines: Mapping[str, int] = field(default_factory=dict)

    def line_of(self, key: str) -> int | None:
        return self.lines.get(key)

    def membership_rules_need_attacks(self) -> bool:
        return self.max_auc_ci_upper is not None or self.max_tpr_at_1pct_fpr is not None


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _convert(node: yaml.Node, kind: str, key: str, file: str) -> Any:
    def bad(extra: str = "") -> PolicyError:
        shown = (
            repr(node.value)
            if isinstance(node, yaml.ScalarNode)
            else "a list"
            if isinstance(node, yaml.SequenceNode)
            else "a mapping"
        )
        return PolicyError(
            f"{key} must be {kind}, got {shown}{extra}", file=file, line=_line(node), column=key
        )

    if kind in (_STRS, _RANGE):
        if not isinstance(node, yaml.SequenceNode):
            raise bad()
        items = [
            _convert(item, _STR if kind == _STRS else _NUMBER, key, file) for item in node.value
        ]
        if kind == _STRS:
            if len(set(items)) != len(items):
                raise bad(" (listed twice)")
            return tuple(items)
        if len(items) != 2:
            raise bad(f" of {len(items)} item(s)")
        if items[0] > items[1]:
            raise bad(" (low above high)")
        return (float(items[0]), float(items[1]))
    if not isinstance(node, yaml.ScalarNode):
        raise bad()
    value = _CONSTRUCTOR.construct_object(node, deep=True)
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise bad()
        return value
    if kind == _STR:
        if not isinstance(value, str) or not value.strip():
            raise bad()
        return value
    if kind in (_DELTA, _OPEN):
        if kind == _DELTA and value == "auto":
            return "auto"
        kind_number = _NUMBER
        out = _convert(node, kind_number, key, file)
        if not 0.0 < out < 1.0:
            raise bad()
        return out
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad()
    if kind == _INT:
        if not isinstance(value, int) or value < 0:
            raise bad()
        return int(value)
    if kind == _PROB and not 0.0 <= value <= 1.0:
        raise bad()
    if kind == _POSITIVE and not value > 0.0:
        raise bad()
    return float(value)


def _mapping(node: yaml.Node, what: str, file: str) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise PolicyError(
            f"{what} must be a mapping of keys to values", file=file, line=_line(node)
        )
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key in seen:
            raise PolicyError(
                f"key {key!r} appears twice in {what}", file=file, line=_line(key_node), column=key
            )
        seen.add(key)
        yield key, key_node, value_node


def _unknown(key: str, known: Iterator[str] | Sequence[str], where: str) -> str:
    return f"unknown key {key!r} in {where}; valid keys: {', '.join(sorted(known))}"


def parse_policy(text: str, *, file: str = "<policy>") -> Policy:
    """Validate a policy given as YAML text (see :func:`load_policy`)."""
    try:
        root = yaml.compose(text, Loader=YamlLoader)  # 1e-6 is a number, as in YAML 1.2
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise PolicyError(
            f"not valid YAML: {getattr(err, 'problem', err)}",
            file=file,
            line=None if mark is None else mark.line + 1,
        ) from None
    if root is None:
        raise PolicyError("the policy file is empty", file=file)
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    top: dict[str, Any] = {}
    for key, key_node, value_node in _mapping(root, "the policy", file):
        if key in SCHEMA:
            for sub, sub_node, sub_value in _mapping(value_node, f"section {key!r}", file):
                if sub not in SCHEMA[key]:
                    raise PolicyError(
                        _unknown(sub, list(SCHEMA[key]), f"section {key!r}"),
                        file=file,
                        line=_line(sub_node),
                        column=sub,
                    )
                kind = SCHEMA[key][sub][0]
                values[f"{key}.{sub}"] = _convert(sub_value, kind, f"{key}.{sub}", file)
                lines[f"{key}.{sub}"] = _line(sub_node)
        elif key == "custom":
            top["custom"] = _parse_custom(value_node, file, lines)
            lines["custom"] = _line(key_node)
        elif key in _TOP:
            top[key] = _convert(value_node, _TOP[key][0], key, file)
            lines[key] = _line(key_node)
        else:
            raise PolicyError(
                _unknown(key, [*SCHEMA, *_TOP], "the policy"),
                file=file,
                line=_line(key_node),
                column=key,
            )
    version = top.get("schema_version")
    if "schema_version" not in top:
        raise PolicyError(
            f"the policy needs 'schema_version: {SCHEMA_VERSION}' (the key is missing)", file=file
        )
    if version != SCHEMA_VERSION:
        raise PolicyError(
            f"schema_version must be {SCHEMA_VERSION} (got {version!r})",
            file=file,
            line=lines.get("schema_version"),
            column="schema_version",
        )
    if "name" not in top:
        raise PolicyError("the policy needs a 'name'", file=file)

    def get(key: str, default: Any = None) -> Any:
        return values.get(key, default)

    policy = Policy(
        name=top["name"],
        purpose=top.get("purpose", ""),
        path=file,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        max_epsilon=get("privacy.max_epsilon"),
        max_lifetime_epsilon=get("privacy.max_lifetime_epsilon"),
        max_lifetime_delta=get("privacy.max_lifetime_delta"),
        max_replace_one_epsilon=get("privacy.max_replace_one_epsilon"),
        max_lifetime_replace_one_epsilon=get("privacy.max_lifetime_replace_one_epsilon"),
        max_delta=get("privacy.max_delta"),
        delta_exponent=get("privacy.delta_exponent", 1.1),
        allow_no_formal_privacy=get("privacy.allow_no_formal_privacy", False),
        require_secure_mode=get("privacy.require_secure_mode", False),
        charge_blocked_releases=get("privacy.charge_blocked_releases", False),
        min_holdout=get("privacy.min_holdout"),
        max_phenotype_columns_typed_from_data=get("privacy.max_phenotype_columns_typed_from_data"),
        attacks=get("membership.attacks", ()),
        max_auc_ci_upper=get("membership.max_auc_ci_upper"),
        max_tpr_at_1pct_fpr=get("membership.max_tpr_at_1pct_fpr"),
        max_share_closer_to_members_ci_upper=get(
            "nearest_neighbour.max_share_closer_to_members_ci_upper"
        ),
        max_centred_share_ci_upper=get("nearest_neighbour.max_centred_share_ci_upper"),
        min_distinct_share_p_value=get("nearest_neighbour.min_distinct_share_p_value"),
        max_exact_duplicate_genotypes=get("nearest_neighbour.max_exact_duplicate_genotypes"),
        public_panel_control=get("nearest_neighbour.public_panel_control", False),
        max_excess_first_degree_rate=get("kinship.max_excess_first_degree_rate"),
        max_synthetic_member_duplicate_pairs=get("kinship.max_synthetic_member_duplicate_pairs"),
        max_risk_ci_upper=get("attribute_inference.max_risk_ci_upper"),
        require_lower_bound_below_claimed=get("canary.require_lower_bound_below_claimed", False),
        min_recall=get("fidelity.min_recall"),
        min_precision=get("fidelity.min_precision"),
        min_loci_recovered_fraction=get("fidelity.min_loci_recovered_fraction"),
        max_spurious_loci=get("fidelity.max_spurious_loci"),
        lambda_gc_range=get("fidelity.lambda_gc_range"),
        max_lambda_gc_excess=get("fidelity.max_lambda_gc_excess"),
        max_matching_residual=get("fidelity.max_matching_residual"),
        signoff_roles=get("signoff.roles", ()),
        overrides_allowed=get("overrides.allowed", False),
        open_publication=get("publication.open", False),
        advisory=top.get("advisory", ()),
        custom=top.get("custom", ()),
        lines=lines,
    )
    if "privacy.delta_exponent" in values and policy.delta_exponent < 1.0:
        raise PolicyError(
            "privacy.delta_exponent must be >= 1 (delta must be well below 1/n)",
            file=file,
            line=lines["privacy.delta_exponent"],
            column="privacy.delta_exponent",
        )
    unknown = [a for a in policy.attacks if a not in MEMBERSHIP_ATTACKS]
    if unknown:
        raise PolicyError(
            f"membership.attacks lists {unknown[0]!r}, which is not an attack of the audit; "
            "attacks: " + ", ".join(MEMBERSHIP_ATTACKS),
            file=file,
            line=lines.get("membership.attacks"),
            column="membership.attacks",
        )
    if policy.membership_rules_need_attacks() and not policy.attacks:
        raise PolicyError(
            "membership thresholds are set but membership.attacks lists no attack",
            file=file,
            line=lines.get("membership.max_auc_ci_upper")
            or lines.get("membership.max_tpr_at_1pct_fpr"),
            column="membership.attacks",
        )
    known_ids = {spec.id for spec in rule_specs(policy)}
    for rule_id in policy.advisory:
        if rule_id not in known_ids:
            raise PolicyError(
                f"advisory lists {rule_id!r}, which is not a rule of this policy; rules: "
                + ", ".join(sorted(known_ids)),
                file=file,
                line=lines.get("advisory"),
                column="advisory",
            )
    return policy


def _parse_custom(node: yaml.Node, file: str, lines: dict[str, int]) -> tuple[CustomRule, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise PolicyError(
            "custom must be a list of rules", file=file, line=_line(node), column="custom"
        )
    rules: list[CustomRule] = []
    for item in node.value:
        fields: dict[str, Any] = {}
        for key, key_node, value_node in _mapping(item, "a custom rule", file):
            if key not in _CUSTOM_KEYS:
                raise PolicyError(
                    _unknown(key, list(_CUSTOM_KEYS), "a custom rule"),
                    file=file,
                    line=_line(key_node),
                    column=key,
                )
            fields[key] = _convert(value_node, _CUSTOM_KEYS[key][0], f"custom.{key}", file)
        missing = [k for k in ("id", "metric") if k not in fields]
        if missing or ("max" not in fields and "min" not in fields):
            raise PolicyError(
                "a custom rule needs id, metric and max and/or min",
                file=file,
                line=_line(item),
                column="custom",
            )
        rule_id = f"custom.{fields['id']}"
        if rule_id in lines:
            raise PolicyError(
                f"custom rule id {fields['id']!r} is used twice", file=file, line=_line(item)
            )
        lines[rule_id] = _line(item)
        rules.append(
            CustomRule(
                id=fields["id"],
                title=fields.get("title", fields["id"]),
                metric=fields["metric"],
                max=fields.get("max"),
                min=fields.get("min"),
            )
        )
    return tuple(rules)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; errors name the file, the line and the key. A bare
    name that is not a file (``consortium``) is the shipped policy of that name."""
    path = Path(path)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        try:
            path = shipped_policy(path.name)
        except ConfigError:
            pass  # reported below as not found
    hint = ""
    if not path.exists():  # the shipped names, for the message only
        shipped = ", ".join(sorted(p.stem for p in policies_dir().glob("*.yaml")))
        hint = f" (the shipped policies, named without a path: {shipped})"
    text = read_user_text(path, "policy file", PolicyError, hint)
    return parse_policy(text, file=str(path))


def rule_specs(policy: Policy) -> list[RuleSpec]:
    """Every rule the policy configures, in dossier order."""
    specs = [
        *privacy_rules(policy),
        *attack_rules(policy),
        *leakage_rules(policy),
        *fidelity_rules(policy),
    ]
    for rule in policy.custom:
        specs.append(
            bound_rule(
                f"custom.{rule.id}",
                rule.title,
                rule.metric,
                f"custom.{rule.id}",
                max_value=rule.max,
                min_value=rule.min,
            )
        )
    return specs


def evaluate(
    results: Mapping[str, Any],
    policy: Policy,
    *,
    context: EvaluationContext | None = None,
) -> Evaluation:
    """Evaluate every rule of ``policy`` on a results document; never raises on missing data.

    A required rule that FAILs or cannot be evaluated (its metric missing or not a number)
    makes the verdict BLOCK.
    """
    context = context or EvaluationContext()
    findings = []
    for spec in rule_specs(policy):
        found = spec.check(results, context)
        findings.append(
            Finding(
                found.rule,
                found.title,
                found.status,
                found.measured,
                found.threshold,
                found.metric,
                spec.id not in policy.advisory,
                found.detail,
                found.ci,
                policy.line_of(spec.key),
            )
        )
    return Evaluation(
        policy.name,
        policy.sha256,
        tuple(findings),
        context,
        policy_purpose=policy.purpose,
        signoff_roles=policy.signoff_roles,
        overrides_allowed=policy.overrides_allowed,
        charges_blocked_releases=policy.charge_blocked_releases,
        open_publication=policy.open_publication,
    )


@dataclass(frozen=True)
class Override:
    """A signed decision to release despite a BLOCK verdict (never allowed by ``strict``)."""

    reason: str
    signer: str
    timestamp: str  # ISO 8601, UTC

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "signer": self.signer, "timestamp": self.timestamp}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Override:
        return cls(str(data["reason"]), str(data["signer"]), str(data["timestamp"]))


def describe_failing(evaluation: Evaluation) -> list[str]:
    """One line per blocking finding, for the CLI and the dossier banner."""
    out = []
    for f in evaluation.failing:
        measured = claim_text(f.rule, f.measured)
        ci = "" if f.ci is None else f" (95% CI {fmt(f.ci[0])}–{fmt(f.ci[1])})"
        why = f"; {f.detail}" if f.detail else ""
        out.append(
            f"{f.status}: {f.rule}: {f.title}: measured {measured}{ci}, required {f.threshold}{why}"
        )
    return out


class Refusal(str):
    """One rule :func:`preflight` refuses, as the line it prints (``rule: why``), with the
    rule id in :attr:`rule` (never parsed back out of the text)."""

    rule: str

    def __new__(cls, rule: str, why: str) -> Refusal:
        refusal = super().__new__(cls, f"{rule}: {why}")
        refusal.rule = rule
        return refusal


def preflight(
    policy: Policy,
    *,
    epsilon: float,
    delta: float,
    secure: bool,
    n_members: int,
    n_holdout: int | None = None,
    lifetime_spent: float | None = None,
) -> list[Refusal]:
    """The rules of ``policy`` that a release asked for with these settings would fail
    whatever its synthesizer produced, each a :class:`Refusal` (``rule: why``, the rule id in
    ``.rule``) -- checked before any training, so that nothing is trained (or, under
    ``charge_blocked_releases``, charged) for a certain BLOCK. ``epsilon``/``delta`` are the
    targets (inf = no formal privacy), ``secure`` whether secure mode samples the mechanisms,
    ``n_members`` the training members, ``n_holdout`` the audits' holdout (``None`` = not
    known), and ``lifetime_spent`` the most any of the release's individuals has spent before
    it (the lifetime ledger's composed epsilon; ``None`` = not known). A release's ledger
    never spends more than its target, so a target within a cap is left to the rules after
    training."""
    problems: list[Refusal] = []
    no_dp = math.isinf(epsilon)
    where = {k: f" ({policy.path}, line {n})" for k, n in policy.lines.items()}

    def refuse(rule: str, why: str, key: str) -> None:
        problems.append(Refusal(rule, why + where.get(key, "")))

    if no_dp and not policy.allow_no_formal_privacy:
        refuse(
            "privacy.no_formal_privacy",
            "epsilon = inf (no formal privacy) is not allowed",
            "privacy.allow_no_formal_privacy",
        )
    if not no_dp and policy.max_epsilon is not None and epsilon > policy.max_epsilon:
        refuse(
            "privacy.max_epsilon",
            f"epsilon {fmt(epsilon)} asked for, at most {fmt(policy.max_epsilon)} allowed",
            "privacy.max_epsilon",
        )
    cap = policy.max_lifetime_epsilon
    if cap is not None and not (no_dp and policy.allow_no_formal_privacy):
        if not no_dp and epsilon > cap:
            refuse(
                "privacy.max_lifetime_epsilon",
                f"epsilon {fmt(epsilon)} asked for, more than the lifetime cap {fmt(cap)}",
                "privacy.max_lifetime_epsilon",
            )
        elif (
            lifetime_spent is not None
            and lifetime_spent >= cap
            # an earlier release without formal privacy passes where the policy allows them
            and not (math.isinf(lifetime_spent) and policy.allow_no_formal_privacy)
        ):
            spent = "∞" if math.isinf(lifetime_spent) else fmt(lifetime_spent)
            refuse(
                "privacy.max_lifetime_epsilon",
                f"some of these individuals have already spent epsilon {spent} in earlier "
                f"releases (lifetime ledger), the cap is {fmt(cap)}",
                "privacy.max_lifetime_epsilon",
            )
    if policy.max_delta is not None and not no_dp:
        if policy.max_delta == "auto":
            bound = float(n_members) ** -policy.delta_exponent * (1 + 1e-9)
            shown = f"1/n^{fmt(policy.delta_exponent)} = {fmt_claim(bound)} (n = {n_members:,})"
        else:
            bound = float(policy.max_delta)
            shown = fmt(bound)
        if delta > bound:
            refuse(
                "privacy.max_delta",
                f"delta {fmt_claim(delta)} asked for, at most {shown} allowed",
                "privacy.max_delta",
            )
    if policy.min_holdout is not None and n_holdout is not None and n_holdout < policy.min_holdout:
        refuse(
            "privacy.min_holdout",
            f"the split leaves {n_holdout} holdout individuals, at least {policy.min_holdout} "
            "needed (a larger cohort or --holdout-fraction)",
            "privacy.min_holdout",
        )
    if policy.require_secure_mode and not secure and not no_dp:
        refuse(
            "privacy.secure_mode",
            "secure mode is required, and this release turns it off (--no-secure-mode, "
            "secure_mode: false, or a fixed test noise in DPGENOME_NOISE_SEED)",
            "privacy.require_secure_mode",
        )
    return problems
