"""espeak-ng and flite through their C libraries write the programs' samples, for every voice of
conf/synth.yaml, texts repeated within a batch included (the engines keep state between texts in
one process; the library path must not)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from pyadml.synth import native
from pyadml.synth.voices import Prosody, SynthesisError, Voice, engine_available, run_programs

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "egs" / "wsj_librikws" / "conf" / "synth.yaml"

pytestmark = pytest.mark.skipif(not engine_available(), reason="espeak-ng/flite/festival missing")


def voices(engine):
    cfg = yaml.safe_load(CONFIG.read_text())
    specs = cfg["voices"]["train"] + cfg["voices"]["heldout"]
    return sorted({s.split(":", 1)[1] for s in specs if s.startswith(engine + ":")})


TEXTS = ["water", "government", "hello world", "it's", "water", "Zürich", "water"]
PROSODIES = [Prosody(1.0, 0.0), Prosody(0.87, -12.0), Prosody(1.13, 7.5), Prosody(1.0, 0.0),
             Prosody(0.91, 3.0), Prosody(1.0, -4.0), Prosody(1.0, 0.0)]


def speak_both(voice, tmp_path):
    out = {}
    for library in (True, False):
        d = tmp_path / ("lib" if library else "prog")
        d.mkdir()
        paths = [d / f"{i}.wav" for i in range(len(TEXTS))]
        run_programs(voice, TEXTS, PROSODIES, paths, library=library)
        out[library] = [sf.read(p, dtype="int16") for p in paths]
    return out


@pytest.mark.parametrize("engine,name", [("espeak", v) for v in voices("espeak")]
                         + [("flite", v) for v in voices("flite")])
def test_library_writes_the_programs_samples(engine, name, tmp_path):
    if not native.available(engine, name):
        pytest.skip(f"no C library for {engine}:{name}")
    out = speak_both(Voice(engine, name), tmp_path)
    for text, (a, ra), (b, rb) in zip(TEXTS, out[True], out[False]):
        assert ra == rb and a.shape == b.shape and np.array_equal(a, b), (engine, name, text)
        assert np.abs(b).max() > 1000, (engine, name, text)  # speech, not silence
    # The prosody reaches the engine: the same word at other settings differs.
    assert not np.array_equal(out[True][0][0], out[True][4][0])
    assert np.array_equal(out[True][0][0], out[True][6][0])


def test_a_failing_text_names_the_voice_and_the_text(tmp_path):
    if not native.available("espeak", "en-us+m1"):
        pytest.skip("no C library for espeak-ng")
    with pytest.raises(SynthesisError, match=r"espeak-ng voice en-us\+m1: failed on 'water'"):
        run_programs(Voice("espeak", "en-us+m1"), ["hello", "water"], [Prosody()] * 2,
                     [tmp_path / "a.wav", tmp_path / "no-such-dir" / "b.wav"])
