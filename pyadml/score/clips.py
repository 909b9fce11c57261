"""Keyword clips scored against every keyword of the set (the protocol of a wake-word
development set): each clip is one positive trial (its own keyword) and one negative per other
keyword; AP, EER and AUC over all trials, and top-1: the highest-scoring keyword is the spoken
one. Clips are scored as recorded, whole, through the same path as score_pairs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from pyadml.score import metrics as M
from pyadml.score.enrol import ENROL_WEIGHT
from pyadml.score.norm import DEFAULT_COHORT_SIZE
from pyadml.score.pairs import PairsError, score_pairs_file


def read_clips(path: str | os.PathLike) -> list[tuple[Path, str]]:
    """``<audio path relative to the list>\\t<keyword>`` lines."""
    path = Path(path)
    clips = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip():
            raise PairsError(f"{path}:{n}: expected '<audio>\\t<keyword>', got {line!r}")
        audio = path.parent / parts[0]
        if not audio.is_file():  # named here, not at a line of the pairs made from this list
            raise PairsError(f"{path}:{n}: no such audio file: {audio}")
        clips.append((audio, parts[1]))
    if not clips:
        raise PairsError(f"{path} lists no clips")
    return clips


def score_clips(model, clips_tsv, out_dir=None, batch_size: int = 64, vad: bool = False,
                norm: str | None = "none", cohort_size: int = DEFAULT_COHORT_SIZE,
                phrase: str | None = "clip", warp: float = 1.0, words_onnx=None, jobs: int = 1,
                floor_db: float | str | None = None, default_floor_db: float | None = None,
                default_norm: str = "none", default_phrase: str = "clip",
                enrol: str | None = "none", default_enrol: str = "none", enrol_voices=None,
                enrol_weight: float = ENROL_WEIGHT, cache: dict | None = None) -> dict:
    """Metrics of every clip against every keyword; with ``out_dir``, its scores.tsv too.
    ``floor_db``, ``default_floor_db``, ``norm``, ``default_norm``, ``phrase``,
    ``default_phrase``, ``enrol``, ``default_enrol``, ``enrol_voices``, ``enrol_weight``,
    ``cache``: as score_pairs_file's."""
    clips = read_clips(clips_tsv)
    keywords = sorted({k for _, k in clips})
    if len(keywords) < 2:
        raise PairsError(f"{clips_tsv}: the protocol needs at least two keywords")
    with tempfile.TemporaryDirectory() as tmp:
        pairs = Path(tmp) / "pairs.tsv"
        pairs.write_text("".join(f"{wav}\t{k}\t{int(k == kw)}\n" for wav, kw in clips
                                 for k in keywords), encoding="utf-8")
        out = Path(out_dir) / "scores.tsv" if out_dir else Path(tmp) / "scores.tsv"
        res = score_pairs_file(model, pairs, out, batch_size=batch_size, vad=vad, norm=norm,
                               cohort_size=cohort_size, phrase=phrase, warp=warp,
                               words_onnx=words_onnx, jobs=jobs, floor_db=floor_db,
                               default_floor_db=default_floor_db, default_norm=default_norm,
                               default_phrase=default_phrase, enrol=enrol,
                               default_enrol=default_enrol, enrol_voices=enrol_voices,
                               enrol_weight=enrol_weight, cache=cache)
    shape = (len(clips), len(keywords))
    return {"keywords": keywords, "floor_db": res.floor_db, "score_norm": res.norm,
            "cohort_size": res.cohort_size, "phrase_score": res.phrase, "enrol": res.enrol,
            **({"enrol_text_only": res.text_only} if res.text_only else {}),
            **clip_metrics(res.scores.reshape(shape), res.labels.reshape(shape)),
            "ci95": clip_intervals(res.scores.reshape(shape), res.labels.reshape(shape))}


def clip_metrics(scores: np.ndarray, labels: np.ndarray) -> dict:
    """The protocol's figures from (clips, keywords) scores and 0/1 labels, one 1 per row."""
    top1 = float(np.mean(labels[np.arange(len(scores)), scores.argmax(axis=1)] == 1))
    return {"clips": len(scores), "trials": int(labels.size),
            "AP": M.average_precision(scores, labels), "EER": M.eer(scores, labels),
            "AUC": M.auc(scores, labels), "top1": top1}


