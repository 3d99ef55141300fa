"""One real end-to-end release on a small simulated cohort (runs in the default suite), plus
the command contract of ``release``: exit 0 + a verifiable bundle on APPROVE, exit 3 + nothing
at --out on BLOCK, and a re-run after a policy change that neither retrains nor spends budget.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from dpgenome.cli import main
from dpgenome.config import ReleaseConfig
from dpgenome.io import read_cohort, write_cohort
from dpgenome.lifetime import individuals_fingerprint
from dpgenome.release import SUMMARY_KEYS, gwas_model, ingest
from dpgenome.simulate import SimConfig, simulate
from test_phenoschema import TINY, tiny_with

#: A policy the small release can pass: the small cohort has a small holdout, so the audit
#: confidence intervals are wide; thresholds here are the shipped internal ones loosened.
LENIENT = """\
schema_version: 1
name: test-lenient
purpose: end-to-end test of the release command
privacy:
  max_epsilon: 30.0
  max_lifetime_epsilon: 100.0
  max_delta: auto
  allow_no_formal_privacy: false
  min_holdout: 20
membership:
  attacks: [dcr, density_ratio, allele_frequency]
  max_auc_ci_upper: 0.9
nearest_neighbour:
  max_share_closer_to_members_ci_upper: 0.9
  max_exact_duplicate_genotypes: 0
kinship:
  max_synthetic_member_duplicate_pairs: 0
canary:
  require_lower_bound_below_claimed: true
signoff:
  roles: [Data steward]
overrides:
  allowed: true
"""

#: Fast synthesizer and audit settings for a 2-chromosome, 240-mouse cohort (tuned on the
#: simulator, never on private data).
FAST = {
    "synth": {
        "pretrain_steps": 60,
        "finetune_steps": 10,
        "structure_steps": 20,
    },
    "audit": {"n_bootstrap": 50, "max_snps": 2000, "max_snps_kinship": 4000},
}


@pytest.fixture(scope="module")
def small_cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("release")
    sim = simulate(SimConfig.small(seed=5, n=240, n_public=120))
    write_cohort(sim.cohort, root / "cohort", "parker")
    assert sim.public is not None
    write_cohort(sim.public, root / "public", "parker")
    (root / "lenient.yaml").write_text(LENIENT)
    config = {
        "pheno": "abBMD",
        "covariates": ["SW16"],
        "epsilon": 8,
        "seed": 2,
        "canaries": 20,
        "public_panel": str(root / "public"),
        "extra": FAST,
    }
    (root / "release.yaml").write_text(json.dumps(config))  # JSON is valid YAML
    return root


def _release(root: Path, out: str, policy: str, *extra: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "release",
            str(root / "cohort"),
            "--config",
            str(root / "release.yaml"),
            "--policy",
            policy,
            "--out",
            str(root / out),
            "--lifetime-db",
            str(root / "lifetime.sqlite"),
            "--cache-dir",
            str(root / "cache"),
            "--json",
            *extra,
        ],
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout, result.stderr


def test_release__approve_exports_a_bundle_that_verifies(small_cohort: Path) -> None:
    code, out, err = _release(small_cohort, "bundle", str(small_cohort / "lenient.yaml"))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["verdict"] == "APPROVE" and tuple(summary) == SUMMARY_KEYS
    assert 0 < summary["epsilon"] <= 8.0
    # the work folder `dpgenome export` takes, in the stage cache
    work = Path(summary["work_dir"])
    assert work.parent == small_cohort / "cache" and (work / "results.json").is_file()
    bundle = small_cohort / "bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    names = set(manifest["files"])
    assert {"dossier.html", "results.json", "policy.yaml"} <= names
    assert any(n.startswith("synthetic/") and n.endswith("geno.txt") for n in names)
    results = json.loads((bundle / "results.json").read_text())
    assert results["ledger"]["unit"] == "individual"
    # the lifetime ledger charges per individual: it knows the input's individuals
    assert (manifest["lifetime"]["unit"], manifest["lifetime"]["individuals"]) == (
        "individual",
        read_cohort(small_cohort / "cohort").n_samples,
    )
    assert results["cohort"]["n_input"] == manifest["lifetime"]["individuals"]
    # the cohort figures' real reference: the holdout against the members, aggregates only
    baseline = results["fidelity"]["holdout_baseline"]
    assert baseline["n"] == results["split"]["n_holdout"]
    assert 0.5 < baseline["allele_frequency_correlation"] <= 1
    assert results["fidelity"]["gwas"]["models"]["real"].startswith("linear")
    # the suite fixes the DP noise (tests/conftest.py); a release says so
    assert "DPGENOME_NOISE_SEED=seed" in results["synthesis"]["noise_source"]
    assert results["audit"]["canary"]["epsilon_lower_bound"] <= results["ledger"]["epsilon"]
    # the configuration recorded is the synthesis's: a later export of the same results
    # would find this run's out, policy, override and ledger stale; the panel is hashed
    config = results["provenance"]["config"]
    assert config == manifest["config"] and config["public_panel"] and config["epsilon"] == 8
    assert not {"out", "policy", "override_reason", "signer", "lifetime_db"} & set(config)
    panel = results["provenance"]["public_panel_files"]
    assert sorted(panel) == sorted(p.name for p in (small_cohort / "public").iterdir())
    assert all(len(digest) == 64 for digest in panel.values())
    # who ran it, for the signers
    run_by = results["provenance"]["run_by"]
    assert run_by["user"] and run_by["host"] == socket.gethostname()
    assert f"on host <code>{run_by['host']}</code>" in (bundle / "dossier.html").read_text()

    runner = CliRunner()
    ok = runner.invoke(main, ["verify", str(bundle)])
    assert ok.exit_code == 0, ok.output
    tampered = small_cohort / "bundle-tampered"  # a copy: later tests export the bundle
    shutil.copytree(bundle, tampered)
    geno = tampered / "synthetic" / "geno.txt"
    data = bytearray(geno.read_bytes())
    data[-2] = ord("1") if data[-2] != ord("1") else ord("0")
    geno.write_bytes(bytes(data))
    bad = runner.invoke(main, ["verify", str(tampered)])
    assert bad.exit_code != 0
    assert "geno.txt" in bad.output + bad.stderr


def test_release__policy_change_reuses_training_and_spends_nothing(small_cohort: Path) -> None:
    """Re-running with another policy re-renders: no retraining, no new lifetime entry."""
    code, out, err = _release(small_cohort, "bundle-again", str(small_cohort / "lenient.yaml"))
    assert code == 0, err
    assert json.loads(out)["reused_cache"] is True
    with sqlite3.connect(small_cohort / "lifetime.sqlite") as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        counts = {t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}
    # one release, and one keyed token per individual of the input (per-individual budget)
    assert (counts["releases"], counts["cohorts"]) == (1, 1), counts
    assert counts["members"] == read_cohort(small_cohort / "cohort").n_samples, counts


def test_export__a_release_work_directory_is_the_same_release(small_cohort: Path) -> None:
    """`dpgenome export` of a release's work directory packs the synthetic cohort as release
    does (it packed the cache's own records too) and is the same lifetime entry."""
    first = json.loads((small_cohort / "bundle" / "manifest.json").read_text())
    (work,) = [p.parent for p in (small_cohort / "cache").glob("*/synthetic.fingerprint")]
    out = small_cohort / "bundle-export"
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(work),
            "--policy",
            str(small_cohort / "lenient.yaml"),
            "--out",
            str(out),
            "--lifetime-db",
            str(small_cohort / "lifetime.sqlite"),
        ],
    )
    assert result.exit_code == 0, result.output
    again = json.loads((out / "manifest.json").read_text())
    assert sorted(again["files"]) == sorted(first["files"])
    assert again["release_id"] == first["release_id"]
    # the bundle's results name the synthetic cohort it holds, and that fixes the id:
    # exporting the bundle itself again is the same release too
    named = json.loads((small_cohort / "bundle" / "results.json").read_text())["synthesis"]
    assert named["synthetic_fingerprint"] == (work / "synthetic.fingerprint").read_text()
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(small_cohort / "bundle"),
            "--policy",
            str(small_cohort / "lenient.yaml"),
            "--out",
            str(small_cohort / "bundle-reexport"),
            "--lifetime-db",
            str(small_cohort / "lifetime.sqlite"),
        ],
    )
    assert result.exit_code == 0, result.output
    reexport = json.loads((small_cohort / "bundle-reexport" / "manifest.json").read_text())
    assert reexport["release_id"] == first["release_id"]
    with sqlite3.connect(small_cohort / "lifetime.sqlite") as db:
        assert db.execute("select count(*) from releases").fetchone()[0] == 1


