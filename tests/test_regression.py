"""Regression targets: the trainer's losses and metrics, the baselines, the splits, and the workflow end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from panelmlp.baselines import mean_prediction, ridge_prediction
from panelmlp.metrics import regression_metrics
from panelmlp.model import build_mlp, init_weights
from panelmlp.splits import repeated_kfold
from panelmlp.synthetic import plant_numeric_target, write_cohort
from panelmlp.train import STREAM_INIT, STREAM_SHUFFLE, ModelSet, TrainSpec, _epoch_orders, stream_rng, train_models


def test_regression_metrics_match_scikit_learn_and_scipy():
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(0)
    y = rng.normal(size=40).round(1)  # ties, as ages have
    p = y + rng.normal(size=40)
    got = regression_metrics(y, p)
    assert got["r2"] == pytest.approx(r2_score(y, p))
    assert got["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, p)))
    assert got["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert got["pearson"] == pytest.approx(pearsonr(p, y).statistic)
    assert got["spearman"] == pytest.approx(spearmanr(p, y).statistic)
    assert np.isnan(regression_metrics(np.ones(5), np.arange(5.0))["r2"])


@pytest.mark.parametrize(("n", "p"), [(60, 5), (30, 200)])
def test_ridge_matches_scikit_learn_at_p_below_and_above_n(n, p):
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(1)
    x, y, x_test = rng.normal(size=(n, p)), rng.normal(size=n), rng.normal(size=(7, p))
    expected = Ridge(alpha=2.0).fit(x, y).predict(x_test)
    np.testing.assert_allclose(ridge_prediction(x, y, x_test, alpha=2.0), expected, atol=1e-8)
    assert (mean_prediction(y, 3) == y.mean()).all()


def test_repeated_kfold_port_matches_scikit_learn():
    from sklearn.model_selection import RepeatedKFold

    for n, k, r, seed in [(85, 5, 2, 81), (10, 3, 3, 1), (7, 7, 1, 0)]:
        ours = list(repeated_kfold(n, k, r, seed))
        theirs = list(RepeatedKFold(n_splits=k, n_repeats=r, random_state=seed).split(np.zeros(n)))
        assert len(ours) == len(theirs)
        for (a, b), (c, d) in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


def _data(k=3, n=60, g=4, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, g)).astype(np.float32)
    y = (x[:, 0] - 0.5 * x[:, 1] + 0.3 * rng.normal(size=n)).astype(np.float64)
    train = np.zeros((k, n), dtype=bool)
    for i in range(k):
        train[i, rng.permutation(n)[: 40 + i]] = True
    return ModelSet(
        x=x,
        mean=np.zeros((k, g)),
        scale=np.ones((k, g)),
        cols=np.tile(np.arange(g), (k, 1)),
        split=np.arange(k),
        labels=y[None],
        label=np.zeros(k, dtype=int),
        stream=np.arange(k),
        streams=[(f"split{i}", 0) for i in range(k)],
        train=train,
        test=~train,
        task="regression",
    )


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_regression_training_matches_a_plain_torch_loop(loss):
    """One linear output, MSELoss or L1Loss: the stacked trainer lands where torch.optim does."""
    import dataclasses

    data = dataclasses.replace(_data(k=1), loss=loss)
    spec = TrainSpec(hidden=[8], epochs=20, batch_size=16, lr=0.01)
    result = train_models(data, spec)
    init = init_weights(stream_rng(spec.seed, "split0", 0, STREAM_INIT), [4, 8, 1])
    model = build_mlp(4, [8], 1)
    model.load_state_dict(
        {
            "0.weight": torch.tensor(init[0][0].T),
            "0.bias": torch.tensor(init[0][1]),
            "2.weight": torch.tensor(init[1][0].T),
            "2.bias": torch.tensor(init[1][1]),
        }
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = torch.nn.MSELoss() if loss == "mse" else torch.nn.L1Loss()
    orders = _epoch_orders([stream_rng(spec.seed, "split0", 0, STREAM_SHUFFLE)], data.train, 20, int(data.train.sum()))[
        0
    ]
    x, y = torch.tensor(data.x), torch.tensor(data.labels[0], dtype=torch.float32)
    for epoch in range(20):
        for start in range(0, orders.shape[1], 16):
            idx = orders[epoch][start : start + 16]
            opt.zero_grad()
            criterion(model(x[idx])[:, 0], y[idx]).backward()
            opt.step()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(result.state_dict(0)[key], value, atol=1e-5, rtol=0)
    with torch.no_grad():
        test = ~data.train[0]
        pred = model(x[test])[:, 0].numpy()
    expected = regression_metrics(data.labels[0][test], pred)
    assert result.final[0, 2] == pytest.approx(expected["r2"], abs=1e-4)


def test_regression_model_among_k_equals_it_alone():
    data = _data()
    spec = TrainSpec(hidden=[8], epochs=15, batch_size=8, lr=0.01)
    together = train_models(data, spec)
    for k in range(3):
        import dataclasses

        alone = train_models(
            dataclasses.replace(
                data,
                mean=data.mean[[k]],
                scale=data.scale[[k]],
                cols=data.cols[[k]],
                split=np.array([0]),
                stream=np.array([0]),
                streams=[data.streams[k]],
                train=data.train[[k]],
                test=data.test[[k]],
            ),
            spec,
        )
        np.testing.assert_allclose(alone.history[:, 0], together.history[:, k], atol=1e-5)


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow on a numeric target driven by SIG1 and SIG2: a planted panel and a noise panel."""
    from test_workflow import _check, snakemake

    work = tmp_path_factory.mktemp("regression")
    cohort = write_cohort(work / "cohort.csv", n_samples=120, n_genes=10, effect=0.0, n_malformed=0, seed=21)
    plant_numeric_target(cohort.path, "AGE", ["SIG1", "SIG2"], slope=6.0, noise=4.0, seed=2)
    extra = {
        "target": {"column": "AGE", "kind": "regression", "loss": "mse"},
        "panels": {
            "glial": None,
            "microglia": None,
            "all": None,
            "planted": ["SIG1", "SIG2"],
            "noise": ["G00001", "G00002", "G00003"],
        },
        "model": {"epochs": 150, "hidden": [16], "lr": 0.01},
        "evaluate": {"permutations": 49, "random_panels": 20},
    }
    (work / "extra.yaml").write_text(yaml.safe_dump(extra))
    _check(
        snakemake(work, "--cores", "2", "--configfile", str(work / "extra.yaml"), "--config", f"raw_csv={cohort.path}")
    )
    return work


