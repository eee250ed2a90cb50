"""The HTML report of a survival target, built from a small generated run in the workflow's output layout.

The run (:func:`make_survival_run`) follows the survival formats fit.py
writes: labels.json with event and time, splits with ``y`` (days) and
``event``, per unit metrics.tsv (c_index, uno_c, td_auc, ibs, td_auc_<h>),
predictions.parquet (time, event, risk, risk_group cut at each split's
training median risk), history.parquet (train_loss, test_loss, c_index) and
nulls.parquet; summary.tsv, panels.tsv and verdict.json come from the real
compare step. Event times follow a proportional hazard of one latent
variable, which a panel's risks carry in proportion to its ``signal``. The
figures are checked against scikit-survival (Kaplan-Meier, log-rank) and
plain counts; the page against the classification-only sections it must not
hold.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from panelmlp import compare
from panelmlp.compare import read_table
from panelmlp.report import build_report
from panelmlp.report.figures import CHANCE_LEVEL, at_risk, first_repeat, nice_ticks
from panelmlp.report.inputs import Rows
from panelmlp.report.page import fmt
from panelmlp.targets import KINDS
from test_report import panel_figures, ranked_rows, verdict_block
from test_report_data import Spec, _panel_rows, _write_common

EVENT, CENSORED = "dead", "alive"
HORIZONS = (200, 400)
EPOCHS = 20
CONFIG = {"evaluate": {"permutations": 49, "random_panels": 20}, "report": {"pairplot_max_genes": 4}}
FOLDS, REPEATS = 4, 2


def _times(n: int, seed: int = 0) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray]:
    """Sample ids, a latent risk variable and (time in days, event) drawn from a proportional hazard in it."""
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"S{i:03d}" for i in range(n)])
    latent = rng.normal(size=n)
    event_time = rng.exponential(400.0, size=n) / np.exp(latent)
    censor_time = rng.uniform(100.0, 1200.0, size=n)
    time = np.ceil(np.minimum(event_time, censor_time))
    return ids, latent, time, (event_time <= censor_time).astype(np.int64)


def _split_table(ids: pd.Index, time: np.ndarray, event: np.ndarray) -> pd.DataFrame:
    """A holdout split and ``REPEATS`` x ``FOLDS`` CV splits (``cv_r<r>_f<f>``), in splits.parquet's columns."""
    n = len(ids)
    parts = [("holdout", "holdout", np.arange(n) >= n - n // 4)]
    for r in range(REPEATS):
        order = np.random.default_rng(100 + r).permutation(n)
        fold = np.empty(n, dtype=int)
        fold[order] = np.arange(n) % FOLDS
        parts += [(f"cv_r{r + 1}_f{f + 1}", "cv", fold == f) for f in range(FOLDS)]
    frames = []
    for split_id, kind, test in parts:
        index = np.r_[np.flatnonzero(~test), np.flatnonzero(test)]
        frames.append(
            pd.DataFrame(
                {
                    "split_id": split_id,
                    "kind": kind,
                    "sample_id": ids[index],
                    "role": ["train"] * int((~test).sum()) + ["test"] * int(test.sum()),
                    "label": np.where(event[index] == 1, EVENT, CENSORED),
                    "y": time[index].astype(np.float64),
                    "event": event[index],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _labels_json(root: Path, time: np.ndarray, event: np.ndarray) -> None:
    """labels.json of a survival target (formats of the split step)."""
    n = len(time)
    info = {
        "kind": "survival",
        "target": "VITAL_STATUS",
        "event": {"column": "VITAL_STATUS", "event": EVENT, "censored": CENSORED},
        "time": {"event": "DAYS_TO_DEATH", "censored": "DAYS_TO_LAST_FOLLOWUP"},
        "samples": n + 5,
        "labelled": n,
        "missing_label": 2,
        "unmatched_label": 1,
        "unmatched_values": {"unknown": 1},
        "missing_time": 1,
        "negative_time": 1,
        "classes": [CENSORED, EVENT],
        "positive": EVENT,
        "class_counts": {CENSORED: int((event == 0).sum()), EVENT: int(event.sum())},
        "horizons": list(HORIZONS),
        "values": {
            "median_time": float(np.median(time)),
            "max_time": float(time.max()),
            "events": int(event.sum()),
            "censored": int((event == 0).sum()),
        },
        "splits": {"cv": FOLDS * REPEATS, "holdout": 1},
    }
    (root / "labels.json").write_text(json.dumps(info), encoding="utf-8")


def _c_index(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's C by scikit-survival."""
    from sksurv.metrics import concordance_index_censored

    return float(concordance_index_censored(event.astype(bool), time, risk)[0])


@dataclass
class Unit:
    """One unit's rows, written at the end."""

    metrics: list[dict]
    predictions: list[pd.DataFrame]
    history: list[pd.DataFrame]


def _panel(unit: Unit, spec: Spec, splits: pd.DataFrame, latent: pd.Series, seed: int) -> None:
    """Every split and model (mlp, constant, cox_ridge) of one panel: risks, risk groups, metrics and history."""
    rng = np.random.default_rng(seed)
    for split_id, part in splits.groupby("split_id", sort=False):
        train, test = part[part["role"] == "train"], part[part["role"] == "test"]
        kind = str(part["kind"].iloc[0])
        for model in ("mlp", "constant", "cox_ridge"):
            if model == "constant":
                risk = np.zeros(len(part))
            else:  # the model's risk of every row; a random offset per split, as a Cox model's risk has
                risk = (
                    spec.signal * latent[part["sample_id"]].to_numpy() + rng.normal(size=len(part)) + rng.normal(0, 3)
                )
            is_test = (part["role"] == "test").to_numpy()
            median = float(np.median(risk[~is_test]))
            test_risk = risk[is_test]
            t, e = test["y"].to_numpy(), test["event"].to_numpy()
            c = _c_index(t, e, test_risk)
            key = {
                "collection": spec.collection,
                "panel": spec.name,
                "model": model,
                "split_id": split_id,
                "kind": kind,
            }
            row = key | {"n_train": len(train), "n_test": len(test), "n_uninformative": 0}
            row |= {
                "c_index": c,
                "uno_c": c,
                "td_auc": c,
                "ibs": 0.2 - (0.05 * spec.signal if model != "constant" else 0),
            }
            row |= {f"td_auc_{h}": c for h in HORIZONS}
            row |= {"best_epoch": float(EPOCHS) if model == "mlp" else math.nan, "grid_point": ""}
            unit.metrics.append(row)
            frame = pd.DataFrame(key, index=range(len(test)))
            frame["sample_id"] = test["sample_id"].to_numpy()
            frame["time"], frame["event"], frame["risk"] = t, e, test_risk
            frame["risk_group"] = np.where(test_risk > median, "high", "low")
            unit.predictions.append(frame)
        epoch = np.arange(1, EPOCHS + 1)
        history = pd.DataFrame(
            {
                "collection": spec.collection,
                "panel": spec.name,
                "split_id": split_id,
                "kind": kind,
                "epoch": epoch.astype(np.int32),
                "train_loss": (3.0 * np.exp(-epoch / 8)).astype(np.float32),
                "test_loss": (3.2 - 0.1 * spec.signal + 0.01 * epoch).astype(np.float32),
                "c_index": np.clip(0.5 + 0.15 * spec.signal + rng.normal(0, 0.03, EPOCHS), 0, 1).astype(np.float32),
                "device": "cpu",
            }
        )
        unit.history.append(history)


def _nulls(specs: list[Spec], cv_ids: list[str], permutations: int, random_panels: int, seed: int) -> pd.DataFrame:
    """Permutation replicates of each panel and random gene sets of each panel's size: C-index near 0.5."""
    rng = np.random.default_rng(seed)
    rows = [
        ("permutation", s.collection, s.name, s.n_genes, r, split, 3.0, 3.1, rng.uniform(0.42, 0.58))
        for s in specs
        for r in range(1, permutations + 1)
        for split in cv_ids
    ]
    rows += [
        ("random", "", "", s.n_genes, r, split, 3.0, 3.1, rng.uniform(0.40, 0.62))
        for s in specs
        for r in range(1, random_panels + 1)
        for split in cv_ids
    ]
    columns = ["kind", "collection", "panel", "size", "replicate", "split_id", "train_loss", "test_loss", "c_index"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"kind": "string", "collection": "string", "panel": "string", "split_id": "string"})


def make_survival_run(
    root: Path, specs: list[Spec], n_samples: int = 96, permutations: int = 49, random_panels: int = 20
) -> dict:
    """Write a survival run under ``root`` (one unit per named panel) and return the report rule's inputs."""
    root.mkdir(parents=True, exist_ok=True)
    ids, latent, time, event = _times(n_samples)
    status = pd.Series(np.where(event == 1, EVENT, CENSORED), index=ids)
    n_genes = max(40, max(s.n_genes for s in specs) + 5)
    _write_common(root, status, [CENSORED, EVENT], n_genes, quarantined=2)  # clean.json, quarantine, cohort
    _labels_json(root, time, event)
    splits = _split_table(ids, time, event)
    splits.to_parquet(root / "splits.parquet", index=False)
    cv_ids = [s for s in splits["split_id"].unique() if s != "holdout"]
    genes = {s.name: [f"G{(3 * i + j) % n_genes:04d}" for j in range(s.n_genes)] for i, s in enumerate(specs)}
    paths: dict[str, list[str]] = {k: [] for k in ("panels", "history", "metrics", "predictions", "nulls")}
    for u, spec in enumerate(specs):
        out = root / "panels" / spec.name
        out.mkdir(parents=True)
        unit = Unit([], [], [])
        _panel(unit, spec, splits, pd.Series(latent, index=ids), seed=1000 + u)
        pd.DataFrame(unit.metrics).to_csv(out / "metrics.tsv", sep="\t", index=False, float_format="%.6g")
        predictions = pd.concat(unit.predictions, ignore_index=True)
        for column in ("collection", "panel", "model", "split_id", "kind", "sample_id", "risk_group"):
            predictions[column] = predictions[column].astype("string")
        predictions.to_parquet(out / "predictions.parquet", index=False)
        history = pd.concat(unit.history, ignore_index=True)
        for column in ("collection", "panel", "split_id", "kind", "device"):
            history[column] = history[column].astype("category")
        history.to_parquet(out / "history.parquet", index=False)
        _panel_rows(spec.name, [spec], [], genes).to_csv(out / "panels.tsv", sep="\t", index=False)
        _nulls([spec], cv_ids, permutations, random_panels, seed=u).to_parquet(out / "nulls.parquet", index=False)
        for key, name in (
            ("panels", "panels.tsv"),
            ("history", "history.parquet"),
            ("metrics", "metrics.tsv"),
            ("predictions", "predictions.parquet"),
            ("nulls", "nulls.parquet"),
        ):
            paths[key].append(str(out / name))
    (root / "metrics").mkdir(exist_ok=True)
    compare.compare_step(
        paths["panels"],
        paths["metrics"],
        paths["nulls"],
        str(root / "metrics" / "summary.tsv"),
        str(root / "metrics" / "panels.tsv"),
        permutations,
        random_panels,
        verdict_out=str(root / "metrics" / "verdict.json"),
    )
    inputs: dict = {
        "accounting": str(root / "clean.json"),
        "quarantine": str(root / "quarantine.tsv"),
        "labels": str(root / "labels.json"),
        "cohort": str(root / "cohort.parquet"),
        "splits": str(root / "splits.parquet"),
        "summary": str(root / "metrics" / "summary.tsv"),
        "panels": str(root / "metrics" / "panels.tsv"),
        "verdict": str(root / "metrics" / "verdict.json"),
    }
    return inputs | {k: paths[k] for k in ("history", "metrics", "predictions", "nulls")}


@dataclass
class Built:
    """A built survival report and what it was built from."""

    text: str
    summary: pd.DataFrame
    inputs: dict
    path: Path


@pytest.fixture(scope="module")
def survival(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Two named panels: 'strong' whose risks follow the hazard, 'flat' whose risks are noise; 49 permutations and
    20 random gene sets of each size."""
    root = tmp_path_factory.mktemp("survival")
    inputs = make_survival_run(root / "results", [Spec("strong", 3, 1.5), Spec("flat", 6, 0.0)])
    out = root / "report.html"
    build_report(inputs, CONFIG, str(out))
    return Built(out.read_text(encoding="utf-8"), read_table(inputs["summary"]), inputs, out)


def _predictions(built: Built, panel: str) -> Rows:
    """A panel's rows of predictions.parquet."""
    frame = pd.read_parquet(built.inputs["predictions"][0 if panel == "strong" else 1])
    return Rows.of(frame)


def _anchor(text: str, panel: str) -> str:
    """The id of a panel's details block."""
    match = re.search(rf'<details class="panel" id="([^"]*{panel}[^"]*)"', text)
    assert match, panel
    return match.group(1)


# ---------------------------------------------------------------- figures


def test_kaplan_meier_curves_match_scikit_survival_on_the_first_repeat(survival: Built) -> None:
    from sksurv.compare import compare_survival
    from sksurv.nonparametric import kaplan_meier_estimator

    figs = panel_figures(survival.text, _anchor(survival.text, "strong"))
    assert "km" in figs
    rows = _predictions(survival, "strong").where(model="mlp", kind="cv")
    first = rows.take(np.char.startswith(rows["split_id"].astype(str), "cv_r1_"))
    assert len(first) == 96, "the first repeat holds each sample once"
    lines = [t for t in figs["km"]["data"] if t.get("mode") == "lines"]
    assert len(lines) == 2
    for trace in lines:
        group = "high" if trace["name"].startswith("high") else "low"
        mine = first["risk_group"] == group
        times, surv = kaplan_meier_estimator(first["event"][mine].astype(bool), first["time"][mine])
        x, y = np.array(trace["x"]), np.array(trace["y"])
        assert x[0] == 0 and y[0] == 1
        # each KM step, as drawn (3 significant digits), is the estimator's survival just after that time
        drawn = dict(zip(x[1:], y[1:], strict=False))
        for t, s in zip(times, surv, strict=True):
            assert drawn[float(f"{t:.3g}")] == pytest.approx(s, abs=5e-3)
        assert f"n = {int(mine.sum())}" in trace["name"]
    group = np.array([1 if g == "high" else 0 for g in first["risk_group"]])
    structured = np.array(
        list(zip(first["event"].astype(bool), first["time"], strict=True)), dtype=[("e", bool), ("t", float)]
    )
    chi2, p = compare_survival(structured, group)
    block = survival.text.split(f'id="{_anchor(survival.text, "strong")}"', 1)[1].split("</details>", 1)[0]
    note = re.search(r"Log-rank test of high against low: χ² = ([0-9.]+), p = ([0-9.e+-]+[0-9])", block)
    assert note and float(note.group(1)) == pytest.approx(chi2, rel=1e-2)
    assert float(note.group(2)) == pytest.approx(p, rel=2e-2)
    assert p < 0.01, "the strong panel's risk groups separate"
    assert "Only the first of the 2 CV repeats is drawn and tested" in survival.text


def test_number_at_risk_is_counted_at_each_tick(survival: Built) -> None:
    figs = panel_figures(survival.text, _anchor(survival.text, "strong"))
    rows = _predictions(survival, "strong").where(model="mlp", kind="cv")
    first, folds, repeats = first_repeat(rows)
    assert (folds, repeats) == (FOLDS, REPEATS)
    ticks = nice_ticks(float(first["time"].max()))
    tables = [t for t in figs["km"]["data"] if t.get("mode") == "text"]
    assert len(tables) == 2
    for trace, group in zip(tables, ("high", "low"), strict=True):
        times = first["time"][first["risk_group"] == group]
        expected = [int(np.sum(times >= tick)) for tick in ticks]
        assert [int(v) for v in trace["text"]] == expected
        assert list(at_risk(times, ticks)) == expected
    assert expected[0] == len(times)


def test_nice_ticks_are_round() -> None:
    assert list(nice_ticks(1234.0)) == [0, 200, 400, 600, 800, 1000, 1200]
    assert list(nice_ticks(9.0)) == [0, 2, 4, 6, 8]
    assert list(nice_ticks(0.0)) == [0]


def test_c_index_curves_average_the_cv_splits_with_chance_at_half(survival: Built) -> None:
    figs = panel_figures(survival.text, _anchor(survival.text, "flat"))
    curves = figs["curves"]
    titles = [a["text"] for a in curves["layout"]["annotations"]]
    assert titles == ["Loss (Cox partial likelihood)", "C-index (Harrell)"]
    mean = next(t for t in curves["data"] if t["name"] == "CV mean, test" and t.get("yaxis") == "y2")
    history = pd.read_parquet(survival.inputs["history"][1])
    cv = history[history["kind"] == "cv"]
    expected = cv.groupby("epoch")["c_index"].mean().to_numpy(np.float64)
    assert mean["y"] == pytest.approx(expected, abs=2e-3)
    chance = [s for s in curves["layout"]["shapes"] if s["yref"] == "y2"]
    assert [s["y0"] for s in chance] == [0.5] == [KINDS["survival"].chance_levels["c_index"]]
    assert CHANCE_LEVEL["c_index"] == 0.5 and CHANCE_LEVEL["roc_auc"] == 0.5 and CHANCE_LEVEL["r2"] == 0.0


def test_risk_histogram_splits_events_from_censored(survival: Built) -> None:
    figs = panel_figures(survival.text, _anchor(survival.text, "strong"))
    bars = figs["risk"]["data"]
    rows = _predictions(survival, "strong").where(model="mlp", kind="cv")
    events = int(rows["event"].sum())
    assert [int(sum(b["y"])) for b in bars] == [events, len(rows) - events]
    assert bars[0]["name"].startswith(EVENT) and bars[1]["name"].startswith(CENSORED)
    # centred per split: the strong panel's events sit to the right of the censored
    centres = np.array(bars[0]["x"])
    mean_event = np.average(centres, weights=bars[0]["y"])
    mean_censored = np.average(centres, weights=bars[1]["y"])
    assert mean_event > mean_censored + 0.5


def test_no_classification_only_figures_or_sections(survival: Built) -> None:
    for panel in ("strong", "flat"):
        figs = panel_figures(survival.text, _anchor(survival.text, panel))
        assert set(figs) == {"pair", "curves", "km", "risk", "permutation", "random"}
    for absent in ("ROC curve", "Confusion matrices", "reliability diagram", "Decision threshold", "majority"):
        assert absent not in survival.text
    assert "Survival metrics." in survival.text


# ---------------------------------------------------------------- verdict, tables and words


def test_verdict_and_summary_speak_of_the_c_index(survival: Built) -> None:
    summary = survival.summary
    main = summary[(summary["model"] == "mlp") & (summary["metric"] == "c_index")].set_index("panel")
    assert main.loc["strong", "ci_low"] > 0.5 and main.loc["strong", "chance"] == 0.5
    strong = verdict_block(survival.text, "strong")
    assert f"Mean cross-validated C-index <b>{fmt(main.loc['strong', 'cv_mean'])}</b>" in strong
    assert "orders the event times" in strong or "order the event times" in strong
    ibs = summary[(summary["panel"] == "strong") & (summary["metric"] == "ibs")].set_index("model")["cv_mean"]
    assert f"Integrated Brier score {fmt(ibs['mlp'])} against <b>{fmt(ibs['constant'])}</b>" in strong
    assert "Ridge Cox regression on the same genes: C-index" in strong
    flat = verdict_block(survival.text, "flat")
    assert "No evidence of signal" in flat
    assert "predictive</b>" in survival.text and "C-index interval above 0.5" in survival.text
    assert "time to 'dead', censored 'alive'" in survival.text


def test_ranked_table_and_comparison(survival: Built) -> None:
    rows = ranked_rows(survival.text)
    assert len(rows) == 2 and ">strong</a>" in rows[0]
    assert "integrated Brier score: MLP / constant risk" in survival.text
    assert "ridge Cox regression C-index" in survival.text
    assert "Ridge Cox regression" in survival.text and "Constant risk" in survival.text
    for name in ("Harrell", "Uno&#x27;s C", "Time-dependent AUC", "Integrated Brier score"):
        assert name in survival.text or name.replace("&#x27;", "'") in survival.text


def test_accounting_counts_times_left_out(survival: Built) -> None:
    text = survival.text
    assert "time missing or not a number (left out)" in text and "time negative (left out)" in text
    labels = json.loads(Path(survival.inputs["labels"]).read_text())
    events = labels["values"]["events"]
    assert f"{events} of 96 usable samples" in text


def test_survival_build_is_deterministic(survival: Built, tmp_path: Path) -> None:
    out = tmp_path / "again.html"
    build_report(survival.inputs, CONFIG, str(out))
    assert out.read_text(encoding="utf-8") == survival.text


DRAWN = """
(async () => {
  const boxes = Array.from(document.querySelectorAll("details.panel"));
  boxes.forEach((box) => { box.open = true; });
  const start = Date.now();
  while (boxes.some((box) => box.getAttribute("data-drawn") !== "1") && Date.now() - start < 15000) {
    if (boxes.some((box) => box.getAttribute("data-drawn") === "error")) { break; }
    await new Promise((r) => setTimeout(r, 20));
  }
  return boxes.map((box) => ({
    drawn: box.getAttribute("data-drawn"),
    figures: Array.from(box.querySelectorAll("[data-figure]"))
      .filter((el) => el.querySelector(".main-svg")).map((el) => el.getAttribute("data-figure")),
  }));
})()
"""
"""Opens every panel, waits until its figures are drawn, and names the figures that hold a plot."""


def test_survival_report_draws_in_chromium(survival: Built) -> None:
    from chromium import CHROMIUM, Chromium

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not present")
    with Chromium(timeout=30) as browser:
        session = browser.open(survival.path.resolve().as_uri())
        browser.ready(session)
        panels = browser.evaluate(session, DRAWN)
    assert [p["drawn"] for p in panels] == ["1", "1"], panels
    for p in panels:
        assert p["figures"] == ["pair", "curves", "km", "risk", "permutation", "random"], p


def test_random_gene_sets_and_the_screen_speak_of_the_c_index(survival: Built) -> None:
    screen = json.loads(Path(survival.inputs["verdict"]).read_text())
    assert screen["metric"] == "c_index"
    assert (
        f"The median random gene set of the same sizes scores C-index <b>{screen['random_median_score_overall']:.3g}</b>"
        in (survival.text)
    )
    assert "mean CV C-index of random gene sets of each size bin" in survival.text
    figs = panel_figures(survival.text, _anchor(survival.text, "strong"))
    assert figs["random"]["layout"]["xaxis"]["title"]["text"] == "mean CV C-index of random 3-gene sets"


def test_many_panel_guide_is_the_survival_one() -> None:
    from panelmlp.report.detail import GUIDE, SURVIVAL_GUIDE, guide

    text = guide("survival")
    assert "Kaplan-Meier curves of the predicted risk groups" in text and "ROC" not in text
    assert "coloured by event status" in SURVIVAL_GUIDE["pair"] and SURVIVAL_GUIDE["pair"] != GUIDE["pair"]
    assert guide("classification") == guide(None) and "Kaplan-Meier" not in guide("regression")


def test_one_risk_group_draws_one_curve_without_a_test() -> None:
    from panelmlp.report.detail import risk_group_note
    from panelmlp.report.figures import km_figure, risk_groups

    n = 12
    rows = Rows(
        {
            "model": np.array(["mlp"] * n, dtype=object),
            "kind": np.array(["cv"] * n, dtype=object),
            "split_id": np.array([f"cv_r1_f{1 + i % 3}" for i in range(n)], dtype=object),
            "time": np.arange(1.0, n + 1),
            "event": np.array([1, 0] * (n // 2)),
            "risk": np.zeros(n),
            "risk_group": np.array(["low"] * n, dtype=object),
        }
    )
    groups = risk_groups(rows)
    assert groups is not None and list(groups.groups) == ["low"] and math.isnan(groups.p)
    assert (groups.folds, groups.repeats) == (3, 1)
    figure = km_figure(groups)
    assert [t["name"] for t in figure["data"] if t.get("mode") == "lines"] == ["low risk (n = 12, 6 event)"]
    assert "No log-rank test" in risk_group_note(groups) and "Each sample counts once." in risk_group_note(groups)
