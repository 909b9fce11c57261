"""RP loss (paper section 3.2) against loop references written from the formulas."""

import itertools

import pytest
import torch

from pyadml.losses import RelationalProxyLoss, asyp_loss

K, M, D = 4, 3, 8
ASYP = (0.01, 1.5, 0.01)


# ---- slow references: python loops, one element at a time --------------------------------

def ref_dist(u, v):
    diff = u - v
    if bool((diff == 0).all()):
        return torch.zeros((), dtype=u.dtype)  # same keyword's proxy: distance 0
    return torch.sqrt((diff * diff).sum())


def ref_unit(v):
    if bool((v == 0).all()):
        return torch.zeros_like(v)  # undefined direction -> zero vector
    return v / torch.sqrt((v * v).sum())


def ref_huber(x, y):
    r = torch.abs(x - y)
    return 0.5 * r * r if r <= 1.0 else r - 0.5


def ref_distance_term(a, t):
    n = len(a)
    pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
    da = {p: ref_dist(a[p[0]], a[p[1]]) for p in pairs}
    dt = {p: ref_dist(t[p[0]], t[p[1]]) for p in pairs}
    nz_a = [v for v in da.values() if v != 0]
    nz_t = [v for v in dt.values() if v != 0]
    mu_a = sum(nz_a) / len(nz_a)
    mu_t = sum(nz_t) / len(nz_t)
    return sum(ref_huber(da[p] / mu_a, dt[p] / mu_t) for p in pairs) / len(pairs)


def ref_angle(u, i, j, k):
    return ref_unit(u[i] - u[j]) @ ref_unit(u[k] - u[j])  # angle at u_j


def ref_angle_term(a, t):
    n = len(a)
    triplets = [(i, j, k) for i, j, k in itertools.product(range(n), repeat=3) if len({i, j, k}) == 3]
    return sum(ref_huber(ref_angle(a, *tr), ref_angle(t, *tr)) for tr in triplets) / len(triplets)


def ref_terms(audio, text_rows, labels, detach_text=True, normalize=False, idx=None, pidx=None,
              proto_angle_weight=1.0):
    """Every term of the RP loss; idx / pidx: the angle subsets of samples / classes, if any."""
    classes = sorted(set(labels.tolist()))
    proxies = []
    for c in classes:
        rows = [text_rows[i] for i in range(len(labels)) if int(labels[i]) == c]
        proxies.append(sum(rows) / len(rows))
    asyp_text = torch.stack([proxies[classes.index(int(y))] for y in labels])
    asyp = asyp_loss(asyp_text, audio, labels, *ASYP)  # checked on its own in test_asyp.py

    if detach_text:
        proxies = [p.detach() for p in proxies]
    a = [audio[i] for i in range(len(labels))]
    if normalize:
        a = [v / torch.sqrt((v * v).sum()) for v in a]
        proxies = [p / torch.sqrt((p * p).sum()) for p in proxies]
    t = [proxies[classes.index(int(y))] for y in labels]  # T_{y_i}
    protos = []
    for c in classes:
        rows = [a[i] for i in range(len(labels)) if int(labels[i]) == c]
        protos.append(sum(rows) / len(rows))

    sub = range(len(a)) if idx is None else idx.tolist()
    psub = range(len(classes)) if pidx is None else pidx.tolist()
    return {
        "asyp_utt": asyp,
        "rpl_d": ref_distance_term(a, t),
        "rpl_a": ref_angle_term([a[i] for i in sub], [t[i] for i in sub]),
        "rpl_p": ref_distance_term(protos, proxies)
        + proto_angle_weight * ref_angle_term([protos[i] for i in psub], [proxies[i] for i in psub]),
    }


# ---- helpers --------------------------------------------------------------------------------

