"""Helpers shared by the encoders: length masks and the encoder output tuple."""
from __future__ import annotations

from typing import NamedTuple, Optional

import torch


class EncoderOutput(NamedTuple):
    """What both encoders return; unpacks as ``phn, utt, mask``."""

    phn: torch.Tensor  # (N, T, d), exactly 0 at padded positions
    utt: torch.Tensor  # (N, d)
    mask: torch.Tensor  # (N, T) bool, True on valid positions


def lengths_to_mask(lengths: torch.Tensor, max_len: Optional[int] = None) -> torch.Tensor:
    """Bool (N, max_len) mask, True where position < length."""
    lengths = torch.as_tensor(lengths)
    if max_len is None:
        max_len = int(lengths.max()) if lengths.numel() else 0
    pos = torch.arange(max_len, device=lengths.device)
    return pos.unsqueeze(0) < lengths.to(pos.device).unsqueeze(1)


def check_lengths(lengths: Optional[torch.Tensor], n: int, max_len: int,
                  device: torch.device) -> torch.Tensor:
    """Validate lengths (default: every sequence full) and return them as int64 on ``device``."""
    if lengths is None:
        return torch.full((n,), max_len, dtype=torch.long, device=device)
    lengths = torch.as_tensor(lengths, device=device).long()
    if lengths.shape != (n,):
        raise ValueError(f"lengths must have shape ({n},), got {tuple(lengths.shape)}")
    if n and (int(lengths.min()) < 1 or int(lengths.max()) > max_len):
        # An empty sequence would make every masked softmax/mean undefined.
        raise ValueError(f"lengths must lie in [1, {max_len}], got {lengths.tolist()}")
    return lengths
