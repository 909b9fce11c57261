"""Every bad input is a clear error that names the value, and nothing is written half."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import RATE, speechlike

from pyadml.bin import detect as detect_cli
from pyadml.spot import KeywordSpotter, SpotError
from pyadml.spot.audio import read_pcm_chunks

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spotter(tiny_model):
    return KeywordSpotter.load(tiny_model, num_threads=1).enroll(["computer"])


def test_keyword_errors(spotter):
    with pytest.raises(SpotError, match="no keywords given"):
        spotter.enroll([])
    with pytest.raises(SpotError, match=r"'!!!' has nothing pronounceable"):
        spotter.enroll(["alexa", "!!!"])
    assert spotter.keywords == ["computer"]  # nothing of a bad list was enrolled
    with pytest.raises(SpotError, match="empty"):
        spotter.enroll(["alexa", ""])
    with pytest.raises(SpotError, match=r"keyword ' \\t' is empty or not text"):  # as typed, not ''
        spotter.enroll(["alexa", " \t"])
    with pytest.raises(SpotError, match=r"threshold must lie in \[-1, 1\].*, got 2.0"):
        spotter.detect((np.zeros(16000, np.float32), RATE), threshold=2.0)
    fresh = KeywordSpotter(spotter.backend)
    with pytest.raises(SpotError, match="no keywords enrolled"):
        fresh.detect((np.zeros(16000, np.float32), RATE))


def test_audio_errors(spotter, tmp_path):
    x = speechlike(1.0)
    nan = x.copy()
    nan[1234] = np.nan
    with pytest.raises(SpotError, match="NaN or inf samples \\(first at sample 1234\\)"):
        spotter.detect((nan, RATE))
    inf = x.copy()
    inf[7] = np.inf
    with pytest.raises(SpotError, match="NaN or inf"):
        spotter.score((inf, RATE))
    with pytest.raises(SpotError, match="NaN or inf"):
        list(spotter.stream([x, nan]))
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF this is not audio")
    with pytest.raises(SpotError, match=f"cannot read {junk}"):
        spotter.detect(junk)
    with pytest.raises(SpotError, match="no such file"):
        spotter.detect(tmp_path / "missing.wav")
    with pytest.raises(SpotError, match=f"cannot read {tmp_path}: it is a directory; name its "
                                        f"audio files"):
        spotter.detect(tmp_path)
    zero = tmp_path / "zero.wav"
    zero.write_bytes(b"")
    with pytest.raises(SpotError, match=f"cannot read {zero}: the file is empty \\(0 bytes\\)"):
        spotter.detect(zero)
    # A phone's voice memo (AAC in .m4a), which libsndfile does not read: what to do instead.
    memo = tmp_path / "memo.m4a"
    memo.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + bytes(64))
    with pytest.raises(SpotError, match=r"cannot read .*memo\.m4a.*ffmpeg -i memo\.m4a -ac 1 "
                                        r"-ar 16000 memo\.wav, or name the file in a wav\.scp"):
        spotter.detect(memo)
    with pytest.raises(SpotError, match="sample rate must be a positive integer, got 0"):
        spotter.detect((x, 0))
    with pytest.raises(SpotError, match="holds no samples"):
        spotter.detect((np.zeros(0, np.float32), RATE))
    # In a file, a NaN in a later block of the read is named at its place in the file.
    far = tmp_path / "nan.wav"
    y = np.zeros((3 * 48000 + 17, 2), np.float32)
    y[2 * 48000 + 5, 1] = np.nan
    sf.write(far, y, 48000, subtype="FLOAT")
    with pytest.raises(SpotError, match=f"{far} contains NaN or inf samples \\(first at sample 96005\\)"):
        load_audio_in_blocks_of(far, 1)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(SpotError, match=f"{empty} holds no samples"):
        spotter.detect(empty)


def test_channels_first_audio_is_refused_not_averaged_into_a_few_samples(spotter):
    """torchaudio.load and librosa give (channels, samples); read as (samples, channels) a
    (2, 1024) chunk was two samples, and ten seconds of stereo a 20 ms stream."""
    x = speechlike(3.0)
    hint = r"got shape \(1, 48000\), i\.e\. 48000 channels; .*give samples\.T"
    with pytest.raises(SpotError, match="audio array: expected .*" + hint):
        spotter.detect((x[None], RATE))
    with pytest.raises(SpotError, match=hint):
        spotter.score((x[None], RATE))
    st = np.stack([x, x])
    with pytest.raises(SpotError, match=r"audio chunk 0: .*shape \(2, 1024\)"):
        list(spotter.stream(st[:, i:i + 1024] for i in range(0, x.size, 1024)))
    # Transposed, it is the mono audio; (samples, channels) chunks of one sample stay valid.
    want = spotter.detect((x, RATE), threshold=-1.0)
    assert spotter.detect((st.T, RATE), threshold=-1.0) == want
    got = list(spotter.stream((st.T[i:i + 1] for i in range(x.size)), threshold=-1.0))
    assert [(d.keyword, d.start, d.end) for d in got] == [(d.keyword, d.start, d.end) for d in want]
    assert [d.score for d in got] == pytest.approx([d.score for d in want], abs=1e-6)


def test_integer_arrays_are_read_at_their_pcm_scale(spotter, tmp_path):
    """An 8-bit WAV's samples as the wave module gives them (uint8, 128 the zero) score as
    soundfile's float reading of the same file; int64 (np.array of Python ints), which no PCM
    is, is refused instead of being scaled by 2^63 into silence."""
    import wave

    x = speechlike(2.0)
    path = tmp_path / "u8.wav"
    sf.write(path, x, RATE, subtype="PCM_U8")
    with wave.open(str(path)) as w:
        u8 = np.frombuffer(w.readframes(w.getnframes()), np.uint8)
    floats = sf.read(path, dtype="float32")[0]
    assert spotter.score((u8, RATE)) == pytest.approx(spotter.score((floats, RATE)), abs=1e-6)
    i16 = sf.read(path, dtype="int16")[0]
    assert spotter.score((i16, RATE)) == pytest.approx(spotter.score((floats, RATE)), abs=1e-6)
    with pytest.raises(SpotError, match=r"audio array: integer samples of dtype int64 are no PCM "
                                        r"format; .*samples\.astype\(np\.int16\)"):
        spotter.score((i16.astype(np.int64), RATE))
    with pytest.raises(SpotError, match="audio chunk 0: integer samples of dtype uint16"):
        list(spotter.stream([i16.astype(np.uint16)]))
    # Raw bytes, as PyAudio's stream.read() gives them: named, with the conversion.
    with pytest.raises(SpotError, match=r"audio chunk 0: samples must be numbers, got bytes; for "
                                        r"raw 16-bit PCM give np\.frombuffer\(chunk, dtype=np\.int16\)"):
        list(spotter.stream([(i16.tobytes(), RATE)]))


def test_floats_at_pcm_scale_are_refused_not_scored(spotter, tmp_path):
    """16-bit values stored as floats (np.float32 of int16 samples, a float WAV written at PCM
    scale) scored differently from the same audio at full scale 1.0 (the features' absolute
    floors); they are named. A float peak a little over 1.0 (a mix, a resampled file) is audio."""
    x = speechlike(2.0)
    big = (x * 32768).astype(np.float32)
    with pytest.raises(SpotError, match=r"audio array: float samples reach \d+.*far beyond full "
                                        r"scale \(1\.0\).*Divide 16-bit values by 32768"):
        spotter.score((big, RATE))
    with pytest.raises(SpotError, match="audio chunk 0: float samples reach"):
        list(spotter.stream([big[:1600]]))
    sf.write(tmp_path / "pcm_scale.wav", big, RATE, subtype="FLOAT")
    with pytest.raises(SpotError, match=r"pcm_scale\.wav: float samples reach"):
        spotter.detect(tmp_path / "pcm_scale.wav")
    loud = 1.5 * x / np.max(np.abs(x))
    assert set(spotter.score((loud, RATE))) == set(spotter.keywords)
    with pytest.raises(SpotError, match="NaN or inf"):  # inf is named as such, not as a scale
        spotter.score((np.r_[x, np.inf].astype(np.float32), RATE))


def test_a_command_whose_output_is_not_audio_is_named_without_python_internals():
    from pyadml.spot.cli import read_piped

    with pytest.raises(SpotError) as e:
        read_piped("echo hello |")
    assert str(e.value).startswith("the output of 'echo hello' (6 bytes) is not audio soundfile "
                                   "can read: ")
    assert "BytesIO" not in str(e.value)


def test_a_clip_too_short_to_score_is_refused_as_score_pairs_refuses_it(spotter, tmp_path):
    """score() of 10 ms gave one score whatever was said (one frame, zero after mean
    normalisation); below score_pairs' 0.1 s it is an error naming the clip and its length."""
    for seed in (0, 1):
        with pytest.raises(SpotError, match=r"audio array holds 0\.010 s of audio; the model "
                                            r"needs at least 0\.1 s"):
            spotter.score((speechlike(1.0, seed=seed)[:160], RATE))
    short = tmp_path / "short.wav"
    sf.write(short, speechlike(1.0)[:800], RATE)
    with pytest.raises(SpotError, match=f"{short} holds 0\\.050 s"):
        spotter.score(short)
    a, b = (spotter.score((speechlike(1.0, seed=s)[:1600], RATE)) for s in (0, 1))
    assert a != b  # 0.1 s is scored, by what it holds
    from pyadml.score.pairs import MIN_SECONDS
    from pyadml.spot.spotter import CLIP_MIN_SECONDS

    assert CLIP_MIN_SECONDS == MIN_SECONDS


