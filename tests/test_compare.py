"""Summaries across panels: the t-test, empirical p-values, Benjamini-Hochberg and the verdict under multiplicity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from panelmlp.compare import (
    beats_random,
    benjamini_hochberg,
    corrected_ci,
    corrected_t_p,
    multiplicity_warnings,
    percentile_in,
    signal_level,
    summarise,
)
from panelmlp.metrics import METRICS


def test_benjamini_hochberg_matches_r_p_adjust():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.2, NA), "BH")
    p = [0.01, 0.04, 0.03, 0.005, 0.2, math.nan]
    q = benjamini_hochberg(p)
    np.testing.assert_allclose(q[:5], [0.025, 0.05, 0.05, 0.025, 0.2])
    assert math.isnan(q[5])
    assert benjamini_hochberg([]).shape == (0,)
    assert benjamini_hochberg([0.3]).tolist() == [0.3]


def test_one_sided_t_test_agrees_with_the_interval():
    """p < 0.025 exactly when the two-sided 95% interval lies above 0.5."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = rng.normal(rng.uniform(0.4, 0.8), rng.uniform(0.01, 0.2), size=10)
        _, _, low, _ = corrected_ci(values, 0.25)
        p = corrected_t_p(values, 0.25)
        assert (p < 0.025) == (low > 0.5)
    assert corrected_t_p(np.array([1.0, 1.0, 1.0]), 0.25) == 0.0
    assert corrected_t_p(np.array([0.5, 0.5]), 0.25) == 1.0
    assert math.isnan(corrected_t_p(np.array([0.7]), 0.25))


def test_percentile_counts_ties_half():
    assert percentile_in(0.6, np.array([0.5, 0.6, 0.7, 0.4])) == pytest.approx(100 * 2.5 / 4)
    assert math.isnan(percentile_in(0.6, np.array([])))


def _metrics(panels: dict[str, list[float]], collection: str = "") -> pd.DataFrame:
    rows = []
    for panel, values in panels.items():
        for i, v in enumerate(values):
            rows.append(
                {
                    "collection": collection,
                    "panel": panel,
                    "model": "mlp",
                    "split_id": f"cv_r1_f{i + 1}",
                    "kind": "cv",
                    "n_train": 80,
                    "n_test": 20,
                    **dict.fromkeys(METRICS, v),
                }
            )
    return pd.DataFrame(rows)


def _random_nulls(size: int, means: list[float], splits: int = 5, copies: int = 1) -> pd.DataFrame:
    rows = [
        {
            "kind": "random",
            "collection": "",
            "panel": "",
            "size": size,
            "replicate": r + 1,
            "split_id": f"cv_r1_f{s + 1}",
            "roc_auc": m,
        }
        for _ in range(copies)
        for r, m in enumerate(means)
        for s in range(splits)
    ]
    return pd.DataFrame(rows)


def test_random_panel_p_value_per_size_and_draws_counted_once():
    metrics = _metrics({"a": [0.8] * 5, "b": [0.55] * 5, "c": [0.9] * 5})
    nulls = pd.concat([_random_nulls(10, [0.5, 0.6, 0.7, 0.85], copies=2), _random_nulls(3, [0.95, 0.97])])
    sizes = {("", "a"): 10, ("", "b"): 10, ("", "c"): 3}
    out = summarise(metrics, nulls, sizes).set_index(["panel", "metric"])
    a, b, c = (out.loc[(p, "roc_auc")] for p in "abc")
    assert a["n_random"] == 4 and a["random_p"] == pytest.approx((1 + 1) / 5)  # one draw (0.85) beats 0.8
    assert a["random_pct"] == pytest.approx(75.0)
    assert b["random_p"] == pytest.approx((1 + 3) / 5)
    assert c["n_random"] == 2 and c["random_p"] == pytest.approx(1.0)
    # q-values over the three panels
    np.testing.assert_allclose(
        out.xs("roc_auc", level="metric").loc[["a", "b", "c"], "random_q"],
        benjamini_hochberg([a["random_p"], b["random_p"], c["random_p"]]),
    )


def test_many_noise_panels_are_not_called_signal():
    """Among 200 noise panels some intervals exclude 0.5 by chance; after BH none is a signal."""
    rng = np.random.default_rng(1)
    # CV folds of one panel share most samples, so a panel's folds move together: a chance offset per panel.
    panels = {
        f"set{i:03d}": list(np.clip(rng.normal(0.5 + rng.normal(0, 0.04), 0.06, size=5), 0, 1)) for i in range(200)
    }
    panels["real"] = [0.86, 0.9, 0.88, 0.92, 0.87]
    out = summarise(_metrics(panels, "screen"))
    auc = out[out.metric == "roc_auc"].set_index("panel")
    lucky = auc[(auc.index != "real") & (auc.ci_low > 0.5)]
    assert len(lucky) > 0  # chance alone lifts some intervals above 0.5 ...
    levels = {p: signal_level(row) for p, row in auc.iterrows()}
    assert all(levels[p] == "unconfirmed" for p in lucky.index)  # ... but their q-values are not below 0.05
    assert levels["real"] == "predictive" and auc.loc["real", "t_q"] < 0.05  # no random panels: never set-specific
    assert auc.loc["real", "call"] == "predictive" and set(auc.drop(index="real")["call"]) == {"none"}


