"""The LibriSpeech stand-in (pyadml.synth.librispeech): its alignment files read back by the
preparer, its speaker numbering shared with the LibriPhrase stand-in, and (with the TTS
engines) a tiny build in LibriSpeech's layout that the preparer reads in both formats."""

import csv
import json
from pathlib import Path

import pytest
import soundfile as sf

from pyadml.data.prepare import prepare_corpus
from pyadml.data.prepare.librispeech import read_alignment_txt, read_speakers, textgrid_words
from pyadml.synth.corpora import load_config
from pyadml.synth.librispeech import (
    SUBSETS,
    _alignment_line,
    _sex,
    _textgrid,
    build_librispeech,
    is_complete,
    load_librispeech_config,
    relabel_libriphrase,
    speaker_key,
    speaker_number,
    speaker_numbers,
    subset_voices,
)
from pyadml.synth.voices import Voice, engine_available

CONF = Path(__file__).resolve().parents[2] / "egs" / "librispeech_libriphrase" / "conf"
WORDS = [("HELLO", 3200, 4800), ("THERE", 8000, 3200), ("<unk>", 11200, 1600)]  # samples


def _cfg(size="tiny", **over):
    common = load_config(CONF / "synth.yaml", size)
    cfg = load_librispeech_config(CONF / "synth_librispeech.yaml", common, size)
    cfg["librispeech"].update(over)
    return cfg


def test_alignment_line_and_textgrid_read_back_the_same_words(tmp_path):
    line = _alignment_line("1-2-0000", WORDS, 16000)
    assert line == '1-2-0000 ",HELLO,THERE,<unk>," "0.200,0.500,0.700,0.800,1.000"'
    (tmp_path / "a.alignment.txt").write_text(line + "\n")
    txt = [(w.symbol, round(w.start, 3), round(w.duration, 3))
           for w in read_alignment_txt(tmp_path / "a.alignment.txt")["1-2-0000"] if w.symbol]
    (tmp_path / "a.TextGrid").write_text(_textgrid(WORDS, 16000))
    tg = [(w.symbol, round(w.start, 3), round(w.duration, 3))
          for w in textgrid_words(tmp_path / "a.TextGrid") if w.symbol]
    assert txt == tg == [("HELLO", 0.2, 0.3), ("THERE", 0.5, 0.2), ("<unk>", 0.7, 0.1)]


def test_voices_speakers_and_subsets():
    cfg = _cfg()
    numbers = speaker_numbers(cfg)
    assert len(set(numbers.values())) == len(numbers) and all(n.isdigit() for n in numbers.values())
    clean = subset_voices(cfg, "train-clean-100") + subset_voices(cfg, "train-clean-360")
    assert sorted(v.speaker_id for v in clean) == sorted(v.speaker_id for v in cfg["voices"]["train"])
    assert not set(subset_voices(cfg, "train-clean-100")) & set(subset_voices(cfg, "train-clean-360"))
    assert subset_voices(cfg, "train-other-500") == cfg["voices"]["heldout"]
    # test-clean: the held-out voices again, as other speakers (one subset per speaker); the
    # voices' own numbers are their hashes as before test-clean existed (no collision here)
    assert subset_voices(cfg, "test-clean") == cfg["voices"]["heldout"]
    heldout = cfg["voices"]["heldout"]
    test = {numbers[speaker_key(v, "test-clean")] for v in heldout}
    assert len(test) == len(heldout) and not test & {numbers[v.speaker_id] for v in heldout}
    assert len(numbers) == len(cfg["voices"]["train"]) + 2 * len(heldout)
    for v in cfg["voices"]["train"] + heldout:
        assert speaker_key(v, "train-other-500") == v.speaker_id
        assert numbers[v.speaker_id] == str(speaker_number(v))


@pytest.mark.parametrize("spec, sex", [
    ("kokoro:jf_alpha", "F"), ("kokoro:jm_kumo", "M"), ("kokoro:af_bella", "F"),
    ("kokoro:bm_lewis", "M"), ("kokoro:am_adam60+bf_emma40", "M"), ("kokoro:jm_kumo30+bf_emma70", "F"),
    ("espeak:en-us+f2", "F"), ("espeak:en-us+m1", "M"), ("flite:slt", "F"), ("piper:joe", "M"),
])
def test_speakers_sex_for_speakers_txt(spec, sex):
    # a Kokoro blend is the sex of its largest style: ?f_ female, ?m_ male
    assert _sex(Voice.parse(spec)) == sex


