"""The public part of a release: a verified bundle's synthetic cohort and ledger alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dpgenome.cli import main
from dpgenome.errors import InputError, ReleaseBlocked
from dpgenome.paths import shipped_policy
from dpgenome.policy import load_policy
from dpgenome.publish import LEDGER, PUBLIC_MANIFEST, PUBLIC_SIGNATURE, publish
from dpgenome.verify import verify_bundle
from test_export import data_files, keypair, siblings
from test_export import export as export_under


def open_policy(tmp_path: Path, shipped: str = "consortium") -> Path:
    """A shipped policy that also allows open publication (``publication.open: true``),
    under a name of its own (``consortium-open``): an edited copy that kept the shipped name
    is not published unless a signature checked against the signer's key pins it."""
    text = shipped_policy(shipped).read_text()
    assert "publication:" in text and "  open: false\n" in text
    assert f"\nname: {shipped}\n" in text
    path = tmp_path / f"{shipped}-open.yaml"
    path.write_text(
        text.replace("  open: false\n", "  open: true\n").replace(
            f"\nname: {shipped}\n", f"\nname: {shipped}-open\n"
        )
    )
    return path


def export(tmp_path: Path, name: str = "approve", shipped: str = "consortium", **kw: Any) -> Any:
    """The fixture ``name`` exported under a copy of ``shipped`` open to publication."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return export_under(tmp_path, name, policy=open_policy(tmp_path, shipped), **kw)


def test_publish__copies_the_synthetic_cohort_and_ledger_and_nothing_else(
    tmp_path: Path,
) -> None:
    """The results document, the dossier (exact real-data aggregates), the policy and the
    bundle's manifest stay behind; the data files keep the hashes the bundle's manifest
    records, and the public copy verifies on its own with its ledger re-accounted."""
    bundle = export(tmp_path).path
    result = publish(bundle, tmp_path / "public")
    out = tmp_path / "public"
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == sorted([*data_files(), LEDGER, PUBLIC_MANIFEST])
    assert result.files == tuple(sorted([*data_files(), LEDGER]))
    bundle_manifest = json.loads((bundle / "manifest.json").read_text())
    public = json.loads((out / PUBLIC_MANIFEST).read_text())
    for name in data_files():
        assert public["files"][name] == bundle_manifest["files"][name]  # role "data" too
    assert "release_id" not in public and public["public_id"] == result.public_id
    assert public["privacy"]["epsilon"] == bundle_manifest["ledger"]["epsilon"]
    assert json.loads((out / LEDGER).read_text()) == bundle_manifest["ledger"]
    report = verify_bundle(out)
    assert report.ok, report.problems
    assert report.kind == "public release" and report.verdict_recorded == "APPROVE"
    assert report.reaccounted is not None
    assert report.reaccounted["epsilon"] <= report.reaccounted["stated"] * (1 + 1e-6)
    assert siblings(out) == []  # no partial directory left


def test_publish__tampering_with_the_public_copy_is_caught(tmp_path: Path) -> None:
    bundle = export(tmp_path).path
    out = publish(bundle, tmp_path / "public").path
    (out / "synthetic" / "geno.txt").write_bytes(b"id discard rs1 rs2\nx no 2 2\n")
    (out / "results.json").write_text("{}")
    ledger = json.loads((out / LEDGER).read_text())
    (out / LEDGER).write_text(json.dumps(ledger | {"epsilon": 1.0}))
    problems = " | ".join(verify_bundle(out).problems)
    assert "synthetic/geno.txt: changed (size differs" in problems
    assert "results.json: not listed in the manifest" in problems
    assert f"{LEDGER}: changed" in problems


def test_publish__a_ledger_stating_less_than_its_mechanisms_is_a_problem(tmp_path: Path) -> None:
    """A consistent rewrite (the ledger's epsilon lowered, its hash and the manifest's claim
    updated) of an unsigned copy still fails: the mechanisms re-account to more."""
    bundle = export(tmp_path).path
    out = publish(bundle, tmp_path / "public").path
    ledger = json.loads((out / LEDGER).read_text()) | {"epsilon": 1.0}
    (out / LEDGER).write_text(json.dumps(ledger))
    manifest = json.loads((out / PUBLIC_MANIFEST).read_text())
    manifest["privacy"]["epsilon"] = 1.0
    from dpgenome.bundle import sha256_file

    manifest["files"][LEDGER] = {
        "sha256": sha256_file(out / LEDGER),
        "bytes": (out / LEDGER).stat().st_size,
    }
    (out / PUBLIC_MANIFEST).write_text(json.dumps(manifest))
    problems = " | ".join(verify_bundle(out).problems)
    assert f"{LEDGER}: its ledger states epsilon 1, but its mechanisms re-account to" in problems


@pytest.mark.parametrize("where", ["ledger", "manifest", "both-missing"])
def test_verify_public__the_manifest_and_the_ledger_state_one_delta(
    tmp_path: Path, where: str
) -> None:
    """The public manifest's claim and ledger.json were compared on epsilon only: a
    consistent rewrite of an unsigned copy could state another delta in one of them (or
    drop it from both) and still verify. Each differing delta is a problem naming both."""
    from dpgenome.bundle import sha256_file

    bundle = export(tmp_path).path
    out = publish(bundle, tmp_path / "public").path
    ledger = json.loads((out / LEDGER).read_text())
    manifest = json.loads((out / PUBLIC_MANIFEST).read_text())
    if where in ("ledger", "both-missing"):
        ledger["delta"] = 1e-3
        if where == "both-missing":
            del ledger["delta"], manifest["privacy"]["delta"]
        (out / LEDGER).write_text(json.dumps(ledger))
        manifest["files"][LEDGER] = {
            "sha256": sha256_file(out / LEDGER),
            "bytes": (out / LEDGER).stat().st_size,
            "role": "ledger",
        }
    else:
        manifest["privacy"]["delta"] = 1e-3
    (out / PUBLIC_MANIFEST).write_text(json.dumps(manifest))
    stated = None if where == "both-missing" else 1e-5 if where == "ledger" else 1e-3
    assert verify_bundle(out).problems == [
        f"{LEDGER}: its delta differs from the one {PUBLIC_MANIFEST} states ({stated!r})"
    ]


def test_publish__signed_copy_and_a_bundle_that_does_not_verify(tmp_path: Path) -> None:
    private, public_key = keypair(tmp_path)
    bundle = export(tmp_path).path
    out = publish(bundle, tmp_path / "public", signing_key=private).path
    assert (out / PUBLIC_SIGNATURE).is_file()
    assert verify_bundle(out, public_key=public_key).ok
    _, other_public = keypair(tmp_path, "other")
    assert not verify_bundle(out, public_key=other_public).ok
    # a bundle changed after export publishes nothing
    (bundle / "synthetic" / "pheno.csv").write_text("id,abBMD,SW16\n")
    with pytest.raises(InputError, match="does not verify, so nothing was published"):
        publish(bundle, tmp_path / "again")
    assert not (tmp_path / "again").exists() and siblings(tmp_path / "again") == []


def test_publish__records_how_the_bundle_signature_was_checked(tmp_path: Path) -> None:
    """A signed bundle published without the signer's key was checked only against the key
    its own manifest carries (anyone who altered it could have re-signed it): the public
    manifest and the CLI say so; with --public-key they say the key was given."""
    private, public_key = keypair(tmp_path)
    bundle = export(tmp_path, signing_key=private).path
    assert publish(bundle, tmp_path / "p1").bundle_signature == "embedded key only"
    manifest = json.loads((tmp_path / "p1" / PUBLIC_MANIFEST).read_text())
    assert manifest["bundle_signature_checked_against"] == "embedded key only"
    given = publish(bundle, tmp_path / "p2", public_key=public_key)
    assert given.bundle_signature == "given public key"
    assert publish(export(tmp_path / "u").path, tmp_path / "p3").bundle_signature == "unsigned"
    res = CliRunner().invoke(main, ["publish", str(bundle), "--out", str(tmp_path / "p4")])
    assert res.exit_code == 0, res.output
    assert "checked only against the public key its own manifest carries" in res.output
    res = CliRunner().invoke(
        main,
        ["publish", str(bundle), "--out", str(tmp_path / "p5"), "--public-key", str(public_key)],
    )
    assert res.exit_code == 0 and "its own manifest carries" not in res.output


def test_publish__no_formal_privacy_is_not_published(tmp_path: Path) -> None:
    bundle = export(tmp_path, "inf", shipped="internal").path
    with pytest.raises(InputError, match="no formal privacy"):
        publish(bundle, tmp_path / "public")
    assert not (tmp_path / "public").exists()


@pytest.mark.parametrize(("name", "shipped"), [("approve", "consortium"), ("inf", "internal")])
def test_publish__only_under_a_policy_open_to_publication(
    tmp_path: Path, name: str, shipped: str
) -> None:
    """A newcomer's walkthrough (stop 48): a release approved for a consortium, or for use
    inside the institution, was published for anyone. A policy says whether its releases may
    be (publication.open; of the shipped ones only strict); exit 3, nothing written."""
    bundle = export_under(tmp_path, name, policy=shipped).path
    assert not load_policy(shipped_policy(shipped)).open_publication
    assert load_policy(shipped_policy("strict")).open_publication
    res = CliRunner().invoke(main, ["publish", str(bundle), "--out", str(tmp_path / "public")])
    assert res.exit_code == 3, res.output
    assert f"approved under the '{shipped}' policy, whose copy in the bundle does not set" in (
        " ".join(res.stderr.split())
    )
    assert not (tmp_path / "public").exists() and siblings(tmp_path / "public") == []


def test_cli_publish__writes_and_verify_checks_the_copy(tmp_path: Path) -> None:
    bundle = export(tmp_path).path
    runner = CliRunner()
    res = runner.invoke(main, ["publish", str(bundle), "--out", str(tmp_path / "public")])
    assert res.exit_code == 0, res.output
    assert "published:" in res.output and "not signed" in res.output
    checked = runner.invoke(main, ["verify", str(tmp_path / "public")])
    assert checked.exit_code == 0, checked.output
    assert "public release:" in checked.output and "OK: the public release is intact." in (
        checked.output
    )
    assert "judged in the bundle it was published from (policy consortium-open)" in checked.output
    again = runner.invoke(main, ["publish", str(bundle), "--out", str(tmp_path / "public")])
    assert again.exit_code == 2 and "not empty" in again.stderr


def test_publish__a_file_changed_after_verification_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy is checked against the bundle manifest's hashes, not only the verification
    before it: a data file rewritten between the two publishes nothing."""
    import dpgenome.publish as pub

    bundle = export(tmp_path).path
    verify = pub.verify_bundle

    def verify_then_change(path, public_key=None):
        report = verify(path, public_key=public_key)
        (bundle / "synthetic" / "geno.txt").write_bytes(b"id discard rs1 rs2\nx no 2 2\n")
        return report

    monkeypatch.setattr(pub, "verify_bundle", verify_then_change)
    with pytest.raises(InputError, match="changed while the bundle was being published") as err:
        publish(bundle, tmp_path / "public")
    assert "geno.txt" in str(err.value)
    assert not (tmp_path / "public").exists() and siblings(tmp_path / "public") == []


