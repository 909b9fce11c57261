"""Per-speaker mean normalisation (pyadml.score.speaker_mean) against a hand-worked example and
a slow loop written from its formula, and through pyadml.bin.score against the cosines of
embeddings computed here."""

import json
from pathlib import Path

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



# ---- score_pairs --speaker-mean UTT2SPK and score_clips' speaker column ----------------------

def _clips(tmp_path):
    """Seven noise files of three speakers (one alone) and the pairs of each with four words."""
    from test_score import write_noise

    spk = ["s1", "s1", "s1", "s2", "s2", "s2", "s3"]
    wavs = [write_noise(tmp_path / f"c{i}.wav", 0.4 + 0.05 * i, seed=i) for i in range(len(spk))]
    words = WORDS[:4]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{w}\t{k}\t{int(k == words[i % 4])}\n"
                             for i, w in enumerate(wavs) for k in words))
    return wavs, spk, words, pairs


PLAIN = ["--floor-db", "none", "--score-norm", "none", "--phrase-score", "clip", "--enrol", "none"]


def test_score_pairs_speaker_mean_against_cosines_computed_here(fixture, tmp_path, capsys):  # noqa: F811
    from pyadml.bin import score_pairs
    from pyadml.data.features import fbank_extractor
    from pyadml.score.pairs import features_for

    from test_score import FBANK

    _, model_path = fixture
    wavs, spk, words, pairs = _clips(tmp_path)
    utt2spk = tmp_path / "utt2spk"
    # Written through another spelling of each path: the lists match by file, not by string.
    utt2spk.write_text("".join(f"{w.parent}/./{w.name}\t{s}\n" for w, s in zip(wavs, spk))
                       + f"{tmp_path / 'unused.wav'}\ts9\n")
    out = tmp_path / "spk.tsv"
    argv = ["--model", str(model_path), "--pairs", str(pairs)] + PLAIN
    assert score_pairs.main(argv + ["--out", str(out), "--speaker-mean", str(utt2spk)]) == 0
    assert ("each file less the shrunk mean of its speaker's other files (3 speakers; 1 file(s) "
            "alone in theirs, kept as they are)") in capsys.readouterr().out

    loaded = load_model(model_path)
    ext = fbank_extractor(FBANK)
    with torch.inference_mode():
        a = {str(w): loaded.model.embed_audio(torch.from_numpy(features_for(w, ext, 16000, True))[None]
                                              ).utt[0].double().numpy() for w in wavs}
        t = {k: loaded.model.embed_text(torch.tensor([loaded.phone_ids(k)])).utt[0].double().numpy()
             for k in words}
    want = slow(a, {str(w): s for w, s in zip(wavs, spk)}, TAU)
    rows = out.read_text().splitlines()
    assert len(rows) == 28
    for row in rows:
        wav, word, _, score = row.split("\t")
        v = want[wav]
        assert float(score) == pytest.approx(v @ t[word] / (np.linalg.norm(v) * np.linalg.norm(t[word])),
                                             abs=2e-5)
    # The speaker alone keeps its cosines; the others move.
    plain = tmp_path / "plain.tsv"
    assert score_pairs.main(argv + ["--out", str(plain)]) == 0
    for row, base in zip(rows, plain.read_text().splitlines()):
        same = abs(float(row.split("\t")[-1]) - float(base.split("\t")[-1])) < 1e-6
        assert same == row.startswith(str(wavs[6]))

    # Kaldi's own separator (spaces) reads the same.
    utt2spk.write_text("".join(f"{w}  {s}\n" for w, s in zip(wavs, spk)))
    spaced = tmp_path / "spaced.tsv"
    assert score_pairs.main(argv + ["--out", str(spaced), "--speaker-mean", str(utt2spk)]) == 0
    assert spaced.read_text() == out.read_text()

    # With the user default (floor, T-norm, the words, TTS enrolment) it runs, and moves scores.
    both = [tmp_path / "d.tsv", tmp_path / "d_spk.tsv"]
    base = ["--model", str(model_path), "--pairs", str(pairs)]
    assert score_pairs.main(base + ["--out", str(both[0])]) == 0
    assert score_pairs.main(base + ["--out", str(both[1]), "--speaker-mean", str(utt2spk)]) == 0
    d0, d1 = ([float(r.split("\t")[-1]) for r in p.read_text().splitlines()] for p in both)
    assert sum(abs(x - y) > 1e-4 for x, y in zip(d0, d1)) > 20


