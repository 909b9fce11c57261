import collections

import pytest

from pyadml.data.sampler import KeywordBatchSampler

K, M = 4, 2


def make_items(counts):
    """Keyword ``kwN`` with counts[N] items named ``kwN/i``."""
    keywords, ids = [], []
    for n, c in enumerate(counts):
        for i in range(c):
            keywords.append(f"kw{n}")
            ids.append(f"kw{n}/{i}")
    return keywords, ids


def kw_of(item):
    return item.split("/")[0]


# Uneven counts: keywords with 1, odd and many items, so skip/replace/deferral all happen.
COUNTS = [1, 3, 5, 2, 8, 4, 7, 2, 6, 3, 1, 9, 2, 2, 5, 4, 30]


def sampler(**kw):
    keywords, ids = make_items(kw.pop("counts", COUNTS))
    args = dict(keywords_per_batch=K, utts_per_keyword=M, seed=7)
    args.update(kw)
    return KeywordBatchSampler(keywords, ids, **args)


def check_structure(batch, k=K, m=M):
    assert len(batch) == k * m
    groups = [batch[i:i + m] for i in range(0, len(batch), m)]
    kws = [kw_of(g[0]) for g in groups]
    assert len(set(kws)) == k
    for g, kw in zip(groups, kws):
        assert all(kw_of(x) == kw for x in g)


@pytest.mark.parametrize("few", ["skip", "replace"])
def test_batches_are_k_distinct_keywords_of_m_contiguous_items(few):
    s = sampler(few=few)
    batches = list(s)
    assert batches
    for b in batches:
        check_structure(b)


def test_skip_uses_every_item_at_most_once_and_counts_what_it_left_out():
    s = sampler(few="skip")
    items = [x for b in s for x in b]
    assert len(items) == len(set(items))
    rem = [c % M for c in COUNTS]
    assert s.num_groups_skipped == sum(1 for r in rem if r)
    assert s.num_items_skipped == sum(rem)
    full_groups = sum(c // M for c in COUNTS)
    assert len(items) // M + s.num_groups_dropped == full_groups
    assert s.stats["groups_dropped"] == s.num_groups_dropped


def test_replace_covers_keywords_with_fewer_than_m_items():
    counts = [1] * 6 + [3] * 4
    seen = collections.Counter()
    for epoch in range(5):
        s = sampler(counts=counts, few="replace", keywords_per_batch=5)
        s.set_epoch(epoch)
        for b in s:
            check_structure(b, k=5)
            seen.update(kw_of(x) for x in b)
    assert set(seen) == {f"kw{n}" for n in range(len(counts))}
    s = sampler(counts=[1] * 4, few="replace")
    (b,) = list(s)
    # A single-item keyword's group is M copies of that item.
    assert all(b[i] == b[i + 1] for i in range(0, len(b), M))
    assert s.num_items_replaced == 4 * (M - 1)


def test_replace_fills_from_other_items_when_the_keyword_has_enough():
    s = sampler(counts=[3] * 8, few="replace", keywords_per_batch=8)
    for b in s:
        for i in range(0, len(b), M):
            assert b[i] != b[i + 1]


@pytest.mark.parametrize("few", ["skip", "replace"])
def test_two_ranks_split_every_global_batch(few):
    # keywords_per_batch x M is the global batch: the ranks' shares of step i make up the
    # single process's batch i, so steps and data do not depend on the number of processes.
    counts = [3] * 30 + [7] * 10
    r0 = sampler(counts=counts, few=few, world_size=2, rank=0)
    r1 = sampler(counts=counts, few=few, world_size=2, rank=1)
    single = sampler(counts=counts, few=few)
    for epoch in (0, 3):
        for s in (r0, r1, single):
            s.set_epoch(epoch)
        b0, b1, full = list(r0), list(r1), list(single)
        assert len(b0) == len(b1) == len(full) == len(r0) > 0
        for x, y, whole in zip(b0, b1, full):
            assert x + y == whole and len(x) == len(y) == len(whole) // 2
            assert not {kw_of(i) for i in x} & {kw_of(i) for i in y}  # whole keyword groups


def test_the_global_keyword_count_must_split_evenly():
    with pytest.raises(ValueError, match="multiple"):
        sampler(keywords_per_batch=5, world_size=2, rank=0)


def test_len_equals_batches_yielded():
    for ws in (1, 2, 4):  # K = 4 keywords split evenly
        for rank in range(ws):
            s = sampler(counts=[4] * 40, world_size=ws, rank=rank)
            for epoch in range(3):
                s.set_epoch(epoch)
                assert len(s) == len(list(s))


def test_order_depends_on_epoch_and_seed_only():
    a, b = sampler(), sampler()
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) == list(a)
    b.set_epoch(2)
    assert list(a) != list(b)
    assert list(sampler(seed=1)) != list(sampler(seed=2))


def test_no_shuffle_is_deterministic_across_epochs():
    s = sampler(shuffle=False)
    first = list(s)
    s.set_epoch(5)
    assert list(s) == first


def test_resume_mid_epoch_yields_exactly_the_remaining_batches():
    ref = sampler(counts=[6] * 40)
    ref.set_epoch(2)
    full = list(ref)
    ref.set_epoch(3)
    next_epoch = list(ref)
    assert len(full) > 4

    s = sampler(counts=[6] * 40)
    s.set_epoch(2)
    it = iter(s)
    consumed = [next(it) for _ in range(3)]
    assert consumed == full[:3]
    sd = s.state_dict()
    assert sd == {"epoch": 2, "batches_done": 3, "seed": 7}

    r = sampler(counts=[6] * 40, seed=0)  # the seed comes from the state dict
    r.load_state_dict(sd)
    r.set_epoch(2)  # re-setting the resumed epoch keeps the resume point
    assert len(r) == len(full) - 3
    assert list(r) == full[3:]
    r.set_epoch(3)
    assert len(r) == len(next_epoch)
    assert list(r) == next_epoch


