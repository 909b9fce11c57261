"""TensorBoard scalars of a training run: every numeric value of a metrics.jsonl record (each
loss term, MAL accuracies, AdaMS statistics, learning rate, utterances/s, dev AP) is also
written to ``exp/<tag>/tensorboard`` by rank 0, against the global step:

    tensorboard --logdir exp --host 127.0.0.1     # every experiment, side by side

The ``tensorboard`` package is needed only here: without it training goes on, says once that
there are no TensorBoard logs, and metrics.jsonl still holds every value (stage 8 plots it).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

_warned = False

# Groups (TensorBoard's sections) by key.
_EXACT = {"dev_ap": "dev/AP", "lr": "train/lr", "utt_per_s": "train/utt_per_s",
          "grl_scale": "train/grl_scale", "epoch_seconds": "time/epoch_seconds"}
_PREFIXES = (("l_", "loss/"), ("asyp_", "loss_parts/"), ("rpl_", "loss_parts/"),
             ("mal_acc", "mal/"), ("adams_", "adams/"))
NOT_SCALARS = ("epoch", "step")


def scalar_tag(key: str) -> str:
    """metrics.jsonl key -> TensorBoard tag: loss/loss, loss/l_utt, mal/mal_acc_utt,
    adams/alpha_mean, train/lr, dev/AP, ..."""
    if key in _EXACT:
        return _EXACT[key]
    if key == "loss":
        return "loss/loss"
    for prefix, group in _PREFIXES:
        if key.startswith(prefix):
            return group + (key[len(prefix):] if prefix == "adams_" else key)
    return f"other/{key}"


def scalars(record: dict) -> dict[str, float]:
    """The tag -> value pairs of one metrics record (None and non-numbers left out)."""
    out = {}
    for k, v in record.items():
        if k in NOT_SCALARS or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        out[scalar_tag(k)] = float(v)
    return out


class ScalarLog:
    """Writes metrics records as scalars; a no-op when tensorboard is not installed."""

    def __init__(self, log_dir: str | os.PathLike, purge_step: int | None = None,
                 log: logging.Logger | None = None, flush_secs: int = 30):
        global _warned
        self.log_dir = Path(log_dir)
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if not _warned and log is not None:
                log.info("tensorboard is not installed: no TensorBoard logs in %s (metrics.jsonl "
                         "has every value; pip install tensorboard to get them)", self.log_dir)
            _warned = True
            return
        # purge_step: a resume hides what a crashed run logged after its last checkpoint.
        self.writer = SummaryWriter(str(self.log_dir), purge_step=purge_step or None,
                                    flush_secs=flush_secs)

    def write(self, record: dict) -> None:
        if self.writer is None or "step" not in record:
            return
        step = int(record["step"])
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
