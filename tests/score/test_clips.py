"""Clips scored against every keyword of their set: metrics from scores.tsv recomputed here."""

from pathlib import Path

import numpy as np
import pytest

from pyadml.bin import score_clips as cli
from pyadml.score.metrics import average_precision

from test_score import tiny_model_file, write_noise

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "wakeword_dev"


def write_clips(tmp_path):
    """Six noise clips, two of each of three keywords, listed in tmp_path/clips.tsv."""
    (tmp_path / "audio").mkdir()
    lines = []
    for i, kw in enumerate(["alexa", "computer", "smart mirror"] * 2):
        write_noise(tmp_path / "audio" / f"{i}.wav", 0.6 + 0.1 * i, seed=i)
        lines.append(f"audio/{i}.wav\t{kw}")
    (tmp_path / "clips.tsv").write_text("\n".join(lines) + "\n")
    return lines


def test_every_clip_against_every_keyword(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "final.pt")
    lines = write_clips(tmp_path)
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"),
                     "--out-dir", str(tmp_path / "out")]) == 0
    assert "6 clips x 3 keywords" in capsys.readouterr().out
    rows = [r.split("\t") for r in (tmp_path / "out/scores.tsv").read_text().splitlines()]
    assert len(rows) == 18
    scores = np.array([float(r[3]) for r in rows])
    labels = np.array([int(r[2]) for r in rows])
    import json
    m = json.loads((tmp_path / "out/metrics.json").read_text())
    assert m["AP"] == pytest.approx(average_precision(scores, labels))
    by_clip = scores.reshape(6, 3)
    kws = sorted(["alexa", "computer", "smart mirror"])
    want = np.mean([kws[int(np.argmax(by_clip[i]))] == lines[i].split("\t")[1] for i in range(6)])
    assert m["top1"] == pytest.approx(want)


def test_a_clip_list_with_one_keyword_or_a_bad_line_is_refused(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "final.pt")
    write_noise(tmp_path / "a.wav", 0.5)
    (tmp_path / "one.tsv").write_text("a.wav\talexa\n")
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "one.tsv")]) == 1
    assert "at least two keywords" in capsys.readouterr().err
    (tmp_path / "bad.tsv").write_text("a.wav alexa\n")
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "bad.tsv")]) == 1
    assert "bad.tsv:1: expected" in capsys.readouterr().err
    (tmp_path / "gone.tsv").write_text("a.wav\talexa\nb.wav\tjarvis\n")
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "gone.tsv")]) == 1
    assert f"gone.tsv:2: no such audio file: {tmp_path / 'b.wav'}" in capsys.readouterr().err
    (tmp_path / "b.wav").mkdir()
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "gone.tsv")]) == 1
    assert f"gone.tsv:2: {tmp_path / 'b.wav'} is a directory" in capsys.readouterr().err


def test_a_clip_list_that_is_missing_or_not_utf8_is_named(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "final.pt")
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "nosuch.tsv")]) == 1
    assert (f"score_clips: cannot read the clip list {tmp_path / 'nosuch.tsv'}: "
            in capsys.readouterr().err)
    latin = tmp_path / "latin1.tsv"
    latin.write_bytes("caf\u00e9.wav\talexa\n".encode("latin-1"))
    assert cli.main(["--model", str(model), "--clips", str(latin)]) == 1
    err = capsys.readouterr().err
    assert f"cannot read the clip list {latin}: 'utf-8' codec can't decode" in err
    assert "Traceback" not in err


def test_a_keyword_written_two_ways_is_refused_not_scored_as_two(tmp_path, capsys):
    """'Alexa' on one line and 'alexa' on another are the same words, so the same query:
    scored as two keywords, each such clip got a negative trial with its positive's score."""
    model = tiny_model_file(tmp_path / "final.pt")
    lines = write_clips(tmp_path)
    for other in ("Alexa", "alexa ", "ALEXA!"):
        bad = tmp_path / "bad.tsv"
        assert lines[3] == "audio/3.wav\talexa"
        bad.write_text("\n".join(lines[:3] + [f"audio/3.wav\t{other}"] + lines[4:]) + "\n")
        assert cli.main(["--model", str(model), "--clips", str(bad),
                         "--out-dir", str(tmp_path / "out")]) == 1
        assert (f"bad.tsv:4: keyword {other!r} is 'alexa' of line 1 written another way (both are "
                f"the words 'alexa')" in capsys.readouterr().err)
        assert not (tmp_path / "out").exists()
    # Written one way, the same list is scored.
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv")]) == 0


