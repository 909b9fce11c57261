"""Fixtures shared across test folders."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

TRAIN_WORDS = ["cat", "dog", "fish", "bird", "tree", "road", "lamp", "door"]


def pytest_collection_modifyitems(items):
    # The modules that run a whole recipe first (stable: the rest keep their order): with
    # utils/run_tests.sh's workers, the longest file then starts at once instead of last.
    items.sort(key=lambda item: item.get_closest_marker("recipe_run") is None)


# torch's thread count as a fresh process has it, before any test changes it.
FRESH_TORCH_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def _torch_threads():
    """torch's thread count is the process's (KeywordSpotter.load(num_threads=1) sets it): put
    it back after each test, so that a later test in the same worker computes as a fresh
    process does, and as the subprocesses it compares with byte for byte do."""
    yield
    if torch.get_num_threads() != FRESH_TORCH_THREADS:
        torch.set_num_threads(FRESH_TORCH_THREADS)


@pytest.fixture(scope="session")
def tiny_training_data(tmp_path_factory) -> Path:
    """8 keywords x 5 utterances of distinct tone patterns with fbank (4 train, 1 dev each),
    a lang dir (lexicon, phones, keyword ids) and dev trials: enough to train in seconds."""
    from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter, Recording, SupervisionSegment

    from pyadml.data.dataset import write_keyword_ids
    from pyadml.data.trials import Trial, write_trials
    from pyadml.text import Tokenizer

    root = tmp_path_factory.mktemp("train_data")
    rng = np.random.default_rng(0)
    cuts = []
    for k, word in enumerate(TRAIN_WORDS):
        for u in range(5):
            n = int(16000 * rng.uniform(0.25, 0.45))
            t = np.arange(n) / 16000
            x = 0.3 * np.sin(2 * np.pi * (200 + 90 * k) * t) + 0.01 * rng.standard_normal(n)
            path = root / f"{word}{u}.wav"
            sf.write(path, x, 16000)
            rec = Recording.from_file(path)
            cuts.append(rec.to_cut().with_id(f"{word}{u}"))
            cuts[-1].supervisions = [SupervisionSegment(f"{word}{u}", rec.id, 0, rec.duration, text=word)]
    cuts = CutSet.from_cuts(cuts).compute_and_store_features(
        Fbank(FbankConfig(num_mel_bins=40)), root / "feats", storage_type=LilcomChunkyWriter)
    train = CutSet.from_cuts([c for c in cuts if not c.id.endswith("4")])
    dev = CutSet.from_cuts([c for c in cuts if c.id.endswith("4")])
    train.to_file(root / "train.jsonl.gz")
    dev.to_file(root / "dev.jsonl.gz")
    Tokenizer.build(TRAIN_WORDS).write_lang_dir(root / "lang")
    write_keyword_ids(root / "lang" / "keywords.txt", TRAIN_WORDS)
    write_trials(root / "dev.tsv",
                 [Trial(c.id, w, int(c.supervisions[0].text == w)) for c in dev for w in TRAIN_WORDS])
    (root / "fbank.yaml").write_text("num_mel_bins: 40\n")
    return root
