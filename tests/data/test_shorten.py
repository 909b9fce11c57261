"""The built-in Shorten decoder (pyadml.sphere) and its command, pyadml.bin.sph2wav.

The streams come from tests/data/shorten_writer.py, an encoder written from the format
description. That the encoder writes the format others read was checked with ffmpeg's Shorten
decoder (FFmpeg 5.1, Debian bookworm's ``ffmpeg``): versions 1-3, one and two channels, the
fixed and LPC predictors, with and without running means, blocks of 1, 2, 3, 5 and 256 samples,
each decoded to the input samples
(``test_ffmpeg_reads_the_writers_streams`` repeats it wherever ffmpeg is installed), and
``test_a_stream_ffmpeg_decoded`` pins one such stream byte for byte.
"""

from __future__ import annotations

import collections
import hashlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import pyadml.sphere as S
from shorten_writer import encode, sphere  # tests/data is on sys.path under pytest

SR = 16000


def signal(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Speech-like int16 values with a white-noise stretch (DIFF0), a smooth one (DIFF2-3), a
    silent one (ZERO), one with three trailing zero bits (BITSHIFT) and loud clipped samples."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    cols = []
    for c in range(channels):
        x = 3000 * np.sin(2 * np.pi * (180 + 40 * c) * t / SR) + rng.normal(0, 300, n)
        x[: n // 6] = rng.normal(0, 4000, n // 6)
        x[n // 6: n // 3] = 8000 * np.sin(2 * np.pi * 30 * t[n // 6: n // 3] / SR)
        x[n // 3: n // 3 + 700] = 0
        x[n // 2: n // 2 + 600] = np.round(x[n // 2: n // 2 + 600] / 8) * 8
        x[-300:] *= 12
        cols.append(np.clip(np.round(x), -32768, 32767))
    return np.stack(cols, axis=1).astype(np.int64)


def test_a_hand_worked_stream():
    # Version 2, sample type 5 (16-bit, low byte first), 1 channel, block size 4, no LPC, no
    # means, nothing to skip; then DIFF1 with Rice parameter 1 and residuals 3, -2, 0, 5; QUIT.
    # ulong(v) = uvar(bit length of v, 2) then uvar(v, that length); uvar(v, k) = v >> k zeros,
    # a one, the k low bits; svar(r, 1) = uvar(2r or -2r-1, 2).
    fields = [
        "111", "1101",      # type 5: length 3, then 5 in 3 bits
        "101", "11",        # 1 channel
        "111", "1100",      # block size 4
        "100", "1",         # maxnlpc 0
        "100", "1",         # nmean 0
        "100", "1",         # skip 0 bytes
        "101",              # FN_DIFF1
        "1001",             # Rice parameter 1
        "0110", "111", "100", "00110",  # 3 (u=6), -2 (u=3), 0 (u=0), 5 (u=10)
        "0100",             # FN_QUIT
    ]
    bits = "".join(fields)
    bits += "0" * (-len(bits) % 8)
    data = b"ajkg\x02" + int(bits, 2).to_bytes(len(bits) // 8, "big")
    samples, kind = S.decode_shorten(data)
    assert kind == "s16"
    # DIFF1 from a zero history: the running sum of the residuals.
    assert samples[:, 0].tolist() == [3, 1, 1, 6]


# Version 0 has no LPC order in its header.
@pytest.mark.parametrize("version,lpc", [(0, 0), (1, 0), (1, 3), (2, 0), (2, 3), (3, 0), (3, 3)])
@pytest.mark.parametrize("channels", [1, 2])
def test_streams_decode_to_their_samples(version, channels, lpc, monkeypatch):
    x = signal(5000 + 37 * channels, channels, seed=version)
    used = collections.Counter()
    block = S._audio_block

    def counting(bits, cmd, *args):
        used[cmd] += 1
        return block(bits, cmd, *args)

    monkeypatch.setattr(S, "_audio_block", counting)
    stream = encode(x, version=version, lpc_order=lpc, skip=b"xy" if version else b"")
    samples, kind = S.decode_shorten(stream)
    assert kind == "s16" and samples.shape == x.shape
    np.testing.assert_array_equal(samples, x)
    assert used[S.FN_ZERO] > 0
    assert used[S.FN_QLPC] > 0 if lpc else {S.FN_DIFF0, S.FN_DIFF2} <= set(used)


@pytest.mark.parametrize("blocksize", [1, 2, 5])
def test_blocks_shorter_than_the_predictors_history(blocksize):
    # DIFF3 reads three samples back, across two blocks of 2 or three of 1.
    x = signal(300, 2, seed=blocksize)
    np.testing.assert_array_equal(S.decode_shorten(encode(x, blocksize=blocksize, lpc_order=3))[0], x)
    np.testing.assert_array_equal(S.decode_shorten(encode(x, blocksize=blocksize))[0], x)


def test_the_bit_shift_and_a_short_last_block_are_read(monkeypatch):
    x = signal(1000)  # 3 blocks of 256 and one of 232
    x[256:512] = (x[256:512] // 16) * 16
    seen = []
    uvar = S._Bits.uvar

    def spying(self, k):
        v = uvar(self, k)
        seen.append((k, v))
        return v

    monkeypatch.setattr(S._Bits, "uvar", spying)
    samples, _ = S.decode_shorten(encode(x))
    np.testing.assert_array_equal(samples, x)
    commands = [v for k, v in seen if k == S.FNSIZE]
    assert S.FN_BITSHIFT in commands and S.FN_BLOCKSIZE in commands


# sha256 of the stream of test_a_stream_ffmpeg_decoded, which ffmpeg 5.1 decoded (``ffmpeg -f shn
# -i x.shn -f s16le -``) to pinned_input() exactly.
PINNED = "6266f44d2081b451fb01dd192bca6b5684bf84aa40c95f72ecfcc82954957fa1"


def pinned_input() -> np.ndarray:
    return signal(3000, 2, seed=7)


def test_a_stream_ffmpeg_decoded():
    # This stream (version 2, two channels, LPC order 3, a WAV header in a VERBATIM section)
    # was decoded by ffmpeg 5.1 to pinned_input() exactly; the writer must still write it.
    stream = encode(pinned_input(), version=2, lpc_order=3, wav_verbatim=True)
    assert hashlib.sha256(stream).hexdigest() == PINNED
    samples, _ = S.decode_shorten(stream)
    np.testing.assert_array_equal(samples, pinned_input())


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
@pytest.mark.parametrize("version", [1, 2, 3])
def test_ffmpeg_reads_the_writers_streams(tmp_path, version):
    for channels, lpc, nmean, blocksize in [(1, 0, None, 256), (2, 3, None, 256), (1, 2, 0, 256),
                                            (2, 3, None, 2)]:
        x = signal(4000 if blocksize > 100 else 300, channels, seed=version)
        path = tmp_path / "x.shn"
        path.write_bytes(encode(x, version=version, lpc_order=lpc, nmean=nmean, blocksize=blocksize,
                                wav_verbatim=True))
        out = subprocess.run(["ffmpeg", "-v", "error", "-f", "shn", "-i", str(path), "-f", "s16le",
                              "-"], capture_output=True, check=True).stdout
        np.testing.assert_array_equal(np.frombuffer(out, np.int16).reshape(-1, channels), x)
        np.testing.assert_array_equal(S.decode_shorten(path.read_bytes())[0], x)


def write_sphere(path, x, **kw):
    path.write_bytes(sphere(encode(x, **kw), len(x), channels=x.shape[1]))
    return path


def test_shorten_sphere_files_are_read_with_their_header(tmp_path):
    x = signal(2500, 2)
    path = write_sphere(tmp_path / "a.wv1", x)
    assert S.is_shorten_sphere(path)
    samples, rate = S.read_sphere(path)
    assert rate == SR and samples.dtype == np.int16
    np.testing.assert_array_equal(samples, x)
    # A plain PCM SPHERE file is read too (through soundfile).
    plain = tmp_path / "b.sph"
    sf.write(plain, x.astype(np.int16), SR, format="NIST", subtype="PCM_16")
    assert not S.is_shorten_sphere(plain)
    np.testing.assert_array_equal(S.read_sphere(plain)[0], x)


def test_damaged_files_are_errors_naming_the_file(tmp_path):
    x = signal(3000)
    good = write_sphere(tmp_path / "a.wv1", x).read_bytes()
    cut = tmp_path / "cut.wv1"
    cut.write_bytes(good[: 1024 + 800])
    with pytest.raises(S.SphereError, match=r"cut\.wv1: .*stream ends"):
        S.read_sphere(cut)
    more = tmp_path / "more.wv1"
    more.write_bytes(good.replace(b"sample_count -i 3000", b"sample_count -i 9000"))
    with pytest.raises(S.SphereError, match=r"more\.wv1: the stream holds 3000 samples per channel, "
                                            r"the header's sample_count 9000"):
        S.read_sphere(more)
    junk = tmp_path / "junk.wv1"
    junk.write_bytes(good[:1024] + b"xxxx" + good[1028:])
    with pytest.raises(S.SphereError, match=r"junk\.wv1: no Shorten magic 'ajkg' at byte 1024"):
        S.read_sphere(junk)
    ulaw = tmp_path / "ulaw.sph"
    ulaw.write_bytes(good.replace(b"-s26 pcm,embedded-shorten-v2.00",
                                  b"-s27 ulaw,embedded-shorten-v2.00"))
    with pytest.raises(S.SphereError, match=r"ulaw\.sph: sample_coding 'ulaw,embedded-shorten"):
        S.read_sphere(ulaw)
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(S.SphereError, match=r"notes\.txt: not a NIST SPHERE file"):
        S.read_sphere(text)


def run_sph2wav(*args):
    return subprocess.run([sys.executable, "-m", "pyadml.bin.sph2wav", *map(str, args)],
                          capture_output=True)


def test_sph2wav_writes_wav_to_stdout_or_a_file(tmp_path):
    x = signal(2000, 2)
    path = write_sphere(tmp_path / "a.wv1", x)
    proc = run_sph2wav("-f", "wav", "-p", path)
    assert proc.returncode == 0, proc.stderr
    import io

    got, rate = sf.read(io.BytesIO(proc.stdout), dtype="int16", always_2d=True)
    assert rate == SR
    np.testing.assert_array_equal(got, x)
    out = tmp_path / "one.wav"
    assert run_sph2wav("-c", 2, path, out).returncode == 0
    np.testing.assert_array_equal(sf.read(out, dtype="int16", always_2d=True)[0], x[:, 1:])
    bad = run_sph2wav("-c", 3, path, tmp_path / "no.wav")
    assert bad.returncode == 1 and b"a.wv1: channel 3 asked, the file has 2 channel(s)" in bad.stderr
    assert not (tmp_path / "no.wav").exists()
    cut = tmp_path / "cut.wv1"
    cut.write_bytes(path.read_bytes()[:1500])
    bad = run_sph2wav(cut)
    assert bad.returncode == 1 and bad.stderr.startswith(b"sph2wav: ") and b"cut.wv1" in bad.stderr
    assert bad.stdout == b""


def test_sph2wav_imports_nothing_beyond_the_standard_library(tmp_path):
    # Stage 4 starts it once per recording; numpy's import alone would double its time.
    path = write_sphere(tmp_path / "a.wv1", signal(1000))
    code = ("import sys\nfrom pyadml.bin import sph2wav\n"
            f"assert sph2wav.main([{str(path)!r}, {str(tmp_path / 'a.wav')!r}]) == 0\n"
            "print(' '.join(m for m in ('numpy', 'soundfile', 'torch', 'lhotse') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == []
    np.testing.assert_array_equal(sf.read(tmp_path / "a.wav", dtype="int16", always_2d=True)[0],
                                  signal(1000))


def test_the_users_commands_read_shorten_sphere_as_its_wav(tmp_path):
    """detect (pyadml.spot.audio) and score_pairs / score_clips (pyadml.score.pairs) read a WSJ
    file directly, as they read the same samples written as WAV."""
    from pyadml.score.pairs import PairsError, read_audio
    from pyadml.spot.audio import SpotError, file_blocks, load_audio

    x = signal(4000, 2)
    sph = write_sphere(tmp_path / "a.wv1", x)
    wav = tmp_path / "a.wav"
    sf.write(wav, x.astype(np.int16), SR, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(sph, SR), load_audio(wav, SR))
    np.testing.assert_array_equal(read_audio(sph, SR), read_audio(wav, SR))
    assert [b.shape for b, _ in file_blocks(sph)] == [(4000,)]
    cut = tmp_path / "cut.wv1"
    cut.write_bytes(sph.read_bytes()[:1400])
    with pytest.raises(SpotError, match=r"cannot read .*cut\.wv1: .*stream ends"):
        load_audio(cut, SR)
    with pytest.raises(PairsError, match=r"cannot read .*cut\.wv1: .*stream ends"):
        read_audio(cut, SR)


def test_sph2wav_gives_its_file_the_umask_s_mode(tmp_path):
    """sph2wav FILE OUT kept mkstemp's 0600 on OUT: a WAV copy of a corpus made for a group
    could be read by its maker alone. Now OUT has the mode a plain open() gives it."""
    import os
    import stat

    path = write_sphere(tmp_path / "a.wv1", signal(2000, 1))
    out = tmp_path / "a.wav"
    old = os.umask(0o022)
    try:
        assert run_sph2wav(path, out).returncode == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
