"""utils/stage.sh (run_stage), exercised through real bash."""

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PARSE_OPTIONS = REPO / "utils" / "parse_options.sh"
STAGE = REPO / "utils" / "stage.sh"

# Stages 0..2 each append their number to out.txt; stage 1 fails when the
# file `fail1` exists, after writing a line to its log.
RUN_SH = f"""#!/usr/bin/env bash
set -euo pipefail
stage=0
stop_stage=100
done_dir=data/.done
force=false
. {PARSE_OPTIONS} || exit 1
. {STAGE}

step() {{
  echo "running step $1"
  echo "markers-seen:$(ls -A data/.done 2>/dev/null | tr '\\n' ' ')"
  if [[ $1 == 1 && -e fail1 ]]; then
    echo "boom"
    return 3
  fi
  echo "$1" >> out.txt
}}

run_stage 0 "stage zero" exp/log/stage0.log step 0
run_stage 1 "stage one" exp/log/stage1.log step 1
run_stage 2 "stage two" exp/log/stage2.log step 2
echo "all-finished"
"""


@pytest.fixture
def recipe(tmp_path):
    (tmp_path / "run.sh").write_text(RUN_SH)

    def _run(*args):
        return subprocess.run(
            ["bash", "run.sh", *args],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )

    return _run


def ran(tmp_path):
    out = tmp_path / "out.txt"
    return out.read_text().split() if out.exists() else []


def markers(tmp_path):
    d = tmp_path / "data" / ".done"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_bash_syntax():
    subprocess.run(["bash", "-n", str(STAGE)], check=True)


def test_default_runs_all_stages(recipe, tmp_path):
    p = recipe()
    assert p.returncode == 0, p.stderr
    assert ran(tmp_path) == ["0", "1", "2"]
    assert markers(tmp_path) == ["stage_0.done", "stage_1.done", "stage_2.done"]
    assert "== Stage 0: stage zero" in p.stdout
    assert "exp/log/stage2.log" in p.stdout
    assert "all-finished" in p.stdout
    # Command output goes to the log, not the terminal.
    assert "running step 1" not in p.stdout
    assert "running step 1" in (tmp_path / "exp/log/stage1.log").read_text()
    marker = (tmp_path / "data/.done/stage_1.done").read_text()
    assert "step 1" in marker


def test_stage_range(recipe, tmp_path):
    p = recipe("--stage", "1", "--stop-stage", "1")
    assert p.returncode == 0, p.stderr
    assert ran(tmp_path) == ["1"]
    assert markers(tmp_path) == ["stage_1.done"]
    assert "Stage 0" not in p.stdout and "Stage 2" not in p.stdout


def test_rerun_skips_completed_stages(recipe, tmp_path):
    assert recipe("--stop-stage", "1").returncode == 0
    assert ran(tmp_path) == ["0", "1"]
    p = recipe()
    assert p.returncode == 0, p.stderr
    assert ran(tmp_path) == ["0", "1", "2"]  # 0 and 1 not executed again
    assert "already done (data/.done/stage_0.done); skipping" in p.stdout
    assert "already done (data/.done/stage_1.done); skipping" in p.stdout
    log0 = (tmp_path / "exp/log/stage0.log").read_text()
    assert log0.count("running step 0") == 1


def test_force_ignores_markers(recipe, tmp_path):
    assert recipe().returncode == 0
    p = recipe("--force", "true", "--stage", "2")
    assert p.returncode == 0, p.stderr
    assert ran(tmp_path) == ["0", "1", "2", "2"]


def test_failure_stops_script(recipe, tmp_path):
    (tmp_path / "fail1").touch()
    p = recipe()
    assert p.returncode != 0
    assert ran(tmp_path) == ["0"]  # stage 2 never ran
    assert markers(tmp_path) == ["stage_0.done"]  # no marker for the failure
    assert "Stage 1 (stage one) failed with status 3" in p.stderr
    assert "exp/log/stage1.log" in p.stderr
    assert "boom" in p.stderr  # tail of the log is shown
    assert "all-finished" not in p.stdout
    assert "Stage 2" not in p.stdout

    # After fixing the cause, a re-run resumes at the failed stage.
    (tmp_path / "fail1").unlink()
    p = recipe()
    assert p.returncode == 0, p.stderr
    assert ran(tmp_path) == ["0", "1", "2"]


def test_marker_written_only_after_success(recipe, tmp_path):
    """While a stage's command runs, its marker (or a temp file) must not exist."""
    assert recipe().returncode == 0
    for n in range(3):
        log = (tmp_path / f"exp/log/stage{n}.log").read_text()
        seen = log.split("markers-seen:")[1].splitlines()[0].split()
        assert seen == [f"stage_{k}.done" for k in range(n)]
    # No temporary marker files are left behind after success either.
    assert markers(tmp_path) == ["stage_0.done", "stage_1.done", "stage_2.done"]


def test_set_e_inside_function_stage(tmp_path):
    """A failing command in the middle of a stage function fails the stage."""
    script = tmp_path / "r.sh"
    script.write_text(f"""set -euo pipefail
stage=0; stop_stage=100; done_dir=done
. {STAGE}
f() {{ false; echo should-not-run >> out.txt; }}
run_stage 0 "func" log/0.log f
echo finished
""")
    p = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=30)
    assert p.returncode != 0
    assert not (tmp_path / "out.txt").exists()
    assert not (tmp_path / "done" / "stage_0.done").exists()
    assert "finished" not in p.stdout


@pytest.mark.parametrize("bad", ["x", "1.5"])
def test_non_integer_stage_rejected(recipe, tmp_path, bad):
    p = recipe("--stage", bad)
    assert p.returncode != 0
    assert "integer" in p.stderr
    assert ran(tmp_path) == []
