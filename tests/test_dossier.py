"""The dossier: self-contained HTML, aggregates only, every section a reader needs."""

from __future__ import annotations

import copy
import dataclasses
import functools
import gzip
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import markupsafe
import numpy as np
import pandas as pd
import pytest

from dpgenome import paths
from dpgenome.accountant import Ledger
from dpgenome.dossier import FIGURE_CAPTIONS, render_dossier
from dpgenome.errors import ConfigError, InputError
from dpgenome.findings import EvaluationContext, fmt_claim
from dpgenome.frontier import render_frontier
from dpgenome.paths import shipped_policy
from dpgenome.policy import Override, evaluate, load_policy, parse_policy
from dpgenome.svgcharts import _legend_frame, inline_svg, roc_svg

FIXTURES = Path(__file__).parent / "fixtures"
PHENO = Path(__file__).parents[1] / "src" / "dpgenome" / "data" / "pheno.csv.gz"
NONE_SPENT = EvaluationContext(0.0, 0.0, 0)
#: the demo's public-panel control (audit.public_control of a real run)
DEMO_PUBLIC_CONTROL = {
    "n_public": 1000,
    "n_snps": 10000,
    "dcr_auc_synthetic": 0.542097,
    "dcr_auc_public": 0.562954,
    "dcr_auc_excess": -0.020857,
    "dcr_auc_excess_ci": [-0.065259, 0.031678],
    "share_closer_synthetic": 0.538607,
    "share_closer_public": 0.57135,
    "share_closer_excess": -0.032743,
    "share_closer_excess_ci": [-0.113241, 0.047755],
    "method": "negative control",
}


@functools.cache
def consortium_with_control() -> Path:
    """consortium.yaml with ``nearest_neighbour.public_panel_control: true`` (no shipped policy
    sets it), judging the raw DCR share (the control's part) at the centred share's bound,
    written once to a temporary file."""
    assert not load_policy(shipped_policy("consortium")).public_panel_control
    text = shipped_policy("consortium").read_text()
    assert "\n  max_centred_share_ci_upper:" in text
    text = text.replace(
        "\n  max_centred_share_ci_upper:", "\n  max_share_closer_to_members_ci_upper:"
    )
    on = text.replace("nearest_neighbour:\n", "nearest_neighbour:\n  public_panel_control: true\n")
    out = Path(tempfile.mkdtemp()) / "consortium-control.yaml"
    out.write_text(on)
    assert load_policy(out).public_panel_control
    return out


#: the stop-33 demo's distance audits on its phenotype columns alone (abBMD and SW16, both 0/1:
#: every synthetic record ties a member and a holdout mouse)
DEMO_PHENOTYPES_ONLY = {
    "columns": ["abBMD", "SW16"],
    "dcr_auc": 0.5,
    "dcr_auc_ci": [0.5, 0.5],
    "share_closer_to_members": 0.5,
    "share_closer_to_members_ci": [0.496663, 0.503337],
}


def results(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"results_{name}.json").read_text())


def matplotlib_figures(seed: int = 0) -> dict[str, str]:
    """SVGs as the plotting stage makes them (matplotlib, Agg), from simulated numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    with matplotlib.rc_context({"svg.hashsalt": "dpgenome-test", "svg.fonttype": "none"}):
        fig, ax = plt.subplots(figsize=(6, 2.5))
        ax.scatter(np.arange(500), -np.log10(rng.uniform(size=500)), s=2)
        ax.set_xlabel("position")
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
        out["manhattan"] = buf.getvalue()
        fig, ax = plt.subplots(figsize=(3, 3))
        ax.imshow(np.corrcoef(rng.normal(size=(5, 40))), cmap="RdBu_r", vmin=-1, vmax=1)
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
        out["phenotype_correlation"] = buf.getvalue()
    return out


def render(name: str = "approve", policy: str = "consortium", **kwargs: Any) -> str:
    doc = results(name)
    evaluation = evaluate(doc, load_policy(shipped_policy(policy)), context=NONE_SPENT)
    return render_dossier(doc, evaluation, kwargs.pop("figures", {}), **kwargs)


def _flat(doc: dict[str, Any], evaluation: Any) -> str:
    """The dossier of ``doc`` rendered with ``evaluation``, its whitespace runs made single
    spaces (what a reader sees, for phrase checks)."""
    return " ".join(render_dossier(doc, evaluation, {}).split())


def test_render_dossier__self_contained_no_external_requests() -> None:
    html = render(figures=matplotlib_figures())
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert "@import" not in html
    # The only URLs are XML namespace names (not fetched); nothing loads from a URL.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    for attr in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html):
        assert attr.startswith(("#", "data:")), attr
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_render_dossier__contains_no_real_sample_id() -> None:
    ids = pd.read_csv(PHENO, usecols=["id"], dtype=str)["id"].str.strip()
    assert len(ids) == 1092
    html = render(figures=matplotlib_figures())
    tokens = set(re.findall(r"[A-Za-z0-9_]+", html))
    leaked = sorted(set(ids) & tokens)
    assert leaked == [], f"real sample ids in the dossier: {leaked[:5]}"


def test_render_dossier__scan_catches_a_planted_id() -> None:
    # The scan above can fail: a real id placed in a results field is found.
    ids = pd.read_csv(PHENO, usecols=["id"], dtype=str)["id"].str.strip()
    doc = results("approve")
    doc["cohort"]["source"] = f"sample {ids.iloc[5]}"
    doc["provenance"]["config"]["note"] = f"sample {ids.iloc[5]}"
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    tokens = set(re.findall(r"[A-Za-z0-9_]+", render_dossier(doc, evaluation, {})))
    assert ids.iloc[5] in tokens


def test_render_dossier__approve_banner() -> None:
    html = render()
    assert 'class="banner approve"' in html
    assert ">APPROVE<" in html
    assert "Policy findings (25 pass, 0 fail, 0 not evaluated)" in html


def test_render_dossier__block_banner_lists_every_failing_rule() -> None:
    doc = results("block")
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    html = render_dossier(doc, evaluation, {})
    banner = html.split('id="verdict"', 1)[1].split("</div>", 1)[0]
    assert ">BLOCK<" in banner
    for f in evaluation.failing:
        assert f"<code>{f.rule}</code>" in banner
        assert str(markupsafe.escape(f.title)) in banner
    assert "measured 14, required &lt;= 10" in banner
    # the signers are told the policy allows an override, and how one is made
    signoff = html.split('id="signoff"', 1)[1]
    assert "The <b>consortium</b> policy allows a signed override" in signoff
    assert "dpgenome export RELEASE_DIR --policy POLICY --override-reason" in signoff
    strict = render("block", policy="strict").split('id="signoff"', 1)[1]
    assert "allows no override" in strict and "--override-reason" not in strict


def test_render_dossier__advisory_warning_shows_the_ci_it_is_judged_on() -> None:
    """The attribute-inference rule judges the CI's upper bound: a risk of 0 with a wide CI
    fails it, and the banner must show that CI (the demo's case: risk 0, CI 0-0.29)."""
    doc = results("approve")
    doc["audit"]["attribute_inference"]["abBMD"].update(risk=0.0, risk_ci=[0.0, 0.291489])
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert evaluation.verdict == "APPROVE"
    html = render_dossier(doc, evaluation, {})
    banner = html.split('id="verdict"', 1)[1].split("</div>", 1)[0]
    advisory = banner.split("Advisory (not blocking):", 1)[1]
    line = next(li for li in advisory.split("<li>")[1:] if "Attribute inference" in li)
    assert "FAIL" in line
    assert "measured 0 (95% CI 0 – 0.2915), advised 95% CI upper bound &lt;= 0.2" in line
    assert "1 phenotype(s) attacked as the secret (abBMD); worst: abBMD" in line
    assert "<code>attribute_inference.risk</code>" in line
    # counted as advisory, and amber, not the red of a blocking FAIL (a newcomer's review)
    assert "Policy findings (24 pass, 1 fail (1 of them advisory), 0 not evaluated)" in html
    assert '<span class="badge ne">FAIL</span>' in line
    assert '<span class="badge fail">' not in html


def test_render_dossier__override_shown_in_banner() -> None:
    override = Override(
        "Reviewed by the DAC; spurious locus explained",
        "Dr A. Smith <dac>",
        "2026-11-24T07:00:00+00:00",
    )
    html = render("block", override=override)
    banner = html.split('id="verdict"', 1)[1].split("</div>", 1)[0]
    assert "BLOCK — OVERRIDDEN" in banner
    assert "Dr A. Smith &lt;dac&gt;" in banner  # escaped
    assert "Reviewed by the DAC" in banner and "2026-11-24T07:00:00+00:00" in banner


def test_render_dossier__no_formal_privacy_labelled() -> None:
    html = render("inf", policy="internal")
    assert html.count("NO FORMAL PRIVACY") >= 3
    assert "∞ — NO FORMAL PRIVACY" in html
    assert "There is no guarantee" in html


def test_render_dossier__has_every_section_and_signoff_roles() -> None:
    html = render(figures=matplotlib_figures())
    for anchor in (
        "verdict",
        "glance",
        "meaning",
        "findings",
        "ledger",
        "audits",
        "fidelity",
        "provenance",
        "signoff",
    ):
        assert f'id="{anchor}"' in html
    for role in load_policy(shipped_policy("consortium")).signoff_roles:
        assert f"<td>{role}</td>" in html
    for text in (
        "Relatives are not protected",
        "The number of members is treated as public",
        "Repeated releases add up",
        "The holdout is not protected by DP",
        "genotype synthesizer (per-chromosome VAE)",  # a mechanism
        "opacus_rdp",  # accountants
        "KING-robust kinship",
        "rs29477109",  # loci table (a SNP id, not a person)
        "a1a1a1a1",  # input file hash
        "@media print",
    ):
        assert text in html, text


def test_render_dossier__missing_figures_are_labelled_not_dropped() -> None:
    html = render(figures={})
    for name in FIGURE_CAPTIONS:
        assert f"Figure “{name}” was not supplied with this release." in html
    # ROC and DCR are drawn from the results document itself
    assert 'data-figure="roc"' in html and "Membership attacks: ROC" in html
    assert "Distance to closest real record" in html


def test_render_dossier__escapes_text_from_results() -> None:
    doc = results("approve")
    doc["cohort"]["pheno"] = "<script>alert(1)</script>"
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    html = render_dossier(doc, evaluation, {})
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_render_dossier__is_deterministic_given_date() -> None:
    figures = matplotlib_figures()
    assert render(figures=figures, generated_at="x") == render(figures=figures, generated_at="x")


@pytest.mark.parametrize(
    "svg",
    [
        '<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><image href="https://x.org/a.png"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><use xlink:href="other.svg#a"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" onload="f()"></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(http://x/y)"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><style>@import "x.css";</style></svg>',
        "<div>not svg</div>",
    ],
)
def test_inline_svg__rejects_scripts_and_external_references(svg: str) -> None:
    with pytest.raises(InputError, match="figure 'f'"):
        inline_svg(svg, "f")


def test_inline_svg__makes_ids_unique_per_figure() -> None:
    a = matplotlib_figures(0)["manhattan"]
    b = matplotlib_figures(1)["manhattan"]
    html = str(inline_svg(a, "one")) + str(inline_svg(b, "two"))
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)) > 0
    for ref in re.findall(r"url\(#([^)]+)\)", html):
        assert ref in ids  # every internal reference still resolves


