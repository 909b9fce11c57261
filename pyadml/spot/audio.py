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
    return _resample(to_mono(samples, sr, what), int(sr), rate)


# More channels than this, and than samples, is a channels-first array, not a recording.
MAX_CHANNELS = 64


def to_mono(samples, sr, what: str, offset: int = 0) -> np.ndarray:
    """(N,) or (N, C) samples -> (N,) float32 at the same rate, checked as ``as_mono`` does;
    ``offset``: the first sample's place in a longer input, for the error message."""
    try:
        sr_ok = float(sr) > 0 and float(sr) == int(sr)
    except (TypeError, ValueError):
        sr_ok = False
    if not sr_ok:
        raise SpotError(f"{what}: sample rate must be a positive integer, got {sr!r}")
    if isinstance(samples, (bytes, bytearray, memoryview)):
        # What PyAudio and sounddevice's raw streams hand over.
        raise SpotError(f"{what}: samples must be numbers, got {type(samples).__name__}; for raw "
                        f"16-bit PCM give np.frombuffer(chunk, dtype=np.int16)")
    x = np.asarray(samples)
    if x.dtype.kind not in "fiu":
        raise SpotError(f"{what}: samples must be numbers, got dtype {x.dtype}")
    if x.dtype == np.uint8:  # 8-bit PCM (WAV) is unsigned, 128 its zero, as soundfile reads it
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif x.dtype.kind == "i" and x.dtype.itemsize <= 4:  # PCM: full scale is 1.0, as soundfile
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    elif x.dtype.kind in "iu":
        # No PCM has this width: np.array(list of ints) is int64, and scaled by 2^63 its
        # 16-bit values would be silence.
        raise SpotError(f"{what}: integer samples of dtype {x.dtype} are no PCM format; give "
                        f"int16 or int32 PCM (e.g. samples.astype(np.int16) for 16-bit "
                        f"values), uint8 (8-bit WAV) or floats in [-1, 1]")
    else:
        from pyadml.fileio import float_scale_error

        bad_scale = float_scale_error(x[np.isfinite(x)], what)
        if bad_scale:
            raise SpotError(bad_scale)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2 and x.shape[1] > max(MAX_CHANNELS, x.shape[0]):
        # torchaudio and librosa give (channels, samples): averaged as (samples, channels) it
        # would leave one sample per channel, silently.
        raise SpotError(f"{what}: expected (samples,) or (samples, channels), got shape "
                        f"{x.shape}, i.e. {x.shape[1]} channels; for channels-first audio "
                        f"(torchaudio, librosa) give samples.T")
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise SpotError(f"{what}: expected (samples,) or (samples, channels), got shape {x.shape}")
    if x.size == 0:
        raise SpotError(f"{what} holds no samples")
    # Checked before resampling too: the filter would smear one NaN over its neighbours.
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.isfinite(x))[0])
        raise SpotError(f"{what} contains NaN or inf samples (first at sample {offset + bad})")
    return x


