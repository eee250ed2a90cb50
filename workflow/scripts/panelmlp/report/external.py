"""The report's external-validation section: how the panels did on new samples that carry the target.

Filled by ``snakemake predict`` (the report is rebuilt with the predictions):
per panel, the external value of each metric with its bootstrap 95% interval
(``results/predictions/{panel}/{name}.metrics.tsv``, from
:mod:`panelmlp.validation`), the number of samples scored, and the
difference from the panel's cross-validated estimate (summary.tsv, the MLP's
CV mean, matched on collection and panel: a named panel and a collection's
set may share a name). New samples that were in the training cohort are
named and left out of these numbers. The CV estimate of a panel picked
because it was called predictive is optimistic (the winner's curse).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from .inputs import as_list
from .page import Html, caption, esc, fmt, html_table, section

WHY = (
    "A new cohort that took no part in training or selection is the only remedy for a chance association that the "
    "whole training cohort shares (a batch, a site, a sampling accident): no split of that cohort, no permutation "
    "and no random gene set can reveal it. A panel whose external value falls well below its CV estimate did not "
    "carry over. The CV estimate of a panel picked because it was called predictive, among many screened, is "
    "optimistic (the winner's curse: chosen for scoring high, it likely scored high partly by luck), so expect its "
    "external value to fall somewhat below it even when the signal is real."
)
NAMES = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "accuracy": "accuracy",
    "brier": "Brier score (lower is better)",
    "r2": "R²",
    "rmse": "RMSE",
    "mae": "MAE",
    "c_index": "C-index",
    "uno_c": "Uno's C",
    "td_auc": "time-dependent AUC",
    "ibs": "integrated Brier score (lower is better)",
}


def read_external(inputs: Mapping[str, str | Sequence[str]]) -> tuple[dict | None, pd.DataFrame]:
    """The prediction summary (None when predict did not run) and every panel's external metrics, concatenated."""
    summaries = as_list(inputs.get("external_summary", []))
    summary = json.loads(Path(summaries[0]).read_text(encoding="utf-8")) if summaries else None
    frames = []
    for path in as_list(inputs.get("external", [])):
        frame = pd.read_csv(
            path, sep="\t", keep_default_na=False, na_values=[""], dtype={"panel": str, "collection": str}
        )
        if "collection" in frame:  # '' for a named panel; absent from tables of older runs
            frame["collection"] = frame["collection"].fillna("")
        if len(frame):
            frame.insert(0, "table", path)
            frames.append(frame)
    return summary, (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())


def _text(value: object) -> str:
    """A name column's value as text, '' for a missing one."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def cv_estimates(summary: pd.DataFrame) -> dict[tuple[str, str, str], Mapping]:
    """The MLP's CV rows of summary.tsv by (collection, panel, metric): cv_mean, ci_low, ci_high.

    Keyed by collection too: a named panel (collection '') and a set of a
    collection may share a name, and must not take each other's estimate.
    """
    if summary is None or not len(summary) or "model" not in summary:
        return {}
    rows = summary[summary["model"] == "mlp"]
    return {(_text(r.get("collection")), str(r["panel"]), str(r["metric"])): r for r in rows.to_dict("records")}


def external_collection(row: Mapping, collections: set[str]) -> str:
    """The collection of an external metrics row: its own column, or (tables written before it had one) the
    folder of its table, ``results/predictions/{panel or collection}/``, when that folder is a collection."""
    if isinstance(row.get("collection"), str):
        return row["collection"]
    folder = Path(str(row.get("table", ""))).parent.name
    return folder if folder in collections else ""


def _ci(value: object, low: object, high: object) -> str:
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def _difference(external: object, cv: object) -> float:
    try:
        return float(external) - float(cv)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def external_section(inputs: Mapping[str, str | Sequence[str]], summary: pd.DataFrame) -> str:
    """Section "external": the cohort, n, external metrics with intervals and the difference from the CV estimate."""
    found, metrics = read_external(inputs)
    if found is None:
        body = (
            caption(
                "No new samples were scored in this run. <code>snakemake predict --config predict_csv=new.csv</code> "
                "scores them with every panel's checkpoints and rebuilds this report; when the new file has the target "
                "column, this section shows how each panel does on it."
            )
            + f"<p>{esc(WHY)}</p>"
        )
        return section("external", body)
    parts = [
        caption(
            f"New samples: <b>{esc(found.get('file', '?'))}</b>, {found.get('samples', 0)} read, "
            f"{found.get('quarantined', 0)} line(s) quarantined."
        )
    ]
    trained = found.get("in_training") or {}
    if trained.get("samples"):
        shown = ", ".join(map(str, trained.get("ids", [])[:10]))
        parts.append(
            f'<div class="warning">{trained["samples"]} of the new samples were in the training cohort (matched on '
            f"{esc(trained.get('matched_on', 'the sample id'))}: {esc(shown)}{' ...' if trained['samples'] > 10 else ''}"
            "): their predictions are not out-of-sample, and they are left out of the numbers below.</div>"
        )
    validation = found.get("external_validation")
    if not validation or not len(metrics):
        parts.append(
            caption(
                "The new file has no column of the target, so the predictions could not be scored: no external "
                "validation. Add the target column (config target.column) to score them."
            )
        )
        parts.append(f"<p>{esc(WHY)}</p>")
        return section("external", "\n".join(parts))
    cv = cv_estimates(summary)
    collections = {c for c, _, _ in cv if c}
    rows = []
    for r in metrics.to_dict("records"):
        collection = external_collection(r, collections)
        estimate = cv.get((collection, str(r["panel"]), str(r["metric"])), {})
        rows.append(
            [
                f"{collection}/{r['panel']}" if collection else r["panel"],
                NAMES.get(str(r["metric"]), r["metric"]),
                int(r["n"]),
                Html(_ci(r["value"], r["ci_low"], r["ci_high"])),
                Html(_ci(estimate.get("cv_mean"), estimate.get("ci_low"), estimate.get("ci_high"))),
                Html(fmt(_difference(r["value"], estimate.get("cv_mean")))),
            ]
        )
    n = int(metrics["n"].max())
    parts.append(
        caption(
            f"Target column <b>{esc(validation.get('column', '?'))}</b>: {n} new sample(s) with a target value and a "
            f"prediction ({validation.get('missing', 0)} without a value). Intervals: percentile bootstrap, "
            f"{int(metrics['resamples'].max())} resamples, stratified by class for a class target. Difference: "
            "external value minus the CV mean."
        )
    )
    columns = ["panel", "metric", "n", "external [95% CI]", "CV estimate [95% CI]", "difference"]
    parts.append(html_table(columns, rows, numeric=["n", "difference"]))
    parts.append(f"<p>{esc(WHY)}</p>")
    return section("external", "\n".join(parts))
