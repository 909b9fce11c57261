"""The batch does not depend on the world size (issue 13, item 5): with loss.all_gather, one
process and two gloo processes, each with its share of the same global batch, give the same
first-step loss and the same (rank-averaged, as DDP does) gradients."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs" / "wsj_librikws" / "conf" / "train_tiny.yaml"
OVERRIDES = ["loss.phn=asyp", "loss.mm=true", "loss.mal_utt=true", "loss.mal_phn=true",
             "loss.key=sphereface2", "loss.all_gather=true"]

WORKER = r'''
import json, sys
import torch
import torch.distributed as dist
sys.path.insert(0, sys.argv[5])
from tests.train.test_global_batch import step
rank, world, init, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
torch.set_num_threads(1)
dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
loss, grads = step(rank, world, all_gather=sys.argv[6] == "1")
t = torch.tensor([loss], dtype=torch.float64)
dist.all_reduce(t)
for g in grads.values():
    dist.all_reduce(g)
if rank == 0:
    json.dump({"loss": float(t) / world,
               "grads": {k: (v / world).tolist() for k, v in grads.items()}}, open(out, "w"))
dist.destroy_process_group()
'''


def step(rank: int, world: int, all_gather: bool = True):
    """One forward/backward of the full ADML objective (eval mode: batch-norm running stats,
    so only the losses see the batch) on rank ``rank``'s share of a fixed 4 x 2 batch."""
    import numpy as np

    from pyadml.bin.benchmark import _batch
    from pyadml.train.config import load_config
    from pyadml.train.objective import KwsObjective

    cfg = load_config(TINY, OVERRIDES + [f"loss.all_gather={str(all_gather).lower()}",
                                         "batch.keywords=4"])
    torch.manual_seed(0)
    obj = KwsObjective(cfg, 70, num_keywords=10).eval()
    batch = _batch(4, 2, 70, np.random.default_rng(0))
    n = len(batch["texts"]) // world  # keyword-major: rank r's share is whole keyword groups
    rows = slice(rank * n, (rank + 1) * n)
    share = {k: v[rows] for k, v in batch.items()}
    loss, _ = obj(share)
    loss.backward()
    names = ("audio.input_block.conv.weight", "text.embedding.weight", "phn_loss.alpha_raw",
             "mal.classifier.net.0.weight", "key_loss.weight", "xattn.query.weight")
    params = dict(obj.named_parameters())
    grads = {k: params[k].grad.detach().clone().double() for k in names if k in params}
    return float(loss.detach()), grads


def _two_processes(tmp_path, all_gather):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = tmp_path / f"out{int(all_gather)}.json"
    init = tmp_path / f"init{int(all_gather)}"
    procs = [subprocess.Popen([sys.executable, str(script), str(r), "2", str(init), str(out),
                               str(ROOT), "1" if all_gather else "0"], env=env, cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-3000:]
    return json.loads(out.read_text())


def test_one_and_two_processes_give_the_same_first_step(tmp_path):
    loss1, grads1 = step(0, 1)
    assert {"audio.input_block.conv.weight", "phn_loss.alpha_raw", "key_loss.weight"} <= set(grads1)
    two = _two_processes(tmp_path, all_gather=True)
    assert two["loss"] == pytest.approx(loss1, rel=1e-5)
    for k, g in grads1.items():
        torch.testing.assert_close(torch.tensor(two["grads"][k], dtype=torch.float64), g,
                                   rtol=1e-4, atol=1e-6, msg=k)
    # Without the all-gather each rank's batch-wise losses see half the batch: not the same.
    alone = _two_processes(tmp_path, all_gather=False)
    assert abs(alone["loss"] - loss1) > 1e-3 * abs(loss1)
