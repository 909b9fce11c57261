"""Embedding caches and cached pair scoring.

Each distinct cut and each distinct keyword text goes through its encoder once; a trial's score
is then the cosine of two cached utterance embeddings, E_a^utt and E_t^utt. For a model with a
detector head (``model.scorer`` "phonmatchnet" or "cmcd", pyadml.models.baselines) the caches
hold the encoders' sequences instead, (T, d) valid frames per cut and (L, d) phoneme states per
keyword, and ``score_trials(..., model=model)`` runs the head on each trial's pair: its
sigmoid probability is the score. This is the one place where pairs are scored.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from pyadml.data.dataset import mean_normalize
from pyadml.data.trials import Trial
from pyadml.models import KwsModel
from pyadml.score.floor import floor_features
from pyadml.text import Tokenizer


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _pad_feats(feats: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
    out = torch.zeros(len(feats), int(lens.max()), feats[0].shape[1], dtype=torch.float32)
    for i, f in enumerate(feats):
        out[i, : f.shape[0]] = torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32))
    return out, lens


def _scorer(model) -> str:
    return getattr(model, "scorer", "cosine")


def embed_features(model: KwsModel, feats: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
    """(N, d) E_a^utt of already normalised (T, D) feature matrices, in input order. Batches
    hold similar lengths, so little compute goes to padding. A detector model gives a list of
    (T_i, d) frame sequences instead."""
    if _scorer(model) != "cosine":
        return _frame_sequences(model, feats, batch_size)
    if not len(feats):
        return np.zeros((0, model.audio.embed_dim), dtype=np.float32)
    order = np.argsort([f.shape[0] for f in feats], kind="stable")
    out = np.empty((len(feats), model.audio.embed_dim), dtype=np.float32)
    dev = _device(model)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x, lens = _pad_feats([feats[i] for i in idx])
            utt = model.embed_audio(x.to(dev), lens.to(dev)).utt
            out[idx] = utt.float().cpu().numpy()
    return out


def _frame_sequences(model: KwsModel, feats: Sequence[np.ndarray], batch_size: int) -> list:
    out: list = [None] * len(feats)
    order = np.argsort([f.shape[0] for f in feats], kind="stable")
    dev = _device(model)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x, lens = _pad_feats([feats[i] for i in idx])
            phn = model.embed_audio(x.to(dev), lens.to(dev)).phn.float().cpu().numpy()
            for row, i in enumerate(idx):
                out[i] = phn[row, : int(lens[row])].copy()
    return out


def embed_cuts(model: KwsModel, cuts: Iterable, batch_size: int = 256,
               mean_norm: bool = True, floor_db: float | None = None) -> dict[str, np.ndarray]:
    """cut id -> E_a^utt (d,) for each distinct cut, features from ``cut.load_features()``
    (with ``floor_db``, floored first: pyadml.score.floor)."""
    unique = {}
    for cut in cuts:
        unique.setdefault(cut.id, cut)
    cuts = list(unique.values())
    out: dict[str, np.ndarray] = {}
    order = sorted(range(len(cuts)), key=lambda i: cuts[i].num_frames or 0)
    # Load one batch at a time so memory holds a batch of features, not the test set.
    for start in range(0, len(order), batch_size):
        chunk = [cuts[i] for i in order[start : start + batch_size]]
        feats = []
        for cut in chunk:
            f = floor_features(cut.load_features(), floor_db)
            feats.append(mean_normalize(f) if mean_norm else np.asarray(f, dtype=np.float32))
        emb = embed_features(model, feats, batch_size=len(chunk))
        out.update(zip((c.id for c in chunk), emb))
    return out


def embed_texts(model: KwsModel, texts: Iterable[str], tokenizer: Tokenizer,
                batch_size: int = 512) -> dict[str, np.ndarray]:
    """text -> E_t^utt (d,) for each distinct keyword text, phone ids from ``tokenizer``
    (a detector model: text -> (L, d) phoneme states)."""
    seqs = _scorer(model) != "cosine"
    uniq = list(dict.fromkeys(texts))
    ids = [tokenizer.encode(t) for t in uniq]
    out: dict[str, np.ndarray] = {}
    if not uniq:
        return out
    order = np.argsort([len(p) for p in ids], kind="stable")
    dev = _device(model)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            lens = torch.tensor([len(ids[i]) for i in idx], dtype=torch.int64)
            x = torch.zeros(len(idx), int(lens.max()), dtype=torch.int64)
            for row, i in enumerate(idx):
                x[row, : len(ids[i])] = torch.tensor(ids[i], dtype=torch.int64)
            enc = model.embed_text(x.to(dev), lens.to(dev))
            if seqs:
                phn = enc.phn.float().cpu().numpy()
                out.update((uniq[i], phn[row, : len(ids[i])].copy()) for row, i in enumerate(idx))
                continue
            utt = enc.utt.float().cpu().numpy()
            out.update((uniq[i], utt[row]) for row, i in enumerate(idx))
    return out


def _normalized_matrix(emb: Mapping[str, np.ndarray]) -> tuple[dict[str, int], np.ndarray]:
    keys = list(emb)
    mat = np.stack([np.asarray(emb[k], dtype=np.float32) for k in keys]) if keys else np.zeros((0, 1), np.float32)
    # Same eps as torch's cosine_similarity, so a zero vector scores 0 instead of NaN.
    norms = np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-8)
    return {k: i for i, k in enumerate(keys)}, mat / norms


def score_trials(trials: Sequence[Trial], audio_emb: Mapping[str, np.ndarray],
                 text_emb: Mapping[str, np.ndarray], model: KwsModel | None = None,
                 batch_size: int = 256) -> np.ndarray:
    """Score of each trial (float64, trial order) from the caches: the cosine of the
    embeddings, or for a detector ``model`` the head's probability of the cached sequences."""
    if model is not None and _scorer(model) != "cosine":
        return _detector_scores(trials, audio_emb, text_emb, model, batch_size)
    if any(np.ndim(v) != 1 for v in list(audio_emb.values())[:1] + list(text_emb.values())[:1]):
        raise ValueError("the caches hold sequences (a detector model's): pass model= to "
                         "score_trials")
    a_index, a = _normalized_matrix(audio_emb)
    t_index, t = _normalized_matrix(text_emb)
    try:
        ai = np.fromiter((a_index[tr.cut_id] for tr in trials), dtype=np.int64, count=len(trials))
    except KeyError as e:
        raise KeyError(f"cut {e.args[0]!r} of a trial has no audio embedding") from None
    try:
        ti = np.fromiter((t_index[tr.keyword] for tr in trials), dtype=np.int64, count=len(trials))
    except KeyError as e:
        raise KeyError(f"keyword {e.args[0]!r} of a trial has no text embedding") from None
    out = np.empty(len(trials), dtype=np.float64)
    # Chunks bound the gathered (chunk, d) copies for very long trial lists.
    step = 1 << 16
    for s in range(0, len(trials), step):
        out[s : s + step] = np.einsum("ij,ij->i", a[ai[s : s + step]], t[ti[s : s + step]],
                                      dtype=np.float64)
    return out


