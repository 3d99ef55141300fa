"""File plumbing shared by the readers and writers: gzip-aware opening with clear errors,
lookup of a cohort's files in any upper/lower case, and atomic creation of a cohort
directory (all files appear at once, or none)."""

from __future__ import annotations

import codecs
import gzip
import json
import os
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

from dpgenome.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
#: the byte-order mark Windows tools (Excel, Notepad) put at the start of UTF-8 text
UTF8_BOM = codecs.BOM_UTF8


def present(path: Path) -> bool:
    """``path`` exists, or is a symbolic link to a missing file: a dangling link to a
    companion file (``pheno.csv``, ``.qual``) must fail on opening, naming it, not read as
    though the file were not there."""
    return path.exists() or path.is_symlink()


def case_duplicates(paths: Iterable[Path]) -> list[Path] | None:
    """The first group (sorted) of ``paths`` whose names differ only in upper/lower case,
    or None when every name is distinct regardless of case."""
    groups: dict[str, list[Path]] = {}
    for p in sorted(paths):
        groups.setdefault(p.name.lower(), []).append(p)
    return next((g for g in groups.values() if len(g) > 1), None)


def case_duplicate_error(paths: list[Path], directory: Path) -> InputError:
    """The error for files whose names differ only in case (possible on Linux, where a
    Windows copy of the same file can sit beside the original): which one to read is
    ambiguous, so none is."""
    names = " and ".join(p.name for p in paths)
    return InputError(
        f"both {names} are present (names differing only in upper/lower case); keep one",
        file=directory,
    )


def find_case_insensitive(directory: Path, name: str) -> Path | None:
    """The entry of ``directory`` named ``name`` in any upper/lower case (``COHORT.BIM``,
    ``Pheno.CSV``, as Windows and some tools write them), or None when there is none. A
    dangling symbolic link counts (see :func:`present`). Two entries whose names differ
    only in case are an :class:`InputError` naming both."""
    wanted = name.lower()
    try:
        found = [p for p in directory.iterdir() if p.name.lower() == wanted]
    except FileNotFoundError:
        return None
    if len(found) > 1:
        raise case_duplicate_error(sorted(found), directory)
    return found[0] if found else None


def strip_bom(data: bytes) -> bytes:
    """``data`` without a leading UTF-8 byte-order mark."""
    return data[len(UTF8_BOM) :] if data.startswith(UTF8_BOM) else data


def decode_utf8(
    raw: bytes, *, file: Path, line: int | None, column: str | int | None = None
) -> str:
    """``raw`` as UTF-8 text; other bytes (Latin-1 or Windows-1252 from an older tool) are an
    error naming the file, line and column -- never replaced, which could make two ids equal
    or an id match nothing -- and never quoting the text (it may be a sample id)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(
            f"not UTF-8 text (byte {err.start + 1} of the field); re-save the file as UTF-8",
            file=file,
            line=line,
            column=column,
        ) from None


def line_of(data: bytes, offset: int) -> int:
    """The 1-based line of ``data`` holding byte ``offset`` (LF, CRLF or CR line ends)."""
    before = data[:offset]
    return len(before.splitlines()) + (not before or before.endswith((b"\n", b"\r")))


def check_utf8(data: bytes, path: Path) -> None:
    """Refuse a file that is not UTF-8 text, naming the line of the first bad byte."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        raise InputError(
            (
                "UTF-16 text (Excel's 'Unicode Text'?); save it as 'CSV UTF-8' or plain UTF-8"
                if utf16
                else f"not UTF-8 text (byte {err.start + 1} of the file); re-save it as UTF-8"
            ),
            file=path,
            line=None if utf16 else line_of(data, err.start),
        ) from None


def check_line_ends(first_line: bytes, path: Path) -> None:
    """Refuse a file whose lines end in a bare CR (classic Mac OS): read line by line it is
    one line, and the error would otherwise be about a missing header or rows."""
    if b"\r" in first_line.rstrip(b"\r\n"):
        raise InputError(
            "lines end in a bare CR (classic Mac OS line ends); convert them to LF "
            "(e.g. tr '\\r' '\\n')",
            file=path,
            line=1,
        )


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


