"""Encoders and the inference model of pyadml (paper sections 3 and 4.1)."""
from .common import EncoderOutput, lengths_to_mask
from .ecapa import (
    CCSPooling, EcapaConfig, EcapaEncoder, MaskedBatchNorm1d, Res2Conv, SERes2Block, SqueezeExcite,
)
from .kws import KwsModel
from .text_encoder import TextEncoder, TextEncoderConfig

__all__ = [
    "CCSPooling", "EcapaConfig", "EcapaEncoder", "EncoderOutput", "KwsModel", "MaskedBatchNorm1d",
    "Res2Conv", "SERes2Block", "SqueezeExcite", "TextEncoder", "TextEncoderConfig",
    "lengths_to_mask",
]
