"""Multi-word span cuts (stage 2), their batches and the keyword-id masking."""

import json

import numpy as np
import pytest
import torch
from lhotse import CutSet, RecordingSet, SupervisionSet

from pyadml.data.cuts import is_span, keyword_counts, make_sets, make_span_cuts, span_candidates
from pyadml.data.sampler import KeywordBatchSampler
from pyadml.data.span_sampler import SpanRowsSampler, split_spans

from lhotse.supervision import AlignmentItem
from lhotse import Recording, SupervisionSegment


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

# A hand-written CTM: (token, start, duration).
CTM = [
    ("the", 0.10, 0.15),      # 0
    ("quick", 0.25, 0.30),    # 1
    ("brown", 0.55, 0.30),    # 2
    ("[noise]", 0.85, 0.20),  # 3 a non-word: breaks the run
    ("fox", 1.05, 0.30),      # 4
    ("a", 1.35, 0.05),        # 5 shorter than a word cut's minimum: stays inside spans
    ("lazy", 1.40, 0.35),     # 6
    ("dog", 1.75, 0.30),      # 7
    ("sat", 2.80, 0.30),      # 8 after a 0.75 s pause: a new run
    ("down", 3.10, 0.30),     # 9
]


@pytest.fixture
def manifests():
    recs = RecordingSet.from_recordings([recording("r1", 3.6)])
    return recs, SupervisionSet.from_segments([utterance("u1", "r1", CTM)])


def test_span_candidates_are_2_to_4_consecutive_words_broken_by_non_words_and_pauses(manifests):
    _, sups = manifests
    got = [(k, [w[2] for w in words]) for _, k, words in span_candidates(sups)]
    # Runs: the quick brown | fox a lazy dog | sat down
    assert got == [
        (0, ["the", "quick"]), (0, ["the", "quick", "brown"]), (1, ["quick", "brown"]),
        (4, ["fox", "a"]), (4, ["fox", "a", "lazy"]), (4, ["fox", "a", "lazy", "dog"]),
        (5, ["a", "lazy"]), (5, ["a", "lazy", "dog"]), (6, ["lazy", "dog"]),
        (8, ["sat", "down"]),
    ]
    assert all(2 <= len(w) <= 4 for _, w in got)
    assert not any("[noise]" in w for _, w in got)
    # A shorter maximum duration drops the long runs; a longer pause limit joins dog and sat.
    short = [" ".join(w[2] for w in ws) for _, _, ws in span_candidates(sups, max_duration=0.62)]
    assert short == ["the quick", "quick brown", "fox a", "a lazy", "sat down"]
    joined = [[w[2] for w in ws] for _, _, ws in span_candidates(sups, max_gap=1.0)]
    assert ["dog", "sat"] in joined and ["lazy", "dog", "sat", "down"] in joined  # 1.40-3.40 s
    capped = [[w[2] for w in ws] for _, _, ws in span_candidates(sups, max_gap=1.0, max_duration=1.9)]
    assert ["lazy", "dog", "sat"] in capped and ["lazy", "dog", "sat", "down"] not in capped


def test_span_cuts_have_the_ctm_boundaries_text_and_marks(manifests):
    cuts, stats = make_span_cuts(*manifests, count=100, pad=0.05)
    assert stats["candidates"] == stats["kept"] == len(cuts) == 10
    assert stats["by_words"] == {"2": 6, "3": 3, "4": 1}
    by_id = {c.id: c for c in cuts}
    c = by_id["u1_004_s4"]  # fox a lazy dog: 1.05 .. 2.05 s
    assert c.start == pytest.approx(1.00) and c.duration == pytest.approx(1.10)
    sup = c.supervisions[0]
    assert sup.start == pytest.approx(0.05) and sup.duration == pytest.approx(1.00)
    assert sup.text == "fox a lazy dog"
    assert sup.custom == {"utt": "u1", "word": "fox a lazy dog", "span": 4}
    assert is_span(c)
    first = by_id["u1_000_s2"]  # the quick: 0.10 .. 0.55
    assert first.start == pytest.approx(0.05) and first.end == pytest.approx(0.60)
    assert keyword_counts(cuts) == {}  # spans are no keywords


