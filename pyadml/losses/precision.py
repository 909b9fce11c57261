"""Float32 for every loss, whatever autocast is active (issue 13, item 2; model_spec section 7).

Under autocast a matmul of float32 inputs returns bf16 (fp16), whose spacing near cosine 1
(0.004 for bf16) is coarser than the margins (lambda 0.01) and is amplified by the scales
(s = 32). Mixed precision therefore covers the encoders only; the losses turn autocast off and
cast bf16/fp16 inputs up (float64 inputs, used by the reference tests, stay float64).
"""

from __future__ import annotations

import functools

import torch

LOW_PRECISION = (torch.bfloat16, torch.float16)
_GUARD = [True]  # off only in pyadml.bin.loss_precision, to show what the guard prevents


class guard_disabled:
    """Context manager: the losses run as autocast makes them (for the precision table only)."""

    def __enter__(self):
        _GUARD[0] = False

    def __exit__(self, *exc):
        _GUARD[0] = True


def to_fp32(x):
    """A bf16/fp16 tensor as float32; anything else unchanged."""
    return x.float() if torch.is_tensor(x) and x.dtype in LOW_PRECISION else x


def _device_type(args, kwargs) -> str:
    for a in (*args, *kwargs.values()):
        if torch.is_tensor(a):
            return a.device.type
    return "cpu"


def fp32_loss(fn):
    """Decorator for a loss function or ``forward``: autocast off on the inputs' device, low
    precision tensor arguments cast to float32."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not _GUARD[0]:
            return fn(*args, **kwargs)
        with torch.autocast(device_type=_device_type(args, kwargs), enabled=False):
            return fn(*(to_fp32(a) for a in args), **{k: to_fp32(v) for k, v in kwargs.items()})

    return wrapper
