"""AsyP loss (Eq. 2) against a loop reference written from the formula, and a hand example."""

import math

import pytest
import torch

from pyadml.losses import AsymmetricProxyLoss, asyp_loss


def cos(u, v):
    return (u @ v) / (torch.sqrt(u @ u) * torch.sqrt(v @ v))


def pick(value, c):
    return value[c] if torch.is_tensor(value) and value.dim() == 1 else value


def reference_asyp(text, audio, labels, alpha, beta, lam):
    """Straight from Eq. (2): python loops over anchors, positives and negatives."""
    n = text.shape[0]
    total = 0.0
    for i in range(n):
        c = int(labels[i])
        a, b, m = pick(alpha, c), pick(beta, c), pick(lam, c)
        s = 1.0
        for j in range(n):
            if int(labels[j]) == c:
                s = s + torch.exp(a * (m - cos(text[i], audio[j])))
        pos = torch.log(s) / a
        negs = [torch.log(1 + torch.exp(b * (cos(audio[i], text[k]) - m)))
                for k in range(n) if int(labels[k]) != c]
        neg = sum(negs) / len(negs) if negs else 0.0
        total = total + pos + neg
    return total / n


def batch(k=4, m=3, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(k).repeat_interleave(m)
    text = torch.randn(k * m, d, generator=g, dtype=torch.float64, requires_grad=True)
    audio = torch.randn(k * m, d, generator=g, dtype=torch.float64, requires_grad=True)
    return text, audio, labels


def assert_same(fast, slow, inputs):
    torch.testing.assert_close(fast, slow, rtol=1e-6, atol=1e-12)
    g_fast = torch.autograd.grad(fast, inputs)
    g_slow = torch.autograd.grad(slow, inputs)
    for a, b in zip(g_fast, g_slow):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("alpha,beta,lam", [(0.01, 1.5, 0.01), (2.0, 3.0, -0.2), (32.0, 32.0, 0.5)])
def test_scalar_matches_reference(alpha, beta, lam):
    text, audio, labels = batch()
    fast = asyp_loss(text, audio, labels, alpha, beta, lam)
    slow = reference_asyp(text, audio, labels, alpha, beta, lam)
    assert_same(fast, slow, (text, audio))


def test_per_class_vectors_match_reference_with_their_gradients():
    text, audio, labels = batch(k=4, m=3)
    g = torch.Generator().manual_seed(1)
    alpha = (0.5 + torch.rand(4, generator=g, dtype=torch.float64)).requires_grad_()
    beta = (1.0 + torch.rand(4, generator=g, dtype=torch.float64)).requires_grad_()
    lam = (torch.rand(4, generator=g, dtype=torch.float64) - 0.5).requires_grad_()
    fast = asyp_loss(text, audio, labels, alpha, beta, lam)
    slow = reference_asyp(text, audio, labels, alpha, beta, lam)
    assert_same(fast, slow, (text, audio, alpha, beta, lam))


def test_unequal_class_sizes_and_unsorted_labels():
    g = torch.Generator().manual_seed(2)
    labels = torch.tensor([2, 0, 2, 1, 2, 0, 3])
    text = torch.randn(7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    audio = torch.randn(7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    lam = torch.tensor([0.1, -0.1, 0.3, 0.0], dtype=torch.float64)
    fast = asyp_loss(text, audio, labels, 1.0, 2.0, lam)
    slow = reference_asyp(text, audio, labels, 1.0, 2.0, lam)
    assert_same(fast, slow, (text, audio))


def test_hand_worked_two_samples():
    # T0 = (1, 0), T1 = (0, 1), A0 = (0.6, 0.8), A1 = (0, 1); classes 0 and 1;
    # alpha = 2, beta = 1.5, lambda = 0.5.
    # S(T0, A0) = 0.6, S(T1, A1) = 1, S(A0, T1) = 0.8, S(A1, T0) = 0.
    # pos0 = 1/2 log(1 + e^{2(0.5 - 0.6)}) = 1/2 log(1 + 0.8187307531) = 0.2990694347
    # neg0 = log(1 + e^{1.5(0.8 - 0.5)})  = log(1 + 1.5683121855)     = 0.9432489460
    # pos1 = 1/2 log(1 + e^{2(0.5 - 1)})  = 1/2 log(1 + 0.3678794412) = 0.1566308438
    # neg1 = log(1 + e^{1.5(0 - 0.5)})    = log(1 + 0.4723665527)     = 0.3868710061
    # loss = (0.2990694347 + 0.9432489460 + 0.1566308438 + 0.3868710061) / 2 = 0.8929101153
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    audio = torch.tensor([[0.6, 0.8], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    per_anchor = asyp_loss(text, audio, labels, 2.0, 1.5, 0.5, reduction="none")
    torch.testing.assert_close(
        per_anchor, torch.tensor([0.2990694347 + 0.9432489460, 0.1566308438 + 0.3868710061],
                                 dtype=torch.float64), rtol=1e-9, atol=1e-9)
    assert math.isclose(asyp_loss(text, audio, labels, 2.0, 1.5, 0.5).item(), 0.8929101153, rel_tol=1e-9)
    assert math.isclose(asyp_loss(text, audio, labels, 2.0, 1.5, 0.5, reduction="sum").item(),
                        2 * 0.8929101153, rel_tol=1e-9)
    # Scaling an embedding does not change a cosine loss.
    assert math.isclose(asyp_loss(3 * text, 0.5 * audio, labels, 2.0, 1.5, 0.5).item(), 0.8929101153,
                        rel_tol=1e-9)


def test_anchor_without_negative_has_zero_negative_term():
    text, audio, _ = batch(k=1, m=4)
    labels = torch.zeros(4, dtype=torch.long)
    per_anchor = asyp_loss(text, audio, labels, 2.0, 1.5, 0.1, reduction="none")
    sim = torch.nn.functional.normalize(text, dim=1) @ torch.nn.functional.normalize(audio, dim=1).T
    pos_only = torch.log1p(torch.exp(2.0 * (0.1 - sim)).sum(dim=1)) / 2.0
    torch.testing.assert_close(per_anchor, pos_only, rtol=1e-9, atol=1e-12)
    slow = reference_asyp(text, audio, labels, 2.0, 1.5, 0.1)
    assert_same(per_anchor.mean(), slow, (text, audio))


@pytest.mark.parametrize("alpha", [32.0, 1000.0])
def test_large_scale_is_finite_in_float32(alpha):
    # Nearly parallel / antiparallel pairs give the largest exponents alpha * (lam - S).
    g = torch.Generator().manual_seed(3)
    base = torch.randn(6, 16, generator=g)
    text = base.clone().requires_grad_()
    audio = (-base + 1e-3 * torch.randn(6, 16, generator=g)).requires_grad_()
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    loss = asyp_loss(text, audio, labels, alpha, alpha, 0.9)
    grads = torch.autograd.grad(loss, (text, audio))
    assert torch.isfinite(loss)
    assert all(torch.isfinite(gr).all() for gr in grads)
    # The ELSE term approaches max_j (lam - S) = 0.9 + 1 for a large alpha.
    assert loss.item() > 1.85


def test_module_uses_fixed_hyperparameters_and_text_first():
    text, audio, labels = batch()
    module = AsymmetricProxyLoss(alpha=0.01, beta=1.5, lam=0.01)
    torch.testing.assert_close(module(text, audio, labels), asyp_loss(text, audio, labels, 0.01, 1.5, 0.01))
    assert list(module.parameters()) == []
    assert "alpha=0.01" in repr(module)


def test_bad_arguments():
    text, audio, labels = batch()
    with pytest.raises(ValueError):
        asyp_loss(text, audio, labels, 1.0, 1.0, 0.0, reduction="avg")
    with pytest.raises(ValueError):
        asyp_loss(text, audio[:-1], labels, 1.0, 1.0, 0.0)
