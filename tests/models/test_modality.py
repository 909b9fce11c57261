"""Gradient reversal and the modality adversarial loss (Eq. 4-5) against direct computations."""

import pytest
import torch
import torch.nn.functional as F

from pyadml.models.modality import (
    GradientReversal, ModalityAdversarialLoss, ModalityClassifier, grad_reverse,
)


def f(y):
    return (torch.tanh(y) * torch.arange(1.0, y.numel() + 1).view_as(y)).sum()


@pytest.mark.parametrize("scale", [1.0, 0.5, 3.0])
def test_grl_identity_forward_reversed_scaled_backward(scale):
    torch.manual_seed(0)
    x0 = torch.randn(4, 3)
    x_ref = x0.clone().requires_grad_()
    f(x_ref).backward()
    x = x0.clone().requires_grad_()
    y = grad_reverse(x, scale)
    assert torch.equal(y, x0)
    f(y).backward()
    torch.testing.assert_close(x.grad, -scale * x_ref.grad)


def test_grl_default_scale_is_minus_one():
    x = torch.randn(5, requires_grad=True)
    GradientReversal.apply(x, 1.0).sum().backward()
    assert torch.equal(x.grad, -torch.ones(5))


def test_classifier_shape():
    m = ModalityClassifier(d=16, hidden=8)
    assert m(torch.randn(7, 16)).shape == (7, 2)
    assert [tuple(p.shape) for p in m.parameters()] == [(8, 16), (8,), (2, 8), (2,)]
    assert ModalityClassifier.training_only


def test_loss_matches_direct_cross_entropy_and_reverses_encoder_grads():
    torch.manual_seed(1)
    clf = ModalityClassifier(d=6, hidden=5)
    loss_fn = ModalityAdversarialLoss(clf, reduction="mean")
    a0, t0 = torch.randn(4, 6), torch.randn(3, 6)

    a, t = a0.clone().requires_grad_(), t0.clone().requires_grad_()
    loss, _ = loss_fn(a, t)
    loss.backward()
    clf_grads = [p.grad.clone() for p in clf.parameters()]
    clf.zero_grad()

    a_ref, t_ref = a0.clone().requires_grad_(), t0.clone().requires_grad_()
    target = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    ref = F.cross_entropy(clf(torch.cat([a_ref, t_ref])), target)
    ref.backward()
    torch.testing.assert_close(loss, ref)
    for g, p in zip(clf_grads, clf.parameters()):
        torch.testing.assert_close(g, p.grad)  # M itself minimises L_adv
    torch.testing.assert_close(a.grad, -a_ref.grad)  # the encoders maximise it
    torch.testing.assert_close(t.grad, -t_ref.grad)


def test_modality_sum_reduction_is_eq4_normalisation():
    torch.manual_seed(2)
    clf = ModalityClassifier(d=4, hidden=4)
    a, t = torch.randn(5, 4), torch.randn(2, 4)
    ref = F.cross_entropy(clf(a), torch.zeros(5, dtype=torch.long)) + \
        F.cross_entropy(clf(t), torch.ones(2, dtype=torch.long))
    for reduction in (None, "sum", "modality_sum"):  # Eq. 4 is the default
        kw = {} if reduction is None else {"reduction": reduction}
        loss, _ = ModalityAdversarialLoss(clf, **kw)(a, t)
        torch.testing.assert_close(loss, ref)
    loss, _ = ModalityAdversarialLoss(clf, reduction="mean")(a, t)
    torch.testing.assert_close(loss, F.cross_entropy(clf(torch.cat([a, t])), torch.tensor([0] * 5 + [1] * 2)))
    with pytest.raises(ValueError, match="reduction"):
        ModalityAdversarialLoss(clf, reduction="bogus")


def test_accuracy_on_constructed_case():
    clf = ModalityClassifier(d=2, hidden=2)
    with torch.no_grad():  # logits = relu(x): predicts audio iff x0 > x1
        for lin in (clf.net[0], clf.net[2]):
            lin.weight.copy_(torch.eye(2))
            lin.bias.zero_()
    audio = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0]])  # right, wrong, right
    text = torch.tensor([[0.0, 1.0], [5.0, 0.0]])  # right, wrong
    _, acc = ModalityAdversarialLoss(clf)(audio, text)
    assert isinstance(acc, float)
    assert acc == pytest.approx(3 / 5)


def test_rejects_bad_shapes():
    loss_fn = ModalityAdversarialLoss(ModalityClassifier(d=4, hidden=4))
    with pytest.raises(ValueError):
        loss_fn(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(ValueError):
        loss_fn(torch.randn(0, 4), torch.randn(3, 4))


def test_normalize_feeds_unit_rows_to_the_classifier():
    torch.manual_seed(3)
    clf = ModalityClassifier(d=5, hidden=4)
    a0, t0 = torch.randn(3, 5) * 7, torch.randn(2, 5) * 0.1
    loss_fn = ModalityAdversarialLoss(clf, normalize=True, reduction="mean")
    loss, _ = loss_fn(a0, t0)
    unit = torch.cat([a0 / a0.norm(dim=1, keepdim=True), t0 / t0.norm(dim=1, keepdim=True)])
    ref = F.cross_entropy(clf(unit), torch.tensor([0, 0, 0, 1, 1]))
    torch.testing.assert_close(loss, ref)
    # The norm of a row cannot move L_adv: the encoders cannot fool M by growing it.
    loss_scaled, _ = loss_fn(a0 * 100, t0 * 100)
    torch.testing.assert_close(loss_scaled, loss)


def test_dann_grl_scale_hand_values():
    import math

    from pyadml.models.modality import dann_grl_scale

    assert dann_grl_scale(0.0) == 0.0
    assert dann_grl_scale(0.1) == pytest.approx(2 / (1 + math.exp(-1)) - 1)  # 0.4621
    assert dann_grl_scale(0.5) == pytest.approx(0.98661, abs=1e-5)
    assert dann_grl_scale(2.0) == dann_grl_scale(1.0) == pytest.approx(0.99991, abs=1e-5)
    assert dann_grl_scale(0.1, gamma=20.0) == pytest.approx(0.76159, abs=1e-5)


def test_scale_change_reaches_the_gradient():
    clf = ModalityClassifier(d=3, hidden=3)
    loss_fn = ModalityAdversarialLoss(clf)
    grads = []
    for scale in (1.0, 0.25):
        loss_fn.grl_scale = scale
        a = torch.ones(2, 3, requires_grad=True)
        loss, _ = loss_fn(a, torch.zeros(2, 3))
        loss.backward()
        grads.append(a.grad)
    torch.testing.assert_close(grads[1], 0.25 * grads[0])
