"""The tutorial this project grew from, as one script: the reference the pipeline is timed against.

Reads the CSV the tutorial's way (malformed lines silently skipped), labels
smoking status, splits 80/20 with random_state 81, scales, trains the 5 -> 64
-> 1 MLP for 1000 epochs with per-epoch scikit-learn metrics, and writes the
plotly figure of the curves. Usage: python bench/tutorial.py RAW_CSV OUT_HTML
"""

from __future__ import annotations

import sys

import pandas as pd
import plotly.graph_objects as go
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from train_speed import tutorial_history

GENES = ["GFAP", "SOX2", "OLIG2", "S100B", "SLC1A3"]


def main(raw_csv: str, out_html: str) -> None:
    torch.set_num_threads(1)
    data = pd.read_csv(raw_csv, on_bad_lines="skip")
    data = data.dropna(subset=["SMOKING_HISTORY"])
    y = (~data["SMOKING_HISTORY"].str.contains("non-smoker", case=False)).astype("float32").to_numpy()
    x = data[GENES].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=81)
    scaler = StandardScaler().fit(x_train)
    history = tutorial_history(
        scaler.transform(x_train).astype("float32"), y_train, scaler.transform(x_test).astype("float32"), y_test, 1000
    )
    fig = go.Figure()
    for name, values in history.items():
        fig.add_trace(go.Scatter(y=values, name=name))
    fig.write_html(out_html)
    print(f"tutorial: {len(data)} rows, final accuracy {history['accuracy'][-1]:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
