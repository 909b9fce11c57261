"""Optimiser, gradient clipping and autocast choices of the trainer (issue 13, items 1, 3, 7).

- Two parameter groups: 0 = everything else (weight decay), 1 = the AdaMS scales (no weight
  decay, learning rate ``optim.adams_lr`` or ``optim.lr``).
- Clipping (``optim.grad_clip``, default none as in the paper) is scoped to the encoders
  (``audio.``/``text.`` parameters), so no loss parameter (an AdaMS scale's gradient is ~370 at
  step 0) sets the factor for the others; scope ``all`` is the behaviour before issue 13.
- ``amp``: bf16 autocast covers the encoders; every loss runs in float32 (pyadml.losses.precision).
"""

from __future__ import annotations

import torch
from torch import nn

CLIP_SCOPES = ("encoders", "all")
AMP_CHOICES = ("auto", "bf16", "fp16", "none")
ENCODER_PREFIXES = ("audio.", "text.")


def build_optimizer(objective: nn.Module, o: dict) -> torch.optim.AdamW:
    no_decay = {id(p) for p in getattr(objective, "no_weight_decay_parameters", lambda: [])()}
    params = list(objective.parameters())
    groups = [{"params": [p for p in params if id(p) not in no_decay]}]
    scales = [p for p in params if id(p) in no_decay]
    if scales:
        groups.append({"params": scales, "weight_decay": 0.0, "lr": group_lrs(o, 2)[1]})
    return torch.optim.AdamW(groups, lr=o["lr"], weight_decay=o["weight_decay"])


def group_lrs(o: dict, n_groups: int) -> list[float]:
    """Base learning rate of each group: lr, then adams_lr (or lr) for the scales' group."""
    scales_lr = o["lr"] if o.get("adams_lr") is None else float(o["adams_lr"])
    return [float(o["lr"]), scales_lr][:n_groups]


def clip_parameters(objective: nn.Module, scope: str) -> list[nn.Parameter]:
    if scope not in CLIP_SCOPES:
        raise ValueError(f"optim.grad_clip_scope={scope!r}: expected one of {CLIP_SCOPES}")
    if scope == "all":
        return list(objective.parameters())
    return [p for n, p in objective.named_parameters() if n.startswith(ENCODER_PREFIXES)]


def check_grad_clip(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"optim.grad_clip={value!r}: expected a positive number or null")
    return float(value)


def amp_dtype(amp, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for config ``amp`` on ``device``; None = no autocast."""
    if amp is False or amp in ("none", None):
        return None
    if amp is True:
        amp = "auto"
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp={amp!r}: expected one of {AMP_CHOICES} (or true/false)")
    if device.type == "cuda":
        if amp == "fp16" or not torch.cuda.is_bf16_supported():
            return torch.float16
        return torch.bfloat16
    if amp == "bf16":
        return torch.bfloat16  # CPU autocast (fast with AVX512-BF16 / AMX)
    return None  # auto on CPU: off; fp16 is GPU-only


def grad_norm(params, max_norm: float | None) -> torch.Tensor:
    """Clip to ``max_norm`` (None: no clipping) and return the norm before clipping."""
    return torch.nn.utils.clip_grad_norm_(params, float("inf") if max_norm is None else max_norm)
