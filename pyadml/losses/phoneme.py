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

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from pyadml.losses.asyp import asyp_loss

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
    """Per-phoneme-class alpha, beta, lambda vectors, stored directly (AdaMS, paper section 3.1).

    ``learnable=True``: nn.Parameters, to be clamped with ``clamp_()`` after each optimiser step
    and kept out of weight decay (``no_weight_decay_parameters()``). ``learnable=False``: buffers
    frozen at the initial values (same state_dict keys, no parameters).
    """

    def __init__(self, num_classes: int, alpha0: float, beta0: float, lam0: float,
                 learnable: bool, alpha_min: float = 1e-4, beta_min: float = 1e-4,
                 lam_bound: float = 1.0):
        super().__init__()
        self.num_classes = int(num_classes)
        self.learnable = bool(learnable)
        self.alpha_min, self.beta_min = float(alpha_min), float(beta_min)
        self.lam_bound = float(lam_bound)
        for name, value in (("alpha", alpha0), ("beta", beta0), ("lam", lam0)):
            init = torch.full((self.num_classes,), float(value))
            if self.learnable:
                setattr(self, name, nn.Parameter(init))
            else:
                self.register_buffer(name, init)

    @torch.no_grad()
    def clamp_(self) -> None:
        """alpha, beta >= their minimum (1e-4), lambda in [-lam_bound, lam_bound]."""
        self.alpha.clamp_(min=self.alpha_min)
        self.beta.clamp_(min=self.beta_min)
        self.lam.clamp_(-self.lam_bound, self.lam_bound)

    def no_weight_decay_parameters(self) -> List[nn.Parameter]:
        return [self.alpha, self.beta, self.lam] if self.learnable else []

    @torch.no_grad()
    def stats(self) -> Dict[str, float]:
        """{'alpha_mean', 'alpha_min', 'alpha_max', 'beta_...', 'lam_...'} as floats, for logs."""
        out = {}
        for name in ("alpha", "beta", "lam"):
            v = getattr(self, name).detach().float()
            out.update({f"{name}_mean": v.mean().item(), f"{name}_min": v.min().item(),
                        f"{name}_max": v.max().item()})
        return out

    def _rows(self, labels: torch.Tensor, like: torch.Tensor):
        """alpha_c, beta_c, lam_c of each row as (N*, 1) tensors, in the graph."""
        return tuple(getattr(self, n).to(like.dtype)[labels].unsqueeze(1)
                     for n in ("alpha", "beta", "lam"))

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, learnable={self.learnable}, "
                f"alpha_min={self.alpha_min}, beta_min={self.beta_min}, lam_bound={self.lam_bound}")


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

    def forward(self, text: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return asyp_loss(text, audio, labels, self.alpha, self.beta, self.lam)


class _ProxyPairLoss(_ClassScales):
    """AsyP's anchors and per-class scales with one term function on both sides:
    mean_i [ f_pos(alpha_c, lam_c - S(t_i, a_j) over P_i) + f_neg(beta_c, S(a_i, t_k) - lam_c over N_i) ]."""

    pos_term = neg_term = None  # set by the subclasses

    def __init__(self, num_classes: int, alpha0: float = 0.01, beta0: float = 1.5,
                 lam0: float = 0.01, learnable: bool = False, **bounds):
        super().__init__(num_classes, alpha0, beta0, lam0, learnable, **bounds)

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
    alpha_min: float = 1e-4,
    beta_min: float = 1e-4,
    lam_bound: float = 1.0,
    temperature: float = 0.1,
    clat_symmetric: bool = False,
) -> Optional[nn.Module]:
    """L_phn by config name (one of PHONEME_LOSSES); ``none`` gives None (the RP-only baseline).

    ``alpha``, ``beta``, ``lam`` are the initial (or fixed) per-class scales of asyp, proxy_bd and
    proxy_ms; ``adams`` makes them learnable (None: ADAMS_BY_DEFAULT, i.e. True for asyp, False
    for the proxies, as in Table 1). Keys that do not apply to ``name`` are ignored.
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
               alpha_min=alpha_min, beta_min=beta_min, lam_bound=lam_bound)
