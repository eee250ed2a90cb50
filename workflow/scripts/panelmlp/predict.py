"""Scoring new samples with a run's trained checkpoints (``snakemake predict``).

The new samples (``predict_csv``) are read with the same reader and checks as
the clean step (:func:`panelmlp.reader.read_table`: comma, tab or semicolon
text, compressed or not, any encoding the config names, or parquet): one row
per sample, the ``sample_id`` column and the panel genes as columns; every
other column is ignored. A line the reader cannot take (a value that is not a
number, a missing or repeated id, a broken line) is quarantined with its
reason, as in the clean step, and listed in ``{name}.quarantine.tsv``.

Every panel is scored by all of its checkpoints
(``results/panels/{folder}/checkpoints/{directory}/{split}.pt``): the
ensemble prediction is the mean over the CV models (``cv_r{r}_f{f}``) of the
class probabilities (of the predicted value for a regression target, of the
risk for a survival target), with the sd across those models; the holdout
model's prediction stands beside it.

Survival: a Cox risk has no fixed origin (the partial likelihood does not
change when a constant is added to every risk), so each model's risks are
read against that model's own training rows' median risk (``median_risk`` in
its checkpoint, the cut fit.py's risk groups use). The ensemble's risk group
is ``high`` when the mean of the CV models' risks is above the mean of their
medians (equivalently: when the mean over the models of risk minus median is
positive), else ``low``; its ``sd`` is the sd across the models of risk minus
median, so that the models' arbitrary offsets do not count as disagreement.
The holdout model's group compares its risk with its own median. A majority
vote of the models' groups would tie with an even number of models; the mean
does not, and it ranks the samples as the ensemble risk does.

Missing genes: a sample scores a panel only if it has a finite value for every
gene of the panel. A sample that lacks one (a gene absent from the file, or a
missing or non-finite value) gets no prediction for that panel: its row says
which genes are missing, never a prediction made as if they were there. A
gene every checkpoint of the panel ignores (constant or never observed in its
training rows) needs no value: its input is 0 whatever the sample holds.

Checkpoints of a panel must agree with the panel's genes (``panels.tsv``) and
with each other on the classes and the target kind; one that does not stops
the step with one line naming the file.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PanelMlpError
from .io import QUARANTINE_COLUMNS, InputSpec
from .metrics import predicted_classes
from .predict_plan import prediction_name
from .reader import read_table
from .tables import PANELS
from .targets import KINDS, TargetKind, target_kind

# torch (checkpoint.py) is imported only where it is used.

log = logging.getLogger("panelmlp")

CV_SPLIT = re.compile(r"cv_r\d+_f\d+")
HOLDOUT = "holdout"
FLOAT_FORMAT = "%.10g"
"""Probabilities are written with 10 significant digits: the mean of the models' outputs to well under 1e-6."""


# --- new samples ----------------------------------------------------------------------------------------


@dataclass
class NewSamples:
    """The new samples read: ids in file order, the wanted genes the file has, their values, and what was set aside."""

    ids: list[str]
    genes: list[str]
    """Panel genes that are columns of the file, in file order."""
    values: np.ndarray
    """``[samples, genes]`` float64; a missing or non-finite value is NaN."""
    quarantine: list[dict[str, object]] = field(default_factory=list)
    accounting: dict[str, object] = field(default_factory=dict)
    columns: dict[str, list[object]] = field(default_factory=dict)
    """Other columns asked for (``keep``: the target column), as read, when the file has them."""

    def matrix(self, genes: Sequence[str]) -> np.ndarray:
        """Values ``[samples, len(genes)]`` in the given order; a gene the file lacks is all NaN."""
        column = {g: j for j, g in enumerate(self.genes)}
        out = np.full((len(self.ids), len(genes)), np.nan)
        for k, gene in enumerate(genes):
            if gene in column:
                out[:, k] = self.values[:, column[gene]]
        return out


