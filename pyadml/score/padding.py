"""Does a score depend on how much silence surrounds the keyword? The same word clips scored
with a little and with a lot of context (issue 16, item 3).

Each of up to ``max_clips`` word cuts (stage 2's ``data/cuts/<set>.jsonl.gz`` of a words test
set) is written once per padding: its audio (which already holds stage 2's 50 ms on each side) with
``pad - 0.05`` s of added silence before and after, and one white noise at ``noise_db`` dB
below the word's power laid under the whole clip, the same noise for every padding, so that the
amount of context is the only difference. Every clip is scored against every keyword of the
chosen clips (the ``score_clips`` protocol: AP, EER, AUC, top-1), with and without the energy
voice-activity front end (``pyadml.score.vad``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import soundfile as sf

from pyadml.score.clips import score_clips
from pyadml.score.floor import check_floor_option

BASE_PAD = 0.05  # stage 2's padding, already in the cuts


def write_padded_clips(cuts_path, out_dir, pads=(0.05, 1.0), max_clips: int = 200,
                       noise_db: float = -40.0, seed: int = 0, rate: int = 16000) -> dict[float, Path]:
    """``<out_dir>/pad<p>/clips.tsv`` (``<wav>\\t<keyword>``) for each padding ``p``."""
    from lhotse import CutSet

    import pyadml.data.augment  # noqa: F401  transforms of augmented cuts
    from pyadml.data.cuts import is_span

    cuts = [c for c in CutSet.from_file(cuts_path) if c.supervisions and not is_span(c)]
    if len(cuts) > max_clips:
        cuts = random.Random(seed).sample(cuts, max_clips)
    if len({c.supervisions[0].text for c in cuts}) < 2:
        raise ValueError(f"{cuts_path}: the clips need at least two different words")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    lists = {p: [] for p in pads}
    for i, c in enumerate(cuts):
        x = c.load_audio()[0].astype(np.float32)
        if c.sampling_rate != rate:
            raise ValueError(f"cut {c.id}: {c.sampling_rate} Hz, expected {rate}")
        power = float(np.mean(x.astype(np.float64) ** 2)) or 1e-10
        longest = int(round(max(0.0, max(pads) - BASE_PAD) * rate))
        noise = rng.standard_normal(x.size + 2 * longest) * np.sqrt(power * 10 ** (noise_db / 10))
        for p in pads:
            extra = int(round(max(0.0, p - BASE_PAD) * rate))
            y = np.concatenate([np.zeros(extra, np.float32), x, np.zeros(extra, np.float32)])
            y = y + noise[longest - extra: longest - extra + y.size].astype(np.float32)
            wav = out_dir / f"pad{p:g}" / f"{i:04d}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(wav), y, rate, subtype="FLOAT")
            lists[p].append(f"{wav.name}\t{c.supervisions[0].text}")
    out = {}
    for p, lines in lists.items():
        out[p] = out_dir / f"pad{p:g}" / "clips.tsv"
        out[p].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def padding_check(model, cuts_path, out_dir, pads=(0.05, 1.0), max_clips: int = 200,
                  noise_db: float = -40.0, seed: int = 0, vad_options=(False, True),
                  floor_db: float | None = None) -> list[dict]:
    """Metrics for every (padding, VAD on/off); also written to ``<out_dir>/metrics.json``.
    ``floor_db``: the level-relative floor on the features (pyadml.score.floor); default the
    model's own, as score_clips does. A bad value fails before any clip is written."""
    floor_db = check_floor_option(floor_db)
    lists = write_padded_clips(cuts_path, out_dir, pads, max_clips, noise_db, seed)
    rows = []
    for vad in vad_options:
        for p, tsv in lists.items():
            m = score_clips(model, tsv, Path(out_dir) / f"pad{p:g}" / ("vad" if vad else "raw"),
                            vad=vad, floor_db=floor_db)
            rows.append({"pad": p, "vad": vad, "floor_db": m["floor_db"],
                         **{k: m[k] for k in ("clips", "AP", "EER", "AUC", "top1")}})
    (Path(out_dir) / "metrics.json").write_text(json.dumps(rows, indent=1) + "\n")
    return rows


def scores_by_padding(out_dir, pads, vad: bool) -> dict[float, np.ndarray]:
    """The score column of each padding's scores.tsv (same clip and keyword order)."""
    sub = "vad" if vad else "raw"
    return {p: np.array([float(r.split("\t")[-1]) for r in
                         (Path(out_dir) / f"pad{p:g}" / sub / "scores.tsv").read_text().splitlines()])
            for p in pads}
