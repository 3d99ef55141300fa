"""Policy-gated atomic export, bundle verification, the lifetime ledger and their CLI."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from scipy import optimize, stats

from dpgenome.accountant import Ledger, reaccount
from dpgenome.bundle import DOSSIER, MANIFEST, SIGNATURE, load_signing_key, sha256_file
from dpgenome.cli import main
from dpgenome.errors import BudgetError, ConfigError, InputError, ReleaseBlocked
from dpgenome.export import export_bundle
from dpgenome.findings import fmt_claim
from dpgenome.io import read_cohort, write_cohort
from dpgenome.lifetime import (
    LifetimeLedger,
    ReleaseBudget,
    compose,
    compose_replace_one,
    individuals_fingerprint,
)
from dpgenome.paths import shipped_policy
from dpgenome.policy import Override, load_policy
from dpgenome.release_id import results_release_id, synthetic_release_id
from dpgenome.testing import ToyConfig, toy_cohort
from dpgenome.verify import verify_bundle
from test_dossier import DEMO_PHENOTYPES_ONLY, consortium_with_control

FIXTURES = Path(__file__).parent / "fixtures"
FINGERPRINT = "9f2c" + "0" * 56 + "1a2b"  # cohort.fingerprint of the fixtures


def results(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"results_{name}.json").read_text())


def data_files(tag: str = "a") -> dict[str, bytes]:
    """A stand-in synthetic cohort (fresh synthetic ids, made-up values)."""
    return {
        "synthetic/pheno.csv": (
            f"id,abBMD,SW16\nsynth_{tag}_0001,1,0\nsynth_{tag}_0002,0,1\n".encode()
        ),
        "synthetic/geno.txt": b"id discard rs1 rs2\nsynth_0001 no 0 2\nsynth_0002 no 1 1\n",
    }


def export(
    tmp_path: Path, name: str = "approve", policy: str | Path = "consortium", **kw: Any
) -> Any:
    """Export fixture ``name`` (or the results document ``document=``) under ``policy`` (a
    shipped policy's name, or a policy file)."""
    kw.setdefault("lifetime", LifetimeLedger(tmp_path / "lifetime.sqlite"))
    document = kw.pop("document", None)
    return export_bundle(
        kw.pop("dest", tmp_path / "bundle"),
        files=kw.pop("files", data_files()),
        results=results(name) if document is None else document,
        policy_path=policy if isinstance(policy, Path) else shipped_policy(policy),
        **kw,
    )


def cohort_files(tmp_path: Path, seed: int, fmt: str) -> tuple[dict[str, bytes], str]:
    """A small synthetic cohort's files in ``fmt`` (bundle names) and its fingerprint (for
    PLINK the hard-call one, what its .bed reads back as)."""
    cohort, _ = toy_cohort(seed, ToyConfig(n=40, n_chrom=1, snps_per_chrom=30, causal=((0, 10),)))
    folder = tmp_path / f"cohort-{seed}-{fmt}"
    write_cohort(cohort, folder, fmt, name="synthetic")
    files = {f"synthetic/{p.name}": p.read_bytes() for p in sorted(folder.iterdir())}
    fp = cohort.hard_call_fingerprint() if fmt == "plink" else cohort.fingerprint()
    return files, fp


def keypair(tmp_path: Path, name: str = "key") -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    private = tmp_path / f"{name}.pem"
    public = tmp_path / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}"))


# ---------------------------------------------------------------------------- export


def test_export_bundle__approve_writes_a_verifiable_bundle(tmp_path: Path) -> None:
    result = export(tmp_path)
    bundle = tmp_path / "bundle"
    assert result.path == bundle and str(result.evaluation.verdict) == "APPROVE"
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert names == [
        "dossier.html",
        "manifest.json",
        "policy.yaml",
        "results.json",
        "synthetic/geno.txt",
        "synthetic/pheno.csv",
    ]
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert manifest["schema_version"] == 1 and manifest["verdict"] == "APPROVE"
    assert manifest["policy"]["sha256"] == sha256_file(shipped_policy("consortium"))
    assert (bundle / "policy.yaml").read_bytes() == shipped_policy("consortium").read_bytes()
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(bundle / name)
    assert manifest["seeds"] == {"split": 11, "synth": 12, "audit": 13}
    assert manifest["ledger"]["epsilon"] == 8.0
    assert manifest["override"] is None and manifest["signature"] is None
    assert manifest["lifetime"]["lifetime_epsilon_spent"] == 0.0
    report = verify_bundle(bundle)
    assert report.ok, report.problems
    assert (report.files_checked, report.signature) == (5, "absent")
    assert siblings(bundle) == []  # no temporary directory left behind


def test_export_bundle__block_raises_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ReleaseBlocked) as err:
        export(tmp_path, "block")
    assert err.value.exit_code == 3
    message = str(err.value)
    for rule in (
        "privacy.max_epsilon",
        "nearest_neighbour.exact_duplicate_genotypes",
        "kinship.excess_first_degree",
        "fidelity.spurious_loci",
    ):
        assert rule in message
    assert not (tmp_path / "bundle").exists()
    assert siblings(tmp_path / "bundle") == []
    # consortium charges a release it blocks: its synthetic cohort was made
    assert "charges blocked releases: this one is now in the lifetime ledger" in message
    (record,) = LifetimeLedger(tmp_path / "lifetime.sqlite").releases()
    assert (record.status, record.verdict, record.bundle) == ("blocked", "BLOCK", "")
    assert record.epsilon == 14.0


def test_export_bundle__a_blocked_charge_counts_once_and_an_override_lets_it_out(
    tmp_path: Path,
) -> None:
    """Blocked twice, the same release is charged once; the lifetime total of a later
    release includes it; exported under an override it becomes that export (no second
    charge, the override's verdict recorded)."""
    ledger = LifetimeLedger(tmp_path / "lifetime.sqlite")
    for _ in range(2):
        with pytest.raises(ReleaseBlocked):
            export(tmp_path, "block", lifetime=ledger)
    (blocked,) = ledger.releases()
    assert ledger.total(FINGERPRINT).epsilon == pytest.approx(14.0)
    override = Override("DAC reviewed it", "Dr B. Jones", "2026-11-24T07:00:00Z")
    result = export(tmp_path, "block", lifetime=ledger, override=override)
    assert not result.new_lifetime_entry
    (record,) = ledger.releases()
    assert record.release_id == blocked.release_id
    assert (record.status, record.verdict, record.overridden) == ("exported", "BLOCK", True)
    assert record.bundle == str(result.path.resolve())
    assert verify_bundle(result.path).ok
    # every verdict stays in the ledger, though the row shows the latest export's (a
    # newcomer's review: a block under one policy vanished when another let it out)
    assert [(e.policy, e.verdict, e.overridden, e.outcome) for e in record.history] == [
        ("consortium", "BLOCK", False, "blocked"),
        ("consortium", "BLOCK", False, "blocked"),
        ("consortium", "BLOCK", True, "exported"),
    ]
    assert record.history[-1].bundle == record.bundle
    listing = run("ledger", "--db", tmp_path / "lifetime.sqlite").output
    assert listing.count("consortium  BLOCK              blocked") == 2
    assert f"consortium  BLOCK (override)   exported to {record.bundle}" in listing
    as_json = json.loads(run("ledger", "--db", tmp_path / "lifetime.sqlite", "--json").output)
    assert [e["outcome"] for e in as_json["releases"][0]["history"]] == ["blocked"] * 2 + [
        "exported"
    ]


def test_export_bundle__internal_charges_nothing_when_it_blocks(tmp_path: Path) -> None:
    """A policy without ``charge_blocked_releases`` (internal) records nothing for a blocked
    release, as before stop 46."""
    assert not load_policy(shipped_policy("internal")).charge_blocked_releases
    assert load_policy(shipped_policy("strict")).charge_blocked_releases
    with pytest.raises(ReleaseBlocked) as err:  # on the exact duplicates
        export(tmp_path, "block", policy="internal")
    assert "charges blocked" not in str(err.value)
    assert LifetimeLedger(tmp_path / "lifetime.sqlite").releases() == []


def test_export_bundle__override_is_recorded(tmp_path: Path) -> None:
    override = Override("DAC reviewed the spurious locus", "Dr B. Jones", "2026-11-24T07:00:00Z")
    result = export(tmp_path, "block", override=override)
    manifest = json.loads((result.path / MANIFEST).read_text())
    assert manifest["verdict"] == "BLOCK" and manifest["released_under_override"] is True
    assert manifest["override"] == override.to_dict()
    assert "BLOCK — OVERRIDDEN" in (result.path / "dossier.html").read_text()
    report = verify_bundle(result.path)
    assert report.ok and report.released_under_override
    (record,) = LifetimeLedger(tmp_path / "lifetime.sqlite").releases()
    assert record.overridden and record.verdict == "BLOCK" and record.status == "exported"


