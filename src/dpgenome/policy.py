"""Release policies: a validated YAML schema -> frozen :class:`Policy`; ``evaluate`` -> findings.

A policy is a YAML file (schema documented in ``policies/README.md``) whose rules compare
metrics of the release results document (``results.json``, see ``docs/architecture.md``)
against thresholds. Metrics are read by dotted paths into that document. Every configured
rule yields one :class:`Finding` -- PASS, FAIL or NOT EVALUATED -- with the measured value,
the threshold and the confidence interval where the audit reports one.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from dpgenome.config import YamlLoader, read_user_text
from dpgenome.errors import ConfigError, PolicyError
from dpgenome.paths import policies_dir, shipped_policy

SCHEMA_VERSION = 1


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    NOT_EVALUATED = "NOT EVALUATED"


class Verdict(StrEnum):
    APPROVE = "APPROVE"
    BLOCK = "BLOCK"


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


# ---------------------------------------------------------------------------- results access

_MISSING = object()


def lookup(results: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, or the module-level ``_MISSING`` sentinel.

    Keys may themselves contain dots (``tpr_at_fpr_0.01``, ``1e-08`` thresholds written as
    ``1.0e-08``): at each level the longest run of segments that names a key wins.
    """
    parts = path.split(".")
    node: Any = results
    i = 0
    while i < len(parts):
        if not isinstance(node, Mapping):
            return _MISSING
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node:
                node = node[key]
                i = j
                break
        else:
            return _MISSING
    return node


def is_missing(value: Any) -> bool:
    return value is _MISSING


def why_missing(results: Mapping[str, Any], path: str) -> str:
    """Why a metric is absent: the nearest enclosing block's ``reason`` (an audit that was
    not run says why), else "<path> is missing"."""
    parts = path.split(".")
    for k in range(len(parts) - 1, 0, -1):
        block = lookup(results, ".".join(parts[:k]))
        if isinstance(block, Mapping) and isinstance(block.get("reason"), str):
            status = block.get("status", "not measured")
            return f"{path} is missing ({status}: {block['reason']})"
    return f"{path} is missing"


def as_number(value: Any, *, finite: bool = False) -> float | None:
    """``value`` as a float when it is a number (not a bool, not NaN; not infinite either
    with ``finite``), else ``None``: results files are JSON of any provenance."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if math.isnan(value) or (finite and math.isinf(value)):
        return None
    return float(value)


def _ci(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = as_number(value[0]), as_number(value[1])
        if lo is not None and hi is not None:
            return (lo, hi)
    return None


def fmt(value: Any) -> str:
    """Short human-readable number (used in findings and the dossier)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if 1e4 <= abs(value) < 1e9:  # 19,580 rather than 1.958e+04
            return f"{value:,.0f}"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e9):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def fmt_claim(value: Any, digits: int = 4) -> str:
    """A privacy claim (an epsilon or delta) for reading: rounded *up* to ``digits``
    significant digits, so a printed claim is never below the computed one (7.9827 reads
    7.983, not 7.982; an epsilon of 10.0004 over a cap of 10 reads 10.01, not 10)."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return fmt(value)
    if value <= 0:
        return fmt(float(value))
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    # the tolerance keeps a value that is already exact (8.0, 0.0125) from moving up a step
    up = math.ceil(round(value * scale, 9)) / scale
    return f"{up:.{digits}g}"


def claim_text(rule: str, value: Any) -> str:
    """A finding's measured value: a privacy claim (``privacy.*`` epsilon and delta rules) by
    :func:`fmt_claim`, anything else by :func:`fmt`."""
    claims = (
        "privacy.no_formal_privacy",
        "privacy.max_epsilon",
        "privacy.max_lifetime_epsilon",
        "privacy.max_delta",
        "privacy.max_lifetime_delta",
        "privacy.max_replace_one_epsilon",
        "privacy.max_lifetime_replace_one_epsilon",
    )
    return fmt_claim(value) if rule in claims else fmt(value)


# ---------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class EvaluationContext:
    """What the results document cannot know: the privacy its individuals spent before this
    release (from the lifetime ledger: the most any one of them spent, and over how many
    releases that included any of them). ``None`` = unknown, so a lifetime cap is NOT
    EVALUATED (and blocks)."""

    lifetime_epsilon_spent: float | None = None
    lifetime_delta_spent: float | None = None
    lifetime_releases: int | None = None
    #: the most-spent individual's total with this release, its mechanisms composed with
    #: theirs (``None``: not computed, so the cap adds this release's epsilon)
    lifetime_epsilon_after: float | None = None
    #: the most-spent individual's delta with this release (``None``: not computed, so the
    #: cap adds this release's delta)
    lifetime_delta_after: float | None = None
    #: the most-spent individual's replace-one epsilon with this release, composed
    #: (:func:`dpgenome.lifetime.compose_replace_one`; infinite: no bound; ``None``: not
    #: computed, as only a replace-one lifetime cap asks for it)
    lifetime_replace_one_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        eps, after = self.lifetime_epsilon_spent, self.lifetime_epsilon_after
        one = self.lifetime_replace_one_after
        return {
            "lifetime_epsilon_spent": None if eps is not None and math.isinf(eps) else eps,
            "lifetime_epsilon_spent_is_inf": eps is not None and math.isinf(eps),
            "lifetime_delta_spent": self.lifetime_delta_spent,
            "lifetime_releases": self.lifetime_releases,
            "lifetime_epsilon_after": None if after is not None and math.isinf(after) else after,
            "lifetime_epsilon_after_is_inf": after is not None and math.isinf(after),
            "lifetime_delta_after": self.lifetime_delta_after,
        } | (
            {}
            if one is None
            else {
                "lifetime_replace_one_after": None if math.isinf(one) else one,
                "lifetime_replace_one_after_is_inf": math.isinf(one),
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EvaluationContext:
        """The inverse of :meth:`to_dict` (``None``: nothing known). Raises ``ValueError``
        naming the key when ``data`` is not what :meth:`to_dict` writes (a context read
        from a hand-edited or damaged manifest)."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"the context is a {type(data).__name__}, not a mapping")
        eps, after = (
            _context_epsilon(data, "lifetime_epsilon_spent"),
            _context_epsilon(data, "lifetime_epsilon_after"),
        )
        releases = data.get("lifetime_releases")
        if releases is not None and (
            isinstance(releases, bool) or not isinstance(releases, int) or releases < 0
        ):
            raise ValueError(f"lifetime_releases is not a non-negative integer ({releases!r})")
        return cls(
            eps,
            _context_amount(data, "lifetime_delta_spent"),
            releases,
            after,
            _context_amount(data, "lifetime_delta_after"),
            _context_epsilon(data, "lifetime_replace_one_after"),
        )


