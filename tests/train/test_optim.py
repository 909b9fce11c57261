"""Optimiser groups, clipping scope and autocast choice (issue 13, items 1, 3, 7)."""

import pytest
import torch

from pyadml.train.config import load_config
from pyadml.train.objective import KwsObjective
from pyadml.train.optim import (amp_dtype, build_optimizer, check_grad_clip, clip_parameters,
                                grad_norm)

TINY = "egs/wsj_librikws/conf/train_tiny.yaml"
OVERRIDES = ["loss.phn=asyp", "loss.mm=true", "loss.mal_utt=true", "loss.mal_phn=true",
             "loss.key=sphereface2"]


def objective(*extra):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    return KwsObjective(load_config(root / TINY, OVERRIDES + list(extra)), 70, 10)


def test_defaults_are_the_papers_no_clipping_eq4_mal_and_fp32_on_cpu():
    cfg = load_config(None)
    assert cfg["optim"]["grad_clip"] is None and cfg["optim"]["grad_clip_scope"] == "encoders"
    assert cfg["loss"]["mal_opts"]["reduction"] == "sum" and cfg["amp"] == "auto"
    assert amp_dtype("auto", torch.device("cpu")) is None
    assert amp_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert amp_dtype(False, torch.device("cpu")) is None and amp_dtype("none", torch.device("cpu")) is None
    with pytest.raises(ValueError, match="amp"):
        amp_dtype("int8", torch.device("cpu"))
    with pytest.raises(ValueError, match="grad_clip"):
        check_grad_clip(-1.0)


def test_scales_have_their_own_group_and_stay_out_of_the_encoder_clip():
    obj = objective("optim.adams_lr=0.01")
    opt = build_optimizer(obj, {"lr": 1e-4, "weight_decay": 1e-5, "adams_lr": 0.01})
    scales = {id(p) for p in obj.phn_loss.no_weight_decay_parameters()}
    assert {id(p) for p in opt.param_groups[1]["params"]} == scales
    assert opt.param_groups[1]["weight_decay"] == 0.0 and opt.param_groups[1]["lr"] == 0.01
    assert opt.param_groups[0]["lr"] == 1e-4 and opt.param_groups[0]["weight_decay"] == 1e-5
    enc = clip_parameters(obj, "encoders")
    names = {id(p): n for n, p in obj.named_parameters()}
    assert enc and all(names[id(p)].startswith(("audio.", "text.")) for p in enc)
    assert not scales & {id(p) for p in enc}
    assert len(clip_parameters(obj, "all")) == len(list(obj.parameters()))
    with pytest.raises(ValueError, match="scope"):
        clip_parameters(obj, "heads")


def test_grad_norm_clips_only_when_asked():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.full((4,), 3.0)  # norm 6
    assert float(grad_norm([p], None)) == pytest.approx(6.0) and torch.equal(p.grad, torch.full((4,), 3.0))
    assert float(grad_norm([p], 1.5)) == pytest.approx(6.0)
    assert float(p.grad.norm()) == pytest.approx(1.5, rel=1e-5)


def test_the_objective_under_cpu_bf16_autocast_returns_a_float32_loss():
    import numpy as np

    from pyadml.bin.benchmark import _batch

    obj = objective()
    batch = _batch(4, 2, 70, np.random.default_rng(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, terms = obj(batch)
    assert loss.dtype == torch.float32 and np.isfinite(terms["loss"])
    loss.backward()
    assert obj.phn_loss.alpha_raw.grad.dtype == torch.float32
