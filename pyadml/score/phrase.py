"""Phrase scores from their words (a scoring back-end; the paper's protocol is the clip cosine).

The models train on single words, and one embedding of a 2-4-word clip against one embedding
of the phrase text loses a word's difference: LP_E's 4-word trials sit at about 20% EER and
LP_H's at chance while single words are near 5% and 23% (RESULTS.md). A phrase is said when
its words are said, one after the other, so ``--phrase-score words`` also scores every word of a
multi-word keyword against windows of the clip (30-110 frames, a hop of 5): word k gets a
window w_k, the windows follow the words' order (each starts at most ``WORD_OVERLAP`` frames
before the previous one ends), and the weakest word of the best such sequence counts:

    s(clip, phrase) = (1 - w) * cos(E_a(clip), E_t(phrase))
                      + w * max_{w_1 < ... < w_K} min_k cos(E_a(w_k), E_t(word_k))

with w = 0.5. Single-word keywords keep the clip cosine, so the WSJ protocol is unchanged. A clip
too short to hold K such windows scores each word's best window on its own. With
``--score-norm tnorm`` both terms are T-normalised (pyadml.score.norm) before they are fused:
the clip cosine by the clip's best cosines with the cohort texts, and each word-window cosine
by that window's, the word left out:

    s'(clip, phrase) = (1 - w) * z(clip, phrase)
                       + w * max_{w_1 < ... < w_K} min_k z(w_k, word_k),
    z(a, t) = (cos(a, t) - mean C_K(a, t)) / std C_K(a, t).

The minimum then compares the words on one scale: some words' cosines run higher than others'
whatever is said. Before (the fused cosine T-normed by the clip's cohort alone), LP_H EER was
0.6-3.3 points higher on each of seven models (egs/wsj_librikws/RESULTS.md, "The words of a
phrase T-normed one by one").
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from pyadml.data.dataset import mean_normalize
from pyadml.score.embed import embed_features, embed_texts
from pyadml.score.norm import DEFAULT_COHORT_SIZE, cohort_matrix, cohort_stats, cohort_top

PHRASE_SCORES = ("clip", "words")
# The phrase score of the commands for a user's recordings (score_pairs, score_clips) where the
# model allows it (a cosine model): on six default models under their floor and T-norm, the real
# wake-word clips' EER and the LibriPhrase-like EERs were lower with it on every model
# (RESULTS.md, "The words of a phrase by default for a user's recordings"). The paper's protocol
# (score, stage 8's tables) keeps the clip cosine.
CLIP_PHRASE_SCORE = "words"
WINDOW_FRAMES = (30, 50, 70, 90, 110)
WINDOW_HOP = 5
WORD_WEIGHT = 0.5
# Frames two consecutive words' windows may share: words run into each other, and the window
# lengths step by 20 frames, so a window rarely ends where its word does.
WORD_OVERLAP = 10
# Windows embedded at a time by clips_window_embeddings: about 200 MB of 80-dim features.
MAX_WINDOWS = 8192
# Windows per forward pass on a CPU: 64-128 ran fastest on 2 cores (16: 20.7 s, 64: 15.2 s,
# 128: 14.9 s, 256: 17.5 s for 300 LibriPhrase-like clips); a GPU keeps the caller's batch.
CPU_WINDOW_BATCH = 64


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


class PhraseScoreError(ValueError):
    pass


def check_phrase(phrase: str, scorer: str, words_onnx=None, model_path=None,
                 jobs: int = 1) -> None:
    """PhraseScoreError for an unknown ``phrase``, the words back-end on a detector model, or a
    ``words_onnx`` export that is not ``model_path``'s."""
    if phrase not in PHRASE_SCORES:
        raise PhraseScoreError(f"phrase score {phrase!r}: expected one of {PHRASE_SCORES}")
    if phrase == "words" and scorer != "cosine":
        raise PhraseScoreError(f"--phrase-score words needs a cosine model; this model scores "
                               f"with its {scorer} detector head")
    if jobs < 1:
        raise PhraseScoreError(f"--jobs must be >= 1, got {jobs}")
    if words_onnx is not None and phrase != "words":
        raise PhraseScoreError("--words-onnx embeds the words back-end's windows: it needs "
                               "--phrase-score words")
    if words_onnx is not None:
        from pyadml.spot.audio import SpotError
        from pyadml.spot.onnx_export import check_export

        try:
            check_export(words_onnx, model_path)
        except SpotError as e:
            raise PhraseScoreError(f"--words-onnx: {e}") from None