def _context_epsilon(data: Mapping[str, Any], key: str) -> float | None:
    """``data[key]`` as :func:`_context_amount`, infinite when ``data[key + "_is_inf"]``."""
    is_inf = data.get(f"{key}_is_inf", False)
    if not isinstance(is_inf, bool):
        raise ValueError(f"{key}_is_inf is not true or false ({is_inf!r})")
    return math.inf if is_inf else _context_amount(data, key)


def _context_amount(data: Mapping[str, Any], key: str) -> float | None:
    """``data[key]``: absent or null (unknown), or a finite non-negative number."""
    value = data.get(key)
    if value is None:
        return None
    number = as_number(value, finite=True)
    if number is None or number < 0:
        raise ValueError(f"{key} is not a non-negative number ({value!r})")
    return number


@dataclass(frozen=True)
class Finding:
    rule: str
    title: str
    status: Status
    measured: float | str | None
    threshold: str
    metric: str
    required: bool
    detail: str = ""
    ci: tuple[float, float] | None = None
    policy_line: int | None = None

    @property
    def blocks(self) -> bool:
        return self.required and self.status != Status.PASS

    def to_dict(self) -> dict[str, Any]:
        measured = self.measured
        if isinstance(measured, float) and not math.isfinite(measured):
            measured = fmt(measured)
        return {
            "rule": self.rule,
            "title": self.title,
            "status": str(self.status),
            "measured": measured,
            "threshold": self.threshold,
            "ci": None if self.ci is None else list(self.ci),
            "metric": self.metric,
            "required": self.required,
            "detail": self.detail,
            "policy_line": self.policy_line,
        }


@dataclass(frozen=True)
class Evaluation:
    policy_name: str
    policy_sha256: str
    findings: tuple[Finding, ...]
    context: EvaluationContext
    policy_purpose: str = ""
    signoff_roles: tuple[str, ...] = ()
    overrides_allowed: bool = False
    charges_blocked_releases: bool = False

    @property
    def verdict(self) -> Verdict:
        return Verdict.BLOCK if self.failing else Verdict.APPROVE

    @property
    def failing(self) -> tuple[Finding, ...]:
        """The findings that block: required rules that FAIL or are NOT EVALUATED."""
        return tuple(f for f in self.findings if f.blocks)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """Advisory rules that did not pass."""
        return tuple(f for f in self.findings if not f.required and f.status != Status.PASS)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(f.status == s for f in self.findings) for s in Status}

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy_name,
            "policy_sha256": self.policy_sha256,
            "verdict": str(self.verdict),
            "failing": [f.rule for f in self.failing],
            "counts": self.counts(),
            "context": self.context.to_dict(),
            "signoff_roles": list(self.signoff_roles),
            "overrides_allowed": self.overrides_allowed,
            "charges_blocked_releases": self.charges_blocked_releases,
            "findings": [f.to_dict() for f in self.findings],
        }


#: (id, title, metric) of the rule ``privacy.require_secure_mode`` configures
SECURE_RULE = (
    "privacy.secure_mode",
    "Noise drawn by exact samplers from the OS CSPRNG (secure mode)",
    "ledger.secure_mode",
)
#: (id, title, metric) of the rules ``privacy.max_replace_one_epsilon`` and
#: ``privacy.max_lifetime_replace_one_epsilon`` configure
REPLACE_ONE_RULE = (
    "privacy.max_replace_one_epsilon",
    "Epsilon of this release, replacing one individual",
    "ledger.replace_one.epsilon",
)
LIFETIME_REPLACE_ONE_RULE = (
    "privacy.max_lifetime_replace_one_epsilon",
    "Lifetime epsilon of its individuals, replacing one",
    "ledger.replace_one.epsilon + lifetime ledger",
)


@dataclass(frozen=True)
class RuleSpec:
    """One configured rule: its id, plain title, the metric path(s) it reads and its check."""

    id: str
    title: str
    metric: str
    key: str  # policy key ("section.key") for the line number
    check: Callable[[Mapping[str, Any], EvaluationContext], Finding]


def _finding(
    spec_id: str,
    title: str,
    metric: str,
    threshold: str,
    status: Status,
    measured: float | str | None,
    detail: str = "",
    ci: tuple[float, float] | None = None,
) -> Finding:
    # required / policy_line are filled in by evaluate()
    return Finding(spec_id, title, status, measured, threshold, metric, True, detail, ci, None)


def _not_evaluated(spec_id: str, title: str, metric: str, threshold: str, why: str) -> Finding:
    return _finding(spec_id, title, metric, threshold, Status.NOT_EVALUATED, None, why)


def _epsilon_cap(
    rule: tuple[str, str, str, str], eps: float, cap: float, allow_no_formal: bool, detail: str
) -> Finding:
    """``eps <= cap``; an infinite epsilon passes only where the policy allows releases
    without formal privacy (its own rule reports them)."""
    rid, title, metric, threshold = rule
    if math.isinf(eps) and allow_no_formal:
        note = "cap applies to DP releases; no-formal-privacy releases are allowed"
        return _finding(
            rid, title, metric, threshold, Status.PASS, eps, f"{detail}; {note}" if detail else note
        )
    status = Status.PASS if eps <= cap else Status.FAIL
    return _finding(rid, title, metric, threshold, status, eps, detail)


