"""Connected speech from espeak-ng and festival: an utterance spoken at once, its words timed
by the engine (espeak-ng's word events, festival's Word relation; pyadml.synth.voices), planned
for a share of training utterances (conf/synth.yaml ``connected``), and the check that scores
words spoken alone and connected."""

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from pyadml.synth import native
from pyadml.synth.corpora import load_config, word_utterances
from pyadml.synth.render import AudioConfig, render
from pyadml.synth.voices import (Prosody, UnspeakableError, Voice, engine_available, espeak_utterance,
                                  espeak_utterances, festival_utterance, festival_utterances)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "egs" / "wsj_librikws" / "conf" / "synth.yaml"
VOICE = Voice("espeak", "en-us+m7")

needs_espeak = pytest.mark.skipif(
    not engine_available() or not native.available("espeak", "en-us+m7"),
    reason="espeak-ng or its library missing")


@needs_espeak
def test_the_utterance_is_the_programs_audio_and_its_words_start_after_the_pauses(tmp_path):
    words = ["one,", "two,", "three"]  # espeak-ng pauses at each comma
    raw, rate, spans = espeak_utterance(VOICE, words, Prosody(1.0, 0.0))
    # The audio is what `espeak-ng -w` writes for the text at the same speed and pitch.
    prog = tmp_path / "prog.wav"
    subprocess.run(["espeak-ng", "-v", "en-us+m7", "-s", "165", "-p", "50", "-w", str(prog),
                    "one, two, three"], check=True)
    ref, ref_rate = sf.read(str(prog), dtype="float32")
    assert rate == ref_rate and np.array_equal(raw, ref)
    # The spans tile the speech from the first sample, in order.
    assert spans[0, 0] == 0 and np.all(spans[1:, 0] == spans[:-1, 1]) and spans[-1, 1] <= raw.size
    assert np.all(spans[:, 1] > spans[:, 0])

    def rms(a, b):
        return float(np.sqrt(np.mean(raw[max(a, 0):b].astype(np.float64) ** 2)))

    # Each later word starts at the end of the comma's pause: 40-10 ms before it is near
    # silence, the 100 ms after it is speech.
    ms = rate // 1000
    for start in spans[1:, 0]:
        assert rms(start - 40 * ms, start - 10 * ms) < 0.05 * rms(start, start + 100 * ms)


@needs_espeak
def test_a_word_espeak_joins_to_the_next_shares_the_span_by_letters():
    words = ["in", "the", "navy"]
    raw, rate, spans = espeak_utterance(VOICE, words, Prosody(1.0, 0.0))
    # espeak-ng reports no word event for the unstressed "the": "in" and "the" share the span
    # from "in"'s start to "navy"'s, 2 : 3 by their letters.
    a, b = spans[0, 0], spans[2, 0]
    assert spans[0, 1] == spans[1, 0] == round(a + (b - a) * 2 / 5)
    assert spans[1, 1] == b


@needs_espeak
def test_a_batch_of_utterances_is_each_spoken_as_alone():
    # One helper process for the batch; each utterance from a fresh program's state (espeak-ng
    # keeps state between texts, so a shared process would change the audio).
    utts = [["water", "water"], ["in", "the", "navy"], ["water", "water"]]
    pros = [Prosody(1.0, 0.0), Prosody(0.9, 5.0), Prosody(1.0, 0.0)]
    batch = espeak_utterances(VOICE, utts, pros)
    for (raw, rate, spans), words, p in zip(batch, utts, pros):
        one_raw, one_rate, one_spans = espeak_utterance(VOICE, words, p)
        assert rate == one_rate and np.array_equal(raw, one_raw)
        assert np.array_equal(spans, one_spans)
    assert np.array_equal(batch[0][0], batch[2][0])


@pytest.mark.skipif(not engine_available(), reason="festival missing")
def test_festival_times_the_words_of_its_own_audio(tmp_path):
    words = ["turn", "on", "the", "kitchen", "light"]
    raw, rate, spans = festival_utterance(Voice("festival", "kal_diphone"), words, Prosody())
    # The audio is what festival writes for the text on its own.
    ref = tmp_path / "ref.wav"
    (tmp_path / "ref.scm").write_text(
        "(voice_kal_diphone)\n(Parameter.set 'Duration_Stretch 1.0000)\n"
        f"(utt.save.wave (SynthText \"turn on the kitchen light\") \"{ref}\" 'riff)\n")
    subprocess.run(["festival", "-b", str(tmp_path / "ref.scm")], check=True)
    audio, ref_rate = sf.read(str(ref), dtype="float32")
    assert rate == ref_rate and np.array_equal(raw, audio)
    # In order, inside the audio, after its leading pause; back to back without a pause.
    assert 0 < spans[0, 0] and np.all(spans[1:, 0] == spans[:-1, 1]) and spans[-1, 1] < raw.size
    length = spans[:, 1] - spans[:, 0]
    assert length[2] < length[3]  # "the" is shorter than "kitchen"
    # Each word's span holds speech: its RMS is far above the leading pause's.
    lead = np.sqrt(np.mean(raw[: spans[0, 0]].astype(np.float64) ** 2))
    for a, b in spans:
        assert np.sqrt(np.mean(raw[a:b].astype(np.float64) ** 2)) > 10 * lead + 1e-4



