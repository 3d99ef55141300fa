"""Locate the repository's top-level resource folders: ``policies/`` and ``reports/templates/``.

The package is installed editable from the repository, so both folders sit two levels above
``src/dpgenome/``. ``DPGENOME_HOME`` (a directory holding ``policies/`` and ``reports/``) takes
precedence, for installations that keep them elsewhere. A missing folder is a
:class:`~dpgenome.errors.ConfigError` that names every place searched.
"""

from __future__ import annotations

import os
from pathlib import Path

from dpgenome.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent


def _candidates() -> list[Path]:
    roots: list[Path] = []
    home = os.environ.get("DPGENOME_HOME")
    if home:
        roots.append(Path(home).expanduser())
    roots.append(_PACKAGE_DIR.parent.parent)  # <repo>/src/dpgenome -> <repo>
    return roots


def _find(relative: str, marker: str) -> Path:
    tried = []
    for root in _candidates():
        path = root / relative
        if (path / marker).exists() or (marker == "" and path.is_dir()):
            return path
        tried.append(str(path))
    raise ConfigError(
        f"cannot find the {relative}/ folder of dpgenome (looked in: {'; '.join(tried)}); "
        "run from a source checkout installed with `pip install -e .`, or set DPGENOME_HOME "
        f"to a directory that holds {relative}/"
    )


def policies_dir() -> Path:
    """The folder holding the shipped policies (``strict.yaml``, ``consortium.yaml``, ...)."""
    return _find("policies", "strict.yaml")


def templates_dir() -> Path:
    """The folder holding the Jinja2 templates of the dossier (``*.html.j2``)."""
    return _find("reports/templates", "release.html.j2")


def shipped_policy(name: str) -> Path:
    """Path of a shipped policy by name (``"strict"``, ``"consortium"``, ``"internal"``)."""
    folder = policies_dir()
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise ConfigError(f"no shipped policy named {name!r}; known: {known}", file=folder)
    return path
