"""Keyword classification loss L_key on E_a^utt (paper Eq. 3, section 3.2).

Training-vocabulary keyword ids are the labels. Every module here is training-only (class
attribute ``training_only = True``): its classifier weights never reach the exported model,
which keeps only the ``audio.``/``text.`` encoder weights.

Choices (Table 3): "sphereface2" (default, type C), "aam" (additive angular margin softmax),
"triplet" (batch-hard, on E_a^utt) and "none" (no L_key).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pyadml.losses.precision import fp32_loss

KEYWORD_LOSSES = ("sphereface2", "aam", "triplet", "none")


def _check_inputs(x: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None) -> None:
    if x.dim() != 2 or labels.shape != x.shape[:1]:
        raise ValueError(f"need embeddings (N, d) and labels (N,), got {tuple(x.shape)} and "
                         f"{tuple(labels.shape)}")
    if num_classes is not None and labels.numel() and (
            int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got "
                         f"[{int(labels.min())}, {int(labels.max())}]")


class _MarginSchedule(nn.Module):
    """A margin m with an optional warm-up m * r(p), p = progress of the ramp in [0, 1]:
    m = 0 for the first ``margin_warmup_start`` steps, then over ``margin_warmup_steps`` steps
    r(p) = p (``linear``) or r(p) = 1 - 1e-3^p (``exp``, wespeaker's MarginScheduler: fast,
    then slow), and the full m afterwards. ``margin_warmup_steps`` 0: the full m throughout.

    ``step()`` (once per optimiser step) counts steps; ``set_progress(p)`` sets the ramp's
    progress directly. The step count is a buffer, so the schedule resumes with a checkpoint.
    """

    WARMUP_TYPES = ("linear", "exp")

    def __init__(self, m: float, margin_warmup_steps: int = 0, margin_warmup_start: int = 0,
                 margin_warmup_type: str = "linear"):
        super().__init__()
        if margin_warmup_steps < 0 or margin_warmup_start < 0:
            raise ValueError(f"margin_warmup_steps and margin_warmup_start must be >= 0, got "
                             f"{margin_warmup_steps}, {margin_warmup_start}")
        if margin_warmup_type not in self.WARMUP_TYPES:
            raise ValueError(f"margin_warmup_type must be one of {self.WARMUP_TYPES}, got "
                             f"{margin_warmup_type!r}")
        self.m = float(m)
        self.margin_warmup_steps = int(margin_warmup_steps)
        self.margin_warmup_start = int(margin_warmup_start) if self.margin_warmup_steps else 0
        self.margin_warmup_type = margin_warmup_type
        self.register_buffer("num_steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("progress", torch.tensor(0.0 if self.margin_warmup_steps else 1.0,
                                                      dtype=torch.float64))

    @property
    def current_margin(self) -> float:
        p = float(self.progress)
        if self.margin_warmup_type == "exp" and p < 1.0:
            p = 1.0 - 1e-3 ** p
        return self.m * p

    def step(self) -> None:
        if self.margin_warmup_steps == 0:
            return
        self.num_steps += 1
        ramp = (int(self.num_steps) - self.margin_warmup_start) / self.margin_warmup_steps
        self.progress.fill_(min(1.0, max(0.0, ramp)))

    def set_progress(self, progress: float) -> None:
        p = min(1.0, max(0.0, float(progress)))
        self.progress.fill_(p)
        self.num_steps.fill_(self.margin_warmup_start + round(p * self.margin_warmup_steps))


class SphereFace2(_MarginSchedule):
    """SphereFace2 type C (Wen et al. 2022; the speaker-verification variant the paper ports):
    z_y = s(g(cos_y) - m) + b, z_j = s(g(cos_j) + m) + b, g(z) = 2((z+1)/2)^t - 1,
    L = mean_i [ lam * softplus(-z_{y_i}) + (1 - lam) * sum_{j != y_i} softplus(z_j) ].

    cos_j is the cosine between x and the class weight W_j (both normalised); b is one scalar
    bias shared by all K classes; gradients flow through g.

    Bias initialisation (``bias_init="closed_form"``): at the start every cosine is ~0 (random
    W, high d), so the loss of one sample is, as a function of b alone,
        f(b) = lam * softplus(-(a_y + b)) + c * softplus(a_n + b),
        a_y = s(g(0) - m),  a_n = s(g(0) + m),  c = (1 - lam)(K - 1).
    f is convex; f'(b) = -lam * sigmoid(-(a_y + b)) + c * sigmoid(a_n + b). With
    u = e^{a_n + b} and r = e^{a_y - a_n} = e^{-2sm} (so e^{a_y + b} = r u), f'(b) = 0 reads
        lam / (1 + r u) = c u / (1 + u)  <=>  c r u^2 + (c - lam) u - lam = 0,
    a quadratic in u (i.e. in e^b). The product of its roots, -lam / (c r), is negative, so
    exactly one root is positive:
        u = (-(c - lam) + sqrt((c - lam)^2 + 4 c r lam)) / (2 c r)
          = 2 lam / ((c - lam) + sqrt((c - lam)^2 + 4 c r lam))   (when c > lam: no cancellation)
    and b0 = log(u) - a_n. (Check: m = 0 gives r = 1 and u = lam / c.) K >= 2 is required
    (with K = 1 f decreases forever). A zero bias would need thousands of AdamW steps at lr 1e-4
    to reach b0 (about +11.5 for K = 1000, +30.7 for K = 2). The margin used here is
    ``bias_init_margin`` (default: the step-0 margin, i.e. m, or 0 under a margin warm-up).
    ``bias_init="zero"`` is the official code's zero start.

    Args:
        embed_dim, num_classes: d and K.
        s, m, lam, t: scale, margin, positive/negative weight lambda, g's exponent.
        margin_warmup_steps, margin_warmup_start, margin_warmup_type: the margin warm-up
            (``_MarginSchedule``); 0 steps = full margin from the start.
    """

    training_only = True
    BIAS_INITS = ("closed_form", "zero")

    def __init__(self, embed_dim: int, num_classes: int, s: float = 32.0, m: float = 0.2,
                 lam: float = 0.7, t: float = 3, margin_warmup_steps: int = 0,
                 bias_init: str = "closed_form", bias_init_margin: float | None = None,
                 margin_warmup_start: int = 0, margin_warmup_type: str = "linear"):
        super().__init__(m, margin_warmup_steps, margin_warmup_start, margin_warmup_type)
        if num_classes < 2:
            raise ValueError(f"SphereFace2 needs num_classes >= 2, got {num_classes}")
        if not 0.0 < lam < 1.0:
            raise ValueError(f"lam must lie in (0, 1), got {lam}")
        if bias_init not in self.BIAS_INITS:
            raise ValueError(f"bias_init must be one of {self.BIAS_INITS}, got {bias_init!r}")
        self.embed_dim = int(embed_dim)
        self.num_classes = int(num_classes)
        self.s = float(s)
        self.lam = float(lam)
        self.t = t
        self.bias_init = bias_init
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.embed_dim))
        nn.init.xavier_uniform_(self.weight)
        b0 = 0.0
        if bias_init == "closed_form":
            # the step-0 loss's optimum: at margin 0 under a warm-up
            bm = self.current_margin if bias_init_margin is None else float(bias_init_margin)
            b0 = self.closed_form_bias(self.num_classes, self.s, bm, self.lam, self.t)
        self.bias = nn.Parameter(torch.tensor(b0))

    @staticmethod
    def g(z, t):
        return 2.0 * ((z + 1.0) / 2.0) ** t - 1.0

    @staticmethod
    def closed_form_bias(num_classes: int, s: float, m: float, lam: float, t: float) -> float:
        """The b minimising the loss when every cosine is 0 (derivation in the class docstring)."""
        g0 = SphereFace2.g(0.0, t)
        a_n = s * (g0 + m)
        c = (1.0 - lam) * (num_classes - 1)
        r = math.exp(-2.0 * s * m)
        root = math.sqrt((c - lam) ** 2 + 4.0 * c * r * lam)
        u = 2.0 * lam / ((c - lam) + root) if c > lam else (lam - c + root) / (2.0 * c * r)
        return math.log(u) - a_n

    @fp32_loss
    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check_inputs(x, labels, self.num_classes)
        # s = 32 amplifies cosine errors: keep this out of bf16/fp16 autocast.
        with torch.autocast(device_type=x.device.type, enabled=False):
            w = F.normalize(self.weight, dim=1)
            cos = (F.normalize(x.to(w.dtype), dim=1) @ w.T).clamp(-1.0, 1.0)
            g = self.g(cos, self.t)
            m, b = self.current_margin, self.bias.to(w.dtype)
            target = torch.zeros_like(cos, dtype=torch.bool).scatter_(1, labels.view(-1, 1), True)
            g_y = g.gather(1, labels.view(-1, 1)).squeeze(1)
            pos = F.softplus(-(self.s * (g_y - m) + b))
            neg = F.softplus(self.s * (g + m) + b).masked_fill(target, 0.0).sum(dim=1)
            return (self.lam * pos + (1.0 - self.lam) * neg).mean()

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_classes={self.num_classes}, s={self.s}, "
                f"m={self.m}, lam={self.lam}, t={self.t}, "
                f"margin_warmup_steps={self.margin_warmup_steps}, bias_init={self.bias_init!r}")


class AAMSoftmax(_MarginSchedule):
    """Additive angular margin softmax (ArcFace): L = CE(s * [cos(theta_y + m), cos_j (j != y)], y).

    theta_y is the angle between x and W_y (both normalised). cos(theta_y + m) stops decreasing
    once theta_y + m passes pi, so the target logit is replaced there:
      - ``easy_margin=False`` (default): for cos_y <= cos(pi - m) use cos_y - (1 - cos m), which
        meets cos(theta_y + m) = -1 at theta_y = pi - m (continuous) and keeps decreasing;
      - ``easy_margin=True``: the margin is applied only where cos_y > 0; else plain cos_y.
    sin(theta_y) = sqrt(max(1 - cos_y^2, 1e-6)) keeps the gradient finite at cos_y = +-1.
    Optional linear margin warm-up as in SphereFace2.
    """

    training_only = True

    def __init__(self, embed_dim: int, num_classes: int, s: float = 32.0, m: float = 0.2,
                 easy_margin: bool = False, margin_warmup_steps: int = 0,
                 margin_warmup_start: int = 0, margin_warmup_type: str = "linear"):
        super().__init__(m, margin_warmup_steps, margin_warmup_start, margin_warmup_type)
        self.embed_dim = int(embed_dim)
        self.num_classes = int(num_classes)
        self.s = float(s)
        self.easy_margin = bool(easy_margin)
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.embed_dim))
        nn.init.xavier_uniform_(self.weight)

    @fp32_loss
    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check_inputs(x, labels, self.num_classes)
        with torch.autocast(device_type=x.device.type, enabled=False):
            w = F.normalize(self.weight, dim=1)
            cos = (F.normalize(x.to(w.dtype), dim=1) @ w.T).clamp(-1.0, 1.0)
            m = self.current_margin
            idx = labels.view(-1, 1)
            cos_y = cos.gather(1, idx).squeeze(1)
            sin_y = (1.0 - cos_y * cos_y).clamp_min(1e-6).sqrt()
            phi = cos_y * math.cos(m) - sin_y * math.sin(m)
            if self.easy_margin:
                phi = torch.where(cos_y > 0, phi, cos_y)
            else:
                phi = torch.where(cos_y > -math.cos(m), phi, cos_y - (1.0 - math.cos(m)))
            logits = cos.scatter(1, idx, phi.unsqueeze(1))
            return F.cross_entropy(self.s * logits, labels)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_classes={self.num_classes}, s={self.s}, "
                f"m={self.m}, easy_margin={self.easy_margin}, "
                f"margin_warmup_steps={self.margin_warmup_steps}")


class BatchHardTriplet(nn.Module):
    """Batch-hard triplet loss with cosine distance D(u, v) = 1 - cos(u, v):
    L = mean_{valid i} relu(max_{j != i: y_j = y_i} D(x_i, x_j) - min_{k: y_k != y_i} D(x_i, x_k)
                            + margin).

    An anchor is valid when it has at least one positive and one negative; others are skipped.
    With no valid anchor the loss is 0 (still attached to the graph).
    """

    training_only = True

    def __init__(self, margin: float = 0.2):
        super().__init__()
        self.margin = float(margin)

    @fp32_loss
    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check_inputs(x, labels)
        xn = F.normalize(x, dim=1)
        dist = 1.0 - xn @ xn.T
        same = labels.view(-1, 1) == labels.view(1, -1)
        eye = torch.eye(len(labels), dtype=torch.bool, device=x.device)
        pos_mask, neg_mask = same & ~eye, ~same
        valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
        if not bool(valid.any()):
            return x.sum() * 0.0
        hardest_pos = dist.masked_fill(~pos_mask, float("-inf")).max(dim=1).values
        hardest_neg = dist.masked_fill(~neg_mask, float("inf")).min(dim=1).values
        return F.relu(hardest_pos[valid] - hardest_neg[valid] + self.margin).mean()

    def extra_repr(self) -> str:
        return f"margin={self.margin}"


def build_keyword_loss(name: str, embed_dim: int, num_classes: int, **cfg) -> nn.Module | None:
    """L_key by name: "sphereface2", "aam", "triplet" or "none" (returns None: no L_key term).

    ``cfg`` goes to the constructor (e.g. s, m, lam, t, margin_warmup_steps); unknown keys raise.
    All losses are called as loss(E_a^utt (N, d), keyword_ids (N,)) -> scalar.
    """
    if name == "sphereface2":
        return SphereFace2(embed_dim, num_classes, **cfg)
    if name == "aam":
        return AAMSoftmax(embed_dim, num_classes, **cfg)
    if name == "triplet":
        return BatchHardTriplet(**cfg)
    if name == "none":
        if cfg:
            raise ValueError(f"keyword loss 'none' takes no options, got {sorted(cfg)}")
        return None
    raise ValueError(f"unknown keyword loss {name!r}; valid: {', '.join(KEYWORD_LOSSES)}")