def test_span_count_is_seeded_and_capped(manifests):
    a, _ = make_span_cuts(*manifests, count=4, seed=1)
    b, _ = make_span_cuts(*manifests, count=4, seed=1)
    c, st = make_span_cuts(*manifests, count=4, seed=2)
    assert [x.id for x in a] == [x.id for x in b] and len(a) == 4
    assert st["kept"] == 4 and st["candidates"] == 10


def test_stage2_adds_spans_to_the_training_set_only_and_counts_them(tmp_path, manifests):
    recs, sups = manifests
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    recs.to_file(mdir / "corp_recordings_train.jsonl.gz")
    sups.to_file(mdir / "corp_supervisions_train.jsonl.gz")
    cfg = {"spans": {"share": 0.5}, "dev_fraction": 0.0}
    report = make_sets(mdir, tmp_path / "cuts", tmp_path / "lang", cfg, "corp_train", None, [])
    # 8 word cuts (not [noise], not "a": too short); round(0.5 * 8) = 4 spans
    assert report["sets"]["corp_train"]["spans"] == 4
    assert report["sets"]["corp_train"]["cuts"] == 8 + 4
    assert report["sets"]["corp_train"]["keywords"] == 8  # the word cuts' texts
    assert report["spans"]["corp_train"]["candidates"] == 10
    saved = json.loads((tmp_path / "cuts" / "report.json").read_text())
    assert saved["sets"]["corp_train"]["spans"] == 4
    keywords = (tmp_path / "lang" / "keywords.txt").read_text().split("\n")
    assert not any(" " in line.rsplit(" ", 1)[0] for line in keywords if line)
    with pytest.raises(ValueError, match="spans"):
        make_sets(mdir, tmp_path / "c2", tmp_path / "l2", {"spans": {"bogus": 1}}, "corp_train",
                  None, [])


def _span_sampler(rows, every, seed=3, rank=0, world=1, k=3):
    words = [f"w{k}" for k in range(6) for _ in range(4)]
    ids = [f"w{k}_{u}" for k in range(6) for u in range(4)]
    k = 2 if world > 1 else k
    inner = KeywordBatchSampler(words, ids, keywords_per_batch=k, utts_per_keyword=2, seed=seed,
                                rank=rank, world_size=world)
    return SpanRowsSampler(inner, [f"s{i}" for i in range(10)], rows=rows, every=every)


def test_span_rows_join_every_batch_once_per_pool_and_resume():
    s = _span_sampler(rows=4, every=0)
    s.set_epoch(0)
    batches = list(s)
    assert len(batches) == len(s.inner) == len(s) == 4
    for b in batches:
        assert len(b) == 3 * 2 + 4 and all(x.startswith("s") for x in b[6:])
    dealt = [x for b in batches for x in b[6:]]
    assert sorted(dealt[:10]) == [f"s{i}" for i in range(10)]  # every span once before repeats
    # Resume after two batches: the same remaining batches, spans included.
    r = _span_sampler(rows=4, every=0)
    r.load_state_dict({"epoch": 0, "batches_done": 2, "seed": 3})
    assert len(r) == 2
    assert list(r) == batches[2:]
    assert s.stats["span_rows"] == 4 and s.stats["spans"] == 10


