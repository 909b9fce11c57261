"""The baseline detectors end to end on the tiny corpus: train a few steps, export final.pt with
its scorer, score pairs through stage 8's caches, score_pairs and the keyword spotter."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pyadml.train.config import load_config
from pyadml.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "egs" / "wsj_librikws" / "conf"
TINY = CONF / "train_tiny.yaml"


def config(data, *extra):
    items = [f"data.train={data / 'train.jsonl.gz'}", f"data.dev={data / 'dev.jsonl.gz'}",
             f"data.dev_trials={data / 'dev.tsv'}", f"data.lang={data / 'lang'}",
             f"data.fbank_config={data / 'fbank.yaml'}", "batch.keywords=4", "epochs=1",
             "average=1", "log_interval=1", "model.head_opts.dim=16",
             "model.head_opts.gru_hidden=8", *extra]
    return load_config(TINY, items)


@pytest.fixture(scope="module")
def trained(tiny_training_data, tmp_path_factory):
    """head -> exported final.pt of a one-epoch run (3 steps)."""
    from pyadml.models.export import export_experiment

    out = {}
    for head, extra in (("phonmatchnet", ["loss.mal_phn=true"]), ("cmcd", [])):
        exp = tmp_path_factory.mktemp(head) / "exp"
        Trainer(config(tiny_training_data, f"model.head={head}", *extra), exp).run()
        export_experiment(exp)
        out[head] = exp
    return out


@pytest.mark.parametrize("head", ["phonmatchnet", "cmcd"])
def test_training_logs_the_detector_terms_and_a_dev_ap(trained, head):
    import json

    records = [json.loads(x) for x in (trained[head] / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "l_bce" in r]
    assert len(steps) == 3 and all(np.isfinite(r["loss"]) for r in steps)
    want = {"phonmatchnet": {"l_phn_bce", "l_adv_phn", "mal_acc_phn"}, "cmcd": {"l_mm"}}[head]
    assert all(want <= set(r) for r in steps)
    dev = [r["dev_ap"] for r in records if "dev_ap" in r]
    assert len(dev) == 1 and 0.0 < dev[0] <= 1.0


@pytest.mark.parametrize("head", ["phonmatchnet", "cmcd"])
def test_final_pt_says_its_scorer_and_scores_a_pair_as_the_head_does(trained, head, tiny_training_data):
    from lhotse import CutSet

    from pyadml.data.dataset import mean_normalize
    from pyadml.data.trials import Trial
    from pyadml.models.export import load_model
    from pyadml.score.embed import embed_cuts, embed_texts, score_trials

    blob = torch.load(trained[head] / "final.pt", weights_only=True)
    assert blob["scorer"] == head and blob["head_config"] == {"dim": 16, "gru_hidden": 8}
    assert any(k.startswith("head.") for k in blob["model"])
    assert not any(k.startswith("mal.") for k in blob["model"])
    loaded = load_model(trained[head] / "final.pt")
    assert loaded.scorer == head
    cuts = list(CutSet.from_file(tiny_training_data / "dev.jsonl.gz"))[:2]
    audio = embed_cuts(loaded.model, cuts)
    text = embed_texts(loaded.model, ["cat", "door"], loaded.tokenizer)
    trials = [Trial(c.id, w, 0) for c in cuts for w in ("cat", "door")]
    scores = score_trials(trials, audio, text, model=loaded.model)
    with pytest.raises(ValueError, match="pass model="):
        score_trials(trials, audio, text)
    # The same probability from the model directly, one pair at a time.
    m = loaded.model
    for tr, s in zip(trials, scores):
        cut = next(c for c in cuts if c.id == tr.cut_id)
        x = torch.from_numpy(mean_normalize(cut.load_features()))[None]
        ids = torch.tensor([loaded.phone_ids(tr.keyword)])
        with torch.inference_mode():
            a = m.embed_audio(x)
            t = m.embed_text(ids)
            p = m.detect(a.phn, a.mask, t.phn, t.mask)
        assert s == pytest.approx(float(p), abs=1e-5) and 0.0 < s < 1.0


def test_score_pairs_and_stage_8_score_a_detector_unchanged(trained, tiny_training_data, tmp_path):
    from pyadml.score.evaluate import score_test_sets
    from pyadml.score.pairs import score_pairs_file

    model = trained["phonmatchnet"] / "final.pt"
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{tiny_training_data / f'{w}4.wav'}\t{k}\t{int(w == k)}\n"
                             for w in ("cat", "dog") for k in ("cat", "dog")))
    res = score_pairs_file(model, pairs, tmp_path / "scores.tsv")
    assert res.scores.shape == (4,) and np.all((res.scores > 0) & (res.scores < 1))
    # stage 8 on the dev set as a words test set
    fbank = tmp_path / "fbank"
    fbank.mkdir()
    (fbank / "devset.jsonl.gz").symlink_to(tiny_training_data / "dev.jsonl.gz")
    trials = tmp_path / "trials"
    trials.mkdir()
    (trials / "devset.tsv").symlink_to(tiny_training_data / "dev.tsv")
    results, table = score_test_sets(model, fbank, trials, tmp_path / "results",
                                     [("devset", "words")])
    assert 0.0 < results["devset"]["AP"] <= 1.0
    # The speaker mean moves cosine embeddings; a detector's is refused, naming the model.
    from pyadml.score.evaluate import ScoreError
    with pytest.raises(ScoreError, match=r"final\.pt: the speaker mean needs a cosine model"):
        score_test_sets(model, fbank, trials, tmp_path / "spk", [("devset", "words")],
                        speaker_mean=True)
    assert not (tmp_path / "spk").exists()
    from pyadml.score.pairs import PairsError
    utt2spk = tmp_path / "utt2spk"
    utt2spk.write_text("".join(f"{tiny_training_data / f'{w}4.wav'}\tA\n" for w in ("cat", "dog")))
    with pytest.raises(PairsError, match=r"final\.pt: the speaker mean needs a cosine model"):
        score_pairs_file(model, pairs, tmp_path / "spk.tsv", speakers=utt2spk)
    assert not (tmp_path / "spk.tsv").exists()


def test_the_spotter_scores_windows_with_the_head(trained, tiny_training_data):
    import soundfile as sf

    from pyadml.spot.backend import open_backend
    from pyadml.spot.spotter import KeywordSpotter

    backend = open_backend(trained["cmcd"] / "final.pt")
    assert backend.scorer == "cmcd"
    spotter = KeywordSpotter(backend).enroll(["cat", "door"])
    audio, rate = sf.read(tiny_training_data / "cat4.wav", dtype="float32")
    scores = spotter.score((audio, rate))
    assert set(scores) == {"cat", "door"} and all(0.0 < s < 1.0 for s in scores.values())
    long = np.concatenate([np.zeros(rate // 2, np.float32), audio, np.zeros(rate, np.float32)])
    dets = spotter.detect((long, rate), threshold=0.0)  # every peak fires: the search ran the head
    assert dets and all(0.0 <= d.score <= 1.0 for d in dets)


def test_onnx_export_of_a_detector_is_refused(trained, tmp_path):
    from pyadml.spot.audio import SpotError
    from pyadml.spot.onnx_export import export_onnx

    with pytest.raises(SpotError, match="not supported for scorer 'phonmatchnet'"):
        export_onnx(trained["phonmatchnet"] / "final.pt", tmp_path / "onnx")


@pytest.mark.parametrize("name", ["train_phonmatchnet_mini", "train_phonmatchnet_mal_mini",
                                  "train_cmcd_mini", "train_cmcd_mal_mini", "train_phonmatchnet",
                                  "train_phonmatchnet_mal", "train_cmcd", "train_cmcd_mal"])
def test_the_baseline_configs_build_a_detector(name):
    from pyadml.train.baseline_objective import DetectorObjective, build_objective

    cfg = load_config(CONF / f"{name}.yaml")
    obj = build_objective(cfg, 70, 10)
    assert isinstance(obj, DetectorObjective)
    assert obj.head_name == ("cmcd" if "cmcd" in name else "phonmatchnet")
    assert hasattr(obj, "mal") == ("_mal" in name)
    assert obj.use_mm == ("cmcd" in name)
    assert cfg["optim"]["lr"] == 1e-3 and cfg["optim"]["weight_decay"] == 0.0
    assert cfg["optim"]["lr_gamma"] == 1.0
    if name.endswith("_mini"):
        assert cfg["epochs"] == load_config(CONF / "train_adml_mini.yaml")["epochs"]
        assert cfg["model"]["audio"] == load_config(CONF / "train_adml_mini.yaml")["model"]["audio"]


def test_adml_stays_the_default_objective():
    from pyadml.train.baseline_objective import build_objective
    from pyadml.train.objective import KwsObjective

    assert isinstance(build_objective(load_config(CONF / "train_adml_mini.yaml"), 70, 10), KwsObjective)
    with pytest.raises(ValueError, match="a detector takes"):
        build_objective(load_config(CONF / "train_adml_mini.yaml", ["model.head=cmcd"]), 70, 10)
    with pytest.raises(ValueError, match="loss.text_negatives"):
        build_objective(load_config(CONF / "train_cmcd_mini.yaml", ["loss.text_negatives.count=2"]),
                        70, 10)
