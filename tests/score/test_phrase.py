"""--phrase-score words: a multi-word keyword's clip cosine fused with its words found in order
in windows of the clip, checked against hand-worked examples and a slow loop that embeds every
window on its own and tries every sequence of windows."""

import itertools

import numpy as np
import pytest

from pyadml.bin import score_clips as clips_cli
from pyadml.data.dataset import mean_normalize
from pyadml.models.export import load_model
from pyadml.score.embed import embed_features, embed_texts
from pyadml.score.pairs import features_for, score_pairs_file
from pyadml.data.features import fbank_extractor
from pyadml.score.phrase import (CLIP_PHRASE_SCORE, PhraseScoreError, check_phrase,
                                 clips_window_embeddings, model_phrase, ordered_words_score,
                                 phrase_scores, window_spans, windows)

from test_clips import write_clips
from test_score import FBANK, tiny_model_file


def test_windows_hand_worked():
    f = np.arange(40, dtype=np.float32).reshape(20, 2)
    w = windows(f, lengths=(10, 30), hop=5)
    # length 10 at starts 0, 5, 10; length 30 is cut to the clip's 20 frames: one window
    assert [x.shape[0] for x in w] == [10, 10, 10, 20]
    assert np.allclose(w[1], mean_normalize(f[5:15]))
    # normalising the clip as a whole first changes nothing: each window is normalised again
    assert all(np.allclose(a, b) for a, b in zip(w, windows(f - f.mean(0), lengths=(10, 30), hop=5)))
    assert np.allclose(windows(f, lengths=(10,), hop=5, mean_norm=False)[2], f[10:20])


def test_window_spans_follow_the_windows():
    assert window_spans(20, lengths=(10, 30), hop=5).tolist() == [[0, 10], [5, 15], [10, 20], [0, 20]]
    f = np.random.default_rng(0).normal(size=(47, 3)).astype(np.float32)
    spans = window_spans(47)
    assert all(np.allclose(w, mean_normalize(f[a:b])) for w, (a, b) in zip(windows(f), spans))


def test_windows_of_many_clips_embed_as_each_window_alone(tmp_path):
    """Windows of several clips batched together (by length, across clips, in groups of about
    ``max_windows``) give each window the embedding it gets through the encoder on its own."""
    model = load_model(tiny_model_file(tmp_path / "final.pt")).model
    rng = np.random.default_rng(2)
    feats = {f"c{t}": rng.normal(size=(t, FBANK["num_mel_bins"])).astype(np.float32)
             for t in (25, 64, 140)}
    got = clips_window_embeddings(model, feats.__getitem__, list(feats), batch_size=16,
                                  max_windows=20)
    assert list(got) == list(feats)
    for cut_id, f in feats.items():
        emb, spans = got[cut_id]
        assert spans.tolist() == window_spans(f.shape[0]).tolist()
        alone = np.stack([embed_features(model, [mean_normalize(f[a:b])])[0] for a, b in spans])
        alone /= np.linalg.norm(alone, axis=1, keepdims=True)
        assert emb == pytest.approx(alone, abs=1e-5), cut_id


def test_phrase_scores_hand_worked():
    words = {("a", "smart mirror"): 0.3, ("a", "view smart"): 0.8}
    s = phrase_scores(np.array([0.6, 0.5, 0.7]), ["a", "a", "a"],
                      ["smart mirror", "alexa", "view smart"], words)
    # 0.5 * 0.6 + 0.5 * 0.3; a single word keeps its clip score; 0.5 * 0.7 + 0.5 * 0.8
    assert s == pytest.approx([0.45, 0.5, 0.75])


def test_ordered_words_score_hand_worked():
    spans = np.array([[0, 30], [20, 50], [40, 70]])
    cos = np.array([[0.1, 0.2, 0.9],    # word 1 is best in the last window,
                    [0.8, 0.7, 0.3]])   # word 2 in the first: out of order
    # Unordered each word's best: min(0.9, 0.8) = 0.8. In order (start >= previous end - 10):
    # (0,30)->(20,50): min(0.1, 0.7); (20,50)->(40,70): min(0.2, 0.3); (0,30)->(40,70): 0.1
    assert ordered_words_score(cos, spans) == pytest.approx(0.2)
    # Without the allowed overlap (0,30)->(20,50) is no longer a sequence, nor (20,50)->(40,70).
    assert ordered_words_score(cos, spans, overlap=0) == pytest.approx(0.1)
    # One window for two words (a clip too short to hold both): each word's best on its own.
    assert ordered_words_score(np.array([[0.4], [0.6]]), np.array([[0, 25]])) == pytest.approx(0.4)


