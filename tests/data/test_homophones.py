"""batch.homophones=merge: words with the same phone ids form one keyword class."""

from lhotse import MonoCut, Recording, SupervisionSegment

from pyadml.data.cuts import homophone_classes, merge_homophones
from pyadml.data.sampler import KeywordBatchSampler

# Hand-made phone ids: for / four / fore share theirs; "fort" is one phone longer; "too" and
# "two" share theirs; "cat" stands alone.
PHONES = {"for": [3, 4], "four": [3, 4], "fore": [3, 4], "fort": [3, 4, 5], "too": [6, 7],
          "two": [6, 7], "cat": [8, 9, 6], "too two": [6, 7, 6, 7]}


def cut(cid, text, span=0):
    rec = Recording.from_dict({"id": cid, "sources": [{"type": "file", "channels": [0],
                               "source": f"/nowhere/{cid}.wav"}], "sampling_rate": 16000,
                               "num_samples": 16000, "duration": 1.0, "channel_ids": [0]})
    sup = SupervisionSegment(id=cid, recording_id=cid, start=0.0, duration=1.0, text=text,
                             speaker="spk", custom={"span": span} if span else None)
    return MonoCut(id=cid, start=0.0, duration=1.0, channel=0, recording=rec, supervisions=[sup])


def test_each_word_maps_to_the_first_spelling_of_its_phones():
    got = homophone_classes(["four", "two", "cat", "fore", "for", "too", "fort", "for"],
                            PHONES.__getitem__)
    assert got == {"cat": "cat", "for": "for", "fore": "for", "fort": "fort", "four": "for",
                   "too": "too", "two": "too"}


def test_merged_cuts_share_a_class_and_batches_never_hold_two_of_one_class():
    cuts = [cut(f"{w}-{i}", w) for w in ("for", "four", "fore", "fort", "too", "two", "cat")
            for i in range(2)] + [cut("span-1", "too two", span=2)]
    merged_cuts, merged = merge_homophones(cuts, PHONES.__getitem__)
    assert merged == {"fore": "for", "four": "for", "two": "too"}
    texts = {c.id: c.supervisions[0].text for c in merged_cuts}
    assert texts["four-0"] == texts["fore-1"] == texts["for-0"] == "for"
    assert texts["two-1"] == "too" and texts["fort-0"] == "fort" and texts["cat-1"] == "cat"
    assert texts["span-1"] == "too two"  # spans keep their words
    assert [c.id for c in merged_cuts] == [c.id for c in cuts]
    assert cuts[2].supervisions[0].text == "four"  # the input cuts are left alone
    # The sampler's groups follow the merged classes: 4 classes, so 4 keywords per batch at most,
    # and no batch pairs a "four" cut with a "for" cut as two keywords.
    words = [c for c in merged_cuts if c.id != "span-1"]
    sampler = KeywordBatchSampler.from_cuts(words, keywords_per_batch=4, utts_per_keyword=2,
                                            seed=0)
    batches = list(sampler)
    assert batches
    for b in batches:
        classes = [texts[i] for i in b]
        assert len(set(classes)) == 4 and all(classes.count(k) == 2 for k in set(classes))
