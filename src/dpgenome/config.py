"""Frozen, validated configuration of a release (``dpgenome release`` / ``--config``).

``ReleaseConfig.from_mapping`` rejects unknown keys and wrong types, naming the key (and the
line, for YAML files); ``validate()``-style resolution happens in :func:`resolve`, which fills
the defaults (``delta: auto`` becomes 1/n^1.1 once n is known) and returns a new frozen copy
that is written next to the outputs, so any run can be replayed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from dpgenome.errors import ConfigError, DpgenomeError
from dpgenome.noise import default_secure_mode


def parse_epsilon(text: str | float | int) -> float:
    """``inf`` (no formal privacy) or a positive number. Only the words ``inf``,
    ``infinity`` and ``none`` mean no formal privacy: a number too large for a float
    (``1e400``, or ``1.0e+400`` in YAML, which reads it as the float inf) is an error, not a
    silent release without privacy."""
    words = {"inf", "infinity", "none"}
    if isinstance(text, bool) or not isinstance(text, str | int | float):  # true is no 1
        raise ConfigError(f"epsilon must be a positive number or 'inf', got {text!r}")
    word = None if isinstance(text, int | float) else str(text).strip().lower()
    try:
        value = math.inf if word in words else float(text)
    except ValueError:
        raise ConfigError(f"epsilon must be a positive number or 'inf', got {text!r}") from None
    if not value > 0:
        raise ConfigError(f"epsilon must be positive or 'inf', got {text!r}")
    if math.isinf(value) and word not in words:
        raise ConfigError(
            f"epsilon {text!r} is too large for a number (or .inf); write the word inf for no "
            "formal privacy"
        )
    return value


#: the largest seed a command or configuration file takes (``--seed``, ``seed:``)
MAX_SEED = 2**31 - 1


#: :class:`ReleaseConfig` keys that belong to one export, not to the synthetic cohort
EXPORT_SETTINGS = frozenset(
    {"out", "policy", "override_reason", "signer", "signing_key", "lifetime_db", "cache_dir"}
)


#: a configuration file may spell a key as its command-line flag does (``covar: SW16``,
#: ``holdout-fraction: 0.3``): the flag's name for each key whose name differs, beyond
#: hyphens for underscores
FLAG_NAMES = {"covar": "covariates", "format": "formats", "n": "n_synthetic"}


def canonical_keys(
    data: dict[str, Any], lines: dict[str, int] | None = None, *, source: str = "configuration"
) -> tuple[dict[str, Any], dict[str, int]]:
    """``(data, lines)`` with every key spelt as :class:`ReleaseConfig`'s field (a flag's
    spelling, :data:`FLAG_NAMES` or hyphens, mapped to it); one key given in two spellings
    is a :class:`ConfigError` naming both."""
    lines = lines or {}
    out: dict[str, Any] = {}
    out_lines: dict[str, int] = {}
    spelt: dict[str, str] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        name = FLAG_NAMES.get(name, name)
        if name in spelt:
            raise ConfigError(
                f"key {name!r} is given twice, as {spelt[name]!r} and as {key!r}",
                file=source,
                line=lines.get(key),
                column=str(key),
            )
        spelt[name] = str(key)
        out[name] = value
        if key in lines:
            out_lines[name] = lines[key]
    return out, out_lines


class KeyConfigError(ConfigError):
    """A :class:`ConfigError` about one key of a release configuration, raised by a check
    across keys (:meth:`ReleaseConfig.__post_init__`): ``from_mapping`` names its line."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True)
