"""steps/show_scores.sh, the closing summary of run.sh and a user's way to see an experiment's
figures again: under a path with spaces, and on an experiment that stage 8 never scored."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def show(*args):
    return subprocess.run(["bash", str(ROOT / "steps/show_scores.sh"), *map(str, args)],
                          capture_output=True, text=True)


def test_tables_and_real_rows_of_an_experiment_under_a_path_with_spaces(tmp_path):
    exp = tmp_path / "my runs" / "exp a"
    for d, row in (("results", "| wsj_test | 10 | 90.00 |"), ("results_tnorm", "| wsj_test | 10 | 92.00 |")):
        (exp / d).mkdir(parents=True)
        (exp / d / "results.md").write_text(f"| test set | trials | AP (%) |\n|---|---:|---:|\n{row}\n")
    for d, line in (("wakeword_dev", "AP 61.20%"), ("wakeword_dev_vad", "AP 88.60%")):
        (exp / "results" / d).mkdir()
        (exp / "results" / d / "summary.txt").write_text(line + "\n")
    res = show(exp, tmp_path / "ww dev")
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "| wsj_test | 10 | 90.00 |" in out and "| wsj_test | 10 | 92.00 |" in out
    assert f"Real recordings ({tmp_path / 'ww dev'}, measured only): AP 61.20%" in out
    assert "the energy VAD front end (--vad): AP 88.60%" in out
    assert "words" not in out  # only what stage 8 wrote


def test_an_experiment_stage_8_never_scored_is_named(tmp_path):
    exp = tmp_path / "exp b"
    (exp / "checkpoints").mkdir(parents=True)
    res = show(exp)
    assert res.returncode == 1 and not res.stdout
    assert f"{exp}/results/results.md does not exist: stage 8 has not scored {exp}" in res.stderr