@pytest.mark.skipif(not engine_available(), reason="festival missing")
def test_a_festival_batch_is_each_utterance_spoken_alone_and_an_untimed_one_named():
    voice = Voice("festival", "ked_diphone")
    utts = [["world", "war", "two"], ["co-op", "store"], ["turn", "on", "the", "light"]]
    pros = [Prosody(1.0, 0.0), Prosody(1.0, 0.0), Prosody(0.85, 0.0)]
    batch = festival_utterances(voice, utts, pros)
    # festival's tokeniser reads "co-op" as two words: that utterance cannot be timed.
    assert isinstance(batch[1], UnspeakableError)
    assert "festival read 3 words in 'co-op store', not 2" in str(batch[1])
    with pytest.raises(UnspeakableError, match="read 3 words"):
        festival_utterance(voice, utts[1], pros[1])
    for k in (0, 2):  # one process, the same audio and times as a process per utterance
        raw, rate, spans = batch[k]
        one_raw, one_rate, one_spans = festival_utterance(voice, utts[k], pros[k])
        assert rate == one_rate and np.array_equal(raw, one_raw)
        assert np.array_equal(spans, one_spans) and len(spans) == len(utts[k])
    # The slower prosody stretches the words (0.85 speed: durations 1/0.85 of festival's own).
    normal = festival_utterance(voice, utts[2], Prosody(1.0, 0.0))[2]
    ratio = np.diff(batch[2][2], axis=1).sum() / np.diff(normal, axis=1).sum()
    assert 1.1 < ratio < 1.25

def test_a_share_of_training_utterances_is_planned_connected_and_nothing_else_moves():
    cfg = load_config(CONFIG, "tiny")
    cfg["connected"] = {}
    tokens = [f"w{i}" for i in range(400)]
    plain = word_utterances(cfg, tokens, None, False, 4, np.random.default_rng(3), "", "{utt}.wav")
    cfg["connected"] = {"espeak": 0.5}
    mixed = word_utterances(cfg, tokens, None, False, 4, np.random.default_rng(3), "", "{utt}.wav")
    held = word_utterances(cfg, tokens, None, True, 4, np.random.default_rng(3), "", "{utt}.wav")
    assert [i.connected for i in plain] == [False] * len(plain)
    assert not any(i.connected for i in held)  # test sets never
    for p, m in zip(plain, mixed):
        assert (p.id, p.words, p.prosody, p.pauses, p.peak_dbfs, p.seed) == \
               (m.id, m.words, m.prosody, m.pauses, m.peak_dbfs, m.seed)
    espeak = [m for m in mixed if m.voice.engine == "espeak"]
    assert not any(m.connected for m in mixed if m.voice.engine != "espeak")
    share = np.mean([m.connected for m in espeak])
    assert len(espeak) > 40 and 0.3 < share < 0.7


@pytest.mark.parametrize("value, message", [
    ("{flite: 0.5}", "connected.flite: only espeak, festival can speak connected utterances"),
    ("{espeak: 1.5}", "connected.espeak must be a share in \\[0, 1\\], got 1.5"),
    ("[espeak]", "connected must map engines to shares"),
])
def test_bad_connected_settings_name_the_key(tmp_path, value, message):
    raw = yaml.safe_load(CONFIG.read_text())
    raw["connected"] = yaml.safe_load(value)
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=message):
        load_config(path, "tiny")


@needs_espeak
def test_a_connected_item_is_rendered_with_its_words_timed_back_to_back(tmp_path):
    cfg = load_config(CONFIG, "tiny")
    cfg["voices"]["train"] = [VOICE]
    cfg["connected"] = {"espeak": 1.0}
    items = word_utterances(cfg, ["turn", "on", "the", "kitchen", "light"], None, False, 5,
                            np.random.default_rng(0), "", "{utt}.wav")
    assert len(items) >= 1 and all(i.connected for i in items)
    out = render(items, tmp_path, AudioConfig())
    for item in items:
        r = out[item.id]
        assert [w for w, _, _ in r.words] == list(item.words)
        starts = [s for _, s, _ in r.words]
        ends = [s + n for _, s, n in r.words]
        # connected: each word ends where the next starts (no planned pause between them)
        assert all(e == s for e, s in zip(ends[:-1], starts[1:]))
        assert starts[0] % 160 == 0 and ends[-1] <= r.num_samples
        audio, sr = sf.read(str(tmp_path / item.rel_path))
        assert sr == 16000 and audio.size == r.num_samples


@pytest.mark.skipif(not engine_available(), reason="festival missing")
def test_a_connected_festival_utterance_it_cannot_time_is_spoken_word_by_word(tmp_path):
    cfg = load_config(CONFIG, "tiny")
    cfg["voices"]["train"] = [Voice("festival", "ked_diphone")]
    cfg["connected"] = {"festival": 1.0}
    base = word_utterances(cfg, ["x"], None, False, 1, np.random.default_rng(0), "", "{utt}.wav")[0]
    items = [dataclasses.replace(base, id=f"u{k}", rel_path=f"u{k}.wav", words=words,
                                 pauses=[0.1] * (len(words) + 1))
             for k, words in enumerate([["turn", "on", "the", "light"], ["the", "co-op", "store"]])]
    assert len(items) == 2 and all(i.connected for i in items)
    out = render(items, tmp_path, AudioConfig())
    gaps = []
    for item in items:
        r = out[item.id]
        assert [w for w, _, _ in r.words] == list(item.words) and not r.dropped
        starts = [s for _, s, _ in r.words]
        ends = [s + n for _, s, n in r.words]
        gaps.append([s - e for e, s in zip(ends[:-1], starts[1:])])
    assert gaps[0] == [0, 0, 0]  # timed: back to back
    assert all(g > 0 for g in gaps[1])  # "co-op" reads as two words: spoken alone, with pauses
