"""Phoneme-level losses (Eq. 2, Table 1) and L_MM against slow loop references from the formulas."""

import math

import pytest
import torch

from pyadml.losses.asyp import AsymmetricProxyLoss
from pyadml.losses.mm import MonotonicMatchingLoss, gaussian_penalty, monotonic_target
from pyadml.losses.phoneme import (
    PHONEME_LOSSES, AdaMS, ClatLoss, ProxyBinomialDevianceLoss, ProxyMultiSimilarityLoss,
    build_phoneme_loss,
)
from pyadml.models import lengths_to_mask

C = 5  # phoneme classes


# ---------------------------------------------------------------- references (python loops)

def cos(u, v):
    return (u @ v) / (torch.sqrt(u @ u) * torch.sqrt(v @ v))


def softplus(x):
    return torch.log(1 + torch.exp(x))


def else_fn(xs, s):
    """(1/s) log(1 + sum exp(s x))."""
    return torch.log(1 + sum((torch.exp(s * x) for x in xs), torch.zeros((), dtype=torch.float64))) / s


def msp_fn(xs, s):
    """mean softplus(s x), 0 for an empty set."""
    return sum(softplus(s * x) for x in xs) / len(xs) if xs else 0.0


def reference_pair_loss(text, audio, labels, alpha, beta, lam, pos_fn, neg_fn):
    """Positive term: text anchor i vs audio j in P_i; negative term: audio anchor i vs text k in N_i."""
    n = text.shape[0]
    total = 0.0
    for i in range(n):
        c = int(labels[i])
        a, b, m = alpha[c], beta[c], lam[c]
        pos = [m - cos(text[i], audio[j]) for j in range(n) if int(labels[j]) == c]
        neg = [cos(audio[i], text[k]) - m for k in range(n) if int(labels[k]) != c]
        total = total + pos_fn(pos, a) + neg_fn(neg, b)
    return total / n


def reference_clat(text, audio, labels, tau, symmetric=False):
    def one_way(anchor, other):
        n = anchor.shape[0]
        total = 0.0
        for i in range(n):
            z = sum(torch.exp(cos(anchor[i], other[k]) / tau) for k in range(n))
            pos = [p for p in range(n) if int(labels[p]) == int(labels[i])]
            terms = [torch.log(torch.exp(cos(anchor[i], other[p]) / tau) / z) for p in pos]
            total = total - sum(terms) / len(pos)
        return total / n
    loss = one_way(audio, text)
    return 0.5 * (loss + one_way(text, audio)) if symmetric else loss


