"""One error hierarchy for every user-facing failure.

The CLI maps :class:`DpgenomeError` to exit code 2 (a one-paragraph message on stderr, no
traceback) and :class:`ReleaseBlocked` to exit code 3. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DpgenomeError(Exception):
    """Base class of every error caused by the user's input, configuration or policy."""

    exit_code = 2
    #: what ``column`` names in the message: a table's column, or a YAML file's key
    column_label = "column"

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: str | int | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.column = column
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"{self.column_label} {self.column}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class InputError(DpgenomeError):
    """A file is missing, unreadable, malformed or inconsistent with its companions."""


class CohortError(DpgenomeError):
    """The cohort cannot serve the requested analysis (e.g. unknown phenotype, too few samples)."""


class ConfigError(DpgenomeError):
    """A configuration value or file is invalid."""

    column_label = "key"


class BudgetError(DpgenomeError):
    """The privacy budget cannot be met or would be exceeded."""


class PolicyError(DpgenomeError):
    """A policy file is invalid (unknown key, wrong type, bad value)."""

    column_label = "key"


class VerificationError(DpgenomeError):
    """A release bundle does not verify (changed bytes, bad signature, verdict mismatch)."""


class ReleaseBlocked(DpgenomeError):
    """The policy verdict is BLOCK: nothing was exported."""

    exit_code = 3
    #: the explanatory dossier of the blocked release, when one was rendered
    dossier: Path | None = None
    #: the policy evaluation that blocked (``dpgenome.findings.Evaluation``)
    evaluation: Any = None
    #: the blocked release's outcome (``dpgenome.release.ReleaseOutcome``, no bundle), when
    #: the whole release ran: its summary is printed like an approved one's
    outcome: Any = None
    #: the summary (``--json``) of a release refused before training, which has no outcome
    summary: dict[str, Any] | None = None
