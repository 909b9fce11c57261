"""The paper's baseline detectors as heads on the recipe's encoders (paper Tables 2 and 4).

Both take the encoders' phoneme-level outputs, ECAPA frame vectors ``a_phn`` (N, T, d) with
their mask and BiLSTM phoneme states ``t_phn`` (N, L, d) with theirs, of N (audio, keyword)
pairs, and return one match logit per pair (the score is its sigmoid):

* ``PhonMatchNetHead`` (Lee et al., Interspeech 2023): audio and text projected to ``dim``; the
  valid audio frames and then the valid text tokens of each pair concatenated into one sequence;
  one single-head attention layer (Q, K, V and output projections) with a lower-triangular
  (causal) mask and nothing else (no residual, LayerNorm or feed-forward); a GRU over that
  sequence whose last valid state gives the utterance logit (Linear(hidden -> 1)), and
  Linear(dim -> 1) on the attention outputs at the text positions gives one logit per phoneme.
* ``CMCDHead`` (Shin et al., Interspeech 2022): audio and text projected to ``dim``; one-head
  cross-attention with the text as queries over the valid audio frames; a GRU (the recurrent
  discriminator) over the attended sequence at the valid text positions, its last valid state
  to Linear(hidden -> 1). The attention matrix is returned for CMCD's monotonic matching loss.

Both also return ``alignment`` (N, L, T): for each text position a distribution over the valid
audio frames (PhonMatchNet: its text rows' attention on the audio columns, renormalised), which
the training objective uses for phoneme-level MAL (aligned audio = alignment @ a_phn).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import nn

SCORERS = ("cosine", "phonmatchnet", "cmcd")
HEADS = ("phonmatchnet", "cmcd")


class DetectorOutput(NamedTuple):
    logit: torch.Tensor                  # (N,) utterance-level match logit
    phn_logits: Optional[torch.Tensor]   # (N, L) phoneme-level logits (0 at padding) or None
    alignment: torch.Tensor              # (N, L, T) text-to-audio attention, rows sum to 1


def _check(a_phn, a_mask, t_phn, t_mask, d):
    n = a_phn.shape[0]
    if a_phn.dim() != 3 or t_phn.dim() != 3 or t_phn.shape[0] != n:
        raise ValueError(f"need audio (N, T, d) and text (N, L, d), got {tuple(a_phn.shape)} "
                         f"and {tuple(t_phn.shape)}")
    if a_phn.shape[2] != d or t_phn.shape[2] != d:
        raise ValueError(f"the head takes d={d} inputs, got audio {tuple(a_phn.shape)} and "
                         f"text {tuple(t_phn.shape)}")
    if a_mask.shape != a_phn.shape[:2] or t_mask.shape != t_phn.shape[:2]:
        raise ValueError(f"masks {tuple(a_mask.shape)}, {tuple(t_mask.shape)} do not match "
                         f"audio {tuple(a_phn.shape)}, text {tuple(t_phn.shape)}")
    a_lens, t_lens = a_mask.sum(1), t_mask.sum(1)
    if n and (int(a_lens.min()) < 1 or int(t_lens.min()) < 1):
        raise ValueError("every pair needs at least one valid frame and one valid phoneme")
    return a_mask.bool(), t_mask.bool(), a_lens, t_lens


def _last_state(gru: nn.GRU, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """The GRU state after each sequence's last valid step: (N, hidden). A one-direction GRU's
    output at step len-1 does not depend on the padding after it, so the padded batch runs
    unpacked (a packed sequence's backward on CPU zero-fills the whole packed input at every
    step: 6x slower here)."""
    out, _ = gru(x)
    idx = (lens.to(x.device) - 1).view(-1, 1, 1).expand(-1, 1, out.shape[2])
    return out.gather(1, idx).squeeze(1)


class _Head(nn.Module):
    """What both detectors have: audio and text projected to ``dim``, one single-head attention
    (q, k, v), a GRU(``gru_hidden``) and the utterance logit."""

    def __init__(self, d_in: int, dim: int = 128, gru_hidden: int = 128):
        super().__init__()
        self.d_in, self.dim, self.gru_hidden = int(d_in), int(dim), int(gru_hidden)
        self.audio_proj = nn.Linear(d_in, dim)
        self.text_proj = nn.Linear(d_in, dim)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.gru = nn.GRU(dim, gru_hidden, batch_first=True)
        self.utt_fc = nn.Linear(gru_hidden, 1)

    def config(self) -> dict:
        return {"dim": self.dim, "gru_hidden": self.gru_hidden}


class PhonMatchNetHead(_Head):
    scorer = "phonmatchnet"

    def __init__(self, d_in: int, dim: int = 128, gru_hidden: int = 128):
        super().__init__(d_in, dim, gru_hidden)
        self.o = nn.Linear(dim, dim)   # the attention's output projection, as ncsoft's code
        self.phn_fc = nn.Linear(dim, 1)

    def forward(self, a_phn, a_mask, t_phn, t_mask) -> DetectorOutput:
        a_mask, t_mask, a_lens, t_lens = _check(a_phn, a_mask, t_phn, t_mask, self.d_in)
        n, t_max, _ = a_phn.shape
        l_max = t_phn.shape[1]
        a = self.audio_proj(a_phn)
        t = self.text_proj(t_phn)
        # Sequence position p of pair i: audio frame p while p < T_i, then text token p - T_i.
        s_max = t_max + l_max
        p = torch.arange(s_max, device=a.device).unsqueeze(0)                # (1, S)
        Ta, Lt = a_lens.view(-1, 1), t_lens.view(-1, 1)
        src = torch.where(p < Ta, p, t_max + (p - Ta).clamp(max=l_max - 1))  # index into [a; t]
        src = src.clamp(max=s_max - 1)
        valid = p < Ta + Lt                                                  # (N, S)
        both = torch.cat([a, t], dim=1)
        x = torch.gather(both, 1, src.unsqueeze(2).expand(n, s_max, self.dim))
        x = x * valid.unsqueeze(2).to(x.dtype)
        scores = self.q(x) @ self.k(x).transpose(1, 2) / math.sqrt(self.dim)  # (N, S, S)
        causal = torch.ones(s_max, s_max, dtype=torch.bool, device=a.device).tril()
        allowed = causal.unsqueeze(0) & valid.unsqueeze(1)
        attn = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        out = self.o(attn @ self.v(x)) * valid.unsqueeze(2).to(x.dtype)       # (N, S, dim)
        logit = self.utt_fc(_last_state(self.gru, out, a_lens + t_lens)).squeeze(1)
        # Text position k of pair i sits at sequence position T_i + k.
        k = torch.arange(l_max, device=a.device).unsqueeze(0)
        tpos = (Ta + k).clamp(max=s_max - 1)                                  # (N, L)
        t_out = torch.gather(out, 1, tpos.unsqueeze(2).expand(n, l_max, self.dim))
        phn_logits = self.phn_fc(t_out).squeeze(2) * t_mask.to(out.dtype)
        rows = torch.gather(attn, 1, tpos.unsqueeze(2).expand(n, l_max, s_max))[:, :, :t_max]
        rows = rows * a_mask.unsqueeze(1).to(rows.dtype)
        align = rows / rows.sum(2, keepdim=True).clamp_min(1e-12)
        align = align * t_mask.unsqueeze(2).to(align.dtype)
        return DetectorOutput(logit, phn_logits, align)


class CMCDHead(_Head):
    scorer = "cmcd"

    def forward(self, a_phn, a_mask, t_phn, t_mask) -> DetectorOutput:
        a_mask, t_mask, a_lens, t_lens = _check(a_phn, a_mask, t_phn, t_mask, self.d_in)
        a = self.audio_proj(a_phn)
        t = self.text_proj(t_phn)
        scores = self.q(t) @ self.k(a).transpose(1, 2) / math.sqrt(self.dim)  # (N, L, T)
        attn = torch.softmax(scores.masked_fill(~a_mask.unsqueeze(1), float("-inf")), dim=-1)
        attn = attn * t_mask.unsqueeze(2).to(attn.dtype)
        values = self.v(a) * a_mask.unsqueeze(2).to(a.dtype)
        attended = attn @ values                                              # (N, L, dim)
        logit = self.utt_fc(_last_state(self.gru, attended, t_lens)).squeeze(1)
        return DetectorOutput(logit, None, attn)


def build_head(name: str, d_in: int, **opts) -> nn.Module:
    if name == "phonmatchnet":
        return PhonMatchNetHead(d_in, **opts)
    if name == "cmcd":
        return CMCDHead(d_in, **opts)
    raise ValueError(f"unknown detector head {name!r}; expected one of {HEADS}")