@contextmanager
def open_binary(path: Path) -> Iterator[IO[bytes]]:
    """Open ``path`` for reading bytes, decompressing gzip (and multi-member BGZF) when the file
    starts with the gzip magic bytes, whatever its name. A corrupt or truncated gzip stream
    becomes an :class:`InputError` naming the file."""
    path = Path(path)
    try:
        raw = cast(IO[bytes], gzip.open(path, "rb")) if is_gzip(path) else open(path, "rb")
    except OSError as err:
        raise InputError(f"cannot open: {err.strerror or err}", file=path) from err
    gz = isinstance(raw, gzip.GzipFile)
    try:
        with raw:
            yield raw
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise _corrupt(path, err) from err
    except InputError as err:
        # Garbage decompressed from a damaged member is seen before its CRC is checked:
        # blame the compression, not the content, when the stream does not verify.
        problem = _gzip_problem(path) if gz else None
        if problem is not None:
            raise _corrupt(path, problem) from err
        raise


def _corrupt(path: Path, err: BaseException) -> InputError:
    return InputError(
        f"corrupt or truncated gzip data ({err}); re-create the file or decompress it",
        file=path,
    )


def _gzip_problem(path: Path) -> BaseException | None:
    """None when every gzip member of ``path`` decompresses and passes its CRC check."""
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 22):
                pass
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as err:
        return err
    return None


def refuse_working_folder(out: str | Path, what: str = "output") -> None:
    """An output folder is written beside itself and renamed into place: ``--out .`` (or a
    folder holding the current one) would replace the folder the command runs in. Refused,
    naming the path, before any work."""
    resolved = Path(out).resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise InputError(
            f"is the current folder{'' if resolved == cwd else ' or holds it'}: the {what} is "
            "written whole and moved into place, so name a new folder for it (e.g. --out "
            "result)",
            file=out,
        )


def check_writable(out: str | Path, what: str = "output", *, into: bool = False) -> None:
    """Fail before any work when ``out`` could not be written: not the current folder
    (:func:`refuse_working_folder`; ``into``: ``out`` is a folder files are written into,
    not one replaced whole, so the current folder is fine), and the nearest existing folder
    on its path must be a directory in which a folder can be made (a probe folder is made
    and removed: permission bits do not tell, e.g. for root under /proc)."""
    if not into:
        refuse_working_folder(out, what)
    parent = Path(out).absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot create the {what}: {parent} is a file", file=out)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".dpgenome-probe-", dir=parent))
    except OSError as err:
        raise InputError(
            f"cannot create the {what}: {parent} is not writable ({err.strerror or err})",
            file=out,
        ) from None


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """An operating-system error while writing ``path`` as a user error naming it (exit 2,
    no traceback)."""
    try:
        yield
    except OSError as err:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:  # mkdir's own word for it is "File exists"
            raise InputError(
                f"cannot write here: {blocker} is a file, not a folder", file=path
            ) from None
        raise InputError(f"cannot write here: {err.strerror or err}", file=path) from None


@contextmanager
def atomic_directory(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; on success it is renamed to ``path``
    (replacing an existing directory only when ``overwrite``), on failure it is removed, so a
    cohort directory is never left half written."""
    refuse_working_folder(path)
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a directory", file=path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise InputError("directory exists and is not empty (use --overwrite)", file=path)
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        if path.exists():
            old = path.with_name(f".{path.name}.{uuid.uuid4().hex}.old")
            os.rename(path, old)
            try:
                os.rename(tmp, path)
            except OSError as err:
                shutil.rmtree(tmp, ignore_errors=True)
                try:
                    os.rename(old, path)  # the previous output back in place
                except OSError:  # something else took the path meanwhile
                    raise InputError(
                        f"cannot write here ({err.strerror or err}), and the previous output "
                        f"could not be put back: it is at {old}",
                        file=path,
                    ) from None
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"cannot write here: {err.strerror or err}", file=path) from None


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory + rename, so a
    reader never sees a half-written file (permissions as an ordinary file would get)."""
    path = Path(path)
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write here: {err.strerror or err}", file=path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, payload: object) -> None:
    """JSON (indented, no NaN) written atomically with :func:`write_text_atomic`."""
    write_text_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n")