def test_signal_level_needs_the_permutation_q_value_too():
    row = {
        "cv_mean": 0.8,
        "ci_low": 0.7,
        "ci_high": 0.9,
        "t_p": 0.001,
        "t_q": 0.002,
        "n_permutations": 99,
        "perm_q": 0.2,
    }
    assert signal_level(row) == "unconfirmed"
    assert signal_level({**row, "perm_q": 0.01}) == "predictive"
    assert signal_level({**row, "n_permutations": 0}) == "predictive"
    assert signal_level({**row, "perm_q": 0.01, "n_random": 999, "random_q": 0.01}) == "set-specific"
    assert signal_level({**row, "perm_q": 0.01, "n_random": 999, "random_q": 0.2}) == "predictive"
    assert signal_level({**row, "n_random": 999, "random_q": 0.01}) == "unconfirmed"  # the permutation q fails
    assert signal_level({**row, "ci_low": 0.45}) == "none"
    assert signal_level({"cv_mean": 0.3, "ci_low": 0.2, "ci_high": 0.4}) == "below"
    assert signal_level({"cv_mean": math.nan, "ci_low": math.nan, "ci_high": math.nan}) == "unknown"
    assert beats_random({"n_random": 0}) == "not run"
    assert beats_random({"n_random": 100, "random_q": 0.01}) == "yes"


def test_multiplicity_warnings_say_when_q_cannot_reach_alpha():
    assert multiplicity_warnings(1, 0, 0) == []
    assert "can never reach" in multiplicity_warnings(1, 10, 0)[0]
    assert multiplicity_warnings(1, 99, 0) == []
    (warning,) = multiplicity_warnings(50, 0, 200)
    assert "evaluate.random_panels=200 with 50 panels" in warning and "1000" in warning
    assert "fitted tail p" in warning
    assert multiplicity_warnings(50, 0, 2000) == []
    # The random-panel family is the panels with a random-panel p-value, not every panel.
    (warning,) = multiplicity_warnings(50, 0, 200, random_family=12)
    assert "with 12 panels" in warning and "240" in warning
    assert multiplicity_warnings(50, 0, 300, random_family=12) == []


def test_a_panel_fitted_by_two_jobs_is_refused(tmp_path):
    """Pooling two copies of a panel's CV rows would narrow its interval: stop instead."""
    from panelmlp.compare import compare_step
    from panelmlp.errors import PanelMlpError

    table = pd.DataFrame(
        {
            "unit": "s/part-001",
            "collection": "s",
            "panel": ["A"],
            "directory": "A",
            "description": "",
            "n_listed": 3,
            "n_found": 3,
            "coverage": 1.0,
            "status": "kept",
            "reason": "",
            "hint": "",
            "genes": "X Y Z",
            "genes_missing": "",
        }
    )
    table.to_csv(tmp_path / "p1.tsv", sep="\t", index=False)
    table.assign(unit="s/part-002").to_csv(tmp_path / "p2.tsv", sep="\t", index=False)
    _metrics({"A": [0.8] * 3}, "s").to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    with pytest.raises(PanelMlpError, match=r"gene sets \['s/A'\] were fitted by two jobs"):
        compare_step(
            [str(tmp_path / "p1.tsv"), str(tmp_path / "p2.tsv")], [str(tmp_path / "m.tsv")], [], "s.tsv", "p.tsv"
        )


