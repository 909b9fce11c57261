"""Keyword spotting for users: enrol keywords by text, detect them in clips, recordings and
live audio (``KeywordSpotter``), with a torch or a torch-free onnxruntime backend."""

from .audio import SpotError
from .spotter import Detection, KeywordSpotter

__all__ = ["Detection", "KeywordSpotter", "SpotError"]
