"""Verification of a bundle's dossier against its results.

The dossier is what a governance officer signs, so :func:`check_dossier` reads the HTML a
browser would show and checks that its verdict, banner, privacy guarantee and release id are
the ones ``results.json`` and the recorded verdict give.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpgenome.bundle import DOSSIER, MANIFEST, RESULTS
from dpgenome.dossier import epsilon_text
from dpgenome.errors import InputError
from dpgenome.findings import fmt, fmt_claim
from dpgenome.jsonvalues import is_number
from dpgenome.release_id import SYNTHETIC_FINGERPRINT, results_release_id

if TYPE_CHECKING:
    from dpgenome.verify import VerifyReport


class _DossierReader(HTMLParser):
    """What a dossier shows its signers, read as a browser shows it: the text of its first
    ``<title>``, its verdict banner (the element ``id="verdict"``: its class and heading),
    whether it has the at-a-glance section (``id="glance"``), its figure boxes
    (``<div><b>figure</b><span>label</span></div>``) and its table rows (header and cell
    text, whitespace collapsed). A comment is not text shown: a title written in a comment
    satisfied a search of the raw HTML while the real title and banner showed another
    verdict."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self.banner: tuple[str, str] | None = None  # (class, heading)
        self.glance = False
        self.boxes: list[tuple[str, str]] = []  # (figure, label)
        self.rows: list[tuple[str, str]] = []  # (header, cell)
        self._capture: tuple[str, list[str]] | None = None  # the element read, its text
        self._banner_class: str | None = None
        self._figure: str | None = None
        self._header: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if named.get("id") == "glance":
            self.glance = True
        if self._capture is not None:
            return  # markup inside a title, heading, figure or cell: part of its text
        if tag != "span":
            self._figure = None  # a box's label directly follows its figure
        if tag == "title" and self.title is None:
            self._capture = (tag, [])
        elif tag == "div" and named.get("id") == "verdict" and self._banner_class is None:
            self._banner_class = named.get("class") or ""
        elif tag == "h2" and self._banner_class is not None and self.banner is None:
            self._capture = (tag, [])
        elif tag in ("b", "span", "th", "td"):
            self._capture = (tag, [])
        elif tag == "tr":
            self._header = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._capture[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._capture is None or tag != self._capture[0]:
            return
        text = " ".join("".join(self._capture[1]).split())
        self._capture = None
        if tag == "title":
            self.title = text
        elif tag == "h2":
            self.banner = (self._banner_class or "", text)
        elif tag == "b":
            self._figure = text
        elif tag == "span":
            if self._figure is not None:
                self.boxes.append((self._figure, text))
            self._figure = None
        elif tag == "th":
            self._header = text
        elif tag == "td":
            if self._header is not None:
                self.rows.append((self._header, text))
            self._header = None


def check_dossier(
    report: VerifyReport, root: Path, manifest: Mapping[str, Any], results: Mapping[str, Any]
) -> None:
    """The dossier, read as its signers see it (:class:`_DossierReader`), must show the
    manifest's verdict and release id and the ledger's privacy claim: hashes rewritten over
    an edited or swapped dossier pass the manifest."""
    if DOSSIER in report.changed:
        return  # missing, a link or not the listed size: a problem already, and not read
    try:
        text = (root / DOSSIER).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return  # reported as missing or unreadable with the files
    dossier = _DossierReader()
    try:
        dossier.feed(text)
        dossier.close()
    except (AssertionError, ValueError) as err:  # html.parser on a malformed declaration
        report.problems.append(f"{DOSSIER}: cannot be read as HTML ({err})")
        return
    _check_dossier_verdict(report, dossier, manifest, _no_formal_privacy(results))
    _check_dossier_guarantee(report, dossier, results)
    _check_dossier_release_id(report, dossier, manifest, results)


_DOSSIER_TITLE = re.compile(
    r"Release dossier — (\w+)( \(overridden\))?( — NO FORMAL PRIVACY)? — policy "
)
_SIGNOFF_VERDICT = re.compile(r"(\w+)( \(overridden\))?( — NO FORMAL PRIVACY)?")
#: the verdict banner's classes (its colour) for each verdict: an APPROVE without formal
#: privacy and an overridden BLOCK are amber
_BANNER_STYLES = {
    "APPROVE": {"approve", "override"},
    "BLOCK": {"block"},
    "BLOCK (overridden)": {"override"},
}


def _no_formal_privacy(results: Mapping[str, Any]) -> bool:
    """Whether the results' ledger states no formal privacy (no epsilon)."""
    ledger = results.get("ledger")
    return isinstance(ledger, Mapping) and (
        ledger.get("no_formal_privacy") is True or ledger.get("epsilon") is None
    )


def _check_dossier_verdict(
    report: VerifyReport,
    dossier: _DossierReader,
    manifest: Mapping[str, Any],
    no_privacy: bool = False,
) -> None:
    """The verdict the dossier shows its signers must be the manifest's: in its title, in its
    verdict banner (heading and colour) and in its sign-off's verdict row (when it has one:
    older dossiers have none); and the title and that row say NO FORMAL PRIVACY exactly when
    the ledger has none (``no_privacy``)."""
    marker = "NO FORMAL PRIVACY"
    recorded = str(manifest.get("verdict")) + (
        " (overridden)" if manifest.get("released_under_override") else ""
    )
    found = _DOSSIER_TITLE.match(dossier.title or "")
    if found is None:
        report.problems.append(f"{DOSSIER}: shows no release verdict in its title")
    else:
        shown = found.group(1) + (" (overridden)" if found.group(2) else "")
        if shown != recorded:
            report.problems.append(
                f"{DOSSIER}: shows verdict {shown}, but {MANIFEST} records {recorded}"
            )
        if bool(found.group(3)) != no_privacy:
            report.problems.append(_marker_problem("its title", marker, no_privacy))
    if dossier.banner is None:
        report.problems.append(f'{DOSSIER}: shows no verdict banner (id="verdict")')
    else:
        style, heading = dossier.banner
        words = heading.split()
        shown = (words[0] if words else "") + (" (overridden)" if "OVERRIDDEN" in words else "")
        styles = set(style.split()) & set().union(*_BANNER_STYLES.values())
        if shown != recorded:
            report.problems.append(
                f"{DOSSIER}: its verdict banner shows {heading or 'no verdict'}, but {MANIFEST} "
                f"records {recorded}"
            )
        elif not styles or not styles <= _BANNER_STYLES.get(recorded, set()):
            report.problems.append(
                f'{DOSSIER}: its verdict banner is styled "{style}", not as a {recorded} '
                f"banner ({MANIFEST} records {recorded})"
            )
    for header, cell in dossier.rows:
        if header != "Verdict":
            continue
        row = _SIGNOFF_VERDICT.fullmatch(cell)
        if row is None or row.group(1) + (" (overridden)" if row.group(2) else "") != recorded:
            report.problems.append(
                f"{DOSSIER}: its sign-off shows verdict {cell or 'none'}, but {MANIFEST} "
                f"records {recorded}"
            )
        elif bool(row.group(3)) != no_privacy:
            report.problems.append(_marker_problem("its sign-off verdict", marker, no_privacy))


def _marker_problem(where: str, marker: str, no_privacy: bool) -> str:
    """A dossier place (``where``) showing the no-formal-privacy ``marker`` against the ledger
    (``no_privacy``: the ledger states no formal privacy, so the marker must be there)."""
    if no_privacy:
        return (
            f"{DOSSIER}: {where} lacks {marker}, though {RESULTS}'s ledger states no formal privacy"
        )
    return f"{DOSSIER}: {where} says {marker}, but {RESULTS}'s ledger states an epsilon"


#: the label of an at-a-glance box showing the epsilon or the delta
_GLANCE_LABEL = re.compile(r"(epsilon) \(privacy loss\)|(delta)\b")
#: the target the ledger table shows after the total epsilon
_TARGET = re.compile(r" \(target [^()]*\)$")
_SIGNOFF_PRIVACY = re.compile(r"epsilon (.+), delta (\S+) per individual")
_SIGNOFF_NO_PRIVACY = "none (epsilon = ∞)"


def _check_dossier_guarantee(
    report: VerifyReport, dossier: _DossierReader, results: Mapping[str, Any]
) -> None:
    """The epsilon and delta the dossier shows its signers must state ``results.json``'s
    ledger (:func:`same_claim`: never below it): every at-a-glance box, the privacy ledger
    table's total epsilon and the sign-off's privacy row (when the dossier has them). A
    dossier must have the glance section and show both there: without it (its ``id``
    renamed) nothing would be checked."""
    ledger = results.get("ledger")
    if not isinstance(ledger, Mapping):
        return  # reported by the re-accounting
    if not dossier.glance:
        report.problems.append(
            f'{DOSSIER}: has no at-a-glance section (id="glance"), where a dossier shows its '
            "epsilon and delta"
        )
    shown: dict[str, list[str]] = {"epsilon": [], "delta": []}
    for figure, label in dossier.boxes:
        kind = _GLANCE_LABEL.match(label)
        if kind is not None:
            shown[kind.group(1) or kind.group(2)].append(figure)
    eps_text, no_formal = epsilon_text(results)
    delta_text = fmt_claim(ledger.get("delta"))
    expected = {"epsilon": (eps_text, ledger.get("epsilon"))}
    if not no_formal:  # older dossiers showed a no-DP run's delta; it claims nothing
        expected["delta"] = (delta_text, ledger.get("delta"))
    for what, (text_form, value) in expected.items():
        if not shown[what]:
            report.problems.append(f"{DOSSIER}: shows no {what} at a glance")
        for seen in shown[what]:
            if not same_claim(seen, text_form, value):
                report.problems.append(
                    f"{DOSSIER}: shows {what} {seen}, but {RESULTS}'s ledger gives {text_form}"
                )
    for header, cell in dossier.rows:
        if header == "Total epsilon":
            seen = _TARGET.sub("", cell)
            if not same_claim(seen, eps_text, ledger.get("epsilon")):
                report.problems.append(
                    f"{DOSSIER}: its privacy ledger table shows total epsilon {seen}, but "
                    f"{RESULTS}'s ledger gives {eps_text}"
                )
        elif header == "Privacy":
            row = _SIGNOFF_PRIVACY.fullmatch(cell)
            if no_formal:
                same = cell == _SIGNOFF_NO_PRIVACY
            else:
                same = (
                    row is not None
                    and same_claim(row.group(1), eps_text, ledger.get("epsilon"))
                    and same_claim(row.group(2), delta_text, ledger.get("delta"))
                )
            if not same:
                gives = (
                    _SIGNOFF_NO_PRIVACY
                    if no_formal
                    else f"epsilon {eps_text}, delta {delta_text} per individual"
                )
                report.problems.append(
                    f'{DOSSIER}: its sign-off shows privacy "{cell}", but {RESULTS}\'s ledger '
                    f'gives "{gives}"'
                )


def same_claim(seen: str, text_form: str, value: Any) -> bool:
    """A figure as shown states the ledger's claim ``value``: the text a dossier shows for
    it (``text_form``, :func:`fmt_claim`: rounded *up* to 4 significant digits), the text
    older dossiers showed (:func:`fmt`, rounded to the nearest: epsilon until claims were
    rounded up, delta, to 3 significant digits below 0.001, a day longer), or a number
    rounded up to fewer digits: never below the ledger's, and less than one unit of its
    last digit shown above it. Any other figure below the ledger's understates the claim
    (an epsilon of 7.997 shown as 7, a delta of 0.0029 as 0): no dossier showed it."""
    if seen == text_form or (is_number(value) and seen == fmt(value)):
        return True
    try:
        shown = decimal.Decimal(seen.replace(",", ""))
    except decimal.InvalidOperation:
        return False
    if not shown.is_finite() or not is_number(value):
        return False
    exact = decimal.Decimal(float(value))
    unit = decimal.Decimal(1).scaleb(int(shown.as_tuple().exponent))
    # the tolerance below is fmt_claim's own: a value a hair above a digit is not moved up
    return exact - unit * decimal.Decimal("1e-9") <= shown < exact + unit


def _check_dossier_release_id(
    report: VerifyReport,
    dossier: _DossierReader,
    manifest: Mapping[str, Any],
    results: Mapping[str, Any],
) -> None:
    """The release id the dossier's sign-off names (each signer approves "the release
    identified here, and no other") must be the manifest's: another release's dossier
    swapped into a bundle shows its own. A dossier shows an id only for results that fix
    one (:func:`results_release_id`), and none ("—") for others (another tool's, or older):
    an id shown beside results that fix none is their synthetic cohort removed. A dossier
    from before the sign-off named the release has no sign-off rows at all; one with its
    verdict or privacy row but no release id has lost it."""
    recorded = str(manifest.get("release_id"))
    shown = [cell for header, cell in dossier.rows if header == "Release id"]
    if not shown:
        if any(header in ("Verdict", "Privacy") for header, _ in dossier.rows):
            report.problems.append(
                f"{DOSSIER}: its sign-off names no release id ({MANIFEST} records {recorded[:12]})"
            )
        return
    try:
        fixed = results_release_id(results)
    except InputError:
        return  # reported with the manifest's release id
    for cell in shown:
        if cell == "—" and fixed is None:
            continue
        if fixed is None:
            report.problems.append(
                f"{DOSSIER}: shows release id {cell[:12]}, but {RESULTS} fixes none (a dossier "
                f"shows one for results naming their synthetic cohort: "
                f"{'.'.join(SYNTHETIC_FINGERPRINT)} removed?)"
            )
        if cell != recorded:
            report.problems.append(
                f"{DOSSIER}: shows release id {cell[:12] or 'none'}, but {MANIFEST} records "
                f"{recorded[:12]} (the dossier of another release?)"
            )