def window_spans(num_frames: int, lengths: Sequence[int] = WINDOW_FRAMES,
                 hop: int = WINDOW_HOP) -> np.ndarray:
    """(N, 2) start and end frame of every window of a ``num_frames`` clip: each length (at most
    the clip's) at a hop, the last start at most the clip's end minus the length."""
    out = []
    for length in dict.fromkeys(min(int(n), num_frames) for n in lengths):
        out.extend((start, start + length) for start in range(0, num_frames - length + 1, hop))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def windows(feats: np.ndarray, lengths: Sequence[int] = WINDOW_FRAMES, hop: int = WINDOW_HOP,
            mean_norm: bool = True) -> list[np.ndarray]:
    """The features of the ``window_spans``, each mean-normalised as a training cut is (the same
    whether ``feats`` was normalised as a whole or not)."""
    spans = window_spans(feats.shape[0], lengths, hop)
    return [mean_normalize(feats[a:b]) if mean_norm else feats[a:b] for a, b in spans]


def clips_window_embeddings(model, feats_of: Callable[[Any], np.ndarray], cut_ids: Sequence,
                            batch_size: int = 256, mean_norm: bool = True,
                            max_windows: int = MAX_WINDOWS,
                            embed: Callable[[list], np.ndarray] | None = None) -> dict:
    """cut id -> ((N, d) unit embeddings of the ``windows`` of ``feats_of(cut id)``, their (N, 2)
    ``window_spans``), for each of ``cut_ids``. The
    windows of many clips go through the encoder together (up to about ``max_windows`` at a
    time, to bound memory), so a batch holds windows of one length (``embed_features`` sorts
    by length) rather than one clip's five lengths padded to the longest: LibriPhrase-like
    LP_E + LP_H in 32 s instead of 56 (RESULTS.md), and the same embeddings, since the encoder
    masks padded frames. ``embed`` (a list of windows -> their (N, d) embeddings) replaces the
    torch ``model``, e.g. onnxruntime (``onnx_window_embeddings``)."""
    if embed is None:
        def embed(wins):
            return embed_features(model, wins, batch_size=batch_size)
    out, group, wins = {}, [], []

    def flush():
        emb = _unit(embed(wins))
        start = 0
        for cut_id, spans in group:
            out[cut_id] = (emb[start:start + len(spans)], spans)
            start += len(spans)
        group.clear()
        wins.clear()

    for cut_id in cut_ids:
        feats = feats_of(cut_id)
        group.append((cut_id, window_spans(feats.shape[0])))
        wins.extend(windows(feats, mean_norm=mean_norm))
        if len(wins) >= max_windows:
            flush()
    if group:
        flush()
    return out


_WORKER_BACKEND = None


def _onnx_worker_init(onnx_dir: str) -> None:
    global _WORKER_BACKEND
    from pyadml.spot.backend import OnnxBackend

    _WORKER_BACKEND = OnnxBackend(onnx_dir, num_threads=1)


def _onnx_chunk(items: list, mean_norm: bool, batch_size: int, backend=None) -> dict:
    """One chunk's windows through ``backend`` (default: this worker's)."""
    from pyadml.spot.backend import embed_clips

    feats = dict(items)
    backend = backend or _WORKER_BACKEND
    return clips_window_embeddings(
        None, feats.__getitem__, list(feats), mean_norm=mean_norm,
        embed=lambda wins: embed_clips(backend, wins, batch_size))


def onnx_window_embeddings(onnx_dir, feats_of: Callable[[Any], np.ndarray], cut_ids: Sequence,
                           jobs: int = 1, mean_norm: bool = True,
                           batch_size: int = CPU_WINDOW_BATCH,
                           max_windows: int = MAX_WINDOWS) -> dict:
    """``clips_window_embeddings`` through onnxruntime (an export of pyadml.bin.export_onnx), in
    ``jobs`` processes of one thread each: about 1.7x torch's two threads on 2 cores
    (RESULTS.md). The clips go to the processes in chunks of about ``max_windows / 2`` windows;
    a single chunk is embedded in this process, one thread, as a worker would.
    The embeddings equal torch's to float rounding (the export's parity check)."""
    cut_ids = list(cut_ids)
    if jobs <= 1:
        from pyadml.spot.backend import OnnxBackend, embed_clips

        backend = OnnxBackend(onnx_dir)  # this process's threads
        return clips_window_embeddings(None, feats_of, cut_ids, mean_norm=mean_norm,
                                       max_windows=max_windows,
                                       embed=lambda wins: embed_clips(backend, wins, batch_size))
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks, chunk, n = [], [], 0
    for c in cut_ids:
        f = feats_of(c)
        chunk.append((c, f))
        n += len(window_spans(f.shape[0]))
        if n >= max_windows // 2:
            chunks.append(chunk)
            chunk, n = [], 0
    if chunk:
        chunks.append(chunk)
    if len(chunks) == 1:
        # One chunk would go to one worker: embed it here, as that worker would (one thread),
        # without starting processes that each import onnxruntime (seconds for a few clips).
        from pyadml.spot.backend import OnnxBackend

        part = _onnx_chunk(chunks[0], mean_norm, batch_size, OnnxBackend(onnx_dir, num_threads=1))
        return {c: part[c] for c in cut_ids}
    out = {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_onnx_worker_init, initargs=(str(onnx_dir),)) as pool:
        for part in pool.map(_onnx_chunk, chunks, [mean_norm] * len(chunks),
                             [batch_size] * len(chunks)):
            out.update(part)
    return {c: out[c] for c in cut_ids}


