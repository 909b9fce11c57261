"""ECAPA-TDNN acoustic encoder [24] with CCSP pooling (paper sections 3.2 and 4.1).

Layout inside the network is (N, C, T). Padded frames are kept exactly 0 after every layer, so a
'same'-padded convolution reads zeros past the end of an utterance whether or not the utterance
sits in a padded batch; with ``MaskedBatchNorm1d`` (statistics over valid frames only) a padded
batch gives the same valid-frame outputs as each utterance alone.

The same property lets training pack a batch (``RowPacking``). A training batch is padded to its
longest row: in the mini recipe 112-144 frames for rows of 72-91 on average, so a third of the
frames computed are padding. In training mode the encoder lays the rows end to end in fewer
lanes, a gap of zeros between neighbours as wide as the widest convolution's reach, so each
convolution reads exactly the zeros it would read past a row's end; statistics, gates and pooling
work on each row's own frames. The outputs and gradients are those of the padded batch (to float
rounding), with fewer frames computed: the mini recipe trains 15% faster on 2 cores (RESULTS.md).
Eval (scoring, export) keeps the padded layout.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .common import EncoderOutput, check_lengths, lengths_to_mask


@dataclass
class EcapaConfig:
    input_dim: int = 40
    channels: int = 256  # C
    embed_dim: int = 256  # d
    input_kernel: int = 5
    kernel_sizes: Tuple[int, ...] = (3, 3, 3)  # Res2 conv kernel of each SE-Res2 block
    dilations: Tuple[int, ...] = (2, 3, 4)  # Res2 conv dilation of each SE-Res2 block
    scale: int = 8  # Res2 branches
    se_bottleneck: int = 64
    attention_bottleneck: int = 128
    stat_eps: float = 1e-6  # variance floor before sqrt in the statistics (keeps the grad finite)
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1

    def __post_init__(self):
        # Tuples even when built from yaml lists, so the config stays hashable/comparable.
        self.kernel_sizes = tuple(int(k) for k in self.kernel_sizes)
        self.dilations = tuple(int(d) for d in self.dilations)
        if len(self.kernel_sizes) != len(self.dilations):
            raise ValueError("kernel_sizes and dilations need one entry per SE-Res2 block")
        if self.channels % self.scale:
            raise ValueError(f"channels ({self.channels}) must be divisible by scale ({self.scale})")
        for k in (self.input_kernel, *self.kernel_sizes):
            if k % 2 == 0:
                raise ValueError(f"kernel sizes must be odd for symmetric 'same' padding, got {k}")

    def to_dict(self) -> dict:
        return asdict(self)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d over (N, C, T) whose batch statistics use valid frames only.

    Training: mean and biased variance over the valid frames normalise the batch; the running
    stats get the same update as nn.BatchNorm1d (momentum, unbiased variance n/(n-1); momentum
    None means a cumulative average). Eval: running stats, as nn.BatchNorm1d. Padded outputs are
    set to 0 so the next convolution reads zero padding. Without a mask it is nn.BatchNorm1d.
    Subclassing keeps state_dict keys and isinstance(_BatchNorm) checks (weight-decay groups).
    """

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if mask is None:
            return super().forward(x)
        if x.dim() != 3:
            raise ValueError(f"MaskedBatchNorm1d with a mask expects (N, C, T), got {tuple(x.shape)}")
        m = mask.unsqueeze(1).to(x.dtype)  # (N, 1, T)
        use_batch_stats = self.training or self.running_mean is None
        if use_batch_stats:
            n = m.sum()
            y, mean, var = _MaskedBatchNormTrain.apply(x, m, n, self.weight, self.bias, self.eps)
            if self.training and self.track_running_stats:
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                          else self.momentum)
                with torch.no_grad():
                    unbiased = var * n / (n - 1).clamp(min=1)
                    self.running_mean.mul_(1 - factor).add_(factor * mean)
                    self.running_var.mul_(1 - factor).add_(factor * unbiased)
            return y
        y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         False, 0.0, self.eps)
        return y * m