def test_greedy_packing_defers_repeated_keywords():
    # One keyword owns most groups: it can appear once per batch, the rest is dropped.
    s = sampler(counts=[2] * 12 + [40])
    batches = list(s)
    for b in batches:
        check_structure(b)
    n_big = sum(1 for b in batches for x in b[::M] if kw_of(x) == "kw12")
    assert n_big == len(batches)
    assert s.num_groups_dropped == 12 + 20 - len(batches) * K


def test_too_few_keywords_raises():
    with pytest.raises(ValueError, match=r"only 3 keywords .*needs 4 distinct"):
        sampler(counts=[2, 2, 2, 1, 1])
    # In "replace" mode the single-item keywords count.
    assert list(sampler(counts=[2, 2, 2, 1, 1], few="replace"))


def test_from_cuts_reads_keyword_and_id():
    class Sup:
        def __init__(self, text):
            self.text = text

    class Cut:
        def __init__(self, id, text):
            self.id, self.supervisions = id, [Sup(text)]

    keywords, ids = make_items([2] * 5)
    s = KeywordBatchSampler.from_cuts(
        [Cut(i, k) for k, i in zip(keywords, ids)], keywords_per_batch=K, utts_per_keyword=M
    )
    for b in s:
        check_structure(b)


# Phonetic neighbourhoods (batch.neighbours): clusters of three keywords, each keyword's
# neighbours the other two of its cluster.
CLUSTERS = [[f"kw{3 * c + i}" for i in range(3)] for c in range(6)]
NEAR = {k: [n for n in cl if n != k] for cl in CLUSTERS for k in cl}


def test_bundles_fill_each_batch_with_one_neighbourhood():
    # Equal counts keep a cluster's keywords in step, so every run of three is a whole cluster
    # and, with K = 3 and M = 1, every batch is one.
    s = sampler(counts=[4] * 18, keywords_per_batch=3, utts_per_keyword=1, neighbours=NEAR,
                bundle=3)
    batches = list(s)
    assert len(batches) == 4 * 6
    for b in batches:
        kws = {kw_of(i) for i in b}
        assert any(kws == set(cl) for cl in CLUSTERS), kws


def test_bundles_change_the_order_only():
    plain = sampler(counts=[4] * 18, keywords_per_batch=3, utts_per_keyword=1)
    near = sampler(counts=[4] * 18, keywords_per_batch=3, utts_per_keyword=1, neighbours=NEAR,
                   bundle=3)
    a, b = [i for x in plain for i in x], [i for x in near for i in x]
    assert sorted(a) == sorted(b) and a != b
    # Without bundles a random batch of three is one cluster far less often.
    assert sum(any({kw_of(i) for i in x} == set(cl) for cl in CLUSTERS) for x in plain) < 6
    # Deterministic in (seed, epoch), like the plain order.
    again = sampler(counts=[4] * 18, keywords_per_batch=3, utts_per_keyword=1, neighbours=NEAR,
                    bundle=3)
    assert list(again) == list(near)


def test_bundles_with_uneven_counts_keep_the_structure():
    keywords = [f"kw{n}" for n in range(len(COUNTS))]
    near = {k: [keywords[(n + d) % len(keywords)] for d in (1, 2, 3)] for n, k in enumerate(keywords)}

    def near_pairs(s):
        n = 0
        for b in s:
            check_structure(b)
            kws = {kw_of(i) for i in b}
            n += sum(m in kws for k in kws for m in near[k])
        return n

    assert near_pairs(sampler(few="replace", neighbours=near, bundle=3)) > near_pairs(
        sampler(few="replace"))


@pytest.mark.parametrize("kw, msg", [({"bundle": 0}, "bundle: expected an integer >= 1"),
                                     ({"bundle": 2}, "needs the keywords' neighbours"),
                                     ({"bundle": 5, "neighbours": NEAR}, "more than the 4 keywords")])
def test_bad_bundles_raise(kw, msg):
    with pytest.raises(ValueError, match=msg):
        sampler(**kw)


def test_keyword_neighbours_are_nearest_in_phone_edit_distance():
    from types import SimpleNamespace

    from pyadml.data.sampler import keyword_neighbours

    phones = {"cat": [1, 2, 3], "bat": [4, 2, 3], "cab": [1, 2, 5], "dog": [6, 7, 8],
              "cart": [1, 2, 9, 3]}
    cuts = [SimpleNamespace(supervisions=[SimpleNamespace(text=w)]) for w in phones for _ in range(2)]
    out = keyword_neighbours(cuts, phones.__getitem__, 3, 2)
    assert out["bundle"] == 3
    # cat: bat, cab and cart one edit away. bat: cat one, cab and cart two. dog: three from
    # cat, bat and cab, four from cart.
    assert set(out["neighbours"]["cat"]) < {"bat", "cab", "cart"}
    assert out["neighbours"]["bat"][0] == "cat" and out["neighbours"]["bat"][1] in {"cab", "cart"}
    assert set(out["neighbours"]["dog"]) < {"cat", "bat", "cab"}
    assert keyword_neighbours(cuts, phones.__getitem__, 0, 8) == {}
    with pytest.raises(ValueError, match="batch.neighbour_pool: expected an integer >= 1"):
        keyword_neighbours(cuts, phones.__getitem__, 3, 0)
