"""A release's identity: its release id and the fingerprints of its synthetic cohort.

A release id names the synthetic cohort a bundle carries, derived from the real cohort's
fingerprint and the synthetic cohort's own (:func:`synthetic_release_id`), so that the
dossier, the results and the bundle's files can be checked to be of one release.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from dpgenome.bundle import RESULTS, sha256_file
from dpgenome.errors import ConfigError, DpgenomeError, InputError

log = logging.getLogger(__name__)


def default_release_id(files: Mapping[str, bytes | Path], fingerprint: str) -> str:
    """A release is its released data: SHA-256 over the cohort fingerprint and the sorted
    (name, SHA-256) of every data file. The same data exported twice is one release."""
    h = hashlib.sha256(fingerprint.encode())
    for name in sorted(files):
        source = files[name]
        if isinstance(source, bytes | bytearray):
            digest = hashlib.sha256(source).hexdigest()
        else:
            try:
                digest = sha256_file(Path(source))
            except OSError as err:
                raise InputError(f"cannot read {err.strerror}", file=source) from None
        h.update(f"\x1f{name}\x1e{digest}".encode())
    return h.hexdigest()


def synthetic_release_id(fingerprint: str, synthetic_fingerprint: str) -> str:
    """A release of ``dpgenome release`` is its synthetic cohort, whatever files carry it:
    SHA-256 over the source cohort's fingerprint and the synthetic cohort's content
    fingerprint (:meth:`Cohort.fingerprint`, independent of the file format). The same
    synthetic cohort exported again in another format (PLINK's hard calls are a rounding of
    the same dosages: post-processing) is the same release and costs nothing more in the
    lifetime ledger."""
    h = hashlib.sha256(b"dpgenome-release\x1f")
    h.update(f"{fingerprint}\x1f{synthetic_fingerprint}".encode())
    return h.hexdigest()


#: where results.json names the synthetic cohort it describes (its content fingerprint)
SYNTHETIC_FINGERPRINT = ("synthesis", "synthetic_fingerprint")
#: the fingerprint of the same cohort with its dosages rounded to hard calls, as a PLINK .bed
#: holds them (:func:`dpgenome.cohort.hard_call_fingerprint`)
SYNTHETIC_HARDCALL_FINGERPRINT = ("synthesis", "synthetic_hardcall_fingerprint")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def results_release_id(results: Mapping[str, Any], given: str | None = None) -> str | None:
    """The release id a results document fixes, checked against the caller's ``given``.

    ``dpgenome release`` records the synthetic cohort's content fingerprint in
    ``results["synthesis"]["synthetic_fingerprint"]``; the release is then
    :func:`synthetic_release_id` of it, whoever exports it and in whatever format, and a
    ``given`` id that differs is a :class:`ConfigError` (it would let another synthesis pass
    as this one, or this one as another, in the lifetime ledger: an id already recorded costs
    nothing more). Results without that field (written by another tool or an older version)
    leave the id to ``given`` (``None``: the caller's default, a hash of the data files)."""
    synthesis = results.get(SYNTHETIC_FINGERPRINT[0])
    synthetic = synthesis.get(SYNTHETIC_FINGERPRINT[1]) if isinstance(synthesis, Mapping) else None
    fingerprint = cohort_fingerprint(results)
    if synthetic is None or fingerprint is None:
        return given
    field_name = ".".join(SYNTHETIC_FINGERPRINT)
    if not isinstance(synthetic, str) or not _SHA256_HEX.fullmatch(synthetic):
        raise InputError(
            f"{field_name} must be a SHA-256 (64 lower-case hex digits), got {synthetic!r}",
            file=RESULTS,
            column=field_name,
        )
    derived = synthetic_release_id(fingerprint, synthetic)
    if given is not None and given != derived:
        raise ConfigError(
            f"release id {given[:12]} is not this release's: its results name the synthetic "
            f"cohort {synthetic[:12]}, whose release id is {derived[:12]} (an id names one "
            "synthetic cohort in the lifetime ledger)"
        )
    return derived


def synthetic_mismatches(
    results: Mapping[str, Any], files: Mapping[str, bytes | Path]
) -> list[str]:
    """Each synthetic cohort among a bundle's data ``files`` (``synthetic/``, or
    ``synthetic/<format>/`` for several formats) whose content is not the synthetic cohort
    ``results`` describe (its ``synthesis.synthetic_fingerprint``; for PLINK's hard calls
    ``synthesis.synthetic_hardcall_fingerprint``), or that cannot be read as a cohort. Empty
    when the results name no synthetic cohort (written by another tool or before stop 44).
    Without this, the audits, verdict and release id of one synthesis could carry the files
    of another, which no audit or policy judged and the lifetime ledger would not charge."""
    synthesis = results.get("synthesis")
    if not isinstance(synthesis, Mapping) or not synthesis.get(SYNTHETIC_FINGERPRINT[1]):
        return []
    exact = synthesis.get(SYNTHETIC_FINGERPRINT[1])
    hard = synthesis.get(SYNTHETIC_HARDCALL_FINGERPRINT[1])
    contents = synthetic_contents(files)
    if not contents:
        return ["the bundle holds no synthetic/ files for the synthetic cohort results.json names"]
    problems = []
    for folder, fmt_name, fingerprint in contents:
        if fmt_name is None:
            problems.append(f"{folder}: cannot be read as a cohort ({fingerprint})")
            continue
        expected = hard if fmt_name == "plink" else exact
        if expected is None:
            log.warning(
                "%s holds PLINK hard calls and results.json records no hard-call "
                "fingerprint (a release before stop 46): its content is not checked",
                folder,
            )
        elif fingerprint != expected:
            problems.append(
                f"{folder}: its synthetic cohort is not the one results.json describes "
                f"(content fingerprint {fingerprint[:12]}, recorded {str(expected)[:12]})"
            )
    return problems


def synthetic_contents(files: Mapping[str, bytes | Path]) -> list[tuple[str, str | None, str]]:
    """Each synthetic cohort among a bundle's data ``files`` (``synthetic/``, or
    ``synthetic/<format>/`` for several formats), read back: ``(folder, format, content
    fingerprint)``, or ``(folder, None, why it cannot be read as a cohort)``."""
    groups: dict[str, dict[str, bytes | Path]] = {}
    for name, src in files.items():
        path = PurePosixPath(name)
        if path.parts[0] == "synthetic":
            groups.setdefault(path.parent.as_posix(), {})[path.name] = src
    if not groups:
        return []
    from dpgenome.io import detect_format, read_cohort

    contents: list[tuple[str, str | None, str]] = []
    with tempfile.TemporaryDirectory(prefix="dpgenome-synthetic-") as tmp:
        for i, (folder, members) in enumerate(sorted(groups.items())):
            where = Path(tmp) / str(i)
            where.mkdir()
            for fname, src in members.items():
                if isinstance(src, Path):
                    (where / fname).symlink_to(src.resolve())
                else:
                    (where / fname).write_bytes(src)
            try:
                fmt = detect_format(where)
                fingerprint = read_cohort(where).fingerprint()
            except (DpgenomeError, OSError, ValueError) as err:
                why = err.message if isinstance(err, DpgenomeError) else str(err)
                contents.append((folder, None, why))
                continue
            contents.append((folder, fmt, fingerprint))
    return contents


def cohort_fingerprint(results: Mapping[str, Any]) -> str | None:
    cohort = results.get("cohort")
    fingerprint = cohort.get("fingerprint") if isinstance(cohort, Mapping) else None
    return fingerprint if isinstance(fingerprint, str) and fingerprint else None


#: the last dpgenome version whose results may lack ``synthesis.synthetic_fingerprint``: the
#: field came with release ids fixed by the results (stop 44) while the version stayed 0.1.0,
#: so results of 0.1.0 may lack it (an older release, or another tool's results) and those
#: of any later version must record it
_UNFINGERPRINTED_VERSION = (0, 1, 0)


def _results_version(results: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The dpgenome version the results record having been written by (its leading
    numbers), or None when they record none."""
    provenance = results.get("provenance")
    version = provenance.get("dpgenome_version") if isinstance(provenance, Mapping) else None
    found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version) if isinstance(version, str) else None
    return None if found is None else tuple(int(part or 0) for part in found.groups())


def named_synthetic(results: Mapping[str, Any]) -> Any:
    """The synthetic cohort's fingerprint the results record (``synthesis.
    synthetic_fingerprint``, as written: checked where it is used), or None."""
    synthesis = results.get(SYNTHETIC_FINGERPRINT[0])
    return synthesis.get(SYNTHETIC_FINGERPRINT[1]) if isinstance(synthesis, Mapping) else None


def unnamed_synthetic_version(results: Mapping[str, Any]) -> str | None:
    """The dpgenome version that wrote ``results`` when it is one that names the synthetic
    cohort of every release and these name none; None otherwise (named, or older)."""
    if named_synthetic(results) is not None:
        return None
    version = _results_version(results)
    if version is None or version <= _UNFINGERPRINTED_VERSION:
        return None
    return ".".join(map(str, version))