def test_release__reused_training_is_exported_in_the_formats_asked(small_cohort: Path) -> None:
    """The cache holds the synthetic cohort in the first run's format: a re-run asking for
    others writes the same cohort in those (it bundled the cached files before), and a
    PLINK-only cache keeps the exact dosages for a later Parker or VCF run. The same synthetic
    cohort in another format is the same release: one lifetime entry (it was counted again)."""
    lenient = str(small_cohort / "lenient.yaml")
    assert _release(small_cohort, "bundle-parker", lenient)[0] == 0
    code, out, err = _release(small_cohort, "bundle-plink", lenient, "--format", "plink")
    assert code == 0, err
    assert json.loads(out)["reused_cache"] is True
    names = set(json.loads((small_cohort / "bundle-plink" / "manifest.json").read_text())["files"])
    assert "synthetic/synthetic.bed" in names and not any(n.endswith("geno.txt") for n in names)
    plink = read_cohort(small_cohort / "bundle-plink" / "synthetic")
    parker = read_cohort(small_cohort / "bundle-parker" / "synthetic")
    np.testing.assert_array_equal(plink.dosages, np.rint(parker.dosages))  # .bed: hard calls
    # and back: the exact dosages again, from the Parker copy the cache kept
    assert _release(small_cohort, "bundle-parker-2", lenient)[0] == 0
    again = read_cohort(small_cohort / "bundle-parker-2" / "synthetic")
    np.testing.assert_array_equal(again.dosages, parker.dosages)
    assert list(plink.sample_ids) == list(parker.sample_ids)
    assert CliRunner().invoke(main, ["verify", str(small_cohort / "bundle-plink")]).exit_code == 0
    bundles = ("bundle", "bundle-parker", "bundle-plink", "bundle-parker-2")
    ids = {
        json.loads((small_cohort / b / "manifest.json").read_text())["release_id"] for b in bundles
    }
    assert len(ids) == 1, ids
    with sqlite3.connect(small_cohort / "lifetime.sqlite") as db:
        rows = db.execute("select release_id, status from releases").fetchall()
    assert rows == [(ids.pop(), "exported")], rows


@pytest.mark.parametrize("damage", ["results", "formats"])
def test_release__a_damaged_cache_entry_is_named_with_its_remedy(
    small_cohort: Path, tmp_path: Path, damage: str
) -> None:
    """A cached release whose results.json was emptied, or whose format record went missing
    (a write killed half-way), crashed every re-run with a KeyError or FileNotFoundError
    traceback: the entry is named as damaged, with how to recover, exit 2."""
    lenient = str(small_cohort / "lenient.yaml")
    assert _release(small_cohort, f"bundle-before-{damage}", lenient)[0] == 0
    cache = tmp_path / "cache"
    shutil.copytree(small_cohort / "cache", cache)
    (entry,) = [p for p in cache.iterdir() if (p / "results.json").is_file()]
    if damage == "results":
        (entry / "results.json").write_text("{}")
    else:
        (entry / "synthetic.formats.json").unlink()
    result = CliRunner().invoke(
        main,
        [
            "release",
            str(small_cohort / "cohort"),
            "--config",
            str(small_cohort / "release.yaml"),
            "--policy",
            lenient,
            "--out",
            str(tmp_path / "out"),
            "--lifetime-db",
            str(tmp_path / "l.sqlite"),
            "--cache-dir",
            str(cache),
        ],
    )
    assert result.exit_code == 2, result.output
    assert f"{entry}: the cached release is damaged (" in result.output
    assert "remove this folder to train again" in result.output
    assert not (tmp_path / "out").exists()


