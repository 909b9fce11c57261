"""Atomic file writes: a file either holds its complete new content or its old one.

Everything a stage writes goes to a temporary name in the same directory and is renamed into
place, so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.
    ``suffix``: the temporary name's ending (lhotse picks a manifest's format by its name)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:
        if e.errno in NotWritable.CODES:
            raise NotWritable(e, path) from e
        raise
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates 0600; give the file the mode a plain open() would (shared clusters).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except Exception as e:
        full = as_disk_full(e, path, tmp)
        if full is None:
            raise
        raise full from e
    finally:
        if tmp.exists():
            tmp.unlink()


class DiskFull(OSError):
    """A write that a full disk (ENOSPC) or an exhausted quota (EDQUOT) stopped, in one line:
    the file, the cause, the space left and what to do. Writers that wrap the OS's error in
    their own (torch.save's "unexpected pos 261499 vs 261440", libsndfile's "System error.")
    say none of it."""

    def __init__(self, code: int, path: str | os.PathLike):
        path = Path(path)
        cause = "disk quota exceeded" if code == getattr(errno, "EDQUOT", -1) else \
            "no space left on the device"
        try:
            import shutil

            free = f" ({shutil.disk_usage(path.parent).free // 1024} KiB free)"
        except OSError:
            free = ""
        super().__init__(f"{path}: cannot write it: {cause} of {path.parent}{free}; nothing "
                         f"half-written is left under that name. Free some space, or move the "
                         f"recipe to a larger disk, then run the stage again")
        self.errno = code
        self.filename = str(path)

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):  # a worker process's error reaches its parent whole (pickled)
        return _rebuild_error, (type(self), self.args[0], self.errno, self.filename)


class NotWritable(PermissionError):
    """A file that cannot even be begun: its directory is on a read-only file system or not the
    user's (an experiment shared read-only). One line naming the file, the directory and the
    cause, not the temporary name that tempfile tried."""

    CODES = {errno.EROFS: "is on a read-only file system",
             errno.EACCES: "is not writable by this user",
             errno.EPERM: "is not writable by this user"}

    def __init__(self, e: OSError, path: str | os.PathLike):
        path = Path(path)
        where = _existing(path.parent)
        super().__init__(f"{path}: cannot write it: {where} {self.CODES[e.errno]}; write the "
                         f"output elsewhere (a copy of a shared experiment, or another output "
                         f"directory)")
        self.errno = e.errno
        self.filename = str(path)

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):  # a worker process's error reaches its parent whole (pickled)
        return _rebuild_error, (type(self), self.args[0], self.errno, self.filename)


def _existing(where: Path) -> Path:
    """``where``, or the nearest directory above it that exists (where it would be made)."""
    while not where.exists() and where != where.parent:
        where = where.parent
    return where


def _rebuild_error(cls, message: str, code: int, filename: str) -> OSError:
    e = cls.__new__(cls)
    OSError.__init__(e, message)
    e.errno, e.filename = code, filename
    return e


def cannot_write_in(directory: str | os.PathLike) -> str | None:
    """Why no file can be made in ``directory`` (or, where it does not exist yet, in the nearest
    directory above it, which it would be made in), e.g. "exp/x/results is on a read-only file
    system", or None; nothing is left behind. Steps that write their results at the end check
    this first: a model's experiment shared read-only failed only after all the scoring."""
    where = _existing(Path(directory))
    if not where.is_dir():
        return f"{where} is not a directory"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".write-check.", dir=where)
    except OSError as e:
        if e.errno in NotWritable.CODES:
            return f"{where} {NotWritable.CODES[e.errno]}"
        return f"cannot make a file in {where}: {e.strerror or e}"
    os.close(fd)
    os.unlink(tmp)
    return None


def as_disk_full(e: BaseException, path: str | os.PathLike, partial: Path) -> "DiskFull | None":
    """The DiskFull naming ``path`` that a full disk behind ``e`` makes (``partial``, the
    unfinished file, removed first, so that the free space it says is what the user has), or
    None where ``e`` is another error or already a DiskFull."""
    full = disk_full_in(e)
    if full is None or isinstance(e, DiskFull):
        return None
    partial.unlink(missing_ok=True)
    return DiskFull(full.errno, path)


def disk_full_in(e: BaseException | None) -> OSError | None:
    """The ENOSPC or EDQUOT OSError in ``e``'s chain (its cause or context), or None: torch
    raises its own RuntimeError while the file object's OSError is its context."""
    codes = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in codes:
            return e
        e = e.__cause__ or e.__context__
    return None


