"""The phone CTC loss (pyadml.losses.ctc) against the CTC forward recursion written out, a
hand-worked example, and its place in the training objective (loss.ctc)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pyadml.losses.ctc import phone_ctc_loss

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs" / "wsj_librikws" / "conf" / "train_tiny.yaml"


def slow_nll(logp: np.ndarray, y: list[int], blank: int = 0) -> float:
    """-log p(y | x) by the forward recursion over the blank-extended label sequence
    (Graves et al. 2006, Eq. 6-8), one frame and one state at a time, in probabilities."""
    p = np.exp(logp)
    ext = [blank]
    for c in y:
        ext += [c, blank]
    alpha = [0.0] * len(ext)
    alpha[0] = p[0, blank]
    if len(ext) > 1:
        alpha[1] = p[0, ext[1]]
    for t in range(1, p.shape[0]):
        new = [0.0] * len(ext)
        for s, c in enumerate(ext):
            a = alpha[s] + (alpha[s - 1] if s >= 1 else 0.0)
            if s >= 2 and c != blank and c != ext[s - 2]:
                a += alpha[s - 2]
            new[s] = a * p[t, c]
        alpha = new
    total = alpha[-1] + (alpha[-2] if len(ext) > 1 else 0.0)
    return -math.log(total) if total > 0 else math.inf


def test_against_the_forward_recursion_row_by_row():
    g = torch.Generator().manual_seed(0)
    frames = [9, 6, 12]
    phones = [[3, 1, 4], [2, 2], [5, 1, 5, 2]]  # a repeat needs a blank between its copies
    logits = torch.randn(3, 12, 7, generator=g, dtype=torch.float64)
    mask = torch.arange(12)[None] < torch.tensor(frames)[:, None]
    y = torch.zeros(3, 4, dtype=torch.long)
    for i, p in enumerate(phones):
        y[i, : len(p)] = torch.tensor(p)
    lens = torch.tensor([len(p) for p in phones])
    logp = torch.log_softmax(logits, -1).numpy()
    want = np.mean([slow_nll(logp[i, : frames[i]], phones[i]) / len(phones[i]) for i in range(3)])
    got = phone_ctc_loss(logits, mask, y, lens)
    assert float(got) == pytest.approx(want, rel=1e-9)
    # Frames beyond a row's length are not read.
    noisy = logits.clone()
    noisy[~mask] = 1e3
    assert float(phone_ctc_loss(noisy, mask, y, lens)) == pytest.approx(want, rel=1e-9)


def test_hand_worked_example_and_a_row_too_short():
    # Two frames, one phone (id 1), uniform over {blank, 1}: the paths 1-1, 1-blank, blank-1
    # collapse to "1", so p = 3/4.
    logits = torch.zeros(1, 2, 2, dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    one = torch.tensor([[1]])
    assert float(phone_ctc_loss(logits, mask, one, torch.tensor([1]))) == pytest.approx(-math.log(0.75))
    # "1 1" needs three frames (1, blank, 1): with two there is no path, counted as 0.
    two = torch.tensor([[1, 1], [1, 0]])
    both = phone_ctc_loss(torch.zeros(2, 2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.bool),
                          two, torch.tensor([2, 1]))
    assert float(both) == pytest.approx(-math.log(0.75) / 2)


def test_the_objective_adds_the_weighted_term_and_keeps_it_out_of_the_model():
    from pyadml.bin.benchmark import _batch
    from pyadml.models.export import ENCODER_PREFIXES
    from pyadml.train.config import load_config
    from pyadml.train.objective import KwsObjective

    overrides = ["loss.phn=asyp", "loss.mm=true", "loss.key=sphereface2"]
    batch = _batch(4, 2, 70, np.random.default_rng(0))
    out = {}
    for w in (0.0, 0.5):
        torch.manual_seed(0)
        obj = KwsObjective(load_config(TINY, overrides + [f"loss.ctc={w}"]), 70, 10).eval()
        out[w] = obj(batch)
    (base, t0), (loss, t1) = out[0.0], out[0.5]
    assert "l_ctc" not in t0 and t1["l_ctc"] > 0
    assert float(loss.detach()) == pytest.approx(float(base.detach()) + 0.5 * t1["l_ctc"], rel=1e-6)
    assert obj.ctc_loss.proj.out_features == 70  # the phone table, <eps> as the blank
    # Training-only: the exported model keeps the encoders (audio., text.) alone.
    assert all(not k.startswith(ENCODER_PREFIXES) for k in obj.state_dict() if "ctc" in k)
    assert any("ctc" in k for k in obj.state_dict())
    with pytest.raises(ValueError, match="loss.ctc"):
        KwsObjective(load_config(TINY, overrides + ["loss.ctc=-1"]), 70, 10)


def test_a_detector_model_refuses_it():
    from pyadml.train.baseline_objective import build_objective
    from pyadml.train.config import load_config

    cfg = load_config(TINY, ["model.head=phonmatchnet", "loss.ctc=0.3"])
    with pytest.raises(ValueError, match="loss.ctc"):
        build_objective(cfg, 70, 10)
