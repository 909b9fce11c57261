"""A torchrun worker exits when its launcher dies. torchrun starts its workers in sessions of
their own, so a SIGKILL of the launcher (the OOM killer, a lost shell) would leave them training
beside the resumed run. Kept free of torch imports: it runs first, before seconds of imports
during which the launcher may already be gone."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time


def _launcher_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
    except OSError:
        return False
    return b"torchrun" in cmd or b"torch.distributed.run" in cmd


def die_with_parent() -> None:
    """Under torchrun: Linux's parent-death signal, and a watchdog thread that polls the parent
    (also covering a launcher that died before this process could ask for the signal)."""
    if "TORCHELASTIC_RUN_ID" not in os.environ:
        return  # not a torchrun worker (a test or a notebook): its parent is not a launcher
    parent = os.getppid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if not _launcher_alive(parent):
        print(f"pyadml: the torchrun launcher (parent {parent}) is gone; exiting", file=sys.stderr)
        os._exit(1)

    def watch():
        while True:
            time.sleep(2.0)
            if os.getppid() != parent:
                print(f"pyadml: parent process {parent} is gone; exiting", file=sys.stderr)
                os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
