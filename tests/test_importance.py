"""Driver genes: permutation importance per panel and gene (rule compare, panelmlp.importance)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from panelmlp.checkpoint import predict_raw, predict_value
from panelmlp.errors import PanelMlpError
from panelmlp.importance import (
    GENE_COLUMNS,
    SCREEN_COLUMNS,
    calls_of,
    panel_importance,
    panels_in_scope,
    permutation_orders,
    screen_table,
    split_importance,
)
from panelmlp.model import build_mlp
from panelmlp.synthetic import NON_SMOKER_TEXT, write_cohort
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.inspection import permutation_importance

REPO = Path(__file__).resolve().parents[1]


# --- the same numbers as scikit-learn ------------------------------------------------------------------


def make_checkpoint(n_genes: int, n_out: int, seed: int, regression: bool = False, dropout: float = 0.0) -> dict:
    """An in-memory checkpoint of a randomly initialised network (what load_checkpoint returns)."""
    torch.manual_seed(seed)
    hidden = [8, 5]
    model = build_mlp(n_genes, hidden, n_out if not regression else 1, "tanh", dropout)
    # Larger weights than torch's default, so the genes matter unevenly and scores vary.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.5, 2.0, n_genes)
    scale[-1] = np.inf  # an uninformative gene: every value scores as 0, so its importance is 0
    classes = ["a", "b"] if n_out <= 2 else [f"c{k}" for k in range(n_out)]
    return {
        "state_dict": model.state_dict(),
        "genes": [f"g{j}" for j in range(n_genes)],
        "scaler": {"mean": rng.normal(10, 1, n_genes).tolist(), "scale": scale.tolist()},
        "classes": classes,
        "hyper": {"hidden": hidden, "activation": "tanh", "dropout": dropout},
        "target": {"kind": "regression", "mean": 3.0, "sd": 2.0} if regression else {"kind": "classification"},
    }


class CheckpointClassifier(ClassifierMixin, BaseEstimator):
    """A checkpoint's model as a fitted scikit-learn classifier (class codes 0..C-1)."""

    def __init__(self, checkpoint: dict | None = None):
        self.checkpoint = checkpoint

    def fit(self, x, y):
        return self

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(len(self.checkpoint["classes"]))

    def predict_proba(self, x):
        return predict_raw(self.checkpoint, np.asarray(x, dtype=np.float64))

    def predict(self, x):
        return self.predict_proba(x).argmax(axis=1)


class CheckpointRegressor(RegressorMixin, BaseEstimator):
    """A regression checkpoint's model as a fitted scikit-learn regressor."""

    def __init__(self, checkpoint: dict | None = None):
        self.checkpoint = checkpoint

    def fit(self, x, y):
        return self

    def predict(self, x):
        return predict_value(self.checkpoint, np.asarray(x, dtype=np.float64))


