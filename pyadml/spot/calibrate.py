"""Seconds per phone: how long a keyword window is, from the keyword's phone count.

``fit_durations`` fits ``duration = edge + per_phone * phones`` by least squares over a word CTM
(the segments the model was trained on) with the model's tokenizer. The constants below are
that fit on the embedded training corpus of egs/wsj_librikws (its words.ctm, mini
size, 16,800 words, 1,200 types): duration = 0.275 s + 0.054 s x phones, RMSE 0.104 s (the
held-out-voice WSJ-like test CTM gives 0.253 + 0.057 x phones, the same within noise).
Synthesised words carry 20 ms of padding at each edge, as the training cuts do.
``python -m pyadml.bin.benchmark_detect --calibrate CTM --model final.pt`` refits on any corpus.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SECONDS_PER_PHONE = 0.054
EDGE_SECONDS = 0.275


def read_ctm_words(path: str | os.PathLike) -> list[tuple[str, float, float, str]]:
    """(utt, start, duration, word) of a CTM ``utt channel start duration word``."""
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 5:
            raise ValueError(f"{path}:{n}: expected 'utt channel start duration word'")
        out.append((parts[0], float(parts[2]), float(parts[3]), parts[4]))
    return out


def fit_durations(ctm: str | os.PathLike, tokenizer) -> dict:
    """Least-squares ``duration = edge + per_phone * phones`` over the CTM's words that the
    tokenizer pronounces; also the plain ratio sum(duration) / sum(phones)."""
    n, d = [], []
    for _, _, dur, word in read_ctm_words(ctm):
        try:
            n.append(len(tokenizer.encode(word)))
        except ValueError:  # KeywordError: markers, partial words
            continue
        d.append(dur)
    n, d = np.asarray(n, float), np.asarray(d, float)
    if n.size < 2:
        raise ValueError(f"{ctm}: fewer than two pronounceable words")
    slope, edge = np.polyfit(n, d, 1)
    resid = d - (edge + slope * n)
    return {"words": int(n.size), "per_phone": float(slope), "edge": float(edge),
            "ratio": float(d.sum() / n.sum()), "rmse": float(np.sqrt(np.mean(resid ** 2))),
            "mean_phones": float(n.mean()), "mean_duration": float(d.mean())}