def brute_ordered(cos, spans, overlap=10):
    best = -np.inf
    for seq in itertools.product(range(len(spans)), repeat=len(cos)):
        if all(spans[b][0] >= spans[a][1] - overlap for a, b in zip(seq, seq[1:])):
            best = max(best, min(cos[k][w] for k, w in enumerate(seq)))
    return best if np.isfinite(best) else min(max(row) for row in cos)


def test_ordered_words_score_against_every_sequence():
    rng = np.random.default_rng(1)
    for t, k in [(60, 2), (95, 3), (120, 2), (70, 4), (28, 2)]:
        spans = window_spans(t, lengths=(30, 50), hop=10)
        cos = rng.uniform(-1, 1, size=(k, len(spans)))
        for overlap in (0, 10, 25):
            assert ordered_words_score(cos, spans, overlap) == pytest.approx(
                brute_ordered(cos, spans, overlap)), (t, k, overlap)


def slow_pair_scores(model_path, wavs_keywords):
    loaded = load_model(model_path)
    extractor = fbank_extractor({k: v for k, v in loaded.features.items() if k != "mean_norm"})
    out = []
    for wav, kw in wavs_keywords:
        f = features_for(wav, extractor, 16000, True)
        clip = embed_features(loaded.model, [f])[0]
        text = embed_texts(loaded.model, [kw], loaded.tokenizer)[kw]
        cos = float(clip @ text / np.linalg.norm(clip) / np.linalg.norm(text))
        if len(kw.split()) == 1:
            out.append(cos)
            continue
        spans, embs = [], []
        for length in dict.fromkeys(min(n, f.shape[0]) for n in (30, 50, 70, 90, 110)):
            for start in range(0, f.shape[0] - length + 1, 5):
                spans.append((start, start + length))
                embs.append(embed_features(loaded.model, [mean_normalize(f[start:start + length])])[0])
        word_cos = []
        for word in kw.split():
            t = embed_texts(loaded.model, [word], loaded.tokenizer)[word]
            word_cos.append([float(e @ t / np.linalg.norm(e) / np.linalg.norm(t)) for e in embs])
        out.append(0.5 * cos + 0.5 * brute_ordered(word_cos, spans))
    return np.array(out)


def test_score_clips_with_phrase_words_against_a_slow_loop(tmp_path, capsys):
    model = tiny_model_file(tmp_path / "final.pt")
    lines = write_clips(tmp_path)
    # the slow loop's features have no level-relative floor
    assert clips_cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"), "--enrol", "none",
                           "--out-dir", str(tmp_path / "words"), "--phrase-score", "words",
                           "--floor-db", "none"]) == 0
    assert clips_cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"), "--enrol", "none",
                           "--out-dir", str(tmp_path / "clip"), "--floor-db", "none",
                           "--phrase-score", "clip"]) == 0
    rows = [r.split("\t") for r in (tmp_path / "words/scores.tsv").read_text().splitlines()]
    plain = [r.split("\t") for r in (tmp_path / "clip/scores.tsv").read_text().splitlines()]
    pairs = [(tmp_path / r[0], r[1]) for r in rows]
    got = np.array([float(r[3]) for r in rows])
    assert got == pytest.approx(slow_pair_scores(model, pairs), abs=1e-5)
    # single-word keywords score as without the option; the 2-word one differs
    for r, p in zip(rows, plain):
        same = float(r[3]) == pytest.approx(float(p[3]), abs=1e-6)
        assert same == (len(r[1].split()) == 1)


def test_phrase_words_refuses_detectors_and_unknown_names():
    with pytest.raises(PhraseScoreError, match="cosine model"):
        check_phrase("words", "phonmatchnet")
    with pytest.raises(PhraseScoreError, match="expected one of"):
        check_phrase("word", "cosine")
    check_phrase("clip", "phonmatchnet")
    check_phrase("words", "cosine")