def test_ingest__the_lifetime_key_is_the_input_individuals(
    small_cohort: Path, tmp_path: Path
) -> None:
    """The same people released with other covariates, without the panel, or read from
    another format share one lifetime budget (the key was the QC'd analysis subset's content,
    so each of these started again at zero); other people are another key."""
    base = {"cohort": str(small_cohort / "cohort"), "policy": "x", "out": "x"}
    variants = [
        {"pheno": "abBMD", "covariates": ("SW16",), "public_panel": str(small_cohort / "public")},
        {"pheno": "abBMD", "public_panel": str(small_cohort / "public")},
        {"pheno": "abBMD", "covariates": ("SW16",)},
    ]
    ingested = [ingest(ReleaseConfig(**{**base, **kw})) for kw in variants]
    assert len({i.cohort.fingerprint() for i in ingested}) == 3  # the analysis subsets differ
    raw = read_cohort(small_cohort / "cohort")
    write_cohort(raw, tmp_path / "plink", "plink")
    again = ingest(ReleaseConfig(**{**base, **variants[0], "cohort": str(tmp_path / "plink")}))
    assert {i.fingerprint for i in [*ingested, again]} == {individuals_fingerprint(raw.sample_ids)}
    others = raw.take_samples(np.arange(1, raw.n_samples))
    assert individuals_fingerprint(others.sample_ids) != ingested[0].fingerprint


def test_release__strict_policy_blocks_with_exit_3_and_nothing_written(small_cohort: Path) -> None:
    # epsilon 8 against strict's cap of 1, untrained: refused before any training
    fresh = small_cohort / "fresh-cache"
    code, out, err = _release(small_cohort, "blocked", "strict", "--cache-dir", str(fresh))
    assert code == 3
    assert "would block this release whatever it produced; nothing was trained" in err
    assert "privacy.max_epsilon: epsilon 8 asked for, at most 1 allowed" in err
    assert not (small_cohort / "blocked").exists() and not fresh.exists()
    summary = json.loads(out)
    assert summary["refused_before_training"] and summary["dossier"] is None
    assert set(SUMMARY_KEYS) < set(summary) and summary["epsilon"] is None  # pipelines read it
    assert summary["failing_rules"] == [
        "privacy.max_epsilon",
        "privacy.max_lifetime_epsilon",
        "privacy.min_holdout",
        "privacy.secure_mode",  # the suite fixes the noise, which turns secure mode off
    ]
    # an override the policy allows is not refused before training (issue 7's contract):
    # consortium blocks this holdout of under 100, and the release goes out overridden
    code, out, err = _release(
        small_cohort,
        "overridden",
        "consortium",
        "--cache-dir",
        str(fresh),
        "--override-reason",
        "pilot accepted by the board",
        "--signer",
        "Dr A",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["verdict"] == "BLOCK" and summary["override"]["signer"] == "Dr A"
    assert "privacy.min_holdout" in summary["failing_rules"]
    # trained already (the cache of the other tests' runs): the whole gate, and its dossier;
    # the shipped policy by its bare name (export read the name as a file and crashed)
    _release(small_cohort, "approved-first", str(small_cohort / "lenient.yaml"))
    code, out, err = _release(small_cohort, "blocked", "strict")
    assert code == 3
    assert not (small_cohort / "blocked").exists()
    assert "FAIL" in err and "dossier" in err
    # --json still prints the summary of the blocked release: no bundle, the failing rules,
    # the explanatory dossier
    summary = json.loads(out)
    assert summary["verdict"] == "BLOCK" and summary["bundle"] is None
    assert summary["failing_rules"] and all(r in err for r in summary["failing_rules"])
    assert Path(summary["dossier"]).is_file()


def _rehash(bundle: Path, name: str) -> None:
    """Re-hash ``name`` in an unsigned bundle's manifest, as anyone who can write to it can."""
    import hashlib

    manifest = json.loads((bundle / "manifest.json").read_text())
    data = (bundle / name).read_bytes()
    manifest["files"][name] |= {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1))


def test_verify_cohort__recomputes_every_audit_and_fidelity_figure(small_cohort: Path) -> None:
    """`verify --cohort`: an auditor holding the real cohort recomputes results.json's audit
    and fidelity figures from it and the bundle's synthetic cohort; a figure rewritten with
    its hash (which plain verify cannot see in an unsigned bundle), a changed synthetic
    file, or another cohort is reported with exit 2."""
    code, _, err = _release(small_cohort, "rechecked", str(small_cohort / "lenient.yaml"))
    assert code == 0, err
    runner = CliRunner()
    bundle = small_cohort / "rechecked"
    args = ["verify", str(bundle), "--cohort", str(small_cohort / "cohort")]
    args += ["--public-panel", str(small_cohort / "public")]
    ok = runner.invoke(main, [*args, "--json"])
    assert ok.exit_code == 0, ok.output
    again = json.loads(ok.stdout)["recheck"]
    assert again["ok"] and again["figures_checked"] > 1000 and again["synthetic_format"] == "parker"
    assert set(again["skipped"]) == {"audit.canary", "audit.attacks.shadow", "audit.timings_s"}
    text = runner.invoke(main, args).stdout
    assert "figures, 0 differ" in text and "not recomputed: audit.canary" in text
    # a figure an older version recorded and this one no longer computes: named, not a
    # difference (stop 61 retired the members' 90th percentile of missing-call shares)
    results = json.loads((bundle / "results.json").read_text())
    results["fidelity"]["missing_calls"]["real"]["individual_share_p90"] = 0.0
    (bundle / "results.json").write_text(json.dumps(results, indent=1))
    _rehash(bundle, "results.json")
    old = runner.invoke(main, [*args, "--json"])
    assert old.exit_code == 0, old.output
    skipped = json.loads(old.stdout)["recheck"]["skipped"]
    assert "no longer computed" in skipped["fidelity.missing_calls.real.individual_share_p90"]

    changed = small_cohort / "changed-cohort"
    shutil.copytree(small_cohort / "cohort", changed)
    table = pd.read_csv(changed / "pheno.csv", dtype=str, keep_default_na=False)
    table.loc[len(table) - 1, "SW16"] = "1" if table["SW16"].iloc[-1] != "1" else "0"
    table.to_csv(changed / "pheno.csv", index=False)  # one covariate of one individual
    other = runner.invoke(main, [*args[:3], str(changed), *args[4:]])
    assert other.exit_code == 2
    assert "is not the cohort this release was made from" in other.stderr
    # a cohort of other SNPs: named as another cohort, not by the panel SNPs it lacks
    tiny = Path(__file__).resolve().parent / "data" / "tiny" / "parker"
    unrelated = runner.invoke(main, [*args[:3], str(tiny), *args[4:]])
    assert unrelated.exit_code == 2
    assert "is not the cohort this release was made from" in unrelated.stderr
    assert "public panel" not in unrelated.stderr

    results = json.loads((bundle / "results.json").read_text())
    recorded = results["audit"]["attacks"]["dcr"]["auc"]
    results["audit"]["attacks"]["dcr"]["auc"] = round(recorded - 0.05, 4)
    results["fidelity"]["gwas"]["loci"]["spurious"] += 1
    (bundle / "results.json").write_text(json.dumps(results, indent=1))
    _rehash(bundle, "results.json")
    assert runner.invoke(main, ["verify", str(bundle)]).exit_code == 0  # hashes only
    bad = runner.invoke(main, args)
    assert bad.exit_code == 2
    assert f"audit.attacks.dcr.auc: recorded {round(recorded - 0.05, 4)}, recomputed" in bad.stdout
    assert "fidelity.gwas.loci.spurious: recorded" in bad.stdout

    geno = bundle / "synthetic" / "geno.txt"
    lines = geno.read_text().splitlines()
    lines[1] = lines[1].replace(" 0 ", " 2 ", 3)  # one synthetic genotype row changed
    geno.write_text("\n".join(lines) + "\n")
    _rehash(bundle, "synthetic/geno.txt")
    bad = runner.invoke(main, args)
    assert bad.exit_code == 2  # plain verify sees it: the files are not the described cohort
    assert "synthetic: its synthetic cohort is not the one results.json describes" in bad.stdout
    assert "not recomputed: the bundle does not verify" in bad.stdout

    assert runner.invoke(main, [*args[:2], "--public-panel", "x"]).exit_code == 2


