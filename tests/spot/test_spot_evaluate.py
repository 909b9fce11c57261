"""Continuous-speech evaluation: streams with occurrences at known times, matching, the
FRR / FA-per-hour sweep; and the real wakeword_dev recordings (skipped without ../shared)."""

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import RATE, speechlike

from pyadml.score.pairs import PairsError
from pyadml.spot import Detection, KeywordSpotter
from pyadml.spot.evaluate import (Occurrence, background_segments, background_utterances,
                                  build_stream, clip_rows, clip_scores, emitted, match,
                                  operating_points, real_occurrences, run_stream, sweep, trim)
from pyadml.text import G2P, PhoneTable, Tokenizer

WAKEWORD_DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "wakeword_dev"


def kaldi_dir(tmp_path, texts, seconds, step):
    """A Kaldi dir (wav.scp, text) of speech-like utterances u0, u1, ... of growing length."""
    data = tmp_path / "data"
    data.mkdir()
    for i in range(len(texts)):
        sf.write(tmp_path / f"u{i}.wav", speechlike(seconds + step * i, seed=i), RATE)
    (data / "wav.scp").write_text("".join(f"u{i} {tmp_path / f'u{i}.wav'}\n" for i in range(len(texts))))
    (data / "text").write_text("".join(f"u{i} {t}\n" for i, t in enumerate(texts)))
    return data


def test_stream_holds_each_occurrence_at_its_time(tmp_path):
    texts = ["hello there", "my computer is slow", "good morning", "nice weather", "see you"]
    data = kaldi_dir(tmp_path, texts, 1.0, 0.2)
    tok = Tokenizer(PhoneTable(list(G2P().inventory)), {})
    bg = background_utterances(data, ["computer", "smart mirror"], tok)
    assert len(bg) == 4 and not any("u1.wav" in p for p in bg)  # the one saying 'computer'
    clip = np.zeros(RATE, np.float32)
    clip[4000:9000] = 0.5 * np.sin(np.arange(5000) / 3)
    audio, truth, bg_s, blocks = build_stream(bg, [("computer", clip), ("alexa", clip * 0.5)],
                                              "t", seed=1)
    assert [o.keyword for o in truth] and len(truth) == 2
    assert bg_s == pytest.approx(sum(sf.info(p).duration for p in bg))
    # One block per background utterance: its start and length, the utterance's audio there.
    assert blocks.shape == (4, 2) and blocks[:, 1].sum() == pytest.approx(bg_s)
    assert sorted(np.round(blocks[:, 1], 3)) == sorted(round(sf.info(p).duration, 3) for p in bg)
    for (start, length), nxt in zip(blocks, list(blocks[1:, 0]) + [audio.size / RATE]):
        a = int(round(start * RATE))
        x = sf.read(next(p for p in bg if abs(sf.info(p).duration - length) < 1e-3))[0]
        assert np.allclose(audio[a : a + x.size], x, atol=1e-4)
        assert start + length < nxt  # a pause (and maybe occurrences) before the next block
    for o in truth:  # in a block's pause, after its utterance
        start, length = blocks[np.searchsorted(blocks[:, 0], o.start) - 1]
        assert o.start > start + length
    for o in truth:
        a, b = int(round(o.start * RATE)), int(round(o.end * RATE))
        assert abs((b - a) - 5000) <= 320
        assert np.abs(audio[a + 200 : b - 200]).max() > 0.2  # the clip's tone is there


