"""Progress of long stages reaches the console of a run_stage run (utils/stage.sh) while the
stage's output still goes to its log: the progress channel itself, stage 0's words per corpus,
stage 4's jobs per set (run_local.sh), and a Slurm array's tasks (run_slurm.sh, with stand-in
sbatch and squeue)."""

import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "wsj_librikws"


def env(**extra):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("PYTEST", "SLURM_", "PYADML_PROGRESS"))}
    e["PATH"] = f"{ROOT / '.venv' / 'bin'}:{e['PATH']}"
    e["PYTHONPATH"] = str(ROOT)
    e["OMP_NUM_THREADS"] = "1"
    e.update(extra)
    return e


def run_stage(cwd, body, **extra):
    """bash with utils/stage.sh sourced; stdout is a pipe, so progress comes as plain lines."""
    script = f"set -euo pipefail\ndone_dir=data/.done\n. {ROOT}/utils/stage.sh\n" + textwrap.dedent(body)
    res = subprocess.run(["bash", "-c", script], cwd=cwd, env=env(**extra), capture_output=True,
                         timeout=240)
    # decoded here: text=True would turn a live bar's \r into \n
    res.stdout, res.stderr = res.stdout.decode(), res.stderr.decode()
    return res


def test_what_a_stage_writes_to_its_progress_channel_reaches_the_console(tmp_path):
    res = run_stage(tmp_path, r"""
        step() {
          echo "detail for the log"
          printf '   step: 1/2 done\n' >> "$PYADML_PROGRESS"
          sleep 0.4
          printf '   step: 2/2 done | tty=%s\n' "$PYADML_PROGRESS_TTY" >> "$PYADML_PROGRESS"
          printf '\r   a bar left without its newline' >> "$PYADML_PROGRESS"
        }
        run_stage 3 "three" exp/log/s3.log step
        echo after
        """)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split("\n")  # not splitlines(): it splits at the bar's \r too
    i = lines.index("   log: exp/log/s3.log")
    assert lines[i + 1:i + 3] == ["   step: 1/2 done", "   step: 2/2 done | tty=0"]
    assert lines[i + 3] == "\r   a bar left without its newline"  # ended by run_stage
    assert lines[i + 4].startswith("== Stage 3: done in") and lines[-2:] == ["after", ""]
    log = (tmp_path / "exp/log/s3.log").read_text()
    assert "detail for the log" in log and "step: 1/2" not in log
    assert "detail" not in res.stdout
    assert (tmp_path / "exp/log/s3.log.progress").read_text().startswith("   step: 1/2 done\n")


@pytest.mark.skipif(not __import__("pyadml.synth.voices", fromlist=["x"]).engine_available(),
                    reason="espeak-ng/flite/festival missing")
def test_stage_0_shows_the_words_synthesised_per_corpus(tmp_path):
    res = run_stage(tmp_path, f"""
        run_stage 0 "synthesise" data/log/stage0.log \\
          python -m pyadml.bin.make_synth_corpora --config {RECIPE}/conf/synth.yaml --size tiny \\
            --nj 2 --corpora musan,rirs_noises --out-dir data/local/synth
        """)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "   synth 1/2 musan (babble): 36/36 words (100%) | " in out
    assert "   synth 1/2 musan: done in " in out and "   synth 2/2 rirs_noises: done in " in out
    log = (tmp_path / "data/log/stage0.log").read_text()
    assert "stage 0 took" in log and "words (100%)" not in log  # progress is not in the log


@pytest.fixture
def recipe(tmp_path):
    """A recipe dir (steps, utils linked) with data/cuts/short.jsonl.gz: four noise cuts."""
    from lhotse import CutSet, Recording

    from pyadml.data.features import save_cuts

    r = tmp_path / "r"
    (r / "data" / "cuts").mkdir(parents=True)
    (r / "steps").symlink_to(ROOT / "steps")
    (r / "utils").symlink_to(ROOT / "utils")
    rng = np.random.default_rng(0)
    recs = []
    for i, seconds in enumerate([0.3, 0.5, 0.4, 0.6]):
        path = r / "data" / f"r{i}.wav"
        sf.write(path, 0.1 * rng.standard_normal(int(seconds * 16000)), 16000)
        recs.append(Recording.from_file(path))
    save_cuts(CutSet.from_manifests(recordings=recs), r / "data" / "cuts" / "short.jsonl.gz")
    return r


def test_stage_4_shows_the_jobs_finished_per_set(recipe):
    body = """
        run_stage 4 "fbank" data/log/stage4.log \\
          steps/make_fbank_sets.sh --nj 2 --cmd "utils/run_local.sh --max-jobs-run 2" data/cuts data/fbank short
        """
    res = run_stage(recipe, body)
    assert res.returncode == 0, res.stderr
    assert "   fbank set 1/1 short: 2/2 jobs done | elapsed " in res.stdout
    log = (recipe / "data/log/stage4.log").read_text()
    assert "short: computing part(s) 1 2 of 2" in log and "jobs done" not in log
    res = run_stage(recipe, body, force="true")  # complete: skipped, and says so
    assert "   fbank set 1/1 short: complete, skipping" in res.stdout


def test_a_slurm_array_shows_n_of_m_tasks_done_from_the_task_logs(tmp_path):
    """sbatch keeps the batch script; each squeue call runs the next task (as a node would)
    and lists the others as running or pending."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(textwrap.dedent("""\
        #!/bin/bash
        cat > "$FAKE_DIR/script.sh"
        array=$(printf '%s\\n' "$@" | sed -n 's/^--array=//p'); array=${array%%%*}
        seq ${array%-*} ${array#*-} > "$FAKE_DIR/pending"
        echo 42
        """))
    (bin_dir / "squeue").write_text(textwrap.dedent("""\
        #!/bin/bash
        next=$(head -n 1 "$FAKE_DIR/pending")
        [ -n "$next" ] || exit 0
        SLURM_ARRAY_TASK_ID=$next SLURM_ARRAY_JOB_ID=42 bash "$FAKE_DIR/script.sh"
        sed -i 1d "$FAKE_DIR/pending"
        state=RUNNING
        while read -r i; do echo "42_$i $state"; state=PENDING; done < "$FAKE_DIR/pending"
        """))
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    res = run_stage(tmp_path, f"""
        run_stage 4 "three tasks" data/log/stage4.log \\
          bash {ROOT}/utils/run_slurm.sh --config {RECIPE}/conf/slurm.conf JOB=1:3 log/t.JOB.log 'echo task JOB'
        """, FAKE_DIR=str(tmp_path), PATH=f"{bin_dir}:{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        PYADML_PROGRESS_INTERVAL="0", PYADML_SLURM_LOG_WAIT="1")
    assert res.returncode == 0, res.stderr
    lines = [l for l in res.stdout.splitlines() if "tasks done" in l]
    assert lines[0].startswith("   t: 1/3 tasks done, 1 running (Slurm job 42) | elapsed ")
    assert lines[1].startswith("   t: 2/3 tasks done, 1 running (Slurm job 42) | elapsed ")
    assert lines[-1].startswith("   t: 3/3 tasks done (Slurm job 42) | elapsed ")
    assert all((tmp_path / f"log/t.{i}.log").read_text().splitlines()[-1].startswith("# Ended (code 0)")
               for i in (1, 2, 3))
