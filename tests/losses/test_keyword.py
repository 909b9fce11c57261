"""L_key losses against slow loop references written from their formulas."""

import math

import pytest
import torch

from pyadml.losses.keyword import (
    AAMSoftmax, BatchHardTriplet, SphereFace2, build_keyword_loss,
)


def cos(u, v):
    return (u @ v) / (torch.sqrt(u @ u) * torch.sqrt(v @ v))


def softplus(z):
    return torch.log(1 + torch.exp(z))


def reference_sphereface2(x, w, b, labels, s, m, lam, t):
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(w.shape[0]):
            g = 2 * ((cos(x[i], w[j]) + 1) / 2) ** t - 1
            if j == int(labels[i]):
                total = total + lam * softplus(-(s * (g - m) + b))
            else:
                total = total + (1 - lam) * softplus(s * (g + m) + b)
    return total / x.shape[0]


def reference_aam(x, w, labels, s, m, easy_margin):
    total = 0.0
    for i in range(x.shape[0]):
        y = int(labels[i])
        logits = []
        for j in range(w.shape[0]):
            c = cos(x[i], w[j])
            if j == y:
                theta = torch.acos(c)
                if easy_margin:
                    c = torch.cos(theta + m) if c > 0 else c
                else:
                    c = torch.cos(theta + m) if theta + m < math.pi else c - (1 - math.cos(m))
            logits.append(s * c)
        logits = torch.stack(logits)
        total = total - (logits[y] - torch.logsumexp(logits, 0))
    return total / x.shape[0]


def reference_triplet(x, labels, margin):
    losses = []
    n = x.shape[0]
    for i in range(n):
        pos = [1 - cos(x[i], x[j]) for j in range(n) if j != i and labels[j] == labels[i]]
        neg = [1 - cos(x[i], x[k]) for k in range(n) if labels[k] != labels[i]]
        if pos and neg:
            losses.append(torch.relu(max(pos) - min(neg) + margin))
    return sum(losses) / len(losses)


def data(n=6, k=4, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    labels = torch.randint(0, k, (n,), generator=g)
    return x, labels


def grads(loss, *tensors):
    return torch.autograd.grad(loss, tensors)


# ---------------------------------------------------------------- SphereFace2

def test_sphereface2_matches_loop_reference_value_and_grads():
    x0, labels = data()
    sf = SphereFace2(5, 4, s=32, m=0.2, lam=0.7, t=3).double()
    with torch.no_grad():
        sf.bias.fill_(0.3)
    x = x0.clone().requires_grad_()
    loss = sf(x, labels)
    gx, gw, gb = grads(loss, x, sf.weight, sf.bias)

    xr, wr = x0.clone().requires_grad_(), sf.weight.detach().clone().requires_grad_()
    br = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    ref = reference_sphereface2(xr, wr, br, labels, 32, 0.2, 0.7, 3)
    rx, rw, rb = grads(ref, xr, wr, br)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gw, rw)
    torch.testing.assert_close(gb, rb)


def test_sphereface2_margin_warmup_is_linear():
    sf = SphereFace2(5, 4, m=0.2, margin_warmup_steps=4).double()
    seen = [sf.current_margin]
    for _ in range(6):
        sf.step()
        seen.append(sf.current_margin)
    assert seen == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
    sf.set_progress(0.5)
    assert sf.current_margin == pytest.approx(0.1)
    assert int(sf.num_steps) == 2
    # The loss uses the current margin.
    x, labels = data()
    ref = reference_sphereface2(x, sf.weight.detach(), sf.bias.detach(), labels, 32, 0.1, 0.7, 3)
    torch.testing.assert_close(sf(x, labels), ref)
    assert "progress" in sf.state_dict()  # resumes with the checkpoint


def test_margin_warmup_start_delay_and_exp_ramp():
    sf = SphereFace2(5, 4, m=0.2, margin_warmup_steps=4, margin_warmup_start=2)
    seen = [sf.current_margin]
    for _ in range(7):
        sf.step()
        seen.append(sf.current_margin)
    assert seen == pytest.approx([0.0, 0.0, 0.0, 0.05, 0.1, 0.15, 0.2, 0.2])
    # wespeaker's exp ramp: m (1 - 1e-3^p), hand values at p = 0, 1/3, 1/2, 1
    aam = AAMSoftmax(5, 4, m=0.2, margin_warmup_steps=6, margin_warmup_type="exp")
    seen = [aam.current_margin]
    for _ in range(6):
        aam.step()
        seen.append(aam.current_margin)
    assert seen[0] == 0.0 and seen[2] == pytest.approx(0.2 * 0.9) and seen[6] == pytest.approx(0.2)
    assert seen[3] == pytest.approx(0.2 * (1 - 0.001 ** 0.5))
    # the closed-form bias starts at the optimum of the step-0 loss, i.e. at margin 0
    assert sf.bias.item() == pytest.approx(SphereFace2.closed_form_bias(4, 32.0, 0.0, 0.7, 3))
    with pytest.raises(ValueError, match="margin_warmup_type"):
        SphereFace2(5, 4, margin_warmup_steps=3, margin_warmup_type="cosine")


def test_sphereface2_without_warmup_has_full_margin():
    sf = SphereFace2(5, 4, m=0.2)
    sf.step()
    assert sf.current_margin == pytest.approx(0.2)


