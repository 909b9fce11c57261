"""Asymmetric-Proxy (AsyP) loss, paper Eq. (2), section 3.1.

Two aligned sets of N embeddings with class labels: row i of ``anchor`` is the text-side
embedding E_t,i and row i of ``other`` the audio-side embedding E_a,i. With S the cosine
similarity and, for each row i of class c = labels[i], P_i = {j : labels[j] = c} (i included)
and N_i = {k : labels[k] != c}:

    pos_i = (1/alpha_c) * log(1 + sum_{j in P_i} exp(alpha_c * (lam_c - S(E_t,i, E_a,j))))  [ELSE]
    neg_i = mean_{k in N_i} softplus(beta_c * (S(E_a,i, E_t,k) - lam_c))                      [MSP]
    L = mean_i (pos_i + neg_i)

The positive term is anchored on text, the negative term on audio, as in Eq. (2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pyadml.losses.precision import fp32_loss

REDUCTIONS = ("mean", "sum", "none")


def _per_row(value, labels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A scalar or a per-class vector ``value`` as one entry per row, shape (N, 1)."""
    if not torch.is_tensor(value):
        return torch.full((labels.shape[0], 1), float(value), dtype=like.dtype, device=like.device)
    value = value.to(dtype=like.dtype, device=like.device)  # differentiable: AdaMS learns these
    if value.dim() == 0:
        return value.expand(labels.shape[0]).unsqueeze(1)
    if value.dim() != 1:
        raise ValueError(f"expected a scalar or a per-class vector, got shape {tuple(value.shape)}")
    return value[labels].unsqueeze(1)


@fp32_loss
def asyp_loss(
    anchor: torch.Tensor,
    other: torch.Tensor,
    labels: torch.Tensor,
    alpha,
    beta,
    lam,
    reduction: str = "mean",
) -> torch.Tensor:
    """AsyP loss (Eq. 2) on N aligned rows; see the module docstring for the formula.

    Args:
        anchor: (N, d) text-side rows E_t: anchors of the positive (ELSE) term, negatives of
            the negative (MSP) term.
        other: (N, d) audio-side rows E_a: positives of the ELSE term, anchors of the MSP term.
        labels: (N,) integer class ids. With per-class vectors they index alpha/beta/lam, so they
            must lie in [0, C).
        alpha, beta, lam: python floats, 0-d tensors or (C,) per-class tensors (AdaMS); tensors
            stay in the graph, so their gradients flow.
        reduction: "mean" (the paper's), "sum" or "none" (per-anchor values, shape (N,)).

    An anchor whose class covers the whole batch has no negative; its MSP term is 0 (the mean
    over an empty set is taken as 0), so it contributes only its ELSE term.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if anchor.shape != other.shape or anchor.dim() != 2 or labels.shape != anchor.shape[:1]:
        raise ValueError(
            f"need anchor, other (N, d) and labels (N,), got {tuple(anchor.shape)}, "
            f"{tuple(other.shape)}, {tuple(labels.shape)}"
        )
    a = alpha if torch.is_tensor(alpha) else float(alpha)
    b = beta if torch.is_tensor(beta) else float(beta)
    m = lam if torch.is_tensor(lam) else float(lam)
    alpha_i = _per_row(a, labels, anchor)
    beta_i = _per_row(b, labels, anchor)
    lam_i = _per_row(m, labels, anchor)

    sim = F.normalize(anchor, dim=1) @ F.normalize(other, dim=1).T  # sim[i, j] = S(E_t,i, E_a,j)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)

    # ELSE: log(1 + sum exp(x)) = logsumexp over the positives plus one zero logit.
    logits = (alpha_i * (lam_i - sim)).masked_fill(~same, float("-inf"))
    logits = torch.cat([logits, logits.new_zeros(logits.shape[0], 1)], dim=1)
    pos = torch.logsumexp(logits, dim=1) / alpha_i.squeeze(1)

    # MSP: audio anchor i against text rows k, i.e. sim transposed.
    neg_all = F.softplus(beta_i * (sim.T - lam_i))
    neg_mask = (~same).to(neg_all.dtype)
    n_neg = neg_mask.sum(dim=1)
    neg = (neg_all * neg_mask).sum(dim=1) / n_neg.clamp_min(1.0)  # no negative -> 0

    per_anchor = pos + neg
    if reduction == "mean":
        return per_anchor.mean()
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor


class AsymmetricProxyLoss(nn.Module):
    """AsyP loss (Eq. 2) with fixed alpha, beta, lambda:
    L = mean_i [ (1/alpha) log(1 + sum_{j in P_i} e^{alpha (lam - S(T_i, A_j))})
               + mean_{k in N_i} softplus(beta (S(A_i, T_k) - lam)) ].

    At utterance level (inside the RP loss, paper section 3.2) row i is one audio sample: ``text``
    row i is the text proxy of its keyword, ``audio`` row i its E_a^utt, ``labels`` the keyword
    ids (any integers: with scalar hyperparameters they are only compared for equality).
    """

    def __init__(self, alpha: float = 0.01, beta: float = 1.5, lam: float = 0.01):
        super().__init__()
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.lam = float(lam)

    def forward(self, text: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return asyp_loss(text, audio, labels, self.alpha, self.beta, self.lam)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, lam={self.lam}"
