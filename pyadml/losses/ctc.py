"""A phone CTC loss on the audio encoder's frames (not in the paper; an auxiliary task, as the
CTC branch of hybrid CTC/attention ASR).

The word-level and phoneme-level losses of the paper compare the audio with one text at a time.
This one asks every frame sequence to spell its own phones: with p_t = softmax(W h_t + b) over
the phone table (``<eps>``, id 0, as the blank) for the T valid frames h_t of row i, y_i its
L_i phones and B the CTC collapse (merge repeats, then drop blanks),

    L_CTC = mean_i  -log( sum_{pi : B(pi) = y_i}  prod_{t=1..T} p_t(pi_t) ) / L_i

(torch's ``ctc_loss`` with reduction "mean"). A row too short to spell its phones has no path;
it counts 0 rather than infinity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pyadml.losses.precision import fp32_loss

BLANK = 0


@fp32_loss
def phone_ctc_loss(logits: torch.Tensor, frame_mask: torch.Tensor, phones: torch.Tensor,
                   phone_lens: torch.Tensor) -> torch.Tensor:
    """``logits`` (N, T, V) per frame over the phone table, ``frame_mask`` (N, T) the valid
    frames (a prefix of each row), ``phones`` (N, L) ids in [1, V) padded with 0, ``phone_lens``
    (N,); the module docstring's L_CTC."""
    if logits.dim() != 3 or frame_mask.shape != logits.shape[:2]:
        raise ValueError(f"need logits (N, T, V) and frame_mask (N, T), got "
                         f"{tuple(logits.shape)} and {tuple(frame_mask.shape)}")
    log_probs = F.log_softmax(logits, dim=-1).transpose(0, 1)  # (T, N, V)
    frame_lens = frame_mask.sum(dim=1).long()
    return F.ctc_loss(log_probs, phones.long(), frame_lens, phone_lens.long(), blank=BLANK,
                      reduction="mean", zero_infinity=True)


class PhoneCtcLoss(nn.Module):
    """L_CTC (module docstring) with its own output layer, d -> the phone table (training-only:
    the exported model keeps the encoders)."""

    def __init__(self, dim: int, num_phones: int):
        super().__init__()
        if num_phones < 2:
            raise ValueError(f"a CTC loss needs the blank and at least one phone, got {num_phones}")
        self.proj = nn.Linear(dim, num_phones)

    def forward(self, frames: torch.Tensor, frame_mask: torch.Tensor, phones: torch.Tensor,
                phone_lens: torch.Tensor) -> torch.Tensor:
        return phone_ctc_loss(self.proj(frames), frame_mask, phones, phone_lens)
