"""Map-style dataset turning a batch of cut ids into padded fbank and phone tensors."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.utils.data

import pyadml.data.augment  # noqa: F401  lhotse must know our transforms to read augmented cuts
from pyadml.data.cuts import is_span
from pyadml.data.text_negatives import NearMissTexts, check_text_negatives
from pyadml.fileio import write_lines_atomic
from pyadml.score.floor import check_floor_db, floor_features
from pyadml.text import KeywordError, Tokenizer


def mean_normalize(feats: np.ndarray) -> np.ndarray:
    """Subtract the per-utterance mean over frames (axis 0) from (T, D) features."""
    feats = np.asarray(feats)
    # Mean in float64: a float32 sum over many frames drifts by more than the tests allow.
    return (feats - feats.mean(axis=0, dtype=np.float64, keepdims=True)).astype(np.float32)


def load_features(cut) -> np.ndarray:
    """``cut.load_features()``; a damaged archive is an error naming the cut and the file
    (lilcom alone says "Length of string was too short")."""
    try:
        return cut.load_features()
    except Exception as e:
        feats = getattr(cut, "features", None)
        where = f"{feats.storage_path} ({feats.storage_key})" if feats is not None else "no features"
        raise ValueError(f"cut {cut.id}: cannot load its features from {where}: "
                         f"{type(e).__name__}: {e}") from None


class KeywordDataset(torch.utils.data.Dataset):
    """``ds[cut_ids]`` -> one padded batch, for a DataLoader with ``batch_size=None`` whose
    sampler yields lists of cut ids (``KeywordBatchSampler``).

    Batch keys: ``feats`` (B, T_max, D) float32 mean-normalised and zero-padded, ``feat_lens``,
    ``phones`` (B, L_max) int64 padded with 0 (``<eps>``), ``phone_lens``, ``keyword_ids``
    (-1 for keywords outside ``keyword_ids`` and for every multi-word span cut, whose text is
    no keyword class even when it happens to equal one: the keyword loss leaves -1 rows out),
    ``cut_ids`` and ``texts``; with ``speaker_ids`` (speaker -> id) also ``speaker_ids`` (-1
    for a speaker outside it); with ``text_negatives`` (``{count, pool}``, count > 0) also
    ``neg_texts``, ``neg_phones`` and ``neg_phone_lens`` (``near_misses``).

    Added context (stage 3, ``cut.custom["aug"]["context"]["pad"]`` = seconds before and after
    the word) is cropped per batch so that no row is longer than the longest row without its
    context plus ``context_growth`` seconds: context fills the padding a batch has anyway
    instead of making every batch as long as its longest context. Which frames go is drawn
    from the batch's cut ids and ``seed`` (the same batch gives the same crop, so a resumed
    epoch is reproduced). ``context_growth=None`` keeps all context.

    A keyword's phone ids come from ``tokenizer`` (pyadml.text.Tokenizer: lexicon, else the
    offline G2P), the same route that scoring and users' keywords take.
    """

    def __init__(
        self,
        cuts: Iterable,
        tokenizer: Tokenizer,
        keyword_ids: Mapping[str, int] | None = None,
        pad_multiple: int = 1,
        speaker_ids: Mapping[str, int] | None = None,
        context_growth: float | None = 0.0,
        seed: int = 0,
        frame_shift: float = 0.01,
        spec_augment: Mapping | None = None,
        text_negatives: Mapping | None = None,
        vtlp: Mapping | None = None,
        tempo: Mapping | None = None,
        floor_db: float | None = None,
    ):
        # Padded lengths rounded up to a multiple: fewer distinct shapes, so CPU kernels
        # (oneDNN primitives) are reused rather than built and cached for every batch.
        self.pad_multiple = max(1, int(pad_multiple))
        # Indexing a (lazy) CutSet by id is a linear scan: index it once.
        self.cuts = {}
        for cut in cuts:
            if cut.id in self.cuts:
                raise ValueError(f"duplicate cut id {cut.id}")
            self.cuts[cut.id] = cut
        self.tokenizer = tokenizer
        self.keyword_ids = dict(keyword_ids or {})
        self.speaker_ids = dict(speaker_ids) if speaker_ids else None
        self.context_growth = context_growth
        self.seed = int(seed)
        self.frame_shift = float(frame_shift)
        if spec_augment:
            bad = {k: v for k, v in spec_augment.items() if v < 0 or (k == "prob" and v > 1)}
            if bad:
                raise ValueError(f"spec_augment: {bad} out of range (prob in [0, 1], counts and "
                                 "widths >= 0)")
        self.spec_augment = dict(spec_augment) if spec_augment and spec_augment.get("prob") else None
        self.vtlp = check_vtlp(vtlp) if vtlp and vtlp.get("prob") else None
        self.tempo = check_tempo(tempo) if tempo and tempo.get("prob") else None
        self.floor_db = check_floor_db(floor_db, "floor_db")
        # Near-miss texts of each distinct batch text (loss.text_negatives; count 0: none),
        # from the words of the training texts.
        self.text_negatives = None
        if text_negatives and text_negatives.get("count"):
            tn = check_text_negatives(text_negatives)
            words = {w for c in self.cuts.values() for w in c.supervisions[0].text.split()}
            self.text_negatives = (NearMissTexts(words, self.phone_ids, tn["pool"]), tn["count"])

    def __len__(self) -> int:
        return len(self.cuts)

    def phone_ids(self, text: str, cut_id: str | None = None) -> list[int]:
        """Phone ids of a keyword or phrase (the tokenizer caches them per text)."""
        try:
            return self.tokenizer.encode(text)
        except KeywordError as e:
            raise KeywordError(f"cut {cut_id}: {e}" if cut_id else str(e)) from None

    def __getitem__(self, cut_ids: Sequence[str]) -> dict:
        if isinstance(cut_ids, str):
            raise TypeError("KeywordDataset is indexed by a list of cut ids, not a single id")
        cut_ids = list(cut_ids)
        cuts = []
        for cid in cut_ids:
            try:
                cuts.append(self.cuts[cid])
            except KeyError:
                raise KeyError(f"cut {cid!r} is not in the dataset") from None
        texts = [c.supervisions[0].text for c in cuts]
        feats = [load_features(c) for c in cuts]
        if self.tempo:
            feats = tempo(feats, [context_frames(c, len(f), self.frame_shift)
                                  for c, f in zip(cuts, feats)],
                          self.tempo, batch_rng(self.seed, cut_ids, 4))
        if self.context_growth is not None:
            feats = self.crop_context(cuts, feats)
        # The floor and mean normalisation after the crop: over the frames the model sees, as
        # in scoring.
        feats = [mean_normalize(floor_features(f, self.floor_db)) for f in feats]
        if self.vtlp:
            feats = vtlp(feats, self.vtlp, batch_rng(self.seed, cut_ids, 3))
        if self.spec_augment:
            feats = spec_augment(feats, self.spec_augment, batch_rng(self.seed, cut_ids, 1))
        phones = [self.phone_ids(t, c.id) for t, c in zip(texts, cuts)]

        B = len(cuts)
        feat_lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
        dim = feats[0].shape[1] if B else 0
        t_max = int(feat_lens.max()) if B else 0
        t_max = -(-t_max // self.pad_multiple) * self.pad_multiple
        feats_pad = torch.zeros(B, t_max, dim, dtype=torch.float32)
        for i, f in enumerate(feats):
            feats_pad[i, :f.shape[0]] = torch.from_numpy(f)
        phones_pad, phone_lens = pad_ids(phones)
        batch = {
            "feats": feats_pad,
            "feat_lens": feat_lens,
            "phones": phones_pad,
            "phone_lens": phone_lens,
            "keyword_ids": torch.tensor(
                [-1 if is_span(c) else self.keyword_ids.get(t, -1) for t, c in zip(texts, cuts)],
                dtype=torch.int64,
            ),
            "cut_ids": cut_ids,
            "texts": texts,
        }
        if self.speaker_ids is not None:
            batch["speaker_ids"] = torch.tensor(
                [self.speaker_ids.get(c.supervisions[0].speaker, -1) for c in cuts],
                dtype=torch.int64)
        if self.text_negatives:
            batch.update(self.near_misses(texts, cut_ids))
        return batch

    def near_misses(self, texts: Sequence[str], cut_ids: Sequence[str]) -> dict:
        """``neg_texts``: the batch's distinct texts, sorted; ``neg_phones`` (len(neg_texts) *
        count, L) padded: rows k*count .. k*count + count - 1 are near misses of
        ``neg_texts[k]``, drawn from the batch's cut ids (a resumed epoch is reproduced)."""
        near, count = self.text_negatives
        rng = batch_rng(self.seed, cut_ids, 2)
        owners = sorted(set(texts))
        seqs = [self.phone_ids(near.near_miss(t, rng)) for t in owners for _ in range(count)]
        neg_phones, neg_lens = pad_ids(seqs)
        return {"neg_texts": owners, "neg_phones": neg_phones, "neg_phone_lens": neg_lens}

    def crop_context(self, cuts: Sequence, feats: list[np.ndarray]) -> list[np.ndarray]:
        """Crop added context so that rows are at most the batch's longest core (a row
        without its context) plus ``context_growth``; the kept window is placed at random
        around the core, so the context left is split at random between the two sides."""
        pads = [context_frames(c, len(f), self.frame_shift) for c, f in zip(cuts, feats)]
        if not any(a or b for a, b in pads):
            return feats
        cores = [len(f) - a - b for f, (a, b) in zip(feats, pads)]
        limit = max(cores) + int(round(self.context_growth / self.frame_shift))
        rng = None
        out = []
        for f, (a, b), core in zip(feats, pads, cores):
            if len(f) <= limit:
                out.append(f)
                continue
            if rng is None:
                rng = batch_rng(self.seed, [c.id for c in cuts])
            # Window of `limit` frames holding the core: its start s in [a + core - limit, a],
            # clipped to the features.
            lo, hi = max(0, a + core - limit), min(a, len(f) - limit)
            s = int(rng.integers(lo, hi + 1))
            out.append(f[s:s + limit])
        return out