def test_export_bundle__block_on_a_distance_audit_shows_the_public_panel_control(
    tmp_path: Path,
) -> None:
    """A BLOCK on the DCR share with the control on record names the excess after the
    failing rules; a BLOCK elsewhere, or without the control, does not. A policy that judges
    the genotypes by the excess (``public_panel_control``) passes the same release."""
    doc = results("approve")
    doc["audit"]["nearest_neighbour"]["centred"]["share_closer_to_members_ci"] = [0.456, 0.6016]
    doc["audit"]["public_control"] = {
        "dcr_auc_excess": -0.021,
        "dcr_auc_excess_ci": [-0.065, 0.032],
        "share_closer_excess": -0.037,
        "share_closer_excess_ci": [-0.117, 0.043],
    }

    def blocked(document: dict[str, Any]) -> str:
        with pytest.raises(ReleaseBlocked) as err:  # a ledger of its own: consortium charges
            export(tmp_path, document=document, lifetime=LifetimeLedger(tmp_path / "b.sqlite"))
        (tmp_path / "b.sqlite").unlink()
        return str(err.value)

    judged = copy.deepcopy(doc)
    judged["audit"]["nearest_neighbour"]["phenotypes_only"] = dict(DEMO_PHENOTYPES_ONLY)
    export_bundle(
        tmp_path / "approved",
        files=data_files(),
        results=judged,
        policy_path=consortium_with_control(),
        lifetime=LifetimeLedger(tmp_path / "lifetime.sqlite"),
    )
    assert (tmp_path / "approved" / "manifest.json").exists()
    message = blocked(doc)
    assert "nearest_neighbour.centred_share" in message
    assert "share excess -0.037 (-0.117 to +0.043)" in message
    assert "DCR AUC excess is -0.021 (95% CI -0.065 to +0.032)" in message
    assert not (tmp_path / "bundle").exists()
    del doc["audit"]["public_control"]
    assert "Public-panel control" not in blocked(doc)
    other = results("block")
    other["audit"]["public_control"] = {
        "dcr_auc_excess": 0.0,
        "dcr_auc_excess_ci": [0.0, 0.0],
        "share_closer_excess": 0.0,
        "share_closer_excess_ci": [0.0, 0.0],
    }
    assert "Public-panel control" not in blocked(other)


def test_export_bundle__strict_refuses_an_override(tmp_path: Path) -> None:
    override = Override("we need it", "C. Doe", "2026-11-24T07:00:00Z")
    with pytest.raises(ReleaseBlocked, match="allows no override"):
        export(tmp_path, "block", policy="strict", override=override)
    assert not (tmp_path / "bundle").exists()


def test_export_bundle__override_needs_reason_and_signer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="reason and a signer"):
        export(tmp_path, "block", override=Override(" ", "C. Doe", "t"))


def test_export_bundle__never_overwrites(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty") as err:
        export(tmp_path)
    assert err.value.exit_code == 2
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    (dest / "keep.txt").unlink()  # an existing empty directory is fine
    assert export(tmp_path).path == dest


@pytest.mark.parametrize("name", ["../evil.csv", "/abs.csv", "manifest.json", "a/./b", ""])
def test_export_bundle__rejects_unsafe_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError):
        export(tmp_path, files={name: b"x"})


def test_export_bundle__unreadable_inputs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=re.escape("nope.csv")):
        export(tmp_path, files={"synthetic/nope.csv": tmp_path / "nope.csv"})
    doc = results("approve")
    doc["fidelity"]["ld_decay_error"] = float("nan")
    with pytest.raises(InputError, match="not plain JSON"):
        export(tmp_path, document=doc, lifetime=LifetimeLedger(tmp_path / "l.sqlite"))
    assert not (tmp_path / "bundle").exists() and siblings(tmp_path / "bundle") == []


def test_export_bundle__killed_mid_write_leaves_no_bundle(tmp_path: Path) -> None:
    """kill -9 of an exporting process while it writes: no bundle at the destination, and
    the next export cleans up the dead process's temporary directory."""
    marker = tmp_path / "writing"
    script = textwrap.dedent(
        f"""
        import json, time
        from pathlib import Path
        import dpgenome.export as ex
        from dpgenome.lifetime import LifetimeLedger
        real_write = ex.write_file
        calls = []
        def slow_write(path, source):
            out = real_write(path, source)
            calls.append(path)
            if len(calls) == 2:
                Path({str(marker)!r}).write_text("x")
                time.sleep(60)
            return out
        ex.write_file = slow_write
        ex.export_bundle(
            Path({str(tmp_path / "bundle")!r}),
            files={{
                "synthetic/a.csv": b"1" * 100000,
                "synthetic/b.csv": b"2" * 100000,
                "synthetic/c.csv": b"3",
            }},
            results=json.loads(Path({str(FIXTURES / "results_approve.json")!r}).read_text()),
            policy_path=Path({str(shipped_policy("consortium"))!r}),
            lifetime=LifetimeLedger(Path({str(tmp_path / "lifetime.sqlite")!r})),
        )
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "the export finished or failed before the kill"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        partial = siblings(tmp_path / "bundle")
        assert len(partial) == 1 and ".partial-" in partial[0]  # it was mid-write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "bundle").exists()
    assert LifetimeLedger(tmp_path / "lifetime.sqlite").releases() == []
    assert export(tmp_path).path.exists()
    assert siblings(tmp_path / "bundle") == []  # the dead export's leftovers are gone


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


def test_export_bundle__refuses_a_ledger_understating_its_mechanisms(tmp_path: Path) -> None:
    """A results ledger stating epsilon 5 for mechanisms worth 7.967 (what verify reports)
    was exported, and its 5 charged to the lifetime ledger: export refuses it, naming
    results.json's ledger, with nothing written and nothing recorded (the CLI exits 2).
    Within verify's own tolerance (1e-6 relative) a claim passes both, as one above its
    mechanisms does (the fixture states 8)."""
    understated = results("approve")
    understated["ledger"]["epsilon"] = 5.0
    ledger = LifetimeLedger(tmp_path / "l.db")
    with pytest.raises(InputError) as err:
        export(tmp_path, document=understated, lifetime=ledger)
    assert str(err.value).startswith(
        "results.json, column ledger.epsilon: its ledger states epsilon 5, but its mechanisms "
        "re-account to 7.967 at delta 1e-05 (Opacus RDP 7.967, PLD 7.372)"
    )
    assert "nothing was exported and nothing was recorded" in str(err.value)
    assert not (tmp_path / "bundle").exists() and siblings(tmp_path / "bundle") == []
    assert ledger.releases() == []
    folder = release_dir(tmp_path)
    (folder / "results.json").write_text(json.dumps(understated))
    res = run("export", folder, "--policy", "consortium", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "re-account to 7.967" in res.output, res.output
    assert not (tmp_path / "o").exists()
    close = results("approve")
    close["ledger"]["epsilon"] = reaccount(close["ledger"])["epsilon"] * (1 - 1e-7)
    done = export(tmp_path, document=close, lifetime=ledger)
    assert verify_bundle(done.path).ok and len(ledger.releases()) == 1


@pytest.mark.parametrize(
    "damage",
    ["fractional count", "no mechanisms", "negative steps", "text multiplier", "unknown kind"],
)
def test_export_bundle__refuses_a_ledger_it_cannot_reaccount(tmp_path: Path, damage: str) -> None:
    """A ledger stating epsilon 1 whose mechanisms cannot be re-accounted (one damaged entry)
    skipped the understatement check: it was approved under a cap of 5, charged 1 to the
    lifetime ledger, and then rejected by verify (bad-input review, stop 45). Export now
    refuses it, naming the ledger's mechanisms, nothing written or recorded."""
    document = results("approve")
    ledger_doc = document["ledger"]
    ledger_doc["epsilon"] = 1.0
    mechs = ledger_doc["mechanisms"]
    dp_sgd = next(m for m in mechs if m["kind"] == "dp-sgd")
    if damage == "fractional count":
        next(m for m in mechs if "count" in m)["count"] = 3.0000001
    elif damage == "no mechanisms":
        del ledger_doc["mechanisms"]
    elif damage == "negative steps":
        dp_sgd["steps"] = -5
    elif damage == "text multiplier":
        dp_sgd["noise_multiplier"] = "1.0"
    else:
        dp_sgd["kind"] = "dp-sgd-2"
    lifetime = LifetimeLedger(tmp_path / "l.db")
    with pytest.raises(InputError, match="cannot be re-accounted") as err:
        export(tmp_path, document=document, lifetime=lifetime)
    assert err.value.file == "results.json" and err.value.column == "ledger.mechanisms"
    assert not (tmp_path / "bundle").exists() and lifetime.releases() == []


@pytest.mark.parametrize(
    "delta", [None, "missing", "1e-5", True, -1e-5, 1.5], ids=lambda d: f"delta-{d}"
)
def test_export_bundle__a_finite_release_needs_its_delta(tmp_path: Path, delta: Any) -> None:
    """A release with a finite epsilon and no usable delta (missing, null, a string, a
    bool, outside [0, 1)) was recorded with delta 0 -- under an override of the policy's
    delta rule, or a policy without one -- which dropped its delta from its individuals'
    lifetime sums: it is an InputError naming ledger.delta, nothing written or recorded."""
    document = results("approve")
    if delta == "missing":
        del document["ledger"]["delta"]
    else:
        document["ledger"]["delta"] = delta
    ledger = LifetimeLedger(tmp_path / "l.db")
    override = Override("tested", "C. Doe", "2026-11-24T07:00:00Z")
    with pytest.raises(InputError, match=re.escape("results.json, column ledger.delta: ")):
        export(tmp_path, document=document, lifetime=ledger, override=override)
    assert not (tmp_path / "bundle").exists() and ledger.releases() == []


def test_export_bundle__no_formal_privacy_keeps_its_delta_reading(tmp_path: Path) -> None:
    """A no-formal-privacy release (epsilon null) claims no delta: one without a delta is
    still exported, recorded with delta 0 as before (its epsilon is infinite anyway)."""
    document = results("inf")
    del document["ledger"]["delta"]
    ledger = LifetimeLedger(tmp_path / "l.db")
    override = Override("tested", "C. Doe", "2026-11-24T07:00:00Z")
    export(tmp_path, policy="internal", document=document, lifetime=ledger, override=override)
    (row,) = ledger.releases()
    assert math.isinf(row.epsilon) and row.delta == 0.0


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


def test_load_signing_key__rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_text("not a key")
    with pytest.raises(InputError, match=re.escape("k.pem")):
        load_signing_key(path)


# ---------------------------------------------------------------------------- lifetime


def test_lifetime_ledger__basic_composition_caps_releases(tmp_path: Path) -> None:
    ledger = LifetimeLedger(tmp_path / "lifetime.sqlite")
    export(tmp_path, dest=tmp_path / "b1", files=data_files("a"), lifetime=ledger)
    export(tmp_path, dest=tmp_path / "b2", files=data_files("b"), lifetime=ledger)
    total = ledger.total(FINGERPRINT)
    assert (total.epsilon, total.releases) == (16.0, 2)
    assert total.delta == pytest.approx(2e-5, rel=1e-12)
    # re-exporting released data (e.g. a re-rendered dossier) is the same release: no cost
    again = export(tmp_path, dest=tmp_path / "b1-again", files=data_files("a"), lifetime=ledger)
    assert not again.new_lifetime_entry
    assert ledger.total(FINGERPRINT).epsilon == 16.0
    # and the ledger keeps both bundles it went to (the second replaced the first)
    first = ledger.get(again.release_id)
    assert first is not None
    assert first.bundle == f"{(tmp_path / 'b1').resolve()}; {(tmp_path / 'b1-again').resolve()}"
    # a third epsilon-8 release would make 24 > 20 (consortium lifetime cap): blocked, and
    # charged all the same (consortium charges blocked releases)
    with pytest.raises(ReleaseBlocked, match=re.escape("privacy.max_lifetime_epsilon")):
        export(tmp_path, dest=tmp_path / "b3", files=data_files("c"), lifetime=ledger)
    assert not (tmp_path / "b3").exists()
    assert (ledger.total(FINGERPRINT).epsilon, ledger.total(FINGERPRINT).releases) == (24.0, 3)
    assert sorted(r.status for r in ledger.releases()) == ["blocked", "exported", "exported"]


def test_export_bundle__results_naming_their_synthetic_cohort_fix_the_release_id(
    tmp_path: Path,
) -> None:
    """Results that name their synthetic cohort (as a release's do) fix the release id: any
    files carrying it are the same release, and a caller's id that differs is refused, so
    another synthesis cannot pass as an already recorded one (it would cost nothing)."""
    ledger = LifetimeLedger(tmp_path / "lifetime.sqlite")
    synthetic = {fmt: cohort_files(tmp_path, 7, fmt) for fmt in ("parker", "vcf", "plink")}
    another = cohort_files(tmp_path, 8, "parker")
    document = results("approve")
    document.setdefault("synthesis", {}).update(synthetic_fingerprint=synthetic["parker"][1])
    document["synthesis"]["synthetic_hardcall_fingerprint"] = synthetic["plink"][1]
    derived = synthetic_release_id(FINGERPRINT, synthetic["parker"][1])
    files = synthetic["parker"][0]
    first = export(tmp_path, dest=tmp_path / "b1", document=document, files=files, lifetime=ledger)
    assert first.release_id == derived == results_release_id(document)
    assert verify_bundle(tmp_path / "b1").ok
    # the same synthetic cohort in other files (another format) is the same release
    for fmt in ("vcf", "plink"):
        again = export(
            tmp_path,
            dest=tmp_path / f"b2-{fmt}",
            document=document,
            files=synthetic[fmt][0],
            lifetime=ledger,
        )
        assert again.release_id == derived and not again.new_lifetime_entry
        assert verify_bundle(tmp_path / f"b2-{fmt}").ok
    # the files of another synthesis under these results are refused (they were unaudited)
    with pytest.raises(InputError, match=r"is not the one results\.json describes"):
        export(tmp_path, dest=tmp_path / "swap", document=document, files=another[0])
    assert not (tmp_path / "swap").exists()
    # a caller's id for it must be its own
    assert (
        export(
            tmp_path,
            dest=tmp_path / "b3",
            document=document,
            files=files,
            lifetime=ledger,
            release_id=derived,
        ).release_id
        == derived
    )
    with pytest.raises(ConfigError, match="is not this release's"):
        export(tmp_path, dest=tmp_path / "b4", document=document, lifetime=ledger, release_id="x")
    assert not (tmp_path / "b4").exists()
    other = json.loads(json.dumps(document))
    other["synthesis"] = {"synthetic_fingerprint": another[1]}
    with pytest.raises(ConfigError, match="is not this release's"):
        export(tmp_path, dest=tmp_path / "b5", document=other, lifetime=ledger, release_id=derived)
    assert ledger.total(FINGERPRINT).releases == 1
    # another synthesis is another release
    fresh = export(
        tmp_path, dest=tmp_path / "b6", document=other, files=another[0], lifetime=ledger
    )
    assert fresh.new_lifetime_entry
    assert ledger.total(FINGERPRINT).releases == 2
    other["synthesis"]["synthetic_fingerprint"] = "not a hash"
    with pytest.raises(InputError, match=r"results\.json.*synthesis\.synthetic_fingerprint"):
        export(tmp_path, dest=tmp_path / "b7", document=other, lifetime=ledger)
    # results without the field keep the caller's id, or the data files' hash
    assert results_release_id(results("approve")) is None
    assert results_release_id(results("approve"), "mine") == "mine"
    # verify holds the manifest's id to the one its results fix
    assert verify_bundle(tmp_path / "b1").ok
    manifest = json.loads((tmp_path / "b1" / MANIFEST).read_text())
    manifest["release_id"] = "0" * 64
    (tmp_path / "b1" / MANIFEST).write_text(json.dumps(manifest))
    report = verify_bundle(tmp_path / "b1")
    assert not report.ok
    assert any("release id 000000000000 is not the one" in p for p in report.problems)


def test_lifetime_ledger__infinite_epsilon_and_conflicts(tmp_path: Path) -> None:
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    assert ledger.releases() == []  # no file yet: nothing recorded, nothing created
    assert not (tmp_path / "l.sqlite").exists()
    assert ledger.record("fp", 1.5, 1e-6, "r1", policy="internal")
    assert ledger.record("fp", None, 0.0, "r2", policy="internal")
    assert not ledger.record("fp", 1.5, 1e-6, "r1")  # same release again
    total = ledger.total("fp")
    assert math.isinf(total.epsilon) and total.releases == 2
    assert ledger.total("fp", exclude_release="r2").epsilon == 1.5
    assert ledger.total("other").epsilon == 0.0
    with pytest.raises(BudgetError, match="refusing to rewrite history"):
        ledger.record("fp", 2.0, 1e-6, "r1")
    assert [r.to_dict()["no_formal_privacy"] for r in ledger.releases("fp")] == [False, True]


def test_lifetime_ledger__corrupt_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError, match=re.escape("bad.sqlite")):
        LifetimeLedger(path).releases()


