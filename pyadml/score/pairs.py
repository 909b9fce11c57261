"""Scoring (wav, keyword) pairs with an exported model, for users' own audio
(``python -m pyadml.bin.score_pairs``).

Input lines: ``<wav path>\t<keyword text>[\t<label 0/1>]``. Any wav is mixed down to mono and
resampled to the model's rate, and features are computed as in training (lhotse Fbank from the
model's stored options, per-utterance mean normalisation). Keywords go through the model's own
tokenizer. Any bad line is an error that names it, and then nothing is written.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pyadml.data.dataset import mean_normalize, warp_mel
from pyadml.data.features import fbank_extractor, fbank_options, mel_range
from pyadml.data.trials import Trial
from pyadml.fileio import (audio_read_error, float_scale_error, read_shorten_sphere, wav_truncation,
                           write_lines_atomic)
from pyadml.models.export import load_model
from pyadml.score import metrics as M
from pyadml.score.embed import embed_features, embed_texts, score_trials
from pyadml.score.enrol import ENROL_WEIGHT, EnrolError, model_enrol, torch_enrolment
from pyadml.score.floor import FloorError, check_floor_option, floor_features, model_floor_db
from pyadml.score.norm import DEFAULT_COHORT_SIZE, ScoreNormError, adaptive_tnorm, model_norm
from pyadml.score.norm import prepare as norm_cohort
from pyadml.score.phrase import PhraseScoreError, check_phrase, fuse_words, model_phrase
from pyadml.score.speaker_mean import cosine_only, speaker_mean_normalised
from pyadml.sphere import SphereError
from pyadml.text import KeywordError


class PairsError(ValueError):
    pass


def read_audio(path: Path, rate: int) -> np.ndarray:
    """Mono float32 at ``rate``: channels averaged, polyphase resampling."""
    truncated = wav_truncation(path)
    if truncated:
        raise PairsError(truncated)
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for corrupt files
        try:
            shorten = read_shorten_sphere(path)  # the LDC's WSJ, which soundfile cannot read
        except SphereError as bad:
            raise PairsError(f"cannot read {bad}") from None
        if shorten is None:
            raise PairsError(audio_read_error(path, e)) from None
        audio, sr = shorten
    if audio.size == 0:
        raise PairsError(f"{path} holds no samples")
    bad_scale = float_scale_error(audio[np.isfinite(audio)], str(path))
    if bad_scale:
        raise PairsError(bad_scale)
    audio = audio.mean(axis=1)
    if sr != rate:
        g = math.gcd(int(sr), int(rate))
        from scipy.signal import resample_poly  # a second of import, for resampled files only

        audio = resample_poly(audio, rate // g, int(sr) // g).astype(np.float32)
    if not np.all(np.isfinite(audio)):
        raise PairsError(f"{path} contains NaN or inf samples")
    return audio


# Shorter audio holds a few frames at most: mean normalisation leaves (almost) nothing of
# them, and every keyword then gets the same score whatever was said.
MIN_SECONDS = 0.1


def features_for(path: Path, extractor, rate: int, mean_norm: bool, vad: bool = False,
                 warp: tuple[float, float, float] | None = None,
                 floor_db: float | None = None) -> np.ndarray:
    """Fbank of one file; ``vad``: first cut to its speech (pyadml.score.vad.vad_trim: frames
    within 30 dB of the loudest, plus 50 ms), so that leading/trailing silence or room noise
    does not change the score. ``warp``: (alpha, low_freq, high_freq), the features' spectral
    peaks moved by alpha (pyadml.data.dataset.warp_mel), a diagnostic. ``floor_db``: values
    more than that many dB below the loudest raised to it (pyadml.score.floor)."""
    audio = read_audio(path, rate)
    if vad:
        from pyadml.score.vad import vad_trim

        audio = vad_trim(audio, rate)
    if audio.size < MIN_SECONDS * rate:
        raise PairsError(f"{path} holds {audio.size / rate:.3f} s of audio; the model needs at "
                         f"least {MIN_SECONDS} s")
    feats = np.asarray(extractor.extract(audio, rate), dtype=np.float32)
    if warp is not None:
        feats = warp_mel(feats, *warp)
    feats = floor_features(feats, floor_db)
    return mean_normalize(feats) if mean_norm else feats


def check_output_path(out: str | os.PathLike, inputs: list[str | os.PathLike]) -> Path:
    """Refuse, before any work, an output that is a directory or one of the inputs."""
    out = Path(out)
    if out.is_dir():
        raise PairsError(f"--out {out} is a directory; give a file name")
    for i in inputs:
        if out.exists() and Path(i).exists() and out.resolve() == Path(i).resolve():
            raise PairsError(f"--out {out} is the input {i}; writing it would replace the input")
    if not out.parent.is_dir() and out.parent != Path(""):
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PairsError(f"--out {out}: cannot create its directory: {e}") from None
    from pyadml.fileio import cannot_write_in

    why = cannot_write_in(out.parent)  # now, not after every pair is scored
    if why:
        raise PairsError(f"--out {out}: cannot write it: {why}; give --out a file elsewhere")
    return out


def read_utt2spk(path: str | os.PathLike) -> dict[Path, str]:
    """``<wav>\t<speaker>`` lines (Kaldi's utt2spk, with the wav path as the key, as the pairs
    file writes it) -> {resolved wav path: speaker}; a line without a tab may separate the two
    by spaces, as Kaldi's own files do. A wav given twice must name one speaker."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise PairsError(f"cannot read the speaker list {path}: {e}") from None
    out: dict[Path, str] = {}
    first: dict[Path, int] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 2 or not parts[1].strip():
            raise PairsError(f"{path}:{n}: expected '<wav>\\t<speaker>' (or '<wav> <speaker>'), "
                             f"got {line!r}")
        wav, spk = Path(parts[0]).resolve(), parts[1].strip()
        if wav in out and out[wav] != spk:
            raise PairsError(f"{path}:{n}: {parts[0]} is speaker {spk!r} here and "
                             f"{out[wav]!r} at line {first[wav]}")
        out[wav] = spk
        first.setdefault(wav, n)
    if not out:
        raise PairsError(f"the speaker list {path} names no wav")
    return out