def test_roc_svg__maps_unit_square_onto_plot_area() -> None:
    svg = roc_svg({"a": {"auc": 0.5, "roc": {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]}}})
    assert svg is not None
    frame = _legend_frame(360, 286, 2)
    # (0, 0) is the bottom-left corner of the plot area, (1, 1) the top-right one
    left, bottom = frame.left, frame.height - frame.bottom
    right, top = frame.width - frame.right, frame.top
    points = re.search(r'<polyline points="([^"]+)" fill="none" stroke="#1f5fa8"', svg)
    assert points is not None
    assert points.group(1) == f"{left:g},{bottom:g} {right:g},{top:g}"
    assert roc_svg({"a": {"status": "NOT RUN"}}) is None


def test_render_frontier__non_private_point_labelled() -> None:
    runs = []
    for eps, recall in ((None, 0.9), (10.0, 0.6), (3.0, 0.3), (1.0, 0.05)):
        doc = copy.deepcopy(results("approve"))
        doc["ledger"]["epsilon"] = None if eps is None else eps * 0.9987  # as accounted
        doc["ledger"]["target_epsilon"] = eps
        doc["ledger"]["no_formal_privacy"] = eps is None
        doc["fidelity"]["gwas"]["thresholds"]["1e-08"]["recall"] = recall
        runs.append(doc)
    html = render_frontier(runs)
    assert "∞ — no formal privacy" in html
    assert html.count("<figure") == 5
    assert "<script" not in html
    # rows ordered: no-DP reference first, then decreasing epsilon, asked for -> accounted
    eps_cells = re.findall(r"<tr><td>(?:<b>)?([^<]+)", html.split("All points")[1])
    assert eps_cells == ["∞ — no formal privacy", "10 → 9.987", "3 → 2.997", "1 → 0.9987"]
    with pytest.raises(InputError):
        render_frontier([])


def test_render_frontier__sizes_share_the_epsilon_asked_for_and_the_strongest_attack() -> None:
    """Two cohort sizes accounted 7.98906 and 7.98565 at a target of 8 made two x positions
    (each size's line broken into dots): points sit at the epsilon asked for. The AUC column
    paired the largest AUC with the largest upper bound, possibly two attacks': it names the
    attack whose bound is highest, with its own AUC."""
    from dpgenome.frontier import frontier_point

    runs = []
    for n, accounted in ((960, 7.98906), (400, 7.98565)):
        doc = copy.deepcopy(results("approve"))
        doc["ledger"] |= {"epsilon": accounted, "target_epsilon": 8.0}
        doc["cohort"]["n_samples"] = n
        runs.append(doc)
    html = render_frontier(runs)
    charts = html.split("All points")[0]
    assert charts.count(">8</text>") >= 5 and not re.search(r">7\.9\d*</text>", charts)
    attacks = {
        "dcr": {"auc": 0.5107, "auc_ci": [0.45, 0.5735]},
        "allele_frequency": {"auc": 0.50, "auc_ci": [0.42, 0.5816]},
    }
    doc = copy.deepcopy(results("approve"))
    doc["audit"]["attacks"] = attacks
    point = frontier_point(doc)
    assert (point["strongest_attack"], point["max_auc"], point["max_auc_ci_upper"]) == (
        "allele_frequency",
        0.50,
        0.5816,
    )
    # an attack without a bound (NaN) listed first never hides the others
    doc["audit"]["attacks"] = {"odd": {"auc": 0.5, "auc_ci": [0.4, float("nan")]}, **attacks}
    assert frontier_point(doc)["strongest_attack"] == "allele_frequency"


