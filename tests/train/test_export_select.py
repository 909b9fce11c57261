"""Stage 7 chooses how many of the last epoch checkpoints to average by dev AP: checked against
the dev AP of each candidate average exported on its own and scored independently."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pyadml.train.checkpoints import load_checkpoint, save_checkpoint
from pyadml.train.config import load_config
from pyadml.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs" / "wsj_librikws" / "conf" / "train_tiny.yaml"


@pytest.fixture(scope="module")
def two_epochs(tiny_training_data, tmp_path_factory):
    """A tiny ADML run of 2 epochs whose first checkpoint is then spoiled (its encoder weights
    replaced by noise), so that averaging it in must lower dev AP."""
    data = tiny_training_data
    exp = tmp_path_factory.mktemp("select") / "exp"
    cfg = load_config(TINY, [f"data.train={data / 'train.jsonl.gz'}", f"data.dev={data / 'dev.jsonl.gz'}",
                             f"data.dev_trials={data / 'dev.tsv'}", f"data.lang={data / 'lang'}",
                             f"data.fbank_config={data / 'fbank.yaml'}", "batch.keywords=4",
                             "epochs=2", "average=2", "threads=1"])
    Trainer(cfg, exp).run()
    first = exp / "checkpoints" / "epoch-1.pt"
    state = load_checkpoint(first)
    gen = torch.Generator().manual_seed(0)
    for k, v in state["model"].items():
        if v.is_floating_point() and ("audio." in k or "text." in k) and "running" not in k:
            v.copy_(torch.randn(v.shape, generator=gen) * 3)
    state.pop("checksum", None)
    save_checkpoint(state, first.parent, first.name, keep=0)
    return exp, data


def _independent_dev_ap(model_path: Path, data: Path, floor_db: float | None = None) -> float:
    """Dev AP one trial at a time; ``floor_db``: each cut's features first raised to its
    maximum - floor_db * ln(10) / 10 (pyadml.score.floor's formula, written out here)."""
    from lhotse import CutSet

    from pyadml.data.dataset import mean_normalize
    from pyadml.data.trials import read_trials
    from pyadml.models.export import load_model
    from pyadml.score.metrics import average_precision

    loaded = load_model(model_path)
    trials = read_trials(data / "dev.tsv")
    cuts = {c.id: c for c in CutSet.from_file(data / "dev.jsonl.gz")}
    scores = []
    with torch.no_grad():  # one utterance and one keyword at a time: no batching, no caches
        for t in trials:
            f = cuts[t.cut_id].load_features()
            if floor_db is not None:
                f = np.maximum(f, f.max() - floor_db * np.log(10) / 10)
            f = torch.from_numpy(mean_normalize(f))[None]
            a = loaded.model.embed_audio(f).utt[0]
            p = torch.tensor([loaded.phone_ids(t.keyword)])
            e = loaded.model.embed_text(p).utt[0]
            scores.append(float(torch.nn.functional.cosine_similarity(a, e, dim=0)))
    return float(average_precision(np.array(scores), np.array([t.label for t in trials])))


def test_stage7_keeps_the_average_with_the_best_dev_ap(two_epochs, tmp_path):
    from pyadml.models.export import export_experiment, load_model

    exp, data = two_epochs
    ap = {}
    for n in (1, 2):
        export_experiment(exp, avg=n, out=tmp_path / f"last{n}.pt", select="last")
        ap[n] = _independent_dev_ap(tmp_path / f"last{n}.pt", data)
    assert ap[1] > ap[2], ap  # the spoiled first epoch must hurt, or the test shows nothing
    blob, summary = export_experiment(exp, out=tmp_path / "final.pt", select="dev")
    assert blob["meta"]["averaged"] == ["epoch-2.pt"]
    got = blob["meta"]["dev_ap_by_average"]
    assert got.keys() == {"1", "2"}
    assert got["1"] == pytest.approx(ap[1], abs=1e-6) and got["2"] == pytest.approx(ap[2], abs=1e-6)
    assert "chosen by dev AP" in summary
    final = load_model(tmp_path / "final.pt").model.state_dict()
    alone = load_model(tmp_path / "last1.pt").model.state_dict()
    assert all(torch.equal(final[k], alone[k]) for k in alone)


def test_last_and_a_missing_dev_set(two_epochs, tmp_path, monkeypatch):
    import yaml

    from pyadml.models.export import export_experiment

    exp, _ = two_epochs
    blob, _ = export_experiment(exp, out=tmp_path / "a.pt", select="last")
    assert blob["meta"]["averaged"] == ["epoch-1.pt", "epoch-2.pt"]
    assert "dev_ap_by_average" not in blob["meta"]
    # The training keywords travel as the T-norm cohort, in keywords.txt's order.
    want = [line.rsplit(maxsplit=1)[0] for line in (exp / "lang/keywords.txt").read_text().splitlines()]
    assert want and blob["cohort"] == want
    # A config whose dev set is not there: "auto" averages as told, "dev" names what is missing.
    moved = tmp_path / "exp"
    moved.mkdir()
    for name in ("checkpoints", "lang"):
        (moved / name).symlink_to(exp / name)
    (moved / "fbank.yaml").write_text((exp / "fbank.yaml").read_text())
    cfg = yaml.safe_load((exp / "config.yaml").read_text())
    cfg["data"]["dev"] = "data/fbank/nowhere_dev.jsonl.gz"
    (moved / "config.yaml").write_text(yaml.safe_dump(cfg))
    blob, _ = export_experiment(moved, out=tmp_path / "b.pt")
    assert blob["meta"]["averaged"] == ["epoch-1.pt", "epoch-2.pt"]
    with pytest.raises(FileNotFoundError, match="nowhere_dev"):
        export_experiment(moved, out=tmp_path / "c.pt", select="dev")
    with pytest.raises(ValueError, match="select"):
        export_experiment(exp, out=tmp_path / "d.pt", select="best")


def test_a_run_with_the_floor_is_checked_and_exported_with_it(tiny_training_data, tmp_path):
    """Training's floor_db reaches every later use: the dev AP after each epoch and stage 7's
    choice are scored with it (equal to a one-at-a-time scoring with the floor written out,
    not to one without), and final.pt's features carry it for scoring."""
    import json

    import yaml

    from pyadml.models.export import export_experiment, load_model

    data, exp = tiny_training_data, tmp_path / "exp"
    cfg = load_config(TINY, [f"data.train={data / 'train.jsonl.gz'}", f"data.dev={data / 'dev.jsonl.gz'}",
                             f"data.dev_trials={data / 'dev.tsv'}", f"data.lang={data / 'lang'}",
                             f"data.fbank_config={data / 'fbank.yaml'}", "batch.keywords=4",
                             "epochs=2", "average=2", "threads=1", "floor_db=20"])
    Trainer(cfg, exp).run()
    assert yaml.safe_load((exp / "fbank.yaml").read_text())["floor_db"] == 20.0
    blob, _ = export_experiment(exp, out=tmp_path / "final.pt", select="dev")
    export_experiment(exp, avg=1, out=tmp_path / "last1.pt", select="last")
    assert load_model(tmp_path / "final.pt").features["floor_db"] == 20.0
    want = _independent_dev_ap(tmp_path / "last1.pt", data, floor_db=20.0)
    assert want != pytest.approx(_independent_dev_ap(tmp_path / "last1.pt", data), abs=1e-4)
    assert blob["meta"]["dev_ap_by_average"]["1"] == pytest.approx(want, abs=1e-6)
    logged = [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]
    last = [r["dev_ap"] for r in logged if r.get("dev_ap") is not None][-1]
    assert last == pytest.approx(want, abs=1e-6)