def _survival_run(tmp_path, n_perm: int = 99, n_random: int = 99) -> dict[str, str]:
    """A survival unit's tables as the fit step writes them: a strong panel, a noise panel, three models, nulls."""
    from panelmlp.randomsets import pool_size
    from panelmlp.tables import METRICS as METRICS_TABLE
    from panelmlp.tables import NULLS, PANELS

    rng = np.random.default_rng(7)
    splits = [f"cv_r{r}_f{f}" for r in (1, 2) for f in range(1, 6)]
    means = {"strong": 0.78, "noise": 0.5}
    panels = pd.DataFrame(
        {
            "unit": "named",
            "collection": "",
            "panel": list(means),
            "directory": list(means),
            "description": "",
            "n_listed": 10,
            "n_found": 10,
            "coverage": 1.0,
            "status": "kept",
            "reason": "",
            "hint": "",
            "genes": "G1 G2",
            "genes_missing": "",
        }
    )
    rows = []
    for panel, mean in means.items():
        offset = rng.normal(0, 0.01)  # a panel's folds share rows: one offset per panel
        for model, centre in (("mlp", mean + offset), ("constant", 0.5), ("cox_ridge", mean - 0.02 + offset)):
            for split in [*splits, "holdout"]:
                c = 0.5 if model == "constant" else float(np.clip(rng.normal(centre, 0.03), 0, 1))
                rows.append(
                    {
                        "collection": "",
                        "panel": panel,
                        "model": model,
                        "split_id": split,
                        "kind": "holdout" if split == "holdout" else "cv",
                        "n_train": 160,
                        "n_test": 40,
                        "n_uninformative": 0,
                        "c_index": c,
                        "uno_c": c - 0.01,
                        "td_auc": c + 0.01,
                        "ibs": 0.2,
                        "td_auc_365": c + 0.02,
                        "td_auc_730": c,
                        "best_epoch": 30.0 if model == "mlp" else np.nan,
                        "grid_point": "",
                    }
                )
    null_rows = []
    for panel in means:
        for r in range(1, n_perm + 1):
            for split in splits:
                null_rows.append(["permutation", "", panel, 10, r, split, 1.0, 1.0, rng.normal(0.5, 0.04)])
    for r in range(1, n_random + 1):
        centre = rng.normal(0.52, 0.02)
        for split in splits:
            null_rows.append(["random", "", "", pool_size(10), r, split, 1.0, 1.0, rng.normal(centre, 0.03)])
    nulls = pd.DataFrame(null_rows, columns=[c for c, _ in NULLS.columns("survival")])
    paths = {k: str(tmp_path / n) for k, n in (("panels", "panels.tsv"), ("metrics", "metrics.tsv"))}
    paths["nulls"] = str(tmp_path / "nulls.parquet")
    PANELS.write(panels, paths["panels"])
    METRICS_TABLE.write(pd.DataFrame(rows), paths["metrics"])
    NULLS.write(nulls, paths["nulls"])
    return paths


def test_a_survival_run_is_summarised_tested_and_called(tmp_path):
    """C-index rows with the corrected interval and t-test against 0.5, permutation and random-panel p; calls."""
    import json

    from panelmlp.compare import compare_step
    from panelmlp.tables import SUMMARY
    from scipy import stats

    paths = _survival_run(tmp_path)
    compare_step(
        [paths["panels"]],
        [paths["metrics"]],
        [paths["nulls"]],
        str(tmp_path / "summary.tsv"),
        str(tmp_path / "all_panels.tsv"),
        permutations=99,
        random_panels=99,
        verdict_out=str(tmp_path / "verdict.json"),
    )
    summary = SUMMARY.read(tmp_path / "summary.tsv", kind="survival")
    assert set(summary["metric"]) == {"c_index", "uno_c", "td_auc", "ibs", "td_auc_365", "td_auc_730"}
    assert set(summary["model"]) == {"mlp", "constant", "cox_ridge"}
    metrics = pd.read_csv(paths["metrics"], sep="\t", keep_default_na=False)
    nulls = pd.read_parquet(paths["nulls"])
    rows = summary[summary["metric"] == "c_index"].set_index(["panel", "model"])
    for panel in ("strong", "noise"):
        row = rows.loc[(panel, "mlp")]
        cv = metrics[(metrics.panel == panel) & (metrics.model == "mlp") & (metrics.kind == "cv")]["c_index"]
        # Nadeau-Bengio corrected interval and one-sided t-test against 0.5, by scipy's t distribution.
        j, sd = len(cv), cv.std(ddof=1)
        se = np.sqrt((1 / j + 40 / 160) * sd**2)
        half = stats.t.ppf(0.975, j - 1) * se
        assert row["cv_mean"] == pytest.approx(cv.mean(), abs=1e-6)
        assert row["ci_low"] == pytest.approx(cv.mean() - half, abs=1e-5)
        assert row["ci_high"] == pytest.approx(cv.mean() + half, abs=1e-5)
        assert row["t_p"] == pytest.approx(stats.t.sf((cv.mean() - 0.5) / se, j - 1), rel=1e-4, abs=1e-12)
        assert row["chance"] == 0.5 and row["n_splits"] == 10
        perm = nulls[(nulls.kind == "permutation") & (nulls.panel == panel)].groupby("replicate")["c_index"].mean()
        assert row["perm_p"] == pytest.approx((1 + (perm >= row["cv_mean"] - 5e-7).sum()) / (len(perm) + 1), rel=1e-4)
        assert row["n_permutations"] == 99 and row["n_random"] == 99 and np.isfinite(row["random_p"])
    assert rows.loc[("strong", "mlp"), "call"] in ("predictive", "set-specific")
    assert rows.loc[("strong", "mlp"), "random_q"] < 0.05  # far above random gene sets of its size
    assert rows.loc[("noise", "mlp"), "call"] == "none"
    assert rows.loc[("noise", "constant"), "t_p"] == 1.0  # a constant risk ranks at chance exactly
    ibs = summary[(summary.metric == "ibs") & (summary.model == "mlp")]
    assert ibs["chance"].isna().all() and ibs["t_p"].isna().all()  # tests and calls read the main metric only
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["metric"] == "c_index" and verdict["chance"] == 0.5
    assert verdict["predictive"] == ["strong"] and verdict["n_none"] == 1
    assert "0.05 above chance" in verdict["thresholds"]["broad"]