def test_more_occurrences_than_background_utterances_are_all_in_the_stream(tmp_path):
    """A short background (the LibriSpeech stand-in's test-clean: 289 utterances for 300 real
    clips) used to drop the occurrences past one per pause; now a pause holds several."""
    data = kaldi_dir(tmp_path, ["one", "two", "three"], 0.5, 0.1)
    tok = Tokenizer(PhoneTable(list(G2P().inventory)), {})
    bg = background_utterances(data, ["computer"], tok)
    clip = np.zeros(RATE // 2, np.float32)
    clip[2000:6000] = 0.5
    occ = [(f"kw{i}", clip * (0.2 + 0.1 * i)) for i in range(7)]
    audio, truth, bg_s, _ = build_stream(bg, occ, "t", seed=3)
    assert sorted(o.keyword for o in truth) == sorted(k for k, _ in occ)
    starts = [o.start for o in truth]
    assert starts == sorted(starts)
    assert all(b.start > a.end for a, b in zip(truth, truth[1:]))  # each has a pause after it
    for o in truth:  # each at its time, at its own level
        i = int(o.keyword[2:])
        a, b = int(round(o.start * RATE)), int(round(o.end * RATE))
        assert np.abs(audio[a + 100 : b - 100]).max() == pytest.approx(0.5 * (0.2 + 0.1 * i))


@pytest.mark.parametrize("utterances, occurrences", [(10, 3), (9, 9), (100, 7), (3, 7), (289, 300), (5, 0)])
def test_occurrences_are_spread_evenly_and_all_inserted(utterances, occurrences):
    from pyadml.spot.evaluate import _inserted_after

    counts = [_inserted_after(n, utterances, occurrences) for n in range(utterances)]
    assert counts == sorted(counts) and counts[-1] == occurrences
    if utterances >= occurrences:  # the old rule: after every (utterances // occurrences)-th one
        every = max(1, utterances // max(1, occurrences))
        old, k = [], 0
        for n in range(utterances):
            if n % every == every - 1 and k < occurrences:
                k += 1
            old.append(k)
        assert counts == old
    else:
        steps = np.diff([0] + counts)
        assert steps.max() - steps.min() <= 1  # as even as whole numbers allow


def test_background_from_a_sets_manifests_skips_utterances_with_a_keyword(tmp_path):
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    texts = ["hello there", "my computer is slow", "good morning", "a smart mirror"]
    recs, sups = [], []
    for i, t in enumerate(texts):
        sf.write(tmp_path / f"u{i}.wav", speechlike(1.0 + 0.2 * i, seed=i), RATE)
        rec = Recording.from_file(tmp_path / f"u{i}.wav", recording_id=f"r{i}")
        recs.append(rec)
        # Two utterances per recording: the segment's own span is what is loaded.
        sups.append(SupervisionSegment(f"s{i}", f"r{i}", 0.2, 0.5, text=t))
    RecordingSet.from_recordings(recs).to_file(tmp_path / "corp_recordings_test.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(tmp_path / "corp_supervisions_test.jsonl.gz")
    tok = Tokenizer(PhoneTable(list(G2P().inventory)), {})
    bg = background_segments(tmp_path, "corp_test", ["computer", "smart mirror"], tok)
    assert [b.recording.id for b in bg] == ["r0", "r2"]
    x = bg[1].load()
    want = sf.read(tmp_path / "u2.wav", dtype="float32")[0][int(0.2 * RATE) : int(0.7 * RATE)]
    assert x.shape == want.shape and np.allclose(x, want, atol=1e-4)
    audio, truth, bg_s, _ = build_stream(bg, [("computer", np.ones(800, np.float32))], "t", seed=0)
    assert bg_s == pytest.approx(1.0) and len(truth) == 1


def test_match_takes_the_best_detection_per_occurrence():
    truth = [Occurrence("a", 10, 11, "t"), Occurrence("a", 50, 51, "t"), Occurrence("b", 90, 91, "t")]
    dets = [Detection("a", 10.2, 10.9, 0.9), Detection("a", 10.5, 11.2, 0.95),  # 2nd = extra -> FA
            Detection("b", 50.0, 50.8, 0.8),                                       # wrong keyword
            Detection("b", 90.1, 90.9, 0.6), Detection("a", 200, 201, 0.7)]
    best, fa = match(dets, truth)
    assert [b.score if b else None for b in best] == [0.95, None, 0.6]
    assert sorted(fa) == [0.7, 0.8, 0.9]


def test_sweep_applies_each_thresholds_own_refractory_time():
    """Worked by hand. Keyword a has a 1 s refractory time; its weak peak P1 (no occurrence)
    starts 0.7 s before the strong hit P2, so P2 fires only at thresholds above P1's score."""
    truth = [Occurrence("a", 10, 11, "t"), Occurrence("a", 50, 51, "t"), Occurrence("b", 90, 91, "t")]
    peaks = [Detection("a", 9.2, 9.9, 0.4, 9.95),     # P1: false alarm, suppresses P2 below 0.4
             Detection("a", 9.9, 10.6, 0.9, 10.7),    # P2: hits occurrence 0 (latency -0.3 s)
             Detection("a", 50.2, 50.9, 0.7, 51.1),   # P3: hits occurrence 1 (latency +0.1 s)
             Detection("b", 90.1, 90.9, 0.5, 91.0),   # P5: hits occurrence 2 (latency 0.0 s)
             Detection("a", 200, 201, 0.6, 201.1),    # P4: false alarm
             Detection("b", 300, 301, 0.8, 301.1)]    # P6: false alarm
    refractory = {"a": 1.0, "b": 1.0}
    # FA/h = false alarms / (0.5 h x 2 keywords)
    thr, miss, fah = sweep(peaks, truth, hours=0.5, num_keywords=2, refractory=refractory)
    assert np.allclose(thr, [1.01, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert np.allclose(miss, [1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0, 1 / 3])
    assert np.allclose(fah, [0, 0, 1, 1, 2, 2, 3])
    assert [d.score for d in emitted(peaks, 0.4, refractory)] == [0.4, 0.7, 0.5, 0.6, 0.8]
    assert [d.score for d in emitted(peaks, 0.4, {"a": 0.5, "b": 1.0})] == [0.4, 0.9, 0.7, 0.5, 0.6, 0.8]
    ops = operating_points(thr, miss, fah, peaks, truth, refractory)
    assert [r["threshold"] for r in ops] == [0.9, 0.7, 0.5]  # FA/h 0.5, 1, 2
    assert [r["frr"] for r in ops] == pytest.approx([2 / 3, 1 / 3, 0])
    assert [r["missed"] for r in ops] == [[1, 2], [2], []]
    assert ops[2]["latency_median_s"] == pytest.approx(0.0)
    # A sweep that let the weak peak suppress the strong one at every threshold (the spotter
    # run once at a low threshold) would miss occurrence 0 everywhere: never below 1/3.
    assert miss.min() == 0


def test_emitted_at_a_threshold_is_a_run_of_the_spotter_at_it(tiny_model):
    """The sweep's detections at a threshold (from one search for every peak) equal a real run of
    the spotter at that threshold, with the default refractory time and with a fixed one."""
    x = speechlike(14, seed=5)
    for opts in ({}, {"refractory": 0.3}):
        sp = KeywordSpotter.load(tiny_model, num_threads=1, **opts)
        sp.enroll(["computer", "yes", "turn on the light"])
        peaks = run_stream(sp, x)
        assert sp.refractory == opts.get("refractory")  # restored after the search
        refr = {k: sp.refractory_of(k) for k in sp.keywords}
        ranked = sorted({round(d.score, 6) for d in peaks})
        fired = []
        for q in (0.5, 0.8, 0.95):
            k = int(q * len(ranked))
            thr = (ranked[k - 1] + ranked[k]) / 2  # between two peak scores: no float ties
            want = sp.detect((x, RATE), threshold=thr)
            got = emitted(peaks, thr, refr)
            key = lambda d: (d.start, d.keyword)  # noqa: E731
            assert [(d.keyword, d.start, d.end) for d in sorted(got, key=key)] == \
                   [(d.keyword, d.start, d.end) for d in want]
            fired.append(len(want))
        assert fired[0] > fired[-1] >= 1
        if not opts:  # the default: one keyword's detections never overlap
            for k in sp.keywords:
                ds = [d for d in emitted(peaks, -1.0, refr) if d.keyword == k]
                assert all(b.start >= a.end - 1e-6 for a, b in zip(ds, ds[1:]))


class _Prescribed:
    """A spotter whose detections per clip are given: clip_scores' own work is tested alone."""

    keywords = ["a", "b"]
    refractory = 1.0

    def __init__(self, dets):
        self.dets, self.calls = dets, []

    def detect(self, audio, threshold=None):
        x, _ = audio
        self.calls.append((threshold, self.refractory))
        return [Detection(k, 0.0, 0.5, s) for k, s in self.dets[int(round(x[0] * 10))]]


def test_clip_scores_use_each_clips_best_detection(tmp_path):
    # Clip i's first sample is i / 10, so the fake spotter knows which clip it hears.
    dets = [[("a", 0.9), ("a", 0.5), ("b", 0.3)],   # says a: row (0.9, 0.3)
            [("a", 0.6)],                           # says b, never detected: row (0.6, -1)
            [("b", 0.2), ("a", 0.4)]]               # says a: row (0.4, 0.2)
    lines = []
    for i, kw in enumerate("aba"):
        sf.write(tmp_path / f"{i}.wav", np.full(1600, i / 10, np.float32), RATE)
        lines.append(f"{i}.wav\t{kw}\n")
    lines.insert(1, f"{0}.wav\tnot enrolled\n")  # another keyword's clip: left out
    (tmp_path / "clips.tsv").write_text("".join(lines))
    sp = _Prescribed(dets)
    m = clip_scores(sp, tmp_path)
    # Every peak counts, however weak, none suppressed by a weaker one before it.
    assert sp.calls == [(-1.0, 0.0)] * 3 and sp.refractory == 1.0
    assert m["clips"] == 3 and m["trials"] == 6
    assert m["top1"] == pytest.approx(2 / 3)
    # Positives 0.9, 0.4, -1 among negatives 0.6, 0.3, 0.2: precision 1, 2/3, 3/6 at each hit.
    assert m["AP"] == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    assert m["AUC"] == pytest.approx((3 + 2 + 0) / 9)
    # A speaker column (score_clips --speaker-mean) changes nothing here.
    (tmp_path / "clips.tsv").write_text("".join(ln.rstrip("\n") + "\tspk\n" for ln in lines))
    assert clip_scores(_Prescribed(dets), tmp_path) == m
    (tmp_path / "clips.tsv").write_text("0.wav\ta\n1.wav b\n")
    with pytest.raises(PairsError, match=r"clips.tsv:2: expected '<audio>\\t<keyword>\[\\t<speaker>\]'"):
        clip_scores(sp, tmp_path)


@pytest.mark.skipif(not WAKEWORD_DEV.is_dir(), reason="../shared/data/wakeword_dev is absent")
def test_wakeword_dev_clips_are_read_and_trimmed():
    occ = real_occurrences(WAKEWORD_DEV, ["computer"])
    assert len(occ) == 50 and {k for k, _ in occ} == {"computer"}
    for _, x in occ[:10]:
        a, b = trim(x)
        assert 0.2 < (b - a) / RATE < 2.5  # a spoken keyword, not the whole 3 s clip


def test_evaluate_in_two_processes_equals_one(tiny_model, tmp_path, monkeypatch):
    """--jobs 2 searches the streams and the clips in spawned processes: the same report."""
    import json

    import pyadml.spot.evaluate as ev

    data = kaldi_dir(tmp_path, ["hello there", "good morning", "nice weather", "see you", "thank you"],
                     2.0, 0.3)
    occ = [(k, speechlike(0.7, seed=10 + i)) for i, k in enumerate(["computer", "yes"] * 2)]
    monkeypatch.setattr(ev, "synth_occurrences", lambda *a: occ)
    clips = tmp_path / "clips"
    clips.mkdir()
    for i, k in enumerate(["computer", "yes", "computer"]):
        sf.write(clips / f"{i}.wav", speechlike(1.5, seed=20 + i), RATE)
    (clips / "clips.tsv").write_text("".join(f"{i}.wav\t{k}\n" for i, k in
                                             enumerate(["computer", "yes", "computer"])))
    monkeypatch.setattr(ev, "real_occurrences", lambda d, kws: occ[:2])
    reports = [ev.evaluate(tiny_model, data, tmp_path / f"out{j}", ["computer", "yes"],
                           wakeword_dev=clips, jobs=j, log=io.StringIO())
               for j in (1, 2)]
    assert set(reports[0]["sets"]) == {"synth", "real"} and reports[0]["real_clips"]["clips"] == 3
    assert json.dumps(reports[0], sort_keys=True) == json.dumps(reports[1], sort_keys=True)
    for name in ("peaks_synth.tsv", "peaks_real.tsv", "truth_real.tsv", "results.md"):
        assert (tmp_path / "out1" / name).read_text() == (tmp_path / "out2" / name).read_text()


def test_a_keyword_given_twice_is_refused_not_counted_twice(tiny_model, tmp_path, monkeypatch, capsys):
    """stage 9's --keywords "computer,yes,computer": the spotter enrols computer once, but the
    false alarms per hour were divided by three keywords: every FRR at 0.5/1/2 FA/h read at
    two thirds of the false alarms it claims."""
    import pyadml.spot.evaluate as ev

    data = kaldi_dir(tmp_path, ["hello there", "good morning", "nice weather"], 2.0, 0.3)
    monkeypatch.setattr(ev, "synth_occurrences", lambda kws, *a: [
        (k, speechlike(0.7, seed=10 + i)) for i, k in enumerate(kws)])
    out = tmp_path / "out"
    assert ev.main(["--model", str(tiny_model), "--data", str(data), "--out-dir", str(out),
                    "--keywords", "computer,yes,computer", "--enrol", "none"]) == 1
    assert ("eval_continuous: keyword 'computer' is given twice in the keywords "
            "(computer,yes,computer); give each once") in capsys.readouterr().err
    assert not (out / "metrics.json").exists()


def test_clips_are_matched_to_the_keywords_by_their_words_not_their_spelling(tmp_path):
    """stage 9 --keywords Alexa against a clips.tsv of 'alexa': the exact text matched no clip,
    and the real recordings silently had no occurrences."""
    (tmp_path / "audio").mkdir()
    for name in ("a1", "a2", "c1", "j1"):
        sf.write(tmp_path / "audio" / f"{name}.wav", speechlike(0.5), RATE)
    (tmp_path / "clips.tsv").write_text("audio/a1.wav\talexa\naudio/a2.wav\talexa\n"
                                        "audio/c1.wav\tcomputer!\naudio/j1.wav\tjarvis\n")
    rows = clip_rows(tmp_path, ["Alexa", "Computer"])
    assert [(p.name, k) for p, k in rows] == [("a1.wav", "Alexa"), ("a2.wav", "Alexa"),
                                              ("c1.wav", "Computer")]
    assert clip_rows(tmp_path, ["alexa"]) == [(p, "alexa") for p, _ in rows[:2]]
    assert clip_rows(tmp_path, ["hey"]) == []
