"""Score normalisation with a text cohort: adaptive T-norm (the test side of AS-norm).

A clip scores differently against every text: silence, noise or a voice far from the training
voices shift all of its cosines together. Pooled metrics (AP, EER over many clips) and one
threshold for all clips suffer from that shift. Adaptive T-norm (Sturim and Reynolds 2005;
AS-norm, Cumani et al. 2011) removes it with the clip's own impostor statistics: for a trial
(audio a, keyword k) with raw score s = cos(a, k),

    C_K(a, k) = the K highest cos(a, c) over cohort texts c != k,
    s' = (s - mean C_K(a, k)) / std C_K(a, k)      (population std).

The cohort is the model's training keywords (stored in final.pt at export); the trial's own
keyword is left out so that a positive trial does not raise its own impostor mean. s' is an
increasing function of s for each clip, so the ranking of keywords within a clip (top-1) is
unchanged. It is off in the paper's protocol (score = cosine, section 8 of the model spec).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

NORMS = ("none", "tnorm")
DEFAULT_COHORT_SIZE = 200
# The normalisation of score_pairs and score_clips for a user's recordings, where the model
# allows it: with the level-relative floor it lowered the real wake-word clips' EER on each of
# six models (three seeds of the default, three of VTLP), and without it raised WSJ-like AP on
# each of twelve (egs/wsj_librikws/RESULTS.md, "T-norm with the floor as the default for a
# user's recordings").
CLIP_SCORE_NORM = "tnorm"


class ScoreNormError(ValueError):
    pass


def _unit(mat: np.ndarray) -> np.ndarray:
    mat = np.asarray(mat, dtype=np.float64)
    return mat / np.maximum(np.linalg.norm(mat, axis=-1, keepdims=True), 1e-8)


def adaptive_tnorm(scores: np.ndarray, audio_ids: Sequence[str], keywords: Sequence[str],
                   audio_emb: Mapping[str, np.ndarray], cohort: Mapping[str, np.ndarray],
                   size: int = DEFAULT_COHORT_SIZE) -> np.ndarray:
    """Normalised scores of trials (audio_ids[i], keywords[i]) with raw ``scores`` (see the
    module docstring). ``audio_emb``: audio id -> E_a^utt; ``cohort``: cohort text -> E_t^utt.
    The cohort must hold more than ``size`` texts (one may be the trial's keyword)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not (len(scores) == len(audio_ids) == len(keywords)):
        raise ScoreNormError(f"{len(scores)} scores for {len(audio_ids)} audio ids and "
                             f"{len(keywords)} keywords")
    if size < 2:
        raise ScoreNormError(f"cohort size must be >= 2, got {size}")
    if len(cohort) <= size:
        raise ScoreNormError(f"the cohort holds {len(cohort)} texts; T-norm with K={size} needs "
                             f"more than {size}")
    names, c_mat = cohort_matrix(cohort)
    index = {w: i for i, w in enumerate(names)}
    uniq = list(dict.fromkeys(audio_ids))
    a_row = {a: i for i, a in enumerate(uniq)}
    top, top_sims = cohort_top(_unit(np.stack([audio_emb[a] for a in uniq])) @ c_mat.T, size)
    rows = np.fromiter((a_row[a] for a in audio_ids), dtype=np.int64, count=len(audio_ids))
    own = np.fromiter((index.get(k, -1) for k in keywords), dtype=np.int64, count=len(keywords))
    mean, std = cohort_stats(top[rows], top_sims[rows], own, size)
    return (scores - mean) / np.maximum(std, 1e-6)


def cohort_matrix(cohort: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """(cohort texts, their unit embeddings as a (C, d) matrix)."""
    names = list(cohort)
    return names, _unit(np.stack([cohort[w] for w in names]))


def cohort_top(sims: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` + 1 best cohort indices of each row of ``sims`` (rows, C) and their cosines,
    best first: at most one of them is a trial's own keyword."""
    top = np.argpartition(-sims, size, axis=1)[:, : size + 1]
    top_sims = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_sims, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)


def cohort_stats(top: np.ndarray, top_sims: np.ndarray, own: np.ndarray,
                 size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of each row's ``size`` best cohort cosines (``cohort_top``'s
    rows) with the cohort text ``own`` (an index, -1 for none) left out."""
    # Drop the own keyword where it is among the K+1, else the (K+1)-th.
    hit = top == own[:, None]
    drop = np.where(hit.any(axis=1), hit.argmax(axis=1), size)
    keep = np.ones_like(hit)
    keep[np.arange(len(own)), drop] = False
    picked = top_sims[keep].reshape(len(own), size)
    return picked.mean(axis=1), picked.std(axis=1)


def check_norm(norm: str, scorer: str) -> None:
    if norm not in NORMS:
        raise ScoreNormError(f"score normalisation {norm!r}: expected one of {NORMS}")
    if norm != "none" and scorer != "cosine":
        raise ScoreNormError(f"score normalisation {norm!r} needs a cosine model; this model's "
                             f"scorer is {scorer!r}")


def cohort_embeddings(loaded, size: int) -> tuple[dict[str, np.ndarray], int]:
    """(E_t^utt of the model's cohort, K): the cohort is its training keywords (final.pt
    ``cohort``); K is ``size``, or all but one of a smaller cohort (a note says so)."""
    import sys

    from pyadml.score.embed import embed_texts

    words = list(getattr(loaded, "cohort", None) or [])
    if not words:
        raise ScoreNormError("this model file carries no cohort of training keywords (exported "
                             "before T-norm existed); export it again with "
                             "python -m pyadml.bin.export_model --exp-dir <exp>")
    if size < 2:
        raise ScoreNormError(f"--cohort-size must be >= 2, got {size}")
    if len(words) < 3:
        raise ScoreNormError(f"the model's cohort holds {len(words)} keyword(s); T-norm needs 3 or more")
    if len(words) <= size:
        print(f"score norm: the model's cohort holds {len(words)} keywords; T-norm uses the "
              f"{len(words) - 1} closest instead of {size}", file=sys.stderr)
        size = len(words) - 1
    return embed_texts(loaded.model, words, loaded.tokenizer), size


def prepare(loaded, norm: str, size: int, model_path) -> tuple[dict | None, int]:
    """(cohort embeddings or None for "none", K) for scoring ``loaded`` with ``norm``;
    ScoreNormError names the model file."""
    try:
        check_norm(norm, loaded.scorer)
        return cohort_embeddings(loaded, size) if norm == "tnorm" else (None, size)
    except ScoreNormError as e:
        raise ScoreNormError(f"{model_path}: {e}") from None


def model_norm(loaded, norm: str | None, default: str = "none") -> str:
    """The normalisation to score ``loaded`` with: ``norm`` when given (checked by ``prepare``,
    which refuses what the model cannot do), else ``default`` (the command's own: CLIP_SCORE_NORM
    for a user's recordings) where the model allows it, else "none" with a note saying why: a
    model that scores otherwise than by cosine, or carries no cohort of 3 or more keywords."""
    import sys

    if norm is not None:
        return norm
    if default == "none":
        return "none"
    why = None
    if loaded.scorer != "cosine":
        why = f"its scorer is {loaded.scorer!r}, not a cosine"
    elif len(getattr(loaded, "cohort", None) or []) < 3:
        why = "it carries no cohort of 3 or more training keywords"
    if why is not None:
        print(f"score norm: this model is scored without {default} ({why})", file=sys.stderr)
        return "none"
    return default


def add_norm_args(parser, default: str | None = None) -> None:
    """--score-norm and --cohort-size of the scoring commands; ``default``: the command's
    normalisation where the model allows it (CLIP_SCORE_NORM for a user's recordings), None for
    the paper's protocol, the cosine."""
    parser.add_argument("--score-norm", default=None if default else "none", choices=NORMS,
                        help="tnorm: adaptive T-norm with the model's training keywords as "
                        "cohort (pyadml.score.norm); none: the cosine, the paper's protocol. "
                        + (f"Default: {default} where the model allows it (a cosine model with "
                           "a cohort), else none, as for any recording a user scores"
                           if default else "Default: none"))
    parser.add_argument("--cohort-size", type=int, default=DEFAULT_COHORT_SIZE,
                        help="T-norm's K: how many of the cohort texts closest to each clip "
                        "give its mean and std")