def torch_save_atomic(obj, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` atomically. Through a Python file object, not the path: torch's
    own writer reports a full disk as "basic_ios::clear: iostream error" without the OS's error,
    and the traceback keeps its file open, so the space of the unfinished file is not freed
    (and a one-line error report after it could not be written either)."""
    import torch

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)


def _write_trouble(tmp: Path, size: int) -> str:
    """Why a write to ``tmp`` (``size`` bytes) may have failed, as " (...)", or ""."""
    import shutil

    try:
        free = shutil.disk_usage(tmp.parent).free
    except OSError:
        return ""
    if free < size + 65536:
        return (f" (no space left on the device of {tmp.parent}: {free // 1024} KiB free; "
                f"free some or move the recipe, then run the stage again)")
    if not os.access(tmp.parent, os.W_OK):
        return f" ({tmp.parent} is not writable)"
    return ""


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_lines_atomic(path: str | os.PathLike, lines) -> None:
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))


def write_wav_atomic(
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    format: str | None = None,
    subtype: str = "PCM_16",
) -> None:
    """Write float audio in [-1, 1] as 16-bit PCM; ``format="NIST"`` writes NIST SPHERE."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f"{path}: expected non-empty mono audio, got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"{path}: audio contains NaN or inf")
    path = Path(path)
    if format is None:
        format = "NIST" if path.suffix.lower() in (".sph", ".wv1", ".wv2") else "WAV"
    with atomic_path(path) as tmp:
        try:
            sf.write(str(tmp), np.clip(audio, -1.0, 1.0), sample_rate, format=format, subtype=subtype)
        except sf.LibsndfileError as e:
            # libsndfile says only "System error." for a full disk: name the file and the cause.
            raise OSError(f"{path}: cannot write the audio: {e}{_write_trouble(tmp, audio.size * 2)}") from e


def read_shorten_sphere(path: str | os.PathLike) -> tuple[np.ndarray, int] | None:
    """float32 samples (N, channels) and the rate of a Shorten-compressed SPHERE file (the LDC's
    WSJ), which soundfile cannot read; None for any other file. A damaged stream raises
    pyadml.sphere.SphereError naming the file."""
    from pyadml import sphere

    if not sphere.is_shorten_sphere(path):
        return None
    samples, rate = sphere.read_shorten_sphere(path)
    return samples.astype(np.float32) / 32768.0, rate


# A WAV data size that promises nothing: written to a pipe before the length was known.
_STREAMED_SIZES = (0, 0xFFFFFFFF)


def wav_truncation(path: str | os.PathLike) -> str | None:
    """``<path> is truncated: ...`` for a RIFF/WAVE file whose header promises more audio than
    the file holds (an interrupted copy, download or recording), else None. libsndfile reads
    such a file without a word, as if the audio ended there; Kaldi's readers refuse it. A
    streamed header (data size 0 or 0xFFFFFFFF, as ffmpeg and sox write to a pipe) promises
    nothing and is not truncated."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            size = os.fstat(f.fileno()).st_size
            byte_rate = 0
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, n = chunk[:4], int.from_bytes(chunk[4:], "little")
                if cid == b"data":
                    have = size - f.tell()
                    if n in _STREAMED_SIZES or n <= have:
                        return None
                    break
                if cid == b"fmt ":
                    body = f.read(n)
                    if len(body) >= 12:
                        byte_rate = int.from_bytes(body[8:12], "little")
                else:
                    f.seek(n, 1)
                f.seek(n & 1, 1)  # chunks are word-aligned
    except OSError:
        return None
    p = Path(path)

    def amount(b: int) -> str:
        return f"{b} bytes" + (f" ({b / byte_rate:.2f} s)" if byte_rate else "")

    return (f"{path} is truncated: its header promises {amount(n)} of audio, the file holds "
            f"{amount(have)} (an interrupted copy or recording?); copy it again, or keep what it "
            f"holds by rewriting its header: ffmpeg -i {p.name} {p.stem}_fixed.wav")


def audio_read_error(path: str | os.PathLike, error: Exception, wav_scp: bool = False) -> str:
    """``cannot read <path>: <error>``, and what to do when soundfile does not know the format
    (a phone's .m4a/AAC, a video): convert it (``wav_scp``: or let a wav.scp command do it)."""
    msg = f"cannot read {path}: {error}"
    if "format not recognised" in str(error).lower():
        p = Path(path)
        msg += (f" (soundfile reads WAV, FLAC, OGG/Opus and MP3; convert other formats first, e.g. "
                f"ffmpeg -i {p.name} -ac 1 -ar 16000 {p.stem}.wav"
                + (f", or name the file in a wav.scp line '<id> ffmpeg -i {p.name} -f wav - |'"
                   if wav_scp else "") + ")")
    return msg


# Float audio's full scale is 1.0; inter-sample peaks and mixes go a little beyond it. A peak
# 30 dB over it is 16-bit values stored as floats (np.float32(int16 samples), a float WAV
# written at PCM scale): the features' absolute floors then fall elsewhere and the scores move
# (a wake-word clip with digital silence: its keyword 0.48 -> 0.33).
FLOAT_PEAK_MAX = 32.0


def not_utf8_error(path: str | os.PathLike) -> str:
    """Where a file that is not UTF-8 (a Latin-1 editor's) first goes wrong, line and column,
    and how to convert it. A decoder's error position counts bytes of its buffer, not of the
    file, so the file is decoded line by line here."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                return (f"{path}:{n}: not UTF-8 text (byte {raw[bad.start:bad.start + 1]!r} at "
                        f"column {bad.start + 1}); convert the file, e.g. with iconv -f latin1 -t utf-8")
    return f"{path}: not UTF-8 text"


def float_scale_error(samples: np.ndarray, what: str) -> str | None:
    """The error for float samples far beyond full scale (see FLOAT_PEAK_MAX), else None."""
    if samples.dtype.kind != "f" or not samples.size:
        return None
    peak = float(np.max(np.abs(samples)))
    if not peak > FLOAT_PEAK_MAX:  # NaN is named by the caller's own check
        return None
    return (f"{what}: float samples reach {peak:.6g}, far beyond full scale (1.0): PCM values "
            f"stored as floats? Divide 16-bit values by 32768 (or give them as int16)")