def reference_target(L, T):
    """G for one utterance from the definition, with the documented fallback for L > T."""
    g = [[0.0] * T for _ in range(L)]
    for i in range(L):
        frames = [j for j in range(T) if (j * L) // T == i] or [(i * T) // L]
        for j in frames:
            g[i][j] = 1.0 / len(frames)
    return g


def reference_mm(attn, text_lens, audio_lens, target, sigma=0.2, eps=1e-8):
    total, rows = 0.0, 0
    for b, (L, T) in enumerate(zip(text_lens.tolist(), audio_lens.tolist())):
        g = reference_target(L, T)
        for i in range(L):
            rows += 1
            for j in range(T):
                if target == "diagonal":
                    if g[i][j]:
                        total = total - g[i][j] * torch.log(attn[b, i, j] + eps)
                else:
                    w = 1 - math.exp(-(i / L - j / T) ** 2 / (2 * sigma**2))
                    total = total + attn[b, i, j] * w
    return total / rows


# ---------------------------------------------------------------- helpers

def rows(n=10, d=6, seed=0):
    """Small N* batch with repeated, unsorted classes (class 4 absent, class 3 a singleton)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([2, 0, 2, 1, 0, 2, 1, 3, 0, 1][:n])
    text = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    audio = torch.randn(n, d, generator=g, dtype=torch.float64, requires_grad=True)
    return text, audio, labels


def randomise_scales(loss, seed=1):
    g = torch.Generator().manual_seed(seed)
    loss.set_scales(alpha=0.3 + 2 * torch.rand(C, generator=g, dtype=torch.float64),
                    beta=0.5 + 3 * torch.rand(C, generator=g, dtype=torch.float64),
                    lam=torch.rand(C, generator=g, dtype=torch.float64) - 0.5)


def assert_same(fast, slow, inputs):
    torch.testing.assert_close(fast, slow, rtol=1e-9, atol=1e-12)
    # retain_graph: fast and slow may share the graph that built their inputs.
    grads_fast = torch.autograd.grad(fast, inputs, retain_graph=True)
    for a, b in zip(grads_fast, torch.autograd.grad(slow, inputs)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- L_phn

CASES = {
    "asyp": (AdaMS, else_fn, msp_fn),
    "proxy_bd": (ProxyBinomialDevianceLoss, msp_fn, msp_fn),
    "proxy_ms": (ProxyMultiSimilarityLoss, else_fn, else_fn),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_scale_losses_match_reference_with_per_class_gradients(name):
    cls, pos_fn, neg_fn = CASES[name]
    loss = cls(C, learnable=True, alpha_max=5.0).double()
    randomise_scales(loss)
    text, audio, labels = rows()
    fast = loss(text, audio, labels)
    slow = reference_pair_loss(text, audio, labels, loss.alpha, loss.beta, loss.lam, pos_fn, neg_fn)
    assert_same(fast, slow, (text, audio, *loss.no_weight_decay_parameters()))


@pytest.mark.parametrize("name", sorted(CASES))
def test_paper_init_values_match_reference(name):
    cls, pos_fn, neg_fn = CASES[name]
    loss = cls(C, alpha0=0.01, beta0=1.5, lam0=0.01, learnable=False).double()
    text, audio, labels = rows(seed=3)
    fast = loss(text, audio, labels)
    slow = reference_pair_loss(text, audio, labels, loss.alpha, loss.beta, loss.lam, pos_fn, neg_fn)
    assert_same(fast, slow, (text, audio))


def test_single_class_batch_has_no_negative_term():
    text, audio, _ = rows(n=4)
    labels = torch.full((4,), 2)
    for name, (cls, pos_fn, neg_fn) in CASES.items():
        loss = cls(C, learnable=False).double()
        slow = reference_pair_loss(text, audio, labels, loss.alpha, loss.beta, loss.lam, pos_fn, neg_fn)
        assert_same(loss(text, audio, labels), slow, (text, audio))


def test_plain_asyp_equals_the_utterance_level_module():
    text, audio, labels = rows()
    frozen = AdaMS(C, learnable=False).double()
    torch.testing.assert_close(frozen(text, audio, labels),
                               AsymmetricProxyLoss(0.01, 1.5, 0.01)(text, audio, labels))


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("tau", [0.1, 0.7])
def test_clat_matches_reference(tau, symmetric):
    text, audio, labels = rows(seed=4)
    fast = ClatLoss(temperature=tau, symmetric=symmetric)(text, audio, labels)
    assert_same(fast, reference_clat(text, audio, labels, tau, symmetric), (text, audio))


def test_losses_run_in_float32():
    text, audio, labels = rows()
    text, audio = text.detach().float().requires_grad_(), audio.detach().float().requires_grad_()
    for name in PHONEME_LOSSES[:-1]:
        loss = build_phoneme_loss(name, C)
        value = loss(text, audio, labels)
        grads = torch.autograd.grad(value, (text, audio))
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert all(torch.isfinite(g).all() for g in grads)


# ---------------------------------------------------------------- AdaMS

def test_adams_parameters_learn_and_stay_in_bounds():
    loss = AdaMS(C)  # paper init 0.01, 1.5, 0.01
    raw = (loss.alpha_raw, loss.beta_raw, loss.lam_raw)
    no_decay = loss.no_weight_decay_parameters()
    assert len(no_decay) == 3 and all(p is q for p, q in zip(no_decay, raw))
    assert {id(p) for p in loss.parameters()} == {id(p) for p in loss.no_weight_decay_parameters()}
    assert torch.allclose(loss.alpha, torch.full((C,), 0.01)) and torch.allclose(loss.lam, torch.full((C,), 0.01))
    text, audio, labels = rows()
    text, audio = text.detach().float(), audio.detach().float()
    before = [p.detach().clone() for p in (loss.alpha, loss.beta, loss.lam)]
    opt = torch.optim.SGD(loss.parameters(), lr=1e4)  # large on purpose: the old clamp's case
    opt.zero_grad()
    loss(text, audio, labels).backward()
    opt.step()
    seen = torch.zeros(C, dtype=torch.bool)
    seen[labels] = True
    for old, new in zip(before, (loss.alpha, loss.beta, loss.lam)):
        assert (new[seen] != old[seen]).all()  # every class present in the batch moved
        assert torch.equal(new[~seen], old[~seen])  # an absent class gets no gradient
    tol = 1 + 1e-6  # float32 rounding of exp(log(bound))
    assert (loss.alpha * tol >= 1e-3).all() and (loss.alpha <= 1.0 * tol).all()
    assert (loss.beta * tol >= 0.1).all() and (loss.beta <= 50.0 * tol).all()
    assert (loss.lam >= -1).all() and (loss.lam <= 1).all()
    assert torch.isfinite(loss(text, audio, labels))


def test_adams_rejects_initial_values_outside_the_bounds():
    with pytest.raises(ValueError, match="alpha_max"):
        AdaMS(C, alpha0=2.0, alpha_max=1.0)
    with pytest.raises(ValueError, match="lam_bound"):
        AdaMS(C, lam0=1.0)


def test_adams_stats():
    loss = AdaMS(C, alpha0=0.01, beta0=1.5, lam0=0.01)
    loss.set_scales(lam=torch.tensor([-0.5, 0.0, 0.5, 0.9, 0.1]))
    stats = loss.stats()
    assert set(stats) == {f"{n}_{s}" for n in ("alpha", "beta", "lam") for s in ("mean", "min", "max")}
    assert stats["alpha_mean"] == pytest.approx(0.01) and stats["beta_max"] == pytest.approx(1.5)
    assert (stats["lam_min"], stats["lam_mean"], stats["lam_max"]) == pytest.approx((-0.5, 0.2, 0.9))
    assert all(isinstance(v, float) for v in stats.values())


def test_frozen_adams_has_no_parameters_and_no_gradient():
    frozen = AdaMS(C, learnable=False)
    assert list(frozen.parameters()) == [] and frozen.no_weight_decay_parameters() == []
    assert not frozen.alpha.requires_grad and not frozen.beta.requires_grad and not frozen.lam.requires_grad
    assert set(frozen.state_dict()) == {"alpha_fixed", "beta_fixed", "lam_fixed"}
    assert set(AdaMS(C).state_dict()) == {"alpha_raw", "beta_raw", "lam_raw"}
    text, audio, labels = rows()
    text, audio = text.detach().float().requires_grad_(), audio.detach().float().requires_grad_()
    frozen(text, audio, labels).backward()
    assert frozen.alpha.grad is None and text.grad is not None
    assert torch.equal(frozen.alpha, torch.full((C,), 0.01))


# ---------------------------------------------------------------- factory

def test_factory_builds_each_name():
    assert isinstance(build_phoneme_loss("asyp", C), AdaMS) and build_phoneme_loss("asyp", C).learnable
    assert not build_phoneme_loss("asyp", C, adams=False).learnable
    bd = build_phoneme_loss("proxy_bd", C, alpha=2.0, beta=3.0, lam=0.5)
    assert isinstance(bd, ProxyBinomialDevianceLoss) and not bd.learnable
    assert torch.equal(bd.alpha, torch.full((C,), 2.0)) and torch.equal(bd.lam, torch.full((C,), 0.5))
    assert build_phoneme_loss("proxy_ms", C, adams=True).learnable
    clat = build_phoneme_loss("clat", C, temperature=0.2, adams=True)
    assert isinstance(clat, ClatLoss) and clat.temperature == 0.2
    assert build_phoneme_loss("none", C) is None


def test_factory_rejects_unknown_names_and_keys():
    with pytest.raises(ValueError) as err:
        build_phoneme_loss("triplet", C)
    for name in PHONEME_LOSSES:
        assert name in str(err.value)
    with pytest.raises(TypeError):
        build_phoneme_loss("asyp", C, margin=0.2)


# ---------------------------------------------------------------- L_MM

LENGTH_PAIRS = [(1, 1), (2, 4), (3, 7), (4, 4), (5, 3), (7, 2), (3, 1), (6, 13)]


def test_monotonic_target_hand_examples():
    g = monotonic_target(torch.tensor([2, 3]), torch.tensor([4, 2]), 3, 4, dtype=torch.float64)
    torch.testing.assert_close(g[0], torch.tensor([[.5, .5, 0, 0], [0, 0, .5, .5], [0, 0, 0, 0]],
                                                  dtype=torch.float64))
    # L = 3 > T = 2: frames owned by rows 0 and 1; row 2 owns none -> frame floor(2 * 2 / 3) = 1.
    torch.testing.assert_close(g[1], torch.tensor([[1., 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0]],
                                                  dtype=torch.float64))


def test_monotonic_target_matches_reference_and_rows_sum_to_one():
    text_lens = torch.tensor([p[0] for p in LENGTH_PAIRS])
    audio_lens = torch.tensor([p[1] for p in LENGTH_PAIRS])
    l_max, t_max = int(text_lens.max()) + 1, int(audio_lens.max()) + 2  # extra padding
    g = monotonic_target(text_lens, audio_lens, l_max, t_max, dtype=torch.float64)
    assert g.shape == (len(LENGTH_PAIRS), l_max, t_max)
    for b, (L, T) in enumerate(LENGTH_PAIRS):
        ref = torch.zeros(l_max, t_max, dtype=torch.float64)
        ref[:L, :T] = torch.tensor(reference_target(L, T), dtype=torch.float64)
        torch.testing.assert_close(g[b], ref)
        torch.testing.assert_close(g[b, :L].sum(dim=1), torch.ones(L, dtype=torch.float64))
        assert (g[b, L:] == 0).all() and (g[b, :, T:] == 0).all()
        if L <= T:  # contiguous, non-overlapping shares covering every frame in order
            owner = g[b, :L, :T].argmax(dim=0)
            assert ((g[b, :L, :T] > 0).sum(dim=0) == 1).all()
            assert (owner.diff() >= 0).all() and owner[0] == 0 and owner[-1] == L - 1


def attention(text_lens, audio_lens, seed=0):
    """Random attention rows, softmax over valid frames, zero on padding, from leaf logits."""
    g = torch.Generator().manual_seed(seed)
    tm, am = lengths_to_mask(text_lens), lengths_to_mask(audio_lens)
    logits = torch.randn(*tm.shape, am.shape[1], generator=g, dtype=torch.float64,
                         requires_grad=True)
    attn = torch.softmax(logits.masked_fill(~am.unsqueeze(1), float("-inf")), dim=-1)
    return attn.masked_fill(~tm.unsqueeze(2), 0.0), logits, tm, am


@pytest.mark.parametrize("target", ["diagonal", "gaussian"])
def test_mm_loss_matches_reference(target):
    text_lens = torch.tensor([p[0] for p in LENGTH_PAIRS])
    audio_lens = torch.tensor([p[1] for p in LENGTH_PAIRS])
    attn, logits, tm, am = attention(text_lens, audio_lens)
    fast = MonotonicMatchingLoss(target)(attn, tm, am)
    slow = reference_mm(attn, text_lens, audio_lens, target)
    assert_same(fast, slow, (logits,))


def test_mm_loss_options():
    text_lens, audio_lens = torch.tensor([3, 2, 4]), torch.tensor([6, 5, 9])
    attn, _, tm, am = attention(text_lens, audio_lens, seed=2)
    # sigma is a config value.
    slow = reference_mm(attn, text_lens, audio_lens, "gaussian", sigma=0.5)
    torch.testing.assert_close(MonotonicMatchingLoss("gaussian", sigma=0.5)(attn, tm, am), slow)
    # ``matched`` keeps only the chosen pairs.
    matched = torch.tensor([True, False, True])
    keep = matched.nonzero().squeeze(1)
    torch.testing.assert_close(MonotonicMatchingLoss()(attn, tm, am, matched),
                               reference_mm(attn[keep], text_lens[keep], audio_lens[keep], "diagonal"))
    # The target itself is the minimum of the diagonal cross-entropy given its support.
    g = monotonic_target(text_lens, audio_lens, 4, 9, dtype=torch.float64)
    assert MonotonicMatchingLoss()(g, tm, am) < MonotonicMatchingLoss()(attn, tm, am)
    w = gaussian_penalty(text_lens, audio_lens, 4, 9, 0.2, dtype=torch.float64)
    assert (w[~(tm.unsqueeze(2) & am.unsqueeze(1))] == 0).all() and (w >= 0).all()
    with pytest.raises(ValueError):
        MonotonicMatchingLoss("noise")
