"""Keyword enrolment by speech synthesis: a typed keyword is also spoken by TTS voices.

A keyword k is enrolled by its text embedding t_k = E_t^utt(k) alone in the paper's protocol.
With TTS enrolment it is also synthesised by a few of the training voices (``ENROL_VOICES``;
never a held-out voice), each clip is embedded by the acoustic encoder as a test clip is, and
the keyword's query vector becomes

    c_k = unit(mean_v unit(E_a^utt(TTS_v(k)))),
    q_k = unit((1 - w) unit(t_k) + w c_k),          w = ``ENROL_WEIGHT`` (0.5),

so a clip a scores cos(a, q_k) in place of cos(a, t_k). The two modalities share one space
(the paper's MAL makes them close), but a recording still lies nearer to other recordings of
its word than to its text: on the real wake-word clips and three default models, AP rose by
2.3-4.6 points as recorded and by 0.7-2.1 through the user default, and EER fell
(egs/wsj_librikws/RESULTS.md, "Keyword enrolment by speech synthesis"). Everything downstream
(T-norm, the words of a phrase, the spotter's windows) takes q_k where it took t_k; a T-norm
cohort stays the cohort's texts. A word that no enrolment voice
can speak keeps its text embedding alone (counted in ``Enrolment.text_only``).

Each clip is the synthesised word (trimmed, 20 ms margin) with 0.1 s of low dither on each
side, as the training words had room around them; the dither is seeded by the text and voice,
so a keyword's query does not depend on what else is enrolled.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

# Six training voices of the embedded corpora, all from the Debian packages: about 50 ms of CPU
# per keyword. Piper's joe (110 ms per phrase) and two Kokoro English styles (0.3 s per word)
# on top raised the real wake-word clips' AP by at most 0.3 points (RESULTS.md).
ENROL_VOICES = ("espeak:en-us+m1", "espeak:en-us+f2", "espeak:en-gb+m3", "espeak:en-gb+f1",
                "flite:rms", "festival:ked_diphone")
ENROL_WEIGHT = 0.5
ENROLS = ("none", "tts")
# The enrolment of score_pairs and score_clips for a user's recordings, where the model allows
# it (RESULTS.md, "Keyword enrolment by speech synthesis").
CLIP_ENROL = "tts"
# The enrolment of the keyword spotter (detect, stage 9; KeywordSpotter's own default is none).
DETECT_ENROL = "tts"
PAD_SECONDS = 0.1
# Voices synthesised at once (each its own engine process).
MAX_SPEAKERS = 8
DITHER = 1.0e-4


class EnrolError(ValueError):
    pass


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def parse_voices(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """A comma-separated list of '<engine>:<voice>' (or a sequence); None: ENROL_VOICES."""
    from pyadml.synth.voices import Voice

    if spec is None:
        return ENROL_VOICES
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s]
    if not items:
        raise EnrolError("no enrolment voices given: expected '<engine>:<voice>[,...]'")
    for s in items:
        try:
            Voice.parse(s)
        except ValueError as e:
            raise EnrolError(f"enrolment voice {s!r}: {e}") from None
    return tuple(dict.fromkeys(items))


def check_weight(weight: float) -> float:
    weight = float(weight)
    if not 0.0 < weight <= 1.0:
        raise EnrolError(f"enrolment weight must be in (0, 1], got {weight}")
    return weight


class Enrolment:
    """TTS enrolment for one model (see the module docstring).

    ``embed_audio(list of (T, D) normalised features) -> (N, d)``: the model's acoustic
    encoder. ``features(audio at 16 kHz) -> (T, D)``: the model's fbank, with its floor and
    mean normalisation applied, as a test clip gets them. ``spoken(text) -> str``: what the voices
    say for a keyword text (the tokenizer's normalised words, so "Hello!" and "hello" are one
    keyword, as their phones are). Centroids are cached per spoken text, so a text is spoken
    once per voice whatever is scored after it."""

    def __init__(self, embed_audio: Callable[[list], np.ndarray],
                 features: Callable[[np.ndarray], np.ndarray],
                 voices: str | Sequence[str] | None = None, weight: float = ENROL_WEIGHT,
                 spoken: Callable[[str], str] | None = None):
        from pyadml.synth.voices import SynthesisError, Voice, check_engines

        self.voices = parse_voices(voices)
        self.weight = check_weight(weight)
        try:
            check_engines([Voice.parse(v) for v in self.voices])
        except SynthesisError as e:
            raise EnrolError(f"TTS enrolment needs its voices ({', '.join(self.voices)}): {e}; "
                             f"or score without it (--enrol none)") from None
        self.embed_audio = embed_audio
        self.features = features
        self.spoken = spoken or (lambda text: text)
        self._centroids: dict[str, np.ndarray | None] = {}
        self.text_only: set[str] = set()

    def clip(self, audio: np.ndarray, text: str, voice: str) -> np.ndarray:
        """The synthesised word with PAD_SECONDS of seeded dither on each side."""
        from pyadml.synth.neural import content_seed
        from pyadml.synth.voices import SAMPLE_RATE

        pad = int(PAD_SECONDS * SAMPLE_RATE)
        x = np.concatenate([np.zeros(pad), np.asarray(audio, np.float64), np.zeros(pad)])
        rng = np.random.default_rng(content_seed("enrol", voice, text))
        return (x + DITHER * rng.standard_normal(x.size)).astype(np.float32)

    def centroids(self, texts: Iterable[str]) -> dict[str, np.ndarray | None]:
        """text -> c_k (unit vector), or None where no voice could speak it."""
        spoken = {t: self.spoken(t) for t in dict.fromkeys(texts)}
        cents = self._spoken_centroids(list(dict.fromkeys(spoken.values())))
        return {t: cents[s] for t, s in spoken.items()}

    def _spoken_centroids(self, texts: list[str]) -> dict[str, np.ndarray | None]:
        # In an order of its own: the encoder batches the clips, and a batch's make-up moves an
        # embedding in its last bits, so the callers' order (a set's, which changes from run to
        # run) would move the scores.
        todo = sorted({t for t in texts if t not in self._centroids})
        if todo:
            owner, feats = [], []  # every clip of every text, embedded in one call
            for v, clips in zip(self.voices, self._synthesize(todo)):
                for i, (t, a) in enumerate(zip(todo, clips)):
                    if a is not None:
                        owner.append(i)
                        feats.append(self.features(self.clip(a, t, v)))
            emb = _unit(self.embed_audio(feats)) if feats else np.zeros((0, 1))
            owner = np.asarray(owner, dtype=np.int64)
            for i, t in enumerate(todo):
                mine = emb[owner == i]
                self._centroids[t] = (_unit(mine.mean(axis=0)).astype(np.float32) if len(mine)
                                      else None)
        return {t: self._centroids[t] for t in texts}

    def _synthesize(self, texts: list[str]) -> list[list[np.ndarray | None]]:
        """Each voice's clips of ``texts``, in voice order. The Debian engines run in their own
        processes (pyadml.synth.voices), so their voices are spoken side by side and the system
        shares the cores among them: their costs differ (flite's rms takes 4x an espeak voice),
        and all at once keeps every core busy to the end. The neural engines, in this process,
        speak one voice at a time."""
        from concurrent.futures import ThreadPoolExecutor

        from pyadml.synth.voices import NEURAL_ENGINES, SynthesisError, Voice, synthesize

        def speak(v: str) -> list[np.ndarray | None]:
            try:
                return synthesize(Voice.parse(v), texts, on_failure="drop")
            except SynthesisError as e:
                raise EnrolError(f"TTS enrolment: voice {v}: {e}") from None

        apart = [v for v in self.voices if Voice.parse(v).engine not in NEURAL_ENGINES]
        with ThreadPoolExecutor(max(1, min(len(apart), MAX_SPEAKERS))) as pool:
            pending = {v: pool.submit(speak, v) for v in apart}
            here = {v: speak(v) for v in self.voices if v not in pending}
            return [pending[v].result() if v in pending else here[v] for v in self.voices]

    def queries(self, text_emb: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """text -> q_k from its text embedding t_k (the keys of ``text_emb``)."""
        cents = self.centroids(text_emb)
        out = {}
        for t, e in text_emb.items():
            c = cents[t]
            if c is None:
                self.text_only.add(t)
                out[t] = np.asarray(e, np.float32)
                continue
            out[t] = _unit((1.0 - self.weight) * _unit(e) + self.weight * c).astype(np.float32)
        return out


def spoken_by(tokenizer) -> Callable[[str], str]:
    """What the voices say for a keyword: its normalised words as a synthesiser's text
    (pyadml.text.normalize.spoken_text: "Hey A.I." -> "hey A.I.")."""
    from pyadml.text.normalize import spoken_text

    return lambda text: spoken_text(tokenizer.words(text))


def model_enrol(scorer: str, enrol: str | None, default: str = "none") -> str:
    """The enrolment to score a model with: ``enrol`` when given (a detector refuses tts),
    else ``default`` where the model allows it, else none with a note."""
    if enrol is not None:
        if enrol not in ENROLS:
            raise EnrolError(f"enrol must be one of {ENROLS}, got {enrol!r}")
        if enrol == "tts" and scorer != "cosine":
            raise EnrolError(f"TTS enrolment compares embeddings; this model's scorer is "
                             f"{scorer!r} (a detector head): score it with --enrol none")
        return enrol
    if default == "tts" and scorer != "cosine":
        import sys

        print(f"enrol: this model is scored with its keywords' texts only (its scorer is "
              f"{scorer!r}, a detector head)", file=sys.stderr)
        return "none"
    return default


def torch_enrolment(loaded, voices=None, weight: float = ENROL_WEIGHT,
                    floor_db: float | None = None) -> Enrolment:
    """An Enrolment for a loaded final.pt (pyadml.models.export.load_model): lhotse fbank from
    the model's options, the scoring floor, mean normalisation, the torch acoustic encoder."""
    from pyadml.data.dataset import mean_normalize
    from pyadml.data.features import fbank_extractor, fbank_options
    from pyadml.score.embed import embed_features
    from pyadml.score.floor import floor_features

    model_enrol(loaded.scorer, "tts")
    cfg = fbank_options(loaded.features)
    rate = int(cfg.get("sampling_rate", 16000))
    if rate != 16000:
        raise EnrolError(f"TTS enrolment speaks at 16 kHz; this model's features are at {rate} Hz")
    extractor = fbank_extractor(cfg)
    mean_norm = bool(loaded.features.get("mean_norm", True))

    def features(audio: np.ndarray) -> np.ndarray:
        f = floor_features(np.asarray(extractor.extract(audio, rate), np.float32), floor_db)
        return mean_normalize(f) if mean_norm else f

    return Enrolment(lambda feats: embed_features(loaded.model, feats), features, voices, weight,
                     spoken=spoken_by(loaded.tokenizer))


def add_enrol_args(parser, default: str | None = None) -> None:
    """--enrol, --enrol-voices and --enrol-weight of the scoring commands; ``default``: the
    command's enrolment where the model allows it (CLIP_ENROL for a user's recordings), None for
    the paper's protocol, the text alone."""
    parser.add_argument("--enrol", default=None if default else "none", choices=ENROLS,
                        help="tts: each keyword is also spoken by TTS voices and its query mixes "
                        "their acoustic embeddings with the text's (pyadml.score.enrol); none: "
                        "the text alone, the paper's protocol. "
                        + (f"Default: {default} where the model allows it (a cosine model)"
                           if default else "Default: none"))
    parser.add_argument("--enrol-voices", default=None, metavar="V1,V2",
                        help=f"TTS enrolment voices, '<engine>:<voice>' (default: "
                        f"{','.join(ENROL_VOICES)})")
    parser.add_argument("--enrol-weight", type=float, default=ENROL_WEIGHT,
                        help=f"weight of the voices' centroid in the query (default {ENROL_WEIGHT})")