def _pad_sequences(seqs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lens = torch.tensor([s.shape[0] for s in seqs], dtype=torch.int64)
    out = torch.zeros(len(seqs), int(lens.max()), seqs[0].shape[1], dtype=torch.float32)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = torch.from_numpy(np.ascontiguousarray(s, dtype=np.float32))
    return out, torch.arange(out.shape[1]).unsqueeze(0) < lens.unsqueeze(1)


def detector_probabilities(model: KwsModel, audio: Sequence[np.ndarray],
                           text: Sequence[np.ndarray]) -> np.ndarray:
    """The head's probability of pairs (audio[i], text[i]) of (T, d) frames and (L, d) phoneme
    states: (N,) float64. One padded batch; the caller chooses its size."""
    dev = _device(model)
    a, a_mask = _pad_sequences(audio)
    t, t_mask = _pad_sequences(text)
    with torch.inference_mode():
        p = model.detect(a.to(dev), a_mask.to(dev), t.to(dev), t_mask.to(dev))
    return p.double().cpu().numpy()


def _detector_scores(trials, audio_emb, text_emb, model, batch_size: int) -> np.ndarray:
    for tr in trials:
        if tr.cut_id not in audio_emb:
            raise KeyError(f"cut {tr.cut_id!r} of a trial has no audio embedding")
        if tr.keyword not in text_emb:
            raise KeyError(f"keyword {tr.keyword!r} of a trial has no text embedding")
    out = np.empty(len(trials), dtype=np.float64)
    # Trials of similar audio length share a batch, so little compute goes to padding.
    order = sorted(range(len(trials)), key=lambda i: audio_emb[trials[i].cut_id].shape[0])
    for s in range(0, len(order), max(1, batch_size)):
        idx = order[s : s + batch_size]
        out[idx] = detector_probabilities(model, [audio_emb[trials[i].cut_id] for i in idx],
                                          [text_emb[trials[i].keyword] for i in idx])
    return out


@torch.inference_mode()
def trials_ap(model: KwsModel, cuts: Iterable, trials: Sequence[Trial], tokenizer: Tokenizer,
              mean_norm: bool = True, floor_db: float | None = None) -> float:
    """AP of ``model`` on ``trials`` over ``cuts``, scored as stage 8 scores (each distinct cut
    and keyword embedded once): the dev check of training and of stage 7."""
    from pyadml.score.metrics import average_precision

    audio = embed_cuts(model, cuts, mean_norm=mean_norm, floor_db=floor_db)
    text = embed_texts(model, {t.keyword for t in trials}, tokenizer)
    scores = score_trials(trials, audio, text, model=model)
    return float(average_precision(scores, np.array([t.label for t in trials])))
