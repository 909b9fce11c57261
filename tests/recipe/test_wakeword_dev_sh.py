"""utils/wakeword_dev.sh: the real recordings run.sh measures on, and whether stage 8 adds the
speaker-mean row (every clips.tsv line names its speaker in a third column)."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def source(tmp_path, lines):
    d = tmp_path / "ww"
    d.mkdir()
    (d / "clips.tsv").write_text(lines)
    script = (f"set -euo pipefail; PYADML_ROOT={ROOT}; WAKEWORD_DEV={d}; . {ROOT}/utils/wakeword_dev.sh; "
              'echo "dev=$wakeword_dev"; echo "n=${#wakeword_dev_spkmean[@]} ${wakeword_dev_spkmean[*]:-}"')
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60), d


@pytest.mark.parametrize("lines, variant, partial", [
    ("a.wav\talexa\tspk1\n\nb.wav\tjarvis\tspk2\r\n", True, False),  # a blank line, a CRLF end
    ("a.wav\talexa\n", False, False),
    ("a.wav\talexa\tspk1\nb.wav\tjarvis\n", False, True),
])
def test_the_speaker_mean_row_needs_every_line_to_name_its_speaker(tmp_path, lines, variant, partial):
    res, d = source(tmp_path, lines)
    assert res.returncode == 0, res.stderr
    assert f"dev={d}\n" in res.stdout
    if variant:
        assert ("n=2 --variant --floor-db 50 --score-norm tnorm --phrase-score words --enrol tts "
                "--speaker-mean true") in res.stdout
    else:
        assert "n=0 \n" in res.stdout
    # Some lines with a speaker and some without: said, naming the list and the counts.
    said = "names the speaker (a third column) on 1 of its 2 lines" in res.stderr
    assert said == partial
