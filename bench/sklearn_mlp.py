"""Seconds per fit of the scikit-learn MLP baseline (``panelmlp.baselines.sklearn_mlp_proba``).

Default shape: the real cohort's default run, 5 panel genes, 68 training rows,
hidden [64], relu, Adam lr 1e-3, batch 32 (3 steps an epoch: 32, 32, 4),
1,000 epochs. Data: standardised Gaussian genes, labels from 2 planted genes
plus noise, 30 held-out rows whose ROC-AUC is printed as a sanity check.
Also the one-off cost of importing scikit-learn's MLP in a fresh process, and
the fit with BLAS held to one thread (threadpoolctl), since the matrices are
tiny.

    python bench/sklearn_mlp.py                      # the default shape, fastest of 5 fits
    python bench/sklearn_mlp.py --genes 50 --rows 300 --epochs 200 --repeats 3
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np
from _common import machine
from panelmlp.baselines import sklearn_mlp_proba


def import_seconds() -> float:
    """Wall seconds of ``from sklearn.neural_network import MLPClassifier`` in a fresh interpreter."""
    code = (
        "import time; t = time.perf_counter(); "
        "from sklearn.neural_network import MLPClassifier; print(time.perf_counter() - t)"
    )
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=5)
    parser.add_argument("--rows", type=int, default=68)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[64])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows + 30, args.genes))
    y = (x[:, 0] - x[:, 1] + 0.7 * rng.normal(size=len(x)) > 0).astype(int)
    x_train, y_train, x_test, y_test = x[: args.rows], y[: args.rows], x[args.rows :], y[args.rows :]

    def fit() -> tuple[float, float]:
        start = time.perf_counter()
        proba = sklearn_mlp_proba(
            x_train, y_train, x_test, 2, hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size
        )
        return time.perf_counter() - start, roc_auc_score(y_test, proba[:, 1])

    fit()  # warm: imports and first-call costs
    default = [fit() for _ in range(args.repeats)]
    with threadpool_limits(1):
        single = [fit() for _ in range(args.repeats)]

    print(machine())
    print(
        f"{args.genes} genes, {args.rows} training rows, hidden {args.hidden}, batch {args.batch_size}, "
        f"{args.epochs} epochs; {args.repeats} fits each\n"
    )
    print(f"import sklearn.neural_network, fresh process: {import_seconds():.2f} s (once per job)")
    for name, runs in (("BLAS default threads", default), ("BLAS 1 thread", single)):
        times = [t for t, _ in runs]
        print(
            f"{name}: {min(times):.3f} s / fit fastest, {np.median(times):.3f} median, "
            f"{1e6 * min(times) / args.epochs:.0f} us / epoch; held-out ROC-AUC {runs[0][1]:.3f}"
        )


if __name__ == "__main__":
    main()