def test_config_errors(tmp_path):
    common = load_config(CONF / "synth.yaml", "tiny")
    (tmp_path / "c.yaml").write_text("sizes: {tiny: {train-clean-999: {tokens: 3}}}\n")
    with pytest.raises(ValueError, match="train-clean-999"):
        load_librispeech_config(tmp_path / "c.yaml", common, "tiny")
    (tmp_path / "c.yaml").write_text("bogus: 1\nsizes: {tiny: {}}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_librispeech_config(tmp_path / "c.yaml", common, "tiny")


def test_relabel_libriphrase_is_idempotent(tmp_path):
    cfg = _cfg()
    numbers = speaker_numbers(cfg)
    v = cfg["voices"]["heldout"][0].speaker_id
    d = tmp_path / "data"
    d.mkdir()
    p = d / "libriphrase_diffspk_all_1word.csv"
    p.write_text("anchor,anchor_spk,x,comparison_spk\na.wav,%s,y,%s\n" % (v, v))
    assert relabel_libriphrase(tmp_path, numbers) == 1
    assert relabel_libriphrase(tmp_path, numbers) == 0
    row = list(csv.DictReader(open(p)))[0]
    assert row["anchor_spk"] == row["comparison_spk"] == numbers[v]


@pytest.mark.slow
@pytest.mark.skipif(not engine_available(), reason="espeak-ng/flite/festival missing")
def test_tiny_build_in_librispeech_layout_reads_the_same_in_both_formats(tmp_path):
    results = {}
    for fmt in ("txt", "textgrid"):
        cfg = _cfg(alignment_format=fmt)
        stats = build_librispeech(cfg, tmp_path / fmt, nj=2)
        root = tmp_path / fmt / "librispeech" / "LibriSpeech"
        flacs = sorted(root.rglob("*.flac"))
        assert flacs and all(f.name.startswith(f"{f.parent.parent.name}-{f.parent.name}-") for f in flacs)
        assert sf.info(str(flacs[0])).format == "FLAC"
        trans = next(root.rglob("*.trans.txt")).read_text()
        assert trans == trans.upper()
        spk = read_speakers(root / "SPEAKERS.TXT")
        assert {s["subset"] for s in spk.values()} == set(SUBSETS)
        m = prepare_corpus("librispeech", root, None, part="train=train-clean-100,train-clean-360")
        assert len(spk) == len(cfg["voices"]["train"]) + 2 * len(cfg["voices"]["heldout"])
        clean = {k for k, s in spk.items() if s["subset"].startswith("train-clean-")}
        assert {s.speaker for s in m["supervisions"]} <= clean
        # test-clean read without its alignments (--ctm none), as stage 1 reads stage 9's speech
        t = prepare_corpus("librispeech", root, None, part="test-clean", ctm="none")
        assert t["stats"]["utterances"] == stats["test-clean"]["utterances"] > 0
        assert t["stats"]["unaligned_utterances"] == t["stats"]["utterances"]
        assert {s.speaker for s in t["supervisions"]} == {
            k for k, s in spk.items() if s["subset"] == "test-clean" and float(s["minutes"]) > 0}
        assert all(s.alignment is None and s.text for s in t["supervisions"])
        assert m["stats"]["unknown"] == sum(stats[s]["unknown_in_alignment"] for s in SUBSETS[:2])
        results[fmt] = {s.id: [(w.symbol, w.start, w.duration) for w in s.alignment["word"]]
                        for s in m["supervisions"]}
    assert results["txt"] == results["textgrid"]
    # The marker records the names espeak-ng was given; one without them (written while
    # espeak-ng dropped en-gb+f1's variant) is not complete.
    cfg, marker = _cfg(alignment_format="txt"), tmp_path / "txt" / "librispeech" / ".complete"
    done = json.loads(marker.read_text())
    assert done["espeak_names"]["en-gb+f1"] == "gmw/en+f1" and is_complete(tmp_path / "txt", cfg)
    del done["espeak_names"]
    marker.write_text(json.dumps(done))
    assert not is_complete(tmp_path / "txt", cfg)