def test_separate_span_batches_follow_every_e_keyword_batches_and_resume_anywhere():
    s = _span_sampler(rows=5, every=2)
    s.set_epoch(1)
    batches = list(s)
    # 4 keyword batches -> K K S K K S
    kinds = ["S" if b[0].startswith("s") else "K" for b in batches]
    assert kinds == ["K", "K", "S", "K", "K", "S"] and len(s) == 6
    assert all(len(b) == 5 for b in batches if b[0].startswith("s"))
    assert all(len(b) == 6 and all(x.startswith("w") for x in b) for b in batches if b[0].startswith("w"))
    assert sorted(batches[2] + batches[5]) == [f"s{i}" for i in range(10)]
    for n in range(7):
        r = _span_sampler(rows=5, every=2)
        r.load_state_dict({"epoch": 1, "batches_done": n, "seed": 3})
        assert len(r) == 6 - n
        got = list(r)
        assert got == batches[n:], n
        assert r.state_dict()["batches_done"] == 6
    # Two ranks share each global batch: together they get what one process gets.
    kw = dict(seed=3)
    one = list(_span_sampler(5, 1, k=2, **kw))
    a, b = list(_span_sampler(5, 1, rank=0, world=2, **kw)), list(_span_sampler(5, 1, rank=1, world=2, **kw))
    assert len(a) == len(b) == len(one)
    for x, y, z in zip(a, b, one):
        assert sorted(x + y) == sorted(z) and not set(x) & set(y)


def test_split_spans():
    class C:
        def __init__(self, span):
            from lhotse import SupervisionSegment
            self.supervisions = [SupervisionSegment("x", "r", 0, 1, text="a b",
                                                    custom={"span": 2} if span else {})]
    w, s = split_spans([C(False), C(True), C(False)])
    assert len(w) == 2 and len(s) == 1


def test_span_rows_have_no_keyword_id_and_add_nothing_to_the_keyword_loss(tiny_training_data):
    """A span row gets keyword id -1 even when its text equals a keyword, and L_key of a
    batch with it equals L_key of the batch without it."""
    from lhotse.utils import fastcopy

    from pyadml.data.dataset import KeywordDataset, read_keyword_ids
    from pyadml.text import Tokenizer
    from pyadml.train.config import load_config
    from pyadml.train.objective import KwsObjective

    root = tiny_training_data
    cuts = CutSet.from_file(root / "train.jsonl.gz").to_eager()
    # "cat" as a span: its text is a keyword, but it is marked as a span.
    base = cuts["cat0"]
    span = fastcopy(base, id="cat0_span", supervisions=[
        fastcopy(base.supervisions[0], id="cat0_span", custom={"span": 2})])
    cuts = CutSet.from_cuts(list(cuts) + [span])
    kw = read_keyword_ids(root / "lang" / "keywords.txt")
    ds = KeywordDataset(cuts, Tokenizer.from_lang_dir(root / "lang"), kw)
    ids = ["cat0", "cat1", "dog0", "dog1", "fish0", "fish1"]
    with_span = ds[ids + ["cat0_span"]]
    assert with_span["keyword_ids"].tolist() == [kw["cat"]] * 2 + [kw["dog"]] * 2 + [kw["fish"]] * 2 + [-1]

    cfg = load_config(None, ["loss.key=sphereface2", "model.audio.channels=16", "model.audio.embed_dim=32",
                       "model.audio.se_bottleneck=8", "model.audio.attention_bottleneck=16",
                       "model.text.embed_dim=16", "model.text.hidden=16", "model.text.layers=1",
                       "model.text.out_dim=32"])
    torch.manual_seed(0)
    obj = KwsObjective(cfg, len(ds.tokenizer.phone_table), len(kw)).eval()
    with torch.no_grad():
        a_phn, a_utt, _ = obj.audio(with_span["feats"], with_span["feat_lens"])
        masked = obj.keyword_loss(a_utt, with_span["keyword_ids"])
        alone = obj.key_loss(a_utt[:6].float(), with_span["keyword_ids"][:6])
        assert float(masked) == pytest.approx(float(alone), rel=1e-6)
        # Only spans: zero, still a tensor.
        none = obj.keyword_loss(a_utt[6:], with_span["keyword_ids"][6:])
        assert float(none) == 0.0
    # The whole objective runs on a batch with a span row (RP loss: the span is its own class).
    total, terms = obj(with_span)
    assert np.isfinite(float(total.detach())) and "l_key" in terms


