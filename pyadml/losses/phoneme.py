"""Phoneme-level matching losses L_phn (paper section 3.1, Eq. 2; Table 1).

Every loss takes the N* flattened rows of ``flatten_valid``: ``text`` = E^_t (N*, d), ``audio``
= E^_a (N*, d), ``labels`` = phoneme ids t^ (N*,) in [0, num_classes). S is the cosine
similarity; for row i of class c = labels[i], P_i = {j : labels[j] = c} (i included) and
N_i = {k : labels[k] != c}; t_i = E^_t,i, a_j = E^_a,j. All terms come from one N* x N*
similarity matrix with masks.
Anchors mirror AsyP (Eq. 2) for every alternative: the positive term is anchored on the text
row E^_t,i against audio rows E^_a,j, j in P_i; the negative term on the audio row E^_a,i
against text rows E^_t,k, k in N_i. A mean or sum over an empty N_i is 0.

Names for ``build_phoneme_loss``: asyp (AdaMS, learnable or frozen), proxy_bd, proxy_ms, clat,
none.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from pyadml.losses.asyp import asyp_loss
from pyadml.losses.precision import fp32_loss

PHONEME_LOSSES = ("asyp", "proxy_bd", "proxy_ms", "clat", "none")
# adams=None in build_phoneme_loss picks the Table 1 row: AsyP with AdaMS, fixed-scale proxies.
ADAMS_BY_DEFAULT = {"asyp": True, "proxy_bd": False, "proxy_ms": False}


def _check_rows(text: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor) -> None:
    if text.shape != audio.shape or text.dim() != 2 or labels.shape != text.shape[:1]:
        raise ValueError(f"need text, audio (N*, d) and labels (N*,), got {tuple(text.shape)}, "
                         f"{tuple(audio.shape)}, {tuple(labels.shape)}")


def _else(x: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(1/scale) log(1 + sum_{mask} exp(scale * x)) per row; scale (N, 1)."""
    logits = (scale * x).masked_fill(~mask, float("-inf"))
    logits = torch.cat([logits, logits.new_zeros(logits.shape[0], 1)], dim=1)  # the "1 +"
    return torch.logsumexp(logits, dim=1) / scale.squeeze(1)


