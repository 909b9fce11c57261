"""Cross-attention (Eq. 1) and flatten_valid against loop references written from the formula."""

import math

import pytest
import torch

from pyadml.models import lengths_to_mask
from pyadml.models.cross_attention import PhonemeCrossAttention, flatten_valid

D = 6


def inputs(text_lens=(3, 1, 4), audio_lens=(7, 2, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    text_lens, audio_lens = torch.tensor(text_lens), torch.tensor(audio_lens)
    n, l, t = len(text_lens), int(text_lens.max()), int(audio_lens.max())
    text = torch.randn(n, l, D, generator=g, dtype=torch.float64, requires_grad=True)
    audio = torch.randn(n, t, D, generator=g, dtype=torch.float64, requires_grad=True)
    return text, lengths_to_mask(text_lens, l), audio, lengths_to_mask(audio_lens, t)


def module(bias=False, seed=0):
    torch.manual_seed(seed)
    return PhonemeCrossAttention(D, bias=bias).double()


def reference(attn_mod, text, text_mask, audio, audio_mask):
    """Eq. (1) one query at a time: python loops over utterances, phonemes and frames."""
    n, l, _ = text.shape
    t = audio.shape[1]
    wq, wk = attn_mod.query, attn_mod.key
    aligned = [[torch.zeros(D, dtype=text.dtype) for _ in range(l)] for _ in range(n)]
    zero = torch.zeros((), dtype=text.dtype)
    weights = [[[zero for _ in range(t)] for _ in range(l)] for _ in range(n)]
    for b in range(n):
        frames = [j for j in range(t) if audio_mask[b, j]]
        for i in range(l):
            if not text_mask[b, i]:
                continue
            q = wq(text[b, i])
            scores = [q @ wk(audio[b, j]) / math.sqrt(D) for j in frames]
            z = sum(torch.exp(s) for s in scores)
            for j, s in zip(frames, scores):
                weights[b][i][j] = torch.exp(s) / z
                aligned[b][i] = aligned[b][i] + weights[b][i][j] * audio[b, j]  # V not projected
    aligned = torch.stack([torch.stack(row) for row in aligned])
    weights = torch.stack([torch.stack([torch.stack(r) for r in row]) for row in weights])
    return aligned, weights


@pytest.mark.parametrize("bias", [False, True])
def test_matches_reference_values_and_gradients(bias):
    attn_mod = module(bias)
    text, tm, audio, am = inputs()
    fast = attn_mod(text, tm, audio, am)
    slow = reference(attn_mod, text, tm, audio, am)
    g = torch.Generator().manual_seed(5)
    r1 = torch.randn(fast[0].shape, generator=g, dtype=torch.float64)
    r2 = torch.randn(fast[1].shape, generator=g, dtype=torch.float64)
    wrt = (text, audio, *attn_mod.parameters())
    grads = []
    for aligned, weights in (fast, slow):
        grads.append(torch.autograd.grad((aligned * r1).sum() + (weights * r2).sum(), wrt))
    torch.testing.assert_close(fast[0], slow[0], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(fast[1], slow[1], rtol=1e-9, atol=1e-12)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert len(list(attn_mod.parameters())) == (4 if bias else 2)  # W_q, W_k only: V not projected


def test_padded_frames_get_exactly_zero_weight_and_change_nothing():
    attn_mod = module()
    text, tm, audio, am = inputs()
    aligned, weights = attn_mod(text, tm, audio, am)
    assert (weights.masked_select(~am.unsqueeze(1).expand_as(weights)) == 0).all()
    valid_rows = weights.sum(dim=2)[tm]
    torch.testing.assert_close(valid_rows, torch.ones_like(valid_rows))
    # Other values (even huge or non-finite ones) in padded frames: identical outputs.
    junk = audio.detach().clone()
    junk[~am] = 1e6 * torch.randn(int((~am).sum()), D, dtype=torch.float64)
    assert not am[1, -1] and not am[1, -2]
    junk[1, -1, 0] = float("nan")
    junk[1, -2, 1] = float("inf")
    aligned2, weights2 = attn_mod(text, tm, junk, am)
    assert torch.equal(aligned, aligned2) and torch.equal(weights, weights2)
    # No gradient reaches padded frames.
    (g_audio,) = torch.autograd.grad(aligned.sum() + weights.sum(), audio)
    assert (g_audio[~am] == 0).all()


def test_rows_of_padded_text_positions_are_zero():
    attn_mod = module()
    text, tm, audio, am = inputs()
    text = text.detach().clone()
    text[~tm] = 100.0  # whatever sits there must not matter
    aligned, weights = attn_mod(text, tm, audio, am)
    assert (weights[~tm] == 0).all() and (aligned[~tm] == 0).all()
    # Changing a padded text position changes nothing at all.
    text[~tm] = -3.0
    aligned2, weights2 = attn_mod(text, tm, audio, am)
    assert torch.equal(aligned, aligned2) and torch.equal(weights, weights2)


def test_aligned_vectors_are_mixtures_of_frames_and_batch_independent():
    attn_mod = module()
    text, tm, audio, am = inputs()
    aligned, weights = attn_mod(text, tm, audio, am)
    torch.testing.assert_close(aligned, weights @ audio)
    # Utterance 1 alone (cropped to its own lengths) gives the same result as inside the batch.
    one_a, one_w = attn_mod(text[1:2, :1], tm[1:2, :1], audio[1:2, :2], am[1:2, :2])
    torch.testing.assert_close(one_a, aligned[1:2, :1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(one_w, weights[1:2, :1, :2], rtol=1e-12, atol=1e-12)


def test_flatten_valid_matches_loop_gather():
    text, tm, audio, am = inputs()
    aligned = torch.randn(text.shape, dtype=torch.float64)
    phones = torch.randint(1, 9, tm.shape)
    a_hat, t_hat, labels = flatten_valid(tm, aligned, text, phones)
    rows = [(b, i) for b in range(tm.shape[0]) for i in range(tm.shape[1]) if tm[b, i]]
    assert a_hat.shape == (len(rows), D) and labels.shape == (len(rows),)
    torch.testing.assert_close(a_hat, torch.stack([aligned[b, i] for b, i in rows]))
    torch.testing.assert_close(t_hat, torch.stack([text[b, i] for b, i in rows]))
    assert labels.tolist() == [int(phones[b, i]) for b, i in rows]
    # Gradients flow back to the valid positions only.
    (g,) = torch.autograd.grad(t_hat.sum(), text)
    assert (g[tm] == 1).all() and (g[~tm] == 0).all()
    (single,) = flatten_valid(tm, phones)
    assert torch.equal(single, labels)


def test_shape_errors():
    attn_mod = module()
    text, tm, audio, am = inputs()
    with pytest.raises(ValueError):
        attn_mod(text, tm[:, :-1], audio, am)
    with pytest.raises(ValueError):
        attn_mod(text[..., :-1], tm, audio, am)
    with pytest.raises(ValueError):
        flatten_valid(tm, audio)
