"""Bundle verification: hashes, listing, signature, the re-accounted ledger, the re-evaluated
verdict and the dossier as shown (:mod:`dpgenome.verify`, :mod:`dpgenome.verify_dossier`)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from dpgenome.accountant import Ledger
from dpgenome.bundle import DOSSIER, MANIFEST, SIGNATURE, sha256_file
from dpgenome.findings import fmt_claim
from dpgenome.lifetime import (
    LifetimeLedger,
)
from dpgenome.paths import shipped_policy
from dpgenome.policy import Override
from dpgenome.release_id import synthetic_release_id
from dpgenome.verify import verify_bundle
from test_export import FINGERPRINT, cohort_files, data_files, export, keypair, results, run
from test_lifetime import gaussian_release

# ---------------------------------------------------------------------------- verify


@pytest.mark.parametrize(
    "name",
    ["synthetic/pheno.csv", "synthetic/geno.txt", "dossier.html", "results.json", "policy.yaml"],
)
def test_verify_bundle__any_changed_byte_is_named(tmp_path: Path, name: str) -> None:
    bundle = export(tmp_path).path
    path = bundle / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # flip one bit of one byte
    path.write_bytes(bytes(data))
    report = verify_bundle(bundle)
    assert not report.ok
    assert any(p.startswith(f"{name}: changed") for p in report.problems), report.problems


def test_verify_bundle__missing_and_added_files(tmp_path: Path) -> None:
    bundle = export(tmp_path).path
    (bundle / "synthetic" / "geno.txt").unlink()
    (bundle / "synthetic" / "extra.csv").write_text("x")
    problems = verify_bundle(bundle).problems
    assert "synthetic/geno.txt: missing" in problems
    assert "synthetic/extra.csv: not listed in the manifest (added after export)" in problems


def test_verify_bundle__a_directory_or_a_link_in_place_of_a_file(tmp_path: Path) -> None:
    """A listed file replaced by a directory is missing (not a traceback); one replaced by a
    symbolic link to identical bytes is named too (the target can change later)."""
    bundle = export(tmp_path).path
    (bundle / "results.json").unlink()
    (bundle / "results.json").mkdir()
    outside = tmp_path / "dossier-copy.html"
    outside.write_bytes((bundle / "dossier.html").read_bytes())
    (bundle / "dossier.html").unlink()
    (bundle / "dossier.html").symlink_to(outside)
    problems = verify_bundle(bundle).problems
    assert "results.json: missing" in problems
    assert "dossier.html: a symbolic link (a bundle holds regular files only)" in problems


def test_verify_bundle__a_linked_manifest_an_added_directory_and_a_pipe(tmp_path: Path) -> None:
    """The manifest itself as a symbolic link (its bytes can change later), an empty
    directory, a named pipe and a link to a directory added after export: each is named."""
    import os

    bundle = export(tmp_path).path
    outside = tmp_path / "manifest-copy.json"
    outside.write_bytes((bundle / MANIFEST).read_bytes())
    (bundle / MANIFEST).unlink()
    (bundle / MANIFEST).symlink_to(outside)
    (bundle / "notes").mkdir()
    (bundle / "synthetic" / "empty").mkdir()
    os.mkfifo(bundle / "pipe")
    (bundle / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    problems = verify_bundle(bundle).problems
    assert problems == [
        f"{MANIFEST}: a symbolic link (a bundle holds regular files only)",
        "elsewhere: a symbolic link the manifest does not list (added after export)",
        "notes/: a directory the manifest does not list (added after export)",
        "pipe: not listed in the manifest (added after export)",
        "synthetic/empty/: a directory the manifest does not list (added after export)",
    ]


def test_verify_bundle__changed_manifest_is_reported(tmp_path: Path) -> None:
    bundle = export(tmp_path).path
    text = (bundle / MANIFEST).read_text()
    (bundle / MANIFEST).write_text(text[:-3])
    problems = verify_bundle(bundle).problems
    assert len(problems) == 1 and problems[0].startswith("manifest.json: changed or corrupt")


def rewrite_results(bundle: Path, change: Any) -> None:
    """A consistent rewrite of an unsigned bundle's results.json: ``change`` applied to the
    document, its ledger copied into the manifest and its hash fixed there."""
    path = bundle / "results.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["ledger"] = doc["ledger"]
    manifest["files"]["results.json"] |= {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    (bundle / MANIFEST).write_text(json.dumps(manifest))


def test_verify_bundle__reaccounts_the_privacy_ledger(tmp_path: Path) -> None:
    """verify re-accounts the release's mechanisms with both accountants: the fixture's
    (calibrated to epsilon 8 at delta 1e-5: Opacus RDP 7.967, PLD 7.372) verify; a ledger
    that states less than its mechanisms give (a bug, or a hand-made results.json under a
    valid signature; export refuses to write one, so here a rewritten bundle) is a problem,
    as are mechanisms that cannot be accounted."""
    report = verify_bundle(export(tmp_path).path)
    assert report.ok, report.problems
    again = report.reaccounted
    assert again is not None and again["stated"] == 8.0 and again["delta"] == 1e-5
    assert again["opacus_rdp"] == pytest.approx(7.967, abs=1e-3)
    assert again["pld"] == pytest.approx(7.372, abs=1e-3)
    assert again["epsilon"] == max(again["opacus_rdp"], again["pld"])
    bundle = export(tmp_path, dest=tmp_path / "u", lifetime=LifetimeLedger(tmp_path / "u.db")).path
    rewrite_results(bundle, lambda doc: doc["ledger"].update(epsilon=5.0))
    assert verify_bundle(bundle).problems == [
        "results.json: its ledger states epsilon 5, but its mechanisms re-account to 7.967 at "
        "delta 1e-05 (Opacus RDP 7.967, PLD 7.372)",
        "dossier.html: shows epsilon 8, but results.json's ledger gives 5",
        "dossier.html: its privacy ledger table shows total epsilon 8, but results.json's "
        "ledger gives 5",
        'dossier.html: its sign-off shows privacy "epsilon 8, delta 1e-05 per individual", '
        'but results.json\'s ledger gives "epsilon 5, delta 1e-05 per individual"',
    ]
    # export refuses such a ledger too: a rewritten bundle again
    bundle = export(tmp_path, dest=tmp_path / "k", lifetime=LifetimeLedger(tmp_path / "k.db")).path
    rewrite_results(bundle, lambda doc: doc["ledger"]["mechanisms"][0].update(kind="magic"))
    (problem,) = verify_bundle(bundle).problems
    assert problem.startswith("results.json: its privacy ledger cannot be re-accounted")
    assert "unknown kind 'magic'" in problem
    inf = export(tmp_path, "inf", policy="internal", dest=tmp_path / "i", files=data_files("i"))
    assert verify_bundle(inf.path).ok and verify_bundle(inf.path).reaccounted is None


def test_verify_bundle__reaccounts_the_replace_one_guarantee(tmp_path: Path) -> None:
    """A ledger that accounts replace-one directly (stop 43) has that figure re-accounted too:
    as written it verifies (and the CLI prints both figures); stated below what its
    mechanisms give, or not a number, it is a problem. A ledger from before (group privacy
    only, derived from the epsilon checked already) is left as it is."""
    doc = results("approve")
    doc["ledger"] = Ledger.from_dict(doc["ledger"]).to_dict()
    direct = doc["ledger"]["replace_one"]["epsilon"]
    bundle = export(tmp_path, document=doc).path
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    assert report.reaccounted is not None
    assert report.reaccounted["replace_one"] == pytest.approx(direct, rel=1e-12)
    assert report.reaccounted["replace_one_stated"] == direct
    res = run("verify", bundle)
    assert res.exit_code == 0 and "replace one individual: epsilon" in res.output, res.output
    rewrite_results(bundle, lambda d: d["ledger"]["replace_one"].update(epsilon=direct / 2))
    (problem,) = verify_bundle(bundle).problems
    assert problem.startswith("results.json: its ledger states a replace-one epsilon of")
    assert f"re-account to {fmt_claim(direct)} at delta 1e-05" in problem
    rewrite_results(bundle, lambda d: d["ledger"]["replace_one"].update(epsilon="small"))
    (problem,) = verify_bundle(bundle).problems
    assert problem == "results.json: its replace-one epsilon is not a number ('small')"
    old = export(tmp_path, dest=tmp_path / "old", lifetime=LifetimeLedger(tmp_path / "o.db"))
    report = verify_bundle(old.path)
    assert report.ok and report.reaccounted is not None and "replace_one" not in report.reaccounted


def test_verify_bundle__consistent_rewrite_is_caught_by_reevaluation(tmp_path: Path) -> None:
    """Edit a metric in results.json and fix up its hash in the (unsigned) manifest: the
    re-evaluation under the recorded policy no longer gives the recorded verdict."""
    bundle = export(tmp_path).path
    doc = json.loads((bundle / "results.json").read_text())
    doc["audit"]["nearest_neighbour"]["exact_duplicate_genotypes"] = 3
    (bundle / "results.json").write_text(json.dumps(doc))
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"]["results.json"]["sha256"] = sha256_file(bundle / "results.json")
    manifest["files"]["results.json"]["bytes"] = (bundle / "results.json").stat().st_size
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    report = verify_bundle(bundle)
    assert report.verdict_recorded == "APPROVE" and report.verdict_reevaluated == "BLOCK"
    assert any("re-evaluating results.json" in p for p in report.problems)


def test_verify_bundle__the_dossier_shows_the_manifest_verdict(tmp_path: Path) -> None:
    """A consistent rewrite of an unsigned bundle's dossier (its hash fixed in the manifest)
    that shows signers another verdict than the manifest's is a problem; the CLI says what
    an unsigned bundle's OK is worth."""
    bundle = export(tmp_path).path
    assert run("verify", bundle).output.count("note: the bundle is not signed") == 1
    html = (bundle / "dossier.html").read_text()
    assert "<title>Release dossier — APPROVE — policy consortium</title>" in html
    (bundle / "dossier.html").write_text(html.replace("— APPROVE —", "— BLOCK (overridden) —"))
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"]["dossier.html"]["sha256"] = sha256_file(bundle / "dossier.html")
    manifest["files"]["dossier.html"]["bytes"] = (bundle / "dossier.html").stat().st_size
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    assert verify_bundle(bundle).problems == [
        "dossier.html: shows verdict BLOCK (overridden), but manifest.json records APPROVE"
    ]