class ReleaseConfig:
    cohort: str
    pheno: str
    policy: str
    out: str
    covariates: tuple[str, ...] = ()
    epsilon: float = 8.0
    delta: float | str = "auto"
    seed: int = 0
    holdout_fraction: float = 0.2
    n_synthetic: int | None = None
    public_panel: str | None = None
    #: ancestry across chromosomes (SynthConfig.ancestry_pcs): a number needs
    #: ``public_panel``; ``"auto"`` (the default) chooses from the panel, 0 without one
    ancestry_pcs: int | Literal["auto"] = "auto"
    #: missing genotype calls released and given to the synthetic cohort
    #: (SynthConfig.genotype_missingness, dpgenome.callrates)
    genotype_missingness: bool = False
    #: a phenotype schema file (dpgenome.phenoschema): public column types and domains
    pheno_schema: str | None = None
    shadow: int = 0
    canaries: int = 50
    #: ``None``: on unless the noise is fixed for tests (dpgenome.noise.default_secure_mode),
    #: resolved when the configuration is made so that results and caches record the choice
    secure_mode: bool | None = None
    formats: tuple[str, ...] = ("parker",)
    #: how the synthetic map lists each SNP's alleles (dpgenome.cohort.public_allele_map)
    allele_order: str = "auto"
    lmm: bool = False
    override_reason: str | None = None
    signer: str | None = None
    signing_key: str | None = None
    lifetime_db: str | None = None
    cache_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.secure_mode is None:
            object.__setattr__(self, "secure_mode", default_secure_mode())
        if self.ancestry_pcs != "auto" and self.ancestry_pcs and not self.public_panel:
            raise KeyConfigError(
                "ancestry_pcs",
                f"key 'ancestry_pcs' ({self.ancestry_pcs}) needs 'public_panel': the ancestry "
                "axes are the public panel's",
            )
        if self.extra:  # also when made in Python, not read from a file (from_mapping)
            try:
                _check_extra(self.extra, self.epsilon)
            except (ValueError, ConfigError) as err:
                why = err.message if isinstance(err, ConfigError) else str(err)
                raise KeyConfigError("extra", f"key 'extra': {why}") from None

    @classmethod
    def from_mapping(
        cls,
        data: dict[str, Any],
        *,
        source: str = "configuration",
        lines: dict[str, int] | None = None,
        flags: Collection[str] = (),
    ) -> ReleaseConfig:
        """``lines``: the line of each key in the YAML file (:func:`config_key_lines`), named
        in the errors; ``flags``: the keys given on the command line instead, whose errors
        name their option (``--holdout-fraction``), not the file."""
        data, lines = canonical_keys(data, lines, source=source)

        def where(key: str) -> dict[str, Any]:
            if key in flags:
                flag = {v: k for k, v in FLAG_NAMES.items()}.get(key, key).replace("_", "-")
                return {"file": f"--{flag} (command line)"}
            return {"file": source, "line": lines.get(key)}

        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            first = min(unknown, key=lambda k: lines.get(k, 0))
            raise ConfigError(
                f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}",
                file=source,
                line=lines.get(first),
                column=first,
            )
        values: dict[str, Any] = {}
        for key, value in data.items():
            if value is None:  # a YAML null leaves the key unset: its default (or missing)
                continue
            try:
                values[key] = _coerce(key, value)
            except (TypeError, ValueError, ConfigError) as err:
                why = err.message if isinstance(err, ConfigError) else str(err)
                raise ConfigError(f"key {key!r}: {why}", **where(key)) from None
        missing = [k for k in ("cohort", "pheno", "policy", "out") if k not in values]
        if missing:
            raise ConfigError(f"missing required key(s): {', '.join(missing)}", file=source)
        try:
            return cls(**values)
        except KeyConfigError as err:  # a check across keys: named at the key it is about
            raise ConfigError(err.message, **where(err.key)) from None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["covariates"] = list(self.covariates)
        out["formats"] = list(self.formats)
        out["epsilon"] = None if math.isinf(self.epsilon) else self.epsilon
        return out

    def synthesis_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the settings of one export (where the bundle goes, the
        policy judging it, an override, the signing key, the lifetime ledger, the cache):
        what ``results.json`` and a bundle's manifest record as the release's configuration.
        Results are reused by later exports, where those settings would be stale; the
        manifest records the export's own policy, override and signature."""
        return {k: v for k, v in self.to_dict().items() if k not in EXPORT_SETTINGS}

    @property
    def no_formal_privacy(self) -> bool:
        return math.isinf(self.epsilon)

    def resolve(self, n_members: int) -> ReleaseConfig:
        """Fill ``delta: auto`` with 1/n^1.1 (n = members that train the synthesizer)."""
        delta = self.delta
        if isinstance(delta, str):
            delta = 1.0 / n_members**1.1
        if not 0 < float(delta) < 1:
            raise ConfigError(f"delta must be in (0, 1), got {delta}")
        return replace(self, delta=float(delta))


