"""NIST SPHERE (plain or Shorten-compressed, as the LDC ships WSJ) to 16-bit WAV, without sph2pipe.

    python -m pyadml.bin.sph2wav [-f wav] [-p] [-c CHANNEL] FILE [OUT]

writes FILE as WAV to OUT, or to standard output when OUT is not given, so that it can stand
where Kaldi's ``sph2pipe -f wav FILE |`` does in a wav.scp. ``-c`` keeps one channel (1-based,
as sph2pipe's); ``-f wav`` and ``-p`` (16-bit PCM) are accepted for sph2pipe's command lines and
are what this command always writes. Stage 1 names this command in its manifests when
``sph2pipe`` is not on PATH (``pyadml.data.prepare.audio``).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile


def wav_bytes(pcm: bytes, rate: int, channels: int) -> bytes:
    """A 16-bit PCM WAV file of interleaved little-endian samples."""
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(pcm)) + pcm)


def sphere_wav(path: str, channel: int | None) -> bytes:
    """The WAV file of a SPHERE file (``channel``: that one alone, 1-based); SphereError
    names the file when it cannot be read."""
    from pyadml.sphere import is_shorten_sphere, read_sphere, shorten_sphere_pcm16

    if is_shorten_sphere(path):  # the standard library alone: the common, per-recording case
        pcm, rate, n_ch = shorten_sphere_pcm16(path, None if channel is None else channel - 1)
        return wav_bytes(pcm, rate, n_ch)
    import io

    import soundfile as sf

    from pyadml.sphere import SphereError

    samples, rate = read_sphere(path)
    if channel is not None:
        if not 1 <= channel <= samples.shape[1]:
            raise SphereError(f"{path}: channel {channel} asked, the file has "
                              f"{samples.shape[1]} channel(s)")
        samples = samples[:, channel - 1:channel]
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pyadml.bin.sph2wav", description=__doc__.split("\n")[0])
    p.add_argument("-f", dest="fmt", default="wav", help="output format: wav (the only one)")
    p.add_argument("-p", action="store_true", help="16-bit PCM (always)")
    p.add_argument("-c", dest="channel", type=int, default=None, help="keep this channel (1-based)")
    p.add_argument("file")
    p.add_argument("out", nargs="?", default=None)
    args = p.parse_args(argv)
    if args.fmt != "wav":
        p.error(f"-f {args.fmt}: only wav output is written")
    from pyadml.sphere import SphereError

    try:
        data = sphere_wav(args.file, args.channel)
    except (OSError, SphereError) as e:
        print(f"sph2wav: {e}", file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    # A temporary name, then a rename: an interrupted run leaves no half-written OUT.
    out_dir = os.path.dirname(os.path.abspath(args.out))
    fd, tmp = tempfile.mkstemp(prefix=".sph2wav.", suffix=".wav", dir=out_dir)
    try:
        # mkstemp makes the file 0600: give OUT the mode a plain open() would (a shared corpus)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, args.out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
