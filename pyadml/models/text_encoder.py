"""BiLSTM text (phoneme-sequence) encoder (paper sections 3.2 and 4.1)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .common import EncoderOutput, check_lengths, lengths_to_mask


@dataclass
class TextEncoderConfig:
    vocab_size: int
    embed_dim: int = 256
    hidden: int = 256  # per direction
    layers: int = 2
    out_dim: int = 256  # d
    padding_idx: int = 0  # <eps> of PhoneTable doubles as padding

    def to_dict(self) -> dict:
        return asdict(self)


class TextEncoder(nn.Module):
    """Phone ids (N, L) + lengths -> EncoderOutput(phn (N, L, d), utt (N, d), mask (N, L))."""

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.padding_idx)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden, num_layers=cfg.layers,
                            batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * cfg.hidden, cfg.out_dim)
        self.utt_fc = nn.Linear(cfg.out_dim, cfg.out_dim)

    @property
    def embed_dim(self) -> int:
        return self.cfg.out_dim

    def forward(self, phones: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> EncoderOutput:
        if phones.dim() != 2:
            raise ValueError(f"phones must be (N, L), got {tuple(phones.shape)}")
        n, l = phones.shape
        lengths = check_lengths(lengths, n, l, phones.device)
        mask = lengths_to_mask(lengths, l)
        emb = self.embedding(phones)
        # Packing keeps padding out of both directions (the backward LSTM starts at the last
        # valid phone); pack_padded_sequence wants CPU lengths.
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=l)
        m = mask.unsqueeze(2).to(out.dtype)
        phn = self.proj(out) * m  # the Linear bias would otherwise fill padded positions
        mean = phn.sum(dim=1) / lengths.to(phn.dtype).unsqueeze(1)
        return EncoderOutput(phn, self.utt_fc(mean), mask)