def ordered_words_score(cos: np.ndarray, spans: np.ndarray, overlap: int = WORD_OVERLAP) -> float:
    """max over window sequences w_1..w_K with start(w_k+1) >= end(w_k) - ``overlap`` of
    min_k cos[k, w_k]; ``cos`` is (K, N), word k's cosines with the N windows of ``spans``.
    Dynamic programming over the words: best[k, w] = min(cos[k, w], max of best[k-1, v] over
    the windows v that end early enough). A clip too short for any such sequence gets
    min_k max_w cos[k, w], each word's best window on its own."""
    cos = np.asarray(cos, dtype=np.float64)
    order = np.argsort(spans[:, 1], kind="stable")
    ends = spans[order, 1]
    # For each window, the last (by end) window that may come before it.
    last = np.searchsorted(ends, spans[:, 0] + overlap, side="right") - 1
    best = cos[0]
    for k in range(1, cos.shape[0]):
        before = np.maximum.accumulate(best[order])
        prev = np.where(last >= 0, before[np.maximum(last, 0)], -np.inf)
        best = np.minimum(cos[k], prev)
    top = float(best.max())
    return top if np.isfinite(top) else float(cos.max(axis=1).min())


def ordered_scores(win: Mapping[str, tuple[np.ndarray, np.ndarray]],
                   word_emb: Mapping[str, np.ndarray], pairs,
                   words_of: Callable[[str], list[str]] = str.split,
                   norm: Callable[[str, list[str], np.ndarray], np.ndarray] | None = None,
                   ) -> dict[tuple[str, str], float]:
    """(cut id, keyword) -> ``ordered_words_score`` of the keyword's words over the cut's
    windows (``win``: cut id -> (unit window embeddings, spans)), for each pair of ``pairs``.
    ``norm(cut id, words, cos)`` maps the (K, N) word-window cosines first (``window_tnorm``)."""
    out = {}
    for cut_id, keyword in pairs:
        emb, spans = win[cut_id]
        words = words_of(keyword)
        cos = _unit(np.stack([word_emb[k] for k in words])) @ emb.T
        out[cut_id, keyword] = ordered_words_score(
            cos if norm is None else norm(cut_id, words, cos), spans)
    return out


def window_tnorm(win: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 cohort: Mapping[str, np.ndarray], size: int):
    """norm(cut id, words, cos) for ``ordered_scores``: each window's cosine with word k, less
    the mean over the std of the window's ``size`` best cosines with the ``cohort`` texts
    (word k left out), as pyadml.score.norm T-normalises a clip. Each cut's cohort cosines are
    computed once, for all the keywords it is scored with."""
    names, c_mat = cohort_matrix(cohort)
    index = {w: i for i, w in enumerate(names)}
    top: dict = {}

    def norm(cut_id: str, words: list[str], cos: np.ndarray) -> np.ndarray:
        if cut_id not in top:
            top[cut_id] = cohort_top(np.asarray(win[cut_id][0], np.float64) @ c_mat.T, size)
        t, t_sims = top[cut_id]
        out = np.empty(cos.shape, dtype=np.float64)
        for k, word in enumerate(words):
            own = np.full(len(t), index.get(word, -1), dtype=np.int64)
            mean, std = cohort_stats(t, t_sims, own, size)
            out[k] = (cos[k] - mean) / np.maximum(std, 1e-6)
        return out

    return norm


def phrase_scores(scores: np.ndarray, cut_ids: Sequence[str], keywords: Sequence[str],
                  words: Mapping[tuple[str, str], float], weight: float = WORD_WEIGHT,
                  words_of: Callable[[str], list[str]] = str.split) -> np.ndarray:
    """Each multi-word keyword's clip score fused with its words' score ``words[cut id,
    keyword]`` (module docstring); single-word keywords keep the clip score."""
    out = np.asarray(scores, dtype=np.float64).copy()
    for i, (c, k) in enumerate(zip(cut_ids, keywords)):
        if len(words_of(k)) > 1:
            out[i] = (1 - weight) * out[i] + weight * words[c, k]
    return out


