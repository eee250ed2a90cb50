"""Seconds per trained model: the tutorial's loop vs panelmlp's batched trainer vs scikit-learn.

Every contender trains the tutorial's network (5 genes -> 64 ReLU -> 1 logit,
Adam lr 1e-3, batch 32, 1000 epochs) on the same 60 training and 15 test
samples, with per-epoch test metrics where the contender computes them. All run
in this one process, one after another, on one thread each, so the ratios
compare like with like.

    python bench/train_speed.py            # K = 1, 10, 100, 1000
    python bench/train_speed.py --quick    # 200 epochs, K up to 100

The part job of a gene-set screen (issue 16): 550 models (50 ten-gene sets x
11 splits of an 85-sample cohort, 68 training and 17 test rows per split, as
the real cohort's 5x2 CV plus holdout), hidden 64, batch 32, every model's
per-epoch test metrics tracked as fit does, on 2 threads as one job, as a
fit job runs it (worker threads of one intra-op thread each, the trainer's default)
and forced to each mode. Beside it, the same 50 sets as the workflow now
trains them with the default resources (``collection_min_jobs: 2``,
``collection_threads: 1``): two part jobs of 25 sets, one thread each, side by
side in two processes, their FLOPs together over the wall time from their
common start to the last one's end. Each training rate (GFLOP/s, as fit.json's
train_gflops_per_s) is printed beside torch.mm's rate on 2048 x 2048 float32
at the same thread count, alternating, repeated, with medians; ``--before
DIR`` times another tree's ``workflow/scripts/panelmlp`` in the same process,
alternating with this one (then without the side-by-side run):

    python bench/train_speed.py --part-job [--threads 2] [--repeats 3] [--epochs 1000] [--before /tmp/old/workflow/scripts/panelmlp]
    python bench/train_speed.py --profile --threads 1 --epochs 100 [--before DIR]   # time per phase
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from _common import machine, timer
from panelmlp.train import ModelSet, TrainSpec, train_models
from panelmlp.units import collection_cuts
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.neural_network import MLPClassifier
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(75, 5)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=75) > 0.5).astype(np.float32)
    return x[:60], y[:60], x[60:], y[60:]


def tutorial_history(x_train, y_train, x_test, y_test, epochs: int) -> dict[str, list[float]]:
    """The tutorial's loop as written: DataLoader, autograd, scikit-learn metrics every epoch."""

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(5, 64)
            self.relu = nn.ReLU()
            self.fc2 = nn.Linear(64, 1)

        def forward(self, x):
            return self.fc2(self.relu(self.fc1(x)))

    torch.manual_seed(0)
    model = MLP()
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    xt, yt = torch.tensor(x_train), torch.tensor(y_train).unsqueeze(1)
    xs, ys = torch.tensor(x_test), torch.tensor(y_test).unsqueeze(1)
    loader = DataLoader(TensorDataset(xt, yt), batch_size=32, shuffle=True)
    history = {k: [] for k in ("loss", "accuracy", "precision", "recall", "f1")}
    for _ in range(epochs):
        model.train()
        running = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item()
        history["loss"].append(running / len(loader))
        model.eval()
        with torch.no_grad():
            preds = (torch.sigmoid(model(xs)) > 0.5).float()
        history["accuracy"].append(accuracy_score(ys, preds))
        history["precision"].append(precision_score(ys, preds, zero_division=0))
        history["recall"].append(recall_score(ys, preds, zero_division=0))
        history["f1"].append(f1_score(ys, preds, zero_division=0))
    return history


