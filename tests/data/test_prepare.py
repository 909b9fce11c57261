"""pyadml.data.prepare: stage 1 on small hand-made corpora in each real layout, and every
kind of bad input failing with a CorpusError that names its file (and line)."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import load_manifest

import shorten_writer  # tests/data is on sys.path under pytest

from pyadml.bin import prepare_manifests
from pyadml.data.prepare import (
    CorpusError,
    LIBRIPHRASE_COLUMNS,
    normalise_wsj_text,
    prepare_kaldi_dir,
    prepare_king_asr_066,
    prepare_libriphrase,
    prepare_musan,
    prepare_rir_noise,
    prepare_wsj,
    read_sphere_header,
)

SR = 16000


def tone(seconds: float, sr: int = SR, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def wav(path: Path, seconds: float, sr: int = SR, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(seconds, sr), sr, **kw)
    return path


def lines(path: Path, *rows: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r + "\n" for r in rows))
    return path


def raises(match_file, *parts):
    """Context manager: a CorpusError whose message holds every part."""
    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(CorpusError)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            ok = self.ctx.__exit__(*exc)
            msg = str(self.info.value)
            for p in (str(match_file),) + parts:
                assert p in msg, f"{p!r} not in {msg!r}"
            return ok
    return _Check()


# ----------------------------------------------------------------------------------------------
# Kaldi data directories


@pytest.fixture
def segmented(tmp_path):
    """2 recordings, 3 segments, 5 CTM words keyed by segment id."""
    d = tmp_path / "king" / "data"
    a = wav(tmp_path / "king" / "wav" / "recA.wav", 2.0)
    b = wav(tmp_path / "king" / "wav" / "recB.wav", 1.5)
    lines(d / "wav.scp", f"recA {a}", f"recB {b}")
    lines(d / "segments", "a1 recA 0.0 1.0", "a2 recA 1.0 2.0", "b1 recB 0.2 -1")
    lines(d / "text", "a1 Hello World", "a2 good morning", "b1 yes")
    lines(d / "utt2spk", "a1 spk1", "a2 spk1", "b1 spk2")
    lines(d / "spk2gender", "spk1 f", "spk2 m")
    lines(d / "words.ctm", "a1 1 0.10 0.30 hello", "a1 1 0.50 0.40 WORLD",
          "a2 1 0.10 0.30 good", "a2 1 0.45 0.40 morning", "b1 1 0.10 0.50 yes")
    return d


def test_kaldi_dir_with_segments(segmented, tmp_path):
    out = tmp_path / "manifests"
    m = prepare_king_asr_066(segmented.parent, out)
    recs, sups = m["recordings"], m["supervisions"]
    assert len(recs) == 2 and len(sups) == 3
    assert sum(len(s.alignment["word"]) for s in sups) == 5
    a1, a2, b1 = sups["a1"], sups["a2"], sups["b1"]
    assert a1.text == "hello world" and a1.speaker == "spk1" and a1.gender == "f"
    assert [w.symbol for w in a1.alignment["word"]] == ["hello", "world"]
    # Alignment times are relative to the recording: the segment offset is added.
    assert [w.start for w in a2.alignment["word"]] == pytest.approx([1.10, 1.45])
    assert b1.start == pytest.approx(0.2) and b1.duration == pytest.approx(1.3)
    assert b1.alignment["word"][0].start == pytest.approx(0.3)
    assert recs["recA"].num_samples == 2 * SR and recs["recB"].duration == pytest.approx(1.5)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["king_asr_066_recordings_train.jsonl.gz", "king_asr_066_supervisions_train.jsonl.gz"]
    back = load_manifest(out / "king_asr_066_supervisions_train.jsonl.gz")
    assert back["a2"].alignment["word"][1].symbol == "morning"
    assert load_manifest(out / "king_asr_066_recordings_train.jsonl.gz")["recA"].load_audio().shape == (1, 2 * SR)


def test_recording_keyed_ctm_over_segments(segmented):
    # The same words with times relative to the recordings land in the same segments.
    lines(segmented / "rec.ctm", "recA 1 0.10 0.30 hello", "recA 1 0.50 0.40 world",
          "recA 1 1.10 0.30 good", "recA 1 1.45 0.40 morning", "recB 1 0.30 0.50 yes")
    sups = prepare_kaldi_dir(segmented, ctm=segmented / "rec.ctm")["supervisions"]
    assert [w.start for w in sups["a2"].alignment["word"]] == pytest.approx([1.10, 1.45])
    assert [w.symbol for w in sups["b1"].alignment["word"]] == ["yes"]


def test_ctm_keyed_by_file_and_channel(tmp_path):
    """Switchboard's layout: each side of a call is a recording (sw1-A, sw1-B), and Kaldi's
    get_ctm.sh keys the CTM by file and channel from reco2file_and_channel ('sw1 A ...'),
    times relative to the recording. Each word lands in its side's segment."""
    d = tmp_path / "data"
    lines(d / "wav.scp", f"sw1-A {wav(tmp_path / 'a.wav', 3.0)}", f"sw1-B {wav(tmp_path / 'b.wav', 3.0)}")
    lines(d / "reco2file_and_channel", "sw1-A sw1 A", "sw1-B sw1 B")
    lines(d / "segments", "sw1-A-1 sw1-A 0.5 2.0", "sw1-B-1 sw1-B 1.0 2.5")
    lines(d / "text", "sw1-A-1 HELLO THERE", "sw1-B-1 HI")
    lines(d / "utt2spk", "sw1-A-1 a", "sw1-B-1 b")
    lines(d / "words.ctm", "sw1 A 0.60 0.40 HELLO", "sw1 A 1.20 0.50 THERE", "sw1 B 1.30 0.30 HI")
    sups = prepare_kaldi_dir(d, ctm=d / "words.ctm")["supervisions"]
    assert [(w.symbol, w.start) for w in sups["sw1-A-1"].alignment["word"]] == [("hello", 0.6), ("there", 1.2)]
    assert [(w.symbol, w.start) for w in sups["sw1-B-1"].alignment["word"]] == [("hi", 1.3)]
    lines(d / "words.ctm", "sw1 A 0.60 0.40 HELLO", "sw1 A 1.20 0.50 THERE", "sw1 A 1.30 0.30 HI")
    with raises(f"{d / 'words.ctm'}:3", "'HI' is word 3 of utterance sw1-A-1"):
        prepare_kaldi_dir(d, ctm=d / "words.ctm")  # B's word given as side A's
    lines(d / "reco2file_and_channel", "sw1-A sw1 A", "sw1-C sw1 B")
    with raises(f"{d / 'reco2file_and_channel'}:2", "recording sw1-C is not in wav.scp"):
        prepare_kaldi_dir(d, ctm=d / "words.ctm")


def test_a_word_starting_just_before_its_segment_keeps_its_end(segmented):
    """Within the tolerance (10 ms) before segment a2 (1.0-2.0 s): cut at the segment's start,
    its end (1.395 s) where the aligner put it, not shifted by the 5 ms cut."""
    lines(segmented / "rec.ctm", "recA 1 0.10 0.30 hello", "recA 1 0.50 0.40 world",
          "recA 1 0.995 0.40 good", "recA 1 1.45 0.40 morning", "recB 1 0.30 0.50 yes")
    good = prepare_kaldi_dir(segmented, ctm=segmented / "rec.ctm")["supervisions"]["a2"].alignment["word"][0]
    assert (good.start, good.start + good.duration) == pytest.approx((1.0, 1.395))


