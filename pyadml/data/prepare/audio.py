"""Audio probing of wav.scp entries and files, NIST SPHERE headers, sph2pipe commands."""

from __future__ import annotations

import functools
import io
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
from lhotse import Recording
from lhotse.audio import AudioSource

from pyadml.data.prepare.common import CorpusError


def read_sphere_header(path: str | os.PathLike) -> dict[str, int | float | str]:
    """The fields of a NIST SPHERE header (``name -i 1``, ``-r 1.0``, ``-sN text``)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(1024)
        if not head.startswith(b"NIST_1A"):
            raise CorpusError(f"{path}: not a NIST SPHERE file (no NIST_1A magic)")
        lines = head.split(b"\n")
        try:
            size = int(lines[1])
        except (IndexError, ValueError):
            raise CorpusError(f"{path}: SPHERE header size is not a number") from None
        if size > len(head):
            head += f.read(size - len(head))
    fields: dict[str, int | float | str] = {}
    for raw in head[:size].split(b"\n")[2:]:
        line = raw.decode("ascii", "replace").strip()
        if line == "end_head":
            return fields
        parts = line.split(maxsplit=2)
        if len(parts) < 3:
            continue
        name, kind, value = parts
        try:
            fields[name] = int(value) if kind == "-i" else float(value) if kind == "-r" else value
        except ValueError:
            raise CorpusError(f"{path}: SPHERE header field {name} has a bad value {value!r}") from None
    raise CorpusError(f"{path}: SPHERE header has no end_head within {size} bytes")


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


def _sphere_pipe(path: str, where: str) -> _Audio:
    """A sph2pipe command source for a SPHERE file soundfile cannot decode (shorten)."""
    hdr = read_sphere_header(path)
    if not _on_path("sph2pipe"):
        raise CorpusError(f"{where}: {path} is shorten-compressed SPHERE "
                          f"(sample_coding {hdr.get('sample_coding')}); put sph2pipe on PATH to read it")
    missing = [k for k in ("sample_count", "sample_rate", "channel_count") if k not in hdr]
    if missing:
        raise CorpusError(f"{where}: {path}: SPHERE header lacks {', '.join(missing)}")
    # The name, not sph2pipe's absolute path, keeps the manifest usable on another machine.
    cmd = f"sph2pipe -f wav {shlex.quote(path)}"
    n_ch = int(hdr["channel_count"])
    return _Audio(AudioSource(type="command", channels=list(range(n_ch)), source=cmd),
                  int(hdr["sample_rate"]), int(hdr["sample_count"]), n_ch)


def _is_shorten(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            if f.read(7) != b"NIST_1A":
                return False
        return "shorten" in str(read_sphere_header(path).get("sample_coding", ""))
    except (OSError, CorpusError):
        return False


def _probe_file(path: str, where: str) -> _Audio:
    try:
        info = sf.info(path)
    except Exception as e:  # libsndfile raises several types for unreadable input
        if not os.path.isfile(path):
            raise CorpusError(f"{where}: audio file {path} does not exist") from None
        if _is_shorten(path):
            return _sphere_pipe(path, where)
        raise CorpusError(f"{where}: {path} is not readable audio ({e})") from None
    return _Audio(AudioSource(type="file", channels=list(range(info.channels)), source=path),
                  int(info.samplerate), int(info.frames), int(info.channels))


_SPH2PIPE_VALUED = {"-h", "-f", "-c", "-t", "-s"}


def _probe_pipe(cmd: str, where: str) -> _Audio:
    """A Kaldi ``... |`` command; sph2pipe of one file is sized from its SPHERE header,
    anything else is run once and its wav output inspected."""
    try:
        tokens = shlex.split(cmd)
    except ValueError as e:
        raise CorpusError(f"{where}: cannot parse the command {cmd!r} ({e})") from None
    if not tokens:
        raise CorpusError(f"{where}: empty command before '|'")
    if not _on_path(tokens[0]):
        raise CorpusError(f"{where}: command {tokens[0]!r} is not on PATH")
    source = AudioSource(type="command", channels=[0], source=cmd)
    simple = not any(c in cmd for c in "|;&<>`$")
    if simple and os.path.basename(tokens[0]) == "sph2pipe":
        opts, files, i = {}, [], 1
        while i < len(tokens):
            if tokens[i] in _SPH2PIPE_VALUED and i + 1 < len(tokens):
                opts[tokens[i]] = tokens[i + 1]
                i += 2
            else:
                if not tokens[i].startswith("-"):
                    files.append(tokens[i])
                i += 1
        if len(files) == 1 and not ({"-t", "-s"} & opts.keys()):
            if not os.path.isfile(files[0]):
                raise CorpusError(f"{where}: audio file {files[0]} does not exist")
            hdr = read_sphere_header(files[0])
            n_ch = 1 if "-c" in opts else int(hdr.get("channel_count", 1))
            try:
                return _Audio(AudioSource(type="command", channels=list(range(n_ch)), source=cmd),
                              int(hdr["sample_rate"]), int(hdr["sample_count"]), n_ch)
            except KeyError as e:
                raise CorpusError(f"{where}: {files[0]}: SPHERE header lacks {e}") from None
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


def _probe(spec: str, where: str, sampling_rate: int) -> _Audio:
    """Check one wav.scp-style entry: exists, readable, non-empty, at the expected rate."""
    spec = spec.strip()
    if spec.endswith("|"):
        audio = _probe_pipe(spec[:-1].strip(), where)
        name = spec
    else:
        name = spec if os.path.isabs(spec) else os.path.abspath(spec)
        audio = _probe_file(name, where)
    if audio.num_samples <= 0:
        raise CorpusError(f"{where}: {name} is empty (0 samples)")
    if audio.sampling_rate != sampling_rate:
        raise CorpusError(f"{where}: {name} has sample rate {audio.sampling_rate} Hz; expected "
                          f"{sampling_rate} Hz (resample the corpus first; it is not done silently)")
    return audio