@pytest.mark.parametrize("spk_lines, message", [
    (["{w0}\ts1"], "pairs.tsv:5: {w1} has no speaker in {utt2spk}"),
    (["{w0}\ts1", "{w1}"], "utt2spk:2: expected '<wav>\\t<speaker>' (or '<wav> <speaker>')"),
    (["{w0}\ts1", "{w1}\t "], "utt2spk:2: expected '<wav>\\t<speaker>'"),
    (["{w0}\ts1", "{w1} s1 extra"], "utt2spk:2: expected '<wav>\\t<speaker>'"),
    (["{w0}\ts1", "", "{w0}\ts2"], "utt2spk:3: {w0} is speaker 's2' here and 's1' at line 1"),
    ([], "the speaker list {utt2spk} names no wav"),
])
def test_score_pairs_speaker_list_errors_name_the_line(fixture, tmp_path, capsys, spk_lines, message):  # noqa: F811
    from pyadml.bin import score_pairs

    _, model_path = fixture
    wavs, _, _, pairs = _clips(tmp_path)
    utt2spk = tmp_path / "utt2spk"
    fmt = {"w0": wavs[0], "w1": wavs[1], "utt2spk": utt2spk}
    utt2spk.write_text("".join(line.format(**fmt) + "\n" for line in spk_lines))
    out = tmp_path / "o.tsv"
    rc = score_pairs.main(["--model", str(model_path), "--pairs", str(pairs), "--out", str(out),
                           "--speaker-mean", str(utt2spk)] + PLAIN)
    assert rc == 1 and message.format(**fmt) in capsys.readouterr().err
    assert not out.exists()


def test_score_clips_speaker_column_equals_score_pairs_with_the_same_speakers(fixture, tmp_path, capsys):  # noqa: F811
    from pyadml.bin import score_clips, score_pairs

    _, model_path = fixture
    wavs, spk, words, pairs = _clips(tmp_path)
    clips = tmp_path / "clips.tsv"
    clips.write_text("".join(f"{w.name}\t{words[i % 4]}\t{s}\n" for i, (w, s) in enumerate(zip(wavs, spk))))
    utt2spk = tmp_path / "utt2spk"
    utt2spk.write_text("".join(f"{w}\t{s}\n" for w, s in zip(wavs, spk)))
    assert score_clips.main(["--model", str(model_path), "--clips", str(clips), "--out-dir",
                             str(tmp_path / "plain"), "--run",
                             f"--out-dir {tmp_path / 'spk'} --speaker-mean"]) == 0
    assert score_pairs.main(["--model", str(model_path), "--pairs", str(pairs), "--out",
                             str(tmp_path / "pairs_spk.tsv"), "--speaker-mean", str(utt2spk)]) == 0
    def by_pair(path):  # {(file name, keyword): score}; score_clips sorts the keywords
        rows = [r.split("\t") for r in path.read_text().splitlines()]
        return {(Path(r[0]).name, r[1]): float(r[-1]) for r in rows}

    got, want = by_pair(tmp_path / "spk" / "scores.tsv"), by_pair(tmp_path / "pairs_spk.tsv")
    plain = by_pair(tmp_path / "plain" / "scores.tsv")
    assert len(got) == 28 and got == pytest.approx(want, abs=1e-6)
    assert got != pytest.approx(plain, abs=1e-4)
    m = json.loads((tmp_path / "spk" / "metrics.json").read_text())
    assert m["speaker_mean"] == {"speakers": 3, "alone": 1}
    assert "speaker_mean" not in json.loads((tmp_path / "plain" / "metrics.json").read_text())

    # Without a speaker on every line, --speaker-mean names the first line that lacks it.
    lines = clips.read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0]
    clips.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert score_clips.main(["--model", str(model_path), "--clips", str(clips), "--speaker-mean"]) == 1
    assert "clips.tsv:3: the speaker mean needs a third column, the clip's speaker" in capsys.readouterr().err
    # ... and without the option the column is optional.
    assert score_clips.main(["--model", str(model_path), "--clips", str(clips)]) == 0
