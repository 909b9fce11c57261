"""Moving averages of the training weights (ema.decays): the update against the formula
computed by hand, a shadow that leaves training unchanged, exact resumption, and stage 7's
export of an average."""

from pathlib import Path

import pytest
import torch
from torch import nn

from pyadml.models.export import export_experiment, load_model
from pyadml.train.checkpoints import latest_checkpoint, load_checkpoint
from pyadml.train.config import load_config
from pyadml.train.ema import EmaError, WeightAverages, check_decays, shadow_states
from pyadml.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs" / "wsj_librikws" / "conf" / "train_tiny.yaml"


def test_the_update_follows_the_formula_with_its_warm_up_ramp():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = WeightAverages(net, [0.9, 0.5])
    ref = [{k: v.double().clone() for k, v in net.state_dict().items() if v.is_floating_point()}
           for _ in range(2)]
    for t in range(6):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        net(torch.randn(4, 3))  # BN running statistics move too (train mode)
        ema.update()
        for r, decay in zip(ref, (0.9, 0.5)):
            d = min(decay, (1 + t) / (10 + t))  # 0.1, 0.18, 0.25, ... then the decay
            for k, v in net.state_dict().items():
                if v.is_floating_point():
                    r[k] = d * r[k] + (1 - d) * v.double()
    for i in range(2):
        avg = ema.averaged_state(i)
        for k, v in ref[i].items():
            assert torch.allclose(avg[k].double(), v, atol=1e-6), k
        # Integer buffers are the live ones.
        assert avg["1.num_batches_tracked"] == net.state_dict()["1.num_batches_tracked"] == 6
    assert ema.updates == [6, 6]


@pytest.mark.parametrize("bad", [[1.0], [0.0], [-0.5], ["0.9"], [True], [0.9, 0.9]])
def test_bad_decays_are_named(bad):
    with pytest.raises(EmaError, match="ema.decays"):
        check_decays(bad)


@pytest.fixture(scope="module")
def runs(tiny_training_data, tmp_path_factory):
    data = tiny_training_data
    root = tmp_path_factory.mktemp("ema")

    def cfg(**over):
        items = [f"data.train={data / 'train.jsonl.gz'}", f"data.dev={data / 'dev.jsonl.gz'}",
                 f"data.dev_trials={data / 'dev.tsv'}", f"data.lang={data / 'lang'}",
                 f"data.fbank_config={data / 'fbank.yaml'}", "batch.keywords=4", "epochs=2",
                 "threads=1", "average=2"]
        return load_config(TINY, items + [f"{k}={v}" for k, v in over.items()])

    Trainer(cfg(), root / "plain").run()
    Trainer(cfg(**{"ema.decays": "[0.3,0.05]"}), root / "ema").run()
    Trainer(cfg(**{"ema.decays": "[0.3,0.05]", "epochs": 1}), root / "split").run()
    Trainer(cfg(**{"ema.decays": "[0.3,0.05]"}), root / "split", resume=True).run()
    return root, data


def test_the_averages_leave_training_unchanged_and_resume_exactly(runs):
    root, _ = runs
    plain, ema, split = (load_checkpoint(latest_checkpoint(root / n / "checkpoints"))
                         for n in ("plain", "ema", "split"))
    assert all(torch.equal(plain["model"][k], ema["model"][k]) for k in plain["model"])
    assert plain["ema"] is None and ema["ema"]["decays"] == [0.3, 0.05]
    assert ema["ema"]["updates"] == split["ema"]["updates"] == [ema["step"]] * 2
    for a, b in zip(ema["ema"]["shadows"], split["ema"]["shadows"]):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # The average is not the last weights, and the short horizon is nearer to them.
    name = "audio.input_block.conv.weight"
    last = ema["model"][name]
    slow, fast = (s[name] for s in ema["ema"]["shadows"])
    assert (fast - last).norm() < (slow - last).norm() and (slow - last).norm() > 0
    metrics = (root / "ema" / "metrics.jsonl").read_text()
    assert metrics.count('"dev_ap_ema0.3"') == 2 and metrics.count('"dev_ap_ema0.05"') == 2


def test_stage_7_exports_an_average_by_name_or_by_dev_ap(runs):
    root, _ = runs
    exp = root / "ema"
    ckpt = load_checkpoint(latest_checkpoint(exp / "checkpoints"))
    shadow = shadow_states(ckpt)["ema0.3"]
    blob, summary = export_experiment(exp, out=root / "ema03.pt", weights="ema0.3")
    assert "ema0.3 moving average of epoch-2.pt" in summary and blob["meta"]["weights"] == "ema0.3"
    model = load_model(root / "ema03.pt").model.state_dict()
    for k, v in model.items():
        assert torch.equal(v, shadow[k].to(v.dtype)), k
    with pytest.raises(ValueError, match="no moving average 'ema0.99'.*ema0.05"):
        export_experiment(exp, out=root / "x.pt", weights="ema0.99")
    blob, summary = export_experiment(exp, out=root / "best.pt", select="dev")
    aps = blob["meta"]["dev_ap_by_average"]
    assert set(aps) == {"1", "2", "ema0.3", "ema0.05"}
    best = max(aps.values())
    # The largest checkpoint average wins a tie, then the smaller one, then the averages.
    winner = next(k for k in ("2", "1", "ema0.3", "ema0.05") if aps[k] == best)
    assert blob["meta"].get("weights", None) == (winner if winner.startswith("ema") else None)
    # A plain run's export has no averages to choose from.
    blob, _ = export_experiment(root / "plain", out=root / "plain.pt", select="dev")
    assert set(blob["meta"]["dev_ap_by_average"]) == {"1", "2"}
