"""The HTML report, built from small generated runs in the workflow's output layout (see test_report_data.py).

Nothing here reads results/ of a real run. The runs are written in tmp dirs:
per-unit history, metrics, predictions and nulls, the cohort and splits, and
summary.tsv and panels.tsv from the real compare step.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from panelmlp.compare import read_table
from panelmlp.report import build_report
from panelmlp.report.figures import class_balance, epoch_grid, numbers, points_per_curve
from panelmlp.report.page import SECTIONS, fmt, unpack_block
from test_report_data import Skipped, Spec, make_run, many_specs

PLOTLY_MARKER = "plotly.js v"
"""Appears once in plotly.js's licence header, so counts how often the bundle is embedded."""

CONFIG = {
    "panels": {"strong": ["G0000", "G0001", "G0002"], "flat": "all"},
    "evaluate": {"permutations": 99, "random_panels": 0},
    "report": {"pairplot_max_genes": 5},
}


@dataclass
class Report:
    """A built report and what it was built from."""

    text: str
    summary: pd.DataFrame
    inputs: dict
    path: Path


def build(root: Path, specs: list[Spec], config: dict, **run: object) -> Report:
    """Generate a run under ``root`` and build its report."""
    inputs = make_run(root / "results", specs, **run)  # type: ignore[arg-type]
    out = root / "report.html"
    build_report(inputs, config, str(out))
    return Report(out.read_text(encoding="utf-8"), read_table(inputs["summary"]), inputs, out)


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """Two named panels: 'strong' with planted signal, 'flat' with none; 99 permutations each."""
    specs = [Spec("strong", 3, 1.5), Spec("flat", 7, 0.0)]
    return build(tmp_path_factory.mktemp("binary"), specs, CONFIG, permutations=99)


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """30 gene sets of a collection (one with signal), two skipped, 19 permutations and 20 random sets per size."""
    skipped = [
        Skipped("TINY", "sets", 3, 3, "3 genes found, below min_size 5"),
        Skipped("HALF", "sets", 10, 5, "coverage 0.50 (5/10) below min_coverage 0.80"),
    ]
    config = {"evaluate": {"permutations": 19, "random_panels": 20}}
    specs = many_specs(30, strong=1)
    return build(tmp_path_factory.mktemp("many"), specs, config, permutations=19, random_panels=20, skipped=skipped)


def mlp_auc(summary: pd.DataFrame, panel: str) -> pd.Series:
    """The MLP's ROC-AUC row of a panel."""
    rows = summary[(summary["panel"] == panel) & (summary["model"] == "mlp") & (summary["metric"] == "roc_auc")]
    return rows.iloc[0]


def verdict_block(text: str, label: str) -> str:
    """The HTML of one panel's verdict box."""
    match = re.search(rf'<div class="verdict [^"]*" id="[^"]*" data-panel="{re.escape(label)}">(.*?)</div>', text, re.S)
    assert match, f"no verdict for {label}"
    return match.group(1)


def panel_blocks(text: str) -> dict[str, tuple[str, str]]:
    """Each panel's details block: id -> (opening tag, figures block element)."""
    out = {}
    for match in re.finditer(r'<details class="panel" id="([^"]+)" data-figures="([^"]+)"[^>]*>', text):
        block = re.search(
            rf'<script type="application/(?:json|gzip)" id="{re.escape(match.group(2))}">(.*?)</script>', text, re.S
        )
        assert block, f"no figures for {match.group(1)}"
        out[match.group(1)] = (match.group(0), block.group(0))
    return out


def panel_figures(text: str, anchor: str) -> dict:
    """The figures of the panel whose details have id ``anchor``."""
    element = panel_blocks(text)[anchor][1]
    return unpack_block(re.sub(r"^<script[^>]*>|</script>$", "", element))  # type: ignore[return-value]


def ranked_rows(text: str) -> list[str]:
    """The rows of the ranked table."""
    table = re.search(r'<table class="sortable ranked">(.*?)</table>', text, re.S)
    assert table
    return re.findall(r"<tr[^>]*>.*?</tr>", table.group(1).split("<tbody>", 1)[1], re.S)


# ---------------------------------------------------------------- the page