def _set(doc: Any, keys: tuple[str, ...], value: Any) -> Any:
    """``doc`` with the value at ``keys`` replaced (no keys: ``value`` itself)."""
    if not keys:
        return value
    node = doc
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("name", "keys", "value", "problem"),
    [
        ("results.json", (), [], "results.json: changed or corrupt (the results document is a"),
        ("results.json", (), None, "results.json: changed or corrupt (the results document is n"),
        ("results.json", (), "x", "results.json: changed or corrupt (the results document is a"),
        ("results.json", ("split", "n_members"), math.inf, "results.json: not valid JSON"),
        (
            "results.json",
            ("synthesis", "association", "regions"),
            5,  # the rule reading it is NOT EVALUATED now, so the recorded verdict differs
            "manifest.json: recorded findings differ from the re-evaluation for: "
            "fidelity.matching_residual",
        ),
        ("manifest.json", ("evaluation",), "x", "manifest.json: changed or corrupt (its evalu"),
        ("manifest.json", ("evaluation",), None, "manifest.json: changed or corrupt (its evalu"),
        ("manifest.json", ("evaluation", "context"), "x", "manifest.json: changed or corrupt"),
        (
            "manifest.json",
            ("evaluation", "context"),
            {"lifetime_epsilon_spent": "abc"},
            "manifest.json: changed or corrupt (its evaluation context: lifetime_epsilon_spent",
        ),
        (
            "manifest.json",
            ("evaluation", "context", "lifetime_releases"),
            1.5,
            "manifest.json: changed or corrupt (its evaluation context: lifetime_releases",
        ),
        ("manifest.json", ("evaluation", "findings"), 5, "manifest.json: changed or corrupt"),
        ("manifest.json", ("evaluation", "findings"), [5], "manifest.json: changed or corrupt"),
        ("manifest.json", ("policy",), "x", "policy.yaml: its hash differs"),
        (
            "results.json",
            ("ledger", "mechanisms"),
            {"geno": {}},
            "results.json: its privacy ledger cannot be re-accounted (malformed ledger: its "
            "mechanisms are an object, not a list)",
        ),
        (
            "results.json",
            ("ledger", "mechanisms", 1),
            5,
            "results.json: its privacy ledger cannot be re-accounted (ledger mechanism 1: 5, "
            "not a JSON object)",
        ),
        (
            "results.json",
            ("ledger", "mechanisms", 2, "count"),
            "3",
            "results.json: its privacy ledger cannot be re-accounted (ledger mechanism 2: count "
            "must be a whole number, got the string '3')",
        ),
        (
            "results.json",
            ("ledger", "mechanisms", 0, "steps"),
            300.9,
            "results.json: its privacy ledger cannot be re-accounted (ledger mechanism 0: steps "
            "must be a whole number, got 300.9)",
        ),
        (
            "results.json",
            ("ledger", "mechanisms"),
            [],
            "results.json: its privacy ledger cannot be re-accounted (malformed ledger: it "
            "states epsilon 8.0 but lists no mechanisms",
        ),
    ],
    ids=[
        "results-list",
        "results-null",
        "results-string",
        "results-infinity",
        "results-regions-number",
        "evaluation-string",
        "evaluation-null",
        "context-string",
        "context-epsilon-string",
        "context-releases-float",
        "findings-number",
        "findings-list-of-numbers",
        "policy-block-string",
        "ledger-mechanisms-object",
        "ledger-mechanism-number",
        "ledger-count-string",
        "ledger-steps-fraction",
        "ledger-no-mechanisms",
    ],
)
def test_verify_bundle__json_of_the_wrong_shape_is_a_problem_not_a_traceback(
    tmp_path: Path, name: str, keys: tuple[str, ...], value: Any, problem: str
) -> None:
    """A results document, or a recorded evaluation, context or findings, of the wrong type
    (with the manifest re-hashed, so only the re-evaluation reads it) is a problem naming
    the file, and `verify` exits 2 as for a changed byte (it ended in a traceback, exit 1)."""
    bundle = export(tmp_path).path
    path = bundle / name
    path.write_text(json.dumps(_set(json.loads(path.read_text()), keys, value)))
    if name == "results.json":
        manifest = json.loads((bundle / MANIFEST).read_text())
        manifest["files"][name] = {
            **manifest["files"][name],
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
        }
        (bundle / MANIFEST).write_text(json.dumps(manifest))
    report = verify_bundle(bundle)
    assert not report.ok
    assert [p for p in report.problems if p.startswith(problem)], report.problems
    assert not any(p.startswith(f"{name}: changed (") for p in report.problems)
    res = run("verify", bundle)
    assert res.exit_code == 2 and problem in res.output, res.output


