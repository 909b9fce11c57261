"""Training checkpoints: the RNG states, atomic checksummed writes with pruning of old
checkpoints, verified loading, and finding the newest valid one to resume from."""

from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from pyadml.checksum import CorruptFile, seal, verify
from pyadml.fileio import torch_save_atomic

log = logging.getLogger("pyadml.train")
CHECKPOINT_NAME = re.compile(r"(epoch|step)-(\d+)\.pt")


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
    torch_save_atomic(seal(state), path)
    if keep:
        epochs = sorted(ckpt_dir.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
        for old in epochs[:-keep]:
            old.unlink()
    for old in ckpt_dir.glob("step-*.pt"):
        if old.name != name:
            old.unlink()  # a mid-epoch checkpoint is only needed until the next one
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint written by :func:`save_checkpoint`, on the CPU, its checksum verified;
    CorruptFile names a damaged or truncated file. Checkpoints from before checksums load."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, bad pickle, ...: torch raises several types
        raise CorruptFile(f"{path}: truncated or damaged: cannot be read as a checkpoint "
                          f"({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CorruptFile(f"{path}: not a training checkpoint (no 'model' state_dict)")
    verify(state, path, required=False)
    return state


def remove_temporaries(ckpt_dir: str | os.PathLike) -> list[Path]:
    """Delete half-written checkpoints that a killed run left (atomic_path's .NAME.*.tmp)."""
    gone = []
    for p in Path(ckpt_dir).glob(".*.pt.*.tmp"):
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def refuse_earlier_checkpoints(exp_dir: str | os.PathLike) -> None:
    """A run that neither resumes nor starts afresh must not train into an experiment that
    holds an earlier run's checkpoints: it would overwrite some of them (epoch-1.pt, ...) and
    leave the others, and stage 7 would average the two runs under the new config."""
    ckpt_dir = Path(exp_dir) / "checkpoints"
    found = sorted((p.name for p in ckpt_dir.glob("*.pt") if CHECKPOINT_NAME.fullmatch(p.name)),
                   key=lambda n: (n.startswith("step"), int(re.sub(r"\D", "", n))))
    if found:
        shown = ", ".join(found[:3]) + (f", ... ({len(found)} in all)" if len(found) > 3 else "")
        raise ValueError(
            f"{exp_dir} holds the checkpoints of an earlier run ({shown} in {ckpt_dir}); "
            f"continue it (steps/train.sh --resume true), start it afresh (--fresh true: the "
            f"earlier run moves to {Path(exp_dir) / 'previous'}/), or train into another "
            f"directory")


def _step_of(path: Path) -> int:
    """The training step a checkpoint holds, read without loading its tensors (mmap); -1 when
    it cannot be read (load_checkpoint then says why)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        return int(state.get("step", -1))
    except Exception:  # truncated zip, bad pickle, ...: judged by load_checkpoint
        return -1


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest valid epoch-N.pt or step-N.pt in ``ckpt_dir`` (by training step), or None.
    A corrupt one is skipped with a warning that names it, so a resume falls back to the
    previous checkpoint."""
    path, _ = latest_valid_checkpoint(ckpt_dir)
    return path


def latest_valid_checkpoint(ckpt_dir: Path) -> tuple[Path | None, dict | None]:
    """(path, loaded state) of the checkpoint to resume from; see latest_checkpoint."""
    found = [p for p in Path(ckpt_dir).glob("*.pt") if CHECKPOINT_NAME.fullmatch(p.name)]
    # By the step each holds, not by file time: a copied experiment (cp -r, a restore) has
    # arbitrary times. Ties and unreadable files fall back to file time.
    found.sort(key=lambda p: (_step_of(p), p.stat().st_mtime_ns, p.name), reverse=True)
    for p in found:
        try:
            return p, load_checkpoint(p)
        except CorruptFile as e:
            log.warning("skipping checkpoint: %s", e)
    return None, None


def truncate_metrics(path: str | os.PathLike, step: int, epoch: int) -> int:
    """Drop the metrics.jsonl records after the checkpoint a resume starts from (they are
    trained again); returns how many were dropped."""
    import json

    from pyadml.fileio import write_lines_atomic

    path = Path(path)
    if not path.is_file():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:  # a line cut short by a kill
            dropped += 1
            continue
        later = rec.get("step", 0) > step or ("dev_ap" in rec and rec.get("epoch", 0) > epoch)
        if later:
            dropped += 1
        else:
            keep.append(line)
    if dropped:
        write_lines_atomic(path, keep)
    return dropped


def archive_previous_run(exp_dir: str | os.PathLike) -> Path | None:
    """Move an experiment's checkpoints, metrics and logs of training into
    ``previous/<n>/``, so that a fresh start loses nothing and mixes nothing."""
    exp = Path(exp_dir)
    names = ["checkpoints", "metrics.jsonl", "config.yaml", "config_changes.jsonl", "tensorboard"]
    present = [n for n in names if (exp / n).exists()]
    if not present:
        return None
    n = 1
    while (exp / "previous" / str(n)).exists():
        n += 1
    dest = exp / "previous" / str(n)
    dest.mkdir(parents=True)
    for name in present:
        os.replace(exp / name, dest / name)
    log.info("fresh start: moved %s of the previous run to %s", ", ".join(present), dest)
    return dest
