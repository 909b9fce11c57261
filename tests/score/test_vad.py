"""The energy voice-activity front end (pyadml.score.vad) and scoring with little or much context."""

import json

import numpy as np
import pytest
import soundfile as sf

from pyadml.score.vad import trim, vad_trim

from test_score import tiny_model_file

SR = 16000


def signal(lead=0.5, word=0.3, trail=0.7, noise_db=-60.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(word * SR)) / SR
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    x = np.concatenate([np.zeros(int(lead * SR)), tone, np.zeros(int(trail * SR))])
    power = np.mean(tone ** 2)
    return (x + rng.standard_normal(x.size) * np.sqrt(power * 10 ** (noise_db / 10))).astype(np.float32)


def test_trim_keeps_the_frames_within_30_db_of_the_loudest():
    x = signal()
    a, b = trim(x)
    assert (a, b) == (8000, 8000 + 4800)  # 0.5 s .. 0.8 s, on the 10 ms grid
    # A quieter part 20 dB down is kept, one 40 dB down is not.
    quiet = np.concatenate([x, 0.05 * x[8000:12800], 0.005 * x[8000:12800]])
    assert trim(quiet) == (8000, x.size + 4800)
    assert trim(x, db=80.0) == (0, x.size // 160 * 160)


def test_vad_trim_adds_50_ms_and_clips_to_the_signal():
    x = signal()
    y = vad_trim(x, SR)
    assert y.size == 4800 + 2 * 800
    assert np.array_equal(y, x[8000 - 800:12800 + 800])
    edge = signal(lead=0.02, trail=0.0)
    assert vad_trim(edge, SR).size == edge.size  # no room for the margin: the whole signal


def test_spot_evaluate_uses_the_same_rule():
    from pyadml.spot import evaluate

    assert evaluate.trim is trim


def word_cuts(tmp_path, words=("cat", "dog", "fish", "bird")):
    from lhotse import CutSet, Recording, SupervisionSegment

    cuts = []
    for k, w in enumerate(words):
        t = np.arange(int(0.4 * SR)) / SR
        tone = 0.3 * np.sin(2 * np.pi * (200 + 150 * k) * t) * np.sin(np.pi * t / 0.4)
        x = np.concatenate([np.zeros(800), tone, np.zeros(800)]).astype(np.float32)
        sf.write(str(tmp_path / f"{w}.wav"), x, SR)
        rec = Recording.from_file(tmp_path / f"{w}.wav")
        cut = rec.to_cut().with_id(w)
        cut.supervisions = [SupervisionSegment(w, rec.id, 0.05, 0.4, text=w)]
        cuts.append(cut)
    CutSet.from_cuts(cuts).to_file(tmp_path / "cuts.jsonl.gz")
    return tmp_path / "cuts.jsonl.gz"


def test_with_vad_the_score_does_not_depend_on_the_padding(tmp_path, capsys):
    from pyadml.bin import padding_check as cli
    from pyadml.score.padding import scores_by_padding

    model = tiny_model_file(tmp_path / "final.pt")
    cuts = word_cuts(tmp_path)
    out = tmp_path / "pad"
    assert cli.main(["--model", str(model), "--cuts", str(cuts), "--out-dir", str(out)]) == 0
    table = capsys.readouterr().out
    assert "pad (s)" in table and len(table.strip().splitlines()) == 5
    rows = json.loads((out / "metrics.json").read_text())
    assert [(r["pad"], r["vad"]) for r in rows] == [(0.05, False), (1.0, False), (0.05, True), (1.0, True)]
    # The clips: the same word with 0.05 s and 1 s of context.
    short, long_ = sf.read(str(out / "pad0.05" / "0000.wav"))[0], sf.read(str(out / "pad1" / "0000.wav"))[0]
    assert long_.size - short.size == 2 * int(0.95 * SR)
    assert np.allclose(long_[int(0.95 * SR):int(0.95 * SR) + short.size], short, atol=1e-6)
    raw = scores_by_padding(out, (0.05, 1.0), vad=False)
    vad = scores_by_padding(out, (0.05, 1.0), vad=True)
    assert len(raw[0.05]) == 16
    # Without the front end the 1 s of context changes the scores; with it they are the same.
    assert np.max(np.abs(raw[0.05] - raw[1.0])) > 1e-3
    assert np.max(np.abs(vad[0.05] - vad[1.0])) < 1e-4


def test_padding_check_floor_db_scores_the_padded_clips_as_score_clips_does(tmp_path, capsys):
    from pyadml.bin import padding_check as cli
    from pyadml.score.clips import score_clips
    from pyadml.score.padding import scores_by_padding

    model = tiny_model_file(tmp_path / "final.pt")
    cuts = word_cuts(tmp_path)
    runs = {}
    for name, opts in (("plain", []), ("floor", ["--floor-db", "50"])):
        out = tmp_path / name
        assert cli.main(["--model", str(model), "--cuts", str(cuts), "--out-dir", str(out)] + opts) == 0
        rows = json.loads((out / "metrics.json").read_text())
        assert {r["floor_db"] for r in rows} == ({50.0} if opts else {None})
        runs[name] = scores_by_padding(out, (0.05, 1.0), vad=False)
    capsys.readouterr()
    # Each padding's clips scored on their own with the floor give the same column.
    for pad in (0.05, 1.0):
        alone = score_clips(model, tmp_path / "floor" / f"pad{pad:g}" / "clips.tsv",
                            tmp_path / f"alone{pad:g}", floor_db=50.0)
        assert alone["floor_db"] == 50.0
        got = np.array([float(r.split("\t")[-1]) for r in
                        (tmp_path / f"alone{pad:g}" / "scores.tsv").read_text().splitlines()])
        np.testing.assert_allclose(runs["floor"][pad], got, atol=1e-6)
    # The floor changes the 1 s clips' scores (their context lies under it).
    assert np.max(np.abs(runs["floor"][1.0] - runs["plain"][1.0])) > 1e-3
    assert cli.main(["--model", str(model), "--cuts", str(cuts), "--out-dir",
                     str(tmp_path / "bad"), "--floor-db", "-3"]) == 1
    assert "--floor-db must be a positive number" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # refused before any clip is written


def test_score_pairs_vad_option_is_off_by_default(tmp_path, capsys):
    from pyadml.bin import score_pairs as cli

    model = tiny_model_file(tmp_path / "final.pt")
    sf.write(str(tmp_path / "a.wav"), signal(), SR)
    (tmp_path / "pairs.tsv").write_text(f"{tmp_path / 'a.wav'}\tcat\n")
    assert cli.main(["--model", str(model), "--pairs", str(tmp_path / "pairs.tsv"),
                     "--out", str(tmp_path / "off.tsv")]) == 0
    assert cli.main(["--model", str(model), "--pairs", str(tmp_path / "pairs.tsv"),
                     "--out", str(tmp_path / "on.tsv"), "--vad"]) == 0
    off = float((tmp_path / "off.tsv").read_text().split("\t")[-1])
    on = float((tmp_path / "on.tsv").read_text().split("\t")[-1])
    assert off != pytest.approx(on, abs=1e-4)
