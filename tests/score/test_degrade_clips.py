"""pyadml.bin.degrade_clips: a clips directory through clipping, resampling and codecs."""

import numpy as np
import pytest
import soundfile as sf

from pyadml.bin.degrade_clips import main

SR = 16000


def clips_dir(tmp_path, n=3, speakers=False):
    d = tmp_path / "in"
    t = np.arange(SR) / SR
    lines = []
    for i in range(n):
        x = 0.5 * np.sin(2 * np.pi * (200 + 50 * i) * t) * np.hanning(SR)
        rel = f"audio/kw{i % 2}/c{i}.flac"
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(d / rel, x, SR, subtype="PCM_16")
        lines.append(f"{rel}\tkw{i % 2}" + (f"\tspk{i}" if speakers else ""))
    (d / "clips.tsv").write_text("\n".join(lines) + "\n")
    return d


@pytest.mark.parametrize("speakers", [False, True])
def test_clipping_and_rate_keep_paths_and_apply_in_order(tmp_path, speakers):
    src = clips_dir(tmp_path, speakers=speakers)  # a speaker column (score_clips --speaker-mean) stays
    out = tmp_path / "out"
    assert main(["--in", str(src), "--out", str(out), "--clip-db", "6", "--rate", "8000"]) == 0
    assert (out / "clips.tsv").read_text() == (src / "clips.tsv").read_text()
    x, sr_in = sf.read(src / "audio/kw0/c0.flac")
    y, sr = sf.read(out / "audio/kw0/c0.flac")
    assert (sr_in, sr) == (SR, 8000) and y.size == x.size // 2
    # Clipped 6 dB under the peak (0.5 -> about 0.25), then resampled: a flat top at that level.
    level = np.max(np.abs(x)) * 10 ** (-6 / 20)
    assert np.max(np.abs(y)) == pytest.approx(level, abs=0.02)
    assert np.mean(np.abs(y) > 0.9 * level) > 0.2


@pytest.mark.parametrize("codec,ext", [("opus", ".ogg"), ("mp3", ".mp3")])
def test_codec_writes_the_codec_file_and_lists_it(tmp_path, codec, ext):
    if codec == "mp3" and "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 encoder")
    src = clips_dir(tmp_path)
    out = tmp_path / "out"
    assert main(["--in", str(src), "--out", str(out), "--codec", codec, "--quality", "0.9"]) == 0
    listed = [line.split("\t") for line in (out / "clips.tsv").read_text().splitlines()]
    assert [p for p, _ in listed] == [f"audio/kw{i % 2}/c{i}{ext}" for i in range(3)]
    y, sr = sf.read(out / listed[0][0])
    x, _ = sf.read(src / "audio/kw0/c0.flac")
    assert sr == SR and abs(y.size - x.size) < 0.05 * SR
    # Lossy, but the same tone: most of the energy is kept.
    n = min(x.size, y.size)
    assert np.sum(y[:n] ** 2) == pytest.approx(np.sum(x[:n] ** 2), rel=0.3)


def test_bad_input_is_named_and_leaves_no_list(tmp_path, capsys):
    src = clips_dir(tmp_path)
    out = tmp_path / "out"
    assert main(["--in", str(tmp_path / "nowhere"), "--out", str(out), "--clip-db", "6"]) == 1
    assert "clips.tsv: no such file" in capsys.readouterr().err
    assert main(["--in", str(src), "--out", str(out)]) == 1
    assert "at least one of" in capsys.readouterr().err
    assert main(["--in", str(src), "--out", str(src), "--clip-db", "6"]) == 1
    assert "not empty" in capsys.readouterr().err
    # A clip that cannot be read: named by its line; no clips.tsv for a partial copy.
    (src / "audio/kw0/c2.flac").write_bytes(b"not audio")
    assert main(["--in", str(src), "--out", str(out), "--clip-db", "6"]) == 1
    err = capsys.readouterr().err
    assert f"{src / 'clips.tsv'}:3: cannot read" in err
    assert not out.exists()  # the two clips copied before it are gone with the directory
    (src / "clips.tsv").write_text("audio/kw0/c0.flac\n")
    assert main(["--in", str(src), "--out", str(tmp_path / "o2"), "--clip-db", "6"]) == 1
    assert "clips.tsv:1: expected" in capsys.readouterr().err
    (src / "clips.tsv").write_bytes("audio/kw0/c0.flac\tcaf\u00e9\n".encode("latin-1"))
    assert main(["--in", str(src), "--out", str(tmp_path / "o2"), "--clip-db", "6"]) == 1
    err = capsys.readouterr().err
    assert f"cannot read the clip list {src / 'clips.tsv'}: 'utf-8' codec can't decode" in err
    assert "Traceback" not in err and not (tmp_path / "o2").exists()
    (src / "clips.tsv").write_text("audio/kw0/c0.flac\tkw0\tspk0\textra\n")
    assert main(["--in", str(src), "--out", str(tmp_path / "o2"), "--clip-db", "6"]) == 1
    assert "clips.tsv:1: expected '<audio>\\t<keyword>[\\t<speaker>]'" in capsys.readouterr().err
    for bad in (["--clip-db", "0"], ["--rate", "10"], ["--codec", "mp3", "--quality", "2"],
                ["--codec", "opus", "--rate", "44100"]):
        assert main(["--in", str(src), "--out", str(tmp_path / "o3")] + bad) == 1
    assert "opus encodes only at" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()
