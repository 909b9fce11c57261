"""AdaMS scales stay bounded and settle over 10^5 Adam steps (issue 13, item 1).

The long run uses the numpy simulator of pyadml.bin.adams_trajectory; the first two tests check
its loss, gradient and optimiser against the torch AdaMS module and torch's AdamW."""

import numpy as np
import pytest
import torch

from pyadml.bin.adams_trajectory import (BOUNDS, Scales, asyp_loss_and_grad, fixed_batch,
                                         simulate)
from pyadml.losses.asyp import asyp_loss
from pyadml.losses.phoneme import AdaMS


def _torch_batch():
    text, audio, labels = fixed_batch()
    return torch.as_tensor(text), torch.as_tensor(audio), torch.as_tensor(labels)


def test_numpy_loss_and_gradient_match_torch_autograd():
    text, audio, labels = _torch_batch()
    g = torch.Generator().manual_seed(1)
    C = int(labels.max()) + 1
    alpha = (0.01 + 2 * torch.rand(C, generator=g, dtype=torch.float64)).requires_grad_()
    beta = (0.5 + 5 * torch.rand(C, generator=g, dtype=torch.float64)).requires_grad_()
    lam = (torch.rand(C, generator=g, dtype=torch.float64) - 0.5).requires_grad_()
    loss = asyp_loss(text, audio, labels, alpha, beta, lam)
    loss.backward()
    sim = (torch.nn.functional.normalize(text, dim=1) @ torch.nn.functional.normalize(audio, dim=1).T)
    np_loss, np_grad = asyp_loss_and_grad(sim.numpy(), labels.numpy(), alpha.detach().numpy(),
                                          beta.detach().numpy(), lam.detach().numpy())
    assert np_loss == pytest.approx(float(loss.detach()), rel=1e-12)
    for row, t in zip(np_grad, (alpha, beta, lam)):
        np.testing.assert_allclose(row, t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_simulator_follows_torch_adamw_on_the_module():
    text, audio, labels = _torch_batch()
    C = int(labels.max()) + 1
    module = AdaMS(C, **BOUNDS).double()
    opt = torch.optim.AdamW(module.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(200):
        opt.zero_grad()
        module(text, audio, labels).backward()
        opt.step()
    alpha, beta, lam, _ = simulate(200, 1e-2, record=[200])[200]
    np.testing.assert_allclose(alpha, module.alpha.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(beta, module.beta.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(lam, module.lam.detach().numpy(), rtol=1e-5, atol=1e-7)
    # the simulator's map is the module's
    sc = Scales(**BOUNDS)
    raw = torch.stack([module.alpha_raw, module.beta_raw, module.lam_raw]).detach().numpy()
    np.testing.assert_allclose(sc(raw)[0], module.alpha.detach().numpy(), rtol=1e-12)


def test_alpha_settles_within_its_bounds_over_1e5_steps():
    marks = [0, 100, 1_000, 10_000, 90_000, 100_000]
    run = simulate(100_000, 1e-3, record=marks)
    for step in marks:
        a, b, m, loss = run[step]
        tol = 1 + 1e-12  # rounding of exp(log(bound))
        assert (a * tol >= BOUNDS["alpha_min"]).all() and (a <= BOUNDS["alpha_max"] * tol).all(), step
        assert (b * tol >= BOUNDS["beta_min"]).all() and (b <= BOUNDS["beta_max"] * tol).all(), step
        assert (np.abs(m) <= BOUNDS["lam_bound"]).all() and np.isfinite(loss), step
    a_early, a_late, a_end = run[1_000][0], run[90_000][0], run[100_000][0]
    assert (a_end > 5 * a_early).all()          # it adapts: the loss pushes it up
    assert np.abs(a_end - a_late).max() < 1e-3  # and it has settled (at the bound: the loss
    assert np.abs(run[100_000][2] - run[90_000][2]).max() < 1e-2  # decreases in alpha everywhere)
    # Before issue 13 (the scale itself, clamped only below) alpha ran away at ~ lr per step.
    old = simulate(10_000, 1e-3, param="linear", record=[1_000, 10_000])
    assert (old[10_000][0] > BOUNDS["alpha_max"]).all() and (old[10_000][0] > old[1_000][0] + 0.5).all()


def test_old_checkpoints_with_plain_scales_load_into_the_bounded_parameters():
    old = {"alpha": torch.full((5,), 0.2), "beta": torch.full((5,), 3.0), "lam": torch.full((5,), -0.3)}
    new = AdaMS(5)
    new.load_state_dict(old)
    assert torch.allclose(new.alpha, old["alpha"]) and torch.allclose(new.beta, old["beta"])
    assert torch.allclose(new.lam, old["lam"])
    frozen = AdaMS(5, learnable=False)
    frozen.load_state_dict(old)
    assert torch.equal(frozen.alpha, old["alpha"])