def test_templates_dir__missing_is_a_config_error(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(paths, "_PACKAGE_DIR", tmp_path / "src" / "dpgenome")
    monkeypatch.delenv("DPGENOME_HOME", raising=False)
    with pytest.raises(ConfigError, match="reports/templates"):
        paths.templates_dir()
    with pytest.raises(ConfigError, match="policies"):
        paths.policies_dir()


def test_pheno_fixture_is_gzip_csv() -> None:
    # guard for the id scan: it must really read the package's copy of the real phenotypes
    with gzip.open(PHENO, "rt") as fh:
        assert fh.readline().startswith('"id"')


def test_render_dossier__states_unmatched_and_spurious_loci_apart() -> None:
    """Results of the current fidelity stage carry ``unmatched`` (no real 1e-8 locus nearby)
    beside ``spurious`` (no real signal nearby); older results have only the latter."""
    doc = results("approve")
    loci = doc["fidelity"]["gwas"]["loci"]
    loci |= {"unmatched": 2, "spurious": 0}
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    text = _flat(doc, evaluation)
    assert "2 synthetic loci away from every real locus, of which 0 spurious" in text
    assert "synthetic loci away from every real locus" not in " ".join(render().split())


def test_render_dossier__loci_table_columns_cover_every_row() -> None:
    """Synthetic loci carry a key the real ones lack ("supported"): every row gets a cell per
    column, an absent value shown as missing, so the cells stay under their headers."""
    doc = results("approve")
    doc["fidelity"]["gwas"]["loci"]["table"] = [
        {"chr": "11", "lead_id": "rs1", "source": "real"},
        {"chr": "11", "lead_id": "rs2", "source": "synthetic", "supported": True},
    ]
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    html = render_dossier(doc, evaluation, {})
    table = html[html.index("<h3>Loci</h3>") :]
    table = table[: table.index("</table>")]
    assert "<th>supported</th>" in table
    rows = [r for r in table.split("<tr>")[1:]]
    assert [r.count("<th>") + r.count("<td>") for r in rows] == [4, 4, 4]


def test_render_dossier__phenotype_marginals_table() -> None:
    """The fidelity stage's phenotype marginals: the analysis phenotype first (a prevalence
    a third of the real one must be visible to the officer), the error in the summary table;
    results without them (older releases) render no table."""
    doc = results("approve")
    doc["fidelity"] |= {
        "phenotype_marginal_error": 0.21,
        "phenotype_marginals": {
            "n_compared": 3,
            "mean_abs_smd": 0.21,
            "max_abs_smd": 0.33,
            "rows": [
                {
                    "name": "abBMD",
                    "type": "binary",
                    "mean_real": 0.1948,
                    "mean_synthetic": 0.0638,
                    "sd_real": 0.3962,
                    "sd_synthetic": 0.2446,
                    "smd": -0.3306,
                    "missing_real": 0.0,
                    "missing_synthetic": 0.0,
                },
                {
                    "name": "round",
                    "type": "categorical",
                    "total_variation": 0.125,
                    "missing_real": 0.0,
                    "missing_synthetic": 0.0,
                },
            ],
        },
    }
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    text = _flat(doc, evaluation)
    assert "Phenotype marginals, real members vs synthetic" in text
    assert "<td>abBMD</td><td>binary</td> <td>0.1948 / 0.0638</td>" in text
    assert "total variation distance 0.125" in text
    assert "Phenotype marginals, real members" not in " ".join(render().split())


def test_render_dossier__shows_where_the_synthetic_associations_come_from() -> None:
    """The released regions (DP outputs and their post-processing) are listed, a dropped one
    marked as carrying nothing; no selected region and no record at all are told apart."""
    doc = results("approve")
    doc["synthesis"] = {
        "association": {
            "matching_relative_residual": 0.0123,
            "regions": [
                {
                    "chr": "11",
                    "start": 91_000_000,
                    "end": 99_350_000,
                    "n_snps": 812,
                    "n_components": 6,
                    "released_effect_norm": 0.2139,
                    "shrink_factor": 0.97,
                    "dropped": False,
                    "implied_lead": {"snp": "rs27060420"},
                },
                {
                    "chr": "7",
                    "start": 27_000_000,
                    "end": 34_200_000,
                    "n_snps": 640,
                    "n_components": 6,
                    "released_effect_norm": 0.0768,
                    "shrink_factor": 0.55,
                    "dropped": True,
                    "implied_lead": None,
                },
            ],
        }
    }
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    text = _flat(doc, evaluation)
    assert "chr11:91-99.35 Mb" in text and "rs27060420" in text
    assert "chr7:27-34.2 Mb" in text and "no (mostly noise)" in text
    assert "Matching relative residual" in text and "0.0123" in text
    assert "the region is one lead SNP" not in text
    # without a public panel each region is one lead SNP: the dossier says what that carries
    association = doc["synthesis"]["association"]
    association["release"] = "lead SNP"
    association["regions"][1] |= {"drop_reason": "minor-allele frequency below 0.05"}
    text = _flat(doc, evaluation)
    assert "the region is one lead SNP" in text
    assert "no (minor-allele frequency below 0.05)" in text
    assert "carry no record of the association release" in " ".join(render("partial").split())
    doc["synthesis"]["association"]["regions"] = []
    text = _flat(doc, evaluation)
    assert "No associated region was selected" in text


def test_render_dossier__public_panel_control_shown_beside_the_raw_audits() -> None:
    """The negative control's table appears when the audit ran it, with the excess and its
    CI; without it (NOT RUN) the section is absent and the verdict is the same."""
    doc = results("block")
    plain = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    doc["audit"]["public_control"] = dict(DEMO_PUBLIC_CONTROL)
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert evaluation.verdict == plain.verdict
    html = render_dossier(doc, evaluation, {})
    assert "Public-panel control" in html
    assert ">-0.02086<" in html and ">0.563<" in html
    # a policy that judges the genotypes by the excess, the phenotype columns alone
    doc["audit"]["nearest_neighbour"]["phenotypes_only"] = dict(DEMO_PHENOTYPES_ONLY)
    judged = evaluate(doc, load_policy(consortium_with_control()), context=NONE_SPENT)
    text = " ".join(render_dossier(doc, judged, {}).split())
    assert "judges the DCR attack and the share in two parts" in text
    assert "(DCR attack AUC 0.5, 95% CI 0.5 – 0.5; share 0.5, 0.4967 – 0.5033; abBMD, SW16)" in text
    assert "it does not change the verdict" not in text
    raw = evaluate(doc, load_policy(shipped_policy("strict")), context=NONE_SPENT)
    assert "it does not change the verdict" in render_dossier(doc, raw, {})
    doc["audit"]["public_control"] = {"status": "NOT RUN", "reason": "no public panel given"}
    html = render_dossier(doc, evaluation, {})
    assert "Public-panel control" not in html


def test_render_dossier__states_the_share_s_null_spread() -> None:
    """With the nearest-individual counts on record the share's row says how far it spreads
    under no leak; an audit from before them renders without the sentence."""
    doc = results("block")
    del doc["audit"]["nearest_neighbour"]["centred"]
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert "effective number" not in render_dossier(doc, evaluation, {})
    doc["audit"]["nearest_neighbour"].update(
        share_nearest_distinct=360, share_nearest_effective=191.75, share_null_sd=0.036107
    )
    text = _flat(doc, evaluation)
    assert "nearest real individuals are 360 distinct ones (effective number 192)" in text
    assert "the share spreads with sd about 0.03611 whatever the holdout's size" in text


def test_render_dossier__the_centred_share_and_which_share_is_judged() -> None:
    """The hub-centred share has its own row with its CI and spread; the row says which
    share the policy judges (consortium: the centred one, the raw one shown only)."""
    doc = results("approve")
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    text = _flat(doc, evaluation)
    assert "The same share on hub-centred distances" in text
    assert "0.503 (95% CI 0.452 – 0.554)" in text
    assert "498 distinct ones (effective number 386)" in text
    assert "(rule <code>nearest_neighbour.centred_share</code>); the raw share above is" in text
    raw = evaluate(doc, load_policy(consortium_with_control()), context=NONE_SPENT)
    text = " ".join(render_dossier(doc, raw, {}).split())
    assert "This policy judges the raw share above; this one is shown" in text


def test_render_dossier__released_prevalence_and_slopes_table() -> None:
    """A 0/1 phenotype's released prevalence and its covariate slope (DP outputs) sit beside
    the phenotype model's value and the synthetic rows'; without them the table is absent."""
    doc = results("approve")
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert "prevalence and covariate slopes" not in render_dossier(doc, evaluation, {})
    doc = copy.deepcopy(doc)
    doc["synthesis"] |= {
        "phenotype_prevalence": {
            "synthetic_model": 0.0612,
            "released": 0.1931,
            "rows_sampled": 3840,
            "synthetic": 0.1927,
        },
        "covariate_slopes": {
            "columns": ["SW16"],
            "synthetic_model": [-0.0123],
            "released": [0.4321],
            "noise_sd": [0.0567],
            "synthetic": [0.4298],
        },
    }
    html = render_dossier(doc, evaluation, {})
    assert "prevalence and covariate slopes" in html
    rows = re.findall(r"<tr><td>(prevalence|slope on SW16)</td>(.*?)</tr>", html)
    cells = {name: re.findall(r'<td class="num">(.*?)</td>', rest) for name, rest in rows}
    assert cells["prevalence"] == ["0.0612", "0.1931", "—", "0.1927"]
    assert cells["slope on SW16"] == ["-0.0123", "0.4321", "0.0567", "0.4298"]


@pytest.mark.parametrize(
    ("stray", "said"),
    [
        ([True, False, False, True, False], "2 of them had a SNP at −log10 p ≥ 8 that the"),
        ([False] * 5, "None had a SNP the released association does not explain"),
        ([True] * 5, "Every draw had a SNP the released association does not explain"),
    ],
)
def test_render_dossier__says_which_pairing_draw_was_kept(stray: list[bool], said: str) -> None:
    """The synthetic cohort is one of several pairing draws, chosen by its own GWAS: the
    dossier discloses the draws, those set aside for a stray hit, and the median-lambda draw
    kept; results without the scan (one draw) say nothing."""
    doc = results("approve")
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert "Which pairing was kept" not in render_dossier(doc, evaluation, {})
    doc = copy.deepcopy(doc)
    doc["synthesis"]["pairing"] = {
        "draws": 5,
        "lambda_gc": [1.01, 0.98, 1.04, 1.12, 0.995],
        "unexplained_hit": stray,
        "stray_hit_log10_p": 8.0,
        "chosen": 4,
    }
    text = _flat(doc, evaluation)
    assert "paired with the synthetic genotype rows 5 times" in text
    assert said in text
    assert "(draw 5, lambda_GC 0.995; all draws: 1.01, 0.98, 1.04, 1.12, 0.995)" in text


def test_render_dossier__states_how_ancestry_was_chosen() -> None:
    """The ledger section says whether the synthesizer kept ancestry across chromosomes and,
    chosen automatically, what the public panel showed; nothing when it recorded nothing."""
    doc = results("approve")
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert "Ancestry across chromosomes" not in render_dossier(doc, evaluation, {})
    auto = {
        "correlations": [0.9673, 0.18],
        "p_values": [0.0, 0.4],
        "unrelated": 928,
        "alpha": 0.001,
        "min_correlation": 0.3,
        "shared_axes": 1,
        "ancestry_pcs": 4,
    }
    doc = copy.deepcopy(doc)
    doc["synthesis"]["ancestry"] = {"auto": auto, "axes": 4}
    text = _flat(doc, evaluation)
    assert (
        "4 principal axes of the public panel: chosen automatically from the public panel "
        "alone (no privacy cost): its two genome halves share 1 axis(es) (canonical "
        "correlations of their principal components among its 928 individuals without "
        "first-degree relatives, largest 0.97, Bartlett p &lt; 1e-300"
    ) in text
    doc["synthesis"]["ancestry"] = {
        "auto": {
            **auto,
            "correlations": [0.17],
            "p_values": [0.63],
            "shared_axes": 0,
            "ancestry_pcs": 0,
        }
    }
    text = _flat(doc, evaluation)
    assert (
        "off: chosen automatically from the public panel alone (no privacy cost): its two "
        "genome halves share no structure (canonical correlations"
    ) in text
    doc["synthesis"]["ancestry"] = {"axes": 2}
    text = _flat(doc, evaluation)
    assert "2 principal axes of the public panel (set by the configuration)" in text


def test_render_dossier__states_the_rows_the_gwas_was_compared_on() -> None:
    """A synthetic cohort larger than the members: the dossier says its GWAS ran on a subset
    of as many rows and why; a smaller one: that its power is lower; equal sizes (and older
    results without the counts): nothing."""
    doc = results("approve")
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    html = render_dossier(doc, evaluation, {})
    assert "seeded random subset" not in html and "less power" not in html
    for synthetic, compared, texts in (
        (2304, 768, ["GWAS here runs on a seeded random subset of 768 rows", "about 3.0-fold"]),
        (400, 400, ["its GWAS has less power than the members"]),
        (768, 768, []),
    ):
        sized = copy.deepcopy(doc)
        sized["fidelity"]["gwas"]["rows"] = {
            "members": 768,
            "synthetic": synthetic,
            "compared": compared,
        }
        html = render_dossier(sized, evaluation, {})
        assert all(text in html for text in texts)
        if not texts:
            assert "seeded random subset" not in html and "less power" not in html


def test_render_dossier__states_the_public_schema_and_the_replace_one_guarantee() -> None:
    doc = results("approve")
    doc["ledger"]["replace_one"] = {"epsilon": 6.0, "delta": 0.0123}
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    html = render_dossier(doc, evaluation, {})
    meaning = html.split('id="meaning"', 1)[1].split("</ul>", 1)[0]
    assert "so is the schema" in meaning
    assert "differ in one individual the guarantee is (6, 0.0123)" in meaning
    # at epsilon 8, delta 1/768^1.1 (the demo) (1 + e^8) delta = 2.0 is capped at 1: stated
    # as "the guarantee is (16, 1)", it was a vacuous bound presented as a guarantee
    delta = 768**-1.1
    doc["ledger"]["replace_one"] = {"epsilon": 16.0, "delta": min(1.0, (1 + np.exp(8)) * delta)}
    html = render_dossier(doc, evaluation, {})
    meaning = html.split('id="meaning"', 1)[1].split("</ul>", 1)[0]
    assert "the guarantee is (16," not in meaning
    assert "gives no guarantee at this ε" in meaning
    # the ledger's own replace-one accounting (stop 43): a real guarantee at the same delta
    doc["ledger"]["replace_one"] = Ledger.from_dict(doc["ledger"]).replace_one()
    rep = doc["ledger"]["replace_one"]
    html = render_dossier(doc, evaluation, {})
    meaning = html.split('id="meaning"', 1)[1].split("</ul>", 1)[0]
    claim = f"({fmt_claim(rep['epsilon'])}, {fmt_claim(rep['delta'])})"
    assert f"differ in one individual the guarantee is {claim}, accounted directly" in meaning
    rep["group_privacy"] = {"epsilon": 5.99, "delta": 0.0137}  # the demo's at epsilon 3
    html = render_dossier(doc, evaluation, {})
    assert "group privacy over removing one and adding another gives (5.99, 0.0137)" in html
    rep["group_privacy"] = {"epsilon": 16.0, "delta": 1.0, "note": "no guarantee"}  # at 8
    meaning = render_dossier(doc, evaluation, {}).split('id="meaning"', 1)[1].split("</ul>")[0]
    assert "accounted directly" in meaning and "group privacy" not in meaning
    # a results document without the record (before it was kept) renders without the clause
    assert "differ in one individual" not in render()


def test_render_dossier__lists_the_release_s_own_assumptions() -> None:
    """A ledger's assumptions beyond those every ledger states (columns typed from the
    members' data, a declared schema) are listed where the guarantee is explained."""
    from dpgenome.accountant import PUBLIC_ASSUMPTIONS

    doc = results("approve")
    note = "the type (0/1, continuous or categorical) of 1 phenotype column(s) was read from "
    doc["ledger"]["assumptions"] = [*PUBLIC_ASSUMPTIONS, note + "the members' data: bw"]
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    meaning = render_dossier(doc, evaluation, {}).split('id="meaning"', 1)[1].split("</ul>\n", 2)
    assert "This release's own assumptions" in meaning[0]
    assert note + "the members&#39; data: bw" in meaning[0]
    assert PUBLIC_ASSUMPTIONS[0] not in meaning[0] + meaning[1]  # stated in prose instead
    assert "own assumptions" not in render()


def test_render_dossier__states_the_lifetime_epsilon_and_delta() -> None:
    """The governance note states what the most-spent individual spent before this release
    and with it, epsilon and delta (a lifetime guarantee is a pair)."""
    doc = results("approve")
    context = EvaluationContext(12.71, 6.7e-4, 1, 16.8, 1.3401e-3)
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=context)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", render_dossier(doc, evaluation, {})))
    assert (
        "the most one of them has spent before this one: epsilon 12.71, delta 0.00067; "
        "with this one: epsilon 16.8, delta 0.001341 (their deltas add)."
    ) in text


