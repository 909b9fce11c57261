"""The exported KWS model: the two encoders and the score used at inference (paper section 4.1)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .common import EncoderOutput
from .ecapa import EcapaConfig, EcapaEncoder
from .text_encoder import TextEncoder, TextEncoderConfig


class KwsModel(nn.Module):
    """Holds only what inference needs; training heads (classifier, M, cross-attention) live
    elsewhere so they are not exported with it."""

    def __init__(self, audio: EcapaEncoder, text: TextEncoder):
        super().__init__()
        if audio.embed_dim != text.embed_dim:
            raise ValueError(f"audio d={audio.embed_dim} != text d={text.embed_dim}")
        self.audio = audio
        self.text = text

    @classmethod
    def from_configs(cls, audio_cfg: Optional[EcapaConfig], text_cfg: TextEncoderConfig) -> "KwsModel":
        return cls(EcapaEncoder(audio_cfg), TextEncoder(text_cfg))

    def embed_audio(self, feats: torch.Tensor, feat_lens: Optional[torch.Tensor] = None) -> EncoderOutput:
        return self.audio(feats, feat_lens)

    def embed_text(self, phones: torch.Tensor, phone_lens: Optional[torch.Tensor] = None) -> EncoderOutput:
        return self.text(phones, phone_lens)

    @staticmethod
    def score(audio_utt: torch.Tensor, text_utt: torch.Tensor) -> torch.Tensor:
        """Cosine similarity over the last dim (broadcasts: audio[:, None] vs text[None] gives a
        full score matrix)."""
        return F.cosine_similarity(audio_utt, text_utt, dim=-1)
