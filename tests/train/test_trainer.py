import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pyadml.train.checkpoints import latest_checkpoint
from pyadml.train.config import load_config
from pyadml.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs" / "wsj_librikws" / "conf" / "train_tiny.yaml"


@pytest.fixture(scope="module")
def data(tiny_training_data):
    return tiny_training_data


def config(data, **overrides):
    items = [f"data.train={data / 'train.jsonl.gz'}", f"data.dev={data / 'dev.jsonl.gz'}",
             f"data.dev_trials={data / 'dev.tsv'}", f"data.lang={data / 'lang'}", f"data.fbank_config={data / 'fbank.yaml'}",
             "batch.keywords=4", "epochs=2", "log_interval=1"]
    items += [f"{k}={v}" for k, v in overrides.items()]
    return load_config(TINY, items)


def weights(exp):
    state = torch.load(latest_checkpoint(Path(exp) / "checkpoints"), map_location="cpu", weights_only=False)
    return state["model"]


def test_config_rejects_unknown_keys(tmp_path):
    with pytest.raises(KeyError, match="optim.lrr"):
        load_config(TINY, ["optim.lrr=1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  audio:\n    chanels: 3\n")
    with pytest.raises(KeyError, match="model.audio.chanels"):
        load_config(bad)
    with pytest.raises(ValueError, match="key=value"):
        load_config(TINY, ["epochs"])


def test_training_writes_config_checkpoints_metrics_and_logs(data, tmp_path):
    Trainer(config(data), tmp_path / "exp").run()
    exp = tmp_path / "exp"
    saved = yaml.safe_load((exp / "config.yaml").read_text())
    assert saved["batch"]["keywords"] == 4 and saved["data"]["train"].endswith("train.jsonl.gz")
    assert sorted(p.name for p in (exp / "checkpoints").glob("*.pt")) == ["epoch-1.pt", "epoch-2.pt"]
    records = [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "l_utt" in r]
    assert steps and all({"asyp_utt", "rpl_d", "rpl_a", "rpl_p", "utt_per_s", "lr"} <= set(r) for r in steps)
    dev = [r["dev_ap"] for r in records if "dev_ap" in r]
    assert len(dev) == 2 and all(0.0 < ap <= 1.0 for ap in dev)
    assert "epoch 2 done" in (exp / "log" / "train.rank0.log").read_text()


def test_resume_at_an_epoch_boundary_is_exact(data, tmp_path):
    Trainer(config(data), tmp_path / "full").run()
    Trainer(config(data, epochs=1), tmp_path / "split").run()
    Trainer(config(data), tmp_path / "split", resume=True).run()
    full, split = weights(tmp_path / "full"), weights(tmp_path / "split")
    assert all(torch.equal(full[k], split[k]) for k in full)


def test_one_loader_worker_for_the_run_trains_as_a_loader_made_each_epoch(data, tmp_path,
                                                                          monkeypatch):
    """The loader's worker is forked once for the run (persistent), and the weights and the
    global RNG after two epochs equal those of a loader whose worker starts afresh every
    epoch (as before): a fresh one draws its worker seed from the global RNG each epoch."""
    trainer = Trainer(config(data, num_workers=1), tmp_path / "persistent")
    trainer.run()
    assert trainer._loader.persistent_workers
    persistent, rng = weights(tmp_path / "persistent"), torch.get_rng_state()

    class FreshEachEpoch(torch.utils.data.DataLoader):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "persistent_workers": False})

    monkeypatch.setattr(torch.utils.data, "DataLoader", FreshEachEpoch)
    Trainer(config(data, num_workers=1), tmp_path / "fresh").run()
    fresh = weights(tmp_path / "fresh")
    assert all(torch.equal(persistent[k], fresh[k]) for k in fresh)
    assert torch.equal(rng, torch.get_rng_state())


class Crash(RuntimeError):
    pass


def test_resume_mid_epoch_is_exact(data, tmp_path, monkeypatch):
    Trainer(config(data), tmp_path / "full").run()
    trainer = Trainer(config(data, checkpoint_every_steps=2), tmp_path / "crash")
    real_save = trainer.save

    def save_then_crash(name, batches_done):
        real_save(name, batches_done)
        if trainer.step == 4:  # mid-way through epoch 2 (3 batches per epoch)
            raise Crash()

    monkeypatch.setattr(trainer, "save", save_then_crash)
    with pytest.raises(Crash):
        trainer.run()
    assert latest_checkpoint(tmp_path / "crash" / "checkpoints").name == "step-4.pt"
    Trainer(config(data, checkpoint_every_steps=2), tmp_path / "crash", resume=True).run()
    full, resumed = weights(tmp_path / "full"), weights(tmp_path / "crash")
    assert all(torch.equal(full[k], resumed[k]) for k in full)