@pytest.mark.slow
def test_demo__small_simulated_cohort_prints_a_dossier(tmp_path: Path) -> None:
    """`dpgenome demo` end to end (2 chromosomes, 300 mice): a verdict and a dossier; again
    on two sub-colonies with a stratified trait and ancestry across chromosomes (chosen by
    ``--ancestry-pcs auto``, the default, from the panel), whose ledger
    carries the ``ancestry`` histogram and the ``ancestry-phenotype`` moments (and
    ``--ancestry-pcs`` without a panel, or a colony effect per sub-colony missing, is refused
    at once)."""
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        main,
        ["demo", "--out", str(out), "--n", "300", "--public", "200", "--chromosomes", "5,11"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    verdict = next(line for line in result.stdout.splitlines() if line.startswith("verdict:"))
    assert verdict.split()[1] in {"APPROVE", "BLOCK"}
    dossier = Path(result.stdout.split("dossier: ")[1].split()[0])
    assert dossier.is_file() and "Synthetic cohort release dossier" in dossier.read_text()
    # --json prints the summary whichever the verdict (a BLOCK is still exit 0 in the demo)
    again = CliRunner().invoke(
        main,
        [
            "demo",
            "--out",
            str(tmp_path / "again"),
            "--n",
            "300",
            "--public",
            "200",
            "--chromosomes",
            "5,11",
            "--json",
        ],
        catch_exceptions=False,
    )
    assert again.exit_code == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["verdict"] == verdict.split()[1]
    assert (summary["bundle"] is None) == (summary["verdict"] == "BLOCK")
    args = ["demo", "--n", "300", "--public", "200", "--chromosomes", "5,11"]
    structured = CliRunner().invoke(
        main,
        [
            *args,
            *("--out", str(tmp_path / "s"), "--colonies", "2", "--colony-effects", "0,1"),
            "--json",  # --ancestry-pcs auto: the panel's genome halves share the colonies
        ],
        catch_exceptions=False,
    )
    assert structured.exit_code == 0, structured.stderr
    summary = json.loads(structured.stdout)
    html = Path(summary["dossier"]).read_text()
    assert ">ancestry<" in html, "the ledger table names the ancestry histogram"
    assert ">ancestry-phenotype<" in html, "and the phenotype's moments with the scores"
    text = " ".join(html.split())
    assert "4 principal axes of the public panel: chosen automatically from the public" in text
    refused = CliRunner().invoke(
        main, ["demo", "--out", str(tmp_path / "r"), "--public", "0", "--ancestry-pcs", "4"]
    )
    assert refused.exit_code == 2 and "public panel" in refused.output
    one = ["--colonies", "2", "--colony-effects", "1"]
    refused = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "r"), *one])
    assert refused.exit_code == 2 and "colony_effects" in refused.output
    assert not (tmp_path / "r").exists()


