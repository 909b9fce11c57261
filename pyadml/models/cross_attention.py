"""Phoneme-level cross-attention (paper Eq. 1, section 3.1) and the flattening to N* rows."""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import nn


class PhonemeCrossAttention(nn.Module):
    """One-head cross-attention, text queries over audio frames (Eq. 1):
    A = softmax(E_t W_q (E_a W_k)^T / sqrt(d)) over valid frames, E~_a = A E_a (V not projected).

    Values are the acoustic frame embeddings themselves, so every aligned vector is a convex
    mixture of real frames. Padded frames get -inf before the softmax (exactly 0 weight); rows of
    padded text positions are zeroed. Every utterance needs at least one valid frame (the
    encoders reject empty inputs), otherwise its softmax row is undefined.
    """

    def __init__(self, d: int = 256, bias: bool = False):
        super().__init__()
        self.d = int(d)
        self.query = nn.Linear(d, d, bias=bias)  # W_q
        self.key = nn.Linear(d, d, bias=bias)  # W_k
        self.scale = 1.0 / math.sqrt(d)

    def forward(
        self,
        text_phn: torch.Tensor,
        text_mask: torch.Tensor,
        audio_phn: torch.Tensor,
        audio_mask: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(N, L, d), (N, L) bool, (N, T, d), (N, T) bool -> aligned (N, L, d), A (N, L, T)."""
        n, l, d = text_phn.shape
        if d != self.d or audio_phn.shape[0] != n or audio_phn.shape[2] != d:
            raise ValueError(f"need text (N, L, {self.d}) and audio (N, T, {self.d}), got "
                             f"{tuple(text_phn.shape)} and {tuple(audio_phn.shape)}")
        if text_mask.shape != (n, l) or audio_mask.shape != audio_phn.shape[:2]:
            raise ValueError(f"masks {tuple(text_mask.shape)}, {tuple(audio_mask.shape)} do not "
                             f"match text {tuple(text_phn.shape)}, audio {tuple(audio_phn.shape)}")
        text_mask = text_mask.bool()
        audio_mask = audio_mask.bool()
        scores = self.query(text_phn) @ self.key(audio_phn).transpose(1, 2) * self.scale
        scores = scores.masked_fill(~audio_mask.unsqueeze(1), float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        attn = attn.masked_fill(~text_mask.unsqueeze(2), 0.0)
        # Padded frames have weight exactly 0, but 0 * (non-finite padding) would still be NaN.
        values = audio_phn.masked_fill(~audio_mask.unsqueeze(2), 0.0)
        return attn @ values, attn


def flatten_valid(text_mask: torch.Tensor, *tensors: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Keep the valid text positions of each (N, L, ...) tensor: a tuple of (N*, ...) tensors.

    Rows come out in batch-major order (utterance 0's phonemes first), N* = text_mask.sum().
    Typical use: ``a_hat, t_hat, labels = flatten_valid(mask, aligned, text_phn, phones)``.
    """
    text_mask = text_mask.bool()
    out = []
    for x in tensors:
        if x.shape[:2] != text_mask.shape:
            raise ValueError(f"tensor {tuple(x.shape)} does not start with mask shape "
                             f"{tuple(text_mask.shape)}")
        out.append(x[text_mask])
    return tuple(out)
