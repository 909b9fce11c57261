"""Every loss computes in float32 under CPU bf16 autocast (issue 13, item 2)."""

import pytest
import torch

from pyadml.bin.loss_precision import TOLERANCE, _inputs, loss_functions, precision_table


def test_every_loss_under_bf16_autocast_equals_float32():
    rows = precision_table()
    assert len(rows) == 12
    for name, ref, amp, diff, _ in rows:
        assert diff <= TOLERANCE * max(1.0, abs(ref)), name
    # the guard is what makes them equal: autocast alone moves these
    unguarded = {name: abs(raw - ref) for name, ref, _, _, raw in rows}
    assert unguarded["clat (L_phn)"] > 1e-3 and unguarded["RP (L_utt)"] > 1e-5


def test_bf16_inputs_are_computed_in_float32_with_finite_gradients():
    x = _inputs(1)
    for k in ("audio_utt", "text_utt", "t_hat", "a_hat", "t_phn", "a_phn"):
        x[k] = x[k].bfloat16().requires_grad_()
    for name, fn in loss_functions(x).items():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value = fn()
        assert value.dtype == torch.float32, name
        leaves = [x[k] for k in ("audio_utt", "text_utt", "t_hat", "a_hat", "t_phn", "a_phn")]
        grads = torch.autograd.grad(value, leaves, allow_unused=True)
        assert any(g is not None for g in grads), name
        assert all(g is None or (g.dtype == torch.bfloat16 and torch.isfinite(g).all())
                   for g in grads), name  # the cast back to the input's dtype
        # and the value is the float32 loss of the bf16 values
        x32 = {k: (v.detach().float() if torch.is_tensor(v) and v.dtype == torch.bfloat16 else v)
               for k, v in x.items()}
        assert float(value.detach()) == pytest.approx(float(loss_functions(x32)[name]().detach()), rel=1e-6), name
