"""The kill campaign on the tiny config: three SIGKILLs at random points (of the whole job or
of torchrun alone), three resumes, and the same model as an uninterrupted run."""

import os
from pathlib import Path

import pytest

from pyadml.train.kill_campaign import run_campaign

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs" / "wsj_librikws" / "conf" / "train_tiny.yaml"


@pytest.mark.slow
def test_three_kills_resume_to_the_uninterrupted_model(tiny_training_data, tmp_path):
    data = tiny_training_data
    overrides = [f"data.train={data / 'train.jsonl.gz'}", f"data.lang={data / 'lang'}",
                 f"data.fbank_config={data / 'fbank.yaml'}", "batch.keywords=4", "epochs=3",
                 "checkpoint_every_steps=1", "threads=1"]
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
               OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    lines = []
    res = run_campaign(TINY, tmp_path / "kills", overrides, kills=3, seed=1,
                       train_sh=ROOT / "steps" / "train.sh", env=env, say=lines.append)
    assert len(res.kills) == 3, lines
    assert {mode for _, mode in res.kills} <= {"group", "launcher"}
    assert res.orphans == 0, lines  # workers died with their launcher
    assert res.max_abs_diff == 0.0, lines
    assert "max abs difference" in lines[-1]
