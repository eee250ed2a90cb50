"""Driver genes: the permutation importance of each gene of a panel, on every split's test rows.

A panel can predict the outcome because of genes of its own, or because it
shares a few genes, or one broad expression program, with every other
predictive set (Venet et al. 2011). This step says which genes drive each
panel's models, and which genes drive the screen.

For every panel in scope and every CV split (the holdout split when there are
none), the split's checkpoint scores the split's test rows as they are (the
baseline) and with one gene's column permuted among those rows, ``n_repeats``
times per gene; a gene's importance in the split is the baseline score minus
the mean permuted score (ROC-AUC for classes, R^2 for a numeric target). The
permutations are those of scikit-learn's ``permutation_importance`` with
``random_state=seed`` (:func:`permutation_orders`), so a split's values are
the same as scikit-learn's on the same model and rows; the computation is
vectorised: a permuted gene changes the first layer by a rank-one term, so
only that term and the later (narrow) layers are recomputed.

Across splits, a gene's importance is the mean with the corrected resampled t
interval of :func:`panelmlp.compare.corrected_ci`, as for the panel's scores.

Caveats (stated in the report too). A gene "drives" a set (``n_driving`` of
:func:`screen_table`) when its 95% interval lies above 0, gene by gene, with no
correction across the genes scored: about 2.5% of genes with no effect
qualify by chance (the interval's upper tail), some 5 in a 200-gene set.
Correlated genes share or mask importance: permuting one leaves its
correlated partners to carry the signal, so each of a correlated group can
score near 0 although the group matters; a small importance does not mean
the gene is unrelated to the target.

Scope: every panel whose ``call`` in ``summary.tsv`` is not ``none``, and any
panel listed in ``evaluate.importance``. A summary without the ``call``
column (an older run) gets its calls from :func:`panelmlp.compare.panel_call`.

Outputs: ``genes.tsv`` (:data:`GENE_COLUMNS`; per panel and gene, ranked
within the panel) and ``genes_screen.tsv`` (:data:`SCREEN_COLUMNS`; per gene,
how many predictive sets hold it and its median importance there).
"""

from __future__ import annotations

import difflib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .compare import compare_step, corrected_ci, panel_call, read_table
from .errors import PanelMlpError
from .predict import HOLDOUT, load_panel_models, read_panels_table
from .randomsets import DEFAULT_BIN_WIDTH
from .survival import harrell_c
from .targets import kind_of_metrics, target_kind

log = logging.getLogger("panelmlp")

PREDICTIVE_CALLS = ("set-specific", "predictive")
"""Values of summary.tsv's ``call`` that make a set predictive; ``none`` (and an empty call) do not."""

GENE_COLUMNS = [
    "collection",
    "panel",
    "call",
    "listed",
    "gene",
    "metric",
    "importance",
    "importance_sd",
    "ci_low",
    "ci_high",
    "n_splits",
    "rank",
    "n_genes",
]
"""Columns of genes.tsv: ``importance`` is the mean over the splits of the drop in ``metric`` when the gene is
permuted, ``ci_low``/``ci_high`` its 95% corrected resampled t interval, ``rank`` 1 for the panel's most important
gene; ``listed`` is true for a panel named in ``evaluate.importance``."""

SCREEN_COLUMNS = [
    "gene",
    "n_predictive",
    "n_driving",
    "median_importance",
    "n_scored",
    "median_importance_scored",
    "best_rank",
    "n_first",
    "predictive_sets",
]
"""Columns of genes_screen.tsv: ``n_predictive`` predictive sets hold the gene, in ``n_driving`` of them its
importance's 95% interval lies above 0, ``median_importance`` is its median importance over them; ``n_scored`` and ``median_importance_scored`` count every panel scored (listed ones too);
``best_rank`` is its best rank in a panel, ``n_first`` the panels where it ranks first."""

