"""Process-group setup for torchrun: rank, world size and device from the environment."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import torch
import torch.distributed as dist


def setup_distributed(device_pref: str = "auto") -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_pref in ("auto", "cuda")
    device = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return rank, world, device


class LockHeld(RuntimeError):
    """Another process holds a lock that this one needs."""


class ExperimentLock:
    """An exclusive flock on ``path`` for this process's life; the file names the holder.
    A second trainer of the same experiment exits with a message naming the first."""

    _held: dict[str, int] = {}  # path -> descriptor, for the locks this process holds

    def __init__(self, path: str | os.PathLike):
        import fcntl

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        if key in ExperimentLock._held:  # a later Trainer of the same experiment, same process
            self._fd = None
            return
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.path.read_text(errors="replace").strip() or "another process"
            fd, self._fd = self._fd, None  # __del__ must not close a number reused meanwhile
            os.close(fd)
            raise LockHeld(f"{self.path.parent} is being trained by {holder} (lock {self.path}); "
                           f"wait for it to finish or stop it") from None
        ExperimentLock._held[key] = self._fd
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                           f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())

    def release(self) -> None:
        if self._fd is not None:
            ExperimentLock._held.pop(str(self.path.resolve()), None)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __del__(self):
        self.release()
