"""pyadml.fileio.wav_truncation: a WAV whose header promises more audio than the file holds."""

import struct

import numpy as np
import soundfile as sf

from pyadml.fileio import wav_truncation


def riff(chunks: list[tuple[bytes, bytes]], data_size: int | None = None, data: bytes = b"") -> bytes:
    """A RIFF/WAVE file written by hand: ``chunks`` before the data chunk, whose size field is
    ``data_size`` (default: the data's true length)."""
    body = b"WAVE"
    for cid, payload in chunks:
        body += cid + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)
    size = len(data) if data_size is None else data_size
    body += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


# 16 kHz mono 16-bit: 32000 bytes a second
FMT = (b"fmt ", struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16))


def test_a_complete_or_streamed_wav_is_not_truncated(tmp_path):
    whole = tmp_path / "whole.wav"
    sf.write(whole, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    assert wav_truncation(whole) is None
    for size in (0, 0xFFFFFFFF):  # written to a pipe: the size was not known
        streamed = tmp_path / f"streamed{size}.wav"
        streamed.write_bytes(riff([FMT], size, bytes(6400)))
        assert wav_truncation(streamed) is None
    # a data size below the bytes there (trailing chunks after the data) promises nothing more
    longer = tmp_path / "longer.wav"
    longer.write_bytes(riff([FMT], 100, bytes(6400)))
    assert wav_truncation(longer) is None
    flac = tmp_path / "a.flac"
    sf.write(flac, np.zeros(1600, np.float32), 16000)
    assert wav_truncation(flac) is None
    assert wav_truncation(tmp_path / "missing.wav") is None


def test_a_cut_wav_is_named_with_what_it_promised_and_holds(tmp_path):
    cut = tmp_path / "cut.wav"
    # an odd-sized LIST chunk (padded) before the data, as some recorders write
    cut.write_bytes(riff([FMT, (b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00")], 64000, bytes(8000)))
    msg = wav_truncation(cut)
    assert msg == (f"{cut} is truncated: its header promises 64000 bytes (2.00 s) of audio, the "
                   f"file holds 8000 bytes (0.25 s) (an interrupted copy or recording?); copy it "
                   f"again, or keep what it holds by rewriting its header: ffmpeg -i cut.wav "
                   f"cut_fixed.wav")
    # libsndfile itself reads the cut file without complaint: 4000 samples, no error
    assert sf.read(cut)[0].shape == (4000,)


def test_a_wav_that_a_full_disk_cuts_off_names_the_file_and_the_cause(tmp_path, monkeypatch):
    """libsndfile reports a full disk (ENOSPC) as "System error." alone: stage 0 stopped with
    `soundfile.LibsndfileError: System error.` and no file or cause. Now the file and the free
    space are named, and nothing is left under the final name or a temporary one."""
    import shutil
    from collections import namedtuple

    import pytest

    from pyadml.fileio import write_wav_atomic

    def full(*args, **kwargs):
        raise sf.LibsndfileError(2, "Error writing: ")  # SF_ERR_SYSTEM, as on ENOSPC

    monkeypatch.setattr(sf, "write", full)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(4 << 20, (4 << 20) - 2048, 2048))
    out = tmp_path / "wav" / "a.wav"
    with pytest.raises(OSError) as e:
        write_wav_atomic(out, np.zeros(16000, np.float32), 16000)
    msg = str(e.value)
    assert msg.startswith(f"{out}: cannot write the audio: ")
    assert f"no space left on the device of {out.parent}: 2 KiB free" in msg
    assert list(out.parent.iterdir()) == []
