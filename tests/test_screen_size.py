"""A report of an MSigDB-size screen stays small: 1,000 generated gene sets, no training.

A screen of more than :data:`build.DETAILED_MAX` sets details only the sets a
reader needs (a call, driver genes, the best few); every set keeps its row in
the ranked table, which a search box filters. The run is generated in the
workflow's output layout (test_report_data.py): one unit of 100 sets is
generated, then copied under new set names into ten units, and summary.tsv
comes from the real compare step.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.offline
import pytest
from chromium import CHROMIUM, Chromium
from panelmlp import compare
from panelmlp.compare import read_table
from panelmlp.report import build_report
from panelmlp.report.build import DETAILED_MAX, TOP_DETAILED
from panelmlp.report.inputs import Rows, rows_by_panel, unit_tables
from test_report_data import Spec, make_run

N_SETS = 1000
PER_UNIT = 100
STRONG = (0, 1, 2, 437)
"""Sets with a planted signal (and so the copies of the first three); SET_0437 lies in a copied unit."""

LISTED = "SET_0999"
"""A set without signal that genes.tsv lists (``evaluate.importance``)."""

BYTES_PER_SET = 1000
"""Most bytes a set may add beyond the detailed ones: its ranked-table row and its line in the kept-sets table."""

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not present")


def _rename(frame: pd.DataFrame, names: dict[str, str], unit: str | None = None) -> pd.DataFrame:
    """``frame`` with its panel names (and directory and unit, where present) mapped to a copy's."""
    frame = frame.copy()
    for column in ("panel", "directory"):
        if column in frame:
            frame[column] = frame[column].astype(str).map(lambda v: names.get(v, v))
    if unit is not None and "unit" in frame:
        frame["unit"] = unit
    return frame


