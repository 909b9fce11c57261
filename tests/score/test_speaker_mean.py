"""Per-speaker mean normalisation (pyadml.score.speaker_mean) against a hand-worked example and
a slow loop written from its formula, and through pyadml.bin.score against the cosines of
embeddings computed here."""

import json

import numpy as np
import pytest
import torch
from lhotse import CutSet

from pyadml.bin import score as score_cli
from pyadml.models.export import load_model
from pyadml.score.embed import mean_normalize
from pyadml.score.speaker_mean import TAU, speaker_mean_normalised

from test_score import WORDS, fixture, tiny_model_file  # noqa: F401  (the module fixture)


def test_a_hand_worked_example():
    # Speaker A: three clips along x, y and x; B: one clip; C names no speaker. tau = 2.
    emb = {"a1": np.array([2.0, 0.0]), "a2": np.array([0.0, 3.0]), "a3": np.array([1.0, 0.0]),
           "b1": np.array([0.0, -1.0]), "c1": np.array([0.6, 0.8])}
    spk = {"a1": "A", "a2": "A", "a3": "A", "b1": "B"}
    got, alone = speaker_mean_normalised(emb, spk, tau=2.0)
    # a1's others: (0,1) and (1,0), n = 2: subtract 2/(2+2) of their mean (0.5,0.5).
    np.testing.assert_allclose(got["a1"], [1 - 0.25, -0.25])
    np.testing.assert_allclose(got["a2"], [-0.5, 1.0])    # others (1,0) twice: mean (1,0), half
    np.testing.assert_allclose(got["a3"], [0.75, -0.25])  # the same others as a1
    np.testing.assert_allclose(got["b1"], [0.0, -1.0])    # alone: the unit vector as it is
    np.testing.assert_allclose(got["c1"], [0.6, 0.8])
    assert alone == 2
    # tau = 0: the plain mean of the others.
    got0, _ = speaker_mean_normalised(emb, spk, tau=0.0)
    np.testing.assert_allclose(got0["a2"], [-1.0, 1.0])


def slow(emb, spk, tau):
    unit = {i: v / np.linalg.norm(v) for i, v in emb.items()}
    out = {}
    for i, u in unit.items():
        others = [unit[j] for j in emb if j != i and spk.get(j) is not None and spk.get(j) == spk.get(i)]
        n = len(others)
        out[i] = u - (n / (n + tau)) * np.mean(others, axis=0) if n else u
    return out


def test_against_a_loop_from_the_formula():
    rng = np.random.default_rng(0)
    emb = {f"c{i}": rng.standard_normal(12) * rng.uniform(0.1, 5) for i in range(40)}
    spk = {f"c{i}": f"s{rng.integers(6)}" for i in range(37)}  # c37-c39 name no speaker
    for tau in (0.0, 1.0, TAU):
        got, alone = speaker_mean_normalised(emb, spk, tau)
        want = slow(emb, spk, tau)
        for i in emb:
            np.testing.assert_allclose(got[i], want[i], rtol=1e-10, atol=1e-12)
        assert alone == 3 + sum(1 for s in set(spk.values()) if list(spk.values()).count(s) == 1)
    with pytest.raises(ValueError, match="tau must be >= 0"):
        speaker_mean_normalised(emb, spk, -1.0)


def test_score_speaker_mean_scores_each_clip_less_its_speakers_mean(fixture, tmp_path, capsys):  # noqa: F811
    tmp, model_path = fixture
    argv = ["--exp-dir", str(tmp / "exp" / "tiny"), "--fbank-dir", str(tmp / "fbank"),
            "--trials-dir", str(tmp / "trials"), "--out-dir", str(tmp_path / "plain"),
            "wsj_test:words", "libriphrase_test:pairs",
            "--run", f"--out-dir {tmp_path / 'spk'} --speaker-mean"]
    assert score_cli.main(argv) == 0
    printed = capsys.readouterr().out
    # wsj_test: two speakers of three clips; LibriPhrase: every clip its own speaker.
    assert "wsj_test.jsonl.gz: each clip less its speaker's mean\n" in printed
    assert "libriphrase_test.jsonl.gz: each clip less its speaker's mean; 4 of 4 clips" in printed

    loaded = load_model(model_path)
    cuts = list(CutSet.from_file(tmp / "fbank" / "wsj_test.jsonl.gz"))
    with torch.inference_mode():
        a = {c.id: loaded.model.embed_audio(
            torch.from_numpy(mean_normalize(c.load_features()))[None]).utt[0].double().numpy()
            for c in cuts}
        t = {w: loaded.model.embed_text(torch.tensor([loaded.phone_ids(w)])).utt[0].double().numpy()
             for w in WORDS}
    want = slow(a, {c.id: c.supervisions[0].speaker for c in cuts}, TAU)
    rows = (tmp_path / "spk" / "wsj_test" / "scores.tsv").read_text().splitlines()
    plain = (tmp_path / "plain" / "wsj_test" / "scores.tsv").read_text().splitlines()
    assert len(rows) == len(plain) == 36
    moved = 0
    for row, base in zip(rows, plain):
        cut, word, _, _, score = row.split("\t")
        v = want[cut]
        cos = v @ t[word] / (np.linalg.norm(v) * np.linalg.norm(t[word]))
        assert float(score) == pytest.approx(cos, abs=2e-5)
        moved += abs(float(score) - float(base.split("\t")[-1])) > 1e-4
    assert moved > 30
    # Alone in their speaker, the LibriPhrase clips score as without it.
    for name in ("libriphrase_test_lp_e", "libriphrase_test_lp_h"):
        assert ((tmp_path / "spk" / name / "scores.tsv").read_text()
                == (tmp_path / "plain" / name / "scores.tsv").read_text())
    m = json.loads((tmp_path / "spk" / "metrics.json").read_text())["sets"]
    assert set(m["wsj_test"]["AP_per_speaker"]) == {"spk0", "spk1"}