class _MaskedBatchNormTrain(torch.autograd.Function):
    """Masked BN with batch statistics, forward and backward written out (training spends a
    third of its step in elementwise passes over the frames; autograd's graph of the same
    formula takes about twice as many). With n = sum(m) valid frames, per channel:
        mean = sum(m x) / n,  var = sum(m (x - mean)^2) / n,  xhat = (x - mean) / sqrt(var + eps)
        y = m (w xhat + b)
        dL/dx = m w / sqrt(var + eps) * (g - sum(g) / n - xhat sum(g xhat) / n),  g = m dL/dy
    Returns y and the (detached) mean and biased variance for the running statistics."""

    @staticmethod
    def forward(ctx, x, m, n, weight, bias, eps):
        mean = (x * m).sum(dim=(0, 2)) / n
        xc = x - mean[:, None]
        var = (xc * xc * m).sum(dim=(0, 2)) / n
        inv = torch.rsqrt(var + eps)
        xhat = xc.mul_(inv[:, None])
        y = xhat * weight[:, None] if weight is not None else xhat.clone()
        if bias is not None:
            y.add_(bias[:, None])
        y.mul_(m)
        ctx.save_for_backward(xhat, m, n, inv, weight)
        ctx.has_bias = bias is not None
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        xhat, m, n, inv, weight = ctx.saved_tensors
        g = dy * m
        gsum = g.sum(dim=(0, 2))
        gxsum = (g * xhat).sum(dim=(0, 2))
        scale = inv if weight is None else weight * inv
        dx = None
        if ctx.needs_input_grad[0]:
            dx = xhat * (-gxsum / n)[:, None]
            dx.add_(g).sub_((gsum / n)[:, None]).mul_(scale[:, None]).mul_(m)
        dw = gxsum if weight is not None and ctx.needs_input_grad[3] else None
        db = gsum if ctx.has_bias and ctx.needs_input_grad[4] else None
        return dx, None, None, dw, db, None