def screen_run(root: Path, n_sets: int = N_SETS, strong: tuple[int, ...] = STRONG) -> dict:
    """The report inputs of a screen of ``n_sets`` ten-gene sets of collection ``sets``: the first unit generated,
    the others copies of it under new names; a planted signal in ``strong``; genes.tsv listing :data:`LISTED`."""
    first = [Spec(f"SET_{i:04d}", 10, 1.5 if i in strong else 0.0, "sets") for i in range(PER_UNIT)]
    inputs = make_run(root, first, epochs=60, per_unit=PER_UNIT)
    source = root / "panels" / "sets" / "part-001"
    paths = {k: [] for k in ("panels", "history", "metrics", "predictions", "nulls")}
    for u in range(n_sets // PER_UNIT):
        unit = f"sets/part-{u + 1:03d}"
        out = root / "panels" / unit
        names = {f"SET_{i:04d}": f"SET_{u * PER_UNIT + i:04d}" for i in range(PER_UNIT)}
        if u:
            out.mkdir(parents=True)
            signal = {f"SET_{i:04d}" for i in strong if i // PER_UNIT == u}
            for name in ("history.parquet", "predictions.parquet", "nulls.parquet"):
                _rename(pd.read_parquet(source / name), names).to_parquet(out / name, index=False)
            metrics = _rename(read_table(str(source / "metrics.tsv")), names)
            if signal:  # a copied set with signal takes SET_0000's metrics (planted) under its own name
                planted = metrics[metrics["panel"] == f"SET_{u * PER_UNIT:04d}"]
                for name in signal:
                    metrics = metrics[metrics["panel"] != name]
                    metrics = pd.concat([metrics, planted.assign(panel=name)], ignore_index=True)
            metrics.to_csv(out / "metrics.tsv", sep="\t", index=False, float_format="%.6g")
            _rename(read_table(str(source / "panels.tsv")), names, unit).to_csv(
                out / "panels.tsv", sep="\t", index=False
            )
        for key, name in (
            ("panels", "panels.tsv"),
            ("history", "history.parquet"),
            ("metrics", "metrics.tsv"),
            ("predictions", "predictions.parquet"),
            ("nulls", "nulls.parquet"),
        ):
            paths[key].append(str(out / name))
    compare.compare_step(paths["panels"], paths["metrics"], paths["nulls"], inputs["summary"], inputs["panels"])
    genes = pd.DataFrame(
        {"collection": ["sets"] * 2, "panel": [LISTED] * 2, "call": ["none"] * 2, "gene": ["G0001", "G0002"]}
    )
    genes["listed"] = True
    genes.to_csv(root / "metrics" / "genes.tsv", sep="\t", index=False)
    return (
        inputs
        | {k: paths[k] for k in ("history", "metrics", "predictions", "nulls")}
        | {"genes": str(root / "metrics" / "genes.tsv")}
    )


@pytest.fixture(scope="module")
def screen(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, str]:
    """A 1,000-set screen's inputs, its report's path and text."""
    root = tmp_path_factory.mktemp("screen")
    inputs = screen_run(root / "results")
    out = root / "report.html"
    build_report(inputs, {}, str(out))
    return inputs, out, out.read_text(encoding="utf-8")


def detailed_names(text: str) -> list[str]:
    """Names of the sets with a details block, in page order."""
    return re.findall(r'<details class="panel" id="panel-sets-(SET-\d{4})"', text)


def test_the_generated_screen_is_what_the_test_needs(screen: tuple[dict, Path, str]) -> None:
    inputs, _out, _text = screen
    summary = read_table(inputs["summary"])
    auc = summary[(summary["model"] == "mlp") & (summary["metric"] == "roc_auc")].set_index("panel")
    assert len(auc) == N_SETS
    predictive = set(auc.index[auc["call"].isin(["predictive", "set-specific"])])
    assert {f"SET_{i:04d}" for i in STRONG} <= predictive, predictive
    assert LISTED not in predictive and auc.loc[LISTED, "cv_mean"] < auc["cv_mean"].sort_values().iloc[-TOP_DETAILED]


def test_size_per_set_stays_small(screen: tuple[dict, Path, str]) -> None:
    _inputs, out, text = screen
    plotly_js = len(plotly.offline.get_plotlyjs().encode())
    blocks = re.findall(r'<details class="panel".*?</details>', text, re.S)
    assert TOP_DETAILED <= len(blocks) <= DETAILED_MAX
    beyond = out.stat().st_size - plotly_js - sum(len(b.encode()) for b in blocks)
    assert beyond / N_SETS < BYTES_PER_SET, f"{beyond / N_SETS:.0f} bytes per set beyond plotly.js and the details"
    per_detail = sum(len(b.encode()) for b in blocks) / len(blocks)
    # 5,000 sets would weigh plotly.js, at most DETAILED_MAX details and a row each: under the 20 MB target.
    assert plotly_js + DETAILED_MAX * per_detail + 5000 * BYTES_PER_SET < 20e6


def test_the_sets_a_reader_needs_have_details(screen: tuple[dict, Path, str]) -> None:
    inputs, _out, text = screen
    summary = read_table(inputs["summary"])
    auc = summary[(summary["model"] == "mlp") & (summary["metric"] == "roc_auc")]
    ranked = auc.sort_values(["cv_mean", "panel"], ascending=[False, True])["panel"].tolist()
    # a call, or an interval above chance without one (the report's "unconfirmed")
    called = set(auc.loc[auc["call"].isin(["predictive", "set-specific"]) | (auc["ci_low"] > 0.5), "panel"])
    names = [n.replace("-", "_") for n in detailed_names(text)]
    expected = [p for i, p in enumerate(ranked) if p in called or p == LISTED or i < TOP_DETAILED]
    assert names == expected, "details: the called sets, the listed one and the best few, in rank order"
    rows = re.findall(r"<tr(?: class=\"best\")? data-s=\"([^\"]*)\">", text)
    assert len(rows) == N_SETS
    unlinked = ranked[-1] if ranked[-1] not in expected else ranked[-2]
    assert (
        f'data-v="{unlinked}">{unlinked}</td>' in text
        and f'href="#panel-sets-{unlinked.replace("_", "-")}"' not in text
    )


def test_reading_only_the_wanted_panels_gives_their_rows(screen: tuple[dict, Path, str]) -> None:
    inputs, _out, _text = screen
    wanted = {("sets", "SET_0003"), ("sets", "SET_0437")}
    full = {}
    for unit in unit_tables(inputs):
        full |= {k: (unit.history[k], unit.predictions[k]) for k in wanted if k in unit.metrics}
    part = {}
    for unit in unit_tables(inputs, wanted):
        assert set(unit.history) <= wanted and set(unit.predictions) <= wanted
        part |= {k: (unit.history[k], unit.predictions[k]) for k in unit.history}
    assert set(part) == wanted == set(full)
    for key in wanted:
        for mine, theirs in zip(part[key], full[key], strict=True):
            assert set(mine.columns) == set(theirs.columns)
            for column in theirs.columns:
                assert np.array_equal(mine[column], theirs[column]), (key, column)


def test_a_screen_of_detailed_max_sets_details_every_set(tmp_path: Path) -> None:
    inputs = screen_run(tmp_path / "results", n_sets=DETAILED_MAX, strong=(0,))
    build_report(inputs, {}, str(tmp_path / "report.html"))
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert len(detailed_names(text)) == DETAILED_MAX
    assert 'id="ranked-search"' not in text and "data-s=" not in text


SEARCH = """
(async () => {
  const box = document.getElementById("ranked-search");
  const visible = () => Array.from(document.querySelectorAll("table.ranked tbody tr")).filter((r) => !r.hidden).length;
  const typed = async (text) => {
    box.value = text;
    box.dispatchEvent(new Event("input"));
    await new Promise((r) => setTimeout(r, 400));
    return visible();
  };
  return {all: visible(), gene: await typed("%s"), both: await typed("%s"), none: await typed("no-such-gene"), back: await typed("")};
})()
"""


OPEN_PANEL = """
(async () => {
  const box = document.getElementById("panel-sets-%s");
  box.open = true;
  const start = Date.now();
  while (box.getAttribute("data-drawn") !== "1" && Date.now() - start < 20000) { await new Promise((r) => setTimeout(r, 20)); }
  return [box.getAttribute("data-drawn"), box.querySelectorAll(".main-svg").length > 0];
})()
"""


@needs_chromium
def test_the_screen_report_renders_and_searches(screen: tuple[dict, Path, str]) -> None:
    inputs, out, text = screen
    panels = read_table(inputs["panels"])
    kept = panels[panels["status"] == "kept"]
    with_gene = sum("G0007" in str(g).split() for g in kept["genes"])
    with_both = sum({"G0007", "G0009"} <= set(str(g).split()) for g in kept["genes"])
    assert 0 < with_both < with_gene < N_SETS
    with Chromium(timeout=60) as browser:
        session = browser.open(out.resolve().as_uri())
        browser.ready(session)
        counts = browser.evaluate(session, SEARCH % ("g0007", "G0007 g0009"))
        assert counts == {"all": N_SETS, "gene": with_gene, "both": with_both, "none": 0, "back": N_SETS}
        first = detailed_names(text)[0]
        drawn = browser.evaluate(session, OPEN_PANEL % first)
        assert drawn == ["1", True]


def test_rows_share_category_names_and_group_by_collection_and_panel() -> None:
    # history.parquet's names are categorical: each row's text is its category's (one shared str), '' where missing
    frame = pd.DataFrame(
        {
            "collection": pd.Categorical(["", "a", "a", None, "a"]),
            "panel": pd.Categorical(["x", "y", "x", "x", "y"]),
            "split_id": pd.Categorical([None] * 5, categories=[]),
            "epoch": np.arange(5),
        }
    )
    rows = Rows.of(frame)
    assert rows["collection"].tolist() == ["", "a", "a", "", "a"]
    assert rows["split_id"].tolist() == [""] * 5
    assert rows["panel"][1] is rows["panel"][4]
    groups = rows_by_panel(frame)
    assert list(groups) == [("", "x"), ("a", "y"), ("a", "x")], "order of first appearance"
    assert {k: v["epoch"].tolist() for k, v in groups.items()} == {
        ("", "x"): [0, 3],
        ("a", "y"): [1, 4],
        ("a", "x"): [2],
    }
