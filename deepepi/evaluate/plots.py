"""PNG plots of an evaluation (matplotlib, Agg backend, no display), each written atomically.

ROC and PR curves (all models on one axis, each model's operating point marked), the threshold sweep
(event sensitivity and FP/24 h on twin axes, the chosen threshold and the figures at it marked), the
latency histogram (alarms before the onset counted, not drawn), and one probability-over-time strip
per event for the worst misses and false alarms. A legend is drawn only over labelled artists, so
matplotlib never warns "No artists with labels found".
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


def _legend(ax, **kw: Any) -> None:  # noqa: ANN001 - matplotlib Axes
    """A legend when something is labelled (matplotlib warns on an empty one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def _save(fig, path: Path) -> Path:  # noqa: ANN001 - matplotlib Figure
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def roc_pr(path_roc: Path, path_pr: Path, curves: dict[str, dict[str, Any]],
           points: dict[str, dict[str, Any]] | None = None) -> list[Path]:
    """ROC and PR curves of every model whose labels have both classes; ``points`` (per model:
    threshold, tpr, fpr, ppv at the operating point) are marked on them."""
    points = points or {}
    written = []
    for path, key, xs, ys, title in ((path_roc, "roc", "fpr", "tpr", "ROC (windows)"),
                                     (path_pr, "pr", "recall", "precision", "Precision-recall (windows)")):
        fig = _figure()
        ax = fig.add_subplot(1, 1, 1)
        for name, c in curves.items():
            if c[key] is None:
                continue
            score = c["roc_auc"] if key == "roc" else c["average_precision"]
            line, = ax.plot(c[key][xs], c[key][ys], label=f"{name} ({'AUC' if key == 'roc' else 'AP'} {score:.3f})")
            op = points.get(name)
            x, y = (None, None) if op is None else ((op["fpr"], op["tpr"]) if key == "roc" else (op["tpr"], op["ppv"]))
            if x is not None and y is not None:
                ax.plot([x], [y], marker="o", markersize=8, markerfacecolor="none", markeredgewidth=2,
                        color=line.get_color(), linestyle="none", label=f"{name} at threshold {op['threshold']:.2f}")
        if key == "roc":
            ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        if not ax.get_legend_handles_labels()[0]:
            ax.text(0.5, 0.5, "one class only: no curve", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(xs.upper() if key == "roc" else xs)
        ax.set_ylabel(ys.upper() if key == "roc" else ys)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        _legend(ax, fontsize=8, loc="lower right" if key == "roc" else "lower left")
        written.append(_save(fig, path))
    return written


def sweep(path: Path, name: str, sw: dict[str, list], threshold: float, logic: str,
          non_seizure_hours: float | None = None) -> Path:
    """Event sensitivity and FP/24 h against the threshold, the operating point marked on both curves."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    t = np.asarray(sw["thresholds"], dtype=float)

    def as_float(key: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in sw[key]], dtype=float)

    sens, far = as_float("sensitivity"), as_float("fp_per_24h")
    ax.plot(t, sens, color="tab:blue", label="event sensitivity")
    ax.set_ylabel("event sensitivity", color="tab:blue")
    ax.set_ylim(-0.02, 1.02)
    twin = ax.twinx()
    twin.plot(t, far, color="tab:red", label="false alarms / 24 h")
    over = "" if non_seizure_hours is None else f" (over {non_seizure_hours:.3g} h non-seizure)"
    twin.set_ylabel("false alarms per 24 h" + over, color="tab:red")
    ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    i = int(np.argmin(np.abs(t - threshold))) if len(t) else -1
    if i >= 0 and abs(t[i] - threshold) < 1e-9:
        if np.isfinite(sens[i]):
            ax.plot([t[i]], [sens[i]], marker="o", color="tab:blue", linestyle="none",
                    label=f"sensitivity {sens[i]:.3f} at {threshold:.2f}")
        if np.isfinite(far[i]):
            twin.plot([t[i]], [far[i]], marker="s", color="tab:red", linestyle="none",
                      label=f"FP/24 h {far[i]:.1f} at {threshold:.2f}")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="upper right")
    ax.set_xlabel("threshold (p > t)")
    ax.set_title(f"{name}: threshold sweep ({logic} alarms), operating point {threshold:.2f}", fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def latency(path: Path, latencies: dict[str, np.ndarray]) -> Path:
    """Histogram of the non-negative latencies per series; alarms before the onset are counted in the legend."""
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    finite = {k: v[np.isfinite(v)] for k, v in latencies.items()}
    values = np.concatenate([v[v >= 0] for v in finite.values()]) if finite else np.array([])
    if len(values):
        bins = np.arange(np.floor(values.min() / 5) * 5, np.ceil(values.max() / 5) * 5 + 10, 5.0)
        for name, v in finite.items():
            before = int((v < 0).sum())
            ax.hist(v[v >= 0], bins=bins, alpha=0.6,
                    label=f"{name} (n={int((v >= 0).sum())}" + (f", {before} before onset, not drawn)" if before
                                                                 else ")"))
        _legend(ax, fontsize=8)
    else:
        ax.text(0.5, 0.5, "no detected seizure event at or after its onset", ha="center", va="center",
                transform=ax.transAxes)
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
    _legend(ax, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)
