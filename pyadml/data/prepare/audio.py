"""Audio probing of wav.scp entries and files, NIST SPHERE headers, sph2pipe commands (or the
built-in Shorten decoder, pyadml.bin.sph2wav, where sph2pipe is not installed)."""

from __future__ import annotations

import functools
import io
import logging
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from lhotse import Recording
from lhotse.audio import AudioSource

from pyadml import sphere
from pyadml.fileio import wav_truncation
from pyadml.data.prepare.common import CorpusError

log = logging.getLogger(__name__)


def read_sphere_header(path: str | os.PathLike) -> dict[str, int | float | str]:
    """The fields of a NIST SPHERE header (``pyadml.sphere``), errors as CorpusError."""
    try:
        return sphere.read_sphere_header(path)
    except sphere.SphereError as e:
        raise CorpusError(str(e)) from None


@dataclass
class _Audio:
    source: AudioSource
    sampling_rate: int
    num_samples: int
    num_channels: int

    def recording(self, rec_id: str) -> Recording:
        return Recording(
            id=rec_id, sources=[self.source], sampling_rate=self.sampling_rate,
            num_samples=self.num_samples, duration=self.num_samples / self.sampling_rate,
            channel_ids=list(range(self.num_channels)),
        )


@functools.lru_cache(maxsize=64)
def _which(name: str, path_env: str | None) -> str | None:
    return shutil.which(name, path=path_env)


def _on_path(name: str) -> bool:
    # Cached per PATH value: a wav.scp may name the same decoder on every line.
    return _which(name, os.environ.get("PATH")) is not None


def sph2wav_command(path: str, channel: int | None = None) -> str:
    """The built-in stand-in for ``sph2pipe -f wav [-c N] FILE``: this interpreter running
    pyadml.bin.sph2wav (which decodes Shorten itself)."""
    opt = f" -c {channel}" if channel is not None else ""
    return f"{shlex.quote(sys.executable)} -m {SPH2WAV_MODULE}{opt} {shlex.quote(path)}"


def _sphere_size(path: str, where: str, channel: bool) -> tuple[int, int, int]:
    """(rate, samples, channels) of a SPHERE file from its header."""
    if not os.path.isfile(path):
        raise CorpusError(f"{where}: audio file {path} does not exist")
    hdr = read_sphere_header(path)
    missing = [k for k in ("sample_count", "sample_rate") if k not in hdr]
    if missing:
        raise CorpusError(f"{where}: {path}: SPHERE header lacks {', '.join(missing)}")
    n_ch = 1 if channel else int(hdr.get("channel_count", 1))
    return int(hdr["sample_rate"]), int(hdr["sample_count"]), n_ch


def _sphere_pipe(path: str, where: str) -> _Audio:
    """A command source for a SPHERE file soundfile cannot decode (Shorten): sph2pipe when it is
    on PATH, else the built-in decoder (``python -m pyadml.bin.sph2wav``)."""
    # sph2pipe by name, not its absolute path, keeps the manifest usable on another machine;
    # sph2wav runs under this interpreter, since a `python` on PATH may lack pyadml.
    cmd = f"sph2pipe -f wav {shlex.quote(path)}" if _on_path("sph2pipe") else sph2wav_command(path)
    rate, count, n_ch = _sphere_size(path, where, channel=False)
    return _Audio(AudioSource(type="command", channels=list(range(n_ch)), source=cmd),
                  rate, count, n_ch)


def _probe_file(path: str, where: str) -> _Audio:
    try:
        info = sf.info(path)
    except Exception as e:  # libsndfile raises several types for unreadable input
        if not os.path.isfile(path):
            raise CorpusError(f"{where}: audio file {path} does not exist") from None
        if sphere.is_shorten_sphere(path):
            return _sphere_pipe(path, where)
        raise CorpusError(f"{where}: {path} is not readable audio ({e})") from None
    truncated = wav_truncation(path)
    if truncated:
        raise CorpusError(f"{where}: {truncated}")
    return _Audio(AudioSource(type="file", channels=list(range(info.channels)), source=path),
                  int(info.samplerate), int(info.frames), int(info.channels))


_SPH2PIPE_VALUED = {"-h", "-f", "-c", "-t", "-s"}
SPH2WAV_MODULE = "pyadml.bin.sph2wav"


