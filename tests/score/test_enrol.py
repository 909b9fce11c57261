"""TTS enrolment (pyadml.score.enrol): the query formula on a hand-worked example, the voices'
failures, and the scoring paths (score_pairs, stage 8's score, the spotter) against it."""

from pathlib import Path

import numpy as np
import pytest

from pyadml.score import enrol as E
from pyadml.synth.voices import engine_available

from test_score import tiny_model_file, write_noise

needs_tts = pytest.mark.skipif(not engine_available(), reason="espeak-ng/flite/festival missing")
ESPEAK = "espeak:en-us+m1,espeak:en-gb+f1"


def fake_enrolment(monkeypatch, spoken, weight=0.5, voices="espeak:en-us+m1,espeak:en-gb+f1"):
    """An Enrolment whose 'features' are the voice's index and 'embeddings' a table: voice v
    saying text t embeds as spoken[(v, t)]; a missing entry is a text the voice cannot speak."""
    names = voices.split(",")
    calls = []

    def synthesize(voice, texts, on_failure="raise"):
        v = f"{voice.engine}:{voice.name}"
        calls.append((v, list(texts)))
        return [np.full(1600, names.index(v) + 1.0, np.float32) if (v, t) in spoken else None
                for t in texts]

    monkeypatch.setattr("pyadml.synth.voices.synthesize", synthesize)
    monkeypatch.setattr("pyadml.synth.voices.check_engines", lambda voices: None)
    table = {}

    def features(audio):
        return np.array([np.abs(audio).max()])  # the clip's voice index (the dither is 1e-4)

    def embed(feats):
        return np.stack([table[int(round(float(f[0])))] for f in feats])

    enr = E.Enrolment(embed, features, voices, weight)

    def load(text_of_voice):
        table.clear()
        table.update(text_of_voice)
    return enr, load, calls


def test_query_is_the_unit_mix_of_the_text_and_the_voices_centroid(monkeypatch):
    # Hand-worked: t = (2, 0); the two voices embed "go" as (0, 3) and (0, 1), each made unit
    # first, so c = (0, 1); w = 0.5 gives q = unit(0.5 * (1, 0) + 0.5 * (0, 1)) = (0.7071, 0.7071).
    enr, load, _ = fake_enrolment(monkeypatch, {("espeak:en-us+m1", "go"), ("espeak:en-gb+f1", "go")})
    load({1: np.array([0.0, 3.0]), 2: np.array([0.0, 1.0])})
    q = enr.queries({"go": np.array([2.0, 0.0])})["go"]
    np.testing.assert_allclose(q, [0.70710678, 0.70710678], atol=1e-6)
    # w = 0.25 with the voices at (3, 4)/5 and (0, 1): c = unit((0.6, 1.8)) = (0.3162, 0.9487);
    # q = unit(0.75 * (1, 0) + 0.25 * c) = unit((0.8291, 0.2372)).
    enr, load, _ = fake_enrolment(monkeypatch, {("espeak:en-us+m1", "go"), ("espeak:en-gb+f1", "go")},
                                  weight=0.25)
    load({1: np.array([3.0, 4.0]), 2: np.array([0.0, 7.0])})
    q = enr.queries({"go": np.array([5.0, 0.0])})["go"]
    want = np.array([0.75 + 0.25 * 0.31622777, 0.25 * 0.9486833])
    np.testing.assert_allclose(q, want / np.linalg.norm(want), atol=1e-6)


def test_the_queries_do_not_depend_on_the_order_the_texts_come_in(monkeypatch):
    """An encoder whose output moves with a clip's place in its batch (as batched float sums
    do, in their last bits) gives the same queries for the texts in either order: the
    enrolment speaks and embeds them in an order of its own."""
    spoken = {(v, t) for v in ESPEAK.split(",") for t in ("go", "stop", "yes")}
    texts = {"go": np.array([1.0, 0.0]), "stop": np.array([0.0, 1.0]), "yes": np.array([1.0, 1.0])}
    out = []
    for order in (["go", "stop", "yes"], ["yes", "go", "stop"]):
        enr, load, _ = fake_enrolment(monkeypatch, spoken)
        load({1: np.array([0.0, 3.0]), 2: np.array([2.0, 1.0])})
        plain = enr.embed_audio
        enr.embed_audio = lambda feats: plain(feats) + 1e-3 * np.arange(len(feats))[:, None]
        out.append(enr.queries({t: texts[t] for t in order}))
    for t in texts:
        np.testing.assert_array_equal(out[0][t], out[1][t])