def test_regression_workflow_finds_the_planted_signal_and_not_the_noise(regression_run):
    summary = pd.read_csv(regression_run / "results/metrics/summary.tsv", sep="\t")
    r2 = summary[(summary["model"] == "mlp") & (summary["metric"] == "r2")].set_index("panel")
    assert r2.loc["planted", "ci_low"] > 0.3 and r2.loc["planted", "chance"] == 0
    assert r2.loc["noise", "ci_low"] < 0 < r2.loc["noise", "ci_high"] or r2.loc["noise", "ci_high"] < 0
    assert r2.loc["planted", "perm_p"] == pytest.approx(0.02)  # the smallest with 49 permutations
    assert (
        r2.loc["planted", "n_random"] == 20 and r2.loc["planted", "random_p"] < 0.2
    )  # random pairs rarely hold both genes
    models = set(summary["model"])
    assert models == {"mlp", "mean", "ridge"} and "roc_auc" not in set(summary["metric"])
    labels = json.loads((regression_run / "results/splits/labels.json").read_text())
    assert (
        labels["kind"] == "regression"
        and labels["labelled"] + labels["missing_label"] + labels["unmatched_label"] == 120
    )
    predictions = pd.read_parquet(regression_run / "results/panels/planted/predictions.parquet")
    assert {"true_value", "predicted_value"} <= set(predictions.columns)
    history = pd.read_parquet(regression_run / "results/panels/planted/history.parquet")
    assert {"r2", "rmse", "mae", "pearson", "spearman"} <= set(history.columns)
    from panelmlp.checkpoint import load_checkpoint, predict_value

    checkpoint = load_checkpoint(regression_run / "results/panels/planted/checkpoints/planted/holdout.pt")
    assert checkpoint["target"]["kind"] == "regression" and checkpoint["classes"] == []
    assert np.isfinite(predict_value(checkpoint, np.zeros((2, 2)))).all()


