"""Speaking-rate perturbation of the training words (pyadml.data.dataset.tempo), checked against
hand-worked resamplings and a per-frame reference written from linear interpolation."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pyadml.data.dataset import KeywordDataset, batch_rng, check_tempo, stretch_frames, tempo

from test_dataset import augment_switch, cuts  # noqa: F401 (fixture)

TEMPO = {"prob": 1.0, "low": 0.6, "high": 1.0}


def slow_stretch(f, n):
    """Frame i of n reads source position p = i (T - 1) / (n - 1): (1 - w) f[floor p] + w f[ceil p]."""
    t = len(f)
    out = []
    for i in range(n):
        p = i * (t - 1) / (n - 1)
        lo = int(p)
        hi = min(lo + 1, t - 1)
        w = p - lo
        out.append([(1 - w) * float(f[lo, d]) + w * float(f[hi, d]) for d in range(f.shape[1])])
    return np.array(out)


def test_stretch_by_hand_and_against_a_per_frame_reference():
    ramp = np.arange(5, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    # 5 frames to 9: half-frame steps from 0 to 4, both ends kept.
    assert stretch_frames(ramp, 9)[:, 0] == pytest.approx([0, .5, 1, 1.5, 2, 2.5, 3, 3.5, 4])
    assert stretch_frames(ramp, 5) is ramp
    f = np.random.default_rng(0).normal(size=(23, 40)).astype(np.float32)
    for n in (24, 31, 38):
        assert stretch_frames(f, n) == pytest.approx(slow_stretch(f, n), abs=1e-5)


def test_only_the_word_is_slowed_and_never_past_the_batch_longest_word():
    word = np.arange(10, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    lead, trail = np.full((4, 3), -1.0, np.float32), np.full((2, 3), -2.0, np.float32)
    with_ctx = np.concatenate([lead, word, trail])
    longest = np.zeros((18, 3), np.float32)
    rate = {**TEMPO, "low": 0.5, "high": 0.5}   # twice as slow: 10 frames -> 20, capped at 18
    a, b = tempo([with_ctx, longest], [(4, 2), (0, 0)], rate, np.random.default_rng(0))
    assert len(a) == 4 + 18 + 2
    assert np.array_equal(a[:4], lead) and np.array_equal(a[-2:], trail)
    assert a[4:22, 0] == pytest.approx(np.linspace(0, 9, 18))
    assert b is longest    # the longest word cannot grow, so the batch stays as long
    # A smaller slowing is not capped: 10 frames at rate 0.8 -> 12.5, rounded to 12.
    (c, _) = tempo([with_ctx, longest], [(4, 2), (0, 0)], {**TEMPO, "low": 0.8, "high": 0.8},
                   np.random.default_rng(0))
    assert c[4:16, 0] == pytest.approx(np.linspace(0, 9, 12))


def test_tempo_draws_per_row_reproducibly_and_keeps_the_input():
    rng = np.random.default_rng(2)
    feats = [rng.normal(size=(t, 40)).astype(np.float32) for t in (30, 55, 80, 12, 41)]
    keep = [f.copy() for f in feats]
    pads = [(0, 0)] * len(feats)
    out = tempo(feats, pads, {**TEMPO, "prob": 0.6}, batch_rng(1, list("abcde"), 4))
    again = tempo(feats, pads, {**TEMPO, "prob": 0.6}, batch_rng(1, list("abcde"), 4))
    assert all(np.array_equal(x, y) for x, y in zip(out, again))
    assert all(np.array_equal(x, y) for x, y in zip(feats, keep))
    assert all(len(f) <= len(o) <= 80 and o.dtype == f.dtype for o, f in zip(out, feats))
    assert any(len(o) > len(f) for o, f in zip(out, feats))
    off = tempo(feats, pads, {**TEMPO, "prob": 0.0}, batch_rng(1, list("abcde"), 4))
    assert all(o is f for o, f in zip(off, feats))


def test_bad_tempo_config_names_the_keys():
    with pytest.raises(ValueError, match="prob 1.5"):
        check_tempo({**TEMPO, "prob": 1.5})
    with pytest.raises(ValueError, match="low 0.9 / high 0.8"):
        check_tempo({**TEMPO, "low": 0.9, "high": 0.8})
    with pytest.raises(ValueError, match="high 1.2"):
        check_tempo({**TEMPO, "high": 1.2})


def test_the_dataset_switch_and_added_context(cuts):  # noqa: F811
    plain, off, a, b = augment_switch(cuts, "tempo", TEMPO)
    assert torch.equal(off["feats"], plain["feats"])
    assert torch.equal(a["feats"], b["feats"])
    assert a["feats"].shape == plain["feats"].shape    # no row past the longest
    assert torch.all(a["feat_lens"] >= plain["feat_lens"])
    assert torch.any(a["feat_lens"] > plain["feat_lens"])

    # With stage 3's context the context is cropped afterwards as before: the batch is as long
    # as its longest word.
    def cut(cid, lead, trail):
        return SimpleNamespace(id=cid, custom={"aug": {"context": {"pad": [lead, trail]}}})

    ds = KeywordDataset([], tokenizer=None, context_growth=0.0, seed=1, tempo=TEMPO)
    feats = [np.zeros((30 + 150, 4), np.float32), np.zeros((80, 4), np.float32)]
    slowed = tempo(feats, [(90, 60), (0, 0)], ds.tempo, np.random.default_rng(3))
    assert 30 < len(slowed[0]) - 150 <= 50
    out = ds.crop_context([cut("a", 0.9, 0.6), cut("b", 0.0, 0.0)], slowed)
    assert len(out[0]) == 80
