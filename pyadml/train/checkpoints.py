"""Training checkpoints: the RNG states, atomic writes with pruning of old checkpoints, loading,
and finding the latest one to resume from."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from pyadml.fileio import atomic_path


def rng_state() -> dict:
    """The Python, NumPy, torch (and CUDA, where available) RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the RNG states captured by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(state: dict, ckpt_dir: str | os.PathLike, name: str, keep: int) -> Path:
    """Write ``state`` to ``ckpt_dir/name`` atomically, then prune: keep the last ``keep``
    epoch-*.pt (all of them if ``keep`` is 0) and no step-*.pt other than ``name``."""
    ckpt_dir = Path(ckpt_dir)
    path = ckpt_dir / name
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    if keep:
        epochs = sorted(ckpt_dir.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
        for old in epochs[:-keep]:
            old.unlink()
    for old in ckpt_dir.glob("step-*.pt"):
        if old.name != name:
            old.unlink()  # a mid-epoch checkpoint is only needed until the next one
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint written by :func:`save_checkpoint`, on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=False)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The epoch-N.pt or step-N.pt in ``ckpt_dir`` with the highest training step, or None."""
    best, best_step = None, -1
    for p in ckpt_dir.glob("*.pt"):
        m = re.fullmatch(r"(epoch|step)-(\d+)\.pt", p.name)
        if not m:
            continue
        step = load_checkpoint(p)["step"]
        if step > best_step:
            best, best_step = p, step
    return best
