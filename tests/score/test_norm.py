"""Adaptive T-norm (pyadml.score.norm) against a slow loop written from its formula, a
hand-worked example, and through the scoring commands with a model's stored cohort."""

import json

import numpy as np
import pytest

from pyadml.bin import score_clips as cli
from pyadml.models.export import load_model
from pyadml.score.norm import CLIP_SCORE_NORM, ScoreNormError, adaptive_tnorm, model_norm

from test_clips import write_clips
from test_score import tiny_model_file, write_noise


def slow_tnorm(audio, keyword, raw, audio_emb, cohort, k):
    a = audio_emb[audio] / np.linalg.norm(audio_emb[audio])
    sims = sorted((float(a @ (v / np.linalg.norm(v))) for w, v in cohort.items() if w != keyword),
                  reverse=True)[:k]
    return (raw - np.mean(sims)) / np.std(sims)


def test_against_a_loop_from_the_formula():
    rng = np.random.default_rng(0)
    audio_emb = {f"a{i}": rng.standard_normal(8) for i in range(5)}
    cohort = {f"w{i}": rng.standard_normal(8) for i in range(30)}
    keywords = ["w3", "w17", "not_in_cohort", "w0", "w29", "w3"]
    audios = ["a0", "a1", "a2", "a3", "a4", "a3"]
    raw = rng.uniform(-1, 1, len(keywords))
    for k in (2, 5, 29):
        got = adaptive_tnorm(raw, audios, keywords, audio_emb, cohort, k)
        want = [slow_tnorm(a, w, s, audio_emb, cohort, k) for a, w, s in zip(audios, keywords, raw)]
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_a_hand_worked_example_drops_the_trials_own_keyword():
    # Audio along x; cohort cosines 1.0 (the keyword itself), 0.6, 0.2, -0.2.
    audio_emb = {"a": np.array([1.0, 0.0])}
    cohort = {"kw": np.array([1.0, 0.0]), "b": np.array([0.6, 0.8]), "c": np.array([0.2, np.sqrt(0.96)]),
              "d": np.array([-0.2, np.sqrt(0.96)])}
    # K=2 without "kw": {0.6, 0.2}, mean 0.4, std 0.2 -> (1.0 - 0.4) / 0.2 = 3.
    assert adaptive_tnorm([1.0], ["a"], ["kw"], audio_emb, cohort, 2)[0] == pytest.approx(3.0)
    # A keyword outside the cohort keeps it: {1.0, 0.6}, mean 0.8, std 0.2 -> (0.5 - 0.8) / 0.2.
    assert adaptive_tnorm([0.5], ["a"], ["zz"], audio_emb, cohort, 2)[0] == pytest.approx(-1.5)


def test_bad_cohort_sizes_are_refused():
    e = {"a": np.ones(3)}
    cohort = {f"w{i}": np.eye(3)[i % 3] for i in range(4)}
    with pytest.raises(ScoreNormError, match="holds 4 texts"):
        adaptive_tnorm([0.1], ["a"], ["w0"], e, cohort, 4)
    with pytest.raises(ScoreNormError, match=">= 2"):
        adaptive_tnorm([0.1], ["a"], ["w0"], e, cohort, 1)


WORDS = ["water", "yellow", "table", "music", "paper", "river", "garden", "window", "doctor",
         "pocket", "silver", "market"]


def test_clips_with_tnorm_use_the_models_cohort_and_keep_top1(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "final.pt", cohort=WORDS)
    assert load_model(model).cohort == WORDS
    write_clips(tmp_path)
    # references below are computed without the level-relative floor, from the clip cosines
    base = ["--model", str(model), "--clips", str(tmp_path / "clips.tsv"), "--floor-db", "none",
            "--phrase-score", "clip", "--enrol", "none"]
    assert cli.main(base + ["--out-dir", str(tmp_path / "raw"), "--score-norm", "none"]) == 0
    assert cli.main(base + ["--out-dir", str(tmp_path / "tn"), "--score-norm", "tnorm",
                            "--cohort-size", "5"]) == 0
    raw = [float(r.split("\t")[3]) for r in (tmp_path / "raw/scores.tsv").read_text().splitlines()]
    tn = [float(r.split("\t")[3]) for r in (tmp_path / "tn/scores.tsv").read_text().splitlines()]
    assert not np.allclose(raw, tn)
    m_raw, m_tn = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("raw", "tn"))
    assert m_tn["top1"] == m_raw["top1"]  # per clip an increasing map of the raw score
    # Per clip, the normalised scores are an affine map of the raw ones.
    r, t = np.array(raw).reshape(6, 3), np.array(tn).reshape(6, 3)
    for i in range(6):
        slope = (t[i, 1] - t[i, 0]) / (r[i, 1] - r[i, 0])
        assert slope > 0 and t[i, 2] == pytest.approx(t[i, 0] + slope * (r[i, 2] - r[i, 0]), abs=1e-4)
    # A cohort no larger than K: all but one of it, with a note.
    capsys.readouterr()
    assert cli.main(base + ["--score-norm", "tnorm", "--cohort-size", "12",
                            "--out-dir", str(tmp_path / "all")]) == 0
    assert "uses the 11 closest instead of 12" in capsys.readouterr().err
    assert cli.main(base + ["--score-norm", "tnorm", "--cohort-size", "1"]) == 1
    assert ">= 2, got 1" in capsys.readouterr().err


def test_a_model_without_a_cohort_says_to_export_again(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "final.pt")
    write_noise(tmp_path / "a.wav", 0.5)
    (tmp_path / "c.tsv").write_text("a.wav\talexa\na.wav\tcomputer\n")
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "c.tsv"),
                     "--score-norm", "tnorm"]) == 1
    err = capsys.readouterr().err
    assert "carries no cohort" in err and "export_model" in err