def sklearn_mlp(x_train, y_train, epochs: int) -> None:
    """scikit-learn's MLPClassifier for the same network, every epoch run (no early stopping)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(
            hidden_layer_sizes=(64,),
            solver="adam",
            learning_rate_init=0.001,
            batch_size=32,
            max_iter=epochs,
            early_stopping=False,
            n_iter_no_change=epochs + 1,
            tol=0.0,
            random_state=0,
        ).fit(x_train, y_train)


def panelmlp_models(x_train, y_train, x_test, y_test, k: int, epochs: int) -> None:
    """K copies of the model (different seeds via different split ids) in one stacked pass."""
    x = np.concatenate([x_train, x_test])
    y = np.concatenate([y_train, y_test]).astype(np.int64)
    train = np.r_[np.ones(len(x_train), bool), np.zeros(len(x_test), bool)]
    g = x.shape[1]
    data = ModelSet(
        x=x,
        mean=np.zeros((1, g)),
        scale=np.ones((1, g)),
        cols=np.tile(np.arange(g), (k, 1)),
        split=np.zeros(k, int),
        labels=y[None],
        label=np.zeros(k, int),
        stream=np.arange(k),
        streams=[(f"m{i}", 0) for i in range(k)],
        train=train[None],
        test=~train[None],
    )
    train_models(data, TrainSpec(hidden=[64], epochs=epochs, batch_size=32, lr=0.001, device="cpu"), threads=1)


def part_job_data(
    module: ModuleType, n_sets: int = 50, n_splits: int = 11, seed: int = 0, part: tuple[int, int] | None = None
):
    """A collection part job's models as ``module.ModelSet``: ``n_sets`` ten-gene sets on each of ``n_splits`` splits.

    85 samples x 2,000 genes; each split 68 training and 17 test rows (the real
    cohort's shape), statistics from the training rows; the sets' models of a
    split share stream (split, 0), and every model is tracked. ``part`` ``(lo, hi)``
    keeps the sets ``lo .. hi`` only (one part of the collection; the same cohort and splits).
    """
    rng = np.random.default_rng(seed)
    n, n_test, genes, size = 85, 17, 2000, 10
    x = rng.normal(size=(n, genes)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=n) > 0).astype(np.int64)
    train = np.zeros((n_splits, n), bool)
    test = np.zeros((n_splits, n), bool)
    for s in range(n_splits):
        perm = rng.permutation(n)
        test[s, perm[:n_test]] = True
        train[s, perm[n_test:]] = True
    sets = np.stack([rng.choice(genes, size, replace=False) for _ in range(n_sets)])
    if part is not None:
        sets = sets[part[0] : part[1]]
        n_sets = len(sets)
    split = np.repeat(np.arange(n_splits), n_sets)
    k = len(split)
    return module.ModelSet(
        x=x,
        mean=np.stack([x[t].mean(axis=0) for t in train]),
        scale=np.stack([x[t].std(axis=0) for t in train]),
        cols=np.tile(sets, (n_splits, 1)),
        split=split,
        labels=y[None],
        label=np.zeros(k, int),
        stream=split.copy(),
        streams=[(f"cv{s}", 0) for s in range(n_splits)],
        train=train,
        test=test,
        tracked=np.ones(k, bool),
    )


def mm_rate(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """torch.mm GFLOP/s on ``size`` x ``size`` float32 at ``threads`` threads (median of ``repeats``)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 / statistics.median(times) / 1e9


def _screen_part(part: tuple[int, int], epochs: int, barrier, results) -> None:
    """One part job of the side-by-side screen, in its own process on one thread: build its models, wait for the
    other part at ``barrier``, train; put (FLOPs, start, end) of the training on ``results``."""
    import panelmlp.train as module

    torch.set_num_threads(1)
    data = part_job_data(module, part=part)
    spec = module.TrainSpec(hidden=[64], epochs=epochs, batch_size=32, lr=0.001, device="cpu")
    barrier.wait()
    start = time.time()
    result = module.train_models(data, spec, threads=1)
    results.put((result.flops, start, time.time()))


def screen_rate(epochs: int, parts: int = 2) -> tuple[float, float]:
    """The 50-set screen as the workflow trains it with the default resources: ``parts`` part jobs of 50 / parts
    sets, one thread each, side by side in their own processes. Returns their FLOPs together over the wall time
    from the common start to the last one's end (GFLOP/s), and that wall time."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(parts), context.Queue()
    cuts = collection_cuts(50, 50, parts)  # as plan_units cuts a collection into collection_min_jobs parts
    workers = [
        context.Process(target=_screen_part, args=((cuts[j], cuts[j + 1]), epochs, barrier, results))
        for j in range(parts)
    ]
    for worker in workers:
        worker.start()
    done = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    wall = max(end for _f, _s, end in done) - min(start for _f, start, _e in done)
    return sum(f for f, _s, _e in done) / wall / 1e9, wall


def load_tree(path: Path) -> ModuleType:
    """Another tree's ``panelmlp`` package, imported as ``panelmlp_before`` (its train module is returned)."""
    spec = importlib.util.spec_from_file_location(
        "panelmlp_before", path / "__init__.py", submodule_search_locations=[str(path)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules["panelmlp_before"] = package
    spec.loader.exec_module(package)
    return importlib.import_module("panelmlp_before.train")


def part_job(threads: int, repeats: int, epochs: int, before: Path | None) -> None:
    """The part job's GFLOP/s beside torch.mm's, alternating, ``repeats`` times; medians and the share."""
    import panelmlp.train as after

    # "after": the trainer as a fit job runs it (its default WORKER_THREADS); the target is judged on it. With
    # several threads, the same trainer forced to each mode too.
    trees = {"after": after} if before is None else {"before": load_tree(before), "after": after}
    modes: dict[str, bool] = {}
    if threads > 1 and hasattr(after, "WORKER_THREADS"):
        trees["after, worker threads"] = after
        modes["after, worker threads"] = True
        trees["after, intra-op threads"] = after
        modes["after, intra-op threads"] = False
    print(f"machine: {machine()}; torch {torch.__version__}, {threads} threads; part job: 550 models, {epochs} epochs")
    side_by_side = f"50 sets as {threads} part jobs side by side, 1 thread each"
    rates: dict[str, list[float]] = {name: [] for name in trees}
    screen: list[float] = []
    per_step: dict[str, list[float]] = {name: [] for name in trees}
    mms: list[float] = []
    chosen: list[int] = []
    for rep in range(repeats):
        for name, module in trees.items():
            data = part_job_data(module)
            spec = module.TrainSpec(hidden=[64], epochs=epochs, batch_size=32, lr=0.001, device="cpu")
            default = getattr(module, "WORKER_THREADS", None)
            if name in modes:
                module.WORKER_THREADS = modes[name]
            try:
                result = module.train_models(data, spec, threads=threads)
            finally:
                if name in modes:
                    module.WORKER_THREADS = default
            if name == "after":
                chosen.append(getattr(result, "workers", 1))
            rates[name].append(result.flops / result.seconds / 1e9)
            per_step[name].append(result.seconds / (epochs * 3) * 1e3)
        if threads > 1 and before is None:
            screen.append(screen_rate(epochs, threads)[0])
        mms.append(mm_rate(threads))
        line = "  ".join(f"{n} {rates[n][-1]:.1f} GFLOP/s ({per_step[n][-1]:.2f} ms/step)" for n in trees)
        if screen:
            line += f"  {side_by_side}: {screen[-1]:.1f} GFLOP/s"
        print(f"repeat {rep + 1}: {line}  mm {mms[-1]:.1f} GFLOP/s", flush=True)
    mm = statistics.median(mms)
    print(f"median mm 2048^2, {threads} threads: {mm:.1f} GFLOP/s")
    for name in trees:
        rate = statistics.median(rates[name])
        step = statistics.median(per_step[name])
        print(f"median {name}: {rate:.1f} GFLOP/s, {step:.2f} ms per step of 550 models, {100 * rate / mm:.1f}% of mm")
    print(f"'after' chose worker threads in {sum(w > 1 for w in chosen)} of {len(chosen)} runs")
    print(
        f"target >= 12% of mm ('after', one job of 550 models on {threads} threads): {statistics.median(rates['after']) >= 0.12 * mm}"
    )
    if screen:
        rate = statistics.median(screen)
        print(
            f"median {side_by_side} (as the workflow runs a 50-set screen with the default resources): "
            f"{rate:.1f} GFLOP/s together, {100 * rate / mm:.1f}% of mm; >= 12%: {rate >= 0.12 * mm}"
        )


def profile_phases(module: ModuleType, epochs: int, threads: int) -> None:
    """CPU time of each phase of the part job (torch.profiler, ``record_function`` around each), for the README."""
    import dataclasses
    import functools

    from torch.profiler import ProfilerActivity, profile, record_function

    model = importlib.import_module(module.__name__.rsplit(".", 1)[0] + ".model")
    saved = {
        "feed": module._Feed.__call__,
        "forward": model.StackedMLP.forward,
        "backward": model.StackedMLP.backward,
        "adam": module._Optimizer.step,
        "head_of": module.head_of,
    }
    # The chunk-by-chunk loop (train.train_blocked) updates with apply; the common network's steps and test
    # forwards go through their own classes (forward, gradient and backward in one call).
    if hasattr(module._Optimizer, "apply"):
        saved["apply"] = module._Optimizer.apply
    fast = {"step": getattr(module, "_ReluLogitStep", None), "test": getattr(module, "_ReluLogitTest", None)}
    fast = {key: cls for key, cls in fast.items() if cls is not None}

    def labelled(function, label):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with record_function(label(*args, **kwargs)):
                return function(*args, **kwargs)

        return wrapper

    test_rows = 17
    module._Feed.__call__ = labelled(
        saved["feed"], lambda self, rows, *a, **k: "feed (test)" if rows.shape[1] == test_rows else "feed (minibatch)"
    )
    if hasattr(module._Feed, "rows_at"):  # the chunk-by-chunk loop's minibatches from indices made per block
        saved["rows_at"] = module._Feed.rows_at
        module._Feed.rows_at = labelled(saved["rows_at"], lambda *a, **k: "feed (minibatch)")
    model.StackedMLP.forward = labelled(
        saved["forward"],
        lambda self, x, *a, **k: "forward (test)" if x.shape[1] == test_rows and not a else "forward (minibatch)",
    )
    model.StackedMLP.backward = labelled(saved["backward"], lambda *a, **k: "backward")
    module._Optimizer.step = labelled(saved["adam"], lambda *a, **k: "adam")
    if "apply" in saved:
        module._Optimizer.apply = labelled(saved["apply"], lambda *a, **k: "adam")
    calls = {key: cls.__call__ for key, cls in fast.items()}
    labels = {"step": "step (minibatch)", "test": "forward (test)"}
    for key, cls in fast.items():
        cls.__call__ = labelled(calls[key], lambda *a, label=labels[key], **k: label)

    def head_of(*args):
        head = saved["head_of"](*args)
        loss = labelled(head.loss_and_grad, lambda out, *a: "loss (test)" if out.shape[1] == test_rows else "loss")
        metrics = labelled(head.metrics, lambda *a: "metrics (test)")
        changes = {"loss_and_grad": loss, "metrics": metrics}
        # The chunk-by-chunk loop's step: the gradient alone (left as it is where the trainer has the common
        # network's step class, which it takes only for the head's own logit_grad).
        if getattr(head, "grad_only", None) is not None and "step" not in fast:
            changes["grad_only"] = labelled(head.grad_only, lambda *a: "loss")
        return dataclasses.replace(head, **changes)

    module.head_of = head_of
    try:
        data = part_job_data(module)
        spec = module.TrainSpec(hidden=[64], epochs=epochs, batch_size=32, lr=0.001, device="cpu")
        module.train_models(data, dataclasses.replace(spec, epochs=3), threads=threads)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            result = module.train_models(data, spec, threads=threads)
    finally:
        module._Feed.__call__ = saved["feed"]
        if "rows_at" in saved:
            module._Feed.rows_at = saved["rows_at"]
        model.StackedMLP.forward = saved["forward"]
        model.StackedMLP.backward = saved["backward"]
        module._Optimizer.step = saved["adam"]
        module.head_of = saved["head_of"]
        if "apply" in saved:
            module._Optimizer.apply = saved["apply"]
        for key, cls in fast.items():
            cls.__call__ = calls[key]
    names = ("feed", "forward", "backward", "adam", "loss", "metrics", "step")
    rows = [(e.key, e.cpu_time_total / 1e3) for e in prof.key_averages() if e.key.startswith(names)]
    total = result.seconds * 1e3
    print(f"{module.__name__}: loop {total:.0f} ms, {epochs} epochs, {threads} thread(s)")
    for key, ms in sorted(rows, key=lambda row: -row[1]):
        print(f"  {key:<22}{ms:>9.1f} ms {100 * ms / total:>5.1f}%")
    rest = total - sum(ms for _, ms in rows)
    print(f"  {'rest (Python loop...)':<22}{rest:>9.1f} ms {100 * rest / total:>5.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 epochs and K up to 100")
    parser.add_argument("--part-job", action="store_true", help="the 550-model part job beside torch.mm only")
    parser.add_argument("--threads", type=int, default=2, help="part job: threads (and part jobs side by side)")
    parser.add_argument("--repeats", type=int, default=3, help="part job: alternating repeats")
    parser.add_argument("--epochs", type=int, default=1000, help="part job: epochs")
    parser.add_argument("--before", type=Path, help="part job: another tree's workflow/scripts/panelmlp to time too")
    parser.add_argument("--profile", action="store_true", help="part job: time per phase (torch.profiler)")
    args = parser.parse_args()
    if args.profile:
        import panelmlp.train as after

        trees = ([load_tree(args.before)] if args.before else []) + [after]
        for module in trees:
            profile_phases(module, args.epochs, args.threads)
        return
    if args.part_job:
        part_job(args.threads, args.repeats, args.epochs, args.before)
        return
    epochs = 200 if args.quick else 1000
    ks = [1, 10, 100] if args.quick else [1, 10, 100, 1000]
    torch.set_num_threads(1)
    d = data()
    times: dict[str, float] = {}
    print(f"machine: {machine()}; torch {torch.__version__}, 1 thread; {epochs} epochs, 60 train / 15 test samples")
    with timer(times, "tutorial"):
        tutorial_history(*d, epochs)
    with timer(times, "sklearn"):
        sklearn_mlp(d[0], d[1], epochs)
    per_model = {"tutorial loop": times["tutorial"], "sklearn MLPClassifier": times["sklearn"]}
    for k in ks:
        with timer(times, f"k{k}"):
            panelmlp_models(*d, k, epochs)
        per_model[f"panelmlp K={k}"] = times[f"k{k}"] / k
    print(f"{'contender':<24}{'s/model':>10}{'vs tutorial':>14}{'vs sklearn':>12}")
    for name, sec in per_model.items():
        print(
            f"{name:<24}{sec:>10.4f}{per_model['tutorial loop'] / sec:>13.1f}x{per_model['sklearn MLPClassifier'] / sec:>11.1f}x"
        )
    tut, skl = per_model["tutorial loop"], per_model["sklearn MLPClassifier"]
    one, hundred = per_model["panelmlp K=1"], per_model.get("panelmlp K=100")
    print(f"target K=1 >= 10x the tutorial: {tut / one >= 10}; K=1 faster than sklearn: {one < skl}")
    if hundred:
        print(f"target K=100 >= 100x the tutorial: {tut / hundred >= 100}; K=100 >= 10x sklearn: {skl / hundred >= 10}")


if __name__ == "__main__":
    main()