def _msp(x: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """mean_{mask} softplus(scale * x) per row, 0 for an empty row; scale (N, 1)."""
    m = mask.to(x.dtype)
    return (F.softplus(scale * x) * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


class _ClassScales(nn.Module):
    """Per-phoneme-class alpha, beta, lambda vectors (AdaMS, paper section 3.1).

    ``learnable=True``: each scale is a bounded function of an unconstrained parameter,
        alpha = exp(log a_min + (log a_max - log a_min) * sigmoid(alpha_raw))   (same for beta),
        lambda = lam_bound * tanh(lam_raw),
    so no optimiser step can leave [a_min, a_max] x [b_min, b_max] x (-lam_bound, lam_bound).
    The loss decreases in alpha for every input (d/da (1/a) log(1 + sum e^{a x}) < 0), and in
    beta once the negatives sit below lambda, so an unbounded alpha (beta) only grows and ELSE
    (MSP) turns into a hard max; the bound is what the scale settles at. Log space makes a step
    a relative change, equal for alpha ~ 0.01 and beta ~ 1.5. The AdaMS paper (Jung & Kim,
    Interspeech 2023) makes margin and scale learnable per class; no bound or
    reparametrisation of it was found (only its abstract could be read here).
    The raw parameters go in no-weight-decay, no-clip groups (``no_weight_decay_parameters()``).
    ``learnable=False``: buffers ``alpha``, ``beta``, ``lam`` frozen at the initial values.
    """

    SCALES = ("alpha", "beta", "lam")

    def __init__(self, num_classes: int, alpha0: float, beta0: float, lam0: float,
                 learnable: bool, alpha_min: float = 1e-3, alpha_max: float = 1.0,
                 beta_min: float = 0.1, beta_max: float = 50.0, lam_bound: float = 1.0):
        super().__init__()
        self.num_classes = int(num_classes)
        self.learnable = bool(learnable)
        self.alpha_min, self.alpha_max = float(alpha_min), float(alpha_max)
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self.lam_bound = float(lam_bound)
        init = {"alpha": float(alpha0), "beta": float(beta0), "lam": float(lam0)}
        if not self.learnable:
            for name, value in init.items():
                self.register_buffer(f"{name}_fixed", torch.full((self.num_classes,), value))
            return
        for name, lo, hi in (("alpha", self.alpha_min, self.alpha_max),
                             ("beta", self.beta_min, self.beta_max)):
            if not 0 < lo < init[name] < hi:
                raise ValueError(f"need 0 < {name}_min < {name}0 < {name}_max, got {lo}, "
                                 f"{init[name]}, {hi}")
        if not abs(init["lam"]) < self.lam_bound:
            raise ValueError(f"need |lam0| < lam_bound, got {init['lam']}, {self.lam_bound}")
        for name in self.SCALES:
            raw = self._to_raw(name, torch.full((self.num_classes,), init[name], dtype=torch.float64))
            setattr(self, f"{name}_raw", nn.Parameter(raw.float()))

    # The bounded maps and their inverses (float64 for the inverse: exact initial values).
    def _log_range(self, name: str):
        lo, hi = (self.alpha_min, self.alpha_max) if name == "alpha" else (self.beta_min, self.beta_max)
        return math.log(lo), math.log(hi)

    def _from_raw(self, name: str, raw: torch.Tensor) -> torch.Tensor:
        if name == "lam":
            return self.lam_bound * torch.tanh(raw)
        lo, hi = self._log_range(name)
        return torch.exp(lo + (hi - lo) * torch.sigmoid(raw))

    def _to_raw(self, name: str, value: torch.Tensor) -> torch.Tensor:
        if name == "lam":
            return torch.atanh(value / self.lam_bound)
        lo, hi = self._log_range(name)
        return torch.logit((torch.log(value) - lo) / (hi - lo))

    def scale(self, name: str) -> torch.Tensor:
        """alpha, beta or lam as a (C,) tensor, in the graph when learnable."""
        if not self.learnable:
            return getattr(self, f"{name}_fixed")
        return self._from_raw(name, getattr(self, f"{name}_raw"))

    alpha = property(lambda self: self.scale("alpha"))
    beta = property(lambda self: self.scale("beta"))
    lam = property(lambda self: self.scale("lam"))

    @torch.no_grad()
    def set_scales(self, **values) -> None:
        """Set alpha/beta/lam (tensors or floats) directly, e.g. in tests or from old checkpoints."""
        for name, value in values.items():
            v = torch.as_tensor(value, dtype=torch.float64).expand(self.num_classes)
            if self.learnable:
                getattr(self, f"{name}_raw").copy_(self._to_raw(name, v))
            else:
                getattr(self, f"{name}_fixed").copy_(v)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints before issue 13 stored the scales themselves under alpha, beta, lam.
        for name in self.SCALES:
            old = state_dict.pop(prefix + name, None)
            if old is None:
                continue
            if self.learnable:
                if name == "lam":
                    lo, hi = -self.lam_bound, self.lam_bound
                else:
                    lo, hi = (math.exp(b) for b in self._log_range(name))
                eps = 1e-6 * (hi - lo)  # strictly inside: the inverse map is finite
                v = old.double().clamp(lo + eps, hi - eps)
                state_dict[prefix + f"{name}_raw"] = self._to_raw(name, v).float()
            else:
                state_dict[prefix + f"{name}_fixed"] = old
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def no_weight_decay_parameters(self) -> List[nn.Parameter]:
        return [getattr(self, f"{n}_raw") for n in self.SCALES] if self.learnable else []

    @torch.no_grad()
    def stats(self) -> Dict[str, float]:
        """{'alpha_mean', 'alpha_min', 'alpha_max', 'beta_...', 'lam_...'} as floats, for logs."""
        out = {}
        for name in self.SCALES:
            v = self.scale(name).detach().float()
            out.update({f"{name}_mean": v.mean().item(), f"{name}_min": v.min().item(),
                        f"{name}_max": v.max().item()})
        return out

    def _rows(self, labels: torch.Tensor, like: torch.Tensor):
        """alpha_c, beta_c, lam_c of each row as (N*, 1) tensors, in the graph."""
        return tuple(self.scale(n).to(like.dtype)[labels].unsqueeze(1) for n in self.SCALES)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, learnable={self.learnable}, "
                f"alpha=[{self.alpha_min}, {self.alpha_max}], beta=[{self.beta_min}, "
                f"{self.beta_max}], lam_bound={self.lam_bound}")


class AdaMS(_ClassScales):
    """AsyP loss (Eq. 2) with per-phoneme-class alpha_c, beta_c, lambda_c (AdaMS):
    L = mean_i [ (1/alpha_c) log(1 + sum_{j in P_i} exp(alpha_c (lam_c - S(t_i, a_j))))
               + mean_{k in N_i} softplus(beta_c (S(a_i, t_k) - lam_c)) ],  c = labels[i].

    Positive term ELSE with the text anchor, negative term MSP with the audio anchor, via
    ``asyp_loss``. ``learnable=False`` is the plain AsyP row of Table 1.
    """

    def __init__(self, num_classes: int, alpha0: float = 0.01, beta0: float = 1.5,
                 lam0: float = 0.01, learnable: bool = True, **bounds):
        super().__init__(num_classes, alpha0, beta0, lam0, learnable, **bounds)

    @fp32_loss
    def forward(self, text: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return asyp_loss(text, audio, labels, self.alpha, self.beta, self.lam)


class _ProxyPairLoss(_ClassScales):
    """AsyP's anchors and per-class scales with one term function on both sides:
    mean_i [ f_pos(alpha_c, lam_c - S(t_i, a_j) over P_i) + f_neg(beta_c, S(a_i, t_k) - lam_c over N_i) ]."""

    pos_term = neg_term = None  # set by the subclasses

    def __init__(self, num_classes: int, alpha0: float = 0.01, beta0: float = 1.5,
                 lam0: float = 0.01, learnable: bool = False, **bounds):
        super().__init__(num_classes, alpha0, beta0, lam0, learnable, **bounds)

    @fp32_loss
    def forward(self, text: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check_rows(text, audio, labels)
        a, b, m = self._rows(labels, text)
        sim = F.normalize(text, dim=1) @ F.normalize(audio, dim=1).T  # S(t_i, a_j)
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        return (self.pos_term(m - sim, same, a) + self.neg_term(sim.T - m, ~same, b)).mean()


class ProxyBinomialDevianceLoss(_ProxyPairLoss):
    """Proxy-BD (Table 1), MSP for both terms:
    L = mean_i [ mean_{j in P_i} softplus(alpha_c (lam_c - S(t_i, a_j)))
               + mean_{k in N_i} softplus(beta_c (S(a_i, t_k) - lam_c)) ],  c = labels[i]."""

    pos_term = neg_term = staticmethod(_msp)


class ProxyMultiSimilarityLoss(_ProxyPairLoss):
    """Proxy-MS (Table 1), ELSE for both terms:
    L = mean_i [ (1/alpha_c) log(1 + sum_{j in P_i} exp(alpha_c (lam_c - S(t_i, a_j))))
               + (1/beta_c) log(1 + sum_{k in N_i} exp(beta_c (S(a_i, t_k) - lam_c))) ],  c = labels[i]."""

    pos_term = neg_term = staticmethod(_else)


class ClatLoss(nn.Module):
    """clat (Table 1), supervised InfoNCE from audio rows to text rows, s = cosine, tau = 0.1:
    L = mean_i -(1/|P_i|) sum_{p in P_i} log( e^{s(a_i, t_p)/tau} / sum_{k=1..N*} e^{s(a_i, t_k)/tau} ).

    The denominator runs over all N* text rows (the same-class ones included). ``symmetric=True``
    averages this with the same loss from text rows to audio rows.
    """

    def __init__(self, temperature: float = 0.1, symmetric: bool = False):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.symmetric = bool(symmetric)

    @staticmethod
    def _one_way(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        pos = same.to(logits.dtype)
        logp = torch.log_softmax(logits, dim=1)
        return (-(logp * pos).sum(dim=1) / pos.sum(dim=1)).mean()  # |P_i| >= 1: i is in P_i

    @fp32_loss
    def forward(self, text: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        _check_rows(text, audio, labels)
        logits = F.normalize(audio, dim=1) @ F.normalize(text, dim=1).T / self.temperature
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        loss = self._one_way(logits, same)
        if self.symmetric:
            loss = 0.5 * (loss + self._one_way(logits.T, same))
        return loss

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, symmetric={self.symmetric}"


def build_phoneme_loss(
    name: str,
    num_classes: int,
    *,
    alpha: float = 0.01,
    beta: float = 1.5,
    lam: float = 0.01,
    adams: Optional[bool] = None,
    alpha_min: float = 1e-3,
    alpha_max: float = 1.0,
    beta_min: float = 0.1,
    beta_max: float = 50.0,
    lam_bound: float = 1.0,
    temperature: float = 0.1,
    clat_symmetric: bool = False,
) -> Optional[nn.Module]:
    """L_phn by config name (one of PHONEME_LOSSES); ``none`` gives None (the RP-only baseline).

    ``alpha``, ``beta``, ``lam`` are the initial (or fixed) per-class scales of asyp, proxy_bd and
    proxy_ms; ``adams`` makes them learnable (None: ADAMS_BY_DEFAULT, i.e. True for asyp, False
    for the proxies, as in Table 1); learnable scales stay in [alpha_min, alpha_max],
    [beta_min, beta_max], (-lam_bound, lam_bound) (``_ClassScales``). Keys that do not apply to
    ``name`` are ignored.
    """
    if name not in PHONEME_LOSSES:
        raise ValueError(f"unknown phoneme loss {name!r}; valid names: {', '.join(PHONEME_LOSSES)}")
    if name == "none":
        return None
    if name == "clat":
        return ClatLoss(temperature=temperature, symmetric=clat_symmetric)
    cls = {"asyp": AdaMS, "proxy_bd": ProxyBinomialDevianceLoss,
           "proxy_ms": ProxyMultiSimilarityLoss}[name]
    learnable = ADAMS_BY_DEFAULT[name] if adams is None else bool(adams)
    return cls(num_classes, alpha, beta, lam, learnable=learnable,
               alpha_min=alpha_min, alpha_max=alpha_max, beta_min=beta_min, beta_max=beta_max,
               lam_bound=lam_bound)
