import json
from pathlib import Path

import numpy as np
import pytest
import torch
from lhotse import CutSet

from pyadml.bin import score as score_cli
from pyadml.bin import score_clips as clips_cli
from pyadml.bin import warp_check as warp_cli
from pyadml.data.dataset import mean_normalize, warp_mel
from pyadml.data.features import fbank_extractor, mel_range
from pyadml.data.trials import Trial, write_trials
from pyadml.models.export import load_model
from pyadml.score.metrics import average_precision
from pyadml.score.pairs import features_for
from pyadml.score.warp import warp_check
from test_clips import write_clips
from test_score import WORDS, make_cuts, tiny_model_file

SPEAKERS = ["spk0", "spk1", "spk2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("warp")
    items = [(f"w{i}", WORDS[i % len(WORDS)], SPEAKERS[i % 3], 0.3 + 0.05 * i) for i in range(9)]
    make_cuts(tmp, "wsj_test", items)
    write_trials(tmp / "trials" / "wsj_test.tsv",
                 [Trial(cid, w, int(w == word), "seen") for cid, word, _, _ in items for w in WORDS])
    model = tiny_model_file(tmp / "exp" / "final.pt")
    return tmp, model


def reference_warp(f, alpha):
    """Row by row with np.interp, from the warp's definition: W(f) = alpha * f below
    0.8 * 7600 / max(alpha, 1) Hz, then linear to W(7600) = 7600, on 40 mel bins from 20 Hz."""
    mel = lambda x: 1127.0 * np.log1p(np.asarray(x) / 700.0)  # noqa: E731
    edges = np.linspace(mel(20.0), mel(7600.0), 42)
    centres = 700.0 * np.expm1(edges[1:-1] / 1127.0)
    f0 = 0.8 * 7600.0 / max(alpha, 1.0)
    src = [c / alpha if c <= alpha * f0 else f0 + (c - alpha * f0) * (7600.0 - f0) / (7600.0 - alpha * f0)
           for c in centres]
    src_bin = np.interp(mel(np.array(src)), edges[1:-1], np.arange(40.0))
    return np.stack([np.interp(src_bin, np.arange(40.0), row) for row in f]).astype(np.float32)


def cosine_one_at_a_time(loaded, feats, keyword):
    x = torch.from_numpy(mean_normalize(feats))[None]
    ph = torch.tensor([loaded.tokenizer.encode(keyword)])
    with torch.inference_mode():
        a = loaded.model.embed_audio(x, torch.tensor([x.shape[1]])).utt[0].numpy()
        t = loaded.model.embed_text(ph, torch.tensor([ph.shape[1]])).utt[0].numpy()
    return float(a @ t / np.linalg.norm(a) / np.linalg.norm(t))


def reference_ap(model_path, cuts_path, trials_path, alpha, speaker):
    """Slow reference: each cut warped by reference_warp, embedded on its own, the speaker's
    trials scored by a cosine loop."""
    loaded = load_model(model_path)
    cuts = {c.id: c for c in CutSet.from_file(cuts_path)}
    scores, labels = [], []
    for line in trials_path.read_text().splitlines():
        cid, kw, label, _ = line.split("\t")
        if cuts[cid].supervisions[0].speaker != speaker:
            continue
        scores.append(cosine_one_at_a_time(loaded, reference_warp(cuts[cid].load_features(), alpha), kw))
        labels.append(int(label))
    return average_precision(np.array(scores), np.array(labels))


def test_warp_mel_is_the_identity_at_one_and_moves_a_peak_up_above_one():
    f = np.zeros((3, 40), dtype=np.float32)
    f[:, 20] = 1.0
    assert np.allclose(warp_mel(f, 1.0, 20.0, 7600.0), f, atol=1e-6)
    assert warp_mel(f, 1.2, 20.0, 7600.0)[0].argmax() > 20
    assert warp_mel(f, 0.8, 20.0, 7600.0)[0].argmax() < 20


def test_mel_range_counts_a_non_positive_high_freq_from_nyquist():
    assert mel_range({}) == (20.0, 7600.0)
    assert mel_range({"sampling_rate": 8000, "high_freq": -200, "low_freq": 60}) == (60.0, 3800.0)
    assert mel_range({"high_freq": 7000}) == (20.0, 7000.0)


def test_alpha_one_gives_stage_8_per_speaker_ap(data, capsys):
    tmp, model = data
    out = tmp / "exp" / "results"
    assert score_cli.main(["--exp-dir", str(tmp / "exp"), "--fbank-dir", str(tmp / "fbank"),
                           "--trials-dir", str(tmp / "trials"), "--out-dir", str(out),
                           "wsj_test:words"]) == 0
    stage8 = json.loads((out / "metrics.json").read_text())["sets"]["wsj_test"]
    res = warp_check(model, tmp / "fbank" / "wsj_test.jsonl.gz", tmp / "trials" / "wsj_test.tsv", [1.0])
    assert res["AP"][1.0] == pytest.approx(stage8["AP"], abs=1e-6)
    for spk, ap in stage8["AP_per_speaker"].items():
        assert res["AP_per_speaker"][spk][1.0] == pytest.approx(ap, abs=1e-6)


@pytest.mark.parametrize("alpha", [0.8, 1.15])
def test_warped_ap_matches_a_slow_reference(data, alpha):
    tmp, model = data
    cuts, trials = tmp / "fbank" / "wsj_test.jsonl.gz", tmp / "trials" / "wsj_test.tsv"
    res = warp_check(model, cuts, trials, [alpha, 1.0], speakers=["spk1", "spk2"])
    assert set(res["AP_per_speaker"]) == {"spk1", "spk2"}
    for spk in ("spk1", "spk2"):
        assert res["AP_per_speaker"][spk][alpha] == pytest.approx(
            reference_ap(model, cuts, trials, alpha, spk), abs=1e-4)
    # The warp changes what the model hears: some cosine moves, so AP is computed per alpha.
    assert res["AP_per_speaker"]["spk1"][alpha] != res["AP_per_speaker"]["spk1"][1.0] or \
        res["AP_per_speaker"]["spk2"][alpha] != res["AP_per_speaker"]["spk2"][1.0]


def test_cli_writes_the_table_and_json(data, capsys):
    tmp, model = data
    out = tmp / "warp"
    assert warp_cli.main(["--model", str(model), "--cuts", str(tmp / "fbank" / "wsj_test.jsonl.gz"),
                          "--trials", str(tmp / "trials" / "wsj_test.tsv"), "--alphas", "0.9,1.0",
                          "--out-dir", str(out)]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0] == "| speaker | AP at 0.9 | AP at 1 |"
    assert [line.split(" | ")[0] for line in table.splitlines()[2:]] == ["| spk0", "| spk1", "| spk2", "| all"]
    saved = json.loads((out / "warp_check.json").read_text())
    assert saved["alphas"] == [0.9, 1.0] and set(saved["AP_per_speaker"]) == set(SPEAKERS)
    assert (out / "warp_check.md").read_text() == table


@pytest.mark.parametrize("args, message", [
    (["--alphas", "0.9,0"], "alphas must be positive"),
    (["--speakers", "spk0,nobody"], "speaker(s) ['nobody'] not in"),
])
def test_bad_options_are_errors_naming_the_value(data, capsys, args, message):
    tmp, model = data
    assert warp_cli.main(["--model", str(model), "--cuts", str(tmp / "fbank" / "wsj_test.jsonl.gz"),
                          "--trials", str(tmp / "trials" / "wsj_test.tsv"), *args]) == 1
    assert message in capsys.readouterr().err


def test_a_trial_cut_missing_from_the_cuts_is_an_error_naming_it(data, tmp_path, capsys):
    tmp, model = data
    write_trials(tmp_path / "t.tsv", [Trial("w0", "hello", 1, "seen"), Trial("nope", "hello", 0, "seen")])
    assert warp_cli.main(["--model", str(model), "--cuts", str(tmp / "fbank" / "wsj_test.jsonl.gz"),
                          "--trials", str(tmp_path / "t.tsv")]) == 1
    assert "e.g. nope" in capsys.readouterr().err


def test_score_clips_warp_scores_the_warped_features(tmp_path, capsys):
    """score_clips --warp 0.85: each clip's cosine is that of its features (features_for, no
    warp) warped by the reference and embedded on its own."""
    model = tiny_model_file(tmp_path / "final.pt")
    lines = write_clips(tmp_path)
    assert clips_cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"),
                           "--out-dir", str(tmp_path / "out"), "--warp", "0.85",
                           "--floor-db", "none", "--phrase-score", "clip", "--enrol", "none"]) == 0
    loaded = load_model(model)
    ext = fbank_extractor({k: v for k, v in loaded.features.items() if k != "mean_norm"})
    rows = [r.split("\t") for r in (tmp_path / "out" / "scores.tsv").read_text().splitlines()]
    assert len(rows) == 3 * len(lines)
    for wav, kw, _, score in rows:
        raw = features_for(Path(wav), ext, 16000, mean_norm=False)
        assert float(score) == pytest.approx(cosine_one_at_a_time(loaded, reference_warp(raw, 0.85), kw), abs=1e-4)
    assert clips_cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"), "--warp", "0"]) == 1
    assert "--warp must be a positive factor, got 0.0" in capsys.readouterr().err
