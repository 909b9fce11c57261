"""Does the model hear a word in connected speech as it hears it spoken alone?

The embedded corpora speak most words one at a time, with pauses between them; people run
their words together. Here the utterances of a words test set (stage 2's
``data/cuts/<set>.jsonl.gz``) that held-out voices of a timed engine (espeak-ng, festival:
pyadml.synth.voices.TIMED_ENGINES) speak are spoken again twice by the same voice, with the
default prosody: every word alone (as stage 0 speaks it), and the whole utterance at once
(connected speech, cut at the engine's own word times). Each word's clip keeps ``CONTEXT``
seconds either side, as stage 2's cuts do: silence around a word spoken alone, the neighbouring
words' sound in connected speech. Both lists are scored with the ``score_clips`` protocol
(every clip against every word of the list: AP, EER, AUC, top-1), per voice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from pyadml.score.clips import score_clips
from pyadml.score.floor import check_floor_option

CONTEXT = 0.05   # seconds either side of a word, as stage 2 cuts words
DITHER = 1.0e-4  # the noise floor stage 0 adds (the engines write digital zeros)
MODES = ("alone", "connected")


def utterances_by_voice(cuts_path) -> dict[str, list[list[str]]]:
    """speaker -> the word sequences of its utterances, for the speakers of TIMED_ENGINES
    (speaker ids ``<engine>-<voice>``, as stage 0 names them)."""
    from lhotse import CutSet

    from pyadml.data.cuts import is_span
    from pyadml.synth.voices import TIMED_ENGINES

    words: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for c in CutSet.from_file(cuts_path):
        if not c.supervisions or is_span(c):
            continue
        s = c.supervisions[0]
        utt = (s.custom or {}).get("utt") or s.recording_id
        if s.speaker and s.speaker.split("-")[0] in TIMED_ENGINES:
            words[(s.speaker, utt)].append((c.start, s.text))
    out: dict[str, list[list[str]]] = defaultdict(list)
    for (spk, _), ws in sorted(words.items()):
        out[spk].append([w for _, w in sorted(ws)])
    return dict(out)


def _voice(speaker: str, voices):
    for v in voices:
        if v.speaker_id == speaker:
            return v
    raise ValueError(f"speaker {speaker} is none of the synth config's voices")


def write_connected_clips(cuts_path, out_dir, voices, max_utts: int | None = None,
                          seed: int = 0, rate: int = 16000) -> dict[tuple[str, str], Path]:
    """``<out_dir>/<speaker>/<mode>/clips.tsv`` for each timed-engine speaker and mode."""
    from pyadml.synth.voices import (Prosody, UnspeakableError, synthesize,
                                      synthesize_utterance)

    by_voice = utterances_by_voice(cuts_path)
    if not by_voice:
        raise ValueError(f"{cuts_path}: no utterance of a voice that speaks with word times")
    rng = np.random.default_rng(seed)
    pad = int(round(CONTEXT * rate))
    out = {}
    for spk, utts in by_voice.items():
        voice = _voice(spk, voices)
        utts = utts[:max_utts] if max_utts else utts
        lines = {m: [] for m in MODES}
        for u, words in enumerate(utts):
            try:
                spoken = synthesize_utterance(voice, words, Prosody())
            except UnspeakableError:  # festival read another number of words
                continue
            alone = synthesize(voice, words, on_failure="drop")
            if spoken is None:
                continue
            audio, spans, kept = spoken
            audio = np.concatenate([np.zeros(pad, np.float32), audio, np.zeros(pad, np.float32)])
            for k, (a, b) in zip(kept, spans):
                if alone[k] is None:
                    continue  # only words both ways
                clips = {"connected": audio[a: b + 2 * pad],
                         "alone": np.concatenate([np.zeros(pad, np.float32), alone[k],
                                                  np.zeros(pad, np.float32)])}
                for m, x in clips.items():
                    x = x + rng.normal(0.0, DITHER, x.size).astype(np.float32)
                    wav = Path(out_dir) / spk / m / f"{u:04d}_{k:02d}.wav"
                    wav.parent.mkdir(parents=True, exist_ok=True)
                    sf.write(str(wav), x, rate, subtype="FLOAT")
                    lines[m].append(f"{wav.name}\t{words[k]}")
        for m in MODES:
            tsv = Path(out_dir) / spk / m / "clips.tsv"
            tsv.parent.mkdir(parents=True, exist_ok=True)
            tsv.write_text("".join(line + "\n" for line in lines[m]), encoding="utf-8")
            out[(spk, m)] = tsv
    return out


def connected_check(model, cuts_path, out_dir, voices, max_utts: int | None = None,
                    seed: int = 0, floor_db: float | None = None) -> list[dict]:
    """Metrics per (speaker, mode); also written to ``<out_dir>/metrics.json``."""
    floor_db = check_floor_option(floor_db)
    lists = write_connected_clips(cuts_path, out_dir, voices, max_utts, seed)
    rows = []
    for (spk, mode), tsv in lists.items():
        m = score_clips(model, tsv, tsv.parent / "scores", floor_db=floor_db)
        rows.append({"speaker": spk, "mode": mode, "floor_db": m["floor_db"],
                     **{k: m[k] for k in ("clips", "AP", "EER", "AUC", "top1")}})
    (Path(out_dir) / "metrics.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows
