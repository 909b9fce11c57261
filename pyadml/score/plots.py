"""ROC, DET and precision-recall plots, one curve per test set (stage 8)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from pyadml.fileio import atomic_path
from pyadml.score import metrics

_DET_TICKS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99]


def _pyplot():
    """matplotlib on the Agg backend (no display on compute nodes), imported on first use: half a
    second of start-up that the scoring processes which draw nothing would pay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)


def plot_roc_det_pr(results: Mapping[str, tuple], out_dir: str | os.PathLike) -> list[Path]:
    """``results``: name -> (scores, labels). Writes roc.png, det.png and pr.png in out_dir."""
    from scipy.stats import norm

    plt = _pyplot()
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


# ---------------------------------------------------------------------------- training curves
# The main loss terms of metrics.jsonl (pyadml.train.trainer), in this order when present.
LOSS_TERMS = ("loss", "l_utt", "l_mm", "l_phn", "l_adv_utt", "l_adv_phn", "l_key")


def read_metrics(path: str | os.PathLike) -> tuple[list[dict], list[dict]]:
    """(step records, epoch records) of a metrics.jsonl: the records with a loss, one per step
    (the last one written wins, as after a resume), and those with a dev AP, one per epoch."""
    import json

    steps: dict[int, dict] = {}
    epochs: dict[int, dict] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash
        if not isinstance(r, dict) or "step" not in r:
            continue
        if "loss" in r:
            steps[int(r["step"])] = r
        if r.get("dev_ap") is not None and "epoch" in r:
            epochs[int(r["epoch"])] = r
    return [steps[k] for k in sorted(steps)], [epochs[k] for k in sorted(epochs)]


def plot_training_curves(metrics_path: str | os.PathLike, out_png: str | os.PathLike,
                         title: str | None = None) -> Path:
    """Two panels: the main loss terms per logged step (log scale when all are positive) and
    the dev AP after each epoch."""
    steps, epochs = read_metrics(metrics_path)
    fig, (ax_loss, ax_ap) = _pyplot().subplots(1, 2, figsize=(11, 4.2))
    terms = [k for k in LOSS_TERMS if any(k in r for r in steps)]
    values = []
    for k in terms:
        pts = [(r["step"], r[k]) for r in steps if isinstance(r.get(k), (int, float))]
        if not pts:
            continue
        x, y = zip(*pts)
        values += y
        ax_loss.plot(x, y, label=k, lw=1.6 if k == "loss" else 1.0,
                     color="black" if k == "loss" else None)
    # Terms of different magnitudes (a keyword loss of 100 beside a matching loss of 0.1).
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax_loss.set_yscale("log")
    ax_loss.set(xlabel="step", ylabel="loss (mean over the logged steps)", title="training losses")
    if terms:
        ax_loss.legend(fontsize=8, loc="best")
    else:
        ax_loss.text(0.5, 0.5, "no loss records", ha="center", va="center", transform=ax_loss.transAxes)
    if epochs:
        x = [r["epoch"] for r in epochs]
        y = [100 * r["dev_ap"] for r in epochs]
        ax_ap.plot(x, y, "o-", color="tab:blue")
        for xi, yi in zip(x, y):
            ax_ap.annotate(f"{yi:.1f}", (xi, yi), textcoords="offset points", xytext=(0, 6),
                           ha="center", fontsize=8)
        ax_ap.set_xticks(x)
    else:
        ax_ap.text(0.5, 0.5, "no dev AP yet", ha="center", va="center", transform=ax_ap.transAxes)
    ax_ap.set(xlabel="epoch", ylabel="dev AP (%)", title="dev AP after each epoch")
    for ax in (ax_loss, ax_ap):
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title)
    path = Path(out_png)
    _save(fig, path)
    return path


def plot_dev_ap_comparison(metrics_paths: Mapping[str, str | os.PathLike],
                           out_png: str | os.PathLike, highlight: str | None = None) -> Path:
    """Dev AP per epoch of several experiments (name -> metrics.jsonl), one line each."""
    fig, ax = _pyplot().subplots(figsize=(7, 4.5))
    for name in sorted(metrics_paths):
        _, epochs = read_metrics(metrics_paths[name])
        if not epochs:
            continue
        ax.plot([r["epoch"] for r in epochs], [100 * r["dev_ap"] for r in epochs], "o-",
                label=name, lw=2.4 if name == highlight else 1.2)
    ax.set(xlabel="epoch", ylabel="dev AP (%)", title="dev AP of the experiments")
    ax.grid(True, alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if ax.lines:
        ax.legend(fontsize=8, loc="best")
    path = Path(out_png)
    _save(fig, path)
    return path


def plot_experiment_curves(exp_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, str]:
    """curves.png from <exp_dir>/metrics.jsonl, and dev_ap_compare.png when sibling
    experiments (<exp_dir>/../*/metrics.jsonl) have dev AP too. Returns {link text: file name}
    of what was written (nothing without a metrics.jsonl)."""
    exp_dir, out_dir = Path(exp_dir), Path(out_dir)
    metrics_path = exp_dir / "metrics.jsonl"
    if not metrics_path.is_file():
        return {}
    written = {}
    plot_training_curves(metrics_path, out_dir / "curves.png", title=f"{exp_dir.name}: training")
    written["training curves"] = "curves.png"
    siblings = {p.parent.name: p for p in sorted(exp_dir.parent.glob("*/metrics.jsonl"))}
    with_dev = {n: p for n, p in siblings.items() if read_metrics(p)[1]}
    if len(with_dev) >= 2:
        plot_dev_ap_comparison(with_dev, out_dir / "dev_ap_compare.png", highlight=exp_dir.name)
        written[f"dev AP of {len(with_dev)} experiments"] = "dev_ap_compare.png"
    return written