def test_training_with_span_rows_and_context_runs_and_resumes_exactly(tiny_training_data, tmp_path):
    """Spans join the batches as extra rows; a copy with stage-3 context is cropped per batch;
    a resumed run gets the same batches, spans and crops."""
    from pathlib import Path

    from lhotse.utils import fastcopy

    from pyadml.train.checkpoints import latest_checkpoint
    from pyadml.train.config import load_config
    from pyadml.train.trainer import Trainer

    root = tiny_training_data
    cuts = list(CutSet.from_file(root / "train.jsonl.gz"))
    words = ["cat", "dog", "fish", "bird", "tree", "road", "lamp", "door"]
    extra = []
    for i, c in enumerate(cuts[:12]):
        sup = c.supervisions[0]
        text = f"{sup.text} {words[(i + 3) % 8]}"
        extra.append(fastcopy(c, id=f"{c.id}_span", supervisions=[
            fastcopy(sup, id=f"{c.id}_span", text=text, custom={"span": 2})]))
    # A word cut whose first and last 0.1 s are "context" (as stage 3 marks it).
    ctx = fastcopy(cuts[0], id="cat0_ctx", custom={"aug": {"context": {"pad": [0.1, 0.1]}}},
                   supervisions=[fastcopy(cuts[0].supervisions[0], id="cat0_ctx")])
    CutSet.from_cuts(cuts + extra + [ctx]).to_file(tmp_path / "train.jsonl.gz")
    tiny = Path(__file__).resolve().parents[2] / "egs" / "wsj_librikws" / "conf" / "train_tiny.yaml"

    def cfg(**kw):
        items = [f"data.train={tmp_path / 'train.jsonl.gz'}", f"data.dev={root / 'dev.jsonl.gz'}",
                 f"data.dev_trials={root / 'dev.tsv'}", f"data.lang={root / 'lang'}",
                 f"data.fbank_config={root / 'fbank.yaml'}", "batch.keywords=4", "epochs=2",
                 "log_interval=1", "batch.span_rows=3", "batch.span_every=2",
                 "loss.key=sphereface2"]
        return load_config(tiny, items + [f"{k}={v}" for k, v in kw.items()])

    t = Trainer(cfg(), tmp_path / "full")
    assert isinstance(t.sampler, SpanRowsSampler)
    assert "cat0_span" not in t.sampler.inner.item_ids and len(t.sampler.span_ids) == 12
    first = list(t.sampler)
    assert [len(b) for b in first[:3]] == [8, 8, 3] and all(x.endswith("_span") for x in first[2])
    t.sampler.load_state_dict({"epoch": 0, "batches_done": 0, "seed": t.sampler.seed})
    t.run()
    Trainer(cfg(epochs=1), tmp_path / "split").run()
    Trainer(cfg(), tmp_path / "split", resume=True).run()

    def weights(exp):
        return torch.load(latest_checkpoint(exp / "checkpoints"), map_location="cpu",
                          weights_only=False)["model"]

    full, split = weights(tmp_path / "full"), weights(tmp_path / "split")
    assert all(torch.equal(full[k], split[k]) for k in full)
    log = (tmp_path / "full" / "log" / "train.rank0.log").read_text()
    assert "12 multi-word span cuts; 3 span rows (a batch of them after every 2 keyword batches)" in log


def test_stage2_names_an_empty_dev_set_instead_of_writing_it(tmp_path, manifests):
    """A small corpus whose hash draw holds out no utterance: stage 4 used to stop on a features
    file that 'holds no cuts', naming no option."""
    recs, sups = manifests
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    recs.to_file(mdir / "corp_recordings_train.jsonl.gz")
    sups.to_file(mdir / "corp_supervisions_train.jsonl.gz")
    with pytest.raises(ValueError, match=r"dev set corp_dev is empty: dev_fraction 1e-09 of "
                                         r"corp_train's 1 utterance\(s\) held none out.*"
                                         r"word_cuts.dev_fraction in conf/data.yaml"):
        make_sets(mdir, tmp_path / "cuts", tmp_path / "lang", {"dev_fraction": 1e-9},
                  "corp_train", "corp_dev", [])
    assert not (tmp_path / "cuts").exists()
