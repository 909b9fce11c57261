"""Monotonic matching loss L_MM on the cross-attention matrix A (paper section 3.1).

Only matched audio-text pairs count; unlike CMCD there is no noise target for non-matching
pairs. With L valid phonemes and T valid frames of one utterance, rows i < L and frames j < T.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from pyadml.losses.precision import fp32_loss

TARGETS = ("diagonal", "gaussian")


def monotonic_target(
    text_lens: torch.Tensor,
    audio_lens: torch.Tensor,
    L_max: int,
    T_max: int,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Diagonal target G, shape (N, L_max, T_max), each valid row summing to 1.

    Text position i owns the valid frames j with floor(j * L / T) = i, a contiguous share.
    When L > T (more phonemes than frames) some rows own no frame; such a row i gets the single
    frame floor(i * T / L) instead (shared with the row that owns it), so every valid row is a
    distribution. Rows of padded text positions and columns of padded frames are 0.
    """
    dev = text_lens.device
    L = torch.as_tensor(text_lens, device=dev).long().view(-1, 1, 1)
    T = torch.as_tensor(audio_lens, device=dev).long().view(-1, 1, 1)
    i = torch.arange(L_max, device=dev).view(1, -1, 1)
    j = torch.arange(T_max, device=dev).view(1, 1, -1)
    valid = (i < L) & (j < T)
    # Integer floor division: exact, no float rounding at share boundaries.
    own = valid & ((j * L) // T.clamp_min(1) == i)
    empty = ~own.any(dim=2, keepdim=True)
    fallback = valid & empty & (j == (i * T) // L.clamp_min(1))
    g = (own | fallback).to(dtype)
    return g / g.sum(dim=2, keepdim=True).clamp_min(1.0)


def gaussian_penalty(
    text_lens: torch.Tensor,
    audio_lens: torch.Tensor,
    L_max: int,
    T_max: int,
    sigma: float,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """W_ij = 1 - exp(-(i/L - j/T)^2 / (2 sigma^2)) on valid (i, j), 0 elsewhere; (N, L_max, T_max)."""
    dev = text_lens.device
    L = torch.as_tensor(text_lens, device=dev).view(-1, 1, 1)
    T = torch.as_tensor(audio_lens, device=dev).view(-1, 1, 1)
    i = torch.arange(L_max, device=dev).view(1, -1, 1)
    j = torch.arange(T_max, device=dev).view(1, 1, -1)
    valid = (i < L) & (j < T)
    diff = i.to(dtype) / L.to(dtype).clamp_min(1) - j.to(dtype) / T.to(dtype).clamp_min(1)
    w = 1.0 - torch.exp(-diff.pow(2) / (2.0 * sigma**2))
    return w * valid.to(dtype)


class MonotonicMatchingLoss(nn.Module):
    """L_MM pushing A towards a monotonic diagonal alignment (CMCD's MM loss, paper section 3.1):
    diagonal: L = (1/R) sum_{valid i} -sum_j G_ij log(A_ij + eps);  gaussian: L = (1/R) sum_ij A_ij W_ij,
    R = number of valid text rows of the matched pairs; G from ``monotonic_target``, W from
    ``gaussian_penalty``.
    """

    def __init__(self, target: str = "diagonal", sigma: float = 0.2, eps: float = 1e-8):
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        self.target = target
        self.sigma = float(sigma)
        self.eps = float(eps)

    @fp32_loss
    def forward(
        self,
        attn: torch.Tensor,
        text_mask: torch.Tensor,
        audio_mask: torch.Tensor,
        matched: Optional[torch.Tensor] = None,
        num_rows: Optional[float] = None,
    ) -> torch.Tensor:
        """attn (N, L, T) from PhonemeCrossAttention; prefix masks (N, L), (N, T) bool;
        ``matched`` (N,) bool selects the pairs that count (default: all, as in training).
        ``num_rows`` replaces R (e.g. the global row count over the number of ranks, so that
        the ranks' mean is the loss of the whole batch)."""
        n, l_max, t_max = attn.shape
        text_mask = text_mask.bool()
        if text_mask.shape != (n, l_max) or audio_mask.shape != (n, t_max):
            raise ValueError(f"masks {tuple(text_mask.shape)}, {tuple(audio_mask.shape)} do not "
                             f"match attention {tuple(attn.shape)}")
        text_lens = text_mask.sum(dim=1)
        audio_lens = audio_mask.bool().sum(dim=1)
        rows = text_mask if matched is None else text_mask & matched.bool().view(-1, 1)
        if self.target == "diagonal":
            g = monotonic_target(text_lens, audio_lens, l_max, t_max, dtype=attn.dtype)
            per_row = -(g * torch.log(attn + self.eps)).sum(dim=2)
        else:
            w = gaussian_penalty(text_lens, audio_lens, l_max, t_max, self.sigma, dtype=attn.dtype)
            per_row = (attn * w).sum(dim=2)
        rows_f = rows.to(attn.dtype)
        denom = rows_f.sum().clamp_min(1.0) if num_rows is None else max(float(num_rows), 1.0)
        return (per_row * rows_f).sum() / denom

    def extra_repr(self) -> str:
        return f"target={self.target!r}, sigma={self.sigma}, eps={self.eps}"
