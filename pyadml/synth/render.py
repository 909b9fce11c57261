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
from pyadml.synth.voices import SAMPLE_RATE, Prosody, Voice, synthesize

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
    call (natural phrase prosody, no word boundaries); otherwise each word is synthesised alone
    and placed on the 10 ms grid, so the CTM is exact."""

    id: str
    rel_path: str
    voice: Voice
    words: Sequence[str]
    prosody: Prosody
    pauses: Sequence[float]
    peak_dbfs: float
    seed: int
    joined: bool = False


@dataclass
class Rendered:
    id: str
    rel_path: str
    num_samples: int
    words: list[tuple[str, int, int]] = field(default_factory=list)  # (word, start, length)

    @property
    def duration(self) -> float:
        return self.num_samples / SAMPLE_RATE


def _grid(samples: float) -> int:
    return int(np.ceil(samples / HOP)) * HOP


def _render_chunk(args) -> list[Rendered]:
    items, out_root, audio_cfg = args
    voice = items[0].voice
    texts, prosodies, owners = [], [], []
    for k, item in enumerate(items):
        units = [" ".join(item.words)] if item.joined else list(item.words)
        texts += units
        prosodies += [item.prosody] * len(units)
        owners += [k] * len(units)
    clips = synthesize(voice, texts, prosodies, trim_db=audio_cfg.trim_db, margin=audio_cfg.trim_margin)
    per_item: list[list[np.ndarray]] = [[] for _ in items]
    for k, clip in zip(owners, clips):
        per_item[k].append(clip)

    out = []
    for item, segs in zip(items, per_item):
        rng = np.random.default_rng(item.seed)
        gaps = [_grid(p * SAMPLE_RATE) for p in item.pauses]
        lengths = [_grid(len(s)) for s in segs]
        total = sum(gaps[: len(segs) + 1]) + sum(lengths)
        audio = np.zeros(total, dtype=np.float32)
        pos = gaps[0]
        words = []
        labels = [" ".join(item.words)] if item.joined else list(item.words)
        for i, (seg, length, label) in enumerate(zip(segs, lengths, labels)):
            audio[pos : pos + len(seg)] = seg
            words.append((label, pos, length))
            pos += length + gaps[i + 1]
        audio *= 10 ** (item.peak_dbfs / 20) / max(float(np.abs(audio).max()), 1e-9)
        # The engines write exact digital zeros, which no microphone does.
        audio += rng.normal(0.0, audio_cfg.dither, size=audio.shape).astype(np.float32)
        write_wav_atomic(Path(out_root) / item.rel_path, audio, SAMPLE_RATE)
        out.append(Rendered(item.id, item.rel_path, len(audio), words))
    return out


def _chunks(items: Sequence[Item], size: int) -> Iterable[list[Item]]:
    by_voice: dict[Voice, list[Item]] = {}
    for item in items:
        by_voice.setdefault(item.voice, []).append(item)
    for voice_items in by_voice.values():
        it = iter(voice_items)
        while chunk := list(itertools.islice(it, size)):
            yield chunk


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
    stage's console under run_stage, else on stderr)."""
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
            for r in chunk:
                results[r.id] = r
            if bar is not None:
                bar.update(sum(len(i.words) for i in chunk_items))
    finally:
        if nj > 1:
            pool.shutdown(cancel_futures=True)
        if bar is not None:
            bar.close()
    return results