def orthogonal_case(k, d=8, n=3, seed=0):
    """x orthogonal to every class weight: all class weights live in the first d-1 coordinates."""
    g = torch.Generator().manual_seed(seed)
    sf = SphereFace2(d, k).double()
    with torch.no_grad():
        sf.weight[:, -1] = 0.0
    x = torch.zeros(n, d, dtype=torch.float64)
    x[:, -1] = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    labels = torch.randint(0, k, (n,), generator=g)
    return sf, x, labels


@pytest.mark.parametrize("k", [2, 10, 1000])
def test_sphereface2_closed_form_bias_is_stationary(k):
    sf, x, labels = orthogonal_case(k)
    b0 = SphereFace2.closed_form_bias(k, 32.0, 0.2, 0.7, 3)
    assert sf.bias.item() == pytest.approx(b0)
    loss = sf(x, labels)
    (gb,) = grads(loss, sf.bias)
    assert abs(gb.item()) < 1e-6
    with torch.no_grad():
        for delta in (-1e-2, 1e-2):
            sf.bias.fill_(b0 + delta)
            assert sf(x, labels).item() > loss.item()


@pytest.mark.parametrize("k", [2, 10, 1000])
def test_closed_form_bias_is_root_of_scalar_derivative(k):
    """The per-sample formula at cos = 0, independent of the module's forward."""
    s, m, lam, t = 32.0, 0.2, 0.7, 3
    g0 = 2 * 0.5 ** t - 1
    b = torch.tensor(SphereFace2.closed_form_bias(k, s, m, lam, t), dtype=torch.float64,
                     requires_grad=True)
    f = lam * softplus(-(s * (g0 - m) + b)) + (1 - lam) * (k - 1) * softplus(s * (g0 + m) + b)
    (gb,) = grads(f, b)
    assert abs(gb.item()) < 1e-6


def test_closed_form_bias_without_margin_is_log_ratio():
    # m = 0: u = lam / c, b = log(lam / ((1 - lam)(K - 1))) - s g(0).
    b = SphereFace2.closed_form_bias(10, 32.0, 0.0, 0.7, 3)
    assert b == pytest.approx(math.log(0.7 / (0.3 * 9)) + 32.0 * 0.75)


def test_sphereface2_options():
    assert SphereFace2(4, 3, bias_init="zero").bias.item() == 0.0
    sf = SphereFace2(4, 3, margin_warmup_steps=10, bias_init_margin=0.0)
    assert sf.bias.item() == pytest.approx(SphereFace2.closed_form_bias(3, 32.0, 0.0, 0.7, 3))
    with pytest.raises(ValueError):
        SphereFace2(4, 1)
    with pytest.raises(ValueError):
        SphereFace2(4, 3)(torch.randn(2, 4), torch.tensor([0, 3]))


# ---------------------------------------------------------------- AAM-softmax

@pytest.mark.parametrize("easy_margin", [False, True])
def test_aam_matches_loop_reference(easy_margin):
    x0, labels = data(seed=3)
    aam = AAMSoftmax(5, 4, s=32, m=0.2, easy_margin=easy_margin).double()
    with torch.no_grad():  # sample 0 deep in the fallback region: cos_y about -0.99
        y = int(labels[0])
        noise = torch.randn(5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        x0[0] = -aam.weight[y] / aam.weight[y].norm() + 0.05 * noise
    assert torch.cosine_similarity(x0[0], aam.weight[y].detach(), dim=0) < -math.cos(0.2)
    x = x0.clone().requires_grad_()
    loss = aam(x, labels)
    gx, gw = grads(loss, x, aam.weight)
    xr, wr = x0.clone().requires_grad_(), aam.weight.detach().clone().requires_grad_()
    ref = reference_aam(xr, wr, labels, 32, 0.2, easy_margin)
    rx, rw = grads(ref, xr, wr)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gw, rw)


def test_aam_fallback_is_continuous_at_threshold():
    m = 0.2
    theta = math.pi - m
    assert math.cos(theta + m) == pytest.approx(math.cos(theta) - (1 - math.cos(m)))


# ---------------------------------------------------------------- batch-hard triplet

def test_triplet_matches_loop_reference():
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(7, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3])  # anchors 5 and 6 have no positive
    x = x0.clone().requires_grad_()
    loss = BatchHardTriplet(margin=0.2)(x, labels)
    (gx,) = grads(loss, x)
    xr = x0.clone().requires_grad_()
    ref = reference_triplet(xr, labels, 0.2)
    (rx,) = grads(ref, xr)
    assert loss.item() > 0
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(gx, rx)


def test_triplet_skips_anchors_without_positive():
    x = torch.randn(4, 3, requires_grad=True)
    loss = BatchHardTriplet()(x, torch.tensor([0, 1, 2, 3]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(x.grad, torch.zeros(4, 3))


# ---------------------------------------------------------------- factory

def test_factory_builds_each_loss():
    assert isinstance(build_keyword_loss("sphereface2", 8, 5, s=16), SphereFace2)
    assert isinstance(build_keyword_loss("aam", 8, 5, m=0.1), AAMSoftmax)
    assert isinstance(build_keyword_loss("triplet", 8, 5, margin=0.3), BatchHardTriplet)
    assert build_keyword_loss("none", 8, 5) is None
    for name in ("sphereface2", "aam", "triplet"):
        assert build_keyword_loss(name, 8, 5).training_only


def test_factory_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        build_keyword_loss("arcface", 8, 5)
    for name in ("sphereface2", "aam", "triplet", "none"):
        assert name in str(err.value)