def test_recording_keyed_ctm_over_overlapping_segments(tmp_path):
    """A meeting: speaker B's interjection b1 (2.0-3.0 s) lies inside A's turn a1 (0.5-4.0 s).
    Kaldi's get_ctm.sh keys the CTM by recording (utils/convert_ctm.pl), a1's words first: each
    word goes to the segment whose text it continues, and A's words after b1 stay A's."""
    d = tmp_path / "data"
    lines(d / "wav.scp", f"meet {wav(tmp_path / 'meet.wav', 5.0)}")
    lines(d / "segments", "a1 meet 0.50 4.00", "b1 meet 2.00 3.00")
    lines(d / "text", "a1 ONE TWO THREE FOUR", "b1 YES RIGHT")
    lines(d / "utt2spk", "a1 A", "b1 B")
    lines(d / "words.ctm", "meet 1 0.60 0.40 ONE", "meet 1 1.20 0.50 TWO", "meet 1 2.50 0.40 THREE",
          "meet 1 3.20 0.50 FOUR", "meet 1 2.10 0.30 YES", "meet 1 2.60 0.30 RIGHT")
    sups = prepare_kaldi_dir(d, ctm=d / "words.ctm")["supervisions"]
    words = {s.id: [(w.symbol, w.start) for w in s.alignment["word"]] for s in sups}
    assert words == {"a1": [("one", 0.6), ("two", 1.2), ("three", 2.5), ("four", 3.2)],
                     "b1": [("yes", 2.1), ("right", 2.6)]}
    # a word past every segment is still named
    lines(d / "words.ctm", "meet 1 0.60 0.40 ONE", "meet 1 4.20 0.50 TWO")
    with raises(d / "words.ctm", ":2:", "word 'TWO' at 4.200-4.700 s of recording meet lies in none"):
        prepare_kaldi_dir(d, ctm=d / "words.ctm")


def test_wav_scp_command_pipe(tmp_path):
    d = tmp_path / "data"
    a = wav(tmp_path / "u1.wav", 1.0)
    lines(d / "wav.scp", f"u1 cat {a} |")
    lines(d / "text", "u1 hi")
    lines(d / "utt2spk", "u1 s")
    rec = prepare_kaldi_dir(d)["recordings"]["u1"]
    assert rec.sources[0].type == "command" and rec.num_samples == SR
    assert rec.load_audio().shape == (1, SR)


@pytest.fixture
def plain(tmp_path):
    """No segments: u1 (1.0 s) 'one two', u2 (1.2 s) 'three'."""
    d = tmp_path / "data"
    lines(d / "wav.scp", f"u1 {wav(tmp_path / 'w' / 'u1.wav', 1.0)}",
          f"u2 {wav(tmp_path / 'w' / 'u2.wav', 1.2)}")
    lines(d / "text", "u1 one two", "u2 three")
    lines(d / "utt2spk", "u1 s1", "u2 s2")
    lines(d / "words.ctm", "u1 1 0.1 0.3 one", "u1 1 0.5 0.3 two", "u2 1 0.2 0.5 three")
    return d


def test_plain_kaldi_dir(plain):
    m = prepare_kaldi_dir(plain, ctm=plain / "words.ctm")
    assert len(m["recordings"]) == 2 and len(m["supervisions"]) == 2
    assert m["supervisions"]["u2"].alignment["word"][0].start == pytest.approx(0.2)


def test_missing_inputs(tmp_path, plain):
    with raises(tmp_path / "nope", "does not exist"):
        prepare_kaldi_dir(tmp_path / "nope")
    with raises(tmp_path / "nope", "does not exist"):
        prepare_king_asr_066(tmp_path / "nope")
    (plain / "text").unlink()
    with raises(plain / "text", "missing"):
        prepare_kaldi_dir(plain)


@pytest.mark.parametrize("name,content,expect", [
    ("wav.scp", "u1", "expected '<recording-id> <path>'"),
    ("utt2spk", "u1 s1 extra", "expected 2 fields"),
    ("text", "u1 one two\nu1 again", "repeats line 1"),
])
def test_malformed_kaldi_files(plain, name, content, expect):
    keep = (plain / name).read_text().splitlines()
    lines(plain / name, *content.splitlines(), *[k for k in keep if not k.startswith("u1 ")])
    line = 2 if "repeats" in expect else 1
    with raises(f"{plain / name}:{line}", expect):
        prepare_kaldi_dir(plain)


def test_malformed_segments(segmented):
    lines(segmented / "segments", "a1 recA 0.0 1.0", "a2 recA 1.0 abc", "b1 recB 0.2 -1")
    with raises(f"{segmented / 'segments'}:2", "end must be a number"):
        prepare_kaldi_dir(segmented)
    lines(segmented / "segments", "a1 recA 0.0 1.0", "a2 recA 1.5 1.0", "b1 recB 0.2 -1")
    with raises(f"{segmented / 'segments'}:2", "start < end"):
        prepare_kaldi_dir(segmented)
    lines(segmented / "segments", "a1 recA 0.0 1.0", "a2 recA 1.0 2.5", "b1 recB 0.2 -1")
    with raises(f"{segmented / 'segments'}:2", "after the end of recording recA"):
        prepare_kaldi_dir(segmented)


def _replace_wav(d: Path, make) -> Path:
    path = Path((d / "wav.scp").read_text().splitlines()[1].split()[1])
    path.unlink()
    make(path)
    return path


def test_bad_audio(plain):
    where = f"{plain / 'wav.scp'}:2"
    path = _replace_wav(plain, lambda p: None)
    with raises(where, str(path), "does not exist"):
        prepare_kaldi_dir(plain)
    sf.write(str(path), np.zeros(0, np.float32), SR)
    with raises(where, str(path), "empty (0 samples)"):
        prepare_kaldi_dir(plain)
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    with raises(where, str(path), "not readable audio"):
        prepare_kaldi_dir(plain)
    wav(path, 1.0)  # then cut short, as an interrupted copy leaves it: 16000 samples promised
    path.write_bytes(path.read_bytes()[:44 + 2 * 4000])
    with raises(where, str(path), "is truncated: its header promises 32000 bytes (1.00 s) of "
                "audio, the file holds 8000 bytes (0.25 s)"):
        prepare_kaldi_dir(plain)
    wav(path, 1.0, sr=8000)
    with raises(where, str(path), "8000 Hz", "expected 16000 Hz", "prepare it with --resample"):
        prepare_kaldi_dir(plain)


def test_resample_on_request(tmp_path, caplog):
    """A corpus at 44.1 kHz (a studio corpus) and 8 kHz (telephone), one utterance each in
    segments: with resample the manifests say 16 kHz and load what scipy's resample_poly makes
    of the files (lhotse's resampler is another filter: equal away from the edges, to its
    stop-band); times stay in seconds. Counted per rate in a warning."""
    from scipy.signal import resample_poly

    d = tmp_path / "data"
    a = wav(tmp_path / "a.wav", 2.0, sr=44100, subtype="PCM_24")
    b = wav(tmp_path / "b.wav", 1.5, sr=8000)
    lines(d / "wav.scp", f"ra {a}", f"rb {b}")
    lines(d / "segments", "a1 ra 0.5 1.5", "b1 rb 0.0 1.5")
    lines(d / "text", "a1 one two", "b1 three")
    lines(d / "utt2spk", "a1 s1", "b1 s2")
    lines(d / "words.ctm", "ra 1 0.6 0.3 one", "ra 1 1.0 0.4 two", "rb 1 0.2 0.5 three")
    with raises(f"{d / 'wav.scp'}:1", "44100 Hz", "--resample"):
        prepare_kaldi_dir(d, ctm=d / "words.ctm")
    out = tmp_path / "m"
    with caplog.at_level("WARNING"):
        prepare_kaldi_dir(d, ctm=d / "words.ctm", output_dir=out, corpus="mine", resample=True)
    recs = load_manifest(out / "mine_recordings_train.jsonl.gz")
    sups = load_manifest(out / "mine_supervisions_train.jsonl.gz")
    for rec, src, rate, seconds in (("ra", a, 44100, 2.0), ("rb", b, 8000, 1.5)):
        r = recs[rec]
        assert r.sampling_rate == SR and r.num_samples == int(seconds * SR)
        got = r.load_audio()[0]
        want = resample_poly(sf.read(str(src), dtype="float32")[0], SR, rate)
        assert got.shape == want.shape
        assert np.abs(got - want)[400:-400].max() < 2e-3  # a 0.3 tone; off by filter ripple
        assert sf.read(str(src))[1] == rate  # the file itself is left as it was
    assert [w.start for w in sups["a1"].alignment["word"]] == pytest.approx([0.6, 1.0])
    cut = sups["a1"]
    assert recs["ra"].load_audio(offset=cut.start, duration=cut.duration).shape == (1, SR)
    said = [r.getMessage() for r in caplog.records]
    assert any("1 recording(s) at 44100 Hz are resampled to 16000 Hz" in m for m in said)
    assert any("1 recording(s) at 8000 Hz" in m and "nothing above 4000 Hz" in m for m in said)
    # A stereo file: its first channel, and a warning that says so.
    x = np.stack([tone(1.5, 8000), tone(1.5, 8000, freq=880.0)], axis=1)
    sf.write(str(b), x, 8000)
    with caplog.at_level("WARNING"):
        caplog.clear()
        sups = prepare_kaldi_dir(d, ctm=d / "words.ctm", resample=True)["supervisions"]
    assert sups["b1"].channel == 0
    assert any("1 recording(s) have more than one channel (rb: 2)" in r.getMessage()
               for r in caplog.records)
    # The option through the command line; other corpora do not take it.
    assert prepare_manifests.main(["kaldi", str(d), str(tmp_path / "m2"), "--ctm",
                                   str(d / "words.ctm"), "--resample"]) == 0
    assert load_manifest(tmp_path / "m2" / "kaldi_recordings_train.jsonl.gz")["rb"].sampling_rate == SR
    assert prepare_manifests.main(["musan", str(tmp_path), str(tmp_path / "m3"), "--resample"]) == 1