# ---------------------------------------------------------------------------- CLI


def release_dir(tmp_path: Path, name: str = "approve") -> Path:
    folder = tmp_path / f"release-{name}"
    (folder / "figures").mkdir(parents=True)
    (folder / "results.json").write_text((FIXTURES / f"results_{name}.json").read_text())
    for rel, data in data_files().items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / "figures" / "qq.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" width="100" height="100">'
        '<rect id="r" width="10" height="10" fill="#1f5fa8"/></svg>'
    )
    return folder


def run(*args: str) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_export__approve_verify_ledger(tmp_path: Path) -> None:
    private, public = keypair(tmp_path)
    db = tmp_path / "life.sqlite"
    out = tmp_path / "out"
    res = run(
        "export",
        release_dir(tmp_path),
        "--policy",
        shipped_policy("consortium"),
        "--out",
        out,
        "--lifetime-db",
        db,
        "--signing-key",
        private,
    )
    assert res.exit_code == 0, res.output
    assert "APPROVE: bundle written to" in res.output and "(signed)" in res.output
    assert sorted(p.name for p in out.iterdir()) == [
        "dossier.html",
        "manifest.json",
        "manifest.sig",
        "policy.yaml",
        "results.json",
        "synthetic",
    ]
    assert 'data-figure="qq"' in (out / "dossier.html").read_text()  # figures/ feed the dossier
    res = run("verify", out, "--public-key", public)
    assert res.exit_code == 0, res.output
    assert "OK: the bundle is intact." in res.output
    assert (
        "privacy ledger: epsilon 8 stated; its mechanisms re-account to 7.967 at delta 1e-05 "
        "(Opacus RDP 7.967, dp-accounting PLD 7.372)"
    ) in res.output
    res = run("ledger", "--db", db, "--json")
    assert res.exit_code == 0
    listing = json.loads(res.output)
    assert listing["cohorts"][0]["epsilon"] == 8.0 and len(listing["releases"]) == 1
    assert "lifetime epsilon 8" in run("ledger", "--db", db).output
    # tamper: verify exits 2 and names the file
    with (out / "synthetic" / "pheno.csv").open("ab") as fh:
        fh.write(b"\n")
    res = run("verify", out)
    assert res.exit_code == 2
    assert "synthetic/pheno.csv: changed" in res.output


def test_cli_ledger__reads_the_listed_prefix_and_the_release_option_name(tmp_path: Path) -> None:
    """An auditor copies the 12-character cohort the listing shows into --fingerprint (it
    said "no release recorded", as if nothing had been spent), passes the ledger as
    --lifetime-db as release and export take it (a usage error), or mistypes its path (it
    said "no release recorded" and exited 0)."""
    db = tmp_path / "life.sqlite"
    export(tmp_path, lifetime=LifetimeLedger(db))
    listing = run("ledger", "--lifetime-db", db)
    assert listing.exit_code == 0, listing.output
    assert f"cohort {FINGERPRINT[:12]}: 1 release(s), lifetime epsilon 8" in listing.output
    for shown in (FINGERPRINT[:12], FINGERPRINT.upper(), FINGERPRINT):
        res = run("ledger", "--db", db, "--fingerprint", shown, "--json")
        assert res.exit_code == 0, res.output
        cohorts = json.loads(res.output)["cohorts"]
        assert [(c["fingerprint"], c["epsilon"]) for c in cohorts] == [(FINGERPRINT, 8.0)]
    res = run("ledger", "--db", db, "--fingerprint", "ab12")
    assert res.exit_code == 0 and f"no release recorded for cohort ab12 in {db}" in res.output
    res = run("ledger", "--db", tmp_path / "life.sqlit")
    assert res.exit_code == 2 and "does not exist" in res.output