def read_new_samples(
    path: str | Path,
    genes: Sequence[str],
    sample_id: str,
    sep: str | None = None,
    encoding: str | None = None,
    decimal: str = ".",
    workdir: str | Path | None = None,
    keep: Sequence[str] = (),
) -> NewSamples:
    """Read the new samples: the ``sample_id`` column and those of ``genes`` the header has.

    Lines the reader cannot take are in ``quarantine`` (file, line, id, reason,
    text), as in the clean step. A file with none of the genes stops with one
    line (the wrong separator or the wrong file, most likely). Columns named in
    ``keep`` that the file has come back in ``columns``, values as read.
    """
    wanted = set(genes)
    read = read_table(
        path,
        sample_id,
        lambda header, id_name: [c for c in header if c in wanted and c != id_name],
        sep=sep,
        encoding=encoding,
        decimal=decimal,
        workdir=workdir,
        role="predict_csv",
    )
    if not read.values:
        shown = ", ".join(list(genes)[:5]) + (" ..." if len(genes) > 5 else "")
        raise PanelMlpError(
            f"{path} line 1: none of the {len(wanted)} panel genes ({shown}) is a column; the new samples need a "
            f"column per gene beside {sample_id} (check input.sep and the file)"
        )
    ids = [str(s) for s in read.table.column(read.id_column).to_pylist()]
    values = np.empty((len(ids), len(read.values)), dtype=np.float64)
    for j, gene in enumerate(read.values):
        values[:, j] = read.table.column(gene).to_numpy(zero_copy_only=False)
    values[~np.isfinite(values)] = np.nan  # inf, -inf, nan written out: missing, as in the clean step
    names = read.table.column_names
    kept = {c: read.table.column(c).to_pylist() for c in keep if c in names and c != read.id_column}
    return NewSamples(ids, list(read.values), values, list(read.quarantine), dict(read.accounting), kept)


# --- checkpoints ----------------------------------------------------------------------------------------


@dataclass
class PanelModels:
    """A panel's checkpoints, checked to fit together: the CV models and the holdout model."""

    panel: str
    collection: str
    genes: list[str]
    classes: list[str]
    kind: str
    """``classification``, ``regression`` or ``survival`` (a name of :data:`panelmlp.targets.KINDS`)."""
    cv: list[tuple[Path, dict]]
    holdout: tuple[Path, dict] | None

    @property
    def record(self) -> TargetKind:
        """The target kind's record (what its outputs are)."""
        return target_kind(self.kind)

    @property
    def horizons(self) -> list[float]:
        """A survival target's days of the time-dependent AUC, from the checkpoints (none for other kinds)."""
        from .checkpoint import target_of

        checkpoints = [c for _, c in self.cv] + ([self.holdout[1]] if self.holdout else [])
        return [float(h) for h in (target_of(checkpoints[0]).get("horizons") or [])] if checkpoints else []


def _kind(checkpoint: dict) -> str:
    from .checkpoint import target_of

    return str(target_of(checkpoint).get("kind", "classification"))


def _retrain(directory: Path) -> str:
    folder = directory.parent.parent if directory.parent.name == "checkpoints" else directory
    return f"rerun `snakemake --forcerun {folder.as_posix()}/checkpoints` to retrain the panel"


def load_panel_models(directory: str | Path, panel: str, genes: Sequence[str], collection: str = "") -> PanelModels:
    """Load and check every checkpoint of one panel (``holdout.pt`` and ``cv_r{r}_f{f}.pt``).

    Every checkpoint must hold the panel's genes (any order) and the classes and
    target kind most of the panel's checkpoints hold; the first that does not
    stops with one line naming the file. Other ``.pt`` files are left out with
    a warning.
    """
    from .checkpoint import load_checkpoint

    directory = Path(directory)
    label = f"{collection}/{panel}" if collection else panel
    if not directory.is_dir():
        raise PanelMlpError(f"panel {label}: no checkpoint folder {directory}; {_retrain(directory)}")
    files = sorted(directory.glob("*.pt"))
    used = [f for f in files if f.stem == HOLDOUT or CV_SPLIT.fullmatch(f.stem)]
    foreign = [f.name for f in files if f not in used]
    if foreign:
        log.warning("predict: panel %s: %s left out (not a holdout or cv_r*_f* checkpoint)", label, ", ".join(foreign))
    if not used:
        raise PanelMlpError(f"panel {label}: no checkpoint in {directory}; {_retrain(directory)}")
    loaded = [(f, load_checkpoint(f)) for f in used]
    want = sorted(genes)
    classes = Counter(tuple(c["classes"]) for _, c in loaded).most_common(1)[0][0]
    kind = Counter(_kind(c) for _, c in loaded).most_common(1)[0][0]
    for path, checkpoint in loaded:
        problem = checkpoint_problem(checkpoint, want, list(classes), kind)
        if problem:
            raise PanelMlpError(
                f"checkpoint {path} does not fit panel {label}: {problem}; remove it, or {_retrain(directory)}"
            )
    cv = [(p, c) for p, c in loaded if p.stem != HOLDOUT]
    holdout = next(((p, c) for p, c in loaded if p.stem == HOLDOUT), None)
    return PanelModels(panel, collection, list(genes), list(classes), kind, cv, holdout)