@pytest.mark.parametrize("ctm_line,expect", [
    ("u2 1 0.2 three", "expected 5 or 6 fields"),
    ("u2 1 x 0.5 three", "start must be a number"),
    ("u2 1 0.2 -0.5 three", "duration must be positive"),
    ("u2 1 0.9 0.5 three", "outside utterance u2"),
    ("u2 1 -0.1 0.5 three", "outside utterance u2"),
    ("u2 1 0.2 0.5 tree", "does not match word 1 'three'"),
    ("u9 1 0.2 0.5 three", "'u9' is not in the corpus"),
])
def test_bad_ctm(plain, ctm_line, expect):
    lines(plain / "words.ctm", "u1 1 0.1 0.3 one", "u1 1 0.5 0.3 two", ctm_line)
    with raises(f"{plain / 'words.ctm'}:3", expect):
        prepare_kaldi_dir(plain, ctm=plain / "words.ctm")


def test_ctm_missing_and_extra_words(plain):
    lines(plain / "words.ctm", "u1 1 0.1 0.3 one", "u2 1 0.2 0.5 three")
    with raises(f"{plain / 'text'}:1", "has 2 words", "aligns 1"):
        prepare_kaldi_dir(plain, ctm=plain / "words.ctm")
    lines(plain / "words.ctm", "u1 1 0.1 0.3 one", "u1 1 0.5 0.3 two", "u2 1 0.2 0.3 three",
          "u2 1 0.6 0.3 four")
    with raises(f"{plain / 'words.ctm'}:4", "has only 1"):
        prepare_kaldi_dir(plain, ctm=plain / "words.ctm")


@pytest.mark.parametrize("oov", ["<SPOKEN_NOISE>", "<unk>", "<OOV>", "spn"])
def test_ctm_oov_symbol_stands_for_its_text_word(plain, oov):
    # A Kaldi alignment maps text words its lexicon lacks to the OOV symbol (MFA writes <unk>):
    # that CTM word is stored as <unk> (stage 2 drops it as a non-word), the text keeps the word.
    lines(plain / "words.ctm", "u1 1 0.1 0.3 one", f"u1 1 0.5 0.3 {oov}", "u2 1 0.2 0.5 three")
    sup = prepare_kaldi_dir(plain, ctm=plain / "words.ctm")["supervisions"]["u1"]
    assert [w.symbol for w in sup.alignment["word"]] == ["one", "<unk>"]
    assert sup.text == "one two"
    # Any other angle-bracket token still has to be the text's word.
    lines(plain / "words.ctm", "u1 1 0.1 0.3 one", "u1 1 0.5 0.3 <NOISE>", "u2 1 0.2 0.5 three")
    with raises(f"{plain / 'words.ctm'}:2", "'<NOISE>' does not match word 2 'two'"):
        prepare_kaldi_dir(plain, ctm=plain / "words.ctm")


def test_ctm_without_an_utterance_keeps_it_unaligned(plain, caplog):
    # Aligners leave out the utterances they fail on; the others keep their words.
    lines(plain / "words.ctm", "u2 1 0.2 0.5 three")
    with caplog.at_level("WARNING"):
        sups = prepare_kaldi_dir(plain, ctm=plain / "words.ctm")["supervisions"]
    assert sups["u1"].alignment == {"word": []} and sups["u1"].text == "one two"
    assert [w.symbol for w in sups["u2"].alignment["word"]] == ["three"]
    assert "1 of 2 transcribed utterances have no word" in caplog.text and "u1" in caplog.text
    # A CTM that names no utterance of the corpus is not one of its alignments.
    lines(plain / "words.ctm", "")
    with raises(plain / "words.ctm", "aligns none of the 2 utterances"):
        prepare_kaldi_dir(plain, ctm=plain / "words.ctm")


def test_ctm_silence_marks_are_gaps(plain):
    # Kaldi's get_ctm.sh --print-silence true and MFA-style CTMs mark gaps: not words.
    lines(plain / "words.ctm", "u1 1 0.0 0.1 <eps>", "u1 1 0.1 0.3 one", "u1 1 0.4 0.1 !SIL",
          "u1 1 0.5 0.3 two", "u2 1 0.0 0.2 sil", "u2 1 0.2 0.5 three")
    sups = prepare_kaldi_dir(plain, ctm=plain / "words.ctm")["supervisions"]
    assert [w.symbol for w in sups["u1"].alignment["word"]] == ["one", "two"]
    assert [w.symbol for w in sups["u2"].alignment["word"]] == ["three"]
    # A text that says the token keeps it as a word.
    lines(plain / "text", "u1 one sp", "u2 three")
    lines(plain / "words.ctm", "u1 1 0.1 0.3 one", "u1 1 0.5 0.3 sp", "u2 1 0.2 0.5 three")
    sup = prepare_kaldi_dir(plain, ctm=plain / "words.ctm")["supervisions"]["u1"]
    assert [w.symbol for w in sup.alignment["word"]] == ["one", "sp"]


def test_text_files_as_windows_editors_save_them(plain):
    # A byte-order mark and CRLF line ends: read as if they were not there.
    (plain / "text").write_bytes(b"\xef\xbb\xbfu1 one two\r\nu2 three\r\n")
    (plain / "words.ctm").write_bytes(b"\xef\xbb\xbfu1 1 0.1 0.3 one\r\nu1 1 0.5 0.3 two\r\n"
                                      b"u2 1 0.2 0.5 three\r\n")
    sups = prepare_kaldi_dir(plain, ctm=plain / "words.ctm")["supervisions"]
    assert sorted(sups.ids) == ["u1", "u2"] and sups["u1"].text == "one two"
    # Latin-1 text: the line and the byte, and how to convert it.
    (plain / "text").write_bytes(b"u1 one two\nu2 caf\xe9\n")
    with raises(f"{plain / 'text'}:2", "not UTF-8", "\\xe9", "column 7", "iconv"):
        prepare_kaldi_dir(plain)


def test_ctm_tolerance_is_clipped(plain):
    # 5 ms past the end is within tolerance; the stored word stops at the end of the audio.
    lines(plain / "words.ctm", "u1 1 0.1 0.3 one", "u1 1 0.5 0.505 two", "u2 1 0.2 0.5 three")
    sup = prepare_kaldi_dir(plain, ctm=plain / "words.ctm")["supervisions"]["u1"]
    w = sup.alignment["word"][1]
    assert w.start + w.duration == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------
# WSJ: LDC tree of SPHERE files