def load_audio_in_blocks_of(path, seconds):
    from pyadml.spot import audio

    old, audio.BLOCK_SECONDS = audio.BLOCK_SECONDS, seconds
    try:
        return audio.load_audio(path, RATE)
    finally:
        audio.BLOCK_SECONDS = old


def test_a_file_read_in_blocks_is_the_whole_file_resampled(tmp_path):
    """Files are read block by block (bounded memory for long recordings): stereo 48 kHz and
    44.1 kHz over several blocks give scipy's resample_poly of the whole channel mean."""
    from scipy.signal import resample_poly

    rng = np.random.default_rng(0)
    for sr, (up, down) in ((48000, (1, 3)), (44100, (160, 441)), (RATE, (1, 1))):
        y = (0.3 * rng.standard_normal((int(3.3 * sr), 2))).astype(np.float32)
        p = tmp_path / f"{sr}.wav"
        sf.write(p, y, sr, subtype="FLOAT")
        whole = y.mean(axis=1)
        whole = resample_poly(whole, up, down) if up != down else whole
        got = load_audio_in_blocks_of(p, 1)
        assert got.dtype == np.float32 and got.shape == whole.shape
        np.testing.assert_allclose(got, whole, atol=1e-6)


def test_model_file_errors(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"format": "somebody-else/3", "model": {}}, other)
    with pytest.raises(SpotError, match="format is 'somebody-else/3'"):
        KeywordSpotter.load(other)
    newer = tmp_path / "newer.pt"
    torch.save({"format": "pyadml-kws/9", "model": {}}, newer)
    with pytest.raises(SpotError, match="pyadml-kws/9"):
        KeywordSpotter.load(newer)
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    with pytest.raises(SpotError, match="not a pyadml model file"):
        KeywordSpotter.load(text)
    with pytest.raises(SpotError, match="no such model file"):
        KeywordSpotter.load(tmp_path / "nope.pt")