def typed_replace(base: Any, overrides: Any, where: str) -> Any:
    """The dataclass ``base`` with ``overrides`` (a mapping from the release configuration's
    ``extra``) replacing its fields, each value checked against the type of the field's
    current value (a nested configuration takes a mapping of its own fields): a wrong key or
    type is a :class:`ConfigError` naming ``where.key``, found when the configuration is read,
    not after minutes of training."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: expected a mapping of fields, got {overrides!r}")
    names = {f.name for f in fields(base)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        path = f"{where}.{key}"
        if key not in names:
            raise ConfigError(f"{path}: no such field; valid: {', '.join(sorted(names))}")
        current = getattr(base, key)
        if is_dataclass(current):
            changes[key] = typed_replace(current, value, path)
            continue
        ok = (
            current is None
            or (isinstance(current, bool) and isinstance(value, bool))
            or (
                isinstance(current, int | float)
                and not isinstance(current, bool)
                and isinstance(value, int | float)
                and not isinstance(value, bool)
                and (isinstance(value, int) or not isinstance(current, int))
            )
            or (isinstance(current, str) and isinstance(value, str))
            or (isinstance(current, tuple) and isinstance(value, list | tuple))
        )
        if not ok:
            raise ConfigError(f"{path}: expected {type(current).__name__}, got {value!r}")
        changes[key] = tuple(value) if isinstance(current, tuple) else value
    return replace(base, **changes)


def _check_extra(extra: dict[str, Any], epsilon: float | None = None) -> None:
    """An ``extra`` mapping's sections and their fields, checked when the configuration is read
    (a misspelt section such as ``synthesis`` would otherwise run the defaults silently); with
    the release's ``epsilon``, the synthesizer's ranges too (some depend on it)."""
    from dpgenome.audit.config import AuditConfig
    from dpgenome.synthconfig import SynthConfig

    defaults = {"synth": SynthConfig(pheno="pheno"), "audit": AuditConfig()}
    for section, overrides in extra.items():
        if section not in defaults:
            raise ValueError(
                f"extra.{section}: no such section; valid: {', '.join(sorted(defaults))}"
            )
        # fields the release sets from its own keys: given here they would make the ledger
        # and the recorded configuration disagree (verify refuses such a bundle)
        owned = RELEASE_OWNED[section]
        keys = overrides if isinstance(overrides, dict) else {}  # typed_replace names a non-map
        own = next((k for k in keys if k in owned), None)
        if own is not None:
            raise ValueError(
                f"extra.{section}.{own}: set by the release's own key {owned[own]!r}; give it there"
            )
        changed = typed_replace(defaults[section], overrides, f"extra.{section}")
        if section == "synth" and epsilon is not None:
            # ranges too (ancestry_clusters >= 1, finite weights...): now, named at the key,
            # not after ingest (the member count is the run's; no range depends on it)
            replace(changed, epsilon=epsilon).validate(1_000)


#: the SynthConfig / AuditConfig fields a release fills from its own keys (release.py)
RELEASE_OWNED: dict[str, dict[str, str]] = {
    "synth": {
        "pheno": "pheno",
        "covariates": "covariates",
        "epsilon": "epsilon",
        "delta": "delta",
        "seed": "seed",
        "n_synth": "n_synthetic",
        "secure_mode": "secure_mode",
        "ancestry_pcs": "ancestry_pcs",
        "genotype_missingness": "genotype_missingness",
    },
    "audit": {
        "seed": "seed",
        "pheno": "pheno",
        "covariates": "covariates",
        "shadow_targets": "shadow",
        "canaries": "canaries",
        "claimed_epsilon": "epsilon",
        "delta": "delta",
    },
}


def _coerce(key: str, value: Any) -> Any:
    if key == "epsilon":
        return parse_epsilon(value)
    if key == "delta":
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            delta = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            delta = math.nan
        if not 0 < delta < 1:
            raise ValueError(f"delta must be 'auto' or a number in (0, 1), got {value!r}")
        return delta
    if key in {"covariates", "formats"}:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise TypeError("expected a list of strings")
        if key == "formats":
            from dpgenome.io import FORMATS

            unknown = [v for v in value if v not in FORMATS]
            if unknown:  # checked here, not after minutes of training
                raise TypeError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
        return tuple(value)
    if key == "ancestry_pcs" and isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if key in {"seed", "shadow", "canaries", "n_synthetic", "ancestry_pcs"}:
        if isinstance(value, bool) or not isinstance(value, int):
            either = "'auto' or " if key == "ancestry_pcs" else ""
            raise TypeError(f"expected {either}an integer, got {value!r}")
        if key == "seed" and not 0 <= value <= MAX_SEED:  # as the commands' --seed
            raise ValueError(f"expected a seed from 0 to {MAX_SEED}, got {value}")
        if key == "n_synthetic" and value < 1:
            raise ValueError(f"expected a positive number of records, got {value}")
        if key == "ancestry_pcs" and value < 0:
            raise ValueError(f"expected 'auto', 0 (off) or a number of principal axes, got {value}")
        least = {"shadow": (4, "targets (two folds)"), "canaries": (10, "canaries")}.get(key)
        if least is not None and value != 0 and value < least[0]:  # the audits' own minimums
            raise ValueError(f"expected 0 (not run) or at least {least[0]} {least[1]}, got {value}")
        return value
    if key == "holdout_fraction":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise TypeError(f"expected a number between 0 and 1 (exclusive), got {value!r}")
        return float(value)
    if key in {"secure_mode", "lmm", "genotype_missingness"}:
        if not isinstance(value, bool):
            raise TypeError(f"expected true/false, got {value!r}")
        return value
    if key == "allele_order":
        from dpgenome.cohort import ALLELE_ORDERS

        if value not in ALLELE_ORDERS:  # checked here, not after minutes of training
            raise ValueError(f"expected one of {', '.join(ALLELE_ORDERS)}, got {value!r}")
        return value
    if key == "extra":
        if not isinstance(value, dict):
            raise TypeError("expected a mapping")
        _check_extra(value)
        return value
    if not isinstance(value, str | int | float):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return str(value)


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading a plain ``1e-6`` (an exponent without a dot, which YAML
    1.1 leaves a string) as the number it looks like, as YAML 1.2 does, and refusing a key
    given twice in one mapping (PyYAML keeps the last silently: a schema's second entry for a
    column dropped its first). Every YAML file a user writes (a release configuration, a
    phenotype schema, a policy) is read with it."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<' merges may be overridden by the mapping's own keys
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: SafeLoader's own error follows
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def config_key_lines(path: str | Path, section: str | None = None) -> dict[str, int]:
    """The 1-based line of each top-level key of a YAML mapping file (with ``section``: of
    each key of the mapping under that top-level key), for error messages; empty when the
    file is not such a mapping (:func:`load_config_file` says why)."""
    try:
        node = yaml.compose(Path(path).read_text(), Loader=YamlLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    if section is not None and isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if k.value == section), None)
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value}


def read_user_text(
    path: Path, what: str, error: type[DpgenomeError] = ConfigError, hint: str = ""
) -> str:
    """The UTF-8 text of a file a user wrote (``what``: "configuration file", "policy
    file"...); a missing, unreadable or non-UTF-8 file is an ``error`` naming it (and the line
    of the first bad byte); ``hint`` follows "not found"."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{what} not found{hint}", file=path) from None
    except OSError as err:
        raise error(f"cannot read the {what}: {err.strerror or err}", file=path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        from dpgenome.io.files import line_of  # here: dpgenome.io reads cohorts (pandas)

        raise error(
            f"not UTF-8 text (byte {err.start + 1} of the file); re-save it as UTF-8",
            file=path,
            line=line_of(data, err.start),
        ) from None


def load_config_file(path: str | Path, what: str = "configuration file") -> dict[str, Any]:
    """Read a YAML file a user wrote (a release's configuration, a phenotype schema: ``what``,
    named by errors) into a plain mapping (keys validated by the caller)."""
    p = Path(path)
    text = read_user_text(p, what)
    try:
        data = yaml.load(text, Loader=YamlLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        raise ConfigError(f"not valid YAML: {err}", file=p, line=line) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of keys to values", file=p)
    return data