@pytest.mark.slow
def test_two_gloo_processes_via_torchrun(data, tmp_path):
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", OMP_NUM_THREADS="1")
    overrides = [f"data.train={data / 'train.jsonl.gz'}", f"data.dev={data / 'dev.jsonl.gz'}",
                 f"data.dev_trials={data / 'dev.tsv'}", f"data.lang={data / 'lang'}", f"data.fbank_config={data / 'fbank.yaml'}",
                 "batch.keywords=2", "epochs=1", "threads=1"]
    res = subprocess.run(["bash", "steps/train.sh", "--nproc-per-node", "2", str(TINY),
                          str(tmp_path / "ddp"), *overrides],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "torchrun --standalone" in res.stdout
    for rank in (0, 1):
        assert "world 2" in (tmp_path / "ddp/log/train.rank0.log").read_text()
        assert (tmp_path / f"ddp/log/train.rank{rank}.log").exists()
    assert (tmp_path / "ddp/checkpoints/epoch-1.pt").exists()


def test_full_adml_objective_trains_logs_every_term_and_keeps_adams_in_bounds(data, tmp_path):
    cfg = config(data, **{"loss.phn": "asyp", "loss.mm": "true", "loss.mal_utt": "true",
                          "loss.mal_phn": "true", "loss.key": "sphereface2", "epochs": 1,
                          "optim.lr": 0.05, "loss.mal_opts.normalize": "true",
                          "loss.mal_opts.grl_warmup": "dann"})
    trainer = Trainer(cfg, tmp_path / "adml")
    scales = {k: v.detach().clone() for k, v in trainer.objective.phn_loss.named_parameters()}
    trainer.run()
    records = [json.loads(l) for l in (tmp_path / "adml" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    for key in ("l_utt", "l_mm", "l_phn", "l_adv_phn", "l_adv_utt", "l_key", "mal_acc_phn",
                "mal_acc_utt", "adams_alpha_mean", "adams_lam_max"):
        assert all(key in r for r in steps), key
    # log_interval=1: each record's GRL factor is the DANN ramp at the step's start
    from pyadml.models.modality import dann_grl_scale
    for r in steps:
        assert r["grl_scale"] == pytest.approx(dann_grl_scale((r["step"] - 1) / len(steps)))
    phn = trainer.objective.phn_loss
    assert any(not torch.equal(scales[k], v) for k, v in phn.named_parameters())  # AdaMS learns
    alpha, beta, lam = (v.detach() for v in (phn.alpha, phn.beta, phn.lam))
    assert 1e-3 <= float(alpha.min()) <= float(alpha.max()) <= 1.0
    assert 0.1 <= float(beta.min()) and float(lam.abs().max()) <= 1.0
    decay = {id(p): g["weight_decay"] for g in trainer.optimizer.param_groups for p in g["params"]}
    assert decay[id(phn.alpha_raw)] == 0.0 and decay[id(trainer.objective.audio.parameters().__next__())] > 0
    # the scales are never clipped with the encoders (optim.grad_clip_scope: encoders)
    assert id(phn.alpha_raw) not in {id(p) for p in trainer.clip_params}
    # the exported model keeps the encoders only
    state = torch.load(tmp_path / "adml" / "checkpoints" / "epoch-1.pt", weights_only=False)["model"]
    assert any(k.startswith("key_loss.") for k in state) and any(k.startswith("xattn.") for k in state)


@pytest.mark.parametrize("path", sorted((ROOT / "egs/wsj_librikws/conf/ablation").glob("*.yaml"))
                         + sorted((ROOT / "egs/wsj_librikws/conf").glob("train_*.yaml")), ids=lambda p: p.name)
def test_every_training_config_builds_its_objective(path):
    from pyadml.train.objective import KwsObjective

    cfg = load_config(path)
    obj = KwsObjective(cfg, 70, 10)
    assert (obj.phn_loss is None) == (cfg["loss"]["phn"] == "none")
    assert (obj.key_loss is None) == (cfg["loss"]["key"] == "none")


def test_base_configs_layer_and_cycles_fail(tmp_path):
    mini = load_config(ROOT / "egs/wsj_librikws/conf/train_rp_mini.yaml")
    row = load_config(ROOT / "egs/wsj_librikws/conf/ablation/table2_mal_utt.yaml")
    assert row["loss"]["mal_utt"] and {k: v for k, v in row.items() if k != "loss"} == {
        k: v for k, v in mini.items() if k != "loss"}
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_a_base_file_that_is_not_there_names_the_yaml_that_names_it(tmp_path):
    # A user's conf/my.yaml with base: conf/train_tiny.yaml (relative to the recipe, not to
    # conf/). Before: `training config …/conf/conf/train_tiny.yaml does not exist`, naming
    # neither my.yaml nor what the path is relative to; a list as base: a TypeError traceback.
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "my.yaml").write_text("base: conf/train_tiny.yaml\nepochs: 1\n")
    with pytest.raises(FileNotFoundError, match=r"conf/my.yaml: its base file .*conf/conf/"
                                                r"train_tiny.yaml does not exist \(base: "
                                                r"'conf/train_tiny.yaml' is relative to .*conf\)"):
        load_config(conf / "my.yaml")
    (conf / "my.yaml").write_text("base: [a.yaml, b.yaml]\n")
    with pytest.raises(ValueError, match=r"my.yaml: base must name one yaml file"):
        load_config(conf / "my.yaml")
    (conf / "my.yaml").write_text(f"base: {TINY}\nepochs: 1\n")
    assert load_config(conf / "my.yaml")["epochs"] == 1


def test_benchmark_times_the_full_adml_step(capsys):
    # It used to fail on any config with a keyword classification loss.
    from pyadml.bin.benchmark import bench_training

    cfg = load_config(TINY, ["loss.phn=asyp", "loss.mm=true", "loss.mal_utt=true",
                             "loss.mal_phn=true", "loss.key=sphereface2"])
    bench_training(cfg, repeat=1)
    out = capsys.readouterr().out
    assert "full step" in out and "training batch 8x2" in out


def test_the_experiment_holds_what_later_stages_read(data, tmp_path):
    Trainer(config(data, epochs=1), tmp_path / "exp").run()
    exp = tmp_path / "exp"
    for name in ("phones.txt", "lexicon.txt", "g2p.yaml", "keywords.txt"):
        assert (exp / "lang" / name).read_bytes() == (data / "lang" / name).read_bytes()
    assert yaml.safe_load((exp / "fbank.yaml").read_text()) == {"num_mel_bins": 40, "mean_norm": True}


@pytest.mark.parametrize("key, value, message", [
    ("data.train", "", "data.train is not set"),
    ("data.dev", "nowhere/dev_set.jsonl.gz", "data.dev: expected the file nowhere/dev_set.jsonl.gz"),
    ("data.fbank_config", "nowhere.yaml", "data.fbank_config: expected the file nowhere.yaml"),
])
def test_a_data_path_that_stage_6_got_wrong_is_named(data, tmp_path, key, value, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        Trainer(config(data, **{key: value}), tmp_path / "exp")


def test_features_made_with_other_fbank_options_than_data_fbank_config_are_named(data, tmp_path):
    # The experiment hands data.fbank_config to scoring (exp/<tag>/fbank.yaml, final.pt). Before:
    # training features at a 20 ms shift trained beside the recipe's 10 ms conf/fbank.yaml, and
    # the model was then scored on 10 ms features it never saw; 80-bin features with a 40-bin
    # fbank yaml trained (input_dim=80) and failed only at scoring, `feats must be (N, T, 80),
    # got (1, 38, 40)`; with input_dim 40, at the first step without naming the key.
    from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter

    def features(name, **opts):
        out = tmp_path / f"{name}.jsonl.gz"
        CutSet.from_file(data / "train.jsonl.gz").drop_features().compute_and_store_features(
            Fbank(FbankConfig(**opts)), tmp_path / name, storage_type=LilcomChunkyWriter).to_file(out)
        return out

    shift20 = features("shift20", num_mel_bins=40, frame_shift=0.02)
    with pytest.raises(ValueError, match=r"data.train: the features of .*shift20.jsonl.gz \(cut "
                                         r"\w+: frame shift 0.02\) were not made with the fbank "
                                         r"options of data.fbank_config=.*fbank.yaml \(frame_shift: 0.01\)"):
        Trainer(config(data, **{"data.train": shift20}), tmp_path / "exp")
    assert not (tmp_path / "exp" / "fbank.yaml").exists()
    bins80 = features("bins80", num_mel_bins=80)
    with pytest.raises(ValueError, match=r"cut \w+: mel bins 80\) .*\(num_mel_bins: 40\)"):
        Trainer(config(data, **{"data.train": bins80, "model.audio.input_dim": 80}), tmp_path / "exp")
    fbank80 = tmp_path / "fbank80.yaml"
    fbank80.write_text("num_mel_bins: 80\n")
    with pytest.raises(ValueError, match=r"data.dev: the features of .*dev.jsonl.gz \(cut \w+: mel "
                                         r"bins 40\) .*\(num_mel_bins: 80\)"):
        Trainer(config(data, **{"data.train": bins80, "data.fbank_config": fbank80,
                                "model.audio.input_dim": 80}), tmp_path / "exp")
    with pytest.raises(ValueError, match=r"model.audio.input_dim=40, but the features of data.train "
                                         r".* have 80 mel bins; set model.audio.input_dim=80"):
        Trainer(config(data, **{"data.train": bins80, "data.fbank_config": fbank80, "data.dev": "",
                                "data.dev_trials": ""}), tmp_path / "exp")
    # Named consistently, they train, and the dataset counts stage 3's context in 20 ms frames.
    fbank20 = tmp_path / "fbank20.yaml"
    fbank20.write_text("num_mel_bins: 40\nframe_shift: 0.02\n")
    t = Trainer(config(data, **{"data.train": shift20, "data.fbank_config": fbank20, "data.dev": "",
                                "data.dev_trials": ""}), tmp_path / "exp")
    assert t.dataset.frame_shift == 0.02


def flip_tensor_bytes(path, tensor):
    """Flip bytes inside a tensor's stored data, where torch.load (which does not check the
    zip CRCs) still reads the file: only the checksum can notice."""
    raw = bytearray(path.read_bytes())
    data = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    at = raw.find(data)
    assert at >= 0
    n = min(4096, len(data))
    raw[at:at + n] = bytes(b ^ 0xFF for b in raw[at:at + n])
    path.write_bytes(bytes(raw))


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one(data, tmp_path):
    Trainer(config(data), tmp_path / "full").run()
    exp = tmp_path / "exp"
    Trainer(config(data, epochs=1), exp).run()
    assert (exp / "checkpoints/.epoch-1.pt.x.tmp").write_bytes(b"half") == 4  # a killed write
    Trainer(config(data), exp, resume=True).run()
    latest = exp / "checkpoints" / "epoch-2.pt"
    from pyadml.checksum import CorruptFile
    from pyadml.train.checkpoints import load_checkpoint
    state = load_checkpoint(latest)
    big = max(state["model"].values(), key=lambda t: t.numel())
    flip_tensor_bytes(latest, big)
    with pytest.raises(CorruptFile, match="epoch-2.pt: checksum mismatch"):
        load_checkpoint(latest)
    # Resume skips it with a warning that names it and trains epoch 2 again from epoch 1.
    Trainer(config(data), exp, resume=True).run()
    log = (exp / "log/train.rank0.log").read_text()
    assert "skipping checkpoint" in log and "epoch-2.pt: checksum mismatch" in log
    full, again = weights(tmp_path / "full"), weights(exp)
    assert all(torch.equal(full[k], again[k]) for k in full)
    assert not list((exp / "checkpoints").glob("*.tmp"))  # the killed write's leftover is gone
    # metrics.jsonl holds each step once, however often it was resumed.
    steps = [json.loads(l)["step"] for l in (exp / "metrics.jsonl").read_text().splitlines()
             if "l_utt" in json.loads(l)]
    assert steps == sorted(set(steps)) and steps == list(range(1, max(steps) + 1))


def test_a_resume_picks_the_checkpoint_with_the_latest_step_whatever_the_file_times(data, tmp_path):
    # A copied experiment (cp -r without -p) has file times in copy order: here epoch-1.pt is
    # the newest file. The resume must still continue from epoch 2, not train it again.
    exp = tmp_path / "exp"
    Trainer(config(data), exp).run()
    ckpts = exp / "checkpoints"
    later = ckpts.joinpath("epoch-2.pt").stat().st_mtime + 100
    os.utime(ckpts / "epoch-1.pt", (later, later))
    assert latest_checkpoint(ckpts).name == "epoch-2.pt"
    before = weights(exp)
    Trainer(config(data, epochs=3), exp, resume=True).run()
    log = (exp / "log/train.rank0.log").read_text()
    assert "resumed from" in log and "epoch-2.pt" in log.split("resumed from")[-1].splitlines()[0]
    assert latest_checkpoint(ckpts).name == "epoch-3.pt"
    assert not all(torch.equal(before[k], weights(exp)[k]) for k in before)
    # An unreadable file (no step to read) is tried last, after every readable one.
    (ckpts / "step-999.pt").write_bytes(b"not a checkpoint")
    assert latest_checkpoint(ckpts).name == "epoch-3.pt"


def test_a_resume_with_another_config_names_the_keys_or_applies_them(data, tmp_path):
    from pyadml.train.trainer import ConfigChanged

    exp = tmp_path / "exp"
    Trainer(config(data, epochs=1), exp).run()
    with pytest.raises(ConfigChanged, match=r"optim.lr: 0.001 -> 0.5"):
        Trainer(config(data, **{"optim.lr": 0.5}), exp, resume=True)
    # More epochs is not a change of what is trained.
    Trainer(config(data, epochs=2), exp, resume=True)
    t = Trainer(config(data, **{"optim.lr": 0.5}), exp, resume=True, allow_config_change=True)
    assert t.epoch == 1 and t.optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * 0.5)  # gamma^1
    t.run()
    assert yaml.safe_load((exp / "config.yaml").read_text())["optim"]["lr"] == 0.5
    change = json.loads((exp / "config_changes.jsonl").read_text().splitlines()[0])
    assert change["changes"]["optim.lr"] == [0.001, 0.5] and change["epoch"] == 1


def test_a_refused_resume_leaves_the_experiment_s_feature_options_and_lang_as_trained(data, tmp_path):
    # Before: the lang directory and fbank.yaml were copied before the resume's config check,
    # so a refused resume (floor_db added) left fbank.yaml with floor_db 50 beside checkpoints
    # trained without it, and stage 7 exported a model scored with a floor it never saw.
    from pyadml.train.trainer import ConfigChanged

    exp = tmp_path / "exp"
    Trainer(config(data, epochs=1), exp).run()
    before = {p: p.read_bytes() for p in [exp / "fbank.yaml", *sorted((exp / "lang").iterdir())]}
    other = tmp_path / "fbank_other.yaml"
    other.write_text("num_mel_bins: 40\ndither: 0.0\n")
    with pytest.raises(ConfigChanged, match=r"floor_db: None -> 50"):
        Trainer(config(data, floor_db=50, **{"data.fbank_config": other}), exp, resume=True)
    assert {p: p.read_bytes() for p in before} == before
    # Resumed with the new values, the experiment says what it now trains with.
    Trainer(config(data, floor_db=50), exp, resume=True, allow_config_change=True)
    assert yaml.safe_load((exp / "fbank.yaml").read_text())["floor_db"] == 50.0


def test_a_run_without_resume_into_an_experiment_with_checkpoints_is_refused(data, tmp_path):
    # Before: the second run (1 epoch, another lr) overwrote epoch-1.pt and left the first
    # run's epoch-2.pt, and stage 7 exported that epoch of the first run under the second's
    # config.yaml; metrics.jsonl held both runs.
    exp = tmp_path / "exp"
    Trainer(config(data), exp).run()
    kept = {p: p.read_bytes() for p in [exp / "config.yaml", exp / "metrics.jsonl",
                                        *sorted((exp / "checkpoints").iterdir())]}
    with pytest.raises(ValueError, match=r"holds the checkpoints of an earlier run \(epoch-1.pt, "
                                         r"epoch-2.pt in .*--resume true.*--fresh true"):
        Trainer(config(data, epochs=1, **{"optim.lr": 0.01}), exp)
    assert {p: p.read_bytes() for p in kept} == kept
    Trainer(config(data, epochs=1, **{"optim.lr": 0.01}), exp, fresh=True)  # as it says


def test_a_run_that_died_before_its_first_checkpoint_leaves_no_records_to_the_next(data, tmp_path):
    # Before: the rerun appended to the dead run's metrics.jsonl, so every step was logged
    # twice (and stage 8's training curves drew both runs as one).
    ref, exp = tmp_path / "ref", tmp_path / "exp"
    Trainer(config(data, epochs=1), ref).run()
    Trainer(config(data, epochs=1), exp).run()
    shutil.rmtree(exp / "checkpoints")  # as if killed while saving epoch-1.pt
    (exp / "metrics.jsonl").write_text((exp / "metrics.jsonl").read_text() + '{"step": 3, "l')

    def steps(path):
        return [(r.get("step"), r.get("epoch"), "dev_ap" in r)
                for r in map(json.loads, path.read_text().splitlines())]

    for resume in (True, False):  # stage 6's --resume, and a plain steps/train.sh
        Trainer(config(data, epochs=1), exp, resume=resume).run()
        assert steps(exp / "metrics.jsonl") == steps(ref / "metrics.jsonl")
        shutil.rmtree(exp / "checkpoints")


def test_a_training_set_of_too_few_keywords_for_a_batch_is_named(data, tmp_path):
    # Before: "only 8 keywords have a full group ..." without the set it was about.
    with pytest.raises(ValueError, match=rf"data.train {data / 'train.jsonl.gz'} \(32 word cuts\): "
                                         rf"only 8 keywords .* a batch needs 9 distinct keywords"):
        Trainer(config(data, **{"batch.keywords": 9}), tmp_path / "exp")


def test_vtlp_over_another_mel_range_than_the_features_is_refused(data, tmp_path):
    # Before: features of 20-3800 Hz (8 kHz speech kept at 16 kHz) were warped as 20-7600 Hz.
    fbank = tmp_path / "fbank.yaml"
    fbank.write_text((data / "fbank.yaml").read_text() + "high_freq: -4200\n")
    opts = {"data.fbank_config": fbank, "vtlp.prob": 0.5}
    with pytest.raises(ValueError, match=rf"vtlp.low_freq / vtlp.high_freq are 20 / 7600 Hz, but "
                                         rf"the features of data.fbank_config={fbank} span "
                                         rf"20-3800 Hz; set vtlp.low_freq=20 vtlp.high_freq=3800"):
        Trainer(config(data, **opts), tmp_path / "a")
    Trainer(config(data, **opts, **{"vtlp.high_freq": 3800}), tmp_path / "b")
    Trainer(config(data, **{"data.fbank_config": fbank}), tmp_path / "c")  # no VTLP: no matter


def test_fresh_moves_the_previous_run_aside(data, tmp_path):
    exp = tmp_path / "exp"
    Trainer(config(data, epochs=1), exp).run()
    Trainer(config(data, epochs=1, **{"optim.lr": 0.5}), exp, resume=True, fresh=True).run()
    assert (exp / "previous/1/checkpoints/epoch-1.pt").is_file()
    assert (exp / "previous/1/metrics.jsonl").is_file()
    assert yaml.safe_load((exp / "config.yaml").read_text())["optim"]["lr"] == 0.5


def test_config_values_are_type_checked_naming_the_key(data, tmp_path):
    with pytest.raises(TypeError, match=r"config key optim.lr: expected a number.*'abc'"):
        config(data, **{"optim.lr": "abc"})
    assert config(data, **{"optim.lr": "1e-4"})["optim"]["lr"] == 1e-4  # yaml reads 1e-4 as a string
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {TINY}\nepochs: two\n")
    with pytest.raises(TypeError, match=r"bad.yaml: config key epochs: expected an integer"):
        load_config(bad)


def test_list_elements_and_the_epoch_count_are_checked_naming_the_key(data):
    # Before: [3, x, 3] failed in the model with "invalid literal for int()", [3, 3.5, 3]
    # trained with 3, and epochs=0 trained nothing and left stage 7 no checkpoint to export.
    for value, shown in (("[3, x, 3]", "'x'"), ("[3, 3.5, 3]", "3.5"), ("[3, true, 3]", "True")):
        with pytest.raises(TypeError, match=rf"config key model.audio.kernel_sizes: expected a "
                                            rf"list of integers .*\({shown} is not one\)"):
            config(data, **{"model.audio.kernel_sizes": value})
    assert config(data, **{"model.audio.dilations": "[1, 2, 5]"})["model"]["audio"]["dilations"] == [1, 2, 5]
    for epochs in (0, -2):
        with pytest.raises(ValueError, match=rf"train_tiny.yaml: config key epochs: expected 1 or "
                                             rf"more, got {epochs}"):
            config(data, epochs=epochs)


def test_keys_whose_default_is_null_are_type_checked_too(data):
    # Before: a key whose default is null took any value: loss.phn_opts.adams=flase (a typo of
    # false) was the string 'flase', which build_phoneme_loss read as true (learnable AdaMS
    # scales); optim.adams_lr=abc failed at the optimiser without naming the key.
    with pytest.raises(TypeError, match=r"config key loss.phn_opts.adams: expected true or false "
                                        r"or null \(the default\), got 'flase'"):
        config(data, **{"loss.phn_opts.adams": "flase"})
    with pytest.raises(TypeError, match=r"config key optim.adams_lr: expected a number or null"):
        config(data, **{"optim.adams_lr": "abc"})
    cfg = config(data, **{"loss.phn_opts.adams": "false", "optim.adams_lr": "1e-3"})
    assert cfg["loss"]["phn_opts"]["adams"] is False and cfg["optim"]["adams_lr"] == 1e-3
    assert config(data, **{"optim.adams_lr": 2})["optim"]["adams_lr"] == 2.0
    assert config(data)["loss"]["phn_opts"]["adams"] is None


def test_a_second_trainer_of_the_same_experiment_is_refused(data, tmp_path):
    from pyadml.train.distributed import ExperimentLock, LockHeld

    exp = tmp_path / "exp"
    code = ("import sys, time; from pyadml.train.distributed import ExperimentLock; "
            f"l = ExperimentLock({str(exp / '.train.lock')!r}); print('held', flush=True); time.sleep(30)")
    holder = subprocess.Popen([str(ROOT / ".venv/bin/python"), "-c", code], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match=rf"being trained by pid {holder.pid}"):
            Trainer(config(data, epochs=1), exp)
    finally:
        holder.kill()
        holder.wait()
    Trainer(config(data, epochs=1), exp)  # free again once the holder is gone
    assert ExperimentLock  # imported for the reader: the lock class the trainer takes


@pytest.mark.slow
def test_steps_train_sh_says_why_training_failed(data, tmp_path):
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}", OMP_NUM_THREADS="1")
    overrides = [f"data.train={data / 'train.jsonl.gz'}", f"data.lang={data / 'lang'}",
                 f"data.fbank_config={data / 'fbank.yaml'}", "optim.lr=abc"]
    res = subprocess.run(["bash", "steps/train.sh", str(TINY), str(tmp_path / "bad"), *overrides],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert "training failed: " in last and "config key optim.lr" in last and "'abc'" in last
    assert "train.rank0.log" in last


def test_near_miss_texts_train_and_reach_each_row(data, tmp_path):
    """loss.text_negatives: the loss is logged, and each row's near misses are those the dataset
    drew for that row's own text (checked one text at a time through the text encoder)."""
    from pyadml.data.dataset import KeywordDataset
    from pyadml.text import Tokenizer
    from pyadml.train.objective import KwsObjective

    cfg = config(data, epochs=1, **{"loss.text_negatives.count": 2})
    Trainer(cfg, tmp_path / "exp").run()
    records = [json.loads(line) for line in (tmp_path / "exp" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "l_utt" in r]
    assert steps and all(r["l_tn"] > 0 for r in steps)

    tok = Tokenizer.from_lang_dir(data / "lang")
    from lhotse import CutSet

    cuts = CutSet.from_file(data / "train.jsonl.gz").to_eager()
    ds = KeywordDataset(cuts, tok, text_negatives=cfg["loss"]["text_negatives"], seed=3)
    ids = [c.id for c in cuts][::3]
    batch = ds[ids]
    torch.manual_seed(0)
    obj = KwsObjective(cfg, len(tok.phone_table), 8).eval()
    rows = torch.as_tensor(np.unique(np.asarray(batch["texts"]), return_inverse=True)[1])
    with torch.no_grad():
        got = obj.near_miss_rows(batch, rows)
        for i, text in enumerate(batch["texts"]):
            k = batch["neg_texts"].index(text)
            for c in range(2):
                r = 2 * k + c
                n = int(batch["neg_phone_lens"][r])
                _, want, _ = obj.text(batch["neg_phones"][r:r + 1, :n], batch["neg_phone_lens"][r:r + 1])
                assert torch.allclose(got[i, c], want[0], atol=1e-5)
    with pytest.raises(ValueError, match="no near-miss texts"):
        obj.near_miss_rows({k: v for k, v in batch.items() if not k.startswith("neg_")}, rows)


def test_batches_of_phonetic_neighbours(data, tmp_path):
    """batch.neighbours=2 with neighbour_pool=1: each run is a keyword and its one nearest
    training word, found here by brute force over the lexicon's phones; training runs."""
    import kaldialign

    from pyadml.data.sampler import KeywordBatchSampler

    cfg = config(data, epochs=1, **{"batch.neighbours": 2, "batch.neighbour_pool": 1})
    tr = Trainer(cfg, tmp_path / "exp")
    s = tr.sampler
    assert isinstance(s, KeywordBatchSampler) and s.bundle == 2
    phones = {k: tr.dataset.phone_ids(k) for k in s.keywords}
    for i, k in enumerate(s.keywords):
        d = {n: kaldialign.edit_distance(phones[k], p)["total"] for n, p in phones.items()
             if n != k and p != phones[k]}
        assert [s.keywords[j] for j in s._near[i]][0] in {n for n in d if d[n] == min(d.values())}
    tr.run()
    assert "runs of 2 phonetic neighbours" in (tmp_path / "exp" / "log" / "train.rank0.log").read_text()
    with pytest.raises(ValueError, match="batch.neighbours: expected an integer >= 0"):
        Trainer(config(data, epochs=1, **{"batch.neighbours": -1}), tmp_path / "bad")


def test_the_speaker_adversarial_term_trains_over_the_cuts_speakers(data, tmp_path):
    """loss.spk_adv: the training cuts' speakers are numbered in sorted order, every step logs
    the term, and a corpus without two speakers is refused naming the option."""
    from lhotse import CutSet
    from lhotse.utils import fastcopy

    cuts = CutSet.from_file(data / "train.jsonl.gz").to_eager()
    # Speakers "b" and "a" by utterance number; one cut without a speaker (id -1).
    named = CutSet.from_cuts(
        fastcopy(c, supervisions=[fastcopy(c.supervisions[0], speaker=None if i == 0 else
                                           "ab"[int(c.id[-1]) % 2])])
        for i, c in enumerate(cuts))
    named.to_file(tmp_path / "train.jsonl.gz")
    cfg = config(data, epochs=1, **{"loss.spk_adv": 0.5})
    cfg["data"]["train"] = str(tmp_path / "train.jsonl.gz")
    trainer = Trainer(cfg, tmp_path / "exp")
    assert trainer.dataset.speaker_ids == {"a": 0, "b": 1}
    assert trainer.objective.spk_adv.classifier.net[-1].out_features == 2
    batch = trainer.dataset[[c.id for c in named]]
    assert batch["speaker_ids"].tolist() == [
        -1 if c.supervisions[0].speaker is None else "ab".index(c.supervisions[0].speaker)
        for c in named]
    trainer.run()
    records = [json.loads(line) for line in (tmp_path / "exp" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "l_utt" in r]
    assert steps and all(r["l_spk"] > 0 and 0.0 <= r["spk_acc"] <= 1.0 for r in steps)
    with pytest.raises(ValueError, match="loss.spk_adv.*got 0"):
        Trainer(config(data, epochs=1, **{"loss.spk_adv": 0.5}), tmp_path / "exp2")


def test_homophones_option_is_checked_and_logged(data, tmp_path):
    """batch.homophones: merge builds the trainer over the merged classes (the tiny lexicon
    has no homophones: the same keywords) and says so; any other value than keep or merge is
    refused naming the option. The merging itself: tests/data/test_homophones.py."""
    keep = Trainer(config(data, epochs=1), tmp_path / "keep")
    merge = Trainer(config(data, epochs=1, **{"batch.homophones": "merge"}), tmp_path / "merge")
    assert merge.sampler.keywords == keep.sampler.keywords
    assert "homophones merged: 0 spellings" in (tmp_path / "merge" / "log" / "train.rank0.log").read_text()
    with pytest.raises(ValueError, match="batch.homophones must be keep or merge, got 'join'"):
        Trainer(config(data, epochs=1, **{"batch.homophones": "join"}), tmp_path / "bad")