def test_pcm_stream_ending_mid_sample():
    pcm = (np.arange(3200) % 100).astype("<i2").tobytes()
    chunks = list(read_pcm_chunks(io.BytesIO(pcm), RATE, RATE, 0.1))
    assert sum(c.size for c in chunks) == 3200 and all(c.size == 1600 for c in chunks)
    with pytest.raises(SpotError, match="ended mid-sample: 6401 bytes"):
        list(read_pcm_chunks(io.BytesIO(pcm + b"\x01"), RATE, RATE, 0.1))


def test_pcm_stream_at_another_rate_is_resampled_as_a_whole():
    """44.1 kHz stereo PCM in 37 ms chunks: the chunks together are the whole stream resampled
    at once (scipy's resample_poly of the channel mean), not each chunk padded and rounded."""
    from scipy.signal import resample_poly

    rng = np.random.default_rng(0)
    pcm = rng.integers(-20000, 20000, (44100 + 333, 2)).astype("<i2")
    chunks = list(read_pcm_chunks(io.BytesIO(pcm.tobytes()), 44100, RATE, 0.037, channels=2))
    whole = resample_poly(pcm.astype(np.float32).mean(axis=1) / 32768, 160, 441)
    got = np.concatenate(chunks)
    assert got.shape == whole.shape
    np.testing.assert_allclose(got, whole, atol=1e-6)