def test_verify_bundle__signature(tmp_path: Path) -> None:
    private, public = keypair(tmp_path)
    _, other_public = keypair(tmp_path, "other")
    bundle = export(tmp_path, signing_key=private).path
    assert (bundle / SIGNATURE).exists()
    trusted = verify_bundle(bundle, public_key=public)
    assert trusted.ok and trusted.signature == "valid (given public key)"
    assert verify_bundle(bundle).signature.startswith("valid against the key embedded")
    wrong = verify_bundle(bundle, public_key=other_public)
    assert not wrong.ok and wrong.signature == "INVALID"
    # the one accurate problem: not also "does not match", which it does, for its own key
    assert [p for p in wrong.problems if "manifest.sig" in p or "key" in p] == [
        "manifest.json: signed with a different key than the one given (--public-key)"
    ]
    manifest = (bundle / MANIFEST).read_bytes()
    (bundle / MANIFEST).write_bytes(manifest.replace(b'"consortium"', b'"consortiun"', 1))
    tampered = verify_bundle(bundle, public_key=public)
    assert tampered.signature == "INVALID"
    assert "manifest.sig: the signature does not match manifest.json" in tampered.problems


def test_verify_bundle__unsigned_bundle_with_a_key_fails(tmp_path: Path) -> None:
    _, public = keypair(tmp_path)
    bundle = export(tmp_path).path
    report = verify_bundle(bundle, public_key=public)
    assert "manifest.json: the release is not signed, but a key was given" in report.problems


