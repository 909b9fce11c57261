"""The baseline detector heads against slow loops written from their descriptions: explicit
per-position attention and the GRU unrolled with a GRUCell that shares the head's weights."""

import math

import pytest
import torch

from pyadml.models.baselines import CMCDHead, PhonMatchNetHead, build_head

D_IN, DIM, HID = 12, 8, 6


def gru_cell(gru: torch.nn.GRU) -> torch.nn.GRUCell:
    cell = torch.nn.GRUCell(gru.input_size, gru.hidden_size)
    with torch.no_grad():
        cell.weight_ih.copy_(gru.weight_ih_l0)
        cell.weight_hh.copy_(gru.weight_hh_l0)
        cell.bias_ih.copy_(gru.bias_ih_l0)
        cell.bias_hh.copy_(gru.bias_hh_l0)
    return cell


def unroll(cell, xs):
    h = torch.zeros(1, cell.hidden_size)
    for x in xs:
        h = cell(x.view(1, -1), h)
    return h[0]


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    a_lens, t_lens = torch.tensor([9, 4, 1, 6]), torch.tensor([3, 5, 2, 1])
    a = torch.randn(4, 9, D_IN, generator=g)
    t = torch.randn(4, 5, D_IN, generator=g)
    a_mask = torch.arange(9)[None] < a_lens[:, None]
    t_mask = torch.arange(5)[None] < t_lens[:, None]
    # Padding holds junk: the heads must not read it.
    a = torch.where(a_mask[..., None], a, torch.full_like(a, 7.0))
    t = torch.where(t_mask[..., None], t, torch.full_like(t, -3.0))
    return a, a_mask, t, t_mask, a_lens, t_lens


def phonmatchnet_slow(head: PhonMatchNetHead, a, t):
    """One pair: a (T, d_in) valid frames, t (L, d_in) valid phonemes."""
    x = torch.cat([head.audio_proj(a), head.text_proj(t)])   # [frames; phonemes]
    n_a = a.shape[0]
    outs, rows = [], []
    for p in range(x.shape[0]):
        q = head.q(x[p])
        # Lower-triangular mask: position p sees positions 0..p only.
        s = torch.stack([q @ head.k(x[j]) / math.sqrt(head.dim) for j in range(p + 1)])
        w = torch.softmax(s, dim=0)
        outs.append(head.o(sum(w[j] * head.v(x[j]) for j in range(p + 1))))
        rows.append(w)
    logit = head.utt_fc(unroll(gru_cell(head.gru), outs))[0]
    phn = torch.stack([head.phn_fc(outs[n_a + k])[0] for k in range(t.shape[0])])
    align = torch.stack([rows[n_a + k][:n_a] / rows[n_a + k][:n_a].sum() for k in range(t.shape[0])])
    return logit, phn, align


def cmcd_slow(head: CMCDHead, a, t):
    a_p, t_p = head.audio_proj(a), head.text_proj(t)
    attended, rows = [], []
    for k in range(t.shape[0]):
        q = head.q(t_p[k])
        s = torch.stack([q @ head.k(a_p[j]) / math.sqrt(head.dim) for j in range(a.shape[0])])
        w = torch.softmax(s, dim=0)
        attended.append(sum(w[j] * head.v(a_p[j]) for j in range(a.shape[0])))
        rows.append(w)
    return head.utt_fc(unroll(gru_cell(head.gru), attended))[0], torch.stack(rows)


def test_phonmatchnet_matches_the_slow_loop():
    torch.manual_seed(0)
    head = PhonMatchNetHead(D_IN, DIM, HID).eval()
    a, a_mask, t, t_mask, a_lens, t_lens = batch()
    out = head(a, a_mask, t, t_mask)
    for i in range(4):
        ta, lt = int(a_lens[i]), int(t_lens[i])
        logit, phn, align = phonmatchnet_slow(head, a[i, :ta], t[i, :lt])
        torch.testing.assert_close(out.logit[i], logit, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.phn_logits[i, :lt], phn, rtol=1e-5, atol=1e-5)
        assert torch.all(out.phn_logits[i, lt:] == 0)
        torch.testing.assert_close(out.alignment[i, :lt, :ta], align, rtol=1e-5, atol=1e-6)
        assert torch.all(out.alignment[i, :, ta:] == 0) and torch.all(out.alignment[i, lt:] == 0)


def test_cmcd_matches_the_slow_loop():
    torch.manual_seed(1)
    head = CMCDHead(D_IN, DIM, HID).eval()
    a, a_mask, t, t_mask, a_lens, t_lens = batch(1)
    out = head(a, a_mask, t, t_mask)
    assert out.phn_logits is None
    for i in range(4):
        ta, lt = int(a_lens[i]), int(t_lens[i])
        logit, attn = cmcd_slow(head, a[i, :ta], t[i, :lt])
        torch.testing.assert_close(out.logit[i], logit, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.alignment[i, :lt, :ta], attn, rtol=1e-5, atol=1e-6)
        assert torch.all(out.alignment[i, :, ta:] == 0) and torch.all(out.alignment[i, lt:] == 0)


@pytest.mark.parametrize("name", ["phonmatchnet", "cmcd"])
def test_a_pair_scores_the_same_alone_and_in_a_padded_batch(name):
    torch.manual_seed(2)
    head = build_head(name, D_IN, dim=DIM, gru_hidden=HID).eval()
    a, a_mask, t, t_mask, a_lens, t_lens = batch(2)
    out = head(a, a_mask, t, t_mask)
    for i in range(4):
        ta, lt = int(a_lens[i]), int(t_lens[i])
        alone = head(a[i:i + 1, :ta], a_mask[i:i + 1, :ta], t[i:i + 1, :lt], t_mask[i:i + 1, :lt])
        torch.testing.assert_close(out.logit[i:i + 1], alone.logit, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["phonmatchnet", "cmcd"])
def test_gradients_reach_both_inputs(name):
    head = build_head(name, D_IN, dim=DIM, gru_hidden=HID)
    a, a_mask, t, t_mask, *_ = batch(3)
    a.requires_grad_(True)
    t.requires_grad_(True)
    out = head(a, a_mask, t, t_mask)
    (out.logit.sum() + (0 if out.phn_logits is None else out.phn_logits.sum())).backward()
    assert a.grad.abs().sum() > 0 and t.grad.abs().sum() > 0
    # Padding gets no gradient: it is never read.
    assert torch.all(a.grad[~a_mask] == 0) and torch.all(t.grad[~t_mask] == 0)


def test_bad_inputs_are_errors():
    head = build_head("cmcd", D_IN, dim=DIM, gru_hidden=HID)
    a, a_mask, t, t_mask, *_ = batch()
    with pytest.raises(ValueError, match="d=12"):
        head(a[..., :5], a_mask, t, t_mask)
    t_mask = t_mask.clone()
    t_mask[0] = False
    with pytest.raises(ValueError, match="at least one valid"):
        head(a, a_mask, t, t_mask)
    with pytest.raises(ValueError, match="unknown detector head"):
        build_head("rnnt", D_IN)