def checkpoint_problem(checkpoint: dict, genes: Sequence[str], classes: Sequence[str], kind: str) -> str | None:
    """What keeps a checkpoint out of a panel's ensemble (genes, classes, target kind), or None if it fits."""
    have = sorted(checkpoint["genes"])
    if have != sorted(genes):
        missing = sorted(set(genes) - set(have))
        extra = sorted(set(have) - set(genes))
        parts = [f"it holds {len(have)} genes, the panel {len(genes)}"]
        if missing:
            parts.append(f"lacks {_few(missing)}")
        if extra:
            parts.append(f"has {_few(extra)} besides")
        return "genes differ (" + ", ".join(parts) + ")"
    if list(checkpoint["classes"]) != list(classes):
        return f"classes {list(checkpoint['classes'])}, the panel's other checkpoints {list(classes)}"
    if _kind(checkpoint) != kind:
        return f"target kind {_kind(checkpoint)}, the panel's other checkpoints {kind}"
    if kind not in KINDS:
        return f"target kind {kind!r} is none of {', '.join(KINDS)}"
    if _risk_output(target_kind(kind)) and not _finite_number(_median_risk(checkpoint)):
        return "a survival checkpoint without its training rows' median risk (target median_risk)"
    return None


def _risk_output(kind: TargetKind) -> bool:
    """Whether a kind's network output is one risk per sample (not class probabilities, not a value)."""
    return not kind.class_probabilities and not kind.standardised


def _median_risk(checkpoint: dict) -> object:
    from .checkpoint import target_of

    return target_of(checkpoint).get("median_risk")


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))


