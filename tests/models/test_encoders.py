import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pyadml.models import (
    CCSPooling, EcapaConfig, EcapaEncoder, KwsModel, MaskedBatchNorm1d, TextEncoder,
    TextEncoderConfig, lengths_to_mask,
)
from pyadml.models.ecapa import RowPacking

VOCAB = 72  # ~70 stressed ARPAbet units + <eps>
ECAPA_DEFAULT_PARAMS = 1_667_360
TEXT_PARAMS_WITHOUT_EMBEDDING = 2_826_752  # LSTMs + both Linears; the table adds V * 256


def _randomise_bn(module: nn.Module, gen: torch.Generator) -> None:
    # Fresh BN (mean 0, var 1, weight 1, bias 0) would hide a wrong running-stat path.
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


def _pad(seqs, fill=0.0):
    t = max(s.shape[0] for s in seqs)
    out = torch.full((len(seqs), t, *seqs[0].shape[1:]), fill, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, torch.tensor([s.shape[0] for s in seqs])


@pytest.fixture(scope="module")
def ecapa():
    torch.manual_seed(0)
    enc = EcapaEncoder(EcapaConfig())
    with torch.no_grad():
        _randomise_bn(enc, torch.Generator().manual_seed(1))
    return enc.eval()


@pytest.fixture(scope="module")
def text_enc():
    torch.manual_seed(0)
    return TextEncoder(TextEncoderConfig(vocab_size=VOCAB)).eval()


def test_lengths_to_mask():
    m = lengths_to_mask(torch.tensor([1, 3, 2]), 4)
    assert m.dtype == torch.bool
    assert m.tolist() == [[True, False, False, False], [True, True, True, False],
                          [True, True, False, False]]


def test_output_shapes(ecapa, text_enc):
    feats = torch.randn(3, 57, 40)
    phn, utt, mask = ecapa(feats, torch.tensor([57, 40, 12]))
    assert phn.shape == (3, 57, 256)  # one vector per input frame: no subsampling
    assert utt.shape == (3, 256)
    assert mask.shape == (3, 57) and mask.sum(1).tolist() == [57, 40, 12]
    phones = torch.randint(1, VOCAB, (3, 9))
    phn, utt, mask = text_enc(phones, torch.tensor([9, 4, 1]))
    assert phn.shape == (3, 9, 256) and utt.shape == (3, 256)
    assert mask.sum(1).tolist() == [9, 4, 1]


def test_parameter_counts(ecapa, text_enc):
    n_audio = sum(p.numel() for p in ecapa.parameters())
    n_text = sum(p.numel() for p in text_enc.parameters())
    print(f"\nECAPA default params: {n_audio:,}  text encoder (V={VOCAB}) params: {n_text:,}")
    assert n_audio == ECAPA_DEFAULT_PARAMS
    assert n_text == TEXT_PARAMS_WITHOUT_EMBEDDING + VOCAB * 256


def test_ecapa_padding_invariance_eval(ecapa):
    g = torch.Generator().manual_seed(2)
    seqs = [torch.randn(t, 40, generator=g) for t in (23, 61, 7)]
    feats, lens = _pad(seqs, fill=1e3)  # garbage in padding must not leak in
    with torch.no_grad():
        phn, utt, mask = ecapa(feats, lens)
        assert torch.all(phn[~mask] == 0)
        for i, s in enumerate(seqs):
            p1, u1, _ = ecapa(s.unsqueeze(0), torch.tensor([s.shape[0]]))
            torch.testing.assert_close(phn[i, : s.shape[0]], p1[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(utt[i], u1[0], atol=1e-5, rtol=0)


def test_text_padding_invariance_eval(text_enc):
    g = torch.Generator().manual_seed(3)
    seqs = [torch.randint(1, VOCAB, (t,), generator=g) for t in (5, 11, 2)]
    phones, lens = _pad(seqs, fill=0)
    with torch.no_grad():
        phn, utt, mask = text_enc(phones, lens)
        assert torch.all(phn[~mask] == 0)
        for i, s in enumerate(seqs):
            p1, u1, _ = text_enc(s.unsqueeze(0), torch.tensor([s.shape[0]]))
            torch.testing.assert_close(phn[i, : s.shape[0]], p1[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(utt[i], u1[0], atol=1e-5, rtol=0)


def test_masked_batchnorm_matches_batchnorm_on_valid_frames():
    torch.manual_seed(4)
    c = 6
    bn = MaskedBatchNorm1d(c)
    ref = nn.BatchNorm1d(c)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(c) + 0.5)
        bn.bias.copy_(torch.randn(c))
    ref.load_state_dict(bn.state_dict())
    lens = torch.tensor([9, 4, 1])
    mask = lengths_to_mask(lens, 9)
    for step in range(3):  # several updates: the running stats must track step by step
        x = torch.randn(3, c, 9) * 3 + 2
        x[~mask.unsqueeze(1).expand_as(x)] = 100.0  # padding far off the data
        x.requires_grad_(True)
        y = bn.train()(x, mask)
        valid = x.detach().transpose(1, 2)[mask].clone().requires_grad_(True)  # (n_valid, C)
        y_ref = ref.train()(valid)
        torch.testing.assert_close(y.transpose(1, 2)[mask], y_ref, atol=1e-5, rtol=1e-5)
        assert torch.all(y.transpose(1, 2)[~mask] == 0)
        torch.testing.assert_close(bn.running_mean, ref.running_mean, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(bn.running_var, ref.running_var, atol=1e-6, rtol=1e-6)
        assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == step + 1
        # Gradients agree too, so training sees the same normalisation as the reference.
        w = torch.randn_like(y_ref)
        (y.transpose(1, 2)[mask] * w).sum().backward()
        (y_ref * w).sum().backward()
        torch.testing.assert_close(x.grad.transpose(1, 2)[mask], valid.grad, atol=1e-5, rtol=1e-5)
    x = torch.randn(3, c, 9)
    torch.testing.assert_close(bn.eval()(x, mask).transpose(1, 2)[mask],
                               ref.eval()(x.transpose(1, 2)[mask]), atol=1e-5, rtol=1e-5)


def _masked_bn_reference(x, m, weight, bias, eps):
    """The masked BN formula through autograd (MaskedBatchNorm1d's training path before its
    backward was written out)."""
    n = m.sum()
    mean = (x * m).sum(dim=(0, 2)) / n
    var = (((x - mean[:, None]) ** 2) * m).sum(dim=(0, 2)) / n
    y = (x - mean[:, None]) * torch.rsqrt(var[:, None] + eps)
    if weight is not None:
        y = y * weight[:, None] + bias[:, None]
    return y * m, mean, var


@pytest.mark.parametrize("affine", [True, False])
def test_masked_batchnorm_backward_matches_autograd_of_the_formula(affine):
    # float64: the written-out backward (x, weight, bias) against autograd of the formula, on a
    # lane-like mask with gaps and a padded tail holding large values that must not leak.
    torch.manual_seed(11)
    c, t = 5, 23
    bn = MaskedBatchNorm1d(c, affine=affine).double().train()
    if affine:
        with torch.no_grad():
            bn.weight.copy_(torch.rand(c) + 0.5)
            bn.bias.copy_(torch.randn(c))
    mask = torch.ones(3, t, dtype=torch.bool)
    mask[0, 7:11] = False
    mask[1, 15:] = False
    mask[2, :2] = False
    x = (torch.randn(3, c, t, dtype=torch.float64) * 2 + 1)
    x[~mask.unsqueeze(1).expand_as(x)] = 50.0
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    w2 = b2 = None
    if affine:
        w2 = bn.weight.detach().clone().requires_grad_(True)
        b2 = bn.bias.detach().clone().requires_grad_(True)
    running = bn.running_mean.clone(), bn.running_var.clone()
    y1 = bn(x1, mask)
    y2, mean, var = _masked_bn_reference(x2, mask.unsqueeze(1).double(), w2, b2, bn.eps)
    torch.testing.assert_close(y1, y2, atol=1e-12, rtol=1e-12)
    n = mask.sum()
    torch.testing.assert_close(bn.running_mean, 0.9 * running[0] + 0.1 * mean.detach())
    torch.testing.assert_close(bn.running_var, 0.9 * running[1] + 0.1 * var.detach() * n / (n - 1))
    g = torch.randn_like(y1)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-12, rtol=1e-10)
    assert torch.all(x1.grad[~mask.unsqueeze(1).expand_as(x)] == 0)
    if affine:
        torch.testing.assert_close(bn.weight.grad, w2.grad, atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(bn.bias.grad, b2.grad, atol=1e-12, rtol=1e-10)
    # gradcheck (finite differences) of the written-out backward, without running statistics.
    bn.eval().running_mean = None  # batch statistics in eval too, with no running update
    bn.running_var = None
    torch.autograd.gradcheck(lambda v: bn(v, mask), (x.clone().requires_grad_(True),))


def test_ecapa_train_mode_ignores_padding_amount():
    # Masked BN: extra padding changes neither the outputs nor the running statistics.
    torch.manual_seed(5)
    a, b = EcapaEncoder(), EcapaEncoder()
    b.load_state_dict(a.state_dict())
    seqs = [torch.randn(t, 40) for t in (30, 18, 25)]
    feats, lens = _pad(seqs)
    longer = torch.cat([feats, torch.randn(3, 13, 40)], dim=1)
    pa, ua, ma = a.train()(feats, lens)
    pb, ub, mb = b.train()(longer, lens)
    torch.testing.assert_close(pa[ma], pb[mb], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ua, ub, atol=1e-5, rtol=1e-5)
    for (name, x), (_, y) in zip(a.named_buffers(), b.named_buffers()):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-5, msg=name)


def test_row_packing_hand_worked():
    # Lanes of at most 10 frames (lane_rows=1), a gap of 4 after each row, first fit by
    # decreasing length: row 0 (10) fills lane 0; row 2 (6) opens lane 1 (10 taken with its gap);
    # row 1 (3) fits neither (10 + 3, 10 + 3 > 10) and opens lane 2 (7 taken); row 3 (2) goes
    # after it at 7. Width: the longest lane without its last gap, 10.
    p = RowPacking(torch.tensor([10, 3, 6, 2]), t_max=10, gap=4, lane_rows=1)
    assert (p.lanes, p.width) == (3, 10)
    assert p.pos.tolist() == [*range(0, 10), 20, 21, 22, *range(10, 16), 27, 28]
    assert p.row.tolist() == [0] * 10 + [1] * 3 + [2] * 6 + [3] * 2
    assert p.saving() == pytest.approx(1 - 30 / 40)
    assert p.mask.sum() == 21 and p.mask.view(-1)[p.pos].all()
    valid = torch.arange(21.0).unsqueeze(1)
    assert p.frames(p.pack(valid)).squeeze(1).tolist() == valid.squeeze(1).tolist()
    # Gaps and lane ends hold zeros; each row's sum and its value spread back over its frames.
    assert p.pack(valid).view(-1)[~p.mask.view(-1)].abs().sum() == 0
    assert p.row_sum(valid).squeeze(1).tolist() == [45.0, 10 + 11 + 12, sum(range(13, 19)), 39.0]
    assert p.frames(p.spread(torch.tensor([[1.0], [2.0], [3.0], [4.0]]))).squeeze(1).tolist() == \
        [1.0] * 10 + [2.0] * 3 + [3.0] * 6 + [4.0] * 2


def test_packed_training_batch_matches_the_padded_one():
    """Training mode packs a batch whose rows are mostly padding (RowPacking): the outputs,
    the gradients of every parameter and the BN running statistics are those of the padded
    batch computed as before (pack_training off). In float64, so that rounding cannot hide a
    difference."""
    torch.manual_seed(7)
    cfg = EcapaConfig(channels=64, embed_dim=48, se_bottleneck=16, attention_bottleneck=32)
    packed = EcapaEncoder(cfg)
    with torch.no_grad():
        _randomise_bn(packed, torch.Generator().manual_seed(3))
    padded = EcapaEncoder(cfg)
    padded.load_state_dict(packed.state_dict())
    padded.pack_training = False
    packed, padded = packed.double(), padded.double()
    feats, lens = _pad([torch.randn(t, 40, dtype=torch.float64)
                        for t in (90, 12, 7, 33, 20, 9, 48, 5, 61, 3)])
    assert RowPacking(lens, 90, packed.reach).saving() >= 0.2  # the packed path is taken
    out_p, out_q = packed.train()(feats, lens), padded.train()(feats, lens)
    torch.testing.assert_close(out_p.phn, out_q.phn, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(out_p.utt, out_q.utt, atol=1e-10, rtol=1e-10)
    assert out_p.phn[~out_p.mask].abs().sum() == 0
    gen = torch.Generator().manual_seed(4)
    w_phn = torch.randn(out_p.phn.shape, generator=gen, dtype=torch.float64)
    w_utt = torch.randn(out_p.utt.shape, generator=gen, dtype=torch.float64)
    for out in (out_p, out_q):
        ((out.phn * w_phn).sum() + (out.utt * w_utt).sum()).backward()
    scale = max(float(p.grad.abs().max()) for p in padded.parameters())
    for (name, p), q in zip(packed.named_parameters(), padded.parameters()):
        # Biases right before a BN, or before a softmax over time, have a zero gradient in
        # exact arithmetic: compare on the scale of the largest gradient.
        torch.testing.assert_close(p.grad, q.grad, atol=1e-10 * scale, rtol=1e-9, msg=name)
    for (name, x), y in zip(packed.named_buffers(), padded.buffers()):
        torch.testing.assert_close(x, y, atol=1e-12, rtol=1e-10, msg=name)
    # Eval mode (scoring, export) never packs: the same module gives the padded path's numbers.
    torch.testing.assert_close(packed.eval()(feats, lens).utt, padded.eval()(feats, lens).utt)


def _ccsp_loop_reference(pool: CCSPooling, x, lens, eps):
    """Per utterance, per frame, per channel, straight from the formulas."""
    w1 = pool.attn_in.weight[:, :, 0]
    b1 = pool.attn_in.bias
    w2 = pool.attn_out.weight[:, :, 0]
    b2 = pool.attn_out.bias
    n, d, _ = x.shape
    out = torch.zeros(n, 2 * d, dtype=x.dtype)
    for i in range(n):
        t_n = int(lens[i])
        h = x[i, :, :t_n]
        g_mean = torch.stack([h[c].sum() / t_n for c in range(d)])
        g_std = torch.stack([torch.sqrt(torch.clamp(((h[c] - g_mean[c]) ** 2).sum() / t_n, min=eps))
                             for c in range(d)])
        e = torch.stack([w2 @ torch.tanh(w1 @ torch.cat([h[:, t], g_mean, g_std]) + b1) + b2
                         for t in range(t_n)], dim=1)  # (d, t_n)
        for c in range(d):
            z = torch.exp(e[c] - e[c].max())
            w = z / z.sum()
            mu = (w * h[c]).sum()
            out[i, c] = mu
            out[i, d + c] = torch.sqrt(torch.clamp((w * h[c] ** 2).sum() - mu ** 2, min=eps))
    return out


def test_ccsp_weights_and_loop_reference():
    torch.manual_seed(6)
    d, eps = 5, 1e-6
    pool = CCSPooling(d, bottleneck=4, eps=eps).double()
    lens = torch.tensor([7, 3, 5])
    mask = lengths_to_mask(lens, 7)
    x = torch.randn(3, d, 7, dtype=torch.float64) * mask.unsqueeze(1)
    with torch.no_grad():
        stats, w = pool(x, mask, return_weights=True)
        assert w.shape == (3, d, 7)
        torch.testing.assert_close(w.sum(dim=2), torch.ones(3, d, dtype=torch.float64))
        assert torch.all(w.transpose(1, 2)[~mask] == 0)
        assert torch.all(w.transpose(1, 2)[mask] > 0)
        ref = _ccsp_loop_reference(pool, x, lens, eps)
    torch.testing.assert_close(stats, ref, atol=1e-10, rtol=1e-8)


def test_gradients_reach_every_parameter():
    torch.manual_seed(7)
    model = KwsModel.from_configs(EcapaConfig(), TextEncoderConfig(vocab_size=VOCAB)).train()
    feats = torch.randn(4, 33, 40)
    flens = torch.tensor([33, 20, 9, 27])
    phones = torch.randint(1, VOCAB, (4, 6))
    plens = torch.tensor([6, 2, 4, 5])
    loss = 0
    for phn, utt, _ in (model.embed_audio(feats, flens), model.embed_text(phones, plens)):
        # Random weights: a plain sum of a BN output has zero gradient by construction.
        loss = loss + (phn * torch.randn_like(phn)).sum() + (utt * torch.randn_like(utt)).sum()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_score_is_cosine():
    torch.manual_seed(8)
    a, t = torch.randn(5, 256), torch.randn(5, 256)
    torch.testing.assert_close(KwsModel.score(a, t), F.cosine_similarity(a, t, dim=-1))
    full = KwsModel.score(a[:, None], t[None])  # broadcasting gives the trial matrix
    assert full.shape == (5, 5)
    torch.testing.assert_close(full.diagonal(), F.cosine_similarity(a, t, dim=-1))
