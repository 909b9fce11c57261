"""ROC, DET and precision-recall plots, one curve per test set (stage 8)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")  # no display on compute nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

from pyadml.fileio import atomic_path  # noqa: E402
from pyadml.score import metrics  # noqa: E402

_DET_TICKS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99]


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_roc_det_pr(results: Mapping[str, tuple], out_dir: str | os.PathLike) -> list[Path]:
    """``results``: name -> (scores, labels). Writes roc.png, det.png and pr.png in out_dir."""
    out_dir = Path(out_dir)
    figs = {name: plt.subplots(figsize=(6, 5)) for name in ("roc", "det", "pr")}
    eps = 1e-4  # the DET axes are probits; keep 0 and 1 finite
    for name, (scores, labels) in results.items():
        fpr, tpr, _ = metrics.roc_curve(scores, labels)
        precision, recall, _ = metrics.precision_recall_curve(scores, labels)
        ap, eer = metrics.average_precision(scores, labels), metrics.eer(scores, labels)
        label = f"{name} (AP {100 * ap:.2f}%, EER {100 * eer:.2f}%)"
        figs["roc"][1].plot(fpr, tpr, label=label)
        fnr = 1.0 - tpr
        figs["det"][1].plot(norm.ppf(np.clip(fpr, eps, 1 - eps)), norm.ppf(np.clip(fnr, eps, 1 - eps)),
                            label=label)
        # Precision P_k over recall (R_{k-1}, R_k]: the area under the steps is AP.
        figs["pr"][1].step(np.r_[0.0, recall], np.r_[precision[0], precision], where="pre",
                           label=label)

    ax = figs["roc"][1]
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false accept rate", ylabel="true accept rate", title="ROC", xlim=(0, 1), ylim=(0, 1))
    ax = figs["det"][1]
    ticks = norm.ppf(_DET_TICKS)
    labels = [f"{100 * t:g}" for t in _DET_TICKS]
    ax.plot(ticks[[0, -1]], ticks[[0, -1]], "k:", lw=0.8)  # the EER line
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="false accept rate (%)", ylabel="false reject rate (%)", title="DET",
           xlim=(ticks[0], ticks[-1]), ylim=(ticks[0], ticks[-1]))
    ax = figs["pr"][1]
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.02))

    written = []
    for name, (fig, ax) in figs.items():
        ax.grid(True, alpha=0.3)
        if results:
            ax.legend(fontsize=8, loc="best")
        path = out_dir / f"{name}.png"
        _save(fig, path)
        written.append(path)
    return written
