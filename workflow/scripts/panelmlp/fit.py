"""One fit job: every panel of a unit trained, scored against baselines and saved, in one process.

A unit is one job: the small named panels together, a large named panel
(``all``), or one part of a gene-set collection (up to
``resources.panels_per_job`` sets). Its job reads the raw values of the genes it
needs once, trains all of its models in a few stacked passes (panels grouped by
width, narrower panels zero-padded), scores every split's test rows for the
MLP and the baselines, and writes, in each named panel's folder
``results/panels/{panel}/`` or in the collection part's
``results/panels/{collection}/part-NNN/``:

- ``panels.tsv``: every panel of the unit (for a collection, every set of the
  part, kept or skipped, with its coverage and the reason);
- ``history.parquet``: per panel, split and epoch, the training and test loss
  and the test metrics;
- ``metrics.tsv`` and ``predictions.parquet``: per panel, model and split;
- ``nulls.parquet``: last-epoch metrics of the permutation nulls (per panel)
  and of the random-panel nulls (per panel size);
- ``checkpoints/{panel}/{split}.pt`` and ``fit.json`` (what was trained, how fast).

Random-panel nulls (Venet et al. 2011) are gene sets drawn from a universe:
all of the cohort's expression genes (``evaluate.random_universe: cohort``), or,
for the sets of a collection with ``collection``, the union of the collection's
genes present in the cohort (named panels always draw from the cohort).
``evaluate.random_panels`` sets are drawn per size bin (``randomsets.pool_size``:
panels of nearby sizes share one pool, drawn at the bin's size). A pool is drawn
from a seed of the model seed and the pool size alone, so every job that needs
it draws the same sets. Within a collection, the parts whose sets need a
pool deal its draws among themselves round-robin (``randomsets.pool_share``),
each draw trained once: compare and the report read the nulls of every part.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .checkpoint import save_checkpoint
from .defaults import schema_default
from .epoch_metrics import HISTORY_METRICS
from .evaluate import Baseline, Fold, Output, baselines_for, fit_score_all
from .io import read_cohort_genes
from .randomsets import DEFAULT_BIN_WIDTH, pool_share, pool_size, pool_sizes
from .scaling import (
    describe_uninformative,
    read_matrix,
    split_statistics,
    standardise,
    uninformative,
    uninformative_by_gene,
)
from .seeds import pool_rng
from .tables import HISTORY, METRICS, NULLS, PANELS, PREDICTIONS, TUNING
from .targets import TargetKind, kind_of_labels, target_kind
from .targets.base import Scoring
from .train import ModelSet, TrainSpec, permuted_labels, train_models
from .tuning import STACK_KEYS, carve_validation, grid_points, inner_folds, point_label, select_points
from .units import Panel, Unit, resolve

log = logging.getLogger("panelmlp")

GROUP_OVERHEAD_FLOPS = 2e7
"""Fixed cost of one more stacked pass per step, in floating-point operations (about a millisecond)."""

PREDICTION_KEYS = tuple(c for c, _ in PREDICTIONS.keys)
"""The key columns of predictions.parquet (text); the target kind adds its own columns (see :mod:`panelmlp.tables`)."""

METRIC_KEYS = [c for c, _ in METRICS.keys]
"""The first columns of metrics.tsv (the kind's metrics follow, then ``best_epoch`` and ``grid_point`` of the MLP)."""


@dataclass
class ModelKey:
    """What one trained model is: a panel's real model, or a null."""

    kind: str
    """``panel``, ``permutation`` or ``random``."""
    panel: int
    """Index into the unit's panels; -1 for a random-panel null."""
    split: int
    replicate: int
    """0 for a real model; the permutation or random draw number (from 1) for a null."""
    cols: np.ndarray
    """Column indices into the job's gene list."""


def random_gene_sets(n_available: int, size: int, count: int, seed: int) -> np.ndarray:
    """``count`` random sets of ``size`` distinct gene indices out of ``n_available``, ``[count, size]``.

    Drawn from a generator seeded by ``(seed, size)`` alone, so every job that
    needs the pool of a size draws the same sets in the same order.
    """
    rng = pool_rng(seed, size)
    return np.stack([rng.choice(n_available, size=size, replace=False) for _ in range(count)]).reshape(count, size)


def group_by_width(widths: Sequence[int], counts: Sequence[int], hidden: int) -> list[list[int]]:
    """Cut widths (sorted ascending) into contiguous groups trained as one stack each, cheapest overall.

    A group costs a fixed :data:`GROUP_OVERHEAD_FLOPS` per step plus, for each
    of its models, the first layer at the group's widest input (narrower models
    are zero-padded): ``6 * width * hidden`` operations per row. Dynamic
    programming over the sorted widths finds the cheapest cut. Returns index
    lists into ``widths``.
    """
    order = np.argsort(widths, kind="stable")
    w = np.asarray(widths, dtype=float)[order]
    c = np.asarray(counts, dtype=float)[order]
    n = len(w)
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    cut = np.zeros(n + 1, dtype=int)
    prefix = np.r_[0.0, np.cumsum(c)]
    for j in range(1, n + 1):
        for i in range(j):
            cost = best[i] + GROUP_OVERHEAD_FLOPS + 6.0 * w[j - 1] * max(hidden, 1) * 32 * (prefix[j] - prefix[i])
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups = []
    j = n
    while j > 0:
        groups.append([int(k) for k in order[cut[j] : j]])
        j = cut[j]
    return groups[::-1]


def _labelled(splits: pd.DataFrame) -> tuple[list[str], list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Samples (sorted), split ids and kinds, labels ``[N]`` and train/test masks ``[S, N]`` of a split table."""
    split_ids = list(dict.fromkeys(splits["split_id"]))
    samples = sorted(set(splits["sample_id"]))
    position = {s: i for i, s in enumerate(samples)}
    survival = "event" in splits.columns  # y is (time, event) per sample
    y = np.zeros(
        (len(samples), 2) if survival else len(samples), dtype=np.float64 if splits["y"].dtype.kind == "f" else np.int64
    )
    train = np.zeros((len(split_ids), len(samples)), dtype=bool)
    test = np.zeros_like(train)
    kinds = []
    for s, (_, rows) in enumerate(splits.groupby("split_id", sort=False)):
        idx = rows["sample_id"].map(position).to_numpy()
        y[idx] = np.c_[rows["y"].to_numpy(), rows["event"].to_numpy()] if survival else rows["y"].to_numpy()
        train[s, idx] = (rows["role"] == "train").to_numpy()
        test[s, idx] = (rows["role"] == "test").to_numpy()
        kinds.append(str(rows["kind"].iloc[0]))
    return samples, split_ids, kinds, y, train, test


@dataclass
class _Job:
    """Everything one fit job plans before it trains: the unit's panels, labels, splits, genes and models."""

    unit: Unit
    panels: list[Panel]
    panel_table: pd.DataFrame
    target: TargetKind
    task: Task
    classes: list[str]
    positive: str | None
    n_classes: int
    horizons: tuple[float, ...]
    samples: list[str]
    split_ids: list[str]
    kinds: list[str]
    y: np.ndarray
    train: np.ndarray
    strata: np.ndarray
    spec: TrainSpec
    validation_fraction: float
    points: list[dict]
    inner_k: int
    genes: list[str]
    column: dict[str, int]
    x: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    n_missing: int
    universe_name: str
    keys: list[ModelKey]
    label_of: list[int]
    labels: np.ndarray
    outer: _Splits


@dataclass
class _Scored:
    """What the trained models of a job give the output tables: rows and parts, by table."""

    history: list = dataclasses.field(default_factory=list)
    metrics: list[dict] = dataclasses.field(default_factory=list)
    predictions: list = dataclasses.field(default_factory=list)
    nulls: list[list] = dataclasses.field(default_factory=list)


def fit_unit(
    unit: Unit | Mapping,
    cohort: str,
    splits_path: str,
    labels_json: str,
    model: Mapping,
    permutations: int,
    random_panels: int,
    logreg_c: float,
    threads: int = 1,
    baselines: Sequence[str] = ("majority", "logreg"),
    ridge_alpha: float = 1.0,
    random_bin_width: float = DEFAULT_BIN_WIDTH,
    random_universe: str = "cohort",
) -> dict:
    """cohort + splits -> every output of one unit, in its folder(s) (see the module docstring).

    Four steps: plan (:func:`_plan`: labels, splits, genes, every model and
    its labelling), tune (:func:`_tune`: nested grid search, when there is a
    grid), train and score (:func:`_score`: the MLP and the kind's baselines on
    every split, checkpoints), write (:func:`_write`). ``model`` is the config's
    model section, including ``early_stopping``, ``grid`` and ``inner_folds``;
    ``baselines`` may add optional baselines (``sklearn_mlp``) to the kind's own,
    which are always fitted.
    """
    started = time.perf_counter()
    job = _plan(
        unit, cohort, splits_path, labels_json, model, permutations, random_panels, random_bin_width, random_universe
    )
    stats = _Stats(device=job.spec.device)
    chosen, tuning_rows, inner_models = _tune(job, threads, stats)
    spec, keys = job.spec, job.keys
    log.info(
        "fit %s: %d panels (%d skipped), %d genes read, %d models (%d real, %d permutation, %d random)%s%s",
        job.unit.name,
        len(job.panels),
        int((job.panel_table["status"] == "skipped").sum()),
        len(job.genes),
        len(keys),
        sum(k.kind == "panel" for k in keys),
        sum(k.kind == "permutation" for k in keys),
        sum(k.kind == "random" for k in keys),
        f", tuned over {len(job.points)} grid points x {job.inner_k} inner folds ({inner_models} models)"
        if len(job.points) > 1
        else "",
        f", early stopping (patience {spec.patience})" if spec.patience else "",
    )
    options = {"logreg_C": logreg_c, "ridge_alpha": ridge_alpha, "spec": spec}
    outcomes = _train_keys(
        keys,
        [job.points[c] for c in chosen],
        job.label_of,
        job.outer,
        job.x,
        job.labels,
        spec,
        job.n_classes,
        threads,
        stats,
        tracked=[k.kind == "panel" for k in keys],
        keep_state=[k.kind == "panel" for k in keys],
        task=job.task,
    )
    scored = _score(
        job, outcomes, chosen, baselines_for(job.target.name, job.target.baselines, baselines, options), options
    )
    del outcomes
    summary = {
        "unit": job.unit.name,
        "panels": len(job.panels),
        "skipped": int((job.panel_table["status"] == "skipped").sum()),
        "genes_read": len(job.genes),
        "samples": len(job.samples),
        "missing_values": job.n_missing,
        "models": {kind: sum(k.kind == kind for k in keys) for kind in ("panel", "permutation", "random")},
        "stacked_passes": stats.passes,
        "grid_points": len(job.points),
        "inner_models": inner_models,
        "early_stopping": {"patience": spec.patience, "validation_fraction": job.validation_fraction}
        if spec.patience
        else None,
        "device": stats.device,
        "epochs": spec.epochs,
        "train_seconds": round(stats.seconds, 3),
        "train_gflop": round(stats.flops / 1e9, 3),
        "train_gflops_per_s": round(stats.flops / stats.seconds / 1e9, 3) if stats.seconds > 0 else None,
        "train_workers": stats.workers,
    }
    _write(job, scored, tuning_rows, summary, random_bin_width, started)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    log.info("fit %s: %s", job.unit.name, json.dumps(summary))
    return summary


def _plan(
    unit: Unit | Mapping,
    cohort: str,
    splits_path: str,
    labels_json: str,
    model: Mapping,
    permutations: int,
    random_panels: int,
    random_bin_width: float,
    random_universe: str,
) -> _Job:
    """A job's plan: its panels, the target and its labels, the splits, the genes read and every model to train.

    Models are a panel's real model per split, its permutation nulls per CV
    split (one permuted labelling per split and permutation, shared by all
    panels) and the random-panel nulls per pool size and CV split.
    """
    available = read_cohort_genes(cohort)
    unit = unit if isinstance(unit, Unit) else Unit.from_params(unit)
    resolved = resolve(unit, available, random_universe, all_parts=bool(random_panels))
    panels = resolved.panels
    label_info = json.loads(Path(labels_json).read_text(encoding="utf-8"))
    target = kind_of_labels(label_info)
    classes = list(label_info["classes"])
    sample_id = pq.read_schema(cohort).metadata[b"panelmlp.sample_id"].decode()
    samples, split_ids, kinds, y, train, test = _labelled(pd.read_parquet(splits_path))
    cv = [s for s, kind in enumerate(kinds) if kind == "cv"]
    strata = y[:, 1].astype(np.int64) if y.ndim == 2 else y  # what validation rows and inner folds stratify by
    spec = TrainSpec.from_config(dict(model))
    early = model.get("early_stopping") or {}
    validation_fraction = float(
        early.get("validation_fraction", schema_default("model.early_stopping.validation_fraction"))
    )
    if early:
        spec.patience = int(early.get("patience", schema_default("model.early_stopping.patience")))

    # Every gene a model reads: the panels', and the random pools' (per size bin, drawn from the universe).
    universe = resolved.universe
    sizes = pool_sizes([len(p.genes) for p in panels], random_bin_width) if random_panels and cv else []
    # The parts of a collection that need a pool share out its draws (compare and the report read every part's
    # nulls); each draw keeps its number, its genes and its stream, so it trains as it would in any part.
    sizes = [n for n in sizes if n < len(universe)]
    pools: dict[int, list[tuple[int, np.ndarray]]] = {}
    for n in sizes:
        mine = pool_share(n, random_panels, resolved.part_sizes, resolved.part_index, random_bin_width)
        if mine:
            draws = random_gene_sets(len(universe), n, random_panels, spec.seed)
            pools[n] = [(r, draws[r - 1]) for r in mine]
    index_of = {g: i for i, g in enumerate(available)}
    used = sorted(
        {index_of[g] for p in panels for g in p.genes}
        | {index_of[universe[i]] for v in pools.values() for _r, draw in v for i in draw}
    )
    genes = [available[i] for i in used]
    column = {g: j for j, g in enumerate(genes)}
    x = read_matrix(cohort, sample_id, genes, samples) if genes else np.zeros((len(samples), 0), np.float32)
    mean, scale = split_statistics(x, train)

    # Labels: real ones, then one permuted labelling per (CV split, permutation), shared by all panels.
    labels = [y]
    label_row: dict[tuple[int, int], int] = {}
    for perm in range(1, permutations + 1):
        for s in cv:
            label_row[(s, perm)] = len(labels)
            labels.append(permuted_labels(y, train[s], spec.seed, split_ids[s], perm))

    keys: list[ModelKey] = []
    for p, panel in enumerate(panels):
        cols = np.array([column[g] for g in panel.genes], dtype=np.int64)
        keys += [ModelKey("panel", p, s, 0, cols) for s in range(len(split_ids))]
        keys += [ModelKey("permutation", p, s, perm, cols) for perm in range(1, permutations + 1) for s in cv]
    for share in pools.values():
        for r, draw in share:
            cols = np.array([column[universe[i]] for i in draw], dtype=np.int64)
            keys += [ModelKey("random", -1, s, r, cols) for s in cv]

    # Early stopping holds validation rows out of each split's training rows; the scaler keeps all of them.
    outer_train, outer_valid = train, None
    if spec.patience:
        outer_train, outer_valid = carve_validation(train, strata, validation_fraction, spec.seed, split_ids)
    return _Job(
        unit=unit,
        panels=panels,
        panel_table=resolved.table,
        target=target,
        task=Task(target.name, label_info.get("loss", "mse")),
        classes=classes,
        positive=label_info.get("positive"),
        n_classes=len(classes) if target.class_probabilities else 1,
        horizons=tuple(float(h) for h in label_info.get("horizons") or ()),
        samples=samples,
        split_ids=split_ids,
        kinds=kinds,
        y=y,
        train=train,
        strata=strata,
        spec=spec,
        validation_fraction=validation_fraction,
        points=grid_points(model.get("grid") or None),
        inner_k=int(model.get("inner_folds", schema_default("model.inner_folds"))),
        genes=genes,
        column=column,
        x=x,
        mean=mean,
        scale=scale,
        n_missing=int(np.isnan(x).sum()),
        universe_name=resolved.universe_name,
        keys=keys,
        label_of=[label_row[(k.split, k.replicate)] if k.kind == "permutation" else 0 for k in keys],
        labels=np.stack(labels),
        outer=_Splits(split_ids, outer_train, test, outer_valid, mean, scale),
    )


def _tune(job: _Job, threads: int, stats: _Stats) -> tuple[np.ndarray, list[dict], int]:
    """Nested tuning: every grid point on every inner fold of each split's training rows.

    Returns each model's chosen point (all 0 without a grid), the rows of
    tuning.tsv and the number of inner models trained.
    """
    keys, points, target = job.keys, job.points, job.target
    chosen = np.zeros(len(keys), dtype=np.int64)
    if len(points) <= 1:
        return chosen, [], 0
    inner, parent = _inner_splits(
        job.x, job.strata, job.train, job.split_ids, job.inner_k, job.spec, job.validation_fraction
    )
    fold_of = {s: [i for i, ps in enumerate(parent) if ps == s] for s in range(len(job.split_ids))}
    inner_keys, inner_points, inner_labels, where = [], [], [], []
    for i, k in enumerate(keys):
        for q, point in enumerate(points):
            for f, inner_split in enumerate(fold_of[k.split]):
                inner_keys.append(ModelKey(k.kind, k.panel, inner_split, k.replicate, k.cols))
                inner_points.append(point)
                inner_labels.append(job.label_of[i])
                where.append((i, q, f))
    outcomes = _train_keys(
        inner_keys, inner_points, inner_labels, inner, job.x, job.labels, job.spec, job.n_classes, threads, stats,
        task=job.task,
    )  # fmt: skip
    scores = np.full((len(keys), len(points), job.inner_k), np.nan)
    score_at = target.history.index(target.tuning_score)
    for (i, q, f), outcome in zip(where, outcomes, strict=True):
        scores[i, q, f] = outcome.final[score_at]
    chosen = select_points(scores, higher_is_better=target.tuning_higher_is_better)
    rows = []
    for i, k in enumerate(keys):
        if k.kind != "panel":
            continue
        for q, point in enumerate(points):
            rows.append(
                {
                    "collection": job.panels[k.panel].collection,
                    "panel": job.panels[k.panel].name,
                    "split_id": job.split_ids[k.split],
                    "point": q + 1,
                    "grid_point": point_label(point),
                    "score": target.tuning_label or target.tuning_score,
                    "inner_score": float(np.nanmean(scores[i, q])) if np.isfinite(scores[i, q]).any() else np.nan,
                    "chosen": bool(chosen[i] == q),
                }
            )
    return chosen, rows, len(inner_keys)


SCORE_CHUNK_BYTES = 64 * 2**20
"""The standardised rows of at most this many bytes of models are held at once while their baselines are fitted
together (a chunk has at least one model): hundreds of small panels in one chunk, a 20,000-gene panel alone."""


@dataclass
class _Prepared:
    """One real model on its split, ready for its baselines: where it is, its rows, its fold and outputs so far."""

    index: int
    key: ModelKey
    outcome: _Outcome
    point: dict
    test_rows: np.ndarray
    train_rows: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    fold: Fold
    outputs: dict[str, Output]
    item_of: dict[str, int] = dataclasses.field(default_factory=dict)
    """Per baseline blind to the genes, its output's entry in the shared final-metric inputs."""


def _score(
    job: _Job, outcomes: list[_Outcome], chosen: np.ndarray, baselines: Sequence[Baseline], options: dict
) -> _Scored:
    """Every trained model's rows: a null's last-epoch metrics; a real model's history, metrics and predictions
    beside its baselines' on the same split, and its checkpoint.

    Real models are scored in chunks (:data:`SCORE_CHUNK_BYTES`): each chunk's folds are standardised, each
    baseline fits all of them at once where it can (:func:`panelmlp.evaluate.fit_score_all`; a baseline blind
    to the genes once per split), then their rows are written; the kind's final metrics of every model are
    computed together at the end (:func:`_final_metrics`). Every number is the one of a model scored alone.
    """
    target, split_ids = job.target, job.split_ids
    scored = _Scored()
    for k, outcome in zip(job.keys, outcomes, strict=True):
        if k.kind != "panel":
            panel_name = job.panels[k.panel].name if k.panel >= 0 else ""
            collection = job.panels[k.panel].collection if k.panel >= 0 else job.universe_name
            scored.nulls.append(
                [k.kind, collection, panel_name, len(k.cols), k.replicate, split_ids[k.split], *outcome.final]
            )
    # ``items`` holds the inputs of the kind's final metrics, ``rows`` each metrics.tsv row as (keys before,
    # index into items, keys after). A baseline blind to the genes (the majority class) gives every panel of a
    # split the same output and metrics: fitted and scored once per split, kept with its test rows.
    items: list[tuple[np.ndarray, np.ndarray, Scoring]] = []
    rows: list[tuple[dict, int, dict]] = []
    same_for_panels: dict[tuple[str, int], tuple[np.ndarray, Output, int]] = {}
    real = [i for i, k in enumerate(job.keys) if k.kind == "panel"]
    chunk: list[int] = []
    held = 0
    for j, i in enumerate(real):
        chunk.append(i)
        held += 8 * len(job.samples) * len(job.keys[i].cols)
        if held >= SCORE_CHUNK_BYTES or j == len(real) - 1:
            prepared = [_prepare(job, i, outcomes[i], chosen, options, scored) for i in chunk]
            _fit_baselines(job, prepared, baselines, items, same_for_panels)
            for model in prepared:
                _model_rows(job, model, items, rows, scored)
            chunk, held = [], 0
    final = _final_metrics(target, items)
    scored.metrics = [{**before, **final[at], **after} for before, at, after in rows]
    return scored


def _prepare(job: _Job, i: int, outcome: _Outcome, chosen: np.ndarray, options: dict, scored: _Scored) -> _Prepared:
    """Model ``i``'s history row (into ``scored``), standardised rows, fold and MLP output."""
    target, y, x = job.target, job.y, job.x
    k = job.keys[i]
    panel = job.panels[k.panel]
    point = job.points[chosen[i]]
    history = outcome.history
    if target.standardised and history is not None:
        history = history.copy()
        for name in target.in_target_units:  # back to the target's units (the network saw it standardised)
            history[:, target.history.index(name)] *= outcome.target_sd
    scored.history.append((panel, k.split, history, outcome.device, outcome.best_epoch))
    n_test = int((outcome.rows >= 0).sum())
    test_rows = outcome.rows[:n_test]
    mean_s, scale_s = job.mean[k.split, k.cols], job.scale[k.split, k.cols]
    train_rows = np.flatnonzero(job.train[k.split])
    z_train = standardise(x, train_rows, k.cols, mean_s, scale_s)
    z_test = standardise(x, test_rows, k.cols, mean_s, scale_s)
    fold = Fold(z_train, y[train_rows], z_test, job.n_classes, options)
    # Per model, the kind's outputs [n, out]: class probabilities, values in the target's units, or risks.
    mlp = target.network_output(outcome.scores[:n_test], job.n_classes, outcome.target_mean, outcome.target_sd)
    train_output = _train_risk(outcome.state, z_train, job.spec, point) if target.needs_train_output else None
    return _Prepared(
        i, k, outcome, point, test_rows, train_rows, mean_s, scale_s, fold, {"mlp": Output(mlp, train_output)}
    )


def _fit_baselines(
    job: _Job,
    prepared: Sequence[_Prepared],
    baselines: Sequence[Baseline],
    items: list[tuple[np.ndarray, np.ndarray, Scoring]],
    same_for_panels: dict[tuple[str, int], tuple[np.ndarray, Output, int]],
) -> None:
    """Each baseline's output on every prepared model's fold, into its ``outputs`` (in the baselines' order).

    A baseline that reads the genes fits all the folds at once where it can; one blind to them is fitted
    once per split, and its final metrics' inputs are queued once (``items``), for every panel to share.
    """
    y = job.y
    for baseline in baselines:
        if baseline.reads_genes:
            for model, output in zip(prepared, fit_score_all(baseline, [m.fold for m in prepared]), strict=True):
                model.outputs[baseline.name] = output
            continue
        for model in prepared:
            shared = same_for_panels.get((baseline.name, model.key.split))
            if shared is None or not np.array_equal(shared[0], model.test_rows):
                output = baseline.fit_score(model.fold)
                items.append(
                    (y[model.test_rows], output.test, Scoring(y[model.train_rows], output.train, job.horizons))
                )
                shared = (model.test_rows, output, len(items) - 1)
                same_for_panels[(baseline.name, model.key.split)] = shared
            model.outputs[baseline.name], model.item_of[baseline.name] = shared[1:]


def _model_rows(
    job: _Job,
    model: _Prepared,
    items: list[tuple[np.ndarray, np.ndarray, Scoring]],
    rows: list[tuple[dict, int, dict]],
    scored: _Scored,
) -> None:
    """A prepared model's metrics rows (their final metrics queued in ``items``), predictions and checkpoint."""
    y, split_ids = job.y, job.split_ids
    k, outcome, point, panel = model.key, model.outcome, model.point, job.panels[model.key.panel]
    for name, output in model.outputs.items():
        at = model.item_of.get(name)
        if at is None:
            at = len(items)
            items.append((y[model.test_rows], output.test, Scoring(y[model.train_rows], output.train, job.horizons)))
        before = {
            "collection": panel.collection,
            "panel": panel.name,
            "model": name,
            "split_id": split_ids[k.split],
            "kind": job.kinds[k.split],
            "n_train": len(model.train_rows),
            "n_test": len(model.test_rows),
            "n_uninformative": int(uninformative(model.scale).sum()),
        }
        after = {
            "best_epoch": outcome.best_epoch if name == "mlp" else np.nan,
            "grid_point": point_label(point) if name == "mlp" else "",
        }
        rows.append((before, at, after))
        scored.predictions.append((panel, name, k.split, model.test_rows, output.test, output.train_median))
    hyper = {**dict(vars(job.spec)), **{key: list(v) if isinstance(v, tuple) else v for key, v in point.items()}}
    save_checkpoint(
        _checkpoint_path(Path(panel.folder), panel, split_ids[k.split]),
        outcome.state,
        panel.genes,
        model.mean,
        model.scale,
        job.classes,
        job.positive,
        hyper,
        split_ids[k.split],
        outcome.device,
        target=_checkpoint_target(job, outcome, model.outputs["mlp"]),
        extra={
            "best_epoch": outcome.best_epoch,
            "stopped_epoch": outcome.stopped_epoch,
            "grid_point": point_label(point),
        },
    )


def _final_metrics(target: TargetKind, items: Sequence[tuple[np.ndarray, np.ndarray, Scoring]]) -> list[dict]:
    """The kind's final metrics of each ``(y_test, output, scoring)``: all at once where the kind can
    (``final_metrics_many``, the same numbers as one at a time), else one at a time."""
    if target.final_metrics_many is not None:
        return target.final_metrics_many(items)
    return [target.final_metrics(*item) for item in items]


def _checkpoint_target(job: _Job, outcome: _Outcome, mlp: Output) -> dict | None:
    """What a checkpoint keeps of its target beyond the classes: a standardised target's training mean and sd, or a
    survival model's training median risk (the risk-group cut) and horizons; None for classes."""
    if job.target.standardised:
        return {"kind": job.target.name, "mean": outcome.target_mean, "sd": outcome.target_sd, "loss": job.task.loss}
    if job.target.needs_train_output:
        return {
            "kind": job.target.name,
            "median_risk": mlp.train_median,
            "horizons": list(job.horizons),
        }
    return None


def _write(
    job: _Job, scored: _Scored, tuning_rows: list[dict], summary: dict, random_bin_width: float, started: float
) -> None:
    """Every table of the job, per output folder (a named panel's, or the collection part's), through tables.py."""
    metric_frame = pd.DataFrame(scored.metrics, columns=METRIC_KEYS if not scored.metrics else None)
    predictions = _predictions(
        scored.predictions, job.split_ids, job.kinds, job.samples, job.y, job.classes, job.target
    )
    null_keys = [(c, "string" if t == "text" else t) for c, t in NULLS.keys]
    history_names = list(job.target.history)
    nulls = pd.DataFrame(scored.nulls, columns=[c for c, _ in null_keys] + history_names).astype(
        {**dict(null_keys), **dict.fromkeys(history_names, "float64")}
    )
    # Genes constant or never observed in a split's training rows: input 0 in that split's models and baselines.
    silent = {}
    for panel in job.panels:
        by_gene = uninformative_by_gene(panel.genes, job.scale[:, [job.column[g] for g in panel.genes]], job.split_ids)
        silent[(panel.folder, panel.name)] = by_gene
        if by_gene and sum(map(bool, silent.values())) <= 10:  # fit.json names them all
            log.warning(
                "fit %s: panel %s: %d genes carry no information (constant or all missing in the training rows; "
                "input 0, they contribute nothing): %s",
                job.unit.name,
                panel.name,
                len(by_gene),
                describe_uninformative(by_gene, len(job.split_ids)),
            )
    for folder, table in job.panel_table.groupby("folder", sort=False):
        names = set(table["panel"])
        mine = [p for p in job.panels if p.folder == folder]
        sizes_here = {pool_size(len(p.genes), random_bin_width) for p in mine}
        out = Path(folder)
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        PANELS.write(table.drop(columns="folder"), out / "panels.tsv")
        _write_history(
            out / "history.parquet",
            [h for h in scored.history if h[0].folder == folder],
            job.split_ids,
            job.kinds,
            job.spec.epochs,
            history_names,
            silent,
        )
        METRICS.write(metric_frame[metric_frame["panel"].isin(names)], out / "metrics.tsv")
        PREDICTIONS.write(predictions[predictions["panel"].isin(names)], out / "predictions.parquet")
        here = (nulls["kind"] == "permutation") & nulls["panel"].isin(names)
        here |= (nulls["kind"] == "random") & nulls["size"].isin(sizes_here)
        NULLS.write(nulls[here], out / "nulls.parquet")
        tuning = pd.DataFrame(tuning_rows, columns=[c for c, _ in TUNING.keys])
        TUNING.write(tuning[tuning["panel"].isin(names)], out / "tuning.tsv")
        info = {**summary, "panels_here": len(mine), "seconds": round(time.perf_counter() - started, 3)}
        info["uninformative"] = {p.name: silent[(p.folder, p.name)] for p in mine if silent[(p.folder, p.name)]}
        (out / "fit.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


@dataclass
class _Splits:
    """The splits models train on: ids (stream names), train/test/validation masks ``[S, N]``, scaler statistics."""

    ids: list[str]
    train: np.ndarray
    test: np.ndarray
    valid: np.ndarray | None
    mean: np.ndarray
    scale: np.ndarray


@dataclass
class _Outcome:
    """What one trained model gives back."""

    final: np.ndarray
    scores: np.ndarray
    rows: np.ndarray
    history: np.ndarray | None
    state: dict | None
    best_epoch: int
    stopped_epoch: int
    device: str
    target_mean: float = 0.0
    target_sd: float = 1.0
    """A regression target's training mean and sd: the network learns ``(y - mean) / sd``."""


@dataclass
class Task:
    """What the models predict: ``classification`` (class codes) or ``regression`` with its loss (mse or l1)."""

    kind: str = "classification"
    loss: str = "mse"


@dataclass
class _Stats:
    """Training time, floating-point operations and stacked passes of a job, summed over calls."""

    seconds: float = 0.0
    flops: float = 0.0
    passes: int = 0
    device: str = "cpu"
    workers: int = 1
    """The most worker threads one stacked pass trained on (the chunk-by-chunk loop on several threads)."""


def _stack_key(point: Mapping, spec: TrainSpec) -> tuple:
    """The stack-level settings of a grid point (models differing in these train in separate stacks)."""
    values = []
    for key in STACK_KEYS:
        value = point.get(key, getattr(spec, key))
        values.append(tuple(value) if isinstance(value, list | tuple) else value)
    return tuple(values)


def _train_keys(
    keys: Sequence[ModelKey],
    points: Sequence[Mapping],
    label_of: Sequence[int],
    splits: _Splits,
    x: np.ndarray,
    labels: np.ndarray,
    spec: TrainSpec,
    n_classes: int,
    threads: int,
    stats: _Stats,
    tracked: Sequence[bool] | None = None,
    keep_state: Sequence[bool] | None = None,
    task: Task | None = None,
) -> list[_Outcome]:
    """Train every model ``keys[i]`` with grid point ``points[i]`` on its split, in as few stacked passes as shapes allow.

    Models whose points share the stack-level settings (:data:`STACK_KEYS`)
    train together, cut by input width (:func:`group_by_width`); learning rate,
    weight decay and dropout may differ within a stack. A model's stream is its
    split and permutation, so its numbers do not depend on what trains beside it.
    """
    outcomes: list[_Outcome | None] = [None] * len(keys)
    by_stack: dict[tuple, list[int]] = {}
    for i, point in enumerate(points):
        by_stack.setdefault(_stack_key(point, spec), []).append(i)
    for stack_key, members_all in by_stack.items():
        sub = dataclasses.replace(spec, **dict(zip(STACK_KEYS, stack_key, strict=True)))
        sub.hidden = list(sub.hidden)
        widths = sorted({len(keys[i].cols) for i in members_all})
        counts = [sum(len(keys[i].cols) == w for i in members_all) for w in widths]
        pad = task is None or target_kind(task.kind).pad_widths
        for group in (
            group_by_width(widths, counts, sub.hidden[0] if sub.hidden else 1)
            if pad
            else [[j] for j in range(len(widths))]
        ):
            group_widths = {widths[j] for j in group}
            members = [i for i in members_all if len(keys[i].cols) in group_widths]
            width = max(group_widths)
            cols = np.full((len(members), width), -1, dtype=np.int64)
            for j, i in enumerate(members):
                cols[j, : len(keys[i].cols)] = keys[i].cols
            stream_names = [
                (splits.ids[keys[i].split], keys[i].replicate if keys[i].kind == "permutation" else 0) for i in members
            ]
            unique = list(dict.fromkeys(stream_names))
            index = {name: j for j, name in enumerate(unique)}

            def per_model(key: str, members: list[int] = members) -> np.ndarray:
                return np.array([float(points[i].get(key, getattr(spec, key))) for i in members])

            label_rows, label_index, centre = labels, [label_of[i] for i in members], {}
            if task is not None and target_kind(task.kind).standardised:
                label_rows, label_index, centre = _standardised_targets(labels, members, keys, label_of, splits.train)

            data = ModelSet(
                x=x,
                mean=splits.mean,
                scale=splits.scale,
                cols=cols,
                split=np.array([keys[i].split for i in members]),
                labels=label_rows,
                label=np.array(label_index),
                stream=np.array([index[name] for name in stream_names]),
                streams=unique,
                train=splits.train,
                test=splits.test,
                tracked=np.array([bool(tracked[i]) if tracked is not None else False for i in members]),
                n_classes=n_classes,
                valid=splits.valid,
                lr=per_model("lr"),
                weight_decay=per_model("weight_decay"),
                dropout=per_model("dropout"),
                task=task.kind if task is not None else "classification",
                loss=task.loss if task is not None else "mse",
            )
            result = train_models(data, sub, threads=threads)
            stats.seconds += result.seconds
            stats.flops += result.flops
            stats.passes += 1
            stats.device = result.device
            stats.workers = max(stats.workers, result.workers)
            tracked_pos = {int(m): j for j, m in enumerate(result.tracked)}
            for j, i in enumerate(members):
                outcomes[i] = _Outcome(
                    final=result.final[j],
                    scores=result.test_scores[j],
                    rows=result.test_index[j],
                    history=result.history[:, tracked_pos[j]] if j in tracked_pos else None,
                    state=result.state_dict(j) if keep_state is not None and keep_state[i] else None,
                    best_epoch=int(result.best_epoch[j]),
                    stopped_epoch=int(result.stopped_epoch[j]),
                    device=result.device,
                    target_mean=centre.get(label_index[j], (0.0, 1.0))[0],
                    target_sd=centre.get(label_index[j], (0.0, 1.0))[1],
                )
            del result, data
    return [o for o in outcomes if o is not None]


def _standardised_targets(
    labels: np.ndarray, members: Sequence[int], keys: Sequence[ModelKey], label_of: Sequence[int], train: np.ndarray
) -> tuple[np.ndarray, list[int], dict[int, tuple[float, float]]]:
    """Regression targets standardised with the training rows of each model's split (one row per labelling and split).

    Returns the rows, each member's row index, and each row's ``(mean, sd)``:
    a model learns ``(y - mean) / sd`` of its own training rows, so nothing of
    its test rows enters, and its predictions are mapped back with them.
    """
    rows: list[np.ndarray] = []
    index: dict[tuple[int, int], int] = {}
    centre: dict[int, tuple[float, float]] = {}
    out = []
    for i in members:
        key = (label_of[i], keys[i].split)
        if key not in index:
            values = labels[key[0]]
            seen = values[train[key[1]]]
            mu = float(seen.mean())
            sd = float(seen.std())
            sd = sd if sd > 1e-12 else 1.0
            index[key] = len(rows)
            centre[len(rows)] = (mu, sd)
            rows.append((values - mu) / sd)
        out.append(index[key])
    return np.stack(rows).astype(np.float64), out, centre


def _inner_splits(
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    split_ids: Sequence[str],
    k: int,
    spec: TrainSpec,
    validation_fraction: float,
) -> tuple[_Splits, list[int]]:
    """Inner folds of every split's training rows as splits of their own (scaler fitted on inner training rows).

    Returns the inner splits and, per inner split, its outer split. With early
    stopping, validation rows are held out of each inner training part too.
    """
    ids, parent, inner_train, inner_test = [], [], [], []
    for s, split_id in enumerate(split_ids):
        for f, (a, b) in enumerate(inner_folds(train[s], y, k, spec.seed, split_id), start=1):
            ids.append(f"{split_id}/inner{f}")
            parent.append(s)
            inner_train.append(a)
            inner_test.append(b)
    train_mask, test_mask = np.stack(inner_train), np.stack(inner_test)
    mean, scale = split_statistics(x, train_mask)
    valid = None
    if spec.patience:
        train_mask, valid = carve_validation(train_mask, y, validation_fraction, spec.seed, ids)
    return _Splits(ids, train_mask, test_mask, valid, mean, scale), parent


def _train_risk(state: dict, z_train: np.ndarray, spec: TrainSpec, point: Mapping) -> np.ndarray:
    """A trained network's outputs ``[n, 1]`` on its own training rows (standardised), float64.

    A survival target needs them: the Breslow baseline hazard behind the
    Brier score and the training median that cuts risk groups.
    """
    import torch

    from .model import build_mlp

    hidden = list(point.get("hidden", spec.hidden))
    dropout = float(point.get("dropout", spec.dropout))
    net = build_mlp(z_train.shape[1], hidden, 1, point.get("activation", spec.activation), dropout)
    net.load_state_dict(state)
    net.eval()
    with torch.inference_mode():
        out = net(torch.as_tensor(np.ascontiguousarray(z_train, dtype=np.float32)))
    return out.numpy().astype(np.float64)


def _checkpoint_path(out: Path, panel: Panel, split_id: str) -> Path:
    folder = out / "checkpoints" / panel.directory
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{split_id}.pt"


def _predictions(
    parts: list[tuple[Panel, str, int, np.ndarray, np.ndarray, float | None]],
    split_ids: Sequence[str],
    kinds: Sequence[str],
    samples: Sequence[str],
    y: np.ndarray,
    classes: Sequence[str],
    target: TargetKind,
) -> pd.DataFrame:
    """Every test prediction of every (panel, model, split), as one frame built from whole columns.

    ``parts`` holds ``(panel, model, split index, test rows, output, cut)``:
    the kind's output ``[n, out]`` and, for a survival target, the model's
    training rows' median risk (its risk-group cut). The kind names its own
    columns (:attr:`TargetKind.prediction_columns`). One frame per part costs
    milliseconds each, which adds up to seconds over a collection.
    """
    counts = np.array([len(p[3]) for p in parts], dtype=np.int64)
    rows = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, np.int64)
    width = max(len(classes), 1) if target.class_probabilities else 1
    output = np.concatenate([p[4] for p in parts]) if parts else np.zeros((0, width))
    common = {
        "collection": np.repeat([p[0].collection for p in parts], counts).astype(object),
        "panel": np.repeat([p[0].name for p in parts], counts).astype(object),
        "model": np.repeat([p[1] for p in parts], counts).astype(object),
        "split_id": np.repeat([split_ids[p[2]] for p in parts], counts).astype(object),
        "kind": np.repeat([kinds[p[2]] for p in parts], counts).astype(object),
        "sample_id": np.asarray(samples, dtype=object)[rows],
    }
    cuts = np.repeat([np.inf if p[5] is None else p[5] for p in parts], counts) if parts else np.zeros(0)
    columns = target.prediction_columns(y[rows], output, classes, cuts)
    frame = pd.DataFrame({**common, **columns})
    return frame.astype({c: "string" for c in (*PREDICTION_KEYS, *target.prediction_text)})


def _write_history(
    path: Path,
    parts: list[tuple[Panel, int, np.ndarray, str, int]],
    split_ids: Sequence[str],
    kinds: Sequence[str],
    epochs: int,
    names: Sequence[str] = HISTORY_METRICS,
    silent: Mapping[tuple[str, str], Mapping[str, Sequence[str]]] | None = None,
) -> None:
    """Per-epoch history of every real model, as one parquet (names dictionary-encoded, values float32).

    ``best_epoch`` is the epoch whose weights were kept (the last one without
    early stopping); epochs after a model stopped early are NaN.
    ``uninformative`` names (space-separated) the model's genes that were
    constant or never observed in its split's training rows, from ``silent``:
    per ``(folder, panel)``, ``{gene: [split ids]}``.
    """
    n = len(parts)
    values = np.concatenate([h for _, _, h, _, _ in parts]) if parts else np.zeros((0, len(names)), np.float32)

    def repeated(items: Sequence[str]) -> pa.DictionaryArray:
        dictionary = list(dict.fromkeys(items))
        index = {v: i for i, v in enumerate(dictionary)}
        codes = np.repeat(np.array([index[v] for v in items], dtype=np.int32), epochs)
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(dictionary, type=pa.string()))

    columns = {
        "collection": repeated([p.collection for p, *_ in parts]),
        "panel": repeated([p.name for p, *_ in parts]),
        "split_id": repeated([split_ids[s] for _, s, *_ in parts]),
        "kind": repeated([kinds[s] for _, s, *_ in parts]),
        "epoch": pa.array(np.tile(np.arange(1, epochs + 1, dtype=np.int32), n)),
    }
    for j, metric in enumerate(names):
        columns[metric] = pa.array(values[:, j].astype(np.float32))
    columns["device"] = repeated([d for _, _, _, d, _ in parts])
    columns["best_epoch"] = pa.array(np.repeat(np.array([b for *_, b in parts], dtype=np.int32), epochs))
    silent = silent or {}
    columns["uninformative"] = repeated(
        [
            " ".join(g for g, where in silent.get((p.folder, p.name), {}).items() if split_ids[s] in where)
            for p, s, *_ in parts
        ]
    )
    HISTORY.write(pa.table(columns), path)
