"""Continuous-speech evaluation: streams with occurrences at known times, matching, the
FRR / FA-per-hour sweep; and the real wakeword_dev recordings (skipped without ../shared)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import RATE, speechlike

from pyadml.spot import Detection
from pyadml.spot.evaluate import (Occurrence, background_segments, background_utterances,
                                  build_stream, match,
                                  operating_points, real_occurrences, sweep, trim)
from pyadml.text import G2P, PhoneTable, Tokenizer

WAKEWORD_DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "wakeword_dev"


def test_stream_holds_each_occurrence_at_its_time(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    texts = ["hello there", "my computer is slow", "good morning", "nice weather", "see you"]
    for i in range(len(texts)):
        sf.write(tmp_path / f"u{i}.wav", speechlike(1.0 + 0.2 * i, seed=i), RATE)
    (data / "wav.scp").write_text("".join(f"u{i} {tmp_path / f'u{i}.wav'}\n" for i in range(5)))
    (data / "text").write_text("".join(f"u{i} {t}\n" for i, t in enumerate(texts)))
    tok = Tokenizer(PhoneTable(list(G2P().inventory)), {})
    bg = background_utterances(data, ["computer", "smart mirror"], tok)
    assert len(bg) == 4 and not any("u1.wav" in p for p in bg)  # the one saying 'computer'
    clip = np.zeros(RATE, np.float32)
    clip[4000:9000] = 0.5 * np.sin(np.arange(5000) / 3)
    audio, truth, bg_s = build_stream(bg, [("computer", clip), ("alexa", clip * 0.5)], "t", seed=1)
    assert [o.keyword for o in truth] and len(truth) == 2
    assert bg_s == pytest.approx(sum(sf.info(p).duration for p in bg))
    for o in truth:
        a, b = int(round(o.start * RATE)), int(round(o.end * RATE))
        assert abs((b - a) - 5000) <= 320
        assert np.abs(audio[a + 200 : b - 200]).max() > 0.2  # the clip's tone is there


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
    audio, truth, bg_s = build_stream(bg, [("computer", np.ones(800, np.float32))], "t", seed=0)
    assert bg_s == pytest.approx(1.0) and len(truth) == 1


def test_sweep_counts_misses_and_false_alarms_per_hour():
    truth = [Occurrence("a", 10, 11, "t"), Occurrence("a", 50, 51, "t"), Occurrence("b", 90, 91, "t")]
    dets = [Detection("a", 10.2, 10.9, 0.9), Detection("a", 10.5, 11.2, 0.95),  # 2nd = extra -> FA
            Detection("b", 50.0, 50.8, 0.8),                                       # wrong keyword
            Detection("b", 90.1, 90.9, 0.6), Detection("a", 200, 201, 0.7)]
    best, fa = match(dets, truth)
    assert [b.score if b else None for b in best] == [0.95, None, 0.6]
    assert sorted(fa) == [0.7, 0.8, 0.9]
    thr, miss, fah = sweep(best, fa, hours=0.5, num_keywords=2)  # FA/h = FAs / 1 keyword-hour
    at = dict(zip(np.round(thr, 3), zip(miss, fah)))
    assert at[0.95] == (pytest.approx(2 / 3), 0.0)
    assert at[0.8] == (pytest.approx(2 / 3), 2.0)
    assert at[0.6] == (pytest.approx(1 / 3), 3.0)
    ops = operating_points(thr, miss, fah, best, truth)
    assert [r["threshold"] for r in ops] == [0.95, 0.9, 0.8]  # FA/h 0, 1, 2


@pytest.mark.skipif(not WAKEWORD_DEV.is_dir(), reason="../shared/data/wakeword_dev is absent")
def test_wakeword_dev_clips_are_read_and_trimmed():
    occ = real_occurrences(WAKEWORD_DEV, ["computer"])
    assert len(occ) == 50 and {k for k, _ in occ} == {"computer"}
    for _, x in occ[:10]:
        a, b = trim(x)
        assert 0.2 < (b - a) / RATE < 2.5  # a spoken keyword, not the whole 3 s clip