def _few(names: Sequence[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown}, ... ({len(names)})"


# --- scoring --------------------------------------------------------------------------------------------


def score_panel(models: PanelModels, samples: NewSamples) -> pd.DataFrame:
    """One row per new sample: the ensemble and holdout predictions, or the panel genes it lacks.

    Classification: ``prob_{class}`` (mean over the CV models),
    ``predicted_label`` (from those means, by the evaluation's decision rule),
    ``sd_{class}`` (across the CV models), ``holdout_prob_{class}`` and
    ``holdout_label``. Regression:
    ``predicted_value``, ``sd`` and ``holdout_value``. Survival: ``risk``
    (mean over the CV models), ``sd`` (across them, of each model's risk less
    its training median), ``risk_group`` (``high``/``low``, see the module
    docstring), ``holdout_risk`` and ``holdout_risk_group``. Then ``n_models`` (CV
    models averaged), ``n_genes_present`` (panel genes with a finite value),
    ``missing_genes`` (space-separated, empty when none) and ``status``
    (``scored`` or ``not scored: ...``). Without CV models the holdout model
    alone gives the prediction (``n_models`` 1, sd empty).
    """
    n = len(samples.ids)
    raw = samples.matrix(models.genes)
    finite = np.isfinite(raw)
    needed = ~_ignored(models)
    complete = (finite | ~needed).all(axis=1)
    rows = np.flatnonzero(complete)
    kind = models.record
    names = list(models.classes) if kind.class_probabilities else ["value"]
    ensemble = models.cv or ([models.holdout] if models.holdout else [])
    # A risk is read against its model's training median (no fixed origin): the spread is of risk less median.
    centre = np.array([float(_median_risk(c)) if _risk_output(kind) else 0.0 for _, c in ensemble])
    mean = np.full((n, len(names)), np.nan)
    sd = np.full((n, len(names)), np.nan)
    held = np.full((n, len(names)), np.nan)
    if len(rows):
        stacked = np.stack([_by_genes(c, models, raw[rows]) for _, c in ensemble])
        mean[rows] = stacked.mean(axis=0)
        if len(ensemble) > 1:
            sd[rows] = (stacked - centre[:, None, None]).std(axis=0, ddof=1)  # centre is 0 but for risks
        if models.holdout is not None:
            held[rows] = _by_genes(models.holdout[1], models, raw[rows])
    frame: dict[str, object] = {"sample_id": samples.ids}
    if kind.standardised:
        frame.update({"predicted_value": mean[:, 0], "sd": sd[:, 0], "holdout_value": held[:, 0]})
    elif _risk_output(kind):
        cut = float(centre.mean()) if len(centre) else np.nan
        held_cut = float(_median_risk(models.holdout[1])) if models.holdout is not None else np.nan
        frame.update(
            {
                "risk": mean[:, 0],
                "sd": sd[:, 0],
                "risk_group": _risk_groups(mean[:, 0], cut, complete),
                "holdout_risk": held[:, 0],
                "holdout_risk_group": _risk_groups(held[:, 0], held_cut, complete & (models.holdout is not None)),
            }
        )
    else:
        frame.update({f"prob_{c}": mean[:, k] for k, c in enumerate(names)})
        frame["predicted_label"] = _labels(mean, names, complete)
        frame.update({f"sd_{c}": sd[:, k] for k, c in enumerate(names)})
        frame.update({f"holdout_prob_{c}": held[:, k] for k, c in enumerate(names)})
        frame["holdout_label"] = _labels(held, names, complete & (models.holdout is not None))
    frame["n_models"] = np.where(complete, len(ensemble), 0)
    frame["n_genes_present"] = finite.sum(axis=1)
    genes = np.asarray(models.genes, dtype=object)
    missing = [" ".join(genes[~finite[i]]) for i in range(n)]
    frame["missing_genes"] = missing
    frame["status"] = [
        "scored" if complete[i] else f"not scored: {int((~finite[i] & needed).sum())} panel gene(s) missing"
        for i in range(n)
    ]
    return pd.DataFrame(frame)


def _by_genes(checkpoint: dict, models: PanelModels, values: np.ndarray) -> np.ndarray:
    """One model's output ``[n, out]`` (:func:`panelmlp.checkpoint.predict_output`) for values in the panel's
    gene order, reordered to the checkpoint's own input order."""
    from .checkpoint import predict_output

    position = {g: j for j, g in enumerate(models.genes)}
    order = [position[g] for g in checkpoint["genes"]]
    return predict_output(checkpoint, values[:, order])


def _risk_groups(risk: np.ndarray, cut: float, scored: np.ndarray) -> list[str]:
    """``high`` where the risk is above ``cut`` (as fit.py's risk groups), else ``low``; empty for rows not scored."""
    return ["" if not scored[i] else ("high" if risk[i] > cut else "low") for i in range(len(risk))]


def _ignored(models: PanelModels) -> np.ndarray:
    """Per panel gene, whether every checkpoint of the panel ignores it (uninformative in each one's training rows)."""
    from .checkpoint import uninformative_genes

    checkpoints = [c for _, c in models.cv] + ([models.holdout[1]] if models.holdout else [])
    ignored = set.intersection(*(set(uninformative_genes(c)) for c in checkpoints)) if checkpoints else set()
    return np.array([g in ignored for g in models.genes], dtype=bool)


def _labels(probabilities: np.ndarray, classes: Sequence[str], scored: np.ndarray) -> list[str]:
    """The predicted class per row, by the workflow's decision rule; empty for rows not scored.

    Two classes: the second (the positive class) when its probability is at
    least 0.5; more: the most probable (:func:`panelmlp.metrics.predicted_classes`).
    """
    out = [""] * len(probabilities)
    rows = np.flatnonzero(scored)
    if len(rows):
        for i, k in zip(rows, predicted_classes(probabilities[rows]), strict=True):
            out[i] = classes[int(k)]
    return out


# --- the step -------------------------------------------------------------------------------------------


def read_panels_table(path: str | Path) -> pd.DataFrame:
    """A fit job's ``panels.tsv`` with every column as text (a panel called ``NA`` stays ``NA``; see :mod:`panelmlp.tables`)."""
    path = Path(path)
    if not path.is_file():
        raise PanelMlpError(f"{path} not found; run the workflow (snakemake) so the panels are trained first")
    return PANELS.read_text(path)


@dataclass
class Target:
    """One panel to score: its name, collection and checkpoint folder, and the genes it needs."""

    panel: str
    collection: str
    directory: Path
    genes: list[str]


def panel_targets(entry: Mapping) -> list[Target]:
    """The panels of one plan entry (a named panel, or a collection's kept sets), from the fit jobs' panels.tsv.

    ``entry`` is ``{"panel", "collection" (bool), "sets" (None: every kept set),
    "folders", "table"}``, as the predict rule's ``params.plan`` gives it.
    """
    targets: list[Target] = []
    found: dict[str, tuple[str, str]] = {}
    for folder in entry["folders"]:
        table = read_panels_table(Path(folder) / "panels.tsv")
        for row in table.to_dict("records"):
            if entry["collection"] and row.get("collection") != entry["panel"]:
                continue
            if not entry["collection"] and row.get("panel") != entry["panel"]:
                continue
            found[row["panel"]] = (row.get("status", "kept"), row.get("reason", ""))
            wanted = entry.get("sets")
            if row.get("status", "kept") != "kept" or (wanted is not None and row["panel"] not in wanted):
                continue
            directory = Path(folder) / "checkpoints" / (row.get("directory") or row["panel"])
            targets.append(Target(row["panel"], row.get("collection", ""), directory, row["genes"].split()))
    for name in entry.get("sets") or ([] if entry["collection"] else [entry["panel"]]):
        status, reason = found.get(name, ("absent", ""))
        if status != "kept":
            why = f"it was skipped ({reason})" if status != "absent" else "its fit job's panels.tsv does not list it"
            raise PanelMlpError(
                f"config predict_panels: {name} has no trained model: {why}; leave it out of predict_panels"
            )
    if not targets:
        raise PanelMlpError(f"config predict_panels: panel {entry['panel']} has no trained model; leave it out")
    return targets


def predict_step(
    new: str,
    plan: Sequence[Mapping],
    sample_id: str,
    input: Mapping | None,
    summary: str,
    quarantine: str,
    threads: int = 1,
    splits: str | None = None,
    target: Mapping | None = None,
) -> dict:
    """New samples -> one predictions table per plan entry, the quarantine table and a JSON summary.

    ``splits`` (the run's ``splits.parquet``) tells which new samples the
    models were trained or tested on: matched on the sample id, they are
    counted, warned about, marked ``in_training`` and kept out of the
    external metrics. ``target`` (the config's ``target``): when the new file
    has ``target["column"]`` (a survival target: ``target.event.column`` and
    the ``target.time`` column(s)), every plan entry's ``metrics`` table gets
    the external metrics (:mod:`panelmlp.validation`); otherwise its header alone.
    """
    import torch

    from .validation import truth_columns

    torch.set_num_threads(max(1, int(threads)))
    section = dict(input or {})
    spec = InputSpec.from_config(new, {k: section.get(k) for k in ("sep", "encoding", "decimal")})
    targets = {entry["table"]: panel_targets(entry) for entry in plan}
    genes = list(dict.fromkeys(g for group in targets.values() for t in group for g in t.genes))
    columns = truth_columns(target or {})
    samples = read_new_samples(
        new,
        genes,
        sample_id,
        spec.sep,
        spec.encoding,
        spec.decimal,
        workdir=Path(quarantine).parent,
        keep=columns,
    )
    write_quarantine(samples.quarantine, quarantine)
    for q in samples.quarantine:
        log.warning("predict: quarantined %s line %s: %s", q["file"], q["line"], q["reason"])
    log.info(
        "predict: %s: %d samples read, %d lines quarantined; %d of the %d panel genes are columns",
        new,
        len(samples.ids),
        len(samples.quarantine),
        len(samples.genes),
        len(genes),
    )
    if not samples.ids:
        raise PanelMlpError(
            f"{new}: no sample could be read (first: line {samples.quarantine[0]['line']}: "
            f"{samples.quarantine[0]['reason']})"
            if samples.quarantine
            else f"{new}: no data lines below the header; the table is empty"
        )
    trained = in_training(samples.ids, splits)
    if trained.any():
        log.warning(
            "predict: %d of the %d new samples were in the training cohort (%s, matched on %s): their "
            "predictions are not out-of-sample; they are marked in_training and left out of the external metrics",
            int(trained.sum()),
            len(samples.ids),
            splits,
            sample_id,
        )
    external = _external_truth(samples, target or {}, columns, trained)
    panels_out = []
    for entry in plan:
        frames, scores = [], []
        for one in targets[entry["table"]]:
            models = load_panel_models(one.directory, one.panel, one.genes, one.collection)
            frame = score_panel(models, samples)
            frame["in_training"] = np.where(trained, "yes", "no")
            panels_out.append(_panel_summary(models, frame, samples, entry["table"]))
            if external is not None:
                scores.append(_score_external(models, frame, external, prediction_name(new)))
                panels_out[-1]["external"] = _external_summary(scores[-1])
            if entry["collection"]:
                frame.insert(0, "panel", one.panel)
            frames.append(frame)
        table = pd.concat(frames, ignore_index=True)
        Path(entry["table"]).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(entry["table"], sep="\t", index=False, na_rep="", float_format=FLOAT_FORMAT)
        if entry.get("metrics"):
            from .validation import empty_metrics

            metrics = pd.concat(scores, ignore_index=True) if scores else empty_metrics()
            metrics.to_csv(entry["metrics"], sep="\t", index=False, na_rep="", float_format="%.6g")
    result = {
        "file": str(new),
        "name": prediction_name(new),
        "format": samples.accounting.get("format"),
        "data_lines": samples.accounting.get("data_lines"),
        "samples": len(samples.ids),
        "quarantined": len(samples.quarantine),
        "quarantine": str(quarantine),
        "in_training": {
            "samples": int(trained.sum()),
            "matched_on": sample_id,
            "splits": str(splits) if splits else None,
            "ids": [i for i, t in zip(samples.ids, trained, strict=True) if t][:20],
        },
        "external_validation": None if external is None else external["summary"],
        "panels": panels_out,
    }
    absent = [c for c in columns if c not in samples.columns]
    if external is None and columns:
        log.info("predict: %s has no column %s: no external validation (the predictions alone)", new, ", ".join(absent))
    Path(summary).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def _panel_summary(models: PanelModels, frame: pd.DataFrame, samples: NewSamples, table: str) -> dict:
    """What one panel's scoring did, for the log and the JSON summary."""
    label = f"{models.collection}/{models.panel}" if models.collection else models.panel
    scored = frame["status"] == "scored"
    absent = [g for g in models.genes if g not in set(samples.genes)]
    out: dict[str, object] = {
        "panel": models.panel,
        "collection": models.collection,
        "table": table,
        "kind": models.kind,
        "n_models": len(models.cv),
        "holdout": models.holdout is not None,
        "n_genes": len(models.genes),
        "genes_not_in_file": absent,
        "scored": int(scored.sum()),
        "not_scored": int((~scored).sum()),
    }
    if models.record.class_probabilities:
        out["predicted"] = {c: int((frame.loc[scored, "predicted_label"] == c).sum()) for c in models.classes}
    elif "risk_group" in frame:
        out["predicted"] = {g: int((frame.loc[scored, "risk_group"] == g).sum()) for g in ("high", "low")}
    if not models.cv:
        log.warning("predict: panel %s has no CV checkpoint; the holdout model alone scores it", label)
    if absent:
        log.warning(
            "predict: panel %s: %d of its %d genes are not columns of the file (%s); no sample is scored",
            label,
            len(absent),
            len(models.genes),
            _few(absent),
        )
    elif out["not_scored"]:
        log.warning(
            "predict: panel %s: %d sample(s) not scored: a panel gene's value is missing (see missing_genes)",
            label,
            out["not_scored"],
        )
    log.info("predict: panel %s: %s", label, json.dumps({k: out[k] for k in ("n_models", "scored", "not_scored")}))
    return out


def write_quarantine(entries: Sequence[Mapping], path: str | Path) -> None:
    """The quarantined lines of the new file, in the clean step's quarantine.tsv columns."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(QUARANTINE_COLUMNS)
        for q in entries:
            writer.writerow(["" if q.get(k) is None else q[k] for k in QUARANTINE_COLUMNS])


# --- samples seen in training, external validation ------------------------------------------------------


def in_training(ids: Sequence[str], splits: str | Path | None) -> np.ndarray:
    """Per new sample, whether its id is a sample of the run's splits (trained or tested on): not out-of-sample."""
    if not splits:
        return np.zeros(len(ids), dtype=bool)
    import pyarrow.parquet as pq

    seen = {str(s) for s in pq.read_table(splits, columns=["sample_id"]).column("sample_id").to_pylist()}
    return np.fromiter((str(i) in seen for i in ids), dtype=bool, count=len(ids))


def _external_truth(samples: NewSamples, target: Mapping, columns: Sequence[str], trained: np.ndarray) -> dict | None:
    """The target values of the new samples (raw), what counts, or None when the file lacks a target column.

    ``columns``: :func:`panelmlp.validation.truth_columns`. A survival
    target's values are time and event ``[n, 2]`` (NaN where a sample has no
    usable pair), read by the split step's rules.
    """
    if not columns or any(c not in samples.columns for c in columns):
        return None
    if _risk_output(target_kind(target.get("kind"))):
        from .validation import survival_truth

        values = survival_truth(samples.ids, {c: samples.columns[c] for c in columns}, target)
        missing = int((~np.isfinite(values).all(axis=1)).sum())
        described = {"column": columns[0], "time": list(columns[1:])}
    else:
        values = samples.columns[columns[0]]
        missing = sum(v is None or (isinstance(v, float) and np.isnan(v)) for v in values)
        described = {"column": columns[0]}
    summary = {
        **described,
        "kind": str(target.get("kind") or "classification"),
        "samples": len(values),
        "missing": int(missing),
        "in_training_left_out": int(trained.sum()),
    }
    return {"values": values, "trained": trained, "target": target, "summary": summary}


def _score_external(models: PanelModels, frame: pd.DataFrame, external: Mapping, cohort: str) -> pd.DataFrame:
    """One panel's external metrics: its ensemble predictions against the new samples' target, training samples out."""
    from .validation import class_codes, external_metrics, target_numbers

    keep = ~np.asarray(external["trained"])
    kind = models.record
    if kind.class_probabilities:
        truth = class_codes(external["values"], external["target"].get("classes") or {}, models.classes)
        truth[~keep] = -1
        predicted = frame[[f"prob_{c}" for c in models.classes]].to_numpy(dtype=np.float64)
    elif kind.standardised:
        truth = target_numbers(external["values"])
        truth[~keep] = np.nan
        predicted = frame["predicted_value"].to_numpy(dtype=np.float64)
    else:
        truth = np.array(external["values"], dtype=np.float64)
        truth[~keep] = np.nan
        predicted = frame["risk"].to_numpy(dtype=np.float64)
    label = f"{models.collection}/{models.panel}" if models.collection else models.panel
    table = external_metrics(
        models.panel,
        models.kind,
        truth,
        predicted,
        cohort,
        collection=models.collection or "",
        horizons=models.horizons,
    )
    log.info(
        "predict: panel %s: external validation on %d samples: %s",
        label,
        int(table["n"].iloc[0]) if len(table) else 0,
        ", ".join(
            f"{m} {v:.3g} [{lo:.3g}, {hi:.3g}]"
            for m, v, lo, hi in table[["metric", "value", "ci_low", "ci_high"]].itertuples(index=False)
        ),
    )
    return table


def _external_summary(table: pd.DataFrame) -> dict:
    """A panel's external metrics for the JSON summary: ``{"n", metric: {"value", "ci_low", "ci_high"}}``."""
    out: dict[str, object] = {"n": int(table["n"].iloc[0]) if len(table) else 0}
    for row in table.to_dict("records"):
        out[row["metric"]] = {k: (None if pd.isna(row[k]) else float(row[k])) for k in ("value", "ci_low", "ci_high")}
    return out
