"""The CUDA checks (utils/gpu_check.sh, loss_precision/benchmark --device cuda) refuse clearly on
a machine whose torch sees no GPU, naming what is missing; on a GPU they run (RESULTS.md)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "wsj_librikws"
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")


@no_cuda
def test_gpu_check_without_cuda_names_the_interpreter(tmp_path):
    names = {}
    for opt in ("train", "dev", "dev-trials", "fbank-config"):
        names[opt] = tmp_path / f"{opt}.txt"
        names[opt].write_text("x\n")
    (tmp_path / "lang").mkdir()
    args = ["bash", "utils/gpu_check.sh"]
    for opt, path in names.items():
        args += [f"--{opt}", str(path)]
    args += ["--lang", str(tmp_path / "lang"), str(tmp_path / "out")]
    r = subprocess.run(args, cwd=RECIPE, capture_output=True, text=True,
                       env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                            "PYTHON": sys.executable})
    assert r.returncode == 1, r.stderr
    assert "sees no CUDA device; set PYTHON to an interpreter with a CUDA build of torch" in r.stderr
    assert torch.__version__ in r.stderr
    assert not (tmp_path / "out").exists()  # nothing written before the checks pass

    # a missing input is named before anything runs
    missing = tmp_path / "nope.jsonl.gz"
    args[args.index(str(names["train"]))] = str(missing)
    r = subprocess.run(args, cwd=RECIPE, capture_output=True, text=True)
    assert r.returncode == 1 and f"no such file: {missing}" in r.stderr


@no_cuda
@pytest.mark.parametrize("module", ["pyadml.bin.loss_precision", "pyadml.bin.benchmark"])
def test_device_cuda_without_cuda_is_an_error(module):
    r = subprocess.run([sys.executable, "-m", module, "--device", "cuda"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "--device cuda: torch sees no CUDA device" in r.stderr