def test_which_phrase_score_a_model_is_scored_with(capsys):
    """The option first; else the command's default where the model allows it (a cosine model),
    else the clip cosine with a note saying why."""
    table = [  # (scorer, option, command default) -> phrase score, note
        ("cosine", None, "clip", "clip", ""), ("cosine", None, "words", "words", ""),
        ("cosine", "clip", "words", "clip", ""), ("cosine", "words", "clip", "words", ""),
        ("phonmatchnet", "words", "words", "words", ""),  # asked for: refused by check_phrase
        ("phonmatchnet", None, "words", "clip", "its scorer is 'phonmatchnet'"),
        ("cmcd", None, "clip", "clip", "")]
    for scorer, option, default, want, note in table:
        assert model_phrase(scorer, option, default) == want, (scorer, option, default)
        err = capsys.readouterr().err
        assert (note in err) if note else not err, (scorer, option, default, err)
    assert CLIP_PHRASE_SCORE == "words"


def test_score_pairs_and_clips_score_a_users_phrases_word_by_word_by_default(tmp_path, capsys):
    """score_pairs' and score_clips' default is --phrase-score words for a cosine model: the
    same scores as asking for it, which differ from the clip cosine for the two-word keyword
    only; each says which it used. The paper's protocol (score) keeps the clip cosine."""
    from pyadml.bin import score as score_cli
    from pyadml.bin import score_pairs as pairs_cli

    model = tiny_model_file(tmp_path / "final.pt")
    write_clips(tmp_path)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{tmp_path / 'audio' / f'{i}.wav'}\t{kw}\n" for i in range(3)
                             for kw in ("alexa", "smart mirror")))

    def scores(name, *opts):
        assert pairs_cli.main(["--model", str(model), "--pairs", str(pairs),
                               "--out", str(tmp_path / name), *opts]) == 0
        return [float(r.split("\t")[-1]) for r in (tmp_path / name).read_text().splitlines()]

    default = scores("default.tsv")
    assert "multi-word keywords also scored word by word" in capsys.readouterr().out
    assert default == scores("words.tsv", "--phrase-score", "words")
    clip = scores("clip.tsv", "--phrase-score", "clip")
    assert "the clip cosine alone" in capsys.readouterr().out
    for i, (d, c) in enumerate(zip(default, clip)):
        assert (d == c) == (i % 2 == 0), (i, d, c)  # "alexa" the same, "smart mirror" not
    for opts, want in (([], "words"), (["--phrase-score", "clip"], "clip")):
        out = tmp_path / f"clips_{want}"
        assert clips_cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"), "--enrol", "none",
                               "--out-dir", str(out), *opts]) == 0
        assert (out / "metrics.json").read_text().count(f'"phrase_score": "{want}"') == 1
    assert score_cli.parser().parse_args(["--exp-dir", "x", "--fbank-dir", "f", "--trials-dir", "t",
                                          "wsj_test:words"]).phrase_score == "clip"


def cohort_best(a, texts, own, size):
    """a's ``size`` best cosines with the cohort ``texts``, the text ``own`` left out."""
    cos = {k: float(a @ v / np.linalg.norm(a) / np.linalg.norm(v)) for k, v in texts.items()}
    best = sorted((c for k, c in cos.items() if k != own), reverse=True)[:size]
    return best


