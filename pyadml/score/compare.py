"""Two scorings of the same trials side by side, with paired bootstrap intervals: two models, or
two back-ends of one, on a stage 8 trial list or a set of keyword clips.

A draw resamples the recordings (a trial list's first column: a cut or a clip) with replacement,
each with all its trials, and computes both scorings' AP, EER and AUC on the draw (and top-1
where every recording is scored against the same keywords with one positive, the clip
protocol). The interval of b - a is the 2.5 and 97.5 percentiles over the draws: what the two
runs share (the same recordings drawn) cancels, so a difference well inside one run's own
interval can still be clear.

    python -m pyadml.bin.compare_scores exp/<a>/results/wakeword_dev exp/<b>/results/wakeword_dev
    python -m pyadml.bin.compare_scores exp/<a>/results/<list> exp/<b>/results/<list>
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyadml.score import metrics as M
from pyadml.score.pairs import PairsError

DRAWS = 1000


@dataclass
class Trials:
    """One scores.tsv: each trial's (recording, keyword), label, score and recording index."""
    keys: list
    labels: np.ndarray
    scores: np.ndarray
    unit: np.ndarray
    units: int


def read_scores(path: str | os.PathLike) -> Trials:
    """A scores.tsv of score_clips (``<audio>\\t<keyword>\\t<label>\\t<score>``) or of stage 8
    (``<cut>\\t<keyword>\\t<label>\\t<kind>\\t<score>``). An audio path is named by its file and
    the folder above it, so two runs' lists match wherever the set was read from."""
    path = Path(path)
    keys, labels, scores = [], [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:  # as score_clips names its clip list
        raise PairsError(f"cannot read the scores file {path}: {e}") from None
    for n, line in enumerate(lines, 1):
        parts = line.split("\t")
        try:
            if len(parts) not in (4, 5):
                raise ValueError
            labels.append(int(parts[2]))
            scores.append(float(parts[-1]))
        except ValueError:
            raise PairsError(f"{path}:{n}: expected '<recording>\\t<keyword>\\t<label>[\\t<kind>]"
                             f"\\t<score>', got {line!r}") from None
        rec = Path(parts[0]) if len(parts) == 4 else None
        keys.append((f"{rec.parent.name}/{rec.name}" if rec else parts[0], parts[1]))
    if not keys:
        raise PairsError(f"{path} holds no trials")
    names = {}
    unit = np.array([names.setdefault(r, len(names)) for r, _ in keys])
    return Trials(keys, np.array(labels), np.array(scores, dtype=np.float64), unit, len(names))


def _clip_shape(t: Trials) -> tuple[int, int] | None:
    """(clips, keywords) when the trials are the clip protocol (each recording, in turn, against
    the same keywords, one positive), else None."""
    kws = list(dict.fromkeys(k for _, k in t.keys))
    n = len(t.keys) // len(kws)
    if n * len(kws) != len(t.keys) or n != t.units or any(
            k != kws[i % len(kws)] for i, (_, k) in enumerate(t.keys)):
        return None
    labels = t.labels.reshape(n, len(kws))
    return (n, len(kws)) if (labels.sum(axis=1) == 1).all() else None


def _metrics(scores: np.ndarray, labels: np.ndarray, clip_shape) -> dict:
    out = {"AP": M.average_precision(scores, labels), "EER": M.eer(scores, labels),
           "AUC": M.auc(scores, labels)}
    if clip_shape:
        s, y = scores.reshape(-1, clip_shape[1]), labels.reshape(-1, clip_shape[1])
        out["top1"] = float(np.mean(y[np.arange(len(s)), s.argmax(axis=1)] == 1))
    return out


def draw_trials(t: Trials, draws: int, seed: int):
    """Trial indices of each of ``draws`` resamples of the recordings (each with all its trials,
    in the order drawn)."""
    order = np.argsort(t.unit, kind="stable")
    counts = np.bincount(t.unit, minlength=t.units)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rng = np.random.default_rng(seed)
    for picks in rng.integers(0, t.units, size=(draws, t.units)):
        lens = counts[picks]
        offs = np.repeat(starts[picks] - np.r_[0, np.cumsum(lens)[:-1]], lens)
        yield order[offs + np.arange(lens.sum())]


def paired(a: Trials, b: Trials, draws: int = DRAWS, seed: int = 0) -> dict[str, dict]:
    """Per metric: a's and b's figures, b - a, its 95% interval over the same draws, and the
    share of draws where b is better (higher; lower for EER)."""
    if a.keys != b.keys or not np.array_equal(a.labels, b.labels):
        first = next((i for i, (x, y) in enumerate(zip(a.keys, b.keys)) if x != y),
                     min(len(a.keys), len(b.keys)))
        raise PairsError(f"the two lists score other trials (first difference at line "
                         f"{first + 1}); compare runs on the same recordings and keywords")
    shape = _clip_shape(a)
    ma, mb = _metrics(a.scores, a.labels, shape), _metrics(b.scores, b.labels, shape)
    diffs = {k: [] for k in ma}
    for idx in draw_trials(a, draws, seed):
        # a clip-protocol draw keeps each clip's row whole, so top-1 stays defined
        da = _metrics(a.scores[idx], a.labels[idx], shape)
        db = _metrics(b.scores[idx], b.labels[idx], shape)
        for k in diffs:
            diffs[k].append(db[k] - da[k])
    out = {}
    for k, d in diffs.items():
        d = np.array(d)
        out[k] = {"a": ma[k], "b": mb[k], "diff": mb[k] - ma[k],
                  "diff_ci95": [float(x) for x in np.percentile(d, [2.5, 97.5])],
                  "b_better": float(np.mean(d < 0 if k == "EER" else d > 0))}
    return out
