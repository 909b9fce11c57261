import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter, Recording, SupervisionSegment

from pyadml.data.dataset import (
    KeywordDataset, batch_rng, mean_normalize, read_keyword_ids, spec_augment, write_keyword_ids,
)
from pyadml.data.sampler import KeywordBatchSampler
from pyadml.text import G2P, PHONES_WITH_STRESS, KeywordError, PhoneTable, Tokenizer

LEXICON = {
    "hello": ["HH", "AH0", "L", "OW1"],
    "world": ["W", "ER1", "L", "D"],
    "market": ["M", "AA1", "R", "K", "AH0", "T"],
    "open": ["OW1", "P", "AH0", "N"],
}
TEXTS = [
    "hello", "hello", "world", "world", "market", "market", "hello world", "hello world",
    "open", "open", "people",  # "people" is not in the lexicon
]
KEYWORD_IDS = {"hello": 0, "market": 1, "open": 2, "world": 3}
TABLE = PhoneTable(PHONES_WITH_STRESS)
TOKENIZER = Tokenizer(TABLE, LEXICON)


@pytest.fixture(scope="module")
def cuts(tmp_path_factory):
    root = tmp_path_factory.mktemp("fbank")
    rng = np.random.default_rng(0)
    sr = 16000
    cut_list = []
    for n, text in enumerate(TEXTS):
        dur = rng.uniform(0.3, 1.0)
        t = np.arange(int(dur * sr)) / sr
        audio = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 800) * t)
        audio += 0.05 * rng.standard_normal(t.size)
        path = root / f"utt{n:02d}.wav"
        sf.write(str(path), audio.astype(np.float32), sr)
        rec = Recording.from_file(path, recording_id=f"utt{n:02d}")
        cut = rec.to_cut()
        cut.supervisions = [SupervisionSegment(
            id=rec.id, recording_id=rec.id, start=0.0, duration=rec.duration, text=text,
        )]
        cut_list.append(cut)
    return CutSet.from_cuts(cut_list).compute_and_store_features(
        Fbank(FbankConfig(num_mel_bins=40)), root / "feats", storage_type=LilcomChunkyWriter,
        num_jobs=1,
    ).to_eager()


def known_ids(cuts):
    return [c.id for c in cuts if c.supervisions[0].text != "people"]


def augment_switch(cuts, key, cfg):
    """Batches of the known ids: without the option ``key``, with it at prob 0, and twice with
    ``cfg`` (seed 4); a negative prob must be refused."""
    ids = known_ids(cuts)
    plain = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS)[ids]
    off = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, **{key: {**cfg, "prob": 0.0}})[ids]
    on = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, seed=4, **{key: cfg})
    with pytest.raises(ValueError, match=f"{key}: prob"):
        KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, **{key: {**cfg, "prob": -1.0}})
    return plain, off, on[ids], on[ids]


def test_mean_normalize_removes_the_per_dimension_mean():
    x = np.random.default_rng(1).normal(5.0, 2.0, size=(50, 40)).astype(np.float32)
    y = mean_normalize(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.abs(y.mean(axis=0)).max() < 1e-5


def test_batch_shapes_padding_and_normalisation(cuts):
    ds = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS)
    ids = known_ids(cuts)
    batch = ds[ids]
    by_id = {c.id: c for c in cuts}
    B = len(ids)
    assert batch["cut_ids"] == ids
    assert batch["texts"] == [by_id[i].supervisions[0].text for i in ids]
    feats, lens = batch["feats"], batch["feat_lens"]
    assert feats.dtype == torch.float32 and lens.dtype == torch.int64
    assert feats.shape == (B, int(lens.max()), 40)
    assert lens.tolist() == [by_id[i].num_frames for i in ids]
    assert len(set(lens.tolist())) > 1  # the padding is exercised
    for b in range(B):
        n = int(lens[b])
        assert torch.all(feats[b, n:] == 0)
        assert feats[b, :n].mean(dim=0).abs().max() < 1e-4
        assert feats[b, :n].abs().sum() > 0


def test_phones_are_the_concatenated_lexicon_entries(cuts):
    ds = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS)
    ids = known_ids(cuts)
    batch = ds[ids]
    phones, lens = batch["phones"], batch["phone_lens"]
    assert phones.dtype == torch.int64 and lens.dtype == torch.int64
    assert phones.shape == (len(ids), int(lens.max()))
    for b, text in enumerate(batch["texts"]):
        want = TABLE.encode([p for w in text.split() for p in LEXICON[w]])
        assert lens[b] == len(want)
        assert phones[b, :len(want)].tolist() == want
        assert torch.all(phones[b, len(want):] == 0)
    assert "hello world" in batch["texts"]  # a phrase is in the batch


def test_keyword_ids_and_minus_one_for_unknown(cuts):
    ids = known_ids(cuts)
    batch = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS)[ids]
    assert batch["keyword_ids"].tolist() == [KEYWORD_IDS.get(t, -1) for t in batch["texts"]]
    assert -1 in batch["keyword_ids"].tolist()  # "hello world"
    assert KeywordDataset(cuts, TOKENIZER)[ids]["keyword_ids"].tolist() == [-1] * len(ids)