def _rewrite(bundle: Path, name: str, text: str) -> None:
    """Rewrite ``name`` and its hash in an unsigned bundle's manifest, as anyone who can
    write to it can."""
    (bundle / name).write_text(text)
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"][name] |= {"sha256": sha256_file(bundle / name), "bytes": len(text.encode())}
    (bundle / MANIFEST).write_text(json.dumps(manifest))


def test_verify_bundle__auditor_review_stop_46(tmp_path: Path) -> None:
    """An independent auditor's review (stop 46): a replace-one claim without its method is
    still re-accounted; a manifest whose policy block names another policy than policy.yaml,
    a key given twice, a nesting too deep to parse, or mechanisms too large to account are
    problems, never a pass or a traceback."""
    document = results("approve")
    document["ledger"] = gaussian_release()
    bundle = export(tmp_path, document=document).path
    assert verify_bundle(bundle).ok

    def problems_after(edit: Any) -> list[str]:
        copy_dir = tmp_path / f"copy-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(bundle, copy_dir)
        edit(copy_dir)
        report = verify_bundle(copy_dir)
        assert not report.ok
        return report.problems

    def ledger_edit(**change: Any) -> Any:
        def edit(root: Path) -> None:
            doc = json.loads((root / "results.json").read_text())
            doc["ledger"] = {**doc["ledger"], **change}
            _rewrite(root, "results.json", json.dumps(doc))

        return edit

    # a replace-one claim without its method: group privacy, twice the epsilon (17.3) at least
    # (the manifest's own copy of the ledger then differs too: one problem more)
    problems = problems_after(ledger_edit(replace_one={"epsilon": 1.0, "delta": 1e-5}))
    assert any("epsilon of 1 by group privacy, but twice its re-accounted" in p for p in problems)
    mechanisms = document["ledger"]["mechanisms"]
    for huge in ({"count": 10**12}, {"noise_multiplier": 1e-12}):
        problems = problems_after(ledger_edit(mechanisms=[{**mechanisms[0], **huge}]))
        assert any("cannot be re-accounted" in p for p in problems), problems

    def policy_name(root: Path) -> None:
        manifest = json.loads((root / MANIFEST).read_text())
        manifest["policy"]["name"] = "strict"
        (root / MANIFEST).write_text(json.dumps(manifest))

    assert any(
        "policy block differs from policy.yaml in: name" in p for p in problems_after(policy_name)
    )

    def twice(root: Path) -> None:
        text = (root / MANIFEST).read_text()
        (root / MANIFEST).write_text(text.replace('"format":', '"format": "x", "format":', 1))

    assert "given twice" in problems_after(twice)[0]
    deep = "[" * 100_000 + "]" * 100_000
    assert "nested too deeply" in problems_after(lambda r: _rewrite(r, "results.json", deep))[0]
    assert "nested too deeply" in problems_after(lambda r: (r / MANIFEST).write_text(deep))[0]


