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
    elsewhere so they are not exported with it. A baseline detector's head (PhonMatchNet,
    CMCD; pyadml.models.baselines) is what scores its pairs, so it is part of the model."""

    def __init__(self, audio: EcapaEncoder, text: TextEncoder, head: Optional[nn.Module] = None):
        super().__init__()
        if audio.embed_dim != text.embed_dim:
            raise ValueError(f"audio d={audio.embed_dim} != text d={text.embed_dim}")
        self.audio = audio
        self.text = text
        # A detector head (pyadml.models.baselines) scores (frames, phoneme states) pairs;
        # without one the score is the cosine of the utterance embeddings.
        self.head = head

    @property
    def scorer(self) -> str:
        """How (audio, keyword) pairs are scored: "cosine" or the detector head's name."""
        return "cosine" if self.head is None else self.head.scorer

    def detect(self, a_phn: torch.Tensor, a_mask: torch.Tensor, t_phn: torch.Tensor,
               t_mask: torch.Tensor) -> torch.Tensor:
        """The detector's match probability of each of N pairs of encoder outputs: (N,)."""
        if self.head is None:
            raise ValueError("this model has no detector head; its score is the cosine")
        return torch.sigmoid(self.head(a_phn, a_mask, t_phn, t_mask).logit.float())

    @classmethod
    def from_configs(cls, audio_cfg: Optional[EcapaConfig], text_cfg: TextEncoderConfig,
                     scorer: str = "cosine", head_config: Optional[dict] = None) -> "KwsModel":
        audio = EcapaEncoder(audio_cfg)
        head = None
        if scorer != "cosine":
            from .baselines import build_head

            head = build_head(scorer, audio.embed_dim, **(head_config or {}))
        return cls(audio, TextEncoder(text_cfg), head)

    def embed_audio(self, feats: torch.Tensor, feat_lens: Optional[torch.Tensor] = None) -> EncoderOutput:
        return self.audio(feats, feat_lens)

    def embed_text(self, phones: torch.Tensor, phone_lens: Optional[torch.Tensor] = None) -> EncoderOutput:
        return self.text(phones, phone_lens)

    @staticmethod
    def score(audio_utt: torch.Tensor, text_utt: torch.Tensor) -> torch.Tensor:
        """Cosine similarity over the last dim (broadcasts: audio[:, None] vs text[None] gives a
        full score matrix)."""
        return F.cosine_similarity(audio_utt, text_utt, dim=-1)
