"""The LibriPhrase stand-in's plan (anchors, easy and hard negatives) depends on the seed only,
not on the process: Python's string hash, which orders sets, differs from run to run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyadml.synth.corpora import Vocabulary, plan_libriphrase

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


def test_no_negative_is_a_homophone_of_its_anchor():
    """A hand-made lexicon: "two", "too" and "to" share T UW; "tune" is one phoneme away, and the
    other words are far. LibriPhrase keeps edit distances above 0 only, so the hard negative of
    "two" is "tune" and no negative of a T UW anchor is another T UW word."""
    lexicon = {"two": ["T", "UW1"], "too": ["T", "UW1"], "to": ["T", "UW0"],
               "tune": ["T", "UW1", "N"], "cat": ["K", "AE1", "T"], "dog": ["D", "AO1", "G"],
               "fish": ["F", "IH1", "SH"], "lamp": ["L", "AE1", "M", "P"]}
    vocab = Vocabulary(train=sorted(lexicon), unseen=[])
    tuw = {"two", "too", "to"}
    for seed in range(20):
        cfg = {"libriphrase": {"anchors_per_class": 2, "pool": 8, "max_words": 1}}
        rows = plan_libriphrase(cfg, vocab, lexicon, np.random.default_rng(seed))
        assert len(rows) == 2
        for r in rows:
            if r["anchor"] in tuw:
                assert r["hard"] == "tune", r
                assert r["easy"] not in tuw, r
            assert r["hard"] != r["anchor"] and r["easy"] != r["anchor"]
    # Two-word phrases: the replaced word may not be a homophone either.
    key = lambda t: tuple("TUW" if w in tuw else w for w in t.split())
    cfg = {"libriphrase": {"anchors_per_class": 2, "pool": 8, "max_words": 2}}
    for seed in range(20):
        rows = plan_libriphrase(cfg, vocab, lexicon, np.random.default_rng(seed))
        assert [r["n"] for r in rows] == [1, 1, 2, 2]
        for r in rows:
            assert key(r["hard"]) != key(r["anchor"]) and key(r["easy"]) != key(r["anchor"]), r


def test_a_vocabulary_too_small_for_the_plan_is_a_clear_error():
    # Four words that all sound T UW: no phrase can be a negative of another.
    lexicon = {"two": ["T", "UW1"], "too": ["T", "UW1"], "to": ["T", "UW0"], "tew": ["T", "UW1"]}
    vocab = Vocabulary(train=sorted(lexicon), unseen=[])
    cfg = {"libriphrase": {"anchors_per_class": 1, "pool": 4, "max_words": 1}}
    with pytest.raises(ValueError, match="differs from the anchor 't"):
        plan_libriphrase(cfg, vocab, lexicon, np.random.default_rng(0))
    # More distinct phrases asked for than the words can make: an error, not an endless draw.
    cfg = {"libriphrase": {"anchors_per_class": 2, "pool": 4, "max_words": 1}}
    with pytest.raises(ValueError, match="8 distinct 1-word phrases.*4 words"):
        plan_libriphrase(cfg, vocab, lexicon, np.random.default_rng(0))