def test_a_text_no_voice_speaks_keeps_its_text_and_is_counted(monkeypatch):
    enr, load, calls = fake_enrolment(monkeypatch, {("espeak:en-us+m1", "go")})
    load({1: np.array([0.0, 1.0])})
    q = enr.queries({"go": np.array([1.0, 0.0]), "xq": np.array([0.0, 5.0])})
    np.testing.assert_allclose(q["xq"], [0.0, 5.0])          # text embedding unchanged
    np.testing.assert_allclose(q["go"], [0.70710678, 0.70710678], atol=1e-6)  # one voice only
    assert enr.text_only == {"xq"}
    # Each text is spoken once per voice, whatever is asked after it.
    enr.queries({"go": np.array([1.0, 0.0])})
    assert sorted(calls) == [("espeak:en-gb+f1", ["go", "xq"]), ("espeak:en-us+m1", ["go", "xq"])]


def test_the_voices_speak_at_once_and_keep_their_order(monkeypatch):
    """The engines' voices are synthesised side by side (each is its own process): both are
    inside synthesize together, or the barrier breaks; the clips come back in voice order
    although the first voice finishes last; a voice that fails names itself."""
    import threading

    from pyadml.synth.voices import SynthesisError

    enr, _, _ = fake_enrolment(monkeypatch, set())
    both_in = threading.Barrier(2, timeout=30)
    done = []

    def synthesize(voice, texts, on_failure="raise"):
        v = f"{voice.engine}:{voice.name}"
        both_in.wait()
        if v == "espeak:en-us+m1":
            threading.Event().wait(0.2)  # finish after the other voice
        done.append(v)
        if "bad" in texts:
            raise SynthesisError("engine crashed")
        first = {"espeak:en-us+m1": 10.0, "espeak:en-gb+f1": 20.0}[v]
        return [np.full(4, first + i, np.float32) for i in range(len(texts))]

    monkeypatch.setattr("pyadml.synth.voices.synthesize", synthesize)
    clips = enr._synthesize(["a", "b"])
    assert done == ["espeak:en-gb+f1", "espeak:en-us+m1"]
    assert [[float(c[0]) for c in v] for v in clips] == [[10.0, 11.0], [20.0, 21.0]]
    both_in.reset()
    with pytest.raises(E.EnrolError, match=r"voice espeak:en-(us\+m1|gb\+f1): engine crashed"):
        enr._synthesize(["bad"])


def test_bad_voices_and_weights_are_refused_by_name():
    with pytest.raises(E.EnrolError, match="enrolment voice 'espeak'"):
        E.parse_voices("espeak")
    with pytest.raises(E.EnrolError, match="no enrolment voices"):
        E.parse_voices(" , ")
    with pytest.raises(E.EnrolError, match=r"weight must be in \(0, 1\], got 1.5"):
        E.check_weight(1.5)
    with pytest.raises(E.EnrolError, match="one of"):
        E.model_enrol("cosine", "audio")
    with pytest.raises(E.EnrolError, match="detector head"):
        E.model_enrol("phonmatchnet", "tts")
    assert E.model_enrol("phonmatchnet", None, "tts") == "none"


@needs_tts
def test_a_missing_voice_names_itself_and_the_way_out():
    with pytest.raises(E.EnrolError, match=r"flite has no voice.*nosuchvoice.*--enrol none"):
        E.Enrolment(lambda f: None, lambda a: a, "flite:nosuchvoice")


@needs_tts
def test_score_pairs_with_tts_is_the_cosine_with_the_query(tmp_path):
    """score_pairs --enrol tts against the query built here from the model's own pieces."""
    from pyadml.models.export import load_model
    from pyadml.score.embed import embed_texts
    from pyadml.score.pairs import features_for, score_pairs_file
    from pyadml.data.features import fbank_extractor, fbank_options

    model = tiny_model_file(tmp_path / "final.pt")
    wavs = [write_noise(tmp_path / f"{i}.wav", 0.8, seed=i) for i in range(2)]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{w}\t{k}\n" for w in wavs for k in ("water", "hello")))
    res = score_pairs_file(model, pairs, tmp_path / "out.tsv", norm="none", phrase="clip",
                           floor_db="none", enrol="tts", enrol_voices=ESPEAK)
    assert res.enrol == "tts" and res.text_only == []
    loaded = load_model(model)
    text = embed_texts(loaded.model, ["water", "hello"], loaded.tokenizer)
    enr = E.torch_enrolment(loaded, ESPEAK, 0.5, None)
    q = enr.queries(text)
    ext = fbank_extractor(fbank_options(loaded.features))
    from pyadml.score.embed import embed_features
    a = embed_features(loaded.model, [features_for(w, ext, 16000, True) for w in wavs])
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    want = [float(a[i] @ q[k]) for i in range(2) for k in ("water", "hello")]
    np.testing.assert_allclose(res.scores, want, atol=1e-5)
    # and the text alone differs: the voices moved the query
    plain = score_pairs_file(model, pairs, tmp_path / "out2.tsv", norm="none", phrase="clip",
                             floor_db="none", enrol="none")
    assert np.max(np.abs(plain.scores - res.scores)) > 1e-3