def batch(k=K, m=M, d=D, seed=0):
    """K keywords x M utterances; every row of a keyword carries that keyword's text embedding."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(k).repeat_interleave(m)
    audio = torch.randn(k * m, d, generator=g, dtype=torch.float64, requires_grad=True)
    text_k = torch.randn(k, d, generator=g, dtype=torch.float64, requires_grad=True)
    return audio, text_k, labels


ONLY = {
    "rpl_d": dict(w_d=1.0, w_a=0.0, w_p=0.0),
    "rpl_a": dict(w_d=0.0, w_a=1.0, w_p=0.0),
    "rpl_p": dict(w_d=0.0, w_a=0.0, w_p=1.0),
}


def fast_term(name, audio, text_utt, labels, **options):
    """One relational term as a tensor: the total with only its weight on, minus AsyP_utt."""
    loss = RelationalProxyLoss(**ONLY[name], **options)
    total, _ = loss(audio, text_utt, labels)
    classes, inv = torch.unique(labels, return_inverse=True)
    proxies = torch.stack([text_utt[inv == c].mean(0) for c in range(len(classes))])
    return total - asyp_loss(proxies[inv], audio, inv, *ASYP)


def assert_close_with_grads(fast, slow, inputs):
    torch.testing.assert_close(fast, slow, rtol=1e-6, atol=1e-10)
    g_fast = torch.autograd.grad(fast, inputs, allow_unused=True, retain_graph=True)
    g_slow = torch.autograd.grad(slow, inputs, allow_unused=True, retain_graph=True)
    for a, b in zip(g_fast, g_slow):
        a = torch.zeros_like(inputs[0]) if a is None else a
        b = torch.zeros_like(a) if b is None else b
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-10)


# ---- tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rpl_d", "rpl_a", "rpl_p"])
def test_term_and_audio_gradient_match_reference(name):
    audio, text_k, labels = batch()
    text_utt = text_k[labels]
    fast = fast_term(name, audio, text_utt, labels)
    slow = ref_terms(audio, text_utt, labels)[name]
    assert_close_with_grads(fast, slow, (audio,))


@pytest.mark.parametrize("name", ["rpl_d", "rpl_a", "rpl_p"])
def test_text_gradient_matches_reference_without_detach(name):
    audio, text_k, labels = batch(seed=1)
    text_utt = text_k[labels]
    fast = fast_term(name, audio, text_utt, labels, detach_text=False)
    slow = ref_terms(audio, text_utt, labels, detach_text=False)[name]
    assert_close_with_grads(fast, slow, (audio, text_k))
    assert torch.autograd.grad(fast, text_k)[0].abs().max() > 0


@pytest.mark.parametrize("name", ["rpl_d", "rpl_a", "rpl_p"])
def test_detach_text_gives_no_text_gradient(name):
    audio, text_k, labels = batch(seed=2)
    fast = fast_term(name, audio, text_k[labels], labels)  # detach_text=True by default
    (g,) = torch.autograd.grad(fast, text_k, allow_unused=True)
    assert g is None or torch.count_nonzero(g) == 0


def test_detached_total_trains_text_only_through_asyp():
    audio, text_k, labels = batch(seed=3)
    total, _ = RelationalProxyLoss()(audio, text_k[labels], labels)
    asyp = asyp_loss(text_k[labels], audio, labels, *ASYP)
    torch.testing.assert_close(torch.autograd.grad(total, text_k)[0],
                               torch.autograd.grad(asyp, text_k)[0], rtol=1e-9, atol=1e-12)


def test_total_is_weighted_sum_and_matches_reference():
    audio, text_k, labels = batch(seed=4)
    text_utt = text_k[labels]
    loss = RelationalProxyLoss(w_d=0.7, w_a=1.9, w_p=1.3)
    total, terms = loss(audio, text_utt, labels)
    assert set(terms) == {"asyp_utt", "rpl_d", "rpl_a", "rpl_p"}
    assert all(isinstance(v, float) for v in terms.values())
    weighted = terms["asyp_utt"] + 0.7 * terms["rpl_d"] + 1.9 * terms["rpl_a"] + 1.3 * terms["rpl_p"]
    assert total.item() == pytest.approx(weighted, rel=1e-12)
    ref = ref_terms(audio, text_utt, labels)
    for name, value in terms.items():
        assert value == pytest.approx(ref[name].item(), rel=1e-6)
    slow = ref["asyp_utt"] + 0.7 * ref["rpl_d"] + 1.9 * ref["rpl_a"] + 1.3 * ref["rpl_p"]
    assert_close_with_grads(total, slow, (audio,))


def test_default_weights_are_1_2_1():
    audio, text_k, labels = batch(seed=5)
    total, t = RelationalProxyLoss()(audio, text_k[labels], labels)
    assert total.item() == pytest.approx(t["asyp_utt"] + t["rpl_d"] + 2 * t["rpl_a"] + t["rpl_p"], rel=1e-12)


def test_normalized_embeddings_option():
    audio, text_k, labels = batch(seed=6)
    text_utt = text_k[labels]
    loss = RelationalProxyLoss(normalize_embeddings=True, detach_text=False)
    total, terms = loss(audio, text_utt, labels)
    ref = ref_terms(audio, text_utt, labels, detach_text=False, normalize=True)
    for name, value in terms.items():
        assert value == pytest.approx(ref[name].item(), rel=1e-6)
    slow = ref["asyp_utt"] + ref["rpl_d"] + 2 * ref["rpl_a"] + ref["rpl_p"]
    assert_close_with_grads(total, slow, (audio, text_k))


def test_proxy_is_class_mean_of_text_rows_and_labels_need_not_be_sorted():
    # Rows of one keyword may differ (text-encoder dropout); unequal class sizes.
    g = torch.Generator().manual_seed(7)
    labels = torch.tensor([5, 2, 5, 9, 2, 5, 9, 11, 11])
    audio = torch.randn(9, 6, generator=g, dtype=torch.float64, requires_grad=True)
    text_utt = torch.randn(9, 6, generator=g, dtype=torch.float64, requires_grad=True)
    loss = RelationalProxyLoss(detach_text=False, proto_angle_weight=0.5)
    total, terms = loss(audio, text_utt, labels)
    ref = ref_terms(audio, text_utt, labels, detach_text=False, proto_angle_weight=0.5)
    for name, value in terms.items():
        assert value == pytest.approx(ref[name].item(), rel=1e-6)
    slow = ref["asyp_utt"] + ref["rpl_d"] + 2 * ref["rpl_a"] + ref["rpl_p"]
    assert_close_with_grads(total, slow, (audio, text_utt))


def test_no_subsampling_up_to_the_cap_and_no_rng_used():
    audio, text_k, labels = batch(seed=8)
    state = torch.get_rng_state()
    gen = torch.Generator().manual_seed(0)
    gen_state = gen.get_state()
    _, a = RelationalProxyLoss(max_angle_samples=12)(audio, text_k[labels], labels, generator=gen)
    _, b = RelationalProxyLoss(max_angle_samples=None)(audio, text_k[labels], labels)
    assert a == b
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(gen.get_state(), gen_state)


@pytest.mark.parametrize("cap", [5, 3])
def test_angle_subsampling_above_the_cap(cap):
    audio, text_k, labels = batch(seed=9)
    text_utt = text_k[labels]
    loss = RelationalProxyLoss(max_angle_samples=cap)
    _, terms = loss(audio, text_utt, labels, generator=torch.Generator().manual_seed(123))
    # Same draws as documented: samples first, then classes (only when K = 4 > cap).
    g = torch.Generator().manual_seed(123)
    idx = torch.randperm(K * M, generator=g)[:cap]
    pidx = torch.randperm(K, generator=g)[:cap] if K > cap else None
    ref = ref_terms(audio, text_utt, labels, idx=idx, pidx=pidx)
    assert terms["rpl_a"] == pytest.approx(ref["rpl_a"].item(), rel=1e-6)
    assert terms["rpl_p"] == pytest.approx(ref["rpl_p"].item(), rel=1e-6)
    full = ref_terms(audio, text_utt, labels)
    assert terms["rpl_a"] != pytest.approx(full["rpl_a"].item(), rel=1e-6)
    # Seeded through the global RNG when no generator is passed.
    torch.manual_seed(42)
    _, first = loss(audio, text_utt, labels)
    torch.manual_seed(42)
    _, again = loss(audio, text_utt, labels)
    assert first == again


def test_degenerate_batches_are_finite():
    g = torch.Generator().manual_seed(10)
    # One keyword: all text distances are 0 and there is no negative for AsyP.
    audio = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    text = torch.randn(1, 5, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.zeros(4, dtype=torch.long)
    total, terms = RelationalProxyLoss(detach_text=False)(audio, text[labels], labels)
    grads = torch.autograd.grad(total, (audio, text))
    assert all(torch.isfinite(gr).all() for gr in grads)
    assert terms["rpl_p"] == 0.0
    # Two identical audio rows: zero distance and an undefined direction on the audio side too.
    audio2 = torch.randn(6, 5, generator=g, dtype=torch.float64)
    audio2[1] = audio2[0]
    audio2.requires_grad_()
    labels2 = torch.tensor([0, 0, 1, 1, 2, 2])
    text2 = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    total, _ = RelationalProxyLoss(detach_text=False)(audio2, text2[labels2], labels2)
    grads = torch.autograd.grad(total, (audio2, text2))
    assert all(torch.isfinite(gr).all() for gr in grads)


def test_float32_paper_sized_batch_is_finite():
    # 250 keywords x 2 (the paper's batch): angles and prototype angles both subsampled to 128.
    g = torch.Generator().manual_seed(11)
    labels = torch.arange(250).repeat_interleave(2)
    audio = torch.randn(500, 64, generator=g, requires_grad=True)
    text = torch.randn(250, 64, generator=g)
    total, terms = RelationalProxyLoss()(audio, text[labels], labels, generator=g)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(audio.grad).all()


def test_bad_arguments():
    audio, text_k, labels = batch()
    with pytest.raises(ValueError):
        RelationalProxyLoss(max_angle_samples=2)
    with pytest.raises(ValueError):
        RelationalProxyLoss()(audio, text_k, labels)