def test_which_normalisation_a_model_is_scored_with(capsys):
    """The option first; else the command's default where the model allows it (a cosine model
    with a cohort of 3 or more), else none with a note saying why."""
    from types import SimpleNamespace as M

    cosine, few = M(scorer="cosine", cohort=WORDS), M(scorer="cosine", cohort=WORDS[:2])
    head, bare = M(scorer="phonmatchnet", cohort=WORDS), M(scorer="cosine", cohort=[])
    table = [  # (model, option, command default) -> normalisation, note
        (cosine, None, "none", "none", ""), (cosine, None, "tnorm", "tnorm", ""),
        (cosine, "none", "tnorm", "none", ""), (cosine, "tnorm", "none", "tnorm", ""),
        (head, "tnorm", "tnorm", "tnorm", ""),  # asked for: refused later, by prepare
        (head, None, "tnorm", "none", "its scorer is 'phonmatchnet'"),
        (bare, None, "tnorm", "none", "no cohort of 3 or more"),
        (few, None, "tnorm", "none", "no cohort of 3 or more"),
        (head, None, "none", "none", "")]
    for model, option, default, want, note in table:
        assert model_norm(model, option, default) == want, (model, option, default)
        err = capsys.readouterr().err
        assert (note in err) if note else not err, (model, option, default, err)
    assert CLIP_SCORE_NORM == "tnorm"


def test_score_pairs_t_norms_a_users_scores_by_default_and_says_so(tmp_path, capsys):
    """score_pairs' default is --score-norm tnorm for a model with a cohort, and the cosines for
    one without; score_clips writes which one it used."""
    from pyadml.bin import score_pairs

    write_clips(tmp_path)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{tmp_path / 'audio' / f'{i}.wav'}\t{kw}\n" for i in range(6)
                             for kw in ("alexa", "smart mirror")))

    def scores(model, name, *opts):
        assert score_pairs.main(["--model", str(model), "--pairs", str(pairs),
                                 "--out", str(tmp_path / name), *opts]) == 0
        return [float(r.split("\t")[-1]) for r in (tmp_path / name).read_text().splitlines()]

    model = tiny_model_file(tmp_path / "final.pt", cohort=WORDS)
    default = scores(model, "default.tsv", "--cohort-size", "5")
    assert "scores adaptive-T-normed by each file's 5 closest training keywords" in capsys.readouterr().out
    assert default == scores(model, "tnorm.tsv", "--cohort-size", "5", "--score-norm", "tnorm")
    cosines = scores(model, "none.tsv", "--score-norm", "none")
    assert "scores not normalised" in capsys.readouterr().out
    assert all(-1 <= c <= 1 for c in cosines) and max(abs(d) for d in default) > 1
    bare = tiny_model_file(tmp_path / "bare.pt")
    assert scores(bare, "bare.tsv") == scores(bare, "bare_none.tsv", "--score-norm", "none")
    out = capsys.readouterr()
    assert "without tnorm (it carries no cohort" in out.err and "scores not normalised" in out.out
    assert cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"),
                     "--out-dir", str(tmp_path / "clips")]) == 0
    m = json.loads((tmp_path / "clips" / "metrics.json").read_text())
    assert m["score_norm"] == "tnorm" and m["cohort_size"] == 11 and m["floor_db"] == 50.0


def test_stage8_scoring_with_tnorm_matches_the_slow_loop(tmp_path, capsys):
    import torch
    from lhotse import CutSet

    from pyadml.bin import score as score_cli
    from pyadml.data.dataset import mean_normalize
    from pyadml.data.trials import Trial, write_trials

    from test_score import make_cuts

    words = ["hello", "world", "music", "water"]
    make_cuts(tmp_path, "wsj_test", [(f"w{i}", w, f"spk{i % 2}", 0.3 + 0.07 * i)
                                     for i, w in enumerate(words)])
    write_trials(tmp_path / "trials/wsj_test.tsv",
                 [Trial(f"w{i}", w, int(i == j), "seen") for i in range(4) for j, w in enumerate(words)])
    model = tiny_model_file(tmp_path / "exp/final.pt", cohort=WORDS)
    out = tmp_path / "exp/results_tnorm"
    assert score_cli.main(["--exp-dir", str(tmp_path / "exp"), "--fbank-dir", str(tmp_path / "fbank"),
                           "--trials-dir", str(tmp_path / "trials"), "--out-dir", str(out),
                           "--score-norm", "tnorm", "--cohort-size", "4", "wsj_test:words"]) == 0
    loaded = load_model(model)
    cuts = {c.id: c for c in CutSet.from_file(tmp_path / "fbank/wsj_test.jsonl.gz")}
    @torch.inference_mode()
    def text(w):
        return loaded.model.embed_text(torch.tensor([loaded.phone_ids(w)])).utt[0].numpy()

    with torch.inference_mode():
        audio = {cid: loaded.model.embed_audio(torch.from_numpy(mean_normalize(c.load_features()))[None]).utt[0].numpy()
                 for cid, c in cuts.items()}
        cohort = {w: text(w) for w in WORDS}
    for row in (out / "wsj_test/scores.tsv").read_text().splitlines():
        cid, kw, _, _, got = row.split("\t")
        a, t = audio[cid], text(kw)
        raw = float(a @ t / np.linalg.norm(a) / np.linalg.norm(t))
        assert float(got) == pytest.approx(slow_tnorm(cid, kw, raw, audio, cohort, 4), abs=2e-4)