@needs_tts
def test_the_spotter_enrols_as_score_pairs_does(tmp_path):
    """KeywordSpotter(enrol='tts').score of a clip equals score_pairs --enrol tts of the same clip
    to the fbank implementations' difference (kaldi-native-fbank against lhotse)."""
    from pyadml.score.pairs import score_pairs_file
    from pyadml.spot import KeywordSpotter

    model = tiny_model_file(tmp_path / "final.pt")
    wav = write_noise(tmp_path / "a.wav", 1.0, seed=3)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{wav}\twater\n{wav}\ttable\n")
    res = score_pairs_file(model, pairs, tmp_path / "out.tsv", norm="none", phrase="clip",
                           floor_db="none", enrol="tts", enrol_voices=ESPEAK)
    sp = KeywordSpotter.load(model, enrol="tts", enrol_voices=ESPEAK).enroll(["water", "table"])
    got = sp.score(str(wav))
    np.testing.assert_allclose([got["water"], got["table"]], res.scores, atol=5e-3)
    plain = KeywordSpotter.load(model).enroll(["water", "table"]).score(str(wav))
    assert abs(plain["water"] - got["water"]) > 1e-3
    # each enrolment has its own default operating point; a given threshold is kept
    from pyadml.spot.spotter import DEFAULT_THRESHOLD, DEFAULT_THRESHOLD_TTS
    assert sp.default_threshold == DEFAULT_THRESHOLD_TTS != DEFAULT_THRESHOLD
    assert KeywordSpotter.load(model).default_threshold == DEFAULT_THRESHOLD
    assert KeywordSpotter.load(model, enrol="tts", enrol_voices=ESPEAK,
                               threshold=0.3).default_threshold == 0.3


@needs_tts
def test_the_users_commands_enrol_by_tts_by_default_and_say_so(tmp_path, capsys):
    import json

    from pyadml.bin import score_clips, score_pairs

    model = tiny_model_file(tmp_path / "final.pt")
    wavs = [write_noise(tmp_path / f"{i}.wav", 0.6, seed=i) for i in range(2)]
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(f"{wavs[0]}\twater\n{wavs[1]}\tHello!\n")

    def scores(name, *opts):
        assert score_pairs.main(["--model", str(model), "--pairs", str(pairs),
                                 "--out", str(tmp_path / name), *opts]) == 0
        return [float(r.split("\t")[-1]) for r in (tmp_path / name).read_text().splitlines()]

    default = scores("default.tsv")
    assert "keywords enrolled by their text and by TTS voices" in capsys.readouterr().out
    assert default == scores("tts.tsv", "--enrol", "tts")
    assert default != scores("none.tsv", "--enrol", "none")
    assert "keywords enrolled by their text alone" in capsys.readouterr().out
    # "Hello!" is spoken as its normalised words, as its phones are: the same query as "hello".
    # Scored alone instead of beside "water", the float sums may round the other way at the
    # file's sixth decimal (0.670406 against 0.670407 on an AMD host): 1e-5, not 1e-6.
    pairs.write_text(f"{wavs[1]}\thello\n")
    assert scores("hello.tsv")[0] == pytest.approx(default[1], abs=1e-5)
    pairs.write_text(f"{wavs[1]}\thallo\n")
    assert abs(scores("hallo.tsv")[0] - default[1]) > 1e-4  # another word's query is not that close
    (tmp_path / "clips.tsv").write_text("0.wav\twater\n1.wav\thello\n")
    assert score_clips.main(["--model", str(model), "--clips", str(tmp_path / "clips.tsv"),
                             "--out-dir", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["enrol"] == "tts"
    assert score_pairs.main(["--model", str(model), "--pairs", str(pairs), "--out",
                             str(tmp_path / "x.tsv"), "--enrol-voices", "flite:nosuchvoice"]) == 1
    assert "flite has no voice" in capsys.readouterr().err and not (tmp_path / "x.tsv").exists()


@needs_tts
def test_initialisms_reach_the_voices_as_letters():
    import shutil
    import subprocess

    from pyadml.text import G2P

    spoken = E.spoken_by(G2P())
    assert spoken("Hey A.I.!") == "hey A.I."
    assert spoken("ChatGPT, $5") == "chat G.P.T. five dollars"
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng missing")
    # espeak-ng's phonemes: the letter's name (eI) after "hey" (h'eI); "hey a i", what the
    # voices were given before, reads the article (a#).
    said = subprocess.run(["espeak-ng", "-q", "-x", spoken("Hey A.I.")], capture_output=True,
                          text=True, check=True).stdout
    assert "eI" in said.replace("h'eI", "") and "a#" not in said