# ---------------------------------------------------------------------------- review fixes


def retag(bundle: Path, key: Path | None = None) -> None:
    """What anyone who can write to a bundle can do: recompute every listed file's hash and
    size and the policy's hash in manifest.json, then sign it with ``key`` (their own) or
    leave it unsigned."""
    import base64

    from dpgenome.bundle import json_bytes, load_signing_key, public_pem, sha256_file
    from dpgenome.policy import parse_policy

    manifest = json.loads((bundle / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        entry["sha256"] = sha256_file(bundle / name)
        entry["bytes"] = (bundle / name).stat().st_size
    manifest["policy"]["sha256"] = parse_policy((bundle / "policy.yaml").read_text()).sha256
    (bundle / "manifest.sig").unlink(missing_ok=True)
    if key is None:
        manifest["signature"] = None
        (bundle / "manifest.json").write_bytes(json_bytes(manifest))
        return
    private = load_signing_key(key)
    manifest["signature"] = {
        "algorithm": "ed25519",
        "file": "manifest.sig",
        "signs": "manifest.json",
        "public_key_pem": public_pem(private.public_key()),
    }
    data = json_bytes(manifest)
    (bundle / "manifest.json").write_bytes(data)
    (bundle / "manifest.sig").write_bytes(base64.b64encode(private.sign(data)) + b"\n")


def hex_digests(text: str) -> set[str]:
    import re

    return set(re.findall(r"[0-9a-f]{64}", text))


def test_publish__the_public_copy_carries_nothing_computed_from_the_member_ids(
    tmp_path: Path,
) -> None:
    """Review finding 1: the public manifest carried the bundle's release id, an unkeyed
    SHA-256 over the source cohort's fingerprint (a SHA-256 of its sorted sample ids), so
    whoever knew every member but one could test whether a person was in the cohort. Every
    hash in the public copy is now one of its files', the bundle manifest's, the policy's,
    or the public id, which anyone recomputes from the copy alone."""
    from dpgenome.bundle import sha256_file
    from dpgenome.publish import public_release_id

    bundle = export(tmp_path).path
    result = publish(bundle, tmp_path / "public")
    out = result.path
    bundle_manifest = json.loads((bundle / "manifest.json").read_text())
    results_doc = json.loads((bundle / "results.json").read_text())
    public_text = (out / PUBLIC_MANIFEST).read_text() + (out / LEDGER).read_text()
    public = json.loads((out / PUBLIC_MANIFEST).read_text())
    secret = {
        bundle_manifest["release_id"],
        results_doc["cohort"]["fingerprint"],
        results_doc["split"]["member_ids_sha256"],
        sha256_file(bundle / "results.json"),
    }
    assert not secret & hex_digests(public_text)
    data = {name: public["files"][name]["sha256"] for name in data_files()}
    allowed = {
        *data.values(),
        public["files"][LEDGER]["sha256"],
        sha256_file(bundle / "manifest.json"),
        bundle_manifest["policy"]["sha256"],
        result.public_id,
    }
    assert hex_digests(public_text) <= allowed
    assert "release_id" not in public
    assert public["bundle_manifest_sha256"] == sha256_file(bundle / "manifest.json")
    assert (
        result.public_id
        == public["public_id"]
        == public_release_id(public["bundle_manifest_sha256"], data)
    )
    # the id is checked: another one in an (unsigned) copy is a problem
    public["public_id"] = "0" * 64
    (out / PUBLIC_MANIFEST).write_text(json.dumps(public))
    assert verify_bundle(out).problems == [
        f"{PUBLIC_MANIFEST}: public id 000000000000 is not the one its bundle manifest SHA-256 "
        f"and data files give ({result.public_id[:12]})"
    ]


def test_verify_public__an_older_copy_named_by_its_release_id_still_verifies_with_a_note(
    tmp_path: Path,
) -> None:
    """Copies published before the public id carry the bundle's release id: verify still
    accepts them (files, signature, ledger checked as before) and says why to replace them."""
    from dpgenome.bundle import json_bytes

    bundle = export(tmp_path).path
    out = publish(bundle, tmp_path / "public").path
    public = json.loads((out / PUBLIC_MANIFEST).read_text())
    del public["public_id"]
    public["release_id"] = json.loads((bundle / "manifest.json").read_text())["release_id"]
    (out / PUBLIC_MANIFEST).write_bytes(json_bytes(public))
    report = verify_bundle(out)
    assert report.ok, report.problems
    assert (
        len(report.notes) == 1
        and "an older public copy, named by its bundle's release id" in (report.notes[0])
    )
    res = CliRunner().invoke(main, ["verify", str(out)])
    assert res.exit_code == 0, res.output
    assert f"note: {PUBLIC_MANIFEST}: an older public copy" in res.output
    assert "OK: the public release is intact." in res.output
    del public["release_id"]  # neither id: not a copy dpgenome wrote
    (out / PUBLIC_MANIFEST).write_bytes(json_bytes(public))
    assert verify_bundle(out).problems == [f"{PUBLIC_MANIFEST}: names no public id"]


def test_publish__a_consortium_policy_copy_edited_to_open_publication_is_refused(
    tmp_path: Path,
) -> None:
    """Review finding F2: an unsigned consortium bundle whose policy.yaml was edited to
    ``publication: {open: true}`` (its hashes rewritten) verified and was published: publish
    trusted the policy copy. A copy that calls itself by a shipped name but is not that file
    is refused now (exit 3, nothing written), and verify notes it."""
    bundle = export_under(tmp_path, "approve", policy="consortium").path
    text = (bundle / "policy.yaml").read_text()
    (bundle / "policy.yaml").write_text(text.replace("  open: false\n", "  open: true\n"))
    retag(bundle)
    assert verify_bundle(bundle).ok  # consistent: only the shipped file tells
    res = CliRunner().invoke(main, ["publish", str(bundle), "--out", str(tmp_path / "public")])
    assert res.exit_code == 3, res.output
    said = " ".join(res.stderr.split())
    assert "policy.yaml: the bundle's policy copy calls itself 'consortium', a shipped" in said
    assert "differs from dpgenome's policies/consortium.yaml, and the bundle is not signed" in said
    assert not (tmp_path / "public").exists() and siblings(tmp_path / "public") == []
    checked = CliRunner().invoke(main, ["verify", str(bundle)])
    assert checked.exit_code == 0, checked.output
    assert "note: policy.yaml: calls itself 'consortium', a shipped policy, but differs" in (
        checked.output
    )


def test_publish__a_custom_policy_under_a_shipped_name_needs_the_signers_key(
    tmp_path: Path,
) -> None:
    """A policy of one's own that keeps a shipped name (consortium, opened to publication) is
    published only when the bundle's signature, checked against the key the user gives,
    pins that copy: not unsigned, not against the key the manifest embeds."""
    private, public_key = keypair(tmp_path)
    text = shipped_policy("consortium").read_text().replace("  open: false\n", "  open: true\n")
    (tmp_path / "mine.yaml").write_text(text)  # still "name: consortium"
    signed = export_under(tmp_path, "approve", policy=tmp_path / "mine.yaml", signing_key=private)
    unsigned = export_under(
        tmp_path / "u", "approve", policy=tmp_path / "mine.yaml", dest=tmp_path / "u" / "b"
    )
    for bundle, out in ((unsigned.path, "p1"), (signed.path, "p2")):
        with pytest.raises(ReleaseBlocked, match="calls itself 'consortium'") as err:
            publish(bundle, tmp_path / out)
        assert err.value.file == str(bundle / "policy.yaml")
        assert not (tmp_path / out).exists()
    assert "checked only against the key its own manifest carries" in str(err.value)
    result = publish(signed.path, tmp_path / "p3", public_key=public_key)
    assert result.bundle_signature == "given public key"
    report = verify_bundle(signed.path, public_key=public_key)
    assert report.ok and report.notes and "dpgenome publish refuses" not in report.notes[0]
    assert "dpgenome publish refuses it unless" in verify_bundle(signed.path).notes[0]


def test_publish__warns_on_stderr_when_the_source_bundle_vouches_for_itself(
    tmp_path: Path,
) -> None:
    """Review finding F7: an unsigned bundle, or one re-signed by whoever altered it,
    published with exit 0 and nothing said about the source. It still does (the command's
    contract), with a warning on stderr; with the signer's key (--public-key) a re-signed
    or unsigned bundle is refused (exit 2, nothing written)."""
    private, public_key = keypair(tmp_path)
    evil, _ = keypair(tmp_path, "evil")
    runner = CliRunner()
    unsigned = export(tmp_path / "u").path
    res = runner.invoke(main, ["publish", str(unsigned), "--out", str(tmp_path / "p1")])
    assert res.exit_code == 0, res.output
    assert "warning: the source bundle is not signed" in res.stderr
    assert "warning" not in res.stdout
    res = runner.invoke(main, ["publish", str(unsigned), "--out", str(tmp_path / "p1j"), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["bundle_signature"] == "unsigned"
    assert "warning: the source bundle is not signed" in res.stderr
    # signed by the approver, then re-signed with another key (a data file altered with it
    # would now fail: the release id of results naming no synthetic cohort is re-derived)
    bundle = export(tmp_path / "s", signing_key=private).path
    retag(bundle, key=evil)
    res = runner.invoke(main, ["publish", str(bundle), "--out", str(tmp_path / "p2")])
    assert res.exit_code == 0, res.output
    assert "warning: the source bundle's signature was checked only against" in res.stderr
    for given, out in ((bundle, "p3"), (unsigned, "p4")):
        args = ["publish", str(given), "--out", str(tmp_path / out)]
        res = runner.invoke(main, [*args, "--public-key", str(public_key)])
        assert res.exit_code == 2, res.output
        assert "does not verify, so nothing was published" in res.stderr
        assert not (tmp_path / out).exists() and siblings(tmp_path / out) == []
    args = ["publish", str(bundle), "--out", str(tmp_path / "p5"), "--public-key", str(public_key)]
    res = runner.invoke(main, args)
    assert "signed with a different key than the one given (--public-key)" in res.stderr


@pytest.mark.parametrize("via_link", [False, True])
def test_publish__a_destination_inside_the_bundle_is_refused(
    tmp_path: Path, via_link: bool
) -> None:
    """Review finding F9: ``publish BUNDLE --out BUNDLE/public`` wrote into the bundle,
    which then no longer verified. A destination that resolves (links followed) into the
    bundle is an InputError naming --out; nothing is written."""
    bundle = export(tmp_path).path
    if via_link:
        (tmp_path / "link").symlink_to(bundle, target_is_directory=True)
        out = tmp_path / "link" / "synthetic" / "public"
    else:
        out = bundle / "public"
    with pytest.raises(InputError, match=r"--out .* is inside the bundle") as err:
        publish(bundle, out)
    assert err.value.file == str(out)
    with pytest.raises(InputError, match="is inside the bundle"):
        publish(bundle, bundle)
    assert not out.exists() and not (bundle / "public").exists()
    assert not any(p.name.startswith(".") for p in bundle.rglob("*"))
    assert verify_bundle(bundle).ok
    res = CliRunner().invoke(main, ["publish", str(bundle), "--out", str(out)])
    assert res.exit_code == 2 and "--out" in res.stderr


def test_publish__an_older_bundle_with_data_outside_synthetic_publishes_nothing(
    tmp_path: Path,
) -> None:
    """Export used to package any file of RELEASE_DIR as data: a bundle holding one outside
    synthetic/ (here a member id list, listed with its hash) is not published."""
    import dpgenome.export as ex

    with pytest.MonkeyPatch.context() as older:  # as an export before stop 49 packed it
        older.setattr(ex, "outside_synthetic", lambda names: [])
        bundle = export(tmp_path, files={**data_files(), "holdout_ids.txt": b"MEMBER_0001\n"}).path
    assert verify_bundle(bundle).ok  # an older results document: any layout was packaged
    with pytest.raises(InputError, match=r"outside synthetic/ \(e\.g\. holdout_ids\.txt\)"):
        publish(bundle, tmp_path / "public")
    assert not (tmp_path / "public").exists()


def test_publish__a_release_let_out_under_an_override_is_not_published(tmp_path: Path) -> None:
    """An override lets a blocked release out to the people its policy names; the README
    promises open publication only to a release the policy approved (exit 3, nothing
    written)."""
    from dpgenome.policy import Override

    bundle = export(
        tmp_path, "block", override=Override("needed for the consortium", "Dr A", "2026-12-05")
    ).path
    assert json.loads((bundle / "manifest.json").read_text())["released_under_override"]
    with pytest.raises(ReleaseBlocked, match="released under an override"):
        publish(bundle, tmp_path / "public")
    assert not (tmp_path / "public").exists()
