"""training.png: the run's history drawn per epoch (matplotlib, Agg, written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepepi.core import io


def plot_history(path: Path, history: list[dict[str, Any]], *, title: str = "") -> None:
    """training.png: loss, accuracy and sensitivity / false-alarm ratio per epoch, train and val."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    def series(key: str) -> list[float]:
        return [float("nan") if h[key] is None else h[key] for h in history]

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(12, 3.6), dpi=100)
    panels = (("loss", ("loss",)), ("accuracy", ("accuracy",)), ("TPR / FPR", ("sensitivity", "far")))
    for i, (name, keys) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        for key in keys:
            ax.plot(epochs, series(key), marker="o", label=f"train {key}")
            ax.plot(epochs, series("val_" + key), marker="o", linestyle="--", label=f"val {key}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