def pad_ids(seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, L_max) int64 padded with 0 (``<eps>``), and the (N,) lengths."""
    lens = torch.tensor([len(p) for p in seqs], dtype=torch.int64)
    out = torch.zeros(len(seqs), int(lens.max()) if len(seqs) else 0, dtype=torch.int64)
    for i, p in enumerate(seqs):
        out[i, :len(p)] = torch.tensor(p, dtype=torch.int64)
    return out, lens


def batch_rng(seed: int, cut_ids: Sequence[str], stream: int | None = None) -> np.random.Generator:
    """A generator drawn from the batch's cut ids: the same batch gets the same draws, so a
    resumed epoch is reproduced. ``stream`` separates independent uses."""
    key = zlib.crc32("\n".join(cut_ids).encode())
    return np.random.default_rng([int(seed), key] + ([] if stream is None else [int(stream)]))


def spec_augment(feats: Sequence[np.ndarray], cfg: Mapping, rng: np.random.Generator) -> list[np.ndarray]:
    """SpecAugment's masking (Park et al. 2019, without time warping) on mean-normalised
    (T, D) features: with probability ``prob`` a row gets ``freq_masks`` bands of 0..freq_width
    bins and ``time_masks`` spans of 0..time_width frames set to 0 (the mean after
    normalisation). A time span never exceeds a fifth of the row, so short words keep most of
    their frames."""
    out = []
    for f in feats:
        if rng.random() >= cfg["prob"]:
            out.append(f)
            continue
        f = f.copy()
        t, d = f.shape
        for _ in range(int(cfg["freq_masks"])):
            w = int(rng.integers(0, min(int(cfg["freq_width"]), d) + 1))
            s = int(rng.integers(0, d - w + 1))
            f[:, s:s + w] = 0.0
        for _ in range(int(cfg["time_masks"])):
            w = int(rng.integers(0, min(int(cfg["time_width"]), t // 5) + 1))
            s = int(rng.integers(0, t - w + 1))
            f[s:s + w] = 0.0
        out.append(f)
    return out


def _mel(f):
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def vtlp_source_bins(alpha: float, num_bins: int, low_freq: float, high_freq: float) -> np.ndarray:
    """Fractional source bin of each of ``num_bins`` log-mel bins under vocal tract length
    perturbation by ``alpha`` (Jaitly and Hinton 2013). The frequency warp is Kaldi's shape:
    W(f) = alpha * f up to f0 = 0.8 * high_freq / max(alpha, 1), then linear to W(high_freq) =
    high_freq. Target bin j (centre c_j, the mel filterbank's, evenly spaced in mel between
    low_freq and high_freq) takes the energy at W^-1(c_j), read between the two nearest source
    centres; alpha > 1 moves spectral peaks up (a shorter vocal tract)."""
    edges = np.linspace(_mel(low_freq), _mel(high_freq), num_bins + 2)
    centres = 700.0 * np.expm1(edges[1:-1] / 1127.0)
    f0 = 0.8 * high_freq / max(alpha, 1.0)
    src = np.where(centres <= alpha * f0, centres / alpha,
                   f0 + (centres - alpha * f0) * (high_freq - f0) / (high_freq - alpha * f0))
    return np.interp(_mel(src), edges[1:-1], np.arange(num_bins, dtype=np.float64))


def vtlp(feats: Sequence[np.ndarray], cfg: Mapping, rng: np.random.Generator) -> list[np.ndarray]:
    """With probability ``prob`` a row's (T, D) log-mel features are warped by ``alpha`` ~
    U[low, high] (``warp_mel``): another speaker's formants from the same words."""
    out = []
    for f in feats:
        if rng.random() >= cfg["prob"]:
            out.append(f)
            continue
        alpha = float(rng.uniform(cfg["low"], cfg["high"]))
        out.append(warp_mel(f, alpha, cfg["low_freq"], cfg["high_freq"]))
    return out


