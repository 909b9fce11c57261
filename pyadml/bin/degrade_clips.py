"""A copy of a clips directory (clips.tsv + audio, as score_clips reads it) through a channel
that users' recordings go through: clipping, a lower sampling rate, a lossy codec. It measures
how a model holds up on such recordings without recording them again.

    python -m pyadml.bin.degrade_clips --in <dir> --out <dir> [--clip-db D] [--rate R]
        [--codec mp3|opus|vorbis [--quality Q]]

The options apply in that order (a microphone clips, then the device's rate and codec):
--clip-db D hard-clips each clip D dB below its own peak (pyadml.data.augment.Clip, no
gain applied); --rate R resamples to R Hz and writes the clip at R (the scorers resample it
back, as they do a user's 8 kHz file); --codec encodes with libsndfile's MP3, Opus or Vorbis
encoder at compression level Q (0 best, 1 smallest). Every clip keeps its relative path (with
the codec's extension); clips.tsv is written last, and a copy that fails is removed, so no
partial set is ever taken for a whole one. Then, for instance:

    python -m pyadml.bin.score_clips --model exp/<tag>/final.pt --clips <out>/clips.tsv
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from pyadml.fileio import atomic_path, write_lines_atomic

CODECS = {"mp3": ("MP3", "MPEG_LAYER_III", ".mp3"), "opus": ("OGG", "OPUS", ".ogg"),
          "vorbis": ("OGG", "VORBIS", ".ogg")}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


class DegradeError(ValueError):
    pass


def read_list(clips_tsv: Path) -> list[tuple[int, str, str]]:
    """(line number, relative audio path, the rest of the line: keyword[\\tspeaker]) of every
    clip line."""
    if not clips_tsv.is_file():
        raise DegradeError(f"{clips_tsv}: no such file; --in must hold clips.tsv "
                           "(<audio path relative to it>\\t<keyword>[\\t<speaker>] lines)")
    try:
        lines = clips_tsv.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:  # a Latin-1 list, as score_clips names it
        raise DegradeError(f"cannot read the clip list {clips_tsv}: {e}") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) not in (2, 3) or not parts[0] or not all(x.strip() for x in parts[1:]):
            raise DegradeError(f"{clips_tsv}:{n}: expected '<audio>\\t<keyword>[\\t<speaker>]', "
                               f"got {line!r}")
        if Path(parts[0]).is_absolute() or ".." in Path(parts[0]).parts:
            raise DegradeError(f"{clips_tsv}:{n}: the audio path {parts[0]!r} must be relative "
                               "and inside the directory, so that the copy can keep it")
        out.append((n, parts[0], "\t".join(parts[1:])))
    if not out:
        raise DegradeError(f"{clips_tsv} lists no clips")
    return out


def degrade(audio: np.ndarray, rate: int, clip_db: float | None, new_rate: int | None) -> tuple[np.ndarray, int]:
    """``audio`` (samples, channels) through the clipping and resampling of the options."""
    if clip_db is not None:
        from pyadml.data.augment import Clip

        audio = Clip(clip_db)(audio.T, rate).T
    if new_rate is not None and new_rate != rate:
        from scipy.signal import resample_poly

        g = math.gcd(int(rate), int(new_rate))
        audio = resample_poly(audio, new_rate // g, rate // g, axis=0).astype(np.float32)
        # Resampling can overshoot a clipped or full-scale signal: keep it within the format.
        audio = np.clip(audio, -1.0, 1.0)
        rate = new_rate
    return audio, rate


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pyadml.bin.degrade_clips", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--in", dest="src", required=True, help="directory with clips.tsv")
    p.add_argument("--out", required=True, help="new directory for the degraded copy")
    p.add_argument("--clip-db", type=float, help="hard clipping this many dB below each clip's peak")
    p.add_argument("--rate", type=int, help="resample to this rate in Hz")
    p.add_argument("--codec", choices=sorted(CODECS), help="lossy encoding through libsndfile")
    p.add_argument("--quality", type=float, default=0.5,
                   help="the codec's compression level, 0 (best) to 1 (smallest); default 0.5")
    a = p.parse_args(argv)
    src, out = Path(a.src), Path(a.out)
    try:
        if a.clip_db is None and a.rate is None and a.codec is None:
            raise DegradeError("give at least one of --clip-db, --rate, --codec")
        if a.clip_db is not None and not 0 < a.clip_db <= 60:
            raise DegradeError(f"--clip-db must be in (0, 60] dB below the peak, got {a.clip_db}")
        if a.rate is not None and not 1000 <= a.rate <= 192000:
            raise DegradeError(f"--rate must be a sampling rate in Hz (1000-192000), got {a.rate}")
        if not 0 <= a.quality <= 1:
            raise DegradeError(f"--quality must be in [0, 1], got {a.quality}")
        if a.codec == "opus" and a.rate is not None and a.rate not in OPUS_RATES:
            raise DegradeError(f"--codec opus encodes only at {', '.join(map(str, OPUS_RATES))} Hz, "
                               f"got --rate {a.rate}")
        clips = read_list(src / "clips.tsv")
        if out.exists() and (out.resolve() == src.resolve() or any(out.iterdir())):
            raise DegradeError(f"--out {out} exists and is not empty (or is --in); give a new directory")
        created = not out.exists()
        try:
            lines = copy_clips(src, out, clips, a)
        except DegradeError:
            if created:  # a failed copy leaves nothing behind, not a part of the set
                shutil.rmtree(out, ignore_errors=True)
            raise
    except DegradeError as e:
        print(f"degrade_clips: error: {e}", file=sys.stderr)
        return 1
    print(f"degrade_clips: {len(lines)} clips -> {out / 'clips.tsv'}")
    return 0


def copy_clips(src: Path, out: Path, clips, a) -> list[str]:
    """Every clip of ``clips`` through the channel of the options ``a``, then clips.tsv."""
    lines = []
    for n, rel, rest in clips:  # rest: the keyword, and the speaker where the list has one
        where = f"{src / 'clips.tsv'}:{n}"
        try:
            info = sf.info(str(src / rel))
            audio, rate = sf.read(str(src / rel), dtype="float32", always_2d=True)
        except Exception as e:  # soundfile raises several types for missing or corrupt files
            raise DegradeError(f"{where}: cannot read {src / rel}: {e}") from None
        audio, rate = degrade(audio, rate, a.clip_db, a.rate)
        dest, fmt, sub, kwargs = out / rel, info.format, info.subtype, {}
        if a.codec:
            fmt, sub, ext = CODECS[a.codec]
            dest = dest.with_suffix(ext)
            kwargs["compression_level"] = a.quality
        with atomic_path(dest) as tmp:
            try:
                sf.write(str(tmp), audio, rate, format=fmt, subtype=sub, **kwargs)
            except Exception as e:
                raise DegradeError(f"{where}: cannot write {dest}: {e}") from None
        lines.append(f"{dest.relative_to(out).as_posix()}\t{rest}")
    write_lines_atomic(out / "clips.tsv", lines)
    return lines


if __name__ == "__main__":
    sys.exit(main())