# ---------------------------------------------------------------------------- reviewer's points

#: the demo's delta, 1/768^1.1 = 0.00067004...: printed to 4 digits it must read 0.0006701
DEMO_DELTA = 768**-1.1


def _text(html: str) -> str:
    """The dossier's visible text: tags dropped, whitespace collapsed, entities kept."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _section(html: str, start: str, end: str) -> str:
    return html.split(start, 1)[1].split(end, 1)[0]


def _render_doc(doc: dict[str, Any], policy: str = "consortium") -> str:
    evaluation = evaluate(doc, load_policy(shipped_policy(policy)), context=NONE_SPENT)
    return render_dossier(doc, evaluation, {})


def test_render_dossier__epsilon_and_delta_are_claims_rounded_up_everywhere() -> None:
    """A privacy claim is never printed below the computed value: the demo's delta
    0.00067004 reads 0.0006701 (not 0.00067) at a glance, in the meaning of the guarantee and
    in the ledger; an epsilon of 8.0004 reads 8.001 (not 8) there and in every finding on
    the release's epsilon."""
    doc = results("approve")
    doc["ledger"] |= {"delta": DEMO_DELTA, "epsilon": 8.0004}
    html = _render_doc(doc)
    glance = _section(html, 'id="glance"', "</div>\n\n")
    meaning = _section(html, 'id="meaning"', "</ul>")
    ledger = _section(html, 'id="ledger"', "<h3>Mechanisms</h3>")
    assert "<b>0.0006701</b><span>delta</span>" in glance
    assert "<b>8.001</b><span>epsilon" in glance
    assert "(8.001, 0.0006701)-differentially private" in meaning
    assert "<tr><th>delta</th><td>0.0006701</td></tr>" in ledger
    assert "<tr><th>Total epsilon</th><td>8.001 (target 8)</td></tr>" in ledger
    for part in (glance, meaning, ledger):
        assert not re.search(r"0\.00067(?!\d)", part)
        assert not re.search(r">8<", part)
    findings = _section(html, 'id="findings"', "</table>")
    for rule in ("privacy.no_formal_privacy", "privacy.max_epsilon", "privacy.max_delta"):
        row = findings.split(f"<code>{rule}</code>", 1)[1].split("</tr>", 1)[0]
        measured = re.search(r'<td class="num">([^<]*)</td>', row)
        assert measured is not None
        assert measured.group(1) == ("0.0006701" if rule == "privacy.max_delta" else "8.001")
    # a sweep's epsilon is a claim too
    frontier = render_frontier([doc])
    assert "<td>8 → 8.001</td>" in frontier and "→ 8</td>" not in frontier  # asked -> claim
    assert '<td class="num">0.0006701</td>' in frontier