def test_single_self_contained_file(binary: Report) -> None:
    text = binary.text
    assert binary.path.stat().st_size > 1_000_000
    assert text.count(PLOTLY_MARKER) == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?(https?:)?//", text, re.I)
    assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//", text.split("<script", 1)[0])
    assert "Plotly.newPlot" in text


def test_sections_present_in_order(binary: Report) -> None:
    text = binary.text
    positions = [text.find(f"<h2>{title}</h2>") for _, title in SECTIONS]
    assert all(p > 0 for p in positions), [t for (_, t), p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    for anchor, _ in SECTIONS:
        assert f'href="#{anchor}"' in text


# ---------------------------------------------------------------- verdict


def test_verdicts_honest(binary: Report) -> None:
    text = binary.text
    null = verdict_block(text, "flat")
    assert "No evidence of signal" in null and "includes 0.5" in null
    strong = verdict_block(text, "strong")
    assert "Predictive, not set-specific" in strong and "no evidence" not in strong.lower()
    assert "external validation" in strong  # a named set: only an independent cohort rules out a cohort-wide chance
    assert "Permutation test: p = " in strong and "(q = " in strong
    assert "No random-gene-set comparison was run" in strong
    assert "Screen of 2 panels" in text and "<b>1 is predictive</b>" in text and "signal of" not in text
    assert "Null result" not in text
    assert 'class="warning"' not in text, "99 permutations suffice for 2 panels"


def test_summary_numbers_appear(binary: Report) -> None:
    text, summary = binary.text, binary.summary
    strong = mlp_auc(summary, "strong")
    assert strong["ci_low"] > 0.5 and strong["t_q"] < 0.05 and strong["perm_q"] < 0.05
    for value in (strong["cv_mean"], strong["ci_low"], strong["ci_high"]):
        assert fmt(value) in text
    flat = mlp_auc(summary, "flat")
    assert flat["ci_low"] <= 0.5 <= flat["ci_high"]
    assert f"<b>{fmt(flat['cv_mean'])}</b> [{fmt(flat['ci_low'])}, {fmt(flat['ci_high'])}]" in text
    majority = summary[
        (summary["panel"] == "flat") & (summary["model"] == "majority") & (summary["metric"] == "accuracy")
    ]
    assert f"<b>{fmt(majority['cv_mean'].iloc[0])}</b> for the majority baseline" in text


def test_null_result_three_classes_no_permutations(tmp_path: Path) -> None:
    report = build(tmp_path, [Spec("p3", 4, 0.0)], {"report": {}}, classes=("a", "b", "c"))
    text = report.text
    assert text.count(PLOTLY_MARKER) == 1
    assert "Null result: no panel shows evidence" in text and "Screen of 1 panel" in text
    assert "<b>0 are predictive</b>" in text
    assert "No permutation test was run" in text and "No random gene sets were trained" in text
    figs = panel_figures(text, "panel-p3")
    assert "rocpr" not in figs and "confusion" in figs and "curves" in figs
    assert "two classes only" in text
    assert figs["confusion"]["data"][0]["y"] == ["true a", "true b", "true c"]


def test_multiplicity_warning_for_one_panel(tmp_path: Path) -> None:
    report = build(tmp_path, [Spec("only", 5, 0.0)], {"evaluate": {"permutations": 10}}, permutations=10)
    assert 'class="warning"' in report.text
    assert "evaluate.permutations=10: a permutation p-value cannot fall below 1/(N+1) = 0.0909" in report.text


def test_multiplicity_warning_for_many_panels(many: Report) -> None:
    text = many.text
    warning = re.search(r'<div class="warning">(.*?)</div>', text, re.S)
    assert warning, "19 permutations and 20 random sets per size are too few for 30 panels"
    assert "evaluate.permutations=19" in warning.group(
        1
    ) and "evaluate.random_panels=20 with 30 panels" in warning.group(1)
    assert text.index('class="warning"') < text.index('class="sortable ranked"')


def test_headline_counts_panels_and_random_comparison(many: Report) -> None:
    """SET_001 has signal, but with 19 permutations its permutation q cannot reach 0.05: unconfirmed, and said why."""
    headline = re.search(r'<div class="headline [^"]*">(.*?)</div>', many.text, re.S)
    assert headline
    assert "Screen of 30 panels" in headline.group(1) and "<b>0 are predictive</b>" in headline.group(1)
    assert "SET_001" in headline.group(1) and "too few null replicates" in headline.group(1)
    assert "Null result" not in headline.group(1)
    assert "None is set-specific" in headline.group(1) and "30 compared" in headline.group(1)


# ---------------------------------------------------------------- ranked table, skipped sets, lazy details


def test_ranked_table_order_and_highlight(many: Report) -> None:
    rows = ranked_rows(many.text)
    assert len(rows) == 30
    auc = [float(re.findall(r'data-v="([^"]*)"', r)[2]) for r in rows]
    assert auc == sorted(auc, reverse=True)
    assert [int(re.search(r'data-v="(\d+)"', r).group(1)) for r in rows] == list(range(1, 31))
    assert rows[0].startswith('<tr class="best">') and all(not r.startswith('<tr class="best"') for r in rows[1:])
    best = many.summary.query("model == 'mlp' and metric == 'roc_auc'").sort_values("cv_mean").iloc[-1]
    assert f">{best['panel']}</a>" in rows[0] and best["panel"] == "SET_001"
    header = re.search(r'<table class="sortable ranked"><thead>(.*?)</thead>', many.text, re.S).group(1)
    for column in ("rank", "collection", "panel", "genes", "MLP ROC-AUC [95% CI]", "logistic regression ROC-AUC"):
        assert f">{column}</th>" in header
    for column in (
        "t-test q",
        "permutation p",
        "permutation q",
        "random-panel p",
        "random-panel q",
        "random percentile",
        "call",
    ):
        assert f">{column}</th>" in header
    assert "function sortBy(" in many.text


def test_ranked_table_leaves_out_nulls_that_did_not_run(binary: Report) -> None:
    header = re.search(r'<table class="sortable ranked"><thead>(.*?)</thead>', binary.text, re.S).group(1)
    assert ">permutation p</th>" in header and ">random-panel p</th>" not in header and ">collection</th>" not in header


def test_skipped_sets_listed_with_reason(many: Report) -> None:
    section = many.text.split('<section id="genesets">', 1)[1].split("</section>", 1)[0]
    assert "collection <b>sets</b>: 30 of 32 gene sets kept" in section
    assert "2 skipped gene sets" in section
    assert "TINY" in section and "3 genes found, below min_size 5" in section
    assert "HALF" in section and "coverage 0.50 (5/10) below min_coverage 0.80" in section and ">0.50<" in section


def test_lazy_blocks_for_every_panel(many: Report) -> None:
    blocks = panel_blocks(many.text)
    assert len(blocks) == 30
    for tag, element in blocks.values():
        assert " open" not in tag and element.startswith('<script type="application/gzip"')
    figs = panel_figures(many.text, "panel-sets-SET-001")
    assert set(figs) == {"pair", "curves", "rocpr", "confusion", "calibration", "permutation", "random"}
    assert all({"data", "layout"} <= set(f) for f in figs.values())
    per_panel = (len(many.text.encode()) - len(many.text.split("</script>", 1)[0].encode())) / 30
    assert per_panel < 25_000, f"{per_panel:.0f} bytes per panel"


def test_few_panels_open_with_plain_json(binary: Report) -> None:
    blocks = panel_blocks(binary.text)
    assert set(blocks) == {"panel-strong", "panel-flat"}
    for tag, element in blocks.values():
        assert tag.endswith(" open>") and element.startswith('<script type="application/json"')
    strong = panel_figures(binary.text, "panel-strong")
    assert set(strong) == {"pair", "curves", "rocpr", "confusion", "calibration", "permutation"}
    flat = panel_figures(binary.text, "panel-flat")
    assert [d["label"] for d in flat["pair"]["data"][0]["dimensions"]] == [f"G{j:04d}" for j in range(3, 8)]
    assert "Showing the first 5 of the panel's 7 genes" in binary.text
    assert "mean ± 1 standard deviation" in binary.text
    for key in ("fig-balance", "fig-ranked-auc", "fig-comparison"):
        assert f'id="{key}"' in binary.text


# ---------------------------------------------------------------- figures


def test_pair_plot_standardised_with_holdout_training_rows(binary: Report) -> None:
    pair = panel_figures(binary.text, "panel-strong")["pair"]
    splits = pd.read_parquet(binary.inputs["splits"])
    holdout = splits[splits["split_id"] == "holdout"]
    cohort = pq.read_table(binary.inputs["cohort"]).to_pandas().set_index("SAMPLE_ID")
    raw = cohort.loc[holdout["sample_id"], "G0000"].to_numpy(np.float64)
    train = (holdout["role"] == "train").to_numpy()
    expected = (raw - raw[train].mean()) / raw[train].std()
    first_class = (holdout["label"] == "ctrl").to_numpy()
    drawn = np.array(pair["data"][0]["dimensions"][0]["values"])
    assert pair["data"][0]["name"] == "ctrl"
    np.testing.assert_allclose(drawn, expected[first_class], rtol=5e-3, atol=5e-3)


def test_curves_end_at_the_last_epoch_and_carry_the_bands(binary: Report) -> None:
    curves = panel_figures(binary.text, "panel-strong")["curves"]
    names = {t.get("name") for t in curves["data"]}
    assert {
        "CV mean ± 1 sd (5 splits)",
        "CV mean, test",
        "Holdout split, test",
        "CV mean, training loss (dotted)",
    } <= names
    line = next(t for t in curves["data"] if t.get("name") == "CV mean, test")
    assert line["x0"] + line["dx"] * (len(line["y"]) - 1) == 30


def test_comparison_dot_plot_ranks_all_panels(many: Report) -> None:
    match = re.search(r'<script type="application/json" id="fig-ranked-auc-json">(.*?)</script>', many.text, re.S)
    fig = unpack_block(match.group(1))
    mlp = fig["data"][0]  # type: ignore[index]
    assert mlp["name"] == "MLP" and mlp["y"][0] == "SET_001" and len(mlp["y"]) == 30
    assert mlp["x"] == sorted(mlp["x"], reverse=True)
    assert 'id="fig-comparison"' not in many.text, "the per-metric chart is for few panels"
    assert 'id="fig-random-pools"' in many.text and 'id="fig-p-values"' in many.text


def test_class_balance_counts_missing() -> None:
    fig = class_balance({"ctrl": 30, "case": 10}, missing=4, positive="case")
    assert fig["data"][0]["x"] == ["ctrl", "case (positive)", "no label (left out)"]
    assert fig["data"][0]["y"] == [30, 10, 4]


def test_numbers_rounded_and_curves_thinned() -> None:
    assert numbers([0.123456, math.nan, 12345.6, -0.00098766, 0.0]) == [0.1235, None, 12350.0, -0.0009877, 0.0]
    assert epoch_grid(1000, 100) == (10, 10)
    first, step = epoch_grid(137, 100)
    assert (first, step) == (1, 2) and (137 - first) % step == 0
    assert points_per_curve(3) == 200 and points_per_curve(200) == 100 and points_per_curve(5000) == 100


# ---------------------------------------------------------------- names, escaping, determinism


def test_odd_names_escaped_and_build_deterministic(tmp_path: Path) -> None:
    odd = 'we<i>rd & "x"'
    specs = [
        Spec(odd, 4, 0.0),
        Spec("NA", 4, 0.0),
        Spec("dup", 4, 0.0),
        Spec("dup", 4, 0.0, "c1"),
        Spec("c1_other", 4, 0.0, "c1"),
    ]
    report = build(tmp_path, specs, {"report": {"title": "<My> report"}})
    text = report.text
    body = re.sub(r"<script.*?</script>", "", text, flags=re.S)
    assert "we<i>rd" not in body and "we&lt;i&gt;rd &amp; &quot;x&quot;" in body
    assert "&lt;My&gt; report" in body
    assert ">NA</a>" in text and ">dup (c1)</h3>" not in text
    assert 'data-panel="dup (named panel)"' in text and 'data-panel="dup (c1)"' in text
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', text, re.S):
        assert "</" not in block and "<i>" not in block
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids))
    again = tmp_path / "again.html"
    build_report(report.inputs, {"report": {"title": "<My> report"}}, str(again))
    assert again.read_bytes() == report.path.read_bytes()


def test_many_panel_build_deterministic(many: Report, tmp_path: Path) -> None:
    again = tmp_path / "again.html"
    build_report(many.inputs, {"evaluate": {"permutations": 19, "random_panels": 20}}, str(again))
    assert again.read_bytes() == many.path.read_bytes()