def test_demo__bad_input_leaves_nothing_half_written(tmp_path: Path) -> None:
    """A bad policy file or --ancestry-pcs on one chromosome is refused before the
    simulation; a release that fails after it (12 mice: a constant covariate among the
    members) removes what the demo wrote. Exit 2 each time, and no demo folder."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nname: bad\nfidelity:\n  max_lambda_gc_excess: -1\n")
    out = tmp_path / "d"
    small = ["demo", "--out", str(out), "--n", "12", "--public", "20", "--chromosomes", "19"]
    for extra, said in (
        (["--policy", str(bad)], "bad.yaml, line 4, key fidelity.max_lambda_gc_excess"),
        (["--ancestry-pcs", "2"], "needs at least two chromosomes"),
        ([], "rank-deficient"),
    ):
        res = CliRunner().invoke(main, [*small, *extra])
        assert res.exit_code == 2 and said in res.output, res.output
        assert not out.exists()
    out.mkdir()  # an empty folder given: emptied again, kept
    assert CliRunner().invoke(main, small).exit_code == 2
    assert out.is_dir() and not any(out.iterdir())


def test_code_digest__changes_with_any_source_file(tmp_path: Path) -> None:
    """The stage cache's key holds a digest of the package's sources, so a cached synthesis
    from other code is not reused: one changed byte in any module changes it."""
    from dpgenome.release import code_digest

    (tmp_path / "audit").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "audit" / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("not code\n")
    before = code_digest.__wrapped__(tmp_path)
    assert before == code_digest.__wrapped__(tmp_path) and len(before) == 16
    (tmp_path / "notes.txt").write_text("still not code\n")
    assert code_digest.__wrapped__(tmp_path) == before
    (tmp_path / "audit" / "b.py").write_text("y = 3\n")
    assert code_digest.__wrapped__(tmp_path) != before
    assert code_digest() == code_digest()  # the package's own, computed once


def synth_config_of(config):
    from dpgenome.release import synth_config

    return synth_config(config)


def test_release_config__rejects_bad_values_before_any_work(tmp_path: Path) -> None:
    """Checked when the configuration is read, not after minutes of synthesis: an unknown
    output format (it failed in the export stage) and the other typed keys."""
    from dpgenome.config import ReleaseConfig
    from dpgenome.errors import ConfigError

    base = {"cohort": "c", "pheno": "abBMD", "policy": "p.yaml", "out": "o"}
    assert ReleaseConfig.from_mapping({**base, "formats": ["plink", "vcf"]}).formats == (
        "plink",
        "vcf",
    )
    for key, value, fragment in (
        ("formats", ["plink", "bogus"], "unknown format 'bogus'; choose from parker, plink, vcf"),
        ("canaries", "many", "expected an integer"),
        ("epsilon", "abc", "epsilon must be a positive number"),
        ("holdout_fraction", 1.5, "expected a number between 0 and 1"),
        ("holdout_fraction", True, "expected a number between 0 and 1"),
        ("holdout_fraction", "a fifth", "expected a number between 0 and 1"),
        ("epsilon", -1, "key 'epsilon': epsilon must be positive"),
        ("delta", 2, r"key 'delta': delta must be 'auto' or a number in \(0, 1\)"),
        ("delta", True, "delta must be 'auto' or a number"),
        ("shadow", 2, "key 'shadow': expected 0 .not run. or at least 4 targets"),
        ("canaries", -3, "at least 10 canaries, got -3"),
        ("n_synthetic", 0, "expected a positive number of records"),
        ("ancestry_pcs", -1, "expected 'auto', 0 .off. or a number of principal axes"),
        ("ancestry_pcs", "four", "expected 'auto' or an integer"),
        ("extra", {"synth": {"ancestry_clusters": 0}}, "key 'extra': .* ancestry_clusters >= 1"),
        ("extra", {"synth": {"ancestry_weight": -1.0}}, "ancestry_weight must be finite and > 0"),
        ("ancestry_pcs", 4, "key 'ancestry_pcs' .4. needs 'public_panel'"),
        ("genotype_missingness", "yes", "key 'genotype_missingness': expected true/false"),
        ("extra", {"synth": {"genotype_missingness": True}}, "set by the release's own key"),
    ):
        with pytest.raises(ConfigError, match=fragment):
            ReleaseConfig.from_mapping({**base, key: value}, source="r.yaml")
    # the synthesizer's ranges are checked at the release's own epsilon: no selection is
    # needed without formal privacy
    free = {**base, "epsilon": "inf", "extra": {"synth": {"select_fraction": 0}}}
    assert ReleaseConfig.from_mapping(free).extra == {"synth": {"select_fraction": 0}}
    with pytest.raises(ConfigError, match=r"r.yaml, line 5: key 'extra': selection needs"):
        ReleaseConfig.from_mapping({**free, "epsilon": 8}, source="r.yaml", lines={"extra": 5})
    with_panel = {**base, "public_panel": "p", "ancestry-pcs": 4}  # the flag's spelling too
    assert synth_config_of(ReleaseConfig.from_mapping(with_panel)).ancestry_pcs == 4
    missing = ReleaseConfig.from_mapping({**base, "genotype-missingness": True})
    assert synth_config_of(missing).genotype_missingness is True
    assert synth_config_of(ReleaseConfig.from_mapping(base)).genotype_missingness is False
    # a YAML null leaves a key at its default (it reached the synthesizer as None), and a
    # required key given as null is missing
    unset = ReleaseConfig.from_mapping({**base, "ancestry_pcs": None, "seed": None, "lmm": None})
    assert (unset.ancestry_pcs, unset.seed, unset.lmm) == ("auto", 0, False)
    # auto (chosen from the panel) needs no panel: without one it is off
    assert ReleaseConfig.from_mapping({**base, "ancestry_pcs": "auto"}).ancestry_pcs == "auto"
    with pytest.raises(ConfigError, match=r"missing required key\(s\): cohort"):
        ReleaseConfig.from_mapping({**base, "cohort": None})
    result = CliRunner().invoke(
        main,
        [
            "release",
            "c",
            "--pheno",
            "abBMD",
            "--policy",
            "internal",
            "--format",
            "bogus",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2 and "unknown format 'bogus'" in result.output, result.output
    assert not (tmp_path / "r").exists()
    assert ReleaseConfig.from_mapping({**base, "holdout_fraction": 0.3}).holdout_fraction == 0.3
    # extra settings are typed against the configuration's fields, nested ones too
    from dpgenome.release import audit_config, synth_config

    extra = {"synth": {"pretrain_steps": 10, "association": {"n_components": 4}}}
    cfg = synth_config(ReleaseConfig.from_mapping({**base, "extra": extra}))
    assert (cfg.pretrain_steps, cfg.association.n_components) == (10, 4)
    for bad, fragment in (
        ({"synth": {"pretrain_steps": "abc"}}, "extra.synth.pretrain_steps: expected int"),
        ({"synth": {"pretrain_lr": True}}, "extra.synth.pretrain_lr: expected float"),
        ({"synth": {"association": {"n_comp": 4}}}, "extra.synth.association.n_comp: no such"),
        ({"synth": {"association": 4}}, "extra.synth.association: expected a mapping"),
        ({"audit": {"n_bootstrap": 2.5}}, "extra.audit.n_bootstrap: expected int"),
        ({"synthesis": {"epochs": 3}}, "extra.synthesis: no such section; valid: audit, synth"),
        # the ledger would follow it while the recorded configuration says the top-level key
        ({"synth": {"epsilon": 6.0}}, "extra.synth.epsilon: set by the release's own key 'ep"),
        ({"audit": {"canaries": 9}}, "extra.audit.canaries: set by the release's own key 'ca"),
        ({"synth": {"ancestry_pcs": 2}}, "extra.synth.ancestry_pcs: set by the release's own"),
    ):  # found when the configuration is read, not after training
        with pytest.raises(ConfigError, match=fragment):
            ReleaseConfig.from_mapping({**base, "extra": bad})
    assert audit_config(ReleaseConfig.from_mapping({**base, "extra": {}})).n_bootstrap > 0
    args = ["release", "c", "--pheno", "abBMD", "--policy", "internal", "--out", "r"]
    result = CliRunner().invoke(main, [*args, "--holdout-fraction", "0"])
    assert result.exit_code == 2, result.output
    assert "key 'holdout_fraction': expected a number between 0 and 1" in result.output


def test_release_config_file__errors_name_the_line(tmp_path: Path) -> None:
    config = tmp_path / "r.yaml"
    config.write_text("cohort: c\npheno: abBMD\nepsilonn: 3\npolicy: internal\nout: o\n")
    result = CliRunner().invoke(main, ["release", "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}, line 3, key epsilonn: unknown key(s) epsilonn" in result.output
    config.write_text("cohort: c\npheno: abBMD\npolicy: internal\nout: o\ncanaries: many\n")
    result = CliRunner().invoke(main, ["release", "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}, line 5: key 'canaries': expected an integer" in result.output
    # a value given on the command line is not placed on the file's line
    result = CliRunner().invoke(main, ["release", "--config", str(config), "--canaries", "3"])
    assert "line 5" not in result.output
    # a key given twice is refused (YAML readers keep the last one silently)
    config.write_text("cohort: c\npheno: abBMD\nepsilon: 3\npolicy: internal\nepsilon: 30\n")
    result = CliRunner().invoke(main, ["release", "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}, line 5: not valid YAML: key 'epsilon' appears twice" in result.output
    config.write_text("cohort: c\npheno: abBMD\npolicy: internal\nout: o\nextra:\n  nope: 1\n")
    result = CliRunner().invoke(main, ["release", "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}, line 5: key 'extra': extra.nope: no such section" in result.output


def test_release_config_file__keys_spelt_as_the_flags(tmp_path: Path) -> None:
    """A configuration file may spell a key as its flag (covar, holdout-fraction, format, n);
    one key in two spellings is refused on its line; a flag still overrides the file."""
    from dpgenome.config import ReleaseConfig, canonical_keys
    from dpgenome.errors import ConfigError

    data = {
        "cohort": "c",
        "pheno": "abBMD",
        "policy": "internal",
        "out": "o",
        "covar": ["SW16"],
        "holdout-fraction": 0.3,
        "format": "plink",
        "n": 500,
    }
    config = ReleaseConfig.from_mapping(data)
    assert config.covariates == ("SW16",) and config.holdout_fraction == 0.3
    assert config.formats == ("plink",) and config.n_synthetic == 500
    with pytest.raises(ConfigError, match="'covariates' is given twice, as 'covar' and as"):
        canonical_keys({"covar": "a", "covariates": "b"}, {"covariates": 7})
    path = tmp_path / "r.yaml"
    path.write_text("cohort: c\npheno: abBMD\ncovar: SW16\npolicy: internal\ncovariates: X\n")
    result = CliRunner().invoke(main, ["release", "--config", str(path)])
    assert result.exit_code == 2
    assert f"{path}, line 5, key covariates: key 'covariates' is given twice" in result.output
    path.write_text("cohort: c\npheno: abBMD\ncovar: SW16\npolicy: internal\nout: o\n")
    result = CliRunner().invoke(main, ["release", "--config", str(path), "--covar", "SW4"])
    assert "given twice" not in result.output  # the flag overrides the file's spelling


def test_release__an_unwritable_out_fails_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = CliRunner().invoke(
        main,
        [
            "release",
            str(tmp_path),
            "--pheno",
            "abBMD",
            "--policy",
            "internal",
            "--out",
            str(blocker / "r"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "cannot create the output directory" in result.output and "is a file" in result.output


@pytest.mark.parametrize("option", ["--cache-dir", "--lifetime-db"])
def test_release__an_unusable_cache_or_ledger_fails_before_training(
    tmp_path: Path, option: str
) -> None:
    """A stage cache or a lifetime ledger under a file was found after minutes of training
    (a NotADirectoryError traceback; 'writing the bundle failed' for the ledger): both are
    checked after ingest, before any training, naming the path."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    args = ["release", str(TINY), "--pheno", "abBMD", "--covar", "SW16", "--policy", "internal"]
    others = {"--cache-dir": tmp_path / "c", "--lifetime-db": tmp_path / "l.sqlite"}
    others[option] = blocker / "below"
    for name, path in others.items():
        args += [name, str(path)]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    what = "stage cache folder" if option == "--cache-dir" else "lifetime ledger"
    assert f"cannot create the {what}: {blocker} is a file" in result.output
    assert "synthesize" not in result.output and not (tmp_path / "out").exists()