def test_a_word_missing_from_the_lexicon_goes_through_the_g2p(cuts):
    people = next(c.id for c in cuts if c.supervisions[0].text == "people")
    batch = KeywordDataset(cuts, TOKENIZER)[[people]]
    assert batch["phones"][0].tolist() == TABLE.encode(G2P()("people"))
    # Lexicon words keep the lexicon's pronunciation, even where CMUdict would differ.
    odd = Tokenizer(TABLE, {**LEXICON, "people": ["P", "IY1"]})
    assert KeywordDataset(cuts, odd)[[people]]["phones"][0].tolist() == TABLE.encode(["P", "IY1"])


def test_an_unpronounceable_keyword_names_its_cut(cuts):
    bad = cuts[0].with_id("bad")
    bad.supervisions = [bad.supervisions[0].__class__(**{**bad.supervisions[0].to_dict(), "text": "!!!"})]
    with pytest.raises(KeywordError, match=r"cut bad.*nothing pronounceable"):
        KeywordDataset([bad], TOKENIZER)[["bad"]]


def test_dataloader_with_workers_gives_the_same_batches(cuts):
    ds = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS)
    keep = [c for c in cuts if c.supervisions[0].text != "people"]
    out = {}
    for workers in (0, 2):
        sampler = KeywordBatchSampler.from_cuts(
            keep, keywords_per_batch=2, utts_per_keyword=2, seed=3
        )
        loader = torch.utils.data.DataLoader(
            ds, sampler=sampler, batch_size=None, num_workers=workers
        )
        out[workers] = list(loader)
    assert len(out[0]) == len(out[2]) == 2
    for a, b in zip(out[0], out[2]):
        assert a["cut_ids"] == b["cut_ids"] and a["texts"] == b["texts"]
        for key in ("feats", "feat_lens", "phones", "phone_lens", "keyword_ids"):
            assert torch.equal(a[key], b[key])


def test_keyword_ids_round_trip_and_malformed_lines(tmp_path):
    path = tmp_path / "keywords.txt"
    written = write_keyword_ids(path, ["world", "hello", "market", "hello"])
    assert written == {"hello": 0, "market": 1, "world": 2}
    assert path.read_text() == "hello 0\nmarket 1\nworld 2\n"
    assert read_keyword_ids(path) == written
    path.write_text("hello 0\nmarket one\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2:")):
        read_keyword_ids(path)
    path.write_text("hello 0\nmarket 0\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2:") + ".*twice"):
        read_keyword_ids(path)
    path.write_text("hello 0\nmarket 2\n")
    with pytest.raises(ValueError, match="0..1"):
        read_keyword_ids(path)


def test_padding_to_a_multiple_keeps_lengths_and_zero_padding(cuts):
    ids = known_ids(cuts)
    b = KeywordDataset(cuts, TOKENIZER, pad_multiple=16)[ids]
    assert b["feats"].shape[1] % 16 == 0 and b["feats"].shape[1] >= int(b["feat_lens"].max())
    plain = KeywordDataset(cuts, TOKENIZER)[ids]
    for i, n in enumerate(b["feat_lens"].tolist()):
        assert torch.equal(b["feats"][i, :n], plain["feats"][i, :n])
        assert not b["feats"][i, n:].any()


def test_a_damaged_feature_archive_names_the_cut_and_the_file(cuts, tmp_path):
    from lhotse.utils import fastcopy

    cut = cuts[0]
    src = Path(cut.features.storage_path)
    damaged = tmp_path / "damaged.lca"
    damaged.write_bytes(src.read_bytes()[:20])  # as a kill mid-write used to leave it
    broken = fastcopy(cut, features=fastcopy(cut.features, storage_path=str(damaged)))
    with pytest.raises(ValueError, match=rf"cut {cut.id}: cannot load its features from {damaged}"):
        KeywordDataset([broken], TOKENIZER)[[cut.id]]


