"""The fit step: units of panels, width groups, random-panel pools, and what a job writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from panelmlp.checkpoint import load_checkpoint, predict_raw
from panelmlp.errors import PanelMlpError
from panelmlp.fit import fit_unit, group_by_width, random_gene_sets
from panelmlp.io import clean_step
from panelmlp.scaling import read_matrix
from panelmlp.splits import split_step
from panelmlp.synthetic import write_cohort
from panelmlp.units import resolve

TARGET = {"column": "SMOKING_HISTORY", "classes": {"non-smoker": "non-smoker", "smoker": "smok"}, "positive": "smoker"}
MODEL = {"hidden": [8], "epochs": 12, "batch_size": 16, "lr": 0.01}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A cleaned and split generated cohort: 90 samples, 30 genes, signal in SIG1 and SIG2."""
    work = tmp_path_factory.mktemp("fit")
    cohort = write_cohort(work / "cohort.csv", n_samples=90, n_genes=30, n_malformed=2, seed=4)
    paths = {
        k: str(work / v)
        for k, v in {"cohort": "cohort.parquet", "splits": "splits.parquet", "labels": "labels.json"}.items()
    }
    clean_step(
        [str(cohort.path)],
        {},
        {"before_column": "PATIENT_ID"},
        "SAMPLE_ID",
        "impute",
        paths["cohort"],
        str(work / "q.tsv"),
        str(work / "c.json"),
    )
    split = {"test_size": 0.2, "random_state": 81, "cv_folds": 3, "cv_repeats": 1}
    split_step(paths["cohort"], "SAMPLE_ID", TARGET, split, paths["splits"], paths["labels"])
    gmt = work / "sets.gmt"
    lines = [
        "PLANTED\tsignal\tSIG1\tSIG2\tG00001\tG00002",
        "NOISE_A\tnoise\tG00003\tG00004\tG00005",
        "NOISE_B\tnoise\tG00006\tG00007\tG00008\tG00009\tG00010\tG00011",
        "PARTLY_MISSING\tcoverage\tG00012\tG00013\tNOT_HERE\tNOR_THIS",
        "TOO_SMALL\tsize\tG00014",
    ]
    gmt.write_text("\n".join(lines) + "\n")
    paths["gmt"] = str(gmt)
    paths["work"] = str(work)
    return paths


def _collection(paths: dict, sets: list[str], name: str = "screen/part-001") -> dict:
    return {
        "name": name,
        "collection": "screen",
        "gmt": paths["gmt"],
        "sets": sets,
        "min_size": 2,
        "max_size": 500,
        "min_coverage": 0.8,
        "out_dir": "",
    }


def _fit(paths: dict, unit: dict, out: Path, **kwargs) -> dict:
    """Fit ``unit`` with its outputs under ``out`` (a collection part's folder, or one folder per named panel)."""
    if unit["collection"]:
        unit = {**unit, "out_dir": str(out)}
    else:
        unit = {**unit, "out_dirs": {name: str(out / name) for name in unit["panels"]}}
    args = {"model": MODEL, "permutations": 0, "random_panels": 0, "logreg_c": 1.0, **kwargs}
    return fit_unit(unit, paths["cohort"], paths["splits"], paths["labels"], **args)


def test_a_collection_part_drops_missing_genes_and_records_skipped_sets(inputs):
    available = [f"G{i:05d}" for i in range(1, 29)] + ["SIG1", "SIG2"]
    unit = _collection(inputs, ["PLANTED", "NOISE_A", "PARTLY_MISSING", "TOO_SMALL"])
    resolved = resolve(unit, available)
    panels, table = resolved.panels, resolved.table
    assert [p.name for p in panels] == ["PLANTED", "NOISE_A"]
    skipped = table.set_index("panel").loc[["PARTLY_MISSING", "TOO_SMALL"]]
    assert (skipped["status"] == "skipped").all()
    assert "coverage 0.50 (2/4) below min_coverage 0.80" in skipped.loc["PARTLY_MISSING", "reason"]
    assert "below min_size 2" in skipped.loc["TOO_SMALL", "reason"]
    assert skipped.loc["PARTLY_MISSING", "genes_missing"] == "NOT_HERE NOR_THIS"