def test_regression_report_speaks_of_r2_and_draws_every_figure(regression_run):
    from chromium import CHROMIUM, Chromium

    html = (regression_run / "results/report.html").read_text()
    assert "R²" in html and "ridge regression" in html and "ROC-AUC -" not in html
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    with Chromium(timeout=60) as browser:
        session = browser.open((regression_run / "results" / "report.html").as_uri())
        browser.ready(session)
        figures, drawn, text = browser.evaluate(
            session,
            """[document.querySelectorAll(".plotly-graph-div").length,
                Array.from(document.querySelectorAll(".plotly-graph-div")).filter((el) => el.querySelector(".main-svg")).length,
                document.body.innerText]""",
        )
    assert figures >= 8 and drawn == figures
    assert "Set-specific:" in text or "Predictive, not set-specific" in text
    assert "Predicted against true values" in text


def test_regression_with_early_stopping_and_a_grid(tmp_path):
    """A numeric target is carved and folded without strata; tuning picks on the validation loss."""
    from panelmlp.fit import fit_unit
    from panelmlp.io import clean_step
    from panelmlp.splits import split_step

    cohort = write_cohort(tmp_path / "c.csv", n_samples=80, n_genes=6, effect=0.0, n_malformed=0, seed=5)
    plant_numeric_target(cohort.path, "AGE", ["SIG1", "SIG2"], slope=6.0, noise=3.0, seed=1)
    paths = {
        k: str(tmp_path / v) for k, v in {"cohort": "c.parquet", "splits": "s.parquet", "labels": "l.json"}.items()
    }
    clean_step(
        [str(cohort.path)],
        {},
        {"before_column": "PATIENT_ID"},
        "SAMPLE_ID",
        "impute",
        paths["cohort"],
        str(tmp_path / "q.tsv"),
        str(tmp_path / "c.json"),
    )
    split = {"test_size": 0.2, "random_state": 81, "cv_folds": 3, "cv_repeats": 1}
    split_step(
        paths["cohort"], "SAMPLE_ID", {"column": "AGE", "kind": "regression"}, split, paths["splits"], paths["labels"]
    )
    unit = {
        "name": "p",
        "collection": "",
        "panels": {"planted": ["SIG1", "SIG2"]},
        "out_dirs": {"planted": str(tmp_path / "out")},
    }
    model = {
        "hidden": [8],
        "epochs": 200,
        "batch_size": 16,
        "lr": 0.01,
        "early_stopping": {"patience": 20, "validation_fraction": 0.2},
        "grid": {"lr": [0.003, 0.03]},
        "inner_folds": 3,
    }
    fit_unit(unit, paths["cohort"], paths["splits"], paths["labels"], model, 0, 0, 1.0)
    metrics = pd.read_csv(tmp_path / "out" / "metrics.tsv", sep="\t")
    mlp = metrics[metrics["model"] == "mlp"]
    assert (mlp["best_epoch"] <= 200).all() and (mlp["best_epoch"] < 200).any()
    assert mlp["grid_point"].str.startswith("lr=").all()
    assert mlp["r2"].mean() > 0.3
    tuning = pd.read_csv(tmp_path / "out" / "tuning.tsv", sep="\t")
    assert (tuning["score"] == "loss").all()
    for _, part in tuning.groupby("split_id"):
        assert part.loc[part["chosen"], "inner_score"].item() == part["inner_score"].min()
