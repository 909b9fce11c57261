"""Keyword clips scored against every keyword of the set (the protocol of a wake-word
development set): each clip is one positive trial (its own keyword) and one negative per other
keyword; AP, EER and AUC over all trials, and top-1: the highest-scoring keyword is the spoken
one. Clips are scored as recorded, whole, through the same path as score_pairs."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from pyadml.score import metrics as M
from pyadml.score.enrol import ENROL_WEIGHT
from pyadml.score.norm import DEFAULT_COHORT_SIZE
from pyadml.score.pairs import PairsError, score_pairs_file
from pyadml.text import G2P, KeywordError


def read_clips(path: str | os.PathLike, need_speakers: bool = False
               ) -> list[tuple[Path, str, str | None]]:
    """``<audio path relative to the list>\\t<keyword>[\\t<speaker>]`` lines; with
    ``need_speakers`` every line must name its speaker."""
    return [clip for _, *clip in _read_clip_lines(path, need_speakers)]


def _read_clip_lines(path: str | os.PathLike, need_speakers: bool = False
                     ) -> list[tuple[int, Path, str, str | None]]:
    """``read_clips``' clips, each after its line number in the list."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:  # as score_pairs names its pairs file
        raise PairsError(f"cannot read the clip list {path}: {e}") from None
    clips = []
    spelled: dict[tuple[str, ...], tuple[str, int]] = {}  # normalised words -> (text, line)
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) not in (2, 3) or not parts[1].strip() or (len(parts) == 3
                                                                 and not parts[2].strip()):
            raise PairsError(f"{path}:{n}: expected '<audio>\\t<keyword>[\\t<speaker>]', got {line!r}")
        if need_speakers and len(parts) == 2:
            raise PairsError(f"{path}:{n}: the speaker mean needs a third column, the clip's "
                             f"speaker: '<audio>\\t<keyword>\\t<speaker>', got {line!r}")
        audio = path.parent / parts[0]
        if audio.is_dir():
            raise PairsError(f"{path}:{n}: {audio} is a directory; name one audio file per line")
        if not audio.is_file():  # named here, not at a line of the pairs made from this list
            raise PairsError(f"{path}:{n}: no such audio file: {audio}")
        # Each clip is a negative of every other keyword text: 'Alexa' beside 'alexa' would be
        # scored as a second keyword with the same words, its own clips' negatives.
        try:
            # As the tokenizer reads it: a keyword with nothing to pronounce is this line's.
            words = tuple(G2P().words(parts[1]))
        except KeywordError as e:
            raise PairsError(f"{path}:{n}: {e}") from None
        first = spelled.setdefault(words, (parts[1], n))
        if first[0] != parts[1]:
            raise PairsError(f"{path}:{n}: keyword {parts[1]!r} is {first[0]!r} of line {first[1]} "
                             f"written another way (both are the words '{' '.join(words)}'); "
                             f"write each keyword one way, or its clips become negatives of "
                             f"their own keyword")
        clips.append((n, audio, parts[1], parts[2].strip() if len(parts) == 3 else None))
    if not clips:
        raise PairsError(f"{path} lists no clips")
    return clips


def score_clips(model, clips_tsv, out_dir=None, batch_size: int = 64, vad: bool = False,
                norm: str | None = "none", cohort_size: int = DEFAULT_COHORT_SIZE,
                phrase: str | None = "clip", warp: float = 1.0, words_onnx=None, jobs: int = 1,
                floor_db: float | str | None = None, default_floor_db: float | None = None,
                default_norm: str = "none", default_phrase: str = "clip",
                enrol: str | None = "none", default_enrol: str = "none", enrol_voices=None,
                enrol_weight: float = ENROL_WEIGHT, cache: dict | None = None,
                speaker_mean: bool = False) -> dict:
    """Metrics of every clip against every keyword; with ``out_dir``, its scores.tsv too.
    ``floor_db``, ``default_floor_db``, ``norm``, ``default_norm``, ``phrase``,
    ``default_phrase``, ``enrol``, ``default_enrol``, ``enrol_voices``, ``enrol_weight``,
    ``cache``: as score_pairs_file's. ``speaker_mean``: the per-speaker mean normalisation
    (pyadml.score.speaker_mean), the speakers from the list's third column."""
    numbered = _read_clip_lines(clips_tsv, need_speakers=speaker_mean)
    clips = [clip for _, *clip in numbered]
    keywords = sorted({k for _, k, _ in clips})
    if len(keywords) < 2:
        raise PairsError(f"{clips_tsv}: the protocol needs at least two keywords")
    with tempfile.TemporaryDirectory() as tmp:
        pairs = Path(tmp) / "pairs.tsv"
        pairs.write_text("".join(f"{wav}\t{k}\t{int(k == kw)}\n" for wav, kw, _ in clips
                                 for k in keywords), encoding="utf-8")
        out = Path(out_dir) / "scores.tsv" if out_dir else Path(tmp) / "scores.tsv"
        try:
            res = score_pairs_file(model, pairs, out, batch_size=batch_size, vad=vad, norm=norm,
                                   cohort_size=cohort_size, phrase=phrase, warp=warp,
                                   words_onnx=words_onnx, jobs=jobs, floor_db=floor_db,
                                   default_floor_db=default_floor_db, default_norm=default_norm,
                                   default_phrase=default_phrase, enrol=enrol,
                                   default_enrol=default_enrol, enrol_voices=enrol_voices,
                                   enrol_weight=enrol_weight, cache=cache,
                                   speakers={wav.resolve(): spk for wav, _, spk in clips}
                                   if speaker_mean else None)
        except PairsError as e:
            # A line of the temporary pairs file (clip by keyword) is its clip's line here.
            where = re.match(re.escape(str(pairs)) + r":(\d+): ", str(e))
            if where is None:
                raise
            line = numbered[(int(where.group(1)) - 1) // len(keywords)][0]
            raise PairsError(f"{clips_tsv}:{line}: {str(e)[where.end():]}") from None
    shape = (len(clips), len(keywords))
    return {"keywords": keywords, "floor_db": res.floor_db, "score_norm": res.norm,
            "cohort_size": res.cohort_size, "phrase_score": res.phrase, "enrol": res.enrol,
            **({"enrol_text_only": res.text_only} if res.text_only else {}),
            **({"speaker_mean": {"speakers": res.speakers, "alone": res.alone}}
               if speaker_mean else {}),
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


def clip_intervals(scores: np.ndarray, labels: np.ndarray, draws: int = INTERVAL_DRAWS,
                   seed: int = 0) -> dict[str, list[float]]:
    """95% intervals of AP, EER, AUC and top-1: the 2.5 and 97.5 percentiles over ``draws``
    resamples of the clips with replacement, each with all its trials (a clip's trials share
    its recording and speaker). Two scorings of the same clips: pyadml.score.compare."""
    rng = np.random.default_rng(seed)
    n = len(scores)
    got = {k: [] for k in ("AP", "EER", "AUC", "top1")}
    for idx in rng.integers(0, n, size=(draws, n)):
        m = clip_metrics(scores[idx], labels[idx])
        for k in got:
            got[k].append(m[k])
    return {k: [float(x) for x in np.percentile(v, [2.5, 97.5])] for k, v in got.items()}


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
