"""The pictures people would rather look at than numbers: training curves, the confusion matrix and the
precision-recall curve, as PNG (logged to MLflow) and, for the curves, CSV for `dvc plots`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textops.core.artifacts import TRAIN_LOSS_PLOT, VAL_CURVE_PLOT
from textops.core.lineage import val_metric


def write_curves(root: Path, log_history: list[dict], png: Path) -> None:
    """Training loss per logging step and validation metrics per evaluation: CSV (DVC plots) and PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    train = pd.DataFrame(
        [
            {"step": h["step"], "epoch": h["epoch"], "loss": h["loss"], "learning_rate": h.get("learning_rate")}
            for h in log_history
            if "loss" in h
        ]
    )
    val = pd.DataFrame(
        [
            {
                "step": h["step"],
                "epoch": h["epoch"],
                **{val_metric(k): h[f"eval_{k}"] for k in ("loss", "accuracy", "macro_f1")},
            }
            for h in log_history
            if "eval_macro_f1" in h
        ]
    )
    (root / TRAIN_LOSS_PLOT).parent.mkdir(parents=True, exist_ok=True)
    train.to_csv(root / TRAIN_LOSS_PLOT, index=False)
    val.to_csv(root / VAL_CURVE_PLOT, index=False)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    if len(train):
        ax1.plot(train["epoch"], train["loss"], label="train loss")
    if len(val):
        ax1.plot(val["epoch"], val[val_metric("loss")], "o-", label="val loss")
        ax2.plot(val["epoch"], val[val_metric("accuracy")], "o-", label="val accuracy")
        ax2.plot(val["epoch"], val[val_metric("macro_f1")], "s-", label="val macro-F1")
    ax1.set_xlabel("epoch")
    ax1.set_title("loss")
    ax1.legend()
    ax2.set_xlabel("epoch")
    ax2.set_title("validation")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def save_plots(out_dir: Path, probs: np.ndarray, labels: np.ndarray, names: list[str]) -> list[Path]:
    """Confusion matrix and precision-recall curve(s) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay

    preds = probs.argmax(axis=1)
    cm_path, pr_path = out_dir / "confusion_matrix.png", out_dir / "pr_curve.png"
    fig, ax = plt.subplots(figsize=(5, 5))
    ConfusionMatrixDisplay.from_predictions(
        labels, preds, labels=list(range(len(names))), display_labels=names, ax=ax, colorbar=False
    )
    fig.tight_layout()
    fig.savefig(cm_path, dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    # Binary: the positive class (id 1); more classes: one curve per class, one-vs-rest.
    for i in [1] if len(names) == 2 else range(len(names)):
        if (labels == i).any():
            PrecisionRecallDisplay.from_predictions(labels == i, probs[:, i], name=names[i], ax=ax)
    ax.set_title("precision-recall (test)")
    fig.tight_layout()
    fig.savefig(pr_path, dpi=100)
    plt.close(fig)
    return [cm_path, pr_path]


def tune_plot(table, metric: str, png: Path) -> None:
    """`textops tune`: each trial's best val METRIC against its learning rate (log scale) and in trial order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    column = val_metric(metric)
    done = table[table[column].notna()]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    if "learning_rate" in done:
        sizes = 20 + 20 * done["epochs"] if "epochs" in done else 40
        ax1.scatter(done["learning_rate"], done[column], s=sizes, alpha=0.7)
        ax1.set_xscale("log")
        ax1.set_xlabel("learning rate (point size: epochs)")
    ax1.set_ylabel(f"best val {metric}")
    ax2.bar(range(len(table)), table[column].fillna(0), color=["tab:green"] + ["tab:blue"] * (len(table) - 1))
    ax2.set_xlabel("trial (best first; failed: 0)")
    ax2.set_ylabel(f"best val {metric}")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
