"""Phrase scores from their words (a scoring back-end; the paper's protocol is the clip cosine).

The models train on single words, and one embedding of a 2-4-word clip against one embedding
of the phrase text loses a word's difference: LP_E's 4-word trials sit at about 20% EER and
LP_H's at chance while single words are near 5% and 23% (RESULTS.md). A phrase is said when
each of its words is said, so ``--phrase-score words`` also scores every word of a multi-word
keyword on its own: the best cosine between the word's text embedding and the embeddings of
windows of the clip (30-110 frames, a hop of 5), and the weakest word counts:

    s(clip, phrase) = (1 - w) * cos(E_a(clip), E_t(phrase)) + w * min_k max_win cos(E_a(win), E_t(word_k))

with w = 0.5. Single-word keywords keep the clip cosine, so the WSJ protocol is unchanged.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from pyadml.data.dataset import mean_normalize
from pyadml.score.embed import embed_features, embed_texts

PHRASE_SCORES = ("clip", "words")
WINDOW_FRAMES = (30, 50, 70, 90, 110)
WINDOW_HOP = 5
WORD_WEIGHT = 0.5


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


class PhraseScoreError(ValueError):
    pass


def check_phrase(phrase: str, norm: str, scorer: str) -> None:
    if phrase not in PHRASE_SCORES:
        raise PhraseScoreError(f"phrase score {phrase!r}: expected one of {PHRASE_SCORES}")
    if phrase == "words" and scorer != "cosine":
        raise PhraseScoreError(f"--phrase-score words needs a cosine model; this model scores "
                               f"with its {scorer} detector head")
    if phrase == "words" and norm != "none":
        raise PhraseScoreError("--phrase-score words with --score-norm "
                               f"{norm}: the two are not measured together; use one of them")


def windows(feats: np.ndarray, lengths: Sequence[int] = WINDOW_FRAMES, hop: int = WINDOW_HOP,
            mean_norm: bool = True) -> list[np.ndarray]:
    """Every window of each length (at most the clip's) at a hop, each mean-normalised as a
    training cut is (the same whether ``feats`` was normalised as a whole or not); the last
    start is at most the clip's end minus the length."""
    t = feats.shape[0]
    out = []
    for length in dict.fromkeys(min(int(n), t) for n in lengths):
        for start in range(0, t - length + 1, hop):
            w = feats[start:start + length]
            out.append(mean_normalize(w) if mean_norm else w)
    return out


def window_embeddings(model, feats: np.ndarray, batch_size: int = 256,
                      mean_norm: bool = True) -> np.ndarray:
    """(N, d) unit embeddings of the ``windows`` of one cut's (T, D) features."""
    return _unit(embed_features(model, windows(feats, mean_norm=mean_norm), batch_size=batch_size))


def best_word_scores(win_emb: Mapping[str, np.ndarray], word_emb: Mapping[str, np.ndarray],
                     needs: Mapping[str, set]) -> dict[str, dict[str, float]]:
    """cut id -> word -> the highest cosine between the word's text embedding and the cut's
    window embeddings, for the words ``needs[cut id]``."""
    out = {}
    for cut_id, words in needs.items():
        words = sorted(words)
        w = _unit(np.stack([word_emb[k] for k in words]))
        best = (win_emb[cut_id] @ w.T).max(axis=0)
        out[cut_id] = {k: float(b) for k, b in zip(words, best)}
    return out


def phrase_scores(scores: np.ndarray, cut_ids: Sequence[str], keywords: Sequence[str],
                  best: Mapping[str, Mapping[str, float]], weight: float = WORD_WEIGHT,
                  words_of: Callable[[str], list[str]] = str.split) -> np.ndarray:
    """Each multi-word keyword's clip score fused with its weakest word (module docstring);
    single-word keywords keep the clip score. ``words_of``: a keyword's words."""
    out = np.asarray(scores, dtype=np.float64).copy()
    for i, (c, k) in enumerate(zip(cut_ids, keywords)):
        words = words_of(k)
        if len(words) > 1:
            out[i] = (1 - weight) * out[i] + weight * min(best[c][w] for w in words)
    return out


def multiword_needs(cut_ids: Sequence[str], keywords: Sequence[str],
                    words_of: Callable[[str], list[str]] = str.split) -> dict[str, set]:
    """cut id -> the words of the multi-word keywords it is scored against."""
    needs: dict[str, set] = {}
    for c, k in zip(cut_ids, keywords):
        words = words_of(k)
        if len(words) > 1:
            needs.setdefault(c, set()).update(words)
    return needs


def fuse_words(loaded, scores: np.ndarray, cut_ids: Sequence[str], keywords: Sequence[str],
               feats_of: Callable[[str], np.ndarray], batch_size: int = 256,
               cache: dict | None = None) -> np.ndarray:
    """``scores`` (the clip cosines of the trials) with every multi-word keyword fused with its
    weakest word (``phrase_scores``); ``feats_of(cut id)`` gives a cut's (T, D) features.
    A keyword's words are the tokenizer's (normalised, as the keyword was pronounced).
    ``cache`` (cut id -> window embeddings) is filled and reused: trial lists that share cuts
    (LP_E and LP_H) embed each cut's windows once."""
    split = {k: loaded.tokenizer.words(k) for k in set(keywords)}
    needs = multiword_needs(cut_ids, keywords, split.__getitem__)
    if not needs:
        return np.asarray(scores, dtype=np.float64)
    cache = {} if cache is None else cache
    mean_norm = bool(loaded.features.get("mean_norm", True))
    for c in needs:
        if c not in cache:
            cache[c] = window_embeddings(loaded.model, feats_of(c), batch_size, mean_norm)
    words = sorted(set().union(*needs.values()))
    word_emb = embed_texts(loaded.model, words, loaded.tokenizer)
    best = best_word_scores(cache, word_emb, needs)
    return phrase_scores(scores, cut_ids, keywords, best, words_of=split.__getitem__)


def add_phrase_args(parser) -> None:
    parser.add_argument("--phrase-score", default="clip", choices=PHRASE_SCORES,
                        help="words: a multi-word keyword's clip cosine fused with its weakest "
                        "word's best window (pyadml.score.phrase); clip: the clip cosine alone, "
                        "the paper's protocol")