def test_cli_errors_write_nothing(tiny_model, tmp_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(good, speechlike(1.0), RATE)
    bad = tmp_path / "nan.wav"
    y = speechlike(1.0)
    y[100] = np.nan
    sf.write(bad, y, RATE, subtype="FLOAT")
    out = tmp_path / "out.tsv"
    base = ["--model", str(tiny_model), "--out", str(out)]
    cases = [
        (["--keywords", "", str(good)], "empty keyword"),
        (["--keywords", "computer,!!!", str(good)], "'!!!' has nothing pronounceable"),
        (["--keywords", "computer", str(good), str(bad)], f"{bad} contains NaN"),
        (["--keywords", "computer", str(good), str(tmp_path / "gone.wav")], "gone.wav: no such file"),
        (["--keywords", "computer", "--threshold", "high", str(good)], "'high'"),
        (["--keywords", "computer", "--stdin-pcm"], "needs --sample-rate"),
        (["--keywords", "computer"], "no input"),
        (["--keywords", "computer", "--window-scale", "0", str(good)], "window_scale=0.0"),
        (["--keywords", "computer", "--refractory", "-1", str(good)], "refractory=-1.0"),
        (["--keywords", "computer", "--num-threads", "-1", str(good)],
         "num_threads must be a whole number >= 1 (0: the library's own count), got -1"),
    ]
    for args, message in cases:
        assert detect_cli.main(base + args) == 1, args
        err = capsys.readouterr().err
        assert message in err, (args, err)
        assert not out.exists()
    assert detect_cli.main(["--model", str(good), "--keywords", "computer", "--out", str(out), str(good)]) == 1
    assert "not a pyadml model file" in capsys.readouterr().err and not out.exists()


def test_cli_out_that_is_an_input_or_a_directory_is_refused_before_any_work(tiny_model, tmp_path,
                                                                          capsys, monkeypatch):
    """--out naming the recording itself (a slip of the arguments) would replace the audio by
    the detections; a directory ended in a traceback after the whole search."""
    good = tmp_path / "good.wav"
    sf.write(good, speechlike(1.0), RATE)
    audio = good.read_bytes()
    scp = tmp_path / "wav.scp"
    scp.write_text(f"u1 {good}\n")
    base = ["--model", str(tiny_model), "--keywords", "computer", "--enrol", "none"]
    for args in (["--out", str(good), str(good)], ["--out", str(good), "--wav-scp", str(scp)],
                 ["--out", str(scp), "--wav-scp", str(scp)]):
        assert detect_cli.main(base + args) == 1, args
        assert f"--out {args[1]} is the input" in capsys.readouterr().err
    assert good.read_bytes() == audio and scp.read_text() == f"u1 {good}\n"
    assert detect_cli.main(base + ["--out", str(tmp_path), str(good)]) == 1
    assert f"--out {tmp_path} is a directory; give a file name" in capsys.readouterr().err
    # A directory that cannot be made (a file stands in its way): said before the search.
    monkeypatch.setattr(KeywordSpotter, "load", lambda *a, **k: pytest.fail("loaded a model"))
    assert detect_cli.main(base + ["--out", str(good / "d.tsv"), str(good)]) == 1
    assert f"--out {good / 'd.tsv'}: cannot create its directory: " in capsys.readouterr().err
    monkeypatch.undo()
    assert detect_cli.main(base + ["--threshold", "-1", "--out", str(tmp_path / "d.tsv"),
                                   str(good)]) == 0
    assert (tmp_path / "d.tsv").read_text().startswith("file\tkeyword")


def test_cli_pcm_stream_ending_mid_sample_writes_nothing(onnx_dir, tmp_path):
    out = tmp_path / "live.tsv"
    pcm = (1000 * np.sin(np.arange(16000) / 5)).astype("<i2").tobytes() + b"\x00"
    res = subprocess.run([sys.executable, "-m", "pyadml.bin.detect", "--model", str(onnx_dir),
                          "--keywords", "computer", "--stdin-pcm", "--sample-rate", "16000",
                          "--out", str(out)], input=pcm, capture_output=True, cwd=ROOT, timeout=120)
    assert res.returncode == 1
    assert b"ended mid-sample: 32001 bytes" in res.stderr
    assert not out.exists()


def test_cli_out_in_a_read_only_directory_is_refused_before_any_work(tiny_model, tmp_path, capsys,
                                                                    monkeypatch, read_only):
    """`detect --out exp/shared/d.tsv` (beside a model shared read-only, or on a read-only
    mount): the directory exists, so the check before the search passed, and after the whole
    search the write failed with a traceback naming a temporary file. Now it is refused first."""
    good = tmp_path / "good.wav"
    sf.write(good, speechlike(1.0), RATE)
    shared = tmp_path / "shared"
    shared.mkdir()
    read_only(shared)
    monkeypatch.setattr(KeywordSpotter, "load", lambda *a, **k: pytest.fail("loaded a model"))
    out = shared / "d.tsv"
    assert detect_cli.main(["--model", str(tiny_model), "--keywords", "computer", "--enrol",
                            "none", "--out", str(out), str(good)]) == 1
    assert (f"--out {out}: cannot write it: {shared} is on a read-only file system; give --out a "
            f"file elsewhere") in capsys.readouterr().err