@dataclass
class PairScores:
    lines: list[str]          # the input lines that hold pairs
    scores: np.ndarray
    labels: np.ndarray | None
    num_wavs: int
    num_keywords: int
    floor_db: float | None = None  # the level-relative floor the features got (None: none)
    norm: str = "none"        # the score normalisation the scores got
    cohort_size: int = 0      # T-norm's K (0 without it)
    phrase: str = "clip"      # the phrase score: clip, or words (pyadml.score.phrase)
    enrol: str = "none"       # keyword enrolment: none (text), or tts (pyadml.score.enrol)
    text_only: list[str] | None = None  # with tts: texts no enrolment voice could speak
    speakers: int = 0         # with the speaker mean: the speakers of the files (0: off)
    alone: int = 0            # with it: files whose speaker has no other file, kept as they are

    def summary(self) -> list[str]:
        """AP, EER and AUC lines when the pairs carry labels of both classes."""
        if self.labels is None:
            return []
        if not 0 < self.labels.sum() < self.labels.size:
            return ["labels hold a single class; no AP/EER/AUC"]
        return [f"AP  {100 * M.average_precision(self.scores, self.labels):.2f}%",
                f"EER {100 * M.eer(self.scores, self.labels):.2f}%",
                f"AUC {100 * M.auc(self.scores, self.labels):.2f}%"]