def warp_mel(f: np.ndarray, alpha: float, low_freq: float, high_freq: float) -> np.ndarray:
    """(T, D) log-mel features with their spectral peaks moved by ``alpha`` (``vtlp_source_bins``:
    > 1 up, as from a shorter vocal tract; linear interpolation between bins, the edge bins
    held). Linear in ``f``, so it commutes with mean normalisation."""
    src = vtlp_source_bins(alpha, f.shape[1], low_freq, high_freq)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, f.shape[1] - 1)
    w = (src - i0).astype(f.dtype)
    return f[:, i0] * (1 - w) + f[:, i1] * w


def stretch_frames(f: np.ndarray, n: int) -> np.ndarray:
    """(T, D) features resampled to ``n`` frames by linear interpolation in time: frame i reads
    source position i * (T - 1) / (n - 1), so the first and last frames are kept."""
    t = f.shape[0]
    if n == t or t < 2:
        return f
    pos = np.linspace(0.0, t - 1.0, n)
    i0 = np.minimum(np.floor(pos).astype(np.int64), t - 2)
    w = (pos - i0).astype(f.dtype)[:, None]
    return f[i0] * (1 - w) + f[i0 + 1] * w


def tempo(feats: Sequence[np.ndarray], pads: Sequence[tuple[int, int]], cfg: Mapping,
          rng: np.random.Generator) -> list[np.ndarray]:
    """Speaking-rate perturbation of the word, pitch and formants unchanged: with probability
    ``prob`` a row's core (its frames without stage 3's added context, ``pads`` = (lead, trail)
    frames) is resampled in time by a rate ~ U[low, high] (< 1 slower: 1/rate as many frames).
    Real speakers say a keyword 25-60% slower than the synthetic voices (RESULTS.md, "Windows
    for real speakers"). A core never grows past the batch's longest core, so the batch is no
    longer than without it (the longest words are stretched least)."""
    cores = [len(f) - a - b for f, (a, b) in zip(feats, pads)]
    cap = max(cores, default=0)
    out = []
    for f, (a, b), core in zip(feats, pads, cores):
        hit, rate = rng.random() < cfg["prob"], float(rng.uniform(cfg["low"], cfg["high"]))
        n = min(cap, int(round(core / rate)))
        if not hit or n <= core:
            out.append(f)
            continue
        out.append(np.concatenate([f[:a], stretch_frames(f[a:a + core], n), f[a + core:]]))
    return out