# Bootstrap draws of the clips for the 95% intervals (about 0.5 ms each for 300 clips).
INTERVAL_DRAWS = 1000


def _draws(score_sets: list[np.ndarray], labels: np.ndarray, draws: int,
           seed: int) -> dict[str, np.ndarray]:
    """metric -> (sets, draws): each score set's clip metrics on the same ``draws`` resamples
    of the clips (rows) with replacement, each clip with all its trials."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    out = {k: np.empty((len(score_sets), draws)) for k in ("AP", "EER", "AUC", "top1")}
    for d, idx in enumerate(rng.integers(0, n, size=(draws, n))):
        for i, scores in enumerate(score_sets):
            m = clip_metrics(scores[idx], labels[idx])
            for k in out:
                out[k][i, d] = m[k]
    return out


def clip_intervals(scores: np.ndarray, labels: np.ndarray, draws: int = INTERVAL_DRAWS,
                   seed: int = 0) -> dict[str, list[float]]:
    """95% intervals of AP, EER, AUC and top-1: the 2.5 and 97.5 percentiles over ``draws``
    resamples of the clips with replacement, each with all its trials (a clip's trials share
    its recording and speaker)."""
    got = _draws([scores], labels, draws, seed)
    return {k: [float(x) for x in np.percentile(v[0], [2.5, 97.5])] for k, v in got.items()}


def paired_intervals(scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray,
                     draws: int = INTERVAL_DRAWS, seed: int = 0) -> dict[str, dict]:
    """Two scorings of the same clips (two models, or two back-ends): per metric, a's and b's
    figures, b - a, its 95% interval over the same resamples of the clips, and the share of
    draws where b is better (higher; lower for EER)."""
    ma, mb = clip_metrics(scores_a, labels), clip_metrics(scores_b, labels)
    got = _draws([scores_a, scores_b], labels, draws, seed)
    out = {}
    for k, v in got.items():
        diff = v[1] - v[0]
        better = diff < 0 if k == "EER" else diff > 0
        out[k] = {"a": ma[k], "b": mb[k], "diff": mb[k] - ma[k],
                  "diff_ci95": [float(x) for x in np.percentile(diff, [2.5, 97.5])],
                  "b_better": float(np.mean(better))}
    return out


def read_scores(path: str | os.PathLike) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """A score_clips scores.tsv (``<audio>\t<keyword>\t<label>\t<score>`` for every clip and
    keyword, clip by clip): ((clip, keyword) per trial, (clips, keywords) labels and scores).
    A clip is named by its file and the folder above it, so two runs' lists match wherever the
    set was read from."""
    path = Path(path)
    keys, labels, scores = [], [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        try:
            labels.append(int(parts[2]))
            scores.append(float(parts[3]))
        except (IndexError, ValueError):
            raise PairsError(f"{path}:{n}: expected '<audio>\\t<keyword>\\t<label>\\t<score>', "
                             f"got {line!r}") from None
        audio = Path(parts[0])
        keys.append((f"{audio.parent.name}/{audio.name}", parts[1]))
    kws = list(dict.fromkeys(k for _, k in keys))
    if not keys or len(keys) % len(kws) or any(
            k != kws[i % len(kws)] for i, (_, k) in enumerate(keys)):
        raise PairsError(f"{path}: expected every clip scored against the same keywords in the "
                         "same order, as score_clips writes them")
    shape = (len(keys) // len(kws), len(kws))
    return keys, np.array(labels).reshape(shape), np.array(scores).reshape(shape)


def metrics_table(rows: list[dict], lead: list[tuple[str, str, object]]) -> list[str]:
    """A printed table of clip metrics: the ``lead`` columns (header, format spec such as
    ``">8"``, a function of the row giving its value), then clips, AP, EER, AUC and top-1 (%)."""
    head = " ".join(f"{h:{spec}}" for h, spec, _ in lead)
    lines = [f"{head} {'clips':>6} {'AP %':>7} {'EER %':>7} {'AUC %':>7} {'top-1 %':>8}"]
    for r in rows:
        cells = " ".join(f"{get(r):{spec}}" for _, spec, get in lead)
        lines.append(f"{cells} {r['clips']:>6} {100 * r['AP']:7.2f} {100 * r['EER']:7.2f} "
                     f"{100 * r['AUC']:7.2f} {100 * r['top1']:8.2f}")
    return lines
