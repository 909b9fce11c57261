"""kaldi-native-fbank (the spotter's incremental fbank) against lhotse's Fbank (training)."""

import numpy as np
import pytest
import soundfile as sf
from conftest import FBANK, RATE, speechlike

from pyadml.data.features import fbank_extractor
from pyadml.spot.features import OnlineFeatures, compute_fbank


@pytest.mark.parametrize("seconds", [0.013, 0.3, 1.0, 2.37])
def test_knf_matches_lhotse_fbank(seconds):
    x = speechlike(seconds, seed=int(seconds * 100))
    ref = fbank_extractor(FBANK).extract(x, RATE)
    got = compute_fbank(x, {**FBANK, "mean_norm": True})
    assert got.shape == ref.shape  # the same frame count, edge frames included
    assert np.abs(got - ref).max() < 5e-4


def test_knf_matches_lhotse_on_speech(espeak_wav):
    x, _ = sf.read(espeak_wav, dtype="float32")
    ref = fbank_extractor(FBANK).extract(x, RATE)
    got = compute_fbank(x, FBANK)
    d = np.abs(got - ref)
    assert got.shape == ref.shape and d.max() < 5e-4 and d.mean() < 2e-5


def test_frames_do_not_depend_on_chunking():
    x = speechlike(3.0, seed=7)
    whole = compute_fbank(x, FBANK)
    rng = np.random.default_rng(0)
    f = OnlineFeatures(FBANK)
    parts, i = [], 0
    while i < x.size:
        n = int(rng.integers(1, 2000))
        f.accept(x[i : i + n])
        parts.append(f.take())
        i += n
    f.finish()
    parts.append(f.take())
    assert np.array_equal(np.concatenate(parts), whole)
