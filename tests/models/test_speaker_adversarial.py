"""The speaker-adversarial term (loss.spk_adv; not in the paper): its value against the
cross-entropy written out with numpy, the reversed gradient, the rows without a speaker, and
its place in the objective."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pyadml.models.modality import SpeakerAdversarialLoss

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs" / "wsj_librikws" / "conf" / "train_tiny.yaml"


def reference(loss: SpeakerAdversarialLoss, x: np.ndarray, ids: np.ndarray) -> float:
    """-(1/n) sum_i log softmax(W2 relu(W1 u_i + b1) + b2)[id_i], u_i = x_i / ||x_i||, over the
    rows with id >= 0."""
    w1, b1, w2, b2 = (p.detach().double().numpy() for p in loss.classifier.parameters())
    keep = ids >= 0
    u = x[keep] / np.linalg.norm(x[keep], axis=1, keepdims=True)
    z = np.maximum(u @ w1.T + b1, 0) @ w2.T + b2
    logp = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    return float(-logp[np.arange(keep.sum()), ids[keep]].mean())


def test_value_is_the_cross_entropy_of_the_unit_rows_with_a_speaker():
    torch.manual_seed(0)
    loss = SpeakerAdversarialLoss(8, 3, hidden=16)
    x = np.random.default_rng(1).standard_normal((5, 8))
    ids = np.array([0, 2, -1, 1, 2])
    value, acc = loss(torch.tensor(x, dtype=torch.float32), torch.tensor(ids))
    assert float(value) == pytest.approx(reference(loss, x, ids), rel=1e-5)
    assert 0.0 <= acc <= 1.0
    # Scaling a row changes nothing: the classifier sees directions only.
    x2 = x.copy()
    x2[0] *= 7.0
    assert float(loss(torch.tensor(x2, dtype=torch.float32), torch.tensor(ids))[0]) == \
        pytest.approx(float(value), rel=1e-5)


def test_the_encoder_gets_the_reversed_gradient_and_the_classifier_the_plain_one():
    torch.manual_seed(0)
    loss = SpeakerAdversarialLoss(8, 3, hidden=16)
    x = torch.randn(5, 8, dtype=torch.float64).float().requires_grad_()
    ids = torch.tensor([0, 2, -1, 1, 2])
    value, _ = loss(x, ids)
    value.backward()
    g_rev = x.grad.clone()
    g_net = [p.grad.clone() for p in loss.classifier.parameters()]
    # The same cross-entropy without the GRL, by autograd on the written-out formula.
    x_plain = x.detach().clone().requires_grad_()
    for p in loss.classifier.parameters():
        p.grad = None
    keep = ids >= 0
    u = torch.nn.functional.normalize(x_plain[keep], dim=1)
    plain = torch.nn.functional.cross_entropy(loss.classifier(u), ids[keep])
    plain.backward()
    assert torch.allclose(g_rev, -x_plain.grad, atol=1e-7)
    assert torch.equal(g_rev[2], torch.zeros(8))  # the row without a speaker
    assert all(torch.allclose(a, p.grad) for a, p in zip(g_net, loss.classifier.parameters()))


def test_no_row_with_a_speaker_is_zero_in_the_graph_and_too_few_speakers_are_refused():
    loss = SpeakerAdversarialLoss(4, 2)
    x = torch.randn(3, 4, requires_grad=True)
    value, acc = loss(x, torch.tensor([-1, -1, -1]))
    assert float(value) == 0.0 and value.requires_grad and acc == 0.0
    with pytest.raises(ValueError, match="2 training speakers"):
        SpeakerAdversarialLoss(4, 1)


def test_the_objective_adds_the_weighted_term_and_keeps_it_out_of_the_model():
    from pyadml.bin.benchmark import _batch
    from pyadml.models.export import ENCODER_PREFIXES
    from pyadml.train.baseline_objective import build_objective
    from pyadml.train.config import load_config
    from pyadml.train.objective import KwsObjective

    overrides = ["loss.phn=asyp", "loss.mm=true", "loss.key=sphereface2"]
    batch = _batch(4, 2, 70, np.random.default_rng(0))
    batch["speaker_ids"] = torch.tensor([0, 1, 2, -1, 0, 1, 2, 2])
    out = {}
    for w in (0.0, 0.5):
        torch.manual_seed(0)
        obj = KwsObjective(load_config(TINY, overrides + [f"loss.spk_adv={w}"]), 70, 10, 3).eval()
        out[w] = obj(batch)
    (base, t0), (loss, t1) = out[0.0], out[0.5]
    assert "l_spk" not in t0 and t1["l_spk"] > 0 and 0.0 <= t1["spk_acc"] <= 1.0
    assert float(loss.detach()) == pytest.approx(float(base.detach()) + 0.5 * t1["l_spk"], rel=1e-6)
    assert obj.spk_adv.classifier.net[-1].out_features == 3
    assert not any(k.startswith(ENCODER_PREFIXES) for k in obj.state_dict() if "spk" in k)
    assert any("spk" in k for k in obj.state_dict())
    del batch["speaker_ids"]
    with pytest.raises(ValueError, match="speaker_ids"):
        obj(batch)
    for bad, n, match in (("-1", 3, "loss.spk_adv"), ("0.5", 1, "2 training")):
        with pytest.raises(ValueError, match=match):
            KwsObjective(load_config(TINY, overrides + [f"loss.spk_adv={bad}"]), 70, 10, n)
    with pytest.raises(ValueError, match="loss.spk_adv"):
        build_objective(load_config(TINY, ["model.head=phonmatchnet", "loss.spk_adv=0.5"]), 70, 10, 3)
