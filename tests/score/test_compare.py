"""Two scorings of the same trials (pyadml.score.compare, compare_scores): resampling by
recording against a loop that builds each draw by hand, invariance under a monotone rescaling,
a clear gain, and the files' errors."""

import numpy as np
import pytest

from pyadml.bin import compare_scores
from pyadml.score.clips import clip_metrics
from pyadml.score.compare import Trials, draw_trials, paired, read_scores
from pyadml.score.pairs import PairsError

KWS = ["alexa", "computer", "jarvis", "snowboy"]


def clip_file(path, scores, labels, root):
    """score_clips' scores.tsv: clip by clip, every keyword, audio paths under ``root``."""
    path.mkdir()
    (path / "scores.tsv").write_text("".join(
        f"{root}/audio/{KWS[int(np.argmax(lab))]}/{i}.flac\t{k}\t{lab[j]}\t{scores[i, j]:.6f}\n"
        for i, lab in enumerate(labels) for j, k in enumerate(KWS)))


def clips(seed=1, n=120):
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, 4), np.int64)
    labels[np.arange(n), rng.integers(0, 4, n)] = 1
    return rng.standard_normal((n, 4)) + labels, labels


def test_draws_resample_recordings_with_all_their_trials():
    # Trials of 5 recordings in mixed order, 1-4 trials each.
    unit = np.array([0, 1, 0, 2, 3, 1, 4, 4, 4, 0, 3, 4])
    t = Trials([(f"r{u}", f"k{i}") for i, u in enumerate(unit)], np.zeros(12, np.int64),
               np.arange(12.0), unit, 5)
    rng = np.random.default_rng(7)
    for idx, picks in zip(draw_trials(t, 20, seed=7), rng.integers(0, 5, size=(20, 5))):
        want = [i for u in picks for i in range(12) if unit[i] == u]  # by hand, in draw order
        assert idx.tolist() == want


def test_paired_clip_protocol(tmp_path, capsys):
    """A monotone rescaling changes no metric in any draw: b - a is 0, the interval 0-wide.
    Raising every positive's score helps in every draw. The clip protocol gets top-1."""
    a, labels = clips()
    clip_file(tmp_path / "a", a, labels, "/x/wakeword_dev")
    clip_file(tmp_path / "same", 3 * a + 1, labels, "/y/../wakeword_dev")  # another tree
    clip_file(tmp_path / "up", a + 0.8 * labels, labels, "/z/wakeword_dev")
    ta = read_scores(tmp_path / "a" / "scores.tsv")
    assert ta.units == 120 and np.allclose(ta.scores.reshape(120, 4), a, atol=1e-6)
    same = paired(ta, read_scores(tmp_path / "same" / "scores.tsv"), draws=100)
    assert set(same) == {"AP", "EER", "AUC", "top1"}
    for k, r in same.items():
        assert r["diff"] == pytest.approx(0) and r["diff_ci95"] == pytest.approx([0, 0])
        assert r["b_better"] == 0
    assert same["AP"]["a"] == pytest.approx(clip_metrics(a, labels)["AP"])
    up = paired(ta, read_scores(tmp_path / "up" / "scores.tsv"), draws=100)
    assert up["AP"]["diff"] > 0 and up["AP"]["diff_ci95"][0] > 0 and up["AP"]["b_better"] == 1
    assert up["EER"]["diff"] < 0 and up["EER"]["diff_ci95"][1] < 0 and up["EER"]["b_better"] == 1
    assert compare_scores.main([str(tmp_path / "a"), str(tmp_path / "up"), "--draws", "50"]) == 0
    out = capsys.readouterr().out
    assert "480 trials of 120 recordings" in out and "| top-1 |" in out and "| 100% |" in out


def test_paired_trial_list(tmp_path, capsys):
    """A stage 8 list (cut, keyword, label, kind, score), cuts in several trials: no top-1."""
    rng = np.random.default_rng(3)
    rows = [(f"voice-{c:03d}", f"w{k}", int(k == c % 7)) for c in range(60) for k in range(7)
            if k == c % 7 or rng.random() < 0.5]
    lab = np.array([r[2] for r in rows])
    sa = rng.standard_normal(len(rows)) + 1.2 * lab
    for name, sc in (("a", sa), ("b", sa + 0.5 * lab)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "scores.tsv").write_text("".join(
            f"{c}\t{k}\t{y}\tseen\t{s:.6f}\n" for (c, k, y), s in zip(rows, sc)))
    a, b = read_scores(tmp_path / "a" / "scores.tsv"), read_scores(tmp_path / "b" / "scores.tsv")
    assert a.units == 60
    r = paired(a, b, draws=200)
    assert set(r) == {"AP", "EER", "AUC"} and r["AP"]["diff"] > 0 and r["AP"]["b_better"] > 0.9
    assert compare_scores.main([str(tmp_path / "a" / "scores.tsv"), str(tmp_path / "b")]) == 0
    assert "| AP |" in capsys.readouterr().out


def test_compare_errors_name_the_file_or_line(tmp_path, capsys):
    a, labels = clips(n=20)
    clip_file(tmp_path / "a", a, labels, "/x")
    clip_file(tmp_path / "b", a, labels, "/x")
    lines = (tmp_path / "b" / "scores.tsv").read_text().splitlines()
    (tmp_path / "b" / "scores.tsv").write_text("\n".join(lines[4:]) + "\n")
    assert compare_scores.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "other trials (first difference at line 1)" in capsys.readouterr().err
    (tmp_path / "b" / "scores.tsv").write_text("a.flac\talexa\tyes\t0.5\n")
    assert compare_scores.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "scores.tsv:1: expected" in capsys.readouterr().err
    assert compare_scores.main([str(tmp_path / "a"), str(tmp_path / "nothing")]) == 1
    assert "no such scores file" in capsys.readouterr().err
    (tmp_path / "b" / "scores.tsv").write_text("")
    with pytest.raises(PairsError, match="holds no trials"):
        read_scores(tmp_path / "b" / "scores.tsv")
    # a list saved in Latin-1 is named, not a traceback
    (tmp_path / "b" / "scores.tsv").write_bytes("caf\xe9.flac\talexa\t1\t0.5\n".encode("latin-1"))
    assert compare_scores.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "cannot read the scores file" in err and "scores.tsv" in err and "utf-8" in err