def test_a_named_panel_with_a_missing_gene_stops():
    with pytest.raises(PanelMlpError, match="panel mine: 1 gene"):
        unit = {
            "name": "named panels",
            "collection": "",
            "panels": {"mine": ["G00001", "NOPE"]},
            "out_dirs": {"mine": "x"},
        }
        resolve(unit, ["G00001"])


def test_width_groups_pad_only_where_it_pays():
    # Thousands of narrow models and a few very wide ones: never padded together.
    groups = group_by_width([10, 11, 12, 20000], [5000, 5000, 5000, 11], hidden=64)
    assert [3] in groups and all(3 not in g for g in groups if g != [3])
    # A handful of models of similar small widths: one pass is cheaper than three.
    assert group_by_width([5, 6, 7], [11, 11, 11], hidden=64) == [[0, 1, 2]]


def test_random_pools_are_drawn_from_their_own_seed():
    a = random_gene_sets(100, 10, 50, seed=0)
    assert a.shape == (50, 10) and all(len(set(row)) == 10 for row in a)
    np.testing.assert_array_equal(a[:20], random_gene_sets(100, 10, 20, seed=0))
    assert not np.array_equal(a, random_gene_sets(100, 10, 50, seed=1))


def test_fit_writes_every_output_and_models_do_not_depend_on_their_neighbours(inputs, tmp_path):
    both = _fit(inputs, _collection(inputs, ["PLANTED", "NOISE_A", "NOISE_B"]), tmp_path / "both", random_panels=4)
    _fit(inputs, _collection(inputs, ["NOISE_A"], "screen/part-002"), tmp_path / "alone", random_panels=4)
    assert both["panels"] == 3 and both["models"]["random"] == 3 * 4 * 3  # sizes 3, 4, 6 x 4 draws x 3 CV splits
    for name in ("panels.tsv", "history.parquet", "metrics.tsv", "predictions.parquet", "nulls.parquet", "fit.json"):
        assert (tmp_path / "both" / name).is_file()
    assert sorted(p.name for p in (tmp_path / "both" / "checkpoints").iterdir()) == ["NOISE_A", "NOISE_B", "PLANTED"]
    # NOISE_A trained beside wider panels (zero-padded) or alone: the same model.
    for split in ("holdout", "cv_r1_f1"):
        a = load_checkpoint(tmp_path / "both" / "checkpoints" / "NOISE_A" / f"{split}.pt")
        b = load_checkpoint(tmp_path / "alone" / "checkpoints" / "NOISE_A" / f"{split}.pt")
        for key, value in a["state_dict"].items():
            torch.testing.assert_close(value, b["state_dict"][key], atol=1e-5, rtol=0)
    ma = pd.read_csv(tmp_path / "both" / "metrics.tsv", sep="\t")
    mb = pd.read_csv(tmp_path / "alone" / "metrics.tsv", sep="\t")
    pd.testing.assert_frame_equal(
        ma[ma.panel == "NOISE_A"].reset_index(drop=True),
        mb.reset_index(drop=True),
        check_exact=False,
        check_dtype=False,
        atol=1e-5,
    )
    # The random pool of size 3 is the same in both jobs.
    na, nb = (pd.read_parquet(tmp_path / d / "nulls.parquet") for d in ("both", "alone"))
    key = ["size", "replicate", "split_id"]
    ra = na[(na.kind == "random") & (na["size"] == 3)].sort_values(key).reset_index(drop=True)
    rb = nb[nb.kind == "random"].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ra, rb, check_exact=False, atol=1e-5)


