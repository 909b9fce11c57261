"""egs/wsj_librikws/run.sh stage 0 on the tiny embedded corpora, run on a copy of the recipe
as a user would (steps and utils linked back to the toolkit)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyadml.synth.voices import engine_available

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "wsj_librikws"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not engine_available(), reason="espeak-ng/flite/festival missing")]


def copy_recipe(dest: Path, recipe: Path = RECIPE) -> Path:
    dest.mkdir(parents=True)
    for name in ("run.sh", "path.sh", "cmd.sh", "db.sh"):
        shutil.copy(recipe / name, dest / name)
    for name in ("conf", "local"):
        shutil.copytree(recipe / name, dest / name)
    (dest / "steps").symlink_to(ROOT / "steps")
    (dest / "utils").symlink_to(ROOT / "utils")
    return dest


def run(recipe: Path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(["bash", "run.sh", *args], cwd=recipe, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    recipe = copy_recipe(tmp_path_factory.mktemp("egs") / "wsj_librikws")
    res = run(recipe, "--stop-stage", "0", "--synth-size", "tiny", "--nj", "2")
    assert res.returncode == 0, res.stdout + res.stderr
    return recipe, res


def test_stage0_writes_every_corpus_and_its_marker(recipe):
    recipe, res = recipe
    assert "== Stage 0: synthesise embedded corpora" in res.stdout
    synth = recipe / "data" / "local" / "synth"
    for name in ("king_asr_066", "wsj", "libriphrase", "musan", "rirs_noises"):
        assert (synth / name / ".complete").is_file(), name
    assert (synth / "king_asr_066" / "data" / "words.ctm").stat().st_size > 0
    assert len(list((synth / "libriphrase" / "data").glob("libriphrase_diffspk_all_*word.csv"))) == 4
    assert (recipe / "data" / ".done" / "stage_0.done").is_file()
    log = (recipe / "data" / "log" / "stage0_synth.log").read_text()
    assert "stage 0 took" in log


def test_rerun_skips_the_completed_stage(recipe):
    recipe, _ = recipe
    ctm = recipe / "data/local/synth/king_asr_066/data/words.ctm"
    before = ctm.stat().st_mtime_ns
    res = run(recipe, "--stop-stage", "0", "--synth-size", "tiny")
    assert res.returncode == 0, res.stderr
    assert "already done" in res.stdout
    # forced: the stage runs again, and the corpora themselves are found complete
    res = run(recipe, "--stop-stage", "0", "--synth-size", "tiny", "--force", "true")
    assert res.returncode == 0, res.stderr
    assert "complete" in (recipe / "data/log/stage0_synth.log").read_text().split("# Stage 0")[-1]
    assert ctm.stat().st_mtime_ns == before


def test_corpora_given_in_db_sh_are_not_synthesised(tmp_path):
    recipe = copy_recipe(tmp_path / "r")
    db = (recipe / "db.sh").read_text()
    for var in ("KING_ASR_066", "WSJ", "LIBRIPHRASE", "MUSAN", "RIRS_NOISES"):
        db = db.replace(f"\n{var}=\n", f"\n{var}=/corpora/{var.lower()}\n")
    (recipe / "db.sh").write_text(db)
    res = run(recipe, "--stop-stage", "0")
    assert res.returncode == 0, res.stderr
    log = (recipe / "data/log/stage0_synth.log").read_text()
    assert "nothing to synthesise" in log
    # by default every core works (nproc must not be fooled by OMP_NUM_THREADS=1)
    assert f"--nj {len(os.sched_getaffinity(0))} " in log
    assert not (recipe / "data/local/synth").exists()


def test_a_failing_stage_exits_nonzero_and_names_its_log(tmp_path):
    recipe = copy_recipe(tmp_path / "r")
    res = run(recipe, "--stop-stage", "0", "--synth-size", "no_such_size")
    assert res.returncode != 0
    assert "data/log/stage0_synth.log" in res.stderr
    assert "no size 'no_such_size'" in res.stderr  # the log's tail is shown
    assert not (recipe / "data/.done/stage_0.done").exists()


def test_bad_options_print_the_usage(tmp_path):
    recipe = copy_recipe(tmp_path / "r")
    res = run(recipe, "--stop-stage")
    assert res.returncode != 0 and "Usage:" in res.stderr
    res = run(recipe, "--no-such-option", "1")
    assert res.returncode != 0 and "unknown option --no-such-option" in res.stderr
    res = run(recipe, "--force", "yes")
    assert res.returncode != 0 and "--force" in res.stderr