def raw_rows(checkpoint: dict, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    mean = np.asarray(checkpoint["scaler"]["mean"])
    x = mean + rng.normal(0, 1.5, (n, len(mean)))
    x[3, 1] = np.nan  # a missing value scores as the training mean, permuted or not
    return x


@pytest.mark.parametrize("n_rows, repeats, seed", [(7, 1, 0), (40, 5, 3), (61, 10, 12345)])
def test_permutation_orders_are_sklearns(n_rows, repeats, seed):
    """Repeat r's column is sklearn's: its permutation of a column of distinct values gives the order back."""
    column = np.arange(n_rows, dtype=np.float64)
    seen = []

    class Recorder(RegressorMixin, BaseEstimator):
        def fit(self, x, y):
            return self

        def predict(self, x):
            seen.append(np.asarray(x)[:, 0].copy())
            return np.zeros(len(x))

    x = np.stack([column, column], axis=1)
    permutation_importance(Recorder(), x, np.arange(n_rows, dtype=float), n_repeats=repeats, random_state=seed)
    # The first call scores the baseline, then column 0's repeats, then column 1's (the same orders).
    orders = permutation_orders(n_rows, repeats, seed)
    np.testing.assert_array_equal(np.stack(seen[1 : 1 + repeats]).astype(int), orders)
    np.testing.assert_array_equal(seen[0], column)


@pytest.mark.parametrize(
    "n_out, regression, scoring, seed",
    [(2, False, "roc_auc", 0), (2, False, "roc_auc", 7), (3, False, "roc_auc_ovr", 1), (1, True, "r2", 2)],
)
def test_importance_matches_sklearn(n_out, regression, scoring, seed):
    """Same model, rows, repeats and seed: the importances equal sklearn.inspection.permutation_importance's."""
    checkpoint = make_checkpoint(6, n_out, seed, regression, dropout=0.2 if seed == 7 else 0.0)
    x = raw_rows(checkpoint, 53, seed)
    rng = np.random.default_rng(seed + 2)
    if regression:
        y = predict_value(checkpoint, x) + rng.normal(0, 0.5, len(x))
        estimator = CheckpointRegressor(checkpoint)
    else:
        probabilities = predict_raw(checkpoint, x)
        # Labels that follow the model loosely, so the baseline is well above chance and permuting hurts.
        y = np.array([rng.choice(len(p), p=0.5 * p + 0.5 / len(p)) for p in probabilities])
        estimator = CheckpointClassifier(checkpoint)
    ours = split_importance(checkpoint, x, y, n_repeats=8, seed=seed)
    theirs = permutation_importance(estimator, x, y, scoring=scoring, n_repeats=8, random_state=seed)
    assert ours.importances.shape == theirs.importances.shape == (6, 8)
    np.testing.assert_allclose(ours.importances, theirs.importances, atol=1e-6, rtol=0)
    assert np.abs(ours.importances).max() > 0.01  # the genes matter: the comparison is not of zeros
    np.testing.assert_array_equal(ours.importances[-1], 0.0)  # the uninformative gene


def test_panel_importance_orders_splits_and_genes():
    """Checkpoints holding the genes in another order: importances land on the right gene; the interval is compare's."""
    from panelmlp.compare import corrected_ci

    genes = [f"g{j}" for j in range(6)]
    items, values, tests, ratio, per_split = [], {}, {}, {}, []
    for s in range(3):
        checkpoint = make_checkpoint(6, 2, 10 + s)
        order = [5, 0, 3, 1, 4, 2] if s == 1 else list(range(6))
        checkpoint["genes"] = [genes[j] for j in order]
        x = raw_rows(checkpoint, 30, s)  # in the checkpoint's order
        y = (predict_raw(checkpoint, x)[:, 1] > 0.5).astype(int)
        y[:2] = [0, 1]
        split_id = f"cv_r1_f{s + 1}"
        panel_order = np.empty(6, dtype=int)
        panel_order[order] = np.arange(6)
        values[split_id] = x[:, panel_order]  # the panel's gene order
        tests[split_id] = (np.array([f"s{i}" for i in range(30)]), y)
        ratio[split_id] = 0.25
        items.append((Path(f"{split_id}.pt"), checkpoint))
        one = split_importance(checkpoint, x, y, 4, 0).importances.mean(axis=1)
        per_split.append(dict(zip(checkpoint["genes"], one, strict=True)))
    frame = panel_importance(items, genes, values, tests, ratio, 4, 0)
    for gene in genes:
        row = frame[frame["gene"] == gene].iloc[0]
        want = corrected_ci(np.array([d[gene] for d in per_split]), 0.25)
        assert row["importance"] == pytest.approx(want[0], abs=1e-12)
        assert row["ci_low"] == pytest.approx(want[2], abs=1e-12)
        assert row["n_splits"] == 3
    assert list(frame["rank"]) == sorted(frame["rank"])
    assert frame.iloc[0]["importance"] == frame["importance"].max()


# --- scope ---------------------------------------------------------------------------------------------


def summary_rows(calls: dict[tuple[str, str], str | None]) -> pd.DataFrame:
    rows = []
    for (collection, panel), call in calls.items():
        for model in ("mlp", "logreg"):
            rows.append(
                {
                    "collection": collection,
                    "panel": panel,
                    "model": model,
                    "metric": "roc_auc",
                    "cv_mean": 0.8 if call != "none" else 0.5,
                    "ci_low": 0.7 if call != "none" else 0.4,
                    "ci_high": 0.9 if call != "none" else 0.6,
                    "t_p": 0.001 if call != "none" else 0.5,
                    "t_q": 0.001 if call != "none" else 0.5,
                    "n_permutations": 0,
                    "chance": 0.5,
                    "call": call if model == "mlp" else None,
                }
            )
    return pd.DataFrame(rows)


def test_scope_is_every_panel_not_called_none_and_every_listed_one():
    summary = summary_rows(
        {("", "a"): "set-specific", ("", "b"): "none", ("kegg", "b"): "predictive", ("kegg", "c"): "none"}
    )
    calls = calls_of(summary)
    assert calls == {("", "a"): "set-specific", ("", "b"): "none", ("kegg", "b"): "predictive", ("kegg", "c"): "none"}
    scoped = [(s.collection, s.panel, s.listed) for s in panels_in_scope(calls, [])]
    assert scoped == [("", "a", False), ("kegg", "b", False)]
    scoped = [(s.collection, s.panel, s.listed) for s in panels_in_scope(calls, ["kegg/c"])]
    assert scoped == [("", "a", False), ("kegg", "b", False), ("kegg", "c", True)]
    # A bare name takes every panel of that name: the named panel b and the set kegg/b.
    scoped = [(s.collection, s.panel, s.listed) for s in panels_in_scope(calls, ["b"])]
    assert scoped == [("", "a", False), ("", "b", True), ("kegg", "b", True)]


def test_without_a_call_column_the_verdict_decides():
    summary = summary_rows({("", "a"): "predictive", ("", "b"): "none"}).drop(columns="call")
    assert calls_of(summary) == {("", "a"): "predictive", ("", "b"): "none"}


def test_a_listed_name_that_is_no_panel_is_one_line():
    calls = {("", "planted"): "predictive", ("kegg", "KEGG_GLIOMA"): "none"}
    with pytest.raises(PanelMlpError) as error:
        panels_in_scope(calls, ["KEGG_GLIOMAS"])
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("config evaluate.importance: 'KEGG_GLIOMAS' is not a trained panel")
    assert "closest: " in message and "KEGG_GLIOMA" in message


def test_screen_counts_predictive_sets_and_medians():
    genes = pd.DataFrame(
        {
            "collection": ["k", "k", "k", "k", ""],
            "panel": ["s1", "s1", "s2", "s2", "listed"],
            "call": ["predictive", "predictive", "set-specific", "set-specific", "none"],
            "gene": ["X", "A", "X", "B", "X"],
            "importance": [0.3, 0.01, 0.1, 0.02, -0.5],
            "ci_low": [0.1, -0.01, -0.02, 0.01, -0.9],
            "rank": [1, 2, 1, 2, 1],
        }
    )
    screen = screen_table(genes)
    assert list(screen.columns) == SCREEN_COLUMNS
    x = screen.iloc[0]
    assert x["gene"] == "X" and x["n_predictive"] == 2 and x["n_driving"] == 1
    assert x["n_scored"] == 3 and x["n_first"] == 3
    assert x["median_importance"] == pytest.approx(0.2) and x["median_importance_scored"] == pytest.approx(0.1)
    assert x["predictive_sets"] == "k/s1 k/s2"
    # Genes that drive predictive sets first (X: 1 set, B: 1 set, X's median higher), then the rest.
    assert list(screen["gene"]) == ["X", "B", "A"]
    assert list(screen["n_driving"]) == [1, 1, 0]


# --- the rule on generated cohorts ---------------------------------------------------------------------


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    return subprocess.run(
        [*cmd, *args], cwd=REPO, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONHASHSEED": "0"}
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run: a panel with the planted genes and two noise sets sharing the noise gene most correlated with the label."""
    work = tmp_path_factory.mktemp("importance")
    cohort = write_cohort(work / "cohort.csv", n_samples=110, n_genes=40, effect=2.0, n_malformed=0, seed=5)
    frame = pd.read_csv(cohort.path)
    frame = frame[frame["SMOKING_HISTORY"].notna()]
    label = (frame["SMOKING_HISTORY"] != NON_SMOKER_TEXT).astype(float)
    noise = [g for g in cohort.genes if g.startswith("G")]
    r = frame[noise].corrwith(label).abs().sort_values()
    shared = r.index[-1]  # the chance-correlated gene
    quiet = list(r.index[:4])  # the four least correlated
    extra = {
        "panels": {
            "glial": None,
            "microglia": None,
            "all": None,
            "planted": ["SIG1", "SIG2", quiet[0], quiet[1]],
            "noise_a": [shared, quiet[0], quiet[1]],
            "noise_b": [shared, quiet[2], quiet[3]],
        },
        "model": {"epochs": 120, "hidden": [16]},
        "evaluate": {"importance": ["noise_a", "noise_b"], "importance_repeats": 5},
    }
    (work / "extra.yaml").write_text(yaml.safe_dump(extra))
    proc = snakemake(
        work, "--cores", "2", "--configfile", str(work / "extra.yaml"), "--config", f"raw_csv={cohort.path}",
        "--until", "compare",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    genes = pd.read_csv(work / "results/metrics/genes.tsv", sep="\t", keep_default_na=False, na_values=[""])
    screen = pd.read_csv(work / "results/metrics/genes_screen.tsv", sep="\t", keep_default_na=False, na_values=[""])
    return {"work": work, "genes": genes, "screen": screen, "shared": shared, "r": float(r.iloc[-1]), "quiet": quiet}


@pytest.mark.workflow
def test_planted_genes_rank_first_in_their_panel(run):
    genes = run["genes"]
    assert list(genes.columns) == GENE_COLUMNS
    planted = genes[genes["panel"] == "planted"].set_index("gene")
    assert planted.loc["SIG1", "call"] != "none"  # in scope by its call, not by a listing
    assert not planted["listed"].any()
    assert sorted(planted.loc[["SIG1", "SIG2"], "rank"]) == [1, 2]
    assert (planted.loc[["SIG1", "SIG2"], "ci_low"] > 0).all()
    assert (planted.loc[["SIG1", "SIG2"], "importance"] > 5 * planted.loc[run["quiet"][:2], "importance"].max()).all()
    assert (planted["n_splits"] == 10).all() and (planted["n_genes"] == 4).all()


@pytest.mark.workflow
def test_a_shared_chance_gene_ranks_first_in_both_noise_sets(run):
    genes, shared = run["genes"], run["shared"]
    assert run["r"] > 0.25  # the generator gave one gene a chance correlation this strong
    for panel in ("noise_a", "noise_b"):
        part = genes[genes["panel"] == panel]
        assert part["listed"].all()
        assert part.sort_values("rank").iloc[0]["gene"] == shared, part
    row = run["screen"].set_index("gene").loc[shared]
    assert row["n_scored"] == 2 and row["n_first"] == 2


@pytest.mark.workflow
def test_importance_of_the_run_equals_sklearns(run):
    """genes.tsv's numbers: the mean over the CV checkpoints of sklearn's permutation_importance on their test rows."""
    from panelmlp.checkpoint import load_checkpoint
    from panelmlp.scaling import read_matrix

    work = run["work"]
    splits = pd.read_parquet(work / "results/splits/splits.parquet")
    folder = work / "results/panels/planted/checkpoints/planted"
    per_split = []
    for path in sorted(folder.glob("cv_*.pt")):
        checkpoint = load_checkpoint(path)
        test = splits[(splits["split_id"] == path.stem) & (splits["role"] == "test")]
        x = read_matrix(
            str(work / "results/clean/cohort.parquet"), "SAMPLE_ID", checkpoint["genes"], list(test["sample_id"])
        )
        result = permutation_importance(
            CheckpointClassifier(checkpoint), x, test["y"].to_numpy(), scoring="roc_auc", n_repeats=5, random_state=0
        )
        per_split.append(dict(zip(checkpoint["genes"], result.importances_mean, strict=True)))
    assert len(per_split) == 10
    table = run["genes"][run["genes"]["panel"] == "planted"].set_index("gene")
    for gene, value in table["importance"].items():
        assert value == pytest.approx(np.mean([d[gene] for d in per_split]), rel=1e-5, abs=1e-6)


@pytest.mark.workflow
def test_rerun_gives_the_same_bytes(run):
    """Fixed seed, CPU: a forced rerun writes identical tables."""
    work = run["work"]
    before = [(work / "results/metrics" / n).read_bytes() for n in ("genes.tsv", "genes_screen.tsv")]
    proc = snakemake(
        work, "--cores", "1", "--configfile", str(work / "extra.yaml"), "--config", f"raw_csv={work / 'cohort.csv'}",
        "--until", "compare", "--forcerun", "compare",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = [(work / "results/metrics" / n).read_bytes() for n in ("genes.tsv", "genes_screen.tsv")]
    assert after == before


@pytest.mark.workflow
def test_a_listed_name_that_is_no_panel_stops_at_parse_time(run):
    work = run["work"]
    proc = snakemake(
        work, "-n", "--configfile", str(work / "extra.yaml"), "--config", f"raw_csv={work / 'cohort.csv'}",
        "evaluate={importance: [noise_c]}",
    )  # fmt: skip
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "panelmlp error" in line]
    assert errors == [
        "panelmlp error: config evaluate.importance: 'noise_c' is not a panel of this run (closest: noise_b, noise_a); "
        "name a panel of config panels or a set of a collection (as set or collection/set), or leave it out"
    ]
    assert "Traceback" not in proc.stderr


# --- the report's section ------------------------------------------------------------------------------


def section_inputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Three predictive sets of a collection that all lean on X, one listed panel called none."""
    members = {"s1": ["X", "A", "B"], "s2": ["X", "C"], "s3": ["X", "A", "D", "E"], "solo": ["F", "G"]}
    rows = []
    for panel, genes in members.items():
        for rank, gene in enumerate(genes, start=1):
            top = rank == 1 and panel != "solo"
            rows.append(
                {
                    "collection": "" if panel == "solo" else "k",
                    "panel": panel,
                    "call": "none" if panel == "solo" else "predictive",
                    "listed": panel == "solo",
                    "gene": gene,
                    "metric": "roc_auc",
                    "importance": 0.2 if top else 0.01 / rank,
                    "importance_sd": 0.05,
                    "ci_low": 0.1 if top else -0.02,
                    "ci_high": 0.3 if top else 0.04,
                    "n_splits": 10,
                    "rank": rank,
                    "n_genes": len(genes),
                }
            )
    genes = pd.DataFrame(rows, columns=GENE_COLUMNS)
    table = pd.DataFrame(
        {
            "collection": ["" if p == "solo" else "k" for p in members],
            "panel": list(members),
            "status": "kept",
            "genes": [" ".join(g) for g in members.values()],
        }
    )
    return genes, screen_table(genes), table


def figure_json(html: str, key: str) -> dict:
    import json
    import re

    match = re.search(rf'<script type="application/json" id="fig-{key}-json">(.*?)</script>', html)
    assert match, key
    return json.loads(match.group(1))


def test_report_section_shows_top_genes_bars_and_overlap(tmp_path):
    from panelmlp.importance import PREDICTIVE_CALLS
    from panelmlp.report.importance import PREDICTIVE, importance_section, read_gene_table
    from panelmlp.report.page import Figures

    assert PREDICTIVE == PREDICTIVE_CALLS
    genes, screen, table = section_inputs()
    # Through the files, as the report reads them.
    genes.to_csv(tmp_path / "genes.tsv", sep="\t", index=False)
    screen.to_csv(tmp_path / "screen.tsv", sep="\t", index=False)
    genes_back = read_gene_table(tmp_path / "genes.tsv")
    screen_back = read_gene_table(tmp_path / "screen.tsv")
    assert genes_back["listed"].tolist() == genes["listed"].tolist()
    html = importance_section(genes_back, screen_back, table, {"evaluate": {"importance_repeats": 7}}, Figures())
    assert '<section id="importance"><h2>7. Driver genes</h2>' in html
    assert "(7 shuffles per gene and split" in html
    assert "X drives 3 of the 3 predictive sets" in html
    # the caveats: no correction across genes, correlated genes share or mask importance
    assert "no correction across genes" in html and "about 2.5% of genes with no effect" in html
    assert "Correlated genes share or mask importance" in html
    bars = figure_json(html, "importance-bars")
    assert [d["name"] for d in bars["data"]] == ["k/s1", "k/s2", "k/s3", "solo"]
    assert [d["visible"] for d in bars["data"]] == [True, False, False, False]
    assert bars["data"][0]["y"][-1] == "X"  # the top gene is the top bar
    assert len(bars["layout"]["updatemenus"][0]["buttons"]) == 4
    heat = figure_json(html, "importance-overlap")["data"][0]
    assert heat["x"] == ["k/s1", "k/s2", "k/s3"]
    # Jaccard: s1-s2 {X} of {X,A,B,C}; s1-s3 {X,A} of {X,A,B,D,E}; s2-s3 {X} of {X,A,C,D,E}.
    np.testing.assert_allclose(
        np.array(heat["z"], dtype=float), [[1, 0.25, 0.4], [0.25, 1, 0.2], [0.4, 0.2, 1]], atol=1e-4
    )


def test_report_section_says_why_it_is_empty():
    from panelmlp.report.importance import importance_section
    from panelmlp.report.page import Figures

    _, _, table = section_inputs()
    assert "not computed" in importance_section(None, None, table, {}, Figures())
    empty = importance_section(
        pd.DataFrame(columns=GENE_COLUMNS), pd.DataFrame(columns=SCREEN_COLUMNS), table, {}, Figures()
    )
    assert "No panel was called predictive" in empty and "fig-" not in empty


@pytest.mark.workflow
def test_no_panel_in_scope_scores_nothing_and_leaves_torch_unloaded(run, tmp_path):
    """A null result (every call none, nothing listed): empty tables, and the compare job never pays torch's import."""
    work = run["work"]
    summary = pd.read_csv(work / "results/metrics/summary.tsv", sep="\t", keep_default_na=False, na_values=[""])
    summary["call"] = "none"
    null_summary = tmp_path / "summary.tsv"
    summary.to_csv(null_summary, sep="\t", index=False)
    tables = sorted(str(p) for p in (work / "results/panels").glob("*/panels.tsv"))
    genes_out, screen_out = tmp_path / "genes.tsv", tmp_path / "genes_screen.tsv"
    code = (
        "import sys\n"
        "from panelmlp.importance import importance_step\n"
        f"importance_step(cohort={str(work / 'results/clean/cohort.parquet')!r}, "
        f"splits_path={str(work / 'results/splits/splits.parquet')!r}, summary_path={str(null_summary)!r}, "
        f"panel_tables={tables!r}, genes_out={str(genes_out)!r}, screen_out={str(screen_out)!r}, listed=[])\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO / "workflow" / "scripts", capture_output=True, text=True, check=True
    )
    assert proc.stdout.split()[-1] == "False"
    genes = pd.read_csv(genes_out, sep="\t")
    assert list(genes.columns) == GENE_COLUMNS and genes.empty
    assert pd.read_csv(screen_out, sep="\t").empty
