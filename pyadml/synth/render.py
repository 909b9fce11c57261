"""Turn planned utterances into audio files, in parallel over TTS engine processes.

A plan is made up front in one process from one seeded generator; rendering only executes it,
so the files do not depend on how the work is split over processes.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pyadml.fileio import write_wav_atomic
from pyadml.synth.voices import (SAMPLE_RATE, TIMED_ENGINES, UTTERANCE_ENGINES, Prosody,
                                  UnspeakableError, Voice, espeak_utterances,
                                  festival_utterances, synthesize, synthesize_utterance)

# CTM times are written with two decimals; keeping every boundary on a 10 ms grid makes them exact.
HOP = SAMPLE_RATE // 100


@dataclass(frozen=True)
class AudioConfig:
    trim_db: float = 40.0
    trim_margin: float = 0.02
    dither: float = 1.0e-4
    peak_dbfs: tuple[float, float] = (-9.0, -1.0)


@dataclass
class Item:
    """One audio file to make. ``pauses`` has len(words)+1 entries: the silence before the first
    word, between words and after the last. With ``joined`` the engine speaks all words in one
    call (natural phrase prosody, no word boundaries). Otherwise each word is synthesised alone
    and placed on the 10 ms grid, so the CTM is exact; an engine of UTTERANCE_ENGINES instead
    speaks the words as one utterance (its own pauses between them, the planned ones only at
    the edges) and the CTM gives the model's own word times on the 10 ms grid. With
    ``connected`` an engine of TIMED_ENGINES does the same (connected speech, timed by its word
    events)."""

    id: str
    rel_path: str
    voice: Voice
    words: Sequence[str]
    prosody: Prosody
    pauses: Sequence[float]
    peak_dbfs: float
    seed: int
    joined: bool = False
    connected: bool = False
    # Set by render(): the words the voice could not speak (removed from ``words``).
    dropped: list[str] = field(default_factory=list)


@dataclass
class Rendered:
    id: str
    rel_path: str
    num_samples: int
    words: list[tuple[str, int, int]] = field(default_factory=list)  # (word, start, length)
    dropped: list[str] = field(default_factory=list)  # words the voice could not speak

    @property
    def duration(self) -> float:
        return self.num_samples / SAMPLE_RATE


def _grid(samples: float) -> int:
    return int(np.ceil(samples / HOP)) * HOP


def _grid_round(samples: int) -> int:
    return int(round(samples / HOP)) * HOP


def _place_words(item: Item, segs: list[np.ndarray | None], labels: list[str]):
    """Each spoken word's clip on the 10 ms grid, with the planned pauses between them."""
    # A word the voice cannot speak is left out (with its pause); the pauses stay the
    # planned ones, in order, so the rest of the utterance does not depend on the failure.
    keep = [i for i, s in enumerate(segs) if s is not None]
    dropped = [labels[i] for i, s in enumerate(segs) if s is None]
    if not keep:
        return None, [], dropped
    segs = [segs[i] for i in keep]
    labels = [labels[i] for i in keep]
    gaps = [_grid(p * SAMPLE_RATE) for p in item.pauses]
    gaps = gaps[: len(segs)] + [gaps[-1]]
    lengths = [_grid(len(s)) for s in segs]
    audio = np.zeros(sum(gaps[: len(segs) + 1]) + sum(lengths), dtype=np.float32)
    pos = gaps[0]
    words = []
    for i, (seg, length, label) in enumerate(zip(segs, lengths, labels)):
        audio[pos : pos + len(seg)] = seg
        words.append((label, pos, length))
        pos += length + gaps[i + 1]
    return audio, words, dropped


def _place_utterance(item: Item, spoken):
    """A whole spoken utterance (synthesize_utterance) between the planned edge silences; its
    word times are the model's, rounded to the 10 ms grid."""
    if spoken is None:
        return None, [], list(item.words)
    seg, spans, kept = spoken
    lead, tail = _grid(item.pauses[0] * SAMPLE_RATE), _grid(item.pauses[-1] * SAMPLE_RATE)
    audio = np.zeros(lead + _grid(len(seg)) + tail, dtype=np.float32)
    audio[lead : lead + len(seg)] = seg
    words = []
    for k, (a, b) in zip(kept, spans):
        start = _grid_round(a)
        end = _grid(b) if b >= len(seg) else max(_grid_round(b), start + HOP)
        words.append((item.words[k], lead + start, end - start))
    spoken_ids = set(kept)
    return audio, words, [w for i, w in enumerate(item.words) if i not in spoken_ids]


