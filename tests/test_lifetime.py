"""The lifetime ledger: each individual's spending across releases, composed by the
releases' mechanisms (:mod:`dpgenome.lifetime`)."""

from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from scipy import optimize, stats

from dpgenome.accountant import Ledger
from dpgenome.cli import main
from dpgenome.errors import BudgetError, InputError, ReleaseBlocked
from dpgenome.export import export_bundle
from dpgenome.findings import fmt_claim
from dpgenome.lifetime import LifetimeLedger, individuals_fingerprint
from dpgenome.lifetime_compose import ReleaseBudget, compose, compose_replace_one
from dpgenome.paths import shipped_policy
from dpgenome.policy import Override
from dpgenome.verify import verify_bundle
from test_export import FINGERPRINT, data_files, export, mice, results

# ---------------------------------------------------------------------------- lifetime


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE releases (
    release_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, epsilon REAL, delta REAL NOT NULL,
    created_utc TEXT NOT NULL, policy TEXT NOT NULL, verdict TEXT NOT NULL,
    overridden INTEGER NOT NULL, status TEXT NOT NULL, bundle TEXT NOT NULL, pheno TEXT NOT NULL
);
INSERT INTO meta VALUES ('schema_version', '1');
"""


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


def test_lifetime_ledger__usable_from_its_own_folder_and_below(tmp_path: Path, monkeypatch) -> None:
    """An existing ledger's folder takes SQLite's journal: checked with the probe, not with
    the refusal of `--out .` (which refused a second release run beside its ledger with
    "is the current folder")."""
    below = tmp_path / "sub"
    below.mkdir()
    for where, path in ((tmp_path, "lifetime.sqlite"), (below, "../lifetime.sqlite")):
        monkeypatch.chdir(where)
        ledger = LifetimeLedger(path)
        ledger.check_writable()  # new, then existing
        ledger.record("fp", 1.0, 1e-6, f"r-{where.name}")
        LifetimeLedger(path).check_writable()
    assert len(LifetimeLedger(tmp_path / "lifetime.sqlite").releases()) == 2