def test_phrase_words_with_tnorm_normalises_the_clip_and_each_word_window(tmp_path):
    """--phrase-score words --score-norm tnorm: 0.5 z(clip, phrase) + 0.5 max over ordered
    window sequences of min_k z(window_k, word_k), where z is a cosine less the mean over the std
    of that clip's (or window's) K best cosines with the cohort, the text itself left out;
    computed here window by window, every sequence tried. Single words keep z(clip, word)."""
    cohort = ["alexa", "computer", "jarvis", "snowboy", "hello", "world", "music", "mirror"]
    model = tiny_model_file(tmp_path / "final.pt", cohort=cohort)
    write_clips(tmp_path)
    assert clips_cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"), "--enrol", "none",
                           "--phrase-score", "words", "--floor-db", "none", "--out-dir",
                           str(tmp_path / "both"), "--score-norm", "tnorm",
                           "--cohort-size", "4"]) == 0
    rows = [r.split("\t") for r in (tmp_path / "both/scores.tsv").read_text().splitlines()]
    loaded = load_model(model)
    ext = fbank_extractor({k: v for k, v in loaded.features.items() if k != "mean_norm"})
    texts = embed_texts(loaded.model, cohort, loaded.tokenizer)

    def z(a, text):
        t = embed_texts(loaded.model, [text], loaded.tokenizer)[text]
        cos = float(a @ t / np.linalg.norm(a) / np.linalg.norm(t))
        best = cohort_best(a, texts, text, 4)
        return (cos - np.mean(best)) / np.std(best)

    multi = 0
    for r in rows:
        f = features_for(tmp_path / r[0], ext, 16000, True)
        want = z(embed_features(loaded.model, [f])[0], r[1])
        if len(r[1].split()) > 1:
            multi += 1
            spans, embs = [], []
            for length in dict.fromkeys(min(n, f.shape[0]) for n in (30, 50, 70, 90, 110)):
                for start in range(0, f.shape[0] - length + 1, 5):
                    spans.append((start, start + length))
                    embs.append(embed_features(loaded.model,
                                               [mean_normalize(f[start:start + length])])[0])
            word_z = [[z(e, word) for e in embs] for word in r[1].split()]
            want = 0.5 * want + 0.5 * brute_ordered(word_z, spans)
        assert float(r[3]) == pytest.approx(want, abs=2e-3), r
    assert multi > 0


def test_a_keyword_is_split_into_words_as_the_tokenizer_normalises_it(tmp_path):
    model = tiny_model_file(tmp_path / "final.pt")
    write_clips(tmp_path)
    pairs = tmp_path / "pairs.tsv"
    a, b = tmp_path / "audio/0.wav", tmp_path / "audio/1.wav"
    pairs.write_text(f"{a}\tsmart mirror\t1\n{b}\tSmart,  Mirror!\t0\n{a}\tSmart,  Mirror!\t1\n")
    res = score_pairs_file(model, pairs, tmp_path / "out.tsv", phrase="words")
    # the same clip and the same words after normalisation: the same score
    assert res.scores[0] == pytest.approx(res.scores[2], abs=1e-9)


def test_words_onnx_gives_the_slow_loops_scores_in_two_processes(tmp_path):
    """--words-onnx: the windows embedded by onnxruntime in two processes give the scores of
    the slow torch loop (every window alone, every sequence tried), to float rounding."""
    from pyadml.spot.onnx_export import export_onnx

    model = tiny_model_file(tmp_path / "final.pt")
    write_clips(tmp_path)
    export_onnx(model, tmp_path / "onnx")
    assert clips_cli.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"), "--enrol", "none",
                           "--out-dir", str(tmp_path / "words"), "--phrase-score", "words",
                           "--words-onnx", str(tmp_path / "onnx"), "--jobs", "2",
                           "--floor-db", "none"]) == 0
    rows = [r.split("\t") for r in (tmp_path / "words/scores.tsv").read_text().splitlines()]
    got = np.array([float(r[3]) for r in rows])
    assert any(len(r[1].split()) > 1 for r in rows)
    assert got == pytest.approx(slow_pair_scores(model, [(tmp_path / r[0], r[1]) for r in rows]),
                                abs=1e-5)