class StreamResampler:
    """scipy's ``resample_poly`` (Kaiser 5.0 window, zeros beyond both ends) applied to audio
    that arrives in pieces: the concatenated output equals ``resample_poly`` of the whole
    signal, to float rounding, whatever the piece sizes.

    Resampling each piece on its own would pad every piece with zeros (a dip in level at each
    boundary) and round every piece's length up (1024 samples at 48 kHz give 342 instead of
    341.33: 7 s of drift, and inserted samples, per hour of audio).
    Output k of the full FIR output (resample_poly then drops the filter's delay) reads inputs
    floor(k d / u) - taps + 1 ... floor(k d / u). A segment of the input that starts at a
    multiple of d, filtered by upfirdn, gives exactly those outputs whose inputs it holds.
    """

    def __init__(self, sr: int, rate: int):
        from scipy.signal import firwin

        g = math.gcd(int(sr), int(rate))
        self.sr, self.up, self.down = int(sr), int(rate) // g, int(sr) // g
        if self.up == self.down:
            return
        max_rate = max(self.up, self.down)
        half_len = 10 * max_rate
        h = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        pre_pad = self.down - half_len % self.down
        self.pre_remove = (half_len + pre_pad) // self.down
        self.h = np.concatenate([np.zeros(pre_pad), h])
        self.taps = -(-self.h.size // self.up)  # input samples one output reads
        self.buf = np.zeros(0, np.float32)  # the input from sample self.buf_at on
        self.buf_at = 0  # always a multiple of down
        self.n_in = 0
        self.k = self.pre_remove  # the next full-output index to emit

    def _emit(self, k_end: int, x: np.ndarray) -> np.ndarray:
        from scipy.signal import upfirdn

        if k_end <= self.k:
            self.buf = x
            return np.zeros(0, np.float32)
        last = (k_end - 1) * self.down // self.up  # the last input sample read
        seg = x[: last + 1 - self.buf_at]
        y = upfirdn(self.h, seg, self.up, self.down)
        off = self.buf_at * self.up // self.down  # output k is y[k - off]
        out = y[self.k - off : k_end - off].astype(np.float32)
        self.k = k_end
        # Keep from the first sample the next output reads, rounded down to a multiple of d.
        first = max(0, self.k * self.down // self.up - self.taps + 1)
        keep_at = max(self.buf_at, first // self.down * self.down)
        self.buf = x[keep_at - self.buf_at :]
        self.buf_at = keep_at
        return out

    def process(self, x: np.ndarray) -> np.ndarray:
        """Mono samples at ``sr`` -> the output samples they complete."""
        if self.up == self.down:
            return x
        self.n_in += x.size
        # Output k is final once input floor(k d / u) has arrived: k d < n_in u.
        return self._emit(-(-self.n_in * self.up // self.down),
                          np.concatenate([self.buf, np.asarray(x, np.float32)]))

    def finish(self) -> np.ndarray:
        """The last outputs (the filter's tail over zeros), as resample_poly ends."""
        if self.up == self.down:
            return np.zeros(0, np.float32)
        n_out = -(-self.n_in * self.up // self.down)
        return self._emit(self.pre_remove + n_out,
                          np.concatenate([self.buf, np.zeros(self.taps + self.down, np.float32)]))


def load_audio(source: AudioInput, rate: int) -> np.ndarray:
    """A path or an ``(array, sample_rate)`` pair -> mono float32 at ``rate``."""
    if isinstance(source, tuple):
        if len(source) != 2:
            raise SpotError(f"audio must be a path or (samples, sample_rate), got a tuple of "
                            f"{len(source)}")
        return as_mono(source[0], source[1], rate, "audio array")
    if not isinstance(source, (str, os.PathLike)):
        raise SpotError(f"audio must be a path or (samples, sample_rate), got {type(source).__name__}")
    # Block by block, each made mono and resampled as it comes (StreamResampler, equal to
    # resampling the whole): an hour at 48 kHz stereo holds 1.4 GB as float32, its 16 kHz mono
    # 0.23 GB.
    resampler, parts = None, []
    for x, sr in file_blocks(source):
        resampler = resampler or StreamResampler(sr, rate)
        parts.append(resampler.process(x))
    parts.append(resampler.finish())
    return np.concatenate(parts)


def file_blocks(path: str | os.PathLike) -> Iterator[tuple[np.ndarray, int]]:
    """An audio file as (mono float32 block, sample rate) pairs of BLOCK_SECONDS each, checked
    as ``as_mono`` checks arrays; errors name the file (and a bad sample's place in it)."""
    import soundfile as sf

    from pyadml.fileio import audio_read_error, wav_truncation

    path = Path(path)
    if path.is_dir():
        raise SpotError(f"cannot read {path}: it is a directory; name its audio files "
                        f"({path}/*.wav) or list them in a wav.scp (--wav-scp)")
    if path.exists() and not path.is_file():
        # A pipe, as bash's <(sox a.mp3 -t wav -) names one: read once, not sought; decoded
        # whole, as a wav.scp command's output is.
        yield from _pipe_blocks(path)
        return
    if not path.is_file():
        raise SpotError(f"cannot read {path}: no such file")
    if path.stat().st_size == 0:
        raise SpotError(f"cannot read {path}: the file is empty (0 bytes)")
    truncated = wav_truncation(path)
    if truncated:
        raise SpotError(truncated)
    at = 0
    try:
        f = sf.SoundFile(str(path))
    except Exception as e:  # soundfile raises several types for corrupt files
        shorten = _shorten_or_none(path)
        if shorten is None:
            raise SpotError(audio_read_error(path, e, wav_scp=True)) from None
        samples, sr = shorten
        for at in range(0, len(samples), BLOCK_SECONDS * sr):
            yield to_mono(samples[at:at + BLOCK_SECONDS * sr], sr, str(path), offset=at), sr
        if not len(samples):
            raise SpotError(f"{path} holds no samples")
        return
    with f:
        sr = f.samplerate
        while True:
            try:
                block = f.read(BLOCK_SECONDS * sr, dtype="float32", always_2d=True)
            except Exception as e:
                raise SpotError(f"cannot read {path} (after sample {at}): {e}") from None
            if not block.shape[0]:
                break
            x = to_mono(block, sr, str(path), offset=at)
            at += block.shape[0]
            yield x, sr
    if at == 0:
        raise SpotError(f"{path} holds no samples")


BLOCK_SECONDS = 60


def _pipe_blocks(path: Path) -> Iterator[tuple[np.ndarray, int]]:
    import io

    import soundfile as sf

    from pyadml.fileio import audio_read_error

    try:
        data = path.read_bytes()
    except OSError as e:
        raise SpotError(f"cannot read {path}: {e}") from None
    if not data:
        raise SpotError(f"cannot read {path}: it gave no bytes")
    buf = io.BytesIO(data)
    try:
        samples, sr = sf.read(buf, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types for a stream it cannot parse
        named = RuntimeError(str(e).replace(repr(buf), str(path)))  # not '<_io.BytesIO ...>'
        raise SpotError(audio_read_error(path, named, wav_scp=True)) from None
    if not len(samples):
        raise SpotError(f"{path} holds no samples")
    for at in range(0, len(samples), BLOCK_SECONDS * sr):
        yield to_mono(samples[at:at + BLOCK_SECONDS * sr], sr, str(path), offset=at), sr


def _shorten_or_none(path: Path):
    """A Shorten-compressed SPHERE file decoded (pyadml.fileio.read_shorten_sphere), or None."""
    from pyadml.fileio import read_shorten_sphere
    from pyadml.sphere import SphereError

    try:
        return read_shorten_sphere(path)
    except SphereError as e:
        raise SpotError(f"cannot read {e}") from None


def read_pcm_chunks(stream: BinaryIO, sample_rate: int, rate: int, chunk_seconds: float = 0.1,
                    channels: int = 1) -> Iterator[np.ndarray]:
    """Raw little-endian 16-bit PCM from a byte stream, as float32 chunks at ``rate``.

    A stream that ends inside a sample (an odd byte, or a partial multi-channel frame) is an
    error naming the byte count: silently dropping it would shift every later sample.
    Other rates are resampled across chunk boundaries (StreamResampler): the chunks together
    equal the whole stream resampled at once.
    """
    if sample_rate < 1 or channels < 1:
        raise SpotError(f"PCM stream: bad sample rate {sample_rate} or channels {channels}")
    resampler = StreamResampler(sample_rate, rate)
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
        out = resampler.process(_pcm(buf, channels, sample_rate, total))
        if out.size:
            yield out
        buf = b""
    if len(buf) % frame_bytes:
        raise SpotError(f"PCM stream ended mid-sample: {total} bytes is not a whole number of "
                        f"{frame_bytes}-byte samples ({channels} channel(s) x 16 bit)")
    out = np.concatenate([resampler.process(_pcm(buf, channels, sample_rate, total)) if buf
                          else np.zeros(0, np.float32), resampler.finish()])
    if out.size:
        yield out


def _pcm(buf: bytes, channels: int, sample_rate: int, total: int) -> np.ndarray:
    x = np.frombuffer(buf, dtype="<i2").reshape(-1, channels)
    return to_mono(x, sample_rate, f"PCM stream (at byte {total})")