def test_render_dossier__states_the_most_the_canary_audit_could_show() -> None:
    """The demo's audit (50 canaries, 20 guesses, delta 1/768^1.1) cannot give more than
    1.716 even for a perfect guesser, far below the claimed 8: the dossier says so, computed
    by the audit's own bound when the results lack ``max_lower_bound``, read from them when
    present, and says nothing when the record lacks the counts."""
    from dpgenome.audit.canary import epsilon_lower_bound

    doc = results("approve")
    assert "the most this audit could show" not in render()  # fixture: no guesses recorded
    doc["ledger"]["delta"] = DEMO_DELTA
    doc["audit"]["canary"] = {
        "epsilon_lower_bound": 0.0,
        "confidence": 0.95,
        "delta": DEMO_DELTA,
        "m": 50,
        "included": 23,
        "guesses": 20,
        "correct": 9,
        "claimed_epsilon": 8.0,
        "exceeds_claimed": False,
        "method": "one-run canary audit",
    }
    reach = epsilon_lower_bound(50, 20, 20, delta=DEMO_DELTA)
    assert f"{reach:.4g}" == "1.716"
    text = _text(_render_doc(doc))
    assert "the most this audit could show, every guess right: 1.716" in text
    assert (
        "an attack that guessed every canary right (20 of 20 guesses on 50 canaries) would "
        "give a lower bound of 1.716"
    ) in text
    assert "at these settings the audit cannot fail, whatever the synthesizer leaks" in text
    assert "can never exceed 1.716 at this audit's size" in text
    # recorded by the audit: shown as recorded; above the claim, the audit can fail
    doc["audit"]["canary"]["max_lower_bound"] = 9.25
    text = _text(_render_doc(doc))
    assert "would give a lower bound of 9.25" in text
    assert "the audit cannot fail" not in text


def test_render_dossier__tpr_below_the_fpr_resolution_is_not_measurable() -> None:
    """A holdout of 192 cannot show a false-positive rate below 1/192 = 0.005208: the TPR at
    0.1% FPR is marked not measurable, the one at 1% shown, and the resolution stated; a
    holdout of 50 cannot show 1% either. Without a recorded holdout size nothing is marked."""
    doc = results("approve")
    assert "not measurable" not in render()
    for attack in doc["audit"]["attacks"].values():
        attack |= {"n_holdout": 192, "fpr_resolution": 0.005208}
    doc["audit"]["attacks"]["shadow"] = {"auc": 0.534, "tpr_at_fpr_0.01": 0.026, "n_holdout": 50}
    doc["audit"]["attacks"]["shadow"]["tpr_at_fpr_0.001"] = 0.02
    html = _render_doc(doc)
    table = _section(html, "<h3>Membership inference</h3>", "</table>")
    assert "FPR resolution (1 / holdout size)" in table
    dcr = table.split("<tr><td>dcr</td>", 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r'<td class="num">([^<]*)</td>', dcr)
    assert cells == ["0.512", "0.468 – 0.556", "0.005208", "0.016", "not measurable"]
    shadow = table.split("<tr><td>shadow</td>", 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'<td class="num">([^<]*)</td>', shadow)[2:] == [
        "0.02",
        "not measurable",
        "not measurable",
    ]
    assert "the smallest non-zero false-positive rate an attack can show is 1/n" in _text(html)


