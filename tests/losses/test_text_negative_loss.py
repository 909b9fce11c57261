import math

import pytest
import torch

from pyadml.losses.text_negatives import text_negative_loss


def slow_loss(audio, text, negatives, margin, scale):
    """Eq. of pyadml.losses.text_negatives, one row and one negative at a time."""
    def cos(u, v):
        return float(u @ v) / math.sqrt(float(u @ u) * float(v @ v))

    total = 0.0
    for i in range(audio.shape[0]):
        pos = cos(audio[i], text[i])
        s = sum(math.exp(scale * (cos(audio[i], n) - pos + margin)) for n in negatives[i])
        total += math.log(1.0 + s) / scale
    return total / audio.shape[0]


def test_against_the_formula_row_by_row():
    g = torch.Generator().manual_seed(0)
    a, t = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    n = torch.randn(6, 3, 5, generator=g, dtype=torch.float64)
    for margin, scale in ((0.2, 10.0), (0.0, 1.0), (0.5, 32.0)):
        got = text_negative_loss(a, t, n, margin=margin, scale=scale)
        assert float(got) == pytest.approx(slow_loss(a, t, n, margin, scale), rel=1e-10)


def test_hand_worked_example():
    a = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[2.0, 0.0]], dtype=torch.float64)           # cosine 1
    far = torch.tensor([[[0.0, 3.0]]], dtype=torch.float64)       # cosine 0
    same = torch.tensor([[[5.0, 0.0]]], dtype=torch.float64)      # cosine 1: a text the model can't tell apart
    # log(1 + exp(10 * (0 - 1 + 0.2))) / 10 and log(1 + exp(10 * 0.2)) / 10
    assert float(text_negative_loss(a, t, far)) == pytest.approx(math.log1p(math.exp(-8.0)) / 10)
    assert float(text_negative_loss(a, t, same)) == pytest.approx(math.log1p(math.exp(2.0)) / 10)


def test_the_gradient_pushes_the_near_miss_away_and_reaches_the_text():
    a = torch.tensor([[1.0, 0.2]], requires_grad=True)
    t = torch.tensor([[1.0, 0.0]], requires_grad=True)
    n = torch.tensor([[[0.9, 0.4]]], requires_grad=True)
    text_negative_loss(a, t, n).backward()
    # the near miss lies at 24 degrees, the audio at 11: turning it further away (larger y)
    # lowers the loss, so its y gradient is negative
    assert n.grad[0, 0, 1] < 0 and t.grad.abs().sum() > 0


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\(B, d\), \(B, d\), \(B, C, d\)"):
        text_negative_loss(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4))
