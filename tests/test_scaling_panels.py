"""Scaling on training rows only, and panel checks."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from panelmlp.errors import PanelMlpError
from panelmlp.panels import check_panel, panel_genes, read_panel_file
from panelmlp.scaling import fit_scaler, read_matrix, split_statistics


def test_split_statistics_use_training_rows_only():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 2, size=(30, 3)).astype(np.float32)
    train = np.ones((2, 30), dtype=bool)
    train[0, :3] = False
    train[1, 10:20] = False
    mean, scale = split_statistics(x, train, block=2)
    for s in range(2):
        np.testing.assert_allclose(mean[s], x[train[s]].astype(np.float64).mean(axis=0))
        np.testing.assert_allclose(scale[s], x[train[s]].astype(np.float64).std(axis=0))
    # Changing a test sample changes nothing about the statistics.
    x[0, 0] = 1e6
    np.testing.assert_array_equal(split_statistics(x, train)[0][0], mean[0])
    assert not np.array_equal(split_statistics(x, train)[0][1], mean[1])


def test_read_matrix_reads_only_the_named_columns_in_sample_order(tmp_path):
    table = pa.table({"id": ["b", "a", "c"], "G1": [1.0, 2.0, None], "G2": [4.0, 5.0, 6.0], "G3": [7.0, 8.0, 9.0]})
    pq.write_table(table, tmp_path / "c.parquet")
    out = read_matrix(str(tmp_path / "c.parquet"), "id", ["G3", "G1"], ["a", "c", "b"])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[8.0, 2.0], [9.0, np.nan], [7.0, 1.0]], dtype=np.float32))


def test_missing_values_become_training_mean_and_constant_columns_zero():
    scaler = fit_scaler(np.array([[1.0, 3.0], [np.nan, 3.0], [3.0, 3.0]]))
    np.testing.assert_allclose(scaler.mean, [2.0, 3.0])
    assert np.isinf(scaler.scale[1])  # uninformative: every value of it standardises to 0
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
