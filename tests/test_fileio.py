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


def test_a_checkpoint_that_a_full_disk_cuts_off_names_the_file_and_keeps_the_last_one(tmp_path, disk_full):
    """Stage 6 on a full disk stopped with torch's `RuntimeError: [enforce fail at
    inline_container.cc:672] . unexpected pos 261499 vs 261440` (after `basic_ios::clear:
    iostream error`): neither the file nor the cause, and train.error, the one line that
    steps/train.sh shows, was left empty (torch's writer kept the unfinished file open, so its
    space was not freed). Now the file and the cause are named, nothing is left under the
    checkpoint's name or a temporary one, no file stays open, and a resume takes the last
    complete checkpoint."""
    import os

    import pytest
    import torch

    from pyadml.fileio import DiskFull
    from pyadml.train.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint

    ckpt = tmp_path / "exp" / "checkpoints"
    state = {"model": {"w": torch.arange(50000, dtype=torch.float32)}, "step": 28, "epoch": 1}
    save_checkpoint(state, ckpt, "epoch-1.pt", keep=0)
    cut = disk_full(ckpt, after=100_000)
    with pytest.raises(OSError) as e:
        save_checkpoint({**state, "step": 56, "epoch": 2}, ckpt, "epoch-2.pt", keep=0)
    assert cut, "the simulated disk never filled"
    assert isinstance(e.value, DiskFull)
    msg = str(e.value)
    assert msg.startswith(f"{ckpt / 'epoch-2.pt'}: cannot write it: no space left on the device "
                          f"of {ckpt} (")
    assert "run the stage again" in msg and "\n" not in msg
    assert sorted(p.name for p in ckpt.iterdir()) == ["epoch-1.pt"]
    open_files = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                  if os.path.exists(f"/proc/self/fd/{fd}")]
    assert not [f for f in open_files if f.startswith(str(ckpt))], open_files
    assert latest_checkpoint(ckpt) == ckpt / "epoch-1.pt"
    assert load_checkpoint(ckpt / "epoch-1.pt")["step"] == 28


def test_a_text_file_that_a_full_disk_cuts_off_names_the_file_and_the_cause(tmp_path, disk_full):
    """Any atomic write (a lexicon, a config, a trial list) stopped by a full disk says so in
    one line naming the file, and the file keeps its old content."""
    import pytest

    from pyadml.fileio import DiskFull, write_text_atomic

    out = tmp_path / "lang" / "lexicon.txt"
    write_text_atomic(out, "old\n")
    disk_full(out.parent, after=10)
    with pytest.raises(DiskFull, match=rf"^{out}: cannot write it: no space left on the device"):
        write_text_atomic(out, "x" * 100000)
    assert out.read_text() == "old\n"
    assert [p.name for p in out.parent.iterdir()] == ["lexicon.txt"]


def test_a_file_in_a_read_only_directory_names_the_directory_not_a_temporary_name(tmp_path,
                                                                                  read_only):
    """An atomic write into a read-only directory said `[Errno 30] Read-only file system:
    '…/.scores.tsv.pu8dbe84.tmp'`: a name the user never gave. Now the file and the directory
    are named; the error is still a PermissionError."""
    import pytest

    from pyadml.fileio import write_text_atomic

    read_only(tmp_path)
    out = tmp_path / "results" / "scores.tsv"
    with pytest.raises(PermissionError) as e:
        write_text_atomic(out, "x\n")
    assert str(e.value) == (f"{out}: cannot write it: {tmp_path} is on a read-only file system; "
                            f"write the output elsewhere (a copy of a shared experiment, or "
                            f"another output directory)")


def test_the_disk_errors_reach_a_parent_process_whole(tmp_path):
    """Stage 0 synthesises in worker processes, whose errors are pickled to the parent: the
    one-line errors must survive it (a class whose __init__ takes other arguments than its
    args fails to unpickle, and the parent would report a TypeError instead)."""
    import errno
    import pickle

    from pyadml.fileio import DiskFull, NotWritable

    for e in (DiskFull(errno.ENOSPC, tmp_path / "a.pt"),
              NotWritable(OSError(errno.EROFS, "Read-only file system"), tmp_path / "a.pt")):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)
        assert back.errno == e.errno and back.filename == str(tmp_path / "a.pt")
