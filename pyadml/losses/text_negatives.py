"""Ranking loss against near-miss texts (not in the paper; ``loss.text_negatives``).

The paper's utterance losses compare an utterance with the other keywords of its batch, which
are random words; nothing asks the text encoder to separate a keyword from a text one phone
away, and LibriPhrase's hard negatives are exactly that. For audio embedding a_i, its own text
embedding t_i and the embeddings n_i1..n_iC of C near-miss texts of t_i
(``pyadml.data.text_negatives``), with S the cosine similarity:

    L_tn = mean_i (1/s) * log(1 + sum_k exp(s * (S(a_i, n_ik) - S(a_i, t_i) + m)))

a smooth hinge that asks the own text to beat each near miss by the margin m (scale s). The
gradient reaches both encoders: the text side is not detached, since telling near misses apart
is the text encoder's job.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pyadml.losses.precision import fp32_loss


@fp32_loss
def text_negative_loss(audio: torch.Tensor, text: torch.Tensor, negatives: torch.Tensor,
                       margin: float = 0.2, scale: float = 10.0) -> torch.Tensor:
    """audio (B, d), text (B, d) the row's own text, negatives (B, C, d)."""
    if audio.shape != text.shape or negatives.dim() != 3 or negatives.shape[0] != audio.shape[0] \
            or negatives.shape[2] != audio.shape[1]:
        raise ValueError(f"text_negative_loss: audio {tuple(audio.shape)}, text "
                         f"{tuple(text.shape)}, negatives {tuple(negatives.shape)}: expected "
                         "(B, d), (B, d), (B, C, d)")
    pos = F.cosine_similarity(audio, text, dim=-1)                       # (B,)
    neg = F.cosine_similarity(audio.unsqueeze(1), negatives, dim=-1)     # (B, C)
    z = scale * (neg - pos.unsqueeze(1) + margin)
    # log(1 + sum exp z) = logsumexp over [0, z_1..z_C]
    z = torch.cat([z.new_zeros(z.shape[0], 1), z], dim=1)
    return (torch.logsumexp(z, dim=1) / scale).mean()