def test_cli_export__block_exits_3_with_failing_rules(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["export", release_dir(tmp_path, "block"), "--policy", shipped_policy("consortium")]
    res = run(*args, "--out", out, "--lifetime-db", tmp_path / "db.sqlite")
    assert res.exit_code == 3
    assert "FAIL: privacy.max_epsilon" in res.output
    assert not out.exists()
    # --json: the blocked summary on stdout all the same
    res = run(*args, "--out", out, "--lifetime-db", tmp_path / "db2.sqlite", "--json")
    assert res.exit_code == 3
    summary = json.loads(res.stdout)
    assert summary["verdict"] == "BLOCK" and summary["bundle"] is None
    assert "privacy.max_epsilon" in summary["failing_rules"]


def test_cli_export__override(tmp_path: Path) -> None:
    folder = release_dir(tmp_path, "block")
    common = ["--lifetime-db", tmp_path / "db.sqlite"]
    res = run(
        "export",
        folder,
        "--policy",
        shipped_policy("strict"),
        "--out",
        tmp_path / "s",
        "--override-reason",
        "urgent",
        "--signer",
        "Ann",
        *common,
    )
    assert res.exit_code == 3 and "allows no override" in res.output
    res = run(
        "export",
        folder,
        "--policy",
        shipped_policy("consortium"),
        "--out",
        tmp_path / "c",
        "--override-reason",
        "urgent",
        *common,
    )
    assert res.exit_code == 2 and "must be given together" in res.output
    res = run(
        "export",
        folder,
        "--policy",
        shipped_policy("consortium"),
        "--out",
        tmp_path / "c",
        "--override-reason",
        "DAC approved",
        "--signer",
        "Ann",
        *common,
        "--json",
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["verdict"] == "BLOCK" and summary["released_under_override"] is True
    assert run("verify", tmp_path / "c").exit_code == 0


def test_cli_release__summary_names_a_signed_override(tmp_path: Path, monkeypatch) -> None:
    """`release` exporting a BLOCK under an allowed override exits 0; its summary says who
    released it and why (it printed `verdict: BLOCK` alone, and --json had no such field)."""
    import dpgenome.release as rel

    def fake_run_release(config: Any, echo: Any = None) -> Any:  # the export, not the training
        name, override = "approve", None
        if config.signer is not None:
            name = "block"
            override = Override(config.override_reason, config.signer, "2026-11-24T07:00Z")
        ledger = LifetimeLedger(tmp_path / f"{name}.sqlite")
        result = export(tmp_path, name, dest=Path(config.out), override=override, lifetime=ledger)
        dossier = tmp_path / "dossier.html"
        return rel.ReleaseOutcome(
            results(name), result.evaluation, tmp_path, dossier, result, False
        )

    monkeypatch.setattr(rel, "run_release", fake_run_release)
    args = ["release", tmp_path / "cohort", "--pheno", "abBMD", "--policy", "consortium"]
    signed = ["--override-reason", "DAC reviewed the spurious locus", "--signer", "Dr B. Jones"]
    res = run(*args, "--out", tmp_path / "text", *signed)
    assert res.exit_code == 0, res.output
    assert (
        "verdict: BLOCK\nreleased by override (signer Dr B. Jones): DAC reviewed the spurious "
        "locus\n" in res.output
    )
    res = run(*args, "--out", tmp_path / "json", *signed, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["verdict"] == "BLOCK"
    assert summary["override"] == {
        "reason": "DAC reviewed the spurious locus",
        "signer": "Dr B. Jones",
        "timestamp": "2026-11-24T07:00Z",
    }
    assert json.loads((tmp_path / "json" / MANIFEST).read_text())["override"] == summary["override"]
    res = run(*args, "--out", tmp_path / "approved", "--json")  # APPROVE: no override
    assert res.exit_code == 0 and json.loads(res.output)["override"] is None, res.output
    assert "released by override" not in run(*args, "--out", tmp_path / "approved-text").output


def test_cli_export__bad_inputs_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run("export", empty, "--policy", shipped_policy("consortium"), "--out", tmp_path / "o")
    assert res.exit_code == 2 and "no results.json" in res.output
    bad_policy = tmp_path / "bad.yaml"
    bad_policy.write_text("schema_version: 1\nname: x\nprivacy:\n  max_epsilom: 3\n")
    res = run(
        "export",
        release_dir(tmp_path),
        "--policy",
        bad_policy,
        "--out",
        tmp_path / "o",
        "--lifetime-db",
        tmp_path / "db.sqlite",
    )
    assert res.exit_code == 2 and "bad.yaml, line 4, key max_epsilom" in res.output
    assert run("verify", tmp_path / "nothing").exit_code == 2


@pytest.mark.parametrize("command", ["export", "verify", "ledger"])
def test_cli__every_command_has_help(command: str) -> None:
    res = run(command, "--help")
    assert res.exit_code == 0 and len(res.output) > 200


def test_export__a_write_failure_is_a_user_error_leaving_nothing(tmp_path, monkeypatch) -> None:
    """Disk full mid-export (or a read-only destination) used to end in an OSError traceback
    (exit 1); it is an InputError naming the file, with no partial bundle and no spending."""
    import errno

    import dpgenome.export as ex

    real_write = ex.write_file
    calls: list[Path] = []

    def full_disk(path: Path, source: bytes | Path) -> tuple[str, int]:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, source)

    monkeypatch.setattr(ex, "write_file", full_disk)
    ledger = LifetimeLedger(tmp_path / "lifetime.sqlite")
    with pytest.raises(InputError, match="No space left on device") as err:
        export(tmp_path, lifetime=ledger)
    assert err.value.file is not None and ".partial-" in err.value.file
    assert not (tmp_path / "bundle").exists()
    assert siblings(tmp_path / "bundle") == []
    assert ledger.releases(FINGERPRINT) == []

    monkeypatch.setattr(ex, "write_file", real_write)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(InputError, match="cannot create the bundle here") as err:
        export(tmp_path, dest=blocker / "bundle", lifetime=ledger)
    assert err.value.file == str(blocker / "bundle")


# ------------------------------------------------------- lifetime: per individual

V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE releases (
    release_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, epsilon REAL, delta REAL NOT NULL,
    created_utc TEXT NOT NULL, policy TEXT NOT NULL, verdict TEXT NOT NULL,
    overridden INTEGER NOT NULL, status TEXT NOT NULL, bundle TEXT NOT NULL, pheno TEXT NOT NULL
);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def mice(*names: str) -> list[str]:
    return [f"mouse-{n}" for n in names]


def test_lifetime_ledger__charges_each_individual_across_overlapping_cohorts(
    tmp_path: Path,
) -> None:
    """A growing biobank's next cohort (some mice dropped, newcomers added) is another
    fingerprint but mostly the same mice: it pays for their earlier releases (it started a
    fresh budget). Mice never released before, and cohorts of other mice, pay nothing."""
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    first = mice(*"abcdefghij")
    grown = mice(*"cdefghij", "k", "l")  # a and b withdrew, k and l joined
    other = mice("x", "y", "z")
    fp = {name: individuals_fingerprint(ids) for name, ids in (("1", first), ("2", grown))}
    assert ledger.record(fp["1"], 8.0, 1e-6, "r1", individuals=first)
    total = ledger.total(fp["2"], individuals=grown)
    assert (total.epsilon, total.delta, total.releases, total.individuals) == (8.0, 1e-6, 1, 10)
    assert ledger.total(individuals_fingerprint(other), individuals=other).epsilon == 0.0
    assert ledger.record(fp["2"], 5.0, 2e-6, "r2", individuals=grown)
    # c..j spent 13, a and b 8, k and l 5: the most is charged, seen from either cohort
    for name in ("1", "2"):
        total = ledger.total(fp[name])  # the stored member tokens, no ids needed
        assert (total.epsilon, total.releases, total.individuals) == (13.0, 2, 10)
        assert total.delta == pytest.approx(3e-6)
        assert total.to_dict()["unit"] == "individual"
    assert ledger.total(fp["2"], exclude_release="r2").epsilon == 8.0
    one_old_one_new = mice("a", "x")
    total = ledger.total(individuals_fingerprint(one_old_one_new), individuals=one_old_one_new)
    assert (total.epsilon, total.releases) == (8.0, 1)
    newcomers = mice("k", "l")
    total = ledger.total(individuals_fingerprint(newcomers), individuals=newcomers)
    assert (total.epsilon, total.releases) == (5.0, 1)
    # a release without formal privacy makes its mice's lifetime infinite, and no one else's
    assert ledger.record(individuals_fingerprint(mice("e")), None, 0.0, "r3", individuals=mice("e"))
    assert math.isinf(ledger.total(fp["1"]).epsilon)
    assert ledger.total(individuals_fingerprint(newcomers), individuals=newcomers).epsilon == 5.0
    with pytest.raises(InputError, match="not the one this release was made from"):
        ledger.total(fp["1"], individuals=grown)
    with pytest.raises(InputError, match="not the one this release was made from"):
        ledger.record(fp["1"], 1.0, 1e-6, "r4", individuals=grown)


def test_lifetime_ledger__releases_without_individuals_count_for_their_fingerprint(
    tmp_path: Path,
) -> None:
    """A release recorded without its individuals counts for every individual of its own
    fingerprint (as before per-individual accounting) and links once they are named."""
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    first, grown = mice(*"abcd"), mice(*"bcde")
    fp1, fp2 = individuals_fingerprint(first), individuals_fingerprint(grown)
    assert ledger.record(fp1, 3.0, 1e-6, "r1")  # unlinked
    total = ledger.total(fp1)
    assert (total.epsilon, total.individuals, total.to_dict()["unit"]) == (
        3.0,
        None,
        "cohort fingerprint",
    )
    assert not ledger.linked(fp1)
    assert ledger.total(fp2, individuals=grown).epsilon == 0.0  # cannot be linked
    assert ledger.total(fp1, individuals=first).epsilon == 3.0  # its own fingerprint counts
    ledger.record(fp2, 4.0, 1e-6, "r2", individuals=grown)
    assert ledger.total(fp1, individuals=first).epsilon == 7.0  # b, c, d: 3 + 4
    assert ledger.total(fp1).epsilon == 3.0  # not named, not linked
    # naming the first cohort's individuals (re-exporting r1 with them) links its release
    assert not ledger.record(fp1, 3.0, 1e-6, "r1", individuals=first)
    assert ledger.linked(fp1)
    assert (ledger.total(fp1).epsilon, ledger.total(fp2).epsilon) == (7.0, 7.0)


def test_lifetime_ledger__stores_keyed_tokens_owner_only_and_reads_version_1(
    tmp_path: Path,
) -> None:
    """The ledger holds no sample id, only keyed tokens (another ledger's key gives other
    tokens), is created readable by its owner only, and a ledger written before
    per-individual accounting still reads and upgrades in place."""
    ids = mice(*"abc")
    fp = individuals_fingerprint(ids)
    paths = [tmp_path / "one.sqlite", tmp_path / "two.sqlite"]
    for path in paths:
        LifetimeLedger(path).record(fp, 1.0, 1e-6, "r1", individuals=ids)
        assert (path.stat().st_mode & 0o777) == 0o600
        assert not any(i.encode() in path.read_bytes() for i in ids)
    tokens = []
    for path in paths:
        with sqlite3.connect(path) as con:
            tokens.append({t for (t,) in con.execute("SELECT token FROM members")})
    assert len(tokens[0]) == 3 and all(len(t) == 16 for t in tokens[0])
    assert not tokens[0] & tokens[1]
    old = tmp_path / "v1.sqlite"
    with sqlite3.connect(old) as con:
        con.executescript(V1_SCHEMA)
        con.execute(
            "INSERT INTO releases VALUES ('old', ?, 2.0, 1e-6, '2026-01-01', 'consortium', "
            "'APPROVE', 0, 'exported', '/b', 'abBMD')",
            (fp,),
        )
    old.chmod(0o644)  # as an earlier dpgenome left it
    ledger = LifetimeLedger(old)
    assert ledger.total(fp, individuals=ids).epsilon == 2.0  # read-only: no token table yet
    assert ledger.total(fp).individuals is None
    ledger.record(fp, 1.0, 1e-6, "new", individuals=ids)
    assert (old.stat().st_mode & 0o777) == 0o600  # it now holds a key and tokens
    total = ledger.total(fp)
    assert (total.epsilon, total.releases, total.individuals) == (3.0, 2, 3)
    with sqlite3.connect(old) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "2",
        )


def source_cohort(tmp_path: Path, seed: int, name: str) -> tuple[Path, dict[str, Any]]:
    """A small cohort on disk and a results document whose fingerprint is its individuals."""
    cohort, _ = toy_cohort(seed)
    path = tmp_path / name
    write_cohort(cohort, path, "parker")
    document = results("approve")
    document["cohort"]["fingerprint"] = individuals_fingerprint(read_cohort(path).sample_ids)
    return path, document


def test_cli_export__cohort_links_the_individuals_and_a_wrong_cohort_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cohort, document = source_cohort(tmp_path, 1, "cohort")
    other, _ = source_cohort(tmp_path, 2, "other")
    folder = release_dir(tmp_path)
    (folder / "results.json").write_text(json.dumps(document))
    db = tmp_path / "life.sqlite"
    common = ["--policy", "consortium", "--lifetime-db", db]
    res = run("export", folder, *common, "--out", tmp_path / "b0", "--cohort", other)
    assert res.exit_code == 2
    assert f"{other}: the cohort given is not the one this release was made from" in res.output
    assert not (tmp_path / "b0").exists() and not db.exists()
    res = run("export", folder, *common, "--out", tmp_path / "b1", "--cohort", cohort)
    assert res.exit_code == 0, res.output
    n = read_cohort(cohort).n_samples
    assert f"the most any one of its {n} individuals has spent" in res.output
    manifest = json.loads((tmp_path / "b1" / MANIFEST).read_text())
    assert (manifest["lifetime"]["unit"], manifest["lifetime"]["individuals"]) == ("individual", n)
    assert LifetimeLedger(db).linked(document["cohort"]["fingerprint"])
    listing = run("ledger", "--db", db).output
    assert f"the most any one of its {n} individuals has spent" in listing
    # a release of an unknown cohort without --cohort: fingerprint only, and a warning
    document["cohort"]["fingerprint"] = FINGERPRINT
    (folder / "results.json").write_text(json.dumps(document))
    res = run("export", folder, *common, "--out", tmp_path / "b2")
    assert res.exit_code == 0, res.output
    assert "by cohort fingerprint: the ledger does not know its individuals" in res.output
    assert "export --cohort COHORT" in caplog.text


# ------------------------------------------------- lifetime: composed across releases


def gaussian_exact_epsilon(mu: float, delta: float) -> float:
    """The exact epsilon at ``delta`` of a mu-GDP Gaussian mechanism (Balle & Wang 2018,
    Thm 8), independent of any accountant library."""

    def excess(eps: float) -> float:
        return (
            stats.norm.cdf(-eps / mu + mu / 2)
            - math.exp(eps) * stats.norm.cdf(-eps / mu - mu / 2)
            - delta
        )

    return float(optimize.brentq(excess, 0.0, 100.0))


def gaussian_release(sigma: float = 0.6, delta: float = 1e-5) -> dict[str, Any]:
    """A release ledger of one Gaussian query (noise multiplier ``sigma``): epsilon 8.63 as
    reported (the larger of RDP and PLD; PLD gives the exact 8.00); drawn in secure mode,
    which consortium requires."""
    ledger = Ledger(delta, secure_mode=True)
    ledger.add_gaussian("release", sigma, 1)
    return ledger.to_dict()


def test_compose__mechanisms_compose_tighter_than_adding_epsilons() -> None:
    """k releases of a Gaussian query with noise multiplier s are one Gaussian query with s /
    sqrt(k): the composed epsilon, read at one release's delta, lies between that exact
    value and the sum of epsilons."""
    one = gaussian_release()
    budget = ReleaseBudget.of(one["epsilon"], one["delta"], one)
    for k in (2, 3, 4):
        eps, delta, basic = compose([budget] * k)
        assert delta == pytest.approx(k * 1e-5) and basic == pytest.approx(k * one["epsilon"])
        exact = gaussian_exact_epsilon(math.sqrt(k) / 0.6, 1e-5)
        assert exact <= eps <= 1.1 * exact < basic
    assert compose([budget] * 3)[0] == pytest.approx(16.970, abs=0.01)  # basic: 25.9
    # a release whose mechanisms are unknown adds its epsilon; no formal privacy is infinite
    unknown = ReleaseBudget(one["epsilon"], one["delta"])
    eps, _, basic = compose([budget, budget, unknown])
    assert eps == pytest.approx(compose([budget] * 2)[0] + one["epsilon"]) and eps < basic
    assert math.isinf(compose([budget, ReleaseBudget(math.inf, 0.0)])[0])
    assert compose([unknown, unknown])[0] == pytest.approx(2 * one["epsilon"])
    # unreadable mechanisms, or fewer than the release spent, are left out (the release then
    # composes by its epsilon alone): a stale list of one cheap query composed to 1.0
    broken = {**one, "mechanisms": [{"kind": "unknown-kind", "name": "x"}]}
    assert ReleaseBudget.of(one["epsilon"], one["delta"], broken).mechanisms is None
    assert ReleaseBudget.of(8.0, 1e-5, gaussian_release(sigma=6.0)).mechanisms is None
    assert ReleaseBudget.of(0.5, 1e-5, gaussian_release(sigma=6.0)).mechanisms is not None


def test_compose_replace_one__releases_compose_between_cohorts_that_replace_one() -> None:
    """Between cohorts that replace one individual, a release of a Gaussian query with noise
    multiplier s is one with s / 2, and k of them one with s / (2 sqrt(k)): the composed
    figure lies between that exact value and the sum. A release without mechanisms takes
    group privacy's pair, which bounds nothing once its delta reaches 1."""
    one = gaussian_release(sigma=2.0)
    budget = ReleaseBudget.of(one["epsilon"], one["delta"], one)
    single = compose_replace_one([budget])
    assert single is not None
    assert single == (pytest.approx(Ledger.from_dict(one).replace_one()["epsilon"]), 1e-5)
    for k in (2, 3):
        pair = compose_replace_one([budget] * k)
        assert pair is not None
        exact = gaussian_exact_epsilon(2 * math.sqrt(k) / 2.0, 1e-5)
        assert exact <= pair[0] <= 1.1 * exact < k * single[0]
        assert pair[1] == pytest.approx(k * 1e-5)
        assert pair[0] > compose([budget] * k)[0]  # never below add/remove
    # unknown mechanisms: group privacy, added to the composed rest
    unknown = ReleaseBudget(1.0, 1e-6)
    pair = compose_replace_one([budget, budget, unknown])
    both = compose_replace_one([budget, budget])
    assert pair is not None and both is not None
    assert pair[0] == pytest.approx(both[0] + 2.0)
    assert pair[1] == pytest.approx(2e-5 + (1 + math.e) * 1e-6)
    assert compose_replace_one([budget, ReleaseBudget(8.0, 1e-3)]) is None  # (1 + e^8) 1e-3 > 1
    assert math.isinf(compose_replace_one([budget, ReleaseBudget(math.inf, 0.0)])[0])  # type: ignore[index]
    assert compose_replace_one([]) == (0.0, 0.0)


def test_lifetime_ledger__replace_one_total_and_the_ledger_command(tmp_path: Path) -> None:
    """`dpgenome ledger` states the lifetime total between cohorts that replace one
    individual beside the add/remove one, in text and JSON."""
    one = gaussian_release(sigma=2.0)
    db = tmp_path / "l.sqlite"
    ledger = LifetimeLedger(db)
    text = json.dumps(one["mechanisms"], sort_keys=True, separators=(",", ":"))
    for r in ("r1", "r2"):
        ledger.record("fp", one["epsilon"], 1e-5, r, mechanisms=text)
    total = ledger.total("fp", replace_one=True)
    budget = ReleaseBudget.of(one["epsilon"], one["delta"], one)
    assert total.replace_one == compose_replace_one([budget, budget])
    assert "replace_one" not in ledger.total("fp").to_dict()
    out = CliRunner().invoke(main, ["ledger", "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    (cohort,) = json.loads(out.output)["cohorts"]
    assert cohort["replace_one"]["epsilon"] == pytest.approx(total.replace_one[0])  # type: ignore[index]
    assert cohort["replace_one"]["delta"] == pytest.approx(2e-5)
    out = CliRunner().invoke(main, ["ledger", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert f"replace one individual: epsilon {fmt_claim(total.replace_one[0])}" in out.output  # type: ignore[index]
    ledger.record("fp", 8.0, 1e-3, "r3")  # no mechanisms: group privacy bounds nothing
    out = CliRunner().invoke(main, ["ledger", "--db", str(db)])
    assert "replace one individual: no bound" in out.output
    assert (
        json.loads(CliRunner().invoke(main, ["ledger", "--db", str(db), "--json"]).output)[
            "cohorts"
        ][0]["replace_one"]["epsilon"]
        is None
    )


def test_compose__a_release_with_a_large_delta_never_lowers_the_total() -> None:
    """Read at the sum of the deltas, a release on 20 of the cohort's mice (delta 1/20^1.1 =
    0.037, within max_delta: auto) lowered the composed epsilon of everyone in it, and let
    a release the cap had blocked pass. Read at the smallest delta, adding a release only
    adds to the total."""
    one = gaussian_release()
    budget = ReleaseBudget.of(one["epsilon"], one["delta"], one)
    small = gaussian_release(sigma=6.0, delta=20**-1.1)
    tiny_cohort = ReleaseBudget.of(small["epsilon"], small["delta"], small)
    for k in (2, 3):
        assert compose([budget] * k + [tiny_cohort])[0] >= compose([budget] * k)[0]


@pytest.mark.parametrize(
    "mechanisms",
    [
        "not json",
        '{"kind": "gaussian"}',
        '[{"kind": "magic", "name": "x"}]',
        '[{"kind": "gaussian", "name": "x", "noise_multiplier": 0.6, "count": 1.5}]',
        "[]",
    ],
    ids=["not-json", "an-object", "unknown-kind", "count-fraction", "empty"],
)
def test_compose__a_release_whose_mechanisms_do_not_parse_adds_its_epsilon(
    tmp_path: Path, mechanisms: str
) -> None:
    """A recorded release whose mechanisms do not parse was taken as known and composed as
    nothing: a release stated at 5 with one of 8.63 composed to 8.63, where adding gives
    13.63. It is unknown, like one recorded without mechanisms: its epsilon adds to the
    composed rest, in compose() and in the SQLite ledger's totals."""
    one = gaussian_release()
    known = ReleaseBudget.of(one["epsilon"], one["delta"], one)
    broken = ReleaseBudget(5.0, 1e-5, mechanisms)
    unknown = ReleaseBudget(5.0, 1e-5)
    assert compose([broken, known]) == compose([unknown, known])
    assert compose([broken, known])[0] == pytest.approx(5.0 + one["epsilon"])
    eps, _, basic = compose([broken, known, known])
    assert eps == pytest.approx(compose([known, known])[0] + 5.0) and eps < basic
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    ledger.record("fp", 5.0, 1e-5, "r1", mechanisms=mechanisms)
    ledger.record("fp", known.epsilon, 1e-5, "r2", mechanisms=known.mechanisms)
    assert ledger.total("fp").epsilon == pytest.approx(5.0 + one["epsilon"])


def test_release_budget_of__mechanisms_above_the_stated_epsilon_set_the_cost(
    tmp_path: Path,
) -> None:
    """A release stating 0.5 whose mechanisms give 8.63 was kept at 0.5, and compose took
    the smaller of basic composition (with 0.5) and the composed figure: the understated
    epsilon lowered lifetime totals. Its budget's epsilon is now what its mechanisms give:
    it costs what the honest release costs, as does a row an earlier version recorded so."""
    one = gaussian_release()
    honest = ReleaseBudget.of(one["epsilon"], one["delta"], one)
    understated = ReleaseBudget.of(0.5, one["delta"], {**one, "epsilon": 0.5})
    assert understated == honest and understated.epsilon == pytest.approx(8.630, abs=0.01)
    other = ReleaseBudget.of(*_release(sigma=1.5))
    assert compose([other, understated]) == compose([other, honest])
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    ledger.record("fp", 0.5, 1e-5, "old", mechanisms=honest.mechanisms)  # recorded as it was
    assert ledger.total("fp").epsilon == pytest.approx(honest.epsilon)
    ledger.record("fp", other.epsilon, 1e-5, "r", mechanisms=other.mechanisms)
    assert ledger.total("fp").epsilon == pytest.approx(compose([other, honest])[0])


def _release(sigma: float) -> tuple[float, float, dict[str, Any]]:
    """``ReleaseBudget.of`` arguments for :func:`gaussian_release` at ``sigma``."""
    ledger = gaussian_release(sigma=sigma)
    return ledger["epsilon"], ledger["delta"], ledger


def test_lifetime__third_release_fits_the_cap_once_composed(tmp_path: Path) -> None:
    """consortium caps an individual's lifetime at 20 and a release at 10: two epsilon-8.63
    releases added up to 17.3 and a third (25.9) was blocked; composed by their mechanisms
    the three make 17.0, recorded in the manifest and re-checked by verify."""
    document = results("approve")
    document["ledger"] = gaussian_release()
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    for tag in ("a", "b", "c"):
        done = export(
            tmp_path, document=document, dest=tmp_path / tag, files=data_files(tag), lifetime=ledger
        )
    context = done.manifest["evaluation"]["context"]
    assert context["lifetime_epsilon_spent"] == pytest.approx(13.135, abs=0.01)
    assert context["lifetime_epsilon_after"] == pytest.approx(16.970, abs=0.01)
    (finding,) = [f for f in done.evaluation.findings if f.rule == "privacy.max_lifetime_epsilon"]
    assert finding.measured == pytest.approx(16.970, abs=0.01)
    assert "adding epsilons" in finding.detail
    assert verify_bundle(tmp_path / "c").ok
    total = ledger.total(FINGERPRINT)
    assert total.epsilon == pytest.approx(16.970, abs=0.01)
    assert total.to_dict()["epsilon_basic_composition"] == pytest.approx(25.886, abs=0.01)
    # a fourth (20.4 composed) does not fit
    with pytest.raises(ReleaseBlocked, match=re.escape("privacy.max_lifetime_epsilon")):
        export(
            tmp_path, document=document, dest=tmp_path / "d", files=data_files("d"), lifetime=ledger
        )


def capped_gaussian_releases(tmp_path: Path, cap: str) -> tuple[Any, LifetimeLedger]:
    """``(release, ledger)``: ``release(tag)`` exports one Gaussian release (multiplier 0.6,
    delta 1e-5) to ``tmp_path / tag`` under consortium with the privacy line ``cap`` added,
    charged to ``ledger``."""
    text = shipped_policy("consortium").read_text()
    capped = tmp_path / "capped.yaml"
    capped.write_text(text.replace("privacy:\n", f"privacy:\n  {cap}\n", 1))
    document = results("approve")
    document["ledger"] = gaussian_release()
    ledger = LifetimeLedger(tmp_path / "l.sqlite")

    def release(tag: str) -> Any:
        return export_bundle(
            tmp_path / tag,
            files=data_files(tag),
            results=document,
            policy_path=capped,
            lifetime=ledger,
        )

    return release, ledger


def test_lifetime__delta_cap_blocks_when_the_deltas_add_over_it(tmp_path: Path) -> None:
    """A policy's ``max_lifetime_delta`` judges the most-spent individual's deltas added
    with this release's (1e-5 each: two fit 2.5e-5, a third does not); the manifest records
    the figure and verify re-checks it."""
    release, _ = capped_gaussian_releases(tmp_path, "max_lifetime_delta: 2.5e-5")
    release("a")
    done = release("b")
    context = done.manifest["evaluation"]["context"]
    assert context["lifetime_delta_spent"] == pytest.approx(1e-5)
    assert context["lifetime_delta_after"] == pytest.approx(2e-5)
    (finding,) = [f for f in done.evaluation.findings if f.rule == "privacy.max_lifetime_delta"]
    assert finding.status.name == "PASS" and finding.measured == pytest.approx(2e-5)
    assert verify_bundle(tmp_path / "b").ok
    with pytest.raises(ReleaseBlocked, match=re.escape("privacy.max_lifetime_delta")):
        release("c")
    assert not (tmp_path / "c").exists()


def test_lifetime__replace_one_cap_composes_the_releases_under_replace_one(tmp_path: Path) -> None:
    """A policy's ``max_lifetime_replace_one_epsilon`` judges the most-spent individual's
    releases accounted under replace-one and composed (Gaussian, multiplier 0.6: 20.4, 32.4,
    42.9 for one to three): a cap of 35 takes two and blocks the third; the manifest records
    the figure and verify re-checks it."""
    release, ledger = capped_gaussian_releases(tmp_path, "max_lifetime_replace_one_epsilon: 35")
    release("a")
    done = release("b")
    after = done.manifest["evaluation"]["context"]["lifetime_replace_one_after"]
    assert after == pytest.approx(32.35, abs=0.05)
    assert ledger.total(FINGERPRINT, replace_one=True).replace_one[0] == pytest.approx(after)
    (finding,) = [
        f for f in done.evaluation.findings if f.rule == "privacy.max_lifetime_replace_one_epsilon"
    ]
    assert finding.status.name == "PASS" and finding.measured == pytest.approx(after)
    assert verify_bundle(tmp_path / "b").ok
    with pytest.raises(ReleaseBlocked, match=re.escape("privacy.max_lifetime_replace_one_epsilon")):
        release("c")
    assert not (tmp_path / "c").exists()


def test_lifetime_ledger__a_release_recorded_meanwhile_is_refused(tmp_path: Path) -> None:
    """Two exports of overlapping cohorts at once each passed the cap on the spending they
    read, and both were recorded (24 > 20). The record re-reads the releases reaching its
    individuals in its own transaction and refuses when one appeared meanwhile."""
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    first, grown = mice(*"abcd"), mice(*"bcde")
    fp1, fp2 = individuals_fingerprint(first), individuals_fingerprint(grown)
    ledger.record(fp1, 8.0, 1e-6, "r0", individuals=first)
    seen = ledger.total(fp2, individuals=grown)
    assert seen.release_ids == {"r0"}
    ledger.record(fp1, 8.0, 1e-6, "r1", individuals=first)  # another process, meanwhile
    with pytest.raises(BudgetError, match="while this one was being exported"):
        ledger.record(fp2, 8.0, 1e-6, "r2", individuals=grown, expect_releases=seen.release_ids)
    assert ledger.get("r2") is None and not ledger.linked(fp2)  # nothing recorded
    again = ledger.total(fp2, individuals=grown)
    assert ledger.record(fp2, 8.0, 1e-6, "r2", individuals=grown, expect_releases=again.release_ids)
    # a release of other people meanwhile does not matter
    ledger.record(individuals_fingerprint(mice("z")), 8.0, 1e-6, "rz", individuals=mice("z"))
    later = ledger.total(fp1)
    assert ledger.record(fp1, 1.0, 1e-6, "r3", expect_releases=later.release_ids)


def test_export__another_export_recorded_meanwhile_leaves_nothing(tmp_path: Path) -> None:
    class Busy(LifetimeLedger):
        """A ledger another export writes to between this export's check and its record."""

        def record(self, *args: Any, **kwargs: Any) -> bool:
            if kwargs.get("status") == "pending":
                super().record(FINGERPRINT, 8.0, 1e-5, "elsewhere", status="exported")
            return super().record(*args, **kwargs)

    ledger = Busy(tmp_path / "l.sqlite")
    with pytest.raises(BudgetError, match="run the export again"):
        export(tmp_path, lifetime=ledger)
    assert not (tmp_path / "bundle").exists()
    assert [r.release_id for r in ledger.releases()] == ["elsewhere"]
    assert export(tmp_path, lifetime=LifetimeLedger(ledger.path)).new_lifetime_entry


def test_lifetime_ledger__a_failed_export_withdraws_only_its_own_claim(tmp_path: Path) -> None:
    """Two exports of one release at once: the first one failing removed the pending row
    the second relied on, and the second's bundle then had no ledger entry."""
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    assert ledger.record("fp", 2.0, 1e-6, "r", bundle="/b1", status="pending")
    assert not ledger.record("fp", 2.0, 1e-6, "r", bundle="/b2", status="pending")
    ledger.forget_pending("r", bundle="/b1")  # the first export failed
    row = ledger.get("r")
    assert row is not None and (row.status, row.bundle) == ("pending", "/b2")
    ledger.set_status("r", "exported", bundle="/b2")
    ledger.forget_pending("r", bundle="/b2")  # exported: kept
    assert ledger.get("r") is not None
    assert ledger.record("fp", 2.0, 1e-6, "s", bundle="/b3", status="pending")
    ledger.forget_pending("s", bundle="/b3")
    assert ledger.get("s") is None
    # an empty cohort stores no tokens (they would hide its releases from its fingerprint)
    empty = individuals_fingerprint([])
    ledger.record(empty, 1.0, 1e-6, "e1")
    ledger.record(empty, 1.0, 1e-6, "e2", individuals=[])
    assert (ledger.total(empty).epsilon, ledger.total(empty).releases) == (2.0, 2)


def test_cli_ledger__link_counts_earlier_unlinked_releases_for_their_people(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cohort, document = source_cohort(tmp_path, 1, "cohort")
    folder = release_dir(tmp_path)
    (folder / "results.json").write_text(json.dumps(document))
    db = tmp_path / "life.sqlite"
    common = ["--policy", "consortium", "--lifetime-db", db]
    res = run("export", folder, *common, "--out", tmp_path / "b")
    assert res.exit_code == 0, res.output  # without --cohort: unlinked
    fp = document["cohort"]["fingerprint"]
    ids = read_cohort(cohort).sample_ids
    grown = [*ids[1:], "newcomer"]  # the biobank's next cohort
    ledger = LifetimeLedger(db)
    ledger.record(individuals_fingerprint(mice("q")), 1.0, 1e-6, "q", individuals=mice("q"))
    assert ledger.total(individuals_fingerprint(grown), individuals=grown).epsilon == 0.0
    assert ledger.unlinked_releases(besides=individuals_fingerprint(grown)) == 1
    assert "dpgenome ledger --link COHORT" in run("ledger", "--db", db).output
    # a linked export meanwhile is told the unlinked release does not count for its people
    other, other_doc = source_cohort(tmp_path, 2, "other")
    (folder / "results.json").write_text(json.dumps(other_doc))
    res = run("export", folder, *common, "--out", tmp_path / "b2", "--cohort", other)
    assert res.exit_code == 0, res.output
    assert "1 earlier release(s) in the lifetime ledger were recorded without" in caplog.text
    res = run("ledger", "--db", db, "--link", cohort, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == {"fingerprint": fp, "individuals": len(ids), "releases": 1}
    assert ledger.total(individuals_fingerprint(grown), individuals=grown).epsilon == 8.0
    assert ledger.unlinked_releases() == 0
    never, _ = source_cohort(tmp_path, 3, "never")
    res = run("ledger", "--db", db, "--link", never)
    assert res.exit_code == 2 and "nothing to link" in res.output


def test_export_bundle__refuses_an_understated_replace_one_epsilon(tmp_path: Path) -> None:
    """A policy may cap the replace-one epsilon, so export holds its stated figure to its
    mechanisms as it does the add/remove one: stated 8.73 where they give 17.46 passed a cap
    of 13.09 and was charged (review, stop 45); now an InputError naming the field."""
    document = results("approve")
    ledger = Ledger(1e-5)
    ledger.add_gaussian("release", 0.6, 1)
    document["ledger"] = ledger.to_dict()
    assert document["ledger"]["replace_one"]["method"]
    document["ledger"]["replace_one"]["epsilon"] = document["ledger"]["epsilon"]
    lifetime = LifetimeLedger(tmp_path / "l.db")
    with pytest.raises(InputError, match="states a replace-one epsilon of") as err:
        export(tmp_path, document=document, lifetime=lifetime)
    assert err.value.column == "ledger.replace_one.epsilon"
    assert not (tmp_path / "bundle").exists() and lifetime.releases() == []


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


def test_export__a_failure_after_the_rename_keeps_the_charge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle renamed into place, then an error (a sync of its folder, a Ctrl-C): the
    ledger row was withdrawn and the message said nothing was written, though the bundle
    was out. The row now stays (pending: counted) and the message says the bundle is out."""
    from dpgenome import export as ex

    real = ex.move_into_place

    def then_fail(tmp: Path, dest: Path) -> None:
        real(tmp, dest)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(ex, "move_into_place", then_fail)
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    with pytest.raises(InputError, match="the bundle was written, but finishing it failed"):
        export(tmp_path, lifetime=ledger)
    (row,) = ledger.releases()
    assert row.status == "pending" and verify_bundle(tmp_path / "bundle").ok


def test_export__a_losing_export_to_the_same_path_keeps_the_winners_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two exports of one release to one path: B staged and claimed the row, A renamed first,
    B's rename failed and B withdrew its claim -- which, made under the same path, was A's
    too, so A's bundle went out with no ledger row. Each export now claims with a token."""
    from dpgenome import export as ex

    dest = tmp_path / "bundle"

    class Racing(LifetimeLedger):
        raced = False

        def set_status(self, *args: Any, **kwargs: Any) -> None:
            if not self.raced:  # A is between its rename and marking the row exported
                self.raced = True
                with monkeypatch.context() as m:
                    m.setattr(ex, "check_destination", lambda d: None)  # B checked earlier
                    with pytest.raises(InputError, match="destination appeared"):
                        export(tmp_path, dest=dest, lifetime=LifetimeLedger(self.path))
            super().set_status(*args, **kwargs)

    export(tmp_path, dest=dest, lifetime=Racing(tmp_path / "l.sqlite"))
    (row,) = LifetimeLedger(tmp_path / "l.sqlite").releases()
    assert (row.status, row.bundle) == ("exported", str(dest.resolve()))


def test_export__a_blocked_charge_that_cannot_be_recorded_says_it_is_uncharged(
    tmp_path: Path,
) -> None:
    """consortium charges what it blocks; when the ledger write fails the refusal said only
    that the release was blocked (or, with a release recorded meanwhile, asked for another
    export): it now says the synthetic cohort is uncharged and how to charge it."""

    class Broken(LifetimeLedger):
        def record(self, *args: Any, **kwargs: Any) -> bool:
            if kwargs.get("status") == "blocked":
                raise BudgetError("database or disk is full", file=self.path)
            return super().record(*args, **kwargs)

    with pytest.raises(InputError, match=r"synthetic cohort is UNCHARGED\. Fix the ledger"):
        export(tmp_path, "block", lifetime=Broken(tmp_path / "l.sqlite"))


def test_lifetime_ledger__a_lost_member_key_and_an_empty_file(tmp_path: Path) -> None:
    """Without its member key a ledger cannot link a new cohort's individuals to the tokens
    it holds: a cohort sharing ten people with an epsilon-8 release summed 0, and recording
    it drew a new key. Both are refused. A 0-byte ledger (a first write that failed before
    its commit) holds no release: read as empty, written as new."""
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    first = [f"m{i}" for i in range(20)]
    ledger.record(individuals_fingerprint(first), 8.0, 1e-5, "a", individuals=first)
    second = first[:10] + [f"n{i}" for i in range(10)]
    fp = individuals_fingerprint(second)
    assert ledger.total(fp, individuals=second).epsilon == 8.0
    with sqlite3.connect(ledger.path) as con:
        con.execute("DELETE FROM meta WHERE key = 'member_key'")
    con.close()
    with pytest.raises(BudgetError, match="not the key they were made with"):
        ledger.total(fp, individuals=second)
    with pytest.raises(BudgetError, match="Restore the ledger from a backup"):
        ledger.record(fp, 1.0, 1e-5, "b", individuals=second)
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    assert LifetimeLedger(empty).total("fp").epsilon == 0.0
    assert LifetimeLedger(empty).releases() == []
    assert LifetimeLedger(empty).record("fp", 1.0, 1e-5, "r")


def test_remove_dead_writers__only_what_killed_processes_left(tmp_path: Path) -> None:
    """A killed run's cache copies (``KEY.tmp-PID``, ``synthetic.tmp-PID`` and its
    ``.formats.json``) stayed forever; a running writer's, and a name without an id, stay."""
    from dpgenome.bundle import remove_dead_writers

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = os.getpid()
    for name in (f"k.tmp-{dead.pid}", f"k.tmp-{live}", "k.tmp-x"):
        (tmp_path / name).mkdir()
    (tmp_path / f"synthetic.tmp-{dead.pid}.formats.json").write_text("[]")
    remove_dead_writers(tmp_path, "k.tmp-*", ".tmp-")
    remove_dead_writers(tmp_path, "synthetic.tmp-*", ".tmp-")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"k.tmp-{live}", "k.tmp-x"])


def test_lifetime_ledger__a_blocked_charge_outlives_a_failing_pending_export(
    tmp_path: Path,
) -> None:
    """Export A of release r pending (an override), run B of r blocked and charged: B found
    the pending row, changed nothing, and A's failure then deleted the row with B's charge.
    The charge now makes the row 'blocked' for good; a failing export withdraws only its
    claim, also from a row already exported or charged."""
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    assert ledger.record("fp", 2.0, 1e-6, "r", bundle="/a (export 1 under way)", status="pending")
    assert ledger.record("fp", 2.0, 1e-6, "r", status="blocked", verdict="BLOCK")
    ledger.forget_pending("r", bundle="/a (export 1 under way)")
    row = ledger.get("r")
    assert row is not None and (row.status, row.verdict, row.bundle) == ("blocked", "BLOCK", "")
    assert ledger.total("fp").epsilon == 2.0
    ledger.record("fp", 1.0, 1e-6, "s", bundle="/b (export 2 under way)", status="pending")
    ledger.record("fp", 1.0, 1e-6, "s", bundle="/a (export 3 under way)", status="pending")
    ledger.set_status("s", "exported", bundle="/a", replaces="/a (export 3 under way)")
    ledger.forget_pending("s", bundle="/b (export 2 under way)")  # B failed after A finished
    row = ledger.get("s")
    assert row is not None and (row.status, row.bundle) == ("exported", "/a")


def test_export__a_staging_folder_gone_before_the_rename_is_not_a_written_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename fails because the staging folder vanished (another host's clean-up on a
    shared disk) and an empty --out exists: that was taken for a finished rename (a pending
    row kept, 'the bundle was written'). Nothing was written, and nothing is charged."""
    from dpgenome import export as ex

    def vanished(tmp: Path, dest: Path) -> None:
        shutil.rmtree(tmp)
        os.rename(tmp, dest)  # ENOENT

    monkeypatch.setattr(ex, "move_into_place", vanished)
    (tmp_path / "bundle").mkdir()
    ledger = LifetimeLedger(tmp_path / "l.sqlite")
    with pytest.raises(InputError, match="nothing was written and no lifetime spending"):
        export(tmp_path, lifetime=ledger)
    assert ledger.releases() == [] and not any((tmp_path / "bundle").iterdir())


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


def test_lifetime_history__uncharged_blocks_and_ledgers_from_before(tmp_path: Path) -> None:
    """A diff review (stop 48): a block under a policy that does not charge blocked releases
    left no trace once the release was let out, and a ledger written before verdicts were
    kept lost its rows' first verdicts at the first export that replaced them."""
    import sqlite3

    ledger = LifetimeLedger(tmp_path / "lifetime.sqlite")
    with pytest.raises(ReleaseBlocked):
        export(tmp_path, "block", policy="internal", lifetime=ledger)
    assert ledger.releases() == []  # internal charges no blocked release
    override = Override("reviewed", "Dr B. Jones", "2026-12-05T10:00:00Z")
    export(tmp_path, "block", policy="internal", lifetime=ledger, override=override)
    (record,) = ledger.releases()
    assert [(e.policy, e.verdict, e.overridden, e.outcome) for e in record.history] == [
        ("internal", "BLOCK", False, "blocked"),
        ("internal", "BLOCK", True, "exported"),
    ]
    # a ledger from before: its rows' own verdicts become their first events
    with sqlite3.connect(ledger.path) as con:
        con.execute("DROP TABLE verdicts")
    assert ledger.releases()[0].history == ()  # read-only: nothing written
    ledger.log_verdict("another", ("strict", "BLOCK", False), "blocked")
    (record,) = ledger.releases()
    assert [(e.policy, e.verdict, e.outcome) for e in record.history] == [
        ("internal", "BLOCK", "exported")
    ]


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


# ---------------------------------------------------------------------------- stop 49 reviews


def test_cli_export__only_the_synthetic_cohort_is_packaged(tmp_path: Path) -> None:
    """A note, an id list or the real phenotype table left in RELEASE_DIR never rides along
    as a data file (publish would copy it out for anyone): refused, naming the file, and
    nothing is written or charged. The API refuses it too."""
    folder = release_dir(tmp_path)
    (folder / "notes").mkdir()
    (folder / "notes" / "holdout_ids.txt").write_text("MEMBER_0001\n")
    db, out = tmp_path / "life.sqlite", tmp_path / "out"
    res = run("export", folder, "--policy", "consortium", "--out", out, "--lifetime-db", db)
    assert res.exit_code != 0
    assert "notes/holdout_ids.txt" in res.output and "outside synthetic/" in res.output
    assert not out.exists() and siblings(out) == [] and not db.exists()
    with pytest.raises(InputError, match=r"outside synthetic/ \(source_pheno\.csv\)"):
        export(tmp_path, files={**data_files(), "source_pheno.csv": b"id,x\nM1,1\n"})


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


def test_export_bundle__never_inside_a_bundle_and_owner_only(tmp_path: Path) -> None:
    """A destination inside a bundle would add files to it (it would no longer verify); the
    bundle itself is readable by its owner only (its results and dossier hold the members'
    exact aggregates)."""
    bundle = export(tmp_path).path
    assert bundle.stat().st_mode & 0o777 == 0o700
    with pytest.raises(InputError, match=r"inside .* which holds manifest\.json"):
        export(tmp_path, dest=bundle / "synthetic" / "again")
    assert verify_bundle(bundle).ok


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


def test_export_bundle__results_of_a_later_version_must_name_their_synthetic_cohort(
    tmp_path: Path,
) -> None:
    """Export refuses what verify would refuse at once (nothing written, nothing recorded)."""
    doc = results("approve")
    doc.setdefault("provenance", {})["dpgenome_version"] = "0.2.0"
    ledger = LifetimeLedger(tmp_path / "life.sqlite")
    with pytest.raises(InputError, match=r"names no synthetic cohort .* dpgenome 0\.2\.0"):
        export(tmp_path, document=doc, lifetime=ledger)
    assert not (tmp_path / "bundle").exists() and not ledger.path.exists()


def test_export_bundle__a_folder_with_a_manifest_of_its_own_is_not_a_bundle(
    tmp_path: Path,
) -> None:
    """Only a dpgenome manifest (by its format) makes a folder a bundle: a project's own
    manifest.json beside the destination does not refuse it."""
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / MANIFEST).write_text('{"name": "my-web-app"}')
    assert verify_bundle(export(tmp_path, dest=tmp_path / "project" / "bundle").path).ok


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