SPEC = {"prob": 1.0, "freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 10}


def _masked(x):
    """(frames whose every bin is 0, bins that are 0 in every frame) of a nowhere-zero input."""
    return np.flatnonzero((x == 0).all(axis=1)), np.flatnonzero((x == 0).all(axis=0))


def test_spec_augment_masks_bands_and_spans_within_their_bounds():
    rng = np.random.default_rng(3)
    feats = [rng.uniform(1, 2, size=(t, 40)).astype(np.float32) for t in (60, 12, 200)]
    out = spec_augment(feats, SPEC, batch_rng(1, ["a", "b", "c"], 1))
    some = False
    for x, y in zip(feats, out):
        frames, bins = _masked(y)
        # Every zero lies in a masked frame or bin; everything else is the input untouched.
        keep = np.ones(y.shape, bool)
        keep[frames] = False
        keep[:, bins] = False
        assert np.array_equal(y[keep], x[keep]) and (y[~keep] == 0).all()
        assert len(bins) <= 2 * 8 and len(frames) <= 2 * min(10, len(x) // 5)
        some |= len(bins) > 0 and len(frames) > 0
        assert np.all(x >= 1)  # the input is not modified in place
    assert some
    # The same batch (cut ids) draws the same masks: a resumed epoch is reproduced.
    again = spec_augment(feats, SPEC, batch_rng(1, ["a", "b", "c"], 1))
    assert all(np.array_equal(a, b) for a, b in zip(out, again))


def test_spec_augment_probability_zero_and_the_dataset_switch(cuts):
    ids = known_ids(cuts)
    plain = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS)[ids]["feats"]
    off = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, spec_augment={**SPEC, "prob": 0.0})[ids]
    assert torch.equal(off["feats"], plain)
    on = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, spec_augment=SPEC)[ids]
    lens = on["feat_lens"]
    for b in range(len(ids)):
        n = int(lens[b])
        frames, bins = _masked(on["feats"][b, :n].numpy())
        assert len(bins) + len(frames) > 0 or torch.equal(on["feats"][b], plain[b])
        assert torch.all(on["feats"][b, n:] == 0)
    assert not torch.equal(on["feats"], plain)
    with pytest.raises(ValueError, match="prob"):
        KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, spec_augment={**SPEC, "prob": 1.5})



TN = {"count": 3, "pool": 2, "weight": 1.0, "margin": 0.2, "scale": 10.0}


def test_near_miss_texts_per_distinct_batch_text(cuts):
    ids = known_ids(cuts)
    ds = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, text_negatives=TN, seed=5)
    batch = ds[ids]
    owners = batch["neg_texts"]
    assert owners == sorted(set(batch["texts"]))
    assert batch["neg_phones"].shape[0] == 3 * len(owners)
    words = sorted({w for t in TEXTS for w in t.split()})
    for k, text in enumerate(owners):
        # each near miss is the text with one word replaced by another training word
        allowed = set()
        for i, w in enumerate(text.split()):
            for o in words:
                if o != w:
                    allowed.add(tuple(TOKENIZER.encode(" ".join(text.split()[:i] + [o] + text.split()[i + 1:]))))
        for r in range(3 * k, 3 * k + 3):
            n = int(batch["neg_phone_lens"][r])
            assert tuple(batch["neg_phones"][r, :n].tolist()) in allowed
            assert bool((batch["neg_phones"][r, n:] == 0).all())
    # the same batch draws the same near misses (a resumed epoch is reproduced); another seed not
    again = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, text_negatives=TN, seed=5)[ids]
    assert torch.equal(again["neg_phones"], batch["neg_phones"])
    other = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, text_negatives=TN, seed=6)[ids]
    assert not torch.equal(other["neg_phones"], batch["neg_phones"])
    # count 0 (the default) adds nothing
    off = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, text_negatives={**TN, "count": 0})[ids]
    assert "neg_phones" not in off
    with pytest.raises(ValueError, match="loss.text_negatives.pool"):
        KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, text_negatives={**TN, "pool": 0})


def test_the_floor_is_applied_to_each_training_cut_before_mean_normalisation(cuts):
    """floor_db: each cut's log-mel values below (its maximum - floor_db dB) raised to it, then
    mean-normalised (pyadml.score.floor); checked against that formula written out here."""
    ids = known_ids(cuts)
    by_id = {c.id: c for c in cuts}
    floored = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, floor_db=20.0)[ids]
    plain = KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS)[ids]
    raised = 0
    for b, cid in enumerate(ids):
        f = by_id[cid].load_features().astype(np.float64)
        level = f.max() - 20.0 * np.log(10) / 10
        raised += int((f < level).sum())
        want = np.where(f < level, level, f)
        want -= want.mean(axis=0)
        n = int(floored["feat_lens"][b])
        np.testing.assert_allclose(floored["feats"][b, :n].numpy(), want, atol=1e-4)
    assert raised > 0  # the floor was exercised: the batches differ
    assert not torch.allclose(floored["feats"], plain["feats"])
    for bad in (-3, 0, True, "50"):
        with pytest.raises(ValueError, match=f"floor_db must be a positive number.*{bad!r}"):
            KeywordDataset(cuts, TOKENIZER, KEYWORD_IDS, floor_db=bad)


def test_speaker_ids_from_the_supervisions_and_minus_one_outside_the_map(cuts):
    from lhotse.utils import fastcopy

    spk = ["a", "b", None]
    named = [fastcopy(c, supervisions=[fastcopy(c.supervisions[0], speaker=spk[i % 3])])
             for i, c in enumerate(cuts)]
    ids = known_ids(named)
    batch = KeywordDataset(named, TOKENIZER, KEYWORD_IDS, speaker_ids={"b": 0, "a": 1})[ids]
    by_id = {c.id: c.supervisions[0].speaker for c in named}
    assert batch["speaker_ids"].tolist() == [{"a": 1, "b": 0}.get(by_id[i], -1) for i in ids]
    assert "speaker_ids" not in KeywordDataset(named, TOKENIZER, KEYWORD_IDS)[ids]