def test_score_pairs_cli_passes_words_onnx_on(tmp_path):
    """score_pairs --words-onnx uses the export: one of another model is refused, not ignored."""
    from pyadml.bin import score_pairs as pairs_cli
    from pyadml.spot.onnx_export import export_onnx

    model = tiny_model_file(tmp_path / "final.pt")
    write_clips(tmp_path)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{tmp_path / 'audio/0.wav'}\tsmart mirror\t1\n")
    export_onnx(tiny_model_file(tmp_path / "other.pt", seed=1), tmp_path / "other")
    export_onnx(model, tmp_path / "onnx")
    base = ["--model", str(model), "--pairs", str(pairs), "--phrase-score", "words"]
    assert pairs_cli.main(base + ["--out", str(tmp_path / "bad.tsv"),
                                  "--words-onnx", str(tmp_path / "other")]) == 1
    assert pairs_cli.main(base + ["--out", str(tmp_path / "onnx.tsv"), "--words-onnx",
                                  str(tmp_path / "onnx"), "--jobs", "2"]) == 0
    assert pairs_cli.main(base + ["--out", str(tmp_path / "torch.tsv")]) == 0
    got = float((tmp_path / "onnx.tsv").read_text().split("\t")[-1])
    assert got == pytest.approx(float((tmp_path / "torch.tsv").read_text().split("\t")[-1]), abs=1e-5)


def test_onnx_windows_chunked_over_processes_equal_one_process(tmp_path):
    """Clips split into chunks (here one or two clips each) over two processes: each clip's
    windows and embeddings are those of one process embedding them all."""
    from pyadml.score.phrase import onnx_window_embeddings
    from pyadml.spot.onnx_export import export_onnx

    model = tiny_model_file(tmp_path / "final.pt")
    export_onnx(model, tmp_path / "onnx")
    rng = np.random.default_rng(3)
    feats = {f"c{t}": rng.normal(size=(t, FBANK["num_mel_bins"])).astype(np.float32)
             for t in (25, 64, 140, 300)}
    one = onnx_window_embeddings(tmp_path / "onnx", feats.__getitem__, list(feats), jobs=1)
    two = onnx_window_embeddings(tmp_path / "onnx", feats.__getitem__, list(feats), jobs=2,
                                 max_windows=120)
    assert list(two) == list(feats)
    for c in feats:
        assert two[c][1].tolist() == one[c][1].tolist() == window_spans(feats[c].shape[0]).tolist()
        assert two[c][0] == pytest.approx(one[c][0], abs=1e-6)


def test_a_single_chunk_is_embedded_without_starting_processes(tmp_path, monkeypatch):
    """jobs > 1 but windows for one chunk only: no process pool (spawning one costs seconds of
    imports), and each clip gets what a pool over smaller chunks gives it."""
    import concurrent.futures

    from pyadml.score.phrase import onnx_window_embeddings
    from pyadml.spot.onnx_export import export_onnx

    model = tiny_model_file(tmp_path / "final.pt")
    export_onnx(model, tmp_path / "onnx")
    rng = np.random.default_rng(4)
    feats = {f"c{t}": rng.normal(size=(t, FBANK["num_mel_bins"])).astype(np.float32)
             for t in (30, 90, 200)}
    pooled = onnx_window_embeddings(tmp_path / "onnx", feats.__getitem__, list(feats), jobs=2,
                                    max_windows=2)

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started for one chunk")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    here = onnx_window_embeddings(tmp_path / "onnx", feats.__getitem__, list(feats), jobs=2)
    assert list(here) == list(feats)
    for c in feats:
        assert here[c][1].tolist() == pooled[c][1].tolist()
        assert here[c][0] == pytest.approx(pooled[c][0], abs=1e-6)
    with pytest.raises(AssertionError, match="process pool"):
        onnx_window_embeddings(tmp_path / "onnx", feats.__getitem__, list(feats), jobs=2,
                               max_windows=2)


def test_words_onnx_of_another_model_is_refused(tmp_path):
    from pyadml.spot.onnx_export import export_onnx

    model = tiny_model_file(tmp_path / "final.pt")
    export_onnx(tiny_model_file(tmp_path / "other.pt", seed=1), tmp_path / "onnx")
    with pytest.raises(PhraseScoreError, match="exported from another model"):
        check_phrase("words", "cosine", tmp_path / "onnx", model)
    with pytest.raises(PhraseScoreError, match="not an ONNX spotter directory"):
        check_phrase("words", "cosine", tmp_path, model)
    with pytest.raises(PhraseScoreError, match="needs --phrase-score words"):
        check_phrase("clip", "cosine", tmp_path / "onnx", model)
    with pytest.raises(PhraseScoreError, match="--jobs must be >= 1"):
        check_phrase("words", "cosine", None, model, jobs=0)
