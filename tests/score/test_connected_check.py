"""pyadml.bin.connected_check: the held-out espeak-ng utterances of a words test set, spoken
again word by word and as connected speech, scored with the score_clips protocol."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from pyadml.synth import native
from pyadml.synth.voices import Prosody, Voice, engine_available, synthesize, synthesize_utterance

from test_score import tiny_model_file

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "egs" / "wsj_librikws" / "conf" / "synth.yaml"
SR = 16000

pytestmark = pytest.mark.skipif(
    not engine_available() or not native.available("espeak", "en-us+m7"),
    reason="espeak-ng or its library missing")


def utterance_cuts(tmp_path, speaker, utterances):
    """Word cuts as stage 2 writes them: one per word, its utterance in the supervision."""
    from lhotse import CutSet, Recording, SupervisionSegment

    cuts = []
    for u, words in enumerate(utterances):
        wav = tmp_path / f"{speaker}-{u}.wav"
        sf.write(str(wav), np.zeros(SR * len(words), np.float32), SR)
        rec = Recording.from_file(wav, recording_id=f"{speaker}-{u}")
        for k, w in enumerate(words):
            cut = rec.to_cut().truncate(offset=k, duration=1.0).with_id(f"{speaker}-{u}_{k}")
            cut.supervisions = [SupervisionSegment(cut.id, rec.id, k, 1.0, text=w, speaker=speaker,
                                                   custom={"utt": f"{speaker}-{u}", "word": w})]
            cuts.append(cut)
    path = tmp_path / "cuts.jsonl.gz"
    CutSet.from_cuts(cuts).to_file(path)
    return path


def test_words_alone_and_connected_are_scored_per_voice(tmp_path, capsys):
    from pyadml.bin import connected_check as cli

    model = tiny_model_file(tmp_path / "final.pt")
    utts = [["turn", "on", "the", "light"], ["open", "the", "door"]]
    cuts = utterance_cuts(tmp_path, "espeak-en-us-m7", utts)
    out = tmp_path / "conn"
    assert cli.main(["--model", str(model), "--cuts", str(cuts), "--synth-config", str(CONFIG),
                     "--out-dir", str(out)]) == 0
    assert "connected" in capsys.readouterr().out
    rows = json.loads((out / "metrics.json").read_text())
    assert [(r["speaker"], r["mode"], r["clips"]) for r in rows] == [
        ("espeak-en-us-m7", "alone", 7), ("espeak-en-us-m7", "connected", 7)]
    voice = Voice("espeak", "en-us+m7")
    pad = int(0.05 * SR)
    # A word alone: the clip stage 0 would speak, 50 ms either side (and the dither).
    alone = synthesize(voice, ["light"])[0]
    got = sf.read(str(out / "espeak-en-us-m7" / "alone" / "0000_03.wav"), dtype="float32")[0]
    assert got.size == alone.size + 2 * pad
    np.testing.assert_allclose(got[pad:-pad], alone, atol=1e-3)
    # Connected: the utterance spoken at once, the word's span with 50 ms of its neighbours.
    audio, spans, kept = synthesize_utterance(voice, utts[1], Prosody())
    a, b = spans[1]  # "the"
    got = sf.read(str(out / "espeak-en-us-m7" / "connected" / "0001_01.wav"), dtype="float32")[0]
    ref = np.concatenate([np.zeros(pad, np.float32), audio, np.zeros(pad, np.float32)])[a:b + 2 * pad]
    np.testing.assert_allclose(got, ref, atol=1e-3)
    lines = (out / "espeak-en-us-m7" / "connected" / "clips.tsv").read_text().splitlines()
    assert lines[4] == "0001_00.wav\topen"


def test_a_set_without_an_espeak_voice_is_an_error(tmp_path, capsys):
    from pyadml.bin import connected_check as cli

    cuts = utterance_cuts(tmp_path, "flite-slt", [["turn", "on"]])
    assert cli.main(["--model", str(tmp_path / "final.pt"), "--cuts", str(cuts),
                     "--synth-config", str(CONFIG), "--out-dir", str(tmp_path / "o")]) == 1
    assert "no utterance of a voice that speaks with word times" in capsys.readouterr().err