def test_verify_bundle__a_ledger_of_another_run_and_an_edited_glance(tmp_path: Path) -> None:
    """An auditor's review (stop 48): an unsigned bundle rewritten consistently (hashes fixed)
    with the ledger of another run, which re-accounts cleanly, or with a dossier showing
    signers another epsilon, verified. The ledger must be the one the recorded configuration
    asked for, and the dossier's glance must show the ledger's epsilon and delta."""
    bundle = export(tmp_path).path
    html_text = (bundle / "dossier.html").read_text()
    assert "<div><b>8</b><span>epsilon (privacy loss)</span></div>" in html_text
    assert "<div><b>1e-05</b><span>delta</span></div>" in html_text

    def rehash(name: str) -> None:
        manifest = json.loads((bundle / MANIFEST).read_text())
        manifest["files"][name]["sha256"] = sha256_file(bundle / name)
        manifest["files"][name]["bytes"] = (bundle / name).stat().st_size
        (bundle / MANIFEST).write_text(json.dumps(manifest))

    edited = html_text.replace("<b>8</b><span>epsilon", "<b>0.9</b><span>epsilon")
    (bundle / "dossier.html").write_text(edited.replace("<b>1e-05</b>", "<b>1e-07</b>"))
    rehash("dossier.html")
    assert verify_bundle(bundle).problems == [
        "dossier.html: shows epsilon 0.9, but results.json's ledger gives 8",
        "dossier.html: shows delta 1e-07, but results.json's ledger gives 1e-05",
    ]
    # the label spaced otherwise, a second box, or no box at all (a diff review, stop 48)
    spaced = html_text.replace(
        "<b>8</b><span>epsilon (privacy loss)", "<b>0.9</b><span>epsilon  (privacy loss)"
    )
    (bundle / "dossier.html").write_text(spaced)
    rehash("dossier.html")
    assert verify_bundle(bundle).problems == [
        "dossier.html: shows epsilon 0.9, but results.json's ledger gives 8"
    ]
    box = "<div><b>8</b><span>epsilon (privacy loss)</span></div>"
    (bundle / "dossier.html").write_text(html_text.replace(box, box + box.replace("8", "0.8", 1)))
    rehash("dossier.html")
    assert verify_bundle(bundle).problems == [
        "dossier.html: shows epsilon 0.8, but results.json's ledger gives 8"
    ]
    (bundle / "dossier.html").write_text(html_text.replace(box, ""))
    rehash("dossier.html")
    assert verify_bundle(bundle).problems == ["dossier.html: shows no epsilon at a glance"]
    (bundle / "dossier.html").write_text(html_text)
    rehash("dossier.html")
    assert verify_bundle(bundle).ok

    def swap(doc: dict[str, Any]) -> None:
        doc["provenance"]["config"]["delta"] = 1e-5  # a release records its resolved delta
        doc["ledger"].update(target_epsilon=1.0, delta=2e-5)

    rewrite_results(bundle, swap)
    problems = verify_bundle(bundle).problems
    assert (
        "results.json: its privacy ledger is calibrated to epsilon 1, but its recorded "
        "configuration asks 8 (a ledger of another run?)"
    ) in problems
    assert (
        "results.json: its privacy ledger is at delta 2e-05, but its recorded configuration "
        "asks 1e-05 (a ledger of another run?)"
    ) in problems


def test_same_claim__within_one_unit_of_the_last_digit_shown() -> None:
    """The glance check compares a figure as shown with the ledger's: a dossier rounds up to
    4 significant digits, older ones rounded delta to fewer; an edit is still caught."""
    from dpgenome.verify_dossier import same_claim

    assert same_claim("7.993", "7.993", 7.99271)
    assert same_claim("8", "7.993", 7.99271)  # fewer digits, still the same figure
    assert same_claim("0.00067", "0.0006668", 0.00066676)  # an older dossier's delta
    assert same_claim("1e-05", "1e-05", 1e-5)
    assert not same_claim("7.98", "7.993", 7.99271)
    assert not same_claim("0.9", "8", 8.0)
    assert not same_claim("1e-07", "1e-05", 1e-5)
    assert not same_claim("n/a", "7.993", 7.99271)


def test_verify_bundle__a_data_file_outside_synthetic_is_a_problem(tmp_path: Path) -> None:
    """An unsigned bundle given an extra data file, listed with its hash: a release that names
    its synthetic cohort holds nothing else as data; for older results (naming none, from an
    export that packaged any layout) an added file changes their release id."""

    def add_listed_note(bundle: Path) -> list[str]:
        extra = bundle / "notes.csv"
        extra.write_text("id\nMEMBER_0001\n")
        manifest = json.loads((bundle / MANIFEST).read_text())
        manifest["files"]["notes.csv"] = {
            "sha256": sha256_file(extra),
            "bytes": extra.stat().st_size,
            "role": "data",
        }
        (bundle / MANIFEST).write_text(json.dumps(manifest))
        return verify_bundle(bundle).problems

    files, fingerprint = cohort_files(tmp_path, 7, "parker")
    document = results("approve")
    document.setdefault("synthesis", {}).update(synthetic_fingerprint=fingerprint)
    named = export(tmp_path, dest=tmp_path / "named", document=document, files=files).path
    assert add_listed_note(named) == [
        "notes.csv: a data file outside synthetic/, not part of the synthetic cohort (publish "
        "would copy it out)"
    ]
    # results naming none: the note changes the data files' hash, their release id
    (problem,) = add_listed_note(export(tmp_path, dest=tmp_path / "older").path)
    assert problem.startswith("results.json: names no synthetic cohort")


def test_verify_bundle__no_formal_privacy_beside_an_epsilon_is_a_problem(tmp_path: Path) -> None:
    """The flag must not switch off the re-accounting of a stated number (a reviewer stated
    epsilon 1 for mechanisms worth 8 that way), nor a null epsilon pass without it."""
    bundle = export(tmp_path).path

    def understate(doc: dict[str, Any]) -> None:
        doc["ledger"] |= {"epsilon": 0.01, "no_formal_privacy": True}

    rewrite_results(bundle, understate)
    problems = verify_bundle(bundle).problems
    assert "results.json: its ledger states no formal privacy beside an epsilon of 0.01" in problems
    again = export(tmp_path, dest=tmp_path / "b2").path
    rewrite_results(again, lambda doc: doc["ledger"].update(epsilon=None))
    assert (
        "results.json: its ledger states no epsilon (null) but not that it has no formal "
        "privacy" in verify_bundle(again).problems
    )