def test_render_dossier__gaussian_dp_mu_is_qualified() -> None:
    """mu covers the DP-SGD and Gaussian steps only (the exponential and Laplace ones are
    named), is the CLT approximation for DP-SGD, and is not to be turned into an epsilon."""
    doc = results("approve")
    doc["ledger"]["mechanisms"] += [
        {"kind": "exponential", "name": "region-selection", "epsilon": 0.3, "count": 3},
        {"kind": "laplace", "name": "region-test", "epsilon": 0.2, "count": 3},
    ]
    ledger = _text(_section(_render_doc(doc), 'id="ledger"', "<h3>Mechanisms</h3>"))
    assert "Gaussian DP μ (partial and approximate: not a privacy claim) 1.542." in ledger
    assert (
        "It covers only the DP-SGD and Gaussian mechanisms, not region-selection (exponential), "
        "region-test (laplace), while the total epsilon above covers every mechanism"
    ) in ledger
    assert "the central-limit approximation of Bu et al. 2020 (asymptotic), not a bound" in ledger
    assert "It must not be converted into an epsilon" in ledger
    # no formal privacy: no mu, no explanation
    inf = _text(_section(render("inf", policy="internal"), 'id="ledger"', "<h3>Mechanisms"))
    assert "It covers only" not in inf


def test_render_dossier__public_control_labels_say_genotype_distance_only() -> None:
    doc = results("block")
    doc["audit"]["public_control"] = dict(DEMO_PUBLIC_CONTROL)
    doc["audit"]["nearest_neighbour"]["phenotype_columns"] = ["abBMD", "SW16"]
    html = _render_doc(doc)
    table = _section(html, "<h3>Public-panel control</h3>", "<h3>Kinship")
    assert "<td>DCR attack AUC, genotype distance only</td>" in table
    assert "<td>Share of records closer to members, genotype distance only</td>" in table
    assert (
        "so they differ from the DCR attack AUC (0.512) and the share closer to members (0.507) "
        "above, which measure distance on the genotypes and the phenotype columns (abBMD, SW16) "
        "together"
    ) in _text(table)


def test_render_dossier__explains_the_distinct_nearest_p_value() -> None:
    doc = results("block")
    doc["audit"]["nearest_neighbour"] |= {
        "distinct_nearest": 387,
        "distinct_nearest_members": 326,
        "distinct_share": 0.842377,
        "distinct_share_null": 0.8,
        "distinct_share_null_sd": 0.015717,
        "distinct_share_p_value": 0.0041530067264516765,
    }
    text = _text(_render_doc(doc))
    assert "exact one-sided p = 0.004153" in text
    assert (
        "under no leak, which of the distinct nearest real individuals are members is a "
        "hypergeometric draw"
    ) in text
    assert (
        "a small p means more members are nearest to synthetic records than chance gives, a "
        "detection signal, not a bound on what the release reveals"
    ) in text
    assert "This policy does not gate on it" in text


def test_render_dossier__unexplained_figures_get_their_context() -> None:
    """Spearman over every SNP is low by design; NNDR and duplicated windows stand beside
    their holdout baselines; a kinship excess with no pair on either side is not shown as a
    0 – 0 interval."""
    doc = results("approve")
    doc["audit"]["nearest_neighbour"] |= {
        "nndr_median_holdout": 0.989757,
        "duplicate_genotype_windows_rate_holdout": 0.911572,
        "window_snps": 64,
    }
    doc["audit"]["kinship"] |= {
        "synthetic_member_first_degree_pairs": 0,
        "holdout_member_first_degree_pairs": 0,
        "synthetic_first_degree_rate": 0.0,
        "holdout_first_degree_rate": 0.0,
        "excess_first_degree_rate": 0.0,
        "excess_first_degree_rate_ci": [0.0, 0.0],
    }
    html = _render_doc(doc)
    text = _text(html)
    assert "Low by design: only the privately selected regions (above) carry" in text
    assert "0.93 (holdout baseline 0.9898)" in text
    assert "0.0021 (holdout baseline 0.9116)" in text
    assert "share of a record's 64-SNP windows whose genotypes some member has" in text
    finding = _section(html, "<code>kinship.excess_first_degree</code>", "</tr>")
    assert "0 (no first-degree pair either side)" in finding and "0 – 0" not in finding
    assert "<b>0</b>, with no first-degree pair either side (so no interval)" in html
    # with pairs, the interval is shown as an interval
    doc["audit"]["kinship"] |= {
        "synthetic_member_first_degree_pairs": 3,
        "excess_first_degree_rate": -9.7e-06,
        "excess_first_degree_rate_ci": [-3e-05, 1e-05],
    }
    html = _render_doc(doc)
    assert "-3e-05 – 1e-05" in _section(html, "<code>kinship.excess_first_degree</code>", "</tr>")
    assert "(95% CI -3e-05 – 1e-05)" in _text(html)


def test_render_dossier__states_which_population_each_size_counts() -> None:
    """960 analysed (of the input's 1,092, after QC), 768 members (the real GWAS), 1,092 the
    individuals the lifetime ledger charges: each said where it is shown."""
    text = _text(render())
    assert "960 individuals analysed: of the input's 1,092, those left after QC" in text
    assert "members (trained on; the real side of the fidelity comparison)" in text
    assert "the 960 analysed, split" in text
    assert (
        "over all 1,092 individuals of the input (every sample id read, before QC and the "
        "split: not only the 768 members)"
    ) in text
    assert "The real side here is the 768 members, the individuals the synthesizer" in text
    doc = results("approve")
    doc["cohort"]["n_input"] = 1100  # recorded by the release: taken as recorded
    assert "over all 1,100 individuals of the input" in _text(_render_doc(doc))


def test_render_dossier__counts_are_pluralised() -> None:
    doc = results("approve")
    doc["fidelity"]["gwas"]["loci"] |= {"real_loci": 1, "recovered": 1, "unmatched": 1}
    doc["audit"]["kinship"]["member_member_first_degree_pairs"] = 0
    text = _text(_render_doc(doc))
    assert "1 of 1 real locus recovered; 1 synthetic locus away from every real locus" in text
    assert "There are no first-degree pairs among the members themselves." in text
    assert "There are no first-degree pairs among the members (outbred" in text
    assert "0 first-degree pairs" not in text and "members are themselves related" not in text
    doc["audit"]["kinship"]["member_member_first_degree_pairs"] = 1
    assert "1 first-degree pair exists among the members" in _text(_render_doc(doc))
    text = _text(render())  # the fixture: 41 pairs
    assert "41 first-degree pairs exist among the members themselves" in text
    assert "the members are themselves related (41 first-degree pairs;" in text
    assert "2 of 2 real loci recovered" in text
    assert "1 required rule failed" in _text(render_dossier(*_one_failing()))


def _one_failing() -> tuple[dict[str, Any], Any]:
    doc = results("approve")
    doc["ledger"]["epsilon"] = 14.0
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert len(evaluation.failing) == 1
    return doc, evaluation


def test_render_dossier__lists_the_public_panel_files_hashes() -> None:
    """The guarantee takes the panel as public: the dossier names which panel, by hash."""
    doc = results("approve")
    assert "Public panel files" not in render_dossier(
        doc, evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT), {}
    )
    doc["provenance"]["public_panel_files"] = {"geno.txt": "ab" * 32, "map.txt": "cd" * 32}
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    html = render_dossier(doc, evaluation, {})
    assert "Public panel files (SHA-256" in html
    assert f"<th>geno.txt</th><td><code>{'ab' * 32}</code>" in html