def test_a_bad_keyword_or_clip_is_named_at_its_line_of_the_clip_list(tmp_path, capsys):
    """The clips are scored through a temporary pairs file, one line per clip and keyword: its
    errors named that file, gone by then, and a line of it that is no line of the list."""
    model = tiny_model_file(tmp_path / "final.pt")
    lines = write_clips(tmp_path)
    for keyword in ("!!!", "--"):
        bad = tmp_path / "bad.tsv"
        bad.write_text("\n".join(lines[:2] + [f"audio/2.wav\t{keyword}"] + lines[3:]) + "\n")
        assert cli.main(["--model", str(model), "--clips", str(bad)]) == 1
        err = capsys.readouterr().err
        assert f"score_clips: {bad}:3: " in err and "keyword" in err, err
        assert "pairs.tsv" not in err
    write_noise(tmp_path / "audio" / "short.wav", 0.01)
    bad.write_text("\n".join(lines[:4] + ["audio/short.wav\tcomputer"] + lines[4:]) + "\n")
    assert cli.main(["--model", str(model), "--clips", str(bad)]) == 1
    err = capsys.readouterr().err
    assert (f"score_clips: {bad}:5: {tmp_path / 'audio' / 'short.wav'} holds 0.010 s of audio"
            in err), err


def test_runs_in_one_process_give_each_its_own_scoring(tmp_path, capsys, monkeypatch):
    """--run: the same files, scores and metrics as one command per back-end; runs with the
    same front end (here the default floor) embed the words' windows once between them."""
    from pyadml.score import phrase

    embedded = []
    windows = phrase.clips_window_embeddings

    def counted(model, feats_of, cut_ids, *args, **kwargs):
        if cut_ids:
            embedded.append(len(cut_ids))
        return windows(model, feats_of, cut_ids, *args, **kwargs)

    monkeypatch.setattr(phrase, "clips_window_embeddings", counted)
    model = tiny_model_file(tmp_path / "final.pt", cohort=["pocket", "silver", "market", "garden"])
    write_clips(tmp_path)
    base = ["--model", str(model), "--clips", str(tmp_path / "clips.tsv")]
    # the defaults (a 50 dB floor, T-norm with K = 3 of the 4 cohort words), and two others
    variants = [[], ["--vad", "--floor-db", "10", "--score-norm", "none"],
                ["--score-norm", "tnorm", "--cohort-size", "2"]]
    for i, opts in enumerate(variants):
        assert cli.main(base + opts + ["--out-dir", str(tmp_path / f"one{i}")]) == 0
    assert embedded == [6, 6, 6]
    embedded.clear()
    runs = [f"{' '.join(opts)} --out-dir '{tmp_path}/all {i}'" for i, opts in enumerate(variants)]
    assert cli.main(base + ["--out-dir", str(tmp_path / "all 0")]
                    + [a for r in runs[1:] for a in ("--run", r)]) == 0
    assert capsys.readouterr().out.count("score_clips: 6 clips x 3 keywords") == 6
    assert embedded == [6, 6]  # the first and third runs share the 50 dB floor's windows
    scores = []
    for i in range(3):
        for name in ("scores.tsv", "metrics.json"):
            assert (tmp_path / f"all {i}" / name).read_text() == (tmp_path / f"one{i}" / name).read_text()
        scores.append((tmp_path / f"one{i}" / "scores.tsv").read_text())
    assert len(set(scores)) == 3  # the runs did score differently


