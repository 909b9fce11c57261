"""Detection metrics over (score, label) trials: AP, ROC, AUC, EER (paper section 4.1:
AP on the imbalanced WSJ trials; EER and AUC on LibriPhrase).

Everything works on the distinct score values sorted in decreasing order: trials with equal
scores share one threshold, so ties are never broken by input order.
"""

from __future__ import annotations

import numpy as np


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or inf")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 or 1")
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("need both positive and negative trials")
    return scores, labels


def _counts(scores, labels):
    """Cumulative (tp, fp) at each distinct threshold, highest first, and the thresholds."""
    scores, labels = _check(scores, labels)
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    # Last index of each run of equal scores: the operating point after accepting that run.
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return tp, fp, s[last]


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), starting at (0, 0) with threshold +inf; a trial is accepted when
    its score is >= the threshold."""
    tp, fp, thr = _counts(scores, labels)
    fpr = np.r_[0.0, fp / fp[-1]]
    tpr = np.r_[0.0, tp / tp[-1]]
    return fpr, tpr, np.r_[np.inf, thr]


def auc(scores, labels) -> float:
    """Area under the ROC (trapezoids), i.e. P(score_pos > score_neg) + P(tie) / 2."""
    fpr, tpr, _ = roc_curve(scores, labels)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def precision_recall_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) at each distinct threshold, highest threshold first."""
    tp, fp, thr = _counts(scores, labels)
    return tp / (tp + fp), tp / tp[-1], thr


def average_precision(scores, labels) -> float:
    """Non-interpolated AP: sum_k (R_k - R_{k-1}) P_k over distinct thresholds. Without ties it
    is the mean over positives of the precision at each positive's rank."""
    precision, recall, _ = precision_recall_curve(scores, labels)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def eer(scores, labels) -> float:
    """Equal error rate: where FAR (fpr) meets FRR (1 - tpr), linearly interpolated between the
    two ROC points that bracket the crossing."""
    fpr, tpr, _ = roc_curve(scores, labels)
    fnr = 1.0 - tpr
    d = fpr - fnr  # -1 at the first point, +1 at the last, non-decreasing between
    i = int(np.argmax(d >= 0))
    if d[i] == 0:
        return float(fpr[i])
    t = -d[i - 1] / (d[i] - d[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def batched_eer(scores, labels, batch_size: int = 2048, seed: int = 0) -> float:
    """EER averaged over shuffled batches of ``batch_size`` trials (PhonMatchNet's reporting);
    batches holding one class only are skipped. NaN when no batch has both classes."""
    scores, labels = _check(scores, labels)
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    perm = np.random.default_rng(seed).permutation(scores.size)
    values = []
    for start in range(0, scores.size, batch_size):
        idx = perm[start : start + batch_size]
        y = labels[idx]
        if y.all() or not y.any():
            continue
        values.append(eer(scores[idx], y))
    return float(np.mean(values)) if values else float("nan")
