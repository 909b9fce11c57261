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


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "clips.tsv").is_file(), reason="no ../shared wake-word set")
def test_the_wake_word_development_set_is_read_as_its_readme_says(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "final.pt")
    assert cli.main(["--model", str(model), "--clips", str(SHARED / "clips.tsv")]) == 0
    assert "300 clips x 6 keywords" in capsys.readouterr().out