def _check_augment(name: str, cfg: Mapping, high_max: float | None = None, range_note: str = "",
                   extra: Sequence[str] = ()) -> dict:
    """``cfg`` (prob, low, high), or ValueError naming ``name`` and the bad keys."""
    bad = []
    if not 0.0 <= cfg["prob"] <= 1.0:
        bad.append(f"prob {cfg['prob']} (expected 0-1)")
    if not (0.0 < cfg["low"] <= cfg["high"] and (high_max is None or cfg["high"] <= high_max)):
        bound = "" if high_max is None else f" <= {high_max:g}"
        bad.append(f"low {cfg['low']} / high {cfg['high']} (expected 0 < low <= high{bound}"
                   f"{range_note})")
    bad += list(extra)
    if bad:
        raise ValueError(f"{name}: " + "; ".join(bad))
    return dict(cfg)


def check_tempo(cfg: Mapping) -> dict:
    """The ``tempo`` training config, or ValueError naming the bad keys."""
    return _check_augment("tempo", cfg, high_max=1.0, range_note=": speaking rates, < 1 slower")


def check_vtlp(cfg: Mapping) -> dict:
    """The ``vtlp`` training config, or ValueError naming the bad keys."""
    extra = []
    if not 0.0 <= cfg["low_freq"] < cfg["high_freq"]:
        extra.append(f"low_freq {cfg['low_freq']} / high_freq {cfg['high_freq']} (expected "
                     "0 <= low_freq < high_freq, the fbank's mel range in Hz)")
    return _check_augment("vtlp", cfg, extra=extra)