def test_ingest__warns_of_phenotype_values_trained_as_missing(tmp_path: Path, caplog) -> None:
    """A release (and a sweep) ingests once: the members' rounds outside the public CFW
    schema's, which the synthesizer trains on as missing, are a warning there (count and
    reason, no value); the other columns are clean and give none."""
    cohort = read_cohort(Path(__file__).parent / "data" / "tiny" / "parker")
    cohort.phenotypes.loc[::3, "round"] = "SW99"
    write_cohort(cohort, tmp_path / "c", "parker")
    config = ReleaseConfig(cohort=str(tmp_path / "c"), pheno="BMD", policy="x", out="x")
    with caplog.at_level(logging.WARNING):
        ing = ingest(config)
    n_bad = int((ing.members.phenotypes["round"] == "SW99").sum())
    assert n_bad > 0
    warned = [r.getMessage() for r in caplog.records if "phenotype column" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(
        f"phenotype column 'round': {n_bad} observed value(s) have a level not in the schema "
        "(type from public CFW table): they are trained on as missing"
    )
    assert "SW99" not in caplog.text


def test_release__pheno_schema_is_read_before_any_work_and_keys_the_cache(
    small_cohort: Path, tmp_path: Path
) -> None:
    from dpgenome.config import ReleaseConfig
    from dpgenome.release import cache_key, ingest, synth_config

    schema = tmp_path / "schema.yaml"
    schema.write_text("columns:\n  bw1: {type: continuous, range: [0, 60]}\n")
    base = ReleaseConfig(
        cohort=str(small_cohort / "cohort"),
        pheno="abBMD",
        covariates=("SW16",),
        policy="internal",
        out=str(tmp_path / "o"),
        public_panel=str(small_cohort / "public"),
    )
    declared = replace(base, pheno_schema=str(schema))
    ing = ingest(declared)
    assert synth_config(declared).phenotypes.declared is not None
    assert synth_config(declared).record()["phenotypes"]["declared"]["source"] == "schema.yaml"
    assert cache_key(ing, declared) != cache_key(ing, base)

    # the members break the declaration: exit 2 naming the file and column, nothing written
    schema.write_text("columns:\n  round: binary\n")
    code, _out, err = _release(
        small_cohort, "schema-bundle", "internal", "--pheno-schema", str(schema)
    )
    assert code == 2
    assert (
        "pheno.csv" in err
        and "column round: " in err
        and "text value(s) in a column declared binary" in err
    )
    assert not (small_cohort / "schema-bundle").exists()


def test_sweep__a_failing_point_leaves_no_out_it_created(tmp_path: Path) -> None:
    """The sweep writes its points' cohorts into --out as it goes: a failure removes an --out
    the sweep created, and leaves one that was there before."""
    args = ["sweep", str(tmp_path / "no-such-cohort"), "--pheno", "abBMD", "--epsilons", "8"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "s").exists()
    (tmp_path / "kept").mkdir()
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "kept")])
    assert result.exit_code == 2 and (tmp_path / "kept").is_dir()


