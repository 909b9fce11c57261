"""TensorBoard scalars (pyadml.train.tensorboard): every logged value of metrics.jsonl is in the
event file, read back with TensorBoard's own reader; training without the package says so once;
and a Trainer run writes exp/tensorboard and reports its progress on the progress channel."""

import json
import logging
import sys

from pathlib import Path

import pytest

from pyadml.train import tensorboard as tb

TINY = Path(__file__).resolve().parents[2] / "egs" / "wsj_librikws" / "conf" / "train_tiny.yaml"

RECORDS = [
    {"epoch": 0, "step": 2, "lr": 1e-3, "utt_per_s": 40.0, "l_utt": 2.5, "asyp_utt": 2.0,
     "rpl_d": 0.1, "l_adv_utt": 0.69, "mal_acc_utt": 0.5, "adams_alpha_mean": 1.25,
     "grl_scale": 0.1, "loss": 3.2},
    {"epoch": 0, "step": 4, "lr": 1e-3, "utt_per_s": 44.0, "l_utt": 2.0, "asyp_utt": 1.5,
     "rpl_d": 0.2, "l_adv_utt": 0.68, "mal_acc_utt": 0.75, "adams_alpha_mean": 1.5,
     "grl_scale": 0.2, "loss": 2.7},
    {"epoch": 1, "step": 4, "dev_ap": 0.375, "epoch_seconds": 12.5},
    {"epoch": 2, "step": 8, "dev_ap": None, "epoch_seconds": 11.0},
]


def read_events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(log_dir))
    ea.Reload()
    return {tag: [(e.step, e.value) for e in ea.Scalars(tag)] for tag in ea.Tags()["scalars"]}


def test_tags_group_the_metrics():
    assert tb.scalars(RECORDS[0]) == {
        "train/lr": 1e-3, "train/utt_per_s": 40.0, "loss/l_utt": 2.5, "loss_parts/asyp_utt": 2.0,
        "loss_parts/rpl_d": 0.1, "loss/l_adv_utt": 0.69, "mal/mal_acc_utt": 0.5,
        "adams/alpha_mean": 1.25, "train/grl_scale": 0.1, "loss/loss": 3.2}
    assert tb.scalars(RECORDS[3]) == {"time/epoch_seconds": 11.0}  # a missing dev AP is left out


def test_the_event_file_holds_every_logged_scalar(tmp_path):
    pytest.importorskip("tensorboard")
    log = tb.ScalarLog(tmp_path / "tensorboard")
    for r in RECORDS:
        log.write(r)
    log.close()
    events = read_events(tmp_path / "tensorboard")
    assert events["loss/loss"] == [(2, pytest.approx(3.2)), (4, pytest.approx(2.7))]
    assert events["mal/mal_acc_utt"] == [(2, 0.5), (4, 0.75)]
    assert events["adams/alpha_mean"] == [(2, 1.25), (4, 1.5)]
    assert events["train/lr"] == [(2, pytest.approx(1e-3)), (4, pytest.approx(1e-3))]
    assert events["train/utt_per_s"] == [(2, 40.0), (4, 44.0)]
    assert events["dev/AP"] == [(4, 0.375)]
    expected = set().union(*(tb.scalars(r) for r in RECORDS))
    assert set(events) == expected


def test_without_tensorboard_training_goes_on_and_says_so_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    monkeypatch.setattr(tb, "_warned", False)
    logger = logging.getLogger("test.tb")
    with caplog.at_level(logging.INFO, logger="test.tb"):
        for _ in range(2):
            log = tb.ScalarLog(tmp_path / "tensorboard", log=logger)
            log.write(RECORDS[0])
            log.close()
    said = [r.getMessage() for r in caplog.records if "tensorboard is not installed" in r.getMessage()]
    assert len(said) == 1
    assert not (tmp_path / "tensorboard").exists()


def test_training_writes_tensorboard_and_console_progress(tiny_training_data, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from pyadml.train.config import load_config
    from pyadml.train.trainer import Trainer

    data = tiny_training_data
    progress = tmp_path / "stage6.log.progress"
    monkeypatch.setenv("PYADML_PROGRESS", str(progress))
    monkeypatch.setenv("PYADML_PROGRESS_TTY", "0")
    monkeypatch.setenv("PYADML_PROGRESS_INTERVAL", "0")
    cfg = load_config(TINY, [f"data.train={data / 'train.jsonl.gz'}", f"data.dev={data / 'dev.jsonl.gz'}",
                             f"data.dev_trials={data / 'dev.tsv'}", f"data.lang={data / 'lang'}",
                             f"data.fbank_config={data / 'fbank.yaml'}", "batch.keywords=4",
                             "epochs=1", "log_interval=1"])
    Trainer(cfg, tmp_path / "exp").run()
    records = [json.loads(l) for l in (tmp_path / "exp" / "metrics.jsonl").read_text().splitlines()]
    events = read_events(tmp_path / "exp" / "tensorboard")
    for r in records:
        for tag, value in tb.scalars(r).items():
            assert (r["step"], pytest.approx(value, rel=1e-6)) in events[tag], (tag, r)
    assert len(events["dev/AP"]) == 1 and "loss/l_utt" in events and "train/utt_per_s" in events

    lines = progress.read_text().splitlines()
    steps = [l for l in lines if l.startswith("   train, epoch")]
    assert steps and all(" steps (" in l and " | elapsed " in l for l in steps)
    assert any(" | loss " in l and " utt/s" in l and " | ETA " in l for l in steps)
    dev = [l for l in lines if l.startswith("   epoch ")]
    assert [l.split(" done")[0] for l in dev] == ["   epoch 1/1"]
    assert all("; dev AP 0." in l or "; dev AP 1." in l for l in dev)