def score_pairs_file(model_path, pairs_path, out_path, batch_size: int = 64,
                     device: str = "cpu", vad: bool = False, norm: str | None = "none",
                     cohort_size: int = DEFAULT_COHORT_SIZE, phrase: str | None = "clip",
                     warp: float = 1.0, words_onnx=None, jobs: int = 1,
                     floor_db: float | str | None = None,
                     default_floor_db: float | None = None,
                     default_norm: str = "none", default_phrase: str = "clip",
                     enrol: str | None = "none", default_enrol: str = "none",
                     enrol_voices=None, enrol_weight: float = ENROL_WEIGHT,
                     cache: dict | None = None, speakers=None) -> PairScores:
    """Score every pair of ``pairs_path`` and write its lines with a score column to
    ``out_path`` (atomically, only when every line is good); PairsError names a bad line.
    ``vad``: the energy voice-activity front end (``features_for``); off by default.
    ``norm="tnorm"``: adaptive T-norm with the model's cohort (pyadml.score.norm); None:
    ``default_norm`` where the model allows it (the CLI's CLIP_SCORE_NORM), else none.
    ``phrase="words"``: multi-word keywords also scored word by word (pyadml.score.phrase);
    None: ``default_phrase`` where the model allows it (the CLI's CLIP_PHRASE_SCORE), else clip.
    ``warp`` != 1: every file's features frequency-warped (``features_for``), a diagnostic.
    ``floor_db``: the level-relative floor on the features (pyadml.score.floor; NO_FLOOR for
    none); default the model's own, else ``default_floor_db`` (the CLI's CLIP_FLOOR_DB).
    ``words_onnx``, ``jobs``: the words back-end's windows through that ONNX export.
    ``enrol="tts"``: keywords (and a phrase's words) enrolled by speech synthesis too
    (pyadml.score.enrol) with ``enrol_voices`` and ``enrol_weight``; None: ``default_enrol``
    where the model allows it (the CLI's CLIP_ENROL), else none. ``cache``: a dict kept between
    calls that score the same files with the same model (score_clips' runs): the words
    back-end's window embeddings are computed once per front end (VAD, warp, floor, ONNX).
    ``speakers``: the per-speaker mean normalisation (pyadml.score.speaker_mean; cosine models
    only), with each file's speaker from a utt2spk file (its path, ``read_utt2spk``) or a
    {resolved wav path: speaker} mapping that must name every file of the pairs."""
    if batch_size < 1:
        raise PairsError(f"--batch-size must be >= 1, got {batch_size}")
    if not warp > 0:
        raise PairsError(f"--warp must be a positive factor, got {warp}")
    try:
        floor_db = check_floor_option(floor_db)
    except FloorError as e:
        raise PairsError(str(e)) from None
    pairs_path = Path(pairs_path)
    inputs = [pairs_path, model_path]
    spk_file = None
    if speakers is not None and not isinstance(speakers, dict):
        spk_file, speakers = Path(speakers), read_utt2spk(speakers)
        inputs.append(spk_file)
    out_path = check_output_path(out_path, inputs)
    try:
        # utf-8-sig: a byte-order mark (Windows editors) is not part of the first wav path.
        lines = pairs_path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise PairsError(f"cannot read {pairs_path}: {e}") from None
    try:
        loaded = load_model(model_path, device=device)
    except (OSError, ValueError) as e:
        raise PairsError(str(e)) from None
    try:
        norm = model_norm(loaded, norm, default_norm)
        cohort, cohort_size = norm_cohort(loaded, norm, cohort_size, model_path)
        phrase = model_phrase(loaded.scorer, phrase, default_phrase)
        check_phrase(phrase, loaded.scorer, words_onnx, model_path, jobs)
        floor_db = model_floor_db(loaded.features, floor_db, default_floor_db)
        enrol = model_enrol(loaded.scorer, enrol, default_enrol)
        enrolment = (torch_enrolment(loaded, enrol_voices, enrol_weight, floor_db)
                     if enrol == "tts" else None)
    except (ScoreNormError, PhraseScoreError, FloorError, EnrolError) as e:
        raise PairsError(str(e)) from None
    if speakers is not None and (why := cosine_only(loaded.scorer, model_path)):
        raise PairsError(why)
    feat_cfg = fbank_options(loaded.features)
    mean_norm = bool(loaded.features.get("mean_norm", True))
    rate = int(feat_cfg.get("sampling_rate", 16000))
    extractor = fbank_extractor(feat_cfg)
    warp_args = None if warp == 1.0 else (warp, *mel_range(feat_cfg))

    rows = []  # (line number, line, wav, keyword, label or None)
    feats: dict[Path, np.ndarray] = {}
    file_speaker: dict[str, str] = {}  # with the speaker mean: each file's speaker
    phones_ok: set[str] = set()
    for n, line in enumerate(lines, 1):
        where = f"{pairs_path}:{n}"
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) not in (2, 3):
            raise PairsError(f"{where}: expected '<wav>\\t<keyword>[\\t<label>]', got "
                             f"{len(parts)} tab-separated field(s)")
        wav, keyword = Path(parts[0]), parts[1]
        label = None
        if len(parts) == 3:
            if parts[2].strip() not in ("0", "1"):
                raise PairsError(f"{where}: label must be 0 or 1, got {parts[2]!r}")
            label = int(parts[2])
        if rows and (label is None) != (rows[0][4] is None):
            raise PairsError(f"{where}: some lines have a label and some do not")
        if wav.is_dir():
            raise PairsError(f"{where}: {wav} is a directory; name one audio file per line")
        if not wav.is_file():
            raise PairsError(f"{where}: no such wav file: {wav}")
        if wav not in feats and out_path.exists() and wav.samefile(out_path):
            raise PairsError(f"{where}: --out {out_path} is this line's wav; writing it would "
                             f"replace the recording")
        if speakers is not None and str(wav) not in file_speaker:  # once per file, not per pair
            spk = speakers.get(wav.resolve())
            if spk is None:
                raise PairsError(f"{where}: {wav} has no speaker in "
                                 f"{spk_file or 'the speaker list'}")
            file_speaker[str(wav)] = spk
        if keyword not in phones_ok:
            try:
                loaded.tokenizer.encode(keyword)
            except KeywordError as e:
                raise PairsError(f"{where}: {e}") from None
            phones_ok.add(keyword)
        if wav not in feats:
            try:
                feats[wav] = features_for(wav, extractor, rate, mean_norm, vad=vad, warp=warp_args,
                                          floor_db=floor_db)
            except PairsError as e:
                raise PairsError(f"{where}: {e}") from None
        rows.append((n, line, wav, keyword, label))
    if not rows:
        raise PairsError(f"{pairs_path} holds no pairs")

    wavs = list(feats)
    emb = embed_features(loaded.model, [feats[w] for w in wavs], batch_size=batch_size)
    audio_emb = {str(w): e for w, e in zip(wavs, emb)}
    alone = 0
    if speakers is not None:
        # before T-norm, so that the cohort's statistics are the normalised clip's
        audio_emb, alone = speaker_mean_normalised(audio_emb, file_speaker)
    text_emb = embed_texts(loaded.model, phones_ok, loaded.tokenizer)
    if enrolment is not None:
        try:
            text_emb = enrolment.queries(text_emb)
        except EnrolError as e:
            raise PairsError(str(e)) from None
    trials = [Trial(str(wav), kw, label or 0) for _, _, wav, kw, label in rows]
    scores = score_trials(trials, audio_emb, text_emb, model=loaded.model)
    if cohort is not None:
        scores = adaptive_tnorm(scores, [t.cut_id for t in trials], [t.keyword for t in trials],
                                audio_emb, cohort, cohort_size)
    if phrase == "words":
        # with T-norm, the words' window cosines are T-normed one by one (pyadml.score.phrase)
        scores = fuse_words(loaded, scores, [t.cut_id for t in trials], [t.keyword for t in trials],
                            lambda c: feats[Path(c)], batch_size=batch_size,
                            cache=None if cache is None else cache.setdefault(
                                ("windows", str(model_path), vad, warp, floor_db, str(words_onnx)),
                                {}),
                            onnx_dir=words_onnx, jobs=jobs, cohort=cohort, cohort_size=cohort_size,
                            enrolment=enrolment)
    write_lines_atomic(out_path, (f"{line}\t{s:.6f}" for (_, line, *_), s in zip(rows, scores)))
    labels = np.array([r[4] for r in rows]) if rows[0][4] is not None else None
    return PairScores([r[1] for r in rows], scores, labels, len(wavs), len(text_emb), floor_db,
                      norm, cohort_size if cohort is not None else 0, phrase, enrol,
                      sorted(enrolment.text_only) if enrolment is not None else [],
                      len(set(file_speaker.values())),
                      alone)
