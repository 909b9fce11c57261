import pytest
from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.supervision import AlignmentItem

from pyadml.data.cuts import WordFilter, keyword_counts, make_phrase_cuts, make_word_cuts, split_dev


def recording(rid, seconds, sr=16000):
    return Recording.from_dict({
        "id": rid, "sources": [{"type": "file", "channels": [0], "source": f"/nowhere/{rid}.wav"}],
        "sampling_rate": sr, "num_samples": int(seconds * sr), "duration": seconds,
        "channel_ids": [0],
    })


def utterance(uid, rid, words, speaker="spk"):
    return SupervisionSegment(
        id=uid, recording_id=rid, start=0.0, duration=max(s + d for _, s, d in words) + 0.1,
        text=" ".join(w for w, _, _ in words), speaker=speaker,
        alignment={"word": [AlignmentItem(symbol=w, start=s, duration=d) for w, s, d in words]},
    )


@pytest.fixture
def manifests():
    recs = RecordingSet.from_recordings([recording("r1", 3.0), recording("r2", 2.0)])
    sups = SupervisionSet.from_segments([
        # word at 0.02 s: padding is clipped at the start of the recording
        utterance("u1", "r1", [("Hello", 0.02, 0.40), ("world", 0.80, 0.50), ("a", 1.50, 0.05)]),
        # last word ends 0.01 s before the end: padding clipped at the end
        utterance("u2", "r2", [("keyword", 0.50, 1.49), ("spotting", 0.10, 2.5)]),
    ])
    return recs, sups


def test_one_cut_per_word_with_padding_and_drops(manifests):
    cuts, stats = make_word_cuts(*manifests, pad=0.05, min_duration=0.1, max_duration=2.0)
    assert [c.id for c in cuts] == ["u1_000", "u1_001", "u2_000"]
    assert (stats.kept, stats.too_short, stats.too_long) == (3, 1, 1)
    hello, world, keyword = cuts
    assert hello.start == 0.0 and hello.duration == pytest.approx(0.47)  # clipped left
    assert hello.supervisions[0].start == pytest.approx(0.02)
    assert world.start == pytest.approx(0.75) and world.duration == pytest.approx(0.60)
    assert world.supervisions[0].start == pytest.approx(0.05)
    assert keyword.end == pytest.approx(2.0)  # clipped right
    assert [c.supervisions[0].text for c in cuts] == ["hello", "world", "keyword"]
    assert keyword.supervisions[0].custom["utt"] == "u2" and keyword.supervisions[0].speaker == "spk"
    assert keyword_counts(cuts) == {"hello": 1, "world": 1, "keyword": 1}


def test_utterances_without_alignment_are_counted(manifests):
    recs, sups = manifests
    sups = SupervisionSet.from_segments(list(sups) + [SupervisionSegment("u3", "r1", 0, 1, text="x")])
    _, stats = make_word_cuts(recs, sups)
    assert stats.no_alignment == 1


def test_dev_split_keeps_utterances_whole_and_is_stable(manifests):
    recs, _ = manifests
    sups = SupervisionSet.from_segments([
        utterance(f"u{i}", "r1", [("one", 0.1, 0.3), ("two", 0.5, 0.3), ("six", 1.0, 0.3)])
        for i in range(200)
    ])
    cuts, _ = make_word_cuts(recs, sups)
    train, dev = split_dev(cuts, 0.1, seed=3)
    assert len(train) + len(dev) == len(cuts) == 600
    dev_utts = {c.supervisions[0].custom["utt"] for c in dev}
    assert not dev_utts & {c.supervisions[0].custom["utt"] for c in train}
    assert all(sum(c.supervisions[0].custom["utt"] == u for c in dev) == 3 for u in dev_utts)
    assert 0.04 < len(dev_utts) / 200 < 0.18
    again = split_dev(cuts, 0.1, seed=3)[1]
    assert [c.id for c in again] == [c.id for c in dev]
    assert [c.id for c in split_dev(cuts, 0.1, seed=4)[1]] != [c.id for c in dev]
    assert len(split_dev(cuts, 0.0, seed=3)[1]) == 0


def test_phrase_cuts_are_whole_recordings(manifests):
    recs, _ = manifests
    sups = SupervisionSet.from_segments([
        SupervisionSegment("r1", "r1", 0.0, 3.0, text="the river"),
        SupervisionSegment("r2", "r2", 0.0, 2.0, text="friend"),
    ])
    cuts = make_phrase_cuts(recs, sups)
    assert {c.id: (c.duration, c.supervisions[0].text) for c in cuts} == {
        "r1": (3.0, "the river"), "r2": (2.0, "friend")}


MESSY = [("MR.", 0.10, 0.30), ("[NOISE]", 0.45, 0.20), ("SMITH'S", 0.70, 0.40), ("<UNK>", 1.15, 0.2),
         (",COMMA", 1.40, 0.15), ("2ND", 1.60, 0.30), ("<SPOKEN_NOISE>", 1.95, 0.2),
         ("th-", 2.20, 0.15), ("1990S", 2.40, 0.50), ("!!!", 2.95, 0.02)]


def test_real_transcripts_are_normalised_and_non_words_dropped_by_kind():
    recs = RecordingSet.from_recordings([recording("r1", 3.5)])
    sups = SupervisionSet.from_segments([utterance("u1", "r1", MESSY)])
    cuts, stats = make_word_cuts(recs, sups, min_duration=0.1)
    assert [c.supervisions[0].text for c in cuts] == ["mister", "smith's", "second", "nineteen nineties"]
    assert [c.supervisions[0].custom["word"] for c in cuts] == ["MR.", "SMITH'S", "2ND", "1990S"]
    # Ids keep the word's position in the CTM, so a dropped token never renames the others.
    assert [c.id for c in cuts] == ["u1_000", "u1_002", "u1_005", "u1_008"]
    assert stats.dropped == {"noise_marker": 1, "unknown_or_noise_token": 2, "verbal_punctuation": 1,
                             "partial_word": 1, "unpronounceable": 1}
    assert stats.kept == 4 and stats.too_short == 0
    assert "u1:[NOISE]" in stats.examples["noise_marker"]


def test_drop_patterns_come_from_the_config():
    keep_noise = WordFilter({"unknown": r"<.*>"})
    assert keep_noise("[NOISE]") == ("noise", None)
    assert keep_noise("<unk>") == (None, "unknown")
    assert keep_noise("...") == (None, "unpronounceable")
    with pytest.raises(ValueError, match="word_cuts.drop.bad"):
        WordFilter({"bad": "("})