def test_verify_bundle__a_resized_file_is_not_read(tmp_path: Path) -> None:
    """A listed file of another size is changed without being hashed or parsed (a huge file
    swapped in is not read through), and the synthetic-content check skips it."""
    bundle = export(tmp_path).path
    geno = bundle / "synthetic" / "geno.txt"
    with geno.open("ab") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB of zeros
    problems = verify_bundle(bundle).problems
    assert problems == ["synthetic/geno.txt: changed (size differs from the manifest)"]


def test_verify_bundle__names_and_linked_folders_are_shown_plainly(tmp_path: Path) -> None:
    """A name holding a newline cannot print a line of its own (a forged "OK"), and a folder
    replaced by a link is named as one."""
    bundle = export(tmp_path).path
    (bundle / "x\nOK: the bundle is intact.").write_text("x")
    problems = verify_bundle(bundle).problems
    assert problems == [
        "'x\\nOK: the bundle is intact.': not listed in the manifest (added after export)"
    ]
    (bundle / "x\nOK: the bundle is intact.").unlink()
    shutil.move(bundle / "synthetic", tmp_path / "elsewhere")
    (bundle / "synthetic").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    problems = verify_bundle(bundle).problems
    assert sorted(problems) == [
        "synthetic/geno.txt: reached through a symbolic link (a bundle holds regular files only)",
        "synthetic/pheno.csv: reached through a symbolic link (a bundle holds regular files only)",
    ]


def test_verify_bundle__the_dossier_may_not_understate_the_privacy_claim(tmp_path: Path) -> None:
    """A reviewer's finding (F3): a figure shown with fewer digits passed within one unit of
    its last digit (epsilon 7 for a ledger's 7.997, delta 0 for 0.002896). A dossier rounds a
    claim up: a figure below the ledger's is a problem wherever the dossier shows it (at a
    glance, the ledger table's total, the sign-off's privacy row), and a dossier without the
    glance section (its id renamed) is one too."""
    bundle = export(tmp_path).path  # the fixture's ledger: epsilon 8, delta 1e-05
    html_text = (bundle / "dossier.html").read_text()
    assert "<tr><th>Total epsilon</th><td>8 (target 8)</td></tr>" in html_text
    assert "<td>epsilon 8, delta 1e-05 per individual</td>" in html_text
    understated = (
        html_text.replace("<b>8</b><span>epsilon", "<b>7</b><span>epsilon")
        .replace("<b>1e-05</b><span>delta", "<b>9e-06</b><span>delta")
        .replace("<td>8 (target 8)</td>", "<td>7 (target 8)</td>")
        .replace("epsilon 8, delta 1e-05 per individual", "epsilon 7, delta 9e-06 per individual")
    )
    _rewrite(bundle, "dossier.html", understated)
    assert verify_bundle(bundle).problems == [
        "dossier.html: shows epsilon 7, but results.json's ledger gives 8",
        "dossier.html: shows delta 9e-06, but results.json's ledger gives 1e-05",
        "dossier.html: its privacy ledger table shows total epsilon 7, but results.json's "
        "ledger gives 8",
        'dossier.html: its sign-off shows privacy "epsilon 7, delta 9e-06 per individual", '
        'but results.json\'s ledger gives "epsilon 8, delta 1e-05 per individual"',
    ]
    # the glance section renamed: no longer a way around the check
    _rewrite(bundle, "dossier.html", html_text.replace('id="glance"', 'id="glance-"'))
    assert verify_bundle(bundle).problems == [
        'dossier.html: has no at-a-glance section (id="glance"), where a dossier shows its '
        "epsilon and delta"
    ]
    # the same figures rounded up to fewer digits still state the claim
    _rewrite(bundle, "dossier.html", html_text.replace("<b>1e-05</b>", "<b>0.00001</b>"))
    assert verify_bundle(bundle).ok


def test_same_claim__never_below_the_ledger() -> None:
    """A figure shown states the ledger's claim when it is the text a dossier shows for it
    (rounded up; older dossiers: rounded to the nearest by fmt, a delta to 3 digits) or the
    claim rounded up to fewer digits; a figure below the ledger's otherwise understates it."""
    from dpgenome.verify_dossier import same_claim

    assert not same_claim("7", "7.997", 7.997)
    assert not same_claim("0", "0.002896", 0.002896)
    assert not same_claim("7.99", "7.997", 7.997)
    assert same_claim("8", "7.997", 7.997) and same_claim("0.003", "0.002896", 0.002896)
    assert not same_claim("9", "7.997", 7.997)  # above by more than the digit shown
    assert same_claim("8", "8", 8.0) and not same_claim("9", "8", 8.0)
    # an older dossier's delta, fmt's 3 digits rounded to the nearest (here down)
    assert same_claim("0.000666", "0.0006663", 0.00066626)
    assert not same_claim("0.00066", "0.0006663", 0.00066626)


