"""Per-speaker mean normalisation of the audio embeddings: a scoring back-end for test sets
whose cuts name their speaker.

A voice far from the training voices moves all of its clips' embeddings the same way. The
move adds a keyword-dependent term to every one of its cosines, so within that voice some
keywords win too often. Kaldi removes a speaker's offset from the features with per-speaker
CMVN (apply-cmvn --utt2spk); this does the same on the utterance embeddings. For clip i of
speaker s, with u_i = E_a^utt(i) / |E_a^utt(i)| and S(i) the speaker's other clips,

    a'_i = u_i - n / (n + TAU) * (1 / n) sum_{j in S(i)} u_j,      n = |S(i)|,

and the trial's score is cos(a'_i, E_t^utt(k)), T-normed after when asked. Leaving the clip
itself out keeps its own words out of the mean. The weight n / (n + TAU) shrinks a mean of few
clips, which holds as much of their words as of the voice: subtracted whole, one other clip
cost the WSJ-like test 11 points of AP under T-norm (egs/wsj_librikws/RESULTS.md, "Per-speaker
mean normalisation"). A clip whose speaker has no other clip, or that names no speaker, keeps u_i.
Only the clip embeddings move; the words back-end's windows (pyadml.score.phrase) are scored
as they are. It is off in the paper's protocol.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping

import numpy as np

# The prior's weight in clips: chosen on the training voices' dev set, where 3, 10 and 30 tied
# and 0 (no shrinkage) lost.
TAU = 10.0


def cosine_only(scorer: str, model_path) -> str | None:
    """Why a model cannot be scored with the speaker mean (it moves cosine embeddings; a
    detector head scores otherwise), or None."""
    if scorer == "cosine":
        return None
    return (f"{model_path}: the speaker mean needs a cosine model; this model's scorer is "
            f"{scorer!r}")


def speaker_mean_normalised(audio_emb: Mapping[str, np.ndarray],
                            speakers: Mapping[str, str | None],
                            tau: float = TAU) -> tuple[dict[str, np.ndarray], int]:
    """({clip id: a'_i}, how many clips kept u_i because no other clip shares their speaker).
    ``speakers``: clip id -> speaker (None or absent: unknown)."""
    ids = list(audio_emb)
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    if not ids:
        return {}, 0
    unit = np.stack([np.asarray(audio_emb[i], dtype=np.float64) for i in ids])
    unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-8)
    rows = defaultdict(list)
    for r, i in enumerate(ids):
        spk = speakers.get(i)
        if spk is not None:
            rows[spk].append(r)
    out = unit.copy()
    for members in rows.values():
        if len(members) < 2:
            continue
        members = np.asarray(members)
        n = len(members) - 1
        total = unit[members].sum(axis=0)
        out[members] -= (total - unit[members]) / (n + tau)  # n/(n+tau) times the mean of n
    alone = sum(1 for i in ids if speakers.get(i) is None or len(rows[speakers[i]]) < 2)
    return {i: out[r] for r, i in enumerate(ids)}, alone