def context_frames(cut, num_frames: int, frame_shift: float = 0.01) -> tuple[int, int]:
    """Frames of added context (stage 3's ``custom["aug"]["context"]["pad"]``) before and
    after the word, (0, 0) for a cut without; never more than the cut's frames allow."""
    ctx = ((getattr(cut, "custom", None) or {}).get("aug") or {}).get("context")
    if not ctx:
        return 0, 0
    lead, trail = (max(0, int(t / frame_shift)) for t in ctx["pad"])
    lead = min(lead, num_frames - 1)
    trail = min(trail, num_frames - 1 - lead)
    return lead, trail


def write_keyword_ids(path: str | os.PathLike, words: Iterable[str]) -> dict[str, int]:
    """Write ``word id`` lines, ids 0..N-1 in sorted word order; return the map."""
    words = sorted(set(words))
    for w in words:
        if not w or w != w.strip() or "\n" in w:
            raise ValueError(f"keyword {w!r} is empty or has surrounding whitespace")
    write_lines_atomic(path, (f"{w} {i}" for i, w in enumerate(words)))
    return {w: i for i, w in enumerate(words)}


def read_keyword_ids(path: str | os.PathLike) -> dict[str, int]:
    """Read keywords.txt; the id is the last field, so a phrase may hold spaces."""
    ids: dict[str, int] = {}
    seen: set[int] = set()
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.rsplit(maxsplit=1)
        ok_id = len(parts) == 2 and parts[1].isascii() and parts[1].isdigit()
        if not ok_id or line != line.strip():
            raise ValueError(f"{path}:{n}: expected '<keyword> <id>', got {line!r}")
        word, i = parts[0], int(parts[1])
        if word in ids:
            raise ValueError(f"{path}:{n}: keyword {word!r} listed twice")
        if i in seen:
            raise ValueError(f"{path}:{n}: id {i} used twice")
        ids[word] = i
        seen.add(i)
    if seen != set(range(len(ids))):
        raise ValueError(f"{path}: ids must run 0..{len(ids) - 1}")
    return ids