def test_verify_bundle__the_dossier_verdict_is_read_as_shown(tmp_path: Path) -> None:
    """A reviewer's finding (F4): the title check searched the raw HTML, so a title written
    in a comment satisfied it while the real title and banner said APPROVE for an overridden
    BLOCK. The title is read from the page (comments are not shown), and the verdict banner
    and the sign-off's verdict row must show the manifest's verdict too."""
    override = Override("DAC reviewed the spurious locus", "Dr B. Jones", "2026-11-24T07:00:00Z")
    bundle = export(tmp_path, "block", override=override).path
    assert verify_bundle(bundle).ok
    html_text = (bundle / "dossier.html").read_text()
    forged = (
        html_text.replace("BLOCK (overridden)", "APPROVE")
        .replace("BLOCK", "APPROVE")
        .replace(
            '<html lang="en">',
            '<html lang="en"><!-- <title>Release dossier — BLOCK (overridden) — policy  -->',
            1,
        )
    )
    _rewrite(bundle, "dossier.html", forged)
    assert verify_bundle(bundle).problems == [
        "dossier.html: shows verdict APPROVE, but manifest.json records BLOCK (overridden)",
        "dossier.html: its verdict banner shows APPROVE — OVERRIDDEN, but manifest.json "
        "records BLOCK (overridden)",
        "dossier.html: its sign-off shows verdict APPROVE (overridden), but manifest.json "
        "records BLOCK (overridden)",
    ]
    # the banner alone: its heading, or its colour
    banner = '<div class="banner override" id="verdict">\n<h2>BLOCK — OVERRIDDEN</h2>'
    assert banner in html_text
    _rewrite(bundle, "dossier.html", html_text.replace(banner, banner.replace(" — OVERRIDDEN", "")))
    assert verify_bundle(bundle).problems == [
        "dossier.html: its verdict banner shows BLOCK, but manifest.json records BLOCK (overridden)"
    ]
    _rewrite(
        bundle, "dossier.html", html_text.replace(banner, banner.replace("override", "approve"))
    )
    assert verify_bundle(bundle).problems == [
        'dossier.html: its verdict banner is styled "banner approve", not as a BLOCK '
        "(overridden) banner (manifest.json records BLOCK (overridden))"
    ]


def _fingerprinted_bundle(
    tmp_path: Path, name: str, seed: int, ledger: LifetimeLedger
) -> tuple[Path, dict[str, bytes]]:
    """An unsigned bundle of results naming their synthetic cohort (as a release's do), made
    of toy cohort ``seed``'s files; the bundle and those files."""
    files, fingerprint = cohort_files(tmp_path, seed, "parker")
    document = results("approve")
    document.setdefault("synthesis", {})["synthetic_fingerprint"] = fingerprint
    result = export(tmp_path, dest=tmp_path / name, document=document, files=files, lifetime=ledger)
    assert verify_bundle(result.path).ok
    return result.path, files


def test_verify_bundle__another_releases_dossier_is_a_problem(tmp_path: Path) -> None:
    """A reviewer's finding (F5): the dossier of another release (same claim, other release
    id), swapped into a bundle with its hash rewritten, verified. The release id its
    sign-off names must be the manifest's."""
    ledger = LifetimeLedger(tmp_path / "lifetime.sqlite")
    first, _ = _fingerprinted_bundle(tmp_path, "b1", 7, ledger)
    second, _ = _fingerprinted_bundle(tmp_path, "b2", 8, ledger)
    ids = [json.loads((b / MANIFEST).read_text())["release_id"] for b in (first, second)]
    assert ids[0] != ids[1] and f"<code>{ids[0]}</code>" in (first / "dossier.html").read_text()
    _rewrite(first, "dossier.html", (second / "dossier.html").read_text())
    assert verify_bundle(first).problems == [
        f"dossier.html: shows release id {ids[1][:12]}, but manifest.json records "
        f"{ids[0][:12]} (the dossier of another release?)"
    ]