def _sph2pipe_args(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    """sph2pipe's options and file arguments (the tokens after the program)."""
    opts, files, i = {}, [], 0
    while i < len(tokens):
        if tokens[i] in _SPH2PIPE_VALUED and i + 1 < len(tokens):
            opts[tokens[i]] = tokens[i + 1]
            i += 2
        else:
            if not tokens[i].startswith("-"):
                files.append(tokens[i])
            i += 1
    return opts, files


@functools.lru_cache(maxsize=None)
def _note_sph2pipe_stand_in(file: str) -> None:
    log.warning("%s: sph2pipe is not on PATH; its lines are read with the built-in Shorten "
                "decoder instead (python -m %s)", file, SPH2WAV_MODULE)


def _probe_pipe(cmd: str, where: str) -> _Audio:
    """A Kaldi ``... |`` command; a sph2pipe (or sph2wav) command of one whole file is sized from
    its SPHERE header. Where sph2pipe is not on PATH, such a command is rewritten to the
    built-in decoder. Anything else is run once and its wav output inspected."""
    try:
        tokens = shlex.split(cmd)
    except ValueError as e:
        raise CorpusError(f"{where}: cannot parse the command {cmd!r} ({e})") from None
    if not tokens:
        raise CorpusError(f"{where}: empty command before '|'")
    simple = not any(c in cmd for c in "|;&<>`$")
    is_sph2pipe = os.path.basename(tokens[0]) == "sph2pipe"
    is_sph2wav = len(tokens) > 2 and tokens[1:3] == ["-m", SPH2WAV_MODULE]
    if simple and (is_sph2pipe or is_sph2wav):
        opts, files = _sph2pipe_args(tokens[3:] if is_sph2wav else tokens[1:])
        whole = len(files) == 1 and not ({"-t", "-s"} & opts.keys())
        wav = opts.get("-f", "wav") == "wav"
        if is_sph2pipe and not _on_path(tokens[0]) and whole and wav:
            channel = opts.get("-c")
            if channel is not None and not channel.isdigit():
                raise CorpusError(f"{where}: sph2pipe -c {channel!r}: expected a channel number")
            _note_sph2pipe_stand_in(where.rsplit(":", 1)[0])
            cmd = sph2wav_command(files[0], None if channel is None else int(channel))
            tokens, is_sph2wav = shlex.split(cmd), True
        if whole and (is_sph2wav or _on_path(tokens[0])):
            rate, count, n_ch = _sphere_size(files[0], where, channel="-c" in opts)
            return _Audio(AudioSource(type="command", channels=list(range(n_ch)), source=cmd),
                          rate, count, n_ch)
    if not _on_path(tokens[0]):
        raise CorpusError(f"{where}: command {tokens[0]!r} is not on PATH")
    source = AudioSource(type="command", channels=[0], source=cmd)
    proc = subprocess.run(cmd, shell=True, capture_output=True)
    if proc.returncode != 0 or not proc.stdout:
        tail = proc.stderr.decode(errors="replace").strip()[-300:]
        raise CorpusError(f"{where}: command {cmd!r} failed (exit {proc.returncode}): {tail}")
    try:
        info = sf.info(io.BytesIO(proc.stdout))
    except Exception as e:
        raise CorpusError(f"{where}: output of {cmd!r} is not readable audio ({e})") from None
    source.channels = list(range(info.channels))
    return _Audio(source, int(info.samplerate), int(info.frames), int(info.channels))


def _probe(spec: str, where: str, sampling_rate: int, *, resample: bool = False,
           hint: str = "resample the corpus first; it is not done silently") -> _Audio:
    """Check one wav.scp-style entry: exists, readable, non-empty, at the expected rate (any
    rate with ``resample``: the caller resamples; ``hint`` says how in the rate error)."""
    spec = spec.strip()
    if spec.endswith("|"):
        audio = _probe_pipe(spec[:-1].strip(), where)
        name = spec
    else:
        name = spec if os.path.isabs(spec) else os.path.abspath(spec)
        audio = _probe_file(name, where)
    if audio.num_samples <= 0:
        raise CorpusError(f"{where}: {name} is empty (0 samples)")
    if audio.sampling_rate != sampling_rate and not resample:
        raise CorpusError(f"{where}: {name} has sample rate {audio.sampling_rate} Hz; expected "
                          f"{sampling_rate} Hz ({hint})")
    return audio
