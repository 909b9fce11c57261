"""Kill campaign: training is SIGKILLed at random points and resumed each time, and the final
model must equal that of an uninterrupted run with the same seed.

Each kill either takes the whole process group (run.sh, torchrun and its workers, as the OOM
killer or a lost job would) or only the launcher (torchrun), whose workers must then exit by
themselves (pyadml.train.distributed.die_with_parent) and not train on beside the resumed run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pyadml.train.checkpoints import latest_checkpoint, latest_valid_checkpoint, load_checkpoint


@dataclass
class CampaignResult:
    kills: list[tuple[float, str]] = field(default_factory=list)  # (step + seconds, mode)
    orphans: int = 0              # workers still alive after their launcher was killed
    max_abs_diff: float = float("nan")
    reference_seconds: float = 0.0


def _launch(train_sh: Path, config: Path, exp: Path, overrides: list[str], env: dict,
            log) -> subprocess.Popen:
    return subprocess.Popen(["bash", str(train_sh), "--resume", "true", str(config), str(exp),
                             *overrides], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def _workers_of(exp: Path) -> list[int]:
    """PIDs of pyadml.bin.train processes training ``exp`` (found through /proc)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"pyadml.bin.train" in cmd and str(exp).encode() in cmd and b"torchrun" not in b" ".join(cmd):
            pids.append(int(d.name))
    return pids


def _kill(proc: subprocess.Popen, mode: str, exp: Path) -> int:
    """SIGKILL the group, or only torchrun; returns how many workers outlived their launcher.
    torchrun starts workers in sessions of their own, so neither kill reaches them: they must
    die with the launcher, and nothing may look at the checkpoints or resume until they have
    (a dying worker can still finish a checkpoint write and prune the one before it)."""
    if mode == "group":
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        launcher = [p for p in _children(proc.pid) if b"torchrun" in _cmdline(p)]
        for p in launcher or [proc.pid]:
            os.kill(p, signal.SIGKILL)
    deadline = time.time() + 15
    while time.time() < deadline and _workers_of(exp):
        time.sleep(0.2)
    left = _workers_of(exp)
    for p in left:  # do not let an orphan spoil the comparison; it is counted
        os.kill(p, signal.SIGKILL)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    return len(left)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        out += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return out


def final_weights(exp: Path) -> dict[str, torch.Tensor]:
    path = latest_checkpoint(exp / "checkpoints")
    if path is None:
        raise FileNotFoundError(f"{exp}: no checkpoint")
    return load_checkpoint(path)["model"]


def _logged_step(exp: Path) -> int:
    """The highest step in metrics.jsonl (log_interval=1: every step is logged)."""
    try:
        text = (exp / "metrics.jsonl").read_text()
    except OSError:
        return 0
    best = 0
    for line in text.splitlines():
        try:
            best = max(best, int(json.loads(line).get("step", 0)))
        except (ValueError, AttributeError):
            pass  # a line being written
    return best


def run_campaign(config: str | os.PathLike, work_dir: str | os.PathLike, overrides: list[str],
                 kills: int = 10, seed: int = 0, train_sh: str | os.PathLike = "steps/train.sh",
                 env: dict | None = None, say=print) -> CampaignResult:
    """Train once uninterrupted (``work_dir/reference``), then train ``work_dir/killed`` and
    SIGKILL it at ``kills`` random training steps (after the step, a random fraction of a
    second later: in the next step or a checkpoint write), resuming each time; compare."""
    work, config, train_sh = Path(work_dir), Path(config), Path(train_sh)
    env = dict(os.environ if env is None else env)
    overrides = [*overrides, "log_interval=1"]
    rng = random.Random(seed)
    res = CampaignResult()
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "campaign.log", "a") as log:
        t0 = time.time()
        ref = _launch(train_sh, config, work / "reference", overrides, env, log)
        if ref.wait() != 0:
            raise RuntimeError(f"the uninterrupted run failed; see {work / 'campaign.log'}")
        res.reference_seconds = time.time() - t0
        total = _latest_step(work / "reference") or 0
        if total < kills + 1:
            raise RuntimeError(f"the run has {total} steps; too few for {kills} kills")
        say(f"kill_campaign: uninterrupted run: {total} steps in {res.reference_seconds:.1f} s")
        exp = work / "killed"
        for target in sorted(rng.sample(range(1, total), kills)):
            mode = rng.choice(("group", "launcher"))
            delay = rng.uniform(0.0, 0.5)
            proc = _launch(train_sh, config, exp, overrides, env, log)
            while proc.poll() is None and _logged_step(exp) < target:
                time.sleep(0.05)
            if proc.poll() is not None:
                raise RuntimeError(f"training ended before step {target}; see {work / 'campaign.log'}")
            time.sleep(delay)
            orphans = _kill(proc, mode, exp)
            res.orphans += orphans
            res.kills.append((target + delay, mode))
            say(f"kill_campaign: kill {len(res.kills)}/{kills} {delay:.2f} s after step {target} "
                f"({mode}); resumes from step {_latest_step(exp)}; orphaned workers {orphans}")
        final = _launch(train_sh, config, exp, overrides, env, log)
        if final.wait() != 0:
            raise RuntimeError(f"the last resume failed; see {work / 'campaign.log'}")
    a, b = final_weights(work / "reference"), final_weights(exp)
    if a.keys() != b.keys():
        raise RuntimeError("the two runs' models have different parameters")
    res.max_abs_diff = max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0
                           for k in a)
    say(f"kill_campaign: {len(res.kills)} kills and resumes ({res.orphans} orphaned workers); "
        f"max abs difference to the uninterrupted run over {len(a)} tensors: {res.max_abs_diff:.3g}")
    return res


def _latest_step(exp: Path):
    if not (exp / "checkpoints").is_dir():
        return None
    _, state = latest_valid_checkpoint(exp / "checkpoints")
    return state["step"] if state else None
