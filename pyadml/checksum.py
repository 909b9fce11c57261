"""Content checksums of model and checkpoint files, so that a corrupt or truncated file is an
error that names it instead of a model with wrong weights.

torch.load does not check the CRCs of the zip records it reads, so a file with flipped bytes in
a tensor's data loads and gives other scores. ``digest`` hashes the loaded payload itself: every
tensor's dtype, shape and bytes, and every other value's type and repr, in a fixed order.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

KEY = "checksum"


class CorruptFile(ValueError):
    """A model or checkpoint file whose content does not match its checksum."""


def _feed(h, obj) -> None:
    import torch

    if isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=repr):
            h.update(repr(k).encode())
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[" if isinstance(obj, list) else b"(")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, np.ndarray):
        h.update(f"N{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    else:
        h.update(f"{type(obj).__name__}:{obj!r}".encode())


def digest(payload: dict) -> str:
    """sha256 of a payload (the dict without its own ``checksum`` entry)."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != KEY})
    return h.hexdigest()


def seal(payload: dict) -> dict:
    """The payload with its checksum added."""
    return {**payload, KEY: digest(payload)}


def verify(payload: dict, path: str | os.PathLike, required: bool = True) -> None:
    """Raise CorruptFile naming ``path`` when the stored checksum does not match (or is missing
    and ``required``)."""
    stored = payload.get(KEY)
    if stored is None:
        if required:
            raise CorruptFile(f"{path}: no checksum; the file is damaged or was not written by pyadml")
        return
    if stored != digest(payload):
        raise CorruptFile(f"{path}: checksum mismatch: the file is corrupt (damaged on disk or "
                          f"truncated); re-export or restore it")