def fuse_words(loaded, scores: np.ndarray, cut_ids: Sequence[str], keywords: Sequence[str],
               feats_of: Callable[[str], np.ndarray], batch_size: int = 256,
               cache: dict | None = None, onnx_dir=None, jobs: int = 1,
               cohort: Mapping[str, np.ndarray] | None = None,
               cohort_size: int = DEFAULT_COHORT_SIZE, enrolment=None) -> np.ndarray:
    """``scores`` (the clip cosines of the trials) with every multi-word keyword fused with its
    words in order (``phrase_scores``); ``feats_of(cut id)`` gives a cut's (T, D) features.
    With a ``cohort`` (T-norm), ``scores`` are the clip's T-normed cosines and each word-window
    cosine is T-normed too, by the window's own cohort cosines (``window_tnorm``), before the
    weakest word is taken: the words' scores are then on one scale.
    A keyword's words are the tokenizer's (normalised, as the keyword was pronounced).
    ``cache`` (cut id -> window embeddings and spans) is filled and reused: trial lists that
    share cuts (LP_E and LP_H) embed each cut's windows once. ``onnx_dir``: the windows go
    through that ONNX export of the model in ``jobs`` processes (``onnx_window_embeddings``;
    the caller checks that it is this model's: ``check_phrase``). ``enrolment``
    (pyadml.score.enrol.Enrolment): each word is enrolled by speech synthesis too, as the
    keyword was."""
    split = {k: loaded.tokenizer.words(k) for k in set(keywords)}
    pairs = {(c, k) for c, k in zip(cut_ids, keywords) if len(split[k]) > 1}
    if not pairs:
        return np.asarray(scores, dtype=np.float64)
    cache = {} if cache is None else cache
    mean_norm = bool(loaded.features.get("mean_norm", True))
    todo = [c for c in sorted({c for c, _ in pairs}) if c not in cache]
    if onnx_dir is not None:
        cache.update(onnx_window_embeddings(onnx_dir, feats_of, todo, jobs, mean_norm))
    else:
        if next(loaded.model.parameters()).device.type == "cpu":
            batch_size = min(batch_size, CPU_WINDOW_BATCH)
        cache.update(clips_window_embeddings(loaded.model, feats_of, todo, batch_size, mean_norm))
    words = sorted({w for _, k in pairs for w in split[k]})
    word_emb = embed_texts(loaded.model, words, loaded.tokenizer)
    if enrolment is not None:
        word_emb = enrolment.queries(word_emb)
    norm = None if cohort is None else window_tnorm(cache, cohort, cohort_size)
    ordered = ordered_scores(cache, word_emb, pairs, split.__getitem__, norm)
    return phrase_scores(scores, cut_ids, keywords, ordered, words_of=split.__getitem__)


def model_phrase(scorer: str, phrase: str | None, default: str = "clip") -> str:
    """The phrase score to score a model with: ``phrase`` when given (check_phrase refuses words
    on a detector), else ``default`` (the command's own: CLIP_PHRASE_SCORE for a user's
    recordings) where the model allows it, else "clip" with a note: the words back-end compares
    cosines, which a detector head does not give."""
    if phrase is not None:
        return phrase
    if default == "words" and scorer != "cosine":
        import sys

        print(f"phrase score: this model is scored without words (its scorer is {scorer!r}, "
              "not a cosine)", file=sys.stderr)
        return "clip"
    return default


def add_phrase_args(parser, default: str | None = None) -> None:
    """--phrase-score, --words-onnx and --jobs of the scoring commands; ``default``: the
    command's phrase score where the model allows it (CLIP_PHRASE_SCORE for a user's
    recordings), None for the paper's protocol, the clip cosine."""
    parser.add_argument("--phrase-score", default=None if default else "clip", choices=PHRASE_SCORES,
                        help="words: a multi-word keyword's clip cosine fused with its words "
                        "found in order in windows of the clip, the weakest counting "
                        "(pyadml.score.phrase); clip: the clip cosine alone, the paper's protocol. "
                        + (f"Default: {default} where the model allows it (a cosine model), else "
                           "clip, as for any recording a user scores" if default else "Default: clip"))
    parser.add_argument("--words-onnx", default=None, metavar="DIR",
                        help="with the words back-end: embed the windows with this ONNX export "
                        "of the model (python -m pyadml.bin.export_onnx), in --jobs processes; "
                        "on a CPU about 1.7x faster than torch, equal to float rounding. The "
                        "clip cosines stay torch's")
    parser.add_argument("--jobs", type=int, default=1,
                        help="processes for --words-onnx (one thread each)")