#: a FAIL whose estimate meets the limit but whose confidence interval does not: for signers,
#: who may otherwise read it as a detected leak
WIDE_CI = (
    "the estimate itself is within the limit; the 95% CI is too wide to show it, as with a "
    "small holdout (a larger one narrows it)"
)


def _bound_rule(
    rule_id: str,
    title: str,
    metric: str,
    key: str,
    *,
    max_value: float | None = None,
    min_value: float | None = None,
    ci_path: str | None = None,
    show_ci: str | None = None,
    note: str = "",
) -> RuleSpec:
    """``metric <= max`` / ``>= min``. With ``ci_path`` the rule compares the CI bound on the
    unfavourable side (upper for a max, lower for a min) and needs the CI to be present."""
    parts = []
    if min_value is not None:
        parts.append(f">= {fmt(min_value)}")
    if max_value is not None:
        parts.append(f"<= {fmt(max_value)}")
    threshold = " and ".join(parts)
    if ci_path is not None:
        threshold = (
            "95% CI upper bound " if max_value is not None else "95% CI lower bound "
        ) + threshold
    shown_metric = metric if ci_path is None else f"{metric} (CI: {ci_path})"

    def check(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
        raw = lookup(results, metric)
        if is_missing(raw):
            return _not_evaluated(
                rule_id, title, shown_metric, threshold, why_missing(results, metric)
            )
        value = as_number(raw)
        if value is None:
            return _not_evaluated(
                rule_id, title, shown_metric, threshold, f"{metric} is not a number ({raw!r})"
            )
        ci = None
        compared = value
        if show_ci is not None:  # shown beside the value, not compared
            raw_shown = lookup(results, show_ci)
            ci = None if is_missing(raw_shown) else _ci(raw_shown)
        if ci_path is not None:
            raw_ci = lookup(results, ci_path)
            ci = None if is_missing(raw_ci) else _ci(raw_ci)
            if ci is None:
                return _finding(
                    rule_id,
                    title,
                    shown_metric,
                    threshold,
                    Status.NOT_EVALUATED,
                    value,
                    f"{ci_path} is missing: the rule needs the confidence interval",
                )
            compared = ci[1] if max_value is not None else ci[0]
        ok = (max_value is None or compared <= max_value) and (
            min_value is None or compared >= min_value
        )
        status = Status.PASS if ok else Status.FAIL
        within = (max_value is None or value <= max_value) and (
            min_value is None or value >= min_value
        )
        detail = note
        if not ok and within and ci_path is not None:
            detail = "; ".join(filter(None, (note, WIDE_CI)))
        return _finding(rule_id, title, shown_metric, threshold, status, value, detail, ci)

    return RuleSpec(rule_id, title, shown_metric, key, check)


def _epsilon(results: Mapping[str, Any]) -> tuple[bool, float | None, str]:
    """(present, epsilon or inf, why-not). ``ledger.epsilon`` null or ``no_formal_privacy``
    true means epsilon = inf."""
    ledger = lookup(results, "ledger")
    if is_missing(ledger) or not isinstance(ledger, Mapping) or "epsilon" not in ledger:
        return False, None, "ledger.epsilon is missing"
    eps = ledger["epsilon"]
    if eps is None or ledger.get("no_formal_privacy") is True:
        return True, math.inf, ""
    value = as_number(eps)
    if value is None or value < 0:
        return False, None, f"ledger.epsilon is not a non-negative number ({eps!r})"
    return True, value, ""


_NO_LIFETIME = "no lifetime ledger was consulted"


def _release_cap(
    rule: tuple[str, str, str],
    cap: float,
    read: Callable[[Mapping[str, Any]], tuple[bool, float | None, str]],
    allow_no_formal: bool,
) -> Callable[[Mapping[str, Any], EvaluationContext], Finding]:
    """The rule ``read(results) <= cap`` for one release's epsilon (``rule``: id, title,
    metric); NOT EVALUATED when ``read`` finds none."""
    rid, title, metric = rule
    threshold = f"<= {fmt(cap)}"

    def judge(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
        ok, eps, why = read(results)
        if not ok or eps is None:
            return _not_evaluated(rid, title, metric, threshold, why)
        return _epsilon_cap((rid, title, metric, threshold), eps, cap, allow_no_formal, "")

    return judge


def _replace_one_epsilon(results: Mapping[str, Any]) -> tuple[bool, float | None, str]:
    """As :func:`_epsilon`, for ``ledger.replace_one.epsilon`` (infinite without formal
    privacy)."""
    ok, eps, why = _epsilon(results)
    if not ok or eps is None or math.isinf(eps):
        return ok, eps, why
    path = "ledger.replace_one.epsilon"
    raw = lookup(results, path)
    if is_missing(raw):
        return False, None, why_missing(results, path)
    value = as_number(raw)
    if value is None or value < 0:
        return False, None, f"{path} is not a non-negative number ({raw!r})"
    return True, value, ""


def _lifetime_epsilon(
    rule: tuple[str, str, str, str], results: Mapping[str, Any], ctx: EvaluationContext
) -> float | Finding:
    """This release's epsilon for a lifetime rule, or its NOT EVALUATED finding when that
    or the lifetime ledger's figure is missing (both block)."""
    ok, eps, why = _epsilon(results)
    if not ok or eps is None:
        return _not_evaluated(*rule, why)
    if ctx.lifetime_epsilon_spent is None:
        return _not_evaluated(*rule, _NO_LIFETIME)
    return eps


def _privacy_rules(p: Policy) -> list[RuleSpec]:
    rules: list[RuleSpec] = []

    def no_formal(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
        rid, title, metric = (
            "privacy.no_formal_privacy",
            "Formal privacy guarantee",
            "ledger.epsilon",
        )
        threshold = "epsilon finite" if not p.allow_no_formal_privacy else "epsilon = ∞ allowed"
        ok, eps, why = _epsilon(results)
        if not ok:
            return _not_evaluated(rid, title, metric, threshold, why)
        if eps is not None and math.isinf(eps):
            if p.allow_no_formal_privacy:
                return _finding(
                    rid,
                    title,
                    metric,
                    threshold,
                    Status.PASS,
                    eps,
                    "NO FORMAL PRIVACY: epsilon is infinite; this policy allows it",
                )
            return _finding(
                rid,
                title,
                metric,
                threshold,
                Status.FAIL,
                eps,
                "NO FORMAL PRIVACY: epsilon is infinite (non-private synthesis)",
            )
        return _finding(rid, title, metric, threshold, Status.PASS, eps)

    rules.append(
        RuleSpec(
            "privacy.no_formal_privacy",
            "Formal privacy guarantee",
            "ledger.epsilon",
            "privacy.allow_no_formal_privacy",
            no_formal,
        )
    )

    if p.require_secure_mode:

        def secure(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
            rid, title, metric = SECURE_RULE
            raw = lookup(results, metric)
            if not isinstance(raw, bool):
                why = why_missing(results, metric) if is_missing(raw) else f"not a bool: {raw!r}"
                return _not_evaluated(rid, title, metric, "true", why)
            if raw:
                return _finding(rid, title, metric, "true", Status.PASS, "true")
            return _finding(
                rid,
                title,
                metric,
                "true",
                Status.FAIL,
                "false",
                "the noise came from numpy's floating-point samplers (--no-secure-mode, or "
                "noise fixed for tests), whose low bits can reveal the values they were added "
                "to; release again without --no-secure-mode",
            )

        rules.append(RuleSpec(*SECURE_RULE, "privacy.require_secure_mode", secure))

    if p.max_epsilon is not None:
        rule = ("privacy.max_epsilon", "Epsilon of this release", "ledger.epsilon")
        judge = _release_cap(rule, p.max_epsilon, _epsilon, p.allow_no_formal_privacy)
        rules.append(RuleSpec(*rule, "privacy.max_epsilon", judge))

    if p.max_lifetime_epsilon is not None:
        life_cap = p.max_lifetime_epsilon

        def lifetime(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
            rid, title = "privacy.max_lifetime_epsilon", "Lifetime epsilon of its individuals"
            metric = "ledger.epsilon + lifetime ledger"
            threshold = (
                f"<= {fmt(life_cap)} (per individual: the releases that included them, composed)"
            )
            eps = _lifetime_epsilon((rid, title, metric, threshold), results, ctx)
            if isinstance(eps, Finding):
                return eps
            assert ctx.lifetime_epsilon_spent is not None
            added = ctx.lifetime_epsilon_spent + eps
            n_before = ctx.lifetime_releases or 0
            detail = (
                f"{fmt_claim(ctx.lifetime_epsilon_spent)} spent before by its most-spent "
                f"individual, over {n_before} earlier release(s)"
            )
            total = added
            after = ctx.lifetime_epsilon_after
            if after is not None and after < added:  # both bound it: the smaller holds
                total = after
                detail += (
                    f"; with this release {fmt_claim(after)}, its mechanisms composed with "
                    f"theirs ({fmt_claim(added)} adding epsilons)"
                )
            return _epsilon_cap(
                (rid, title, metric, threshold), total, life_cap, p.allow_no_formal_privacy, detail
            )

        rules.append(
            RuleSpec(
                "privacy.max_lifetime_epsilon",
                "Lifetime epsilon of its individuals",
                "ledger.epsilon",
                "privacy.max_lifetime_epsilon",
                lifetime,
            )
        )

    if p.max_replace_one_epsilon is not None:
        judge = _release_cap(
            REPLACE_ONE_RULE,
            p.max_replace_one_epsilon,
            _replace_one_epsilon,
            p.allow_no_formal_privacy,
        )
        rules.append(RuleSpec(*REPLACE_ONE_RULE, "privacy.max_replace_one_epsilon", judge))

    if p.max_lifetime_replace_one_epsilon is not None:
        life_one_cap = p.max_lifetime_replace_one_epsilon

        def lifetime_replace_one(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
            rid, title, metric = LIFETIME_REPLACE_ONE_RULE
            threshold = (
                f"<= {fmt(life_one_cap)} (per individual: the releases that included them, "
                "composed under replace-one)"
            )
            rule = (rid, title, metric, threshold)
            eps = _lifetime_epsilon(rule, results, ctx)
            if isinstance(eps, Finding):
                return eps
            if math.isinf(eps):
                return _epsilon_cap(rule, eps, life_one_cap, p.allow_no_formal_privacy, "")
            total = ctx.lifetime_replace_one_after
            if total is None:
                return _not_evaluated(
                    *rule, "the lifetime ledger's replace-one total was not computed"
                )
            detail = (
                f"over {ctx.lifetime_releases or 0} earlier release(s) of its most-spent "
                "individuals and this one, each accounted under replace-one (group privacy "
                "for one recorded without mechanisms), composed"
                + (
                    "; no bound: a release's group-privacy delta reaches 1"
                    if math.isinf(total)
                    else ""
                )
            )
            return _epsilon_cap(rule, total, life_one_cap, False, detail)

        rules.append(
            RuleSpec(
                *LIFETIME_REPLACE_ONE_RULE,
                "privacy.max_lifetime_replace_one_epsilon",
                lifetime_replace_one,
            )
        )

    if p.max_lifetime_delta is not None:
        life_delta_cap = p.max_lifetime_delta

        def lifetime_delta(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
            rid, title = "privacy.max_lifetime_delta", "Lifetime delta of its individuals"
            metric = "ledger.delta + lifetime ledger"
            threshold = (
                f"<= {fmt(life_delta_cap)} (per individual: the releases that included them)"
            )
            eps = _lifetime_epsilon((rid, title, metric, threshold), results, ctx)
            if isinstance(eps, Finding):
                return eps
            if math.isinf(eps) and p.allow_no_formal_privacy:
                return _finding(
                    rid,
                    title,
                    metric,
                    threshold,
                    Status.PASS,
                    None,
                    "not applicable: no formal privacy, allowed by this policy",
                )
            raw = lookup(results, "ledger.delta")
            value = None if is_missing(raw) else as_number(raw)
            if value is None or value < 0:
                return _not_evaluated(rid, title, metric, threshold, "ledger.delta is missing")
            if ctx.lifetime_delta_spent is None:
                return _not_evaluated(rid, title, metric, threshold, _NO_LIFETIME)
            # the deltas of one individual's releases add (the composed epsilon holds at
            # their sum); the ledger's figure with this release is the largest such sum over
            # the individuals; without it, spent + this one's bounds it
            total = ctx.lifetime_delta_after
            if total is None:
                total = ctx.lifetime_delta_spent + value
            detail = (
                f"{fmt_claim(ctx.lifetime_delta_spent)} spent before by its most-spent "
                f"individual, over {ctx.lifetime_releases or 0} earlier release(s); this "
                f"release {fmt_claim(value)}"
            )
            status = Status.PASS if total <= life_delta_cap * (1 + 1e-9) else Status.FAIL
            return _finding(rid, title, metric, threshold, status, total, detail)

        rules.append(
            RuleSpec(
                "privacy.max_lifetime_delta",
                "Lifetime delta of its individuals",
                "ledger.delta",
                "privacy.max_lifetime_delta",
                lifetime_delta,
            )
        )

    if p.max_delta is not None:
        max_delta = p.max_delta

        def delta(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
            rid, title, metric = "privacy.max_delta", "Delta of this release", "ledger.delta"
            if max_delta == "auto":
                # n is the size of the data set the mechanism sees: the training members
                # (falling back to the whole cohort when no split is recorded).
                n_raw = lookup(results, "split.n_members")
                if is_missing(n_raw):
                    n_raw = lookup(results, "cohort.n_samples")
                n = as_number(n_raw) if not is_missing(n_raw) else None
                threshold = f"<= 1/n^{fmt(p.delta_exponent)}"
                if n is None or not 1 <= n < math.inf:
                    return _not_evaluated(
                        rid,
                        title,
                        metric,
                        threshold,
                        "split.n_members and cohort.n_samples are missing: the 'auto' bound "
                        "needs n",
                    )
                # 1e-9 relative slack: delta = 1/n^1.1 computed elsewhere may differ by an ulp
                bound = float(n) ** -p.delta_exponent * (1 + 1e-9)
                threshold = (
                    # to the digits the measured delta is shown with (rounded up), so a
                    # delta at the bound does not read as above it
                    f"<= 1/n^{fmt(p.delta_exponent)} = {fmt_claim(bound)} (n = {int(n):,} training "
                    "members)"
                )
            else:
                bound = float(max_delta)
                threshold = f"<= {fmt(bound)}"
            ok, eps, _ = _epsilon(results)
            if ok and eps is not None and math.isinf(eps) and p.allow_no_formal_privacy:
                return _finding(
                    rid,
                    title,
                    metric,
                    threshold,
                    Status.PASS,
                    None,
                    "not applicable: no formal privacy, allowed by this policy",
                )
            raw = lookup(results, "ledger.delta")
            value = None if is_missing(raw) else as_number(raw)
            if value is None:
                return _not_evaluated(rid, title, metric, threshold, "ledger.delta is missing")
            status = Status.PASS if value <= bound else Status.FAIL
            return _finding(rid, title, metric, threshold, status, value)

        rules.append(
            RuleSpec(
                "privacy.max_delta",
                "Delta of this release",
                "ledger.delta",
                "privacy.max_delta",
                delta,
            )
        )

    if p.min_holdout is not None:
        rules.append(
            _bound_rule(
                "privacy.min_holdout",
                "Holdout (non-member) set large enough for the audits",
                "split.n_holdout",
                "privacy.min_holdout",
                min_value=float(p.min_holdout),
            )
        )
    if p.max_phenotype_columns_typed_from_data is not None:
        rules.append(
            _bound_rule(
                "privacy.phenotype_types",
                "Phenotype columns typed from the members' data (not declared)",
                "cohort.phenotype_types.n_typed_from_data",
                "privacy.max_phenotype_columns_typed_from_data",
                max_value=float(p.max_phenotype_columns_typed_from_data),
                note="declare them in a --pheno-schema file",
            )
        )
    return rules


def _attack_rules(p: Policy) -> list[RuleSpec]:
    rules: list[RuleSpec] = []
    for attack in p.attacks:
        base = f"audit.attacks.{attack}"
        if p.max_auc_ci_upper is not None:
            raw = _bound_rule(
                f"membership.{attack}.auc",
                f"Membership inference ({attack}): ROC AUC",
                f"{base}.auc",
                "membership.max_auc_ci_upper",
                max_value=p.max_auc_ci_upper,
                ci_path=f"{base}.auc_ci",
            )
            if attack == "dcr" and p.public_panel_control:
                raw = _against_public_control(raw, p.max_auc_ci_upper, "dcr_auc", "dcr_auc")
            rules.append(raw)
        if p.max_tpr_at_1pct_fpr is not None:
            rules.append(
                _measurable_at(
                    0.01,
                    base,
                    _bound_rule(
                        f"membership.{attack}.tpr_at_1pct_fpr",
                        f"Membership inference ({attack}): true-positive rate at 1% false "
                        "positives",
                        f"{base}.tpr_at_fpr_0.01",
                        "membership.max_tpr_at_1pct_fpr",
                        max_value=p.max_tpr_at_1pct_fpr,
                    ),
                )
            )
    return rules


def _measurable_at(fpr: float, attack: str, raw: RuleSpec) -> RuleSpec:
    """A TPR-at-``fpr`` rule, NOT EVALUATED when the attack's holdout cannot show that false
    positive rate: with n holdout individuals the smallest non-zero one is 1/n, and a "TPR
    at 1% FPR" on fewer than 100 is the TPR at FPR 0, not a measurement."""

    def check(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
        resolution = as_number(lookup(results, f"{attack}.fpr_resolution"))
        if resolution is None:
            n = as_number(lookup(results, f"{attack}.n_holdout"))
            resolution = 1.0 / n if n is not None and n >= 1 else None
        found = raw.check(results, ctx)
        if resolution is None or resolution <= fpr * (1 + 1e-12):
            return found
        return replace(
            found,
            status=Status.NOT_EVALUATED,
            detail=f"not measurable: with {round(1 / resolution)} holdout individuals the "
            f"smallest non-zero false-positive rate is {fmt(resolution)}, above {fmt(fpr)} "
            "(a larger holdout is needed)",
        )

    return RuleSpec(raw.id, raw.title, raw.metric, raw.key, check)


def _against_public_control(raw: RuleSpec, bound: float, control: str, alone: str) -> RuleSpec:
    """A distance rule (the DCR attack's AUC, the DCR share; 0.5 = no signal) judged in two
    parts when the audit ran the public-panel control (``nearest_neighbour.
    public_panel_control``): the genotypes by their excess over the panel, which never saw
    the split (upper CI bound <= ``bound - 0.5``), and the phenotype columns alone against
    the holdout (upper CI bound <= ``bound``). Without the control, ``raw`` judges the
    combined statistic as usual. ``control`` / ``alone`` name the statistic in
    ``audit.public_control`` (``<control>_excess``) and ``audit.nearest_neighbour.
    phenotypes_only``."""
    pc, ph = "audit.public_control", "audit.nearest_neighbour.phenotypes_only"
    excess, pheno = f"{pc}.{control}_excess", f"{ph}.{alone}"
    limit = round(bound - 0.5, 12)  # the threshold shown: 0.6 - 0.5 is 0.09999999999999998
    threshold = (
        f"genotypes: 95% CI upper bound of the excess over the public panel <= {fmt(limit)}; "
        f"phenotype columns alone: 95% CI upper bound <= {fmt(bound)}"
    )
    metric = f"{excess} (CI: {excess}_ci); {pheno} (CI: {pheno}_ci)"

    def check(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
        if is_missing(lookup(results, excess)):
            found = raw.check(results, ctx)
            why = f"the raw figures are judged: {why_missing(results, excess)}"
            return replace(found, detail=f"{found.detail}; {why}".strip("; "))
        value, ci = as_number(lookup(results, excess)), _ci(lookup(results, f"{excess}_ci"))
        if value is None or ci is None:
            return _not_evaluated(
                raw.id, raw.title, metric, threshold, f"{excess} or its CI is not a number"
            )
        block = lookup(results, ph)
        if is_missing(block):
            return _not_evaluated(raw.id, raw.title, metric, threshold, why_missing(results, ph))
        parts = [
            f"genotypes: synthetic {fmt(lookup(results, f'{pc}.{control}_synthetic'))} against "
            f"the panel's {fmt(lookup(results, f'{pc}.{control}_public'))}"
        ]
        ok = ci[1] <= limit  # (0.5 + 0.07 <= 0.57 is False in floating point)
        if isinstance(block, Mapping) and block.get("status") is not None:
            parts.append(f"no phenotype column in the distances ({block.get('reason', '')})")
        else:
            p_value, p_ci = as_number(lookup(results, pheno)), _ci(lookup(results, f"{pheno}_ci"))
            if p_value is None or p_ci is None:
                return _not_evaluated(
                    raw.id, raw.title, metric, threshold, f"{pheno} or its CI is missing"
                )
            ok = ok and p_ci[1] <= bound
            parts.append(f"phenotypes alone {fmt(p_value)} ({fmt(p_ci[0])} – {fmt(p_ci[1])})")
        combined = raw.check(results, ctx)
        if combined.measured is not None and combined.ci is not None:
            parts.append(
                f"genotypes and phenotypes together {fmt(combined.measured)} "
                f"({fmt(combined.ci[0])} – {fmt(combined.ci[1])}), shown, not judged"
            )
        status = Status.PASS if ok else Status.FAIL
        return _finding(raw.id, raw.title, metric, threshold, status, value, "; ".join(parts), ci)

    return RuleSpec(raw.id, raw.title, metric, raw.key, check)


def _leakage_rules(p: Policy) -> list[RuleSpec]:
    rules: list[RuleSpec] = []
    nn = "audit.nearest_neighbour"
    if p.max_share_closer_to_members_ci_upper is not None:
        share = _bound_rule(
            "nearest_neighbour.share_closer_to_members",
            "Synthetic records closer to members than to holdout",
            f"{nn}.share_closer_to_members",
            "nearest_neighbour.max_share_closer_to_members_ci_upper",
            max_value=p.max_share_closer_to_members_ci_upper,
            ci_path=f"{nn}.share_closer_to_members_ci",
            note="0.5 means synthetic records are no closer to members than to non-members",
        )
        if p.public_panel_control:
            share = _against_public_control(
                share,
                p.max_share_closer_to_members_ci_upper,
                "share_closer",
                "share_closer_to_members",
            )
        rules.append(share)
    if p.max_centred_share_ci_upper is not None:
        rules.append(
            _bound_rule(
                "nearest_neighbour.centred_share",
                "Synthetic records closer to members than to holdout, hub-centred distances",
                f"{nn}.centred.share_closer_to_members",
                "nearest_neighbour.max_centred_share_ci_upper",
                max_value=p.max_centred_share_ci_upper,
                ci_path=f"{nn}.centred.share_closer_to_members_ci",
                note="each real individual's distances less its median distance to the "
                "synthetic records; 0.5 means synthetic records are no closer to members than "
                "to non-members",
            )
        )
    if p.min_distinct_share_p_value is not None:
        rules.append(
            _bound_rule(
                "nearest_neighbour.distinct_share",
                "Members among the distinct real individuals nearest to synthetic records",
                f"{nn}.distinct_share_p_value",
                "nearest_neighbour.min_distinct_share_p_value",
                min_value=p.min_distinct_share_p_value,
                note="exact one-sided p-value (hypergeometric over the split); small when "
                "more of them are members than the split's chance gives",
            )
        )
    if p.max_exact_duplicate_genotypes is not None:
        rules.append(
            _bound_rule(
                "nearest_neighbour.exact_duplicate_genotypes",
                "Synthetic genotype rows identical to a member's",
                f"{nn}.exact_duplicate_genotypes",
                "nearest_neighbour.max_exact_duplicate_genotypes",
                max_value=float(p.max_exact_duplicate_genotypes),
            )
        )
    kin = "audit.kinship"
    if p.max_excess_first_degree_rate is not None:
        rules.append(
            _bound_rule(
                "kinship.excess_first_degree",
                "Synthetic-member first-degree relatives beyond the holdout baseline",
                f"{kin}.excess_first_degree_rate",
                "kinship.max_excess_first_degree_rate",
                max_value=p.max_excess_first_degree_rate,
                show_ci=f"{kin}.excess_first_degree_rate_ci",
                note="rate of synthetic-member pairs at kinship >= 0.177 minus the same rate "
                "for holdout-member pairs",
            )
        )
    if p.max_synthetic_member_duplicate_pairs is not None:
        rules.append(
            _bound_rule(
                "kinship.duplicate_pairs",
                "Synthetic-member pairs at duplicate/identical-twin level",
                f"{kin}.synthetic_member_duplicate_pairs",
                "kinship.max_synthetic_member_duplicate_pairs",
                max_value=float(p.max_synthetic_member_duplicate_pairs),
            )
        )
    if p.max_risk_ci_upper is not None:
        cap = p.max_risk_ci_upper

        def attribute(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
            rid, title = "attribute_inference.risk", "Attribute inference risk"
            metric = "audit.attribute_inference.*.risk_ci"
            threshold = f"95% CI upper bound <= {fmt(cap)} for every phenotype"
            block = lookup(results, "audit.attribute_inference")
            if is_missing(block) or not isinstance(block, Mapping) or not block:
                return _not_evaluated(
                    rid, title, metric, threshold, "audit.attribute_inference is missing"
                )
            worst: tuple[str, float, tuple[float, float]] | None = None
            for pheno, entry in block.items():
                ci = _ci(entry.get("risk_ci")) if isinstance(entry, Mapping) else None
                risk = as_number(entry.get("risk")) if isinstance(entry, Mapping) else None
                if ci is None or risk is None:
                    return _not_evaluated(
                        rid, title, metric, threshold, f"risk or risk_ci missing for {pheno}"
                    )
                if worst is None or ci[1] > worst[2][1]:
                    worst = (str(pheno), risk, ci)
            assert worst is not None
            status = Status.PASS if worst[2][1] <= cap else Status.FAIL
            detail = f"worst phenotype: {worst[0]}"
            if status is Status.FAIL and worst[1] <= cap:
                detail += f"; {WIDE_CI}"
            return _finding(rid, title, metric, threshold, status, worst[1], detail, worst[2])

        rules.append(
            RuleSpec(
                "attribute_inference.risk",
                "Attribute inference risk",
                "audit.attribute_inference",
                "attribute_inference.max_risk_ci_upper",
                attribute,
            )
        )
    if p.require_lower_bound_below_claimed:

        def canary(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
            rid, title = "canary.lower_bound", "Canary audit: empirical epsilon lower bound"
            metric = "audit.canary.epsilon_lower_bound"
            threshold = "<= claimed epsilon"
            raw = lookup(results, metric)
            lower = None if is_missing(raw) else as_number(raw)
            ok, eps, why = _epsilon(results)
            if lower is None:
                return _not_evaluated(rid, title, metric, threshold, why_missing(results, metric))
            if not ok or eps is None:
                return _not_evaluated(rid, title, metric, threshold, why)
            threshold = f"<= claimed epsilon ({fmt_claim(eps)})"
            conf = lookup(results, "audit.canary.confidence")
            detail = "" if is_missing(conf) else f"{fmt(conf)} one-sided confidence"
            status = Status.PASS if lower <= eps else Status.FAIL
            if status is Status.FAIL:
                detail += (
                    "; the measured leakage exceeds the claim: accounting or implementation error"
                )
            return _finding(rid, title, metric, threshold, status, lower, detail.strip("; "))

        rules.append(
            RuleSpec(
                "canary.lower_bound",
                "Canary audit: empirical epsilon lower bound",
                "audit.canary.epsilon_lower_bound",
                "canary.require_lower_bound_below_claimed",
                canary,
            )
        )
    return rules


def _with_false_hits(spec: RuleSpec, at: str) -> RuleSpec:
    """``spec`` (the SNP precision rule) with a detail saying where the synthetic hits the
    real GWAS does not reach stand in the real GWAS (``fidelity.compare_gwas``'s
    ``false_hits``), when the results carry it: the reader of a blocked release learns
    whether they are real loci's SNPs short of the line or association the real data lack."""

    def check(results: Mapping[str, Any], ctx: EvaluationContext) -> Finding:
        finding = spec.check(results, ctx)
        false = as_number(lookup(results, f"{at}.false_hits"), finite=True)
        near = as_number(lookup(results, f"{at}.false_hits_supported"), finite=True)
        support = as_number(lookup(results, "fidelity.gwas.loci.support_threshold"), finite=True)
        if finding.status == Status.NOT_EVALUATED or not false or near is None or not support:
            return finding
        span = _ci(lookup(results, f"{at}.false_hits_real_log10_p"))
        where = "" if span is None else f" (real -log10 p {span[0]:.1f}-{span[1]:.1f})"
        n_false, n_near = int(false), int(near)
        head = f"{n_false} synthetic hits are not real hits at 1e-8"
        reach = f"p < {fmt(support)} in the real GWAS{where}"
        if n_near == n_false:
            detail = f"{head}; all reach {reach}: SNPs of real loci short of the line"
        elif n_near == 0:
            detail = f"{head}; none reaches {reach}: association the real data do not show"
        else:
            detail = (
                f"{head}; {n_near} of them reach {reach}: SNPs of real loci short of the line; "
                f"the other {n_false - n_near}: association the real data do not show"
            )
        return replace(finding, detail="; ".join(x for x in (finding.detail, detail) if x))

    return replace(spec, check=check)


def _fidelity_rules(p: Policy) -> list[RuleSpec]:
    rules: list[RuleSpec] = []
    at = "fidelity.gwas.thresholds.1e-08"
    if p.min_recall is not None:
        rules.append(
            _bound_rule(
                "fidelity.recall",
                "GWAS SNP recall at p < 1e-8",
                f"{at}.recall",
                "fidelity.min_recall",
                min_value=p.min_recall,
            )
        )
    if p.min_precision is not None:
        rules.append(
            _with_false_hits(
                _bound_rule(
                    "fidelity.precision",
                    "GWAS SNP precision at p < 1e-8",
                    f"{at}.precision",
                    "fidelity.min_precision",
                    min_value=p.min_precision,
                ),
                at,
            )
        )
    if p.min_loci_recovered_fraction is not None:
        need = p.min_loci_recovered_fraction

        def loci(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
            rid, title = "fidelity.loci_recovered", "Real GWAS loci recovered"
            metric = "fidelity.gwas.loci.recovered / real_loci"
            threshold = f">= {fmt(need)} of the real loci"
            rec = as_number(lookup(results, "fidelity.gwas.loci.recovered"), finite=True)
            real = as_number(lookup(results, "fidelity.gwas.loci.real_loci"), finite=True)
            if rec is None or real is None:
                return _not_evaluated(
                    rid,
                    title,
                    metric,
                    threshold,
                    "fidelity.gwas.loci.recovered or real_loci is missing or not finite",
                )
            if real == 0:
                return _not_evaluated(
                    rid, title, metric, threshold, "the real GWAS has no locus: nothing to recover"
                )
            share = rec / real
            status = Status.PASS if share >= need else Status.FAIL
            return _finding(
                rid, title, metric, threshold, status, share, f"{int(rec)} of {int(real)} loci"
            )

        rules.append(
            RuleSpec(
                "fidelity.loci_recovered",
                "Real GWAS loci recovered",
                "fidelity.gwas.loci",
                "fidelity.min_loci_recovered_fraction",
                loci,
            )
        )
    if p.max_spurious_loci is not None:
        rules.append(
            _bound_rule(
                "fidelity.spurious_loci",
                "Spurious loci (synthetic only)",
                "fidelity.gwas.loci.spurious",
                "fidelity.max_spurious_loci",
                max_value=float(p.max_spurious_loci),
            )
        )
    if p.lambda_gc_range is not None:
        lo, hi = p.lambda_gc_range
        rules.append(
            _bound_rule(
                "fidelity.lambda_gc",
                "Genomic inflation (lambda_GC) of the synthetic GWAS",
                "fidelity.gwas.lambda_gc.synthetic",
                "fidelity.lambda_gc_range",
                min_value=lo,
                max_value=hi,
            )
        )
    if p.max_lambda_gc_excess is not None:
        rules.append(_lambda_excess_rule(p.max_lambda_gc_excess))
    if p.max_matching_residual is not None:
        rules.append(_matching_rule(p.max_matching_residual))
    return rules


def _lambda_excess_rule(limit: float) -> RuleSpec:
    """``fidelity.lambda_gc_excess``: the synthetic GWAS's lambda_GC less the members' own
    (the real GWAS's, both from the same analysis) at most ``limit``. A stratified trait
    inflates the members' lambda itself, and a faithful synthetic cohort keeps that: an
    absolute band (``lambda_gc_range``) fails it, this rule asks only that the synthetic
    noise floor not rise above the members'. NOT EVALUATED without both values."""
    rid, title = "fidelity.lambda_gc_excess", "Genomic inflation beyond the members' own"
    metric = "fidelity.gwas.lambda_gc.synthetic - fidelity.gwas.lambda_gc.real"
    threshold = f"<= {fmt(limit)}"

    def check(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
        synthetic, real = (
            as_number(lookup(results, f"fidelity.gwas.lambda_gc.{side}"), finite=True)
            for side in ("synthetic", "real")
        )
        if synthetic is None or real is None:
            return _not_evaluated(
                rid, title, metric, threshold, "the fidelity results hold no lambda_GC pair"
            )
        excess = synthetic - real
        status = Status.PASS if excess <= limit else Status.FAIL
        note = f"synthetic {fmt(synthetic)}, members' {fmt(real)}"
        return _finding(rid, title, metric, threshold, status, excess, note)

    return RuleSpec(rid, title, metric, "fidelity.max_lambda_gc_excess", check)


def _matching_rule(limit: float) -> RuleSpec:
    """``fidelity.matching_residual``: the synthesizer assigns phenotype rows to genotype rows
    so that the synthetic cross-moments reproduce the released ones; its relative residual
    says how far they miss. A release that carried no association has nothing to reproduce
    (PASS, measured n/a); one whose synthesis recorded no association path is NOT EVALUATED."""
    rid, title = "fidelity.matching_residual", "Released associations reproduced (matching)"
    metric = "synthesis.association.matching_relative_residual"
    threshold = f"<= {fmt(limit)}"

    def check(results: Mapping[str, Any], _ctx: EvaluationContext) -> Finding:
        association = lookup(results, "synthesis.association")
        if not isinstance(association, Mapping):
            return _not_evaluated(
                rid, title, metric, threshold, "the synthesis recorded no association path"
            )
        regions = association.get("regions") or []
        if not isinstance(regions, list):
            return _not_evaluated(
                rid, title, metric, threshold, "synthesis.association.regions is not a list"
            )
        carried = [r for r in regions if isinstance(r, Mapping) and not r.get("dropped")]
        if not carried:
            note = "no association was released: nothing to reproduce"
            return _finding(rid, title, metric, threshold, Status.PASS, "n/a", note)
        value = as_number(association.get("matching_relative_residual"))
        if value is None:
            return _not_evaluated(rid, title, metric, threshold, f"{metric} is missing")
        status = Status.PASS if value <= limit else Status.FAIL
        note = f"{len(carried)} released region(s)"
        return _finding(rid, title, metric, threshold, status, value, note)

    return RuleSpec(rid, title, metric, "fidelity.max_matching_residual", check)


def rule_specs(policy: Policy) -> list[RuleSpec]:
    """Every rule the policy configures, in dossier order."""
    specs = [
        *_privacy_rules(policy),
        *_attack_rules(policy),
        *_leakage_rules(policy),
        *_fidelity_rules(policy),
    ]
    for rule in policy.custom:
        specs.append(
            _bound_rule(
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
