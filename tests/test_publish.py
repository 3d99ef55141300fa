"""The public part of a release: a verified bundle's synthetic cohort and ledger alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dpgenome.cli import main
from dpgenome.errors import InputError
from dpgenome.export import verify_bundle
from dpgenome.paths import shipped_policy
from dpgenome.policy import load_policy
from dpgenome.publish import LEDGER, PUBLIC_MANIFEST, PUBLIC_SIGNATURE, publish
from test_export import data_files, keypair, siblings
from test_export import export as export_under


def open_policy(tmp_path: Path, shipped: str = "consortium") -> Path:
    """A shipped policy that also allows open publication (``publication.open: true``)."""
    text = shipped_policy(shipped).read_text()
    assert "publication:" in text and "  open: false\n" in text
    path = tmp_path / f"{shipped}-open.yaml"
    path.write_text(text.replace("  open: false\n", "  open: true\n"))
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
    assert public["release_id"] == bundle_manifest["release_id"]
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
    assert "synthetic/geno.txt: changed (SHA-256 differs" in problems
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
    from dpgenome.export import sha256_file

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
    from dpgenome.export import sha256_file

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
    assert "judged in the bundle it was published from (policy consortium)" in checked.output
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
