"""espeak-ng voice names with a variant: the variant is never dropped.

espeak-ng 1.51 speaks ``en-gb+m3``, ``en-gb+f1`` and ``en-gb+f5`` as the plain ``en-gb`` voice,
sample for sample (no voice file is called en-gb, and its fallback by language forgets the
variant). The recipes' training, held-out and enrolment voices include those three."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from pyadml.score.enrol import ENROL_VOICES
from pyadml.synth.voices import (SynthesisError, Voice, engine_available, espeak_voice_name,
                                 parse_espeak_voices, synthesize)

ROOT = Path(__file__).resolve().parents[2]

# Rows of espeak-ng 1.51's 'espeak-ng --voices' and '--voices=variant', as printed.
LISTING = """\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 3  en-uk           --/M      english-mb-en1     mb/mb-en1            (en-gb 3)(en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  en-gb-x-rp      --/M      English_(Received_Pronunciation) gmw/en-GB-x-rp       (en-gb 4)(en 5)
 5  en-us           --/M      us-mbrola-2        mb/mb-us2            (en 7)
 9  en              --/F      en-german-1        mb/mb-de1-en
 5  de              --/M      German             gmw/de
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  variant         --/M      Alex               !v/Alex
 5  variant         --/M      m3                 !v/m3
 5  variant         --/F      f1                 !v/f1
 5  variant         --/F      klatt2             !v/klatt2
"""


@pytest.mark.parametrize("name,given", [
    ("en-gb+m3", "gmw/en+m3"),           # a language: its voice file, and the variant
    ("en-gb+alex", "gmw/en+alex"),       # variants match whatever their case
    ("en-us+f1", "en-us+f1"),            # a voice file's own name: espeak-ng keeps the variant
    ("en-GB-x-rp+klatt2", "en-GB-x-rp+klatt2"),
    ("German+m3", "German+m3"),          # a voice's name
    ("gmw/en+f1", "gmw/en+f1"),          # its file
    ("en-gb", "en-gb"),                  # no variant: nothing to lose
    ("de", "de"),
    ("mb-en1", "mb-en1"),                # an mbrola voice by its name
])
def test_names_espeak_keeps_the_variant_of(name, given):
    assert espeak_voice_name(name, parse_espeak_voices(LISTING)) == given


@pytest.mark.parametrize("name,error", [
    ("en-gb+zz", r"no variant 'zz' \(in 'en-gb\+zz'\).*--voices=variant"),
    ("en-uk+m3", r"no voice 'en-uk'"),   # a language of mbrola voices only
    ("xx+f1", r"no voice 'xx'"),
    ("xx", r"no voice 'xx'"),
])
def test_an_unknown_voice_or_variant_is_named(name, error):
    with pytest.raises(SynthesisError, match=error):
        espeak_voice_name(name, parse_espeak_voices(LISTING))


def configured_espeak_voices():
    specs = set(ENROL_VOICES)
    for recipe in ("wsj_librikws", "librispeech_libriphrase"):
        cfg = yaml.safe_load((ROOT / "egs" / recipe / "conf" / "synth.yaml").read_text())
        specs |= set(cfg["voices"]["train"] + cfg["voices"]["heldout"])
    return sorted(s.split(":", 1)[1] for s in specs if s.startswith("espeak:"))


@pytest.mark.skipif(not engine_available(), reason="espeak-ng/flite/festival missing")
def test_every_configured_espeak_voice_is_its_own_speaker():
    """Each voice of the recipes and of the enrolment speaks a word unlike its base voice and
    unlike every other voice of the list (the en-gb variants were all the base voice)."""
    names = configured_espeak_voices()
    assert {"en-gb+m3", "en-gb+f1", "en-gb+f5"} <= set(names)
    bases = sorted({n.partition("+")[0] for n in names} - set(names))
    audio = {}
    for n in names + bases:
        (audio[n],) = synthesize(Voice("espeak", n), ["government"])
    for i, a in enumerate(names + bases):
        for b in (names + bases)[i + 1:]:
            same = audio[a].shape == audio[b].shape and np.array_equal(audio[a], audio[b])
            assert not same, f"espeak:{a} and espeak:{b} speak the same samples"
