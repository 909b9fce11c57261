"""Vocal tract length perturbation of log-mel features (pyadml.data.dataset.vtlp), checked
against a slow per-bin reference written from the warp's definition and hand-worked cases."""

import math

import numpy as np
import pytest
import torch

from pyadml.data.dataset import batch_rng, check_vtlp, vtlp, vtlp_source_bins

from test_dataset import augment_switch, cuts  # noqa: F401 (fixture)

VTLP = {"prob": 1.0, "low": 0.9, "high": 1.1, "low_freq": 20.0, "high_freq": 7600.0}


def slow_source_bin(j, alpha, d, lo, hi):
    """Bin j's centre, unwarped by Kaldi's piecewise-linear VTLP warp, as a fractional bin."""
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)
    step = (mel(hi) - mel(lo)) / (d + 1)
    centres = [mel(lo) + (i + 1) * step for i in range(d)]   # in mel
    c = 700.0 * (math.exp(centres[j] / 1127.0) - 1.0)          # in Hz
    f0 = 0.8 * hi / max(alpha, 1.0)
    if c <= alpha * f0:
        src = c / alpha
    else:  # the line from (f0, alpha f0) to (hi, hi), inverted
        src = f0 + (c - alpha * f0) / ((hi - alpha * f0) / (hi - f0))
    m = mel(src)
    if m <= centres[0]:
        return 0.0
    if m >= centres[-1]:
        return float(d - 1)
    i = max(k for k in range(d) if centres[k] <= m)
    return i + (m - centres[i]) / (centres[i + 1] - centres[i])


@pytest.mark.parametrize("alpha", [0.9, 0.95, 1.0, 1.07, 1.1])
def test_source_bins_against_a_per_bin_reference(alpha):
    got = vtlp_source_bins(alpha, 40, 20.0, 7600.0)
    want = [slow_source_bin(j, alpha, 40, 20.0, 7600.0) for j in range(40)]
    assert got == pytest.approx(want, abs=1e-9)


def test_alpha_one_is_the_identity_and_a_longer_alpha_moves_a_peak_up():
    assert vtlp_source_bins(1.0, 40, 20.0, 7600.0) == pytest.approx(np.arange(40), abs=1e-9)
    f = np.zeros((3, 40), np.float32)
    f[:, 20] = 1.0
    # alpha 1.1 everywhere (low = high): bin 21 reads source bin 19.84 and bin 22 reads 20.81,
    # so the peak at bin 20 moves to bin 21 (0.84 of it) and spills into bin 22 (0.19).
    (out,) = vtlp([f], {**VTLP, "low": 1.1, "high": 1.1}, np.random.default_rng(0))
    assert int(out[0].argmax()) == 21
    assert out[0, 20:23] == pytest.approx([0.0, 0.835, 0.19], abs=0.005)
    (down,) = vtlp([f], {**VTLP, "low": 0.9, "high": 0.9}, np.random.default_rng(0))
    assert int(down[0].argmax()) == 19


def test_vtlp_draws_per_row_reproducibly_and_keeps_the_input():
    rng = np.random.default_rng(2)
    feats = [rng.normal(size=(t, 40)).astype(np.float32) for t in (30, 55, 80, 12)]
    keep = [f.copy() for f in feats]
    out = vtlp(feats, VTLP, batch_rng(1, list("abcd"), 3))
    again = vtlp(feats, VTLP, batch_rng(1, list("abcd"), 3))
    assert all(np.array_equal(a, b) for a, b in zip(out, again))
    assert all(np.array_equal(a, b) for a, b in zip(feats, keep))
    assert all(o.shape == f.shape and o.dtype == f.dtype for o, f in zip(out, feats))
    # Each row is a convex mix of two neighbouring source bins: within the row's range.
    assert all(o.min() >= f.min() - 1e-6 and o.max() <= f.max() + 1e-6 for o, f in zip(out, feats))
    assert not any(np.array_equal(o, f) for o, f in zip(out, feats))
    off = vtlp(feats, {**VTLP, "prob": 0.0}, batch_rng(1, list("abcd"), 3))
    assert all(o is f for o, f in zip(off, feats))


def test_bad_vtlp_config_names_the_keys():
    with pytest.raises(ValueError, match="prob 1.5"):
        check_vtlp({**VTLP, "prob": 1.5})
    with pytest.raises(ValueError, match="low 1.2 / high 1.1"):
        check_vtlp({**VTLP, "low": 1.2})
    with pytest.raises(ValueError, match="high_freq"):
        check_vtlp({**VTLP, "high_freq": 10.0})


def test_the_dataset_switch(cuts):  # noqa: F811
    plain, off, a, b = augment_switch(cuts, "vtlp", VTLP)
    assert torch.equal(off["feats"], plain["feats"])
    assert torch.equal(a["feats"], b["feats"]) and not torch.equal(a["feats"], plain["feats"])
    assert torch.equal(a["feat_lens"], plain["feat_lens"])
