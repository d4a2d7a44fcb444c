"""PNG plots of an evaluation (matplotlib, Agg backend, no display), each written atomically.

ROC and PR curves (all models on one axis), the threshold sweep (event sensitivity and FP/24 h on
twin axes, chosen threshold marked), the latency histogram, and one probability-over-time strip per
event for the worst misses and false alarms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepepi.core import io

STRIPS_PER_KIND = 3


def _figure(width: float = 6.4, height: float = 4.2):  # noqa: ANN202 - matplotlib Figure
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def _save(fig, path: Path) -> Path:  # noqa: ANN001 - matplotlib Figure
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def roc_pr(path_roc: Path, path_pr: Path, curves: dict[str, dict[str, Any]]) -> list[Path]:
    """ROC and PR curves of every model whose labels have both classes."""
    written = []
    for path, key, xs, ys, title in ((path_roc, "roc", "fpr", "tpr", "ROC (windows)"),
                                     (path_pr, "pr", "recall", "precision", "Precision-recall (windows)")):
        fig = _figure()
        ax = fig.add_subplot(1, 1, 1)
        for name, c in curves.items():
            if c[key] is None:
                continue
            score = c["roc_auc"] if key == "roc" else c["average_precision"]
            ax.plot(c[key][xs], c[key][ys], label=f"{name} ({'AUC' if key == 'roc' else 'AP'} {score:.3f})")
        if key == "roc":
            ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(xs.upper() if key == "roc" else xs)
        ax.set_ylabel(ys.upper() if key == "roc" else ys)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[1]:  # no curve (one-class data): no legend, no matplotlib warning
            ax.legend(fontsize=8, loc="lower right" if key == "roc" else "lower left")
        written.append(_save(fig, path))
    return written


def sweep(path: Path, name: str, sw: dict[str, list], threshold: float, logic: str) -> Path:
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    t = np.asarray(sw["thresholds"], dtype=float)

    def as_float(key: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in sw[key]], dtype=float)

    ax.plot(t, as_float("sensitivity"), color="tab:blue", label="event sensitivity")
    ax.set_ylabel("event sensitivity", color="tab:blue")
    ax.set_ylim(-0.02, 1.02)
    twin = ax.twinx()
    twin.plot(t, as_float("fp_per_24h"), color="tab:red", label="false alarms / 24 h")
    twin.set_ylabel("false alarms per 24 h", color="tab:red")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("threshold (p > t)")
    ax.set_title(f"{name}: threshold sweep ({logic} alarms), chosen {threshold:.2f}")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def latency(path: Path, latencies: dict[str, np.ndarray]) -> Path:
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    finite = {k: v[np.isfinite(v)] for k, v in latencies.items()}
    values = np.concatenate(list(finite.values())) if finite else np.array([])
    if len(values):
        bins = np.arange(np.floor(values.min() / 5) * 5, np.ceil(values.max() / 5) * 5 + 10, 5.0)
        for name, v in finite.items():
            ax.hist(v, bins=bins, alpha=0.6, label=f"{name} (n={len(v)})")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no detected seizure events", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("latency from onset (s)")
    ax.set_ylabel("seizure events")
    ax.set_title("Detection latency")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def strip(path: Path, title: str, t: np.ndarray, p: np.ndarray, alarm: np.ndarray, threshold: float,
          onset: float | None, osd: np.ndarray | None) -> Path:
    """p over the event's time (s from recording start; after the movement gate under the app logic),
    threshold line, alarms, onset, OSD alarms."""
    fig = _figure(8.0, 2.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(t, p, marker=".", color="tab:blue", label="p(seizure)")
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.2f}")
    if alarm.any():
        ax.scatter(t[alarm], np.full(alarm.sum(), 1.04), marker="v", color="tab:red", label="alarm")
    if osd is not None and osd.any():
        ax.scatter(t[osd], np.full(osd.sum(), -0.04), marker="^", color="tab:orange", label="OSD alarm")
    if onset is not None:
        ax.axvline(onset, color="tab:green", linewidth=1.5, label="seizure onset")
    ax.set_ylim(-0.1, 1.1)
    ax.set_xlabel("time from recording start (s)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)