def test_render_dossier__fidelity_figures_beside_the_real_holdouts() -> None:
    """The cohort figures are read against the real holdout's own (a second real sample),
    the PCA spread out of sample, and the GWAS model is named; results without them (older
    releases) render without the parentheses."""
    doc = results("approve")
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    plain = _flat(doc, evaluation)
    assert "the real holdout against the members" not in plain
    doc["fidelity"]["holdout_baseline"] = {
        "n": 192,
        "allele_frequency_correlation": 0.9969,
        "ld_decay_error": 0.0024,
        "phenotype_correlation_error": 0.06,
        "phenotype_marginal_error": 0.061,
        "pca_variance_ratio_out_of_sample": [0.87, 1.34],
    }
    doc["fidelity"]["pca"]["variance_ratio_out_of_sample"] = [0.63, 1.14]
    doc["fidelity"]["gwas"]["models"] = {"real": "linear (OLS)", "synthetic": "linear (OLS)"}
    text = _flat(doc, evaluation)
    assert "(the real holdout against the members: 0.9969)" in text
    assert "(the real holdout against the members: 0.0024)" in text
    assert "PCs 1–2" in text and "0.63, 1.14 (the real holdout: 0.87, 1.34)" in text
    assert "GWAS model, both sides</th><td>linear (OLS)</td>" in text
    assert "Rows with every phenotype observed" not in text  # older results: no row


def test_render_dossier__which_phenotypes_are_missing_together() -> None:
    """The missingness figures (dpgenome.pheno_fidelity.phenotype_missingness) beside the real
    holdout's."""
    doc = results("approve")
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    doc["fidelity"]["phenotype_missingness"] = {
        "columns": 161,
        "columns_with_missing_values": 150,
        "complete_rows_real": 0.7812,
        "complete_rows_synthetic": 0.7927,
        "indicator_correlation_error": 0.0288,
    }
    doc["fidelity"]["holdout_baseline"] = {
        "complete_rows": 0.75,
        "phenotype_missingness_error": 0.05,
    }
    text = _flat(doc, evaluation)
    assert (
        "Rows with every phenotype observed, real members / synthetic (161 phenotypes)</th>"
        "<td>0.7812 / 0.7927 (the real holdout: 0.75)</td>" in text
    )
    assert "missingness indicators of the 150 phenotypes with missing values" in text
    assert "<td>0.0288 (the real holdout against the members: 0.05)</td>" in text


def test_render_dossier__names_where_the_dp_noise_came_from() -> None:
    """Provenance says where the noise came from (the configuration's seed is published, so
    under DP the noise must not be derived from it); results without it render as before."""
    doc = results("approve")
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    assert "DP noise" not in render_dossier(doc, evaluation, {})
    doc.setdefault("synthesis", {})["noise_source"] = "fresh OS entropy (recorded nowhere)"
    html = render_dossier(doc, evaluation, {})
    assert "<th>DP noise</th><td>fresh OS entropy (recorded nowhere)</td>" in html


def test_render_dossier__snp_table_says_where_the_false_hits_stand() -> None:
    """The SNP table's last column: the synthetic hits the real GWAS does not reach, how many
    of them it puts under the support threshold, and their real -log10 p; a dash for a
    threshold without the breakdown (the support threshold itself, or older results)."""
    doc = results("approve")
    doc["fidelity"]["gwas"]["loci"]["support_threshold"] = 2e-6
    doc["fidelity"]["gwas"]["thresholds"]["1e-08"] |= {
        "false_hits": 12,
        "false_hits_supported": 11,
        "false_hits_real_log10_p": [4.31, 7.96],
    }
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    html = render_dossier(doc, evaluation, {})
    table = html[html.index("<h3>SNP recall and precision</h3>") :]
    table = " ".join(table[: table.index("</table>")].split())
    want = "12, of which 11 at real p &lt; 2e-06 (real &minus;log<sub>10</sub> p 4.3&ndash;8.0)"
    assert want in table
    rows = table.split("<tr>")[1:]
    assert [r.count("<th") + r.count("<td") for r in rows] == [8, 8, 8]
    assert "<td>&ndash;</td></tr>" in rows[2]


def test_render_dossier__says_how_each_auc_ci_is_made_and_the_tpr_null() -> None:
    """The membership table's note: the reference attacks' CIs widened by the holdout's
    spread, the shadow attack's from label shuffles (its sd shown), and what the TPR at 1%
    FPR averages with nothing leaked at this holdout size ((f + 1) / (n + 1): 3 / 219)."""
    doc = results("approve")
    attacks = doc["audit"]["attacks"]
    for a in attacks.values():
        if isinstance(a, dict) and "auc" in a:
            a["n_holdout"] = 218
    attacks["allele_frequency"]["auc_reference_sd"] = 0.017
    attacks["shadow"] = {**attacks["dcr"], "auc_sd": 0.0612, "n_holdout": 218}
    html = _render_doc(doc)
    assert "widened by the AUC's spread over resamples of the holdout" in html
    assert "shuffles of which games are members (0.0612)" in html
    assert "averages 0.0137 on this holdout" in html
    del attacks["shadow"]
    for a in attacks.values():
        if isinstance(a, dict):
            a.pop("auc_reference_sd", None)
    plain = _render_doc(doc)
    assert "widened" not in plain and "shuffles" not in plain


def test_render_dossier__explains_its_terms() -> None:
    """A governance officer reads epsilon, AUC, DCR, KING, lambda_GC and more: the dossier
    defines each, and links the definitions from its first section."""
    html = render()
    assert 'href="#glossary"' in html and 'id="glossary"' in html
    terms = re.findall(r"<dt>(.*?)</dt>", html.split('id="glossary"')[1])
    for term in ("epsilon", "replace-one", "DP-SGD", "AUC", "DCR", "KING", "canary", "lambda_GC"):
        assert any(term in t for t in terms), term


