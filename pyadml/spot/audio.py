"""Audio input for the keyword spotter: files, arrays and raw PCM streams, all torch-free.

Everything becomes mono float32 at the model's rate, the way pyadml.score.pairs.read_audio
does it (channels averaged, polyphase resampling), so a clip scores here as in score_pairs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import BinaryIO, Iterator, Union

import numpy as np


class SpotError(ValueError):
    """A bad input to the keyword spotter; the message names the value."""


AudioInput = Union[str, os.PathLike, tuple]


def _resample(audio: np.ndarray, sr: int, rate: int) -> np.ndarray:
    if sr == rate:
        return audio
    from scipy.signal import resample_poly

    g = math.gcd(int(sr), int(rate))
    return resample_poly(audio, rate // g, int(sr) // g).astype(np.float32)


def as_mono(samples, sr, rate: int, what: str) -> np.ndarray:
    """(N,) or (N, C) samples at ``sr`` -> (N',) float32 at ``rate``; NaN/inf is an error."""
    try:
        sr_ok = float(sr) > 0 and float(sr) == int(sr)
    except (TypeError, ValueError):
        sr_ok = False
    if not sr_ok:
        raise SpotError(f"{what}: sample rate must be a positive integer, got {sr!r}")
    x = np.asarray(samples)
    if x.dtype.kind not in "fiu":
        raise SpotError(f"{what}: samples must be numbers, got dtype {x.dtype}")
    if x.dtype.kind in "iu":  # integer PCM: full scale is 1.0, as soundfile reads it
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise SpotError(f"{what}: expected (samples,) or (samples, channels), got shape {x.shape}")
    if x.size == 0:
        raise SpotError(f"{what} holds no samples")
    # Checked before resampling too: the filter would smear one NaN over its neighbours.
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.isfinite(x))[0])
        raise SpotError(f"{what} contains NaN or inf samples (first at sample {bad})")
    return _resample(x, int(sr), rate)


def load_audio(source: AudioInput, rate: int) -> np.ndarray:
    """A path or an ``(array, sample_rate)`` pair -> mono float32 at ``rate``."""
    if isinstance(source, tuple):
        if len(source) != 2:
            raise SpotError(f"audio must be a path or (samples, sample_rate), got a tuple of "
                            f"{len(source)}")
        return as_mono(source[0], source[1], rate, "audio array")
    if not isinstance(source, (str, os.PathLike)):
        raise SpotError(f"audio must be a path or (samples, sample_rate), got {type(source).__name__}")
    import soundfile as sf

    path = Path(source)
    if not path.is_file():
        raise SpotError(f"cannot read {path}: no such file")
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for corrupt files
        raise SpotError(f"cannot read {path}: {e}") from None
    return as_mono(audio, sr, rate, str(path))


def read_pcm_chunks(stream: BinaryIO, sample_rate: int, rate: int, chunk_seconds: float = 0.1,
                    channels: int = 1) -> Iterator[np.ndarray]:
    """Raw little-endian 16-bit PCM from a byte stream, as float32 chunks at ``rate``.

    A stream that ends inside a sample (an odd byte, or a partial multi-channel frame) is an
    error naming the byte count: silently dropping it would shift every later sample.
    Resampling is per chunk with scipy's polyphase filter only when the rates differ.
    """
    if sample_rate < 1 or channels < 1:
        raise SpotError(f"PCM stream: bad sample rate {sample_rate} or channels {channels}")
    frame_bytes = 2 * channels
    want = max(1, int(round(chunk_seconds * sample_rate))) * frame_bytes
    total = 0
    buf = b""
    while True:
        data = stream.read(want - len(buf))
        if not data:
            break
        buf += data
        total += len(data)
        if len(buf) < want:
            continue
        yield _pcm(buf, channels, sample_rate, rate, total)
        buf = b""
    if len(buf) % frame_bytes:
        raise SpotError(f"PCM stream ended mid-sample: {total} bytes is not a whole number of "
                        f"{frame_bytes}-byte samples ({channels} channel(s) x 16 bit)")
    if buf:
        yield _pcm(buf, channels, sample_rate, rate, total)


def _pcm(buf: bytes, channels: int, sample_rate: int, rate: int, total: int) -> np.ndarray:
    x = np.frombuffer(buf, dtype="<i2").reshape(-1, channels)
    return as_mono(x, sample_rate, rate, f"PCM stream (at byte {total})")