def test_verify_bundle__results_without_their_synthetic_cohort(tmp_path: Path) -> None:
    """A reviewer's finding (F6): removing synthesis.synthetic_fingerprint from results.json
    turned off both the synthetic files' check and the release id's, so another synthesis's
    files verified. Results of a version that names the cohort must name it; older results'
    release id must be one an older version made of the bundle's data files."""
    ledger = LifetimeLedger(tmp_path / "lifetime.sqlite")
    bundle, _ = _fingerprinted_bundle(tmp_path, "b1", 7, ledger)
    other, _ = cohort_files(tmp_path, 8, "parker")

    def drop_fingerprints(doc: dict[str, Any]) -> None:
        doc["synthesis"].pop("synthetic_fingerprint")
        doc["synthesis"].pop("synthetic_hardcall_fingerprint", None)

    def swap_files(root: Path) -> None:
        for name, data in other.items():
            _rewrite(root, name, data.decode())

    removed = tmp_path / "removed"
    shutil.copytree(bundle, removed)
    rewrite_results(removed, drop_fingerprints)
    swap_files(removed)
    release_id = json.loads((removed / MANIFEST).read_text())["release_id"]
    problems = verify_bundle(removed).problems
    assert (
        "results.json: names no synthetic cohort (synthesis.synthetic_fingerprint), and "
        f"manifest.json's release id {release_id[:12]} is neither the hash of the bundle's data "
        "files nor the id of the synthetic cohort they hold (the files of another release?)"
    ) in problems
    assert any(p.startswith("dossier.html: shows release id") for p in problems), problems
    # a version that names the cohort of every release: its absence is the problem
    later = tmp_path / "later"
    shutil.copytree(bundle, later)
    rewrite_results(
        later,
        lambda doc: (drop_fingerprints(doc), doc["provenance"].update(dpgenome_version="0.2.0")),
    )
    assert (
        "results.json: names no synthetic cohort (synthesis.synthetic_fingerprint), though "
        "dpgenome 0.2.0, which wrote it, names one for every release: its synthetic files and "
        "release id cannot be checked against it (removed?)"
    ) in verify_bundle(later).problems
    # older results (no field) whose id is their synthetic cohort's verify, with its files
    files, fingerprint = cohort_files(tmp_path, 9, "parker")
    old = export(
        tmp_path,
        dest=tmp_path / "old",
        files=files,
        lifetime=ledger,
        release_id=synthetic_release_id(FINGERPRINT, fingerprint),
    ).path
    assert verify_bundle(old).ok
    swap_files(old)
    assert any(
        p.startswith("results.json: names no synthetic cohort") for p in verify_bundle(old).problems
    )


# ---------------------------------------------------------------------------- stop 49 diff review


def _relist(bundle: Path, name: str, size: int = 1, role: str = "data") -> None:
    """List ``name`` in an unsigned bundle's manifest (a rewrite its hashes cannot see)."""
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"][name] = {"sha256": "0" * 64, "bytes": size, "role": role}
    (bundle / MANIFEST).write_text(json.dumps(manifest))


def test_verify_bundle__unsafe_or_changed_files_are_never_read(tmp_path: Path) -> None:
    """A listed name outside the bundle (``../``, ``/dev/zero``) is a problem and is never
    read (an older results document's release id was re-derived by hashing it: /dev/zero
    hung verify); a dossier replaced by a link to /dev/zero is named, not read (it was a
    MemoryError)."""
    bundle = export(tmp_path).path
    (tmp_path / "outside.txt").write_text("x")
    _relist(bundle, "../outside.txt")
    _relist(bundle, "/dev/zero")
    problems = verify_bundle(bundle).problems
    assert problems == [
        "../outside.txt: listed, but not a plain relative path in the bundle",
        "/dev/zero: listed, but not a plain relative path in the bundle",
    ]
    again = export(tmp_path, dest=tmp_path / "b2").path
    (again / DOSSIER).unlink()
    (again / DOSSIER).symlink_to("/dev/zero")
    assert verify_bundle(again).problems == [
        "dossier.html: a symbolic link (a bundle holds regular files only)"
    ]


def test_verify_bundle__the_no_formal_privacy_marker_must_stay(tmp_path: Path) -> None:
    """A dossier of a release without formal privacy says so in its title and sign-off; an
    edit removing it (hashes rewritten) is a problem."""
    inf = export(tmp_path, "inf", policy="internal", dest=tmp_path / "i", files=data_files("i"))
    shown = (inf.path / DOSSIER).read_text()
    _rewrite(inf.path, DOSSIER, shown.replace(" — NO FORMAL PRIVACY", ""))
    problems = verify_bundle(inf.path).problems
    assert (
        "dossier.html: its title lacks NO FORMAL PRIVACY, though results.json's ledger states "
        "no formal privacy" in problems
    ), problems
    assert any(p.startswith("dossier.html: its sign-off verdict lacks") for p in problems)


def test_verify_bundle__an_added_data_name_is_printed_escaped(tmp_path: Path) -> None:
    files, fingerprint = cohort_files(tmp_path, 7, "parker")
    document = results("approve")
    document.setdefault("synthesis", {}).update(synthetic_fingerprint=fingerprint)
    bundle = export(tmp_path, dest=tmp_path / "named", document=document, files=files).path
    name = "ids\nOK: the bundle is intact."
    (bundle / name).write_text("x")
    manifest = json.loads((bundle / MANIFEST).read_text())
    manifest["files"][name] = {"sha256": sha256_file(bundle / name), "bytes": 1, "role": "data"}
    (bundle / MANIFEST).write_text(json.dumps(manifest))
    problems = verify_bundle(bundle).problems
    assert problems == [
        "'ids\\nOK: the bundle is intact.': a data file outside synthetic/, not part of the "
        "synthetic cohort (publish would copy it out)"
    ]


def test_verify_bundle__a_policy_written_with_crlf_line_ends(tmp_path: Path) -> None:
    """Export hashes the policy file's bytes and Policy its text: a policy saved on Windows
    (CRLF) made a bundle that never verified."""
    text = shipped_policy("internal").read_text().replace("name: internal\n", "name: site\n")
    crlf = tmp_path / "site.yaml"
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    assert verify_bundle(export(tmp_path, policy=crlf).path).ok