def test_render_dossier__missing_genotype_calls_released_and_compared() -> None:
    """The ledger section says what the genotype-missingness release gave the synthetic
    genotypes; the fidelity table compares the two sides' missing calls, and says when the
    synthetic genotypes are complete although the members' are not. Older results (and
    complete cohorts on both sides) render neither row."""
    doc = results("approve")
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    plain = _flat(doc, evaluation)
    assert "Missing genotype calls" not in plain
    doc = copy.deepcopy(doc)
    side = {"individuals_with_any": 1.0, "individuals_over_5pct": 0.04, "snps_over_5pct": 0.1}
    doc["fidelity"]["missing_calls"] = {
        "real": {"share": 0.0201, **side},
        "synthetic": {"share": 0.0, **side},
        "snp_share_correlation": None,
    }
    text = _flat(doc, evaluation)
    assert "<td>0.0201 / 0" in text
    assert "The synthetic genotypes are complete" in text
    doc["fidelity"]["missing_calls"]["synthetic"]["share"] = 0.0187
    doc["fidelity"]["missing_calls"]["snp_share_correlation"] = 0.8153
    doc["fidelity"]["holdout_baseline"] = {"missing_call_share": 0.0199}
    doc["synthesis"]["genotype_missingness"] = {
        "bins_upper_share": [0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
        "released_shares": [0, 0, 0, 0.14, 0.29, 0.38, 0.18, 0, 0, 0, 0],
        "expected_missing_share": 0.0141,
        "bins_kept": 4,
        "keep_sds": 2.0,
        "noise_multiplier": 16.7,
        "snp_weights": "the public panel's per-SNP missing calls",
        "synthetic_missing_share": 0.0187,
    }
    text = _flat(doc, evaluation)
    assert "<td>0.0201 / 0.0187 (the real holdout against the members: 0.0199)" in text
    assert "Correlation of the SNPs' shares: 0.8153" in text
    assert "The synthetic genotypes are complete" not in text
    assert (
        "4 of 11 bins of an individual&#39;s share of missing calls kept (noisy count at least 2 "
        "noise sds; their released shares give an expected share of 0.0141); spread over the "
        "SNPs by the public panel&#39;s per-SNP missing calls; the synthetic genotypes miss "
        "0.0187 of their calls"
    ) in text
    doc["synthesis"]["genotype_missingness"]["bins_kept"] = 0
    doc["fidelity"]["missing_calls"]["synthetic"]["share"] = 0.0
    text = _flat(doc, evaluation)
    assert "no bin passed the noise, so the public default stands: no missing call" in text
    assert "genotype_missingness off" not in text  # it was on: the noise hid every bin
    assert "The public panel's missing calls" not in text
    doc["synthesis"]["public_panel_imputation"] = {
        "calls_filled": 1618701,
        "share_filled": 0.02033109762990316,
        "from_snp_mean": 1,
        "window_snps": 64,
        "neighbours": 8,
    }
    text = _flat(doc, evaluation)
    assert (
        "The public panel's missing calls</th><td>1,618,701 missing calls (a share of 0.02033 "
        "of its calls) filled before the synthesizer read the panel, each from the nearest of "
        "its individuals with the call over windows of 64 SNPs (1 from the SNP&#39;s mean)"
    ) in text


@pytest.mark.parametrize(("policy", "allowed"), [("consortium", False), ("strict", True)])
def test_render_dossier__states_whether_the_policy_allows_open_publication(
    policy: str, allowed: bool
) -> None:
    """The dossier said `dpgenome publish` copies the synthetic files out for open
    publication whatever the policy, where consortium's refuses it (a governance review)."""
    doc = results("approve")
    evaluation = evaluate(doc, load_policy(shipped_policy(policy)), context=NONE_SPENT)
    assert evaluation.open_publication is allowed
    text = render_dossier(doc, evaluation, {})
    assert ("publish</code> refuses this release" in text) is not allowed
    assert ("for open publication: policy" in text) is allowed
    flipped = dataclasses.replace(evaluation, open_publication=not allowed)
    assert ("for open publication: policy" in render_dossier(doc, flipped, {})) is not allowed


def test_render_dossier__a_tail_tpr_beside_its_no_leak_percentile() -> None:
    """A TPR at 1% FPR is shown with the 95th percentile it reaches when nothing leaks and
    its p-value (a governance review read a bootstrap CI above the no-leak mean as a leak)."""
    doc = results("approve")
    attack = doc["audit"]["attacks"]["dcr"]
    attack["tpr_at_fpr_0.01_null"] = {"mean": 0.0114, "q95": 0.028, "p_value": 0.097}
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    html = render_dossier(doc, evaluation, {})
    assert "no leak: &le; 0.028; p 0.097" in html
    assert "judge it against that percentile" in html
    del attack["tpr_at_fpr_0.01_null"]
    assert "no leak: &le;" not in render_dossier(doc, evaluation, {})


def test_render_dossier__a_real_share_of_fewer_than_five_members_is_not_shown_exactly() -> None:
    """The marginals table showed a missing share of 0.001272, one member in 786 (a
    governance review): a real figure standing for 1-4 members, or all but 1-4, is shown as
    "< 5 of n"; a binary column's prevalence so, with its sd and difference left out."""
    doc = results("approve")  # 768 members
    doc["fidelity"]["phenotype_marginals"] = {
        "n_compared": 3,
        "max_abs_smd": 0.1,
        "rows": [
            {"name": "PPIweight", "type": "continuous", "missing_real": 1 / 768,
             "missing_synthetic": 0.0, "mean_real": 30.0, "mean_synthetic": 30.5,
             "sd_real": 2.0, "sd_synthetic": 2.1, "smd": 0.25},
            {"name": "rare", "type": "binary", "missing_real": 0.0, "missing_synthetic": 0.0,
             "mean_real": 3 / 768, "mean_synthetic": 0.01, "sd_real": 0.0624,
             "sd_synthetic": 0.099, "smd": 0.0974},
            {"name": "bw", "type": "continuous", "missing_real": 0.25,
             "missing_synthetic": 0.24, "mean_real": 20.0, "mean_synthetic": 20.1,
             "sd_real": 1.5, "sd_synthetic": 1.6, "smd": 0.0667},
        ],
    }  # fmt: skip
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    html = render_dossier(doc, evaluation, {})
    table = html.split('id="phenotype-marginals"', 1)[1].split("</table>", 1)[0]
    assert table.count("&lt; 5 of 768") == 2
    assert "0.001302" not in table and "0.003906" not in table and "0.0624" not in table
    assert "0.25 / 0.24" in table and "20 / 20.1" in table  # shown as they are
    assert "fewer than 5 members" in html


def test_render_dossier__a_mechanism_note_and_what_ran_beneath_the_table() -> None:
    """The mechanisms table showed region-association planned for 3 regions at its planned
    multiplier; what ran (2 regions at a smaller one, the same epsilon) was only in
    results.json: the ledger's note and the release's count now stand beneath the table."""
    doc = copy.deepcopy(results("approve"))
    doc["ledger"]["mechanisms"].append(
        {"kind": "gaussian", "name": "region-association", "count": 3, "sensitivity": 4.9,
         "noise_multiplier": 1.319, "sensitivity_note": "planned for 3 regions (count)"}
    )  # fmt: skip
    region = dict(doc["synthesis"]["association"]["regions"][0])
    doc["synthesis"]["association"]["regions"] = [region, region]
    doc["synthesis"]["association"]["region_noise_multiplier"] = 1.077
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    html = render_dossier(doc, evaluation, {})
    assert (
        "<b>region-association</b>: planned for 3 regions (count). This release: 2 region(s) "
        "released, each at noise multiplier 1.077." in html
    )
    assert "for a Laplace mechanism its scale over the sensitivity, 1 / epsilon" in html


def test_render_dossier__sign_off_shows_replace_one_and_how_to_recheck() -> None:
    """A signer saw only the add/remove pair in the sign-off; the replace-one pair (above the
    per-release cap of some policies) and the re-check commands now stand there too."""
    doc = copy.deepcopy(results("approve"))
    doc["ledger"]["replace_one"] = {"epsilon": 19.41, "delta": 6.5e-4, "method": "direct"}
    evaluation = evaluate(doc, load_policy(shipped_policy("consortium")), context=NONE_SPENT)
    signoff = render_dossier(doc, evaluation, {}).split('id="signoff"', 1)[1]
    assert "<th>Replacing one individual</th><td>epsilon 19.41, delta 0.00065" in signoff
    assert "<code>dpgenome verify BUNDLE</code>" in signoff and "--cohort COHORT" in signoff


def test_render_dossier__an_approval_says_which_fidelity_it_judged() -> None:
    """An APPROVE read as covering all of the science; its banner now says that the policy's
    fidelity rules judge the GWAS only, unless a rule judges another fidelity figure."""
    doc = results("approve")
    consortium = load_policy(shipped_policy("consortium"))
    banner = render_dossier(doc, evaluate(doc, consortium, context=NONE_SPENT), {})
    banner = banner.split('id="verdict"', 1)[1].split("</div>", 1)[0]
    assert "fidelity rules judge the GWAS of abBMD only" in banner
    custom = parse_policy(
        "schema_version: 1\nname: test\nprivacy:\n  max_epsilon: 10\ncustom:\n  - id: af\n"
        "    metric: fidelity.allele_frequency_correlation\n    min: 0.5\n"
    )
    text = render_dossier(doc, evaluate(doc, custom, context=NONE_SPENT), {})
    assert "fidelity rules judge the GWAS" not in text