def _weighted_stats(x: torch.Tensor, w: torch.Tensor, eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean and std over time of x (N, C, T) under weights w (broadcastable, summing to 1 over T)."""
    mu = (w * x).sum(dim=2)
    var = (w * (x - mu.unsqueeze(2)) ** 2).sum(dim=2)
    return mu, torch.sqrt(var.clamp(min=eps))


def _same_padding(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) // 2


class RowPacking:
    """The rows of a padded batch (lengths (N,), padded to ``t_max``) laid end to end in L lanes
    of ``width`` <= lane_rows * t_max frames, first fit by decreasing length, with ``gap`` zero
    frames after each row (lanes as long as one row packed rows of 72-91 frames padded to 128
    into lanes that were a third empty). ``pos`` (S,) is the lane-major position of each valid
    frame, rows in order (the order of ``padded[mask]``); ``row`` (S,) its row."""

    def __init__(self, lengths: torch.Tensor, t_max: int, gap: int, lane_rows: int = 4):
        lens = [int(n) for n in lengths.tolist()]
        cap = lane_rows * t_max
        used: list[int] = []  # frames taken in each lane, each row's trailing gap included
        start = [0] * len(lens)
        lane = [0] * len(lens)
        for i in sorted(range(len(lens)), key=lambda i: -lens[i]):
            j = next((j for j, u in enumerate(used) if u + lens[i] <= cap), len(used))
            if j == len(used):
                used.append(0)
            lane[i], start[i] = j, used[j]
            used[j] += lens[i] + gap
        self.n, self.t_max = len(lens), t_max
        self.lanes = len(used)
        self.width = max(u - gap for u in used)
        dev = lengths.device
        offsets = torch.tensor([lane[i] * self.width + start[i] for i in range(len(lens))],
                               device=dev)
        lengths = lengths.to(dev)
        self.row = torch.repeat_interleave(torch.arange(len(lens), device=dev), lengths)
        first = torch.cumsum(lengths, 0) - lengths
        self.pos = offsets[self.row] + torch.arange(self.row.numel(), device=dev) - first[self.row]
        self.mask = torch.zeros(self.lanes * self.width, dtype=torch.bool, device=dev)
        self.mask[self.pos] = True
        self.mask = self.mask.view(self.lanes, self.width)

    def saving(self) -> float:
        """The share of the padded batch's frames that the lanes leave out."""
        return 1 - self.lanes * self.width / (self.n * self.t_max)

    def pack(self, valid: torch.Tensor) -> torch.Tensor:
        """(S, C) valid frames, rows in order -> (L, C, width), zeros between rows."""
        out = valid.new_zeros(self.lanes * self.width, valid.shape[1])
        out = out.index_copy(0, self.pos, valid)
        return out.view(self.lanes, self.width, -1).transpose(1, 2)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """(L, C, width) -> (S, C): the valid frames, rows in order."""
        return x.transpose(1, 2).reshape(-1, x.shape[1]).index_select(0, self.pos)

    def row_sum(self, v: torch.Tensor) -> torch.Tensor:
        """(S, C) frame values -> (N, C) sums over each row's frames (in float32 at least)."""
        acc = torch.promote_types(v.dtype, torch.float32)
        out = torch.zeros(self.n, v.shape[1], dtype=acc, device=v.device)
        return out.index_add(0, self.row, v.to(acc)).to(v.dtype)

    def expand(self, r: torch.Tensor) -> torch.Tensor:
        """(N, C) per-row values -> (S, C): each valid frame gets its row's.

        index_select, not r[row]: the same values, and its backward is index_add, where
        indexing's backward is an accumulating index_put that runs serially on the CPU (about
        20x slower here; the two add a row's frames in different orders, so they round
        differently)."""
        return r.index_select(0, self.row)

    def spread(self, r: torch.Tensor) -> torch.Tensor:
        """(N, C) per-row values -> (L, C, width): each frame gets its row's, gaps 0."""
        return self.pack(self.expand(r))


class ConvReluBN(nn.Module):
    """Conv1d ('same' zero padding) -> ReLU -> masked BN, the TDNN unit of ECAPA."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int, cfg: EcapaConfig):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, dilation=dilation,
                              padding=_same_padding(kernel, dilation))
        self.bn = MaskedBatchNorm1d(cout, eps=cfg.bn_eps, momentum=cfg.bn_momentum)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)), mask)


class Res2Conv(nn.Module):
    """Res2Net dilated conv: split C into `scale` groups; group 0 passes through, group i > 0 is
    conv(x_i + y_{i-1}), widening the receptive field group by group."""

    def __init__(self, channels: int, kernel: int, dilation: int, cfg: EcapaConfig):
        super().__init__()
        self.scale = cfg.scale
        width = channels // cfg.scale
        self.convs = nn.ModuleList(
            ConvReluBN(width, width, kernel, dilation, cfg) for _ in range(cfg.scale - 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        groups = torch.chunk(x, self.scale, dim=1)
        out = [groups[0]]
        y = None
        for g, conv in zip(groups[1:], self.convs):
            y = conv(g if y is None else g + y, mask)
            out.append(y)
        return torch.cat(out, dim=1)


class SqueezeExcite(nn.Module):
    """Channel gates from the masked mean over time (padded frames never count)."""

    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, bottleneck)
        self.fc2 = nn.Linear(bottleneck, channels)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor,
                packing: Optional[RowPacking] = None) -> torch.Tensor:
        # x is already 0 on padded frames, so a plain sum / valid count is the masked mean.
        total = x.sum(dim=2) if packing is None else packing.row_sum(packing.frames(x))
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(total / lengths.to(x.dtype).unsqueeze(1)))))
        return x * (gate.unsqueeze(2) if packing is None else packing.spread(gate))


class SERes2Block(nn.Module):
    """1x1 conv -> Res2 dilated conv -> 1x1 conv -> SE, plus the residual input."""

    def __init__(self, channels: int, kernel: int, dilation: int, cfg: EcapaConfig):
        super().__init__()
        self.conv1 = ConvReluBN(channels, channels, 1, 1, cfg)
        self.res2 = Res2Conv(channels, kernel, dilation, cfg)
        self.conv2 = ConvReluBN(channels, channels, 1, 1, cfg)
        self.se = SqueezeExcite(channels, cfg.se_bottleneck)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor,
                packing: Optional[RowPacking] = None) -> torch.Tensor:
        h = self.conv2(self.res2(self.conv1(x, mask), mask), mask)
        return self.se(h, lengths, packing) + x


class CCSPooling(nn.Module):
    """Channel- and context-dependent statistics pooling (attentive stats with global context).

    Attention input per frame: [h_t; masked mean; masked std] (3d). Bottleneck 1x1 conv + tanh,
    1x1 conv back to d scores, softmax over time per channel with padded frames at -inf. Output:
    [weighted mean; weighted std] (N, 2d).
    """

    def __init__(self, channels: int, bottleneck: int, eps: float):
        super().__init__()
        self.eps = eps
        self.attn_in = nn.Conv1d(3 * channels, bottleneck, 1)
        self.attn_out = nn.Conv1d(bottleneck, channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, return_weights: bool = False):
        m = mask.unsqueeze(1).to(x.dtype)
        uniform = m / m.sum(dim=2, keepdim=True)  # masked mean/std = stats under uniform weights
        g_mean, g_std = _weighted_stats(x, uniform, self.eps)
        t = x.shape[2]
        ctx = torch.cat([x, g_mean.unsqueeze(2).expand(-1, -1, t),
                         g_std.unsqueeze(2).expand(-1, -1, t)], dim=1)
        scores = self.attn_out(torch.tanh(self.attn_in(ctx)))
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        w = torch.softmax(scores, dim=2)  # exp(-inf) = 0: padded weights are exactly 0
        mu, sigma = _weighted_stats(x, w, self.eps)
        stats = torch.cat([mu, sigma], dim=1)
        return (stats, w) if return_weights else stats

    def forward_frames(self, v: torch.Tensor, packing: RowPacking,
                       lengths: torch.Tensor) -> torch.Tensor:
        """``forward`` on (S, d) valid frames, rows in order (``packing``): the 1x1 convolutions
        act frame by frame, the statistics and the softmax over each row's own frames."""
        row, n = packing.row, lengths.to(v.dtype).unsqueeze(1)
        g_mean = packing.row_sum(v) / n
        g_var = packing.row_sum((v - packing.expand(g_mean)) ** 2) / n
        g_std = torch.sqrt(g_var.clamp(min=self.eps))
        ctx = torch.cat([v, packing.expand(g_mean), packing.expand(g_std)], dim=1)
        h = torch.tanh(F.linear(ctx, self.attn_in.weight.squeeze(2), self.attn_in.bias))
        # At least float32, as autocast runs a softmax.
        scores = F.linear(h, self.attn_out.weight.squeeze(2), self.attn_out.bias)
        scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
        top = torch.zeros(packing.n, scores.shape[1], dtype=scores.dtype, device=scores.device)
        top = top.scatter_reduce(0, row.unsqueeze(1).expand_as(scores), scores.detach(), "amax",
                                 include_self=False)
        e = torch.exp(scores - packing.expand(top))
        w = e / packing.expand(packing.row_sum(e))
        mu = packing.row_sum(w * v)
        var = packing.row_sum(w * (v - packing.expand(mu)) ** 2)
        return torch.cat([mu, torch.sqrt(var.clamp(min=self.eps))], dim=1)


class EcapaEncoder(nn.Module):
    """fbank (N, T, F) + lengths -> EncoderOutput(phn (N, T, d), utt (N, d), mask (N, T))."""

    def __init__(self, cfg: Optional[EcapaConfig] = None):
        super().__init__()
        cfg = cfg or EcapaConfig()
        self.cfg = cfg
        c, d = cfg.channels, cfg.embed_dim
        self.input_block = ConvReluBN(cfg.input_dim, c, cfg.input_kernel, 1, cfg)
        self.blocks = nn.ModuleList(
            SERes2Block(c, k, dil, cfg) for k, dil in zip(cfg.kernel_sizes, cfg.dilations))
        nb = len(self.blocks)
        self.mfa = nn.Conv1d(nb * c, nb * c, 1)
        self.frame_proj = nn.Conv1d(nb * c, d, 1)
        self.frame_bn = MaskedBatchNorm1d(d, eps=cfg.bn_eps, momentum=cfg.bn_momentum)
        self.pool = CCSPooling(d, cfg.attention_bottleneck, cfg.stat_eps)
        # Utterance-level BN has no time axis and so no padding: the stock layer is right here.
        self.pool_bn = nn.BatchNorm1d(2 * d, eps=cfg.bn_eps, momentum=cfg.bn_momentum)
        self.pool_fc = nn.Linear(2 * d, d)
        # Zero frames between packed rows: the widest 'same' padding of any convolution.
        self.reach = max(_same_padding(cfg.input_kernel, 1),
                         *(_same_padding(k, dil) for k, dil in zip(cfg.kernel_sizes, cfg.dilations)))

    # Training batches are packed when that skips 20% or more of their frames (RowPacking).
    pack_training = True

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    def forward(self, feats: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> EncoderOutput:
        if feats.dim() != 3 or feats.shape[2] != self.cfg.input_dim:
            raise ValueError(f"feats must be (N, T, {self.cfg.input_dim}), got {tuple(feats.shape)}")
        n, t, _ = feats.shape
        lengths = check_lengths(lengths, n, t, feats.device)
        mask = lengths_to_mask(lengths, t)
        if self.training and self.pack_training and n > 1 and not torch.jit.is_tracing():
            packing = RowPacking(lengths, t, self.reach)
            if packing.saving() >= 0.2:
                return self._forward_packed(feats, lengths, mask, packing)
        m = mask.unsqueeze(1).to(feats.dtype)
        # Padding values in feats are arbitrary: zero them before the first conv reads them.
        x = self.input_block(feats.transpose(1, 2) * m, mask)
        outs = []
        for block in self.blocks:
            x = block(x, mask, lengths)
            outs.append(x)
        h = F.relu(self.mfa(torch.cat(outs, dim=1))) * m  # bias would leak into padded frames
        phn = self.frame_bn(self.frame_proj(h), mask)
        utt = self.pool_fc(self.pool_bn(self.pool(phn, mask)))
        return EncoderOutput(phn.transpose(1, 2), utt, mask)

    def _forward_packed(self, feats: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor,
                        packing: RowPacking) -> EncoderOutput:
        """``forward`` with the rows packed into lanes (the module docstring)."""
        lane_mask = packing.mask
        m = lane_mask.unsqueeze(1).to(feats.dtype)
        x = self.input_block(packing.pack(feats[mask]), lane_mask)
        outs = []
        for block in self.blocks:
            x = block(x, lane_mask, lengths, packing)
            outs.append(x)
        h = F.relu(self.mfa(torch.cat(outs, dim=1))) * m
        v = packing.frames(self.frame_bn(self.frame_proj(h), lane_mask))  # (S, d)
        utt = self.pool_fc(self.pool_bn(self.pool.forward_frames(v, packing, lengths)))
        phn = v.new_zeros(mask.shape[0], mask.shape[1], v.shape[1]).index_put((mask,), v)
        return EncoderOutput(phn, utt, mask)