def test_a_bad_run_fails_before_any_run_writes(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "final.pt")
    write_clips(tmp_path)
    base = ["--model", str(model), "--clips", str(tmp_path / "clips.tsv"),
            "--out-dir", str(tmp_path / "a")]
    assert cli.main(base + ["--run", f"--floor-db -3 --out-dir {tmp_path / 'b'}"]) == 1
    assert "--run 1: --floor-db must be a positive number" in capsys.readouterr().err
    for run, expect in ((f"--model x --out-dir {tmp_path / 'b'}", "--model is the command line's"),
                        (f"--out-dir {tmp_path / 'a'}", "the same --out-dir"),
                        ("--score-norm tnrom", "invalid choice: 'tnrom'"),
                        ("--vad '--out-dir", "No closing quotation")):
        with pytest.raises(SystemExit) as e:
            cli.main(base + ["--run", run])
        assert e.value.code == 2
        assert expect in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_score_wakeword_dev_help_and_an_unknown_option(tmp_path):
    """--help prints the script's usage; a misspelt option is named. Before, both were taken for
    the experiment directory, and score_clips said "argument --model: expected one argument"."""
    import subprocess

    script = Path(__file__).resolve().parents[2] / "egs/wsj_librikws/local/score_wakeword_dev.sh"
    res = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.startswith("Usage: ") and "--variant" in res.stdout
    res = subprocess.run(["bash", str(script), "--tnorm", "true", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "unknown option '--tnorm'" in res.stderr, res.stderr
    assert "score_clips" not in res.stderr


def test_score_wakeword_dev_variants_each_get_their_results_dir(tmp_path):
    """local/score_wakeword_dev.sh --variant: one results directory per variant, named by its
    options, holding what score_clips gives for those options alone; a bad variant is refused
    before anything is scored."""
    import os
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "egs/wsj_librikws/local/score_wakeword_dev.sh"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    exp = tmp_path / "exp"
    exp.mkdir()
    model = tiny_model_file(exp / "final.pt", cohort=["pocket", "silver", "market", "garden"])
    write_clips(tmp_path)

    def script_run(*args):
        return subprocess.run(["bash", str(script), *args, str(exp), str(tmp_path)],
                              capture_output=True, text=True, env=env, timeout=300)

    for args, err in (
            (["--variant", "", "--variant", "--vad maybe"], "--vad must be true or false, got 'maybe'"),
            (["--variant", "--floor-db x"], "--floor-db must be a positive number of dB, got 'x'"),
            (["--variant", "--tnorm"], "unknown scoring option '--tnorm'"),
            (["--variant", "--enrol audio"], "--enrol must be none or tts, got 'audio'"),
            (["--variant", "--speaker-mean yes"], "--speaker-mean must be true or false, got 'yes'"),
            (["--vad", "true", "--variant", ""], "inside each --variant, not beside them")):
        res = script_run(*args)
        assert res.returncode == 1 and err in res.stderr, (args, res.stderr)
    assert not (exp / "results").exists()
    res = script_run("--variant", "", "--variant", "--vad true --floor-db 10",
                     "--variant", "--score-norm tnorm", "--variant", "--score-norm tnorm --enrol tts")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("score_clips: 6 clips x 3 keywords") == 4
    # A variant without --floor-db has no floor, one without --score-norm no T-norm, one
    # without --phrase-score the clip cosine and one without --enrol the text alone (score_clips'
    # own defaults would put a 50 dB floor, the words, T-norm and TTS enrolment).
    for name, opts in (("wakeword_dev", ["--floor-db", "none", "--score-norm", "none", "--enrol", "none"]),
                       ("wakeword_dev_vad_floor10", ["--vad", "--floor-db", "10", "--score-norm", "none",
                                                     "--enrol", "none"]),
                       ("wakeword_dev_tnorm", ["--score-norm", "tnorm", "--floor-db", "none", "--enrol", "none"]),
                       ("wakeword_dev_tnorm_enrol", ["--score-norm", "tnorm", "--floor-db", "none",
                                                     "--enrol", "tts"])):
        assert cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"),
                         "--out-dir", str(tmp_path / name), "--phrase-score", "clip", *opts]) == 0
        got = (exp / "results" / name / "scores.tsv").read_text()
        assert got == (tmp_path / name / "scores.tsv").read_text(), name
    assert sorted(p.name for p in (exp / "results").iterdir()) == [
        "wakeword_dev", "wakeword_dev_tnorm", "wakeword_dev_tnorm_enrol", "wakeword_dev_vad_floor10"]
    tts = (exp / "results" / "wakeword_dev_tnorm_enrol" / "scores.tsv").read_text()
    assert tts != (exp / "results" / "wakeword_dev_tnorm" / "scores.tsv").read_text()

    # --speaker-mean true: score_clips --speaker-mean on a list with a speaker column; on one
    # without, score_clips' error names the line.
    res = script_run("--variant", "--score-norm tnorm --speaker-mean true")
    assert res.returncode == 1 and "clips.tsv:1: the speaker mean needs a third column" in res.stderr
    lines = (tmp_path / "clips.tsv").read_text().splitlines()
    (tmp_path / "clips.tsv").write_text("".join(f"{ln}\tspk{i % 2}\n" for i, ln in enumerate(lines)))
    res = script_run("--variant", "--score-norm tnorm --speaker-mean true")
    assert res.returncode == 0, res.stderr
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"), "--out-dir",
                     str(tmp_path / "spk"), "--phrase-score", "clip", "--score-norm", "tnorm",
                     "--floor-db", "none", "--enrol", "none", "--speaker-mean"]) == 0
    got = (exp / "results" / "wakeword_dev_tnorm_spkmean" / "scores.tsv").read_text()
    assert got == (tmp_path / "spk" / "scores.tsv").read_text()
    assert got != (exp / "results" / "wakeword_dev_tnorm" / "scores.tsv").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "clips.tsv").is_file(), reason="no ../shared wake-word set")