BLOCK_ELEMENTS = 1 << 22
"""Most first-layer activations (float64) held at once while scoring permuted rows: 32 MB."""


# --- sklearn's permutation scheme ----------------------------------------------------------------------


def permutation_orders(n_rows: int, n_repeats: int, seed: int) -> np.ndarray:
    """Row orders ``[n_repeats, n_rows]``: repeat r's permuted column is ``column[orders[r]]``.

    This is scikit-learn's ``permutation_importance(random_state=seed)``: it
    draws one seed from ``RandomState(seed)``, gives every column a fresh
    ``RandomState`` of that seed (so every column is permuted alike), and per
    repeat shuffles an index array in place and permutes the already permuted
    column with it, so repeat r composes the first r shuffles.
    """
    column_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
    rng = np.random.RandomState(column_seed)
    shuffling = np.arange(n_rows)
    order = np.arange(n_rows)
    orders = np.empty((n_repeats, n_rows), dtype=np.int64)
    for r in range(n_repeats):
        rng.shuffle(shuffling)
        order = order[shuffling]
        orders[r] = order
    return orders


# --- scores of many predictions at once ----------------------------------------------------------------


def roc_auc_rows(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row of predictions: ``proba`` ``[B, n, C]`` class probabilities, ``y`` ``[n]`` class codes.

    Two classes: the AUC of the positive class's probability (ties count
    half, as :func:`panelmlp.metrics.roc_auc`); more: the mean one-vs-rest AUC.
    NaN when the rows lack a class.
    """
    y = np.asarray(y).astype(int)
    n_classes = proba.shape[-1]
    counts = np.bincount(y, minlength=n_classes)
    if (counts == 0).any():
        return np.full(proba.shape[0], math.nan)
    classes = [1] if n_classes == 2 else range(n_classes)
    out = np.zeros(proba.shape[0])
    from scipy.stats import rankdata  # here, not at the top: scipy.stats costs ~0.5 s

    for c in classes:
        positive = y == c
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        ranks = rankdata(proba[:, :, c], axis=1)
        out += (ranks[:, positive].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return out / len(classes)


def r2_rows(y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """R^2 of each row of predicted values ``[B, n]`` against ``y`` ``[n]`` (scikit-learn's ``r2_score``); NaN when y is constant."""
    y = np.asarray(y, dtype=np.float64)
    total = float(((y - y.mean()) ** 2).sum())
    if not total > 0:
        return np.full(predicted.shape[0], math.nan)
    return 1.0 - ((predicted - y) ** 2).sum(axis=1) / total


# --- one model, one split ------------------------------------------------------------------------------


@dataclass
class SplitImportance:
    """One checkpoint's permutation importance on its split's test rows."""

    split_id: str
    baseline: float
    """Score of the unpermuted test rows."""
    importances: np.ndarray
    """``[genes, n_repeats]`` baseline minus permuted score, genes in the checkpoint's order."""


def split_importance(
    checkpoint: Mapping, raw: np.ndarray, y: np.ndarray, n_repeats: int, seed: int, split_id: str = ""
) -> SplitImportance:
    """Permutation importance of every input gene of one checkpoint on rows ``raw`` ``[n, genes]`` (raw values).

    ``y`` holds the rows' class codes (or target values for a regression
    checkpoint). The inputs are standardised with the checkpoint's own scaler
    and scored by its network in float64; the score is the kind's main metric:
    ROC-AUC for classes, R^2 for a numeric target, Harrell's C for a survival one. Equal, up to rounding, to scikit-learn's
    ``permutation_importance(model, raw, y, scoring=..., n_repeats=n_repeats,
    random_state=seed).importances``.
    """
    import torch

    from .checkpoint import model_from_checkpoint, scaled_inputs, target_of

    target = target_of(dict(checkpoint))
    kind = target_kind(target["kind"])
    # The values the network sees (predict_raw feeds it float32), kept in float64 from here on.
    z = scaled_inputs(dict(checkpoint), raw).astype(np.float32).astype(np.float64)
    n, n_genes = z.shape
    model = model_from_checkpoint(dict(checkpoint)).double()
    first, rest = model[0], model[1:]
    weight = first.weight.detach().numpy()  # [h, genes]
    base = z @ weight.T + first.bias.detach().numpy()  # [n, h]
    width = base.shape[1]

    def score(pre: np.ndarray) -> np.ndarray:
        """Scores of first-layer pre-activations ``[B, n, h]``."""
        with torch.inference_mode():
            out = rest(torch.from_numpy(pre.reshape(-1, width))).numpy().reshape(pre.shape[0], n, -1)
        if kind.standardised:
            return r2_rows(y, out[:, :, 0] * float(target["sd"]) + float(target["mean"]))
        if not kind.class_probabilities:  # risks: Harrell's C of each row against (time, event)
            time, event = y[:, 0].astype(np.float64), y[:, 1].astype(bool)
            return np.array([harrell_c(time, event, row) for row in out[:, :, 0]])
        if out.shape[2] == 1:
            p = 1.0 / (1.0 + np.exp(-out[:, :, 0]))
            proba = np.stack([1.0 - p, p], axis=2)
        else:
            shifted = np.exp(out - out.max(axis=2, keepdims=True))
            proba = shifted / shifted.sum(axis=2, keepdims=True)
        return roc_auc_rows(y, proba)

    baseline = float(score(base[None])[0])
    orders = permutation_orders(n, n_repeats, seed)
    importances = np.empty((n_genes, n_repeats))
    chunk = max(1, BLOCK_ELEMENTS // max(1, n_repeats * n * width))
    for start in range(0, n_genes, chunk):
        cols = np.arange(start, min(start + chunk, n_genes))
        # The change of each permuted column, per repeat: [c, R, n]; the first layer moves by change x weight column.
        block = z[:, cols]
        change = block[orders].transpose(2, 0, 1) - block.T[:, None, :]
        pre = base[None, None] + change[..., None] * weight[:, cols].T[:, None, None, :]
        importances[cols] = baseline - score(pre.reshape(-1, n, width)).reshape(len(cols), n_repeats)
    return SplitImportance(split_id, baseline, importances)


# --- scope ---------------------------------------------------------------------------------------------


@dataclass
class Scoped:
    """A panel to score: its name, collection, call, and whether ``evaluate.importance`` lists it."""

    collection: str
    panel: str
    call: str
    listed: bool


def main_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """The MLP's main-metric rows of summary.tsv (ROC-AUC, or R^2 for a numeric target)."""
    metric = kind_of_metrics(summary["metric"].unique()).main_metric
    return summary[(summary["model"] == "mlp") & (summary["metric"] == metric)]


def calls_of(summary: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Each panel's call: summary.tsv's ``call`` column, or, in a summary without one, :func:`panelmlp.compare.panel_call`."""
    rows = main_rows(summary)
    keys = list(zip(rows["collection"].fillna("").astype(str), rows["panel"].astype(str), strict=True))
    if "call" in rows.columns:
        return {k: ("" if pd.isna(c) else str(c)) for k, c in zip(keys, rows["call"], strict=True)}
    log.info("importance: summary.tsv has no call column; the calls are made from its p- and q-values")
    return {k: panel_call(r) for k, (_, r) in zip(keys, rows.iterrows(), strict=True)}


def panels_in_scope(calls: Mapping[tuple[str, str], str], listed: Sequence[str]) -> list[Scoped]:
    """Every panel whose call is not ``none`` (nor empty), and every panel ``listed`` names, in summary order.

    A listed name is a panel's name, or ``collection/set`` for a set of a
    collection; one that names no trained panel stops with one line.
    """
    named: set[tuple[str, str]] = set()
    for name in listed:
        hits = [k for k in calls if k[1] == name or (k[0] and f"{k[0]}/{k[1]}" == name)]
        if not hits:
            labels = [f"{c}/{p}" if c else p for c, p in calls]
            close = difflib.get_close_matches(str(name), list(dict.fromkeys(labels + [p for _, p in calls])), n=3)
            hint = f" (closest: {', '.join(close)})" if close else ""
            raise PanelMlpError(
                f"config evaluate.importance: {name!r} is not a trained panel of this run{hint}; name a panel of "
                "results/metrics/summary.tsv (a set of a collection as collection/set), or leave it out"
            )
        named.update(hits)
    return [
        Scoped(c, p, call, (c, p) in named)
        for (c, p), call in calls.items()
        if (c, p) in named or call not in ("", "none")
    ]


# --- the step ------------------------------------------------------------------------------------------


def _test_rows(splits: pd.DataFrame) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, float]]:
    """Per split: test sample ids and their y; and per split n_test / n_train."""
    rows, ratio = {}, {}
    for split_id, part in splits.groupby("split_id", sort=False):
        test = part[part["role"] == "test"]
        y = (
            test[["y", "event"]].to_numpy() if "event" in test.columns else test["y"].to_numpy()
        )  # survival: (time, event)
        rows[str(split_id)] = (test["sample_id"].astype(str).to_numpy(), y)
        n_train = int((part["role"] == "train").sum())
        ratio[str(split_id)] = len(test) / n_train if n_train else math.nan
    return rows, ratio


def panel_importance(
    models_cv: Sequence[tuple[Path, Mapping]],
    genes: Sequence[str],
    values: Mapping[str, np.ndarray],
    tests: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ratio: Mapping[str, float],
    n_repeats: int,
    seed: int,
) -> pd.DataFrame:
    """Per gene of a panel: mean importance over the checkpoints' splits, sd, 95% interval, number of splits, rank.

    ``models_cv`` are the panel's checkpoints (path named by split), ``genes``
    the panel's genes, ``values[split_id]`` the raw test values ``[n, genes]``
    of that split in panel gene order, ``tests[split_id]`` its ids and y.
    """
    position = {g: j for j, g in enumerate(genes)}
    per_split = np.full((len(models_cv), len(genes)), np.nan)
    ratios = []
    for s, (path, checkpoint) in enumerate(models_cv):
        split_id = Path(path).stem
        order = [position[g] for g in checkpoint["genes"]]
        result = split_importance(checkpoint, values[split_id][:, order], tests[split_id][1], n_repeats, seed, split_id)
        per_split[s, order] = result.importances.mean(axis=1)
        ratios.append(ratio[split_id])
    test_over_train = float(np.nanmean(ratios)) if ratios else math.nan
    stats = [corrected_ci(per_split[:, j], test_over_train) for j in range(len(genes))]
    frame = pd.DataFrame(
        {
            "gene": list(genes),
            "importance": [s[0] for s in stats],
            "importance_sd": [s[1] for s in stats],
            "ci_low": [s[2] for s in stats],
            "ci_high": [s[3] for s in stats],
            "n_splits": np.isfinite(per_split).sum(axis=0),
        }
    )
    frame["rank"] = frame["importance"].rank(method="min", ascending=False, na_option="bottom").astype(int)
    frame["n_genes"] = len(genes)
    return frame.sort_values(["rank", "gene"], kind="stable").reset_index(drop=True)


def screen_table(genes: pd.DataFrame) -> pd.DataFrame:
    """Per gene of genes.tsv: how many predictive sets hold it, its median importance there, and over every panel scored.

    Sorted by the number of predictive sets the gene drives (its importance's
    95% interval above 0 there), then its median importance over the predictive
    sets holding it, both descending: a screen whose predictive sets owe their
    scores to a few shared genes, or one correlated program, shows those genes
    on top.
    """
    if not len(genes):
        return pd.DataFrame(columns=SCREEN_COLUMNS)
    frame = genes.assign(
        predictive=genes["call"].isin(PREDICTIVE_CALLS),
        label=[f"{c}/{p}" if c else p for c, p in zip(genes["collection"], genes["panel"], strict=True)],
    )
    rows = []
    for gene, part in frame.groupby("gene", sort=True):
        pred = part[part["predictive"]]
        rows.append(
            {
                "gene": gene,
                "n_predictive": len(pred),
                "n_driving": int((pred["ci_low"] > 0).sum()),
                "median_importance": float(pred["importance"].median()) if len(pred) else math.nan,
                "n_scored": len(part),
                "median_importance_scored": float(part["importance"].median()),
                "best_rank": int(part["rank"].min()),
                "n_first": int((part["rank"] == 1).sum()),
                "predictive_sets": " ".join(pred["label"]),
            }
        )
    out = pd.DataFrame(rows, columns=SCREEN_COLUMNS)
    order = out.assign(key=out["median_importance"].fillna(-np.inf))
    order = order.sort_values(["n_driving", "key", "gene"], ascending=[False, False, True], kind="stable")
    return out.loc[order.index].reset_index(drop=True)


def importance_step(
    cohort: str,
    splits_path: str,
    summary_path: str,
    panel_tables: Sequence[str],
    genes_out: str,
    screen_out: str,
    listed: Sequence[str] = (),
    n_repeats: int = 10,
    seed: int = 0,
    threads: int = 1,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """summary.tsv, every fit folder's panels.tsv and checkpoints -> genes.tsv and genes_screen.tsv.

    ``panel_tables`` are the fit folders' ``panels.tsv`` (the checkpoints lie
    beside them in ``checkpoints/{directory}/``); ``listed`` is
    ``evaluate.importance``. ``summary``: the table ``summary_path`` holds,
    when the caller has it in memory (compare's job has just written it; a
    5,000-set summary takes ~1 s to read back).
    """
    summary = read_table(summary_path) if summary is None else summary
    scope = panels_in_scope(calls_of(summary), listed)
    folders: dict[tuple[str, str], tuple[Path, list[str]]] = {}
    for path in panel_tables:
        table = read_panels_table(path)
        for row in table[table["status"] == "kept"].to_dict("records"):
            directory = Path(path).parent / "checkpoints" / (row.get("directory") or row["panel"])
            folders[(row.get("collection", ""), row["panel"])] = (directory, row["genes"].split())
    present = pq.read_schema(splits_path).names
    wanted = ["split_id", "kind", "sample_id", "role", "y", "event"]  # event: a survival target's
    splits = pd.read_parquet(splits_path, columns=[c for c in wanted if c in present])
    tests, ratio = _test_rows(splits)
    cv_splits = set(splits.loc[splits["kind"] == "cv", "split_id"].astype(str))
    frames = []
    if scope:  # torch only when a model is scored: it costs ~1 s to import
        import torch

        torch.set_num_threads(max(1, int(threads)))
        wanted = sorted({g for s in scope for g in folders.get((s.collection, s.panel), (None, []))[1]})
        sample_id = pq.read_schema(cohort).metadata[b"panelmlp.sample_id"].decode()
        from .scaling import read_matrix

        samples = sorted({s for ids, _ in tests.values() for s in ids})
        x = read_matrix(cohort, sample_id, wanted, samples)
        row_of = {s: i for i, s in enumerate(samples)}
        col_of = {g: j for j, g in enumerate(wanted)}
    for item in scope:
        label = f"{item.collection}/{item.panel}" if item.collection else item.panel
        if (item.collection, item.panel) not in folders:
            raise PanelMlpError(
                f"panel {label} is in summary.tsv but no fit folder's panels.tsv keeps it; rerun snakemake so "
                "compare and the fit jobs agree"
            )
        directory, genes = folders[(item.collection, item.panel)]
        models = load_panel_models(directory, item.panel, genes, item.collection)
        used = [(p, c) for p, c in models.cv if p.stem in cv_splits] or (
            [models.holdout] if models.holdout is not None else []
        )
        cols = np.array([col_of[g] for g in models.genes], dtype=np.int64)
        values = {p.stem: x[np.ix_([row_of[s] for s in tests[p.stem][0]], cols)] for p, _ in used if p.stem in tests}
        missing = [p.name for p, _ in used if p.stem not in tests]
        if missing:
            raise PanelMlpError(
                f"checkpoint {directory / missing[0]} names a split that splits.parquet lacks; rerun snakemake so "
                "the split and fit steps agree"
            )
        frame = panel_importance(used, models.genes, values, tests, ratio, n_repeats, seed)
        frame.insert(0, "collection", item.collection)
        frame.insert(1, "panel", item.panel)
        frame.insert(2, "call", item.call)
        frame.insert(3, "listed", item.listed)
        frame.insert(5, "metric", target_kind(models.kind).main_metric)
        frames.append(frame)
        top = frame.iloc[0] if len(frame) else None
        log.info(
            "importance %s (%s, %d genes, %d splits%s): top gene %s (%.4f)",
            label,
            item.call or "listed",
            len(frame),
            len(used),
            ", holdout only" if used and used[0][0].stem == HOLDOUT else "",
            top["gene"] if top is not None else "-",
            float(top["importance"]) if top is not None else math.nan,
        )
    genes_table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=GENE_COLUMNS)
    genes_table = genes_table.reindex(columns=GENE_COLUMNS)
    screen = screen_table(genes_table)
    Path(genes_out).parent.mkdir(parents=True, exist_ok=True)
    genes_table.to_csv(genes_out, sep="\t", index=False, float_format="%.6g")
    screen.to_csv(screen_out, sep="\t", index=False, float_format="%.6g")
    log.info(
        "importance: %s",
        json.dumps(
            {
                "panels": len(frames),
                "predictive": int(sum(s.call in PREDICTIVE_CALLS for s in scope)),
                "listed": int(sum(s.listed for s in scope)),
                "repeats": n_repeats,
            }
        ),
    )
    return genes_table


def metric_tables_step(
    *,
    panel_paths: Sequence[str],
    metrics_paths: Sequence[str],
    null_paths: Sequence[str],
    summary_out: str,
    panels_out: str,
    verdict_out: str,
    genes_out: str,
    screen_out: str,
    cohort: str,
    splits_path: str,
    permutations: int = 0,
    random_panels: int = 0,
    random_bin_width: float = DEFAULT_BIN_WIDTH,
    random_plan: Mapping | None = None,
    listed: Sequence[str] = (),
    n_repeats: int = 10,
    seed: int = 0,
    threads: int = 1,
) -> pd.DataFrame:
    """Rule compare: every unit's tables -> the metric tables, then the driver genes of the panels that need them.

    :func:`panelmlp.compare.compare_step` writes summary.tsv (the calls),
    panels.tsv and verdict.json; :func:`importance_step` then reads that
    summary and scores the panels in scope. One job, not two: driver genes
    follow the calls, and a separate job paid a process start-up and its
    imports (~0.45 s) also when no panel is in scope, as in a null result.
    torch is imported only when some panel is scored.
    """
    summary = compare_step(
        panel_paths=panel_paths,
        metrics_paths=metrics_paths,
        null_paths=null_paths,
        summary_out=summary_out,
        panels_out=panels_out,
        permutations=permutations,
        random_panels=random_panels,
        verdict_out=verdict_out,
        random_bin_width=random_bin_width,
        random_plan=random_plan,
    )
    importance_step(
        cohort=cohort,
        splits_path=splits_path,
        summary_path=summary_out,
        panel_tables=panel_paths,
        genes_out=genes_out,
        screen_out=screen_out,
        listed=listed,
        n_repeats=n_repeats,
        seed=seed,
        threads=threads,
        summary=summary,
    )
    return summary