def shorten_sphere(path: Path, samples: int = SR) -> Path:
    """A SPHERE file whose samples are a Shorten stream, as the LDC's WSJ files are
    (tests/data/shorten_writer.py; its samples: ``shorten_samples``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(shorten_writer.sphere(shorten_writer.encode(shorten_samples(samples)), samples))
    return path


def shorten_samples(samples: int) -> np.ndarray:
    return np.round(tone(samples / SR, SR) * 32767).astype(np.int64)[:samples, None]


@pytest.fixture
def ldc(tmp_path):
    root = tmp_path / "wsj"
    spk = root / "wsj0" / "si_et_05" / "440"
    wav(spk / "440c0201.wv1", 1.5, format="NIST", subtype="PCM_16")
    wav(spk / "440c0201.wv2", 1.5, format="NIST", subtype="PCM_16")
    wav(spk / "440c0202.wv1", 1.0, format="NIST", subtype="PCM_16")  # not in the CTM
    wav(spk / "440c0203.wv1", 1.0, format="NIST", subtype="PCM_16")  # no transcript
    lines(spk / "440c0200.dot", "THE [door_slam] Cat \\.PERIOD <uh> (440C0201)",
          "OTHER WORDS (440C0202)")
    ctm = lines(tmp_path / "wsj.ctm", "440c0201 1 0.10 0.20 the", "440c0201 1 0.40 0.30 cat",
                "440c0201 1 0.80 0.40 period", "440c0203 1 0.10 0.30 untranscribed")
    return root, ctm


def test_wsj_ldc_mode(ldc, tmp_path):
    root, ctm = ldc
    out = tmp_path / "out"
    m = prepare_wsj(root, out, ctm=ctm)
    recs, sups = m["recordings"], m["supervisions"]
    assert len(recs) == 1 and len(sups) == 1
    sup = sups["440c0201"]
    # <uh> is a verbal deletion: said (the text keeps it) and left out by this CTM.
    assert sup.text == "the cat period uh" and sup.speaker == "440"
    assert len(sup.alignment["word"]) == 3
    assert recs["440c0201"].load_audio().shape == (1, int(1.5 * SR))
    assert sorted(p.name for p in out.iterdir()) == [
        "wsj_recordings_test.jsonl.gz", "wsj_supervisions_test.jsonl.gz"]
    both = prepare_wsj(root, ctm=ctm, channels=("wv1", "wv2"))
    assert sorted(both["recordings"].ids) == ["440c0201_wv1", "440c0201_wv2"]
    assert all(len(s.alignment["word"]) == 3 for s in both["supervisions"])


def test_wsj_needs_ctm_and_dir(ldc, tmp_path):
    root, _ = ldc
    with raises(root, "needs a word CTM"):
        prepare_wsj(root)
    with raises(tmp_path / "absent", "does not exist"):
        prepare_wsj(tmp_path / "absent", ctm=ldc[1])


def test_wsj_kaldi_mode(tmp_path):
    root = tmp_path / "wsj"
    a = wav(root / "wsj0" / "x" / "s1" / "s1-00001.wv1", 1.0, format="NIST", subtype="PCM_16")
    lines(root / "data" / "wav.scp", f"s1-00001 {a}")
    lines(root / "data" / "text", "s1-00001 hello")
    lines(root / "data" / "utt2spk", "s1-00001 s1")
    lines(root / "data" / "words.ctm", "s1-00001 1 0.20 0.40 hello")
    m = prepare_wsj(root, part="dev")
    assert m["supervisions"]["s1-00001"].alignment["word"][0].symbol == "hello"


def test_normalise_wsj_text():
    assert normalise_wsj_text("IT'S [loud_breath] A *TEST* ~ <ah> \\,COMMA A:ND [<door_slam] .") == \
        ["it's", "a", "test", "ah", "comma", "and"]


# One LDC .dot line with WSJ's markup, and the CTMs aligners write for it: Kaldi's WSJ recipe
# (its normalize_transcript.pl: backslashes gone, [noise] -> <NOISE>, <and> -> AND, words its
# lexicon lacks -> <SPOKEN_NOISE>), and one already in letters that leaves the markers out.
DOT = ("THE U\\.S\\. [loud_breath] <AND> \\\"DOUBLE-QUOTE *MISSAID* ECONOMY ~ . "
       "[<door_slam] GREW (440C0204)")
KALDI_CTM = ["THE", "U.S.", "<NOISE>", "AND", '"DOUBLE-QUOTE', "<SPOKEN_NOISE>", "ECONOMY", "GREW"]
LETTERS_CTM = ["the", "us", "doublequote", "missaid", "economy", "grew"]


def ldc_one(tmp_path, ctm_words):
    root = tmp_path / "wsj"
    spk = root / "wsj0" / "si_et_05" / "440"
    wav(spk / "440c0204.wv1", 0.1 * len(ctm_words) + 0.2, format="NIST", subtype="PCM_16")
    lines(spk / "440c0200.dot", DOT)
    ctm = lines(tmp_path / "wsj.ctm", *(f"440c0204 1 {0.1 * k + 0.05:.2f} 0.08 {w}"
                                        for k, w in enumerate(ctm_words)))
    return root, ctm


@pytest.mark.parametrize("ctm_words", [KALDI_CTM, LETTERS_CTM], ids=["kaldi", "letters"])
def test_wsj_ldc_mode_reads_the_ctms_aligners_write(tmp_path, ctm_words):
    root, ctm = ldc_one(tmp_path, ctm_words)
    sup = prepare_wsj(root, ctm=ctm)["supervisions"]["440c0204"]
    assert sup.text == "the us and doublequote missaid economy grew"
    assert [w.symbol for w in sup.alignment["word"]] == [
        "<unk>" if w == "<SPOKEN_NOISE>" else w.lower() for w in ctm_words]


@pytest.mark.parametrize("ctm_words,line,expect", [
    (["THE", "U.K."] + KALDI_CTM[2:], 2, "'U.K.' does not match word 2 'U.S.'"),
    (["<NOISE>"] + KALDI_CTM, 1, "'<NOISE>' does not match word 1 'THE'"),
    (KALDI_CTM + ["AGAIN"], 9, "'AGAIN' is word 9 of utterance 440c0204"),
    (KALDI_CTM[:-1], None, "aligns 7 words to utterance 440c0204, none to its word 11 'GREW'"),
], ids=["other-word", "extra-noise", "extra-word", "missing-word"])
def test_wsj_ldc_mode_ctm_mismatch_names_the_words(tmp_path, ctm_words, line, expect):
    root, ctm = ldc_one(tmp_path, ctm_words)
    where = f"{ctm}:{line}" if line else "440c0200.dot:1"
    with raises(where, expect):
        prepare_wsj(root, ctm=ctm)


@pytest.fixture
def no_sph2pipe_path(tmp_path, monkeypatch):
    empty = tmp_path / "emptybin"
    empty.mkdir()
    monkeypatch.setenv("PATH", f"{empty}:/usr/bin:/bin")
    if shutil.which("sph2pipe"):
        pytest.skip("a real sph2pipe is installed in /usr/bin or /bin")
    return monkeypatch


def fake_sph2pipe(tmp_path, monkeypatch, samples: int = SR) -> Path:
    """A sph2pipe stand-in on PATH that prints a prepared wav whatever its arguments."""
    bindir = tmp_path / "fakebin"
    out = wav(bindir / "decoded.wav", samples / SR)
    script = bindir / "sph2pipe"
    script.write_text(f"#!/bin/sh\nexec cat '{out}'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return script


def test_shorten_sphere(ldc, tmp_path, no_sph2pipe_path):
    root, ctm = ldc
    sph = root / "wsj0" / "si_et_05" / "440" / "440c0201.wv1"
    shorten_sphere(sph, samples=int(1.5 * SR))
    assert read_sphere_header(sph)["sample_coding"] == "pcm,embedded-shorten-v2.00"
    # Without sph2pipe, the built-in decoder reads it (pyadml.bin.sph2wav).
    rec = prepare_wsj(root, ctm=ctm)["recordings"]["440c0201"]
    assert rec.sources[0].type == "command" and " -m pyadml.bin.sph2wav " in rec.sources[0].source
    assert rec.num_samples == int(1.5 * SR)
    audio = rec.load_audio()
    assert audio.shape == (1, int(1.5 * SR))
    np.testing.assert_allclose(audio[0] * 32768, shorten_samples(int(1.5 * SR))[:, 0], atol=0.5)
    # With sph2pipe on PATH, it is named instead, as Kaldi's recipes do.
    fake_sph2pipe(tmp_path, no_sph2pipe_path, samples=int(1.5 * SR))
    rec = prepare_wsj(root, ctm=ctm)["recordings"]["440c0201"]
    assert rec.sources[0].type == "command" and rec.sources[0].source.startswith("sph2pipe -f wav ")
    assert rec.num_samples == int(1.5 * SR)
    assert rec.load_audio().shape == (1, int(1.5 * SR))


def test_kaldi_sph2pipe_pipe(tmp_path, no_sph2pipe_path, caplog):
    d = tmp_path / "data"
    sph = shorten_sphere(tmp_path / "u1.wv1", samples=SR)
    # A Kaldi data directory made on a machine with Kaldi's tools, read on one without them.
    lines(d / "wav.scp", f"u1 /opt/kaldi/tools/sph2pipe_v2.5/sph2pipe -f wav -p -c 1 {sph} |",
          f"u2 sph2pipe -f wav {sph} |")
    lines(d / "text", "u1 hi", "u2 ho")
    lines(d / "utt2spk", "u1 s", "u2 s")
    with caplog.at_level("WARNING"):
        recs = prepare_kaldi_dir(d)["recordings"]
    assert f"{d / 'wav.scp'}: sph2pipe is not on PATH" in caplog.text
    assert caplog.text.count("sph2pipe is not on PATH") == 1
    assert " -m pyadml.bin.sph2wav -c 1 " in recs["u1"].sources[0].source
    for rec in recs:
        assert rec.num_samples == SR
        np.testing.assert_allclose(rec.load_audio()[0] * 32768, shorten_samples(SR)[:, 0], atol=0.5)
    # What the built-in decoder does not stand in for still needs sph2pipe itself.
    lines(d / "wav.scp", f"u1 sph2pipe -f raw {sph} |", f"u2 sph2pipe -f wav {sph} |")
    with raises(f"{d / 'wav.scp'}:1", "'sph2pipe' is not on PATH"):
        prepare_kaldi_dir(d)
    fake_sph2pipe(tmp_path, no_sph2pipe_path)
    rec = prepare_kaldi_dir(d)["recordings"]["u2"]
    assert rec.sources[0].source.startswith("sph2pipe -f wav ")
    assert rec.num_samples == SR and rec.load_audio().shape == (1, SR)


# ----------------------------------------------------------------------------------------------
# LibriPhrase


def libriphrase(tmp_path) -> Path:
    root = tmp_path / "libriphrase"
    clips = {"a": ("s1", "Hello World"), "p": ("s2", "hello world"), "e": ("s2", "good day"),
             "h": ("s3", "yellow world"), "a1": ("s1", "cat"), "p1": ("s2", "cat")}
    for name in clips:
        wav(root / "train-other-500" / clips[name][0] / f"{name}.wav", 0.5)

    def rel(name):
        return f"train-other-500/{clips[name][0]}/{name}.wav"

    def row(a, c, typ, target, n):
        return [rel(a), clips[a][0], clips[a][1], "0.5", rel(c), clips[c][0], clips[c][1], "0.5",
                typ, target, n]

    write_csv(root / "data" / "libriphrase_diffspk_all_2word.csv", LIBRIPHRASE_COLUMNS, [
        row("a", "p", "diffspk_positive", 1, 2), row("a", "e", "diffspk_easyneg", 0, 2),
        row("a", "h", "diffspk_hardneg", 0, 2)])
    write_csv(root / "data" / "libriphrase_diffspk_all_1word.csv", LIBRIPHRASE_COLUMNS, [
        row("a1", "p1", "diffspk_positive", 1, 1)])
    return root


def write_csv(path: Path, header, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def test_libriphrase(tmp_path):
    root = libriphrase(tmp_path)
    out = tmp_path / "out"
    m = prepare_libriphrase(root, out)
    assert len(m["recordings"]) == 6 and len(m["supervisions"]) == 6
    rows = m["rows"]
    assert len(rows) == 4
    assert {r["type"] for r in rows} == {"diffspk_positive", "diffspk_easyneg", "diffspk_hardneg"}
    first = next(r for r in rows if r["comparison_id"] == "h")
    assert first["anchor_id"] == "a" and first["target"] == 0 and first["line"] == 4
    assert first["file"].endswith("libriphrase_diffspk_all_2word.csv")
    assert m["supervisions"]["a"].text == "hello world" and m["supervisions"]["h"].speaker == "s3"
    assert sorted(p.name for p in out.iterdir()) == [
        "libriphrase_pairs_test.jsonl.gz", "libriphrase_recordings_test.jsonl.gz",
        "libriphrase_supervisions_test.jsonl.gz"]
    with gzip.open(out / "libriphrase_pairs_test.jsonl.gz", "rt") as f:
        assert [json.loads(x)["comparison_id"] for x in f] == [r["comparison_id"] for r in rows]


def _edit_csv(root: Path, edit) -> Path:
    path = root / "data" / "libriphrase_diffspk_all_2word.csv"
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    edit(table)
    write_csv(path, table[0], table[1:])
    return path


@pytest.mark.parametrize("edit,line,expect", [
    (lambda t: [r.pop(9) for r in t], 1, "lacks column 'target'"),
    (lambda t: t[2].__setitem__(8, "samespk_weird"), 3, "unknown type 'samespk_weird'"),
    (lambda t: t[2].__setitem__(9, "2"), 3, "target must be 0 or 1"),
    (lambda t: t[1].__setitem__(9, "0"), 2, "contradicts type diffspk_positive"),
    (lambda t: t[3].pop(), 4, "expected 11 fields, found 10"),
    (lambda t: t[2].__setitem__(1, ""), 3, "empty field 'anchor_spk'"),
    (lambda t: t[3].__setitem__(2, "other words"), 4, "but 'hello world'"),
    (lambda t: t[3].__setitem__(4, "train-other-500/s3/gone.wav"), 4, "gone.wav does not exist"),
])
def test_libriphrase_errors(tmp_path, edit, line, expect):
    root = libriphrase(tmp_path)
    path = _edit_csv(root, edit)
    with raises(f"{path}:{line}", expect):
        prepare_libriphrase(root)


def test_libriphrase_csv_saved_by_excel_or_in_latin1(tmp_path):
    """A CSV with a byte-order mark (Excel's 'CSV UTF-8', pandas' utf-8-sig) and CRLF line ends
    reads as the plain one (before: 'header lacks column 'anchor' (has ['\\ufeffanchor', ...])');
    one in Latin-1 is named with its line (before: a UnicodeDecodeError traceback)."""
    root = libriphrase(tmp_path)
    plain = prepare_libriphrase(root)["rows"]
    path = root / "data" / "libriphrase_diffspk_all_2word.csv"
    text = path.read_text()
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert [{k: v for k, v in r.items() if k != "file"} for r in prepare_libriphrase(root)["rows"]] == [
        {k: v for k, v in r.items() if k != "file"} for r in plain]
    path.write_bytes(text.replace("hello world", "h\xe9llo world").encode("latin-1"))
    with raises(f"{path}:2: not UTF-8 text (byte b'\\xe9'"):
        prepare_libriphrase(root)


def test_libriphrase_csvs_apart_from_their_wavs_say_where_the_paths_lead(tmp_path):
    """LibriPhrase's own layout: the CSVs in the repository's data/, the wavs under the
    --newpath of its libriphrase.py (before: 'audio file …/train-other-500/…wav does not
    exist', as for one lost file)."""
    wavs = libriphrase(tmp_path)
    repo = tmp_path / "LibriPhrase-repo"
    repo.mkdir()
    (wavs / "data").rename(repo / "data")
    path = repo / "data" / "libriphrase_diffspk_all_1word.csv"
    with raises(f"{path}:2: none of the 6 wavs the CSVs name is under {repo} (e.g. {repo}/",
                "put data/ with the CSVs there, and LIBRIPHRASE in db.sh"):
        prepare_libriphrase(repo)


def test_libriphrase_missing(tmp_path):
    with raises(tmp_path, "does not exist"):
        prepare_libriphrase(tmp_path / "none")
    (tmp_path / "empty" / "data").mkdir(parents=True)
    with raises(tmp_path / "empty" / "data", "libriphrase_diffspk_all"):
        prepare_libriphrase(tmp_path / "empty")


# ----------------------------------------------------------------------------------------------
# MUSAN and RIRS_NOISES, and the command line


def test_musan(tmp_path):
    root = tmp_path / "musan"
    wav(root / "music" / "synth" / "music-synth-0000.wav", 0.5)
    wav(root / "music" / "synth" / "music-synth-0001.wav", 0.5)
    lines(root / "music" / "synth" / "ANNOTATIONS", "music-synth-0000 pop N synth",
          "music-synth-0001 jazz Y synth")
    wav(root / "noise" / "synth" / "noise-synth-0000.wav", 0.5)
    (root / "speech").mkdir()  # present but empty: skipped
    out = tmp_path / "out"
    m = prepare_musan(root, out)
    assert sorted(m) == ["music", "noise", "speech"]
    assert len(m["music"]["recordings"]) == 2 and len(m["music"]["supervisions"]) == 2
    assert len(m["speech"]["recordings"]) == 0  # an empty manifest (stage 3: babble off)
    assert sorted(p.name for p in out.iterdir()) == [
        "musan_recordings_music.jsonl.gz", "musan_recordings_noise.jsonl.gz",
        "musan_recordings_speech.jsonl.gz", "musan_supervisions_music.jsonl.gz"]
    with raises(tmp_path / "nomusan", "does not exist"):
        prepare_musan(tmp_path / "nomusan", out)
    with raises(root / "speech", "no wavs"):
        prepare_musan(root / "speech", out)


def test_musan_annotations_that_name_no_wav_or_lack_fields_are_named(tmp_path):
    """music/*/ANNOTATIONS naming a wav that is not there (an interrupted unpacking), or a short
    line: the file and line (before: lhotse's 'generator raised StopIteration' or 'not enough
    values to unpack', naming no file)."""
    root = tmp_path / "musan"
    wav(root / "music" / "fma" / "music-fma-0000.wav", 0.5)
    ann = root / "music" / "fma" / "ANNOTATIONS"
    lines(ann, "music-fma-0000 pop N synth", "music-fma-0001 jazz Y synth")
    with raises(f"{ann}:2: music-fma-0001.wav is not under {root / 'music'} (an interrupted "
                f"unpacking of musan.tar.gz?)"):
        prepare_musan(root, tmp_path / "out")
    lines(ann, "music-fma-0000 pop")
    with raises(f"{ann}:1: expected '<file> <genres> <vocals Y|N> <musician>' (4 fields), found 2"):
        prepare_musan(root, tmp_path / "out")
    # a line twice (ANNOTATIONS joined by hand), or a byte-order mark (saved by a Windows
    # editor): lhotse said 'SupervisionSet has supervisions with duplicated IDs' or 'generator
    # raised StopIteration', naming no file
    lines(ann, "music-fma-0000 pop N synth", "music-fma-0000 pop N synth")
    with raises(f"{ann}:2: music-fma-0000 is annotated a second time (first at {ann}:1); "
                f"expected one line per file"):
        prepare_musan(root, tmp_path / "out")
    ann.write_text("\ufeffmusic-fma-0000 pop N synth\n", encoding="utf-8")
    with raises(f"{ann}:1: starts with a byte-order mark (a Windows editor's), which lhotse's "
                f"MUSAN recipe reads as part of the first file name; save it as UTF-8 without one"):
        prepare_musan(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_musan_music_without_annotations_is_read_as_recordings(tmp_path):
    """music/ wavs copied without their ANNOTATIONS files (or with empty ones): lhotse's
    validation of the empty supervision set stopped stage 1 with 'IndexError: list index out of
    range', a traceback naming no file. The annotations (genres, vocals) are not needed to mix
    music in: the recordings are read, with no supervisions."""
    root = tmp_path / "musan"
    wav(root / "music" / "fma" / "music-fma-0000.wav", 0.5)
    wav(root / "music" / "rfm" / "music-rfm-0000.wav", 0.5)
    wav(root / "noise" / "free-sound" / "noise-free-sound-0000.wav", 0.5)
    out = tmp_path / "out"
    m = prepare_musan(root, out)
    assert sorted(r.id for r in m["music"]["recordings"]) == ["music-fma-0000", "music-rfm-0000"]
    assert len(m["music"]["supervisions"]) == 0 and len(m["noise"]["recordings"]) == 1
    assert len(load_manifest(out / "musan_recordings_music.jsonl.gz")) == 2
    lines(root / "music" / "fma" / "ANNOTATIONS")  # an empty one
    shutil.rmtree(root / "noise")
    m = prepare_musan(root, out)
    assert len(m["music"]["recordings"]) == 2 and len(m["noise"]["recordings"]) == 0


def test_two_wavs_of_one_name_in_musan_or_rirs_noises_are_named(tmp_path):
    """A user's own noises added beside MUSAN's (noise/mine/noise-free-sound-0001.wav): lhotse
    names a recording by its file name, and MUSAN failed with 'RecordingSet has recordings with
    duplicated IDs', naming neither file; RIRS_NOISES kept both under one id, and stage 3 used
    one file twice as often and never the other. Now both files are named."""
    musan = tmp_path / "musan"
    first = wav(musan / "noise" / "free-sound" / "noise-free-sound-0001.wav", 0.5)
    second = wav(musan / "noise" / "mine" / "noise-free-sound-0001.wav", 0.5)
    with raises(f"{second} and {first} are both recording 'noise-free-sound-0001' of MUSAN's "
                f"noise/ (lhotse names a recording by its file name); rename one of them"):
        prepare_musan(musan, tmp_path / "out")
    rirs = tmp_path / "RIRS_NOISES"
    first = wav(rirs / "pointsource_noises" / "noise-free-sound-0001.wav", 0.5)
    second = wav(rirs / "pointsource_noises" / "mine" / "noise-free-sound-0001.wav", 0.5)
    with raises(f"{first} and {second} are both recording 'noise-free-sound-0001' of "
                f"RIRS_NOISES's pointsource_noises/"):  # the one found later is named first
        prepare_rir_noise(rirs, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # the same name in two room sizes is two recordings (small-…, medium-…), as lhotse names them
    shutil.rmtree(rirs / "pointsource_noises")
    for size in ("smallroom", "mediumroom"):
        wav(rirs / "simulated_rirs" / size / "Room001" / "Room001-00001.wav", 0.3)
    m = prepare_rir_noise(rirs, None)
    assert sorted(r.id for r in m["sim_rir"]["recordings"]) == [
        "medium-Room001-00001", "small-Room001-00001"]


def test_wavs_named_in_capitals_in_musan_or_rirs_noises_are_named_not_left_out(tmp_path):
    """A user's own noises beside MUSAN's, named as recorders name them (ZOOM0001.WAV): lhotse's
    recipes find '*.wav' and left them out without a word."""
    musan = tmp_path / "musan"
    wav(musan / "noise" / "free-sound" / "noise-free-sound-0000.wav", 0.5)
    upper = wav(musan / "noise" / "mine" / "ZOOM0001.WAV", 0.5, format="WAV")
    wav(musan / "noise" / "mine" / "ZOOM0002.Wav", 0.5, format="WAV")
    with raises(f"{upper}: lhotse's MUSAN recipe reads only files ending in .wav (lower case), "
                f"and would leave out this one and 1 more; rename them (e.g. to ZOOM0001.wav)"):
        prepare_musan(musan, tmp_path / "out")
    rirs = tmp_path / "RIRS_NOISES"
    upper = wav(rirs / "simulated_rirs" / "smallroom" / "Room001" / "Room001-00001.WAV", 0.3,
                format="WAV")
    with raises(f"{upper}: lhotse's RIRS_NOISES recipe reads only files ending in .wav"):
        prepare_rir_noise(rirs, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_corpus_path_with_a_quoted_tilde_is_named_as_such(tmp_path, monkeypatch):
    """db.sh's MUSAN="~/corpora/musan": the shell expands no ~ in quotes, and stage 1 said
    '<recipe>/~/corpora/musan: MUSAN directory does not exist', a path the user never wrote."""
    from pyadml.data.prepare import prepare_corpus

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with raises(f"~/corpora/musan: the shell does not expand a ~ in quotes (db.sh: VAR=\"~/...\"), "
                f"so this names a directory called '~'; write {tmp_path / 'home'}/corpora/musan "
                f"or $HOME/corpora/musan, or leave the ~ unquoted"):
        prepare_corpus("musan", "~/corpora/musan", tmp_path / "out")
    with raises("~/corpora/RIRS_NOISES: the shell does not expand a ~ in quotes"):
        prepare_corpus("rirs_noises", "~/corpora/RIRS_NOISES", tmp_path / "out")
    # a directory that is really called '~' is read as it is
    wav(tmp_path / "~" / "musan" / "noise" / "x" / "noise-x-0000.wav", 0.5)
    assert len(prepare_corpus("musan", "~/musan", None)["noise"]["recordings"]) == 1


def test_musan_and_rirs_with_a_symlinked_directory_are_named_not_read_in_part(tmp_path):
    """lhotse's recipes find wavs with Path.rglob, which follows no symlinked directory: MUSAN's
    music/fma linked from another disk was silently left out of the manifests."""
    root = tmp_path / "musan"
    wav(root / "noise" / "free-sound" / "noise-free-sound-0000.wav", 0.5)
    wav(tmp_path / "disk2" / "fma" / "music-fma-0000.wav", 0.5)
    lines(tmp_path / "disk2" / "fma" / "ANNOTATIONS", "music-fma-0000 pop N synth")
    (root / "music").mkdir()
    (root / "music" / "fma").symlink_to(tmp_path / "disk2" / "fma")
    with raises(f"{root / 'music' / 'fma'} is a symlinked directory: lhotse's MUSAN recipe does "
                f"not follow it, and its 1 wav(s) would be left out"):
        prepare_musan(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # the whole corpus behind one link (MUSAN=/data/musan -> another disk) is read as it is
    (root / "music" / "fma").unlink()
    (root / "music").rmdir()
    (tmp_path / "link").symlink_to(root)
    m = prepare_musan(tmp_path / "link", None)
    assert {p: len(x["recordings"]) for p, x in m.items()} == {"music": 0, "noise": 1, "speech": 0}
    rirs = tmp_path / "RIRS_NOISES" / "simulated_rirs"
    wav(tmp_path / "disk2" / "smallroom" / "Room001" / "Room001-00001.wav", 0.3)
    rirs.mkdir(parents=True)
    (rirs / "smallroom").symlink_to(tmp_path / "disk2" / "smallroom")
    with raises(f"{rirs / 'smallroom'} is a symlinked directory: lhotse's RIRS_NOISES recipe"):
        prepare_rir_noise(tmp_path / "RIRS_NOISES", tmp_path / "out")


def test_rir_noise(tmp_path):
    root = tmp_path / "RIRS_NOISES"
    for k in (1, 2):
        wav(root / "simulated_rirs" / "smallroom" / "Room001" / f"Room001-0000{k}.wav", 0.3)
    out = tmp_path / "out"
    m = prepare_rir_noise(root, out)
    assert {p: len(x["recordings"]) for p, x in m.items()} == {
        "sim_rir": 2, "real_rir": 0, "iso_noise": 0, "point_noise": 0}
    assert sorted(p.name for p in out.iterdir()) == [
        f"rir_recordings_{p}.jsonl.gz" for p in ("iso_noise", "point_noise", "real_rir", "sim_rir")]
    assert load_manifest(out / "rir_recordings_sim_rir.jsonl.gz")[0].num_samples == int(0.3 * SR)
    with raises(tmp_path / "norir", "does not exist"):
        prepare_rir_noise(tmp_path / "norir", out)
    (tmp_path / "bare").mkdir()
    with raises(tmp_path / "bare", "no wavs"):
        prepare_rir_noise(tmp_path / "bare", out)


def test_real_rirs_are_those_the_rir_list_names_the_air_ones_included(tmp_path):
    """OpenSLR 28's real_rirs_isotropic_noises/rir_list names 325 RIRs, the AIR database's among
    them (air_type1_air_binaural_office_0_1.wav, two channels); lhotse takes the wavs with "rir"
    in their names, and rir_recordings_real_rir silently lacked every AIR response. Now the
    rir_list decides, as in Kaldi; a line naming a missing file, or malformed, is named."""
    root = tmp_path / "rirs_noises"  # not called RIRS_NOISES: the list's paths still resolve
    real = root / "real_rirs_isotropic_noises"
    names = {"RVB2014_type1_rir_largeroom1_far_anglea": 8, "air_type1_air_binaural_office_0_1": 2,
             "RWCP_type1_rir_circle_ofc_imp050": 1}
    for name, channels in names.items():
        real.mkdir(parents=True, exist_ok=True)
        sf.write(real / f"{name}.wav", np.tile(tone(0.2)[:, None], (1, channels)), SR)
    sf.write(real / "RVB2014_type1_noise_largeroom1_1.wav", np.tile(tone(1.0)[:, None], (1, 8)), SR)
    rir_list = lines(real / "rir_list", *(
        f"--rir-id {n} --room-id {n.rsplit('_', 2)[0]} RIRS_NOISES/real_rirs_isotropic_noises/{n}.wav"
        for n in names))
    lines(real / "noise_list", "--noise-id RVB2014_type1_noise_largeroom1_1 --noise-type isotropic "
          "--room-linkage RVB2014_type1_rir_largeroom1 "
          "RIRS_NOISES/real_rirs_isotropic_noises/RVB2014_type1_noise_largeroom1_1.wav")
    out = tmp_path / "out"
    m = prepare_rir_noise(root, out)
    recs = load_manifest(out / "rir_recordings_real_rir.jsonl.gz")
    assert [(r.id, r.num_channels) for r in recs] == list(names.items())
    assert [r.id for r in m["iso_noise"]["recordings"]] == ["RVB2014_type1_noise_largeroom1_1"]

    text = rir_list.read_text()
    rir_list.write_text(text + "--rir-id gone --room-id x RIRS_NOISES/real_rirs_isotropic_noises/gone.wav\n")
    with raises(f"{rir_list}:4: {real / 'gone.wav'} does not exist"):
        prepare_rir_noise(root, tmp_path / "out2")
    rir_list.write_text(text + "--rir-id x --room-id\n")
    with raises(f"{rir_list}:4: expected '--rir-id <id> --room-id <room> <path>'"):
        prepare_rir_noise(root, tmp_path / "out2")
    rir_list.write_text("")  # cut short: not 'no real RIRs'
    with raises(f"{rir_list}: names no RIR; expected '--rir-id <id> --room-id <room> <path>' lines"):
        prepare_rir_noise(root, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_an_empty_rir_or_noise_wav_is_named_in_stage_1(tmp_path):
    """An empty wav in RIRS_NOISES (an interrupted unzip): lhotse's recipe took it, and stage 3
    failed with 'empty range for randrange()' (a noise) or stage 4 with 'attempt to get argmax
    of an empty sequence' (an RIR), naming no file. Now stage 1 names it."""
    root = tmp_path / "RIRS_NOISES"
    wav(root / "simulated_rirs" / "smallroom" / "Room001" / "Room001-00001.wav", 0.3)
    empty = root / "simulated_rirs" / "smallroom" / "Room001" / "Room001-00002.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), SR)
    with raises(f"{empty}: no samples (an empty wav); a sim_rir recording needs audio"):
        prepare_rir_noise(root, tmp_path / "out")
    empty.unlink()
    empty = root / "pointsource_noises" / "noise-free-sound-0001.wav"
    wav(empty.with_name("noise-free-sound-0000.wav"), 0.5)
    sf.write(empty, np.zeros(0, dtype=np.float32), SR)
    with raises(f"{empty}: no samples (an empty wav); a point_noise recording needs audio"):
        prepare_rir_noise(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_wav_that_is_not_audio_in_musan_or_rirs_noises_is_named_not_a_traceback(tmp_path):
    """A macOS AppleDouble file (._noise-free-sound-0000.wav, left by a copy made on a Mac) or a
    wav cut short before its header ends: lhotse's recipes raised AudioLoadingError, and stage 1
    stopped with a traceback and pages of audio backends' exceptions. Now a CorpusError names
    the file, why, and what to do."""
    musan = tmp_path / "musan"
    good = wav(musan / "noise" / "free-sound" / "noise-free-sound-0000.wav", 0.5)
    apple = musan / "noise" / "free-sound" / "._noise-free-sound-0000.wav"
    apple.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    with raises(f"{apple}: cannot read it as audio (Format not recognised); expected a MUSAN "
                f"wav: a file cut short (unpack musan.tar.gz again), or one that is not audio "
                f"(macOS's ._ files: delete them)"):
        prepare_musan(musan, tmp_path / "out")
    rirs = tmp_path / "RIRS_NOISES"
    short = rirs / "simulated_rirs" / "smallroom" / "Room001" / "Room001-00001.wav"
    short.parent.mkdir(parents=True)
    short.write_bytes(good.read_bytes()[:20])
    with raises(f"{short}: cannot read it as audio (", "expected a RIRS_NOISES wav: a file cut "
                "short (unpack rirs_noises.zip again)"):
        prepare_rir_noise(rirs, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_musan_or_rirs_noises_one_level_off_says_where_the_corpus_is(tmp_path):
    """RIRS_NOISES set to the directory above RIRS_NOISES/ (Kaldi's rir_list paths are relative
    to it, so Kaldi users point there), MUSAN to musan/noise or to a musan/ that holds musan/:
    'no wavs under …' named the directory but not where the corpus was."""
    wav(tmp_path / "RIRS_NOISES" / "simulated_rirs" / "smallroom" / "Room001" / "Room001-00001.wav", 0.3)
    with raises(f"{tmp_path}: no wavs under pointsource_noises, real_rirs_isotropic_noises, "
                f"simulated_rirs; {tmp_path / 'RIRS_NOISES'} holds them: set RIRS_NOISES to it"):
        prepare_rir_noise(tmp_path, tmp_path / "out")
    sim = tmp_path / "RIRS_NOISES" / "simulated_rirs"
    with raises(f"{sim}: no wavs under pointsource_noises, real_rirs_isotropic_noises, "
                f"simulated_rirs; {sim} is inside the corpus: set RIRS_NOISES to {sim.parent}"):
        prepare_rir_noise(sim, tmp_path / "out")
    slr26 = tmp_path / "SLR26"  # OpenSLR 26 alone (the DNS challenge's copy: 48 kHz)
    wav(slr26 / "simulated_rirs_48k" / "smallroom" / "Room001" / "Room001-00001.wav", 0.3, sr=48000)
    with raises(f"{slr26}: no wavs under pointsource_noises, real_rirs_isotropic_noises, "
                f"simulated_rirs; {slr26 / 'simulated_rirs_48k'} is OpenSLR 26's simulated RIRs "
                f"under another name: rename it to simulated_rirs"):
        prepare_rir_noise(slr26, tmp_path / "out")
    musan = tmp_path / "data" / "musan"
    wav(musan / "musan" / "noise" / "free-sound" / "noise-free-sound-0000.wav", 0.5)
    with raises(f"{musan}: no wavs under music/, noise/ or speech/; {musan / 'musan'} holds "
                f"them: set MUSAN to it"):
        prepare_musan(musan, tmp_path / "out")
    noise = musan / "musan" / "noise"
    with raises(f"{noise}: no wavs under music/, noise/ or speech/; {noise} is inside the "
                f"corpus: set MUSAN to {musan / 'musan'}"):
        prepare_musan(noise, tmp_path / "out")
    (tmp_path / "other" / "noise").mkdir(parents=True)  # no corpus around it: no guess
    with raises(f"{tmp_path / 'other' / 'noise'}: no wavs under music/, noise/ or speech/") as e:
        prepare_musan(tmp_path / "other" / "noise", tmp_path / "out")
    assert str(e.value).endswith("speech/")
    assert not (tmp_path / "out").exists()


def test_a_part_the_corpus_lacks_gets_an_empty_manifest_not_an_earlier_ones(tmp_path, capsys):
    """MUSAN pointed at a partial copy (only noise/), RIRS_NOISES at one without
    simulated_rirs/, after stage 1 had prepared the embedded stand-ins into the same directory:
    the stand-ins' music, speech and simulated RIR manifests were left there, and stage 3 mixed
    them into the real corpus's augmentation without a word. Now those parts get empty
    manifests, and stage 3 turns their kinds off with a note."""
    from lhotse import CutSet, MonoCut, Recording, SupervisionSegment

    from pyadml.bin import augment_cuts

    out = tmp_path / "manifests"
    synth = tmp_path / "synth"
    wav(synth / "musan" / "music" / "synth" / "music-synth-0000.wav", 0.5)
    lines(synth / "musan" / "music" / "synth" / "ANNOTATIONS", "music-synth-0000 pop N synth")
    wav(synth / "musan" / "speech" / "synth" / "speech-synth-0000.wav", 0.5)
    wav(synth / "musan" / "noise" / "synth" / "noise-synth-0000.wav", 0.5)
    wav(synth / "rirs_noises" / "simulated_rirs" / "smallroom" / "Room001" / "Room001-00001.wav", 0.3)
    prepare_musan(synth / "musan", out)
    prepare_rir_noise(synth / "rirs_noises", out)

    real = tmp_path / "real"
    wav(real / "musan" / "noise" / "free-sound" / "noise-free-sound-0000.wav", 0.5)
    lines(real / "musan" / "noise" / "free-sound" / "ANNOTATIONS", "noise-free-sound-0000 x")
    wav(real / "RIRS_NOISES" / "real_rirs_isotropic_noises" / "RWCP_type1_rir_circle_ofc_imp050.wav", 0.3)
    prepare_musan(real / "musan", out)
    prepare_rir_noise(real / "RIRS_NOISES", out)
    count = {p.name: len(gzip.open(p, "rt").read().splitlines()) for p in out.glob("*.jsonl.gz")}
    assert count == {"musan_recordings_music.jsonl.gz": 0, "musan_supervisions_music.jsonl.gz": 0,
                     "musan_recordings_speech.jsonl.gz": 0, "musan_recordings_noise.jsonl.gz": 1,
                     "rir_recordings_sim_rir.jsonl.gz": 0, "rir_recordings_real_rir.jsonl.gz": 1,
                     "rir_recordings_iso_noise.jsonl.gz": 0, "rir_recordings_point_noise.jsonl.gz": 0}

    # stage 3 as run.sh calls it: music, babble and reverb off, with a note; noise alone
    rec = Recording.from_file(wav(tmp_path / "utt.wav", 1.0))
    sup = SupervisionSegment(id="u1", recording_id=rec.id, start=0.0, duration=1.0, text="hello")
    CutSet.from_cuts([MonoCut(id="u1", start=0.0, duration=1.0, channel=0, recording=rec,
                              supervisions=[sup])]).to_file(tmp_path / "cuts.jsonl.gz")
    config = lines(tmp_path / "augment.yaml", "copies: 4")
    capsys.readouterr()
    assert augment_cuts.main([
        "--config", str(config), "--cuts", str(tmp_path / "cuts.jsonl.gz"),
        "--out", str(tmp_path / "aug.jsonl.gz"), "--manifest-dir", str(out),
        "--noise", "musan_noise", "--music", "musan_music", "--babble", "musan_speech",
        "--rirs", "rir_sim_rir"]) == 0
    stdout = capsys.readouterr().out
    for kind, name in (("music", "musan_recordings_music"), ("babble", "musan_recordings_speech"),
                       ("RIR (reverb)", "rir_recordings_sim_rir")):
        assert f"{out / name}.jsonl.gz is empty; {kind} disabled" in stdout
    import pyadml.data.augment  # noqa: F401  (its transforms, for reading the copies back)
    copies = [c for c in CutSet.from_file(tmp_path / "aug.jsonl.gz") if c.custom and "aug" in c.custom]
    assert len(copies) == 4 and {c.custom["aug"]["kind"] for c in copies} == {"noise"}


def test_cli(segmented, tmp_path, capsys):
    out = tmp_path / "cli"
    assert prepare_manifests.main(["king_asr_066", str(segmented.parent), str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "2 recordings, 3 supervisions" in stdout and "5 aligned words" in stdout
    assert (out / "king_asr_066_supervisions_train.jsonl.gz").is_file()
    lines(segmented / "words.ctm", "a1 1 0.10 0.30 hello")
    assert prepare_manifests.main(["king_asr_066", str(segmented.parent), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("prepare_manifests: ") and str(segmented / "text") in err


def test_inputs_list_names_the_files_this_command_read(plain, segmented, tmp_path):
    """prepare_manifests --inputs-list (stage 1's marker hashes the list): the Kaldi tables and
    CTM it read; a second command in the same process lists only its own."""
    out = tmp_path / "m"
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    assert prepare_manifests.main(["kaldi", str(segmented), str(out), "--ctm",
                                   str(segmented / "words.ctm"), "--inputs-list", str(first)]) == 0
    assert first.read_text().splitlines() == sorted(
        str(segmented / n) for n in ("segments", "spk2gender", "text", "utt2spk", "wav.scp", "words.ctm"))
    assert prepare_manifests.main(["kaldi", str(plain), str(out), "--inputs-list", str(second)]) == 0
    assert second.read_text().splitlines() == sorted(str(plain / n) for n in ("text", "utt2spk", "wav.scp"))