def test_the_wake_word_development_set_is_read_as_its_readme_says(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "final.pt")
    assert cli.main(["--model", str(model), "--clips", str(SHARED / "clips.tsv")]) == 0
    assert "300 clips x 6 keywords" in capsys.readouterr().out


def test_clip_intervals():
    """Perfectly separated clips: every resample is perfect. Noisy clips: the interval holds the
    figure, and four times the clips (the same ones, four times) narrow it about twofold."""
    from pyadml.score.clips import clip_intervals, clip_metrics

    rng = np.random.default_rng(0)
    labels = np.zeros((300, 6), np.int64)
    labels[np.arange(300), rng.integers(0, 6, 300)] = 1
    ci = clip_intervals(labels + 0.1 * rng.random((300, 6)), labels, draws=200)
    assert {k: pytest.approx(v) for k, v in ci.items()} == {
        "AP": [1, 1], "EER": [0, 0], "AUC": [1, 1], "top1": [1, 1]}
    scores = rng.standard_normal((300, 6)) + 1.5 * labels
    m, ci = clip_metrics(scores, labels), clip_intervals(scores, labels, draws=400)
    for k, (lo, hi) in ci.items():
        assert lo < m[k] < hi, k
    ci4 = clip_intervals(np.tile(scores, (4, 1)), np.tile(labels, (4, 1)), draws=400)
    for k in ci:
        ratio = (ci[k][1] - ci[k][0]) / (ci4[k][1] - ci4[k][0])
        assert 1.6 < ratio < 2.5, (k, ratio)
    assert clip_intervals(scores, labels, draws=50) == clip_intervals(scores, labels, draws=50)



def test_results_into_a_read_only_experiment_are_refused_before_any_scoring(tmp_path, capsys,
                                                                             monkeypatch, read_only):
    """A model shared read-only (another user's exp/, a read-only mount) scored with
    local/score_wakeword_dev.sh, whose results go into its exp/results: before, every clip of
    every run was scored (minutes for 300 real clips), then `OSError: [Errno 30] Read-only file
    system: '…/results/wakeword_dev/.scores.tsv.pu8dbe84.tmp'` after a traceback. Now the
    directory is named before anything is scored."""
    model = tiny_model_file(tmp_path / "final.pt")
    write_clips(tmp_path)
    shared = tmp_path / "exp"
    shared.mkdir()
    read_only(shared)
    monkeypatch.setattr(cli, "score_clips", lambda *a, **k: pytest.fail("scored before the check"))
    out = shared / "results" / "wakeword_dev"
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"),
                     "--out-dir", str(tmp_path / "mine"),
                     "--run", f"--vad --out-dir {out}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"score_clips: --run 1: cannot write the results in --out-dir {out}: "
                          f"{shared} is on a read-only file system; give --out-dir a directory "
                          f"of yours"), err
