"""The LibriPhrase stand-in's plan (anchors, easy and hard negatives) depends on the seed only,
not on the process: Python's string hash, which orders sets, differs from run to run."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = """
import json
from pyadml.synth.corpora import _rng, load_config, make_vocabulary, plan_libriphrase
from pyadml.text import G2P
cfg = load_config("egs/wsj_librikws/conf/synth.yaml", "tiny")
vocab = make_vocabulary(cfg)
lexicon = G2P().lexicon(sorted(set(vocab.train) | set(vocab.unseen)))
print(json.dumps(plan_libriphrase(cfg, vocab, lexicon, _rng(cfg, "libriphrase"))))
"""


def test_the_plan_is_the_same_under_any_hash_seed():
    plans = []
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        res = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        plans.append(json.loads(res.stdout))
    assert plans[0] == plans[1] == plans[2]
    assert any(r["hard"] != r["anchor"] for r in plans[0])
