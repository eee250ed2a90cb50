"""Scaling on training rows only, and panel checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from panelmlp.errors import PanelMlpError
from panelmlp.panels import check_panel, panel_genes, read_panel_file
from panelmlp.scaling import fit_scaler, scale_panel


def _splits(ids, test):
    return pd.DataFrame(
        {
            "split_id": "s",
            "kind": "cv",
            "sample_id": ids,
            "role": ["test" if i in test else "train" for i in ids],
            "label": "a",
            "y": 0,
        }
    )


def test_scaler_uses_training_rows_only():
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(30)]
    matrix = pd.DataFrame(rng.normal(5, 2, size=(30, 3)), index=ids, columns=["A", "B", "C"])
    splits = _splits(ids, {"s0", "s1", "s2"})
    table, scalers = scale_panel(matrix, splits, ["A", "C"])
    train = matrix.loc[ids[3:], ["A", "C"]].to_numpy()
    np.testing.assert_allclose(scalers["s"].mean, train.mean(axis=0))
    np.testing.assert_allclose(scalers["s"].scale, train.std(axis=0))
    got_train = table.loc[table.role == "train", ["A", "C"]].to_numpy()
    np.testing.assert_allclose(got_train.mean(axis=0), 0, atol=1e-6)
    # Changing a test sample changes nothing about how training rows are scaled.
    matrix.loc["s0", "A"] = 1e6
    table2, _ = scale_panel(matrix, splits, ["A", "C"])
    np.testing.assert_array_equal(table2.loc[table2.role == "train", ["A", "C"]].to_numpy(), got_train)
    assert list(table.columns) == ["split_id", "kind", "sample_id", "role", "label", "y", "A", "C"]


def test_missing_values_become_training_mean_and_constant_columns_zero():
    scaler = fit_scaler(np.array([[1.0, 3.0], [np.nan, 3.0], [3.0, 3.0]]))
    np.testing.assert_allclose(scaler.mean, [2.0, 3.0])
    assert scaler.scale[1] == 1.0
    out = scaler.transform(np.array([[np.nan, 3.0]]))
    np.testing.assert_array_equal(out, [[0.0, 0.0]])


def test_missing_panel_gene_names_closest_existing_genes():
    with pytest.raises(PanelMlpError) as info:
        check_panel("glial", ["GFAP", "SOX22", "olig2"], ["GFAP", "SOX2", "SOX21", "OLIG2", "OLIG1"])
    message = str(info.value)
    assert "panel glial: 2 gene(s) not in the cohort" in message
    assert "SOX22 (closest: SOX2" in message and "olig2 (closest: OLIG2" in message
    assert "\n" not in message


def test_panel_specs(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("# comment\nA\n\nB  # note\n")
    assert read_panel_file(path) == ["A", "B"]
    assert panel_genes("p", str(path)) == ["A", "B"]
    assert panel_genes("all", "all", ["X", "Y"]) == ["X", "Y"]
    assert panel_genes("l", ["B", "A"]) == ["B", "A"]
    with pytest.raises(PanelMlpError, match="listed twice"):
        panel_genes("l", ["A", "A"])
    with pytest.raises(PanelMlpError, match="not found"):
        panel_genes("f", str(tmp_path / "missing.txt"))