def _render_chunk(args) -> list[Rendered]:
    items, out_root, audio_cfg = args
    voice = items[0].voice

    def timed(item: Item) -> bool:
        return not item.joined and (voice.engine in UTTERANCE_ENGINES
                                    or (item.connected and voice.engine in TIMED_ENGINES))

    # Connected utterances of espeak-ng and festival in one process per chunk, as their words
    # are (a process per utterance cost stage 0 about a minute for espeak-ng).
    timed_ks = [k for k, item in enumerate(items) if timed(item) and voice.engine in TIMED_ENGINES]
    first = {}
    if timed_ks:
        speak = espeak_utterances if voice.engine == "espeak" else festival_utterances
        first = dict(zip(timed_ks, speak(voice, [items[k].words for k in timed_ks],
                                         [items[k].prosody for k in timed_ks])))
    # An utterance festival reads as another number of words cannot be timed: its words are
    # spoken alone instead.
    alone = {k for k, spoken in first.items() if isinstance(spoken, UnspeakableError)}

    def whole(k: int, item: Item) -> bool:
        return timed(item) and k not in alone

    texts, prosodies, owners = [], [], []
    for k, item in enumerate(items):
        if whole(k, item):
            continue
        units = [" ".join(item.words)] if item.joined else list(item.words)
        texts += units
        prosodies += [item.prosody] * len(units)
        owners += [k] * len(units)
    clips = synthesize(voice, texts, prosodies, trim_db=audio_cfg.trim_db,
                       margin=audio_cfg.trim_margin, on_failure="drop")
    per_item: list[list[np.ndarray | None]] = [[] for _ in items]
    for k, clip in zip(owners, clips):
        per_item[k].append(clip)

    out = []
    for k, (item, segs) in enumerate(zip(items, per_item)):
        if whole(k, item):
            spoken = synthesize_utterance(voice, item.words, item.prosody,
                                          trim_db=audio_cfg.trim_db, margin=audio_cfg.trim_margin,
                                          spoken=first.get(k))
            audio, words, dropped = _place_utterance(item, spoken)
        else:
            labels = [" ".join(item.words)] if item.joined else list(item.words)
            audio, words, dropped = _place_words(item, segs, labels)
        if audio is None:
            out.append(Rendered(item.id, item.rel_path, 0, [], dropped))
            continue
        rng = np.random.default_rng(item.seed)
        audio *= 10 ** (item.peak_dbfs / 20) / max(float(np.abs(audio).max()), 1e-9)
        # The engines write exact digital zeros, which no microphone does.
        audio += rng.normal(0.0, audio_cfg.dither, size=audio.shape).astype(np.float32)
        write_wav_atomic(Path(out_root) / item.rel_path, audio, SAMPLE_RATE)
        out.append(Rendered(item.id, item.rel_path, len(audio), words, dropped))
    return out


# CPU per word relative to espeak-ng (measured on 2 shared cores: espeak 11 ms, flite 16,
# festival 8, piper 32, kokoro 300 a word alone and about half that in whole utterances).
ENGINE_COST = {"espeak": 1.0, "flite": 1.5, "festival": 0.7, "piper": 3.0, "kokoro": 14.0}


def _cost(chunk: Sequence[Item]) -> float:
    return ENGINE_COST.get(chunk[0].voice.engine, 1.0) * sum(len(i.words) for i in chunk)


def _chunks(items: Sequence[Item], size: int) -> Iterable[list[Item]]:
    """Chunks of one voice each; a slow engine's chunks are smaller, and the costliest chunks
    come first, so that no process is left with a long tail of neural synthesis."""
    by_voice: dict[Voice, list[Item]] = {}
    for item in items:
        by_voice.setdefault(item.voice, []).append(item)
    chunks = []
    for voice, voice_items in by_voice.items():
        cost = ENGINE_COST.get(voice.engine, 1.0)
        n = size if cost <= 2 else max(2, int(2 * size / cost))
        it = iter(voice_items)
        while chunk := list(itertools.islice(it, n)):
            chunks.append(chunk)
    # Stable: equal costs keep the plan's order. The order changes no output, only the schedule.
    return sorted(chunks, key=lambda c: -_cost(c))


def render(
    items: Sequence[Item],
    out_root: Path,
    audio_cfg: AudioConfig,
    nj: int = 1,
    chunk_size: int = 48,
    progress: str | None = None,
) -> dict[str, Rendered]:
    """Render every item under ``out_root``; returns id -> Rendered. With ``progress`` (its
    name), the words synthesised out of the total are reported (pyadml.train.progress: on the
    stage's console under run_stage, else on stderr).

    Words a voice cannot speak (pyadml.synth.voices.check_clip) are dropped: they leave
    ``item.words`` for ``item.dropped`` (a joined item drops whole), and an item with no word
    left is not written and has no entry in the result. ``drop_report`` counts them."""
    tasks = [(chunk, str(out_root), audio_cfg) for chunk in _chunks(items, chunk_size)]
    results: dict[str, Rendered] = {}
    bar = None
    if progress is not None:
        from pyadml.train.progress import Progress

        bar = Progress(progress, sum(len(i.words) for i in items), "words")
    if nj <= 1:
        mapped = map(_render_chunk, tasks)
    else:
        pool = ProcessPoolExecutor(max_workers=nj)
        mapped = pool.map(_render_chunk, tasks)
    try:
        for (chunk_items, _, _), chunk in zip(tasks, mapped):  # in order: map keeps it
            for item, r in zip(chunk_items, chunk):
                assert item.id == r.id
                if r.dropped:
                    item.dropped = list(r.dropped)
                    if not item.joined:
                        item.words = [w for w, _, _ in r.words]
                if r.num_samples:
                    results[r.id] = r
            if bar is not None:
                bar.update(sum(len(i.words) for i in chunk_items))
    finally:
        if nj > 1:
            pool.shutdown(cancel_futures=True)
        if bar is not None:
            bar.close()
    return results


def drop_report(items: Sequence[Item]) -> dict:
    """Words the voices could not speak (after render): the total, per speaker, and examples."""
    per_spk: dict[str, int] = {}
    examples: list[str] = []
    for item in items:
        if item.dropped:
            spk = item.voice.speaker_id
            per_spk[spk] = per_spk.get(spk, 0) + len(item.dropped)
            examples += [f"{spk}:{w}" for w in item.dropped[: max(0, 10 - len(examples))]]
    return {"dropped_words": sum(per_spk.values()), "dropped_by_speaker": dict(sorted(per_spk.items())),
            "dropped_examples": examples[:10]}