def test_sweep__refuses_a_folder_of_other_files_and_a_panel_without_cohort(
    tmp_path: Path,
) -> None:
    """An --out holding other files was silently written into (its sweep.html replaced);
    --public-panel without a COHORT was silently ignored. Both exit 2 before any work; a
    previous sweep's folder is still reused."""
    args = ["sweep", str(TINY), "--pheno", "abBMD", "--epsilons", "8"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "notes")])
    assert result.exit_code == 2, result.output
    assert "the sweep folder exists and holds other files" in result.output
    assert "recorded in no lifetime ledger" in result.output  # the note on a COHORT
    assert (tmp_path / "notes" / "notes.txt").read_text() == "mine"
    panel = ["sweep", "--public-panel", str(tmp_path), "--out", str(tmp_path / "p")]
    result = CliRunner().invoke(main, panel)
    assert result.exit_code == 2 and "--public-panel applies to a COHORT given" in result.output
    from dpgenome.sweep import _previous_sweep

    (tmp_path / "old" / "cohort-n400-seed1").mkdir(parents=True)
    (tmp_path / "old" / "sweep.html").write_text("")
    assert _previous_sweep(tmp_path / "old") and not _previous_sweep(tmp_path / "notes")


def _tiny_with(tmp_path: Path, column: str, values: dict[str, str]) -> Path:
    """The tiny Parker cohort at ``tmp_path / "cohort"`` with ``column`` set per sample id."""
    return tiny_with(tmp_path / "cohort", column, values)


def test_release__a_constant_covariate_exits_2_at_ingest_naming_it(tmp_path: Path) -> None:
    """A covariate constant among the analysis samples made the design [intercept +
    covariates] rank-deficient, found by the GWAS of the fidelity stage after training and
    audits, naming no covariate: now exit 2 at ingest naming pheno.csv and the covariate,
    nothing written."""
    d = _tiny_with(tmp_path, "SW16", {"*": "0"})
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["release", str(d), "--pheno", "abBMD", "--covar", "SW16", "--epsilon", "8"]
    args += ["--policy", "consortium", "--out", str(out), "--cache-dir", str(cache)]
    result = CliRunner().invoke(main, [*args, "--lifetime-db", str(tmp_path / "l.sqlite")])
    assert result.exit_code == 2, result.output
    assert (
        f"{d / 'pheno.csv'}, column SW16: the design [intercept + covariates] is "
        "rank-deficient: covariate SW16 is constant among the 34 analysis samples (abBMD and "
        "every covariate observed): drop SW16 from the covariates (--covar)"
    ) in result.output
    assert "synthesize ..." not in result.output
    assert not out.exists() and not cache.exists() and not (tmp_path / "l.sqlite").exists()


def test_ingest__collinear_covariates_are_named_for_the_analysis_samples_and_the_members(
    tmp_path: Path,
) -> None:
    """Two covariates one a linear function of the other, and a covariate that varies among
    the analysis samples but not among the training members (its other value is only in the
    audit holdout): CohortError at ingest naming the file and the covariates."""
    from dpgenome.errors import CohortError

    base = {"pheno": "abBMD", "policy": "x", "out": "x", "epsilon": 8.0}
    ids = [str(i) for i in read_cohort(TINY).sample_ids]
    dose = _tiny_with(tmp_path / "a", "dose", {i: str(k % 5) for k, i in enumerate(ids)})
    lines = (dose / "pheno.csv").read_text().splitlines()
    lines[0] += ",dose2"
    lines[1:] = [f"{row},{2 * int(row.split(',')[-1]) + 1}" for row in lines[1:]]
    (dose / "pheno.csv").write_text("\n".join(lines) + "\n")
    config = ReleaseConfig(cohort=str(dose), covariates=("dose", "bw", "dose2"), **base)
    with pytest.raises(CohortError) as err:
        ingest(config)
    assert (err.value.file, err.value.line, err.value.column) == (
        str(dose / "pheno.csv"),
        None,
        "dose2",
    )
    assert err.value.message.startswith(
        "the design [intercept + covariates] is rank-deficient: covariates dose and dose2 are "
        "collinear among the 31 analysis samples (abBMD and every covariate observed): drop "
        "one of dose and dose2 from the covariates (--covar)"
    )

    # a seed whose holdout holds one of the three SW16 mice: set the members' to 0
    for seed in range(100):
        ing = ingest(ReleaseConfig(cohort=str(TINY), covariates=("SW16",), seed=seed, **base))
        members = ing.members.phenotypes["SW16"].to_numpy()
        if 0 < members.sum() < ing.cohort.phenotypes["SW16"].sum():
            break
    lone = [str(i) for i in ing.members.sample_ids[members == 1]]
    flat = _tiny_with(tmp_path / "b", "SW16", dict.fromkeys(lone, "0"))
    with pytest.raises(CohortError) as err:
        ingest(ReleaseConfig(cohort=str(flat), covariates=("SW16",), seed=seed, **base))
    assert (err.value.file, err.value.column) == (str(flat / "pheno.csv"), "SW16")
    assert err.value.message == (
        "the design [intercept + covariates] is rank-deficient: covariate SW16 is constant "
        f"among the {ing.members.n_samples} training members (the analysis samples less the "
        "audit holdout): drop SW16 from the covariates (--covar)"
    )
    assert not [i for i in lone if i in str(err.value)]


def test_compute__a_synthetic_design_without_rank_is_named_before_the_audits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The members' design has full rank, the synthetic cohort's not (its SW16 lost the
    members' few 1s): the error says it is the synthetic cohort's design and names the
    covariate, before the audits (it was found by the fidelity stage's GWAS)."""
    from types import SimpleNamespace

    from dpgenome import release
    from dpgenome.errors import CohortError

    config = ReleaseConfig(
        cohort=str(TINY), pheno="abBMD", covariates=("SW16",), policy="x", out="x", epsilon=8.0
    )
    ing = ingest(config)
    pheno = ing.members.phenotypes.copy()
    pheno["SW16"] = 0.0
    synthetic = replace(ing.members, phenotypes=pheno)
    ledger = SimpleNamespace(to_dict=lambda delta: {"epsilon": 8.0, "delta": delta})
    config = config.resolve(ing.members.n_samples)
    done = SimpleNamespace(cohort=synthetic, ledger=ledger)
    monkeypatch.setattr(release, "synthesize", lambda *a, **k: done)
    monkeypatch.setattr(release, "run_audits", lambda *a, **k: pytest.fail("audited"))
    with pytest.raises(CohortError) as err:
        release.compute(ing, config, release.Progress())
    assert err.value.file is None
    assert err.value.message == (
        "the synthetic cohort's design [intercept + covariates] is rank-deficient: covariate "
        f"SW16 is constant among its {ing.members.n_samples} samples the GWAS comparison "
        "analyses (the members' "
        "design has full rank, checked at ingest: the synthesizer lost the covariate's "
        "variation, as a rare value can be lost at this epsilon): drop SW16 from the "
        "covariates (--covar)"
    )


def test_gwas_model__the_release_lmm_key_runs_the_mixed_model_on_both_sides() -> None:
    """``lmm: true`` in a release configuration was recorded and ignored (the fidelity stage
    always ran least squares); it now selects the LOCO mixed model."""
    cohort = read_cohort(TINY)
    assert gwas_model(False)(cohort, "BMD", ()).method.startswith("linear")
    mixed = gwas_model(True)(cohort, "BMD", ())
    assert mixed.method.startswith("lmm") and "LOCO" in mixed.method.upper()


def test_release_cli__secure_mode_flag_or_config_file(tmp_path: Path) -> None:
    """``--secure-mode`` reaches the synthesis; without the flag a configuration file's
    ``secure_mode: true`` stands (an absent flag is not a ``false``), and without either the
    default holds (off here: the tests fix the noise)."""
    from dpgenome.cli.release import _config_from
    from dpgenome.release import synth_config

    base = {"cohort": "c", "pheno": "abBMD", "policy": "internal", "out": "o"}
    flagged = _config_from({**base, "secure_mode": True}, None)
    assert flagged.secure_mode and synth_config(flagged).secure_mode
    assert not _config_from({**base, "secure_mode": None}, None).secure_mode
    config = tmp_path / "r.yaml"
    config.write_text("cohort: c\npheno: abBMD\npolicy: internal\nout: o\nsecure_mode: true\n")
    assert synth_config(_config_from({"secure_mode": None}, config)).secure_mode
    assert _config_from({**base, "secure_mode": False}, config).secure_mode is False


def test_ingest__the_synthetic_allele_order_is_public(tmp_path: Path) -> None:
    """A map read off the genotypes (minor allele first) is refused at ingest under DP,
    before any training; ``allele_order: sorted`` or a panel give a public order instead, and
    without formal privacy the input's order is kept. A bad value fails in the config."""
    from dpgenome.cohort import swap_alleles
    from dpgenome.errors import ConfigError, InputError

    tiny = read_cohort(TINY)
    minor = swap_alleles(tiny, np.flatnonzero(tiny.alt_frequency() > 0.5))
    write_cohort(minor, tmp_path / "c", "plink")
    base = {"cohort": str(tmp_path / "c"), "pheno": "abBMD", "policy": "x", "out": "x"}
    with pytest.raises(InputError, match="minor allele among these individuals") as err:
        ingest(ReleaseConfig(**base, epsilon=8.0))
    assert err.value.file is not None and err.value.file.endswith("cohort.bed")
    ing = ingest(ReleaseConfig(**base, epsilon=8.0, allele_order="sorted"))
    assert ing.allele_order == "sorted" and ing.allele_map is not None
    labels = ing.allele_map[["ref", "alt"]].astype(str)
    assert (labels["ref"] < labels["alt"]).all()
    assert ingest(ReleaseConfig(**base, epsilon=float("inf"))).allele_order == "input"
    with pytest.raises(ConfigError, match="allele_order"):
        ReleaseConfig.from_mapping({**base, "allele_order": "minor"})


def test_cache_key__depends_on_the_allele_order(tmp_path: Path) -> None:
    """A release re-run with another --allele-order reused the cached synthetic cohort in
    the first order (the key ignored it): the key now holds the order and the map it follows."""
    from dpgenome.release import cache_key

    base = {"cohort": str(TINY), "pheno": "abBMD", "policy": "x", "out": "x", "epsilon": 8.0}
    keys = {
        order: cache_key(ingest(cfg := ReleaseConfig(**base, allele_order=order)), cfg)
        for order in ("input", "sorted")
    }
    assert keys["input"] != keys["sorted"]


def test_write_work__another_runs_completed_entry_is_kept(tmp_path: Path) -> None:
    """Two fresh trainings of one configuration sharing a cache: the second to finish
    removed the first's entry, which the first could be reading for its export. A complete
    entry is now kept (the second run uses it, its own synthesis discarded); an incomplete
    one is replaced."""
    from dpgenome.release import _write_work
    from dpgenome.testing import toy_cohort

    first, _ = toy_cohort(0)
    second, _ = toy_cohort(1)
    work = tmp_path / "cache" / "key"
    assert _write_work(work, {"run": 1}, {}, first, ("parker",))
    assert not _write_work(work, {"run": 2}, {}, second, ("parker",))
    assert json.loads((work / "results.json").read_text()) == {"run": 1}
    assert [p.name for p in work.parent.iterdir()] == ["key"]  # no copy left behind
    (work / "results.json").unlink()  # incomplete: replaced
    assert _write_work(work, {"run": 3}, {}, second, ("parker",))
    assert json.loads((work / "results.json").read_text()) == {"run": 3}
