"""KeywordSpotter: text-enrolled keyword detection in clips, long recordings and live streams.

How a recording is searched (the same code path offline and streaming, so both give the same
detections):

1. fbank once for the whole signal (pyadml.spot.features, incremental), frames sliced into
   windows; each window is mean-normalised on its own, as training normalised each word cut
   (with ``floor_db``, floored on its own first: pyadml.score.floor).
2. A keyword's window is ``window_scale`` (default 1.5) times its expected duration,
   ``EDGE_SECONDS + SECONDS_PER_PHONE * phones`` (pyadml.spot.calibrate, fitted on synthetic
   words), rounded to a geometric grid of lengths (ratio 2^(1/4)) so keywords of similar
   length share one audio embedding per position. Windows start every ``hop``. Why 1.5: real
   speakers say a wake word 25-60% slower than the synthetic voices, and the model was trained
   on words with silence or noise around them; the windows of the bare synthetic duration cut
   real words short (RESULTS.md, "Keyword spotting in continuous speech").
3. Score = cosine(window embedding, keyword embedding), or for a detector model (final.pt's
   scorer phonmatchnet | cmcd) the head's probability of (window frames, keyword phoneme
   states), one head call per (window, keyword). A detection is a local maximum of the
   raw score over positions (non-maximum suppression in time, one position of look-ahead)
   whose smoothed score (mean over the peak and its two neighbours) reaches the keyword's
   threshold; no detection of the same keyword starts within ``refractory`` seconds of the
   previous one (by default the keyword's window length: one keyword's detections never
   overlap).
4. Audio shorter than a window is scored as one window of its true length (the encoder takes
   any length), never padded with fake frames.
5. ``scan_step`` > 1 (optional) embeds every position only near a threshold: see ``_Search``.

Streaming latency: a detection is emitted once the window one hop after its peak is scored,
i.e. one hop plus the fbank look-ahead (and the wait for the chunk) after the detected window
ends.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from pyadml.score.floor import FloorError, floor_features, model_floor_db
from pyadml.text import KeywordError, normalize_text

from . import calibrate
from .audio import AudioInput, SpotError, StreamResampler, file_blocks, load_audio, to_mono
from .backend import embed_clips, open_backend
from .features import OnlineFeatures, compute_fbank, feature_options

DEFAULT_THRESHOLD = 0.5
# With TTS enrolment the cosines with a keyword's query run higher: stage 9's threshold at 1 false
# alarm per hour was 0.57-0.59 on three default models (0.49-0.51 with the text alone, whence 0.5).
DEFAULT_THRESHOLD_TTS = 0.57
WINDOW_SCALE = 1.5
# A comma between a digit and three more is a thousands separator ("$5,000"), not a keyword
# boundary (enroll's comma-separated string, detect's --keywords and --threshold).
KEYWORD_COMMA = re.compile(r"(?<!\d),|,(?!\d{3}(?!\d))")
# A clip scored whole needs this much audio, as score_pairs (pyadml.score.pairs.MIN_SECONDS):
# mean normalisation leaves almost nothing of fewer frames, and every keyword then gets the
# same score whatever was said.
CLIP_MIN_SECONDS = 0.1


@dataclass(frozen=True)
class Detection:
    keyword: str
    start: float  # seconds from the start of the audio
    end: float
    score: float
    # Audio seconds consumed when the detection was emitted (streaming latency); not compared.
    emitted: float = field(default=0.0, compare=False)

    def __iter__(self):
        """(keyword, start, end, score), as the README shows detect's result: ``for kw, t0,
        t1, score in sp.detect(...)``."""
        return iter((self.keyword, self.start, self.end, self.score))


def window_grid(frames: int) -> int:
    """Nearest length on the grid round(16 * 2^(i/4)) frames, at least 16 (0.16 s)."""
    i = max(0, round(4 * math.log2(max(frames, 1) / 16)))
    return int(round(16 * 2 ** (i / 4)))


def _normalized(x: np.ndarray) -> np.ndarray:
    # Same eps as torch's cosine_similarity (pyadml.score.embed): a zero vector scores 0.
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


class _KeywordState:
    """Peak picking, smoothing and refractory time of one keyword over window positions.

    Position j is a peak when its raw score is a local maximum (>= the previous, > the next:
    non-maximum suppression in time); its score is the mean of the raw scores at j-1, j, j+1
    (``smooth`` 3) or the raw score (``smooth`` 1). Both need only position j+1, so smoothing
    adds no latency; an isolated one-window spike is damped to a third.
    """

    def __init__(self, smooth: int):
        self.prev = None   # (position, raw) at j-1
        self.cand = None   # (position, raw) at j, waiting for j+1
        self.last_start = -math.inf
        self.smooth = smooth

    def push(self, j: int, r: float):
        """Raw score of position j; returns a confirmed peak (position, score) or None."""
        out = self._confirm(r)
        self.prev, self.cand = self.cand, (j, r)
        return out

    def _confirm(self, r_next):
        if self.cand is None:
            return None
        j, r = self.cand
        r_prev = None if self.prev is None else self.prev[1]
        if (r_prev is not None and r < r_prev) or (r_next is not None and r <= r_next):
            return None
        if self.smooth == 1:
            return j, r
        near = [v for v in (r_prev, r, r_next) if v is not None]
        return j, sum(near) / len(near)

    def flush(self):
        out = self._confirm(None)
        self.prev = self.cand = None
        return out


class _Bucket:
    def __init__(self, frames: int, keywords: list[int]):
        self.frames = frames
        self.keywords = keywords
        self.next_pos = 0      # next position not yet pushed to the keyword states
        self.anchor = None     # (position, raw scores) of the last anchor pushed


class _Search:
    """The stateful search over a stream of fbank frames (used by detect and stream alike).

    With ``scan_step`` c > 1 only every c-th position (an anchor) is always embedded; the
    positions between two anchors are embedded only when either anchor scores within ``margin``
    of a keyword's threshold, and otherwise get the anchors' linear interpolation (far below
    every threshold, so they cannot fire). Offline and streaming make the same choices.
    """

    def __init__(self, spotter: "KeywordSpotter", thresholds: np.ndarray):
        self.sp = spotter
        self.thr = thresholds
        kw = spotter.keywords
        self.detector = getattr(spotter.backend, "scorer", "cosine") != "cosine"
        if self.detector:  # phoneme-state sequences, scored by the head with each window
            self.text_states = [spotter._text_emb[k] for k in kw]
        else:
            self.text = _normalized(np.stack([spotter._text_emb[k] for k in kw]))
        buckets: dict[int, list[int]] = {}
        for i, k in enumerate(kw):
            buckets.setdefault(spotter.window_frames(k), []).append(i)
        self.buckets = [_Bucket(w, idx) for w, idx in sorted(buckets.items())]
        self.states = [_KeywordState(spotter.smooth) for _ in kw]
        # Per keyword, looked up for every peak: computed once (they tokenize the keyword).
        self.window = [spotter.window_frames(k) for k in kw]
        self.refractory = [spotter.refractory_of(k) for k in kw]
        self.buf = np.zeros((0, spotter.feature_dim), np.float32)
        self.buf_start = 0   # absolute frame index of buf[0]
        self.num_frames = 0
        self.emitted_at = 0.0
        self.embedded = 0    # windows embedded (the cost)
        self.cache: dict[int, np.ndarray] | None = None  # precompute(): bucket frames -> scores
        self.positions = 0   # window positions pushed

    def feed(self, frames: np.ndarray) -> list[Detection]:
        if frames.shape[0]:
            self.buf = np.concatenate([self.buf, frames]) if self.buf.shape[0] else frames
            self.num_frames += frames.shape[0]
        out = []
        c = self.sp.scan_step
        for b in self.buckets:
            last = (self.num_frames - b.frames) // self.sp.hop_frames  # last ready position
            first = b.next_pos if b.anchor is None else b.anchor[0] + c
            anchors = list(range(-(-first // c) * c, last + 1, c))
            if anchors:
                out += self._advance(b, anchors)
        self._trim()
        return sorted(out, key=lambda d: (d.start, d.keyword))

    def _advance(self, b: _Bucket, anchors: list[int]) -> list[Detection]:
        scores = dict(zip(anchors, self._embed(b, anchors, b.frames)))
        prev = b.anchor
        refine, spans = [], []
        for a in anchors:
            lo = b.next_pos if prev is None else prev[0] + 1
            between = list(range(lo, a))
            if between:
                near = np.any(scores[a] >= self.thr[b.keywords] - self.sp.margin)
                if prev is not None:
                    near = near or np.any(prev[1] >= self.thr[b.keywords] - self.sp.margin)
                if near or prev is None:
                    refine += between
                else:
                    spans.append((prev, (a, scores[a])))
            prev = (a, scores[a])
        if refine:
            scores.update(zip(refine, self._embed(b, refine, b.frames)))
        for (pa, ra), (pb, rb) in spans:
            for j in range(pa + 1, pb):
                scores[j] = ra + (rb - ra) * (j - pa) / (pb - pa)
        b.anchor = prev
        return self._push(b, sorted(scores), scores, b.frames)

    def finish(self) -> list[Detection]:
        if self.num_frames == 0:
            raise SpotError("audio is shorter than one feature frame "
                            f"({1000 * self.sp.frame_shift:.0f} ms); nothing to score")
        out = []
        for b in self.buckets:
            last = (self.num_frames - b.frames) // self.sp.hop_frames
            if last < 0:
                # Shorter than this bucket's window: one window of the true length.
                r = self._embed(b, [0], self.num_frames)
                out += self._push(b, [0], {0: r[0]}, self.num_frames)
            elif b.next_pos <= last:
                # Positions after the last anchor: no anchor to the right, embed them all.
                pos = list(range(b.next_pos, last + 1))
                out += self._push(b, pos, dict(zip(pos, self._embed(b, pos, b.frames))), b.frames)
        for i, st in enumerate(self.states):
            peak = st.flush()
            if peak is not None:
                d = self._detection(i, *peak)
                if d is not None:
                    out.append(d)
        return sorted(out, key=lambda d: (d.start, d.keyword))

    def _trim(self):
        keep_from = min(b.next_pos for b in self.buckets) * self.sp.hop_frames
        drop = keep_from - self.buf_start
        if drop > 0:
            self.buf = self.buf[drop:]
            self.buf_start = keep_from

    def precompute(self, feats: np.ndarray):
        """Score every position of every bucket over ``feats`` (the whole stream's frames) in
        batches of ``batch_size``, for ``_embed`` to look up: a stream fed in small chunks then
        makes the same choices at the same times, without embedding one window per call."""
        self.cache = {}
        for b in self.buckets:
            last = (feats.shape[0] - b.frames) // self.sp.hop_frames
            if last >= 0:
                self.cache[b.frames] = self._score(feats, 0, b, list(range(last + 1)), b.frames)

    def _embed(self, b: _Bucket, positions: list[int], length: int) -> np.ndarray:
        """(P, K_b) raw scores (cosine, or detector probability) of the bucket's keywords at
        ``positions``."""
        self.embedded += len(positions)
        if self.cache is not None and length == b.frames:
            return self.cache[b.frames][positions]
        return self._score(self.buf, self.buf_start, b, positions, length)

    def _score(self, buf: np.ndarray, buf_start: int, b: _Bucket, positions: list[int],
               length: int) -> np.ndarray:
        hop, bs = self.sp.hop_frames, self.sp.batch_size
        out = []
        for c in range(0, len(positions), bs):
            pos = positions[c : c + bs]
            starts = np.array(pos) * hop - buf_start
            win = buf[starts[:, None] + np.arange(length)[None, :]]  # (B, W, D)
            win = floor_features(win, self.sp.floor_db)
            # Per-window mean normalisation, float64 mean as pyadml.data.dataset.mean_normalize.
            win = (win - win.mean(axis=1, dtype=np.float64, keepdims=True)).astype(np.float32)
            lens = np.full(len(pos), length, np.int64)
            if self.detector:
                out.append(self.sp.backend.score_windows(
                    win, lens, [self.text_states[i] for i in b.keywords]))
            else:
                emb = _normalized(self.sp.backend.embed_audio(win, lens))
                out.append(self.sp.normalize_scores(emb, emb @ self.text[b.keywords].T))
        return np.concatenate(out)

    def _push(self, b: _Bucket, positions, scores: dict, length: int) -> list[Detection]:
        out = []
        for j in positions:
            for col, i in enumerate(b.keywords):
                peak = self.states[i].push(j, float(scores[j][col]))
                if peak is not None:
                    d = self._detection(i, *peak)
                    if d is not None:
                        out.append(d)
            self.positions += 1
        if positions:
            b.next_pos = max(positions) + 1
        return out

    def _detection(self, i: int, pos: int, score: float):
        if score < self.thr[i]:
            return None
        st = self.states[i]
        shift = self.sp.frame_shift
        start = pos * self.sp.hop_frames * shift
        if start - st.last_start < self.refractory[i] - 1e-9:
            return None
        st.last_start = start
        end = min(start + self.window[i] * shift, self.num_frames * shift)
        return Detection(self.sp.keywords[i], round(start, 3), round(end, 3), score, self.emitted_at)


class KeywordSpotter:
    """Enrol keywords by text, then score clips, detect keywords in recordings or in a stream.

    >>> spotter = KeywordSpotter.load("exp/adml_nomal_mini/final.pt")
    >>> spotter.enroll(["computer", "turn on the light"])
    >>> spotter.detect("kitchen.wav", threshold=0.6)
    [Detection(keyword='computer', start=3.1, end=3.71, score=0.74), ...]

    ``enrol="tts"`` enrols each keyword by its text and by TTS voices speaking it
    (pyadml.score.enrol; ``enrol_voices``, ``enrol_weight``), as ``detect`` does by default; the
    default threshold is then DEFAULT_THRESHOLD_TTS instead of DEFAULT_THRESHOLD.
    """

    def __init__(self, backend, *, threshold: float | None = None, hop: float = 0.1,
                 smooth: int = 3, refractory: float | None = None, batch_size: int = 64,
                 seconds_per_phone: float | None = None, edge_seconds: float | None = None,
                 window_scale: float | None = None, scan_step: int = 1, margin: float = 0.15,
                 cohort: int = 0, cohort_top: int = 20, floor_db: float | None = None,
                 enrol: str | None = "none", enrol_voices=None,
                 enrol_weight: float | None = None):
        self.backend = backend
        try:
            self.floor_db = model_floor_db(backend.features, floor_db)
        except FloorError as e:
            raise SpotError(str(e)) from None
        opts = feature_options(backend.features)
        self.rate = int(opts["sampling_rate"])
        self.frame_shift = float(opts["frame_shift"])
        self.feature_dim = int(opts["num_mel_bins"])
        self.mean_norm = bool(backend.features.get("mean_norm", True))
        if not self.mean_norm:
            raise SpotError("model features have mean_norm false; the spotter normalises each "
                            "window as training normalised each cut and needs mean_norm true")
        self.hop_frames = int(round(hop / self.frame_shift))
        if not 1 <= self.hop_frames <= round(0.1 / self.frame_shift):
            raise SpotError(f"hop must lie in [{self.frame_shift}, 0.1] seconds, got {hop}")
        if abs(hop - self.hop_frames * self.frame_shift) > 1e-6:
            # windows start on feature frames: a hop between two would be rounded unseen
            lo = int(hop / self.frame_shift) * self.frame_shift
            raise SpotError(f"hop must be a multiple of the {self.frame_shift:g} s frame shift, "
                            f"got {hop}; use {lo:g} or {lo + self.frame_shift:g}")
        if smooth not in (1, 3):
            raise SpotError(f"smooth must be 1 (raw scores) or 3 (mean of 3 positions), got {smooth}")
        window_scale = WINDOW_SCALE if window_scale is None else window_scale
        if (refractory is not None and refractory < 0) or batch_size < 1 or window_scale <= 0:
            raise SpotError(f"bad option: refractory={refractory}, batch_size={batch_size}, "
                            f"window_scale={window_scale}")
        if scan_step < 1 or margin < 0:
            raise SpotError(f"scan_step must be >= 1 and margin >= 0, got {scan_step}, {margin}")
        if cohort < 0 or (cohort and not 1 <= cohort_top <= cohort):
            raise SpotError(f"cohort must be >= 0 and cohort_top in [1, cohort], got {cohort}, "
                            f"{cohort_top}")
        if cohort and getattr(backend, "scorer", "cosine") != "cosine":
            raise SpotError(f"cohort normalisation needs a cosine model; this one scores with "
                            f"its {backend.scorer} detector head")
        self.cohort, self.cohort_top = int(cohort), int(cohort_top)
        self._cohort_emb = None
        self.scan_step = int(scan_step)
        self.margin = float(margin)
        self.smooth = int(smooth)
        self.refractory = None if refractory is None else float(refractory)
        self.batch_size = int(batch_size)
        self.per_phone = calibrate.SECONDS_PER_PHONE if seconds_per_phone is None else seconds_per_phone
        self.edge = calibrate.EDGE_SECONDS if edge_seconds is None else edge_seconds
        self.window_scale = float(window_scale)
        self.keywords: list[str] = []
        self.thresholds: dict[str, float] = {}
        self._text_emb: dict[str, np.ndarray] = {}
        self.enrolment = self._enrolment(enrol, enrol_voices, enrol_weight)
        self._threshold_given = threshold is not None
        if threshold is None:  # the default operating point of this enrolment
            threshold = DEFAULT_THRESHOLD if self.enrolment is None else DEFAULT_THRESHOLD_TTS
        self.default_threshold = self._check_threshold(threshold, "threshold")

    def _enrolment(self, enrol: str | None, voices, weight):
        """TTS enrolment (pyadml.score.enrol): each keyword's query mixes its text embedding
        with its synthesised clips' embeddings, computed as ``score`` computes a clip's.
        ``enrol`` None: detect's default (DETECT_ENROL) where the model allows it."""
        from pyadml.score.enrol import (DETECT_ENROL, ENROL_WEIGHT, EnrolError, Enrolment,
                                        model_enrol, spoken_by)

        try:
            scorer = getattr(self.backend, "scorer", "cosine")
            if model_enrol(scorer, enrol, DETECT_ENROL) == "none":
                return None
            if self.rate != 16000:
                raise EnrolError(f"TTS enrolment speaks at 16 kHz; this model's features are "
                                 f"at {self.rate} Hz")

            return Enrolment(lambda feats: embed_clips(self.backend, feats, self.batch_size),
                             self._clip_features, voices,
                             ENROL_WEIGHT if weight is None else weight,
                             spoken=spoken_by(self.tokenizer))
        except EnrolError as e:
            raise SpotError(str(e)) from None

    @classmethod
    def load(cls, path: str | os.PathLike, backend: str | None = None,
             num_threads: int | None = None, **options) -> "KeywordSpotter":
        """``final.pt`` (torch) or a directory written by pyadml.bin.export_onnx (onnx).
        ``num_threads``: the session's threads (onnx); with torch, torch.set_num_threads, which
        is the whole process's."""
        return cls(open_backend(path, backend, num_threads), **options)

    @property
    def tokenizer(self):
        return self.backend.tokenizer

    # ------------------------------------------------------------------ enrolment
    def _check_threshold(self, t, what: str) -> float:
        try:
            t = float(t)
        except (TypeError, ValueError):
            raise SpotError(f"{what} must be a number, got {t!r}") from None
        bound, kind = (2, "a cosine less the cohort mean") if self.cohort else (1, "a cosine")
        if not -bound <= t <= bound:
            raise SpotError(f"{what} must lie in [-{bound}, {bound}] ({kind}), got {t}")
        return t

    def enroll(self, keywords: Sequence[str] | str, threshold: float | Mapping | None = None):
        """Add keywords by text (a list, or one comma-separated string, a number's thousands
        separator kept as detect's --keywords keeps it); returns self. Every
        keyword is checked before any is added; text embeddings are cached per text."""
        if isinstance(keywords, str):
            keywords = KEYWORD_COMMA.split(keywords)
        given = list(keywords)
        keywords = [k.strip() if isinstance(k, str) else k for k in given]
        if not keywords:
            raise SpotError("no keywords given: enroll at least one keyword")
        ids = {}
        for k, typed in zip(keywords, given):
            if not isinstance(k, str) or not k:  # named as typed: ' ' rather than ''
                raise SpotError(f"keyword {typed!r} is empty or not text")
            try:
                ids[k] = self.tokenizer.encode(k)
            except KeywordError as e:
                raise SpotError(str(e)) from None
        # 'computer' beside 'Computer' (or 'computer!') is one query under two names: every
        # detection of it would be reported twice.
        spelled: dict[tuple[str, ...], str] = {}
        for k in [*self.keywords, *ids]:
            words = tuple(normalize_text(k))
            first = spelled.setdefault(words, k)
            if first != k:
                raise SpotError(f"keywords {first!r} and {k!r} are the same words "
                                f"('{' '.join(words)}'); give each keyword once, or each "
                                f"detection of it is reported twice")
        thr = {}
        if isinstance(threshold, Mapping):
            # As detect refuses them: a key spelt otherwise ('Computer') would leave its keyword
            # at the default threshold, silently. An enrolled keyword's key sets its threshold.
            unknown = set(threshold) - set(ids) - set(self.keywords)
            if unknown:
                raise SpotError(f"threshold given for keyword(s) not enrolled: {sorted(unknown)} "
                                f"(keywords: {list(dict.fromkeys([*self.keywords, *ids]))})")
            thr.update((k, self._check_threshold(t, f"threshold of {k!r}"))
                       for k, t in threshold.items() if k not in ids and t is not None)
        defaulted = set()  # keywords at the spotter's default threshold, none given for them
        for k in ids:
            t = threshold.get(k) if isinstance(threshold, Mapping) else threshold
            if t is None:
                defaulted.add(k)
            thr[k] = self.default_threshold if t is None else self._check_threshold(t, f"threshold of {k!r}")
        new = [k for k in ids if k not in self._text_emb]
        if new:
            emb = self.backend.embed_phones([ids[k] for k in new])
            if getattr(self.backend, "scorer", "cosine") == "cosine":
                emb = np.asarray(emb, np.float32)
            # A detector's keywords are (L, d) phoneme-state sequences (one array each).
            new_emb = dict(zip(new, emb))
            if self.enrolment is not None:
                from pyadml.score.enrol import EnrolError

                try:
                    new_emb = self.enrolment.queries(new_emb)
                except EnrolError as e:
                    raise SpotError(str(e)) from None
            self._text_emb.update(new_emb)
        if self.enrolment is not None and not self._threshold_given:
            # A keyword no voice could speak is queried by its text alone, whose cosines run
            # lower: at the TTS default it would be missed where the text-only default fires.
            # A threshold the user gave is kept.
            for k in defaulted & self.enrolment.text_only:
                thr[k] = DEFAULT_THRESHOLD
        for k in ids:
            if k not in self.keywords:
                self.keywords.append(k)
        self.thresholds.update(thr)
        if self.cohort:
            self._cohort_emb = _normalized(np.asarray(self.backend.embed_phones(
                [self.tokenizer.encode(w) for w in self.cohort_words()]), np.float32))
        return self

    def cohort_words(self) -> list[str]:
        """``cohort`` lexicon words of 2+ phones that no enrolled keyword contains (seeded)."""
        taken = {w for k in self.keywords for w in self.tokenizer.words(k)}
        pool = sorted(w for w, p in self.tokenizer.lexicon.items()
                      if w not in taken and len(p) >= 2 and w.isalpha())
        if len(pool) < self.cohort:
            raise SpotError(f"cohort of {self.cohort} words asked, the lexicon has {len(pool)}")
        rng = np.random.default_rng(0)
        return [pool[i] for i in sorted(rng.choice(len(pool), self.cohort, replace=False))]

    def normalize_scores(self, emb: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Cohort normalisation (``cohort`` > 0): each window's cosines less the mean of its
        ``cohort_top`` best cosines with the cohort words' texts, so that speech which resembles
        every text (a false alarm's usual cause) scores low; as adaptive score normalisation
        in speaker verification, with impostor texts in place of impostor speakers."""
        if self._cohort_emb is None:
            return scores
        c = emb @ self._cohort_emb.T
        top = np.partition(c, c.shape[1] - self.cohort_top, axis=1)[:, -self.cohort_top:]
        return scores - top.mean(axis=1, keepdims=True)

    def num_phones(self, keyword: str) -> int:
        return len(self.tokenizer.encode(keyword))

    def expected_duration(self, keyword: str) -> float:
        return self.edge + self.per_phone * self.num_phones(keyword)

    def window_frames(self, keyword: str) -> int:
        return window_grid(round(self.window_scale * self.expected_duration(keyword) / self.frame_shift))

    def refractory_of(self, keyword: str) -> float:
        """Seconds after a detection's start in which the keyword cannot fire again."""
        if self.refractory is not None:
            return self.refractory
        return self.window_frames(keyword) * self.frame_shift

    def _thresholds(self, threshold) -> np.ndarray:
        if not self.keywords:
            raise SpotError("no keywords enrolled: call enroll([...]) first")
        if threshold is None:
            return np.array([self.thresholds[k] for k in self.keywords])
        if isinstance(threshold, Mapping):
            unknown = set(threshold) - set(self.keywords)
            if unknown:
                raise SpotError(f"threshold given for keyword(s) not enrolled: {sorted(unknown)}")
            return np.array([self._check_threshold(threshold.get(k, self.thresholds[k]),
                                                   f"threshold of {k!r}") for k in self.keywords])
        t = self._check_threshold(threshold, "threshold")
        return np.full(len(self.keywords), t)

    # ------------------------------------------------------------------ scoring
    def _audio(self, audio: AudioInput) -> np.ndarray:
        return load_audio(audio, self.rate)

    def _clip_features(self, audio: np.ndarray) -> np.ndarray:
        """One clip's floored, mean-normalised fbank, as ``score`` (and TTS enrolment) embed it."""
        feats = compute_fbank(audio, self.backend.features)
        if feats.shape[0] == 0:
            raise SpotError("audio is shorter than one feature frame; nothing to score")
        feats = floor_features(feats, self.floor_db)
        return (feats - feats.mean(axis=0, dtype=np.float64, keepdims=True)).astype(np.float32)

    def score(self, audio: AudioInput) -> dict[str, float]:
        """keyword -> cosine score of the whole clip (one embedding, as score_pairs scores)."""
        if not self.keywords:
            raise SpotError("no keywords enrolled: call enroll([...]) first")
        x = self._audio(audio)
        if x.size < CLIP_MIN_SECONDS * self.rate:
            what = audio if isinstance(audio, (str, os.PathLike)) else "audio array"
            raise SpotError(f"{what} holds {x.size / self.rate:.3f} s of audio; the model needs at "
                            f"least {CLIP_MIN_SECONDS} s")
        x = self._clip_features(x)
        if getattr(self.backend, "scorer", "cosine") != "cosine":
            p = self.backend.score_windows(x[None], np.array([x.shape[0]]),
                                           [self._text_emb[k] for k in self.keywords])[0]
            return {k: float(s) for k, s in zip(self.keywords, p)}
        emb = _normalized(self.backend.embed_audio(x[None], np.array([x.shape[0]])))[0]
        text = _normalized(np.stack([self._text_emb[k] for k in self.keywords]))
        s = self.normalize_scores(emb[None], (text @ emb)[None])[0]
        return {k: float(v) for k, v in zip(self.keywords, s)}

    def detect(self, audio: AudioInput, threshold=None) -> list[Detection]:
        """Detections in a recording of any length, sorted by start time. A file goes through
        ``stream`` block by block (the same detections, in bounded memory however long it is)."""
        if isinstance(audio, (str, os.PathLike)):
            return sorted(self.stream(file_blocks(audio), threshold=threshold),
                          key=lambda d: (d.start, d.keyword))
        thr = self._thresholds(threshold)
        x = self._audio(audio)
        search = _Search(self, thr)
        search.emitted_at = x.size / self.rate
        out = search.feed(compute_fbank(x, self.backend.features))
        return sorted(out + search.finish(), key=lambda d: (d.start, d.keyword))

    def stream(self, chunks: Iterable, sample_rate: int | None = None,
               threshold=None) -> Iterator[Detection]:
        """Detections as audio arrives. ``chunks``: arrays of samples at ``sample_rate`` (the
        model's rate by default) or ``(samples, rate)`` pairs, of any size, all at one rate.
        Yields the same detections as ``detect`` on the concatenated audio: another rate is
        resampled across chunk boundaries (StreamResampler), as a whole file is.
        Memory stays bounded: frames older than the earliest pending window are dropped."""
        thr = self._thresholds(threshold)
        search = _Search(self, thr)
        for frames, samples in self._frames(chunks, sample_rate):
            search.emitted_at = samples / self.rate
            yield from search.feed(frames)
        yield from search.finish()

    def replay_stream(self, chunks: Iterable, sample_rate: int | None = None,
                      threshold=None) -> list[Detection]:
        """What ``stream`` yields for these chunks, in its order and with its emission times,
        with every window embedded in batches first (``batch_size`` at a time, as ``detect``
        does) instead of one hop per chunk: for measuring a spotter on long recorded streams.
        It holds the whole stream's frames in memory, and with ``scan_step`` > 1 it embeds every
        position (the same detections, for more work than the stream's coarse scan)."""
        thr = self._thresholds(threshold)
        steps = list(self._frames(chunks, sample_rate))
        search = _Search(self, thr)
        search.precompute(np.concatenate([f for f, _ in steps]))
        out = []
        for frames, samples in steps:
            search.emitted_at = samples / self.rate
            out += search.feed(frames)
        return out + search.finish()

    def _frames(self, chunks: Iterable, sample_rate: int | None) -> Iterator[tuple[np.ndarray, int]]:
        """(new fbank frames, samples taken so far) after each non-empty chunk, then after the
        end of the stream (the frames that only the end completes)."""
        feats = OnlineFeatures(self.backend.features)
        resampler = None
        n = 0
        for c in chunks:
            if isinstance(c, tuple):
                samples, sr = c
            else:
                samples, sr = c, sample_rate or self.rate
            if np.asarray(samples).size == 0:
                continue
            x = to_mono(samples, sr, f"audio chunk {n}")
            if resampler is None:
                resampler = StreamResampler(int(sr), self.rate)
            elif int(sr) != resampler.sr:
                raise SpotError(f"audio chunk {n} is at {sr} Hz, the stream's earlier chunks at "
                                f"{resampler.sr} Hz: one stream has one sample rate")
            n += 1
            feats.accept(resampler.process(x))
            yield feats.take(), feats.num_samples
        if resampler is not None:
            feats.accept(resampler.finish())
        feats.finish()
        yield feats.take(), feats.num_samples