def test_parts_share_out_a_random_pool_and_train_each_draw_as_one_job_would(inputs, tmp_path):
    # Part order (size, line): TOO_SMALL(1) NOISE_A(3) PLANTED(4) PARTLY_MISSING(4, skipped) NOISE_B(6). At bin width
    # 1.0 sizes 3 and 4 share the pool of 4 (6 has the pool of 8): part 1 (NOISE_A) and part 2 (PLANTED, NOISE_B)
    # both need the pool of 4, and deal its 5 draws round-robin; part 2 alone needs the pool of 8.
    order = ["TOO_SMALL", "NOISE_A", "PLANTED", "PARTLY_MISSING", "NOISE_B"]
    first = {**_collection(inputs, order[:2]), "sets_before": 0, "cuts": [0, 2, 5]}
    second = {**_collection(inputs, order[2:], "screen/part-002"), "sets_before": 2, "cuts": [0, 2, 5]}
    args = {"random_panels": 5, "random_bin_width": 1.0}
    one = _fit(inputs, first, tmp_path / "one", **args)
    two = _fit(inputs, second, tmp_path / "two", **args)
    whole = _fit(inputs, _collection(inputs, order, "screen/whole"), tmp_path / "whole", **args)
    assert (one["models"]["random"], two["models"]["random"]) == (3 * 3, (2 + 5) * 3)  # draws x 3 CV splits
    assert whole["models"]["random"] == (5 + 5) * 3
    key = ["size", "replicate", "split_id"]
    parts = pd.concat(pd.read_parquet(tmp_path / d / "nulls.parquet") for d in ("one", "two"))
    parts = parts[parts.kind == "random"].sort_values(key).reset_index(drop=True)
    alone = pd.read_parquet(tmp_path / "whole" / "nulls.parquet")
    alone = alone[alone.kind == "random"].sort_values(key).reset_index(drop=True)
    assert sorted(parts.loc[parts["size"] == 4, "replicate"].unique()) == [1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(
        parts.drop(columns="panel"), alone.drop(columns="panel"), check_exact=False, atol=1e-5
    )


def test_checkpoints_score_raw_values_like_the_job_did(inputs, tmp_path):
    _fit(inputs, _collection(inputs, ["PLANTED"]), tmp_path)
    predictions = pd.read_parquet(tmp_path / "predictions.parquet")
    mlp = predictions[(predictions.model == "mlp") & (predictions.split_id == "cv_r1_f2")]
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "PLANTED" / "cv_r1_f2.pt")
    raw = read_matrix(inputs["cohort"], "SAMPLE_ID", checkpoint["genes"], list(mlp.sample_id))
    np.testing.assert_allclose(predict_raw(checkpoint, raw)[:, 1], mlp.probability, atol=1e-5)


def test_permutation_nulls_share_labels_across_panels(inputs, tmp_path):
    summary = _fit(inputs, _collection(inputs, ["PLANTED", "NOISE_A"]), tmp_path, permutations=3)
    nulls = pd.read_parquet(tmp_path / "nulls.parquet")
    perms = nulls[nulls.kind == "permutation"]
    assert summary["models"]["permutation"] == 2 * 3 * 3
    assert set(perms.panel) == {"PLANTED", "NOISE_A"} and set(perms.replicate) == {1, 2, 3}
    history = pd.read_parquet(tmp_path / "history.parquet")
    assert len(history) == 2 * 4 * MODEL["epochs"]  # real models only: 2 panels x (holdout + 3 folds)
    info = json.loads((tmp_path / "fit.json").read_text())
    assert info["train_gflop"] > 0 and info["stacked_passes"] >= 1


def test_named_panels_in_one_job_each_get_their_own_folder(inputs, tmp_path):
    unit = {
        "name": "named panels",
        "collection": "",
        "panels": {"sig": ["SIG1", "SIG2"], "noise": ["G00003", "G00004"]},
    }
    summary = _fit(inputs, unit, tmp_path, permutations=2, random_panels=3)
    assert summary["panels"] == 2
    for name, other in (("sig", "noise"), ("noise", "sig")):
        folder = tmp_path / name
        metrics = pd.read_csv(folder / "metrics.tsv", sep="\t")
        assert set(metrics.panel) == {name}
        assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == [name]
        nulls = pd.read_parquet(folder / "nulls.parquet")
        assert other not in set(nulls.panel) and set(nulls[nulls.kind == "random"]["size"]) == {2}
        assert pd.read_csv(folder / "panels.tsv", sep="\t").panel.tolist() == [name]
